//! The edge of a shard: where a connection's frames become logins and
//! commands, and where replies and events become that connection's frames.
//! Everything here runs on the connection's shard.

use bytes::Bytes;
use std::time::Instant;

use super::msg::Msg;
use super::session::{Out, PendingCmd, Phase, Session};
use super::{directory, SessionId, Shard, ShardAddr};
use crate::game::command::{self, EdgeCommand, HELP_TEXT};
use crate::protocol::decode::{self, ClientFrame, Credentials};
use crate::protocol::encode::{fail, reply_text};
use crate::protocol::names::{is_valid_name, NAME_CHARS_MAX, NAME_CHARS_MIN};
use crate::protocol::{close, encode, MsgId};

impl Shard {
    /// A new upgraded connection. Returns its slot and generation.
    pub fn open_session(&mut self, peer_ip: std::net::IpAddr) -> (u32, u32) {
        let now = self.now_ms();
        let burst = self.config.limits.commands_burst;
        self.counters.stats.accepted_total += 1;
        self.sessions
            .insert(|gen| Session::new(gen, now, burst, peer_ip))
    }

    /// Whether this shard takes another session (DESIGN §7: else HTTP 503).
    pub fn has_room_for_session(&self) -> bool {
        !self.shutting_down
            && self.sessions.len()
                < self
                    .config
                    .limits
                    .connections_per_shard_max
                    .min(super::SESSIONS_PER_SHARD_MAX)
    }

    /// One complete text message from the client of `slot`.
    pub fn on_text(&mut self, slot: u32, payload: &mut [u8]) {
        self.counters.stats.frames_in += 1;
        let now = self.now_ms();
        if let Some(session) = self.sessions.by_slot(slot) {
            session.heard_ms = now;
            session.pings_missed = 0;
        }
        match decode::decode_with(payload, &mut self.json_buffers) {
            Ok(frame) => self.on_frame(slot, frame),
            Err(e) => self.send_error(slot, e.code, &e.message),
        }
        self.drain_local();
    }

    fn on_frame(&mut self, slot: u32, frame: ClientFrame<'_>) {
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        let phase = session.phase;
        match frame {
            ClientFrame::Ping { id } => {
                let bytes_max = self.config.limits.outbound_bytes_max;
                self.push(slot, Out::Plain(encode::pong(id.as_ref())), bytes_max);
            }
            ClientFrame::Guest { name } => {
                if phase != Phase::Connected {
                    return self.send_error(
                        slot,
                        "already_logged_in",
                        "This session is already logged in.",
                    );
                }
                if !self.config.game.guests {
                    return self.send_error(
                        slot,
                        "guests_disabled",
                        "Guests are not allowed on this server; register an account.",
                    );
                }
                self.login_guest(slot, name.as_deref());
            }
            ClientFrame::Register { name, password } => {
                if phase != Phase::Connected {
                    return self.send_error(
                        slot,
                        "already_logged_in",
                        "This session is already logged in.",
                    );
                }
                self.register(slot, &name, password.into_owned());
            }
            ClientFrame::Login(credentials) => {
                if phase != Phase::Connected {
                    return self.send_error(
                        slot,
                        "already_logged_in",
                        "This session is already logged in.",
                    );
                }
                match credentials {
                    Credentials::Password { name, password } => {
                        self.login_password(slot, &name, password.into_owned())
                    }
                    Credentials::Token(token) => self.login_token(slot, &token),
                }
            }
            ClientFrame::Resume { .. } => {
                self.send_error(slot, "resume_failed", "No session to resume; log in again.")
            }
            ClientFrame::Cmd { id, line } => {
                if phase == Phase::Connected {
                    return self.send_error(
                        slot,
                        "unauthenticated",
                        "Log in first: send {\"type\":\"guest\"}, register or login.",
                    );
                }
                self.on_cmd(slot, id, &line);
            }
        }
    }

    fn login_guest(&mut self, slot: u32, requested: Option<&str>) {
        let name = match requested {
            Some(name) if !is_valid_name(name) => {
                return self.send_error(
                    slot,
                    "invalid_name",
                    &format!("Names are {NAME_CHARS_MIN} to {NAME_CHARS_MAX} letters, digits or underscores."),
                );
            }
            Some(name) => Box::from(name),
            None => self.guest_name(),
        };
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        session.name_key = name.to_ascii_lowercase().into_boxed_str();
        session.name = name;
        session.phase = Phase::LoggingIn;
        session.busy_since = Some(Instant::now());
        session.busy_kind = if requested.is_some() {
            "login"
        } else {
            "login_generated"
        };
        let key = session.name_key.clone();
        let sid = SessionId::new(ShardAddr::new(self.host, self.id), slot, session.gen);
        self.claim(sid, key, false);
    }

