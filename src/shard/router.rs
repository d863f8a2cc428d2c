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
//!
//! Messages to other hosts go to the bridge's bounded queue, which drops
//! what does not fit while Redis is away (counted). Saves of players whose
//! home is another host are never dropped (issue 10): one that cannot go now
//! (the bridge is down, that host is not live, or the queue is full) waits
//! with the host's other waiting saves (`bridge::saves`, one list for all
//! its shards), the newest per player, and goes as soon as it can; anything
//! else for that host waits until those saves have gone, so that a save
//! never arrives after what followed it (a hand-off of the body, or the
//! go-ahead of a takeover that reads the account next).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::mailbox::Mailbox;
use super::msg::Msg;
use super::remote;
use super::SessionId;
use crate::bridge::saves::WaitingSave;
use crate::bridge::{Outbound, Outbox};
use crate::game::wire::{Addressed, Dest, PeerMsg};

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
    /// Sessions of other hosts whose command this shard carries out, and
    /// the ticket its answer is to carry back (`Msg::Cmd::ticket`), with
    /// when it came. Empty on a host that runs alone.
    owed: HashMap<SessionId, (u32, Instant)>,
    /// Per host number: whether its heartbeat is live (from the bridge's
    /// news of peers, `set_hosts_live`).
    hosts_live: Vec<bool>,
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
            owed: HashMap::new(),
            hosts_live: Vec::new(),
        }
    }

    /// The command of `sid` this shard is about to carry out came from
    /// another host as `ticket`: the next reply that completes a command of
    /// `sid` sent from here carries it back (as `Msg::Answer`), and so does
    /// a hand-off of its body (`Msg::Arrive::ticket`), to whoever answers.
    pub fn owe_answer(&mut self, sid: SessionId, ticket: u32) {
        if ticket != 0 {
            self.owed.insert(sid, (ticket, Instant::now()));
        }
    }

    /// The ticket owed to `sid`, 0 when none (a hand-off keeps it, in case
    /// the body comes back and its reply must carry it after all).
    pub fn owed_ticket(&self, sid: SessionId) -> u32 {
        self.owed.get(&sid).map_or(0, |&(ticket, _)| ticket)
    }

    /// Forgets tickets owed longer than `max_age`: commands whose answer
    /// went another way (a body that left without a hand-off, a session
    /// gone).
    pub fn forget_owed(&mut self, max_age: Duration) {
        if !self.owed.is_empty() {
            self.owed.retain(|_, (_, since)| since.elapsed() <= max_age);
        }
    }

    /// `msg` with the ticket owed to its session put on it: a reply that
    /// completes a command becomes its `Answer`, an arrival carries it on.
    fn with_owed_ticket(&mut self, msg: Msg) -> Msg {
        match msg {
            Msg::Frame {
                sid,
                frame,
                done: true,
            } => match self.owed.remove(&sid) {
                Some((ticket, _)) => Msg::Answer { sid, frame, ticket },
                None => Msg::Frame {
                    sid,
                    frame,
                    done: true,
                },
            },
            Msg::Arrive {
                body,
                room,
                how,
                id,
                ack_to,
                ticket: 0,
            } => {
                let ticket = self.owed.remove(&body.sid).map_or(0, |(t, _)| t);
                Msg::Arrive {
                    body,
                    room,
                    how,
                    id,
                    ack_to,
                    ticket,
                }
            }
            Msg::QuitDone { sid, frame } => {
                self.owed.remove(&sid);
                Msg::QuitDone { sid, frame }
            }
            other => other,
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
        let msg = if self.owed.is_empty() {
            msg
        } else {
            self.with_owed_ticket(msg)
        };
        if to.host == self.host {
            self.post(to.shard, msg);
            return true;
        }
        if self.bridge.is_none() {
            tracing::error!(
                host = to.host,
                kind = msg.kind(),
                "router: no bridge to another host"
            );
            return false;
        }
        if let Msg::SavePlayer {
            key,
            room,
            inventory,
        } = msg
        {
            let save = WaitingSave {
                to,
                at_ns: crate::store::monotonic_ns(),
                room,
                inventory,
            };
            let waiting = self.bridge.as_ref().map(|b| b.saves());
            if waiting.is_some_and(|w| w.is_empty()) && self.can_reach(to.host) {
                if let Err((key, save)) = self.send_save(key, save) {
                    self.put_save(key, save);
                }
            } else {
                self.put_save(key, save);
                self.flush_saves();
            }
            return true;
        }
        if self.saves_wait_for(to.host) && self.flush_saves() > 0 && self.saves_wait_for(to.host) {
            // Saves for that host still wait (the queue is full, or the host
            // is away): this message would overtake them. It is lost as the
            // full queue would have lost it, and counted.
            if let Some(bridge) = &self.bridge {
                bridge.stats().dropped.fetch_add(1, Ordering::Relaxed);
            }
            return false;
        }
        let Some(bridge) = &self.bridge else {
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

    /// Whether a message to `host` can be expected to arrive now: the
    /// bridge is up and that host's heartbeat is live.
    fn can_reach(&self, host: u16) -> bool {
        self.bridge.as_ref().is_some_and(Outbox::is_up)
            && self
                .hosts_live
                .get(usize::from(host))
                .copied()
                .unwrap_or(false)
    }

    /// Whether saves for `host` wait (no lock while none waits at all).
    fn saves_wait_for(&self, host: u16) -> bool {
        self.bridge
            .as_ref()
            .is_some_and(|b| b.saves().any_for(host))
    }

    /// Which other hosts are live (their heartbeats), by host number.
    pub fn set_hosts_live(&mut self, live: impl Iterator<Item = u16>) {
        self.hosts_live.iter_mut().for_each(|l| *l = false);
        for host in live {
            let i = usize::from(host);
            if self.hosts_live.len() <= i {
                self.hosts_live.resize(i + 1, false);
            }
            self.hosts_live[i] = true;
        }
    }

    /// Sends the saves that wait, to the hosts that can be reached now, as
    /// far as the bridge's queue takes them. Returns how many still wait.
    pub fn flush_saves(&mut self) -> usize {
        let Some(bridge) = &self.bridge else {
            return 0;
        };
        if bridge.saves().is_empty() {
            return 0;
        }
        let mut sent = 0;
        let left = bridge.saves().drain(
            |host| self.can_reach(host),
            |key, save| {
                let r = Self::try_send_save(bridge, key, save);
                sent += u64::from(r.is_ok());
                r
            },
        );
        self.sent_to_hosts += sent;
        left
    }

    fn put_save(&self, key: Box<str>, save: WaitingSave) {
        if let Some(bridge) = &self.bridge {
            bridge.saves().put(key, save);
        }
    }

    fn send_save(
        &mut self,
        key: Box<str>,
        save: WaitingSave,
    ) -> Result<(), (Box<str>, WaitingSave)> {
        let Some(bridge) = &self.bridge else {
            return Ok(());
        };
        Self::try_send_save(bridge, key, save)?;
        self.sent_to_hosts += 1;
        Ok(())
    }

    /// Into the bridge's queue, or back when it is full.
    fn try_send_save(
        bridge: &Outbox,
        key: Box<str>,
        save: WaitingSave,
    ) -> Result<(), (Box<str>, WaitingSave)> {
        let WaitingSave {
            to,
            at_ns,
            room,
            inventory,
        } = save;
        let out = Outbound::To {
            host: to.host,
            msg: Addressed {
                to: Dest::Shard(to.shard),
                msg: PeerMsg::SavePlayer {
                    key,
                    room,
                    inventory,
                },
            },
        };
        match bridge.try_send(out) {
            Ok(()) => Ok(()),
            Err(Outbound::To {
                msg:
                    Addressed {
                        msg:
                            PeerMsg::SavePlayer {
                                key,
                                room,
                                inventory,
                            },
                        ..
                    },
                ..
            }) => Err((
                key,
                WaitingSave {
                    to,
                    at_ns,
                    room,
                    inventory,
                },
            )),
            Err(_) => {
                // try_send gives back what it was given: never here.
                tracing::error!("router: the bridge gave back another message than a save");
                Ok(())
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
    fn the_ticket_owed_to_a_session_goes_back_on_its_next_completing_reply_once() {
        use crate::protocol::addr::{SessionId, ShardAddr};
        let (mailboxes, _inboxes) = mailbox::create(1, 8, mailbox::Wake::Waker).expect("inboxes");
        let mut router = Router::new(0, mailboxes);
        let (sid, other) = (
            SessionId::new(ShardAddr::new(1, 0), 4, 1),
            SessionId::new(ShardAddr::new(1, 0), 5, 1),
        );
        let frame = |sid, done| Msg::Frame {
            sid,
            frame: bytes::Bytes::new(),
            done,
        };
        router.owe_answer(sid, 0);
        assert!(router.owed.is_empty(), "0 is no ticket");
        router.owe_answer(sid, 7);
        assert_eq!((router.owed_ticket(sid), router.owed_ticket(other)), (7, 0));
        // An event, or another session's reply, does not take it.
        assert!(matches!(
            router.with_owed_ticket(frame(sid, false)),
            Msg::Frame { done: false, .. }
        ));
        assert!(matches!(
            router.with_owed_ticket(frame(other, true)),
            Msg::Frame { done: true, .. }
        ));
        assert!(matches!(
            router.with_owed_ticket(frame(sid, true)),
            Msg::Answer { ticket: 7, .. }
        ));
        assert!(matches!(
            router.with_owed_ticket(frame(sid, true)),
            Msg::Frame { done: true, .. }
        ));
        // A hand-off carries it on to whoever answers.
        router.owe_answer(sid, 8);
        let body = crate::game::body::Body {
            sid,
            name: "amy".into(),
            inventory: Vec::new(),
            account: false,
        };
        let arrive = Msg::Arrive {
            body,
            room: 1,
            how: crate::game::body::Arrival::Teleport,
            id: None,
            ack_to: None,
            ticket: 0,
        };
        assert!(matches!(
            router.with_owed_ticket(arrive),
            Msg::Arrive { ticket: 8, .. }
        ));
        assert!(router.owed.is_empty());
        router.owe_answer(sid, 9);
        router.forget_owed(Duration::ZERO);
        std::thread::sleep(Duration::from_millis(2));
        router.forget_owed(Duration::ZERO);
        assert!(router.owed.is_empty(), "forgotten once old");
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
