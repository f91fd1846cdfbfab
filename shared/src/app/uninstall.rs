//! `uninstall`: what the product wrote outside its stack, which `sam delete` leaves behind: the
//! shards and the per-user inline policies on the users' role, the user-id tag on instances
//! and volumes, and the guest slots and share expiry on instances, in every covered region. A
//! dry run lists them; an applied run removes them.

use std::collections::BTreeSet;

use super::managed_store::ManagedStore;
use super::regions::RegionalClients;
use crate::config::{Config, WriteMode};
use crate::domain::ids::{ResolvedRole, TagTarget};
use crate::domain::statements::Scope;
use crate::error::Error;
use crate::ports::{
    EnabledRegions, InRegion, InstanceTagger, LiveInstances, ManagedPolicies, PolicyStore,
    RolePolicies, StoreReport, VolumeDirectory,
};

/// What was found, and removed unless it was a dry run.
#[derive(Debug)]
pub struct Leftovers {
    /// The shards and inline policies: `planned` in a dry run, `applied` otherwise.
    pub iam: StoreReport,
    /// Per covered region, the instances and volumes carrying the user-id tag.
    pub tagged: Vec<(String, Vec<TagTarget>)>,
    /// Per covered region, the instances carrying a guest slot or a share's expiry (every key
    /// any deployment may have written).
    pub shared: Vec<(String, Vec<TagTarget>)>,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.iam.applied.is_empty()
            && self.iam.planned.is_empty()
            && self.tagged.iter().all(|(_, targets)| targets.is_empty())
            && self.shared.iter().all(|(_, targets)| targets.is_empty())
    }
}

/// Find, and with [`WriteMode::Apply`] remove, what the product wrote outside its stack.
pub async fn leftovers<E, P>(
    config: &Config,
    role: &ResolvedRole,
    ec2: &E,
    iam: P,
    mode: WriteMode,
) -> Result<Leftovers, Error>
where
    E: LiveInstances
        + VolumeDirectory
        + InstanceTagger
        + InRegion
        + EnabledRegions
        + Clone
        + Send
        + Sync,
    P: ManagedPolicies + RolePolicies + Sync + Clone,
{
    // Nobody desired: the managed store removes its shards and the inline store's policies.
    let store = ManagedStore::from_config(iam, config);
    let report = store
        .converge(role, &Scope::All, &BTreeSet::new(), mode)
        .await?;
    let regions = RegionalClients::new(ec2.clone(), config);
    let key = config.ownership.user_id_tag_key.as_str();
    let sharing_keys = config.sharing.product_keys();
    let mut keys = vec![key];
    keys.extend(sharing_keys.iter().map(String::as_str));
    let (keys, sharing) = (keys.as_slice(), &sharing_keys);
    let found = regions
        .read_fleet(|ec2| async move {
            let (mut targets, mut shared) = (Vec::new(), Vec::new());
            ec2.each_live_instance_tagged(keys, &mut |instance| {
                let target = TagTarget::Instance(instance.instance_id.clone());
                if sharing.iter().any(|k| instance.tags.contains_key(k)) {
                    shared.push(target.clone());
                }
                if instance.tags.contains_key(key) {
                    targets.push(target);
                }
            })
            .await?;
            ec2.each_volume_tagged(key, &mut |volume| {
                targets.push(TagTarget::Volume(volume.volume_id))
            })
            .await?;
            Ok((targets, shared))
        })
        .await?;
    let mut tagged = Vec::new();
    let mut shared = Vec::new();
    for (region, (targets, with_shares)) in found {
        tagged.push((region.clone(), targets));
        shared.push((region, with_shares));
    }
    if mode == WriteMode::Apply {
        for (region, targets) in tagged.iter().filter(|(_, t)| !t.is_empty()) {
            regions.get(Some(region)).delete_tag(targets, key).await?;
        }
        for (region, targets) in shared.iter().filter(|(_, t)| !t.is_empty()) {
            let ec2 = regions.get(Some(region));
            for sharing_key in &sharing_keys {
                ec2.delete_tag(targets, sharing_key).await?;
            }
        }
    }
    Ok(Leftovers {
        iam: report,
        tagged,
        shared,
    })
}
