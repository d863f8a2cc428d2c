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
    let body = http_get(addr, "/healthz", HEALTHZ_BYTES_MAX)?;
    let body: serde_json::Value = serde_json::from_slice(&body).ok()?;
    body.get("pid")?
        .as_u64()
        .and_then(|pid| u32::try_from(pid).ok())
}

/// The body of `GET path` from the server at `addr` (at most `bytes_max`
/// of response read, within [`HEALTHZ_TIMEOUT_MS`] per step); `None` on
/// any failure.
pub fn http_get(addr: SocketAddr, path: &str, bytes_max: u64) -> Option<Vec<u8>> {
    let timeout = Duration::from_millis(HEALTHZ_TIMEOUT_MS);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_write_timeout(Some(timeout)).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.take(bytes_max).read_to_end(&mut response).ok()?;
    let at = memchr::memmem::find(&response, b"\r\n\r\n")?;
    response.drain(..at + 4);
    Some(response)
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
    Some((utime + stime) * 1_000_000 / ticks_per_s()?)
}

/// The whole machine's CPU time so far, from the `cpu` line of `/proc/stat`,
/// in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MachineTicks {
    /// user + nice + system + irq + softirq (guest time is inside user).
    pub busy: u64,
    /// Time the hypervisor ran something else while this machine wanted a CPU.
    pub steal: u64,
    /// Every field: busy + idle + iowait + steal.
    pub total: u64,
}

impl MachineTicks {
    /// Parses the first line of `/proc/stat`.
    pub fn parse(stat: &str) -> Option<MachineTicks> {
        let line = stat.lines().next()?;
        let mut fields = line.split_whitespace();
        if fields.next()? != "cpu" {
            return None;
        }
        let v: Vec<u64> = fields
            .take(8)
            .map(|f| f.parse().ok())
            .collect::<Option<_>>()?;
        let [user, nice, system, idle, iowait, irq, softirq, steal] = v[..] else {
            return None;
        };
        let busy = user + nice + system + irq + softirq;
        Some(MachineTicks {
            busy,
            steal,
            total: busy + idle + iowait + steal,
        })
    }

    pub fn now() -> Option<MachineTicks> {
        MachineTicks::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }
}

/// CPU time (user + system, µs) of every process now running, by pid, from
/// `/proc/<pid>/stat`. Per-process times are exact (the scheduler's own
/// accounting), unlike the busy ticks of `/proc/stat`, which are sampled at
/// timer ticks and, on a virtual machine, can miss most of a workload that
/// sleeps and wakes on timers.
pub fn all_processes_cpu_us() -> Option<std::collections::HashMap<u32, u64>> {
    let mut all = std::collections::HashMap::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // A process that ended since the listing is simply not counted.
        if let Some(us) = cpu_us(pid) {
            all.insert(pid, us);
        }
    }
    Some(all)
}

/// CPU time all processes used between two `all_processes_cpu_us` samples:
/// a process present in both counts its difference, one started in between
/// counts whole, one that ended in between is lost (rarely more than a
/// moment of a short-lived process).
pub fn cpu_us_between(
    before: &std::collections::HashMap<u32, u64>,
    after: &std::collections::HashMap<u32, u64>,
) -> u64 {
    after
        .iter()
        .map(|(pid, end)| end.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum()
}

/// Clock ticks per second (`_SC_CLK_TCK`).
pub fn ticks_per_s() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0)
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

    #[test]
    fn every_process_is_counted_and_differences_add_up() {
        let all = all_processes_cpu_us().expect("reads /proc");
        assert!(all.contains_key(&std::process::id()));
        let before = std::collections::HashMap::from([(1, 100), (2, 50), (3, 7)]);
        let after = std::collections::HashMap::from([(1, 160), (2, 50), (4, 30)]);
        // pid 1: 60, pid 2: 0, pid 3 ended (lost), pid 4 new: 30.
        assert_eq!(cpu_us_between(&before, &after), 90);
    }

    #[test]
    fn the_machine_line_of_proc_stat_is_read() {
        let stat = "cpu  100 5 50 1000 20 3 7 40 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n";
        let t = MachineTicks::parse(stat).expect("parses");
        assert_eq!(t.busy, 100 + 5 + 50 + 3 + 7);
        assert_eq!(t.steal, 40);
        assert_eq!(t.total, 165 + 1000 + 20 + 40);
        assert_eq!(MachineTicks::parse("cpu0 1 2 3\n"), None);
        assert_eq!(MachineTicks::parse("cpu 1 2 x 4 5 6 7 8\n"), None);
        assert!(MachineTicks::now().is_some_and(|t| t.total >= t.busy));
    }
}
