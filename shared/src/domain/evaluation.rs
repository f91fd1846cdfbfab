//! The product's own IAM evaluation of identity policies, pure: the doctor's answer where IAM's
//! policy simulator is not available, and its explanation (which statement allowed or denied)
//! where it is.
//!
//! It covers what policies for Session Manager use: `Action`/`NotAction` and
//! `Resource`/`NotResource` with wildcards, policy variables (`${aws:userid}`, `${*}`), and the
//! `String*`, `Arn*`, `Bool` and `Null` condition operators with `ForAnyValue:`/`ForAllValues:`
//! and `IfExists`. A statement that applies to the request and uses anything else (numeric,
//! date or IP operators) makes the request [`Unevaluable`], never a guess. So does a request
//! whose answer depends on which of two case variants of a key IAM reads: condition-key names
//! are case-insensitive, and AWS calls the result of a resource carrying both "unexpected".
//!
//! The independent judge (`iam-simulate`) checks this evaluator on the isolation and forging
//! matrices (`shared/tests/iam_judge.rs`).

use std::fmt;

use serde::Serialize;
use serde_json::Value;

/// A policy on the principal, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedPolicy {
    pub name: String,
    pub document: String,
}

/// One request: an action on a resource, with its context keys. A key may appear more than once
/// in different letter case (an instance tagged `AwsUserId` and `awsuserid`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub action: String,
    pub resource: String,
    pub context: Vec<(String, Vec<String>)>,
}

impl Request {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Self {
            action: action.into(),
            resource: resource.into(),
            context: Vec::new(),
        }
    }

    /// Add a single-valued context key.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.context.push((key.into(), vec![value.into()]));
        self
    }

    /// Add a multi-valued context key (`aws:TagKeys`).
    pub fn with_list(mut self, key: impl Into<String>, values: &[&str]) -> Self {
        self.context
            .push((key.into(), values.iter().map(|v| v.to_string()).collect()));
        self
    }

    /// The entries for `key`, whatever its letter case.
    fn entries(&self, key: &str) -> Vec<&[String]> {
        self.context
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

/// IAM's three answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allowed,
    ImplicitDeny,
    ExplicitDeny,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allowed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::ImplicitDeny => "implicitly denied",
            Decision::ExplicitDeny => "explicitly denied",
        }
    }
}

/// A decision and the statements behind it (`policy/sid`): the denies for an explicit deny,
/// the allows for an allow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub decision: Decision,
    pub by: Vec<String>,
}

/// Why the product cannot give IAM's answer for a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unevaluable(pub String);

/// Evaluate `request` against the principal's identity policies: an explicit deny wins, then
/// any allow, else an implicit deny.
pub fn evaluate(policies: &[NamedPolicy], request: &Request) -> Result<Evaluation, Unevaluable> {
    let mut allows = Vec::new();
    let mut denies = Vec::new();
    for policy in policies {
        let document: Value = serde_json::from_str(&policy.document)
            .map_err(|e| Unevaluable(format!("policy {} is not JSON: {e}", policy.name)))?;
        let statements = match &document["Statement"] {
            Value::Array(many) => many.clone(),
            one @ Value::Object(_) => vec![one.clone()],
            _ => {
                return Err(Unevaluable(format!(
                    "policy {} has no Statement",
                    policy.name
                )))
            }
        };
        for (index, statement) in statements.iter().enumerate() {
            let label = match statement["Sid"].as_str() {
                Some(sid) if !sid.is_empty() => format!("{}/{sid}", policy.name),
                _ => format!("{}/statement {}", policy.name, index + 1),
            };
            if !applies(statement, request).map_err(|e| Unevaluable(format!("{label}: {e}")))? {
                continue;
            }
            match statement["Effect"].as_str() {
                Some("Allow") => allows.push(label),
                Some("Deny") => denies.push(label),
                _ => return Err(Unevaluable(format!("{label}: Effect is not Allow or Deny"))),
            }
        }
    }
    Ok(if !denies.is_empty() {
        Evaluation {
            decision: Decision::ExplicitDeny,
            by: denies,
        }
    } else if !allows.is_empty() {
        Evaluation {
            decision: Decision::Allowed,
            by: allows,
        }
    } else {
        Evaluation {
            decision: Decision::ImplicitDeny,
            by: Vec::new(),
        }
    })
}

