//! `loadgen suite --only cluster` (`scripts/bench.sh --only cluster`, or
//! `scripts/bench-cluster.sh`): the cross-host benchmark of issue 10.
//! loadgen's `cluster` scenario (`bench/scenarios/cluster.toml`) against
//! two mudshard hosts bridged by Redis, then against two baseline
//! processes bridged the ordinary way (a channel per room, one `PUBLISH`
//! per event), one after the other on this machine, climbing the
//! scenario's ladder of rates until a step is not held. Each step runs on a
//! fresh `redis-server` (own port, no persistence) and fresh hosts, all on
//! loopback; every child is stopped by pid when its step ends.
//!
//! Just before each server's step at the latency target's rate it runs the
//! machine's floor for the same path, `bench/floor --cross-host` (the same
//! threads, wake-ups and Redis, no game and no WebSocket) in the scenario's
//! shape, on a fresh `redis-server` of its own; the report judges the
//! latency target beside it.
//!
//! Beside loadgen's figures it reports Redis's CPU per delivered cross-host
//! message (from `/proc/<redis pid>/stat` around the loadgen run) and the
//! batching factor (messages per `PUBLISH`: mudshard's bridge counters; the
//! baseline sends one message per `PUBLISH` by design, and Redis's own
//! `cmdstat_publish` count is shown for both).
//!
//! After each server's ladder (not with `--throughput`) one more step plays
//! everything at once at the latency target's rate: the says, a share of
//! tells, and walkers stepping back and forth across the border between
//! host a's land and host b's (mudshard's maps cut the grid into two zones
//! of rows, `grid:WxH/2`, one per host; the chat rooms lie in host a's) and
//! walkers walking within one host's land, each move timed.
//!
//! `--throughput` climbs past the latency ladder's top (`[throughput]` of
//! the scenario file: the same rooms, more says per talker; mudshard's
//! per-session command limit is raised to match the baseline, which has
//! none). Its ladder starts below the baseline's highest held rate, so that
//! the throughput target's ratio comes from one run.

use super::format::{count, get, num};
use super::machine;
use super::options::{ClusterMode, Options};
use super::process::{Interrupt, Interrupted, RunEnd, Server};
use super::runner::read_json;
use super::SuiteError;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use toml_edit::{DocumentMut, Item};

/// A step whose measured window had more steal than this is run once more
/// (as in the rest of the suite).
pub const STEAL_RETRY_PCT: f64 = 5.0;

/// How long a host or Redis may take to say it is ready.
const START_BOUND: Duration = Duration::from_secs(20);
/// How long a mudshard host's bridge may take to see the other host.
const BRIDGE_UP_BOUND: Duration = Duration::from_secs(15);
/// A pause between steps, so that one step's sockets are gone before the next.
const BETWEEN_STEPS: Duration = Duration::from_secs(2);

/// The two server kinds, in the order they climb.
const KINDS: [&str; 2] = ["mudshard", "baseline"];

/// The scenario's section for this mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub players: u64,
    pub rooms: u64,
    pub warmup: u64,
    pub duration: u64,
    pub ramp_rate: u64,
    pub source_ips: u64,
    /// `WxH`.
    pub grid: (u64, u64),
    /// The ladder's steps and the main rate, ascending, each once.
    pub rates: Vec<u64>,
    pub p99_ms_max: f64,
    /// mudshard's per-session command limit for this mode (0: its default).
    pub commands_per_s: u64,
    /// The latency target's rate (says/s).
    pub rate: u64,
    pub walkers: u64,
    pub walk_rate: u64,
    pub tell_share: f64,
}

impl Shape {
    /// Reads section `mode` of `cluster.toml`.
    pub fn parse(text: &str, mode: ClusterMode) -> Result<Shape, String> {
        let doc: DocumentMut = text
            .parse()
            .map_err(|e: toml_edit::TomlError| e.to_string())?;
        let section = mode.section();
        let s = doc
            .get(section)
            .and_then(Item::as_table_like)
            .ok_or_else(|| format!("no [{section}] section"))?;
        let int = |key: &str, default: Option<u64>| -> Result<u64, String> {
            match s.get(key).and_then(Item::as_integer) {
                Some(v) => u64::try_from(v).map_err(|_| format!("[{section}] {key}: negative")),
                None => default.ok_or_else(|| format!("[{section}] {key} is missing")),
            }
        };
        let float = |key: &str, default: f64| -> f64 {
            s.get(key)
                .and_then(|i| i.as_float().or_else(|| i.as_integer().map(|v| v as f64)))
                .unwrap_or(default)
        };
        let grid_text = s.get("grid").and_then(Item::as_str).unwrap_or("100x100");
        let grid = grid_text
            .split_once('x')
            .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
            .ok_or_else(|| format!("[{section}] grid {grid_text:?}: WxH is needed"))?;
        let rate = int("rate", None)?;
        let mut rates: Vec<u64> = s
            .get("ladder")
            .and_then(Item::as_array)
            .ok_or_else(|| format!("[{section}] ladder is missing"))?
            .iter()
            .map(|v| {
                v.as_integer()
                    .and_then(|v| u64::try_from(v).ok())
                    .ok_or_else(|| format!("[{section}] ladder: whole says/s are needed"))
            })
            .collect::<Result<_, _>>()?;
        rates.push(rate);
        rates.sort_unstable();
        rates.dedup();
        Ok(Shape {
            players: int("players", None)?,
            rooms: int("rooms", None)?.max(1),
            warmup: int("warmup", None)?,
            duration: int("duration", None)?,
            ramp_rate: int("ramp_rate", Some(1000))?,
            source_ips: int("source_ips", Some(1))?,
            grid,
            rates,
            p99_ms_max: float("ladder_p99_ms_max", 100.0),
            commands_per_s: int("commands_per_s", Some(0))?,
            rate,
            walkers: int("walkers", Some(0))?,
            walk_rate: int("walk_rate", Some(0))?,
            tell_share: float("tell_share", 0.0),
        })
    }
}

