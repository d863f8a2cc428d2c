//! The floor's chat relay (`floor --chat-relay`), the server the suite's
//! chat ladder climbs beside mudshard and the baseline: loadgen's chat runs
//! against it with every say delivered to every listener, in order; bad
//! input ends only its own connection; it stops on SIGTERM.

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

fn floor_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_floor"))
}

/// Runs loadgen (the library, in this process) with `args`; its JSON
/// report and whether it passed.
fn run_loadgen(args: &[&str]) -> (Value, bool) {
    use clap::Parser;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let json_path = std::env::temp_dir().join(format!(
        "floor-relay-test-{}-{}.json",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
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
    eprintln!("{}", report.table());
    (
        serde_json::from_str(&text).expect("report is JSON"),
        report.ok,
    )
}

struct Relay {
    child: Child,
    addr: String,
}

impl Relay {
    fn start() -> Relay {
        let mut child = Command::new(floor_bin())
            .args([
                "--chat-relay",
                "--listen",
                "127.0.0.1:0",
                "--relay-threads",
                "2",
                "--serve-seconds",
                "120",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("floor starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("a line from the relay");
        let addr = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("not the address line: {line:?}"))
            .trim()
            .to_string();
        Relay { child, addr }
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn chat(relay: &Relay) -> Value {
    let pid = relay.pid();
    let (report, ok) = run_loadgen(&[
        "chat",
        "--target",
        &relay.addr,
        "--server-pid",
        &pid,
        "--threads",
        "2",
        "--players",
        "60",
        "--rooms",
        "6",
        "--rate",
        "120",
        "--warmup",
        "0.3",
        "--duration",
        "1",
        "--drain",
        "0.5",
    ]);
    assert!(ok, "{report:#}");
    report
}

#[test]
fn loadgens_chat_runs_against_the_relay_with_every_say_delivered_in_order() {
    let relay = Relay::start();
    let report = chat(&relay);
    let says = u(&report["counts"]["sent"]);
    assert!(says >= 100, "says sent: {says}");
    // Rooms of 10: every say has 9 listeners, each reached once, in order.
    assert_eq!(u(&report["deliveries"]["expected"]), says * 9);
    assert_eq!(u(&report["deliveries"]["received"]), says * 9);
    assert_eq!(u(&report["latency_us"]["delivery"]["count"]), says * 9);
    assert_eq!(u(&report["counts"]["replies"]), says);
    assert_eq!(u(&report["counts"]["seq_gaps"]), 0);
    assert_eq!(u(&report["counts"]["sessions_established"]), 60);
    assert_eq!(u(&report["counts"]["sessions_dropped"]), 0);
    assert!(report["server"]["cpu_us_per_msg"].as_f64().is_some());
}

/// Opens a WebSocket to the relay by hand: the upgrade's response head.
fn upgrade(addr: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).expect("response head");
        head.push(byte[0]);
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

#[test]
fn bad_input_ends_only_its_connection_and_the_relay_serves_on() {
    let relay = Relay::start();
    // The upgrade answers the key as RFC 6455's own example does.
    let (mut s, head) = upgrade(&relay.addr);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
        "{head}"
    );
    // An unmasked client frame: closed with 1002 (protocol error).
    s.write_all(&[0x81, 0x02, b'h', b'i']).expect("write");
    let mut close = [0u8; 4];
    s.read_exact(&mut close).expect("a close frame");
    assert_eq!(close, [0x88, 0x02, 0x03, 0xEA]);
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert!(rest.is_empty(), "nothing after the close: {rest:?}");

    // A frame longer than the relay takes: 1009.
    let (mut s, _) = upgrade(&relay.addr);
    s.write_all(&[0x81, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0])
        .expect("write");
    s.read_exact(&mut close).expect("a close frame");
    assert_eq!(close, [0x88, 0x02, 0x03, 0xF1]);

    // JSON it does not know, before a login: an error frame, and the
    // connection stays.
    let (mut s, _) = upgrade(&relay.addr);
    let payload = br#"{"type":"look"}"#;
    let mask = [9u8, 8, 7, 6];
    let mut frame = vec![0x81, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    s.write_all(&frame).expect("write");
    let mut header = [0u8; 2];
    s.read_exact(&mut header).expect("a frame");
    assert_eq!(header[0], 0x81);
    let len = match header[1] & 0x7F {
        126 => {
            let mut ext = [0u8; 2];
            s.read_exact(&mut ext).expect("its length");
            usize::from(u16::from_be_bytes(ext))
        }
        n => usize::from(n),
    };
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).expect("its body");
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.starts_with(r#"{"seq":1,"type":"error","code":"bad_request""#),
        "{body}"
    );

    // Not an upgrade: /healthz names the relay's pid; anything else is 404.
    let mut h = TcpStream::connect(&relay.addr).expect("connect");
    h.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut text = String::new();
    let _ = h.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.ends_with(&format!("\"pid\":{}}}", relay.pid())),
        "{text}"
    );
    let mut h = TcpStream::connect(&relay.addr).expect("connect");
    h.write_all(b"\x00\x01 not http\r\n\r\n").expect("write");
    let mut text = String::new();
    let _ = h.read_to_string(&mut text);
    assert!(text.starts_with("HTTP/1.1 404"), "{text}");

    // And a whole chat run still goes through.
    let report = chat(&relay);
    assert_eq!(
        u(&report["deliveries"]["received"]),
        u(&report["deliveries"]["expected"])
    );
}

#[test]
fn the_relay_stops_on_sigterm() {
    let mut relay = Relay::start();
    // SAFETY: a plain signal to our own child.
    unsafe { libc::kill(relay.child.id() as i32, libc::SIGTERM) };
    let mut waited = Duration::ZERO;
    loop {
        if let Some(status) = relay.child.try_wait().expect("wait") {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            waited < Duration::from_secs(5),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
        waited += Duration::from_millis(20);
    }
}
