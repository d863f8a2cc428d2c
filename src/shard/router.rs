//! Where a shard's outgoing messages go: to another shard's mailbox, or, when
//! addressed to this shard, to a local queue handled right after the current
//! message (so that a handler never re-enters the shard).
//!
//! A shard never waits for another: two shards with full inboxes, each
//! waiting to send to the other, would wait forever. A message that a full
//! inbox refuses is parked here, in a queue per destination, and every later
//! message to that destination goes behind it, because the game relies on
//! order per destination (a `Left` arrives before the room's next events).
//! [`Router::flush_parked`] moves parked messages on as their inbox makes
//! room: the shard calls it after each inbox batch, and its retry task
//! (`run.rs`) while anything is parked. Parked messages are the overflow of
//! the inboxes' bound: never dropped, and counted in `/metrics`.

use std::collections::VecDeque;
use std::task::{Context, Poll, Waker};

use super::mailbox::Mailbox;
use super::msg::Msg;
use super::remote;
use crate::bridge::{Outbound, Outbox};

/// Sends messages from one shard to any shard, itself included.
pub struct Router {
    /// This host (0 when it runs alone).
    pub host: u16,
    pub me: u16,
    mailboxes: Vec<Mailbox>,
    local: VecDeque<Msg>,
    /// Per destination shard: what its full inbox refused, oldest first.
    parked: Vec<VecDeque<Msg>>,
    /// Messages in `parked`, all destinations together.
    parked_len: usize,
    /// The retry task, asleep until something is parked.
    retry_waker: Option<Waker>,
    pub sent_remote: u64,
    /// Posts that found another shard's inbox full and started parking for it.
    pub inbox_full_total: u64,
    /// The way to other hosts; `None` when this host runs alone.
    bridge: Option<Outbox>,
    /// Messages handed to the bridge for other hosts.
    pub sent_to_hosts: u64,
}

impl Router {
    pub fn new(me: u16, mailboxes: Vec<Mailbox>) -> Router {
        Router {
            host: 0,
            me,
            parked: mailboxes.iter().map(|_| VecDeque::new()).collect(),
            mailboxes,
            local: VecDeque::new(),
            parked_len: 0,
            retry_waker: None,
            sent_remote: 0,
            inbox_full_total: 0,
            bridge: None,
            sent_to_hosts: 0,
        }
    }

    /// Makes this the router of host `host` of a cluster, reaching the other
    /// hosts through `bridge`.
    pub fn with_bridge(mut self, host: u16, bridge: Option<Outbox>) -> Router {
        self.host = host;
        self.bridge = bridge;
        self
    }

    /// The bridge to other hosts, when this host has one.
    pub fn bridge(&self) -> Option<&Outbox> {
        self.bridge.as_ref()
    }

    pub fn shards(&self) -> u16 {
        self.mailboxes.len() as u16
    }

    /// Sends `msg` to shard `to` without waiting: into its inbox, or, if that
    /// is full or messages to it are already parked, behind them.
    pub fn post(&mut self, to: u16, msg: Msg) {
        if to == self.me {
            self.local.push_back(msg);
            return;
        }
        let (Some(mailbox), Some(queue)) = (
            self.mailboxes.get(to as usize),
            self.parked.get_mut(to as usize),
        ) else {
            return;
        };
        self.sent_remote += 1;
        let msg = if queue.is_empty() {
            match mailbox.try_send(msg) {
                Ok(()) => return,
                Err(msg) => {
                    self.inbox_full_total += 1;
                    msg
                }
            }
        } else {
            msg
        };
        queue.push_back(msg);
        self.parked_len += 1;
        if let Some(waker) = self.retry_waker.take() {
            waker.wake();
        }
    }

    /// Moves parked messages into their inboxes, oldest first, while those
    /// have room. Returns how many are still parked.
    pub fn flush_parked(&mut self) -> usize {
        if self.parked_len == 0 {
            return 0;
        }
        for (queue, mailbox) in self.parked.iter_mut().zip(&self.mailboxes) {
            while let Some(msg) = queue.pop_front() {
                if let Err(msg) = mailbox.try_send(msg) {
                    queue.push_front(msg);
                    break;
                }
                self.parked_len -= 1;
            }
        }
        self.parked_len
    }

    /// Messages parked for full inboxes.
    pub fn parked_len(&self) -> usize {
        self.parked_len
    }

