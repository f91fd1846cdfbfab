// The SDK futures nest deeply; computing their layout needs more than the default depth.
#![recursion_limit = "256"]

//! `doctor USER INSTANCE_ID [--region R] [--port P] [--os-user U] [--json]`: why USER can or
//! cannot open, terminate or resume a Session Manager session on INSTANCE_ID, and open each
//! session kind the deployment turns on (a shell, port forwarding to P, SSH as U). `doctor --verify [--region R] [--json]`:
//! the isolation matrix of colliding synthetic users, from IAM's own policy simulator.
//! `doctor --audit [--region R] [--json]`: every way the users' role, with all its policies and
//! its trust policy, could escape isolation.
//!
//! Same configuration as the functions (`SESSION_ROLE_NAME` or `PERMISSION_SET_NAME`, tag keys,
//! `SESSION_RIGHTS`, `REGIONS`, `AWS_ENDPOINT_URL`, ...), and the session kinds as deployed
//! (`SHELL_SESSIONS`, `PORT_FORWARDING`, `SSH_SESSIONS`, `SESSION_DOCUMENT_PREFIX`,
//! `SSH_OS_USERS`, named after the template's parameters). Reads only, never writes.
//! Exit 0 when StartSession is allowed (with --verify: no wrong cell; with --audit: no finding),
//! 1 when it is denied (a wrong cell; a finding), 2 on a usage, configuration or AWS error.

use std::process::ExitCode;

use shared::app::doctor::audit::audit;
use shared::app::doctor::verify::verify;
use shared::app::doctor::{
    checked_region, diagnose, DoctorError, KindQuestion, Question, Services, Verdict,
};
use shared::aws::{load_sdk_config, Clients, LoggingClients};
use shared::Config;

const USAGE: &str = "usage: doctor USER INSTANCE_ID [--region REGION] [--port PORT] [--os-user OS_USER] [--json]\n       doctor --verify [--region REGION] [--json]\n       doctor --audit [--region REGION] [--json]";

struct Args {
    positional: Vec<String>,
    region: Option<String>,
    json: bool,
    verify: bool,
    audit: bool,
    /// The port to ask port forwarding about.
    port: Option<u16>,
    /// The OS user to ask SSH about.
    os_user: Option<String>,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        positional: Vec::new(),
        region: None,
        json: false,
        verify: false,
        audit: false,
        port: None,
        os_user: None,
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
            "--port" => {
                let port = args.next().ok_or("--port needs a value")?;
                parsed.port =
                    Some(port.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                        format!("--port {port:?} is not a port number (1-65535)")
                    })?);
            }
            "--os-user" => {
                parsed.os_user = Some(args.next().ok_or("--os-user needs a value")?);
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
    let logging = LoggingClients::new(&sdk);
    let question = Question {
        user,
        instance,
        region: args.region.as_deref(),
        kinds: KindQuestion {
            port: args.port,
            os_user: args.os_user.clone(),
        },
    };
    let services = Services {
        ec2: &clients.ec2,
        iam: &clients.iam,
        ssm: &clients.ssm,
        logging: &logging,
    };
    match diagnose(&config, &question, services).await {
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
