//! The shard server end to end: the real binary, real WebSocket clients.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tungstenite::Message;

#[test]
fn two_players_on_different_shards_in_one_room_hear_each_other() {
    let server = ServerProc::start(&["--shards", "2", "--no-ambient"]);
    let mut ann = Client::guest_on_shard(server.addr, "ann", 0);
    let mut bob = Client::guest_on_shard(server.addr, "bob", 1);
    assert_eq!(ann.welcome["room"]["id"], "town:square");
    assert_eq!(bob.welcome["room"]["id"], "town:square");

    let reply = ann.cmd("say hello from shard zero");
    assert_eq!(reply["ok"], true);
    let heard = bob.event("say", "hello from shard zero");
    assert_eq!(heard["from"], "ann");
    assert_eq!(heard["room"], "town:square");
    assert!(heard["ts"].as_u64().is_some());

    bob.cmd("'and hello back");
    assert_eq!(ann.event("say", "and hello back")["from"], "bob");
    bob.cmd(":waves cheerfully");
    assert_eq!(ann.event("emote", "waves cheerfully")["from"], "bob");
    // The speaker gets a reply, not its own event.
    ann.expect_silence(200);
}

/// Finds, by teleporting, two neighbouring grid rooms owned by different shards.
fn neighbours_on_two_shards(c: &mut Client, width: u32) -> (String, String) {
    for x in 0..width - 1 {
        let a = c.cmd(&format!("goto grid:{x}_0"));
        let b = c.cmd(&format!("goto grid:{}_0", x + 1));
        if a["room"]["shard"] != b["room"]["shard"] {
            return (format!("grid:{x}_0"), format!("grid:{}_0", x + 1));
        }
    }
    panic!("no owner boundary along row 0");
}

#[test]
fn a_walk_across_shards_keeps_inventory_and_tells_both_rooms() {
    let server = ServerProc::start(&["--shards", "2", "--world", "grid:12x12"]);
    let mut walker = Client::guest(server.addr, Some("walker"));
    let (west, east) = neighbours_on_two_shards(&mut walker, 12);

    // Something to carry: the generated world leaves stones about.
    let mut carried = None;
    'find: for y in 0..12 {
        for x in 0..12 {
            let reply = walker.cmd(&format!("goto grid:{x}_{y}"));
            if let Some(item) = reply["room"]["items"].as_array().and_then(|a| a.first()) {
                let item = item.as_str().expect("item name").to_string();
                assert_eq!(walker.cmd(&format!("get {item}"))["ok"], true);
                carried = Some(item);
                break 'find;
            }
        }
    }
    let item = carried.expect("the grid has items");

    let mut west_watcher = Client::guest(server.addr, Some("westy"));
    let mut east_watcher = Client::guest(server.addr, Some("easty"));
    assert_eq!(west_watcher.cmd(&format!("goto {west}"))["ok"], true);
    assert_eq!(east_watcher.cmd(&format!("goto {east}"))["ok"], true);
    walker.cmd(&format!("goto {west}"));
    west_watcher.event("enter", "walker");

    let moved = walker.cmd("e");
    assert_eq!(moved["ok"], true, "{moved}");
    assert_eq!(moved["room"]["id"], east.as_str());
    let left = west_watcher.event("leave", "walker leaves east");
    assert_eq!(left["room"], west.as_str());
    let entered = east_watcher.event("enter", "walker arrives from the west");
    assert_eq!(entered["room"], east.as_str());

    let inventory = walker.cmd("inventory");
    assert_eq!(inventory["items"], json!([item.clone()]), "{inventory}");
    assert_eq!(walker.cmd(&format!("drop {item}"))["ok"], true);
    east_watcher.event("item", &item);
    let look = east_watcher.cmd("look");
    assert!(
        look["room"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == item.as_str()),
        "{look}"
    );
    let players = look["room"]["players"].as_array().unwrap();
    assert!(players.iter().any(|p| p == "walker"), "{look}");

    // And back again, across the boundary the other way.
    assert_eq!(walker.cmd("w")["room"]["id"], west.as_str());
    east_watcher.event("leave", "walker leaves west");
    west_watcher.event("enter", "walker arrives from the east");
    assert_eq!(walker.cmd("inventory")["items"], json!([]));
}

fn names(look: &Value) -> Vec<String> {
    look["room"]["players"]
        .as_array()
        .unwrap_or_else(|| panic!("a room view: {look}"))
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect()
}

fn items(look: &Value) -> Vec<String> {
    look["room"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a room view: {look}"))
        .iter()
        .filter_map(|p| p.as_str().map(str::to_string))
        .collect()
}

#[test]
fn look_is_answered_by_the_connections_shard_and_is_never_older_than_its_events() {
    let (server, _dir) = ServerProc::start_with_map(
        "[limits]\ncommands_per_s = 100000\ncommands_burst = 100000\n",
        &["--shards", "2", "--world", "grid:12x12", "--no-ambient"],
    );
    let mut looker = Client::guest_on_shard(server.addr, "looker", 0);
    let mut other = Client::guest_on_shard(server.addr, "other", 1);
    // A room with an item, owned by shard 1: the looker's `look` would cross.
    let mut found = None;
    'find: for y in 0..12 {
        for x in 0..12 {
            let reply = looker.cmd(&format!("goto grid:{x}_{y}"));
            if reply["room"]["shard"] == 1 && !items(&reply).is_empty() {
                found = Some((format!("grid:{x}_{y}"), items(&reply)[0].clone()));
                break 'find;
            }
        }
    }
    let (room, item) = found.expect("a room of shard 1 with an item");

    // The first look crosses and brings the view back; the next are
    // answered on shard 0 from it.
    let crossings = |server: &ServerProc| {
        metric_sum(
            &server.http_get("/metrics").1,
            "mudshard_cross_shard_sent_total",
        )
    };
    let before = crossings(&server);
    const LOOKS: u64 = 30;
    for _ in 0..LOOKS {
        let look = looker.cmd("look");
        assert_eq!(look["room"]["id"], room.as_str());
        assert_eq!(names(&look), ["looker"], "{look}");
    }
    let crossed = crossings(&server) - before;
    assert!(
        crossed < LOOKS / 2,
        "{LOOKS} looks made {crossed} cross-shard messages: not answered on the connection's shard"
    );

    // Every change in the room reaches the looker's shard before the event
    // that tells of it, so a look after the event shows the change.
    // (Events are matched by room: the looker also heard `other` log in,
    // and leave again on each connection that missed shard 1.)
    let in_room = |looker: &mut Client, kind: &str, from: &str| {
        looker.recv_until(|f| {
            f["type"] == "event"
                && f["kind"] == kind
                && f["room"] == room.as_str()
                && f["from"] == from
        })
    };
    assert_eq!(other.cmd(&format!("goto {room}"))["ok"], true);
    in_room(&mut looker, "enter", "other");
    assert_eq!(names(&looker.cmd("look")), ["looker", "other"]);

    assert_eq!(other.cmd(&format!("get {item}"))["ok"], true);
    in_room(&mut looker, "item", "other");
    let look = looker.cmd("look");
    assert!(!items(&look).contains(&item), "{look}");

    assert_eq!(other.cmd(&format!("drop {item}"))["ok"], true);
    in_room(&mut looker, "item", "other");
    let look = looker.cmd("look");
    assert!(items(&look).contains(&item), "{look}");

    assert_eq!(other.cmd("goto grid:0_0")["ok"], true);
    in_room(&mut looker, "leave", "other");
    assert_eq!(names(&looker.cmd("look")), ["looker"]);

    // The looker walks out and back: the view kept is dropped on the way
    // (nobody of shard 0 stands there) and fetched again.
    assert_eq!(looker.cmd("goto grid:0_0")["ok"], true);
    assert_eq!(other.cmd(&format!("goto {room}"))["ok"], true);
    assert_eq!(looker.cmd(&format!("goto {room}"))["ok"], true);
    assert_eq!(names(&looker.cmd("look")), ["other", "looker"]);
}

