//! The redrive use case, against two small ports: read every parked message, show it, and on
//! request send each selected event back to its function, deleting the message only after the
//! new invocation succeeded. Nothing else is ever deleted: an unreadable message, an event the
//! filters leave out and an invocation that fails again all stay in the queue, visible again
//! at the end of the run.

use std::future::Future;

use serde::Serialize;
use shared::Error;

use crate::parked::{self, Filter, Message, Parked, ProductFunctions};

/// The queue the failed events are parked in.
pub trait ParkedQueue {
    /// Up to 10 messages, hidden from other readers for the run.
    fn receive(&self) -> impl Future<Output = Result<Vec<Message>, Error>> + Send;
    fn delete(&self, receipt: &str) -> impl Future<Output = Result<(), Error>> + Send;
    /// Make a message visible again now.
    fn release(&self, receipt: &str) -> impl Future<Output = Result<(), Error>> + Send;
}

/// What an invocation of a function answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invoked {
    Succeeded,
    /// The function ran and returned an error (`errorType`, `errorMessage`).
    FunctionError {
        error_type: String,
        message: String,
    },
}

/// Invoke a function synchronously with an event.
pub trait Invoker {
    fn invoke(
        &self,
        function_arn: &str,
        event: &serde_json::Value,
    ) -> impl Future<Output = Result<Invoked, Error>> + Send;
}

/// What happened to one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Fate {
    /// Listed only (a dry run, or left out by the filters); still in the queue.
    Listed,
    LeftOut,
    /// Invoked successfully and deleted from the queue.
    Redriven,
    /// Invoked, failed again; still in the queue.
    FailedAgain {
        error_type: String,
        message: String,
    },
    /// Could not be invoked (an AWS error); still in the queue.
    NotInvoked {
        error: String,
    },
    /// Not a message this tool can read; still in the queue.
    Unreadable {
        reason: String,
    },
    /// Readable, but not the product's to redrive (another function); still in the queue.
    Refused {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub message_id: String,
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub parked: Option<Parked>,
    #[serde(flatten)]
    pub fate: Fate,
}

/// At most this many messages are read in one run (the queue holds them 14 days).
pub const MAX_MESSAGES: usize = 10_000;

/// Read every parked message; with `apply`, redrive the selected ones. Every message not
/// deleted is released before returning, also when a step fails.
pub async fn redrive<Q: ParkedQueue + Sync, I: Invoker + Sync>(
    queue: &Q,
    invoker: &I,
    product: &ProductFunctions,
    filter: &Filter,
    apply: bool,
) -> Result<Vec<Line>, Error> {
    let mut held: Vec<Message> = Vec::new();
    let result = run(queue, invoker, product, filter, apply, &mut held).await;
    // Whatever happened, nothing read stays hidden: a dry run changes nothing.
    let mut release_error = None;
    for message in &held {
        if let Err(err) = queue.release(&message.receipt).await {
            release_error.get_or_insert(err);
        }
    }
    let lines = result?;
    match release_error {
        Some(err) => Err(err),
        None => Ok(lines),
    }
}

