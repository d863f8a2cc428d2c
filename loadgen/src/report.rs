//! The run's figures, derived once from the merged counters and histograms:
//! the JSON report (`--json`), the table printed at the end, and whether the
//! run failed.
//!
//! How figures are computed:
//! * every operation is counted in the measured window by its *intended* send
//!   time; rates are counts divided by the window's length;
//! * latencies are from the intended send time (coordinated-omission
//!   corrected), except session setup in the ramp-up (from the actual
//!   connect, since ramp-up is not measured traffic);
//! * the achieved rate is the commands (or churn iterations) actually sent
//!   for intended times in the window, per second; below 95% of the
//!   requested rate the run did not hold its rate;
//! * server CPU per delivered message is the server's utime+stime over the
//!   window divided by the messages delivered to this process for
//!   operations of the window (replies + say/tell/enter/leave events;
//!   sessions for `churn`); with several server processes (`cluster`), their
//!   CPU time is summed;
//! * `cluster` walkers' moves are counted and timed by kind (across the
//!   hosts' border, within a host's land) apart from the talkers' commands,
//!   whose figures (`rate`, `counts.sent`, `latency_us.reply`) they leave as
//!   they are; their failures and timeouts count in the error rate, and
//!   their replies among the messages delivered.

use crate::config::{Config, ScenarioKind};
use crate::run::{MachineSample, Outcome};
use crate::scenario::soak::report::SoakFigures;
use crate::stats::{Counters, Latency, MoveCounts};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// A run that achieved less than this share of its requested rate did not
/// hold it.
pub const RATE_HELD_RATIO_MIN: f64 = 0.95;

/// Percentiles of one latency histogram, in µs.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    fn of(latency: &Latency) -> Percentiles {
        let h = latency.histogram();
        let empty = h.is_empty();
        let at = |q: f64| if empty { 0 } else { h.value_at_quantile(q) };
        Percentiles {
            count: h.len(),
            mean_us: if empty { 0.0 } else { h.mean() },
            p50_us: at(0.5),
            p90_us: at(0.9),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: if empty { 0 } else { h.max() },
        }
    }
}

/// Requested versus achieved rate.
#[derive(Debug, Clone, Serialize)]
pub struct RateFigures {
    /// `--rate` across all workers (0 = closed loop / no rate).
    pub requested_total_per_s: f64,
    /// This process's share of it.
    pub requested_per_s: f64,
    pub achieved_per_s: f64,
    /// False when achieved < 95% of requested: the figures then describe an
    /// overloaded run, not the requested load.
    pub held: bool,
    pub send_lag_ms_max: f64,
}

/// Per-second throughput in the window.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub replies_per_s: f64,
    pub deliveries_per_s: f64,
    pub enter_leave_per_s: f64,
    pub sessions_per_s: f64,
    /// Messages the server delivered for window operations (see module doc).
    pub delivered_msgs: u64,
    pub delivered_msgs_per_s: f64,
}

/// Say deliveries: what the room sizes promise versus what arrived.
#[derive(Debug, Clone, Serialize)]
pub struct Deliveries {
    pub expected: u64,
    pub received: u64,
    pub missing: i64,
}

/// `cluster`: deliveries by where the sender and the listener were.
#[derive(Debug, Clone, Serialize)]
pub struct ClusterFigures {
    /// Hosts (`--target`s) the players were spread over.
    pub targets: usize,
    /// Says heard on the sender's own host.
    pub same_host: DeliveryFigures,
    /// Says heard on another host: what the bridge carried.
    pub cross_host: DeliveryFigures,
    /// Tells, each to a listener on another host.
    pub tells: DeliveryFigures,
    /// The walkers' moves (`--walkers`), by kind.
    pub walks: WalkFigures,
}

/// `cluster`: the walkers' moves, across the border between the hosts'
/// lands and within one host's land.
#[derive(Debug, Clone, Serialize)]
pub struct WalkFigures {
    /// This process's share of `--walk-rate`, moves per second.
    pub requested_per_s: f64,
    /// Moves sent per second, both kinds.
    pub achieved_per_s: f64,
    /// False when achieved < 95% of requested.
    pub held: bool,
    /// Walkers stepping back and forth across the border (each move a
    /// hand-off between hosts on mudshard).
    pub across: MoveFigures,
    /// Walkers walking two rows of the land of the host they are on.
    pub within: MoveFigures,
}

