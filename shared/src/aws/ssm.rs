//! Systems Manager: ending the sessions still open on an instance, and the managed-node record
//! and the session documents the doctor reads (moto has GetDocument).
//!
//! moto has no Session Manager APIs (`DescribeSessions`, `TerminateSession`) and no
//! `DescribeInstanceInformation`, so this adapter is covered with `aws-smithy-mocks`
//! (`shared/tests/moto/session_ending.rs`, `tools/doctor/tests/doctor_mocked.rs`).

use std::collections::BTreeMap;

use aws_sdk_ssm::types::{ResourceTypeForTagging, SessionFilter, SessionFilterKey, SessionState};
use tracing::instrument;

use super::sdk_error::from_sdk;
use crate::domain::ids::{InstanceId, ManagedNodeId};
use crate::error::Error;
use crate::ports::PingStatus;
use crate::ports::{
    GuestSessions, HybridNodes, ManagedNode, ManagedNodes, OpenSession, SessionDocumentReader,
    SessionTerminator,
};

impl ManagedNodes for aws_sdk_ssm::Client {
    #[instrument(skip(self))]
    async fn managed_node(&self, instance_id: &InstanceId) -> Result<Option<ManagedNode>, Error> {
        const DESCRIBE: &str = DESCRIBE_NODES;
        let filter = information_filter("InstanceIds", instance_id.as_str())?;
        let output = self
            .describe_instance_information()
            .filters(filter)
            .send()
            .await
            .map_err(|e| from_sdk(DESCRIBE, e))?;
        let Some(node) = output
            .instance_information_list()
            .iter()
            .find(|n| n.instance_id() == Some(instance_id.as_str()))
        else {
            return Ok(None);
        };
        let ping_status = node
            .ping_status()
            .map(|p| PingStatus::parse(p.as_str()))
            .ok_or_else(|| Error::unreadable(DESCRIBE, "the node's ping status"))?;
        Ok(Some(ManagedNode {
            ping_status,
            agent_version: node.agent_version().map(str::to_owned),
            platform: node
                .platform_name()
                .map(|name| match node.platform_version() {
                    Some(version) => format!("{name} {version}"),
                    None => name.to_owned(),
                }),
            last_ping: node.last_ping_date_time().map(|t| t.to_string()),
        }))
    }
}

/// A filter of `DescribeInstanceInformation`.
fn information_filter(
    key: &str,
    value: &str,
) -> Result<aws_sdk_ssm::types::InstanceInformationStringFilter, Error> {
    aws_sdk_ssm::types::InstanceInformationStringFilter::builder()
        .key(key)
        .values(value)
        .build()
        .map_err(|e| Error::Aws {
            operation: DESCRIBE_NODES,
            code: "InvalidFilter".into(),
            message: e.to_string(),
            retryable: false,
        })
}

const DESCRIBE_NODES: &str = "ssm:DescribeInstanceInformation";

/// One node of a `DescribeInstanceInformation` answer, read as a node outside EC2: an id that
/// is missing or is not `mi-…` is an answer that cannot be read, never "no node".
fn registered(
    node: &aws_sdk_ssm::types::InstanceInformation,
) -> Result<crate::ports::RegisteredNode, Error> {
    let id = node
        .instance_id()
        .ok_or_else(|| Error::unreadable(DESCRIBE_NODES, "a node's id"))?;
    let node_id = ManagedNodeId::parse(id)
        .map_err(|_| Error::unreadable(DESCRIBE_NODES, format!("a managed node id ({id:?})")))?;
    Ok(crate::ports::RegisteredNode {
        node_id,
        activation_id: node.activation_id().map(str::to_owned),
    })
}

/// Every node outside EC2 of the client's region (`ResourceType=ManagedInstance`), narrowed by
/// `also` when given, pages of 50.
async fn managed_instances(
    client: &aws_sdk_ssm::Client,
    also: Option<aws_sdk_ssm::types::InstanceInformationStringFilter>,
) -> Result<Vec<crate::ports::RegisteredNode>, Error> {
    let mut filters = vec![information_filter("ResourceType", "ManagedInstance")?];
    filters.extend(also);
    let mut pages = client
        .describe_instance_information()
        .set_filters(Some(filters))
        .max_results(50)
        .into_paginator()
        .send();
    let mut nodes = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| from_sdk(DESCRIBE_NODES, e))?;
        for node in page.instance_information_list() {
            nodes.push(registered(node)?);
        }
    }
    Ok(nodes)
}

