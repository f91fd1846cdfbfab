//! Running `replay` as its own process and measuring it: the AWS requests it sent (counted at
//! the HTTP layer by the SDK interceptor, retries included), the whole-process wall time
//! (start-up, config, SDK set-up, handling, exit) and the peak resident memory (from `wait4`).

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use shared::edge::replay_line::ReplayLine;

pub struct Measured {
    pub calls: BTreeMap<String, u64>,
    pub outcome: String,
    pub reasons: Vec<String>,
    /// One line per event, as replay printed it.
    pub lines: Vec<ReplayLine>,
    pub wall: Duration,
    pub peak_kib: i64,
}

impl Measured {
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }

    pub fn by_operation(&self) -> String {
        if self.calls.is_empty() {
            return "-".to_owned();
        }
        let by_op: Vec<String> = self
            .calls
            .iter()
            .map(|(op, n)| format!("{op} {n}"))
            .collect();
        by_op.join(", ")
    }
}

pub fn write(dir: &Path, name: &str, event: Value) -> Result<PathBuf, String> {
    let path = dir.join(name);
    std::fs::write(&path, event.to_string()).map_err(|e| e.to_string())?;
    Ok(path)
}

pub fn row(case: &str, m: &Measured) {
    println!(
        "| {case} | {} | {} | {} | {:.1} ms | {:.1} MiB |",
        m.total_calls(),
        m.by_operation(),
        m.outcome,
        m.wall.as_secs_f64() * 1000.0,
        m.peak_kib as f64 / 1024.0
    );
}

/// [`measure`] on a blocking thread, so an in-process proxy keeps serving meanwhile.
pub async fn measure_async(
    replay: &Path,
    files: Vec<PathBuf>,
    env: Vec<(String, String)>,
) -> Result<Measured, String> {
    let replay = replay.to_owned();
    tokio::task::spawn_blocking(move || measure(&replay, &files, &env))
        .await
        .map_err(|e| e.to_string())?
}

/// Run `replay` once as a child process; time it and read its peak RSS with `wait4`.
pub fn measure(
    replay: &Path,
    files: &[PathBuf],
    env: &[(String, String)],
) -> Result<Measured, String> {
    let stdout_path = std::env::temp_dir().join(format!("bench-out-{}.json", std::process::id()));
    let stdout = std::fs::File::create(&stdout_path).map_err(|e| e.to_string())?;
    let start = Instant::now();
    let child = Command::new(replay)
        .args(files)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(stdout)
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", replay.display()))?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is valid, and wait4 writes only into the two locals.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    if waited != pid {
        return Err(format!("wait4 failed: {}", std::io::Error::last_os_error()));
    }
    let status = std::process::ExitStatus::from_raw(status);
    let text = std::fs::read_to_string(&stdout_path).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&stdout_path);
    let mut calls = BTreeMap::new();
    let mut outcomes = Vec::new();
    let mut reasons = Vec::new();
    let mut lines = Vec::new();
    for line in text.lines() {
        let v: ReplayLine =
            serde_json::from_str(line).map_err(|e| format!("replay printed {line:?}: {e}"))?;
        for (op, n) in &v.calls {
            *calls.entry(op.clone()).or_insert(0) += n;
        }
        outcomes.push(v.outcome.clone());
        reasons.push(v.reason.clone());
        lines.push(v);
    }
    if !status.success() {
        return Err(format!("replay exited with {status}: {text}"));
    }
    Ok(Measured {
        calls,
        outcome: outcomes.join(","),
        reasons,
        lines,
        wall,
        peak_kib: usage.ru_maxrss,
    })
}

/// The configuration the template deploys (`SINGLE_WRITER=true`: reserved concurrency 1), then
/// the settings a caller may pass through the environment to measure others.
pub fn deployed_and_passed_through() -> Vec<(String, String)> {
    let mut env = vec![("SINGLE_WRITER".to_owned(), "true".to_owned())];
    for name in [
        "SINGLE_WRITER",
        "POLICY_STORE",
        "MAX_POLICY_SHARDS",
        "ROLE_MANAGED_POLICY_LIMIT",
        "SDK_ATTEMPT_TIMEOUT_SECONDS",
        "SDK_OPERATION_TIMEOUT_SECONDS",
    ] {
        if let Ok(value) = std::env::var(name) {
            env.push((name.into(), value));
        }
    }
    env
}
