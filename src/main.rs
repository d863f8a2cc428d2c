//! `mudshard`: serve a shard map. With no arguments, `shards/default.toml`
//! from the working directory, or the embedded default when there is none.
//! `mudshard check` validates a shard map; `mudshard backup` copies the
//! store's file while the server runs.

use clap::builder::BoolishValueParser;
use clap::{Parser, Subcommand};
use mimalloc::MiMalloc;
use signal_hook::consts::{SIGINT, SIGTERM};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use mudshard::config::{Config, ShardMapText, WorldSource};
use mudshard::server::{store_path, Server};

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// A thread-per-core multiplayer text-world (MUD) server over WebSocket.
#[derive(Parser, Debug)]
#[command(version, about, args_override_self = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The shard map (TOML). Default: shards/default.toml in the working
    /// directory if it exists, else the embedded default shard map.
    #[arg(long, env = "MUDSHARD_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "MUDSHARD_LISTEN")]
    listen: Option<SocketAddr>,
    /// Number of shards (executor threads).
    #[arg(long, env = "MUDSHARD_SHARDS")]
    shards: Option<usize>,
    /// Cores to pin shards to, one per shard: shard k runs on the k-th.
    #[arg(long, env = "MUDSHARD_CORES", value_delimiter = ',')]
    cores: Option<Vec<usize>>,
    /// Redis URL of the cross-host bridge.
    #[arg(long, env = "MUDSHARD_REDIS")]
    redis: Option<String>,
    /// Origins whose pages may open WebSocket sessions, comma-separated
    /// (e.g. https://example.org,http://localhost:8080); empty: any origin.
    #[arg(long, env = "MUDSHARD_ALLOWED_ORIGINS", value_delimiter = ',')]
    allowed_origins: Option<Vec<String>>,
    /// Open connections one client address may hold on this host ([limits]
    /// connections_per_ip_max; default 256). Raise it behind a reverse proxy
    /// (every client has the proxy's address) and for load tests from a few
    /// addresses.
    #[arg(long, env = "MUDSHARD_CONNECTIONS_PER_IP_MAX", value_name = "N")]
    connections_per_ip_max: Option<usize>,
    /// Where the SQLite file lives.
    #[arg(long, env = "MUDSHARD_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// This host's id.
    #[arg(long, env = "MUDSHARD_HOST_ID")]
    host_id: Option<String>,
    /// The login-token secret shared by every host of a cluster (at least
    /// 16 bytes); better given in the environment than on a command line.
    #[arg(long, env = "MUDSHARD_TOKEN_SECRET", hide_env_values = true)]
    token_secret: Option<String>,
    /// A generated load-test world instead of the zone files: grid:WIDTHxHEIGHT.
    #[arg(long, env = "MUDSHARD_WORLD")]
    world: Option<String>,
    /// Let everyone use `goto` (always on in a generated world).
    #[arg(long)]
    allow_goto: bool,
    /// Turn NPC ambient lines off (a quiet world for measurements).
    #[arg(long)]
    no_ambient: bool,
    /// io_uring rings with COOP_TASKRUN ([runtime] coop_taskrun; default
    /// true). false: upstream glommio's rings, for A/B measurements.
    #[arg(long, env = "MUDSHARD_COOP_TASKRUN", value_name = "BOOL", value_parser = BoolishValueParser::new())]
    coop_taskrun: Option<bool>,
    /// Arm glommio's preemption timers on every loop ([runtime]
    /// preempt_timers; default false). true: upstream's behaviour, for A/B
    /// measurements.
    #[arg(long, env = "MUDSHARD_GLOMMIO_PREEMPT_TIMERS", value_name = "BOOL", value_parser = BoolishValueParser::new())]
    preempt_timers: Option<bool>,
    /// membarrier system call before an executor sleeps ([runtime]
    /// membarrier_syscall; default false). true: upstream's behaviour, for
    /// A/B measurements.
    #[arg(long, env = "MUDSHARD_GLOMMIO_MEMBARRIER", value_name = "BOOL", value_parser = BoolishValueParser::new())]
    membarrier_syscall: Option<bool>,
    /// Wake shards with a byte on a socket pair for every cross-shard
    /// message ([runtime] socket_doorbell; default false), for A/B
    /// measurements.
    #[arg(long, env = "MUDSHARD_SOCKET_DOORBELL", value_name = "BOOL", value_parser = BoolishValueParser::new())]
    socket_doorbell: Option<bool>,
    /// µs an idle shard keeps polling before it sleeps ([runtime]
    /// spin_before_park_us; default 0).
    #[arg(long, env = "MUDSHARD_SPIN_BEFORE_PARK_US", value_name = "US")]
    spin_before_park_us: Option<u64>,
    /// ms without a read after which a session's reads park on its shard's
    /// epoll instance ([runtime] park_reads_after_ms; default 1000; 0:
    /// never, for A/B measurements).
    #[arg(long, env = "MUDSHARD_PARK_READS_AFTER_MS", value_name = "MS")]
    park_reads_after_ms: Option<u64>,
    /// Log format: text or json.
    #[arg(long, env = "MUDSHARD_LOG", default_value = "text")]
    log: String,
}

