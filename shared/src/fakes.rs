//! In-memory fakes of every port: EC2 instances and tags, IAM inline policies, IAM managed
//! policies with versions and attachments, and SSM sessions. For fast tests of the stores and
//! the use cases without moto; the moto tests stay for end-to-end AWS behaviour.
//!
//! One [`FakeAws`] implements every port. Clones share the same state, so a test keeps one
//! handle to seed and inspect while the code under test holds others. Every call is counted per
//! `service:Operation`, like the SDK call counter, and any operation can be made to fail.

#![allow(
    clippy::expect_used,
    reason = "in-memory fakes for tests: a bad fixture panics the test"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::domain::evaluation::{evaluate, NamedPolicy, Request};
use crate::domain::ids::{
    InstanceId, InstanceState, ManagedNodeId, ResolvedRole, RoleId, RoleIdentity, TagTarget,
    VolumeId,
};
use crate::error::Error;
use crate::ports::{
    BucketState, DescribedInstance, DescribedVolume, EnabledRegions, HybridNodes, InRegion,
    InstanceDirectory, InstanceInventory, InstanceTagger, KeyFacts, LiveInstances, LogGroupFacts,
    LoggingTargets, ManagedNode, ManagedNodes, ManagedPolicies, ManagedPolicy, PolicySimulator,
    PolicyVersion, RegisteredNode, RoleDirectory, RoleEvaluationInputs, RolePolicies,
    RolePolicyDocument, SessionDocumentReader, SessionTerminator, Simulated, Simulation, Visit,
    VolumeDirectory, VolumeVisit,
};

/// A customer-managed policy and its versions.
#[derive(Debug, Clone, Default)]
pub struct FakePolicy {
    pub name: String,
    pub id: String,
    pub path: String,
    /// Version id → document, in creation order.
    pub versions: Vec<(String, String)>,
    pub default_version: String,
    next_version: u32,
}

impl FakePolicy {
    /// The default version's document.
    pub fn document(&self) -> &str {
        self.versions
            .iter()
            .find(|(id, _)| *id == self.default_version)
            .map(|(_, d)| d.as_str())
            .unwrap_or("")
    }
}

/// A managed node outside EC2 in the fake: the activation it registered with and its tags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeHybridNode {
    pub activation_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// The trust policy of a role federated through a SAML identity provider.
pub const SAML_TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:saml-provider/Okta"},"Action":"sts:AssumeRoleWithSAML"}]}"#;

/// Everything the fake AWS holds.
#[derive(Debug, Default)]
pub struct World {
    /// Role name → role id.
    pub roles: BTreeMap<String, RoleId>,
    /// Role name → trust policy; a SAML-only trust ([`SAML_TRUST`]) when absent.
    pub trust_policies: BTreeMap<String, String>,
    /// Permissions boundaries by role name (ARNs).
    pub boundaries: BTreeMap<String, String>,
    pub instances: BTreeMap<InstanceId, DescribedInstance>,
    /// EBS volumes, each in the region of the first instance it is attached to (the home region
    /// when detached).
    pub volumes: BTreeMap<VolumeId, DescribedVolume>,
    /// (role name, policy name) → document.
    pub inline_policies: BTreeMap<(String, String), String>,
    /// ARN → policy.
    pub managed_policies: BTreeMap<String, FakePolicy>,
    /// Role name → attached policy ARNs.
    pub attachments: BTreeMap<String, Vec<String>>,
    /// Instance → its region (the home region when absent).
    pub instance_regions: BTreeMap<InstanceId, String>,
    /// The regions enabled in the account; only the home region when empty.
    pub enabled_regions: Vec<String>,
    /// Regions whose EC2 calls fail (retryable), as a disabled or throttled region would.
    pub unreadable_regions: BTreeSet<String>,
    /// Every `CreateTags` call: instances and volumes, key, value (unknown ones included).
    pub tag_writes: Vec<(Vec<TagTarget>, String, String)>,
    /// Instance → ids of its active sessions.
    pub sessions: BTreeMap<InstanceId, Vec<String>>,
    /// Session id → who started it (an ARN); a session without one is answered as unreadable.
    pub session_owners: BTreeMap<String, String>,
    /// Share expiry schedules: (region, instance) → when.
    pub expiry_schedules: BTreeMap<(String, InstanceId), chrono::DateTime<chrono::Utc>>,
    /// Calls per `service:Operation`.
    pub calls: BTreeMap<&'static str, u64>,
    /// Operations that fail with a retryable throttling error.
    pub failing: BTreeSet<&'static str>,
    /// Policies created so far, for unique policy ids.
    pub policies_created: u64,
    /// Instance → its managed-node record (in the instance's region).
    pub nodes: BTreeMap<InstanceId, ManagedNode>,
    /// Managed nodes outside EC2 (`mi-*`): (region, node) → activation id and resource tags.
    pub hybrid_nodes: BTreeMap<(String, ManagedNodeId), FakeHybridNode>,
    /// The managed-instances tier per region (`standard` when absent).
    pub activation_tiers: BTreeMap<String, String>,
    /// Activations: (region, activation id) → tags.
    pub activations: BTreeMap<(String, String), BTreeMap<String, String>>,
    /// Whether the policy simulator answers; it is denied (like an operator without
    /// `iam:SimulatePrincipalPolicy`) unless set.
    pub simulator_available: bool,
    /// (region, name) → session document content. None: the template's default documents in
    /// every region (see [`default_session_document`]).
    pub session_documents: Option<BTreeMap<(String, String), String>>,
    /// S3 buckets, log groups (→ KMS key if encrypted) and KMS keys (→ state).
    pub buckets: BTreeSet<String>,
    pub log_groups: BTreeMap<String, Option<String>>,
    pub kms_keys: BTreeMap<String, String>,
    /// How long a `live_instances_tagged` read takes (none: at once), and how many were in
    /// flight together at most.
    pub read_delay: Option<std::time::Duration>,
    pub reads_in_flight: usize,
    pub most_reads_in_flight: usize,
}

