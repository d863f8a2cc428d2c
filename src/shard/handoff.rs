//! Bodies walking into another host's rooms (DESIGN §1 "Cross-host"): a
//! two-step exchange, transfer then acknowledgement. The source keeps the
//! body frozen until the destination's `ArriveAck`; the destination takes a
//! body in once (a second copy of the same arrival is acknowledged, not
//! added). A body is never in two places: it comes back to the source only
//! when the destination refused it or died, or — after
//! [`HANDOFF_GIVE_UP_MS`] of silence from a live host — together with a
//! cancellation that removes it there if it arrived after all.

use std::time::{Duration, Instant};

use super::msg::Msg;
use super::session::Phase;
use super::{SessionId, Shard, ShardAddr};
use crate::game::body::{Arrival, Body};
use crate::game::command::BodyCommand;
use crate::protocol::encode::{self, fail};
use crate::protocol::MsgId;
use crate::world::RoomIdx;

/// How long a body waits, frozen, for a live host's acknowledgement before
/// it is taken back (and the arrival cancelled there). The bridge resends
/// what Redis lost for far shorter than this, so it is reached only when a
/// host is alive but cut off for this long.
pub const HANDOFF_GIVE_UP_MS: u64 = 60_000;

/// A body sent to another host and not yet acknowledged.
pub(super) struct Transfer {
    body: Body,
    /// The room it left, where it goes back if need be.
    from: RoomIdx,
    /// The owner it went to, the room there and how it came in.
    to: ShardAddr,
    room: RoomIdx,
    how: Arrival,
    since: Instant,
    /// The player was told that the way is slow.
    told: bool,
    /// The walk's id and the ticket its answer owes another host: if the
    /// body comes back, the reply that says so answers the walk.
    id: Option<MsgId>,
    ticket: u32,
}

impl Shard {
    /// Hands `body` to `owner`, on another host, and keeps it frozen here.
    pub(super) fn hand_off(
        &mut self,
        body: Body,
        room: RoomIdx,
        how: Arrival,
        id: Option<MsgId>,
        from: RoomIdx,
        owner: ShardAddr,
    ) {
        let sid = body.sid;
        self.transfers.insert(
            sid,
            Transfer {
                body: body.clone(),
                from,
                to: owner,
                room,
                how,
                since: Instant::now(),
                told: false,
                id,
                ticket: self.router.owed_ticket(sid),
            },
        );
        let arrive = Msg::Arrive {
            body,
            room,
            how,
            id,
            ack_to: Some(self.addr()),
            ticket: 0,
        };
        if !self.router.post_to(owner, arrive) {
            self.take_back(
                sid,
                "The way to that land is closed for now; you stay where you were.",
            );
        }
    }

    /// A body arrives. One handed over from another host is acknowledged:
    /// taken in once (a repeat is acknowledged again, not added), or refused
    /// when this shard does not own the room.
    pub(super) fn on_arrive(
        &mut self,
        body: Body,
        room: RoomIdx,
        how: Arrival,
        id: Option<MsgId>,
        ack_to: Option<ShardAddr>,
    ) {
        let sid = body.sid;
        // A room index from another host is checked here: only this host's
        // world knows how many rooms it has (game/wire.rs).
        let ok =
            (room as usize) < self.world.rooms.len() && self.placement.owner(room) == self.addr();
        let Some(source) = ack_to else {
            if !ok {
                tracing::warn!(
                    room,
                    "an arrival for a room this shard does not own was dropped"
                );
                return;
            }
            return self.play(|owner, fx| owner.arrive(fx, body, room, how, id));
        };
        if ok && !self.owner.holds(sid) {
            self.play(|owner, fx| owner.arrive(fx, body, room, how, id));
        }
        self.router.post_to(source, Msg::ArriveAck { sid, ok });
    }

    /// The destination's answer to a hand-off.
    pub(super) fn on_arrive_ack(&mut self, sid: SessionId, ok: bool) {
        if ok {
            self.transfers.remove(&sid);
        } else {
            self.take_back(
                sid,
                "That land would not take you in; you stay where you were.",
            );
        }
    }

    /// Puts a frozen body back in the room it left, and tells its player;
    /// the reply that shows the room again answers the walk (with its id,
    /// and its ticket when it came from another host).
    fn take_back(&mut self, sid: SessionId, why: &str) {
        let Some(t) = self.transfers.remove(&sid) else {
            return;
        };
        self.notice(sid, why);
        self.router.owe_answer(sid, t.ticket);
        let (body, from, id) = (t.body, t.from, t.id);
        self.play(|owner, fx| owner.arrive(fx, body, from, Arrival::Teleport, id));
    }

