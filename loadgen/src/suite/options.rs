//! `loadgen suite`'s flags and environment, checked once into [`Options`]:
//! everything after this holds a valid value (loopback addresses, cores
//! that exist, a shard count of at least one).

use clap::Parser;
use std::fmt;
use std::net::SocketAddrV4;
use std::path::PathBuf;

/// The scenarios of the standard suite, in the order they run.
pub const SUITE_ORDER: [&str; 5] = ["idle", "chat", "rtt", "walk", "churn"];
/// Where mudshard listens unless `MUDSHARD_ADDR` says otherwise.
pub const MUDSHARD_ADDR_DEFAULT: &str = "127.0.0.1:4000";
/// Where the baseline listens unless `BASELINE_ADDR` says otherwise.
pub const BASELINE_ADDR_DEFAULT: &str = "127.0.0.1:4100";

/// `loadgen suite`: the standard benchmark suite (what `scripts/bench.sh` runs).
#[derive(Debug, Parser)]
#[command(
    name = "loadgen suite",
    bin_name = "loadgen suite",
    args_override_self = true,
    about = "The standard benchmark suite (what scripts/bench.sh runs once it has built the \
             release binaries): every scenario of bench/scenarios/ run by loadgen against \
             mudshard and then against the comparison baseline, one after the other on this \
             machine, and a markdown report with the figures side by side",
    after_help = "A run in which the hypervisor stole more than 5% of the CPU time (loadgen's \
                  `machine.steal_pct`) is run once more, and so is a ladder step a server did not \
                  sustain (its ladder stops at a step missed twice); the report notes both.\n\n\
                  Environment: MUDSHARD_ADDR (127.0.0.1:4000), BASELINE_ADDR (127.0.0.1:4100), \
                  CARGO_TARGET_DIR (where the release binaries are: $CARGO_TARGET_DIR/release, \
                  default target/release)."
)]
pub struct SuiteArgs {
    /// Smoke run: small counts and seconds-long windows ([quick] of each
    /// scenario file); a few minutes
    #[arg(long)]
    pub quick: bool,
    /// Run only these scenarios (idle, chat, rtt, walk, churn); may be
    /// repeated. `--only cluster` alone runs the cross-host benchmark
    /// (Redis and two hosts per server kind, bench/scenarios/cluster.toml)
    /// with its own report
    #[arg(long, value_name = "SCENARIO[,SCENARIO…]", value_delimiter = ',')]
    pub only: Vec<String>,
    /// With `--only cluster`: climb past the latency ladder's top
    /// ([throughput] of bench/scenarios/cluster.toml)
    #[arg(long, conflicts_with = "quick")]
    pub throughput: bool,
    /// Write the report here instead of
    /// bench/reports/<date>-<host>[-split][-quick].md
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// mudshard shards (default: online cores)
    #[arg(long, value_name = "N", value_parser = positive)]
    pub shards: Option<usize>,
    /// Servers on cores S, loadgen on cores L (comma lists, e.g. 0:1):
    /// mudshard runs one shard per core of S pinned with --cores, the
    /// baseline under taskset -c S, loadgen under taskset -c L with one
    /// thread per core of L. Without it, servers and loadgen share every core
    #[arg(long, value_name = "S:L", value_parser = SplitCores::parse)]
    pub split_cores: Option<SplitCores>,
    /// Use the release binaries already built (scripts/bench.sh builds them
    /// otherwise)
    #[arg(long)]
    pub no_build: bool,
    /// Skip the machine floor (bench/floor: what the kernel alone charges
    /// for a small loopback send and its receipt, and the time the machine
    /// takes away from spinning threads, ~25 s; with chat, the single send
    /// over chat's players, ~5 s; with rtt, an echo's request→reply latency
    /// in the scenario's shape, sleeping and polling, and sleeping with 1
    /// and 2 echo threads laid out as the servers are, ~2 min)
    #[arg(long)]
    pub no_floor: bool,
    /// Skip the shard-scaling runs (rtt, walk and chat against mudshard with
    /// 1 and with 2 shards at the scenario's main rate, and walk with 2
    /// shards and its walkers kept to their connection's shard)
    #[arg(long)]
    pub no_scaling: bool,
    /// Run the shard-scaling runs once (1 shard, 2 shards) instead of twice
    /// in the order 2, 1, 1, 2 shards (or 1, 2, 2, 1), which cancels a drift
    /// of the machine's speed over the four runs and halves what one
    /// disturbed run moves a ratio by
    #[arg(long)]
    pub scaling_once: bool,
    /// The repository root: scenario files, reports, scripts and binaries
    /// are found from it (scripts/bench.sh passes its own)
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub root: PathBuf,
}

fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("a positive number is needed".into()),
    }
}

