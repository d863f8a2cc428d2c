//! The wire protocol of DESIGN §4: JSON text frames over WebSocket.

pub mod addr;
pub mod close;
pub mod decode;
pub mod encode;
pub mod names;

/// A client's `id`, kept as the JSON text to echo back exactly. Stored inline
/// so that routing a command to another shard allocates nothing for it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct MsgId {
    len: u8,
    bytes: [u8; MsgId::BYTES_MAX],
}

impl MsgId {
    /// The longest id, as JSON text, a client may send.
    pub const BYTES_MAX: usize = 46;

    /// An id from its JSON text exactly as it was received (a number, or a
    /// quoted and escaped string), as the cross-host wire carries it. The
    /// text must be UTF-8 (`as_json` shows anything else as `null`); `None`
    /// if it is longer than [`MsgId::BYTES_MAX`].
    pub fn from_json_text(text: &[u8]) -> Option<MsgId> {
        if text.len() > Self::BYTES_MAX {
            return None;
        }
        let mut bytes = [0u8; Self::BYTES_MAX];
        bytes[..text.len()].copy_from_slice(text);
        Some(MsgId {
            len: text.len() as u8,
            bytes,
        })
    }

    fn from_int(n: impl itoa::Integer) -> Option<MsgId> {
        Self::from_json_text(itoa::Buffer::new().format(n).as_bytes())
    }

    fn from_float(f: f64) -> Option<MsgId> {
        Self::from_json_text(f.to_string().as_bytes())
    }

    fn from_str_value(s: &str) -> Option<MsgId> {
        if s.len() > Self::BYTES_MAX {
            return None;
        }
        let mut text = Vec::with_capacity(s.len() + 2);
        encode::put_str(&mut text, s);
        Self::from_json_text(&text)
    }

    /// The id as JSON text (a number, or a quoted and escaped string).
    pub fn as_json(&self) -> &str {
        // Built only from `to_string` of a number or from escaped UTF-8.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("null")
    }
}

impl std::fmt::Debug for MsgId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_json())
    }
}
