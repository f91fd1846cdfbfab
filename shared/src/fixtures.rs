//! The sample payloads the unit tests read, compiled in with `include_str!`: this repository's
//! `events/` (the samples, the single source for tests, `replay`, the demo and
//! `cargo lambda invoke`) and `tests/fixtures/real-events/` (public AWS events, with their
//! provenance in `SOURCES.md`). Test-only: the library ships none of it; integration tests and
//! tools find the folders through `testkit::events`.

/// `events/<name>`, compiled in.
macro_rules! sample_event {
    ($name:literal) => {
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/", $name))
    };
}

/// `tests/fixtures/real-events/<name>`, compiled in.
macro_rules! real_event {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/real-events/",
            $name
        ))
    };
}

/// A CloudTrail event's `detail`.
pub(crate) fn detail_of(json: &str) -> crate::domain::events::CloudTrailDetail {
    let envelope =
        crate::domain::events::parse_envelope(serde_json::from_str(json).unwrap()).unwrap();
    serde_json::from_value(envelope.detail).unwrap()
}