/// One loadgen step against a pair of hosts.
#[derive(Debug, Clone)]
pub struct Step {
    pub kind: &'static str,
    pub rate: u64,
    pub report: Option<Value>,
    /// How loadgen ended (`0`, `1`, `signal 9`, `timed out`).
    pub end: String,
    /// Redis's CPU time over the step, µs.
    pub redis_cpu_us: u64,
    /// Redis's `PUBLISH` calls over the step.
    pub redis_publishes: u64,
    /// mudshard's bridge: publishes and the messages they carried.
    pub bridge_publishes: u64,
    pub bridge_messages: u64,
    /// The steal of a first attempt made once more.
    pub first_steal: Option<f64>,
}

/// The path's floor, run just before a server's step at the target rate.
#[derive(Debug, Clone)]
pub struct FloorStep {
    pub before: &'static str,
    pub rate: u64,
    pub report: Option<Value>,
    pub end: String,
    /// % of the machine's CPU time stolen while it ran.
    pub steal: f64,
    pub first_steal: Option<f64>,
}

/// What the report is written from.
#[derive(Debug, Clone)]
pub struct Results {
    pub mode: ClusterMode,
    pub shape: Shape,
    pub steps: Vec<Step>,
    pub floors: Vec<FloorStep>,
    /// The mixed step of each server (says, tells and walks).
    pub mixed: Vec<Step>,
}

/// Runs the cross-host benchmark and writes its report.
pub fn run(
    options: &Options,
    root: &Path,
    bin: &Path,
    interrupt: &Interrupt,
) -> Result<(), SuiteError> {
    let mode = options.cluster_mode();
    if !super::on_path("redis-server") {
        return Err(SuiteError::Failed(
            "redis-server is missing; install it with: apt-get install -y redis-server".into(),
        ));
    }
    let scenario = root.join("bench/scenarios/cluster.toml");
    let text =
        std::fs::read_to_string(&scenario).map_err(|e| format!("{}: {e}", scenario.display()))?;
    let shape = Shape::parse(&text, mode).map_err(|e| format!("{}: {e}", scenario.display()))?;
    let (soft, hard) = machine::raise_nofile();
    println!("suite: open files limit {soft} (hard {hard})");
    let run_dir = root.join("bench/reports/tmp").join(format!(
        "{}-cluster-{}",
        machine::utc_stamp(),
        mode.section()
    ));
    std::fs::create_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
    let out = options.out.clone().unwrap_or_else(|| {
        root.join("bench/reports").join(format!(
            "{}-{}-cluster{}.md",
            machine::local_date(),
            machine::hostname(),
            if mode == ClusterMode::Quick {
                "-quick"
            } else {
                ""
            }
        ))
    });
    let meta = machine::Meta::read(root, options.nproc);
    let mut bench = Bench {
        root,
        bin,
        run_dir: &run_dir,
        shape: &shape,
        interrupt,
        commands: Vec::new(),
    };
    let mut results = Results {
        mode,
        shape: shape.clone(),
        steps: Vec::new(),
        floors: Vec::new(),
        mixed: Vec::new(),
    };
    for kind in KINDS {
        for &rate in &shape.rates {
            if rate == shape.rate && mode != ClusterMode::Throughput {
                println!(
                    "suite: the machine's floor for the path (bench/floor --cross-host) at {rate} says/s"
                );
                let floor = bench.floor_steady(kind, rate)?;
                results.floors.push(floor);
                interrupt.sleep(BETWEEN_STEPS)?;
            }
            println!("suite: {kind} at {rate} says/s");
            let step = bench.step_steady(&format!("{kind}@{rate}"), kind, rate, &[])?;
            let held = step
                .report
                .as_ref()
                .is_some_and(|r| held(r, shape.p99_ms_max));
            results.steps.push(step);
            if !held {
                println!("suite:     not held at {rate} says/s; {kind} stops climbing");
                break;
            }
            interrupt.sleep(BETWEEN_STEPS)?;
        }
        if mode != ClusterMode::Throughput && shape.walkers > 0 {
            println!(
                "suite: {kind} at {} says/s with tells and {} walkers ({} moves/s)",
                shape.rate, shape.walkers, shape.walk_rate
            );
            let extra = [
                "--tell-share".to_string(),
                shape.tell_share.to_string(),
                "--walkers".to_string(),
                shape.walkers.to_string(),
                "--walk-rate".to_string(),
                shape.walk_rate.to_string(),
            ];
            let step = bench.step_steady(
                &format!("{kind}@{}.mixed", shape.rate),
                kind,
                shape.rate,
                &extra,
            )?;
            results.mixed.push(step);
            interrupt.sleep(BETWEEN_STEPS)?;
        }
    }
    let commands = bench.commands.join("\n");
    let _ = std::fs::write(run_dir.join("commands.txt"), format!("{commands}\n"));
    let text = render(&results, &meta, &commands);
    Ok(super::write_report(&out, &text, &run_dir)?)
}

/// Whether a step held: loadgen ok, the rate held, cross-host deliveries
/// made, none missing, and their p99 within the ladder's bound.
pub fn held(r: &Value, p99_ms_max: f64) -> bool {
    let ok = get(r, "ok").and_then(Value::as_bool) == Some(true);
    let rate_held = get(r, "rate.held").and_then(Value::as_bool) == Some(true);
    let count = num(r, "latency_us.delivery_cross_host.count").unwrap_or(0.0);
    let missing = num(r, "cluster.cross_host.missing").unwrap_or(f64::INFINITY);
    let p99 = num(r, "latency_us.delivery_cross_host.p99_us").unwrap_or(f64::INFINITY);
    ok && rate_held && count > 0.0 && missing == 0.0 && p99 <= p99_ms_max * 1000.0
}

fn steal(r: &Value) -> f64 {
    num(r, "machine.steal_pct").unwrap_or(0.0)
}

