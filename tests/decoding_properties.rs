//! Robust decoding (issue 11): properties of the four paths client input
//! takes — the HTTP request head (`net::http::parse_head`), WebSocket frames
//! (`net::ws::parse_frame`, `apply_mask`), the JSON of client frames
//! (`protocol::decode::decode`) and typed command lines
//! (`game::command::parse`) — checked on random and near-valid input: no
//! panic, a clear answer, and memory bounded by the input's limit, never by
//! what the input claims. The last test sends random fragmentations of
//! valid frames to the real server over a real socket.
//!
//! Each property runs 256 cases (the server one 24); `PROPTEST_CASES=N`
//! runs N instead: `PROPTEST_CASES=100000 cargo test --release --test
//! decoding_properties`. The reassembly of fragments without a server is
//! checked in `src/net/messages.rs` (`reassembly_properties`).

mod common;

use common::{Client, ServerProc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;
use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use mudshard::config::{HttpHeadBounds, Limits};
use mudshard::game::command::{parse, Command, ParseError};
use mudshard::net::http::{parse_head as parse_head_within, HeadError, Request};

/// The server's default bound on a request head's bytes.
const HEAD_BYTES_MAX: usize = 8 * 1024;

/// `parse_head` under the server's default bounds.
fn parse_head(buf: &[u8]) -> Result<(Request, usize), HeadError> {
    parse_head_within(buf, default_bounds())
}

fn default_bounds() -> HttpHeadBounds {
    Limits::default().http_head_bounds()
}

#[test]
fn the_head_bound_here_is_the_servers_default() {
    assert_eq!(default_bounds().head_bytes_max, HEAD_BYTES_MAX);
}
use mudshard::net::ws::{self, apply_mask, header_len, parse_frame, put_header, Frame, Kind};
use mudshard::protocol::close;
use mudshard::protocol::decode::{decode, ClientFrame, Credentials, DecodeError};
use mudshard::protocol::encode::put_str;
use mudshard::protocol::MsgId;

// ---------------------------------------------------------------------------
// Counting what a call allocates, on the calling thread only.

/// The system allocator, counting the bytes each thread asks of it.
struct CountingAlloc;

thread_local! {
    static BYTES_ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn count(bytes: usize) {
    // `try_with`: the allocator is also called while a thread is torn down.
    let _ = BYTES_ALLOCATED.try_with(|total| total.set(total.get() + bytes));
}

// SAFETY: every call is passed on unchanged to `System`.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Runs `f` and returns its result with the bytes it allocated in all (an
/// upper bound on what it held at once).
fn allocated_by<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let before = BYTES_ALLOCATED.with(Cell::get);
    let result = f();
    (result, BYTES_ALLOCATED.with(Cell::get) - before)
}

/// Proptest's configuration with `cases` unless `PROPTEST_CASES` says.
fn cases_unless_set(cases: u32) -> Config {
    let config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_some() {
        return config;
    }
    Config { cases, ..config }
}

// ---------------------------------------------------------------------------
// The HTTP request head.

/// A request head the way a client may write it.
#[derive(Debug, Clone)]
struct Head {
    method: &'static str,
    path: String,
    version: &'static str,
    /// Header lines in the order they are sent.
    headers: Vec<(String, String)>,
    /// `\n` instead of `\r\n`, which HTTP parsers accept too.
    bare_lf: bool,
}

impl Head {
    fn bytes(&self) -> Vec<u8> {
        let eol = if self.bare_lf { "\n" } else { "\r\n" };
        let mut out = format!("{} {} {}{eol}", self.method, self.path, self.version);
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}{eol}"));
        }
        out.push_str(eol);
        out.into_bytes()
    }
}