impl WalkFigures {
    fn of(c: &Counters, requested_per_s: f64, secs: f64) -> WalkFigures {
        let achieved_per_s = (c.moves_across.sent + c.moves_within.sent) as f64 / secs;
        WalkFigures {
            requested_per_s,
            achieved_per_s,
            held: requested_per_s <= 0.0 || achieved_per_s >= RATE_HELD_RATIO_MIN * requested_per_s,
            across: MoveFigures::of(&c.moves_across, secs),
            within: MoveFigures::of(&c.moves_within, secs),
        }
    }
}

/// One kind of walker's moves in the window.
#[derive(Debug, Clone, Serialize)]
pub struct MoveFigures {
    pub sent: u64,
    /// Replies received, whatever they said (`failed` and `no_exit` among them).
    pub answered: u64,
    /// Replies with `ok:false` other than `no_exit`.
    pub failed: u64,
    /// Steps from a position that a move still in flight was changing: not
    /// failures.
    pub no_exit: u64,
    /// Moves not answered within `--timeout`.
    pub timeouts: u64,
    /// Moves sent per second (the rate achieved).
    pub per_s: f64,
}

impl MoveFigures {
    fn of(c: &MoveCounts, secs: f64) -> MoveFigures {
        MoveFigures {
            sent: c.sent,
            answered: c.answered,
            failed: c.failed,
            no_exit: c.no_exit,
            timeouts: c.timeouts,
            per_s: c.sent as f64 / secs,
        }
    }

    /// The share of the moves sent that failed or timed out.
    fn problem_ratio(&self) -> f64 {
        (self.failed + self.timeouts) as f64 / self.sent.max(1) as f64
    }
}

/// Expected versus received deliveries of one kind, and the rate received.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryFigures {
    pub expected: u64,
    pub received: u64,
    pub missing: i64,
    pub received_per_s: f64,
}

impl DeliveryFigures {
    fn of(expected: u64, received: u64, secs: f64) -> DeliveryFigures {
        DeliveryFigures {
            expected,
            received,
            missing: expected as i64 - received as i64,
            received_per_s: received as f64 / secs,
        }
    }

    /// The share of the expected that did not arrive.
    fn missing_ratio(&self) -> f64 {
        self.missing.max(0) as f64 / self.expected.max(1) as f64
    }
}

/// The server, when it runs on this machine (summed over its processes
/// when there are several, one per `cluster` host).
#[derive(Debug, Clone, Serialize)]
pub struct ServerFigures {
    pub pid: Option<u32>,
    pub pids: Vec<u32>,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    /// (RSS after − RSS before) / sessions held (`idle`).
    pub rss_per_session_bytes: Option<f64>,
    pub cpu_s: Option<f64>,
    pub cpu_us_per_msg: Option<f64>,
}

/// The whole machine over the measured window (from `/proc/stat`), so that
/// a run disturbed by something else says so.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MachineFigures {
    /// Online CPUs.
    pub cores: usize,
    /// Average CPUs busy: every process's CPU time in the window (kernel
    /// threads included), from per-process accounting.
    pub busy_cores: Option<f64>,
    /// Share of the machine's CPU time the hypervisor gave to others, %.
    pub steal_pct: Option<f64>,
    /// This loadgen process's CPU time in the window, s (summed over
    /// workers in a merged report).
    pub loadgen_cpu_s: Option<f64>,
    /// Average CPUs busy with anything but the server and the loadgen
    /// process(es): busy − server − loadgen (kernel threads included; in
    /// one worker's report of a split run, the other workers too).
    pub other_cores: Option<f64>,
}

/// Steal above this share of the machine's time makes a warning, %.
pub const STEAL_PCT_WARN: f64 = 5.0;
/// Other processes busy with more than this many CPUs make a warning. Not
/// zero: the kernel's own threads (ksoftirqd handling loopback traffic among
/// them) count as others.
pub const OTHER_CORES_WARN: f64 = 0.5;

