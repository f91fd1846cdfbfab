//! The users' role's trust policy, pure: who may assume the role in a way that lets the caller
//! choose the role-session name, and so choose their `${aws:userid}` (`<role-id>:<name>`).
//!
//! With SAML (`sts:AssumeRoleWithSAML`) or IAM Identity Center federation, the identity provider
//! sets the session name. With `sts:AssumeRole` (an account, a role, a user) or
//! `sts:AssumeRoleWithWebIdentity` (an OIDC provider), the caller passes `--role-session-name`,
//! so a user could call themselves `alice` and reach alice's instances, unless a condition on
//! `sts:RoleSessionName` pins it. Service principals name their own sessions.

use serde_json::Value;

use crate::domain::evaluation::wildcard_matches;

/// The actions with which the caller chooses the session name.
const CHOOSING_ACTIONS: [&str; 2] = ["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"];
/// The condition key that pins the name.
const SESSION_NAME_KEY: &str = "sts:RoleSessionName";

/// One way to assume the role with a session name of the caller's choosing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameChooser {
    /// The statement, by `Sid` or position (`statement 2`).
    pub statement: String,
    /// Who may do it, as the policy says (`arn:aws:iam::123456789012:root`, `*`).
    pub principals: Vec<String>,
    /// The action that lets them choose.
    pub action: &'static str,
    /// Why a condition the statement has on `sts:RoleSessionName` does not pin the name, when
    /// it has one (`StringLike "*"`, `Null`, a negated operator, a wildcard or a variable).
    pub unpinned_by: Option<String>,
}

impl NameChooser {
    /// What to change in the trust policy.
    pub fn fix(&self) -> String {
        format!(
            "in the trust policy's {}, remove {} for {}, or pin the name with a condition {{\"StringEquals\": {{\"{SESSION_NAME_KEY}\": \"<a name no user has>\"}}}} (a fixed name, or ${{aws:username}} for IAM users; no wildcard, no other variable, no negated or Null operator)",
            self.statement,
            self.action,
            self.principals.join(", ")
        )
    }
}

impl std::fmt::Display for NameChooser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} lets {} call {} with a session name of their choosing",
            self.statement,
            self.principals.join(", "),
            self.action
        )?;
        match &self.unpinned_by {
            Some(why) => write!(f, " ({why})"),
            None => Ok(()),
        }
    }
}

/// The statements of a trust policy; one that cannot be read is an error, never "none".
pub(crate) fn statements(trust_policy: &str) -> Result<Vec<Value>, String> {
    let document: Value = serde_json::from_str(trust_policy)
        .map_err(|e| format!("the trust policy is not JSON: {e}"))?;
    match &document["Statement"] {
        Value::Array(many) => Ok(many.clone()),
        one @ Value::Object(_) => Ok(vec![one.clone()]),
        _ => Err("the trust policy has no Statement".into()),
    }
}