/// The headers the server reads, each perhaps absent, with what it must
/// make of them.
#[derive(Debug, Clone)]
struct Known {
    upgrade: Option<(&'static str, bool)>,
    key: Option<String>,
    version: Option<(&'static str, bool)>,
    origin: Option<String>,
    content_length: Option<u32>,
}

impl Known {
    fn headers(&self) -> Vec<(String, String)> {
        let mut out = vec![("Host".to_string(), "mud.example".to_string())];
        if let Some((value, _)) = self.upgrade {
            out.push(("Upgrade".into(), value.into()));
            out.push(("Connection".into(), "Upgrade".into()));
        }
        if let Some(key) = &self.key {
            out.push(("Sec-WebSocket-Key".into(), key.clone()));
        }
        if let Some((value, _)) = self.version {
            out.push(("sec-websocket-version".into(), value.into()));
        }
        if let Some(origin) = &self.origin {
            out.push(("Origin".into(), origin.clone()));
        }
        if let Some(n) = self.content_length {
            out.push(("Content-Length".into(), n.to_string()));
        }
        out
    }

    fn request(&self, method: &str, target: &str) -> Request {
        // The route is the request target without its query string.
        let path = target.split_once('?').map_or(target, |(path, _)| path);
        Request {
            method: method.into(),
            path: path.into(),
            websocket_key: self.key.clone(),
            upgrade_websocket: self.upgrade.is_some_and(|(_, websocket)| websocket),
            websocket_version_ok: self.version.is_some_and(|(_, ok)| ok),
            websocket_version_present: self.version.is_some(),
            origin: self.origin.clone(),
            host: true,
            connection_upgrade: self.upgrade.is_some(),
            http11: true,
            content_length: self.content_length.map_or(0, |n| n as usize),
            transfer_encoding: false,
        }
    }
}

fn known_headers() -> impl Strategy<Value = Known> {
    (
        prop::option::of(prop::sample::select(vec![
            ("websocket", true),
            ("WebSocket", true),
            ("h2c, websocket", true),
            ("h2c", false),
        ])),
        prop::option::of("[A-Za-z0-9+/]{22}==".prop_map(String::from)),
        prop::option::of(prop::sample::select(vec![
            ("13", true),
            ("8", false),
            ("13, 8", false),
        ])),
        prop::option::of("https?://[a-z0-9.-]{1,30}(:[0-9]{1,5})?".prop_map(String::from)),
        prop::option::of(any::<u32>()),
    )
        .prop_map(|(upgrade, key, version, origin, content_length)| Known {
            upgrade,
            key,
            version,
            origin,
            content_length,
        })
}

/// Headers the server ignores: names no known header has, values of any
/// visible characters with spaces inside.
fn filler_headers(
    count_max: usize,
    value_bytes_max: usize,
) -> impl Strategy<Value = Vec<(String, String)>> {
    let value = format!("([!-~]([ -~]{{0,{value_bytes_max}}}[!-~])?)?");
    let value = proptest::string::string_regex(&value).expect("a valid pattern");
    prop::collection::vec(("X-[A-Za-z0-9-]{1,16}", value), 0..=count_max)
}

fn method() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS"])
}

/// A valid head carrying `known` among filler headers, in any order, with
/// the `Request` the server must read from it.
fn valid_head(
    fillers_max: usize,
    value_bytes_max: usize,
) -> impl Strategy<Value = (Head, Request)> {
    (
        method(),
        "/[A-Za-z0-9/_.~%?=&-]{0,40}",
        prop::sample::select(vec!["HTTP/1.1", "HTTP/1.0"]),
        known_headers(),
        filler_headers(fillers_max, value_bytes_max),
        any::<bool>(),
    )
        .prop_flat_map(|(method, path, version, known, fillers, bare_lf)| {
            let mut headers = known.headers();
            headers.extend(fillers);
            (
                Just(headers).prop_shuffle(),
                Just((method, path, version, bare_lf, known)),
            )
        })
        .prop_map(|(headers, (method, path, version, bare_lf, known))| {
            let mut request = known.request(method, &path);
            request.http11 = version == "HTTP/1.1";
            let head = Head {
                method,
                path,
                version,
                headers,
                bare_lf,
            };
            (head, request)
        })
}

/// Bytes a head is made of, and a few it must not hold.
const HEADERISH: &[u8] = b"GET / HTTP/1.1aZ09-:: \t\r\n\r\n\x00\x7f\xff";

/// What `read_head` (net/routes.rs) does with a connection's bytes: reads
/// of the given sizes (cycled), the head parsed after each. Returns the
/// first answer that is not `Incomplete`, or `Incomplete` if the bytes ran
/// out first, and checks that more was never waited for past the limit.
fn read_head_in(bytes: &[u8], reads: &[usize]) -> Result<(Request, usize), HeadError> {
    let mut seen = Vec::new();
    for &read in reads.iter().cycle() {
        if seen.len() == bytes.len() {
            break;
        }
        let end = (seen.len() + read).min(bytes.len());
        seen.extend_from_slice(&bytes[seen.len()..end]);
        match parse_head(&seen) {
            Err(HeadError::Incomplete) => assert!(
                seen.len() < HEAD_BYTES_MAX,
                "waited for more after {} bytes",
                seen.len()
            ),
            answer => return answer,
        }
    }
    Err(HeadError::Incomplete)
}

/// The most `parse_head` may allocate: the strings it keeps, from at most
/// the limit's worth of bytes, even where invalid UTF-8 is replaced (three
/// bytes for one) and then trimmed and copied.
fn head_allocation_max(bytes: usize) -> usize {
    8 * bytes.min(HEAD_BYTES_MAX) + 1024
}

proptest! {
    #[test]
    fn any_bytes_get_a_head_answer_within_the_limit(
        bytes in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..4096),
            // Header-like characters, around the limit.
            prop::collection::vec(any::<u8>(), HEAD_BYTES_MAX - 8..HEAD_BYTES_MAX + 3000)
                .prop_map(|bytes| bytes.iter().map(|b| HEADERISH[*b as usize % HEADERISH.len()]).collect()),
        ],
    ) {
        let (answer, allocated) = allocated_by(|| parse_head(&bytes));
        prop_assert!(allocated <= head_allocation_max(bytes.len()), "allocated {allocated}");
        match answer {
            Ok((_, len)) => prop_assert!(len <= bytes.len().min(HEAD_BYTES_MAX)),
            Err(HeadError::Incomplete) => prop_assert!(bytes.len() < HEAD_BYTES_MAX),
            Err(HeadError::TooLarge) => prop_assert!(bytes.len() >= HEAD_BYTES_MAX),
            Err(HeadError::RequestLineTooLong) => {
                prop_assert!(bytes.len() > default_bounds().request_line_bytes_max)
            }
            Err(HeadError::TooManyHeaders) | Err(HeadError::Malformed) => {}
        }
    }

    #[test]
    fn a_valid_head_reads_the_same_split_at_every_byte(
        (head, expected) in valid_head(6, 40),  // within the default 32 headers
        body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let head_bytes = head.bytes();
        let mut bytes = head_bytes.clone();
        bytes.extend_from_slice(&body);
        prop_assert_eq!(parse_head(&bytes), Ok((expected, head_bytes.len())));
        let whole = parse_head(&bytes);
        for cut in 0..=bytes.len() {
            let answer = parse_head(&bytes[..cut]);
            if cut < head_bytes.len() {
                prop_assert_eq!(answer, Err(HeadError::Incomplete), "cut at {}", cut);
            } else {
                prop_assert_eq!(&answer, &whole, "cut at {}", cut);
            }
        }
    }

    #[test]
    fn near_valid_heads_read_in_any_reads_give_the_whole_answer(
        (mut head, _) in valid_head(60, 300),
        // One long header, so that heads end on either side of the limit.
        padding in prop::option::of((HEAD_BYTES_MAX - 1200..HEAD_BYTES_MAX + 200, any::<prop::sample::Index>())),
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
        cut_short in prop::option::weighted(0.2, any::<prop::sample::Index>()),
        reads in prop::collection::vec(1usize..2048, 1..16),
    ) {
        if let Some((len, at)) = padding {
            let at = at.index(head.headers.len() + 1);
            head.headers.insert(at, ("X-Padding".into(), "p".repeat(len)));
        }
        let mut bytes = head.bytes();
        for (at, byte) in &damage {
            let at = at.index(bytes.len());
            bytes[at] = *byte;
        }
        if let Some(end) = cut_short {
            bytes.truncate(end.index(bytes.len()));
        }
        let (whole, allocated) = allocated_by(|| parse_head(&bytes));
        prop_assert!(allocated <= head_allocation_max(bytes.len()), "allocated {allocated}");
        prop_assert_eq!(read_head_in(&bytes, &reads), whole);
    }
}

