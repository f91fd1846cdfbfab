// The SDK futures nest deeply; computing their layout needs more than the default depth.
#![recursion_limit = "256"]

//! `doctor check USER INSTANCE_ID [--region R] [--port P] [--os-user U] [--json]`: why USER can
//! or cannot open, terminate or resume a Session Manager session on INSTANCE_ID, and open each
//! session kind the deployment turns on (a shell, port forwarding to P, SSH as U).
//! `doctor verify [--region R] [--json]`: the isolation matrix of colliding synthetic users,
//! from IAM's own policy simulator. `doctor audit [--region R] [--json]`: every way the users'
//! role, with all its policies and its trust policy, could escape isolation. The older spelling
//! (`doctor USER INSTANCE_ID`, `doctor --verify`, `doctor --audit`) still works.
//!
//! Same configuration as the functions (`SESSION_ROLE_NAME` or `PERMISSION_SET_NAME`, tag keys,
//! `SESSION_RIGHTS`, `REGIONS`, `AWS_ENDPOINT_URL`, ...), and the session kinds as deployed
//! (`SHELL_SESSIONS`, `PORT_FORWARDING`, `SSH_SESSIONS`, `SESSION_DOCUMENT_PREFIX`,
//! `SSH_OS_USERS`, named after the template's parameters). Reads only, never writes.
//! Exit 0 when StartSession is allowed (verify: no wrong cell; audit: no finding), 1 when it is
//! denied (a wrong cell; a finding), 2 on a usage, configuration or AWS error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shared::app::doctor::audit::audit;
use shared::app::doctor::verify::verify;
use shared::app::doctor::{
    checked_region, diagnose, DoctorError, KindQuestion, Question, Services, Verdict,
};
use shared::aws::{load_sdk_config, tool_config_or_exit, Clients, LoggingClients};
use shared::edge::cli::{print_report, stopped_by, usage_error};

const AFTER_HELP: &str = "\
The older spelling still works: doctor USER INSTANCE_ID (doctor check), doctor --verify
(doctor verify), doctor --audit (doctor audit). A user named check, verify or audit is asked
about with doctor check USER INSTANCE_ID.

With --stack NAME the configuration is the deployed stack's: its session-policy function's
environment, which carries every setting below (cloudformation:DescribeStacks,
lambda:GetFunctionConfiguration). Without it, the environment, as for the functions: SESSION_ROLE_NAME or
PERMISSION_SET_NAME, OWNER_TAG_KEY, USER_ID_TAG_KEY, SESSION_RIGHTS, REGIONS, the session kinds
(SHELL_SESSIONS, PORT_FORWARDING, SSH_SESSIONS, SESSION_DOCUMENT_PREFIX, SSH_OS_USERS) and the
SDK's (AWS_REGION, AWS_PROFILE, AWS_ENDPOINT_URL). Reads only, never writes.

Exit status: 0 StartSession is allowed (verify: no wrong cell; audit: no finding);
1 it is denied (a wrong cell; a finding); 2 a usage, configuration or AWS error.";

/// Why a user can or cannot open, terminate or resume a Session Manager session on an instance.
#[derive(Parser, Debug)]
#[command(name = "doctor", version, after_help = AFTER_HELP, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// USER INSTANCE_ID: the older spelling of `doctor check USER INSTANCE_ID`.
    #[arg(value_names = ["USER", "INSTANCE_ID"], num_args = 0..=2)]
    positional: Vec<String>,
    /// The region of the instance (or, for verify and audit, of the simulator); default: the
    /// SDK's region.
    #[arg(long, global = true)]
    region: Option<String>,
    /// Print the report as JSON.
    #[arg(long, global = true)]
    json: bool,
    /// The older spelling of `doctor verify`.
    #[arg(long, conflicts_with_all = ["audit", "port", "os_user"])]
    verify: bool,
    /// The older spelling of `doctor audit`.
    #[arg(long, conflicts_with_all = ["port", "os_user"])]
    audit: bool,
    #[command(flatten)]
    kinds: KindArgs,
    /// Configure from this deployed stack (its outputs and its functions' configuration).
    #[arg(long, value_name = "NAME", global = true)]
    stack: Option<String>,
}

