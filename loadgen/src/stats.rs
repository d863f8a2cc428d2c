//! What one worker thread counts and times, merged across threads at the end.
//!
//! Each thread owns its `Stats` (no sharing on the hot path); the report
//! adds them up. Latencies are recorded in µs into hdrhistograms.

use crate::plan::WalkKind;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The longest latency a histogram holds, in µs (one hour); longer values
/// are clamped to it rather than lost.
pub const LATENCY_US_MAX: u64 = 3_600_000_000;

/// Significant figures kept by the histograms.
const HISTOGRAM_SIGFIGS: u8 = 3;

/// The time range whose operations count. An operation belongs to the window
/// when its *intended* send time falls inside it, so warm-up traffic and
/// traffic still in flight at the start are excluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Window {
    /// A window nothing falls in (before the run starts).
    pub const NEVER: Window = Window {
        start_ns: u64::MAX,
        end_ns: u64::MAX,
    };

    pub fn contains(&self, t_ns: u64) -> bool {
        t_ns >= self.start_ns && t_ns < self.end_ns
    }

    pub fn secs(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e9
    }
}

/// Counters of one thread (then of the whole run). Every field counts only
/// operations of the measured window unless its doc says otherwise. The
/// command counters (`sent` … `late_replies`) leave out the `cluster`
/// walkers' moves, which `moves_across` and `moves_within` count, so that the
/// talkers' figures read the same with walkers as without.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Counters {
    /// Sessions that logged in (and were placed), over the whole run.
    pub sessions_established: u64,
    /// Sessions that failed to connect, hand-shake, log in or be placed.
    pub sessions_failed: u64,
    /// Sessions the server ended before the run did (any reason).
    pub sessions_dropped: u64,
    /// Of the dropped, those closed with 1013 (too slow a reader).
    pub closed_slow_reader: u64,
    /// Commands (says, moves, looks) sent.
    pub sent: u64,
    /// Replies received to sent commands.
    pub replies: u64,
    /// Replies with `ok:false` other than `no_exit`.
    pub replies_failed: u64,
    /// Move replies with `code:"no_exit"`.
    pub no_exit: u64,
    /// `walk`: moves that landed in a room another shard owns than the
    /// walker's connection (each such move crossed shards to be answered).
    pub moves_off_shard: u64,
    /// Commands whose reply was not seen within `--timeout`.
    pub timeouts: u64,
    /// Replies that came after their command had already timed out.
    pub late_replies: u64,
    /// `error` frames from the server (any code).
    pub errors: u64,
    /// Of those, `rate_limited`.
    pub rate_limited: u64,
    /// Frames whose `seq` was not the previous one plus one.
    pub seq_gaps: u64,
    /// Sends refused because the session's outbound buffer was full.
    pub send_overflows: u64,
    /// Frames the client could not decode (the session is ended).
    pub protocol_errors: u64,
    /// Say events a listener should have received (says × listeners).
    pub deliveries_expected: u64,
    /// Say events received.
    pub deliveries_received: u64,
    /// `cluster`: of the expected say deliveries, those to listeners on the
    /// sender's own target (host).
    pub deliveries_expected_same_host: u64,
    /// `cluster`: … and those to listeners on another target.
    pub deliveries_expected_cross_host: u64,
    /// `cluster`: say events received from a sender on the listener's target.
    pub deliveries_received_same_host: u64,
    /// `cluster`: say events received from a sender on another target.
    pub deliveries_received_cross_host: u64,
    /// `cluster`: tells sent (each expected once at its listener).
    pub tells_expected: u64,
    /// `cluster`: tell events received.
    pub tells_received: u64,
    /// `enter` events received.
    pub enter_events: u64,
    /// `leave` events received.
    pub leave_events: u64,
    /// `churn`: sessions that went through connect, guest, look and quit.
    pub churn_completed: u64,
    /// `churn`: iterations that failed at any step.
    pub churn_failed: u64,
    /// The furthest the sender fell behind its schedule, in µs.
    pub send_lag_us_max: u64,
    /// `cluster`: the moves of the walkers who cross the hosts' border.
    pub moves_across: MoveCounts,
    /// `cluster`: the moves of the walkers who keep to their host's land.
    pub moves_within: MoveCounts,
}

