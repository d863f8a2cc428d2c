//! Shards and the bridge between hosts: which in-process messages can cross
//! (and their wire form), and how what arrives from another host finds its
//! shard here.
//!
//! A host routes what it receives by the message's own keys — the room's
//! owner, the name's directory shard, the session's shard — because only it
//! knows its shards: the sender names the host, and `Dest` only says
//! whether a message is for one shard or fanned out to all of them.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::directory;
use super::mailbox::Mailbox;
use super::msg::Msg;
use super::placement::Placement;
use super::ShardAddr;
use crate::bridge::{wall_ms, PeerHost, Sink};
use crate::game::wire::{Addressed, Dest, Envelope, PeerMsg};
use crate::protocol::names::name_key;

/// The wire form of `msg` for shard `shard` of another host, or `msg` back
/// when it cannot leave this host (closures, gathers, handed-over sockets,
/// shutdown). For a message kept by a name or a room (a claim, a tell, an
/// arrival), `shard` is ignored by the receiver, which routes by the key.
pub fn to_peer(msg: Msg, shard: u16) -> Result<Addressed, Msg> {
    let to = if shard == ShardAddr::EVERY_SHARD {
        Dest::AllShards
    } else {
        Dest::Shard(shard)
    };
    let one = |msg| Ok(Addressed { to, msg });
    let all = |msg| {
        Ok(Addressed {
            to: Dest::AllShards,
            msg,
        })
    };
    match msg {
        Msg::Arrive {
            body,
            room,
            how,
            id,
            ack_to,
            ticket,
        } => one(PeerMsg::Arrive {
            body,
            room,
            how,
            id,
            ack_to,
            ticket,
        }),
        Msg::ArriveAck { sid, ok } => one(PeerMsg::ArriveAck { sid, ok }),
        Msg::Cmd {
            sid,
            id,
            cmd,
            sent,
            ticket,
        } => one(PeerMsg::Cmd {
            sid,
            id,
            cmd,
            posted_ms: wall_ms().saturating_sub(sent.elapsed().as_millis() as u64),
            ticket,
        }),
        Msg::Depart { sid, notify } => one(PeerMsg::Depart { sid, notify }),
        Msg::Entered { sid, room, owner } => one(PeerMsg::Entered { sid, room, owner }),
        Msg::Left { sid, room } => one(PeerMsg::Left { sid, room }),
        Msg::Frame { sid, frame, done } => one(PeerMsg::Frame {
            sid,
            frame,
            done,
            ticket: 0,
        }),
        Msg::Answer { sid, frame, ticket } => one(PeerMsg::Frame {
            sid,
            frame,
            done: true,
            ticket,
        }),
        Msg::Welcomed { sid, room_json } => one(PeerMsg::Welcomed { sid, room_json }),
        Msg::RoomEvent {
            room,
            frame,
            except,
        } => all(PeerMsg::RoomEvent {
            room,
            frame,
            except,
        }),
        Msg::Broadcast { frame, except } => all(PeerMsg::Broadcast { frame, except }),
        Msg::QuitDone { sid, frame } => one(PeerMsg::QuitDone { sid, frame }),
        Msg::Claim {
            key,
            sid,
            takeover,
            name,
            ..
        } => one(PeerMsg::Claim {
            key,
            sid,
            takeover,
            name,
        }),
        Msg::Spell { key, sid, name } => one(PeerMsg::Spell { key, sid, name }),
        Msg::Release { key, sid } => one(PeerMsg::Release { key, sid }),
        Msg::Tell {
            from,
            from_name,
            id,
            to,
            text,
            ticket,
        } => one(PeerMsg::Tell {
            from,
            from_name,
            id,
            to,
            text,
            posted_ms: wall_ms(),
            ticket,
        }),
        Msg::Claimed { sid, ok } => one(PeerMsg::Claimed { sid, ok }),
        Msg::TakenOver { old, new } => one(PeerMsg::TakenOver { old, new }),
        Msg::ResumeLookup { key, asker } => one(PeerMsg::ResumeLookup { key, asker }),
        Msg::ResumeTarget { asker, holder } => one(PeerMsg::ResumeTarget { asker, holder }),
        Msg::LinkDead { sid, dead } => one(PeerMsg::LinkDead { sid, dead }),
        Msg::AccountAsk { ask, from, key, op } => one(PeerMsg::AccountAsk { ask, from, key, op }),
        Msg::AccountReply { ask, result } => one(PeerMsg::AccountReply { ask, result }),
        Msg::SavePlayer {
            key,
            room,
            inventory,
        } => one(PeerMsg::SavePlayer {
            key,
            room,
            inventory,
        }),
        other => Err(other),
    }
}

