//! Sharing: an owner lets named colleagues in until a time they choose.
//!
//! The owner writes two tags on their own instance (the end-user policy lets them write exactly
//! these two, only there): `ShareWith` = usernames separated by spaces, and optionally
//! `ShareFor` = a duration (`90m`, `8h`, `3d`). The owner-tagger answers with product-owned tags
//! nobody on the users' role may write:
//! - one guest slot per guest, `<UserIdTagKey>Guest<n>` = `<role-id>:<guest>` (the owner's role
//!   id), which the end-user policy and the guards compare with `${aws:userid}`;
//! - `<UserIdTagKey>SharedUntil` = `<RFC 3339 time>;<owner's user id>`: when the share ends, and
//!   whose share it is (a share never survives a change of owner).
//!
//! Everything here is pure: the tags in, the tags to write and remove out. Nothing in an event
//! is trusted; the plan is made from the instance's own tags and the clock.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use crate::domain::ids::{ResolvedRole, RoleId, UserId};
use crate::domain::reason::{Reason, ReasonCode};
use crate::domain::session_name::SessionName;

/// The most guest slots a deployment may have: the guards list every slot key, in every policy
/// that names them, and each slot is one more Allow statement.
pub const MAX_SLOTS: usize = 5;

/// The sharing settings of a deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRules {
    /// `SHARING` (template `Sharing`): when off, requests are refused and every share is ended.
    pub enabled: bool,
    /// The owner's request tags (`SHARE_WITH_TAG_KEY`, `SHARE_FOR_TAG_KEY`).
    pub share_with_key: String,
    pub share_for_key: String,
    /// The product's user-id tag key; the slot and expiry keys are named after it.
    pub user_id_key: String,
    /// `GUEST_SLOTS` (1 to `MAX_SLOTS`).
    pub slots: usize,
    /// `SHARE_DEFAULT_DURATION`, used when there is no `ShareFor`; `SHARE_MAX_DURATION`.
    pub default_duration: ShareDuration,
    pub max_duration: ShareDuration,
    /// The sharing policy's name (`SHARING_POLICY_NAME`, template `SharingPolicyName`), for the
    /// doctor: its guards are the product's own.
    pub policy_name: String,
}

impl ShareRules {
    /// The key of guest slot `n` (1-based): `<UserIdTagKey>Guest<n>`.
    pub fn slot_key(&self, n: usize) -> String {
        format!("{}Guest{n}", self.user_id_key)
    }

    /// Every slot key of the deployment, in order.
    pub fn slot_keys(&self) -> Vec<String> {
        (1..=self.slots).map(|n| self.slot_key(n)).collect()
    }

    /// Every slot key any deployment may have (`MAX_SLOTS`): those beyond `slots` (left by a
    /// deployment with more) are removed, never honoured.
    pub fn possible_slot_keys(&self) -> Vec<String> {
        (1..=MAX_SLOTS).map(|n| self.slot_key(n)).collect()
    }

    /// `<UserIdTagKey>SharedUntil`.
    pub fn until_key(&self) -> String {
        format!("{}SharedUntil", self.user_id_key)
    }

    /// Every key the product writes for sharing, in any deployment: the slots and the expiry.
    pub fn product_keys(&self) -> Vec<String> {
        let mut keys = self.possible_slot_keys();
        keys.push(self.until_key());
        keys
    }
}

/// A share's length, in whole minutes: `90m`, `8h`, `3d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ShareDuration {
    minutes: u32,
}

impl ShareDuration {
    /// The longest duration the parser reads (a guard against overflow, far above any maximum).
    const MAX_MINUTES: u32 = 366 * 24 * 60;