    /// Sends the frozen body of `sid` to its destination again, with the
    /// walk's ticket; it stays frozen until acknowledged.
    fn hand_again(&mut self, sid: SessionId) {
        let Some(t) = self.transfers.get(&sid) else {
            return;
        };
        let arrive = Msg::Arrive {
            body: t.body.clone(),
            room: t.room,
            how: t.how,
            id: t.id,
            ack_to: Some(self.addr()),
            ticket: 0,
        };
        let (to, ticket) = (t.to, t.ticket);
        self.router.owe_answer(sid, ticket);
        if !self.router.post_to(to, arrive) {
            self.take_back(
                sid,
                "The way to that land is closed for now; you stay where you were.",
            );
        }
    }

    /// A system line for the player of `sid`, wherever their connection is.
    fn notice(&mut self, sid: SessionId, text: &str) {
        let frame = encode::event("system", "", "", text);
        self.router.post_to(
            sid.addr(),
            Msg::Frame {
                sid,
                frame,
                done: false,
            },
        );
    }

    /// A command for a body that is on its way to another host: answered
    /// here, since the body is in neither place yet. False when `sid` has
    /// no such body.
    pub(super) fn answer_in_transit(&mut self, sid: SessionId, id: Option<MsgId>) -> bool {
        // Checked on every command an owner runs: no lookup while nothing
        // is in transit (always, on a host that runs alone).
        if self.transfers.is_empty() || !self.transfers.contains_key(&sid) {
            return false;
        }
        self.refuse(
            sid,
            id,
            "You are on your way to another host's land; a moment.",
        );
        true
    }

    /// Answers the command of `sid` with `unreachable` and `text`.
    fn refuse(&mut self, sid: SessionId, id: Option<MsgId>, text: &str) {
        let frame = fail(id.as_ref(), "unreachable", text);
        self.router.post_to(
            sid.addr(),
            Msg::Frame {
                sid,
                frame,
                done: true,
            },
        );
    }

    /// A walk or `goto` into the land of a host that cannot be reached now
    /// is refused before the body moves: answered here, true when it was.
    pub(super) fn refuse_unreachable_walk(
        &mut self,
        sid: SessionId,
        id: Option<MsgId>,
        cmd: &BodyCommand,
    ) -> bool {
        if !matches!(cmd, BodyCommand::Go(_) | BodyCommand::Goto(_)) || !self.router_has_bridge() {
            return false;
        }
        let Some(dest) = self.owner.destination(sid, cmd) else {
            return false;
        };
        let host = self.placement.owner(dest).host;
        if self.reachable(host) {
            return false;
        }
        self.refuse(
            sid,
            id,
            "That way lies the land of a host that cannot be reached now; try again shortly.",
        );
        true
    }

    /// Hand-offs waiting too long: their players are told once; one to a
    /// host that died, or silent past [`HANDOFF_GIVE_UP_MS`], is taken back.
    pub(super) fn sweep_transfers(&mut self) {
        if self.transfers.is_empty() {
            return;
        }
        let slow = Duration::from_millis(self.config.cluster.remote_timeout_ms);
        let give_up = Duration::from_millis(HANDOFF_GIVE_UP_MS);
        let mut tell = Vec::new();
        let mut back = Vec::new();
        for (sid, t) in self.transfers.iter_mut() {
            let waited = t.since.elapsed();
            if waited > give_up {
                back.push((*sid, t.to));
            } else if waited > slow && !t.told {
                t.told = true;
                tell.push(*sid);
            }
        }
        for sid in tell {
            self.notice(
                sid,
                "The way is slow: the host of that land has not answered yet. You will arrive when it does.",
            );
        }
        for (sid, to) in back {
            // If the body did arrive after all, this removes it there: every
            // shard of that host is asked, since only it knows which one
            // owns the room.
            let every = ShardAddr::new(to.host, ShardAddr::EVERY_SHARD);
            self.router
                .post_to(every, Msg::Depart { sid, notify: None });
            self.take_back(sid, "The way stayed closed; you are back where you were.");
        }
    }