/// The documents the template creates with its defaults: the product's port forwarding
/// document (any port on the instance itself). The account's `SSM-SessionManagerRunShell` is
/// absent until Session Manager's preferences are first saved.
pub fn default_session_document(name: &str) -> Option<String> {
    (name == "SsmSessionOwner-PortForwarding").then(|| {
        r#"{"schemaVersion": "1.0", "sessionType": "Port",
            "parameters": {"portNumber": {"type": "String", "allowedPattern": "^([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$", "default": "80"},
                           "localPortNumber": {"type": "String", "default": "0"}},
            "properties": {"portNumber": "{{ portNumber }}", "type": "LocalPortForwarding", "localPortNumber": "{{ localPortNumber }}"}}"#
            .to_owned()
    })
}

/// A view of the shared state from one region: EC2 and SSM calls see that region's instances.
#[derive(Debug, Clone)]
pub struct FakeAws {
    state: Arc<Mutex<World>>,
    region: String,
}

impl Default for FakeAws {
    fn default() -> Self {
        Self {
            state: Arc::default(),
            region: HOME_REGION.to_owned(),
        }
    }
}

const ACCOUNT: &str = "123456789012";
/// The region a new fake's view, and its instances by default, are in.
pub const HOME_REGION: &str = "us-east-1";

impl FakeAws {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared state, to seed or inspect.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn with_role(self, name: &str, id: &RoleId) -> Self {
        self.world().roles.insert(name.to_owned(), id.clone());
        self
    }

    /// Give the role `name` this trust policy (SAML only by default).
    pub fn with_boundary(self, name: &str, arn: &str) -> Self {
        self.world()
            .boundaries
            .insert(name.to_owned(), arn.to_owned());
        self
    }

    pub fn with_trust_policy(self, name: &str, document: &str) -> Self {
        self.world()
            .trust_policies
            .insert(name.to_owned(), document.to_owned());
        self
    }

    /// Add an instance in `state` with `tags`, in the home region.
    pub fn add_instance(
        &self,
        id: &str,
        state: InstanceState,
        tags: &[(&str, &str)],
    ) -> InstanceId {
        self.add_instance_in(HOME_REGION, id, state, tags)
    }

    /// Add an instance in `region`.
    pub fn add_instance_in(
        &self,
        region: &str,
        id: &str,
        state: InstanceState,
        tags: &[(&str, &str)],
    ) -> InstanceId {
        let instance_id = InstanceId::parse(id).expect("a valid instance id in a test");
        self.world()
            .instance_regions
            .insert(instance_id.clone(), region.to_owned());
        self.world().instances.insert(
            instance_id.clone(),
            DescribedInstance {
                instance_id: instance_id.clone(),
                state,
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        );
        instance_id
    }

    /// Add a volume attached to `attached_to` (none: detached).
    pub fn add_volume(
        &self,
        id: &str,
        attached_to: &[&InstanceId],
        tags: &[(&str, &str)],
    ) -> VolumeId {
        let volume_id = VolumeId::parse(id).expect("a valid volume id in a test");
        self.world().volumes.insert(
            volume_id.clone(),
            DescribedVolume {
                volume_id: volume_id.clone(),
                attached_to: attached_to.iter().map(|i| (*i).clone()).collect(),
                tags: tags
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            },
        );
        volume_id
    }

    /// Calls made so far to one operation.
    pub fn calls_to(&self, operation: &str) -> u64 {
        self.world().calls.get(operation).copied().unwrap_or(0)
    }

    /// Calls made so far, in all.
    pub fn total_calls(&self) -> u64 {
        self.world().calls.values().sum()
    }

    /// Calls made so far, and start counting again.
    pub fn take_calls(&self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut self.world().calls)
    }

