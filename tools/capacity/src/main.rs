// The SDK futures nest deeply; computing their layout needs more than the default depth.
#![recursion_limit = "256"]

//! `capacity [--json]`: report, against the account the SDK is configured for (or moto via
//! `AWS_ENDPOINT_URL`), who holds a session statement, the shards and their sizes, characters
//! used and available, headroom in users, and drift between EC2 and IAM. Reads only.
//! Exit 0 when there is no drift, 1 when there is, 2 on a usage, configuration or AWS error.

use std::process::ExitCode;

use shared::edge::cli::{print_report, stopped_by};

use clap::Parser;

use shared::app::capacity::capacity_report;
use shared::app::role_resolver::RoleResolver;
use shared::aws::{load_sdk_config, tool_config_or_exit, Clients};

const AFTER_HELP: &str = "\
With --stack NAME the configuration is the deployed stack's: its session-policy function's
environment (cloudformation:DescribeStacks, lambda:GetFunctionConfiguration). Without it, the
environment, as for the functions (SESSION_ROLE_NAME or PERMISSION_SET_NAME, POLICY_STORE,
POLICY_NAME_PREFIX, ...). The SDK's region, credentials and endpoint come from the environment
either way. Reads only.

Exit status: 0 no drift; 1 drift (users with a live instance and no statement, or statements
without a live instance); 2 a usage, configuration or AWS error.";

/// Who holds a session statement on the users' role, the shards and their sizes, headroom, and
/// drift between EC2 and IAM.
#[derive(Parser, Debug)]
#[command(name = "capacity", version, after_help = AFTER_HELP)]
struct Args {
    /// Print the report as JSON (for scripts and dashboards).
    #[arg(long)]
    json: bool,
    /// Configure from this deployed stack (its outputs and its functions' configuration).
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let json = args.json;
    let config = match tool_config_or_exit("capacity", args.stack.as_deref()).await {
        Ok(config) => config,
        Err(code) => return code,
    };
    let clients = Clients::new(&load_sdk_config(&config).await);
    let report = async {
        let role = RoleResolver::new(&config).resolved(&clients.iam).await?;
        capacity_report(&config, &role, &clients.ec2, &clients.iam).await
    };
    match report.await {
        Ok(report) => {
            let in_step = report.drift.missing.is_empty() && report.drift.stale.is_empty();
            print_report("capacity", &report, json, in_step)
        }
        Err(err) => stopped_by("capacity", &err),
    }
}
