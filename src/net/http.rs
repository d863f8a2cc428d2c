//! The HTTP side of the one port: reading a request head under its bounds
//! (`HttpHeadBounds`), and the few responses the server gives (101, JSON,
//! Prometheus text, the browser client's files, 404, 414, 431, 503).

use crate::config::{HttpHeadBounds, HTTP_HEADERS_MAX};

/// What the server needs from a request head.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub websocket_key: Option<String>,
    pub upgrade_websocket: bool,
    pub websocket_version_ok: bool,
    /// A `Sec-WebSocket-Version` header was sent (whatever its value).
    pub websocket_version_present: bool,
    pub origin: Option<String>,
    /// A `Host` header was sent.
    pub host: bool,
    /// `Connection` names `Upgrade` (RFC 6455 §4.2.1).
    pub connection_upgrade: bool,
    /// HTTP/1.1 (or later); HTTP/1.0 cannot upgrade.
    pub http11: bool,
    pub content_length: usize,
    /// A `Transfer-Encoding` header was sent: the body is not delimited by
    /// `Content-Length`, and is not read.
    pub transfer_encoding: bool,
}

/// Why a head could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    Incomplete,
    /// The request line is longer than its bound (414).
    RequestLineTooLong,
    /// More header lines than their bound (431).
    TooManyHeaders,
    /// The head is larger than its bound (431).
    TooLarge,
    Malformed,
}

/// Parses a complete head at the start of `buf`; returns it and its length.
/// A head over one of `bounds` is refused as soon as the bytes show it,
/// complete or not.
pub fn parse_head(buf: &[u8], bounds: HttpHeadBounds) -> Result<(Request, usize), HeadError> {
    // Only the first `head_bytes_max` bytes are looked at, so the answer is
    // the same however the bytes were split into reads.
    let window = &buf[..buf.len().min(bounds.head_bytes_max)];
    if request_line_too_long(window, bounds.request_line_bytes_max) {
        return Err(HeadError::RequestLineTooLong);
    }
    let mut headers = [httparse::EMPTY_HEADER; HTTP_HEADERS_MAX];
    // The config keeps the bound within the table (`Config::normalize`).
    let headers_max = bounds.headers_max.min(HTTP_HEADERS_MAX);
    let mut req = httparse::Request::new(&mut headers[..headers_max]);
    let len = match req.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if window.len() == bounds.head_bytes_max => {
            return Err(HeadError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Err(HeadError::Incomplete),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(_) => return Err(HeadError::Malformed),
    };
    // Routes are paths: a query string (`/healthz?probe=1`, `/ws?v=2`) is
    // not part of one, and nothing here reads it.
    let target = req.path.unwrap_or("");
    let path = target.split_once('?').map_or(target, |(path, _)| path);
    let mut out = Request {
        method: req.method.unwrap_or("").to_string(),
        path: path.to_string(),
        http11: req.version.is_some_and(|v| v >= 1),
        ..Request::default()
    };
    // A header that says one thing, said twice, is a request whose meaning
    // depends on which copy a reader believes (two origins, two keys, two
    // lengths): refused, not decided by order.
    for once in [
        "host",
        "origin",
        "sec-websocket-key",
        "sec-websocket-version",
        "content-length",
    ] {
        let copies = req
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(once))
            .count();
        if copies > 1 {
            return Err(HeadError::Malformed);
        }
    }
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("host") {
            out.host = true;
        } else if h.name.eq_ignore_ascii_case("connection") {
            out.connection_upgrade |= value
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case("upgrade"));
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            out.upgrade_websocket = value
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case("websocket"));
        } else if h.name.eq_ignore_ascii_case("sec-websocket-key") {
            out.websocket_key = Some(value.trim().to_string());
        } else if h.name.eq_ignore_ascii_case("sec-websocket-version") {
            out.websocket_version_present = true;
            out.websocket_version_ok = value.trim() == "13";
        } else if h.name.eq_ignore_ascii_case("origin") {
            out.origin = Some(value.trim().to_string());
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            out.transfer_encoding = true;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            // RFC 9110 §8.6: `1*DIGIT`, no sign, no spaces within.
            let digits = value.trim();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeadError::Malformed);
            }
            out.content_length = digits.parse().map_err(|_| HeadError::Malformed)?;
        }
    }
    Ok((out, len))
}

