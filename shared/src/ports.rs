//! Every port in one place: small traits, one per capability, so the use cases can be driven by
//! the SDK adapters (`aws`) or by the in-memory fakes (`fakes`).

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;

use crate::config::WriteMode;
use crate::domain::capacity::{Capacity, Refused};
use crate::domain::evaluation::{Decision, NamedPolicy, Request};
use crate::domain::ids::{
    InstanceId, InstanceState, ManagedNodeId, ResolvedRole, RoleId, RoleIdentity, TagTarget,
    VolumeId,
};
use crate::domain::session_name::SessionName;
use crate::domain::statements::Scope;
use crate::error::Error;

/// What EC2 says about one instance now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedInstance {
    pub instance_id: InstanceId,
    pub state: InstanceState,
    pub tags: BTreeMap<String, String>,
}

/// Read instances by id. Ids EC2 does not know are simply absent from the answer.
pub trait InstanceDirectory {
    fn describe_instances(
        &self,
        instance_ids: &[InstanceId],
    ) -> impl Future<Output = Result<Vec<DescribedInstance>, Error>> + Send;
}

/// Write one tag on many instances and volumes (one call), or remove one tag key from them.
pub trait InstanceTagger {
    fn create_tag(
        &self,
        targets: &[TagTarget],
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Remove the tag `key` (whatever its value) from every instance or volume given.
    fn delete_tag(
        &self,
        targets: &[TagTarget],
        key: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Write several tags on one instance or volume (one call).
    fn put_tags(
        &self,
        target: &TagTarget,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Remove several tags from one instance or volume (one call), each only while it still
    /// has the value given: a value written since it was read stays.
    fn remove_tags_if_unchanged(
        &self,
        target: &TagTarget,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// What EC2 says about one EBS volume: the instances it is attached to, and its tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedVolume {
    pub volume_id: VolumeId,
    pub attached_to: Vec<InstanceId>,
    pub tags: BTreeMap<String, String>,
}

/// Called with each volume of a bulk read as its page arrives.
pub type VolumeVisit<'a> = &'a mut (dyn FnMut(DescribedVolume) + Send);

/// The EBS volumes attached to instances. Only the tags whose key is one of `keys`, or a case
/// variant of one, are kept.
pub trait VolumeDirectory {
    /// Every volume attached to one of `instance_ids`.
    fn volumes_attached_to(
        &self,
        instance_ids: &[InstanceId],
        keys: &[&str],
    ) -> impl Future<Output = Result<Vec<DescribedVolume>, Error>> + Send;
    /// Every attached volume of the region (the sweep), each handed to `visit` as its page
    /// arrives.
    fn each_attached_volume(
        &self,
        keys: &[&str],
        visit: VolumeVisit<'_>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Every volume of the region that carries the tag `key` (exactly), attached or not, each
    /// handed to `visit` with that tag only.
    fn each_volume_tagged(
        &self,
        key: &str,
        visit: VolumeVisit<'_>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// A deployed CloudFormation stack's outputs, by key.
pub trait StackOutputs {
    fn outputs(
        &self,
        stack: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, Error>> + Send;
}

/// A deployed Lambda function's environment variables.
pub trait FunctionEnvironment {
    fn environment(
        &self,
        function_arn: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, Error>> + Send;
}

/// Look up a role's unique id (`AROA…`) by name.
pub trait RoleDirectory {
    fn role_id(&self, role_name: &str) -> impl Future<Output = Result<RoleId, Error>> + Send;
    /// The IAM Identity Center role of a permission set: `AWSReservedSSO_<set>_<suffix>` under
    /// `/aws-reserved/sso.amazonaws.com/`. None, or more than one, is an error.
    fn role_for_permission_set(
        &self,
        permission_set: &str,
    ) -> impl Future<Output = Result<ResolvedRole, Error>> + Send;
    /// The role's trust (assume-role) policy document, decoded.
    fn trust_policy(&self, role_name: &str) -> impl Future<Output = Result<String, Error>> + Send;
}

/// A regional client that can hand out the same client for another region (same credentials,
/// timeouts, retries and call counter).
pub trait InRegion: Sized {
    /// The region this client talks to.
    fn region_name(&self) -> Option<String>;
    fn in_region(&self, region: &str) -> Self;
}

/// CloudTrail's trails as one region sees them (its own, and shadows of multi-region trails).
pub trait TrailDirectory {
    fn trails(
        &self,
    ) -> impl Future<Output = Result<Vec<crate::domain::trails::Trail>, Error>> + Send;
}

/// The regions enabled in the account.
pub trait EnabledRegions {
    fn enabled_regions(&self) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
}

/// Called with each instance of a bulk read as its page arrives; it keeps what a decision needs.
pub type Visit<'a> = &'a mut (dyn FnMut(DescribedInstance) + Send);

/// Every live (pending, running, stopping, stopped) instance: the tag sweep. Only the tags whose
/// key is one of `keys` or a case variant of one are kept; the rest are dropped as pages arrive.
pub trait InstanceInventory {
    fn each_live_instance(
        &self,
        keys: &[&str],
        visit: Visit<'_>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Live (pending, running, stopping, stopped) instances that carry a tag. Only the tags `keys`
/// (and their case variants) are kept.
pub trait LiveInstances {
    /// Instances on which one of `keys` equals `value`, or that carry one of `keys` at all when
    /// `value` is None.
    fn live_instances_tagged(
        &self,
        keys: &[&str],
        value: Option<&str>,
    ) -> impl Future<Output = Result<Vec<DescribedInstance>, Error>> + Send;

    /// Every instance that carries one of `keys`, each handed to `visit` as its page arrives and
    /// not kept: a whole fleet is read without holding it.
    fn each_live_instance_tagged(
        &self,
        keys: &[&str],
        visit: Visit<'_>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// A role's inline policies.
pub trait RolePolicies {
    fn list_role_policies(
        &self,
        role_name: &str,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
    /// The document, or None when the role has no policy of that name.
    fn get_role_policy(
        &self,
        role_name: &str,
        policy_name: &str,
    ) -> impl Future<Output = Result<Option<String>, Error>> + Send;
    fn put_role_policy(
        &self,
        role_name: &str,
        policy_name: &str,
        document: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Deleting a policy that is already gone succeeds.
    fn delete_role_policy(
        &self,
        role_name: &str,
        policy_name: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// End the Session Manager sessions still open on an instance.
pub trait SessionTerminator {
    /// Returns the ids of the sessions it terminated.
    fn end_sessions_on(
        &self,
        instance_id: &InstanceId,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
}

/// A Session Manager session still open: its id, and who started it (`Owner`: the ARN of the
/// caller, `arn:…:sts::<account>:assumed-role/<role>/<session name>` for a federated user).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenSession {
    pub id: String,
    pub owner: String,
}

/// The sessions open on an instance, one by one: a share's end ends its guests' sessions and
/// nobody else's.
pub trait GuestSessions {
    fn open_sessions_on(
        &self,
        instance_id: &InstanceId,
    ) -> impl Future<Output = Result<Vec<OpenSession>, Error>> + Send;
    fn end_session(&self, session_id: &str) -> impl Future<Output = Result<(), Error>> + Send;
}

/// One-time schedules that send a share's expiry event at its end (EventBridge Scheduler), so
/// that a share ends at its time and not at the next sweep.
pub trait ShareExpiries {
    /// Make, or move to `at`, the one schedule of `instance` (in `region`).
    fn schedule_expiry(
        &self,
        instance: &InstanceId,
        region: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// A customer-managed policy as IAM lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPolicy {
    pub name: String,
    pub arn: String,
    /// IAM's unique id for this policy: a policy deleted and created again under the same name
    /// gets a new one, so (id, version) names one immutable document.
    pub id: String,
    pub default_version: String,
}

/// A policy version as IAM lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    pub id: String,
    pub is_default: bool,
    /// Seconds since the epoch.
    pub created: i64,
}

/// Customer-managed policies and their attachment to a role.
pub trait ManagedPolicies {
    /// The account's customer-managed policies under `path`.
    fn list_policies(
        &self,
        path: &str,
    ) -> impl Future<Output = Result<Vec<ManagedPolicy>, Error>> + Send;
    /// ARNs of the managed policies attached to the role.
    fn attached_policies(
        &self,
        role_name: &str,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
    fn policy_document(
        &self,
        arn: &str,
        version: &str,
    ) -> impl Future<Output = Result<String, Error>> + Send;
    /// Returns the new policy.
    fn create_policy(
        &self,
        name: &str,
        path: &str,
        document: &str,
    ) -> impl Future<Output = Result<ManagedPolicy, Error>> + Send;
    /// Make `document` the default version; returns the new version's id.
    fn create_policy_version(
        &self,
        arn: &str,
        document: &str,
    ) -> impl Future<Output = Result<String, Error>> + Send;
    fn list_policy_versions(
        &self,
        arn: &str,
    ) -> impl Future<Output = Result<Vec<PolicyVersion>, Error>> + Send;
    fn delete_policy_version(
        &self,
        arn: &str,
        version: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    fn attach_role_policy(
        &self,
        role_name: &str,
        arn: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    /// Detaching a policy that is not attached succeeds.
    fn detach_role_policy(
        &self,
        role_name: &str,
        arn: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    fn delete_policy(&self, arn: &str) -> impl Future<Output = Result<(), Error>> + Send;
}

/// What a `converge` did, or in a dry run would do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreReport {
    /// Writes made, described (`put <policy> (grant <user>)`, `delete <policy>`).
    pub applied: Vec<String>,
    /// Writes a dry run would have made.
    pub planned: Vec<String>,
    /// Grants that did not fit.
    pub refused: Vec<Refused>,
    /// Characters in use and available, when the store had to measure them.
    pub capacity: Option<Capacity>,
}

impl StoreReport {
    pub fn wrote(&self) -> bool {
        !self.applied.is_empty()
    }
}

/// Keeps the users' role holding a statement for exactly the desired users.
pub trait PolicyStore {
    /// Make the users in `scope` granted exactly when they are in `desired`, on `role`. With
    /// [`WriteMode::DryRun`], plan only. Grants that do not fit are refused (reported), the rest
    /// is applied.
    fn converge(
        &self,
        role: &ResolvedRole,
        scope: &Scope,
        desired: &BTreeSet<SessionName>,
        mode: WriteMode,
    ) -> impl Future<Output = Result<StoreReport, Error>> + Send;
}

/// One identity policy on a role, as IAM evaluates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePolicyDocument {
    /// The inline policy's name, or the managed policy's name.
    pub name: String,
    /// The managed policy's ARN; None for an inline policy.
    pub arn: Option<String>,
    /// The inline document, or the managed policy's default version.
    pub document: String,
}

impl RolePolicyDocument {
    /// The policy as the product's evaluator takes it.
    pub fn named(&self) -> NamedPolicy {
        NamedPolicy {
            name: self.name.clone(),
            document: self.document.clone(),
        }
    }
}

/// What IAM evaluates for a role: its ARN, and every identity policy on it. Read-only.
pub trait RoleEvaluationInputs {
    /// The role's unique id, its ARN and its trust policy, from one read.
    fn role_identity(
        &self,
        role_name: &str,
    ) -> impl Future<Output = Result<RoleIdentity, Error>> + Send;
    /// Inline policies, then attached managed policies (their default versions).
    fn identity_policies(
        &self,
        role_name: &str,
    ) -> impl Future<Output = Result<Vec<RolePolicyDocument>, Error>> + Send;
}

/// An enum of AWS's spellings with a catch-all `Other`: parsed from AWS's answer and printed
/// as AWS spells it.
macro_rules! aws_spelled {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $spelling:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum $name {
            $($variant,)+
            /// A value this version does not know, as AWS spelled it.
            Other(String),
        }

        impl $name {
            pub fn parse(spelled: &str) -> Self {
                match spelled {
                    $($spelling => Self::$variant,)+
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self {
                    $(Self::$variant => $spelling,)+
                    Self::Other(other) => other,
                })
            }
        }
    };
}

aws_spelled! {
    /// Whether Systems Manager hears from a node's agent (`PingStatus`).
    PingStatus {
        Online = "Online",
        ConnectionLost = "ConnectionLost",
        Inactive = "Inactive",
    }
}

/// What Systems Manager knows about a managed node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedNode {
    pub ping_status: PingStatus,
    pub agent_version: Option<String>,
    pub platform: Option<String>,
    /// When the agent last reported, as AWS gives it.
    pub last_ping: Option<String>,
}

/// A managed node outside EC2 (`mi-*`) as Systems Manager lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredNode {
    pub node_id: ManagedNodeId,
    /// The activation it registered with, when Systems Manager names one.
    pub activation_id: Option<String>,
}

/// Managed nodes outside EC2 (`mi-*`, registered with an activation): Systems Manager's record
/// of them, their resource tags and their activations' tags. moto has no activations, no
/// `DescribeInstanceInformation`, and refuses `ManagedInstance` tags: the adapter is covered
/// with aws-smithy-mocks, the use cases with the fakes.
pub trait HybridNodes {
    /// The node, or None when it is not registered in this region.
    fn registered_node(
        &self,
        node: &ManagedNodeId,
    ) -> impl Future<Output = Result<Option<RegisteredNode>, Error>> + Send;
    /// Every node outside EC2 registered in this region.
    fn registered_nodes(&self) -> impl Future<Output = Result<Vec<RegisteredNode>, Error>> + Send;
    /// The nodes outside EC2 registered in this region whose tag `key` is `value` (a user's
    /// nodes, for their session rights).
    fn nodes_tagged(
        &self,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<Vec<ManagedNodeId>, Error>> + Send;
    /// The node's resource tags.
    fn node_tags(
        &self,
        node: &ManagedNodeId,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, Error>> + Send;
    /// The activation's tags (copied onto every node registered with it), or None when the
    /// activation no longer exists.
    fn activation_tags(
        &self,
        activation_id: &str,
    ) -> impl Future<Output = Result<Option<BTreeMap<String, String>>, Error>> + Send;
    fn tag_node(
        &self,
        node: &ManagedNodeId,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
    fn untag_node(
        &self,
        node: &ManagedNodeId,
        key: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// The account's managed-instances tier in a region (`ssm:GetServiceSetting` of
/// `/ssm/managed-instance/activation-tier`): `standard` or `advanced`, as AWS spells it. Session
/// Manager reaches a node outside EC2 only on the advanced tier.
pub trait ActivationTier {
    fn activation_tier(&self) -> impl Future<Output = Result<String, Error>> + Send;
}

/// Managed nodes (`ssm:DescribeInstanceInformation`).
pub trait ManagedNodes {
    /// The node, or None when the instance is not a managed node of this region.
    fn managed_node(
        &self,
        instance_id: &InstanceId,
    ) -> impl Future<Output = Result<Option<ManagedNode>, Error>> + Send;
}

/// One question to IAM's policy simulator: may the role's sessions do `actions` on `resource`,
/// with these context keys, with `extra_policies` added to the role's own?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulation {
    pub role_arn: String,
    pub actions: Vec<String>,
    /// The resource and the context keys (the request's action is not used).
    pub request: Request,
    pub extra_policies: Vec<String>,
}

/// IAM's answer for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Simulated {
    pub action: String,
    pub decision: Decision,
    /// Ids of the policies whose statements matched.
    pub matched: Vec<String>,
    /// Context keys the policies use that the question did not give.
    pub missing_context: Vec<String>,
}

/// IAM's own policy simulator (`iam:SimulatePrincipalPolicy`). Reads only.
pub trait PolicySimulator {
    /// One answer per action, in the order asked.
    fn simulate(
        &self,
        simulation: &Simulation,
    ) -> impl Future<Output = Result<Vec<Simulated>, Error>> + Send;
}

/// EC2 as the owner-tagger uses it: read, tag, sweep, in every region.
pub trait TaggerEc2:
    InstanceDirectory
    + InstanceTagger
    + VolumeDirectory
    + InstanceInventory
    + InRegion
    + EnabledRegions
    + Clone
    + Send
    + Sync
{
}

impl<T> TaggerEc2 for T where
    T: InstanceDirectory
        + InstanceTagger
        + VolumeDirectory
        + InstanceInventory
        + InRegion
        + EnabledRegions
        + Clone
        + Send
        + Sync
{
}

/// EC2 as the session-policy function uses it: live instances per user, in every region.
pub trait SessionsEc2:
    InstanceDirectory + LiveInstances + InRegion + EnabledRegions + Clone + Send + Sync
{
}

impl<T> SessionsEc2 for T where
    T: InstanceDirectory + LiveInstances + InRegion + EnabledRegions + Clone + Send + Sync
{
}

/// SSM as the session-policy function uses it: end sessions, in the event's region.
pub trait SessionsSsm: SessionTerminator + InRegion + Clone + Send + Sync {}

impl<T> SessionsSsm for T where T: SessionTerminator + InRegion + Clone + Send + Sync {}

/// The session documents of a region (`ssm:GetDocument`).
pub trait SessionDocumentReader {
    /// The document's content (JSON), or None when the region has no document of that name.
    fn session_document(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<String>, Error>> + Send;
}

/// An S3 bucket as `HeadBucket` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketState {
    Exists,
    Missing,
    /// It exists, but the caller may not read it.
    Forbidden,
}

/// A log group, with its KMS key if it is encrypted with one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogGroupFacts {
    pub kms_key: Option<String>,
}

aws_spelled! {
    /// A KMS key's state (`KeyState`): only an enabled key encrypts.
    KeyState {
        Enabled = "Enabled",
        Disabled = "Disabled",
        PendingDeletion = "PendingDeletion",
    }
}

/// What the doctor needs of a KMS key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFacts {
    pub state: KeyState,
}

/// Where sessions are logged and the key that encrypts them, in one region: are they there?
pub trait LoggingTargets {
    fn bucket(&self, name: &str) -> impl Future<Output = Result<BucketState, Error>> + Send;
    /// None when the region has no log group of exactly that name.
    fn log_group(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<LogGroupFacts>, Error>> + Send;
    /// None when the key does not exist.
    fn kms_key(&self, key: &str) -> impl Future<Output = Result<Option<KeyFacts>, Error>> + Send;
}

/// What the doctor needs from IAM: the role, its policies, the shards, the simulator.
pub trait DoctorIam:
    RoleDirectory
    + RoleEvaluationInputs
    + RolePolicies
    + ManagedPolicies
    + PolicySimulator
    + Clone
    + Send
    + Sync
{
}

impl<T> DoctorIam for T where
    T: RoleDirectory
        + RoleEvaluationInputs
        + RolePolicies
        + ManagedPolicies
        + PolicySimulator
        + Clone
        + Send
        + Sync
{
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_spellings_are_read_and_printed_as_aws_spells_them() {
        assert_eq!(PingStatus::parse("Online"), PingStatus::Online);
        assert_eq!(
            PingStatus::parse("Pending"),
            PingStatus::Other("Pending".into())
        );
        assert_eq!(PingStatus::ConnectionLost.to_string(), "ConnectionLost");
        assert_eq!(KeyState::parse("Enabled"), KeyState::Enabled);
        assert_eq!(
            KeyState::parse("PendingImport").to_string(),
            "PendingImport"
        );
    }
}
