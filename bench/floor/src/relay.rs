//! `--chat-relay`: the cheapest server `loadgen chat` can be run against.
//!
//! It speaks only what the chat scenario uses of mudshard's protocol
//! (DESIGN §4): the WebSocket upgrade, a guest login, `goto grid:X_Y`, `say`
//! (or `'`), and WebSocket ping and close. There is no world, no game, no
//! account, no limit and no queue: a say is written by the thread that read
//! it straight to each listener's socket, one `send` each, with the
//! listener's next `seq`. Threads share one listener and the rooms; any
//! thread may write to any socket (a lock per connection keeps each
//! connection's frames whole and its `seq` in order).
//!
//! That is the least a server can do per delivery on this machine: one
//! `send` of a small frame and nothing else, with no hop between threads.
//! Run against it, chat's ladder tells how many says a second the machine
//! carries at the ladder's latency bound when the server costs nothing but
//! its sends and loadgen shares the cores: a ceiling for any server's
//! ladder, measured the same way as theirs.
//!
//! A frame it cannot use is answered with an error frame, or ends its
//! connection; nothing a client sends stops the relay. It stops by itself
//! after `--serve-seconds`, or on SIGTERM or SIGINT.

use crate::net::{sys_recv, sys_send};
use std::collections::HashMap;
use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The most bytes an upgrade request may take.
const REQUEST_BYTES_MAX: usize = 8 * 1024;
/// The largest client frame (mudshard's own limit on a client message).
const FRAME_BYTES_MAX: usize = 16 * 1024;
/// Bytes queued for a client that does not read before it is cut off.
const PENDING_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Ready events taken by one wait.
const EVENTS_MAX: usize = 512;
/// How often a thread looks at the stop flag and the deadline.
const WAIT: Duration = Duration::from_millis(100);
const READ_BUF_BYTES: usize = 64 * 1024;
/// The epoll tag of the listener.
const LISTENER_TAG: u64 = u64::MAX;
/// WebSocket opcodes.
const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Set by SIGTERM and SIGINT.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

pub struct RelayConfig {
    pub listen: SocketAddr,
    pub threads: usize,
    pub serve_seconds: f64,
}

/// What a connection writes: its `seq` and what the socket did not take.
struct Out {
    seq: u64,
    pending: Vec<u8>,
    closed: bool,
}

/// A connection as the other threads see it: where to write, and its lock.
struct Member {
    fd: RawFd,
    out: Mutex<Out>,
}

/// The connections standing in one room.
#[derive(Default)]
struct Room {
    members: Mutex<Vec<Arc<Member>>>,
}

struct Shared {
    listener: TcpListener,
    rooms: Mutex<HashMap<(u32, u32), Arc<Room>>>,
    started: Instant,
    deadline: Instant,
}

/// Locks `m`, whatever a panicking holder left (nothing here panics while
/// holding one, but a poisoned lock must not stop the relay).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Serves until `--serve-seconds` have passed or a signal says stop.
pub fn run(config: &RelayConfig) -> io::Result<()> {
    let listener = TcpListener::bind(config.listen)
        .map_err(|e| io::Error::new(e.kind(), format!("bind {}: {e}", config.listen)))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        let handler = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
    }
    let now = Instant::now();
    let shared = Arc::new(Shared {
        listener,
        rooms: Mutex::new(HashMap::new()),
        started: now,
        deadline: now + Duration::from_secs_f64(config.serve_seconds),
    });
    let mut threads = Vec::with_capacity(config.threads);
    for i in 0..config.threads {
        let shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("relay-{i}"))
            .spawn(move || Worker::new(shared).and_then(|mut w| w.serve()))?;
        threads.push(thread);
    }
    // The line the suite waits for, as mudshard and the baseline print it.
    // (Whoever reads it may close the pipe after it: not an error here.)
    let mut stdout = io::stdout().lock();
    let _ = writeln!(stdout, "listening on {addr}");
    let _ = writeln!(
        stdout,
        "floor chat relay: {} thread(s), stops after {} s or on SIGTERM",
        config.threads, config.serve_seconds
    );
    drop(stdout);
    let mut result = Ok(());
    for thread in threads {
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err(io::Error::other("a relay thread panicked")),
        }
    }
    result
}

#[derive(PartialEq, Eq)]
enum Phase {
    Upgrade,
    Open,
}

