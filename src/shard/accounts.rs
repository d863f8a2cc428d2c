//! The account service: creating an account and checking a password, one
//! flow for a WebSocket session (`shard::login`) and for the JSON API
//! (`net::api`). The name and password rules, the limit on failed attempts,
//! the dummy verification that hides whether a name exists, and the code of
//! every refusal live here and nowhere else.
//!
//! ```text
//! create_account: rules → guest names → limiter │ hash → commit
//!                 └──── admit_new_account ────┘ └ commit_new_account ┘
//! check_password: rules → limiter → load → verify (a dummy one when the
//!                 name has no account)
//! ```
//!
//! A registration is two steps so that a WebSocket session can claim the
//! name in the directory between them: two sessions racing for one name are
//! told apart before either pays for a hash. The JSON API has no session to
//! hold a name and calls both at once (`create_account`); the store's
//! uniqueness decides there.
//!
//! Only failures count against the limiter (DESIGN §4): a wrong password, a
//! name without an account, a name taken. A login with a name that breaks
//! the rules counts against [`INVALID_NAME_KEY`] and the address, so it
//! costs the same as a wrong name without putting the client's string in
//! the limiter's table. A registration that breaks the rules is told so and
//! not counted: it names no one.
//!
//! The slow parts run on the hasher and store threads; their answers come
//! back through this shard's inbox (`Shard::reply_here`). `then` runs on
//! this shard exactly once: at once when the attempt is refused before any
//! slow work, later when the threads answer. It is dropped unrun only when
//! the shard stops first.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::Shard;
use crate::auth::password::{HashError, SubmitError};
use crate::protocol::names::{
    reserved_for_guests, validate_name, validate_password, RuleError, PASSWORD_CHARS_MAX,
};
use crate::store::{AccountRecord, RegisterError, StoreError};

/// The limiter key that login failures with a name breaking the rules count
/// against (with the address): never a real name, and never an unbounded
/// string from the client kept in the limiter's table.
pub const INVALID_NAME_KEY: &str = "";

/// Why an account could not be created or a password was not accepted. The
/// one source of the stable `code`, the message for the player (`Display`)
/// and the HTTP status, for the WebSocket `error` frame and the JSON API alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountError {
    /// A registration's name or password breaks the rules.
    Rules(RuleError),
    /// A registration's name has the form the server gives guests.
    ReservedForGuests,
    /// A wrong password, or a name with no account: one answer for both.
    BadCredentials,
    /// The name belongs to an account, or to a session registering it.
    NameTaken { name: String },
    /// Too many failed attempts for the name or from the address.
    RateLimited { retry_after_s: u64 },
    /// The hasher's queue is full; nothing was done.
    Busy,
    /// The hasher or the store failed or is stopping.
    Unavailable,
    /// The account is kept by another host, which cannot be reached now.
    HomeUnreachable,
}

impl AccountError {
    /// The protocol's machine-readable code (DESIGN §4).
    pub fn code(&self) -> &'static str {
        match self {
            AccountError::Rules(e) => e.code(),
            AccountError::ReservedForGuests => "invalid_name",
            AccountError::BadCredentials => "bad_credentials",
            AccountError::NameTaken { .. } => "name_taken",
            AccountError::RateLimited { .. } => "rate_limited",
            AccountError::Busy => "busy",
            AccountError::Unavailable => "unavailable",
            AccountError::HomeUnreachable => "unreachable",
        }
    }

    /// The status of the JSON API's answer (DESIGN §4 lists `name_taken`
    /// as a 400, with the other refusals of the request's content).
    pub fn http_status(&self) -> u16 {
        match self {
            AccountError::Rules(_)
            | AccountError::ReservedForGuests
            | AccountError::NameTaken { .. } => 400,
            AccountError::BadCredentials => 401,
            AccountError::RateLimited { .. } => 429,
            AccountError::Busy | AccountError::Unavailable | AccountError::HomeUnreachable => 503,
        }
    }
}

