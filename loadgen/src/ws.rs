//! The client side of WebSocket (RFC 6455), as little of it as a load
//! generator needs: the opening handshake, masked text frames out, unmasked
//! frames in, close, ping and pong.
//!
//! Why by hand: a load client here pays most of its CPU per received message,
//! so it reads many frames per syscall into one buffer and decodes them in
//! place, borrowing payloads instead of copying each into its own message.

use std::fmt;

/// The largest message the client accepts from a server, in bytes. Server
/// frames are small JSON objects (rooms cap their lists); anything this big is
/// a broken server, and a bound keeps a broken server from eating our memory.
pub const MESSAGE_BYTES_MAX: usize = 1 << 20;

/// The largest HTTP handshake response we wait for, in bytes.
pub const HANDSHAKE_BYTES_MAX: usize = 8 * 1024;

/// WebSocket close code a server uses for a reader that fell too far behind.
pub const CLOSE_TRY_AGAIN_LATER: u16 = 1013;

/// Frame opcodes the client understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation,
    Text,
    Binary,
    Close,
    Ping,
    Pong,
}

impl Opcode {
    fn from_bits(bits: u8) -> Option<Opcode> {
        match bits {
            0x0 => Some(Opcode::Continuation),
            0x1 => Some(Opcode::Text),
            0x2 => Some(Opcode::Binary),
            0x8 => Some(Opcode::Close),
            0x9 => Some(Opcode::Ping),
            0xA => Some(Opcode::Pong),
            _ => None,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Opcode::Continuation => 0x0,
            Opcode::Text => 0x1,
            Opcode::Binary => 0x2,
            Opcode::Close => 0x8,
            Opcode::Ping => 0x9,
            Opcode::Pong => 0xA,
        }
    }
}

/// One decoded server frame; the payload borrows the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    pub fin: bool,
    pub opcode: Opcode,
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// The close code of a close frame (1005, "no status", when absent).
    pub fn close_code(&self) -> u16 {
        match self.payload {
            [hi, lo, ..] => u16::from_be_bytes([*hi, *lo]),
            _ => 1005,
        }
    }
}

/// Why a server's bytes could not be decoded; the connection ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    ReservedBits,
    UnknownOpcode(u8),
    MaskedServerFrame,
    TooLarge(u64),
    BadControlFrame,
    BadHandshake(String),
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedBits => write!(f, "reserved bits set"),
            ProtocolError::UnknownOpcode(op) => write!(f, "unknown opcode {op:#x}"),
            ProtocolError::MaskedServerFrame => write!(f, "server frame is masked"),
            ProtocolError::TooLarge(len) => write!(f, "frame of {len} bytes is too large"),
            ProtocolError::BadControlFrame => write!(f, "bad control frame"),
            ProtocolError::BadHandshake(why) => write!(f, "bad handshake: {why}"),
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Decodes the first frame of `buf`. `Ok(None)` means the frame is not
/// complete yet: keep the bytes and read more. On success returns the frame
/// and how many bytes of `buf` it took.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Frame<'_>, usize)>, ProtocolError> {
    let [b0, b1, rest @ ..] = buf else {
        return Ok(None);
    };
    if b0 & 0x70 != 0 {
        return Err(ProtocolError::ReservedBits);
    }
    let opcode = Opcode::from_bits(b0 & 0x0F).ok_or(ProtocolError::UnknownOpcode(b0 & 0x0F))?;
    if b1 & 0x80 != 0 {
        return Err(ProtocolError::MaskedServerFrame);
    }
    let fin = b0 & 0x80 != 0;
    let (len, header_len) = match b1 & 0x7F {
        126 => match rest {
            [a, b, ..] => (u64::from(u16::from_be_bytes([*a, *b])), 4),
            _ => return Ok(None),
        },
        127 => match rest.get(..8) {
            Some(bytes) => {
                let mut be = [0u8; 8];
                be.copy_from_slice(bytes);
                (u64::from_be_bytes(be), 10)
            }
            None => return Ok(None),
        },
        short => (u64::from(short), 2),
    };
    let is_control = matches!(opcode, Opcode::Close | Opcode::Ping | Opcode::Pong);
    if is_control && (!fin || len > 125) {
        return Err(ProtocolError::BadControlFrame);
    }
    if len > MESSAGE_BYTES_MAX as u64 {
        return Err(ProtocolError::TooLarge(len));
    }
    // The bound above makes this cast lossless.
    let total = header_len + len as usize;
    match buf.get(header_len..total) {
        Some(payload) => Ok(Some((
            Frame {
                fin,
                opcode,
                payload,
            },
            total,
        ))),
        None => Ok(None),
    }
}

