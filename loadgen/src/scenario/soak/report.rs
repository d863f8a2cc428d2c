//! The soak's part of the report: its counters, the server's memory over
//! time, the leak check, and the failures and warnings they make.

use super::counters::SoakCounters;
use super::leak::{GaugeValue, LeakCheck};
use super::memory::MemoryFigures;
use crate::config::Config;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// What the main thread measured of a soak (besides the workers' counters).
#[derive(Debug, Clone)]
pub struct SoakOutcome {
    pub memory: MemoryFigures,
    pub leak: LeakCheck,
    /// How much the server's own counters grew over the run.
    pub server_counts: Vec<GaugeValue>,
}

/// The `soak` section of the JSON report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SoakFigures {
    pub counts: SoakCounters,
    /// The server's own counts of what the soak provoked (`leak::SERVER_COUNTERS`),
    /// grown over the run.
    pub server_counts: Vec<GaugeValue>,
    pub memory: MemoryFigures,
    pub leak: LeakCheck,
}

impl SoakFigures {
    pub fn of(counts: &SoakCounters, outcome: &SoakOutcome) -> SoakFigures {
        SoakFigures {
            counts: counts.clone(),
            server_counts: outcome.server_counts.clone(),
            memory: outcome.memory.clone(),
            leak: outcome.leak.clone(),
        }
    }

    /// Adds the soak's failures and warnings. `churn_failed` comes from the
    /// common counters.
    pub fn judge(
        &self,
        config: &Config,
        churn_failed: u64,
        failures: &mut Vec<String>,
        warnings: &mut Vec<String>,
    ) {
        let c = &self.counts;
        let soak = &config.soak;
        let first = || {
            c.notes
                .first()
                .map_or(String::new(), |n| format!(" (first: {n})"))
        };
        if c.seq_gaps + c.seq_duplicates > 0 {
            failures.push(format!(
                "{} seq gaps and {} duplicates in the droppers' and slow readers' frames{}",
                c.seq_gaps,
                c.seq_duplicates,
                first()
            ));
        }
        if c.resumes_failed + c.resume_errors > 0 {
            failures.push(format!(
                "{} dropper resumes answered resume_failed, {} resumes broken{}",
                c.resumes_failed,
                c.resume_errors,
                first()
            ));
        }
        if soak.soak_droppers > 0 && c.resumes == 0 {
            failures.push("no dropper resumed (is --duration shorter than a drop cycle?)".into());
        }
        if c.logins_failed + c.dropped_by_server > 0 {
            failures.push(format!(
                "{} logins of droppers and slow readers failed, {} of their sessions ended by the \
                 server unasked{}",
                c.logins_failed,
                c.dropped_by_server,
                first()
            ));
        }
        if c.abuse_unexpected > 0 {
            failures.push(format!(
                "{} abuse attempts were not answered as DESIGN §7 says{}",
                c.abuse_unexpected,
                first()
            ));
        }
        if churn_failed > 0 {
            failures.push(format!("{churn_failed} churn iterations failed"));
        }
        if !self.leak.ok {
            let left: Vec<String> = self
                .leak
                .gauges
                .iter()
                .filter(|g| g.value != Some(0))
                .map(|g| match g.value {
                    Some(v) => format!("{} {v}", g.name),
                    None => format!("{} missing", g.name),
                })
                .collect();
            failures.push(match &self.leak.error {
                Some(why) => format!("leak check: cannot read the server's gauges: {why}"),
                None => format!(
                    "leak check: {} still nonzero {:.1} s after the load stopped",
                    left.join(", "),
                    self.leak.waited_s
                ),
            });
        }
        if let (Some(max), Some(slope)) = (
            soak.soak_max_slope_kib_per_min,
            self.memory.slope_kib_per_min,
        ) {
            if slope > max {
                failures.push(format!(
                    "server memory grew {slope:.1} KiB/min over the window (over \
                     --soak-max-slope-kib-per-min {max})"
                ));
            }
        }
        if self.memory.slope_kib_per_min.is_none() {
            warnings.push(
                "no memory slope: fewer than two RSS samples in the window (server pid unknown, \
                 or the window shorter than --soak-rss-sample-ms)"
                    .into(),
            );
        }
        if soak.soak_slow_readers > 0 && c.slow_cut == 0 {
            warnings.push(
                "no slow reader was cut off: the server's outbound_bytes_max takes longer than \
                 this window to fill (raise --duration or --soak-slow-cmd-rate)"
                    .into(),
            );
        }
        if c.slow_resume_failed > 0 {
            warnings.push(format!(
                "{} slow readers' resumes got resume_failed: the server no longer held every \
                 frame after the last one read (its resume_bytes_max/resume_frames_max are below \
                 outbound_bytes_max); nothing was replayed partially",
                c.slow_resume_failed
            ));
        }
    }

