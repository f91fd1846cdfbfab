// The SDK futures nest deeply; computing their layout needs more than the default depth.
#![recursion_limit = "256"]

use shared::app::owner_tagging::OwnerTagger;
use shared::aws::ExpirySchedules;
use shared::edge::lambda::serve;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve("owner-tagger", |config, clients| {
        let expiries = config
            .share_expiry
            .clone()
            .map(|at| ExpirySchedules::new(clients.scheduler, at));
        OwnerTagger::new(config, clients.ec2, clients.iam)
            .with_trails(clients.cloudtrail)
            .with_sessions(clients.ssm.clone())
            .with_expiries(expiries)
            .with_hybrid_nodes(clients.ssm)
    })
    .await
}
