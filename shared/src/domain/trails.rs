//! Whether a CloudTrail trail delivers launches to EventBridge in a region (pure).
//!
//! "AWS API Call via CloudTrail" events, `RunInstances` among them, reach EventBridge only
//! where a trail logs management events (AWS's behaviour; `docs/operators/deploy.md`). Without
//! one, a launch waits for the tag sweep. A trail covers a region when it is logging, selects
//! EC2's write management events, and is either multi-region or lives in that region.

use serde::Serialize;

/// EC2's event source, as CloudTrail's selectors name it.
pub const EC2_EVENT_SOURCE: &str = "ec2.amazonaws.com";

/// One trail as a region sees it (its own, or the shadow of a multi-region trail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trail {
    pub arn: String,
    pub home_region: String,
    pub multi_region: bool,
    pub logging: bool,
    pub selectors: Selectors,
}

/// What a trail selects: basic or advanced event selectors, as `GetEventSelectors` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Selectors {
    Basic(Vec<BasicSelector>),
    /// Each selector: its field selectors (all must match; any selector may).
    Advanced(Vec<Vec<FieldSelector>>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BasicSelector {
    pub include_management_events: bool,
    /// `All`, `ReadOnly` or `WriteOnly`.
    pub read_write_type: String,
    /// Management event sources excluded (`kms.amazonaws.com`, `rdsdata.amazonaws.com`).
    pub exclude_sources: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct FieldSelector {
    pub field: String,
    pub equals: Vec<String>,
    pub not_equals: Vec<String>,
}

impl Trail {
    /// Whether this trail delivers EC2's write management events (RunInstances) in `region`.
    pub fn covers(&self, region: &str) -> bool {
        self.logging
            && (self.multi_region || self.home_region == region)
            && self.selectors.select_ec2_writes()
    }
}

impl Selectors {
    /// What a trail made without selectors of its own takes: every management event, reads and
    /// writes (CloudTrail's default).
    pub fn cloudtrail_default() -> Self {
        Selectors::Basic(vec![BasicSelector {
            include_management_events: true,
            read_write_type: "All".into(),
            exclude_sources: Vec::new(),
        }])
    }

    pub fn select_ec2_writes(&self) -> bool {
        match self {
            Selectors::Basic(selectors) => selectors.iter().any(|s| {
                s.include_management_events
                    && matches!(s.read_write_type.as_str(), "All" | "WriteOnly")
                    && !s.exclude_sources.iter().any(|e| e == EC2_EVENT_SOURCE)
            }),
            Selectors::Advanced(selectors) => selectors.iter().any(|fields| {
                let field = |name: &'static str| fields.iter().filter(move |f| f.field == name);
                let management =
                    field("eventCategory").any(|f| f.equals.iter().any(|v| v == "Management"));
                // readOnly: absent (reads and writes), Equals false, or NotEquals true
                let writes = field("readOnly").all(|f| {
                    (f.equals.is_empty() || f.equals.iter().any(|v| v == "false"))
                        && !f.not_equals.iter().any(|v| v == "false")
                });
                let ec2 = field("eventSource").all(|f| {
                    (f.equals.is_empty() || f.equals.iter().any(|v| v == EC2_EVENT_SOURCE))
                        && !f.not_equals.iter().any(|v| v == EC2_EVENT_SOURCE)
                });
                management && writes && ec2
            }),
        }
    }
}

/// The regions of `regions` no trail of `trails` covers.
pub fn uncovered<'a>(regions: &'a [String], trails: &[Trail]) -> Vec<&'a str> {
    regions
        .iter()
        .filter(|region| !trails.iter().any(|t| t.covers(region)))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(include: bool, read_write: &str) -> Selectors {
        Selectors::Basic(vec![BasicSelector {
            include_management_events: include,
            read_write_type: read_write.into(),
            exclude_sources: vec![],
        }])
    }

    fn field(name: &str, equals: &[&str], not_equals: &[&str]) -> FieldSelector {
        FieldSelector {
            field: name.into(),
            equals: equals.iter().map(|s| s.to_string()).collect(),
            not_equals: not_equals.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn trail(home: &str, multi: bool, logging: bool, selectors: Selectors) -> Trail {
        Trail {
            arn: format!("arn:aws:cloudtrail:{home}:123456789012:trail/t"),
            home_region: home.into(),
            multi_region: multi,
            logging,
            selectors,
        }
    }

    #[test]
    fn basic_selectors_cover_launches_only_with_management_writes() {
        assert!(basic(true, "All").select_ec2_writes());
        assert!(basic(true, "WriteOnly").select_ec2_writes());
        assert!(!basic(true, "ReadOnly").select_ec2_writes());
        assert!(!basic(false, "All").select_ec2_writes());
        let excluded = Selectors::Basic(vec![BasicSelector {
            include_management_events: true,
            read_write_type: "All".into(),
            exclude_sources: vec![EC2_EVENT_SOURCE.into()],
        }]);
        assert!(!excluded.select_ec2_writes());
    }

    #[test]
    fn advanced_selectors_cover_launches_only_with_management_writes_of_ec2() {
        let management = field("eventCategory", &["Management"], &[]);
        let cases = [
            (vec![management.clone()], true),
            (
                vec![management.clone(), field("readOnly", &["false"], &[])],
                true,
            ),
            (
                vec![management.clone(), field("readOnly", &["true"], &[])],
                false,
            ),
            (
                vec![management.clone(), field("readOnly", &[], &["false"])],
                false,
            ),
            (
                vec![
                    management.clone(),
                    field("eventSource", &[], &["kms.amazonaws.com"]),
                ],
                true,
            ),
            (
                vec![
                    management.clone(),
                    field("eventSource", &[], &[EC2_EVENT_SOURCE]),
                ],
                false,
            ),
            (vec![field("eventCategory", &["Data"], &[])], false),
            (vec![], false),
        ];
        for (fields, expected) in cases {
            let selectors = Selectors::Advanced(vec![fields.clone()]);
            assert_eq!(selectors.select_ec2_writes(), expected, "{fields:?}");
        }
    }

    #[test]
    fn a_region_is_covered_by_a_logging_multi_region_trail_or_its_own() {
        let regions = vec!["us-east-1".to_owned(), "eu-west-1".to_owned()];
        let all = basic(true, "All");
        // none
        assert_eq!(uncovered(&regions, &[]), ["us-east-1", "eu-west-1"]);
        // a multi-region trail covers both; stopped, none
        assert!(uncovered(&regions, &[trail("us-east-1", true, true, all.clone())]).is_empty());
        assert_eq!(
            uncovered(&regions, &[trail("us-east-1", true, false, all.clone())]),
            ["us-east-1", "eu-west-1"]
        );
        // a single-region trail covers its own region only
        assert_eq!(
            uncovered(&regions, &[trail("eu-west-1", false, true, all.clone())]),
            ["us-east-1"]
        );
        // a trail that logs reads only covers nothing
        assert_eq!(
            uncovered(
                &regions,
                &[trail("us-east-1", true, true, basic(true, "ReadOnly"))]
            ),
            ["us-east-1", "eu-west-1"]
        );
    }
}
