//! What the shards count (`stats.rs`) and how it is shown: `/metrics`
//! (Prometheus text) and `/healthz` (JSON). The figures come from a gather
//! over every shard; rendering them needs no shard.

pub mod stats;

use std::fmt::Write;

use crate::store::StoreMetrics;
use stats::{BridgeFacts, LatencySummary, ShardStats, COMMAND_KINDS};

/// What a host says about itself beside its shards' figures.
pub struct HostFacts<'a> {
    pub host_id: &'a str,
    /// Rooms in the world this host serves.
    pub rooms: usize,
    /// The core each shard is pinned to (`--cores`); empty: none pinned.
    pub cores: &'a [usize],
    pub store: &'a StoreMetrics,
    /// The bridge to other hosts; `None` when this host runs alone.
    pub bridge: Option<BridgeFacts>,
}

/// `/healthz`: host id, process id, shards, and per shard its connections,
/// players and the core it is pinned to (`null`: unpinned).
pub fn health_json(host: &HostFacts<'_>, stats: &[ShardStats]) -> Vec<u8> {
    let mut out = String::with_capacity(256);
    out.push_str("{\"status\":\"ok\",\"host\":");
    let mut host_id = Vec::new();
    crate::protocol::encode::put_str(&mut host_id, host.host_id);
    out.push_str(&String::from_utf8_lossy(&host_id));
    let _ = write!(
        out,
        ",\"pid\":{},\"shards\":{},\"connections\":[",
        std::process::id(),
        stats.len()
    );
    for (i, s) in stats.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}", s.connections);
    }
    out.push_str("],\"players\":[");
    for (i, s) in stats.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}", s.players);
    }
    out.push_str("],\"cores\":[");
    for (i, s) in stats.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match host.cores.get(usize::from(s.shard)) {
            Some(core) => {
                let _ = write!(out, "{core}");
            }
            None => out.push_str("null"),
        }
    }
    let _ = write!(out, "],\"rooms\":{}", host.rooms);
    if let Some(b) = &host.bridge {
        let _ = write!(out, ",\"bridge\":{{\"state\":\"{}\",\"hosts\":[", b.state);
        for (i, h) in b.hosts_live.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let mut id = Vec::new();
            crate::protocol::encode::put_str(&mut id, h);
            out.push_str(&String::from_utf8_lossy(&id));
        }
        out.push_str("]}");
    }
    out.push('}');
    out.into_bytes()
}

/// A per-shard series: name, Prometheus type, help text, and its value.
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ShardStats) -> u64,
);

