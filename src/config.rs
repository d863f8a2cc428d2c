//! The one source of truth for configuration: a typed struct with defaults,
//! loaded from a shard map (`shards/default.toml`), overridden by flags and
//! environment variables (see `main.rs` for the flag names).

use serde::Deserialize;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The default shard map, compiled in: served when no `--config` is given
/// and no `shards/default.toml` is in the working directory, so the binary
/// runs from anywhere.
pub const EMBEDDED_SHARD_MAP: &str = include_str!("../shards/default.toml");

/// Where `mudshard` looks for a shard map when none is named.
pub const WORKING_DIR_SHARD_MAP: &str = "shards/default.toml";

/// Everything a host needs to run: where it listens, how many shards, which
/// world, and every bound of DESIGN §7.
#[derive(Clone, Debug)]
pub struct Config {
    /// This host's id, shown in `welcome` and `/healthz`.
    pub host_id: String,
    pub listen: SocketAddr,
    /// Number of shards (executor threads); 0 in the file means one per online core.
    pub shards: usize,
    /// Core for each shard: shard k is pinned to `cores[k]`. Empty: not pinned.
    pub cores: Vec<usize>,
    pub data_dir: PathBuf,
    /// Redis URL for the cross-host bridge; `None` runs this host alone.
    pub redis: Option<String>,
    /// Origins (`scheme://host[:port]`) whose pages may open WebSocket
    /// sessions (`server.allowed_origins`, `--allowed-origins`). An upgrade
    /// carrying any other `Origin` is answered 403 `forbidden_origin`; one
    /// without an `Origin` (not a browser) is let in. Empty: any origin.
    /// Kept in the form `origin_key` gives, so a lookup is one comparison.
    pub allowed_origins: Vec<String>,
    pub world: WorldSource,
    pub game: GameConfig,
    pub limits: Limits,
    /// The SQLite store: write-behind interval and queue bound (`[store]`).
    pub store: StoreSettings,
    /// Accounts: password hashing cost, token lifetime, login limits (`[auth]`).
    pub auth: AuthSettings,
    /// The executors' glommio switches (`[runtime]`).
    pub runtime: RuntimeSettings,
    /// The hosts of the cluster, the zones each owns and the bridge's
    /// bounds (`[cluster]`); no hosts listed: this host owns every zone.
    pub cluster: ClusterSettings,
    /// Log as JSON lines instead of human text.
    pub log_json: bool,
    /// Which shard map this came from, for the log.
    pub origin: MapOrigin,
}

/// Which shard map a configuration was read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MapOrigin {
    /// A file: named with `--config`, or `shards/default.toml` found in the
    /// working directory.
    File(PathBuf),
    /// [`EMBEDDED_SHARD_MAP`].
    Embedded,
}

impl MapOrigin {
    /// How problems name the map: its path, or the built-in file's name.
    pub fn file_name(&self) -> String {
        match self {
            MapOrigin::File(path) => path.display().to_string(),
            MapOrigin::Embedded => format!("<embedded>/{WORKING_DIR_SHARD_MAP}"),
        }
    }
}

impl fmt::Display for MapOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MapOrigin::File(path) => write!(f, "{}", path.display()),
            MapOrigin::Embedded => f.write_str("embedded default shard map"),
        }
    }
}

/// Where the world comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum WorldSource {
    /// Zone files `dir/<zone>.toml`, and the room new players start in.
    Zones {
        dir: PathBuf,
        zones: Vec<String>,
        start: String,
    },
    /// The default world's zones, compiled into the binary (the embedded
    /// shard map's world, or a map's when it names no `world.dir` and has no
    /// `world/` folder beside it).
    Embedded { zones: Vec<String>, start: String },
    /// A generated grid of `width × height` rooms (`grid:X_Y`) for load
    /// tests, cut into `zones` bands of rows (1: one zone, `grid`).
    Grid { width: u32, height: u32, zones: u32 },
}

impl WorldSource {
    /// Parses the `--world` flag: `grid:WxH`, or `grid:WxH/N` for a grid cut
    /// into `N` zones of rows (`grid-0` … `grid-{N-1}`) that the hosts of a
    /// cluster can share out.
    pub fn parse_generated(spec: &str) -> Result<WorldSource, String> {
        const EXPECTED: &str = "expected grid:WIDTHxHEIGHT or grid:WIDTHxHEIGHT/ZONES";
        let rest = spec
            .strip_prefix("grid:")
            .ok_or_else(|| format!("--world {spec:?}: {EXPECTED}, e.g. grid:100x100"))?;
        let (dims, zones) = match rest.split_once('/') {
            Some((dims, zones)) => (dims, Some(zones)),
            None => (rest, None),
        };
        let (w, h) = dims
            .split_once('x')
            .ok_or_else(|| format!("--world {spec:?}: {EXPECTED}"))?;
        let width: u32 = w
            .parse()
            .map_err(|_| format!("--world {spec:?}: bad width"))?;
        let height: u32 = h
            .parse()
            .map_err(|_| format!("--world {spec:?}: bad height"))?;
        if width == 0 || height == 0 || u64::from(width) * u64::from(height) > GRID_ROOMS_MAX {
            return Err(format!(
                "--world {spec:?}: the grid must have between 1 and {GRID_ROOMS_MAX} rooms"
            ));
        }
        let zones = match zones {
            None => 1,
            Some(z) => z
                .parse::<u32>()
                .ok()
                .filter(|&z| (1..=height.min(GRID_ZONES_MAX)).contains(&z))
                .ok_or_else(|| {
                    format!(
                        "--world {spec:?}: the zones are bands of rows: between 1 and {} here",
                        height.min(GRID_ZONES_MAX)
                    )
                })?,
        };
        Ok(WorldSource::Grid {
            width,
            height,
            zones,
        })
    }

    /// A generated world is a load-test world: `goto` is open to everyone there.
    pub fn is_load_test(&self) -> bool {
        matches!(self, WorldSource::Grid { .. })
    }
}

impl fmt::Display for WorldSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorldSource::Zones { dir, zones, .. } => {
                write!(f, "{} zones from {}", zones.len(), dir.display())
            }
            WorldSource::Embedded { zones, .. } => {
                write!(f, "{} zones of the embedded default world", zones.len())
            }
            WorldSource::Grid {
                width,
                height,
                zones,
            } => {
                write!(f, "a generated grid of {width}x{height} rooms")?;
                if *zones > 1 {
                    write!(f, " in {zones} zones of rows")?;
                }
                Ok(())
            }
        }
    }
}

/// Most rooms a generated world may have: ids must fit a room index, and a
/// typo such as `grid:100000x100000` should fail loudly, not swap.
pub const GRID_ROOMS_MAX: u64 = 4_000_000;

/// Game rules that are configuration rather than code.
#[derive(Clone, Debug)]
pub struct GameConfig {
    /// Whether `{"type":"guest"}` is accepted.
    pub guests: bool,
    /// Whether everyone may use `goto` (always true in a load-test world).
    pub goto_everyone: bool,
    /// Interval of the world tick on which NPCs speak; 0 turns ambient lines off.
    pub ambient_interval_ms: u64,
}

