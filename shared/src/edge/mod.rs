//! The edges where events come in and results go out: the Lambda finish step (log, metric line,
//! error type), the CloudWatch Embedded Metric Format line, and the line `replay` prints.

pub mod cli;
pub mod emf;
pub mod lambda;
pub mod replay_line;
