//! The progress bar (stderr; hidden with `--quiet` or when stderr is not a
//! terminal, so logs and CI output stay clean).

use crate::config::Config;
use crate::control::{Phases, ProgressTotals};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// See the module doc.
pub struct Progress {
    bar: ProgressBar,
    players: u64,
}

impl Progress {
    pub fn new(config: &Config, players: u64) -> Progress {
        let target = if config.quiet {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(1000), target);
        let style = ProgressStyle::with_template("{prefix:>9} [{bar:30}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        Progress { bar, players }
    }

    /// While the sessions are being opened.
    pub fn opening(&self, t: &ProgressTotals) {
        self.bar.set_prefix("opening");
        let done = t.established * 1000 / self.players.max(1);
        self.bar.set_position(done.min(1000));
        self.bar.set_message(format!(
            "{}/{} sessions, {} failed",
            t.established, self.players, t.failures
        ));
    }

    /// From the start line on.
    pub fn running(&self, now_ns: u64, phases: &Phases, t: &ProgressTotals) {
        let phase = if now_ns < phases.window.start_ns {
            "warm-up"
        } else if now_ns < phases.window.end_ns {
            "measuring"
        } else {
            "draining"
        };
        self.bar.set_prefix(phase);
        let total = phases.stop_ns.saturating_sub(phases.start_ns).max(1);
        let done = now_ns.saturating_sub(phases.start_ns) * 1000 / total;
        self.bar.set_position(done.min(1000));
        self.bar.set_message(format!(
            "sent {} received {} problems {}",
            t.sent, t.received, t.failures
        ));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
