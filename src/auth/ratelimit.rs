//! The limit on failed login and register attempts: 5 a minute per name and
//! per client address (DESIGN.md §7). Only failures count, so a player who
//! types the password right is never slowed down.
//!
//! Each tracked key keeps the instants of its last `failures_max` failures (a
//! sliding window). One limiter serves all shards of a host behind a single
//! `Mutex` in an `Arc`: logins are rare next to game commands and the critical
//! section is a couple of hash lookups, so a lock is simpler than routing
//! every attempt to an owning shard, and it is off the hot path.

use crate::config::AuthSettings;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bounds of the limiter.
#[derive(Debug, Clone)]
pub struct LoginLimitConfig {
    /// Failed attempts allowed per name and per address inside the window.
    pub failures_max: usize,
    /// Length of the sliding window.
    pub window_s: u64,
    /// Most names plus addresses tracked at once. When full, expired entries
    /// are dropped, then (under a spray from very many keys) the eighth whose
    /// latest failure is oldest: memory stays bounded at the price of
    /// forgetting the stalest attackers first.
    pub tracked_keys_max: usize,
}

/// Most names plus addresses the limiter tracks by default.
pub const TRACKED_KEYS_MAX_DEFAULT: usize = 65_536;

impl LoginLimitConfig {
    /// The limits the configuration names.
    pub fn from_settings(settings: &AuthSettings) -> LoginLimitConfig {
        LoginLimitConfig {
            failures_max: settings.login_failures_max,
            window_s: settings.login_window_s,
            tracked_keys_max: TRACKED_KEYS_MAX_DEFAULT,
        }
    }
}

impl Default for LoginLimitConfig {
    /// The configuration's defaults (`config::AuthSettings`).
    fn default() -> LoginLimitConfig {
        LoginLimitConfig::from_settings(&AuthSettings::default())
    }
}

/// The attempt is refused; the client may try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter {
    pub after_s: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Name(String),
    Address(IpAddr),
}

/// What an attempt counts against: the name (when it has one) and the address.
fn keys(name_key: &str, ip: IpAddr) -> Vec<Key> {
    let mut keys = Vec::with_capacity(2);
    if !name_key.is_empty() {
        keys.push(Key::Name(name_key.to_owned()));
    }
    keys.push(address_key(ip));
    keys
}

/// Limits failed login/register attempts per name and per client address.
/// Share one per host (`Arc<LoginLimiter>`); `now` is passed in so tests and
/// callers control time.
pub struct LoginLimiter {
    cfg: LoginLimitConfig,
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl LoginLimiter {
    /// An empty limiter.
    pub fn new(cfg: LoginLimitConfig) -> LoginLimiter {
        assert!(cfg.failures_max > 0 && cfg.tracked_keys_max > 0 && cfg.window_s > 0);
        LoginLimiter {
            cfg,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether an attempt for `name_key` from `ip` may go ahead at `now`.
    /// Check before hashing: a refused attempt costs no argon2 work.
    pub fn check(&self, name_key: &str, ip: IpAddr, now: Instant) -> Result<(), RetryAfter> {
        let failures = self.lock();
        let wait_s = keys(name_key, ip)
            .iter()
            .filter_map(|key| self.wait_s(failures.get(key)?, now))
            .max();
        match wait_s {
            Some(after_s) => Err(RetryAfter { after_s }),
            None => Ok(()),
        }
    }

    /// Counts a failed attempt (bad password, unknown name, name taken, …)
    /// against both the name and the address; an empty `name_key` (an
    /// attempt that names nothing readable, such as a garbled token) only
    /// against the address, so that strangers' garbage does not lock out
    /// everyone else.
    pub fn record_failure(&self, name_key: &str, ip: IpAddr, now: Instant) {
        let mut failures = self.lock();
        for key in keys(name_key, ip) {
            if !failures.contains_key(&key) && failures.len() >= self.cfg.tracked_keys_max {
                self.make_room(&mut failures, now);
            }
            let times = failures.entry(key).or_default();
            times.push_back(now);
            while times.len() > self.cfg.failures_max {
                times.pop_front();
            }
        }
    }

    /// Names plus addresses tracked now (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.lock().len()
    }

    /// A poisoned lock only means another thread panicked mid-update of a
    /// counter; the map is still usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, VecDeque<Instant>>> {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.cfg.window_s)
    }

    /// Seconds until the oldest failure leaves the window, if the key is at
    /// its limit now.
    fn wait_s(&self, times: &VecDeque<Instant>, now: Instant) -> Option<u64> {
        let recent = times
            .iter()
            .filter(|t| now.saturating_duration_since(**t) < self.window())
            .count();
        if recent < self.cfg.failures_max {
            return None;
        }
        let oldest = times.iter().rev().nth(self.cfg.failures_max - 1)?;
        let left = self
            .window()
            .saturating_sub(now.saturating_duration_since(*oldest));
        Some(left.as_secs() + u64::from(left.subsec_nanos() > 0))
    }

    fn make_room(&self, failures: &mut HashMap<Key, VecDeque<Instant>>, now: Instant) {
        let window = self.window();
        failures.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.saturating_duration_since(*t) < window)
        });
        if failures.len() < self.cfg.tracked_keys_max {
            return;
        }
        let mut latest: Vec<Instant> = failures
            .values()
            .filter_map(|times| times.back().copied())
            .collect();
        let evict = (self.cfg.tracked_keys_max / 8).max(1);
        let (_, cutoff, _) = latest.select_nth_unstable(evict - 1);
        let cutoff = *cutoff;
        failures.retain(|_, times| times.back().is_some_and(|t| *t > cutoff));
        tracing::warn!(
            tracked = failures.len(),
            "login limiter full of live entries; forgot the stalest"
        );
    }
}