#[test]
fn tell_shout_and_who_cross_shards() {
    let server = ServerProc::start(&["--shards", "2", "--no-ambient"]);
    let mut ann = Client::guest_on_shard(server.addr, "ann", 0);
    let mut bob = Client::guest_on_shard(server.addr, "bob", 1);
    assert_eq!(ann.cmd("go north")["ok"], true, "ann leaves the square");

    let reply = ann.cmd("tell Bob psst, over here");
    assert_eq!(reply["ok"], true, "{reply}");
    let told = bob.event("tell", "psst, over here");
    assert_eq!(told["from"], "ann");

    let nobody = ann.cmd("tell nobody_here hi");
    assert_eq!(nobody["ok"], false);
    assert_eq!(nobody["code"], "no_such_player");

    bob.cmd("shout fire in the square");
    assert_eq!(ann.event("shout", "fire in the square")["from"], "bob");

    let who = ann.cmd("who");
    assert_eq!(who["players_total"], 2, "{who}");
    let names: Vec<&str> = who["players"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(names.contains(&"ann") && names.contains(&"bob"), "{who}");
}

#[test]
fn bad_frames_get_their_documented_answers_and_the_connection_stays() {
    let server = ServerProc::start(&["--shards", "2"]);
    let mut c = Client::connect(server.addr);

    c.send_raw(Message::text("this is not json"));
    let e = c.recv();
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("bad_json")),
        "{e}"
    );
    assert!(e.get("seq").is_none(), "no seq before login: {e}");

    c.send(json!({"type":"dance"}));
    assert_eq!(c.recv()["code"], "unknown_type");
    c.send(json!({"type":"cmd","line":"look"}));
    assert_eq!(c.recv()["code"], "unauthenticated");
    c.send(json!({"type":"cmd"}));
    assert_eq!(c.recv()["code"], "bad_field");
    c.send_raw(Message::binary(vec![1u8, 2, 3]));
    assert_eq!(c.recv()["code"], "unsupported");
    c.send(json!({"type":"guest","name":"no"}));
    assert_eq!(c.recv()["code"], "invalid_name");
    c.send(json!({"type":"guest","name":"bad name!"}));
    assert_eq!(c.recv()["code"], "invalid_name");
    c.send(json!({"type":"ping","id":"p1"}));
    let pong = c.recv();
    assert_eq!(
        (pong["type"].as_str(), pong["id"].as_str()),
        (Some("pong"), Some("p1"))
    );

    // Still there: log in, and errors now carry seq.
    c.send(json!({"type":"guest","name":"sturdy"}));
    let welcome = c.recv_until(|f| f["type"] == "welcome");
    assert_eq!(welcome["seq"], 1);
    c.send_raw(Message::text("{broken"));
    let e = c.recv();
    assert_eq!(
        (e["code"].as_str(), e["seq"].as_u64()),
        (Some("bad_json"), Some(2)),
        "{e}"
    );
    c.send(json!({"type":"guest"}));
    assert_eq!(c.recv()["code"], "already_logged_in");

    let unknown = c.cmd("dacne wildly");
    assert_eq!(
        (unknown["ok"].as_bool(), unknown["code"].as_str()),
        (Some(false), Some("unknown_command")),
        "{unknown}"
    );
    let no_exit = c.cmd("up");
    assert_eq!(no_exit["code"], "no_exit", "{no_exit}");
    let long = "x".repeat(513);
    c.send(json!({"type":"cmd","line":format!("say {long}")}));
    assert_eq!(c.recv()["code"], "invalid_text");
    // 512 characters counted as characters, not bytes: 508 two-byte letters fit.
    let reply = c.cmd(&format!("say {}", "é".repeat(508)));
    assert_eq!(reply["ok"], true);
    let id_reply = {
        c.send(json!({"type":"cmd","id":"abc","line":"look"}));
        c.recv_until(|f| f["type"] == "reply")
    };
    assert_eq!(id_reply["id"], "abc");
    c.send(json!({"type":"cmd","line":"look"}));
    let no_id = c.recv_until(|f| f["type"] == "reply");
    assert!(no_id.get("id").is_none(), "{no_id}");

    let mut other = Client::guest(server.addr, None);
    assert_eq!(other.cmd("look")["ok"], true);
    assert_eq!(c.cmd("look")["ok"], true);
}

