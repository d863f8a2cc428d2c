//! From bytes read to whole client messages: frames split across reads
//! (the incomplete tail kept in the session), messages fragmented over
//! several frames and their continuations, control frames (ping, pong,
//! close), the UTF-8 check of text, and the hand-over of each text message
//! to the shard (`Shard::on_text`). A protocol violation comes back as a
//! `ws::Violation`, which closes the connection with its code.

use super::ws::{self, Kind};
use crate::protocol::close;
use crate::shard::session::Out;
use crate::shard::Shard;

/// Handles bytes just read: whole frames now, an incomplete tail kept.
pub(super) fn process(sh: &mut Shard, slot: u32, data: &mut [u8]) -> Result<(), ws::Violation> {
    let Some(session) = sh.sessions.by_slot(slot) else {
        return Ok(());
    };
    if session.partial.is_empty() {
        let used = consume(sh, slot, data)?;
        if used < data.len() {
            if let Some(session) = sh.sessions.by_slot(slot) {
                session.partial.extend_from_slice(&data[used..]);
            }
        }
        return Ok(());
    }
    let mut buf = std::mem::take(&mut session.partial);
    buf.extend_from_slice(data);
    let used = consume(sh, slot, &mut buf)?;
    buf.drain(..used);
    if let Some(session) = sh.sessions.by_slot(slot) {
        session.partial = if buf.is_empty() { Vec::new() } else { buf };
    }
    Ok(())
}

/// Handles every complete frame at the start of `buf`; returns the bytes used.
pub(super) fn consume(sh: &mut Shard, slot: u32, buf: &mut [u8]) -> Result<usize, ws::Violation> {
    let frame_bytes_max = sh.config.limits.frame_bytes_max;
    let mut pos = 0;
    while pos < buf.len() {
        if sh
            .sessions
            .by_slot(slot)
            .is_some_and(|s| s.resuming.is_some())
        {
            // Whatever follows a `resume` is for the session it resumes.
            break;
        }
        let Some(frame) = ws::parse_frame(&mut buf[pos..], frame_bytes_max)? else {
            break;
        };
        let start = pos + frame.payload_start;
        let end = pos + frame.payload_end;
        pos = end;
        on_frame(sh, slot, frame.kind, frame.fin, &mut buf[start..end])?;
        let closing = sh.sessions.by_slot(slot).is_none_or(|s| s.close.is_some());
        if closing {
            return Ok(buf.len());
        }
    }
    Ok(pos)
}

/// One client frame: control frames answered here, data frames passed on
/// whole or gathered into `Session::fragments` until their last part.
fn on_frame(
    sh: &mut Shard,
    slot: u32,
    kind: Kind,
    fin: bool,
    payload: &mut [u8],
) -> Result<(), ws::Violation> {
    let now = sh.now_ms();
    let frame_bytes_max = sh.config.limits.frame_bytes_max;
    let bytes_max = sh.config.limits.outbound_bytes_max;
    let Some(session) = sh.sessions.by_slot(slot) else {
        return Ok(());
    };
    session.heard_ms = now;
    match kind {
        Kind::Ping => {
            if !session.push(Out::Pong(bytes::Bytes::copy_from_slice(payload)), bytes_max) {
                session.request_close(close::SLOW_READER);
            }
            Ok(())
        }
        Kind::Pong => {
            session.pings_missed = 0;
            Ok(())
        }
        Kind::Close => {
            session.request_close(close::BYE);
            Ok(())
        }
        Kind::Text | Kind::Binary => {
            if session.fragments.is_some() {
                return Err(ws::Violation {
                    code: close::PROTOCOL_ERROR,
                    reason: "new message inside a fragmented one",
                });
            }
            if !fin {
                // The first byte records the kind: 1 text, 0 binary.
                let mut fragments = Vec::with_capacity(payload.len() + 1);
                fragments.push(u8::from(kind == Kind::Text));
                fragments.extend_from_slice(payload);
                session.fragments = Some(fragments);
                return Ok(());
            }
            message(sh, slot, kind == Kind::Text, payload)
        }
        Kind::Continuation => {
            let Some(fragments) = session.fragments.as_mut() else {
                return Err(ws::Violation {
                    code: close::PROTOCOL_ERROR,
                    reason: "continuation without a message",
                });
            };
            if fragments.len() - 1 + payload.len() > frame_bytes_max {
                return Err(ws::Violation {
                    code: close::TOO_BIG,
                    reason: "message too big",
                });
            }
            fragments.extend_from_slice(payload);
            if !fin {
                return Ok(());
            }
            let Some(mut whole) = session.fragments.take() else {
                return Ok(());
            };
            let is_text = whole[0] == 1;
            message(sh, slot, is_text, &mut whole[1..])
        }
    }
}

/// A complete message: text goes to the protocol, binary is refused.
fn message(
    sh: &mut Shard,
    slot: u32,
    is_text: bool,
    payload: &mut [u8],
) -> Result<(), ws::Violation> {
    if !is_text {
        sh.send_error(
            slot,
            "unsupported",
            "binary frames are not supported; send JSON text frames",
        );
        return Ok(());
    }
    if simdutf8::basic::from_utf8(payload).is_err() {
        return Err(ws::Violation {
            code: close::INVALID_PAYLOAD,
            reason: "text frame is not valid UTF-8",
        });
    }
    sh.on_text(slot, payload);
    Ok(())
}
