//! A worker's sessions read from one `epoll` instance (`--read-with epoll`,
//! the default).
//!
//! Reading each session through its glommio socket costs, for every frame
//! the server sends, a poll request on the ring, its completion, a task
//! wake-up and the `recv`: with thousands of sockets that each get a frame
//! now and then (`chat`: ten a second each), loadgen spent as much CPU
//! reading as the server spent sending, a third of it in user space, most
//! of that glommio's sources, rings and tasks (19% in user space with
//! `epoll`, `perf record -g` over 4 s of the run below). Here every session's
//! socket stays registered with the worker's `epoll` instance; one task
//! waits for that instance to become readable (a single poll on the ring,
//! whatever the number of sockets ready), takes the ready list and reads
//! each ready socket with a non-blocking `recv` into the worker's scratch
//! buffer until a read comes back shorter than the buffer (which took all
//! the socket held). Edge-triggered: the kernel looks at a socket once per
//! list it is in (level-triggered looks again, to keep it listed), and what
//! arrives after the read makes the socket ready anew.
//!
//! Measured on the 2-vCPU development VM, `loadgen chat --players 10000
//! --rooms 100 --rate 600 --ramp-rate 5000 --warmup 5 --duration 20
//! --source-ips 20 --threads 1` under `taskset -c 1` against `mudshard
//! --shards 1 --cores 0`, four rounds alternated with `--read-with uring`:
//! loadgen's CPU in the 20 s window 12.79, 10.32, 11.87, 12.22 s against
//! 13.93, 11.34, 12.49, 12.91 s (lower in every round, 7% in the mean), the
//! server's 13.57, 10.81, 12.54, 13.00 s against 13.64, 11.17, 12.30, 12.61 s
//! (the same), every delivery received either way.

use crate::session::Session;
use std::cell::RefCell;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::rc::Rc;

/// Ready sockets taken from the kernel per `epoll_wait`. The task reads
/// them all before it waits again (and lets the worker's other tasks, the
/// sender among them, run).
pub const READY_BATCH: usize = 256;

/// The sessions registered with one worker's `epoll` instance, by slot (the
/// slot is the registration's data, returned with each ready socket).
pub struct Readers {
    epoll: OwnedFd,
    slots: RefCell<Vec<Option<Rc<Session>>>>,
    free: RefCell<Vec<u32>>,
}

impl Readers {
    pub fn new() -> io::Result<Readers> {
        // SAFETY: no pointers; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Readers {
            // SAFETY: `fd` was just created and is owned by nothing else.
            epoll: unsafe { OwnedFd::from_raw_fd(fd) },
            slots: RefCell::new(Vec::new()),
            free: RefCell::new(Vec::new()),
        })
    }

    /// The `epoll` instance, readable when a registered socket is.
    pub fn fd(&self) -> RawFd {
        self.epoll.as_raw_fd()
    }

    /// Registers `session`'s socket; its frames are read by `take_ready`'s
    /// caller from now on.
    pub fn add(&self, session: Rc<Session>) -> io::Result<()> {
        let fd = session.fd();
        let mut slots = self.slots.borrow_mut();
        let slot = match self.free.borrow_mut().pop() {
            Some(slot) => slot,
            None => {
                slots.push(None);
                (slots.len() - 1) as u32
            }
        };
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: u64::from(slot),
        };
        // SAFETY: both descriptors are open; `event` is a valid epoll_event.
        let added = unsafe { libc::epoll_ctl(self.fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
        if added < 0 {
            self.free.borrow_mut().push(slot);
            return Err(io::Error::last_os_error());
        }
        slots[slot as usize] = Some(session);
        Ok(())
    }

    /// Unregisters the session in `slot` (its reading ended) and gives it back.
    pub fn remove(&self, slot: u32) -> Option<Rc<Session>> {
        let session = self.slots.borrow_mut().get_mut(slot as usize)?.take()?;
        // SAFETY: both descriptors are open (the session still owns its
        // socket); a null event is allowed for EPOLL_CTL_DEL.
        unsafe {
            libc::epoll_ctl(
                self.fd(),
                libc::EPOLL_CTL_DEL,
                session.fd(),
                std::ptr::null_mut(),
            )
        };
        self.free.borrow_mut().push(slot);
        Some(session)
    }

    /// The session in `slot`, if it is still registered.
    pub fn get(&self, slot: u32) -> Option<Rc<Session>> {
        self.slots.borrow().get(slot as usize)?.clone()
    }

    /// Fills `ready` with the slots of sockets ready now, without waiting;
    /// returns how many (0 when none is).
    pub fn take_ready(&self, ready: &mut [libc::epoll_event]) -> io::Result<usize> {
        loop {
            // SAFETY: `ready` is valid for `ready.len()` events.
            let n = unsafe {
                libc::epoll_wait(
                    self.fd(),
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

/// The slot carried by a ready event.
pub fn slot_of(event: &libc::epoll_event) -> u32 {
    event.u64 as u32
}

/// The event also reports the peer's end of the stream (or an error).
pub fn hung_up(event: &libc::epoll_event) -> bool {
    event.events & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0
}

/// An empty ready list of `READY_BATCH` events.
pub fn ready_list() -> Vec<libc::epoll_event> {
    vec![libc::epoll_event { events: 0, u64: 0 }; READY_BATCH]
}
