// The SDK futures nest deeply; computing their layout needs more than the default depth.
#![recursion_limit = "256"]

//! `replay [--dry-run] [--at TIME] FILE...` (`-` is stdin): send each EventBridge event to the handler the
//! matching Lambda runs, against whatever AWS endpoint the SDK is configured with
//! (`AWS_ENDPOINT_URL`), and print one JSON line per event. `--dry-run` (or
//! `RECONCILE_DRY_RUN=true`) makes a reconcile report its plan without writing. Exit 0 when every
//! event was handled or deliberately ignored, 1 when any failed, 2 on a usage or configuration
//! error.

use std::io::Read;

use chrono::{DateTime, Utc};
use clap::{Parser, ValueEnum};
use std::process::ExitCode;

use serde_json::Value;
use shared::app::owner_tagging::OwnerTagger;
use shared::app::session_rights::SessionPolicies;
use shared::app::AnyStore;
use shared::aws::{load_sdk_config, tool_config_or_exit, CallCounter, Clients};
use shared::config::WriteMode;
use shared::domain::events::{parse_envelope, route, OWNER_TAGGER, SESSION_POLICY};
use shared::edge::replay_line::ReplayLine;
use shared::{Config, Error, Outcome};

const AFTER_HELP: &str = "\
Configuration comes from the environment, as for the Lambdas (SESSION_ROLE_NAME or
PERMISSION_SET_NAME, ...), and the SDK's (AWS_REGION, AWS_ENDPOINT_URL for moto). Leave
SINGLE_WRITER unset beside a deployed function: then every write is verified by reading again.

Exit status: 0 every event was handled or deliberately ignored; 1 any failed; 2 a usage or
configuration error.";

/// Send EventBridge events to the handlers the Lambdas run, and print one JSON line per event.
#[derive(Parser, Debug)]
#[command(name = "replay", version, after_help = AFTER_HELP)]
struct Args {
    /// Event files (`-` reads one event from stdin).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// Make a reconcile report its plan without writing (also RECONCILE_DRY_RUN=true).
    #[arg(long)]
    dry_run: bool,
    /// Send each event to this function only.
    #[arg(long, value_enum)]
    function: Option<Function>,
    /// Handle the events as if the clock read this time (RFC 3339): what the sweep would end
    /// then. Default: now.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    at: Option<DateTime<Utc>>,
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{text:?} is not an RFC 3339 time (2026-12-06T20:00:00Z): {e}"))
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Function {
    OwnerTagger,
    SessionPolicy,
}

type Ec2 = aws_sdk_ec2::Client;
type Iam = aws_sdk_iam::Client;

/// Every function's handler, built once like the Lambdas build theirs.
struct Functions {
    config: Config,
    owner_tagger: OwnerTagger<Ec2, Iam>,
    session_policy: SessionPolicies<Ec2, Iam, aws_sdk_ssm::Client, AnyStore<Iam>>,
    /// The reconcile's: `--dry-run` or `RECONCILE_DRY_RUN` plan only.
    mode: WriteMode,
    /// `--at`: the owner-tagger's clock.
    at: Option<DateTime<Utc>>,
}

impl Functions {
    async fn handle(&self, function: &str, event: Value) -> Result<Outcome, Error> {
        if function == OWNER_TAGGER {
            let now = self.at.unwrap_or_else(Utc::now);
            self.owner_tagger.handle_at(event, now).await
        } else {
            self.session_policy.handle_with(event, self.mode).await
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    lambda_runtime::tracing::init_default_subscriber_with_writer(std::io::stderr);
    let args = Args::parse();
    let (files, dry_run_flag, at) = (args.files, args.dry_run, args.at);
    let only: Option<&'static str> = args.function.map(|f| match f {
        Function::OwnerTagger => OWNER_TAGGER,
        Function::SessionPolicy => SESSION_POLICY,
    });
    let config = match tool_config_or_exit("replay", None).await {
        Ok(config) => config,
        Err(code) => return code,
    };
    let counter = CallCounter::default();
    let clients = Clients::with_counter(&load_sdk_config(&config).await, Some(counter.clone()));
    let store = AnyStore::from_config(clients.iam.clone(), &config);
    let functions = Functions {
        at,
        mode: if dry_run_flag {
            WriteMode::DryRun
        } else {
            config.rights.reconcile_mode
        },
        config: config.clone(),
        owner_tagger: OwnerTagger::new(config.clone(), clients.ec2.clone(), clients.iam.clone()),
        session_policy: SessionPolicies::new(
            config,
            clients.ec2.clone(),
            clients.iam.clone(),
            clients.ssm.clone(),
            store,
        ),
    };

    let mut failed = false;
    for file in &files {
        let lines = match read_event(file) {
            Err(problem) => vec![ReplayLine::unreadable(file, problem)],
            Ok(event) => replay_one(file, event, &functions, &counter, only).await,
        };
        for line in lines {
            failed |= line.outcome == "error";
            match serde_json::to_string(&line) {
                Ok(json) => println!("{json}"),
                Err(err) => {
                    eprintln!("replay: cannot print the result for {file}: {err}");
                    failed = true;
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn read_event(file: &str) -> Result<Value, String> {
    let text = if file == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read stdin: {e}"))?;
        text
    } else {
        std::fs::read_to_string(file).map_err(|e| format!("cannot read {file}: {e}"))?
    };
    serde_json::from_str(&text).map_err(|e| format!("not JSON: {e}"))
}

/// One line per function the event goes to (a schedule goes to two), in order.
async fn replay_one(
    file: &str,
    event: Value,
    functions: &Functions,
    counter: &CallCounter,
    only: Option<&str>,
) -> Vec<ReplayLine> {
    let envelope = match parse_envelope(event.clone()) {
        Ok(envelope) => envelope,
        Err(reason) => return vec![ReplayLine::unhandled(file, None, reason)],
    };
    let event_id = envelope.id.clone();
    let route = match route(&envelope) {
        Ok(route) => route,
        Err(reason) => return vec![ReplayLine::unhandled(file, event_id, reason)],
    };
    let config = &functions.config;
    let mut lines = Vec::new();
    let owner_tagger_keys = [
        config.ownership.owner_tag_key.as_str(),
        config.sharing.share_with_key.as_str(),
        config.sharing.share_for_key.as_str(),
    ];
    for function in route.functions(
        &envelope.detail,
        &owner_tagger_keys,
        &config.ownership.user_id_tag_key,
    ) {
        if only.is_some_and(|name| name != function) {
            continue;
        }
        counter.take();
        let result = functions.handle(function, event.clone()).await;
        lines.push(ReplayLine::new(
            file,
            function,
            event_id.clone(),
            result,
            counter.take(),
        ));
    }
    lines
}
