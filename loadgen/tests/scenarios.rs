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

/// Chat in rooms of 5 with the reading done `how` (`--read-with`): every
/// say reaches its 4 listeners once, and is timed.
fn chat_reads_every_delivery_with(how: &str) {
    let server = FakeServer::start(Behaviour::default());
    let target = server.target();
    let mut args = base("chat", &target);
    args.extend([
        "--players",
        "40",
        "--rooms",
        "8",
        "--rate",
        "80",
        "--read-with",
        how,
    ]);
    let (report, ok) = run_loadgen(&args);
    assert!(ok, "{report:#}");
    let says = u(&report["counts"]["sent"]);
    assert!(says >= 70, "says sent: {says}");
    assert_eq!(u(&report["deliveries"]["received"]), says * 4);
    assert_eq!(u(&report["latency_us"]["delivery"]["count"]), says * 4);
    assert_eq!(u(&report["counts"]["replies"]), says);
    assert_eq!(u(&report["counts"]["seq_gaps"]), 0);
    assert_eq!(u(&report["counts"]["sessions_dropped"]), 0);
}

#[test]
fn chat_reads_every_delivery_with_epoll() {
    chat_reads_every_delivery_with("epoll");
}

#[test]
fn chat_reads_every_delivery_with_uring() {
    chat_reads_every_delivery_with("uring");
}

/// Runs `rtt` with 6 players, read `how`, against a fake server that ends
/// each connection as `behaviour` says after its second command (in the
/// warm-up: at 10 commands a second each, the second comes before the
/// window opens), and checks every session is counted dropped, `slow` of
/// them as closed for being slow.
fn every_session_ended_by_the_server_is_counted(behaviour: Behaviour, how: &str, slow: u64) {
    let server = FakeServer::start(behaviour);
    let target = server.target();
    let mut args = base("rtt", &target);
    args.extend(["--players", "6", "--rate", "60", "--read-with", how]);
    let (report, _) = run_loadgen(&args);
    let counts = &report["counts"];
    assert_eq!(u(&counts["sessions_established"]), 6, "{report:#}");
    assert_eq!(u(&counts["sessions_dropped"]), 6, "{report:#}");
    assert_eq!(u(&counts["closed_slow_reader"]), slow, "{report:#}");
}

/// A server that sends `1013` (try again later) and hangs up: every
/// session is counted dropped, as closed for being slow, whichever way it
/// is read.
fn a_server_hanging_up_is_counted_with(how: &str) {
    let behaviour = Behaviour {
        close_after_commands: Some((2, 1013)),
        ..Behaviour::default()
    };
    every_session_ended_by_the_server_is_counted(behaviour, how, 6);
}

#[test]
fn a_server_hanging_up_is_counted_with_epoll() {
    a_server_hanging_up_is_counted_with("epoll");
}

#[test]
fn a_server_hanging_up_is_counted_with_uring() {
    a_server_hanging_up_is_counted_with("uring");
}

/// A server that ends its side of the stream right behind the reply,
/// without a close frame, and reads on: the reply and the end arrive
/// together, nothing after them tells the client more, and every session is
/// still counted dropped, whichever way it is read (read by `epoll`, the
/// short read of the reply must not hide the end).
fn a_server_ending_the_stream_behind_a_reply_is_counted_with(how: &str) {
    let behaviour = Behaviour {
        end_after_commands: Some(2),
        ..Behaviour::default()
    };
    every_session_ended_by_the_server_is_counted(behaviour, how, 0);
}

#[test]
fn a_server_ending_the_stream_behind_a_reply_is_counted_with_epoll() {
    a_server_ending_the_stream_behind_a_reply_is_counted_with("epoll");
}

#[test]
fn a_server_ending_the_stream_behind_a_reply_is_counted_with_uring() {
    a_server_ending_the_stream_behind_a_reply_is_counted_with("uring");
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

/// `base("cluster")` on `target` named twice (two "hosts"), with walkers.
fn cluster_with_walkers<'a>(target: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = base("cluster", target);
    args.extend(["--target", target]);
    args.extend_from_slice(extra);
    args
}

