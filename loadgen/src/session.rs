//! One player's connection: its socket, the few bytes it carries between
//! reads, its unsent bytes, and the commands it awaits replies to.
//!
//! Per-session memory is kept small on purpose (a load run holds tens of
//! thousands): reads go into the worker thread's one scratch buffer, and a
//! session only keeps the tail of a frame that a read cut in half.

use crate::plan::{PlayerSpec, WalkKind};
use crate::ws;
use futures_lite::{AsyncRead, AsyncWrite};
use glommio::net::TcpStream;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::task::Poll;

/// The most commands one session may await replies to; past it the oldest is
/// counted as timed out. At the server's 20 commands/s this is minutes.
pub const OUTSTANDING_MAX: usize = 4096;

/// Unsent bytes a session may hold when the server stops reading, in bytes.
/// Beyond it sends are refused and counted (`send_overflows`).
pub const OUTBOX_BYTES_MAX: usize = 256 * 1024;

/// How a session's reading ended.
#[derive(Debug)]
pub enum Ended {
    /// The server closed the TCP connection.
    Eof,
    /// The server sent a close frame with this code.
    Closed(u16),
    Io(io::Error),
    Protocol(ws::ProtocolError),
}

/// A connected player (see the module doc).
pub struct Session {
    /// The player's index across the whole run (names and placement use it).
    pub index: u64,
    /// Players in this session's chat room (for expected deliveries).
    pub room_size: u64,
    /// The session's place in `--target` order (`cluster` tells same-host
    /// deliveries from cross-host ones by it).
    pub target: usize,
    /// Whether the send schedule uses this session.
    pub talks: bool,
    /// `cluster`: how this session walks, when it is a walker (its moves
    /// are counted and timed apart from the talkers' commands).
    pub walk: Option<WalkKind>,
    /// Where the player stands in the grid, from the last move reply.
    pub pos: Cell<(u32, u32)>,
    /// `walk`: the shard of the connection (from `welcome`) and the shard
    /// owning the room the last move reply left the player in.
    pub home_shard: Cell<Option<u16>>,
    pub here_shard: Cell<Option<u16>>,
    /// `walk`: the last step sent (`n`, `s`, `e`, `w`), to step back.
    pub last_step: Cell<u8>,
    /// Set when `welcome` arrives.
    pub welcomed: Cell<bool>,
    /// Replies to setup commands (those with string ids: place, quit).
    pub setup_replies: Cell<u32>,
    /// Why setup failed, if it did (an error or `ok:false` before play).
    pub setup_error: RefCell<Option<String>>,
    /// False once the connection is known to be gone.
    pub open: Cell<bool>,
    stream: RefCell<TcpStream>,
    fd: RawFd,
    /// Bytes read but not yet decoded into messages.
    pub(crate) inbox: RefCell<ws::Inbox>,
    /// Bytes a send could not write at once, flushed by a background task.
    outbox: RefCell<Vec<u8>>,
    flushing: Cell<bool>,
    /// Intended send times of commands awaiting replies, oldest first.
    pub(crate) outstanding: RefCell<VecDeque<u64>>,
    /// The last `seq` seen, 0 before any.
    pub(crate) last_seq: Cell<u64>,
    mask_state: Cell<u64>,
}

impl Session {
    pub fn new(spec: &PlayerSpec, stream: TcpStream) -> Session {
        let mut session = Session::plain(spec.index, stream);
        session.room_size = spec.room_size;
        session.target = spec.target_index;
        session.talks = spec.talks;
        session.walk = spec.walk;
        session.pos = Cell::new(spec.place.unwrap_or((0, 0)));
        session
    }

