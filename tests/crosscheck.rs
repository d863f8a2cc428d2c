//! The independent clients that loadgen's figures are checked against
//! (`bench/crosscheck/`, Node.js and the `ws` package; run beside loadgen by
//! `scripts/crosscheck.sh`) work against a real server: every command
//! `rtt.mjs` sends in the window is answered and timed, and a failing
//! command is counted as an error, not as a good reply; every say
//! `chat.mjs` sends reaches every other player of its room, and is timed;
//! `idle.mjs` holds its sessions and reads the server's memory.
//!
//! `ws` is installed from the npm registry (`npm ci`, pinned by
//! `bench/crosscheck/package-lock.json`) when it is missing, and `node` and
//! `npm` with apt when the test runs as root; otherwise the test fails
//! saying how to install them.

mod common;
use common::node::node_and_npm;
use common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn crosscheck_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/crosscheck");
    if !dir.join("node_modules/ws/package.json").exists() {
        eprintln!("crosscheck test: npm ci in {}", dir.display());
        let ok = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "npm could not install ws (is the npm registry reachable?); \
             install it with: (cd {} && npm ci)",
            dir.display()
        );
    }
    dir
}

/// Runs a client script against `server` with `args` (split at spaces) and
/// then `more`; returns its report.
fn run_script(server: &ServerProc, script: &str, args: &str, more: &[&str]) -> Value {
    let script = crosscheck_dir().join(script);
    let out = Command::new("node")
        .arg(&script)
        .args(["--target", &server.addr.to_string()])
        .args(args.split_whitespace())
        .args(more)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "rtt.mjs failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.trim())
        .unwrap_or_else(|e| panic!("{} printed {text:?}: {e}", script.display()))
}

/// rtt.mjs for 1 s of warm-up and 2 s measured.
fn run(server: &ServerProc, players: u32, rate: u32, command: &str) -> Value {
    run_script(
        server,
        "rtt.mjs",
        &format!("--players {players} --rate {rate} --warmup 1 --duration 2"),
        &["--command", command],
    )
}

fn assert_percentiles(report: &Value, key: &str) {
    let l = &report[key];
    let (p50, p99, max) = (
        l["p50"].as_f64().expect("p50"),
        l["p99"].as_f64().expect("p99"),
        l["max"].as_f64().expect("max"),
    );
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{key}: {l}");
}

#[test]
fn the_independent_client_times_every_reply_and_counts_failures() {
    node_and_npm("node and npm are needed to run the cross-check client");
    let server = ServerProc::start(&["--shards", "2", "--no-ambient", "--world", "grid:20x20"]);

    let report = run(&server, 40, 200, "look");
    assert_eq!(report["rate_achieved"], 200, "{report}");
    assert_eq!(report["replies_in_window"], 400, "{report}");
    assert_eq!(report["missing"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_percentiles(&report, "latency_ms");
    assert_percentiles(&report, "from_actual_send_ms");
    // Sent from the intended time, so never less than from the actual send.
    assert!(
        report["latency_ms"]["p50"].as_f64() >= report["from_actual_send_ms"]["p50"].as_f64(),
        "{report}"
    );

    // A command the server refuses (no exit that way) is answered, and the
    // client counts every such answer as an error.
    let report = run(&server, 10, 50, "go nowhere");
    assert_eq!(report["replies_in_window"], 100, "{report}");
    assert_eq!(report["errors"], 100, "{report}");

    // Says in rooms of 6 (30 players, 5 rooms, spread over two shards): each
    // of the 2 s × 40 says is heard by the 5 others of its room.
    let report = run_script(
        &server,
        "chat.mjs",
        "--players 30 --rooms 5 --rate 40 --warmup 1 --duration 2",
        &[],
    );
    assert_eq!(report["rate_achieved"], 40, "{report}");
    assert_eq!(report["deliveries_expected"], 400, "{report}");
    assert_eq!(report["deliveries_received"], 400, "{report}");
    assert_eq!(report["missing"], 0, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert_percentiles(&report, "delivery_ms");

    // Sessions held over the grid (its 20x20 rooms), the server's memory
    // read before and after from its /proc entry.
    let args = format!(
        "--server-pid {} --players 50 --hold 1 --source-ips 1 --grid-width 20 --grid-height 20",
        server.child.id()
    );
    let report = run_script(&server, "idle.mjs", &args, &[]);
    assert_eq!(report["sessions"], 50, "{report}");
    assert_eq!(report["dropped"], 0, "{report}");
    for key in ["rss_before_kib", "rss_after_kib"] {
        assert!(
            report[key].as_u64().is_some_and(|kib| kib > 0),
            "{key}: {report}"
        );
    }
    assert!(report["rss_per_session_bytes"].is_i64(), "{report}");
}
