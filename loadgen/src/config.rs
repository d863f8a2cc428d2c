//! The run's configuration: one typed struct, parsed from flags, written
//! whole into the JSON report so a figure always travels with what produced it.

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, ValueEnum};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The most `--send-ahead-us` may be: beyond it, sending early would change
/// the workload's shape rather than spare timer wake-ups.
pub const SEND_AHEAD_US_MAX: f64 = 10_000.0;

/// How a worker waits for its sessions' sockets to have something to read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReadWith {
    /// One `epoll` instance per worker, drained by one task: a read costs a
    /// `recv`, and the wait is shared by every socket that became ready.
    #[default]
    Epoll,
    /// A task per session reading through glommio's socket: a poll request
    /// on the ring, its completion and a task wake-up for every read.
    Uring,
}

/// The workload a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScenarioKind {
    /// Open and hold N guest sessions; report server memory per session.
    Idle,
    /// N players in R rooms saying things at an aggregate rate; time delivery.
    Chat,
    /// Commands (`--command`, default `look`) at an aggregate rate; time replies.
    Rtt,
    /// Players walking the generated grid (crossing shards); time move replies.
    Walk,
    /// Connect, log in as guest, `look`, `quit`, in a loop; time session setup.
    Churn,
    /// Players on two (or more) `--target` hosts in shared rooms; says (and
    /// `--tell-share` tells) cross hosts; same-host and cross-host delivery
    /// timed apart. `--walkers` walk across the border between the hosts'
    /// lands and within them; their moves are timed by kind.
    Cluster,
    /// Everything at once for a bounded time (churn, chat, walkers, dropped
    /// and resumed sessions, slow readers, abusers; `--soak-*` flags): server
    /// memory slope and a leak check at the end.
    Soak,
}

/// `loadgen`: the mudshard load generator. Speaks the player protocol over
/// WebSocket at an open-loop rate and reports coordinated-omission-corrected
/// latency, delivered rates and the server's CPU and memory per message.
#[derive(Debug, Clone, Parser, Serialize, Deserialize)]
#[command(
    name = "loadgen",
    version,
    args_override_self = true,
    after_help = "A run split over several processes (--worker 0/2, --worker 1/2, started together, \
                  each with --json): `loadgen merge --json all.json w0.json w1.json` prints and \
                  writes the whole run's report, histograms merged exactly."
)]
pub struct Config {
    /// The workload.
    #[arg(value_enum)]
    pub scenario: ScenarioKind,

    /// Server address `host:port`; repeat for several hosts (the `cluster`
    /// scenario). Sessions are spread over targets round-robin.
    #[arg(long = "target", default_value = "127.0.0.1:4000")]
    pub targets: Vec<String>,

    /// The WebSocket path on the server.
    #[arg(long, default_value = "/ws")]
    pub path: String,

    /// Players (sessions) across all workers. For `churn`: ignored.
    #[arg(long, default_value_t = 100)]
    pub players: u64,

    /// Rooms the `chat` and `cluster` players are spread over (evenly).
    #[arg(long, default_value_t = 10)]
    pub rooms: u64,

    /// Aggregate rate across all workers, per second: says (`chat`), commands
    /// (`rtt`), moves (`walk`), new sessions (`churn`; 0 = as fast as
    /// `--concurrency` allows).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,

    /// Measured window, seconds (for `idle`: how long the sessions are held).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,

    /// Warm-up before the measured window, seconds; excluded from every figure.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,

    /// A reply not seen this many seconds after its intended send time is a
    /// timeout.
    #[arg(long, default_value_t = 2.0)]
    pub timeout: f64,

    /// Seconds to keep reading after the last send, so in-flight replies and
    /// deliveries are counted (defaults to `--timeout`).
    #[arg(long)]
    pub drain: Option<f64>,

    /// A session not logged in (TCP connect to `welcome`, and placed) this many
    /// seconds after it started connecting has failed.
    #[arg(long, default_value_t = 10.0)]
    pub connect_timeout: f64,

    /// Worker threads, one glommio executor each (default: online cores).
    #[arg(long)]
    pub threads: Option<usize>,

    /// New connections per second while opening the sessions (all threads).
    #[arg(long, default_value_t = 5000.0)]
    pub ramp_rate: f64,

    /// Sends due within this many µs after the sender wakes go out with that
    /// wake-up (each timed from when it actually went), so that one timer
    /// sleep serves several sends. 0: one sleep per send.
    #[arg(long, default_value_t = 0.0)]
    #[serde(default)]
    pub send_ahead_us: f64,

