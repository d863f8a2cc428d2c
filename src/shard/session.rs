//! Sessions: the connection-side state of each player on this shard, and the
//! bounded outbound queue that batches their frames into few writes.

use bytes::Bytes;
use std::collections::VecDeque;
use std::task::Waker;
use std::time::Instant;

use super::history::{Gap, History, HistoryBounds};
use crate::protocol::addr::{SessionId, ShardAddr};
pub use crate::protocol::close::CloseReason;
use crate::protocol::encode;
use crate::protocol::MsgId;
use crate::world::RoomIdx;

/// Where a session is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Upgraded, not logged in yet.
    Connected,
    /// A login is in flight (name claim, then the body's arrival).
    LoggingIn,
    Playing,
    /// The connection is gone but a message about it is still in flight
    /// (a command, a claim): the slot waits for it so the body is found and
    /// removed, then frees itself.
    Zombie,
    /// The connection dropped while playing and the session is kept for a
    /// resume: its body stays in its room, its frames keep queueing (up to
    /// the outbound bound), until the resume window ends and the sweep lets
    /// it go.
    Detached,
}

/// One queued outbound frame.
pub enum Out {
    /// A shared body written as `{"seq":N,` + body.
    Seq(u64, Bytes),
    /// A frame of the history sent again after a resume, with its original
    /// seq (written like `Seq`, and not kept in the history a second time).
    Replayed(u64, Bytes),
    /// A frame outside the sequence (`pong`, errors before login): `{` + body.
    Plain(Bytes),
    /// A WebSocket ping (idle check, or a check of what the client has
    /// read): its payload is the session's seq when it was queued, which the
    /// client's pong echoes.
    Ping(u64),
    /// A WebSocket pong answering a client ping, with its payload.
    Pong(Bytes),
}

/// A command waiting for the one before it to finish (commands of one session
/// run one at a time, in order, wherever the body is).
pub struct PendingCmd {
    pub id: Option<MsgId>,
    pub line: Box<str>,
}

/// Bytes of a server ping's payload: a seq, big-endian.
pub const PING_PAYLOAD_BYTES: usize = 8;

/// The seq of `welcome`, the first frame of every session's sequence.
pub const WELCOME_SEQ: u64 = 1;

/// How often a session holding frames for a resume is asked (by a ping
/// whose pong echoes the seq) how far it has read, while frames keep
/// coming: at most one small frame each way per interval.
pub const HISTORY_ACK_INTERVAL_MS: u64 = 5_000;

/// A session that was sent nothing new for a whole sweep interval is asked
/// sooner, once per burst: once this long has passed since it was last
/// asked. (A quiet ask needs a new frame and then a quiet interval, so it
/// comes at most once per two sweeps.)
pub const QUIET_ACK_MS: u64 = 1_000;

/// Bytes a queued frame is charged beyond its body: header, seq prefix, bookkeeping.
pub const FRAME_OVERHEAD_BYTES: usize = 32;

/// The connection-side state of one session.
pub struct Session {
    pub gen: u32,
    pub phase: Phase,
    pub name: Box<str>,
    /// Lower-case name: the directory key.
    pub name_key: Box<str>,
    /// Logged in to a registered account (not a guest).
    pub account: bool,
    /// The last `seq` sent.
    pub seq: u64,
    /// Where the body is held (its room's owner; `None`: no body), and the room.
    pub body_at: Option<ShardAddr>,
    pub room: Option<RoomIdx>,
    /// A command (or login) is in flight; others wait in `pending`.
    pub busy_since: Option<Instant>,
    pub busy_kind: &'static str,
    pub pending: VecDeque<PendingCmd>,
    pub out: VecDeque<Out>,
    pub out_bytes: usize,
    pub close: Option<CloseReason>,
    /// The close frame is in `unsent`, behind the frames before it.
    pub close_queued: bool,
    /// When the sweep first saw the close pending; past the grace it aborts.
    pub close_seen_ms: u64,
    /// Give up on writing the close frame: end the connection now.
    pub abort: bool,
    /// The connection task, woken when a close is asked, or when frames are
    /// queued and the write pass cannot write them (`want_write`).
    pub waker: Option<Waker>,
    /// The connection's socket while its task serves it (-1: none), for the
    /// net layer's write pass (`writes`), and this session's slot, listed
    /// there.
    pub write_fd: i32,
    pub slot: u32,
    pub opened_ms: u64,
    pub heard_ms: u64,
    pub pinged_ms: u64,
    pub pings_missed: u32,
    /// Token bucket of the command rate limit: tokens and when last refilled.
    pub tokens: f32,
    pub tokens_ms: u64,
    /// Commands refused by the rate limit in the window that opened at
    /// `rate_limited_since_ms` (`Session::count_rate_limited`).
    pub rate_limited: u32,
    pub rate_limited_since_ms: u64,
    /// Fragments of a message split over several frames.
    pub fragments: Option<Vec<u8>>,
    /// Bytes of an incomplete frame, waiting for the rest.
    pub partial: Vec<u8>,
    /// Bytes a write could not send yet.
    pub unsent: Vec<u8>,
    pub peer_ip: std::net::IpAddr,
    /// Index of this session in its room's viewer list (for O(1) removal).
    pub viewer_pos: u32,
    /// The frames written to this session, kept for a resume.
    pub history: History,
    /// When the connection dropped (`Detached`), on the shard's clock.
    pub detached_ms: u64,
    /// When the sweep last asked the client (by a ping) how far it has read.
    pub acked_asked_ms: u64,
    /// A frame of the sequence was queued since the last sweep (which
    /// clears it): a session without one for a whole sweep interval is
    /// quiet, and gives back what it holds only for bursts.
    pub queued_since_sweep: bool,
    /// A frame of the sequence was queued since the sweep last asked for
    /// an ack: a quiet session is asked early once per burst, not at every
    /// sweep while its client does not answer.
    pub queued_since_ask: bool,
    /// A busy session's ask is due: its ping goes right behind its next
    /// frame, in the same write, rather than on its own.
    pub ack_due: bool,
    /// The unguessable token a guest resumes with (empty for accounts,
    /// which use their signed login token, and before `welcome`).
    pub resume_token: Box<str>,
    /// What the history keeps (nothing when sessions are not kept for resume).
    pub hold: HistoryBounds,
    /// Which connection serves the session: a resume attaches a new one and
    /// the old one's task, seeing another epoch, ends without touching it.
    pub conn_epoch: u32,
    /// Where the connection's reads stand (`reads`: parked on the shard's
    /// `epoll` instance while quiet, `net/readiness.rs`).
    pub reads: u8,
    /// A `resume` on this connection is being looked up or handed over:
    /// nothing more is read from it here. Boxed: rare, and a session
    /// without one then pays a pointer, not the plan.
    pub resuming: Option<Box<ResumePlan>>,
}

