//! Cross-shard messages: one bounded lock-free crossbeam channel per shard,
//! and a doorbell so that an idle shard sleeps in the kernel instead of polling.
//!
//! The doorbell is one end of a socket pair that the shard awaits like any
//! socket. A sender rings it only when the shard is not already due to look
//! at its channel (`pending`), so a busy shard costs its senders no syscall.
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::msg::Msg;

struct Doorbell {
    /// The end senders write a byte to.
    ring_end: OwnedFd,
    /// Set by the first sender after the shard last emptied its channel.
    pending: AtomicBool,
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
        self.wake();
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
        if !self.bell.pending.swap(true, Ordering::AcqRel) {
            self.ring();
        }
    }

    fn ring(&self) {
        let byte = 1u8;
        // A full socket buffer (EAGAIN) means the shard has wake-ups waiting
        // already; any other failure means it is gone. Neither needs handling.
        // SAFETY: the fd is owned by `bell` and outlives this call; the buffer is one valid byte.
        unsafe {
            libc::send(
                self.bell.ring_end.as_raw_fd(),
                (&byte as *const u8).cast(),
                1,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            );
        }
    }
}

/// The receiving side of a shard's inbox, moved into the shard's thread.
pub struct Inbox {
    rx: Receiver<Msg>,
    bell: Arc<Doorbell>,
    /// The end the shard awaits; handed to glommio on the shard's thread.
    wake_end: Option<OwnedFd>,
}

impl Inbox {
    /// Takes the doorbell's socket for the shard's executor to await.
    pub fn take_wake_fd(&mut self) -> Option<RawFd> {
        self.wake_end.take().map(IntoRawFd::into_raw_fd)
    }

    /// Called after the doorbell rang and before draining: from here on, a new
    /// message rings again.
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
pub fn create(shards: usize, inbox_msgs_max: usize) -> io::Result<(Vec<Mailbox>, Vec<Inbox>)> {
    // A bound of 0 is a rendezvous channel: `try_send` would never succeed.
    assert!(inbox_msgs_max > 0, "an inbox must hold a message");
    let mut mailboxes = Vec::with_capacity(shards);
    let mut inboxes = Vec::with_capacity(shards);
    for _ in 0..shards {
        let (ring_end, wake_end) = UnixStream::pair()?;
        ring_end.set_nonblocking(true)?;
        wake_end.set_nonblocking(true)?;
        let bell = Arc::new(Doorbell {
            ring_end: OwnedFd::from(ring_end),
            pending: AtomicBool::new(false),
        });
        let (tx, rx) = crossbeam_channel::bounded(inbox_msgs_max);
        mailboxes.push(Mailbox {
            tx,
            bell: bell.clone(),
        });
        inboxes.push(Inbox {
            rx,
            bell,
            wake_end: Some(OwnedFd::from(wake_end)),
        });
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
        let (mailboxes, inboxes) = create(1, 2).expect("socket pair");
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
        let (mailboxes, inboxes) = create(1, 1).expect("socket pair");
        mailboxes[0].send(numbered(1));
        let mailbox = mailboxes[0].clone();
        let sender = std::thread::spawn(move || mailbox.send(numbered(2)));
        assert_eq!(number(inboxes[0].try_recv()), Some(1));
        sender.join().expect("the sender ends once there is room");
        assert_eq!(number(inboxes[0].try_recv()), Some(2));
    }

    #[test]
    fn send_on_a_shard_thread_never_waits_and_loses_nothing() {
        let (mailboxes, inboxes) = create(1, 1).expect("socket pair");
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
