//! The frames a session was sent, kept after they are written, so that a
//! `resume` can replay every frame after the client's `last_seq` (DESIGN.md
//! §4, and the resume window of §7: 256 frames or 256 KiB by default).
//!
//! `resume` promises every missed frame or a clear "start over"
//! (`resume_failed`), never a partial replay: a client that silently missed a
//! `say` or an `enter` would show a world that is not the one it is in. So
//! `History::since` answers either the whole run of frames after `last_seq`
//! or `Gap`, and nothing in between.

use std::collections::VecDeque;
use std::fmt;

use bytes::Bytes;

pub use crate::config::HistoryBounds;

/// Some frame a resume asked for is not held: dropped to stay within the
/// bounds, or never sent (a `last_seq` newer than the newest frame). The
/// client is told `resume_failed` and logs in afresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap;

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the frames after last_seq are no longer (or were never) all held")
    }
}

impl std::error::Error for Gap {}

/// The bounded history of one session's sequenced frames, oldest first.
///
/// The bodies are the same `Bytes` the fan-out shares among the viewers of a
/// room, so keeping one costs a reference count, not a copy. Only bodies are
/// held: sequence numbers are consecutive, so the oldest one held is
/// `newest_seq - len + 1` and need not be stored beside each frame.
#[derive(Debug, Default)]
pub struct History {
    /// Bodies of frames `newest_seq - len + 1 ..= newest_seq`.
    bodies: VecDeque<Bytes>,
    /// The seq of the last frame pushed, held or not (0: nothing sent yet).
    newest_seq: u64,
    /// Sum of the lengths of `bodies`.
    bytes: usize,
}

impl History {
    /// An empty history. It allocates nothing until the first frame is
    /// pushed, so a session that is never sent anything costs no heap.
    pub fn new() -> History {
        History {
            bodies: VecDeque::new(),
            newest_seq: 0,
            bytes: 0,
        }
    }

    /// Records frame `seq` with its shared `body`, then drops the oldest
    /// frames until the history is within `bounds`.
    ///
    /// Panics if `seq` is not `newest_seq() + 1`: a hole in the sequence
    /// would let `since` replay a run with a frame missing, which is the one
    /// thing resume must never do.
    pub fn push(&mut self, seq: u64, body: Bytes, bounds: HistoryBounds) {
        assert!(
            self.newest_seq.checked_add(1) == Some(seq),
            "history: seq {seq} pushed after {}; seqs must be consecutive",
            self.newest_seq
        );
        self.newest_seq = seq;
        if bounds.frames_max == 0 || body.len() > bounds.bytes_max {
            // The new frame cannot be kept, and every frame before it is now
            // useless: a replay would need this one too.
            self.forget();
            return;
        }
        // Make room before pushing so the deque never grows past frames_max.
        while self.bodies.len() >= bounds.frames_max {
            self.drop_oldest();
        }
        self.bytes += body.len();
        self.bodies.push_back(body);
        // The new frame itself fits (checked above), so this stops before it.
        while self.bytes > bounds.bytes_max {
            self.drop_oldest();
        }
    }

    /// A frame of the sequence that was sent but is not kept: a replay from
    /// before it can no longer be whole, one from it on can.
    pub fn pass(&mut self, seq: u64) {
        assert!(
            self.newest_seq.checked_add(1) == Some(seq),
            "history: seq {seq} passed after {}; seqs must be consecutive",
            self.newest_seq
        );
        self.newest_seq = seq;
        self.forget();
    }

    /// Frames up to `seq` were sent but none of those after `newest_seq()`
    /// kept: a replay from before `seq` can no longer be whole.
    pub fn pass_through(&mut self, seq: u64) {
        if seq > self.newest_seq {
            self.newest_seq = seq;
            self.forget();
        }
    }

    /// Drops the frames up to `seq` (the client has them), giving the memory
    /// back when none are left.
    pub fn trim_through(&mut self, seq: u64) {
        let held = self.bodies.len() as u64;
        let oldest = self.newest_seq + 1 - held;
        let drop = seq.saturating_add(1).saturating_sub(oldest).min(held);
        for _ in 0..drop {
            self.drop_oldest();
        }
        if self.bodies.is_empty() && self.bodies.capacity() > 0 {
            self.forget();
        }
    }

