//! The AWS calls `connect` makes with the user's own credentials: who am I, which regions, which
//! instances, and the two request tags. Every answer it cannot read is an error, never "none".

use std::collections::BTreeMap;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_ec2::types::{Filter, Instance, Tag};

use shared::domain::sharing::ShareRules;

use crate::reach::{reach, Row};
use crate::Problem;

/// The states in which an instance can be reached, or soon can.
const LIVE_STATES: [&str; 4] = ["pending", "running", "stopping", "stopped"];

/// The caller: `${aws:userid}` and the ARN `GetCallerIdentity` answers.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user_id: String,
}

impl Caller {
    /// The username part of the user id (the role-session name).
    pub fn username(&self) -> &str {
        self.user_id
            .split_once(':')
            .map_or(self.user_id.as_str(), |(_, user)| user)
    }
}

/// One instance found by id.
#[derive(Debug, Clone)]
pub struct Found {
    pub region: String,
    pub state: String,
    pub tags: BTreeMap<String, String>,
}

pub struct Aws {
    sdk: SdkConfig,
}

/// Credentials that are missing or expired, and how to get them.
fn no_credentials(cause: &str) -> Problem {
    Problem::Setup(format!(
        "no usable AWS credentials ({cause}); sign in first: `aws sso login --profile NAME` \
         (Identity Center) or your SAML tool, then pass --profile NAME or set AWS_PROFILE"
    ))
}

fn aws_problem<E>(what: &str, err: &aws_sdk_ec2::error::SdkError<E>) -> Problem
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let code = err.code().unwrap_or_default();
    if matches!(
        code,
        "UnauthorizedOperation" | "AccessDenied" | "AccessDeniedException"
    ) {
        return Problem::Refused(format!(
            "{what}: access denied ({code}); your operator can check the users' role with the access doctor"
        ));
    }
    let text = DisplayErrorContext(err).to_string();
    if code.is_empty() && text.contains("credentials") {
        return no_credentials(&format!("{what}: {text}"));
    }
    Problem::Aws(format!("{what}: {text}"))
}

