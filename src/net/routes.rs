//! The HTTP phase of a connection: the request head, read under the login
//! timeout, and the route table of the one port — `GET /ws` (handed to
//! `upgrade.rs`), `GET /healthz` and `GET /metrics` (figures gathered from
//! every shard), `POST /api/register` and `/api/login` (`api.rs`), and 404 /
//! 405 for anything else.

use futures_lite::AsyncWriteExt;
use glommio::net::TcpStream;
use glommio::timer::Timer;
use std::time::Duration;

use super::api;
use super::http::{self, HeadError, Request};
use super::upgrade::upgrade;
use crate::metrics::stats::ShardStats;
use crate::metrics::HostFacts;
use crate::shard::run::ShardCell;

/// Reads the request and answers it; for an accepted `/ws` upgrade returns
/// the new session's slot and generation.
pub(super) async fn http_phase(shard: &ShardCell, stream: &mut TcpStream) -> Option<(u32, u32)> {
    let peer_ip = stream
        .peer_addr()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |a| a.ip());
    let login_timeout = Duration::from_millis(shard.borrow().config.limits.login_timeout_ms);
    let head = futures_lite::future::or(async { Some(read_head(stream).await) }, async {
        Timer::new(login_timeout).await;
        None
    })
    .await;
    let (request, leftover) = match head {
        None => return None,
        Some(Err(HeadError::TooLarge)) => {
            respond(
                stream,
                http::json_error(431, "too_large", "request head too large"),
            )
            .await;
            return None;
        }
        Some(Err(_)) => {
            respond(
                stream,
                http::json_error(400, "bad_request", "malformed HTTP request"),
            )
            .await;
            return None;
        }
        Some(Ok(parsed)) => parsed,
    };
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/ws") => return upgrade(shard, stream, request, leftover, peer_ip).await,
        ("GET", "/healthz") => {
            let body = gather(shard, crate::metrics::health_json).await;
            respond(stream, http::response(200, "application/json", &body)).await;
        }
        ("GET", "/metrics") => {
            let body = gather(shard, crate::metrics::prometheus_text).await;
            respond(
                stream,
                http::response(200, "text/plain; version=0.0.4", &body),
            )
            .await;
        }
        ("POST", "/api/register" | "/api/login") => {
            let endpoint = match request.path.as_str() {
                "/api/register" => api::Endpoint::Register,
                _ => api::Endpoint::Login,
            };
            let response = api::answer(shard, stream, &request, leftover, peer_ip, endpoint).await;
            respond(stream, response).await;
        }
        (_, "/api/register" | "/api/login") => {
            respond(
                stream,
                http::json_error(405, "method_not_allowed", "use POST"),
            )
            .await;
        }
        (_, "/ws" | "/healthz" | "/metrics") => {
            respond(
                stream,
                http::json_error(405, "method_not_allowed", "use GET"),
            )
            .await;
        }
        _ => respond(stream, http::json_error(404, "not_found", "no such page")).await,
    }
    None
}

/// Reads a request head; returns it and any bytes that came after it.
async fn read_head(stream: &mut TcpStream) -> Result<(Request, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = futures_lite::AsyncReadExt::read(stream, &mut chunk)
            .await
            .map_err(|_| HeadError::Malformed)?;
        if n == 0 {
            return Err(HeadError::Malformed);
        }
        buf.extend_from_slice(&chunk[..n]);
        match http::parse_head(&buf) {
            Ok((request, len)) => return Ok((request, buf.split_off(len))),
            Err(HeadError::Incomplete) => continue,
            Err(e) => return Err(e),
        }
    }
}

pub(super) async fn respond(stream: &mut TcpStream, bytes: Vec<u8>) {
    // The peer may be gone already; there is no one left to tell.
    let _ = stream.write_all(&bytes).await;
    let _ = stream.close().await;
}

/// Asks every shard for its figures and renders them with `render`.
async fn gather(
    shard: &ShardCell,
    render: fn(&HostFacts<'_>, &[ShardStats]) -> Vec<u8>,
) -> Vec<u8> {
    let (tx, rx) = futures_channel::oneshot::channel();
    shard.borrow_mut().gather_stats(tx);
    let stats = rx.await.unwrap_or_default();
    let shard = shard.borrow();
    let host = HostFacts {
        host_id: &shard.config.host_id,
        rooms: shard.world.rooms.len(),
        store: &shard.store_metrics,
    };
    render(&host, &stats)
}
