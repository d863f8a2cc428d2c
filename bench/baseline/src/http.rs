//! The plain-HTTP side of the one port: routing by request line, `/healthz`, 404.
//!
//! The request line is *peeked* (read without consuming it), so a `GET /ws`
//! stream can be handed untouched to tokio-tungstenite, which reads the
//! request again and does the upgrade itself. Anything else is answered here
//! with a tiny hand-written HTTP/1.1 response and closed.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::state::Shared;

/// The longest request line we look at; longer ones are not ours.
const REQUEST_LINE_BYTES_MAX: usize = 1024;
/// The largest request head (line + headers) we read before answering.
const REQUEST_HEAD_BYTES_MAX: usize = 8 * 1024;
/// How long a client has to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait before peeking again at a request line that came in pieces.
const PEEK_RETRY_DELAY: Duration = Duration::from_millis(1);

/// Where a request goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /ws`: the WebSocket upgrade.
    WebSocket,
    /// `GET /healthz`.
    Healthz,
    /// Anything else.
    NotFound,
}

/// Peeks at the request line and decides the route, leaving the bytes in the socket.
/// `Ok(None)` means the client closed before sending a whole line.
pub async fn peek_route(stream: &TcpStream) -> io::Result<Option<Route>> {
    let mut buf = [0u8; REQUEST_LINE_BYTES_MAX];
    let mut seen = 0;
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        if let Some(end) = buf[..n].windows(2).position(|w| w == b"\r\n") {
            return Ok(Some(route(&buf[..end])));
        }
        if n == buf.len() {
            return Ok(Some(Route::NotFound));
        }
        // `peek` returns at once while any bytes are waiting, so a line that
        // arrived in pieces would spin; wait a little for the rest instead.
        if n == seen {
            tokio::time::sleep(PEEK_RETRY_DELAY).await;
        }
        seen = n;
    }
}

/// Routes a request line such as `GET /ws?x=1 HTTP/1.1`.
fn route(line: &[u8]) -> Route {
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Route::NotFound;
    };
    let path = target.split(|&b| b == b'?').next().unwrap_or_default();
    match (method, path) {
        (b"GET", b"/ws") => Route::WebSocket,
        (b"GET", b"/healthz") => Route::Healthz,
        _ => Route::NotFound,
    }
}

/// Answers a plain HTTP request (`/healthz` or a 404) and closes the connection.
pub async fn respond(mut stream: TcpStream, route: Route, shared: &Shared) -> io::Result<()> {
    // Read the request head first: closing a socket with unread bytes makes the
    // kernel send a reset, which can destroy the response before it is read.
    read_head(&mut stream).await?;
    let (status, body) = match route {
        Route::Healthz => (
            "200 OK",
            format!(
                r#"{{"pid":{},"connections":{},"server":"baseline"}}"#,
                std::process::id(),
                shared.connection_count()
            ),
        ),
        Route::WebSocket | Route::NotFound => (
            "404 Not Found",
            r#"{"error":"not_found","message":"try GET /ws or GET /healthz"}"#.to_owned(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// Reads up to the blank line that ends the request head (bounded).
async fn read_head(stream: &mut TcpStream) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() >= REQUEST_HEAD_BYTES_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_method_and_path() {
        assert_eq!(route(b"GET /ws HTTP/1.1"), Route::WebSocket);
        assert_eq!(route(b"GET /ws?name=x HTTP/1.1"), Route::WebSocket);
        assert_eq!(route(b"GET /healthz HTTP/1.1"), Route::Healthz);
        assert_eq!(route(b"POST /ws HTTP/1.1"), Route::NotFound);
        assert_eq!(route(b"GET / HTTP/1.1"), Route::NotFound);
        assert_eq!(route(b"garbage"), Route::NotFound);
    }
}
