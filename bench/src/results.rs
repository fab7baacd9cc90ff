//! Everything one run measured, for the tables and the verdicts.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::flow::StepStats;
use crate::keys::TokenCosts;
use crate::{cold, load};

/// Everything measured, for the report and the targets.
#[derive(Default)]
pub(crate) struct Results {
    pub(crate) build: Option<Duration>,
    pub(crate) sizes: Vec<(String, u64, Option<bool>)>,
    pub(crate) cold: BTreeMap<String, Vec<Duration>>,
    pub(crate) in_process: Vec<StepStats>,
    pub(crate) argon2_verify: Vec<Duration>,
    pub(crate) token_costs: TokenCosts,
    pub(crate) solo: Vec<SoloResult>,
    pub(crate) floor_warm: Vec<Duration>,
    pub(crate) rss_embedded: HashMap<String, u64>,
    pub(crate) first_embedded: HashMap<String, Duration>,
    pub(crate) dynamo: Option<DynamoResults>,
    pub(crate) load: Vec<(String, load::LoadResult)>,
    pub(crate) local_api_rss: Option<u64>,
    pub(crate) cold_requests: Option<ColdResults>,
}

pub(crate) struct ColdResults {
    pub(crate) cases: Vec<cold::CaseResult>,
    pub(crate) flow: Vec<cold::FlowStep>,
    pub(crate) rounds: usize,
    pub(crate) flows: usize,
    pub(crate) delay_ms: u64,
    /// Why the Node.js peer is missing from the run, when it is.
    pub(crate) peer_missing: Option<String>,
}

pub(crate) struct SoloResult {
    pub(crate) function: &'static str,
    pub(crate) request: &'static str,
    pub(crate) hashing: bool,
    pub(crate) statuses: BTreeMap<u16, usize>,
    pub(crate) samples: Vec<Duration>,
}

pub(crate) struct DynamoResults {
    pub(crate) steps: Vec<StepStats>,
    pub(crate) first_calls: Vec<(&'static str, Duration)>,
    pub(crate) rss: HashMap<String, u64>,
    pub(crate) iterations: usize,
    pub(crate) delay_ms: u64,
}
