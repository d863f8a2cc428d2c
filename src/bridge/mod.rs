//! The bridge between hosts (DESIGN §1 "Cross-host"): what one host's shards
//! send to another host goes through Redis, and what other hosts send comes
//! back the same way.
//!
//! The `redis` client runs on two threads of its own beside the shards,
//! never on a shard, so a shard never waits on Redis:
//! * the publisher ([`publisher`]) drains everything waiting in its channel
//!   and sends it as one pipelined round trip: one `PUBLISH` per destination
//!   host (batched into [`Envelope`]s of at most 64 KiB), its heartbeat key
//!   and a read of the other hosts' heartbeats; idle, it adds no delay;
//! * the subscriber ([`subscriber`]) reads this host's inbox channel and the
//!   `global` channel with a timeout and hands each envelope to the [`Sink`]
//!   (the shards' mailboxes, with their doorbell).
//!
//! The synchronous client is used on purpose: the async one needs a tokio
//! or smol runtime beside glommio's, and two threads that block are simpler
//! than a third executor. Both threads open a circuit breaker on the first
//! error or timeout and reconnect with exponential backoff and jitter
//! ([`link`]), so a Redis that is down, unreachable or silent costs the
//! shards nothing but the messages to other hosts, which are bounded and
//! counted when dropped.

mod link;
mod publisher;
pub mod saves;
mod sequence;
pub mod stats;
mod subscriber;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use publisher::ROSTER_NAMES_MAX;
pub use stats::{BridgeState, BridgeStats};

use crate::game::wire::{Addressed, Envelope};

/// What the bridge needs to know: where Redis is, who this host is among
/// the hosts, and its bounds.
#[derive(Clone, Debug)]
pub struct BridgeConfig {
    pub url: String,
    /// Every host's id, in the cluster's order: a host's index is its number.
    pub hosts: Vec<String>,
    /// This host's number.
    pub me: u16,
    /// Changes at every start, so other hosts can tell a restart.
    pub boot_epoch: u64,
    pub heartbeat_ms: u64,
    pub host_ttl_ms: u64,
    /// Messages waiting for the publisher (the channel's bound).
    pub queue_max: usize,
    pub probe_interval_ms: u64,
}

/// Something for the publisher to send.
pub enum Outbound {
    /// A message for one shard (or all shards) of host `host`.
    To { host: u16, msg: Addressed },
    /// A message for every other host (shouts, notices): one `PUBLISH` to
    /// the `global` channel.
    Global(Addressed),
    /// Shard `shard`'s players, for the heartbeat that `who` on other hosts
    /// reads: at most the listed names, and how many there are in all.
    Roster {
        shard: u16,
        names: Vec<Box<str>>,
        total: usize,
    },
}

/// Another host as the heartbeats show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerHost {
    pub host: u16,
    pub boot_epoch: u64,
    /// Players connected to it, and the first of their names.
    pub players: usize,
    pub names: Vec<Box<str>>,
}

/// Where the bridge delivers what it receives. Implemented by the server
/// over the shards' mailboxes; called on the bridge's threads.
pub trait Sink: Send + Sync + 'static {
    /// An envelope from another host, decoded and checked.
    fn deliver(&self, env: Envelope);
    /// The live hosts other than this one changed: one joined or restarted
    /// (a new boot epoch), left (its heartbeat expired), or its roster
    /// changed. `turned` names the hosts that joined, died or restarted
    /// since the last call: whatever this host told them before is lost.
    fn peers(&self, live: Vec<PeerHost>, turned: Vec<u16>);
}

/// The shards' side of the bridge: where they put what goes to other hosts,
/// and what they may read of its state. Cheap to clone: one per shard.
#[derive(Clone)]
pub struct Outbox {
    tx: Sender<Outbound>,
    stats: Arc<BridgeStats>,
    /// Saves for other hosts that could not go yet (`saves`), one list for
    /// the host's shards.
    saves: Arc<saves::SavesWaiting>,
    me: u16,
}

impl Outbox {
    /// This host's number.
    pub fn me(&self) -> u16 {
        self.me
    }

    /// Queues `msg` for the publisher without waiting. When Redis is away
    /// and the queue is full, the message is dropped, counted, and `false`
    /// says so.
    pub fn send(&self, out: Outbound) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Queues `out` for the publisher without waiting, or gives it back
    /// when the queue is full (not counted as a drop: the caller keeps it).
    /// Given back only on the rare full queue, so its size does not matter.
    #[allow(clippy::result_large_err)]
    pub fn try_send(&self, out: Outbound) -> Result<(), Outbound> {
        self.tx.try_send(out).map_err(|e| e.into_inner())
    }

    /// Whether messages to other hosts can be expected to arrive: the
    /// breaker is closed.
    pub fn is_up(&self) -> bool {
        self.stats.state() == BridgeState::Up
    }

    pub fn stats(&self) -> &BridgeStats {
        &self.stats
    }

    /// The host's saves for other hosts that wait to go.
    pub fn saves(&self) -> &saves::SavesWaiting {
        &self.saves
    }

    /// Messages waiting for the publisher.
    pub fn queue_depth(&self) -> usize {
        self.tx.len()
    }
}

/// The running bridge: its two threads and the way to stop them.
pub struct Bridge {
    outbox: Outbox,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

/// How long a blocked read or wait on a bridge thread lasts before it looks
/// at the stop flag and its timers again.
const TICK_MS: u64 = 100;

/// This host's wall clock in ms since the Unix epoch: the time stamps of
/// envelopes and players' commands (`Envelope::sent_ms`).
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The channel a host reads its messages from.
pub fn inbox_channel(host_id: &str) -> String {
    format!("mudshard:inbox:{host_id}")
}

/// The channel every host reads: shouts and notices.
pub const GLOBAL_CHANNEL: &str = "mudshard:global";

/// The key a host keeps alive while it runs.
pub fn heartbeat_key(host_id: &str) -> String {
    format!("mudshard:heartbeat:{host_id}")
}

impl Bridge {
    /// Starts the publisher and subscriber threads. They connect in the
    /// background: a Redis that is not there yet is retried, not an error.
    pub fn start(config: BridgeConfig, sink: Arc<dyn Sink>) -> Result<Bridge, String> {
        redis::Client::open(config.url.as_str())
            .map_err(|e| format!("redis URL {:?}: {e}", config.url))?;
        let (tx, rx): (Sender<Outbound>, Receiver<Outbound>) =
            crossbeam_channel::bounded(config.queue_max);
        let stats = Arc::new(BridgeStats::default());
        stats
            .run_epoch
            .store(config.boot_epoch, std::sync::atomic::Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::with_capacity(2);
        {
            let (config, stats, stop, sink) =
                (config.clone(), stats.clone(), stop.clone(), sink.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("bridge-pub".into())
                    .spawn(move || publisher::run(config, rx, stats, sink, stop))
                    .map_err(|e| format!("cannot start the bridge publisher: {e}"))?,
            );
        }
        {
            let (config, stats, stop) = (config.clone(), stats.clone(), stop.clone());
            threads.push(
                std::thread::Builder::new()
                    .name("bridge-sub".into())
                    .spawn(move || subscriber::run(config, stats, sink, stop))
                    .map_err(|e| format!("cannot start the bridge subscriber: {e}"))?,
            );
        }
        Ok(Bridge {
            outbox: Outbox {
                tx,
                stats,
                saves: Arc::default(),
                me: config.me,
            },
            stop,
            threads,
        })
    }

    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// Stops both threads (each within one tick) and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.outbox);
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

fn tick() -> Duration {
    Duration::from_millis(TICK_MS)
}