/// Bytes of one session's record in the slab, which every idle session
/// pays (README, "Idle memory"); pinned by a test.
pub const SESSION_BYTES_MAX: usize = 480;

/// The bits of `Session::reads`: a quiet session's reads park on the
/// shard's `epoll` instance instead of holding a poll request on the ring
/// (`net/readiness.rs`). The sweep marks it `PARK_DUE`; the connection's
/// task parks it and the `epoll` task wakes it.
pub mod reads {
    /// The sweep found nothing read for `park_reads_after_ms`: park at the
    /// connection's next poll.
    pub const PARK_DUE: u8 = 1;
    /// Parked: glommio's read poll dropped, the socket armed in the shard's
    /// `epoll` instance; nothing is read until `WOKEN`.
    pub const PARKED: u8 = 2;
    /// The instance reported the socket (readable or hung up): read again.
    pub const WOKEN: u8 = 4;
    /// The socket is registered with the instance (armed or spent), on this
    /// connection: the next parking re-arms it.
    pub const REGISTERED: u8 = 8;
    /// The client ended its stream (a FIN, no close frame) while commands
    /// of its were unanswered: nothing more is read; the connection closes
    /// once they are answered and written, as it would have at once had
    /// they all been answered on this shard (or after `close_grace_ms`).
    pub const ENDED: u8 = 16;
    /// (The write side, kept in the same byte.) The session's slot is in
    /// the shard's write list (`writes`), its queue not yet written.
    pub const WRITE_LISTED: u8 = 32;
}

/// The shard's write list: sessions with frames queued that the net
/// layer's write pass (`net/flusher.rs`) writes straight to their sockets,
/// one `send` per session for everything queued in the turn, instead of
/// waking each session's task to do it. One list per shard thread; the
/// pass is one task, woken when the list stops being empty.
pub mod writes {
    use std::cell::RefCell;
    use std::task::{Context, Poll, Waker};

    #[derive(Default)]
    struct List {
        slots: Vec<u32>,
        pass: Option<Waker>,
        /// The slot whose connection task is polling now: what is queued
        /// for it meanwhile that task writes itself.
        polling: Option<u32>,
    }

    thread_local! {
        static LIST: RefCell<List> = RefCell::new(List::default());
    }

    /// While `slot`'s connection task polls (`None`: it is done), frames
    /// queued for that session are not listed: the task writes them before
    /// it next waits.
    pub fn set_polling(slot: Option<u32>) {
        LIST.with(|l| l.borrow_mut().polling = slot);
    }

    /// Lists a session's slot (its `WRITE_LISTED` bit then says it is
    /// listed), unless its own task is polling: whether it was listed.
    pub fn list(slot: u32) -> bool {
        let (listed, pass) = LIST.with(|l| {
            let mut l = l.borrow_mut();
            if l.polling == Some(slot) {
                return (false, None);
            }
            l.slots.push(slot);
            (
                true,
                if l.slots.len() == 1 {
                    l.pass.take()
                } else {
                    None
                },
            )
        });
        if let Some(pass) = pass {
            pass.wake();
        }
        listed
    }