/// Whether a statement applies: action, resource and every condition.
fn applies(statement: &Value, request: &Request) -> Result<bool, String> {
    let action =
        |pattern: &str| wildcard_matches(&pattern.to_lowercase(), &request.action.to_lowercase());
    let resource = |pattern: &str| {
        substitute(pattern, request).is_some_and(|p| wildcard_matches(&p, &request.resource))
    };
    if !element_matches(statement, "Action", &action)?
        || !element_matches(statement, "Resource", &resource)?
    {
        return Ok(false);
    }
    match &statement["Condition"] {
        Value::Null => Ok(true),
        Value::Object(operators) => {
            for (operator, keys) in operators {
                let Value::Object(keys) = keys else {
                    return Err(format!("condition {operator} is not an object"));
                };
                for (key, wanted) in keys {
                    if !condition(operator, key, &strings(wanted)?, request)? {
                        return Ok(false);
                    }
                }
            }
            Ok(true)
        }
        _ => Err("Condition is not an object".into()),
    }
}

/// `Action`/`Resource`: any pattern matches; `NotAction`/`NotResource`: none does; neither: the
/// statement does not apply.
fn element_matches(
    statement: &Value,
    element: &str,
    matches: &dyn Fn(&str) -> bool,
) -> Result<bool, String> {
    match (
        &statement[element],
        &statement[format!("Not{element}").as_str()],
    ) {
        (Value::Null, Value::Null) => Ok(false),
        (Value::Null, not) => Ok(!strings(not)?.iter().any(|p| matches(p))),
        (listed, _) => Ok(strings(listed)?.iter().any(|p| matches(p))),
    }
}

/// A string, a list of strings, or a scalar written as a string (`true`, `5`).
fn strings(value: &Value) -> Result<Vec<String>, String> {
    let one = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(format!("{other} is not a string")),
    };
    match value {
        Value::Array(many) => many.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    Single,
    AnyValue,
    AllValues,
}

#[derive(Clone, Copy)]
enum Comparison {
    Equals,
    EqualsIgnoreCase,
    Like,
    Bool,
}

/// One condition key of one operator: true when it holds for the request.
fn condition(
    operator: &str,
    key: &str,
    wanted: &[String],
    request: &Request,
) -> Result<bool, String> {
    let (set, rest) = if let Some(rest) = operator.strip_prefix("ForAnyValue:") {
        (SetQualifier::AnyValue, rest)
    } else if let Some(rest) = operator.strip_prefix("ForAllValues:") {
        (SetQualifier::AllValues, rest)
    } else {
        (SetQualifier::Single, operator)
    };
    let (base, if_exists) = match rest.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (rest, false),
    };
    let entries = request.entries(key);
    if base == "Null" {
        let wants_missing = wanted.iter().any(|w| w.eq_ignore_ascii_case("true"));
        return Ok(entries.is_empty() == wants_missing);
    }
    let (comparison, negated) = match base {
        "StringEquals" => (Comparison::Equals, false),
        "StringNotEquals" => (Comparison::Equals, true),
        "StringEqualsIgnoreCase" => (Comparison::EqualsIgnoreCase, false),
        "StringNotEqualsIgnoreCase" => (Comparison::EqualsIgnoreCase, true),
        "StringLike" | "ArnLike" | "ArnEquals" => (Comparison::Like, false),
        "StringNotLike" | "ArnNotLike" | "ArnNotEquals" => (Comparison::Like, true),
        "Bool" => (Comparison::Bool, false),
        other => {
            return Err(format!(
                "the condition operator {other} is not evaluated here"
            ))
        }
    };
    let patterns: Vec<Option<String>> = wanted.iter().map(|w| substitute(w, request)).collect();
    let holds = |values: Option<&[String]>| -> bool {
        let Some(values) = values else {
            // A missing key: IfExists and ForAllValues hold; a negated operator holds.
            return if_exists
                || set == SetQualifier::AllValues
                || (negated && set == SetQualifier::Single);
        };
        let matches = |value: &str| {
            patterns.iter().flatten().any(|p| match comparison {
                Comparison::Equals => p == value,
                Comparison::EqualsIgnoreCase | Comparison::Bool => p.eq_ignore_ascii_case(value),
                Comparison::Like => wildcard_matches(p, value),
            })
        };
        match (set, negated) {
            (SetQualifier::Single | SetQualifier::AnyValue, false) => {
                values.iter().any(|v| matches(v))
            }
            (SetQualifier::Single, true) => !values.iter().any(|v| matches(v)),
            (SetQualifier::AnyValue, true) => values.iter().any(|v| !matches(v)),
            (SetQualifier::AllValues, false) => values.iter().all(|v| matches(v)),
            (SetQualifier::AllValues, true) => values.iter().all(|v| !matches(v)),
        }
    };
    match entries.as_slice() {
        [] => Ok(holds(None)),
        [one] => Ok(holds(Some(one))),
        many => {
            let answers: Vec<bool> = many.iter().map(|values| holds(Some(values))).collect();
            if answers.iter().all(|a| *a == answers[0]) {
                Ok(answers[0])
            } else {
                Err(format!(
                    "the request carries {key} in more than one letter case with different answers; IAM's result is undefined"
                ))
            }
        }
    }
}

