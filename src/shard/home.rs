//! Accounts on their home host (DESIGN §1 "Cross-host", issue 10): each
//! account and its player record live in the SQLite file of one host, chosen
//! by a hash of the name (`cluster::home_host`). A login, registration or
//! account lookup on another host is asked of the home host through the
//! bridge, where the password is checked once; saves of a player whose body
//! stands on another host go to the home host's store. Room floor items stay
//! with the room's owner.
//!
//! When the home host cannot be reached, a login to that account is refused
//! at once with `unreachable` (the password cannot be checked anywhere
//! else), and a question left unanswered for [`ACCOUNT_ASK_TIMEOUT_MS`] is
//! answered the same way. A save to a home host that is away (or while
//! Redis is) waits on the shard, the newest per player, until it can go
//! (`Router::flush_saves`): saves are never dropped.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::accounts::AccountError;
use super::msg::Msg;
use super::{Shard, ShardAddr};
use crate::game::wire::{AccountFacts, AccountOp, AccountResult};
use crate::store::AccountRecord;

/// How long an account question waits for the home host: a password check
/// there may queue behind other hashes (about 50 ms each at the default
/// cost), so this is longer than `remote_timeout_ms`.
pub const ACCOUNT_ASK_TIMEOUT_MS: u64 = 10_000;

/// What runs when a record question is answered.
type RecordThen = Box<dyn FnOnce(&mut Shard, Result<AccountRecord, AccountError>) + Send>;
/// What runs when a lookup is answered (the error as text, for the log).
pub type LoadThen = Box<dyn FnOnce(&mut Shard, Result<Option<AccountRecord>, String>) + Send>;

/// What an account question to the home host is for.
pub(super) enum Purpose {
    Login,
    Register,
}

enum Then {
    Record(RecordThen),
    Load(LoadThen),
}

/// Questions this shard asked other hosts, by number.
#[derive(Default)]
pub struct Asks {
    next: u64,
    open: HashMap<u64, (Instant, Then)>,
}

fn record_of(facts: AccountFacts) -> AccountRecord {
    AccountRecord {
        id: 0,
        name: facts.name.into(),
        // The hash never leaves the home host.
        password_hash: String::new(),
        room: facts.room.into(),
        inventory: facts.inventory,
    }
}

fn facts_of(record: AccountRecord) -> AccountFacts {
    AccountFacts {
        name: record.name.into(),
        room: record.room.into(),
        inventory: record.inventory,
    }
}

/// The wire form of a refusal, and back. Only refusals the home host can
/// make cross: the rules were checked by the asker.
fn refused(e: &AccountError) -> AccountResult {
    let (retry_after_s, name) = match e {
        AccountError::RateLimited { retry_after_s } => (*retry_after_s, ""),
        AccountError::NameTaken { name } => (0, name.as_str()),
        _ => (0, ""),
    };
    AccountResult::Refused {
        code: e.code().into(),
        retry_after_s,
        name: name.into(),
    }
}

fn error_of(code: &str, retry_after_s: u64, name: &str) -> AccountError {
    match code {
        "bad_credentials" => AccountError::BadCredentials,
        "name_taken" => AccountError::NameTaken {
            name: name.to_owned(),
        },
        "rate_limited" => AccountError::RateLimited { retry_after_s },
        "busy" => AccountError::Busy,
        _ => AccountError::Unavailable,
    }
}

impl Shard {
    /// The host that keeps `key`'s account, when it is not this one.
    pub(super) fn account_elsewhere(&self, key: &str) -> Option<u16> {
        let home = self.keeper_of(key).host;
        (home != self.host).then_some(home)
    }

    fn ask_home(&mut self, key: &str, op: AccountOp, then: Then) {
        let keeper = self.keeper_of(key);
        if !self.reachable(keeper.host) {
            return self.answer(then, Err(AccountError::HomeUnreachable));
        }
        let ask = self.asks.next;
        self.asks.next += 1;
        let deadline = Instant::now() + Duration::from_millis(ACCOUNT_ASK_TIMEOUT_MS);
        self.asks.open.insert(ask, (deadline, then));
        let from = self.addr();
        let key = Box::from(key);
        if !self
            .router
            .post_to(keeper, Msg::AccountAsk { ask, from, key, op })
        {
            if let Some((_, then)) = self.asks.open.remove(&ask) {
                self.answer(then, Err(AccountError::HomeUnreachable));
            }
        }
    }

    fn answer(&mut self, then: Then, result: Result<Option<AccountRecord>, AccountError>) {
        match then {
            Then::Record(then) => {
                let result = result.and_then(|r| r.ok_or(AccountError::BadCredentials));
                then(self, result)
            }
            Then::Load(then) => then(self, result.map_err(|e| e.to_string())),
        }
    }

