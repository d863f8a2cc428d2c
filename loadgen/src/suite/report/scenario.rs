//! A scenario's section of the report: mudshard's and the baseline's main
//! runs side by side, what went wrong in them, and, where the scenario has
//! them, its ladder and (idle) the purged reading.

use super::super::format::{cell, get, ms, num, opt, ratio_cell};
use super::super::plan::ScenarioFile;
use super::super::process::RunEnd;
use super::super::results::Results;
use super::super::runner::{end_words, Outcome, RunRecord};
use super::super::servers::{Variant, PURGED_ENV};
use serde_json::Value;
use std::fmt::Write as _;

/// A row of a scenario's table: its label and where its figure is
/// (`to_ms`: a latency in µs, shown in ms).
struct Row {
    label: String,
    path: String,
    to_ms: bool,
}

fn row(label: &str, path: &str) -> Row {
    Row {
        label: label.into(),
        path: path.into(),
        to_ms: false,
    }
}

fn latency_rows(label: &str, kind: &str, with_p999: bool) -> Vec<Row> {
    let mut rows: Vec<Row> = [
        ("p50", "p50_us"),
        ("p90", "p90_us"),
        ("p99", "p99_us"),
        ("p99.9", "p999_us"),
        ("max", "max_us"),
    ]
    .into_iter()
    .filter(|(p, _)| with_p999 || *p != "p99.9")
    .map(|(p, field)| Row {
        label: format!("{label} latency {p} (ms) ↓"),
        path: format!("latency_us.{kind}.{field}"),
        to_ms: true,
    })
    .collect();
    if with_p999 {
        rows.push(row(
            &format!("{label} samples"),
            &format!("latency_us.{kind}.count"),
        ));
    }
    rows
}

/// The row groups a scenario file's `rows` may name, in their default order.
const GROUPS: [&str; 13] = [
    "rate",
    "deliveries",
    "replies",
    "enter_leave",
    "sessions_per_s",
    "delivery",
    "reply",
    "setup",
    "cpu",
    "rss",
    "sessions",
    "machine",
    "errors",
];

fn group(key: &str) -> Vec<Row> {
    match key {
        "rate" => vec![
            row("rate requested (/s)", "rate.requested_total_per_s"),
            row("rate achieved (/s) ↑", "rate.achieved_per_s"),
            row("rate held", "rate.held"),
        ],
        "deliveries" => vec![
            row("say deliveries (/s) ↑", "throughput.deliveries_per_s"),
            row("deliveries expected", "deliveries.expected"),
            row("deliveries missing ↓", "deliveries.missing"),
        ],
        "replies" => vec![row("replies (/s) ↑", "throughput.replies_per_s")],
        "enter_leave" => vec![row(
            "enter/leave events (/s) ↑",
            "throughput.enter_leave_per_s",
        )],
        "sessions_per_s" => vec![row(
            "sessions completed (/s) ↑",
            "throughput.sessions_per_s",
        )],
        "delivery" => latency_rows("delivery", "delivery", true),
        "reply" => latency_rows("reply", "reply", true),
        "setup" => latency_rows("setup", "setup", false),
        "cpu" => vec![
            row(
                "server CPU per delivered msg (µs) ↓",
                "server.cpu_us_per_msg",
            ),
            row("server CPU in window (s)", "server.cpu_s"),
            row("delivered msgs (/s) ↑", "throughput.delivered_msgs_per_s"),
        ],
        "rss" => rss_rows(),
        "sessions" => vec![
            row("sessions established ↑", "counts.sessions_established"),
            row("sessions failed ↓", "counts.sessions_failed"),
            row("sessions dropped by server ↓", "counts.sessions_dropped"),
        ],
        "machine" => vec![
            row("machine CPUs busy (all processes)", "machine.busy_cores"),
            row(
                "other processes' CPUs (incl. kernel threads) ↓",
                "machine.other_cores",
            ),
            row("loadgen CPU in window (s)", "machine.loadgen_cpu_s"),
            row("steal (%) ↓", "machine.steal_pct"),
        ],
        "errors" => vec![
            row("error rate ↓", "error_rate"),
            row("timeouts ↓", "counts.timeouts"),
            row("error frames ↓", "counts.errors"),
            row("seq gaps ↓", "counts.seq_gaps"),
            row("run ok (loadgen)", "ok"),
        ],
        _ => Vec::new(),
    }
}

fn rss_rows() -> Vec<Row> {
    vec![
        row(
            "server RSS per session (bytes) ↓",
            "server.rss_per_session_bytes",
        ),
        row("server RSS before (KiB)", "server.rss_before_kib"),
        row("server RSS after (KiB)", "server.rss_after_kib"),
    ]
}

