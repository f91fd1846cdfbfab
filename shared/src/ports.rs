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
