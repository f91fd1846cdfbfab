//! Settings from environment variables, checked once at start-up.

use std::fmt;
use std::time::Duration;

use crate::domain::ids::{Partition, Region, RoleId};
use crate::domain::ownership::OwnershipRules;
use crate::domain::session_iam::{SessionKinds, ShellSource};

/// Connect timeout for every AWS call.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Default time allowed for one attempt, from sending to the last byte of the answer.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time allowed for one call including the SDK's retries; well inside the Lambda timeout.
pub(crate) const OPERATION_TIMEOUT: Duration = Duration::from_secs(25);

/// A setting that is missing or malformed, named so the operator can fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

fn bad(variable: &'static str, problem: impl fmt::Display) -> ConfigError {
    ConfigError {
        variable,
        problem: problem.to_string(),
    }
}

pub(crate) const SESSION_ROLE_NAME: &str = "SESSION_ROLE_NAME";
pub(crate) const SESSION_ROLE_ID: &str = "SESSION_ROLE_ID";
pub(crate) const OWNER_TAG_KEY: &str = "OWNER_TAG_KEY";
pub(crate) const USER_ID_TAG_KEY: &str = "USER_ID_TAG_KEY";
pub(crate) const TRUSTED_LAUNCHER_ARNS: &str = "TRUSTED_LAUNCHER_ARNS";
pub(crate) const POLICY_NAME_PREFIX: &str = "POLICY_NAME_PREFIX";
pub(crate) const END_SESSIONS_ON_TERMINATE: &str = "END_SESSIONS_ON_TERMINATE";
pub(crate) const RECONCILE_DRY_RUN: &str = "RECONCILE_DRY_RUN";
pub(crate) const POLICY_STORE: &str = "POLICY_STORE";
pub(crate) const MAX_POLICY_SHARDS: &str = "MAX_POLICY_SHARDS";
pub(crate) const ROLE_MANAGED_POLICY_LIMIT: &str = "ROLE_MANAGED_POLICY_LIMIT";
pub(crate) const SDK_ATTEMPT_TIMEOUT_SECONDS: &str = "SDK_ATTEMPT_TIMEOUT_SECONDS";
pub(crate) const SDK_OPERATION_TIMEOUT_SECONDS: &str = "SDK_OPERATION_TIMEOUT_SECONDS";
pub(crate) const SESSION_RIGHTS: &str = "SESSION_RIGHTS";
pub(crate) const FLEET_READS_AT_ONCE: &str = "FLEET_READS_AT_ONCE";
pub(crate) const SINGLE_WRITER: &str = "SINGLE_WRITER";
pub(crate) const REGIONS: &str = "REGIONS";
pub(crate) const PERMISSION_SET_NAME: &str = "PERMISSION_SET_NAME";
pub(crate) const END_USER_POLICY_NAME: &str = "END_USER_POLICY_NAME";
// The session kinds (template ShellSessions, PortForwarding, SshSessions, SessionDocumentPrefix,
// SshOsUsers), for the doctor; the functions do not need them.
pub(crate) const SHELL_SESSIONS: &str = "SHELL_SESSIONS";
pub(crate) const PORT_FORWARDING: &str = "PORT_FORWARDING";
pub(crate) const SSH_SESSIONS: &str = "SSH_SESSIONS";
pub(crate) const SESSION_DOCUMENT_PREFIX: &str = "SESSION_DOCUMENT_PREFIX";
pub(crate) const SSH_OS_USERS: &str = "SSH_OS_USERS";
// Sharing (template Sharing, ShareWithTagKey, ShareForTagKey, GuestSlots, ShareDefaultDuration,
// ShareMaxDuration).
pub(crate) const SHARING: &str = "SHARING";
pub(crate) const HYBRID_NODES: &str = "HYBRID_NODES";
pub(crate) const SHARE_WITH_TAG_KEY: &str = "SHARE_WITH_TAG_KEY";
pub(crate) const SHARE_FOR_TAG_KEY: &str = "SHARE_FOR_TAG_KEY";
pub(crate) const GUEST_SLOTS: &str = "GUEST_SLOTS";
pub(crate) const SHARE_DEFAULT_DURATION: &str = "SHARE_DEFAULT_DURATION";
pub(crate) const SHARE_MAX_DURATION: &str = "SHARE_MAX_DURATION";
pub(crate) const SHARING_POLICY_NAME: &str = "SHARING_POLICY_NAME";
// The one-time schedules that end shares at their time (the template's ShareExpiry resources).
pub(crate) const SHARE_EXPIRY_SCHEDULE_GROUP: &str = "SHARE_EXPIRY_SCHEDULE_GROUP";
pub(crate) const SHARE_EXPIRY_ROLE_ARN: &str = "SHARE_EXPIRY_ROLE_ARN";
pub(crate) const SHARE_EXPIRY_BUS_ARN: &str = "SHARE_EXPIRY_BUS_ARN";

/// IAM's managed policies per role at the most, with a quota raise (10 by default).
const ROLE_MANAGED_POLICY_MAX: usize = 25;

pub use crate::domain::settings::{SessionRights, StoreKind, UsersRole, WriteMode};
use crate::domain::sharing;
pub use crate::domain::sharing::{ShareDuration, ShareRules};