/// Whether the request line at the start of `buf` (without its line end,
/// after the empty lines a client may send first) is longer than `max`
/// bytes. Looks at no more than `max` + 2 bytes of it: a line that long is
/// refused whether or not the rest of it has come.
fn request_line_too_long(buf: &[u8], max: usize) -> bool {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let buf = &buf[start..];
    let window = &buf[..buf.len().min(max + 2)];
    match window.iter().position(|&b| b == b'\n') {
        Some(end) => end - usize::from(end > 0 && window[end - 1] == b'\r') > max,
        None => buf.len() > max + 1,
    }
}

/// The 101 answer that completes a WebSocket upgrade.
pub fn switching_protocols(key: &str) -> Vec<u8> {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

/// Whether a `Sec-WebSocket-Key` is what RFC 6455 §4.1 asks for: 16 bytes
/// in base64 (24 characters, the last two `=`).
pub fn websocket_key_ok(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() == 24
        && b[22..] == *b"=="
        && b[..22]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'+' || *c == b'/')
}

/// A whole response that closes the connection after it.
pub fn response(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    response_with(status, content_type, "", body)
}

/// [`response`] with `extra` header lines (each ending in CRLF).
pub fn response_with(status: u16, content_type: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n{extra}\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The head of `response` alone: the answer to a `HEAD` request, whose
/// headers (and `Content-Length`) are those a `GET` would get.
pub fn head_only(mut response: Vec<u8>) -> Vec<u8> {
    if let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") {
        response.truncate(end + 4);
    }
    response
}

/// A 405 naming the methods `allow`ed (RFC 9110 §15.5.6).
pub fn method_not_allowed(allow: &str) -> Vec<u8> {
    json_error_with(
        405,
        "method_not_allowed",
        &format!("use {allow}"),
        &format!("Allow: {allow}\r\n"),
    )
}

