//! The commands a room owner runs for a body it holds: look, moving, speech,
//! items, inventory and quit. Each takes the command as parsed where it was
//! read, changes the owner's rooms and bodies, and leaves its reply and
//! everything else it caused in the effects.

use bytes::Bytes;

use super::body::Arrival;
use super::command::BodyCommand;
use super::effect::{Effect, Effects};
use super::owner::{Owner, INVENTORY_ITEMS_MAX, ROOM_ITEMS_MAX};
use super::render;
use crate::protocol::addr::SessionId;
use crate::protocol::encode::{self, fail, reply_text};
use crate::protocol::MsgId;
use crate::world::{find_item, RoomIdx};

impl Owner {
    /// Runs one command for a body held here.
    pub fn command(
        &mut self,
        fx: &mut Effects,
        sid: SessionId,
        id: Option<MsgId>,
        cmd: &BodyCommand,
    ) {
        let Some(room) = self.bodies.get(&sid).map(|p| p.room) else {
            // A command for a body that is not here: the session's shard
            // routes by the body's last known place, so this means it is gone.
            let frame = fail(
                id.as_ref(),
                "unreachable",
                "You are nowhere; try logging in again.",
            );
            return done(fx, sid, frame);
        };
        let frame = match cmd {
            BodyCommand::Look => return self.look(fx, sid, room, id),
            BodyCommand::Go(dir) => match self.world.room(room).exit(*dir) {
                Some(dest) => {
                    let leave = format!("leaves {}.", dir.name());
                    return self.move_body(
                        fx,
                        sid,
                        dest,
                        Arrival::Walk(dir.opposite()),
                        id,
                        &leave,
                    );
                }
                None => fail(
                    id.as_ref(),
                    "no_exit",
                    &format!("You cannot go {} from here.", dir.name()),
                ),
            },
            BodyCommand::Goto(target) => match self.goto_target(target) {
                // Already there: the room, as `look` shows it, and no
                // vanishing from it and appearing in it again.
                Ok(dest) if dest == room => return self.look(fx, sid, room, id),
                Ok(dest) => {
                    let leave = "vanishes in a shimmer of air.";
                    return self.move_body(fx, sid, dest, Arrival::Teleport, id, leave);
                }
                Err((code, text)) => fail(id.as_ref(), code, &text),
            },
            BodyCommand::Say(text) => self.speak(fx, sid, room, id, "say", text),
            BodyCommand::Emote(text) => self.speak(fx, sid, room, id, "emote", text),
            BodyCommand::Get(item) => self.get(fx, sid, room, id, item),
            BodyCommand::Drop(item) => self.drop_item(fx, sid, room, id, item),
            BodyCommand::Inventory => self.inventory(sid, id),
            BodyCommand::Quit => return self.quit(fx, sid, id),
        };
        done(fx, sid, frame);
    }

    /// Where `goto` leads, or why it may not.
    pub(super) fn goto_target(&self, target: &str) -> Result<RoomIdx, (&'static str, String)> {
        if !self.game.goto_everyone {
            return Err((
                "forbidden",
                "Only admins can teleport on this server.".to_string(),
            ));
        }
        self.world
            .room_index(target)
            .ok_or_else(|| ("no_such_room", format!("There is no room {target:?}.")))
    }

    fn inventory(&self, sid: SessionId, id: Option<MsgId>) -> Bytes {
        let inventory = self
            .bodies
            .get(&sid)
            .map(|p| p.body.inventory.as_slice())
            .unwrap_or_default();
        let text = render::inventory_text(inventory);
        encode::reply_inventory(id.as_ref(), &text, inventory)
    }

    fn quit(&mut self, fx: &mut Effects, sid: SessionId, id: Option<MsgId>) {
        if let Some(placed) = self.bodies.remove(&sid) {
            self.save_body(fx, &placed.body, placed.room);
            let text = format!("{} has left the world.", placed.body.name);
            self.leave_room(fx, &placed, &text);
        }
        let frame = reply_text(id.as_ref(), "Farewell. Come back soon.");
        fx.push(Effect::QuitDone { sid, frame });
    }

