//! A host: its store and hasher threads, its shards, each on its own thread
//! with its own listener on the one shared address, and the way to stop them
//! all (shards first, then the store's last flush).

use glommio::{LocalExecutorBuilder, Placement as CorePlacement};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::password::{HasherConfig, HasherPool};
use crate::auth::ratelimit::{LoginLimitConfig, LoginLimiter};
use crate::auth::token::TokenSigner;
use crate::bridge::{Bridge, BridgeConfig};
use crate::config::{Config, RuntimeSettings, WorldSource};
use crate::game::owner::RoomItems;
use crate::net::listener;
use crate::net::per_ip::ConnectionsPerIp;
use crate::shard::mailbox::{self, Mailbox};
use crate::shard::msg::Msg;
use crate::shard::placement::Placement;
use crate::shard::remote::ClusterSink;
use crate::shard::router::Router;
use crate::shard::{run, Services, Shard};
use crate::store::{Store, StoreConfig};
use crate::world::{World, ZoneFiles};

/// The host's SQLite file inside the data directory.
pub const STORE_FILE: &str = "mudshard.db";

/// io_uring entries per shard ring. The kernel sizes its poll-cancel hash
/// table from this, and every executor turn cancels a timer through it: with
/// thousands of sockets armed, glommio's default (128) made each cancel walk
/// long chains (17% of CPU in `io_poll_find` under load).
const RING_DEPTH: usize = 4096;

/// Memory each shard's executor sets aside and registers with io_uring for
/// file I/O. glommio's default is 10 MiB, pinned (so resident) from the
/// start; a shard does no file I/O through glommio (the store has its own
/// thread), so it takes glommio's minimum, 64 KiB.
const IO_MEMORY: usize = 64 << 10;

/// Pending connections the kernel queues per shard listener.
const LISTEN_BACKLOG: i32 = 4096;

/// A running host.
pub struct Server {
    /// The address actually bound (the port is resolved when 0 was asked).
    pub addr: SocketAddr,
    mailboxes: Vec<Mailbox>,
    threads: Vec<glommio::ExecutorJoinHandle<()>>,
    store: Store,
    hasher: HasherPool,
    /// The bridge to other hosts, when this host is one of a cluster.
    bridge: Option<Bridge>,
}

/// The store's file for a configuration.
pub fn store_path(config: &Config) -> PathBuf {
    config.data_dir.join(STORE_FILE)
}

/// Loads the world the configuration names.
pub fn load_world(config: &Config) -> Result<World, String> {
    match &config.world {
        WorldSource::Grid {
            width,
            height,
            zones,
        } => Ok(World::generated_in_zones(*width, *height, *zones)),
        WorldSource::Zones { dir, zones, start } => {
            World::load(dir, zones, start).map_err(|e| e.to_string())
        }
        WorldSource::Embedded { zones, start } => {
            World::load_from(ZoneFiles::Embedded, zones, start).map_err(|e| e.to_string())
        }
    }
}

