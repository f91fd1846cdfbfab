//! `bench --scale`: the real `replay` binary against the stand-in endpoint ([`crate::standin`])
//! at every fleet size, user count and region count asked for. For each size it measures, with
//! no latency on the endpoint: the first reconcile (every shard written to moto's IAM), the
//! converged reconcile and the tag sweep; then, with the endpoint waiting `latency` per EC2 call:
//! the converged reconcile, the sweep, a grant and a revoke. It prints one table, the growth
//! between sizes, and writes the plot.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use shared::aws::Clients;
use testkit::{create_role, rewrite, sibling_binary, Moto};

use crate::measure::{deployed_and_passed_through, measure_async, write, Measured};
use crate::plot;
use crate::standin::{Fleet, StandIn, DEFAULT_REGIONS};

pub struct Plan {
    pub fleets: Vec<usize>,
    pub user_counts: Vec<usize>,
    pub region_counts: Vec<usize>,
    pub latency: Duration,
    pub plot: PathBuf,
}

/// One size's measurements.
pub struct Row {
    pub instances: usize,
    pub users: usize,
    pub regions: usize,
    pub first: Measured,
    pub reconcile: Measured,
    pub sweep: Measured,
    pub reconcile_slow: Measured,
    pub sweep_slow: Measured,
    pub grant_slow: Measured,
    pub revoke_slow: Measured,
    /// Users the first reconcile could not fit in the role's policies.
    pub refused: usize,
}

