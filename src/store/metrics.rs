//! The store's counters for `/metrics`: written by the store thread (and by a
//! handle on its rare overflow path), read rarely by the metrics endpoint.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use hdrhistogram::Histogram;

/// Highest flush latency the histogram tracks exactly: 60 s in µs. Slower
/// flushes are clamped to it (and still counted).
const FLUSH_LATENCY_US_MAX: u64 = 60_000_000;

/// Store health: how far behind it is, how big and slow its batches are, and
/// how often it fails. Render with [`StoreMetrics::render_prometheus`].
pub struct StoreMetrics {
    /// Requests waiting in the channel (sampled by the store thread).
    pub queue_depth: AtomicU64,
    /// Coalesced writes held in memory for the next flush.
    pub pending_writes: AtomicU64,
    /// Requests parked in handles' overflow lists right now.
    pub overflow_depth: AtomicU64,
    /// Requests that ever went to an overflow list because the channel was full.
    pub overflow_total: AtomicU64,
    /// Write-behind batches committed.
    pub batches_total: AtomicU64,
    /// Writes (distinct players and rooms) in all committed batches.
    pub batch_writes_sum: AtomicU64,
    /// Largest batch committed.
    pub batch_writes_max: AtomicU64,
    /// Transactions committed (batches and registration groups).
    pub commits_total: AtomicU64,
    /// Accounts created.
    pub registrations_total: AtomicU64,
    /// Failed statements, commits and requests that could not be carried out.
    pub errors_total: AtomicU64,
    /// Player saves dropped because a newer save of that player had arrived.
    pub stale_saves_total: AtomicU64,
    /// Account lookups answered "no account" by the account filter, on the
    /// shard, without the store thread (`filter.rs`): guests' chosen names.
    pub lookups_ruled_out_total: AtomicU64,
    /// Bytes of the account filter (fixed at open).
    pub filter_bytes: AtomicU64,
    flush_latency_us_sum: AtomicU64,
    flush_latency_us: Mutex<Histogram<u64>>,
}

impl Default for StoreMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl StoreMetrics {
    /// All zeros.
    pub fn new() -> StoreMetrics {
        let histogram = Histogram::new_with_bounds(1, FLUSH_LATENCY_US_MAX, 3)
            .expect("static histogram bounds are valid"); // ok: constant bounds
        StoreMetrics {
            queue_depth: AtomicU64::new(0),
            pending_writes: AtomicU64::new(0),
            overflow_depth: AtomicU64::new(0),
            overflow_total: AtomicU64::new(0),
            batches_total: AtomicU64::new(0),
            batch_writes_sum: AtomicU64::new(0),
            batch_writes_max: AtomicU64::new(0),
            commits_total: AtomicU64::new(0),
            registrations_total: AtomicU64::new(0),
            errors_total: AtomicU64::new(0),
            stale_saves_total: AtomicU64::new(0),
            lookups_ruled_out_total: AtomicU64::new(0),
            filter_bytes: AtomicU64::new(0),
            flush_latency_us_sum: AtomicU64::new(0),
            flush_latency_us: Mutex::new(histogram),
        }
    }

    pub(crate) fn record_batch(&self, writes: u64, latency_us: u64) {
        self.batches_total.fetch_add(1, Relaxed);
        self.commits_total.fetch_add(1, Relaxed);
        self.batch_writes_sum.fetch_add(writes, Relaxed);
        self.batch_writes_max.fetch_max(writes, Relaxed);
        self.flush_latency_us_sum.fetch_add(latency_us, Relaxed);
        if let Ok(mut histogram) = self.flush_latency_us.lock() {
            histogram.saturating_record(latency_us.clamp(1, FLUSH_LATENCY_US_MAX));
        }
    }

    pub(crate) fn record_error(&self) {
        self.errors_total.fetch_add(1, Relaxed);
    }

    /// Flush latency at `quantile` (0.0–1.0) in µs; 0 before the first flush.
    pub fn flush_latency_us_at(&self, quantile: f64) -> u64 {
        match self.flush_latency_us.lock() {
            Ok(histogram) if !histogram.is_empty() => histogram.value_at_quantile(quantile),
            _ => 0,
        }
    }

    /// Appends the store's metrics in Prometheus text format.
    pub fn render_prometheus(&self, out: &mut String) {
        let gauges = [
            (
                "queue_depth",
                "Requests waiting in the store channel.",
                &self.queue_depth,
            ),
            (
                "pending_writes",
                "Coalesced writes waiting for the next flush.",
                &self.pending_writes,
            ),
            (
                "overflow_depth",
                "Requests parked in handle overflow lists.",
                &self.overflow_depth,
            ),
            (
                "batch_writes_max",
                "Largest write-behind batch.",
                &self.batch_writes_max,
            ),
            (
                "filter_bytes",
                "Bytes of the filter of names that may have an account.",
                &self.filter_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            metric(out, name, "gauge", help, value.load(Relaxed));
        }
        let counters = [
            (
                "overflow_total",
                "Requests that found the store channel full.",
                &self.overflow_total,
            ),
            (
                "batches_total",
                "Write-behind batches committed.",
                &self.batches_total,
            ),
            (
                "batch_writes_total",
                "Writes in committed batches.",
                &self.batch_writes_sum,
            ),
            (
                "commits_total",
                "Transactions committed.",
                &self.commits_total,
            ),
            (
                "registrations_total",
                "Accounts created.",
                &self.registrations_total,
            ),
            (
                "errors_total",
                "Store errors (logged; writes kept and retried).",
                &self.errors_total,
            ),
            (
                "stale_saves_total",
                "Player saves older than one already taken, dropped.",
                &self.stale_saves_total,
            ),
            (
                "lookups_ruled_out_total",
                "Account lookups answered by the account filter, without the store thread.",
                &self.lookups_ruled_out_total,
            ),
        ];
        for (name, help, value) in counters {
            metric(out, name, "counter", help, value.load(Relaxed));
        }
        self.render_flush_latency(out);
    }

    fn render_flush_latency(&self, out: &mut String) {
        let (count, p50, p99, max) = match self.flush_latency_us.lock() {
            Ok(h) if !h.is_empty() => (
                h.len(),
                h.value_at_quantile(0.5),
                h.value_at_quantile(0.99),
                h.max(),
            ),
            _ => (0, 0, 0, 0),
        };
        let name = "mudshard_store_flush_latency_us";
        let _ = writeln!(
            out,
            "# HELP {name} Write-behind flush (one transaction) latency in microseconds."
        );
        let _ = writeln!(out, "# TYPE {name} summary");
        let _ = writeln!(out, "{name}{{quantile=\"0.5\"}} {p50}");
        let _ = writeln!(out, "{name}{{quantile=\"0.99\"}} {p99}");
        let _ = writeln!(out, "{name}{{quantile=\"1\"}} {max}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.flush_latency_us_sum.load(Relaxed)
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP mudshard_store_{name} {help}");
    let _ = writeln!(out, "# TYPE mudshard_store_{name} {kind}");
    let _ = writeln!(out, "mudshard_store_{name} {value}");
}
