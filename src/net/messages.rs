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
    let mut partial = std::mem::take(&mut session.partial);
    let read = after_partial(&mut partial, data, |buf| consume(sh, slot, buf));
    if let Some(session) = sh.sessions.by_slot(slot) {
        // A violation ends the connection: then nothing is worth keeping.
        session.partial = if read.is_ok() { partial } else { Vec::new() };
    }
    read
}

/// Handles every complete frame at the start of `buf`; returns the bytes used.
fn consume(sh: &mut Shard, slot: u32, buf: &mut [u8]) -> Result<usize, ws::Violation> {
    let frame_bytes_max = sh.config.limits.frame_bytes_max;
    each_frame(buf, frame_bytes_max, |kind, fin, payload| {
        on_frame(sh, slot, kind, fin, payload)?;
        Ok(match sh.sessions.by_slot(slot) {
            // A closing connection reads no further.
            None => Next::Close,
            Some(s) if s.close.is_some() => Next::Close,
            // Whatever follows a `resume` is for the session it resumes.
            Some(s) if s.resuming.is_some() => Next::Pause,
            Some(_) => Next::More,
        })
    })
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
            session.acked(payload);
            Ok(())
        }
        Kind::Close => {
            close_payload_ok(payload)?;
            session.request_close(close::BYE);
            Ok(())
        }
        Kind::Text | Kind::Binary | Kind::Continuation => {
            match gather(&mut session.fragments, kind, fin, payload, frame_bytes_max)? {
                Part::Kept => Ok(()),
                Part::Whole { is_text, payload } => message(sh, slot, is_text, payload),
                Part::Gathered(mut whole) => message(sh, slot, whole[0] == 1, &mut whole[1..]),
            }
        }
    }
}

/// Checks a client's close frame (RFC 6455 §5.5.1, §7.4): empty, or a
/// status code a peer may send followed by a UTF-8 reason. Any other close
/// is answered as the violation it is, not with a plain goodbye.
fn close_payload_ok(payload: &[u8]) -> Result<(), ws::Violation> {
    let (code, reason) = match payload {
        [] => return Ok(()),
        [_] => {
            return Err(ws::Violation {
                code: close::PROTOCOL_ERROR,
                reason: "close frame with a 1-byte payload",
            })
        }
        [hi, lo, reason @ ..] => (u16::from_be_bytes([*hi, *lo]), reason),
    };
    // 1004-1006 and 1015 are reserved, never sent; 0-999 and 1016-2999 unused.
    if !matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
        return Err(ws::Violation {
            code: close::PROTOCOL_ERROR,
            reason: "close frame with an invalid status code",
        });
    }
    if simdutf8::basic::from_utf8(reason).is_err() {
        return Err(ws::Violation {
            code: close::INVALID_PAYLOAD,
            reason: "close reason is not valid UTF-8",
        });
    }
    Ok(())
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

/// Runs `consume` over the bytes kept from earlier reads followed by `data`,
/// and keeps in `partial` what it left: the start of a frame, never more than
/// a header and `frame_bytes_max`, since `parse_frame` refuses a longer frame
/// from its header.
fn after_partial(
    partial: &mut Vec<u8>,
    data: &mut [u8],
    consume: impl FnOnce(&mut [u8]) -> Result<usize, ws::Violation>,
) -> Result<(), ws::Violation> {
    if partial.is_empty() {
        // The common case: frames straight from the read buffer, no copy.
        let used = consume(data)?;
        partial.extend_from_slice(&data[used..]);
        return Ok(());
    }
    partial.extend_from_slice(data);
    let used = consume(partial)?;
    partial.drain(..used);
    if partial.is_empty() {
        // An idle session keeps no buffer (ws.rs).
        *partial = Vec::new();
    }
    Ok(())
}

