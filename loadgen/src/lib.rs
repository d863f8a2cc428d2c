//! `loadgen`, the mudshard load generator, as a library: the binary is a
//! thin CLI over `run::run` and `report::Report`, and the tests drive the
//! same code against fake servers.

pub mod chart;
pub mod clock;
pub mod config;
pub mod control;
pub mod merge;
pub mod net;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod readers;
pub mod report;
pub mod run;
pub mod scan;
pub mod scenario;
pub mod schedule;
pub mod session;
pub mod stats;
pub mod suite;
pub mod worker;
pub mod ws;

use config::Config;
use report::Report;

/// Runs the configured scenario and writes `--json` and `--chart`; returns
/// the report (whose `ok` decides the exit status).
pub fn run_and_report(config: Config) -> Result<Report, String> {
    let outcome = run::run(config.clone())?;
    let report = Report::build(&config, &outcome);
    if let Some(path) = &config.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| format!("json: {e}"))?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &config.chart {
        let title = format!("loadgen {:?}: latency by percentile", config.scenario);
        chart::write_chart(path, &title, &outcome.stats.curves())?;
    }
    Ok(report)
}
