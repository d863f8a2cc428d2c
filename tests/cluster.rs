//! Two real hosts bridged by a real `redis-server` (each on a free port):
//! `who`, `shout` and `tell` across hosts, one name per cluster, and what
//! happens when Redis dies, pauses, or drops only the subscriber.

mod common;

use clap::Parser;
use common::redis::RedisProc;
use common::wedge::WedgeProxy;
use common::{Client, ServerProc};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Fast heartbeats and probes, so a test sees a change within a second.
fn map(id: &str, redis: &str, start: &str) -> String {
    format!(
        "[cluster]\nhosts = [{{ id = \"a\", zones = [\"town\", \"forest\", \"river\"] }}, {{ id = \"b\", zones = [\"caves\", \"tower\"] }}]\n\
         heartbeat_ms = 200\nhost_ttl_ms = 1500\nprobe_interval_ms = 200\n\
         token_secret = \"a secret the two test hosts share\"\n\n\
         [game]\ngoto_everyone = true\n\n\
         [auth]\nargon2_memory_kib = 64\nargon2_iterations = 1\n\n\
         # host {id}, start {start}\n"
    )
    .replace("# host", &format!("# {redis}\n# host"))
}

struct Cluster {
    redis: RedisProc,
    a: ServerProc,
    b: ServerProc,
    dirs: (tempfile::TempDir, tempfile::TempDir),
}

/// Host `id` of the test cluster (2 shards), starting players in `start`;
/// its map is changed by `tune` first.
fn host_tuned(
    dir: &std::path::Path,
    id: &str,
    redis: &str,
    start: &str,
    tune: &dyn Fn(String) -> String,
) -> ServerProc {
    let path = ServerProc::write_map(dir, &tune(map(id, redis, start)));
    // The common map starts everyone in town:square; host b owns the caves.
    let text = std::fs::read_to_string(&path).expect("map");
    let text = text
        .replace("start = \"town:square\"", &format!("start = \"{start}\""))
        .replace(
            "[server]\n",
            &format!("[server]\nhost_id = \"{id}\"\nredis = \"{redis}\"\n"),
        );
    std::fs::write(&path, text).expect("map");
    ServerProc::start_in_existing(&path, &["--shards", "2"])
}

fn health(server: &ServerProc) -> Value {
    let (status, body) = server.http_get("/healthz");
    assert_eq!(status, 200);
    serde_json::from_str(&body).expect("healthz JSON")
}

