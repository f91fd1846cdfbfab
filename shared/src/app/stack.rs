//! `--stack NAME`: the operators' tools (doctor, capacity, redrive) configure themselves from a
//! deployed stack instead of from environment variables the operator would have to copy: the
//! stack's outputs name the functions and the failure queue, and the session-policy function's
//! environment is the product's configuration as deployed (the template gives both functions
//! every setting, the doctor's included).

use std::collections::BTreeMap;

use crate::error::Error;
use crate::ports::{FunctionEnvironment, StackOutputs};

/// The output naming the function whose environment is the deployed configuration.
pub const CONFIGURED_FUNCTION_OUTPUT: &str = "SessionPolicyFunctionArn";
/// The output naming the failure queue, for redrive.
pub const FAILURE_QUEUE_OUTPUT: &str = "FailureQueueUrl";
/// The output naming each forwarder region's dead-letter queue, for redrive.
pub const FORWARDER_DEAD_LETTERS_OUTPUT: &str = "ForwarderDeadLettersName";

/// What a deployed stack says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub stack: String,
    /// The function whose environment was read.
    pub function_arn: String,
    pub environment: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
}

impl Deployed {
    /// A configuration variable: the deployed function's value, else `process`'s (the SDK's
    /// region, credentials and endpoint, and anything the deployment does not set).
    pub fn lookup(&self, key: &str, process: impl Fn(&str) -> Option<String>) -> Option<String> {
        self.environment.get(key).cloned().or_else(|| process(key))
    }

    /// An output the product's template always has.
    pub fn output(&self, key: &str) -> Result<&str, Error> {
        required_output(&self.stack, &self.outputs, key)
    }

    /// One line for a report: what the tool was configured from.
    pub fn describe(&self) -> String {
        format!(
            "configured from stack {} (the environment of {})",
            self.stack, self.function_arn
        )
    }
}

/// An output of `stack` that the product's template always has; missing, the stack is not the
/// product's.
pub fn required_output<'a>(
    stack: &str,
    outputs: &'a BTreeMap<String, String>,
    key: &str,
) -> Result<&'a str, Error> {
    outputs
        .get(key)
        .map(String::as_str)
        .ok_or_else(|| Error::NotAProductStack {
            stack: stack.to_owned(),
            output: key.to_owned(),
        })
}

/// Read a deployed stack: its outputs, then the environment of its session-policy function.
pub async fn deployed<S: StackOutputs, F: FunctionEnvironment>(
    stack: &str,
    cloudformation: &S,
    lambda: &F,
) -> Result<Deployed, Error> {
    let outputs = cloudformation.outputs(stack).await?;
    let function_arn = required_output(stack, &outputs, CONFIGURED_FUNCTION_OUTPUT)?.to_owned();
    let environment = lambda.environment(&function_arn).await?;
    Ok(Deployed {
        stack: stack.to_owned(),
        function_arn,
        environment,
        outputs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Stack(Option<BTreeMap<String, String>>);

    impl StackOutputs for Stack {
        async fn outputs(&self, stack: &str) -> Result<BTreeMap<String, String>, Error> {
            self.0.clone().ok_or_else(|| Error::Aws {
                operation: "cloudformation:DescribeStacks",
                code: "ValidationError".into(),
                message: format!("Stack with id {stack} does not exist"),
                retryable: false,
            })
        }
    }

    struct Function(BTreeMap<String, String>);

    impl FunctionEnvironment for Function {
        async fn environment(&self, arn: &str) -> Result<BTreeMap<String, String>, Error> {
            assert_eq!(arn, "arn:aws:lambda:us-east-1:123456789012:function:sp");
            Ok(self.0.clone())
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[tokio::test]
    async fn the_deployed_functions_environment_wins_and_the_process_fills_the_rest() {
        // GIVEN a stack whose session-policy function carries the configuration
        let stack = Stack(Some(map(&[
            (
                CONFIGURED_FUNCTION_OUTPUT,
                "arn:aws:lambda:us-east-1:123456789012:function:sp",
            ),
            (FAILURE_QUEUE_OUTPUT, "https://sqs/q"),
        ])));
        let function = Function(map(&[
            ("SESSION_ROLE_NAME", "Okta-ServiceWorkbenchUser"),
            ("PERMISSION_SET_NAME", ""),
        ]));
        // WHEN it is read
        let found = deployed("ssm-session-owner", &stack, &function)
            .await
            .unwrap();
        // THEN the function's values win over the process's, and the process supplies the rest
        let process = |key: &str| Some(format!("process {key}"));
        assert_eq!(
            found.lookup("SESSION_ROLE_NAME", process).as_deref(),
            Some("Okta-ServiceWorkbenchUser")
        );
        assert_eq!(
            found.lookup("PERMISSION_SET_NAME", process).as_deref(),
            Some("")
        );
        assert_eq!(
            found.lookup("AWS_REGION", process).as_deref(),
            Some("process AWS_REGION")
        );
        assert_eq!(found.output(FAILURE_QUEUE_OUTPUT).unwrap(), "https://sqs/q");
        assert_eq!(
            found.describe(),
            "configured from stack ssm-session-owner (the environment of arn:aws:lambda:us-east-1:123456789012:function:sp)"
        );
    }

    #[tokio::test]
    async fn a_stack_that_is_not_the_products_or_does_not_exist_is_a_clear_permanent_error() {
        let function = Function(BTreeMap::new());
        let other = Stack(Some(map(&[("BucketName", "x")])));
        let err = deployed("web", &other, &function).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "the stack web has no output SessionPolicyFunctionArn: is it an ssm-session-owner stack (template.yaml)?"
        );
        assert_eq!(err.kind(), "Permanent");
        let missing = Stack(None);
        let err = deployed("gone", &missing, &function).await.unwrap_err();
        assert_eq!(err.aws_code(), Some("ValidationError"));
        assert_eq!(err.kind(), "Permanent");
    }
}
