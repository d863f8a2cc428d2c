//! `floor --rtt --cross`: the echo threads hand requests to each other the
//! way mudshard's shards hand a command to the shard that owns its room,
//! with nothing else in the way.
//!
//! Pair k is read by echo thread k % N (as before) and "owned" by thread
//! (k / N) % N, so on N threads (N−1)/N of the requests are read by a thread
//! that does not own them, as (N−1)/N of a host's commands are read on a
//! shard that does not own the room. Such a request crosses over and back:
//! the reading thread puts a hop in the owner's inbox, the owner takes it
//! and puts it back in the reader's inbox, and the reader sends the reply.
//! Each inbox rings its thread (an `eventfd` in its epoll set) only when
//! that thread is asleep in `epoll_wait`, as mudshard's mailbox rings only a
//! sleeping shard: what is left is what this machine charges for a thread
//! that hands work to another and hears back, waking it when it sleeps.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// One request handed between threads: the reading thread, its local index
/// of the pair, the requests read, and whether it is on its way back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    pub reader: usize,
    pub pair: usize,
    pub requests: usize,
    pub back: bool,
}

/// The echo thread that owns the `local`-th pair of thread `reader`'s share
/// (pair k = local × threads + reader is owned by (k / threads) % threads).
pub fn owner(local: usize, threads: usize) -> usize {
    local % threads
}

/// One thread's inbox and its doorbell.
pub struct Inbox {
    hops: Mutex<Vec<Hop>>,
    /// Set by the thread just before it sleeps, cleared when it wakes (or
    /// by the sender that rings it).
    asleep: AtomicBool,
    bell: OwnedFd,
    /// Times a sender rang this thread.
    pub rings: AtomicU64,
}

impl Inbox {
    pub fn new() -> io::Result<Inbox> {
        // SAFETY: no pointers; the result is checked.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Inbox {
            hops: Mutex::new(Vec::new()),
            asleep: AtomicBool::new(false),
            // SAFETY: `fd` was just created and is owned by nothing else.
            bell: unsafe { OwnedFd::from_raw_fd(fd) },
            rings: AtomicU64::new(0),
        })
    }

    pub fn bell_fd(&self) -> RawFd {
        self.bell.as_raw_fd()
    }

    /// Puts `hop` in the inbox and rings the thread if it is asleep.
    pub fn send(&self, hop: Hop) -> io::Result<()> {
        self.hops
            .lock()
            .map_err(|_| io::Error::other("an echo thread panicked holding its inbox"))?
            .push(hop);
        // Pairs with the fence in `may_sleep`: either the sleeper sees the
        // hop, or this sees it asleep.
        fence(Ordering::SeqCst);
        if self.asleep.swap(false, Ordering::SeqCst) {
            self.rings.fetch_add(1, Ordering::Relaxed);
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live buffer to our eventfd.
            let n = unsafe { libc::write(self.bell.as_raw_fd(), one.as_ptr().cast(), 8) };
            if n != 8 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(())
    }

    /// Moves every waiting hop into `into` (emptied first).
    pub fn take(&self, into: &mut Vec<Hop>) -> io::Result<()> {
        into.clear();
        let mut hops = self
            .hops
            .lock()
            .map_err(|_| io::Error::other("an echo thread panicked holding its inbox"))?;
        std::mem::swap(&mut *hops, into);
        Ok(())
    }

    /// Marks the thread asleep; false (and not asleep) if a hop is already
    /// waiting, so that it does not sleep on it.
    pub fn may_sleep(&self) -> bool {
        self.asleep.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        let empty = self.hops.lock().map(|h| h.is_empty()).unwrap_or(false);
        if !empty {
            self.asleep.store(false, Ordering::SeqCst);
        }
        empty
    }

    /// The thread is awake: senders need not ring it.
    pub fn woke(&self) {
        self.asleep.store(false, Ordering::SeqCst);
    }

    /// Empties the doorbell once its ring was seen.
    pub fn clear_bell(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer from our eventfd;
        // EAGAIN (not rung) is fine.
        unsafe { libc::read(self.bell.as_raw_fd(), count.as_mut_ptr().cast(), 8) };
    }
}

/// Every echo thread's inbox.
pub type Inboxes = Arc<Vec<Inbox>>;

pub fn inboxes(threads: usize) -> io::Result<Inboxes> {
    Ok(Arc::new(
        (0..threads)
            .map(|_| Inbox::new())
            .collect::<io::Result<Vec<_>>>()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sender_rings_only_a_thread_that_is_asleep() {
        let inbox = Inbox::new().expect("eventfd");
        let hop = Hop {
            reader: 0,
            pair: 3,
            requests: 2,
            back: false,
        };
        inbox.send(hop).expect("send");
        assert_eq!(inbox.rings.load(Ordering::Relaxed), 0, "awake: not rung");
        // A hop is waiting: the thread must not sleep.
        assert!(!inbox.may_sleep());
        let mut got = Vec::new();
        inbox.take(&mut got).expect("take");
        assert_eq!(got, [hop]);
        assert!(inbox.may_sleep());
        inbox.send(hop).expect("send");
        assert_eq!(inbox.rings.load(Ordering::Relaxed), 1, "asleep: rung once");
        inbox.send(hop).expect("send");
        assert_eq!(inbox.rings.load(Ordering::Relaxed), 1, "rung already");
        inbox.woke();
        inbox.clear_bell();
        inbox.take(&mut got).expect("take");
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn half_of_the_pairs_of_two_threads_are_owned_by_the_other() {
        // Thread t's local pair i is pair i × 2 + t.
        for t in 0..2 {
            let crossing = (0..100).filter(|&i| owner(i, 2) != t).count();
            assert_eq!(crossing, 50);
        }
        // On 4 threads three quarters cross; on one thread none.
        let crossing = (0..100).filter(|&i| owner(i, 4) != 1).count();
        assert_eq!(crossing, 75);
        assert!((0..10).all(|i| owner(i, 1) == 0));
    }
}