    /// Ready with the listed slots (moved into `into`, which must be empty)
    /// once there are any; the pass's task is woken when there are.
    pub fn poll_take(cx: &Context<'_>, into: &mut Vec<u32>) -> Poll<()> {
        LIST.with(|l| {
            let mut l = l.borrow_mut();
            if l.slots.is_empty() {
                if !l.pass.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    l.pass = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
            std::mem::swap(&mut l.slots, into);
            Poll::Ready(())
        })
    }
}

/// Where a `resume` on a connection of this shard is going.
#[derive(Debug)]
pub struct ResumePlan {
    /// The session to resume; `None` while the directory is asked whose an
    /// account's name is.
    pub target: Option<SessionId>,
    pub credential: ResumeCredential,
    pub last_seq: u64,
}

/// What proves a resume is the session's own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeCredential {
    /// The secret part of the token from a guest's `welcome`.
    Guest { secret: Box<str> },
    /// A verified login token's account.
    Account { key: Box<str> },
}

impl Session {
    pub fn new(
        gen: u32,
        now_ms: u64,
        burst: u32,
        peer_ip: std::net::IpAddr,
        hold: HistoryBounds,
    ) -> Session {
        Session {
            gen,
            phase: Phase::Connected,
            name: Box::from(""),
            name_key: Box::from(""),
            account: false,
            seq: 0,
            body_at: None,
            room: None,
            busy_since: None,
            busy_kind: "",
            pending: VecDeque::new(),
            out: VecDeque::new(),
            out_bytes: 0,
            close: None,
            close_queued: false,
            close_seen_ms: 0,
            abort: false,
            waker: None,
            write_fd: -1,
            slot: 0,
            opened_ms: now_ms,
            heard_ms: now_ms,
            pinged_ms: 0,
            pings_missed: 0,
            tokens: burst as f32,
            tokens_ms: now_ms,
            rate_limited: 0,
            rate_limited_since_ms: 0,
            fragments: None,
            partial: Vec::new(),
            unsent: Vec::new(),
            peer_ip,
            viewer_pos: u32::MAX,
            history: History::new(),
            detached_ms: 0,
            resume_token: Box::from(""),
            acked_asked_ms: now_ms,
            queued_since_sweep: false,
            queued_since_ask: false,
            ack_due: false,
            hold,
            conn_epoch: 0,
            reads: 0,
            resuming: None,
        }
    }

    /// Queues a frame. Returns false when the queue went over its bound: the
    /// caller closes the session (a slow reader) and counts the drop.
    pub fn push(&mut self, out: Out, outbound_bytes_max: usize) -> bool {
        if self.phase == Phase::Zombie {
            return true;
        }
        if self.phase == Phase::Detached || self.close.is_some() {
            // No connection will write it: a frame of the sequence is held
            // for a resume, so the history stays whole.
            if let Out::Seq(seq, body) = out {
                self.keep(seq, body);
            }
            return true;
        }
        let bytes = FRAME_OVERHEAD_BYTES + out_len(&out);
        self.out_bytes += bytes;
        self.out.push_back(out);
        if self.out_bytes + self.unsent.len() > outbound_bytes_max {
            return false;
        }
        self.want_write();
        true
    }

    /// Has the queued frames written: listed for the shard's write pass,
    /// which writes them straight to the socket once this turn's work is
    /// done (one `send` for all of them), when the connection can take
    /// them so; otherwise by waking the connection's task.
    fn want_write(&mut self) {
        if !self.writes_directly() {
            self.wake();
        } else if self.reads & reads::WRITE_LISTED == 0 && writes::list(self.slot) {
            self.reads |= reads::WRITE_LISTED;
        }
    }

    /// Whether the write pass may write this session's queue to its socket:
    /// a connection is being served, with nothing half-written before it,
    /// and nothing for its task to see first (a close, a client stream that
    /// ended, a resume being looked up).
    pub fn writes_directly(&self) -> bool {
        self.write_fd >= 0
            && self.unsent.is_empty()
            && self.close.is_none()
            && !self.abort
            && self.reads & reads::ENDED == 0
            && self.resuming.is_none()
    }

    /// Queues a body in the sequence.
    pub fn push_seq(&mut self, body: Bytes, outbound_bytes_max: usize) -> bool {
        self.seq += 1;
        self.queued_since_sweep = true;
        self.queued_since_ask = true;
        let seq = self.seq;
        let queued = self.push(Out::Seq(seq, body), outbound_bytes_max);
        if self.ack_due && queued {
            self.ack_due = false;
            return self.push(Out::Ping(seq), outbound_bytes_max);
        }
        queued
    }

    /// A frame was written to the connection: keep it for a resume (the
    /// frame itself moves into the history; no second reference is taken).
    pub fn written(&mut self, out: Out) {
        if let Out::Seq(seq, body) = out {
            self.keep(seq, body);
        }
    }