    /// Every frame after `last_seq`, oldest first, with its seq: `Ok` only
    /// when all of them up to the newest are held (none when `last_seq` is
    /// the newest). `Err(Gap)` when one of them was dropped, or when
    /// `last_seq` is newer than anything sent.
    pub fn since(
        &self,
        last_seq: u64,
    ) -> Result<impl ExactSizeIterator<Item = (u64, &Bytes)>, Gap> {
        if last_seq > self.newest_seq {
            return Err(Gap);
        }
        // More missed frames than a usize counts cannot all be held either.
        let missed = usize::try_from(self.newest_seq - last_seq).map_err(|_| Gap)?;
        if missed > self.bodies.len() {
            return Err(Gap);
        }
        let first_seq = last_seq + 1;
        let skip = self.bodies.len() - missed;
        Ok(self
            .bodies
            .range(skip..)
            .enumerate()
            .map(move |(i, body)| (first_seq + i as u64, body)))
    }

    /// Drops every frame held and gives their memory back; the sequence goes
    /// on from `newest_seq()` (a resume from before now is a `Gap`).
    pub fn forget(&mut self) {
        // A new deque rather than `clear`, so the capacity goes too.
        self.bodies = VecDeque::new();
        self.bytes = 0;
    }

    /// The seq of the last frame pushed, held or not (0: nothing sent yet).
    pub fn newest_seq(&self) -> u64 {
        self.newest_seq
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.bodies.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bodies.is_empty()
    }

