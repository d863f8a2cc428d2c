//! Abusers: connections that break the rules, one attempt after another,
//! cycling through four kinds, each with the answer DESIGN §7 promises:
//!
//! * a command flood (`--soak-flood-commands` `inventory` at once after a
//!   guest login, read as they are answered): `rate_limited` errors, then
//!   close 1008;
//! * garbage: a non-JSON text, an unknown type and a binary frame (an
//!   `error` each, the connection stays), then invalid UTF-8: close 1007;
//! * an oversized frame (`--soak-oversized-bytes`): close 1009;
//! * a slow handshake (the request head a byte per
//!   `--soak-slowloris-byte-ms`): cut off at the server's login timeout.
//!
//! The report counts what the server answered; an attempt answered
//! otherwise is counted as unexpected, with a note.

use super::tracked::Tracked;
use super::Ctx;
use crate::clock::now_ns;
use crate::scenario::sleep_until;
use crate::session::Session;
use crate::ws::{self, Opcode};
use std::rc::Rc;

/// The kinds, in the order an abuser cycles through them.
const KINDS: usize = 4;

/// Error frames the garbage attempt expects before its invalid UTF-8.
const GARBAGE_ERRORS: u64 = 3;

/// Abuser `i`, until the window ends.
pub async fn run(ctx: Rc<Ctx>, i: u64) {
    let end_ns = ctx.phases.window.end_ns;
    let pause_ns = ctx.cfg().soak.soak_abuse_pause_ms * 1_000_000;
    let mut attempt = 0u64;
    while now_ns() < end_ns {
        let kind = ((i + attempt) % KINDS as u64) as usize;
        let outcome = match kind {
            0 => flood(&ctx, i, attempt).await,
            1 => garbage(&ctx, i, attempt).await,
            2 => oversized(&ctx, i, attempt).await,
            _ => slow_handshake(&ctx, i, attempt).await,
        };
        if let Err(why) = outcome {
            ctx.count(|c| {
                c.abuse_unexpected += 1;
                c.note(format!("abuser {i}: {why}"));
            });
        }
        attempt += 1;
        sleep_until((now_ns() + pause_ns).min(end_ns)).await;
    }
}

/// A guest who sends far more commands at once than the rate limit allows.
async fn flood(ctx: &Ctx, i: u64, attempt: u64) -> Result<(), String> {
    let mut spec = ctx.role_spec('a', i, attempt);
    spec.place = None;
    let conn = Tracked::login(ctx, &spec, None)
        .await
        .map_err(|why| format!("flood login: {why}"))?;
    conn.check_seq.set(false);
    ctx.count(|c| c.abuse_floods += 1);
    let commands = ctx.cfg().soak.soak_flood_commands;
    let mut burst = Vec::with_capacity(commands as usize * 40);
    for _ in 0..commands {
        ws::encode_frame(
            &mut burst,
            Opcode::Text,
            br#"{"type":"cmd","line":"inventory"}"#,
            conn.session.next_mask(),
        );
    }
    // Read while writing: a flooder that does not read would be cut off
    // as a slow reader (1013) before the rate limit's close. The server
    // may close before it has read the whole burst.
    let deadline_ns = now_ns() + ctx.connect_timeout_ns();
    let write = async {
        let _ = conn.session.write_all(&burst).await;
        // Then wait for the reader to see the end.
        sleep_until(deadline_ns).await;
    };
    let read = async {
        let _ = conn.read_until(ctx, deadline_ns, |_| false).await;
    };
    futures_lite::future::or(read, write).await;
    let limited = conn.rate_limited.get();
    ctx.count(|c| {
        c.abuse_rate_limited += limited;
        if conn.closed.get() == Some(1008) {
            c.abuse_flood_closed_1008 += 1;
        }
    });
    match conn.closed.get() {
        Some(1008) if limited > 0 => Ok(()),
        other => Err(format!(
            "a flood of {commands} commands got {limited} rate_limited and close {other:?}, \
             not rate_limited then 1008"
        )),
    }
}

