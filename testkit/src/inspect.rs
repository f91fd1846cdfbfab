//! Read back what the code under test left in moto.

use std::collections::BTreeMap;

/// The users' role's inline policy names.
pub async fn role_policy_names(iam: &aws_sdk_iam::Client, role: &str) -> Vec<String> {
    iam.list_role_policies()
        .role_name(role)
        .send()
        .await
        .expect("moto ListRolePolicies")
        .policy_names()
        .to_vec()
}

/// Who the users' role grants session rights to: username → the policy holding the statement
/// (`inline <name>` or `shard <name>`), read back from IAM.
/// The `aws:userid` values of a statement's condition: one (an inline statement) or a list (a
/// shard in the dense encoding).
pub fn user_ids(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::String(one) => vec![one.clone()],
        serde_json::Value::Array(many) => many
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    }
}

pub async fn granted_users(iam: &aws_sdk_iam::Client, role: &str) -> BTreeMap<String, String> {
    let mut granted = BTreeMap::new();
    let mut record = |document: &str, holder: String| {
        let parsed: serde_json::Value = serde_json::from_str(document).unwrap_or_default();
        for statement in parsed["Statement"].as_array().into_iter().flatten() {
            for id in user_ids(&statement["Condition"]["StringEquals"]["aws:userid"]) {
                if let Some((_, user)) = id.split_once(':') {
                    granted.insert(user.to_owned(), holder.clone());
                }
            }
        }
    };
    for name in role_policy_names(iam, role).await {
        let output = iam
            .get_role_policy()
            .role_name(role)
            .policy_name(&name)
            .send()
            .await
            .expect("moto GetRolePolicy");
        record(
            &shared::aws::decode_policy_document(output.policy_document()),
            format!("inline {name}"),
        );
    }
    let attached = iam
        .list_attached_role_policies()
        .role_name(role)
        .send()
        .await
        .expect("moto ListAttachedRolePolicies");
    for policy in attached.attached_policies() {
        let arn = policy.policy_arn().unwrap_or_default();
        let meta = iam
            .get_policy()
            .policy_arn(arn)
            .send()
            .await
            .expect("moto GetPolicy");
        let version = meta
            .policy()
            .and_then(|p| p.default_version_id())
            .unwrap_or("v1");
        let doc = iam
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .expect("moto GetPolicyVersion");
        let document = doc
            .policy_version()
            .and_then(|v| v.document())
            .unwrap_or_default();
        record(
            &shared::aws::decode_policy_document(document),
            format!("shard {}", policy.policy_name().unwrap_or_default()),
        );
    }
    granted
}
