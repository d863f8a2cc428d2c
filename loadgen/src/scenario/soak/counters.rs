//! What the soak's own parts count (droppers, slow readers, abusers), per
//! worker thread, added up at the end. Chatters, walkers and churn are
//! counted by the common `Counters` as in their own scenarios.
//!
//! Unlike the common counters these cover the whole run, warm-up included:
//! a gap or a leak is a fault whenever it happens.

use serde::{Deserialize, Serialize};

/// Notes kept about unexpected outcomes, per run: enough to start looking.
pub const NOTES_MAX: usize = 8;

/// See the module doc.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SoakCounters {
    /// Droppers' sockets cut without a close frame.
    pub drops: u64,
    /// Droppers' resumes answered `resumed`.
    pub resumes: u64,
    /// Droppers' resumes answered `resume_failed` (an error: a dropper is
    /// away for far less than the window and misses little).
    pub resumes_failed: u64,
    /// Resumes (droppers' and slow readers') without a clear answer in
    /// `--connect-timeout`, or whose connection failed.
    pub resume_errors: u64,
    /// Frames `resumed` announced, droppers and slow readers together.
    pub replayed_frames: u64,
    /// Frames of droppers and slow readers whose `seq` skipped ahead.
    pub seq_gaps: u64,
    /// Frames of droppers and slow readers whose `seq` was already seen.
    pub seq_duplicates: u64,
    /// Fresh logins of droppers and slow readers that failed.
    pub logins_failed: u64,
    /// Droppers' and slow readers' sessions the server ended unasked
    /// (besides a slow reader's cut-off).
    pub dropped_by_server: u64,
    /// Times a slow reader stopped reading.
    pub slow_stalls: u64,
    /// Stalls that ended with the server cutting the reader off.
    pub slow_cut: u64,
    /// Of those, cut-offs whose close frame (1013) reached the reader. Often
    /// fewer: the server closes the socket with the reader's last commands
    /// still unread, and the kernel then resets the connection, dropping
    /// the close frame still on its way (the server's own count of cut-offs
    /// is in the report's `server_counts`).
    pub slow_closed_1013: u64,
    /// Stalls that reached `--soak-slow-stall-max-s` without a cut-off.
    pub slow_not_cut: u64,
    /// Slow readers' resumes answered `resumed`.
    pub slow_resumed: u64,
    /// Slow readers' resumes answered `resume_failed`: the frames after the
    /// last one read were no longer all held (the server's
    /// `resume_bytes_max`/`resume_frames_max` below its `outbound_bytes_max`).
    pub slow_resume_failed: u64,
    /// Command floods sent.
    pub abuse_floods: u64,
    /// `rate_limited` errors the floods got.
    pub abuse_rate_limited: u64,
    /// Floods the server closed with 1008.
    pub abuse_flood_closed_1008: u64,
    /// Garbage attempts (non-JSON, unknown type, binary, then invalid UTF-8).
    pub abuse_garbage: u64,
    /// `error` frames the garbage got.
    pub abuse_garbage_errors: u64,
    /// Garbage attempts closed with 1007 (the invalid UTF-8).
    pub abuse_garbage_closed_1007: u64,
    /// Oversized frames sent.
    pub abuse_oversized: u64,
    /// Of those, closed with 1009.
    pub abuse_oversized_closed_1009: u64,
    /// Slow handshakes tried.
    pub abuse_slow_handshakes: u64,
    /// Slow handshakes the server cut off.
    pub abuse_slow_handshakes_cut: u64,
    /// The longest a slow handshake lasted before it was cut, ms.
    pub abuse_slow_handshake_cut_ms_max: u64,
    /// Abuse attempts answered otherwise than expected (a flood not closed,
    /// a slow handshake not cut, …); see `notes`.
    pub abuse_unexpected: u64,
    /// The first few unexpected outcomes, in words.
    pub notes: Vec<String>,
}

impl SoakCounters {
    pub fn add(&mut self, o: &SoakCounters) {
        self.drops += o.drops;
        self.resumes += o.resumes;
        self.resumes_failed += o.resumes_failed;
        self.resume_errors += o.resume_errors;
        self.replayed_frames += o.replayed_frames;
        self.seq_gaps += o.seq_gaps;
        self.seq_duplicates += o.seq_duplicates;
        self.logins_failed += o.logins_failed;
        self.dropped_by_server += o.dropped_by_server;
        self.slow_stalls += o.slow_stalls;
        self.slow_cut += o.slow_cut;
        self.slow_closed_1013 += o.slow_closed_1013;
        self.slow_not_cut += o.slow_not_cut;
        self.slow_resumed += o.slow_resumed;
        self.slow_resume_failed += o.slow_resume_failed;
        self.abuse_floods += o.abuse_floods;
        self.abuse_rate_limited += o.abuse_rate_limited;
        self.abuse_flood_closed_1008 += o.abuse_flood_closed_1008;
        self.abuse_garbage += o.abuse_garbage;
        self.abuse_garbage_errors += o.abuse_garbage_errors;
        self.abuse_garbage_closed_1007 += o.abuse_garbage_closed_1007;
        self.abuse_oversized += o.abuse_oversized;
        self.abuse_oversized_closed_1009 += o.abuse_oversized_closed_1009;
        self.abuse_slow_handshakes += o.abuse_slow_handshakes;
        self.abuse_slow_handshakes_cut += o.abuse_slow_handshakes_cut;
        self.abuse_slow_handshake_cut_ms_max = self
            .abuse_slow_handshake_cut_ms_max
            .max(o.abuse_slow_handshake_cut_ms_max);
        self.abuse_unexpected += o.abuse_unexpected;
        for note in &o.notes {
            self.note(note.clone());
        }
    }

    /// Keeps `why` among the first `NOTES_MAX` notes.
    pub fn note(&mut self, why: String) {
        if self.notes.len() < NOTES_MAX {
            self.notes.push(why);
        }
    }
}