impl MachineFigures {
    fn of(m: &MachineSample, window_s: f64, server_cpu_s: Option<f64>) -> MachineFigures {
        let busy_cores = m.busy_us.map(|us| us as f64 / 1e6 / window_s);
        let loadgen_cpu_s = m.loadgen_cpu_us.map(|us| us as f64 / 1e6);
        MachineFigures {
            cores: m.cores,
            busy_cores,
            steal_pct: m
                .steal_us
                .zip(m.total_us.filter(|t| *t > 0))
                .map(|(s, t)| s as f64 * 100.0 / t as f64),
            loadgen_cpu_s,
            other_cores: MachineFigures::other(busy_cores, server_cpu_s, loadgen_cpu_s, window_s),
        }
    }

    /// busy − server − loadgen, in CPUs; unknown when any part is.
    pub fn other(
        busy_cores: Option<f64>,
        server_cpu_s: Option<f64>,
        loadgen_cpu_s: Option<f64>,
        window_s: f64,
    ) -> Option<f64> {
        Some((busy_cores? - (server_cpu_s? + loadgen_cpu_s?) / window_s).max(0.0))
    }
}

/// Latencies by kind.
#[derive(Debug, Clone, Serialize)]
pub struct Latencies {
    /// Intended send → reply (commands: say, look, moves; churn's look).
    pub reply: Percentiles,
    /// Intended send → say event delivered to a listener.
    pub delivery: Percentiles,
    /// `cluster`: the deliveries to listeners on the sender's host.
    pub delivery_same_host: Percentiles,
    /// `cluster`: the deliveries to listeners on another host.
    pub delivery_cross_host: Percentiles,
    /// `cluster`: intended send → tell event delivered.
    pub tell: Percentiles,
    /// Connect → welcome (from the intended start in churn).
    pub setup: Percentiles,
    /// `cluster`: intended send → reply, per walker's move across the
    /// border between the hosts' lands.
    pub move_across: Percentiles,
    /// `cluster`: intended send → reply, per walker's move within a host's land.
    pub move_within: Percentiles,
}

/// The whole report (the `--json` file).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: &'static str,
    pub version: &'static str,
    pub scenario: ScenarioKind,
    /// False when the run failed (the exit status is then non-zero).
    pub ok: bool,
    pub failures: Vec<String>,
    pub warnings: Vec<String>,
    pub config: Config,
    pub threads: usize,
    pub players_here: u64,
    pub warmup_s: f64,
    pub measured_s: f64,
    pub rate: RateFigures,
    pub throughput: Throughput,
    pub deliveries: Deliveries,
    /// `cluster` only: deliveries split by host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterFigures>,
    pub latency_us: Latencies,
    pub counts: Counters,
    /// (errors + timeouts + failed replies + send overflows + dropped
    /// sessions [+ failed churn iterations] [+ failed and timed-out moves
    /// of `cluster` walkers]) / operations.
    pub error_rate: f64,
    pub server: ServerFigures,
    pub machine: MachineFigures,
    /// The latency histograms themselves, as `[value_us, count]` pairs of
    /// their non-empty buckets, so that reports of several `--worker`
    /// processes can be merged exactly (`loadgen merge`).
    pub histograms: Histograms,
    /// The `soak` scenario's resumes, slow readers, abusers, server memory
    /// over time and leak check.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub soak: Option<SoakFigures>,
}

/// Non-empty buckets of each latency histogram: `[value_us, count]`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Histograms {
    pub reply: Vec<[u64; 2]>,
    pub delivery: Vec<[u64; 2]>,
    pub setup: Vec<[u64; 2]>,
    pub delivery_same_host: Vec<[u64; 2]>,
    pub delivery_cross_host: Vec<[u64; 2]>,
    pub tell: Vec<[u64; 2]>,
    pub move_across: Vec<[u64; 2]>,
    pub move_within: Vec<[u64; 2]>,
}