    /// A pong echoed the ping queued at `seq`: every frame up to it was in
    /// the stream before the ping, so the client has them; they need not be
    /// held for a resume any longer.
    pub fn acked(&mut self, payload: &[u8]) {
        let Ok(bytes) = <[u8; PING_PAYLOAD_BYTES]>::try_from(payload) else {
            return;
        };
        let seq = u64::from_be_bytes(bytes);
        if seq <= self.seq {
            self.history.trim_through(seq);
        }
    }

    /// Keeps a frame of the sequence for a resume, within `hold`.
    fn keep(&mut self, seq: u64, body: Bytes) {
        if self.hold.frames_max == 0 {
            return;
        }
        let newest = self.history.newest_seq();
        if seq <= newest {
            // A write that finished after the frames queued behind it were
            // held (the connection dropped meanwhile): it came too late to
            // be kept in order, so a replay from before it fails cleanly.
            return;
        }
        if seq > newest + 1 {
            // That frame is missing: the history starts over after it.
            self.history.pass_through(seq - 1);
        }
        if seq == WELCOME_SEQ {
            // Whoever resumes has had it: the token came in it. Not keeping
            // it leaves a session that is sent nothing else holding nothing.
            self.history.pass(seq);
            return;
        }
        self.history.push(seq, body, self.hold);
    }

    /// Moves the frames of the sequence still queued into the history (they
    /// will not be written to this connection); the rest of the queue goes.
    pub fn hold_queued(&mut self) {
        let queued = std::mem::take(&mut self.out);
        self.out_bytes = 0;
        for out in queued {
            // Replayed frames are in the history already.
            if let Out::Seq(seq, body) = out {
                self.keep(seq, body);
            }
        }
    }

    /// The connection is gone; the session stays for a resume, and what was
    /// queued for it is held in the history with what was written.
    pub fn detach(&mut self, now_ms: u64) {
        self.hold_queued();
        self.phase = Phase::Detached;
        self.detached_ms = now_ms;
        self.drop_connection_state();
    }

    /// Attaches a new connection for a resume from `last_seq`: the queue
    /// becomes `resumed`, then every frame after `last_seq` with its seq.
    /// `Err(Gap)` (nothing changed) when they are not all held.
    pub fn attach(&mut self, last_seq: u64, now_ms: u64) -> Result<usize, Gap> {
        self.hold_queued();
        let frames: Vec<(u64, Bytes)> = self
            .history
            .since(last_seq)?
            .map(|(seq, body)| (seq, body.clone()))
            .collect();
        // The old connection's task, if any, sees the new epoch and ends.
        self.wake();
        self.conn_epoch = self.conn_epoch.wrapping_add(1);
        self.phase = Phase::Playing;
        self.detached_ms = 0;
        self.drop_connection_state();
        self.heard_ms = now_ms;
        self.pinged_ms = 0;
        self.pings_missed = 0;
        let replayed = frames.len();
        let resumed = Out::Plain(encode::resumed(replayed));
        self.out_bytes = FRAME_OVERHEAD_BYTES + out_len(&resumed);
        self.out.push_back(resumed);
        for (seq, body) in frames {
            self.out_bytes += FRAME_OVERHEAD_BYTES + body.len();
            self.out.push_back(Out::Replayed(seq, body));
        }
        Ok(replayed)
    }

    /// The sweep's look at a playing session (once a second): a session
    /// quiet since the last sweep gives back its burst buffers; one holding
    /// frames for a resume is asked how far its client has read — every
    /// `HISTORY_ACK_INTERVAL_MS` while frames keep coming, and once as soon
    /// as they stop, so that an idle player's last reply is let go within a
    /// sweep interval or two. Returns the ping to queue, if any.
    pub fn sweep_history(&mut self, now_ms: u64) -> Option<Out> {
        let quiet = !std::mem::take(&mut self.queued_since_sweep);
        if quiet {
            self.let_go_of_burst_buffers();
        }
        if self.history.is_empty() {
            return None;
        }
        let asked_ms = now_ms.saturating_sub(self.acked_asked_ms);
        let quiet_ask = quiet && self.queued_since_ask && asked_ms >= QUIET_ACK_MS;
        let due = asked_ms >= HISTORY_ACK_INTERVAL_MS;
        if !due && !quiet_ask {
            return None;
        }
        self.acked_asked_ms = now_ms;
        self.queued_since_ask = false;
        if !quiet {
            // Frames keep coming: the ping rides behind the next one. Asked
            // on their own, a chat shard's 10,000 sessions cost 10,000 writes
            // in one sweep and held deliveries up for tens of ms.
            self.ack_due = true;
            return None;
        }
        // Every frame up to `seq` is queued ahead of this ping.
        Some(Out::Ping(self.seq))
    }

    /// The session was quiet for a sweep interval: the queues' memory,
    /// grown by the last burst and empty now, goes back (an idle session
    /// keeps no buffer; the next frame allocates a small one again).
    pub fn let_go_of_burst_buffers(&mut self) {
        if self.out.is_empty() && self.out.capacity() > 0 {
            self.out = VecDeque::new();
        }
        if self.pending.is_empty() && self.pending.capacity() > 0 {
            self.pending = VecDeque::new();
        }
    }