impl fmt::Display for AccountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The rules' messages start lower-case (they are also used
            // mid-sentence); as a message of their own they start upper-case.
            AccountError::Rules(e) => {
                let message = e.to_string();
                let mut chars = message.chars();
                if let Some(first) = chars.next() {
                    write!(f, "{}", first.to_uppercase())?;
                }
                f.write_str(chars.as_str())
            }
            AccountError::ReservedForGuests => {
                f.write_str("Names like guest1_2 are kept for guests; choose another.")
            }
            AccountError::BadCredentials => f.write_str("Wrong name or password."),
            AccountError::NameTaken { name } => write!(f, "The name {name} is taken."),
            AccountError::RateLimited { retry_after_s } => write!(
                f,
                "Too many failed attempts; try again in {retry_after_s} s."
            ),
            AccountError::Busy => f.write_str("The server is busy; try again in a moment."),
            AccountError::Unavailable => f.write_str("Accounts are unavailable; try again."),
            AccountError::HomeUnreachable => f.write_str(
                "The host that keeps this account cannot be reached; try again shortly.",
            ),
        }
    }
}

impl std::error::Error for AccountError {}

impl From<SubmitError> for AccountError {
    fn from(e: SubmitError) -> AccountError {
        match e {
            SubmitError::Busy => AccountError::Busy,
            SubmitError::Stopped => AccountError::Unavailable,
        }
    }
}

/// What the caller of the service is told, on this shard.
type AccountAnswer = Box<dyn FnOnce(&mut Shard, Result<AccountRecord, AccountError>) + Send>;

/// A registration that kept the rules and passed the limiter: the only way
/// to [`Shard::commit_new_account`], so nothing unchecked reaches the hasher.
pub struct NewAccount {
    name: String,
    key: String,
    password: String,
    ip: IpAddr,
    /// The room its player starts in, when not this host's start room (an
    /// account created here for a player who registered on another host).
    start: Option<String>,
}

impl NewAccount {
    /// The name as typed: the account's display form.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name's key (lower case): what the directory and the store match.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The same account, its player starting in room `start` (an id of the
    /// world; an unknown one falls back to the start room at login).
    pub fn starting_in(mut self, start: &str) -> NewAccount {
        self.start = Some(start.to_owned());
        self
    }
}

/// A checked name with the password to verify against its account.
struct Attempt {
    key: String,
    password: String,
    ip: IpAddr,
}

/// `then` while the hasher has the job. The hasher's reply takes it; when
/// the pool refuses the job it drops the reply unrun, and the refusal takes
/// it instead, so `then` still hears `busy`.
#[derive(Clone)]
struct Held(Arc<Mutex<Option<AccountAnswer>>>);

impl Held {
    fn new(then: AccountAnswer) -> Held {
        Held(Arc::new(Mutex::new(Some(then))))
    }

    fn take(&self) -> Option<AccountAnswer> {
        // A poisoned lock only means a panic elsewhere; the slot is intact.
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}

impl Shard {
    /// Creates an account: rules, guest names, limiter, hash, commit. `then`
    /// gets the committed account, or why not.
    pub fn create_account(
        &mut self,
        name: &str,
        password: String,
        ip: IpAddr,
        then: impl FnOnce(&mut Shard, Result<AccountRecord, AccountError>) + Send + 'static,
    ) {
        match self.admit_new_account(name, password, ip) {
            Ok(new) => self.commit_new_account(new, then),
            Err(e) => then(self, Err(e)),
        }
    }

    /// The first step of [`Shard::create_account`], answered at once: the
    /// rules, names kept for guests, and the limiter.
    pub fn admit_new_account(
        &mut self,
        name: &str,
        password: String,
        ip: IpAddr,
    ) -> Result<NewAccount, AccountError> {
        let key = validate_name(name).map_err(AccountError::Rules)?;
        if reserved_for_guests(&key) {
            return Err(AccountError::ReservedForGuests);
        }
        validate_password(&password).map_err(AccountError::Rules)?;
        self.admit_attempt(&key, ip)?;
        Ok(NewAccount {
            name: name.to_owned(),
            key,
            password,
            ip,
            start: None,
        })
    }

