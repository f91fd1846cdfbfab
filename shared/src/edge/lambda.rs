//! The Lambda edge: one log line per failed event, and the error returned so that a retryable
//! failure is delivered again and a permanent one ends in the OnFailure destination.

use std::future::Future;

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;
use tracing::error;

use crate::app::owner_tagging::OwnerTagger;
use crate::app::session_rights::SessionPolicies;
use crate::aws::{load_sdk_config, Clients};
use crate::config::Config;
use crate::domain::outcome::Outcome;
use crate::error::Error;
use crate::ports::{
    InRegion, PolicyStore, RoleDirectory, SessionsEc2, SessionsSsm, TaggerEc2, TrailDirectory,
};

/// A function's use case: one event in, its outcome out.
pub trait Handler {
    fn handle(&self, event: Value) -> impl Future<Output = Result<Outcome, Error>> + Send;
}

impl<E, R, C, S, X, N> Handler for OwnerTagger<E, R, C, S, X, N>
where
    E: TaggerEc2,
    R: RoleDirectory + Sync,
    C: TrailDirectory + InRegion + Clone + Send + Sync,
    S: crate::ports::GuestSessions + InRegion + Clone + Send + Sync,
    X: crate::ports::ShareExpiries + Sync,
    N: crate::ports::HybridNodes + InRegion + Clone + Send + Sync,
{
    fn handle(&self, event: Value) -> impl Future<Output = Result<Outcome, Error>> + Send {
        OwnerTagger::handle(self, event)
    }
}

impl<E, R, T, S, N> Handler for SessionPolicies<E, R, T, S, N>
where
    E: SessionsEc2,
    R: RoleDirectory + Sync,
    T: SessionsSsm,
    S: PolicyStore + Sync,
    N: crate::ports::HybridNodes + InRegion + Clone + Send + Sync,
{
    fn handle(&self, event: Value) -> impl Future<Output = Result<Outcome, Error>> + Send {
        SessionPolicies::handle(self, event)
    }
}

/// Run a Lambda function: tracing, metric lines, the config checked once, the SDK clients built
/// once, then every event through `build`'s handler and [`finish`].
pub async fn serve<H: Handler + Sync>(
    function: &'static str,
    build: impl FnOnce(Config, Clients) -> H,
) -> Result<(), lambda_runtime::Error> {
    lambda_runtime::tracing::init_default_subscriber();
    super::emf::enable();
    let config = Config::from_env()?;
    let clients = Clients::new(&load_sdk_config(&config).await);
    let handler = &build(config, clients);
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let result = handler.handle(event.payload).await;
        finish(function, &event.context.request_id, result)
    }))
    .await
}

/// Log a failure with its kind, write the event's metric line, and pass the result on.
pub(crate) fn finish(
    function: &str,
    event_id: &str,
    result: Result<Outcome, Error>,
) -> Result<Outcome, Error> {
    super::emf::emit(function, &result);
    if let Err(err) = &result {
        error!(event_id, error_type = err.kind(), aws_code = err.aws_code(), error = %err, "event failed");
    }
    result
}

impl From<Error> for lambda_runtime::Diagnostic {
    fn from(err: Error) -> Self {
        lambda_runtime::Diagnostic {
            error_type: err.kind().to_owned(),
            error_message: err.to_string(),
        }
    }
}