/// Tools beside serving; with none, `mudshard` serves.
#[derive(Subcommand, Debug)]
enum Command {
    /// Validate a shard map and its world without serving them: prints `ok`
    /// and a summary, or each problem as FILE:LINE: message and exits 1.
    Check {
        /// The shard map (TOML); default as for serving.
        #[arg(long, env = "MUDSHARD_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Copy the store's SQLite file to OUT while the server runs (SQLite's
    /// online backup: one consistent snapshot, the server keeps writing).
    Backup {
        /// The new file to write (must not exist).
        out: PathBuf,
        /// The shard map naming the data directory; default as for serving.
        #[arg(long, env = "MUDSHARD_CONFIG")]
        config: Option<PathBuf>,
        /// The data directory (overrides the shard map's).
        #[arg(long, env = "MUDSHARD_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
}

fn config_from(args: &Args) -> Result<Config, String> {
    let mut config = ShardMapText::locate(args.config.as_deref())?.config()?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(cores) = &args.cores {
        config.cores = cores.clone();
        config.shards = cores.len();
    }
    if let Some(shards) = args.shards {
        config.shards = shards;
    }
    if let Some(redis) = &args.redis {
        config.redis = Some(redis.clone());
    }
    if let Some(origins) = &args.allowed_origins {
        // `--allowed-origins ""` clears a list from the shard map.
        config.allowed_origins = origins
            .iter()
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect();
    }
    if let Some(max) = args.connections_per_ip_max {
        config.limits.connections_per_ip_max = max;
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(id) = &args.host_id {
        config.host_id = id.clone();
    }
    if let Some(secret) = &args.token_secret {
        config.cluster.token_secret = Some(secret.clone());
    }
    if let Some(world) = &args.world {
        config.world = WorldSource::parse_generated(world)?;
    }
    if args.allow_goto {
        config.game.goto_everyone = true;
    }
    if args.no_ambient {
        config.game.ambient_interval_ms = 0;
    }
    if let Some(on) = args.coop_taskrun {
        config.runtime.coop_taskrun = on;
    }
    if let Some(on) = args.preempt_timers {
        config.runtime.preempt_timers = on;
    }
    if let Some(on) = args.membarrier_syscall {
        config.runtime.membarrier_syscall = on;
    }
    if let Some(ms) = args.park_reads_after_ms {
        config.runtime.park_reads_after_ms = ms;
    }
    if let Some(on) = args.socket_doorbell {
        config.runtime.socket_doorbell = on;
    }
    if let Some(us) = args.spin_before_park_us {
        config.runtime.spin_before_park_us = us;
    }
    config.log_json = match args.log.as_str() {
        "json" => true,
        "text" => false,
        other => return Err(format!("--log {other:?}: expected text or json")),
    };
    config.normalize()?;
    Ok(config)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match &args.command {
        Some(Command::Check { config }) => {
            return check(config.as_deref().or(args.config.as_deref()))
        }
        Some(Command::Backup {
            out,
            config,
            data_dir,
        }) => {
            return backup(
                out,
                config.as_deref().or(args.config.as_deref()),
                data_dir.as_deref().or(args.data_dir.as_deref()),
            )
        }
        None => {}
    }
    let config = match config_from(&args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("mudshard: {e}");
            return ExitCode::from(2);
        }
    };
    mudshard::logging::init(config.log_json, &config.host_id);
    let mut signals = match signal_hook::iterator::Signals::new([SIGTERM, SIGINT]) {
        Ok(signals) => signals,
        Err(e) => {
            eprintln!("mudshard: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let shards = config.shards;
    let host = config.host_id.clone();
    let server = match Server::start(config) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("mudshard: {e}");
            return ExitCode::from(1);
        }
    };
    // Tests and scripts read this line to find the port.
    println!("listening on {}", server.addr);
    tracing::info!(addr = %server.addr, shards, host, "serving");
    let signal = signals.forever().next();
    tracing::info!(?signal, "shutting down");
    if server.shutdown() {
        tracing::info!("stopped");
        ExitCode::SUCCESS
    } else {
        eprintln!("mudshard: a shard failed while stopping");
        ExitCode::from(1)
    }
}

/// `mudshard check`: `ok` and a summary on stdout, exit 0; or every problem
/// on stderr, exit 1.
fn check(config: Option<&std::path::Path>) -> ExitCode {
    let report = mudshard::check::run(config);
    if report.problems.is_empty() {
        println!("{}", report.summary);
        return ExitCode::SUCCESS;
    }
    for problem in &report.problems {
        eprintln!("{problem}");
    }
    eprintln!(
        "mudshard check: {} problem{}",
        report.problems.len(),
        if report.problems.len() == 1 { "" } else { "s" }
    );
    ExitCode::from(1)
}

/// `mudshard backup OUT`: copies `<data_dir>/mudshard.db` to OUT.
fn backup(
    out: &std::path::Path,
    config: Option<&std::path::Path>,
    data_dir: Option<&std::path::Path>,
) -> ExitCode {
    let config = match ShardMapText::locate(config).and_then(|map| map.config()) {
        Ok(mut config) => {
            if let Some(dir) = data_dir {
                config.data_dir = dir.to_path_buf();
            }
            config
        }
        Err(e) => {
            eprintln!("mudshard: {e}");
            return ExitCode::from(2);
        }
    };
    let db = store_path(&config);
    match mudshard::store::backup::backup(&db, out) {
        Ok(pages) => {
            println!(
                "copied {} ({pages} pages) to {}",
                db.display(),
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("mudshard backup: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `flags` after `--config` naming a shard map holding `map`.
    fn config_with(map: &str, flags: &[&str]) -> Config {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("map.toml");
        std::fs::write(&path, map).expect("write");
        let mut argv = vec!["mudshard", "--config", path.to_str().expect("utf-8 path")];
        argv.extend_from_slice(flags);
        config_from(&Args::try_parse_from(argv).expect("flags")).expect("config")
    }

    #[test]
    fn runtime_flags_override_the_shard_map() {
        let map =
            "[runtime]\ncoop_taskrun = false\npreempt_timers = true\nmembarrier_syscall = true\n";
        let config = config_with(
            map,
            &[
                "--coop-taskrun",
                "true",
                "--preempt-timers",
                "0",
                "--membarrier-syscall",
                "false",
            ],
        );
        assert!(config.runtime.coop_taskrun);
        assert!(!config.runtime.preempt_timers);
        assert!(!config.runtime.membarrier_syscall);

        let map = "[runtime]\ncoop_taskrun = true\n";
        let config = config_with(map, &["--coop-taskrun", "false"]);
        assert!(!config.runtime.coop_taskrun);
    }

    #[test]
    fn the_connections_per_ip_flag_overrides_the_shard_map() {
        let map = "[limits]\nconnections_per_ip_max = 3\n";
        assert_eq!(config_with(map, &[]).limits.connections_per_ip_max, 3);
        let config = config_with(map, &["--connections-per-ip-max", "100000"]);
        assert_eq!(config.limits.connections_per_ip_max, 100_000);
    }

    #[test]
    fn a_runtime_flag_that_is_not_a_boolean_is_refused() {
        let err = Args::try_parse_from(["mudshard", "--membarrier-syscall", "maybe"])
            .expect_err("not a boolean");
        assert!(err.to_string().contains("--membarrier-syscall"), "{err}");
    }
}
