//! Session documents as Session Manager reads them, pure: what a document lets a session do
//! (its type, the ports it forwards to, whether it names another host) and the preferences it
//! carries (where the session is logged, the KMS key, run-as). The doctor reads the product's
//! documents (and the account's `SSM-SessionManagerRunShell`) with `ssm:GetDocument` and asks
//! these questions of them.

use regex_lite::Regex;
use serde_json::Value;

/// A session document's content, as far as the product relies on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionDocument {
    /// `Standard_Stream`, `Port`, `InteractiveCommands`, `NonInteractiveCommands`.
    pub session_type: String,
    /// The `allowedPattern` of `portNumber`, if the document has that parameter.
    port_pattern: Option<String>,
    /// The `allowedValues` of `portNumber`, if any.
    port_values: Vec<String>,
    /// Whether the document forwards to a host other than the instance (`host` in its
    /// parameters or properties).
    pub reaches_other_hosts: bool,
    pub preferences: Preferences,
}

/// The session preferences a `Standard_Stream` document carries (`inputs`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    pub s3_bucket: Option<String>,
    pub s3_prefix: Option<String>,
    pub log_group: Option<String>,
    /// `cloudWatchEncryptionEnabled`: the log group must be encrypted with a KMS key.
    pub log_group_must_be_encrypted: bool,
    pub kms_key: Option<String>,
    pub run_as_enabled: bool,
    pub run_as_default_user: Option<String>,
    pub idle_timeout_minutes: Option<String>,
    pub max_duration_minutes: Option<String>,
}

impl Preferences {
    /// Where sessions are written, in words: `to s3://… and log group …`, or `nowhere (…)`.
    pub fn destinations(&self) -> String {
        let mut places = Vec::new();
        if let Some(bucket) = &self.s3_bucket {
            places.push(format!(
                "s3://{bucket}/{}",
                self.s3_prefix.as_deref().unwrap_or("")
            ));
        }
        if let Some(group) = &self.log_group {
            places.push(format!("log group {group}"));
        }
        if places.is_empty() {
            "nowhere (no S3 bucket, no log group)".into()
        } else {
            format!("to {}", places.join(" and "))
        }
    }
}

