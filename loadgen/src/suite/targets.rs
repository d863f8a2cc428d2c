//! The targets table (issue 12): every target a ratio of two figures
//! measured in the same run, mudshard's against the machine's own floor,
//! against itself with another shard count, or against the baseline. Each
//! line says reached or not reached, or why it could not be judged.
//!
//! A line against the floor is judged against the floor run in the servers'
//! shape (as many echo threads as shards, laid out as the servers are; as
//! many connections as chat has players), and shows the older comparison
//! beside it, unjudged.

use super::format::{count, num, number};
use super::ladder::{Highest, LadderRatio};
use super::options::{Mode, Options};
use super::results::{cpu_us_per_command, problem, Results};
use super::scaling::ScalingRow;
use super::servers::Variant;
use serde_json::Value;
use std::fmt::Write as _;

/// Sessions the idle target is stated at.
pub const IDLE_SESSIONS: f64 = 15_000.0;
/// The idle target: bytes of server memory per session once purged.
pub const IDLE_BYTES_MAX: f64 = 3.0 * 1024.0;
/// The scaling targets: 2 shards over 1 shard.
pub const SCALING_CPU_RATIO_MAX: f64 = 1.15;
pub const SCALING_P99_RATIO_MAX: f64 = 1.0;
/// chat's CPU per delivery over the floor's sender CPU per single send.
pub const CHAT_CPU_FLOOR_RATIO_MAX: f64 = 1.25;
/// mudshard's highest held chat rate over the baseline's.
pub const LADDER_RATIO_SPLIT_MIN: f64 = 2.0;
pub const LADDER_RATIO_SHARED_MIN: f64 = 1.5;
/// rtt against the floor's echo: p99 over the polling echo's, CPU over
/// the sleeping echo's.
pub const RTT_P99_FLOOR_RATIO_MAX: f64 = 1.5;
pub const RTT_CPU_FLOOR_RATIO_MAX: f64 = 1.2;

/// A figure, or why it was not measured.
pub type Measured<T> = Result<T, String>;

/// One side of a ratio: its value, how the report writes it, and what
/// makes its run unfit to reach a target (a failed run, a rate not held).
#[derive(Debug, Clone, PartialEq)]
pub struct Operand {
    pub value: f64,
    pub text: String,
    pub problem: Option<String>,
}

/// A line's status.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Reached,
    /// Not reached; what made the run unfit, if something did.
    NotReached(Option<String>),
    /// Not reached, and shown out of reach by figures of the same run:
    /// even a server that added nothing to what it stands on would miss
    /// the target. The text says which figure shows it.
    OutOfReach(String),
    NotMeasured(String),
    NotJudged(String),
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetLine {
    pub figure: String,
    pub target: String,
    pub measured: String,
    pub verdict: Verdict,
}

/// Whether this run judges the targets, and which of the core layouts.
#[derive(Debug, Clone, Copy)]
pub struct Judging {
    pub smoke: bool,
    pub split: bool,
}

/// The idle figures.
#[derive(Debug, Clone, PartialEq)]
pub struct IdleFigures {
    /// Sessions the scenario asked for, and those established (purged run).
    pub players: f64,
    pub established: f64,
    pub unpurged_bytes: Option<f64>,
    pub purged_bytes: Measured<f64>,
    pub problem: Option<String>,
}

/// mudshard's and the baseline's highest held chat rates.
#[derive(Debug, Clone, PartialEq)]
pub struct LadderFigures {
    pub mudshard: Option<f64>,
    pub baseline: Option<f64>,
    pub ratio: LadderRatio,
    /// The floor's chat relay (`None`: it did not climb): its highest held
    /// delivered rate, and that over the baseline's.
    pub relay: Option<(Option<f64>, LadderRatio)>,
}

/// The floor's crossing echo of walk's weight, 2 threads over 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WalkCross {
    /// CPU per request, 2 crossing threads over 1.
    pub cpu: f64,
    /// p99, 2 crossing threads over 1.
    pub p99: f64,
    /// The 1-thread echo's CPU per request, µs: its weight, held against
    /// walk's CPU per command with 1 shard.
    pub one_us: f64,
}

/// How far the 1-thread echo's CPU per request may be from walk's 1-shard
/// CPU per command, either way, for the echo to count as of walk's weight.
/// A crossing costs about the same µs whatever the work around it, so its
/// ratio falls as the work grows: an echo much heavier than walk would
/// promise walk a ratio it cannot have, one much lighter would excuse too
/// much.
pub const WALK_WEIGHT_MATCH: f64 = 1.25;

/// Every input of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetFigures {
    /// rtt and walk (chat is in the scaling table, not among these targets).
    pub scaling: Vec<ScalingRow>,
    /// The floor echo's own CPU per request, 2 threads over 1, in the
    /// servers' layout: shown beside the scaling CPU lines.
    pub floor_echo_scaling: Measured<f64>,
    /// The same for the echo as glommio executors: the runtime's own.
    pub runtime_echo_scaling: Measured<f64>,
    /// walk's CPU per command with its walkers kept to their connection's
    /// shard, over 1 shard's (`None`: not run): shown beside walk's line.
    pub walk_kept_scaling: Option<Measured<f64>>,
    /// The floor's echo in walk's shape and weight, 2 threads crossing over
    /// 1 thread (`None`: not run). Shown beside walk's lines; when its
    /// weight matches walk's, its ratios are the best a server of walk's
    /// weight whose shards cross as walk's do could read.
    pub walk_cross_floor_scaling: Option<Measured<WalkCross>>,
    pub chat_cpu_at_highest: Measured<Operand>,
    /// The single send over 1,000 connections (shown beside), and over
    /// chat's players (judged).
    pub floor_single_send: Measured<Operand>,
    pub floor_single_send_chat_shape: Measured<Operand>,
    /// The single send flat out (on the servers' core with
    /// --split-cores), msgs/s: over 1,000 connections (shown beside), and
    /// over chat's players, the kernel's own ceiling for the ladder (judged).
    pub floor_single_max: Measured<Operand>,
    pub floor_single_max_chat_shape: Measured<Operand>,
    /// With cores shared, the most deliveries a second the whole machine
    /// could carry with a server that costs only the flat-out send in
    /// chat's shape and
    /// loadgen beside it costing what it did at mudshard's highest held
    /// step: cores / (the two CPU costs of a delivery), msgs/s.
    pub chat_machine_ceiling: Measured<Operand>,
    pub chat_ladder: Measured<LadderFigures>,
    pub rtt_p99: Measured<Operand>,
    pub floor_spin_p99: Measured<Operand>,
    /// The sleeping echo's p99 with as many threads as the rtt run has
    /// shards, in its layout: what a server that sleeps between requests,
    /// adding nothing, shows against the polling floor.
    pub floor_echo_p99_shape: Measured<Operand>,
    /// The same echo as glommio executors, as many as the rtt run's shards:
    /// what a server on mudshard's runtime, sleeping as a shard does and
    /// adding nothing, shows against the polling floor.
    pub runtime_echo_p99_shape: Measured<Operand>,
    pub rtt_cpu: Measured<Operand>,
    /// The sleeping echo: one thread pinned (shown beside), and as many
    /// threads as mudshard's rtt run has shards in its layout (judged).
    pub floor_echo_cpu: Measured<Operand>,
    pub floor_echo_cpu_shape: Measured<Operand>,
    /// The echo as glommio executors, as many as the rtt run's shards
    /// (shown beside: the runtime alone).
    pub runtime_echo_cpu_shape: Measured<Operand>,
    pub idle: Measured<IdleFigures>,
}

fn reached_if(ok: bool, problems: &[&Option<String>]) -> Verdict {
    let why: Vec<&str> = problems.iter().filter_map(|p| p.as_deref()).collect();
    if !why.is_empty() {
        return Verdict::NotReached(Some(why.join("; ")));
    }
    if ok {
        Verdict::Reached
    } else {
        Verdict::NotReached(None)
    }
}

/// `line`, not reached, turned out of reach when `best` (the ratio a server
/// that added nothing to what it stands on would measure, and what it is)
/// is above the target's `limit` too.
fn out_of_reach(mut line: TargetLine, best: Option<(f64, String)>, limit: f64) -> TargetLine {
    let Some((best, what)) = best else {
        return line;
    };
    if best > limit && line.verdict == Verdict::NotReached(None) {
        line.verdict = Verdict::OutOfReach(format!("{what}: {}", judged(best, limit)));
    }
    line
}

/// `r` as a ratio judged against `limit`: to two places, or three when two
/// would show it equal to the limit it is not (1.504× against 1.5 reads
/// 1.504×, not 1.50×).
fn judged(r: f64, limit: f64) -> String {
    let two = format!("{r:.2}");
    if r != limit && two == format!("{limit:.2}") {
        format!("{r:.3}×")
    } else {
        format!("{two}×")
    }
}

/// Why the polling floor is no floor in this run, if it is not. It never
/// sleeps and has a CPU of its own, so its p99 is below that of every echo
/// of the run that sleeps (the one run just before it in the same layout,
/// those in the servers' shape, those on glommio), unless the machine took
/// its CPU away during its window; then a server measured against it would
/// look better than it is.
pub fn disturbed_polling(floor: &super::results::FloorReports) -> Option<String> {
    let p99 = |r: &serde_json::Value| num(r, "latency_us.p99");
    let polling = p99(floor.rtt_polling.as_ref()?)?;
    let (sleeping, which) = floor
        .rtt_sleeping
        .iter()
        .map(|r| (r, "the sleeping echo beside it".to_string()))
        .chain(floor.rtt_shape.iter().map(|(k, r)| {
            (
                r,
                format!("the sleeping echo with {k} thread(s) in the servers' layout"),
            )
        }))
        .chain(
            floor
                .rtt_glommio
                .iter()
                .map(|(k, r)| (r, format!("the sleeping echo as {k} glommio executor(s)"))),
        )
        .filter_map(|(r, which)| Some((p99(r)?, which)))
        .min_by(|a, b| a.0.total_cmp(&b.0))?;
    // Made twice when its first window was disturbed: say so.
    let twice = if floor.rtt_polling_first.is_some() {
        " in both of its attempts"
    } else {
        ""
    };
    (polling >= sleeping).then(|| {
        format!(
            "the polling floor's window was disturbed{twice}: its p99, {} ms, is no lower than \
             that of {which}, {} ms",
            number(polling / 1000.0),
            number(sleeping / 1000.0)
        )
    })
}

