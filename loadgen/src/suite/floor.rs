//! The machine floor (`bench/floor`): what this machine's kernel alone
//! charges for a small loopback send and its receipt, the time it takes
//! away from spinning threads, and an echo's request→reply latency in the
//! rtt scenario's shape — what any server's figures stand on. This file
//! says which floor runs the suite makes; the runner runs them.
//!
//! Some runs are made in the servers' shape as well, so that a target
//! compares like with like: the echo with as many threads as mudshard has
//! shards, laid out on the cores as mudshard and loadgen are, and the
//! single send over as many connections as chat has players.

use super::options::{cores, Options};
use super::plan::{ScenarioFile, SCALING_SHARDS};
use std::path::Path;
use std::time::Duration;

/// The size of the rtt scenario's `look` reply: loadgen places each rtt
/// player in a grid room of its own, and such a reply measured 470 bytes.
pub const RTT_REPLY_BYTES: usize = 470;
/// Connections the one-way runs spread their messages over.
const PAIRS: usize = 1000;
/// The most pairs floor opens (its own bound: the open-files limit).
pub const PAIRS_MAX: usize = 8_000;
/// The single-send run paced as `single-paced`, over chat's players.
pub const CHAT_SHAPE: &str = "single-paced-chat-shape";
/// The single send flat out as `single-max`, over chat's players.
pub const CHAT_SHAPE_MAX: &str = "single-max-chat-shape";
/// The paced single-send runs' rate, messages/s.
const PACED_RATE: u64 = 50_000;
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
    /// The echo run made just before this one whose p99 this one's must be
    /// under: otherwise the machine took this run's CPU away in its window,
    /// and it is made once more (its first attempt's files keep the
    /// [`FIRST_ATTEMPT`] suffix). Only the polling echo has one.
    pub again_unless_under: Option<String>,
}

/// The suffix of a floor run's first attempt when it was made twice.
pub const FIRST_ATTEMPT: &str = "-first";

/// An echo run's p99 reply latency, µs.
pub fn echo_p99(report: &serde_json::Value) -> Option<f64> {
    super::format::num(report, "latency_us.p99")
}

/// The one-way runs, then the hiccups: with `--split-cores` the sender is
/// pinned to the servers' first core and the receiver to loadgen's.
pub fn machine_runs(options: &Options, run_dir: &Path) -> Vec<FloorRun> {
    let mut runs: Vec<FloorRun> = [
        ("single-paced", 1, PACED_RATE),
        ("single-max", 1, 0),
        ("batch10-max", 10, 0),
    ]
    .into_iter()
    .map(|(name, batch, rate)| one_way(name, batch, rate, PAIRS, options, run_dir))
    .collect();
    let mut args = strings(&["--hiccups", "--seconds", &HICCUPS_S.to_string()]);
    args.extend(json(run_dir, "hiccups"));
    runs.push(FloorRun {
        name: "hiccups".into(),
        args,
        bound: ONE_WAY_BOUND,
        pause_after: false,
        again_unless_under: None,
    });
    runs
}