/// Calls `on_frame` with every complete frame at the start of `buf`, its
/// payload unmasked, while it answers `true`; returns the bytes used. After
/// a `false` (the connection is closing) the rest of `buf` counts as used.
fn each_frame(
    buf: &mut [u8],
    frame_bytes_max: usize,
    mut on_frame: impl FnMut(Kind, bool, &mut [u8]) -> Result<Next, ws::Violation>,
) -> Result<usize, ws::Violation> {
    let mut pos = 0;
    while pos < buf.len() {
        let Some(frame) = ws::parse_frame(&mut buf[pos..], frame_bytes_max)? else {
            break;
        };
        let start = pos + frame.payload_start;
        let end = pos + frame.payload_end;
        pos = end;
        match on_frame(frame.kind, frame.fin, &mut buf[start..end])? {
            Next::More => {}
            Next::Close => return Ok(buf.len()),
            Next::Pause => return Ok(pos),
        }
    }
    Ok(pos)
}

/// What to do after a frame.
enum Next {
    /// Go on with the next frame.
    More,
    /// The connection is closing: the rest is dropped.
    Close,
    /// Stop here and keep the rest for later (a `resume` is under way).
    Pause,
}

/// Where a data frame leaves its message.
enum Part<'p> {
    /// A fragment, kept until the message's last one.
    Kept,
    /// A message in one frame.
    Whole {
        is_text: bool,
        payload: &'p mut [u8],
    },
    /// The last fragment came: the message gathered, after one byte that
    /// records its kind (1 text, 0 binary).
    Gathered(Vec<u8>),
}

/// Places a data frame (text, binary or continuation) in its message,
/// gathering fragments in `fragments` up to `bytes_max` bytes in all.
fn gather<'p>(
    fragments: &mut Option<Vec<u8>>,
    kind: Kind,
    fin: bool,
    payload: &'p mut [u8],
    bytes_max: usize,
) -> Result<Part<'p>, ws::Violation> {
    if kind != Kind::Continuation {
        if fragments.is_some() {
            return Err(ws::Violation {
                code: close::PROTOCOL_ERROR,
                reason: "new message inside a fragmented one",
            });
        }
        let is_text = kind == Kind::Text;
        if fin {
            return Ok(Part::Whole { is_text, payload });
        }
        let mut first = Vec::with_capacity(payload.len() + 1);
        first.push(u8::from(is_text));
        first.extend_from_slice(payload);
        *fragments = Some(first);
        return Ok(Part::Kept);
    }
    let Some(mut gathered) = fragments.take() else {
        return Err(ws::Violation {
            code: close::PROTOCOL_ERROR,
            reason: "continuation without a message",
        });
    };
    if gathered.len() - 1 + payload.len() > bytes_max {
        return Err(ws::Violation {
            code: close::TOO_BIG,
            reason: "message too big",
        });
    }
    gathered.extend_from_slice(payload);
    if fin {
        return Ok(Part::Gathered(gathered));
    }
    *fragments = Some(gathered);
    Ok(Part::Kept)
}

/// Properties of the pure parts of the read path (issue 11, "Robust
/// decoding"): any bytes, split into reads anywhere, go through
/// `after_partial`, `each_frame` and `gather` as `process` drives them.
/// The control frames are recorded instead of answered (that part needs a
/// shard; tests/decoding_properties.rs drives it over a real socket).
/// `PROPTEST_CASES=N` runs N cases per property instead of 256.
#[cfg(test)]
mod reassembly_properties {
    use super::*;
    use proptest::prelude::*;

    /// The longest client frame header: 2 bytes, a 64-bit length, a mask.
    const HEADER_BYTES_MAX: usize = 14;
    /// A small limit, so that random input reaches it often.
    const BYTES_MAX: usize = 512;