    /// The soak's lines of the table.
    pub fn table(&self, t: &mut String) {
        let c = &self.counts;
        let _ = writeln!(
            t,
            "  resume      drops {}  resumed {} (replayed {} frames)  resume_failed {}  broken {}  \
             seq gaps {}  duplicates {}",
            c.drops,
            c.resumes,
            c.replayed_frames,
            c.resumes_failed,
            c.resume_errors,
            c.seq_gaps,
            c.seq_duplicates
        );
        let _ = writeln!(
            t,
            "  slow        stalls {}  cut {} (1013: {})  not cut {}  resumed {}  resume_failed {}",
            c.slow_stalls,
            c.slow_cut,
            c.slow_closed_1013,
            c.slow_not_cut,
            c.slow_resumed,
            c.slow_resume_failed
        );
        let _ = writeln!(
            t,
            "  abuse       floods {} (rate_limited {}, 1008: {})  garbage {} (errors {}, 1007: {})  \
             oversized {} (1009: {})  slow handshakes {} (cut {}, ≤ {} ms)  unexpected {}",
            c.abuse_floods,
            c.abuse_rate_limited,
            c.abuse_flood_closed_1008,
            c.abuse_garbage,
            c.abuse_garbage_errors,
            c.abuse_garbage_closed_1007,
            c.abuse_oversized,
            c.abuse_oversized_closed_1009,
            c.abuse_slow_handshakes,
            c.abuse_slow_handshakes_cut,
            c.abuse_slow_handshake_cut_ms_max,
            c.abuse_unexpected
        );
        let kib = |v: Option<u64>| v.map_or("?".to_string(), |v| v.to_string());
        let _ = write!(t, "  server saw ");
        for g in &self.server_counts {
            let name = g
                .name
                .trim_start_matches("mudshard_")
                .trim_end_matches("_total");
            let _ = write!(t, " {name} {}", kib(g.value));
        }
        let _ = writeln!(t);
        let m = &self.memory;
        let _ = write!(
            t,
            "  memory      rss {} -> {} KiB (max {}) over {} samples in the window",
            kib(m.rss_first_kib),
            kib(m.rss_last_kib),
            kib(m.rss_max_kib),
            m.samples_in_window
        );
        match m.slope_kib_per_min {
            Some(slope) => {
                let _ = writeln!(t, ", slope {slope:+.1} KiB/min");
            }
            None => {
                let _ = writeln!(t, ", no slope");
            }
        }
        let l = &self.leak;
        let _ = write!(t, "  leak check ");
        for g in &l.gauges {
            let name = g.name.trim_start_matches("mudshard_");
            let _ = write!(t, " {name} {}", kib(g.value));
        }
        if let Some(why) = &l.error {
            let _ = write!(t, " {why}");
        }
        let _ = writeln!(
            t,
            "  (after {:.1} s of at most {:.1} s)  {}",
            l.waited_s,
            l.wait_max_s,
            if l.ok { "ok" } else { "LEAK" }
        );
    }
}
