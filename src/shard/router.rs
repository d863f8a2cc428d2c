//! Where a shard's outgoing messages go: to another shard's mailbox, or, when
//! addressed to this shard, to a local queue handled right after the current
//! message (so that a handler never re-enters the shard).

use std::collections::VecDeque;

use super::mailbox::Mailbox;
use super::msg::Msg;

/// Sends messages from one shard to any shard, itself included.
pub struct Router {
    /// This host (0 when it runs alone).
    pub host: u16,
    pub me: u16,
    mailboxes: Vec<Mailbox>,
    local: VecDeque<Msg>,
    pub sent_remote: u64,
}

impl Router {
    pub fn new(me: u16, mailboxes: Vec<Mailbox>) -> Router {
        Router {
            host: 0,
            me,
            mailboxes,
            local: VecDeque::new(),
            sent_remote: 0,
        }
    }

    pub fn shards(&self) -> u16 {
        self.mailboxes.len() as u16
    }

    pub fn post(&mut self, to: u16, msg: Msg) {
        if to == self.me {
            self.local.push_back(msg);
        } else if let Some(mailbox) = self.mailboxes.get(to as usize) {
            self.sent_remote += 1;
            mailbox.send(msg);
        }
    }

    /// A sender to `shard`'s inbox, for threads beside the shards (the store,
    /// the hasher) to answer on.
    pub fn mailbox(&self, shard: u16) -> Option<Mailbox> {
        self.mailboxes.get(shard as usize).cloned()
    }

    /// The next message this shard sent itself.
    pub fn next_local(&mut self) -> Option<Msg> {
        self.local.pop_front()
    }

    /// Sends `msg` to a shard of any host. There is no bridge between hosts
    /// yet, so every address is on this host; one elsewhere is a bug.
    pub fn post_to(&mut self, to: super::ShardAddr, msg: Msg) {
        assert_eq!(to.host, self.host, "router: no route to host {}", to.host);
        self.post(to.shard, msg);
    }
}
