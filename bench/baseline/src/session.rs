//! One WebSocket connection: a reader loop in the connection's task and a
//! writer task fed by an unbounded `mpsc` queue — the usual tokio pattern.
//!
//! Everything the session sends (its own replies and other players' events)
//! goes through the queue, so the writer alone numbers frames and `seq` has no
//! gaps and never goes backwards.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::commands::{Answer, Command};
use crate::protocol::{self, ClientFrame, Outbound, Outcome};
use crate::state::{Shared, Tx};

/// How many queued frames the writer takes per wake-up before it flushes.
/// They are written into tungstenite's buffer and flushed together, so a burst
/// of events costs one `write` instead of one per frame.
const WRITE_BATCH_FRAMES_MAX: usize = 64;

/// How long a command waits for the Redis bridge (`--redis`) before it is
/// answered `unreachable` (DESIGN.md §1: within 2 s, never hanging).
const BRIDGE_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);

type WsStream = WebSocketStream<TcpStream>;

/// The per-connection state of the reader loop.
struct Session {
    shared: Arc<Shared>,
    tx: Tx,
    /// The player's name once logged in.
    name: Option<String>,
}

/// Keeps `/healthz`'s connection count right however the session ends.
struct ConnectionGuard(Arc<Shared>);

impl ConnectionGuard {
    fn new(shared: &Arc<Shared>) -> ConnectionGuard {
        shared.connections.fetch_add(1, Ordering::Relaxed);
        ConnectionGuard(Arc::clone(shared))
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Upgrades a `GET /ws` connection and runs the session until it ends.
/// Errors end this connection only.
pub async fn run(stream: TcpStream, shared: Arc<Shared>) {
    let Ok(ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    let _guard = ConnectionGuard::new(&shared);
    let (sink, mut frames) = ws.split();
    let (tx, rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(write_loop(sink, rx));

    let mut session = Session {
        shared,
        tx,
        name: None,
    };
    while let Some(Ok(message)) = frames.next().await {
        let keep_going = match message {
            Message::Text(text) => session.handle(&text).await,
            Message::Binary(_) => {
                session.refuse("unsupported", "binary frames are not supported");
                true
            }
            Message::Close(_) => false,
            // tungstenite answers pings itself; other control frames need nothing.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => true,
        };
        if !keep_going {
            break;
        }
    }

    if let Some(name) = &session.name {
        session.shared.logout(name);
    }
    // Dropping the last sender lets the writer drain what is queued and stop.
    drop(session);
    let _ = writer.await;
}

impl Session {
    /// Handles one text frame; `false` ends the session.
    async fn handle(&mut self, text: &str) -> bool {
        let frame: ClientFrame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(err) => {
                self.refuse("bad_json", &err.to_string());
                return true;
            }
        };
        match frame.kind.as_str() {
            "ping" => {
                let _ = self
                    .tx
                    .send(Outbound::Unsequenced(protocol::pong(frame.id.as_ref())));
                true
            }
            "guest" => {
                match self.name {
                    Some(_) => self.refuse("already_logged_in", "this session is logged in"),
                    None => {
                        let name = self.shared.login(frame.name.as_deref(), self.tx.clone());
                        self.name = Some(name);
                    }
                }
                true
            }
            "cmd" => self.command(&frame).await,
            _ => {
                self.refuse(
                    "unknown_type",
                    "the baseline understands guest, cmd and ping frames",
                );
                true
            }
        }
    }

    /// Runs a `cmd` frame; `false` after `quit`. A command the bridge must
    /// finish is awaited before the next frame is read, so replies keep the
    /// order of their commands.
    async fn command(&mut self, frame: &ClientFrame) -> bool {
        let Some(name) = self.name.as_deref() else {
            self.refuse("unauthenticated", "log in first: send {\"type\":\"guest\"}");
            return true;
        };
        let Some(line) = frame.line.as_deref() else {
            self.refuse("bad_json", "a cmd frame needs a \"line\"");
            return true;
        };
        let command = Command::parse(line);
        let outcome = match command.run(&self.shared, name) {
            Answer::Now(outcome) => outcome,
            Answer::Later(outcome) => {
                match tokio::time::timeout(BRIDGE_ANSWER_TIMEOUT, outcome).await {
                    Ok(Ok(outcome)) => outcome,
                    _ => Outcome::fail("unreachable", "The other hosts did not answer in time."),
                }
            }
            // Unconfirmed in time: the move is done here all the same; the
            // room's other hosts are heard once Redis catches up.
            Answer::AfterSubscribe(outcome, confirmed) => {
                let _ = tokio::time::timeout(BRIDGE_ANSWER_TIMEOUT, confirmed).await;
                outcome
            }
        };
        let reply = protocol::reply(frame.id.as_ref(), &outcome);
        let _ = self.tx.send(Outbound::Sequenced(reply));
        if command == Command::Quit {
            let _ = self.tx.send(Outbound::Close);
            return false;
        }
        true
    }

    /// Sends an `error` frame: numbered once logged in, outside the sequence before.
    fn refuse(&self, code: &str, message: &str) {
        let body = protocol::error(code, message);
        let out = match self.name {
            Some(_) => Outbound::Sequenced(body.into()),
            None => Outbound::Unsequenced(body),
        };
        let _ = self.tx.send(out);
    }
}

/// Writes queued frames, numbering the sequenced ones, until the queue closes,
/// a `Close` is queued, or the socket fails.
async fn write_loop(mut sink: SplitSink<WsStream, Message>, mut rx: UnboundedReceiver<Outbound>) {
    let mut seq: u64 = 0;
    let mut batch = Vec::with_capacity(WRITE_BATCH_FRAMES_MAX);
    while rx.recv_many(&mut batch, WRITE_BATCH_FRAMES_MAX).await > 0 {
        for out in batch.drain(..) {
            let message = match out {
                Outbound::Sequenced(body) => {
                    seq += 1;
                    Message::text(protocol::with_seq(seq, &body))
                }
                Outbound::Unsequenced(frame) => Message::text(frame),
                Outbound::Close => {
                    let _ = sink.send(Message::Close(None)).await;
                    return;
                }
            };
            if sink.feed(message).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
    }
}
