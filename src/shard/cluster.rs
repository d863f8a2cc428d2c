//! A shard as part of a cluster of hosts: where a name is kept (its home
//! host), whether other hosts can be reached, and what the shard learns of
//! them from the bridge (their players for `who`, and their deaths).

use std::sync::Arc;

use super::directory;
use super::msg::Msg;
use super::session::Phase;
use super::{SessionId, Shard, ShardAddr};
use crate::bridge::{Outbound, PeerHost};
use crate::game::wire::{Addressed, Dest, PeerMsg};
use crate::metrics::stats::BridgeFacts;
use crate::protocol::encode::fail;
use crate::protocol::MsgId;
use bytes::Bytes;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The home host of a lower-case name: the one that keeps it in the
/// directory (and, in time, its account). A stable hash over the hosts.
pub fn home_host(key: &str, hosts: u16) -> u16 {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (h % u64::from(hosts.max(1))) as u16
}

/// What a player standing in another host's land is told when the bridge
/// goes down, and when it is back.
pub const LINK_DOWN: &str = "The link to the host that keeps the land you stand in is down: \
what you do here fails until it is back. Tells and who still reach the players of this host.";
pub const LINK_BACK: &str = "The link to the host that keeps the land you stand in is back.";

/// How often a shard looks for cross-host waits that are over (commands
/// owed an answer, bodies on their way): often enough that the answer
/// `unreachable` keeps to `remote_timeout_ms`, where the once-a-second sweep
/// let it come up to a second late.
pub(super) const REMOTE_CHECK_MS: u64 = 50;

/// What a session here waits for from another host.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum WaitFor {
    /// The answer to a command for its body (which may move it).
    Body,
    /// The answer to a `tell`.
    Tell,
    /// A login's name claim, answered by `Claimed`.
    Claim,
}

/// A command of a session here that went to another host, owed an answer.
pub(super) struct RemoteWait {
    /// When it is answered `unreachable` if no answer came.
    deadline: Instant,
    id: Option<MsgId>,
    /// Its number, which its answer carries back (`Msg::Answer`).
    ticket: u32,
    what: WaitFor,
    /// The host that is to answer.
    host: u16,
    /// A name claim that takes the name over from a session that holds it.
    takeover: bool,
}

/// A body command answered `unreachable` before its own answer came: the
/// body may have moved meanwhile, so where it stands is not known until
/// that answer (ticket `ticket`) arrives, after the `Entered` that moved it.
pub(super) struct Doubt {
    ticket: u32,
    since: Instant,
    host: u16,
}

/// What a player is told when a command for their body comes while the
/// answer to the one before is still on its way.
pub const IN_DOUBT: &str =
    "Your last command is still on its way to another host; try again in a moment.";

impl Shard {
    /// The directory shard that keeps `key`: on its home host. The shard
    /// number is meaningful only on this host; another host routes a name
    /// by its own shards.
    pub(super) fn keeper_of(&self, key: &str) -> ShardAddr {
        let hosts = self.config.cluster.hosts.len().max(1) as u16;
        let home = if self.config.is_cluster() {
            home_host(key, hosts)
        } else {
            self.host
        };
        if home == self.host {
            ShardAddr::new(home, directory::shard_of(key, self.router.shards()))
        } else {
            ShardAddr::new(home, 0)
        }
    }

    /// Whether this host has a bridge to others.
    pub fn router_has_bridge(&self) -> bool {
        self.router.bridge().is_some()
    }

    /// Whether messages to `host` can be expected to arrive: this host, or
    /// another whose heartbeat is live while the bridge is up.
    pub(super) fn reachable(&self, host: u16) -> bool {
        host == self.host || (self.bridge_up() && self.peers.iter().any(|p| p.host == host))
    }

    /// Notes that `sid`'s command went to another host: if no answer comes
    /// within `remote_timeout_ms`, the sweep answers `unreachable`. Returns
    /// the command's ticket, never 0, for its answer to carry back.
    pub(super) fn wait_on_host(
        &mut self,
        sid: SessionId,
        id: Option<MsgId>,
        host: u16,
        what: WaitFor,
    ) -> u32 {
        // Checked every `REMOTE_CHECK_MS`: due that much early, the answer
        // comes within `remote_timeout_ms`, as documented.
        let wait_ms = self
            .config
            .cluster
            .remote_timeout_ms
            .saturating_sub(REMOTE_CHECK_MS)
            .max(1);
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        self.tickets = self.tickets.checked_add(1).unwrap_or(1);
        let ticket = self.tickets;
        self.remote_waits.insert(
            sid,
            RemoteWait {
                deadline,
                id,
                ticket,
                what,
                host,
                takeover: false,
            },
        );
        ticket
    }

