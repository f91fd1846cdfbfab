//! Why an event, an instance or a user was ignored, skipped or refused: a stable code for
//! metrics and alarms, and the human text for logs. Built where the decision is made, so a metric
//! dimension never depends on how a sentence is worded.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Low-cardinality reason codes; each is a CloudWatch metric dimension value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReasonCode {
    /// A dry-run call: nothing was launched.
    DryRun,
    /// The API call failed (`errorCode`).
    FailedCall,
    /// The launcher is not in `TRUSTED_LAUNCHER_ARNS`.
    UntrustedLauncher,
    /// The event or one of its fields cannot be read.
    Malformed,
    /// A username that is not a valid role-session name.
    InvalidUsername,
    /// An event no function of this product handles, or another function's event.
    OtherEvent,
    /// The instance is gone, terminating, or not visible in EC2.
    InstanceGone,
    /// No owner could be found for the instance.
    NoOwnerTag,
    /// A state change other than `terminated`.
    NotTerminated,
    /// A tag change that did not touch the user-id tag.
    UserIdTagUnchanged,
    /// A tag change that did not touch the owner tag.
    OwnerTagUnchanged,
    /// The user-id tag was removed; its old value is unknown.
    UserIdTagRemoved,
    /// A user-id value that is not `<role-id>:<username>`.
    UserIdMalformed,
    /// A user-id value, or a launching session, of another role.
    ForeignRole,
    /// A launching session of an older id of the users' role.
    RoleRecreated,
    /// A string where an EC2 instance id belongs that is not one.
    InvalidInstanceId,
    /// A grant that does not fit in IAM's limits.
    BudgetFull,
    /// A grant asked of a deployment in static session-rights mode.
    StaticSessionRights,
    /// A user whose `aws:userid` Session Manager will not write as the session-id tag (a comma
    /// in the name): nobody can terminate or resume their sessions through the tag.
    SessionNotTaggable,
    /// An event names an owner for an instance that already carries another user's id: an
    /// event's word never re-owns an instance (the sweep decides from the instance's own tags).
    /// Also a volume attached to an owned instance that carries another user's id, or is
    /// attached to instances of two users: a volume's owner is never replaced.
    OwnedByAnother,
    /// A share request (`ShareWith`, `ShareFor`) the product will not honour: unreadable, too
    /// many guests, the owner themself, longer than the maximum, a name that is not a
    /// role-session name, or sharing off. Nothing changes.
    ShareRefused,
    /// An EC2 Fleet of type `maintain` or `request`: it launches later, in calls of its own,
    /// and the tag sweep gives those instances an owner.
    FleetNotInstant,
    /// A managed node's (`mi-*`) registration in a deployment with `HybridNodes=false`.
    HybridNodesOff,
}

impl ReasonCode {
    /// The name used as the metric dimension value.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::DryRun => "DryRun",
            ReasonCode::FailedCall => "FailedCall",
            ReasonCode::UntrustedLauncher => "UntrustedLauncher",
            ReasonCode::Malformed => "Malformed",
            ReasonCode::InvalidUsername => "InvalidUsername",
            ReasonCode::OtherEvent => "OtherEvent",
            ReasonCode::InstanceGone => "InstanceGone",
            ReasonCode::NoOwnerTag => "NoOwnerTag",
            ReasonCode::NotTerminated => "NotTerminated",
            ReasonCode::UserIdTagUnchanged => "UserIdTagUnchanged",
            ReasonCode::OwnerTagUnchanged => "OwnerTagUnchanged",
            ReasonCode::UserIdTagRemoved => "UserIdTagRemoved",
            ReasonCode::UserIdMalformed => "UserIdMalformed",
            ReasonCode::ForeignRole => "ForeignRole",
            ReasonCode::RoleRecreated => "RoleRecreated",
            ReasonCode::InvalidInstanceId => "InvalidInstanceId",
            ReasonCode::BudgetFull => "BudgetFull",
            ReasonCode::StaticSessionRights => "StaticSessionRights",
            ReasonCode::SessionNotTaggable => "SessionNotTaggable",
            ReasonCode::OwnedByAnother => "OwnedByAnother",
            ReasonCode::ShareRefused => "ShareRefused",
            ReasonCode::FleetNotInstant => "FleetNotInstant",
            ReasonCode::HybridNodesOff => "HybridNodesOff",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reason: the code and the sentence that explains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    pub code: ReasonCode,
    #[serde(rename = "reason")]
    pub text: String,
}

impl Reason {
    pub fn new(code: ReasonCode, text: impl Into<String>) -> Self {
        Self {
            code,
            text: text.into(),
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_serialises_as_code_and_text() {
        let reason = Reason::new(ReasonCode::DryRun, "dry run");
        assert_eq!(
            serde_json::to_value(&reason).unwrap(),
            serde_json::json!({"code": "DryRun", "reason": "dry run"})
        );
        assert_eq!(reason.to_string(), "dry run");
    }
}