    /// Read `<whole number><m|h|d>`, at least one minute.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let unit = text.chars().last().ok_or("the duration is empty")?;
        let per_unit = match unit {
            'm' => 1,
            'h' => 60,
            'd' => 24 * 60,
            _ => {
                return Err(format!(
                    "{text:?} is not a duration: a whole number followed by m, h or d (90m, 8h, 3d)"
                ))
            }
        };
        let number = &text[..text.len() - 1];
        if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit()) || number.len() > 6 {
            return Err(format!(
                "{text:?} is not a duration: a whole number followed by m, h or d (90m, 8h, 3d)"
            ));
        }
        let count: u32 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration"))?;
        let minutes = count.saturating_mul(per_unit);
        if minutes == 0 {
            return Err(format!("{text:?} is shorter than one minute"));
        }
        if minutes > Self::MAX_MINUTES {
            return Err(format!("{text:?} is longer than a year"));
        }
        Ok(Self { minutes })
    }

    pub fn minutes(self) -> u32 {
        self.minutes
    }

    fn as_chrono(self) -> Duration {
        Duration::minutes(i64::from(self.minutes))
    }
}

impl fmt::Display for ShareDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.minutes;
        if m.is_multiple_of(24 * 60) {
            write!(f, "{}d", m / (24 * 60))
        } else if m.is_multiple_of(60) {
            write!(f, "{}h", m / 60)
        } else {
            write!(f, "{m}m")
        }
    }
}

/// A valid request: the guests, in the order the owner named them, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareRequest {
    pub guests: Vec<SessionName>,
    pub duration: ShareDuration,
}

fn refused(text: impl Into<String>) -> Reason {
    Reason::new(ReasonCode::ShareRefused, text)
}

/// Read the owner's request from the instance's tags: `None` when there is no `ShareWith` tag.
pub fn read_request(
    tags: &BTreeMap<String, String>,
    owner: &UserId,
    rules: &ShareRules,
) -> Option<Result<ShareRequest, Reason>> {
    let with = tags.get(&rules.share_with_key)?;
    Some(parse_request(
        with,
        tags.get(&rules.share_for_key),
        owner,
        rules,
    ))
}

fn parse_request(
    with: &str,
    share_for: Option<&String>,
    owner: &UserId,
    rules: &ShareRules,
) -> Result<ShareRequest, Reason> {
    let (with_key, for_key) = (&rules.share_with_key, &rules.share_for_key);
    let mut guests: Vec<SessionName> = Vec::new();
    for name in with.split_whitespace() {
        if name.contains(',') {
            return Err(refused(format!(
                "{with_key} names {name:?}: separate usernames with spaces, not commas"
            )));
        }
        let guest = SessionName::parse(name)
            .map_err(|e| refused(format!("{with_key} names {name:?}: {e}")))?;
        if guest == *owner.user() {
            return Err(refused(format!(
                "{with_key} names the owner, {guest}, who needs no share"
            )));
        }
        if !guests.contains(&guest) {
            guests.push(guest);
        }
    }
    if guests.is_empty() {
        return Err(refused(format!(
            "{with_key} names nobody: usernames separated by spaces"
        )));
    }
    if guests.len() > rules.slots {
        return Err(refused(format!(
            "{with_key} names {} users; an instance can be shared with at most {}",
            guests.len(),
            rules.slots
        )));
    }
    let duration = match share_for {
        None => rules.default_duration,
        Some(text) => ShareDuration::parse(text).map_err(|e| refused(format!("{for_key}: {e}")))?,
    };
    if duration > rules.max_duration {
        return Err(refused(format!(
            "{for_key}={duration} is longer than the maximum, {}",
            rules.max_duration
        )));
    }
    Ok(ShareRequest { guests, duration })
}

/// Why a share ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// Its time ran out.
    Expired,
    /// The owner deleted `ShareWith`.
    Withdrawn,
    /// The instance has another owner, or none, since the share was made.
    OwnerChanged,
    /// The deployment has sharing off.
    SharingOff,
}

impl EndReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Withdrawn => "withdrawn by the owner",
            Self::OwnerChanged => "the instance's owner changed",
            Self::SharingOff => "sharing is off in this deployment",
        }
    }
}

/// What the owner-tagger does about one instance's share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareOutcome {
    /// Nothing to do.
    Unchanged,
    /// The guests' slots and the expiry, as written.
    Shared {
        guests: Vec<UserId>,
        until: DateTime<Utc>,
    },
    /// The share is over: the slots, the expiry and the request tags are removed. `guests` are
    /// those who held a slot (their open sessions on the instance are to end).
    Ended { why: EndReason, guests: Vec<String> },
    /// The request cannot be honoured; nothing changes.
    Refused(Reason),
}