/// Session rights: where they come from, where the per-user statements are kept, and how they
/// are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RightsSettings {
    pub session_rights: SessionRights,
    pub policy_store: StoreKind,
    /// Every policy the product creates starts with this; it never touches any other.
    pub policy_name_prefix: String,
    /// The end-user policy's name (`EndUserPolicyName` in the template), for the doctor.
    pub end_user_policy_name: String,
    /// End the sessions still open on an instance when it terminates.
    pub end_sessions_on_terminate: bool,
    /// `DryRun`: the reconcile only reports the changes it would make (`RECONCILE_DRY_RUN`).
    pub reconcile_mode: WriteMode,
    /// This process is the only writer of the per-user statements (`SINGLE_WRITER`; the
    /// template sets it beside the function's reserved concurrency of 1). A grant or revoke
    /// then writes once and does not re-read EC2 to verify: every later change to EC2 is its own
    /// event, handled after this one. Unset (false), as for `replay` beside a deployed function,
    /// every write is verified by reading again, so two writers racing cannot leave either
    /// decision undone.
    pub single_writer: bool,
    /// Shards the managed store may use at most.
    pub max_policy_shards: usize,
    /// Managed policies the users' role may have attached in all (10, or up to 25 with a quota
    /// raise).
    pub role_managed_policy_limit: usize,
}

/// The regions the deployment covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionSettings {
    /// `REGIONS`: when non-empty, only these of the account's enabled regions are covered.
    pub only: Vec<Region>,
    /// The partition of the home region (`AWS_REGION`), named in the statements' ARNs.
    pub partition: Partition,
    /// Regions whose whole fleet is read at the same time (the reconcile, the sweep): each one
    /// in flight holds a page of up to 1,000 instances, about 4 MiB.
    pub fleet_reads_at_once: usize,
}

/// The SDK's timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SdkTimeouts {
    /// Time allowed for one AWS request attempt.
    pub attempt: Duration,
    /// Time allowed for one AWS call, retries included.
    pub operation: Duration,
}

/// Settings shared by every function, by concern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The federated role the users sign in through.
    pub users_role: UsersRole,
    /// Its unique id (`AROA…`); resolved with one GetRole per process when not given.
    pub session_role_id: Option<RoleId>,
    /// The tag keys and the trusted launchers (`OWNER_TAG_KEY`, `USER_ID_TAG_KEY`,
    /// `TRUSTED_LAUNCHER_ARNS`).
    pub ownership: OwnershipRules,
    /// Session rights: where they come from, where they are kept, how they are written.
    pub rights: RightsSettings,
    /// The regions covered, their partition, and how many are read at once.
    pub regions: RegionSettings,
    /// The SDK's timeouts.
    pub sdk: SdkTimeouts,
    /// The session kinds the deployment turns on, and its documents' names.
    pub session_kinds: SessionKinds,
    /// Owners sharing their instances with named guests until a time they choose.
    pub sharing: ShareRules,
    /// Where the owner-tagger makes each share's one-time expiry schedule; `None`: shares end at
    /// the first sweep after their time.
    pub share_expiry: Option<ExpirySchedule>,
    /// On-premises and hybrid managed nodes (`mi-*`) are owned too (`HYBRID_NODES`): at their
    /// registration and by the sweep.
    pub hybrid_nodes: bool,
}

/// EventBridge Scheduler's side of a share's end: the schedule group, the role the schedules
/// run as, and the event bus they send the expiry event to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpirySchedule {
    pub group: String,
    pub role_arn: String,
    pub bus_arn: String,
}

