//! Logins at the edge: `register`, `login` by password or token, guests
//! kept off registered names, and takeover of an account that is online.
//! The account parts (rules, limiter, hashing, the store's account) are the
//! account service's (`shard::accounts`, shared with the JSON API); what is
//! here belongs to a live session: its name claim in the directory, taking
//! over an account that is online, loading the body, and a session whose
//! connection went while an answer was in flight. Everything runs on the
//! connection's shard; the slow parts answer through `Msg::Call`, so the
//! shard keeps serving its other players meanwhile.
//!
//! Each step waits for exactly one answer, recorded in `Shard::logins`:
//!
//! ```text
//! register: admit (service) → claim name → create (service) → body
//! login:    check password (service) → claim name, taking it over → load → body
//! token:    check signature and expiry → claim, taking over → load → body
//! guest:    claim name → (a chosen name) no account has it → body
//! ```
//!
//! A registration claims its name before the hash, so that of two sessions
//! racing for one name only one pays for it and the other hears `name_taken`.
//!
//! Takeover: the directory gives the name to the new session at once and
//! tells the old one's shard (`TakenOver`). That shard sends the old client a
//! `system` event, closes it with [`close::TAKEN_OVER`](crate::protocol::close::TAKEN_OVER),
//! and departs its body with `notify`; the body's owner saves it, flushes the
//! store, and only then answers the new session `Claimed`. The new session
//! loads the account after that, so it gets the newest room and inventory, and
//! the two bodies never exist at once.

use std::net::IpAddr;
use std::time::Instant;

use super::accounts::{AccountError, NewAccount};
use super::msg::{Arrival, Body, Msg};
use super::session::Phase;
use super::{SessionId, Shard, ShardAddr};
use crate::protocol::names::name_key;
use crate::protocol::{close, encode};
use crate::store::{AccountRecord, Reply, StoreError};
use crate::world::RoomIdx;

/// The body of a login sent to a room in another host's land, kept until
/// the welcome.
pub(super) struct LoginArrival {
    host: u16,
    body: Body,
}

const HOST_STOPPED_AT_LOGIN: &str = "The land you were in when you left is kept by a host that \
     stopped as you came in. You wake up at the start, with what you carried.";
const UNREACHABLE_LAND: &str = "The land you were in when you left is kept by a host that cannot \
     be reached now. You wake up at the start, with what you carried.";

/// What an account login or registration is waiting for.
pub enum Login {
    /// register: the name claim (`Claimed`); the account is created after it.
    RegisterClaim { new: NewAccount },
    /// register: the account service creating the account.
    Register,
    /// login: the account service checking the password.
    Password,
    /// A verified login: the name claim, maybe after a takeover.
    AccountClaim,
    /// A verified login with its name: the account's room and inventory.
    AccountLoad,
    /// A guest with a chosen name: whether an account has that name.
    GuestCheck,
}