impl Server {
    /// Starts every shard; returns once all listeners are bound.
    pub fn start(config: Config) -> Result<Server, String> {
        config.check_cluster()?;
        tracing::info!("config: {}", config.origin);
        let world = Arc::new(load_world(&config)?);
        tracing::info!(rooms = world.rooms.len(), "world: {}", config.world);
        // Bound first: a server that cannot have its port touches no data file.
        let (addr, listeners) = bind_listeners(config.listen, config.shards)?;
        let (store, snapshot) = Store::open(StoreConfig {
            path: store_path(&config),
            flush_interval_ms: config.store.flush_interval_ms,
            queue_max: config.store.queue_max,
        })
        .map_err(|e| e.to_string())?;
        let saved_items = Arc::new(saved_room_items(&world, snapshot.room_items));
        let hasher = HasherPool::start(&HasherConfig::from_settings(&config.auth))
            .map_err(|e| format!("auth: cannot start the password hasher: {e}"))?;
        // A cluster shares one secret, so a token from any host logs in on
        // every host; a host alone keeps its own random one in its file.
        let signer = Arc::new(match &config.cluster.token_secret {
            Some(secret) => TokenSigner::new(secret.as_bytes()),
            None => TokenSigner::new(&snapshot.token_secret),
        });
        let limiter = Arc::new(LoginLimiter::new(LoginLimitConfig::from_settings(
            &config.auth,
        )));
        let shards = config.shards as u16;
        let placement = Arc::new(Placement::for_host(&world, &config, shards)?);
        let wake = if config.runtime.socket_doorbell {
            mailbox::Wake::Socket
        } else {
            mailbox::Wake::Waker
        };
        let (mailboxes, inboxes) =
            mailbox::create(config.shards, config.limits.inbox_msgs_max, wake)
                .map_err(|e| format!("cannot create shard channels: {e}"))?;
        let bridge = match &config.redis {
            Some(url) => Some(start_bridge(url, &config, &mailboxes, &placement)?),
            None => None,
        };
        let outbox = bridge.as_ref().map(Bridge::outbox);
        let host = config.host_index();
        apply_runtime(&config.runtime);
        let config = Arc::new(config);
        // One count for the host: an address's connections land on every shard.
        let per_ip = Arc::new(ConnectionsPerIp::new(config.limits.connections_per_ip_max));
        let mut threads = Vec::with_capacity(config.shards);
        for (k, (inbox, listener_fd)) in inboxes.into_iter().zip(listeners).enumerate() {
            let placement_core = match config.cores.get(k) {
                Some(&core) => {
                    tracing::info!(shard = k, core, "shard {k} pinned to core {core}");
                    CorePlacement::Fixed(core)
                }
                None => {
                    tracing::info!(shard = k, "shard {k} unpinned");
                    CorePlacement::Unbound
                }
            };
            let (config, world, placement, mailboxes, per_ip, outbox) = (
                config.clone(),
                world.clone(),
                placement.clone(),
                mailboxes.clone(),
                per_ip.clone(),
                outbox.clone(),
            );
            let services = Services {
                store: store.handle(),
                store_metrics: store.metrics(),
                hasher: hasher.hasher(),
                signer: signer.clone(),
                limiter: limiter.clone(),
                saved_items: saved_items.clone(),
            };
            let mut builder = LocalExecutorBuilder::new(placement_core)
                .name(&format!("shard-{k}"))
                .ring_depth(RING_DEPTH)
                .io_memory(IO_MEMORY);
            if config.runtime.spin_before_park_us > 0 {
                builder = builder
                    .spin_before_park(Duration::from_micros(config.runtime.spin_before_park_us));
            }
            let handle = builder
                .spawn(move || async move {
                    crate::logging::set_thread_shard(k as u16);
                    // From the shard's own thread: for a pinned shard, the
                    // CPU it runs on is its core, seen rather than assumed.
                    // SAFETY: sched_getcpu has no arguments and no memory effects.
                    let cpu = unsafe { libc::sched_getcpu() };
                    tracing::info!(cpu, "shard {k} started");
                    let router = Router::new(k as u16, mailboxes).with_bridge(host, outbox);
                    let shard = Shard::new(k as u16, config, world, placement, router, services);
                    run::run(shard, inbox, move |cell| {
                        listener::listen(cell, listener_fd, per_ip)
                    })
                    .await;
                    tracing::info!("shard {k} stopped");
                })
                .map_err(|e| format!("cannot start shard {k}: {e}"))?;
            threads.push(handle);
        }
        Ok(Server {
            addr,
            mailboxes,
            threads,
            store,
            hasher,
            bridge,
        })
    }

    /// Asks every shard to close its sessions, save its bodies and stop;
    /// waits for them; then flushes the store and stops the hasher. Returns
    /// false if a shard thread panicked or the last flush failed.
    pub fn shutdown(self) -> bool {
        for mailbox in &self.mailboxes {
            mailbox.send(Msg::Shutdown);
        }
        let mut clean = true;
        for handle in self.threads {
            clean &= handle.join().is_ok();
        }
        // After the shards: their last departures may still cross.
        if let Some(bridge) = self.bridge {
            bridge.stop();
        }
        // Every shard has dropped its store handle now (handing over any
        // parked writes), so this flush is the last word.
        if let Err(e) = self.store.shutdown() {
            tracing::error!(error = %e, "store: the last flush failed");
            clean = false;
        }
        self.hasher.shutdown();
        clean
    }
}

/// Starts the bridge to the other hosts of the cluster, delivering into the
/// shards' mailboxes.
fn start_bridge(
    url: &str,
    config: &Config,
    mailboxes: &[Mailbox],
    placement: &Arc<Placement>,
) -> Result<Bridge, String> {
    let me = config.host_index();
    let boot_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let bridge_config = BridgeConfig {
        url: url.to_string(),
        hosts: config.cluster.hosts.iter().map(|h| h.id.clone()).collect(),
        me,
        boot_epoch,
        heartbeat_ms: config.cluster.heartbeat_ms,
        host_ttl_ms: config.cluster.host_ttl_ms,
        queue_max: config.cluster.bridge_queue_max,
        probe_interval_ms: config.cluster.probe_interval_ms,
    };
    let sink = Arc::new(ClusterSink::new(
        me,
        mailboxes.to_vec(),
        placement.clone(),
        config.cluster.remote_timeout_ms,
    ));
    tracing::info!(
        host = %config.host_id,
        number = me,
        hosts = config.cluster.hosts.len(),
        redis = %url,
        "cluster: starting the bridge"
    );
    Bridge::start(bridge_config, sink)
}

