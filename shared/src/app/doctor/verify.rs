//! `doctor --verify`: the acceptance test for a real account, run after a deploy. It asks IAM's
//! own policy simulator, for synthetic users chosen to collide, whether each may start a session
//! on the others' instances, end or resume the others' sessions, or write the ownership tags in
//! any spelling. The simulator needs no real users, instances or sessions, so nothing is
//! written; in per-user mode the product's own statement for each synthetic user is passed as
//! an extra policy (`PolicyInputList`), exactly as it would be written.

use std::fmt;

use serde::Serialize;

use super::context::role_facts;
use crate::config::{Config, SessionRights};
use crate::domain::evaluation::{Decision, Request};
use crate::domain::ids::UserId;
use crate::domain::session_iam::{
    on_session, RESUME_SESSION, START_SESSION, TERMINATE_SESSION, USER_ID_KEY,
};
use crate::domain::session_name::SessionName;
use crate::domain::statements::inline_document;
use crate::error::Error;
use crate::ports::{PolicySimulator, RoleDirectory, RoleEvaluationInputs, Simulation};

/// Prefixes of each other (`tim`, `timm`, `tim.malone`), a name that differs only in letter case
/// (`Tim`), and one that looks like `tim`'s session ids (`tim-0ab1cd9d8`).
pub const SYNTHETIC_USERS: [&str; 5] = ["tim", "Tim", "timm", "tim.malone", "tim-0ab1cd9d8"];
/// Both session-id suffix shapes: 17 hex characters (older) and 26 of `[a-z0-9]` (today).
const SESSION_SUFFIXES: [&str; 2] = ["0ab1cd9d876e54321", "5cg7niur55cxqrt5thkensh7ki"];
const TAG_ACTIONS: [&str; 2] = ["ec2:CreateTags", "ec2:DeleteTags"];

/// One question and IAM's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cell {
    pub caller: String,
    /// Whose instance or session; None for a tag write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub action: String,
    pub resource: String,
    /// The tag key written, for a tag write.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tag_key: Option<String>,
    pub expected: Decision,
    pub decision: Decision,
    pub ok: bool,
}

/// The whole matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Matrix {
    pub role: String,
    pub role_id: String,
    pub session_rights: &'static str,
    pub region: String,
    pub users: Vec<String>,
    pub cells: Vec<Cell>,
    pub wrong: usize,
}

/// The spellings of both ownership keys to try writing: as configured, lower and upper case.
fn spellings(config: &Config) -> Vec<String> {
    let mut keys = Vec::new();
    for key in [
        &config.ownership.user_id_tag_key,
        &config.ownership.owner_tag_key,
    ] {
        for spelling in [key.clone(), key.to_lowercase(), key.to_uppercase()] {
            if !keys.contains(&spelling) {
                keys.push(spelling);
            }
        }
    }
    keys
}

/// Ask IAM's simulator every question of the matrix. Reads only.
#[expect(
    clippy::too_many_lines,
    reason = "the verify matrix's rows are listed inline, one per judged case"
)]
pub async fn verify<I>(config: &Config, region: &str, iam: &I) -> Result<Matrix, Error>
where
    I: RoleDirectory + RoleEvaluationInputs + PolicySimulator + Sync,
{
    let facts = role_facts(config, iam).await?;
    let users: Vec<SessionName> = SYNTHETIC_USERS
        .iter()
        .map(|u| SessionName::parse(u))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Unsupported {
            message: format!("a synthetic user is not a session name: {e}"),
        })?;
    let extra_policies: Vec<String> = match config.rights.session_rights {
        SessionRights::PerUser => users
            .iter()
            .map(|u| inline_document(&facts.role.id, u))
            .collect(),
        SessionRights::Static => Vec::new(),
    };
    let uid = |u: &SessionName| UserId::new(facts.role.id.clone(), u.clone()).to_string();
    let arns = facts.arns(region);
    // Synthetic instances, one per owner.
    let instance = |index: usize| arns.instance_named(&format!("i-0d0c7000000000{index:03}"));
    let mut questions = Vec::new();
    for (index, owner) in users.iter().enumerate() {
        for caller in &users {
            questions.push(Question {
                actions: &[START_SESSION],
                request: Request::new(START_SESSION, instance(index))
                    .with(USER_ID_KEY, uid(caller))
                    .with(
                        format!("ssm:resourceTag/{}", config.ownership.user_id_tag_key),
                        uid(owner),
                    ),
                caller,
                owner: Some(owner),
                tag_key: None,
            });
            for suffix in SESSION_SUFFIXES {
                questions.push(Question {
                    actions: &[TERMINATE_SESSION, RESUME_SESSION],
                    request: on_session(
                        TERMINATE_SESSION,
                        &arns.session(owner.as_str(), suffix),
                        &uid(caller),
                        Some(&uid(owner)),
                    ),
                    caller,
                    owner: Some(owner),
                    tag_key: None,
                });
            }
        }
    }
    for (index, caller) in users.iter().enumerate() {
        for key in spellings(config) {
            questions.push(Question {
                actions: &TAG_ACTIONS,
                request: Request::new(TAG_ACTIONS[0], instance(index))
                    .with(USER_ID_KEY, uid(caller))
                    .with_list("aws:TagKeys", &[key.as_str()])
                    .with(format!("aws:RequestTag/{key}"), uid(caller)),
                caller,
                owner: None,
                tag_key: Some(key),
            });
        }
    }
    let mut cells = Vec::new();
    for question in questions {
        // Only a user's own instance and sessions may be reached; nobody writes ownership tags.
        let expected = if question.owner == Some(question.caller) {
            Decision::Allowed
        } else {
            Decision::ImplicitDeny
        };
        let simulation = Simulation {
            role_arn: facts.arn.clone(),
            actions: question.actions.iter().map(|a| a.to_string()).collect(),
            request: question.request,
            extra_policies: extra_policies.clone(),
        };
        for answer in iam.simulate(&simulation).await? {
            cells.push(Cell {
                caller: question.caller.to_string(),
                owner: question.owner.map(|o| o.to_string()),
                action: answer.action,
                resource: simulation.request.resource.clone(),
                tag_key: question.tag_key.clone(),
                ok: answer.decision.is_allowed() == expected.is_allowed(),
                expected,
                decision: answer.decision,
            });
        }
    }
    Ok(Matrix {
        role: facts.role.name.clone(),
        role_id: facts.role.id.to_string(),
        session_rights: match config.rights.session_rights {
            SessionRights::PerUser => "per-user",
            SessionRights::Static => "static",
        },
        region: region.to_owned(),
        users: users.iter().map(|u| u.to_string()).collect(),
        wrong: cells.iter().filter(|c| !c.ok).count(),
        cells,
    })
}

