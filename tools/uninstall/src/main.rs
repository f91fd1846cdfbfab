// The SDK futures nest deeply; computing their layout needs more than the default depth.
#![recursion_limit = "256"]

//! `uninstall [--stack NAME] [--yes]`: what the product wrote outside its stack, which deleting
//! the stack leaves behind: the shards and per-user inline policies on the users' role, and the
//! user-id tag on instances and volumes in every covered region. A dry run by default.

use std::process::ExitCode;

use clap::Parser;

use shared::app::role_resolver::RoleResolver;
use shared::app::uninstall::leftovers;
use shared::aws::{load_sdk_config, tool_config_or_exit, Clients};
use shared::config::WriteMode;

const AFTER_HELP: &str = "\
Without --yes nothing changes: what would be removed is listed. Before --yes, stop the functions
(aws lambda put-function-concurrency --reserved-concurrent-executions 0, on both), or they write
it all again; then delete the stacks. See docs/operators/deploy.md (Upgrading and uninstalling).

With --stack NAME the configuration is the deployed stack's, as for the doctor; without it, the
environment, as for the functions (SESSION_ROLE_NAME or PERMISSION_SET_NAME, POLICY_NAME_PREFIX,
USER_ID_TAG_KEY, REGIONS, ...). The credentials need IAM writes on the users' role and the shards,
and ec2:DeleteTags.

Exit status: 0 listed (dry run) or removed; 2 a usage, configuration or AWS error.";

/// Remove what the product wrote outside its stack (a dry run unless --yes).
#[derive(Parser, Debug)]
#[command(name = "uninstall", version, after_help = AFTER_HELP)]
struct Args {
    /// Configure from this deployed stack (its outputs and its functions' configuration).
    #[arg(long, value_name = "NAME")]
    stack: Option<String>,
    /// Remove them: delete the shards and the inline policies, remove the user-id tags.
    #[arg(long)]
    yes: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let config = match tool_config_or_exit("uninstall", args.stack.as_deref()).await {
        Ok(config) => config,
        Err(code) => return code,
    };
    let clients = Clients::new(&load_sdk_config(&config).await);
    let mode = if args.yes {
        WriteMode::Apply
    } else {
        WriteMode::DryRun
    };
    let found = async {
        let role = RoleResolver::new(&config).resolved(&clients.iam).await?;
        leftovers(&config, &role, &clients.ec2, clients.iam.clone(), mode).await
    };
    let found = match found.await {
        Ok(found) => found,
        Err(err) => {
            eprintln!("uninstall: {err} ({})", err.kind());
            return ExitCode::from(2);
        }
    };
    let (verb, iam) = match mode {
        WriteMode::Apply => ("removed", &found.iam.applied),
        WriteMode::DryRun => ("would remove", &found.iam.planned),
    };
    for change in iam {
        println!("iam: {change}");
    }
    for (region, targets) in &found.tagged {
        if !targets.is_empty() {
            let ids: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
            println!(
                "ec2 {region}: {verb} {} from {} resource(s): {}",
                config.ownership.user_id_tag_key,
                ids.len(),
                ids.join(", ")
            );
        }
    }
    for (region, targets) in &found.shared {
        if !targets.is_empty() {
            let ids: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
            println!(
                "ec2 {region}: {verb} the guest slots and share expiry from {} instance(s): {}",
                ids.len(),
                ids.join(", ")
            );
        }
    }
    if found.is_empty() {
        println!("nothing left: the product wrote nothing outside its stack here");
    } else if mode == WriteMode::DryRun {
        println!("dry run: nothing changed; run again with --yes to remove them");
    }
    ExitCode::SUCCESS
}
