//! The suite's runs, planned from the scenario files (`bench/scenarios/*.toml`,
//! described in that folder's README): each key of a file's `[full]` or
//! `[quick]` section becomes a loadgen flag, a `ladder` adds runs at other
//! rates, and each run lists the servers it is run against, in order.

use super::format::step;
use super::servers::Variant;
use std::fmt;
use std::path::Path;
use toml_edit::{DocumentMut, Item, TableLike, Value};

/// Keys of a section that are not loadgen flags.
const SPECIAL_KEYS: [&str; 4] = ["ladder", "ladder_latency", "ladder_p99_ms_max", "grid"];
/// Scenarios run with 1 and 2 shards for the shard-scaling table.
pub const SCALING_SCENARIOS: [&str; 3] = ["rtt", "walk", "chat"];
/// Shard counts the scaling table compares.
pub const SCALING_SHARDS: [usize; 2] = [1, 2];
/// The scaling run whose players also run kept to their connection's shard
/// (`loadgen walk --keep-to-shard`), and with how many shards: how much of
/// the 2-vs-1 gap is the crossings.
pub const KEPT_SCENARIO: &str = "walk";
pub const KEPT_SHARDS: usize = 2;
/// The scenario whose ladder the floor's chat relay climbs too.
pub const RELAY_SCENARIO: &str = "chat";
/// Seconds a run is planned to take beyond its ramp, warm-up, window and
/// drain (loadgen's start and its report).
const RUN_OVERHEAD_S: f64 = 5.0;

/// The generated world both servers serve (`WxH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub width: u32,
    pub height: u32,
}

impl fmt::Display for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}", self.width, self.height)
    }
}

/// When a ladder step counts as sustained.
#[derive(Debug, Clone, PartialEq)]
pub struct LadderRule {
    /// The latency judged: `delivery` or `reply` (loadgen's `latency_us.<kind>`).
    pub latency: String,
    pub p99_ms_max: f64,
}

/// One scenario file, its chosen section read.
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    /// The file's name without `.toml`.
    pub name: String,
    /// The loadgen scenario.
    pub scenario: String,
    /// One line for the report.
    pub about: String,
    /// The first target from issue 4, quoted in the report.
    pub target: Option<String>,
    /// Which figures the report's table shows (row group keys).
    pub rows: Option<Vec<String>>,
    /// The section's loadgen flags, in the file's order, values as written.
    pub flags: Vec<(String, String)>,
    pub grid: Grid,
    /// `rate`, when the section has one.
    pub rate: Option<f64>,
    /// The ladder's rates (empty: no ladder).
    pub ladder: Vec<f64>,
    pub ladder_rule: LadderRule,
    /// `players` (the floor's rtt run takes its shape from it).
    pub players: Option<f64>,
    pub warmup: Option<f64>,
    pub duration: Option<f64>,
    /// What one run should take, s: ramp, warm-up, window, drain and slack.
    pub planned_s: u64,
}

/// One run of the plan: one loadgen invocation per server variant.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedRun {
    /// `chat`, or `chat@1000` for a ladder step other than the main rate.
    pub name: String,
    /// The scenario file's name.
    pub scenario: String,
    /// The ladder step's rate (`None`: the scenario has no ladder).
    pub step: Option<f64>,
    /// The run at the section's own rate: never skipped, and the one the
    /// scenario's table shows.
    pub main: bool,
    pub grid: Grid,
    pub planned_s: u64,
    /// loadgen's arguments (scenario, grid, section flags).
    pub args: Vec<String>,
    /// The servers, in the order they are run.
    pub variants: Vec<Variant>,
}

/// What decides the servers of a run besides the scenario file.
#[derive(Debug, Clone, Copy)]
pub struct VariantRules {
    /// mudshard's shards in the suite's own runs: a scaling run with as
    /// many is that run, not another.
    pub suite_shards: usize,
    pub scaling: bool,
    /// 2: the scaling runs again, in the reverse order (see `variants`).
    pub scaling_rounds: usize,
    /// The floor's chat relay climbs chat's ladder after the baseline.
    pub relay: bool,
}