/// IPv6 clients are keyed by their /64: one host usually owns a whole /64,
/// and could otherwise rotate through its addresses to dodge the limit.
fn address_key(ip: IpAddr) -> Key {
    match ip {
        IpAddr::V4(_) => Key::Address(ip),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            Key::Address(IpAddr::V6(prefix.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn five_failures_for_one_name_block_it_from_every_address_until_the_window_passes() {
        let limiter = LoginLimiter::new(LoginLimitConfig::default());
        let t0 = Instant::now();
        for i in 0..5u8 {
            assert_eq!(limiter.check("bob", ip(i), t0 + secs(u64::from(i))), Ok(()));
            limiter.record_failure("bob", ip(i), t0 + secs(u64::from(i)));
        }
        assert_eq!(
            limiter.check("bob", ip(99), t0 + secs(10)),
            Err(RetryAfter { after_s: 50 })
        );
        assert_eq!(
            limiter.check("alice", ip(99), t0 + secs(10)),
            Ok(()),
            "other names are free"
        );
        // The first failure (t0) leaves the window at t0 + 60.
        assert_eq!(limiter.check("bob", ip(99), t0 + secs(60)), Ok(()));
    }

    #[test]
    fn attempts_that_name_nothing_count_against_their_address_alone() {
        let limiter = LoginLimiter::new(LoginLimitConfig::default());
        let t0 = Instant::now();
        for i in 0..5u8 {
            limiter.record_failure("", ip(i), t0);
        }
        assert_eq!(limiter.check("", ip(99), t0), Ok(()), "a new address");
        for _ in 0..5 {
            limiter.record_failure("", ip(7), t0);
        }
        assert_eq!(
            limiter.check("", ip(7), t0 + secs(1)),
            Err(RetryAfter { after_s: 59 })
        );
    }

    #[test]
    fn five_failures_from_one_address_block_it_for_every_name() {
        let limiter = LoginLimiter::new(LoginLimitConfig::default());
        let t0 = Instant::now();
        for name in ["a1", "a2", "a3", "a4", "a5"] {
            limiter.record_failure(name, ip(1), t0);
        }
        assert_eq!(
            limiter.check("zed", ip(1), t0 + secs(1)),
            Err(RetryAfter { after_s: 59 })
        );
        assert_eq!(
            limiter.check("zed", ip(2), t0 + secs(1)),
            Ok(()),
            "other addresses are free"
        );
        assert_eq!(limiter.check("zed", ip(1), t0 + secs(61)), Ok(()));
    }

    #[test]
    fn four_failures_are_allowed_and_old_ones_slide_out() {
        let limiter = LoginLimiter::new(LoginLimitConfig::default());
        let t0 = Instant::now();
        for i in 0..4 {
            limiter.record_failure("bob", ip(1), t0 + secs(i * 20));
        }
        assert_eq!(limiter.check("bob", ip(1), t0 + secs(61)), Ok(()));
        limiter.record_failure("bob", ip(1), t0 + secs(61));
        // Failures at 20, 40, 60, 61 are inside [2 s, 62 s): four, allowed.
        assert_eq!(limiter.check("bob", ip(1), t0 + secs(62)), Ok(()));
        limiter.record_failure("bob", ip(1), t0 + secs(62));
        assert_eq!(
            limiter.check("bob", ip(1), t0 + secs(63)),
            Err(RetryAfter { after_s: 17 })
        );
    }

    #[test]
    fn ipv6_addresses_of_one_slash_64_share_a_limit() {
        let limiter = LoginLimiter::new(LoginLimitConfig::default());
        let t0 = Instant::now();
        for i in 0..5u16 {
            let addr = IpAddr::from([0x2001, 0xdb8, 0, 1, i, i, i, i]);
            limiter.record_failure(&format!("n{i}"), addr, t0);
        }
        let sibling = IpAddr::from([0x2001, 0xdb8, 0, 1, 9, 9, 9, 9]);
        assert!(limiter.check("fresh", sibling, t0).is_err());
        let neighbour = IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]);
        assert_eq!(limiter.check("fresh", neighbour, t0), Ok(()));
    }

    #[test]
    fn memory_stays_bounded_under_a_spray_of_names_and_addresses() {
        let cfg = LoginLimitConfig {
            tracked_keys_max: 64,
            ..LoginLimitConfig::default()
        };
        let limiter = LoginLimiter::new(cfg);
        let t0 = Instant::now();
        for i in 0..10_000u32 {
            let addr = IpAddr::from(i.to_be_bytes());
            limiter.record_failure(
                &format!("name{i}"),
                addr,
                t0 + Duration::from_millis(u64::from(i)),
            );
            assert!(limiter.tracked_keys() <= 64);
        }
        // Expired entries go first once the window has passed.
        limiter.record_failure("late", ip(1), t0 + secs(1000));
        assert_eq!(limiter.tracked_keys(), 2);
    }
}
