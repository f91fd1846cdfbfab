//! The command-line tools as a test runs them.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// `replay`'s JSON lines, keyed by file name. An event that goes to two functions (a schedule:
/// the sweep, then the reconcile) has the owner-tagger's line under `<file>#owner-tagger` and
/// the session-policy function's under `<file>`.
pub fn replay_lines(stdout: &[u8]) -> BTreeMap<String, serde_json::Value> {
    let parsed: Vec<serde_json::Value> = String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect();
    let file = |v: &serde_json::Value| {
        v["file"]
            .as_str()
            .unwrap_or_default()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let mut lines = BTreeMap::new();
    for v in &parsed {
        let name = file(v);
        let shared_file = parsed.iter().filter(|o| file(o) == name).count() > 1;
        let key = if shared_file && v["function"] == "owner-tagger" {
            format!("{name}#owner-tagger")
        } else {
            name
        };
        lines.insert(key, v.clone());
    }
    lines
}

/// A binary built next to the running one (`replay` beside `demo` or `bench`).
pub fn sibling_binary(name: &str) -> Result<PathBuf, String> {
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let path = me.with_file_name(name);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: build it with `cargo build -p {name}`",
            path.display()
        ))
    }
}

/// What every tool must do with its arguments: `--help` and `--version` answer on stdout with
/// exit 0; an unknown option is a usage error, exit 2, with a hint and no panic.
pub fn assert_behaves_like_a_cli(binary: &str, name: &str) {
    let run = |args: &[&str]| {
        std::process::Command::new(binary)
            .args(args)
            .env_remove("FAILURE_QUEUE_URL")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {binary}: {e}"))
    };
    let help = run(&["--help"]);
    let text = String::from_utf8_lossy(&help.stdout);
    assert_eq!(help.status.code(), Some(0), "{name} --help: {text}");
    assert!(text.contains(&format!("Usage: {name}")), "{text}");
    assert!(
        text.contains("Exit status:"),
        "{name} --help documents its exit codes: {text}"
    );
    let version = run(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("{name} {}", env!("CARGO_PKG_VERSION"))
    );
    let bad = run(&["--no-such-option"]);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--no-such-option"), "{stderr}");
    assert!(stderr.contains("--help"), "a hint: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
