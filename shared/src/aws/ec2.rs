//! EC2: reading instances and their volumes, and writing the user-id tag.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::{Filter, Instance, Tag, Volume};
use tracing::instrument;

use super::sdk_error::from_sdk;
use crate::domain::ids::{InstanceId, InstanceState, TagTarget, VolumeId};
use crate::domain::ownership;
use crate::error::Error;
use crate::ports::{
    DescribedInstance, DescribedVolume, EnabledRegions, InstanceDirectory, InstanceInventory,
    InstanceTagger, LiveInstances, Visit, VolumeDirectory, VolumeVisit,
};

impl EnabledRegions for aws_sdk_ec2::Client {
    #[instrument(skip(self))]
    async fn enabled_regions(&self) -> Result<Vec<String>, Error> {
        const OPERATION: &str = "ec2:DescribeRegions";
        // Without AllRegions, EC2 lists only the regions enabled (opted in) for the account.
        let output = self
            .describe_regions()
            .send()
            .await
            .map_err(|e| from_sdk(OPERATION, e))?;
        output
            .regions()
            .iter()
            // AWS leaves regions that are not opted in out of this answer; some endpoints
            // (moto) list them all the same: they cannot be read, so they are not covered.
            .filter(|r| r.opt_in_status() != Some("not-opted-in"))
            .map(|r| {
                r.region_name()
                    .map(str::to_owned)
                    .ok_or_else(|| Error::unreadable(OPERATION, "a region name"))
            })
            .collect()
    }
}

/// CreateTags accepts at most 1,000 resource ids per call.
const CREATE_TAGS_BATCH: usize = 1000;
/// DescribeInstances accepts at most 200 values per filter.
const DESCRIBE_FILTER_BATCH: usize = 200;
const DESCRIBE: &str = "ec2:DescribeInstances";

impl InstanceDirectory for aws_sdk_ec2::Client {
    #[instrument(skip(self), fields(count = instance_ids.len()))]
    async fn describe_instances(
        &self,
        instance_ids: &[InstanceId],
    ) -> Result<Vec<DescribedInstance>, Error> {
        let mut found = Vec::new();
        // A filter, unlike InstanceIds, does not fail the whole call for an unknown id.
        for batch in instance_ids.chunks(DESCRIBE_FILTER_BATCH) {
            let filter = Filter::builder()
                .name("instance-id")
                .set_values(Some(batch.iter().map(|i| i.to_string()).collect()))
                .build();
            found.extend(describe_filtered(self, vec![filter], None).await?);
        }
        Ok(found)
    }
}

fn live_filter() -> Filter {
    Filter::builder()
        .name("instance-state-name")
        .set_values(Some(
            InstanceState::LIVE
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
        ))
        .build()
}

impl InstanceInventory for aws_sdk_ec2::Client {
    /// One page per 1,000 instances. Tag keys cannot be filtered here: EC2 compares them with
    /// regard to case, and the sweep must also see instances that carry only a case variant.
    #[instrument(skip(self, visit))]
    async fn each_live_instance(&self, keys: &[&str], visit: Visit<'_>) -> Result<(), Error> {
        describe_each(self, vec![live_filter()], Some(keys), visit).await
    }
}

impl LiveInstances for aws_sdk_ec2::Client {
    #[instrument(skip(self))]
    async fn live_instances_tagged(
        &self,
        keys: &[&str],
        value: Option<&str>,
    ) -> Result<Vec<DescribedInstance>, Error> {
        let tag = match (keys, value) {
            ([key], Some(value)) => Filter::builder()
                .name(format!("tag:{key}"))
                .values(value.to_owned())
                .build(),
            // One call for several keys: any tag holding the value, then the keys decide.
            (_, Some(value)) => Filter::builder().name("tag-value").values(value).build(),
            (_, None) => tag_key_filter(keys),
        };
        let found = describe_filtered(self, vec![tag, live_filter()], Some(keys)).await?;
        Ok(found
            .into_iter()
            .filter(|instance| {
                value.is_none_or(|value| {
                    keys.iter()
                        .any(|key| instance.tags.get(*key).map(String::as_str) == Some(value))
                })
            })
            .collect())
    }

    #[instrument(skip(self, visit))]
    async fn each_live_instance_tagged(
        &self,
        keys: &[&str],
        visit: Visit<'_>,
    ) -> Result<(), Error> {
        describe_each(
            self,
            vec![tag_key_filter(keys), live_filter()],
            Some(keys),
            visit,
        )
        .await
    }
}

