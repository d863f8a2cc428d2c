//! One connection to Redis and how it is made again: a timeout on every
//! connect, read and write (a Redis that accepts and then stays silent must
//! not hold a thread), and exponential backoff with jitter between attempts,
//! so that hosts losing Redis together do not come back in lockstep.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// First wait after a failure.
pub const BACKOFF_MIN_MS: u64 = 100;
/// Longest wait between attempts.
pub const BACKOFF_MAX_MS: u64 = 5000;
/// Connect, read and write timeout on a link: a request that takes longer
/// opens the breaker.
pub const IO_TIMEOUT_MS: u64 = 1000;

/// Opens a connection with every timeout set.
pub fn connect(url: &str) -> redis::RedisResult<redis::Connection> {
    let client = redis::Client::open(url)?;
    let timeout = Duration::from_millis(IO_TIMEOUT_MS);
    let con = client.get_connection_with_timeout(timeout)?;
    con.set_read_timeout(Some(timeout))?;
    con.set_write_timeout(Some(timeout))?;
    Ok(con)
}

/// Exponential backoff with jitter: each wait is drawn between half and all
/// of a ceiling that doubles from [`BACKOFF_MIN_MS`] to [`BACKOFF_MAX_MS`].
pub struct Backoff {
    ceiling_ms: u64,
    rng: u64,
}

impl Backoff {
    pub fn new(seed: u64) -> Backoff {
        Backoff {
            ceiling_ms: BACKOFF_MIN_MS,
            // xorshift must not start at zero.
            rng: seed | 1,
        }
    }

    /// The connection worked: the next failure starts from the shortest wait.
    pub fn reset(&mut self) {
        self.ceiling_ms = BACKOFF_MIN_MS;
    }

    /// The next wait, and the ceiling doubled for the one after.
    pub fn next_wait(&mut self) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = self.ceiling_ms / 2;
        let wait = half + self.rng % (self.ceiling_ms - half + 1);
        self.ceiling_ms = (self.ceiling_ms * 2).min(BACKOFF_MAX_MS);
        Duration::from_millis(wait)
    }

    /// Sleeps for the next wait, in ticks, returning early when `stop` is set.
    pub fn sleep(&mut self, stop: &AtomicBool) {
        let until = Instant::now() + self.next_wait();
        while !stop.load(Ordering::Relaxed) {
            let now = Instant::now();
            if now >= until {
                return;
            }
            std::thread::sleep((until - now).min(super::tick()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_to_the_ceiling_with_jitter_and_reset_to_the_floor() {
        let mut b = Backoff::new(42);
        let mut last_ceiling = 0;
        for _ in 0..20 {
            let before = b.ceiling_ms;
            let wait = b.next_wait().as_millis() as u64;
            assert!(
                wait >= before / 2 && wait <= before,
                "{wait} within {before}"
            );
            assert!(before >= last_ceiling);
            last_ceiling = before;
        }
        assert_eq!(b.ceiling_ms, BACKOFF_MAX_MS);
        b.reset();
        assert!(b.next_wait().as_millis() as u64 <= BACKOFF_MIN_MS);
    }

    #[test]
    fn two_hosts_seeded_differently_do_not_wait_in_lockstep() {
        let (mut a, mut b) = (Backoff::new(1), Backoff::new(2));
        let same = (0..10).filter(|_| a.next_wait() == b.next_wait()).count();
        assert!(same < 10);
    }
}