    /// The second step of [`Shard::create_account`]: hash the password, then
    /// commit the account (acknowledged only once it is on disk, DESIGN §6).
    pub fn commit_new_account(
        &mut self,
        mut new: NewAccount,
        then: impl FnOnce(&mut Shard, Result<AccountRecord, AccountError>) + Send + 'static,
    ) {
        if self.account_elsewhere(&new.key).is_some() {
            let password = std::mem::take(&mut new.password);
            let (key, name, ip) = (new.key.clone(), new.name.clone(), new.ip);
            return self.ask_home_for_account(
                super::home::Purpose::Register,
                &key,
                &name,
                password,
                ip,
                Box::new(then),
            );
        }
        let held = Held::new(Box::new(then));
        let password = std::mem::take(&mut new.password);
        let reply = {
            let held = held.clone();
            self.reply_here(move |sh, hashed| {
                if let Some(then) = held.take() {
                    sh.on_new_account_hashed(new, hashed, then);
                }
            })
        };
        if let Err(e) = self.hasher.hash(password, reply) {
            if let Some(then) = held.take() {
                then(self, Err(e.into()));
            }
        }
    }

    /// The refusal of a registration whose name turned out to be taken, by
    /// an account or by a session claiming it: a failed attempt.
    pub fn name_taken(&mut self, new: &NewAccount) -> AccountError {
        self.limiter
            .record_failure(&new.key, new.ip, Instant::now());
        AccountError::NameTaken {
            name: new.name.clone(),
        }
    }

    /// Checks a password: rules, limiter, the account, its hash (or a dummy
    /// of the same cost when the name has none). `then` gets the account
    /// when the password is its own. A wrong password and a name without an
    /// account are one answer, `bad_credentials`, and one failed attempt.
    pub fn check_password(
        &mut self,
        name: &str,
        password: String,
        ip: IpAddr,
        then: impl FnOnce(&mut Shard, Result<AccountRecord, AccountError>) + Send + 'static,
    ) {
        // A name that breaks the rules has no account: the same answer as
        // any wrong name, and counted the same. An overlong password is
        // never hashed.
        let key = match validate_name(name) {
            Ok(key) if password.chars().count() <= PASSWORD_CHARS_MAX => key,
            _ => {
                self.limiter
                    .record_failure(INVALID_NAME_KEY, ip, Instant::now());
                return then(self, Err(AccountError::BadCredentials));
            }
        };
        if let Err(e) = self.admit_attempt(&key, ip) {
            return then(self, Err(e));
        }
        if self.account_elsewhere(&key).is_some() {
            return self.ask_home_for_account(
                super::home::Purpose::Login,
                &key,
                name,
                password,
                ip,
                Box::new(then),
            );
        }
        let attempt = Attempt { key, password, ip };
        let key = attempt.key.clone();
        let then: AccountAnswer = Box::new(then);
        self.load_account_here(&key, move |sh, loaded| {
            sh.on_account_to_verify(attempt, loaded, then)
        });
    }

    fn on_new_account_hashed(
        &mut self,
        new: NewAccount,
        hashed: Result<String, HashError>,
        then: AccountAnswer,
    ) {
        let hash = match hashed {
            Ok(hash) => hash,
            Err(e) => {
                tracing::error!(error = %e, "register: hashing failed");
                return then(self, Err(AccountError::Unavailable));
            }
        };
        let start = match &new.start {
            Some(start) => start.clone(),
            None => self.world.room(self.world.start).id.clone(),
        };
        let name = new.name.clone();
        let reply = self
            .reply_here(move |sh, committed| sh.on_new_account_committed(&new, committed, then));
        self.store.register(&name, hash, &start, reply);
    }