impl Report {
    pub fn build(config: &Config, outcome: &Outcome) -> Report {
        let c = &outcome.stats.counters;
        let secs = outcome.phases.window.secs().max(1e-9);
        let scenario = config.scenario;
        let churn = scenario == ScenarioKind::Churn;
        let churn_started = c.churn_completed + c.churn_failed;
        let (requested_per_s, achieved_per_s) = match scenario {
            ScenarioKind::Idle => (0.0, 0.0),
            ScenarioKind::Churn => (outcome.rate_here_per_s, churn_started as f64 / secs),
            _ => (outcome.rate_here_per_s, c.sent as f64 / secs),
        };
        let held =
            requested_per_s <= 0.0 || achieved_per_s >= RATE_HELD_RATIO_MIN * requested_per_s;
        let moves = [&c.moves_across, &c.moves_within];
        let delivered_msgs = if churn {
            c.churn_completed
        } else {
            c.replies
                + c.deliveries_received
                + c.tells_received
                + c.enter_events
                + c.leave_events
                + moves.iter().map(|m| m.answered).sum::<u64>()
        };
        let (operations, problems) = if churn {
            (churn_started, c.churn_failed + c.errors)
        } else if scenario == ScenarioKind::Idle {
            (outcome.players_here, c.sessions_dropped + c.errors)
        } else {
            (
                c.sent + moves.iter().map(|m| m.sent).sum::<u64>(),
                c.errors
                    + c.timeouts
                    + c.replies_failed
                    + c.send_overflows
                    + c.sessions_dropped
                    + moves.iter().map(|m| m.failed + m.timeouts).sum::<u64>(),
            )
        };
        let error_rate = problems as f64 / operations.max(1) as f64;
        let sample = &outcome.server;
        let rss_per_session_bytes = match (sample.rss_before_kib, sample.rss_after_kib) {
            (Some(before), Some(after))
                if scenario == ScenarioKind::Idle && c.sessions_established > 0 =>
            {
                Some((after as f64 - before as f64) * 1024.0 / c.sessions_established as f64)
            }
            _ => None,
        };
        let cpu_us_per_msg = sample
            .cpu_us
            .filter(|_| delivered_msgs > 0)
            .map(|us| us as f64 / delivered_msgs as f64);

        let mut report = Report {
            tool: "loadgen",
            version: env!("CARGO_PKG_VERSION"),
            scenario,
            ok: true,
            failures: outcome.fatal.clone(),
            warnings: Vec::new(),
            config: config.clone(),
            threads: outcome.threads,
            players_here: outcome.players_here,
            warmup_s: config.warmup,
            measured_s: secs,
            rate: RateFigures {
                requested_total_per_s: if scenario == ScenarioKind::Idle {
                    0.0
                } else {
                    config.rate
                },
                requested_per_s,
                achieved_per_s,
                held,
                send_lag_ms_max: c.send_lag_us_max as f64 / 1000.0,
            },
            throughput: Throughput {
                replies_per_s: c.replies as f64 / secs,
                deliveries_per_s: c.deliveries_received as f64 / secs,
                enter_leave_per_s: (c.enter_events + c.leave_events) as f64 / secs,
                sessions_per_s: c.churn_completed as f64 / secs,
                delivered_msgs,
                delivered_msgs_per_s: delivered_msgs as f64 / secs,
            },
            deliveries: Deliveries {
                expected: c.deliveries_expected,
                received: c.deliveries_received,
                missing: c.deliveries_expected as i64 - c.deliveries_received as i64,
            },
            cluster: (scenario == ScenarioKind::Cluster).then(|| ClusterFigures {
                targets: config.targets.len(),
                same_host: DeliveryFigures::of(
                    c.deliveries_expected_same_host,
                    c.deliveries_received_same_host,
                    secs,
                ),
                cross_host: DeliveryFigures::of(
                    c.deliveries_expected_cross_host,
                    c.deliveries_received_cross_host,
                    secs,
                ),
                tells: DeliveryFigures::of(c.tells_expected, c.tells_received, secs),
                walks: WalkFigures::of(c, outcome.walk_rate_here_per_s, secs),
            }),
            latency_us: Latencies {
                reply: Percentiles::of(&outcome.stats.reply),
                delivery: Percentiles::of(&outcome.stats.delivery),
                delivery_same_host: Percentiles::of(&outcome.stats.delivery_same_host),
                delivery_cross_host: Percentiles::of(&outcome.stats.delivery_cross_host),
                tell: Percentiles::of(&outcome.stats.tell),
                setup: Percentiles::of(&outcome.stats.setup),
                move_across: Percentiles::of(&outcome.stats.move_across),
                move_within: Percentiles::of(&outcome.stats.move_within),
            },
            counts: c.clone(),
            error_rate,
            server: ServerFigures {
                pid: sample.pid,
                pids: sample.pids.clone(),
                rss_before_kib: sample.rss_before_kib,
                rss_after_kib: sample.rss_after_kib,
                rss_per_session_bytes,
                cpu_s: sample.cpu_us.map(|us| us as f64 / 1e6),
                cpu_us_per_msg,
            },
            machine: MachineFigures::of(
                &outcome.machine,
                secs,
                sample.cpu_us.map(|us| us as f64 / 1e6),
            ),
            histograms: Histograms {
                reply: outcome.stats.reply.buckets(),
                delivery: outcome.stats.delivery.buckets(),
                setup: outcome.stats.setup.buckets(),
                delivery_same_host: outcome.stats.delivery_same_host.buckets(),
                delivery_cross_host: outcome.stats.delivery_cross_host.buckets(),
                tell: outcome.stats.tell.buckets(),
                move_across: outcome.stats.move_across.buckets(),
                move_within: outcome.stats.move_within.buckets(),
            },
            soak: outcome
                .soak
                .as_ref()
                .map(|s| SoakFigures::of(&outcome.stats.soak, s)),
        };
        report.judge(config, outcome);
        report
    }

