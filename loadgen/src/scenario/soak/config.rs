//! The `soak` scenario's own flags: one named bound for every part of the
//! mix, so a soak always stops by itself and never grows past what was asked.
//! Flattened into `Config` (all `--soak-*`), ignored by other scenarios.

use serde::{Deserialize, Serialize};

/// See the module doc. Defaults make a modest mix that one small machine
/// carries beside the server for minutes.
#[derive(Debug, Clone, PartialEq, clap::Args, Serialize, Deserialize)]
#[command(next_help_heading = "soak (the `soak` scenario's mix; every part has a bound)")]
#[serde(default)]
pub struct SoakArgs {
    /// Players saying things in the chat rooms (every say's delivery to the
    /// other chatters of its room is checked).
    #[arg(long, default_value_t = 40)]
    pub soak_chatters: u64,

    /// Chat rooms the chatters (and the droppers) are spread over.
    #[arg(long, default_value_t = 4)]
    pub soak_rooms: u64,

    /// Says per second, all chatters together.
    #[arg(long, default_value_t = 20.0)]
    pub soak_say_rate: f64,

    /// Players walking a band of the grid apart from the chat rooms.
    #[arg(long, default_value_t = 20)]
    pub soak_walkers: u64,

    /// Moves per second, all walkers together.
    #[arg(long, default_value_t = 20.0)]
    pub soak_walk_rate: f64,

    /// New churn sessions (connect, guest, look, quit) per second.
    #[arg(long, default_value_t = 10.0)]
    pub soak_churn_rate: f64,

    /// Churn sessions in flight at once, all threads together.
    #[arg(long, default_value_t = 8)]
    pub soak_churn_concurrency: u64,

    /// Sessions that cut their socket (no close frame) and resume, over
    /// and over.
    #[arg(long, default_value_t = 8)]
    pub soak_droppers: u64,

    /// How long a dropper stays connected between cuts, ms.
    #[arg(long, default_value_t = 1500)]
    pub soak_drop_online_ms: u64,

    /// How long a dropper stays away before it resumes, ms (must be well
    /// inside the server's resume window).
    #[arg(long, default_value_t = 500)]
    pub soak_drop_offline_ms: u64,

    /// Sessions that stop reading until the server cuts them off (1013),
    /// then resume, each in a quiet room of its own. Kept few: each makes
    /// the server hold a full outbound queue.
    #[arg(long, default_value_t = 2)]
    pub soak_slow_readers: u64,

    /// Commands (`help`, about 0.9 KB of reply each) a stalled slow reader
    /// sends per second to fill its outbound queue; below the server's
    /// rate limit (20/s).
    #[arg(long, default_value_t = 15.0)]
    pub soak_slow_cmd_rate: f64,

    /// The longest a slow reader stalls waiting to be cut off, s; then it
    /// reads again (counted as not cut) and stalls anew. At the default
    /// rate a server with the default 1 MiB outbound bound (and the
    /// kernel's socket buffers before it) cuts a reader off in about 1–2
    /// minutes.
    #[arg(long, default_value_t = 300.0)]
    pub soak_slow_stall_max_s: f64,

    /// Receive buffer of a slow reader's socket, bytes: small, so that the
    /// server's queue, not the kernel, holds what it does not read.
    #[arg(long, default_value_t = 4096)]
    pub soak_slow_rcvbuf_bytes: u32,

    /// Connections breaking the rules at once, cycling through a command
    /// flood, garbage frames, an oversized frame and a slow handshake.
    #[arg(long, default_value_t = 4)]
    pub soak_abusers: u64,

    /// Pause between one abuser's attempts, ms.
    #[arg(long, default_value_t = 1000)]
    pub soak_abuse_pause_ms: u64,

    /// Commands a flooding abuser sends at once: more than the server's
    /// burst (40) plus the refusals it closes at (100).
    #[arg(long, default_value_t = 300)]
    pub soak_flood_commands: u64,

    /// Size of the oversized frame, bytes (the server's bound is 64 KiB).
    #[arg(long, default_value_t = 70_000)]
    pub soak_oversized_bytes: u64,

    /// A slow handshake sends its request head one byte per this many ms.
    #[arg(long, default_value_t = 200)]
    pub soak_slowloris_byte_ms: u64,

    /// How long a slow handshake waits to be cut off before it counts as
    /// not cut, s (above the server's login timeout, 10 s by default).
    #[arg(long, default_value_t = 15.0)]
    pub soak_slowloris_max_s: f64,

    /// The server's `resume_window_ms`: how long a dropped session may stay
    /// detached. The leak check waits this long (plus the margin) for the
    /// server's gauges to return to zero.
    #[arg(long, default_value_t = 60_000)]
    pub soak_resume_window_ms: u64,

