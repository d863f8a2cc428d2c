//! The servers a run is run against, and the command line that starts each
//! one: mudshard as the suite lays it out, the baseline, and the variants
//! the derived tables need (mudshard with 1 or 2 shards for the scaling
//! table, mudshard with mimalloc purging at once for idle memory).

use super::options::{cores, Options};
use super::plan::Grid;
use std::net::SocketAddrV4;
use std::path::{Path, PathBuf};

/// mudshard's per-address connection cap for the runs: above any
/// scenario's players per source address (15,000 over 20 addresses at most).
pub const CONNECTIONS_PER_IP_MAX: usize = 65536;

/// The environment that makes mimalloc give a page back as soon as it
/// empties: idle memory read "after mimalloc has purged" (issue 12).
pub const PURGED_ENV: (&str, &str) = ("MIMALLOC_PURGE_DELAY", "0");

/// Which server, set up how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Variant {
    /// mudshard with the suite's shards and cores.
    Mudshard,
    /// The comparison baseline (bench/baseline).
    Baseline,
    /// mudshard with this many shards (the shard-scaling table).
    MudshardShards(usize),
    /// The same, in the scaling table's second round.
    MudshardShardsAgain(usize),
    /// mudshard with `MIMALLOC_PURGE_DELAY=0` (idle memory once purged).
    MudshardPurged,
    /// mudshard with this many shards, its walkers kept to rooms their
    /// connection's shard owns (`loadgen walk --keep-to-shard`): walk without
    /// most of its crossings, where sessions moved to their room's shard
    /// would stand.
    MudshardKept(usize),
    /// The floor's chat relay (`floor --chat-relay`): the cheapest server
    /// chat's ladder can climb, one `send` per delivery and nothing else,
    /// as many threads as the suite's shards. Its ladder is a ceiling for
    /// any server's, measured as theirs are.
    Relay,
}

/// The programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerKind {
    Mudshard,
    Baseline,
    Relay,
}

impl ServerKind {
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Mudshard => "mudshard",
            ServerKind::Baseline => "baseline",
            ServerKind::Relay => "the floor's chat relay",
        }
    }
}

impl Variant {
    pub fn kind(self) -> ServerKind {
        match self {
            Variant::Baseline => ServerKind::Baseline,
            Variant::Relay => ServerKind::Relay,
            _ => ServerKind::Mudshard,
        }
    }

    /// The variant's part of its raw files' names (`rtt.mudshard-1shard.json`).
    pub fn tag(self) -> String {
        match self {
            Variant::Mudshard => "mudshard".into(),
            Variant::Baseline => "baseline".into(),
            Variant::Relay => "relay".into(),
            Variant::MudshardShards(1) => "mudshard-1shard".into(),
            Variant::MudshardShards(n) => format!("mudshard-{n}shards"),
            Variant::MudshardShardsAgain(n) => {
                format!("{}-again", Variant::MudshardShards(n).tag())
            }
            Variant::MudshardPurged => "mudshard-purged".into(),
            Variant::MudshardKept(n) => format!("{}-kept", Variant::MudshardShards(n).tag()),
        }
    }

    /// What the variant adds to loadgen's command line.
    pub fn loadgen_args(self) -> &'static [&'static str] {
        match self {
            Variant::MudshardKept(_) => &["--keep-to-shard"],
            _ => &[],
        }
    }

    /// Whether its runs climb a ladder (and stop at the first step not
    /// sustained); the variants for the derived tables run at the main
    /// rate only.
    pub fn climbs_ladder(self) -> bool {
        matches!(self, Variant::Mudshard | Variant::Baseline | Variant::Relay)
    }
}

/// How mudshard's shards sit on the cores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub shards: usize,
    pub pin: Pin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// Not pinned: the shards share every core with loadgen.
    None,
    /// Shard k pinned to the k-th core (`--cores`).
    Cores(Vec<usize>),
    /// More shards than server cores: the process is confined to these
    /// cores with `taskset`, its shards not pinned within them.
    Taskset(Vec<usize>),
}

