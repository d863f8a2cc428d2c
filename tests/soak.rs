//! The `soak` scenario for a few seconds against the real server, which
//! runs with a short resume window (so the leak check need not wait a
//! minute), a small outbound bound, a large resume history and a higher
//! command rate (so a slow reader asking for `help` fills its queue and is
//! cut off within seconds, and can resume whole; floods are sized to pass
//! that rate), and a short login timeout (so slow handshakes are cut within
//! the run): every part of the mix does what the server promises, and the
//! leak check finds nothing — unless a session is kept open on purpose,
//! which it then finds.

mod common;

use clap::Parser;
use common::{Client, ServerProc};
use serde_json::Value;

/// The server's bounds for a short soak (see the module doc).
const SOAK_LIMITS: &str = "[limits]\nresume_window_ms = 2000\nresume_frames_max = 8192\n\
resume_bytes_max = 8388608\noutbound_bytes_max = 65536\nclose_grace_ms = 5000\n\
login_timeout_ms = 1500\ncommands_per_s = 100\ncommands_burst = 200\n\n[game]\nambient_interval_ms = 0\n";

fn server() -> (ServerProc, tempfile::TempDir) {
    ServerProc::start_with_map(SOAK_LIMITS, &["--shards", "2", "--world", "grid:10x10"])
}

