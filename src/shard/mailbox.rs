//! Cross-shard messages: one lock-free crossbeam channel per shard, and a
//! doorbell so that an idle shard sleeps in the kernel instead of polling.
//!
//! The doorbell is one end of a socket pair that the shard awaits like any
//! socket. A sender rings it only when the shard is not already due to look
//! at its channel (`pending`), so a busy shard costs its senders no syscall.

use crossbeam_channel::{Receiver, Sender};
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

impl Mailbox {
    /// Queues `msg` and wakes the shard if it may be asleep. Sending to a
    /// shard that has stopped drops the message: that only happens during
    /// shutdown, when nothing is left to answer.
    pub fn send(&self, msg: Msg) {
        if self.tx.send(msg).is_err() {
            return;
        }
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

/// Creates the inboxes of `shards` shards and the mailboxes that reach them.
pub fn create(shards: usize) -> io::Result<(Vec<Mailbox>, Vec<Inbox>)> {
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
        let (tx, rx) = crossbeam_channel::unbounded();
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
