//! Running one load-generator process: plans the work, starts one glommio
//! executor per thread, sets the common start line once every thread has
//! opened its sessions, samples the server at the window's edges, and
//! collects every thread's figures.

use crate::clock::now_ns;
use crate::config::{Config, RuntimeSwitches, ScenarioKind};
use crate::control::{Control, Phases};
use crate::plan::{self, Endpoints, ThreadPlan};
use crate::progress::Progress;
use crate::scenario;
use crate::scenario::soak::observer::Observer;
use crate::scenario::soak::report::SoakOutcome;
use crate::stats::Stats;
use crate::worker::Worker;
use crate::{net, probe};
use glommio::{LocalExecutorBuilder, Placement};
use std::rc::Rc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Lead time between the last thread becoming ready and the start line, in
/// ns: enough for every worker to notice it before it passes.
const START_LEAD_NS: u64 = 20_000_000;

/// How often the main thread wakes to update the progress bar, in ms.
const TICK_MS: u64 = 100;

/// File descriptors kept free for everything that is not a session.
const SPARE_FDS: u64 = 64;

/// What the server looked like around the measured window (when it runs on
/// this machine and its pid is known). With several server processes (one
/// per `--target` host), memory and CPU are their sums.
#[derive(Debug, Clone, Default)]
pub struct ServerSample {
    /// The first server process.
    pub pid: Option<u32>,
    /// Every server process measured (`pid` among them).
    pub pids: Vec<u32>,
    pub rss_before_kib: Option<u64>,
    pub rss_after_kib: Option<u64>,
    pub cpu_us: Option<u64>,
}

/// The whole machine over the measured window: how busy it was, how much
/// time the hypervisor stole, and what this process itself used — so a
/// report can say when something besides the server and loadgen was running.
#[derive(Debug, Clone, Default)]
pub struct MachineSample {
    /// CPUs this machine has online.
    pub cores: usize,
    /// CPU time every process of the machine used in the window, µs
    /// (per-process accounting; kernel threads included).
    pub busy_us: Option<u64>,
    /// Stolen CPU time in the window, µs.
    pub steal_us: Option<u64>,
    /// All CPU time of the window (busy, idle, iowait, steal), µs.
    pub total_us: Option<u64>,
    /// This loadgen process's CPU time in the window, µs.
    pub loadgen_cpu_us: Option<u64>,
}

/// Everything a finished run measured, before it becomes a report.
#[derive(Debug)]
pub struct Outcome {
    pub stats: Stats,
    pub phases: Phases,
    pub server: ServerSample,
    pub machine: MachineSample,
    pub threads: usize,
    pub players_here: u64,
    pub rate_here_per_s: f64,
    /// `cluster`: this process's share of `--walk-rate`, moves per second.
    pub walk_rate_here_per_s: f64,
    /// Problems that make the run a failure whatever the figures say.
    pub fatal: Vec<String>,
    /// The first reason a session failed or dropped, if any did.
    pub first_error: Option<String>,
    /// The server's memory over time and the leak check (`soak` only).
    pub soak: Option<SoakOutcome>,
}

type ThreadResult = Result<(Stats, Option<String>), String>;

