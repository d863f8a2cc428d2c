//! A connection whose every frame is read and checked: the soak's droppers,
//! slow readers and abusers. They are few, so unlike the hot path of
//! `worker.rs` their frames are parsed whole (serde_json): the token in
//! `welcome`, the count in `resumed`, each `seq` against the last one (a gap
//! or a duplicate is counted), error codes, and how the connection ended.

use super::Ctx;
use crate::clock::now_ns;
use crate::plan::PlayerSpec;
use crate::scenario::sleep_until;
use crate::session::{Ended, Session};
use crate::ws::{self, Opcode};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// How a resume was answered.
pub enum ResumeAnswer {
    /// `resumed`, announcing this many replayed frames; the connection now
    /// plays on.
    Resumed(Tracked, u64),
    /// `resume_failed`.
    Failed,
    /// Anything else, in words (no answer in time, a failed connect, …).
    Broken(String),
}

/// See the module doc.
pub struct Tracked {
    pub session: Rc<Session>,
    /// Whether `seq` is checked (not for abusers, who are not players).
    pub check_seq: Cell<bool>,
    /// The last `seq` read (0 before `welcome`).
    pub last_seq: Cell<u64>,
    /// The session token from `welcome`.
    pub token: RefCell<Option<String>>,
    /// The count of the `resumed` frame, once it came.
    pub resumed: Cell<Option<u64>>,
    /// The code of the last `error` frame.
    pub last_error: RefCell<Option<String>>,
    /// `error` frames read.
    pub errors: Cell<u64>,
    /// Of those, `rate_limited`.
    pub rate_limited: Cell<u64>,
    /// Replies to commands with the id `"place"` (placement).
    pub placed: Cell<bool>,
    /// Pongs read.
    pub pongs: Cell<u64>,
    /// The close code, when the server closed with a close frame.
    pub closed: Cell<Option<u16>>,
}

impl Tracked {
    /// Connects and hands-shake to `spec`'s target; nothing is sent yet.
    /// With `rcvbuf`, the socket is a slow reader's: its receive buffer is
    /// that many bytes and its segments small (see `slow::SEGMENT_BYTES`).
    pub async fn connect(
        ctx: &Ctx,
        spec: &PlayerSpec,
        check_seq: bool,
        rcvbuf: Option<u32>,
    ) -> Result<Tracked, String> {
        let stream = crate::net::start_connect_with(spec.target, spec.source, |socket| {
            if let Some(bytes) = rcvbuf {
                socket.set_recv_buffer_size(bytes as usize)?;
                socket.set_mss(super::slow::SEGMENT_BYTES)?;
            }
            Ok(())
        })
        .map_err(|e| format!("connect to {}: {e}", spec.target))?;
        let session = Rc::new(Session::plain(spec.index, stream));
        ctx.worker.handshake(&session, spec).await?;
        Ok(Tracked {
            session,
            check_seq: Cell::new(check_seq),
            last_seq: Cell::new(0),
            token: RefCell::new(None),
            resumed: Cell::new(None),
            last_error: RefCell::new(None),
            errors: Cell::new(0),
            rate_limited: Cell::new(0),
            placed: Cell::new(false),
            pongs: Cell::new(0),
            closed: Cell::new(None),
        })
    }

