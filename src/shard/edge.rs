//! The edge of a shard: where a connection's frames become logins and
//! commands, and where replies and events become that connection's frames.
//! Everything here runs on the connection's shard.

use bytes::Bytes;
use std::time::Instant;

use super::cluster::WaitFor;
use super::msg::Msg;
use super::session::{Out, PendingCmd, Phase};
use super::{SessionId, Shard, ShardAddr};
use crate::game::command::{self, BodyCommand};
use crate::protocol::decode::{self, ClientFrame, Credentials};
use crate::protocol::encode::{fail, reply_text};
use crate::protocol::{close, encode, MsgId};

impl Shard {
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
            Err(e) => self.send_error_for(slot, e.id.as_ref(), e.code, &e.message),
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
            ClientFrame::Resume { token, last_seq } => {
                if phase != Phase::Connected {
                    return self.send_error(
                        slot,
                        "already_logged_in",
                        "This session is already logged in.",
                    );
                }
                self.resume(slot, &token, last_seq);
            }
            ClientFrame::Cmd { id, line } => {
                if phase == Phase::Connected {
                    return self.send_error_for(
                        slot,
                        id.as_ref(),
                        "unauthenticated",
                        "Log in first: send {\"type\":\"guest\"}, register or login.",
                    );
                }
                self.on_cmd(slot, id, &line);
            }
        }
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
            return self.refuse_rate_limited(
                slot,
                id.as_ref(),
                now,
                &format!("Slow down: at most {per_s} commands a second."),
            );
        }
        let (mut chars, mut control) = (0, false);
        for c in line.chars() {
            chars += 1;
            control |= c.is_control();
        }
        if chars > chars_max {
            return self.send_error_for(
                slot,
                id.as_ref(),
                "invalid_text",
                &format!("A command line is at most {chars_max} characters."),
            );
        }
        if control {
            // Whatever a player says reaches other players' screens: no
            // terminal escapes, bells or NULs through it.
            return self.send_error_for(
                slot,
                id.as_ref(),
                "invalid_text",
                "A command line may not hold control characters (escapes, tabs, line breaks).",
            );
        }
        if session.busy_since.is_some() || session.phase != Phase::Playing {
            if session.pending.len() >= burst as usize {
                return self.refuse_rate_limited(
                    slot,
                    id.as_ref(),
                    now,
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

    /// Refuses a command over the rate limit with a `rate_limited` error.
    /// A client refused `rate_limited_max` times within
    /// `rate_limited_window_ms` is flooding: it is closed with 1008 (after
    /// the frames queued before), and counted.
    fn refuse_rate_limited(&mut self, slot: u32, id: Option<&MsgId>, now_ms: u64, message: &str) {
        self.counters.stats.rate_limited += 1;
        self.send_error_for(slot, id, "rate_limited", message);
        let limits = &self.config.limits;
        let (max, window_ms) = (limits.rate_limited_max, limits.rate_limited_window_ms);
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        if session.count_rate_limited(now_ms, max, window_ms) && session.close.is_none() {
            session.request_close(close::RATE_LIMIT_ABUSE);
            self.counters.stats.rate_limit_closes += 1;
        }
    }

    /// Runs a command now: locally, or routed to whoever owns what it touches.
    fn dispatch_command(&mut self, slot: u32, id: Option<MsgId>, line: &str) {
        let Some(session) = self.sessions.by_slot(slot) else {
            return;
        };
        let sid = SessionId::new(ShardAddr::new(self.host, self.id), slot, session.gen);
        let body_at = session.body_at;
        let standing_in = session.room;
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
                // A playing session without a body is on its way back to
                // the start room (recalled from a host that went away):
                // the body is a hop or a save's lookup behind the notice.
                if !self.body_settled(sid) {
                    // Its last command may have moved it: sent to where it
                    // was, this one would find nobody there.
                    if let BodyCommand::Quit = cmd {
                        // Gone once that answer comes (`settle`).
                        self.deliver(sid, reply_text(id.as_ref(), "Farewell. Come back soon."));
                        if let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) {
                            session.request_close(close::GOODBYE);
                        }
                        return;
                    }
                    let frame = fail(id.as_ref(), "unreachable", super::cluster::IN_DOUBT);
                    return self.deliver(sid, frame);
                }
                let Some(owner) = body_at else {
                    let frame = fail(
                        id.as_ref(),
                        "unreachable",
                        "You are on your way back to the start; try again in a moment.",
                    );
                    return self.deliver(sid, frame);
                };
                // `look` in a room another shard here owns, whose view this
                // shard keeps: answered here, no crossing (`mirror.rs`).
                if let (BodyCommand::Look, Some(room)) = (&cmd, standing_in) {
                    if owner.host == self.host
                        && owner.shard != self.id
                        && self.look_here(sid, room, id.as_ref())
                    {
                        return;
                    }
                }
                if !self.reachable(owner.host) {
                    let frame = fail(
                        id.as_ref(),
                        "unreachable",
                        "The land you stand in is kept by a host that cannot be reached now; try again shortly.",
                    );
                    return self.deliver(sid, frame);
                }
                self.busy(slot, kind, started);
                let ticket = if owner.host != self.host {
                    self.wait_on_host(sid, id, owner.host, WaitFor::Body)
                } else {
                    0
                };
                self.router.post_to(
                    owner,
                    Msg::Cmd {
                        sid,
                        id,
                        cmd,
                        sent: started,
                        ticket,
                    },
                );
            }
            Err(edge) => {
                let name = name.clone();
                self.edge_command(slot, sid, &name, id, edge, started);
            }
        }
    }

    pub(super) fn busy(&mut self, slot: u32, kind: &'static str, started: Instant) {
        if let Some(session) = self.sessions.by_slot(slot) {
            session.busy_since = Some(started);
            session.busy_kind = kind;
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
        if !self.remote_waits.is_empty() {
            self.remote_waits.remove(&sid);
        }
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        if session.phase == Phase::Zombie {
            if !self.body_settled(sid) {
                // Let go once it is known where the body stands (`settle`).
                return;
            }
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
        // A quit sent to another host is answered: not `unreachable` later.
        self.remote_waits.remove(&sid);
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
}