/// Tags as Systems Manager gives them.
fn tag_map(tags: &[aws_sdk_ssm::types::Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .map(|tag| (tag.key().to_owned(), tag.value().to_owned()))
        .collect()
}

/// moto has no activations, no `DescribeInstanceInformation` and refuses `ManagedInstance`
/// tags: covered with aws-smithy-mocks (`shared/tests/moto/hybrid_nodes.rs`).
impl HybridNodes for aws_sdk_ssm::Client {
    #[instrument(skip(self))]
    async fn registered_node(
        &self,
        node: &ManagedNodeId,
    ) -> Result<Option<crate::ports::RegisteredNode>, Error> {
        let output = self
            .describe_instance_information()
            .filters(information_filter("InstanceIds", node.as_str())?)
            .send()
            .await
            .map_err(|e| from_sdk(DESCRIBE_NODES, e))?;
        output
            .instance_information_list()
            .iter()
            .filter(|n| n.instance_id() == Some(node.as_str()))
            .map(registered)
            .next()
            .transpose()
    }

    #[instrument(skip(self))]
    async fn registered_nodes(&self) -> Result<Vec<crate::ports::RegisteredNode>, Error> {
        managed_instances(self, None).await
    }

    #[instrument(skip(self))]
    async fn nodes_tagged(&self, key: &str, value: &str) -> Result<Vec<ManagedNodeId>, Error> {
        let tagged = information_filter(&format!("tag:{key}"), value)?;
        let nodes = managed_instances(self, Some(tagged)).await?;
        Ok(nodes.into_iter().map(|n| n.node_id).collect())
    }

    #[instrument(skip(self))]
    async fn node_tags(&self, node: &ManagedNodeId) -> Result<BTreeMap<String, String>, Error> {
        let output = self
            .list_tags_for_resource()
            .resource_type(ResourceTypeForTagging::ManagedInstance)
            .resource_id(node.as_str())
            .send()
            .await
            .map_err(|e| from_sdk("ssm:ListTagsForResource", e))?;
        Ok(tag_map(output.tag_list()))
    }

    #[instrument(skip(self))]
    async fn activation_tags(
        &self,
        activation_id: &str,
    ) -> Result<Option<BTreeMap<String, String>>, Error> {
        const DESCRIBE: &str = "ssm:DescribeActivations";
        let filter = aws_sdk_ssm::types::DescribeActivationsFilter::builder()
            .filter_key(aws_sdk_ssm::types::DescribeActivationsFilterKeys::ActivationIds)
            .filter_values(activation_id)
            .build();
        let mut next_token = None;
        loop {
            let output = self
                .describe_activations()
                .filters(filter.clone())
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| from_sdk(DESCRIBE, e))?;
            if let Some(found) = output
                .activation_list()
                .iter()
                .find(|a| a.activation_id() == Some(activation_id))
            {
                return Ok(Some(tag_map(found.tags())));
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next_token = Some(token.to_owned()),
                _ => return Ok(None),
            }
        }
    }

    #[instrument(skip(self))]
    async fn tag_node(&self, node: &ManagedNodeId, key: &str, value: &str) -> Result<(), Error> {
        const ADD: &str = "ssm:AddTagsToResource";
        let tag = aws_sdk_ssm::types::Tag::builder()
            .key(key)
            .value(value)
            .build()
            .map_err(|e| Error::Aws {
                operation: ADD,
                code: "InvalidTag".into(),
                message: e.to_string(),
                retryable: false,
            })?;
        self.add_tags_to_resource()
            .resource_type(ResourceTypeForTagging::ManagedInstance)
            .resource_id(node.as_str())
            .tags(tag)
            .send()
            .await
            .map_err(|e| from_sdk(ADD, e))?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn untag_node(&self, node: &ManagedNodeId, key: &str) -> Result<(), Error> {
        self.remove_tags_from_resource()
            .resource_type(ResourceTypeForTagging::ManagedInstance)
            .resource_id(node.as_str())
            .tag_keys(key)
            .send()
            .await
            .map_err(|e| from_sdk("ssm:RemoveTagsFromResource", e))?;
        Ok(())
    }
}

/// moto has no service settings: covered with aws-smithy-mocks.
impl crate::ports::ActivationTier for aws_sdk_ssm::Client {
    #[instrument(skip(self))]
    async fn activation_tier(&self) -> Result<String, Error> {
        const GET: &str = "ssm:GetServiceSetting";
        let output = self
            .get_service_setting()
            .setting_id("/ssm/managed-instance/activation-tier")
            .send()
            .await
            .map_err(|e| from_sdk(GET, e))?;
        output
            .service_setting()
            .and_then(|s| s.setting_value())
            .map(str::to_owned)
            .ok_or_else(|| Error::unreadable(GET, "the tier's value"))
    }
}

/// Every active session on `instance_id`, page by page, each as `read` makes it.
async fn active_sessions<T>(
    client: &aws_sdk_ssm::Client,
    instance_id: &InstanceId,
    read: impl Fn(&aws_sdk_ssm::types::Session) -> Result<T, Error>,
) -> Result<Vec<T>, Error> {
    let filter = SessionFilter::builder()
        .key(SessionFilterKey::TargetId)
        .value(instance_id.as_str())
        .build()
        .map_err(|e| Error::Aws {
            operation: "ssm:DescribeSessions",
            code: "InvalidFilter".into(),
            message: e.to_string(),
            retryable: false,
        })?;
    let mut found = Vec::new();
    let mut next_token = None;
    loop {
        let page = client
            .describe_sessions()
            .state(SessionState::Active)
            .filters(filter.clone())
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| from_sdk("ssm:DescribeSessions", e))?;
        for session in page.sessions() {
            found.push(read(session)?);
        }
        next_token = page.next_token().map(str::to_owned);
        if next_token.is_none() {
            return Ok(found);
        }
    }
}

