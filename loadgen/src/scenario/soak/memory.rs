//! The server's memory over a soak: RSS sampled from `/proc/<pid>/status`
//! every `--soak-rss-sample-ms` by a thread of its own (the worker threads
//! stay on their sessions), and the least-squares slope of RSS against time
//! over the measured window — flat after warm-up means no growth per minute
//! beyond noise.

use crate::clock::now_ns;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The most samples kept: when full, every other one is dropped and the
/// interval doubles, so an hours-long soak keeps its whole curve in bounded
/// memory.
pub const RSS_SAMPLES_MAX: usize = 4096;

/// How long the sampler sleeps at most before it looks at its stop flag, ms.
const STOP_POLL_MS: u64 = 50;

/// One sample: when (ns on the run's clock) and the RSS, KiB.
pub type Sample = (u64, u64);

/// The sampling thread (see the module doc).
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Sample>>,
}

impl RssSampler {
    /// Starts sampling `pid`; `None` if the thread cannot start.
    pub fn start(pid: u32, interval_ms: u64) -> Option<RssSampler> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("loadgen-rss".into())
            .spawn(move || sample(pid, interval_ms.max(1), &flag))
            .ok()?;
        Some(RssSampler { stop, thread })
    }

    /// Stops sampling and returns the samples, oldest first.
    pub fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::Release);
        self.thread.join().unwrap_or_default()
    }
}

fn sample(pid: u32, mut interval_ms: u64, stop: &AtomicBool) -> Vec<Sample> {
    let mut samples = Vec::with_capacity(256);
    while !stop.load(Ordering::Acquire) {
        if let Some(kib) = crate::probe::rss_kib(pid) {
            if samples.len() >= RSS_SAMPLES_MAX {
                let mut k = 0;
                samples.retain(|_| {
                    k += 1;
                    k % 2 == 1
                });
                interval_ms *= 2;
            }
            samples.push((now_ns(), kib));
        }
        let mut slept_ms = 0;
        while slept_ms < interval_ms && !stop.load(Ordering::Acquire) {
            let nap_ms = STOP_POLL_MS.min(interval_ms - slept_ms);
            std::thread::sleep(Duration::from_millis(nap_ms));
            slept_ms += nap_ms;
        }
    }
    samples
}

/// The server's memory over the run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemoryFigures {
    /// Samples taken in the measured window.
    pub samples_in_window: usize,
    /// RSS at the first and last sample of the window, and the highest, KiB.
    pub rss_first_kib: Option<u64>,
    pub rss_last_kib: Option<u64>,
    pub rss_max_kib: Option<u64>,
    /// Least-squares slope of RSS over the measured window, KiB per minute
    /// (`None` with fewer than two samples there).
    pub slope_kib_per_min: Option<f64>,
    /// Every sample of the run: `[s since the start line, KiB]`.
    pub samples: Vec<[f64; 2]>,
}

impl MemoryFigures {
    /// The figures of `samples` for a run that started at `start_ns` and
    /// measured `[window_start_ns, window_end_ns)`.
    pub fn of(
        samples: &[Sample],
        start_ns: u64,
        window_start_ns: u64,
        window_end_ns: u64,
    ) -> MemoryFigures {
        let in_window: Vec<Sample> = samples
            .iter()
            .copied()
            .filter(|(t, _)| (window_start_ns..window_end_ns).contains(t))
            .collect();
        let points: Vec<(f64, f64)> = in_window
            .iter()
            .map(|&(t, kib)| ((t - window_start_ns) as f64 / 60e9, kib as f64))
            .collect();
        MemoryFigures {
            samples_in_window: in_window.len(),
            rss_first_kib: in_window.first().map(|s| s.1),
            rss_last_kib: in_window.last().map(|s| s.1),
            rss_max_kib: in_window.iter().map(|s| s.1).max(),
            slope_kib_per_min: slope(&points),
            samples: samples
                .iter()
                .map(|&(t, kib)| [t.saturating_sub(start_ns) as f64 / 1e9, kib as f64])
                .collect(),
        }
    }
}

/// The least-squares slope of y over x; `None` for fewer than two points or
/// when every x is the same.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for &(x, y) in points {
        sxy += (x - mean_x) * (y - mean_y);
        sxx += (x - mean_x) * (x - mean_x);
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slope_of_a_line_is_its_slope_and_noise_averages_out() {
        let line: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 * i as f64 + 7.0)).collect();
        assert!((slope(&line).expect("slope") - 3.0).abs() < 1e-9);
        let flat: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64, 100.0 + if i % 2 == 0 { 1.0 } else { -1.0 }))
            .collect();
        assert!(slope(&flat).expect("slope").abs() < 0.5);
        assert_eq!(slope(&[(1.0, 2.0)]), None);
        assert_eq!(slope(&[(1.0, 2.0), (1.0, 3.0)]), None);
    }

    #[test]
    fn only_window_samples_make_the_slope_in_kib_per_minute() {
        let s = 1_000_000_000u64;
        // Warm-up growth at 0–10 s is left out; +60 KiB over the next 60 s.
        let samples = vec![
            (0, 1000),
            (5 * s, 5000),
            (10 * s, 6000),
            (40 * s, 6030),
            (70 * s, 6060),
            (80 * s, 9999),
        ];
        let m = MemoryFigures::of(&samples, 0, 10 * s, 71 * s);
        assert_eq!(m.samples_in_window, 3);
        assert_eq!((m.rss_first_kib, m.rss_last_kib), (Some(6000), Some(6060)));
        assert!((m.slope_kib_per_min.expect("slope") - 60.0).abs() < 1e-6);
        assert_eq!(m.samples.len(), 6);
    }
}
