//! The browser client as the server serves it: the page at `GET /` and its
//! script and style, each with its content type and caching, `HEAD` for
//! each, and the same JSON 404 as before for anything else.
//! (The client at work in a real browser: tests/browser.rs.)

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A response's status line and headers (lower-cased names) and its body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

fn request(server: &ServerProc, method: &str, path: &str) -> Response {
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).ok();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read the response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}

#[test]
fn the_page_and_its_files_are_served_with_their_content_types() {
    let server = ServerProc::start(&["--shards", "1"]);
    let page = request(&server, "GET", "/");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(page.header("cache-control"), "no-cache");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert!(page
        .header("content-security-policy")
        .contains("default-src 'self'"));
    assert_eq!(
        page.header("content-length"),
        page.body.len().to_string(),
        "the length says what the body is"
    );
    assert!(page.body.starts_with("<!doctype html>"), "{}", page.body);
    assert!(page.body.contains("name=\"viewport\""));

    for (path, content_type, needle) in [
        (
            "/client/app.js",
            "text/javascript; charset=utf-8",
            "new WebSocket",
        ),
        ("/client/style.css", "text/css; charset=utf-8", "@media"),
    ] {
        assert!(page.body.contains(path), "the page loads {path}");
        let file = request(&server, "GET", path);
        assert_eq!(file.status, 200, "{path}");
        assert_eq!(file.header("content-type"), content_type, "{path}");
        assert_eq!(file.header("cache-control"), "no-cache", "{path}");
        assert!(file.body.contains(needle), "{path}");
    }
}

#[test]
fn head_answers_the_head_alone_and_other_paths_stay_404() {
    let server = ServerProc::start(&["--shards", "1"]);
    let head = request(&server, "HEAD", "/");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), "text/html; charset=utf-8");
    let full = request(&server, "GET", "/");
    assert_eq!(head.header("content-length"), full.body.len().to_string());
    assert!(head.body.is_empty(), "HEAD has no body: {:?}", head.body);

    let post = request(&server, "POST", "/");
    assert_eq!(post.status, 405);
    for path in ["/nope", "/client/", "/client/missing.js", "/favicon.ico"] {
        let missing = request(&server, "GET", path);
        assert_eq!(missing.status, 404, "{path}");
        assert_eq!(missing.header("content-type"), "application/json", "{path}");
    }
    // The rest of the port is as it was.
    assert_eq!(server.http_get("/healthz").0, 200);
}
