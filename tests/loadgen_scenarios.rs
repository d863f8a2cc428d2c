//! Every loadgen scenario for a few seconds against the real server: the
//! JSON report has its fields and the counts add up (in a quiet world, say
//! events delivered = says × listeners).

mod common;

use clap::Parser;
use common::ServerProc;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT: AtomicU64 = AtomicU64::new(0);

fn run(server: &ServerProc, scenario: &str, extra: &[&str]) -> (Value, bool) {
    let (json_path, report, ok) = run_keeping_json(&server.addr.to_string(), scenario, extra);
    let _ = std::fs::remove_file(&json_path);
    (report, ok)
}

/// Runs loadgen against `target`; the JSON report stays at the returned path.
fn run_keeping_json(target: &str, scenario: &str, extra: &[&str]) -> (PathBuf, Value, bool) {
    let json_path = std::env::temp_dir().join(format!(
        "mudshard-loadgen-{}-{}.json",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut argv: Vec<String> = [
        "loadgen",
        scenario,
        "--target",
        target,
        "--threads",
        "2",
        "--warmup",
        "0.5",
        "--duration",
        "2",
        "--timeout",
        "2",
        "--grid-width",
        "10",
        "--grid-height",
        "10",
        "--quiet",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.push(json_path.display().to_string());
    argv.extend(extra.iter().map(|s| s.to_string()));
    let config = loadgen::config::Config::parse_from(argv);
    let report = loadgen::run_and_report(config).expect("the run completes");
    eprintln!("{}", report.table());
    let text = std::fs::read_to_string(&json_path).expect("report written");
    let value = serde_json::from_str(&text).expect("report is JSON");
    (json_path, value, report.ok)
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn server() -> ServerProc {
    ServerProc::start(&["--shards", "2", "--world", "grid:10x10", "--no-ambient"])
}

#[test]
fn chat_delivers_every_say_to_every_other_player_in_the_room() {
    let server = server();
    let (report, ok) = run(
        &server,
        "chat",
        &["--players", "40", "--rooms", "4", "--rate", "100"],
    );
    assert!(ok, "{report:#}");
    let says = u(&report["counts"]["sent"]);
    assert!(
        (150..=250).contains(&says),
        "about 200 says in the window, got {says}"
    );
    // Rooms of 10: nine listeners for every say.
    assert_eq!(u(&report["deliveries"]["expected"]), says * 9);
    assert_eq!(u(&report["deliveries"]["received"]), says * 9);
    assert_eq!(u(&report["counts"]["replies"]), says);
    assert_eq!(u(&report["counts"]["seq_gaps"]), 0);
    assert!(report["rate"]["held"].as_bool().expect("held"));
    for q in ["p50_us", "p90_us", "p99_us", "p999_us", "max_us"] {
        assert!(
            report["latency_us"]["delivery"][q].as_u64().is_some(),
            "{q}"
        );
    }
    assert!(
        report["server"]["cpu_us_per_msg"].as_f64().is_some(),
        "{report:#}"
    );
}

#[test]
fn rtt_gets_a_reply_for_every_look() {
    let server = server();
    let (report, ok) = run(&server, "rtt", &["--players", "20", "--rate", "200"]);
    assert!(ok, "{report:#}");
    let sent = u(&report["counts"]["sent"]);
    assert!(sent >= 300, "about 400 looks in the window, got {sent}");
    assert_eq!(u(&report["counts"]["replies"]), sent);
    assert_eq!(u(&report["counts"]["timeouts"]), 0);
    assert_eq!(u(&report["latency_us"]["reply"]["count"]), sent);
}

#[test]
fn sends_carried_ahead_by_one_wake_up_are_all_answered_and_delivered() {
    let server = server();
    // 10 ms of send-ahead at 200 looks/s: about three sends per wake-up.
    let (report, ok) = run(
        &server,
        "rtt",
        &[
            "--players",
            "20",
            "--rate",
            "200",
            "--send-ahead-us",
            "10000",
        ],
    );
    assert!(ok, "{report:#}");
    assert_eq!(report["config"]["send_ahead_us"].as_f64(), Some(10000.0));
    let sent = u(&report["counts"]["sent"]);
    assert!(sent >= 300, "about 400 looks in the window, got {sent}");
    assert_eq!(u(&report["counts"]["replies"]), sent);
    assert_eq!(u(&report["latency_us"]["reply"]["count"]), sent);
    assert!(report["rate"]["held"].as_bool().expect("held"));
    // Says sent together keep distinct stamps: every one is delivered to
    // each of its nine listeners and counted once.
    let (report, ok) = run(
        &server,
        "chat",
        &[
            "--players",
            "40",
            "--rooms",
            "4",
            "--rate",
            "100",
            "--send-ahead-us",
            "10000",
        ],
    );
    assert!(ok, "{report:#}");
    let says = u(&report["counts"]["sent"]);
    assert!(says >= 150, "about 200 says in the window, got {says}");
    assert_eq!(u(&report["deliveries"]["received"]), says * 9);
    assert_eq!(u(&report["counts"]["replies"]), says);
}

#[test]
fn an_out_of_range_send_ahead_is_refused() {
    for bad in ["-1", "20000"] {
        let config = loadgen::config::Config::parse_from([
            "loadgen",
            "rtt",
            &format!("--send-ahead-us={bad}"),
        ]);
        let why = config.validate().expect_err(bad);
        assert!(why.contains("--send-ahead-us"), "{why}");
    }
}

#[test]
fn walk_crosses_shards_and_sees_enter_and_leave() {
    let server = server();
    let (report, ok) = run(&server, "walk", &["--players", "20", "--rate", "100"]);
    assert!(ok, "{report:#}");
    let sent = u(&report["counts"]["sent"]);
    assert_eq!(u(&report["counts"]["replies"]), sent);
    assert!(
        u(&report["counts"]["enter_events"]) > 0 && u(&report["counts"]["leave_events"]) > 0,
        "{report:#}"
    );
    let (_, metrics) = server.http_get("/metrics");
    let hops: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("mudshard_cross_shard_hop_us_count{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert!(hops > 0, "walkers' commands crossed shards");
}

#[test]
fn walk_keep_to_shard_keeps_walkers_in_their_connections_shards_rooms() {
    // A grid big enough for regions of many rooms, so that few exits lead
    // to another shard's room.
    let server = ServerProc::start(&["--shards", "2", "--world", "grid:40x40", "--no-ambient"]);
    let walk = |prefix: &str, keep: bool| {
        let mut args = vec![
            "--players",
            "100",
            "--rate",
            "200",
            "--grid-width",
            "40",
            "--grid-height",
            "40",
            "--name-prefix",
            prefix,
        ];
        if keep {
            args.push("--keep-to-shard");
        }
        let (report, ok) = run(&server, "walk", &args);
        assert!(ok, "{report:#}");
        assert_eq!(u(&report["counts"]["sessions_established"]), 100);
        let replies = u(&report["counts"]["replies"]);
        assert!(replies >= 300, "about 400 moves in the window: {report:#}");
        u(&report["counts"]["moves_off_shard"]) as f64 / replies as f64
    };
    // Walkers placed anywhere stand in the other shard's rooms about half
    // the time; kept to their own, only after a step over a border (and
    // the next step takes them back).
    let kept = walk("keep", true);
    let free = walk("free", false);
    assert!(
        kept < 0.25,
        "kept walkers were off their shard for {kept:.2} of moves"
    );
    assert!(
        free > 0.3,
        "free walkers were off their shard for only {free:.2} of moves"
    );
}

#[test]
fn keep_to_shard_is_refused_outside_walk() {
    let config = loadgen::config::Config::parse_from(["loadgen", "rtt", "--keep-to-shard"]);
    let why = config.validate().expect_err("rtt --keep-to-shard");
    assert!(why.contains("--keep-to-shard"), "{why}");
}

#[test]
fn idle_holds_sessions_and_reports_memory_per_session() {
    let server = server();
    let (report, ok) = run(&server, "idle", &["--players", "200"]);
    assert!(ok, "{report:#}");
    assert_eq!(u(&report["counts"]["sessions_established"]), 200);
    assert!(
        report["server"]["rss_per_session_bytes"].as_f64().is_some(),
        "{report:#}"
    );
    // loadgen has exited, but the server reads the last close frames in its
    // own time: wait (bounded) for every connection to be gone.
    let open_now = || -> u64 {
        let (_, health) = server.http_get("/healthz");
        let health: Value = serde_json::from_str(&health).expect("healthz");
        health["connections"]
            .as_array()
            .expect("connections per shard")
            .iter()
            .filter_map(Value::as_u64)
            .sum()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut open = open_now();
    while open != 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        open = open_now();
    }
    assert_eq!(open, 0, "loadgen closed its sessions at the end");
}

#[test]
fn churn_logs_in_and_out_in_a_loop() {
    let server = server();
    let (report, ok) = run(&server, "churn", &["--rate", "50", "--concurrency", "8"]);
    assert!(ok, "{report:#}");
    let done = u(&report["counts"]["churn_completed"]);
    assert!(done >= 50, "about 100 sessions in the window: {report:#}");
    assert_eq!(u(&report["counts"]["churn_failed"]), 0);
    assert!(report["throughput"]["sessions_per_s"].as_f64().unwrap() > 20.0);
}

#[test]
fn a_run_split_over_two_workers_merges_into_one_report() {
    let server = server();
    let target = server.addr.to_string();
    let args = ["--players", "40", "--rooms", "4", "--rate", "100"];
    let worker = |w: &'static str| {
        let target = target.clone();
        std::thread::spawn(move || {
            run_keeping_json(&target, "chat", &[&args[..], &["--worker", w]].concat())
        })
    };
    let (a, b) = (worker("0/2"), worker("1/2"));
    let (a, b) = (a.join().expect("worker 0"), b.join().expect("worker 1"));
    assert!(a.2 && b.2, "{:#} {:#}", a.1, b.1);

    let (merged, _) = loadgen::merge::merge(&[a.0.clone(), b.0.clone()]).expect("merges");
    let m = serde_json::to_value(&merged).expect("serializes");
    assert!(merged.ok, "{m:#}");
    let sum = |path: &[&str]| {
        let get = |v: &Value| u(path.iter().fold(v, |v: &Value, k| &v[*k]));
        (get(&a.1) + get(&b.1), get(&m))
    };
    for path in [
        &["counts", "sent"][..],
        &["counts", "replies"],
        &["deliveries", "expected"],
        &["deliveries", "received"],
        &["latency_us", "delivery", "count"],
        &["latency_us", "reply", "count"],
        &["players_here"],
    ] {
        let (want, got) = sum(path);
        assert_eq!(got, want, "{path:?}");
    }
    let says = u(&m["counts"]["sent"]);
    assert_eq!(u(&m["deliveries"]["received"]), says * 9);
    let requested = m["rate"]["requested_per_s"].as_f64().expect("rate");
    assert!(
        (requested - 100.0).abs() < 1e-6,
        "the workers' rates add up: {requested}"
    );
    let max = |v: &Value| u(&v["latency_us"]["delivery"]["max_us"]);
    assert_eq!(max(&m), max(&a.1).max(max(&b.1)));
    let p99 = |v: &Value| u(&v["latency_us"]["delivery"]["p99_us"]);
    assert!(p99(&m) >= p99(&a.1).min(p99(&b.1)) && p99(&m) <= p99(&a.1).max(p99(&b.1)));

    // A missing worker fails the merged run; a worker twice cannot be merged.
    let (partial, _) = loadgen::merge::merge(std::slice::from_ref(&a.0)).expect("merges");
    assert!(!partial.ok);
    assert!(
        partial
            .failures
            .iter()
            .any(|f| f.contains("no report from worker(s) 1/2")),
        "{:?}",
        partial.failures
    );
    let twice = loadgen::merge::merge(&[a.0.clone(), a.0.clone()]).expect_err("refused");
    assert!(twice.contains("appears twice"), "{twice}");
    let _ = std::fs::remove_file(&a.0);
    let _ = std::fs::remove_file(&b.0);
}
