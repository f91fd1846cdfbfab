//! The sample payloads: this repository's `events/` (the samples, the single source for tests,
//! `replay`, the demo and `cargo lambda invoke`) and `tests/fixtures/real-events/` (public AWS
//! events, with their provenance in `SOURCES.md`).

use std::path::PathBuf;

fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// This repository's `events/` folder.
pub fn events_dir() -> PathBuf {
    repository().join("events")
}

/// The real-event corpus inside this repository.
pub fn real_events_dir() -> PathBuf {
    repository().join("tests/fixtures/real-events")
}

/// A sample event from `events/`, as text.
pub fn sample_event(name: &str) -> String {
    let path = events_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
