//! The publisher thread: everything the shards send to other hosts leaves
//! here. Each turn it takes whatever is waiting (no fixed delay: when idle a
//! message leaves as soon as it comes), batches it into one envelope per
//! destination host (at most [`ENVELOPE_FLUSH_BYTES`] each), and sends all of
//! it in one pipelined round trip together with its timers' work: the
//! heartbeat key, a read of the other hosts' heartbeats, and the probe that
//! tells the subscriber its link still works.

use crossbeam_channel::{Receiver, RecvTimeoutError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::link::{self, Backoff};
use super::sequence::{self, Retained};
use super::GLOBAL_CHANNEL;
use super::{heartbeat_key, inbox_channel, BridgeConfig, BridgeStats, Outbound, PeerHost, Sink};
use crate::game::wire::{self, Addressed, Envelope, PeerMsg, MESSAGES_PER_ENVELOPE_MAX};

/// An envelope is sent once its messages reach this size (DESIGN §1: batches
/// of at most 64 KiB), and a new one started for the rest.
pub const ENVELOPE_FLUSH_BYTES: usize = 64 * 1024;

/// Most messages taken from the queue in one turn, so that one round trip
/// stays bounded while a backlog drains.
const MESSAGES_PER_TURN_MAX: usize = 8192;

/// Monotonic microseconds, the probe's timestamp: both ends of a probe are
/// this process, so they read the same clock.
pub fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write into.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

pub fn run(
    config: BridgeConfig,
    rx: Receiver<Outbound>,
    stats: Arc<BridgeStats>,
    sink: Arc<dyn Sink>,
    stop: Arc<AtomicBool>,
) {
    let mut backoff = Backoff::new(config.boot_epoch ^ 0x9e37_79b9_7f4a_7c15);
    let mut batches = Batches::new(&config);
    let mut rosters = Rosters::default();
    let mut peers = Peers::new(&config);
    let mut con: Option<redis::Connection> = None;
    // `tried_before`: the first failure to connect is logged, later ones
    // not. `linked_before`: a link was made once, so the next is a
    // reconnection (counted, and the other hosts' missing heartbeats get a
    // grace: a first link knows of no host, so it has nothing to spare).
    let (mut tried_before, mut linked_before) = (false, false);
    let heartbeat_every = Duration::from_millis(config.heartbeat_ms);
    let probe_every = Duration::from_millis(config.probe_interval_ms);
    // An envelope is unacknowledged for at least a heartbeat of each side in
    // the normal course; after two and a little, it was lost.
    let resend_after = heartbeat_every * 2 + Duration::from_millis(100);
    let (mut next_heartbeat, mut next_probe) = (Instant::now(), Instant::now());
    // This host's run: its boot epoch until the others count it dead.
    let mut run = config.boot_epoch;
    while !stop.load(Ordering::Relaxed) {
        let Some(c) = con.as_mut() else {
            match link::connect(&config.url) {
                Ok(c) => {
                    if linked_before {
                        stats.reconnects.fetch_add(1, Ordering::Relaxed);
                        peers.reconnected();
                    }
                    (tried_before, linked_before) = (true, true);
                    tracing::info!(url = %config.url, "bridge: publisher connected");
                    stats.publisher_up.store(true, Ordering::Relaxed);
                    backoff.reset();
                    con = Some(c);
                    // Announce at once: the other hosts learn of this one.
                    next_heartbeat = Instant::now();
                }
                Err(e) => {
                    if stats.publisher_up.swap(false, Ordering::Relaxed) || !tried_before {
                        tracing::warn!(error = %e, "bridge: publisher cannot reach redis; retrying with backoff");
                        tried_before = true;
                    }
                    backoff.sleep(&stop);
                }
            }
            continue;
        };
        let now = Instant::now();
        let wait = next_heartbeat
            .min(next_probe)
            .saturating_duration_since(now)
            .min(super::tick());
        match rx.recv_timeout(wait) {
            Ok(out) => take(out, &mut batches, &mut rosters),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let mut taken = 1;
        while taken < MESSAGES_PER_TURN_MAX {
            let Ok(out) = rx.try_recv() else { break };
            take(out, &mut batches, &mut rosters);
            taken += 1;
        }
        let mut pipe = redis::pipe();
        let messages = batches.flush_into(&mut pipe);
        let publishes = pipe.len();
        let now = Instant::now();
        if now >= next_probe {
            next_probe = now + probe_every;
            let probe = Envelope {
                source_host: config.me,
                boot_epoch: run,
                dest_epoch: run,
                seq: monotonic_us(),
                sent_ms: super::wall_ms(),
                messages: Vec::new(),
            };
            let mut bytes = Vec::with_capacity(32);
            wire::encode(&probe, &mut bytes);
            pipe.cmd("PUBLISH")
                .arg(inbox_channel(&config.hosts[usize::from(config.me)]))
                .arg(bytes)
                .ignore();
        }
        let heartbeat = now >= next_heartbeat;
        if heartbeat {
            next_heartbeat = now + heartbeat_every;
            pipe.cmd("SET")
                .arg(heartbeat_key(&config.hosts[usize::from(config.me)]))
                .arg(rosters.heartbeat_value(
                    run,
                    &stats.acks.lock().map(|a| a.clone()).unwrap_or_default(),
                    &peers.render_buried(),
                ))
                .arg("PX")
                .arg(config.host_ttl_ms)
                .ignore();
            pipe.cmd("MGET").arg(peers.keys());
        }
        stats.unacknowledged.store(
            batches.retained.iter().map(|r| r.kept() as u64).sum(),
            Ordering::Relaxed,
        );
        if pipe.is_empty() {
            continue;
        }
        match pipe.query::<Vec<Vec<Option<String>>>>(c) {
            Ok(read) => {
                stats.round_trips.fetch_add(1, Ordering::Relaxed);
                stats
                    .publishes
                    .fetch_add(publishes as u64, Ordering::Relaxed);
                stats
                    .messages_published
                    .fetch_add(messages as u64, Ordering::Relaxed);
                if heartbeat {
                    if let Some(values) = read.into_iter().next() {
                        if let Some((live, turned)) = peers.update(values) {
                            stats.peers_live.store(live.len() as u64, Ordering::Relaxed);
                            // A host that (re)started numbers from nothing:
                            // envelopes to it start again at 1, and what was
                            // kept for its last run is let go.
                            for &host in &turned {
                                let epoch = live
                                    .iter()
                                    .find(|p| p.host == host)
                                    .map_or(0, |p| p.boot_epoch);
                                batches.restart(usize::from(host), epoch);
                            }
                            sink.peers(live, turned);
                        }
                        if peers.buried_me(config.me, run) {
                            // The others counted this host dead while its
                            // link was cut, and let go of what they kept for
                            // it. It does the same, as a new run they can
                            // tell from the old: bodies kept here for their
                            // players leave, this host's players in their
                            // land wake here, and numbering starts afresh.
                            run = run.saturating_add(1).max(wall_ns());
                            stats.run_epoch.store(run, Ordering::Relaxed);
                            stats.reborn.fetch_add(1, Ordering::Relaxed);
                            batches.reborn(run);
                            tracing::warn!(
                                run,
                                "bridge: the other hosts counted this host dead while its link was cut; \
                                 it starts a new run and lets go of what it kept for them"
                            );
                            sink.peers(peers.live(), peers.hosts.clone());
                            next_heartbeat = Instant::now();
                        }
                        let queued = batches.acknowledged(&peers, resend_after);
                        stats.resent.fetch_add(queued, Ordering::Relaxed);
                        stats.lost.store(
                            batches.retained.iter().map(|r| r.overflowed).sum(),
                            Ordering::Relaxed,
                        );
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, lost = messages, "bridge: publish failed; breaker open, reconnecting");
                stats.dropped.fetch_add(messages as u64, Ordering::Relaxed);
                stats.publisher_up.store(false, Ordering::Relaxed);
                stats.probe_ok.store(false, Ordering::Relaxed);
                con = None;
                backoff.sleep(&stop);
            }
        }
    }
    // Stopping: the shards have stopped, and what they sent last (departures,
    // their players' last saves) goes out in one last round trip, with the
    // heartbeat key taken away, so that the other hosts count this one gone
    // at their next heartbeat rather than when the key would have expired.
    if let Some(c) = con.as_mut() {
        while let Ok(out) = rx.try_recv() {
            take(out, &mut batches, &mut rosters);
        }
        let mut pipe = redis::pipe();
        let messages = batches.flush_into(&mut pipe);
        pipe.cmd("DEL")
            .arg(heartbeat_key(&config.hosts[usize::from(config.me)]))
            .ignore();
        if let Err(e) = pipe.query::<()>(c) {
            tracing::warn!(error = %e, lost = messages, "bridge: the last round trip failed");
        }
    }
    stats.publisher_up.store(false, Ordering::Relaxed);
}

fn take(out: Outbound, batches: &mut Batches, rosters: &mut Rosters) {
    match out {
        Outbound::To { host, msg } => batches.add(usize::from(host), msg),
        Outbound::Global(msg) => batches.add_global(msg),
        Outbound::Roster {
            shard,
            names,
            total,
        } => rosters.set(shard, names, total),
    }
}

/// Envelopes being filled, one list per destination (each host's inbox, and
/// the global channel last), with the sequence number of each destination.
struct Batches {
    me: u16,
    boot_epoch: u64,
    channels: Vec<String>,
    pending: Vec<Vec<Addressed>>,
    pending_bytes: Vec<usize>,
    /// Finished envelopes: destination index, bytes and messages in them.
    ready: Vec<(usize, bytes::Bytes, usize)>,
    seq: Vec<u64>,
    /// Per destination, what was sent and not yet acknowledged.
    retained: Vec<Retained>,
    /// Per destination host, the run its envelopes are numbered for.
    dest_epoch: Vec<u64>,
    /// Envelopes to publish again in the next round trip.
    resend: Vec<(usize, bytes::Bytes)>,
}

impl Batches {
    fn new(config: &BridgeConfig) -> Batches {
        let mut channels: Vec<String> = config.hosts.iter().map(|h| inbox_channel(h)).collect();
        channels.push(GLOBAL_CHANNEL.to_string());
        let n = channels.len();
        Batches {
            me: config.me,
            boot_epoch: config.boot_epoch,
            channels,
            pending: vec![Vec::new(); n],
            pending_bytes: vec![0; n],
            ready: Vec::new(),
            seq: vec![0; n],
            retained: (0..n).map(|_| Retained::default()).collect(),
            dest_epoch: vec![0; n],
            resend: Vec::new(),
        }
    }

    /// This host starts a new run (`epoch`): its envelopes are numbered
    /// from 1 again everywhere, and what was kept for the old run is let go.
    /// Messages not yet sent go out in the new run.
    fn reborn(&mut self, epoch: u64) {
        self.boot_epoch = epoch;
        for dest in 0..self.channels.len() {
            self.seq[dest] = 0;
            self.retained[dest] = Retained::default();
        }
        self.resend.clear();
    }

    /// Destination `dest` started a new run (`epoch`; 0 when it died):
    /// envelopes to it are numbered from 1 for that run, and what was kept
    /// for the last one is let go.
    fn restart(&mut self, dest: usize, epoch: u64) {
        if dest + 1 < self.channels.len() {
            self.seq[dest] = 0;
            self.dest_epoch[dest] = epoch;
            self.retained[dest] = Retained::default();
        }
    }

    /// The global channel's index among the destinations.
    fn global(&self) -> usize {
        self.channels.len() - 1
    }

    fn add(&mut self, dest: usize, msg: Addressed) {
        // The global channel is the last destination; a host number past
        // the list is a bug in the router, dropped here rather than sent.
        if dest + 1 >= self.channels.len() {
            tracing::error!(
                dest,
                "bridge: message for a host that is not in the cluster"
            );
            return;
        }
        self.push(dest, msg);
    }

    fn add_global(&mut self, msg: Addressed) {
        self.push(self.channels.len() - 1, msg);
    }

    fn push(&mut self, dest: usize, msg: Addressed) {
        self.pending_bytes[dest] += approx_bytes(&msg.msg);
        self.pending[dest].push(msg);
        if self.pending_bytes[dest] >= ENVELOPE_FLUSH_BYTES
            || self.pending[dest].len() >= MESSAGES_PER_ENVELOPE_MAX
        {
            self.seal(dest);
        }
    }

    fn seal(&mut self, dest: usize) {
        let messages = std::mem::take(&mut self.pending[dest]);
        self.pending_bytes[dest] = 0;
        if messages.is_empty() {
            return;
        }
        self.seq[dest] += 1;
        let count = messages.len();
        let env = Envelope {
            source_host: self.me,
            boot_epoch: self.boot_epoch,
            dest_epoch: self.dest_epoch[dest],
            seq: self.seq[dest],
            sent_ms: super::wall_ms(),
            messages,
        };
        let mut bytes = Vec::with_capacity(256);
        wire::encode(&env, &mut bytes);
        let bytes = bytes::Bytes::from(bytes);
        self.retained[dest].keep(env.seq, bytes.clone(), Instant::now());
        self.ready.push((dest, bytes, count));
    }

    /// Seals every destination's envelope and adds a `PUBLISH` per envelope
    /// to `pipe`. Returns the messages in them.
    fn flush_into(&mut self, pipe: &mut redis::Pipeline) -> usize {
        for dest in 0..self.channels.len() {
            self.seal(dest);
        }
        let mut messages = 0;
        for (dest, bytes, count) in self.ready.drain(..) {
            messages += count;
            pipe.cmd("PUBLISH")
                .arg(&self.channels[dest])
                .arg(&bytes[..])
                .ignore();
        }
        for (dest, bytes) in self.resend.drain(..) {
            pipe.cmd("PUBLISH")
                .arg(&self.channels[dest])
                .arg(&bytes[..])
                .ignore();
        }
        messages
    }

    /// Takes the acknowledgements in the other hosts' heartbeats: forgets
    /// what they have, and queues again for the next round trip what they
    /// lack once it is older than `after`. Returns how many were queued.
    fn acknowledged(&mut self, peers: &Peers, after: Duration) -> u64 {
        let now = Instant::now();
        let mut queued = 0;
        let mut global_acked: Option<u64> = None;
        for (i, known) in peers.known.iter().enumerate() {
            let Some(peer) = known else { continue };
            let acks = &peers.acks[i];
            let host = usize::from(peer.host);
            let inbox = sequence::acked(acks, self.me, false, self.boot_epoch);
            for bytes in self.retained[host].due(inbox, after, now) {
                self.resend.push((host, bytes));
                queued += 1;
            }
            let global = sequence::acked(acks, self.me, true, self.boot_epoch);
            global_acked = Some(global_acked.map_or(global, |g| g.min(global)));
        }
        let g = self.global();
        match global_acked {
            Some(acked) => {
                for bytes in self.retained[g].due(acked, after, now) {
                    self.resend.push((g, bytes));
                    queued += 1;
                }
            }
            // Nobody listens: nothing to keep for anyone.
            None => {
                self.retained[g].due(self.seq[g], after, now);
            }
        }
        // What was let go unacknowledged for the bounds.
        for dest in 0..self.retained.len() {
            if dest == usize::from(self.me) {
                // Nothing is sent to this host's own inbox but probes.
                self.retained[dest].due(self.seq[dest], after, now);
            }
        }
        queued
    }
}

/// A generous estimate of a message's encoded size, for the flush bound.
fn approx_bytes(msg: &PeerMsg) -> usize {
    const FIXED: usize = 32;
    FIXED
        + match msg {
            PeerMsg::Frame { frame, .. }
            | PeerMsg::RoomEvent { frame, .. }
            | PeerMsg::Broadcast { frame, .. }
            | PeerMsg::QuitDone { frame, .. } => frame.len(),
            PeerMsg::Welcomed { room_json, .. } => room_json.len(),
            PeerMsg::Tell {
                from_name, text, ..
            } => from_name.len() + text.len() + 32,
            PeerMsg::Claim { key, name, .. } | PeerMsg::Spell { key, name, .. } => {
                key.len() + name.len()
            }
            PeerMsg::Release { key, .. } => key.len(),
            PeerMsg::Arrive { body, .. } => {
                64 + body.name.len() + body.inventory.iter().map(|i| i.len() + 2).sum::<usize>()
            }
            _ => 32,
        }
}

/// This host's players per shard, for its heartbeat.
#[derive(Default)]
struct Rosters {
    shards: Vec<(Vec<Box<str>>, usize)>,
}

/// Names a heartbeat carries: `who` shows the first of them.
pub const ROSTER_NAMES_MAX: usize = 50;

impl Rosters {
    fn set(&mut self, shard: u16, names: Vec<Box<str>>, total: usize) {
        let shard = usize::from(shard);
        if self.shards.len() <= shard {
            self.shards.resize_with(shard + 1, Default::default);
        }
        self.shards[shard] = (names, total);
    }

    /// `<boot epoch> <players> <name>,<name>,… <acks> <buried>` (names hold
    /// no space or comma: see `protocol::names`; acks are
    /// `sequence::Receipts`'; buried is `Peers::render_buried`).
    fn heartbeat_value(&self, boot_epoch: u64, acks: &str, buried: &str) -> String {
        let total: usize = self.shards.iter().map(|(_, t)| t).sum();
        let names: Vec<&str> = self
            .shards
            .iter()
            .flat_map(|(n, _)| n.iter().map(|s| &**s))
            .take(ROSTER_NAMES_MAX)
            .collect();
        format!("{boot_epoch} {total} {} {acks} {buried}", names.join(","))
    }
}

/// A host's heartbeat, as it reads.
#[derive(Debug, PartialEq, Eq)]
pub struct Heartbeat {
    pub epoch: u64,
    pub players: usize,
    pub names: Vec<Box<str>>,
    pub acks: String,
    /// Runs of other hosts it counted dead: (host, boot epoch).
    pub buried: Vec<(u16, u64)>,
}

/// Parses a heartbeat value; `None` for one this host cannot read.
pub fn parse_heartbeat(value: &str) -> Option<Heartbeat> {
    let mut parts = value.splitn(5, ' ');
    let epoch = parts.next()?.parse().ok()?;
    let players = parts.next()?.parse().ok()?;
    let names = parts
        .next()
        .unwrap_or("")
        .split(',')
        .filter(|n| !n.is_empty())
        .take(ROSTER_NAMES_MAX)
        .map(Box::from)
        .collect();
    let acks = parts.next().unwrap_or("").to_string();
    let buried = parts
        .next()
        .unwrap_or("")
        .split(',')
        .filter_map(|b| {
            let (host, epoch) = b.split_once('.')?;
            Some((host.parse().ok()?, epoch.parse().ok()?))
        })
        .collect();
    Some(Heartbeat {
        epoch,
        players,
        names,
        acks,
        buried,
    })
}

/// The wall clock in nanoseconds: a new run's epoch, as a boot's is.
fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
}

/// What this host knows of the others, from their heartbeats.
struct Peers {
    keys: Vec<String>,
    hosts: Vec<u16>,
    known: Vec<Option<PeerHost>>,
    /// Until then a missing heartbeat does not mean a dead host: after
    /// Redis comes back (empty, if it restarted) every host needs a
    /// heartbeat's time to write its key again.
    grace_until: Option<Instant>,
    host_ttl: Duration,
    /// Each live host's acknowledgements, from its heartbeat.
    acks: Vec<String>,
    /// Per host, the run this host counted dead: a heartbeat of that run
    /// that shows up again (its link mended) does not bring it back to life;
    /// only a new run does, once it has let go of what it kept.
    buried: Vec<Option<u64>>,
    /// Per host, the runs its last heartbeat says it counted dead.
    buried_by: Vec<Vec<(u16, u64)>>,
}

impl Peers {
    fn new(config: &BridgeConfig) -> Peers {
        let hosts: Vec<u16> = (0..config.hosts.len() as u16)
            .filter(|&h| h != config.me)
            .collect();
        Peers {
            keys: hosts
                .iter()
                .map(|&h| heartbeat_key(&config.hosts[usize::from(h)]))
                .collect(),
            known: vec![None; hosts.len()],
            acks: vec![String::new(); hosts.len()],
            buried: vec![None; hosts.len()],
            buried_by: vec![Vec::new(); hosts.len()],
            hosts,
            grace_until: None,
            host_ttl: Duration::from_millis(config.host_ttl_ms),
        }
    }

    /// This host's link to Redis was (re)made: hosts missing from it are
    /// given time to write their heartbeat again before they count as dead
    /// (their own reconnection may wait out a whole backoff first).
    fn reconnected(&mut self) {
        let backoff = Duration::from_millis(link::BACKOFF_MAX_MS);
        self.grace_until = Some(Instant::now() + self.host_ttl + backoff);
    }

    fn keys(&self) -> &[String] {
        &self.keys
    }

    /// Takes the heartbeats just read; when anything changed, returns the
    /// live hosts and the ones that joined, died or restarted.
    fn update(&mut self, values: Vec<Option<String>>) -> Option<(Vec<PeerHost>, Vec<u16>)> {
        let mut changed = false;
        let mut turned = Vec::new();
        let in_grace = self.grace_until.is_some_and(|t| Instant::now() < t);
        for (i, value) in values.into_iter().enumerate().take(self.hosts.len()) {
            if value.is_none() && in_grace {
                continue;
            }
            let mut parsed = value.as_deref().and_then(parse_heartbeat);
            self.buried_by[i] = parsed
                .as_mut()
                .map(|p| std::mem::take(&mut p.buried))
                .unwrap_or_default();
            // A run counted dead stays dead.
            let parsed = parsed.filter(|p| self.buried[i] != Some(p.epoch));
            self.acks[i] = parsed.as_ref().map(|p| p.acks.clone()).unwrap_or_default();
            let now = parsed.map(|p| PeerHost {
                host: self.hosts[i],
                boot_epoch: p.epoch,
                players: p.players,
                names: p.names,
            });
            if now != self.known[i] {
                changed = true;
                let same_run = matches!((&self.known[i], &now), (Some(old), Some(new)) if old.boot_epoch == new.boot_epoch);
                if !same_run {
                    turned.push(self.hosts[i]);
                }
                match (&self.known[i], &now) {
                    (Some(old), None) => self.buried[i] = Some(old.boot_epoch),
                    (_, Some(_)) => self.buried[i] = None,
                    (None, None) => {}
                }
                self.known[i] = now;
            }
        }
        changed.then(|| (self.live(), turned))
    }

    /// The live hosts.
    fn live(&self) -> Vec<PeerHost> {
        self.known.iter().flatten().cloned().collect()
    }

    /// The runs this host counted dead, for its heartbeat: `host.epoch`,
    /// comma-separated.
    fn render_buried(&self) -> String {
        let mut out = String::new();
        for (i, run) in self.buried.iter().enumerate() {
            if let Some(epoch) = run {
                if !out.is_empty() {
                    out.push(',');
                }
                out.push_str(&format!("{}.{epoch}", self.hosts[i]));
            }
        }
        out
    }

    /// Whether a host whose heartbeat was read counts this host's run `run`
    /// dead (it may be one this host counts dead too: both must start anew).
    fn buried_me(&self, me: u16, run: u64) -> bool {
        self.buried_by.iter().flatten().any(|&b| b == (me, run))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> BridgeConfig {
        BridgeConfig {
            url: "redis://127.0.0.1:1".into(),
            hosts: vec!["a".into(), "b".into(), "c".into()],
            me: 0,
            boot_epoch: 7,
            heartbeat_ms: 1000,
            host_ttl_ms: 5000,
            queue_max: 16,
            probe_interval_ms: 1000,
        }
    }

    #[test]
    fn a_heartbeat_value_round_trips() {
        let mut r = Rosters::default();
        r.set(1, vec!["bob".into()], 3);
        r.set(0, vec!["amy".into(), "cat".into()], 2);
        let v = r.heartbeat_value(9, "0.i.9.3", "2.77");
        assert_eq!(v, "9 5 amy,cat,bob 0.i.9.3 2.77");
        let hb = parse_heartbeat(&v).expect("parses");
        assert_eq!(
            (hb.epoch, hb.players, hb.names.len(), hb.acks.as_str()),
            (9, 5, 3, "0.i.9.3")
        );
        assert_eq!(hb.buried, [(2, 77)]);
        assert_eq!(
            parse_heartbeat("9 0  "),
            Some(Heartbeat {
                epoch: 9,
                players: 0,
                names: Vec::new(),
                acks: String::new(),
                buried: Vec::new(),
            })
        );
        assert_eq!(parse_heartbeat("nine"), None);
    }

    #[test]
    fn peers_report_joins_restarts_and_deaths_once() {
        let mut p = Peers::new(&config());
        assert_eq!(p.keys(), ["mudshard:heartbeat:b", "mudshard:heartbeat:c"]);
        let (live, turned) = p.update(vec![Some("1 0 ".into()), None]).expect("b joined");
        assert_eq!((live.len(), turned), (1, vec![1]));
        assert!(
            p.update(vec![Some("1 0 ".into()), None]).is_none(),
            "nothing changed"
        );
        let (_, turned) = p
            .update(vec![Some("1 3 amy".into()), None])
            .expect("b's roster changed");
        assert!(turned.is_empty(), "the same run of b");
        let (_, turned) = p
            .update(vec![Some("2 0 ".into()), None])
            .expect("b restarted");
        assert_eq!(turned, [1]);
        let (live, turned) = p.update(vec![None, None]).expect("b died");
        assert_eq!((live.len(), turned), (0, vec![1]));
    }

    #[test]
    fn a_run_counted_dead_stays_dead_and_its_host_learns_it() {
        let mut p = Peers::new(&config());
        p.update(vec![Some("1 0 ".into()), Some("4 0 ".into())])
            .expect("b and c joined");
        assert_eq!(p.render_buried(), "");
        let (live, turned) = p.update(vec![None, Some("4 0 ".into())]).expect("b died");
        assert_eq!((live.len(), turned), (1, vec![1]));
        assert_eq!(p.render_buried(), "1.1", "this heartbeat says so");
        // b's link mends and its old run writes its heartbeat again: still dead.
        assert!(p
            .update(vec![Some("1 0 ".into()), Some("4 0 ".into())])
            .is_none());
        assert!(!p.buried_me(0, 7));
        // c's heartbeat says c counted this host's run 7 dead.
        p.update(vec![
            Some("1 0 ".into()),
            Some("4 0 amy 1.i.4.1 0.7".into()),
        ]);
        assert!(p.buried_me(0, 7));
        assert!(!p.buried_me(0, 8), "not a later run");
        // b starts anew: alive, and no longer listed.
        let (live, turned) = p
            .update(vec![Some("2 0 ".into()), Some("4 0 ".into())])
            .expect("b's new run");
        assert_eq!((live.len(), turned), (2, vec![1]));
        assert_eq!(p.render_buried(), "");
    }

    #[test]
    fn batches_seal_at_the_flush_bound_and_number_envelopes_per_destination() {
        let mut b = Batches::new(&config());
        let frame = bytes::Bytes::from(vec![b'x'; 1000]);
        for _ in 0..100 {
            b.add(
                1,
                Addressed {
                    to: wire::Dest::AllShards,
                    msg: PeerMsg::Broadcast {
                        frame: frame.clone(),
                        except: None,
                    },
                },
            );
        }
        assert_eq!(b.ready.len(), 1, "sealed once past 64 KiB");
        let mut pipe = redis::pipe();
        assert_eq!(b.flush_into(&mut pipe), 100);
        assert_eq!(pipe.len(), 2);
        assert_eq!(b.seq[1], 2);
        assert_eq!(b.seq[0], 0);
    }
}
