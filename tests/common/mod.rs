//! Test harness: the real `mudshard` binary on an ephemeral port, and a real
//! WebSocket client (tungstenite) that checks `seq` on every frame it reads.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use tungstenite::client::IntoClientRequest;
use tungstenite::protocol::WebSocket;
use tungstenite::Message;

pub mod node;

/// A server process started for one test, killed when dropped.
pub struct ServerProc {
    pub child: Child,
    pub addr: SocketAddr,
    /// The data directory of a server started with `start` (its own, empty).
    _data: Option<tempfile::TempDir>,
}

impl ServerProc {
    /// Starts `mudshard` on 127.0.0.1:0 with the default shard map and `args`,
    /// with its store in a fresh temporary directory.
    pub fn start(args: &[&str]) -> ServerProc {
        let manifest = env!("CARGO_MANIFEST_DIR");
        let data = tempfile::tempdir().expect("tempdir");
        let config = format!("{manifest}/shards/default.toml");
        let base = [
            "--config",
            &config,
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().expect("utf-8 path"),
        ];
        let mut server = ServerProc::spawn(&base, args);
        server._data = Some(data);
        server
    }

    /// Runs the binary with `base` then `args` and waits for its
    /// `listening on ADDR` line.
    fn spawn(base: &[&str], args: &[&str]) -> ServerProc {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mudshard"));
        command.args(base).args(args).stderr(Stdio::inherit());
        ServerProc::spawn_command(command)
    }

    /// Runs `command` (the binary, with whatever working directory,
    /// environment and stderr the caller set) and waits for its
    /// `listening on ADDR` line.
    pub fn spawn_command(mut command: Command) -> ServerProc {
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("start mudshard");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the listening line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .expect("address");
        ServerProc {
            child,
            addr,
            _data: None,
        }
    }