/// The tags to write and to remove on one instance, and what it amounts to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharePlan {
    pub put: BTreeMap<String, String>,
    pub remove: Vec<String>,
    pub outcome: ShareOutcome,
    /// Case variants of the product's sharing keys, among `remove` (tampering).
    pub tampered: Vec<String>,
}

impl SharePlan {
    fn unchanged() -> Self {
        Self {
            put: BTreeMap::new(),
            remove: Vec::new(),
            outcome: ShareOutcome::Unchanged,
            tampered: Vec::new(),
        }
    }

    fn refused(reason: Reason) -> Self {
        Self {
            outcome: ShareOutcome::Refused(reason),
            ..Self::unchanged()
        }
    }
}

/// What made the owner-tagger look at the instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The owner wrote or deleted `ShareWith` or `ShareFor` at `since` (the event's time): a
    /// share runs from then. A redelivered event therefore renews nothing, and one delivered
    /// after its share would have ended ends it.
    Request { since: DateTime<Utc> },
    /// The sweep or the expiry schedule: converge, and end what has expired. A request whose
    /// event was lost runs from now.
    Converge,
}

/// The expiry tag's value: `<RFC 3339>;<owner's user id>`.
pub fn until_value(until: DateTime<Utc>, owner: &UserId) -> String {
    format!(
        "{};{owner}",
        until.to_rfc3339_opts(SecondsFormat::Secs, true)
    )
}

/// Whether `user` holds one of the deployment's guest slots on an instance with these tags: the
/// slot's key, and when the share ends (`None` when the expiry is missing or unreadable).
pub fn guest_slot(
    tags: &BTreeMap<String, String>,
    user: &UserId,
    rules: &ShareRules,
) -> Option<(String, Option<DateTime<Utc>>)> {
    let slot = rules
        .slot_keys()
        .into_iter()
        .find(|key| tags.get(key) == Some(&user.to_string()))?;
    let until = tags
        .get(&rules.until_key())
        .and_then(|value| read_until(value))
        .map(|(time, _)| time);
    Some((slot, until))
}

/// The user id of a session of the users' role, from the session's owner
/// (`arn:<partition>:sts::<account>:assumed-role/<role name>/<session name>`); `None` for any
/// other caller (an operator's session is never a guest's).
pub fn session_user(owner: &str, role: &ResolvedRole) -> Option<UserId> {
    let (_, resource) = owner.split_once(":assumed-role/")?;
    let (role_name, session) = resource.split_once('/')?;
    if role_name != role.name || session.contains('/') {
        return None;
    }
    let user = SessionName::parse(session).ok()?;
    Some(UserId::new(role.id.clone(), user))
}

/// Read the expiry tag: when, and whose share. `None` when it cannot be read.
pub fn read_until(value: &str) -> Option<(DateTime<Utc>, &str)> {
    let (time, owner) = value.split_once(';')?;
    let time = DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc);
    Some((time, owner))
}

/// Plan one instance's share from its own tags. `role` is the users' role's current id; the
/// owner is the instance's user-id tag, read for that role. Case variants of the product's
/// sharing keys are removed whatever else is planned: IAM reads tag keys in any case.
pub fn plan_share(
    tags: &BTreeMap<String, String>,
    role: &RoleId,
    now: DateTime<Utc>,
    trigger: Trigger,
    rules: &ShareRules,
) -> SharePlan {
    let product = rules.product_keys();
    let variants: Vec<String> = tags
        .keys()
        .filter(|key| {
            product
                .iter()
                .any(|p| p != *key && p.eq_ignore_ascii_case(key))
        })
        .cloned()
        .collect();
    let mut plan = plan_request(tags, role, now, trigger, rules);
    plan.remove.extend(variants.iter().cloned());
    plan.tampered = variants;
    plan
}