/// The runs of one benchmark: where things are, and the commands so far.
struct Bench<'a> {
    root: &'a Path,
    bin: &'a Path,
    run_dir: &'a Path,
    shape: &'a Shape,
    interrupt: &'a Interrupt,
    commands: Vec<String>,
}

impl Bench<'_> {
    /// A command line as the report writes it: paths from the root.
    fn note(&mut self, line: String) {
        let prefix = format!("{}/", self.root.display());
        self.commands.push(line.replace(&prefix, ""));
    }

    fn file(&self, name: &str) -> PathBuf {
        self.run_dir.join(name)
    }

    /// A fresh `redis-server` on a free port.
    fn redis(&mut self, tag: &str) -> Result<(Server, u16), SuiteError> {
        let port = free_port()?;
        let args = [
            "--port".to_string(),
            port.to_string(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--save".into(),
            String::new(),
            "--appendonly".into(),
            "no".into(),
        ];
        let mut cmd = Command::new("redis-server");
        cmd.args(&args);
        let server = Server::start_when(
            cmd,
            &self.file(&format!("{tag}.redis.log")),
            START_BOUND,
            self.interrupt,
            |line| line.contains("Ready to accept connections"),
        )
        .map_err(|e| start_failed("redis-server", e))?;
        self.note(format!(
            "redis-server --port {port} --bind 127.0.0.1 --save '' --appendonly no &"
        ));
        Ok((server, port))
    }

    /// Hosts a and b of `kind`, bridged through Redis at `redis_port`.
    fn hosts(&mut self, tag: &str, kind: &str, redis_port: u16) -> Result<Vec<Server>, SuiteError> {
        let shape = self.shape;
        let (w, h) = shape.grid;
        let mut hosts = Vec::new();
        for host in ["a", "b"] {
            let port = free_port()?;
            let (program, args) = if kind == "mudshard" {
                let config = self.file(&format!("{tag}.{host}.toml"));
                let data = self.file(&format!("data-{tag}-{host}"));
                let limit = if shape.commands_per_s > 0 {
                    format!(
                        "commands_per_s = {}\ncommands_burst = {}\n",
                        shape.commands_per_s,
                        shape.commands_per_s * 2
                    )
                } else {
                    String::new()
                };
                let text = format!(
                    "[server]\nhost_id = \"{host}\"\nlisten = \"127.0.0.1:{port}\"\nshards = 1\n\
                     data_dir = \"{}\"\nredis = \"redis://127.0.0.1:{redis_port}\"\n\
                     [world]\ngenerated = \"grid:{w}x{h}/2\"\n[game]\nambient_interval_ms = 0\n\
                     [limits]\nconnections_per_ip_max = 65536\n{limit}\
                     [cluster]\nhosts = [{{ id = \"a\", zones = [\"grid-0\"] }}, {{ id = \"b\", zones = [\"grid-1\"] }}]\n\
                     token_secret = \"a benchmark's throwaway token secret\"\n",
                    data.display()
                );
                std::fs::write(&config, text).map_err(|e| format!("{}: {e}", config.display()))?;
                (
                    self.bin.join("mudshard"),
                    vec!["--config".to_string(), config.display().to_string()],
                )
            } else {
                (
                    self.bin.join("baseline"),
                    vec![
                        "--listen".to_string(),
                        format!("127.0.0.1:{port}"),
                        "--world".into(),
                        format!("grid:{w}x{h}"),
                        "--redis".into(),
                        format!("redis://127.0.0.1:{redis_port}"),
                        "--host-id".into(),
                        host.into(),
                    ],
                )
            };
            self.note(format!("{} {} &", program.display(), args.join(" ")));
            let mut cmd = Command::new(&program);
            cmd.args(&args).current_dir(self.root);
            let server = Server::start(
                cmd,
                &self.file(&format!("{tag}.{host}.log")),
                START_BOUND,
                self.interrupt,
            )
            .map_err(|e| start_failed(&format!("{kind} host {host}"), e))?;
            hosts.push(server);
        }
        if kind == "mudshard" {
            let until = Instant::now() + BRIDGE_UP_BOUND;
            for server in &hosts {
                let addr = server.listening_on.clone();
                loop {
                    let body = http_get(&addr, "/healthz").unwrap_or_default();
                    if body.contains(r#""state":"up","hosts":["a"]"#)
                        || body.contains(r#""state":"up","hosts":["b"]"#)
                    {
                        break;
                    }
                    if Instant::now() >= until {
                        return Err(SuiteError::Failed(format!(
                            "the bridge of {addr} is not up after {} s (its /healthz: {body})",
                            BRIDGE_UP_BOUND.as_secs()
                        )));
                    }
                    self.interrupt.sleep(Duration::from_millis(200))?;
                }
            }
        }
        Ok(hosts)
    }

    /// One step on a fresh `redis-server` and fresh hosts.
    fn step(
        &mut self,
        tag: &str,
        kind: &'static str,
        rate: u64,
        extra: &[String],
    ) -> Result<Step, SuiteError> {
        let shape = self.shape;
        let (redis, redis_port) = self.redis(tag)?;
        let hosts = self.hosts(tag, kind, redis_port)?;
        let addrs: Vec<String> = hosts.iter().map(|h| h.listening_on.clone()).collect();
        let bridge = |addrs: &[String]| {
            if kind == "mudshard" {
                bridge_counters(addrs)
            } else {
                (0, 0)
            }
        };
        let (pub0, msg0) = bridge(&addrs);
        let cpu0 = crate::probe::cpu_us(redis.pid).unwrap_or(0);
        let rpub0 = redis_publishes(redis_port).unwrap_or(0);
        let json = self.file(&format!("{tag}.json"));
        let mut args: Vec<String> = vec!["cluster".into()];
        for addr in &addrs {
            args.extend(["--target".to_string(), addr.clone()]);
        }
        let (w, h) = shape.grid;
        for (flag, value) in [
            ("--players", shape.players.to_string()),
            ("--rooms", shape.rooms.to_string()),
            ("--rate", rate.to_string()),
            ("--ramp-rate", shape.ramp_rate.to_string()),
            ("--warmup", shape.warmup.to_string()),
            ("--duration", shape.duration.to_string()),
            ("--source-ips", shape.source_ips.to_string()),
            ("--grid-width", w.to_string()),
            ("--grid-height", h.to_string()),
        ] {
            args.extend([flag.to_string(), value]);
        }
        let pids_at = args.len();
        for host in &hosts {
            args.extend(["--server-pid".to_string(), host.pid.to_string()]);
        }
        args.extend([
            "--json".to_string(),
            json.display().to_string(),
            "--chart".into(),
            self.file(&format!("{tag}.svg")).display().to_string(),
            "--quiet".into(),
        ]);
        args.extend(extra.iter().cloned());
        let loadgen = self.bin.join("loadgen");
        let mut shown = args.clone();
        for i in (pids_at..pids_at + 2 * hosts.len()).skip(1).step_by(2) {
            shown[i] = "$PID".into();
        }
        self.note(format!("{} {}", loadgen.display(), shown.join(" ")));
        let mut cmd = Command::new(&loadgen);
        cmd.args(&args).current_dir(self.root);
        let bound = Duration::from_secs(shape.warmup + shape.duration + 120);
        let end = super::process::run_bounded(
            cmd,
            &self.file(&format!("{tag}.txt")),
            bound,
            self.interrupt,
        )?;
        let cpu1 = crate::probe::cpu_us(redis.pid).unwrap_or(cpu0);
        let rpub1 = redis_publishes(redis_port).unwrap_or(rpub0);
        let (pub1, msg1) = bridge(&addrs);
        // The hosts first, then their Redis.
        for host in hosts {
            host.stop();
        }
        redis.stop();
        Ok(Step {
            kind,
            rate,
            report: read_json(&json),
            end: end_text(end),
            redis_cpu_us: cpu1.saturating_sub(cpu0),
            redis_publishes: rpub1.saturating_sub(rpub0),
            bridge_publishes: pub1.saturating_sub(pub0),
            bridge_messages: msg1.saturating_sub(msg0),
            first_steal: None,
        })
    }

    /// A step, and once more (as `TAG.again`) when the hypervisor disturbed
    /// its window.
    fn step_steady(
        &mut self,
        tag: &str,
        kind: &'static str,
        rate: u64,
        extra: &[String],
    ) -> Result<Step, SuiteError> {
        let first = self.step(tag, kind, rate, extra)?;
        let stolen = first.report.as_ref().map_or(0.0, steal);
        if stolen <= STEAL_RETRY_PCT {
            return Ok(first);
        }
        println!(
            "suite:     the hypervisor stole {stolen:.1}% of the CPU time in the window: once more"
        );
        self.interrupt.sleep(BETWEEN_STEPS)?;
        let again = self.step(&format!("{tag}.again"), kind, rate, extra)?;
        Ok(Step {
            first_steal: Some(stolen),
            ..again
        })
    }

    /// `bench/floor --cross-host` at `rate` says/s in the scenario's shape
    /// (rooms of talkers on host a and listeners on host b, as loadgen
    /// places them), on a fresh `redis-server`.
    fn floor(
        &mut self,
        tag: &str,
        before: &'static str,
        rate: u64,
    ) -> Result<FloorStep, SuiteError> {
        let shape = self.shape;
        let (redis, port) = self.redis(tag)?;
        let per_room = shape.players / shape.rooms;
        let json = self.file(&format!("{tag}.json"));
        let args = |url: &str| -> Vec<String> {
            [
                "--cross-host".to_string(),
                "--redis".into(),
                url.to_string(),
                "--rooms".into(),
                shape.rooms.to_string(),
                "--talkers".into(),
                per_room.div_ceil(2).to_string(),
                "--listeners".into(),
                (per_room / 2).to_string(),
                "--rate".into(),
                rate.to_string(),
                "--bytes".into(),
                "90".into(),
                "--warmup".into(),
                shape.warmup.to_string(),
                "--seconds".into(),
                shape.duration.to_string(),
                "--json".into(),
                json.display().to_string(),
            ]
            .to_vec()
        };
        let floor = self.bin.join("floor");
        self.note(format!(
            "{} {}",
            floor.display(),
            args("redis://127.0.0.1:$PORT").join(" ")
        ));
        let mut cmd = Command::new(&floor);
        cmd.args(args(&format!("redis://127.0.0.1:{port}")))
            .current_dir(self.root);
        let before_ticks = crate::probe::MachineTicks::now();
        let bound = Duration::from_secs(shape.warmup + shape.duration + 60);
        let end = super::process::run_bounded(
            cmd,
            &self.file(&format!("{tag}.txt")),
            bound,
            self.interrupt,
        )?;
        let after_ticks = crate::probe::MachineTicks::now();
        redis.stop();
        let steal = match (before_ticks, after_ticks) {
            (Some(a), Some(b)) if b.total > a.total => {
                100.0 * b.steal.saturating_sub(a.steal) as f64 / (b.total - a.total) as f64
            }
            _ => 0.0,
        };
        Ok(FloorStep {
            before,
            rate,
            report: read_json(&json),
            end: end_text(end),
            steal,
            first_steal: None,
        })
    }

    /// The floor, and once more when the hypervisor disturbed it.
    fn floor_steady(&mut self, before: &'static str, rate: u64) -> Result<FloorStep, SuiteError> {
        let tag = format!("floor-before-{before}@{rate}");
        let first = self.floor(&tag, before, rate)?;
        if first.steal <= STEAL_RETRY_PCT {
            return Ok(first);
        }
        println!(
            "suite:     the hypervisor stole {:.1}% of the CPU time: once more",
            first.steal
        );
        self.interrupt.sleep(BETWEEN_STEPS)?;
        let again = self.floor(&format!("{tag}.again"), before, rate)?;
        Ok(FloorStep {
            first_steal: Some(first.steal),
            ..again
        })
    }
}

fn start_failed(what: &str, e: super::process::StartError) -> SuiteError {
    match e {
        super::process::StartError::Interrupted(Interrupted(s)) => SuiteError::Interrupted(s),
        e => SuiteError::Failed(format!("{what} {e}")),
    }
}

fn end_text(end: Result<RunEnd, std::io::Error>) -> String {
    match end {
        Ok(RunEnd::Exited(code)) => code.to_string(),
        Ok(RunEnd::Signalled(sig)) => format!("signal {sig}"),
        Ok(RunEnd::TimedOut) => "timed out".into(),
        Err(e) => format!("not run: {e}"),
    }
}

/// A port free on loopback now.
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// The body of `GET path` from a server on loopback; `None` on any failure.
fn http_get(addr: &str, path: &str) -> Option<String> {
    let body = crate::probe::http_get(addr.parse().ok()?, path, 16 << 20)?;
    String::from_utf8(body).ok()
}

/// A counter without labels from a `/metrics` page.
fn metric(page: &str, name: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// mudshard's bridge counters summed over hosts: (publishes, messages).
fn bridge_counters(addrs: &[String]) -> (u64, u64) {
    addrs.iter().fold((0, 0), |(p, m), addr| {
        let page = http_get(addr, "/metrics").unwrap_or_default();
        (
            p + metric(&page, "mudshard_bridge_publishes_total"),
            m + metric(&page, "mudshard_bridge_messages_published_total"),
        )
    })
}

/// Redis's `PUBLISH` calls so far (`INFO commandstats`).
fn redis_publishes(port: u16) -> Option<u64> {
    let bound = Duration::from_secs(2);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, bound).ok()?;
    stream.set_read_timeout(Some(bound)).ok()?;
    stream
        .write_all(b"*2\r\n$4\r\nINFO\r\n$12\r\ncommandstats\r\n")
        .ok()?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&chunk[..n]);
        // `$LEN\r\n` then LEN bytes and `\r\n`: whole once they are all here.
        let text = String::from_utf8_lossy(&reply);
        if let Some((head, rest)) = text.split_once("\r\n") {
            let len: usize = head.strip_prefix('$')?.parse().ok()?;
            if rest.len() >= len {
                break;
            }
        }
    }
    publish_calls(&String::from_utf8_lossy(&reply))
}