    /// Make an operation fail (retryable, like throttling) until [`heal`](Self::heal).
    pub fn fail(&self, operation: &'static str) {
        self.world().failing.insert(operation);
    }

    pub fn heal(&self) {
        self.world().failing.clear();
    }

    /// Count the call, or fail it when asked to.
    fn call(&self, operation: &'static str) -> Result<MutexGuard<'_, World>, Error> {
        let mut world = self.world();
        *world.calls.entry(operation).or_default() += 1;
        let regional = operation.starts_with("ec2:") || operation.starts_with("ssm:");
        if world.failing.contains(operation)
            || (regional && world.unreadable_regions.contains(&self.region))
        {
            return Err(Error::Aws {
                operation,
                code: "Throttling".into(),
                message: "injected by the fake".into(),
                retryable: true,
            });
        }
        Ok(world)
    }
}

impl World {
    fn in_region(&self, id: &InstanceId, region: &str) -> bool {
        self.instance_regions
            .get(id)
            .map(String::as_str)
            .unwrap_or(HOME_REGION)
            == region
    }

    fn volume_in_region(&self, volume: &DescribedVolume, region: &str) -> bool {
        match volume.attached_to.first() {
            Some(instance) => self.in_region(instance, region),
            None => region == HOME_REGION,
        }
    }

    /// The tags of an instance or volume in `region`, if it exists there.
    fn tags_of(
        &mut self,
        target: &TagTarget,
        region: &str,
    ) -> Option<&mut BTreeMap<String, String>> {
        match target {
            TagTarget::Instance(id) => {
                if !self.in_region(id, region) {
                    return None;
                }
                self.instances.get_mut(id).map(|i| &mut i.tags)
            }
            TagTarget::Volume(id) => {
                let here = self
                    .volumes
                    .get(id)
                    .is_some_and(|v| self.volume_in_region(v, region));
                if !here {
                    return None;
                }
                self.volumes.get_mut(id).map(|v| &mut v.tags)
            }
        }
    }
}

impl InRegion for FakeAws {
    fn region_name(&self) -> Option<String> {
        Some(self.region.clone())
    }

    fn in_region(&self, region: &str) -> Self {
        Self {
            state: self.state.clone(),
            region: region.to_owned(),
        }
    }
}

impl EnabledRegions for FakeAws {
    async fn enabled_regions(&self) -> Result<Vec<String>, Error> {
        let world = self.call("ec2:DescribeRegions")?;
        Ok(if world.enabled_regions.is_empty() {
            vec![HOME_REGION.to_owned()]
        } else {
            world.enabled_regions.clone()
        })
    }
}

fn no_such_entity(operation: &'static str, what: &str) -> Error {
    Error::Aws {
        operation,
        code: "NoSuchEntity".into(),
        message: format!("{what} not found"),
        retryable: false,
    }
}

impl InstanceDirectory for FakeAws {
    async fn describe_instances(
        &self,
        ids: &[InstanceId],
    ) -> Result<Vec<DescribedInstance>, Error> {
        let world = self.call("ec2:DescribeInstances")?;
        Ok(ids
            .iter()
            .filter(|id| world.in_region(id, &self.region))
            .filter_map(|id| world.instances.get(id).cloned())
            .collect())
    }
}

impl InstanceTagger for FakeAws {
    async fn create_tag(&self, targets: &[TagTarget], key: &str, value: &str) -> Result<(), Error> {
        let mut world = self.call("ec2:CreateTags")?;
        world
            .tag_writes
            .push((targets.to_vec(), key.to_owned(), value.to_owned()));
        for target in targets {
            if let Some(tags) = world.tags_of(target, &self.region) {
                tags.insert(key.to_owned(), value.to_owned());
            }
        }
        Ok(())
    }

    async fn delete_tag(&self, targets: &[TagTarget], key: &str) -> Result<(), Error> {
        let mut world = self.call("ec2:DeleteTags")?;
        for target in targets {
            if let Some(tags) = world.tags_of(target, &self.region) {
                tags.remove(key);
            }
        }
        Ok(())
    }