#[test]
fn cluster_walkers_walk_across_and_within_the_hosts_apart_from_the_says() {
    let server = FakeServer::start(Behaviour::default());
    let target = server.target();
    let args = cluster_with_walkers(
        &target,
        &[
            "--players",
            "12",
            "--rooms",
            "3",
            "--rate",
            "30",
            "--walkers",
            "8",
            "--walk-rate",
            "40",
        ],
    );
    let (report, ok) = run_loadgen(&args);
    assert!(ok, "{report:#}");
    // The says' figures are those of a run without walkers.
    let counts = &report["counts"];
    let says = u(&counts["sent"]);
    assert!((27..=33).contains(&says), "about 30 says, got {says}");
    assert_eq!(u(&counts["replies"]), says);
    assert_eq!(u(&report["latency_us"]["reply"]["count"]), says);
    let cluster = &report["cluster"];
    assert_eq!(u(&cluster["same_host"]["received"]), says);
    assert_eq!(u(&cluster["cross_host"]["received"]), says * 2);
    assert_eq!(u(&report["deliveries"]["expected"]), says * 3);
    // 8 walkers, 4 of each kind: 20 moves/s of each.
    let walks = &cluster["walks"];
    let mut moves = 0;
    for kind in ["across", "within"] {
        let w = &walks[kind];
        let sent = u(&w["sent"]);
        assert!(
            (17..=23).contains(&sent),
            "about 20 {kind} moves, got {sent}"
        );
        assert_eq!(u(&w["answered"]), sent, "{kind}");
        assert_eq!(u(&w["failed"]), 0, "{kind}");
        assert_eq!(u(&w["no_exit"]), 0, "{kind}");
        assert_eq!(u(&w["timeouts"]), 0, "{kind}");
        assert!(f(&w["per_s"]) > 15.0, "{kind}");
        let latency = &report["latency_us"][format!("move_{kind}")];
        assert_eq!(u(&latency["count"]), sent, "{kind}");
        assert!(latency["p99_us"].is_number(), "{kind}");
        moves += sent;
    }
    assert!((36..=44).contains(&moves), "about 40 moves, got {moves}");
    assert!((f(&walks["requested_per_s"]) - 40.0).abs() < 1e-9);
    assert!(walks["held"].as_bool().expect("held"));
    assert_eq!(u(&counts["sessions_established"]), 20);
}

#[test]
fn cluster_refuses_walkers_without_a_rate_and_walkers_elsewhere() {
    use clap::Parser;
    for (args, why) in [
        (&["cluster", "--walkers", "4"][..], "--walk-rate"),
        (
            &["walk", "--walkers", "4", "--walk-rate", "4"],
            "cluster only",
        ),
    ] {
        let argv = std::iter::once("loadgen").chain(args.iter().copied());
        let config = loadgen::config::Config::parse_from(argv.chain(["--quiet"]));
        let err = loadgen::run_and_report(config).expect_err("refused");
        assert!(err.contains(why), "{args:?}: {err}");
    }
}

#[test]
fn a_cluster_run_with_walkers_split_over_two_workers_merges_their_moves() {
    let server = FakeServer::start(Behaviour::default());
    let target = server.target();
    let mut workers = Vec::new();
    for worker in ["0/2", "1/2"] {
        let args = cluster_with_walkers(
            &target,
            &[
                "--players",
                "12",
                "--rooms",
                "4",
                "--rate",
                "20",
                "--walkers",
                "6",
                "--walk-rate",
                "30",
                "--worker",
                worker,
            ],
        );
        let (report, ok) = run_loadgen(&args);
        assert!(ok, "{report:#}");
        let path = std::env::temp_dir().join(format!(
            "loadgen-walk-merge-{}-{}.json",
            std::process::id(),
            worker.replace('/', "of")
        ));
        std::fs::write(&path, report.to_string()).expect("report written");
        workers.push((path, report));
    }
    let paths: Vec<std::path::PathBuf> = workers.iter().map(|(p, _)| p.clone()).collect();
    let merged = loadgen::merge::merge(&paths);
    for path in &paths {
        let _ = std::fs::remove_file(path);
    }
    let (merged, stats) = merged.expect("merges");
    let m = serde_json::to_value(&merged).expect("serializes");
    assert!(merged.ok, "{m:#}");
    for path in [
        &["counts", "sent"][..],
        &["cluster", "walks", "across", "sent"],
        &["cluster", "walks", "across", "answered"],
        &["cluster", "walks", "within", "sent"],
        &["cluster", "walks", "within", "answered"],
        &["counts", "moves_across", "sent"],
        &["latency_us", "move_across", "count"],
        &["latency_us", "move_within", "count"],
    ] {
        let get = |v: &Value| u(path.iter().fold(v, |v: &Value, k| &v[*k]));
        let want: u64 = workers.iter().map(|(_, r)| get(r)).sum();
        assert_eq!(get(&m), want, "{path:?}");
        assert!(want > 0, "{path:?}");
    }
    let answered = |kind: &str| u(&m["cluster"]["walks"][kind]["answered"]);
    assert_eq!(stats.move_across.count(), answered("across"));
    assert_eq!(stats.move_within.count(), answered("within"));
    let requested = f(&m["cluster"]["walks"]["requested_per_s"]);
    assert!(
        (requested - 30.0).abs() < 1e-9,
        "the workers' walk rates add up: {requested}"
    );
    let max = |v: &Value| u(&v["latency_us"]["move_across"]["max_us"]);
    let worst = workers.iter().map(|(_, r)| max(r)).max().unwrap_or(0);
    assert_eq!(max(&m), worst);
}