    /// Forgets everything that belonged to the connection, not the session.
    fn drop_connection_state(&mut self) {
        self.waker = None;
        self.write_fd = -1;
        self.pending.clear();
        self.close = None;
        self.close_queued = false;
        self.close_seen_ms = 0;
        self.abort = false;
        self.partial = Vec::new();
        self.unsent = Vec::new();
        self.fragments = None;
        self.resuming = None;
    }

    /// Asks the connection task to close with `reason` once what is queued
    /// has been written. Nothing queued after this is sent.
    pub fn request_close(&mut self, reason: CloseReason) {
        if self.close.is_none() {
            self.close = Some(reason);
        }
        self.wake();
    }

    /// Closes a reader that fell too far behind: its queue is not sent; the
    /// frames in it are held for a resume (when sessions are kept).
    pub fn cut_off(&mut self, reason: CloseReason) {
        self.hold_queued();
        self.request_close(reason);
    }

    pub fn wake(&self) {
        if let Some(waker) = &self.waker {
            waker.wake_by_ref();
        }
    }

    /// Takes one token from the command bucket; false when over the rate.
    pub fn take_token(&mut self, now_ms: u64, per_s: u32, burst: u32) -> bool {
        let elapsed_ms = now_ms.saturating_sub(self.tokens_ms);
        self.tokens_ms = now_ms;
        self.tokens = (self.tokens + elapsed_ms as f32 * per_s as f32 / 1000.0).min(burst as f32);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Counts a command refused by the rate limit. True when this is the
    /// `max`-th refusal within `window_ms`: the client keeps flooding and
    /// is to be closed. A window opens at a refusal when none is open, so
    /// a client refused now and then starts over each time; two fields,
    /// nothing allocated.
    pub fn count_rate_limited(&mut self, now_ms: u64, max: u32, window_ms: u64) -> bool {
        if self.rate_limited == 0 || now_ms.saturating_sub(self.rate_limited_since_ms) > window_ms {
            self.rate_limited = 0;
            self.rate_limited_since_ms = now_ms;
        }
        self.rate_limited = self.rate_limited.saturating_add(1);
        self.rate_limited >= max
    }
}

/// Bytes of a queued frame's body.
fn out_len(out: &Out) -> usize {
    match out {
        Out::Seq(_, b) | Out::Replayed(_, b) | Out::Plain(b) | Out::Pong(b) => b.len(),
        Out::Ping(_) => PING_PAYLOAD_BYTES,
    }
}

/// The sessions of one shard: a slab whose slot and generation form the
/// local part of a `SessionId`.
///
/// The slots are kept in fixed chunks rather than one `Vec`: a `Vec` grown
/// by doubling holds up to twice the sessions' memory, and each time it
/// grows it copies every session and frees the old block, which the
/// allocator then keeps; chunks are allocated once and never move.
pub struct Sessions {
    chunks: Vec<Box<[Option<Session>]>>,
    free: Vec<u32>,
    gens: Vec<u32>,
    /// Slots ever used: the next new one.
    used: u32,
    live: usize,
}

/// Slots per chunk of the slab (about 120 KiB of sessions).
const SLOTS_PER_CHUNK: usize = 256;

fn chunk_of(slot: u32) -> (usize, usize) {
    let slot = slot as usize;
    (slot / SLOTS_PER_CHUNK, slot % SLOTS_PER_CHUNK)
}

impl Sessions {
    pub fn new() -> Sessions {
        Sessions {
            chunks: Vec::new(),
            free: Vec::new(),
            gens: Vec::new(),
            used: 0,
            live: 0,
        }
    }