    /// Body bytes held (shared with other sessions' queues and histories).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn drop_oldest(&mut self) {
        if let Some(body) = self.bodies.pop_front() {
            self.bytes -= body.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(len: usize, fill: u8) -> Bytes {
        Bytes::from(vec![fill; len])
    }

    fn bounds(frames_max: usize, bytes_max: usize) -> HistoryBounds {
        HistoryBounds {
            frames_max,
            bytes_max,
        }
    }

    /// Pushes frames `newest+1 ..= newest+count`, each `len` bytes filled
    /// with its seq (mod 256), so a replay can be checked frame by frame.
    fn push_frames(h: &mut History, count: u64, len: usize, b: HistoryBounds) {
        for _ in 0..count {
            let seq = h.newest_seq() + 1;
            h.push(seq, body(len, seq as u8), b);
        }
    }

    fn replayed(h: &History, last_seq: u64) -> Result<Vec<(u64, Bytes)>, Gap> {
        h.since(last_seq)
            .map(|frames| frames.map(|(seq, b)| (seq, b.clone())).collect())
    }

    #[test]
    fn a_session_sent_nothing_holds_no_heap_and_resumes_from_zero() {
        let h = History::new();
        assert_eq!(h.bodies.capacity(), 0);
        assert_eq!((h.len(), h.bytes(), h.newest_seq()), (0, 0, 0));
        assert!(h.is_empty());
        assert_eq!(replayed(&h, 0), Ok(vec![]));
        assert_eq!(History::default().bodies.capacity(), 0);
    }

    #[test]
    fn the_oldest_frames_go_past_frames_max() {
        let b = bounds(4, 1 << 20);
        let mut h = History::new();
        push_frames(&mut h, 10, 100, b);
        assert_eq!(h.len(), 4);
        assert_eq!(h.bytes(), 400);
        assert_eq!(h.newest_seq(), 10);
        let seqs: Vec<u64> = h.since(6).expect("held").map(|(seq, _)| seq).collect();
        assert_eq!(seqs, vec![7, 8, 9, 10]);
        assert_eq!(replayed(&h, 5), Err(Gap));
    }

    #[test]
    fn the_oldest_frames_go_past_bytes_max() {
        let b = bounds(1000, 1000);
        let mut h = History::new();
        push_frames(&mut h, 10, 300, b);
        // 3 × 300 fit in 1000 bytes; a fourth would not.
        assert_eq!(h.len(), 3);
        assert_eq!(h.bytes(), 900);
        assert!(replayed(&h, 7).is_ok());
        assert_eq!(replayed(&h, 6), Err(Gap));
        // A small frame lets the byte bound keep one more.
        h.push(11, body(50, 11), b);
        assert_eq!((h.len(), h.bytes()), (4, 950));
    }

    #[test]
    fn a_frame_over_bytes_max_is_not_kept_and_nothing_before_it_replays() {
        let b = bounds(256, 1000);
        let mut h = History::new();
        push_frames(&mut h, 3, 100, b);
        h.push(4, body(1001, 4), b);
        assert_eq!((h.len(), h.bytes(), h.newest_seq()), (0, 0, 4));
        assert_eq!(h.bodies.capacity(), 0, "memory given back");
        assert_eq!(replayed(&h, 3), Err(Gap));
        assert_eq!(replayed(&h, 0), Err(Gap));
        // A client that got frame 4 misses nothing.
        assert_eq!(replayed(&h, 4), Ok(vec![]));
        // Later frames are kept again.
        h.push(5, body(10, 5), b);
        assert_eq!(replayed(&h, 4), Ok(vec![(5, body(10, 5))]));
        assert_eq!(replayed(&h, 3), Err(Gap));
    }

    #[test]
    fn a_frame_of_exactly_bytes_max_is_kept_alone() {
        let b = bounds(256, 1000);
        let mut h = History::new();
        push_frames(&mut h, 3, 100, b);
        h.push(4, body(1000, 4), b);
        assert_eq!((h.len(), h.bytes()), (1, 1000));
        assert_eq!(replayed(&h, 3), Ok(vec![(4, body(1000, 4))]));
    }

    #[test]
    fn a_replay_is_every_frame_after_last_seq_in_order_with_the_same_bodies() {
        let b = HistoryBounds::DEFAULT;
        let mut h = History::new();
        let sent: Vec<Bytes> = (1..=20u8).map(|i| body(i as usize * 7, i)).collect();
        for (i, frame) in sent.iter().enumerate() {
            h.push(i as u64 + 1, frame.clone(), b);
        }
        for last_seq in 0..=20u64 {
            let frames = h.since(last_seq).expect("all held");
            assert_eq!(frames.len(), (20 - last_seq) as usize);
            let mut expected_seq = last_seq + 1;
            for (seq, replayed) in frames {
                assert_eq!(seq, expected_seq);
                let original = &sent[seq as usize - 1];
                assert_eq!(replayed, original);
                // The very same buffer, not a copy.
                assert_eq!(replayed.as_ptr(), original.as_ptr());
                expected_seq += 1;
            }
            assert_eq!(expected_seq, 21);
        }
    }

    #[test]
    fn a_last_seq_newer_than_anything_sent_is_a_gap() {
        let mut h = History::new();
        assert_eq!(replayed(&h, 1), Err(Gap));
        push_frames(&mut h, 5, 10, HistoryBounds::DEFAULT);
        assert_eq!(replayed(&h, 6), Err(Gap));
        assert_eq!(replayed(&h, u64::MAX), Err(Gap));
        assert_eq!(replayed(&h, 5), Ok(vec![]));
    }

    #[test]
    fn forget_gives_memory_back_and_the_sequence_goes_on() {
        let b = HistoryBounds::DEFAULT;
        let mut h = History::new();
        push_frames(&mut h, 100, 10, b);
        h.forget();
        assert_eq!((h.len(), h.bytes(), h.newest_seq()), (0, 0, 100));
        assert_eq!(h.bodies.capacity(), 0);
        assert_eq!(replayed(&h, 99), Err(Gap));
        assert_eq!(replayed(&h, 100), Ok(vec![]));
        h.push(101, body(1, 1), b);
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn no_frames_kept_when_frames_max_is_zero() {
        let b = bounds(0, 1 << 20);
        let mut h = History::new();
        push_frames(&mut h, 3, 10, b);
        assert_eq!((h.len(), h.newest_seq()), (0, 3));
        assert_eq!(h.bodies.capacity(), 0);
        assert_eq!(replayed(&h, 2), Err(Gap));
        assert_eq!(replayed(&h, 3), Ok(vec![]));
    }

    #[test]
    fn the_deque_never_grows_past_frames_max() {
        let b = bounds(256, 1 << 30);
        let mut h = History::new();
        push_frames(&mut h, 1000, 1, b);
        assert_eq!(h.len(), 256);
        assert!(h.bodies.capacity() < 512, "{}", h.bodies.capacity());
    }

    #[test]
    #[should_panic(expected = "seqs must be consecutive")]
    fn a_skipped_seq_panics() {
        let mut h = History::new();
        h.push(1, body(1, 1), HistoryBounds::DEFAULT);
        h.push(3, body(1, 3), HistoryBounds::DEFAULT);
    }

    #[test]
    #[should_panic(expected = "seqs must be consecutive")]
    fn a_repeated_seq_panics() {
        let mut h = History::new();
        h.push(1, body(1, 1), HistoryBounds::DEFAULT);
        h.push(1, body(1, 1), HistoryBounds::DEFAULT);
    }

    #[test]
    #[should_panic(expected = "seqs must be consecutive")]
    fn the_first_seq_is_one() {
        let mut h = History::new();
        h.push(0, body(1, 0), HistoryBounds::DEFAULT);
    }
}