impl Config {
    /// The tags that give a user session rights in per-user mode: the user-id tag, and each
    /// guest slot while sharing is on (a guest ends and resumes their own sessions while the
    /// share lasts).
    pub fn rights_keys(&self) -> Vec<String> {
        let mut keys = vec![self.ownership.user_id_tag_key.clone()];
        if self.sharing.enabled {
            keys.extend(self.sharing.slot_keys());
        }
        keys
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Build from any variable source; `from_env` uses the process environment. One parser
    /// per group of settings, each naming the variable it rejects.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let value = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let (users_role, session_role_id) = users_role(&value)?;
        let ownership = ownership_rules(&value)?;
        let policy_name_prefix =
            value(POLICY_NAME_PREFIX).unwrap_or_else(|| "ssm-session-owner-".into());
        validate_policy_prefix(&policy_name_prefix).map_err(|p| bad(POLICY_NAME_PREFIX, p))?;
        let end_user_policy_name =
            value(END_USER_POLICY_NAME).unwrap_or_else(|| "SsmSessionOwnerEndUser".into());
        validate_policy_name(&end_user_policy_name).map_err(|p| bad(END_USER_POLICY_NAME, p))?;
        let end_sessions_on_terminate = flag(value(END_SESSIONS_ON_TERMINATE), true)
            .map_err(|p| bad(END_SESSIONS_ON_TERMINATE, p))?;
        let reconcile_mode =
            match flag(value(RECONCILE_DRY_RUN), false).map_err(|p| bad(RECONCILE_DRY_RUN, p))? {
                true => WriteMode::DryRun,
                false => WriteMode::Apply,
            };
        let policy_store = choice(
            &value,
            POLICY_STORE,
            &[
                ("managed", StoreKind::Managed),
                ("inline", StoreKind::Inline),
            ],
        )?;
        let session_rights = choice(
            &value,
            SESSION_RIGHTS,
            &[
                ("per-user", SessionRights::PerUser),
                ("static", SessionRights::Static),
            ],
        )?;
        let regions = list(
            &value,
            REGIONS,
            |name| Region::parse(name).ok(),
            "a region name (comma-separated, e.g. us-east-1,eu-west-1)",
        )?;
        let partition = value("AWS_REGION")
            .or_else(|| value("AWS_DEFAULT_REGION"))
            .map(|region| Partition::of_region(&region))
            .unwrap_or_default();
        let (role_managed_policy_limit, max_policy_shards) = shard_limits(&value)?;
        let fleet_reads_at_once = number(value(FLEET_READS_AT_ONCE), 4, 1..=24)
            .map_err(|p| bad(FLEET_READS_AT_ONCE, p))?;
        let single_writer = flag(value(SINGLE_WRITER), false).map_err(|p| bad(SINGLE_WRITER, p))?;
        let (sdk_attempt_timeout, sdk_operation_timeout) = sdk_timeouts(&value)?;
        Ok(Self {
            session_kinds: session_kinds(&value)?,
            sharing: share_rules(&value, &ownership)?,
            share_expiry: expiry_schedule(&value)?,
            hybrid_nodes: flag(value(HYBRID_NODES), false).map_err(|p| bad(HYBRID_NODES, p))?,
            users_role,
            session_role_id,
            ownership,
            rights: RightsSettings {
                session_rights,
                policy_store,
                policy_name_prefix,
                end_user_policy_name,
                end_sessions_on_terminate,
                reconcile_mode,
                single_writer,
                max_policy_shards,
                role_managed_policy_limit,
            },
            regions: RegionSettings {
                only: regions,
                partition,
                fleet_reads_at_once,
            },
            sdk: SdkTimeouts {
                attempt: sdk_attempt_timeout,
                operation: sdk_operation_timeout,
            },
        })
    }
}

#[cfg(any(test, feature = "fakes"))]
impl Config {
    /// The users' role of the tests, the samples and the demo.
    pub const TEST_ROLE: &'static str = "Okta-ServiceWorkbenchUser";

    /// For tests: `vars` over the defaults, with the users' role [`Config::TEST_ROLE`] unless
    /// `vars` names one (`SESSION_ROLE_NAME` or `PERMISSION_SET_NAME`).
    #[allow(
        clippy::expect_used,
        reason = "a test's configuration is valid, or the test is wrong"
    )]
    pub fn for_tests(vars: &[(&str, &str)]) -> Self {
        let names_a_role = vars
            .iter()
            .any(|(name, _)| *name == SESSION_ROLE_NAME || *name == PERMISSION_SET_NAME);
        Self::from_lookup(|key| {
            vars.iter()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| (*value).to_owned())
                .or_else(|| {
                    (key == SESSION_ROLE_NAME && !names_a_role).then(|| Self::TEST_ROLE.to_owned())
                })
        })
        .expect("a valid test configuration")
    }
}

/// A variable source, trimmed; empty is unset.
type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The users' role: by name, or by permission set (exactly one), and its id when given.
fn users_role(value: Lookup) -> Result<(UsersRole, Option<RoleId>), ConfigError> {
    let users_role = match (value(SESSION_ROLE_NAME), value(PERMISSION_SET_NAME)) {
        (Some(_), Some(_)) => {
            return Err(bad(
                PERMISSION_SET_NAME,
                format!("names the users' role instead of {SESSION_ROLE_NAME}: set one of them"),
            ))
        }
        (None, Some(set)) => {
            validate_permission_set(&set).map_err(|p| bad(PERMISSION_SET_NAME, p))?;
            UsersRole::PermissionSet(set)
        }
        (Some(name), None) => {
            validate_role_name(&name).map_err(|p| bad(SESSION_ROLE_NAME, p))?;
            UsersRole::Named(name)
        }
        (None, None) => return Err(bad(
            SESSION_ROLE_NAME,
            "is required: the name of the users' federated IAM role (or set PERMISSION_SET_NAME)",
        )),
    };
    let session_role_id = value(SESSION_ROLE_ID)
        .map(|id| RoleId::parse(&id).map_err(|p| bad(SESSION_ROLE_ID, p)))
        .transpose()?;
    Ok((users_role, session_role_id))
}