    /// A session outside any plan (the soak's extra connections, an HTTP
    /// request): index `index`, no room, the first target, talking.
    pub fn plain(index: u64, stream: TcpStream) -> Session {
        let fd = stream.as_raw_fd();
        Session {
            index,
            room_size: 0,
            target: 0,
            talks: true,
            walk: None,
            pos: Cell::new((0, 0)),
            home_shard: Cell::new(None),
            here_shard: Cell::new(None),
            last_step: Cell::new(b'n'),
            welcomed: Cell::new(false),
            setup_replies: Cell::new(0),
            setup_error: RefCell::new(None),
            open: Cell::new(true),
            stream: RefCell::new(stream),
            fd,
            inbox: RefCell::new(ws::Inbox::default()),
            outbox: RefCell::new(Vec::new()),
            flushing: Cell::new(false),
            outstanding: RefCell::new(VecDeque::new()),
            last_seq: Cell::new(0),
            mask_state: Cell::new(index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1),
        }
    }

    /// A cheap pseudo-random mask key (xorshift); see `ws::encode_frame`.
    pub fn next_mask(&self) -> [u8; 4] {
        let mut x = self.mask_state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.mask_state.set(x);
        (x as u32).to_ne_bytes()
    }

    /// Reads once into `scratch` (waiting until something arrives) and hands
    /// the bytes to `consume`. Returns the bytes read; 0 means end of stream.
    pub async fn read_into<F>(
        &self,
        scratch: &RefCell<Vec<u8>>,
        mut consume: F,
    ) -> io::Result<usize>
    where
        F: FnMut(&[u8]),
    {
        poll_fn(|cx| {
            // Borrows last only for this poll: the scratch buffer is shared by
            // every session of the thread, and the stream by this session's
            // writer.
            let mut buf = scratch.borrow_mut();
            let polled = {
                let mut stream = self.stream.borrow_mut();
                Pin::new(&mut *stream).poll_read(cx, &mut buf[..])
            };
            match polled {
                Poll::Ready(Ok(n)) => {
                    if n > 0 {
                        consume(&buf[..n]);
                    }
                    Poll::Ready(Ok(n))
                }
                other => other,
            }
        })
        .await
    }

