//! Just enough reading of server frames to account for them.
//!
//! Full JSON parsing of every frame would cost the load client more CPU than
//! the server spends producing it. The server's frames are flat objects with
//! stable field names (DESIGN §4), so a few substring searches find the
//! handful of fields that the figures need: `seq`, `type`, reply `id`/`ok`,
//! event `kind`, the say timestamp marker, and error `code`.

use memchr::memmem::Finder;
use std::sync::LazyLock;

/// The prefix of the text of every say the load generator sends; the rest is
/// the say's intended send time in ns on `CLOCK_MONOTONIC`.
pub const SAY_STAMP_PREFIX: &str = "t=";

/// Between a stamp and the sender's target index, when the text says where
/// it was sent from (`cluster`: `t=<ns>@<target>`).
pub const STAMP_TARGET_SEPARATOR: char = '@';

static TYPE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""type":""#));
static SEQ: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""seq":"#));
static ID: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""id":"#));
static OK_TRUE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""ok":true"#));
static NO_EXIT: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""code":"no_exit""#));
static RATE_LIMITED: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(br#""code":"rate_limited""#));
static KIND: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""kind":""#));
static SAY_STAMP: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""text":"t="#));
static ROOM_GRID: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(br#""id":"grid:"#));
const SHARD_KEY: &[u8] = br#""shard":"#;
static SHARD: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(SHARD_KEY));

/// What a server frame is, as far as the figures care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound {
    Welcome,
    /// A command reply; `id` is the numeric id we sent (our ids are intended
    /// send times), `None` for replies to setup commands with string ids.
    Reply {
        id: Option<u64>,
        ok: bool,
        no_exit: bool,
    },
    Event {
        kind: EventKind,
        stamp_ns: Option<u64>,
        /// The sender's target index, when the stamp carries one.
        sender_target: Option<u64>,
    },
    Error {
        rate_limited: bool,
    },
    Pong {
        id: Option<u64>,
    },
    Other,
}

/// The event kinds the scenarios count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Say,
    Tell,
    Enter,
    Leave,
    Other,
}

/// A classified frame: its sequence number (absent before login and on pong)
/// and what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned {
    pub seq: Option<u64>,
    pub msg: Inbound,
}

/// Classifies one text frame.
pub fn scan(frame: &[u8]) -> Scanned {
    let seq = SEQ.find(frame).and_then(|at| parse_u64(&frame[at + 6..]));
    let msg = match TYPE.find(frame) {
        Some(at) => classify(frame, &frame[at + 8..]),
        None => Inbound::Other,
    };
    Scanned { seq, msg }
}

fn classify(frame: &[u8], after_type: &[u8]) -> Inbound {
    if after_type.starts_with(b"event\"") {
        let kind = match KIND.find(frame).map(|at| &frame[at + 8..]) {
            Some(k) if k.starts_with(b"say\"") => EventKind::Say,
            Some(k) if k.starts_with(b"tell\"") => EventKind::Tell,
            Some(k) if k.starts_with(b"enter\"") => EventKind::Enter,
            Some(k) if k.starts_with(b"leave\"") => EventKind::Leave,
            _ => EventKind::Other,
        };
        let (stamp_ns, sender_target) = match kind {
            EventKind::Say | EventKind::Tell => SAY_STAMP.find(frame).map_or((None, None), |at| {
                stamp(&frame[at + SAY_STAMP.needle().len()..])
            }),
            _ => (None, None),
        };
        Inbound::Event {
            kind,
            stamp_ns,
            sender_target,
        }
    } else if after_type.starts_with(b"reply\"") {
        Inbound::Reply {
            id: numeric_id(frame),
            ok: OK_TRUE.find(frame).is_some(),
            no_exit: NO_EXIT.find(frame).is_some(),
        }
    } else if after_type.starts_with(b"welcome\"") {
        Inbound::Welcome
    } else if after_type.starts_with(b"error\"") {
        Inbound::Error {
            rate_limited: RATE_LIMITED.find(frame).is_some(),
        }
    } else if after_type.starts_with(b"pong\"") {
        Inbound::Pong {
            id: numeric_id(frame),
        }
    } else {
        Inbound::Other
    }
}

/// `<ns>` or `<ns>@<target>` at the start of `bytes`.
fn stamp(bytes: &[u8]) -> (Option<u64>, Option<u64>) {
    let stamp_ns = parse_u64(bytes);
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    let sender_target = match bytes.get(digits) {
        Some(&b) if b == STAMP_TARGET_SEPARATOR as u8 => parse_u64(&bytes[digits + 1..]),
        _ => None,
    };
    (stamp_ns, sender_target)
}

/// The first `"id":` followed by a number. Room objects also have an `"id"`,
/// but theirs is a string, so they are skipped.
fn numeric_id(frame: &[u8]) -> Option<u64> {
    ID.find_iter(frame)
        .find_map(|at| parse_u64(&frame[at + 5..]))
}

