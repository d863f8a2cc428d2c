//! The shard-scaling table (issue 12): rtt, walk and chat against mudshard
//! with 1 shard and with 2 shards in the same run, at each scenario's main
//! rate: server CPU per command (per delivered message for chat) and p99,
//! the 2-shard figures beside the 1-shard ones as a ratio. Below them, the
//! floor's echo with 1 and with 2 threads in the servers' layout: what the
//! machine itself charges for two threads that sleep and wake apart.

use super::format::{ms, opt};
use super::plan::{KEPT_SCENARIO, KEPT_SHARDS, SCALING_SCENARIOS, SCALING_SHARDS};
use super::results::{cpu_us_per_command, problem, Results};
use super::runner::{Outcome, RunRecord};
use super::servers::{Layout, Variant};
use serde_json::Value;
use std::fmt::Write as _;

/// One shard count's figures for a scenario.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShardFigures {
    /// Server CPU per command (rtt, walk) or per delivered message (chat), µs.
    pub cpu_us: Option<f64>,
    /// p99 of replies (rtt, walk) or deliveries (chat), µs.
    pub p99_us: Option<f64>,
    /// Why the figures do not describe the requested load, if they do not.
    pub problem: Option<String>,
    /// Each round's (CPU, p99) when the figures above are the rounds' means
    /// (empty for a single run).
    pub rounds: Vec<(Option<f64>, Option<f64>)>,
}

impl ShardFigures {
    /// The mean of several runs' figures (each figure over the runs that
    /// have it), every run's kept in `rounds`; a problem of any run is the
    /// mean's.
    pub fn mean_of(runs: Vec<ShardFigures>) -> ShardFigures {
        if runs.len() == 1 {
            return runs.into_iter().next().unwrap_or_default();
        }
        let mean = |pick: fn(&ShardFigures) -> Option<f64>| {
            let values: Vec<f64> = runs.iter().filter_map(pick).collect();
            (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
        };
        let problem = runs
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.problem.as_ref().map(|p| format!("round {}: {p}", i + 1)))
            .collect::<Vec<_>>();
        ShardFigures {
            cpu_us: mean(|r| r.cpu_us),
            p99_us: mean(|r| r.p99_us),
            problem: (!problem.is_empty()).then(|| problem.join("; ")),
            rounds: runs.iter().map(|r| (r.cpu_us, r.p99_us)).collect(),
        }
    }
}

/// A scenario's row: its 1-shard and 2-shard figures (`Err`: why there are none).
#[derive(Debug, Clone, PartialEq)]
pub struct ScalingRow {
    pub scenario: String,
    pub rate: Option<f64>,
    pub one: Result<ShardFigures, String>,
    pub two: Result<ShardFigures, String>,
}

impl ScalingRow {
    /// 2 shards over 1 shard: CPU, then p99.
    pub fn ratios(&self) -> (Option<f64>, Option<f64>) {
        let (Ok(one), Ok(two)) = (&self.one, &self.two) else {
            return (None, None);
        };
        let r = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) if b > 0.0 => Some(a / b),
            _ => None,
        };
        (r(two.cpu_us, one.cpu_us), r(two.p99_us, one.p99_us))
    }
}

/// What the table measures per scenario: its unit of work and its latency.
pub fn per_what(scenario: &str) -> (&'static str, &'static str) {
    if scenario == "chat" {
        ("delivered message", "delivery")
    } else {
        ("command", "reply")
    }
}

/// A report's figures for the table.
pub fn figures(scenario: &str, report: &Value) -> ShardFigures {
    let (_, latency) = per_what(scenario);
    let cpu_us = if scenario == "chat" {
        super::format::num(report, "server.cpu_us_per_msg")
    } else {
        cpu_us_per_command(report)
    };
    ShardFigures {
        cpu_us,
        p99_us: super::format::num(report, &format!("latency_us.{latency}.p99_us")),
        problem: problem(report),
        rounds: Vec::new(),
    }
}

