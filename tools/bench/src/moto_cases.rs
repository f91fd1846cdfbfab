//! The per-event and reconcile benchmark against moto on loopback.

use std::path::{Path, PathBuf};

use serde_json::Value;
use shared::aws::Clients;
use shared::config::WriteMode;
use shared::domain::ids::ResolvedRole;
use shared::edge::replay_line::ReplayLine;
use testkit::fault_proxy::{every_nth, Fault, FaultProxy};
use testkit::{create_role, rewrite, run_instances, sibling_binary, Moto, DEMO_ROLE};

use crate::measure::{deployed_and_passed_through, measure, measure_async, row, write};

/// The per-event and reconcile benchmark against moto.
#[expect(
    clippy::too_many_lines,
    reason = "the benchmark's cases in the order the report prints them"
)]
pub async fn run(users: usize, per_user: usize) -> Result<(), String> {
    let replay = sibling_binary("replay")?;
    let moto = Moto::start().map_err(|e| e.to_string())?;
    let admin = Clients::new(&moto.sdk_config().await);
    let role_id = create_role(&admin.iam, DEMO_ROLE).await;
    let dir = std::env::temp_dir().join(format!("ssm-session-owner-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let env = |extra: &[(&str, &str)]| {
        let mut all: Vec<(String, String)> = moto
            .product_env(DEMO_ROLE)
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        all.push(("SESSION_ROLE_ID".into(), role_id.clone()));
        all.extend(deployed_and_passed_through());
        all.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        all
    };
    let sample = |name: &str| {
        std::fs::read_to_string(testkit::events_dir().join(name)).map_err(|e| e.to_string())
    };

    println!(
        "ssm-session-owner benchmark: moto on {} ({users} users x {per_user} instances for the reconcile; store {})\n",
        moto.endpoint(),
        std::env::var("POLICY_STORE").unwrap_or_else(|_| "managed".into())
    );
    let mut notes: Vec<String> = Vec::new();
    println!("| case | AWS calls | calls by operation | outcome | process wall time | peak RSS |");
    println!("|---|---|---|---|---|---|");

    // RunInstances, owner tag in the event: two portal instances.
    let ids = run_instances(&admin.ec2, 2, &[("CreatedBy", "tim.malone")]).await;
    let event = write(
        &dir,
        "in-event.json",
        rewrite(
            &sample("run-instances-created-by.json")?,
            &[
                ("i-0a1b2c3d4e5f60001", &ids[0]),
                ("i-0a1b2c3d4e5f60002", &ids[1]),
            ],
        ),
    )?;
    row(
        "RunInstances, owner tag in the event (2 instances)",
        &measure(&replay, std::slice::from_ref(&event), &env(&[]))?,
    );
    row(
        "RunInstances, same event redelivered",
        &measure(&replay, &[event], &env(&[]))?,
    );

    // RunInstances, owner tag only in EC2.
    let ids = run_instances(&admin.ec2, 1, &[("CreatedBy", "ada.lovelace")]).await;
    let event = write(
        &dir,
        "not-in-event.json",
        rewrite(
            &sample("run-instances-owner-not-in-event.json")?,
            &[("i-0a1b2c3d4e5f60003", &ids[0])],
        ),
    )?;
    row(
        "RunInstances, owner tag not in the event",
        &measure(&replay, std::slice::from_ref(&event), &env(&[]))?,
    );
    row(
        "RunInstances, same event redelivered",
        &measure(&replay, &[event], &env(&[]))?,
    );

    // Through a proxy that throttles every other request: the calls show the SDK's retries.
    let proxy = FaultProxy::start(moto.port(), every_nth(2, Fault::Throttle))
        .await
        .map_err(|e| e.to_string())?;
    let ids = run_instances(&admin.ec2, 1, &[("CreatedBy", "ada.lovelace")]).await;
    let event = write(
        &dir,
        "throttled.json",
        rewrite(
            &sample("run-instances-owner-not-in-event.json")?,
            &[("i-0a1b2c3d4e5f60003", &ids[0])],
        ),
    )?;
    let mut throttled_env = env(&[]);
    throttled_env.retain(|(k, _)| k != "AWS_ENDPOINT_URL");
    throttled_env.push(("AWS_ENDPOINT_URL".into(), proxy.endpoint()));
    let measured = measure_async(&replay, vec![event], throttled_env).await?;
    row(
        "RunInstances, owner not in event, every 2nd request throttled",
        &measured,
    );
    drop(proxy);

    // Without SESSION_ROLE_ID the process resolves the role id once.
    let ids = run_instances(&admin.ec2, 1, &[("CreatedBy", "tim.malone")]).await;
    let event = write(
        &dir,
        "cold.json",
        rewrite(
            &sample("run-instances-created-by.json")?,
            &[
                ("i-0a1b2c3d4e5f60001", &ids[0]),
                ("i-0a1b2c3d4e5f60002", &ids[0]),
            ],
        ),
    )?;
    let mut cold_env = env(&[]);
    cold_env.retain(|(k, _)| k != "SESSION_ROLE_ID");
    row(
        "RunInstances, owner in event, SESSION_ROLE_ID unset (cold start)",
        &measure(&replay, &[event], &cold_env)?,
    );

    // Reconcile: users x per_user live instances tagged AwsUserId.
    for u in 0..users {
        let name = format!("researcher{u:04}");
        let value = format!("{role_id}:{name}");
        run_instances(
            &admin.ec2,
            per_user as i32,
            &[("CreatedBy", &name), ("AwsUserId", &value)],
        )
        .await;
    }
    let reconcile = write(
        &dir,
        "reconcile.json",
        rewrite(&sample("scheduled-reconcile.json")?, &[]),
    )?;
    let label = format!(
        "reconcile {} instances / {users} users, from empty",
        users * per_user
    );
    // The schedule goes to both functions; the reconcile and the sweep are measured apart.
    let only = |function: &str| {
        vec![
            PathBuf::from("--function"),
            PathBuf::from(function),
            reconcile.clone(),
        ]
    };
    let first = measure(&replay, &only("session-policy"), &env(&[]))?;
    row(&label, &first);
    notes.extend(
        first
            .reasons
            .iter()
            .map(|r| format!("first reconcile: {r}")),
    );
    let label = format!(
        "reconcile {} instances / {users} users, nothing changed",
        users * per_user
    );
    let second = measure(&replay, &only("session-policy"), &env(&[]))?;
    row(&label, &second);
    // The seeded instances carry their owner, their volumes do not: the first sweep owns the
    // volumes (one CreateTags per owner), the second finds nothing to do.
    row(
        "tag sweep of every live instance, first (owns the volumes)",
        &measure(&replay, &only("owner-tagger"), &env(&[]))?,
    );
    row(
        "tag sweep of every live instance, converged",
        &measure(&replay, &only("owner-tagger"), &env(&[]))?,
    );
    notes.extend(
        second
            .reasons
            .iter()
            .map(|r| format!("second reconcile: {r}")),
    );

    // Grants and revokes with 1, 10 and 25 full shards in use (per-user session rights), in one
    // covered region, then with every region moto lists covered (the default configuration).
    println!("\n| shards in use | regions covered | cold grant (first event of a process) | warm revoke | warm grant | calls by operation (warm revoke) |");
    println!("|---|---|---|---|---|---|");
    for (shards, every_region) in [(1, false), (10, false), (25, false), (10, true)] {
        let lines = grants_and_revokes(&moto, &admin, &replay, &dir, shards, every_region).await?;
        let [cold, revoke, grant] = &lines[..] else {
            return Err(format!("expected 3 lines, got {}", lines.len()));
        };
        for line in &lines {
            if line.outcome != "changed" {
                return Err(format!(
                    "{shards} shards: {} was {}: {}",
                    line.file, line.outcome, line.reason
                ));
            }
        }
        let by_op: Vec<String> = revoke
            .calls
            .iter()
            .map(|(op, n)| format!("{op} {n}"))
            .collect();
        let regions = revoke
            .calls
            .get("ec2:DescribeInstances")
            .map_or(0, |reads| reads.saturating_sub(1));
        println!(
            "| {shards} | {regions} | {} | {} | {} | {} |",
            cold.total_calls(),
            revoke.total_calls(),
            grant.total_calls(),
            by_op.join(", ")
        );
    }

    let _ = std::fs::remove_dir_all(&dir);
    for note in notes {
        println!("\n{note}");
    }
    println!("\nCalls are HTTP requests counted by an SDK interceptor in the replay process (retries included).");
    Ok(())
}

/// Seed a role with `shards` full shards (one place free, and one statement for a user whose
/// instance is terminated), then replay in one process: a grant (the process's cold start), the
/// terminated user's revoke, and a grant into the freed place. Returns replay's three lines.
/// `every_region`: cover every region moto lists (the default), not only the instances' own.
#[expect(
    clippy::too_many_lines,
    reason = "grants and revokes measured in one run, each with its call counts"
)]
async fn grants_and_revokes(
    moto: &Moto,
    admin: &Clients,
    replay: &Path,
    dir: &Path,
    shards: usize,
    every_region: bool,
) -> Result<Vec<ReplayLine>, String> {
    use shared::app::managed_store::ManagedStore;
    use shared::domain::ids::RoleId;
    use shared::domain::session_name::SessionName;
    use shared::domain::shard_packing::users_per_shard;
    use shared::domain::statements::Scope;
    use shared::ports::PolicyStore;

    let case = format!("{shards}{}", if every_region { "all" } else { "" });
    let role = format!("BenchRole{case}");
    let prefix = format!("bench{case}-");
    let role_id = create_role(&admin.iam, &role).await;
    let parsed = RoleId::parse(&role_id)?;
    let value = |name: &str| format!("{role_id}:{name}");
    // Statements of 8-character names fill the shards: all but one place are taken.
    let per_shard = users_per_shard(
        &parsed,
        &SessionName::parse("gone0000").map_err(|e| e.to_string())?,
    );
    let mut names: Vec<String> = vec!["gone0000".into()];
    names.extend((1..per_shard * shards - 1).map(|i| format!("user{i:04}")));
    let seeded = names
        .iter()
        .map(|n| SessionName::parse(n).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let resolved = ResolvedRole {
        name: role.clone(),
        id: parsed,
    };
    ManagedStore::new(admin.iam.clone(), &prefix, 25, 25)
        .converge(&resolved, &Scope::All, &seeded, WriteMode::Apply)
        .await
        .map_err(|e| e.to_string())?;
    let attached = admin
        .iam
        .list_attached_role_policies()
        .role_name(&role)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .attached_policies
        .unwrap_or_default()
        .len();
    if attached != shards {
        return Err(format!("seeded {shards} shards, the role has {attached}"));
    }
    let gone = run_instances(&admin.ec2, 1, &[("AwsUserId", &value("gone0000"))]).await;
    admin
        .ec2
        .terminate_instances()
        .instance_ids(&gone[0])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let first = run_instances(&admin.ec2, 1, &[("AwsUserId", &value("newbie01"))]).await;
    let second = run_instances(&admin.ec2, 1, &[("AwsUserId", &value("newbie02"))]).await;
    let sample = |name: &str| {
        std::fs::read_to_string(testkit::events_dir().join(name)).map_err(|e| e.to_string())
    };
    let tag = |instance: &str, name: &str| -> Result<Value, String> {
        Ok(rewrite(
            &sample("tag-change-user-id-added.json")?,
            &[
                ("i-0a1b2c3d4e5f60001", instance),
                ("AROAEXAMPLEROLEID1234:tim.malone", &value(name)),
            ],
        ))
    };
    let files = vec![
        write(
            dir,
            &format!("grant-{shards}-a.json"),
            tag(&first[0], "newbie01")?,
        )?,
        write(
            dir,
            &format!("revoke-{shards}.json"),
            rewrite(
                &sample("state-change-terminated.json")?,
                &[("i-0a1b2c3d4e5f60006", &gone[0])],
            ),
        )?,
        write(
            dir,
            &format!("grant-{shards}-b.json"),
            tag(&second[0], "newbie02")?,
        )?,
    ];
    let mut env: Vec<(String, String)> = moto
        .product_env(&role)
        .into_iter()
        .filter(|(k, _)| !(every_region && *k == "REGIONS"))
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.extend(deployed_and_passed_through());
    for (k, v) in [
        ("SESSION_ROLE_ID", role_id.as_str()),
        ("POLICY_NAME_PREFIX", prefix.as_str()),
        ("MAX_POLICY_SHARDS", "25"),
        ("ROLE_MANAGED_POLICY_LIMIT", "25"),
    ] {
        env.push((k.into(), v.into()));
    }
    Ok(measure(replay, &files, &env)?.lines)
}
