//! `loadgen suite --only cluster` end to end, with fake binaries in a fake
//! repository and a real `redis-server` per step: Node.js scripts stand in
//! for the two hosts of each server kind (say where they listen, answer
//! `/healthz` as a host whose bridge is up and `/metrics` with bridge
//! counters), shell scripts for loadgen's `cluster` scenario (a JSON report
//! with figures chosen by the step's name) and for the path's floor. The
//! real suite starts Redis and the hosts for every step, climbs each
//! server's ladder until a step is not held, runs a step the hypervisor
//! disturbed once more, plays the mixed step, stops everything by pid and
//! writes the report, whose lines are then read back.

mod suite_support;

use std::io::Read;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;
use suite_support::{alive, line_with};

const FAKE_HOST: &str = r#"#!/usr/bin/env node
// A fake host: listens where it is told (--listen, or the listen line of
// --config), records its pid, answers /healthz and /metrics.
const fs = require('fs');
const http = require('http');
const args = process.argv.slice(2);
let addr = null;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--listen') addr = args[i + 1];
  if (args[i] === '--config') {
    addr = fs.readFileSync(args[i + 1], 'utf8').match(/listen = "([^"]+)"/)[1];
  }
}
fs.writeFileSync(`${process.env.FAKE_DIR}/pids/server.${process.pid}`, args.join(' '));
const [host, port] = addr.split(':');
let asked = 0;
http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.end(`{"state":"up","hosts":["b"],"pid":${process.pid}}`);
  } else if (req.url === '/metrics') {
    asked += 1;
    res.end(`mudshard_bridge_publishes_total ${asked * 100}\n` +
      `mudshard_bridge_messages_published_total ${asked * 150}\n`);
  } else {
    res.statusCode = 404;
    res.end();
  }
}).listen(Number(port), host, () => console.log(`listening on ${addr}`));
process.on('SIGTERM', () => process.exit(0));
"#;

const FAKE_LOADGEN: &str = r#"#!/bin/sh
# A fake `loadgen cluster`: a report with figures chosen by the step's name.
# mudshard's first step has 9% steal (so it is run again); the baseline
# misses 200 says/s (p99 150 ms); a step delivers 5 cross-host messages a say.
json=; rate=0
while [ $# -gt 0 ]; do
    case $1 in
    --json) json=$2; shift ;;
    --rate) rate=$2; shift ;;
    esac
    shift
done
echo $$ > "$FAKE_DIR/pids/loadgen.$$"
tag=$(basename "$json" .json)
steal=0; p99=1000
case $tag in
mudshard@50) steal=9 ;;
baseline@200) p99=150000 ;;
esac
per_s=$((rate * 5))
cat > "$json" <<EOF
{"ok": true, "rate": {"held": true},
 "latency_us": {
  "delivery_cross_host": {"count": 100, "p50_us": 500, "p99_us": $p99, "max_us": 5000},
  "delivery_same_host": {"count": 100, "p99_us": 800},
  "tell": {"count": 10, "p99_us": 900},
  "move_across": {"count": 10, "p50_us": 400, "p99_us": 1100, "max_us": 2000},
  "move_within": {"count": 10, "p50_us": 200, "p99_us": 600}},
 "cluster": {"cross_host": {"missing": 0, "received_per_s": $per_s}, "same_host": {"missing": 0},
  "tells": {"received": 10, "expected": 10},
  "walks": {"across": {"answered": 10, "sent": 10, "failed": 0},
            "within": {"answered": 10, "sent": 10, "failed": 0}}},
 "server": {"cpu_us_per_msg": 7.5},
 "machine": {"steal_pct": $steal}}
EOF
"#;

const FAKE_FLOOR: &str = r#"#!/bin/sh
# A fake `floor --cross-host`: the path's floor at p99 0.6 ms.
json=
while [ $# -gt 0 ]; do case $1 in --json) json=$2; shift ;; esac; shift; done
echo '{"cross_host": {"expected": 500, "received": 500, "p50_us": 300, "p99_us": 600, "max_us": 900},
 "same_host": {"p99_us": 400}, "cross_host_deliveries_per_s": 500, "says_per_publish": 1.0}' > "$json"
