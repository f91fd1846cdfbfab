// The SDK futures nest deeply; computing their layout needs more than the default depth.
#![recursion_limit = "256"]

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use shared::aws::{load_sdk_config, Clients};
use shared::owner_tagger::OwnerTagger;
use shared::Config;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    shared::metrics::enable();
    let config = Config::from_env()?;
    let clients = Clients::new(&load_sdk_config(&config).await);
    let tagger = &OwnerTagger::new(config, clients.ec2, clients.iam);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let result = tagger.handle(event.payload).await;
        shared::lambda::finish("owner-tagger", &event.context.request_id, result)
    }))
    .await
}