    async fn put_tags(
        &self,
        target: &TagTarget,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let mut world = self.call("ec2:CreateTags")?;
        for (key, value) in tags {
            world
                .tag_writes
                .push((vec![target.clone()], key.clone(), value.clone()));
        }
        if let Some(current) = world.tags_of(target, &self.region) {
            current.extend(tags.clone());
        }
        Ok(())
    }

    async fn remove_tags_if_unchanged(
        &self,
        target: &TagTarget,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let mut world = self.call("ec2:DeleteTags")?;
        if let Some(current) = world.tags_of(target, &self.region) {
            current.retain(|key, value| tags.get(key) != Some(value));
        }
        Ok(())
    }
}

/// The volume with only the tags a read keeps, as the EC2 adapter does.
fn volume_with_tags(volume: &DescribedVolume, keys: &[&str]) -> DescribedVolume {
    let mut kept = volume.clone();
    kept.tags
        .retain(|key, _| crate::domain::ownership::tag_kept(keys, key));
    kept
}

impl VolumeDirectory for FakeAws {
    async fn volumes_attached_to(
        &self,
        instance_ids: &[InstanceId],
        keys: &[&str],
    ) -> Result<Vec<DescribedVolume>, Error> {
        let world = self.call("ec2:DescribeVolumes")?;
        Ok(world
            .volumes
            .values()
            .filter(|v| world.volume_in_region(v, &self.region))
            .filter(|v| v.attached_to.iter().any(|i| instance_ids.contains(i)))
            .map(|v| volume_with_tags(v, keys))
            .collect())
    }

    async fn each_attached_volume(
        &self,
        keys: &[&str],
        visit: VolumeVisit<'_>,
    ) -> Result<(), Error> {
        let world = self.call("ec2:DescribeVolumes")?;
        world
            .volumes
            .values()
            .filter(|v| !v.attached_to.is_empty() && world.volume_in_region(v, &self.region))
            .for_each(|v| visit(volume_with_tags(v, keys)));
        Ok(())
    }

    async fn each_volume_tagged(&self, key: &str, visit: VolumeVisit<'_>) -> Result<(), Error> {
        let world = self.call("ec2:DescribeVolumes")?;
        world
            .volumes
            .values()
            .filter(|v| v.tags.contains_key(key) && world.volume_in_region(v, &self.region))
            .for_each(|v| visit(volume_with_tags(v, &[key])));
        Ok(())
    }
}

/// The instance with only the tags a bulk read keeps, as the EC2 adapter does.
fn only_tags(instance: &DescribedInstance, keys: &[&str]) -> DescribedInstance {
    let mut kept = instance.clone();
    kept.tags
        .retain(|key, _| crate::domain::ownership::tag_kept(keys, key));
    kept
}

impl InstanceInventory for FakeAws {
    async fn each_live_instance(&self, keys: &[&str], visit: Visit<'_>) -> Result<(), Error> {
        let world = self.call("ec2:DescribeInstances")?;
        world
            .instances
            .values()
            .filter(|i| i.state.is_live() && world.in_region(&i.instance_id, &self.region))
            .for_each(|i| visit(only_tags(i, keys)));
        Ok(())
    }
}

impl LiveInstances for FakeAws {
    async fn live_instances_tagged(
        &self,
        keys: &[&str],
        value: Option<&str>,
    ) -> Result<Vec<DescribedInstance>, Error> {
        let delay = {
            let mut world = self.call("ec2:DescribeInstances")?;
            world.reads_in_flight += 1;
            world.most_reads_in_flight = world.most_reads_in_flight.max(world.reads_in_flight);
            world.read_delay
        };
        // A page takes time: reads of several regions overlap only if they run at once.
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let mut world = self.world();
        world.reads_in_flight -= 1;
        Ok(world
            .instances
            .values()
            .filter(|i| i.state.is_live() && world.in_region(&i.instance_id, &self.region))
            .filter(|i| {
                keys.iter().any(|key| match value {
                    Some(v) => i.tags.get(*key).map(String::as_str) == Some(v),
                    None => i.tags.contains_key(*key),
                })
            })
            .map(|i| only_tags(i, keys))
            .collect())
    }

    async fn each_live_instance_tagged(
        &self,
        keys: &[&str],
        visit: Visit<'_>,
    ) -> Result<(), Error> {
        for instance in self.live_instances_tagged(keys, None).await? {
            visit(instance);
        }
        Ok(())
    }
}

impl RoleDirectory for FakeAws {
    async fn role_id(&self, role_name: &str) -> Result<RoleId, Error> {
        let world = self.call("iam:GetRole")?;
        world
            .roles
            .get(role_name)
            .cloned()
            .ok_or_else(|| Error::RoleNotFound {
                role_name: role_name.to_owned(),
            })
    }

