//! A fake mudshard for the load generator's tests: std threads, one per
//! connection, speaking just enough of the protocol (guest, look, goto,
//! n/s/e/w on a grid, say, quit, ping, /healthz) to run every scenario.
//! It can delay every reply (a slow server) or stall all command handling
//! for a while (a server pause), to check what the figures make of that.

#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How the fake server misbehaves.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Every reply waits this long before it is written.
    pub reply_delay: Duration,
    /// From `stall.0` after the first command, nothing is handled for
    /// `stall.1`.
    pub stall: Option<(Duration, Duration)>,
    /// After a connection's `.0`-th command is answered, the server sends a
    /// close frame with code `.1` and hangs up.
    pub close_after_commands: Option<(u64, u16)>,
    /// After a connection's `n`-th command is answered, the server ends its
    /// side of the stream right behind the reply, without a close frame,
    /// and reads on.
    pub end_after_commands: Option<u64>,
}

struct Conn {
    writer: Mutex<(TcpStream, u64)>,
    room: Mutex<String>,
    name: Mutex<String>,
    commands: AtomicU64,
}

impl Conn {
    /// Writes a sequenced frame: `body` is a JSON object without `seq`.
    fn send(&self, body: &Value) {
        let text = body.to_string();
        let mut w = self.writer.lock().expect("lock");
        w.1 += 1;
        let framed = format!("{{\"seq\":{},{}", w.1, &text[1..]);
        let _ = w.0.write_all(&server_frame(0x1, framed.as_bytes()));
    }

    fn send_raw(&self, opcode: u8, payload: &[u8]) {
        let mut w = self.writer.lock().expect("lock");
        let _ = w.0.write_all(&server_frame(opcode, payload));
    }
}

/// Room id → the connections (by id) standing in it.
type Rooms = HashMap<String, Vec<(u64, Arc<Conn>)>>;

struct Shared {
    behaviour: Behaviour,
    first_command: Mutex<Option<Instant>>,
    rooms: Mutex<Rooms>,
    next_id: AtomicU64,
}

/// A running fake server on 127.0.0.1 (an ephemeral port).
pub struct FakeServer {
    pub addr: SocketAddr,
}

impl FakeServer {
    pub fn start(behaviour: Behaviour) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared {
            behaviour,
            first_command: Mutex::new(None),
            rooms: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        });
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = Arc::clone(&shared);
                thread::spawn(move || {
                    let _ = serve(stream, &shared);
                });
            }
        });
        FakeServer { addr }
    }

    pub fn target(&self) -> String {
        self.addr.to_string()
    }
}

fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    if payload.len() < 126 {
        out.push(payload.len() as u8);
    } else if payload.len() <= 65535 {
        out.push(126);
        out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

fn read_request(reader: &mut impl Read) -> io::Result<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if reader.read(&mut byte)? == 0 || head.len() > 8192 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

/// Reads one client frame: (opcode, unmasked payload).
fn read_frame(reader: &mut impl Read) -> io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    reader.read_exact(&mut h)?;
    let mut len = u64::from(h[1] & 0x7F);
    if len == 126 {
        let mut b = [0u8; 2];
        reader.read_exact(&mut b)?;
        len = u64::from(u16::from_be_bytes(b));
    } else if len == 127 {
        let mut b = [0u8; 8];
        reader.read_exact(&mut b)?;
        len = u64::from_be_bytes(b);
    }
    assert!(h[1] & 0x80 != 0, "client frames must be masked");
    let mut mask = [0u8; 4];
    reader.read_exact(&mut mask)?;
    let mut payload = vec![0u8; len as usize];
    reader.read_exact(&mut payload)?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i % 4];
    }
    Ok((h[0] & 0x0F, payload))
}

fn room_json(id: &str) -> Value {
    json!({"id": id, "name": id, "description": "a test room", "exits": {}, "items": [], "players": [], "players_total": 0})
}

fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let request = read_request(&mut reader)?;
    let mut writer = stream.try_clone()?;
    if request.starts_with("GET /healthz") {
        let body = json!({"ok": true, "pid": std::process::id()}).to_string();
        write!(
            writer,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        return Ok(());
    }
    let key = request
        .lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
        .unwrap_or("")
        .trim()
        .to_string();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    write!(
        writer,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )?;
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let conn = Arc::new(Conn {
        writer: Mutex::new((writer, 0)),
        room: Mutex::new(String::new()),
        name: Mutex::new(String::new()),
        commands: AtomicU64::new(0),
    });
    let result = session(&mut reader, shared, id, &conn);
    leave_room(shared, id, &conn);
    let _ = stream.shutdown(Shutdown::Both);
    result
}

fn session(reader: &mut impl Read, shared: &Shared, id: u64, conn: &Arc<Conn>) -> io::Result<()> {
    loop {
        let (opcode, payload) = read_frame(reader)?;
        match opcode {
            0x8 => {
                conn.send_raw(0x8, &payload);
                return Ok(());
            }
            0x9 => conn.send_raw(0xA, &payload),
            0x1 => {
                let Ok(msg) = serde_json::from_slice::<Value>(&payload) else {
                    conn.send(&json!({"type":"error","code":"bad_json","message":"?"}));
                    continue;
                };
                if !handle(&msg, shared, id, conn) {
                    return Ok(());
                }
            }
            _ => {}
        }
    }
}

/// Handles one client message; false when the session ends.
fn handle(msg: &Value, shared: &Shared, id: u64, conn: &Arc<Conn>) -> bool {
    match msg["type"].as_str() {
        Some("guest") => {
            let name = msg["name"].as_str().unwrap_or("guest").to_string();
            *conn.name.lock().expect("lock") = name.clone();
            enter_room(shared, id, conn, "grid:0_0", false);
            conn.send(&json!({"type":"welcome","name":name,"token":"t","shard":0,"host":"fake","room":room_json("grid:0_0")}));
        }
        Some("ping") => {
            let body = json!({"type":"pong","id":msg["id"]}).to_string();
            conn.send_raw(0x1, body.as_bytes());
        }
        Some("cmd") => {
            stall(shared);
            let line = msg["line"].as_str().unwrap_or("");
            let reply_id = &msg["id"];
            if !shared.behaviour.reply_delay.is_zero() {
                thread::sleep(shared.behaviour.reply_delay);
            }
            if !command(line, reply_id, shared, id, conn) {
                return false;
            }
            let answered = conn.commands.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some((after, code)) = shared.behaviour.close_after_commands {
                if answered >= after {
                    conn.send_raw(0x8, &code.to_be_bytes());
                    return false;
                }
            }
            if shared
                .behaviour
                .end_after_commands
                .is_some_and(|after| answered >= after)
            {
                // Only its own end: it reads on (and answers nothing), so
                // what the client sends later brings no reset that would
                // tell it the connection is gone.
                let w = conn.writer.lock().expect("lock");
                let _ = w.0.shutdown(std::net::Shutdown::Write);
            }
        }
        _ => conn.send(&json!({"type":"error","code":"unknown_type","message":"?"})),
    }
    true
}

fn stall(shared: &Shared) {
    let Some((after, length)) = shared.behaviour.stall else {
        return;
    };
    let first = *shared
        .first_command
        .lock()
        .expect("lock")
        .get_or_insert_with(Instant::now);
    let stall_start = first + after;
    let stall_end = stall_start + length;
    let now = Instant::now();
    if now >= stall_start && now < stall_end {
        thread::sleep(stall_end - now);
    }
}

