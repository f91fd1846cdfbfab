//! What handling one event did, for logs, the Lambda response and `replay`.

use serde::Serialize;

use crate::owner_tag::Skipped;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// At least one write was made.
    Changed,
    /// Everything was already as it should be.
    Unchanged,
    /// Nothing to do for this event, deliberately.
    Ignored,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub status: Status,
    pub reason: String,
    /// Instances written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// Instances already correct.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unchanged: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// Writes a dry run would have made.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<String>,
    /// Counts for the metrics (not part of the printed outcome).
    #[serde(skip)]
    pub counts: crate::metrics::Counts,
}

impl Outcome {
    pub fn ignored(reason: impl Into<String>) -> Self {
        Self {
            status: Status::Ignored,
            reason: reason.into(),
            changed: Vec::new(),
            unchanged: Vec::new(),
            skipped: Vec::new(),
            planned: Vec::new(),
            counts: crate::metrics::Counts::default(),
        }
    }
}
