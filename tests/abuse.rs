//! Abuse, against the real binary: request heads over their bounds, one
//! address holding too many connections, heads trickled in a byte at a time
//! (slowloris), and a client flooding past the command rate limit. Each is
//! refused with its documented answer and counted in `/metrics`, and the
//! players beside it are served as usual.

mod common;

use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::Message;

/// The `error` code of a JSON error body.
fn error_code(body: &str) -> String {
    let v: Value =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not a JSON body ({e}): {body:?}"));
    v["error"].as_str().unwrap_or_default().to_string()
}

#[test]
fn request_heads_over_their_bounds_get_414_or_431_and_normal_ones_are_served() {
    // The default bounds: request line 2048 bytes, 32 headers, head 8 KiB.
    let server = ServerProc::start(&["--shards", "1", "--no-ambient"]);

    let long_line = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(2100));
    let (status, body) = http_request(server.addr, &long_line);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (414, "request_line_too_long"),
        "{body}"
    );

    let fillers = |n: usize| -> String { (0..n).map(|i| format!("X-Filler-{i}: y\r\n")).collect() };
    let many = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{}\r\n", fillers(40));
    let (status, body) = http_request(server.addr, &many);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (431, "too_many_headers"),
        "{body}"
    );

    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(9000)
    );
    let (status, body) = http_request(server.addr, &big);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (431, "head_too_large"),
        "{body}"
    );

    // Just inside every bound: a 2000-byte request line and 32 headers are
    // read and routed (to a 404: no such page).
    let path = format!(
        "/nowhere?{}",
        "q".repeat(2000 - "GET /nowhere? HTTP/1.1".len())
    );
    let inside = format!("GET {path} HTTP/1.1\r\nHost: x\r\n{}\r\n", fillers(31));
    let (status, body) = http_request(server.addr, &inside);
    assert_eq!((status, error_code(&body).as_str()), (404, "not_found"));
    assert_eq!(server.http_get("/healthz").0, 200);
    let mut player = Client::guest(server.addr, None);
    assert_eq!(player.cmd("look")["ok"], true);

    let (_, metrics) = server.http_get("/metrics");
    for reason in [
        "request_line_too_long",
        "too_many_headers",
        "head_too_large",
    ] {
        let line = format!("mudshard_http_refused_total{{shard=\"0\",reason=\"{reason}\"}} 1");
        assert!(metrics.contains(&line), "missing {line} in\n{metrics}");
    }
}

/// A TCP connection to `addr` from `127.0.0.{from}`, connected, nothing sent.
fn connect_from(from: u8, addr: SocketAddr) -> TcpStream {
    let socket =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("a socket");
    let local = SocketAddr::from(([127, 0, 0, from], 0));
    socket.bind(&local.into()).expect("bind 127.0.0.x");
    socket.connect(&addr.into()).expect("connect");
    socket.into()
}

