//! `loadgen merge`: one report from the JSON reports of the `--worker i/n`
//! processes that split a run.
//!
//! Counts add up; latencies are merged histogram by histogram (every report
//! carries its histograms' buckets), so the merged percentiles are exactly
//! those of one process that had seen every sample; rates are the merged
//! counts over the measured window (the mean of the workers' windows, which
//! coincide when the workers are started together, as `--worker` asks). The
//! server's CPU and memory come from the first report that has them: the
//! workers sampled the same server over the same window. The merged report
//! is judged again with the same rules, and it fails when any worker's
//! report failed or when a worker's report is missing.

use crate::config::Config;
use crate::control::Phases;
use crate::report::{Histograms, MachineFigures, Report};
use crate::run::{MachineSample, Outcome, ServerSample};
use crate::stats::{Counters, Latency, Stats, Window};
use clap::Parser;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// `loadgen merge`: combines the `--json` reports of the n processes of one
/// `--worker i/n` run into one report (table, `--json`, `--chart`).
#[derive(Debug, Parser)]
#[command(name = "loadgen merge")]
pub struct MergeArgs {
    /// The workers' JSON reports (one per worker, all of one run).
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// Write the merged report as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the merged latency percentile chart (SVG).
    #[arg(long)]
    pub chart: Option<PathBuf>,
}

/// The parts of a worker's report the merge reads.
#[derive(Debug, Deserialize)]
struct WorkerReport {
    tool: String,
    ok: bool,
    failures: Vec<String>,
    config: Config,
    threads: usize,
    players_here: u64,
    measured_s: f64,
    rate: WorkerRate,
    counts: Counters,
    server: WorkerServer,
    machine: MachineFigures,
    histograms: Histograms,
    #[serde(default)]
    cluster: Option<WorkerCluster>,
}

#[derive(Debug, Deserialize)]
struct WorkerRate {
    requested_per_s: f64,
}

/// The part of a `cluster` report's figures the merge cannot recount.
#[derive(Debug, Deserialize)]
struct WorkerCluster {
    #[serde(default)]
    walks: Option<WorkerRate>,
}

#[derive(Debug, Deserialize)]
struct WorkerServer {
    pid: Option<u32>,
    #[serde(default)]
    pids: Vec<u32>,
    rss_before_kib: Option<u64>,
    rss_after_kib: Option<u64>,
    cpu_s: Option<f64>,
}

/// Workers whose windows differ by more than this share of their mean
/// length were not started together: the merge says so.
const WINDOW_SPREAD_WARN: f64 = 0.05;

fn read(path: &Path) -> Result<WorkerReport, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let report: WorkerReport = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: not a loadgen JSON report of this version ({e})",
            path.display()
        )
    })?;
    if report.tool != "loadgen" {
        return Err(format!("{}: not a loadgen report", path.display()));
    }
    Ok(report)
}

