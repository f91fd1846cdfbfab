//! `doctor USER mi-…`: why a user can or cannot open a session on a managed node outside EC2
//! (an on-premises server or another cloud's machine registered with an activation). Five
//! checks, reads only: the user, the node's registration, its user-id tag, the role's policies
//! (the product's own evaluation), and the region's managed-instances tier, without which
//! Session Manager does not reach such a node whatever IAM allows.

use super::context::{first_document, role_facts, user_and_region};
use super::report::{ActionVerdict, Actions, Check, CheckId, Diagnosis, Verdict};
use super::{DoctorError, Question};
use crate::app::regions::RegionalClients;
use crate::config::Config;
use crate::domain::evaluation::{evaluate, Decision, NamedPolicy};
use crate::domain::ids::{ManagedNodeId, UserId};
use crate::domain::session_iam;
use crate::ports::{ActivationTier, DoctorIam, HybridNodes, InRegion, RolePolicyDocument};

/// The tier Session Manager needs for nodes outside EC2, as AWS spells it.
const ADVANCED: &str = "advanced";

/// Diagnose `USER` on the managed node `node`.
pub(crate) async fn diagnose_node<I, N>(
    config: &Config,
    question: &Question<'_>,
    node: &ManagedNodeId,
    iam: &I,
    nodes: &N,
) -> Result<Diagnosis, DoctorError>
where
    I: DoctorIam,
    N: HybridNodes + ActivationTier + InRegion + Clone + Send + Sync,
{
    let (name, region) = user_and_region(question, nodes)?;
    let facts = role_facts(config, iam).await?;
    let user_id = UserId::new(facts.role.id.clone(), name);
    let here = RegionalClients::new(nodes.clone(), config).get(Some(&region));
    let mut report = Diagnosis::new(question.user, node.as_str(), &region);
    report.push(Check::pass(
        CheckId::User,
        format!("{}'s id is {user_id}", question.user),
    ));
    let denied = |report: Diagnosis| {
        report.finish(
            Verdict::Denied,
            Actions {
                start_session: ActionVerdict::Denied,
                terminate_session: ActionVerdict::Unknown,
                resume_session: ActionVerdict::Unknown,
            },
        )
    };

    // The node: registered here?
    match here.registered_node(node).await {
        Ok(Some(found)) => report.push(Check::pass(
            CheckId::Instance,
            format!(
                "{node} is a managed node outside EC2 registered in {region}{}",
                found
                    .activation_id
                    .map(|a| format!(" (activation {a})"))
                    .unwrap_or_default()
            ),
        )),
        Ok(None) => {
            report.push(Check::fail(
                CheckId::Instance,
                format!("no managed node {node} in {region}"),
                "register the machine's SSM Agent with an activation in this region, or pass the node's --region",
            ));
            return Ok(denied(report));
        }
        Err(err) => {
            report.push(Check::fail(
                CheckId::Instance,
                format!("{node} could not be read: {err}"),
                "grant the doctor ssm:DescribeInstanceInformation (the stack's DoctorPolicy)",
            ));
            return Ok(denied(report));
        }
    }

    // Its user-id tag.
    let key = &config.ownership.user_id_tag_key;
    let tags = match here.node_tags(node).await {
        Ok(tags) => tags,
        Err(err) => {
            report.push(Check::fail(
                CheckId::Ownership,
                format!("{node}'s tags could not be read: {err}"),
                "grant the doctor ssm:ListTagsForResource on managed-instance/* (the stack's DoctorPolicy)",
            ));
            return Ok(denied(report));
        }
    };
    let owned = tags.get(key) == Some(&user_id.to_string());
    report.push(match tags.get(key) {
        Some(value) if owned => Check::pass(CheckId::Ownership, format!("{key} is {value}")),
        Some(value) => Check::fail(
            CheckId::Ownership,
            format!("{key} is {value}, not {user_id}: the node is another user's"),
            "the user registers their own machine with an activation carrying their own id",
        ),
        None => Check::fail(
            CheckId::Ownership,
            format!("{node} has no {key} tag"),
            "the owner-tagger gives it one from its activation (or CreatedBy) at registration and in the tag sweep; an activation without the user's id names no owner",
        ),
    });

    // The role's policies, by the product's own evaluation.
    let documents = iam.identity_policies(&facts.role.name).await?;
    let policies: Vec<NamedPolicy> = documents.iter().map(RolePolicyDocument::named).collect();
    let arns = facts.arns(&region);
    let caller = user_id.to_string();
    let start = evaluate(
        &policies,
        &session_iam::start_session(&arns.managed_node(node), &caller, &tags),
    );
    let document = first_document(config);
    let with_document = evaluate(
        &policies,
        &session_iam::start_session(&arns.document(&document), &caller, &Default::default()),
    );
    let allowed = matches!(
        (&start, &with_document),
        (Ok(s), Ok(d)) if s.decision == Decision::Allowed && d.decision == Decision::Allowed
    );
    report.push(match (&start, &with_document) {
        _ if allowed => Check::pass(
            CheckId::Policy,
            format!(
                "StartSession on the node and on {document} is allowed ({})",
                start
                    .as_ref()
                    .map(|e| e.by.join(", "))
                    .unwrap_or_default()
            ),
        ),
        (Err(why), _) | (_, Err(why)) => Check::fail(
            CheckId::Policy,
            format!("the role's policies could not be evaluated: {why}"),
            "run doctor --verify to ask IAM's simulator",
        ),
        (Ok(s), Ok(d)) => Check::fail(
            CheckId::Policy,
            format!(
                "StartSession on the node is {} and on {document} {}{}",
                s.decision.as_str(),
                d.decision.as_str(),
                if s.by.is_empty() && d.by.is_empty() {
                    String::new()
                } else {
                    format!(" (by {})", [s.by.clone(), d.by.clone()].concat().join(", "))
                }
            ),
            "deploy with HybridNodes=true and attach its HybridNodesPolicy to the users' role (a permission set references it by name)",
        ),
    });

    // The tier.
    let tier = here.activation_tier().await;
    let tier_ok = tier
        .as_deref()
        .is_ok_and(|t| t.eq_ignore_ascii_case(ADVANCED));
    report.push(match tier {
        Ok(_) if tier_ok => Check::pass(
            CheckId::Reachability,
            format!("{region} is on the advanced-instances tier: Session Manager reaches nodes outside EC2"),
        ),
        Ok(other) => Check::fail(
            CheckId::Reachability,
            format!("{region} is on the {other} instances tier: Session Manager reaches nodes outside EC2 only on the advanced tier"),
            format!("aws ssm update-service-setting --region {region} --setting-id arn:{}:ssm:{region}:{}:servicesetting/ssm/managed-instance/activation-tier --setting-value advanced (charged per node and hour)", arns.partition.as_str(), arns.account),
        ),
        Err(err) => Check::fail(
            CheckId::Reachability,
            format!("the managed-instances tier could not be read: {err}"),
            "grant the doctor ssm:GetServiceSetting on the activation-tier setting (the stack's DoctorPolicy); Session Manager needs the advanced tier",
        ),
    });

    let verdict = if owned && allowed && tier_ok {
        Verdict::Allowed
    } else {
        Verdict::Denied
    };
    Ok(report.finish(
        verdict,
        Actions {
            start_session: if verdict == Verdict::Allowed {
                ActionVerdict::Allowed
            } else {
                ActionVerdict::Denied
            },
            terminate_session: ActionVerdict::Unknown,
            resume_session: ActionVerdict::Unknown,
        },
    ))
}
