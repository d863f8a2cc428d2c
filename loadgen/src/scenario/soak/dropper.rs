//! Droppers: players in the chat rooms whose socket is cut (a reset, no
//! close frame) every `--soak-drop-online-ms`, who come back after
//! `--soak-drop-offline-ms` with `resume` and must get `resumed` and then
//! every frame after the last one they read, in order, with its original
//! seq: no gap, no duplicate (checked frame by frame in `tracked.rs`), and
//! all of the announced replay. A `resume_failed` is an error here: a
//! dropper is away for much less than the resume window and misses little.

use super::tracked::{ResumeAnswer, Tracked};
use super::Ctx;
use crate::clock::now_ns;
use crate::scenario::sleep_until;
use std::rc::Rc;

/// Dropper `i`, until the window ends; then it ends connected, politely.
pub async fn run(ctx: Rc<Ctx>, i: u64) {
    let end_ns = ctx.phases.window.end_ns;
    let offline_ns = ctx.cfg().soak.soak_drop_offline_ms * 1_000_000;
    let online_ns = ctx.cfg().soak.soak_drop_online_ms * 1_000_000;
    let mut generation = 0u64;
    let mut current: Option<(Tracked, u64)> = None;
    while now_ns() < end_ns {
        let spec = ctx.role_spec('d', i, generation);
        let (conn, replay_through) = match current.take() {
            Some(playing) => playing,
            None => match Tracked::login(&ctx, &spec, None).await {
                Ok(conn) => {
                    let seq = conn.last_seq.get();
                    (conn, seq)
                }
                Err(why) => {
                    ctx.count(|c| {
                        c.logins_failed += 1;
                        c.note(format!("dropper {i}: {why}"));
                    });
                    generation += 1;
                    sleep_until((now_ns() + super::RETRY_PAUSE_NS).min(end_ns)).await;
                    continue;
                }
            },
        };
        // Online: read (and check) what the room says.
        let online_until = (now_ns() + online_ns).min(end_ns.max(now_ns()));
        if let Err(why) = conn.read_until(&ctx, online_until, |_| false).await {
            ctx.count(|c| {
                c.dropped_by_server += 1;
                c.note(format!("dropper {i} ended by the server: {why}"));
            });
        }
        check_replay(&ctx, &conn, replay_through, i);
        let Some(token) = conn.token.borrow().clone() else {
            // Cannot happen after a login; counted rather than trusted.
            ctx.count(|c| c.note(format!("dropper {i}: no token")));
            continue;
        };
        let last_seq = conn.last_seq.get();
        conn.cut();
        ctx.count(|c| c.drops += 1);
        // Away: the room goes on without it. Even past the window's end, the
        // cycle finishes (bounded by the stop time), so that no session is
        // left detached by the load generator itself.
        sleep_until(now_ns() + offline_ns).await;
        match Tracked::resume(&ctx, &spec, &token, last_seq, None).await {
            ResumeAnswer::Resumed(conn, replayed) => {
                ctx.count(|c| {
                    c.resumes += 1;
                    c.replayed_frames += replayed;
                });
                current = Some((conn, last_seq + replayed));
            }
            ResumeAnswer::Failed => {
                ctx.count(|c| {
                    c.resumes_failed += 1;
                    c.note(format!("dropper {i}: resume_failed after {last_seq}"));
                });
                generation += 1;
            }
            ResumeAnswer::Broken(why) => {
                ctx.count(|c| {
                    c.resume_errors += 1;
                    c.note(format!("dropper {i}: {why}"));
                });
                generation += 1;
            }
        }
    }
    if let Some((conn, replay_through)) = current {
        // The last replay is read in full before leaving.
        let deadline_ns = now_ns() + ctx.connect_timeout_ns();
        let _ = conn
            .read_until(&ctx, deadline_ns, |c| c.last_seq.get() >= replay_through)
            .await;
        check_replay(&ctx, &conn, replay_through, i);
        conn.close();
    }
}

/// Every frame a `resumed` announced must have been read by now.
fn check_replay(ctx: &Ctx, conn: &Tracked, replay_through: u64, i: u64) {
    let last = conn.last_seq.get();
    if last < replay_through {
        ctx.count(|c| {
            c.resume_errors += 1;
            c.note(format!(
                "dropper {i}: replay announced frames through {replay_through}, read through {last}"
            ));
        });
    }
}