impl Layout {
    /// mudshard's layout for a variant (`None` for the baseline).
    pub fn of(variant: Variant, options: &Options) -> Option<Layout> {
        let server_cores = options.split.as_ref().map(|s| s.server.clone());
        let variant = match variant {
            Variant::MudshardShardsAgain(n) | Variant::MudshardKept(n) => {
                Variant::MudshardShards(n)
            }
            v => v,
        };
        match (variant, server_cores) {
            (Variant::Baseline | Variant::Relay, _) => None,
            (Variant::MudshardShards(shards), Some(server)) if server.len() < shards => {
                Some(Layout {
                    shards,
                    pin: Pin::Taskset(server),
                })
            }
            (Variant::MudshardShards(shards), Some(server)) => Some(Layout {
                shards,
                pin: Pin::Cores(server[..shards].to_vec()),
            }),
            (Variant::MudshardShards(shards), None) => Some(Layout {
                shards,
                pin: Pin::None,
            }),
            (_, Some(server)) => Some(Layout {
                shards: server.len(),
                pin: Pin::Cores(server),
            }),
            (_, None) => Some(Layout {
                shards: options.shards,
                pin: Pin::None,
            }),
        }
    }

    /// What the report says about it.
    pub fn describe(&self) -> String {
        let shards = match self.shards {
            1 => "1 shard".to_string(),
            n => format!("{n} shards"),
        };
        match &self.pin {
            Pin::None => format!("{shards}, not pinned (sharing every core with loadgen)"),
            Pin::Cores(c) if c.len() == 1 => format!("{shards} pinned to core {}", c[0]),
            Pin::Cores(c) => format!("{shards} pinned to cores {}, one each", cores(c)),
            Pin::Taskset(c) => format!(
                "{shards} sharing core(s) {} (`taskset -c {}`, not pinned within: \
                 fewer server cores than shards were given)",
                cores(c),
                cores(c)
            ),
        }
    }
}

/// A command line to start: environment, program, arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub env: Vec<(String, String)>,
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl CommandLine {
    /// Under `taskset -c CORES` when there are cores.
    pub fn confined(program: PathBuf, args: Vec<String>, cpus: Option<&[usize]>) -> CommandLine {
        match cpus {
            Some(c) => {
                let mut all = vec!["-c".to_string(), cores(c), program.display().to_string()];
                all.extend(args);
                CommandLine {
                    env: Vec::new(),
                    program: PathBuf::from("taskset"),
                    args: all,
                }
            }
            None => CommandLine {
                env: Vec::new(),
                program,
                args,
            },
        }
    }

    pub fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&self.args);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// As written in the report: paths relative to the repository root.
    pub fn display(&self, root: &Path) -> String {
        let mut words: Vec<String> = self.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        words.push(self.program.display().to_string());
        words.extend(self.args.iter().cloned());
        let prefix = format!("{}/", root.display());
        words.join(" ").replace(&prefix, "")
    }
}

/// Where and what a server serves in one run.
pub struct ServerSetup<'a> {
    pub bin: &'a Path,
    pub run_dir: &'a Path,
    pub addr: SocketAddrV4,
    pub grid: Grid,
    pub options: &'a Options,
}

