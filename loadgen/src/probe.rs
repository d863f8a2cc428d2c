//! Reading the server's own figures: its pid (from `GET /healthz`), its
//! resident memory (`/proc/<pid>/status`) and CPU time (`/proc/<pid>/stat`).
//! These only work when the server runs on this machine; on a remote target
//! the figures are left out of the report rather than guessed.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long the health check may take, in ms.
const HEALTHZ_TIMEOUT_MS: u64 = 2000;

/// The largest health response read, in bytes.
const HEALTHZ_BYTES_MAX: u64 = 64 * 1024;

/// Asks the server at `addr` for its pid via `GET /healthz` (JSON with `"pid"`).
pub fn healthz_pid(addr: SocketAddr) -> Option<u32> {
    let timeout = Duration::from_millis(HEALTHZ_TIMEOUT_MS);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream
        .take(HEALTHZ_BYTES_MAX)
        .read_to_end(&mut response)
        .ok()?;
    let at = memchr::memmem::find(&response, b"\r\n\r\n")?;
    let body: serde_json::Value = serde_json::from_slice(&response[at + 4..]).ok()?;
    body.get("pid")?
        .as_u64()
        .and_then(|pid| u32::try_from(pid).ok())
}

/// The resident memory of `pid` in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// User plus system CPU time of `pid` so far, in µs.
pub fn cpu_us(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it are
    // counted from the closing parenthesis.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks_per_s = u64::try_from(ticks_per_s).ok().filter(|t| *t > 0)?;
    Some((utime + stime) * 1_000_000 / ticks_per_s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_memory_and_cpu_time() {
        let pid = std::process::id();
        assert!(rss_kib(pid).is_some_and(|kib| kib > 0));
        assert!(cpu_us(pid).is_some());
        assert_eq!(rss_kib(u32::MAX), None);
    }
}