/// A one-way run: `batch` messages per send at `rate` (0: flat out) over
/// `pairs` connections; with `--split-cores` the sender is pinned to the
/// servers' first core and the receiver to loadgen's.
fn one_way(
    name: &str,
    batch: usize,
    rate: u64,
    pairs: usize,
    options: &Options,
    run_dir: &Path,
) -> FloorRun {
    let mut args = strings(&[
        "--batch",
        &batch.to_string(),
        "--rate",
        &rate.to_string(),
        "--pairs",
        &pairs.to_string(),
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
    FloorRun {
        name: name.into(),
        args,
        bound: ONE_WAY_BOUND,
        pause_after: true,
        again_unless_under: None,
    }
}

/// The single send paced as `single-paced` and flat out as `single-max`,
/// in the same layout, over as many connections as the chat scenario has
/// players (at most [`PAIRS_MAX`]): the kernel's per-socket state stops
/// fitting in cache as connections grow, and a send costs more over 8,000
/// than over 1,000, so fewer of them fit in a second.
pub fn chat_shape_runs(
    chat: &ScenarioFile,
    options: &Options,
    run_dir: &Path,
) -> Result<Vec<FloorRun>, String> {
    let pairs = chat_shape_pairs(chat)?;
    Ok(vec![
        one_way(CHAT_SHAPE, 1, PACED_RATE, pairs, options, run_dir),
        one_way(CHAT_SHAPE_MAX, 1, 0, pairs, options, run_dir),
    ])
}

/// min(chat's players, [`PAIRS_MAX`]).
fn chat_shape_pairs(chat: &ScenarioFile) -> Result<usize, String> {
    let players = chat
        .players
        .filter(|p| *p >= 1.0)
        .ok_or("the chat scenario has no `players` for the floor's chat-shape run")?;
    Ok((players as usize).min(PAIRS_MAX))
}

/// The echo threads of the runs in the servers' shape: the scaling table's
/// shard counts and the suite's own (what mudshard's rtt run has).
pub fn shape_threads(options: &Options) -> Vec<usize> {
    let mut threads: Vec<usize> = SCALING_SHARDS.to_vec();
    threads.push(options.shards);
    threads.sort_unstable();
    threads.dedup();
    threads
}

/// The name of the echo run in the servers' shape with `threads` threads.
pub fn rtt_shape_name(threads: usize) -> String {
    format!("rtt-shape-{threads}")
}

/// The name of the run in the servers' shape whose `threads` echo threads
/// are glommio executors set up as mudshard's shards.
pub fn rtt_glommio_name(threads: usize) -> String {
    format!("rtt-glommio-{threads}")
}

/// The CPU each request of the walk-shaped echo costs its owner, µs
/// (`floor --work-us`), chosen so that the echo with 1 thread spends about
/// what mudshard with 1 shard spends on a move on the 2-vCPU VM (29–32 µs
/// per request against walk's 31–34 µs per command), so that the echo
/// threads are about as busy, and sleep about as often, as the shards.
/// The report holds the two side by side and bounds walk's lines by the
/// echo only when they match. Not more: from about 28 µs the lone echo
/// thread no longer shares its waker's vCPU, and every wake-up on the
/// other, idle one costs it ~17 µs more (30 µs of work: 49 µs a request),
/// an echo far heavier than walk whose 2-vs-1 ratio (1.02× at 35 µs)
/// would promise walk what a crossing cannot give.
pub const WALK_WORK_US: f64 = 25.0;

/// The names of the echo runs in walk's shape: 1 thread, 2 threads each
/// answering its own pairs, and 2 threads whose requests cross to their
/// owner and back as walk's moves do.
pub const WALK_ONE: &str = "walk-shape-1";
pub const WALK_TWO: &str = "walk-shape-2";
pub const WALK_CROSS: &str = "walk-cross-2";

/// The echo in walk's shape (its players as connections, its rate,
/// warm-up, window and sends ahead) with a server's weight of work per
/// request ([`WALK_WORK_US`]), laid out as the servers are: with 1 thread,
/// with 2, and with 2 whose requests on pairs the other owns cross to it
/// and back (`--cross`: half of them, as half of a 2-shard host's moves are
/// read on the shard that does not own the room). What this machine
/// charges a server of walk's weight for a second shard, and for its
/// crossings, with nothing else in the way.
pub fn walk_runs(
    walk: &ScenarioFile,
    options: &Options,
    run_dir: &Path,
) -> Result<Vec<FloorRun>, String> {
    let mut base = rtt_args(walk, "walk")?;
    if let Some((_, us)) = walk.flags.iter().find(|(k, _)| k == "send_ahead_us") {
        base.extend(strings(&["--send-ahead-us", us]));
    }
    base.extend(strings(&["--work-us", &number(WALK_WORK_US)]));
    Ok([
        (WALK_ONE, 1, false),
        (WALK_TWO, 2, false),
        (WALK_CROSS, 2, true),
    ]
    .into_iter()
    .map(|(name, threads, cross)| {
        let mut args = base.clone();
        args.extend(strings(&["--echo-threads", &threads.to_string()]));
        if cross {
            args.push("--cross".into());
        }
        args.extend(servers_layout(options));
        args.extend(json(run_dir, name));
        FloorRun {
            name: name.into(),
            args,
            bound: RTT_BOUND,
            pause_after: true,
            again_unless_under: None,
        }
    })
    .collect())
}

/// The echo runs in the rtt scenario's shape (its players as connections,
/// its rate, warm-up and window): first the pinned ones, once sleeping
/// between events as servers do and once polling, each thread on a CPU of
/// its own — the servers' and loadgen's first with `--split-cores`,
/// otherwise the first two; then the sleeping ones in the servers' shape
/// ([`shape_runs`]).
pub fn rtt_runs(
    rtt: &ScenarioFile,
    options: &Options,
    run_dir: &Path,
) -> Result<Vec<FloorRun>, String> {
    let base = rtt_args(rtt, "rtt")?;
    let mut runs = pinned_runs(&base, options, run_dir);
    // The servers' shape sends as loadgen's rtt does: in bursts of what is
    // due in the next `send_ahead_us`.
    let mut shaped = base.clone();
    if let Some((_, us)) = rtt.flags.iter().find(|(k, _)| k == "send_ahead_us") {
        shaped.extend(strings(&["--send-ahead-us", us]));
    }
    runs.extend(shape_runs(&shaped, options, run_dir));
    Ok(runs)
}

/// `--rtt` and the scenario's shape.
fn rtt_args(rtt: &ScenarioFile, scenario: &str) -> Result<Vec<String>, String> {
    let players = rtt.players.ok_or(format!(
        "the {scenario} scenario has no `players` for the floor's echo run"
    ))?;
    let rate = rtt.rate.ok_or(format!(
        "the {scenario} scenario has no `rate` for the floor's echo run"
    ))?;
    Ok(strings(&[
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
    ]))
}

/// One echo thread and the client, each pinned to a CPU of its own.
fn pinned_runs(base: &[String], options: &Options, run_dir: &Path) -> Vec<FloorRun> {
    let (echo, client) = match &options.split {
        Some(split) => (
            split.server.first().copied().unwrap_or(0),
            split.loadgen.first().copied().unwrap_or(0),
        ),
        None => (0, usize::from(options.nproc > 1)),
    };
    let mut runs: Vec<FloorRun> = Vec::new();
    for (mode, spin) in [("sleeping", false), ("polling", true)] {
        let name = format!("rtt-{mode}");
        let mut args = base.to_vec();
        args.extend(strings(&[
            "--receiver-core",
            &echo.to_string(),
            "--sender-core",
            &client.to_string(),
        ]));
        args.extend(json(run_dir, &name));
        if spin {
            args.push("--spin".into());
        }
        // The polling echo never sleeps and has a CPU of its own: its p99
        // is under the sleeping one's unless its window was disturbed.
        let again_unless_under = spin.then(|| runs.last().map(|r| r.name.clone())).flatten();
        runs.push(FloorRun {
            name,
            args,
            bound: RTT_BOUND,
            pause_after: true,
            again_unless_under,
        });
    }
    runs
}

/// The sleeping echo in the servers' shape, once per [`shape_threads`]
/// count: with `--split-cores` the echo threads on the servers' cores (as
/// mudshard pins its shards) and the client on loadgen's first; without
/// it, nothing pinned, everything sharing the cores as the servers and
/// loadgen do. Then the same with the echo threads as glommio executors
/// (`--echo-runtime glommio`), for 1 and 2: what the runtime alone costs
/// per request, and its own 2-vs-1 ratio.
fn shape_runs(base: &[String], options: &Options, run_dir: &Path) -> Vec<FloorRun> {
    let epoll = shape_threads(options).into_iter().map(|t| (t, false));
    let glommio = SCALING_SHARDS.iter().map(|&t| (t, true));
    epoll
        .chain(glommio)
        .map(|(threads, glommio)| {
            let name = if glommio {
                rtt_glommio_name(threads)
            } else {
                rtt_shape_name(threads)
            };
            let mut args = base.to_vec();
            args.extend(strings(&["--echo-threads", &threads.to_string()]));
            if glommio {
                args.extend(strings(&["--echo-runtime", "glommio"]));
            }
            args.extend(servers_layout(options));
            args.extend(json(run_dir, &name));
            FloorRun {
                name,
                args,
                bound: RTT_BOUND,
                pause_after: true,
                again_unless_under: None,
            }
        })
        .collect()
}

/// Where the echo runs in the servers' shape place their threads: with
/// `--split-cores` the echo threads on the servers' cores and the client on
/// loadgen's first; otherwise nothing pinned.
fn servers_layout(options: &Options) -> Vec<String> {
    match &options.split {
        Some(split) => match split.loadgen.first() {
            Some(client) => strings(&[
                "--receiver-core",
                &cores(&split.server),
                "--sender-core",
                &client.to_string(),
            ]),
            None => Vec::new(),
        },
        None => Vec::new(),
    }
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
        // Only the polling echo is made again, when its p99 is not under
        // the sleeping echo's made just before it.
        let again: Vec<(&str, Option<&str>)> = runs
            .iter()
            .map(|r| (r.name.as_str(), r.again_unless_under.as_deref()))
            .filter(|(_, under)| under.is_some())
            .collect();
        assert_eq!(again, [("rtt-polling", Some("rtt-sleeping"))]);
        let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "rtt-sleeping",
                "rtt-polling",
                "rtt-shape-1",
                "rtt-shape-2",
                "rtt-glommio-1",
                "rtt-glommio-2"
            ]
        );
        let glommio = runs
            .iter()
            .find(|r| r.name == "rtt-glommio-2")
            .map(|r| r.args.join(" "))
            .expect("a glommio run");
        assert!(
            glommio.contains(
                "--echo-threads 2 --echo-runtime glommio --json /t/floor-rtt-glommio-2.json"
            ),
            "{glommio}"
        );
        // The servers' shape sends ahead as the scenario's loadgen does;
        // the pinned runs keep their own pacing.
        let ahead = ScenarioFile::parse("rtt", &format!("{text}send_ahead_us = 150\n"), "full")
            .expect("parses");
        let runs = rtt_runs(&ahead, &options(&[]), Path::new("/t")).expect("shape");
        assert!(shape_args(&runs, 2).contains("--bytes 470 --send-ahead-us 150 --echo-threads 2"));
        assert!(!runs[0].args.contains(&"--send-ahead-us".to_string()));
        let no_rate =
            ScenarioFile::parse("rtt", "scenario = \"rtt\"\n[full]\nplayers = 1\n", "full")
                .expect("parses");
        assert!(rtt_runs(&no_rate, &options(&[]), Path::new("/t")).is_err());
    }

    fn rtt_file() -> ScenarioFile {
        let text =
            "scenario = \"rtt\"\n[quick]\nplayers = 500\nrate = 2000\nwarmup = 1\nduration = 3\n";
        ScenarioFile::parse("rtt", text, "quick").expect("parses")
    }

    fn shape_args(runs: &[FloorRun], threads: usize) -> String {
        runs.iter()
            .find(|r| r.name == rtt_shape_name(threads))
            .map(|r| r.args.join(" "))
            .unwrap_or_else(|| panic!("no rtt-shape-{threads} run"))
    }

    #[test]
    fn with_split_cores_the_shape_echo_runs_sit_where_mudshard_and_loadgen_do() {
        use super::super::options::SuiteArgs;
        use clap::Parser;
        let args = SuiteArgs::parse_from(["suite", "--quick", "--split-cores", "0,1:2,3"]);
        let four_cores = Options::check(args, |_| None, 4).expect("valid");
        let runs = rtt_runs(&rtt_file(), &four_cores, Path::new("/t")).expect("shape");
        assert_eq!(
            shape_args(&runs, 2),
            "--rtt --pairs 500 --rate 2000 --warmup 1 --seconds 3 --bytes 470 \
             --echo-threads 2 --receiver-core 0,1 --sender-core 2 --json /t/floor-rtt-shape-2.json"
        );
        assert_eq!(
            shape_args(&runs, 1),
            "--rtt --pairs 500 --rate 2000 --warmup 1 --seconds 3 --bytes 470 \
             --echo-threads 1 --receiver-core 0,1 --sender-core 2 --json /t/floor-rtt-shape-1.json"
        );
        assert!(runs
            .iter()
            .all(|r| !r.name.starts_with("rtt-shape") || !r.args.contains(&"--spin".to_string())));
    }

    #[test]
    fn without_split_cores_the_shape_echo_runs_pin_nothing() {
        let runs =
            rtt_runs(&rtt_file(), &options(&["--shards", "2"]), Path::new("/t")).expect("shape");
        assert_eq!(
            shape_args(&runs, 2),
            "--rtt --pairs 500 --rate 2000 --warmup 1 --seconds 3 --bytes 470 \
             --echo-threads 2 --json /t/floor-rtt-shape-2.json"
        );
        assert_eq!(runs.len(), 6);
    }

    #[test]
    fn the_shape_echo_runs_include_the_suites_own_shard_count() {
        let o = options(&["--shards", "4"]);
        assert_eq!(shape_threads(&o), [1, 2, 4]);
        let runs = rtt_runs(&rtt_file(), &o, Path::new("/t")).expect("shape");
        assert!(shape_args(&runs, 4).contains("--echo-threads 4 "));
        assert_eq!(shape_threads(&options(&["--shards", "1"])), [1, 2]);
    }

    #[test]
    fn the_walk_echo_runs_take_walks_shape_and_weight_and_cross_in_the_last() {
        let text = "scenario = \"walk\"\n[full]\nplayers = 5000\nrate = 10000\nwarmup = 5\n\
                    duration = 20\nsend_ahead_us = 150\n";
        let walk = ScenarioFile::parse("walk", text, "full").expect("parses");
        let runs = walk_runs(&walk, &options(&[]), Path::new("/t")).expect("shape");
        let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, [WALK_ONE, WALK_TWO, WALK_CROSS]);
        assert_eq!(
            runs[2].args.join(" "),
            "--rtt --pairs 5000 --rate 10000 --warmup 5 --seconds 20 --bytes 470 \
             --send-ahead-us 150 --work-us 25 --echo-threads 2 --cross \
             --json /t/floor-walk-cross-2.json"
        );
        assert!(runs[0]
            .args
            .join(" ")
            .contains("--work-us 25 --echo-threads 1 --json"));
        assert!(!runs[1].args.contains(&"--cross".to_string()));
        // Cores split: the echo threads where the shards are.
        let split =
            walk_runs(&walk, &options(&["--split-cores", "1:0"]), Path::new("/t")).expect("shape");
        assert!(split[2]
            .args
            .join(" ")
            .contains("--cross --receiver-core 1 --sender-core 0 --json"));
        let no_rate =
            ScenarioFile::parse("walk", "scenario = \"walk\"\n[full]\nplayers = 1\n", "full")
                .expect("parses");
        assert!(walk_runs(&no_rate, &options(&[]), Path::new("/t"))
            .expect_err("no rate")
            .contains("the walk scenario has no `rate`"));
    }

    fn chat_file(players: u32) -> ScenarioFile {
        let text = format!("scenario = \"chat\"\n[full]\nplayers = {players}\nrate = 5000\n");
        ScenarioFile::parse("chat", &text, "full").expect("parses")
    }

    #[test]
    fn the_chat_shape_runs_are_single_paced_and_single_max_over_chats_players_up_to_8000() {
        let split = options(&["--split-cores", "1:0"]);
        let runs = chat_shape_runs(&chat_file(10_000), &split, Path::new("/t")).expect("shape");
        let names: Vec<&str> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["single-paced-chat-shape", "single-max-chat-shape"]);
        assert_eq!(
            runs[0].args.join(" "),
            "--batch 1 --rate 50000 --pairs 8000 --seconds 3 --sender-core 1 \
             --receiver-core 0 --json /t/floor-single-paced-chat-shape.json"
        );
        assert_eq!(
            runs[1].args.join(" "),
            "--batch 1 --rate 0 --pairs 8000 --seconds 3 --sender-core 1 \
             --receiver-core 0 --json /t/floor-single-max-chat-shape.json"
        );
        // Each is its 1,000-connection run but for the connections.
        let machine = machine_runs(&split, Path::new("/t"));
        let without_pairs = |a: &[String]| {
            a.iter()
                .filter(|w| !w.contains("json") && *w != "1000" && *w != "8000")
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(machine[0].name, "single-paced");
        assert_eq!(machine[1].name, "single-max");
        for (shape, older) in runs.iter().zip(&machine) {
            assert_eq!(without_pairs(&shape.args), without_pairs(&older.args));
        }
        let shared =
            chat_shape_runs(&chat_file(500), &options(&[]), Path::new("/t")).expect("shape");
        assert_eq!(
            shared[0].args.join(" "),
            "--batch 1 --rate 50000 --pairs 500 --seconds 3 \
             --json /t/floor-single-paced-chat-shape.json"
        );
        let no_players =
            ScenarioFile::parse("chat", "scenario = \"chat\"\n[full]\nrate = 1\n", "full")
                .expect("parses");
        assert!(chat_shape_runs(&no_players, &options(&[]), Path::new("/t"))
            .expect_err("no players")
            .contains("players"));
    }
}
