//! Every kind of IAM policy document the product writes, for sample users whose names probe the
//! edges (shortest, longest, every allowed punctuation character), written to
//! `target/tmp/generated-policies.jsonl` for `scripts/lint-policies` (parliament).
//!
//! A test rather than a binary so it builds with the rest of the test suite: a separate binary
//! resolves the SDK's features differently and would rebuild the SDK in CI.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    reason = "a test fails by panicking, and reads as one scenario"
)]

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

/// One of the project's scripts over `args`: its exit code and what it printed.
fn script(name: &str, args: &[&std::path::Path]) -> (i32, String) {
    let output = testkit::project_script(name, args);
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn every_deploy_command_the_project_gives_carries_capability_named_iam() {
    // GIVEN samconfig.toml, the README and every page of docs/
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![
        repository.join("samconfig.toml"),
        repository.join("README.md"),
    ];
    let mut dirs = vec![repository.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    // WHEN their deploy commands are checked against the templates they deploy
    let files: Vec<&std::path::Path> = files.iter().map(|f| f.as_path()).collect();
    let (code, text) = script("check_deploys.py", &files);
    // THEN none lacks CAPABILITY_NAMED_IAM where the template names an IAM resource
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("0 problem(s)"), "{text}");

    // AND a page or a samconfig.toml that deploys template.yaml with CAPABILITY_IAM alone fails,
    // naming the line and the named resources; the forwarder (no named IAM) does not
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let page = tmp.join("deploy-commands.md");
    std::fs::write(
        &page,
        "# Deploy\n\n`sam deploy` in prose is not a command.\n\n```sh\nsam deploy --guided \\\n  --capabilities CAPABILITY_IAM\naws cloudformation deploy --template-file forwarder.yaml --capabilities CAPABILITY_IAM\naws cloudformation create-stack-set --stack-set-name x --template-body file://packaged.yaml \\\n  --capabilities CAPABILITY_IAM\naws cloudformation update-stack-set --stack-set-name x --template-url https://b.s3.amazonaws.com/t.json --capabilities CAPABILITY_IAM\n```\n",
    )
    .unwrap();
    let config = tmp.join("samconfig.toml");
    std::fs::write(
        &config,
        "version = 0.1\n[default.deploy.parameters]\ncapabilities = \"CAPABILITY_IAM\"\n",
    )
    .unwrap();
    let (code, text) = script("check_deploys.py", &[&page, &config]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("4 problem(s)"), "{text}");
    assert!(
        text.contains("deploy-commands.md:11: deploys template.yaml"),
        "{text}"
    );
    assert!(
        text.contains("deploy-commands.md:6: deploys template.yaml without CAPABILITY_NAMED_IAM, which it needs for EndUserPolicy (ManagedPolicyName), GuardPolicy (ManagedPolicyName), HybridNodesPolicy (ManagedPolicyName), SharingPolicy (ManagedPolicyName), UsersBoundary (ManagedPolicyName)"),
        "{text}"
    );
    assert!(
        text.contains("deploy-commands.md:9: deploys template.yaml"),
        "{text}"
    );
    assert!(
        text.contains(
            "[default.deploy.parameters]: capabilities 'CAPABILITY_IAM' lack CAPABILITY_NAMED_IAM"
        ),
        "{text}"
    );
}

#[test]
fn every_rule_as_cloudformation_builds_it_is_named_under_the_prefix_and_keeps_its_dead_letters() {
    // GIVEN the shipped templates, template.yaml translated by the SAM translator
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let (template, forwarder) = (
        repository.join("template.yaml"),
        repository.join("forwarder.yaml"),
    );
    // WHEN rehearsed THEN the ten rules SAM generates and the four forwarder rules are each named
    // under RuleNamePrefix, and every target retries and keeps its dead letters
    let (code, text) = script("rehearse.py", &[&template, &forwarder]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("rehearsal: 14 rule(s), 5 parameter set(s) rendered, 0 problem(s)"),
        "{text}"
    );
    assert!(
        text.contains("rule template.yaml OwnerTaggerFunctionRunInstances: 1 target(s)"),
        "{text}"
    );
    // AND the organisation's template (scripts/package-org) has no transform, takes each
    // function's code from its region's bucket, and fits --template-url
    assert!(
        text.contains("no transform, 2 functions' code per region"),
        "{text}"
    );
    // AND cloud-radar, a renderer the project did not write, renders every IAM policy of every
    // parameter set CI validates, from the SAM translation and from the organisation's
    // template, exactly as the project's own renderer does, with no placeholder left where an
    // ARN belongs (every option on adds the created trail's bucket policy)
    for template in ["", "org "] {
        for (set, n) in [
            ("defaults", 10),
            ("static", 10),
            ("identity-center", 10),
            ("every-option-on", 11),
            ("hybrid-nodes", 12),
        ] {
            assert!(
                text.contains(&format!(
                    "render {template}{set}: cloud-radar rendered {n} policies, {n} the same as the project's renderer's"
                )),
                "{text}"
            );
        }
    }

    // AND a rule without a dead-letter queue, or without a name, fails the rehearsal
    let tmp = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let shipped = std::fs::read_to_string(&template).unwrap();
    let dropped = shipped.replacen(
        "            DeadLetterConfig:\n              Arn: !GetAtt FailureQueue.Arn\n",
        "",
        1,
    );
    assert_ne!(dropped, shipped);
    let broken_template = tmp.join("rehearsal-template.yaml");
    std::fs::write(&broken_template, dropped).unwrap();
    let shipped = std::fs::read_to_string(&forwarder).unwrap();
    let unnamed = shipped.replacen(
        "      Name: !Sub ${RuleNamePrefix}forward-terminations\n",
        "",
        1,
    );
    assert_ne!(unnamed, shipped);
    let broken_forwarder = tmp.join("rehearsal-forwarder.yaml");
    std::fs::write(&broken_forwarder, unnamed).unwrap();
    let (code, text) = script("rehearse.py", &[&broken_template, &broken_forwarder]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("PROBLEM rehearsal-template.yaml OwnerTaggerFunctionRunInstances target OwnerTaggerFunctionRunInstancesLambdaTarget: dead letters go to None, not FailureQueue"), "{text}");
    assert!(
        text.contains("PROBLEM rehearsal-forwarder.yaml TerminationsToHome: no Name under RuleNamePrefix (found None)"),
        "{text}"
    );
    assert!(text.contains(", 2 problem(s)"), "{text}");
}

#[test]
fn the_function_roles_page_is_what_the_template_grants() {
    // GIVEN the operators' page of what each role may do
    let repository = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let page =
        std::fs::read_to_string(repository.join("docs/operators/function-roles.md")).unwrap();
    // WHEN the template is translated and rendered as CloudFormation would build it
    let output = testkit::project_script("rehearse.py", ["--grants", "defaults"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // THEN the page is exactly what it grants (regenerate with the command the page names)
    assert_eq!(
        page,
        String::from_utf8_lossy(&output.stdout),
        "docs/operators/function-roles.md is stale: scripts/rehearse.py --grants defaults > docs/operators/function-roles.md"
    );
}
