//! `floor --hiccups`: how often this machine takes the CPU away from a
//! thread that never sleeps. One thread per online CPU, pinned, reads the
//! monotonic clock in a loop; any gap between two reads longer than
//! `GAP_MIN` is time the thread did not run (the hypervisor ran someone
//! else, an interrupt, another process). A request in flight during such a
//! gap waits it out whatever the server does, so the share of time lost in
//! gaps of a few milliseconds bounds how low a p99 can go on this machine.

use std::time::{Duration, Instant};

/// Gaps shorter than this are the loop's own noise.
const GAP_MIN: Duration = Duration::from_micros(50);

/// What one pinned spinning thread saw.
#[derive(Debug, Clone, Default)]
pub struct CpuHiccups {
    pub cpu: usize,
    pub elapsed_s: f64,
    /// Time lost in gaps longer than `GAP_MIN`, s.
    pub lost_s: f64,
    /// Time lost in gaps of 1 ms or more, s.
    pub lost_over_1ms_s: f64,
    pub gaps_over_1ms: u64,
    pub gaps_over_2ms: u64,
    pub longest_ms: f64,
}

/// Spins on `cpu` for `seconds` and reports the gaps.
pub fn spin(cpu: usize, seconds: f64) -> std::io::Result<CpuHiccups> {
    crate::cores::pin(cpu)?;
    let window = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut last = start;
    let mut h = CpuHiccups {
        cpu,
        ..CpuHiccups::default()
    };
    loop {
        let now = Instant::now();
        let gap = now - last;
        last = now;
        if gap >= GAP_MIN {
            let s = gap.as_secs_f64();
            h.lost_s += s;
            if gap >= Duration::from_millis(1) {
                h.lost_over_1ms_s += s;
                h.gaps_over_1ms += 1;
            }
            if gap >= Duration::from_millis(2) {
                h.gaps_over_2ms += 1;
            }
            h.longest_ms = h.longest_ms.max(s * 1e3);
        }
        if now - start >= window {
            h.elapsed_s = (now - start).as_secs_f64();
            return Ok(h);
        }
    }
}

/// Spins on every online CPU at once.
pub fn spin_all(seconds: f64) -> std::io::Result<Vec<CpuHiccups>> {
    // SAFETY: sysconf has no preconditions.
    let cpus = usize::try_from(unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) })
        .unwrap_or(1)
        .max(1);
    let threads: Vec<_> = (0..cpus)
        .map(|cpu| std::thread::spawn(move || spin(cpu, seconds)))
        .collect();
    threads
        .into_iter()
        .map(|t| {
            t.join()
                .map_err(|_| std::io::Error::other("a spinning thread panicked"))?
        })
        .collect()
}

pub fn print(all: &[CpuHiccups]) {
    for h in all {
        println!(
            "hiccups: cpu {}: {:.2}% of {:.1} s lost ({:.2}% in gaps ≥ 1 ms); gaps ≥ 1 ms: {}, ≥ 2 ms: {}; longest {:.2} ms",
            h.cpu,
            h.lost_s * 100.0 / h.elapsed_s,
            h.elapsed_s,
            h.lost_over_1ms_s * 100.0 / h.elapsed_s,
            h.gaps_over_1ms,
            h.gaps_over_2ms,
            h.longest_ms
        );
    }
}

pub fn to_json(all: &[CpuHiccups]) -> serde_json::Value {
    serde_json::Value::Array(
        all.iter()
            .map(|h| {
                serde_json::json!({
                    "cpu": h.cpu,
                    "elapsed_s": h.elapsed_s,
                    "lost_pct": h.lost_s * 100.0 / h.elapsed_s,
                    "lost_in_gaps_over_1ms_pct": h.lost_over_1ms_s * 100.0 / h.elapsed_s,
                    "gaps_over_1ms": h.gaps_over_1ms,
                    "gaps_over_2ms": h.gaps_over_2ms,
                    "longest_ms": h.longest_ms,
                })
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_spin_accounts_for_its_time() {
        let h = spin(0, 0.05).expect("cpu 0 exists");
        assert!(h.elapsed_s >= 0.05);
        assert!(h.lost_s >= h.lost_over_1ms_s && h.lost_s <= h.elapsed_s);
        assert!(h.gaps_over_1ms >= h.gaps_over_2ms);
    }
}
