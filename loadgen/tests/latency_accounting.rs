//! The figures must tell the truth about a slow or stalling server: its
//! slowness shows as latency measured from the intended send time, never as
//! a politely lower request rate (coordinated omission).

mod common;

use common::{run_loadgen, Behaviour, FakeServer};
use std::time::Duration;

fn args<'a>(target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec![
        "rtt",
        "--target",
        target,
        "--threads",
        "1",
        "--warmup",
        "0.2",
        "--timeout",
        "2",
        "--drain",
        "1",
    ];
    a.extend_from_slice(extra);
    a
}

#[test]
fn a_slow_server_shows_up_as_high_latency_not_as_a_low_rate() {
    let server = FakeServer::start(Behaviour {
        reply_delay: Duration::from_millis(60),
        ..Behaviour::default()
    });
    let target = server.target();
    // 10 players × 10 commands/s: each connection is busy 60% of the time
    // with its 60 ms replies, so replies queue a little but keep up.
    let (report, ok) = run_loadgen(&args(
        &target,
        &["--players", "10", "--rate", "100", "--duration", "1"],
    ));
    assert!(ok, "{report:#}");
    let rate = &report["rate"];
    assert!(rate["held"].as_bool().expect("held"), "{rate}");
    assert!(rate["achieved_per_s"].as_f64().expect("rate") >= 95.0);
    let reply = &report["latency_us"]["reply"];
    let p50 = reply["p50_us"].as_u64().expect("p50");
    assert!(p50 >= 60_000, "p50 {p50} µs must include the 60 ms delay");
    assert!(p50 < 1_000_000, "p50 {p50} µs");
}

#[test]
fn a_stalled_server_spreads_latency_over_every_command_sent_during_the_stall() {
    let stall_ms = 400;
    let server = FakeServer::start(Behaviour {
        stall: Some((Duration::from_millis(500), Duration::from_millis(stall_ms))),
        ..Behaviour::default()
    });
    let target = server.target();
    let rate = 200.0;
    let (report, ok) = run_loadgen(&args(
        &target,
        &["--players", "20", "--rate", "200", "--duration", "1.5"],
    ));
    assert!(ok, "{report:#}");
    let reply = &report["latency_us"]["reply"];
    let count = reply["count"].as_u64().expect("count") as f64;
    let max_ms = reply["max_us"].as_u64().expect("max") as f64 / 1000.0;
    let p99_ms = reply["p99_us"].as_u64().expect("p99") as f64 / 1000.0;
    // Every command intended during the stall waits for its end: the one
    // sent first waits the whole stall, later ones less, so latencies spread
    // evenly from 0 to the stall's length. A closed-loop client would see one
    // slow command per player instead of a rate × stall worth of them.
    assert!(max_ms >= stall_ms as f64 * 0.85, "max {max_ms} ms");
    assert!(max_ms < stall_ms as f64 * 2.0, "max {max_ms} ms");
    let over_half = fraction_over(&report, stall_ms as f64 / 2.0);
    let expected = rate * (stall_ms as f64 / 2.0) / 1000.0 / count;
    assert!(
        over_half > expected * 0.6 && over_half < expected * 1.6,
        "share over {} ms: {over_half:.3}, expected about {expected:.3}",
        stall_ms / 2
    );
    assert!(p99_ms > stall_ms as f64 / 2.0, "p99 {p99_ms} ms");
}

/// The share of replies slower than `ms`, interpolated between the
/// report's percentiles (p50, p90, p99, p99.9).
fn fraction_over(report: &serde_json::Value, ms: f64) -> f64 {
    let reply = &report["latency_us"]["reply"];
    let points = [
        (0.5, reply["p50_us"].as_f64().unwrap_or(0.0)),
        (0.9, reply["p90_us"].as_f64().unwrap_or(0.0)),
        (0.99, reply["p99_us"].as_f64().unwrap_or(0.0)),
        (0.999, reply["p999_us"].as_f64().unwrap_or(0.0)),
    ];
    let us = ms * 1000.0;
    // Interpolate the quantile at which latency crosses `us`.
    let mut prev = (0.0, 0.0);
    for (q, v) in points {
        if v >= us {
            let t = if v > prev.1 {
                (us - prev.1) / (v - prev.1)
            } else {
                0.0
            };
            return 1.0 - (prev.0 + t * (q - prev.0));
        }
        prev = (q, v);
    }
    1.0 - prev.0
}