/// Every bound on input and resources (DESIGN §7). Units are in the names.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Largest client message (a frame, or a fragmented message in total): close 1009.
    pub frame_bytes_max: usize,
    /// Time from TCP accept to a successful login before the connection is closed.
    pub login_timeout_ms: u64,
    /// Silence after which the server pings a session.
    pub idle_ping_ms: u64,
    /// Unanswered pings after which the session is closed.
    pub pings_missed_max: u32,
    /// Outbound bytes queued for one connection before it is closed with 1013.
    pub outbound_bytes_max: usize,
    /// How long a closing connection may take to accept its last bytes and
    /// close frame (a cut-off slow reader, a timed-out login) before the
    /// server drops the socket without them.
    pub close_grace_ms: u64,
    /// Sustained commands per second per session.
    pub commands_per_s: u32,
    /// Commands a session may send in a burst.
    pub commands_burst: u32,
    /// Longest command line or say text, in Unicode characters.
    pub text_chars_max: usize,
    /// Sessions one shard holds before it answers new upgrades with HTTP 503.
    pub connections_per_shard_max: usize,
    /// Open TCP connections (WebSocket sessions and plain HTTP requests
    /// alike) one client address may hold on this host; one more is answered
    /// HTTP 503 `too_many_connections` at accept. Counted host-wide, not per
    /// shard (`net/per_ip.rs`: the kernel spreads one address's connections
    /// over every shard). IPv6 addresses count by their /64. Behind a
    /// reverse proxy every client has the proxy's address: raise it there.
    pub connections_per_ip_max: usize,
    /// Longest HTTP request line (`GET /path HTTP/1.1`, without its line
    /// end) before the request is answered 414 and the connection closed.
    pub http_request_line_bytes_max: usize,
    /// Most header lines in an HTTP request head; more is answered 431.
    pub http_headers_max: usize,
    /// Largest HTTP request head in all (request line, headers, the blank
    /// line); larger is answered 431. The head is buffered whole, so this is
    /// also what a connection may make the server hold before it is served.
    pub http_head_bytes_max: usize,
    /// Commands a session may have refused by the rate limit within
    /// `rate_limited_window_ms` before it is closed with 1008: a client that
    /// keeps hitting the limit is flooding, not playing.
    pub rate_limited_max: u32,
    /// The window of `rate_limited_max`: it opens at a refusal and the count
    /// starts over at the first refusal after it has passed.
    pub rate_limited_window_ms: u64,
    /// Rooms with more players than this do not announce arrivals and departures:
    /// a bound on event amplification in crowded rooms (a crowd of n would
    /// otherwise cost n² deliveries as it gathers).
    pub presence_events_players_max: usize,
    /// Names listed in a room object or a `who` reply; the total is always given.
    pub names_listed_max: usize,
    /// Messages one shard's inbox holds. Beyond it, senders park their
    /// messages in their own overflow queues (`mudshard_inbox_parked` in
    /// `/metrics`) and retry; nothing is dropped and no shard waits for
    /// another. The channel preallocates its slots (120 bytes each, so
    /// 1.9 MiB per shard at the default), while the traffic is small: a `say`
    /// to a room of 100 viewers on 2 shards is 2 messages, and a chat load
    /// of 100k deliveries/s is 1–2k messages/s per shard. 16384 holds two of
    /// the inbox task's batches (8192) and seconds of such a load.
    pub inbox_msgs_max: usize,
    /// How long a session whose connection dropped stays in the world,
    /// detached, waiting to be resumed (its body stays in its room, its
    /// frames are held in its history). 0 lets go of it at once.
    pub resume_window_ms: u64,
    /// Most frames a session keeps after they are written, for a resume to
    /// replay (kept only when `resume_window_ms` > 0).
    pub resume_frames_max: usize,
    /// Most body bytes of those frames.
    pub resume_bytes_max: usize,
}

/// How much history one session keeps. The oldest frames go first when a
/// new one would put the history over either bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryBounds {
    /// Most frames kept.
    pub frames_max: usize,
    /// Most body bytes kept (the sum of the frames' `Bytes` lengths).
    pub bytes_max: usize,
}

impl HistoryBounds {
    /// DESIGN.md §7: a resume window of 256 frames or 256 KiB.
    pub const DEFAULT: HistoryBounds = HistoryBounds {
        frames_max: 256,
        bytes_max: 256 * 1024,
    };
}

impl Default for HistoryBounds {
    fn default() -> Self {
        HistoryBounds::DEFAULT
    }
}

/// The bounds of one HTTP request head (`limits.http_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HttpHeadBounds {
    /// Longest request line, without its line end: 414 beyond it.
    pub request_line_bytes_max: usize,
    /// Most header lines: 431 beyond it.
    pub headers_max: usize,
    /// Largest head in all: 431 beyond it.
    pub head_bytes_max: usize,
}

impl Limits {
    /// The bounds a request head is read under.
    pub fn http_head_bounds(&self) -> HttpHeadBounds {
        HttpHeadBounds {
            request_line_bytes_max: self.http_request_line_bytes_max,
            headers_max: self.http_headers_max,
            head_bytes_max: self.http_head_bytes_max,
        }
    }

    /// What a session keeps of the frames it was written: nothing when
    /// sessions are not kept for resume.
    pub fn history_bounds(&self) -> HistoryBounds {
        HistoryBounds {
            frames_max: if self.resume_window_ms == 0 {
                0
            } else {
                self.resume_frames_max
            },
            bytes_max: self.resume_bytes_max,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            frame_bytes_max: 64 * 1024,
            login_timeout_ms: 10_000,
            idle_ping_ms: 30_000,
            pings_missed_max: 2,
            outbound_bytes_max: 1024 * 1024,
            close_grace_ms: 2_000,
            commands_per_s: 20,
            commands_burst: 40,
            text_chars_max: 512,
            connections_per_shard_max: 20_000,
            connections_per_ip_max: 256,
            http_request_line_bytes_max: 2048,
            http_headers_max: 32,
            http_head_bytes_max: 8 * 1024,
            rate_limited_max: 100,
            rate_limited_window_ms: 10_000,
            presence_events_players_max: 100,
            names_listed_max: 50,
            inbox_msgs_max: 16_384,
            resume_window_ms: 60_000,
            resume_frames_max: 256,
            resume_bytes_max: 256 * 1024,
        }
    }
}

/// The store of DESIGN §6: one SQLite file per host, `<data_dir>/mudshard.db`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// Write-behind interval: player and room changes reach the file within
    /// this many milliseconds, and a `kill -9` loses at most this much.
    pub flush_interval_ms: u64,
    /// Requests the store channel holds before shards park them in their
    /// overflow lists (shown in `/metrics`; never dropped).
    pub queue_max: usize,
}

