//! Where the sample payloads live, for tests and tools. Both folders are in this repository:
//! `events/` (the samples, the single source for tests, `replay`, the demo and
//! `cargo lambda invoke`) and `tests/fixtures/real-events/` (public AWS events, with their
//! provenance in `SOURCES.md`).

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

#[cfg(test)]
pub(crate) fn sample_event(name: &str) -> String {
    let path = events_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[cfg(test)]
pub(crate) fn real_event(name: &str) -> String {
    let path = real_events_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[cfg(test)]
pub(crate) fn detail_of(json: &str) -> crate::domain::events::CloudTrailDetail {
    let envelope =
        crate::domain::events::parse_envelope(serde_json::from_str(json).unwrap()).unwrap();
    serde_json::from_value(envelope.detail).unwrap()
}
