//! CloudFormation and Lambda, read only, for `--stack NAME` (the operators' tools): a stack's
//! outputs and a function's environment. Behind the `stack` feature, so that the functions do
//! not link these clients.

use std::collections::BTreeMap;

use tracing::instrument;

use super::sdk_error::from_sdk;
use crate::error::Error;
use crate::ports::{FunctionEnvironment, StackOutputs};

const DESCRIBE_STACKS: &str = "cloudformation:DescribeStacks";
const GET_FUNCTION_CONFIGURATION: &str = "lambda:GetFunctionConfiguration";

impl StackOutputs for aws_sdk_cloudformation::Client {
    #[instrument(skip(self))]
    async fn outputs(&self, stack: &str) -> Result<BTreeMap<String, String>, Error> {
        let answer = self
            .describe_stacks()
            .stack_name(stack)
            .send()
            .await
            .map_err(|e| from_sdk(DESCRIBE_STACKS, e))?;
        let [found] = answer.stacks() else {
            return Err(Error::unreadable(
                DESCRIBE_STACKS,
                format!("exactly one stack named {stack}"),
            ));
        };
        let mut outputs = BTreeMap::new();
        for output in found.outputs() {
            let key = output
                .output_key()
                .ok_or_else(|| Error::unreadable(DESCRIBE_STACKS, "an output's key"))?;
            let value = output.output_value().ok_or_else(|| {
                Error::unreadable(DESCRIBE_STACKS, format!("the value of output {key}"))
            })?;
            outputs.insert(key.to_owned(), value.to_owned());
        }
        Ok(outputs)
    }
}

impl FunctionEnvironment for aws_sdk_lambda::Client {
    #[instrument(skip(self))]
    async fn environment(&self, function_arn: &str) -> Result<BTreeMap<String, String>, Error> {
        let answer = self
            .get_function_configuration()
            .function_name(function_arn)
            .send()
            .await
            .map_err(|e| from_sdk(GET_FUNCTION_CONFIGURATION, e))?;
        // The template gives every function its configuration: none at all is an answer this
        // cannot read, never "the defaults".
        let variables = answer
            .environment()
            .and_then(|e| e.variables())
            .ok_or_else(|| {
                Error::unreadable(
                    GET_FUNCTION_CONFIGURATION,
                    format!("the environment variables of {function_arn}"),
                )
            })?;
        Ok(variables
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}

/// Why an operator's tool has no configuration.
#[derive(Debug, thiserror::Error)]
pub enum ToolConfigError {
    #[error("invalid configuration: {0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot read the stack: {0} ({kind})", kind = .0.kind())]
    Stack(#[from] Error),
}

/// The configuration of an operator's tool: from the deployed stack `stack` (its session-policy
/// function's environment, the process's environment for the rest), or, without one, from the
/// process's environment as the functions read theirs.
pub async fn tool_config(
    stack: Option<&str>,
) -> Result<(crate::Config, Option<crate::app::stack::Deployed>), ToolConfigError> {
    let Some(stack) = stack else {
        return Ok((crate::Config::from_env()?, None));
    };
    let sdk = super::sdk_loader().load().await;
    let cloudformation = aws_sdk_cloudformation::Client::new(&sdk);
    let lambda = aws_sdk_lambda::Client::new(&sdk);
    let deployed = crate::app::stack::deployed(stack, &cloudformation, &lambda).await?;
    let config =
        crate::Config::from_lookup(|key| deployed.lookup(key, |key| std::env::var(key).ok()))?;
    Ok((config, Some(deployed)))
}

/// [`tool_config`] for a tool's `main`: on an error, says it as `<tool>: …` on standard error
/// and gives the exit status 2; otherwise says which stack it was configured from, if any.
pub async fn tool_config_or_exit(
    tool: &str,
    stack: Option<&str>,
) -> Result<crate::Config, std::process::ExitCode> {
    match tool_config(stack).await {
        Ok((config, deployed)) => {
            if let Some(deployed) = deployed {
                eprintln!("{tool}: {}", deployed.describe());
            }
            Ok(config)
        }
        Err(err) => {
            eprintln!("{tool}: {err}");
            Err(std::process::ExitCode::from(2))
        }
    }
}