#[test]
fn an_error_that_refuses_a_cmd_echoes_its_id() {
    let (server, _dir) = ServerProc::start_with_map(
        "[limits]\ncommands_per_s = 1\ncommands_burst = 2\n",
        &["--no-ambient"],
    );
    let mut c = Client::connect(server.addr);
    c.send(json!({"type":"cmd","id":7,"line":"look"}));
    let e = c.recv();
    assert_eq!(
        (e["code"].as_str(), e["id"].as_u64()),
        (Some("unauthenticated"), Some(7)),
        "{e}"
    );
    // A frame refused for a bad field echoes its good id too.
    c.send(json!({"type":"cmd","id":8,"line":["look"]}));
    let e = c.recv();
    assert_eq!(
        (e["code"].as_str(), e["id"].as_u64()),
        (Some("bad_field"), Some(8)),
        "{e}"
    );
    let mut p = Client::guest(server.addr, Some("pip"));
    for id in 1..=6 {
        p.send(json!({"type":"cmd","id":id,"line":"help"}));
    }
    let mut refused = Vec::new();
    let mut answered = Vec::new();
    while refused.len() + answered.len() < 6 {
        let f = p.recv();
        match f["type"].as_str() {
            Some("error") => {
                assert_eq!(f["code"], "rate_limited", "{f}");
                refused.push(f["id"].as_u64().expect("the refused command's id"));
            }
            Some("reply") => answered.push(f["id"].as_u64().expect("id")),
            _ => {}
        }
    }
    assert!(!refused.is_empty(), "nothing was refused: {answered:?}");
    let mut all: Vec<u64> = refused.iter().chain(&answered).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (1..=6).collect::<Vec<_>>(), "every id heard once");
}

#[test]
fn a_command_line_with_control_characters_is_refused_and_reaches_nobody() {
    let server = ServerProc::start(&["--shards", "2"]);
    let mut speaker = Client::guest(server.addr, Some("speaker"));
    let mut listener = Client::guest(server.addr, Some("listener"));
    for line in [
        "say \u{1b}[2J\u{1b}[31mcleared",
        "say ring\u{7}",
        "say a\u{0}b",
        "say two\nlines",
        "say tab\tbed",
        "say c1\u{9b}31m",
    ] {
        speaker.send(json!({"type":"cmd","id":"c-1","line":line}));
        let e = speaker.recv_until(|f| f["type"] != "event");
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str(), e["id"].as_str()),
            (Some("error"), Some("invalid_text"), Some("c-1")),
            "{line:?}: the refusal names the command it refuses: {e}"
        );
    }
    // Nothing of it reached the room; a plain say still does.
    assert_eq!(speaker.cmd("say plain words")["ok"], true);
    let heard = listener.recv_until(|f| f["kind"] == "say");
    assert_eq!(
        (heard["from"].as_str(), heard["text"].as_str()),
        (Some("speaker"), Some("plain words")),
        "the first say the listener hears"
    );
}

