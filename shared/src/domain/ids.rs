//! Typed identifiers: the users' role id, the `<role-id>:<username>` value, EC2 instance ids
//! and instance states. Each has one constructor that checks it, so a value of these types is
//! always well formed.

use std::fmt;

use crate::domain::reason::{Reason, ReasonCode};
use crate::domain::session_name::SessionName;

/// An AWS partition: the first segment of every ARN in it. Each account lives in one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Partition {
    #[default]
    Aws,
    AwsCn,
    AwsUsGov,
    AwsIso,
    AwsIsoB,
    AwsIsoE,
    AwsIsoF,
}

/// The 17 regions AWS enables in every account by default (the others are opt-in).
pub const DEFAULT_ENABLED_REGIONS: [&str; 17] = [
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
];

impl Partition {
    /// The partition a region belongs to.
    pub fn of_region(region: &str) -> Self {
        if region.starts_with("cn-") {
            Partition::AwsCn
        } else if region.starts_with("us-gov-") {
            Partition::AwsUsGov
        } else if region.starts_with("us-isob-") {
            Partition::AwsIsoB
        } else if region.starts_with("us-isof-") {
            Partition::AwsIsoF
        } else if region.starts_with("eu-isoe-") {
            Partition::AwsIsoE
        } else if region.starts_with("us-iso-") {
            Partition::AwsIso
        } else {
            Partition::Aws
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Partition::Aws => "aws",
            Partition::AwsCn => "aws-cn",
            Partition::AwsUsGov => "aws-us-gov",
            Partition::AwsIso => "aws-iso",
            Partition::AwsIsoB => "aws-iso-b",
            Partition::AwsIsoE => "aws-iso-e",
            Partition::AwsIsoF => "aws-iso-f",
        }
    }
}

/// A role's unique id: `AROA` followed by upper-case letters and digits, and the partition the
/// role lives in (ids are unique within a partition; the statements name it in their ARNs).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RoleId {
    id: String,
    partition: Partition,
}

impl RoleId {
    pub fn parse(id: &str) -> Result<Self, String> {
        let rest = id.strip_prefix("AROA").unwrap_or("");
        if rest.len() < 4
            || rest.len() > 124
            || !rest
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        {
            return Err(format!(
                "{id:?} is not an IAM role id (AROA followed by upper-case letters and digits)"
            ));
        }
        Ok(Self {
            id: id.to_owned(),
            partition: Partition::Aws,
        })
    }

    /// The same id, for a role in `partition`.
    pub fn in_partition(self, partition: Partition) -> Self {
        Self { partition, ..self }
    }

    pub fn partition(&self) -> Partition {
        self.partition
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }
}

/// A role as IAM knows it: its name and unique id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedRole {
    pub name: String,
    pub id: RoleId,
}

/// A role's unique id, its ARN and its trust policy, from one `GetRole`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleIdentity {
    pub id: RoleId,
    pub arn: String,
    /// The trust (assume-role) policy document, decoded; None when the answer had none (the
    /// doctor's trust check then fails and says so).
    pub trust_policy: Option<String>,
    /// The ARN of the role's permissions boundary, if it has one.
    pub permissions_boundary: Option<String>,
    /// The longest a session of the role may last, in seconds (`MaxSessionDuration`).
    pub max_session_seconds: Option<i32>,
}

impl fmt::Display for RoleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// `${aws:userid}` of a session of the users' role: `<role-id>:<username>`. The value of the
/// user-id tag and of the session-id tag Session Manager writes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId {
    role: RoleId,
    user: SessionName,
}

impl UserId {
    pub fn new(role: RoleId, user: SessionName) -> Self {
        Self { role, user }
    }

    /// Parse a tag value that must name a user of the role `role`.
    pub fn parse_for(value: &str, role: &RoleId) -> Result<Self, Reason> {
        let Some((id, name)) = value.split_once(':') else {
            return Err(Reason::new(
                ReasonCode::UserIdMalformed,
                format!("tag value {value:?} is not <role-id>:<username>"),
            ));
        };
        if id != role.as_str() {
            return Err(Reason::new(
                ReasonCode::ForeignRole,
                format!("tag value {value:?} names role id {id}, not the users' role {role}"),
            ));
        }
        let user = SessionName::parse(name).map_err(|e| {
            Reason::new(
                ReasonCode::InvalidUsername,
                format!("tag value {value:?}: {e}"),
            )
        })?;
        Ok(Self::new(role.clone(), user))
    }