/// `cmdstat_publish:calls=N,…` of an `INFO commandstats` reply (0 when
/// nothing was published yet, so the line is absent).
fn publish_calls(info: &str) -> Option<u64> {
    if !info.starts_with('$') {
        return None;
    }
    Some(
        info.lines()
            .find_map(|l| {
                l.strip_prefix("cmdstat_publish:calls=")?
                    .split(',')
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0),
    )
}

fn ms(us: Option<f64>) -> String {
    us.map_or_else(|| "—".into(), |v| format!("{:.2}", v / 1000.0))
}

fn steal_cell(now: f64, first: Option<f64>) -> String {
    match first {
        None => format!("{now:.1}"),
        Some(first) => format!("{now:.1} (first attempt {first:.1})"),
    }
}

/// `1e6` as the report writes a bound: `100`, `2.5`.
fn bound(v: f64) -> String {
    if v == v.trunc() {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// The report, in markdown.
pub fn render(results: &Results, meta: &machine::Meta, commands: &str) -> String {
    let shape = &results.shape;
    let mode = results.mode.section();
    let p99_max = shape.p99_ms_max;
    let mut lines: Vec<String> = Vec::new();
    let mut w = |s: String| lines.push(s);
    w(format!(
        "# Cross-host benchmark ({mode}): mudshard vs the bridged baseline\n"
    ));
    w(format!(
        "Run {}, commit {}, {} CPUs ({}), {}. Both hosts, Redis and loadgen share every core (no pinning).\n",
        meta.started_at, meta.commit, meta.nproc, meta.cpu, meta.kernel
    ));
    w(format!(
        "Scenario `cluster` ({mode}): {} players in {} rooms whose members span both hosts; \
         talkers on host a say at the rate; listeners on both. Each step on a fresh redis-server and fresh hosts. \
         mudshard: one shard per host, the grid cut into two zones of rows (`grid:WxH/2`): host a owns the half with \
         every chat room, host b the other (in the ladder, host b's players are remote viewers of host a's rooms). \
         Baseline: `bench/baseline --redis`, a channel per room, one PUBLISH per event.\n",
        shape.players, shape.rooms
    ));
    w(format!(
        "A step whose measured window had more than {}% of the machine's CPU time taken by the \
         hypervisor (steal, from `/proc/stat`) was run once more, and the second attempt is the one shown; the \
         steal column gives both. A figure from a window with more steal than that says more about the machine's \
         neighbours than about the server.\n",
        bound(STEAL_RETRY_PCT)
    ));
    w("| server | says/s | cross-host deliveries/s | missing | cross-host p50 / p99 / max (ms) | same-host p99 (ms) | held | server CPU µs/msg | Redis CPU µs per cross-host delivery | messages per PUBLISH | Redis PUBLISH calls | steal (%) |".into());
    w("|---|---|---|---|---|---|---|---|---|---|---|---|".into());
    // Each server's highest held rate (deliveries/s) and step (says/s).
    let mut best: std::collections::HashMap<&str, f64> = Default::default();
    let mut best_step: std::collections::HashMap<&str, u64> = Default::default();
    let span = (shape.warmup + shape.duration) as f64;
    for s in &results.steps {
        let Some(r) = &s.report else {
            w(format!(
                "| {} | {} | — | — | — | — | no (loadgen exit {}) | — | — | — | — | — |",
                s.kind, s.rate, s.end
            ));
            continue;
        };
        let x = |k: &str| num(r, &format!("latency_us.delivery_cross_host.{k}"));
        let per_s = num(r, "cluster.cross_host.received_per_s").unwrap_or(0.0);
        let cross_total = (per_s * span).max(1.0);
        let redis_us = s.redis_cpu_us as f64 / cross_total;
        let batching = if s.kind == "mudshard" && s.bridge_publishes > 0 {
            format!(
                "{:.1}",
                s.bridge_messages as f64 / s.bridge_publishes as f64
            )
        } else {
            "1 (by design)".into()
        };
        let cpu = num(r, "server.cpu_us_per_msg").map_or_else(|| "—".into(), |c| format!("{c:.1}"));
        let h = held(r, p99_max);
        if h {
            let b = best.entry(s.kind).or_insert(0.0);
            *b = b.max(per_s);
            let b = best_step.entry(s.kind).or_insert(0);
            *b = (*b).max(s.rate);
        }
        w(format!(
            "| {} | {} | {} | {} | {} / {} / {} | {} | {} | {} | {:.2} | {} | {} | {} |",
            s.kind,
            s.rate,
            count(per_s),
            num(r, "cluster.cross_host.missing").map_or_else(|| "—".into(), count),
            ms(x("p50_us")),
            ms(x("p99_us")),
            ms(x("max_us")),
            ms(num(r, "latency_us.delivery_same_host.p99_us")),
            if h { "yes" } else { "no" },
            cpu,
            redis_us,
            batching,
            count(s.redis_publishes as f64),
            steal_cell(steal(r), s.first_steal)
        ));
    }
    for f in &results.floors {
        let fsteal = steal_cell(f.steal, f.first_steal);
        let name = format!(
            "floor, before {}'s step (no server: `bench/floor --cross-host`)",
            f.before
        );
        match &f.report {
            None => w(format!(
                "| {name} | {} | — | — | — | — | no (floor exit {}) | — | — | — | — | {fsteal} |",
                f.rate, f.end
            )),
            Some(fr) => {
                let x = |k: &str| num(fr, &format!("cross_host.{k}"));
                let missing = x("expected").unwrap_or(0.0) - x("received").unwrap_or(0.0);
                w(format!(
                    "| {name} | {} | {} | {} | {} / {} / {} | {} | — | — | — | {:.1} | — | {fsteal} |",
                    f.rate,
                    num(fr, "cross_host_deliveries_per_s").map_or_else(|| "—".into(), count),
                    count(missing),
                    ms(x("p50_us")),
                    ms(x("p99_us")),
                    ms(x("max_us")),
                    ms(num(fr, "same_host.p99_us")),
                    num(fr, "says_per_publish").unwrap_or(0.0)
                ));
            }
        }
    }
    w(String::new());
    if !results.floors.is_empty() {
        w("The floor rows are `bench/floor --cross-host` (commands below), each run just before a server's step at \
           the latency target's rate: the same path's threads and wake-ups (a client sending, host a's shard, its publisher, a fresh \
           redis-server, host b's subscriber, host b's shard, a client receiving) doing nothing else: one `recv` \
           per ready socket, one `send` per delivery, no game, no WebSocket. Their steal is measured from \
           `/proc/stat` over the whole run, warm-up included.\n".into());
    }
    let top = results.steps.iter().map(|s| s.rate).max().unwrap_or(0);
    let bm = best.get("mudshard").copied().unwrap_or(0.0);
    let bb = best.get("baseline").copied().unwrap_or(0.0);
    let step_of = |k: &str| best_step.get(k).copied().unwrap_or(0);
    if results.mode == ClusterMode::Throughput {
        w("## Highest held\n".into());
        let held_cell = |kind: &str, b: f64| {
            if b == 0.0 {
                return "none held".to_string();
            }
            format!(
                "{}/s{}",
                count(b),
                if step_of(kind) >= top {
                    " (the ladder's top: it may hold more)"
                } else {
                    ""
                }
            )
        };
        w(format!(
            "Highest cross-host delivery rate held with p99 ≤ {} ms in this run: mudshard {}, \
             baseline {}. Each server climbs until its first step not held.\n",
            bound(p99_max),
            held_cell("mudshard", bm),
            held_cell("baseline", bb)
        ));
        w("| target | mudshard | baseline | reached |".into());
        w("|---|---|---|---|".into());
        if bb > 0.0 {
            let ratio = bm / bb;
            let more = if step_of("mudshard") >= top {
                "at least "
            } else {
                ""
            };
            w(format!(
                "| highest cross-host delivery rate held with p99 ≤ {} ms ≥ 4× the baseline's | {}/s | {}/s | {more}{ratio:.2}× — {} |",
                bound(p99_max),
                count(bm),
                count(bb),
                if ratio >= 4.0 { "reached" } else { "not reached" }
            ));
        } else {
            w(format!(
                "| highest cross-host delivery rate held with p99 ≤ {} ms ≥ 4× the baseline's | {}/s | none held | \
                 — (the ladder starts above the baseline's highest held rate: no ratio from this run) |",
                bound(p99_max),
                count(bm)
            ));
        }
        w(String::new());
        return finish(lines, commands);
    }
    w("## Targets (issue 10)\n".into());
    w("| target | mudshard | baseline | reached |".into());
    w("|---|---|---|---|".into());
    let at_target = |kind: &str| {
        results
            .steps
            .iter()
            .find(|s| s.kind == kind && s.rate == shape.rate)
            .and_then(|s| s.report.as_ref())
    };
    let p99_of = |r: &Value| num(r, "latency_us.delivery_cross_host.p99_us").map(|v| v / 1000.0);
    if let Some(mr) = at_target("mudshard") {
        let br = at_target("baseline");
        let p99 = p99_of(mr).unwrap_or(f64::INFINITY);
        let bp = br
            .and_then(p99_of)
            .map_or_else(|| "—".into(), |v| format!("{v:.2} ms"));
        let mut verdict = if p99 <= 2.0 { "reached" } else { "not reached" }.to_string();
        if steal(mr) > STEAL_RETRY_PCT {
            verdict += &format!(
                " (its window, run twice, still had {:.1}% steal)",
                steal(mr)
            );
        }
        let floor_p99 = |before: &str| {
            results
                .floors
                .iter()
                .find(|f| f.before == before && f.rate == shape.rate)
                .and_then(|f| f.report.as_ref())
                .and_then(|fr| num(fr, "cross_host.p99_us"))
                .map(|v| v / 1000.0)
        };
        let (fp, fb) = (floor_p99("mudshard"), floor_p99("baseline"));
        if let Some(fp) = fp.filter(|fp| p99 > 2.0 && *fp > 2.0) {
            verdict += &format!(
                ": out of reach in this sitting, the path's floor alone had p99 {fp:.2} ms just before"
            );
        }
        w(format!(
            "| cross-host say p99 ≤ 2 ms at {} cross-host deliveries/s | {p99:.2} ms | {bp} | {verdict} |",
            count((shape.rate * 5) as f64)
        ));
        if fp.is_some() || fb.is_some() {
            let against = |server: Option<f64>, f: Option<f64>| match (server, f) {
                (Some(s), Some(f)) if f > 0.0 => format!("{:.2}× (floor {f:.2} ms)", s / f),
                _ => "—".into(),
            };
            w(format!(
                "| (for scale) cross-host p99 against the path's floor run just before the step | {} | {} | — |",
                against(Some(p99), fp),
                against(br.and_then(p99_of), fb)
            ));
        }
    }
    let ratio = if bb > 0.0 {
        bm / bb
    } else if bm > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    let verdict = if bb == 0.0 {
        "— (the baseline held no step: no ratio from this run)".to_string()
    } else if step_of("baseline") >= top {
        "— (the baseline held the ladder's top too: no ratio from this run; `--throughput` climbs further)".into()
    } else if step_of("mudshard") >= top && ratio < 4.0 {
        format!(
            "at least {ratio:.2}× — not shown by this ladder (mudshard held its top; `--throughput` climbs further)"
        )
    } else {
        format!(
            "{}{ratio:.2}× — {}",
            if step_of("mudshard") >= top {
                "at least "
            } else {
                ""
            },
            if ratio >= 4.0 {
                "reached"
            } else {
                "not reached"
            }
        )
    };
    w(format!(
        "| highest cross-host delivery rate held with p99 ≤ {} ms ≥ 4× the baseline's | {}/s | {}/s | {verdict} |",
        bound(p99_max),
        count(bm),
        count(bb)
    ));
    w(format!(
        "\nThe ladder stops at {top} says/s (the scenario's top step); a server that held the top step may hold more.\n"
    ));
    if !results.mixed.is_empty() {
        w("## Mixed play: says, tells and walks across the boundary\n".into());
        w(format!(
            "The latency target's step once more with everything the scenario plays: talkers on host a say at {}/s, \
             of which a share of {} are tells to a listener on host b; and \
             {} walkers (half connected to each host) make {} moves/s between them. \
             Half of the walkers step back and forth across the border between host a's rows and host b's (each move hands the \
             body to the other host on mudshard), half walk two rows of the land of the host they are connected to. mudshard's \
             maps cut the grid into two zones of rows (`grid:WxH/2`); the baseline has no owners (every host holds every room, \
             and a move publishes its `leave` and `enter` on the rooms' channels). Moves are timed from their intended send \
             (coordinated-omission corrected), apart from the says' replies.\n",
            count(shape.rate as f64),
            shape.tell_share,
            shape.walkers,
            shape.walk_rate
        ));
        w("| server | cross-host say p99 (ms) | missing deliveries | tells received / sent | tell p99 (ms) | moves across: answered / sent, failed | across p50 / p99 / max (ms) | moves within: answered / sent, failed | within p50 / p99 (ms) | ok | steal (%) |".into());
        w("|---|---|---|---|---|---|---|---|---|---|---|".into());
        for s in &results.mixed {
            let Some(r) = &s.report else {
                w(format!(
                    "| {} | — | — | — | — | — | — | — | — | no (loadgen exit {}) | — |",
                    s.kind, s.end
                ));
                continue;
            };
            let n = |path: &str| num(r, path).unwrap_or(0.0);
            let missing = n("cluster.cross_host.missing") + n("cluster.same_host.missing");
            let walk_counts = |k: &str| {
                format!(
                    "{} / {}, {}",
                    count(n(&format!("cluster.walks.{k}.answered"))),
                    count(n(&format!("cluster.walks.{k}.sent"))),
                    n(&format!("cluster.walks.{k}.failed"))
                )
            };
            let timed = |k: &str| n(&format!("latency_us.move_{k}.count")) > 0.0;
            let lat = |k: &str, q: &str| ms(num(r, &format!("latency_us.move_{k}.{q}")));
            let across = if timed("across") {
                format!(
                    "{} / {} / {}",
                    lat("across", "p50_us"),
                    lat("across", "p99_us"),
                    lat("across", "max_us")
                )
            } else {
                "—".into()
            };
            let within = if timed("within") {
                format!("{} / {}", lat("within", "p50_us"), lat("within", "p99_us"))
            } else {
                "—".into()
            };
            let tell_p99 = if n("latency_us.tell.count") > 0.0 {
                ms(num(r, "latency_us.tell.p99_us"))
            } else {
                "—".into()
            };
            w(format!(
                "| {} | {} | {} | {} / {} | {tell_p99} | {} | {across} | {} | {within} | {} | {} |",
                s.kind,
                ms(num(r, "latency_us.delivery_cross_host.p99_us")),
                count(missing),
                count(n("cluster.tells.received")),
                count(n("cluster.tells.expected")),
                walk_counts("across"),
                walk_counts("within"),
                if get(r, "ok").and_then(Value::as_bool) == Some(true) {
                    "yes"
                } else {
                    "no"
                },
                steal_cell(steal(r), s.first_steal)
            ));
        }
        w(String::new());
    }
    finish(lines, commands)
}

/// The commands, then the report as one text.
fn finish(mut lines: Vec<String>, commands: &str) -> String {
    lines.push("## Commands\n".into());
    lines.push("```".into());
    lines.push(commands.trim_end().to_string());
    lines.push("```".into());
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SCENARIO: &str = r#"
[full]
players = 1000
rooms = 100
rate = 2000
warmup = 5
duration = 20
ladder = [500, 1000, 3000]
ladder_p99_ms_max = 100
tell_share = 0.1
walkers = 200
walk_rate = 500

[throughput]
players = 1000
rooms = 100
rate = 5000
warmup = 3
duration = 10
ladder = [5000, 6000]
commands_per_s = 100
"#;

    #[test]
    fn the_scenario_is_read_with_its_defaults_and_the_main_rate_in_the_ladder() {
        let s = Shape::parse(SCENARIO, ClusterMode::Full).unwrap();
        assert_eq!(s.rates, vec![500, 1000, 2000, 3000]);
        assert_eq!((s.ramp_rate, s.source_ips, s.grid), (1000, 1, (100, 100)));
        assert_eq!((s.walkers, s.walk_rate, s.tell_share), (200, 500, 0.1));
        assert_eq!(s.p99_ms_max, 100.0);
        let t = Shape::parse(SCENARIO, ClusterMode::Throughput).unwrap();
        assert_eq!((t.rates.clone(), t.commands_per_s), (vec![5000, 6000], 100));
        let err = Shape::parse(SCENARIO, ClusterMode::Quick).unwrap_err();
        assert!(err.contains("[quick]"), "{err}");
    }

    fn report(p99_us: u64, missing: u64, per_s: f64) -> Value {
        json!({
            "ok": true,
            "rate": {"held": true},
            "latency_us": {
                "delivery_cross_host": {"count": 100, "p50_us": 500, "p99_us": p99_us, "max_us": 9000},
                "delivery_same_host": {"p99_us": 700}
            },
            "cluster": {"cross_host": {"missing": missing, "received_per_s": per_s}},
            "server": {"cpu_us_per_msg": 12.34},
            "machine": {"steal_pct": 0.2}
        })
    }

    #[test]
    fn a_step_holds_only_with_nothing_missing_and_its_p99_in_bound() {
        assert!(held(&report(99_000, 0, 1.0), 100.0));
        assert!(!held(&report(101_000, 0, 1.0), 100.0));
        assert!(!held(&report(1_000, 1, 1.0), 100.0));
        let mut r = report(1_000, 0, 1.0);
        r["rate"]["held"] = json!(false);
        assert!(!held(&r, 100.0));
        assert!(!held(&json!({}), 100.0));
    }

    fn step(kind: &'static str, rate: u64, report: Option<Value>) -> Step {
        Step {
            kind,
            rate,
            report,
            end: "0".into(),
            redis_cpu_us: 2_500_000,
            redis_publishes: 1234,
            bridge_publishes: 100,
            bridge_messages: 150,
            first_steal: None,
        }
    }

    #[test]
    fn the_report_judges_both_targets_from_the_ladder_as_climbed() {
        let shape = Shape::parse(SCENARIO, ClusterMode::Full).unwrap();
        let results = Results {
            mode: ClusterMode::Full,
            shape,
            steps: vec![
                step("mudshard", 500, Some(report(800, 0, 2_500.0))),
                step("mudshard", 1000, Some(report(900, 0, 5_000.0))),
                step("mudshard", 2000, Some(report(1_500, 0, 10_000.0))),
                step("mudshard", 3000, Some(report(90_000, 0, 15_000.0))),
                step("baseline", 500, Some(report(900, 0, 2_500.0))),
                step("baseline", 1000, Some(report(150_000, 0, 4_000.0))),
            ],
            floors: vec![FloorStep {
                before: "mudshard",
                rate: 2000,
                report: Some(json!({
                    "cross_host": {"expected": 10, "received": 10, "p50_us": 300, "p99_us": 500, "max_us": 900},
                    "same_host": {"p99_us": 400},
                    "cross_host_deliveries_per_s": 10000,
                    "says_per_publish": 1.5
                })),
                end: "0".into(),
                steal: 0.1,
                first_steal: Some(7.5),
            }],
            mixed: vec![step("baseline", 2000, None)],
        };
        let text = render(&results, &machine::Meta::default(), "cmd one\ncmd two");
        // mudshard held its top step (3000 says/s: 15,000/s), the baseline 500 (2,500/s): 6×.
        assert!(
            text.contains("| 15,000/s | 2,500/s | at least 6.00× — reached |"),
            "{text}"
        );
        assert!(text.contains("| cross-host say p99 ≤ 2 ms at 10,000 cross-host deliveries/s | 1.50 ms | — | reached |"), "{text}");
        assert!(text.contains("| 3.00× (floor 0.50 ms) |"), "{text}");
        // Redis: 2.5 s over 10,000/s × 25 s, 10 µs a delivery; batching 150 / 100.
        assert!(
            text.contains("| mudshard | 2000 | 10,000 | 0 | 0.50 / 1.50 / 9.00 | 0.70 | yes | 12.3 | 10.00 | 1.5 | 1,234 | 0.2 |"),
            "{text}"
        );
        assert!(text.contains("| 0.1 (first attempt 7.5) |"), "{text}");
        assert!(
            text.contains("| baseline | — | — | — | — | — | — | — | — | no (loadgen exit 0) | — |"),
            "{text}"
        );
        assert!(text.ends_with("```\ncmd one\ncmd two\n```\n"), "{text}");
    }

    #[test]
    fn an_info_reply_gives_the_publish_calls() {
        let info = "$80\r\n# Commandstats\r\ncmdstat_publish:calls=4242,usec=1,usec_per_call=0.1\r\ncmdstat_ping:calls=1\r\n";
        assert_eq!(publish_calls(info), Some(4242));
        assert_eq!(publish_calls("$10\r\n# Commandstats\r\n"), Some(0));
        assert_eq!(publish_calls("-ERR no"), None);
        let page = "# TYPE x counter\nmudshard_bridge_publishes_total 17\nmudshard_bridge_publishes_total_other 3\n";
        assert_eq!(metric(page, "mudshard_bridge_publishes_total"), 17);
        assert_eq!(metric(page, "mudshard_bridge_messages_published_total"), 0);
    }
}