impl StoreSettings {
    /// Default write-behind interval (DESIGN.md §6).
    pub const FLUSH_INTERVAL_MS_DEFAULT: u64 = 100;
    /// Default channel bound: about a second of a busy host's moves and item
    /// changes before handles start to overflow.
    pub const QUEUE_MAX_DEFAULT: usize = 16 * 1024;
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            flush_interval_ms: Self::FLUSH_INTERVAL_MS_DEFAULT,
            queue_max: Self::QUEUE_MAX_DEFAULT,
        }
    }
}

/// Accounts (DESIGN §4, §7): argon2id cost, token lifetime, login limits.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// argon2id memory cost per hash in KiB (default 19456: OWASP's minimum).
    /// Tests use 64, the cheapest argon2 allows.
    pub argon2_memory_kib: u32,
    /// argon2id passes over the memory (default 2).
    pub argon2_iterations: u32,
    /// Hash and verify jobs that may wait for the hasher thread; beyond it a
    /// login or registration is answered `busy` at once.
    pub hasher_queue_max: usize,
    /// Lifetime of the tokens in `welcome` and the HTTP API's answers.
    pub token_ttl_s: u64,
    /// Failed login/register attempts allowed per name and per address…
    pub login_failures_max: usize,
    /// …inside this sliding window.
    pub login_window_s: u64,
}

impl Default for AuthSettings {
    /// argon2id at OWASP's recommended minimum (19 MiB of memory, 2 passes):
    /// tens of milliseconds per hash in a release build, a cost an
    /// interactive login does not notice and an offline guesser does; 64 jobs
    /// queued (a few seconds of work at most); 5 failures a minute (DESIGN §7).
    fn default() -> Self {
        AuthSettings {
            argon2_memory_kib: 19 * 1024,
            argon2_iterations: 2,
            hasher_queue_max: 64,
            token_ttl_s: 7 * 24 * 3600,
            login_failures_max: 5,
            login_window_s: 60,
        }
    }
}

/// How the shards' glommio executors run: mudshard's patches to glommio
/// (vendor/glommio/MUDSHARD-PATCH.md, each measured there), each with a
/// switch back to upstream's behaviour for A/B measurements. Applied once,
/// process-wide, before the first shard starts.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Set the io_uring rings up with `IORING_SETUP_COOP_TASKRUN` (Linux
    /// 5.19+; older kernels fall back without it). Without it, a completion
    /// for a running shard (a socket becoming readable) interrupts that
    /// shard's thread with an IPI that the sender pays for; with it, the
    /// completion waits for the thread's next system call, which a busy
    /// executor makes constantly. False only to measure the difference.
    pub coop_taskrun: bool,
    /// Arm glommio's two preemption timers on every executor loop, as
    /// upstream does. They share a core among task queues; a shard has one,
    /// so they cost five submissions and a kernel timer per loop for nothing
    /// (skipping them cut server CPU per reply by 17%). True only to measure
    /// the difference.
    pub preempt_timers: bool,
    /// Call `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)` before an executor
    /// sleeps, as upstream does, instead of a pair of fences. The system call
    /// interrupts every CPU running a thread of the process (a VM exit each
    /// on a virtual machine), thousands of times a second under load. True
    /// only to measure the difference.
    pub membarrier_syscall: bool,
    /// Wake a shard for a cross-shard message with a byte on a socket pair
    /// every time, as mudshard did before (`shard/mailbox.rs`), instead of
    /// waking its inbox task and the executor's eventfd only when it sleeps.
    /// True only to measure the difference.
    pub socket_doorbell: bool,
    /// How long a shard with nothing to run keeps polling (its sockets, its
    /// timers, wakes from other shards) before it sleeps in the kernel, in
    /// µs; glommio's `spin_before_park`. 0: sleep at once.
    pub spin_before_park_us: u64,
    /// After how long without a read (ms) a session's reads park on its
    /// shard's `epoll` instance, giving back the poll request (a 320-byte
    /// source) it holds on the ring while it waits (`net/readiness.rs`).
    /// 0: never, as mudshard did before; for A/B measurements.
    pub park_reads_after_ms: u64,
}

impl Default for RuntimeSettings {
    /// mudshard's patched behaviour: every switch on the measured-faster side.
    fn default() -> Self {
        RuntimeSettings {
            coop_taskrun: true,
            preempt_timers: false,
            membarrier_syscall: false,
            socket_doorbell: false,
            spin_before_park_us: 0,
            park_reads_after_ms: 1_000,
        }
    }
}

