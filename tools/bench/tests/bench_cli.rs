#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails by panicking, and reads as one scenario"
)]
#[test]
fn it_answers_help_and_version_and_exits_2_on_a_bad_option() {
    testkit::assert_behaves_like_a_cli(env!("CARGO_BIN_EXE_bench"), "bench");
    // --scale's options need --scale: a usage error, not a benchmark.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bench"))
        .args(["--latency-ms", "5"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
}