/// The two tag keys (distinct) and the trusted launchers.
fn ownership_rules(value: Lookup) -> Result<OwnershipRules, ConfigError> {
    let owner_tag_key = value(OWNER_TAG_KEY).unwrap_or_else(|| "CreatedBy".into());
    validate_tag_key(&owner_tag_key).map_err(|p| bad(OWNER_TAG_KEY, p))?;
    let user_id_tag_key = value(USER_ID_TAG_KEY).unwrap_or_else(|| "AwsUserId".into());
    validate_tag_key(&user_id_tag_key).map_err(|p| bad(USER_ID_TAG_KEY, p))?;
    if owner_tag_key == user_id_tag_key {
        return Err(bad(
            USER_ID_TAG_KEY,
            format!("must differ from {OWNER_TAG_KEY} (both are {owner_tag_key:?})"),
        ));
    }
    let trusted_launcher_arns = list(
        value,
        TRUSTED_LAUNCHER_ARNS,
        |arn| {
            (arn.starts_with("arn:") && !arn.contains('*') && !arn.contains('?'))
                .then(|| arn.to_owned())
        },
        "an ARN (comma-separated, no wildcards)",
    )?;
    Ok(OwnershipRules {
        owner_tag_key,
        user_id_tag_key,
        trusted_launcher_arns,
    })
}

/// The expiry schedules: all three variables, or none.
fn expiry_schedule(value: Lookup) -> Result<Option<ExpirySchedule>, ConfigError> {
    let group = value(SHARE_EXPIRY_SCHEDULE_GROUP).filter(|v| !v.is_empty());
    let role_arn = value(SHARE_EXPIRY_ROLE_ARN).filter(|v| !v.is_empty());
    let bus_arn = value(SHARE_EXPIRY_BUS_ARN).filter(|v| !v.is_empty());
    match (group, role_arn, bus_arn) {
        (None, None, None) => Ok(None),
        (Some(group), Some(role_arn), Some(bus_arn)) => {
            if !role_arn.starts_with("arn:") || !role_arn.contains(":role/") {
                return Err(bad(SHARE_EXPIRY_ROLE_ARN, format!("{role_arn:?} is not a role ARN")));
            }
            if !bus_arn.starts_with("arn:") || !bus_arn.contains(":event-bus/") {
                return Err(bad(SHARE_EXPIRY_BUS_ARN, format!("{bus_arn:?} is not an event bus ARN")));
            }
            Ok(Some(ExpirySchedule {
                group,
                role_arn,
                bus_arn,
            }))
        }
        _ => Err(bad(
            SHARE_EXPIRY_SCHEDULE_GROUP,
            format!("{SHARE_EXPIRY_SCHEDULE_GROUP}, {SHARE_EXPIRY_ROLE_ARN} and {SHARE_EXPIRY_BUS_ARN} go together: set all three or none"),
        )),
    }
}

/// Sharing: off unless `SHARING` turns it on (the template does, by default), the two request
/// keys, the guest slots and the durations.
fn share_rules(value: Lookup, ownership: &OwnershipRules) -> Result<ShareRules, ConfigError> {
    let enabled = flag(value(SHARING), false).map_err(|p| bad(SHARING, p))?;
    let share_with_key = value(SHARE_WITH_TAG_KEY).unwrap_or_else(|| "ShareWith".into());
    validate_tag_key(&share_with_key).map_err(|p| bad(SHARE_WITH_TAG_KEY, p))?;
    let share_for_key = value(SHARE_FOR_TAG_KEY).unwrap_or_else(|| "ShareFor".into());
    validate_tag_key(&share_for_key).map_err(|p| bad(SHARE_FOR_TAG_KEY, p))?;
    let slots =
        number(value(GUEST_SLOTS), 3, 1..=sharing::MAX_SLOTS).map_err(|p| bad(GUEST_SLOTS, p))?;
    let duration = |name: &'static str, default: &str| {
        ShareDuration::parse(&value(name).unwrap_or_else(|| default.into()))
            .map_err(|p| bad(name, p))
    };
    let default_duration = duration(SHARE_DEFAULT_DURATION, "8h")?;
    let max_duration = duration(SHARE_MAX_DURATION, "7d")?;
    if default_duration > max_duration {
        return Err(bad(
            SHARE_DEFAULT_DURATION,
            format!("{default_duration} is longer than {SHARE_MAX_DURATION} ({max_duration})"),
        ));
    }
    let policy_name = value(SHARING_POLICY_NAME).unwrap_or_else(|| "SsmSessionOwnerSharing".into());
    validate_policy_name(&policy_name).map_err(|p| bad(SHARING_POLICY_NAME, p))?;
    let rules = ShareRules {
        policy_name,
        enabled,
        share_with_key,
        share_for_key,
        user_id_key: ownership.user_id_tag_key.clone(),
        slots,
        default_duration,
        max_duration,
    };
    // The owner may write the request keys; nobody may write the product's. No spelling of one
    // may be another's.
    let product: Vec<String> = [&ownership.owner_tag_key, &ownership.user_id_tag_key]
        .into_iter()
        .cloned()
        .chain(rules.product_keys())
        .collect();
    for (variable, key) in [
        (SHARE_WITH_TAG_KEY, &rules.share_with_key),
        (SHARE_FOR_TAG_KEY, &rules.share_for_key),
    ] {
        if let Some(clash) = product.iter().find(|k| k.eq_ignore_ascii_case(key)) {
            return Err(bad(
                variable,
                format!("{key:?} is, in some spelling, the product's own tag key {clash:?}"),
            ));
        }
    }
    if rules
        .share_with_key
        .eq_ignore_ascii_case(&rules.share_for_key)
    {
        return Err(bad(
            SHARE_FOR_TAG_KEY,
            format!("must differ from {SHARE_WITH_TAG_KEY} in more than letter case"),
        ));
    }
    Ok(rules)
}

