//! Cross-shard messages: one bounded lock-free crossbeam channel per shard,
//! and a doorbell so that an idle shard sleeps in the kernel instead of polling.
//!
//! A sender rings only when the shard is not already due to look at its
//! channel (`pending`), so a busy shard costs its senders nothing but the
//! channel push. How the ring travels is [`Wake`]:
//!
//! * [`Wake::Waker`] (the default): the shard's inbox task leaves its task
//!   waker here when it finds the channel empty, and a ring wakes that task.
//!   glommio hands a waker woken from another thread to its executor through
//!   the executor's own sleep notifier, which writes its eventfd only when the
//!   executor is actually asleep (in `io_uring_enter`). A ring that finds the
//!   shard awake, running other tasks, costs no system call on either side.
//! * [`Wake::Socket`]: one end of a socket pair that the shard awaits like
//!   any socket; every ring is a `send` and, on the shard, a receive
//!   completion, asleep or not. Kept to measure the difference (README,
//!   "Scaling with cores").
//!
//! The bound (`Limits::inbox_msgs_max`) never makes a shard wait for another:
//! shards send with [`Mailbox::try_send`], and their router keeps, in order,
//! what a full inbox refuses (`router.rs`). Only the threads beside the
//! shards (store, hasher, the host stopping) wait for room, in
//! [`Mailbox::send`]; no shard ever waits for them, so their wait ends.

use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::cell::Cell;
use std::io;
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::msg::Msg;

/// How a sender wakes a shard that may be asleep (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// Wake the inbox task; the executor's eventfd only when it sleeps.
    Waker,
    /// A byte on a socket pair, every time.
    Socket,
}

struct Doorbell {
    /// Set by the first sender after the shard last found its channel empty;
    /// while set, senders do not ring.
    pending: AtomicBool,
    /// [`Wake::Socket`]: the end senders write a byte to.
    ring_end: Option<OwnedFd>,
    /// [`Wake::Waker`]: the inbox task, while it waits for a message.
    waker: Mutex<Option<Waker>>,
}

/// The sending side of one shard's inbox; any thread may hold a clone.
#[derive(Clone)]
pub struct Mailbox {
    tx: Sender<Msg>,
    bell: Arc<Doorbell>,
}

thread_local! {
    /// Set on a shard's thread, where [`Mailbox::send`] must not wait.
    static ON_SHARD_THREAD: Cell<bool> = const { Cell::new(false) };
}

/// Marks the calling thread as a shard's: from here on, a [`Mailbox::send`]
/// made on it never waits for room.
pub fn mark_shard_thread() {
    ON_SHARD_THREAD.with(|on| on.set(true));
}

impl Mailbox {
    /// Queues `msg` if the inbox has room and wakes the shard if it may be
    /// asleep; a full inbox gives the message back. Sending to a shard that
    /// has stopped drops the message: that only happens during shutdown,
    /// when nothing is left to answer.
    pub fn try_send(&self, msg: Msg) -> Result<(), Msg> {
        match self.tx.try_send(msg) {
            Ok(()) => {
                self.wake();
                Ok(())
            }
            Err(TrySendError::Full(msg)) => Err(msg),
            Err(TrySendError::Disconnected(_)) => Ok(()),
        }
    }

    /// Queues `msg`, waiting for room while the inbox is full. For threads
    /// beside the shards only (store and hasher replies, the host's
    /// `Shutdown`): the shard drains its inbox without ever waiting for them,
    /// so the wait ends. Shards send through their router, which never waits:
    /// two full shards waiting for each other would wait forever.
    ///
    /// A store reply can still run on a shard's thread (a request failed at
    /// once because the store thread is gone). There a full inbox, perhaps the
    /// shard's own, hands the message to a short-lived thread that waits
    /// instead: a rare path, and neither a stall nor a loss.
    pub fn send(&self, msg: Msg) {
        let Err(msg) = self.try_send(msg) else {
            return;
        };
        // Full, so the shard has been rung already; ring again in case, since
        // a waiting sender depends on it draining.
        self.ring();
        if ON_SHARD_THREAD.with(Cell::get) {
            let mailbox = self.clone();
            let spawned = std::thread::Builder::new()
                .name("inbox-wait".into())
                .spawn(move || mailbox.send(msg));
            if let Err(e) = spawned {
                tracing::error!(error = %e, "inbox full and no thread to wait for room: message dropped");
            }
            return;
        }
        if self.tx.send(msg).is_ok() {
            self.wake();
        }
    }

    /// Messages waiting in the inbox now.
    pub fn depth(&self) -> usize {
        self.tx.len()
    }

    /// Rings the doorbell unless the shard is already due to look.
    fn wake(&self) {
        // Pairs with the fence in `Inbox::poll_ready` (Dekker's pattern):
        // either the shard sees the message just queued, or this sees that
        // the shard stopped looking.
        fence(Ordering::SeqCst);
        if !self.bell.pending.swap(true, Ordering::AcqRel) {
            self.ring();
        }
    }