    async fn role_for_permission_set(&self, permission_set: &str) -> Result<ResolvedRole, Error> {
        let world = self.call("iam:ListRoles")?;
        let roles = world
            .roles
            .iter()
            .map(|(name, id)| (name.clone(), id.to_string()))
            .collect();
        crate::aws::pick_permission_set_role(permission_set, roles)
    }

    async fn trust_policy(&self, role_name: &str) -> Result<String, Error> {
        let world = self.call("iam:GetRole")?;
        world.trust_policy(role_name)
    }
}

impl RolePolicies for FakeAws {
    async fn list_role_policies(&self, role: &str) -> Result<Vec<String>, Error> {
        let world = self.call("iam:ListRolePolicies")?;
        Ok(world
            .inline_policies
            .keys()
            .filter(|(r, _)| r == role)
            .map(|(_, name)| name.clone())
            .collect())
    }

    async fn get_role_policy(&self, role: &str, name: &str) -> Result<Option<String>, Error> {
        let world = self.call("iam:GetRolePolicy")?;
        Ok(world
            .inline_policies
            .get(&(role.to_owned(), name.to_owned()))
            .cloned())
    }

    async fn put_role_policy(&self, role: &str, name: &str, document: &str) -> Result<(), Error> {
        let mut world = self.call("iam:PutRolePolicy")?;
        world
            .inline_policies
            .insert((role.to_owned(), name.to_owned()), document.to_owned());
        Ok(())
    }

    async fn delete_role_policy(&self, role: &str, name: &str) -> Result<(), Error> {
        let mut world = self.call("iam:DeleteRolePolicy")?;
        world
            .inline_policies
            .remove(&(role.to_owned(), name.to_owned()));
        Ok(())
    }
}

impl ManagedPolicies for FakeAws {
    async fn list_policies(&self, path: &str) -> Result<Vec<ManagedPolicy>, Error> {
        let world = self.call("iam:ListPolicies")?;
        Ok(world
            .managed_policies
            .iter()
            .filter(|(_, p)| p.path.starts_with(path))
            .map(|(arn, p)| ManagedPolicy {
                name: p.name.clone(),
                arn: arn.clone(),
                id: p.id.clone(),
                default_version: p.default_version.clone(),
            })
            .collect())
    }

    async fn attached_policies(&self, role: &str) -> Result<Vec<String>, Error> {
        let world = self.call("iam:ListAttachedRolePolicies")?;
        if !world.roles.contains_key(role) {
            return Err(Error::RoleNotFound {
                role_name: role.to_owned(),
            });
        }
        Ok(world.attachments.get(role).cloned().unwrap_or_default())
    }

    async fn policy_document(&self, arn: &str, version: &str) -> Result<String, Error> {
        const OPERATION: &str = "iam:GetPolicyVersion";
        let world = self.call(OPERATION)?;
        world
            .managed_policies
            .get(arn)
            .and_then(|p| p.versions.iter().find(|(id, _)| id == version))
            .map(|(_, document)| document.clone())
            .ok_or_else(|| no_such_entity(OPERATION, arn))
    }

    async fn create_policy(
        &self,
        name: &str,
        path: &str,
        document: &str,
    ) -> Result<ManagedPolicy, Error> {
        let mut world = self.call("iam:CreatePolicy")?;
        let arn = format!("arn:aws:iam::{ACCOUNT}:policy{path}{name}");
        if world.managed_policies.contains_key(&arn) {
            return Err(Error::Aws {
                operation: "iam:CreatePolicy",
                code: "EntityAlreadyExists".into(),
                message: arn,
                retryable: false,
            });
        }
        world.policies_created += 1;
        let id = format!("ANPAFAKE{:012}", world.policies_created);
        world.managed_policies.insert(
            arn.clone(),
            FakePolicy {
                name: name.to_owned(),
                id: id.clone(),
                path: path.to_owned(),
                versions: vec![("v1".into(), document.to_owned())],
                default_version: "v1".into(),
                next_version: 2,
            },
        );
        Ok(ManagedPolicy {
            name: name.to_owned(),
            arn,
            id,
            default_version: "v1".into(),
        })
    }

    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<String, Error> {
        const OPERATION: &str = "iam:CreatePolicyVersion";
        let mut world = self.call(OPERATION)?;
        let policy = world
            .managed_policies
            .get_mut(arn)
            .ok_or_else(|| no_such_entity(OPERATION, arn))?;
        if policy.versions.len() >= 5 {
            return Err(Error::Aws {
                operation: OPERATION,
                code: "LimitExceeded".into(),
                message: "a managed policy can have up to 5 versions".into(),
                retryable: false,
            });
        }
        let id = format!("v{}", policy.next_version);
        policy.next_version += 1;
        policy.versions.push((id.clone(), document.to_owned()));
        policy.default_version = id.clone();
        Ok(id)
    }

