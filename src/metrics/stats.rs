//! What a shard counts about itself. Only the shard's own thread writes its
//! counters; `/metrics` asks every shard for a copy (a gather), so no counter
//! is shared between threads.

use hdrhistogram::Histogram;

/// The command kinds counted in `/metrics`, in a fixed order.
pub const COMMAND_KINDS: [&str; 14] = [
    "look",
    "go",
    "say",
    "emote",
    "tell",
    "shout",
    "who",
    "inventory",
    "get",
    "drop",
    "help",
    "quit",
    "goto",
    "invalid",
];

/// Latency percentiles in microseconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct LatencySummary {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

impl LatencySummary {
    fn of(h: &Histogram<u64>) -> LatencySummary {
        LatencySummary {
            count: h.len(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// A copy of one shard's figures, sent to whoever renders `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct ShardStats {
    pub shard: u16,
    pub connections: u64,
    pub players: u64,
    pub bodies: u64,
    pub accepted_total: u64,
    pub refused_total: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub writes: u64,
    /// Of those, the writes the shard's write pass made straight to the
    /// socket, without waking the session's task (`net/session_io.rs`).
    pub writes_direct: u64,
    pub commands: [u64; COMMAND_KINDS.len()],
    pub errors_sent: u64,
    pub rate_limited: u64,
    /// Sessions closed with 1008 for flooding past the rate limit.
    pub rate_limit_closes: u64,
    /// Connections refused at accept: their address held
    /// `connections_per_ip_max` connections already.
    pub per_ip_refused: u64,
    /// Request heads refused: request line too long (414), too many
    /// headers (431), too many bytes (431).
    pub http_request_line_refused: u64,
    pub http_headers_refused: u64,
    pub http_head_bytes_refused: u64,
    /// Connections closed because their request head was not in by the
    /// login deadline (a slowloris, or a client that never spoke).
    pub http_head_timeouts: u64,
    /// Quiet sessions whose reads parked on the shard's `epoll` instance,
    /// and parked sessions woken by it (`net/readiness.rs`).
    pub reads_parked: u64,
    pub reads_woken: u64,
    /// Quiet seconds in which the shard had the allocator give back its
    /// emptied pages (`Shard::tidy_heap`).
    pub heap_collects: u64,
    /// Answers from another host that came after their command had been
    /// answered `unreachable`: shown, completing nothing.
    pub late_answers: u64,
    pub cross_shard_sent: u64,
    pub cross_shard_received: u64,
    pub outbound_drops: u64,
    /// Sessions kept without a connection, waiting for a resume.
    pub detached: u64,
    /// Sessions resumed here (a new connection attached).
    pub resumes: u64,
    /// Resumes refused (`resume_failed`).
    pub resumes_failed: u64,
    /// Resuming connections handed from this shard to another one.
    pub resumes_handed_over: u64,
    /// Messages waiting in this shard's inbox.
    pub inbox_depth: u64,
    /// Messages this shard holds for other shards' full inboxes.
    pub inbox_parked: u64,
    /// Times this shard found another shard's inbox full.
    pub inbox_full_total: u64,
    pub command_latency: LatencySummary,
    pub hop_latency: LatencySummary,
}

/// The live counters of one shard.
pub struct Counters {
    pub stats: ShardStats,
    command_us: Histogram<u64>,
    hop_us: Histogram<u64>,
}

/// Latencies above this are clamped: a minute is already a failure.
const LATENCY_US_MAX: u64 = 60_000_000;

impl Counters {
    pub fn new(shard: u16) -> Counters {
        let histogram = || {
            // Bounds are constants that hdrhistogram accepts; 3 significant figures.
            Histogram::new_with_bounds(1, LATENCY_US_MAX, 3)
                .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
        };
        Counters {
            stats: ShardStats {
                shard,
                ..ShardStats::default()
            },
            command_us: histogram(),
            hop_us: histogram(),
        }
    }

    pub fn command(&mut self, kind: &str) {
        if let Some(i) = COMMAND_KINDS.iter().position(|k| *k == kind) {
            self.stats.commands[i] += 1;
        }
    }

    pub fn command_latency(&mut self, us: u64) {
        self.command_us
            .saturating_record(us.clamp(1, LATENCY_US_MAX));
    }

    pub fn hop_latency(&mut self, us: u64) {
        self.hop_us.saturating_record(us.clamp(1, LATENCY_US_MAX));
    }

    pub fn snapshot(&self) -> ShardStats {
        let mut stats = self.stats.clone();
        stats.command_latency = LatencySummary::of(&self.command_us);
        stats.hop_latency = LatencySummary::of(&self.hop_us);
        stats
    }
}

/// The bridge between hosts as `/healthz` and `/metrics` show it: plain
/// figures, read from the bridge's counters by the shard that answers.
#[derive(Clone, Debug, Default)]
pub struct BridgeFacts {
    /// `up`, `probing` or `down`.
    pub state: &'static str,
    /// 0 up, 1 probing, 2 down.
    pub state_gauge: u64,
    /// The other hosts whose heartbeats are live, by id.
    pub hosts_live: Vec<String>,
    pub publishes: u64,
    pub messages_published: u64,
    pub round_trips: u64,
    pub envelopes_received: u64,
    pub messages_received: u64,
    pub envelopes_refused: u64,
    pub sequence_gaps: u64,
    pub reconnects: u64,
    pub wedged: u64,
    pub reborn: u64,
    pub dropped: u64,
    pub queue_depth: u64,
    pub resent: u64,
    pub lost: u64,
    pub unacknowledged: u64,
    /// Saves of players whose home is another host, waiting to go.
    pub saves_waiting: u64,
    /// Probe round trips through Redis: count, p50, p99, max (µs).
    pub hop_us: (u64, u64, u64, u64),
}
