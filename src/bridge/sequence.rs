//! Exactly once and in order, per source host and channel, over a pub/sub
//! that loses whatever is published while a subscriber is away.
//!
//! Every envelope carries its source's boot epoch and a sequence number per
//! destination. The receiver delivers an envelope only when it is the next
//! one ([`Receipts`]), drops duplicates, and holds back (drops) one that
//! comes after a gap. It publishes what it has received in its heartbeat;
//! the source keeps what it sent until that acknowledgement ([`Retained`])
//! and publishes again what is still unacknowledged after a heartbeat or two
//! — so an envelope lost while the receiver reconnected arrives late, but
//! arrives, and in its place. What cannot be recovered (the source no longer
//! holds it, or restarted) is skipped after [`GAP_GIVE_UP_MS`] and counted.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How long a receiver waits for the envelopes of a gap to be sent again
/// before it skips them (they are counted as lost).
pub const GAP_GIVE_UP_MS: u64 = 5000;

/// Envelopes a source keeps per destination until acknowledged.
pub const RETAINED_ENVELOPES_MAX: usize = 4096;
/// Bytes of them.
pub const RETAINED_BYTES_MAX: usize = 16 * 1024 * 1024;

/// What to do with an envelope that has arrived.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The next one: deliver it.
    Deliver,
    /// Seen already (a resend): drop it.
    Duplicate,
    /// Envelopes before it are missing: drop it and wait for them.
    Gap,
    /// The gap was waited for long enough: deliver this one and count the
    /// `lost` envelopes skipped.
    Skip { lost: u64 },
    /// Numbered for another run of this host, or before the source knew
    /// this run: deliver it as it comes (its numbers mean nothing here).
    Unnumbered,
}

/// The receiver's side: per source host and channel (inbox or global), the
/// source's boot epoch and the last sequence number delivered in order.
#[derive(Default)]
pub struct Receipts {
    last: HashMap<(u16, bool), Receipt>,
}

struct Receipt {
    epoch: u64,
    seq: u64,
    gap_since: Option<Instant>,
}

impl Receipts {
    /// `accept` for an inbox envelope numbered for run `dest_epoch` of this
    /// host, which is in run `my_epoch`.
    pub fn accept_inbox(
        &mut self,
        source: u16,
        epoch: u64,
        dest_epoch: u64,
        my_epoch: u64,
        seq: u64,
        now: Instant,
    ) -> Verdict {
        if dest_epoch != my_epoch {
            return Verdict::Unnumbered;
        }
        self.accept(source, false, epoch, seq, now)
    }

    /// Records envelope `seq` of `source` (run `epoch`) on the inbox or the
    /// global channel; what to do with it.
    pub fn accept(
        &mut self,
        source: u16,
        global: bool,
        epoch: u64,
        seq: u64,
        now: Instant,
    ) -> Verdict {
        // The global channel's numbers are shared by every receiver: one
        // that starts, or meets a restarted source, joins the stream where
        // it finds it. An inbox's numbers start at 1 for each receiver.
        let first = if global { seq.saturating_sub(1) } else { 0 };
        let r = self.last.entry((source, global)).or_insert(Receipt {
            epoch,
            seq: first,
            gap_since: None,
        });
        if r.epoch != epoch {
            *r = Receipt {
                epoch,
                seq: first,
                gap_since: None,
            };
        }
        if seq <= r.seq {
            return Verdict::Duplicate;
        }
        if seq == r.seq + 1 {
            r.seq = seq;
            r.gap_since = None;
            return Verdict::Deliver;
        }
        let since = *r.gap_since.get_or_insert(now);
        if now.duration_since(since) < Duration::from_millis(GAP_GIVE_UP_MS) {
            return Verdict::Gap;
        }
        let lost = seq - r.seq - 1;
        r.seq = seq;
        r.gap_since = None;
        Verdict::Skip { lost }
    }

    /// `source.channel.epoch.seq` for each, comma-separated: the heartbeat's
    /// acknowledgements (`i` inbox, `g` global).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for ((source, global), r) in &self.last {
            if !out.is_empty() {
                out.push(',');
            }
            let channel = if *global { 'g' } else { 'i' };
            out.push_str(&format!("{source}.{channel}.{}.{}", r.epoch, r.seq));
        }
        out
    }
}

/// From a peer's heartbeat acknowledgements: the last envelope of `me`
/// (boot epoch `epoch`) on the inbox or global channel it has in order.
pub fn acked(acks: &str, me: u16, global: bool, epoch: u64) -> u64 {
    let channel = if global { "g" } else { "i" };
    acks.split(',')
        .filter_map(|a| {
            let mut p = a.split('.');
            let (source, ch, ep, seq) = (p.next()?, p.next()?, p.next()?, p.next()?);
            (source.parse::<u16>().ok()? == me && ch == channel && ep.parse::<u64>().ok()? == epoch)
                .then(|| seq.parse::<u64>().ok())
                .flatten()
        })
        .next()
        .unwrap_or(0)
}

/// The source's side, for one destination: what it sent and the receiver
/// has not acknowledged yet.
#[derive(Default)]
pub struct Retained {
    sent: VecDeque<Sent>,
    bytes: usize,
    /// Envelopes let go unacknowledged because the bounds were reached.
    pub overflowed: u64,
}