/// Runs the configured scenario to the end.
pub fn run(config: Config) -> Result<Outcome, String> {
    config.validate()?;
    let threads = config
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let endpoints = Endpoints {
        targets: config
            .targets
            .iter()
            .map(|t| net::resolve(t).map(|addr| (addr, t.clone())))
            .collect::<Result<_, _>>()?,
        sources: match &config.source_ips {
            Some(spec) => net::parse_source_ips(spec)?,
            None => Vec::new(),
        },
    };
    let plans = plan::plan(&config, threads, &endpoints, &plan::run_tag())?;
    let players_here: u64 = plans.iter().map(|p| p.players.len() as u64).sum();
    let rate_here_per_s: f64 = plans.iter().map(|p| p.rate_per_s).sum();
    let walk_rate_here_per_s: f64 = plans.iter().map(|p| p.walk_rate_per_s).sum();
    check_open_files(&config, players_here, threads)?;

    let pids = server_pids(&config, &endpoints);
    let mut server = ServerSample {
        pid: pids.first().copied(),
        pids: pids.clone(),
        rss_before_kib: sum_over(&pids, probe::rss_kib),
        ..ServerSample::default()
    };
    apply_runtime(&config.runtime);
    let control = Arc::new(Control::new(config.clone(), threads));
    let handles: Vec<JoinHandle<ThreadResult>> = plans
        .into_iter()
        .enumerate()
        .map(|(id, plan)| spawn_thread(id, plan, Arc::clone(&control)))
        .collect::<Result<_, _>>()?;

    let progress = Progress::new(&config, players_here);
    while !control.all_ready() {
        progress.opening(&control.totals());
        std::thread::sleep(Duration::from_millis(TICK_MS));
    }
    let phases = control.phases_from(now_ns() + START_LEAD_NS);
    control.set_start(phases.start_ns);
    let observer = Observer::start(&config, pids.first().copied(), endpoints.targets[0].0);
    wait_until(phases.window.start_ns, &progress, &control, &phases);
    let cpu_start = sum_over(&pids, probe::cpu_us);
    let machine_start = probe::MachineTicks::now();
    let processes_start = probe::all_processes_cpu_us();
    let own_start = probe::cpu_us(std::process::id());
    wait_until(phases.window.end_ns, &progress, &control, &phases);
    let cpu_end = sum_over(&pids, probe::cpu_us);
    let machine_end = probe::MachineTicks::now();
    let processes_end = probe::all_processes_cpu_us();
    let own_end = probe::cpu_us(std::process::id());
    let machine = machine_sample(
        machine_start.zip(machine_end),
        processes_start
            .zip(processes_end)
            .map(|(a, b)| probe::cpu_us_between(&a, &b)),
        own_start.zip(own_end),
    );
    server.rss_after_kib = sum_over(&pids, probe::rss_kib);
    server.cpu_us = cpu_start.zip(cpu_end).map(|(a, b)| b.saturating_sub(a));
    wait_until(phases.stop_ns, &progress, &control, &phases);

    let mut stats = Stats::default();
    let mut fatal = Vec::new();
    let mut first_error = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok((thread_stats, error))) => {
                stats.merge(&thread_stats);
                first_error = first_error.or(error);
            }
            Ok(Err(why)) => fatal.push(why),
            Err(_) => fatal.push("a worker thread panicked".into()),
        }
    }
    progress.finish();
    // Every worker has closed its sessions (`soak`: the leak check).
    let soak = observer.map(|o| o.finish(&phases));
    Ok(Outcome {
        stats,
        phases,
        server,
        machine,
        threads,
        players_here,
        rate_here_per_s,
        walk_rate_here_per_s,
        fatal,
        first_error,
        soak,
    })
}

/// The server processes to measure: `--server-pid`s, else the pid each
/// target's `/healthz` names (each once: two targets may be one server).
fn server_pids(config: &Config, endpoints: &Endpoints) -> Vec<u32> {
    if !config.server_pids.is_empty() {
        return config.server_pids.clone();
    }
    let mut pids = Vec::new();
    for (addr, _) in &endpoints.targets {
        if let Some(pid) = probe::healthz_pid(*addr).filter(|pid| !pids.contains(pid)) {
            pids.push(pid);
        }
    }
    pids
}

/// The sum of `figure` over `pids`; unknown when any of them is (a process
/// gone, another machine's pid), so that a sum is never a partial one.
fn sum_over(pids: &[u32], figure: fn(u32) -> Option<u64>) -> Option<u64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| figure(pid)).sum()
}

