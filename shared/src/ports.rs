//! Small traits, one per capability, so the handlers can be driven by real clients or fakes.

use std::collections::BTreeMap;
use std::future::Future;

use crate::error::Error;

/// What EC2 says about one instance now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedInstance {
    pub instance_id: String,
    /// `pending`, `running`, `stopping`, `stopped`, `shutting-down` or `terminated`.
    pub state: String,
    pub tags: BTreeMap<String, String>,
}

/// Read instances by id. Ids EC2 does not know are simply absent from the answer.
pub trait InstanceDirectory {
    fn describe_instances(
        &self,
        instance_ids: &[String],
    ) -> impl Future<Output = Result<Vec<DescribedInstance>, Error>> + Send;
}

/// Write one tag on many instances.
pub trait InstanceTagger {
    fn create_tag(
        &self,
        instance_ids: &[String],
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), Error>> + Send;
}

/// Look up a role's unique id (`AROA…`) by name.
pub trait RoleDirectory {
    fn role_id(&self, role_name: &str) -> impl Future<Output = Result<String, Error>> + Send;
}

/// Live (pending, running, stopping, stopped) instances that carry a tag.
pub trait LiveInstances {
    /// Instances whose tag `key` equals `value`, or that carry `key` at all when `value` is None.
    fn live_instances_tagged(
        &self,
        key: &str,
        value: Option<&str>,
    ) -> impl Future<Output = Result<Vec<DescribedInstance>, Error>> + Send;
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
        instance_id: &str,
    ) -> impl Future<Output = Result<Vec<String>, Error>> + Send;
}
