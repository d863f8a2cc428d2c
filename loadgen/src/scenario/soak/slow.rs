//! Slow readers: players, each in a quiet room of its own, who stop reading
//! (with a small receive buffer, so the server's queue rather than the
//! kernel holds what they leave unread) while asking for `help` at
//! `--soak-slow-cmd-rate`, until the server cuts them off with 1013 for
//! passing its outbound bound. Then they read what reached them up to the
//! close frame, resume on an ordinary socket, and must get every frame after
//! the last one they read that the server still holds, checked frame by
//! frame like the droppers'; then the next stall starts with a fresh login.
//!
//! A quiet room, because the server counts the replay against the outbound
//! bound: a replay larger than it (as a cut-off reader's is, when the
//! server holds more history than that bound) is cut off again by the first
//! frame queued before it has drained. In a room of their own nothing else
//! is queued meanwhile.
//!
//! The server's close frame (1013) often does not arrive: it closes the
//! socket with the reader's last commands unread, which resets the
//! connection and drops what was still on its way. The frames lost so are
//! what `resume` is for; the cut-off is counted when the connection ends
//! instead of answering our ping, and the server's own count is reported.
//!
//! The reader cannot see the cut-off without reading, so while stalled it
//! watches the server's `mudshard_outbound_drops_total`: when it grows,
//! someone was cut, and the reader reads up to a `ping` of its own. The
//! `pong` means it was not the one (it stalls again); a close frame or the
//! end of the connection means it was.

use super::tracked::{ResumeAnswer, Tracked};
use super::Ctx;
use crate::clock::now_ns;
use crate::scenario::sleep_until;
use std::rc::Rc;

/// The segment size a slow reader's socket announces, bytes. The kernel
/// sizes the server's send buffer by the segment size (ten segments, twice
/// over): on loopback, with its 64 KiB segments, that is over a megabyte
/// the server's socket would swallow before its own bounded queue even
/// begins to fill. Small segments keep it to tens of KiB, as on a real
/// network, so the cut-off comes from the server's bound, not the kernel's.
pub const SEGMENT_BYTES: u32 = 1200;

/// How often a stalled reader looks at the server's cut-off counter, ms.
const WATCH_MS: u64 = 200;

/// The command whose reply fills the queue: the longest fixed reply.
const FILLER: &[u8] = br#"{"type":"cmd","line":"help"}"#;

/// How a stall ended.
enum Stall {
    /// The server's cut-off counter grew, or a write failed: look.
    Look,
    /// `--soak-slow-stall-max-s` passed.
    TooLong,
    /// The window ended.
    Over,
}