    /// Sends SIGKILL (no flush, no goodbye) and reaps the process.
    pub fn kill9(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGKILL) };
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits (at most 10 s) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit within 10 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A plain HTTP GET; returns the status code and the body.
    pub fn http_get(&self, path: &str) -> (u16, String) {
        http_request(
            self.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"),
        )
    }

    /// Connections per shard, from `/healthz`.
    pub fn connections(&self) -> Vec<u64> {
        let (status, body) = self.http_get("/healthz");
        assert_eq!(status, 200);
        let health: Value = serde_json::from_str(&body).expect("healthz JSON");
        health["connections"]
            .as_array()
            .expect("connections")
            .iter()
            .map(|n| n.as_u64().expect("count"))
            .collect()
    }
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The whole answer, head and body, to a raw request that the server
/// answers and then closes.
pub fn http_raw(addr: SocketAddr, request: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    s.write_all(request.as_bytes()).expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

pub fn http_request(addr: SocketAddr, request: &str) -> (u16, String) {
    let out = http_raw(addr, request);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// One player's WebSocket connection.
pub struct Client {
    pub ws: WebSocket<TcpStream>,
    pub last_seq: u64,
    pub welcome: Value,
    next_id: u64,
    /// Frames read while waiting for something else, oldest first.
    pub backlog: Vec<Value>,
}

pub const WAIT: Duration = Duration::from_secs(5);

impl Client {
    /// Opens a WebSocket session without logging in.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::over(addr, TcpStream::connect(addr).expect("tcp connect"))
    }

    /// Opens a WebSocket session whose upgrade carries `Origin: origin`, as
    /// a browser page on that origin would, without logging in.
    pub fn connect_from_origin(addr: SocketAddr, origin: &str) -> Client {
        let mut request = format!("ws://{addr}/ws")
            .into_client_request()
            .expect("request");
        request
            .headers_mut()
            .insert("Origin", origin.parse().expect("origin header"));
        Client::over_request(request, TcpStream::connect(addr).expect("tcp connect"))
    }

    /// Opens a WebSocket session without logging in, or returns the HTTP
    /// status its upgrade was refused with.
    pub fn try_connect(addr: SocketAddr) -> Result<Client, u16> {
        let stream = TcpStream::connect(addr).expect("tcp connect");
        stream.set_nodelay(true).ok();
        let request = format!("ws://{addr}/ws")
            .into_client_request()
            .expect("request");
        match tungstenite::client::client(request, stream) {
            Ok((ws, _)) => {
                ws.get_ref().set_read_timeout(Some(WAIT)).ok();
                Ok(Client {
                    ws,
                    last_seq: 0,
                    welcome: Value::Null,
                    next_id: 1,
                    backlog: Vec::new(),
                })
            }
            Err(tungstenite::handshake::HandshakeError::Failure(tungstenite::Error::Http(r))) => {
                Err(r.status().as_u16())
            }
            Err(e) => panic!("websocket handshake: {e}"),
        }
    }

    fn over(addr: SocketAddr, stream: TcpStream) -> Client {
        let request = format!("ws://{addr}/ws")
            .into_client_request()
            .expect("request");
        Client::over_request(request, stream)
    }

    fn over_request(request: tungstenite::handshake::client::Request, stream: TcpStream) -> Client {
        stream.set_nodelay(true).ok();
        let (ws, _) = tungstenite::client::client(request, stream).expect("websocket handshake");
        ws.get_ref().set_read_timeout(Some(WAIT)).ok();
        Client {
            ws,
            last_seq: 0,
            welcome: Value::Null,
            next_id: 1,
            backlog: Vec::new(),
        }
    }

    /// Connects and logs in as a guest (with a name, if given).
    pub fn guest(addr: SocketAddr, name: Option<&str>) -> Client {
        Client::try_guest(addr, name).unwrap_or_else(|e| panic!("login failed: {e}"))
    }

    /// Connects and tries to log in; the refusal frame on failure.
    pub fn try_guest(addr: SocketAddr, name: Option<&str>) -> Result<Client, Value> {
        let mut c = Client::connect(addr);
        match name {
            Some(n) => c.send(json!({"type":"guest","name":n})),
            None => c.send(json!({"type":"guest"})),
        }
        let welcome = c.recv_until(|f| f["type"] == "welcome" || f["type"] == "error");
        if welcome["type"] != "welcome" {
            return Err(welcome);
        }
        assert_eq!(welcome["seq"], 1);
        c.welcome = welcome;
        Ok(c)
    }

    /// Connects guests until one lands on `shard` (the kernel spreads
    /// connections over the shards' listeners by a hash of the addresses).
    pub fn guest_on_shard(addr: SocketAddr, name: &str, shard: u64) -> Client {
        let mut parked = Vec::new();
        for _ in 0..200 {
            // Land first without a name, then take the name on the right shard.
            let mut c = Client::connect(addr);
            c.send(json!({"type":"guest","name":name}));
            let f = c.recv_until(|f| f["type"] == "welcome" || f["type"] == "error");
            if f["type"] == "welcome" {
                c.welcome = f;
                if c.shard() == shard {
                    return c;
                }
                let bye = c.cmd("quit");
                assert_eq!(bye["ok"], true);
                c.expect_close();
            }
            // The name is freed asynchronously after a quit: keep the socket
            // of a miss open a moment so the next one hashes elsewhere.
            parked.push(c);
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("no connection landed on shard {shard}");
    }

    pub fn shard(&self) -> u64 {
        self.welcome["shard"].as_u64().expect("welcome.shard")
    }

    pub fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).expect("send");
    }

    pub fn send_raw(&mut self, m: Message) {
        self.ws.send(m).expect("send");
    }

    /// The next frame (from the backlog first), checking `seq` has no gaps.
    pub fn recv(&mut self) -> Value {
        if !self.backlog.is_empty() {
            return self.backlog.remove(0);
        }
        self.read_frame()
            .unwrap_or_else(|e| panic!("no frame: {e}"))
    }

    fn read_frame(&mut self) -> Result<Value, String> {
        loop {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t)
                        .map_err(|e| format!("bad JSON from server {t}: {e}"))?;
                    if let Some(seq) = v.get("seq").and_then(Value::as_u64) {
                        assert_eq!(seq, self.last_seq + 1, "seq gap: got {v}");
                        self.last_seq = seq;
                    }
                    return Ok(v);
                }
                Ok(Message::Ping(_)) | Ok(Message::Pong(_)) => continue,
                Ok(other) => return Err(format!("unexpected message {other:?}")),
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    /// Reads until a frame matches; earlier frames go to the backlog.
    pub fn recv_until(&mut self, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&pred) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(
                Instant::now() < deadline,
                "timed out; backlog: {:?}",
                self.backlog
            );
            let v = self
                .read_frame()
                .unwrap_or_else(|e| panic!("waiting: {e}; backlog {:?}", self.backlog));
            if pred(&v) {
                return v;
            }
            self.backlog.push(v);
        }
    }

    /// Sends a command and returns its reply.
    pub fn cmd(&mut self, line: &str) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"type":"cmd","id":id,"line":line}));
        self.recv_until(|f| f["type"] == "reply" && f["id"] == id)
    }

    /// Waits for an event of `kind` whose text contains `needle`.
    pub fn event(&mut self, kind: &str, needle: &str) -> Value {
        self.recv_until(|f| {
            f["type"] == "event"
                && f["kind"] == kind
                && f["text"].as_str().unwrap_or("").contains(needle)
        })
    }

    /// Waits for the server to close; returns the close code.
    pub fn expect_close(&mut self) -> u16 {
        let deadline = Instant::now() + WAIT;
        loop {
            assert!(Instant::now() < deadline, "server did not close");
            match self.ws.read() {
                Ok(Message::Close(Some(f))) => return u16::from(f.code),
                Ok(Message::Close(None)) => return 1005,
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed)
                | Err(tungstenite::Error::AlreadyClosed) => return 1006,
                Err(tungstenite::Error::Io(e))
                    if e.kind() != std::io::ErrorKind::WouldBlock
                        && e.kind() != std::io::ErrorKind::TimedOut =>
                {
                    return 1006
                }
                Err(tungstenite::Error::Protocol(_)) => return 1006,
                Err(e) => panic!("waiting for close: {e}"),
            }
        }
    }

    /// Asserts that nothing arrives for `ms`.
    pub fn expect_silence(&mut self, ms: u64) {
        self.ws
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .ok();
        let r = self.ws.read();
        self.ws.get_ref().set_read_timeout(Some(WAIT)).ok();
        match r {
            Err(tungstenite::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }
}

impl ServerProc {
    /// Starts with a shard map made of the default one plus `extra` TOML
    /// (sections such as `[limits]` replace the default's).
    pub fn start_with_map(extra: &str, args: &[&str]) -> (ServerProc, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = ServerProc::start_in(dir.path(), extra, args);
        (server, dir)
    }

    /// Like `start_with_map`, in `dir` (its `data` folder holds the store):
    /// starting again in the same `dir` is a restart on the same file.
    pub fn start_in(dir: &std::path::Path, extra: &str, args: &[&str]) -> ServerProc {
        let path = ServerProc::write_map(dir, extra);
        ServerProc::spawn(&["--config", path.to_str().expect("utf-8 path")], args)
    }

    /// Writes `dir/map.toml`: the default world, data in `dir/data`, `extra`.
    pub fn write_map(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
        let manifest = env!("CARGO_MANIFEST_DIR");
        let mut map = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[world]\ndir = \"{manifest}/shards/world\"\nzones = [\"town\", \"forest\", \"river\", \"caves\", \"tower\"]\nstart = \"town:square\"\n\n",
            dir.join("data").display()
        );
        map.push_str(extra);
        let path = dir.join("map.toml");
        std::fs::write(&path, map).expect("write shard map");
        path
    }
}