// ---------------------------------------------------------------------------
// WebSocket frames.

/// A frame header's fields, each free to be wrong.
#[derive(Debug, Clone)]
struct FrameSpec {
    fin: bool,
    rsv: u8,
    opcode: u8,
    mask: Option<[u8; 4]>,
    /// 0: length in the second byte if it fits; 1: in 16 bits if it fits;
    /// 2: in 64 bits.
    width: u8,
    /// The length the header claims; the payload may be shorter.
    declared: u64,
    payload: Vec<u8>,
}

impl FrameSpec {
    /// The header's bytes, then the payload masked.
    fn bytes(&self) -> Vec<u8> {
        let mut out = vec![(u8::from(self.fin) << 7) | (self.rsv << 4) | self.opcode];
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        match (self.width, self.declared) {
            (0, n @ 0..=125) => out.push(mask_bit | n as u8),
            (0 | 1, n @ 0..=0xFFFF) => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            (_, n) => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&n.to_be_bytes());
            }
        }
        match self.mask {
            Some(mask) => {
                out.extend_from_slice(&mask);
                out.extend(
                    self.payload
                        .iter()
                        .enumerate()
                        .map(|(i, b)| b ^ mask[i & 3]),
                );
            }
            None => out.extend_from_slice(&self.payload),
        }
        out
    }

    fn header_bytes(&self) -> usize {
        let length = match (self.width, self.declared) {
            (0, 0..=125) => 0,
            (0 | 1, 0..=0xFFFF) => 2,
            _ => 8,
        };
        2 + length + if self.mask.is_some() { 4 } else { 0 }
    }

    /// What `parse_frame` must answer once the whole header is there:
    /// `Ok(kind)` for a frame to read, or the close code that refuses it.
    fn verdict(&self, payload_bytes_max: usize) -> Result<Kind, u16> {
        let kind = match self.opcode {
            0x0 => Kind::Continuation,
            0x1 => Kind::Text,
            0x2 => Kind::Binary,
            0x8 => Kind::Close,
            0x9 => Kind::Ping,
            0xA => Kind::Pong,
            _ => return Err(close::PROTOCOL_ERROR),
        };
        let control = matches!(kind, Kind::Close | Kind::Ping | Kind::Pong);
        if self.rsv != 0 || (control && (self.declared > 125 || !self.fin)) || self.mask.is_none() {
            return Err(close::PROTOCOL_ERROR);
        }
        if self.declared > payload_bytes_max as u64 {
            return Err(close::TOO_BIG);
        }
        Ok(kind)
    }
}

fn frame_spec() -> impl Strategy<Value = FrameSpec> {
    (
        (
            any::<bool>(),
            prop_oneof![8 => Just(0u8), 1 => 1u8..8],
            prop_oneof![
                8 => prop::sample::select(vec![0x0u8, 0x1, 0x2, 0x8, 0x9, 0xA]),
                1 => 0u8..16,
            ],
            prop::option::weighted(0.9, any::<[u8; 4]>()),
            0u8..3,
        ),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::option::weighted(
            0.2,
            prop_oneof![
                any::<u64>(),
                0u64..400,
                Just(u64::MAX),
                Just(1 << 63),
                Just(0xFFFF),
                Just(0x10000),
            ],
        ),
    )
        .prop_map(
            |((fin, rsv, opcode, mask, width), payload, lie)| FrameSpec {
                fin,
                rsv,
                opcode,
                mask,
                width,
                declared: lie.unwrap_or(payload.len() as u64),
                payload,
            },
        )
}

