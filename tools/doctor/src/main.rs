// The SDK futures nest deeply; computing their layout needs more than the default depth.
#![recursion_limit = "256"]

//! `doctor USER INSTANCE_ID [--region R] [--json]`: why USER can or cannot open, terminate or
//! resume a Session Manager session on INSTANCE_ID. `doctor --verify [--region R] [--json]`:
//! the isolation matrix of colliding synthetic users, from IAM's own policy simulator.
//! `doctor --audit [--region R] [--json]`: every way the users' role, with all its policies and
//! its trust policy, could escape isolation.
//!
//! Same configuration as the functions (`SESSION_ROLE_NAME` or `PERMISSION_SET_NAME`, tag keys,
//! `SESSION_RIGHTS`, `REGIONS`, `AWS_ENDPOINT_URL`, ...). Reads only, never writes.
//! Exit 0 when StartSession is allowed (with --verify: no wrong cell; with --audit: no finding),
//! 1 when it is denied (a wrong cell; a finding), 2 on a usage, configuration or AWS error.

use std::process::ExitCode;

use shared::app::doctor::audit::audit;
use shared::app::doctor::verify::verify;
use shared::app::doctor::{checked_region, diagnose, DoctorError, Verdict};
use shared::aws::{load_sdk_config, Clients};
use shared::Config;

const USAGE: &str = "usage: doctor USER INSTANCE_ID [--region REGION] [--json]\n       doctor --verify [--region REGION] [--json]\n       doctor --audit [--region REGION] [--json]";

struct Args {
    positional: Vec<String>,
    region: Option<String>,
    json: bool,
    verify: bool,
    audit: bool,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        positional: Vec::new(),
        region: None,
        json: false,
        verify: false,
        audit: false,
    };
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--json" => parsed.json = true,
            "--verify" => parsed.verify = true,
            "--audit" => parsed.audit = true,
            "--region" => {
                parsed.region = Some(args.next().ok_or("--region needs a value")?);
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => parsed.positional.push(arg),
        }
    }
    match (parsed.verify, parsed.audit, parsed.positional.len()) {
        (true, true, _) => Err("--verify and --audit are separate runs".into()),
        (true, false, 0) | (false, true, 0) | (false, false, 2) => Ok(parsed),
        (true, false, _) => Err("--verify takes no USER or INSTANCE_ID".into()),
        (false, true, _) => Err("--audit takes no USER or INSTANCE_ID".into()),
        (false, false, _) => Err("USER and INSTANCE_ID are required".into()),
    }
}

/// Print the report as JSON or as text; exit `success` when it was printed.
fn print<T: serde::Serialize + std::fmt::Display>(
    report: &T,
    json: bool,
    success: bool,
) -> ExitCode {
    if json {
        match serde_json::to_string_pretty(report) {
            Ok(text) => println!("{text}"),
            Err(err) => {
                eprintln!("doctor: {err}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{report}");
    }
    if success {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("doctor: {problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("doctor: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    let sdk = load_sdk_config(&config).await;
    let clients = Clients::new(&sdk);
    let home = sdk.region().map(|r| r.to_string());

    if args.verify || args.audit {
        let Some(region) = args.region.or(home) else {
            eprintln!("doctor: no region: set AWS_REGION or pass --region");
            return ExitCode::from(2);
        };
        if let Err(err) = checked_region(&region) {
            eprintln!("doctor: {err}\n{USAGE}");
            return ExitCode::from(2);
        }
        let (run, printed) = if args.verify {
            (
                "--verify",
                verify(&config, &region, &clients.iam)
                    .await
                    .map(|matrix| print(&matrix, args.json, matrix.wrong == 0)),
            )
        } else {
            (
                "--audit",
                audit(&config, &region, &clients.iam)
                    .await
                    .map(|found| print(&found, args.json, found.findings.is_empty())),
            )
        };
        return printed.unwrap_or_else(|err| {
            eprintln!("doctor {run}: {err} ({})", err.kind());
            ExitCode::from(2)
        });
    }

    let [user, instance] = [&args.positional[0], &args.positional[1]];
    match diagnose(
        &config,
        user,
        instance,
        args.region.as_deref(),
        &clients.ec2,
        &clients.iam,
        &clients.ssm,
    )
    .await
    {
        Ok(diagnosis) => print(&diagnosis, args.json, diagnosis.verdict == Verdict::Allowed),
        Err(DoctorError::Usage(problem)) => {
            eprintln!("doctor: {problem}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(DoctorError::Aws(err)) => {
            eprintln!("doctor: {err} ({})", err.kind());
            ExitCode::from(2)
        }
    }
}