/// The shard map as it is written in TOML. Every field is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ShardMap {
    server: ServerSection,
    world: WorldSection,
    game: GameSection,
    limits: Limits,
    store: StoreSettings,
    auth: AuthSettings,
    runtime: RuntimeSettings,
    cluster: ClusterSettings,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ServerSection {
    host_id: String,
    listen: String,
    shards: usize,
    cores: Vec<usize>,
    data_dir: String,
    redis: Option<String>,
    allowed_origins: Vec<String>,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            host_id: "a".into(),
            listen: "127.0.0.1:4000".into(),
            shards: 0,
            cores: Vec::new(),
            data_dir: "./data".into(),
            redis: None,
            allowed_origins: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct WorldSection {
    /// Folder of zone files, relative to the shard map file. Left out: the
    /// `world/` folder beside the map, or the embedded world when there is none.
    dir: Option<String>,
    zones: Vec<String>,
    start: String,
    /// `grid:WxH` to generate the world instead of loading zones.
    generated: Option<String>,
}

impl Default for WorldSection {
    fn default() -> Self {
        WorldSection {
            dir: None,
            zones: Vec::new(),
            start: "town:square".into(),
            generated: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct GameSection {
    guests: bool,
    goto_everyone: bool,
    ambient_interval_ms: u64,
}

impl Default for GameSection {
    fn default() -> Self {
        GameSection {
            guests: true,
            goto_everyone: false,
            ambient_interval_ms: 20_000,
        }
    }
}

/// A shard map's text and where it came from, kept together so every
/// problem found in it can be pointed at by line.
pub struct ShardMapText {
    pub origin: MapOrigin,
    pub text: String,
}

impl ShardMapText {
    /// The shard map to serve: `explicit` (`--config`) if given, else
    /// `shards/default.toml` in the working directory if there is one, else
    /// the embedded default.
    pub fn locate(explicit: Option<&Path>) -> Result<ShardMapText, String> {
        if let Some(path) = explicit {
            return ShardMapText::read(path);
        }
        let local = Path::new(WORKING_DIR_SHARD_MAP);
        if local.is_file() {
            return ShardMapText::read(local);
        }
        Ok(ShardMapText::embedded())
    }

    /// The embedded default shard map.
    pub fn embedded() -> ShardMapText {
        ShardMapText {
            origin: MapOrigin::Embedded,
            text: EMBEDDED_SHARD_MAP.to_string(),
        }
    }

    /// Reads a shard map file.
    pub fn read(path: &Path) -> Result<ShardMapText, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read shard map {}: {e}", path.display()))?;
        Ok(ShardMapText {
            origin: MapOrigin::File(path.to_path_buf()),
            text,
        })
    }

    /// Parses the map into a configuration and lists every problem of its
    /// values (`Config::problems`), each located by [`ShardMapText::locate_problem`].
    /// `Err`: the TOML itself is wrong (syntax, an unknown key, a wrong
    /// type), as `FILE:LINE: message`.
    pub fn parse(&self) -> Result<(Config, Vec<Problem>), String> {
        let map: ShardMap = toml::from_str(&self.text).map_err(|e| {
            let line = e.span().map(|s| line_of_offset(&self.text, s.start));
            self.at(line, e.message().trim_end())
        })?;
        let (mut config, mut problems) = match self.config_of(map) {
            Ok(config) => (config, Vec::new()),
            Err(problem) => return Ok((Config::placeholder(), vec![problem])),
        };
        problems.extend(config.resolve());
        Ok((config, problems))
    }

    /// `FILE:LINE: message` for a problem (`FILE: message` when its key is
    /// not written in the map, e.g. a value set by a flag).
    pub fn locate_problem(&self, problem: &Problem) -> String {
        self.at(self.line_of(&problem.key), &problem.message)
    }

    /// `FILE:LINE: message`, or `FILE: message` without a line.
    pub fn at(&self, line: Option<usize>, message: &str) -> String {
        match line {
            Some(line) => format!("{}:{line}: {message}", self.origin.file_name()),
            None => format!("{}: {message}", self.origin.file_name()),
        }
    }

    /// The 1-based line of a dotted key (`limits.inbox_msgs_max`,
    /// `server.cores.1` for an array element), if the map writes it; a key
    /// not written falls back to the line of its nearest written parent.
    pub fn line_of(&self, key: &str) -> Option<usize> {
        let doc = toml_edit::ImDocument::parse(self.text.as_str()).ok()?;
        let mut item = doc.as_item();
        let mut span = None;
        for part in key.split('.').filter(|p| !p.is_empty()) {
            let next = match part.parse::<usize>() {
                Ok(i) => item
                    .as_array()
                    .and_then(|a| a.get(i))
                    .map(|v| (v.span(), None)),
                Err(_) => item.as_table_like().and_then(|t| {
                    t.get_key_value(part)
                        .map(|(k, v)| (k.span().or_else(|| v.span()), Some(v)))
                }),
            };
            let Some((here, value)) = next else { break };
            span = here.or(span);
            match value {
                Some(v) => item = v,
                None => break,
            }
        }
        span.map(|s| line_of_offset(&self.text, s.start))
    }

    /// The base folder of relative paths in the map (the world folder).
    fn base(&self) -> PathBuf {
        match &self.origin {
            MapOrigin::File(path) => path
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .to_path_buf(),
            MapOrigin::Embedded => PathBuf::from("."),
        }
    }

    fn config_of(&self, map: ShardMap) -> Result<Config, Problem> {
        let listen = map.server.listen.parse().map_err(|_| {
            Problem::new(
                "server.listen",
                format!(
                    "server.listen {:?} is not an address like 127.0.0.1:4000",
                    map.server.listen
                ),
            )
        })?;
        let world = match map.world.generated {
            Some(spec) => WorldSource::parse_generated(&spec)
                .map_err(|e| Problem::new("world.generated", e))?,
            None => self.zone_source(map.world.dir, map.world.zones, map.world.start),
        };
        Ok(Config {
            host_id: map.server.host_id,
            listen,
            shards: map.server.shards,
            cores: map.server.cores,
            data_dir: PathBuf::from(map.server.data_dir),
            redis: map.server.redis,
            allowed_origins: map.server.allowed_origins,
            world,
            game: GameConfig {
                guests: map.game.guests,
                goto_everyone: map.game.goto_everyone,
                ambient_interval_ms: map.game.ambient_interval_ms,
            },
            limits: map.limits,
            store: map.store,
            auth: map.auth,
            runtime: map.runtime,
            cluster: map.cluster,
            log_json: false,
            origin: self.origin.clone(),
        })
    }

    /// The zone files a map names: the embedded map's are the embedded
    /// world's; a file's are its `world.dir`, or the `world/` folder beside
    /// it, or (with neither) the embedded world's.
    fn zone_source(&self, dir: Option<String>, zones: Vec<String>, start: String) -> WorldSource {
        if self.origin == MapOrigin::Embedded {
            return WorldSource::Embedded { zones, start };
        }
        let base = self.base();
        match dir {
            Some(dir) => WorldSource::Zones {
                dir: base.join(dir),
                zones,
                start,
            },
            None if base.join(DEFAULT_WORLD_DIR).is_dir() => WorldSource::Zones {
                dir: base.join(DEFAULT_WORLD_DIR),
                zones,
                start,
            },
            None => WorldSource::Embedded { zones, start },
        }
    }
}

/// The zone folder beside a shard map when `world.dir` is left out.
const DEFAULT_WORLD_DIR: &str = "world";

/// One thing wrong with a configuration: the shard map key it is about (a
/// dotted path such as `limits.inbox_msgs_max`, or `server.cores.1` for an
/// array element, used to find its line) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Converts a byte offset of `text` into a 1-based line; offsets past the
/// end are clamped (they come from a parser's span).
fn line_of_offset(text: &str, offset: usize) -> usize {
    1 + text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

impl Config {
    /// Reads a shard map file and checks it: `Err` names the file and, where
    /// it can, the line of the first problem.
    pub fn from_file(path: &Path) -> Result<Config, String> {
        ShardMapText::read(path)?.config()
    }

    /// A configuration with every default and no source, standing in when
    /// a map's values could not be read; never served.
    fn placeholder() -> Config {
        Config {
            host_id: String::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            shards: 1,
            cores: Vec::new(),
            data_dir: PathBuf::new(),
            redis: None,
            allowed_origins: Vec::new(),
            world: WorldSource::Embedded {
                zones: Vec::new(),
                start: String::new(),
            },
            game: GameConfig {
                guests: true,
                goto_everyone: false,
                ambient_interval_ms: 0,
            },
            limits: Limits::default(),
            store: StoreSettings::default(),
            auth: AuthSettings::default(),
            runtime: RuntimeSettings::default(),
            cluster: ClusterSettings::default(),
            log_json: false,
            origin: MapOrigin::Embedded,
        }
    }
}

impl ShardMapText {
    /// The configuration, or the first problem as `FILE:LINE: message`.
    pub fn config(&self) -> Result<Config, String> {
        let (config, problems) = self.parse()?;
        match problems.first() {
            Some(problem) => Err(self.locate_problem(problem)),
            None => Ok(config),
        }
    }
}

impl Config {
    /// Resolves defaults that depend on the machine and checks the whole;
    /// `Err` is the first problem found.
    pub fn normalize(&mut self) -> Result<(), String> {
        match self.resolve().into_iter().next() {
            Some(problem) => Err(problem.message),
            None => Ok(()),
        }
    }

    /// Resolves defaults that depend on the machine (shards per online core)
    /// and returns every problem of the whole, each with its shard map key.
    pub fn resolve(&mut self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !self.cores.is_empty() && self.shards == 0 {
            self.shards = self.cores.len();
        }
        if self.shards == 0 {
            self.shards = std::thread::available_parallelism().map_or(1, |n| n.get());
        }
        if self.shards > SHARDS_MAX {
            problems.push(Problem::new(
                "server.shards",
                format!("{} shards requested; at most {SHARDS_MAX}", self.shards),
            ));
        }
        if !self.cores.is_empty() && self.cores.len() != self.shards {
            problems.push(Problem::new(
                "server.cores",
                format!(
                    "{} cores listed for {} shards: list one core per shard",
                    self.cores.len(),
                    self.shards
                ),
            ));
        }
        problems.extend(cores_problems(&self.cores, &online_cores()));
        if self.world.is_load_test() {
            self.game.goto_everyone = true;
        }
        for origin in &mut self.allowed_origins {
            let key = origin_key(origin);
            let Some((scheme, authority)) = key.split_once("://") else {
                problems.push(Problem::new(
                    "server.allowed_origins",
                    format!(
                        "allowed_origins: {origin:?} is not an origin like https://example.org"
                    ),
                ));
                continue;
            };
            if scheme.is_empty() || authority.is_empty() || authority.contains('/') {
                problems.push(Problem::new(
                    "server.allowed_origins",
                    format!(
                        "allowed_origins: {origin:?} is not an origin like https://example.org (no path)"
                    ),
                ));
                continue;
            }
            *origin = key;
        }
        problems.extend(self.limits.problems());
        if self.store.flush_interval_ms == 0 || self.store.queue_max == 0 {
            problems.push(Problem::new(
                "store",
                "store: flush_interval_ms > 0 and queue_max > 0 are required",
            ));
        }
        if self.store.flush_interval_ms > FLUSH_INTERVAL_MS_MAX {
            problems.push(Problem::new(
                "store.flush_interval_ms",
                format!("store: flush_interval_ms is at most {FLUSH_INTERVAL_MS_MAX} (a kill -9 loses up to one interval)"),
            ));
        }
        let a = &self.auth;
        if a.hasher_queue_max == 0
            || a.token_ttl_s == 0
            || a.login_failures_max == 0
            || a.login_window_s == 0
        {
            problems.push(Problem::new(
                "auth",
                "auth: hasher_queue_max, token_ttl_s, login_failures_max and login_window_s must be > 0",
            ));
        }
        if a.argon2_memory_kib < ARGON2_MEMORY_KIB_MIN || a.argon2_iterations == 0 {
            problems.push(Problem::new(
                "auth.argon2_memory_kib",
                format!("auth: argon2_memory_kib is at least {ARGON2_MEMORY_KIB_MIN} and argon2_iterations at least 1"),
            ));
        }
        problems
    }
}

/// The hosts of a cluster and the zones each owns, with the bridge's bounds
/// (`[cluster]`, DESIGN §1 "Cross-host"). Every host's map lists every host
/// in the same order, so any host can tell which host owns a room without
/// asking anyone: a host's index in `hosts` is its number on the wire.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSettings {
    pub hosts: Vec<HostSpec>,
    /// How often a host refreshes its heartbeat key in Redis.
    pub heartbeat_ms: u64,
    /// A host whose heartbeat key is older than this has died: the key
    /// expires and the other hosts let its players go.
    pub host_ttl_ms: u64,
    /// Messages waiting for the publisher thread. When Redis is away and
    /// this fills, further messages are dropped and counted (saves of
    /// players whose home is another host never are: they wait on their
    /// shard until they can go, `Router::flush_saves`).
    pub bridge_queue_max: usize,
    /// How long a command that needs another host waits for its answer
    /// before it is answered `unreachable`.
    pub remote_timeout_ms: u64,
    /// How often the bridge sends a probe to its own inbox; a subscriber
    /// that misses three in a row is wedged and is reconnected.
    pub probe_interval_ms: u64,
    /// The secret that signs login tokens, the same on every host so that a
    /// token from one host logs in on any (`MUDSHARD_TOKEN_SECRET`); at
    /// least 16 bytes. Required with more than one host; a host alone uses
    /// the random secret kept in its SQLite file.
    pub token_secret: Option<String>,
}

/// One host of the cluster: its id (`server.host_id` of its own map) and the
/// zones whose rooms it owns.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    pub id: String,
    pub zones: Vec<String>,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            hosts: Vec::new(),
            heartbeat_ms: 1000,
            host_ttl_ms: 5000,
            bridge_queue_max: 65_536,
            remote_timeout_ms: 2000,
            probe_interval_ms: 1000,
            token_secret: None,
        }
    }
}