/// Which of this host's shards takes `a`, and the message as a shard takes
/// it; `None` for one this host cannot place (a room it does not own, a
/// shard it does not have). `u16::MAX` stands for every shard.
/// `run` is the boot epoch of the host that sent it.
fn place(
    a: Addressed,
    placement: &Placement,
    me: u16,
    shards: u16,
    run: u64,
) -> Option<(u16, Msg)> {
    let named = match a.to {
        Dest::Shard(shard) if shard < shards => shard,
        Dest::Shard(_) => return None,
        Dest::AllShards => EVERY_SHARD,
    };
    let keeper = |key: &str| directory::shard_of(key, shards);
    Some(match a.msg {
        PeerMsg::Arrive {
            body,
            room,
            how,
            id,
            ack_to,
            ticket,
        } => {
            // A room this host does not own goes to shard 0, which refuses
            // it (acknowledging `ok: false`, so the source takes it back).
            let owner = placement.owner(room);
            let shard = if owner.host == me { owner.shard } else { 0 };
            (
                shard,
                Msg::Arrive {
                    body,
                    room,
                    how,
                    id,
                    ack_to,
                    ticket,
                },
            )
        }
        PeerMsg::ArriveAck { sid, ok } => (named, Msg::ArriveAck { sid, ok }),
        PeerMsg::Cmd {
            sid,
            id,
            cmd,
            ticket,
            ..
        } => (
            named,
            Msg::Cmd {
                sid,
                id,
                cmd,
                sent: Instant::now(),
                ticket,
            },
        ),
        PeerMsg::Depart { sid, notify } => (named, Msg::Depart { sid, notify }),
        PeerMsg::Entered { sid, room, owner } => (named, Msg::Entered { sid, room, owner }),
        PeerMsg::Left { sid, room } => (named, Msg::Left { sid, room }),
        PeerMsg::Frame {
            sid,
            frame,
            done: true,
            ticket,
        } if ticket != 0 => (named, Msg::Answer { sid, frame, ticket }),
        PeerMsg::Frame {
            sid, frame, done, ..
        } => (named, Msg::Frame { sid, frame, done }),
        PeerMsg::Welcomed { sid, room_json } => (named, Msg::Welcomed { sid, room_json }),
        PeerMsg::RoomEvent {
            room,
            frame,
            except,
        } => (
            named,
            Msg::RoomEvent {
                room,
                frame,
                except,
            },
        ),
        PeerMsg::Broadcast { frame, except } => (named, Msg::Broadcast { frame, except }),
        PeerMsg::QuitDone { sid, frame } => (named, Msg::QuitDone { sid, frame }),
        PeerMsg::Claim {
            key,
            sid,
            takeover,
            name,
        } => (
            keeper(&key),
            Msg::Claim {
                key,
                sid,
                takeover,
                run,
                name,
            },
        ),
        PeerMsg::Spell { key, sid, name } => (keeper(&key), Msg::Spell { key, sid, name }),
        PeerMsg::Release { key, sid } => (keeper(&key), Msg::Release { key, sid }),
        PeerMsg::Tell {
            from,
            from_name,
            id,
            to,
            text,
            ticket,
            ..
        } => (
            keeper(&name_key(&to)),
            Msg::Tell {
                from,
                from_name,
                id,
                to,
                text,
                ticket,
            },
        ),
        PeerMsg::Claimed { sid, ok } => (named, Msg::Claimed { sid, ok }),
        PeerMsg::TakenOver { old, new } => (named, Msg::TakenOver { old, new }),
        PeerMsg::ResumeLookup { key, asker } => (keeper(&key), Msg::ResumeLookup { key, asker }),
        PeerMsg::ResumeTarget { asker, holder } => (named, Msg::ResumeTarget { asker, holder }),
        PeerMsg::LinkDead { sid, dead } => (named, Msg::LinkDead { sid, dead }),
        PeerMsg::AccountAsk { ask, from, key, op } => {
            (keeper(&key), Msg::AccountAsk { ask, from, key, op })
        }
        PeerMsg::AccountReply { ask, result } => (named, Msg::AccountReply { ask, result }),
        PeerMsg::SavePlayer {
            key,
            room,
            inventory,
        } => (
            keeper(&key),
            Msg::SavePlayer {
                key,
                room,
                inventory,
            },
        ),
    })
}

