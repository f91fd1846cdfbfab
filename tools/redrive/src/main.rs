// The SDK futures nest deeply; computing their layout needs more than the default depth.
#![recursion_limit = "256"]

//! `redrive [--stack NAME | --queue-url URL --product-function ARN,...] [--function NAME]...
//! [--error-type TYPE]... [--yes] [--json]`.

use std::process::ExitCode;

use clap::Parser;
use redrive::aws::SqsQueue;
use redrive::parked::{Filter, ProductFunctions};
use redrive::run::{redrive, Fate, Line};
use shared::app::stack::{required_output, FAILURE_QUEUE_OUTPUT, FUNCTION_OUTPUTS};
use shared::edge::cli::usage_error;
use shared::ports::StackOutputs;

const AFTER_HELP: &str = "\
Without --yes nothing changes: every message is listed and left in the queue, visible.
With --yes each selected event is invoked again (synchronously) in the function it failed in,
and its message is deleted only once that invocation succeeded. A message that fails again,
cannot be read or is left out by a filter stays in the queue.

Only the product's own functions are ever invoked (--product-function: the stack outputs
OwnerTaggerFunctionArn and SessionPolicyFunctionArn), and only from a Lambda on-failure record
or an EventBridge dead letter. A message naming any other function is refused, reported and
kept: whoever could write to the queue must not choose what an operator's redrive invokes.

--stack NAME takes the queue and the product's functions from the deployed stack's outputs
(FailureQueueUrl, OwnerTaggerFunctionArn, SessionPolicyFunctionArn) instead.

Credentials, region and endpoint come from the SDK's environment (AWS_PROFILE, AWS_REGION,
AWS_ENDPOINT_URL). The role needs the template's RedrivePolicy (stack output RedrivePolicyArn).

Exit status: 0 nothing failed (a dry run, or every selected event redriven); 1 some event
failed again, could not be invoked, could not be read, or was refused; 2 a usage, configuration or AWS
error.";

/// List the events parked in FailureQueue and, with --yes, send them back to their function.
#[derive(Parser, Debug)]
#[command(name = "redrive", version, after_help = AFTER_HELP)]
struct Args {
    /// Take the queue and the product's functions from this deployed stack's outputs.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["queue_url", "product_functions"])]
    stack: Option<String>,
    /// The queue (stack output FailureQueueUrl).
    #[arg(long, env = "FAILURE_QUEUE_URL", required_unless_present = "stack")]
    queue_url: Option<String>,
    /// A function of the product, by ARN (stack outputs OwnerTaggerFunctionArn and
    /// SessionPolicyFunctionArn); repeatable or comma-separated. Nothing else is invoked.
    #[arg(
        long = "product-function",
        value_name = "ARN",
        env = "PRODUCT_FUNCTION_ARNS",
        value_delimiter = ',',
        required_unless_present = "stack"
    )]
    product_functions: Vec<String>,
    /// Only events of functions whose name contains this (any case); repeatable.
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

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let sdk = shared::aws::sdk_loader().load().await;
    let (queue_url, product_functions) = match &args.stack {
        Some(stack) => match from_stack(&sdk, stack).await {
            Ok(found) => found,
            Err(err) => {
                eprintln!("redrive: cannot read the stack: {err} ({})", err.kind());
                return ExitCode::from(2);
            }
        },
        None => (
            args.queue_url.clone().unwrap_or_default(),
            args.product_functions.clone(),
        ),
    };
    if !queue_url.starts_with("https://") && !queue_url.starts_with("http://") {
        return usage_error(
            "redrive",
            format!("--queue-url {queue_url:?} is not a queue URL"),
        );
    }
    let product = match ProductFunctions::parse(&product_functions) {
        Ok(product) => product,
        Err(why) => return usage_error("redrive", format!("--product-function: {why}")),
    };
    let queue = SqsQueue {
        client: aws_sdk_sqs::Client::new(&sdk),
        url: queue_url,
    };
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let filter = Filter {
        functions: args.functions.clone(),
        error_types: args.error_types.clone(),
    };
    let lines = match redrive(&queue, &lambda, &product, &filter, args.yes).await {
        Ok(lines) => lines,
        Err(err) => {
            eprintln!("redrive: {err} ({})", err.kind());
            return ExitCode::from(2);
        }
    };
    print(&lines, args.json, args.yes);
    let failed = lines.iter().any(|l| {
        matches!(
            l.fate,
            Fate::FailedAgain { .. }
                | Fate::NotInvoked { .. }
                | Fate::Unreadable { .. }
                | Fate::Refused { .. }
        )
    });
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// The queue and the product's functions, from a deployed stack's outputs.
async fn from_stack(
    sdk: &aws_config::SdkConfig,
    stack: &str,
) -> Result<(String, Vec<String>), shared::Error> {
    let outputs = aws_sdk_cloudformation::Client::new(sdk)
        .outputs(stack)
        .await?;
    let output = |key: &str| required_output(stack, &outputs, key).map(str::to_owned);
    let queue = output(FAILURE_QUEUE_OUTPUT)?;
    let functions = FUNCTION_OUTPUTS
        .iter()
        .map(|key| output(key))
        .collect::<Result<Vec<_>, _>>()?;
    eprintln!(
        "redrive: configured from stack {stack}: {queue}, {}",
        functions.join(", ")
    );
    Ok((queue, functions))
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
        "{:<38} {:<36} {:<28} {:<12} {:<26} result",
        "message", "function", "event", "error type", "failed at"
    );
    for line in lines {
        let (function, event, error, at) = match &line.parked {
            Some(p) => (
                p.function.as_str(),
                format!("{} {}", p.detail_type, p.event_id),
                p.error_type.as_str(),
                p.failed_at.as_str(),
            ),
            None => ("-", "-".to_owned(), "-", "-"),
        };
        let result = match &line.fate {
            Fate::Listed => "parked (dry run: add --yes to redrive)".to_owned(),
            Fate::LeftOut => "parked (left out by the filters)".to_owned(),
            Fate::Redriven => "redriven, message deleted".to_owned(),
            Fate::FailedAgain {
                error_type,
                message,
            } => {
                format!("failed again ({error_type}: {message}); kept")
            }
            Fate::NotInvoked { error } => format!("not invoked ({error}); kept"),
            Fate::Unreadable { reason } => format!("unreadable ({reason}); kept"),
            Fate::Refused { reason } => format!("refused ({reason}); kept"),
        };
        println!(
            "{:<38} {function:<36} {event:<28} {error:<12} {at:<26} {result}",
            line.message_id
        );
    }
    let redriven = lines.iter().filter(|l| l.fate == Fate::Redriven).count();
    if applied {
        println!("\n{redriven} of {} redriven", lines.len());
    } else {
        println!("\n{} parked; dry run, nothing changed", lines.len());
    }
}
