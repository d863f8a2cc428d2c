//! The JSON account API on the one port (DESIGN §4): `POST /api/register`
//! and `POST /api/login` take `{"name","password"}` and answer
//! `{"name","token"}` (201 / 200) or `{"error":code,"message"}`:
//! 400 (bad JSON, name or password rules), 401 (`bad_credentials`),
//! 400 (`name_taken`, as DESIGN §4 lists), 413 (body too large), 429 (`rate_limited`),
//! 503 (hasher busy or store failing). The token logs in over WebSocket
//! with `{"type":"login","token":T}`.
//!
//! A request runs as the connection's task on its shard; the hash and the
//! store work happen on their threads, whose answers come back through the
//! shard's inbox (`Shard::reply_here`), so the shard never waits for them.

use futures_lite::AsyncReadExt;
use glommio::net::TcpStream;
use glommio::timer::Timer;
use serde::Deserialize;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::http::{self, Request};
use crate::protocol::names::{
    name_key, reserved_for_guests, validate_name, validate_password, PASSWORD_CHARS_MAX,
};
use crate::shard::login::{BAD_CREDENTIALS, INVALID_NAME_KEY};
use crate::shard::run::ShardCell;
use crate::shard::Shard;
use crate::store::{AccountRecord, RegisterError};

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

/// Reads the body and answers the request; returns the whole response.
pub async fn answer(
    shard: &ShardCell,
    stream: &mut TcpStream,
    request: &Request,
    leftover: Vec<u8>,
    peer_ip: IpAddr,
    endpoint: Endpoint,
) -> Vec<u8> {
    if request.content_length > BODY_BYTES_MAX {
        return http::json_error(413, "too_large", "the request body is too large");
    }
    let timeout = Duration::from_millis(shard.borrow().config.limits.login_timeout_ms);
    let body = futures_lite::future::or(
        async { read_body(stream, leftover, request.content_length).await },
        async {
            Timer::new(timeout).await;
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
    match endpoint {
        Endpoint::Register => register(shard, credentials, peer_ip).await,
        Endpoint::Login => login(shard, credentials, peer_ip).await,
    }
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

async fn register(shard: &ShardCell, c: Credentials, ip: IpAddr) -> Vec<u8> {
    let key = match validate_name(&c.name) {
        Ok(key) => key,
        Err(e) => return http::json_error(400, e.code(), &e.to_string()),
    };
    if reserved_for_guests(&key) {
        return http::json_error(
            400,
            "invalid_name",
            "names like guest1_2 are kept for guests",
        );
    }
    if let Err(e) = validate_password(&c.password) {
        return http::json_error(400, e.code(), &e.to_string());
    }
    if let Some(refusal) = limited(shard, &key, ip) {
        return refusal;
    }
    let (tx, rx) = futures_channel::oneshot::channel();
    let submitted = {
        let sh = shard.borrow();
        let reply = sh.reply_here(move |_, hashed| {
            let _ = tx.send(hashed);
        });
        sh.hasher.hash(c.password, reply)
    };
    if submitted.is_err() {
        return busy();
    }
    let hash = match rx.await {
        Ok(Ok(hash)) => hash,
        _ => return unavailable(),
    };
    let (tx, rx) = futures_channel::oneshot::channel();
    {
        let sh = shard.borrow();
        let start = sh.world.room(sh.world.start).id.clone();
        let reply = sh.reply_here(move |_, result| {
            let _ = tx.send(result);
        });
        sh.store.register(&c.name, hash, &start, reply);
    }
    match rx.await {
        Ok(Ok(record)) => issued(shard, 201, &record),
        Ok(Err(RegisterError::NameTaken)) => {
            shard
                .borrow()
                .limiter
                .record_failure(&key, ip, Instant::now());
            http::json_error(400, "name_taken", &format!("the name {} is taken", c.name))
        }
        Ok(Err(RegisterError::Store(e))) => {
            tracing::error!(error = %e, "api register: the store failed");
            unavailable()
        }
        Err(_) => unavailable(),
    }
}

async fn login(shard: &ShardCell, c: Credentials, ip: IpAddr) -> Vec<u8> {
    let key = match validate_name(&c.name) {
        Ok(key) if c.password.chars().count() <= PASSWORD_CHARS_MAX => key,
        _ => {
            shard
                .borrow()
                .limiter
                .record_failure(INVALID_NAME_KEY, ip, Instant::now());
            return http::json_error(401, "bad_credentials", BAD_CREDENTIALS);
        }
    };
    if let Some(refusal) = limited(shard, &key, ip) {
        return refusal;
    }
    let (tx, rx) = futures_channel::oneshot::channel();
    {
        let sh = shard.borrow();
        let reply = sh.reply_here(move |_, result| {
            let _ = tx.send(result);
        });
        sh.store.load_account(&key, reply);
    }
    let record = match rx.await {
        Ok(Ok(record)) => record,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "api login: the store failed");
            return unavailable();
        }
        Err(_) => return unavailable(),
    };
    let (tx, rx) = futures_channel::oneshot::channel();
    let submitted = {
        let sh = shard.borrow();
        let reply = sh.reply_here(move |_, ok| {
            let _ = tx.send(ok);
        });
        match &record {
            Some(record) => sh
                .hasher
                .verify(c.password, record.password_hash.clone(), reply),
            None => sh.hasher.verify_missing_account(c.password, reply),
        }
    };
    if submitted.is_err() {
        return busy();
    }
    match (rx.await, record) {
        (Ok(true), Some(record)) => issued(shard, 200, &record),
        (Ok(_), _) => {
            shard
                .borrow()
                .limiter
                .record_failure(&key, ip, Instant::now());
            http::json_error(401, "bad_credentials", BAD_CREDENTIALS)
        }
        (Err(_), _) => unavailable(),
    }
}

/// The limiter's refusal, if the name or address is over its limit.
fn limited(shard: &ShardCell, key: &str, ip: IpAddr) -> Option<Vec<u8>> {
    let sh = shard.borrow();
    let retry = sh.limiter.check(key, ip, Instant::now()).err()?;
    Some(http::json_error(
        429,
        "rate_limited",
        &format!("too many failed attempts; try again in {} s", retry.after_s),
    ))
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

fn busy() -> Vec<u8> {
    http::json_error(503, "busy", "the server is busy; try again in a moment")
}

fn unavailable() -> Vec<u8> {
    http::json_error(503, "unavailable", "accounts are unavailable; try again")
}
