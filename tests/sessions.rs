//! Sessions that survive drops, seen from outside: kept detached for the
//! resume window (and let go at once without one), resumed with every frame
//! they missed or a clear `resume_failed`, and tokens that cannot be guessed.

mod common;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const RESUMABLE: &str = "[limits]\nresume_window_ms = 5000\n";

/// A new connection that asks to resume `token` from `last_seq`; the first
/// frame it gets (`resumed`, or an `error`).
fn resume(server: &ServerProc, token: &str, last_seq: u64) -> (Client, Value) {
    let mut c = Client::connect(server.addr);
    c.last_seq = last_seq;
    c.send(json!({"type":"resume","token":token,"last_seq":last_seq}));
    let first = c.recv();
    (c, first)
}

fn token_of(c: &Client) -> String {
    c.welcome["token"].as_str().expect("token").to_string()
}

fn metric_sum(server: &ServerProc, name: &str) -> u64 {
    let (_, text) = server.http_get("/metrics");
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with('{'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_resumed_session_gets_exactly_the_frames_it_missed_then_live_ones() {
    let (server, _dir) = ServerProc::start_with_map(RESUMABLE, &["--no-ambient", "--shards", "2"]);
    let mut talker = Client::guest(server.addr, Some("talker"));
    let mut dropper = Client::guest(server.addr, Some("dropper"));
    talker.event("enter", "dropper");
    talker.cmd("say before the drop");
    dropper.event("say", "before the drop");
    let (token, seen) = (token_of(&dropper), dropper.last_seq);
    drop(dropper);
    talker.event("system", "dropper has lost their link");
    let look = talker.cmd("look");
    assert!(
        look["text"]
            .as_str()
            .unwrap_or("")
            .contains("dropper (link-dead)"),
        "{look}"
    );
    assert_eq!(look["room"]["linkdead"], json!(["dropper"]), "{look}");
    for i in 0..3 {
        talker.cmd(&format!("say missed {i}"));
    }
    let (mut back, first) = resume(&server, &token, seen);
    assert_eq!(first["type"], "resumed", "{first}");
    assert_eq!(first["replayed"], 3, "{first}");
    // In order, each with the next seq (the client checks there is no gap).
    for i in 0..3 {
        let said = back.recv();
        assert_eq!(said["kind"], "say", "{said}");
        assert!(said["text"]
            .as_str()
            .unwrap_or("")
            .contains(&format!("missed {i}")));
    }
    talker.event("system", "dropper is back");
    talker.cmd("say live again");
    let live = back.recv();
    assert!(
        live["text"].as_str().unwrap_or("").contains("live again"),
        "{live}"
    );
    assert_eq!(back.cmd("look")["ok"], true);
}

#[test]
fn a_session_resumes_from_any_shard_as_often_as_it_drops() {
    let (server, _dir) = ServerProc::start_with_map(RESUMABLE, &["--no-ambient", "--shards", "2"]);
    let mut talker = Client::guest(server.addr, Some("talker"));
    let mut c = Client::guest(server.addr, Some("rover"));
    let token = token_of(&c);
    for round in 0..16 {
        let seen = c.last_seq;
        drop(c);
        talker.cmd(&format!("say round {round}"));
        let (back, first) = resume(&server, &token, seen);
        assert_eq!(first["type"], "resumed", "round {round}: {first}");
        c = back;
        c.event("say", &format!("round {round}"));
    }
    assert_eq!(c.cmd("look")["room"]["players_total"], 2);
    assert_eq!(metric_sum(&server, "mudshard_resumes_total"), 16);
    assert!(
        metric_sum(&server, "mudshard_resumes_handed_over_total") > 0,
        "no resume arrived on the other shard in 16 tries"
    );
}

#[test]
fn an_account_resumes_with_its_login_token() {
    let (server, _dir) = ServerProc::start_with_map(RESUMABLE, &["--no-ambient"]);
    let mut talker = Client::guest(server.addr, Some("talker"));
    let member = Client::register(server.addr, "member", "correct horse");
    talker.event("enter", "member");
    let (token, seen) = (token_of(&member), member.last_seq);
    drop(member);
    talker.cmd("say while you were out");
    let (mut back, first) = resume(&server, &token, seen);
    assert_eq!(first["type"], "resumed", "{first}");
    back.event("say", "while you were out");
}

#[test]
fn a_wrong_token_fails_cleanly_and_the_connection_can_log_in() {
    let (server, _dir) = ServerProc::start_with_map(RESUMABLE, &["--no-ambient"]);
    let victim = Client::guest(server.addr, Some("victim"));
    let token = token_of(&victim);
    // Right session, guessed secret.
    let (_, sid) = token.rsplit_once('.').expect("guest token");
    let guess = format!("s.AAAAAAAAAAAAAAAAAAAAAA.{sid}");
    let (mut c, first) = resume(&server, &guess, 1);
    assert_eq!(
        (first["type"].as_str(), first["code"].as_str()),
        (Some("error"), Some("resume_failed")),
        "{first}"
    );
    c.last_seq = 0;
    c.send(json!({"type":"guest","name":"fresh"}));
    let welcome = c.recv_until(|f| f["type"] == "welcome");
    assert_eq!(welcome["name"], "fresh");
    for junk in ["", "nonsense", "s.x.y"] {
        let (_, first) = resume(&server, junk, 0);
        assert_eq!(first["code"], "resume_failed", "{junk:?}: {first}");
    }
}

/// A resume of an account whose session has ended is refused only after
/// the directory has been asked whose it is (the connection reads nothing
/// meanwhile); the connection then reads again and can log in. (As a
/// browser page does when it reloads: its resume fails, and it logs in
/// with its account token on the same connection.)
#[test]
fn a_resume_refused_after_the_lookup_leaves_the_connection_reading() {
    let map = format!("{RESUMABLE}[auth]\nargon2_memory_kib = 64\nargon2_iterations = 1\n");
    let (server, _dir) = ServerProc::start_with_map(&map, &["--shards", "2", "--no-ambient"]);
    for round in 0..4 {
        let creds = format!(r#"{{"name":"keeper{round}","password":"correct horse"}}"#);
        let (status, body) = http_post_json(server.addr, "/api/register", &creds);
        assert_eq!(status, 201, "{body}");
        let token = body["token"].as_str().expect("token").to_string();
        let mut gone = Client::connect(server.addr);
        gone.send(json!({"type":"login","token":token}));
        gone.recv_until(|f| f["type"] == "welcome");
        gone.cmd("quit");
        let (mut c, first) = resume(&server, &token, 1);
        assert_eq!(
            (first["type"].as_str(), first["code"].as_str()),
            (Some("error"), Some("resume_failed")),
            "{first}"
        );
        c.last_seq = 0;
        c.send(json!({"type":"login","token":token}));
        let welcome = c.recv_until(|f| f["type"] == "welcome");
        assert_eq!(welcome["name"], format!("keeper{round}"));
    }
}

#[test]
fn guessing_tokens_is_rate_limited() {
    let (server, _dir) = ServerProc::start_with_map(RESUMABLE, &["--no-ambient"]);
    let victim = Client::guest(server.addr, Some("victim"));
    let token = token_of(&victim);
    let (_, sid) = token.rsplit_once('.').expect("guest token");
    let mut codes = Vec::new();
    for i in 0..8 {
        let guess = format!("s.AAAAAAAAAAAAAAAAAAAAA{}.{sid}", (b'A' + i) as char);
        let (_, first) = resume(&server, &guess, 1);
        codes.push(first["code"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(codes[0], "resume_failed");
    assert_eq!(
        codes.last().map(String::as_str),
        Some("rate_limited"),
        "{codes:?}"
    );
}

#[test]
fn a_resume_that_takes_a_live_session_closes_its_old_connection_with_4001() {
    let (server, _dir) = ServerProc::start_with_map(RESUMABLE, &["--no-ambient"]);
    let mut first = Client::guest(server.addr, Some("twin"));
    assert_eq!(first.cmd("look")["ok"], true);
    let (token, seen) = (token_of(&first), first.last_seq);
    // The same client in a second tab, resuming while the first is open.
    let (mut second, answer) = resume(&server, &token, seen);
    assert_eq!(answer["type"], "resumed", "{answer}");
    assert_eq!(
        first.expect_close(),
        4001,
        "the old connection is told, not cut"
    );
    assert_eq!(second.cmd("look")["ok"], true);
}

#[test]
fn forged_login_tokens_are_rate_limited_by_address() {
    let (server, _dir) = ServerProc::start_with_map(RESUMABLE, &["--no-ambient"]);
    let mut codes = Vec::new();
    for i in 0..7 {
        let mut c = Client::connect(server.addr);
        c.send(json!({"type":"login","token":format!("nobody.{i}.forged")}));
        let first = c.recv();
        codes.push(first["code"].as_str().unwrap_or("").to_string());
    }
    assert_eq!(codes[0], "bad_credentials", "{codes:?}");
    assert_eq!(
        codes.last().map(String::as_str),
        Some("rate_limited"),
        "{codes:?}"
    );
}

#[test]
fn a_resume_after_the_window_or_past_the_history_fails_cleanly() {
    let limits = "[limits]\nresume_window_ms = 800\nresume_frames_max = 2\n";
    let (server, _dir) = ServerProc::start_with_map(limits, &["--no-ambient"]);
    let mut talker = Client::guest(server.addr, Some("talker"));
    // Past the history: five frames missed, two held.
    let spammed = Client::guest(server.addr, Some("spammed"));
    talker.event("enter", "spammed");
    let (token, seen) = (token_of(&spammed), spammed.last_seq);
    drop(spammed);
    for i in 0..5 {
        talker.cmd(&format!("say {i}"));
    }
    let (_, first) = resume(&server, &token, seen);
    assert_eq!(first["code"], "resume_failed", "{first}");
    // Past the window.
    let late = Client::guest(server.addr, Some("late"));
    let (token, seen) = (token_of(&late), late.last_seq);
    drop(late);
    std::thread::sleep(Duration::from_millis(2500));
    let (_, first) = resume(&server, &token, seen);
    assert_eq!(first["code"], "resume_failed", "{first}");
}

const LIMITS_WITH_WINDOW: &str = "[limits]\nresume_window_ms = 1500\n";

#[test]
fn sessions_are_kept_for_a_minute_by_default() {
    let server = ServerProc::start(&["--no-ambient"]);
    let mut watcher = Client::guest(server.addr, Some("watcher"));
    let dropper = Client::guest(server.addr, Some("dropper"));
    watcher.event("enter", "dropper");
    let (token, seen) = (token_of(&dropper), dropper.last_seq);
    drop(dropper);
    watcher.event("system", "dropper has lost their link");
    let (_back, first) = resume(&server, &token, seen);
    assert_eq!(first["type"], "resumed", "{first}");
}

#[test]
fn a_dropped_session_stays_in_the_world_for_the_resume_window_then_leaves() {
    let (server, _dir) = ServerProc::start_with_map(LIMITS_WITH_WINDOW, &["--no-ambient"]);
    let mut watcher = Client::guest(server.addr, Some("watcher"));
    let dropper = Client::guest(server.addr, Some("dropper"));
    watcher.event("enter", "dropper");
    // The network goes: no close frame, just the socket.
    let dropped = Instant::now();
    drop(dropper);
    watcher.event("system", "dropper has lost their link");
    watcher.expect_silence(500);
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
fn the_detached_gauge_counts_a_dropped_session_only_until_its_window_ends() {
    let (server, _dir) =
        ServerProc::start_with_map(LIMITS_WITH_WINDOW, &["--no-ambient", "--shards", "1"]);
    let mut watcher = Client::guest(server.addr, Some("watcher"));
    let dropper = Client::guest(server.addr, Some("dropper"));
    watcher.event("enter", "dropper");
    drop(dropper);
    watcher.event("system", "dropper has lost their link");
    assert_eq!(metric_sum(&server, "mudshard_sessions_detached"), 1);
    assert_eq!(metric_sum(&server, "mudshard_connections"), 1);
    watcher.event("leave", "dropper");
    // Expired: neither detached nor a connection, and the shard still
    // answers (connections are its sessions less the detached ones).
    assert_eq!(metric_sum(&server, "mudshard_sessions_detached"), 0);
    assert_eq!(metric_sum(&server, "mudshard_connections"), 1);
    assert_eq!(metric_sum(&server, "mudshard_players"), 1);
}

#[test]
fn without_a_resume_window_a_dropped_session_leaves_at_once() {
    let (server, _dir) =
        ServerProc::start_with_map("[limits]\nresume_window_ms = 0\n", &["--no-ambient"]);
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
        let (secret, _session) = token.rsplit_once('.').expect("secret.session");
        let random = secret.strip_prefix("s.").expect("a session token");
        // 128 bits in URL-safe base64 without padding.
        assert_eq!(random.len(), 22, "{token}");
        assert!(random
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }
}

#[test]
fn a_resumed_connection_still_counts_against_its_address() {
    let limits = "[limits]\nresume_window_ms = 5000\nconnections_per_ip_max = 3\n";
    let (server, _dir) = ServerProc::start_with_map(limits, &["--no-ambient", "--shards", "2"]);
    let mut keep = Vec::new();
    let mut c = Client::guest(server.addr, Some("rover"));
    let token = token_of(&c);
    for _ in 0..4 {
        let seen = c.last_seq;
        drop(c);
        let (back, first) = resume(&server, &token, seen);
        assert_eq!(first["type"], "resumed", "{first}");
        c = back;
    }
    // The dropped connections' places are given back as the server sees them go.
    std::thread::sleep(Duration::from_millis(300));
    keep.push(Client::guest(server.addr, Some("second")));
    keep.push(Client::guest(server.addr, Some("third")));
    // The resumed connection holds its place: a fourth is one too many.
    let refused = Client::try_connect(server.addr);
    assert!(
        refused.is_err(),
        "a fourth connection from one address was let in"
    );
    assert_eq!(c.cmd("look")["ok"], true);
}

#[test]
fn a_slow_reader_is_cut_off_then_resumes_with_nothing_missing() {
    let limits = "[limits]\nresume_window_ms = 10000\nresume_frames_max = 100000\nresume_bytes_max = 16777216\noutbound_bytes_max = 65536\nclose_grace_ms = 300\ncommands_per_s = 100000\ncommands_burst = 100000\n";
    let (server, _dir) = ServerProc::start_with_map(limits, &["--no-ambient", "--shards", "1"]);
    let mut slow = Client::guest(server.addr, Some("slow"));
    let mut talker = Client::guest(server.addr, Some("talker"));
    slow.event("enter", "talker");
    let token = token_of(&slow);
    // The slow reader stops reading; the room talks until it is cut off.
    let text = "z".repeat(400);
    let mut said = 0;
    let started = Instant::now();
    while metric_sum(&server, "mudshard_outbound_drops_total") == 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "never cut off");
        for _ in 0..50 {
            talker.send(json!({"type":"cmd","line":format!("say {said} {text}")}));
            said += 1;
        }
        for _ in 0..50 {
            talker.recv_until(|f| f["type"] == "reply");
        }
    }
    for _ in 0..5 {
        talker.cmd(&format!("say {said} after the cut"));
        said += 1;
    }
    // It reads what reached it before the cut, to the end of that connection.
    let mut last_seq = slow.last_seq;
    while let Ok(message) = slow.ws.read() {
        let tungstenite::Message::Text(t) = message else {
            continue;
        };
        let v: Value = serde_json::from_str(&t).expect("JSON");
        if let Some(seq) = v["seq"].as_u64() {
            assert_eq!(seq, last_seq + 1, "gap before the cut: {v}");
            last_seq = seq;
        }
    }
    let (mut back, first) = resume(&server, &token, last_seq);
    assert_eq!(first["type"], "resumed", "{first}");
    let replayed = first["replayed"].as_u64().expect("replayed");
    assert!(replayed >= 5, "{first}");
    let mut last = Value::Null;
    for _ in 0..replayed {
        last = back.recv();
    }
    let expected = format!("{} after the cut", said - 1);
    assert!(
        last["text"].as_str().unwrap_or("").contains(&expected),
        "the last frame replayed is the last say: {last}"
    );
    assert_eq!(back.cmd("look")["ok"], true);
}
