//! Encoding server frames.
//!
//! A frame body is written once and shared by every recipient: it starts
//! *after* the opening brace (`"type":…}`), and each connection puts its own
//! `{"seq":N,` in front when it writes the frame (DESIGN §1, fan-out). Bodies
//! are written by hand: the fields are few and fixed, and this is the hot path.

use bytes::Bytes;

use super::MsgId;

/// Builds one frame body: `"type":"<kind>",…}` without the leading `{`.
pub struct Body {
    buf: Vec<u8>,
}

impl Body {
    /// Starts a body of the given frame type, with room for `capacity` bytes.
    pub fn new(frame_type: &str, capacity: usize) -> Body {
        let mut buf = Vec::with_capacity(capacity);
        buf.extend_from_slice(b"\"type\":\"");
        buf.extend_from_slice(frame_type.as_bytes());
        buf.push(b'"');
        Body { buf }
    }

    pub fn str(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        put_str(&mut self.buf, value);
        self
    }

    pub fn u64(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    pub fn bool(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.buf
            .extend_from_slice(if value { b"true" } else { b"false" });
        self
    }

    /// Writes `"id":<id>` when the request had one; nothing otherwise.
    pub fn id(&mut self, id: Option<&MsgId>) -> &mut Self {
        if let Some(id) = id {
            self.key("id");
            self.buf.extend_from_slice(id.as_json().as_bytes());
        }
        self
    }

    /// Writes a field whose value is already JSON (a room object, a list).
    pub fn raw(&mut self, key: &str, json: &[u8]) -> &mut Self {
        self.key(key);
        self.buf.extend_from_slice(json);
        self
    }

    fn key(&mut self, key: &str) {
        self.buf.push(b',');
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    /// Closes the object and freezes it for sharing.
    pub fn finish(mut self) -> Bytes {
        self.buf.push(b'}');
        Bytes::from(self.buf)
    }
}

/// `body` (a frame's body, as `Body::finish` made it) with `"late":true`
/// first: an answer that came after its command was answered `unreachable`.
pub fn marked_late(body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(body.len() + 12);
    out.extend_from_slice(b"\"late\":true,");
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// Appends `s` as a JSON string literal.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends a JSON array of strings.
pub fn put_str_array<'a>(out: &mut Vec<u8>, items: impl IntoIterator<Item = &'a str>) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_str(out, item);
    }
    out.push(b']');
}

/// Milliseconds since the Unix epoch, for `ts` fields.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The body of an `error` frame.
pub fn error(code: &str, message: &str) -> Bytes {
    error_for(None, code, message)
}

/// An `error` frame refusing a `cmd` that carried `id`: the id is echoed, as
/// in a reply, so that a client waiting on it hears why it never came.
pub fn error_for(id: Option<&MsgId>, code: &str, message: &str) -> Bytes {
    let mut body = Body::new("error", 48 + message.len());
    body.id(id).str("code", code).str("message", message);
    body.finish()
}

/// The body of an `event` frame.
pub fn event(kind: &str, room: &str, from: &str, text: &str) -> Bytes {
    let mut body = Body::new("event", 80 + room.len() + from.len() + text.len());
    body.str("kind", kind)
        .str("room", room)
        .str("from", from)
        .str("text", text)
        .u64("ts", now_ms());
    body.finish()
}

/// Starts a `reply` body: `"type":"reply","id":…,"ok":…`.
pub fn reply(id: Option<&MsgId>, ok: bool, capacity: usize) -> Body {
    let mut body = Body::new("reply", capacity);
    body.id(id).bool("ok", ok);
    body
}

/// A successful reply whose only field is `text`.
pub fn reply_text(id: Option<&MsgId>, text: &str) -> Bytes {
    let mut body = reply(id, true, 32 + text.len());
    body.str("text", text);
    body.finish()
}

/// A reply that carries a room: the `look` text and the room object (both
/// JSON already, as the room's owner caches them).
pub fn reply_room(id: Option<&MsgId>, look_text: &[u8], room_json: &[u8]) -> Bytes {
    let mut body = reply(id, true, 64 + room_json.len() + look_text.len());
    body.raw("text", look_text).raw("room", room_json);
    body.finish()
}

/// The reply to `inventory`: the text and the `items` list.
pub fn reply_inventory(id: Option<&MsgId>, text: &str, items: &[String]) -> Bytes {
    let mut list = Vec::new();
    put_str_array(&mut list, items.iter().map(String::as_str));
    let mut body = reply(id, true, 64 + text.len() + list.len());
    body.str("text", text).raw("items", &list);
    body.finish()
}

/// The reply to `who`: the text, the (capped) `players` list and the total.
pub fn reply_who(id: Option<&MsgId>, text: &str, names: &[Box<str>], total: usize) -> Bytes {
    let mut list = Vec::new();
    put_str_array(&mut list, names.iter().map(|n| &**n));
    let mut body = reply(id, true, 64 + text.len() + list.len());
    body.str("text", text)
        .raw("players", &list)
        .u64("players_total", total as u64);
    body.finish()
}