fn value(report: Option<&Value>, r: &Row) -> Option<Value> {
    let v = get(report?, &r.path)?;
    if r.to_ms {
        return v.as_f64().map(|us| Value::from(us / 1000.0));
    }
    Some(v.clone())
}

/// What a run's reader should know: what went wrong, failures and
/// warnings loadgen reported.
pub fn notes(r: &RunRecord) -> Vec<String> {
    let mut notes: Vec<String> = r.notes.iter().map(|n| format!("**{n}**")).collect();
    if let Outcome::Ran { end, server_alive } = &r.outcome {
        if !matches!(end, Ok(RunEnd::Exited(0))) {
            notes.push(format!("loadgen {}", end_words(end)));
        }
        if !server_alive && r.notes.is_empty() {
            notes.push("**the server was not running at the end of the run**".into());
        }
    }
    match &r.report {
        None => notes.push("no JSON report".into()),
        Some(report) => {
            for (key, word) in [("failures", "failure"), ("warnings", "warning")] {
                if let Some(Value::Array(items)) = report.get(key) {
                    for item in items {
                        let text = item
                            .as_str()
                            .map_or_else(|| item.to_string(), str::to_string);
                        notes.push(format!("{word}: {text}"));
                    }
                }
            }
        }
    }
    notes
}

fn note_lines(w: &mut String, label: &str, record: Option<&RunRecord>) {
    match record {
        None => {
            let _ = writeln!(w, "* {label}: **no run**");
        }
        Some(r) => {
            let n = notes(r);
            if !n.is_empty() {
                let _ = writeln!(w, "* {label}: {}", n.join("; "));
            }
        }
    }
}

/// The section of one scenario.
pub fn section(w: &mut String, results: &Results<'_>, file: &ScenarioFile) {
    let name = &file.name;
    let m = results.main(name, Variant::Mudshard);
    let b = results.main(name, Variant::Baseline);
    let mr = m.and_then(|r| r.report.as_ref());
    let br = b.and_then(|r| r.report.as_ref());
    let _ = writeln!(w, "## {name}\n");
    let _ = writeln!(w, "{}.  ", file.about);
    let _ = writeln!(
        w,
        "Target (issue 4, full size): {}.\n",
        file.target.as_deref().unwrap_or("—")
    );
    let cfg: Vec<String> = file.flags.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let _ = writeln!(w, "Run: {}; world grid {}.\n", cfg.join(", "), file.grid);
    let _ = writeln!(
        w,
        "| figure | mudshard | baseline | ratio |\n|---|---:|---:|---:|"
    );
    let mut keys: Vec<String> = file
        .rows
        .clone()
        .unwrap_or_else(|| GROUPS.iter().map(|g| g.to_string()).collect());
    if !keys.iter().any(|k| k == "machine") {
        keys.push("machine".into());
    }
    for key in &keys {
        for r in group(key) {
            let (mv, bv) = (value(mr, &r), value(br, &r));
            let _ = writeln!(
                w,
                "| {} | {} | {} | {} |",
                r.label,
                cell(mv.as_ref()),
                cell(bv.as_ref()),
                ratio_cell(mv.as_ref(), bv.as_ref())
            );
        }
    }
    let _ = writeln!(w);
    note_lines(w, "mudshard", m);
    note_lines(w, "baseline", b);
    let _ = writeln!(w);

    if file.scenario == "rtt" {
        super::floor::rtt(w, &results.floor);
    }
    if file.scenario == "idle" {
        purged(w, results, name);
    }
    ladder(w, results, name);
}

/// idle's second mudshard run, read once mimalloc has purged.
fn purged(w: &mut String, results: &Results<'_>, name: &str) {
    let unpurged = results.main(name, Variant::Mudshard);
    let purged = results.main(name, Variant::MudshardPurged);
    if purged.is_none() {
        return;
    }
    let _ = writeln!(w, "### {name}: memory once mimalloc has purged\n");
    let _ = writeln!(
        w,
        "The same run against mudshard started with `{}={}`, right after the first: mimalloc \
         then gives a page back to the kernel as soon as it empties, where by default it purges \
         freed pages only when the allocator is next called, which an idle server seldom does \
         (`bench/reports/2026-12-01-vm-idle-memory.md`). The setting also lowers the RSS read \
         before the first connect, so the purged figure is not always the lower of the two.\n",
        PURGED_ENV.0, PURGED_ENV.1
    );
    let _ = writeln!(
        w,
        "| figure | mudshard | mudshard, purged | ratio |\n|---|---:|---:|---:|"
    );
    let ur = unpurged.and_then(|r| r.report.as_ref());
    let pr = purged.and_then(|r| r.report.as_ref());
    let mut rows = rss_rows();
    rows.push(row("sessions established ↑", "counts.sessions_established"));
    rows.push(row("run ok (loadgen)", "ok"));
    for r in rows {
        let (u, p) = (value(ur, &r), value(pr, &r));
        let _ = writeln!(
            w,
            "| {} | {} | {} | {} |",
            r.label,
            cell(u.as_ref()),
            cell(p.as_ref()),
            ratio_cell(p.as_ref(), u.as_ref())
        );
    }
    let _ = writeln!(w);
    note_lines(w, "mudshard, purged", purged);
    let _ = writeln!(w);
}