/// A masked client frame, byte for byte (for frames tungstenite will not send).
pub fn raw_frame(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [7u8, 1, 9, 3];
    let mut out = vec![first_byte];
    match payload.len() {
        n @ 0..=125 => out.push(0x80 | n as u8),
        n @ 126..=65535 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    out
}

impl Client {
    /// A session over a socket whose upgrade the test wrote and read itself
    /// (the 101 answer read, nothing after it), not yet logged in.
    pub fn over_handshaken(stream: TcpStream) -> Client {
        stream.set_read_timeout(Some(WAIT)).ok();
        let ws = WebSocket::from_raw_socket(stream, tungstenite::protocol::Role::Client, None);
        Client {
            ws,
            last_seq: 0,
            welcome: Value::Null,
            next_id: 1,
            backlog: Vec::new(),
        }
    }

    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.ws.get_mut().write_all(bytes).expect("raw write");
    }

    /// Writes `bytes` and at once ends the stream (a FIN right behind them),
    /// leaving the socket open.
    pub fn write_raw_and_end(&mut self, bytes: &[u8]) {
        let stream = self.ws.get_mut();
        stream.write_all(bytes).expect("raw write");
        stream
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
    }
}

impl Client {
    /// Reads whatever comes for up to `ms` (answering pings, as tungstenite
    /// does); panics if the server closes.
    pub fn read_for(&mut self, ms: u64) {
        self.ws
            .get_ref()
            .set_read_timeout(Some(Duration::from_millis(ms)))
            .ok();
        let r = self.ws.read();
        self.ws.get_ref().set_read_timeout(Some(WAIT)).ok();
        match r {
            Ok(Message::Close(f)) => panic!("closed: {f:?}"),
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(&t).expect("JSON");
                if let Some(seq) = v.get("seq").and_then(Value::as_u64) {
                    assert_eq!(seq, self.last_seq + 1, "seq gap: got {v}");
                    self.last_seq = seq;
                }
                self.backlog.push(v);
            }
            Ok(_) => {
                let _ = self.ws.flush();
            }
            Err(tungstenite::Error::Io(e))
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

impl Client {
    /// Reads raw bytes until the server closes the socket and returns the
    /// server frames in them as (opcode, payload). Nothing is written back.
    /// Waits up to 60 s for the end; a reset also ends the stream.
    pub fn raw_frames_until_eof(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut bytes = Vec::new();
        self.ws
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(60)))
            .ok();
        if let Err(e) = self.ws.get_mut().read_to_end(&mut bytes) {
            assert!(
                !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
                "the server neither closed nor sent for 60 s ({} bytes read)",
                bytes.len()
            );
        }
        let mut frames = Vec::new();
        let mut pos = 0;
        while pos + 2 <= bytes.len() {
            let opcode = bytes[pos] & 0x0f;
            let (len, head) = match bytes[pos + 1] & 0x7f {
                126 if pos + 4 <= bytes.len() => (
                    u16::from_be_bytes([bytes[pos + 2], bytes[pos + 3]]) as usize,
                    4,
                ),
                127 if pos + 10 <= bytes.len() => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&bytes[pos + 2..pos + 10]);
                    (u64::from_be_bytes(b) as usize, 10)
                }
                n if n < 126 => (n as usize, 2),
                _ => break,
            };
            if pos + head + len > bytes.len() {
                break;
            }
            frames.push((opcode, bytes[pos + head..pos + head + len].to_vec()));
            pos += head + len;
        }
        frames
    }
}