/// The floor row's label in the table and the targets.
pub const FLOOR_ROW: &str = "floor echo, no server";
/// The row of walkers kept to their connection's shard.
pub const KEPT_ROW: &str = "walk, kept to their shard";

/// Walk's row again with its 2-shard side run with the walkers kept to the
/// rooms their connection's shard owns (`--keep-to-shard`), beside the same
/// 1-shard figures: the ratio walk would have if its sessions stood where a
/// migration to their room's shard would put them (`None` when that run is
/// not in the plan).
pub fn kept_row(results: &Results<'_>, rows: &[ScalingRow]) -> Option<ScalingRow> {
    let walk = rows.iter().find(|r| r.scenario == KEPT_SCENARIO)?;
    let record = results.kept(KEPT_SCENARIO, KEPT_SHARDS)?;
    Some(ScalingRow {
        scenario: KEPT_ROW.into(),
        rate: walk.rate,
        one: walk.one.clone(),
        two: read(record, KEPT_SCENARIO, KEPT_SHARDS),
    })
}

/// A mudshard run's figures, or why it has none.
fn read(record: &RunRecord, scenario: &str, shards: usize) -> Result<ShardFigures, String> {
    match (&record.outcome, &record.report) {
        (Outcome::NotStarted, _) => Err(format!("mudshard with {shards} shard(s) did not start")),
        (_, None) => Err(format!("the {shards}-shard run left no JSON report")),
        (_, Some(report)) => Ok(figures(scenario, report)),
    }
}
/// The runtime row's label: the floor's echo as glommio executors.
pub const RUNTIME_ROW: &str = "floor glommio echo, no server";

/// A `floor --rtt` report's figures for the table: echo CPU per request
/// (summed over the echo threads) and reply p99.
pub fn echo_figures(report: &Value) -> ShardFigures {
    let num = |path: &str| super::format::num(report, path);
    let unanswered = match (num("measured"), num("answered")) {
        (Some(m), Some(a)) if a < m => Some(format!("{} of {m} requests unanswered", m - a)),
        _ => None,
    };
    ShardFigures {
        cpu_us: num("echo_us_per_request"),
        p99_us: num("latency_us.p99"),
        problem: unanswered,
        rounds: Vec::new(),
    }
}

/// The floor's row: the sleeping echo in the servers' shape with 1 and with
/// 2 echo threads (`None` when neither ran: `--no-floor`, or no rtt).
pub fn floor_row(results: &Results<'_>) -> Option<ScalingRow> {
    echo_row(&results.floor.rtt_shape, FLOOR_ROW)
}

/// The runtime's row: the same echo as 1 and 2 glommio executors.
pub fn runtime_row(results: &Results<'_>) -> Option<ScalingRow> {
    echo_row(&results.floor.rtt_glommio, RUNTIME_ROW)
}

/// The rows of the echo in walk's shape and weight: 1 thread against 2
/// answering their own pairs, and against 2 whose requests cross as walk's
/// moves do (`None` each when its runs are missing: `--no-floor`, or no walk).
pub fn walk_floor_rows(results: &Results<'_>) -> Vec<ScalingRow> {
    let floor = &results.floor;
    [
        (WALK_FLOOR_ROW, &floor.walk_two),
        (WALK_CROSS_ROW, &floor.walk_cross),
    ]
    .into_iter()
    .filter(|_| floor.walk_one.is_some() || floor.walk_two.is_some() || floor.walk_cross.is_some())
    .map(|(label, two)| {
        let side = |report: &Option<Value>, what: &str| {
            report
                .as_ref()
                .map(echo_figures)
                .ok_or_else(|| format!("the floor's {what} run left no report"))
        };
        ScalingRow {
            scenario: label.into(),
            rate: [&floor.walk_one, two]
                .into_iter()
                .flatten()
                .find_map(|r| super::format::num(r, "config.rate")),
            one: side(&floor.walk_one, super::floor::WALK_ONE),
            two: side(
                two,
                if label == WALK_CROSS_ROW {
                    super::floor::WALK_CROSS
                } else {
                    super::floor::WALK_TWO
                },
            ),
        }
    })
    .collect()
}