fn command(line: &str, reply_id: &Value, shared: &Shared, id: u64, conn: &Arc<Conn>) -> bool {
    let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
    let reply = |mut body: Value| {
        body["type"] = json!("reply");
        if !reply_id.is_null() {
            body["id"] = reply_id.clone();
        }
        conn.send(&body);
    };
    match verb {
        "look" | "l" => {
            let room = conn.room.lock().expect("lock").clone();
            reply(json!({"ok": true, "text": "you look", "room": room_json(&room)}));
        }
        "goto" => {
            enter_room(shared, id, conn, rest, true);
            reply(json!({"ok": true, "text": "you go", "room": room_json(rest)}));
        }
        "n" | "s" | "e" | "w" => {
            let room = conn.room.lock().expect("lock").clone();
            let (x, y) = room
                .strip_prefix("grid:")
                .and_then(|r| r.split_once('_'))
                .and_then(|(x, y)| Some((x.parse::<i64>().ok()?, y.parse::<i64>().ok()?)))
                .unwrap_or((0, 0));
            let (nx, ny) = match verb {
                "n" => (x, y - 1),
                "s" => (x, y + 1),
                "e" => (x + 1, y),
                _ => (x - 1, y),
            };
            if nx < 0 || ny < 0 || nx >= 100 || ny >= 100 {
                reply(json!({"ok": false, "code": "no_exit", "text": "no exit"}));
            } else {
                let to = format!("grid:{nx}_{ny}");
                enter_room(shared, id, conn, &to, true);
                reply(json!({"ok": true, "text": "you go", "room": room_json(&to)}));
            }
        }
        "say" => {
            reply(json!({"ok": true, "text": format!("You say: {rest}")}));
            let room = conn.room.lock().expect("lock").clone();
            let from = conn.name.lock().expect("lock").clone();
            let event =
                json!({"type":"event","kind":"say","room":room,"from":from,"text":rest,"ts":0});
            for other in others(shared, id, &room) {
                other.send(&event);
            }
        }
        "quit" => {
            reply(json!({"ok": true, "text": "bye"}));
            conn.send_raw(0x8, &1000u16.to_be_bytes());
            return false;
        }
        _ => reply(json!({"ok": false, "code": "unknown_command", "text": "what?"})),
    }
    true
}

fn others(shared: &Shared, id: u64, room: &str) -> Vec<Arc<Conn>> {
    let rooms = shared.rooms.lock().expect("lock");
    rooms
        .get(room)
        .map(|v| {
            v.iter()
                .filter(|(i, _)| *i != id)
                .map(|(_, c)| Arc::clone(c))
                .collect()
        })
        .unwrap_or_default()
}

fn leave_room(shared: &Shared, id: u64, conn: &Arc<Conn>) -> String {
    let old = std::mem::take(&mut *conn.room.lock().expect("lock"));
    if let Some(members) = shared.rooms.lock().expect("lock").get_mut(&old) {
        members.retain(|(i, _)| *i != id);
    }
    old
}

/// Moves `conn` to `to`; with `announce`, the others of both rooms hear it.
fn enter_room(shared: &Shared, id: u64, conn: &Arc<Conn>, to: &str, announce: bool) {
    let old = leave_room(shared, id, conn);
    let name = conn.name.lock().expect("lock").clone();
    if announce && !old.is_empty() {
        let event = json!({"type":"event","kind":"leave","room":old,"from":name,"text":"","ts":0});
        for other in others(shared, id, &old) {
            other.send(&event);
        }
    }
    if announce {
        let event = json!({"type":"event","kind":"enter","room":to,"from":name,"text":"","ts":0});
        for other in others(shared, id, to) {
            other.send(&event);
        }
    }
    *conn.room.lock().expect("lock") = to.to_string();
    shared
        .rooms
        .lock()
        .expect("lock")
        .entry(to.to_string())
        .or_default()
        .push((id, Arc::clone(conn)));
}

/// Runs loadgen with `args` (after the program name) plus a JSON report path,
/// and returns the report as JSON.
pub fn run_loadgen(args: &[&str]) -> (Value, bool) {
    use clap::Parser;
    let json_path: PathBuf = std::env::temp_dir().join(format!(
        "loadgen-test-{}-{}.json",
        std::process::id(),
        NEXT_REPORT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut argv = vec!["loadgen".to_string()];
    argv.extend(args.iter().map(|a| a.to_string()));
    argv.extend([
        "--quiet".to_string(),
        "--json".to_string(),
        json_path.display().to_string(),
    ]);
    let config = loadgen::config::Config::parse_from(argv);
    let report = loadgen::run_and_report(config).expect("the run completes");
    let text = std::fs::read_to_string(&json_path).expect("report written");
    let _ = std::fs::remove_file(&json_path);
    let json: Value = serde_json::from_str(&text).expect("report is JSON");
    eprintln!("{}", report.table());
    (json, report.ok)
}

static NEXT_REPORT: AtomicU64 = AtomicU64::new(0);
