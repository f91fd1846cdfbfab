//! CloudWatch Embedded Metric Format (EMF): one JSON log line per event that CloudWatch turns
//! into metrics, with no API call and no extra permission.
//!
//! Written by hand: the format is a small JSON object, and a crate for it would pull in a
//! metrics facade for a dozen lines. Namespace `SsmSessionOwner`, dimension `Function` (plus
//! `Reason` for ignored events and `ErrorType` for errors).

use std::io::Write;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};

use crate::domain::outcome::{Outcome, Status};
use crate::error::Error;

pub(crate) const NAMESPACE: &str = "SsmSessionOwner";

/// Where metric lines go: stdout in Lambda (CloudWatch Logs extracts them); nowhere by default,
/// so tests and `replay` print none.
static SINK: OnceLock<bool> = OnceLock::new();

/// Turn metric lines on (the Lambda mains call this once).
pub(crate) fn enable() {
    let _ = SINK.set(true);
}

/// The EMF line for one handled event.
pub(crate) fn emf_line(function: &str, result: &Result<Outcome, Error>, now_ms: i64) -> Value {
    let mut values = Map::new();
    let mut names: Vec<(&str, &str)> = Vec::new();
    let mut dimensions = vec!["Function"];
    values.insert("Function".into(), json!(function));
    let mut add = |name: &'static str, unit: &'static str, value: Value| {
        values.insert(name.into(), value);
        names.push((name, unit));
    };
    match result {
        Ok(outcome) => {
            let c = outcome.counts;
            add("InstancesTagged", "Count", json!(c.instances_tagged));
            add("VolumesTagged", "Count", json!(c.volumes_tagged));
            add("Grants", "Count", json!(c.grants));
            add("Revokes", "Count", json!(c.revokes));
            add("DriftRepaired", "Count", json!(c.drift_repaired));
            add("GrantsRefused", "Count", json!(c.grants_refused));
            add("OwnershipTagTampered", "Count", json!(c.tags_tampered));
            add("SharesMade", "Count", json!(c.shares_made));
            add("SharesEnded", "Count", json!(c.shares_ended));
            add("SharesRefused", "Count", json!(c.shares_refused));
            add(
                "TrustPolicyFindings",
                "Count",
                json!(c.trust_policy_findings),
            );
            if let Some(regions) = c.regions_without_trail {
                add("RegionsWithoutTrail", "Count", json!(regions));
            }
            if let Some(percent) = c.capacity_used_percent {
                add("PolicyCapacityUsedPercent", "Percent", json!(percent));
            }
            let ignored = usize::from(outcome.status == Status::Ignored);
            add("EventsIgnored", "Count", json!(ignored));
            add("Errors", "Count", json!(0));
            if let Some(code) = outcome.code.filter(|_| ignored == 1) {
                values.insert("Reason".into(), json!(code.as_str()));
                dimensions.push("Reason");
            }
        }
        Err(err) => {
            add("Errors", "Count", json!(1));
            let refused = usize::from(matches!(err, Error::PolicyBudgetFull { .. }));
            add("GrantsRefused", "Count", json!(refused));
            values.insert("ErrorType".into(), json!(err.kind()));
            dimensions.push("ErrorType");
        }
    }
    let metrics: Vec<Value> = names
        .iter()
        .map(|(n, u)| json!({"Name": n, "Unit": u}))
        .collect();
    // Aggregates over Function alone, plus the finer split by reason or error type.
    let mut sets = vec![json!(["Function"])];
    if dimensions.len() > 1 {
        sets.push(json!(dimensions));
    }
    values.insert(
        "_aws".into(),
        json!({"Timestamp": now_ms, "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": sets, "Metrics": metrics}]}),
    );
    Value::Object(values)
}

/// Write the EMF line for one event, if metrics are on.
pub(crate) fn emit(function: &str, result: &Result<Outcome, Error>) {
    if SINK.get().copied().unwrap_or(false) {
        let line = emf_line(function, result, chrono::Utc::now().timestamp_millis());
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::domain::reason::{Reason, ReasonCode};

    #[test]
    fn an_owner_tagging_event_becomes_one_emf_line() {
        let mut outcome = Outcome::empty(Status::Changed);
        outcome.counts.instances_tagged = 2;
        let line = emf_line("owner-tagger", &Ok(outcome), 1_700_000_000_000);
        assert_eq!(line["Function"], "owner-tagger");
        assert_eq!(line["InstancesTagged"], 2);
        assert_eq!(line["Errors"], 0);
        assert_eq!(line["EventsIgnored"], 0);
        let spec = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(spec["Namespace"], "SsmSessionOwner");
        assert_eq!(spec["Dimensions"], json!([["Function"]]));
        assert!(spec["Metrics"]
            .as_array()
            .unwrap()
            .contains(&json!({"Name": "InstancesTagged", "Unit": "Count"})));
        assert_eq!(line["_aws"]["Timestamp"], 1_700_000_000_000i64);
    }

    #[test]
    fn ignored_events_carry_a_reason_and_errors_their_type() {
        let line = emf_line(
            "owner-tagger",
            &Ok(Outcome::ignored(Reason::new(
                ReasonCode::DryRun,
                "dry run (Client.DryRunOperation): nothing was launched",
            ))),
            0,
        );
        assert_eq!(line["EventsIgnored"], 1);
        assert_eq!(line["Reason"], "DryRun");
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function"], ["Function", "Reason"]])
        );
        let err = Error::RoleNotFound {
            role_name: "R".into(),
        };
        let line = emf_line("session-policy", &Err(err), 0);
        assert_eq!(line["Errors"], 1);
        assert_eq!(line["ErrorType"], "Permanent");
        assert_eq!(line["GrantsRefused"], 0);
        let full = Error::PolicyBudgetFull {
            message: "full".into(),
        };
        let line = emf_line("session-policy", &Err(full), 0);
        assert_eq!(line["GrantsRefused"], 1);
    }
}
