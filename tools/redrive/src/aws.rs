//! The adapters: SQS for the queue, Lambda for the invocations.
//!
//! moto serves SQS (the tests run this adapter against it); moto's Lambda runs functions only in
//! Docker, which the tests do not have, so the Lambda adapter's answers are covered with
//! aws-smithy-mocks, and against moto only its "no such function" answer.

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use shared::aws::from_sdk;
use shared::Error;

use crate::parked::Message;
use crate::run::{Invoked, Invoker, ParkedQueue};

/// Seconds a message read by a run stays hidden from other readers; every message the run does
/// not delete is made visible again at its end.
const HIDE_FOR_SECONDS: i32 = 900;

pub struct SqsQueue {
    pub client: aws_sdk_sqs::Client,
    pub url: String,
    /// How the listing names it.
    pub name: String,
}

impl SqsQueue {
    /// The home region's `FailureQueue`.
    pub fn failure_queue(client: aws_sdk_sqs::Client, url: String) -> Self {
        Self {
            client,
            url,
            name: "FailureQueue".into(),
        }
    }

    /// The forwarder's dead-letter queue `queue_name` in `region`; `None` when the region has
    /// no such queue (no forwarder there, or one with another `RuleNamePrefix`).
    pub async fn forwarder(
        sdk: &aws_config::SdkConfig,
        region: &str,
        queue_name: &str,
    ) -> Result<Option<Self>, Error> {
        let config = aws_sdk_sqs::config::Builder::from(sdk)
            .region(aws_config::Region::new(region.to_owned()))
            .build();
        let client = aws_sdk_sqs::Client::from_conf(config);
        let answer = client.get_queue_url().queue_name(queue_name).send().await;
        let url = match answer {
            Ok(output) => output
                .queue_url()
                .ok_or_else(|| Error::unreadable("sqs:GetQueueUrl", "QueueUrl"))?
                .to_owned(),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_queue_does_not_exist()) =>
            {
                return Ok(None)
            }
            Err(err) => return Err(from_sdk("sqs:GetQueueUrl", err)),
        };
        Ok(Some(Self {
            client,
            url,
            name: format!("forwarder {region}"),
        }))
    }

    /// Messages waiting (visible), as SQS approximates it.
    pub async fn waiting(&self) -> Result<u64, Error> {
        const OPERATION: &str = "sqs:GetQueueAttributes";
        let output = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| from_sdk(OPERATION, e))?;
        output
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessages))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::unreadable(OPERATION, "ApproximateNumberOfMessages"))
    }
}

impl ParkedQueue for SqsQueue {
    fn name(&self) -> &str {
        &self.name
    }

    async fn receive(&self) -> Result<Vec<Message>, Error> {
        const OPERATION: &str = "sqs:ReceiveMessage";
        let output = self
            .client
            .receive_message()
            .queue_url(&self.url)
            .max_number_of_messages(10)
            .visibility_timeout(HIDE_FOR_SECONDS)
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| from_sdk(OPERATION, e))?;
        output
            .messages()
            .iter()
            .map(|m| {
                let missing =
                    |what: &str| Error::unreadable(OPERATION, format!("a message's {what}"));
                Ok(Message {
                    id: m.message_id().ok_or_else(|| missing("id"))?.to_owned(),
                    receipt: m
                        .receipt_handle()
                        .ok_or_else(|| missing("receipt handle"))?
                        .to_owned(),
                    body: m.body().ok_or_else(|| missing("body"))?.to_owned(),
                    attributes: m
                        .message_attributes()
                        .map(|attributes| {
                            attributes
                                .iter()
                                .filter_map(|(k, v)| {
                                    Some((k.clone(), v.string_value()?.to_owned()))
                                })
                                .collect()
                        })
                        .unwrap_or_default(),
                    sent_at_ms: m
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
                        .and_then(|t| t.parse().ok()),
                })
            })
            .collect()
    }

    async fn delete(&self, receipt: &str) -> Result<(), Error> {
        self.client
            .delete_message()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| from_sdk("sqs:DeleteMessage", e))?;
        Ok(())
    }

    async fn release(&self, receipt: &str) -> Result<(), Error> {
        self.client
            .change_message_visibility()
            .queue_url(&self.url)
            .receipt_handle(receipt)
            .visibility_timeout(0)
            .send()
            .await
            .map_err(|e| from_sdk("sqs:ChangeMessageVisibility", e))?;
        Ok(())
    }
}