impl ScenarioFile {
    /// Reads `dir/name.toml`, section `mode`.
    pub fn load(dir: &Path, name: &str, mode: &str) -> Result<ScenarioFile, String> {
        let path = dir.join(format!("{name}.toml"));
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        ScenarioFile::parse(name, &text, mode).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(name: &str, text: &str, mode: &str) -> Result<ScenarioFile, String> {
        let doc: DocumentMut = text
            .parse()
            .map_err(|e: toml_edit::TomlError| e.to_string())?;
        let top = |key: &str| doc.get(key).and_then(Item::as_str).map(str::to_string);
        let scenario = top("scenario").ok_or("no `scenario` (the loadgen scenario)")?;
        let rows = match doc.get("rows") {
            None => None,
            Some(v) => Some(
                v.as_array()
                    .and_then(|a| a.iter().map(|r| r.as_str().map(str::to_string)).collect())
                    .ok_or("`rows` must be a list of strings")?,
            ),
        };
        let sec: &dyn TableLike = doc
            .get(mode)
            .and_then(Item::as_table_like)
            .ok_or_else(|| format!("no [{mode}] section"))?;
        let number = |key: &str| -> Result<Option<f64>, String> {
            match sec.get(key).and_then(Item::as_value) {
                None if sec.get(key).is_none() => Ok(None),
                Some(Value::Integer(i)) => Ok(Some(*i.value() as f64)),
                Some(Value::Float(f)) => Ok(Some(*f.value())),
                _ => Err(format!("[{mode}] {key}: not a number")),
            }
        };
        let mut flags = Vec::new();
        for (key, item) in sec.iter() {
            if SPECIAL_KEYS.contains(&key) {
                continue;
            }
            let text = match item.as_value() {
                Some(Value::String(s)) => s.value().clone(),
                Some(Value::Integer(i)) => i.value().to_string(),
                Some(Value::Float(f)) => format!("{:?}", f.value()),
                Some(Value::Boolean(b)) => b.value().to_string(),
                _ => return Err(format!("[{mode}] {key}: a flag's value must be one value")),
            };
            flags.push((key.to_string(), text));
        }
        let grid_text = match sec.get("grid") {
            None => "100x100".to_string(),
            Some(v) => v
                .as_str()
                .ok_or(format!("[{mode}] grid: WxH is needed"))?
                .to_string(),
        };
        let grid = parse_grid(&grid_text).ok_or(format!("[{mode}] grid: WxH is needed"))?;
        let ladder = match sec.get("ladder") {
            None => Vec::new(),
            Some(v) => v
                .as_array()
                .and_then(|a| {
                    a.iter()
                        .map(|r| r.as_integer().map(|i| i as f64).or_else(|| r.as_float()))
                        .collect::<Option<Vec<f64>>>()
                })
                .ok_or(format!("[{mode}] ladder: a list of rates is needed"))?,
        };
        let rate = number("rate")?;
        if !ladder.is_empty() && rate.is_none() {
            return Err(format!("[{mode}]: a ladder needs a rate"));
        }
        let players = number("players")?;
        let warmup = number("warmup")?;
        let duration = number("duration")?;
        let drain = match number("drain")? {
            Some(d) => Some(d),
            None => number("timeout")?,
        };
        let ramp = number("ramp_rate")?.unwrap_or(5000.0);
        let ramp_s = match players {
            Some(p) if p > 0.0 && ramp > 0.0 => p / ramp,
            _ => 0.0,
        };
        let planned =
            ramp_s + warmup.unwrap_or(2.0) + duration.unwrap_or(10.0) + drain.unwrap_or(2.0);
        Ok(ScenarioFile {
            name: name.to_string(),
            scenario,
            about: top("about").unwrap_or_default(),
            target: top("target"),
            rows,
            flags,
            grid,
            rate,
            ladder,
            ladder_rule: LadderRule {
                latency: sec
                    .get("ladder_latency")
                    .and_then(Item::as_str)
                    .unwrap_or("delivery")
                    .to_string(),
                p99_ms_max: number("ladder_p99_ms_max")?.unwrap_or(20.0),
            },
            players,
            warmup,
            duration,
            planned_s: (planned + RUN_OVERHEAD_S) as u64,
        })
    }

    /// loadgen's arguments for this scenario: the scenario, the grid, then
    /// every flag of the section.
    fn args(&self) -> Vec<String> {
        let mut args = vec![
            self.scenario.clone(),
            "--grid-width".into(),
            self.grid.width.to_string(),
            "--grid-height".into(),
            self.grid.height.to_string(),
        ];
        for (key, value) in &self.flags {
            args.push(format!("--{}", key.replace('_', "-")));
            args.push(value.clone());
        }
        args
    }

    /// The ladder's steps, low to high, the main rate among them.
    pub fn steps(&self) -> Vec<f64> {
        let mut steps = self.ladder.clone();
        steps.extend(self.rate);
        steps.sort_by(f64::total_cmp);
        steps.dedup();
        steps
    }
}

fn parse_grid(s: &str) -> Option<Grid> {
    let (w, h) = s.split_once('x')?;
    let grid = Grid {
        width: w.trim().parse().ok()?,
        height: h.trim().parse().ok()?,
    };
    (grid.width > 0 && grid.height > 0).then_some(grid)
}

/// The servers of one run: the suite's mudshard, then the variants the
/// derived tables need (idle purged; the scaling runs at the main rate,
/// right after the suite's own so that the two mudshard figures of a ratio
/// are measured back to back), then the baseline.
///
/// With two scaling rounds the shard counts run again in the reverse order
/// (2, 1, 1, 2 shards when the suite's own run has 2): a drift of the
/// machine's speed across the four runs then weighs on both counts alike.
fn variants(file: &ScenarioFile, main: bool, rules: VariantRules) -> Vec<Variant> {
    let mut v = vec![Variant::Mudshard];
    if main && file.scenario == "idle" {
        v.push(Variant::MudshardPurged);
    }
    if main && rules.scaling && SCALING_SCENARIOS.contains(&file.scenario.as_str()) {
        v.extend(
            SCALING_SHARDS
                .iter()
                .filter(|k| **k != rules.suite_shards)
                .map(|k| Variant::MudshardShards(*k)),
        );
        if rules.scaling_rounds >= 2 {
            let own = SCALING_SHARDS.iter().filter(|k| **k == rules.suite_shards);
            let others = SCALING_SHARDS.iter().filter(|k| **k != rules.suite_shards);
            let first_round: Vec<usize> = own.chain(others).copied().collect();
            v.extend(
                first_round
                    .iter()
                    .rev()
                    .map(|k| Variant::MudshardShardsAgain(*k)),
            );
        }
        if file.scenario == KEPT_SCENARIO {
            v.push(Variant::MudshardKept(KEPT_SHARDS));
        }
    }
    v.push(Variant::Baseline);
    if rules.relay && file.scenario == RELAY_SCENARIO && !file.ladder.is_empty() {
        v.push(Variant::Relay);
    }
    v
}

/// Every run of the suite, in order: scenario by scenario, a ladder low to high.
pub fn plan(files: &[ScenarioFile], rules: VariantRules) -> Vec<PlannedRun> {
    let mut runs = Vec::new();
    for file in files {
        let base = file.args();
        if file.ladder.is_empty() {
            runs.push(PlannedRun {
                name: file.name.clone(),
                scenario: file.name.clone(),
                step: None,
                main: true,
                grid: file.grid,
                planned_s: file.planned_s,
                args: base,
                variants: variants(file, true, rules),
            });
            continue;
        }
        for rate in file.steps() {
            let main = Some(rate) == file.rate;
            let mut args = base.clone();
            if let Some(i) = args.iter().position(|a| a == "--rate") {
                if let Some(value) = args.get_mut(i + 1) {
                    *value = step(rate);
                }
            }
            runs.push(PlannedRun {
                name: if main {
                    file.name.clone()
                } else {
                    format!("{}@{}", file.name, step(rate))
                },
                scenario: file.name.clone(),
                step: Some(rate),
                main,
                grid: file.grid,
                planned_s: file.planned_s,
                args,
                variants: variants(file, main, rules),
            });
        }
    }
    runs
}

/// The scenario files to run: those named by `--only`, in that order, or
/// the suite's. Refuses names without a file, and `soak` and `cluster`,
/// which run apart.
pub fn select(dir: &Path, only: &[String]) -> Result<Vec<String>, String> {
    if only.is_empty() {
        let names: Vec<String> = super::options::SUITE_ORDER
            .iter()
            .filter(|n| dir.join(format!("{n}.toml")).is_file())
            .map(|n| n.to_string())
            .collect();
        if names.is_empty() {
            return Err(format!("no scenario files in {}", dir.display()));
        }
        return Ok(names);
    }
    let mut names = Vec::new();
    for name in only {
        if name == "soak" {
            return Err(
                "soak is not part of the suite: run it by hand (README, \"Soak\")".to_string(),
            );
        }
        if name == "cluster" {
            return Err("cluster runs alone: scripts/bench.sh --only cluster".to_string());
        }
        if name.contains('/') || !dir.join(format!("{name}.toml")).is_file() {
            return Err(format!(
                "no scenario '{name}' (have: {})",
                available(dir).join(" ")
            ));
        }
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    Ok(names)
}

fn available(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".toml"))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHAT: &str = r#"
scenario = "chat"
about = "N players in R rooms"
target = "lots"
rows = ["rate", "cpu"]

[full]
players = 10000
rooms = 100
rate = 5000
ladder = [250, 500, 5000]
ladder_latency = "delivery"
ladder_p99_ms_max = 20

[quick]
players = 500
rooms = 10
rate = 200
ramp_rate = 2000
warmup = 1
duration = 3
drain = 1
grid = "50x40"
ladder = [1000, 200]
ladder_p99_ms_max = 100
"#;

