//! The open-loop send schedule.
//!
//! Send k is due at `start + k / rate`, whatever happened to sends before it.
//! When the sender wakes late (a stalled server, a busy core), every send that
//! came due meanwhile is handed out at once, each still carrying the time it
//! *should* have gone. Latency is measured from that intended time, so a stall
//! shows up as the latency the players of a real crowd would have seen, not
//! as a politely lower rate (coordinated omission).

use crate::clock::NS_PER_S;

/// A constant-rate sequence of intended send times in `[start_ns, end_ns)`.
#[derive(Debug, Clone)]
pub struct Schedule {
    start_ns: u64,
    end_ns: u64,
    interval_ns: f64,
    next_index: u64,
}

impl Schedule {
    /// A schedule of `rate_per_s` sends per second from `start_ns` (inclusive)
    /// to `end_ns` (exclusive). A rate of zero has no sends.
    pub fn new(rate_per_s: f64, start_ns: u64, end_ns: u64) -> Schedule {
        let interval_ns = if rate_per_s > 0.0 {
            NS_PER_S as f64 / rate_per_s
        } else {
            f64::INFINITY
        };
        Schedule {
            start_ns,
            end_ns,
            interval_ns,
            next_index: 0,
        }
    }

    /// When the next send is due, or `None` when the schedule is over.
    pub fn next_due_ns(&self) -> Option<u64> {
        let offset = self.next_index as f64 * self.interval_ns;
        if !offset.is_finite() {
            return None;
        }
        let due = self.start_ns + offset as u64;
        (due < self.end_ns).then_some(due)
    }

    /// The intended time of the next send if it is due by `now_ns`; advances
    /// the schedule. Call repeatedly to catch up after a late wake-up.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<u64> {
        let due = self.next_due_ns()?;
        if due > now_ns {
            return None;
        }
        self.next_index += 1;
        Some(due)
    }

    /// Like `pop_due`, but also hands out a send due up to `ahead_ns` after
    /// `now_ns`, so that one wake-up can carry the sends of the next few
    /// microseconds. Returns the time the send is to be timed from: its
    /// intended time when that has passed, otherwise `now_ns` (the send goes
    /// early, and is timed from when it actually went, never from a time
    /// still to come). Successive results are strictly increasing, so they
    /// can serve as command ids, and never later than the intended time.
    pub fn pop_due_ahead(&mut self, now_ns: u64, ahead_ns: u64, last_ns: &mut u64) -> Option<u64> {
        let due = self.next_due_ns()?;
        if due > now_ns.saturating_add(ahead_ns) {
            return None;
        }
        self.next_index += 1;
        let at = due.min(now_ns.max(last_ns.saturating_add(1)));
        *last_ns = at;
        Some(at)
    }

    /// How far behind the schedule the sender is at `now_ns` (0 when on time).
    pub fn lag_ns(&self, now_ns: u64) -> u64 {
        self.next_due_ns()
            .map_or(0, |due| now_ns.saturating_sub(due))
    }

    /// How many sends have been handed out.
    pub fn issued(&self) -> u64 {
        self.next_index
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn sends_are_due_at_a_constant_rate() {
        let mut s = Schedule::new(1000.0, 5 * MS, 10 * MS);
        let mut due = Vec::new();
        let mut now = 5 * MS;
        while now < 12 * MS {
            while let Some(t) = s.pop_due(now) {
                due.push(t);
            }
            now += MS / 4;
        }
        assert_eq!(due, vec![5 * MS, 6 * MS, 7 * MS, 8 * MS, 9 * MS]);
        assert_eq!(s.next_due_ns(), None);
    }

    #[test]
    fn fractional_intervals_do_not_drift() {
        let mut s = Schedule::new(3.0, 0, 10 * NS_PER_S);
        let mut n = 0;
        while s.pop_due(10 * NS_PER_S).is_some() {
            n += 1;
        }
        assert_eq!(n, 30);
    }

    #[test]
    fn a_late_sender_catches_up_with_the_original_intended_times() {
        let mut s = Schedule::new(100.0, 0, NS_PER_S);
        assert_eq!(s.pop_due(0), Some(0));
        // The sender stalls for 50 ms: five sends came due meanwhile, and each
        // keeps its own intended time instead of being rescheduled to "now".
        let now = 50 * MS;
        assert_eq!(s.lag_ns(now), 40 * MS);
        let caught_up: Vec<u64> = std::iter::from_fn(|| s.pop_due(now)).collect();
        assert_eq!(caught_up, vec![10 * MS, 20 * MS, 30 * MS, 40 * MS, 50 * MS]);
        assert_eq!(s.lag_ns(now), 0);
        assert_eq!(s.next_due_ns(), Some(60 * MS));
        assert_eq!(s.issued(), 6);
    }

    #[test]
    fn sends_handed_out_ahead_are_timed_from_when_they_go() {
        let mut s = Schedule::new(10_000.0, 0, NS_PER_S); // every 100 µs
        let mut last = 0;
        // Woken at 150 µs with 200 µs of send-ahead: the late ones (0, 100)
        // keep their intended times, the early ones (200, 300) are timed
        // from 150 µs, in increasing order; 400 µs is beyond the horizon.
        let us = 1_000;
        let got: Vec<u64> =
            std::iter::from_fn(|| s.pop_due_ahead(150 * us, 200 * us, &mut last)).collect();
        assert_eq!(got, vec![0, 100 * us, 150 * us, 150 * us + 1]);
        assert_eq!(s.next_due_ns(), Some(400 * us));
        // Never later than intended, never before the wake-up.
        for (i, t) in got.iter().enumerate() {
            assert!(*t <= i as u64 * 100 * us);
        }
        // Without send-ahead it is `pop_due`.
        assert_eq!(s.pop_due_ahead(399 * us, 0, &mut last), None);
        assert_eq!(s.pop_due_ahead(400 * us, 0, &mut last), Some(400 * us));
    }

    #[test]
    fn a_zero_rate_never_sends() {
        let mut s = Schedule::new(0.0, 0, NS_PER_S);
        assert_eq!(s.pop_due(u64::MAX), None);
        assert_eq!(s.lag_ns(u64::MAX), 0);
    }
}
