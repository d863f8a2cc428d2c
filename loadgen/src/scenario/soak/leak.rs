//! The leak check: once all load has stopped and every session has closed,
//! the server's gauges (`/metrics`) must come back to zero — open
//! connections, logged-in players, bodies in rooms, detached sessions. A
//! detached session is held for the server's resume window, so the check
//! waits (bounded) for that window plus a margin; whatever is still nonzero
//! then is a leak and fails the run.
//!
//! Also here: reading one counter of `/metrics` from a worker thread (the
//! slow readers watch `mudshard_outbound_drops_total` to know when to look).

use crate::session::Session;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The gauges that must return to zero, summed over shards.
pub const LEAK_GAUGES: [&str; 4] = [
    "mudshard_connections",
    "mudshard_players",
    "mudshard_bodies",
    "mudshard_sessions_detached",
];

/// The server's own counts of what the soak provokes, reported as their
/// growth over the run beside what loadgen saw: cut-offs for a full
/// outbound queue (1013), closes for flooding (1008), resumes and failed
/// resumes, request heads not in by the login timeout.
pub const SERVER_COUNTERS: [&str; 5] = [
    "mudshard_outbound_drops_total",
    "mudshard_rate_limit_closes_total",
    "mudshard_resumes_total",
    "mudshard_resumes_failed_total",
    "mudshard_http_head_timeouts_total",
];

/// How often the leak check reads `/metrics` while it waits, ms.
const POLL_MS: u64 = 200;

/// The largest `/metrics` response read, bytes.
const METRICS_BYTES_MAX: usize = 4 << 20;

/// How long one `/metrics` request may take, ms.
const REQUEST_TIMEOUT_MS: u64 = 2000;

/// One gauge's value at the end of the wait (`None`: not in `/metrics`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct GaugeValue {
    pub name: String,
    pub value: Option<u64>,
}

/// What the leak check found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeakCheck {
    /// Each gauge's last value, summed over shards.
    pub gauges: Vec<GaugeValue>,
    /// How long the check waited for them, s.
    pub waited_s: f64,
    /// The bound it waited under, s.
    pub wait_max_s: f64,
    /// Every gauge was read and is zero.
    pub ok: bool,
    /// Why `/metrics` could not be read, if it could not.
    pub error: Option<String>,
}

/// Reads the gauges every `POLL_MS` until all are zero or `wait_max`
/// passes.
pub fn wait_for_zero(addr: SocketAddr, wait_max: Duration) -> LeakCheck {
    let started = Instant::now();
    loop {
        let (gauges, error) = match scrape_blocking(addr) {
            Ok(text) => (
                LEAK_GAUGES
                    .iter()
                    .map(|name| GaugeValue {
                        name: name.to_string(),
                        value: gauge_sum(&text, name),
                    })
                    .collect::<Vec<_>>(),
                None,
            ),
            Err(why) => (Vec::new(), Some(why)),
        };
        let ok = error.is_none() && gauges.iter().all(|g| g.value == Some(0));
        if ok || started.elapsed() >= wait_max {
            return LeakCheck {
                gauges,
                waited_s: started.elapsed().as_secs_f64(),
                wait_max_s: wait_max.as_secs_f64(),
                ok,
                error,
            };
        }
        std::thread::sleep(Duration::from_millis(POLL_MS));
    }
}

/// The `SERVER_COUNTERS` now (`None` each when `/metrics` cannot be read).
pub fn server_counters(addr: SocketAddr) -> Vec<GaugeValue> {
    let text = scrape_blocking(addr).ok();
    SERVER_COUNTERS
        .iter()
        .map(|name| GaugeValue {
            name: name.to_string(),
            value: text.as_deref().and_then(|t| gauge_sum(t, name)),
        })
        .collect()
}

/// How much each counter grew from `before` to `after`.
pub fn growth(before: &[GaugeValue], after: &[GaugeValue]) -> Vec<GaugeValue> {
    after
        .iter()
        .map(|a| GaugeValue {
            name: a.name.clone(),
            value: before
                .iter()
                .find(|b| b.name == a.name)
                .and_then(|b| Some(a.value?.saturating_sub(b.value?))),
        })
        .collect()
}