    fn speak(
        &mut self,
        fx: &mut Effects,
        sid: SessionId,
        room: RoomIdx,
        id: Option<MsgId>,
        kind: &str,
        text: &str,
    ) -> Bytes {
        if text.is_empty() {
            let usage = if kind == "say" {
                "Say what? Usage: say <text>"
            } else {
                "Emote what? Usage: emote <text>"
            };
            return fail(id.as_ref(), "usage", usage);
        }
        let name = match self.bodies.get(&sid) {
            Some(p) => p.body.name.clone(),
            None => return fail(id.as_ref(), "unreachable", "You are nowhere."),
        };
        let frame = encode::event(kind, &self.world.room(room).id, &name, text);
        self.emit(fx, room, frame, Some(sid));
        let echo = if kind == "say" {
            format!("You say, \"{text}\"")
        } else {
            format!("{name} {text}")
        };
        reply_text(id.as_ref(), &echo)
    }

    fn get(
        &mut self,
        fx: &mut Effects,
        sid: SessionId,
        room: RoomIdx,
        id: Option<MsgId>,
        query: &str,
    ) -> Bytes {
        if query.is_empty() {
            return fail(id.as_ref(), "usage", "Get what? Usage: get <item>");
        }
        let carried = self.bodies.get(&sid).map_or(0, |p| p.body.inventory.len());
        if carried >= INVENTORY_ITEMS_MAX {
            return fail(id.as_ref(), "too_many_items", "Your hands are full.");
        }
        let state = self.room_state(room);
        let Some(i) = find_item(&state.items, query) else {
            return fail(
                id.as_ref(),
                "no_such_item",
                &format!("There is no {query} here."),
            );
        };
        let item = state.items.remove(i);
        self.room_changed(fx, room);
        let Some(placed) = self.bodies.get_mut(&sid) else {
            return fail(id.as_ref(), "unreachable", "You are nowhere.");
        };
        placed.body.inventory.push(item.clone());
        let name = placed.body.name.clone();
        self.item_moved(
            fx,
            sid,
            room,
            id,
            &format!("{name} picks up the {item}."),
            &format!("You pick up the {item}."),
        )
    }

    fn drop_item(
        &mut self,
        fx: &mut Effects,
        sid: SessionId,
        room: RoomIdx,
        id: Option<MsgId>,
        query: &str,
    ) -> Bytes {
        if query.is_empty() {
            return fail(id.as_ref(), "usage", "Drop what? Usage: drop <item>");
        }
        if self.room_state(room).items.len() >= ROOM_ITEMS_MAX {
            return fail(
                id.as_ref(),
                "too_many_items",
                "There is no room on the floor for that.",
            );
        }
        let Some(placed) = self.bodies.get_mut(&sid) else {
            return fail(id.as_ref(), "unreachable", "You are nowhere.");
        };
        let Some(i) = find_item(&placed.body.inventory, query) else {
            return fail(
                id.as_ref(),
                "no_such_item",
                &format!("You carry no {query}."),
            );
        };
        let item = placed.body.inventory.remove(i);
        let name = placed.body.name.clone();
        let state = self.room_state(room);
        state.items.push(item.clone());
        self.room_changed(fx, room);
        self.item_moved(
            fx,
            sid,
            room,
            id,
            &format!("{name} drops the {item}."),
            &format!("You drop the {item}."),
        )
    }

    /// After an item moved between a body and the floor: both are persisted,
    /// the room hears `event_text`, the mover gets `reply_text`.
    fn item_moved(
        &mut self,
        fx: &mut Effects,
        sid: SessionId,
        room: RoomIdx,
        id: Option<MsgId>,
        event_text: &str,
        reply: &str,
    ) -> Bytes {
        let Some(placed) = self.bodies.get(&sid) else {
            return fail(id.as_ref(), "unreachable", "You are nowhere.");
        };
        self.save_body(fx, &placed.body, room);
        let frame = encode::event(
            "item",
            &self.world.room(room).id,
            &placed.body.name,
            event_text,
        );
        self.save_room_items(fx, room);
        self.emit(fx, room, frame, Some(sid));
        reply_text(id.as_ref(), reply)
    }

    /// Takes the body out of its room and hands it to `dest`'s owner (maybe
    /// this shard, maybe another host) in one message.
    fn move_body(
        &mut self,
        fx: &mut Effects,
        sid: SessionId,
        dest: RoomIdx,
        how: Arrival,
        id: Option<MsgId>,
        leave_text: &str,
    ) {
        let Some(placed) = self.bodies.remove(&sid) else {
            return;
        };
        let text = format!("{} {leave_text}", placed.body.name);
        self.leave_room(fx, &placed, &text);
        // Saved here, where the move is decided: the hand-off below may be
        // to another shard, and this save is ordered before its later ones.
        self.save_body(fx, &placed.body, dest);
        fx.push(Effect::Arrive {
            body: placed.body,
            room: dest,
            how,
            id,
            from: placed.room,
        });
    }
}