/// IAM's managed policies per role, and the shards the store may use (at most that).
fn shard_limits(value: Lookup) -> Result<(usize, usize), ConfigError> {
    let role_managed_policy_limit = number(
        value(ROLE_MANAGED_POLICY_LIMIT),
        10,
        1..=ROLE_MANAGED_POLICY_MAX,
    )
    .map_err(|p| bad(ROLE_MANAGED_POLICY_LIMIT, p))?;
    let max_policy_shards = number(
        value(MAX_POLICY_SHARDS),
        role_managed_policy_limit,
        1..=ROLE_MANAGED_POLICY_MAX,
    )
    .map_err(|p| bad(MAX_POLICY_SHARDS, p))?;
    Ok((role_managed_policy_limit, max_policy_shards))
}

/// The SDK's attempt and operation timeouts; an operation is never shorter than an attempt.
fn sdk_timeouts(value: Lookup) -> Result<(Duration, Duration), ConfigError> {
    let attempt = number(
        value(SDK_ATTEMPT_TIMEOUT_SECONDS),
        ATTEMPT_TIMEOUT.as_secs() as usize,
        1..=900,
    )
    .map_err(|p| bad(SDK_ATTEMPT_TIMEOUT_SECONDS, p))?;
    let operation = number(
        value(SDK_OPERATION_TIMEOUT_SECONDS),
        OPERATION_TIMEOUT.as_secs() as usize,
        1..=900,
    )
    .map_err(|p| bad(SDK_OPERATION_TIMEOUT_SECONDS, p))?;
    if operation < attempt {
        return Err(bad(
            SDK_OPERATION_TIMEOUT_SECONDS,
            format!("{operation} is shorter than {SDK_ATTEMPT_TIMEOUT_SECONDS} ({attempt})"),
        ));
    }
    Ok((
        Duration::from_secs(attempt as u64),
        Duration::from_secs(operation as u64),
    ))
}

/// One of `choices` by its spelling; unset is the first.
fn choice<T: Copy>(
    value: Lookup,
    variable: &'static str,
    choices: &[(&str, T)],
) -> Result<T, ConfigError> {
    let Some(given) = value(variable) else {
        return Ok(choices[0].1);
    };
    if let Some((_, chosen)) = choices.iter().find(|(spelling, _)| *spelling == given) {
        return Ok(*chosen);
    }
    let names: Vec<&str> = choices.iter().map(|(spelling, _)| *spelling).collect();
    let (last, rest) = names.split_last().unwrap_or((&"", &[]));
    let expected = if rest.is_empty() {
        (*last).to_owned()
    } else {
        format!("{} or {last}", rest.join(", "))
    };
    Err(bad(variable, format!("{given:?} is not {expected}")))
}

/// A comma-separated list (blanks dropped), each item read by `read`; an item it refuses "is
/// not {what}". Unset is empty.
fn list<T>(
    value: Lookup,
    variable: &'static str,
    read: impl Fn(&str) -> Option<T>,
    what: &str,
) -> Result<Vec<T>, ConfigError> {
    let Some(items) = value(variable) else {
        return Ok(Vec::new());
    };
    items
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| read(item).ok_or_else(|| bad(variable, format!("{item:?} is not {what}"))))
        .collect()
}

/// The session kinds, from the variables named as the template's parameters.
fn session_kinds(value: Lookup) -> Result<SessionKinds, ConfigError> {
    let defaults = SessionKinds::default();
    let shell = choice(
        value,
        SHELL_SESSIONS,
        &[
            ("account", ShellSource::Account),
            ("product", ShellSource::Product),
            ("off", ShellSource::Off),
        ],
    )?;
    let port_forwarding = flag(value(PORT_FORWARDING), defaults.port_forwarding)
        .map_err(|p| bad(PORT_FORWARDING, p))?;
    let ssh = flag(value(SSH_SESSIONS), defaults.ssh).map_err(|p| bad(SSH_SESSIONS, p))?;
    let document_prefix = value(SESSION_DOCUMENT_PREFIX).unwrap_or(defaults.document_prefix);
    let lower = document_prefix.to_ascii_lowercase();
    if document_prefix.is_empty()
        || document_prefix.len() > 64
        || !document_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        || ["aws", "amazon", "amzn"]
            .iter()
            .any(|p| lower.starts_with(p))
    {
        return Err(bad(
            SESSION_DOCUMENT_PREFIX,
            format!("{document_prefix:?} is not 1-64 of letters, digits, _ . - (not starting with aws, amazon or amzn)"),
        ));
    }
    let ssh_os_users = if value(SSH_OS_USERS).is_some() {
        list(
            value,
            SSH_OS_USERS,
            |user| Some(user.to_owned()),
            "an OS user",
        )?
    } else {
        defaults.ssh_os_users
    };
    if shell == ShellSource::Off && !port_forwarding && !ssh {
        return Err(bad(
            SHELL_SESSIONS,
            "is off, and so are PORT_FORWARDING and SSH_SESSIONS: no session kind is on",
        ));
    }
    Ok(SessionKinds {
        shell,
        port_forwarding,
        ssh,
        document_prefix,
        ssh_os_users,
    })
}