    /// Another host died or restarted (or this host was counted dead by the
    /// others and started a new run): bodies handed to it come back; bodies
    /// held here for its players leave; this shard's players whose body
    /// stood in its land are put back in this host's start room, and so are
    /// the logins whose body went there and was not yet taken in (when it
    /// died).
    ///
    /// A body handed to a host that `restarted` is handed again to its new
    /// run instead: one sent just after the restart, before this host heard
    /// of it, reached the new run, which took it in and answers for it — to
    /// take it back here would leave it in two places. The new run takes in
    /// a second copy once, and acknowledges it again; one lost with the old
    /// run arrives now.
    pub(super) fn host_turned(&mut self, host: u16, restarted: bool) {
        self.give_up_on(host, restarted);
        let lost: Vec<SessionId> = self
            .transfers
            .iter()
            .filter(|(_, t)| t.to.host == host)
            .map(|(sid, _)| *sid)
            .collect();
        for sid in lost {
            if restarted {
                self.hand_again(sid);
                continue;
            }
            self.take_back(
                sid,
                "The host of that land stopped; you stay where you were.",
            );
        }
        for sid in self.owner.bodies_of_host(host) {
            self.play(|owner, fx| owner.depart(fx, sid, None));
        }
        if !restarted {
            self.wake_logins_sent_to(host);
        }
        self.recall_from(host);
    }

    /// This shard's players whose body was in `host`'s land get a new body
    /// in this host's start room: a guest with nothing, a registered player
    /// with the inventory of their last save, read from their home host
    /// (this one or another live one; when the home host is the one that
    /// died, what it kept is out of reach: they start with nothing, and that
    /// body is never saved, so that their next login once the home host is
    /// back brings their last save back whole).
    fn recall_from(&mut self, host: u16) {
        let mut recalled = Vec::new();
        for (slot, session) in self.sessions.iter_mut() {
            let gone = session.body_at.is_some_and(|at| at.host == host);
            if gone && matches!(session.phase, Phase::Playing | Phase::Detached) {
                session.body_at = None;
                recalled.push((
                    slot,
                    session.gen,
                    session.name.clone(),
                    session.name_key.clone(),
                    session.account,
                ));
            }
        }
        for (slot, gen, name, key, account) in recalled {
            let sid = SessionId::new(self.addr(), slot, gen);
            self.notice(
                sid,
                "The land you stood in is gone (its host stopped, or the link between the \
                 hosts was cut for too long). You wake up at the start.",
            );
            if !account || key.is_empty() {
                self.wake_at_start(sid, name, false, Vec::new());
                continue;
            }
            self.load_account_anywhere(
                &key,
                Box::new(move |sh: &mut Shard, loaded| {
                    let (saved, inventory) = match loaded {
                        Ok(Some(record)) => (true, record.inventory),
                        Ok(None) => (true, Vec::new()),
                        Err(e) => {
                            tracing::warn!(
                                player = %name,
                                error = %e,
                                "cluster: a recalled player's last save is out of reach; they wake with nothing"
                            );
                            sh.notice(
                                sid,
                                "What you carried is kept by a host that cannot be reached now; \
                                 it comes back at your next login once that host is back. Until \
                                 then you play as a visitor: nothing you pick up is kept.",
                            );
                            // Not saved: its empty hands would overwrite the
                            // last save, which the next login is to bring back.
                            (false, Vec::new())
                        }
                    };
                    sh.wake_at_start(sid, name, saved, inventory);
                }),
            );
        }
    }

    /// Gives a recalled player (still here, and still without a body) a body
    /// in this host's start room; `saved`: whether the body's state is saved
    /// as the account's (false for guests, and for a player whose last save
    /// could not be read).
    fn wake_at_start(
        &mut self,
        sid: SessionId,
        name: Box<str>,
        saved: bool,
        inventory: Vec<String>,
    ) {
        let still = self
            .sessions
            .get_mut(sid.slot(), sid.gen())
            .is_some_and(|s| {
                s.body_at.is_none() && matches!(s.phase, Phase::Playing | Phase::Detached)
            });
        if !still {
            return;
        }
        let start = self.world.start;
        let body = Body {
            sid,
            name,
            inventory,
            account: saved,
        };
        let owner = self.placement.owner(start);
        self.router.post_to(
            owner,
            Msg::Arrive {
                body,
                room: start,
                how: Arrival::Teleport,
                id: None,
                ack_to: None,
                ticket: 0,
            },
        );
    }
}