/// `/metrics`: every counter per shard, latency summaries, the store's
/// queue, batches, flush latency and errors, process figures.
pub fn prometheus_text(host: &HostFacts<'_>, stats: &[ShardStats]) -> Vec<u8> {
    let mut out = String::with_capacity(8 * 1024);
    let counters: [Series; 31] = [
        (
            "mudshard_connections",
            "gauge",
            "Open WebSocket sessions.",
            |s| s.connections,
        ),
        (
            "mudshard_players",
            "gauge",
            "Logged-in players whose connection is on this shard.",
            |s| s.players,
        ),
        (
            "mudshard_bodies",
            "gauge",
            "Player bodies in rooms this shard owns.",
            |s| s.bodies,
        ),
        (
            "mudshard_sessions_accepted_total",
            "counter",
            "WebSocket upgrades accepted.",
            |s| s.accepted_total,
        ),
        (
            "mudshard_sessions_refused_total",
            "counter",
            "Upgrades refused with 503 (shard full).",
            |s| s.refused_total,
        ),
        (
            "mudshard_frames_in_total",
            "counter",
            "Client text messages received.",
            |s| s.frames_in,
        ),
        (
            "mudshard_frames_out_total",
            "counter",
            "Frames sent.",
            |s| s.frames_out,
        ),
        (
            "mudshard_bytes_in_total",
            "counter",
            "Bytes read from clients.",
            |s| s.bytes_in,
        ),
        (
            "mudshard_bytes_out_total",
            "counter",
            "Bytes written to clients.",
            |s| s.bytes_out,
        ),
        (
            "mudshard_writes_total",
            "counter",
            "Write syscalls (frames are batched into them).",
            |s| s.writes,
        ),
        (
            "mudshard_writes_direct_total",
            "counter",
            "Of the writes, those the shard's write pass made straight to the socket, without waking the session's task.",
            |s| s.writes_direct,
        ),
        (
            "mudshard_errors_sent_total",
            "counter",
            "Error frames sent.",
            |s| s.errors_sent,
        ),
        (
            "mudshard_rate_limited_total",
            "counter",
            "Commands refused by the rate limit.",
            |s| s.rate_limited,
        ),
        (
            "mudshard_cross_host_late_answers_total",
            "counter",
            "Answers from another host that came after their command was answered unreachable: shown to the player, completing nothing.",
            |s| s.late_answers,
        ),
        (
            "mudshard_rate_limit_closes_total",
            "counter",
            "Sessions closed with 1008 for hitting the rate limit rate_limited_max times in rate_limited_window_ms.",
            |s| s.rate_limit_closes,
        ),
        (
            "mudshard_connections_refused_per_ip_total",
            "counter",
            "Connections answered 503 too_many_connections: their address held connections_per_ip_max already.",
            |s| s.per_ip_refused,
        ),
        (
            "mudshard_http_head_timeouts_total",
            "counter",
            "Connections closed because their request head was not in by the login timeout.",
            |s| s.http_head_timeouts,
        ),
        (
            "mudshard_reads_parked_total",
            "counter",
            "Quiet sessions whose reads parked on the shard's epoll instance (park_reads_after_ms).",
            |s| s.reads_parked,
        ),
        (
            "mudshard_reads_woken_total",
            "counter",
            "Parked sessions woken by their socket becoming readable or hung up.",
            |s| s.reads_woken,
        ),
        (
            "mudshard_heap_collects_total",
            "counter",
            "Quiet seconds in which the shard had the allocator give back the pages emptied since.",
            |s| s.heap_collects,
        ),
        (
            "mudshard_cross_shard_sent_total",
            "counter",
            "Messages sent to other shards.",
            |s| s.cross_shard_sent,
        ),
        (
            "mudshard_cross_shard_received_total",
            "counter",
            "Messages received from other shards.",
            |s| s.cross_shard_received,
        ),
        (
            "mudshard_outbound_drops_total",
            "counter",
            "Sessions closed with 1013 for a full outbound queue.",
            |s| s.outbound_drops,
        ),
        (
            "mudshard_sessions_detached",
            "gauge",
            "Sessions whose connection dropped, kept for a resume.",
            |s| s.detached,
        ),
        (
            "mudshard_resumes_total",
            "counter",
            "Sessions resumed on a new connection.",
            |s| s.resumes,
        ),
        (
            "mudshard_resumes_failed_total",
            "counter",
            "Resumes refused with resume_failed.",
            |s| s.resumes_failed,
        ),
        (
            "mudshard_resumes_handed_over_total",
            "counter",
            "Resuming connections handed to the shard of their session.",
            |s| s.resumes_handed_over,
        ),
        (
            "mudshard_inbox_depth",
            "gauge",
            "Messages waiting in this shard's inbox (bound: limits.inbox_msgs_max).",
            |s| s.inbox_depth,
        ),
        (
            "mudshard_inbox_parked",
            "gauge",
            "Messages this shard holds for other shards' full inboxes.",
            |s| s.inbox_parked,
        ),
        (
            "mudshard_inbox_full_total",
            "counter",
            "Times this shard found another shard's inbox full and parked.",
            |s| s.inbox_full_total,
        ),
        (
            "mudshard_command_latency_count",
            "counter",
            "Commands whose handling was timed.",
            |s| s.command_latency.count,
        ),
    ];
    for (name, kind, help, get) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in stats {
            let _ = writeln!(out, "{name}{{shard=\"{}\"}} {}", s.shard, get(s));
        }
    }
    out.push_str("# HELP mudshard_commands_total Commands handled, by kind.\n# TYPE mudshard_commands_total counter\n");
    for s in stats {
        for (kind, n) in COMMAND_KINDS.iter().zip(s.commands.iter()) {
            let _ = writeln!(
                out,
                "mudshard_commands_total{{shard=\"{}\",kind=\"{kind}\"}} {n}",
                s.shard
            );
        }
    }
    out.push_str("# HELP mudshard_http_refused_total Request heads refused for a bound: request line (414), header count or head bytes (431).\n# TYPE mudshard_http_refused_total counter\n");
    for s in stats {
        for (reason, n) in [
            ("request_line_too_long", s.http_request_line_refused),
            ("too_many_headers", s.http_headers_refused),
            ("head_too_large", s.http_head_bytes_refused),
        ] {
            let _ = writeln!(
                out,
                "mudshard_http_refused_total{{shard=\"{}\",reason=\"{reason}\"}} {n}",
                s.shard
            );
        }
    }
    summary(
        &mut out,
        "mudshard_command_latency_us",
        "Command handling, from the frame read to the reply queued (µs).",
        stats,
        |s| s.command_latency,
    );
    summary(
        &mut out,
        "mudshard_cross_shard_hop_us",
        "A command's hop to the shard that owns its room (µs).",
        stats,
        |s| s.hop_latency,
    );
    host.store.render_prometheus(&mut out);
    if let Some(b) = &host.bridge {
        bridge(&mut out, b);
    }
    process(&mut out);
    out.into_bytes()
}

