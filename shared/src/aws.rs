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
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use tracing::instrument;

use crate::error::Error;
use crate::ports::{DescribedInstance, InstanceDirectory, InstanceTagger, RoleDirectory};

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
pub async fn load_sdk_config() -> SdkConfig {
    sdk_loader().load().await
}

/// The loader behind [`load_sdk_config`], for callers that set the endpoint or credentials.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .operation_timeout(OPERATION_TIMEOUT)
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
            let mut pages = self
                .describe_instances()
                .filters(
                    Filter::builder()
                        .name("instance-id")
                        .set_values(Some(batch.to_vec()))
                        .build(),
                )
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
        }
        Ok(found)
    }
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
            .map_err(|e| {
                if e.as_service_error()
                    .is_some_and(|s| s.is_no_such_entity_exception())
                {
                    Error::RoleNotFound {
                        role_name: role_name.to_owned(),
                    }
                } else {
                    Error::from_sdk("iam:GetRole", e)
                }
            })?;
        Ok(output
            .role()
            .map(|r| r.role_id().to_owned())
            .unwrap_or_default())
    }
}