/// Runs a soak against `server` with `extra` flags; the JSON report and ok.
fn soak(server: &ServerProc, extra: &[&str]) -> (Value, bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("soak.json");
    let target = server.addr.to_string();
    let mut argv: Vec<String> = [
        "loadgen",
        "soak",
        "--target",
        &target,
        "--threads",
        "2",
        "--warmup",
        "0.5",
        "--timeout",
        "2",
        "--drain",
        "1",
        "--grid-width",
        "10",
        "--grid-height",
        "10",
        "--soak-resume-window-ms",
        "2000",
        "--soak-rss-sample-ms",
        "200",
        "--quiet",
        "--json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    argv.push(json.display().to_string());
    argv.extend(extra.iter().map(|s| s.to_string()));
    let config = loadgen::config::Config::parse_from(argv);
    let report = loadgen::run_and_report(config).expect("the soak completes");
    eprintln!("{}", report.table());
    let text = std::fs::read_to_string(&json).expect("report written");
    (
        serde_json::from_str(&text).expect("report is JSON"),
        report.ok,
    )
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// How much the server's counter `name` grew over the soak, as reported.
fn server_count(report: &Value, name: &str) -> u64 {
    let counts = report["soak"]["server_counts"]
        .as_array()
        .expect("server_counts");
    let found = counts.iter().find(|c| c["name"] == name);
    u(&found.unwrap_or_else(|| panic!("no {name} in {counts:?}"))["value"])
}

#[test]
fn a_short_soak_resumes_without_gaps_cuts_slow_readers_and_abusers_and_leaks_nothing() {
    let (server, _dir) = server();
    let (report, ok) = soak(
        &server,
        &[
            "--duration",
            "10",
            "--soak-chatters",
            "12",
            "--soak-rooms",
            "3",
            "--soak-say-rate",
            "20",
            "--soak-walkers",
            "6",
            "--soak-walk-rate",
            "10",
            "--soak-churn-rate",
            "10",
            "--soak-churn-concurrency",
            "4",
            "--soak-droppers",
            "4",
            "--soak-drop-online-ms",
            "600",
            "--soak-drop-offline-ms",
            "300",
            "--soak-slow-readers",
            "1",
            "--soak-slow-cmd-rate",
            "80",
            "--soak-flood-commands",
            "1000",
            "--soak-abusers",
            "4",
            "--soak-abuse-pause-ms",
            "200",
            "--soak-slowloris-max-s",
            "5",
            "--soak-leak-margin-s",
            "3",
        ],
    );
    assert!(ok, "{report:#}");
    let s = &report["soak"]["counts"];
    assert!(u(&s["drops"]) >= 4, "{s:#}");
    assert!(u(&s["resumes"]) >= 4, "{s:#}");
    assert!(u(&s["replayed_frames"]) > 0, "{s:#}");
    for zero in [
        "seq_gaps",
        "seq_duplicates",
        "resumes_failed",
        "resume_errors",
    ] {
        assert_eq!(u(&s[zero]), 0, "{zero}: {s:#}");
    }
    // The slow reader was cut off for its full queue (the server's 1013
    // count; its close frame may not reach the reader, see `slow.rs`) and
    // resumed.
    assert!(u(&s["slow_cut"]) >= 1, "{s:#}");
    assert!(server_count(&report, "mudshard_outbound_drops_total") >= 1);
    assert!(u(&s["slow_resumed"]) >= 1, "{s:#}");
    assert_eq!(u(&s["slow_resume_failed"]), 0, "{s:#}");
    assert!(u(&s["abuse_rate_limited"]) > 0, "{s:#}");
    assert!(u(&s["abuse_flood_closed_1008"]) >= 1, "{s:#}");
    assert!(u(&s["abuse_garbage_closed_1007"]) >= 1, "{s:#}");
    assert!(u(&s["abuse_oversized_closed_1009"]) >= 1, "{s:#}");
    assert!(u(&s["abuse_slow_handshakes_cut"]) >= 1, "{s:#}");
    assert_eq!(u(&s["abuse_unexpected"]), 0, "{s:#}");
    assert!(server_count(&report, "mudshard_rate_limit_closes_total") >= 1);
    assert!(server_count(&report, "mudshard_http_head_timeouts_total") >= 1);
    assert!(server_count(&report, "mudshard_resumes_total") >= u(&s["resumes"]));
    // Chatters, walkers and churn did their parts.
    let says = u(&report["deliveries"]["expected"]);
    assert!(says > 0);
    assert_eq!(u(&report["deliveries"]["received"]), says);
    assert!(u(&report["counts"]["enter_events"]) > 0, "walkers met");
    assert!(u(&report["counts"]["churn_completed"]) > 0);
    // The leak check saw every gauge back at zero; memory has a slope.
    let leak = &report["soak"]["leak"];
    assert_eq!(leak["ok"], true, "{leak:#}");
    assert_eq!(leak["gauges"].as_array().expect("gauges").len(), 4);
    for g in leak["gauges"].as_array().expect("gauges") {
        assert_eq!(g["value"], 0, "{g}");
    }
    assert!(
        report["soak"]["memory"]["slope_kib_per_min"]
            .as_f64()
            .is_some(),
        "{:#}",
        report["soak"]["memory"]
    );
}

#[test]
fn the_leak_check_fails_when_a_session_is_kept_open() {
    let (server, _dir) = server();
    let mut kept = Client::guest(server.addr, Some("lingerer"));
    let (report, ok) = soak(
        &server,
        &[
            "--duration",
            "1",
            "--soak-chatters",
            "4",
            "--soak-rooms",
            "2",
            "--soak-walkers",
            "2",
            "--soak-droppers",
            "0",
            "--soak-slow-readers",
            "0",
            "--soak-abusers",
            "0",
            "--soak-leak-margin-s",
            "0.5",
        ],
    );
    assert!(!ok, "{report:#}");
    let leak = &report["soak"]["leak"];
    assert_eq!(leak["ok"], false, "{leak:#}");
    let value = |name: &str| {
        leak["gauges"]
            .as_array()
            .expect("gauges")
            .iter()
            .find(|g| g["name"] == name)
            .map(|g| u(&g["value"]))
    };
    assert_eq!(value("mudshard_connections"), Some(1), "{leak:#}");
    assert_eq!(value("mudshard_players"), Some(1), "{leak:#}");
    let failures = report["failures"].as_array().expect("failures");
    assert!(
        failures
            .iter()
            .any(|f| f.as_str().unwrap_or("").contains("leak check")),
        "{failures:?}"
    );
    // The session kept open was fine all along.
    assert_eq!(kept.cmd("look")["ok"], true);
}