/// `--split-cores S:L`: the servers' cores and loadgen's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitCores {
    pub server: Vec<usize>,
    pub loadgen: Vec<usize>,
}

impl SplitCores {
    pub fn parse(s: &str) -> Result<SplitCores, String> {
        const WANT: &str =
            "SERVER_CPUS:LOADGEN_CPUS is needed, comma lists of core numbers (e.g. 0:1)";
        let (server, loadgen) = s.split_once(':').ok_or(WANT)?;
        let list = |part: &str| -> Result<Vec<usize>, String> {
            part.split(',')
                .map(|c| c.parse::<usize>().map_err(|_| WANT.to_string()))
                .collect()
        };
        Ok(SplitCores {
            server: list(server)?,
            loadgen: list(loadgen)?,
        })
    }
}

impl fmt::Display for SplitCores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", cores(&self.server), cores(&self.loadgen))
    }
}

/// A core list as `taskset -c` and `--cores` take it: `0,1`.
pub fn cores(list: &[usize]) -> String {
    list.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Full benchmark or smoke run: which section of the scenario files is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Full,
    Quick,
}

impl Mode {
    /// The scenario files' section, and the word in the run's directory name.
    pub fn section(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Quick => "quick",
        }
    }
}

/// The cross-host benchmark's section of `cluster.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterMode {
    Full,
    Quick,
    /// Past the latency ladder's top.
    Throughput,
}

impl ClusterMode {
    pub fn section(self) -> &'static str {
        match self {
            ClusterMode::Full => "full",
            ClusterMode::Quick => "quick",
            ClusterMode::Throughput => "throughput",
        }
    }
}

/// The checked options of one suite run.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// `--throughput` (with `--only cluster` alone).
    pub throughput: bool,
    /// The scenarios asked for with `--only`, as given (empty: the suite).
    pub only: Vec<String>,
    pub out: Option<PathBuf>,
    /// mudshard's shards in the scenarios' runs (with `--split-cores`, one
    /// per server core).
    pub shards: usize,
    pub split: Option<SplitCores>,
    pub build: bool,
    pub floor: bool,
    pub scaling: bool,
    /// Rounds of the shard-scaling runs: 2 (alternated), or 1.
    pub scaling_rounds: usize,
    pub root: PathBuf,
    pub mudshard_addr: SocketAddrV4,
    pub baseline_addr: SocketAddrV4,
    /// Cores this process may run on (what `nproc` says).
    pub nproc: usize,
}

impl Options {
    /// Checks the flags; `env` reads the environment (a parameter so that
    /// tests can give their own).
    pub fn check(
        args: SuiteArgs,
        env: impl Fn(&str) -> Option<String>,
        nproc: usize,
    ) -> Result<Options, String> {
        let mut shards = args.shards.unwrap_or(nproc);
        if let Some(split) = &args.split_cores {
            if let Some(core) = split
                .server
                .iter()
                .chain(&split.loadgen)
                .find(|c| **c >= nproc)
            {
                return Err(format!(
                    "--split-cores: core {core} does not exist (nproc {nproc})"
                ));
            }
            shards = split.server.len();
        }
        let addr = |var: &str, default: &str| -> Result<SocketAddrV4, String> {
            loopback(&env(var).unwrap_or_else(|| default.to_string()))
        };
        let only: Vec<String> = args
            .only
            .iter()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        if args.throughput && only != ["cluster"] {
            return Err("--throughput is for the cross-host benchmark: --only cluster".into());
        }
        Ok(Options {
            mode: if args.quick { Mode::Quick } else { Mode::Full },
            throughput: args.throughput,
            only,
            out: args.out,
            shards,
            split: args.split_cores,
            build: !args.no_build,
            floor: !args.no_floor,
            scaling: !args.no_scaling,
            scaling_rounds: if args.scaling_once { 1 } else { 2 },
            root: args.root,
            mudshard_addr: addr("MUDSHARD_ADDR", MUDSHARD_ADDR_DEFAULT)?,
            baseline_addr: addr("BASELINE_ADDR", BASELINE_ADDR_DEFAULT)?,
            nproc,
        })
    }

    /// The cross-host benchmark's section.
    pub fn cluster_mode(&self) -> ClusterMode {
        match (self.throughput, self.mode) {
            (true, _) => ClusterMode::Throughput,
            (false, Mode::Quick) => ClusterMode::Quick,
            (false, Mode::Full) => ClusterMode::Full,
        }
    }

    /// Threads for loadgen: one per loadgen core with `--split-cores`,
    /// loadgen's own default otherwise.
    pub fn loadgen_threads(&self) -> Option<usize> {
        self.split.as_ref().map(|s| s.loadgen.len())
    }

