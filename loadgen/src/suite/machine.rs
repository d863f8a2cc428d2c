//! What the report says about the machine and the tree it ran on, and the
//! clock readings it is dated with. Every reading is best effort: a
//! figure that cannot be read is written as `?` or `unknown`, never an
//! error.

use super::process::{output_line, succeeds};
use std::path::Path;
use std::time::Duration;

/// Bound on each helper command (`git`, `rustc`).
const HELPER_BOUND: Duration = Duration::from_secs(20);

/// The run's metadata.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    pub started_at: String,
    pub finished_at: String,
    pub commit: String,
    pub nproc: usize,
    pub cpu: String,
    pub mem: String,
    pub kernel: String,
    pub nofile: String,
    pub ports: String,
    pub load_at_start: String,
    /// How an idle CPU waits (the cpuidle driver, and guest halt polling on
    /// a VM): on a VM it sets what a wake-up costs.
    pub idle: String,
    /// The kernel's TCP congestion control: on loopback every delivery is
    /// a segment and its ACK, and the algorithm runs on each ACK (`bbr`
    /// costs more per ACK than `cubic`), so it is part of the floor.
    pub tcp_cc: String,
    pub rustc: String,
}

impl Meta {
    /// Reads everything but `finished_at`.
    pub fn read(root: &Path, nproc: usize) -> Meta {
        Meta {
            started_at: utc_now(),
            finished_at: String::new(),
            commit: commit(root),
            nproc,
            cpu: cpu_model().unwrap_or_else(|| "?".into()),
            mem: mem_total().unwrap_or_else(|| "?".into()),
            kernel: kernel().unwrap_or_else(|| "?".into()),
            nofile: nofile_soft().map_or_else(|| "?".into(), |n| n.to_string()),
            ports: std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
                .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
                .unwrap_or_else(|_| "?".into()),
            load_at_start: load_average().unwrap_or_else(|| "?".into()),
            idle: idle_wait(
                read_trimmed("/sys/devices/system/cpu/cpuidle/current_driver"),
                read_trimmed("/sys/module/haltpoll/parameters/guest_halt_poll_ns"),
            ),
            tcp_cc: read_trimmed("/proc/sys/net/ipv4/tcp_congestion_control")
                .filter(|cc| !cc.is_empty())
                .unwrap_or_else(|| "?".into()),
            rustc: output_line("rustc", &["--version"], root, HELPER_BOUND)
                .unwrap_or_else(|| "unknown".into()),
        }
    }
}

/// The short commit, and whether the tree differs from it (reports aside).
fn commit(root: &Path) -> String {
    let Some(hash) = output_line("git", &["rev-parse", "--short", "HEAD"], root, HELPER_BOUND)
    else {
        return "unknown".into();
    };
    let clean = succeeds(
        "git",
        &["diff", "--quiet", "HEAD", "--", ".", ":!bench/reports"],
        root,
        HELPER_BOUND,
    );
    match clean {
        Some(false) => format!("{hash} (with uncommitted changes)"),
        _ => hash,
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
}

/// The cpuidle driver, and with `haltpoll` (a KVM guest's) how long an idle
/// vCPU polls before it halts: a halted vCPU takes the hypervisor to wake,
/// which made a wake-up from idle five times dearer on the development VM
/// (README, "Scaling with cores").
fn idle_wait(driver: Option<String>, halt_poll_ns: Option<String>) -> String {
    let Some(driver) = driver.filter(|d| !d.is_empty()) else {
        return "?".into();
    };
    match halt_poll_ns.and_then(|ns| ns.parse::<u64>().ok()) {
        Some(0) => format!("{driver} (guest halt polling off)"),
        Some(ns) => format!("{driver} (guest halt polling up to {} µs)", ns / 1_000),
        None => driver,
    }
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    text.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
}

fn mem_total() -> Option<String> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = text
        .lines()
        .find(|l| l.starts_with("MemTotal:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(format!("{:.1} GiB", kib / 1_048_576.0))
}

fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    Some(
        text.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

fn c_field(field: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = field
        .iter()
        .take_while(|c| **c != 0)
        .map(|c| *c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `uname -srm`.
fn kernel() -> Option<String> {
    // SAFETY: utsname is plain data; uname fills it or fails.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `u` is a valid, writable utsname.
    if unsafe { libc::uname(&mut u) } != 0 {
        return None;
    }
    Some(format!(
        "{} {} {}",
        c_field(&u.sysname),
        c_field(&u.release),
        c_field(&u.machine)
    ))
}

/// This host's short name (`hostname -s`).
pub fn hostname() -> String {
    let mut buf = [0 as libc::c_char; 256];
    // SAFETY: the buffer is writable for its length; gethostname truncates.
    if unsafe { libc::gethostname(buf.as_mut_ptr(), buf.len() - 1) } != 0 {
        return "host".into();
    }
    let name = c_field(&buf);
    match name.split('.').next() {
        Some(short) if !short.is_empty() => short.to_string(),
        _ => "host".into(),
    }
}

fn nofile_soft() -> Option<u64> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `l` is a valid, writable rlimit.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } == 0).then_some(l.rlim_cur)
}

/// Raises the open-files limit as far as this process may (one socket per
/// session on each side), up to the kernel's `nr_open`; returns the soft
/// and hard limits it ends with.
pub fn raise_nofile() -> (u64, u64) {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `l` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return (0, 0);
    }
    let nr_open: Option<libc::rlim_t> = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse().ok());
    // Above the hard limit only a privileged process may go; try that first.
    for want in nr_open.into_iter().chain([l.rlim_max]) {
        let next = libc::rlimit {
            rlim_cur: want,
            rlim_max: want.max(l.rlim_max),
        };
        // SAFETY: `next` is a valid rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &next) } == 0 {
            l = next;
            break;
        }
    }
    (l.rlim_cur, l.rlim_max)
}