impl Invoker for aws_sdk_lambda::Client {
    async fn invoke(
        &self,
        function_arn: &str,
        event: &serde_json::Value,
    ) -> Result<Invoked, Error> {
        const OPERATION: &str = "lambda:Invoke";
        let payload = serde_json::to_vec(event).map_err(|e| Error::Unsupported {
            message: format!("the event cannot be written as JSON: {e}"),
        })?;
        let output = self
            .invoke()
            .function_name(function_arn)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|e| from_sdk(OPERATION, e))?;
        let Some(kind) = output.function_error() else {
            return Ok(Invoked::Succeeded);
        };
        // The function's error payload: {"errorType": ..., "errorMessage": ...}.
        let answer: serde_json::Value = output
            .payload()
            .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
            .unwrap_or_default();
        let field = |name: &str| answer.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        Ok(Invoked::FunctionError {
            error_type: field("errorType").unwrap_or_else(|| kind.to_owned()),
            message: field("errorMessage").unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_lambda::operation::invoke::{InvokeError, InvokeOutput};
    use aws_sdk_lambda::types::error::{ResourceNotFoundException, TooManyRequestsException};
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::*;

    fn code(code: &str) -> aws_smithy_types::error::ErrorMetadata {
        aws_smithy_types::error::ErrorMetadata::builder()
            .code(code)
            .build()
    }

    fn event() -> serde_json::Value {
        serde_json::json!({"id": "e1", "detail-type": "Scheduled Event"})
    }

    #[tokio::test]
    async fn an_answer_without_a_function_error_is_a_success() {
        let ok = mock!(aws_sdk_lambda::Client::invoke)
            .match_requests(|r| {
                r.function_name() == Some("arn:aws:lambda:us-east-1:1:function:f")
                    && r.invocation_type() == Some(&InvocationType::RequestResponse)
                    && r.payload().map(|p| p.as_ref().to_vec())
                        == Some(serde_json::to_vec(&event()).unwrap())
            })
            .then_output(|| InvokeOutput::builder().status_code(200).build());
        let client = mock_client!(aws_sdk_lambda, RuleMode::Sequential, [&ok]);
        let answer =
            Invoker::invoke(&client, "arn:aws:lambda:us-east-1:1:function:f", &event()).await;
        assert_eq!(answer.unwrap(), Invoked::Succeeded);
    }

    #[tokio::test]
    async fn a_function_error_carries_the_functions_error_type_and_message() {
        let failed = mock!(aws_sdk_lambda::Client::invoke).then_output(|| {
            InvokeOutput::builder()
                .status_code(200)
                .function_error("Unhandled")
                .payload(Blob::new(
                    br#"{"errorType":"Permanent","errorMessage":"session policy budget full"}"#
                        .to_vec(),
                ))
                .build()
        });
        let client = mock_client!(aws_sdk_lambda, RuleMode::Sequential, [&failed]);
        let answer =
            Invoker::invoke(&client, "arn:aws:lambda:us-east-1:1:function:f", &event()).await;
        assert_eq!(
            answer.unwrap(),
            Invoked::FunctionError {
                error_type: "Permanent".into(),
                message: "session policy budget full".into()
            }
        );
    }

    #[tokio::test]
    async fn a_missing_function_is_permanent_and_throttling_retryable() {
        let missing = mock!(aws_sdk_lambda::Client::invoke).then_error(|| {
            InvokeError::ResourceNotFoundException(
                ResourceNotFoundException::builder()
                    .message("Function not found")
                    .meta(code("ResourceNotFoundException"))
                    .build(),
            )
        });
        let busy = mock!(aws_sdk_lambda::Client::invoke).then_error(|| {
            InvokeError::TooManyRequestsException(
                TooManyRequestsException::builder()
                    .message("Rate exceeded")
                    .meta(code("TooManyRequestsException"))
                    .build(),
            )
        });
        let client = mock_client!(aws_sdk_lambda, RuleMode::Sequential, [&missing, &busy]);
        let err = Invoker::invoke(&client, "arn:aws:lambda:us-east-1:1:function:f", &event())
            .await
            .unwrap_err();
        assert!(!err.is_retryable(), "{err}");
        let err = Invoker::invoke(&client, "arn:aws:lambda:us-east-1:1:function:f", &event())
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err}");
    }
}
