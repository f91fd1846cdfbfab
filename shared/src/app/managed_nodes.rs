//! Managed nodes outside EC2 (`mi-*`: on-premises servers and other clouds' machines registered
//! with a Systems Manager activation): each gets its owner's user-id tag, as an instance does.
//!
//! A node carries its activation's tags from its first second, and a user may create an
//! activation only with their own id in the user-id tag (HybridNodesPolicy), so a user's node is
//! normally owned before the product sees it: the registration event and the sweep then find it
//! owned and leave it alone. A node with no id of its own takes its activation's; with neither,
//! the instance rules apply (`CreatedBy`, unless trusted launchers are set), and an owner that
//! cannot be established is reported with its reason code. Case variants of the ownership keys
//! are removed and an older id of the users' role is rewritten, as on instances.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::owner_tagging::ignored;

use crate::domain::ids::{ManagedNodeId, RoleId};
use crate::domain::outcome::{Outcome, Skipped, Status};
use crate::domain::ownership::{self, OwnershipRules, SweepPlan};
use crate::domain::reason::{Reason, ReasonCode};
use crate::error::Error;
use crate::ports::{HybridNodes, InRegion, RegisteredNode};

/// No managed nodes outside EC2: a deployment with `HybridNodes=false`, and the tests that do
/// not look at them. Every read answers "none".
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHybridNodes;

impl HybridNodes for NoHybridNodes {
    async fn registered_node(
        &self,
        _node: &ManagedNodeId,
    ) -> Result<Option<RegisteredNode>, Error> {
        Ok(None)
    }

    async fn registered_nodes(&self) -> Result<Vec<RegisteredNode>, Error> {
        Ok(Vec::new())
    }

    async fn nodes_tagged(&self, _key: &str, _value: &str) -> Result<Vec<ManagedNodeId>, Error> {
        Ok(Vec::new())
    }

    async fn node_tags(&self, _node: &ManagedNodeId) -> Result<BTreeMap<String, String>, Error> {
        Ok(BTreeMap::new())
    }

    async fn activation_tags(
        &self,
        _activation_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Error> {
        Ok(None)
    }

    async fn tag_node(&self, _node: &ManagedNodeId, _key: &str, _value: &str) -> Result<(), Error> {
        Ok(())
    }

    async fn untag_node(&self, _node: &ManagedNodeId, _key: &str) -> Result<(), Error> {
        Ok(())
    }
}

impl InRegion for NoHybridNodes {
    fn region_name(&self) -> Option<String> {
        None
    }

