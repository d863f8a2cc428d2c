//! Accounts end to end: the real binary, a real SQLite file in a temp dir,
//! real WebSocket and HTTP clients. Password hashing uses argon2's cheapest
//! cost unless a test is about its cost.

mod common;

use common::{http_post_json, http_request, Client, ServerProc};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// argon2's cheapest cost: tests pay microseconds per hash, not tens of ms.
const CHEAP_AUTH: &str = "[auth]\nargon2_memory_kib = 64\nargon2_iterations = 1\n";

const PASSWORD: &str = "correct horse";

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list of names")
        .iter()
        .map(|n| n.as_str().expect("a name").to_string())
        .collect()
}

fn room_items(frame: &Value) -> Vec<String> {
    names(&frame["room"]["items"])
}

fn inventory(c: &mut Client) -> Vec<String> {
    names(&c.cmd("inventory")["items"])
}

#[test]
fn a_player_keeps_room_and_inventory_across_a_graceful_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProc::start_in(dir.path(), CHEAP_AUTH, &["--shards", "2"]);
    let mut alice = Client::register(server.addr, "Alice", PASSWORD);
    assert_eq!(alice.welcome["room"]["id"], "town:square");
    let moved = alice.cmd("west");
    assert_eq!(moved["room"]["id"], "town:inn");
    assert_eq!(alice.cmd("get lantern")["ok"], true);
    assert_eq!(server.terminate().code(), Some(0), "SIGTERM exits 0");

    let server = ServerProc::start_in(dir.path(), CHEAP_AUTH, &["--shards", "2"]);
    let mut alice = Client::login(server.addr, "alice", PASSWORD);
    assert_eq!(alice.welcome["name"], "Alice", "the registered spelling");
    assert_eq!(alice.welcome["room"]["id"], "town:inn");
    assert_eq!(inventory(&mut alice), ["lantern"]);
    assert!(!room_items(&alice.welcome).contains(&"lantern".to_string()));

    let mut bob = Client::guest(server.addr, Some("bob"));
    let look = bob.cmd("west");
    assert_eq!(look["room"]["id"], "town:inn");
    assert_eq!(
        room_items(&look),
        ["mug"],
        "the lantern is gone for everyone"
    );
    assert!(names(&look["room"]["players"]).contains(&"Alice".to_string()));
}

#[test]
fn a_kill_9_keeps_the_account_and_every_change_older_than_one_interval() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = ServerProc::start_in(dir.path(), CHEAP_AUTH, &["--shards", "2"]);
    let mut carol = Client::register(server.addr, "carol", PASSWORD);
    assert_eq!(carol.cmd("east")["room"]["id"], "town:market");
    assert_eq!(carol.cmd("get apple")["ok"], true);
    assert_eq!(carol.cmd("drop apple")["ok"], true);
    assert_eq!(carol.cmd("get bread")["ok"], true);
    // Three flush intervals (100 ms each), then no goodbye at all.
    std::thread::sleep(Duration::from_millis(300));
    server.kill9();

    let server = ServerProc::start_in(dir.path(), CHEAP_AUTH, &["--shards", "2"]);
    let mut carol = Client::login(server.addr, "carol", PASSWORD);
    assert_eq!(carol.welcome["room"]["id"], "town:market");
    assert_eq!(inventory(&mut carol), ["bread"]);
    assert_eq!(room_items(&carol.welcome), ["cheese", "apple"]);
}

/// Opens connections until one is on each of two shards (as `/healthz`
/// counts them); the misses stay open in `parked` so the kernel moves on.
fn one_on_each_shard(server: &ServerProc, parked: &mut Vec<Client>) -> (Client, Client) {
    let mut found: [Option<Client>; 2] = [None, None];
    for _ in 0..100 {
        let before = server.connections();
        let c = Client::connect(server.addr);
        let mut after = server.connections();
        for _ in 0..50 {
            if after.iter().sum::<u64>() > before.iter().sum::<u64>() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
            after = server.connections();
        }
        let shard = (0..2)
            .find(|&k| after[k] > before[k])
            .expect("a new connection");
        if found[shard].is_none() {
            found[shard] = Some(c);
        } else {
            parked.push(c);
        }
        if let [Some(_), Some(_)] = &found {
            let [a, b] = found;
            return (a.expect("shard 0"), b.expect("shard 1"));
        }
    }
    panic!("no connection landed on each shard");
}