fn plan_request(
    tags: &BTreeMap<String, String>,
    role: &RoleId,
    now: DateTime<Utc>,
    trigger: Trigger,
    rules: &ShareRules,
) -> SharePlan {
    let end = |why| end_share(tags, rules, why);
    let Some(owner) = tags
        .get(&rules.user_id_key)
        .and_then(|value| UserId::parse_for(value, role).ok())
    else {
        return end(EndReason::OwnerChanged);
    };
    if !rules.enabled {
        let plan = end(EndReason::SharingOff);
        if plan.outcome == ShareOutcome::Unchanged && tags.contains_key(&rules.share_with_key) {
            return SharePlan::refused(refused(format!(
                "{} is set, but sharing is off in this deployment (template Sharing=false)",
                rules.share_with_key
            )));
        }
        return plan;
    }
    let recorded = tags.get(&rules.until_key());
    let current = recorded.and_then(|v| read_until(v));
    if current.is_some_and(|(_, whose)| whose != owner.to_string()) {
        return end(EndReason::OwnerChanged);
    }
    let request = match read_request(tags, &owner, rules) {
        None => return end(EndReason::Withdrawn),
        Some(Err(reason)) => return SharePlan::refused(reason),
        Some(Ok(request)) => request,
    };
    let until = match (trigger, current) {
        (Trigger::Request { since }, _) => since.min(now) + request.duration.as_chrono(),
        (Trigger::Converge, Some((until, _))) => until,
        // A share whose expiry was never recorded (its request's event was lost).
        (Trigger::Converge, None) => now + request.duration.as_chrono(),
    };
    if until <= now {
        return end(EndReason::Expired);
    }
    let guests: Vec<UserId> = request
        .guests
        .iter()
        .map(|guest| UserId::new(role.clone(), guest.clone()))
        .collect();
    let (mut put, remove) = slots(tags, &guests, rules);
    let until_text = until_value(until, &owner);
    if recorded != Some(&until_text) {
        put.insert(rules.until_key(), until_text);
    }
    let outcome = if put.is_empty() && remove.is_empty() {
        ShareOutcome::Unchanged
    } else {
        ShareOutcome::Shared { guests, until }
    };
    SharePlan {
        put,
        remove,
        outcome,
        tampered: Vec::new(),
    }
}

/// The slot tags to write and to remove so that slot `n` holds guest `n` and no slot more.
fn slots(
    tags: &BTreeMap<String, String>,
    guests: &[UserId],
    rules: &ShareRules,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut put = BTreeMap::new();
    let mut remove = Vec::new();
    for (n, key) in rules.possible_slot_keys().into_iter().enumerate() {
        match (guests.get(n), tags.get(&key)) {
            (Some(guest), current) if current != Some(&guest.to_string()) => {
                put.insert(key, guest.to_string());
            }
            (None, Some(_)) => remove.push(key),
            _ => {}
        }
    }
    (put, remove)
}

/// A share ends by removing its slots and its expiry, and then the request tags too, so that
/// the owner sees it is over. Request tags with no share behind them are left alone.
fn end_share(tags: &BTreeMap<String, String>, rules: &ShareRules, why: EndReason) -> SharePlan {
    let held: Vec<(String, &String)> = rules
        .possible_slot_keys()
        .into_iter()
        .filter_map(|key| tags.get(&key).map(|v| (key, v)))
        .collect();
    let mut remove: Vec<String> = held.iter().map(|(k, _)| k.clone()).collect();
    let until_key = rules.until_key();
    if tags.contains_key(&until_key) {
        remove.push(until_key);
    }
    if remove.is_empty() {
        return SharePlan::unchanged();
    }
    for key in [&rules.share_with_key, &rules.share_for_key] {
        if tags.contains_key(key) {
            remove.push(key.clone());
        }
    }
    SharePlan {
        put: BTreeMap::new(),
        remove,
        outcome: ShareOutcome::Ended {
            why,
            guests: held.into_iter().map(|(_, v)| v.clone()).collect(),
        },
        tampered: Vec::new(),
    }
}

#[cfg(test)]
mod tests;