pub async fn run(plan: Plan) -> Result<(), String> {
    let replay = sibling_binary("replay")?;
    let moto = Moto::start().map_err(|e| e.to_string())?;
    let admin = Clients::new(&moto.sdk_config().await);
    let dir = std::env::temp_dir().join(format!("ssm-session-owner-scale-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let latency_ms = plan.latency.as_millis();
    println!(
        "ssm-session-owner scale benchmark: replay against a stand-in EC2 endpoint (pages of 1,000 instances; IAM forwarded to moto on {}), {} CPU(s)\n",
        moto.endpoint(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| instances | users | regions | first reconcile: calls, time, peak RSS | converged reconcile | tag sweep | with {latency_ms} ms per EC2 call: reconcile | sweep | grant (calls) | revoke (calls) | users refused (quota 10) |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    let mut index = 0;
    for &regions in &plan.region_counts {
        for &instances in &plan.fleets {
            for &users in plan.user_counts.iter().filter(|u| **u <= instances) {
                index += 1;
                let row = size(
                    &moto,
                    &admin,
                    &replay,
                    &dir,
                    index,
                    instances,
                    users,
                    regions,
                    plan.latency,
                )
                .await?;
                println!(
                    "| {instances} | {users} | {regions} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    cell(&row.first),
                    cell(&row.reconcile),
                    cell(&row.sweep),
                    cell(&row.reconcile_slow),
                    cell(&row.sweep_slow),
                    timed(&row.grant_slow),
                    timed(&row.revoke_slow),
                    row.refused
                );
                rows.push(row);
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    growth(&rows);
    plot::write(&plan.plot, &rows, latency_ms)
        .map_err(|e| format!("cannot write the plot: {e}"))?;
    println!("\nPlot written to {}.", plan.plot.display());
    println!("Calls are HTTP requests counted in the replay process (retries included); time is the whole process; peak RSS from wait4.");
    Ok(())
}

fn cell(m: &Measured) -> String {
    format!(
        "{} calls, {:.2} s, {:.0} MiB",
        m.total_calls(),
        m.wall.as_secs_f64(),
        m.peak_kib as f64 / 1024.0
    )
}

fn timed(m: &Measured) -> String {
    format!(
        "{}, {:.2} s ({})",
        m.total_calls(),
        m.wall.as_secs_f64(),
        m.by_operation()
    )
}

/// How the converged reconcile and the sweep grow from one fleet size to the next.
fn growth(rows: &[Row]) {
    println!("\nGrowth from one fleet size to the next (same users and regions): instances ×, time ×, peak RSS ×");
    println!("\n| regions | users | instances | reconcile time × | reconcile RSS × | sweep time × | sweep RSS × |");
    println!("|---|---|---|---|---|---|---|");
    for b in rows {
        // The next smaller fleet with the same users and regions.
        let Some(a) = rows
            .iter()
            .filter(|a| a.regions == b.regions && a.users == b.users && a.instances < b.instances)
            .max_by_key(|a| a.instances)
        else {
            continue;
        };
        let ratio = |x: f64, y: f64| if x > 0.0 { y / x } else { f64::NAN };
        let secs = |m: &Measured| m.wall.as_secs_f64();
        let rss = |m: &Measured| m.peak_kib as f64;
        println!(
            "| {} | {} | {} → {} (×{}) | ×{:.1} | ×{:.2} | ×{:.1} | ×{:.2} |",
            b.regions,
            b.users,
            a.instances,
            b.instances,
            b.instances / a.instances.max(1),
            ratio(secs(&a.reconcile), secs(&b.reconcile)),
            ratio(rss(&a.reconcile), rss(&b.reconcile)),
            ratio(secs(&a.sweep), secs(&b.sweep)),
            ratio(rss(&a.sweep), rss(&b.sweep)),
        );
    }
}

#[allow(clippy::too_many_arguments)]
#[expect(
    clippy::too_many_lines,
    reason = "one scale point: seed, sweep, reconcile, measure"
)]
async fn size(
    moto: &Moto,
    admin: &Clients,
    replay: &Path,
    dir: &Path,
    index: usize,
    instances: usize,
    users: usize,
    regions: usize,
    latency: Duration,
) -> Result<Row, String> {
    let role = format!("ScaleRole{index}");
    let role_id = create_role(&admin.iam, &role).await;
    let fleet = Fleet {
        instances,
        users,
        regions,
        role_id: role_id.clone(),
    };
    let standin = StandIn::start(fleet, Duration::ZERO, moto.port())
        .await
        .map_err(|e| e.to_string())?;
    let mut env: Vec<(String, String)> = moto
        .product_env(&role)
        .into_iter()
        // Every region the endpoint reports enabled is covered (the default).
        .filter(|(k, _)| *k != "REGIONS" && *k != "AWS_ENDPOINT_URL")
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    env.extend(deployed_and_passed_through());
    env.extend([
        ("AWS_ENDPOINT_URL".to_owned(), standin.endpoint()),
        ("SESSION_ROLE_ID".to_owned(), role_id.clone()),
        ("POLICY_NAME_PREFIX".to_owned(), format!("scale{index}-")),
    ]);
    let sample = |name: &str| {
        std::fs::read_to_string(testkit::events_dir().join(name)).map_err(|e| e.to_string())
    };
    let reconcile = write(
        dir,
        "reconcile.json",
        rewrite(&sample("scheduled-reconcile.json")?, &[]),
    )?;
    let only = |function: &str| -> Vec<PathBuf> {
        vec!["--function".into(), function.into(), reconcile.clone()]
    };
    // The grant: the user-id tag written on instance `regions - 1`, in the last covered region.
    let region = DEFAULT_REGIONS[regions - 1];
    let owner = Fleet::user_name((regions - 1) % users);
    let grant = write(
        dir,
        "grant.json",
        rewrite(
            &sample("tag-change-user-id-added.json")?,
            &[
                ("us-east-1", region),
                ("i-0a1b2c3d4e5f60001", &format!("i-0{:016x}", regions - 1)),
                (
                    "AROAEXAMPLEROLEID1234:tim.malone",
                    &format!("{role_id}:{owner}"),
                ),
                ("tim.malone", &owner),
            ],
        ),
    )?;
    // The revoke: an instance of user 0 terminated; every covered region is read for another.
    let revoke = write(
        dir,
        "revoke.json",
        rewrite(&sample("state-change-terminated.json")?, &[]),
    )?;
    let run = |files: Vec<PathBuf>| measure_async(replay, files, env.clone());
    let first = run(only("session-policy")).await?;
    let refused = first.lines.iter().map(|l| l.skipped.len()).sum();
    expect(&first, "changed", "the first reconcile")?;
    let reconcile_fast = run(only("session-policy")).await?;
    expect(&reconcile_fast, "unchanged", "the converged reconcile")?;
    let sweep = run(only("owner-tagger")).await?;
    expect(&sweep, "unchanged", "the sweep")?;
    standin
        .latency_ms
        .store(latency.as_millis() as u64, Ordering::Relaxed);
    let reconcile_slow = run(only("session-policy")).await?;
    let sweep_slow = run(only("owner-tagger")).await?;
    let grant_slow = run(vec!["--function".into(), "session-policy".into(), grant]).await?;
    expect(&grant_slow, "unchanged", "the grant of a granted user")?;
    let revoke_slow = run(vec!["--function".into(), "session-policy".into(), revoke]).await?;
    expect(
        &revoke_slow,
        "unchanged",
        "the revoke of a user with instances left",
    )?;
    Ok(Row {
        instances,
        users,
        regions,
        first,
        reconcile: reconcile_fast,
        sweep,
        reconcile_slow,
        sweep_slow,
        grant_slow,
        revoke_slow,
        refused,
    })
}

/// A measurement whose outcome is not the one the data implies is a failed benchmark.
fn expect(m: &Measured, outcome: &str, what: &str) -> Result<(), String> {
    if m.outcome == outcome {
        return Ok(());
    }
    let reasons = m.reasons.join("; ");
    Err(format!(
        "{what} was {} instead of {outcome}: {}",
        m.outcome,
        reasons.chars().take(400).collect::<String>()
    ))
}