fn session_id(session: &aws_sdk_ssm::types::Session) -> Result<String, Error> {
    session
        .session_id()
        .map(str::to_owned)
        .ok_or_else(|| Error::unreadable("ssm:DescribeSessions", "a session id"))
}

async fn terminate(client: &aws_sdk_ssm::Client, session_id: &str) -> Result<(), Error> {
    client
        .terminate_session()
        .session_id(session_id)
        .send()
        .await
        .map_err(|e| from_sdk("ssm:TerminateSession", e))?;
    Ok(())
}

impl SessionTerminator for aws_sdk_ssm::Client {
    #[instrument(skip(self))]
    async fn end_sessions_on(&self, instance_id: &InstanceId) -> Result<Vec<String>, Error> {
        let ids = active_sessions(self, instance_id, session_id).await?;
        for id in &ids {
            terminate(self, id).await?;
        }
        Ok(ids)
    }
}

impl GuestSessions for aws_sdk_ssm::Client {
    /// A session whose owner cannot be read is an error, never "nobody's": that would leave a
    /// guest in after their share ended.
    #[instrument(skip(self))]
    async fn open_sessions_on(&self, instance_id: &InstanceId) -> Result<Vec<OpenSession>, Error> {
        active_sessions(self, instance_id, |session| {
            Ok(OpenSession {
                id: session_id(session)?,
                owner: session.owner().map(str::to_owned).ok_or_else(|| {
                    Error::unreadable("ssm:DescribeSessions", "a session's owner")
                })?,
            })
        })
        .await
    }

    #[instrument(skip(self))]
    async fn end_session(&self, session_id: &str) -> Result<(), Error> {
        terminate(self, session_id).await
    }
}

impl SessionDocumentReader for aws_sdk_ssm::Client {
    #[instrument(skip(self))]
    async fn session_document(&self, name: &str) -> Result<Option<String>, Error> {
        const GET: &str = "ssm:GetDocument";
        match self.get_document().name(name).send().await {
            Ok(output) => output
                .content()
                .map(|c| Some(c.to_owned()))
                .ok_or_else(|| Error::unreadable(GET, "the document's content")),
            Err(err) => {
                let err = from_sdk(GET, err);
                match &err {
                    Error::Aws { code, .. } if code == "InvalidDocument" => Ok(None),
                    _ => Err(err),
                }
            }
        }
    }
}