/// A line that compares `a / b` with `limit` (at most).
fn ratio_line(
    figure: &str,
    target: &str,
    limit: f64,
    a: &Measured<Operand>,
    b: &Measured<Operand>,
    judging: Judging,
) -> TargetLine {
    let (measured, verdict) = match (a, b) {
        (Err(why), _) | (_, Err(why)) => {
            let shown = [a, b]
                .iter()
                .map(|o| {
                    o.as_ref()
                        .map_or_else(|_| "—".to_string(), |o| o.text.clone())
                })
                .collect::<Vec<_>>()
                .join(" / ");
            (shown, Verdict::NotMeasured(why.clone()))
        }
        (Ok(a), Ok(b)) if b.value <= 0.0 => (
            format!("{} / {}", a.text, b.text),
            Verdict::NotMeasured("the divisor is zero".into()),
        ),
        (Ok(a), Ok(b)) => {
            let r = a.value / b.value;
            (
                format!("{} / {} = **{}**", a.text, b.text, judged(r, limit)),
                reached_if(r <= limit, &[&a.problem, &b.problem]),
            )
        }
    };
    TargetLine {
        figure: figure.into(),
        target: target.into(),
        measured,
        verdict: smoke(verdict, judging),
    }
}

/// `line` with `a / b` after it, unjudged: the comparison the line made
/// before it was judged in the servers' shape.
fn beside(mut line: TargetLine, a: &Measured<Operand>, b: &Measured<Operand>) -> TargetLine {
    if let (Ok(a), Ok(b)) = (a, b) {
        if b.value > 0.0 {
            let r = a.value / b.value;
            line.measured += &format!(" — against {}: {r:.2}×", b.text);
        }
    }
    line
}

/// A scaling CPU line with the floor's own 2-vs-1 ratio after it, and the
/// runtime's.
fn beside_floor_scaling(
    mut line: TargetLine,
    floor: &Measured<f64>,
    runtime: &Measured<f64>,
) -> TargetLine {
    let own = |m: &Measured<f64>| match m {
        Ok(r) => format!("{r:.2}×"),
        Err(why) => format!("not measured: {why}"),
    };
    line.measured += &format!(
        " (the machine's own, floor echo 2 vs 1 threads: {}; the runtime's own, \
         glommio echo 2 vs 1 executors: {})",
        own(floor),
        own(runtime)
    );
    line
}

/// What the floor's crossing echo of walk's weight is called where it bounds
/// walk's lines.
const WALK_CROSS_BEST: &str =
    "an echo of walk's weight whose 2 threads cross as walk's shards do, adding nothing, 2 vs 1 threads";

/// The floor's crossing echo, if its weight matches walk's: its 1 thread's
/// CPU per request within [`WALK_WEIGHT_MATCH`] of walk's 1 shard's.
fn walk_weight_matched(cross: &WalkCross, walk_one_us: Option<f64>) -> bool {
    walk_one_us.is_some_and(|w| {
        let r = cross.one_us / w;
        (1.0 / WALK_WEIGHT_MATCH..=WALK_WEIGHT_MATCH).contains(&r)
    })
}

/// Walk's line (`row` is walk's) with the floor's crossing echo of its
/// weight beside it; returns that echo's ratio, `pick`ed, as the line's
/// bound when its weight matches walk's. Any other line is left alone.
fn beside_walk_cross(
    line: &mut TargetLine,
    f: &TargetFigures,
    row: &ScalingRow,
    pick: fn(&WalkCross) -> f64,
) -> Option<(f64, String)> {
    if row.scenario != super::plan::KEPT_SCENARIO {
        return None;
    }
    let cross = f.walk_cross_floor_scaling.as_ref()?;
    let walk_one = row.one.as_ref().ok().and_then(|o| o.cpu_us);
    let matched = cross
        .as_ref()
        .is_ok_and(|c| walk_weight_matched(c, walk_one));
    line.measured += &walk_cross_text(cross, matched, walk_one, pick);
    match cross {
        Ok(c) if matched => Some((pick(c), WALK_CROSS_BEST.to_string())),
        _ => None,
    }
}

/// What stands beside walk's line of the floor's crossing echo.
fn walk_cross_text(
    cross: &Measured<WalkCross>,
    matched: bool,
    walk_one_us: Option<f64>,
    pick: fn(&WalkCross) -> f64,
) -> String {
    match cross {
        Ok(c) if matched => format!(
            " (the machine's own for a server of walk's weight whose shards cross as walk's \
             do, the floor's crossing echo 2 vs 1 threads: {:.2}×)",
            pick(c)
        ),
        Ok(c) => format!(
            " (the floor's crossing echo 2 vs 1 threads: {:.2}×, not of walk's weight: its 1 \
             thread spends {} µs per request, walk's 1 shard {} per command; not a bound)",
            pick(c),
            number(c.one_us),
            walk_one_us.map_or_else(
                || "an unmeasured figure".to_string(),
                |w| format!("{} µs", number(w))
            )
        ),
        Err(why) => format!(" (the floor's crossing echo of walk's weight: not measured: {why})"),
    }
}

/// A smoke run judges nothing, but still says what it could not measure.
fn smoke(verdict: Verdict, judging: Judging) -> Verdict {
    match verdict {
        Verdict::NotMeasured(why) if judging.smoke => {
            Verdict::NotJudged(format!("smoke run; not measured: {why}"))
        }
        _ if judging.smoke => Verdict::NotJudged("smoke run".into()),
        v => v,
    }
}

fn scaling_operand(
    row: &ScalingRow,
    shards: usize,
    pick: fn(&super::scaling::ShardFigures) -> Option<f64>,
    unit: &str,
    scale: f64,
) -> Measured<Operand> {
    let side = if shards == 1 { &row.one } else { &row.two };
    let f = side
        .as_ref()
        .map_err(|why| format!("{}: {why}", row.scenario))?;
    let value = pick(f).ok_or_else(|| {
        format!(
            "{}: the {shards}-shard run's report lacks the figure",
            row.scenario
        )
    })?;
    Ok(Operand {
        value,
        text: format!("{} {unit}", number(value / scale)),
        problem: f
            .problem
            .as_ref()
            .map(|p| format!("{shards} shard(s): {p}")),
    })
}

fn ladder_line(
    figure: &str,
    target: &str,
    min: f64,
    ladder: &Measured<LadderFigures>,
    judged_here: Result<(), String>,
    judging: Judging,
) -> TargetLine {
    let (measured, verdict) = match ladder {
        Err(why) => ("—".to_string(), Verdict::NotMeasured(why.clone())),
        Ok(l) => {
            let rates = format!(
                "mudshard {} / baseline {} msgs/s",
                l.mudshard.map_or_else(|| "none".into(), number),
                l.baseline.map_or_else(|| "none".into(), number)
            );
            match &l.ratio {
                LadderRatio::Exact(r) => {
                    (format!("{rates} = **{r:.2}×**"), reached_if(*r >= min, &[]))
                }
                LadderRatio::AtLeast(r) if *r >= min => {
                    (format!("{rates} = **≥ {r:.2}×**"), Verdict::Reached)
                }
                LadderRatio::AtLeast(r) => (
                    format!("{rates} = ≥ {r:.2}×"),
                    Verdict::NotMeasured(
                        "mudshard held the ladder's top step, so its ceiling is higher: \
                         extend `ladder`"
                            .into(),
                    ),
                ),
                LadderRatio::AtMost(r) if *r < min => (
                    format!("{rates} = **≤ {r:.2}×**"),
                    Verdict::NotReached(None),
                ),
                LadderRatio::AtMost(r) => (
                    format!("{rates} = ≤ {r:.2}×"),
                    Verdict::NotMeasured(
                        "the baseline held the ladder's top step, so its ceiling is higher: \
                         extend `ladder`"
                            .into(),
                    ),
                ),
                LadderRatio::Unknown(why) => (rates, Verdict::NotMeasured(why.clone())),
            }
        }
    };
    let verdict = match judged_here {
        Err(why) => Verdict::NotJudged(why),
        Ok(()) => smoke(verdict, judging),
    };
    TargetLine {
        figure: figure.into(),
        target: target.into(),
        measured,
        verdict,
    }
}

fn idle_line(idle: &Measured<IdleFigures>, judging: Judging) -> TargetLine {
    let figure = "idle: memory per session at 15,000 sessions".to_string();
    let target = "≤ 3 KiB (3,072 B), read after mimalloc has purged \
                  (`MIMALLOC_PURGE_DELAY=0`); unpurged shown beside it"
        .to_string();
    let (measured, verdict) = match idle {
        Err(why) => ("—".to_string(), Verdict::NotMeasured(why.clone())),
        Ok(i) => {
            let unpurged = i
                .unpurged_bytes
                .map_or_else(|| "—".to_string(), |b| format!("{} B", number(b)));
            match &i.purged_bytes {
                Err(why) => (
                    format!("purged —, unpurged {unpurged}"),
                    Verdict::NotMeasured(why.clone()),
                ),
                Ok(purged) => {
                    let text = format!(
                        "purged **{} B**, unpurged {unpurged}; {} of {} sessions",
                        number(*purged),
                        number(i.established),
                        number(i.players)
                    );
                    let verdict = if i.players < IDLE_SESSIONS {
                        Verdict::NotMeasured(format!(
                            "the scenario holds {} sessions, not 15,000",
                            number(i.players)
                        ))
                    } else if i.established < i.players {
                        Verdict::NotReached(Some(format!(
                            "only {} of {} sessions were established",
                            number(i.established),
                            number(i.players)
                        )))
                    } else {
                        reached_if(*purged <= IDLE_BYTES_MAX, &[&i.problem])
                    };
                    (text, verdict)
                }
            }
        }
    };
    TargetLine {
        figure,
        target,
        measured,
        verdict: smoke(verdict, judging),
    }
}