/// Slow reader `i`, until the window ends.
pub async fn run(ctx: Rc<Ctx>, i: u64) {
    let end_ns = ctx.phases.window.end_ns;
    let rcvbuf = Some(ctx.cfg().soak.soak_slow_rcvbuf_bytes);
    let mut generation = 0u64;
    let mut current: Option<Tracked> = None;
    while now_ns() < end_ns {
        let mut spec = ctx.role_spec('s', i, generation);
        spec.place = Some(super::plan::slow_reader_cell(i, ctx.cfg().grid_width));
        let conn = match current.take() {
            Some(conn) => conn,
            None => match Tracked::login(&ctx, &spec, rcvbuf).await {
                Ok(conn) => conn,
                Err(why) => {
                    ctx.count(|c| {
                        c.logins_failed += 1;
                        c.note(format!("slow reader {i}: {why}"));
                    });
                    generation += 1;
                    sleep_until((now_ns() + super::RETRY_PAUSE_NS).min(end_ns)).await;
                    continue;
                }
            },
        };
        ctx.count(|c| c.slow_stalls += 1);
        let stall = stall(&ctx, &conn).await;
        if matches!(stall, Stall::Over) {
            // The run is over: leave at once, politely (the server reads a
            // close frame even while its writes to us are blocked), rather
            // than read a backlog that may outlast the drain.
            conn.close();
            return;
        }
        // Read up to our own ping: its pong says we were not cut off.
        let ping_id = now_ns();
        let pongs = conn.pongs.get();
        conn.send_now(format!(r#"{{"type":"ping","id":{ping_id}}}"#).as_bytes());
        let deadline_ns = now_ns() + ctx.connect_timeout_ns();
        match conn
            .read_until(&ctx, deadline_ns, |c| c.pongs.get() > pongs)
            .await
        {
            Ok(true) => {
                if matches!(stall, Stall::TooLong) {
                    ctx.count(|c| c.slow_not_cut += 1);
                }
                current = Some(conn);
                continue;
            }
            Ok(false) => {
                ctx.count(|c| {
                    c.dropped_by_server += 1;
                    c.note(format!("slow reader {i}: neither pong nor close in time"));
                });
            }
            Err(_) => {
                let code = conn.closed.get();
                ctx.count(|c| {
                    c.slow_cut += 1;
                    if code == Some(crate::ws::CLOSE_TRY_AGAIN_LATER) {
                        c.slow_closed_1013 += 1;
                    } else if code.is_some() {
                        c.dropped_by_server += 1;
                        c.note(format!("slow reader {i} closed with {code:?}, not 1013"));
                    }
                });
            }
        }
        let (Some(token), last_seq) = (conn.token.borrow().clone(), conn.last_seq.get()) else {
            continue;
        };
        conn.cut();
        // Back on an ordinary socket, as a client that reads again: the
        // replay (more than the server's outbound bound, which it counts
        // against) drains before anything else is queued.
        match Tracked::resume(&ctx, &spec, &token, last_seq, None).await {
            ResumeAnswer::Resumed(conn, replayed) => {
                ctx.count(|c| {
                    c.slow_resumed += 1;
                    c.replayed_frames += replayed;
                });
                let deadline_ns = now_ns() + ctx.connect_timeout_ns();
                let through = last_seq + replayed;
                let read = conn
                    .read_until(&ctx, deadline_ns, |c| c.last_seq.get() >= through)
                    .await;
                if read != Ok(true) {
                    ctx.count(|c| {
                        c.resume_errors += 1;
                        c.note(format!(
                            "slow reader {i}: replay through {through} not read ({read:?})"
                        ));
                    });
                }
                // The next stall starts on a fresh slow socket.
                conn.close();
                generation += 1;
            }
            ResumeAnswer::Failed => {
                ctx.count(|c| c.slow_resume_failed += 1);
                generation += 1;
            }
            ResumeAnswer::Broken(why) => {
                ctx.count(|c| {
                    c.resume_errors += 1;
                    c.note(format!("slow reader {i}: {why}"));
                });
                generation += 1;
            }
        }
    }
    if let Some(conn) = current {
        conn.close();
    }
}

/// Stops reading and asks for `help` at the configured rate until the
/// server's cut-off counter grows, a write fails, the stall has lasted
/// `--soak-slow-stall-max-s`, or the window ends.
async fn stall(ctx: &Ctx, conn: &Tracked) -> Stall {
    let soak = &ctx.cfg().soak;
    let interval_ns = (1e9 / soak.soak_slow_cmd_rate) as u64;
    let until_ns = now_ns() + crate::clock::secs_to_ns(soak.soak_slow_stall_max_s);
    let end_ns = ctx.phases.window.end_ns;
    let target = ctx.target();
    let cuts_before = super::leak::read_metric(target, "mudshard_outbound_drops_total").await;
    let mut next_send_ns = now_ns();
    let mut next_watch_ns = now_ns() + WATCH_MS * 1_000_000;
    loop {
        let now = now_ns();
        if now >= end_ns {
            return Stall::Over;
        }
        if now >= until_ns {
            return Stall::TooLong;
        }
        if now >= next_send_ns {
            next_send_ns += interval_ns;
            // Refused: the connection is gone, or the server has stopped
            // reading it and our outbox is full.
            if !conn.send_now(FILLER) {
                return Stall::Look;
            }
        }
        if now >= next_watch_ns {
            next_watch_ns = now + WATCH_MS * 1_000_000;
            let cuts = super::leak::read_metric(target, "mudshard_outbound_drops_total").await;
            if let (Some(before), Some(now)) = (cuts_before, cuts) {
                if now > before {
                    return Stall::Look;
                }
            }
        }
        sleep_until(next_send_ns.min(next_watch_ns)).await;
    }
}