impl Shard {
    /// A reply closure for the store or hasher thread: it posts `f` with
    /// the value back to this shard, where it runs with the shard's state.
    pub fn reply_here<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Shard, T) + Send + 'static,
    ) -> Reply<T> {
        let mailbox = self.router.mailbox(self.id);
        Box::new(move |value| {
            if let Some(mailbox) = mailbox {
                mailbox.send(Msg::Call(Box::new(move |sh| f(sh, value))));
            }
        })
    }

    /// Reads `key`'s account from this host's store and runs `f` with it on
    /// this shard. A name that the account filter rules out has no account:
    /// it is answered here, right after what the shard is handling, with no
    /// trip to the store thread (`store::AccountFilter`).
    pub(super) fn load_account_here(
        &mut self,
        key: &str,
        f: impl FnOnce(&mut Shard, Result<Option<AccountRecord>, StoreError>) + Send + 'static,
    ) {
        if !self.store.may_have_account(key) {
            let me = self.id;
            self.router
                .post(me, Msg::Call(Box::new(move |sh| f(sh, Ok(None)))));
            return;
        }
        let reply = self.reply_here(f);
        self.store.load_account(key, reply);
    }

    /// `{"type":"register","name","password"}` from a session not logged in.
    pub(super) fn register(&mut self, slot: u32, name: &str, password: String) {
        let ip = self.peer_ip(slot);
        let new = match self.admit_new_account(name, password, ip) {
            Ok(new) => new,
            Err(e) => return self.send_error(slot, e.code(), &e.to_string()),
        };
        let Some(sid) = self.start_login(slot) else {
            return;
        };
        self.name_session(sid, new.name(), new.key());
        let key = Box::from(new.key());
        self.logins.insert(sid, Login::RegisterClaim { new });
        self.claim(sid, key, false);
    }

    /// `{"type":"login","name","password"}` from a session not logged in.
    /// The session has no name until the password is checked: it holds
    /// nothing in the directory meanwhile.
    pub(super) fn login_password(&mut self, slot: u32, name: &str, password: String) {
        let ip = self.peer_ip(slot);
        let Some(sid) = self.start_login(slot) else {
            return;
        };
        self.logins.insert(sid, Login::Password);
        self.check_password(name, password, ip, move |sh, checked| {
            sh.on_password_checked(sid, checked)
        });
    }

    /// `{"type":"login","token":T}`: a token from `welcome` or the HTTP API.
    pub(super) fn login_token(&mut self, slot: u32, token: &str) {
        // A token names no account until it verifies: failures count
        // against the address alone.
        let ip = self.peer_ip(slot);
        if self.refuse_if_limited(slot, "", ip) {
            return;
        }
        let key = match self.signer.verify(token, unix_now_s()) {
            Ok(key) => key,
            Err(_) => {
                self.limiter.record_failure("", ip, Instant::now());
                return self.send_error(slot, "bad_credentials", "Invalid or expired token.");
            }
        };
        let Some(sid) = self.start_login(slot) else {
            return;
        };
        self.name_session(sid, &key, &key);
        self.logins.insert(sid, Login::AccountClaim);
        self.claim(sid, key, true);
    }

    /// Marks the session as logging in; `None` when it is gone.
    fn start_login(&mut self, slot: u32) -> Option<SessionId> {
        let session = self.sessions.by_slot(slot)?;
        session.phase = Phase::LoggingIn;
        session.busy_since = Some(Instant::now());
        session.busy_kind = "login";
        Some(SessionId::new(
            ShardAddr::new(self.host, self.id),
            slot,
            session.gen,
        ))
    }

    /// The name a session logs in as; its key is what it claims in the
    /// directory, and what `fail_login` and `bury` let go.
    fn name_session(&mut self, sid: SessionId, name: &str, key: &str) {
        if let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) {
            session.name = Box::from(name);
            session.name_key = Box::from(key);
        }
    }

    pub(super) fn peer_ip(&mut self, slot: u32) -> IpAddr {
        self.sessions
            .by_slot(slot)
            .map_or(IpAddr::from([0, 0, 0, 0]), |s| s.peer_ip)
    }

    /// Asks the directory shard of `key` to give the name to `sid`.
    /// In a cluster the name's keeper may be another host: while the bridge
    /// is down that claim cannot be decided, and the login fails at once.
    /// The name is claimed as the session writes it (`name_session`).
    pub(super) fn claim(&mut self, sid: SessionId, key: impl Into<Box<str>>, takeover: bool) {
        let key = key.into();
        let name = self
            .sessions
            .get_mut(sid.slot(), sid.gen())
            .map_or_else(|| key.clone(), |s| s.name.clone());
        let keeper = self.keeper_of(&key);
        if !self.reachable(keeper.host) {
            return self.fail_login(
                sid,
                "unreachable",
                "The host that keeps this name cannot be reached; try again shortly.",
            );
        }
        if !self.router.post_to(
            keeper,
            Msg::Claim {
                key,
                sid,
                takeover,
                run: 0,
                name,
            },
        ) {
            return self.fail_login(
                sid,
                "unreachable",
                "The host that keeps this name cannot be reached; try again shortly.",
            );
        }
        if self.router_has_bridge() && (keeper.host != self.host || takeover) {
            self.wait_on_claim(sid, takeover, keeper.host);
        }
    }

    /// Lets go of `sid`'s hold on `key` in the directory.
    pub(super) fn release(&mut self, sid: SessionId, key: Box<str>) {
        let keeper = self.keeper_of(&key);
        self.router.post_to(keeper, Msg::Release { key, sid });
    }

    /// The flow of `sid` if the session still wants it. A session whose
    /// connection is gone is let go here (its name released, a waiting
    /// takeover told), since this answer was the last thing in flight.
    fn resume_login(&mut self, sid: SessionId) -> Option<Login> {
        let login = self.logins.remove(&sid);
        let session = self.sessions.get_mut(sid.slot(), sid.gen())?;
        if session.phase == Phase::Zombie {
            self.bury(sid);
            return None;
        }
        login
    }

    /// An account flow's name claim was answered.
    pub(super) fn on_account_claimed(&mut self, sid: SessionId, ok: bool) {
        match self.resume_login(sid) {
            Some(Login::RegisterClaim { new }) => {
                if !ok {
                    let taken = self.name_taken(&new);
                    return self.fail_account(sid, &taken);
                }
                self.logins.insert(sid, Login::Register);
                self.commit_new_account(new, move |sh, created| sh.on_registered(sid, created));
            }
            Some(Login::AccountClaim) => {
                if !ok {
                    // Only a takeover claim is made here, and it never fails.
                    return self.fail_login(sid, "unavailable", "Could not log in; try again.");
                }
                self.logins.insert(sid, Login::AccountLoad);
                let key = self.key_of(sid);
                let then =
                    Box::new(move |sh: &mut Shard, result| sh.on_account_loaded(sid, result));
                self.load_account_anywhere(&key, then);
            }
            Some(other) => {
                self.logins.insert(sid, other);
            }
            None => {}
        }
    }

    fn on_registered(&mut self, sid: SessionId, created: Result<AccountRecord, AccountError>) {
        let Some(Login::Register) = self.resume_login(sid) else {
            return;
        };
        match created {
            Ok(record) => self.spawn_account(sid, record),
            Err(e) => self.fail_account(sid, &e),
        }
    }

    /// The password is the account's: claim its name, taking it over from a
    /// session that has it.
    fn on_password_checked(
        &mut self,
        sid: SessionId,
        checked: Result<AccountRecord, AccountError>,
    ) {
        let Some(Login::Password) = self.resume_login(sid) else {
            return;
        };
        let record = match checked {
            Ok(record) => record,
            Err(e) => return self.fail_account(sid, &e),
        };
        let key = name_key(&record.name);
        self.name_session(sid, &record.name, &key);
        self.logins.insert(sid, Login::AccountClaim);
        self.claim(sid, key, true);
    }

    /// The account's room and inventory (a verified login), or whether a
    /// guest's chosen name has an account.
    fn on_account_loaded(&mut self, sid: SessionId, result: Result<Option<AccountRecord>, String>) {
        let Some(login) = self.resume_login(sid) else {
            return;
        };
        let record = match result {
            Ok(record) => record,
            Err(e) => {
                tracing::error!(error = %e, "login: the account could not be read");
                return self.fail_login(sid, "unavailable", "Could not log in; try again.");
            }
        };
        match (login, record) {
            (Login::AccountLoad, Some(record)) => self.spawn_account(sid, record),
            (Login::AccountLoad, None) => {
                self.fail_login(sid, "bad_credentials", "Invalid or expired token.")
            }
            (Login::GuestCheck, None) => self.spawn_guest(sid),
            (Login::GuestCheck, Some(_)) => self.fail_login(
                sid,
                "name_taken",
                "That name belongs to a registered player; choose another or log in.",
            ),
            (other, _) => {
                self.logins.insert(sid, other);
            }
        }
    }

    /// A guest's chosen name is claimed: make sure no account has it.
    pub(super) fn check_guest_name(&mut self, sid: SessionId) {
        self.logins.insert(sid, Login::GuestCheck);
        let key = self.key_of(sid);
        let then = Box::new(move |sh: &mut Shard, result| sh.on_account_loaded(sid, result));
        self.load_account_anywhere(&key, then);
    }

    /// The account is ours: its body enters its last room with what it carried.
    fn spawn_account(&mut self, sid: SessionId, record: AccountRecord) {
        let mut room = match self.world.room_index(&record.room) {
            Some(room) => room,
            None => {
                tracing::warn!(room = %record.room, "login: saved room not in the world; using the start room");
                self.world.start
            }
        };
        // Saved in another host's land, and that host is down (or Redis
        // is): the body would wait there for nobody. It wakes at this
        // host's start with what it carried, and is told after its welcome.
        if !self.reachable(self.placement.owner(room).host) {
            tracing::info!(room = %record.room, "login: the saved room's host cannot be reached; using the start room");
            room = self.world.start;
            self.welcome_notes.insert(sid, UNREACHABLE_LAND);
        }
        let name = record.name.into_boxed_str();
        self.spell(sid, &name);
        self.spawn_body(sid, name, room, record.inventory, true);
    }

    /// A token login claimed its name as its key: now that the account is
    /// read, the directory learns how it is written.
    fn spell(&mut self, sid: SessionId, name: &str) {
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        if *session.name == *name {
            return;
        }
        let key = session.name_key.clone();
        let keeper = self.keeper_of(&key);
        let name = Box::from(name);
        self.router.post_to(keeper, Msg::Spell { key, sid, name });
    }

    /// A guest's body enters the start room with nothing.
    pub(super) fn spawn_guest(&mut self, sid: SessionId) {
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        let name = session.name.clone();
        let start = self.world.start;
        self.spawn_body(sid, name, start, Vec::new(), false);
    }

    fn spawn_body(
        &mut self,
        sid: SessionId,
        name: Box<str>,
        room: RoomIdx,
        inventory: Vec<String>,
        account: bool,
    ) {
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        session.name = name.clone();
        session.account = account;
        let body = Body {
            sid,
            name,
            inventory,
            account,
        };
        let owner = self.placement.owner(room);
        let elsewhere = owner.host != self.host;
        if elsewhere {
            // Kept until the welcome, in case that host dies before it takes
            // the body in (`wake_logins_sent_to`).
            self.login_arrivals.insert(
                sid,
                LoginArrival {
                    host: owner.host,
                    body: body.clone(),
                },
            );
        }
        let sent = self.router.post_to(
            owner,
            Msg::Arrive {
                body,
                room,
                how: Arrival::Login,
                id: None,
                ack_to: None,
                ticket: 0,
            },
        );
        if elsewhere && !sent {
            // The bridge could not take it (down, or its queue full): the
            // body would wait there for nobody.
            self.wake_login_at_start(sid, UNREACHABLE_LAND);
        }
    }

    /// The logins whose body went to `host`, which died before welcoming
    /// them, wake at this host's start with what they carried, and are told
    /// why after their welcome. (A host that restarted is not asked: its new
    /// run may have taken the body in; one lost with the old run waits out
    /// the login's deadline.)
    pub(super) fn wake_logins_sent_to(&mut self, host: u16) {
        if self.login_arrivals.is_empty() {
            return;
        }
        let lost: Vec<SessionId> = self
            .login_arrivals
            .iter()
            .filter(|(_, a)| a.host == host)
            .map(|(sid, _)| *sid)
            .collect();
        for sid in lost {
            self.wake_login_at_start(sid, HOST_STOPPED_AT_LOGIN);
        }
    }

    /// Sends the kept body of the login `sid` to this host's start instead,
    /// with `note` for after its welcome.
    fn wake_login_at_start(&mut self, sid: SessionId, note: &'static str) {
        let Some(LoginArrival { body, .. }) = self.login_arrivals.remove(&sid) else {
            return;
        };
        let logging_in = self
            .sessions
            .get_mut(sid.slot(), sid.gen())
            .is_some_and(|s| s.phase == Phase::LoggingIn);
        if !logging_in {
            return;
        }
        tracing::info!(player = %body.name, note, "login: the body did not reach the saved room's host; using the start room");
        self.welcome_notes.insert(sid, note);
        let start = self.world.start;
        self.router.post_to(
            self.placement.owner(start),
            Msg::Arrive {
                body,
                room: start,
                how: Arrival::Login,
                id: None,
                ack_to: None,
                ticket: 0,
            },
        );
    }

    /// Forgets the kept bodies of logins that ended (welcomed, or closed)
    /// without hearing of their host.
    pub(super) fn forget_login_arrivals(&mut self) {
        if self.login_arrivals.is_empty() {
            return;
        }
        let sessions = &mut self.sessions;
        self.login_arrivals.retain(|sid, _| {
            sessions
                .get_mut(sid.slot(), sid.gen())
                .is_some_and(|s| s.phase == Phase::LoggingIn)
        });
    }

    fn key_of(&mut self, sid: SessionId) -> String {
        self.sessions
            .get_mut(sid.slot(), sid.gen())
            .map_or_else(String::new, |s| s.name_key.to_string())
    }

    /// Ends a login that the account service refused, with its code and message.
    fn fail_account(&mut self, sid: SessionId, e: &AccountError) {
        self.fail_login(sid, e.code(), &e.to_string());
    }

    /// Ends a login that failed: the session is back to not logged in, its
    /// name let go, and a takeover waiting on it told to go ahead.
    pub(super) fn fail_login(&mut self, sid: SessionId, code: &str, message: &str) {
        self.logins.remove(&sid);
        let Some(session) = self.sessions.get_mut(sid.slot(), sid.gen()) else {
            return;
        };
        let key = std::mem::replace(&mut session.name_key, Box::from(""));
        session.name = Box::from("");
        session.phase = Phase::Connected;
        session.busy_since = None;
        session.pending.clear();
        if !key.is_empty() {
            self.release(sid, key);
        }
        if let Some(new) = self.handoffs.remove(&sid) {
            self.router
                .post_to(new.addr(), Msg::Claimed { sid: new, ok: true });
        }
        self.send_error(sid.slot(), code, message);
    }

    /// A newer login took the account of `old` over.
    pub(super) fn on_taken_over(&mut self, old: SessionId, new: SessionId) {
        let go_ahead = Msg::Claimed { sid: new, ok: true };
        let Some(session) = self.sessions.get_mut(old.slot(), old.gen()) else {
            // Gone already: its body was departed when it was buried.
            self.router.post_to(new.addr(), go_ahead);
            return;
        };
        match session.phase {
            // No connection to close: it leaves now, and the new login goes
            // ahead once its body is saved and gone.
            Phase::Detached => {
                self.handoffs.insert(old, new);
                self.expire_detached(old.slot());
            }
            // Nothing held: nothing to wait for.
            Phase::Connected => {
                self.router.post_to(new.addr(), go_ahead);
            }
            // Buried when its last message lands; the handoff goes with it.
            Phase::Zombie => {
                self.handoffs.insert(old, new);
            }
            Phase::LoggingIn | Phase::Playing => {
                self.handoffs.insert(old, new);
                if session.phase == Phase::Playing {
                    let event = encode::event("system", "", "", "Logged in from elsewhere.");
                    self.deliver(old, event);
                }
                if let Some(session) = self.sessions.get_mut(old.slot(), old.gen()) {
                    session.request_close(close::LOGGED_IN_ELSEWHERE);
                }
            }
        }
    }

    /// The token in an account's `welcome`.
    pub fn account_token(&self, key: &str) -> String {
        self.signer.issue(key, self.config.auth.token_ttl_s)
    }
}

/// Seconds since the Unix epoch: the clock of token expiry.
pub fn unix_now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