/// The labels of the rows of the echo in walk's shape and weight.
pub const WALK_FLOOR_ROW: &str = "floor echo, walk's weight, no server";
pub const WALK_CROSS_ROW: &str = "floor echo, walk's weight, crossing, no server";

fn echo_row(reports: &std::collections::BTreeMap<usize, Value>, label: &str) -> Option<ScalingRow> {
    if SCALING_SHARDS.iter().all(|k| !reports.contains_key(k)) {
        return None;
    }
    let side = |threads: usize| {
        reports
            .get(&threads)
            .map(echo_figures)
            .ok_or_else(|| format!("the floor's {threads}-thread echo run left no report"))
    };
    Some(ScalingRow {
        scenario: label.into(),
        rate: reports
            .values()
            .find_map(|r| super::format::num(r, "config.rate")),
        one: side(1),
        two: side(2),
    })
}

/// The rows, for the scaling scenarios that ran (in the order they ran).
pub fn rows(results: &Results<'_>) -> Vec<ScalingRow> {
    results
        .order
        .iter()
        .filter(|s| {
            results
                .files
                .get(*s)
                .is_some_and(|f| SCALING_SCENARIOS.contains(&f.scenario.as_str()))
        })
        .map(|scenario| {
            let side = |shards: usize| -> Result<ShardFigures, String> {
                let record = results.with_shards(scenario, shards).ok_or_else(|| {
                    if results.options.scaling {
                        format!("no run with {shards} shard(s)")
                    } else {
                        "--no-scaling".to_string()
                    }
                })?;
                let mut runs = vec![read(record, scenario, shards)?];
                if let Some(again) = results.again_with_shards(scenario, shards) {
                    runs.push(
                        read(again, scenario, shards)
                            .map_err(|why| format!("second round: {why}"))?,
                    );
                }
                Ok(ShardFigures::mean_of(runs))
            };
            ScalingRow {
                scenario: scenario.clone(),
                rate: results.files.get(scenario).and_then(|f| f.rate),
                one: side(1),
                two: side(2),
            }
        })
        .collect()
}

fn cell(
    side: &Result<ShardFigures, String>,
    pick: fn(&ShardFigures) -> Option<f64>,
    show: fn(Option<f64>) -> String,
) -> String {
    match side {
        Ok(f) if f.rounds.len() > 1 => {
            let each: Vec<String> = f
                .rounds
                .iter()
                .map(|(cpu, p99)| {
                    show(pick(&ShardFigures {
                        cpu_us: *cpu,
                        p99_us: *p99,
                        ..ShardFigures::default()
                    }))
                })
                .collect();
            format!("{} ({})", show(pick(f)), each.join(", "))
        }
        Ok(f) => show(pick(f)),
        Err(_) => "—".into(),
    }
}

