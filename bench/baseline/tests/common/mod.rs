//! What the baseline's integration tests share: a real `baseline` process,
//! a real WebSocket client that checks `seq` on every frame, and a real
//! `redis-server` for the cross-host tests.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

/// How long a client waits for a frame before the test fails.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client waits to be sure that *no* frame comes.
const QUIET_WAIT: Duration = Duration::from_millis(200);

/// A running `baseline` process, killed when the test ends.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Server {
    /// Starts the server on a 3×3 grid on an ephemeral port.
    pub fn start() -> Server {
        Server::start_with(&["--world", "grid:3x3"])
    }

    /// Starts the server on an ephemeral port with these extra flags.
    pub fn start_with(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_baseline"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the baseline binary");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the first line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("first line should be `listening on ADDR`, got {line:?}"));
        Server { child, addr }
    }

    /// Opens a WebSocket session on `/ws`.
    pub fn connect(&self) -> Client {
        let stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        let url = format!("ws://{}/ws", self.addr);
        let (ws, _) = tungstenite::client(url, stream).expect("websocket handshake");
        Client { ws, last_seq: 0 }
    }

    /// Opens a session and logs in as a guest with `name`.
    pub fn guest(&self, name: &str) -> Client {
        let mut client = self.connect();
        client.send(json!({"type": "guest", "name": name}));
        let welcome = client.recv();
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert_eq!(welcome["name"], name);
        client
    }

    /// A plain HTTP GET; returns the whole response.
    pub fn http_get(&self, path: &str) -> String {
        let mut stream = TcpStream::connect(self.addr).expect("connect");
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
        write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").expect("send request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        response
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One player's connection. Checks on every frame that `seq` goes up by one.
pub struct Client {
    pub ws: WebSocket<TcpStream>,
    pub last_seq: u64,
}

impl Client {
    pub fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .expect("send frame");
    }

    pub fn cmd(&mut self, id: Value, line: &str) {
        self.send(json!({"type": "cmd", "id": id, "line": line}));
    }

    /// The next text frame, as JSON.
    pub fn recv(&mut self) -> Value {
        loop {
            match self.ws.read().expect("read frame") {
                Message::Text(text) => {
                    let frame: Value = serde_json::from_str(&text).expect("server sends JSON");
                    if let Some(seq) = frame["seq"].as_u64() {
                        assert_eq!(seq, self.last_seq + 1, "seq without gaps: {frame}");
                        self.last_seq = seq;
                    }
                    return frame;
                }
                Message::Ping(_) | Message::Pong(_) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// Asserts that nothing arrives for a short while.
    pub fn assert_quiet(&mut self) {
        self.ws
            .get_ref()
            .set_read_timeout(Some(QUIET_WAIT))
            .expect("timeout");
        match self.ws.read() {
            Err(tungstenite::Error::Io(err))
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            other => panic!("expected no frame, got {other:?}"),
        }
        self.ws
            .get_ref()
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
    }
}

/// How long `redis-server` may take to answer its first PING.
const REDIS_START_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` of this test alone, on a free port, with nothing saved
/// to disk; killed when the test ends.
pub struct Redis {
    child: Child,
    pub port: u16,
}

impl Redis {
    /// Starts it, or fails the test saying how to install it.
    pub fn start() -> Redis {
        let port = free_port();
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(err) => panic!(
                "cannot run redis-server ({err}): the cross-host tests need it; \
                 install it with `apt-get install redis-server`"
            ),
        };
        let redis = Redis { child, port };
        let deadline = Instant::now() + REDIS_START_TIMEOUT;
        while !redis.answers_ping() {
            assert!(
                Instant::now() < deadline,
                "redis-server on port {port} did not answer PING within {REDIS_START_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut answer = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut answer).is_ok()
            && &answer == b"+PONG\r\n"
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now (the kernel's pick, released at once).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

/// Two baseline processes, hosts `a` and `b`, joined through `redis`.
pub fn two_hosts(redis: &Redis, world: &str) -> (Server, Server) {
    let url = redis.url();
    let a = Server::start_with(&["--world", world, "--redis", &url, "--host-id", "a"]);
    let b = Server::start_with(&["--world", world, "--redis", &url, "--host-id", "b"]);
    (a, b)
}