/// A file of the browser client (for `HEAD`, [`head_only`] of it).
/// `no-cache`: the browser asks again each time, so a page never outlives
/// the server that served it (the files are small).
pub fn file(content_type: &str, body: &[u8], security_policy: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\nContent-Security-Policy: {security_policy}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A JSON error response: `{"error":code,"message":…}`.
pub fn json_error(status: u16, code: &str, message: &str) -> Vec<u8> {
    json_error_with(status, code, message, "")
}

/// [`json_error`] with `extra` header lines (each ending in CRLF).
pub fn json_error_with(status: u16, code: &str, message: &str, extra: &str) -> Vec<u8> {
    let mut body = b"{\"error\":".to_vec();
    crate::protocol::encode::put_str(&mut body, code);
    body.extend_from_slice(b",\"message\":");
    crate::protocol::encode::put_str(&mut body, message);
    body.push(b'}');
    response_with(status, "application/json", extra, &body)
}

/// The headers a 426 carries: what to upgrade to, and the one version
/// this server speaks (RFC 7231 §6.5.15, RFC 6455 §4.2.2).
pub const UPGRADE_TO_WEBSOCKET_13: &str = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNDS: HttpHeadBounds = HttpHeadBounds {
        request_line_bytes_max: 2048,
        headers_max: 32,
        head_bytes_max: 8 * 1024,
    };

    #[test]
    fn an_upgrade_request_parses() {
        let head = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nrest";
        let (req, len) = parse_head(head, BOUNDS).unwrap();
        assert_eq!(req.path, "/ws");
        assert!(req.upgrade_websocket && req.websocket_version_ok);
        assert_eq!(&head[len..], b"rest");
        let ok =
            String::from_utf8(switching_protocols(req.websocket_key.as_deref().unwrap())).unwrap();
        assert!(ok.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{ok}");
    }

    #[test]
    fn a_content_length_is_digits_and_said_once() {
        let head = |lengths: &str| {
            let text = format!("POST /api/login HTTP/1.1\r\nHost: x\r\n{lengths}\r\n");
            parse_head(text.as_bytes(), BOUNDS).map(|(r, _)| r.content_length)
        };
        assert_eq!(head("Content-Length: 46\r\n"), Ok(46));
        for bad in [
            "Content-Length: +46\r\n",
            "Content-Length: 4 6\r\n",
            "Content-Length: \r\n",
            "Content-Length: 46\r\nContent-Length: 47\r\n",
            "Content-Length: 46\r\nContent-Length: 46\r\n",
        ] {
            assert_eq!(head(bad), Err(HeadError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn partial_oversized_and_malformed_heads() {
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost:", BOUNDS).unwrap_err(),
            HeadError::Incomplete
        );
        let huge = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; 8 * 1024]].concat();
        assert_eq!(parse_head(&huge, BOUNDS).unwrap_err(), HeadError::TooLarge);
        assert_eq!(
            parse_head(b"\x00\x01 garbage\r\n\r\n", BOUNDS).unwrap_err(),
            HeadError::Malformed
        );
    }

    /// `GET /aaa… HTTP/1.1`: a request line of exactly `len` bytes.
    fn request_line(len: usize) -> Vec<u8> {
        let path = "a".repeat(len - "GET / HTTP/1.1".len());
        format!("GET /{path} HTTP/1.1").into_bytes()
    }

    #[test]
    fn a_request_line_over_its_bound_is_refused_complete_or_not() {
        let bounds = HttpHeadBounds {
            request_line_bytes_max: 100,
            ..BOUNDS
        };
        let fits = [request_line(100), b"\r\nHost: x\r\n\r\n".to_vec()].concat();
        assert!(parse_head(&fits, bounds).is_ok());
        let bare_lf = [request_line(100), b"\nHost: x\n\n".to_vec()].concat();
        assert!(parse_head(&bare_lf, bounds).is_ok());
        let over = [request_line(101), b"\r\nHost: x\r\n\r\n".to_vec()].concat();
        assert_eq!(
            parse_head(&over, bounds).unwrap_err(),
            HeadError::RequestLineTooLong
        );
        let behind_empty_lines = [b"\r\n\r\n".to_vec(), over].concat();
        assert_eq!(
            parse_head(&behind_empty_lines, bounds).unwrap_err(),
            HeadError::RequestLineTooLong
        );
        // Not yet ended, already too long: refused without waiting for the rest.
        assert_eq!(
            parse_head(&request_line(102), bounds).unwrap_err(),
            HeadError::RequestLineTooLong
        );
        assert_eq!(
            parse_head(&request_line(100), bounds).unwrap_err(),
            HeadError::Incomplete
        );
    }

    #[test]
    fn more_headers_than_the_bound_are_refused_before_the_head_ends() {
        let bounds = HttpHeadBounds {
            headers_max: 8,
            ..BOUNDS
        };
        let head = |n: usize| {
            let mut h = b"GET / HTTP/1.1\r\n".to_vec();
            for i in 0..n {
                h.extend_from_slice(format!("X-Filler-{i}: y\r\n").as_bytes());
            }
            h
        };
        assert!(parse_head(&[head(8), b"\r\n".to_vec()].concat(), bounds).is_ok());
        assert_eq!(
            parse_head(&[head(9), b"\r\n".to_vec()].concat(), bounds).unwrap_err(),
            HeadError::TooManyHeaders
        );
        assert_eq!(
            parse_head(&head(9), bounds).unwrap_err(),
            HeadError::TooManyHeaders,
            "refused while the head is still incomplete"
        );
    }

    #[test]
    fn a_complete_head_over_its_byte_bound_is_refused() {
        let bounds = HttpHeadBounds {
            head_bytes_max: 1024,
            ..BOUNDS
        };
        let value = "v".repeat(1000);
        let head = format!("GET / HTTP/1.1\r\nX-Big: {value}\r\n\r\n");
        assert_eq!(
            parse_head(head.as_bytes(), bounds).unwrap_err(),
            HeadError::TooLarge
        );
    }

    /// Found by the decoding properties (tests/decoding_properties.rs): a
    /// head over the limit was refused when it came in several reads but
    /// accepted when one read brought it whole.
    #[test]
    fn a_whole_head_over_the_limit_is_refused_as_a_split_one_is() {
        let max = BOUNDS.head_bytes_max;
        let filler = "a".repeat(max);
        let head = format!("GET / HTTP/1.1\r\nX: {filler}\r\n\r\n");
        assert_eq!(
            parse_head(head.as_bytes(), BOUNDS).unwrap_err(),
            HeadError::TooLarge
        );
        let at_the_limit = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", &filler[..max - 23]);
        assert_eq!(at_the_limit.len(), max);
        let (_, len) =
            parse_head(at_the_limit.as_bytes(), BOUNDS).expect("a head of exactly the limit");
        assert_eq!(len, max);
    }
}