    /// Decides failures and warnings.
    fn judge(&mut self, config: &Config, outcome: &Outcome) {
        let c = &self.counts;
        let churn = self.scenario == ScenarioKind::Churn;
        let why = outcome.first_error.as_deref().unwrap_or("unknown");
        if !churn && c.sessions_failed > 0 {
            self.failures.push(format!(
                "{} of {} sessions failed to establish (first: {why})",
                c.sessions_failed, self.players_here
            ));
        }
        if !churn && self.players_here > 0 && c.sessions_established == 0 {
            self.failures.push("no session could be established".into());
        }
        if churn && c.churn_completed == 0 {
            self.failures
                .push(format!("no churn iteration completed (first error: {why})"));
        }
        if self.error_rate > config.max_error_rate {
            self.failures.push(format!(
                "error rate {:.3}% is over --max-error-rate {:.3}%",
                self.error_rate * 100.0,
                config.max_error_rate * 100.0
            ));
        }
        let expected = self.deliveries.expected;
        if expected > 0 {
            let missing = self.deliveries.missing.max(0) as f64 / expected as f64;
            if missing > config.max_error_rate {
                self.failures.push(format!(
                    "{:.3}% of expected say deliveries missing (over --max-error-rate)",
                    missing * 100.0
                ));
            }
        }
        if let Some(cluster) = &self.cluster {
            for (what, figures) in [
                ("cross-host say deliveries", &cluster.cross_host),
                ("same-host say deliveries", &cluster.same_host),
                ("tells", &cluster.tells),
            ] {
                if figures.missing_ratio() > config.max_error_rate {
                    self.failures.push(format!(
                        "{:.3}% of expected {what} missing (over --max-error-rate)",
                        figures.missing_ratio() * 100.0
                    ));
                }
            }
            let walks = &cluster.walks;
            for (what, moves) in [("across", &walks.across), ("within", &walks.within)] {
                if moves.problem_ratio() > config.max_error_rate {
                    self.failures.push(format!(
                        "{:.3}% of the moves {what} failed or timed out ({} failed, {} timed \
                         out of {} sent; over --max-error-rate)",
                        moves.problem_ratio() * 100.0,
                        moves.failed,
                        moves.timeouts,
                        moves.sent
                    ));
                }
            }
            if walks.requested_per_s > 0.0 && walks.across.answered + walks.within.answered == 0 {
                self.failures
                    .push("the walkers' moves got no reply at all".into());
            }
            if !walks.held {
                self.warnings.push(format!(
                    "WALK RATE NOT HELD: achieved {:.1} moves/s of {:.1}/s requested ({:.0}%)",
                    walks.achieved_per_s,
                    walks.requested_per_s,
                    walks.achieved_per_s * 100.0 / walks.requested_per_s.max(1e-9)
                ));
            }
        }
        if !self.rate.held {
            self.warnings.push(format!(
                "RATE NOT HELD: achieved {:.1}/s of {:.1}/s requested ({:.0}%)",
                self.rate.achieved_per_s,
                self.rate.requested_per_s,
                self.rate.achieved_per_s * 100.0 / self.rate.requested_per_s.max(1e-9)
            ));
        }
        if c.sessions_dropped > 0 {
            self.warnings.push(format!(
                "{} sessions dropped by the server ({} with 1013 slow reader; first: {why})",
                c.sessions_dropped, c.closed_slow_reader
            ));
        }
        // In `cluster` only the first target's players send (walkers aside).
        let senders = match &self.cluster {
            Some(cluster) => {
                let all = (config.players + config.walkers).max(1) as f64;
                let talkers = self.players_here as f64 * config.players as f64 / all;
                talkers / cluster.targets.max(1) as f64
            }
            None => self.players_here as f64,
        };
        let per_player = self.rate.requested_per_s / senders.max(1.0);
        if !churn && per_player > 15.0 {
            self.warnings.push(format!(
                "{per_player:.1} commands/s per player is close to the server's 20/s limit: add players"
            ));
        }
        let per_walker = config.walk_rate / config.walkers.max(1) as f64;
        if self.cluster.is_some() && per_walker > 15.0 {
            self.warnings.push(format!(
                "{per_walker:.1} moves/s per walker is close to the server's 20/s limit: add walkers"
            ));
        }
        if let Some(steal) = self.machine.steal_pct.filter(|s| *s > STEAL_PCT_WARN) {
            self.warnings.push(format!(
                "the hypervisor stole {steal:.1}% of this machine's CPU time during the window: \
                 latencies are disturbed; run again"
            ));
        }
        // A worker of a split run sees the other workers as others; the
        // merged report judges the whole.
        let one_of_several = config.worker_split().is_ok_and(|(_, n)| n > 1);
        if let Some(other) = self
            .machine
            .other_cores
            .filter(|o| *o > OTHER_CORES_WARN && !one_of_several)
        {
            self.warnings.push(format!(
                "processes other than the server and loadgen kept {other:.2} CPUs busy during \
                 the window: the figures are disturbed"
            ));
        }
        if let Some(soak) = &self.soak {
            soak.judge(
                config,
                c.churn_failed,
                &mut self.failures,
                &mut self.warnings,
            );
        }
        if self.server.pid.is_none() {
            self.warnings.push(
                "server pid unknown (no --server-pid, no /healthz pid): no CPU or memory figures"
                    .into(),
            );
        }
        self.ok = self.failures.is_empty();
    }