    /// Notes that a login of `sid` waits on a name claim whose answer may
    /// come from another host: the directory's there, or, for a takeover,
    /// the go-ahead of the host that keeps the account's old body (after
    /// that body is saved, so given `login_timeout_ms`). If that host dies
    /// first, no answer ever comes: the wait ends the login
    /// (`expire_remote_waits`), where the session would be held forever.
    pub(super) fn wait_on_claim(&mut self, sid: SessionId, takeover: bool, host: u16) {
        // Half the login's deadline (at least `remote_timeout_ms`): a claim
        // is answered within a few ms, but the first one after the other
        // host restarted waits for its envelopes to be sent again.
        let login_ms = self.config.limits.login_timeout_ms;
        let wait_ms = if takeover {
            login_ms
        } else {
            self.config.cluster.remote_timeout_ms.max(login_ms / 2)
        };
        let deadline =
            Instant::now() + Duration::from_millis(wait_ms.saturating_sub(REMOTE_CHECK_MS).max(1));
        self.remote_waits.insert(
            sid,
            RemoteWait {
                deadline,
                id: None,
                ticket: 0,
                what: WaitFor::Claim,
                host,
                takeover,
            },
        );
    }

    /// Claims the name of `sid`, a session logging in, again of the host
    /// that keeps it (its wait goes on).
    fn claim_again(&mut self, sid: SessionId) {
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        if session.phase != Phase::LoggingIn || session.name_key.is_empty() {
            return;
        }
        let key = session.name_key.clone();
        let name = session.name.clone();
        let keeper = self.keeper_of(&key);
        self.router.post_to(
            keeper,
            Msg::Claim {
                key,
                sid,
                takeover: false,
                run: 0,
                name,
            },
        );
    }

    /// The name claim of `sid` has its answer: its wait is over.
    pub(super) fn claim_answered(&mut self, sid: SessionId) {
        if self
            .remote_waits
            .get(&sid)
            .is_some_and(|w| w.what == WaitFor::Claim)
        {
            self.remote_waits.remove(&sid);
        }
    }