/// Instances that carry any of `keys` (a filter's values are ORed).
fn tag_key_filter(keys: &[&str]) -> Filter {
    Filter::builder()
        .name("tag-key")
        .set_values(Some(keys.iter().map(|k| (*k).to_owned()).collect()))
        .build()
}

/// Whether a tag is kept: with `keys`, only those keys and their case variants (so a fleet's
/// other tags are dropped as each page arrives, and memory grows with the ownership tags only).
fn kept(keys: Option<&[&str]>, key: &str) -> bool {
    keys.is_none_or(|keys| ownership::tag_kept(keys, key))
}

/// Every instance of a filtered `DescribeInstances`, collected; `keep` as in [`kept`].
async fn describe_filtered(
    ec2: &aws_sdk_ec2::Client,
    filters: Vec<Filter>,
    keep: Option<&[&str]>,
) -> Result<Vec<DescribedInstance>, Error> {
    let mut found = Vec::new();
    describe_each(ec2, filters, keep, &mut |instance| found.push(instance)).await?;
    Ok(found)
}

/// Every page of a filtered `DescribeInstances`, each instance handed to `visit` and each page
/// dropped before the next is asked for; `keep` as in [`kept`].
async fn describe_each(
    ec2: &aws_sdk_ec2::Client,
    filters: Vec<Filter>,
    keep: Option<&[&str]>,
    visit: Visit<'_>,
) -> Result<(), Error> {
    let mut pages = ec2
        .describe_instances()
        .set_filters(Some(filters))
        .max_results(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| from_sdk(DESCRIBE, e))?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            visit(read_instance(instance, keep)?);
        }
    }
    Ok(())
}

/// An instance as EC2 describes it, with the tags `keep` keeps; a missing id, state or tag key
/// is an unreadable answer.
fn read_instance(instance: &Instance, keep: Option<&[&str]>) -> Result<DescribedInstance, Error> {
    let id = instance
        .instance_id()
        .ok_or_else(|| Error::unreadable(DESCRIBE, "an instance id"))?;
    let instance_id = InstanceId::parse(id)
        .map_err(|reason| Error::unreadable(DESCRIBE, format!("a valid instance id ({reason})")))?;
    let state_name = instance
        .state()
        .and_then(|s| s.name())
        .map(|n| n.as_str().to_owned());
    let state = state_name
        .as_deref()
        .and_then(InstanceState::parse)
        .ok_or_else(|| {
            Error::unreadable(
                DESCRIBE,
                format!("a known state for {id} (got {state_name:?})"),
            )
        })?;
    let mut tags = std::collections::BTreeMap::new();
    for tag in instance.tags() {
        let key = tag
            .key()
            .ok_or_else(|| Error::unreadable(DESCRIBE, format!("a tag key on {id}")))?;
        if !kept(keep, key) {
            continue;
        }
        // EC2 leaves out the value of a tag whose value is empty.
        tags.insert(key.to_owned(), tag.value().unwrap_or_default().to_owned());
    }
    Ok(DescribedInstance {
        instance_id,
        state,
        tags,
    })
}

impl InstanceTagger for aws_sdk_ec2::Client {
    #[instrument(skip(self), fields(count = targets.len()))]
    async fn create_tag(&self, targets: &[TagTarget], key: &str, value: &str) -> Result<(), Error> {
        for batch in targets.chunks(CREATE_TAGS_BATCH) {
            self.create_tags()
                .set_resources(Some(batch.iter().map(|t| t.to_string()).collect()))
                .tags(Tag::builder().key(key).value(value).build())
                .send()
                .await
                .map_err(|e| from_sdk("ec2:CreateTags", e))?;
        }
        Ok(())
    }

    #[instrument(skip(self), fields(count = targets.len()))]
    async fn delete_tag(&self, targets: &[TagTarget], key: &str) -> Result<(), Error> {
        for batch in targets.chunks(CREATE_TAGS_BATCH) {
            // A tag with a key and no value deletes the key whatever its value.
            self.delete_tags()
                .set_resources(Some(batch.iter().map(|t| t.to_string()).collect()))
                .tags(Tag::builder().key(key).build())
                .send()
                .await
                .map_err(|e| from_sdk("ec2:DeleteTags", e))?;
        }
        Ok(())
    }