/// The table's lines, in the order.
pub fn lines(f: &TargetFigures, judging: Judging) -> Vec<TargetLine> {
    let mut out = Vec::new();
    for row in &f.scaling {
        let line = ratio_line(
            &format!(
                "{}, 2 shards vs 1 shard: server CPU per command",
                row.scenario
            ),
            "≤ 1.15×",
            SCALING_CPU_RATIO_MAX,
            &scaling_operand(row, 2, |s| s.cpu_us, "µs", 1.0),
            &scaling_operand(row, 1, |s| s.cpu_us, "µs", 1.0),
            judging,
        );
        let mut line = beside_floor_scaling(line, &f.floor_echo_scaling, &f.runtime_echo_scaling);
        if row.scenario == super::plan::KEPT_SCENARIO {
            if let Some(kept) = &f.walk_kept_scaling {
                line.measured += &match kept {
                    Ok(r) => format!(" (its walkers kept to their connection's shard: {r:.2}×)"),
                    Err(why) => format!(
                        " (its walkers kept to their connection's shard: not measured: {why})"
                    ),
                };
            }
        }
        // Two executors that serve nothing but an echo cost this much more
        // than one: no server built on them can scale better.
        let runtime = f.runtime_echo_scaling.as_ref().ok().map(|r| {
            (
                *r,
                "the runtime alone, glommio echo 2 vs 1 executors".to_string(),
            )
        });
        // An echo of walk's weight whose threads cross as walk's shards do,
        // with nothing else in it, is walk's bound in its place: the glommio
        // echo's ratio is of a request of a few µs, whose extra µs are a
        // small share of one of walk's weight.
        let best = beside_walk_cross(&mut line, f, row, |c| c.cpu).or(runtime);
        out.push(out_of_reach(line, best, SCALING_CPU_RATIO_MAX));
    }
    for row in &f.scaling {
        let mut line = ratio_line(
            &format!("{}, 2 shards vs 1 shard: p99", row.scenario),
            "no worse (≤ 1.00×)",
            SCALING_P99_RATIO_MAX,
            &scaling_operand(row, 2, |s| s.p99_us, "ms", 1000.0),
            &scaling_operand(row, 1, |s| s.p99_us, "ms", 1000.0),
            judging,
        );
        let best = beside_walk_cross(&mut line, f, row, |c| c.p99);
        out.push(out_of_reach(line, best, SCALING_P99_RATIO_MAX));
    }
    let chat = ratio_line(
        "chat: server CPU per delivered message at the ladder's highest held rate",
        "≤ 1.25× floor's sender CPU per single send",
        CHAT_CPU_FLOOR_RATIO_MAX,
        &f.chat_cpu_at_highest,
        &f.floor_single_send_chat_shape,
        judging,
    );
    out.push(beside(chat, &f.chat_cpu_at_highest, &f.floor_single_send));
    let split = ladder_line(
        "chat ladder: highest held rate vs baseline, split cores",
        "≥ 2×",
        LADDER_RATIO_SPLIT_MIN,
        &f.chat_ladder,
        if judging.split {
            Ok(())
        } else {
            Err("judged only in a --split-cores run".into())
        },
        judging,
    );
    let split = against_ceiling(
        split,
        &f.chat_ladder,
        &f.floor_single_max_chat_shape,
        LADDER_RATIO_SPLIT_MIN,
        &KERNEL_CEILING,
    );
    let split = against_relay(split, &f.chat_ladder);
    out.push(ceiling_beside(
        split,
        &f.chat_ladder,
        &f.floor_single_max,
        LADDER_RATIO_SPLIT_MIN,
    ));
    let shared = ladder_line(
        "chat ladder: highest held rate vs baseline, shared cores",
        "≥ 1.5×",
        LADDER_RATIO_SHARED_MIN,
        &f.chat_ladder,
        if judging.split {
            Err("judged only without --split-cores".into())
        } else {
            Ok(())
        },
        judging,
    );
    let shared = against_ceiling(
        shared,
        &f.chat_ladder,
        &f.floor_single_max_chat_shape,
        LADDER_RATIO_SHARED_MIN,
        &KERNEL_CEILING,
    );
    let shared = against_ceiling(
        shared,
        &f.chat_ladder,
        &f.chat_machine_ceiling,
        LADDER_RATIO_SHARED_MIN,
        &MACHINE_CEILING,
    );
    let shared = against_relay(shared, &f.chat_ladder);
    out.push(ceiling_beside(
        shared,
        &f.chat_ladder,
        &f.floor_single_max,
        LADDER_RATIO_SHARED_MIN,
    ));
    let rtt_p99 = ratio_line(
        "rtt: p99",
        "≤ 1.5× `floor --rtt --spin` p99",
        RTT_P99_FLOOR_RATIO_MAX,
        &f.rtt_p99,
        &f.floor_spin_p99,
        judging,
    );
    // The polling floor never sleeps and has a CPU of its own; an echo in
    // the server's shape that sleeps between requests, as a server sharing
    // its cores with loadgen must, with none of the server in it; and the
    // same echo on the runtime the server is built on. The higher of the
    // two is what a server standing on both could read at best.
    let best = [
        (
            &f.floor_echo_p99_shape,
            "an echo that sleeps, adding nothing",
        ),
        (
            &f.runtime_echo_p99_shape,
            "a glommio echo that sleeps, adding nothing",
        ),
    ]
    .into_iter()
    .filter_map(|(echo, what)| match (echo, &f.floor_spin_p99) {
        (Ok(echo), Ok(spin)) if spin.value > 0.0 => Some((
            echo.value / spin.value,
            format!("{what}, {} / {}", echo.text, spin.text),
        )),
        _ => None,
    })
    .max_by(|a, b| a.0.total_cmp(&b.0));
    out.push(out_of_reach(rtt_p99, best, RTT_P99_FLOOR_RATIO_MAX));
    let rtt_cpu = ratio_line(
        "rtt: server CPU per `look`",
        "≤ 1.2× floor's echo CPU per request",
        RTT_CPU_FLOOR_RATIO_MAX,
        &f.rtt_cpu,
        &f.floor_echo_cpu_shape,
        judging,
    );
    let rtt_cpu = beside(rtt_cpu, &f.rtt_cpu, &f.floor_echo_cpu);
    let rtt_cpu = beside(rtt_cpu, &f.rtt_cpu, &f.runtime_echo_cpu_shape);
    // The same echo on the runtime the server is built on, with none of the
    // server in it, against the judged echo.
    let best = match (&f.runtime_echo_cpu_shape, &f.floor_echo_cpu_shape) {
        (Ok(runtime), Ok(echo)) if echo.value > 0.0 => Some((
            runtime.value / echo.value,
            format!("the runtime alone, {} / {}", runtime.text, echo.text),
        )),
        _ => None,
    };
    out.push(out_of_reach(rtt_cpu, best, RTT_CPU_FLOOR_RATIO_MAX));
    out.push(idle_line(&f.idle, judging));
    out
}

/// A ceiling a ladder line is held against: how it is named beside the
/// line, and what holds a server under it.
struct Ceiling {
    name: &'static str,
    bound: &'static str,
}

/// The messages a second one thread sends over loopback, one `send` each,
/// flat out over as many connections as chat has players (the floor's
/// `single-max-chat-shape` run; with --split-cores on the servers' core, so
/// the sender's CPU is what runs out).
const KERNEL_CEILING: Ceiling = Ceiling {
    name: "the kernel's ceiling",
    bound: "a server that writes each delivery with one send holds at most the kernel's \
            ceiling",
};

/// With cores shared, loadgen's receive runs on the same cores as the
/// server: the machine's cores over the flat-out send's CPU plus
/// loadgen's CPU per delivery.
const MACHINE_CEILING: Ceiling = Ceiling {
    name: "the machine's ceiling with loadgen beside the server",
    bound: "a server that writes each delivery with one send, sharing the cores with \
            loadgen, holds at most the machine's ceiling",
};

/// A ladder line against a ceiling (`KERNEL_CEILING`, `MACHINE_CEILING`).
/// At the ladder's rates each connection gets about one event per 20 ms, so
/// a server writes each delivery with a send of its own and holds no more
/// than the ceiling; at it, the CPU is full, with no room for the server's
/// own work or for a latency bound. The line is out of reach when the
/// target asks the server to hold that much or more, unless a server on the
/// same ladder held more than the ceiling (run AQ: the relay held 175,000
/// msgs/s over a kernel's ceiling of 172,079), which then bounds nothing;
/// otherwise the share of the ceiling it asks for, and mudshard's, are
/// shown beside it.
fn against_ceiling(
    mut line: TargetLine,
    ladder: &Measured<LadderFigures>,
    ceiling: &Measured<Operand>,
    min: f64,
    kind: &Ceiling,
) -> TargetLine {
    let (Ok(ladder), Ok(ceiling)) = (ladder, ceiling) else {
        return line;
    };
    let Some(baseline) = ladder.baseline.filter(|_| ceiling.value > 0.0) else {
        return line;
    };
    let needed = min * baseline;
    let share = |rate: f64| 100.0 * rate / ceiling.value;
    let mut beside = format!(
        " ({}, {}: {min}× the baseline's rate is {} msgs/s, {:.0}% of it",
        kind.name,
        ceiling.text,
        number(needed),
        share(needed)
    );
    if let Some(held) = ladder.mudshard {
        let _ = write!(beside, "; mudshard held {:.0}%", share(held));
    }
    // A ceiling some server passed in this same run bounds nothing here:
    // the flat-out send it comes from was measured in other minutes of a
    // noisy machine, or the server spent less per delivery than one send.
    let passed = passed_by(ladder)
        .filter(|(_, held)| *held >= ceiling.value)
        .max_by(|a, b| a.1.total_cmp(&b.1));
    if let Some((who, held)) = passed {
        let _ = write!(
            beside,
            "; {who} held {:.0}% in this run, so it bounds nothing here",
            share(held)
        );
    }
    beside.push(')');
    line.measured += &beside;
    if needed >= ceiling.value && passed.is_none() && line.verdict == Verdict::NotReached(None) {
        line.verdict = Verdict::OutOfReach(format!(
            "{}, {}, and {min}× the baseline's rate is {:.0}% of it",
            kind.bound,
            ceiling.text,
            share(needed)
        ));
    }
    line
}

/// Each server's highest held rate on the ladder, named: mudshard, the
/// baseline and the floor's chat relay, as far as each held a step.
fn passed_by(ladder: &LadderFigures) -> impl Iterator<Item = (&'static str, f64)> {
    let relay = ladder.relay.as_ref().and_then(|(held, _)| *held);
    [
        ("mudshard", ladder.mudshard),
        ("the baseline", ladder.baseline),
        (RELAY, relay),
    ]
    .into_iter()
    .filter_map(|(who, held)| Some((who, held?)))
}