proptest! {
    #[test]
    fn any_bytes_parse_as_a_frame_within_the_buffer_or_are_refused(
        mut bytes in prop::collection::vec(any::<u8>(), 0..200),
        payload_bytes_max in 0usize..300,
    ) {
        let len = bytes.len();
        let (answer, allocated) = allocated_by(|| parse_frame(&mut bytes, payload_bytes_max));
        prop_assert_eq!(allocated, 0);
        match answer {
            Ok(Some(frame)) => {
                prop_assert!([6, 8, 14].contains(&frame.payload_start), "{:?}", frame);
                prop_assert!(frame.payload_start <= frame.payload_end && frame.payload_end <= len);
                prop_assert!(frame.payload_end - frame.payload_start <= payload_bytes_max);
                if matches!(frame.kind, Kind::Close | Kind::Ping | Kind::Pong) {
                    prop_assert!(frame.fin && frame.payload_end - frame.payload_start <= 125);
                }
            }
            Ok(None) => {}
            Err(violation) => prop_assert!(
                [close::PROTOCOL_ERROR, close::TOO_BIG].contains(&violation.code),
                "{:?}", violation
            ),
        }
    }

    #[test]
    fn a_frame_is_read_or_refused_from_its_header_however_much_has_come(
        spec in frame_spec(),
        payload_bytes_max in 0usize..400,
    ) {
        let bytes = spec.bytes();
        let header_bytes = spec.header_bytes();
        let verdict = spec.verdict(payload_bytes_max);
        for cut in 0..=bytes.len() {
            let mut buf = bytes[..cut].to_vec();
            let answer = parse_frame(&mut buf, payload_bytes_max);
            if cut < header_bytes {
                prop_assert_eq!(answer, Ok(None), "cut at {}", cut);
                continue;
            }
            match verdict {
                Err(code) => prop_assert_eq!(answer.map_err(|v| v.code), Err(code), "cut at {}", cut),
                Ok(kind) => {
                    let end = header_bytes as u64 + spec.declared;
                    if (cut as u64) < end {
                        prop_assert_eq!(answer, Ok(None), "cut at {}", cut);
                        continue;
                    }
                    let end = end as usize;
                    prop_assert_eq!(answer, Ok(Some(Frame {
                        kind,
                        fin: spec.fin,
                        payload_start: header_bytes,
                        payload_end: end,
                    })), "cut at {}", cut);
                    prop_assert_eq!(&buf[header_bytes..end], &spec.payload[..end - header_bytes]);
                    prop_assert_eq!(&buf[end..], &bytes[end..cut], "bytes after the frame changed");
                }
            }
        }
    }

    #[test]
    fn masking_is_the_bytewise_xor_and_twice_is_nothing(
        data in prop::collection::vec(any::<u8>(), 0..100),
        offset in 0usize..8,
        mask in any::<[u8; 4]>(),
    ) {
        // The offset moves the slice off the word alignment `apply_mask` uses.
        let mut buf = vec![0u8; offset];
        buf.extend_from_slice(&data);
        let (_, allocated) = allocated_by(|| apply_mask(&mut buf[offset..], mask));
        prop_assert_eq!(allocated, 0);
        let bytewise: Vec<u8> = data.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]).collect();
        prop_assert_eq!(&buf[offset..], &bytewise[..]);
        apply_mask(&mut buf[offset..], mask);
        prop_assert_eq!(&buf[offset..], &data[..]);
    }

    #[test]
    fn a_server_header_is_as_long_as_computed_and_says_its_length(
        len in prop_oneof![0usize..70_000, any::<u32>().prop_map(|n| n as usize)],
    ) {
        let mut out = Vec::new();
        put_header(&mut out, ws::opcode::TEXT, len);
        prop_assert_eq!(out.len(), header_len(len));
        prop_assert_eq!(out[0], 0x81);
        let said = match out[1] {
            126 => u16::from_be_bytes([out[2], out[3]]) as u64,
            127 => u64::from_be_bytes(out[2..10].try_into().expect("8 bytes")),
            n => u64::from(n),
        };
        prop_assert_eq!(said, len as u64);
    }
}

// ---------------------------------------------------------------------------
// The JSON of client frames.

/// Field names the decoder looks at, so random objects hit them often.
const KEYS: &[&str] = &[
    "type", "id", "line", "name", "password", "token", "last_seq",
];
const TYPES: &[&str] = &[
    "guest", "register", "login", "resume", "cmd", "ping", "dance", "",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        any::<String>().prop_map(Value::String),
        prop::sample::select(TYPES).prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(String::from),
        1 => any::<String>(),
    ]
}

/// An object with a `type` (mostly a known one) and fields the decoder
/// reads, of any JSON type.
fn frame_like() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(TYPES),
        prop::collection::vec((json_key(), json_value()), 0..6),
    )
        .prop_map(|(kind, fields)| {
            let mut object: serde_json::Map<String, Value> = fields.into_iter().collect();
            object.insert("type".into(), Value::from(kind));
            Value::Object(object)
        })
}

/// The stable codes of `DecodeError` (DESIGN §4).
const DECODE_CODES: &[&str] = &["bad_json", "unknown_type", "bad_field"];

/// Longest refusal message: it is sent back to the client.
const DECODE_MESSAGE_BYTES_MAX: usize = 256;

/// What `decode` may allocate for a payload of `bytes`: linear in it (the
/// parser's buffers and the value tree), bounded by the frame limit.
fn decode_allocation_max(bytes: usize) -> usize {
    64 * bytes + 64 * 1024
}

