//! AWS adapters: the ports implemented on the SDK clients (one module per service), the shared
//! SDK set-up, and the call counter.

mod call_counter;
mod cloudtrail;
mod ec2;
mod iam;
mod logging;
mod scheduler;
mod sdk_error;
mod ssm;
#[cfg(feature = "stack")]
mod stack;

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

pub use call_counter::CallCounter;
pub use iam::decode_policy_document;
#[cfg(any(test, feature = "fakes"))]
pub(crate) use iam::pick_permission_set_role;
pub use logging::LoggingClients;
pub use scheduler::ExpirySchedules;
pub use sdk_error::from_sdk;
#[cfg(feature = "stack")]
pub use stack::{tool_config, tool_config_or_exit, ToolConfigError};

use crate::config::{Config, ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, OPERATION_TIMEOUT};

/// Attempts per call (the first plus retries) in the SDK's standard retry mode.
const MAX_ATTEMPTS: u32 = 3;

/// Load the SDK configuration (region, credentials, `AWS_ENDPOINT_URL`) with explicit timeouts
/// and the standard retry mode.
pub async fn load_sdk_config(config: &Config) -> SdkConfig {
    sdk_loader_with(config.sdk.attempt, config.sdk.operation)
        .load()
        .await
}

/// The loader behind [`load_sdk_config`] with the default timeouts, for callers that set the
/// endpoint or credentials themselves.
pub fn sdk_loader() -> aws_config::ConfigLoader {
    sdk_loader_with(ATTEMPT_TIMEOUT, OPERATION_TIMEOUT)
}

fn sdk_loader_with(attempt: Duration, operation: Duration) -> aws_config::ConfigLoader {
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

macro_rules! in_region {
    ($client:ty, $config:ty) => {
        impl crate::ports::InRegion for $client {
            fn region_name(&self) -> Option<String> {
                self.config().region().map(|r| r.to_string())
            }

            fn in_region(&self, region: &str) -> Self {
                let config: $config = self
                    .config()
                    .to_builder()
                    .region(aws_config::Region::new(region.to_owned()))
                    .build();
                Self::from_conf(config)
            }
        }
    };
}

in_region!(aws_sdk_ec2::Client, aws_sdk_ec2::Config);
in_region!(aws_sdk_ssm::Client, aws_sdk_ssm::Config);
in_region!(aws_sdk_cloudtrail::Client, aws_sdk_cloudtrail::Config);

/// The SDK clients, built once per process.
#[derive(Clone, Debug)]
pub struct Clients {
    pub ec2: aws_sdk_ec2::Client,
    pub iam: aws_sdk_iam::Client,
    pub ssm: aws_sdk_ssm::Client,
    /// The owner-tagger's sweep and the doctor ask which trails deliver launches.
    pub cloudtrail: aws_sdk_cloudtrail::Client,
    /// The owner-tagger's one-time schedule at each share's end.
    pub scheduler: aws_sdk_scheduler::Client,
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
        let mut cloudtrail = aws_sdk_cloudtrail::config::Builder::from(sdk);
        let mut scheduler = aws_sdk_scheduler::config::Builder::from(sdk);
        if let Some(counter) = counter {
            ec2 = ec2.interceptor(counter.clone());
            iam = iam.interceptor(counter.clone());
            ssm = ssm.interceptor(counter.clone());
            cloudtrail = cloudtrail.interceptor(counter.clone());
            scheduler = scheduler.interceptor(counter);
        }
        Self {
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            iam: aws_sdk_iam::Client::from_conf(iam.build()),
            ssm: aws_sdk_ssm::Client::from_conf(ssm.build()),
            cloudtrail: aws_sdk_cloudtrail::Client::from_conf(cloudtrail.build()),
            scheduler: aws_sdk_scheduler::Client::from_conf(scheduler.build()),
        }
    }
}