    /// A fresh guest login as `spec.name`, then a `goto` to `spec.place`;
    /// bounded by `--connect-timeout`.
    pub async fn login(
        ctx: &Ctx,
        spec: &PlayerSpec,
        rcvbuf: Option<u32>,
    ) -> Result<Tracked, String> {
        let deadline_ns = now_ns() + ctx.connect_timeout_ns();
        let conn = Tracked::connect(ctx, spec, true, rcvbuf).await?;
        conn.send(
            ctx,
            format!(r#"{{"type":"guest","name":"{}"}}"#, spec.name).as_bytes(),
        )
        .await?;
        let welcomed = |c: &Tracked| c.token.borrow().is_some() || c.errors.get() > 0;
        if !conn.read_until(ctx, deadline_ns, welcomed).await? {
            return Err("no welcome in time".into());
        }
        if conn.token.borrow().is_none() {
            return Err(format!("login refused: {:?}", conn.last_error.borrow()));
        }
        if let Some((x, y)) = spec.place {
            let goto = format!(r#"{{"type":"cmd","id":"place","line":"goto grid:{x}_{y}"}}"#);
            conn.send(ctx, goto.as_bytes()).await?;
            if !conn
                .read_until(ctx, deadline_ns, |c| c.placed.get())
                .await?
            {
                return Err("not placed in time".into());
            }
        }
        Ok(conn)
    }

    /// A new connection resuming `token` from `last_seq`, bounded by
    /// `--connect-timeout`. After `Resumed`, the replayed frames are read
    /// (and checked) as they come.
    pub async fn resume(
        ctx: &Ctx,
        spec: &PlayerSpec,
        token: &str,
        last_seq: u64,
        rcvbuf: Option<u32>,
    ) -> ResumeAnswer {
        let deadline_ns = now_ns() + ctx.connect_timeout_ns();
        let conn = match Tracked::connect(ctx, spec, true, rcvbuf).await {
            Ok(conn) => conn,
            Err(why) => return ResumeAnswer::Broken(why),
        };
        conn.last_seq.set(last_seq);
        *conn.token.borrow_mut() = Some(token.to_string());
        // Tokens are the server's own ASCII; nothing to escape.
        let frame = format!(r#"{{"type":"resume","token":"{token}","last_seq":{last_seq}}}"#);
        if let Err(why) = conn.send(ctx, frame.as_bytes()).await {
            return ResumeAnswer::Broken(why);
        }
        let answered = |c: &Tracked| c.resumed.get().is_some() || c.errors.get() > 0;
        match conn.read_until(ctx, deadline_ns, answered).await {
            Ok(true) => {}
            Ok(false) => return ResumeAnswer::Broken("no answer to resume in time".into()),
            Err(why) => return ResumeAnswer::Broken(format!("resume: {why}")),
        }
        if let Some(replayed) = conn.resumed.get() {
            return ResumeAnswer::Resumed(conn, replayed);
        }
        let code = conn.last_error.borrow().clone();
        match code.as_deref() {
            Some("resume_failed") => ResumeAnswer::Failed,
            other => ResumeAnswer::Broken(format!("resume answered with error {other:?}")),
        }
    }

    /// Frames and writes one text message.
    pub async fn send(&self, ctx: &Ctx, json: &[u8]) -> Result<(), String> {
        ctx.worker.write_text(&self.session, json).await
    }

    /// Frames one text message and sends it without waiting (what does not
    /// fit in the socket now is flushed in the background, whole frames in
    /// order); false when the session's outbox is full or it is gone. For
    /// sends that may not wait: a write abandoned halfway would leave half a
    /// frame in the stream.
    pub fn send_now(&self, json: &[u8]) -> bool {
        let mut frame = Vec::with_capacity(json.len() + 8);
        ws::encode_frame(&mut frame, Opcode::Text, json, self.session.next_mask());
        self.session.send_now(&frame)
    }

    /// Reads and checks frames until `done` says so (`Ok(true)`), the
    /// deadline passes (`Ok(false)`), or the connection ends (`Err`).
    pub async fn read_until(
        &self,
        ctx: &Ctx,
        deadline_ns: u64,
        done: impl Fn(&Tracked) -> bool,
    ) -> Result<bool, String> {
        // Frames may wait in the carry already (they came with the handshake).
        if let Err(ended) = self.consume(ctx, &[]) {
            return if done(self) {
                Ok(true)
            } else {
                Err(format!("{ended:?}"))
            };
        }
        let reading = async {
            loop {
                if done(self) {
                    return Ok(true);
                }
                if let Err(ended) = self.read_once(ctx).await {
                    return if done(self) {
                        Ok(true)
                    } else {
                        Err(format!("{ended:?}"))
                    };
                }
            }
        };
        let timeout = async {
            sleep_until(deadline_ns).await;
            Ok(false)
        };
        futures_lite::future::or(reading, timeout).await
    }

    /// Reads once and checks every complete frame read.
    pub async fn read_once(&self, ctx: &Ctx) -> Result<(), Ended> {
        let mut outcome = Ok(());
        let n = self
            .session
            .read_into(&ctx.scratch, |bytes| outcome = self.consume(ctx, bytes))
            .await
            .map_err(Ended::Io)?;
        if n == 0 {
            return Err(Ended::Eof);
        }
        outcome
    }

    fn consume(&self, ctx: &Ctx, bytes: &[u8]) -> Result<(), Ended> {
        let mut pings: Vec<Vec<u8>> = Vec::new();
        let closed = self
            .session
            .inbox
            .borrow_mut()
            .feed(bytes, |incoming| match incoming {
                ws::Incoming::Message(payload) => self.on_message(ctx, payload),
                ws::Incoming::Ping(payload) => pings.push(payload.to_vec()),
            })
            .map_err(Ended::Protocol)?;
        for payload in pings {
            // The pong tells the server how far we have read, so it can let
            // go of what it held for a resume.
            self.send_control(Opcode::Pong, &payload);
        }
        match closed {
            Some(code) => {
                self.closed.set(Some(code));
                self.send_control(Opcode::Close, &code.to_be_bytes());
                Err(Ended::Closed(code))
            }
            None => Ok(()),
        }
    }

    /// Best effort, as in `Worker`: a control frame that does not fit in the
    /// socket buffer now is not worth queueing for.
    fn send_control(&self, opcode: Opcode, payload: &[u8]) {
        let mut frame = Vec::with_capacity(payload.len() + 8);
        ws::encode_frame(&mut frame, opcode, payload, self.session.next_mask());
        let _ = self.session.try_send(&frame);
    }

    fn on_message(&self, ctx: &Ctx, payload: &[u8]) {
        let Ok(v) = serde_json::from_slice::<Value>(payload) else {
            let head = String::from_utf8_lossy(&payload[..payload.len().min(80)]).into_owned();
            ctx.count(|c| c.note(format!("a frame that is not JSON: {head}")));
            return;
        };
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        if let Some(seq) = v.get("seq").and_then(Value::as_u64) {
            self.check(ctx, kind, seq);
        }
        match kind {
            "welcome" => {
                if let Some(token) = v.get("token").and_then(Value::as_str) {
                    *self.token.borrow_mut() = Some(token.to_string());
                }
            }
            "resumed" => {
                self.resumed
                    .set(Some(v.get("replayed").and_then(Value::as_u64).unwrap_or(0)));
            }
            "error" => {
                let code = v.get("code").and_then(Value::as_str).unwrap_or("?");
                self.errors.set(self.errors.get() + 1);
                if code == "rate_limited" {
                    self.rate_limited.set(self.rate_limited.get() + 1);
                }
                *self.last_error.borrow_mut() = Some(code.to_string());
            }
            "pong" => self.pongs.set(self.pongs.get() + 1),
            "reply" if v.get("id").and_then(Value::as_str) == Some("place") => {
                if v.get("ok").and_then(Value::as_bool) == Some(true) {
                    self.placed.set(true);
                } else {
                    *self.last_error.borrow_mut() = Some(format!("goto refused: {v}"));
                    self.errors.set(self.errors.get() + 1);
                }
            }
            _ => {}
        }
    }

    /// Checks `seq` against the last one: `welcome` starts a sequence; every
    /// other frame must be the next.
    fn check(&self, ctx: &Ctx, kind: &str, seq: u64) {
        let last = self.last_seq.get();
        if kind == "welcome" || !self.check_seq.get() {
            self.last_seq.set(seq);
            return;
        }
        if seq <= last {
            ctx.count(|c| {
                c.seq_duplicates += 1;
                c.note(format!("seq {seq} again after {last} ({kind})"));
            });
            return;
        }
        if seq != last + 1 {
            ctx.count(|c| {
                c.seq_gaps += 1;
                c.note(format!("seq {seq} after {last} ({kind}): a gap"));
            });
        }
        self.last_seq.set(seq);
    }

    /// Ends the session politely (a close frame, then the socket).
    pub fn close(&self) {
        let mut frame = Vec::with_capacity(8);
        ws::encode_close(&mut frame, 1000, self.session.next_mask());
        let _ = self.session.try_send(&frame);
        self.session.shutdown();
    }

    /// Cuts the connection without a close frame (see `Session::abort`);
    /// the socket is reset when `self` is dropped.
    pub fn cut(self) {
        self.session.abort();
        if Rc::strong_count(&self.session) > 1 {
            // A background flush (`send_now`) still holds the socket open:
            // end it now rather than when that flush gives up.
            self.session.shutdown();
        }
    }
}