fn check_refusal(error: &DecodeError) -> Result<(), TestCaseError> {
    prop_assert!(DECODE_CODES.contains(&error.code), "{:?}", error);
    prop_assert!(
        error.message.len() <= DECODE_MESSAGE_BYTES_MAX,
        "{:?}",
        error
    );
    Ok(())
}

/// The `type` a decoded frame came from.
fn type_of(frame: &ClientFrame<'_>) -> &'static str {
    match frame {
        ClientFrame::Guest { .. } => "guest",
        ClientFrame::Register { .. } => "register",
        ClientFrame::Login(_) => "login",
        ClientFrame::Resume { .. } => "resume",
        ClientFrame::Cmd { .. } => "cmd",
        ClientFrame::Ping { .. } => "ping",
    }
}

/// A client frame as a test writes it.
#[derive(Debug, Clone)]
enum Sent {
    Guest(Option<String>),
    Register(String, String),
    LoginPassword(String, String),
    LoginToken(String),
    Resume(String, u64),
    Cmd(Option<Id>, String),
    Ping(Option<Id>),
}

#[derive(Debug, Clone)]
enum Id {
    Text(String),
    Int(i64),
    Uint(u64),
    Float(f64),
}

impl Id {
    fn json(&self) -> Value {
        match self {
            Id::Text(s) => Value::from(s.as_str()),
            Id::Int(n) => Value::from(*n),
            Id::Uint(n) => Value::from(*n),
            Id::Float(f) => Value::from(*f),
        }
    }

    /// The id the server must echo, or `None` if it must refuse it as too
    /// long: JSON text as `MsgId` keeps it.
    fn echoed(&self) -> Option<MsgId> {
        let text = match self {
            Id::Text(s) => {
                let mut text = Vec::new();
                put_str(&mut text, s);
                text
            }
            Id::Int(n) => n.to_string().into_bytes(),
            Id::Uint(n) => n.to_string().into_bytes(),
            Id::Float(f) => f.to_string().into_bytes(),
        };
        MsgId::from_json_text(&text)
    }
}

impl Sent {
    fn fields(&self) -> Vec<(&'static str, Value)> {
        let s = |text: &String| Value::from(text.as_str());
        let id = |id: &Option<Id>| id.as_ref().map_or(Value::Null, Id::json);
        match self {
            Sent::Guest(None) => vec![("type", "guest".into())],
            Sent::Guest(Some(name)) => vec![("type", "guest".into()), ("name", s(name))],
            Sent::Register(name, password) => vec![
                ("type", "register".into()),
                ("name", s(name)),
                ("password", s(password)),
            ],
            Sent::LoginPassword(name, password) => vec![
                ("type", "login".into()),
                ("name", s(name)),
                ("password", s(password)),
            ],
            Sent::LoginToken(token) => vec![("type", "login".into()), ("token", s(token))],
            Sent::Resume(token, last_seq) => vec![
                ("type", "resume".into()),
                ("token", s(token)),
                ("last_seq", Value::from(*last_seq)),
            ],
            Sent::Cmd(i, line) => vec![("type", "cmd".into()), ("id", id(i)), ("line", s(line))],
            Sent::Ping(i) => vec![("type", "ping".into()), ("id", id(i))],
        }
    }

    /// What `decode` must give back: the frame, or `bad_field` for an id
    /// too long to echo.
    fn expected(&self) -> Result<ClientFrame<'_>, &'static str> {
        fn c(text: &str) -> Cow<'_, str> {
            Cow::Borrowed(text)
        }
        let id = |id: &Option<Id>| match id {
            None => Ok(None),
            Some(id) => id.echoed().map(Some).ok_or("bad_field"),
        };
        Ok(match self {
            Sent::Guest(name) => ClientFrame::Guest {
                name: name.as_deref().map(c),
            },
            Sent::Register(name, password) => ClientFrame::Register {
                name: c(name),
                password: c(password),
            },
            Sent::LoginPassword(name, password) => ClientFrame::Login(Credentials::Password {
                name: c(name),
                password: c(password),
            }),
            Sent::LoginToken(token) => ClientFrame::Login(Credentials::Token(c(token))),
            Sent::Resume(token, last_seq) => ClientFrame::Resume {
                token: c(token),
                last_seq: *last_seq,
            },
            Sent::Cmd(i, line) => ClientFrame::Cmd {
                id: id(i)?,
                line: c(line),
            },
            Sent::Ping(i) => ClientFrame::Ping { id: id(i)? },
        })
    }
}

fn id() -> impl Strategy<Value = Id> {
    prop_oneof![
        any::<String>().prop_map(Id::Text),
        "[ -~]{0,50}".prop_map(Id::Text),
        any::<i64>().prop_map(Id::Int),
        any::<u64>().prop_map(Id::Uint),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Id::Float),
    ]
}

fn sent() -> impl Strategy<Value = Sent> {
    let text = || any::<String>();
    prop_oneof![
        prop::option::of(text()).prop_map(Sent::Guest),
        (text(), text()).prop_map(|(n, p)| Sent::Register(n, p)),
        (text(), text()).prop_map(|(n, p)| Sent::LoginPassword(n, p)),
        text().prop_map(Sent::LoginToken),
        (text(), any::<u64>()).prop_map(|(t, s)| Sent::Resume(t, s)),
        (prop::option::of(id()), text()).prop_map(|(i, l)| Sent::Cmd(i, l)),
        prop::option::of(id()).prop_map(Sent::Ping),
    ]
}

