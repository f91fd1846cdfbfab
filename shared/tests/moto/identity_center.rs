//! IAM Identity Center against moto: the users' role found by permission set, re-created with a
//! new suffix and id, and per-user session rights refused on it.

use serde_json::Value;
use shared::app::owner_tagging::OwnerTagger;
use shared::app::session_rights::SessionPolicies;
use shared::app::AnyStore;
use shared::{Config, Error, Status};
use testkit::{create_sso_role, rewrite, run_instances, sample_event, tags_of, Moto};

fn config(rights: &str) -> Config {
    Config::for_tests(&[
        ("PERMISSION_SET_NAME", "ResearchUsers"),
        ("SESSION_RIGHTS", rights),
        ("END_SESSIONS_ON_TERMINATE", "false"),
        ("REGIONS", testkit::REGION),
    ])
}

fn sweep() -> Value {
    rewrite(&sample_event("scheduled-tag-sweep.json"), &[])
}

#[tokio::test]
async fn the_role_of_a_permission_set_is_found_and_a_re_created_one_is_re_tagged() {
    // GIVEN an Identity Center role for the permission set, a look-alike set's role beside it,
    // and a researcher's instance (e-mail usernames are valid session names)
    let moto = Moto::start().unwrap();
    let admin = shared::aws::Clients::new(&moto.sdk_config().await);
    let first_id =
        create_sso_role(&admin.iam, "AWSReservedSSO_ResearchUsers_0123456789abcdef").await;
    create_sso_role(
        &admin.iam,
        "AWSReservedSSO_ResearchUsers_Admin_fedcba9876543210",
    )
    .await;
    let instance = run_instances(&admin.ec2, 1, &[("CreatedBy", "ada@example.com")])
        .await
        .remove(0);
    let tagger = OwnerTagger::new(config("static"), admin.ec2.clone(), admin.iam.clone());

    // WHEN the sweep runs THEN the instance is tagged with the role the permission set names
    let first = tagger.handle(sweep()).await.unwrap();
    assert_eq!(first.status, Status::Changed, "{first:?}");
    assert_eq!(
        tags_of(&admin.ec2, &instance).await["AwsUserId"],
        format!("{first_id}:ada@example.com")
    );

    // WHEN Identity Center re-creates the role (new suffix, new id) and the sweep runs again
    admin
        .iam
        .delete_role()
        .role_name("AWSReservedSSO_ResearchUsers_0123456789abcdef")
        .send()
        .await
        .unwrap();
    let second_id =
        create_sso_role(&admin.iam, "AWSReservedSSO_ResearchUsers_1111222233334444").await;
    assert_ne!(first_id, second_id);
    let again = tagger.handle(sweep()).await.unwrap();

    // THEN the same process re-resolved the role and re-tagged the instance with the new id
    assert_eq!(again.status, Status::Changed, "{again:?}");
    assert_eq!(
        tags_of(&admin.ec2, &instance).await["AwsUserId"],
        format!("{second_id}:ada@example.com")
    );
}

#[tokio::test]
async fn per_user_rights_on_an_identity_center_role_fail_fast_and_write_nothing() {
    let moto = Moto::start().unwrap();
    let admin = shared::aws::Clients::new(&moto.sdk_config().await);
    create_sso_role(&admin.iam, "AWSReservedSSO_ResearchUsers_0123456789abcdef").await;
    let config = config("per-user");
    let store = AnyStore::from_config(admin.iam.clone(), &config);
    let policies = SessionPolicies::new(
        config,
        admin.ec2.clone(),
        admin.iam.clone(),
        admin.ssm.clone(),
        store,
    );
    let err = policies
        .handle(rewrite(&sample_event("scheduled-reconcile.json"), &[]))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(!err.is_retryable());
    assert!(
        err.to_string().contains("set SESSION_RIGHTS=static"),
        "{err}"
    );
    let policies = admin.iam.list_policies().send().await.unwrap();
    assert!(policies.policies().is_empty());

    // and a permission set with no role, or two, is a clear permanent error
    let tagger = OwnerTagger::new(
        Config::for_tests(&[("PERMISSION_SET_NAME", "Nobody")]),
        admin.ec2.clone(),
        admin.iam.clone(),
    );
    let err = tagger
        .handle(rewrite(&sample_event("run-instances-created-by.json"), &[]))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no IAM Identity Center role for permission set Nobody (AWSReservedSSO_Nobody_* under /aws-reserved/sso.amazonaws.com/): is the permission set assigned to this account?"
    );
    assert!(!err.is_retryable());
}