    /// Ready while anything is parked; otherwise keeps `cx`'s waker, woken
    /// by the next message parked. The retry task waits on it, so that a
    /// shard with nothing parked does not poll.
    pub fn poll_parked(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.parked_len > 0 {
            return Poll::Ready(());
        }
        self.retry_waker = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Messages waiting in `shard`'s inbox.
    pub fn inbox_depth(&self, shard: u16) -> usize {
        self.mailboxes.get(shard as usize).map_or(0, Mailbox::depth)
    }

    /// A sender to `shard`'s inbox, for threads beside the shards (the store,
    /// the hasher) to answer on. Its `send` waits for room: not for shards.
    pub fn mailbox(&self, shard: u16) -> Option<Mailbox> {
        self.mailboxes.get(shard as usize).cloned()
    }

    /// The next message this shard sent itself.
    pub fn next_local(&mut self) -> Option<Msg> {
        self.local.pop_front()
    }

    /// Sends `msg` to a shard of any host: on this host into its inbox, on
    /// another through the bridge. Returns false when a message for another
    /// host could not be queued (no bridge, its queue full, or a message
    /// that cannot cross): it is dropped, and counted by the bridge.
    pub fn post_to(&mut self, to: super::ShardAddr, msg: Msg) -> bool {
        if to.host == self.host {
            self.post(to.shard, msg);
            return true;
        }
        let Some(bridge) = &self.bridge else {
            tracing::error!(
                host = to.host,
                kind = msg.kind(),
                "router: no bridge to another host"
            );
            return false;
        };
        match remote::to_peer(msg, to.shard) {
            Ok(msg) => {
                self.sent_to_hosts += 1;
                bridge.send(Outbound::To { host: to.host, msg })
            }
            Err(msg) => {
                tracing::error!(
                    kind = msg.kind(),
                    "router: this message cannot leave its host"
                );
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shard::mailbox::{self, Inbox};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn numbered(n: u64) -> Msg {
        Msg::WhoAsk { asker: 0, ask: n }
    }

    /// The numbers of the messages waiting in `inbox`, in arrival order.
    fn drain(inbox: &Inbox) -> Vec<u64> {
        let mut numbers = Vec::new();
        while let Some(msg) = inbox.try_recv() {
            if let Msg::WhoAsk { ask, .. } = msg {
                numbers.push(ask);
            }
        }
        numbers
    }

    #[test]
    fn a_router_parks_for_a_full_inbox_and_keeps_order_across_parked_and_new_messages() {
        let (mailboxes, inboxes) = mailbox::create(2, 2, mailbox::Wake::Waker).expect("inboxes");
        let mut router = Router::new(0, mailboxes);
        for n in 1..=4 {
            router.post(1, numbered(n));
        }
        assert_eq!(router.parked_len(), 2);
        assert_eq!(router.inbox_full_total, 1);
        assert_eq!(drain(&inboxes[1]), [1, 2]);
        // The inbox has room now, but 5 must not overtake 3 and 4.
        router.post(1, numbered(5));
        assert_eq!(router.parked_len(), 3);
        assert_eq!(router.inbox_depth(1), 0);
        assert_eq!(router.sent_remote, 5);
    }

    #[test]
    fn flush_parked_delivers_in_order_once_there_is_room() {
        let (mailboxes, inboxes) = mailbox::create(2, 2, mailbox::Wake::Waker).expect("inboxes");
        let mut router = Router::new(0, mailboxes);
        for n in 1..=7 {
            router.post(1, numbered(n));
        }
        assert_eq!(router.flush_parked(), 5, "no room yet: nothing moves");
        let mut arrived = Vec::new();
        for _ in 0..10 {
            arrived.extend(drain(&inboxes[1]));
            if router.flush_parked() == 0 {
                break;
            }
        }
        arrived.extend(drain(&inboxes[1]));
        assert_eq!(arrived, [1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(router.parked_len(), 0);
    }

    struct Flag(AtomicBool);

    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn parking_wakes_the_retry_task_and_an_empty_router_lets_it_sleep() {
        let (mailboxes, _inboxes) = mailbox::create(2, 1, mailbox::Wake::Waker).expect("inboxes");
        let mut router = Router::new(0, mailboxes);
        let woken = Arc::new(Flag(AtomicBool::new(false)));
        let waker = Waker::from(woken.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(router.poll_parked(&mut cx).is_pending());
        router.post(1, numbered(1));
        assert!(
            !woken.0.load(Ordering::SeqCst),
            "delivered: nothing to retry"
        );
        router.post(1, numbered(2));
        assert!(woken.0.load(Ordering::SeqCst));
        assert!(router.poll_parked(&mut cx).is_ready());
    }

    /// What one flooding shard saw: messages it received, whether in order,
    /// and what it still had parked when it stopped.
    struct FloodEnd {
        received: u64,
        in_order: bool,
        parked: usize,
        inbox_full_total: u64,
    }

    #[test]
    fn two_shards_flooding_each_others_full_inboxes_both_finish_and_lose_nothing() {
        const MSGS: u64 = 20_000;
        const BURST: u64 = 16;
        let (mailboxes, inboxes) = mailbox::create(2, 4, mailbox::Wake::Waker).expect("inboxes");
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for (me, inbox) in inboxes.into_iter().enumerate() {
            let (mailboxes, done) = (mailboxes.clone(), done_tx.clone());
            std::thread::spawn(move || {
                let me = me as u16;
                let mut router = Router::new(me, mailboxes);
                let (mut sent, mut received, mut in_order) = (0, 0, true);
                // A bound on the test's time: a deadlock shows as a failure.
                let deadline = Instant::now() + Duration::from_secs(30);
                while (sent < MSGS || received < MSGS || router.parked_len() > 0)
                    && Instant::now() < deadline
                {
                    // A burst four times the other's inbox, then a drain.
                    for _ in 0..BURST.min(MSGS - sent) {
                        router.post(1 - me, numbered(sent));
                        sent += 1;
                    }
                    let before = received;
                    for n in drain(&inbox) {
                        in_order &= n == received;
                        received += 1;
                    }
                    router.flush_parked();
                    if received == before {
                        // Nothing came: let the other side run, as a shard
                        // would sleep. Spinning through a whole time slice
                        // starved it when both shared one CPU.
                        std::thread::yield_now();
                    }
                }
                let _ = done.send(FloodEnd {
                    received,
                    in_order,
                    parked: router.parked_len(),
                    inbox_full_total: router.inbox_full_total,
                });
            });
        }
        drop(done_tx);
        for _ in 0..2 {
            let end = done_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("both shards finish");
            assert_eq!(end.received, MSGS);
            assert!(end.in_order);
            assert_eq!(end.parked, 0);
            assert!(end.inbox_full_total > 0, "the inboxes were never full");
        }
    }
}
