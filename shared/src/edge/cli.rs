//! What every command-line tool prints on a usage error found after parsing (clap reports the
//! syntax ones itself, the same way): the problem, and where to look. Exit status 2.

use std::process::ExitCode;

/// Print `<tool>: <problem>` and a hint to stderr; exit 2.
pub fn usage_error(tool: &str, problem: impl std::fmt::Display) -> ExitCode {
    eprintln!("{tool}: {problem}\n\nFor more information, try '{tool} --help'.");
    ExitCode::from(2)
}

/// Print a tool's report, as pretty JSON or as its text; exit 0 when it `passed`, 1 when not,
/// and 2 when it cannot be written as JSON.
pub fn print_report<T: serde::Serialize + std::fmt::Display>(
    tool: &str,
    report: &T,
    json: bool,
    passed: bool,
) -> ExitCode {
    if json {
        match serde_json::to_string_pretty(report) {
            Ok(text) => println!("{text}"),
            Err(err) => {
                eprintln!("{tool}: {err}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{report}");
    }
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Print an AWS (or other) error that stopped a tool, with its kind; exit 2.
pub fn stopped_by(tool: &str, err: &crate::Error) -> ExitCode {
    eprintln!("{tool}: {err} ({})", err.kind());
    ExitCode::from(2)
}
