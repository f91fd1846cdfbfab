//! AWS adapters: the ports implemented on the SDK clients, and the shared SDK set-up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::Response;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tracing::instrument;

use crate::error::Error;
use crate::ports::{
    DescribedInstance, InstanceDirectory, InstanceTagger, LiveInstances, ManagedPolicies,
    ManagedPolicy, PolicyVersion, RoleDirectory, RolePolicies, SessionTerminator,
};

/// Connect timeout for every AWS call.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Time allowed for one attempt, from sending to the last byte of the answer.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for one call including the SDK's retries; well inside the Lambda timeout.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(25);
/// Attempts per call (the first plus retries) in the SDK's standard retry mode.
pub const MAX_ATTEMPTS: u32 = 3;

/// CreateTags accepts at most 1,000 resource ids per call.
const CREATE_TAGS_BATCH: usize = 1000;
/// DescribeInstances accepts at most 200 values per filter.
const DESCRIBE_FILTER_BATCH: usize = 200;

/// Load the SDK configuration (region, credentials, `AWS_ENDPOINT_URL`) with explicit timeouts
/// and the standard retry mode.
pub async fn load_sdk_config(config: &crate::config::Config) -> SdkConfig {
    sdk_loader_with(config.sdk_attempt_timeout, config.sdk_operation_timeout)
        .load()
        .await
}

/// The loader behind [`load_sdk_config`], for callers that set the endpoint or credentials.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    sdk_loader_with(ATTEMPT_TIMEOUT, OPERATION_TIMEOUT)
}

/// The loader with the given per-attempt and per-call timeouts.
pub fn sdk_loader_with(attempt: Duration, operation: Duration) -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(attempt)
                .operation_timeout(operation)
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
}

/// The SDK clients, built once per process.
#[derive(Clone, Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
    pub ssm: aws_sdk_ssm::Client,
}

impl Clients {
    pub fn new(sdk: &SdkConfig) -> Self {
        Self::with_counter(sdk, None)
    }

    /// Clients whose every HTTP attempt is recorded in `counter`.
    pub fn with_counter(sdk: &SdkConfig, counter: Option<CallCounter>) -> Self {
        let mut ec2 = aws_sdk_ec2::config::Builder::from(sdk);
        let mut iam = aws_sdk_iam::config::Builder::from(sdk);
        let mut ssm = aws_sdk_ssm::config::Builder::from(sdk);
        if let Some(counter) = counter {
            ec2 = ec2.interceptor(counter.clone());
            iam = iam.interceptor(counter.clone());
            ssm = ssm.interceptor(counter);
        }
        Self {
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            iam: aws_sdk_iam::Client::from_conf(iam.build()),
            ssm: aws_sdk_ssm::Client::from_conf(ssm.build()),
        }
    }
}

/// Counts HTTP requests actually sent, per `service:Operation`, retries included.
#[derive(Clone, Debug, Default)]
pub struct CallCounter(Arc<Mutex<BTreeMap<String, u64>>>);

impl CallCounter {
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Return the counts so far and start again from zero.
    pub fn take(&self) -> BTreeMap<String, u64> {
        self.0
            .lock()
            .map(|mut m| std::mem::take(&mut *m))
            .unwrap_or_default()
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = cfg
            .load::<Metadata>()
            .map(|m| format!("{}:{}", m.service().to_ascii_lowercase(), m.name()))
            .unwrap_or_else(|| "unknown".into());
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(name).or_default() += 1;
        }
        Ok(())
    }
}

/// Instance states in which a user can still have a use for their sessions.
pub const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

impl InstanceDirectory for aws_sdk_ec2::Client {
    #[instrument(skip(self), fields(count = instance_ids.len()))]
    async fn describe_instances(
        &self,
        instance_ids: &[String],
    ) -> Result<Vec<DescribedInstance>, Error> {
        use aws_sdk_ec2::types::Filter;
        let mut found = Vec::new();
        // A filter, unlike InstanceIds, does not fail the whole call for an unknown id.
        for batch in instance_ids.chunks(DESCRIBE_FILTER_BATCH) {
            let filter = Filter::builder()
                .name("instance-id")
                .set_values(Some(batch.to_vec()))
                .build();
            found.extend(describe_filtered(self, vec![filter]).await?);
        }
        Ok(found)
    }
}

