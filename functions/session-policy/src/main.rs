// The SDK futures nest deeply; computing their layout needs more than the default depth.
#![recursion_limit = "256"]

use shared::app::session_rights::SessionPolicies;
use shared::app::AnyStore;
use shared::edge::lambda::serve;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve("session-policy", |config, clients| {
        let store = AnyStore::from_config(clients.iam.clone(), &config);
        SessionPolicies::new(config, clients.ec2, clients.iam, clients.ssm.clone(), store)
            .with_hybrid_nodes(clients.ssm)
    })
    .await
}