/// `cluster`: the moves of one kind of walker (`WalkKind`), counted apart
/// from the talkers' commands, by their intended send times in the window.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct MoveCounts {
    /// Moves sent.
    pub sent: u64,
    /// Replies received (including late ones).
    pub answered: u64,
    /// Replies with `ok:false` other than `no_exit`.
    pub failed: u64,
    /// Replies with `code:"no_exit"`: a step chosen from a position a move
    /// still in flight was about to change. Not a failure.
    pub no_exit: u64,
    /// Moves whose reply was not seen within `--timeout`.
    pub timeouts: u64,
}

impl MoveCounts {
    fn add(&mut self, o: &MoveCounts) {
        self.sent += o.sent;
        self.answered += o.answered;
        self.failed += o.failed;
        self.no_exit += o.no_exit;
        self.timeouts += o.timeouts;
    }
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        self.sessions_established += o.sessions_established;
        self.sessions_failed += o.sessions_failed;
        self.sessions_dropped += o.sessions_dropped;
        self.closed_slow_reader += o.closed_slow_reader;
        self.sent += o.sent;
        self.replies += o.replies;
        self.replies_failed += o.replies_failed;
        self.no_exit += o.no_exit;
        self.moves_off_shard += o.moves_off_shard;
        self.timeouts += o.timeouts;
        self.late_replies += o.late_replies;
        self.errors += o.errors;
        self.rate_limited += o.rate_limited;
        self.seq_gaps += o.seq_gaps;
        self.send_overflows += o.send_overflows;
        self.protocol_errors += o.protocol_errors;
        self.deliveries_expected += o.deliveries_expected;
        self.deliveries_received += o.deliveries_received;
        self.deliveries_expected_same_host += o.deliveries_expected_same_host;
        self.deliveries_expected_cross_host += o.deliveries_expected_cross_host;
        self.deliveries_received_same_host += o.deliveries_received_same_host;
        self.deliveries_received_cross_host += o.deliveries_received_cross_host;
        self.tells_expected += o.tells_expected;
        self.tells_received += o.tells_received;
        self.enter_events += o.enter_events;
        self.leave_events += o.leave_events;
        self.churn_completed += o.churn_completed;
        self.churn_failed += o.churn_failed;
        self.send_lag_us_max = self.send_lag_us_max.max(o.send_lag_us_max);
        self.moves_across.add(&o.moves_across);
        self.moves_within.add(&o.moves_within);
    }

    /// The move counters of walkers of `kind`.
    pub fn moves_mut(&mut self, kind: WalkKind) -> &mut MoveCounts {
        match kind {
            WalkKind::Across => &mut self.moves_across,
            WalkKind::Within => &mut self.moves_within,
        }
    }
}

/// A latency histogram in µs.
#[derive(Debug, Clone)]
pub struct Latency(Histogram<u64>);

impl Default for Latency {
    fn default() -> Self {
        Latency(
            Histogram::new_with_bounds(1, LATENCY_US_MAX, HISTOGRAM_SIGFIGS)
                .expect("static histogram bounds are valid"), // ok: constant bounds
        )
    }
}

impl Latency {
    /// Records the time from `from_ns` to `to_ns` (0 if the clock says the
    /// reply came before the send, which cannot happen on one monotonic clock).
    pub fn record_span(&mut self, from_ns: u64, to_ns: u64) {
        let us = (to_ns.saturating_sub(from_ns) / 1000).clamp(1, LATENCY_US_MAX);
        self.0.saturating_record(us);
    }

