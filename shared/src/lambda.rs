//! The Lambda edge: one log line per failed event, and the error returned so that a retryable
//! failure is delivered again and a permanent one ends in the OnFailure destination.

use tracing::error;

use crate::error::Error;
use crate::outcome::Outcome;

/// Log a failure with its kind, write the event's metric line, and pass the result on.
pub fn finish(
    function: &str,
    event_id: &str,
    result: Result<Outcome, Error>,
) -> Result<Outcome, Error> {
    crate::metrics::emit(function, &result);
    if let Err(err) = &result {
        error!(event_id, error_type = err.kind(), aws_code = err.aws_code(), error = %err, "event failed");
    }
    result
}
