//! This shard's part of the name directory: who is online under which name.
//! A name lives on the shard its lower-case key hashes to, so a claim is
//! decided in one place and two sessions can never hold one name.

use std::collections::HashMap;

use super::msg::Msg;
use super::router::Router;
use super::SessionId;
use crate::protocol::encode::{self, fail, reply_text};
use crate::protocol::names::name_key;
use crate::protocol::MsgId;

/// The names this shard is responsible for.
#[derive(Default)]
pub struct Directory {
    names: HashMap<Box<str>, SessionId>,
    /// How a held name is written, where that is not its lower-case key
    /// ("Bob" for `bob`): what a `tell`'s answer calls its target.
    spellings: HashMap<Box<str>, Box<str>>,
    /// For a name held by a session of another host, the run (boot epoch)
    /// of that host the claim came from: when the host turns, only what its
    /// earlier runs held is forgotten, never a claim its new run already made.
    runs: HashMap<Box<str>, u64>,
}

/// The shard that keeps the directory entry of a lower-case name.
pub fn shard_of(key: &str, shards: u16) -> u16 {
    let h = key.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    (h % u32::from(shards.max(1))) as u16
}

/// What became of a claim.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// The name is the claimant's.
    Granted,
    /// Another session holds it.
    Taken,
    /// The name is the claimant's now; `old` held it and must be closed.
    TookOver { old: SessionId },
}

impl Directory {
    /// Records `key` for `sid`, written `name`, unless another session
    /// holds it; with `takeover` (a verified login to an account that is
    /// online), even then. `run` is the boot epoch of the claimant's host
    /// when it is another host (0 for this one).
    pub fn claim_or_take(
        &mut self,
        key: Box<str>,
        sid: SessionId,
        takeover: bool,
        run: u64,
        name: &str,
    ) -> Claim {
        let claim = match self.names.get_mut(&key) {
            Some(holder) if *holder == sid => Claim::Granted,
            Some(holder) if takeover => {
                let old = std::mem::replace(holder, sid);
                Claim::TookOver { old }
            }
            Some(_) => return Claim::Taken,
            None => {
                self.names.insert(key.clone(), sid);
                Claim::Granted
            }
        };
        self.set_spelling(&key, name);
        if run == 0 {
            self.runs.remove(&key);
        } else {
            self.runs.insert(key, run);
        }
        claim
    }

    /// `name` is how `sid`'s name is written: a token login claims its
    /// key before it has read the account's spelling, and sends it after.
    pub fn spell(&mut self, key: &str, sid: SessionId, name: &str) {
        if self.names.get(key) == Some(&sid) {
            self.set_spelling(key, name);
        }
    }

    /// A spelling that is not of `key` (which no host of this release
    /// sends) is not kept: the name is then written as its key.
    fn set_spelling(&mut self, key: &str, name: &str) {
        if name == key || !name.eq_ignore_ascii_case(key) {
            self.spellings.remove(key);
        } else {
            self.spellings.insert(Box::from(key), Box::from(name));
        }
    }

    /// How the name of `key` is written.
    pub fn spelling<'a>(&'a self, key: &'a str) -> &'a str {
        self.spellings.get(key).map_or(key, |name| name)
    }

    /// Forgets every name held by a session of `host`, a host that died
    /// (`live_run` None) or turned: one that now runs as `live_run` keeps
    /// what that run claimed. Returns how many were forgotten.
    pub fn forget_host(&mut self, host: u16, live_run: Option<u64>) -> usize {
        let before = self.names.len();
        let runs = &mut self.runs;
        let spellings = &mut self.spellings;
        self.names.retain(|key, sid| {
            let keep = sid.host() != host || live_run.is_some_and(|r| runs.get(key) == Some(&r));
            if !keep {
                runs.remove(key);
                spellings.remove(key);
            }
            keep
        });
        before - self.names.len()
    }

    /// The session holding `key`, if any.
    pub fn holder(&self, key: &str) -> Option<SessionId> {
        self.names.get(key).copied()
    }

    pub fn release(&mut self, key: &str, sid: SessionId) {
        if self.names.get(key) == Some(&sid) {
            self.names.remove(key);
            self.runs.remove(key);
            self.spellings.remove(key);
        }
    }