/// Shortest `cluster.token_secret`: an HMAC key shorter than this is
/// guessable.
pub const TOKEN_SECRET_BYTES_MIN: usize = 16;

/// Hosts a cluster may have: host numbers travel in 8 bits of a session id.
pub const CLUSTER_HOSTS_MAX: usize = 64;
/// Longest host id: it names Redis channels and keys.
pub const HOST_ID_CHARS_MAX: usize = 32;

impl Config {
    /// This host's number in the cluster (0 when it runs alone).
    pub fn host_index(&self) -> u16 {
        self.cluster
            .hosts
            .iter()
            .position(|h| h.id == self.host_id)
            .map_or(0, |i| i as u16)
    }

    /// Whether this host bridges to others.
    pub fn is_cluster(&self) -> bool {
        self.redis.is_some()
    }

    /// The number of the host that owns `zone`: this host when it runs
    /// alone; `None` for a zone no host lists (refused at start-up).
    pub fn zone_owner(&self, zone: &str) -> Option<u16> {
        if !self.is_cluster() {
            return Some(0);
        }
        self.cluster
            .hosts
            .iter()
            .position(|h| h.zones.iter().any(|z| z == zone))
            .map(|i| i as u16)
    }

    /// Checks the cluster table against the host id and the world: every
    /// zone owned exactly once, this host among the hosts. Run by the
    /// server as it starts, once flags (`--redis`, `--host-id`) are applied.
    pub fn check_cluster(&self) -> Result<(), String> {
        let c = &self.cluster;
        if !is_host_id(&self.host_id) {
            return Err(format!(
                "server.host_id {:?}: 1 to {HOST_ID_CHARS_MAX} characters of a-z, 0-9, - and _",
                self.host_id
            ));
        }
        if self.redis.is_none() {
            if c.hosts.len() > 1 {
                return Err(format!(
                    "cluster: {} hosts are listed but server.redis is not set: hosts talk through Redis (set redis or --redis URL)",
                    c.hosts.len()
                ));
            }
            return Ok(());
        }
        if c.hosts.is_empty() {
            return Err("cluster: redis is set but [cluster] hosts is empty: list every host and the zones it owns".into());
        }
        if c.hosts.len() > CLUSTER_HOSTS_MAX {
            return Err(format!(
                "cluster: {} hosts listed; at most {CLUSTER_HOSTS_MAX}",
                c.hosts.len()
            ));
        }
        if c.heartbeat_ms == 0
            || c.host_ttl_ms <= c.heartbeat_ms
            || c.bridge_queue_max == 0
            || c.remote_timeout_ms == 0
            || c.probe_interval_ms == 0
        {
            return Err("cluster: heartbeat_ms, bridge_queue_max, remote_timeout_ms and probe_interval_ms must be > 0, and host_ttl_ms > heartbeat_ms".into());
        }
        let mut owner: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
        for (i, host) in c.hosts.iter().enumerate() {
            if !is_host_id(&host.id) {
                return Err(format!(
                    "cluster: host id {:?}: 1 to {HOST_ID_CHARS_MAX} characters of a-z, 0-9, - and _",
                    host.id
                ));
            }
            if c.hosts[..i].iter().any(|h| h.id == host.id) {
                return Err(format!("cluster: host {:?} is listed twice", host.id));
            }
            for zone in &host.zones {
                if let Some(first) = owner.insert(zone, &host.id) {
                    return Err(format!(
                        "cluster: zone {zone:?} is claimed by two hosts, {first:?} and {:?}",
                        host.id
                    ));
                }
            }
        }
        if !c.hosts.iter().any(|h| h.id == self.host_id) {
            return Err(format!(
                "cluster: this host's id {:?} is not among the hosts listed ({})",
                self.host_id,
                c.hosts
                    .iter()
                    .map(|h| h.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let grid_zones;
        let zones: Vec<&str> = match &self.world {
            WorldSource::Zones { zones, .. } | WorldSource::Embedded { zones, .. } => {
                zones.iter().map(String::as_str).collect()
            }
            WorldSource::Grid { zones, .. } => {
                grid_zones = grid_zone_ids(*zones);
                grid_zones.iter().map(String::as_str).collect()
            }
        };
        for zone in &zones {
            if !owner.contains_key(zone) {
                return Err(format!(
                    "cluster: zone {zone:?} is owned by no host: list it under one host's zones"
                ));
            }
        }
        for zone in owner.keys() {
            if !zones.contains(zone) {
                return Err(format!(
                    "cluster: zone {zone:?} is owned by a host but is not in the world's zones"
                ));
            }
        }
        match &c.token_secret {
            Some(secret) if secret.len() < TOKEN_SECRET_BYTES_MIN => {
                return Err(format!(
                    "cluster: token_secret must have at least {TOKEN_SECRET_BYTES_MIN} bytes"
                ))
            }
            None if c.hosts.len() > 1 => {
                return Err("cluster: token_secret is not set: give every host the same secret (cluster.token_secret or MUDSHARD_TOKEN_SECRET), so a token from one host logs in on any".into())
            }
            _ => {}
        }
        Ok(())
    }
}

/// The zone id of every room of a generated grid that is one zone, and the
/// prefix of every room id of a generated grid.
pub const GRID_ZONE: &str = "grid";

/// The most zones a generated grid may be cut into.
pub const GRID_ZONES_MAX: u32 = 64;

/// The ids of the zones of a generated grid cut into `zones` bands of rows:
/// `grid` for one, else `grid-0` … `grid-{zones-1}`.
pub fn grid_zone_ids(zones: u32) -> Vec<String> {
    if zones <= 1 {
        return vec![GRID_ZONE.to_string()];
    }
    (0..zones).map(|k| format!("{GRID_ZONE}-{k}")).collect()
}

/// Host ids name Redis channels and keys: short, and nothing to escape.
fn is_host_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= HOST_ID_CHARS_MAX
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

impl Limits {
    /// Every bound out of its range, each with its key. A zero where a
    /// positive bound is needed would refuse everything (or divide by it); an
    /// upper end guards a typo that would let one client hold gigabytes.
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut need = |ok: bool, key: &str, message: String| {
            if !ok {
                problems.push(Problem::new(format!("limits.{key}"), message));
            }
        };
        let l = self;
        let basic = l.frame_bytes_max >= 1024 && l.commands_per_s > 0 && l.text_chars_max > 0;
        let basic_key = if l.frame_bytes_max < 1024 {
            "frame_bytes_max"
        } else if l.commands_per_s == 0 {
            "commands_per_s"
        } else {
            "text_chars_max"
        };
        need(basic, basic_key, "limits: frame_bytes_max >= 1024, commands_per_s > 0 and text_chars_max > 0 are required".into());
        need(
            l.frame_bytes_max <= FRAME_BYTES_MAX,
            "frame_bytes_max",
            format!("limits: frame_bytes_max is at most {FRAME_BYTES_MAX}"),
        );
        need(
            l.inbox_msgs_max > 0,
            "inbox_msgs_max",
            "limits: inbox_msgs_max > 0 is required".into(),
        );
        need(
            l.resume_window_ms <= RESUME_WINDOW_MS_MAX,
            "resume_window_ms",
            format!("limits: resume_window_ms is at most {RESUME_WINDOW_MS_MAX} and resume_bytes_max at most {RESUME_BYTES_MAX}"),
        );
        need(
            l.resume_bytes_max <= RESUME_BYTES_MAX,
            "resume_bytes_max",
            format!("limits: resume_window_ms is at most {RESUME_WINDOW_MS_MAX} and resume_bytes_max at most {RESUME_BYTES_MAX}"),
        );
        need(
            l.connections_per_ip_max > 0,
            "connections_per_ip_max",
            "limits: connections_per_ip_max > 0 is required".into(),
        );
        let line_ok = l.http_request_line_bytes_max >= HTTP_REQUEST_LINE_BYTES_MIN
            && l.http_request_line_bytes_max <= l.http_head_bytes_max;
        let head_message = format!("limits: http_request_line_bytes_max is at least {HTTP_REQUEST_LINE_BYTES_MIN} and at most http_head_bytes_max, which is at most {HTTP_HEAD_BYTES_MAX}");
        need(line_ok, "http_request_line_bytes_max", head_message.clone());
        need(
            l.http_head_bytes_max <= HTTP_HEAD_BYTES_MAX,
            "http_head_bytes_max",
            head_message,
        );
        need(
            (HTTP_HEADERS_MIN..=HTTP_HEADERS_MAX).contains(&l.http_headers_max),
            "http_headers_max",
            format!(
                "limits: http_headers_max is between {HTTP_HEADERS_MIN} and {HTTP_HEADERS_MAX}"
            ),
        );
        need(
            l.rate_limited_max > 0,
            "rate_limited_max",
            "limits: rate_limited_max > 0 and rate_limited_window_ms > 0 are required".into(),
        );
        need(
            l.rate_limited_window_ms > 0,
            "rate_limited_window_ms",
            "limits: rate_limited_max > 0 and rate_limited_window_ms > 0 are required".into(),
        );
        for (key, value) in [
            ("login_timeout_ms", l.login_timeout_ms),
            ("idle_ping_ms", l.idle_ping_ms),
            ("close_grace_ms", l.close_grace_ms),
        ] {
            need(
                (TIMEOUT_MS_MIN..=TIMEOUT_MS_MAX).contains(&value),
                key,
                format!(
                    "limits: {key} is between {TIMEOUT_MS_MIN} and {TIMEOUT_MS_MAX}; it is {value}"
                ),
            );
        }
        for (key, value) in [
            ("pings_missed_max", l.pings_missed_max as usize),
            ("commands_burst", l.commands_burst as usize),
            ("connections_per_shard_max", l.connections_per_shard_max),
            ("names_listed_max", l.names_listed_max),
        ] {
            need(value > 0, key, format!("limits: {key} > 0 is required"));
        }
        need(
            l.outbound_bytes_max >= OUTBOUND_BYTES_MIN,
            "outbound_bytes_max",
            format!("limits: outbound_bytes_max is at least {OUTBOUND_BYTES_MIN}: a room reply must fit"),
        );
        problems
    }
}

/// The cores this machine has online (`/sys/devices/system/cpu/online`, a
/// list like `0-3,6`); when that cannot be read, `0..available_parallelism`.
pub fn online_cores() -> Vec<usize> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|list| parse_cpu_list(&list))
        .unwrap_or_else(|| {
            (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect()
        })
}

/// Parses a kernel CPU list (`0-3,6,8-9`); `None` if it is malformed.
pub fn parse_cpu_list(list: &str) -> Option<Vec<usize>> {
    let mut cores = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                if b < a || b - a > CORES_LISTED_MAX {
                    return None;
                }
                cores.extend(a..=b);
            }
            None => cores.push(part.parse().ok()?),
        }
    }
    Some(cores)
}

