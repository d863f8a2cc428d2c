//! The end of every login, and guests: a guest's name (chosen or made),
//! the directory's answer to a name claim, and `welcome` once the body has
//! arrived in its room.

use bytes::Bytes;
use std::time::Instant;

use super::session::Phase;
use super::{SessionId, Shard, ShardAddr};
use crate::auth::session_token::SessionToken;
use crate::protocol::names::{is_valid_name, name_key, NAME_CHARS_MAX, NAME_CHARS_MIN};
use crate::protocol::{close, encode};

impl Shard {
    pub(super) fn login_guest(&mut self, slot: u32, requested: Option<&str>) {
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
        session.name_key = name_key(&name).into_boxed_str();
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

    pub(super) fn guest_name(&mut self) -> Box<str> {
        self.guest_counter += 1;
        format!("guest{}_{}", self.id, self.guest_counter).into_boxed_str()
    }

    pub(super) fn on_claimed(&mut self, sid: SessionId, ok: bool) {
        self.claim_answered(sid);
        if let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) {
            // A login given up (its claim not answered in time) is closing:
            // this late answer is to nothing. A name it granted was let go
            // by `fail_login`, after the claim, on the same way.
            if session.phase == Phase::Connected {
                return;
            }
        }
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
        if matches!(session.phase, Phase::Playing | Phase::Detached) {
            // A name claimed again on a host that restarted (`on_peers`).
            if !ok {
                tracing::warn!(name = %session.name, "cluster: a restarted host gave this player's name to another");
            }
            return;
        }
        if !ok {
            if session.busy_kind == "login_generated" {
                let name = self.guest_name();
                let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
                    return;
                };
                session.name_key = name_key(&name).into_boxed_str();
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
        if !self.login_arrivals.is_empty() {
            self.login_arrivals.remove(&sid);
        }
        let shards = self.router.shards();
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        if session.phase == Phase::Zombie {
            self.welcome_notes.remove(&sid);
            return self.bury(sid);
        }
        let token = if session.account {
            let key = session.name_key.clone();
            self.account_token(&key)
        } else {
            // A guest resumes with an unguessable token, never its session id.
            match SessionToken::generate() {
                Ok(secret) => {
                    session.resume_token = Box::from(secret.as_str());
                    super::resume::guest_token(&secret, sid)
                }
                Err(e) => {
                    tracing::error!(error = %e, "welcome: no session token");
                    session.phase = Phase::Playing;
                    self.players += 1;
                    self.send_error(
                        sid.slot(),
                        "unavailable",
                        "The server cannot log you in now.",
                    );
                    if let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) {
                        session.request_close(close::UNAVAILABLE);
                    }
                    return self.complete(sid);
                }
            }
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
        if let Some(note) = self.welcome_notes.remove(&sid) {
            self.deliver(sid, encode::event("system", "", "", note));
        }
        self.complete(sid);
    }
}