impl Aws {
    /// The user's SDK configuration: their profile (`--profile`, or `AWS_PROFILE`) and region.
    pub async fn load(profile: Option<&str>, region: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest());
        if let Some(profile) = profile {
            loader = loader.profile_name(profile);
        }
        if let Some(region) = region {
            loader = loader.region(Region::new(region.to_owned()));
        }
        let mut sdk = loader.load().await;
        if sdk.region().is_none() {
            // The global calls need a region; listing covers every region anyway.
            sdk = sdk
                .into_builder()
                .region(Region::from_static("us-east-1"))
                .build();
        }
        Self { sdk }
    }

    /// The region the profile names (or us-east-1).
    pub fn home_region(&self) -> String {
        self.sdk
            .region()
            .map_or_else(|| "us-east-1".to_owned(), ToString::to_string)
    }

    fn ec2(&self, region: &str) -> aws_sdk_ec2::Client {
        let config = aws_sdk_ec2::config::Builder::from(&self.sdk)
            .region(Region::new(region.to_owned()))
            .build();
        aws_sdk_ec2::Client::from_conf(config)
    }

    fn ssm(&self, region: &str) -> aws_sdk_ssm::Client {
        let config = aws_sdk_ssm::config::Builder::from(&self.sdk)
            .region(Region::new(region.to_owned()))
            .build();
        aws_sdk_ssm::Client::from_conf(config)
    }

    /// The caller's managed nodes outside EC2 in `region` (`node`: that one only).
    pub async fn nodes_in(
        &self,
        region: &str,
        caller: &Caller,
        key: &str,
        node: Option<&str>,
    ) -> Result<Vec<Row>, Problem> {
        owned_nodes(&self.ssm(region), region, &caller.user_id, key, node).await
    }

    /// `sts:GetCallerIdentity`: any signed-in caller may make it.
    pub async fn caller(&self) -> Result<Caller, Problem> {
        let sts = aws_sdk_sts::Client::new(&self.sdk);
        let answer = sts.get_caller_identity().send().await.map_err(|err| {
            let text = DisplayErrorContext(&err).to_string();
            if text.contains("credentials") || text.contains("ExpiredToken") {
                no_credentials(&text)
            } else {
                Problem::Aws(format!("sts:GetCallerIdentity: {text}"))
            }
        })?;
        let (Some(user_id), Some(arn)) = (answer.user_id(), answer.arn()) else {
            return Err(Problem::Aws(
                "sts:GetCallerIdentity answered without a user id or ARN".to_owned(),
            ));
        };
        if !arn.contains(":assumed-role/") {
            return Err(Problem::Setup(format!(
                "you are signed in as {arn}, not through the portal's role: use the profile of the role your portal gives you"
            )));
        }
        Ok(Caller {
            user_id: user_id.to_owned(),
        })
    }

    /// The regions enabled for the account (`ec2:DescribeRegions`).
    pub async fn regions(&self) -> Result<Vec<String>, Problem> {
        let answer = self
            .ec2(&self.home_region())
            .describe_regions()
            .send()
            .await
            .map_err(|err| aws_problem("ec2:DescribeRegions (pass --region to skip it)", &err))?;
        let mut regions: Vec<String> = answer
            .regions()
            .iter()
            .filter_map(|r| r.region_name().map(str::to_owned))
            .collect();
        if regions.is_empty() {
            return Err(Problem::Aws(
                "ec2:DescribeRegions answered no region".to_owned(),
            ));
        }
        regions.sort();
        Ok(regions)
    }

    /// Every live instance in `region` that `caller` owns or is a guest of. One filter on the
    /// tag value finds both (the slot and user-id tags hold the same id); the tags then decide.
    pub async fn reachable_in(
        &self,
        region: &str,
        caller: &Caller,
        rules: &ShareRules,
    ) -> Result<Vec<Row>, Problem> {
        let filters = vec![
            Filter::builder()
                .name("tag-value")
                .values(&caller.user_id)
                .build(),
            state_filter(),
        ];
        let instances = self.describe(region, filters, None).await?;
        Ok(instances
            .iter()
            .filter_map(|instance| {
                let tags = tags_of(instance);
                let reach = reach(&tags, &caller.user_id, rules)?;
                Some(Row {
                    id: instance.instance_id()?.to_owned(),
                    region: region.to_owned(),
                    state: state_of(instance),
                    name: tags.get("Name").cloned().unwrap_or_default(),
                    reach,
                })
            })
            .collect())
    }

    /// Find one instance by id in `regions` (in parallel).
    pub async fn find(&self, regions: &[String], id: &str) -> Result<Option<Found>, Problem> {
        let lookups = regions.iter().map(|region| async move {
            let found = self
                .describe(region, vec![state_filter()], Some(id))
                .await?;
            Ok::<_, Problem>(found.first().map(|instance| Found {
                region: region.clone(),
                state: state_of(instance),
                tags: tags_of(instance),
            }))
        });
        let mut first = None;
        for result in futures_util::future::join_all(lookups).await {
            if let Some(found) = result? {
                first.get_or_insert(found);
            }
        }
        Ok(first)
    }

    async fn describe(
        &self,
        region: &str,
        filters: Vec<Filter>,
        id: Option<&str>,
    ) -> Result<Vec<Instance>, Problem> {
        let ec2 = self.ec2(region);
        let mut instances = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut request = ec2
                .describe_instances()
                .set_filters(Some(filters.clone()))
                .set_next_token(token.clone());
            if let Some(id) = id {
                request = request.instance_ids(id);
            } else {
                request = request.max_results(1000);
            }
            let answer = match request.send().await {
                Ok(answer) => answer,
                Err(err) if id.is_some() && err.code() == Some("InvalidInstanceID.NotFound") => {
                    return Ok(Vec::new())
                }
                Err(err) => {
                    return Err(aws_problem(
                        &format!("ec2:DescribeInstances in {region}"),
                        &err,
                    ))
                }
            };
            for reservation in answer.reservations() {
                instances.extend(reservation.instances().iter().cloned());
            }
            token = answer.next_token().map(str::to_owned);
            if token.as_deref().is_none_or(str::is_empty) {
                return Ok(instances);
            }
        }
    }

    /// Write the owner's request: `ShareWith` (and `ShareFor`, or remove a previous one).
    pub async fn request_share(
        &self,
        region: &str,
        id: &str,
        rules: &ShareRules,
        with: &str,
        duration: Option<&str>,
    ) -> Result<(), Problem> {
        let ec2 = self.ec2(region);
        let mut tags = vec![Tag::builder()
            .key(&rules.share_with_key)
            .value(with)
            .build()];
        if let Some(duration) = duration {
            tags.push(
                Tag::builder()
                    .key(&rules.share_for_key)
                    .value(duration)
                    .build(),
            );
        } else {
            // The previous share's length must not carry over to this one.
            remove(&ec2, id, &[rules.share_for_key.as_str()])
                .await
                .map_err(|err| aws_problem(&format!("ec2:DeleteTags on {id}"), &err))?;
        }
        ec2.create_tags()
            .resources(id)
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|err| aws_problem(&format!("ec2:CreateTags on {id}"), &err))?;
        Ok(())
    }

    /// Remove the owner's request: the product then ends the share.
    pub async fn end_share(
        &self,
        region: &str,
        id: &str,
        rules: &ShareRules,
    ) -> Result<(), Problem> {
        let ec2 = self.ec2(region);
        remove(
            &ec2,
            id,
            &[rules.share_with_key.as_str(), rules.share_for_key.as_str()],
        )
        .await
        .map_err(|err| aws_problem(&format!("ec2:DeleteTags on {id}"), &err))
    }
}

