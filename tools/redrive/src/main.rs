// The SDK futures nest deeply; computing their layout needs more than the default depth.
#![recursion_limit = "256"]

//! `redrive [--stack NAME | --queue-url URL --owner-tagger ARN --session-policy ARN]
//! [--forwarder-region R]... [--function NAME]... [--error-type TYPE]... [--yes] [--json]`.

use std::process::ExitCode;

use clap::Parser;
use redrive::aws::SqsQueue;
use redrive::parked::{Filter, Product};
use redrive::run::{redrive, Fate, Line};
use shared::app::stack::{deployed, FAILURE_QUEUE_OUTPUT, FORWARDER_DEAD_LETTERS_OUTPUT};
use shared::edge::cli::usage_error;
use shared::ports::EnabledRegions;

const AFTER_HELP: &str = "\
Without --yes nothing changes: every message is listed and left in its queue, visible.
With --yes each selected event is invoked again (synchronously) in the function it failed in,
and its message is deleted only once that invocation succeeded. A message that fails again,
cannot be read or is left out by a filter stays in the queue.

The queues: the home region's FailureQueue, then the forwarders' dead letters
(<RuleNamePrefix>forward-dead-letters) in each --forwarder-region. A forwarded event is sent to
the home function the home rules would have sent it to: a launch to the owner-tagger, a
termination to the session-policy function, a tag change by its changed-tag-keys (the owner key
to the owner-tagger, the user-id key to the session-policy function, both to both; its message
is deleted only when both succeeded).

Only the product's own functions are ever invoked (--owner-tagger and --session-policy: the
stack outputs OwnerTaggerFunctionArn and SessionPolicyFunctionArn), and only from a Lambda
on-failure record, an EventBridge dead letter, or a forwarder rule's dead letter for the home
bus. A message naming any other function, bus or rule is refused, reported and kept: whoever
could write to a queue must not choose what an operator's redrive invokes.

--stack NAME configures everything from the deployed stack instead: the queue, the functions
and the forwarders' queue name from its outputs, the tag keys and the covered regions (REGIONS;
empty: every enabled region) from its session-policy function's environment.

Credentials, region and endpoint come from the SDK's environment (AWS_PROFILE, AWS_REGION,
AWS_ENDPOINT_URL); run it in the home region. The role needs the template's RedrivePolicy
(stack output RedrivePolicyArn).

Exit status: 0 nothing failed (a dry run, or every selected event redriven); 1 some event
failed again, could not be invoked, could not be read, or was refused, or a forwarder region has
no dead-letter queue; 2 a usage, configuration or AWS error.";

/// The forwarders' queue name with the template's default RuleNamePrefix.
const DEFAULT_FORWARDER_QUEUE: &str = "ssm-session-owner-forward-dead-letters";

/// List the events parked in FailureQueue and the forwarders' dead letters and, with --yes,
/// send them back to the product's functions.
#[derive(Parser, Debug)]
#[command(name = "redrive", version, after_help = AFTER_HELP)]
struct Args {
    /// Configure from this deployed stack (its outputs and its functions' configuration).
    #[arg(long, value_name = "NAME", conflicts_with_all = ["queue_url", "owner_tagger", "session_policy", "forwarder_queue_name"])]
    stack: Option<String>,
    /// The home queue (stack output FailureQueueUrl).
    #[arg(long, env = "FAILURE_QUEUE_URL", required_unless_present = "stack")]
    queue_url: Option<String>,
    /// The owner-tagger function (stack output OwnerTaggerFunctionArn).
    #[arg(
        long,
        value_name = "ARN",
        env = "OWNER_TAGGER_FUNCTION_ARN",
        required_unless_present = "stack"
    )]
    owner_tagger: Option<String>,
    /// The session-policy function (stack output SessionPolicyFunctionArn).
    #[arg(
        long,
        value_name = "ARN",
        env = "SESSION_POLICY_FUNCTION_ARN",
        required_unless_present = "stack"
    )]
    session_policy: Option<String>,
    /// The deployment's owner tag key (template OwnerTagKey), to route forwarded tag changes.
    #[arg(
        long,
        value_name = "KEY",
        env = "OWNER_TAG_KEY",
        default_value = "CreatedBy"
    )]
    owner_tag_key: String,
    /// The deployment's user-id tag key (template UserIdTagKey).
    #[arg(
        long,
        value_name = "KEY",
        env = "USER_ID_TAG_KEY",
        default_value = "AwsUserId"
    )]
    user_id_tag_key: String,
    /// The deployment's share request keys (template ShareWithTagKey, ShareForTagKey): a
    /// forwarded change of either goes to the owner-tagger.
    #[arg(
        long,
        value_name = "KEY",
        env = "SHARE_WITH_TAG_KEY",
        default_value = "ShareWith"
    )]
    share_with_tag_key: String,
    #[arg(
        long,
        value_name = "KEY",
        env = "SHARE_FOR_TAG_KEY",
        default_value = "ShareFor"
    )]
    share_for_tag_key: String,
    /// Read this region's forwarder dead letters too; repeatable or comma-separated. With
    /// --stack, the default is every covered region but the home region.
    #[arg(
        long = "forwarder-region",
        value_name = "REGION",
        env = "FORWARDER_REGIONS",
        value_delimiter = ','
    )]
    forwarder_regions: Vec<String>,
    /// The forwarders' queue name (stack output ForwarderDeadLettersName).
    #[arg(long, value_name = "NAME", env = "FORWARDER_QUEUE_NAME", default_value = DEFAULT_FORWARDER_QUEUE)]
    forwarder_queue_name: String,
    /// Only events going to functions whose name contains this (any case); repeatable.
    #[arg(long = "function", value_name = "NAME")]
    functions: Vec<String>,
    /// Only events whose error type is this (Retryable, Permanent, or EventBridge's error
    /// code); repeatable.
    #[arg(long = "error-type", value_name = "TYPE")]
    error_types: Vec<String>,
    /// Redrive: invoke the selected events and delete their messages once they succeed.
    #[arg(long)]
    yes: bool,
    /// One JSON object per message instead of the table.
    #[arg(long)]
    json: bool,
}