/// Sets glommio's process-wide switches (vendor/glommio/MUDSHARD-PATCH.md);
/// they must be set before the first executor starts, since its rings are
/// set up as it starts.
fn apply_runtime(runtime: &RuntimeSwitches) {
    glommio::set_cooperative_taskrun(runtime.coop_taskrun);
    // One task queue per executor: the preemption timers would be armed and
    // cancelled on every loop, and each cancel makes the kernel search the
    // ring's table of thousands of pending socket polls.
    glommio::skip_preempt_timers_with_one_queue(!runtime.preempt_timers);
    glommio::set_membarrier_syscall(runtime.membarrier_syscall);
}

fn check_open_files(config: &Config, players_here: u64, threads: usize) -> Result<(), String> {
    let open_files_max = net::raise_open_files_limit();
    let needed = match config.scenario {
        ScenarioKind::Churn => (config.concurrency * threads) as u64,
        ScenarioKind::Soak => scenario::soak::open_files_needed(config, threads),
        _ => players_here,
    };
    if needed + SPARE_FDS > open_files_max {
        return Err(format!(
            "{needed} sessions need more than this process's {open_files_max} open files: \
             split the run over processes with --worker i/n"
        ));
    }
    Ok(())
}

fn spawn_thread(
    id: usize,
    plan: ThreadPlan,
    control: Arc<Control>,
) -> Result<JoinHandle<ThreadResult>, String> {
    std::thread::Builder::new()
        .name(format!("loadgen-{id}"))
        .spawn(move || {
            let executor = match LocalExecutorBuilder::new(Placement::Unbound)
                .name(&format!("loadgen-{id}"))
                // glommio registers this much with io_uring for file I/O
                // (10 MiB by default, resident from the start); loadgen does
                // none, so its minimum.
                .io_memory(64 << 10)
                .make()
            {
                Ok(executor) => executor,
                Err(e) => {
                    // Still count as ready, so the other threads are not kept
                    // waiting for one that will never come.
                    control.mark_ready();
                    return Err(format!("thread {id}: cannot start an executor: {e}"));
                }
            };
            let track_position = match control.config.scenario {
                ScenarioKind::Walk | ScenarioKind::Soak => true,
                ScenarioKind::Cluster => control.config.walkers > 0,
                _ => false,
            };
            Ok(executor.run(async move {
                let worker = Rc::new(Worker::new(id, control, track_position));
                scenario::run_thread(Rc::clone(&worker), plan).await;
                let stats = worker.stats.take();
                let error = worker.first_error.take();
                (stats, error)
            }))
        })
        .map_err(|e| format!("cannot start thread {id}: {e}"))
}

fn wait_until(deadline_ns: u64, progress: &Progress, control: &Control, phases: &Phases) {
    loop {
        let now = now_ns();
        if now >= deadline_ns {
            return;
        }
        progress.running(now, phases, &control.totals());
        let nap_ns = (deadline_ns - now).min(TICK_MS * 1_000_000);
        std::thread::sleep(Duration::from_nanos(nap_ns));
    }
}

fn machine_sample(
    ticks: Option<(probe::MachineTicks, probe::MachineTicks)>,
    processes_us: Option<u64>,
    own_us: Option<(u64, u64)>,
) -> MachineSample {
    let us_per_tick = probe::ticks_per_s().map(|t| 1_000_000 / t);
    let span = |f: fn(&probe::MachineTicks) -> u64| {
        ticks
            .zip(us_per_tick)
            .map(|((a, b), us)| f(&b).saturating_sub(f(&a)) * us)
    };
    MachineSample {
        // Every online CPU, not this process's affinity: /proc/stat counts them all.
        // SAFETY: sysconf has no preconditions.
        cores: usize::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) })
            .unwrap_or(1)
            .max(1),
        busy_us: processes_us,
        steal_us: span(|t| t.steal),
        total_us: span(|t| t.total),
        loadgen_cpu_us: own_us.map(|(a, b)| b.saturating_sub(a)),
    }
}