    fn ring(&self) {
        if let Some(ring_end) = &self.bell.ring_end {
            let byte = 1u8;
            // A full socket buffer (EAGAIN) means the shard has wake-ups waiting
            // already; any other failure means it is gone. Neither needs handling.
            // SAFETY: the fd is owned by `bell` and outlives this call; the buffer is one valid byte.
            unsafe {
                libc::send(
                    ring_end.as_raw_fd(),
                    (&byte as *const u8).cast(),
                    1,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                );
            }
            return;
        }
        // A poisoned lock only means a panic elsewhere held it; the slot is
        // still a plain Option.
        let waker = match self.bell.waker.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The receiving side of a shard's inbox, moved into the shard's thread.
pub struct Inbox {
    rx: Receiver<Msg>,
    bell: Arc<Doorbell>,
    /// [`Wake::Socket`]: the end the shard awaits.
    wake_end: Option<OwnedFd>,
}

impl Inbox {
    /// Takes the doorbell's socket ([`Wake::Socket`] only) for the shard to
    /// await; `None` with [`Wake::Waker`], where the shard awaits
    /// [`Inbox::poll_ready`] instead.
    pub fn take_wake_fd(&mut self) -> Option<RawFd> {
        self.wake_end.take().map(IntoRawFd::into_raw_fd)
    }

    /// [`Wake::Waker`]: ready when the channel holds a message; otherwise
    /// leaves `cx`'s waker for the next sender and stops deferring rings.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<()> {
        if !self.rx.is_empty() {
            return Poll::Ready(());
        }
        {
            let mut slot = match self.bell.waker.lock() {
                Ok(slot) => slot,
                Err(poisoned) => poisoned.into_inner(),
            };
            match slot.as_ref() {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        self.bell.pending.store(false, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if self.rx.is_empty() {
            return Poll::Pending;
        }
        // A message slipped in before the flag fell: take it now. A sender
        // may also have rung; that wake finds the channel empty or not, and
        // either way costs one more look.
        self.bell.pending.store(true, Ordering::SeqCst);
        Poll::Ready(())
    }

    /// [`Wake::Socket`]: called after the doorbell rang and before draining:
    /// from here on, a new message rings again.
    pub fn rearm(&self) {
        self.bell.pending.store(false, Ordering::SeqCst);
    }

    /// The next message, if any.
    pub fn try_recv(&self) -> Option<Msg> {
        // Empty or disconnected: either way there is nothing to handle.
        self.rx.try_recv().ok()
    }
}

/// Creates the inboxes of `shards` shards, each holding at most
/// `inbox_msgs_max` messages, and the mailboxes that reach them.
pub fn create(
    shards: usize,
    inbox_msgs_max: usize,
    wake: Wake,
) -> io::Result<(Vec<Mailbox>, Vec<Inbox>)> {
    // A bound of 0 is a rendezvous channel: `try_send` would never succeed.
    assert!(inbox_msgs_max > 0, "an inbox must hold a message");
    let mut mailboxes = Vec::with_capacity(shards);
    let mut inboxes = Vec::with_capacity(shards);
    for _ in 0..shards {
        let (ring_end, wake_end) = match wake {
            Wake::Socket => {
                let (ring_end, wake_end) = UnixStream::pair()?;
                ring_end.set_nonblocking(true)?;
                wake_end.set_nonblocking(true)?;
                (Some(OwnedFd::from(ring_end)), Some(OwnedFd::from(wake_end)))
            }
            Wake::Waker => (None, None),
        };
        let bell = Arc::new(Doorbell {
            ring_end,
            pending: AtomicBool::new(false),
            waker: Mutex::new(None),
        });
        let (tx, rx) = crossbeam_channel::bounded(inbox_msgs_max);
        mailboxes.push(Mailbox {
            tx,
            bell: bell.clone(),
        });
        inboxes.push(Inbox { rx, bell, wake_end });
    }
    Ok((mailboxes, inboxes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: u64) -> Msg {
        Msg::WhoAsk { asker: 0, ask: n }
    }

    fn number(msg: Option<Msg>) -> Option<u64> {
        match msg {
            Some(Msg::WhoAsk { ask, .. }) => Some(ask),
            _ => None,
        }
    }

    #[test]
    fn try_send_refuses_past_the_bound_and_gives_the_message_back() {
        let (mailboxes, inboxes) = create(1, 2, Wake::Waker).expect("inbox");
        assert!(mailboxes[0].try_send(numbered(1)).is_ok());
        assert!(mailboxes[0].try_send(numbered(2)).is_ok());
        let refused = mailboxes[0].try_send(numbered(3)).err();
        assert_eq!(number(refused), Some(3));
        assert_eq!(mailboxes[0].depth(), 2);
        assert_eq!(number(inboxes[0].try_recv()), Some(1));
        assert!(mailboxes[0].try_send(numbered(3)).is_ok());
        assert_eq!(number(inboxes[0].try_recv()), Some(2));
        assert_eq!(number(inboxes[0].try_recv()), Some(3));
        assert_eq!(mailboxes[0].depth(), 0);
    }

    #[test]
    fn send_waits_for_room_off_a_shard_thread() {
        let (mailboxes, inboxes) = create(1, 1, Wake::Waker).expect("inbox");
        mailboxes[0].send(numbered(1));
        let mailbox = mailboxes[0].clone();
        let sender = std::thread::spawn(move || mailbox.send(numbered(2)));
        assert_eq!(number(inboxes[0].try_recv()), Some(1));
        sender.join().expect("the sender ends once there is room");
        assert_eq!(number(inboxes[0].try_recv()), Some(2));
    }

    #[test]
    fn send_on_a_shard_thread_never_waits_and_loses_nothing() {
        let (mailboxes, inboxes) = create(1, 1, Wake::Waker).expect("inbox");
        let mailbox = mailboxes[0].clone();
        std::thread::spawn(move || {
            mark_shard_thread();
            mailbox.send(numbered(1));
            // Full: on a shard's thread this must return at once.
            mailbox.send(numbered(2));
        })
        .join()
        .expect("the shard thread did not wait");
        assert_eq!(number(inboxes[0].try_recv()), Some(1));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let second = loop {
            if let Some(msg) = inboxes[0].try_recv() {
                break Some(msg);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the waiting thread never delivered"
            );
            std::thread::yield_now();
        };
        assert_eq!(number(second), Some(2));
    }
}