/// JSON text of an object with these fields, in this order.
fn object_text(fields: &[(String, Value)]) -> String {
    let members: Vec<String> = fields
        .iter()
        .map(|(key, value)| format!("{}:{value}", Value::from(key.as_str())))
        .collect();
    format!("{{{}}}", members.join(","))
}

proptest! {
    #[test]
    fn any_bytes_decode_to_a_frame_or_a_stable_refusal(
        bytes in prop::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut payload = bytes.clone();
        let (decoded, allocated) = allocated_by(|| decode(&mut payload).map(|f| type_of(&f)));
        prop_assert!(allocated <= decode_allocation_max(bytes.len()), "allocated {allocated}");
        if let Err(error) = &decoded {
            check_refusal(error)?;
        }
    }

    #[test]
    fn any_json_decodes_to_a_frame_of_its_type_or_a_stable_refusal(
        value in prop_oneof![json_value(), frame_like()],
    ) {
        let text = value.to_string();
        let mut payload = text.clone().into_bytes();
        let (decoded, allocated) = allocated_by(|| decode(&mut payload).map(|f| type_of(&f)));
        prop_assert!(allocated <= decode_allocation_max(text.len()), "allocated {allocated}");
        match decoded {
            Ok(kind) => prop_assert_eq!(&value["type"], kind, "{}", text),
            Err(error) => check_refusal(&error)?,
        }
    }

    #[test]
    fn every_client_frame_decodes_to_its_fields((sent, fields) in sent_with_fields()) {
        let text = object_text(&fields);
        let mut payload = text.clone().into_bytes();
        match (decode(&mut payload), sent.expected()) {
            (Ok(frame), Ok(expected)) => prop_assert_eq!(frame, expected, "{}", text),
            (Err(error), Err(code)) => prop_assert_eq!(error.code, code, "{}", text),
            (got, expected) => prop_assert!(false, "{text}: got {got:?}, expected {expected:?}"),
        }
    }
}

/// A frame and the fields it is sent as: its own and some the decoder
/// ignores, in any order.
fn sent_with_fields() -> impl Strategy<Value = (Sent, Vec<(String, Value)>)> {
    (
        sent(),
        prop::collection::vec(("x[ -~]{0,8}", json_value()), 0..3),
    )
        .prop_flat_map(|(sent, extra)| {
            let fields: Vec<(String, Value)> = sent
                .fields()
                .into_iter()
                .map(|(key, value)| (key.to_string(), value))
                .chain(extra)
                .collect();
            (Just(sent), Just(fields).prop_shuffle())
        })
}

/// `[[[…]]]` or `{"a":{"a":…}}` nested `depth` deep.
fn nested(depth: usize, object: bool) -> String {
    let (open, close) = if object { ("{\"a\":", "}") } else { ("[", "]") };
    let mut out = open.repeat(depth);
    out.push_str(if object { "1" } else { "" });
    out.push_str(&close.repeat(depth));
    out
}

