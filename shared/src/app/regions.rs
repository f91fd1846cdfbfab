//! Every region the deployment covers. CloudTrail events reach EventBridge only in the region of
//! the call, so the forwarders bring them to one home region; from there the functions work in
//! the region each event names. A grant reads only the tagged instance's region (the user has a
//! live instance there); revokes, the reconcile and the tag sweep read every covered region, all
//! at once (up to [`REGION_READS_AT_ONCE`]). A region that cannot be read is a retryable error,
//! never "no instances there": that would revoke the users whose instances live in it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::OnceCell;
use tracing::{info, warn};

use crate::config::Config;
use crate::domain::ids::{Partition, Region};
use crate::error::Error;
use crate::ports::{EnabledRegions, InRegion};

/// Regions read at the same time by [`RegionalClients::read_all`] (reads filtered to one user's
/// instances, whose pages are small): more than AWS has enabled by default (17), so a read of
/// every region takes about one region's time. Whole-fleet reads are bounded by
/// `FLEET_READS_AT_ONCE` instead ([`RegionalClients::read_fleet`]): each holds a full page.
pub const REGION_READS_AT_ONCE: usize = 24;

/// One client per region, built on first use from the home client and kept for the process.
pub(crate) struct RegionalClients<C> {
    home: C,
    /// The home region's partition: regions of another partition are never covered.
    partition: Partition,
    /// `REGIONS`: when non-empty, only these of the enabled regions.
    narrowed_to: Vec<Region>,
    fleet_reads_at_once: usize,
    covered: OnceCell<Vec<String>>,
    clients: Mutex<HashMap<String, C>>,
}

impl<C: InRegion + Clone> RegionalClients<C> {
    pub(crate) fn new(home: C, config: &Config) -> Self {
        Self {
            home,
            partition: config.regions.partition,
            narrowed_to: config.regions.only.clone(),
            fleet_reads_at_once: config.regions.fleet_reads_at_once,
            covered: OnceCell::new(),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// The client for `region`; the home region's when the event names none.
    pub(crate) fn get(&self, region: Option<&str>) -> C {
        let Some(region) = region.filter(|r| Some(r.to_string()) != self.home.region_name()) else {
            return self.home.clone();
        };
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        clients
            .entry(region.to_owned())
            .or_insert_with(|| self.home.in_region(region))
            .clone()
    }
}

impl<C: InRegion + EnabledRegions + Clone + Sync> RegionalClients<C> {
    /// The covered regions: every region enabled in the account (`ec2:DescribeRegions`, once per
    /// process), narrowed by `REGIONS`.
    pub(crate) async fn covered(&self) -> Result<&[String], Error> {
        self.covered
            .get_or_try_init(|| async {
                // Credentials of one partition reach no other (some endpoints list them all).
                let enabled: Vec<String> = self
                    .home
                    .enabled_regions()
                    .await?
                    .into_iter()
                    .filter(|r| Partition::of_region(r) == self.partition)
                    .collect();
                let covered: Vec<String> = if self.narrowed_to.is_empty() {
                    enabled
                } else {
                    let is_enabled = |r: &&Region| enabled.iter().any(|e| e == r.as_str());
                    for region in self.narrowed_to.iter().filter(|r| !is_enabled(r)) {
                        warn!(region = %region, "REGIONS names a region that is not enabled in the account; it is not covered");
                    }
                    self.narrowed_to
                        .iter()
                        .filter(is_enabled)
                        .map(|r| r.as_str().to_owned())
                        .collect()
                };
                info!(regions = ?covered, "covered regions");
                Ok(covered)
            })
            .await
            .map(Vec::as_slice)
    }

    /// `read` in every covered region, all at once (up to [`REGION_READS_AT_ONCE`]), the results
    /// together in the order of the covered regions. A region that fails is
    /// [`Error::RegionUnreadable`] (retryable), whatever the error, and the whole read fails.
    pub(crate) async fn read_all<T, F, Fut>(&self, read: F) -> Result<Vec<(String, T)>, Error>
    where
        F: Fn(C) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        self.read_regions(REGION_READS_AT_ONCE, read).await
    }

    /// [`Self::read_all`] for a read of every instance (the reconcile, the sweep): at most
    /// `FLEET_READS_AT_ONCE` regions at once, so that the pages in flight stay within the
    /// function's memory.
    pub(crate) async fn read_fleet<T, F, Fut>(&self, read: F) -> Result<Vec<(String, T)>, Error>
    where
        F: Fn(C) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        self.read_regions(self.fleet_reads_at_once, read).await
    }

    async fn read_regions<T, F, Fut>(
        &self,
        at_once: usize,
        read: F,
    ) -> Result<Vec<(String, T)>, Error>
    where
        F: Fn(C) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let regions = self.covered().await?.to_vec();
        let read = &read;
        let mut all: Vec<(usize, String, T)> = stream::iter(regions.into_iter().enumerate())
            .map(|(index, region)| async move {
                read(self.get(Some(&region)))
                    .await
                    .map(|found| (index, region.clone(), found))
                    .map_err(|e| Error::RegionUnreadable {
                        region,
                        cause: e.to_string(),
                    })
            })
            .buffer_unordered(at_once.max(1))
            .try_collect()
            .await?;
        all.sort_by_key(|(index, _, _)| *index);
        Ok(all
            .into_iter()
            .map(|(_, region, found)| (region, found))
            .collect())
    }
}