/// A connection, held by the thread that accepted it.
struct Conn {
    stream: TcpStream,
    member: Arc<Member>,
    phase: Phase,
    /// Bytes read and not yet used.
    carry: Vec<u8>,
    name: String,
    room: Option<(Arc<Room>, (u32, u32))>,
}

/// One thread: its epoll set and its connections.
struct Worker {
    shared: Arc<Shared>,
    epoll: RawFd,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    read_buf: Vec<u8>,
    frame: Vec<u8>,
    body: Vec<u8>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(self.epoll) };
    }
}

impl Worker {
    fn new(shared: Arc<Shared>) -> io::Result<Worker> {
        // SAFETY: plain syscall; the result is checked.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epoll < 0 {
            return Err(io::Error::last_os_error());
        }
        let worker = Worker {
            shared,
            epoll,
            conns: Vec::new(),
            free: Vec::new(),
            read_buf: vec![0; READ_BUF_BYTES],
            frame: Vec::with_capacity(512),
            body: Vec::with_capacity(512),
        };
        // Each thread watches the one listener; EPOLLEXCLUSIVE wakes one of
        // them for a new connection, not all.
        let fd = worker.shared.listener.as_raw_fd();
        worker.watch(fd, LISTENER_TAG, libc::EPOLLIN | libc::EPOLLEXCLUSIVE)?;
        Ok(worker)
    }

    fn watch(&self, fd: RawFd, tag: u64, events: i32) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: events as u32,
            u64: tag,
        };
        // SAFETY: both descriptors are open; `ev` outlives the call.
        if unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn serve(&mut self) -> io::Result<()> {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; EVENTS_MAX];
        while !STOP.load(Ordering::Relaxed) && Instant::now() < self.shared.deadline {
            // SAFETY: `events` has room for its length.
            let n = unsafe {
                libc::epoll_wait(
                    self.epoll,
                    events.as_mut_ptr(),
                    EVENTS_MAX as i32,
                    WAIT.as_millis() as i32,
                )
            };
            if n < 0 {
                let err = io::Error::last_os_error();
                if err.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(err);
            }
            for ev in &events[..n as usize] {
                let (tag, flags) = (ev.u64, ev.events);
                if tag == LISTENER_TAG {
                    self.accept_all();
                    continue;
                }
                let slot = tag as usize;
                if flags & libc::EPOLLOUT as u32 != 0 {
                    self.flush_pending(slot);
                }
                if flags
                    & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32
                    != 0
                {
                    self.read_all(slot);
                }
            }
        }
        for slot in 0..self.conns.len() {
            self.close(slot);
        }
        Ok(())
    }

    fn accept_all(&mut self) {
        loop {
            let stream = match self.shared.listener.accept() {
                Ok((stream, _)) => stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // Out of files or a connection reset before it was taken:
                // the next wake-up tries again.
                Err(_) => return,
            };
            if stream.set_nonblocking(true).is_err() || stream.set_nodelay(true).is_err() {
                continue;
            }
            let fd = stream.as_raw_fd();
            let conn = Conn {
                stream,
                member: Arc::new(Member {
                    fd,
                    out: Mutex::new(Out {
                        seq: 0,
                        pending: Vec::new(),
                        closed: false,
                    }),
                }),
                phase: Phase::Upgrade,
                carry: Vec::new(),
                name: String::new(),
                room: None,
            };
            let slot = match self.free.pop() {
                Some(slot) => slot,
                None => {
                    self.conns.push(None);
                    self.conns.len() - 1
                }
            };
            let events = libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET;
            if self.watch(fd, slot as u64, events).is_err() {
                self.free.push(slot);
                continue;
            }
            self.conns[slot] = Some(conn);
        }
    }

    /// Writes what the socket did not take before, now that it has room.
    fn flush_pending(&mut self, slot: usize) {
        let Some(conn) = self.conns.get(slot).and_then(Option::as_ref) else {
            return;
        };
        let mut out = lock(&conn.member.out);
        if out.closed || out.pending.is_empty() {
            return;
        }
        let n = sys_send(conn.member.fd, &out.pending);
        if n > 0 {
            out.pending.drain(..n as usize);
        } else if n < 0 && io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
            out.closed = true;
        }
    }

    /// Reads until the socket is empty (the set is edge-triggered), using
    /// what came.
    fn read_all(&mut self, slot: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            let fd = conn.stream.as_raw_fd();
            let r = sys_recv(fd, &mut self.read_buf);
            if r < 0 {
                if io::Error::last_os_error().kind() != io::ErrorKind::WouldBlock {
                    self.close(slot);
                }
                return;
            }
            if r == 0 {
                self.close(slot);
                return;
            }
            conn.carry.extend_from_slice(&self.read_buf[..r as usize]);
            if self.use_carry(slot).is_err() {
                self.close(slot);
                return;
            }
        }
    }

    /// Uses every whole request or frame in the connection's carry.
    /// `Err`: the connection is to end.
    fn use_carry(&mut self, slot: usize) -> Result<(), ()> {
        let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) else {
            return Err(());
        };
        let result = self.use_conn_carry(&mut conn);
        self.conns[slot] = Some(conn);
        result
    }

    fn use_conn_carry(&mut self, conn: &mut Conn) -> Result<(), ()> {
        if conn.phase == Phase::Upgrade {
            let Some(end) = memchr_crlf2(&conn.carry) else {
                return if conn.carry.len() > REQUEST_BYTES_MAX {
                    Err(())
                } else {
                    Ok(())
                };
            };
            let upgraded = answer_request(conn.member.fd, &conn.carry[..end]);
            conn.carry.drain(..end);
            if !upgraded {
                return Err(());
            }
            conn.phase = Phase::Open;
        }
        let mut used = 0;
        let result = loop {
            match decode(&mut conn.carry[used..]) {
                Decoded::Partial => break Ok(()),
                Decoded::Bad(code) => {
                    self.frame.clear();
                    put_header(&mut self.frame, OP_CLOSE, 2);
                    self.frame.extend_from_slice(&code.to_be_bytes());
                    write_raw(&conn.member, &self.frame);
                    break Err(());
                }
                Decoded::Frame {
                    opcode,
                    payload,
                    len,
                } => {
                    let payload = payload.start + used..payload.end + used;
                    used += len;
                    match opcode {
                        OP_TEXT => {
                            let text = std::mem::take(&mut conn.carry);
                            let r = self.message(conn, &text[payload]);
                            conn.carry = text;
                            if r.is_err() {
                                break Err(());
                            }
                        }
                        OP_PING => {
                            self.frame.clear();
                            put_header(&mut self.frame, OP_PONG, payload.len());
                            self.frame.extend_from_slice(&conn.carry[payload]);
                            write_raw(&conn.member, &self.frame);
                        }
                        OP_PONG => {}
                        OP_CLOSE => {
                            self.frame.clear();
                            put_header(&mut self.frame, OP_CLOSE, 2);
                            self.frame.extend_from_slice(&1000u16.to_be_bytes());
                            write_raw(&conn.member, &self.frame);
                            break Err(());
                        }
                        _ => {
                            // Binary and fragmented messages: not spoken here.
                            self.frame.clear();
                            put_header(&mut self.frame, OP_CLOSE, 2);
                            self.frame.extend_from_slice(&1003u16.to_be_bytes());
                            write_raw(&conn.member, &self.frame);
                            break Err(());
                        }
                    }
                }
            }
        };
        conn.carry.drain(..used);
        result
    }

    /// One text message from a client.
    fn message(&mut self, conn: &mut Conn, json: &[u8]) -> Result<(), ()> {
        match string_field(json, b"\"type\":\"") {
            Some(b"guest") if conn.name.is_empty() => {
                let name = string_field(json, b"\"name\":\"").unwrap_or(b"guest");
                conn.name = String::from_utf8_lossy(name).into_owned();
                self.body.clear();
                self.body.extend_from_slice(br#""type":"welcome","name":""#);
                self.body.extend_from_slice(conn.name.as_bytes());
                self.body.extend_from_slice(br#"","shard":0,"shards":1}"#);
                write_seq(&conn.member, &self.body, &mut self.frame);
                Ok(())
            }
            Some(b"cmd") if !conn.name.is_empty() => {
                let id = raw_field(json, b"\"id\":").unwrap_or(b"null");
                let line = string_field(json, b"\"line\":\"").unwrap_or(b"");
                self.command(conn, id, line);
                Ok(())
            }
            Some(b"ping") => {
                let id = raw_field(json, b"\"id\":").unwrap_or(b"null");
                self.body.clear();
                self.body.extend_from_slice(br#"{"type":"pong","id":"#);
                self.body.extend_from_slice(id);
                self.body.push(b'}');
                self.frame.clear();
                put_header(&mut self.frame, OP_TEXT, self.body.len());
                self.frame.extend_from_slice(&self.body);
                write_raw(&conn.member, &self.frame);
                Ok(())
            }
            _ => {
                self.body.clear();
                self.body.extend_from_slice(
                    br#""type":"error","code":"bad_request","message":"the relay understands a guest login, then goto and say commands, and ping"}"#,
                );
                write_seq(&conn.member, &self.body, &mut self.frame);
                Ok(())
            }
        }
    }

    fn command(&mut self, conn: &mut Conn, id: &[u8], line: &[u8]) {
        let reply_ok = |body: &mut Vec<u8>, ok: bool| {
            body.clear();
            body.extend_from_slice(br#""type":"reply","id":"#);
            body.extend_from_slice(id);
            body.extend_from_slice(if ok {
                br#","ok":true"#
            } else {
                br#","ok":false"#
            });
        };
        if let Some(text) = line
            .strip_prefix(b"say ")
            .or_else(|| line.strip_prefix(b"'"))
        {
            let Some((room, (x, y))) = &conn.room else {
                reply_ok(&mut self.body, false);
                self.body
                    .extend_from_slice(br#","code":"nowhere","message":"goto a room first"}"#);
                write_seq(&conn.member, &self.body, &mut self.frame);
                return;
            };
            // The event once, after each listener's `{"seq":N,`.
            self.body.clear();
            let ts = self.shared.started.elapsed().as_millis();
            let _ = write!(
                self.body,
                r#""type":"event","kind":"say","room":"grid:{x}_{y}","from":""#
            );
            self.body.extend_from_slice(conn.name.as_bytes());
            self.body.extend_from_slice(br#"","text":""#);
            self.body.extend_from_slice(text);
            let _ = write!(self.body, r#"","ts":{ts}}}"#);
            {
                let members = lock(&room.members);
                for member in members.iter() {
                    if !Arc::ptr_eq(member, &conn.member) {
                        write_seq(member, &self.body, &mut self.frame);
                    }
                }
            }
            reply_ok(&mut self.body, true);
            self.body.push(b'}');
            write_seq(&conn.member, &self.body, &mut self.frame);
            return;
        }
        if let Some(cell) = line.strip_prefix(b"goto grid:").and_then(grid_cell) {
            self.leave_room(conn);
            let room = Arc::clone(lock(&self.shared.rooms).entry(cell).or_default());
            lock(&room.members).push(Arc::clone(&conn.member));
            conn.room = Some((room, cell));
            reply_ok(&mut self.body, true);
            let _ = write!(
                self.body,
                r#","room":{{"id":"grid:{}_{}"}}}}"#,
                cell.0, cell.1
            );
            write_seq(&conn.member, &self.body, &mut self.frame);
            return;
        }
        reply_ok(&mut self.body, false);
        self.body.extend_from_slice(
            br#","code":"unknown_command","message":"the relay knows only goto grid:X_Y and say"}"#,
        );
        write_seq(&conn.member, &self.body, &mut self.frame);
    }

    fn leave_room(&mut self, conn: &mut Conn) {
        if let Some((room, _)) = conn.room.take() {
            lock(&room.members).retain(|m| !Arc::ptr_eq(m, &conn.member));
        }
    }

    /// Ends the connection in `slot`: out of its room (so no other thread
    /// writes to it again), then closed.
    fn close(&mut self, slot: usize) {
        let Some(mut conn) = self.conns.get_mut(slot).and_then(Option::take) else {
            return;
        };
        self.leave_room(&mut conn);
        lock(&conn.member.out).closed = true;
        self.free.push(slot);
        drop(conn);
    }
}

/// Answers an HTTP request: the WebSocket upgrade (true), or `/healthz`
/// with the pid, or 404 (false: the connection then ends).
fn answer_request(fd: RawFd, request: &[u8]) -> bool {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let parsed = matches!(req.parse(request), Ok(httparse::Status::Complete(_)));
    let key = req
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("sec-websocket-key"))
        .map(|h| h.value);
    let response = match (parsed, key, req.path) {
        (true, Some(key), _) => format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            tungstenite::handshake::derive_accept_key(key)
        ),
        (true, None, Some("/healthz")) => {
            let body = format!("{{\"status\":\"ok\",\"pid\":{}}}", std::process::id());
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{body}",
                body.len()
            )
        }
        _ => "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".into(),
    };
    let _ = sys_send(fd, response.as_bytes());
    parsed && key.is_some()
}

/// Where an HTTP request's head ends (after `\r\n\r\n`).
fn memchr_crlf2(buf: &[u8]) -> Option<usize> {
    buf.windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

enum Decoded {
    Partial,
    /// A close code: the frame breaks the protocol or its limits.
    Bad(u16),
    /// A whole frame, unmasked in place: its payload's range and its length.
    Frame {
        opcode: u8,
        payload: std::ops::Range<usize>,
        len: usize,
    },
}

/// Decodes the client frame at the start of `buf`, unmasking its payload.
fn decode(buf: &mut [u8]) -> Decoded {
    if buf.len() < 2 {
        return Decoded::Partial;
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x70 != 0 || b1 & 0x80 == 0 {
        // Extension bits, or a client frame without a mask.
        return Decoded::Bad(1002);
    }
    if b0 & 0x80 == 0 {
        // A fragment: the scenarios send whole messages.
        return Decoded::Bad(1003);
    }
    let (len, at) = match b1 & 0x7F {
        126 if buf.len() >= 4 => (usize::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 => return Decoded::Bad(1009),
        126 => return Decoded::Partial,
        n => (usize::from(n), 2),
    };
    if len > FRAME_BYTES_MAX {
        return Decoded::Bad(1009);
    }
    let total = at + 4 + len;
    if buf.len() < total {
        return Decoded::Partial;
    }
    let mask = [buf[at], buf[at + 1], buf[at + 2], buf[at + 3]];
    let payload = at + 4..total;
    for (i, b) in buf[payload.clone()].iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
    Decoded::Frame {
        opcode: b0 & 0x0F,
        payload,
        len: total,
    }
}

/// A server frame's header for a payload of `len` bytes (no mask).
fn put_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    out.push(0x80 | opcode);
    if len < 126 {
        out.push(len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

/// Writes `{"seq":N,` + `tail` as one text frame to `member`, with its next
/// `seq`: one `send`, or queued behind what the socket has not taken.
fn write_seq(member: &Member, tail: &[u8], frame: &mut Vec<u8>) {
    let mut out = lock(&member.out);
    if out.closed {
        return;
    }
    out.seq += 1;
    let mut digits = [0u8; 20];
    let seq = decimal(out.seq, &mut digits);
    frame.clear();
    put_header(
        frame,
        OP_TEXT,
        br#"{"seq":"#.len() + seq.len() + 1 + tail.len(),
    );
    frame.extend_from_slice(br#"{"seq":"#);
    frame.extend_from_slice(seq);
    frame.push(b',');
    frame.extend_from_slice(tail);
    write_locked(member.fd, &mut out, frame);
}

fn write_raw(member: &Member, frame: &[u8]) {
    let mut out = lock(&member.out);
    if !out.closed {
        write_locked(member.fd, &mut out, frame);
    }
}

fn write_locked(fd: RawFd, out: &mut Out, frame: &[u8]) {
    if !out.pending.is_empty() {
        out.pending.extend_from_slice(frame);
    } else {
        let n = sys_send(fd, frame);
        if n >= 0 {
            out.pending.extend_from_slice(&frame[n as usize..]);
        } else if io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock {
            out.pending.extend_from_slice(frame);
        } else {
            out.closed = true;
        }
    }
    if out.pending.len() > PENDING_BYTES_MAX {
        // A client that does not read: cut it off; its thread sees the
        // hang-up and closes it.
        out.closed = true;
        out.pending = Vec::new();
        // SAFETY: `fd` is open while its member is reachable (it leaves
        // its room before its thread closes it).
        unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
    }
}

/// `n` in decimal, written at the end of `buf`.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// The text of the JSON string field whose `"key":"` is `prefix`, as
/// written (escapes kept); `None` when absent or unterminated.
fn string_field<'a>(json: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let at = find(json, prefix)? + prefix.len();
    let rest = &json[at..];
    let mut i = 0;
    while i < rest.len() {
        match rest[i] {
            b'\\' => i += 2,
            b'"' => return Some(&rest[..i]),
            _ => i += 1,
        }
    }
    None
}

/// The raw JSON value after `prefix` (a number or a string, with its
/// quotes), up to the next `,` or `}` outside a string.
fn raw_field<'a>(json: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let at = find(json, prefix)? + prefix.len();
    let rest = &json[at..];
    if rest.first() == Some(&b'"') {
        let inner = string_field(rest, b"\"")?;
        return Some(&rest[..inner.len() + 2]);
    }
    let end = rest.iter().position(|&b| b == b',' || b == b'}')?;
    let value = rest[..end].trim_ascii();
    let number = !value.is_empty()
        && value
            .iter()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'.' | b'e' | b'E' | b'+'));
    number.then_some(value)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `X_Y` of a grid room id.
fn grid_cell(id: &[u8]) -> Option<(u32, u32)> {
    let text = std::str::from_utf8(id).ok()?;
    let (x, y) = text.split_once('_')?;
    Some((x.parse().ok()?, y.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [1, 2, 3, 4];
        let mut f = vec![0x80 | opcode];
        if payload.len() < 126 {
            f.push(0x80 | payload.len() as u8);
        } else {
            f.push(0x80 | 126);
            f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        f
    }

    #[test]
    fn client_frames_decode_whole_and_wait_when_partial() {
        let mut f = masked(OP_TEXT, br#"{"type":"guest","name":"a"}"#);
        let n = f.len();
        assert!(matches!(decode(&mut f[..n - 1]), Decoded::Partial));
        let mut f = masked(OP_TEXT, br#"{"type":"guest","name":"a"}"#);
        match decode(&mut f) {
            Decoded::Frame {
                opcode,
                payload,
                len,
            } => {
                assert_eq!((opcode, len), (OP_TEXT, n));
                assert_eq!(&f[payload], br#"{"type":"guest","name":"a"}"#);
            }
            _ => panic!("a whole frame"),
        }
        let long = vec![b'x'; 300];
        let mut f = masked(OP_TEXT, &long);
        assert!(matches!(decode(&mut f), Decoded::Frame { len, .. } if len == 300 + 8));
    }

    #[test]
    fn frames_outside_the_protocol_or_its_limits_get_a_close_code() {
        let mut unmasked = vec![0x81, 1, b'x'];
        assert!(matches!(decode(&mut unmasked), Decoded::Bad(1002)));
        let mut fragment = masked(OP_TEXT, b"x");
        fragment[0] &= 0x7F;
        assert!(matches!(decode(&mut fragment), Decoded::Bad(1003)));
        let mut huge = vec![0x81, 0x80 | 127];
        huge.extend_from_slice(&[0; 12]);
        assert!(matches!(decode(&mut huge), Decoded::Bad(1009)));
        let mut big = masked(OP_TEXT, &vec![b'x'; FRAME_BYTES_MAX + 1]);
        assert!(matches!(decode(&mut big), Decoded::Bad(1009)));
    }

    #[test]
    fn fields_are_found_as_written() {
        let json = br#"{"type":"cmd","id":1234,"line":"say t=5 \"q\""}"#;
        assert_eq!(string_field(json, b"\"type\":\""), Some(&b"cmd"[..]));
        assert_eq!(raw_field(json, b"\"id\":"), Some(&b"1234"[..]));
        assert_eq!(
            string_field(json, b"\"line\":\""),
            Some(&br#"say t=5 \"q\""#[..])
        );
        let json = br#"{"type":"cmd","id":"place","line":"goto grid:3_4"}"#;
        assert_eq!(raw_field(json, b"\"id\":"), Some(&br#""place""#[..]));
        assert_eq!(raw_field(br#"{"id":x}"#, b"\"id\":"), None);
        assert_eq!(string_field(br#"{"type":"cmd"#, b"\"type\":\""), None);
        assert_eq!(grid_cell(b"3_4"), Some((3, 4)));
        assert_eq!(grid_cell(b"3-4"), None);
        let mut buf = [0; 20];
        assert_eq!(decimal(0, &mut buf), b"0");
        assert_eq!(decimal(1234567, &mut buf), b"1234567");
        assert_eq!(decimal(u64::MAX, &mut buf), b"18446744073709551615");
    }
}
