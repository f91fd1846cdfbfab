//! Systems Manager: ending the sessions still open on an instance, and the managed-node record
//! and the session documents the doctor reads (moto has GetDocument).
//!
//! moto has no Session Manager APIs (`DescribeSessions`, `TerminateSession`) and no
//! `DescribeInstanceInformation`, so this adapter is covered with `aws-smithy-mocks`
//! (`shared/tests/moto/session_ending.rs`, `tools/doctor/tests/doctor_mocked.rs`).

use aws_sdk_ssm::types::{SessionFilter, SessionFilterKey, SessionState};
use tracing::instrument;

use super::sdk_error::from_sdk;
use crate::domain::ids::InstanceId;
use crate::error::Error;
use crate::ports::PingStatus;
use crate::ports::{
    GuestSessions, ManagedNode, ManagedNodes, OpenSession, SessionDocumentReader, SessionTerminator,
};

impl ManagedNodes for aws_sdk_ssm::Client {
    #[instrument(skip(self))]
    async fn managed_node(&self, instance_id: &InstanceId) -> Result<Option<ManagedNode>, Error> {
        use aws_sdk_ssm::types::InstanceInformationStringFilter;
        const DESCRIBE: &str = "ssm:DescribeInstanceInformation";
        let filter = InstanceInformationStringFilter::builder()
            .key("InstanceIds")
            .values(instance_id.as_str())
            .build()
            .map_err(|e| Error::Aws {
                operation: DESCRIBE,
                code: "InvalidFilter".into(),
                message: e.to_string(),
                retryable: false,
            })?;
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