/// Sets glommio's process-wide switches (vendor/glommio/MUDSHARD-PATCH.md)
/// from `[runtime]`; they must be set before the first executor starts,
/// since its rings are set up as it starts.
fn apply_runtime(runtime: &RuntimeSettings) {
    glommio::set_cooperative_taskrun(runtime.coop_taskrun);
    // A shard runs one task queue: the preemption timers, which share a core
    // among queues, would be armed and cancelled on every loop for nothing.
    glommio::skip_preempt_timers_with_one_queue(!runtime.preempt_timers);
    glommio::set_membarrier_syscall(runtime.membarrier_syscall);
    tracing::info!(
        coop_taskrun = runtime.coop_taskrun,
        preempt_timers = runtime.preempt_timers,
        membarrier_syscall = runtime.membarrier_syscall,
        "glommio runtime switches"
    );
}

/// The store's floor items by room index. A room the world no longer has is
/// skipped (and said so): its items stay in the file, untouched.
fn saved_room_items(
    world: &World,
    by_id: std::collections::HashMap<String, Vec<String>>,
) -> RoomItems {
    let mut items = RoomItems::with_capacity(by_id.len());
    for (id, list) in by_id {
        match world.room_index(&id) {
            Some(room) => {
                items.insert(room, list);
            }
            None => tracing::warn!(room = %id, "store: saved items for a room the world lacks"),
        }
    }
    items
}

/// How long a busy port is retried before it is called taken: a server that
/// has just exited can hold its listener a moment longer (its io_uring ring
/// is torn down after the process ends, releasing the socket last).
const PORT_BUSY_RETRY_MS: u64 = 3_000;

/// Binds `listen` plainly (no SO_REUSEPORT) to prove no other process
/// listens there; returns the address, with port 0 resolved.
fn probe_free(listen: SocketAddr) -> Result<SocketAddr, String> {
    let started = std::time::Instant::now();
    loop {
        let probe = Socket::new(
            Domain::for_address(listen),
            Type::STREAM,
            Some(Protocol::TCP),
        )
        .map_err(|e| format!("cannot create a socket: {e}"))?;
        // SO_REUSEADDR lets the probe past connections of an earlier run in
        // TIME_WAIT; it still conflicts with a live listener.
        probe.set_reuse_address(true).map_err(|e| e.to_string())?;
        match probe.bind(&listen.into()) {
            Ok(()) => {
                return probe
                    .local_addr()
                    .ok()
                    .and_then(|a| a.as_socket())
                    .ok_or_else(|| "cannot read the bound address".to_string());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                if started.elapsed() >= std::time::Duration::from_millis(PORT_BUSY_RETRY_MS) {
                    return Err(format!("cannot listen on {listen}: the address is already in use (another mudshard?)"));
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(e) => return Err(format!("cannot listen on {listen}: {e}")),
        }
    }
}

/// Binds one `SO_REUSEPORT` listener per shard on the same address. The
/// first resolves port 0, the others bind the port it got.
fn bind_listeners(listen: SocketAddr, shards: usize) -> Result<(SocketAddr, Vec<i32>), String> {
    // SO_REUSEPORT would let this host share the port with another process
    // already listening there, the kernel splitting connections between the
    // two. A plain bind first proves the port is free (and resolves port 0).
    let addr = probe_free(listen)?;
    let mut fds = Vec::with_capacity(shards);
    for _ in 0..shards {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .map_err(|e| format!("cannot create a socket: {e}"))?;
        socket.set_reuse_address(true).map_err(|e| e.to_string())?;
        socket.set_reuse_port(true).map_err(|e| e.to_string())?;
        // Small frames must leave at once (batching is done by each
        // session's queue): Linux copies TCP_NODELAY from the listener to
        // every connection accepted from it, with no `setsockopt` of its own.
        socket.set_nodelay(true).map_err(|e| e.to_string())?;
        // A connection already queued is then taken with one `accept`,
        // which gives the peer's address too; an empty queue waits on the
        // shard's ring (`glommio::net::TcpListener::accept_with_peer`).
        // Linux does not copy O_NONBLOCK to the accepted socket.
        socket.set_nonblocking(true).map_err(|e| e.to_string())?;
        socket
            .bind(&addr.into())
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        socket
            .listen(LISTEN_BACKLOG)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        fds.push(socket.into_raw_fd());
    }
    Ok((addr, fds))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::FromRawFd;

    #[test]
    fn a_connection_accepted_from_a_shards_listener_has_tcp_nodelay() {
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        let (addr, fds) = bind_listeners(any, 1).expect("listeners");
        // SAFETY: `bind_listeners` made this listening socket; the test owns it now.
        let listener = unsafe { std::net::TcpListener::from_raw_fd(fds[0]) };
        let client = std::net::TcpStream::connect(addr).expect("connect");
        let (accepted, peer) = listener.accept().expect("accept");
        assert_eq!(peer, client.local_addr().expect("client addr"));
        assert!(
            socket2::SockRef::from(&accepted)
                .nodelay()
                .expect("getsockopt"),
            "TCP_NODELAY comes from the listener"
        );
    }
}
