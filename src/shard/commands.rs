//! The commands a connection's shard answers itself, because they need the
//! name directory or every shard rather than the body's room: `help`,
//! `shout`, `tell` and `who`.

use std::time::Instant;

use super::cluster::WaitFor;
use super::msg::Msg;
use super::{SessionId, Shard};
use crate::game::command::{EdgeCommand, HELP_TEXT};
use crate::protocol::encode::{self, fail, reply_text};
use crate::protocol::names::{is_valid_name, name_key};
use crate::protocol::MsgId;

impl Shard {
    /// Runs one edge command of the session in `slot` (named `name`).
    pub(super) fn edge_command(
        &mut self,
        slot: u32,
        sid: SessionId,
        name: &str,
        id: Option<MsgId>,
        command: EdgeCommand<'_>,
        started: Instant,
    ) {
        let kind = command.kind();
        match command {
            EdgeCommand::Help => {
                self.deliver(sid, reply_text(id.as_ref(), HELP_TEXT));
            }
            EdgeCommand::Shout(text) => {
                if text.is_empty() {
                    self.deliver(
                        sid,
                        fail(id.as_ref(), "usage", "Shout what? Usage: shout <text>"),
                    );
                } else {
                    let frame = encode::event("shout", "", name, text);
                    for shard in 0..self.router.shards() {
                        self.router.post(
                            shard,
                            Msg::Broadcast {
                                frame: frame.clone(),
                                except: Some(sid),
                            },
                        );
                    }
                    self.shout_to_other_hosts(frame);
                    let echo = format!("You shout, \"{text}\"");
                    self.deliver(sid, reply_text(id.as_ref(), &echo));
                }
            }
            EdgeCommand::Tell { to, text } => {
                if !is_valid_name(to) {
                    self.deliver(
                        sid,
                        fail(
                            id.as_ref(),
                            "no_such_player",
                            &format!("Nobody called {to} is online."),
                        ),
                    );
                } else if text.is_empty() {
                    self.deliver(
                        sid,
                        fail(id.as_ref(), "usage", "Tell what? Usage: tell <name> <text>"),
                    );
                } else {
                    let from_name = Box::from(name);
                    self.busy(slot, kind, started);
                    let keeper = self.keeper_of(&name_key(to));
                    if !self.reachable(keeper.host) {
                        let text =
                            format!("The host that knows where {to} is cannot be reached now.");
                        self.deliver(sid, fail(id.as_ref(), "unreachable", &text));
                        self.complete(sid);
                        return;
                    }
                    let ticket = if keeper.host != self.host {
                        self.wait_on_host(sid, id, keeper.host, WaitFor::Tell)
                    } else {
                        0
                    };
                    self.router.post_to(
                        keeper,
                        Msg::Tell {
                            from: sid,
                            from_name,
                            id,
                            to: Box::from(to),
                            text: Box::from(text),
                            ticket,
                        },
                    );
                }
            }
            EdgeCommand::Who => {
                self.busy(slot, kind, started);
                self.gather_who(sid, id);
            }
        }
    }
}