async fn run<Q: ParkedQueue + Sync, I: Invoker + Sync>(
    queue: &Q,
    invoker: &I,
    product: &ProductFunctions,
    filter: &Filter,
    apply: bool,
    held: &mut Vec<Message>,
) -> Result<Vec<Line>, Error> {
    loop {
        let batch = queue.receive().await?;
        if batch.is_empty() {
            break;
        }
        // Held (and so released at the end) before anything else can fail.
        held.extend(batch);
        if held.len() >= MAX_MESSAGES {
            break;
        }
    }
    let mut lines = Vec::new();
    for message in held.clone() {
        let read = parked::read(&message);
        let fate = match &read {
            Err(reason) => Fate::Unreadable {
                reason: reason.clone(),
            },
            Ok(parked) => match product.refuses(parked) {
                Some(reason) => Fate::Refused { reason },
                None if !filter.selects(parked) => Fate::LeftOut,
                None if !apply => Fate::Listed,
                None => match invoker.invoke(&parked.function_arn, &parked.event).await {
                    Ok(Invoked::Succeeded) => {
                        queue.delete(&message.receipt).await?;
                        held.retain(|m| m.receipt != message.receipt);
                        Fate::Redriven
                    }
                    Ok(Invoked::FunctionError {
                        error_type,
                        message,
                    }) => Fate::FailedAgain {
                        error_type,
                        message,
                    },
                    Err(err) => Fate::NotInvoked {
                        error: format!("{err} ({})", err.kind()),
                    },
                },
            },
        };
        lines.push(Line {
            message_id: message.id.clone(),
            parked: read.ok(),
            fate,
        });
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;
    use crate::parked::tests_support::destination_record;

    /// An in-memory queue: messages, which are hidden, and what was deleted.
    #[derive(Default)]
    pub struct FakeQueue {
        pub messages: Mutex<Vec<(Message, bool)>>,
        pub deleted: Mutex<Vec<String>>,
    }

    impl FakeQueue {
        fn with(bodies: &[String]) -> Self {
            let queue = FakeQueue::default();
            for (n, body) in bodies.iter().enumerate() {
                queue.messages.lock().unwrap().push((
                    Message {
                        id: format!("m-{n}"),
                        receipt: format!("r-{n}"),
                        body: body.clone(),
                        attributes: BTreeMap::new(),
                        sent_at_ms: None,
                    },
                    false,
                ));
            }
            queue
        }

        fn visible(&self) -> usize {
            self.messages
                .lock()
                .unwrap()
                .iter()
                .filter(|(_, hidden)| !hidden)
                .count()
        }
    }

    impl ParkedQueue for FakeQueue {
        async fn receive(&self) -> Result<Vec<Message>, Error> {
            let mut messages = self.messages.lock().unwrap();
            Ok(messages
                .iter_mut()
                .filter(|(_, hidden)| !hidden)
                .take(10)
                .map(|(m, hidden)| {
                    *hidden = true;
                    m.clone()
                })
                .collect())
        }

        async fn delete(&self, receipt: &str) -> Result<(), Error> {
            self.messages
                .lock()
                .unwrap()
                .retain(|(m, _)| m.receipt != receipt);
            self.deleted.lock().unwrap().push(receipt.to_owned());
            Ok(())
        }

        async fn release(&self, receipt: &str) -> Result<(), Error> {
            for (m, hidden) in self.messages.lock().unwrap().iter_mut() {
                if m.receipt == receipt {
                    *hidden = false;
                }
            }
            Ok(())
        }
    }

    /// Succeeds for functions whose name contains `-ok-`; records what it was sent.
    #[derive(Default)]
    struct FakeInvoker {
        sent: Mutex<Vec<(String, serde_json::Value)>>,
    }

    impl Invoker for FakeInvoker {
        async fn invoke(&self, arn: &str, event: &serde_json::Value) -> Result<Invoked, Error> {
            self.sent
                .lock()
                .unwrap()
                .push((arn.to_owned(), event.clone()));
            if arn.contains("-ok-") {
                Ok(Invoked::Succeeded)
            } else {
                Ok(Invoked::FunctionError {
                    error_type: "Permanent".into(),
                    message: "still broken".into(),
                })
            }
        }
    }

    /// The product's functions as the tests' records name them.
    fn product() -> ProductFunctions {
        let mut arns: Vec<String> = (0..12)
            .map(|n| format!("arn:aws:lambda:us-east-1:123456789012:function:fn-ok-{n}"))
            .collect();
        arns.push("arn:aws:lambda:us-east-1:123456789012:function:fn-failing".into());
        ProductFunctions::parse(&arns).unwrap()
    }

    fn parked_queue() -> FakeQueue {
        let mut bodies: Vec<String> = (0..12)
            .map(|n| destination_record(&format!("fn-ok-{n}"), "Retryable"))
            .collect();
        bodies.push(destination_record("fn-failing", "Permanent"));
        bodies.push("garbage".into());
        FakeQueue::with(&bodies)
    }

    #[tokio::test]
    async fn a_dry_run_lists_everything_and_leaves_every_message_visible() {
        let queue = parked_queue();
        let invoker = FakeInvoker::default();
        let lines = redrive(&queue, &invoker, &product(), &Filter::default(), false)
            .await
            .unwrap();
        assert_eq!(lines.len(), 14);
        assert_eq!(lines.iter().filter(|l| l.fate == Fate::Listed).count(), 13);
        assert!(matches!(lines[13].fate, Fate::Unreadable { .. }));
        assert!(invoker.sent.lock().unwrap().is_empty());
        assert!(queue.deleted.lock().unwrap().is_empty());
        assert_eq!(queue.visible(), 14);
    }

    #[tokio::test]
    async fn with_yes_a_message_goes_only_after_its_event_succeeded_again() {
        let queue = parked_queue();
        let invoker = FakeInvoker::default();
        let lines = redrive(&queue, &invoker, &product(), &Filter::default(), true)
            .await
            .unwrap();
        assert_eq!(
            lines.iter().filter(|l| l.fate == Fate::Redriven).count(),
            12
        );
        assert_eq!(
            lines[12].fate,
            Fate::FailedAgain {
                error_type: "Permanent".into(),
                message: "still broken".into()
            }
        );
        // The broken one and the unreadable one stay, visible again.
        assert_eq!(queue.visible(), 2);
        assert_eq!(queue.deleted.lock().unwrap().len(), 12);
        // The original event went back, to the unqualified function ARN.
        let sent = invoker.sent.lock().unwrap();
        assert_eq!(
            sent[0].0,
            "arn:aws:lambda:us-east-1:123456789012:function:fn-ok-0"
        );
        assert_eq!(sent[0].1["detail-type"], "Tag Change on Resource");
    }

    #[tokio::test]
    async fn filters_leave_the_other_messages_alone() {
        let queue = parked_queue();
        let invoker = FakeInvoker::default();
        let filter = Filter {
            functions: vec!["failing".into()],
            error_types: vec![],
        };
        let lines = redrive(&queue, &invoker, &product(), &filter, true)
            .await
            .unwrap();
        assert_eq!(lines.iter().filter(|l| l.fate == Fate::LeftOut).count(), 12);
        assert_eq!(invoker.sent.lock().unwrap().len(), 1);
        assert_eq!(queue.visible(), 14);
    }

    #[tokio::test]
    async fn a_message_naming_another_function_is_refused_never_invoked_and_kept() {
        // GIVEN a real parked event and a forged one that names a function of somebody else's
        let queue = FakeQueue::with(&[
            destination_record("fn-ok-0", "Retryable"),
            destination_record("planted", "Retryable"),
        ]);
        let invoker = FakeInvoker::default();
        // WHEN an operator redrives everything
        let lines = redrive(&queue, &invoker, &product(), &Filter::default(), true)
            .await
            .unwrap();
        // THEN the real one is redriven, the forged one is refused with the reason and kept
        assert_eq!(lines[0].fate, Fate::Redriven);
        let Fate::Refused { reason } = &lines[1].fate else {
            panic!("{:?}", lines[1].fate);
        };
        assert!(reason.starts_with("it names arn:aws:lambda:us-east-1:123456789012:function:planted, which is not one of the product's functions"), "{reason}");
        let sent = invoker.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert!(sent[0].0.ends_with(":function:fn-ok-0"));
        assert_eq!(queue.visible(), 1);
    }
}