#[test]
fn deeply_nested_json_is_refused_without_exhausting_the_stack() {
    for depth in [10_000, 32_768] {
        for object in [false, true] {
            let deep = nested(depth, object);
            for text in [deep.clone(), format!(r#"{{"type":"ping","x":{deep}}}"#)] {
                let mut payload = text.into_bytes();
                let error = decode(&mut payload).expect_err("refused");
                assert_eq!(error.code, "bad_json", "depth {depth}: {}", error.message);
            }
        }
    }
    // A frame's worth of opening brackets that never close.
    let mut payload = vec![b'['; 64 * 1024];
    assert_eq!(decode(&mut payload).expect_err("refused").code, "bad_json");
}

#[test]
fn nesting_within_the_parser_depth_limit_is_read_and_dropped() {
    for object in [false, true] {
        let text = format!(r#"{{"type":"ping","id":7,"x":{}}}"#, nested(1000, object));
        let mut payload = text.into_bytes();
        let frame = decode(&mut payload).expect("a ping");
        assert!(
            matches!(frame, ClientFrame::Ping { id: Some(_) }),
            "{frame:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// Command lines.

/// Every verb and abbreviation of DESIGN §5, with a valid argument where it
/// takes one.
const VERBS: &[&str] = &[
    "look",
    "l",
    "go",
    "say",
    "emote",
    "tell",
    "shout",
    "who",
    "inventory",
    "inv",
    "i",
    "get",
    "take",
    "drop",
    "help",
    "?",
    "quit",
    "goto",
    "north",
    "n",
    "south",
    "s",
    "east",
    "e",
    "west",
    "w",
    "up",
    "u",
    "down",
    "d",
];

/// Longest answer to a line that is not a command.
const PARSE_MESSAGE_BYTES_MAX: usize = 300;
/// The most that answer may allocate (the typo suggestion's tables
/// included), whatever the length of the line.
const PARSE_MESSAGE_ALLOCATION_MAX: usize = 32 * 1024;

/// Whether `part` is a piece of `line` (arguments are borrowed, not copied).
fn borrowed_from(part: &str, line: &str) -> bool {
    let start = line.as_ptr() as usize;
    let at = part.as_ptr() as usize;
    at >= start && at + part.len() <= start + line.len()
}

fn check_parse(line: &str) -> Result<(), TestCaseError> {
    let (parsed, allocated) = allocated_by(|| parse(line));
    prop_assert_eq!(allocated, 0, "parse allocated for {:?}", line);
    match parsed {
        Ok(command) => {
            let args: Vec<&str> = match command {
                Command::Say(t) | Command::Emote(t) | Command::Shout(t) => vec![t],
                Command::Get(t) | Command::Drop(t) | Command::Goto(t) => vec![t],
                Command::Tell { to, text } => vec![to, text],
                _ => vec![],
            };
            for arg in args {
                prop_assert!(!arg.is_empty() && borrowed_from(arg, line), "{:?}", command);
                prop_assert_eq!(arg, arg.trim_start());
            }
            let _ = command.route();
        }
        Err(error) => {
            if let ParseError::Unknown(word) = error {
                prop_assert!(!word.is_empty() && borrowed_from(word, line));
                prop_assert!(!word.contains(char::is_whitespace));
            }
            let (message, allocated) = allocated_by(|| error.message());
            prop_assert!(message.len() <= PARSE_MESSAGE_BYTES_MAX, "{}", message);
            prop_assert!(
                allocated <= PARSE_MESSAGE_ALLOCATION_MAX,
                "message allocated {allocated} for {:?}",
                error.code()
            );
        }
    }
    Ok(())
}

fn mixed_case(word: &str, upper: &[bool]) -> String {
    word.chars()
        .zip(upper.iter().cycle())
        .map(|(c, &up)| if up { c.to_ascii_uppercase() } else { c })
        .collect()
}

proptest! {
    #[test]
    fn any_line_parses_or_gets_a_short_answer_without_allocating(
        line in prop_oneof![
            any::<String>(),
            "[ -~\t\r\n]{0,80}",
            (prop::sample::select(VERBS), any::<String>()).prop_map(|(v, rest)| format!("{v}{rest}")),
            (prop::sample::select(VERBS), "[ \t\u{3000}]{0,3}", any::<String>())
                .prop_map(|(v, space, rest)| format!("{v}{space}{rest}")),
            // Huge words, also as the verb's argument.
            (any::<char>(), 1000usize..70_000, prop::option::of(prop::sample::select(VERBS)))
                .prop_map(|(c, n, verb)| {
                    let word = c.to_string().repeat(n);
                    match verb {
                        Some(verb) => format!("{verb} {word}"),
                        None => word,
                    }
                }),
        ],
    ) {
        check_parse(&line)?;
    }

    #[test]
    fn every_verb_is_case_insensitive(
        verb in prop::sample::select(VERBS),
        upper in prop::collection::vec(any::<bool>(), 1..10),
        rest in prop_oneof![Just(String::new()), " [ -~]{0,30}", " \\PC{0,20}"],
    ) {
        let lower = format!("{verb}{rest}");
        let mixed = format!("{}{rest}", mixed_case(verb, &upper));
        let expected = parse(&lower);
        prop_assert!(!matches!(expected, Err(ParseError::Unknown(_))), "{:?}", lower);
        prop_assert_eq!(parse(&mixed), expected, "{:?}", mixed);
    }

    #[test]
    fn the_quote_and_colon_shortcuts_equal_say_and_emote(
        text in prop_oneof![any::<String>(), "[ -~]{0,40}"],
        upper in prop::collection::vec(any::<bool>(), 1..6),
    ) {
        let (quote, say) = (format!("'{text}"), format!("{} {text}", mixed_case("say", &upper)));
        prop_assert_eq!(parse(&quote), parse(&say));
        let (colon, emote) = (format!(":{text}"), format!("{} {text}", mixed_case("emote", &upper)));
        prop_assert_eq!(parse(&colon), parse(&emote));
    }
}

/// Found by `any_line_parses_or_gets_a_short_answer_without_allocating`:
/// the typo suggestion lowercased a whole unknown word, a 64 KiB line one
/// allocation of 256 KiB, to find it too long to be a typo of any verb.
#[test]
fn a_huge_unknown_word_is_answered_without_copying_it() {
    let line = "x".repeat(64 * 1024);
    let error = parse(&line).expect_err("not a verb");
    let (message, allocated) = allocated_by(|| error.message());
    assert!(message.starts_with("Unknown command"), "{message}");
    assert!(
        allocated <= PARSE_MESSAGE_ALLOCATION_MAX,
        "allocated {allocated} bytes"
    );
}

// ---------------------------------------------------------------------------
// The real server: valid frames cut into random fragments and reads.

const UPGRADE: &str = "GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// A masked client frame (`first_byte` holds FIN and the opcode).
fn client_frame(first_byte: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    FrameSpec {
        fin: first_byte & 0x80 != 0,
        rsv: 0,
        opcode: first_byte & 0x0F,
        mask: Some(mask),
        width: 0,
        declared: payload.len() as u64,
        payload: payload.to_vec(),
    }
    .bytes()
}

/// One message to the server: its JSON, the sizes of its fragments (the
/// rest goes in the last), and ping payloads sent between them.
#[derive(Debug, Clone)]
struct Fragmented {
    json: String,
    pieces: Vec<usize>,
    pings: Vec<Option<Vec<u8>>>,
    mask: [u8; 4],
}

impl Fragmented {
    fn bytes(&self) -> Vec<u8> {
        let payload = self.json.as_bytes();
        let mut cuts: Vec<usize> = self.pieces.iter().map(|&n| n.min(payload.len())).collect();
        cuts.sort_unstable();
        cuts.push(payload.len());
        let mut out = Vec::new();
        let mut start = 0;
        for (i, &end) in cuts.iter().enumerate() {
            let end = end.max(start);
            let fin = i + 1 == cuts.len();
            let opcode = if i == 0 { ws::opcode::TEXT } else { 0x0 };
            out.extend(client_frame(
                (u8::from(fin) << 7) | opcode,
                &payload[start..end],
                self.mask,
            ));
            if let Some(Some(ping)) = self.pings.get(i).filter(|_| !fin) {
                out.extend(client_frame(0x80 | ws::opcode::PING, ping, self.mask));
            }
            start = end;
        }
        out
    }
}

/// A frame the server must answer: `None` a ping, or a command line.
fn request() -> impl Strategy<Value = Option<String>> {
    prop::option::weighted(
        0.7,
        prop_oneof![
            Just("look".to_string()),
            Just("who".to_string()),
            Just("inventory".to_string()),
            "say [a-zA-Z0-9,.!?][a-zA-Z0-9 ,.!?]{0,59}",
        ],
    )
}

fn fragmented(json: String) -> impl Strategy<Value = Fragmented> {
    (
        prop::collection::vec(0usize..120, 0..4),
        prop::collection::vec(
            prop::option::weighted(0.4, prop::collection::vec(any::<u8>(), 0..=125)),
            0..4,
        ),
        any::<[u8; 4]>(),
    )
        .prop_map(move |(pieces, pings, mask)| Fragmented {
            json: json.clone(),
            pieces,
            pings,
            mask,
        })
}

/// A session's whole input: the guest login, then the requests with the
/// answer each must get, all fragmented.
fn session_input() -> impl Strategy<Value = (Vec<Fragmented>, Vec<(&'static str, u64)>)> {
    prop::collection::vec(request(), 1..5).prop_flat_map(|requests| {
        let mut messages = vec![fragmented(r#"{"type":"guest"}"#.to_string()).boxed()];
        let mut answers = Vec::new();
        for (id, line) in (1u64..).zip(requests) {
            let (json, answer) = match line {
                None => (serde_json::json!({"type":"ping","id":id}), "pong"),
                Some(line) => (
                    serde_json::json!({"type":"cmd","id":id,"line":line}),
                    "reply",
                ),
            };
            messages.push(fragmented(json.to_string()).boxed());
            answers.push((answer, id));
        }
        (messages, Just(answers))
    })
}

/// Connects, writes `bytes` (the upgrade request first) in writes of the
/// given sizes with a pause between them, reads the 101 and returns the
/// session's client.
fn connect_writing(addr: SocketAddr, bytes: &[u8], writes: &[usize], pause: Duration) -> Client {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut pos = 0;
    for &write in writes.iter().cycle() {
        if pos == bytes.len() {
            break;
        }
        let end = (pos + write).min(bytes.len());
        stream.write_all(&bytes[pos..end]).expect("write");
        pos = end;
        // Each write its own segment, and the server may read it alone.
        std::thread::sleep(pause);
    }
    stream
        .set_read_timeout(Some(common::WAIT))
        .expect("timeout");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("the upgrade answer");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    Client::over_handshaken(stream)
}

#[test]
fn random_fragmentations_of_valid_frames_are_answered_by_the_server() {
    let server = ServerProc::start(&["--shards", "1"]);
    let config = Config {
        // No file of failed cases: this runner has no source file to put it by.
        failure_persistence: None,
        ..cases_unless_set(24)
    };
    let mut runner = TestRunner::new(config);
    let input = (session_input(), prop::collection::vec(1usize..200, 1..10));
    runner
        .run(&input, |((messages, answers), writes)| {
            let mut bytes = UPGRADE.as_bytes().to_vec();
            for message in &messages {
                bytes.extend(message.bytes());
            }
            let mut client =
                connect_writing(server.addr, &bytes, &writes, Duration::from_millis(1));
            let welcome = client.recv_until(|f| f["type"] == "welcome" || f["type"] == "error");
            prop_assert_eq!(&welcome["type"], "welcome", "{}", welcome);
            for (kind, id) in answers {
                let answer = client.recv_until(|f| f["id"] == id);
                prop_assert_eq!(&answer["type"], kind, "{}", answer);
                if kind == "reply" {
                    prop_assert_eq!(&answer["ok"], true, "{}", answer);
                }
            }
            Ok(())
        })
        .unwrap_or_else(|failure| panic!("{failure}"));
}

/// Found by `random_fragmentations_of_valid_frames_are_answered_by_the_server`:
/// the start of a frame that came in the same read as the upgrade request
/// was dropped, and the rest of the frame then read as garbage.
#[test]
fn a_frame_begun_in_the_upgrade_request_is_kept_for_its_rest() {
    let server = ServerProc::start(&["--shards", "1"]);
    let guest = client_frame(0x81, br#"{"type":"guest"}"#, [1, 2, 3, 4]);
    let mut bytes = UPGRADE.as_bytes().to_vec();
    bytes.extend_from_slice(&guest);
    // The pause lets the server read the first write alone.
    let pause = Duration::from_millis(200);
    let mut client = connect_writing(server.addr, &bytes, &[UPGRADE.len() + 5, 1000], pause);
    let welcome = client.recv_until(|f| f["type"] == "welcome" || f["type"] == "error");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(client.cmd("look")["ok"], true);
}