"#;

const SCENARIO: &str = r#"scenario = "cluster"
about = "fake cluster"
target = "none"

[quick]
players = 20
rooms = 2
rate = 100
warmup = 0
duration = 1
ladder = [50, 100, 200]
ladder_p99_ms_max = 100
tell_share = 0.1
walkers = 4
walk_rate = 8

[throughput]
players = 20
rooms = 2
rate = 100
warmup = 0
duration = 1
ladder = [100, 200]
ladder_p99_ms_max = 100
commands_per_s = 50
"#;

fn need(program: &str, install: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {program}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "{program} is missing; install it with: apt-get install -y {install}"
    );
}

/// A fake repository: the scenario file, the fake binaries, a place for pids.
struct FakeRepo {
    root: PathBuf,
}

impl FakeRepo {
    fn new(test: &str) -> FakeRepo {
        need("redis-server", "redis-server");
        need("node", "nodejs");
        let root =
            std::env::temp_dir().join(format!("suite-cluster-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let bin = root.join("target/release");
        for dir in [&root.join("bench/scenarios"), &bin, &root.join("pids")] {
            std::fs::create_dir_all(dir).expect("mkdir");
        }
        std::fs::write(root.join("bench/scenarios/cluster.toml"), SCENARIO).expect("scenario");
        for (name, text) in [
            ("mudshard", FAKE_HOST),
            ("baseline", FAKE_HOST),
            ("loadgen", FAKE_LOADGEN),
            ("floor", FAKE_FLOOR),
        ] {
            let path = bin.join(name);
            std::fs::write(&path, text).expect("script");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        FakeRepo { root }
    }

    /// Runs the suite with `args` to success; its report.
    fn report(&self, args: &[&str]) -> String {
        let out = self.root.join("report.md");
        let output = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .arg("suite")
            .arg("--root")
            .arg(&self.root)
            .args(["--only", "cluster", "--no-build", "--out"])
            .arg(&out)
            .args(args)
            .env("CARGO_TARGET_DIR", self.root.join("target"))
            .env("FAKE_DIR", &self.root)
            .output()
            .expect("the suite runs");
        assert!(
            output.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let report = std::fs::read_to_string(&out).expect("the report");
        eprintln!("{report}");
        report
    }

    /// The pids the fake hosts recorded, with their command lines.
    fn servers(&self) -> Vec<(i32, String)> {
        std::fs::read_dir(self.root.join("pids"))
            .expect("pids")
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let pid = name.strip_prefix("server.")?.parse().ok()?;
                Some((pid, std::fs::read_to_string(e.path()).ok()?))
            })
            .collect()
    }
}

impl Drop for FakeRepo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The ports of the `redis-server`s the report's commands started.
fn redis_ports(report: &str) -> Vec<u16> {
    report
        .lines()
        .filter_map(|l| {
            l.strip_prefix("redis-server --port ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Whether something answers on a loopback port.
fn answers(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
        .and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_millis(200)))?;
            let mut byte = [0u8; 1];
            let _ = s.read(&mut byte);
            Ok(())
        })
        .is_ok()
}

#[test]
fn the_cross_host_ladder_climbs_each_server_until_a_step_is_missed_and_stops_everything() {
    let repo = FakeRepo::new("ladder");
    let report = repo.report(&["--quick"]);

    // mudshard: 50 (twice: 9% steal), 100, 200, then the mixed step; the
    // baseline: 50, 100, 200 (missed: its ladder ends), the mixed step.
    // Two hosts a step.
    let servers = repo.servers();
    assert_eq!(servers.len(), 2 * (5 + 4), "{servers:?}");
    assert!(
        servers.iter().all(|(pid, _)| !alive(*pid)),
        "a host outlived its step"
    );
    let redis = redis_ports(&report);
    assert_eq!(redis.len(), 9 + 2, "a Redis a step and a floor: {redis:?}");
    assert!(
        redis.iter().all(|p| !answers(*p)),
        "a redis-server outlived its step"
    );
    // mudshard's hosts are configured as a pair bridged through that step's Redis.
    let config = std::fs::read_dir(repo.root.join("bench/reports/tmp"))
        .expect("run dir")
        .filter_map(Result::ok)
        .find_map(|run| std::fs::read_to_string(run.path().join("mudshard@100.b.toml")).ok())
        .expect("host b's config");
    assert!(config.contains("host_id = \"b\""), "{config}");
    assert!(
        config.contains("generated = \"grid:100x100/2\""),
        "{config}"
    );
    assert!(config.contains("redis = \"redis://127.0.0.1:"), "{config}");

    let first = line_with(&report, "| mudshard | 50 |");
    assert!(
        first.starts_with("| mudshard | 50 | 250 | 0 | 0.50 / 1.00 / 5.00 | 0.80 | yes | 7.5 |"),
        "{first}"
    );
    assert!(
        first.ends_with("| 1.5 | 0 | 0.0 (first attempt 9.0) |"),
        "{first}"
    );
    assert!(line_with(&report, "| baseline | 200 |")
        .starts_with("| baseline | 200 | 1,000 | 0 | 0.50 / 150.00 / 5.00 | 0.80 | no |"));
    assert!(line_with(&report, "| baseline | 100 |").contains("| 1 (by design) |"));
    assert!(line_with(&report, "| floor, before mudshard's step").starts_with(
        "| floor, before mudshard's step (no server: `bench/floor --cross-host`) | 100 | 500 | 0 | \
         0.30 / 0.60 / 0.90 | 0.40 | — |"
    ));
    assert!(report.contains(
        "| cross-host say p99 ≤ 2 ms at 500 cross-host deliveries/s | 1.00 ms | 1.00 ms | reached |"
    ));
    assert!(report.contains(
        "| (for scale) cross-host p99 against the path's floor run just before the step | \
         1.67× (floor 0.60 ms) | 1.67× (floor 0.60 ms) | — |"
    ));
    assert!(report.contains(
        "| highest cross-host delivery rate held with p99 ≤ 100 ms ≥ 4× the baseline's | 1,000/s | \
         500/s | at least 2.00× — not shown by this ladder (mudshard held its top; \
         `--throughput` climbs further) |"
    ));
    assert!(report.contains(
        "| mudshard | 1.00 | 0 | 10 / 10 | 0.90 | 10 / 10, 0 | 0.40 / 1.10 / 2.00 | 10 / 10, 0 | \
         0.20 / 0.60 | yes | 0.0 |"
    ));
    assert!(report.contains("--tell-share 0.1 --walkers 4 --walk-rate 8"));
    assert!(report.contains("--server-pid $PID --server-pid $PID"));
}

#[test]
fn the_throughput_ladder_raises_the_command_limit_and_judges_the_ratio() {
    let repo = FakeRepo::new("throughput");
    let report = repo.report(&["--throughput"]);
    // Both servers: 100 and 200 (the baseline misses it); no floor, no mixed step.
    assert_eq!(repo.servers().len(), 2 * 4);
    let mudshard = repo
        .servers()
        .into_iter()
        .find(|(_, args)| args.contains("--config"))
        .expect("a mudshard host");
    let config = std::fs::read_to_string(mudshard.1.trim_start_matches("--config ").trim())
        .expect("its config");
    assert!(
        config.contains("commands_per_s = 50\ncommands_burst = 100\n"),
        "{config}"
    );
    assert!(report.contains("## Highest held"));
    assert!(!report.contains("## Mixed play"));
    assert!(!report.contains("floor, before"));
    assert!(report.contains(
        "| highest cross-host delivery rate held with p99 ≤ 100 ms ≥ 4× the baseline's | 1,000/s | \
         500/s | at least 2.00× — not reached |"
    ));
}