    /// What the read path hands on, in order.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Heard {
        Message { is_text: bool, payload: Vec<u8> },
        Control { kind: Kind, payload: Vec<u8> },
    }

    /// One frame as a client may write it: any mask, and the payload length
    /// in the second byte (`width` 0) or in 2 or 8 more bytes (1 or 2), a
    /// longer form than needed being legal on the wire too.
    #[derive(Debug, Clone)]
    struct Wire {
        mask: [u8; 4],
        width: u8,
    }

    fn client_frame(first_byte: u8, payload: &[u8], wire: &Wire) -> Vec<u8> {
        let mut out = vec![first_byte];
        let len = payload.len();
        match wire.width {
            0 if len <= 125 => out.push(0x80 | len as u8),
            0 | 1 if len <= 0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&wire.mask);
        let mask = wire.mask;
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    /// Feeds `stream` to the read path in reads of the given sizes (cycled)
    /// and returns what it heard, or the violation that ended it. Checks the
    /// bounds of what is kept between reads after every read.
    fn read_all(stream: &[u8], reads: &[usize]) -> Result<Vec<Heard>, (ws::Violation, Vec<Heard>)> {
        let mut partial = Vec::new();
        let mut fragments: Option<Vec<u8>> = None;
        let mut heard = Vec::new();
        let mut pos = 0;
        for &read in reads.iter().cycle() {
            if pos >= stream.len() {
                break;
            }
            let end = (pos + read).min(stream.len());
            let mut data = stream[pos..end].to_vec();
            pos = end;
            let result = after_partial(&mut partial, &mut data, |buf| {
                each_frame(buf, BYTES_MAX, |kind, fin, payload| {
                    if matches!(kind, Kind::Ping | Kind::Pong | Kind::Close) {
                        heard.push(Heard::Control {
                            kind,
                            payload: payload.to_vec(),
                        });
                        return Ok(Next::More);
                    }
                    match gather(&mut fragments, kind, fin, payload, BYTES_MAX)? {
                        Part::Kept => {}
                        Part::Whole { is_text, payload } => heard.push(Heard::Message {
                            is_text,
                            payload: payload.to_vec(),
                        }),
                        Part::Gathered(whole) => heard.push(Heard::Message {
                            is_text: whole[0] == 1,
                            payload: whole[1..].to_vec(),
                        }),
                    }
                    Ok(Next::More)
                })
            });
            if let Err(violation) = result {
                return Err((violation, heard));
            }
            assert!(
                partial.len() < HEADER_BYTES_MAX + BYTES_MAX,
                "kept {} bytes between reads",
                partial.len()
            );
            let gathered = fragments.as_ref().map_or(0, Vec::len);
            assert!(gathered <= 1 + BYTES_MAX, "gathered {gathered} bytes");
        }
        assert!(partial.len() <= stream.len());
        Ok(heard)
    }

    fn wire() -> impl Strategy<Value = Wire> {
        (any::<[u8; 4]>(), 0u8..3).prop_map(|(mask, width)| Wire { mask, width })
    }

    /// A ping or pong with its payload (at most 125 bytes, as control
    /// frames must be).
    fn control() -> impl Strategy<Value = (Kind, Vec<u8>, Wire)> {
        (
            prop_oneof![Just(Kind::Ping), Just(Kind::Pong)],
            prop::collection::vec(any::<u8>(), 0..=125),
            wire(),
        )
    }

    /// A message: its kind and its fragments, each with its wire form and
    /// maybe a control frame right after it.
    type Fragmented = (bool, Vec<(Vec<u8>, Wire, Option<(Kind, Vec<u8>, Wire)>)>);

    fn fragmented(piece_bytes_max: usize) -> impl Strategy<Value = Fragmented> {
        (
            any::<bool>(),
            prop::collection::vec(
                (
                    prop::collection::vec(any::<u8>(), 0..piece_bytes_max),
                    wire(),
                    prop::option::weighted(0.3, control()),
                ),
                1..6,
            ),
        )
    }

    /// A message of 3 to 6 fragments, each within the limit, together over
    /// it.
    fn over_the_limit() -> impl Strategy<Value = Fragmented> {
        let piece = BYTES_MAX / 3 + 1..=BYTES_MAX * 2 / 3;
        (
            any::<bool>(),
            prop::collection::vec(
                (
                    piece.prop_flat_map(|n| prop::collection::vec(any::<u8>(), n)),
                    wire(),
                    prop::option::weighted(0.3, control()),
                ),
                3..7,
            ),
        )
    }

    /// The bytes of `messages` on the wire, and what the read path must hear
    /// from them: each control frame when it comes, each message at its last
    /// fragment.
    fn encode(messages: &[Fragmented]) -> (Vec<u8>, Vec<Heard>) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (is_text, pieces) in messages {
            let mut whole = Vec::new();
            for (i, (piece, wire, control)) in pieces.iter().enumerate() {
                let fin = i + 1 == pieces.len();
                let opcode = match (i, is_text) {
                    (0, true) => ws::opcode::TEXT,
                    (0, false) => 0x2,
                    _ => 0x0,
                };
                stream.extend(client_frame((u8::from(fin) << 7) | opcode, piece, wire));
                whole.extend_from_slice(piece);
                if fin {
                    expected.push(Heard::Message {
                        is_text: *is_text,
                        payload: std::mem::take(&mut whole),
                    });
                }
                if let Some((kind, payload, wire)) = control {
                    let opcode = if *kind == Kind::Ping {
                        ws::opcode::PING
                    } else {
                        ws::opcode::PONG
                    };
                    stream.extend(client_frame(0x80 | opcode, payload, wire));
                    expected.push(Heard::Control {
                        kind: *kind,
                        payload: payload.clone(),
                    });
                }
            }
        }
        (stream, expected)
    }

    proptest! {
        #[test]
        fn fragmented_messages_between_control_frames_reassemble_however_read(
            messages in prop::collection::vec(fragmented(100), 1..6),
            reads in prop::collection::vec(1usize..160, 1..24),
        ) {
            let (stream, expected) = encode(&messages);
            let heard = read_all(&stream, &reads).map_err(|(v, _)| {
                TestCaseError::fail(format!("refused a valid stream: {v:?}"))
            })?;
            prop_assert_eq!(heard, expected);
        }

        #[test]
        fn a_message_over_the_limit_is_refused_whatever_its_fragments(
            message in over_the_limit(),
            reads in prop::collection::vec(1usize..600, 1..8),
        ) {
            let bytes: usize = message.1.iter().map(|(piece, _, _)| piece.len()).sum();
            let (stream, _) = encode(&[message]);
            match read_all(&stream, &reads) {
                Err((violation, heard)) => {
                    prop_assert_eq!(violation.code, close::TOO_BIG);
                    let whole = heard.iter().any(|h| matches!(h, Heard::Message { .. }));
                    prop_assert!(!whole, "a message over the limit was handed on");
                }
                Ok(heard) => prop_assert!(false, "accepted {bytes} bytes: {heard:?}"),
            }
        }

        #[test]
        fn data_frames_in_any_order_follow_the_fragmentation_rules(
            frames in prop::collection::vec(
                (prop_oneof![Just(0x0u8), Just(0x1), Just(0x2)], any::<bool>(),
                 prop::collection::vec(any::<u8>(), 0..200), wire()),
                1..12,
            ),
            reads in prop::collection::vec(1usize..300, 1..8),
        ) {
            // RFC 6455 §5.4: a continuation only inside a message, a new
            // message only outside one; the message whole at its last frame.
            let mut stream = Vec::new();
            let mut expected = Vec::new();
            let mut open: Option<(bool, Vec<u8>)> = None;
            let mut refusal = None;
            for (opcode, fin, payload, wire) in &frames {
                stream.extend(client_frame((u8::from(*fin) << 7) | opcode, payload, wire));
                if refusal.is_some() {
                    continue;
                }
                let (is_text, mut gathered) = match (*opcode, open.take()) {
                    (0x0, Some(open)) => open,
                    (0x0, None) | (_, Some(_)) => {
                        refusal = Some(close::PROTOCOL_ERROR);
                        continue;
                    }
                    (opcode, None) => (opcode == 0x1, Vec::new()),
                };
                gathered.extend_from_slice(payload);
                if gathered.len() > BYTES_MAX {
                    refusal = Some(close::TOO_BIG);
                } else if *fin {
                    expected.push(Heard::Message { is_text, payload: gathered });
                } else {
                    open = Some((is_text, gathered));
                }
            }
            match (read_all(&stream, &reads), refusal) {
                (Ok(heard), None) => prop_assert_eq!(heard, expected),
                (Err((violation, heard)), Some(code)) => {
                    prop_assert_eq!(violation.code, code);
                    prop_assert_eq!(heard, expected);
                }
                (outcome, refusal) => {
                    prop_assert!(false, "read {outcome:?}, expected refusal {refusal:?}")
                }
            }
        }

        #[test]
        fn any_bytes_in_any_reads_keep_the_bounds(
            stream in prop::collection::vec(any::<u8>(), 0..2048),
            reads in prop::collection::vec(1usize..300, 1..16),
        ) {
            // Panics and the bounds on what is kept are checked by read_all;
            // refusing the bytes is a fine answer.
            let _ = read_all(&stream, &reads);
        }
    }
}