    /// How each worker thread waits for its sessions' frames (`uring`: the
    /// way loadgen read before `epoll`, kept for A/B runs).
    #[arg(long, value_enum, default_value_t = ReadWith::Epoll)]
    #[serde(default)]
    pub read_with: ReadWith,

    /// Sessions being opened at once per thread (ramp-up), or sessions in
    /// flight per thread (`churn`).
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,

    /// Source addresses to bind outgoing sockets to, round-robin: a range
    /// `127.0.0.1-127.0.0.20` or a count `20` (127.0.0.1 up). Each address
    /// has its own ~28k ephemeral ports.
    #[arg(long)]
    pub source_ips: Option<String>,

    /// `i/n`: this process is worker i of n splitting one run (players, rooms
    /// and rate are shared out; run the n processes at the same time).
    #[arg(long, default_value = "0/1")]
    pub worker: String,

    /// The server's pid for CPU and memory figures; repeat for several
    /// server processes (`cluster`), whose figures are summed (default: the
    /// `pid` field of `GET /healthz` on each target; figures are skipped
    /// without one).
    #[arg(long = "server-pid")]
    #[serde(default)]
    pub server_pids: Vec<u32>,

    /// `cluster`: the share of the talkers' sends that are tells to a
    /// listener of their room on another host instead of says (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    #[serde(default)]
    pub tell_share: f64,

    /// `cluster`: players beyond `--players` who walk instead of talking,
    /// spread over the targets. Half step back and forth across
    /// `--walk-border` (every move hands the body to the other host), half
    /// walk two rows inside the land of the host they are connected to.
    #[arg(long, default_value_t = 0)]
    #[serde(default)]
    pub walkers: u64,

    /// `cluster`: the walkers' moves per second, all of them together
    /// (needed, > 0, with `--walkers`).
    #[arg(long, default_value_t = 0.0)]
    #[serde(default)]
    pub walk_rate: f64,

    /// `cluster`: the first grid row of the second target's land: the
    /// servers' maps give rows `[0, ROW)` to the first target's host and
    /// `[ROW, --grid-height)` to the second's (default: `--grid-height` / 2).
    #[arg(long, value_name = "ROW")]
    #[serde(default)]
    pub walk_border: Option<u32>,

    /// Width of the server's generated load-test grid (rooms `grid:{x}_{y}`).
    #[arg(long, default_value_t = 100)]
    pub grid_width: u32,

    /// Height of the server's generated load-test grid.
    #[arg(long, default_value_t = 100)]
    pub grid_height: u32,

    /// `walk`: each walker keeps to the rooms its connection's shard owns.
    /// It is placed in the nearest one to where a plain walk places it
    /// (trying rooms by `goto` until one is its shard's), and a move that
    /// lands in another shard's room is followed by the step back. Moves then cross shards only at region
    /// borders: the cost of walking when sessions live on their body's
    /// shard. One host only (a room's `shard` is its owner on its host).
    #[arg(long)]
    #[serde(default)]
    pub keep_to_shard: bool,

    /// The command line `rtt` sends.
    #[arg(long, default_value = "look")]
    pub command: String,

    /// Prefix of the guest names (`{prefix}{worker}_{index}`).
    #[arg(long, default_value = "lg")]
    pub name_prefix: String,

    /// The run fails when (errors + timeouts + dropped) / operations exceeds this.
    #[arg(long, default_value_t = 0.01)]
    pub max_error_rate: f64,

    /// Write the full report (every figure and this configuration) as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,

    /// Write a latency percentile chart (SVG).
    #[arg(long)]
    pub chart: Option<PathBuf>,

    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,

    /// The executors' glommio switches (same names as the server's).
    #[command(flatten)]
    #[serde(default)]
    pub runtime: RuntimeSwitches,

    /// The `soak` scenario's mix and bounds.
    #[command(flatten)]
    #[serde(default)]
    pub soak: crate::scenario::soak::config::SoakArgs,
}

/// glommio's process-wide switches (vendor/glommio/MUDSHARD-PATCH.md), each
/// with its way back to upstream's behaviour so that A/B measurements can
/// take either side. The flags and environment variables are the server's
/// own, so one variable set in a benchmark's environment flips both programs.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[command(next_help_heading = "glommio runtime (defaults: the patched, measured-faster side)")]
#[serde(default)]
pub struct RuntimeSwitches {
    /// io_uring rings with COOP_TASKRUN, so a completion waits for the busy
    /// thread's next system call instead of interrupting it (Linux 5.19+).
    /// false: upstream glommio's rings.
    #[arg(long, env = "MUDSHARD_COOP_TASKRUN", value_name = "BOOL", default_value_t = true, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub coop_taskrun: bool,

