//! Every scenario, run for about a second against the fake server: the JSON
//! report has its fields and its counts add up.

mod common;

use common::{run_loadgen, Behaviour, FakeServer};
use serde_json::Value;

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn base<'a>(scenario: &'a str, target: &'a str) -> Vec<&'a str> {
    vec![
        scenario,
        "--target",
        target,
        "--threads",
        "2",
        "--warmup",
        "0.3",
        "--duration",
        "1",
        "--timeout",
        "1",
        "--drain",
        "0.5",
    ]
}

#[test]
fn chat_in_a_quiet_world_delivers_every_say_to_every_listener() {
    let server = FakeServer::start(Behaviour::default());
    let target = server.target();
    let mut args = base("chat", &target);
    args.extend(["--players", "20", "--rooms", "4", "--rate", "40", "--chart"]);
    let chart = std::env::temp_dir().join(format!("loadgen-chat-{}.svg", std::process::id()));
    let chart_arg = chart.display().to_string();
    args.push(&chart_arg);
    let (report, ok) = run_loadgen(&args);
    assert!(ok, "{report:#}");
    let counts = &report["counts"];
    let says = u(&counts["sent"]);
    assert!(
        (36..=44).contains(&says),
        "about 40 says in the window, got {says}"
    );
    // Rooms of 5: every say has 4 listeners.
    assert_eq!(u(&report["deliveries"]["expected"]), says * 4);
    assert_eq!(u(&report["deliveries"]["received"]), says * 4);
    assert_eq!(u(&counts["replies"]), says);
    assert_eq!(u(&report["latency_us"]["delivery"]["count"]), says * 4);
    assert_eq!(u(&counts["sessions_established"]), 20);
    assert_eq!(u(&counts["timeouts"]) + u(&counts["errors"]), 0);
    assert!(report["rate"]["held"].as_bool().expect("held"));
    assert!(f(&report["throughput"]["deliveries_per_s"]) > 100.0);
    // The fake server is this process, found through /healthz.
    assert_eq!(u(&report["server"]["pid"]), u64::from(std::process::id()));
    assert!(report["server"]["cpu_us_per_msg"].is_number());
    assert_eq!(report["config"]["players"], 20);
    let svg = std::fs::read_to_string(&chart).expect("chart written");
    let _ = std::fs::remove_file(&chart);
    assert!(svg.contains("<svg"));
}

#[test]
fn rtt_times_every_reply() {
    let server = FakeServer::start(Behaviour::default());
    let target = server.target();
    let mut args = base("rtt", &target);
    args.extend(["--players", "10", "--rate", "100"]);
    let (report, ok) = run_loadgen(&args);
    assert!(ok, "{report:#}");
    let counts = &report["counts"];
    let sent = u(&counts["sent"]);
    assert!((95..=105).contains(&sent), "about 100 commands, got {sent}");
    assert_eq!(u(&counts["replies"]), sent);
    assert_eq!(u(&report["latency_us"]["reply"]["count"]), sent);
    for key in ["p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us"] {
        assert!(report["latency_us"]["reply"][key].is_number(), "{key}");
    }
    assert!(f(&report["rate"]["achieved_per_s"]) >= 95.0);
    assert_eq!(f(&report["error_rate"]), 0.0);
}

#[test]
fn walk_moves_players_and_sees_them_come_and_go() {
    let server = FakeServer::start(Behaviour::default());
    let target = server.target();
    let mut args = base("walk", &target);
    // A 3×3 corner of the grid: walkers keep meeting each other.
    args.extend([
        "--players",
        "12",
        "--rate",
        "60",
        "--grid-width",
        "3",
        "--grid-height",
        "3",
    ]);
    let (report, ok) = run_loadgen(&args);
    assert!(ok, "{report:#}");
    let counts = &report["counts"];
    let sent = u(&counts["sent"]);
    assert!(sent >= 55, "moves sent: {sent}");
    assert_eq!(u(&counts["replies"]), sent);
    assert!(u(&counts["enter_events"]) > 0 && u(&counts["leave_events"]) > 0);
    assert_eq!(u(&counts["replies_failed"]), 0);
}