/// A text value of `inputs`, empty read as unset.
fn text(inputs: &Value, key: &str) -> Option<String> {
    match &inputs[key] {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A boolean of `inputs`, written as JSON `true` or the text `"true"`.
fn flag(inputs: &Value, key: &str) -> bool {
    match &inputs[key] {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

impl SessionDocument {
    /// Read a Session document's content (JSON). A content that cannot be read is an error,
    /// never "a document that allows nothing".
    pub fn parse(content: &str) -> Result<Self, String> {
        let document: Value =
            serde_json::from_str(content).map_err(|e| format!("the document is not JSON: {e}"))?;
        let session_type = document["sessionType"]
            .as_str()
            .ok_or("the document has no sessionType: it is not a Session document")?
            .to_owned();
        let port = &document["parameters"]["portNumber"];
        let port_values = port["allowedValues"]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let reaches_other_hosts =
            !document["parameters"]["host"].is_null() || !document["properties"]["host"].is_null();
        let inputs = &document["inputs"];
        Ok(Self {
            session_type,
            port_pattern: port["allowedPattern"].as_str().map(str::to_owned),
            port_values,
            reaches_other_hosts,
            preferences: Preferences {
                s3_bucket: text(inputs, "s3BucketName"),
                s3_prefix: text(inputs, "s3KeyPrefix"),
                log_group: text(inputs, "cloudWatchLogGroupName"),
                log_group_must_be_encrypted: flag(inputs, "cloudWatchEncryptionEnabled"),
                kms_key: text(inputs, "kmsKeyId"),
                run_as_enabled: flag(inputs, "runAsEnabled"),
                run_as_default_user: text(inputs, "runAsDefaultUser"),
                idle_timeout_minutes: text(inputs, "idleSessionTimeout"),
                max_duration_minutes: text(inputs, "maxSessionDuration"),
            },
        })
    }

    /// Whether a session may forward to `port` on the instance. A document with a port
    /// parameter but no restriction accepts any port; a pattern that cannot be compiled is an
    /// error.
    pub fn accepts_port(&self, port: u16) -> Result<bool, String> {
        let port = port.to_string();
        if !self.port_values.is_empty() && !self.port_values.contains(&port) {
            return Ok(false);
        }
        match &self.port_pattern {
            None => Ok(true),
            Some(pattern) => Regex::new(pattern)
                .map(|re| re.is_match(&port))
                .map_err(|e| {
                    format!("the portNumber pattern {pattern:?} is not a regular expression: {e}")
                }),
        }
    }

    /// The ports the document accepts, in words.
    pub fn ports(&self) -> String {
        match (&self.port_values[..], &self.port_pattern) {
            ([], None) => "any port".into(),
            ([], Some(pattern)) => format!("ports matching {pattern}"),
            (values, _) => format!("ports {}", values.join(", ")),
        }
    }
}

/// Whether the users' trust policy lets the identity provider pass session tags
/// (`sts:TagSession`, which `SSMSessionRunAs` needs) from the principals that federate users
/// (SAML providers, or Identity Center's). Errors when the document cannot be read.
pub fn trust_allows_session_tags(trust_policy: &str) -> Result<bool, String> {
    let statements = crate::domain::trust::statements(trust_policy)?;
    Ok(statements.iter().any(|statement| {
        let actions = match &statement["Action"] {
            Value::String(one) => vec![one.as_str()],
            Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let federated = match &statement["Principal"]["Federated"] {
            Value::String(one) => !one.is_empty(),
            Value::Array(many) => !many.is_empty(),
            _ => false,
        };
        statement["Effect"] == "Allow"
            && federated
            && actions.iter().any(|a| {
                let a = a.to_ascii_lowercase();
                a == "sts:tagsession" || a == "sts:*" || a == "*"
            })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PORT: &str = r#"{"schemaVersion": "1.0", "sessionType": "Port",
        "parameters": {"portNumber": {"type": "String", "allowedPattern": "^(3389|8787|8888)$", "default": "3389"},
                       "localPortNumber": {"type": "String", "default": "0"}},
        "properties": {"portNumber": "{{ portNumber }}", "type": "LocalPortForwarding", "localPortNumber": "{{ localPortNumber }}"}}"#;

    #[test]
    fn a_port_document_forwards_exactly_its_ports_to_the_instance_itself() {
        let document = SessionDocument::parse(PORT).unwrap();
        assert_eq!(document.session_type, "Port");
        assert!(!document.reaches_other_hosts);
        assert_eq!(document.accepts_port(8888), Ok(true));
        assert_eq!(document.accepts_port(22), Ok(false));
        assert_eq!(document.accepts_port(38), Ok(false));
        assert_eq!(document.ports(), "ports matching ^(3389|8787|8888)$");
    }

    #[test]
    fn the_remote_host_document_is_known_for_what_it_reaches() {
        let remote = r#"{"schemaVersion": "1.0", "sessionType": "Port",
            "parameters": {"host": {"type": "String"}, "portNumber": {"type": "String"}},
            "properties": {"host": "{{ host }}", "portNumber": "{{ portNumber }}", "type": "LocalPortForwarding"}}"#;
        let document = SessionDocument::parse(remote).unwrap();
        assert!(document.reaches_other_hosts);
        assert_eq!(document.accepts_port(5432), Ok(true));
    }

    #[test]
    fn a_shell_documents_preferences_are_read_whatever_their_spelling() {
        let shell = r#"{"schemaVersion": "1.0", "sessionType": "Standard_Stream",
            "inputs": {"s3BucketName": "logs", "s3KeyPrefix": "ssm/", "s3EncryptionEnabled": true,
                       "cloudWatchLogGroupName": "", "kmsKeyId": "arn:aws:kms:us-east-1:123456789012:key/k",
                       "runAsEnabled": "true", "runAsDefaultUser": "researcher", "idleSessionTimeout": 20,
                       "maxSessionDuration": ""}}"#;
        let preferences = SessionDocument::parse(shell).unwrap().preferences;
        assert_eq!(preferences.s3_bucket.as_deref(), Some("logs"));
        assert_eq!(preferences.log_group, None);
        assert!(preferences.run_as_enabled);
        assert_eq!(preferences.idle_timeout_minutes.as_deref(), Some("20"));
        assert_eq!(preferences.max_duration_minutes, None);
        assert_eq!(preferences.destinations(), "to s3://logs/ssm/");
    }

    #[test]
    fn an_unreadable_document_or_pattern_is_an_error_not_an_answer() {
        assert!(SessionDocument::parse("{").is_err());
        assert!(
            SessionDocument::parse(r#"{"schemaVersion": "2.2", "mainSteps": []}"#)
                .unwrap_err()
                .contains("not a Session document")
        );
        let broken = SessionDocument::parse(
            r#"{"sessionType": "Port", "parameters": {"portNumber": {"allowedPattern": "^(22$"}}}"#,
        )
        .unwrap();
        assert!(broken.accepts_port(22).is_err());
    }

    #[test]
    fn session_tags_need_tag_session_for_the_federating_principal() {
        let saml = r#"{"Statement": [{"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:saml-provider/Okta"},
            "Action": ["sts:AssumeRoleWithSAML", "sts:TagSession"]}]}"#;
        assert_eq!(trust_allows_session_tags(saml), Ok(true));
        let without = r#"{"Statement": {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::123456789012:saml-provider/Okta"},
            "Action": "sts:AssumeRoleWithSAML"}}"#;
        assert_eq!(trust_allows_session_tags(without), Ok(false));
        let account = r#"{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
            "Action": ["sts:AssumeRole", "sts:TagSession"]}]}"#;
        assert_eq!(trust_allows_session_tags(account), Ok(false));
        assert!(trust_allows_session_tags("[]").is_err());
    }
}