    /// Arm glommio's preemption timers on every executor loop, as upstream
    /// does; loadgen's executors have one task queue and skip them otherwise.
    #[arg(long, env = "MUDSHARD_GLOMMIO_PREEMPT_TIMERS", value_name = "BOOL", default_value_t = false, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub preempt_timers: bool,

    /// Call membarrier(2) before an executor sleeps, as upstream does,
    /// instead of a pair of fences.
    #[arg(long, env = "MUDSHARD_GLOMMIO_MEMBARRIER", value_name = "BOOL", default_value_t = false, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub membarrier_syscall: bool,
}

impl Default for RuntimeSwitches {
    /// The patched side of every switch (also what a report written before
    /// the switches existed was measured with, unless its environment said
    /// otherwise).
    fn default() -> Self {
        RuntimeSwitches {
            coop_taskrun: true,
            preempt_timers: false,
            membarrier_syscall: false,
        }
    }
}

impl Config {
    /// Seconds of draining after the last send.
    pub fn drain_s(&self) -> f64 {
        self.drain.unwrap_or(self.timeout)
    }

    /// Parses `--worker i/n` into `(i, n)`.
    pub fn worker_split(&self) -> Result<(u64, u64), String> {
        let (i, n) = self
            .worker
            .split_once('/')
            .ok_or_else(|| format!("--worker {}: expected i/n", self.worker))?;
        let i: u64 = i
            .trim()
            .parse()
            .map_err(|_| format!("--worker {}: bad i", self.worker))?;
        let n: u64 = n
            .trim()
            .parse()
            .map_err(|_| format!("--worker {}: bad n", self.worker))?;
        if n == 0 || i >= n {
            return Err(format!("--worker {}: need 0 <= i < n", self.worker));
        }
        Ok((i, n))
    }