/// `place`'s answer for a message fanned out to every shard.
const EVERY_SHARD: u16 = u16::MAX;

/// The shards' side of the bridge's deliveries: each message goes into the
/// mailbox of the shard that takes it (ringing its doorbell). Runs on the
/// subscriber thread, which may wait for room in a full inbox.
pub struct ClusterSink {
    pub me: u16,
    pub mailboxes: Vec<Mailbox>,
    pub placement: Arc<Placement>,
    /// A player's command (a `Cmd` or a `Tell`) this late is not carried
    /// out: half of `remote_timeout_ms`, by when the host that read it is
    /// about to answer its player `unreachable` (see [`Lateness`]).
    pub stale_ms: u64,
    pub lateness: Mutex<Lateness>,
}

impl ClusterSink {
    pub fn new(
        me: u16,
        mailboxes: Vec<Mailbox>,
        placement: Arc<Placement>,
        remote_timeout_ms: u64,
    ) -> ClusterSink {
        ClusterSink {
            me,
            mailboxes,
            placement,
            stale_ms: remote_timeout_ms / 2,
            lateness: Mutex::new(Lateness::default()),
        }
    }

    /// Whether `msg`, a player's command, is too late to carry out: its
    /// player was (or is about to be) answered `unreachable`, and doing it
    /// now would do what they were told failed. A stalled Redis holds
    /// commands and lets them all through at once when it answers again.
    fn stale(&self, msg: &PeerMsg, late_base_ms: i64) -> bool {
        let posted_ms = match msg {
            PeerMsg::Cmd { posted_ms, .. } | PeerMsg::Tell { posted_ms, .. } => *posted_ms,
            _ => return false,
        };
        late_base_ms.saturating_sub(posted_ms as i64) > self.stale_ms as i64
    }

    fn send(&self, shard: u16, msg: Msg) {
        if let Some(mailbox) = self.mailboxes.get(usize::from(shard)) {
            mailbox.send(msg);
        }
    }
}

impl Sink for ClusterSink {
    fn deliver(&self, env: Envelope) {
        let shards = self.mailboxes.len() as u16;
        let now_ms = wall_ms();
        let offset = self
            .lateness
            .lock()
            .map(|mut l| l.offset(env.source_host, now_ms, env.sent_ms, Instant::now()))
            .unwrap_or(0);
        // `now − offset − posted`: how late a command is.
        let late_base_ms = (now_ms as i64).saturating_sub(offset);
        for a in env.messages {
            if self.stale(&a.msg, late_base_ms) {
                tracing::debug!(
                    source = env.source_host,
                    "bridge: a player's command arrived after its answer was due; not carried out"
                );
                continue;
            }
            match place(a, &self.placement, self.me, shards, env.boot_epoch) {
                Some((EVERY_SHARD, msg)) => {
                    let Some(copies) = fan_out(msg, shards) else {
                        continue;
                    };
                    for (shard, copy) in copies.into_iter().enumerate() {
                        self.send(shard as u16, copy);
                    }
                }
                Some((shard, msg)) => self.send(shard, msg),
                None => tracing::warn!(
                    source = env.source_host,
                    "bridge: a message this host cannot place was dropped"
                ),
            }
        }
    }

    fn peers(&self, live: Vec<PeerHost>, turned: Vec<u16>) {
        let live = Arc::new(live);
        for shard in 0..self.mailboxes.len() as u16 {
            self.send(
                shard,
                Msg::Peers {
                    live: live.clone(),
                    turned: turned.clone(),
                },
            );
        }
    }
}