/// A ladder line beside the floor's chat relay's own climb: a server that
/// does nothing but one `send` per delivery, with no hop between threads,
/// run as the two servers are, on the same cores, in the same run. Its
/// highest held rate and mudshard's share of it are shown beside; it
/// judges nothing. It is no ceiling: a server can spend less per delivery
/// than it does (run AO: mudshard, writing each session's queued frames in
/// one pass per executor turn, held 1,875 says/s where the relay held
/// 1,750), so a line it misses is not thereby out of reach.
fn against_relay(mut line: TargetLine, ladder: &Measured<LadderFigures>) -> TargetLine {
    let Ok(LadderFigures {
        mudshard,
        relay: Some((relay, relay_ratio)),
        ..
    }) = ladder
    else {
        return line;
    };
    let Some(relay) = relay.filter(|r| *r > 0.0) else {
        let _ = write!(line.measured, " ({RELAY} sustained no step)");
        return line;
    };
    let best = match relay_ratio {
        LadderRatio::Exact(r) => Some(format!("{r:.2}×")),
        LadderRatio::AtMost(r) => Some(format!("≤ {r:.2}×")),
        LadderRatio::AtLeast(r) => {
            let _ = write!(
                line.measured,
                " ({RELAY}: ≥ {r:.2}×, its ceiling is past the ladder)"
            );
            None
        }
        LadderRatio::Unknown(_) => None,
    };
    let Some(ratio_text) = best else {
        return line;
    };
    let mut beside = format!(
        " ({RELAY} held {} msgs/s, {ratio_text} the baseline's",
        number(relay)
    );
    if let Some(m) = mudshard {
        let _ = write!(beside, "; mudshard held {:.0}% of it", 100.0 * m / relay);
    }
    beside.push(')');
    line.measured += &beside;
    line
}

/// How the relay is named in the ladder lines.
const RELAY: &str = "the floor's chat relay";

/// The older, smaller ceiling's share after "—", not judged: the flat-out
/// send over 1,000 connections, whose sockets' state fits in cache as
/// chat's 10,000 do not.
fn ceiling_beside(
    mut line: TargetLine,
    ladder: &Measured<LadderFigures>,
    ceiling: &Measured<Operand>,
    min: f64,
) -> TargetLine {
    if let (Ok(ladder), Ok(ceiling)) = (ladder, ceiling) {
        if let Some(baseline) = ladder.baseline.filter(|_| ceiling.value > 0.0) {
            let share = 100.0 * min * baseline / ceiling.value;
            let _ = write!(
                line.measured,
                " — against {}, {}: {share:.0}%",
                KERNEL_CEILING.name, ceiling.text
            );
        }
    }
    line
}

/// The table's inputs, from a finished run; `floor` is the scaling table's
/// floor row.
pub fn figures(
    results: &Results<'_>,
    scaling: &[ScalingRow],
    floor: Option<&ScalingRow>,
) -> TargetFigures {
    let ran = |s: &str| results.order.iter().any(|n| n == s);
    let not_run = |s: &str| format!("{s} was not run (--only)");
    let no_floor = |what: &str| {
        if results.options.floor {
            format!("the floor's {what} run failed or left no report")
        } else {
            "--no-floor".to_string()
        }
    };
    let floor_operand = |report: &Option<serde_json::Value>,
                         path: &str,
                         scale: f64,
                         unit: &str,
                         what: &str,
                         needs_rtt: bool|
     -> Measured<Operand> {
        if needs_rtt && !ran("rtt") {
            return Err(not_run("rtt"));
        }
        let value = report
            .as_ref()
            .and_then(|r| num(r, path))
            .ok_or_else(|| no_floor(what))?;
        Ok(Operand {
            value,
            text: format!("{} {unit} ({what})", number(value / scale)),
            problem: None,
        })
    };
    // mudshard's rtt run has the suite's shards: its floor has as many threads.
    let shards = results.options.shards;
    let echo_shape = format!(
        "`floor --rtt --echo-threads {shards}`, sleeping, {}",
        if results.options.split.is_some() {
            "on the servers' cores"
        } else {
            "unpinned"
        }
    );
    let rtt_main = || -> Measured<&serde_json::Value> {
        if !ran("rtt") {
            return Err(not_run("rtt"));
        }
        results
            .main("rtt", Variant::Mudshard)
            .and_then(|r| r.report.as_ref())
            .ok_or_else(|| "mudshard's rtt run left no report".to_string())
    };
    let rtt_operand = |value: Option<f64>, scale: f64, unit: &str, r: &serde_json::Value| {
        value
            .map(|v| Operand {
                value: v,
                text: format!("{} {unit}", number(v / scale)),
                problem: problem(r),
            })
            .ok_or_else(|| "mudshard's rtt report lacks the figure".to_string())
    };
    TargetFigures {
        scaling: scaling
            .iter()
            .filter(|r| r.scenario == "rtt" || r.scenario == "walk")
            .cloned()
            .collect(),
        floor_echo_scaling: if ran("rtt") {
            floor_echo_scaling(floor, &no_floor)
        } else {
            Err(not_run("rtt"))
        },
        walk_kept_scaling: super::scaling::kept_row(results, scaling).map(|row| {
            row.ratios().0.ok_or_else(|| match (&row.one, &row.two) {
                (Err(why), _) | (_, Err(why)) => why.clone(),
                _ => "a figure is missing".to_string(),
            })
        }),
        walk_cross_floor_scaling: super::scaling::walk_floor_rows(results)
            .into_iter()
            .find(|r| r.scenario == super::scaling::WALK_CROSS_ROW)
            .map(
                |row| match (row.ratios(), row.one.as_ref().ok().and_then(|o| o.cpu_us)) {
                    ((Some(cpu), Some(p99)), Some(one_us)) => Ok(WalkCross { cpu, p99, one_us }),
                    _ => Err(match (&row.one, &row.two) {
                        (Err(why), _) | (_, Err(why)) => why.clone(),
                        _ => "a figure is missing".to_string(),
                    }),
                },
            ),
        runtime_echo_scaling: if ran("rtt") {
            floor_echo_scaling(super::scaling::runtime_row(results).as_ref(), &no_floor)
        } else {
            Err(not_run("rtt"))
        },
        chat_cpu_at_highest: chat_cpu_at_highest(results),
        floor_single_send: floor_operand(
            &results.floor.single_paced,
            "sender_us_per_send",
            1.0,
            "µs",
            "one per send, paced 50,000/s",
            false,
        ),
        floor_single_send_chat_shape: floor_operand(
            &results.floor.single_paced_chat_shape,
            "sender_us_per_send",
            1.0,
            "µs",
            &send_what(
                "paced 50,000/s",
                results.floor.single_paced_chat_shape.as_ref(),
                false,
            ),
            false,
        ),
        floor_single_max: floor_operand(
            &results.floor.single_max,
            "messages_per_s",
            1.0,
            "msgs/s",
            &send_what("flat out", None, results.options.split.is_some()),
            false,
        ),
        floor_single_max_chat_shape: floor_operand(
            &results.floor.single_max_chat_shape,
            "messages_per_s",
            1.0,
            "msgs/s",
            &send_what(
                "flat out",
                results.floor.single_max_chat_shape.as_ref(),
                results.options.split.is_some(),
            ),
            false,
        ),
        chat_machine_ceiling: chat_machine_ceiling(results, &no_floor),
        chat_ladder: chat_ladder(results),
        rtt_p99: rtt_main()
            .and_then(|r| rtt_operand(num(r, "latency_us.reply.p99_us"), 1000.0, "ms", r)),
        floor_spin_p99: floor_operand(
            &results.floor.rtt_polling,
            "latency_us.p99",
            1000.0,
            "ms",
            "`floor --rtt --spin`",
            true,
        )
        .map(|mut spin| {
            spin.problem = disturbed_polling(&results.floor);
            spin
        }),
        floor_echo_p99_shape: floor_operand(
            &results.floor.rtt_shape.get(&shards).cloned(),
            "latency_us.p99",
            1000.0,
            "ms",
            &echo_shape,
            true,
        ),
        runtime_echo_p99_shape: floor_operand(
            &results.floor.rtt_glommio.get(&shards).cloned(),
            "latency_us.p99",
            1000.0,
            "ms",
            &runtime_echo_what(shards),
            true,
        ),
        rtt_cpu: rtt_main().and_then(|r| rtt_operand(cpu_us_per_command(r), 1.0, "µs", r)),
        floor_echo_cpu: floor_operand(
            &results.floor.rtt_sleeping,
            "echo_us_per_request",
            1.0,
            "µs",
            "`floor --rtt`, sleeping echo",
            true,
        ),
        floor_echo_cpu_shape: floor_operand(
            &results.floor.rtt_shape.get(&shards).cloned(),
            "echo_us_per_request",
            1.0,
            "µs",
            &echo_shape,
            true,
        ),
        runtime_echo_cpu_shape: floor_operand(
            &results.floor.rtt_glommio.get(&shards).cloned(),
            "echo_us_per_request",
            1.0,
            "µs",
            &runtime_echo_what(shards),
            true,
        ),
        idle: idle(results),
    }
}

/// How the echo as glommio executors is written.
fn runtime_echo_what(shards: usize) -> String {
    format!("`floor --rtt --echo-runtime glommio --echo-threads {shards}`, the runtime alone")
}

/// The floor echo's 2-thread CPU per request over its 1-thread one.
fn floor_echo_scaling(
    floor: Option<&ScalingRow>,
    no_floor: &dyn Fn(&str) -> String,
) -> Measured<f64> {
    let what = "rtt-shape echo";
    let row = floor.ok_or_else(|| no_floor(what))?;
    row.ratios().0.ok_or_else(|| {
        [&row.one, &row.two]
            .into_iter()
            .find_map(|side| side.as_ref().err().cloned())
            .unwrap_or_else(|| no_floor(what))
    })
}

/// How a floor single send is written: `how` it was paced, over 1,000
/// connections (no report given) or over chat's (its connections from
/// `chat_shape`), and on the servers' core with --split-cores.
fn send_what(how: &str, chat_shape: Option<&Value>, split: bool) -> String {
    let mut what = format!("one per send, {how}");
    if let Some(r) = chat_shape {
        let pairs = num(r, "config.pairs");
        let _ = write!(
            what,
            ", {} connections: chat's shape",
            pairs.map_or_else(|| "—".into(), count)
        );
    }
    if split {
        what += ", on the servers' core";
    }
    what
}

