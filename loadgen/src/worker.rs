//! One worker thread's state and the work every scenario shares: opening a
//! session (connect, handshake, guest login, placement), reading and
//! accounting for server frames, sending commands, sweeping for timeouts.
//!
//! A worker is one glommio executor on one thread; everything here is touched
//! by that thread alone, which is why plain `Cell`/`RefCell` suffice.

use crate::clock::now_ns;
use crate::config::ReadWith;
use crate::control::Control;
use crate::plan::PlayerSpec;
use crate::readers::{self, Readers};
use crate::scan::{self, EventKind, Inbound};
use crate::session::{Ended, Session};
use crate::stats::{Stats, Window};
use crate::ws::{self, Opcode};
use std::cell::{Cell, RefCell};
use std::io::Write as _;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// The worker's read buffer, in bytes: one per thread, shared by all its
/// sessions, large enough that a busy session's backlog of small frames is
/// read in one syscall.
pub const SCRATCH_BYTES: usize = 256 * 1024;

/// How often awaited replies are checked for timeouts, in ms.
const SWEEP_INTERVAL_MS: u64 = 50;
/// `--keep-to-shard`: `goto`s tried to place a walker on its connection's
/// shard (within the server's default burst of 40 commands).
const PLACE_TRIES: u32 = 30;
/// `--keep-to-shard`: the rooms tried after the intended one, nearest
/// first (the 12 within two steps); then rooms seen owned by the shard.
const NEAR: [(i32, i32); 12] = [
    (1, 0),
    (0, 1),
    (-1, 0),
    (0, -1),
    (1, 1),
    (-1, 1),
    (-1, -1),
    (1, -1),
    (2, 0),
    (0, 2),
    (-2, 0),
    (0, -2),
];
/// `--keep-to-shard`: rooms remembered per shard for placing walkers.
const SHARD_CELLS_KEPT: usize = 4096;

/// A worker thread's context (see the module doc).
pub struct Worker {
    pub id: usize,
    pub control: Arc<Control>,
    pub stats: RefCell<Stats>,
    /// Operations whose intended time falls in here are measured.
    pub window: Cell<Window>,
    /// Set when the run is over: sessions ending now are not "dropped".
    pub stopping: Cell<bool>,
    /// Open sessions, in the order the send schedule visits them.
    pub sessions: RefCell<Vec<Rc<Session>>>,
    /// The first setup failure, to tell the operator why sessions failed.
    pub first_error: RefCell<Option<String>>,
    /// Move replies update the session's grid position (`walk`, `soak`, and
    /// `cluster` with walkers).
    pub track_position: bool,
    /// `--keep-to-shard`: grid rooms seen while placing walkers, by the
    /// shard that owns them (to place the next walkers of a shard at once).
    shard_cells: RefCell<Vec<Vec<(u32, u32)>>>,
    scratch: RefCell<Vec<u8>>,
    /// `--read-with epoll`: the sessions registered for the `epoll` task,
    /// and whether that task runs yet.
    readers: Option<Readers>,
    reading: Cell<bool>,
    encode: RefCell<(Vec<u8>, Vec<u8>)>,
}

impl Worker {
    pub fn new(id: usize, control: Arc<Control>, track_position: bool) -> Worker {
        let mut first_error = None;
        let readers = match control.config.read_with {
            ReadWith::Epoll => match Readers::new() {
                Ok(readers) => Some(readers),
                Err(why) => {
                    first_error = Some(format!("epoll_create1 failed ({why}): reading with uring"));
                    None
                }
            },
            ReadWith::Uring => None,
        };
        Worker {
            id,
            control,
            stats: RefCell::new(Stats::default()),
            window: Cell::new(Window::NEVER),
            stopping: Cell::new(false),
            sessions: RefCell::new(Vec::new()),
            first_error: RefCell::new(first_error),
            track_position,
            shard_cells: RefCell::new(Vec::new()),
            scratch: RefCell::new(vec![0; SCRATCH_BYTES]),
            readers,
            reading: Cell::new(false),
            encode: RefCell::new((Vec::with_capacity(512), Vec::with_capacity(512))),
        }
    }

    pub fn note_error(&self, why: String) {
        let mut first = self.first_error.borrow_mut();
        if first.is_none() {
            *first = Some(why);
        }
    }