    /// Number of open slots (sessions and zombies).
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Stores a new session; returns its slot and generation.
    pub fn insert(&mut self, make: impl FnOnce(u32) -> Session) -> (u32, u32) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = self.used;
                self.used += 1;
                if chunk_of(slot).0 == self.chunks.len() {
                    self.chunks
                        .push((0..SLOTS_PER_CHUNK).map(|_| None).collect());
                }
                self.gens.push(0);
                slot
            }
        };
        // Generations wrap within the bits a `SessionId` keeps of them.
        let gen = SessionId::gen_of(self.gens[slot as usize].wrapping_add(1));
        self.gens[slot as usize] = gen;
        let (chunk, at) = chunk_of(slot);
        self.chunks[chunk][at] = Some(make(gen));
        self.live += 1;
        (slot, gen)
    }

    pub fn remove(&mut self, slot: u32) -> Option<Session> {
        let session = self.slot_mut(slot)?.take()?;
        self.free.push(slot);
        self.live -= 1;
        Some(session)
    }

    fn slot_mut(&mut self, slot: u32) -> Option<&mut Option<Session>> {
        let (chunk, at) = chunk_of(slot);
        self.chunks.get_mut(chunk)?.get_mut(at)
    }

    /// The session in `slot` if it is still generation `gen`.
    pub fn get_mut(&mut self, slot: u32, gen: u32) -> Option<&mut Session> {
        self.slot_mut(slot)?.as_mut().filter(|s| s.gen == gen)
    }

    pub fn by_slot(&mut self, slot: u32) -> Option<&mut Session> {
        self.slot_mut(slot)?.as_mut()
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (u32, &mut Session)> {
        self.chunks
            .iter_mut()
            .flat_map(|chunk| chunk.iter_mut())
            .enumerate()
            .filter_map(|(i, s)| s.as_mut().map(|s| (i as u32, s)))
    }

    pub fn id_of(&self, shard: ShardAddr, slot: u32) -> Option<SessionId> {
        let (chunk, at) = chunk_of(slot);
        let session = self.chunks.get(chunk)?.get(at)?.as_ref()?;
        Some(SessionId::new(shard, slot, session.gen))
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_record_stays_within_its_bound() {
        let size = std::mem::size_of::<Option<Session>>();
        assert!(
            size <= SESSION_BYTES_MAX,
            "a session is {size} bytes, over {SESSION_BYTES_MAX}: every idle session pays it"
        );
    }

    #[test]
    fn the_slab_grows_by_whole_chunks_that_never_move_and_reuses_slots() {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut sessions = Sessions::new();
        let make = |g| Session::new(g, 0, 1, ip, HistoryBounds::DEFAULT);
        let (first, _) = sessions.insert(make);
        let at = sessions.by_slot(first).map(|s| s as *const Session);
        for _ in 1..SLOTS_PER_CHUNK * 2 + 1 {
            sessions.insert(make);
        }
        assert_eq!(sessions.chunks.len(), 3);
        assert!(sessions.chunks.iter().all(|c| c.len() == SLOTS_PER_CHUNK));
        assert_eq!(
            sessions.by_slot(first).map(|s| s as *const Session),
            at,
            "a session never moves when the slab grows"
        );
        let last = (SLOTS_PER_CHUNK * 2) as u32;
        assert!(sessions.remove(last).is_some());
        assert!(sessions.by_slot(last).is_none());
        let (reused, _) = sessions.insert(make);
        assert_eq!(reused, last);
        assert_eq!(sessions.len(), SLOTS_PER_CHUNK * 2 + 1);
        let slots: Vec<u32> = sessions.iter_mut().map(|(slot, _)| slot).collect();
        assert_eq!(slots, (0..=last).collect::<Vec<u32>>());
        assert!(sessions.by_slot(u32::MAX).is_none());
    }

    #[test]
    fn a_quiet_session_gives_back_its_queue_and_keeps_nothing_else() {
        let mut s = playing(HistoryBounds::DEFAULT);
        for _ in 0..3 {
            s.push_seq(Bytes::from_static(b"x"), 1 << 20);
        }
        assert!(s.queued_since_sweep);
        s.let_go_of_burst_buffers();
        assert!(s.out.capacity() > 0, "a queue with frames is kept");
        let written: Vec<Out> = s.out.drain(..).collect();
        for out in written {
            s.written(out);
        }
        s.let_go_of_burst_buffers();
        assert_eq!(s.out.capacity(), 0);
        assert_eq!(s.pending.capacity(), 0);
        assert_eq!(s.history.len(), 2, "the history is not a burst buffer");
    }

    /// Queues one frame of the sequence and writes it (kept for a resume);
    /// the seq of a ping written with it, if any.
    fn send_one(s: &mut Session) -> Option<u64> {
        s.push_seq(Bytes::from_static(b"x"), 1 << 20);
        let written: Vec<Out> = s.out.drain(..).collect();
        let mut ping = None;
        for out in written {
            if let Out::Ping(seq) = out {
                ping = Some(seq);
            }
            s.written(out);
        }
        ping
    }

    fn asked(s: &mut Session, now_ms: u64) -> Option<u64> {
        match s.sweep_history(now_ms) {
            Some(Out::Ping(seq)) => Some(seq),
            Some(_) => panic!("the sweep queues only pings"),
            None => None,
        }
    }

    #[test]
    fn an_idle_session_is_asked_for_its_ack_after_one_quiet_sweep_and_once() {
        let mut s = playing(HistoryBounds::DEFAULT);
        send_one(&mut s); // the welcome: never held
        send_one(&mut s); // the reply that placed it
        assert_eq!(s.history.len(), 1);
        // The sweep right after the reply sees it was just sent.
        assert_eq!(asked(&mut s, 1_000), None);
        // The next one sees a quiet interval: asked, through the reply.
        assert_eq!(asked(&mut s, 2_000), Some(2));
        // A client that does not answer is not asked again at every sweep,
        // only at the interval.
        for now in [3_000, 4_000, 5_000, 6_000] {
            assert_eq!(asked(&mut s, now), None, "{now}");
        }
        assert_eq!(asked(&mut s, 7_000), Some(2));
        // Its answer lets the reply go, and nothing more is asked.
        s.acked(&2u64.to_be_bytes());
        assert!(s.history.is_empty());
        assert_eq!(asked(&mut s, 20_000), None);
    }

    #[test]
    fn a_session_sent_frames_at_every_sweep_is_asked_at_the_interval_behind_its_next_frame() {
        let mut s = playing(HistoryBounds::DEFAULT);
        send_one(&mut s);
        let mut asks = Vec::new();
        for second in 1..=12u64 {
            if let Some(seq) = send_one(&mut s) {
                asks.push((second, seq));
            }
            assert_eq!(
                asked(&mut s, second * 1_000),
                None,
                "never a ping of its own"
            );
        }
        // Due at the sweeps of seconds 5 and 10; written with the frames of
        // seconds 6 and 11 (seqs 7 and 12), in the same write.
        assert_eq!(asks, vec![(6, 7), (11, 12)]);
    }

    #[test]
    fn a_session_without_a_history_is_never_asked() {
        let mut s = playing(HistoryBounds {
            frames_max: 0,
            bytes_max: 0,
        });
        for second in 1..=12u64 {
            send_one(&mut s);
            assert_eq!(asked(&mut s, second * 1_000), None);
        }
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_the_rate() {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut s = Session::new(1, 0, 40, ip, HistoryBounds::DEFAULT);
        let granted = (0..50).filter(|_| s.take_token(0, 20, 40)).count();
        assert_eq!(granted, 40);
        // One second later: 20 more.
        let granted = (0..50).filter(|_| s.take_token(1000, 20, 40)).count();
        assert_eq!(granted, 20);
    }

    #[test]
    fn the_hundredth_refusal_within_the_window_marks_a_flood_and_older_ones_lapse() {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut s = Session::new(1, 0, 40, ip, HistoryBounds::DEFAULT);
        // A refusal now and then is a player typing fast, not a flood.
        for t in 0..10 {
            assert!(!s.count_rate_limited(t * 20_000, 100, 10_000));
        }
        // 99 within the window are tolerated; the 100th is not.
        let start = 300_000;
        for i in 0..99 {
            assert!(!s.count_rate_limited(start + i * 100, 100, 10_000), "{i}");
        }
        assert!(s.count_rate_limited(start + 9_999, 100, 10_000));
        // The same 100 spread over more than the window are not.
        let mut s = Session::new(1, 0, 40, ip, HistoryBounds::DEFAULT);
        let flagged = (0..100).any(|i| s.count_rate_limited(i * 200, 100, 10_000));
        assert!(!flagged, "refusals older than the window start a new count");
    }

    #[test]
    fn the_outbox_refuses_past_its_bound_and_a_cut_off_drops_it() {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut s = Session::new(1, 0, 40, ip, HistoryBounds::DEFAULT);
        let body = Bytes::from(vec![b'x'; 1000]);
        let mut pushed = 0;
        while s.push_seq(body.clone(), 100_000) {
            pushed += 1;
        }
        assert_eq!(pushed, 100_000 / (1000 + FRAME_OVERHEAD_BYTES));
        s.cut_off(CloseReason {
            code: 1013,
            reason: "slow",
        });
        assert!(s.out.is_empty());
        assert_eq!(s.out_bytes, 0);
    }

    #[test]
    fn a_write_finishing_after_the_queue_was_held_makes_a_resume_from_before_it_fail_cleanly() {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut s = Session::new(1, 0, 40, ip, HistoryBounds::DEFAULT);
        for n in 1..=4u8 {
            assert!(s.push_seq(Bytes::from(vec![n]), 100_000));
        }
        let welcome = s.out.pop_front().expect("frame 1");
        s.written(welcome);
        // Frame 2 is being written when the connection drops: 3 and 4 are
        // held first, then the write of 2 finishes.
        let in_flight = s.out.pop_front().expect("frame 2");
        s.hold_queued();
        s.written(in_flight);
        assert!(s.attach(1, 0).is_err(), "2 is not held: no partial replay");
        assert_eq!(s.attach(2, 0).expect("3 and 4 are held"), 2);
    }

    #[test]
    fn stale_generations_do_not_reach_a_reused_slot() {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut sessions = Sessions::new();
        let (slot, gen) = sessions.insert(|g| Session::new(g, 0, 1, ip, HistoryBounds::DEFAULT));
        sessions.remove(slot);
        let (slot2, gen2) = sessions.insert(|g| Session::new(g, 0, 1, ip, HistoryBounds::DEFAULT));
        assert_eq!(slot, slot2);
        assert_ne!(gen, gen2);
        assert!(sessions.get_mut(slot, gen).is_none());
        assert!(sessions.get_mut(slot2, gen2).is_some());
    }

    #[test]
    fn written_frames_are_kept_only_when_sessions_are_kept_for_resume() {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let off = HistoryBounds {
            frames_max: 0,
            bytes_max: 1024,
        };
        let on = HistoryBounds {
            frames_max: 2,
            bytes_max: 1024,
        };
        let body = Bytes::from_static(b"\"type\":\"event\"}");
        let mut s = Session::new(1, 0, 40, ip, off);
        s.written(Out::Seq(1, body.clone()));
        assert!(s.history.is_empty(), "nothing kept without a resume window");
        let mut s = Session::new(1, 0, 40, ip, on);
        s.written(Out::Plain(body.clone()));
        s.written(Out::Ping(0));
        assert!(
            s.history.is_empty(),
            "frames outside the sequence are not kept"
        );
        for seq in 1..=3 {
            s.written(Out::Seq(seq, body.clone()));
        }
        let kept: Vec<u64> = s.history.since(1).expect("held").map(|(q, _)| q).collect();
        assert_eq!(kept, vec![2, 3]);
    }

    fn playing(hold: HistoryBounds) -> Session {
        let ip = std::net::IpAddr::from([127, 0, 0, 1]);
        let mut s = Session::new(1, 0, 40, ip, hold);
        s.phase = Phase::Playing;
        s
    }

    fn seqs(s: &Session) -> Vec<u64> {
        s.out
            .iter()
            .filter_map(|o| match o {
                Out::Seq(q, _) | Out::Replayed(q, _) => Some(*q),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_resume_replays_written_held_and_queued_frames_after_last_seq_in_order() {
        let mut s = playing(HistoryBounds::DEFAULT);
        let body = Bytes::from_static(b"\"type\":\"event\"}");
        for _ in 0..3 {
            assert!(s.push_seq(body.clone(), 1 << 20));
        }
        // Two were written before the drop; the third was still queued.
        let written: Vec<Out> = s.out.drain(..2).collect();
        for out in written {
            s.written(out);
        }
        s.detach(5);
        assert!(s.out.is_empty());
        // While detached, frames go straight to the history.
        assert!(s.push_seq(body.clone(), 1 << 20));
        assert_eq!(s.attach(1, 10), Ok(3));
        assert!(
            matches!(s.out.front(), Some(Out::Plain(_))),
            "resumed first"
        );
        assert_eq!(seqs(&s), vec![2, 3, 4]);
        assert_eq!(s.phase, Phase::Playing);
        assert_eq!(s.conn_epoch, 1);
        // Live frames continue the sequence.
        assert!(s.push_seq(body, 1 << 20));
        assert_eq!(seqs(&s), vec![2, 3, 4, 5]);
    }

    #[test]
    fn a_resume_past_what_is_held_fails_and_changes_nothing() {
        let hold = HistoryBounds {
            frames_max: 2,
            bytes_max: 1024,
        };
        let mut s = playing(hold);
        let body = Bytes::from_static(b"x");
        for _ in 0..5 {
            s.push_seq(body.clone(), 1 << 20);
        }
        s.detach(5);
        assert_eq!(s.attach(1, 10), Err(Gap));
        assert_eq!(s.phase, Phase::Detached);
        assert_eq!(s.attach(3, 10), Ok(2));
    }

    #[test]
    fn a_cut_off_reader_keeps_its_queue_for_a_resume() {
        let mut s = playing(HistoryBounds::DEFAULT);
        let body = Bytes::from(vec![b'x'; 1000]);
        while s.push_seq(body.clone(), 10_000) {}
        let sent = s.seq;
        s.cut_off(CloseReason {
            code: 1013,
            reason: "slow",
        });
        assert!(s.out.is_empty());
        // Frames after the cut-off are held too, none lost.
        s.push_seq(body, 10_000);
        s.detach(1);
        // Everything after the welcome (seq 1), which is never kept.
        assert_eq!(s.attach(1, 2), Ok(sent as usize));
        assert_eq!(s.attach(0, 3), Err(Gap), "the welcome is not replayed");
    }

    #[test]
    fn a_pong_for_a_ping_queued_at_a_seq_lets_go_of_the_frames_up_to_it() {
        let mut s = playing(HistoryBounds::DEFAULT);
        let body = Bytes::from_static(b"x");
        for _ in 0..5 {
            s.push_seq(body.clone(), 1 << 20);
        }
        let written: Vec<Out> = s.out.drain(..).collect();
        for out in written {
            s.written(out);
        }
        assert_eq!(s.history.len(), 4, "2..=5 held; the welcome never is");
        s.acked(&3u64.to_be_bytes());
        assert_eq!(s.history.len(), 2);
        assert_eq!(s.history.since(3).map(|f| f.len()), Ok(2));
        s.acked(&[1, 2, 3]);
        assert_eq!(s.history.len(), 2, "a payload that is not ours is ignored");
        s.acked(&99u64.to_be_bytes());
        assert_eq!(s.history.len(), 2, "a seq never sent is ignored");
        s.acked(&5u64.to_be_bytes());
        assert!(s.history.is_empty());
        assert_eq!(s.history.since(5).map(|f| f.len()), Ok(0));
    }
}
