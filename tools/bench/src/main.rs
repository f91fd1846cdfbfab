//! `bench`: measure the product as an operator would run it. Every measurement runs the real
//! `replay` binary as its own process and reports the AWS requests it sent (counted at the HTTP
//! layer, retries included), the whole-process wall time and the peak resident memory.
//!
//! - `bench` (the default): per-event and reconcile costs against moto on loopback.
//! - `bench --scale`: reconcile, sweep, grant and revoke at 1,000 to 100,000 instances, 1,000 and
//!   10,000 users, 1 and 17 regions, against a stand-in EC2 endpoint (moto cannot serve pages of
//!   that size in useful time); prints a table with growth ratios and writes a plot.
//!
//! The numbers depend on the machine; they are printed, never asserted.
//! Exit status: 0 measured, 1 a measurement failed, 2 a usage error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

mod measure;
mod moto_cases;
mod plot;
mod scale;
mod standin;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Measure ssm-session-owner: AWS calls, process wall time and peak memory",
    after_help = "Exit status: 0 measured, 1 a measurement failed, 2 a usage error.\nBuild and run it with scripts/bench, which also installs moto."
)]
struct Cli {
    /// Users seeded for the moto reconcile case.
    #[arg(long, default_value_t = 30, conflicts_with = "scale")]
    users: usize,
    /// Instances per user for the moto reconcile case.
    #[arg(long, default_value_t = 10, conflicts_with = "scale")]
    instances_per_user: usize,
    /// Run the scale benchmark against the stand-in endpoint instead of the moto cases.
    #[arg(long)]
    scale: bool,
    /// Scale: fleet sizes (instances in the account, spread over the regions).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,10000,100000",
        requires = "scale"
    )]
    fleets: Vec<usize>,
    /// Scale: user counts (sizes with fewer instances than users are left out).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1000,10000",
        requires = "scale"
    )]
    user_counts: Vec<usize>,
    /// Scale: covered region counts (at most 17).
    #[arg(long, value_delimiter = ',', default_value = "1,17", requires = "scale",
          value_parser = clap::value_parser!(u8).range(1..=17))]
    region_counts: Vec<u8>,
    /// Scale: the stand-in's latency per EC2 call for the "with latency" runs, in milliseconds
    /// (a typical DescribeInstances page of 1,000 instances).
    #[arg(long, default_value_t = 1000, requires = "scale")]
    latency_ms: u64,
    /// Scale: where to write the plot (SVG).
    #[arg(long, default_value = "docs/scale.svg", requires = "scale")]
    plot: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = if cli.scale {
        let region_counts = cli.region_counts.iter().map(|r| usize::from(*r)).collect();
        scale::run(scale::Plan {
            fleets: cli.fleets,
            user_counts: cli.user_counts,
            region_counts,
            latency: std::time::Duration::from_millis(cli.latency_ms),
            plot: cli.plot,
        })
        .await
    } else {
        moto_cases::run(cli.users, cli.instances_per_user).await
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench failed: {err}");
            ExitCode::FAILURE
        }
    }
}