/// mudshard's highest held step of the chat ladder, and its report.
fn chat_highest<'r>(results: &'r Results<'_>) -> Result<(Highest, &'r Value), String> {
    let ladder = results.ladder("chat").ok_or("chat's ladder was not run")?;
    let highest = ladder
        .mudshard
        .ok_or("mudshard held no step of the chat ladder")?;
    let report = results
        .step("chat", highest.rate, Variant::Mudshard)
        .and_then(|r| r.report.as_ref())
        .ok_or("the highest held step left no report")?;
    Ok((highest, report))
}

fn chat_cpu_at_highest(results: &Results<'_>) -> Measured<Operand> {
    let (highest, report) = chat_highest(results)?;
    let cpu = num(report, "server.cpu_us_per_msg")
        .ok_or("the highest held step's report lacks the server's CPU")?;
    Ok(Operand {
        value: cpu,
        text: format!(
            "{} µs at {} says/s ({} msgs/s)",
            number(cpu),
            number(highest.rate),
            number(highest.delivered_per_s)
        ),
        problem: None,
    })
}

/// The machine's ceiling for the shared ladder (`MACHINE_CEILING`): its
/// cores over the CPU of a delivery when the server costs only the floor's
/// send flat out in chat's shape and loadgen what it cost, per delivered
/// message, at
/// mudshard's highest held step (the step nearest the target that was run).
fn chat_machine_ceiling(
    results: &Results<'_>,
    no_floor: &dyn Fn(&str) -> String,
) -> Measured<Operand> {
    if results.options.split.is_some() {
        return Err("loadgen has a core of its own (--split-cores)".into());
    }
    let send_us = results
        .floor
        .single_max_chat_shape
        .as_ref()
        .and_then(|r| num(r, "sender_us_per_send"))
        .filter(|us| *us > 0.0)
        .ok_or_else(|| no_floor("one per send, flat out, chat's shape"))?;
    let (highest, report) = chat_highest(results)?;
    let (Some(loadgen_s), Some(delivered), Some(cores)) = (
        num(report, "machine.loadgen_cpu_s"),
        num(report, "throughput.delivered_msgs").filter(|d| *d > 0.0),
        num(report, "machine.cores").filter(|c| *c > 0.0),
    ) else {
        return Err("the highest held step's report lacks loadgen's CPU, \
                    the deliveries or the cores"
            .into());
    };
    let loadgen_us = loadgen_s * 1e6 / delivered;
    let value = cores * 1e6 / (send_us + loadgen_us);
    Ok(Operand {
        value,
        text: format!(
            "{} cores / ({} µs a send flat out in chat's shape + loadgen's {} µs a delivery at \
             {} says/s) = {} msgs/s",
            number(cores),
            number(send_us),
            number(loadgen_us),
            number(highest.rate),
            number(value)
        ),
        problem: None,
    })
}

fn chat_ladder(results: &Results<'_>) -> Measured<LadderFigures> {
    let ladder = results.ladder("chat").ok_or("chat's ladder was not run")?;
    Ok(LadderFigures {
        mudshard: ladder.mudshard.as_ref().map(|h| h.delivered_per_s),
        baseline: ladder.baseline.as_ref().map(|h| h.delivered_per_s),
        ratio: ladder.ratio,
        relay: ladder
            .relay_ratio
            .map(|r| (ladder.relay.as_ref().map(|h| h.delivered_per_s), r)),
    })
}

fn idle(results: &Results<'_>) -> Measured<IdleFigures> {
    if !results.order.iter().any(|n| n == "idle") {
        return Err("idle was not run (--only)".into());
    }
    let report = |variant: Variant| {
        results
            .main("idle", variant)
            .and_then(|r| r.report.as_ref())
    };
    let purged = report(Variant::MudshardPurged)
        .ok_or("the purged idle run (MIMALLOC_PURGE_DELAY=0) left no report")?;
    let unpurged = report(Variant::Mudshard);
    Ok(IdleFigures {
        players: num(purged, "config.players").unwrap_or(0.0),
        established: num(purged, "counts.sessions_established").unwrap_or(0.0),
        unpurged_bytes: unpurged.and_then(|r| num(r, "server.rss_per_session_bytes")),
        purged_bytes: num(purged, "server.rss_per_session_bytes")
            .ok_or_else(|| "the purged idle run has no RSS per session".to_string()),
        problem: problem(purged).or_else(|| unpurged.and_then(problem)),
    })
}

/// The section of the report.
pub fn render(lines: &[TargetLine], options: &Options) -> String {
    let mode = options.mode;
    let mut w = String::new();
    let _ = writeln!(w, "## Targets (issue 12: ratios measured in this run)\n");
    let _ = writeln!(
        w,
        "Each target is a ratio of two figures of this run: mudshard against the machine's own \
         floor (`bench/floor`, above), against itself with another shard count (\"Shard \
         scaling\"), or against the baseline. The floor's single send is its \"one per send, \
         paced 50,000/s\" run; its echo CPU is the sleeping echo's (the polling echo spins, so \
         its CPU is all its time); rtt's figures are mudshard's own rtt run. The chat ladder's \
         highest held rate is the highest step sustained as its table above defines it.\n\n\
         {}{}\n\n\
         A line not reached is marked out of reach on this machine when figures of this same \
         run show that a server adding nothing to what it stands on would miss it too: for the \
         2-vs-1 CPU lines, the glommio echo's own 2-vs-1 executors; for walk's 2-vs-1 \
         lines, CPU and p99, the floor's echo of walk's weight whose 2 threads cross as \
         walk's shards do (\"Shard scaling\") in place of it, when that echo is of walk's \
         weight in this run (its 1 thread's CPU per request within {WALK_WEIGHT_MATCH}× \
         either way of walk's 1 shard's per command; the glommio echo's ratio is of a request \
         of a few µs, whose extra µs are a small share of one of walk's weight); for rtt's \
         p99, the p99 of \
         the echo in rtt's shape that sleeps between requests (as a server sharing its cores \
         with loadgen must; the polling floor never sleeps and has a CPU to itself) over the \
         polling floor's, or, where it reads the higher, the same echo's as glommio \
         executors (the runtime mudshard is built on); for rtt's CPU, the glommio echo's CPU over the judged echo's; for \
         the chat ladder lines, the kernel's own ceiling: \
         the floor's single send flat out over as many connections as chat has players (at \
         most 8,000; on the servers' core with --split-cores), the most messages a second a \
         thread can write to them one `send` each (after \"—\", the same over 1,000 \
         connections, whose sockets' state fits in cache as chat's do not: not judged). At \
         the ladder's rates each \
         connection gets about one event per 20 ms, so a server writes each delivery with a send \
         of its own and holds no more than that; the ladder lines show what share of it the \
         target asks for, and out of reach when it asks for all of it or more. With cores \
         shared, loadgen's own receive runs on the same cores, so the shared line is also held \
         against the machine's ceiling: its cores over the CPU a delivery takes when the server \
         costs only that send and loadgen what it cost per delivery at mudshard's highest held \
         step; out of reach, likewise, when the target asks for all of it or more. A ceiling \
         that any server on the same ladder held more than (mudshard, the baseline or the \
         relay below) bounds nothing in that run and calls no line out of reach. Beside \
         both ladder lines stands the floor's chat relay (`floor --chat-relay`), which climbs \
         chat's ladder right after the baseline at each step, on the baseline's port and the \
         servers' cores, with as many threads as mudshard has shards: a server that does \
         nothing but write each delivery to its listener's socket with one `send` from the \
         thread that read the say, with no world, no queue and no hop between threads. It \
         judges nothing: it is no ceiling, since a server can spend less per delivery than \
         it does.\n",
        shape_paragraph(options),
        if mode == Mode::Quick {
            " This is a smoke run: small counts and short windows, so the lines are shown but \
             not judged."
        } else {
            ""
        }
    );
    let _ = writeln!(
        w,
        "| figure | target | measured | status |\n|---|---|---|---|"
    );
    for line in lines {
        let status = match &line.verdict {
            Verdict::Reached => "**reached**".to_string(),
            Verdict::NotReached(None) => "**not reached**".to_string(),
            Verdict::NotReached(Some(why)) => format!("**not reached** ({why})"),
            Verdict::OutOfReach(why) => {
                format!("**not reached: out of reach on this machine** (best possible, {why})")
            }
            Verdict::NotMeasured(why) => format!("not measured: {why}"),
            Verdict::NotJudged(why) => format!("not judged ({why})"),
        };
        let _ = writeln!(
            w,
            "| {} | {} | {} | {status} |",
            line.figure, line.target, line.measured
        );
    }
    let _ = writeln!(w);
    w
}

/// What \"in the servers' shape\" means for this run's floor lines.
fn shape_paragraph(options: &Options) -> String {
    let layout = if options.split.is_some() {
        "its echo threads pinned to the servers' cores and its client to loadgen's first, as \
         mudshard's shards and loadgen are"
    } else {
        "nothing pinned, sharing every core as mudshard and loadgen do"
    };
    format!(
        "The floor lines are judged in the servers' shape: against a floor run laid out like \
         the server run it is compared with. rtt's CPU per `look` is divided by the sleeping \
         echo with as many threads as mudshard's rtt run has shards ({}), {layout}; chat's CPU \
         per delivery by the single send paced 50,000/s over as many connections as chat has \
         players (at most 8,000), because a send costs more when the kernel's per-socket state \
         no longer fits in cache. After \"—\" each shows the older comparison (one echo \
         thread pinned apart from its client; 1,000 connections), not judged. The two \"2 \
         shards vs 1 shard: server CPU\" lines are still judged against ≤ 1.15×; beside each \
         is what the machine itself charges for the same step: the floor echo with 2 threads \
         over 1 (\"Shard scaling\", last row).",
        options.shards
    )
}

#[cfg(test)]
mod tests {
    use super::super::scaling::ShardFigures;
    use super::*;

    #[test]
    fn a_ratio_next_to_its_limit_shows_the_place_that_tells_them_apart() {
        assert_eq!(judged(1.504, 1.5), "1.504×");
        assert_eq!(judged(1.496, 1.5), "1.496×");
        assert_eq!(judged(1.5, 1.5), "1.50×");
        assert_eq!(judged(1.51, 1.5), "1.51×");
        assert_eq!(judged(3.7891, 1.5), "3.79×");
        assert_eq!(judged(1.1549, 1.15), "1.155×");
    }