    const RTT: &str = r#"
scenario = "rtt"
about = "look"
[quick]
players = 500
rate = 2000
command = "look"
"#;

    fn rules(suite_shards: usize) -> VariantRules {
        VariantRules {
            relay: false,
            suite_shards,
            scaling: true,
            scaling_rounds: 1,
        }
    }

    #[test]
    fn section_keys_become_flags_in_the_files_order() {
        let f = ScenarioFile::parse("chat", CHAT, "quick").expect("parses");
        let runs = plan(&[f], rules(2));
        assert_eq!(
            runs[0].args,
            [
                "chat",
                "--grid-width",
                "50",
                "--grid-height",
                "40",
                "--players",
                "500",
                "--rooms",
                "10",
                "--rate",
                "200",
                "--ramp-rate",
                "2000",
                "--warmup",
                "1",
                "--duration",
                "3",
                "--drain",
                "1"
            ]
        );
        // 500 / 2000 + 1 + 3 + 1 + 5 = 10.25
        assert_eq!(runs[0].planned_s, 10);
    }

    #[test]
    fn a_ladder_runs_low_to_high_with_the_main_rate_among_its_steps() {
        let f = ScenarioFile::parse("chat", CHAT, "quick").expect("parses");
        let runs = plan(&[f], rules(2));
        let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["chat", "chat@1000"]);
        assert!(runs[0].main && !runs[1].main);
        assert_eq!(runs[1].step, Some(1000.0));
        let rate = runs[1]
            .args
            .iter()
            .position(|a| a == "--rate")
            .expect("rate");
        assert_eq!(runs[1].args[rate + 1], "1000");