/// The table's section of the report, the floor's row last; empty when no
/// scaling scenario ran.
pub fn render(results: &Results<'_>, rows: &[ScalingRow], floor: Option<&ScalingRow>) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut w = String::new();
    let _ = writeln!(
        w,
        "## Shard scaling: mudshard with 1 shard and with 2 shards\n"
    );
    if !results.options.scaling {
        let _ = writeln!(
            w,
            "Not run (`--no-scaling`); a figure below is there only when the suite's own \
             mudshard run had that many shards.\n"
        );
    }
    let layouts = match &results.options.split {
        None => "1 shard and with 2 shards, neither pinned (loadgen shares every core with \
                 them)"
            .to_string(),
        Some(_) => SCALING_SHARDS
            .iter()
            .filter_map(|k| Layout::of(Variant::MudshardShards(*k), results.options))
            .map(|l| l.describe())
            .collect::<Vec<_>>()
            .join(", and with "),
    };
    let rounds = if results.options.scaling && results.options.scaling_rounds >= 2 {
        let (first, second, again) = match results.options.shards {
            2 => ("2", "1", "the 1-shard run"),
            _ => ("1", "2", "the 2-shard run"),
        };
        format!(
            " Then both run again, {again} first, so that the runs go {first}, {second}, \
             {second}, {first} shards: a drift of the machine's speed over the four weighs on \
             both alike. Each cell is the mean of its two runs, the runs in brackets, in the \
             order they ran; the ratios are of the means."
        )
    } else {
        String::new()
    };
    let reused = match results.options.shards {
        _ if !results.options.scaling => String::new(),
        1 => "The 1-shard run is the scenario's own mudshard run above; the 2-shard run \
              comes right after it."
            .to_string(),
        2 => "The 2-shard run is the scenario's own mudshard run above; the 1-shard run \
              comes right after it."
            .to_string(),
        n => format!(
            "Both are runs of their own, right after the scenario's own mudshard run \
             ({n} shards)."
        ),
    };
    let _ = writeln!(
        w,
        "The same load at each scenario's main rate (not the ladder), against mudshard with \
         {layouts}, within the same run of the suite. {reused}{rounds} Server CPU per command is the \
         server's CPU time in the measured window over the commands sent in it (rtt, walk); \
         for chat, per delivered message. ratio = 2 shards / 1 shard (↓: lower is better).\n",
    );
    let _ = writeln!(
        w,
        "| scenario | rate (/s) | server CPU per | 1 shard (µs) | 2 shards (µs) | ratio ↓ | \
         p99 | 1 shard (ms) | 2 shards (ms) | ratio ↓ |\n\
         |---|---:|---|---:|---:|---:|---|---:|---:|---:|"
    );
    let mut notes = Vec::new();
    for row in rows {
        let (unit, latency) = per_what(&row.scenario);
        table_row(&mut w, row, unit, latency);
        for (shards, side) in [(1, &row.one), (2, &row.two)] {
            let label = format!("{}, {shards} shard(s)", row.scenario);
            if let Err(why) = side {
                notes.push(format!("* {label}: {why}"));
                continue;
            }
            // The suite's own run has its notes in the scenario's section.
            let extra = results
                .main(&row.scenario, Variant::MudshardShards(shards))
                .filter(|_| shards != results.options.shards);
            let again = results.again_with_shards(&row.scenario, shards);
            for (record, round) in [(extra, ""), (again, ", second round")] {
                let Some(record) = record else { continue };
                let n = super::report::scenario::notes(record);
                if !n.is_empty() {
                    notes.push(format!("* {label}{round}: {}", n.join("; ")));
                }
            }
        }
    }
    let kept = kept_row(results, rows);
    if let Some(kept) = &kept {
        table_row(&mut w, kept, "command", "reply");
        match &kept.two {
            Err(why) => notes.push(format!("* {KEPT_ROW}, {KEPT_SHARDS} shards: {why}")),
            Ok(_) => {
                if let Some(record) = results.kept(KEPT_SCENARIO, KEPT_SHARDS) {
                    let n = super::report::scenario::notes(record);
                    if !n.is_empty() {
                        notes.push(format!(
                            "* {KEPT_ROW}, {KEPT_SHARDS} shards: {}",
                            n.join("; ")
                        ));
                    }
                }
            }
        }
    }
    let runtime = runtime_row(results);
    let walk_floor = walk_floor_rows(results);
    for echo in [floor, runtime.as_ref()]
        .into_iter()
        .flatten()
        .chain(walk_floor.iter())
    {
        table_row(&mut w, echo, "echo request", "reply");
        for (threads, side) in [(1, &echo.one), (2, &echo.two)] {
            let label = &echo.scenario;
            match side {
                Err(why) => notes.push(format!("* {label}, {threads} thread(s): {why}")),
                Ok(ShardFigures {
                    problem: Some(p), ..
                }) => notes.push(format!("* {label}, {threads} thread(s): {p}")),
                Ok(_) => {}
            }
        }
    }
    let _ = writeln!(w);
    if floor.is_some() {
        let _ = writeln!(
            w,
            "The {FLOOR_ROW:?} row has no server: `floor --rtt` in rtt's shape with 1 and with \
             2 sleeping echo threads (the \"1 shard\" and \"2 shards\" columns), laid out as \
             mudshard and loadgen are{}, its CPU the echo threads' summed over the requests. \
             Its ratio is what this machine charges for two threads that sleep and wake apart \
             instead of one, with no server.{}\n",
            if results.options.split.is_some() {
                " (echo threads on the servers' cores, the client on loadgen's first)"
            } else {
                " (nothing pinned)"
            },
            if runtime.is_some() {
                format!(
                    " The {RUNTIME_ROW:?} row is the same echo with each thread a glommio \
                     executor set up as a mudshard shard is (`--echo-runtime glommio`): what \
                     the runtime mudshard is built on charges, per request and for a second \
                     executor, before any of mudshard's own work."
                )
            } else {
                String::new()
            }
        );
    }
    if !walk_floor.is_empty() {
        let _ = writeln!(
            w,
            "The {WALK_FLOOR_ROW:?} and {WALK_CROSS_ROW:?} rows have no server either: \
             `floor --rtt` in walk's shape (its players as connections, its rate, its sends \
             ahead), laid out as the servers are, with each request costing the echo thread \
             that owns it {} µs of CPU in a busy loop (`--work-us`, chosen so that the echo \
             with 1 thread spends about what walk's 1 shard spends per move on this machine), \
             so that the echo threads are about as busy, and sleep about as often, as the \
             shards. The first row's 2 threads each answer their own \
             connections; in the second (`--cross`) a request read on a connection the other \
             thread owns (half of them, as half of a 2-shard host's moves are read on the \
             shard that does not own the room) goes to that thread and back before it is \
             answered, each hand-over ringing the other thread only if it sleeps, as \
             mudshard's inboxes do. Their \"1 shard\" column is the same 1-thread run. The \
             second row's ratio is what this machine charges a server of walk's weight for a \
             second shard and its crossings, with nothing else in the way; it bounds walk's \
             2-vs-1 lines (\"Targets\") only if the echo's 1-thread figure is within \
             {}× either way of walk's 1-shard one.\n",
            super::format::step(super::floor::WALK_WORK_US),
            super::targets::WALK_WEIGHT_MATCH
        );
    }
    if kept.is_some() {
        let _ = writeln!(
            w,
            "The {KEPT_ROW:?} row is walk once more with {KEPT_SHARDS} shards, run once \
             after the rows above, with `loadgen walk --keep-to-shard`: each walker is placed \
             in a room its connection's shard owns and steps back after a move into another \
             shard's room, so that most moves are handled where they are read, as they would \
             be if sessions moved to the shard of their room. Its \"1 shard\" figures are \
             walk's. Its ratio is what walk's 2-vs-1 would be without most of its crossings \
             (but with the kept walkers' own: a move over the border and the step back).\n"
        );
    }
    for note in &notes {
        let _ = writeln!(w, "{note}");
    }
    if !notes.is_empty() {
        let _ = writeln!(w);
    }
    w
}