    async fn list_policy_versions(&self, arn: &str) -> Result<Vec<PolicyVersion>, Error> {
        const OPERATION: &str = "iam:ListPolicyVersions";
        let world = self.call(OPERATION)?;
        let policy = world
            .managed_policies
            .get(arn)
            .ok_or_else(|| no_such_entity(OPERATION, arn))?;
        Ok(policy
            .versions
            .iter()
            .enumerate()
            .map(|(created, (id, _))| PolicyVersion {
                id: id.clone(),
                is_default: *id == policy.default_version,
                created: created as i64,
            })
            .collect())
    }

    async fn delete_policy_version(&self, arn: &str, version: &str) -> Result<(), Error> {
        let mut world = self.call("iam:DeletePolicyVersion")?;
        if let Some(policy) = world.managed_policies.get_mut(arn) {
            policy.versions.retain(|(id, _)| id != version);
        }
        Ok(())
    }

    async fn attach_role_policy(&self, role: &str, arn: &str) -> Result<(), Error> {
        let mut world = self.call("iam:AttachRolePolicy")?;
        let attached = world.attachments.entry(role.to_owned()).or_default();
        if !attached.iter().any(|a| a == arn) {
            attached.push(arn.to_owned());
        }
        Ok(())
    }

    async fn detach_role_policy(&self, role: &str, arn: &str) -> Result<(), Error> {
        let mut world = self.call("iam:DetachRolePolicy")?;
        if let Some(attached) = world.attachments.get_mut(role) {
            attached.retain(|a| a != arn);
        }
        Ok(())
    }

    async fn delete_policy(&self, arn: &str) -> Result<(), Error> {
        let mut world = self.call("iam:DeletePolicy")?;
        world.managed_policies.remove(arn);
        Ok(())
    }
}

impl RoleEvaluationInputs for FakeAws {
    async fn role_identity(&self, role_name: &str) -> Result<RoleIdentity, Error> {
        let world = self.call("iam:GetRole")?;
        let id = world
            .roles
            .get(role_name)
            .cloned()
            .ok_or_else(|| Error::RoleNotFound {
                role_name: role_name.to_owned(),
            })?;
        Ok(RoleIdentity {
            trust_policy: Some(world.trust_policy(role_name)?),
            permissions_boundary: world.boundaries.get(role_name).cloned(),
            max_session_seconds: Some(3600),
            id,
            arn: format!("arn:aws:iam::{ACCOUNT}:role/{role_name}"),
        })
    }

    async fn identity_policies(&self, role_name: &str) -> Result<Vec<RolePolicyDocument>, Error> {
        let world = self.call("iam:ListRolePolicies")?;
        Ok(world.identity_policies(role_name))
    }
}

impl World {
    /// A known role's trust policy (SAML only unless set); an unknown role is not found.
    fn trust_policy(&self, role_name: &str) -> Result<String, Error> {
        if !self.roles.contains_key(role_name) {
            return Err(Error::RoleNotFound {
                role_name: role_name.to_owned(),
            });
        }
        Ok(self
            .trust_policies
            .get(role_name)
            .cloned()
            .unwrap_or_else(|| SAML_TRUST.to_owned()))
    }

    fn identity_policies(&self, role_name: &str) -> Vec<RolePolicyDocument> {
        let inline = self
            .inline_policies
            .iter()
            .filter(|((role, _), _)| role == role_name)
            .map(|((_, name), document)| RolePolicyDocument {
                name: name.clone(),
                arn: None,
                document: document.clone(),
            });
        let managed = self
            .attachments
            .get(role_name)
            .into_iter()
            .flatten()
            .filter_map(|arn| {
                self.managed_policies.get(arn).map(|p| RolePolicyDocument {
                    name: p.name.clone(),
                    arn: Some(arn.clone()),
                    document: p.document().to_owned(),
                })
            });
        inline.chain(managed).collect()
    }
}

impl SessionDocumentReader for FakeAws {
    async fn session_document(&self, name: &str) -> Result<Option<String>, Error> {
        let world = self.call("ssm:GetDocument")?;
        Ok(match &world.session_documents {
            None => default_session_document(name),
            Some(documents) => documents
                .get(&(self.region.clone(), name.to_owned()))
                .cloned(),
        })
    }
}

impl LoggingTargets for FakeAws {
    async fn bucket(&self, name: &str) -> Result<BucketState, Error> {
        let world = self.call("s3:HeadBucket")?;
        Ok(if world.buckets.contains(name) {
            BucketState::Exists
        } else {
            BucketState::Missing
        })
    }