    /// Writes all of `bytes`, waiting for the socket as needed (also for the
    /// connect to finish). Used during setup and by the background flush.
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let n = poll_fn(|cx| {
                let mut stream = self.stream.borrow_mut();
                Pin::new(&mut *stream).poll_write(cx, bytes)
            })
            .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            bytes = &bytes[n..];
        }
        Ok(())
    }

    /// Sends `frame` without waiting: one non-blocking `send`, and whatever
    /// did not fit goes to the outbox for a background flush. Returns false
    /// when the outbox is full (the frame is not sent) or the session is gone.
    pub fn send_now(self: &std::rc::Rc<Self>, frame: &[u8]) -> bool {
        if !self.open.get() {
            return false;
        }
        let mut outbox = self.outbox.borrow_mut();
        if !outbox.is_empty() || self.flushing.get() {
            // Keep frame order: queue behind what is already waiting.
            if outbox.len() + frame.len() > OUTBOX_BYTES_MAX {
                return false;
            }
            outbox.extend_from_slice(frame);
            return true;
        }
        let written = match self.try_send(frame) {
            Ok(n) => n,
            Err(_) => {
                // The reader will see the same error and account for it.
                self.open.set(false);
                return false;
            }
        };
        if written < frame.len() {
            outbox.extend_from_slice(&frame[written..]);
            self.flushing.set(true);
            let me = std::rc::Rc::clone(self);
            glommio::spawn_local(async move { me.flush().await }).detach();
        }
        true
    }

    /// The session's socket.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// One non-blocking `recv` into `buf`: `Some(n)` bytes read (0 at end of
    /// stream), `None` when nothing is waiting. Made with `syscall(2)`, not
    /// glibc's `recv`, which switches the thread to asynchronous
    /// cancellation and back around every call (as mudshard's glommio does,
    /// its patch 10): a load generator spends as little as it can per frame.
    pub fn recv_now(&self, buf: &mut [u8]) -> io::Result<Option<usize>> {
        let no_addr = std::ptr::null_mut::<libc::sockaddr>();
        let no_len = std::ptr::null_mut::<libc::socklen_t>();
        loop {
            // SAFETY: `fd` is this session's open socket; `buf` is valid for
            // writes of its length; no address is asked for.
            let read = unsafe {
                libc::syscall(
                    libc::SYS_recvfrom,
                    self.fd,
                    buf.as_mut_ptr(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                    no_addr,
                    no_len,
                )
            };
            if read >= 0 {
                return Ok(Some(read as usize));
            }
            let err = io::Error::last_os_error();
            match err.kind() {
                io::ErrorKind::WouldBlock => return Ok(None),
                io::ErrorKind::Interrupted => continue,
                _ => return Err(err),
            }
        }
    }

    /// One non-blocking `send`; returns the bytes written (0 if the socket
    /// buffer is full). Through `syscall(2)`, as `recv_now`.
    pub fn try_send(&self, frame: &[u8]) -> io::Result<usize> {
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        // SAFETY: `fd` is this session's open socket; the slice is valid; no
        // address is given.
        let sent = unsafe {
            libc::syscall(
                libc::SYS_sendto,
                self.fd,
                frame.as_ptr(),
                frame.len(),
                flags,
                std::ptr::null::<libc::sockaddr>(),
                0 as libc::socklen_t,
            )
        };
        if sent >= 0 {
            return Ok(sent as usize);
        }
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::WouldBlock {
            Ok(0)
        } else {
            Err(err)
        }
    }

    async fn flush(&self) {
        loop {
            let pending = std::mem::take(&mut *self.outbox.borrow_mut());
            if pending.is_empty() {
                break;
            }
            if self.write_all(&pending).await.is_err() {
                self.open.set(false);
                break;
            }
        }
        self.flushing.set(false);
    }

    /// Remembers that a reply to the command sent for `intended_ns` is due.
    /// Returns the intended time of a command pushed out to make room (it
    /// counts as timed out).
    pub fn expect_reply(&self, intended_ns: u64) -> Option<u64> {
        let mut outstanding = self.outstanding.borrow_mut();
        let evicted = if outstanding.len() >= OUTSTANDING_MAX {
            outstanding.pop_front()
        } else {
            None
        };
        outstanding.push_back(intended_ns);
        evicted
    }

    /// Forgets the command sent for `intended_ns`; false if it was not
    /// awaited (it already timed out).
    pub fn reply_seen(&self, intended_ns: u64) -> bool {
        let mut outstanding = self.outstanding.borrow_mut();
        // Replies come almost always in order, so this finds it at the front.
        match outstanding.iter().position(|t| *t == intended_ns) {
            Some(at) => {
                outstanding.remove(at);
                true
            }
            None => false,
        }
    }

    /// Removes and returns commands sent for before `deadline_ns`.
    pub fn expire(&self, deadline_ns: u64, mut expired: impl FnMut(u64)) {
        let mut outstanding = self.outstanding.borrow_mut();
        while let Some(&t) = outstanding.front() {
            if t >= deadline_ns {
                break;
            }
            outstanding.pop_front();
            expired(t);
        }
    }

    /// Cuts the connection as a network failure would, without a close
    /// frame: the socket lingers for 0 s, so closing it (when the session is
    /// dropped) resets the connection instead of ending it politely.
    pub fn abort(&self) {
        self.open.set(false);
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: `fd` is this session's socket; the pointer is to a linger
        // of the stated size. A failure leaves an ordinary close, still
        // without a close frame.
        unsafe {
            libc::setsockopt(
                self.fd,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
    }

    /// Shuts the socket down both ways: the reader sees end of stream.
    pub fn shutdown(&self) {
        self.open.set(false);
        // SAFETY: `fd` is this session's socket, still owned by its stream.
        unsafe { libc::shutdown(self.fd, libc::SHUT_RDWR) };
    }
}