    #[instrument(skip(self, tags), fields(count = tags.len()))]
    async fn put_tags(
        &self,
        target: &TagTarget,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        self.create_tags()
            .resources(target.to_string())
            .set_tags(Some(ec2_tags(tags)))
            .send()
            .await
            .map_err(|e| from_sdk("ec2:CreateTags", e))?;
        Ok(())
    }

    #[instrument(skip(self, tags), fields(count = tags.len()))]
    async fn remove_tags_if_unchanged(
        &self,
        target: &TagTarget,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        // A tag given with its value is deleted only while it has that value.
        self.delete_tags()
            .resources(target.to_string())
            .set_tags(Some(ec2_tags(tags)))
            .send()
            .await
            .map_err(|e| from_sdk("ec2:DeleteTags", e))?;
        Ok(())
    }
}

const DESCRIBE_VOLUMES: &str = "ec2:DescribeVolumes";

/// EC2 tags from a map.
fn ec2_tags(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(key, value)| Tag::builder().key(key).value(value).build())
        .collect()
}

impl VolumeDirectory for aws_sdk_ec2::Client {
    #[instrument(skip(self), fields(count = instance_ids.len()))]
    async fn volumes_attached_to(
        &self,
        instance_ids: &[InstanceId],
        keys: &[&str],
    ) -> Result<Vec<DescribedVolume>, Error> {
        let mut found = Vec::new();
        for batch in instance_ids.chunks(DESCRIBE_FILTER_BATCH) {
            let filter = Filter::builder()
                .name("attachment.instance-id")
                .set_values(Some(batch.iter().map(|i| i.to_string()).collect()))
                .build();
            describe_volumes_each(self, filter, keys, &mut |v| found.push(v)).await?;
        }
        Ok(found)
    }

    /// One page per 500 volumes; only attached (`in-use`) volumes are read.
    #[instrument(skip(self, visit))]
    async fn each_attached_volume(
        &self,
        keys: &[&str],
        visit: VolumeVisit<'_>,
    ) -> Result<(), Error> {
        let filter = Filter::builder().name("status").values("in-use").build();
        describe_volumes_each(self, filter, keys, visit).await
    }

    #[instrument(skip(self, visit))]
    async fn each_volume_tagged(&self, key: &str, visit: VolumeVisit<'_>) -> Result<(), Error> {
        let filter = Filter::builder().name("tag-key").values(key).build();
        describe_volumes_each(self, filter, &[key], visit).await
    }
}

/// Every page of a filtered `DescribeVolumes`, each volume handed to `visit`.
async fn describe_volumes_each(
    ec2: &aws_sdk_ec2::Client,
    filter: Filter,
    keys: &[&str],
    visit: VolumeVisit<'_>,
) -> Result<(), Error> {
    let mut pages = ec2
        .describe_volumes()
        .filters(filter)
        .max_results(500)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| from_sdk(DESCRIBE_VOLUMES, e))?;
        for volume in page.volumes() {
            visit(read_volume(volume, keys)?);
        }
    }
    Ok(())
}

/// A volume as EC2 describes it, with the tags `keys` keeps; a missing or invalid id, attached
/// instance id or tag key is an unreadable answer.
fn read_volume(volume: &Volume, keys: &[&str]) -> Result<DescribedVolume, Error> {
    let id = volume
        .volume_id()
        .ok_or_else(|| Error::unreadable(DESCRIBE_VOLUMES, "a volume id"))?;
    let volume_id = VolumeId::parse(id).map_err(|reason| {
        Error::unreadable(DESCRIBE_VOLUMES, format!("a valid volume id ({reason})"))
    })?;
    let mut attached_to = Vec::new();
    for attachment in volume.attachments() {
        let instance = attachment.instance_id().ok_or_else(|| {
            Error::unreadable(
                DESCRIBE_VOLUMES,
                format!("the instance {id} is attached to"),
            )
        })?;
        attached_to.push(InstanceId::parse(instance).map_err(|reason| {
            Error::unreadable(DESCRIBE_VOLUMES, format!("a valid instance id ({reason})"))
        })?);
    }
    let mut tags = std::collections::BTreeMap::new();
    for tag in volume.tags() {
        let key = tag
            .key()
            .ok_or_else(|| Error::unreadable(DESCRIBE_VOLUMES, format!("a tag key on {id}")))?;
        if ownership::tag_kept(keys, key) {
            tags.insert(key.to_owned(), tag.value().unwrap_or_default().to_owned());
        }
    }
    Ok(DescribedVolume {
        volume_id,
        attached_to,
        tags,
    })
}