/// The close code in a raw close frame's payload.
pub fn close_code(payload: &[u8]) -> u16 {
    if payload.len() >= 2 {
        u16::from_be_bytes([payload[0], payload[1]])
    } else {
        1005
    }
}

impl Client {
    /// Sends a login or register frame; the `welcome` on success (kept in
    /// `welcome`), the `error` frame otherwise.
    pub fn try_account(&mut self, frame: Value) -> Result<Value, Value> {
        self.send(frame);
        let answer = self.recv_until(|f| f["type"] == "welcome" || f["type"] == "error");
        if answer["type"] != "welcome" {
            return Err(answer);
        }
        assert_eq!(answer["seq"], 1);
        self.welcome = answer.clone();
        Ok(answer)
    }

    /// Connects and registers `name`; panics on refusal.
    pub fn register(addr: SocketAddr, name: &str, password: &str) -> Client {
        let mut c = Client::connect(addr);
        c.try_account(json!({"type":"register","name":name,"password":password}))
            .unwrap_or_else(|e| panic!("register {name}: {e}"));
        c
    }

    /// Connects and logs in to `name`; panics on refusal.
    pub fn login(addr: SocketAddr, name: &str, password: &str) -> Client {
        let mut c = Client::connect(addr);
        c.try_account(json!({"type":"login","name":name,"password":password}))
            .unwrap_or_else(|e| panic!("login {name}: {e}"));
        c
    }
}

/// The head of a `GET /ws` upgrade request, with an `Origin` header if given
/// (for requests whose refusal is to be read as plain HTTP).
pub fn upgrade_head(origin: Option<&str>) -> String {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    format!(
        "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
    )
}

/// The sum over shards of a `/metrics` series: every line starting with
/// `prefix` (a name and the opening `{`, or a name and some labels).
pub fn metric_sum(metrics: &str, prefix: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// An HTTP POST of a JSON body; returns the status and the body as JSON
/// (`Null` when it is not JSON).
pub fn http_post_json(addr: SocketAddr, path: &str, body: &str) -> (u16, Value) {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let (status, body) = http_request(addr, &request);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

pub mod redis;
pub mod wedge;

impl ServerProc {
    /// Starts with the shard map at `path` as it is.
    pub fn start_in_existing(path: &std::path::Path, args: &[&str]) -> ServerProc {
        ServerProc::spawn(&["--config", path.to_str().expect("utf-8 path")], args)
    }
}
