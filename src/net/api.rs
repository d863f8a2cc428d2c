//! The JSON account API on the one port (DESIGN §4): `POST /api/register`
//! and `POST /api/login` take `{"name","password"}` and answer
//! `{"name","token"}` (201 / 200) or `{"error":code,"message"}`: 400 (bad
//! JSON), 413 (body too large), and for a refusal of the account service
//! the status it names (`AccountError::http_status`: 400, 401, 429, 503).
//! The token logs in over WebSocket with `{"type":"login","token":T}`.
//!
//! A request runs as the connection's task on its shard. What happens to
//! the account is the account service's (`shard::accounts`), the same as
//! for a WebSocket `register` or `login`; its answer comes back through a
//! oneshot channel, so the task awaits it while the shard serves others.

use futures_lite::AsyncReadExt;
use glommio::net::TcpStream;
use serde::Deserialize;
use std::net::IpAddr;
use std::time::Instant;

use super::http::{self, Request};
use super::routes::until;
use crate::protocol::names::name_key;
use crate::shard::accounts::AccountError;
use crate::shard::run::ShardCell;
use crate::shard::Shard;
use crate::store::AccountRecord;

/// Largest request body read: a name and a password with JSON around them.
pub const BODY_BYTES_MAX: usize = 4 * 1024;

/// Which endpoint was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Register,
    Login,
}

#[derive(Deserialize)]
struct Credentials {
    name: String,
    password: String,
}

/// Reads the body (by `deadline`, the connection's login deadline) and
/// answers the request; returns the whole response.
pub async fn answer(
    shard: &ShardCell,
    stream: &mut TcpStream,
    request: &Request,
    leftover: Vec<u8>,
    peer_ip: IpAddr,
    endpoint: Endpoint,
    deadline: Instant,
) -> Vec<u8> {
    if request.transfer_encoding {
        return http::json_error(
            411,
            "length_required",
            "send the body with a Content-Length (chunked bodies are not read)",
        );
    }
    if request.content_length > BODY_BYTES_MAX {
        return http::json_error(413, "too_large", "the request body is too large");
    }
    let body = futures_lite::future::or(
        async { read_body(stream, leftover, request.content_length).await },
        async {
            until(deadline).await;
            None
        },
    )
    .await;
    let Some(body) = body else {
        return http::json_error(400, "bad_request", "incomplete request body");
    };
    let credentials: Credentials = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return http::json_error(
                400,
                "bad_json",
                &format!("expected {{\"name\":…,\"password\":…}}: {e}"),
            )
        }
    };
    account(shard, endpoint, credentials, peer_ip).await
}

/// The body: `Content-Length` bytes, some of which came with the head.
async fn read_body(stream: &mut TcpStream, mut body: Vec<u8>, length: usize) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 1024];
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(body)
}

/// Asks the account service and answers with its verdict.
async fn account(shard: &ShardCell, endpoint: Endpoint, c: Credentials, ip: IpAddr) -> Vec<u8> {
    let (tx, rx) = futures_channel::oneshot::channel();
    let then = move |_: &mut Shard, result: Result<AccountRecord, AccountError>| {
        // The client may have hung up; nothing to do then.
        let _ = tx.send(result);
    };
    let status = {
        let mut sh = shard.borrow_mut();
        let status = match endpoint {
            Endpoint::Register => {
                sh.create_account(&c.name, c.password, ip, then);
                201
            }
            Endpoint::Login => {
                sh.check_password(&c.name, c.password, ip, then);
                200
            }
        };
        // An answer the shard could give itself (a name no account has) is
        // posted to its own queue: given now, not at the next sweep.
        sh.drain_local();
        status
    };
    // The answer is lost only when the shard stops before it comes.
    match rx.await.unwrap_or(Err(AccountError::Unavailable)) {
        Ok(record) => issued(shard, status, &record),
        Err(e) => http::json_error(e.http_status(), e.code(), &e.to_string()),
    }
}

/// `{"name","token"}` for an account.
fn issued(shard: &ShardCell, status: u16, record: &AccountRecord) -> Vec<u8> {
    let sh: std::cell::Ref<'_, Shard> = shard.borrow();
    let token = sh.account_token(&name_key(&record.name));
    let mut body = b"{\"name\":".to_vec();
    crate::protocol::encode::put_str(&mut body, &record.name);
    body.extend_from_slice(b",\"token\":");
    crate::protocol::encode::put_str(&mut body, &token);
    body.push(b'}');
    http::response(status, "application/json", &body)
}