/// The room a reply puts the player in, for rooms of the generated grid.
pub fn grid_room(frame: &[u8]) -> Option<(u32, u32)> {
    let at = ROOM_GRID.find(frame)?;
    let rest = &frame[at + 11..];
    let x = parse_u64(rest)?;
    let underscore = memchr::memchr(b'_', rest)?;
    let y = parse_u64(&rest[underscore + 1..])?;
    Some((u32::try_from(x).ok()?, u32::try_from(y).ok()?))
}

/// The first `"shard":N` of a frame: in `welcome`, the connection's shard
/// (it comes before the room object); in a reply carrying a room, the shard
/// that owns the room. (Text fields cannot match: their quotes are escaped.)
pub fn first_shard(frame: &[u8]) -> Option<u16> {
    let at = SHARD.find(frame)?;
    u16::try_from(parse_u64(&frame[at + SHARD_KEY.len()..])?).ok()
}

/// Parses the decimal digits at the start of `bytes`; `None` if there are none
/// or they overflow.
pub fn parse_u64(bytes: &[u8]) -> Option<u64> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 20 {
        return None;
    }
    bytes[..digits].iter().try_fold(0u64, |acc, d| {
        acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn say_events_yield_their_stamp_and_seq() {
        let frame = br#"{"seq":42,"type":"event","kind":"say","room":"grid:0_0","from":"lg0_1","text":"t=123456789","ts":5}"#;
        assert_eq!(
            scan(frame),
            Scanned {
                seq: Some(42),
                msg: Inbound::Event {
                    kind: EventKind::Say,
                    stamp_ns: Some(123456789),
                    sender_target: None,
                }
            }
        );
    }

    #[test]
    fn cluster_stamps_name_the_senders_target_and_tells_are_stamped_too() {
        let say = br#"{"seq":7,"type":"event","kind":"say","room":"grid:0_0","from":"a","text":"t=99@1","ts":5}"#;
        assert_eq!(
            scan(say).msg,
            Inbound::Event {
                kind: EventKind::Say,
                stamp_ns: Some(99),
                sender_target: Some(1),
            }
        );
        let tell = br#"{"seq":8,"type":"event","kind":"tell","room":"","from":"a","text":"t=42@0","ts":5}"#;
        assert_eq!(
            scan(tell).msg,
            Inbound::Event {
                kind: EventKind::Tell,
                stamp_ns: Some(42),
                sender_target: Some(0),
            }
        );
    }

    #[test]
    fn replies_yield_the_numeric_id_not_the_room_id() {
        let frame = br#"{"seq":3,"type":"reply","room":{"id":"grid:4_7","exits":{"east":"grid:5_7"}},"id":99,"ok":true}"#;
        assert_eq!(
            scan(frame).msg,
            Inbound::Reply {
                id: Some(99),
                ok: true,
                no_exit: false
            }
        );
        assert_eq!(grid_room(frame), Some((4, 7)));
        assert_eq!(first_shard(frame), None);
        let failed = br#"{"seq":4,"type":"reply","id":"place","ok":false,"code":"no_exit"}"#;
        assert_eq!(
            scan(failed).msg,
            Inbound::Reply {
                id: None,
                ok: false,
                no_exit: true
            }
        );
    }

    #[test]
    fn errors_pongs_and_welcome_are_told_apart() {
        let limited = br#"{"seq":9,"type":"error","code":"rate_limited","message":"slow down"}"#;
        assert_eq!(scan(limited).msg, Inbound::Error { rate_limited: true });
        assert_eq!(
            scan(br#"{"type":"pong","id":5}"#).msg,
            Inbound::Pong { id: Some(5) }
        );
        assert_eq!(
            scan(br#"{"seq":1,"type":"welcome","name":"x"}"#).msg,
            Inbound::Welcome
        );
        assert_eq!(scan(b"not json").msg, Inbound::Other);
    }

    #[test]
    fn numbers_that_overflow_are_not_numbers() {
        assert_eq!(parse_u64(b"99999999999999999999"), None);
        assert_eq!(parse_u64(b"18446744073709551615,"), Some(u64::MAX));
        assert_eq!(parse_u64(b"x1"), None);
    }

    #[test]
    fn the_first_shard_field_is_the_connections_in_welcome_and_the_rooms_in_a_reply() {
        let welcome = br#"{"seq":1,"type":"welcome","name":"lg0_1","token":"t","shard":1,"host":"local","shards":2,"room":{"id":"grid:0_0","shard":0}}"#;
        assert_eq!(first_shard(welcome), Some(1));
        let reply = br#"{"seq":9,"type":"reply","id":4,"ok":true,"text":"a sign: \"shard\":7","room":{"id":"grid:3_1","shard":12}}"#;
        assert_eq!(first_shard(reply), Some(12));
        assert_eq!(first_shard(br#"{"room":{"shard":70000}}"#), None);
        assert_eq!(first_shard(br#"{"room":{"shard":"x"}}"#), None);
    }
}
