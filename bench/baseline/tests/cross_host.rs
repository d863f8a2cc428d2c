//! Two baseline processes and a real `redis-server`: one world, bridged the
//! ordinary way (a channel per room, one PUBLISH per event).

mod common;

use common::{two_hosts, Client, Redis, Server};
use serde_json::{json, Value};

/// Logs `name` in on `server` and puts them in `room`; the reply comes once
/// the host listens to the room's channel.
fn player_in(server: &Server, name: &str, room: &str) -> Client {
    let mut client = server.guest(name);
    client.cmd(json!("place"), &format!("goto {room}"));
    let reply = next_reply(&mut client);
    assert_eq!(reply["ok"], true, "{reply}");
    assert_eq!(reply["room"]["id"], room);
    client
}

/// The next reply, skipping the events that come before it.
fn next_reply(client: &mut Client) -> Value {
    loop {
        let frame = client.recv();
        if frame["type"] == "reply" {
            return frame;
        }
    }
}

/// The next event of `kind`, skipping others (enters of later arrivals).
fn next_event(client: &mut Client, kind: &str) -> Value {
    loop {
        let frame = client.recv();
        if frame["type"] == "event" && frame["kind"] == kind {
            return frame;
        }
    }
}

#[test]
fn a_say_is_heard_by_the_room_on_both_hosts() {
    let redis = Redis::start();
    let (a, b) = two_hosts(&redis, "grid:3x3");
    let mut alice = player_in(&a, "alice", "grid:1_1");
    let mut carol = player_in(&a, "carol", "grid:1_1");
    let mut bob = player_in(&b, "bob", "grid:1_1");
    let mut elsewhere = player_in(&b, "dave", "grid:2_2");

    // Bob's arrival crossed over as an `enter` (after Carol's, from here).
    let enter = next_event(&mut alice, "enter");
    assert_eq!(enter["from"], "carol");
    let enter = next_event(&mut alice, "enter");
    assert_eq!(
        (enter["from"].as_str(), enter["room"].as_str()),
        (Some("bob"), Some("grid:1_1"))
    );

    alice.cmd(json!(1), "say hello from a");
    assert_eq!(next_reply(&mut alice)["ok"], true);
    for listener in [&mut bob, &mut carol] {
        let say = next_event(listener, "say");
        assert_eq!(say["from"], "alice");
        assert_eq!(say["room"], "grid:1_1");
        assert_eq!(say["text"], "hello from a");
    }

    bob.cmd(json!(2), "'and hello from b");
    assert_eq!(next_reply(&mut bob)["ok"], true);
    for listener in [&mut alice, &mut carol] {
        let say = next_event(listener, "say");
        assert_eq!(
            (say["from"].as_str(), say["text"].as_str()),
            (Some("bob"), Some("and hello from b"))
        );
    }
    bob.cmd(json!(3), ":waves");
    assert_eq!(next_reply(&mut bob)["text"], "bob waves");
    let emote = next_event(&mut alice, "emote");
    assert_eq!(
        (emote["from"].as_str(), emote["text"].as_str()),
        (Some("bob"), Some("waves"))
    );

    // Nobody hears their own say twice, and other rooms hear nothing.
    bob.assert_quiet();
    elsewhere.assert_quiet();
}

#[test]
fn a_shout_is_heard_on_both_hosts() {
    let redis = Redis::start();
    let (a, b) = two_hosts(&redis, "grid:3x3");
    // Nobody stays in the start room, whose leaves would cross over too.
    let mut alice = player_in(&a, "alice", "grid:1_1");
    let mut bob = player_in(&b, "bob", "grid:2_2");
    let mut carol = player_in(&b, "carol", "grid:1_0");

    alice.cmd(json!(1), "shout anyone there?");
    assert_eq!(next_reply(&mut alice)["text"], "You shout: anyone there?");
    for listener in [&mut bob, &mut carol] {
        let shout = next_event(listener, "shout");
        assert_eq!(
            (shout["from"].as_str(), shout["text"].as_str()),
            (Some("alice"), Some("anyone there?"))
        );
    }
    alice.assert_quiet();
}

#[test]
fn tell_and_who_reach_across_hosts() {
    let redis = Redis::start();
    let (a, b) = two_hosts(&redis, "grid:3x3");
    let mut alice = player_in(&a, "alice", "grid:0_0");
    let mut bob = player_in(&b, "bob", "grid:2_2");

    alice.cmd(json!(1), "tell bob psst");
    let reply = next_reply(&mut alice);
    assert_eq!(
        (reply["ok"].as_bool(), reply["text"].as_str()),
        (Some(true), Some("You tell bob, \"psst\""))
    );
    let tell = next_event(&mut bob, "tell");
    assert_eq!(
        (tell["from"].as_str(), tell["text"].as_str()),
        (Some("alice"), Some("psst"))
    );

    alice.cmd(json!(2), "tell nobody hello?");
    let reply = next_reply(&mut alice);
    assert_eq!(
        (reply["ok"].as_bool(), reply["code"].as_str()),
        (Some(false), Some("no_such_player"))
    );

    bob.cmd(json!(3), "who");
    assert_eq!(next_reply(&mut bob)["text"], "2 online: alice, bob");
}
