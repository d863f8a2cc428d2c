//! What the bridge counts, read by `/metrics` and `/healthz`. Written by the
//! bridge's two threads, read by shards: atomics, and one lock around the
//! hop histogram, taken once per probe and once per scrape.

use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// The breaker's state as the shards see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BridgeState {
    /// Both links are up and the last probe came back: other hosts are
    /// reachable.
    Up,
    /// Both links are connected again, and the bridge waits for its probe to
    /// come back through Redis before it trusts them.
    Probing,
    /// A link is down (the breaker is open): messages to other hosts are
    /// queued (bounded) and commands that need them answer `unreachable`.
    Down,
}

impl BridgeState {
    pub fn as_str(self) -> &'static str {
        match self {
            BridgeState::Up => "up",
            BridgeState::Probing => "probing",
            BridgeState::Down => "down",
        }
    }

    /// For the gauge: 0 up, 1 probing, 2 down.
    pub fn as_gauge(self) -> u64 {
        match self {
            BridgeState::Up => 0,
            BridgeState::Probing => 1,
            BridgeState::Down => 2,
        }
    }
}

/// Counters and gauges of one host's bridge.
#[derive(Default)]
pub struct BridgeStats {
    pub publisher_up: AtomicBool,
    pub subscriber_up: AtomicBool,
    /// The last probe sent came back in time.
    pub probe_ok: AtomicBool,
    /// `PUBLISH` commands sent (one per envelope).
    pub publishes: AtomicU64,
    /// Messages inside them.
    pub messages_published: AtomicU64,
    /// Pipelined round trips to Redis.
    pub round_trips: AtomicU64,
    pub envelopes_received: AtomicU64,
    pub messages_received: AtomicU64,
    /// Envelopes refused: undecodable, another wire version.
    pub envelopes_refused: AtomicU64,
    /// Envelopes that came after a gap in their source's sequence.
    pub sequence_gaps: AtomicU64,
    /// Connections (re)made by either thread after the first.
    pub reconnects: AtomicU64,
    /// Subscriber connections found wedged by a missed probe.
    pub wedged: AtomicU64,
    /// This host's run: its boot epoch, until the other hosts count it dead
    /// (its link was cut for longer than a heartbeat lives) and it starts a
    /// new run. Envelopes carry it; the other hosts tell runs apart by it.
    pub run_epoch: AtomicU64,
    /// New runs started because the other hosts had counted this one dead.
    pub reborn: AtomicU64,
    /// Messages dropped because the publisher's queue was full.
    pub dropped: AtomicU64,
    /// Live hosts other than this one, by their heartbeats.
    pub peers_live: AtomicU64,
    /// Envelopes published again because their receiver had not
    /// acknowledged them.
    pub resent: AtomicU64,
    /// Envelopes given up on: skipped by this host's receiver after a gap
    /// nobody filled, or let go unacknowledged by its sender's bounds.
    pub lost: AtomicU64,
    /// Envelopes published and not yet acknowledged by their receivers
    /// (kept to be sent again).
    pub unacknowledged: AtomicU64,
    /// What this host's subscriber has received in order, as its heartbeat
    /// carries it (`sequence::Receipts::render`).
    pub acks: Mutex<String>,
    /// Time from publishing a probe to this host's own inbox to reading it
    /// back: one cross-host hop through Redis, in microseconds.
    hop_us: Mutex<Option<Histogram<u64>>>,
}

impl BridgeStats {
    pub fn state(&self) -> BridgeState {
        if !self.publisher_up.load(Ordering::Relaxed) || !self.subscriber_up.load(Ordering::Relaxed)
        {
            BridgeState::Down
        } else if !self.probe_ok.load(Ordering::Relaxed) {
            BridgeState::Probing
        } else {
            BridgeState::Up
        }
    }

    pub fn record_hop_us(&self, us: u64) {
        if let Ok(mut hop) = self.hop_us.lock() {
            let hist = hop.get_or_insert_with(|| {
                // ok: constant bounds, valid by construction
                Histogram::new_with_bounds(1, 60_000_000, 2).expect("valid histogram bounds")
            });
            let _ = hist.record(us.clamp(1, 60_000_000));
        }
    }

    /// The hop latency's count and its p50, p99 and max in microseconds.
    pub fn hop_summary(&self) -> (u64, u64, u64, u64) {
        let Ok(hop) = self.hop_us.lock() else {
            return (0, 0, 0, 0);
        };
        match hop.as_ref() {
            Some(h) => (
                h.len(),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.max(),
            ),
            None => (0, 0, 0, 0),
        }
    }
}