/// The ladder's table and each server's highest sustainable rate.
fn ladder(w: &mut String, results: &Results<'_>, name: &str) {
    let Some(ladder) = results.ladder(name) else {
        return;
    };
    let kind = &ladder.rule.latency;
    let _ = writeln!(w, "### {name}: rate ladder\n");
    let _ = writeln!(
        w,
        "Sustainable = loadgen ok, rate held, p99 {kind} latency ≤ {} ms. A step a server \
         did not sustain is run once more (the table shows the second attempt, the notes \
         below it the first); the server's ladder stops at a step it did not sustain twice.\n",
        super::super::format::step(ladder.rule.p99_ms_max)
    );
    let mut variants = vec![Variant::Mudshard, Variant::Baseline];
    let mut header = format!(
        "| rate (/s) | mudshard delivered msgs/s | p99 {kind} (ms) | sustained | baseline \
         delivered msgs/s | p99 {kind} (ms) | sustained |"
    );
    let mut align = "|---:|---:|---:|:-:|---:|---:|:-:|".to_string();
    if ladder.relay_ratio.is_some() {
        variants.push(Variant::Relay);
        let _ = write!(
            header,
            " the floor's chat relay delivered msgs/s | p99 {kind} (ms) | sustained |"
        );
        align += "---:|---:|:-:|";
    }
    let _ = writeln!(w, "{header}\n{align}");
    let mut step_notes = Vec::new();
    for step in &ladder.steps {
        let mut cells = vec![opt(Some(*step))];
        for &variant in &variants {
            let Some(record) = results.step(name, *step, variant) else {
                cells.extend(["skipped".to_string(), String::new(), String::new()]);
                continue;
            };
            if !record.main && !record.notes.is_empty() {
                step_notes.push((record, format!("{} on {}", opt(Some(*step)), variant.tag())));
            }
            let report = record.report.as_ref();
            let ok = super::super::ladder::sustained(&ladder.rule, report);
            cells.push(opt(
                report.and_then(|r| num(r, "throughput.delivered_msgs_per_s"))
            ));
            cells.push(opt(ms(
                report.and_then(|r| num(r, &format!("latency_us.{kind}.p99_us")))
            )));
            cells.push(if ok { "yes" } else { "no" }.to_string());
        }
        let _ = writeln!(w, "| {} |", cells.join(" | "));
    }
    if !step_notes.is_empty() {
        let _ = writeln!(w);
    }
    for (record, label) in step_notes {
        note_lines(w, &label, Some(record));
    }
    let at = |h: &Option<super::super::ladder::Highest>| match h {
        Some(h) if h.top => format!("≥ {}", opt(Some(h.delivered_per_s))),
        Some(h) => opt(Some(h.delivered_per_s)),
        None => "—".to_string(),
    };
    let ratio = super::super::format::ratio(
        ladder.mudshard.as_ref().map(|h| h.delivered_per_s),
        ladder.baseline.as_ref().map(|h| h.delivered_per_s),
    );
    let any_top = [&ladder.mudshard, &ladder.baseline]
        .iter()
        .any(|h| h.as_ref().is_some_and(|h| h.top));
    let _ = writeln!(
        w,
        "\nHighest sustainable delivered rate: mudshard {} msgs/s, baseline {} msgs/s, ratio \
         {ratio}{}.\n",
        at(&ladder.mudshard),
        at(&ladder.baseline),
        if any_top {
            " (a server that sustained the ladder's top step may go higher: extend `ladder`)"
        } else {
            ""
        }
    );
    if ladder.relay_ratio.is_some() {
        let relay_ratio = super::super::format::ratio(
            ladder.relay.as_ref().map(|h| h.delivered_per_s),
            ladder.baseline.as_ref().map(|h| h.delivered_per_s),
        );
        let _ = writeln!(
            w,
            "The floor's chat relay (`floor --chat-relay`: one `send` per delivery from the \
             thread that read the say, nothing else) held {} msgs/s, {relay_ratio} the \
             baseline's: a reference beside the targets' ladder lines, not a ceiling (a server \
             can spend less per delivery than it does).\n",
            at(&ladder.relay)
        );
    }
}