#[test]
fn the_same_name_registered_at_once_on_two_shards_makes_one_account() {
    let (server, _dir) = ServerProc::start_with_map(CHEAP_AUTH, &["--shards", "2"]);
    let mut parked = Vec::new();
    let (mut a, mut b) = one_on_each_shard(&server, &mut parked);
    let frame = json!({"type":"register","name":"Dana","password":PASSWORD});
    a.send(frame.clone());
    b.send(json!({"type":"register","name":"dana","password":PASSWORD}));
    let answers: Vec<Value> = [&mut a, &mut b]
        .into_iter()
        .map(|c| c.recv_until(|f| f["type"] == "welcome" || f["type"] == "error"))
        .collect();
    let welcomes = answers.iter().filter(|f| f["type"] == "welcome").count();
    assert_eq!(welcomes, 1, "exactly one welcome: {answers:?}");
    let refusal = answers
        .iter()
        .find(|f| f["type"] == "error")
        .expect("one refusal");
    assert_eq!(refusal["code"], "name_taken", "{refusal}");

    let mut again = Client::connect(server.addr);
    let err = again.try_account(frame).expect_err("taken");
    assert_eq!(err["code"], "name_taken");
}

#[test]
fn wrong_passwords_and_unknown_names_look_alike_and_are_rate_limited() {
    let (server, _dir) = ServerProc::start_with_map(CHEAP_AUTH, &[]);
    drop(Client::register(server.addr, "erin", PASSWORD));
    let mut c = Client::connect(server.addr);
    let wrong = c
        .try_account(json!({"type":"login","name":"erin","password":"not the one"}))
        .expect_err("wrong password");
    let unknown = c
        .try_account(json!({"type":"login","name":"nobody","password":PASSWORD}))
        .expect_err("unknown name");
    assert_eq!(wrong["code"], "bad_credentials");
    assert_eq!(
        wrong, unknown,
        "the same answer whether the name exists or not"
    );
    for _ in 0..3 {
        let e = c
            .try_account(json!({"type":"login","name":"erin","password":"still wrong"}))
            .expect_err("wrong");
        assert_eq!(e["code"], "bad_credentials");
    }
    // Five failures from this address: even the right password waits now.
    let limited = c
        .try_account(json!({"type":"login","name":"erin","password":PASSWORD}))
        .expect_err("limited");
    assert_eq!(limited["code"], "rate_limited", "{limited}");
}

#[test]
fn names_and_passwords_follow_the_rules_and_guests_keep_off_accounts() {
    let (server, _dir) = ServerProc::start_with_map(CHEAP_AUTH, &[]);
    let mut c = Client::connect(server.addr);
    for (name, password, code) in [
        ("ab", PASSWORD, "invalid_name"),
        ("has space", PASSWORD, "invalid_name"),
        ("x23456789012345678901", PASSWORD, "invalid_name"),
        ("guest0_7", PASSWORD, "invalid_name"),
        ("fred", "short", "invalid_password"),
        ("fred", &"p".repeat(129), "invalid_password"),
    ] {
        let e = c
            .try_account(json!({"type":"register","name":name,"password":password}))
            .expect_err("refused");
        assert_eq!(e["code"], code, "{name:?}: {e}");
    }
    // Eight characters, counted as characters: accepted.
    let mut fred = Client::connect(server.addr);
    fred.try_account(json!({"type":"register","name":"Fred","password":"üüüüüüüü"}))
        .expect("registered");
    fred.cmd("quit");
    fred.expect_close();
    // An offline account's name is not free for guests, in any spelling.
    std::thread::sleep(Duration::from_millis(100));
    let Err(refused) = Client::try_guest(server.addr, Some("FRED")) else {
        panic!("a guest took an account's name");
    };
    assert_eq!(refused["code"], "name_taken", "{refused}");
}