/// The session kinds asked about beyond a shell.
#[derive(clap::Args, Debug, Clone, Default)]
struct KindArgs {
    /// Also ask whether port forwarding to this port on the instance is allowed.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    port: Option<u16>,
    /// Also ask whether an SSH key may be pushed for this OS user.
    #[arg(long)]
    os_user: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Why USER can or cannot open, terminate or resume a session on INSTANCE_ID: twelve checks,
    /// each with its fix.
    Check {
        /// The user's session name (the part of aws:userid after the colon).
        #[arg(value_name = "USER")]
        user: String,
        /// The instance they cannot reach.
        #[arg(value_name = "INSTANCE_ID")]
        instance: String,
        #[command(flatten)]
        kinds: KindArgs,
    },
    /// The isolation matrix of colliding synthetic users, from IAM's own policy simulator.
    Verify,
    /// Every way the users' role, with all its policies and its trust policy, could escape
    /// isolation.
    Audit,
}

/// What to run, whichever spelling asked for it.
enum Run {
    Check {
        user: String,
        instance: String,
        kinds: KindArgs,
    },
    Verify,
    Audit,
}

fn run_of(args: &Args) -> Result<Run, &'static str> {
    if let Some(command) = &args.command {
        return Ok(match command {
            Command::Check {
                user,
                instance,
                kinds,
            } => Run::Check {
                user: user.clone(),
                instance: instance.clone(),
                kinds: kinds.clone(),
            },
            Command::Verify => Run::Verify,
            Command::Audit => Run::Audit,
        });
    }
    match (args.verify, args.audit, args.positional.as_slice()) {
        (true, false, []) => Ok(Run::Verify),
        (false, true, []) => Ok(Run::Audit),
        (false, false, [user, instance]) => Ok(Run::Check {
            user: user.clone(),
            instance: instance.clone(),
            kinds: args.kinds.clone(),
        }),
        (true, _, _) => Err("--verify takes no USER or INSTANCE_ID"),
        (_, true, _) => Err("--audit takes no USER or INSTANCE_ID"),
        _ => Err("USER and INSTANCE_ID are required"),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let run = match run_of(&args) {
        Ok(run) => run,
        Err(problem) => return usage_error("doctor", problem),
    };
    let config = match tool_config_or_exit("doctor", args.stack.as_deref()).await {
        Ok(config) => config,
        Err(code) => return code,
    };
    let sdk = load_sdk_config(&config).await;
    let clients = Clients::new(&sdk);
    let home = sdk.region().map(|r| r.to_string());

    let (user, instance, kinds) = match run {
        Run::Check {
            user,
            instance,
            kinds,
        } => (user, instance, kinds),
        Run::Verify | Run::Audit => {
            let Some(region) = args.region.or(home) else {
                eprintln!("doctor: no region: set AWS_REGION or pass --region");
                return ExitCode::from(2);
            };
            if let Err(err) = checked_region(&region) {
                return usage_error("doctor", err);
            }
            return if matches!(run, Run::Verify) {
                match verify(&config, &region, &clients.iam).await {
                    Ok(matrix) => print_report("doctor", &matrix, args.json, matrix.wrong == 0),
                    Err(err) => stopped_by("doctor verify", &err),
                }
            } else {
                match audit(&config, &region, &clients.iam).await {
                    Ok(found) => {
                        print_report("doctor", &found, args.json, found.findings.is_empty())
                    }
                    Err(err) => stopped_by("doctor audit", &err),
                }
            };
        }
    };
    let logging = LoggingClients::new(&sdk);
    let question = Question {
        user: &user,
        instance: &instance,
        region: args.region.as_deref(),
        kinds: KindQuestion {
            port: kinds.port,
            os_user: kinds.os_user,
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
        Ok(diagnosis) => print_report(
            "doctor",
            &diagnosis,
            args.json,
            diagnosis.verdict == Verdict::Allowed,
        ),
        Err(DoctorError::Usage(problem)) => usage_error("doctor", problem),
        Err(DoctorError::Aws(err)) => stopped_by("doctor", &err),
    }
}