impl LiveInstances for aws_sdk_ec2::Client {
    #[instrument(skip(self))]
    async fn live_instances_tagged(
        &self,
        key: &str,
        value: Option<&str>,
    ) -> Result<Vec<DescribedInstance>, Error> {
        use aws_sdk_ec2::types::Filter;
        let tag = match value {
            Some(value) => Filter::builder()
                .name(format!("tag:{key}"))
                .values(value)
                .build(),
            None => Filter::builder().name("tag-key").values(key).build(),
        };
        let live = Filter::builder()
            .name("instance-state-name")
            .set_values(Some(LIVE_STATES.iter().map(|s| s.to_string()).collect()))
            .build();
        describe_filtered(self, vec![tag, live]).await
    }
}

async fn describe_filtered(
    ec2: &aws_sdk_ec2::Client,
    filters: Vec<aws_sdk_ec2::types::Filter>,
) -> Result<Vec<DescribedInstance>, Error> {
    let mut found = Vec::new();
    let mut pages = ec2
        .describe_instances()
        .set_filters(Some(filters))
        .max_results(1000)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::from_sdk("ec2:DescribeInstances", e))?;
        for instance in page.reservations().iter().flat_map(|r| r.instances()) {
            found.push(DescribedInstance {
                instance_id: instance.instance_id().unwrap_or_default().to_owned(),
                state: instance
                    .state()
                    .and_then(|s| s.name())
                    .map(|n| n.as_str().to_owned())
                    .unwrap_or_default(),
                tags: instance
                    .tags()
                    .iter()
                    .map(|t| {
                        (
                            t.key().unwrap_or_default().to_owned(),
                            t.value().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect(),
            });
        }
    }
    Ok(found)
}

/// `Ok(None)` where IAM answers NoSuchEntity: the thing asked for is already gone.
fn unless_missing<T, E>(
    operation: &'static str,
    result: Result<T, SdkError<E, Response>>,
) -> Result<Option<T>, Error>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if is_no_such_entity(&e) => Ok(None),
        Err(e) => Err(Error::from_sdk(operation, e)),
    }
}

/// An error on a call about the users' role: NoSuchEntity means the role itself is missing.
fn role_error<E>(operation: &'static str, role_name: &str, e: SdkError<E, Response>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    if is_no_such_entity(&e) {
        Error::RoleNotFound {
            role_name: role_name.to_owned(),
        }
    } else {
        Error::from_sdk(operation, e)
    }
}

fn is_no_such_entity<E: ProvideErrorMetadata>(e: &SdkError<E, Response>) -> bool {
    e.as_service_error().and_then(|s| s.code()) == Some("NoSuchEntity")
}

impl InstanceTagger for aws_sdk_ec2::Client {
    #[instrument(skip(self), fields(count = instance_ids.len()))]
    async fn create_tag(
        &self,
        instance_ids: &[String],
        key: &str,
        value: &str,
    ) -> Result<(), Error> {
        use aws_sdk_ec2::types::Tag;
        for batch in instance_ids.chunks(CREATE_TAGS_BATCH) {
            self.create_tags()
                .set_resources(Some(batch.to_vec()))
                .tags(Tag::builder().key(key).value(value).build())
                .send()
                .await
                .map_err(|e| Error::from_sdk("ec2:CreateTags", e))?;
        }
        Ok(())
    }
}

impl RoleDirectory for aws_sdk_iam::Client {
    #[instrument(skip(self))]
    async fn role_id(&self, role_name: &str) -> Result<String, Error> {
        let output = self
            .get_role()
            .role_name(role_name)
            .send()
            .await
            .map_err(|e| role_error("iam:GetRole", role_name, e))?;
        Ok(output
            .role()
            .map(|r| r.role_id().to_owned())
            .unwrap_or_default())
    }
}