/// A failed command: `ok:false` with a machine `code` and a human `text`.
pub fn fail(id: Option<&MsgId>, code: &str, text: &str) -> Bytes {
    let mut body = reply(id, false, 48 + code.len() + text.len());
    body.str("code", code).str("text", text);
    body.finish()
}

/// What `welcome` tells a session that just logged in.
pub struct Welcome<'a> {
    pub name: &'a str,
    /// The token a client resumes or logs in again with.
    pub token: &'a str,
    pub shard: u16,
    pub host: &'a str,
    pub shards: u16,
    /// The room object, as JSON.
    pub room_json: &'a [u8],
}

/// The body of a `welcome` frame: the first frame of the sequence.
pub fn welcome(w: &Welcome<'_>) -> Bytes {
    let mut body = Body::new("welcome", 128 + w.room_json.len());
    body.str("name", w.name)
        .str("token", w.token)
        .u64("shard", u64::from(w.shard))
        .str("host", w.host)
        .u64("shards", u64::from(w.shards))
        .raw("room", w.room_json);
    body.finish()
}

/// The JSON text that opens a frame in the sequence, `{"seq":N,`, in front
/// of a shared body (which starts after its opening brace). Written by each
/// connection for itself, so the body stays shared by every recipient.
pub fn put_seq_prefix(out: &mut Vec<u8>, seq: u64) {
    out.extend_from_slice(b"{\"seq\":");
    out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
    out.push(b',');
}

/// The length of `put_seq_prefix`'s text for `seq`.
pub fn seq_prefix_len(seq: u64) -> usize {
    b"{\"seq\":,".len() + itoa::Buffer::new().format(seq).len()
}

/// The JSON text that opens a frame outside the sequence (`pong`, errors
/// before login): just the brace.
pub const PLAIN_PREFIX: &[u8] = b"{";

/// The body of a `resumed` frame (outside the sequence): `replayed` frames
/// of the sequence follow, with their original seq.
pub fn resumed(replayed: usize) -> Bytes {
    let mut body = Body::new("resumed", 32);
    body.u64("replayed", replayed as u64);
    body.finish()
}

/// The body of a `pong` frame (outside the sequence).
pub fn pong(id: Option<&MsgId>) -> Bytes {
    let mut body = Body::new("pong", 32);
    body.id(id);
    body.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(body: &Bytes) -> serde_json::Value {
        let mut text = b"{".to_vec();
        text.extend_from_slice(body);
        serde_json::from_slice(&text).expect("valid JSON")
    }

    #[test]
    fn strings_escape_to_valid_json() {
        let nasty = "quote\" back\\ nl\n tab\t bell\u{7} é 🦀";
        let v = whole(&event("say", "town:square", "bob", nasty));
        assert_eq!(v["text"], nasty);
        assert_eq!(v["type"], "event");
        assert_eq!(v["kind"], "say");
        assert!(v["ts"].as_u64().unwrap() > 1_600_000_000_000);
    }

    #[test]
    fn bodies_compose_with_ids_and_raw_fields() {
        let id = crate::protocol::decode::decode(&mut br#"{"type":"ping","id":"x1"}"#.to_vec())
            .map(|f| match f {
                crate::protocol::decode::ClientFrame::Ping { id } => id,
                _ => None,
            })
            .unwrap();
        let mut body = Body::new("reply", 64);
        body.id(id.as_ref())
            .bool("ok", true)
            .raw("room", br#"{"id":"a"}"#)
            .u64("n", 7);
        let v = whole(&body.finish());
        assert_eq!(v["id"], "x1");
        assert_eq!(v["ok"], true);
        assert_eq!(v["room"]["id"], "a");
        assert_eq!(v["n"], 7);
        let v = whole(&pong(None));
        assert!(v.get("id").is_none());
    }

    #[test]
    fn the_seq_prefix_and_a_shared_body_make_one_object() {
        for seq in [1, 9, 10, 12_345, u64::MAX] {
            let mut out = Vec::new();
            put_seq_prefix(&mut out, seq);
            assert_eq!(out.len(), seq_prefix_len(seq));
            out.extend_from_slice(&fail(None, "no_exit", "You cannot go up from here."));
            let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
            assert_eq!(v["seq"], seq);
            assert_eq!(v["type"], "reply");
            assert_eq!(v["ok"], false);
            assert_eq!(v["code"], "no_exit");
        }
    }

    #[test]
    fn welcome_carries_where_the_session_landed() {
        let body = welcome(&Welcome {
            name: "bob",
            token: "g.abc",
            shard: 1,
            host: "a",
            shards: 2,
            room_json: br#"{"id":"town:square"}"#,
        });
        let v = whole(&body);
        assert_eq!(v["type"], "welcome");
        assert_eq!(v["shard"], 1);
        assert_eq!(v["host"], "a");
        assert_eq!(v["room"]["id"], "town:square");
    }
}