    /// Connects and logs in one player, then places it (`goto`) if the spec
    /// says where, all within `--connect-timeout`. Returns the session, not
    /// yet read by anyone (see `spawn_reader`); the caller accounts for it.
    pub async fn open_session(&self, spec: &PlayerSpec) -> Result<Rc<Session>, String> {
        let deadline = Duration::from_secs_f64(self.control.config.connect_timeout);
        let setup = async {
            let stream = crate::net::start_connect(spec.target, spec.source)
                .map_err(|e| format!("connect to {}: {e}", spec.target))?;
            let session = Rc::new(Session::new(spec, stream));
            self.handshake(&session, spec).await?;
            let guest = format!(r#"{{"type":"guest","name":"{}"}}"#, spec.name);
            self.write_text(&session, guest.as_bytes()).await?;
            self.read_until(&session, |s| s.welcomed.get()).await?;
            if let Some(first) = spec.place {
                self.place(&session, spec.index, first).await?;
            }
            Ok(session)
        };
        let timeout = async {
            glommio::timer::sleep(deadline).await;
            Err(format!(
                "not logged in after {:.1} s",
                deadline.as_secs_f64()
            ))
        };
        let result = futures_lite::future::or(setup, timeout).await;
        if let Err(why) = &result {
            self.note_error(why.clone());
        }
        result
    }

    /// Sends the player to grid room `first` (`goto`). With
    /// `--keep-to-shard`, goes on to other rooms until one is owned by the
    /// connection's shard: the rooms nearest `first` (so walkers stand
    /// where a plain walk would put them, as crowded), and when those
    /// miss, rooms seen owned by it before (any room, before one is seen).
    async fn place(&self, session: &Session, index: u64, first: (u32, u32)) -> Result<(), String> {
        let config = &self.control.config;
        let mut cell = first;
        for attempt in 1..=PLACE_TRIES {
            let (x, y) = cell;
            let goto = format!(r#"{{"type":"cmd","id":"place","line":"goto grid:{x}_{y}"}}"#);
            self.write_text(session, goto.as_bytes()).await?;
            self.read_until(session, |s| s.setup_replies.get() >= attempt)
                .await?;
            if !config.keep_to_shard || session.setup_error.borrow().is_some() {
                return Ok(());
            }
            let (Some(home), Some(here)) = (session.home_shard.get(), session.here_shard.get())
            else {
                return Err("--keep-to-shard: the server's welcome or room names no shard".into());
            };
            let mut cells = self.shard_cells.borrow_mut();
            if cells.len() <= usize::from(here.max(home)) {
                cells.resize(usize::from(here.max(home)) + 1, Vec::new());
            }
            let seen = &mut cells[usize::from(here)];
            if seen.len() < SHARD_CELLS_KEPT {
                seen.push(session.pos.get());
            }
            if here == home {
                return Ok(());
            }
            let near = NEAR.get(attempt as usize - 1).and_then(|&(dx, dy)| {
                let x = first.0.checked_add_signed(dx)?;
                let y = first.1.checked_add_signed(dy)?;
                (x < config.grid_width && y < config.grid_height).then_some((x, y))
            });
            let known = &cells[usize::from(home)];
            let pick = index.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(attempt);
            let pick = pick.wrapping_mul(0xD1B5_4A32_D192_ED03);
            cell = match near {
                Some(cell) => cell,
                None if known.is_empty() => {
                    // No room of the shard seen yet: anywhere in the grid.
                    let width = u64::from(config.grid_width);
                    let k = (pick >> 11) % (width * u64::from(config.grid_height));
                    ((k % width) as u32, (k / width) as u32)
                }
                None => known[((pick >> 11) % known.len() as u64) as usize],
            };
        }
        Err(format!(
            "--keep-to-shard: no room of the connection's shard found in {PLACE_TRIES} gotos"
        ))
    }

    /// Accounts for a session that logged in, `started_ns` being when its
    /// setup began.
    pub fn record_setup(&self, started_ns: u64) {
        let mut stats = self.stats.borrow_mut();
        stats.counters.sessions_established += 1;
        stats.setup.record_span(started_ns, now_ns());
    }

    pub(crate) async fn handshake(
        &self,
        session: &Session,
        spec: &PlayerSpec,
    ) -> Result<(), String> {
        let key = ws::handshake_key();
        let request = ws::handshake_request(&spec.host, &self.control.config.path, &key);
        session
            .write_all(request.as_bytes())
            .await
            .map_err(|e| format!("connect to {}: {e}", spec.target))?;
        loop {
            let n = session
                .read_into(&self.scratch, |bytes| {
                    session
                        .inbox
                        .borrow_mut()
                        .carry_mut()
                        .extend_from_slice(bytes)
                })
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            if n == 0 {
                return Err("handshake: connection closed".into());
            }
            let mut inbox = session.inbox.borrow_mut();
            let carry = inbox.carry_mut();
            if let Some(header_len) =
                ws::check_handshake_response(carry, &key).map_err(|e| e.to_string())?
            {
                carry.drain(..header_len);
                return Ok(());
            }
        }
    }

    /// Frames and writes one text message, waiting for the socket if needed.
    pub async fn write_text(&self, session: &Session, json: &[u8]) -> Result<(), String> {
        let mut frame = Vec::with_capacity(json.len() + 8);
        ws::encode_frame(&mut frame, Opcode::Text, json, session.next_mask());
        session
            .write_all(&frame)
            .await
            .map_err(|e| format!("write: {e}"))
    }

    /// Reads and accounts frames until `done` says so, the session ends, or
    /// the setup fails.
    pub async fn read_until(
        &self,
        session: &Session,
        done: impl Fn(&Session) -> bool,
    ) -> Result<(), String> {
        // Frames may already wait in the carry (they came with the handshake).
        if let Err(ended) = self.consume(session, &[]) {
            return Err(format!("{ended:?}"));
        }
        loop {
            if let Some(why) = session.setup_error.borrow().as_ref() {
                return Err(why.clone());
            }
            if done(session) {
                return Ok(());
            }
            if let Err(ended) = self.read_once(session).await {
                // The awaited frame may have come in the same read as the
                // end (a quit reply and the close that follows it).
                if done(session) {
                    return Ok(());
                }
                return Err(format!("session ended: {ended:?}"));
            }
        }
    }

    /// Reads once and accounts for every complete frame read.
    pub async fn read_once(&self, session: &Session) -> Result<(), Ended> {
        let mut outcome = Ok(());
        let n = session
            .read_into(&self.scratch, |bytes| {
                outcome = self.consume(session, bytes)
            })
            .await
            .map_err(Ended::Io)?;
        if n == 0 {
            return Err(Ended::Eof);
        }
        outcome
    }

    /// Has `session` read until it ends (by the worker's `epoll` task, or by
    /// a task of its own with `--read-with uring`), and registers the session
    /// with the send schedule.
    pub fn spawn_reader(self: &Rc<Self>, session: Rc<Session>) {
        self.sessions.borrow_mut().push(Rc::clone(&session));
        if let Some(readers) = &self.readers {
            match readers.add(Rc::clone(&session)) {
                Ok(()) => {
                    if !self.reading.replace(true) {
                        let me = Rc::clone(self);
                        glommio::spawn_local(async move { me.read_ready().await }).detach();
                    }
                    return;
                }
                // Not registered (out of memory in the kernel): the session
                // is read the other way rather than not at all.
                Err(why) => self.note_error(format!("epoll could not take a session: {why}")),
            }
        }
        let me = Rc::clone(self);
        glommio::spawn_local(async move {
            let ended = loop {
                if let Err(ended) = me.read_once(&session).await {
                    break ended;
                }
            };
            me.reading_ended(&session, ended);
        })
        .detach();
    }

    /// The `epoll` task (see `readers`): waits until a registered socket is
    /// readable, reads each ready one until it is drained, and again, for
    /// as long as the worker runs.
    async fn read_ready(self: Rc<Self>) {
        let Some(readers) = &self.readers else {
            return;
        };
        let mut ready = readers::ready_list();
        loop {
            if let Err(why) = glommio::wait_readable(readers.fd()).await {
                self.note_error(format!("waiting on epoll failed: {why}"));
                return;
            }
            let n = match readers.take_ready(&mut ready) {
                Ok(n) => n,
                Err(why) => {
                    self.note_error(format!("epoll_wait failed: {why}"));
                    return;
                }
            };
            for event in &ready[..n] {
                let slot = readers::slot_of(event);
                let Some(session) = readers.get(slot) else {
                    continue;
                };
                if let Err(ended) = self.read_now(&session, readers::hung_up(event)) {
                    readers.remove(slot);
                    self.reading_ended(&session, ended);
                }
            }
        }
    }

    /// Reads a ready session until its socket is drained, accounting for
    /// every complete frame read. A read shorter than the buffer took all
    /// the socket had (edge-triggered: what arrives after it makes the socket
    /// ready again), unless the server's end was reported with it
    /// (`hung_up`): `recv` returns the bytes before the end without the end,
    /// and the end will not be reported again, so it reads on to it.
    fn read_now(&self, session: &Session, hung_up: bool) -> Result<(), Ended> {
        let mut scratch = self.scratch.borrow_mut();
        loop {
            match session.recv_now(&mut scratch[..]) {
                Ok(Some(0)) => return Err(Ended::Eof),
                Ok(Some(n)) => {
                    self.consume(session, &scratch[..n])?;
                    if n < scratch.len() && !hung_up {
                        return Ok(());
                    }
                }
                Ok(None) => return Ok(()),
                Err(why) => return Err(Ended::Io(why)),
            }
        }
    }

    /// Accounts for the end of a session's reading: a drop, unless the run
    /// is over.
    fn reading_ended(&self, session: &Session, ended: Ended) {
        session.open.set(false);
        if self.stopping.get() {
            return;
        }
        let mut stats = self.stats.borrow_mut();
        stats.counters.sessions_dropped += 1;
        match ended {
            Ended::Closed(ws::CLOSE_TRY_AGAIN_LATER) => stats.counters.closed_slow_reader += 1,
            Ended::Protocol(_) => stats.counters.protocol_errors += 1,
            _ => {}
        }
        drop(stats);
        self.note_error(format!(
            "session {} ended by the server: {ended:?}",
            session.index
        ));
    }

    /// Decodes every complete message of the carried bytes plus `bytes`
    /// and accounts for it.
    fn consume(&self, session: &Session, bytes: &[u8]) -> Result<(), Ended> {
        let now = now_ns();
        let closed = session
            .inbox
            .borrow_mut()
            .feed(bytes, |incoming| match incoming {
                ws::Incoming::Message(payload) => self.on_message(session, payload, now),
                ws::Incoming::Ping(payload) => self.send_control(session, Opcode::Pong, payload),
            })
            .map_err(Ended::Protocol)?;
        match closed {
            Some(code) => {
                self.send_control(session, Opcode::Close, &code.to_be_bytes());
                Err(Ended::Closed(code))
            }
            None => Ok(()),
        }
    }

    /// Answers a ping or a close. Best effort: a control frame that does not
    /// fit in the socket buffer right now is not worth queueing for.
    fn send_control(&self, session: &Session, opcode: Opcode, payload: &[u8]) {
        let mut frame = Vec::with_capacity(payload.len() + 8);
        ws::encode_frame(&mut frame, opcode, payload, session.next_mask());
        let _ = session.try_send(&frame);
    }

    /// Sends a command line as `{"type":"cmd","id":<intended_ns>,"line":…}`
    /// and awaits its reply. The id is the intended send time, so the reply
    /// alone says how late it is. `line` is the generator's own ASCII text,
    /// with nothing to escape.
    pub fn send_command(&self, session: &Rc<Session>, intended_ns: u64, line: &str) -> bool {
        let mut encode = self.encode.borrow_mut();
        let (json, frame) = &mut *encode;
        json.clear();
        frame.clear();
        // Writing into a Vec cannot fail.
        let _ = write!(
            json,
            r#"{{"type":"cmd","id":{intended_ns},"line":"{line}"}}"#
        );
        ws::encode_frame(frame, Opcode::Text, json, session.next_mask());
        let sent = session.send_now(frame);
        let window = self.window.get();
        let mut stats = self.stats.borrow_mut();
        if !sent {
            if window.contains(intended_ns) {
                stats.counters.send_overflows += 1;
            }
            return false;
        }
        let c = &mut stats.counters;
        if let Some(evicted) = session.expect_reply(intended_ns) {
            if window.contains(evicted) {
                match session.walk {
                    Some(kind) => c.moves_mut(kind).timeouts += 1,
                    None => c.timeouts += 1,
                }
            }
        }
        if window.contains(intended_ns) {
            match session.walk {
                Some(kind) => c.moves_mut(kind).sent += 1,
                None => c.sent += 1,
            }
        }
        true
    }

    /// Counts awaited replies older than `--timeout` as timeouts, every
    /// `SWEEP_INTERVAL_MS`, until the worker stops.
    pub fn spawn_sweeper(self: &Rc<Self>) {
        let me = Rc::clone(self);
        glommio::spawn_local(async move {
            let timeout_ns = crate::clock::secs_to_ns(me.control.config.timeout);
            while !me.stopping.get() {
                glommio::timer::sleep(Duration::from_millis(SWEEP_INTERVAL_MS)).await;
                me.expire_outstanding(now_ns().saturating_sub(timeout_ns));
                me.control.publish(me.id, &me.stats.borrow().counters);
            }
        })
        .detach();
    }

    /// Counts every awaited reply to a command intended before `deadline_ns`
    /// (and measured) as timed out.
    pub fn expire_outstanding(&self, deadline_ns: u64) {
        let window = self.window.get();
        let mut stats = self.stats.borrow_mut();
        let c = &mut stats.counters;
        for session in self.sessions.borrow().iter() {
            let timeouts = match session.walk {
                Some(kind) => &mut c.moves_mut(kind).timeouts,
                None => &mut c.timeouts,
            };
            session.expire(deadline_ns, |t| {
                if window.contains(t) {
                    *timeouts += 1;
                }
            });
        }
    }

    /// Ends the run for this worker: no session ending from now on is a drop;
    /// every session is closed politely and shut down.
    pub fn close_all(&self) {
        self.stopping.set(true);
        for session in self.sessions.borrow().iter() {
            let mut frame = Vec::with_capacity(8);
            ws::encode_close(&mut frame, 1000, session.next_mask());
            let _ = session.try_send(&frame);
            session.shutdown();
        }
    }

    /// Accounts for one server message (the hot path: no JSON parsing).
    fn on_message(&self, session: &Session, payload: &[u8], now: u64) {
        let scanned = scan::scan(payload);
        let window = self.window.get();
        let mut stats = self.stats.borrow_mut();
        if let Some(seq) = scanned.seq {
            let last = session.last_seq.get();
            if last != 0 && seq != last + 1 && window.contains(now) {
                stats.counters.seq_gaps += 1;
            }
            session.last_seq.set(seq);
        }
        match scanned.msg {
            Inbound::Reply {
                id: Some(intended),
                ok,
                no_exit,
            } => {
                let awaited = session.reply_seen(intended);
                // Where the player stands is followed in the warm-up too: a
                // walk's next step starts from it.
                let off_shard = ok && self.track_position && {
                    if let Some(pos) = scan::grid_room(payload) {
                        session.pos.set(pos);
                    }
                    let here = scan::first_shard(payload);
                    session.here_shard.set(here);
                    here.is_some() && here != session.home_shard.get()
                };
                if !window.contains(intended) {
                    return;
                }
                let c = &mut stats.counters;
                c.moves_off_shard += u64::from(off_shard);
                if !awaited {
                    c.late_replies += 1;
                }
                if let Some(kind) = session.walk {
                    let moves = c.moves_mut(kind);
                    moves.answered += 1;
                    if no_exit {
                        moves.no_exit += 1;
                    } else if !ok {
                        moves.failed += 1;
                    }
                    stats.move_latency_mut(kind).record_span(intended, now);
                    return;
                }
                c.replies += 1;
                if no_exit {
                    c.no_exit += 1;
                } else if !ok {
                    c.replies_failed += 1;
                }
                stats.reply.record_span(intended, now);
            }
            Inbound::Reply { id: None, ok, .. } => {
                if ok && self.track_position {
                    if let Some(pos) = scan::grid_room(payload) {
                        session.pos.set(pos);
                    }
                    session.here_shard.set(scan::first_shard(payload));
                }
                session.setup_replies.set(session.setup_replies.get() + 1);
                if !ok {
                    *session.setup_error.borrow_mut() = Some(format!(
                        "setup command refused: {}",
                        String::from_utf8_lossy(payload)
                    ));
                }
            }
            Inbound::Event {
                kind,
                stamp_ns,
                sender_target,
            } => match kind {
                EventKind::Say => {
                    if let Some(stamp) = stamp_ns.filter(|t| window.contains(*t)) {
                        stats.counters.deliveries_received += 1;
                        stats.delivery.record_span(stamp, now);
                        match sender_target {
                            Some(t) if t == session.target as u64 => {
                                stats.counters.deliveries_received_same_host += 1;
                                stats.delivery_same_host.record_span(stamp, now);
                            }
                            Some(_) => {
                                stats.counters.deliveries_received_cross_host += 1;
                                stats.delivery_cross_host.record_span(stamp, now);
                            }
                            None => {}
                        }
                    }
                }
                EventKind::Tell => {
                    if let Some(stamp) = stamp_ns.filter(|t| window.contains(*t)) {
                        stats.counters.tells_received += 1;
                        stats.tell.record_span(stamp, now);
                    }
                }
                EventKind::Enter if window.contains(now) => stats.counters.enter_events += 1,
                EventKind::Leave if window.contains(now) => stats.counters.leave_events += 1,
                _ => {}
            },
            Inbound::Welcome => {
                if self.track_position {
                    session.home_shard.set(scan::first_shard(payload));
                }
                session.welcomed.set(true);
            }
            Inbound::Error { rate_limited } => {
                if !session.welcomed.get() {
                    *session.setup_error.borrow_mut() = Some(format!(
                        "login refused: {}",
                        String::from_utf8_lossy(payload)
                    ));
                } else if now >= window.start_ns {
                    stats.counters.errors += 1;
                    if rate_limited {
                        stats.counters.rate_limited += 1;
                    }
                }
            }
            Inbound::Pong { .. } | Inbound::Other => {}
        }
    }
}