    /// The human table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let r = &self.rate;
        let _ = writeln!(
            t,
            "loadgen {:?}: {} players here, {} threads, {:.1} s measured after {:.1} s warm-up",
            self.scenario, self.players_here, self.threads, self.measured_s, self.warmup_s
        );
        if r.requested_per_s > 0.0 || self.scenario == ScenarioKind::Churn {
            let held = if r.held { "held" } else { "NOT HELD" };
            let _ = writeln!(t, "  rate        requested {:>10.1}/s   achieved {:>10.1}/s   {held}   (max send lag {:.1} ms)",
                r.requested_per_s, r.achieved_per_s, r.send_lag_ms_max);
        }
        let c = &self.counts;
        let tp = &self.throughput;
        let _ = writeln!(
            t,
            "  sessions    established {}  failed {}  dropped {} (1013: {})",
            c.sessions_established, c.sessions_failed, c.sessions_dropped, c.closed_slow_reader
        );
        let _ = writeln!(t, "  commands    sent {}  replies {} ({:.1}/s)  timeouts {}  late {}  failed {}  no_exit {}",
            c.sent, c.replies, tp.replies_per_s, c.timeouts, c.late_replies, c.replies_failed, c.no_exit);
        if self.scenario == ScenarioKind::Walk {
            let share = c.moves_off_shard as f64 / c.replies.max(1) as f64;
            let _ = writeln!(
                t,
                "  walk        moves into another shard's room {} ({:.1}% of replies)",
                c.moves_off_shard,
                share * 100.0
            );
        }
        let _ = writeln!(
            t,
            "  errors      {} (rate_limited {})  seq gaps {}  send overflows {}  protocol {}",
            c.errors, c.rate_limited, c.seq_gaps, c.send_overflows, c.protocol_errors
        );
        if self.deliveries.expected > 0 || self.deliveries.received > 0 {
            let _ = writeln!(
                t,
                "  deliveries  expected {}  received {}  missing {}  ({:.1}/s)",
                self.deliveries.expected,
                self.deliveries.received,
                self.deliveries.missing,
                tp.deliveries_per_s
            );
        }
        if let Some(cluster) = &self.cluster {
            for (name, d) in [
                ("same-host", &cluster.same_host),
                ("cross-host", &cluster.cross_host),
                ("tells", &cluster.tells),
            ] {
                let _ = writeln!(
                    t,
                    "  {name:<11} expected {}  received {}  missing {}  ({:.1}/s)",
                    d.expected, d.received, d.missing, d.received_per_s
                );
            }
            let walks = &cluster.walks;
            if walks.requested_per_s > 0.0 || walks.across.sent + walks.within.sent > 0 {
                for (name, m) in [
                    ("walk across", &walks.across),
                    ("walk within", &walks.within),
                ] {
                    let _ = writeln!(
                        t,
                        "  {name:<11} moves {}  answered {}  failed {}  no_exit {}  timeouts {}  ({:.1}/s)",
                        m.sent, m.answered, m.failed, m.no_exit, m.timeouts, m.per_s
                    );
                }
            }
        }
        if c.enter_events + c.leave_events > 0 {
            let _ = writeln!(
                t,
                "  movement    enter {}  leave {}  ({:.1}/s)",
                c.enter_events, c.leave_events, tp.enter_leave_per_s
            );
        }
        if self.scenario == ScenarioKind::Churn || self.scenario == ScenarioKind::Soak {
            let _ = writeln!(
                t,
                "  churn       completed {}  failed {}  ({:.1} sessions/s)",
                c.churn_completed, c.churn_failed, tp.sessions_per_s
            );
        }
        let _ = writeln!(
            t,
            "  latency (ms)       count      p50      p90      p99    p99.9      max"
        );
        let l = &self.latency_us;
        for (name, p) in [
            ("reply", &l.reply),
            ("delivery", &l.delivery),
            ("same-host", &l.delivery_same_host),
            ("cross-host", &l.delivery_cross_host),
            ("tell", &l.tell),
            ("move across", &l.move_across),
            ("move within", &l.move_within),
            ("setup", &l.setup),
        ] {
            if p.count == 0 {
                continue;
            }
            let ms = |us: u64| us as f64 / 1000.0;
            let _ = writeln!(
                t,
                "    {name:<11} {:>11} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
                p.count,
                ms(p.p50_us),
                ms(p.p90_us),
                ms(p.p99_us),
                ms(p.p999_us),
                ms(p.max_us)
            );
        }
        let s = &self.server;
        if let Some(pid) = s.pid {
            let _ = write!(t, "  server      pid {pid}");
            for other in s.pids.iter().skip(1) {
                let _ = write!(t, "+{other}");
            }
            if let (Some(a), Some(b)) = (s.rss_before_kib, s.rss_after_kib) {
                let _ = write!(t, "  rss {a} -> {b} KiB");
            }
            if let Some(per) = s.rss_per_session_bytes {
                let _ = write!(t, "  ({:.0} B/session)", per);
            }
            if let Some(cpu) = s.cpu_s {
                let _ = write!(t, "  cpu {cpu:.2} s");
            }
            if let Some(per) = s.cpu_us_per_msg {
                let _ = write!(t, "  {per:.2} µs/msg");
            }
            let _ = writeln!(t);
        }
        let m = &self.machine;
        if let Some(busy) = m.busy_cores {
            let _ = write!(t, "  machine     {} cores, {busy:.2} busy", m.cores);
            if let Some(lg) = m.loadgen_cpu_s {
                let _ = write!(t, "  loadgen cpu {lg:.2} s");
            }
            if let Some(other) = m.other_cores {
                let _ = write!(t, "  others {other:.2} cores");
            }
            if let Some(steal) = m.steal_pct {
                let _ = write!(t, "  steal {steal:.1}%");
            }
            let _ = writeln!(t);
        }
        if let Some(soak) = &self.soak {
            soak.table(&mut t);
        }
        let _ = writeln!(t, "  error rate  {:.3}%", self.error_rate * 100.0);
        for w in &self.warnings {
            let _ = writeln!(t, "  WARNING: {w}");
        }
        for f in &self.failures {
            let _ = writeln!(t, "  FAILED: {f}");
        }
        let _ = writeln!(t, "  result      {}", if self.ok { "ok" } else { "FAILED" });
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::Phases;
    use crate::run::ServerSample;
    use crate::stats::{Stats, Window};
    use clap::Parser;

