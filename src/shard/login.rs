//! Accounts at the edge: `register`, `login` by password or token, guests
//! kept off registered names, and takeover of an account that is online.
//! Everything here runs on the connection's shard; the slow parts (argon2,
//! SQLite) run on their own threads and answer through `Msg::Call`, so the
//! shard keeps serving its other players meanwhile.
//!
//! Each step waits for exactly one answer, recorded in `Shard::logins`:
//!
//! ```text
//! register: rules → limiter → claim name → hash → commit account → body
//! login:    rules → limiter → load account → verify (a dummy one when the
//!           name has none) → claim name, taking it over → load again → body
//! token:    check signature and expiry → claim, taking over → load → body
//! guest:    claim name → (a chosen name) no account has it → body
//! ```
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

use super::msg::{Arrival, Body, Msg};
use super::session::Phase;
use super::{directory, SessionId, Shard, ShardAddr};
use crate::auth::password::{HashError, SubmitError};
use crate::protocol::names::{
    reserved_for_guests, validate_name, validate_password, PASSWORD_CHARS_MAX,
};
use crate::protocol::{close, encode};
use crate::store::{AccountRecord, RegisterError, Reply, StoreError};
use crate::world::RoomIdx;

/// The one answer to every failed password or token login: it must not tell
/// whether the name exists.
pub const BAD_CREDENTIALS: &str = "Wrong name or password.";

/// The limiter key that failures with a name breaking the rules count
/// against (with the address): never a real name, and never an unbounded
/// string from the client kept in the limiter's table.
pub const INVALID_NAME_KEY: &str = "";

/// What an account login or registration is waiting for.
pub enum Login {
    /// register: the name claim (`Claimed`); the password waits to be hashed.
    RegisterClaim { password: String },
    /// register: the hash of the password.
    RegisterHash,
    /// register: the store's commit of the new account.
    RegisterCommit,
    /// login: the account (its hash) from the store.
    VerifyLoad { password: String },
    /// login: the hasher's verdict on the password.
    Verify,
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

    /// `{"type":"register","name","password"}` from a session not logged in.
    pub(super) fn register(&mut self, slot: u32, name: &str, password: String) {
        let key = match validate_name(name) {
            Ok(key) => key,
            Err(e) => return self.send_error(slot, e.code(), &capitalized(&e.to_string())),
        };
        if reserved_for_guests(&key) {
            return self.send_error(
                slot,
                "invalid_name",
                "Names like guest1_2 are kept for guests; choose another.",
            );
        }
        if let Err(e) = validate_password(&password) {
            return self.send_error(slot, e.code(), &capitalized(&e.to_string()));
        }
        let Some(sid) = self.start_login(slot, name, &key) else {
            return;
        };
        self.logins.insert(sid, Login::RegisterClaim { password });
        self.claim(sid, key, false);
    }

    /// `{"type":"login","name","password"}` from a session not logged in.
    pub(super) fn login_password(&mut self, slot: u32, name: &str, password: String) {
        let ip = self.peer_ip(slot);
        // A name that breaks the rules has no account: the same answer as
        // any wrong name, and counted the same.
        let key = match validate_name(name) {
            Ok(key) if password.chars().count() <= PASSWORD_CHARS_MAX => key,
            _ => {
                self.limiter
                    .record_failure(INVALID_NAME_KEY, ip, Instant::now());
                return self.send_error(slot, "bad_credentials", BAD_CREDENTIALS);
            }
        };
        let Some(sid) = self.start_login(slot, name, &key) else {
            return;
        };
        self.logins.insert(sid, Login::VerifyLoad { password });
        let reply = self.reply_here(move |sh, result| sh.on_account_loaded(sid, result));
        self.store.load_account(&key, reply);
    }

    /// `{"type":"login","token":T}`: a token from `welcome` or the HTTP API.
    pub(super) fn login_token(&mut self, slot: u32, token: &str) {
        let key = match self.signer.verify(token, unix_now_s()) {
            Ok(key) => key,
            Err(_) => return self.send_error(slot, "bad_credentials", "Invalid or expired token."),
        };
        let Some(sid) = self.start_login(slot, &key, &key) else {
            return;
        };
        self.logins.insert(sid, Login::AccountClaim);
        self.claim(sid, key, true);
    }