fn done(fx: &mut Effects, sid: SessionId, frame: Bytes) {
    fx.push(Effect::Frame {
        sid,
        frame,
        done: true,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game::testing::{arrive_named, enter_named, owner};
    use crate::protocol::addr::ShardAddr;

    fn enter(owner: &mut Owner, room: RoomIdx, shard: u16, slot: u32) -> SessionId {
        enter_from(owner, room, ShardAddr::new(0, shard), slot)
    }

    fn enter_from(owner: &mut Owner, room: RoomIdx, at: ShardAddr, slot: u32) -> SessionId {
        enter_named(owner, room, at, slot, &format!("p{slot}"))
    }

    #[test]
    fn a_say_is_one_event_per_other_host_with_viewers_however_many_shards_they_use() {
        let (mut owner, room) = owner();
        let speaker = enter(&mut owner, room, 0, 0);
        // Someone on the speaker's shard to hear it there too.
        enter(&mut owner, room, 0, 9);
        for slot in 1..9 {
            enter_from(
                &mut owner,
                room,
                ShardAddr::new(1 + (slot % 2) as u16, slot as u16 % 3),
                slot,
            );
        }
        let mut fx = Effects::new();
        owner.command(&mut fx, speaker, None, &BodyCommand::Say("hello".into()));
        assert_eq!(
            event_targets(&fx),
            [
                ShardAddr::new(0, 0),
                ShardAddr::new(1, ShardAddr::EVERY_SHARD),
                ShardAddr::new(2, ShardAddr::EVERY_SHARD)
            ],
            "this host's shard, then each other host once"
        );
        // Leaving keeps the per-host counts: the last viewer of a host
        // takes its entry with it.
        for slot in (1..9).filter(|s| s % 2 == 1) {
            let sid = SessionId::new(ShardAddr::new(2, slot as u16 % 3), slot, 1);
            owner.depart(&mut Effects::new(), sid, None);
        }
        let mut fx = Effects::new();
        owner.command(&mut fx, speaker, None, &BodyCommand::Say("again".into()));
        let hosts: Vec<u16> = fx
            .iter()
            .filter_map(|e| match e {
                Effect::RoomEvent { to, .. } => Some(to.host),
                _ => None,
            })
            .collect();
        assert_eq!(hosts.len(), 2, "{hosts:?}");
        assert!(!hosts.contains(&2));
    }

    fn event_targets(fx: &Effects) -> Vec<ShardAddr> {
        let mut to: Vec<ShardAddr> = fx
            .iter()
            .filter_map(|e| match e {
                Effect::RoomEvent { to, .. } => Some(*to),
                _ => None,
            })
            .collect();
        to.sort();
        to
    }

    #[test]
    fn an_event_skips_the_shard_or_host_whose_only_viewer_is_the_one_it_is_about() {
        let (mut owner, room) = owner();
        let mut fx = Effects::new();
        let first = arrive_named(&mut owner, &mut fx, room, ShardAddr::new(0, 1), 1, "first");
        assert_eq!(
            event_targets(&fx),
            [],
            "an arrival in an empty room is heard by nobody"
        );
        let mut fx = Effects::new();
        let watcher = arrive_named(
            &mut owner,
            &mut fx,
            room,
            ShardAddr::new(0, 0),
            2,
            "watcher",
        );
        assert_eq!(
            event_targets(&fx),
            [ShardAddr::new(0, 1)],
            "only first's shard hears it"
        );
        let mut fx = Effects::new();
        let remote = arrive_named(&mut owner, &mut fx, room, ShardAddr::new(1, 0), 3, "remote");
        assert_eq!(
            event_targets(&fx),
            [ShardAddr::new(0, 0), ShardAddr::new(0, 1)],
            "not sent to host 1, where the one viewer is the arrival itself"
        );
        for (speaker, heard_on) in [
            (
                first,
                [
                    ShardAddr::new(0, 0),
                    ShardAddr::new(1, ShardAddr::EVERY_SHARD),
                ],
            ),
            (
                watcher,
                [
                    ShardAddr::new(0, 1),
                    ShardAddr::new(1, ShardAddr::EVERY_SHARD),
                ],
            ),
            (remote, [ShardAddr::new(0, 0), ShardAddr::new(0, 1)]),
        ] {
            let mut fx = Effects::new();
            owner.command(&mut fx, speaker, None, &BodyCommand::Say("hi".into()));
            assert_eq!(event_targets(&fx), heard_on, "said by {speaker:?}");
        }
        // A second player on host 1: now the speaker's own host hears it.
        enter_from(&mut owner, room, ShardAddr::new(1, 1), 4);
        let mut fx = Effects::new();
        owner.command(&mut fx, remote, None, &BodyCommand::Say("hi".into()));
        assert_eq!(
            event_targets(&fx),
            [
                ShardAddr::new(0, 0),
                ShardAddr::new(0, 1),
                ShardAddr::new(1, ShardAddr::EVERY_SHARD)
            ]
        );
    }

    #[test]
    fn a_say_is_one_event_per_shard_with_viewers_and_one_reply() {
        let (mut owner, room) = owner();
        let speaker = enter(&mut owner, room, 0, 0);
        for slot in 1..10 {
            enter(&mut owner, room, (slot % 2) as u16, slot);
        }
        let mut fx = Effects::new();
        owner.command(&mut fx, speaker, None, &BodyCommand::Say("hello".into()));
        let events: Vec<ShardAddr> = fx
            .iter()
            .filter_map(|e| match e {
                Effect::RoomEvent { to, except, .. } => {
                    assert_eq!(*except, Some(speaker));
                    Some(*to)
                }
                _ => None,
            })
            .collect();
        assert_eq!(events.len(), 2, "one per shard: {events:?}");
        let replies = fx
            .iter()
            .filter(|e| matches!(e, Effect::Frame { sid, done: true, .. } if *sid == speaker))
            .count();
        assert_eq!(replies, 1);
    }

    #[test]
    fn walking_out_hands_the_body_to_the_next_room_and_tells_the_one_it_left() {
        let (mut owner, room) = owner();
        let walker = enter(&mut owner, room, 1, 7);
        let watcher = enter(&mut owner, room, 0, 8);
        let exit = owner.world.room(room).exits[0].0;
        let mut fx = Effects::new();
        owner.command(&mut fx, walker, None, &BodyCommand::Go(exit));
        assert!(fx
            .iter()
            .any(|e| matches!(e, Effect::Left { sid, room: r } if *sid == walker && *r == room)));
        assert!(fx.iter().any(|e| matches!(
            e,
            Effect::Arrive { body, how: Arrival::Walk(_), .. } if body.sid == walker
        )));
        assert!(fx.iter().any(|e| matches!(
            e,
            Effect::RoomEvent { to, .. } if *to == watcher.addr()
        )));
        assert_eq!(owner.bodies(), 1, "the walker's body left this owner");
    }

    #[test]
    fn goto_the_room_one_stands_in_answers_with_the_room_and_moves_nothing() {
        let (mut owner, room) = owner();
        let walker = enter(&mut owner, room, 0, 7);
        enter(&mut owner, room, 0, 8);
        let here = owner.world.room(room).id.clone();
        let mut fx = Effects::new();
        owner.command(&mut fx, walker, None, &BodyCommand::Goto(here.into()));
        match fx.as_slice() {
            [Effect::Frame {
                sid,
                frame,
                done: true,
            }] => {
                assert_eq!(*sid, walker);
                let text = std::str::from_utf8(frame).unwrap_or_default();
                assert!(text.contains("\"ok\":true"), "{text}");
            }
            other => panic!("expected the room as the only answer, got {other:?}"),
        }
        assert_eq!(owner.bodies(), 2);
    }

    #[test]
    fn a_command_for_a_body_not_here_is_answered_unreachable() {
        let (mut owner, _) = owner();
        let ghost = SessionId::new(ShardAddr::new(0, 1), 3, 1);
        let mut fx = Effects::new();
        owner.command(&mut fx, ghost, None, &BodyCommand::Look);
        match fx.as_slice() {
            [Effect::Frame {
                sid,
                frame,
                done: true,
            }] => {
                assert_eq!(*sid, ghost);
                let text = std::str::from_utf8(frame).unwrap_or_default();
                assert!(text.contains("\"unreachable\""), "{text}");
            }
            other => panic!("expected one reply, got {other:?}"),
        }
    }
}