/// Appends one masked client frame to `out`. Clients must mask (RFC 6455
/// §5.3); the key need not be unpredictable for a load generator, only
/// present, so callers pass a cheap pseudo-random one.
pub fn encode_frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8], mask: [u8; 4]) {
    out.push(0x80 | opcode.bits());
    let len = payload.len();
    if len < 126 {
        out.push(0x80 | len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(0x80 | 126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0x80 | 127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(&mask);
    let start = out.len();
    out.extend_from_slice(payload);
    apply_mask(&mut out[start..], mask);
}

/// XORs `data` with the repeating 4-byte `mask` (masking and unmasking are
/// the same operation).
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    let word = u32::from_ne_bytes(mask);
    let mut chunks = data.chunks_exact_mut(4);
    for chunk in &mut chunks {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(chunk);
        chunk.copy_from_slice(&(u32::from_ne_bytes(bytes) ^ word).to_ne_bytes());
    }
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i];
    }
}

/// Appends a close frame with `code` to `out`.
pub fn encode_close(out: &mut Vec<u8>, code: u16, mask: [u8; 4]) {
    encode_frame(out, Opcode::Close, &code.to_be_bytes(), mask);
}

/// The HTTP request that opens a WebSocket session at `path` on `host`.
pub fn handshake_request(host: &str, path: &str, key: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// A fresh random `Sec-WebSocket-Key`.
pub fn handshake_key() -> String {
    tungstenite::handshake::client::generate_key()
}

/// Checks the server's handshake response in `buf`. `Ok(None)` means the
/// header is not complete yet; `Ok(Some(n))` means it was a valid 101 whose
/// header took `n` bytes (frames may follow in the same buffer).
pub fn check_handshake_response(buf: &[u8], key: &str) -> Result<Option<usize>, ProtocolError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let header_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= HANDSHAKE_BYTES_MAX => {
            return Err(ProtocolError::BadHandshake("response too large".into()))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ProtocolError::BadHandshake(e.to_string())),
    };
    if response.code != Some(101) {
        return Err(ProtocolError::BadHandshake(format!(
            "status {} {}",
            response.code.unwrap_or(0),
            response.reason.unwrap_or("")
        )));
    }
    let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let accepted = response.headers.iter().any(|h| {
        h.name.eq_ignore_ascii_case("sec-websocket-accept") && h.value == expected.as_bytes()
    });
    if !accepted {
        return Err(ProtocolError::BadHandshake(
            "wrong Sec-WebSocket-Accept".into(),
        ));
    }
    Ok(Some(header_len))
}

/// A carry buffer that grew past this is released once empty, so one big
/// frame does not pin memory in an otherwise idle session.
const CARRY_KEEP_BYTES: usize = 16 * 1024;