        let full = ScenarioFile::parse("chat", CHAT, "full").expect("parses");
        assert_eq!(full.steps(), [250.0, 500.0, 5000.0]);
        assert_eq!(full.ladder_rule.p99_ms_max, 20.0);
        let runs = plan(&[full], rules(1));
        assert_eq!(runs.last().map(|r| r.main), Some(true));
    }

    #[test]
    fn the_relay_climbs_chats_ladder_after_the_baseline_and_nothing_else() {
        let with_relay = VariantRules {
            relay: true,
            ..rules(2)
        };
        let chat = ScenarioFile::parse("chat", CHAT, "quick").expect("parses");
        let runs = plan(std::slice::from_ref(&chat), with_relay);
        for run in &runs {
            assert_eq!(run.variants.last(), Some(&Variant::Relay), "{}", run.name);
            assert_eq!(
                run.variants[run.variants.len() - 2],
                Variant::Baseline,
                "{}",
                run.name
            );
        }
        let rtt = ScenarioFile::parse("rtt", RTT, "quick").expect("parses");
        let runs = plan(&[rtt], with_relay);
        assert!(runs.iter().all(|r| !r.variants.contains(&Variant::Relay)));
        let runs = plan(&[chat], rules(2));
        assert!(runs.iter().all(|r| !r.variants.contains(&Variant::Relay)));
    }

    #[test]
    fn scaling_runs_join_the_main_run_only_for_the_shard_count_not_already_run() {
        let f = ScenarioFile::parse("chat", CHAT, "quick").expect("parses");
        let runs = plan(std::slice::from_ref(&f), rules(2));
        assert_eq!(
            runs[0].variants,
            [
                Variant::Mudshard,
                Variant::MudshardShards(1),
                Variant::Baseline
            ]
        );
        assert_eq!(runs[1].variants, [Variant::Mudshard, Variant::Baseline]);
        let runs = plan(std::slice::from_ref(&f), rules(4));
        assert_eq!(
            runs[0].variants,
            [
                Variant::Mudshard,
                Variant::MudshardShards(1),
                Variant::MudshardShards(2),
                Variant::Baseline
            ]
        );
        let off = VariantRules {
            suite_shards: 2,
            scaling: false,
            scaling_rounds: 2,
            relay: false,
        };
        assert_eq!(plan(&[f], off)[0].variants.len(), 2);
    }

    #[test]
    fn a_second_scaling_round_runs_the_shard_counts_again_in_the_reverse_order() {
        let f = ScenarioFile::parse("chat", CHAT, "quick").expect("parses");
        let twice = |suite_shards| VariantRules {
            suite_shards,
            scaling: true,
            scaling_rounds: 2,
            relay: false,
        };
        // 2, 1, 1, 2 shards; the suite's own run is the first of them.
        assert_eq!(
            plan(std::slice::from_ref(&f), twice(2))[0].variants,
            [
                Variant::Mudshard,
                Variant::MudshardShards(1),
                Variant::MudshardShardsAgain(1),
                Variant::MudshardShardsAgain(2),
                Variant::Baseline
            ]
        );
        // With --split-cores the suite's own run has 1 shard: 1, 2, 2, 1.
        assert_eq!(
            plan(std::slice::from_ref(&f), twice(1))[0].variants,
            [
                Variant::Mudshard,
                Variant::MudshardShards(2),
                Variant::MudshardShardsAgain(2),
                Variant::MudshardShardsAgain(1),
                Variant::Baseline
            ]
        );
        // Neither count is the suite's own: 1, 2, 2, 1 after it.
        assert_eq!(
            plan(std::slice::from_ref(&f), twice(4))[0].variants,
            [
                Variant::Mudshard,
                Variant::MudshardShards(1),
                Variant::MudshardShards(2),
                Variant::MudshardShardsAgain(2),
                Variant::MudshardShardsAgain(1),
                Variant::Baseline
            ]
        );
        // Only the main run, only the scaling scenarios.
        let runs = plan(std::slice::from_ref(&f), twice(2));
        assert_eq!(runs[1].variants, [Variant::Mudshard, Variant::Baseline]);
        let idle = "scenario = \"idle\"\n[quick]\nplayers = 1000\n";
        let idle = ScenarioFile::parse("idle", idle, "quick").expect("parses");
        assert!(!plan(&[idle], twice(2))[0]
            .variants
            .iter()
            .any(|v| matches!(v, Variant::MudshardShardsAgain(_))));
    }

    #[test]
    fn walk_also_runs_its_walkers_kept_to_their_shard_after_the_scaling_runs() {
        let walk = "scenario = \"walk\"\n[quick]\nplayers = 500\nrate = 1000\n";
        let f = ScenarioFile::parse("walk", walk, "quick").expect("parses");
        let twice = VariantRules {
            suite_shards: 2,
            scaling: true,
            scaling_rounds: 2,
            relay: false,
        };
        assert_eq!(
            plan(std::slice::from_ref(&f), twice)[0].variants,
            [
                Variant::Mudshard,
                Variant::MudshardShards(1),
                Variant::MudshardShardsAgain(1),
                Variant::MudshardShardsAgain(2),
                Variant::MudshardKept(2),
                Variant::Baseline
            ]
        );
        assert_eq!(
            plan(std::slice::from_ref(&f), rules(1))[0].variants,
            [
                Variant::Mudshard,
                Variant::MudshardShards(2),
                Variant::MudshardKept(2),
                Variant::Baseline
            ]
        );
        let off = VariantRules {
            scaling: false,
            ..twice
        };
        assert_eq!(
            plan(std::slice::from_ref(&f), off)[0].variants,
            [Variant::Mudshard, Variant::Baseline]
        );
        // Only walk's.
        let rtt = ScenarioFile::parse("rtt", RTT, "quick").expect("parses");
        assert!(!plan(&[rtt], twice)[0]
            .variants
            .iter()
            .any(|v| matches!(v, Variant::MudshardKept(_))));
    }

    #[test]
    fn idle_is_also_run_with_mimalloc_purging() {
        let idle = "scenario = \"idle\"\n[quick]\nplayers = 1000\n";
        let f = ScenarioFile::parse("idle", idle, "quick").expect("parses");
        assert_eq!(
            plan(&[f], rules(1))[0].variants,
            [
                Variant::Mudshard,
                Variant::MudshardPurged,
                Variant::Baseline
            ]
        );
    }

    #[test]
    fn a_scenario_without_a_ladder_is_one_main_run() {
        let f = ScenarioFile::parse("rtt", RTT, "quick").expect("parses");
        assert_eq!(f.grid.to_string(), "100x100");
        let runs = plan(&[f], rules(1));
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].step, None);
        assert_eq!(
            runs[0].variants,
            [
                Variant::Mudshard,
                Variant::MudshardShards(2),
                Variant::Baseline
            ]
        );
        // 500 / 5000 + 2 + 10 + 2 + 5
        assert_eq!(runs[0].planned_s, 19);
    }

    #[test]
    fn bad_files_are_errors_not_panics() {
        for (text, want) in [
            ("scenario = \"rtt\"\n", "no [quick] section"),
            ("[quick]\nrate = 1\n", "no `scenario`"),
            (
                "scenario = \"rtt\"\n[quick]\nplayers = \"y\"\n",
                "players: not a number",
            ),
            (
                "scenario = \"chat\"\n[quick]\nladder = [1, 2]\n",
                "a ladder needs a rate",
            ),
            ("scenario = \"rtt\"\n[quick]\ngrid = \"100\"\n", "grid"),
            ("scenario = \"rtt\"\n[quick]\nx = [1]\n", "one value"),
            ("scenario = \"rtt\"\n[quick\n", "parse error"),
        ] {
            let e = ScenarioFile::parse("x", text, "quick").unwrap_err();
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn the_repositorys_scenario_files_all_plan() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/scenarios");
        for mode in ["full", "quick"] {
            let names = select(&dir, &[]).expect("the suite's files");
            assert_eq!(names, super::super::options::SUITE_ORDER);
            let files: Vec<ScenarioFile> = names
                .iter()
                .map(|n| ScenarioFile::load(&dir, n, mode).expect("loads"))
                .collect();
            let runs = plan(&files, rules(2));
            assert!(runs.iter().any(|r| r.name == "chat" && r.main));
            assert!(runs.iter().all(|r| r.args[0] == r.scenario));
        }
        assert!(select(&dir, &["soak".into()])
            .unwrap_err()
            .contains("by hand"));
        assert!(select(&dir, &["nope".into()])
            .unwrap_err()
            .contains("have:"));
        assert_eq!(
            select(&dir, &["rtt".into(), "idle".into()]).expect("ok"),
            ["rtt", "idle"]
        );
    }
}
