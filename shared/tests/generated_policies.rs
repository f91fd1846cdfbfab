//! Every kind of IAM policy document the product writes, for sample users whose names probe the
//! edges (shortest, longest, every allowed punctuation character), written to
//! `target/tmp/generated-policies.jsonl` for `scripts/lint-policies` (parliament).
//!
//! A test rather than a binary so it builds with the rest of the test suite: a separate binary
//! resolves the SDK's features differently and would rebuild the SDK in CI.

use shared::domain::session_name::SessionName;
use shared::domain::shard_packing::{plan_shards, shard_document, SHARD_LIMIT};
use shared::domain::statements::{inline_document, Scope};

const ROLE_ID: &str = "AROAEXAMPLEROLEID1234";

#[test]
fn every_generated_policy_is_written_for_linting() {
    let role = shared::domain::ids::RoleId::parse(ROLE_ID).unwrap();
    let users: Vec<SessionName> = ["ab", "tim.malone", "a+b=c,d.e@f_g-h", &"x".repeat(64)]
        .iter()
        .map(|n| SessionName::parse(n).unwrap())
        .collect();
    let mut documents: Vec<String> = users.iter().map(|u| inline_document(&role, u)).collect();
    let many: Vec<SessionName> = (0..40)
        .map(|i| SessionName::parse(&format!("user{i:04}")).unwrap())
        .collect();
    let plan = plan_shards(&[], &Scope::All, &many.iter().cloned().collect(), &role, 1);
    documents.extend(
        plan.writes
            .values()
            .map(|members| shard_document(&role, members)),
    );
    documents.push(shard_document(&role, &users));

    for document in &documents {
        let parsed: serde_json::Value = serde_json::from_str(document).unwrap();
        assert_eq!(parsed["Version"], "2012-10-17");
        assert!(!parsed["Statement"].as_array().unwrap().is_empty());
        assert!(shared::domain::statements::policy_size(document) <= SHARD_LIMIT.max(10_240));
    }
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("generated-policies.jsonl");
    std::fs::write(&path, documents.join("\n") + "\n").unwrap();
}