    pub fn histogram(&self) -> &Histogram<u64> {
        &self.0
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The non-empty buckets as `[value_us, count]` (value: the highest
    /// value the bucket stands for), lowest first.
    pub fn buckets(&self) -> Vec<[u64; 2]> {
        self.0
            .iter_recorded()
            .map(|v| [v.value_iterated_to(), v.count_at_value()])
            .collect()
    }

    /// A histogram holding what `buckets` listed.
    pub fn from_buckets(buckets: &[[u64; 2]]) -> Latency {
        let mut l = Latency::default();
        for &[value, count] in buckets {
            l.0.saturating_record_n(value.clamp(1, LATENCY_US_MAX), count);
        }
        l
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot fail; saturate anyway.
        let _ = self.0.add(&other.0);
    }
}

/// Everything one thread measured.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub counters: Counters,
    /// Intended send → reply, per command.
    pub reply: Latency,
    /// Intended send → delivery, per say event received.
    pub delivery: Latency,
    /// `cluster`: the part of `delivery` whose sender was on the listener's target.
    pub delivery_same_host: Latency,
    /// `cluster`: the part of `delivery` whose sender was on another target.
    pub delivery_cross_host: Latency,
    /// `cluster`: intended send → tell event delivered.
    pub tell: Latency,
    /// TCP connect → `welcome` (from the intended start in `churn`).
    pub setup: Latency,
    /// `cluster`: intended send → reply, per move across the hosts' border.
    pub move_across: Latency,
    /// `cluster`: intended send → reply, per move within a host's land.
    pub move_within: Latency,
    /// The `soak` scenario's own counts.
    pub soak: crate::scenario::soak::counters::SoakCounters,
}

impl Stats {
    /// Every latency histogram with its name, for the chart (empty ones are
    /// left out there).
    pub fn curves(&self) -> [(&'static str, &Latency); 8] {
        [
            ("reply", &self.reply),
            ("delivery", &self.delivery),
            ("same-host delivery", &self.delivery_same_host),
            ("cross-host delivery", &self.delivery_cross_host),
            ("tell", &self.tell),
            ("setup", &self.setup),
            ("move across hosts", &self.move_across),
            ("move within a host", &self.move_within),
        ]
    }

    /// The move latencies of walkers of `kind`.
    pub fn move_latency_mut(&mut self, kind: WalkKind) -> &mut Latency {
        match kind {
            WalkKind::Across => &mut self.move_across,
            WalkKind::Within => &mut self.move_within,
        }
    }

    pub fn merge(&mut self, other: &Stats) {
        self.counters.add(&other.counters);
        self.reply.merge(&other.reply);
        self.delivery.merge(&other.delivery);
        self.delivery_same_host.merge(&other.delivery_same_host);
        self.delivery_cross_host.merge(&other.delivery_cross_host);
        self.tell.merge(&other.tell);
        self.setup.merge(&other.setup);
        self.move_across.merge(&other.move_across);
        self.move_within.merge(&other.move_within);
        self.soak.add(&other.soak);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_stats_add_counts_and_keep_the_worst_lag() {
        let mut a = Stats::default();
        a.counters.sent = 3;
        a.counters.send_lag_us_max = 10;
        a.reply.record_span(0, 5_000_000);
        let mut b = Stats::default();
        b.counters.sent = 4;
        b.counters.send_lag_us_max = 7;
        b.reply.record_span(0, 1_000_000);
        a.counters.moves_across.sent = 2;
        b.counters.moves_across.sent = 5;
        b.counters.moves_within.failed = 1;
        a.move_within.record_span(0, 3_000_000);
        b.move_within.record_span(0, 2_000_000);
        b.move_across.record_span(0, 1_000_000);
        a.merge(&b);
        assert_eq!(a.counters.sent, 7);
        assert_eq!(a.counters.moves_across.sent, 7);
        assert_eq!(a.counters.moves_within.failed, 1);
        assert_eq!((a.move_across.count(), a.move_within.count()), (1, 2));
        assert_eq!(a.counters.send_lag_us_max, 10);
        assert_eq!(a.reply.count(), 2);
        assert!(a.reply.histogram().max() >= 4_990);
    }

    #[test]
    fn a_histogram_survives_its_bucket_list() {
        let mut l = Latency::default();
        for us in [1u64, 7, 250, 251, 9_999, 1_234_567, 40_000_000] {
            for _ in 0..us % 5 + 1 {
                l.record_span(0, us * 1000);
            }
        }
        let back = Latency::from_buckets(&l.buckets());
        assert_eq!(back.count(), l.count());
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(
                back.histogram().value_at_quantile(q),
                l.histogram().value_at_quantile(q),
                "quantile {q}"
            );
        }
        assert_eq!(back.histogram().max(), l.histogram().max());
    }

    #[test]
    fn the_window_is_half_open() {
        let w = Window {
            start_ns: 10,
            end_ns: 20,
        };
        assert!(w.contains(10) && w.contains(19));
        assert!(!w.contains(20) && !w.contains(9));
        assert!(!Window::NEVER.contains(0));
    }
}