    /// Checks the limiter and marks the session as logging in; `None` (and
    /// the answer already sent) when it may not.
    fn start_login(&mut self, slot: u32, name: &str, key: &str) -> Option<SessionId> {
        let ip = self.peer_ip(slot);
        if let Err(retry) = self.limiter.check(key, ip, Instant::now()) {
            self.counters.stats.rate_limited += 1;
            self.send_error(
                slot,
                "rate_limited",
                &format!(
                    "Too many failed attempts; try again in {} s.",
                    retry.after_s
                ),
            );
            return None;
        }
        let session = self.sessions.by_slot(slot)?;
        session.name = Box::from(name);
        session.name_key = Box::from(key);
        session.phase = Phase::LoggingIn;
        session.busy_since = Some(Instant::now());
        session.busy_kind = "login";
        Some(SessionId::new(
            ShardAddr::new(self.host, self.id),
            slot,
            session.gen,
        ))
    }

    fn peer_ip(&mut self, slot: u32) -> IpAddr {
        self.sessions
            .by_slot(slot)
            .map_or(IpAddr::from([0, 0, 0, 0]), |s| s.peer_ip)
    }

    /// Asks the directory shard of `key` to give the name to `sid`.
    pub(super) fn claim(&mut self, sid: SessionId, key: impl Into<Box<str>>, takeover: bool) {
        let key = key.into();
        let shards = self.router.shards();
        self.router.post(
            directory::shard_of(&key, shards),
            Msg::Claim { key, sid, takeover },
        );
    }

