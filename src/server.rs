//! A host: its shards, each on its own thread with its own listener on the
//! one shared address, and the way to stop them all.

use glommio::{LocalExecutorBuilder, Placement as CorePlacement};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::sync::Arc;

use crate::config::{Config, WorldSource};
use crate::game::owner::Placement;
use crate::shard::mailbox::{self, Mailbox};
use crate::shard::msg::Msg;
use crate::shard::router::Router;
use crate::shard::{run, Shard};
use crate::world::World;

/// Pending connections the kernel queues per shard listener.
const LISTEN_BACKLOG: i32 = 4096;

/// A running host.
pub struct Server {
    /// The address actually bound (the port is resolved when 0 was asked).
    pub addr: SocketAddr,
    mailboxes: Vec<Mailbox>,
    threads: Vec<glommio::ExecutorJoinHandle<()>>,
}

/// Loads the world the configuration names.
pub fn load_world(config: &Config) -> Result<World, String> {
    match &config.world {
        WorldSource::Grid { width, height } => Ok(World::generated(*width, *height)),
        WorldSource::Zones { dir, zones, start } => {
            World::load(dir, zones, start).map_err(|e| e.to_string())
        }
    }
}

impl Server {
    /// Starts every shard; returns once all listeners are bound.
    pub fn start(config: Config) -> Result<Server, String> {
        let world = Arc::new(load_world(&config)?);
        let shards = config.shards as u16;
        let placement = Arc::new(Placement::new(&world, shards));
        let (mailboxes, inboxes) = mailbox::create(config.shards)
            .map_err(|e| format!("cannot create shard channels: {e}"))?;
        let (addr, listeners) = bind_listeners(config.listen, config.shards)?;
        let config = Arc::new(config);
        let mut threads = Vec::with_capacity(config.shards);
        for (k, (inbox, listener_fd)) in inboxes.into_iter().zip(listeners).enumerate() {
            let placement_core = match config.cores.get(k) {
                Some(core) => CorePlacement::Fixed(*core),
                None => CorePlacement::Unbound,
            };
            let (config, world, placement, mailboxes) = (
                config.clone(),
                world.clone(),
                placement.clone(),
                mailboxes.clone(),
            );
            let handle = LocalExecutorBuilder::new(placement_core)
                .name(&format!("shard-{k}"))
                .spawn(move || async move {
                    let router = Router::new(k as u16, mailboxes);
                    let shard = Shard::new(k as u16, config, world, placement, router);
                    run::run(shard, inbox, listener_fd).await;
                })
                .map_err(|e| format!("cannot start shard {k}: {e}"))?;
            threads.push(handle);
        }
        Ok(Server {
            addr,
            mailboxes,
            threads,
        })
    }

    /// Asks every shard to close its sessions and stop, and waits for them.
    /// Returns false if a shard thread panicked.
    pub fn shutdown(self) -> bool {
        for mailbox in &self.mailboxes {
            mailbox.send(Msg::Shutdown);
        }
        self.wait()
    }

    /// Waits for every shard thread to end.
    pub fn wait(self) -> bool {
        let mut clean = true;
        for handle in self.threads {
            clean &= handle.join().is_ok();
        }
        clean
    }
}

/// Binds one `SO_REUSEPORT` listener per shard on the same address. The
/// first resolves port 0, the others bind the port it got.
fn bind_listeners(listen: SocketAddr, shards: usize) -> Result<(SocketAddr, Vec<i32>), String> {
    let mut addr = listen;
    let mut fds = Vec::with_capacity(shards);
    for _ in 0..shards {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
            .map_err(|e| format!("cannot create a socket: {e}"))?;
        socket.set_reuse_address(true).map_err(|e| e.to_string())?;
        socket.set_reuse_port(true).map_err(|e| e.to_string())?;
        socket
            .bind(&addr.into())
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        socket
            .listen(LISTEN_BACKLOG)
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        if addr.port() == 0 {
            addr = socket
                .local_addr()
                .ok()
                .and_then(|a| a.as_socket())
                .ok_or_else(|| "cannot read the bound address".to_string())?;
        }
        fds.push(socket.into_raw_fd());
    }
    Ok((addr, fds))
}