    #[test]
    fn a_polling_floor_no_lower_than_the_sleeping_echo_is_called_disturbed() {
        use super::super::results::FloorReports;
        use serde_json::json;
        let floor = |polling: f64, sleeping: f64| FloorReports {
            rtt_polling: Some(json!({"latency_us": {"p99": polling}})),
            rtt_sleeping: Some(json!({"latency_us": {"p99": sleeping}})),
            ..FloorReports::default()
        };
        assert_eq!(disturbed_polling(&floor(110.0, 370.0)), None);
        assert_eq!(
            disturbed_polling(&floor(420.0, 410.0)).as_deref(),
            Some(
                "the polling floor's window was disturbed: its p99, 0.42 ms, is no lower than \
                 that of the sleeping echo beside it, 0.41 ms"
            )
        );
        assert!(disturbed_polling(&floor(410.0, 410.0)).is_some());
        let missing = FloorReports {
            rtt_sleeping: None,
            ..floor(420.0, 410.0)
        };
        assert_eq!(disturbed_polling(&missing), None, "nothing to compare with");
        // Any echo of the run that sleeps bounds it, the lowest first: in
        // run AF the pinned sleeping echo was disturbed too (1.21 ms p99),
        // and the polling floor's 0.96 ms was above the servers'-shape
        // echoes' 0.17 and 0.18 ms.
        let mut af = floor(960.0, 1210.0);
        af.rtt_shape
            .insert(1, json!({"latency_us": {"p99": 170.0}}));
        af.rtt_shape
            .insert(2, json!({"latency_us": {"p99": 180.0}}));
        af.rtt_glommio
            .insert(2, json!({"latency_us": {"p99": 230.0}}));
        assert_eq!(
            disturbed_polling(&af).as_deref(),
            Some(
                "the polling floor's window was disturbed: its p99, 0.96 ms, is no lower than \
                 that of the sleeping echo with 1 thread(s) in the servers' layout, 0.17 ms"
            )
        );
        af.rtt_glommio
            .insert(1, json!({"latency_us": {"p99": 150.0}}));
        assert!(disturbed_polling(&af)
            .expect("disturbed")
            .contains("the sleeping echo as 1 glommio executor(s), 0.15 ms"));
        // A calm polling floor under all of them (run AE: 0.15 ms against
        // 0.17 ms at the lowest) is no reason.
        let mut ae = floor(150.0, 310.0);
        ae.rtt_shape
            .insert(1, json!({"latency_us": {"p99": 170.0}}));
        ae.rtt_glommio
            .insert(2, json!({"latency_us": {"p99": 300.0}}));
        assert_eq!(disturbed_polling(&ae), None);
        // Made once more after a disturbed first attempt: the second is
        // judged, and a second disturbed one says it was both.
        let again = FloorReports {
            rtt_polling_first: Some(json!({"latency_us": {"p99": 7470.0}})),
            ..floor(130.0, 150.0)
        };
        assert_eq!(disturbed_polling(&again), None);
        let both = FloorReports {
            rtt_polling_first: Some(json!({"latency_us": {"p99": 7470.0}})),
            ..floor(420.0, 410.0)
        };
        assert_eq!(
            disturbed_polling(&both).as_deref(),
            Some(
                "the polling floor's window was disturbed in both of its attempts: its p99, \
                 0.42 ms, is no lower than that of the sleeping echo beside it, 0.41 ms"
            )
        );
    }

    fn op(value: f64) -> Measured<Operand> {
        Ok(Operand {
            value,
            text: number(value),
            problem: None,
        })
    }

    fn shard(cpu_us: f64, p99_us: f64) -> Result<ShardFigures, String> {
        Ok(ShardFigures {
            cpu_us: Some(cpu_us),
            p99_us: Some(p99_us),
            problem: None,
            rounds: Vec::new(),
        })
    }

    fn figures() -> TargetFigures {
        TargetFigures {
            scaling: vec![
                ScalingRow {
                    scenario: "rtt".into(),
                    rate: Some(20_000.0),
                    one: shard(30.0, 2000.0),
                    two: shard(33.0, 1900.0),
                },
                ScalingRow {
                    scenario: "walk".into(),
                    rate: Some(10_000.0),
                    one: shard(30.0, 2000.0),
                    two: shard(45.0, 2100.0),
                },
            ],
            floor_echo_scaling: Ok(1.21),
            runtime_echo_scaling: Ok(1.14),
            walk_kept_scaling: None,
            walk_cross_floor_scaling: None,
            chat_cpu_at_highest: op(9.0),
            // Against the older 1,000-pair figure chat would not reach
            // 1.25× (9 / 6 = 1.5): only the chat-shape one makes it.
            floor_single_send: op(6.0),
            floor_single_send_chat_shape: op(8.0),
            chat_ladder: Ok(LadderFigures {
                mudshard: Some(75_000.0),
                baseline: Some(50_000.0),
                ratio: LadderRatio::Exact(1.5),
                relay: None,
            }),
            // Over 1,000 connections (beside), and over chat's (judged).
            floor_single_max: op(200_000.0),
            floor_single_max_chat_shape: op(125_000.0),
            chat_machine_ceiling: op(150_000.0),
            rtt_p99: op(1.86),
            floor_spin_p99: op(0.56),
            floor_echo_p99_shape: op(0.5),
            runtime_echo_p99_shape: op(0.6),
            rtt_cpu: op(17.3),
            // Likewise: 17.3 / 12 = 1.44 against the single pinned echo.
            floor_echo_cpu: op(12.0),
            floor_echo_cpu_shape: op(18.6),
            runtime_echo_cpu_shape: op(16.0),
            idle: Ok(IdleFigures {
                players: 15_000.0,
                established: 15_000.0,
                unpurged_bytes: Some(3_052.0),
                purged_bytes: Ok(2_458.0),
                problem: None,
            }),
        }
    }

    fn verdicts(f: &TargetFigures, judging: Judging) -> Vec<(String, Verdict)> {
        lines(f, judging)
            .into_iter()
            .map(|l| (l.figure, l.verdict))
            .collect()
    }

    const FULL_SHARED: Judging = Judging {
        smoke: false,
        split: false,
    };

    #[test]
    fn each_line_is_reached_or_not_by_its_own_ratio() {
        let v = verdicts(&figures(), FULL_SHARED);
        let expect = [
            (
                "rtt, 2 shards vs 1 shard: server CPU per command",
                Verdict::Reached,
            ),
            (
                "walk, 2 shards vs 1 shard: server CPU per command",
                Verdict::NotReached(None),
            ),
            ("rtt, 2 shards vs 1 shard: p99", Verdict::Reached),
            ("walk, 2 shards vs 1 shard: p99", Verdict::NotReached(None)),
            (
                "chat: server CPU per delivered message at the ladder's highest held rate",
                Verdict::Reached,
            ),
            (
                "chat ladder: highest held rate vs baseline, split cores",
                Verdict::NotJudged("judged only in a --split-cores run".into()),
            ),
            (
                "chat ladder: highest held rate vs baseline, shared cores",
                Verdict::Reached,
            ),
            ("rtt: p99", Verdict::NotReached(None)),
            ("rtt: server CPU per `look`", Verdict::Reached),
            (
                "idle: memory per session at 15,000 sessions",
                Verdict::Reached,
            ),
        ];
        assert_eq!(v.len(), expect.len());
        for ((figure, verdict), (want_figure, want)) in v.iter().zip(expect) {
            assert_eq!(figure, want_figure);
            assert_eq!(verdict, &want, "{figure}");
        }
    }