    async fn log_group(&self, name: &str) -> Result<Option<LogGroupFacts>, Error> {
        let world = self.call("logs:DescribeLogGroups")?;
        Ok(world.log_groups.get(name).map(|kms_key| LogGroupFacts {
            kms_key: kms_key.clone(),
        }))
    }

    async fn kms_key(&self, key: &str) -> Result<Option<KeyFacts>, Error> {
        let world = self.call("kms:DescribeKey")?;
        Ok(world.kms_keys.get(key).map(|state| KeyFacts {
            state: crate::ports::KeyState::parse(state),
        }))
    }
}

impl ManagedNodes for FakeAws {
    async fn managed_node(&self, instance_id: &InstanceId) -> Result<Option<ManagedNode>, Error> {
        let world = self.call("ssm:DescribeInstanceInformation")?;
        Ok(world
            .nodes
            .get(instance_id)
            .filter(|_| world.in_region(instance_id, &self.region))
            .cloned())
    }
}

impl crate::ports::ActivationTier for FakeAws {
    async fn activation_tier(&self) -> Result<String, Error> {
        let world = self.call("ssm:GetServiceSetting")?;
        Ok(world
            .activation_tiers
            .get(&self.region)
            .cloned()
            .unwrap_or_else(|| "standard".into()))
    }
}

impl HybridNodes for FakeAws {
    async fn registered_node(&self, node: &ManagedNodeId) -> Result<Option<RegisteredNode>, Error> {
        let world = self.call("ssm:DescribeInstanceInformation")?;
        Ok(world
            .hybrid_nodes
            .get(&(self.region.clone(), node.clone()))
            .map(|found| RegisteredNode {
                node_id: node.clone(),
                activation_id: found.activation_id.clone(),
            }))
    }

    async fn registered_nodes(&self) -> Result<Vec<RegisteredNode>, Error> {
        let world = self.call("ssm:DescribeInstanceInformation")?;
        Ok(world
            .hybrid_nodes
            .iter()
            .filter(|((region, _), _)| *region == self.region)
            .map(|((_, id), found)| RegisteredNode {
                node_id: id.clone(),
                activation_id: found.activation_id.clone(),
            })
            .collect())
    }

    async fn nodes_tagged(&self, key: &str, value: &str) -> Result<Vec<ManagedNodeId>, Error> {
        let world = self.call("ssm:DescribeInstanceInformation")?;
        Ok(world
            .hybrid_nodes
            .iter()
            .filter(|((region, _), node)| {
                *region == self.region && node.tags.get(key).map(String::as_str) == Some(value)
            })
            .map(|((_, id), _)| id.clone())
            .collect())
    }

    async fn node_tags(&self, node: &ManagedNodeId) -> Result<BTreeMap<String, String>, Error> {
        let world = self.call("ssm:ListTagsForResource")?;
        world
            .hybrid_nodes
            .get(&(self.region.clone(), node.clone()))
            .map(|found| found.tags.clone())
            .ok_or_else(|| Error::Aws {
                operation: "ssm:ListTagsForResource",
                code: "InvalidResourceId".into(),
                message: format!("{node} is not registered"),
                retryable: false,
            })
    }

