//! `loadgen suite`: the standard benchmark suite (DESIGN.md §9). Every
//! scenario of `bench/scenarios/` is run by loadgen against mudshard and
//! then against the comparison baseline, one after the other on this
//! machine; the machine's own floor (`bench/floor`) is measured beside
//! them; and a markdown report with the figures side by side, the
//! shard-scaling table and the targets table is written to
//! `bench/reports/`. `scripts/bench.sh` builds the release binaries and
//! runs this.
//!
//! Everything is on loopback, every child has a time bound, and servers
//! are stopped by pid on every exit. One concern per file: `options`
//! (flags and environment), `plan` (scenario files → runs), `servers`
//! (which server, laid out how, started by which command), `process`
//! (children, bounds, stopping), `ports` (who listens where), `floor` (the
//! floor's runs), `runner` (the runs, ladder stops, steal retries),
//! `ladder` (what a step sustained), `results` (lookups for the report),
//! `scaling` and `targets` (the two derived tables), `machine` (metadata),
//! `report` (the markdown), `format` (how a figure is written), and
//! `cluster` (the cross-host benchmark, `--only cluster`, with its own
//! report).

pub mod cluster;
pub mod floor;
pub mod format;
pub mod ladder;
pub mod machine;
pub mod options;
pub mod plan;
pub mod ports;
pub mod process;
pub mod report;
pub mod results;
pub mod runner;
pub mod scaling;
pub mod servers;
pub mod targets;

use clap::Parser;
use options::{Mode, Options, SuiteArgs};
use plan::{ScenarioFile, VariantRules};
use process::{Interrupt, Interrupted};
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The binaries the suite runs, and the command that builds them.
const BINARIES: [&str; 4] = ["mudshard", "loadgen", "baseline", "floor"];
const BUILD_COMMAND: &str = "cargo build --release -p mudshard -p loadgen -p baseline -p floor";

/// Why a suite run ended early.
#[derive(Debug)]
pub enum SuiteError {
    /// Bad options, a busy port, a missing binary, an unwritable report.
    Failed(String),
    /// SIGINT or SIGTERM: the servers were stopped.
    Interrupted(i32),
}

impl From<String> for SuiteError {
    fn from(why: String) -> SuiteError {
        SuiteError::Failed(why)
    }
}

impl From<Interrupted> for SuiteError {
    fn from(i: Interrupted) -> SuiteError {
        SuiteError::Interrupted(i.0)
    }
}

/// `loadgen suite ARGS…` (`argv` starts with the command's name).
pub fn main(argv: impl IntoIterator<Item = OsString>) -> ExitCode {
    let args = match SuiteArgs::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(SuiteError::Failed(why)) => {
            eprintln!("suite: {why}");
            ExitCode::FAILURE
        }
        Err(SuiteError::Interrupted(signal)) => {
            eprintln!("suite: interrupted by signal {signal}; every server it started is stopped");
            ExitCode::from(u8::try_from(128 + signal).unwrap_or(130))
        }
    }
}

fn nproc() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs the suite and writes its report.
pub fn run(args: SuiteArgs) -> Result<(), SuiteError> {
    let interrupt = Interrupt::install()?;
    let nproc = nproc();
    let options = Options::check(args, |k| std::env::var(k).ok(), nproc)?;
    let root = std::fs::canonicalize(&options.root).map_err(|e| {
        format!(
            "--root {}: {e} (run it from the repository root, or pass --root)",
            options.root.display()
        )
    })?;
    // Servers run from the root (mudshard reads shards/default.toml there).
    let options = Options {
        root: root.clone(),
        ..options
    };
    if options.only == ["cluster"] {
        let bin = binaries(&root, &options)?;
        return cluster::run(&options, &root, &bin, &interrupt);
    }
    let scenario_dir = root.join("bench").join("scenarios");
    if !scenario_dir.is_dir() {
        return Err(SuiteError::Failed(format!(
            "{} is not a directory: run it from the repository root, or pass --root",
            scenario_dir.display()
        )));
    }
    let names = plan::select(&scenario_dir, &options.only)?;
    let mut files = HashMap::new();
    for name in &names {
        let file = ScenarioFile::load(&scenario_dir, name, options.mode.section())?;
        files.insert(name.clone(), file);
    }
    check_machine(&options)?;
    let (soft, hard) = machine::raise_nofile();
    println!("suite: open files limit {soft} (hard {hard})");
    let bin = binaries(&root, &options)?;

    let run_dir = root.join("bench/reports/tmp").join(format!(
        "{}-{}",
        machine::utc_stamp(),
        options.mode.section()
    ));
    std::fs::create_dir_all(&run_dir).map_err(|e| format!("{}: {e}", run_dir.display()))?;
    let out = options
        .out
        .clone()
        .unwrap_or_else(|| default_out(&root, &options));
    let mut meta = machine::Meta::read(&root, nproc);

    let rules = VariantRules {
        suite_shards: options.shards,
        scaling: options.scaling,
        scaling_rounds: options.scaling_rounds,
        // The relay is the floor's: `--no-floor` leaves it out too.
        relay: options.floor,
    };
    let ordered: Vec<ScenarioFile> = names.iter().filter_map(|n| files.get(n).cloned()).collect();
    let runs = plan::plan(&ordered, rules);
    let mut runner = runner::Runner {
        options: &options,
        bin: bin.clone(),
        run_dir: run_dir.clone(),
        interrupt: &interrupt,
        commands: runner::CommandLog::new(&root, &run_dir),
    };
    let records = measure(&mut runner, &files, &runs)?;
    meta.finished_at = machine::utc_now();

    let results = results::Results {
        options: &options,
        files: &files,
        order: names,
        records: &records,
        floor: results::FloorReports::read(&run_dir, &options),
    };
    let text = report::render(
        &results,
        &report::Context {
            meta: &meta,
            root: &root,
            run_dir: &run_dir,
            invocation: options.invocation(),
            commands: &runner.commands.lines,
        },
    );
    Ok(write_report(&out, &text, &run_dir)?)
}