    /// Extra wait of the leak check beyond the resume window, s.
    #[arg(long, default_value_t = 5.0)]
    pub soak_leak_margin_s: f64,

    /// How often the server's RSS is sampled, ms.
    #[arg(long, default_value_t = 1000)]
    pub soak_rss_sample_ms: u64,

    /// Fail the run when the server's memory slope over the measured window
    /// is above this, KiB per minute (default: report it only).
    #[arg(long)]
    pub soak_max_slope_kib_per_min: Option<f64>,
}

impl Default for SoakArgs {
    fn default() -> Self {
        <SoakArgs as clap::FromArgMatches>::from_arg_matches(
            &<SoakArgs as clap::Args>::augment_args(clap::Command::new("soak"))
                .get_matches_from(["soak"]),
        )
        .expect("every soak flag has a default") // ok: no input, only the defaults
    }
}

impl SoakArgs {
    /// Checks the bounds flags alone cannot express, against the grid the
    /// scenario lays the mix out on (see `plan.rs`).
    pub fn validate(&self, grid_width: u32, grid_height: u32) -> Result<(), String> {
        if self.soak_chatters > 0 && (self.soak_rooms == 0 || self.soak_rooms > self.soak_chatters)
        {
            return Err("soak needs 1 <= --soak-rooms <= --soak-chatters".into());
        }
        if self.soak_rooms == 0 && self.soak_droppers > 0 {
            return Err("soak droppers stand in the chat rooms: --soak-rooms >= 1".into());
        }
        if self.soak_slow_readers >= u64::from(grid_width) {
            return Err(format!(
                "soak: each slow reader has a room of its own east of the start room: \
                 --soak-slow-readers < --grid-width ({grid_width})"
            ));
        }
        for (name, rate) in [
            ("--soak-say-rate", self.soak_say_rate),
            ("--soak-walk-rate", self.soak_walk_rate),
            ("--soak-churn-rate", self.soak_churn_rate),
            ("--soak-slow-cmd-rate", self.soak_slow_cmd_rate),
        ] {
            if !(rate >= 0.0 && rate.is_finite()) {
                return Err(format!("{name} must be a finite number >= 0"));
            }
        }
        if self.soak_slow_cmd_rate <= 0.0 && self.soak_slow_readers > 0 {
            return Err("--soak-slow-cmd-rate must be > 0 with slow readers".into());
        }
        if self.soak_churn_rate > 0.0 && self.soak_churn_concurrency == 0 {
            return Err("--soak-churn-concurrency must be > 0 with churn".into());
        }
        if self.soak_drop_offline_ms >= self.soak_resume_window_ms {
            return Err(
                "--soak-drop-offline-ms must be below --soak-resume-window-ms (the server's window)"
                    .into(),
            );
        }
        if self.soak_drop_online_ms == 0 || self.soak_rss_sample_ms == 0 {
            return Err("--soak-drop-online-ms and --soak-rss-sample-ms must be > 0".into());
        }
        if !(self.soak_slow_stall_max_s > 0.0
            && self.soak_slowloris_max_s > 0.0
            && self.soak_leak_margin_s >= 0.0)
        {
            return Err(
                "--soak-slow-stall-max-s and --soak-slowloris-max-s must be > 0, --soak-leak-margin-s >= 0"
                    .into(),
            );
        }
        let chat_rows = super::plan::chat_rows(self.soak_rooms, grid_width);
        if self.soak_walkers > 0 && 1 + chat_rows >= u64::from(grid_height) {
            return Err(format!(
                "soak: the grid ({grid_width}x{grid_height}) has no rows left for walkers below \
                 the start row and {chat_rows} row(s) of chat rooms"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use clap::Parser;

    fn soak(flags: &[&str]) -> Config {
        let mut argv = vec!["loadgen", "soak"];
        argv.extend_from_slice(flags);
        Config::parse_from(argv)
    }

    #[test]
    fn the_defaults_are_the_flags_defaults_and_valid() {
        let cfg = soak(&[]);
        assert_eq!(cfg.soak, SoakArgs::default());
        cfg.validate().expect("the defaults are a valid soak");
    }

    #[test]
    fn bounds_that_cannot_hold_are_refused() {
        for (flags, says) in [
            (
                &[
                    "--soak-drop-offline-ms",
                    "2000",
                    "--soak-resume-window-ms",
                    "2000",
                ][..],
                "--soak-drop-offline-ms",
            ),
            (&["--soak-rooms", "0"][..], "--soak-rooms"),
            (&["--soak-say-rate=-1"][..], "--soak-say-rate"),
            (&["--worker", "0/2"][..], "one process"),
            (
                &["--grid-height", "2", "--soak-rooms", "4"][..],
                "no rows left",
            ),
        ] {
            let why = soak(flags).validate().expect_err(says);
            assert!(why.contains(says), "{flags:?}: {why}");
        }
    }
}