#[test]
fn idle_holds_sessions_and_measures_memory_per_session() {
    let server = FakeServer::start(Behaviour::default());
    let target = server.target();
    let mut args = base("idle", &target);
    args.extend(["--players", "30"]);
    let (report, ok) = run_loadgen(&args);
    assert!(ok, "{report:#}");
    assert_eq!(u(&report["counts"]["sessions_established"]), 30);
    assert_eq!(u(&report["counts"]["sessions_dropped"]), 0);
    assert_eq!(u(&report["latency_us"]["setup"]["count"]), 30);
    assert!(report["server"]["rss_per_session_bytes"].is_number());
}

#[test]
fn churn_opens_and_closes_sessions_at_the_requested_rate() {
    let server = FakeServer::start(Behaviour::default());
    let target = server.target();
    let mut args = base("churn", &target);
    args.extend(["--rate", "50", "--concurrency", "8"]);
    let (report, ok) = run_loadgen(&args);
    assert!(ok, "{report:#}");
    let counts = &report["counts"];
    let completed = u(&counts["churn_completed"]);
    assert!(
        (45..=55).contains(&completed),
        "about 50 sessions, got {completed}"
    );
    assert_eq!(u(&counts["churn_failed"]), 0);
    assert_eq!(u(&report["latency_us"]["setup"]["count"]), completed);
    assert_eq!(u(&report["latency_us"]["reply"]["count"]), completed);
    assert!(f(&report["throughput"]["sessions_per_s"]) > 40.0);
}

#[test]
fn a_refused_connection_fails_the_run() {
    // Bind then drop a listener: nothing listens on the port afterwards.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let target = format!("127.0.0.1:{port}");
    let mut args = base("rtt", &target);
    args.extend([
        "--players",
        "3",
        "--rate",
        "10",
        "--duration",
        "0.2",
        "--warmup",
        "0",
    ]);
    let (report, ok) = run_loadgen(&args);
    assert!(!ok);
    assert!(!report["ok"].as_bool().expect("ok"));
    assert_eq!(u(&report["counts"]["sessions_failed"]), 3);
    let failures = report["failures"].to_string();
    assert!(failures.contains("failed to establish"), "{failures}");
}

#[test]
fn cluster_refuses_rooms_that_cannot_span_the_targets() {
    use clap::Parser;
    let config = loadgen::config::Config::parse_from([
        "loadgen",
        "cluster",
        "--target",
        "127.0.0.1:1",
        "--target",
        "127.0.0.1:2",
        "--players",
        "10",
        "--rooms",
        "10",
        "--quiet",
    ]);
    let err = loadgen::run_and_report(config).expect_err("rooms of one cannot span two hosts");
    assert!(err.contains("cluster needs"), "{err}");
}

#[test]
fn cluster_tells_same_host_from_cross_host_deliveries() {
    // One server named twice: its rooms hold both "hosts'" players, so every
    // say reaches every member, and loadgen splits them by target.
    let server = FakeServer::start(Behaviour::default());
    let target = server.target();
    let mut args = base("cluster", &target);
    args.extend([
        "--target",
        &target,
        "--players",
        "12",
        "--rooms",
        "3",
        "--rate",
        "30",
    ]);
    let (report, ok) = run_loadgen(&args);
    assert!(ok, "{report:#}");
    let says = u(&report["counts"]["sent"]);
    assert!((27..=33).contains(&says), "about 30 says, got {says}");
    // Rooms of 4: 2 talkers on the first target, 2 listeners on the second.
    let cluster = &report["cluster"];
    for kind in ["same_host", "cross_host"] {
        let expected = if kind == "same_host" { says } else { says * 2 };
        assert_eq!(u(&cluster[kind]["expected"]), expected, "{kind}");
        assert_eq!(u(&cluster[kind]["received"]), expected, "{kind}");
        let latency = &report["latency_us"][format!("delivery_{kind}")];
        assert_eq!(u(&latency["count"]), expected, "{kind}");
    }
    assert_eq!(u(&report["deliveries"]["received"]), says * 3);
    assert_eq!(u(&cluster["tells"]["expected"]), 0);
    // The two targets are one process: its CPU is counted once.
    assert_eq!(
        report["server"]["pids"],
        serde_json::json!([std::process::id()])
    );
}