#[test]
fn a_chunked_api_body_is_refused_with_411_not_read_as_empty() {
    let (server, _dir) = ServerProc::start_with_map(CHEAP_AUTH, &[]);
    let body = r#"{"name":"Hal","password":"correct horse"}"#;
    let request = format!(
        "POST /api/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    let (status, answer) = http_request(server.addr, &request);
    assert_eq!(status, 411, "{answer}");
    assert!(answer.contains("length_required"), "{answer}");
    // Nothing was registered: the same body with a Content-Length is.
    let (status, answer) = http_post_json(server.addr, "/api/register", body);
    assert_eq!(status, 201, "{answer}");
}

/// A `tell` is typed in any case; its answer names the target as they
/// write their name: a guest's as chosen, an account's as registered, even
/// when its login came with a token (which names the account by its key, so
/// the directory learns the spelling only once the account is read).
#[test]
fn a_tell_answer_names_its_target_as_they_write_their_name() {
    let (server, _dir) = ServerProc::start_with_map(CHEAP_AUTH, &["--shards", "2"]);
    let creds = r#"{"name":"GusMac","password":"correct horse"}"#;
    let (status, body) = http_post_json(server.addr, "/api/register", creds);
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().expect("token").to_string();
    let mut gus = Client::connect(server.addr);
    gus.try_account(json!({"type":"login","token":token}))
        .expect("token login");
    let _alice = Client::register(server.addr, "AliceB", PASSWORD);
    let _ann = Client::guest(server.addr, Some("AnnE"));
    let mut teller = Client::guest(server.addr, Some("teller"));

    for (typed, shown) in [
        ("gusmac", "GusMac"),
        ("aliceb", "AliceB"),
        ("ALICEB", "AliceB"),
        ("anne", "AnnE"),
    ] {
        let reply = teller.cmd(&format!("tell {typed} psst"));
        assert_eq!(reply["ok"], true, "{reply}");
        assert_eq!(
            reply["text"],
            format!("You tell {shown}, \"psst\""),
            "{reply}"
        );
    }
    assert_eq!(gus.event("tell", "psst")["from"], "teller");
    let nobody = teller.cmd("tell NoBody psst");
    assert_eq!(nobody["code"], "no_such_player", "{nobody}");
    assert_eq!(
        nobody["text"], "Nobody called NoBody is online.",
        "{nobody}"
    );

    // The next holder of a name spells it anew.
    assert_eq!(gus.cmd("quit")["ok"], true);
    gus.expect_close();
    let mut gus = Client::login(server.addr, "gusmac", "correct horse");
    assert_eq!(gus.welcome["name"], "GusMac");
    let reply = teller.cmd("tell GUSMAC again");
    assert_eq!(reply["text"], "You tell GusMac, \"again\"", "{reply}");
    assert_eq!(gus.event("tell", "again")["from"], "teller");
}

/// A login over the HTTP API for a name no account has is answered by the
/// shard itself (the account filter rules the name out), at once: not held
/// until the shard's next once-a-second sweep drains its own queue, as it
/// was when the API path left that answer queued.
#[test]
fn an_api_login_for_a_name_no_account_has_is_answered_at_once() {
    let (server, _dir) = ServerProc::start_with_map(CHEAP_AUTH, &[]);
    let wrong = r#"{"name":"nobody","password":"not the password"}"#;
    let mut prompt = 0;
    for _ in 0..3 {
        let started = std::time::Instant::now();
        let (status, body) = http_post_json(server.addr, "/api/login", wrong);
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"], "bad_credentials");
        // Held for the sweep, two of three would take most of a second.
        if started.elapsed() < std::time::Duration::from_millis(500) {
            prompt += 1;
        }
    }
    assert!(prompt >= 2, "{prompt} of 3 logins answered within 500 ms");
}

#[test]
fn the_http_api_registers_logs_in_and_its_token_opens_a_websocket_session() {
    let (server, _dir) = ServerProc::start_with_map(CHEAP_AUTH, &[]);
    let creds = r#"{"name":"Gus","password":"correct horse"}"#;
    let (status, body) = http_post_json(server.addr, "/api/register", creds);
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["name"], "Gus");
    assert!(body["token"].as_str().is_some_and(|t| !t.is_empty()));

    let (status, body) = http_post_json(server.addr, "/api/login", creds);
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_string();
    let mut gus = Client::connect(server.addr);
    let welcome = gus
        .try_account(json!({"type":"login","token":token}))
        .expect("token login");
    assert_eq!(welcome["name"], "Gus");
    let mut forged = Client::connect(server.addr);
    let e = forged
        .try_account(json!({"type":"login","token":format!("{token}x")}))
        .expect_err("forged");
    assert_eq!(e["code"], "bad_credentials");

    let (status, body) = http_post_json(server.addr, "/api/register", creds);
    assert_eq!((status, &body["error"]), (400, &json!("name_taken")));
    let (status, body) = http_post_json(server.addr, "/api/login", "{\"name\":");
    assert_eq!((status, &body["error"]), (400, &json!("bad_json")));
    let (status, body) = http_post_json(
        server.addr,
        "/api/register",
        r#"{"name":"a","password":"correct horse"}"#,
    );
    assert_eq!((status, &body["error"]), (400, &json!("invalid_name")));
    let wrong = r#"{"name":"gus","password":"wrong horse"}"#;
    // The forged token and the taken name were two failures against this
    // address; three wrong passwords make five.
    for _ in 0..3 {
        let (status, body) = http_post_json(server.addr, "/api/login", wrong);
        assert_eq!((status, &body["error"]), (401, &json!("bad_credentials")));
    }
    let (status, body) = http_post_json(server.addr, "/api/login", creds);
    assert_eq!((status, &body["error"]), (429, &json!("rate_limited")));

    let (status, metrics) = server.http_get("/metrics");
    assert_eq!(status, 200);
    for series in [
        "mudshard_store_queue_depth",
        "mudshard_store_commits_total",
        "mudshard_store_registrations_total 1",
        "mudshard_store_flush_latency_us_count",
    ] {
        assert!(metrics.contains(series), "{series} in /metrics");
    }
}