/// Sends the upgrade head on `stream` and reads the status line's code (0
/// when no answer came).
fn upgrade_status(stream: &mut TcpStream) -> u16 {
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    stream
        .write_all(upgrade_head(None).as_bytes())
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
fn each_address_is_capped_apart_whether_its_connections_come_one_by_one_or_all_at_once() {
    let (server, _dir) = ServerProc::start_with_map(
        "[limits]\nconnections_per_ip_max = 2\n",
        &["--shards", "2", "--no-ambient"],
    );
    // One at a time, to an idle server: each is taken by the accept waiting
    // on a shard's ring, which gives the peer's address.
    let mut one_by_one: Vec<TcpStream> = Vec::new();
    for from in 10..=13u8 {
        let mut stream = connect_from(from, server.addr);
        assert_eq!(upgrade_status(&mut stream), 101, "from 127.0.0.{from}");
        one_by_one.push(stream);
    }
    // Sixteen queued on the listeners at once, two from each of eight
    // addresses: a shard takes the first through its ring and the rest
    // straight from the queue, one `accept` each, which gives the peer's
    // address too. Each must be counted under its own address.
    let mut held: Vec<(u8, TcpStream)> = (0..2)
        .flat_map(|_| 2..=9u8)
        .map(|from| (from, connect_from(from, server.addr)))
        .collect();
    for (from, stream) in &mut held {
        assert_eq!(upgrade_status(stream), 101, "from 127.0.0.{from}");
    }
    for from in 2..=9u8 {
        let mut third = connect_from(from, server.addr);
        assert_eq!(
            upgrade_status(&mut third),
            503,
            "a third connection from 127.0.0.{from}"
        );
    }
    // A second from one of the first four is let in beside them all.
    let mut other = connect_from(10, server.addr);
    assert_eq!(upgrade_status(&mut other), 101);
}

#[test]
fn an_address_over_its_connection_cap_gets_503_until_one_of_its_connections_ends() {
    // Two shards: the kernel spreads the connections over both, and the cap
    // holds for the host, not per shard.
    let (server, _dir) = ServerProc::start_with_map(
        "[limits]\nconnections_per_ip_max = 3\n",
        &["--shards", "2", "--no-ambient"],
    );
    let mut held: Vec<Client> = (0..3).map(|_| Client::guest(server.addr, None)).collect();
    let (status, body) = http_request(server.addr, &upgrade_head(None));
    assert_eq!(
        (status, error_code(&body).as_str()),
        (503, "too_many_connections"),
        "{body}"
    );
    let mut refused = 1;
    for c in &mut held {
        assert_eq!(c.cmd("look")["ok"], true, "the first three play on");
    }

    // One goes (its socket closes); the next is let in once the server has seen it go.
    drop(held.pop());
    let deadline = Instant::now() + WAIT;
    let mut newcomer = loop {
        match Client::try_connect(server.addr) {
            Ok(c) => break c,
            Err(503) => {
                refused += 1;
                assert!(
                    Instant::now() < deadline,
                    "no room freed by a closed connection"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(status) => panic!("upgrade refused with {status}"),
        }
    };
    newcomer
        .try_account(json!({"type":"guest"}))
        .expect("the newcomer logs in");
    assert_eq!(newcomer.cmd("look")["ok"], true);

    drop(held);
    drop(newcomer);
    let deadline = Instant::now() + WAIT;
    let metrics = loop {
        let (status, body) = server.http_get("/metrics");
        if status == 200 {
            break body;
        }
        assert_eq!(status, 503, "{body}");
        refused += 1;
        assert!(Instant::now() < deadline, "connections never freed");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        metric_sum(&metrics, "mudshard_connections_refused_per_ip_total{"),
        refused
    );
}

/// Sends an upgrade request head a byte a second; returns how long after
/// connecting the server closed the connection.
fn trickle_head(addr: SocketAddr) -> Duration {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(1))).ok();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    for byte in upgrade_head(None).bytes() {
        if s.write_all(&[byte]).is_err() {
            return started.elapsed();
        }
        // Waiting a second for the next byte, watching for the close.
        match s.read(&mut buf) {
            Ok(0) => return started.elapsed(),
            Ok(n) => panic!(
                "answered a head that never came whole: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return started.elapsed(),
        }
    }
    panic!("a whole head went through at a byte a second");
}

#[test]
fn heads_trickled_a_byte_a_second_are_cut_at_the_login_timeout_while_others_play() {
    let (server, _dir) = ServerProc::start_with_map(
        "[limits]\nlogin_timeout_ms = 1500\n",
        &["--shards", "1", "--no-ambient"],
    );
    let addr = server.addr;
    let slow: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(move || trickle_head(addr)))
        .collect();
    std::thread::sleep(Duration::from_millis(200));

    // On the same shard, a player logs in and plays, past the slow ones' end.
    let mut player = Client::guest(addr, Some("steady"));
    let mut slowest = Duration::ZERO;
    let until = Instant::now() + Duration::from_millis(2500);
    while Instant::now() < until {
        let sent = Instant::now();
        assert_eq!(player.cmd("look")["ok"], true);
        slowest = slowest.max(sent.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        slowest < Duration::from_millis(500),
        "a look took {slowest:?} beside the slow heads"
    );

    // A byte a second never lets a per-read timeout fire; the deadline for
    // the whole head does.
    for s in slow {
        let cut = s.join().expect("slow client");
        assert!(
            cut >= Duration::from_millis(1400) && cut < Duration::from_millis(3000),
            "a slow head was cut after {cut:?}, not at the 1.5 s login timeout"
        );
    }
    assert_eq!(player.cmd("look")["ok"], true, "still playing");
    let (_, metrics) = server.http_get("/metrics");
    assert_eq!(
        metric_sum(&metrics, "mudshard_http_head_timeouts_total{"),
        4
    );
}

/// What a flooding client saw: refusals and replies, then the close.
struct FloodEnd {
    rate_limited: u64,
    replies: u64,
    close_code: u16,
    close_reason: String,
}

/// Reads the flooder's frames until the server's close frame.
fn read_flood(mut flooder: Client) -> FloodEnd {
    let (mut rate_limited, mut replies) = (0, 0);
    loop {
        match flooder.ws.read() {
            Ok(Message::Text(t)) => {
                let f: Value = serde_json::from_str(&t).expect("JSON");
                match f["type"].as_str() {
                    Some("reply") => replies += 1,
                    Some("error") if f["code"] == "rate_limited" => rate_limited += 1,
                    _ => {}
                }
            }
            Ok(Message::Close(Some(close))) => {
                return FloodEnd {
                    rate_limited,
                    replies,
                    close_code: u16::from(close.code),
                    close_reason: close.reason.as_str().to_string(),
                }
            }
            Ok(Message::Close(None)) => panic!("a close frame without a code"),
            Ok(_) => {}
            Err(e) => panic!("the flood ended without a close frame ({rate_limited} refused): {e}"),
        }
    }
}

#[test]
fn a_client_flooding_past_the_rate_limit_is_closed_with_1008_while_others_are_answered() {
    // The defaults: 20 commands/s, bursts of 40; 100 refusals within 10 s close.
    let server = ServerProc::start(&["--shards", "1", "--no-ambient"]);
    let mut calm = Client::guest(server.addr, Some("calm"));
    let flooder = Client::guest(server.addr, Some("flooder"));

    // 200 commands a second, ten times the rate, from a thread of its own
    // while another reads what comes back.
    let mut socket = flooder.ws.get_ref().try_clone().expect("clone socket");
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let frame = raw_frame(0x81, br#"{"type":"cmd","line":"look"}"#);
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(20) {
                if socket.write_all(&frame).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let reader = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let end = read_flood(flooder);
            stop.store(true, Ordering::Relaxed);
            end
        })
    };

    // Meanwhile the calm client's pings are answered at once.
    let (mut answered_during_flood, mut slowest) = (0, Duration::ZERO);
    let mut id = 0;
    while !stop.load(Ordering::Relaxed) {
        id += 1;
        let sent = Instant::now();
        calm.send(json!({"type":"ping","id":id}));
        calm.recv_until(|f| f["type"] == "pong" && f["id"] == id);
        slowest = slowest.max(sent.elapsed());
        if !stop.load(Ordering::Relaxed) {
            answered_during_flood += 1;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let end = reader.join().expect("flood reader");
    writer.join().expect("flood writer");

    assert_eq!(end.rate_limited, 100, "refused 100 times, then closed");
    assert!(end.replies >= 40, "the burst was served: {}", end.replies);
    assert_eq!(end.close_code, 1008);
    assert_eq!(end.close_reason, "too many commands over the rate limit");
    assert!(
        answered_during_flood >= 5,
        "only {answered_during_flood} pings overlapped the flood"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "a pong took {slowest:?} during the flood"
    );
    assert_eq!(calm.cmd("look")["ok"], true);

    let (_, metrics) = server.http_get("/metrics");
    assert_eq!(metric_sum(&metrics, "mudshard_rate_limit_closes_total{"), 1);
    assert!(metric_sum(&metrics, "mudshard_rate_limited_total{") >= 100);
}
