//! The HTTP side of the one port: reading a request head, and the few
//! responses the server gives (101, JSON, Prometheus text, 404, 503).

/// The largest request head the server reads: enough for any browser's headers.
pub const HEAD_BYTES_MAX: usize = 8 * 1024;
/// Headers parsed per request; more is refused.
const HEADERS_MAX: usize = 48;

/// What the server needs from a request head.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub websocket_key: Option<String>,
    pub upgrade_websocket: bool,
    pub websocket_version_ok: bool,
    pub origin: Option<String>,
    pub content_length: usize,
}

/// Why a head could not be read.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    Incomplete,
    TooLarge,
    Malformed,
}

/// Parses a complete head at the start of `buf`; returns it and its length.
/// The head must end within the first [`HEAD_BYTES_MAX`] bytes: only those
/// are read, so the answer is the same however the bytes were split into
/// reads.
pub fn parse_head(buf: &[u8]) -> Result<(Request, usize), HeadError> {
    let window = &buf[..buf.len().min(HEAD_BYTES_MAX)];
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(window) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if window.len() == HEAD_BYTES_MAX => {
            return Err(HeadError::TooLarge)
        }
        Ok(httparse::Status::Partial) => return Err(HeadError::Incomplete),
        Err(_) => return Err(HeadError::Malformed),
    };
    let mut out = Request {
        method: req.method.unwrap_or("").to_string(),
        path: req.path.unwrap_or("").to_string(),
        ..Request::default()
    };
    for h in req.headers.iter() {
        let value = String::from_utf8_lossy(h.value);
        if h.name.eq_ignore_ascii_case("upgrade") {
            out.upgrade_websocket = value
                .split(',')
                .any(|v| v.trim().eq_ignore_ascii_case("websocket"));
        } else if h.name.eq_ignore_ascii_case("sec-websocket-key") {
            out.websocket_key = Some(value.trim().to_string());
        } else if h.name.eq_ignore_ascii_case("sec-websocket-version") {
            out.websocket_version_ok = value.trim() == "13";
        } else if h.name.eq_ignore_ascii_case("origin") {
            out.origin = Some(value.trim().to_string());
        } else if h.name.eq_ignore_ascii_case("content-length") {
            out.content_length = value.trim().parse().map_err(|_| HeadError::Malformed)?;
        }
    }
    Ok((out, len))
}

/// The 101 answer that completes a WebSocket upgrade.
pub fn switching_protocols(key: &str) -> Vec<u8> {
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    )
    .into_bytes()
}

/// A whole response that closes the connection after it.
pub fn response(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A JSON error response: `{"error":code,"message":…}`.
pub fn json_error(status: u16, code: &str, message: &str) -> Vec<u8> {
    let mut body = b"{\"error\":".to_vec();
    crate::protocol::encode::put_str(&mut body, code);
    body.extend_from_slice(b",\"message\":");
    crate::protocol::encode::put_str(&mut body, message);
    body.push(b'}');
    response(status, "application/json", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upgrade_request_parses() {
        let head = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\nrest";
        let (req, len) = parse_head(head).unwrap();
        assert_eq!(req.path, "/ws");
        assert!(req.upgrade_websocket && req.websocket_version_ok);
        assert_eq!(&head[len..], b"rest");
        let ok =
            String::from_utf8(switching_protocols(req.websocket_key.as_deref().unwrap())).unwrap();
        assert!(ok.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{ok}");
    }

    #[test]
    fn partial_oversized_and_malformed_heads() {
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost:").unwrap_err(),
            HeadError::Incomplete
        );
        let huge = [b"GET / HTTP/1.1\r\nX: ".as_slice(), &[b'a'; HEAD_BYTES_MAX]].concat();
        assert_eq!(parse_head(&huge).unwrap_err(), HeadError::TooLarge);
        assert_eq!(
            parse_head(b"\x00\x01 garbage\r\n\r\n").unwrap_err(),
            HeadError::Malformed
        );
    }

    /// Found by the decoding properties (tests/decoding_properties.rs): a
    /// head over the limit was refused when it came in several reads but
    /// accepted when one read brought it whole.
    #[test]
    fn a_whole_head_over_the_limit_is_refused_as_a_split_one_is() {
        let filler = "a".repeat(HEAD_BYTES_MAX);
        let head = format!("GET / HTTP/1.1\r\nX: {filler}\r\n\r\n");
        assert_eq!(
            parse_head(head.as_bytes()).unwrap_err(),
            HeadError::TooLarge
        );
        let at_the_limit = format!(
            "GET / HTTP/1.1\r\nX: {}\r\n\r\n",
            &filler[..HEAD_BYTES_MAX - 23]
        );
        assert_eq!(at_the_limit.len(), HEAD_BYTES_MAX);
        let (_, len) = parse_head(at_the_limit.as_bytes()).expect("a head of exactly the limit");
        assert_eq!(len, HEAD_BYTES_MAX);
    }
}
