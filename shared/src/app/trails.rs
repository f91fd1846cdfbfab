//! Which covered regions no trail delivers launches from: checked by the tag sweep (the
//! `RegionsWithoutTrail` metric and its alarm) and by the doctor.

use super::regions::RegionalClients;
use crate::domain::trails::uncovered;
use crate::error::Error;
use crate::ports::{InRegion, TrailDirectory};

/// No trail client: the trail check is not made (the tools and tests that do not ask for it).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTrails;

impl TrailDirectory for NoTrails {
    async fn trails(&self) -> Result<Vec<crate::domain::trails::Trail>, Error> {
        Ok(Vec::new())
    }
}

impl InRegion for NoTrails {
    fn region_name(&self) -> Option<String> {
        None
    }

    fn in_region(&self, _region: &str) -> Self {
        Self
    }
}

/// The regions of `regions` whose launches no trail delivers to EventBridge. The home region
/// is asked first: a logging multi-region trail there (an organisation's trail included) covers
/// every region, in 1 + 2 calls per trail. Only the regions it leaves are asked one by one, for
/// trails of their own. An answer that cannot be read is an error, never "no trail".
pub(crate) async fn regions_without_trail<T>(
    trails: &RegionalClients<T>,
    regions: &[String],
) -> Result<Vec<String>, Error>
where
    T: TrailDirectory + InRegion + Clone + Send + Sync,
{
    let home = trails.get(None).trails().await?;
    let mut left = Vec::new();
    for region in uncovered(regions, &home) {
        let own = trails.get(Some(region)).trails().await?;
        if !own.iter().any(|t| t.covers(region)) {
            left.push(region.to_owned());
        }
    }
    Ok(left)
}
