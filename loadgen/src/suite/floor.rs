//! The machine floor (`bench/floor`): what this machine's kernel alone
//! charges for a small loopback send and its receipt, the time it takes
//! away from spinning threads, and an echo's request→reply latency in the
//! rtt scenario's shape — what any server's figures stand on. This file
//! says which floor runs the suite makes; the runner runs them.

use super::options::Options;
use super::plan::ScenarioFile;
use std::path::Path;
use std::time::Duration;

/// The size of the rtt scenario's `look` reply: loadgen places each rtt
/// player in a grid room of its own, and such a reply measured 470 bytes.
pub const RTT_REPLY_BYTES: usize = 470;
/// Connections the one-way runs spread their messages over.
const PAIRS: usize = 1000;
/// The one-way runs' measured seconds, and the hiccup run's.
const ONE_WAY_S: u32 = 3;
const HICCUPS_S: u32 = 5;
/// Bounds on one floor run.
const ONE_WAY_BOUND: Duration = Duration::from_secs(60);
const RTT_BOUND: Duration = Duration::from_secs(120);

/// One floor run: its name (raw files `floor-<name>.json` and `.txt`),
/// floor's arguments, its time bound, and whether the suite pauses after
/// it (so that its sockets finish closing before the next run).
#[derive(Debug, Clone, PartialEq)]
pub struct FloorRun {
    pub name: String,
    pub args: Vec<String>,
    pub bound: Duration,
    pub pause_after: bool,
}

/// The one-way runs, then the hiccups: with `--split-cores` the sender is
/// pinned to the servers' first core and the receiver to loadgen's.
pub fn machine_runs(options: &Options, run_dir: &Path) -> Vec<FloorRun> {
    let mut runs = Vec::new();
    for (name, batch, rate) in [
        ("single-paced", 1, 50_000),
        ("single-max", 1, 0),
        ("batch10-max", 10, 0),
    ] {
        let mut args = strings(&[
            "--batch",
            &batch.to_string(),
            "--rate",
            &rate.to_string(),
            "--pairs",
            &PAIRS.to_string(),
            "--seconds",
            &ONE_WAY_S.to_string(),
        ]);
        if let Some(split) = &options.split {
            if let (Some(s), Some(l)) = (split.server.first(), split.loadgen.first()) {
                args.extend(strings(&[
                    "--sender-core",
                    &s.to_string(),
                    "--receiver-core",
                    &l.to_string(),
                ]));
            }
        }
        args.extend(json(run_dir, name));
        runs.push(FloorRun {
            name: name.into(),
            args,
            bound: ONE_WAY_BOUND,
            pause_after: true,
        });
    }
    let mut args = strings(&["--hiccups", "--seconds", &HICCUPS_S.to_string()]);
    args.extend(json(run_dir, "hiccups"));
    runs.push(FloorRun {
        name: "hiccups".into(),
        args,
        bound: ONE_WAY_BOUND,
        pause_after: false,
    });
    runs
}

/// The echo runs in the rtt scenario's shape (its players as connections,
/// its rate, warm-up and window), once sleeping between events as servers
/// do and once polling: each thread on a CPU of its own — the servers'
/// and loadgen's first with `--split-cores`, otherwise the first two.
pub fn rtt_runs(
    rtt: &ScenarioFile,
    options: &Options,
    run_dir: &Path,
) -> Result<Vec<FloorRun>, String> {
    let players = rtt
        .players
        .ok_or("the rtt scenario has no `players` for the floor's echo run")?;
    let rate = rtt
        .rate
        .ok_or("the rtt scenario has no `rate` for the floor's echo run")?;
    let (echo, client) = match &options.split {
        Some(split) => (
            split.server.first().copied().unwrap_or(0),
            split.loadgen.first().copied().unwrap_or(0),
        ),
        None => (0, usize::from(options.nproc > 1)),
    };
    let mut runs = Vec::new();
    for (mode, spin) in [("sleeping", false), ("polling", true)] {
        let name = format!("rtt-{mode}");
        let mut args = strings(&[
            "--rtt",
            "--pairs",
            &(players as u64).to_string(),
            "--rate",
            &(rate as u64).to_string(),
            "--warmup",
            &number(rtt.warmup.unwrap_or(2.0)),
            "--seconds",
            &number(rtt.duration.unwrap_or(10.0)),
            "--bytes",
            &RTT_REPLY_BYTES.to_string(),
            "--receiver-core",
            &echo.to_string(),
            "--sender-core",
            &client.to_string(),
        ]);
        args.extend(json(run_dir, &name));
        if spin {
            args.push("--spin".into());
        }
        runs.push(FloorRun {
            name,
            args,
            bound: RTT_BOUND,
            pause_after: true,
        });
    }
    Ok(runs)
}

fn number(v: f64) -> String {
    super::format::step(v)
}

fn json(run_dir: &Path, name: &str) -> Vec<String> {
    vec![
        "--json".into(),
        run_dir
            .join(format!("floor-{name}.json"))
            .display()
            .to_string(),
    ]
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[cfg(test)]
mod tests {
    use super::super::options::Options;
    use super::*;

    fn options(argv: &[&str]) -> Options {
        super::super::options::for_test(argv)
    }

    #[test]
    fn split_cores_pin_the_floor_where_the_servers_and_loadgen_run() {
        let runs = machine_runs(&options(&["--split-cores", "1:0"]), Path::new("/t"));
        assert_eq!(runs.len(), 4);
        assert_eq!(
            runs[0].args.join(" "),
            "--batch 1 --rate 50000 --pairs 1000 --seconds 3 --sender-core 1 \
             --receiver-core 0 --json /t/floor-single-paced.json"
        );
        assert_eq!(
            runs[3].args.join(" "),
            "--hiccups --seconds 5 --json /t/floor-hiccups.json"
        );
        assert!(!runs[3].pause_after);
    }

    #[test]
    fn the_echo_runs_take_the_rtt_scenarios_shape() {
        let text =
            "scenario = \"rtt\"\n[full]\nplayers = 5000\nrate = 20000\nwarmup = 5\nduration = 20\n";
        let rtt = ScenarioFile::parse("rtt", text, "full").expect("parses");
        let runs = rtt_runs(&rtt, &options(&[]), Path::new("/t")).expect("shape");
        assert_eq!(
            runs[1].args.join(" "),
            "--rtt --pairs 5000 --rate 20000 --warmup 5 --seconds 20 --bytes 470 \
             --receiver-core 0 --sender-core 1 --json /t/floor-rtt-polling.json --spin"
        );
        assert!(!runs[0].args.contains(&"--spin".to_string()));
        let no_rate =
            ScenarioFile::parse("rtt", "scenario = \"rtt\"\n[full]\nplayers = 1\n", "full")
                .expect("parses");
        assert!(rtt_runs(&no_rate, &options(&[]), Path::new("/t")).is_err());
    }
}