    /// The command line this run is written down as in the report: the
    /// wrapper's name, the addresses when they are not the defaults, and
    /// the options in a fixed order.
    pub fn invocation(&self) -> String {
        let mut line = String::new();
        if self.mudshard_addr.to_string() != MUDSHARD_ADDR_DEFAULT {
            line += &format!("MUDSHARD_ADDR={} ", self.mudshard_addr);
        }
        if self.baseline_addr.to_string() != BASELINE_ADDR_DEFAULT {
            line += &format!("BASELINE_ADDR={} ", self.baseline_addr);
        }
        line += "scripts/bench.sh";
        if self.mode == Mode::Quick {
            line += " --quick";
        }
        for name in &self.only {
            line += &format!(" --only {name}");
        }
        match &self.split {
            Some(split) => line += &format!(" --split-cores {split}"),
            None => line += &format!(" --shards {}", self.shards),
        }
        if !self.floor {
            line += " --no-floor";
        }
        if !self.scaling {
            line += " --no-scaling";
        } else if self.scaling_rounds == 1 {
            line += " --scaling-once";
        }
        line
    }
}

/// A server address: the suite runs on loopback only.
pub fn loopback(s: &str) -> Result<SocketAddrV4, String> {
    match s.parse::<SocketAddrV4>() {
        Ok(a) if a.ip().octets()[0] == 127 && a.port() != 0 => Ok(a),
        _ => Err(format!(
            "{s}: the suite runs on loopback only (127.x.y.z:port, port not 0)"
        )),
    }
}

/// The options `loadgen suite ARGV…` gives on a 2-core machine with no
/// environment, for other modules' tests.
#[cfg(test)]
pub(crate) fn for_test(argv: &[&str]) -> Options {
    let mut all = vec!["suite"];
    all.extend(argv);
    Options::check(SuiteArgs::parse_from(all), |_| None, 2).expect("valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(argv: &[&str]) -> SuiteArgs {
        let mut all = vec!["suite"];
        all.extend(argv);
        SuiteArgs::try_parse_from(all).expect("valid flags")
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn throughput_is_the_cross_host_benchmarks_alone() {
        let o = |argv: &[&str]| Options::check(args(argv), no_env, 2);
        let cluster = o(&["--only", "cluster", "--throughput"]).expect("valid");
        assert_eq!(cluster.cluster_mode(), ClusterMode::Throughput);
        assert_eq!(
            o(&["--only", "cluster", "--quick"])
                .expect("valid")
                .cluster_mode(),
            ClusterMode::Quick
        );
        assert_eq!(
            o(&["--only", "cluster"]).expect("valid").cluster_mode(),
            ClusterMode::Full
        );
        let err = o(&["--only", "chat", "--throughput"]).unwrap_err();
        assert!(err.contains("--only cluster"), "{err}");
        assert!(o(&["--throughput"]).is_err());
        let mut all = vec!["suite"];
        all.extend(["--only", "cluster", "--throughput", "--quick"]);
        assert!(SuiteArgs::try_parse_from(all).is_err());
    }

    #[test]
    fn split_cores_set_the_shards_and_loadgen_threads() {
        let o = Options::check(args(&["--split-cores", "0:1", "--shards", "4"]), no_env, 2)
            .expect("valid");
        assert_eq!(o.shards, 1);
        assert_eq!(o.loadgen_threads(), Some(1));
        assert_eq!(o.invocation(), "scripts/bench.sh --split-cores 0:1");
    }

    #[test]
    fn a_core_the_machine_lacks_is_refused() {
        let e = Options::check(args(&["--split-cores", "0:2"]), no_env, 2).unwrap_err();
        assert!(e.contains("core 2 does not exist"), "{e}");
    }

    #[test]
    fn malformed_split_cores_and_shards_are_usage_errors() {
        for bad in [
            &["--split-cores", "0"][..],
            &["--split-cores", "a:1"],
            &["--shards", "0"],
        ] {
            let mut all = vec!["suite"];
            all.extend(bad);
            assert!(SuiteArgs::try_parse_from(all).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn addresses_come_from_the_environment_and_must_be_loopback() {
        let env = |v: &str| (v == "MUDSHARD_ADDR").then(|| "127.0.0.1:4300".to_string());
        let o = Options::check(args(&["--quick", "--only", "rtt,walk"]), env, 2).expect("ok");
        assert_eq!(o.mudshard_addr.port(), 4300);
        assert_eq!(o.baseline_addr.to_string(), BASELINE_ADDR_DEFAULT);
        assert_eq!(o.only, ["rtt", "walk"]);
        assert_eq!(
            o.invocation(),
            "MUDSHARD_ADDR=127.0.0.1:4300 scripts/bench.sh --quick --only rtt --only walk --shards 2"
        );
        let remote = |_: &str| Some("10.0.0.1:4000".to_string());
        let e = Options::check(args(&[]), remote, 2).unwrap_err();
        assert!(e.contains("loopback only"), "{e}");
    }
}
