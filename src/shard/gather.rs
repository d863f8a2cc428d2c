//! Gathers: one question to every shard of the host, the answers collected
//! on the asker (`who`, and the figures behind `/healthz` and `/metrics`).
//! A gather finishes when every shard has answered, each exactly once.

use std::collections::HashMap;

use super::msg::Msg;
use super::session::Phase;
use super::{SessionId, Shard};
use crate::metrics::stats::ShardStats;
use crate::protocol::{encode, MsgId};

/// Questions in flight of one kind, by ask id.
pub struct Gathers<S> {
    next_ask: u64,
    open: HashMap<u64, Gather<S>>,
}

/// One question in flight: who has answered, and what the answers built.
struct Gather<S> {
    answered: Vec<bool>,
    remaining: u16,
    state: S,
}

impl<S> Gathers<S> {
    pub fn new() -> Gathers<S> {
        Gathers {
            next_ask: 0,
            open: HashMap::new(),
        }
    }

    /// Opens a question to `shards` shards; returns its ask id.
    pub fn open(&mut self, shards: u16, state: S) -> u64 {
        let ask = self.next_ask;
        self.next_ask += 1;
        let gather = Gather {
            answered: vec![false; usize::from(shards)],
            remaining: shards,
            state,
        };
        self.open.insert(ask, gather);
        ask
    }

    /// Records `from`'s answer with `add`; returns the state once every
    /// shard has answered. An unknown ask (already finished) is ignored; a
    /// second answer from one shard is a bug in the messaging and stops the
    /// shard rather than finish a gather with a hole in it.
    pub fn answer(&mut self, ask: u64, from: u16, add: impl FnOnce(&mut S)) -> Option<S> {
        let gather = self.open.get_mut(&ask)?;
        let seen = gather
            .answered
            .get_mut(usize::from(from))
            .unwrap_or_else(|| panic!("gather: answer from shard {from}, which was not asked"));
        assert!(!*seen, "gather: shard {from} answered ask {ask} twice");
        *seen = true;
        add(&mut gather.state);
        gather.remaining -= 1;
        if gather.remaining > 0 {
            return None;
        }
        self.open.remove(&ask).map(|g| g.state)
    }

    /// Questions still waiting for answers.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }
}

impl<S> Default for Gathers<S> {
    fn default() -> Self {
        Gathers::new()
    }
}

/// An HTTP request waiting for every shard's figures.
pub struct StatsGather {
    stats: Vec<ShardStats>,
    reply: futures_channel::oneshot::Sender<Vec<ShardStats>>,
}

/// A `who` waiting for every shard's list.
pub struct WhoGather {
    sid: SessionId,
    id: Option<MsgId>,
    names: Vec<Box<str>>,
    total: usize,
}

impl Shard {
    /// Asks every shard for its figures; `reply` gets them all, in shard order.
    pub fn gather_stats(&mut self, reply: futures_channel::oneshot::Sender<Vec<ShardStats>>) {
        let shards = self.router.shards();
        let state = StatsGather {
            stats: Vec::with_capacity(usize::from(shards)),
            reply,
        };
        let ask = self.stats_gathers.open(shards, state);
        for shard in 0..shards {
            let asker = self.id;
            self.router.post(shard, Msg::StatsAsk { asker, ask });
        }
        self.drain_local();
    }

    pub(super) fn on_stats_answer(&mut self, ask: u64, stats: ShardStats) {
        let from = stats.shard;
        let done = self
            .stats_gathers
            .answer(ask, from, |g| g.stats.push(stats));
        if let Some(mut gather) = done {
            gather.stats.sort_by_key(|s| s.shard);
            // The asker may have gone (client hung up): nothing to do then.
            let _ = gather.reply.send(gather.stats);
        }
    }

    /// Asks every shard who is online, for the `who` of `sid`.
    pub(super) fn gather_who(&mut self, sid: SessionId, id: Option<MsgId>) {
        let shards = self.router.shards();
        let state = WhoGather {
            sid,
            id,
            names: Vec::new(),
            total: 0,
        };
        let ask = self.who_gathers.open(shards, state);
        for shard in 0..shards {
            let asker = self.id;
            self.router.post(shard, Msg::WhoAsk { asker, ask });
        }
    }

    /// The names of this shard's players, the first `names_max` of them, and
    /// how many there are.
    pub(super) fn local_names(&mut self, names_max: usize) -> (Vec<Box<str>>, usize) {
        let mut names = Vec::new();
        let mut total = 0;
        for (_, session) in self.sessions.iter_mut() {
            if session.phase == Phase::Playing {
                total += 1;
                if names.len() < names_max {
                    names.push(session.name.clone());
                }
            }
        }
        (names, total)
    }

    pub(super) fn on_who_answer(
        &mut self,
        ask: u64,
        from: u16,
        names: Vec<Box<str>>,
        total: usize,
    ) {
        let names_max = self.config.limits.names_listed_max;
        let done = self.who_gathers.answer(ask, from, |g| {
            g.total += total;
            let room = names_max.saturating_sub(g.names.len());
            g.names.extend(names.into_iter().take(room));
        });
        let Some(mut gather) = done else {
            return;
        };
        // Other hosts' players come from their heartbeats, a few seconds
        // old at most: a player who just moved from one of them to this
        // host is in both lists for that long. A name is held once in the
        // cluster, so a second sighting is the stale one.
        let (names, total) = self.other_hosts_players();
        let mut stale = 0;
        for name in names {
            if gather.names.iter().any(|n| n.eq_ignore_ascii_case(&name)) {
                stale += 1;
            } else if gather.names.len() < names_max {
                gather.names.push(name);
            }
        }
        gather.total += total.saturating_sub(stale);
        let mut text = format!("{} online: {}", gather.total, gather.names.join(", "));
        if gather.total > gather.names.len() {
            text.push_str(&format!(" and {} more", gather.total - gather.names.len()));
        }
        text.push('.');
        let reply = encode::reply_who(gather.id.as_ref(), &text, &gather.names, gather.total);
        self.deliver(gather.sid, reply);
        self.complete(gather.sid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    pub(super) fn a_gather_finishes_when_every_shard_has_answered_once() {
        let mut gathers: Gathers<Vec<u16>> = Gathers::new();
        let ask = gathers.open(3, Vec::new());
        assert!(gathers.answer(ask, 2, |v| v.push(2)).is_none());
        assert!(gathers.answer(ask, 0, |v| v.push(0)).is_none());
        assert_eq!(gathers.answer(ask, 1, |v| v.push(1)), Some(vec![2, 0, 1]));
        assert!(gathers.is_empty());
        assert!(
            gathers.answer(ask, 1, |_| {}).is_none(),
            "finished: ignored"
        );
    }

    #[test]
    #[should_panic(expected = "answered ask 0 twice")]
    pub(super) fn a_second_answer_from_one_shard_is_a_bug() {
        let mut gathers: Gathers<()> = Gathers::new();
        let ask = gathers.open(2, ());
        gathers.answer(ask, 1, |_| {});
        gathers.answer(ask, 1, |_| {});
    }

    #[test]
    #[should_panic(expected = "was not asked")]
    pub(super) fn an_answer_from_a_shard_not_asked_is_a_bug() {
        let mut gathers: Gathers<()> = Gathers::new();
        let ask = gathers.open(2, ());
        gathers.answer(ask, 5, |_| {});
    }
}