/// `--cores`: each core must be online, and listed once (two shards on one
/// core would take turns on it, each thinking it has the core to itself).
pub fn cores_problems(cores: &[usize], online: &[usize]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (k, core) in cores.iter().enumerate() {
        let key = format!("server.cores.{k}");
        if let Some(first) = cores[..k].iter().position(|c| c == core) {
            problems.push(Problem::new(
                key,
                format!("core {core} is listed twice (for shards {first} and {k}); give each shard its own core"),
            ));
        } else if !online.contains(core) {
            problems.push(Problem::new(
                key,
                format!(
                    "core {core} (for shard {k}) is not an online core of this machine (online: {})",
                    cpu_list(online)
                ),
            ));
        }
    }
    problems
}

/// Writes cores as the kernel does: `0-3,6`.
pub fn cpu_list(cores: &[usize]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < cores.len() {
        let mut j = i;
        while j + 1 < cores.len() && cores[j + 1] == cores[j] + 1 {
            j += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if j > i {
            out.push_str(&format!("{}-{}", cores[i], cores[j]));
        } else {
            out.push_str(&cores[i].to_string());
        }
        i = j + 1;
    }
    out
}

/// Longest range in a CPU list read from the kernel: more CPUs than any
/// machine has means the text is not what it seems.
const CORES_LISTED_MAX: usize = 65_536;

/// Largest `frame_bytes_max`: a client message is buffered whole.
pub const FRAME_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Smallest `outbound_bytes_max`: a `look` in a full room must fit.
pub const OUTBOUND_BYTES_MIN: usize = 4096;
/// Range of the timeouts in `[limits]` (login, ping, close grace), in ms.
pub const TIMEOUT_MS_MIN: u64 = 100;
pub const TIMEOUT_MS_MAX: u64 = 3_600_000;
/// Longest write-behind interval: a `kill -9` loses up to one.
pub const FLUSH_INTERVAL_MS_MAX: u64 = 60_000;
/// argon2's own minimum memory cost (8 KiB per lane, one lane).
pub const ARGON2_MEMORY_KIB_MIN: u32 = 8;

/// Shard ids travel in 8 bits of a session id.
pub const SHARDS_MAX: usize = 64;

/// Longest resume window: a detached session holds its body in the world
/// and its frames in memory, so an hour is already generous.
pub const RESUME_WINDOW_MS_MAX: u64 = 3_600_000;
/// Most history bytes per session: with thousands of sessions per shard,
/// more would let resume buffers crowd out everything else.
pub const RESUME_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Shortest `http_request_line_bytes_max`: room for any route of the one
/// port with a query string (`GET /api/register HTTP/1.1` is 26 bytes).
pub const HTTP_REQUEST_LINE_BYTES_MIN: usize = 64;
/// Largest `http_head_bytes_max`: each connection reading its head buffers
/// it whole, and no browser needs more.
pub const HTTP_HEAD_BYTES_MAX: usize = 64 * 1024;
/// Fewest `http_headers_max`: a WebSocket upgrade carries five (Host,
/// Upgrade, Connection, Sec-WebSocket-Key and -Version), a browser a few more.
pub const HTTP_HEADERS_MIN: usize = 8;
/// Most `http_headers_max`: the parser's table of headers is an array on
/// the stack of this length.
pub const HTTP_HEADERS_MAX: usize = 128;

impl Config {
    /// Whether a WebSocket upgrade with this `Origin` header may proceed.
    pub fn allows_origin(&self, origin: Option<&str>) -> bool {
        if self.allowed_origins.is_empty() {
            return true;
        }
        // Browsers always send one on a WebSocket upgrade; a request without
        // one comes from a program, which could send any origin it liked.
        let Some(origin) = origin else {
            return true;
        };
        let key = origin_key(origin);
        self.allowed_origins.contains(&key)
    }
}

/// The form origins are compared in: scheme and host are case-insensitive
/// (the port is digits, so the whole is lower-cased), and a trailing slash,
/// which a hand-written list may carry but no browser sends, is dropped.
pub fn origin_key(origin: &str) -> String {
    let origin = origin.trim();
    origin
        .strip_suffix('/')
        .unwrap_or(origin)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_shard_map_loads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("shards/default.toml");
        let config = Config::from_file(&path).expect("default shard map");
        assert_eq!(config.listen.port(), 4000);
        assert!(config.shards >= 1);
        match &config.world {
            WorldSource::Zones { zones, start, .. } => {
                assert!(!zones.is_empty());
                assert_eq!(start, "town:square");
            }
            other => panic!("unexpected world {other:?}"),
        }
    }

    #[test]
    fn a_bad_field_names_the_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("map.toml");
        std::fs::write(&path, "[server]\nlisten = \"127.0.0.1:1\"\nshardz = 2\n").expect("write");
        let err = Config::from_file(&path).expect_err("unknown field");
        assert!(err.contains("map.toml:3"), "{err}");
    }

    #[test]
    fn grid_specs_parse_and_bad_ones_say_why() {
        assert_eq!(
            WorldSource::parse_generated("grid:100x50"),
            Ok(WorldSource::Grid {
                width: 100,
                height: 50,
                zones: 1
            })
        );
        assert_eq!(
            WorldSource::parse_generated("grid:100x50/2"),
            Ok(WorldSource::Grid {
                width: 100,
                height: 50,
                zones: 2
            })
        );
        for bad in ["grid:10x4/5", "grid:10x4/0", "grid:10x4/x", "grid:10x4/"] {
            let err = WorldSource::parse_generated(bad).expect_err(bad);
            assert!(err.contains("bands of rows"), "{bad}: {err}");
        }
        assert!(WorldSource::parse_generated("grid:0x5").is_err());
        assert!(WorldSource::parse_generated("maze:3x3").is_err());
    }

    #[test]
    fn the_hosts_of_a_cluster_can_share_out_a_grid_cut_into_zones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("map.toml");
        let map = |owned_by_b: &str| {
            format!(
                "[server]\nlisten = \"127.0.0.1:1\"\nhost_id = \"a\"\nredis = \"redis://127.0.0.1:1\"\n\
                 [world]\ngenerated = \"grid:10x10/2\"\n\
                 [cluster]\nhosts = [{{ id = \"a\", zones = [\"grid-0\"] }}, {{ id = \"b\", zones = [{owned_by_b}] }}]\n\
                 token_secret = \"a secret of sixteen bytes or more\"\n"
            )
        };
        let check = |owned_by_b: &str| {
            std::fs::write(&path, map(owned_by_b)).expect("write");
            Config::from_file(&path)
                .expect("the map reads")
                .check_cluster()
        };
        assert_eq!(check("\"grid-1\""), Ok(()));
        let err = check("").expect_err("a band owned by nobody");
        assert!(err.contains("zone \"grid-1\" is owned by no host"), "{err}");
        let err = check("\"grid-1\", \"grid\"").expect_err("the uncut grid's zone");
        assert!(
            err.contains("zone \"grid\" is owned by a host but is not in the world's zones"),
            "{err}"
        );
    }

    #[test]
    fn allowed_origins_match_case_insensitively_and_ignore_a_trailing_slash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("map.toml");
        std::fs::write(
            &path,
            "[server]\nallowed_origins = [\"HTTPS://Example.org/\", \"http://localhost:8080\"]\n",
        )
        .expect("write");
        let config = Config::from_file(&path).expect("shard map");
        assert_eq!(
            config.allowed_origins,
            ["https://example.org", "http://localhost:8080"]
        );
        assert!(config.allows_origin(Some("https://example.org")));
        assert!(config.allows_origin(Some("https://EXAMPLE.org")));
        assert!(config.allows_origin(Some("http://localhost:8080")));
        assert!(config.allows_origin(None));
        assert!(!config.allows_origin(Some("http://example.org")));
        assert!(!config.allows_origin(Some("https://example.org:8443")));
        assert!(!config.allows_origin(Some("https://evil.example")));
        assert!(!config.allows_origin(Some("null")));
    }

    #[test]
    fn no_allowed_origins_lets_every_origin_in() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("shards/default.toml");
        let config = Config::from_file(&path).expect("default shard map");
        assert!(config.allowed_origins.is_empty());
        assert!(config.allows_origin(Some("https://evil.example")));
        assert!(config.allows_origin(None));
    }

    #[test]
    fn an_allowed_origin_with_a_path_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("map.toml");
        std::fs::write(
            &path,
            "[server]\nallowed_origins = [\"https://example.org/game\"]\n",
        )
        .expect("write");
        let err = Config::from_file(&path).expect_err("a path in an origin");
        assert!(err.contains("allowed_origins"), "{err}");
    }

    #[test]
    fn an_inbox_of_no_messages_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("map.toml");
        std::fs::write(&path, "[limits]\ninbox_msgs_max = 0\n").expect("write");
        let err = Config::from_file(&path).expect_err("a zero bound");
        assert!(err.contains("inbox_msgs_max"), "{err}");
    }

    #[test]
    fn abuse_bounds_that_make_no_sense_are_refused_by_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("map.toml");
        for (limits, named) in [
            (
                "http_request_line_bytes_max = 16",
                "http_request_line_bytes_max",
            ),
            (
                "http_request_line_bytes_max = 4096\nhttp_head_bytes_max = 2048",
                "http_request_line_bytes_max",
            ),
            ("http_head_bytes_max = 1048576", "http_head_bytes_max"),
            ("http_headers_max = 2", "http_headers_max"),
            ("http_headers_max = 1000", "http_headers_max"),
            ("connections_per_ip_max = 0", "connections_per_ip_max"),
            ("rate_limited_max = 0", "rate_limited_max"),
            ("rate_limited_window_ms = 0", "rate_limited_window_ms"),
        ] {
            std::fs::write(&path, format!("[limits]\n{limits}\n")).expect("write");
            let err = Config::from_file(&path).expect_err(limits);
            assert!(err.contains(named), "{limits}: {err}");
        }
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("shards/default.toml");
        let config = Config::from_file(&path).expect("default shard map");
        assert_eq!(
            config.limits.http_head_bounds(),
            HttpHeadBounds {
                request_line_bytes_max: 2048,
                headers_max: 32,
                head_bytes_max: 8192,
            }
        );
        assert_eq!(config.limits.connections_per_ip_max, 256);
        assert_eq!(
            (
                config.limits.rate_limited_max,
                config.limits.rate_limited_window_ms
            ),
            (100, 10_000)
        );
    }

    #[test]
    fn runtime_switches_default_to_the_patched_glommio() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("map.toml");
        std::fs::write(&path, "[server]\nhost_id = \"a\"\n").expect("write");
        let config = Config::from_file(&path).expect("a map without [runtime]");
        assert_eq!(config.runtime, RuntimeSettings::default());
        assert!(config.runtime.coop_taskrun);
        assert!(!config.runtime.preempt_timers);
        assert!(!config.runtime.membarrier_syscall);
    }

    #[test]
    fn runtime_switches_are_read_from_the_shard_map() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("map.toml");
        std::fs::write(
            &path,
            "[runtime]\ncoop_taskrun = false\npreempt_timers = true\nmembarrier_syscall = true\n\
             socket_doorbell = true\nspin_before_park_us = 50\npark_reads_after_ms = 0\n",
        )
        .expect("write");
        let config = Config::from_file(&path).expect("a [runtime] section");
        assert_eq!(
            config.runtime,
            RuntimeSettings {
                coop_taskrun: false,
                preempt_timers: true,
                membarrier_syscall: true,
                socket_doorbell: true,
                spin_before_park_us: 50,
                park_reads_after_ms: 0,
            }
        );
    }

    #[test]
    fn an_unknown_runtime_switch_is_refused_by_name_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("map.toml");
        std::fs::write(&path, "[runtime]\ncoop_taskrun = true\nmembarrier = true\n")
            .expect("write");
        let err = Config::from_file(&path).expect_err("an unknown key");
        assert!(err.contains("map.toml:3"), "{err}");
        assert!(err.contains("unknown field `membarrier`"), "{err}");
        assert!(err.contains("membarrier_syscall"), "{err}");
    }
}
