//! loadgen's `cluster` scenario against two baseline processes bridged
//! through a real `redis-server`: every say and tell that had to cross
//! hosts arrives, and the report tells same-host from cross-host.

mod common;

use clap::Parser;
use common::{two_hosts, Redis};
use serde_json::Value;

fn count(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

#[test]
fn every_cross_host_delivery_arrives_and_is_reported_apart() {
    let redis = Redis::start();
    let (a, b) = two_hosts(&redis, "grid:100x100");
    let json_path =
        std::env::temp_dir().join(format!("cluster-scenario-{}.json", std::process::id()));
    let (target_a, target_b) = (a.addr.to_string(), b.addr.to_string());
    let json_arg = json_path.display().to_string();
    // Rooms of 5: members 0, 2, 4 on host a (talkers), 1, 3 on host b.
    let config = loadgen::config::Config::parse_from([
        "loadgen",
        "cluster",
        "--target",
        &target_a,
        "--target",
        &target_b,
        "--players",
        "20",
        "--rooms",
        "4",
        "--rate",
        "40",
        "--tell-share",
        "0.25",
        "--threads",
        "2",
        "--warmup",
        "0.5",
        "--duration",
        "1.5",
        "--timeout",
        "2",
        "--drain",
        "1",
        "--quiet",
        "--json",
        &json_arg,
    ]);
    let report = loadgen::run_and_report(config).expect("the run completes");
    eprintln!("{}", report.table());
    let text = std::fs::read_to_string(&json_path).expect("report written");
    let _ = std::fs::remove_file(&json_path);
    let json: Value = serde_json::from_str(&text).expect("report is JSON");
    assert!(report.ok, "{json:#}");

    let cluster = &json["cluster"];
    assert_eq!(cluster["targets"], 2);
    let sent = count(&json["counts"]["sent"]);
    assert!(
        (54..=66).contains(&sent),
        "about 60 sends in the window, got {sent}"
    );
    let tells = count(&cluster["tells"]["expected"]);
    let says = sent - tells;
    assert!(
        (12..=18).contains(&tells),
        "a quarter of the sends are tells: {tells} of {sent}"
    );
    // Every say from a talker on a: 2 same-host listeners, 2 cross-host.
    for kind in ["same_host", "cross_host"] {
        let figures = &cluster[kind];
        assert_eq!(count(&figures["expected"]), says * 2, "{kind}: {figures}");
        assert_eq!(count(&figures["received"]), says * 2, "{kind}: {figures}");
        assert_eq!(figures["missing"], 0, "{kind}");
        let latency = &json["latency_us"][format!("delivery_{kind}")];
        assert_eq!(count(&latency["count"]), says * 2, "{kind}: {latency}");
    }
    assert_eq!(count(&cluster["tells"]["received"]), tells);
    assert_eq!(count(&json["latency_us"]["tell"]["count"]), tells);
    assert_eq!(count(&json["counts"]["replies"]), sent);
    // Both hosts' CPU is counted: their pids came from /healthz.
    let pids: Vec<u64> = json["server"]["pids"]
        .as_array()
        .expect("pids")
        .iter()
        .map(count)
        .collect();
    assert_eq!(pids, [u64::from(a.child.id()), u64::from(b.child.id())]);
    assert!(json["server"]["cpu_us_per_msg"].is_number());
    assert!(report.table().contains("cross-host"));
}
