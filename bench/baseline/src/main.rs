//! # baseline — the conventional server mudshard is compared with
//!
//! The benchmark suite (DESIGN.md §9) reports every mudshard figure beside the
//! figure of *this* server, run by the same load generator on the same machine.
//! It implements the part of mudshard's protocol (DESIGN.md §4) that the load
//! generator uses — guest login, `look`, `go <dir>` / `n` `s` `e` `w`, `say` /
//! `'`, `goto <room id>`, `quit`, `ping` — on mudshard's generated grid world,
//! byte-compatible where clients look: the same frame types and fields, `seq`
//! first and without gaps, `pong` outside the sequence, the same error codes.
//!
//! ## What "conventional" means here
//!
//! This is the server a good Rust engineer would write in a day with the
//! usual crates, idiomatically and without sabotage, and without any of
//! mudshard's design choices:
//!
//! * the **tokio multi-thread runtime** (`#[tokio::main]`, one worker per core,
//!   work stealing) and a task per connection;
//! * **tokio-tungstenite** in its default configuration (`accept_async`,
//!   default buffer sizes and message limits);
//! * **shared state behind a lock**: an `Arc<Shared>` holding one
//!   `std::sync::RwLock` around a `HashMap` of players, each with the
//!   `mpsc::UnboundedSender` of its connection's writer task, and a `HashMap`
//!   of room occupants. A `say` takes the read lock, walks the room and sends
//!   to each listener; moves and logins take the write lock;
//! * **serde_json** for every frame, the system allocator.
//!
//! It is competent, not naïve: an event is encoded once and shared by its
//! listeners (`Arc<str>`, with `seq` spliced in by each writer), the writer
//! flushes a batch of queued frames with one write instead of one per frame,
//! `TCP_NODELAY` is set, and errors end only their own connection.
//!
//! Left out on purpose, because the load generator does not need them:
//! accounts, resume, persistence, items, NPCs, shards, and the per-session
//! command rate limit (the load generator keeps every session below
//! mudshard's 20 commands/s anyway, so the limit would never fire).
//!
//! ## Several hosts
//!
//! With `--redis URL --host-id ID`, several baseline processes form one world
//! the way Socket.IO and Flask-SocketIO applications do with their Redis
//! adapters: a channel per room, subscribed while the process has players
//! there, one PUBLISH per room event, a global channel for shouts, a channel
//! per player for tells, a Redis hash for `who` (see `bridge.rs`). This is
//! the baseline of the `cluster` benchmark. Without `--redis` nothing of it
//! runs. `look` and room views list this process's players only.
//!
//! ## Running it
//!
//! ```text
//! baseline [--listen 127.0.0.1:4100] [--world grid:100x100]
//!          [--redis redis://127.0.0.1:6379 --host-id a]
//! ```
//!
//! The first line on stdout is `listening on ADDR` (useful with port 0).
//! `GET /ws` upgrades to the WebSocket protocol; `GET /healthz` answers
//! `{"pid":…,"connections":…,"server":"baseline"}`; other paths get 404.
//! SIGINT or SIGTERM stops accepting, closes every session with a close frame
//! and exits 0.

mod bridge;
mod commands;
mod http;
mod protocol;
mod session;
mod state;
mod world;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tokio::net::{TcpListener, TcpStream};

use crate::http::Route;
use crate::state::Shared;
use crate::world::Grid;

/// How long a graceful shutdown waits for sessions to finish their close handshake.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How often shutdown checks whether every session has gone.
const SHUTDOWN_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long to back off after a failed `accept` (out of file descriptors, say),
/// so the loop does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(10);

/// The comparison baseline for mudshard's benchmarks: the protocol subset
/// built the conventional way (tokio, tokio-tungstenite, shared state behind locks).
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to serve WebSocket (`GET /ws`) and `GET /healthz` on.
    #[arg(long, default_value = "127.0.0.1:4100")]
    listen: SocketAddr,
    /// The generated world, `grid:WxH`; rooms are `grid:{x}_{y}`, start `grid:0_0`.
    #[arg(long, default_value = "grid:100x100")]
    world: Grid,
    /// Join the other baseline processes that use this Redis
    /// (`redis://host:port`) into one world.
    #[arg(long, requires = "host_id")]
    redis: Option<String>,
    /// This process's name among them (`[A-Za-z0-9_]`, distinct per process).
    #[arg(long, requires = "redis", value_parser = parse_host_id)]
    host_id: Option<String>,
}

/// Host ids go into guest names and channel payloads: keep them plain.
fn parse_host_id(id: &str) -> Result<String, String> {
    let plain =
        (1..=16).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    match plain {
        true => Ok(id.to_owned()),
        false => Err("1–16 of [A-Za-z0-9_]".into()),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let listener = TcpListener::bind(args.listen).await?;
    let (bridge, pumps) = match (&args.redis, &args.host_id) {
        (Some(url), Some(host_id)) => {
            let (bridge, pumps) = bridge::channels(url, host_id);
            (Some(bridge), Some(pumps))
        }
        _ => (None, None),
    };
    let shared = Shared::new(args.world, bridge);
    if let Some(pumps) = pumps {
        // Connecting blocks: fine here, before any session exists.
        bridge::start(pumps, Arc::clone(&shared))
            .map_err(|why| std::io::Error::new(std::io::ErrorKind::ConnectionRefused, why))?;
    }
    println!("listening on {}", listener.local_addr()?);

    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    tokio::spawn(serve(stream, Arc::clone(&shared)));
                }
                Err(err) => {
                    eprintln!("accept failed: {err}");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
            () = &mut shutdown => break,
        }
    }

    drop(listener);
    shared.close_all();
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while shared.connection_count() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(SHUTDOWN_POLL_INTERVAL).await;
    }
    Ok(())
}

/// Routes one accepted connection to the WebSocket session or the HTTP answers.
async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    // Frames are small and latency is what is measured: do not let Nagle hold them.
    let _ = stream.set_nodelay(true);
    let route = match tokio::time::timeout(http::REQUEST_TIMEOUT, http::peek_route(&stream)).await {
        Ok(Ok(Some(route))) => route,
        _ => return,
    };
    match route {
        Route::WebSocket => session::run(stream, shared).await,
        Route::Healthz | Route::NotFound => {
            let answer = http::respond(stream, route, &shared);
            let _ = tokio::time::timeout(http::REQUEST_TIMEOUT, answer).await;
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            // Without a SIGTERM handler, wait for Ctrl-C alone.
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
