//! `policies`: print, one per line, every kind of IAM policy document the product writes (an
//! inline per-user policy, and a full shard of the managed store), for sample users whose names
//! probe the edges (shortest, longest, every allowed punctuation character). CI pipes each line
//! into `parliament`.

use std::process::ExitCode;

use shared::session_name::SessionName;
use shared::session_policy::inline_document;
use shared::session_policy::Scope;
use shared::shard_plan::{plan_shards, shard_document};

const ROLE_ID: &str = "AROAEXAMPLEROLEID1234";

fn main() -> ExitCode {
    let names = ["ab", "tim.malone", "a+b=c,d.e@f_g-h", &"x".repeat(64)];
    let mut users = Vec::new();
    for name in names {
        match SessionName::parse(name) {
            Ok(user) => users.push(user),
            Err(err) => {
                eprintln!("policies: {name:?}: {err}");
                return ExitCode::FAILURE;
            }
        }
    }
    for user in &users {
        println!("{}", inline_document(ROLE_ID, user));
    }
    // A shard as full as the packer makes it.
    let many: Vec<SessionName> = (0..40)
        .filter_map(|i| SessionName::parse(&format!("user{i:04}")).ok())
        .collect();
    let plan = plan_shards(
        &[],
        &Scope::All,
        &many.iter().cloned().collect(),
        ROLE_ID,
        1,
    );
    for members in plan.writes.values() {
        println!("{}", shard_document(ROLE_ID, members));
    }
    println!("{}", shard_document(ROLE_ID, &users));
    ExitCode::SUCCESS
}
