//! What the suite's end-to-end tests (`suite.rs`, `suite_cluster.rs`) share:
//! whether a child they started is still alive, and a report's line.

#![allow(dead_code)]

/// Whether `pid` runs (a zombie still answers kill(0): its state is read).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// The report's first line starting with `start` (the test fails without one).
pub fn line_with<'a>(report: &'a str, start: &str) -> &'a str {
    report
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{report}"))
}
