//! What the main thread watches of the server during a soak: its RSS over
//! time (`memory.rs`), its own counters before and after, and at the end,
//! once every worker has closed its sessions, the leak check (`leak.rs`).

use super::leak::{self, GaugeValue};
use super::memory::{MemoryFigures, RssSampler};
use super::report::SoakOutcome;
use crate::config::{Config, ScenarioKind};
use crate::control::Phases;
use std::net::SocketAddr;
use std::time::Duration;

/// See the module doc.
pub struct Observer {
    target: SocketAddr,
    sampler: Option<RssSampler>,
    counters_before: Vec<GaugeValue>,
    leak_wait_max: Duration,
}

impl Observer {
    /// Starts watching `target` (and process `pid`, when known) if the run
    /// is a soak.
    pub fn start(config: &Config, pid: Option<u32>, target: SocketAddr) -> Option<Observer> {
        if config.scenario != ScenarioKind::Soak {
            return None;
        }
        let soak = &config.soak;
        Some(Observer {
            target,
            sampler: pid.and_then(|pid| RssSampler::start(pid, soak.soak_rss_sample_ms)),
            counters_before: leak::server_counters(target),
            // A session cut at the very end is held for the resume window.
            leak_wait_max: Duration::from_millis(soak.soak_resume_window_ms)
                + Duration::from_secs_f64(soak.soak_leak_margin_s),
        })
    }

    /// After every worker has closed its sessions: the memory figures of
    /// the run, the leak check (bounded by the resume window plus the
    /// margin), and how the server's counters grew.
    pub fn finish(self, phases: &Phases) -> SoakOutcome {
        let samples = self.sampler.map(RssSampler::finish).unwrap_or_default();
        let leak = leak::wait_for_zero(self.target, self.leak_wait_max);
        let counters_after = leak::server_counters(self.target);
        SoakOutcome {
            memory: MemoryFigures::of(
                &samples,
                phases.start_ns,
                phases.window.start_ns,
                phases.window.end_ns,
            ),
            leak,
            server_counts: leak::growth(&self.counters_before, &counters_after),
        }
    }
}