fn validate_role_name(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if name.len() > 64 || !name.chars().all(ok_char) {
        return Err(format!(
            "{name:?} is not an IAM role name (1-64 characters of A-Z a-z 0-9 + = , . @ _ -, no path)"
        ));
    }
    Ok(())
}

/// IAM Identity Center permission-set names: 1-32 characters of `[\w+=,.@-]`.
fn validate_permission_set(name: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if name.len() > 32 || !name.chars().all(ok_char) {
        return Err(format!(
            "{name:?} is not a permission-set name (1-32 characters of A-Z a-z 0-9 + = , . @ _ -)"
        ));
    }
    Ok(())
}

fn number(
    value: Option<String>,
    default: usize,
    range: std::ops::RangeInclusive<usize>,
) -> Result<usize, String> {
    let Some(text) = value else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a whole number from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

fn flag(value: Option<String>, default: bool) -> Result<bool, String> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes") => Ok(true),
        Some("false" | "0" | "no") => Ok(false),
        Some(other) => Err(format!("{other:?} is not true or false")),
    }
}

/// Whether `name` is spelled like an AWS region (`us-east-1`, `us-gov-west-1`).
pub fn is_region_name(name: &str) -> bool {
    Region::parse(name).is_ok()
}

/// IAM policy names: 1-128 characters of `[\w+=,.@-]`.
fn validate_policy_name(name: &str) -> Result<(), String> {
    policy_name_chars(name, 128, "an IAM policy name")
}

/// Room is left for `<username (64)>-<hash (8)>` within IAM's 128-character policy names.
fn validate_policy_prefix(prefix: &str) -> Result<(), String> {
    policy_name_chars(prefix, 50, "a policy-name prefix")
}

fn policy_name_chars(name: &str, max: usize, what: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c);
    if name.is_empty() || name.len() > max || !name.chars().all(ok_char) {
        return Err(format!(
            "{name:?} is not {what} (1-{max} characters of A-Z a-z 0-9 + = , . @ _ -)"
        ));
    }
    Ok(())
}