struct Sent {
    seq: u64,
    bytes: bytes::Bytes,
    at: Instant,
}

impl Retained {
    /// Envelopes kept, not yet acknowledged.
    pub fn kept(&self) -> usize {
        self.sent.len()
    }

    pub fn keep(&mut self, seq: u64, bytes: bytes::Bytes, now: Instant) {
        self.bytes += bytes.len();
        self.sent.push_back(Sent {
            seq,
            bytes,
            at: now,
        });
        while self.sent.len() > RETAINED_ENVELOPES_MAX || self.bytes > RETAINED_BYTES_MAX {
            if let Some(old) = self.sent.pop_front() {
                self.bytes -= old.bytes.len();
                self.overflowed += 1;
            }
        }
    }

    /// Forgets what the receiver has, and returns what it still lacks when
    /// the oldest of that was sent more than `after` ago (stamped as sent
    /// again now).
    pub fn due(&mut self, acked: u64, after: Duration, now: Instant) -> Vec<bytes::Bytes> {
        while self.sent.front().is_some_and(|s| s.seq <= acked) {
            if let Some(s) = self.sent.pop_front() {
                self.bytes -= s.bytes.len();
            }
        }
        let stale = self
            .sent
            .front()
            .is_some_and(|s| now.duration_since(s.at) > after);
        if !stale {
            return Vec::new();
        }
        self.sent
            .iter_mut()
            .map(|s| {
                s.at = now;
                s.bytes.clone()
            })
            .collect()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.sent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_is_delivered_duplicates_dropped_and_a_gap_waits_for_the_resend() {
        let mut r = Receipts::default();
        let t = Instant::now();
        assert_eq!(r.accept(1, false, 7, 1, t), Verdict::Deliver);
        assert_eq!(r.accept(1, false, 7, 1, t), Verdict::Duplicate);
        assert_eq!(r.accept(1, false, 7, 3, t), Verdict::Gap);
        assert_eq!(r.accept(1, false, 7, 2, t), Verdict::Deliver, "the resend");
        assert_eq!(r.accept(1, false, 7, 3, t), Verdict::Deliver);
        assert_eq!(
            r.accept(1, true, 7, 5, t),
            Verdict::Deliver,
            "global: joined where found"
        );
        assert_eq!(r.accept(1, true, 7, 7, t), Verdict::Gap);
        assert_eq!(
            r.accept(1, false, 8, 1, t),
            Verdict::Deliver,
            "a restart starts over"
        );
    }

    #[test]
    fn an_envelope_numbered_for_another_run_is_delivered_outside_the_order() {
        let mut r = Receipts::default();
        let t = Instant::now();
        assert_eq!(r.accept_inbox(1, 7, 0, 9, 40, t), Verdict::Unnumbered);
        assert_eq!(r.accept_inbox(1, 7, 8, 9, 41, t), Verdict::Unnumbered);
        assert_eq!(r.accept_inbox(1, 7, 9, 9, 1, t), Verdict::Deliver);
        assert_eq!(r.accept_inbox(1, 7, 9, 9, 1, t), Verdict::Duplicate);
    }

    #[test]
    fn a_gap_nobody_fills_is_skipped_after_the_give_up_time() {
        let mut r = Receipts::default();
        let t = Instant::now();
        assert_eq!(r.accept(2, false, 1, 1, t), Verdict::Deliver);
        assert_eq!(r.accept(2, false, 1, 5, t), Verdict::Gap);
        let later = t + Duration::from_millis(GAP_GIVE_UP_MS + 1);
        assert_eq!(r.accept(2, false, 1, 6, later), Verdict::Skip { lost: 4 });
        assert_eq!(r.accept(2, false, 1, 7, later), Verdict::Deliver);
    }

    #[test]
    fn acknowledgements_round_trip_through_the_heartbeat_text() {
        let mut r = Receipts::default();
        let t = Instant::now();
        r.accept(0, false, 9, 1, t);
        r.accept(0, false, 9, 2, t);
        r.accept(0, true, 9, 1, t);
        r.accept(3, false, 4, 1, t);
        let text = r.render();
        assert_eq!(acked(&text, 0, false, 9), 2);
        assert_eq!(acked(&text, 0, true, 9), 1);
        assert_eq!(acked(&text, 0, false, 8), 0, "another run of host 0");
        assert_eq!(acked(&text, 1, false, 9), 0);
        assert_eq!(acked("", 0, false, 9), 0);
        assert_eq!(acked("junk,0.i.x.1", 0, false, 9), 0);
    }

    #[test]
    fn retained_envelopes_are_resent_once_stale_and_let_go_once_acked() {
        let mut k = Retained::default();
        let t = Instant::now();
        for seq in 1..=3 {
            k.keep(seq, bytes::Bytes::from(vec![seq as u8]), t);
        }
        let after = Duration::from_millis(100);
        assert!(k.due(1, after, t).is_empty(), "not stale yet");
        assert_eq!(k.len(), 2);
        let later = t + Duration::from_millis(150);
        let again = k.due(1, after, later);
        assert_eq!(
            again,
            [bytes::Bytes::from(vec![2u8]), bytes::Bytes::from(vec![3u8])]
        );
        assert!(k.due(1, after, later).is_empty(), "stamped as sent again");
        assert!(k.due(3, after, later + after * 3).is_empty());
        assert_eq!(k.len(), 0);
    }
}