/// Every statement of `trust_policy` that lets a caller choose the session name. An empty list
/// means only identity providers and services name sessions. A document that cannot be read is
/// an error, never "nobody".
pub fn name_choosers(trust_policy: &str) -> Result<Vec<NameChooser>, String> {
    let statements = statements(trust_policy)?;
    let mut found = Vec::new();
    for (index, statement) in statements.iter().enumerate() {
        if statement["Effect"].as_str() != Some("Allow") {
            continue;
        }
        let unpinned_by = match session_name_pin(statement) {
            Pin::Fixed => continue,
            Pin::None => None,
            Pin::Fake(why) => Some(why),
        };
        let label = match statement["Sid"].as_str() {
            Some(sid) if !sid.is_empty() => format!("statement {sid}"),
            _ => format!("statement {}", index + 1),
        };
        for action in CHOOSING_ACTIONS {
            if !allows_action(statement, action) {
                continue;
            }
            let principals = choosing_principals(statement, action);
            if !principals.is_empty() {
                found.push(NameChooser {
                    statement: label.clone(),
                    principals,
                    action,
                    unpinned_by: unpinned_by.clone(),
                });
            }
        }
    }
    Ok(found)
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(one) => vec![one.clone()],
        Value::Array(many) => many
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

/// Action names are case-insensitive and may hold wildcards; a `NotAction` that does not name
/// the action allows it.
fn allows_action(statement: &Value, action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    let matches = |patterns: Vec<String>| {
        patterns
            .iter()
            .any(|p| wildcard_matches(&p.to_ascii_lowercase(), &action))
    };
    match (statement.get("Action"), statement.get("NotAction")) {
        (Some(actions), _) => matches(strings(actions)),
        (None, Some(not)) => !matches(strings(not)),
        (None, None) => false,
    }
}

/// Principals that choose the name with `action`: for `AssumeRole`, anyone but a service; for
/// web identity, any federated provider but a SAML one. `NotPrincipal` is taken as anyone.
fn choosing_principals(statement: &Value, action: &str) -> Vec<String> {
    if statement.get("NotPrincipal").is_some() {
        return vec!["anyone but the NotPrincipal".into()];
    }
    let principal = &statement["Principal"];
    if principal.as_str() == Some("*") {
        return vec!["*".into()];
    }
    match action {
        "sts:AssumeRole" => strings(&principal["AWS"]),
        _ => strings(&principal["Federated"])
            .into_iter()
            .filter(|p| !p.contains(":saml-provider/"))
            .collect(),
    }
}

/// What a statement's conditions on `sts:RoleSessionName` do to the name.
#[derive(Debug, PartialEq, Eq)]
enum Pin {
    /// No condition names the key.
    None,
    /// A condition fixes the name to values the caller cannot choose.
    Fixed,
    /// Conditions name the key, but none fixes the name: why.
    Fake(String),
}

/// The only variable a pin may use: an IAM user's own name, which that user cannot choose.
const USERNAME_VARIABLE: &str = "${aws:username}";

/// A condition pins the session name only as `StringEquals` (or a `StringLike` without a
/// wildcard) on values that are fixed names or `${aws:username}`. Every other form that names
/// the key lets some name through: `StringLike "*"`, `Null`, `StringNotEquals` (true for every
/// other name), `...IfExists`, a set qualifier, another variable (a principal or request tag the
/// caller may set), or no value at all. Condition keys and operators are case-insensitive.
fn session_name_pin(statement: &Value) -> Pin {
    let Some(operators) = statement["Condition"].as_object() else {
        return Pin::None;
    };
    let mut fakes = Vec::new();
    for (operator, keys) in operators {
        let Some(keys) = keys.as_object() else {
            continue;
        };
        for (key, values) in keys {
            if !key.eq_ignore_ascii_case(SESSION_NAME_KEY) {
                continue;
            }
            match why_not_a_pin(operator, values) {
                None => return Pin::Fixed,
                Some(why) => fakes.push(why),
            }
        }
    }
    if fakes.is_empty() {
        Pin::None
    } else {
        Pin::Fake(format!(
            "its condition on {SESSION_NAME_KEY} does not pin the name: {}",
            fakes.join("; ")
        ))
    }
}

/// Why `operator` on `values` lets a caller choose the name, or `None` when it fixes it.
fn why_not_a_pin(operator: &str, values: &Value) -> Option<String> {
    let exact = operator.eq_ignore_ascii_case("StringEquals");
    let like = operator.eq_ignore_ascii_case("StringLike");
    if !exact && !like {
        return Some(format!("{operator} is not StringEquals"));
    }
    let values = match values {
        Value::String(_) | Value::Array(_) => strings(values),
        _ => return Some(format!("{operator} has no string value")),
    };
    if values.is_empty() {
        return Some(format!("{operator} names no value"));
    }
    for value in &values {
        if like && value.contains(['*', '?']) {
            return Some(format!("{operator} \"{value}\" is a wildcard"));
        }
        let without_username = value.replace(USERNAME_VARIABLE, "");
        if without_username.contains("${") {
            return Some(format!(
                "{operator} \"{value}\" uses a variable the caller may set"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choosers(statements: Value) -> Vec<NameChooser> {
        name_choosers(
            &serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string(),
        )
        .unwrap()
    }

    #[test]
    fn saml_identity_center_and_services_name_their_own_sessions() {
        assert_eq!(
            choosers(serde_json::json!([
                {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:saml-provider/Okta"},
                 "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"]},
                {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:saml-provider/AWSSSO_0123_DO_NOT_DELETE"},
                 "Action": "sts:AssumeRoleWithSAML"},
                {"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"},
            ])),
            vec![]
        );
    }

    #[test]
    fn assume_role_by_an_account_or_anyone_lets_the_caller_choose() {
        let found = choosers(serde_json::json!([
            {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:saml-provider/Okta"}, "Action": "sts:AssumeRoleWithSAML"},
            {"Sid": "CiRunner", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"},
            {"Effect": "Allow", "Principal": "*", "Action": "sts:*"},
        ]));
        assert_eq!(
            found,
            vec![
                NameChooser {
                    statement: "statement CiRunner".into(),
                    principals: vec!["arn:aws:iam::123456789012:root".into()],
                    action: "sts:AssumeRole",
                    unpinned_by: None,
                },
                NameChooser {
                    statement: "statement 3".into(),
                    principals: vec!["*".into()],
                    action: "sts:AssumeRole",
                    unpinned_by: None,
                },
                NameChooser {
                    statement: "statement 3".into(),
                    principals: vec!["*".into()],
                    action: "sts:AssumeRoleWithWebIdentity",
                    unpinned_by: None,
                },
            ]
        );
        assert_eq!(
            found[0].to_string(),
            "statement CiRunner lets arn:aws:iam::123456789012:root call sts:AssumeRole with a session name of their choosing"
        );
        assert!(found[0]
            .fix()
            .contains("remove sts:AssumeRole for arn:aws:iam::123456789012:root"));
    }

    #[test]
    fn web_identity_lets_the_caller_choose_and_a_pinned_name_does_not() {
        let found = choosers(serde_json::json!([
            {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},
             "Action": "sts:AssumeRoleWithWebIdentity"},
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:role/Ci"}, "Action": "sts:AssumeRole",
             "Condition": {"StringEquals": {"STS:RoleSessionName": "ci-bot"}}},
            {"Effect": "Deny", "Principal": "*", "Action": "sts:AssumeRole"},
        ]));
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].action, "sts:AssumeRoleWithWebIdentity");
        // NotAction that leaves AssumeRole allowed counts too
        let found = choosers(serde_json::json!(
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:user/ops"}, "NotAction": "sts:TagSession"}
        ));
        assert_eq!(found[0].action, "sts:AssumeRole");
    }

    #[test]
    fn an_unreadable_trust_policy_is_an_error_not_nobody() {
        assert!(name_choosers("{").is_err());
        assert!(name_choosers("{\"Version\": \"2012-10-17\"}").is_err());
    }

    #[test]
    fn only_a_fixed_name_pins_and_every_fake_pin_is_a_finding_with_its_reason() {
        let with = |condition: Value| {
            choosers(serde_json::json!({
                "Sid": "Ci", "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "sts:AssumeRole", "Condition": condition,
            }))
        };
        // pins: a fixed name, several fixed names, a StringLike without a wildcard, the IAM
        // user's own name
        for pinned in [
            serde_json::json!({"StringEquals": {"sts:RoleSessionName": "ci-bot"}}),
            serde_json::json!({"stringequals": {"STS:ROLESESSIONNAME": ["ci-bot", "deploy"]}}),
            serde_json::json!({"StringLike": {"sts:RoleSessionName": "ci-bot"}}),
            serde_json::json!({"StringEquals": {"sts:RoleSessionName": "${aws:username}"}}),
        ] {
            assert_eq!(with(pinned.clone()), vec![], "{pinned}");
        }
        // fakes: each names the key and lets a name of the caller's choosing through
        let fakes = [
            (
                serde_json::json!({"StringLike": {"sts:RoleSessionName": "*"}}),
                "StringLike \"*\" is a wildcard",
            ),
            (
                serde_json::json!({"StringLike": {"sts:RoleSessionName": "ci-?"}}),
                "StringLike \"ci-?\" is a wildcard",
            ),
            (
                serde_json::json!({"Null": {"sts:RoleSessionName": "false"}}),
                "Null is not StringEquals",
            ),
            (
                serde_json::json!({"StringNotEquals": {"sts:RoleSessionName": "admin"}}),
                "StringNotEquals is not StringEquals",
            ),
            (
                serde_json::json!({"StringEqualsIfExists": {"sts:RoleSessionName": "ci"}}),
                "StringEqualsIfExists is not StringEquals",
            ),
            (
                serde_json::json!({"ForAnyValue:StringEquals": {"sts:RoleSessionName": "ci"}}),
                "ForAnyValue:StringEquals is not StringEquals",
            ),
            (
                serde_json::json!({"StringEquals": {"sts:RoleSessionName": "${aws:PrincipalTag/name}"}}),
                "uses a variable the caller may set",
            ),
            (
                serde_json::json!({"StringEquals": {"sts:RoleSessionName": []}}),
                "StringEquals names no value",
            ),
        ];
        for (condition, reason) in fakes {
            let found = with(condition.clone());
            assert_eq!(found.len(), 1, "{condition}: {found:?}");
            let said = found[0].to_string();
            assert!(said.starts_with("statement Ci lets arn:aws:iam::123456789012:root call sts:AssumeRole with a session name of their choosing (its condition on sts:RoleSessionName does not pin the name: "), "{said}");
            assert!(said.contains(reason), "{condition}: {said}");
            assert!(found[0].fix().contains("no wildcard"), "{}", found[0].fix());
        }
        // a fake pin beside a real one: the real one pins (conditions are ANDed)
        assert_eq!(
            with(serde_json::json!({
                "StringLike": {"sts:RoleSessionName": "*"},
                "StringEquals": {"sts:RoleSessionName": "ci-bot"},
            })),
            vec![]
        );
    }
}