/// The bridge's figures: one series each, for the host.
fn bridge(out: &mut String, b: &BridgeFacts) {
    let series: [(&str, &str, &str, u64); 18] = [
        (
            "mudshard_bridge_state",
            "gauge",
            "The bridge's breaker: 0 up, 1 probing (reconnected, waiting for its probe), 2 down.",
            b.state_gauge,
        ),
        (
            "mudshard_bridge_hosts_live",
            "gauge",
            "Other hosts whose heartbeats are live.",
            b.hosts_live.len() as u64,
        ),
        (
            "mudshard_bridge_publishes_total",
            "counter",
            "PUBLISH commands sent (one envelope each).",
            b.publishes,
        ),
        (
            "mudshard_bridge_messages_published_total",
            "counter",
            "Messages inside them (messages / publishes: the batching factor).",
            b.messages_published,
        ),
        (
            "mudshard_bridge_round_trips_total",
            "counter",
            "Pipelined round trips to Redis.",
            b.round_trips,
        ),
        (
            "mudshard_bridge_envelopes_received_total",
            "counter",
            "Envelopes received from other hosts.",
            b.envelopes_received,
        ),
        (
            "mudshard_bridge_messages_received_total",
            "counter",
            "Messages inside them.",
            b.messages_received,
        ),
        (
            "mudshard_bridge_envelopes_refused_total",
            "counter",
            "Envelopes refused: undecodable or another wire version.",
            b.envelopes_refused,
        ),
        (
            "mudshard_bridge_sequence_gaps_total",
            "counter",
            "Envelopes that arrived after a gap in their source's sequence (envelopes lost).",
            b.sequence_gaps,
        ),
        (
            "mudshard_bridge_reconnects_total",
            "counter",
            "Redis connections made again after a failure.",
            b.reconnects,
        ),
        (
            "mudshard_bridge_wedged_total",
            "counter",
            "Subscriber connections found wedged by missed probes, and remade.",
            b.wedged,
        ),
        (
            "mudshard_bridge_reborn_total",
            "counter",
            "New runs this host started because the other hosts had counted it dead (its link was cut longer than its heartbeat lives).",
            b.reborn,
        ),
        (
            "mudshard_bridge_dropped_total",
            "counter",
            "Messages to other hosts dropped: the queue was full or a publish failed.",
            b.dropped,
        ),
        (
            "mudshard_bridge_queue_depth",
            "gauge",
            "Messages waiting for the publisher.",
            b.queue_depth,
        ),
        (
            "mudshard_bridge_saves_waiting",
            "gauge",
            "Saves of players whose home is another host, waiting on this host until they can go (the bridge is down, that host is not live, or the queue is full); never dropped.",
            b.saves_waiting,
        ),
        (
            "mudshard_bridge_unacknowledged",
            "gauge",
            "Envelopes published and not yet acknowledged by the host they went to (kept, to be sent again).",
            b.unacknowledged,
        ),
        (
            "mudshard_bridge_resent_total",
            "counter",
            "Envelopes published again because the host they went to had not acknowledged them.",
            b.resent,
        ),
        (
            "mudshard_bridge_lost_total",
            "counter",
            "Envelopes given up on: skipped after a gap nobody filled, or let go unacknowledged past the bounds of what is kept.",
            b.lost,
        ),
    ];
    for (name, kind, help, v) in series {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    }
    let (count, p50, p99, max) = b.hop_us;
    let name = "mudshard_bridge_hop_us";
    let _ = writeln!(out, "# HELP {name} One hop through Redis: a probe published to this host's own inbox until it is read back (µs).\n# TYPE {name} summary");
    for (q, v) in [("0.5", p50), ("0.99", p99), ("1", max)] {
        let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {v}");
    }
    let _ = writeln!(out, "{name}_count {count}");
}

fn summary(
    out: &mut String,
    name: &str,
    help: &str,
    stats: &[ShardStats],
    get: fn(&ShardStats) -> LatencySummary,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} summary");
    for s in stats {
        let l = get(s);
        for (q, v) in [
            ("0.5", l.p50_us),
            ("0.9", l.p90_us),
            ("0.99", l.p99_us),
            ("0.999", l.p999_us),
            ("1", l.max_us),
        ] {
            let _ = writeln!(out, "{name}{{shard=\"{}\",quantile=\"{q}\"}} {v}", s.shard);
        }
        let _ = writeln!(out, "{name}_count{{shard=\"{}\"}} {}", s.shard, l.count);
    }
}

/// The standard process figures, read from /proc/self.
fn process(out: &mut String) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let _ = writeln!(out, "# HELP process_resident_memory_bytes Resident memory.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {}", rss_kib * 1024);
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of stat: indexes 11 and 12 after ')'.
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu_s = (ticks(11) + ticks(12)) as f64 / hz;
    let _ = writeln!(out, "# HELP process_cpu_seconds_total User and system CPU time.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total {cpu_s}");
}
