//! The seams for resume, seen from outside: sessions kept detached for the
//! resume window when it is set (and let go at once when it is not), and
//! guest tokens that are unguessable rather than names of session slots.

mod common;
use common::*;
use std::time::{Duration, Instant};

const LIMITS_WITH_WINDOW: &str = "[limits]\nresume_window_ms = 1500\n";

#[test]
fn a_dropped_session_stays_in_the_world_for_the_resume_window_then_leaves() {
    let (server, _dir) = ServerProc::start_with_map(LIMITS_WITH_WINDOW, &["--no-ambient"]);
    let mut watcher = Client::guest(server.addr, Some("watcher"));
    let dropper = Client::guest(server.addr, Some("dropper"));
    watcher.event("enter", "dropper");
    // The network goes: no close frame, just the socket.
    let dropped = Instant::now();
    drop(dropper);
    watcher.expect_silence(700);
    let look = watcher.cmd("look");
    assert_eq!(look["room"]["players_total"], 2, "still there: {look}");
    let left = watcher.event("leave", "dropper");
    let after = dropped.elapsed();
    assert!(
        after >= Duration::from_millis(1500),
        "left after {after:?}, before the window ended: {left}"
    );
    let look = watcher.cmd("look");
    assert_eq!(look["room"]["players_total"], 1, "{look}");
}

#[test]
fn without_a_resume_window_a_dropped_session_leaves_at_once() {
    let server = ServerProc::start(&["--no-ambient"]);
    let mut watcher = Client::guest(server.addr, Some("watcher"));
    let dropper = Client::guest(server.addr, Some("dropper"));
    watcher.event("enter", "dropper");
    let dropped = Instant::now();
    drop(dropper);
    watcher.event("leave", "dropper");
    assert!(dropped.elapsed() < Duration::from_millis(1000));
}

#[test]
fn a_detached_account_is_taken_over_by_a_new_login_at_once() {
    let (server, _dir) = ServerProc::start_with_map(LIMITS_WITH_WINDOW, &["--no-ambient"]);
    let first = Client::register(server.addr, "rejoiner", "correct horse");
    drop(first);
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let mut again = Client::login(server.addr, "rejoiner", "correct horse");
    assert_eq!(again.welcome["name"], "rejoiner");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the login waited for the window instead of taking the detached session over"
    );
    let look = again.cmd("look");
    assert_eq!(look["room"]["players_total"], 1, "one body: {look}");
}

#[test]
fn a_guest_token_is_random_and_not_the_session_id() {
    let server = ServerProc::start(&["--shards", "1", "--no-ambient"]);
    let a = Client::guest(server.addr, None);
    let b = Client::guest(server.addr, None);
    let (ta, tb) = (
        a.welcome["token"].as_str().expect("token"),
        b.welcome["token"].as_str().expect("token"),
    );
    assert_ne!(ta, tb);
    for token in [ta, tb] {
        let random = token.strip_prefix("s.").expect("a session token");
        // 128 bits in URL-safe base64 without padding.
        assert_eq!(random.len(), 22, "{token}");
        assert!(random
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }
}
