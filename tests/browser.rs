//! The browser client in real headless Chromium (Debian's `chromium`),
//! driven by playwright-core from npm: a guest logs in, looks, walks and
//! clicks an exit back; a second page hears a `say`; the first page's
//! connection is cut while the second speaks, and the first comes back by
//! `resume` with that `say` in its log; cut for longer than the resume
//! window, it logs in again and says so. The script is
//! `tests/browser/client.mjs`; a screenshot of the page is kept in
//! `target/test-artifacts/`.
//!
//! What it needs is installed here when it is missing: playwright-core
//! (npm, into `target/tmp/browser-test`, never playwright's own browser
//! download), and, when the test runs as root, `chromium` and `nodejs npm`
//! with apt. Otherwise it fails saying how to install them; it never
//! passes without having run.

mod common;
use common::node::{apt_install, node_and_npm};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// playwright-core's version, pinned: its CDP client must speak the
/// installed Chromium's protocol, and the suite must not change by itself.
const PLAYWRIGHT_CORE: &str = "1.65.1";
/// How long the server keeps a dropped session: long enough for the first
/// cut (a second or two) to resume, short enough to outwait for the second.
const RESUME_WINDOW_MS: u64 = 5_000;
/// The longest the browser script may run (it takes a few seconds).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// The Chromium binary: `CHROMIUM` if set, else Debian's.
fn chromium() -> PathBuf {
    if let Ok(path) = std::env::var("CHROMIUM") {
        return PathBuf::from(path);
    }
    let debian = PathBuf::from("/usr/bin/chromium");
    if !debian.exists() {
        apt_install(
            &["chromium"],
            "headless Chromium (/usr/bin/chromium) is missing",
        );
    }
    assert!(
        debian.exists(),
        "/usr/bin/chromium is still missing after installing chromium"
    );
    debian
}

/// A folder with playwright-core installed, by npm, when it is not there yet.
fn playwright_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser-test");
    let installed = dir.join("node_modules/playwright-core/package.json");
    let pinned = format!("\"version\": \"{PLAYWRIGHT_CORE}\"");
    if std::fs::read_to_string(&installed).is_ok_and(|p| p.contains(&pinned)) {
        return dir;
    }
    std::fs::create_dir_all(&dir).expect("create the playwright folder");
    // A package.json of its own, so that npm installs here and nowhere above.
    std::fs::write(
        dir.join("package.json"),
        "{\"name\":\"mudshard-browser-test\",\"private\":true}\n",
    )
    .expect("write package.json");
    let spec = format!("playwright-core@{PLAYWRIGHT_CORE}");
    eprintln!("browser test: npm install {spec} into {}", dir.display());
    let ok = Command::new("npm")
        .args(["install", "--no-save", "--no-audit", "--no-fund", &spec])
        .current_dir(&dir)
        // Only the library: it never downloads browsers, but say so anyway.
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "npm could not install {spec} (is the npm registry reachable?); \
         install it with: npm install --prefix {} {spec}",
        dir.display()
    );
    dir
}

/// Where the screenshot goes: `target/test-artifacts/browser-client.png`.
fn screenshot_path() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target folder")
        .to_path_buf();
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).expect("create target/test-artifacts");
    dir.join("browser-client.png")
}

#[test]
fn a_guest_plays_in_chromium_and_a_dropped_page_resumes_with_nothing_missed() {
    let chromium = chromium();
    node_and_npm("node and npm are needed to drive the browser");
    let playwright = playwright_dir();
    let screenshot = screenshot_path();
    let _ = std::fs::remove_file(&screenshot);

    // A short resume window, so that the page can also be seen to fail a
    // resume, after a longer cut, and log in again.
    let map = format!("[limits]\nresume_window_ms = {RESUME_WINDOW_MS}\n");
    let (server, _dir) = ServerProc::start_with_map(&map, &["--shards", "2", "--no-ambient"]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/client.mjs");
    let mut node = Command::new("node")
        .arg(&script)
        .env("MUDSHARD_ADDR", server.addr.to_string())
        .env("PLAYWRIGHT_DIR", &playwright)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOT", &screenshot)
        .env("RESUME_WINDOW_MS", RESUME_WINDOW_MS.to_string())
        .spawn()
        .expect("run node");
    let deadline = Instant::now() + SCRIPT_TIMEOUT;
    let status = loop {
        if let Some(status) = node.try_wait().expect("wait for node") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = node.kill();
            let _ = node.wait();
            panic!("the browser script ran longer than {SCRIPT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "the browser script failed ({status}); its output is above"
    );
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );
    println!("browser test: screenshot at {}", screenshot.display());
}