    /// Checks bounds that flags alone cannot express.
    pub fn validate(&self) -> Result<(), String> {
        self.worker_split()?;
        if self.scenario == ScenarioKind::Chat && (self.rooms == 0 || self.rooms > self.players) {
            return Err("chat needs 1 <= --rooms <= --players".into());
        }
        if self.scenario == ScenarioKind::Cluster {
            self.validate_cluster()?;
        }
        if self.keep_to_shard && self.scenario != ScenarioKind::Walk {
            return Err("--keep-to-shard applies to walk only".into());
        }
        if self.scenario != ScenarioKind::Cluster
            && (self.walkers > 0 || self.walk_rate != 0.0 || self.walk_border.is_some())
        {
            return Err("--walkers, --walk-rate and --walk-border apply to cluster only".into());
        }
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            return Err("--rate must be a finite number >= 0".into());
        }
        if self.duration <= 0.0 || self.warmup < 0.0 || self.timeout <= 0.0 || self.drain_s() < 0.0
        {
            return Err("--duration and --timeout must be > 0, --warmup and --drain >= 0".into());
        }
        if !(0.0..=SEND_AHEAD_US_MAX).contains(&self.send_ahead_us) {
            return Err(format!(
                "--send-ahead-us must be in [0, {SEND_AHEAD_US_MAX}]"
            ));
        }
        if self.ramp_rate <= 0.0 || self.concurrency == 0 {
            return Err("--ramp-rate and --concurrency must be > 0".into());
        }
        if self.grid_width == 0 || self.grid_height == 0 {
            return Err("--grid-width and --grid-height must be > 0".into());
        }
        if self.targets.is_empty() {
            return Err("need at least one --target".into());
        }
        if self.scenario == ScenarioKind::Cluster {
            self.validate_walkers()?;
        }
        if self.scenario == ScenarioKind::Soak {
            if self.worker_split()?.1 > 1 {
                return Err(
                    "soak runs as one process: its leak check needs all of the load".into(),
                );
            }
            self.soak.validate(self.grid_width, self.grid_height)?;
        }
        Ok(())
    }

    /// `cluster`: every room must have players on every target, or its
    /// says would not cross hosts.
    fn validate_cluster(&self) -> Result<(), String> {
        let targets = self.targets.len() as u64;
        if self.rooms == 0 || self.players < self.rooms.saturating_mul(targets.max(2)) {
            return Err(format!(
                "cluster needs --rooms >= 1 and --players >= rooms × targets (at least 2 \
                 per room): {} players, {} rooms, {targets} targets",
                self.players, self.rooms
            ));
        }
        if !(0.0..=1.0).contains(&self.tell_share) {
            return Err("--tell-share must be in [0, 1]".into());
        }
        Ok(())
    }

    /// `cluster`: the first row of the second target's land (`--walk-border`).
    pub fn walk_border_row(&self) -> u32 {
        self.walk_border.unwrap_or(self.grid_height / 2)
    }

    /// `cluster --walkers`: a rate to walk at, and room on both sides of the
    /// border for the walkers' rows (`ROW-3 .. ROW+2`) below the chat rooms,
    /// whose says the walkers would otherwise hear.
    fn validate_walkers(&self) -> Result<(), String> {
        if self.walkers == 0 {
            if self.walk_rate != 0.0 {
                return Err("--walk-rate needs --walkers > 0".into());
            }
            return Ok(());
        }
        if !(self.walk_rate > 0.0 && self.walk_rate.is_finite()) {
            return Err(format!(
                "--walkers {} needs --walk-rate > 0 (moves per second, all walkers together)",
                self.walkers
            ));
        }
        let row = u64::from(self.walk_border_row());
        let chat_rows = self.rooms.div_ceil(u64::from(self.grid_width.max(1)));
        if row < chat_rows + 3 || row + 2 >= u64::from(self.grid_height) {
            return Err(format!(
                "--walk-border {row} leaves no room for the walkers: they walk rows \
                 --walk-border - 3 to --walk-border + 2, which must lie below the chat rooms' \
                 rows 0..{chat_rows} (--rooms {} / --grid-width {}) and above \
                 --grid-height {}",
                self.rooms, self.grid_width, self.grid_height
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(args: &[&str]) -> String {
        let config = Config::parse_from(std::iter::once("loadgen").chain(args.iter().copied()));
        config.validate().expect_err("refused")
    }

    fn accepted(args: &[&str]) -> bool {
        let config = Config::parse_from(std::iter::once("loadgen").chain(args.iter().copied()));
        config.validate().is_ok()
    }

    #[test]
    fn walkers_are_refused_outside_cluster() {
        for args in [
            &["walk", "--walkers", "4", "--walk-rate", "10"][..],
            &["chat", "--walk-rate", "10"],
            &["rtt", "--walk-border", "10"],
        ] {
            let why = refusal(args);
            assert!(why.contains("apply to cluster only"), "{args:?}: {why}");
        }
    }

    #[test]
    fn walkers_need_a_rate_and_a_rate_needs_walkers() {
        let why = refusal(&["cluster", "--walkers", "4"]);
        assert!(why.contains("--walk-rate > 0"), "{why}");
        let why = refusal(&["cluster", "--walkers", "4", "--walk-rate=-1"]);
        assert!(why.contains("--walk-rate > 0"), "{why}");
        let why = refusal(&["cluster", "--walk-rate", "5"]);
        assert!(why.contains("needs --walkers"), "{why}");
        assert!(accepted(&[
            "cluster",
            "--walkers",
            "4",
            "--walk-rate",
            "10"
        ]));
    }

    #[test]
    fn the_walk_border_leaves_rows_below_the_chat_rooms_and_above_the_grids_end() {
        // 10 rooms in rows of 4: rows 0..3; the walkers' rows start 3 above
        // the border.
        fn with(extra: &[&'static str]) -> Vec<&'static str> {
            let walkers = ["cluster", "--walkers", "4", "--walk-rate", "10"];
            [&walkers[..], &["--grid-width", "4"][..], extra].concat()
        }
        let why = refusal(&with(&["--walk-border", "5"]));
        assert!(
            why.contains("--walk-border 5") && why.contains("0..3"),
            "{why}"
        );
        assert!(accepted(&with(&["--walk-border", "6"])));
        // The second host's within walkers go down to border + 2.
        let why = refusal(&with(&["--walk-border", "98"]));
        assert!(why.contains("--grid-height 100"), "{why}");
        assert!(accepted(&with(&["--walk-border", "97"])));
        // The default border: half the grid.
        assert!(refusal(&with(&["--grid-height", "8"])).contains("--walk-border 4"));
        assert!(accepted(&with(&["--grid-height", "12"])));
    }
}