    pub fn role(&self) -> &RoleId {
        &self.role
    }

    pub fn user(&self) -> &SessionName {
        &self.user
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.role, self.user)
    }
}

/// An EC2 resource id: `prefix` followed by 8 or 17 lower-case hex digits.
fn is_resource_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|hex| {
        (hex.len() == 8 || hex.len() == 17)
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
    })
}

/// An EC2 instance id: `i-` followed by 8 or 17 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(String);

/// An AWS region name as AWS spells them (`us-east-1`, `cn-north-1`): lower-case letters,
/// digits and hyphens, at most 32 characters. The home region is never spelled as an empty
/// one: where "the home region" is meant, the type is `Option<Region>` or says so.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(String);

impl Region {
    pub fn parse(name: &str) -> Result<Self, String> {
        let valid = name.len() <= 32
            && name.contains('-')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(format!("{name:?} is not a region name"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl InstanceId {
    pub fn parse(id: &str) -> Result<Self, Reason> {
        if is_resource_id(id, "i-") {
            Ok(Self(id.to_owned()))
        } else {
            Err(Reason::new(
                ReasonCode::InvalidInstanceId,
                format!("{id:?} is not an EC2 instance id"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A managed node outside EC2 (on-premises or another cloud, registered with a Systems Manager
/// activation): `mi-` followed by 17 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagedNodeId(String);

impl ManagedNodeId {
    pub fn parse(id: &str) -> Result<Self, Reason> {
        if is_resource_id(id, "mi-") && id.len() == 20 {
            Ok(Self(id.to_owned()))
        } else {
            Err(Reason::new(
                ReasonCode::InvalidInstanceId,
                format!("{id:?} is not a managed node id (mi- and 17 hex digits)"),
            ))
        }
    }

    /// The node named by an ARN `arn:<partition>:ssm:<region>:<account>:managed-instance/<id>`.
    pub fn from_arn(arn: &str) -> Option<Self> {
        let (head, id) = arn.rsplit_once(":managed-instance/")?;
        head.starts_with("arn:")
            .then(|| Self::parse(id).ok())
            .flatten()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ManagedNodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An EBS volume id: `vol-` followed by 8 or 17 lower-case hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VolumeId(String);

impl VolumeId {
    pub fn parse(id: &str) -> Result<Self, Reason> {
        if is_resource_id(id, "vol-") {
            Ok(Self(id.to_owned()))
        } else {
            Err(Reason::new(
                ReasonCode::Malformed,
                format!("{id:?} is not an EBS volume id"),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for VolumeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the owner-tagger writes a user-id tag on: an instance, or a volume attached to one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TagTarget {
    Instance(InstanceId),
    Volume(VolumeId),
}

impl TagTarget {
    pub fn as_str(&self) -> &str {
        match self {
            TagTarget::Instance(id) => id.as_str(),
            TagTarget::Volume(id) => id.as_str(),
        }
    }
}

impl fmt::Display for TagTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An EC2 instance state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum InstanceState {
    Pending,
    Running,
    ShuttingDown,
    Terminated,
    Stopping,
    Stopped,
}

impl InstanceState {
    /// States in which a user can still have a use for their sessions.
    pub const LIVE: [InstanceState; 4] = [
        InstanceState::Pending,
        InstanceState::Running,
        InstanceState::Stopping,
        InstanceState::Stopped,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "pending" => InstanceState::Pending,
            "running" => InstanceState::Running,
            "shutting-down" => InstanceState::ShuttingDown,
            "terminated" => InstanceState::Terminated,
            "stopping" => InstanceState::Stopping,
            "stopped" => InstanceState::Stopped,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Pending => "pending",
            InstanceState::Running => "running",
            InstanceState::ShuttingDown => "shutting-down",
            InstanceState::Terminated => "terminated",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
        }
    }

    pub fn is_live(self) -> bool {
        Self::LIVE.contains(&self)
    }
}

impl fmt::Display for InstanceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "AROARZPUZDIKBSV3HPLXQ";

    fn role() -> RoleId {
        RoleId::parse(ROLE).unwrap()
    }

    #[test]
    fn regions_map_to_their_partitions() {
        for (region, partition) in [
            ("us-east-1", "aws"),
            ("eu-west-1", "aws"),
            ("cn-north-1", "aws-cn"),
            ("us-gov-west-1", "aws-us-gov"),
            ("us-iso-east-1", "aws-iso"),
            ("us-isob-east-1", "aws-iso-b"),
        ] {
            assert_eq!(Partition::of_region(region).as_str(), partition, "{region}");
        }
        let gov = role().in_partition(Partition::AwsUsGov);
        assert_eq!(gov.to_string(), ROLE);
        assert_eq!(gov.partition(), Partition::AwsUsGov);
    }

    #[test]
    fn role_ids_are_checked() {
        assert_eq!(role().as_str(), ROLE);
        assert_eq!(
            RoleId::parse("AIDAX1234").unwrap_err(),
            "\"AIDAX1234\" is not an IAM role id (AROA followed by upper-case letters and digits)"
        );
    }

    #[test]
    fn a_user_id_round_trips_and_refuses_other_roles_and_bad_names() {
        let id = UserId::parse_for(&format!("{ROLE}:tim"), &role()).unwrap();
        assert_eq!(id.to_string(), format!("{ROLE}:tim"));
        assert_eq!(id.user().as_str(), "tim");
        assert_eq!(
            UserId::parse_for("AROAOTHER:tim", &role()).unwrap_err(),
            Reason::new(
                ReasonCode::ForeignRole,
                format!(
                    "tag value \"AROAOTHER:tim\" names role id AROAOTHER, not the users' role {ROLE}"
                )
            )
        );
        assert_eq!(
            UserId::parse_for(&format!("{ROLE}:t*"), &role())
                .unwrap_err()
                .code,
            ReasonCode::InvalidUsername
        );
        assert_eq!(
            UserId::parse_for("no-colon", &role()).unwrap_err().code,
            ReasonCode::UserIdMalformed
        );
    }

    #[test]
    fn instance_ids_are_checked() {
        for ok in ["i-784cdacd", "i-0a1b2c3d4e5f60001"] {
            assert!(InstanceId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "i-018*9f1",
            " i-1234567890abcdef0",
            "i-ABCDEF12",
            "sg-12345678",
            "i-1234567",
        ] {
            assert_eq!(
                InstanceId::parse(bad).unwrap_err().code,
                ReasonCode::InvalidInstanceId,
                "{bad}"
            );
        }
    }

    #[test]
    fn states_parse_and_know_which_are_live() {
        for state in [
            "pending",
            "running",
            "shutting-down",
            "terminated",
            "stopping",
            "stopped",
        ] {
            assert_eq!(InstanceState::parse(state).unwrap().as_str(), state);
        }
        assert_eq!(InstanceState::parse("rebooting"), None);
        assert!(InstanceState::Stopped.is_live());
        assert!(!InstanceState::ShuttingDown.is_live());
    }

    #[test]
    fn a_managed_node_id_is_mi_and_17_hex_digits_and_an_arn_names_one() {
        assert!(ManagedNodeId::parse("mi-0a1b2c3d4e5f60001").is_ok());
        for bad in [
            "mi-0a1b2c3d",
            "mi-0A1B2C3D4E5F60001",
            "i-0a1b2c3d4e5f60001",
            "mi-0a1b2c3d4e5f600011",
            "mi-../../etc/passwd00",
            "",
        ] {
            let err = ManagedNodeId::parse(bad).unwrap_err();
            assert_eq!(err.code, ReasonCode::InvalidInstanceId, "{bad}");
        }
        assert_eq!(
            ManagedNodeId::from_arn(
                "arn:aws-cn:ssm:cn-north-1:123456789012:managed-instance/mi-0a1b2c3d4e5f60001"
            ),
            ManagedNodeId::parse("mi-0a1b2c3d4e5f60001").ok()
        );
        for not_a_node in [
            "arn:aws:ec2:us-east-1:123456789012:instance/i-0a1b2c3d4e5f60001",
            "managed-instance/mi-0a1b2c3d4e5f60001",
            "arn:aws:ssm:us-east-1:123456789012:managed-instance/mi-nothex",
        ] {
            assert_eq!(ManagedNodeId::from_arn(not_a_node), None, "{not_a_node}");
        }
    }
}
