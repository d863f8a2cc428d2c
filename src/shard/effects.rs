//! Carrying out what the game asked for: each `Effect` becomes a message to
//! the shard (of this host or, later, another) it concerns, or a request to
//! the store. This is the one place where the game's results meet routing.

use super::msg::Msg;
use super::Shard;
use crate::game::effect::{Effect, Effects};
use crate::game::owner::Owner;

impl Shard {
    /// Runs `f` on the game with this shard's effects buffer, then carries
    /// out every effect it left, in order.
    pub fn play(&mut self, f: impl FnOnce(&mut Owner, &mut Effects)) {
        let mut fx = std::mem::take(&mut self.effects);
        f(&mut self.owner, &mut fx);
        for effect in fx.drain(..) {
            self.carry_out(effect);
        }
        self.effects = fx;
    }

    fn carry_out(&mut self, effect: Effect) {
        match effect {
            Effect::Frame { sid, frame, done } => {
                self.router
                    .post_to(sid.addr(), Msg::Frame { sid, frame, done });
            }
            Effect::Welcomed { sid, room_json } => {
                self.router
                    .post_to(sid.addr(), Msg::Welcomed { sid, room_json });
            }
            Effect::QuitDone { sid, frame } => {
                self.router
                    .post_to(sid.addr(), Msg::QuitDone { sid, frame });
            }
            Effect::Entered { sid, room, owner } => {
                self.router
                    .post_to(sid.addr(), Msg::Entered { sid, room, owner });
            }
            Effect::Left { sid, room } => {
                self.router.post_to(sid.addr(), Msg::Left { sid, room });
            }
            Effect::Looked {
                sid,
                id,
                room,
                room_json,
                look_text,
            } => {
                self.router.post_to(
                    sid.addr(),
                    Msg::Looked {
                        sid,
                        id,
                        room,
                        room_json,
                        look_text,
                    },
                );
            }
            Effect::ViewChanged { to, room } => {
                self.router.post_to(to, Msg::ViewChanged { room });
            }
            Effect::RoomEvent {
                to,
                room,
                frame,
                except,
            } => {
                self.router.post_to(
                    to,
                    Msg::RoomEvent {
                        room,
                        frame,
                        except,
                    },
                );
            }
            Effect::Arrive {
                body,
                room,
                how,
                id,
                from,
            } => {
                let owner = self.placement.owner(room);
                if owner.host != self.host {
                    return self.hand_off(body, room, how, id, from, owner);
                }
                self.router.post_to(
                    owner,
                    Msg::Arrive {
                        body,
                        room,
                        how,
                        id,
                        ack_to: None,
                        ticket: 0,
                    },
                );
            }
            Effect::SavePlayer {
                name_key,
                room_id,
                inventory,
            } => self.save_player_anywhere(name_key, room_id, inventory),
            Effect::SaveRoomItems { room_id, items } => {
                self.store.save_room_items_owned(room_id, items)
            }
            Effect::ClaimedAfterFlush { new } => {
                // The go-ahead comes back here and is routed from here: the
                // waiting login may be on another host, and only the router
                // knows the way there (a mailbox of this host's shard of the
                // same number is not it).
                let go_ahead = self.reply_here(move |sh, result: Result<(), _>| {
                    if let Err(e) = result {
                        tracing::error!(error = %e, "store: flush before a takeover failed");
                    }
                    sh.router
                        .post_to(new.addr(), Msg::Claimed { sid: new, ok: true });
                });
                self.store.flush(go_ahead);
            }
        }
    }
}