fn table_row(w: &mut String, row: &ScalingRow, unit: &str, latency: &str) {
    let (cpu_ratio, p99_ratio) = row.ratios();
    let x = |r: Option<f64>| r.map_or_else(|| "—".into(), |r| format!("{r:.2}×"));
    let _ = writeln!(
        w,
        "| {} | {} | {unit} | {} | {} | {} | {latency} | {} | {} | {} |",
        row.scenario,
        opt(row.rate),
        cell(&row.one, |f| f.cpu_us, opt),
        cell(&row.two, |f| f.cpu_us, opt),
        x(cpu_ratio),
        cell(&row.one, |f| f.p99_us, |v| opt(ms(v))),
        cell(&row.two, |f| f.p99_us, |v| opt(ms(v))),
        x(p99_ratio),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(cpu_s: f64, sent: u64, p99_us: u64, per_msg: f64) -> Value {
        json!({
            "ok": true,
            "rate": {"held": true},
            "server": {"cpu_s": cpu_s, "cpu_us_per_msg": per_msg},
            "counts": {"sent": sent},
            "latency_us": {
                "reply": {"p99_us": p99_us},
                "delivery": {"p99_us": p99_us * 2},
            },
        })
    }

    #[test]
    fn rtt_and_walk_count_cpu_per_command_and_chat_per_delivery() {
        let r = report(6.0, 200_000, 1800, 2.0);
        let rtt = figures("rtt", &r);
        assert_eq!(rtt.cpu_us, Some(30.0));
        assert_eq!(rtt.p99_us, Some(1800.0));
        let chat = figures("chat", &r);
        assert_eq!(chat.cpu_us, Some(2.0));
        assert_eq!(chat.p99_us, Some(3600.0));
        assert_eq!(chat.problem, None);
        let failed = json!({"ok": false, "rate": {"held": true}});
        assert!(figures("rtt", &failed).problem.is_some());
    }

    #[test]
    fn the_floor_echo_counts_its_cpu_per_request_and_flags_unanswered_requests() {
        let r = json!({
            "measured": 100, "answered": 100,
            "echo_us_per_request": 24.5,
            "latency_us": {"p99": 900},
        });
        let f = echo_figures(&r);
        assert_eq!(
            (f.cpu_us, f.p99_us, f.problem),
            (Some(24.5), Some(900.0), None)
        );
        let lossy = json!({"measured": 100, "answered": 98});
        assert_eq!(
            echo_figures(&lossy).problem.as_deref(),
            Some("2 of 100 requests unanswered")
        );
    }

    #[test]
    fn two_rounds_are_averaged_figure_by_figure_and_keep_each_round() {
        let a = figures("rtt", &report(6.0, 200_000, 2000, 0.0));
        let b = figures("rtt", &report(7.0, 200_000, 1000, 0.0));
        let mean = ShardFigures::mean_of(vec![a.clone(), b]);
        assert_eq!(mean.cpu_us, Some(32.5));
        assert_eq!(mean.p99_us, Some(1500.0));
        assert_eq!(
            mean.rounds,
            [(Some(30.0), Some(2000.0)), (Some(35.0), Some(1000.0))]
        );
        assert_eq!(mean.problem, None);
        assert_eq!(
            ShardFigures::mean_of(vec![a.clone()]),
            a,
            "one run is itself"
        );
        let failed = figures("rtt", &json!({"ok": false, "rate": {"held": true}}));
        let mean = ShardFigures::mean_of(vec![a, failed]);
        assert_eq!(mean.cpu_us, Some(30.0), "over the runs that have a figure");
        assert!(mean.problem.expect("a problem").starts_with("round 2: "));
        let row = ScalingRow {
            scenario: "rtt".into(),
            rate: Some(100.0),
            one: Ok(ShardFigures::mean_of(vec![
                figures("rtt", &report(6.0, 200_000, 2000, 0.0)),
                figures("rtt", &report(7.0, 200_000, 1000, 0.0)),
            ])),
            two: Ok(figures("rtt", &report(6.5, 200_000, 1000, 0.0))),
        };
        let mut w = String::new();
        table_row(&mut w, &row, "command", "reply");
        assert_eq!(
            w.trim_end(),
            "| rtt | 100 | command | 32.5 (30.0, 35.0) | 32.5 | 1.00× | reply | 1.50 (2, 1) | 1 \
             | 0.67× |"
        );
    }

    #[test]
    fn the_ratios_are_two_shards_over_one() {
        let row = ScalingRow {
            scenario: "rtt".into(),
            rate: Some(20_000.0),
            one: Ok(figures("rtt", &report(6.0, 200_000, 2000, 0.0))),
            two: Ok(figures("rtt", &report(9.0, 200_000, 1000, 0.0))),
        };
        let (cpu, p99) = row.ratios();
        assert!((cpu.expect("cpu") - 1.5).abs() < 1e-9);
        assert!((p99.expect("p99") - 0.5).abs() < 1e-9);
        let missing = ScalingRow {
            two: Err("no run".into()),
            ..row
        };
        assert_eq!(missing.ratios(), (None, None));
    }
}
