//! The redrive use case, against two small ports: read every parked message of each queue (the
//! home `FailureQueue`, then each forwarder region's dead letters), show it, and on request send
//! each selected event to the function or functions it belongs to, deleting the message only
//! after every new invocation succeeded. Nothing else is ever deleted: an unreadable or refused
//! message, an event the filters leave out and an invocation that fails again all stay in the
//! queue, visible again at the end of the run.

use std::future::Future;

use serde::Serialize;
use shared::Error;

use crate::parked::{self, function_name, Filter, Message, Product};

/// A queue the failed events are parked in.
pub trait ParkedQueue {
    /// How the listing names it (`FailureQueue`, `forwarder eu-west-1`).
    fn name(&self) -> &str;
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
    /// Invoked successfully (in every function it goes to) and deleted from the queue.
    Redriven,
    /// Invoked, failed again in `function`; still in the queue. An event that goes to two
    /// functions stops at the first failure; the next run sends it to both again (each
    /// function converges to what EC2 says, so a second delivery changes nothing).
    FailedAgain {
        function: String,
        error_type: String,
        message: String,
    },
    /// Could not be invoked in `function` (an AWS error); still in the queue.
    NotInvoked {
        function: String,
        error: String,
    },
    /// Not a message this tool can read; still in the queue.
    Unreadable {
        reason: String,
    },
    /// Readable, but not the product's to redrive (another function, bus or rule, or an event
    /// no home rule would take); still in the queue.
    Refused {
        reason: String,
    },
}

impl Fate {
    /// Whether this message is a failure of the run (exit status 1).
    pub fn failed(&self) -> bool {
        !matches!(self, Fate::Listed | Fate::LeftOut | Fate::Redriven)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    /// The queue it is parked in ([`ParkedQueue::name`]).
    pub queue: String,
    pub message_id: String,
    #[serde(skip_serializing_if = "Option::is_none", flatten)]
    pub parked: Option<parked::Parked>,
    /// The names of the functions it goes to, in order (none when refused or unreadable).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<String>,
    #[serde(flatten)]
    pub fate: Fate,
}

/// At most this many messages are read from one queue in one run (a queue holds them 14 days).
pub const MAX_MESSAGES: usize = 10_000;

/// Read every parked message of each queue in turn; with `apply`, redrive the selected ones.
/// Every message not deleted is released before returning, also when a step fails.
pub async fn redrive<Q: ParkedQueue + Sync, I: Invoker + Sync>(
    queues: &[Q],
    invoker: &I,
    product: &Product,
    filter: &Filter,
    apply: bool,
) -> Result<Vec<Line>, Error> {
    let mut lines = Vec::new();
    for queue in queues {
        let mut held: Vec<Message> = Vec::new();
        let result = run(queue, invoker, product, filter, apply, &mut held).await;
        // Whatever happened, nothing read stays hidden: a dry run changes nothing.
        let mut release_error = None;
        for message in &held {
            if let Err(err) = queue.release(&message.receipt).await {
                release_error.get_or_insert(err);
            }
        }
        lines.extend(result?);
        if let Some(err) = release_error {
            return Err(err);
        }
    }
    Ok(lines)
}

async fn run<Q: ParkedQueue + Sync, I: Invoker + Sync>(
    queue: &Q,
    invoker: &I,
    product: &Product,
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
        let routed = read.as_ref().map(|parked| product.route(parked));
        let functions = match &routed {
            Ok(Ok(functions)) => functions.clone(),
            _ => Vec::new(),
        };
        let fate = match (&read, routed) {
            (Err(reason), _) => Fate::Unreadable {
                reason: reason.clone(),
            },
            (_, Ok(Err(reason))) => Fate::Refused { reason },
            (Ok(parked), _) if !filter.selects(parked, &functions) => Fate::LeftOut,
            _ if !apply => Fate::Listed,
            (Ok(parked), _) => match invoke_all(invoker, &functions, &parked.event).await {
                Some(failure) => failure,
                None => {
                    queue.delete(&message.receipt).await?;
                    held.retain(|m| m.receipt != message.receipt);
                    Fate::Redriven
                }
            },
        };
        lines.push(Line {
            queue: queue.name().to_owned(),
            message_id: message.id.clone(),
            parked: read.ok(),
            functions: functions
                .iter()
                .map(|arn| function_name(arn).to_owned())
                .collect(),
            fate,
        });
    }
    Ok(lines)
}

