//! Idle sessions park their reads on one `epoll` instance per shard.
//!
//! A session reads its socket through glommio: a `recv`, and when the socket
//! is empty, a poll request on the shard's ring that wakes the task when
//! bytes come. That request is a `Source` of 320 bytes, and an idle session
//! holds one for as long as it is idle: at 15,000 idle sessions, 4.7 MB, a
//! quarter of the heap an idle session holds.
//!
//! So a session the sweep finds quiet (nothing read for `[runtime]
//! park_reads_after_ms`; `PARK_DUE`) parks its reads at its next poll: it
//! drops glommio's poll (glommio patch 9) and arms its socket in the shard's
//! `epoll` instance instead, level-triggered and one-shot (`PARKED`): a
//! socket readable already is reported at once, and each arming reports at
//! most once. One task (`watch`) waits for that instance to become readable
//! (a single poll on the ring, however many sockets are armed), takes the
//! ready list, marks each session `WOKEN` and wakes its task, which goes
//! back to reading through glommio. The kernel keeps the registration (not
//! in the process's memory); the session keeps nothing.
//!
//! Why not read every session this way: measured on the 2-vCPU VM (README,
//! "Idle memory"), reading all sessions through the `epoll` instance cost
//! `walk` with one shard 8% more CPU per move (six rounds alternated): at
//! 10,000 moves/s each `epoll_wait` found 1.3 ready sockets, so the instance's
//! own poll and the `epoll_wait` cost about what the socket polls they
//! replaced did. Busy sessions read as before; only quiet ones park, and a
//! session that speaks once in a while (a chat player) parks and wakes once
//! per silence.
//!
//! `[runtime] park_reads_after_ms = 0` never parks, for A/B measurements.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use crate::shard::run::ShardCell;
use crate::shard::session::reads::{PARKED, WOKEN};

/// Ready sockets taken from the kernel per `epoll_wait`; with more, the task
/// lets the shard's other tasks run before it takes the next batch.
const READY_BATCH: usize = 256;

/// How long `watch` waits after the ring refused its poll before it asks
/// again, instead of spinning.
const WATCH_RETRY_MS: u64 = 50;

/// One shard's `epoll` instance.
pub struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: no pointers; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Epoll {
            // SAFETY: `fd` was just created and is owned by nothing else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Arms the socket of the session in `slot` (generation `gen`) to be
    /// reported once, when it is readable or hung up (at once if it is
    /// already). `registered`: it was armed before on this connection, so
    /// the registration is there, disarmed by its report.
    pub fn arm(&self, socket: RawFd, slot: u32, gen: u32, registered: bool) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
            u64: token(slot, gen),
        };
        let op = if registered {
            libc::EPOLL_CTL_MOD
        } else {
            libc::EPOLL_CTL_ADD
        };
        // SAFETY: both descriptors are open; `event` is a valid epoll_event.
        if unsafe { libc::epoll_ctl(self.fd.as_raw_fd(), op, socket, &mut event) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Unregisters `socket` if it is registered: needed before it lives on
    /// in a duplicate (a resume's hand-over), since only closing the last
    /// descriptor of a socket removes its registration.
    pub fn remove(&self, socket: RawFd) {
        // SAFETY: both descriptors are open; a null event is allowed for DEL.
        // ENOENT (never armed) is the common answer and needs nothing.
        unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                socket,
                std::ptr::null_mut(),
            )
        };
    }

    fn take_ready(&self, ready: &mut [libc::epoll_event]) -> io::Result<usize> {
        loop {
            // SAFETY: `ready` is valid for `ready.len()` events.
            let n = unsafe {
                libc::epoll_wait(
                    self.fd.as_raw_fd(),
                    ready.as_mut_ptr(),
                    ready.len().min(i32::MAX as usize) as i32,
                    0,
                )
            };
            if n >= 0 {
                return Ok(n as usize);
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

fn token(slot: u32, gen: u32) -> u64 {
    (u64::from(gen) << 32) | u64::from(slot)
}

fn slot_and_gen(token: u64) -> (u32, u32) {
    (token as u32, (token >> 32) as u32)
}

/// Wakes the parked sessions whose sockets were reported, for as long as the
/// shard runs. A report for a session that has ended (its slot empty or
/// another generation's) or is no longer parked (a newer connection) is
/// passed over.
pub async fn watch(shard: ShardCell, epoll: Rc<Epoll>) {
    let mut ready = vec![libc::epoll_event { events: 0, u64: 0 }; READY_BATCH];
    loop {
        if let Err(e) = glommio::wait_readable(epoll.fd.as_raw_fd()).await {
            tracing::warn!(shard = shard.borrow().id, error = %e, "waiting on the sessions' epoll failed");
            glommio::timer::Timer::new(std::time::Duration::from_millis(WATCH_RETRY_MS)).await;
            continue;
        }
        loop {
            let n = match epoll.take_ready(&mut ready) {
                Ok(n) => n,
                Err(e) => {
                    tracing::warn!(shard = shard.borrow().id, error = %e, "epoll_wait failed");
                    break;
                }
            };
            wake(&shard, &ready[..n]);
            if n < READY_BATCH {
                break;
            }
            futures_lite::future::yield_now().await;
        }
    }
}

fn wake(shard: &ShardCell, ready: &[libc::epoll_event]) {
    let mut sh = shard.borrow_mut();
    let sh = &mut *sh;
    for event in ready {
        let (slot, gen) = slot_and_gen(event.u64);
        let Some(session) = sh.sessions.get_mut(slot, gen) else {
            continue;
        };
        if session.reads & PARKED == 0 {
            continue;
        }
        session.reads |= WOKEN;
        sh.counters.stats.reads_woken += 1;
        session.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_carries_the_slot_and_the_generation() {
        assert_eq!(slot_and_gen(token(7, 3)), (7, 3));
        assert_eq!(
            slot_and_gen(token(u32::MAX, u32::MAX - 1)),
            (u32::MAX, u32::MAX - 1)
        );
    }

    /// The instance reports an armed socket once, at once if it holds bytes
    /// already, and not again until it is armed again.
    #[test]
    fn an_armed_socket_is_reported_once_and_again_only_when_armed_again() {
        use std::io::Write;
        let epoll = Epoll::new().expect("epoll");
        let (mut a, b) = std::os::unix::net::UnixStream::pair().expect("pair");
        let mut ready = vec![libc::epoll_event { events: 0, u64: 0 }; 4];
        epoll.arm(b.as_raw_fd(), 5, 9, false).expect("arm");
        assert_eq!(
            epoll.take_ready(&mut ready).expect("wait"),
            0,
            "nothing to read yet"
        );
        a.write_all(b"x").expect("write");
        assert_eq!(epoll.take_ready(&mut ready).expect("wait"), 1);
        let token = ready[0].u64;
        assert_eq!(slot_and_gen(token), (5, 9));
        a.write_all(b"y").expect("write");
        assert_eq!(
            epoll.take_ready(&mut ready).expect("wait"),
            0,
            "one report per arming"
        );
        epoll.arm(b.as_raw_fd(), 5, 9, true).expect("arm again");
        assert_eq!(
            epoll.take_ready(&mut ready).expect("wait"),
            1,
            "armed again while readable: reported at once"
        );
        epoll.remove(b.as_raw_fd());
        epoll.remove(b.as_raw_fd());
    }
}