fn validate_tag_key(key: &str) -> Result<(), String> {
    if key.chars().count() > 128 {
        return Err(format!("{key:?} is longer than 128 characters"));
    }
    if key.to_ascii_lowercase().starts_with("aws:") {
        return Err(format!("{key:?} uses the reserved aws: prefix"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_apply_when_only_the_role_name_is_set() {
        let config = from(&[(SESSION_ROLE_NAME, "Okta-ServiceWorkbenchUser")]).unwrap();
        assert_eq!(
            config,
            Config {
                users_role: UsersRole::Named("Okta-ServiceWorkbenchUser".into()),
                session_role_id: None,
                ownership: OwnershipRules {
                    owner_tag_key: "CreatedBy".into(),
                    user_id_tag_key: "AwsUserId".into(),
                    trusted_launcher_arns: vec![],
                },
                rights: RightsSettings {
                    session_rights: SessionRights::PerUser,
                    policy_store: StoreKind::Managed,
                    policy_name_prefix: "ssm-session-owner-".into(),
                    end_user_policy_name: "SsmSessionOwnerEndUser".into(),
                    end_sessions_on_terminate: true,
                    reconcile_mode: WriteMode::Apply,
                    single_writer: false,
                    max_policy_shards: 10,
                    role_managed_policy_limit: 10,
                },
                regions: RegionSettings {
                    only: vec![],
                    partition: Partition::Aws,
                    fleet_reads_at_once: 4,
                },
                sdk: SdkTimeouts {
                    attempt: std::time::Duration::from_secs(10),
                    operation: std::time::Duration::from_secs(25),
                },
                session_kinds: SessionKinds::default(),
                sharing: ShareRules {
                    enabled: false,
                    share_with_key: "ShareWith".into(),
                    share_for_key: "ShareFor".into(),
                    user_id_key: "AwsUserId".into(),
                    slots: 3,
                    default_duration: ShareDuration::parse("8h").unwrap(),
                    max_duration: ShareDuration::parse("7d").unwrap(),
                    policy_name: "SsmSessionOwnerSharing".into(),
                },
                share_expiry: None,
                hybrid_nodes: false,
            }
        );
    }

    #[test]
    fn the_expiry_schedule_takes_all_three_variables_or_none() {
        let all = [
            (SESSION_ROLE_NAME, "R"),
            (SHARE_EXPIRY_SCHEDULE_GROUP, "ssm-session-owner-shares"),
            (
                SHARE_EXPIRY_ROLE_ARN,
                "arn:aws:iam::123456789012:role/ShareExpiry",
            ),
            (
                SHARE_EXPIRY_BUS_ARN,
                "arn:aws:events:us-east-1:123456789012:event-bus/default",
            ),
        ];
        assert_eq!(
            from(&all).unwrap().share_expiry,
            Some(ExpirySchedule {
                group: "ssm-session-owner-shares".into(),
                role_arn: "arn:aws:iam::123456789012:role/ShareExpiry".into(),
                bus_arn: "arn:aws:events:us-east-1:123456789012:event-bus/default".into(),
            })
        );
        let err = from(&all[..2]).unwrap_err().to_string();
        assert!(err.contains("go together"), "{err}");
        let mut wrong = all;
        wrong[2].1 = "ShareExpiry";
        let err = from(&wrong).unwrap_err().to_string();
        assert!(err.contains("is not a role ARN"), "{err}");
    }

    #[test]
    fn sharing_is_read_with_its_keys_slots_and_durations() {
        let config = from(&[
            (SESSION_ROLE_NAME, "R"),
            (USER_ID_TAG_KEY, "Uid"),
            (SHARING, "true"),
            (SHARE_WITH_TAG_KEY, "Guests"),
            (SHARE_FOR_TAG_KEY, "GuestsFor"),
            (GUEST_SLOTS, "5"),
            (SHARE_DEFAULT_DURATION, "90m"),
            (SHARE_MAX_DURATION, "1d"),
        ])
        .unwrap();
        let sharing = &config.sharing;
        assert!(sharing.enabled);
        assert_eq!(
            (
                sharing.share_with_key.as_str(),
                sharing.share_for_key.as_str()
            ),
            ("Guests", "GuestsFor")
        );
        assert_eq!(
            sharing.product_keys(),
            [
                "UidGuest1",
                "UidGuest2",
                "UidGuest3",
                "UidGuest4",
                "UidGuest5",
                "UidSharedUntil"
            ]
        );
        assert_eq!(sharing.default_duration.minutes(), 90);
        assert_eq!(sharing.max_duration.minutes(), 24 * 60);
        for (vars, problem) in [
            (&[(GUEST_SLOTS, "6")][..], "GUEST_SLOTS: \"6\" is not a whole number from 1 to 5"),
            (&[(SHARE_MAX_DURATION, "1w")], "SHARE_MAX_DURATION: \"1w\" is not a duration: a whole number followed by m, h or d (90m, 8h, 3d)"),
            (&[(SHARE_DEFAULT_DURATION, "8d")], "SHARE_DEFAULT_DURATION: 8d is longer than SHARE_MAX_DURATION (7d)"),
            (&[(SHARE_WITH_TAG_KEY, "awsuserid")], "SHARE_WITH_TAG_KEY: \"awsuserid\" is, in some spelling, the product's own tag key \"AwsUserId\""),
            (&[(SHARE_FOR_TAG_KEY, "AWSUSERIDGUEST2")], "SHARE_FOR_TAG_KEY: \"AWSUSERIDGUEST2\" is, in some spelling, the product's own tag key \"AwsUserIdGuest2\""),
            (&[(SHARE_FOR_TAG_KEY, "sharewith")], "SHARE_FOR_TAG_KEY: must differ from SHARE_WITH_TAG_KEY in more than letter case"),
            (&[(SHARING, "sometimes")], "SHARING: \"sometimes\" is not true or false"),
        ] {
            let mut all = vec![(SESSION_ROLE_NAME, "R")];
            all.extend_from_slice(vars);
            assert_eq!(from(&all).unwrap_err().to_string(), problem);
        }
    }

    #[test]
    fn the_session_kinds_are_read_as_the_template_names_them() {
        let config = from(&[
            (SESSION_ROLE_NAME, "R"),
            (SHELL_SESSIONS, "product"),
            (PORT_FORWARDING, "false"),
            (SSH_SESSIONS, "true"),
            (SESSION_DOCUMENT_PREFIX, "Research-"),
            (SSH_OS_USERS, "ec2-user, rstudio"),
        ])
        .unwrap();
        assert_eq!(
            config.session_kinds,
            SessionKinds {
                shell: ShellSource::Product,
                port_forwarding: false,
                ssh: true,
                document_prefix: "Research-".into(),
                ssh_os_users: vec!["ec2-user".into(), "rstudio".into()],
            }
        );
        for (variable, value, problem) in [
            (SHELL_SESSIONS, "console", "SHELL_SESSIONS: \"console\" is not account, product or off"),
            (SESSION_DOCUMENT_PREFIX, "AWS-Mine", "SESSION_DOCUMENT_PREFIX: \"AWS-Mine\" is not 1-64 of letters, digits, _ . - (not starting with aws, amazon or amzn)"),
            (SESSION_DOCUMENT_PREFIX, "a/b", "SESSION_DOCUMENT_PREFIX: \"a/b\" is not 1-64 of letters, digits, _ . - (not starting with aws, amazon or amzn)"),
            (SSH_SESSIONS, "maybe", "SSH_SESSIONS: \"maybe\" is not true or false"),
        ] {
            let err = from(&[(SESSION_ROLE_NAME, "R"), (variable, value)]).unwrap_err();
            assert_eq!(err.to_string(), problem);
        }
        let none = from(&[
            (SESSION_ROLE_NAME, "R"),
            (SHELL_SESSIONS, "off"),
            (PORT_FORWARDING, "false"),
        ])
        .unwrap_err();
        assert_eq!(
            none.to_string(),
            "SHELL_SESSIONS: is off, and so are PORT_FORWARDING and SSH_SESSIONS: no session kind is on"
        );
    }

    #[test]
    fn every_setting_is_read() {
        let config = from(&[
            (SESSION_ROLE_NAME, "R"),
            (SESSION_ROLE_ID, "AROAEXAMPLE123"),
            (OWNER_TAG_KEY, "Owner"),
            (USER_ID_TAG_KEY, "SessionOwner"),
            (
                TRUSTED_LAUNCHER_ARNS,
                " arn:aws:iam::1:role/Portal , arn:aws:iam::1:role/Other,",
            ),
        ])
        .unwrap();
        assert_eq!(
            config.session_role_id.as_ref().map(RoleId::as_str),
            Some("AROAEXAMPLE123")
        );
        assert_eq!(config.ownership.owner_tag_key, "Owner");
        assert_eq!(config.ownership.user_id_tag_key, "SessionOwner");
        assert_eq!(
            config.ownership.trusted_launcher_arns,
            vec!["arn:aws:iam::1:role/Portal", "arn:aws:iam::1:role/Other"]
        );
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "SESSION_ROLE_NAME: is required: the name of the users' federated IAM role (or set PERMISSION_SET_NAME)"),
            (&[(SESSION_ROLE_NAME, "  ")], "SESSION_ROLE_NAME: is required: the name of the users' federated IAM role (or set PERMISSION_SET_NAME)"),
            (
                &[(SESSION_ROLE_NAME, "R"), (PERMISSION_SET_NAME, "ResearchUsers")],
                "PERMISSION_SET_NAME: names the users' role instead of SESSION_ROLE_NAME: set one of them",
            ),
            (
                &[(PERMISSION_SET_NAME, "Research Users")],
                "PERMISSION_SET_NAME: \"Research Users\" is not a permission-set name (1-32 characters of A-Z a-z 0-9 + = , . @ _ -)",
            ),
            (
                &[(SESSION_ROLE_NAME, "path/Role")],
                "SESSION_ROLE_NAME: \"path/Role\" is not an IAM role name (1-64 characters of A-Z a-z 0-9 + = , . @ _ -, no path)",
            ),
            (
                &[(SESSION_ROLE_NAME, "R"), (SESSION_ROLE_ID, "AIDAX1234")],
                "SESSION_ROLE_ID: \"AIDAX1234\" is not an IAM role id (AROA followed by upper-case letters and digits)",
            ),
            (
                &[(SESSION_ROLE_NAME, "R"), (USER_ID_TAG_KEY, "aws:owner")],
                "USER_ID_TAG_KEY: \"aws:owner\" uses the reserved aws: prefix",
            ),
            (
                &[(SESSION_ROLE_NAME, "R"), (USER_ID_TAG_KEY, "CreatedBy")],
                "USER_ID_TAG_KEY: must differ from OWNER_TAG_KEY (both are \"CreatedBy\")",
            ),
            (
                &[(SESSION_ROLE_NAME, "R"), (POLICY_NAME_PREFIX, "bad prefix")],
                "POLICY_NAME_PREFIX: \"bad prefix\" is not a policy-name prefix (1-50 characters of A-Z a-z 0-9 + = , . @ _ -)",
            ),
            (
                &[(SESSION_ROLE_NAME, "R"), (MAX_POLICY_SHARDS, "26")],
                "MAX_POLICY_SHARDS: \"26\" is not a whole number from 1 to 25",
            ),
            (
                &[(SESSION_ROLE_NAME, "R"), (REGIONS, "us-east-1, Europe")],
                "REGIONS: \"Europe\" is not a region name (comma-separated, e.g. us-east-1,eu-west-1)",
            ),
            (
                &[(SESSION_ROLE_NAME, "R"), (SESSION_RIGHTS, "both")],
                "SESSION_RIGHTS: \"both\" is not per-user or static",
            ),
            (
                &[(SESSION_ROLE_NAME, "R"), (SDK_ATTEMPT_TIMEOUT_SECONDS, "60")],
                "SDK_OPERATION_TIMEOUT_SECONDS: 25 is shorter than SDK_ATTEMPT_TIMEOUT_SECONDS (60)",
            ),
            (
                &[(SESSION_ROLE_NAME, "R"), (END_USER_POLICY_NAME, "path/Policy")],
                "END_USER_POLICY_NAME: \"path/Policy\" is not an IAM policy name (1-128 characters of A-Z a-z 0-9 + = , . @ _ -)",
            ),
            (
                &[(SESSION_ROLE_NAME, "R"), (POLICY_STORE, "dynamo")],
                "POLICY_STORE: \"dynamo\" is not managed or inline",
            ),
            (
                &[(SESSION_ROLE_NAME, "R"), (RECONCILE_DRY_RUN, "maybe")],
                "RECONCILE_DRY_RUN: \"maybe\" is not true or false",
            ),
            (
                &[(SESSION_ROLE_NAME, "R"), (SINGLE_WRITER, "once")],
                "SINGLE_WRITER: \"once\" is not true or false",
            ),
            (
                &[(SESSION_ROLE_NAME, "R"), (TRUSTED_LAUNCHER_ARNS, "arn:aws:iam::1:role/*")],
                "TRUSTED_LAUNCHER_ARNS: \"arn:aws:iam::1:role/*\" is not an ARN (comma-separated, no wildcards)",
            ),
        ];
        for (vars, message) in cases {
            assert_eq!(from(vars).unwrap_err().to_string(), *message);
        }
    }
}