/// Replace policy variables: `${key}` by the request's single value of `key`, `${*}`, `${?}`,
/// `${$}` by the character. None when a variable has no single value: such a pattern matches
/// nothing.
fn substitute(pattern: &str, request: &Request) -> Option<String> {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let name = after[..end].trim();
        match name {
            "*" | "?" | "$" => out.push_str(name),
            _ => {
                let entries = request.entries(name);
                match entries.as_slice() {
                    [values] if values.len() == 1 => out.push_str(&values[0]),
                    _ => return None,
                }
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// IAM's wildcard matching: `*` is any run of characters, `?` exactly one, everything else
/// literal.
pub fn wildcard_matches(pattern: &str, text: &str) -> bool {
    let (p, s): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.by.is_empty() {
            write!(f, "{}", self.decision.as_str())
        } else {
            write!(f, "{} by {}", self.decision.as_str(), self.by.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(document: &str) -> Vec<NamedPolicy> {
        vec![NamedPolicy {
            name: "P".into(),
            document: document.into(),
        }]
    }

    const START: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Own","Effect":"Allow","Action":"ssm:StartSession","Resource":"arn:aws:ec2:*:1:instance/*","Condition":{"StringEquals":{"ssm:resourceTag/AwsUserId":"${aws:userid}"}}}]}"#;

    fn start(caller: &str) -> Request {
        Request::new("SSM:StartSession", "arn:aws:ec2:us-east-1:1:instance/i-1")
            .with("aws:userid", caller)
    }

    #[test]
    fn the_owner_is_allowed_by_the_statement_that_names_her() {
        let found = evaluate(
            &policy(START),
            &start("R:tim").with("ssm:resourceTag/AwsUserId", "R:tim"),
        )
        .unwrap();
        assert_eq!(found.decision, Decision::Allowed);
        assert_eq!(found.by, ["P/Own"]);
        assert_eq!(found.to_string(), "allowed by P/Own");
    }

    #[test]
    fn another_user_or_a_missing_tag_is_implicitly_denied() {
        for request in [
            start("R:tim").with("ssm:resourceTag/AwsUserId", "R:timm"),
            start("R:tim"),
            start("R:Tim").with("ssm:resourceTag/AwsUserId", "R:tim"),
        ] {
            assert_eq!(
                evaluate(&policy(START), &request).unwrap().decision,
                Decision::ImplicitDeny
            );
        }
    }

    #[test]
    fn key_names_match_in_any_case_and_disagreeing_variants_are_unevaluable() {
        let lower = start("R:tim").with("ssm:resourcetag/awsuserid", "R:tim");
        assert!(evaluate(&policy(START), &lower)
            .unwrap()
            .decision
            .is_allowed());
        let planted = start("R:tim")
            .with("ssm:resourceTag/AwsUserId", "R:tim")
            .with("ssm:resourceTag/awsuserid", "R:mallory");
        let err = evaluate(&policy(START), &planted).unwrap_err();
        assert!(err.0.contains("more than one letter case"), "{err}");
    }

    #[test]
    fn an_explicit_deny_wins_and_names_its_statement() {
        let deny = r#"{"Statement":[{"Effect":"Allow","Action":"ec2:*","Resource":"*"},{"Sid":"NoOwnerTags","Effect":"Deny","Action":["ec2:CreateTags"],"Resource":"*","Condition":{"ForAnyValue:StringEqualsIgnoreCase":{"aws:TagKeys":["AwsUserId","CreatedBy"]}}}]}"#;
        let request = |keys: &[&str]| {
            Request::new("ec2:CreateTags", "arn:aws:ec2:us-east-1:1:instance/i-1")
                .with_list("aws:TagKeys", keys)
        };
        let found = evaluate(&policy(deny), &request(&["Name", "AWSUSERID"])).unwrap();
        assert_eq!(found.decision, Decision::ExplicitDeny);
        assert_eq!(found.by, ["P/NoOwnerTags"]);
        assert_eq!(
            evaluate(&policy(deny), &request(&["Name"]))
                .unwrap()
                .decision,
            Decision::Allowed
        );
    }

    #[test]
    fn missing_keys_follow_iam() {
        let doc = |op: &str| {
            format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{{"{op}":{{"aws:TagKeys":["a"]}}}}}}]}}"#
            )
        };
        let bare = Request::new("ec2:CreateTags", "x");
        for (op, holds) in [
            ("StringEquals", false),
            ("StringNotEquals", true),
            ("StringEqualsIfExists", true),
            ("ForAnyValue:StringEquals", false),
            ("ForAllValues:StringEquals", true),
            ("Null", false),
        ] {
            let decision = evaluate(&policy(&doc(op)), &bare).unwrap().decision;
            assert_eq!(decision.is_allowed(), holds, "{op}");
        }
    }

    #[test]
    fn unsupported_operators_are_unevaluable_not_guessed() {
        let doc = r#"{"Statement":{"Effect":"Allow","Action":"ssm:StartSession","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}"#;
        let err = evaluate(&policy(doc), &start("R:tim")).unwrap_err();
        assert_eq!(
            err.0,
            "P/statement 1: the condition operator IpAddress is not evaluated here"
        );
        // A statement for another action is never looked at.
        let other = Request::new("ec2:DescribeInstances", "*");
        assert_eq!(
            evaluate(&policy(doc), &other).unwrap().decision,
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn variables_without_a_value_match_nothing() {
        let doc = r#"{"Statement":{"Effect":"Allow","Action":"ssm:TerminateSession","Resource":"arn:aws:ssm:*:*:session/${aws:username}-*"}}"#;
        let request = Request::new(
            "ssm:TerminateSession",
            "arn:aws:ssm:us-east-1:1:session/tim-1",
        );
        assert_eq!(
            evaluate(&policy(doc), &request).unwrap().decision,
            Decision::ImplicitDeny
        );
        let request = request.with("aws:username", "tim");
        assert_eq!(
            evaluate(&policy(doc), &request).unwrap().decision,
            Decision::Allowed
        );
    }

    #[test]
    fn the_wildcard_matcher_follows_iam() {
        assert!(wildcard_matches("a*c", "abbbc"));
        assert!(wildcard_matches("a*", "a"));
        assert!(wildcard_matches("a?c", "abc"));
        assert!(!wildcard_matches("a?c", "ac"));
        assert!(!wildcard_matches("abc", "abcd"));
        assert!(wildcard_matches("*b*", "abc"));
    }
}