/// The command that starts `variant`.
pub fn server_command(variant: Variant, s: &ServerSetup<'_>) -> CommandLine {
    let world = format!("grid:{}", s.grid);
    if variant == Variant::Relay {
        // As many threads as mudshard has shards, on the same cores.
        let cpus = s.options.split.as_ref().map(|c| c.server.as_slice());
        let threads = cpus.map_or(s.options.shards, <[usize]>::len);
        let args = vec![
            "--chat-relay".into(),
            "--listen".into(),
            s.addr.to_string(),
            "--relay-threads".into(),
            threads.to_string(),
        ];
        return CommandLine::confined(s.bin.join("floor"), args, cpus);
    }
    let Some(layout) = Layout::of(variant, s.options) else {
        let args = vec![
            "--listen".into(),
            s.addr.to_string(),
            "--world".into(),
            world,
        ];
        let cpus = s.options.split.as_ref().map(|c| c.server.as_slice());
        return CommandLine::confined(s.bin.join("baseline"), args, cpus);
    };
    // Every player comes from one of a few loopback addresses (loadgen's
    // source_ips): the per-address cap, meant for the open internet, is
    // raised to what one address carries here.
    let mut args = vec![
        "--listen".into(),
        s.addr.to_string(),
        "--shards".into(),
        layout.shards.to_string(),
        "--world".into(),
        world,
        "--data-dir".into(),
        s.run_dir.join("data-mudshard").display().to_string(),
        "--connections-per-ip-max".into(),
        CONNECTIONS_PER_IP_MAX.to_string(),
    ];
    let taskset = match &layout.pin {
        Pin::None => None,
        Pin::Cores(c) => {
            args.extend(["--cores".to_string(), cores(c)]);
            None
        }
        Pin::Taskset(c) => Some(c.as_slice()),
    };
    let mut line = CommandLine::confined(s.bin.join("mudshard"), args, taskset);
    if variant == Variant::MudshardPurged {
        line.env
            .push((PURGED_ENV.0.to_string(), PURGED_ENV.1.to_string()));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::super::options::Options;
    use super::*;

    fn options(argv: &[&str]) -> Options {
        super::super::options::for_test(argv)
    }

    fn line(variant: Variant, o: &Options) -> String {
        let setup = ServerSetup {
            bin: Path::new("/r/target/release"),
            run_dir: Path::new("/r/bench/reports/tmp/x"),
            addr: "127.0.0.1:4300".parse().expect("addr"),
            grid: Grid {
                width: 100,
                height: 100,
            },
            options: o,
        };
        server_command(variant, &setup).display(Path::new("/r"))
    }

    #[test]
    fn one_server_core_runs_two_shards_on_it_under_taskset() {
        let o = options(&["--split-cores", "0:1"]);
        assert_eq!(
            line(Variant::MudshardShards(2), &o),
            "taskset -c 0 target/release/mudshard --listen 127.0.0.1:4300 --shards 2 \
             --world grid:100x100 --data-dir bench/reports/tmp/x/data-mudshard \
             --connections-per-ip-max 65536"
        );
        assert!(line(Variant::Mudshard, &o).ends_with("--cores 0"));
        assert!(line(Variant::Baseline, &o).starts_with("taskset -c 0 target/release/baseline"));
        assert_eq!(
            line(Variant::Relay, &o),
            "taskset -c 0 target/release/floor --chat-relay --listen 127.0.0.1:4300 \
             --relay-threads 1"
        );
    }

    #[test]
    fn the_relay_runs_as_many_threads_as_the_suite_has_shards_and_climbs_the_ladder() {
        let o = options(&["--shards", "2"]);
        assert_eq!(
            line(Variant::Relay, &o),
            "target/release/floor --chat-relay --listen 127.0.0.1:4300 --relay-threads 2"
        );
        assert!(Variant::Relay.climbs_ladder());
        assert_eq!(Variant::Relay.kind(), ServerKind::Relay);
        assert_eq!(Variant::Relay.tag(), "relay");
        assert_eq!(Layout::of(Variant::Relay, &o), None);
    }

    #[test]
    fn two_server_cores_pin_one_shard_to_the_first_and_two_to_both() {
        let o = options(&["--split-cores", "0,1:1"]);
        assert!(line(Variant::MudshardShards(1), &o).ends_with("--shards 1 --world grid:100x100 --data-dir bench/reports/tmp/x/data-mudshard --connections-per-ip-max 65536 --cores 0"));
        assert!(line(Variant::MudshardShards(2), &o).ends_with("--cores 0,1"));
    }

    #[test]
    fn shared_cores_leave_every_shard_unpinned_and_purged_sets_the_env() {
        let o = options(&["--shards", "2"]);
        let one = line(Variant::MudshardShards(1), &o);
        assert!(one.starts_with("target/release/mudshard") && one.contains("--shards 1"));
        assert!(!one.contains("--cores"));
        assert!(line(Variant::MudshardPurged, &o).starts_with("MIMALLOC_PURGE_DELAY=0 target"));
    }

    #[test]
    fn kept_walkers_run_on_the_shards_of_their_count_and_tell_loadgen_so() {
        let o = options(&["--split-cores", "0,1:1"]);
        let kept = Variant::MudshardKept(2);
        assert_eq!(kept.tag(), "mudshard-2shards-kept");
        assert_eq!(kept.loadgen_args(), ["--keep-to-shard"]);
        assert!(Variant::MudshardShards(2).loadgen_args().is_empty());
        assert!(!kept.climbs_ladder());
        assert_eq!(kept.kind(), ServerKind::Mudshard);
        assert_eq!(
            Layout::of(kept, &o),
            Layout::of(Variant::MudshardShards(2), &o)
        );
        assert_eq!(line(kept, &o), line(Variant::MudshardShards(2), &o));
    }
}