    /// Delivers a tell to its target's connection shard and answers the teller.
    pub fn tell(
        &self,
        r: &mut Router,
        from: SessionId,
        from_name: &str,
        id: Option<MsgId>,
        to: &str,
        text: &str,
    ) {
        let key = name_key(to);
        let Some(&target) = self.names.get(key.as_str()) else {
            let frame = fail(
                id.as_ref(),
                "no_such_player",
                &format!("Nobody called {to} is online."),
            );
            r.post_to(
                from.addr(),
                Msg::Frame {
                    sid: from,
                    frame,
                    done: true,
                },
            );
            return;
        };
        let event = encode::event("tell", "", from_name, text);
        let up = target.host() == r.host || r.bridge().is_some_and(|b| b.is_up());
        let sent = up
            && r.post_to(
                target.addr(),
                Msg::Frame {
                    sid: target,
                    frame: event,
                    done: false,
                },
            );
        let to = self.spelling(&key);
        let reply = if sent {
            reply_text(id.as_ref(), &format!("You tell {to}, \"{text}\""))
        } else {
            fail(
                id.as_ref(),
                "unreachable",
                &format!("{to} is on a host that cannot be reached now."),
            )
        };
        r.post_to(
            from.addr(),
            Msg::Frame {
                sid: from,
                frame: reply,
                done: true,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::addr::ShardAddr;

    #[test]
    fn a_name_has_one_holder_until_released() {
        let mut d = Directory::default();
        let a = SessionId::new(ShardAddr::new(0, 0), 1, 1);
        let b = SessionId::new(ShardAddr::new(0, 1), 1, 1);
        let claim = |d: &mut Directory, sid| d.claim_or_take("bob".into(), sid, false, 0, "");
        assert_eq!(claim(&mut d, a), Claim::Granted);
        assert_eq!(claim(&mut d, b), Claim::Taken);
        d.release("bob", b);
        assert_eq!(claim(&mut d, b), Claim::Taken, "only the holder releases");
        d.release("bob", a);
        assert_eq!(claim(&mut d, b), Claim::Granted);
    }

    #[test]
    fn a_takeover_replaces_the_holder_and_names_it() {
        let mut d = Directory::default();
        let old = SessionId::new(ShardAddr::new(0, 0), 1, 1);
        let new = SessionId::new(ShardAddr::new(0, 1), 2, 1);
        assert_eq!(
            d.claim_or_take("bob".into(), old, true, 0, ""),
            Claim::Granted
        );
        assert_eq!(
            d.claim_or_take("bob".into(), new, false, 0, ""),
            Claim::Taken
        );
        assert_eq!(
            d.claim_or_take("bob".into(), new, true, 0, ""),
            Claim::TookOver { old }
        );
        d.release("bob", old);
        assert_eq!(
            d.claim_or_take("bob".into(), old, false, 0, ""),
            Claim::Taken,
            "the old holder's release is void"
        );
    }

    #[test]
    fn a_host_that_turns_loses_the_names_of_its_old_run_and_keeps_those_of_its_new_one() {
        let mut d = Directory::default();
        let here = SessionId::new(ShardAddr::new(0, 0), 1, 1);
        let old = SessionId::new(ShardAddr::new(1, 0), 1, 1);
        let new = SessionId::new(ShardAddr::new(1, 0), 2, 1);
        assert_eq!(
            d.claim_or_take("amy".into(), here, false, 0, ""),
            Claim::Granted
        );
        assert_eq!(
            d.claim_or_take("bob".into(), old, false, 5, ""),
            Claim::Granted
        );
        // Host 1's new run (epoch 9) claims before this shard hears it turned.
        assert_eq!(
            d.claim_or_take("cat".into(), new, false, 9, ""),
            Claim::Granted
        );
        assert_eq!(d.forget_host(1, Some(9)), 1, "bob, of run 5");
        assert_eq!(d.holder("bob"), None);
        assert_eq!(d.holder("cat"), Some(new));
        assert_eq!(d.holder("amy"), Some(here));
        // Dead: everything it held goes.
        assert_eq!(d.forget_host(1, None), 1);
        assert_eq!(d.holder("cat"), None);
        assert_eq!(d.forget_host(0, None), 1, "this host's own, when asked");
    }

    #[test]
    fn a_name_is_written_as_its_holder_spells_it_and_only_the_holder_respells_it() {
        let mut d = Directory::default();
        let a = SessionId::new(ShardAddr::new(0, 0), 1, 1);
        let b = SessionId::new(ShardAddr::new(0, 1), 2, 1);
        assert_eq!(d.spelling("bob"), "bob", "a name nobody holds");
        assert_eq!(
            d.claim_or_take("bob".into(), a, false, 0, "Bob"),
            Claim::Granted
        );
        assert_eq!(d.spelling("bob"), "Bob");
        assert_eq!(
            d.claim_or_take("bob".into(), b, false, 0, "BOB"),
            Claim::Taken
        );
        d.spell("bob", b, "BOB");
        assert_eq!(d.spelling("bob"), "Bob", "a claim refused spells nothing");
        // A token login claims its key, then spells it once it has read it.
        assert_eq!(
            d.claim_or_take("bob".into(), b, true, 0, "bob"),
            Claim::TookOver { old: a }
        );
        assert_eq!(d.spelling("bob"), "bob");
        d.spell("bob", a, "Bob");
        assert_eq!(
            d.spelling("bob"),
            "bob",
            "the old holder's spelling is void"
        );
        d.spell("bob", b, "BoB");
        assert_eq!(d.spelling("bob"), "BoB");
        d.spell("bob", b, "Eve");
        assert_eq!(d.spelling("bob"), "bob", "not a spelling of bob");
        d.spell("bob", b, "BoB");
        d.release("bob", b);
        assert_eq!(d.spelling("bob"), "bob", "released with its name");

        let far = SessionId::new(ShardAddr::new(1, 0), 1, 1);
        assert_eq!(
            d.claim_or_take("cat".into(), far, false, 3, "Cat"),
            Claim::Granted
        );
        assert_eq!(d.forget_host(1, None), 1);
        assert_eq!(d.spelling("cat"), "cat", "forgotten with its host");
    }

    #[test]
    fn keys_spread_over_shards_stably() {
        assert_eq!(shard_of("alice", 4), shard_of("alice", 4));
        let used: std::collections::HashSet<u16> =
            (0..100).map(|i| shard_of(&format!("p{i}"), 4)).collect();
        assert_eq!(used.len(), 4);
    }
}
