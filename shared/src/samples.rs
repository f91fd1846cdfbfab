//! Where the sample payloads live, for tests and tools.
//!
//! `events/` in this repository is the single source of sample events. The real public events
//! sit in `../shared/real-events/` beside the repository (override with `REAL_EVENTS_DIR`).

use std::path::PathBuf;

/// This repository's `events/` folder.
pub fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../events")
}

/// The real-event corpus beside the repository.
pub fn real_events_dir() -> PathBuf {
    std::env::var_os("REAL_EVENTS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/real-events")
        })
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
pub(crate) fn detail_of(json: &str) -> crate::event::CloudTrailDetail {
    let envelope = crate::event::parse_envelope(serde_json::from_str(json).unwrap()).unwrap();
    serde_json::from_value(envelope.detail).unwrap()
}
