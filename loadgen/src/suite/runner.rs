//! The runs themselves: for each planned run and each of its servers, start
//! the server, wait for its address, run loadgen against it within a
//! bound, stop the server by pid, and keep what came of it. A ladder stops
//! climbing for a server at its first step not sustained twice: a step
//! missed once is run once more, so that one stall of a shared machine
//! does not end a server's ladder; a run the hypervisor disturbed (steal
//! above [`STEAL_RETRY_PCT`]) is run once more. Every command is written
//! down as it is run.

use super::floor::{self, FloorRun};
use super::format::num;
use super::ladder::sustained;
use super::options::Options;
use super::plan::{LadderRule, PlannedRun, ScenarioFile};
use super::ports;
use super::process::{run_bounded, Interrupt, Interrupted, RunEnd, Server};
use super::servers::{server_command, CommandLine, ServerKind, ServerSetup, Variant};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write as _;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Bound on a server's start: until it prints its address.
pub const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Slack over a run's planned length before loadgen is stopped.
pub const LOADGEN_SLACK: Duration = Duration::from_secs(60);
/// A run with more CPU time stolen by the hypervisor than this (%) is
/// repeated once.
pub const STEAL_RETRY_PCT: f64 = 5.0;
/// Pause between runs, so that the last run's sockets finish closing.
pub const BETWEEN_RUNS: Duration = Duration::from_secs(2);
/// Lines of a failed run's output shown on the terminal.
const FAILED_OUTPUT_LINES: usize = 5;

/// How one server's run went.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The server did not start (see its log); loadgen was not run.
    NotStarted,
    /// loadgen ran (or could not be run: the error), and whether the
    /// server was still running at its end.
    Ran {
        end: Result<RunEnd, String>,
        server_alive: bool,
    },
}

/// One server's run of one planned run, as the report reads it.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub run: String,
    pub scenario: String,
    pub step: Option<f64>,
    pub main: bool,
    pub variant: Variant,
    pub outcome: Outcome,
    /// loadgen's JSON report, when it wrote one (and it is valid).
    pub report: Option<Value>,
    /// What went wrong or was done twice, in words.
    pub notes: Vec<String>,
}

/// The commands of the run, as written in the report (paths relative to
/// the root), also appended to `commands.txt` as they run.
pub struct CommandLog {
    root: PathBuf,
    file: PathBuf,
    pub lines: Vec<String>,
}

impl CommandLog {
    pub fn new(root: &Path, run_dir: &Path) -> CommandLog {
        CommandLog {
            root: root.to_path_buf(),
            file: run_dir.join("commands.txt"),
            lines: Vec::new(),
        }
    }

    fn add(&mut self, line: String) {
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.file)
        {
            let _ = writeln!(f, "{line}");
        }
        self.lines.push(line);
    }

    fn add_command(&mut self, cmd: &CommandLine, suffix: &str) {
        let line = cmd.display(&self.root) + suffix;
        self.add(line);
    }
}

/// Runs the plan.
pub struct Runner<'a> {
    pub options: &'a Options,
    pub bin: PathBuf,
    pub run_dir: PathBuf,
    pub interrupt: &'a Interrupt,
    pub commands: CommandLog,
}