impl RolePolicies for aws_sdk_iam::Client {
    #[instrument(skip(self))]
    async fn list_role_policies(&self, role_name: &str) -> Result<Vec<String>, Error> {
        let mut names = Vec::new();
        let mut pages = self
            .list_role_policies()
            .role_name(role_name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| role_error("iam:ListRolePolicies", role_name, e))?;
            names.extend(page.policy_names().iter().cloned());
        }
        Ok(names)
    }

    #[instrument(skip(self))]
    async fn get_role_policy(
        &self,
        role_name: &str,
        policy_name: &str,
    ) -> Result<Option<String>, Error> {
        let output = unless_missing(
            "iam:GetRolePolicy",
            self.get_role_policy()
                .role_name(role_name)
                .policy_name(policy_name)
                .send()
                .await,
        )?;
        Ok(output.map(|o| decode_policy_document(o.policy_document())))
    }

    #[instrument(skip(self, document), fields(chars = document.len()))]
    async fn put_role_policy(
        &self,
        role_name: &str,
        policy_name: &str,
        document: &str,
    ) -> Result<(), Error> {
        self.put_role_policy()
            .role_name(role_name)
            .policy_name(policy_name)
            .policy_document(document)
            .send()
            .await
            .map_err(|e| Error::from_sdk("iam:PutRolePolicy", e))?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn delete_role_policy(&self, role_name: &str, policy_name: &str) -> Result<(), Error> {
        unless_missing(
            "iam:DeleteRolePolicy",
            self.delete_role_policy()
                .role_name(role_name)
                .policy_name(policy_name)
                .send()
                .await,
        )
        .map(|_| ())
    }
}

