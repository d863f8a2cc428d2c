//! The WebSocket upgrade of `GET /ws`: the checks an upgrade request must
//! pass (a key, version 13, an allowed `Origin`, room on this shard), the
//! 101 handshake, and the opening of the session. Bytes the client sent
//! right behind its request head are handled as its first frames.

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;

use super::http::{self, Request};
use super::messages::process;
use super::routes::respond;
use crate::protocol::close::CloseReason;
use crate::shard::run::ShardCell;

/// Checks an upgrade request and completes the handshake; returns the new
/// session's slot and generation, or `None` when the request was refused
/// (and answered) or the peer went away.
pub(super) async fn upgrade(
    shard: &ShardCell,
    stream: &mut TcpStream,
    request: Request,
    leftover: Vec<u8>,
    peer_ip: std::net::IpAddr,
    accepted: std::time::Instant,
) -> Option<(u32, u32)> {
    if !request.upgrade_websocket {
        respond(
            stream,
            http::json_error_with(
                426,
                "upgrade_required",
                "GET /ws needs a WebSocket upgrade",
                http::UPGRADE_TO_WEBSOCKET_13,
            ),
        )
        .await;
        return None;
    }
    // RFC 6455 §4.2.1: an HTTP/1.1 GET with `Host` and `Connection: Upgrade`.
    let missing = if !request.http11 {
        Some("a WebSocket upgrade needs HTTP/1.1")
    } else if !request.host {
        Some("the Host header is missing")
    } else if !request.connection_upgrade {
        Some("the Connection header must include Upgrade")
    } else {
        None
    };
    if let Some(why) = missing {
        respond(stream, http::json_error(400, "bad_request", why)).await;
        return None;
    }
    // RFC 6455 §4.2.1-4.2.2: a handshake without its key or version is a
    // bad request; a version this server does not speak is answered with
    // the one it does.
    let Some(key) = request
        .websocket_key
        .as_deref()
        .filter(|k| http::websocket_key_ok(k))
    else {
        respond(
            stream,
            http::json_error(
                400,
                "bad_request",
                "Sec-WebSocket-Key must be 16 bytes in base64",
            ),
        )
        .await;
        return None;
    };
    if !request.websocket_version_present {
        respond(
            stream,
            http::json_error(400, "bad_request", "Sec-WebSocket-Version is missing"),
        )
        .await;
        return None;
    }
    if !request.websocket_version_ok {
        respond(
            stream,
            http::json_error_with(
                426,
                "upgrade_required",
                "Sec-WebSocket-Version must be 13",
                http::UPGRADE_TO_WEBSOCKET_13,
            ),
        )
        .await;
        return None;
    }
    // A browser page from a foreign origin must not open sessions in its
    // visitor's name (DESIGN §7); refused before any session state exists.
    if !shard
        .borrow()
        .config
        .allows_origin(request.origin.as_deref())
    {
        respond(
            stream,
            http::json_error(
                403,
                "forbidden_origin",
                "this origin may not open sessions here",
            ),
        )
        .await;
        return None;
    }
    if !shard.borrow().has_room_for_session() {
        shard.borrow_mut().counters.stats.refused_total += 1;
        respond(
            stream,
            http::json_error(503, "full", "this shard is full; try again"),
        )
        .await;
        return None;
    }
    if stream
        .write_all(&http::switching_protocols(key))
        .await
        .is_err()
    {
        return None;
    }
    // TCP_NODELAY came with the accept, from the listener (`bind_listeners`).
    // The login deadline runs from the accept, not from here.
    let (slot, gen) = shard.borrow_mut().open_session(peer_ip, accepted);
    if !leftover.is_empty() {
        // Frames the client sent right behind its request: whole ones are
        // handled now, the start of one is kept for the next read.
        let mut sh = shard.borrow_mut();
        let mut data = leftover;
        if let Err(v) = process(&mut sh, slot, &mut data) {
            if let Some(s) = sh.sessions.by_slot(slot) {
                s.request_close(CloseReason {
                    code: v.code,
                    reason: v.reason,
                });
            }
        }
    }
    Some((slot, gen))
}
