//! The markdown report: the run's metadata and machine, the floor, each
//! scenario's section, the shard-scaling and targets tables, and every
//! command that was run. What each table holds is decided in the modules
//! that own it; this file puts them in order.

mod floor;
pub mod scenario;

use super::machine::Meta;
use super::options::Mode;
use super::results::Results;
use super::{scaling, targets};
use std::fmt::Write as _;
use std::path::Path;

/// Everything the report is written from besides the results.
pub struct Context<'a> {
    pub meta: &'a Meta,
    pub root: &'a Path,
    pub run_dir: &'a Path,
    pub invocation: String,
    pub commands: &'a [String],
}

/// The whole report.
pub fn render(results: &Results<'_>, cx: &Context<'_>) -> String {
    let o = results.options;
    let meta = cx.meta;
    let mut w = String::new();
    if o.mode == Mode::Quick {
        let _ = writeln!(
            w,
            "# mudshard vs baseline — SMOKE RUN (`scripts/bench.sh --quick`)\n"
        );
        let _ = writeln!(
            w,
            "> **This is a smoke run, not the benchmark.** It proves that the suite runs end to \
             end: counts are small, windows are seconds long, and the machine was busy with \
             other work (load average {} at the start). Do not quote these figures; the full \
             run (`scripts/bench.sh` without `--quick`) is done on a quiet machine.\n",
            meta.load_at_start
        );
    } else {
        let _ = writeln!(w, "# mudshard vs baseline — benchmark report\n");
    }
    let _ = writeln!(
        w,
        "* date: {} (finished {})",
        meta.started_at, meta.finished_at
    );
    match &o.split {
        Some(split) => {
            let _ = writeln!(
                w,
                "* mode: `{}`; split cores: servers on core(s) {} (mudshard with {} shard(s) \
                 pinned there, the baseline under `taskset`), loadgen on core(s) {}; same machine",
                o.mode.section(),
                super::options::cores(&split.server),
                o.shards,
                super::options::cores(&split.loadgen)
            );
        }
        None => {
            let _ = writeln!(
                w,
                "* mode: `{}`; mudshard with {} shards; loadgen on the same machine, sharing \
                 every core",
                o.mode.section(),
                o.shards
            );
        }
    }
    let _ = writeln!(w, "* commit: `{}`", meta.commit);
    let raw = cx.run_dir.strip_prefix(cx.root).unwrap_or(cx.run_dir);
    let _ = writeln!(
        w,
        "* raw reports: `{}/` (JSON, SVG charts, server logs; not committed)\n",
        raw.display()
    );
    machine(&mut w, meta);
    let _ = writeln!(
        w,
        "Figures: ↑ higher is better, ↓ lower is better; ratio = mudshard / baseline. \
         Latencies are coordinated-omission corrected (from the intended send time). Server CPU \
         per delivered message is the server's user+system time over the measured window \
         divided by the messages it delivered to the load generator — the fairest comparison \
         on a small machine. On loopback it includes the load generator's TCP receive path, \
         which the kernel runs in the sending server's context{} The machine is shared and \
         noisy: compare the two servers within one report.\n",
        if o.split.is_some() {
            "."
        } else {
            ", and the load generator shares the cores with the server."
        }
    );
    floor::machine(&mut w, &results.floor, o.split.is_some(), meta.nproc);
    for name in &results.order {
        if let Some(file) = results.files.get(name) {
            scenario::section(&mut w, results, file);
        }
    }
    let rows = scaling::rows(results);
    let floor_row = scaling::floor_row(results);
    w += &scaling::render(results, &rows, floor_row.as_ref());
    let judging = targets::Judging {
        smoke: o.mode == Mode::Quick,
        split: o.split.is_some(),
    };
    let figures = targets::figures(results, &rows, floor_row.as_ref());
    w += &targets::render(&targets::lines(&figures, judging), o);
    let _ = writeln!(w, "## Exact commands\n");
    let _ = writeln!(
        w,
        "Run from `{}` with the open-files limit at {}; each server was stopped (SIGTERM) after \
         its loadgen run.\n",
        cx.root.display(),
        meta.nofile
    );
    let _ = writeln!(w, "```sh\n{}", cx.invocation);
    for line in cx.commands {
        let _ = writeln!(w, "{line}");
    }
    let _ = writeln!(w, "```");
    w
}

fn machine(w: &mut String, meta: &Meta) {
    let _ = writeln!(w, "## Machine\n");
    let _ = writeln!(w, "| | |\n|---|---|");
    for (label, value) in [
        ("cores (nproc)", meta.nproc.to_string()),
        ("CPU (lscpu model name)", meta.cpu.clone()),
        ("memory", meta.mem.clone()),
        ("kernel", meta.kernel.clone()),
        ("open files (ulimit -n)", meta.nofile.clone()),
        ("ephemeral ports (ip_local_port_range)", meta.ports.clone()),
        ("load average at start", meta.load_at_start.clone()),
        ("idle CPUs wait by (cpuidle driver)", meta.idle.clone()),
        (
            "TCP congestion control (net.ipv4.tcp_congestion_control)",
            meta.tcp_cc.clone(),
        ),
        ("rustc", meta.rustc.clone()),
    ] {
        let _ = writeln!(w, "| {label} | {value} |");
    }
    let _ = writeln!(w);
}
