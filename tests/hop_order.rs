//! The cross-shard hop on real glommio executors, as the server runs it
//! (`shard::run`'s inbox task, `shard::router`'s parking): one shard sends
//! interleaved messages for many sessions to another whose inbox is tiny, so
//! that the inbox is full most of the time and the sender parks. Every
//! message must arrive exactly once and, per session, in the order sent —
//! with both ways of waking a shard (`mailbox::Wake`).
//!
//! The sender retries its parked messages the way a shard's retry task does
//! (`run.rs`): after a pause, never by spinning. A spinning sender starved
//! its receiver of the one CPU they shared on a busy machine, and the test
//! then timed out.

use glommio::{LocalExecutorBuilder, Placement};
use std::time::{Duration, Instant};

use mudshard::shard::mailbox::{self, Inbox, Wake};
use mudshard::shard::msg::Msg;
use mudshard::shard::router::Router;

/// Sessions whose messages are interleaved.
const SESSIONS: u16 = 16;
/// Messages per session.
const PER_SESSION: u64 = 1_000;
/// The receiver's inbox: far below what the sender has in flight.
const INBOX_MAX: usize = 16;
/// The sender's burst between looks at its parked messages.
const BURST: u64 = 64;
/// The sender's pause while messages are parked, as `run.rs`'s
/// `PARKED_RETRY_US`.
const PARKED_RETRY: Duration = Duration::from_micros(500);
/// The receiver's longest wait for a wake-up before it counts a stall.
const STALL: Duration = Duration::from_secs(5);

/// What the receiving shard saw.
#[derive(Debug)]
struct Seen {
    /// Next expected number per session.
    next: Vec<u64>,
    out_of_order: u64,
    total: u64,
    /// Waits that ended by the bound instead of a wake-up.
    stalls: u64,
}

async fn wait(inbox: &mut Inbox, socket: &mut Option<glommio::net::UnixStream>) {
    use futures_lite::AsyncReadExt;
    match socket.as_mut() {
        Some(bell) => {
            let mut rings = [0u8; 64];
            let _ = bell.read(&mut rings).await;
            inbox.rearm();
        }
        None => std::future::poll_fn(|cx| inbox.poll_ready(cx)).await,
    }
}

fn run(wake: Wake) {
    let (mailboxes, mut inboxes) = mailbox::create(2, INBOX_MAX, wake).expect("inboxes");
    let mut receiver_inbox = inboxes.pop().expect("two inboxes");
    let total = u64::from(SESSIONS) * PER_SESSION;

    let receiver = LocalExecutorBuilder::new(Placement::Unbound)
        .name("hop-receiver")
        .spawn(move || async move {
            use std::os::fd::FromRawFd;
            // SAFETY: the inbox's own end of its doorbell, handed over once.
            let mut socket = receiver_inbox
                .take_wake_fd()
                .map(|fd| unsafe { glommio::net::UnixStream::from_raw_fd(fd) });
            let mut seen = Seen {
                next: vec![0; SESSIONS as usize],
                out_of_order: 0,
                total: 0,
                stalls: 0,
            };
            let deadline = Instant::now() + Duration::from_secs(60);
            while seen.total < total && Instant::now() < deadline {
                // Bounded, so that a lost wake-up is counted and fails the
                // test instead of hanging it. The sender posts every few
                // hundred µs until it is done, so a wait this long means
                // a wake-up was lost.
                let woken = futures_lite::future::or(
                    async {
                        wait(&mut receiver_inbox, &mut socket).await;
                        true
                    },
                    async {
                        glommio::timer::Timer::new(STALL).await;
                        false
                    },
                )
                .await;
                seen.stalls += u64::from(!woken);
                // Slow on purpose: a few messages, then let others run, so
                // the inbox stays full and the sender keeps parking.
                let mut handled = 0;
                while let Some(msg) = receiver_inbox.try_recv() {
                    if let Msg::WhoAsk { asker, ask } = msg {
                        let next = &mut seen.next[asker as usize];
                        if ask != *next {
                            seen.out_of_order += 1;
                        }
                        *next = ask + 1;
                        seen.total += 1;
                    }
                    handled += 1;
                    if handled % 3 == 0 {
                        glommio::yield_if_needed().await;
                        futures_lite::future::yield_now().await;
                    }
                }
            }
            seen
        })
        .expect("receiver executor");

    let sender = LocalExecutorBuilder::new(Placement::Unbound)
        .name("hop-sender")
        .spawn(move || async move {
            let mut router = Router::new(0, mailboxes);
            let mut counts = vec![0u64; SESSIONS as usize];
            let mut sent = 0u64;
            let deadline = Instant::now() + Duration::from_secs(60);
            while (sent < total || router.parked_len() > 0) && Instant::now() < deadline {
                for _ in 0..BURST {
                    if sent == total {
                        break;
                    }
                    // Sessions interleaved unevenly: session s gets its
                    // messages at its own pace.
                    let session = ((sent * 7) % u64::from(SESSIONS)) as usize;
                    let session = if counts[session] < PER_SESSION {
                        session
                    } else {
                        counts
                            .iter()
                            .position(|&c| c < PER_SESSION)
                            .expect("some session has messages left")
                    };
                    router.post(
                        1,
                        Msg::WhoAsk {
                            asker: session as u16,
                            ask: counts[session],
                        },
                    );
                    counts[session] += 1;
                    sent += 1;
                }
                if router.flush_parked() > 0 {
                    glommio::timer::Timer::new(PARKED_RETRY).await;
                } else {
                    futures_lite::future::yield_now().await;
                }
            }
            (sent, router.parked_len(), router.inbox_full_total)
        })
        .expect("sender executor");

    let (sent, parked, full) = sender.join().expect("the sender finishes");
    let seen = receiver.join().expect("the receiver finishes");
    // The receiver first: once it gives up, its inbox is gone and whatever
    // the sender still had goes nowhere, which would look like success.
    assert_eq!(seen.stalls, 0, "a wake-up was lost: {seen:?}");
    assert_eq!(seen.total, total, "every message arrived once: {seen:?}");
    assert_eq!(sent, total, "the sender sent everything");
    assert_eq!(parked, 0, "nothing left parked");
    assert!(
        full > 0,
        "the inbox never reached its bound: the test tests nothing"
    );
    assert_eq!(seen.out_of_order, 0, "per-session order kept: {seen:?}");
    assert!(
        seen.next.iter().all(|&n| n == PER_SESSION),
        "each session got all its messages: {seen:?}"
    );
}

#[test]
fn hops_keep_per_session_order_and_lose_nothing_at_a_full_inbox_waker() {
    run(Wake::Waker);
}

#[test]
fn hops_keep_per_session_order_and_lose_nothing_at_a_full_inbox_socket() {
    run(Wake::Socket);
}