/// What the server said, message by message.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// A complete text (or binary) message, reassembled if fragmented.
    Message(&'a [u8]),
    /// A ping whose payload the pong must echo.
    Ping(&'a [u8]),
}

/// The receiving side of one connection: turns the bytes of successive reads
/// into messages. Reads land in a buffer shared by many connections; only the
/// tail of a frame that a read cut in two is kept here, so an idle session
/// costs next to nothing.
#[derive(Debug, Default)]
pub struct Inbox {
    carry: Vec<u8>,
    fragments: Vec<u8>,
}

impl Inbox {
    /// Bytes received but not yet decoded (the handshake response reader
    /// uses it directly, before any frame).
    pub fn carry_mut(&mut self) -> &mut Vec<u8> {
        &mut self.carry
    }

    /// Decodes every complete frame of the carried bytes plus `bytes`, in
    /// order, calling `on` for each message and ping. Returns the close code
    /// when a close frame ends the stream (nothing after it is decoded).
    pub fn feed(
        &mut self,
        bytes: &[u8],
        mut on: impl FnMut(Incoming<'_>),
    ) -> Result<Option<u16>, ProtocolError> {
        let result = if self.carry.is_empty() {
            let (used, closed) = decode_all(&mut self.fragments, bytes, &mut on)?;
            if closed.is_none() {
                self.carry.extend_from_slice(&bytes[used..]);
            }
            closed
        } else {
            self.carry.extend_from_slice(bytes);
            let (used, closed) = decode_all(&mut self.fragments, &self.carry, &mut on)?;
            self.carry.drain(..used);
            closed
        };
        if self.carry.is_empty() && self.carry.capacity() > CARRY_KEEP_BYTES {
            self.carry = Vec::new();
        }
        Ok(result)
    }
}

/// Decodes the complete frames at the start of `buf`; returns the bytes they
/// took and the close code if a close frame came.
fn decode_all(
    fragments: &mut Vec<u8>,
    buf: &[u8],
    on: &mut impl FnMut(Incoming<'_>),
) -> Result<(usize, Option<u16>), ProtocolError> {
    let mut at = 0;
    while let Some((frame, used)) = decode_frame(&buf[at..])? {
        at += used;
        match frame.opcode {
            Opcode::Text | Opcode::Binary if frame.fin => on(Incoming::Message(frame.payload)),
            Opcode::Text | Opcode::Binary => {
                fragments.clear();
                fragments.extend_from_slice(frame.payload);
            }
            Opcode::Continuation => {
                if fragments.len() + frame.payload.len() > MESSAGE_BYTES_MAX {
                    return Err(ProtocolError::TooLarge(
                        (fragments.len() + frame.payload.len()) as u64,
                    ));
                }
                fragments.extend_from_slice(frame.payload);
                if frame.fin {
                    on(Incoming::Message(fragments));
                    fragments.clear();
                }
            }
            Opcode::Ping => on(Incoming::Ping(frame.payload)),
            Opcode::Pong => {}
            Opcode::Close => return Ok((at, Some(frame.close_code()))),
        }
    }
    Ok((at, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        if payload.len() < 126 {
            out.push(payload.len() as u8);
        } else {
            out.push(126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(payload);
        out
    }

    fn feed_all(inbox: &mut Inbox, chunks: &[&[u8]]) -> (Vec<String>, Option<u16>) {
        let mut seen = Vec::new();
        let mut closed = None;
        for chunk in chunks {
            let result = inbox.feed(chunk, |incoming| match incoming {
                Incoming::Message(m) => seen.push(String::from_utf8_lossy(m).into_owned()),
                Incoming::Ping(p) => seen.push(format!("ping:{}", String::from_utf8_lossy(p))),
            });
            closed = closed.or(result.expect("valid"));
        }
        (seen, closed)
    }

    #[test]
    fn frames_fed_one_byte_at_a_time_come_out_whole() {
        let mut stream = server_frame(0x1, b"one");
        stream.extend(server_frame(0x1, &[b'2'; 130]));
        stream.extend(server_frame(0x1, b"three"));
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        let mut inbox = Inbox::default();
        let (seen, closed) = feed_all(&mut inbox, &bytes);
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[0], "one");
        assert_eq!(seen[1].len(), 130);
        assert_eq!(seen[2], "three");
        assert_eq!(closed, None);
        assert!(inbox.carry_mut().is_empty());
    }

    #[test]
    fn fragmented_messages_are_reassembled_around_a_ping() {
        let mut stream = vec![0x01, 3];
        stream.extend_from_slice(b"hel");
        stream.extend(server_frame(0x9, b"p"));
        stream.extend([0x00, 2]);
        stream.extend_from_slice(b"lo");
        stream.extend([0x80, 6]);
        stream.extend_from_slice(b" world");
        let mut inbox = Inbox::default();
        let (seen, _) = feed_all(&mut inbox, &[&stream[..4], &stream[4..9], &stream[9..]]);
        assert_eq!(seen, vec!["ping:p".to_string(), "hello world".to_string()]);
    }

    #[test]
    fn a_close_frame_ends_the_stream_with_its_code() {
        let mut stream = server_frame(0x1, b"reply");
        stream.extend(server_frame(0x8, &1000u16.to_be_bytes()));
        stream.extend(server_frame(0x1, b"after close"));
        let mut inbox = Inbox::default();
        let (seen, closed) = feed_all(&mut inbox, &[&stream]);
        assert_eq!(seen, vec!["reply".to_string()]);
        assert_eq!(closed, Some(1000));
    }

    #[test]
    fn client_frames_are_masked_and_unmask_to_the_payload() {
        let mask = [1, 2, 3, 4];
        let mut out = Vec::new();
        encode_frame(&mut out, Opcode::Text, b"hello world", mask);
        assert_eq!(out[0], 0x81);
        assert_eq!(out[1], 0x80 | 11);
        assert_eq!(&out[2..6], &mask);
        let mut body = out[6..].to_vec();
        assert_ne!(&body, b"hello world");
        apply_mask(&mut body, mask);
        assert_eq!(&body, b"hello world");
    }

    #[test]
    fn long_client_frames_use_the_16_bit_length() {
        let payload = vec![b'x'; 300];
        let mut out = Vec::new();
        encode_frame(&mut out, Opcode::Text, &payload, [9, 9, 9, 9]);
        assert_eq!(out[1], 0x80 | 126);
        assert_eq!(u16::from_be_bytes([out[2], out[3]]), 300);
        assert_eq!(out.len(), 4 + 4 + 300);
    }

    #[test]
    fn several_frames_in_one_read_decode_in_order() {
        let mut buf = server_frame(0x1, b"{\"a\":1}");
        buf.extend(server_frame(0x1, &[b'y'; 200]));
        buf.extend(server_frame(0x1, b"{\"b\":2}"));
        let mut at = 0;
        let mut payloads = Vec::new();
        while let Some((frame, used)) = decode_frame(&buf[at..]).expect("valid") {
            payloads.push(frame.payload.len());
            at += used;
        }
        assert_eq!(payloads, vec![7, 200, 7]);
        assert_eq!(at, buf.len());
    }

    #[test]
    fn a_frame_split_across_reads_waits_for_the_rest() {
        let buf = server_frame(0x1, &[b'z'; 300]);
        for cut in 0..buf.len() {
            assert_eq!(
                decode_frame(&buf[..cut]).expect("valid"),
                None,
                "cut at {cut}"
            );
        }
        let (frame, used) = decode_frame(&buf).expect("valid").expect("complete");
        assert_eq!(used, buf.len());
        assert_eq!(frame.payload.len(), 300);
    }

    #[test]
    fn close_frames_carry_their_code() {
        let buf = server_frame(0x8, &1013u16.to_be_bytes());
        let (frame, _) = decode_frame(&buf).expect("valid").expect("complete");
        assert_eq!(frame.opcode, Opcode::Close);
        assert_eq!(frame.close_code(), CLOSE_TRY_AGAIN_LATER);
        let empty = server_frame(0x8, b"");
        let (frame, _) = decode_frame(&empty).expect("valid").expect("complete");
        assert_eq!(frame.close_code(), 1005);
    }

    #[test]
    fn masked_or_oversized_server_frames_are_refused() {
        assert_eq!(
            decode_frame(&[0x81, 0x81, 0, 0, 0, 0, b'a']),
            Err(ProtocolError::MaskedServerFrame)
        );
        let mut huge = vec![0x81, 127];
        huge.extend_from_slice(&(u64::MAX).to_be_bytes());
        assert!(matches!(
            decode_frame(&huge),
            Err(ProtocolError::TooLarge(_))
        ));
        assert_eq!(
            decode_frame(&[0x88, 126, 0, 200]),
            Err(ProtocolError::BadControlFrame)
        );
    }

    #[test]
    fn handshake_response_is_checked_against_the_key() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let good =
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(
            check_handshake_response(&good.as_bytes()[..20], key),
            Ok(None)
        );
        assert_eq!(
            check_handshake_response(good.as_bytes(), key),
            Ok(Some(good.len()))
        );
        let wrong = good.replace("s3pP", "AAAA");
        assert!(check_handshake_response(wrong.as_bytes(), key).is_err());
        let refused = "HTTP/1.1 503 Service Unavailable\r\n\r\n";
        assert!(check_handshake_response(refused.as_bytes(), key).is_err());
    }
}