    fn in_region(&self, _region: &str) -> Self {
        Self
    }
}

/// One node read: its id, its tags, and the plan made from them (and its activation's).
struct NodeRead {
    node: ManagedNodeId,
    plan: SweepPlan,
}

/// Read one registered node and plan it: its tags, and its activation's only when it carries no
/// id of its own (one more call).
async fn read_node<N: HybridNodes + Sync>(
    nodes: &N,
    found: RegisteredNode,
    role_id: &RoleId,
    rules: &OwnershipRules,
) -> Result<NodeRead, Error> {
    let tags = nodes.node_tags(&found.node_id).await?;
    let activation = match &found.activation_id {
        Some(id) if !ownership::has_own_id(&tags, role_id, rules) => {
            nodes.activation_tags(id).await?
        }
        _ => None,
    };
    let plan = ownership::node_plan(&tags, activation.as_ref(), role_id, rules);
    Ok(NodeRead {
        node: found.node_id,
        plan,
    })
}

/// Write one node's plan into `outcome`: the exact user-id tag first, then each case variant
/// removed (never ownerless between); a node that cannot have an owner is reported.
async fn apply_node<N: HybridNodes + Sync>(
    nodes: &N,
    event_id: Option<&str>,
    read: NodeRead,
    rules: &OwnershipRules,
    outcome: &mut Outcome,
) -> Result<(), Error> {
    let NodeRead { node, plan } = read;
    if let Some(value) = &plan.write {
        let value = value.to_string();
        nodes
            .tag_node(&node, &rules.user_id_tag_key, &value)
            .await?;
        match &plan.stale {
            Some(old) => {
                info!(event_id, node_id = %node, old = %old, value = %value, decision = "re-tagged stale role id");
            }
            None => info!(event_id, node_id = %node, value = %value, decision = "tagged"),
        }
        outcome
            .changed
            .push(format!("{node}: {}={value}", rules.user_id_tag_key));
        outcome.counts.instances_tagged += 1;
    }
    for (key, value) in &plan.remove {
        let code_points = ownership::code_points(key);
        warn!(event_id, node_id = %node, key = %key, code_points = code_points.as_deref(), value = %value, metric = "OwnershipTagTampered", decision = "removed case variant of an ownership tag");
        nodes.untag_node(&node, key).await?;
        outcome.changed.push(format!("{node}: removed {key}"));
        outcome.counts.tags_tampered += 1;
    }
    match plan.skip {
        Some(reason) => {
            warn!(event_id, node_id = %node, decision = "skipped", code = %reason.code, reason = %reason);
            outcome
                .skipped
                .push(Skipped::instance(node.to_string(), reason));
        }
        None if plan.write.is_none() => outcome.unchanged.push(node.to_string()),
        None => {}
    }
    if !outcome.changed.is_empty() {
        outcome.status = Status::Changed;
    }
    Ok(())
}

/// A node registered: read it again (the event only names it) and give it its owner.
pub(crate) async fn on_registration<N: HybridNodes + Sync>(
    nodes: &N,
    event_id: Option<&str>,
    node: &ManagedNodeId,
    role_id: &RoleId,
    rules: &OwnershipRules,
) -> Result<Outcome, Error> {
    let Some(found) = nodes.registered_node(node).await? else {
        return Ok(ignored(
            event_id,
            Reason::new(
                ReasonCode::InstanceGone,
                format!("{node} is not a registered managed node in this region"),
            ),
        ));
    };
    let read = read_node(nodes, found, role_id, rules).await?;
    let mut outcome = Outcome::empty(Status::Unchanged);
    apply_node(nodes, event_id, read, rules, &mut outcome).await?;
    if let (Status::Unchanged, Some(first)) = (outcome.status, outcome.skipped.first()) {
        outcome.status = Status::Ignored;
        outcome.code = Some(first.reason.code);
        outcome.reason = first.reason.text.clone();
    } else {
        outcome.reason = summary(&outcome, 1);
    }
    info!(event_id, decision = "managed node", reason = %outcome.reason);
    Ok(outcome)
}

/// The sweep of one region's managed nodes outside EC2: every node is read before anything is
/// written, so an unreadable answer fails the region with nothing half done.
pub(crate) async fn sweep_region<N: HybridNodes + Sync>(
    nodes: &N,
    event_id: Option<&str>,
    role_id: &RoleId,
    rules: &OwnershipRules,
) -> Result<Outcome, Error> {
    let registered = nodes.registered_nodes().await?;
    let count = registered.len();
    let mut reads = Vec::with_capacity(count);
    for found in registered {
        reads.push(read_node(nodes, found, role_id, rules).await?);
    }
    let mut outcome = Outcome::empty(Status::Unchanged);
    for read in reads {
        apply_node(nodes, event_id, read, rules, &mut outcome).await?;
    }
    outcome.reason = summary(&outcome, count);
    Ok(outcome)
}

fn summary(outcome: &Outcome, nodes: usize) -> String {
    format!(
        "{nodes} managed node(s) outside EC2: tagged {}, removed {} case variant(s), {} skipped, {} already owned",
        outcome.counts.instances_tagged,
        outcome.counts.tags_tampered,
        outcome.skipped.len(),
        outcome.unchanged.len()
    )
}