/// IAM returns policy documents URL-encoded (RFC 3986); moto returns them as written.
pub fn decode_policy_document(raw: &str) -> String {
    if raw.trim_start().starts_with('{') {
        return raw.to_owned();
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8_lossy()
        .into_owned()
}

impl SessionTerminator for aws_sdk_ssm::Client {
    #[instrument(skip(self))]
    async fn end_sessions_on(&self, instance_id: &str) -> Result<Vec<String>, Error> {
        use aws_sdk_ssm::types::{SessionFilter, SessionFilterKey, SessionState};
        let mut ids = Vec::new();
        let mut next_token = None;
        loop {
            let page = self
                .describe_sessions()
                .state(SessionState::Active)
                .filters(
                    SessionFilter::builder()
                        .key(SessionFilterKey::TargetId)
                        .value(instance_id)
                        .build()
                        .map_err(|e| Error::Aws {
                            operation: "ssm:DescribeSessions",
                            code: "InvalidFilter".into(),
                            message: e.to_string(),
                            retryable: false,
                        })?,
                )
                .set_next_token(next_token)
                .send()
                .await
                .map_err(|e| Error::from_sdk("ssm:DescribeSessions", e))?;
            ids.extend(
                page.sessions()
                    .iter()
                    .filter_map(|s| s.session_id().map(str::to_owned)),
            );
            next_token = page.next_token().map(str::to_owned);
            if next_token.is_none() {
                break;
            }
        }
        for id in &ids {
            self.terminate_session()
                .session_id(id)
                .send()
                .await
                .map_err(|e| Error::from_sdk("ssm:TerminateSession", e))?;
        }
        Ok(ids)
    }
}

impl ManagedPolicies for aws_sdk_iam::Client {
    #[instrument(skip(self))]
    async fn list_policies(&self, path: &str) -> Result<Vec<ManagedPolicy>, Error> {
        use aws_sdk_iam::types::PolicyScopeType;
        let mut found = Vec::new();
        let mut pages = self
            .list_policies()
            .scope(PolicyScopeType::Local)
            .path_prefix(path)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| Error::from_sdk("iam:ListPolicies", e))?;
            found.extend(page.policies().iter().map(|p| ManagedPolicy {
                name: p.policy_name().unwrap_or_default().to_owned(),
                arn: p.arn().unwrap_or_default().to_owned(),
                default_version: p.default_version_id().unwrap_or_default().to_owned(),
            }));
        }
        Ok(found)
    }

    #[instrument(skip(self))]
    async fn attached_policies(&self, role_name: &str) -> Result<Vec<String>, Error> {
        let mut arns = Vec::new();
        let mut pages = self
            .list_attached_role_policies()
            .role_name(role_name)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| role_error("iam:ListAttachedRolePolicies", role_name, e))?;
            arns.extend(
                page.attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_owned)),
            );
        }
        Ok(arns)
    }

    #[instrument(skip(self))]
    async fn policy_document(&self, arn: &str, version: &str) -> Result<String, Error> {
        let output = self
            .get_policy_version()
            .policy_arn(arn)
            .version_id(version)
            .send()
            .await
            .map_err(|e| Error::from_sdk("iam:GetPolicyVersion", e))?;
        Ok(decode_policy_document(
            output
                .policy_version()
                .and_then(|v| v.document())
                .unwrap_or_default(),
        ))
    }

    #[instrument(skip(self, document), fields(chars = document.len()))]
    async fn create_policy(&self, name: &str, path: &str, document: &str) -> Result<String, Error> {
        let output = self
            .create_policy()
            .policy_name(name)
            .path(path)
            .policy_document(document)
            .description("ssm-session-owner: per-user TerminateSession/ResumeSession statements")
            .send()
            .await
            .map_err(|e| Error::from_sdk("iam:CreatePolicy", e))?;
        Ok(output
            .policy()
            .and_then(|p| p.arn())
            .unwrap_or_default()
            .to_owned())
    }

    #[instrument(skip(self, document), fields(chars = document.len()))]
    async fn create_policy_version(&self, arn: &str, document: &str) -> Result<(), Error> {
        self.create_policy_version()
            .policy_arn(arn)
            .policy_document(document)
            .set_as_default(true)
            .send()
            .await
            .map_err(|e| Error::from_sdk("iam:CreatePolicyVersion", e))?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn list_policy_versions(&self, arn: &str) -> Result<Vec<PolicyVersion>, Error> {
        let output = self
            .list_policy_versions()
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| Error::from_sdk("iam:ListPolicyVersions", e))?;
        Ok(output
            .versions()
            .iter()
            .map(|v| PolicyVersion {
                id: v.version_id().unwrap_or_default().to_owned(),
                is_default: v.is_default_version(),
                created: v.create_date().map(|d| d.secs()).unwrap_or_default(),
            })
            .collect())
    }

    #[instrument(skip(self))]
    async fn delete_policy_version(&self, arn: &str, version: &str) -> Result<(), Error> {
        unless_missing(
            "iam:DeletePolicyVersion",
            self.delete_policy_version()
                .policy_arn(arn)
                .version_id(version)
                .send()
                .await,
        )
        .map(|_| ())
    }

    #[instrument(skip(self))]
    async fn attach_role_policy(&self, role_name: &str, arn: &str) -> Result<(), Error> {
        self.attach_role_policy()
            .role_name(role_name)
            .policy_arn(arn)
            .send()
            .await
            .map_err(|e| Error::from_sdk("iam:AttachRolePolicy", e))?;
        Ok(())
    }

    #[instrument(skip(self))]
    async fn detach_role_policy(&self, role_name: &str, arn: &str) -> Result<(), Error> {
        unless_missing(
            "iam:DetachRolePolicy",
            self.detach_role_policy()
                .role_name(role_name)
                .policy_arn(arn)
                .send()
                .await,
        )
        .map(|_| ())
    }

    #[instrument(skip(self))]
    async fn delete_policy(&self, arn: &str) -> Result<(), Error> {
        unless_missing(
            "iam:DeletePolicy",
            self.delete_policy().policy_arn(arn).send().await,
        )
        .map(|_| ())
    }
}
