//! What every command-line tool prints on a usage error found after parsing (clap reports the
//! syntax ones itself, the same way): the problem, and where to look. Exit status 2.

use std::process::ExitCode;

/// Print `<tool>: <problem>` and a hint to stderr; exit 2.
pub fn usage_error(tool: &str, problem: impl std::fmt::Display) -> ExitCode {
    eprintln!("{tool}: {problem}\n\nFor more information, try '{tool} --help'.");
    ExitCode::from(2)
}