/// Delete `keys` from instance `id`, whatever their values.
async fn remove(
    ec2: &aws_sdk_ec2::Client,
    id: &str,
    keys: &[&str],
) -> Result<(), aws_sdk_ec2::error::SdkError<aws_sdk_ec2::operation::delete_tags::DeleteTagsError>>
{
    let tags = keys
        .iter()
        .map(|key| Tag::builder().key(*key).build())
        .collect();
    ec2.delete_tags()
        .resources(id)
        .set_tags(Some(tags))
        .send()
        .await
        .map(|_| ())
}

/// The managed nodes outside EC2 in `region` whose tag `key` is `user_id`
/// (`ssm:DescribeInstanceInformation`, which the end-user policy allows: the filter on the tag
/// answers only the caller's own), each with its agent's ping status as its state. A node the
/// answer does not name is an error, never "none".
pub async fn owned_nodes(
    ssm: &aws_sdk_ssm::Client,
    region: &str,
    user_id: &str,
    key: &str,
    node: Option<&str>,
) -> Result<Vec<Row>, Problem> {
    use aws_sdk_ssm::types::InstanceInformationStringFilter as StringFilter;
    let filter = |key: &str, value: &str| {
        StringFilter::builder()
            .key(key)
            .values(value)
            .build()
            .map_err(|e| Problem::Aws(format!("ssm:DescribeInstanceInformation: {e}")))
    };
    let mut filters = vec![
        filter("ResourceType", "ManagedInstance")?,
        filter(&format!("tag:{key}"), user_id)?,
    ];
    if let Some(node) = node {
        filters.push(filter("InstanceIds", node)?);
    }
    let mut pages = ssm
        .describe_instance_information()
        .set_filters(Some(filters))
        .max_results(50)
        .into_paginator()
        .send();
    let mut rows = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| {
            aws_problem(
                &format!("ssm:DescribeInstanceInformation in {region}"),
                &err,
            )
        })?;
        for info in page.instance_information_list() {
            let unreadable = |what: &str| {
                Problem::Aws(format!(
                    "ssm:DescribeInstanceInformation in {region} answered a node without {what}"
                ))
            };
            rows.push(Row {
                id: info
                    .instance_id()
                    .ok_or_else(|| unreadable("an id"))?
                    .to_owned(),
                region: region.to_owned(),
                state: info
                    .ping_status()
                    .ok_or_else(|| unreadable("a ping status"))?
                    .as_str()
                    .to_owned(),
                name: info.name().unwrap_or_default().to_owned(),
                reach: crate::reach::Reach::Owner {
                    guests: Vec::new(),
                    shared_until: None,
                },
            });
        }
    }
    Ok(rows)
}

