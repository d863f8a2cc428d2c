//! The baseline speaks mudshard's protocol subset: a real `baseline` process
//! on an ephemeral port, real WebSocket clients (sync `tungstenite`).

mod common;

use std::process::Command;

use common::Server;
use serde_json::{json, Value};
use tungstenite::Message;

#[test]
fn welcome_has_seq_1_and_the_start_room() {
    let server = Server::start();
    let mut client = server.connect();
    client.send(json!({"type": "guest", "name": "alice"}));
    let welcome = client.recv();
    assert_eq!(welcome["seq"], 1);
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["name"], "alice");
    assert_eq!(welcome["token"], "-");
    assert_eq!(welcome["shard"], 0);
    assert_eq!(welcome["host"], "baseline");
    assert_eq!(welcome["room"]["id"], "grid:0_0");
    assert_eq!(
        welcome["room"]["exits"],
        json!({"south": "grid:0_1", "east": "grid:1_0"})
    );
    assert_eq!(welcome["room"]["players"], json!(["alice"]));
    assert_eq!(welcome["room"]["players_total"], 1);
    assert_eq!(welcome["room"]["items"], json!([]));
}

#[test]
fn a_taken_or_invalid_name_gets_a_guest_name() {
    let server = Server::start();
    let _alice = server.guest("alice");
    for requested in [
        json!({"type": "guest", "name": "alice"}),
        json!({"type": "guest"}),
    ] {
        let mut client = server.connect();
        client.send(requested);
        let welcome = client.recv();
        assert!(
            welcome["name"]
                .as_str()
                .is_some_and(|name| name.starts_with("guest")),
            "{welcome}"
        );
    }
}

#[test]
fn look_replies_with_the_room_and_echoes_the_id() {
    let server = Server::start();
    let mut client = server.guest("alice");
    client.cmd(json!(42), "look");
    let reply = client.recv();
    assert_eq!(reply["seq"], 2);
    assert_eq!(reply["type"], "reply");
    assert_eq!(reply["id"], 42);
    assert_eq!(reply["ok"], true);
    assert_eq!(reply["room"]["id"], "grid:0_0");
    assert!(reply["text"].is_string());

    client.cmd(json!("abc"), "l");
    assert_eq!(client.recv()["id"], "abc");

    client.send(json!({"type": "cmd", "line": "look"}));
    let reply = client.recv();
    assert!(reply.get("id").is_none(), "no id in, no id out: {reply}");
}

#[test]
fn two_players_in_the_same_room_hear_each_others_say() {
    let server = Server::start();
    let mut alice = server.guest("alice");
    let mut bob = server.guest("bob");

    alice.cmd(json!(1), "say hello  bob ");
    let reply = alice.recv();
    assert_eq!(
        (reply["type"].as_str(), reply["ok"].as_bool()),
        (Some("reply"), Some(true))
    );
    assert_eq!(reply["id"], 1);
    let event = bob.recv();
    assert_eq!(event["type"], "event");
    assert_eq!(event["kind"], "say");
    assert_eq!(event["room"], "grid:0_0");
    assert_eq!(event["from"], "alice");
    assert_eq!(event["text"], "hello  bob ");
    assert!(event["ts"].as_u64().is_some_and(|ts| ts > 0));
    assert_eq!(event["seq"], 2);

    bob.cmd(json!(2), "'hi alice");
    assert_eq!(bob.recv()["type"], "reply");
    let event = alice.recv();
    assert_eq!(
        (event["kind"].as_str(), event["text"].as_str()),
        (Some("say"), Some("hi alice"))
    );
    alice.assert_quiet();
    bob.assert_quiet();
}