/// Waits (at most `secs`) until `server`'s bridge is up and sees `other`.
fn wait_bridged(server: &ServerProc, other: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let h = health(server);
        let up = h["bridge"]["state"] == "up";
        let sees = h["bridge"]["hosts"]
            .as_array()
            .is_some_and(|hs| hs.iter().any(|x| x == other));
        if up && sees {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "bridge not up within {secs} s: {h}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits (at most `secs`) until `server` no longer counts host `gone` live.
fn wait_counted_gone(server: &ServerProc, gone: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let h = health(server);
        let sees = h["bridge"]["hosts"]
            .as_array()
            .is_some_and(|hs| hs.iter().any(|x| x == gone));
        if !sees {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{gone} still counted live after {secs} s: {h}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cluster() -> Cluster {
    let redis = RedisProc::start();
    let url = redis.url();
    cluster_with(redis, &url)
}

/// Two bridged hosts; host a reaches Redis at `a_url` (Redis itself, or
/// something in front of it), host b directly.
fn cluster_with(redis: RedisProc, a_url: &str) -> Cluster {
    cluster_tuned(redis, a_url, &|m| m)
}

/// [`cluster_with`], both maps changed by `tune`.
fn cluster_tuned(redis: RedisProc, a_url: &str, tune: &dyn Fn(String) -> String) -> Cluster {
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = host_tuned(da.path(), "a", a_url, "town:square", tune);
    let b = host_tuned(db.path(), "b", &redis.url(), "caves:mouth", tune);
    wait_bridged(&a, "b", 10);
    wait_bridged(&b, "a", 10);
    Cluster {
        redis,
        a,
        b,
        dirs: (da, db),
    }
}

/// Two bridged hosts, host a reaching Redis through a [`WedgeProxy`].
fn cluster_behind_proxy() -> (Cluster, WedgeProxy) {
    let redis = RedisProc::start();
    let proxy = WedgeProxy::start(redis.port);
    let cl = cluster_with(redis, &proxy.url());
    (cl, proxy)
}

/// Sends `line` until the reply is ok (at most `secs`); the last reply.
fn until_ok(c: &mut Client, line: &str, secs: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let r = c.cmd(line);
        if r["ok"] == true || Instant::now() >= deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn who_shout_and_tell_reach_players_on_the_other_host() {
    let cl = cluster();
    let mut amy = Client::guest(cl.a.addr, Some("amy"));
    let mut bob = Client::guest(cl.b.addr, Some("bob"));
    assert_eq!(amy.welcome["room"]["id"], "town:square", "{}", amy.welcome);
    assert_eq!(bob.welcome["room"]["id"], "caves:mouth", "{}", bob.welcome);

    let r = amy.cmd("shout hello over the hills");
    assert_eq!(r["ok"], true, "{r}");
    let heard = bob.event("shout", "hello over the hills");
    assert_eq!(heard["from"], "amy", "{heard}");

    let r = bob.cmd("tell amy psst");
    assert_eq!(r["ok"], true, "{r}");
    let told = amy.event("tell", "psst");
    assert_eq!(told["from"], "bob", "{told}");
    let r = amy.cmd("tell bob back at you");
    assert_eq!(r["ok"], true, "{r}");
    bob.event("tell", "back at you");

    // Rosters travel with the heartbeats (every 200 ms here).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let who = amy.cmd("who");
        let text = who["text"].as_str().unwrap_or("").to_string();
        if text.contains("bob") && text.contains("amy") {
            assert!(text.starts_with("2 online"), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "who on a never listed bob: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = amy.cmd("tell nobody-here hi");
    assert_eq!(r["code"], "no_such_player", "{r}");
}

#[test]
fn a_name_is_held_once_across_the_cluster() {
    let cl = cluster();
    let _amy = Client::guest(cl.a.addr, Some("amy"));
    let _bob = Client::guest(cl.b.addr, Some("bob"));
    let twin = Client::try_guest(cl.b.addr, Some("amy"))
        .err()
        .expect("refused");
    assert_eq!(twin["code"], "name_taken", "{twin}");
    let twin = Client::try_guest(cl.a.addr, Some("Bob"))
        .err()
        .expect("refused");
    assert_eq!(twin["code"], "name_taken", "{twin}");

    // A player who leaves a and comes straight back on b is still in a's
    // last heartbeat for a moment: `who` lists them once all the same.
    let mut wren = Client::guest(cl.a.addr, Some("wren"));
    let seen = |c: &mut Client| {
        let r = c.cmd("who");
        let players = r["players"].as_array().cloned().unwrap_or_default();
        (players.iter().filter(|p| *p == "wren").count(), r)
    };
    let mut bob = Client::guest(cl.b.addr, Some("carl"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen(&mut bob).0 == 0 {
        assert!(Instant::now() < deadline, "a's heartbeat never listed wren");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(wren.cmd("quit")["ok"], true);
    wren.expect_close();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut back = loop {
        match Client::try_guest(cl.b.addr, Some("wren")) {
            Ok(c) => break c,
            Err(e) => {
                assert!(Instant::now() < deadline, "wren's name not let go: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    for _ in 0..10 {
        let (times, r) = seen(&mut back);
        assert_eq!(times, 1, "{r}");
        assert_eq!(
            r["players_total"],
            r["players"].as_array().map_or(0, |p| p.len()),
            "{r}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn redis_killed_local_play_goes_on_cross_host_fails_fast_and_returns_after_restart() {
    let mut cl = cluster();
    let mut amy = Client::guest(cl.a.addr, Some("amy"));
    let mut ann = Client::guest(cl.a.addr, Some("ann"));
    let _bob = Client::guest(cl.b.addr, Some("bob"));
    // Connected to a, standing in b's land.
    let mut vis = Client::guest(cl.a.addr, Some("vis"));
    assert_eq!(vis.cmd("goto caves:mouth")["ok"], true);
    assert_eq!(amy.cmd("tell bob hi")["ok"], true);

    cl.redis.kill9();
    // The player in the other host's land is told, unasked; the others are not.
    let told = vis.event("system", "is down");
    assert!(
        told["text"]
            .as_str()
            .unwrap_or("")
            .contains("fails until it is back"),
        "{told}"
    );
    // Local play: unchanged.
    for _ in 0..20 {
        assert_eq!(amy.cmd("look")["ok"], true);
    }
    assert_eq!(amy.cmd("say still here")["ok"], true);
    ann.event("say", "still here");
    // Cross-host: answered at once, never a hang.
    let deadline = Instant::now() + Duration::from_secs(5);
    let r = loop {
        let asked = Instant::now();
        let r = amy.cmd("tell bob are you there");
        assert!(
            asked.elapsed() < Duration::from_millis(2500),
            "a cross-host command took {:?}",
            asked.elapsed()
        );
        if r["ok"] == false || Instant::now() >= deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(r["code"], "unreachable", "{r}");
    assert_eq!(health(&cl.a)["bridge"]["state"], "down");

    cl.redis.restart();
    let back = Instant::now();
    let r = until_ok(&mut amy, "tell bob welcome back", 10);
    assert_eq!(r["ok"], true, "cross-host play not back within 10 s: {r}");
    assert!(back.elapsed() < Duration::from_secs(10));
    vis.event("system", "is back");
    assert_eq!(vis.cmd("look")["room"]["id"], "caves:mouth");
    // Amy stands in her own host's land: she was told nothing of it.
    assert_eq!(amy.cmd("look")["ok"], true);
    assert!(
        !amy.backlog
            .iter()
            .any(|f| f["kind"] == "system" && f["text"].as_str().unwrap_or("").contains("link")),
        "{:?}",
        amy.backlog
    );
    let (_, metrics) = cl.a.http_get("/metrics");
    assert!(
        common::metric_sum(&metrics, "mudshard_bridge_reconnects_total") > 0,
        "{metrics}"
    );
}

#[test]
fn a_paused_redis_opens_the_breaker_and_play_resumes_when_it_answers_again() {
    let cl = cluster();
    let mut amy = Client::guest(cl.a.addr, Some("amy"));
    let _bob = Client::guest(cl.b.addr, Some("bob"));
    assert_eq!(amy.cmd("tell bob hi")["ok"], true);
    // A tell to a name that b keeps asks b where its player is.
    let kept_on_b = name_homed_on("Cora", 1);
    let mut cora = Client::guest(cl.b.addr, Some(&kept_on_b));

    // The connections stay open; nothing is answered for 4 s.
    assert!(cl
        .redis
        .cmd(&["CLIENT", "PAUSE", "4000"])
        .starts_with("+OK"));
    // Asked at once, before anything has noticed the pause: the command is
    // answered by its deadline, within `remote_timeout_ms` (2 s here; the
    // 300 ms over it are this test's own scheduling on a busy machine).
    // Once, the deadline was looked at once a second, and the answer came
    // up to a second late.
    let asked = Instant::now();
    let r = amy.cmd(&format!("tell {kept_on_b} are you there"));
    let waited = asked.elapsed();
    assert_eq!(r["code"], "unreachable", "{r}");
    assert!(
        waited < Duration::from_millis(2300),
        "answered after {waited:?}"
    );
    std::thread::sleep(Duration::from_millis(
        1800u64.saturating_sub(waited.as_millis() as u64),
    ));
    let asked = Instant::now();
    let r = amy.cmd("tell bob anyone");
    assert!(asked.elapsed() < Duration::from_millis(2500));
    assert_eq!(r["code"], "unreachable", "{r}");
    assert_eq!(amy.cmd("look")["ok"], true, "local play goes on");

    let r = until_ok(&mut amy, "tell bob there you are", 12);
    assert_eq!(r["ok"], true, "not back after the pause: {r}");
    // The tell that was answered `unreachable` was never carried out: when
    // Redis answered again it let it through, long after its answer.
    let r = until_ok(&mut amy, &format!("tell {kept_on_b} one more"), 5);
    assert_eq!(r["ok"], true, "{r}");
    cora.event("tell", "one more");
    let told: Vec<&Value> = cora
        .backlog
        .iter()
        .filter(|f| f["kind"] == "tell")
        .collect();
    assert!(
        told.is_empty(),
        "a tell its teller was told failed arrived: {told:?}"
    );
}

#[test]
fn a_killed_subscriber_connection_alone_is_remade() {
    let cl = cluster();
    let mut amy = Client::guest(cl.a.addr, Some("amy"));
    let mut bob = Client::guest(cl.b.addr, Some("bob"));
    assert!(cl
        .redis
        .cmd(&["CLIENT", "KILL", "TYPE", "pubsub"])
        .starts_with(':'));
    let r = until_ok(&mut amy, "tell bob still with me", 10);
    assert_eq!(r["ok"], true, "{r}");
    bob.event("tell", "still with me");
    let (_, metrics) = cl.b.http_get("/metrics");
    assert!(
        common::metric_sum(&metrics, "mudshard_bridge_reconnects_total") > 0,
        "{metrics}"
    );
}

#[test]
fn a_wedged_subscriber_is_found_by_its_probes_and_remade() {
    // Host a reaches Redis through a proxy that can silence its subscriber.
    let (cl, proxy) = cluster_behind_proxy();
    let (a, b) = (&cl.a, &cl.b);
    let mut amy = Client::guest(a.addr, Some("amy"));
    let mut bob = Client::guest(b.addr, Some("bob"));
    assert_eq!(until_ok(&mut bob, "tell amy hi", 5)["ok"], true);
    amy.event("tell", "hi");
    // Amy stands in b's land, beside Bob: what is said there, b sends to a.
    assert_eq!(until_ok(&mut amy, "goto caves:mouth", 5)["ok"], true);

    // The socket stays open and Redis keeps publishing to it; a hears nothing.
    assert_eq!(proxy.wedge_subscribers(), 1, "a's subscriber, alone");
    // Said in b's land: done there (ok at once); its event for Amy is
    // published into the silence.
    let said = bob.cmd("say said during the wedge");
    assert_eq!(said["ok"], true, "{said}");
    // A tell to a name a keeps waits on a: answered unreachable by the
    // timeout, and then never carried out, or carried out and answered.
    let during = bob.cmd("tell amy sent during the wedge");

    // Its own probes stop coming back: within a few probe intervals (200 ms
    // here) the subscriber is found wedged and made again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = a.http_get("/metrics");
        if common::metric_sum(&metrics, "mudshard_bridge_wedged_total") > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the wedged subscriber was not found within 10 s: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = until_ok(&mut bob, "tell amy back again", 10);
    assert_eq!(r["ok"], true, "{r}");
    // What b published into the silence is sent again and arrives.
    amy.event("say", "said during the wedge");
    amy.event("tell", "back again");
    let told = amy
        .backlog
        .iter()
        .any(|f| f["kind"] == "tell" && f["text"] == "sent during the wedge");
    assert_eq!(
        told,
        during["ok"] == true,
        "a tell answered {during} arrived: {told}"
    );
    assert_eq!(health(a)["bridge"]["state"], "up");
}

/// Two hosts, a behind a proxy that can slow what Redis sends its
/// subscriber; answers are owed within 600 ms, and probes are rare, so that
/// a slow path home is not taken for a wedged one.
fn cluster_with_slow_answers() -> (Cluster, WedgeProxy) {
    let tune = |m: String| {
        m.replace("probe_interval_ms = 200", "probe_interval_ms = 10000")
            .replace(
                "heartbeat_ms = 200",
                "heartbeat_ms = 200\nremote_timeout_ms = 600",
            )
    };
    let redis = RedisProc::start();
    let proxy = WedgeProxy::start(redis.port);
    let cl = cluster_tuned(redis, &proxy.url(), &tune);
    (cl, proxy)
}

#[test]
fn an_answer_held_on_its_way_back_is_shown_late_and_does_not_end_the_next_command() {
    let (cl, proxy) = cluster_with_slow_answers();
    let mut amy = Client::guest(cl.a.addr, Some("amy"));
    assert_eq!(until_ok(&mut amy, "goto caves:mouth", 5)["ok"], true);
    assert_eq!(amy.cmd("look")["ok"], true, "answered in time first");
    // A player on b whose name b keeps: a tell to them is answered by b.
    let pal = name_homed_on("pal", 1);
    let _pal = Client::guest(cl.b.addr, Some(&pal));

    // What b sends a now reaches it 900 ms late: a's commands get to b at
    // once, and b's answers come back after a has answered `unreachable`.
    proxy.delay_subscribers(Duration::from_millis(900));
    let is_reply = |f: &Value, id: u64| f["type"] == "reply" && f["id"] == id;
    amy.send(serde_json::json!({"type":"cmd","id":101,"line":"look"}));
    let first = amy.recv_until(|f| is_reply(f, 101));
    assert_eq!(first["code"], "unreachable", "{first}");
    // A command answered by b (a tell: a body command would be refused at
    // once while the look's answer is owed, see the next test), and one
    // answered here waiting behind it.
    let tell = format!("tell {pal} hello");
    amy.send(serde_json::json!({"type":"cmd","id":102,"line":tell}));
    amy.send(serde_json::json!({"type":"cmd","id":103,"line":"help"}));
    let mut order = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while order.iter().filter(|&&id| id != 101).count() < 2 {
        assert!(Instant::now() < deadline, "answers so far: {order:?}");
        let f = amy.recv_until(|f| f["type"] == "reply");
        order.push(f["id"].as_u64().unwrap_or(0));
        if f["id"] == 101 {
            assert_eq!(f["ok"], true, "the late answer says what was done: {f}");
            assert_eq!(f["late"], true, "and that it is late: {f}");
        }
    }
    // The late answer to 101 came while 102 was in flight, and did not end
    // it: 103 ran only once 102 had its own answer.
    assert_eq!(order, [101, 102, 103], "answers in the order they came");
    proxy.delay_subscribers(Duration::ZERO);
    let (_, metrics) = cl.a.http_get("/metrics");
    assert!(
        common::metric_sum(&metrics, "mudshard_cross_host_late_answers_total") >= 1,
        "{metrics}"
    );
}

#[test]
fn a_walk_whose_answer_is_held_leaves_no_ghost_and_the_next_command_waits_for_it() {
    let (cl, proxy) = cluster_with_slow_answers();
    let mut bob = Client::guest(cl.b.addr, Some("bob"));
    assert_eq!(until_ok(&mut bob, "goto caves:tunnel", 5)["ok"], true);
    let mut amy = Client::guest(cl.a.addr, Some("amy"));
    assert_eq!(until_ok(&mut amy, "goto caves:mouth", 5)["ok"], true);
    assert_eq!(amy.cmd("look")["ok"], true);

    // b's answers reach a 900 ms late; a gives up on them at 550 ms.
    proxy.delay_subscribers(Duration::from_millis(900));
    let walked = amy.cmd("east");
    assert_eq!(walked["code"], "unreachable", "{walked}");
    // The body did move (b carried the walk out): Bob sees Amy come in.
    let came = bob.recv_until(|f| f["kind"] == "enter" && f["from"] == "amy");
    assert_eq!(came["room"], "caves:tunnel", "{came}");
    // Until the walk's own answer comes, a's shard does not know where the
    // body stands: a command now is refused as such, not sent to the room
    // the body left ("You are nowhere").
    let next = amy.cmd("look");
    assert_eq!(next["code"], "unreachable", "{next}");
    assert!(
        next["text"]
            .as_str()
            .unwrap_or("")
            .contains("still on its way"),
        "{next}"
    );
    // Amy leaves cleanly before that answer comes: her body leaves the
    // world from where it stands, once the answer says where that is.
    amy.send_raw(tungstenite::Message::Close(None));
    amy.expect_close();
    let left = bob
        .recv_until(|f| f["kind"] == "leave" && f["from"] == "amy" && f["room"] == "caves:tunnel");
    assert!(
        left["text"]
            .as_str()
            .unwrap_or("")
            .contains("left the world"),
        "{left}"
    );
    proxy.delay_subscribers(Duration::ZERO);
    assert_eq!(
        here(&mut bob),
        r#"["bob"]"#,
        "no ghost of Amy in the tunnel"
    );
}

#[test]
fn a_command_in_flight_to_a_host_that_dies_is_answered_when_it_is_counted_dead() {
    // Commands wait 15 s for their answer: far longer than b, frozen, takes
    // to be counted dead (its heartbeat lives 1.5 s and is read every 0.2 s),
    // so the answer can only come from that. It must come within a few
    // seconds even this soon after a linked to Redis: a grace meant for
    // reconnections once held it back 6–7 s.
    let tune = |m: String| {
        m.replace(
            "heartbeat_ms = 200",
            "heartbeat_ms = 200\nremote_timeout_ms = 15000",
        )
    };
    let redis = RedisProc::start();
    let url = redis.url();
    let cl = cluster_tuned(redis, &url, &tune);
    let mut amy = Client::guest(cl.a.addr, Some("amy"));
    assert_eq!(until_ok(&mut amy, "goto caves:mouth", 5)["ok"], true);
    signal(&cl.b, "STOP");
    let asked = Instant::now();
    amy.send(serde_json::json!({"type":"cmd","id":"lost?","line":"look"}));
    let answer = amy.recv_until(|f| f["type"] == "reply" && f["id"] == "lost?");
    let waited = asked.elapsed();
    signal(&cl.b, "CONT");
    assert_eq!(answer["code"], "unreachable", "{answer}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    amy.event("system", "The land you stood in is gone");
    let look = until_ok(&mut amy, "look", 5);
    assert_eq!(look["room"]["id"], "town:square", "{look}");
}

/// The names `look` shows in the room of `c`'s player.
fn here(c: &mut Client) -> String {
    let look = c.cmd("look");
    look["room"]["players"].to_string()
}

/// Waits (bounded) until `c`'s room shows `name` (or, `present` false, no
/// longer does): a change made by another shard of the room's host reaches
/// the looker's shard soon, not in step with what the test saw elsewhere.
fn until_here(c: &mut Client, name: &str, present: bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let seen = here(c);
        if seen.contains(name) == present {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} {} in the room: {seen}",
            if present { "never appeared" } else { "stayed" }
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_host_cut_off_from_redis_is_buried_by_the_others_and_leaves_no_ghost_when_it_returns() {
    // Host a reaches Redis through a link that can be cut; Redis is untouched.
    let (cl, proxy) = cluster_behind_proxy();
    let (a, b) = (&cl.a, &cl.b);
    let mut amy = Client::guest(a.addr, Some("amy"));
    let mut obs = Client::guest(b.addr, Some("obs"));
    // vis: connected to b, standing in a's land; wal: the other way round.
    let mut vis = Client::guest(b.addr, Some("vis"));
    let mut wal = Client::guest(a.addr, Some("wal"));
    assert_eq!(until_ok(&mut vis, "goto town:square", 5)["ok"], true);
    // Taken now, so that the wait for vis's second arrival below cannot
    // match this one (the same words, room and sender).
    amy.event("enter", "vis appears in a shimmer");
    assert_eq!(until_ok(&mut wal, "goto caves:mouth", 5)["ok"], true);
    assert!(here(&mut amy).contains("vis"), "{}", here(&mut amy));
    until_here(&mut obs, "wal", true);

    proxy.cut();
    // b sees a's heartbeat expire: a is dead to it. vis wakes in b's land,
    // and the body b kept for wal leaves.
    let recalled = vis.event("system", "gone");
    assert!(
        recalled["text"].as_str().unwrap_or("").contains("start"),
        "{recalled}"
    );
    // The new body reaches the start room's owner a moment after the notice.
    let deadline = Instant::now() + Duration::from_secs(5);
    while vis.cmd("look")["room"]["id"] != "caves:mouth" {
        assert!(Instant::now() < deadline, "vis not at b's start");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The body kept for wal leaves on the shard that owns its room, which
    // hears of a's death apart from vis's shard.
    until_here(&mut obs, "wal", false);
    // a, cut off, goes on serving its own land; wal is told the link is down.
    wal.event("system", "is down");
    assert_eq!(amy.cmd("say alone")["ok"], true);

    proxy.heal();
    // Within 10 s a learns that the others buried it: it lets go of the
    // body it kept for vis and wakes wal in its own land. No body is left
    // in two places.
    let healed = Instant::now();
    wal.event("system", "gone");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let look = wal.cmd("look");
        if look["room"]["id"] == "town:square" && !here(&mut amy).contains("vis") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a kept its ghosts: wal {look}, amy sees {}",
            here(&mut amy)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(healed.elapsed() < Duration::from_secs(10));
    wait_bridged(a, "b", 10);
    wait_bridged(b, "a", 10);
    // Cross-host play is back, both ways, with one body each.
    let r = until_ok(&mut wal, "tell obs back", 10);
    assert_eq!(r["ok"], true, "{r}");
    obs.event("tell", "back");
    assert_eq!(until_ok(&mut vis, "goto town:square", 10)["ok"], true);
    amy.event("enter", "vis appears in a shimmer");
    let seen = here(&mut amy);
    assert_eq!(seen.matches("vis").count(), 1, "{seen}");
    assert_eq!(vis.cmd("say one of me")["ok"], true);
    amy.event("say", "one of me");
    let who = amy.cmd("who");
    for name in ["amy", "obs", "vis", "wal"] {
        assert!(who["text"].as_str().unwrap_or("").contains(name), "{who}");
    }
    let (_, metrics) = a.http_get("/metrics");
    assert_eq!(
        common::metric_sum(&metrics, "mudshard_bridge_reborn_total"),
        1,
        "{metrics}"
    );
}

#[test]
fn a_dead_host_leaves_who_and_its_names_are_free() {
    let mut cl = cluster();
    let mut amy = Client::guest(cl.a.addr, Some("amy"));
    let _bob = Client::guest(cl.b.addr, Some("bob"));
    cl.b.kill9();
    // Its heartbeat expires after host_ttl_ms (1.5 s here).
    wait_counted_gone(&cl.a, "b", 8);
    let who = amy.cmd("who");
    assert!(!who["text"].as_str().unwrap_or("").contains("bob"), "{who}");
    let r = amy.cmd("tell bob hello");
    assert_eq!(r["ok"], false, "{r}");
}

/// A host stopped cleanly (SIGTERM) takes its heartbeat key away as it
/// goes: the others count it gone at their next heartbeat, and recall their
/// players from its land, long before the key would have expired.
#[test]
fn a_host_that_stops_cleanly_is_counted_gone_at_once_not_when_its_heartbeat_expires() {
    let redis = RedisProc::start();
    let url = redis.url();
    let mut cl = cluster_tuned(redis, &url, &|m| {
        m.replace("host_ttl_ms = 1500", "host_ttl_ms = 30000")
    });
    let mut vis = Client::guest(cl.a.addr, Some("vis"));
    assert_eq!(until_ok(&mut vis, "goto caves:mouth", 5)["ok"], true);
    assert!(cl.b.terminate().success());
    // Its key would live 30 s.
    wait_counted_gone(&cl.a, "b", 5);
    vis.event("system", "gone");
    let deadline = Instant::now() + Duration::from_secs(5);
    while vis.cmd("look")["room"]["id"] != "town:square" {
        assert!(Instant::now() < deadline, "not recalled to the start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the binary on a map that is `extra` over the default one; its
/// stderr, having checked it failed.
fn refused(extra: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("dir");
    let path = ServerProc::write_map(dir.path(), extra);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mudshard"))
        .args(["--config", path.to_str().expect("utf-8")])
        .args(args)
        .output()
        .expect("run mudshard");
    assert!(!out.status.success(), "started with {extra}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_cluster_map_that_owns_a_zone_twice_or_never_is_refused_at_start() {
    let redis = ["--redis", "redis://127.0.0.1:1"];
    let err = refused("", &redis);
    assert!(err.contains("[cluster] hosts is empty"), "{err}");
    let twice = "[cluster]\nhosts = [{ id = \"a\", zones = [\"town\", \"forest\", \"river\", \"caves\"] }, { id = \"b\", zones = [\"caves\", \"tower\"] }]\n";
    let err = refused(twice, &redis);
    assert!(
        err.contains("zone \"caves\" is claimed by two hosts, \"a\" and \"b\""),
        "{err}"
    );
    let never = "[cluster]\nhosts = [{ id = \"a\", zones = [\"town\", \"forest\", \"river\"] }, { id = \"b\", zones = [\"caves\"] }]\n";
    let err = refused(never, &redis);
    assert!(err.contains("zone \"tower\" is owned by no host"), "{err}");
    let stranger = "[cluster]\nhosts = [{ id = \"a\", zones = [\"town\", \"forest\", \"river\"] }, { id = \"b\", zones = [\"caves\", \"tower\"] }]\n";
    let err = refused(
        stranger,
        &["--redis", "redis://127.0.0.1:1", "--host-id", "c"],
    );
    assert!(
        err.contains("this host's id \"c\" is not among the hosts listed (a, b)"),
        "{err}"
    );
    let err = refused(stranger, &[]);
    assert!(err.contains("server.redis is not set"), "{err}");
}

#[test]
fn a_walk_into_the_other_hosts_land_hands_the_body_over_and_back() {
    let cl = cluster();
    let mut obs = Client::guest(cl.b.addr, Some("obs"));
    let mut wal = Client::guest(cl.a.addr, Some("wal"));
    assert_eq!(wal.cmd("get coin")["ok"], true, "the square has a coin");

    let r = wal.cmd("goto caves:mouth");
    assert_eq!(r["ok"], true, "{r}");
    let entered = obs.event("enter", "wal");
    assert_eq!(entered["room"], "caves:mouth", "{entered}");
    let look = wal.cmd("look");
    assert_eq!(look["room"]["id"], "caves:mouth", "{look}");
    let inv = wal.cmd("inventory");
    assert!(inv["text"].as_str().unwrap_or("").contains("coin"), "{inv}");

    // Room events of b's land reach a's player, and the other way round.
    assert_eq!(obs.cmd("say down here")["ok"], true);
    wal.event("say", "down here");
    assert_eq!(wal.cmd("say hello cave")["ok"], true);
    obs.event("say", "hello cave");

    // And back to a's land: the body, with the coin, returns.
    let r = wal.cmd("goto town:square");
    assert_eq!(r["ok"], true, "{r}");
    obs.event("leave", "wal");
    let look = wal.cmd("look");
    assert_eq!(look["room"]["id"], "town:square", "{look}");
    let inv = wal.cmd("inventory");
    assert!(inv["text"].as_str().unwrap_or("").contains("coin"), "{inv}");

    // Walking by exits across the border works too: forest:ravine is a's,
    // caves:mouth (below it) is b's.
    assert_eq!(wal.cmd("goto forest:ravine")["ok"], true);
    let r = wal.cmd("down");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(wal.cmd("look")["room"]["id"], "caves:mouth");
    let r = wal.cmd("up");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(wal.cmd("look")["room"]["id"], "forest:ravine");
}

#[test]
fn a_walk_toward_a_dead_host_is_refused_and_its_visitors_wake_at_home() {
    let mut cl = cluster();
    let mut wal = Client::guest(cl.a.addr, Some("wal"));
    let mut vis = Client::guest(cl.a.addr, Some("vis"));
    assert_eq!(vis.cmd("goto caves:mouth")["ok"], true);
    assert_eq!(vis.cmd("look")["room"]["id"], "caves:mouth");
    cl.b.kill9();
    // vis stood in b's land: once b's heartbeat expires, vis is recalled.
    let recalled = vis.event("system", "gone");
    assert!(
        recalled["text"].as_str().unwrap_or("").contains("start"),
        "{recalled}"
    );
    // Asked at once, before the body is back: never "log in again".
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let look = vis.cmd("look");
        if look["room"]["id"] == "town:square" {
            break;
        }
        assert_eq!(look["code"], "unreachable", "{look}");
        assert!(
            look["text"]
                .as_str()
                .unwrap_or("")
                .contains("on your way back to the start"),
            "{look}"
        );
        assert!(Instant::now() < deadline, "vis not back home: {look}");
        std::thread::sleep(Duration::from_millis(2));
    }
    let r = wal.cmd("goto caves:mouth");
    assert_eq!(r["code"], "unreachable", "{r}");
    assert_eq!(wal.cmd("look")["room"]["id"], "town:square", "wal stayed");
}

#[test]
fn a_walk_whose_body_comes_back_from_a_host_that_died_is_answered_with_its_id() {
    let cl = cluster();
    let mut amy = Client::guest(cl.a.addr, Some("amy"));
    assert_eq!(amy.cmd("goto forest:ravine")["ok"], true);
    // b freezes: its heartbeat still lives, so the walk down into b's caves
    // goes ahead, and the body waits, frozen, for b's acknowledgement.
    signal(&cl.b, "STOP");
    amy.send(serde_json::json!({"type":"cmd","id":"down?","line":"down"}));
    // b is counted dead, the body comes back, and the reply that shows the
    // ravine again answers the walk.
    let answer = amy.recv_until(|f| f["type"] == "reply" && f["id"] == "down?");
    signal(&cl.b, "CONT");
    assert_eq!(answer["room"]["id"], "forest:ravine", "{answer}");
    amy.event("system", "The host of that land stopped");
    assert_eq!(amy.cmd("look")["room"]["id"], "forest:ravine");
}

#[test]
fn a_bridged_host_exposes_every_bridge_metric_the_readme_documents_and_healthz_shows_the_bridge() {
    let cl = cluster();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let table = readme
        .split("\n#### Bridge metrics\n")
        .nth(1)
        .expect("a \"#### Bridge metrics\" section in the README");
    let table = table.split("\n#").next().unwrap_or(table);
    let mut documented: Vec<String> = table
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1).map(str::to_string))
        .collect();
    let (_, metrics) = cl.a.http_get("/metrics");
    let mut exposed: Vec<String> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("mudshard_bridge_"))
        .map(str::to_string)
        .collect();
    documented.sort();
    exposed.sort();
    assert!(documented.len() >= 10, "{documented:?}");
    assert_eq!(
        documented, exposed,
        "the README's bridge table and /metrics disagree"
    );
    let h = health(&cl.b);
    assert_eq!(h["bridge"]["state"], "up");
    assert_eq!(h["bridge"]["hosts"], serde_json::json!(["a"]));
}

/// A name whose account the host numbered `home` keeps.
fn name_homed_on(prefix: &str, home: u16) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|n| mudshard::shard::cluster::home_host(&n.to_lowercase(), 2) == home)
        .expect("some name")
}

#[test]
fn a_registered_player_lives_on_the_home_host_and_logs_in_on_either() {
    let mut cl = cluster();
    let name = name_homed_on("Rowan", 1);
    // Registered on a; the account is kept in b's file.
    let mut p = Client::register(cl.a.addr, &name, "correct horse");
    assert_eq!(p.cmd("get coin")["ok"], true);
    assert_eq!(p.cmd("north")["ok"], true);
    let token = p.welcome["token"].as_str().expect("token").to_string();
    assert_eq!(p.cmd("quit")["ok"], true);
    p.expect_close();
    std::thread::sleep(Duration::from_millis(500));

    // On b, where the account is: the password is checked there.
    let mut p = Client::login(cl.b.addr, &name, "correct horse");
    assert_eq!(p.welcome["room"]["id"], "town:library", "{}", p.welcome);
    let inv = p.cmd("inventory");
    assert!(inv["text"].as_str().unwrap_or("").contains("coin"), "{inv}");
    assert_eq!(p.cmd("quit")["ok"], true);
    p.expect_close();

    // A wrong password is refused by the home host.
    let mut c = Client::connect(cl.a.addr);
    let refusal = c
        .try_account(serde_json::json!({"type":"login","name":name,"password":"wrong horse"}))
        .expect_err("refused");
    assert_eq!(refusal["code"], "bad_credentials", "{refusal}");

    // The token from a's welcome logs in on a (one secret for the cluster).
    // The token names the account by its key: b, which keeps the name,
    // learns how it is written once a has read the account, and a `tell`'s
    // answer names it so.
    let mut c = Client::connect(cl.a.addr);
    c.try_account(serde_json::json!({"type":"login","token":token}))
        .expect("the token logs in");
    let mut teller = Client::guest(cl.a.addr, Some("teller"));
    let told = teller.cmd(&format!("tell {} hi", name.to_lowercase()));
    assert_eq!(told["text"], format!("You tell {name}, \"hi\""), "{told}");
    assert_eq!(c.event("tell", "hi")["from"], "teller");
    assert_eq!(c.cmd("quit")["ok"], true);
    c.expect_close();
    std::thread::sleep(Duration::from_millis(300));

    // b restarts on its file: the account and its saves are still there.
    assert!(cl.b.terminate().success());
    let map = cl.dirs.1.path().join("map.toml");
    cl.b = ServerProc::start_in_existing(&map, &["--shards", "2"]);
    wait_bridged(&cl.a, "b", 10);
    wait_bridged(&cl.b, "a", 10);
    let mut p = Client::login(cl.a.addr, &name, "correct horse");
    assert_eq!(p.welcome["room"]["id"], "town:library", "{}", p.welcome);
    let inv = p.cmd("inventory");
    assert!(inv["text"].as_str().unwrap_or("").contains("coin"), "{inv}");

    // A name kept by b cannot be registered again through a.
    let mut c = Client::connect(cl.a.addr);
    let refusal = c
        .try_account(serde_json::json!({"type":"register","name":name.to_uppercase(),"password":"another one"}))
        .expect_err("taken");
    assert_eq!(refusal["code"], "name_taken", "{refusal}");
}

/// Two hosts, a behind a proxy, that hear of each other's restarts only
/// every second (their heartbeat), so that what a sends b just after b
/// restarted reaches b's new run before a knows of it; probes are rare
/// enough that a slow path home (1.5 s, below) is not taken for a wedged
/// one. (With a 2 s heartbeat and 2.5 s of delay, an answer asked again
/// after the restart could take 4.5 s and more under load, against the
/// login's 5 s: CI once timed out there.)
fn cluster_slow_to_hear() -> (Cluster, WedgeProxy) {
    let tune = |m: String| {
        m.replace(
            "heartbeat_ms = 200\nhost_ttl_ms = 1500\nprobe_interval_ms = 200",
            "heartbeat_ms = 1000\nhost_ttl_ms = 6000\nprobe_interval_ms = 3000",
        )
    };
    let redis = RedisProc::start();
    let proxy = WedgeProxy::start(redis.port);
    let cl = cluster_tuned(redis, &proxy.url(), &tune);
    (cl, proxy)
}

/// Restarts b on its file, and from then on slows what reaches a by 1.5 s,
/// longer than a heartbeat: b's answers to what a sends it now come after a
/// heard of b's new run.
/// b crashes (a clean stop would take its heartbeat key away, and a could
/// count it gone before its new run's first heartbeat).
fn restart_b_and_slow_its_answers(cl: &mut Cluster, proxy: &WedgeProxy) {
    cl.b.kill9();
    let map = cl.dirs.1.path().join("map.toml");
    cl.b = ServerProc::start_in_existing(&map, &["--shards", "2"]);
    wait_bridged(&cl.b, "a", 10);
    proxy.delay_subscribers(Duration::from_millis(1500));
}

#[test]
fn a_login_asked_of_a_host_that_restarted_a_moment_ago_is_answered_by_its_new_run() {
    // The claim reaches b's new run, which answers it; a hears of the
    // restart before that answer comes. It once gave the claim up then, as
    // lost with the old run, and the login failed `unreachable`.
    // A guest's name: one question to b, its claim, answered in 1.5 s.
    let (mut cl, proxy) = cluster_slow_to_hear();
    let name = name_homed_on("wren", 1);
    restart_b_and_slow_its_answers(&mut cl, &proxy);
    let p = Client::try_guest(cl.a.addr, Some(&name)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.welcome["name"], name.as_str(), "{}", p.welcome);
}

#[test]
fn a_walk_into_a_host_that_restarted_a_moment_ago_arrives_there_once() {
    // The body reaches b's new run, which takes it in; a hears of the
    // restart before the acknowledgement comes. It once took the body back
    // then, and Amy stood in two places: back in the square on a, and in the
    // mine on b, where her commands went.
    let (mut cl, proxy) = cluster_slow_to_hear();
    let mut amy = Client::guest(cl.a.addr, Some("amy"));
    let mut bob = Client::guest(cl.a.addr, Some("bob"));
    restart_b_and_slow_its_answers(&mut cl, &proxy);
    let walk = amy.cmd("goto caves:mouth");
    assert_eq!(walk["room"]["id"], "caves:mouth", "{walk}");
    proxy.delay_subscribers(Duration::ZERO);
    // Whatever a was told meanwhile has come: the body is in the mine, once.
    std::thread::sleep(Duration::from_millis(3000));
    let look = amy.cmd("look");
    assert_eq!(look["room"]["id"], "caves:mouth", "{look}");
    assert_eq!(look["room"]["players"].to_string(), r#"["amy"]"#, "{look}");
    assert_eq!(here(&mut bob), r#"["bob"]"#, "no Amy left in the square");
    let (_, metrics) = cl.b.http_get("/metrics");
    assert_eq!(
        common::metric_sum(&metrics, "mudshard_bodies"),
        1,
        "{metrics}"
    );
}

/// After `STOP`, waits until every thread of the process has stopped: kill(2)
/// returns before that, and on a busy machine a thread may go on running
/// (and answer what it was sent) for a while.
fn signal(server: &ServerProc, signal: &str) {
    let pid = server.child.id();
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal}");
    if signal != "STOP" {
        return;
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while !all_threads_stopped(pid) {
        assert!(Instant::now() < deadline, "process {pid} did not stop");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Whether every thread of process `pid` is stopped (state `T` or `t` in
/// `/proc/<pid>/task/<tid>/stat`).
fn all_threads_stopped(pid: u32) -> bool {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().all(|task| {
        std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
            // The state follows the command name, which is in parentheses.
            let state = stat
                .rsplit_once(") ")
                .and_then(|(_, rest)| rest.chars().next());
            matches!(state, Some('T' | 't'))
        })
    })
}

#[test]
fn a_login_whose_claim_is_never_answered_ends_in_time_and_leaves_nothing_behind() {
    // A login deadline of 6 s: a claim is waited on for half of it.
    let tune = |m: String| m + "\n[limits]\nlogin_timeout_ms = 6000\n";
    let redis = RedisProc::start();
    let url = redis.url();
    let cl = cluster_tuned(redis, &url, &tune);
    let (name, dropped) = (name_homed_on("kit", 1), name_homed_on("pip", 1));
    // b freezes: alive to a until its heartbeat runs out, answering nothing.
    signal(&cl.b, "STOP");
    let mut c = Client::connect(cl.a.addr);
    let asked = Instant::now();
    c.send(serde_json::json!({"type":"guest","name":name}));
    // Another gives up waiting and goes.
    let mut gone = Client::connect(cl.a.addr);
    gone.send(serde_json::json!({"type":"guest","name":dropped}));
    std::thread::sleep(Duration::from_millis(300));
    drop(gone);
    let answer = c.recv_until(|f| f["type"] == "error" || f["type"] == "welcome");
    let waited = asked.elapsed();
    assert_eq!(answer["code"], "unreachable", "{answer}");
    // Within half the login deadline.
    assert!(waited < Duration::from_millis(3_500), "{waited:?}");
    assert_eq!(c.expect_close(), 1013, "closed: try again later");
    // Neither login is held on a, b still frozen: the one whose client
    // left is let go too.
    let deadline = Instant::now() + Duration::from_secs(5);
    while cl.a.connections().iter().sum::<u64>() > 0 {
        if Instant::now() >= deadline {
            signal(&cl.b, "CONT");
            panic!("sessions left on a: {:?}", cl.a.connections());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    signal(&cl.b, "CONT");
    // With b back, the name is a guest's to take.
    wait_bridged(&cl.a, "b", 10);
    let mut again = Client::connect(cl.a.addr);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Client::try_guest(cl.a.addr, Some(&name)) {
            Ok(mut kit) => {
                assert_eq!(kit.cmd("look")["ok"], true);
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "no login again: {e}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    again.send(serde_json::json!({"type":"guest","name":dropped}));
    let back = again.recv_until(|f| f["type"] == "error" || f["type"] == "welcome");
    assert_eq!(back["type"], "welcome", "{back}");
}

#[test]
fn a_login_whose_home_host_is_down_is_refused_at_once() {
    let mut cl = cluster();
    let name = name_homed_on("Sable", 1);
    let mut p = Client::register(cl.a.addr, &name, "correct horse");
    assert_eq!(p.cmd("quit")["ok"], true);
    p.expect_close();
    cl.b.kill9();
    wait_counted_gone(&cl.a, "b", 8);
    let mut c = Client::connect(cl.a.addr);
    let asked = Instant::now();
    let refusal = c
        .try_account(serde_json::json!({"type":"login","name":name,"password":"correct horse"}))
        .expect_err("refused");
    assert!(asked.elapsed() < Duration::from_secs(2));
    assert_eq!(refusal["code"], "unreachable", "{refusal}");
}

/// A login whose saved room lies in the other host's land sends the body
/// there. When that host dies before it takes the body in, the player wakes
/// at this host's start with what they carried, told why after the welcome,
/// as soon as the host is counted gone; before, the login waited out its
/// 10 s deadline and was closed unwelcomed.
#[test]
fn a_login_whose_body_goes_to_a_host_that_dies_before_taking_it_in_wakes_at_the_start() {
    // b's heartbeat is counted live for 3 s after it stops: long enough for
    // the login to find b reachable and send the body there.
    let redis = RedisProc::start();
    let url = redis.url();
    let mut cl = cluster_tuned(redis, &url, &|m| {
        m.replace("host_ttl_ms = 1500", "host_ttl_ms = 3000")
    });
    let name = name_homed_on("Sorrel", 0);
    let mut p = Client::register(cl.a.addr, &name, "correct horse");
    assert_eq!(p.cmd("get coin")["ok"], true);
    assert_eq!(until_ok(&mut p, "goto caves:grotto", 5)["ok"], true);
    assert_eq!(p.cmd("quit")["ok"], true);
    p.expect_close();
    // The quit's save reaches the home host, a.
    std::thread::sleep(Duration::from_millis(1000));
    signal(&cl.b, "STOP");
    let mut c = Client::connect(cl.a.addr);
    // Answered once a counts b gone (within about 3 s), well before the
    // login's deadline; the wait for it gives up after 5 s.
    c.send(serde_json::json!({"type":"login","name":name,"password":"correct horse"}));
    let welcome = c.recv_until(|f| f["type"] == "welcome" || f["type"] == "error");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["room"]["id"], "town:square", "{welcome}");
    let told = c.event("system", "stopped as you came in");
    assert!(
        told["text"].as_str().unwrap_or("").contains("start"),
        "{told}"
    );
    let inv = c.cmd("inventory");
    assert!(inv["text"].as_str().unwrap_or("").contains("coin"), "{inv}");
    cl.b.kill9();
}

#[test]
fn a_registered_player_recalled_from_a_dead_host_keeps_the_inventory_of_their_last_save() {
    let mut cl = cluster();
    // Kept on a, where they play; the other is kept on b, the host that dies.
    let (kept_here, kept_there) = (name_homed_on("Moss", 0), name_homed_on("Fern", 1));
    let mut here = Client::register(cl.a.addr, &kept_here, "correct horse");
    let mut there = Client::register(cl.a.addr, &kept_there, "correct horse");
    assert_eq!(here.cmd("get coin")["ok"], true);
    assert_eq!(until_ok(&mut here, "goto caves:tunnel", 5)["ok"], true);
    assert_eq!(until_ok(&mut there, "goto caves:grotto", 5)["ok"], true);
    // In b's land, b owns the bodies: what they pick up b saves to their
    // home hosts.
    assert_eq!(here.cmd("get pickaxe")["ok"], true);
    assert_eq!(there.cmd("get crystal")["ok"], true);
    std::thread::sleep(Duration::from_millis(1500));
    cl.b.kill9();

    let told = here.event("system", "gone");
    assert!(
        told["text"].as_str().unwrap_or("").contains("start"),
        "{told}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while here.cmd("look")["room"]["id"] != "town:square" {
        assert!(Instant::now() < deadline, "not back at the start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let inv = here.cmd("inventory");
    let text = inv["text"].as_str().unwrap_or("");
    assert!(text.contains("coin") && text.contains("pickaxe"), "{inv}");
    // The other's last save is in the dead host's file: nothing, and told why.
    there.event("system", "next login");
    let inv = there.cmd("inventory");
    assert!(
        !inv["text"].as_str().unwrap_or("").contains("crystal"),
        "{inv}"
    );
    // b comes back; the body that woke with nothing leaves (a quit saves a
    // registered body), and the next login brings the last save back whole:
    // the empty hands were not saved over it.
    let map = cl.dirs.1.path().join("map.toml");
    cl.b = ServerProc::start_in_existing(&map, &["--shards", "2"]);
    wait_bridged(&cl.a, "b", 10);
    wait_bridged(&cl.b, "a", 10);
    assert_eq!(there.cmd("quit")["ok"], true);
    there.expect_close();
    std::thread::sleep(Duration::from_millis(500));
    let mut back = Client::login(cl.a.addr, &kept_there, "correct horse");
    assert_eq!(
        back.welcome["room"]["id"], "caves:grotto",
        "{}",
        back.welcome
    );
    let inv = back.cmd("inventory");
    assert!(
        inv["text"].as_str().unwrap_or("").contains("crystal"),
        "the last save was overwritten: {inv}"
    );
}

/// The saves a host makes for a player whose home is the other host, while
/// Redis is down and the bridge's queue toward it overflows, wait on the
/// host until the home host has them: the newest arrives once Redis is
/// back, though the queue dropped messages meanwhile. Then the host dies,
/// and a login on the home host, whose saved room lay in the dead host's
/// land, wakes at the start with what the newest save carried.
#[test]
fn saves_made_while_redis_is_down_reach_the_home_host_when_it_is_back() {
    let redis = RedisProc::start();
    let url = redis.url();
    let mut cl = cluster_tuned(redis, &url, &|m| {
        m.replace(
            "heartbeat_ms = 200",
            "bridge_queue_max = 4\nheartbeat_ms = 200",
        )
    });
    // Plays on a, in a's land; the account is kept in b's file.
    let name = name_homed_on("Sage", 1);
    let mut p = Client::register(cl.a.addr, &name, "correct horse");
    let mut crier = Client::guest(cl.a.addr, Some("crier"));
    cl.redis.kill9();
    let deadline = Instant::now() + Duration::from_secs(5);
    while health(&cl.a)["bridge"]["state"] != "down" {
        assert!(Instant::now() < deadline, "a never saw Redis go");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Each of these saves the player (to b, through the bridge).
    for _ in 0..10 {
        assert_eq!(p.cmd("get coin")["ok"], true);
        assert_eq!(p.cmd("drop coin")["ok"], true);
    }
    assert_eq!(p.cmd("get coin")["ok"], true);
    assert_eq!(p.cmd("north")["ok"], true);
    // Only the last save holds the map.
    assert_eq!(p.cmd("get map")["ok"], true);
    // Shouts go to every host through the queue: it overflows and drops
    // (counted), and the saves wait on a.
    for _ in 0..8 {
        assert_eq!(crier.cmd("shout anyone there?")["ok"], true);
    }
    let (_, metrics) = cl.a.http_get("/metrics");
    assert!(
        common::metric_sum(&metrics, "mudshard_bridge_dropped_total") > 0,
        "the queue never overflowed: {metrics}"
    );
    assert!(
        common::metric_sum(&metrics, "mudshard_bridge_saves_waiting") > 0,
        "no save waits for b: {metrics}"
    );

    let (_, metrics) = cl.b.http_get("/metrics");
    let b_writes = common::metric_sum(&metrics, "mudshard_store_batch_writes_total");
    cl.redis.restart();
    wait_bridged(&cl.a, "b", 10);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = cl.a.http_get("/metrics");
        if common::metric_sum(&metrics, "mudshard_bridge_saves_waiting") == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the saves never went: {metrics}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // On their way now (b may have resubscribed after their publish and
    // missed it, which a's heartbeat-borne acknowledgements find and
    // repair): wait until b's store has committed a write.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = cl.b.http_get("/metrics");
        if common::metric_sum(&metrics, "mudshard_store_batch_writes_total") > b_writes {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "b never wrote the save: {metrics}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // a dies without a word (no quit, no last save): b's file alone says
    // where the player was and what they held.
    cl.a.kill9();
    drop(p);
    // The name is held by a's session until b counts a dead.
    wait_counted_gone(&cl.b, "a", 10);
    // The saved room is in a's land, and a is dead: the player wakes at
    // b's start, told why, with what the newest save says they carried.
    let mut back = Client::login(cl.b.addr, &name, "correct horse");
    assert_eq!(
        back.welcome["room"]["id"], "caves:mouth",
        "{}",
        back.welcome
    );
    let told = back.event("system", "cannot be reached");
    assert!(
        told["text"].as_str().unwrap_or("").contains("start"),
        "{told}"
    );
    let inv = back.cmd("inventory");
    let text = inv["text"].as_str().unwrap_or("");
    assert!(
        text.contains("coin") && text.contains("map"),
        "the newest save did not reach the home host: {inv}"
    );
}

/// A guest's session lives on the host it logged in on: a resume that
/// lands on the other host is refused, and says where the session is.
#[test]
fn a_resume_on_the_other_host_says_which_host_keeps_the_session() {
    let cl = cluster();
    let wren = Client::guest(cl.a.addr, Some("wren"));
    let (token, seen) = (
        wren.welcome["token"].as_str().expect("token").to_string(),
        wren.last_seq,
    );
    drop(wren);
    let mut c = Client::connect(cl.b.addr);
    c.send(serde_json::json!({"type":"resume","token":token,"last_seq":seen}));
    let first = c.recv();
    assert_eq!(first["code"], "resume_failed", "{first}");
    let text = first["message"].as_str().unwrap_or("");
    assert!(text.contains("host \"a\""), "{first}");
    // On its own host it resumes.
    let mut c = Client::connect(cl.a.addr);
    c.last_seq = seen;
    c.send(serde_json::json!({"type":"resume","token":token,"last_seq":seen}));
    assert_eq!(c.recv()["type"], "resumed");
}

/// A second login of an online account on the other host takes it over:
/// the old session is closed with 4001, the new one is welcomed with the
/// body's room and inventory, and the account logs in again afterwards.
/// Once, the go-ahead that follows the old body's save was posted to this
/// host's shard of the same number instead of the other host's, and the
/// account was locked until a restart.
#[test]
fn a_second_login_on_the_other_host_takes_the_account_over() {
    let cl = cluster();
    // (home host, the host of the first session, where its body stands,
    // the host of the second login): the body's owner is never the second
    // login's host, which is what went wrong.
    let cases = [
        (0, &cl.a, "town:square", &cl.b),
        (1, &cl.a, "town:square", &cl.b),
        (1, &cl.b, "town:market", &cl.a),
        (0, &cl.a, "caves:tunnel", &cl.a),
        (1, &cl.b, "caves:tunnel", &cl.a),
    ];
    for (i, (home, first, room, second)) in cases.into_iter().enumerate() {
        let name = name_homed_on(&format!("Hazel{i}x"), home);
        let mut old = Client::register(first.addr, &name, "correct horse");
        assert_eq!(until_ok(&mut old, &format!("goto {room}"), 5)["ok"], true);
        let item = if room.starts_with("caves") {
            "pickaxe"
        } else {
            "coin"
        };
        let got = old.cmd(&format!("get {item}"));
        let mut new = Client::connect(second.addr);
        let welcome = new
            .try_account(serde_json::json!({"type":"login","name":name,"password":"correct horse"}))
            .unwrap_or_else(|e| panic!("case {i}: the takeover login was refused: {e}"));
        assert_eq!(welcome["room"]["id"], room, "case {i}: {welcome}");
        assert_eq!(old.expect_close(), 4001, "case {i}");
        if got["ok"] == true {
            let inv = new.cmd("inventory");
            assert!(
                inv["text"].as_str().unwrap_or("").contains(item),
                "case {i}: {inv}"
            );
            assert_eq!(new.cmd(&format!("drop {item}"))["ok"], true, "case {i}");
        }
        assert_eq!(new.cmd("quit")["ok"], true, "case {i}");
        new.expect_close();
        // Nothing is left holding the name: it logs in again, on either host.
        let mut again = Client::connect(first.addr);
        again
            .try_account(serde_json::json!({"type":"login","name":name,"password":"correct horse"}))
            .unwrap_or_else(|e| panic!("case {i}: the account is locked: {e}"));
        assert_eq!(again.cmd("quit")["ok"], true);
        again.expect_close();
    }
}

/// Host `id` of a cluster serving the 10×10 grid cut into two zones of rows,
/// `grid-0` (rows 0–4) for host a and `grid-1` (rows 5–9) for host b.
fn grid_host(dir: &std::path::Path, id: &str, redis: &str) -> ServerProc {
    let map = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nhost_id = \"{id}\"\nredis = \"{redis}\"\n\n\
         [world]\ngenerated = \"grid:10x10/2\"\n\n\
         [cluster]\nhosts = [{{ id = \"a\", zones = [\"grid-0\"] }}, {{ id = \"b\", zones = [\"grid-1\"] }}]\n\
         heartbeat_ms = 200\nhost_ttl_ms = 1500\nprobe_interval_ms = 200\n\
         token_secret = \"a secret the two test hosts share\"\n",
        dir.join("data").display()
    );
    let path = dir.join("map.toml");
    std::fs::write(&path, map).expect("write map");
    ServerProc::start_in_existing(&path, &["--shards", "2", "--no-ambient"])
}

#[test]
fn loadgen_walks_players_across_the_border_of_a_grid_shared_out_by_rows() {
    let redis = RedisProc::start();
    let (da, db) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let a = grid_host(da.path(), "a", &redis.url());
    let b = grid_host(db.path(), "b", &redis.url());
    wait_bridged(&a, "b", 10);
    wait_bridged(&b, "a", 10);
    // The border is real: a step south from row 4 hands the body to host b.
    let mut wanda = Client::guest(a.addr, Some("wanda"));
    assert_eq!(wanda.cmd("goto grid:3_4")["ok"], true);
    let south = wanda.cmd("s");
    assert_eq!(south["room"]["id"], "grid:3_5", "{south}");
    let (_, metrics) = b.http_get("/metrics");
    assert_eq!(
        common::metric_sum(&metrics, "mudshard_bodies"),
        1,
        "{metrics}"
    );
    let north = wanda.cmd("n");
    assert_eq!(north["room"]["id"], "grid:3_4", "{north}");
    drop(wanda);

    // loadgen's cluster scenario against both: says and tells across hosts,
    // and walkers across the border and within each host's land.
    let json =
        std::env::temp_dir().join(format!("mudshard-cluster-walk-{}.json", std::process::id()));
    let (ta, tb, out) = (
        a.addr.to_string(),
        b.addr.to_string(),
        json.display().to_string(),
    );
    let config = loadgen::config::Config::parse_from([
        "loadgen",
        "cluster",
        "--target",
        &ta,
        "--target",
        &tb,
        "--threads",
        "2",
        "--players",
        "8",
        "--rooms",
        "2",
        "--rate",
        "20",
        "--tell-share",
        "0.2",
        "--walkers",
        "8",
        "--walk-rate",
        "16",
        "--grid-width",
        "10",
        "--grid-height",
        "10",
        "--warmup",
        "0.5",
        "--duration",
        "2",
        "--timeout",
        "2",
        "--quiet",
        "--json",
        &out,
    ]);
    let run = loadgen::run_and_report(config).expect("the run completes");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("JSON");
    let _ = std::fs::remove_file(&json);
    assert!(run.ok, "{}", run.table());
    let n = |v: &Value| v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"));
    let cluster = &report["cluster"];
    assert_eq!(n(&cluster["cross_host"]["missing"]), 0, "{cluster}");
    assert!(n(&cluster["tells"]["received"]) > 0, "{cluster}");
    for kind in ["across", "within"] {
        let walks = &cluster["walks"][kind];
        // 16 moves/s over 2 s, half of them each kind.
        assert!(n(&walks["sent"]) >= 8, "{kind}: {walks}");
        assert_eq!(n(&walks["answered"]), n(&walks["sent"]), "{kind}: {walks}");
        assert_eq!(n(&walks["failed"]), 0, "{kind}: {walks}");
        // Each step starts from the room the last reply named, so the
        // walkers keep to their two rows and never meet the grid's edge.
        assert_eq!(n(&walks["no_exit"]), 0, "{kind}: {walks}");
        let latency = &report["latency_us"][format!("move_{kind}")];
        assert_eq!(
            n(&latency["count"]),
            n(&walks["answered"]),
            "{kind}: {latency}"
        );
    }
}
