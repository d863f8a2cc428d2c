//! What the tests that run Node.js scripts need: `node` and `npm`, and
//! Debian packages installed when the tests run as root (otherwise a clear
//! message saying how to install them).

use std::process::{Command, Stdio};

pub fn is_root() -> bool {
    // SAFETY: getuid(2) has no failure modes.
    unsafe { libc::getuid() == 0 }
}

pub fn found(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs Debian packages when root, or fails saying how.
pub fn apt_install(packages: &[&str], why: &str) {
    let list = packages.join(" ");
    assert!(
        is_root(),
        "{why}; install with: sudo apt-get install -y {list} (or run the tests as root, which installs it)"
    );
    eprintln!("test: {why}; installing {list} with apt-get");
    let ok = Command::new("sh")
        .args([
            "-c",
            &format!(
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {list}"
            ),
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "apt-get install -y {list} failed; install {list} by hand and run again"
    );
}

/// Node and npm, installed when missing.
pub fn node_and_npm(why: &str) {
    if !found("node") || !found("npm") {
        apt_install(&["nodejs", "npm"], why);
    }
}