/// One question of the matrix, before it is asked.
struct Question<'a> {
    actions: &'static [&'static str],
    request: Request,
    caller: &'a SessionName,
    /// Whose instance or session; None for a tag write.
    owner: Option<&'a SessionName>,
    tag_key: Option<String>,
}

impl fmt::Display for Matrix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "IAM's policy simulator on {} ({}), {} session rights, {}",
            self.role, self.role_id, self.session_rights, self.region
        )?;
        writeln!(
            f,
            "Each cell: StartSession on the owner's instance, TerminateSession and ResumeSession on the owner's sessions (17- and 26-character ids). Own cells must be allowed, all others denied."
        )?;
        let width = self
            .users
            .iter()
            .map(String::len)
            .max()
            .unwrap_or(0)
            .max(14)
            + 2;
        let mut header = format!("{:<width$}", "caller \\ owner");
        for owner in &self.users {
            header.push_str(&format!("{owner:<width$}"));
        }
        writeln!(f, "{}", header.trim_end())?;
        for caller in &self.users {
            let mut row = format!("{caller:<width$}");
            for owner in &self.users {
                let ok = self
                    .cells
                    .iter()
                    .filter(|c| &c.caller == caller && c.owner.as_ref() == Some(owner))
                    .all(|c| c.ok);
                let text = match (caller == owner, ok) {
                    (true, true) => "allow ✓",
                    (false, true) => "deny ✓",
                    (_, false) => "WRONG ✗",
                };
                row.push_str(&format!("{text:<width$}"));
            }
            writeln!(f, "{}", row.trim_end())?;
        }
        let tag_cells: Vec<&Cell> = self.cells.iter().filter(|c| c.tag_key.is_some()).collect();
        let mut keys: Vec<&str> = Vec::new();
        for key in tag_cells.iter().filter_map(|c| c.tag_key.as_deref()) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let denied = tag_cells.iter().filter(|c| c.ok).count();
        writeln!(
            f,
            "ownership tags: CreateTags/DeleteTags of {} by every caller: {denied} of {} denied {}",
            keys.join(", "),
            tag_cells.len(),
            if denied == tag_cells.len() {
                "✓"
            } else {
                "✗"
            }
        )?;
        for cell in self.cells.iter().filter(|c| !c.ok) {
            writeln!(
                f,
                "✗ {} {} on {}{}: IAM says {}, expected {}",
                cell.caller,
                cell.action,
                cell.resource,
                cell.tag_key
                    .as_ref()
                    .map(|k| format!(" (tag {k})"))
                    .unwrap_or_default(),
                cell.decision.as_str(),
                cell.expected.as_str()
            )?;
        }
        writeln!(
            f,
            "{} answers, {} wrong: {}",
            self.cells.len(),
            self.wrong,
            if self.wrong == 0 { "passed" } else { "FAILED" }
        )
    }
}
