//! The line `replay` prints for one event: one JSON object, read back by the benchmark, the
//! demo and the tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::outcome::{Outcome, Skipped};
use crate::domain::reason::{Reason, ReasonCode};
use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayLine {
    pub file: String,
    /// The function that handled the event, or `none`.
    pub function: String,
    /// `changed`, `unchanged`, `ignored` or `error`.
    pub outcome: String,
    pub reason: String,
    /// Why an ignored event was ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ReasonCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
    /// `Retryable` or `Permanent`, for an error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_type: Option<String>,
    /// AWS requests sent for this event, per `service:Operation`, retries included.
    #[serde(default)]
    pub calls: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unchanged: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<String>,
}

impl ReplayLine {
    /// The line for an event a function handled, or failed to.
    pub fn new(
        file: &str,
        function: &str,
        event_id: Option<String>,
        result: Result<Outcome, Error>,
        calls: BTreeMap<String, u64>,
    ) -> Self {
        match result {
            Ok(outcome) => Self {
                file: file.to_owned(),
                function: function.to_owned(),
                outcome: outcome.status.as_str().to_owned(),
                reason: outcome.reason,
                code: outcome.code,
                event_id,
                error_type: None,
                calls,
                changed: outcome.changed,
                unchanged: outcome.unchanged,
                skipped: outcome.skipped,
                planned: outcome.planned,
            },
            Err(err) => Self {
                outcome: "error".into(),
                reason: err.to_string(),
                error_type: Some(err.kind().to_owned()),
                ..Self::new(
                    file,
                    function,
                    event_id,
                    Ok(Outcome::empty(crate::Status::Ignored)),
                    calls,
                )
            },
        }
    }

    /// The line for an event no function handled.
    pub fn unhandled(file: &str, event_id: Option<String>, reason: Reason) -> Self {
        Self::new(
            file,
            "none",
            event_id,
            Ok(Outcome::ignored(reason)),
            BTreeMap::new(),
        )
    }

    /// The line for input that could not be read at all (a permanent failure).
    pub fn unreadable(file: &str, problem: String) -> Self {
        Self {
            outcome: "error".into(),
            reason: problem,
            error_type: Some("Permanent".into()),
            code: None,
            ..Self::unhandled(file, None, Reason::new(ReasonCode::Malformed, ""))
        }
    }

    /// AWS requests in all.
    pub fn total_calls(&self) -> u64 {
        self.calls.values().sum()
    }
}
