//! The README's demo: start moto, create the users' role, launch the instances the samples in
//! `events/` talk about, replay every sample through the `replay` binary (twice, to show that a
//! redelivery changes nothing), print the resulting tags, and stop moto.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use shared::aws::Clients;
use testkit::{seed_samples, tags_of, write_samples, Moto, DEMO_ROLE};

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("demo failed: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let replay = sibling("replay")?;
    let moto = Moto::start().map_err(|e| e.to_string())?;
    println!("== moto listening on {}", moto.endpoint());
    let admin = Clients::new(&moto.sdk_config().await);
    let (role_id, replacements) = seed_samples(&admin.ec2, &admin.iam).await;
    println!(
        "== created role {DEMO_ROLE} ({role_id}) and launched {} instances",
        replacements.len() - 1
    );

    let dir = std::env::temp_dir().join(format!("ssm-session-owner-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let files = write_samples(&dir, &replacements).map_err(|e| e.to_string())?;

    for pass in ["first delivery", "redelivery (nothing may change)"] {
        println!("\n== replay events/ ({pass})");
        let status = Command::new(&replay)
            .args(&files)
            .envs(moto.env())
            .env("SESSION_ROLE_NAME", DEMO_ROLE)
            .env("RUST_LOG", "warn")
            .status()
            .map_err(|e| format!("cannot run {}: {e}", replay.display()))?;
        if !status.success() {
            return Err(format!("replay exited with {status}"));
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
    let _ = std::fs::remove_dir_all(&dir);
    println!("\n== stopping moto");
    Ok(())
}

/// A binary built next to this one.
fn sibling(name: &str) -> Result<PathBuf, String> {
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