/// Where to read and whom to invoke.
struct Setup {
    queue_url: String,
    product: Product,
    forwarder_regions: Vec<String>,
    forwarder_queue_name: String,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let sdk = shared::aws::sdk_loader().load().await;
    let setup = match &args.stack {
        Some(stack) => match from_stack(&sdk, stack, &args).await {
            Ok(setup) => setup,
            Err(err) => {
                eprintln!("redrive: cannot read the stack: {err}");
                return ExitCode::from(2);
            }
        },
        None => match setup_from_args(&args) {
            Ok(setup) => setup,
            Err(why) => return usage_error("redrive", why),
        },
    };
    if !setup.queue_url.starts_with("https://") && !setup.queue_url.starts_with("http://") {
        return usage_error(
            "redrive",
            format!("--queue-url {:?} is not a queue URL", setup.queue_url),
        );
    }
    if let Some(bad) = setup
        .forwarder_regions
        .iter()
        .find(|r| !shared::config::is_region_name(r))
    {
        return usage_error(
            "redrive",
            format!("--forwarder-region {bad:?} is not a region name"),
        );
    }
    let (queues, missing) = match open_queues(&sdk, &setup).await {
        Ok(found) => found,
        Err(why) => {
            eprintln!("redrive: {why}");
            return ExitCode::from(2);
        }
    };
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let filter = Filter {
        functions: args.functions.clone(),
        error_types: args.error_types.clone(),
    };
    let lines = match redrive(&queues, &lambda, &setup.product, &filter, args.yes).await {
        Ok(lines) => lines,
        Err(err) => {
            eprintln!("redrive: {err} ({})", err.kind());
            return ExitCode::from(2);
        }
    };
    print(&lines, args.json, args.yes);
    for region in &missing {
        eprintln!(
            "redrive: {region} has no queue {}: no forwarder stack there, or one with another RuleNamePrefix; its events do not reach the home region",
            setup.forwarder_queue_name
        );
    }
    if lines.iter().any(|l| l.fate.failed()) || !missing.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Everything from the command line (or its environment variables).
fn setup_from_args(args: &Args) -> Result<Setup, String> {
    let product = Product::new(
        args.owner_tagger.as_deref().unwrap_or_default(),
        args.session_policy.as_deref().unwrap_or_default(),
        &args.owner_tag_key,
        &args.user_id_tag_key,
    )
    .and_then(|product| {
        product.with_share_request_keys(&args.share_with_tag_key, &args.share_for_tag_key)
    })
    .map_err(|why| format!("the product's functions: {why}"))?;
    Ok(Setup {
        queue_url: args.queue_url.clone().unwrap_or_default(),
        product,
        forwarder_regions: args.forwarder_regions.clone(),
        forwarder_queue_name: args.forwarder_queue_name.clone(),
    })
}

/// The home queue, then each forwarder region's; the regions that have none.
async fn open_queues(
    sdk: &aws_config::SdkConfig,
    setup: &Setup,
) -> Result<(Vec<SqsQueue>, Vec<String>), String> {
    let mut queues = vec![SqsQueue::failure_queue(
        aws_sdk_sqs::Client::new(sdk),
        setup.queue_url.clone(),
    )];
    let mut missing = Vec::new();
    for region in &setup.forwarder_regions {
        match SqsQueue::forwarder(sdk, region, &setup.forwarder_queue_name).await {
            Ok(Some(queue)) => queues.push(queue),
            Ok(None) => missing.push(region.clone()),
            Err(err) => {
                return Err(format!(
                    "cannot find the forwarder's queue in {region}: {err} ({})",
                    err.kind()
                ))
            }
        }
    }
    Ok((queues, missing))
}

/// Everything from a deployed stack: its outputs, and its session-policy function's
/// environment (the tag keys and the covered regions).
async fn from_stack(
    sdk: &aws_config::SdkConfig,
    stack: &str,
    args: &Args,
) -> Result<Setup, String> {
    let found = deployed(
        stack,
        &aws_sdk_cloudformation::Client::new(sdk),
        &aws_sdk_lambda::Client::new(sdk),
    )
    .await
    .map_err(|err| format!("{err} ({})", err.kind()))?;
    let output = |key: &str| {
        found
            .output(key)
            .map(str::to_owned)
            .map_err(|e| e.to_string())
    };
    let lookup = |key: &str, fallback: &str| {
        found
            .lookup(key, |_| Some(fallback.to_owned()))
            .unwrap_or_default()
    };
    let product = Product::new(
        &output("OwnerTaggerFunctionArn")?,
        &output("SessionPolicyFunctionArn")?,
        &lookup("OWNER_TAG_KEY", &args.owner_tag_key),
        &lookup("USER_ID_TAG_KEY", &args.user_id_tag_key),
    )?
    .with_share_request_keys(
        &lookup("SHARE_WITH_TAG_KEY", &args.share_with_tag_key),
        &lookup("SHARE_FOR_TAG_KEY", &args.share_for_tag_key),
    )?;
    let home = product.home_region().to_owned();
    let mut regions = args.forwarder_regions.clone();
    if regions.is_empty() {
        regions = lookup("REGIONS", "")
            .split(',')
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
            .collect();
    }
    if regions.is_empty() {
        regions = aws_sdk_ec2::Client::new(sdk)
            .enabled_regions()
            .await
            .map_err(|err| format!("{err} ({})", err.kind()))?;
    }
    regions.retain(|r| *r != home);
    let setup = Setup {
        queue_url: output(FAILURE_QUEUE_OUTPUT)?,
        forwarder_queue_name: output(FORWARDER_DEAD_LETTERS_OUTPUT)?,
        forwarder_regions: regions,
        product,
    };
    eprintln!(
        "redrive: configured from stack {stack}: {}, {}, {}; forwarders' {} in {}",
        setup.queue_url,
        setup.product.owner_tagger,
        setup.product.session_policy,
        setup.forwarder_queue_name,
        if setup.forwarder_regions.is_empty() {
            "no other region".to_owned()
        } else {
            setup.forwarder_regions.join(", ")
        }
    );
    Ok(setup)
}

fn print(lines: &[Line], json: bool, applied: bool) {
    if json {
        for line in lines {
            match serde_json::to_string(line) {
                Ok(text) => println!("{text}"),
                Err(err) => eprintln!("redrive: {err}"),
            }
        }
        return;
    }
    if lines.is_empty() {
        println!("nothing is parked");
        return;
    }
    println!(
        "{:<22} {:<38} {:<36} {:<28} {:<12} {:<26} result",
        "queue", "message", "function", "event", "error type", "failed at"
    );
    for line in lines {
        let functions = if line.functions.is_empty() {
            "-".to_owned()
        } else {
            line.functions.join(" + ")
        };
        let (event, error, at) = match &line.parked {
            Some(p) => (
                format!("{} {}", p.detail_type, p.event_id),
                p.error_type.as_str(),
                p.failed_at.as_str(),
            ),
            None => ("-".to_owned(), "-", "-"),
        };
        let result = match &line.fate {
            Fate::Listed => "parked (dry run: add --yes to redrive)".to_owned(),
            Fate::LeftOut => "parked (left out by the filters)".to_owned(),
            Fate::Redriven => "redriven, message deleted".to_owned(),
            Fate::FailedAgain {
                function,
                error_type,
                message,
            } => {
                format!("failed again in {function} ({error_type}: {message}); kept")
            }
            Fate::NotInvoked { function, error } => {
                format!("not invoked in {function} ({error}); kept")
            }
            Fate::Unreadable { reason } => format!("unreadable ({reason}); kept"),
            Fate::Refused { reason } => format!("refused ({reason}); kept"),
        };
        println!(
            "{:<22} {:<38} {functions:<36} {event:<28} {error:<12} {at:<26} {result}",
            line.queue, line.message_id
        );
    }
    let redriven = lines.iter().filter(|l| l.fate == Fate::Redriven).count();
    if applied {
        println!("\n{redriven} of {} redriven", lines.len());
    } else {
        println!("\n{} parked; dry run, nothing changed", lines.len());
    }
}