    fn on_new_account_committed(
        &mut self,
        new: &NewAccount,
        committed: Result<AccountRecord, RegisterError>,
        then: AccountAnswer,
    ) {
        let result = match committed {
            Ok(record) => Ok(record),
            Err(RegisterError::NameTaken) => Err(self.name_taken(new)),
            Err(RegisterError::Store(e)) => {
                tracing::error!(error = %e, "register: the store failed");
                Err(AccountError::Unavailable)
            }
        };
        then(self, result);
    }

    fn on_account_to_verify(
        &mut self,
        attempt: Attempt,
        loaded: Result<Option<AccountRecord>, StoreError>,
        then: AccountAnswer,
    ) {
        let record = match loaded {
            Ok(record) => record,
            Err(e) => {
                tracing::error!(error = %e, "login: the store failed");
                return then(self, Err(AccountError::Unavailable));
            }
        };
        let held = Held::new(then);
        let Attempt { key, password, ip } = attempt;
        let phc = record.as_ref().map(|r| r.password_hash.clone());
        let reply = {
            let held = held.clone();
            self.reply_here(move |sh, matches| {
                if let Some(then) = held.take() {
                    sh.on_password_verified(&key, ip, record.filter(|_| matches), then);
                }
            })
        };
        let submitted = match phc {
            Some(phc) => self.hasher.verify(password, phc, reply),
            None => self.hasher.verify_missing_account(password, reply),
        };
        if let Err(e) = submitted {
            if let Some(then) = held.take() {
                then(self, Err(e.into()));
            }
        }
    }

    /// `verified` is the account when the password matched it.
    fn on_password_verified(
        &mut self,
        key: &str,
        ip: IpAddr,
        verified: Option<AccountRecord>,
        then: AccountAnswer,
    ) {
        let result = verified.ok_or_else(|| {
            self.limiter.record_failure(key, ip, Instant::now());
            AccountError::BadCredentials
        });
        then(self, result);
    }

    /// The limiter's verdict on an attempt for `key` from `ip`; a refusal
    /// is counted in the shard's `rate_limited` figure.
    fn admit_attempt(&mut self, key: &str, ip: IpAddr) -> Result<(), AccountError> {
        let Err(retry) = self.limiter.check(key, ip, Instant::now()) else {
            return Ok(());
        };
        self.counters.stats.rate_limited += 1;
        Err(AccountError::RateLimited {
            retry_after_s: retry.after_s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_one_code_one_http_status_and_a_sentence() {
        let rules = validate_name("ab").expect_err("too short");
        let cases = [
            (AccountError::Rules(rules), "invalid_name", 400),
            (AccountError::ReservedForGuests, "invalid_name", 400),
            (AccountError::BadCredentials, "bad_credentials", 401),
            (
                AccountError::NameTaken {
                    name: "Dana".into(),
                },
                "name_taken",
                400,
            ),
            (
                AccountError::RateLimited { retry_after_s: 42 },
                "rate_limited",
                429,
            ),
            (AccountError::Busy, "busy", 503),
            (AccountError::Unavailable, "unavailable", 503),
        ];
        for (error, code, status) in cases {
            assert_eq!((error.code(), error.http_status()), (code, status));
            let message = error.to_string();
            assert!(message.starts_with(char::is_uppercase), "{code}: {message}");
        }
        let password = validate_password("short").expect_err("too short");
        assert_eq!(AccountError::Rules(password).code(), "invalid_password");
        assert_eq!(
            AccountError::RateLimited { retry_after_s: 42 }.to_string(),
            "Too many failed attempts; try again in 42 s."
        );
    }

    #[test]
    fn a_refused_hasher_job_is_busy_or_unavailable() {
        assert_eq!(AccountError::from(SubmitError::Busy), AccountError::Busy);
        assert_eq!(
            AccountError::from(SubmitError::Stopped),
            AccountError::Unavailable
        );
    }
}