    async fn activation_tags(
        &self,
        activation_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Error> {
        let world = self.call("ssm:DescribeActivations")?;
        Ok(world
            .activations
            .get(&(self.region.clone(), activation_id.to_owned()))
            .cloned())
    }

    async fn tag_node(&self, node: &ManagedNodeId, key: &str, value: &str) -> Result<(), Error> {
        let mut world = self.call("ssm:AddTagsToResource")?;
        let found = world
            .hybrid_nodes
            .get_mut(&(self.region.clone(), node.clone()))
            .expect("tagging a node the fake does not hold");
        found.tags.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn untag_node(&self, node: &ManagedNodeId, key: &str) -> Result<(), Error> {
        let mut world = self.call("ssm:RemoveTagsFromResource")?;
        if let Some(found) = world
            .hybrid_nodes
            .get_mut(&(self.region.clone(), node.clone()))
        {
            found.tags.remove(key);
        }
        Ok(())
    }
}

/// A model of IAM's simulator: the product's own evaluator over the role's policies. For
/// testing the doctor's plumbing only; IAM's real simulator is covered with aws-smithy-mocks.
impl PolicySimulator for FakeAws {
    async fn simulate(&self, simulation: &Simulation) -> Result<Vec<Simulated>, Error> {
        const SIMULATE: &str = "iam:SimulatePrincipalPolicy";
        let world = self.call(SIMULATE)?;
        if !world.simulator_available {
            return Err(Error::Aws {
                operation: SIMULATE,
                code: "AccessDenied".into(),
                message: "not authorized to perform: iam:SimulatePrincipalPolicy".into(),
                retryable: false,
            });
        }
        let role = simulation.role_arn.rsplit('/').next().unwrap_or_default();
        let mut policies: Vec<NamedPolicy> = world
            .identity_policies(role)
            .iter()
            .map(RolePolicyDocument::named)
            .collect();
        policies.extend(
            simulation
                .extra_policies
                .iter()
                .enumerate()
                .map(|(i, document)| NamedPolicy {
                    name: format!("PolicyInputList.{}", i + 1),
                    document: document.clone(),
                }),
        );
        simulation
            .actions
            .iter()
            .map(|action| {
                let request = Request {
                    action: action.clone(),
                    ..simulation.request.clone()
                };
                let found = evaluate(&policies, &request).map_err(|e| Error::Aws {
                    operation: SIMULATE,
                    code: "InvalidInput".into(),
                    message: e.to_string(),
                    retryable: false,
                })?;
                Ok(Simulated {
                    action: action.clone(),
                    decision: found.decision,
                    matched: found.by,
                    missing_context: Vec::new(),
                })
            })
            .collect()
    }
}

impl SessionTerminator for FakeAws {
    async fn end_sessions_on(&self, instance_id: &InstanceId) -> Result<Vec<String>, Error> {
        let mut world = self.call("ssm:DescribeSessions")?;
        let ended = world.sessions.remove(instance_id).unwrap_or_default();
        let terminations = ended.len() as u64;
        if terminations > 0 {
            *world.calls.entry("ssm:TerminateSession").or_default() += terminations;
        }
        Ok(ended)
    }
}

impl crate::ports::ShareExpiries for FakeAws {
    async fn schedule_expiry(
        &self,
        instance: &InstanceId,
        region: &str,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), Error> {
        let mut world = self.call("scheduler:CreateSchedule")?;
        world
            .expiry_schedules
            .insert((region.to_owned(), instance.clone()), at);
        Ok(())
    }
}

impl crate::ports::GuestSessions for FakeAws {
    async fn open_sessions_on(
        &self,
        instance_id: &InstanceId,
    ) -> Result<Vec<crate::ports::OpenSession>, Error> {
        let world = self.call("ssm:DescribeSessions")?;
        world
            .sessions
            .get(instance_id)
            .into_iter()
            .flatten()
            .map(|id| {
                let owner = world.session_owners.get(id).ok_or_else(|| {
                    Error::unreadable("ssm:DescribeSessions", "a session's owner")
                })?;
                Ok(crate::ports::OpenSession {
                    id: id.clone(),
                    owner: owner.clone(),
                })
            })
            .collect()
    }

    async fn end_session(&self, session_id: &str) -> Result<(), Error> {
        let mut world = self.call("ssm:TerminateSession")?;
        for ids in world.sessions.values_mut() {
            ids.retain(|id| id != session_id);
        }
        Ok(())
    }
}

/// CloudTrail's trails as every region sees them.
#[derive(Debug, Clone, Default)]
pub struct FakeTrails(pub Vec<crate::domain::trails::Trail>);

impl FakeTrails {
    /// One logging multi-region trail of every management event: launches are delivered
    /// everywhere.
    pub fn logging_everywhere() -> Self {
        use crate::domain::trails::{Selectors, Trail};
        Self(vec![Trail {
            arn: "arn:aws:cloudtrail:us-east-1:123456789012:trail/org".into(),
            home_region: "us-east-1".into(),
            multi_region: true,
            logging: true,
            selectors: Selectors::cloudtrail_default(),
        }])
    }
}

impl crate::ports::TrailDirectory for FakeTrails {
    async fn trails(&self) -> Result<Vec<crate::domain::trails::Trail>, Error> {
        Ok(self.0.clone())
    }
}

impl InRegion for FakeTrails {
    fn region_name(&self) -> Option<String> {
        None
    }

    fn in_region(&self, _region: &str) -> Self {
        self.clone()
    }
}