/// Writes the report (making its directory) and says where it and the
/// run's raw reports are.
fn write_report(out: &Path, text: &str, run_dir: &Path) -> Result<(), String> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::write(out, text)
        .map_err(|e| format!("could not write the report {}: {e}", out.display()))?;
    println!(
        "suite: report written to {} (raw reports in {})",
        out.display(),
        run_dir.display()
    );
    Ok(())
}

/// The floor, then every planned run.
fn measure(
    runner: &mut runner::Runner<'_>,
    files: &HashMap<String, ScenarioFile>,
    runs: &[plan::PlannedRun],
) -> Result<Vec<runner::RunRecord>, SuiteError> {
    let options = runner.options;
    let mut floor_before = HashMap::new();
    if options.floor {
        for run in floor::machine_runs(options, &runner.run_dir) {
            runner.floor(&run)?;
        }
        if let Some(chat) = files.values().find(|f| f.scenario == "chat") {
            match floor::chat_shape_runs(chat, options, &runner.run_dir) {
                Ok(runs) => {
                    for run in runs {
                        runner.floor(&run)?;
                    }
                }
                Err(why) => eprintln!("suite: no floor run in chat's shape: {why}"),
            }
        }
        if let Some(rtt) = files.values().find(|f| f.scenario == "rtt") {
            match floor::rtt_runs(rtt, options, &runner.run_dir) {
                Ok(runs) => {
                    floor_before.insert("rtt".to_string(), runs);
                }
                Err(why) => eprintln!("suite: no floor echo runs: {why}"),
            }
        }
        if let Some(walk) = files.values().find(|f| f.scenario == "walk") {
            match floor::walk_runs(walk, options, &runner.run_dir) {
                Ok(runs) => {
                    floor_before.insert("walk".to_string(), runs);
                }
                Err(why) => eprintln!("suite: no floor echo runs in walk's shape: {why}"),
            }
        }
    }
    Ok(runner.run_plan(runs, files, &floor_before)?)
}

/// What the runs need of the machine: free ports, and `taskset` for
/// `--split-cores`.
fn check_machine(options: &Options) -> Result<(), String> {
    if options.split.is_some() && !on_path("taskset") {
        return Err("taskset (util-linux) is needed for --split-cores".into());
    }
    for addr in [options.mudshard_addr, options.baseline_addr] {
        if let Some(who) = ports::busy(addr) {
            return Err(format!(
                "port {} is already in use ({who}): stop whatever listens there or set \
                 MUDSHARD_ADDR / BASELINE_ADDR",
                addr.port()
            ));
        }
    }
    Ok(())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// The release binaries' directory (`$CARGO_TARGET_DIR/release`, default
/// `target/release` under the root), with every binary in it.
fn binaries(root: &Path, options: &Options) -> Result<PathBuf, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| if t.is_absolute() { t } else { root.join(t) })
        .unwrap_or_else(|| root.join("target"));
    let bin = target.join("release");
    for name in BINARIES {
        let path = bin.join(name);
        if !path.is_file() {
            return Err(format!(
                "missing binary {}: run '{BUILD_COMMAND}'{}",
                path.display(),
                if options.build {
                    ""
                } else {
                    " (or drop --no-build)"
                }
            ));
        }
    }
    Ok(bin)
}

/// `bench/reports/<date>-<host>[-split][-quick].md`.
fn default_out(root: &Path, options: &Options) -> PathBuf {
    let mut name = format!("{}-{}", machine::local_date(), machine::hostname());
    if options.split.is_some() {
        name += "-split";
    }
    if options.mode == Mode::Quick {
        name += "-quick";
    }
    root.join("bench/reports").join(format!("{name}.md"))
}
