//! Frame decode: the read path every client message takes before the game
//! sees it — WebSocket header parse and unmask (`net::ws::parse_frame`), the
//! UTF-8 check of a text message, and the simd-json decode of the payload
//! (`protocol::decode::decode_with`, with the parser's buffers kept as a shard keeps them).
//!
//! Why it matters: it runs once per command of every player on the shard that
//! holds the connection, so its cost is paid `commands/s` times per core
//! before any game work. The `rtt` and `chat` scenarios send `cmd` frames
//! like the ones here.
//!
//! Each iteration first copies the wire bytes into a reused scratch buffer
//! (the server reads them into its scratch buffer too, and both unmasking and
//! simd-json rewrite the buffer in place), so a ~100-byte `memcpy` is part of
//! every figure.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

use mudshard::net::ws::{self, Kind};
use mudshard::protocol::decode::{decode_with, ClientFrame};

/// The server's default limit on one client message (DESIGN §7).
const PAYLOAD_BYTES_MAX: usize = 64 * 1024;
/// Any client mask; the value does not change the work.
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
/// Frames one `recv` hands the server at once in the batched case.
const FRAMES_PER_READ: usize = 64;

/// Payloads as the load generator and a browser client send them.
const PAYLOADS: &[(&str, &[u8])] = &[
    ("cmd_look", br#"{"type":"cmd","id":4711,"line":"look"}"#),
    (
        "cmd_say",
        br#"{"type":"cmd","id":4712,"line":"say hello everyone, has anyone seen the blacksmith today?"}"#,
    ),
    (
        "cmd_say_escaped",
        br#"{"type":"cmd","id":"c-4713","line":"say \"quoted\" and caf\u00e9 \\ back"}"#,
    ),
    ("ping", br#"{"type":"ping","id":4714}"#),
];

/// A masked, final text frame as a client puts it on the wire.
fn masked_text_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x81];
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
    out.extend_from_slice(&MASK);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i & 3]));
    out
}

/// Parses, checks and decodes every frame in `buf`, as the connection's read
/// path does; returns how many were commands or pings.
fn read_frames(buf: &mut [u8], buffers: &mut simd_json::Buffers) -> usize {
    let mut pos = 0;
    let mut decoded = 0;
    while pos < buf.len() {
        let frame = match ws::parse_frame(&mut buf[pos..], PAYLOAD_BYTES_MAX) {
            Ok(Some(frame)) => frame,
            Ok(None) | Err(_) => break,
        };
        let (start, end) = (pos + frame.payload_start, pos + frame.payload_end);
        pos = end;
        debug_assert_eq!(frame.kind, Kind::Text);
        let payload = &mut buf[start..end];
        if simdutf8::basic::from_utf8(payload).is_err() {
            break;
        }
        if let Ok(ClientFrame::Cmd { .. } | ClientFrame::Ping { .. }) =
            decode_with(payload, buffers)
        {
            decoded += 1;
        }
    }
    decoded
}

/// Header parse and unmask alone.
fn bench_unmask(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_decode/ws_parse_unmask");
    for (name, payload) in PAYLOADS {
        let wire = masked_text_frame(payload);
        let mut scratch = wire.clone();
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                scratch.copy_from_slice(&wire);
                black_box(ws::parse_frame(black_box(&mut scratch), PAYLOAD_BYTES_MAX))
            })
        });
    }
    group.finish();
}

/// The simd-json decode of an unmasked payload alone.
fn bench_json(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_decode/json_decode");
    for (name, payload) in PAYLOADS {
        let mut scratch = payload.to_vec();
        let mut buffers = simd_json::Buffers::default();
        group.throughput(Throughput::Bytes(payload.len() as u64));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                scratch.copy_from_slice(payload);
                matches!(
                    decode_with(black_box(&mut scratch), &mut buffers),
                    Ok(ClientFrame::Cmd { .. } | ClientFrame::Ping { .. })
                )
            })
        });
    }
    group.finish();
}

/// simd-json's parse alone, as `decode` calls it (fresh internal buffers on
/// every call) and with buffers kept from one call to the next: how much of
/// `json_decode` is the parser's per-call allocation.
fn bench_simd_json_buffers(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_decode/simd_json_parse");
    let (_, payload) = PAYLOADS[1];
    let mut scratch = payload.to_vec();
    let mut buffers = simd_json::Buffers::new(PAYLOAD_BYTES_MAX);
    group.throughput(Throughput::Bytes(payload.len() as u64));
    group.bench_function("fresh_buffers", |b| {
        b.iter(|| {
            scratch.copy_from_slice(payload);
            simd_json::to_borrowed_value(black_box(&mut scratch)).is_ok()
        })
    });
    group.bench_function("reused_buffers", |b| {
        b.iter(|| {
            scratch.copy_from_slice(payload);
            simd_json::borrowed::to_value_with_buffers(black_box(&mut scratch), &mut buffers)
                .is_ok()
        })
    });
    group.finish();
}

/// The whole read path for one frame: wire bytes in, a `ClientFrame` out.
fn bench_full(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_decode/full");
    for (name, payload) in PAYLOADS {
        let wire = masked_text_frame(payload);
        let mut scratch = wire.clone();
        let mut buffers = simd_json::Buffers::default();
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                scratch.copy_from_slice(&wire);
                let decoded = read_frames(black_box(&mut scratch), &mut buffers);
                assert_eq!(decoded, 1);
                decoded
            })
        });
    }
    group.finish();
}

/// The whole read path for 64 frames that arrived in one read (a busy
/// client); the time is per read, the throughput per frame.
fn bench_batched(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_decode/full_batch_64");
    let (name, payload) = PAYLOADS[1];
    let wire: Vec<u8> = (0..FRAMES_PER_READ)
        .flat_map(|_| masked_text_frame(payload))
        .collect();
    let mut scratch = wire.clone();
    let mut buffers = simd_json::Buffers::default();
    group.throughput(Throughput::Elements(FRAMES_PER_READ as u64));
    group.bench_function(BenchmarkId::from_parameter(name), |b| {
        b.iter(|| {
            scratch.copy_from_slice(&wire);
            let decoded = read_frames(black_box(&mut scratch), &mut buffers);
            assert_eq!(decoded, FRAMES_PER_READ);
            decoded
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_unmask,
    bench_json,
    bench_simd_json_buffers,
    bench_full,
    bench_batched
);
criterion_main!(benches);