#[test]
fn a_data_file_from_a_newer_mudshard_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let db = rusqlite::Connection::open(data.join("mudshard.db")).expect("sqlite");
    db.pragma_update(None, "user_version", 99).expect("version");
    drop(db);
    let map = ServerProc::write_map(dir.path(), CHEAP_AUTH);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mudshard"))
        .args(["--config", map.to_str().expect("utf-8 path")])
        .output()
        .expect("run mudshard");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("schema version 99") && stderr.contains("upgrade mudshard"),
        "{stderr}"
    );
}

#[test]
fn a_data_file_from_the_first_schema_version_is_upgraded_and_its_player_plays_on() {
    use argon2::password_hash::{PasswordHasher, SaltString};
    use mudshard::store::schema::{V1_SQL, VERSION_LATEST};
    use rusqlite::params;

    // A file exactly as the first mudshard left it: Elder in the inn holding
    // the lantern, the inn's floor keeping only the mug.
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let argon = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(64, 1, 1, None).expect("params"),
    );
    let salt = SaltString::encode_b64(&[7u8; 16]).expect("salt");
    let phc = argon
        .hash_password(PASSWORD.as_bytes(), &salt)
        .expect("hash")
        .to_string();
    let db = rusqlite::Connection::open(data.join("mudshard.db")).expect("sqlite");
    db.execute_batch(V1_SQL).expect("v1 schema");
    db.pragma_update(None, "user_version", 1).expect("version");
    db.execute(
        "INSERT INTO accounts (name, name_key, password_hash, created_unix_s) VALUES (?1, ?2, ?3, ?4)",
        params!["Elder", "elder", phc, 1_600_000_000],
    )
    .expect("account");
    db.execute(
        "INSERT INTO players (account_id, room, inventory) VALUES (last_insert_rowid(), ?1, ?2)",
        params!["town:inn", r#"["lantern"]"#],
    )
    .expect("player");
    db.execute(
        "INSERT INTO room_items (room, items) VALUES (?1, ?2)",
        params!["town:inn", r#"["mug"]"#],
    )
    .expect("room");
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('token_secret', ?1)",
        params![[9u8; 32].to_vec()],
    )
    .expect("secret");
    drop(db);

    let mut server = ServerProc::start_in(dir.path(), CHEAP_AUTH, &["--shards", "2"]);
    let mut elder = Client::login(server.addr, "elder", PASSWORD);
    assert_eq!(elder.welcome["name"], "Elder");
    assert_eq!(elder.welcome["room"]["id"], "town:inn");
    assert_eq!(room_items(&elder.welcome), ["mug"]);
    assert_eq!(inventory(&mut elder), ["lantern"]);
    assert_eq!(elder.cmd("east")["room"]["id"], "town:square");
    assert_eq!(elder.cmd("get coin")["ok"], true);
    assert_eq!(server.terminate().code(), Some(0), "SIGTERM exits 0");

    // The file is at the current version and holds what was played on it.
    let db = rusqlite::Connection::open(data.join("mudshard.db")).expect("sqlite");
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .expect("version");
    assert_eq!(version, VERSION_LATEST);
    let (room, items, updated_ms): (String, String, i64) = db
        .query_row(
            "SELECT room, inventory, updated_unix_ms FROM players",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .expect("player row");
    assert_eq!(room, "town:square");
    let mut items: Vec<String> = serde_json::from_str(&items).expect("inventory JSON");
    items.sort();
    assert_eq!(items, ["coin", "lantern"]);
    assert!(updated_ms > 0, "written through the version-2 schema");
}

#[test]
fn a_second_login_takes_the_account_over_without_a_second_body() {
    let (server, _dir) = ServerProc::start_with_map(CHEAP_AUTH, &["--shards", "2"]);
    let mut old = Client::register(server.addr, "Hana", PASSWORD);
    assert_eq!(old.cmd("get coin")["ok"], true);
    let mut watcher = Client::guest(server.addr, Some("watcher"));

    let mut new = Client::login(server.addr, "hana", PASSWORD);
    let notice = old.event("system", "elsewhere");
    assert_eq!(notice["from"], "");
    assert_eq!(old.expect_close(), 4001);

    assert_eq!(new.welcome["room"]["id"], "town:square");
    assert_eq!(inventory(&mut new), ["coin"], "the body carried over");
    let present = names(&new.cmd("look")["room"]["players"]);
    assert_eq!(
        present.iter().filter(|n| *n == "Hana").count(),
        1,
        "{present:?}"
    );
    let online = names(&watcher.cmd("who")["players"]);
    assert_eq!(
        online.iter().filter(|n| *n == "Hana").count(),
        1,
        "{online:?}"
    );
}

#[test]
fn a_slow_hash_does_not_hold_up_other_players_on_the_shard() {
    // A deliberately costly hash (hundreds of ms) on a one-shard server.
    let slow = "[auth]\nargon2_memory_kib = 65536\nargon2_iterations = 8\n";
    let (server, _dir) = ServerProc::start_with_map(slow, &["--shards", "1"]);
    let mut player = Client::guest(server.addr, Some("ivy"));
    let mut newcomer = Client::connect(server.addr);
    let sent = Instant::now();
    newcomer.send(json!({"type":"register","name":"jules","password":PASSWORD}));
    let look = player.cmd("look");
    let look_at = sent.elapsed();
    assert_eq!(look["ok"], true);
    let welcome = newcomer.recv_until(|f| f["type"] == "welcome" || f["type"] == "error");
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let welcome_at = sent.elapsed();
    assert!(
        look_at < welcome_at,
        "the look ({look_at:?}) answered before the hash finished ({welcome_at:?})"
    );
}

#[test]
fn http_and_websocket_give_one_answer_and_share_one_limit_on_failures() {
    let (server, _dir) = ServerProc::start_with_map(CHEAP_AUTH, &[]);
    let (status, _) = http_post_json(
        server.addr,
        "/api/register",
        r#"{"name":"Kit","password":"correct horse"}"#,
    );
    assert_eq!(status, 201);
    let mut c = Client::connect(server.addr);
    // The same refusal, code and words, whichever way it is asked.
    for (path, frame) in [
        (
            "/api/register",
            json!({"type":"register","name":"guest3_1","password":PASSWORD}),
        ),
        (
            "/api/login",
            json!({"type":"login","name":"kit","password":"wrong horse"}),
        ),
    ] {
        let body = json!({"name": frame["name"], "password": frame["password"]});
        let (_, over_http) = http_post_json(server.addr, path, &body.to_string());
        let over_ws = c.try_account(frame).expect_err("refused");
        assert_eq!(over_http["error"], over_ws["code"], "{over_http} {over_ws}");
        assert_eq!(over_http["message"], over_ws["message"]);
    }
    // Two wrong passwords so far; one more over HTTP, two over WebSocket.
    let (status, _) = http_post_json(
        server.addr,
        "/api/login",
        r#"{"name":"kit","password":"wrong horse"}"#,
    );
    assert_eq!(status, 401);
    for _ in 0..2 {
        let e = c
            .try_account(json!({"type":"login","name":"kit","password":"wrong horse"}))
            .expect_err("wrong");
        assert_eq!(e["code"], "bad_credentials");
    }
    let mut fresh = Client::connect(server.addr);
    let limited = fresh
        .try_account(json!({"type":"login","name":"Kit","password":PASSWORD}))
        .expect_err("limited");
    assert_eq!(limited["code"], "rate_limited", "{limited}");
    let (status, body) = http_post_json(
        server.addr,
        "/api/login",
        r#"{"name":"kit","password":"correct horse"}"#,
    );
    assert_eq!((status, &body["error"]), (429, &json!("rate_limited")));
}