/// Merges the reports at `paths`; errors are for inputs that cannot be one run.
pub fn merge(paths: &[PathBuf]) -> Result<(Report, Stats), String> {
    let reports: Vec<WorkerReport> = paths.iter().map(|p| read(p)).collect::<Result<_, _>>()?;
    let first = reports.first().ok_or("no reports to merge")?;
    let (_, n) = first.config.worker_split()?;
    let mut seen = vec![false; n as usize];
    for (r, path) in reports.iter().zip(paths) {
        let (i, ni) = r.config.worker_split()?;
        if ni != n {
            return Err(format!(
                "{}: worker {} of a run split {ni} ways; the first report's run is split {n} ways",
                path.display(),
                r.config.worker
            ));
        }
        if r.config.scenario != first.config.scenario || r.config.targets != first.config.targets {
            return Err(format!(
                "{}: a different scenario or target than {}",
                path.display(),
                paths[0].display()
            ));
        }
        if std::mem::replace(&mut seen[i as usize], true) {
            return Err(format!(
                "{}: worker {} appears twice",
                path.display(),
                r.config.worker
            ));
        }
    }

    let mut stats = Stats::default();
    let mut fatal = Vec::new();
    for r in &reports {
        stats.merge(&Stats {
            counters: r.counts.clone(),
            reply: Latency::from_buckets(&r.histograms.reply),
            delivery: Latency::from_buckets(&r.histograms.delivery),
            delivery_same_host: Latency::from_buckets(&r.histograms.delivery_same_host),
            delivery_cross_host: Latency::from_buckets(&r.histograms.delivery_cross_host),
            tell: Latency::from_buckets(&r.histograms.tell),
            setup: Latency::from_buckets(&r.histograms.setup),
            move_across: Latency::from_buckets(&r.histograms.move_across),
            move_within: Latency::from_buckets(&r.histograms.move_within),
            ..Stats::default()
        });
        if !r.ok {
            fatal.push(format!(
                "worker {} failed: {}",
                r.config.worker,
                r.failures.join("; ")
            ));
        }
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| !**s)
        .map(|(i, _)| format!("{i}/{n}"))
        .collect();
    if !missing.is_empty() {
        fatal.push(format!(
            "no report from worker(s) {}: the merged rates are only part of the run",
            missing.join(", ")
        ));
    }

    let secs = reports.iter().map(|r| r.measured_s).sum::<f64>() / reports.len() as f64;
    let (lo, hi) = reports.iter().fold((f64::MAX, 0.0f64), |(lo, hi), r| {
        (lo.min(r.measured_s), hi.max(r.measured_s))
    });
    let window_ns = (secs * 1e9) as u64;
    let server = reports
        .iter()
        .find(|r| r.server.cpu_s.is_some())
        .or_else(|| reports.iter().find(|r| r.server.pid.is_some()))
        .map(|r| ServerSample {
            pid: r.server.pid,
            pids: r.server.pids.clone(),
            rss_before_kib: r.server.rss_before_kib,
            rss_after_kib: r.server.rss_after_kib,
            cpu_us: r.server.cpu_s.map(|s| (s * 1e6) as u64),
        })
        .unwrap_or_default();
    let outcome = Outcome {
        stats,
        phases: Phases {
            start_ns: 0,
            window: Window {
                start_ns: 0,
                end_ns: window_ns,
            },
            stop_ns: window_ns,
        },
        server,
        machine: machine(&reports, secs),
        threads: reports.iter().map(|r| r.threads).sum(),
        players_here: reports.iter().map(|r| r.players_here).sum(),
        rate_here_per_s: reports.iter().map(|r| r.rate.requested_per_s).sum(),
        walk_rate_here_per_s: reports
            .iter()
            .filter_map(|r| r.cluster.as_ref()?.walks.as_ref())
            .map(|w| w.requested_per_s)
            .sum(),
        fatal,
        first_error: None,
        soak: None,
    };
    let mut config = first.config.clone();
    config.worker = format!("all of {n}");
    config.json = None;
    config.chart = None;
    let mut report = Report::build(&config, &outcome);
    if hi - lo > WINDOW_SPREAD_WARN * secs {
        report.warnings.push(format!(
            "the workers' measured windows differ ({lo:.2}–{hi:.2} s): were they started together?"
        ));
    }
    Ok((report, outcome.stats))
}

/// The machine as the workers saw it: the busiest and most stolen-from view,
/// and every worker's own CPU time added up.
fn machine(reports: &[WorkerReport], secs: f64) -> MachineSample {
    let total_us = |r: &WorkerReport| r.machine.cores as f64 * secs * 1e6;
    let max_of = |f: &dyn Fn(&WorkerReport) -> Option<f64>| {
        reports
            .iter()
            .filter_map(f)
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    };
    let loadgen: Option<f64> = reports.iter().map(|r| r.machine.loadgen_cpu_s).sum();
    MachineSample {
        cores: reports.first().map_or(1, |r| r.machine.cores),
        busy_us: max_of(&|r| r.machine.busy_cores.map(|b| b * secs * 1e6)).map(|v| v as u64),
        steal_us: max_of(&|r| r.machine.steal_pct.map(|s| s / 100.0 * total_us(r)))
            .map(|v| v as u64),
        total_us: reports.first().map(|r| total_us(r) as u64),
        loadgen_cpu_us: loadgen.map(|s| (s * 1e6) as u64),
    }
}

/// The `loadgen merge` command: prints the merged table, writes the outputs;
/// `Ok(false)` when the merged run failed.
pub fn run(args: &MergeArgs) -> Result<bool, String> {
    let (report, stats) = merge(&args.reports)?;
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| format!("json: {e}"))?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.chart {
        let title = format!(
            "loadgen {:?} ({} workers merged): latency by percentile",
            report.scenario,
            args.reports.len()
        );
        crate::chart::write_chart(path, &title, &stats.curves())?;
    }
    print!("{}", report.table());
    Ok(report.ok)
}