/// One copy of a fanned-out message per shard (frames are `Bytes`: the
/// copies share them). Room events, broadcasts and a hand-off's
/// cancellation (a `Depart` for a shard this host could not name) fan out.
fn fan_out(msg: Msg, shards: u16) -> Option<Vec<Msg>> {
    let copies = (0..shards)
        .map(|_| match &msg {
            Msg::RoomEvent {
                room,
                frame,
                except,
            } => Some(Msg::RoomEvent {
                room: *room,
                frame: frame.clone(),
                except: *except,
            }),
            Msg::Broadcast { frame, except } => Some(Msg::Broadcast {
                frame: frame.clone(),
                except: *except,
            }),
            // A hand-off's cancellation: only the shard holding the body acts.
            Msg::Depart { sid, notify } => Some(Msg::Depart {
                sid: *sid,
                notify: *notify,
            }),
            _ => None,
        })
        .collect::<Option<Vec<Msg>>>()?;
    Some(copies)
}

/// How long one window of [`Lateness`] lasts: short, so that a source's
/// clock stepped back (which makes everything it sends look late) costs at
/// most two windows of commands; long against the quickest envelopes' gaps.
const LATENESS_WINDOW: Duration = Duration::from_secs(5);

/// How late what another host sends arrives, without trusting the two
/// hosts' clocks to agree: for each source, the smallest `receive − sent`
/// seen over the last window or two is taken as the offset between the
/// clocks plus the quickest transit, and a command's lateness is
/// `receive − offset − posted`. That counts both the time a command waited
/// on its own host (before its envelope was sealed, e.g. behind a stalled
/// Redis) and the time its envelope took beyond the quickest one. The
/// windows let the offset follow a clock that is slewed or stepped.
#[derive(Default)]
pub struct Lateness {
    /// Per source host: (this window's minimum, the last window's, when
    /// this window began).
    hosts: Vec<(i64, i64, Option<Instant>)>,
}