/// A broken-down time from `gmtime_r` (UTC) or `localtime_r`.
struct Tm(libc::tm);

impl Tm {
    fn now(utc: bool) -> Option<Tm> {
        // SAFETY: time(NULL) only returns the time.
        let t = unsafe { libc::time(std::ptr::null_mut()) };
        // SAFETY: tm is plain data, filled by the call below.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are valid for the call's duration.
        let ok = unsafe {
            if utc {
                !libc::gmtime_r(&t, &mut tm).is_null()
            } else {
                !libc::localtime_r(&t, &mut tm).is_null()
            }
        };
        ok.then_some(Tm(tm))
    }

    fn date(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}",
            self.0.tm_year + 1900,
            self.0.tm_mon + 1,
            self.0.tm_mday
        )
    }
}

/// `2026-12-01 19:20:46 UTC`.
pub fn utc_now() -> String {
    Tm::now(true).map_or_else(
        || "?".into(),
        |t| {
            format!(
                "{} {:02}:{:02}:{:02} UTC",
                t.date(),
                t.0.tm_hour,
                t.0.tm_min,
                t.0.tm_sec
            )
        },
    )
}

/// `20261201T192046Z`: the run directory's name.
pub fn utc_stamp() -> String {
    Tm::now(true).map_or_else(
        || format!("{}", std::process::id()),
        |t| {
            format!(
                "{}T{:02}{:02}{:02}Z",
                t.date().replace('-', ""),
                t.0.tm_hour,
                t.0.tm_min,
                t.0.tm_sec
            )
        },
    )
}

/// Today's local date, `2026-12-01`: the report's file name.
pub fn local_date() -> String {
    Tm::now(false).map_or_else(|| "undated".into(), |t| t.date())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_have_their_shape() {
        let stamp = utc_stamp();
        assert_eq!(stamp.len(), 16, "{stamp}");
        assert!(stamp.ends_with('Z') && stamp.as_bytes()[8] == b'T');
        assert!(utc_now().ends_with(" UTC"));
        assert_eq!(local_date().len(), 10);
        assert!(!hostname().is_empty());
        assert_eq!(kernel().map(|k| k.split(' ').count()), Some(3));
    }

    #[test]
    fn an_idle_cpus_wait_is_named_with_its_halt_polling() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            idle_wait(s("haltpoll"), s("0")),
            "haltpoll (guest halt polling off)"
        );
        assert_eq!(
            idle_wait(s("haltpoll"), s("200000")),
            "haltpoll (guest halt polling up to 200 µs)"
        );
        assert_eq!(idle_wait(s("intel_idle"), None), "intel_idle");
        assert_eq!(idle_wait(None, s("0")), "?");
        assert_eq!(idle_wait(s(""), None), "?");
    }
}