    /// A `cluster` run of 10 s whose 100 says all went well, and whose
    /// walkers (10 moves/s requested) made `across` and `within`.
    fn walked(across: MoveCounts, within: MoveCounts) -> Report {
        let config =
            Config::parse_from(["loadgen", "cluster", "--walkers", "4", "--walk-rate", "10"]);
        let mut stats = Stats::default();
        let c = &mut stats.counters;
        c.sessions_established = 104;
        (c.sent, c.replies) = (100, 100);
        (c.moves_across, c.moves_within) = (across, within);
        let outcome = Outcome {
            stats,
            phases: Phases {
                start_ns: 0,
                window: Window {
                    start_ns: 0,
                    end_ns: 10_000_000_000,
                },
                stop_ns: 10_000_000_000,
            },
            server: ServerSample::default(),
            machine: MachineSample::default(),
            threads: 1,
            players_here: 104,
            rate_here_per_s: 10.0,
            walk_rate_here_per_s: 10.0,
            fatal: Vec::new(),
            first_error: None,
            soak: None,
        };
        Report::build(&config, &outcome)
    }

    fn moves(sent: u64, answered: u64, failed: u64, no_exit: u64) -> MoveCounts {
        MoveCounts {
            sent,
            answered,
            failed,
            no_exit,
            timeouts: sent - answered,
        }
    }

