//! The one clock every figure is taken with.
//!
//! `CLOCK_MONOTONIC` is shared by every process on a machine, so a say stamped
//! by one loadgen process can be timed when another one receives it.

/// Nanoseconds on `CLOCK_MONOTONIC`.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists
    // on Linux, so the call cannot fail.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Nanoseconds per second, for conversions.
pub const NS_PER_S: u64 = 1_000_000_000;

/// Converts seconds (possibly fractional) into nanoseconds.
pub fn secs_to_ns(secs: f64) -> u64 {
    (secs * NS_PER_S as f64) as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_clock_moves_forward() {
        let a = super::now_ns();
        let b = super::now_ns();
        assert!(b >= a && a > 0);
    }
}