/// Invoke each function in turn; the first failure, or `None` when every one succeeded.
async fn invoke_all<I: Invoker + Sync>(
    invoker: &I,
    functions: &[String],
    event: &serde_json::Value,
) -> Option<Fate> {
    for arn in functions {
        let function = function_name(arn).to_owned();
        match invoker.invoke(arn, event).await {
            Ok(Invoked::Succeeded) => {}
            Ok(Invoked::FunctionError {
                error_type,
                message,
            }) => {
                return Some(Fate::FailedAgain {
                    function,
                    error_type,
                    message,
                })
            }
            Err(err) => {
                return Some(Fate::NotInvoked {
                    function,
                    error: format!("{err} ({})", err.kind()),
                })
            }
        }
    }
    None
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
        pub name: String,
        pub messages: Mutex<Vec<(Message, bool)>>,
        pub deleted: Mutex<Vec<String>>,
    }

    impl FakeQueue {
        fn with(bodies: &[String]) -> Self {
            let with_attributes: Vec<(String, Vec<(&str, &str)>)> =
                bodies.iter().map(|b| (b.clone(), vec![])).collect();
            Self::named("FailureQueue", &with_attributes)
        }

        fn named(name: &str, messages: &[(String, Vec<(&str, &str)>)]) -> Self {
            let queue = FakeQueue {
                name: name.into(),
                ..FakeQueue::default()
            };
            for (n, (body, attributes)) in messages.iter().enumerate() {
                queue.messages.lock().unwrap().push((
                    Message {
                        id: format!("{name}-m-{n}"),
                        receipt: format!("{name}-r-{n}"),
                        body: body.clone(),
                        attributes: attributes
                            .iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect::<BTreeMap<_, _>>(),
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
        fn name(&self) -> &str {
            &self.name
        }

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

    const OWNER_TAGGER: &str =
        "arn:aws:lambda:us-east-1:123456789012:function:stack-ok-OwnerTagger";
    const SESSION_POLICY: &str =
        "arn:aws:lambda:us-east-1:123456789012:function:stack-SessionPolicy-failing";

    /// The product as the tests' records name it: the owner-tagger succeeds, the
    /// session-policy function fails.
    fn product() -> Product {
        Product::new(OWNER_TAGGER, SESSION_POLICY, "CreatedBy", "AwsUserId").unwrap()
    }

    /// Every message of `queue`, through `invoker`; with `apply`, redriven.
    async fn everything(queue: &FakeQueue, invoker: &FakeInvoker, apply: bool) -> Vec<Line> {
        redrive(
            std::slice::from_ref(queue),
            invoker,
            &product(),
            &Filter::default(),
            apply,
        )
        .await
        .unwrap()
    }

    fn parked_queue() -> FakeQueue {
        let mut bodies: Vec<String> = (0..12)
            .map(|_| destination_record("stack-ok-OwnerTagger", "Retryable"))
            .collect();
        bodies.push(destination_record(
            "stack-SessionPolicy-failing",
            "Permanent",
        ));
        bodies.push("garbage".into());
        FakeQueue::with(&bodies)
    }

    #[tokio::test]
    async fn a_dry_run_lists_everything_and_leaves_every_message_visible() {
        let queue = parked_queue();
        let invoker = FakeInvoker::default();
        let lines = everything(&queue, &invoker, false).await;
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
        let lines = everything(&queue, &invoker, true).await;
        assert_eq!(
            lines.iter().filter(|l| l.fate == Fate::Redriven).count(),
            12
        );
        assert_eq!(
            lines[12].fate,
            Fate::FailedAgain {
                function: "stack-SessionPolicy-failing".into(),
                error_type: "Permanent".into(),
                message: "still broken".into()
            }
        );
        // The broken one and the unreadable one stay, visible again.
        assert_eq!(queue.visible(), 2);
        assert_eq!(queue.deleted.lock().unwrap().len(), 12);
        // The original event went back, to the unqualified function ARN.
        let sent = invoker.sent.lock().unwrap();
        assert_eq!(sent[0].0, OWNER_TAGGER);
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
        let lines = redrive(
            std::slice::from_ref(&queue),
            &invoker,
            &product(),
            &filter,
            true,
        )
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
            destination_record("stack-ok-OwnerTagger", "Retryable"),
            destination_record("planted", "Retryable"),
        ]);
        let invoker = FakeInvoker::default();
        // WHEN an operator redrives everything
        let lines = everything(&queue, &invoker, true).await;
        // THEN the real one is redriven, the forged one is refused with the reason and kept
        assert_eq!(lines[0].fate, Fate::Redriven);
        let Fate::Refused { reason } = &lines[1].fate else {
            panic!("{:?}", lines[1].fate);
        };
        assert!(reason.starts_with("it names arn:aws:lambda:us-east-1:123456789012:function:planted, which is not one of the product's functions"), "{reason}");
        let sent = invoker.sent.lock().unwrap();
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0, OWNER_TAGGER);
        assert_eq!(queue.visible(), 1);
    }

    #[tokio::test]
    async fn a_forwarders_dead_letter_leaves_its_queue_only_once_every_home_function_took_it() {
        // GIVEN the home queue and a forwarder's, which holds two tag changes it could not
        // forward: the owner key alone, and both ownership keys
        let forwarded = |keys: &[&str]| {
            (
                serde_json::json!({"source": "aws.tag", "detail-type": "Tag Change on Resource",
                    "region": "eu-west-1", "detail": {"changed-tag-keys": keys}})
                .to_string(),
                vec![
                    (
                        "TARGET_ARN",
                        "arn:aws:events:us-east-1:123456789012:event-bus/default",
                    ),
                    (
                        "RULE_ARN",
                        "arn:aws:events:eu-west-1:123456789012:rule/p-forward-tag-changes",
                    ),
                ],
            )
        };
        let queues = [
            FakeQueue::with(&[destination_record("stack-ok-OwnerTagger", "Retryable")]),
            FakeQueue::named(
                "forwarder eu-west-1",
                &[
                    forwarded(&["CreatedBy"]),
                    forwarded(&["CreatedBy", "AwsUserId"]),
                ],
            ),
        ];
        let invoker = FakeInvoker::default();
        // WHEN an operator redrives everything
        let lines = redrive(&queues, &invoker, &product(), &Filter::default(), true)
            .await
            .unwrap();
        // THEN the home queue's event and the owner-key change are redriven and deleted
        let names: Vec<(&str, &Fate)> = lines.iter().map(|l| (l.queue.as_str(), &l.fate)).collect();
        assert_eq!(names[0], ("FailureQueue", &Fate::Redriven));
        assert_eq!(names[1], ("forwarder eu-west-1", &Fate::Redriven));
        assert_eq!(lines[1].functions, vec!["stack-ok-OwnerTagger"]);
        // AND the change of both keys went to the owner-tagger, then failed in the
        // session-policy function, so it stays in the forwarder's queue
        assert_eq!(
            lines[2].functions,
            vec!["stack-ok-OwnerTagger", "stack-SessionPolicy-failing"]
        );
        assert_eq!(
            lines[2].fate,
            Fate::FailedAgain {
                function: "stack-SessionPolicy-failing".into(),
                error_type: "Permanent".into(),
                message: "still broken".into()
            }
        );
        let sent: Vec<String> = invoker
            .sent
            .lock()
            .unwrap()
            .iter()
            .map(|(a, _)| a.clone())
            .collect();
        assert_eq!(
            sent,
            [OWNER_TAGGER, OWNER_TAGGER, OWNER_TAGGER, SESSION_POLICY]
        );
        assert_eq!(queues[0].visible(), 0);
        assert_eq!(queues[1].visible(), 1);
        assert_eq!(
            *queues[1].deleted.lock().unwrap(),
            ["forwarder eu-west-1-r-0"]
        );
    }
}