    /// A login whose name claim was not answered in time: its session is
    /// told and closed (it could not tell a late answer to this claim from
    /// the answer to its next), or, its connection gone, let go.
    fn claim_unanswered(&mut self, sid: SessionId) {
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        match session.phase {
            Phase::LoggingIn => {
                self.fail_login(
                    sid,
                    "unreachable",
                    "The host that keeps this name did not answer in time; connect again shortly.",
                );
                if let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) {
                    session.request_close(crate::protocol::close::UNAVAILABLE);
                }
            }
            Phase::Zombie => self.bury(sid),
            _ => {}
        }
    }

    /// The answer to the cross-host command of `sid` numbered `ticket`.
    /// If that command was answered `unreachable` already (its answer was
    /// held on the way back), it is shown all the same — it says what was
    /// done — but it completes nothing: the command in flight now is
    /// another, and its own answer is still to come.
    pub(super) fn on_answer(&mut self, sid: SessionId, frame: Bytes, ticket: u32) {
        let awaited = self
            .remote_waits
            .get(&sid)
            .is_some_and(|w| w.ticket == ticket);
        if awaited {
            self.deliver(sid, frame);
            return self.complete(sid);
        }
        self.deliver(sid, crate::protocol::encode::marked_late(&frame));
        self.counters.stats.late_answers += 1;
        if self.in_doubt.get(&sid).is_some_and(|d| d.ticket == ticket) {
            // Where the body stands is known again (an `Entered` that moved
            // it came first, on the same way).
            self.settle(sid);
        }
    }

    /// Whether the body of `sid` is known to stand where its session thinks.
    pub(super) fn body_settled(&self, sid: SessionId) -> bool {
        self.in_doubt.is_empty() || !self.in_doubt.contains_key(&sid)
    }

    /// The doubt over where the body of `sid` stands is over (its answer
    /// came, its host died, or it was waited for too long). A session whose
    /// connection ended meanwhile lets its body go now, where it stands.
    fn settle(&mut self, sid: SessionId) {
        self.in_doubt.remove(&sid);
        if self
            .sessions
            .get_mut(sid.slot(), sid.gen())
            .is_some_and(|s| s.phase == Phase::Zombie && s.busy_since.is_none())
        {
            self.bury(sid);
        }
    }

    /// Once a second: doubts older than any answer can be (lost with a
    /// queue that overflowed) are given up.
    pub(super) fn expire_doubts(&mut self) {
        if self.in_doubt.is_empty() {
            return;
        }
        let max = Duration::from_millis(self.config.cluster.remote_timeout_ms.saturating_mul(4));
        let old: Vec<SessionId> = self
            .in_doubt
            .iter()
            .filter(|(_, d)| d.since.elapsed() > max)
            .map(|(sid, _)| *sid)
            .collect();
        for sid in old {
            self.settle(sid);
        }
    }

    /// `host` died, or started a new run (`restarted`): what this shard's
    /// sessions wait for from it is answered now (it will never come), and
    /// their doubts about it are over.
    ///
    /// Except name claims to a host that restarted: a claim is asked of the
    /// host, not of what its old run held, and one sent just after the
    /// restart, before this host heard of it, reached the new run, which
    /// answers it. So they wait on; one that may have been lost with the old
    /// run is asked again (a second claim by the same session is granted
    /// again, and its second answer completes nothing). A takeover is not
    /// asked twice (its second grant could come before the old body was
    /// saved): it waits for its deadline.
    pub(super) fn give_up_on(&mut self, host: u16, restarted: bool) {
        let waiting: Vec<(SessionId, Option<MsgId>, WaitFor, bool)> = self
            .remote_waits
            .iter()
            .filter(|(_, w)| w.host == host)
            .map(|(sid, w)| (*sid, w.id, w.what, w.takeover))
            .collect();
        for (sid, id, what, takeover) in waiting {
            if what == WaitFor::Claim && restarted {
                if !takeover {
                    self.claim_again(sid);
                }
                continue;
            }
            self.remote_waits.remove(&sid);
            if what == WaitFor::Claim {
                self.claim_unanswered(sid);
                continue;
            }
            let frame = fail(
                id.as_ref(),
                "unreachable",
                "The host that was to answer stopped (or was cut off).",
            );
            self.deliver(sid, frame);
            self.complete(sid);
        }
        let doubts: Vec<SessionId> = self
            .in_doubt
            .iter()
            .filter(|(_, d)| d.host == host)
            .map(|(sid, _)| *sid)
            .collect();
        for sid in doubts {
            self.settle(sid);
        }
    }

    /// Answers the commands whose other host did not answer in time. An
    /// answer that comes later still is shown as it comes, and completes
    /// nothing (`on_answer`).
    pub(super) fn expire_remote_waits(&mut self) {
        if self.remote_waits.is_empty() {
            return;
        }
        let now = Instant::now();
        let late: Vec<(SessionId, Option<MsgId>, WaitFor, u32, u16)> = self
            .remote_waits
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(sid, w)| (*sid, w.id, w.what, w.ticket, w.host))
            .collect();
        for (sid, id, what, ticket, host) in late {
            self.remote_waits.remove(&sid);
            match what {
                WaitFor::Claim => {
                    self.claim_unanswered(sid);
                    continue;
                }
                WaitFor::Body => {
                    let since = Instant::now();
                    self.in_doubt.insert(
                        sid,
                        Doubt {
                            ticket,
                            since,
                            host,
                        },
                    );
                }
                WaitFor::Tell => {}
            }
            let frame = fail(
                id.as_ref(),
                "unreachable",
                "Another host did not answer in time; try again shortly.",
            );
            self.deliver(sid, frame);
            self.complete(sid);
        }
    }

    /// Once a second: when the bridge goes down, the players of this shard
    /// whose body stands in another host's land are told that what they do
    /// there fails until it is back, and told again when it is.
    pub(super) fn watch_bridge(&mut self) {
        if !self.router_has_bridge() {
            return;
        }
        let down = !self.bridge_up();
        if down == self.link_down_told {
            return;
        }
        self.link_down_told = down;
        let text = if down { LINK_DOWN } else { LINK_BACK };
        let frame = crate::protocol::encode::event("system", "", "", text);
        let (host, me) = (self.host, self.addr());
        let away: Vec<SessionId> = self
            .sessions
            .iter_mut()
            .filter(|(_, s)| {
                s.phase == Phase::Playing && s.body_at.is_some_and(|owner| owner.host != host)
            })
            .map(|(slot, s)| SessionId::new(me, slot, s.gen))
            .collect();
        for sid in away {
            self.deliver(sid, frame.clone());
        }
    }

    /// Whether other hosts can be reached now (always false alone).
    pub(super) fn bridge_up(&self) -> bool {
        self.router.bridge().is_some_and(|b| b.is_up())
    }

    /// Sends a shout to every other host (their shards fan it out).
    pub(super) fn shout_to_other_hosts(&mut self, frame: Bytes) {
        if let Some(bridge) = self.router.bridge() {
            bridge.send(Outbound::Global(Addressed {
                to: Dest::AllShards,
                msg: PeerMsg::Broadcast {
                    frame,
                    except: None,
                },
            }));
        }
    }

    /// Tells the bridge this shard's players, for the heartbeat that `who`
    /// on other hosts reads.
    pub(super) fn send_roster(&mut self) {
        if self.router.bridge().is_none() {
            return;
        }
        let (names, total) = self.local_names(crate::bridge::ROSTER_NAMES_MAX);
        if let Some(bridge) = self.router.bridge() {
            bridge.send(Outbound::Roster {
                shard: self.id,
                names,
                total,
            });
        }
    }

    /// The bridge's news of other hosts: their players, and which joined,
    /// died or restarted. Names held here by sessions of a host that turned
    /// are let go (those sessions are gone), except what its live run has
    /// claimed already; names this shard's players hold on a host that
    /// turned are claimed there again (what it kept is lost).
    ///
    /// When the other hosts counted this one dead (its link was cut for
    /// longer than a heartbeat's life), the bridge starts a new run of this
    /// host and names every other host here as turned: from then on both
    /// sides have let go of what they kept for each other.
    pub(super) fn on_peers(&mut self, live: Arc<Vec<PeerHost>>, turned: Vec<u16>) {
        let before = std::mem::replace(&mut self.peers, live);
        self.router
            .set_hosts_live(self.peers.iter().map(|p| p.host));
        let run = |peers: &[PeerHost], host: u16| {
            peers.iter().find(|p| p.host == host).map(|p| p.boot_epoch)
        };
        for host in turned {
            // The other host itself started a new run (not: died, or this
            // host was counted dead and started anew, the others' runs going
            // on).
            let restarted = run(&self.peers, host).is_some_and(|r| run(&before, host) != Some(r));
            self.host_turned(host, restarted);
            let live_run = self
                .peers
                .iter()
                .find(|p| p.host == host)
                .map(|p| p.boot_epoch);
            let forgotten = self.directory.forget_host(host, live_run);
            if forgotten > 0 {
                tracing::warn!(
                    host,
                    names = forgotten,
                    "cluster: a host died or restarted; its players' names are free again"
                );
            }
            if !self.reachable(host) {
                continue;
            }
            let mut claims = Vec::new();
            for (slot, session) in self.sessions.iter_mut() {
                if matches!(session.phase, Phase::Playing | Phase::Detached)
                    && !session.name_key.is_empty()
                {
                    claims.push((
                        slot,
                        session.gen,
                        session.name_key.clone(),
                        session.name.clone(),
                    ));
                }
            }
            for (slot, gen, key, name) in claims {
                let keeper = self.keeper_of(&key);
                if keeper.host == host {
                    let sid = SessionId::new(self.addr(), slot, gen);
                    self.router.post_to(
                        keeper,
                        Msg::Claim {
                            key,
                            sid,
                            takeover: false,
                            run: 0,
                            name,
                        },
                    );
                }
            }
        }
    }

    /// The bridge's state and counters, for `/healthz` and `/metrics`.
    pub fn bridge_facts(&self) -> Option<BridgeFacts> {
        let bridge = self.router.bridge()?;
        let s = bridge.stats();
        let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
        let state = s.state();
        Some(BridgeFacts {
            state: state.as_str(),
            state_gauge: state.as_gauge(),
            hosts_live: self
                .peers
                .iter()
                .filter_map(|p| self.config.cluster.hosts.get(usize::from(p.host)))
                .map(|h| h.id.clone())
                .collect(),
            publishes: n(&s.publishes),
            messages_published: n(&s.messages_published),
            round_trips: n(&s.round_trips),
            envelopes_received: n(&s.envelopes_received),
            messages_received: n(&s.messages_received),
            envelopes_refused: n(&s.envelopes_refused),
            sequence_gaps: n(&s.sequence_gaps),
            reconnects: n(&s.reconnects),
            wedged: n(&s.wedged),
            reborn: n(&s.reborn),
            dropped: n(&s.dropped),
            queue_depth: bridge.queue_depth() as u64,
            resent: n(&s.resent),
            lost: n(&s.lost),
            unacknowledged: n(&s.unacknowledged),
            saves_waiting: bridge.saves().len() as u64,
            hop_us: s.hop_summary(),
        })
    }

    /// Players on other hosts: the first of their names, and how many.
    pub(super) fn other_hosts_players(&self) -> (Vec<Box<str>>, usize) {
        let total = self.peers.iter().map(|p| p.players).sum();
        let names = self
            .peers
            .iter()
            .flat_map(|p| p.names.iter().cloned())
            .collect();
        (names, total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_spread_over_hosts_stably() {
        assert_eq!(home_host("alice", 2), home_host("alice", 2));
        assert_eq!(home_host("alice", 1), 0);
        let used: std::collections::HashSet<u16> =
            (0..100).map(|i| home_host(&format!("p{i}"), 3)).collect();
        assert_eq!(used.len(), 3);
    }
}