    fn line<'a>(lines: &'a [TargetLine], figure: &str) -> &'a TargetLine {
        lines
            .iter()
            .find(|l| l.figure == figure)
            .unwrap_or_else(|| panic!("no line {figure}"))
    }

    /// The verdict of the line `figure` in a shared-cores run of `f`.
    fn verdict(f: &TargetFigures, figure: &str) -> Verdict {
        line(&lines(f, FULL_SHARED), figure).verdict.clone()
    }

    #[test]
    fn the_floor_lines_are_judged_in_the_servers_shape_and_show_the_older_figure_beside() {
        let mut f = figures();
        let l = lines(&f, FULL_SHARED);
        let rtt = line(&l, "rtt: server CPU per `look`");
        assert_eq!(rtt.verdict, Verdict::Reached);
        assert_eq!(
            rtt.measured,
            "17.3 / 18.6 = **0.93×** — against 12.0: 1.44× — against 16.0: 1.08×"
        );
        let chat = line(
            &l,
            "chat: server CPU per delivered message at the ladder's highest held rate",
        );
        assert_eq!(chat.measured, "9 / 8 = **1.12×** — against 6: 1.50×");
        assert_eq!(chat.target, "≤ 1.25× floor's sender CPU per single send");

        // The like-for-like floor decides, whatever the older one says.
        f.floor_echo_cpu = op(30.0);
        f.floor_echo_cpu_shape = op(10.0);
        f.floor_single_send = op(20.0);
        f.floor_single_send_chat_shape = op(5.0);
        // (A runtime as cheap as the echo: the miss is not out of reach.)
        f.runtime_echo_cpu_shape = op(10.0);
        let l = lines(&f, FULL_SHARED);
        assert_eq!(
            line(&l, "rtt: server CPU per `look`").verdict,
            Verdict::NotReached(None)
        );
        assert_eq!(
            line(
                &l,
                "chat: server CPU per delivered message at the ladder's highest held rate"
            )
            .verdict,
            Verdict::NotReached(None)
        );

        // Without the like-for-like run the line is not measured, the older
        // figure still shown.
        f.floor_echo_cpu_shape = Err("--no-floor".into());
        let l = lines(&f, FULL_SHARED);
        let rtt = line(&l, "rtt: server CPU per `look`");
        assert_eq!(rtt.verdict, Verdict::NotMeasured("--no-floor".into()));
        assert_eq!(
            rtt.measured,
            "17.3 / — — against 30.0: 0.58× — against 10.0: 1.73×"
        );
    }

    #[test]
    fn the_scaling_cpu_lines_show_the_machines_own_ratio_and_are_judged_on_their_own() {
        let mut f = figures();
        let l = lines(&f, FULL_SHARED);
        let rtt = line(&l, "rtt, 2 shards vs 1 shard: server CPU per command");
        assert_eq!(
            rtt.measured,
            "33.0 µs / 30.0 µs = **1.10×** (the machine's own, floor echo 2 vs 1 threads: 1.21×; \
             the runtime's own, glommio echo 2 vs 1 executors: 1.14×)"
        );
        assert_eq!(rtt.verdict, Verdict::Reached);
        let walk = line(&l, "walk, 2 shards vs 1 shard: server CPU per command");
        assert_eq!(walk.verdict, Verdict::NotReached(None), "1.5× > 1.15×");
        assert!(walk
            .measured
            .ends_with("glommio echo 2 vs 1 executors: 1.14×)"));
        f.floor_echo_scaling = Err("--no-floor".into());
        let l = lines(&f, FULL_SHARED);
        assert!(line(&l, "rtt, 2 shards vs 1 shard: server CPU per command")
            .measured
            .contains("(the machine's own, floor echo 2 vs 1 threads: not measured: --no-floor;"));
        assert!(!line(&l, "rtt, 2 shards vs 1 shard: p99")
            .measured
            .contains("machine's own"));
    }

    #[test]
    fn walks_lines_stand_beside_the_crossing_echo_of_its_weight_which_bounds_them_if_it_matches() {
        let mut f = figures();
        let cross = |cpu, p99, one_us| Some(Ok(WalkCross { cpu, p99, one_us }));
        let verdict =
            |f: &TargetFigures, figure: &str| line(&lines(f, FULL_SHARED), figure).verdict.clone();
        // An echo of walk's weight (32 µs a request with 1 thread against
        // walk's 30 with 1 shard) crossing as walk does reads 1.05×: walk's
        // 1.5× is a miss, not out of reach (the runtime's 1.14× is not either).
        f.walk_cross_floor_scaling = cross(1.05, 1.3, 32.0);
        let l = lines(&f, FULL_SHARED);
        let walk = line(&l, "walk, 2 shards vs 1 shard: server CPU per command");
        assert_eq!(walk.verdict, Verdict::NotReached(None));
        assert!(walk.measured.ends_with(
            "(the machine's own for a server of walk's weight whose shards cross as walk's do, \
             the floor's crossing echo 2 vs 1 threads: 1.05×)"
        ));
        // The p99 line shows its own ratio, and is bounded by it: walk's
        // 1.05× p99 is out of reach where the echo reads 1.30×.
        let p99 = line(&l, "walk, 2 shards vs 1 shard: p99");
        assert!(p99
            .measured
            .ends_with("crossing echo 2 vs 1 threads: 1.30×)"));
        assert_eq!(
            p99.verdict,
            Verdict::OutOfReach(format!("{WALK_CROSS_BEST}: 1.30×"))
        );
        // rtt's lines do not carry it.
        assert!(
            !line(&l, "rtt, 2 shards vs 1 shard: server CPU per command")
                .measured
                .contains("walk's weight")
        );
        // At 1.6× even that echo misses: out of reach.
        f.walk_cross_floor_scaling = cross(1.6, 1.0, 32.0);
        assert_eq!(
            verdict(&f, "walk, 2 shards vs 1 shard: server CPU per command"),
            Verdict::OutOfReach(format!("{WALK_CROSS_BEST}: 1.60×"))
        );
        assert_eq!(
            verdict(&f, "walk, 2 shards vs 1 shard: p99"),
            Verdict::NotReached(None),
            "the echo's p99 ratio, 1.00×, is within the line"
        );
        // It replaces the runtime's bound: at 1.10× the echo leaves walk's
        // 1.5× a miss although the runtime's echo reads 1.60×.
        f.runtime_echo_scaling = Ok(1.6);
        f.walk_cross_floor_scaling = cross(1.1, 1.0, 32.0);
        assert_eq!(
            verdict(&f, "walk, 2 shards vs 1 shard: server CPU per command"),
            Verdict::NotReached(None)
        );
        // An echo far heavier than walk (54 µs against 30: more than 1.25×
        // either way) is shown but bounds nothing; the runtime's bound holds.
        f.walk_cross_floor_scaling = cross(1.02, 0.8, 54.0);
        let l = lines(&f, FULL_SHARED);
        let walk = line(&l, "walk, 2 shards vs 1 shard: server CPU per command");
        assert!(walk.measured.ends_with(
            "(the floor's crossing echo 2 vs 1 threads: 1.02×, not of walk's weight: its 1 \
             thread spends 54.0 µs per request, walk's 1 shard 30.0 µs per command; not a bound)"
        ));
        assert_eq!(
            walk.verdict,
            Verdict::OutOfReach(
                "the runtime alone, glommio echo 2 vs 1 executors: 1.60×".to_string()
            )
        );
        // So is one far lighter.
        f.walk_cross_floor_scaling = cross(1.9, 2.0, 20.0);
        assert_eq!(
            verdict(&f, "walk, 2 shards vs 1 shard: p99"),
            Verdict::NotReached(None)
        );
        // A reached line stays reached.
        f.walk_cross_floor_scaling = cross(1.6, 1.0, 32.0);
        f.scaling[1].two = shard(33.0, 1900.0);
        assert_eq!(
            verdict(&f, "walk, 2 shards vs 1 shard: server CPU per command"),
            Verdict::Reached
        );
        // Not measured: said so beside the line, which is judged as before.
        f.walk_cross_floor_scaling = Some(Err("no report".into()));
        let l = lines(&f, FULL_SHARED);
        let walk = line(&l, "walk, 2 shards vs 1 shard: server CPU per command");
        assert!(walk
            .measured
            .ends_with("(the floor's crossing echo of walk's weight: not measured: no report)"));
        assert_eq!(walk.verdict, Verdict::Reached);
    }

    #[test]
    fn the_paragraph_says_what_the_servers_shape_is_in_each_layout() {
        let shared = super::super::options::for_test(&["--shards", "2"]);
        let text = render(&lines(&figures(), FULL_SHARED), &shared);
        assert!(
            text.contains("as many threads as mudshard's rtt run has shards (2), nothing pinned")
        );
        let split = super::super::options::for_test(&["--split-cores", "0:1"]);
        let text = render(&lines(&figures(), FULL_SHARED), &split);
        assert!(text.contains("(1), its echo threads pinned to the servers' cores"));
    }

    #[test]
    fn split_cores_judge_the_split_ladder_line_and_not_the_shared_one() {
        // 2 × the baseline's 50,000 is 80% of the kernel's ceiling: the miss
        // is only a miss.
        let f = figures();
        let v = verdicts(
            &f,
            Judging {
                smoke: false,
                split: true,
            },
        );
        assert_eq!(v[5].1, Verdict::NotReached(None), "1.5× < 2×");
        assert!(matches!(v[6].1, Verdict::NotJudged(_)));
    }

    #[test]
    fn a_missing_input_is_not_measured_and_says_why() {
        let mut f = figures();
        f.floor_spin_p99 = Err("--no-floor".into());
        f.idle = Ok(IdleFigures {
            purged_bytes: Err("the purged idle run left no report".into()),
            ..f.idle.clone().expect("idle")
        });
        f.scaling[0].one = Err("no run with 1 shard(s)".into());
        let l = lines(&f, FULL_SHARED);
        assert_eq!(l[7].verdict, Verdict::NotMeasured("--no-floor".into()));
        assert_eq!(l[7].measured, "1.86 / —");
        assert!(matches!(&l[9].verdict, Verdict::NotMeasured(w) if w.contains("purged")));
        assert!(matches!(&l[0].verdict, Verdict::NotMeasured(w) if w.starts_with("rtt: no run")));
    }

    #[test]
    fn a_failed_run_does_not_reach_a_target_its_ratio_would() {
        let mut f = figures();
        f.rtt_cpu = Ok(Operand {
            value: 1.0,
            text: "1".into(),
            problem: Some("the rate was not held".into()),
        });
        let l = lines(&f, FULL_SHARED);
        assert_eq!(
            l[8].verdict,
            Verdict::NotReached(Some("the rate was not held".into()))
        );
    }

    #[test]
    fn idle_is_judged_on_the_purged_figure_at_15000_sessions() {
        let mut f = figures();
        let base = f.idle.clone().expect("idle");
        f.idle = Ok(IdleFigures {
            purged_bytes: Ok(3_100.0),
            unpurged_bytes: Some(2_900.0),
            ..base.clone()
        });
        assert_eq!(lines(&f, FULL_SHARED)[9].verdict, Verdict::NotReached(None));
        f.idle = Ok(IdleFigures {
            players: 1_000.0,
            established: 1_000.0,
            ..base.clone()
        });
        assert!(matches!(
            lines(&f, FULL_SHARED)[9].verdict,
            Verdict::NotMeasured(_)
        ));
        f.idle = Ok(IdleFigures {
            established: 14_000.0,
            ..base
        });
        assert!(matches!(
            lines(&f, FULL_SHARED)[9].verdict,
            Verdict::NotReached(Some(_))
        ));
    }

    #[test]
    fn a_ladder_ceiling_beyond_the_top_step_is_judged_only_when_it_decides() {
        let mut f = figures();
        let ladder = |ratio| {
            Ok(LadderFigures {
                mudshard: Some(1.0),
                baseline: Some(1.0),
                ratio,
                relay: None,
            })
        };
        f.chat_ladder = ladder(LadderRatio::AtLeast(1.6));
        assert_eq!(lines(&f, FULL_SHARED)[6].verdict, Verdict::Reached);
        f.chat_ladder = ladder(LadderRatio::AtLeast(1.2));
        assert!(matches!(
            lines(&f, FULL_SHARED)[6].verdict,
            Verdict::NotMeasured(_)
        ));
        f.chat_ladder = ladder(LadderRatio::AtMost(1.2));
        assert_eq!(lines(&f, FULL_SHARED)[6].verdict, Verdict::NotReached(None));
        f.chat_ladder = ladder(LadderRatio::Unknown("why".into()));
        assert_eq!(
            lines(&f, FULL_SHARED)[6].verdict,
            Verdict::NotMeasured("why".into())
        );
    }

    #[test]
    fn a_smoke_run_shows_its_figures_but_judges_nothing() {
        let l = lines(
            &figures(),
            Judging {
                smoke: true,
                split: false,
            },
        );
        assert!(l
            .iter()
            .all(|l| matches!(&l.verdict, Verdict::NotJudged(_))));
        assert!(l
            .iter()
            .filter(|l| !l.figure.contains("split cores"))
            .all(|l| l.verdict == Verdict::NotJudged("smoke run".into())));
        assert!(l[0].measured.contains("1.10×"), "{}", l[0].measured);
    }

    #[test]
    fn a_ladder_line_shows_the_relay_beside_it_and_is_judged_without_it() {
        let mut f = figures();
        let ladder = |relay: Option<(Option<f64>, LadderRatio)>| {
            Ok(LadderFigures {
                mudshard: Some(60_000.0),
                baseline: Some(50_000.0),
                ratio: LadderRatio::Exact(1.2),
                relay,
            })
        };
        let shared = |f: &TargetFigures| lines(f, FULL_SHARED)[6].clone();
        // The relay held 1.4× the baseline's: shown beside, but no ceiling
        // (a server can spend less per delivery than it does), so
        // mudshard's 1.2× is a plain miss all the same.
        f.chat_ladder = ladder(Some((Some(70_000.0), LadderRatio::Exact(1.4))));
        let line = shared(&f);
        assert_eq!(line.verdict, Verdict::NotReached(None), "{line:?}");
        assert!(
            line.measured.contains(
                "(the floor's chat relay held 70,000 msgs/s, 1.40× the baseline's; mudshard held \
                 86% of it) — against"
            ),
            "{line:?}"
        );
        // The relay held 1.6×: mudshard's 1.2× is a plain miss.
        f.chat_ladder = ladder(Some((Some(80_000.0), LadderRatio::Exact(1.6))));
        assert_eq!(shared(&f).verdict, Verdict::NotReached(None));
        // Held past the ladder's top: no bound from it.
        f.chat_ladder = ladder(Some((Some(80_000.0), LadderRatio::AtLeast(1.6))));
        assert_eq!(shared(&f).verdict, Verdict::NotReached(None));
        // A relay that held nothing bounds nothing (something is wrong with it).
        f.chat_ladder = ladder(Some((None, LadderRatio::Exact(0.0))));
        let line = shared(&f);
        assert_eq!(line.verdict, Verdict::NotReached(None));
        assert!(line
            .measured
            .contains("(the floor's chat relay sustained no step) — against"));
        // Not climbed: the line is as before.
        f.chat_ladder = ladder(None);
        assert!(!shared(&f).measured.contains("relay"));
        // A reached line stays reached, the relay beside it.
        f.chat_ladder = Ok(LadderFigures {
            mudshard: Some(80_000.0),
            baseline: Some(50_000.0),
            ratio: LadderRatio::Exact(1.6),
            relay: Some((Some(70_000.0), LadderRatio::Exact(1.4))),
        });
        assert_eq!(shared(&f).verdict, Verdict::Reached);
    }

    #[test]
    fn a_ceiling_a_server_passed_in_the_same_run_calls_nothing_out_of_reach() {
        let mut f = figures();
        // 1.5 × the baseline's 60,000 is 100% of the kernel's ceiling.
        f.floor_single_max_chat_shape = op(90_000.0);
        f.chat_ladder = Ok(LadderFigures {
            mudshard: Some(72_000.0),
            baseline: Some(60_000.0),
            ratio: LadderRatio::Exact(1.2),
            relay: None,
        });
        assert!(matches!(
            lines(&f, FULL_SHARED)[6].verdict,
            Verdict::OutOfReach(ref why) if why.contains("100% of it")
        ));
        // The relay held more than that ceiling on the same ladder: the
        // ceiling bounds nothing, and the miss is a miss.
        f.chat_ladder = Ok(LadderFigures {
            mudshard: Some(72_000.0),
            baseline: Some(60_000.0),
            ratio: LadderRatio::Exact(1.2),
            relay: Some((Some(95_000.0), LadderRatio::Exact(95.0 / 60.0))),
        });
        let shared = &lines(&f, FULL_SHARED)[6];
        assert_eq!(shared.verdict, Verdict::NotReached(None), "{shared:?}");
        assert!(
            shared.measured.contains(
                "mudshard held 80%; the floor's chat relay held 106% in this run, \
                 so it bounds nothing here)"
            ),
            "{shared:?}"
        );
        // mudshard itself past the ceiling, the ratio still short of the
        // target: likewise a miss, named after the server that passed it.
        f.chat_ladder = Ok(LadderFigures {
            mudshard: Some(91_000.0),
            baseline: Some(64_000.0),
            ratio: LadderRatio::Exact(91.0 / 64.0),
            relay: None,
        });
        let shared = &lines(&f, FULL_SHARED)[6];
        assert_eq!(shared.verdict, Verdict::NotReached(None), "{shared:?}");
        assert!(
            shared.measured.contains("mudshard held 101% in this run"),
            "{shared:?}"
        );
        // Below the ceiling, every server: the ceiling decides again.
        f.chat_ladder = Ok(LadderFigures {
            mudshard: Some(72_000.0),
            baseline: Some(60_000.0),
            ratio: LadderRatio::Exact(1.2),
            relay: Some((Some(85_000.0), LadderRatio::Exact(85.0 / 60.0))),
        });
        assert!(matches!(
            lines(&f, FULL_SHARED)[6].verdict,
            Verdict::OutOfReach(_)
        ));
    }

    #[test]
    fn a_miss_is_out_of_reach_only_when_a_server_adding_nothing_would_miss_too() {
        let mut f = figures();
        // The ladder: 1.5 × the baseline's 60,000 is 72% of the kernel's
        // ceiling, shown beside; a miss, not out of reach.
        f.chat_ladder = Ok(LadderFigures {
            mudshard: Some(60_000.0),
            baseline: Some(60_000.0),
            ratio: LadderRatio::Exact(1.0),
            relay: None,
        });
        let shared = &lines(&f, FULL_SHARED)[6];
        assert_eq!(shared.verdict, Verdict::NotReached(None));
        assert!(
            shared.measured.ends_with(
                "(the kernel's ceiling, 125,000: 1.5× the baseline's rate is 90,000 msgs/s, \
                 72% of it; mudshard held 48%) (the machine's ceiling with loadgen beside the \
                 server, 150,000: 1.5× the baseline's rate is 90,000 msgs/s, 60% of it; \
                 mudshard held 40%) — against the kernel's ceiling, 200,000: 45%"
            ),
            "{shared:?}"
        );
        // The 1,000-connection ceiling is shown, never judged: below the
        // target, it calls nothing out of reach.
        f.floor_single_max = op(50_000.0);
        assert_eq!(lines(&f, FULL_SHARED)[6].verdict, Verdict::NotReached(None));
        f.floor_single_max = op(200_000.0);
        // With cores shared, loadgen's share of them can leave less than the
        // target asks even when the kernel's ceiling alone would not.
        f.chat_machine_ceiling = op(90_000.0);
        assert!(matches!(
            lines(&f, FULL_SHARED)[6].verdict,
            Verdict::OutOfReach(ref why) if why.contains("sharing the cores with loadgen")
        ));
        f.chat_machine_ceiling = op(150_000.0);
        // Asking for the ceiling or more: no server writing a send per
        // delivery could hold it.
        f.floor_single_max_chat_shape = op(90_000.0);
        assert!(matches!(
            lines(&f, FULL_SHARED)[6].verdict,
            Verdict::OutOfReach(ref why) if why.contains("100% of it")
        ));
        // The split line likewise, judged in a split run: 2 × 60,000 is
        // above a ceiling of 110,000.
        f.floor_single_max_chat_shape = op(110_000.0);
        let split = Judging {
            smoke: false,
            split: true,
        };
        assert!(matches!(
            lines(&f, split)[5].verdict,
            Verdict::OutOfReach(_)
        ));
        assert_eq!(lines(&f, FULL_SHARED)[6].verdict, Verdict::NotReached(None));
        // A line whose run went wrong is not called out of reach.
        f.chat_ladder = Ok(LadderFigures {
            mudshard: Some(60_000.0),
            baseline: Some(60_000.0),
            ratio: LadderRatio::Unknown("a step failed".into()),
            relay: None,
        });
        assert!(matches!(
            lines(&f, split)[5].verdict,
            Verdict::NotMeasured(_)
        ));

        // The scaling lines: the runtime's own 2 vs 1 decides.
        let walk = "walk, 2 shards vs 1 shard: server CPU per command";
        assert_eq!(verdict(&f, walk), Verdict::NotReached(None));
        f.runtime_echo_scaling = Ok(1.2);
        assert!(matches!(verdict(&f, walk), Verdict::OutOfReach(_)));

        // rtt's p99: the sleeping echo in rtt's shape over the polling one.
        let p99 = "rtt: p99";
        assert_eq!(verdict(&f, p99), Verdict::NotReached(None), "0.5 / 0.56");
        f.floor_echo_p99_shape = op(1.0);
        assert!(matches!(verdict(&f, p99), Verdict::OutOfReach(ref w) if w.contains("sleeps")));
        // The echo on glommio, when it reads the higher, is the bound: a
        // server on that runtime stands on it.
        f.floor_echo_p99_shape = op(0.5);
        assert_eq!(verdict(&f, p99), Verdict::NotReached(None), "0.6 / 0.56");
        f.runtime_echo_p99_shape = op(0.9);
        assert!(matches!(
            verdict(&f, p99),
            Verdict::OutOfReach(ref w) if w.contains("a glommio echo that sleeps, adding nothing, 0.90 / 0.56")
        ));
        f.runtime_echo_p99_shape = op(0.6);

        // A polling floor no lower than the sleeping echo had its window
        // disturbed: a ratio against it reaches nothing, nor is out of reach.
        f.rtt_p99 = op(0.5);
        f.floor_spin_p99 = Ok(Operand {
            value: 0.56,
            text: "0.56".into(),
            problem: Some("disturbed".into()),
        });
        assert_eq!(
            verdict(&f, p99),
            Verdict::NotReached(Some("disturbed".into()))
        );
        f.floor_spin_p99 = op(0.56);

        // rtt's CPU: the glommio echo over the judged echo.
        f.rtt_cpu = op(30.0);
        let rtt = "rtt: server CPU per `look`";
        assert_eq!(verdict(&f, rtt), Verdict::NotReached(None));
        f.runtime_echo_cpu_shape = op(28.0);
        assert!(matches!(verdict(&f, rtt), Verdict::OutOfReach(_)));
        // A run unfit to judge (its problem named) is not called out of reach.
        f.rtt_cpu = Ok(Operand {
            value: 30.0,
            text: "30".into(),
            problem: Some("rate not held".into()),
        });
        assert!(matches!(verdict(&f, rtt), Verdict::NotReached(Some(_))));
    }
}