fn state_filter() -> Filter {
    Filter::builder()
        .name("instance-state-name")
        .set_values(Some(LIVE_STATES.iter().map(|s| (*s).to_owned()).collect()))
        .build()
}

fn state_of(instance: &Instance) -> String {
    instance
        .state()
        .and_then(|s| s.name())
        .map_or_else(|| "unknown".to_owned(), |name| name.as_str().to_owned())
}

fn tags_of(instance: &Instance) -> BTreeMap<String, String> {
    instance
        .tags()
        .iter()
        .filter_map(|tag| Some((tag.key()?.to_owned(), tag.value()?.to_owned())))
        .collect()
}

/// moto has no `DescribeInstanceInformation`: the node listing is covered with aws-smithy-mocks,
/// each rule matching only the request it must send.
#[cfg(test)]
mod tests {
    use aws_sdk_ssm::operation::describe_instance_information::DescribeInstanceInformationOutput;
    use aws_sdk_ssm::types::{InstanceInformation, PingStatus};
    use aws_sdk_ssm::Client;
    use aws_smithy_mocks::{mock, mock_client, RuleMode};

    use super::owned_nodes;
    use crate::reach::Reach;

    const ADA: &str = "AROAEXAMPLEROLEID1234:ada";

    #[tokio::test]
    async fn only_the_callers_managed_nodes_are_asked_for_and_listed_with_their_ping_status() {
        let mine = mock!(Client::describe_instance_information)
            .match_requests(|req| {
                let has = |key: &str, value: &str| {
                    req.filters()
                        .iter()
                        .any(|f| f.key() == key && f.values() == [value])
                };
                has("ResourceType", "ManagedInstance") && has("tag:AwsUserId", ADA)
            })
            .then_output(|| {
                DescribeInstanceInformationOutput::builder()
                    .instance_information_list(
                        InstanceInformation::builder()
                            .instance_id("mi-0a1b2c3d4e5f60001")
                            .ping_status(PingStatus::Online)
                            .name("lab-server")
                            .build(),
                    )
                    .build()
            });
        let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&mine]);

        let rows = owned_nodes(&ssm, "eu-west-1", ADA, "AwsUserId", None)
            .await
            .unwrap();

        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(
            (
                row.id.as_str(),
                row.region.as_str(),
                row.state.as_str(),
                row.name.as_str()
            ),
            ("mi-0a1b2c3d4e5f60001", "eu-west-1", "Online", "lab-server")
        );
        assert!(matches!(&row.reach, Reach::Owner { guests, .. } if guests.is_empty()));
        assert_eq!(mine.num_calls(), 1);
    }

    #[tokio::test]
    async fn one_node_is_asked_for_by_id_and_an_answer_without_a_ping_status_is_an_error() {
        let by_id = mock!(Client::describe_instance_information)
            .match_requests(|req| {
                req.filters()
                    .iter()
                    .any(|f| f.key() == "InstanceIds" && f.values() == ["mi-0a1b2c3d4e5f60001"])
            })
            .then_output(|| {
                DescribeInstanceInformationOutput::builder()
                    .instance_information_list(
                        InstanceInformation::builder()
                            .instance_id("mi-0a1b2c3d4e5f60001")
                            .build(),
                    )
                    .build()
            });
        let ssm = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, [&by_id]);

        let err = owned_nodes(
            &ssm,
            "eu-west-1",
            ADA,
            "AwsUserId",
            Some("mi-0a1b2c3d4e5f60001"),
        )
        .await
        .unwrap_err();

        assert_eq!(
            err.to_string(),
            "ssm:DescribeInstanceInformation in eu-west-1 answered a node without a ping status"
        );
    }
}