#[test]
fn moving_tells_the_old_room_leave_and_the_new_room_enter() {
    let server = Server::start();
    let mut walker = server.guest("walker");
    let mut stayer = server.guest("stayer");
    let mut waiter = server.guest("waiter");
    waiter.cmd(json!(1), "goto grid:1_0");
    assert_eq!(waiter.recv()["room"]["id"], "grid:1_0");
    let teleport_leave = walker.recv();
    assert_eq!(
        (
            teleport_leave["kind"].as_str(),
            teleport_leave["from"].as_str()
        ),
        (Some("leave"), Some("waiter"))
    );
    stayer.recv();

    walker.cmd(json!(2), "e");
    let reply = walker.recv();
    assert_eq!(reply["ok"], true);
    assert_eq!(reply["room"]["id"], "grid:1_0");
    assert_eq!(reply["room"]["players_total"], 2);

    let leave = stayer.recv();
    assert_eq!(leave["type"], "event");
    assert_eq!(leave["kind"], "leave");
    assert_eq!(leave["room"], "grid:0_0");
    assert_eq!(leave["from"], "walker");
    let enter = waiter.recv();
    assert_eq!(enter["kind"], "enter");
    assert_eq!(enter["room"], "grid:1_0");
    assert_eq!(enter["from"], "walker");

    walker.cmd(json!(3), "go north");
    let reply = walker.recv();
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["code"], "no_exit");
    waiter.assert_quiet();
}

#[test]
fn ping_is_answered_with_pong_without_seq() {
    let server = Server::start();
    let mut client = server.connect();
    client.send(json!({"type": "ping", "id": 7}));
    assert_eq!(client.recv(), json!({"type": "pong", "id": 7}));

    let mut client = server.guest("alice");
    client.send(json!({"type": "ping", "id": "p1"}));
    assert_eq!(client.recv(), json!({"type": "pong", "id": "p1"}));
    client.cmd(json!(1), "look");
    assert_eq!(
        client.recv()["seq"],
        2,
        "pong takes no place in the sequence"
    );
}

#[test]
fn refused_frames_get_errors_and_the_connection_stays() {
    let server = Server::start();
    let mut client = server.connect();
    client.ws.send(Message::text("{not json")).expect("send");
    let error = client.recv();
    assert_eq!(error["type"], "error");
    assert_eq!(error["code"], "bad_json");
    assert!(error["message"].is_string());
    assert!(error.get("seq").is_none(), "no seq before login: {error}");

    client.cmd(json!(1), "look");
    assert_eq!(client.recv()["code"], "unauthenticated");

    client.send(json!({"type": "guest", "name": "alice"}));
    assert_eq!(client.recv()["seq"], 1);
    client.send(json!({"type": "dance"}));
    let error = client.recv();
    assert_eq!(error["code"], "unknown_type");
    assert_eq!(error["seq"], 2, "errors after login are numbered");

    client.cmd(json!(2), "dance wildly");
    let reply = client.recv();
    assert_eq!(reply["type"], "reply");
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["code"], "unknown_command");
}

#[test]
fn quit_replies_then_closes() {
    let server = Server::start();
    let mut client = server.guest("alice");
    client.cmd(json!(9), "quit");
    let reply = client.recv();
    assert_eq!(
        (reply["id"].as_u64(), reply["ok"].as_bool()),
        (Some(9), Some(true))
    );
    match client.ws.read() {
        Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => {}
        other => panic!("expected a close, got {other:?}"),
    }
}

#[test]
fn healthz_answers_json_with_the_pid() {
    let server = Server::start();
    let _alice = server.guest("alice");
    let response = server.http_get("/healthz");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    let (_, body) = response.split_once("\r\n\r\n").expect("a body");
    let health: Value = serde_json::from_str(body).expect("JSON body");
    assert_eq!(health["pid"], server.child.id());
    assert_eq!(health["connections"], 1);
    assert_eq!(health["server"], "baseline");

    let response = server.http_get("/nope");
    assert!(response.starts_with("HTTP/1.1 404 "), "{response}");
}

#[test]
fn sigterm_closes_sessions_and_exits_zero() {
    let mut server = Server::start();
    let mut client = server.guest("alice");
    let pid = server.child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(killed.success());
    match client.ws.read() {
        Ok(Message::Close(_)) => {}
        other => panic!("expected a close frame, got {other:?}"),
    }
    // Reading on completes the close handshake (tungstenite sends the reply).
    while client.ws.read().is_ok() {}
    let status = server.child.wait().expect("wait for the server");
    assert!(status.success(), "exit status {status}");
}