impl Lateness {
    /// Takes one envelope's `receive − sent` into account and returns the
    /// offset to use for it.
    pub fn offset(&mut self, source: u16, received_ms: u64, sent_ms: u64, now: Instant) -> i64 {
        let source = usize::from(source);
        if self.hosts.len() <= source {
            self.hosts.resize(source + 1, (i64::MAX, i64::MAX, None));
        }
        let (cur, prev, began) = &mut self.hosts[source];
        match began {
            Some(at) if now.duration_since(*at) < LATENESS_WINDOW => {}
            Some(at) => {
                *prev = *cur;
                *cur = i64::MAX;
                *at = now;
            }
            None => *began = Some(now),
        }
        let seen = (received_ms as i64).saturating_sub(sent_ms as i64);
        *cur = (*cur).min(seen);
        (*cur).min(*prev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::addr::SessionId;
    use crate::world::World;

    #[test]
    fn lateness_needs_no_agreement_between_the_clocks() {
        let mut l = Lateness::default();
        let t0 = Instant::now();
        // The receiver's clock is 10 s ahead; envelopes take 1 ms or more.
        let skew: u64 = 10_000;
        assert_eq!(l.offset(1, 1_000 + skew + 1, 1_000, t0), 10_001);
        assert_eq!(l.offset(1, 2_000 + skew + 3, 2_000, t0), 10_001);
        // A command read at 2,500 by its host's clock, sealed at once, and
        // held 1.5 s by a stalled Redis: 1.5 s late, whatever the skew.
        let received = 4_000 + skew + 1;
        let offset = l.offset(1, received, 2_500, t0);
        assert_eq!(received as i64 - offset - 2_500, 1_500);
        // One read at 3,000 and sealed only at 4,000 (its host's publisher
        // was stuck behind the stall): 1 s late by the same reckoning.
        let offset = l.offset(1, 4_000 + skew + 1, 4_000, t0);
        assert_eq!((4_000 + skew + 1) as i64 - offset - 3_000, 1_000);
        // Another host has an offset of its own.
        assert_eq!(l.offset(0, 500, 700, t0), -200);
    }

    #[test]
    fn lateness_follows_a_clock_that_was_stepped() {
        let mut l = Lateness::default();
        let t0 = Instant::now();
        assert_eq!(l.offset(0, 10_005, 10_000, t0), 5);
        // The sender's clock is stepped 2 s back: for up to two windows the
        // old minimum holds, then the new one is taken.
        let later = t0 + LATENESS_WINDOW;
        assert_eq!(l.offset(0, 20_005, 18_000, later), 5);
        let later = later + LATENESS_WINDOW;
        assert_eq!(l.offset(0, 30_005, 28_000, later), 2_005);
    }

    fn tell(posted_ms: u64) -> PeerMsg {
        PeerMsg::Tell {
            from: SessionId::new(ShardAddr::new(1, 0), 1, 1),
            from_name: "amy".into(),
            id: None,
            to: "Bob".into(),
            text: "hi".into(),
            posted_ms,
            ticket: 1,
        }
    }

    #[test]
    fn only_a_players_command_past_half_the_remote_timeout_is_stale() {
        let world = World::generated(2, 2);
        let placement = Arc::new(Placement::single_host(&world, 1, 1));
        let sink = ClusterSink::new(0, Vec::new(), placement, 2_000);
        assert!(!sink.stale(&tell(9_000), 10_000));
        assert!(sink.stale(&tell(8_999), 10_000));
        let frame = PeerMsg::Broadcast {
            frame: bytes::Bytes::new(),
            except: None,
        };
        assert!(!sink.stale(&frame, u64::MAX as i64), "only commands");
    }

    fn sid() -> SessionId {
        SessionId::new(ShardAddr::new(0, 1), 7, 3)
    }

    #[test]
    fn a_message_for_every_shard_of_a_host_crosses_once_and_fans_out_there() {
        let depart = Msg::Depart {
            sid: sid(),
            notify: None,
        };
        let Ok(a) = to_peer(depart, ShardAddr::EVERY_SHARD) else {
            panic!("a Depart crosses");
        };
        assert_eq!(a.to, Dest::AllShards);
        let world = World::generated(2, 2);
        let placement = Placement::single_host(&world, 1, 3);
        let Some((EVERY_SHARD, msg)) = place(a, &placement, 1, 3, 0) else {
            panic!("placed on every shard");
        };
        let copies = fan_out(msg, 3).expect("a Depart fans out");
        assert_eq!(copies.len(), 3);
        assert!(copies
            .iter()
            .all(|m| matches!(m, Msg::Depart { sid: s, notify: None } if *s == sid())));
    }

    #[test]
    fn a_message_for_a_shard_this_host_does_not_have_is_not_placed() {
        let frame = Msg::Frame {
            sid: sid(),
            frame: bytes::Bytes::new(),
            done: true,
        };
        let Ok(a) = to_peer(frame, 9) else {
            panic!("a Frame crosses");
        };
        let world = World::generated(2, 2);
        let placement = Placement::single_host(&world, 1, 3);
        assert!(place(a, &placement, 1, 3, 0).is_none());
    }

    #[test]
    fn an_answer_crosses_with_its_ticket_and_a_plain_reply_without() {
        let world = World::generated(2, 2);
        let placement = Placement::single_host(&world, 1, 3);
        let answer = Msg::Answer {
            sid: sid(),
            frame: bytes::Bytes::from_static(b"{}"),
            ticket: 9,
        };
        let a = to_peer(answer, 1).ok().expect("an Answer crosses");
        assert!(matches!(
            a.msg,
            PeerMsg::Frame {
                done: true,
                ticket: 9,
                ..
            }
        ));
        let placed = place(a, &placement, 1, 3, 0).map(|(_, m)| m);
        assert!(matches!(placed, Some(Msg::Answer { ticket: 9, .. })));
        let reply = Msg::Frame {
            sid: sid(),
            frame: bytes::Bytes::new(),
            done: true,
        };
        let a = to_peer(reply, 1).ok().expect("a Frame crosses");
        let placed = place(a, &placement, 1, 3, 0).map(|(_, m)| m);
        assert!(matches!(placed, Some(Msg::Frame { done: true, .. })));
    }

    #[test]
    fn messages_bound_to_one_process_do_not_cross() {
        assert!(to_peer(Msg::Shutdown, 0).is_err());
        assert!(to_peer(Msg::WhoAsk { asker: 0, ask: 1 }, 0).is_err());
    }
}