    /// Checks a password (`Purpose::Login`) or creates the account
    /// (`Purpose::Register`) on the home host of `key`.
    pub(super) fn ask_home_for_account(
        &mut self,
        purpose: Purpose,
        key: &str,
        name: &str,
        password: String,
        ip: IpAddr,
        then: RecordThen,
    ) {
        let (name, password, ip) = (name.into(), password.into(), ip.to_string().into());
        let op = match purpose {
            Purpose::Login => AccountOp::Password { name, password, ip },
            Purpose::Register => AccountOp::Register {
                name,
                password,
                ip,
                start: self.world.room(self.world.start).id.as_str().into(),
            },
        };
        self.ask_home(key, op, Then::Record(then));
    }

    /// The account of `key`, wherever it is kept.
    pub(super) fn load_account_anywhere(&mut self, key: &str, then: LoadThen) {
        if self.account_elsewhere(key).is_some() {
            return self.ask_home(key, AccountOp::Load, Then::Load(then));
        }
        self.load_account_here(key, move |sh, loaded| {
            then(sh, loaded.map_err(|e| e.to_string()))
        });
    }

    /// Saves a registered player's room and inventory in the store of their
    /// home host.
    pub(super) fn save_player_anywhere(
        &mut self,
        key: String,
        room: String,
        inventory: Vec<String>,
    ) {
        if self.account_elsewhere(&key).is_none() {
            return self.store.save_player_owned(key, room, inventory);
        }
        let keeper = self.keeper_of(&key);
        self.router.post_to(
            keeper,
            Msg::SavePlayer {
                key: key.into(),
                room: room.into(),
                inventory,
            },
        );
    }

    /// A question from another host about an account this host keeps.
    pub(super) fn on_account_ask(&mut self, ask: u64, from: ShardAddr, key: &str, op: AccountOp) {
        let reply = move |sh: &mut Shard, result: AccountResult| {
            sh.router.post_to(from, Msg::AccountReply { ask, result });
        };
        let as_result = |checked: Result<AccountRecord, AccountError>| match checked {
            Ok(record) => AccountResult::Account(Some(facts_of(record))),
            Err(e) => refused(&e),
        };
        match op {
            AccountOp::Password { name, password, ip } => {
                let ip = ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
                self.check_password(&name, password.into(), ip, move |sh, checked| {
                    reply(sh, as_result(checked))
                });
            }
            AccountOp::Register {
                name,
                password,
                ip,
                start,
            } => {
                let ip = ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
                let then = move |sh: &mut Shard, created| reply(sh, as_result(created));
                match self.admit_new_account(&name, password.into(), ip) {
                    Ok(new) => self.commit_new_account(new.starting_in(&start), then),
                    Err(e) => then(self, Err(e)),
                }
            }
            AccountOp::Load => {
                let then: LoadThen = Box::new(move |sh, loaded| {
                    let result = match loaded {
                        Ok(record) => AccountResult::Account(record.map(facts_of)),
                        Err(_) => refused(&AccountError::Unavailable),
                    };
                    reply(sh, result)
                });
                self.load_account_anywhere(key, then);
            }
        }
    }

    /// The home host's answer to one of this shard's questions.
    pub(super) fn on_account_reply(&mut self, ask: u64, result: AccountResult) {
        let Some((_, then)) = self.asks.open.remove(&ask) else {
            return;
        };
        let result = match result {
            AccountResult::Account(facts) => Ok(facts.map(record_of)),
            AccountResult::Refused {
                code,
                retry_after_s,
                name,
            } => Err(error_of(&code, retry_after_s, &name)),
        };
        self.answer(then, result);
    }

    /// Questions the home host left unanswered too long.
    pub(super) fn expire_account_asks(&mut self) {
        if self.asks.open.is_empty() {
            return;
        }
        let now = Instant::now();
        let late: Vec<u64> = self
            .asks
            .open
            .iter()
            .filter(|(_, (deadline, _))| *deadline <= now)
            .map(|(ask, _)| *ask)
            .collect();
        for ask in late {
            if let Some((_, then)) = self.asks.open.remove(&ask) {
                self.answer(then, Err(AccountError::HomeUnreachable));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_cross_with_their_code_and_details() {
        for e in [
            AccountError::BadCredentials,
            AccountError::NameTaken { name: "Bob".into() },
            AccountError::RateLimited { retry_after_s: 42 },
            AccountError::Busy,
            AccountError::Unavailable,
        ] {
            let AccountResult::Refused {
                code,
                retry_after_s,
                name,
            } = refused(&e)
            else {
                panic!("a refusal");
            };
            assert_eq!(error_of(&code, retry_after_s, &name), e);
        }
    }
}