impl Runner<'_> {
    /// One floor measurement within its bound, made once more when its
    /// window was disturbed ([`FloorRun::again_unless_under`]); a failed
    /// one is reported, not fatal.
    pub fn floor(&mut self, run: &FloorRun) -> Result<(), Interrupted> {
        self.floor_once(run)?;
        let Some(under) = &run.again_unless_under else {
            return Ok(());
        };
        let p99 = |name: &str| {
            read_json(&self.run_dir.join(format!("floor-{name}.json")))
                .as_ref()
                .and_then(floor::echo_p99)
        };
        let (Some(mine), Some(bound)) = (p99(&run.name), p99(under)) else {
            return Ok(());
        };
        if mine < bound {
            return Ok(());
        }
        println!(
            "suite:     floor {}: p99 {:.2} ms, no lower than {under}'s {:.2} ms (its window \
             was disturbed): running it once more",
            run.name,
            mine / 1000.0,
            bound / 1000.0
        );
        for ext in ["json", "txt"] {
            let from = self.run_dir.join(format!("floor-{}.{ext}", run.name));
            let to = self
                .run_dir
                .join(format!("floor-{}{}.{ext}", run.name, floor::FIRST_ATTEMPT));
            if let Err(e) = std::fs::rename(&from, &to) {
                eprintln!("suite:     could not keep {}: {e}", from.display());
            }
        }
        self.floor_once(run)
    }

    fn floor_once(&mut self, run: &FloorRun) -> Result<(), Interrupted> {
        println!("suite: floor {}", run.name);
        let cmd = CommandLine::confined(self.bin.join("floor"), run.args.clone(), None);
        self.commands.add_command(&cmd, "");
        let output = self.run_dir.join(format!("floor-{}.txt", run.name));
        match run_bounded(cmd.command(), &output, run.bound, self.interrupt)? {
            Ok(end) if end.success() => {}
            Ok(_) | Err(_) => eprintln!(
                "suite:     floor {} failed; see {}",
                run.name,
                output.display()
            ),
        }
        if run.pause_after {
            self.interrupt.sleep(BETWEEN_RUNS)?;
        }
        Ok(())
    }

    /// Every planned run against each of its servers; before a scenario's
    /// main run, the floor's runs in its shape (`floor_before`, by scenario:
    /// rtt's and walk's echo runs).
    pub fn run_plan(
        &mut self,
        plan: &[PlannedRun],
        files: &HashMap<String, ScenarioFile>,
        floor_before: &HashMap<String, Vec<FloorRun>>,
    ) -> Result<Vec<RunRecord>, Interrupted> {
        let mut records = Vec::new();
        let mut stopped: HashSet<(String, ServerKind)> = HashSet::new();
        let total = plan.len();
        for (i, run) in plan.iter().enumerate() {
            if run.main {
                let floor = files
                    .get(&run.scenario)
                    .and_then(|f| floor_before.get(&f.scenario));
                for floor in floor.into_iter().flatten() {
                    self.floor(floor)?;
                }
            }
            for &variant in &run.variants {
                let label = format!("[{}/{total}] {} on {}", i + 1, run.name, variant.tag());
                let key = (run.scenario.clone(), variant.kind());
                if !run.main && variant.climbs_ladder() && stopped.contains(&key) {
                    println!("suite: {label}: skipped (not sustained at a lower rate)");
                    continue;
                }
                let rule = files.get(&run.scenario).map(|f| &f.ladder_rule);
                let record = self.run_variant(run, variant, &label, rule)?;
                if let (Some(_), Some(rule)) = (run.step, rule) {
                    if variant.climbs_ladder() && !sustained(rule, record.report.as_ref()) {
                        stopped.insert(key);
                    }
                }
                let started = record.outcome != Outcome::NotStarted;
                records.push(record);
                if started {
                    self.interrupt.sleep(BETWEEN_RUNS)?;
                }
            }
        }
        Ok(records)
    }

    fn addr(&self, variant: Variant) -> SocketAddrV4 {
        match variant.kind() {
            ServerKind::Mudshard => self.options.mudshard_addr,
            // The relay runs after the baseline has stopped, on its port.
            ServerKind::Baseline | ServerKind::Relay => self.options.baseline_addr,
        }
    }

    /// One server's run, once more if the hypervisor stole too much of it,
    /// or if it is a ladder step (`rule`; not the main run, which every
    /// server runs anyway) that it did not sustain: at most two attempts.
    fn run_variant(
        &mut self,
        run: &PlannedRun,
        variant: Variant,
        label: &str,
        rule: Option<&LadderRule>,
    ) -> Result<RunRecord, Interrupted> {
        let mut record = self.attempt(run, variant, label, false)?;
        let steal = record
            .report
            .as_ref()
            .and_then(|r| num(r, "machine.steal_pct"));
        if let Some(steal) = steal.filter(|s| *s > STEAL_RETRY_PCT) {
            println!(
                "suite:     the hypervisor stole {steal:.1}% of the CPU time in the window: \
                 running it once more"
            );
            self.interrupt.sleep(BETWEEN_RUNS)?;
            record = self.attempt(run, variant, label, true)?;
            record.notes.push(format!(
                "run twice: the first attempt had {steal:.1}% steal"
            ));
            return Ok(record);
        }
        let climbing = run.step.is_some() && !run.main && variant.climbs_ladder();
        if let Some(rule) = rule.filter(|_| climbing) {
            if let Some(first) = record.report.as_ref().filter(|r| !sustained(rule, Some(r))) {
                let p99_ms = num(first, &format!("latency_us.{}.p99_us", rule.latency))
                    .map_or_else(|| "none".to_string(), |us| format!("{:.1} ms", us / 1000.0));
                println!(
                    "suite:     not sustained (p99 {} {p99_ms}): running it once more before \
                     the ladder stops",
                    rule.latency
                );
                self.interrupt.sleep(BETWEEN_RUNS)?;
                record = self.attempt(run, variant, label, true)?;
                record.notes.push(format!(
                    "run twice: the first attempt was not sustained (p99 {} {p99_ms})",
                    rule.latency
                ));
            }
        }
        Ok(record)
    }

    fn attempt(
        &mut self,
        run: &PlannedRun,
        variant: Variant,
        label: &str,
        retry: bool,
    ) -> Result<RunRecord, Interrupted> {
        let tag = format!(
            "{}.{}{}",
            run.name,
            variant.tag(),
            if retry { ".retry" } else { "" }
        );
        let addr = self.addr(variant);
        let mut record = RunRecord {
            run: run.name.clone(),
            scenario: run.scenario.clone(),
            step: run.step,
            main: run.main,
            variant,
            outcome: Outcome::NotStarted,
            report: None,
            notes: Vec::new(),
        };
        println!("suite: {label} ({addr})");
        let setup = ServerSetup {
            bin: &self.bin,
            run_dir: &self.run_dir,
            addr,
            grid: run.grid,
            options: self.options,
        };
        let server_cmd = server_command(variant, &setup);
        self.commands.add_command(&server_cmd, " &");
        let log = self.run_dir.join(format!("{tag}.server.log"));
        let mut start = server_cmd.command();
        start.current_dir(&self.options.root);
        let mut server = match Server::start(start, &log, SERVER_START_TIMEOUT, self.interrupt) {
            Ok(s) => s,
            Err(super::process::StartError::Interrupted(i)) => return Err(i),
            Err(e) => {
                eprintln!("suite: {} {e}", variant.kind().name());
                record
                    .notes
                    .push("the server did not start (see its log)".into());
                return Ok(record);
            }
        };
        let foreign = ports::foreign_listeners(addr.port(), Some(server.pid));
        if !foreign.is_empty() {
            eprintln!(
                "suite: refusing to measure {} on {addr} while it shares its port with {}; \
                 set MUDSHARD_ADDR / BASELINE_ADDR",
                variant.kind().name(),
                foreign.join("; ")
            );
            server.stop();
            record.notes.push(format!(
                "another process listens on port {}: not run",
                addr.port()
            ));
            return Ok(record);
        }

        let json = self.run_dir.join(format!("{tag}.json"));
        let mut args = run.args.clone();
        args.extend(variant.loadgen_args().iter().map(|a| a.to_string()));
        args.extend([
            "--target".to_string(),
            addr.to_string(),
            "--server-pid".into(),
            server.pid.to_string(),
            "--json".into(),
            json.display().to_string(),
            "--chart".into(),
            self.run_dir
                .join(format!("{tag}.svg"))
                .display()
                .to_string(),
            "--quiet".into(),
        ]);
        if let Some(threads) = self.options.loadgen_threads() {
            args.extend(["--threads".to_string(), threads.to_string()]);
        }
        let cpus = self.options.split.as_ref().map(|s| s.loadgen.as_slice());
        let loadgen = CommandLine::confined(self.bin.join("loadgen"), args, cpus);
        let written = loadgen.display(&self.options.root).replace(
            &format!("--server-pid {}", server.pid),
            "--server-pid $SERVER_PID",
        );
        self.commands.add(written);
        let output = self.run_dir.join(format!("{tag}.txt"));
        let bound = Duration::from_secs(run.planned_s) + LOADGEN_SLACK;
        let end = run_bounded(loadgen.command(), &output, bound, self.interrupt)?
            .map_err(|e| format!("loadgen could not be run: {e}"));

        let mut server_alive = true;
        let mut invalid = false;
        if let Some(status) = server.exited() {
            server_alive = false;
            let note = format!(
                "the server exited during the run with {}",
                super::process::describe(status)
            );
            eprintln!("suite:     {note}; its log: {}", log.display());
            record.notes.push(note);
        } else if !ports::foreign_listeners(addr.port(), Some(server.pid)).is_empty() {
            invalid = true;
            record.notes.push(format!(
                "another process started listening on port {} during the run: figures invalid",
                addr.port()
            ));
        }
        server.stop();
        if invalid {
            let _ = std::fs::rename(&json, json.with_extension("json.invalid"));
        } else {
            record.report = read_json(&json);
        }
        if !matches!(end, Ok(RunEnd::Exited(0))) {
            println!(
                "suite:     loadgen {}; last lines of its output:",
                end_words(&end)
            );
            let text = std::fs::read_to_string(&output).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            for line in &lines[lines.len().saturating_sub(FAILED_OUTPUT_LINES)..] {
                println!("    {line}");
            }
        }
        record.outcome = Outcome::Ran { end, server_alive };
        Ok(record)
    }
}

/// A loadgen run's end in words.
pub fn end_words(end: &Result<RunEnd, String>) -> String {
    match end {
        Ok(RunEnd::Exited(code)) => format!("exit status {code}"),
        Ok(RunEnd::Signalled(sig)) => format!("killed by signal {sig}"),
        Ok(RunEnd::TimedOut) => "stopped by the time bound".into(),
        Err(e) => e.clone(),
    }
}

/// A JSON file, if it exists and parses.
pub fn read_json(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}