    fn guest_name(&mut self) -> Box<str> {
        self.guest_counter += 1;
        format!("guest{}_{}", self.id, self.guest_counter).into_boxed_str()
    }

    pub(super) fn on_claimed(&mut self, sid: SessionId, ok: bool) {
        if self.logins.contains_key(&sid) {
            return self.on_account_claimed(sid, ok);
        }
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        if session.phase == Phase::Zombie {
            // `bury` releases the name (a no-op when the claim failed).
            return self.bury(sid);
        }
        if !ok {
            if session.busy_kind == "login_generated" {
                let name = self.guest_name();
                let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
                    return;
                };
                session.name_key = name.to_ascii_lowercase().into_boxed_str();
                session.name = name;
                let key = session.name_key.clone();
                self.claim(sid, key, false);
                return;
            }
            let message = format!("The name {} is taken.", session.name);
            return self.fail_login(sid, "name_taken", &message);
        }
        if session.busy_kind == "login_generated" {
            self.spawn_guest(sid);
        } else {
            // A chosen name may belong to an account that is offline.
            self.check_guest_name(sid);
        }
    }

    pub(super) fn on_welcomed(&mut self, sid: SessionId, room_json: Bytes) {
        let shards = self.router.shards();
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        if session.phase == Phase::Zombie {
            return self.bury(sid);
        }
        let token = if session.account {
            let key = session.name_key.clone();
            self.account_token(&key)
        } else {
            session_token(sid)
        };
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        let welcome = encode::welcome(&encode::Welcome {
            name: &session.name,
            token: &token,
            shard: self.id,
            host: &self.config.host_id,
            shards,
            room_json: &room_json,
        });
        session.phase = Phase::Playing;
        self.players += 1;
        self.deliver(sid, welcome);
        self.complete(sid);
    }

    fn on_cmd(&mut self, slot: u32, id: Option<MsgId>, line: &str) {
        let now = self.now_ms();
        let limits = &self.config.limits;
        let (per_s, burst, chars_max) = (
            limits.commands_per_s,
            limits.commands_burst,
            limits.text_chars_max,
        );
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        if !session.take_token(now, per_s, burst) {
            self.counters.stats.rate_limited += 1;
            return self.send_error(
                slot,
                "rate_limited",
                &format!("Slow down: at most {per_s} commands a second."),
            );
        }
        if line.chars().count() > chars_max {
            return self.send_error(
                slot,
                "invalid_text",
                &format!("A command line is at most {chars_max} characters."),
            );
        }
        if session.busy_since.is_some() || session.phase != Phase::Playing {
            if session.pending.len() >= burst as usize {
                self.counters.stats.rate_limited += 1;
                return self.send_error(
                    slot,
                    "rate_limited",
                    "Too many commands waiting; slow down.",
                );
            }
            session.pending.push_back(PendingCmd {
                id,
                line: Box::from(line),
            });
            return;
        }
        self.dispatch_command(slot, id, line);
    }

    /// Runs a command now: locally, or routed to whoever owns what it touches.
    fn dispatch_command(&mut self, slot: u32, id: Option<MsgId>, line: &str) {
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        let sid = SessionId::new(ShardAddr::new(self.host, self.id), slot, session.gen);
        let body_at = session.body_at;
        let name = session.name.clone();
        let parsed = command::parse(line);
        let kind = match &parsed {
            Ok(c) => c.kind(),
            Err(_) => "invalid",
        };
        self.counters.command(kind);
        let started = Instant::now();
        let command = match parsed {
            Err(e) => {
                let frame = fail(id.as_ref(), e.code(), &e.message());
                return self.deliver(sid, frame);
            }
            Ok(command) => command,
        };
        match command.route() {
            Ok(cmd) => {
                let Some(owner) = body_at else {
                    let frame = fail(
                        id.as_ref(),
                        "unreachable",
                        "You are nowhere; try logging in again.",
                    );
                    return self.deliver(sid, frame);
                };
                self.busy(slot, kind, started);
                self.router.post_to(
                    owner,
                    Msg::Cmd {
                        sid,
                        id,
                        cmd,
                        sent: started,
                    },
                );
            }
            Err(EdgeCommand::Help) => {
                self.deliver(sid, reply_text(id.as_ref(), HELP_TEXT));
            }
            Err(EdgeCommand::Shout(text)) => {
                if text.is_empty() {
                    self.deliver(
                        sid,
                        fail(id.as_ref(), "usage", "Shout what? Usage: shout <text>"),
                    );
                } else {
                    let frame = encode::event("shout", "", &name, text);
                    for shard in 0..self.router.shards() {
                        self.router.post(
                            shard,
                            Msg::Broadcast {
                                frame: frame.clone(),
                                except: Some(sid),
                            },
                        );
                    }
                    let echo = format!("You shout, \"{text}\"");
                    self.deliver(sid, reply_text(id.as_ref(), &echo));
                }
            }
            Err(EdgeCommand::Tell { to, text }) => {
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
                    let to_key = to.to_ascii_lowercase().into_boxed_str();
                    let from_name = name;
                    self.busy(slot, kind, started);
                    let shards = self.router.shards();
                    self.router.post(
                        directory::shard_of(&to_key, shards),
                        Msg::Tell {
                            from: sid,
                            from_name,
                            id,
                            to_key,
                            text: Box::from(text),
                        },
                    );
                }
            }
            Err(EdgeCommand::Who) => {
                self.busy(slot, kind, started);
                let ask = self.next_ask;
                self.next_ask += 1;
                let shards = self.router.shards();
                self.who_gathers.insert(
                    ask,
                    super::WhoGather {
                        sid,
                        id,
                        remaining: shards,
                        names: Vec::new(),
                        total: 0,
                    },
                );
                for shard in 0..shards {
                    self.router.post(
                        shard,
                        Msg::WhoAsk {
                            asker: self.id,
                            ask,
                        },
                    );
                }
            }
        }
    }

    fn busy(&mut self, slot: u32, kind: &'static str, started: Instant) {
        if let Some(session) = self.sessions.by_slot(slot) {
            session.busy_since = Some(started);
            session.busy_kind = kind;
        }
    }

    pub(super) fn on_who_answer(&mut self, ask: u64, names: Vec<Box<str>>, total: usize) {
        let names_max = self.config.limits.names_listed_max;
        let Some(gather) = self.who_gathers.get_mut(&ask) else {
            return;
        };
        gather.total += total;
        for name in names {
            if gather.names.len() < names_max {
                gather.names.push(name);
            }
        }
        gather.remaining -= 1;
        if gather.remaining > 0 {
            return;
        }
        let Some(gather) = self.who_gathers.remove(&ask) else {
            return;
        };
        let mut text = format!("{} online: {}", gather.total, gather.names.join(", "));
        if gather.total > gather.names.len() {
            text.push_str(&format!(" and {} more", gather.total - gather.names.len()));
        }
        text.push('.');
        let mut list = Vec::new();
        encode::put_str_array(&mut list, gather.names.iter().map(|n| &**n));
        let mut reply = encode::reply(gather.id.as_ref(), true, 64 + text.len() + list.len());
        reply
            .str("text", &text)
            .raw("players", &list)
            .u64("players_total", gather.total as u64);
        self.deliver(gather.sid, reply.finish());
        self.complete(gather.sid);
    }

    /// Queues a frame in the sequence for a session of this shard.
    pub(super) fn deliver(&mut self, sid: SessionId, frame: Bytes) {
        let bytes_max = self.config.limits.outbound_bytes_max;
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        if !session.push_seq(frame, bytes_max) {
            session.cut_off(close::SLOW_READER);
            self.counters.stats.outbound_drops += 1;
        }
    }

    fn push(&mut self, slot: u32, out: Out, bytes_max: usize) {
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        if !session.push(out, bytes_max) {
            session.cut_off(close::SLOW_READER);
            self.counters.stats.outbound_drops += 1;
        }
    }

    /// Sends an `error` frame: in the sequence once logged in, plain before.
    pub fn send_error(&mut self, slot: u32, code: &str, message: &str) {
        let bytes_max = self.config.limits.outbound_bytes_max;
        self.counters.stats.errors_sent += 1;
        let frame = encode::error(code, message);
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        let ok = if session.seq > 0 {
            session.push_seq(frame, bytes_max)
        } else {
            session.push(Out::Plain(frame), bytes_max)
        };
        if !ok {
            session.cut_off(close::SLOW_READER);
            self.counters.stats.outbound_drops += 1;
        }
    }

    /// The command in flight for `sid` is finished: record it, start the next.
    pub(super) fn complete(&mut self, sid: SessionId) {
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        if let Some(started) = session.busy_since.take() {
            let us = started.elapsed().as_micros() as u64;
            self.counters.command_latency(us);
        }
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        if session.phase == Phase::Zombie {
            return self.bury(sid);
        }
        while let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) {
            if session.busy_since.is_some() || session.close.is_some() {
                break;
            }
            let Some(next) = session.pending.pop_front() else {
                break;
            };
            self.dispatch_command(sid.slot(), next.id, &next.line);
        }
    }

    pub(super) fn on_quit_done(&mut self, sid: SessionId, frame: Bytes) {
        self.deliver(sid, frame);
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        session.busy_since = None;
        session.pending.clear();
        session.room = None;
        session.body_at = None;
        if session.phase == Phase::Zombie {
            return self.bury(sid);
        }
        session.request_close(close::GOODBYE);
    }

    /// The connection of `slot` has ended. Its body and name are let go now,
    /// or, when a message about them is still in flight, once it lands.
    pub fn close_session(&mut self, slot: u32) {
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        let sid = SessionId::new(ShardAddr::new(self.host, self.id), slot, session.gen);
        if let Some(room) = session.room.take() {
            super::remove_viewer(&mut self.viewers, &mut self.sessions, slot, room);
        }
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        session.out.clear();
        session.out_bytes = 0;
        session.waker = None;
        session.partial = Vec::new();
        session.unsent = Vec::new();
        session.fragments = None;
        match session.phase {
            Phase::Connected => {
                self.sessions.remove(slot);
            }
            Phase::LoggingIn | Phase::Zombie => session.phase = Phase::Zombie,
            Phase::Playing => {
                self.players = self.players.saturating_sub(1);
                if session.busy_since.is_some() {
                    session.phase = Phase::Zombie;
                } else {
                    session.phase = Phase::Zombie;
                    self.bury(sid);
                }
            }
        }
        self.drain_local();
    }

    /// Lets go of a dead session's body and name, and frees its slot. A
    /// newer login of the same account waiting on it goes ahead once the
    /// body is saved and gone (at once when it has none).
    pub(super) fn bury(&mut self, sid: SessionId) {
        let Some(session) = self.sessions.remove(sid.slot()) else {
            return;
        };
        let notify = self.handoffs.remove(&sid);
        // `body_at` is set when the body first arrives and cleared by quit.
        if let Some(owner) = session.body_at {
            self.router.post_to(owner, Msg::Depart { sid, notify });
        } else if let Some(new) = notify {
            self.router
                .post(new.shard(), Msg::Claimed { sid: new, ok: true });
        }
        if !session.name_key.is_empty() {
            self.release(sid, session.name_key);
        }
    }

    /// Once a second: store overflow, login deadlines, idle pings, and closing the silent.
    pub fn sweep(&mut self) {
        // Writes parked while the store's queue was full go on now.
        self.store.pump();
        let now = self.now_ms();
        let limits = &self.config.limits;
        let (login_ms, idle_ms, missed_max, bytes_max, grace_ms) = (
            limits.login_timeout_ms,
            limits.idle_ping_ms,
            limits.pings_missed_max,
            limits.outbound_bytes_max,
            limits.close_grace_ms,
        );
        for (_, session) in self.sessions.iter_mut() {
            if session.close.is_some() {
                // A peer that will not take its last bytes is not waited for long.
                if session.close_seen_ms == 0 {
                    session.close_seen_ms = now.max(1);
                } else if now.saturating_sub(session.close_seen_ms) > grace_ms {
                    session.abort = true;
                    session.wake();
                }
                continue;
            }
            if session.phase == Phase::Zombie {
                continue;
            }
            if session.phase != Phase::Playing {
                if now.saturating_sub(session.opened_ms) > login_ms {
                    session.request_close(close::LOGIN_TIMEOUT);
                }
                continue;
            }
            let silent_ms = now.saturating_sub(session.heard_ms);
            if silent_ms < idle_ms || now.saturating_sub(session.pinged_ms) < idle_ms {
                continue;
            }
            if session.pings_missed >= missed_max {
                session.request_close(close::IDLE);
                continue;
            }
            session.pings_missed += 1;
            session.pinged_ms = now;
            session.push(Out::Ping, bytes_max);
        }
    }
}

/// The token in `welcome`. Resume is not implemented yet: the token names the
/// session so that a later resume can find it.
fn session_token(sid: SessionId) -> String {
    format!("s{:016x}", sid.to_bits())
}