/// The sum over shards of `name{…} value` lines; `None` if there is none.
pub fn gauge_sum(text: &str, name: &str) -> Option<u64> {
    let mut found = false;
    let mut sum = 0u64;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        let Some(value) = rest.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()) else {
            continue;
        };
        found = true;
        sum = sum.saturating_add(value);
    }
    found.then_some(sum)
}

fn request(addr: SocketAddr) -> String {
    format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
}

/// The body of an HTTP response (after the head), if it is a 200.
fn body_of(response: &[u8]) -> Result<String, String> {
    let at = memchr::memmem::find(response, b"\r\n\r\n").ok_or("no HTTP head")?;
    if !response.starts_with(b"HTTP/1.1 200") {
        let line = response.split(|b| *b == b'\r').next().unwrap_or_default();
        return Err(format!(
            "/metrics answered {}",
            String::from_utf8_lossy(line)
        ));
    }
    Ok(String::from_utf8_lossy(&response[at + 4..]).into_owned())
}

/// `GET /metrics` from the main thread.
fn scrape_blocking(addr: SocketAddr) -> Result<String, String> {
    let timeout = Duration::from_millis(REQUEST_TIMEOUT_MS);
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("/metrics: {e}"))?;
    stream.set_read_timeout(Some(timeout)).ok();
    stream.set_write_timeout(Some(timeout)).ok();
    stream
        .write_all(request(addr).as_bytes())
        .map_err(|e| format!("/metrics: {e}"))?;
    let mut response = Vec::new();
    stream
        .take(METRICS_BYTES_MAX as u64)
        .read_to_end(&mut response)
        .map_err(|e| format!("/metrics: {e}"))?;
    body_of(&response)
}

/// `GET /metrics` from a worker thread (without blocking its executor),
/// then the sum of gauge or counter `name`; `None` on any failure or after
/// `REQUEST_TIMEOUT_MS`.
pub async fn read_metric(addr: SocketAddr, name: &str) -> Option<u64> {
    let fetch = async {
        let stream = crate::net::start_connect(addr, None).ok()?;
        let session = Session::plain(0, stream);
        session.write_all(request(addr).as_bytes()).await.ok()?;
        let scratch = RefCell::new(vec![0u8; 16 * 1024]);
        let mut response = Vec::new();
        loop {
            let n = session
                .read_into(&scratch, |bytes| response.extend_from_slice(bytes))
                .await
                .ok()?;
            if n == 0 || response.len() > METRICS_BYTES_MAX {
                break;
            }
        }
        gauge_sum(&body_of(&response).ok()?, name)
    };
    let timeout = async {
        glommio::timer::sleep(Duration::from_millis(REQUEST_TIMEOUT_MS)).await;
        None
    };
    futures_lite::future::or(fetch, timeout).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gauges_are_summed_over_shards_and_absent_ones_are_none() {
        let text = "# HELP mudshard_connections Open.\n# TYPE mudshard_connections gauge\n\
                    mudshard_connections{shard=\"0\"} 2\nmudshard_connections{shard=\"1\"} 3\n\
                    mudshard_connections_refused_per_ip_total{shard=\"0\"} 9\n\
                    mudshard_players{shard=\"0\"} 0\n";
        assert_eq!(gauge_sum(text, "mudshard_connections"), Some(5));
        assert_eq!(gauge_sum(text, "mudshard_players"), Some(0));
        assert_eq!(gauge_sum(text, "mudshard_bodies"), None);
    }

    #[test]
    fn only_a_200_has_a_body() {
        assert_eq!(
            body_of(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nx 1\n").as_deref(),
            Ok("x 1\n")
        );
        assert!(body_of(b"HTTP/1.1 503 Busy\r\n\r\n").is_err());
        assert!(body_of(b"garbage").is_err());
    }
}
