//! The README's demo: start moto, create the users' role, launch the instances the samples in
//! `events/` talk about, replay every sample through the `replay` binary (twice, to show that a
//! redelivery changes nothing), print the resulting tags and session policies, ask the access
//! doctor about three cases and for its audit of the role, and stop moto.
//!
//! moto has no SSM session APIs, so the demo runs with END_SESSIONS_ON_TERMINATE=false.

use std::process::{Command, ExitCode};

use clap::Parser;
use shared::aws::Clients;
use shared::edge::replay_line::ReplayLine;
use testkit::{
    attach_end_user_policy, create_session_documents, granted_users, role_policy_names,
    seed_samples, sibling_binary, tags_of, write_samples, Moto, DEMO_ROLE,
};

/// The demo: moto on loopback, every sample event replayed twice, the tags and statements that
/// result, the access doctor's answers, then moto stopped.
#[derive(Parser, Debug)]
#[command(
    name = "demo",
    version,
    after_help = "Run it with scripts/demo, which installs moto into .venv first (or set MOTO_PYTHON\nto a Python that has moto).\n\nExit status: 0 done; 1 a step failed; 2 a usage error."
)]
struct Args {}

#[tokio::main]
async fn main() -> ExitCode {
    Args::parse();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("demo failed: {err}");
            ExitCode::FAILURE
        }
    }
}

#[expect(
    clippy::too_many_lines,
    reason = "the demo's steps in the order it narrates them"
)]
async fn run() -> Result<(), String> {
    let replay = sibling_binary("replay")?;
    let moto = Moto::start().map_err(|e| e.to_string())?;
    println!("== moto listening on {}", moto.endpoint());
    let admin = Clients::new(&moto.sdk_config().await);
    let (role_id, replacements) = seed_samples(&admin.ec2, &admin.iam).await;
    println!(
        "== created role {DEMO_ROLE} ({role_id}) and launched {} instances",
        replacements
            .iter()
            .filter(|(sample, _)| sample.starts_with("i-"))
            .count()
    );

    let dir = std::env::temp_dir().join(format!("ssm-session-owner-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let files = write_samples(&dir, &replacements).map_err(|e| e.to_string())?;

    for pass in ["first delivery", "redelivery (nothing may change)"] {
        println!("\n== replay events/ ({pass})");
        let output = Command::new(&replay)
            .args(&files)
            .envs(moto.product_env(DEMO_ROLE))
            .output()
            .map_err(|e| format!("cannot run {}: {e}", replay.display()))?;
        println!(
            "{:<40} {:<15} {:<10} {:<5} reason",
            "event", "function", "outcome", "calls"
        );
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            print_line(line);
        }
        if !output.status.success() {
            return Err(format!(
                "replay exited with {}: {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }

    println!("\n== tags in EC2 (moto)");
    println!("{:<22} {:<14} AwsUserId", "instance", "CreatedBy");
    for (sample, id) in replacements.iter().filter(|(s, _)| s.starts_with("i-")) {
        let tags = tags_of(&admin.ec2, id).await;
        let get = |k: &str| tags.get(k).cloned().unwrap_or_else(|| "-".into());
        println!(
            "{:<22} {:<14} {}   (sample {sample})",
            id,
            get("CreatedBy"),
            get("AwsUserId")
        );
    }
    println!("\n== who may terminate/resume their own sessions (statements on {DEMO_ROLE})");
    for (user, holder) in granted_users(&admin.iam, DEMO_ROLE).await {
        println!("{user:<14} {holder}");
    }
    let leftover: Vec<String> = role_policy_names(&admin.iam, DEMO_ROLE).await;
    println!(
        "inline policies left on the role: {}",
        if leftover.is_empty() {
            "none".to_owned()
        } else {
            leftover.join(", ")
        }
    );
    let _ = std::fs::remove_dir_all(&dir);

    // The access doctor, with the end-user policy the template ships attached to the role and
    // the session documents it creates (port forwarding, with the defaults).
    attach_end_user_policy(&admin.iam, DEMO_ROLE, false).await;
    let documents = create_session_documents(&admin.ssm, &[]).await;
    println!(
        "\n== created the template's session documents: {}",
        documents.join(", ")
    );
    let doctor = sibling_binary("doctor")?;
    let instance = |sample: &str| {
        replacements
            .iter()
            .find(|(s, _)| s == sample)
            .map(|(_, id)| id.clone())
            .ok_or_else(|| format!("no instance for sample {sample}"))
    };
    for (user, sample, extra, why) in [
        (
            "tim.malone",
            "i-0a1b2c3d4e5f60001",
            &["--port", "8888"][..],
            "the owner, forwarding Jupyter's port",
        ),
        ("ada.lovelace", "i-0a1b2c3d4e5f60001", &[], "another user"),
        (
            "tim.malone",
            "i-0a1b2c3d4e5f60005",
            &[],
            "an instance whose CreatedBy is hostile",
        ),
    ] {
        let id = instance(sample)?;
        println!("\n== doctor {user} {id} {}   ({why})", extra.join(" "));
        let mut args = vec![user, id.as_str()];
        args.extend_from_slice(extra);
        run_doctor(&doctor, &moto, &args)?;
    }
    // The security reviewer's question about the whole role: nothing to find here.
    println!("\n== doctor --audit   (every way the users' role could escape isolation)");
    run_doctor(&doctor, &moto, &["--audit"])?;
    println!("\n== stopping moto");
    Ok(())
}

/// Run the doctor against moto and print what it says and its exit status (0 or 1 expected).
fn run_doctor(doctor: &std::path::Path, moto: &Moto, args: &[&str]) -> Result<(), String> {
    let output = Command::new(doctor)
        .args(args)
        .envs(moto.product_env(DEMO_ROLE))
        .output()
        .map_err(|e| format!("cannot run {}: {e}", doctor.display()))?;
    print!("{}", String::from_utf8_lossy(&output.stdout));
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    println!("(exit {})", output.status.code().unwrap_or(-1));
    if matches!(output.status.code(), Some(0 | 1)) {
        Ok(())
    } else {
        Err(format!("doctor exited with {}", output.status))
    }
}

/// One `replay` JSON line as a table row: file, function, outcome, AWS calls, reason.
fn print_line(line: &str) {
    let Ok(v) = serde_json::from_str::<ReplayLine>(line) else {
        println!("{line}");
        return;
    };
    let file = v.file.rsplit('/').next().unwrap_or_default();
    let mut reason = v.reason.clone();
    if reason.chars().count() > 90 {
        reason = reason.chars().take(87).collect::<String>() + "...";
    }
    println!(
        "{file:<40} {:<15} {:<10} {:<5} {reason}",
        v.function,
        v.outcome,
        v.total_calls()
    );
}
