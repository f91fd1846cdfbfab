//! Where sessions are logged and the key that encrypts them: S3 `HeadBucket`, CloudWatch Logs
//! `DescribeLogGroups` and KMS `DescribeKey`, for the doctor. Reads only. moto serves all three.

use tracing::instrument;

use super::sdk_error::from_sdk;
use crate::error::Error;
use crate::ports::KeyState;
use crate::ports::{BucketState, InRegion, KeyFacts, LogGroupFacts, LoggingTargets};

/// The clients of the three services, in one region.
#[derive(Clone, Debug)]
pub struct LoggingClients {
    pub s3: aws_sdk_s3::Client,
    pub logs: aws_sdk_cloudwatchlogs::Client,
    pub kms: aws_sdk_kms::Client,
}

impl LoggingClients {
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        // moto (AWS_ENDPOINT_URL) serves S3 on its one host: path-style addressing.
        let s3 = aws_sdk_s3::config::Builder::from(sdk)
            .force_path_style(true)
            .build();
        Self {
            s3: aws_sdk_s3::Client::from_conf(s3),
            logs: aws_sdk_cloudwatchlogs::Client::new(sdk),
            kms: aws_sdk_kms::Client::new(sdk),
        }
    }
}

impl InRegion for LoggingClients {
    fn region_name(&self) -> Option<String> {
        self.kms.config().region().map(|r| r.to_string())
    }

    fn in_region(&self, region: &str) -> Self {
        let region = aws_config::Region::new(region.to_owned());
        Self {
            s3: aws_sdk_s3::Client::from_conf(
                self.s3.config().to_builder().region(region.clone()).build(),
            ),
            logs: aws_sdk_cloudwatchlogs::Client::from_conf(
                self.logs
                    .config()
                    .to_builder()
                    .region(region.clone())
                    .build(),
            ),
            kms: aws_sdk_kms::Client::from_conf(
                self.kms.config().to_builder().region(region).build(),
            ),
        }
    }
}

impl LoggingTargets for LoggingClients {
    #[instrument(skip(self))]
    async fn bucket(&self, name: &str) -> Result<BucketState, Error> {
        match self.s3.head_bucket().bucket(name).send().await {
            Ok(_) => Ok(BucketState::Exists),
            Err(err) => match from_sdk("s3:HeadBucket", err) {
                // HeadBucket has no body: the status is the code
                Error::Aws { code, .. }
                    if code == "NotFound" || code == "NoSuchBucket" || code == "HTTP 404" =>
                {
                    Ok(BucketState::Missing)
                }
                Error::Aws { code, .. } if code == "Forbidden" || code == "HTTP 403" => {
                    Ok(BucketState::Forbidden)
                }
                // in another region: it exists
                Error::Aws { code, .. } if code == "PermanentRedirect" || code == "HTTP 301" => {
                    Ok(BucketState::Exists)
                }
                other => Err(other),
            },
        }
    }

    #[instrument(skip(self))]
    async fn log_group(&self, name: &str) -> Result<Option<LogGroupFacts>, Error> {
        const DESCRIBE: &str = "logs:DescribeLogGroups";
        let mut next = None;
        loop {
            let page = self
                .logs
                .describe_log_groups()
                .log_group_name_prefix(name)
                .set_next_token(next)
                .send()
                .await
                .map_err(|e| from_sdk(DESCRIBE, e))?;
            if let Some(group) = page
                .log_groups()
                .iter()
                .find(|g| g.log_group_name() == Some(name))
            {
                return Ok(Some(LogGroupFacts {
                    kms_key: group.kms_key_id().map(str::to_owned),
                }));
            }
            match page.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_owned()),
                _ => return Ok(None),
            }
        }
    }

    #[instrument(skip(self))]
    async fn kms_key(&self, key: &str) -> Result<Option<KeyFacts>, Error> {
        const DESCRIBE: &str = "kms:DescribeKey";
        match self.kms.describe_key().key_id(key).send().await {
            Ok(output) => {
                let state = output
                    .key_metadata()
                    .and_then(|m| m.key_state())
                    .map(|s| KeyState::parse(s.as_str()))
                    .ok_or_else(|| Error::unreadable(DESCRIBE, "the key's state"))?;
                Ok(Some(KeyFacts { state }))
            }
            Err(err) => match from_sdk(DESCRIBE, err) {
                Error::Aws { code, .. } if code == "NotFoundException" => Ok(None),
                other => Err(other),
            },
        }
    }
}
