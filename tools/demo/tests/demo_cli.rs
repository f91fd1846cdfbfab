#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails by panicking, and reads as one scenario"
)]
#[test]
fn it_answers_help_and_version_and_exits_2_on_a_bad_option() {
    testkit::assert_behaves_like_a_cli(env!("CARGO_BIN_EXE_demo"), "demo");
}

#[test]
fn without_moto_it_says_what_to_run_and_does_not_panic() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_demo"))
        .env("MOTO_PYTHON", "/nonexistent/.venv/bin/python")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("demo failed: cannot run /nonexistent/.venv/bin/python -m moto.server"),
        "{stderr}"
    );
    assert!(stderr.contains("scripts/demo"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