#[test]
fn a_taken_name_is_refused_until_its_holder_leaves() {
    let server = ServerProc::start(&["--shards", "2"]);
    let mut first = Client::guest(server.addr, Some("Unique"));
    let mut second = Client::connect(server.addr);
    second.send(json!({"type":"guest","name":"uNIQUE"}));
    assert_eq!(second.recv()["code"], "name_taken");
    let bye = first.cmd("quit");
    assert_eq!(bye["ok"], true);
    assert_eq!(first.expect_close(), 1000);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        second.send(json!({"type":"guest","name":"uNIQUE"}));
        let f = second.recv();
        if f["type"] == "welcome" {
            break;
        }
        assert!(Instant::now() < deadline, "name never freed: {f}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn oversized_and_invalid_utf8_frames_close_the_connection_and_spare_others() {
    let server = ServerProc::start(&["--shards", "2"]);
    let mut bystander = Client::guest(server.addr, Some("bystander"));

    let mut big = Client::guest(server.addr, None);
    let payload = format!("{{\"type\":\"cmd\",\"line\":\"{}\"}}", "x".repeat(70_000));
    big.write_raw(&raw_frame(0x81, payload.as_bytes()));
    assert_eq!(big.expect_close(), 1009);

    let mut bad = Client::guest(server.addr, None);
    bad.write_raw(&raw_frame(0x81, b"{\"type\":\"ping\",\"x\":\"\xff\xfe\"}"));
    assert_eq!(bad.expect_close(), 1007);

    // A message split into fragments that add up past the limit: 1009 too.
    let mut frag = Client::guest(server.addr, None);
    frag.write_raw(&raw_frame(0x01, &vec![b'x'; 40_000]));
    frag.write_raw(&raw_frame(0x80, &vec![b'x'; 40_000]));
    assert_eq!(frag.expect_close(), 1009);

    // Fragments within the limit are one message.
    let mut ok = Client::guest(server.addr, Some("fragmenter"));
    ok.write_raw(&raw_frame(0x01, b"{\"type\":\"cmd\",\"id\":9,"));
    ok.write_raw(&raw_frame(0x80, b"\"line\":\"look\"}"));
    let reply = ok.recv_until(|f| f["type"] == "reply");
    assert_eq!(reply["id"], 9);

    assert_eq!(bystander.cmd("look")["ok"], true);
}

/// The whole answer to a `GET /ws` with `headers`, which the server answers and closes.
fn raw_answer(addr: std::net::SocketAddr, headers: &[&str]) -> String {
    http_raw(
        addr,
        &format!("GET /ws HTTP/1.1\r\n{}\r\n", headers.concat()),
    )
}

#[test]
fn a_bad_upgrade_is_answered_as_rfc_6455_says() {
    let server = ServerProc::start(&[]);
    const HOST: &str = "Host: x\r\n";
    const UPGRADE: &str = "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    const KEY: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    const V13: &str = "Sec-WebSocket-Version: 13\r\n";
    let status = |answer: &str| answer.split_whitespace().nth(1).map(str::to_owned);
    // Not an upgrade at all: 426, saying what to upgrade to.
    let answer = raw_answer(server.addr, &[HOST, KEY, V13]);
    assert_eq!(status(&answer).as_deref(), Some("426"), "{answer}");
    assert!(answer.contains("\r\nUpgrade: websocket\r\n"), "{answer}");
    // A version this server does not speak: 426 with the one it does.
    let answer = raw_answer(
        server.addr,
        &[HOST, UPGRADE, KEY, "Sec-WebSocket-Version: 8\r\n"],
    );
    assert_eq!(status(&answer).as_deref(), Some("426"), "{answer}");
    assert!(
        answer.contains("\r\nSec-WebSocket-Version: 13\r\n"),
        "{answer}"
    );
    // No version, no key, or a key that is not 16 bytes in base64: 400.
    for (headers, why) in [
        (vec![HOST, UPGRADE, KEY], "no version"),
        (vec![HOST, UPGRADE, V13], "no key"),
        (
            vec![HOST, UPGRADE, "Sec-WebSocket-Key: abc\r\n", V13],
            "short key",
        ),
        (
            vec![
                HOST,
                UPGRADE,
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ!=\r\n",
                V13,
            ],
            "not base64",
        ),
        // RFC 6455 §4.2.1: Host, Connection: Upgrade, one key; and one
        // Origin, so that two cannot be judged by their order.
        (
            vec![HOST, "Upgrade: websocket\r\n", KEY, V13],
            "no Connection",
        ),
        (
            vec![
                HOST,
                "Upgrade: websocket\r\nConnection: keep-alive\r\n",
                KEY,
                V13,
            ],
            "Connection without Upgrade",
        ),
        (vec![UPGRADE, KEY, V13], "no Host"),
        (vec![HOST, UPGRADE, KEY, KEY, V13], "two keys"),
        (
            vec![
                HOST,
                UPGRADE,
                KEY,
                V13,
                "Origin: https://evil.example\r\nOrigin: http://127.0.0.1:4000\r\n",
            ],
            "two origins",
        ),
    ] {
        let answer = raw_answer(server.addr, &headers);
        assert_eq!(status(&answer).as_deref(), Some("400"), "{why}: {answer}");
        assert!(answer.contains("bad_request"), "{why}: {answer}");
    }
    // HTTP/1.0 cannot upgrade.
    let answer = http_raw(
        server.addr,
        &format!("GET /ws HTTP/1.0\r\n{HOST}{UPGRADE}{KEY}{V13}\r\n"),
    );
    assert_eq!(status(&answer).as_deref(), Some("400"), "{answer}");
    // Firefox's `Connection: keep-alive, Upgrade` and a capitalised
    // `WebSocket` are upgrades like any other.
    let mut s = std::net::TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    use std::io::{Read, Write};
    s.write_all(
        format!(
            "GET /ws HTTP/1.1\r\n{HOST}Upgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n{KEY}{V13}\r\n"
        )
        .as_bytes(),
    )
    .expect("write");
    let mut head = [0u8; 12];
    s.read_exact(&mut head).expect("read");
    assert_eq!(&head, b"HTTP/1.1 101");
}

#[test]
fn a_client_close_is_answered_as_rfc_6455_says() {
    let server = ServerProc::start(&["--shards", "2"]);
    let close = |payload: &[u8]| {
        let mut c = Client::guest(server.addr, None);
        c.write_raw(&raw_frame(0x88, payload));
        c.expect_close()
    };
    let with_code = |code: u16, reason: &[u8]| {
        let mut p = code.to_be_bytes().to_vec();
        p.extend_from_slice(reason);
        p
    };
    // A well-formed close, with or without a status, is answered normally.
    assert_eq!(close(b""), 1000);
    assert_eq!(close(&with_code(1000, b"bye")), 1000);
    assert_eq!(close(&with_code(1001, b"")), 1000);
    assert_eq!(
        close(&with_code(4000, "adieu, \u{e9}t\u{e9}".as_bytes())),
        1000
    );
    // A malformed one is a protocol error: a 1-byte payload, a status no
    // peer may send (reserved or unassigned), a reason that is not UTF-8.
    assert_eq!(close(b"\x03"), 1002);
    for code in [0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000] {
        assert_eq!(close(&with_code(code, b"")), 1002, "status {code}");
    }
    assert_eq!(close(&with_code(1000, b"\xff\xfe")), 1007);
}

#[test]
fn commands_over_the_rate_limit_are_refused() {
    let server = ServerProc::start(&["--shards", "1"]);
    let mut c = Client::guest(server.addr, None);
    for i in 0..60 {
        c.send(json!({"type":"cmd","id":i,"line":"look"}));
    }
    let mut replies = 0;
    let mut limited = 0;
    while replies + limited < 60 {
        let f = c.recv();
        match f["type"].as_str() {
            Some("reply") => replies += 1,
            Some("error") if f["code"] == "rate_limited" => limited += 1,
            _ => {}
        }
    }
    assert!(limited >= 15, "only {limited} refused of 60 (burst 40)");
    assert!(replies >= 40, "the burst of 40 is allowed, got {replies}");
}

#[test]
fn a_slow_reader_is_cut_off_while_a_fast_reader_misses_nothing() {
    let (server, _dir) = ServerProc::start_with_map(
        "[limits]\noutbound_bytes_max = 262144\nclose_grace_ms = 60000\ncommands_per_s = 100000\ncommands_burst = 100000\n\n[game]\nambient_interval_ms = 0\n",
        &["--shards", "2"],
    );
    // The slow reader logs in, then never reads again. Its socket keeps the
    // kernel's default buffers: a locked small SO_RCVBUF on loopback (64 KiB
    // segments) makes the receiver drop segments it had advertised room for,
    // and the server's kernel then retransmits on an RTO that backs off to
    // seconds. A long close grace here makes the test about the close frame,
    // not about how quickly loopback TCP recovers.
    let mut slow = Client::connect(server.addr);
    slow.send(json!({"type":"guest","name":"slowpoke"}));
    slow.recv_until(|f| f["type"] == "welcome");
    let mut fast = Client::guest(server.addr, Some("speedy"));
    let mut talker = Client::guest(server.addr, Some("talker"));
    let reader = std::thread::spawn(move || {
        let mut heard = 0u64;
        loop {
            let f = fast.recv();
            if f["type"] == "event" && f["kind"] == "say" {
                let text = f["text"].as_str().unwrap();
                if text == "the end" {
                    return heard;
                }
                assert_eq!(
                    text,
                    format!("{heard:06} {}", "y".repeat(400)),
                    "in order, none missing"
                );
                heard += 1;
            }
        }
    });
    let drops = |server: &ServerProc| -> u64 {
        let (_, metrics) = server.http_get("/metrics");
        metrics
            .lines()
            .filter(|l| l.starts_with("mudshard_outbound_drops_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    };
    // Talk in windows of 50 (replies read back) so the fast reader keeps up,
    // until the slow reader has been cut off.
    let text = "y".repeat(400);
    let mut said = 0u64;
    while drops(&server) == 0 {
        assert!(said < 200_000, "the slow reader was never cut off");
        for _ in 0..50 {
            talker.send(json!({"type":"cmd","line":format!("say {said:06} {text}")}));
            said += 1;
        }
        for _ in 0..50 {
            talker.recv_until(|f| f["type"] == "reply");
        }
    }
    // The slow reader starts reading at once: the server gives a cut-off
    // client a bounded grace to take its close frame, then aborts.
    let slow_reader = std::thread::spawn(move || slow.raw_frames_until_eof());
    talker.cmd("say the end");
    assert_eq!(
        reader.join().expect("fast reader"),
        said,
        "the fast reader heard every say"
    );
    // The slow reader, reading at last, finds its frames whole and then 1013.
    let frames = slow_reader.join().expect("slow reader");
    let (op, payload) = frames.last().expect("frames");
    assert_eq!(*op, 0x8, "the last frame is a close");
    assert_eq!(close_code(payload), 1013);
    assert!(frames[..frames.len() - 1]
        .iter()
        .all(|(op, p)| *op == 0x1 && p.starts_with(b"{\"seq\":")));
    assert_eq!(drops(&server), 1, "only the slow reader was cut off");
}

/// The shard's write pass writes queued frames straight to the sockets;
/// a reader that stops reading fills its socket, and what the socket does
/// not take goes on through the session's task once it reads again: every
/// frame arrives whole, in order, with no gap in `seq`.
#[test]
fn frames_written_by_the_write_pass_arrive_in_order_through_a_full_socket() {
    let (server, _dir) = ServerProc::start_with_map(
        "[limits]\noutbound_bytes_max = 67108864\ncommands_per_s = 100000\ncommands_burst = 100000\n\n[game]\nambient_interval_ms = 0\n",
        &["--shards", "2"],
    );
    let mut pauser = Client::guest(server.addr, Some("pauser"));
    let mut talker = Client::guest(server.addr, Some("talker"));
    // The talker hears itself too: both stand in the start room.
    let text = "z".repeat(480);
    let says = 12_000u64;
    for window in 0..says / 100 {
        for i in 0..100 {
            let n = window * 100 + i;
            talker.send(json!({"type":"cmd","line":format!("say {n:06} {text}")}));
        }
        for _ in 0..100 {
            talker.recv_until(|f| f["type"] == "reply");
        }
    }
    talker.cmd("say the end");
    // About 6 MB for a reader that read nothing meanwhile.
    let mut heard = 0u64;
    let mut last_seq = 0u64;
    loop {
        let f = pauser.recv();
        if let Some(seq) = f["seq"].as_u64() {
            assert!(
                last_seq == 0 || seq == last_seq + 1,
                "seq {seq} after {last_seq}"
            );
            last_seq = seq;
        }
        if f["type"] == "event" && f["kind"] == "say" {
            let said = f["text"].as_str().expect("text");
            if said == "the end" {
                break;
            }
            assert_eq!(said, format!("{heard:06} {text}"), "in order, none missing");
            heard += 1;
        }
    }
    assert_eq!(heard, says);
    let (_, metrics) = server.http_get("/metrics");
    let direct = metric_sum(&metrics, "mudshard_writes_direct_total");
    let writes = metric_sum(&metrics, "mudshard_writes_total");
    assert!(direct > 0, "the write pass wrote nothing:\n{metrics}");
    assert!(direct <= writes, "{direct} direct of {writes} writes");
}

#[test]
fn a_cut_off_reader_that_never_reads_is_dropped_after_the_close_grace() {
    let (server, _dir) = ServerProc::start_with_map(
        "[limits]\noutbound_bytes_max = 65536\nclose_grace_ms = 300\ncommands_per_s = 100000\ncommands_burst = 100000\n\n[game]\nambient_interval_ms = 0\n",
        &["--shards", "1"],
    );
    let connections = |server: &ServerProc| -> u64 { server.connections().iter().sum() };
    // Logs in and never reads again, not even after it is cut off.
    let stuck = Client::guest(server.addr, Some("stuck"));
    let mut talker = Client::guest(server.addr, Some("talker"));
    assert_eq!(connections(&server), 2);
    let text = "z".repeat(400);
    let started = Instant::now();
    while connections(&server) == 2 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the never-reading client is still held a minute later"
        );
        for _ in 0..50 {
            talker.send(json!({"type":"cmd","line":format!("say {text}")}));
        }
        for _ in 0..50 {
            talker.recv_until(|f| f["type"] == "reply");
        }
    }
    // The talker is still served.
    assert_eq!(talker.cmd("look")["type"], "reply");
    assert_eq!(connections(&server), 1);
    drop(stuck);
}

/// Quiet sessions park their reads on the shard's `epoll` instance
/// (`[runtime] park_reads_after_ms`): parked, they still get their events;
/// a command wakes them and is answered; and, parked again, the end of the
/// stream wakes them and ends them at once.
#[test]
fn parked_sessions_get_events_and_are_woken_by_a_command_and_by_the_end_of_the_stream() {
    let server = ServerProc::start(&["--shards", "2", "--park-reads-after-ms", "100"]);
    let counter = |name: &str| -> u64 {
        let (status, metrics) = server.http_get("/metrics");
        assert_eq!(status, 200);
        metric_sum(&metrics, &format!("{name}{{"))
    };
    let wait_for = |name: &str, at_least: u64| {
        let started = Instant::now();
        while counter(name) < at_least {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{name}: {} after 10 s, expected at least {at_least}",
                counter(name)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let connections = |server: &ServerProc| -> u64 { server.connections().iter().sum() };
    let mut clients: Vec<Client> = (0..20).map(|_| Client::guest(server.addr, None)).collect();
    assert_eq!(connections(&server), 20);
    wait_for("mudshard_reads_parked_total", 20);
    assert_eq!(counter("mudshard_reads_woken_total"), 0);
    // Parked, a session still gets what is sent to it. (Every guest starts
    // in the same room.)
    let mut talker = Client::guest(server.addr, Some("talker"));
    talker.cmd("say hello, sleepers");
    for client in &mut clients {
        client.event("say", "hello, sleepers");
    }
    // A command wakes it and is answered.
    for client in &mut clients {
        assert_eq!(client.cmd("look")["ok"], true);
    }
    assert!(counter("mudshard_reads_woken_total") >= 20);
    // Quiet again, it parks again; the end of the stream wakes it and ends it.
    let parked = counter("mudshard_reads_parked_total");
    wait_for("mudshard_reads_parked_total", parked + 20);
    let woken = counter("mudshard_reads_woken_total");
    for client in &mut clients {
        client.write_raw_and_end(&[]);
    }
    let started = Instant::now();
    while connections(&server) > 1 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{} of 20 parked sessions still connected 5 s after their clients ended their streams",
            connections(&server) - 1
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(counter("mudshard_reads_woken_total") >= woken + 20);
    drop(talker);
}

/// A player who listens (is sent events) but says nothing does not park its
/// reads: parked, it would be woken by the pong of every ack asked of it,
/// and a chat shard's listeners would all park in one sweep. Once nothing
/// comes, both it and the talker park.
#[test]
fn a_silent_listener_being_sent_events_does_not_park_until_they_stop() {
    let server = ServerProc::start(&["--shards", "1", "--park-reads-after-ms", "100"]);
    let parked = || -> u64 {
        let (status, metrics) = server.http_get("/metrics");
        assert_eq!(status, 200);
        metric_sum(&metrics, "mudshard_reads_parked_total{")
    };
    let mut listener = Client::guest(server.addr, None);
    let mut talker = Client::guest(server.addr, Some("talker"));
    let before = parked();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(2_500) {
        assert_eq!(talker.cmd("say still here")["ok"], true);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        parked() - before,
        0,
        "a session parked while it was being sent a line every 100 ms"
    );
    let started = Instant::now();
    while parked() < before + 2 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{} of 2 sessions parked 5 s after the talk stopped",
            parked() - before
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    listener.event("say", "still here");
}

/// A client that ends its stream (a FIN, no close frame) right behind its
/// commands gets every answer before the connection closes, whether the
/// answer is made on its connection's shard or on the shard that owns its
/// room.
#[test]
fn a_client_that_ends_its_stream_behind_its_commands_gets_every_answer() {
    let server = ServerProc::start(&["--shards", "2", "--world", "grid:12x12", "--no-ambient"]);
    for shard in 0..2u64 {
        let mut c = Client::guest_on_shard(server.addr, &format!("ender{shard}"), shard);
        // Stand in a room the other shard owns: `say` is answered there.
        let away = (0..12)
            .map(|x| format!("goto grid:{x}_0"))
            .find(|goto| c.cmd(goto)["room"]["shard"].as_u64() != Some(shard))
            .expect("a room of the other shard along row 0");
        let ids = ["s1", "s2", "e1", "s3"];
        for (id, line) in ids
            .iter()
            .zip(["say one", "say two", "emote waves", "say three"])
        {
            c.send(json!({"type": "cmd", "id": id, "line": line}));
        }
        c.write_raw_and_end(&[]);
        let answered: Vec<String> = c
            .raw_frames_until_eof()
            .into_iter()
            .filter(|(opcode, _)| *opcode == 1)
            .map(|(_, payload)| serde_json::from_slice::<Value>(&payload).expect("JSON"))
            .filter(|f| f["type"] == "reply")
            .map(|f| f["id"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(
            answered, ids,
            "a client on shard {shard}, standing in another shard's room ({away}), \
             ended its stream behind 4 commands"
        );
    }
    let started = Instant::now();
    while server.connections().iter().sum::<u64>() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the ended connections are still open"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A shard that read next to nothing in the last second has the allocator
/// give back the pages emptied since (`Shard::tidy_heap`); a busy one is
/// left alone.
#[test]
fn a_quiet_shard_tidies_its_heap_and_a_busy_one_does_not() {
    let (server, _dir) = ServerProc::start_with_map(
        "[limits]\ncommands_per_s = 1000000\ncommands_burst = 1000000\n",
        &["--shards", "1"],
    );
    let collects = || -> u64 {
        let (status, metrics) = server.http_get("/metrics");
        assert_eq!(status, 200);
        metric_sum(&metrics, "mudshard_heap_collects_total{")
    };
    let mut client = Client::guest(server.addr, None);
    // Quiet: a collection every sweep (once a second).
    let before = collects();
    std::thread::sleep(Duration::from_millis(3_500));
    let quiet = collects() - before;
    assert!(quiet >= 2, "{quiet} collections in 3.5 quiet seconds");
    // Busy: 3.5 s of commands, well over 1,000 frames a second.
    let before = collects();
    let started = Instant::now();
    let mut answered = 0u64;
    while started.elapsed() < Duration::from_millis(3_500) {
        for k in 0..100 {
            client.send(json!({"type": "cmd", "id": format!("h{k}"), "line": "help"}));
        }
        for _ in 0..100 {
            client.recv_until(|v| v["type"] == "reply");
        }
        answered += 100;
    }
    let busy = collects() - before;
    let per_s = answered as f64 / started.elapsed().as_secs_f64();
    assert!(
        per_s > 2_000.0,
        "the client made only {per_s:.0} commands/s: not busy enough to tell"
    );
    // The sweep at the start of the busy stretch may still count a quiet second.
    assert!(
        busy <= 1,
        "{busy} collections in 3.5 busy seconds ({per_s:.0} commands/s)"
    );
    // Busy writing: few frames read, many written. A talker says 100 lines
    // a second in a room of 40 listeners (every guest starts in the same
    // room), who read nothing meanwhile (their socket buffers hold it).
    let _listeners: Vec<Client> = (0..40).map(|_| Client::guest(server.addr, None)).collect();
    std::thread::sleep(Duration::from_millis(1_100));
    let before = collects();
    let started = Instant::now();
    let mut said = 0u64;
    while started.elapsed() < Duration::from_millis(3_500) {
        for k in 0..10 {
            client.send(json!({"type": "cmd", "id": format!("s{k}"), "line": "say hear this"}));
        }
        for _ in 0..10 {
            client.recv_until(|v| v["type"] == "reply");
        }
        said += 10;
        std::thread::sleep(Duration::from_millis(100));
    }
    let writing = collects() - before;
    let per_s = said as f64 / started.elapsed().as_secs_f64();
    assert!(
        (50.0..1_000.0).contains(&per_s),
        "the talker said {per_s:.0} lines/s: not the shape asked for"
    );
    assert!(
        writing <= 1,
        "{writing} collections in 3.5 s of {per_s:.0} lines/s read and {:.0} events/s written",
        per_s * 40.0
    );
}

#[test]
fn sigterm_closes_sessions_with_a_close_frame_and_exits_zero() {
    let mut server = ServerProc::start(&["--shards", "2"]);
    let mut a = Client::guest(server.addr, None);
    let mut b = Client::guest(server.addr, None);
    let status = server.terminate();
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(a.expect_close(), 1001);
    assert_eq!(b.expect_close(), 1001);
}

#[test]
fn http_endpoints_answer_and_anything_else_is_404() {
    let server = ServerProc::start(&["--shards", "2"]);
    let _a = Client::guest(server.addr, None);
    let (status, body) = server.http_get("/healthz");
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&body).expect("healthz JSON");
    assert_eq!(health["host"], "a");
    assert_eq!(health["shards"], 2);
    assert_eq!(
        health["connections"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_u64)
            .sum::<u64>(),
        1
    );
    assert!(health["pid"].as_u64().is_some());

    let (status, metrics) = server.http_get("/metrics");
    assert_eq!(status, 200);
    for needle in [
        "mudshard_connections{shard=\"0\"}",
        "mudshard_connections{shard=\"1\"}",
        "mudshard_frames_in_total{shard=",
        "mudshard_bytes_out_total{shard=",
        "mudshard_commands_total{shard=\"0\",kind=\"look\"}",
        "mudshard_cross_shard_sent_total{shard=",
        "mudshard_outbound_drops_total{shard=",
        "mudshard_inbox_depth{shard=\"1\"}",
        "mudshard_inbox_parked{shard=\"0\"} 0",
        "mudshard_inbox_full_total{shard=",
        "mudshard_command_latency_us{shard=\"0\",quantile=\"0.99\"}",
        "process_resident_memory_bytes",
    ] {
        assert!(metrics.contains(needle), "missing {needle} in\n{metrics}");
    }
    assert_eq!(server.http_get("/nowhere").0, 404);
    assert_eq!(server.http_get("/ws").0, 426);
    let (status, _) = http_request(
        server.addr,
        "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status, 405);
}

#[test]
fn queries_head_and_405_are_answered_as_http_says() {
    let server = ServerProc::start(&[]);
    // A query string is not part of the path.
    assert_eq!(server.http_get("/healthz?probe=1").0, 200);
    assert_eq!(server.http_get("/metrics?x").0, 200);
    assert_eq!(server.http_get("/?v=2").0, 200);
    let mut c = std::net::TcpStream::connect(server.addr).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(5))).ok();
    {
        use std::io::{Read, Write};
        c.write_all(
            b"GET /ws?client=test HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
        )
        .expect("write");
        let mut head = [0u8; 12];
        c.read_exact(&mut head).expect("read");
        assert_eq!(&head, b"HTTP/1.1 101");
    }
    // HEAD where GET is served: the same head, no body.
    for path in ["/healthz", "/metrics", "/"] {
        let get = http_raw(
            server.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"),
        );
        let head = http_raw(
            server.addr,
            &format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\n"),
        );
        let (get_head, get_body) = get.split_once("\r\n\r\n").expect("a head");
        assert!(head.starts_with("HTTP/1.1 200"), "HEAD {path}: {head}");
        assert!(head.ends_with("\r\n\r\n"), "HEAD {path} has a body: {head}");
        assert!(!get_body.is_empty(), "GET {path}");
        let length = |h: &str| {
            h.lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .map(str::to_owned)
        };
        // The figures change between the two requests; the page does not.
        assert!(length(&head).is_some(), "HEAD {path}: {head}");
        if path == "/" {
            assert_eq!(length(&head), length(get_head), "HEAD {path}");
        }
    }
    // A 405 says which methods are allowed.
    for (request, allow) in [
        (
            "POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            "GET, HEAD",
        ),
        ("DELETE /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "GET, HEAD"),
        ("GET /api/login HTTP/1.1\r\nHost: x\r\n\r\n", "POST"),
        (
            "POST /ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            "GET",
        ),
        (
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
            "GET, HEAD",
        ),
    ] {
        let answer = http_raw(server.addr, request);
        assert!(answer.starts_with("HTTP/1.1 405"), "{request:?}: {answer}");
        assert!(
            answer.contains(&format!("\r\nAllow: {allow}\r\n")),
            "{request:?}: {answer}"
        );
    }
}

#[test]
fn shards_on_upstream_glommio_behaviour_still_hear_each_other() {
    // The [runtime] switches' other side (vendor/glommio/MUDSHARD-PATCH.md),
    // set by flags over a map that says the opposite: rings without
    // COOP_TASKRUN, preemption timers on every loop, membarrier(2) before
    // every sleep. Cross-shard says exercise the sleep and wake paths.
    let (server, _dir) = ServerProc::start_with_map(
        "[runtime]\ncoop_taskrun = true\npreempt_timers = false\nmembarrier_syscall = false\n",
        &[
            "--shards",
            "2",
            "--no-ambient",
            "--coop-taskrun",
            "false",
            "--preempt-timers",
            "true",
            "--membarrier-syscall",
            "true",
        ],
    );
    let mut ann = Client::guest_on_shard(server.addr, "ann", 0);
    let mut bob = Client::guest_on_shard(server.addr, "bob", 1);
    ann.cmd("say over upstream's rings");
    assert_eq!(bob.event("say", "over upstream's rings")["from"], "ann");
    bob.cmd("say and back");
    assert_eq!(ann.event("say", "and back")["from"], "bob");

    // And with the timers on, an idle shard still sleeps: it once spun at a
    // whole CPU, because the system call meant to sleep also sent the old
    // timer's cancellation, whose completion woke it at once.
    let pid = server.child.id();
    let before = shard_threads_cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(1));
    let used = shard_threads_cpu_ticks(pid) - before;
    assert!(
        used < 20,
        "two idle shards used {used} clock ticks of CPU in one second: they spin instead of sleeping"
    );
}

/// CPU time (user and system, in clock ticks) of the server's shard threads so far.
fn shard_threads_cpu_ticks(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the server's threads");
    let mut ticks = 0;
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.starts_with("shard-") {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // The fields after the command's closing parenthesis; utime and stime
        // are the 14th and 15th of the whole line.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or("", |(_, rest)| rest)
            .split_whitespace()
            .collect();
        let field = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .unwrap_or(0)
        };
        ticks += field(11) + field(12);
    }
    ticks
}

#[test]
fn a_full_shard_answers_503_before_the_upgrade() {
    let (server, _dir) = ServerProc::start_with_map(
        "[limits]\nconnections_per_shard_max = 2\n",
        &["--shards", "1"],
    );
    let _a = Client::guest(server.addr, None);
    let _b = Client::guest(server.addr, None);
    let stream = std::net::TcpStream::connect(server.addr).expect("connect");
    match tungstenite::client::client(format!("ws://{}/ws", server.addr), stream) {
        Err(tungstenite::handshake::HandshakeError::Failure(tungstenite::Error::Http(resp))) => {
            assert_eq!(resp.status().as_u16(), 503)
        }
        other => panic!("expected 503, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn with_allowed_origins_a_foreign_origin_gets_403_and_listed_or_absent_origins_get_in() {
    let server = ServerProc::start(&["--shards", "1", "--allowed-origins", "http://good.example"]);
    let (status, body) = http_request(server.addr, &upgrade_head(Some("http://evil.example")));
    assert_eq!(status, 403, "{body}");
    let refusal: Value = serde_json::from_str(&body).expect("JSON error body");
    assert_eq!(refusal["error"], "forbidden_origin", "{refusal}");

    let mut good = Client::connect_from_origin(server.addr, "http://good.example");
    good.try_account(json!({"type":"guest"}))
        .expect("a listed origin logs in");
    let mut no_origin = Client::connect(server.addr);
    no_origin
        .try_account(json!({"type":"guest"}))
        .expect("a request without an Origin logs in");
    assert_eq!(server.connections(), [2]);
}

#[test]
fn without_allowed_origins_any_origin_gets_in() {
    let server = ServerProc::start(&["--shards", "1"]);
    let mut c = Client::connect_from_origin(server.addr, "http://evil.example");
    c.try_account(json!({"type":"guest"}))
        .expect("any origin logs in");
}

#[test]
fn connections_that_never_log_in_are_closed_after_the_login_timeout() {
    let (server, _dir) =
        ServerProc::start_with_map("[limits]\nlogin_timeout_ms = 300\n", &["--shards", "1"]);
    let started = Instant::now();
    let mut c = Client::connect(server.addr);
    assert_eq!(c.expect_close(), 1008);
    assert!(started.elapsed() < Duration::from_secs(3));
    // A socket that never even sends its HTTP request is dropped too.
    let mut raw = std::net::TcpStream::connect(server.addr).expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(3))).ok();
    let mut buf = [0u8; 16];
    let n = std::io::Read::read(&mut raw, &mut buf).unwrap_or(0);
    assert_eq!(n, 0, "closed without a word");
}

#[test]
fn silent_sessions_are_pinged_then_closed() {
    let (server, _dir) = ServerProc::start_with_map(
        "[limits]\nidle_ping_ms = 300\npings_missed_max = 2\n",
        &["--shards", "1"],
    );
    // A client that reads answers pings (tungstenite replies to them) and stays.
    let mut lively = Client::guest(server.addr, Some("lively"));
    let mut silent = Client::guest(server.addr, Some("silent"));
    let until = Instant::now() + Duration::from_millis(4500);
    while Instant::now() < until {
        lively.read_for(200);
    }
    // The silent one never read, so never answered: it was closed.
    let frames = silent.raw_frames_until_eof();
    let pings = frames.iter().filter(|(op, _)| *op == 0x9).count();
    assert_eq!(pings, 2, "pinged twice before being closed: {frames:?}");
    let (op, payload) = frames.last().expect("frames");
    assert_eq!(*op, 0x8, "the last frame is a close");
    assert_eq!(close_code(payload), 1001);
    assert_eq!(lively.cmd("look")["ok"], true);
}

#[test]
fn quit_replies_then_closes_and_others_see_the_leave() {
    let server = ServerProc::start(&["--shards", "2", "--no-ambient"]);
    let mut stay = Client::guest(server.addr, Some("stayer"));
    let mut go = Client::guest(server.addr, Some("goer"));
    stay.event("enter", "goer");
    let bye = go.cmd("quit");
    assert_eq!(bye["ok"], true);
    assert_eq!(go.expect_close(), 1000);
    stay.event("leave", "goer");
    let look = stay.cmd("look");
    assert_eq!(look["room"]["players_total"], 1, "{look}");
}

#[test]
fn items_move_between_floor_and_inventory() {
    let server = ServerProc::start(&["--shards", "2", "--no-ambient"]);
    let mut c = Client::guest(server.addr, Some("picker"));
    let mut watcher = Client::guest(server.addr, Some("watcher"));
    let look = c.cmd("look");
    let items = look["room"]["items"].as_array().expect("items").clone();
    let item = items
        .first()
        .and_then(Value::as_str)
        .expect("the square has an item")
        .to_string();
    assert_eq!(c.cmd(&format!("get {item}"))["ok"], true);
    watcher.event("item", &item);
    assert_eq!(
        c.cmd(&format!("get {item}"))["ok"],
        items.iter().filter(|i| *i == item.as_str()).count() > 1
    );
    assert_eq!(c.cmd("get unicorn")["code"], "no_such_item");
    assert_eq!(c.cmd("i")["items"][0], item.as_str());
    assert_eq!(c.cmd("drop unicorn")["code"], "no_such_item");
    assert_eq!(c.cmd(&format!("drop {item}"))["ok"], true);
    assert!(c.cmd("look")["room"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i == item.as_str()));
    let help = c.cmd("help");
    assert!(help["text"].as_str().unwrap().contains("say"));
}

#[test]
fn npcs_speak_on_the_world_tick() {
    let (server, _dir) =
        ServerProc::start_with_map("[game]\nambient_interval_ms = 200\n", &["--shards", "2"]);
    let mut c = Client::guest(server.addr, Some("listener"));
    let npcs = c.cmd("look")["text"].as_str().unwrap().to_string();
    assert!(
        npcs.contains(" is here."),
        "the start room has an NPC: {npcs}"
    );
    let line = c.recv_until(|f| f["type"] == "event" && f["kind"] == "ambient");
    assert_eq!(line["room"], "town:square");
    assert!(!line["text"].as_str().unwrap().is_empty());
}

#[test]
fn a_second_server_on_a_busy_port_refuses_to_start() {
    let first = ServerProc::start(&["--shards", "2"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mudshard"))
        .args(["--listen", &first.addr.to_string(), "--shards", "2"])
        .output()
        .expect("run mudshard");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in use"), "{err}");
    // And the first one still answers every connection.
    for _ in 0..10 {
        let mut c = Client::guest(first.addr, None);
        assert_eq!(c.cmd("look")["ok"], true);
    }
}

#[test]
fn a_restart_on_the_same_port_right_after_closed_sessions_starts() {
    let mut first = ServerProc::start(&["--shards", "2"]);
    let addr = first.addr.to_string();
    for _ in 0..5 {
        // quit: the server closes first, leaving its side in TIME_WAIT.
        let mut c = Client::guest(first.addr, None);
        c.cmd("quit");
        c.expect_close();
    }
    assert!(first.terminate().success());
    let again = ServerProc::start(&["--shards", "2", "--listen", &addr]);
    let mut c = Client::guest(again.addr, None);
    assert_eq!(c.cmd("look")["ok"], true);
}
