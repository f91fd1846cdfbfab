//! What handling one event did, for logs, the Lambda response, metrics and `replay`.

use serde::{Deserialize, Serialize};

use crate::domain::reason::{Reason, ReasonCode};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// At least one write was made.
    Changed,
    /// Everything was already as it should be.
    Unchanged,
    /// Nothing to do for this event, deliberately.
    Ignored,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Changed => "changed",
            Status::Unchanged => "unchanged",
            Status::Ignored => "ignored",
        }
    }
}

/// What was left alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SkipSubject {
    /// An instance, by the id the event or EC2 gave (which may be why it was skipped).
    #[serde(rename = "instance_id")]
    Instance(String),
    /// A user, by session name (a grant that did not fit).
    #[serde(rename = "user")]
    User(String),
    /// An EBS volume attached to an owned instance.
    #[serde(rename = "volume_id")]
    Volume(String),
}

impl std::fmt::Display for SkipSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SkipSubject::Instance(id) => f.write_str(id),
            SkipSubject::User(name) => write!(f, "user {name}"),
            SkipSubject::Volume(id) => write!(f, "volume {id}"),
        }
    }
}

/// Something left alone, with the reason: `{"instance_id": …}` or `{"user": …}`, then the
/// reason's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    #[serde(flatten)]
    pub subject: SkipSubject,
    #[serde(flatten)]
    pub reason: Reason,
}

impl Skipped {
    pub fn instance(id: impl Into<String>, reason: Reason) -> Self {
        Self {
            subject: SkipSubject::Instance(id.into()),
            reason,
        }
    }

    pub fn volume(id: impl Into<String>, reason: Reason) -> Self {
        Self {
            subject: SkipSubject::Volume(id.into()),
            reason,
        }
    }

    pub fn user(name: impl Into<String>, reason: Reason) -> Self {
        Self {
            subject: SkipSubject::User(name.into()),
            reason,
        }
    }
}

/// Counts a handler reports about one event, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub instances_tagged: usize,
    /// Volumes of owned instances given their instance's user-id tag.
    pub volumes_tagged: usize,
    pub grants: usize,
    pub revokes: usize,
    pub drift_repaired: usize,
    pub grants_refused: usize,
    /// Ownership tags in a case variant of the product's keys that were removed.
    pub tags_tampered: usize,
    /// Ways the users' role's trust policy lets a caller choose their session name (the sweep
    /// checks it; an unreadable trust policy counts as one).
    pub trust_policy_findings: usize,
    /// Covered regions whose launches no logging trail delivers (the sweep checks it when it
    /// has CloudTrail; trails that cannot be read count as one).
    pub regions_without_trail: Option<usize>,
    /// Shares written (new, changed or renewed), ended, and requests refused.
    pub shares_made: usize,
    pub shares_ended: usize,
    pub shares_refused: usize,
    /// Policy characters in use, in percent of those available (when measured).
    pub capacity_used_percent: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub status: Status,
    /// A one-line summary of what was done and why.
    pub reason: String,
    /// Why the event was ignored (set when `status` is `Ignored`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<ReasonCode>,
    /// What was written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<String>,
    /// What was already correct.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unchanged: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// Writes a dry run would have made.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub planned: Vec<String>,
    /// Counts for the metrics (not part of the printed outcome).
    #[serde(skip)]
    pub counts: Counts,
}

impl Outcome {
    /// An event deliberately left alone.
    pub fn ignored(reason: Reason) -> Self {
        Self {
            code: Some(reason.code),
            reason: reason.text,
            ..Self::empty(Status::Ignored)
        }
    }

    /// An outcome with the given status and nothing else yet.
    pub fn empty(status: Status) -> Self {
        Self {
            status,
            reason: String::new(),
            code: None,
            changed: Vec::new(),
            unchanged: Vec::new(),
            skipped: Vec::new(),
            planned: Vec::new(),
            counts: Counts::default(),
        }
    }

    /// What was skipped, and the code of why: one pair per skip.
    pub fn skip_codes(&self) -> Vec<(SkipSubject, ReasonCode)> {
        self.skipped
            .iter()
            .map(|s| (s.subject.clone(), s.reason.code))
            .collect()
    }
}
