//! The WebSocket frame layer of a server connection.
//!
//! tungstenite parses and formats frame headers; buffers are ours. A session
//! keeps no read buffer of its own while idle: bytes are read into the shard's
//! scratch buffer and only an incomplete frame's tail is kept per connection.
//! That is what holds an idle session to a few hundred bytes.

use std::io::Cursor;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use crate::protocol::close;

/// The kinds of frame a client may send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Text,
    Binary,
    Continuation,
    Close,
    Ping,
    Pong,
}

/// One parsed client frame: where its (unmasked) payload lies in the buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub fin: bool,
    pub payload_start: usize,
    pub payload_end: usize,
}

/// A violation that ends the connection with the given close code.
#[derive(Debug, PartialEq, Eq)]
pub struct Violation {
    pub code: u16,
    pub reason: &'static str,
}

/// Parses the frame at the start of `buf`, unmasking its payload in place.
/// `Ok(None)`: the frame is not complete yet. A payload over
/// `payload_bytes_max` is refused from its header alone, before it arrives.
pub fn parse_frame(buf: &mut [u8], payload_bytes_max: usize) -> Result<Option<Frame>, Violation> {
    let mut cursor = Cursor::new(&*buf);
    let (header, len) = match FrameHeader::parse(&mut cursor) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(None),
        Err(_) => return Err(protocol_error("malformed frame header")),
    };
    let header_len = cursor.position() as usize;
    if header.rsv1 || header.rsv2 || header.rsv3 {
        return Err(protocol_error("reserved bits set without an extension"));
    }
    let kind = match header.opcode {
        OpCode::Data(Data::Text) => Kind::Text,
        OpCode::Data(Data::Binary) => Kind::Binary,
        OpCode::Data(Data::Continue) => Kind::Continuation,
        OpCode::Control(Control::Close) => Kind::Close,
        OpCode::Control(Control::Ping) => Kind::Ping,
        OpCode::Control(Control::Pong) => Kind::Pong,
        _ => return Err(protocol_error("reserved opcode")),
    };
    let is_control = matches!(kind, Kind::Close | Kind::Ping | Kind::Pong);
    if is_control && (len > 125 || !header.is_final) {
        return Err(protocol_error(
            "control frames must be final and at most 125 bytes",
        ));
    }
    let Some(mask) = header.mask else {
        return Err(protocol_error("client frames must be masked"));
    };
    if len > payload_bytes_max as u64 {
        return Err(Violation {
            code: close::TOO_BIG,
            reason: "message too big",
        });
    }
    let payload_end = header_len + len as usize;
    if buf.len() < payload_end {
        return Ok(None);
    }
    apply_mask(&mut buf[header_len..payload_end], mask);
    Ok(Some(Frame {
        kind,
        fin: header.is_final,
        payload_start: header_len,
        payload_end,
    }))
}

fn protocol_error(reason: &'static str) -> Violation {
    Violation {
        code: close::PROTOCOL_ERROR,
        reason,
    }
}

/// XORs `buf` with the 4-byte client mask, a word at a time.
pub fn apply_mask(buf: &mut [u8], mask: [u8; 4]) {
    let mask_word = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_ne_bytes(word) ^ mask_word;
        chunk.copy_from_slice(&x.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// Opcode bytes of the frames the server sends.
pub mod opcode {
    pub const TEXT: u8 = 0x1;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
    pub const PONG: u8 = 0xA;
}

/// Appends an unmasked, final server frame header for a payload of `len` bytes.
pub fn put_header(out: &mut Vec<u8>, opcode: u8, len: usize) {
    let code = OpCode::from(opcode);
    let header = FrameHeader {
        is_final: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode: code,
        mask: None,
    };
    // Writing into a Vec cannot fail.
    let _ = header.format(len as u64, out);
}

/// Appends a whole server close frame with a code and a short reason.
pub fn put_close(out: &mut Vec<u8>, code: u16, reason: &str) {
    // Control payloads are capped at 125 bytes: 2 for the code, the rest reason.
    let reason = truncate_utf8(reason, 123);
    put_header(out, opcode::CLOSE, 2 + reason.len());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
}

fn truncate_utf8(s: &str, bytes_max: usize) -> &str {
    if s.len() <= bytes_max {
        return s;
    }
    let mut end = bytes_max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The bytes of a WebSocket header for a payload of `len`, without writing it.
pub fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client_frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=65535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    #[test]
    fn a_masked_text_frame_is_unmasked_in_place() {
        let mut buf = client_frame(0x1, true, br#"{"type":"ping"}"#);
        let frame = parse_frame(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(frame.kind, Kind::Text);
        assert!(frame.fin);
        assert_eq!(
            &buf[frame.payload_start..frame.payload_end],
            br#"{"type":"ping"}"#
        );
    }

    #[test]
    fn an_incomplete_frame_waits_for_more() {
        let full = client_frame(0x1, true, &[b'x'; 300]);
        for cut in [1, 2, 5, 8, 100, full.len() - 1] {
            let mut part = full[..cut].to_vec();
            assert_eq!(parse_frame(&mut part, 1024), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_from_its_header() {
        let full = client_frame(0x1, true, &vec![b'x'; 70_000]);
        let mut head = full[..14].to_vec();
        let err = parse_frame(&mut head, 64 * 1024).unwrap_err();
        assert_eq!(err.code, close::TOO_BIG);
    }

    #[test]
    fn unmasked_frames_and_reserved_bits_are_protocol_errors() {
        let mut unmasked = vec![0x81, 0x02, b'h', b'i'];
        assert_eq!(
            parse_frame(&mut unmasked, 1024).unwrap_err().code,
            close::PROTOCOL_ERROR
        );
        let mut rsv = client_frame(0x1, true, b"hi");
        rsv[0] |= 0x40;
        assert_eq!(
            parse_frame(&mut rsv, 1024).unwrap_err().code,
            close::PROTOCOL_ERROR
        );
        let mut long_ping = client_frame(0x9, true, &[0; 126]);
        assert_eq!(
            parse_frame(&mut long_ping, 1024).unwrap_err().code,
            close::PROTOCOL_ERROR
        );
    }

    #[test]
    fn control_and_binary_kinds_are_recognised() {
        for (op, kind) in [
            (0x2, Kind::Binary),
            (0x8, Kind::Close),
            (0x9, Kind::Ping),
            (0xA, Kind::Pong),
            (0x0, Kind::Continuation),
        ] {
            let mut buf = client_frame(op, true, b"");
            assert_eq!(parse_frame(&mut buf, 1024).unwrap().unwrap().kind, kind);
        }
    }

    #[test]
    fn server_headers_match_their_computed_length() {
        for len in [0, 125, 126, 65535, 65536] {
            let mut out = Vec::new();
            put_header(&mut out, opcode::TEXT, len);
            assert_eq!(out.len(), header_len(len), "len {len}");
            assert_eq!(out[0], 0x81);
        }
        let mut out = Vec::new();
        put_close(&mut out, close::TRY_AGAIN_LATER, "slow");
        assert_eq!(out, [0x88, 6, 0x03, 0xF5, b's', b'l', b'o', b'w']);
    }

    #[test]
    fn masking_matches_the_bytewise_definition() {
        let mask = [1, 2, 3, 4];
        let data: Vec<u8> = (0..37).collect();
        let mut fast = data.clone();
        apply_mask(&mut fast, mask);
        let slow: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(fast, slow);
    }
}