    #[test]
    fn moves_that_answer_even_with_no_exit_leave_a_cluster_run_ok() {
        let report = walked(moves(50, 50, 0, 4), moves(50, 50, 0, 0));
        assert!(report.ok, "{:?}", report.failures);
        let walks = &report.cluster.as_ref().expect("cluster").walks;
        assert_eq!((walks.across.no_exit, walks.across.per_s), (4, 5.0));
        assert!(walks.held && walks.achieved_per_s == 10.0);
        assert_eq!(report.throughput.delivered_msgs, 200);
        assert!(report.table().contains("walk across moves 50  answered 50"));
    }

    #[test]
    fn failed_or_timed_out_moves_fail_a_cluster_run() {
        let failed = walked(moves(50, 50, 3, 0), moves(50, 50, 0, 0));
        assert!(!failed.ok);
        assert!(
            failed.failures.iter().any(|f| f.contains("moves across")),
            "{:?}",
            failed.failures
        );
        assert!(failed.error_rate > 0.01);
        let timed_out = walked(moves(50, 50, 0, 0), moves(50, 45, 0, 0));
        assert!(!timed_out.ok);
        assert!(
            timed_out
                .failures
                .iter()
                .any(|f| f.contains("moves within") && f.contains("5 timed out")),
            "{:?}",
            timed_out.failures
        );
    }

    #[test]
    fn walkers_whose_moves_were_never_answered_fail_the_run() {
        let silent = walked(moves(0, 0, 0, 0), moves(0, 0, 0, 0));
        assert!(!silent.ok);
        assert!(silent.failures.iter().any(|f| f.contains("no reply")));
        assert!(!silent.cluster.as_ref().expect("cluster").walks.held);
    }
}
