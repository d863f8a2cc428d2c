//! What a finished suite run has to show, and the lookups the report's
//! tables share: a scenario's main run against a server, its ladder as
//! climbed, the floor's reports.

use super::floor;
use super::format::{flag, num};
use super::ladder::{ratio, Climb, Highest, LadderRatio};
use super::options::Options;
use super::plan::{LadderRule, ScenarioFile};
use super::runner::{read_json, RunRecord};
use super::servers::Variant;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The floor's JSON reports of this run (each `None` when not run or failed).
#[derive(Debug, Clone, Default)]
pub struct FloorReports {
    pub single_paced: Option<Value>,
    pub single_max: Option<Value>,
    pub batch10_max: Option<Value>,
    pub hiccups: Option<Value>,
    pub rtt_sleeping: Option<Value>,
    pub rtt_polling: Option<Value>,
    /// The polling echo's first attempt, when its window was disturbed and
    /// it was made once more (`rtt_polling` is then the second).
    pub rtt_polling_first: Option<Value>,
    /// The single send paced as `single_paced`, over chat's players.
    pub single_paced_chat_shape: Option<Value>,
    /// The single send flat out as `single_max`, over chat's players.
    pub single_max_chat_shape: Option<Value>,
    /// The sleeping echo in the servers' shape, by echo threads.
    pub rtt_shape: BTreeMap<usize, Value>,
    /// The same with glommio executors as the echo threads, by executors.
    pub rtt_glommio: BTreeMap<usize, Value>,
    /// The echo in walk's shape and weight: 1 thread, 2, and 2 crossing.
    pub walk_one: Option<Value>,
    pub walk_two: Option<Value>,
    pub walk_cross: Option<Value>,
}

impl FloorReports {
    pub fn read(run_dir: &Path, options: &Options) -> FloorReports {
        let r = |name: &str| read_json(&run_dir.join(format!("floor-{name}.json")));
        FloorReports {
            single_paced: r("single-paced"),
            single_max: r("single-max"),
            batch10_max: r("batch10-max"),
            hiccups: r("hiccups"),
            rtt_sleeping: r("rtt-sleeping"),
            rtt_polling: r("rtt-polling"),
            rtt_polling_first: r(&format!("rtt-polling{}", floor::FIRST_ATTEMPT)),
            single_paced_chat_shape: r(floor::CHAT_SHAPE),
            single_max_chat_shape: r(floor::CHAT_SHAPE_MAX),
            rtt_shape: floor::shape_threads(options)
                .into_iter()
                .filter_map(|k| r(&floor::rtt_shape_name(k)).map(|v| (k, v)))
                .collect(),
            rtt_glommio: super::plan::SCALING_SHARDS
                .iter()
                .filter_map(|&k| r(&floor::rtt_glommio_name(k)).map(|v| (k, v)))
                .collect(),
            walk_one: r(floor::WALK_ONE),
            walk_two: r(floor::WALK_TWO),
            walk_cross: r(floor::WALK_CROSS),
        }
    }
}

/// A scenario's ladder as climbed by both servers.
#[derive(Debug, Clone)]
pub struct LadderSummary {
    pub rule: LadderRule,
    /// Every step that was planned, low to high.
    pub steps: Vec<f64>,
    pub mudshard: Option<Highest>,
    pub baseline: Option<Highest>,
    pub ratio: LadderRatio,
    /// The floor's chat relay's highest, and it over the baseline's (both
    /// `None` when the relay did not climb this ladder).
    pub relay: Option<Highest>,
    pub relay_ratio: Option<LadderRatio>,
}

/// Everything the report is rendered from.
pub struct Results<'a> {
    pub options: &'a Options,
    /// Scenario files by name, and the names in the order they ran.
    pub files: &'a HashMap<String, ScenarioFile>,
    pub order: Vec<String>,
    pub records: &'a [RunRecord],
    pub floor: FloorReports,
}

impl Results<'_> {
    /// The record of a scenario's main run against `variant`.
    pub fn main(&self, scenario: &str, variant: Variant) -> Option<&RunRecord> {
        self.records
            .iter()
            .find(|r| r.scenario == scenario && r.main && r.variant == variant)
    }

    /// The record of the run against mudshard with `shards` shards at the
    /// main rate: the suite's own run when it has that many.
    pub fn with_shards(&self, scenario: &str, shards: usize) -> Option<&RunRecord> {
        if shards == self.options.shards {
            self.main(scenario, Variant::Mudshard)
        } else {
            self.main(scenario, Variant::MudshardShards(shards))
        }
    }

    /// The second round's run of a scenario against mudshard with `shards`.
    pub fn again_with_shards(&self, scenario: &str, shards: usize) -> Option<&RunRecord> {
        self.main(scenario, Variant::MudshardShardsAgain(shards))
    }

    /// The run of a scenario against mudshard with `shards`, its players
    /// kept to their connection's shard.
    pub fn kept(&self, scenario: &str, shards: usize) -> Option<&RunRecord> {
        self.main(scenario, Variant::MudshardKept(shards))
    }

    /// The record of a ladder step against `variant`.
    pub fn step(&self, scenario: &str, step: f64, variant: Variant) -> Option<&RunRecord> {
        self.records
            .iter()
            .find(|r| r.scenario == scenario && r.step == Some(step) && r.variant == variant)
    }

    /// A scenario's ladder, when it has one.
    pub fn ladder(&self, scenario: &str) -> Option<LadderSummary> {
        let file = self.files.get(scenario)?;
        if file.ladder.is_empty() {
            return None;
        }
        let mut steps: Vec<f64> = self
            .records
            .iter()
            .filter(|r| r.scenario == scenario)
            .filter_map(|r| r.step)
            .collect();
        steps.sort_by(f64::total_cmp);
        steps.dedup();
        let top = steps.last().copied().unwrap_or(0.0);
        let highest = |variant: Variant| {
            Climb {
                steps: steps
                    .iter()
                    .map(|s| {
                        let report = self
                            .step(scenario, *s, variant)
                            .and_then(|r| r.report.as_ref());
                        (*s, report)
                    })
                    .collect(),
            }
            .highest(&file.ladder_rule, top)
        };
        let mudshard = highest(Variant::Mudshard);
        let baseline = highest(Variant::Baseline);
        let climbed = |variant: Variant| {
            self.records
                .iter()
                .any(|r| r.scenario == scenario && r.step.is_some() && r.variant == variant)
        };
        let relay = highest(Variant::Relay);
        let relay_ratio = climbed(Variant::Relay).then(|| ratio(relay.as_ref(), baseline.as_ref()));
        Some(LadderSummary {
            rule: file.ladder_rule.clone(),
            ratio: ratio(mudshard.as_ref(), baseline.as_ref()),
            steps,
            mudshard,
            baseline,
            relay,
            relay_ratio,
        })
    }
}

/// What makes a run's figures describe something other than the requested
/// load, in words: loadgen judged it failed, or it did not hold its rate.
pub fn problem(report: &Value) -> Option<String> {
    if flag(report, "ok") != Some(true) {
        return Some("the run failed (loadgen)".into());
    }
    if flag(report, "rate.held") == Some(false) {
        return Some("the rate was not held".into());
    }
    None
}

/// Server CPU per command sent in the window, µs: the server's CPU time in
/// the window over the commands sent for intended times in it.
pub fn cpu_us_per_command(report: &Value) -> Option<f64> {
    let cpu_s = num(report, "server.cpu_s")?;
    let sent = num(report, "counts.sent")?;
    (sent > 0.0).then(|| cpu_s * 1e6 / sent)
}