    /// Lets go of `sid`'s hold on `key` in the directory.
    pub(super) fn release(&mut self, sid: SessionId, key: Box<str>) {
        let shards = self.router.shards();
        self.router
            .post(directory::shard_of(&key, shards), Msg::Release { key, sid });
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
            Some(Login::RegisterClaim { password }) => {
                if !ok {
                    return self.refuse_taken(sid);
                }
                self.logins.insert(sid, Login::RegisterHash);
                let reply = self.reply_here(move |sh, result| sh.on_hashed(sid, result));
                if let Err(e) = self.hasher.hash(password, reply) {
                    self.logins.remove(&sid);
                    self.hasher_refused(sid, e);
                }
            }
            Some(Login::AccountClaim) => {
                if !ok {
                    // Only a takeover claim is made here, and it never fails.
                    return self.fail_login(sid, "unavailable", "Could not log in; try again.");
                }
                self.logins.insert(sid, Login::AccountLoad);
                let key = self.key_of(sid);
                let reply = self.reply_here(move |sh, result| sh.on_account_loaded(sid, result));
                self.store.load_account(&key, reply);
            }
            Some(other) => {
                self.logins.insert(sid, other);
            }
            None => {}
        }
    }

    fn on_hashed(&mut self, sid: SessionId, result: Result<String, HashError>) {
        let Some(Login::RegisterHash) = self.resume_login(sid) else {
            return;
        };
        let hash = match result {
            Ok(hash) => hash,
            Err(e) => {
                tracing::error!(error = %e, "register: hashing failed");
                return self.fail_login(sid, "unavailable", "Could not register; try again.");
            }
        };
        let Some(name) = self
            .sessions
            .get_mut(sid.slot(), sid.gen())
            .map(|s| s.name.to_string())
        else {
            return;
        };
        self.logins.insert(sid, Login::RegisterCommit);
        let start = self.world.room(self.world.start).id.clone();
        let reply = self.reply_here(move |sh, result| sh.on_registered(sid, result));
        self.store.register(&name, hash, &start, reply);
    }

    fn on_registered(&mut self, sid: SessionId, result: Result<AccountRecord, RegisterError>) {
        if self.resume_login(sid).is_none() {
            return;
        }
        match result {
            Ok(record) => self.spawn_account(sid, record),
            Err(RegisterError::NameTaken) => self.refuse_taken(sid),
            Err(RegisterError::Store(e)) => {
                tracing::error!(error = %e, "register: the store failed");
                self.fail_login(sid, "unavailable", "Could not register; try again.")
            }
        }
    }

    fn on_account_loaded(
        &mut self,
        sid: SessionId,
        result: Result<Option<AccountRecord>, StoreError>,
    ) {
        let Some(login) = self.resume_login(sid) else {
            return;
        };
        let record = match result {
            Ok(record) => record,
            Err(e) => {
                tracing::error!(error = %e, "login: the store failed");
                return self.fail_login(sid, "unavailable", "Could not log in; try again.");
            }
        };
        match (login, record) {
            (Login::VerifyLoad { password }, record) => {
                self.logins.insert(sid, Login::Verify);
                let reply = self.reply_here(move |sh, ok| sh.on_verified(sid, ok));
                let submitted = match record {
                    Some(record) => self.hasher.verify(password, record.password_hash, reply),
                    None => self.hasher.verify_missing_account(password, reply),
                };
                if let Err(e) = submitted {
                    self.logins.remove(&sid);
                    self.hasher_refused(sid, e);
                }
            }
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

    fn on_verified(&mut self, sid: SessionId, ok: bool) {
        let Some(Login::Verify) = self.resume_login(sid) else {
            return;
        };
        let key = self.key_of(sid);
        if !ok {
            let ip = self.peer_ip(sid.slot());
            self.limiter.record_failure(&key, ip, Instant::now());
            return self.fail_login(sid, "bad_credentials", BAD_CREDENTIALS);
        }
        self.logins.insert(sid, Login::AccountClaim);
        self.claim(sid, key, true);
    }

    /// A guest's chosen name is claimed: make sure no account has it.
    pub(super) fn check_guest_name(&mut self, sid: SessionId) {
        self.logins.insert(sid, Login::GuestCheck);
        let key = self.key_of(sid);
        let reply = self.reply_here(move |sh, result| sh.on_account_loaded(sid, result));
        self.store.load_account(&key, reply);
    }

    /// The account is ours: its body enters its last room with what it carried.
    fn spawn_account(&mut self, sid: SessionId, record: AccountRecord) {
        let room = match self.world.room_index(&record.room) {
            Some(room) => room,
            None => {
                tracing::warn!(room = %record.room, "login: saved room not in the world; using the start room");
                self.world.start
            }
        };
        let name = record.name.into_boxed_str();
        self.spawn_body(sid, name, room, record.inventory, true);
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
        self.router.post_to(
            self.placement.owner(room),
            Msg::Arrive {
                body,
                room,
                how: Arrival::Login,
                id: None,
            },
        );
    }

    fn key_of(&mut self, sid: SessionId) -> String {
        self.sessions
            .get_mut(sid.slot(), sid.gen())
            .map_or_else(String::new, |s| s.name_key.to_string())
    }

    fn refuse_taken(&mut self, sid: SessionId) {
        let key = self.key_of(sid);
        let ip = self.peer_ip(sid.slot());
        self.limiter.record_failure(&key, ip, Instant::now());
        let name = self
            .sessions
            .get_mut(sid.slot(), sid.gen())
            .map_or_else(String::new, |s| s.name.to_string());
        self.fail_login(sid, "name_taken", &format!("The name {name} is taken."));
    }

    fn hasher_refused(&mut self, sid: SessionId, e: SubmitError) {
        match e {
            SubmitError::Busy => {
                self.fail_login(sid, "busy", "The server is busy; try again in a moment.")
            }
            SubmitError::Stopped => self.fail_login(sid, "unavailable", "The server is stopping."),
        }
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
                .post(new.shard(), Msg::Claimed { sid: new, ok: true });
        }
        self.send_error(sid.slot(), code, message);
    }

    /// A newer login took the account of `old` over.
    pub(super) fn on_taken_over(&mut self, old: SessionId, new: SessionId) {
        let go_ahead = Msg::Claimed { sid: new, ok: true };
        let Some(session) = self.sessions.get_mut(old.slot(), old.gen()) else {
            // Gone already: its body was departed when it was buried.
            return self.router.post(new.shard(), go_ahead);
        };
        match session.phase {
            // No connection to close: it leaves now, and the new login goes
            // ahead once its body is saved and gone.
            Phase::Detached => {
                self.handoffs.insert(old, new);
                self.expire_detached(old.slot());
            }
            // Nothing held: nothing to wait for.
            Phase::Connected => self.router.post(new.shard(), go_ahead),
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

/// The rules' messages start lower-case (they are also used mid-sentence).
fn capitalized(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
