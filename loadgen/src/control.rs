//! What the main thread and the worker threads share: the configuration, the
//! start line (every worker waits until all have opened their sessions, then
//! all start on one clock), and progress figures for the progress bar.
//!
//! Workers publish progress every sweep (tens of ms), not per message, so
//! these atomics are never on the hot path.

use crate::clock::secs_to_ns;
use crate::config::Config;
use crate::stats::{Counters, Window};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The timeline of a run, fixed once every worker is ready.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    /// Sending starts (the warm-up begins).
    pub start_ns: u64,
    /// The measured window: after the warm-up, `--duration` long.
    pub window: Window,
    /// Reading stops: the window's end plus `--drain`.
    pub stop_ns: u64,
}

/// One worker's published progress.
#[derive(Debug, Default)]
struct Progress {
    established: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    failures: AtomicU64,
}

/// A snapshot of the progress of all workers.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProgressTotals {
    pub established: u64,
    pub sent: u64,
    pub received: u64,
    pub failures: u64,
}

/// See the module doc.
#[derive(Debug)]
pub struct Control {
    pub config: Config,
    pub threads: usize,
    ready: AtomicUsize,
    start_ns: AtomicU64,
    progress: Vec<Progress>,
}

impl Control {
    pub fn new(config: Config, threads: usize) -> Control {
        Control {
            config,
            threads,
            ready: AtomicUsize::new(0),
            start_ns: AtomicU64::new(0),
            progress: (0..threads).map(|_| Progress::default()).collect(),
        }
    }

    /// A worker has opened its sessions (or given up on the failed ones).
    pub fn mark_ready(&self) {
        self.ready.fetch_add(1, Ordering::AcqRel);
    }

    pub fn all_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire) >= self.threads
    }

    /// Fixes the start line (main thread only).
    pub fn set_start(&self, start_ns: u64) {
        self.start_ns.store(start_ns, Ordering::Release);
    }

    /// The run's timeline, once the start line is set.
    pub fn phases(&self) -> Option<Phases> {
        let start_ns = self.start_ns.load(Ordering::Acquire);
        (start_ns != 0).then(|| self.phases_from(start_ns))
    }

    /// The timeline for a run starting at `start_ns`.
    pub fn phases_from(&self, start_ns: u64) -> Phases {
        let window_start = start_ns + secs_to_ns(self.config.warmup);
        let window_end = window_start + secs_to_ns(self.config.duration);
        Phases {
            start_ns,
            window: Window {
                start_ns: window_start,
                end_ns: window_end,
            },
            stop_ns: window_end + secs_to_ns(self.config.drain_s()),
        }
    }

    /// Publishes worker `id`'s counters for the progress bar.
    pub fn publish(&self, id: usize, c: &Counters) {
        let Some(p) = self.progress.get(id) else {
            return;
        };
        p.established.store(
            c.sessions_established + c.churn_completed,
            Ordering::Relaxed,
        );
        let moves = [&c.moves_across, &c.moves_within];
        p.sent.store(
            c.sent + moves.iter().map(|m| m.sent).sum::<u64>(),
            Ordering::Relaxed,
        );
        p.received.store(
            c.replies
                + c.deliveries_received
                + c.tells_received
                + c.enter_events
                + c.leave_events
                + moves.iter().map(|m| m.answered).sum::<u64>(),
            Ordering::Relaxed,
        );
        p.failures.store(
            c.sessions_failed
                + c.sessions_dropped
                + c.errors
                + c.timeouts
                + c.churn_failed
                + moves.iter().map(|m| m.failed + m.timeouts).sum::<u64>(),
            Ordering::Relaxed,
        );
    }

    pub fn totals(&self) -> ProgressTotals {
        self.progress
            .iter()
            .fold(ProgressTotals::default(), |t, p| ProgressTotals {
                established: t.established + p.established.load(Ordering::Relaxed),
                sent: t.sent + p.sent.load(Ordering::Relaxed),
                received: t.received + p.received.load(Ordering::Relaxed),
                failures: t.failures + p.failures.load(Ordering::Relaxed),
            })
    }
}
