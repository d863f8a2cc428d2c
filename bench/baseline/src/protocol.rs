//! The wire format: client frames in, server frames out (DESIGN.md §4).
//!
//! Frames are plain `serde` structs encoded with `serde_json`, the way most
//! Rust servers do it. Server frames are encoded *without* `seq`: the session's
//! writer adds it in front when the frame goes out (see [`with_seq`]), so one
//! encoded event body can be shared by every listener in a room.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Something queued for a session's writer task.
#[derive(Debug)]
pub enum Outbound {
    /// A JSON object without `seq`; the writer numbers it.
    Sequenced(Arc<str>),
    /// A frame outside the sequence: `pong`, and errors before login.
    Unsequenced(String),
    /// Send a close frame and stop writing (after `quit`, or at shutdown).
    Close,
}

/// A frame from the client. Fields that a frame type does not use are ignored.
#[derive(Debug, Deserialize)]
pub struct ClientFrame {
    #[serde(rename = "type")]
    pub kind: String,
    /// Echoed exactly in the reply (string or number); absent means no `id` in the reply.
    pub id: Option<Value>,
    /// The command line of a `cmd` frame.
    pub line: Option<String>,
    /// The name a guest asks for.
    pub name: Option<String>,
}

/// A room as clients see it in `welcome`, `look` and move replies.
#[derive(Debug, Serialize)]
pub struct RoomView {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Direction name → room id, e.g. `"north": "grid:3_1"`.
    pub exits: serde_json::Map<String, Value>,
    /// The grid has no items; the field is part of the contract.
    pub items: [&'static str; 0],
    /// At most [`crate::state::ROOM_PLAYERS_LISTED_MAX`] names.
    pub players: Vec<String>,
    pub players_total: usize,
}

/// The first frame of a session (`seq` 1).
#[derive(Serialize)]
struct Welcome<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'a str,
    /// Guests cannot resume in the baseline, so the token is a placeholder.
    token: &'static str,
    shard: u32,
    host: &'a str,
    room: &'a RoomView,
}

/// The answer to a `cmd` frame.
#[derive(Serialize)]
struct Reply<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Value>,
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    room: Option<&'a RoomView>,
}

/// Something that happened in a room, sent to the others there.
#[derive(Serialize)]
struct Event<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "kind")]
    event: &'a str,
    room: &'a str,
    from: &'a str,
    text: &'a str,
    ts: u64,
}

/// A refused frame.
#[derive(Serialize)]
struct ErrorFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    code: &'a str,
    message: &'a str,
}

/// The answer to `ping`.
#[derive(Serialize)]
struct Pong<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a Value>,
}

/// The result of a command: `ok` with an optional room, or a failure with a code.
#[derive(Debug)]
pub struct Outcome {
    pub ok: bool,
    pub code: Option<&'static str>,
    pub text: String,
    pub room: Option<RoomView>,
}

impl Outcome {
    pub fn ok(text: impl Into<String>, room: Option<RoomView>) -> Outcome {
        Outcome {
            ok: true,
            code: None,
            text: text.into(),
            room,
        }
    }

    pub fn fail(code: &'static str, text: impl Into<String>) -> Outcome {
        Outcome {
            ok: false,
            code: Some(code),
            text: text.into(),
            room: None,
        }
    }
}

/// Encodes a value we built ourselves. Our frames are maps with string keys,
/// which `serde_json` always encodes, so a failure is a bug in this crate.
fn encode<T: Serialize>(frame: &T) -> String {
    serde_json::to_string(frame).expect("server frames are always encodable")
}

pub fn welcome(name: &str, host: &str, room: &RoomView) -> Arc<str> {
    encode(&Welcome {
        kind: "welcome",
        name,
        token: "-",
        shard: 0,
        host,
        room,
    })
    .into()
}

pub fn reply(id: Option<&Value>, outcome: &Outcome) -> Arc<str> {
    encode(&Reply {
        kind: "reply",
        id,
        ok: outcome.ok,
        code: outcome.code,
        text: &outcome.text,
        room: outcome.room.as_ref(),
    })
    .into()
}

pub fn event(kind: &str, room: &str, from: &str, text: &str) -> Arc<str> {
    encode(&Event {
        kind: "event",
        event: kind,
        room,
        from,
        text,
        ts: now_ms(),
    })
    .into()
}

pub fn error(code: &str, message: &str) -> String {
    encode(&ErrorFrame {
        kind: "error",
        code,
        message,
    })
}

pub fn pong(id: Option<&Value>) -> String {
    encode(&Pong { kind: "pong", id })
}

/// Puts `"seq":S` in front of an encoded object: `{"type":…}` becomes
/// `{"seq":S,"type":…}`. Clients read `seq` first, so it leads the frame.
pub fn with_seq(seq: u64, body: &str) -> String {
    debug_assert!(
        body.starts_with('{') && body.len() > 2,
        "a non-empty object"
    );
    let fields = &body[1..];
    let mut frame = String::with_capacity(fields.len() + 28);
    frame.push_str("{\"seq\":");
    frame.push_str(&seq.to_string());
    frame.push(',');
    frame.push_str(fields);
    frame
}

/// Milliseconds since the Unix epoch, for event `ts`.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_leads_the_frame() {
        let body = pong(Some(&Value::from(7)));
        assert_eq!(with_seq(12, &body), r#"{"seq":12,"type":"pong","id":7}"#);
    }

    #[test]
    fn a_reply_without_id_has_no_id_field() {
        let text = reply(None, &Outcome::fail("no_exit", "You can't go that way."));
        assert_eq!(
            &*text,
            r#"{"type":"reply","ok":false,"code":"no_exit","text":"You can't go that way."}"#
        );
    }
}
