//! The HTTP phase of a connection: the request head, read under its bounds
//! and before the login deadline, and the route table of the one port —
//! `GET /` and the browser client's files (`client/`, `GET` or `HEAD`),
//! `GET /ws` (handed to `upgrade.rs`), `GET /healthz` and `GET /metrics`
//! (figures gathered from every shard; `HEAD` too), `POST /api/register` and
//! `/api/login` (`api.rs`), and 404 / 405 (with `Allow`) for anything else.
//! A query string is not part of the path (`http.rs`).

use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::timer::Timer;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::api;
use super::client;
use super::http::{self, HeadError, Request};
use super::upgrade::upgrade;
use crate::config::HttpHeadBounds;
use crate::metrics::stats::ShardStats;
use crate::metrics::HostFacts;
use crate::shard::run::ShardCell;

/// How long a refused connection is read from (and what it sends thrown
/// away) after its answer, before the socket is closed: closing with the
/// client's bytes unread would reset the connection, and a reset can make
/// the client's side drop the answer before it is read.
const REFUSED_LINGER_MS: u64 = 1_000;
/// Most bytes read and thrown away in that time.
const REFUSED_LINGER_BYTES_MAX: usize = 64 * 1024;

/// Reads the request and answers it; for an accepted `/ws` upgrade returns
/// the new session's slot and generation. Everything before the login —
/// the head, an API request's body, the login itself — must be done by
/// `login_timeout_ms` after `accepted`: one deadline for the whole, so a
/// client that trickles its bytes (slowloris) is cut at it however it paces
/// them.
pub(super) async fn http_phase(
    shard: &ShardCell,
    stream: &mut TcpStream,
    peer_ip: IpAddr,
    accepted: Instant,
) -> Option<(u32, u32)> {
    let (login_timeout_ms, bounds) = {
        let sh = shard.borrow();
        let limits = &sh.config.limits;
        (limits.login_timeout_ms, limits.http_head_bounds())
    };
    let deadline = accepted + Duration::from_millis(login_timeout_ms);
    let head = futures_lite::future::or(async { Some(read_head(stream, bounds).await) }, async {
        until(deadline).await;
        None
    })
    .await;
    let (request, leftover) = match head {
        None => {
            shard.borrow_mut().counters.stats.http_head_timeouts += 1;
            return None;
        }
        Some(Err(e)) => {
            refuse_head(shard, stream, e, bounds).await;
            return None;
        }
        Some(Ok(parsed)) => parsed,
    };
    if let Some(asset) = client::asset(&request.path) {
        let response = match request.method.as_str() {
            method @ ("GET" | "HEAD") => head_if(
                method,
                http::file(
                    asset.content_type,
                    asset.body,
                    client::CONTENT_SECURITY_POLICY,
                ),
            ),
            _ => http::method_not_allowed("GET, HEAD"),
        };
        respond(stream, response).await;
        return None;
    }
    match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/ws") => {
            return upgrade(shard, stream, request, leftover, peer_ip, accepted).await
        }
        (method @ ("GET" | "HEAD"), "/healthz") => {
            let body = gather(shard, crate::metrics::health_json).await;
            let response = http::response(200, "application/json", &body);
            respond(stream, head_if(method, response)).await;
        }
        (method @ ("GET" | "HEAD"), "/metrics") => {
            let body = gather(shard, crate::metrics::prometheus_text).await;
            let response = http::response(200, "text/plain; version=0.0.4", &body);
            respond(stream, head_if(method, response)).await;
        }
        ("POST", "/api/register" | "/api/login") => {
            let endpoint = match request.path.as_str() {
                "/api/register" => api::Endpoint::Register,
                _ => api::Endpoint::Login,
            };
            let response = api::answer(
                shard, stream, &request, leftover, peer_ip, endpoint, deadline,
            )
            .await;
            respond(stream, response).await;
        }
        (_, "/api/register" | "/api/login") => {
            respond(stream, http::method_not_allowed("POST")).await;
        }
        (_, "/ws") => respond(stream, http::method_not_allowed("GET")).await,
        (_, "/healthz" | "/metrics") => {
            respond(stream, http::method_not_allowed("GET, HEAD")).await;
        }
        _ => respond(stream, http::json_error(404, "not_found", "no such page")).await,
    }
    None
}

/// Answers a head that could not be read: 414 or 431 for one over a bound
/// (counted in `/metrics`), 400 for one that is not HTTP.
async fn refuse_head(shard: &ShardCell, stream: &mut TcpStream, e: HeadError, b: HttpHeadBounds) {
    let response = {
        let mut sh = shard.borrow_mut();
        let stats = &mut sh.counters.stats;
        match e {
            HeadError::RequestLineTooLong => {
                stats.http_request_line_refused += 1;
                let message = format!(
                    "the request line is longer than {} bytes",
                    b.request_line_bytes_max
                );
                http::json_error(414, "request_line_too_long", &message)
            }
            HeadError::TooManyHeaders => {
                stats.http_headers_refused += 1;
                let message = format!("a request has at most {} headers", b.headers_max);
                http::json_error(431, "too_many_headers", &message)
            }
            HeadError::TooLarge => {
                stats.http_head_bytes_refused += 1;
                let message = format!("the request head is larger than {} bytes", b.head_bytes_max);
                http::json_error(431, "head_too_large", &message)
            }
            HeadError::Incomplete | HeadError::Malformed => {
                http::json_error(400, "bad_request", "malformed HTTP request")
            }
        }
    };
    refuse(stream, response).await;
}

/// Reads a request head; returns it and any bytes that came after it.
async fn read_head(
    stream: &mut TcpStream,
    bounds: HttpHeadBounds,
) -> Result<(Request, Vec<u8>), HeadError> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|_| HeadError::Malformed)?;
        if n == 0 {
            return Err(HeadError::Malformed);
        }
        buf.extend_from_slice(&chunk[..n]);
        match http::parse_head(&buf, bounds) {
            Ok((request, len)) => return Ok((request, buf.split_off(len))),
            Err(HeadError::Incomplete) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Waits until `deadline` (at once when it has passed).
pub(super) async fn until(deadline: Instant) {
    Timer::new(deadline.saturating_duration_since(Instant::now())).await;
}

/// `response` as the answer to `method`: its head alone for `HEAD`.
fn head_if(method: &str, response: Vec<u8>) -> Vec<u8> {
    if method == "HEAD" {
        http::head_only(response)
    } else {
        response
    }
}

pub(super) async fn respond(stream: &mut TcpStream, bytes: Vec<u8>) {
    // The peer may be gone already; there is no one left to tell.
    let _ = stream.write_all(&bytes).await;
    let _ = stream.close().await;
}

/// Answers a request refused before it was read whole, then reads what the
/// client still sends, for a moment, so that its answer is not lost to a
/// reset (`REFUSED_LINGER_MS`).
pub(super) async fn refuse(stream: &mut TcpStream, bytes: Vec<u8>) {
    respond(stream, bytes).await;
    let mut sink = [0u8; 1024];
    let drain = async {
        let mut left = REFUSED_LINGER_BYTES_MAX;
        while left > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    futures_lite::future::or(drain, async {
        Timer::new(Duration::from_millis(REFUSED_LINGER_MS)).await;
    })
    .await;
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
        cores: &shard.config.cores,
        store: &shard.store_metrics,
        bridge: shard.bridge_facts(),
    };
    render(&host, &stats)
}
