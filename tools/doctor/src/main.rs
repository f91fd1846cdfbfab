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

use clap::Parser;
use shared::app::doctor::audit::audit;
use shared::app::doctor::verify::verify;
use shared::app::doctor::{
    checked_region, diagnose, DoctorError, KindQuestion, Question, Services, Verdict,
};
use shared::aws::{load_sdk_config, tool_config_or_exit, Clients, LoggingClients};
use shared::edge::cli::usage_error;

const AFTER_HELP: &str = "\
With --stack NAME the configuration is the deployed stack's: its session-policy function's
environment, which carries every setting below (cloudformation:DescribeStacks,
lambda:GetFunctionConfiguration). Without it, the environment, as for the functions: SESSION_ROLE_NAME or
PERMISSION_SET_NAME, OWNER_TAG_KEY, USER_ID_TAG_KEY, SESSION_RIGHTS, REGIONS, the session kinds
(SHELL_SESSIONS, PORT_FORWARDING, SSH_SESSIONS, SESSION_DOCUMENT_PREFIX, SSH_OS_USERS) and the
SDK's (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL). Reads only, never writes.

Exit status: 0 StartSession is allowed (--verify: no wrong cell; --audit: no finding);
1 it is denied (a wrong cell; a finding); 2 a usage, configuration or AWS error.";

/// Why a user can or cannot open, terminate or resume a Session Manager session on an instance.
#[derive(Parser, Debug)]
#[command(name = "doctor", version, after_help = AFTER_HELP)]
struct Args {
    /// USER INSTANCE_ID: the user's session name (the part of aws:userid after the colon) and
    /// the instance they cannot reach.
    #[arg(value_names = ["USER", "INSTANCE_ID"], num_args = 0..=2)]
    positional: Vec<String>,
    /// The region of the instance (or, with --verify/--audit, of the simulator); default: the
    /// SDK's region.
    #[arg(long)]
    region: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// The isolation matrix of colliding synthetic users, from IAM's own policy simulator.
    #[arg(long, conflicts_with_all = ["audit", "port", "os_user"])]
    verify: bool,
    /// Every way the users' role, with all its policies and its trust policy, could escape
    /// isolation.
    #[arg(long, conflicts_with_all = ["port", "os_user"])]
    audit: bool,
    /// Also ask whether port forwarding to this port on the instance is allowed.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// Also ask whether an SSH key may be pushed for this OS user.
    #[arg(long)]
    os_user: Option<String>,
    /// Configure from this deployed stack (its outputs and its functions' configuration).
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
}

fn check(args: &Args) -> Result<(), &'static str> {
    match (args.verify, args.audit, args.positional.len()) {
        (true, false, 0) | (false, true, 0) | (false, false, 2) => Ok(()),
        (true, _, _) => Err("--verify takes no USER or INSTANCE_ID"),
        (_, true, _) => Err("--audit takes no USER or INSTANCE_ID"),
        _ => Err("USER and INSTANCE_ID are required"),
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
    let args = Args::parse();
    if let Err(problem) = check(&args) {
        return usage_error("doctor", problem);
    }
    let config = match tool_config_or_exit("doctor", args.stack.as_deref()).await {
        Ok(config) => config,
        Err(code) => return code,
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
            return usage_error("doctor", err);
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
        trails: &clients.cloudtrail,
    };
    match diagnose(&config, &question, services).await {
        Ok(diagnosis) => print(&diagnosis, args.json, diagnosis.verdict == Verdict::Allowed),
        Err(DoctorError::Usage(problem)) => usage_error("doctor", problem),
        Err(DoctorError::Aws(err)) => {
            eprintln!("doctor: {err} ({})", err.kind());
            ExitCode::from(2)
        }
    }
}