/// Frames the protocol refuses: three answered with an error, the last
/// (invalid UTF-8) with close 1007.
async fn garbage(ctx: &Ctx, i: u64, attempt: u64) -> Result<(), String> {
    let spec = ctx.role_spec('g', i, attempt);
    let conn = Tracked::connect(ctx, &spec, false, None).await?;
    ctx.count(|c| c.abuse_garbage += 1);
    let mut frames = Vec::new();
    let mask = conn.session.next_mask();
    ws::encode_frame(&mut frames, Opcode::Text, b"this is not json", mask);
    ws::encode_frame(&mut frames, Opcode::Text, br#"{"type":"teleport"}"#, mask);
    ws::encode_frame(&mut frames, Opcode::Binary, &[0, 1, 2, 3], mask);
    conn.session
        .write_all(&frames)
        .await
        .map_err(|e| format!("garbage: {e}"))?;
    let deadline_ns = now_ns() + ctx.connect_timeout_ns();
    let answered = conn
        .read_until(ctx, deadline_ns, |c| c.errors.get() >= GARBAGE_ERRORS)
        .await;
    let errors = conn.errors.get();
    ctx.count(|c| c.abuse_garbage_errors += errors);
    if answered != Ok(true) {
        return Err(format!(
            "garbage got {errors} error frames of {GARBAGE_ERRORS} ({answered:?})"
        ));
    }
    let mut bad_utf8 = Vec::new();
    ws::encode_frame(&mut bad_utf8, Opcode::Text, &[b'"', 0xff, 0xfe, b'"'], mask);
    let _ = conn.session.write_all(&bad_utf8).await;
    let _ = conn.read_until(ctx, deadline_ns, |_| false).await;
    match conn.closed.get() {
        Some(1007) => {
            ctx.count(|c| c.abuse_garbage_closed_1007 += 1);
            Ok(())
        }
        other => Err(format!("invalid UTF-8 got close {other:?}, not 1007")),
    }
}

/// One text frame larger than the server's frame bound.
async fn oversized(ctx: &Ctx, i: u64, attempt: u64) -> Result<(), String> {
    let spec = ctx.role_spec('o', i, attempt);
    let conn = Tracked::connect(ctx, &spec, false, None).await?;
    ctx.count(|c| c.abuse_oversized += 1);
    let size = ctx.cfg().soak.soak_oversized_bytes as usize;
    let mut frame = Vec::with_capacity(size + 16);
    ws::encode_frame(
        &mut frame,
        Opcode::Text,
        &vec![b' '; size],
        conn.session.next_mask(),
    );
    // The server may close as soon as it has read the frame's length.
    let _ = conn.session.write_all(&frame).await;
    let deadline_ns = now_ns() + ctx.connect_timeout_ns();
    let _ = conn.read_until(ctx, deadline_ns, |_| false).await;
    match conn.closed.get() {
        Some(1009) => {
            ctx.count(|c| c.abuse_oversized_closed_1009 += 1);
            Ok(())
        }
        other => Err(format!("a {size}-byte frame got close {other:?}, not 1009")),
    }
}

/// An HTTP upgrade request trickled a byte at a time (slowloris): the
/// server must cut it off at its login timeout.
async fn slow_handshake(ctx: &Ctx, i: u64, attempt: u64) -> Result<(), String> {
    let spec = ctx.role_spec('h', i, attempt);
    let soak = &ctx.cfg().soak;
    let stream = crate::net::start_connect(spec.target, spec.source)
        .map_err(|e| format!("slow handshake connect: {e}"))?;
    let session = Session::plain(spec.index, stream);
    ctx.count(|c| c.abuse_slow_handshakes += 1);
    let started_ns = now_ns();
    let deadline_ns = started_ns + crate::clock::secs_to_ns(soak.soak_slowloris_max_s);
    let byte_ns = soak.soak_slowloris_byte_ms * 1_000_000;
    let head = ws::handshake_request(&spec.host, &ctx.cfg().path, &ws::handshake_key());
    let trickle = async {
        for byte in head.as_bytes() {
            if session.write_all(std::slice::from_ref(byte)).await.is_err() {
                return true;
            }
            sleep_until(now_ns() + byte_ns).await;
        }
        false
    };
    // Whatever the server says (it may answer nothing), the connection ends.
    let ended = async {
        loop {
            match session.read_into(&ctx.scratch, |_| {}).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    };
    let timeout = async {
        sleep_until(deadline_ns).await;
        false
    };
    let cut = futures_lite::future::or(futures_lite::future::or(ended, trickle), timeout).await;
    session.shutdown();
    if !cut {
        return Err(format!(
            "a slow handshake was not cut off within {:.1} s",
            soak.soak_slowloris_max_s
        ));
    }
    let lasted_ms = (now_ns() - started_ns) / 1_000_000;
    ctx.count(|c| {
        c.abuse_slow_handshakes_cut += 1;
        c.abuse_slow_handshake_cut_ms_max = c.abuse_slow_handshake_cut_ms_max.max(lasted_ms);
    });
    Ok(())
}
