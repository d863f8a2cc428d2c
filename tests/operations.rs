//! The operator's toolkit against the real binary: `mudshard check` on good
//! and broken shard maps (each problem named by file and line), the binary
//! started from an empty directory with no flags, `/metrics` against the
//! README's table, pinning refused or shown, JSON logs, and an online backup.

mod common;

use common::{Client, ServerProc};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// argon2's cheapest cost, so the backup test's registration is quick.
const CHEAP_AUTH: &str = "[auth]\nargon2_memory_kib = 64\nargon2_iterations = 1\n";

fn mudshard(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mudshard"))
        .current_dir(cwd)
        .args(args)
        .env_remove("MUDSHARD_CONFIG")
        .output()
        .expect("run mudshard")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A copy of the default shard map and world in a fresh directory, to break.
struct Deployment {
    dir: tempfile::TempDir,
}

impl Deployment {
    fn new() -> Deployment {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("world")).expect("world dir");
        let world = Path::new(MANIFEST).join("shards/world");
        for entry in std::fs::read_dir(&world).expect("zone files") {
            let path = entry.expect("entry").path();
            let name = path.file_name().expect("file name");
            std::fs::copy(&path, dir.path().join("world").join(name)).expect("copy zone");
        }
        std::fs::copy(
            Path::new(MANIFEST).join("shards/default.toml"),
            dir.path().join("map.toml"),
        )
        .expect("copy map");
        Deployment { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// Replaces `from` (which must occur) by `to` in `file`; returns the
    /// 1-based line where the change is.
    fn edit(&self, file: &str, from: &str, to: &str) -> usize {
        let path = self.path(file);
        let old = std::fs::read_to_string(&path).expect("read");
        let at = old
            .find(from)
            .unwrap_or_else(|| panic!("{from:?} not in {file}"));
        std::fs::write(&path, old.replacen(from, to, 1)).expect("write");
        1 + old[..at].matches('\n').count()
    }

    /// Runs `mudshard check --config map.toml` and returns its exit code and
    /// its stderr.
    fn check(&self) -> (i32, String, String) {
        let out = mudshard(self.dir.path(), &["check", "--config", "map.toml"]);
        (
            out.status.code().unwrap_or(-1),
            text(&out.stdout),
            text(&out.stderr),
        )
    }

    /// Expects `check` to fail with a problem at `file:line` mentioning `needle`.
    fn expect_problem(&self, file: &str, line: usize, needle: &str) {
        let (code, stdout, stderr) = self.check();
        assert_eq!(code, 1, "check should fail: {stdout}{stderr}");
        let at = format!("{file}:{line}: ");
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&at) && l.contains(needle)),
            "expected a problem at {at}… mentioning {needle:?}:\n{stderr}"
        );
    }
}

#[test]
fn check_accepts_the_default_map_and_the_embedded_one() {
    let out = mudshard(
        Path::new(MANIFEST),
        &["check", "--config", "shards/default.toml"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("ok: shards/default.toml: host a"),
        "{stdout}"
    );
    assert!(stdout.contains("39 rooms"), "{stdout}");

    let empty = tempfile::tempdir().expect("tempdir");
    let out = mudshard(empty.path(), &["check"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("ok: embedded default shard map"),
        "{stdout}"
    );
    assert!(
        stdout.contains("embedded default world (39 rooms"),
        "{stdout}"
    );

    let copy = Deployment::new();
    let (code, stdout, stderr) = copy.check();
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("ok: map.toml"), "{stdout}");
}

#[test]
fn check_names_the_zone_file_and_line_of_an_exit_to_nowhere() {
    let deployment = Deployment::new();
    let line = deployment.edit(
        "world/town.toml",
        "north = \"library\"",
        "north = \"librery\"",
    );
    deployment.expect_problem(
        "world/town.toml",
        line,
        "leads to unknown room \"town:librery\"",
    );
}

#[test]
fn check_names_the_line_of_a_zone_owned_twice_or_by_no_host() {
    let twice = Deployment::new();
    let line = twice.edit(
        "map.toml",
        "zones = [\"town\", \"forest\", \"river\", \"caves\", \"tower\"]",
        "zones = [\n  \"town\",\n  \"forest\",\n  \"river\",\n  \"caves\",\n  \"tower\",\n  \"river\",\n]",
    );
    twice.expect_problem("map.toml", line + 6, "zone \"river\" is owned twice");

    let orphan = Deployment::new();
    let line = orphan.edit(
        "map.toml",
        "zones = [\"town\", \"forest\", \"river\", \"caves\", \"tower\"]",
        "zones = [\"town\", \"forest\", \"river\", \"caves\"]",
    );
    orphan.expect_problem("map.toml", line, "zone \"tower\"");
    orphan.expect_problem("map.toml", line, "is owned by no host");
}

#[test]
fn check_names_the_line_of_a_core_that_does_not_exist_or_is_listed_twice() {
    let absent = Deployment::new();
    let line = absent.edit("map.toml", "cores = []", "cores = [0, 4095]");
    absent.expect_problem(
        "map.toml",
        line,
        "core 4095 (for shard 1) is not an online core",
    );

    let twice = Deployment::new();
    let line = twice.edit("map.toml", "cores = []", "cores = [0, 0]");
    twice.expect_problem("map.toml", line, "core 0 is listed twice");
}

#[test]
fn check_names_the_line_of_a_limit_out_of_range_and_reports_every_problem() {
    let deployment = Deployment::new();
    let inbox = deployment.edit("map.toml", "inbox_msgs_max = 16384", "inbox_msgs_max = 0");
    let ping = deployment.edit("map.toml", "idle_ping_ms = 30000", "idle_ping_ms = 5");
    deployment.expect_problem("map.toml", inbox, "inbox_msgs_max");
    deployment.expect_problem("map.toml", ping, "idle_ping_ms is between");
}

#[test]
fn check_names_the_line_of_a_toml_mistake() {
    let deployment = Deployment::new();
    let line = deployment.edit("map.toml", "names_listed_max = 50", "names_listed_mx = 50");
    deployment.expect_problem("map.toml", line, "unknown field `names_listed_mx`");
}

/// A server started in `cwd` with `envs` and `args`, its stderr read by a
/// thread (line by line, onto a channel) so a test can look at its log.
fn start_logged(
    cwd: &Path,
    envs: &[(&str, &str)],
    args: &[&str],
) -> (ServerProc, mpsc::Receiver<String>) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mudshard"));
    command
        .current_dir(cwd)
        .args(args)
        .env_remove("MUDSHARD_CONFIG")
        .stderr(Stdio::piped());
    for (key, value) in envs {
        command.env(key, value);
    }
    let mut server = ServerProc::spawn_command(command);
    let stderr = server.child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            eprintln!("{line}");
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (server, rx)
}

/// Log lines until one contains `needle` (at most 10 s); all of them.
fn log_until(log: &mpsc::Receiver<String>, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match log.recv_timeout(left) {
            Ok(line) => {
                let found = line.contains(needle);
                lines.push(line);
                if found {
                    return lines;
                }
            }
            Err(_) => panic!(
                "no log line with {needle:?} within 10 s; got:\n{}",
                lines.join("\n")
            ),
        }
    }
}

#[test]
fn started_from_an_empty_directory_with_no_flags_it_serves_a_game() {
    let empty = tempfile::tempdir().expect("tempdir");
    // No flags, as an operator would type it. The default address
    // (127.0.0.1:4000) may be taken on a shared CI machine, so the port comes
    // from MUDSHARD_LISTEN, the environment's equivalent of the flag: the
    // command line stays empty, which is what this test is about.
    let (server, log) = start_logged(empty.path(), &[("MUDSHARD_LISTEN", "127.0.0.1:0")], &[]);
    let lines = log_until(&log, "config:");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("config: embedded default shard map")),
        "{lines:?}"
    );
    let mut player = Client::guest(server.addr, Some("wanderer"));
    let look = player.cmd("look");
    assert_eq!(look["ok"], true, "{look}");
    assert_eq!(look["room"]["id"], "town:square", "{look}");
    let moved = player.cmd("north");
    assert_eq!(moved["ok"], true, "{moved}");
    assert!(
        empty.path().join("data/mudshard.db").is_file(),
        "the store is created in ./data"
    );
}

#[test]
fn a_shard_map_in_the_working_directory_overrides_the_embedded_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("shards")).expect("shards dir");
    std::fs::write(
        dir.path().join("shards/default.toml"),
        "[server]\nhost_id = \"local\"\nlisten = \"127.0.0.1:0\"\n\n[world]\nzones = [\"town\", \"forest\", \"river\", \"caves\", \"tower\"]\n",
    )
    .expect("write map");
    let (server, log) = start_logged(dir.path(), &[], &[]);
    let lines = log_until(&log, "world:");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("config: shards/default.toml")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("embedded default world")),
        "no world/ beside the map: the embedded world. {lines:?}"
    );
    let (_, health) = server.http_get("/healthz");
    let health: Value = serde_json::from_str(&health).expect("healthz JSON");
    assert_eq!(health["host"], "local");
}

/// The metric names of the README's "Metrics" table: the first column's
/// backticked names of the rows between the section's heading and the next.
fn documented_metrics() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(MANIFEST).join("README.md")).expect("README");
    let section = readme
        .split("\n### Metrics\n")
        .nth(1)
        .expect("a \"### Metrics\" section in the README");
    let section = section.split("\n#").next().unwrap_or(section);
    let mut names = Vec::new();
    for row in section.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap_or("");
        for name in first.split('`').skip(1).step_by(2) {
            names.push(name.trim().to_string());
        }
    }
    assert!(names.len() > 20, "only {} metrics documented", names.len());
    names
}

/// The metric families `/metrics` declares (`# TYPE name kind`).
fn exposed_metrics(metrics: &str) -> Vec<String> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

#[test]
fn metrics_exposes_every_metric_the_readme_documents_and_nothing_undocumented() {
    let server = ServerProc::start(&[]);
    let _player = Client::guest(server.addr, None);
    let (status, metrics) = server.http_get("/metrics");
    assert_eq!(status, 200);
    let exposed = exposed_metrics(&metrics);
    let documented = documented_metrics();
    let missing: Vec<&String> = documented.iter().filter(|m| !exposed.contains(m)).collect();
    assert!(
        missing.is_empty(),
        "documented in the README but not in /metrics: {missing:?}"
    );
    let undocumented: Vec<&String> = exposed.iter().filter(|m| !documented.contains(m)).collect();
    assert!(
        undocumented.is_empty(),
        "in /metrics but not in the README's Metrics table: {undocumented:?}"
    );
}

#[test]
fn a_core_listed_twice_or_not_online_is_refused_at_startup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let twice = mudshard(dir.path(), &["--listen", "127.0.0.1:0", "--cores", "0,0"]);
    assert!(!twice.status.success());
    let stderr = text(&twice.stderr);
    assert!(stderr.contains("core 0 is listed twice"), "{stderr}");

    let online = std::thread::available_parallelism().map_or(1, |n| n.get());
    let beyond = (online + 4096).to_string();
    let absent = mudshard(
        dir.path(),
        &["--listen", "127.0.0.1:0", "--cores", &format!("0,{beyond}")],
    );
    assert!(!absent.status.success());
    let stderr = text(&absent.stderr);
    assert!(
        stderr.contains(&format!(
            "core {beyond} (for shard 1) is not an online core"
        )),
        "{stderr}"
    );
    assert!(
        !dir.path().join("data").exists(),
        "a refused start touches no data"
    );
}

#[test]
fn pinning_is_shown_in_healthz_and_json_logs_carry_host_and_shard() {
    let dir = tempfile::tempdir().expect("tempdir");
    let map = ServerProc::write_map(dir.path(), "");
    let (server, log) = start_logged(
        dir.path(),
        &[],
        &[
            "--config",
            map.to_str().expect("utf-8 path"),
            "--cores",
            "0",
            "--host-id",
            "h7",
            "--log",
            "json",
        ],
    );
    let (status, health) = server.http_get("/healthz");
    assert_eq!(status, 200);
    let health: Value = serde_json::from_str(&health).expect("healthz JSON");
    assert_eq!(health["cores"], serde_json::json!([0]), "{health}");
    assert_eq!(health["connections"], serde_json::json!([0]), "{health}");

    let lines = log_until(&log, "shard 0 started");
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for line in &parsed {
        assert_eq!(line["host"], "h7", "{line}");
        assert!(line.get("shard").is_some(), "no shard field: {line}");
    }
    let pinned = parsed
        .iter()
        .find(|l| l["message"] == "shard 0 pinned to core 0")
        .expect("the pinning is logged");
    assert_eq!(pinned["core"], 0, "{pinned}");
    let started = parsed
        .iter()
        .find(|l| l["message"] == "shard 0 started")
        .expect("the shard's own line");
    assert_eq!(started["shard"], 0, "{started}");
    assert_eq!(
        started["cpu"], 0,
        "a pinned shard runs on its core: {started}"
    );
    let main_thread = parsed
        .iter()
        .find(|l| l["thread"] == "main")
        .expect("a line of the main thread");
    assert!(main_thread.get("shard").is_some(), "{main_thread}");
}

#[test]
fn a_backup_taken_while_the_server_runs_restores_its_accounts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProc::start_in(dir.path(), CHEAP_AUTH, &[]);
    let mut ann = Client::register(server.addr, "ann", "correct horse");
    assert_eq!(ann.cmd("get coin")["ok"], true);
    ann.cmd("north");
    // Past one write-behind interval (100 ms): the move is in the file.
    std::thread::sleep(Duration::from_millis(400));

    let backup = dir.path().join("copy.db");
    let out = mudshard(
        dir.path(),
        &[
            "backup",
            backup.to_str().expect("utf-8 path"),
            "--config",
            "map.toml",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("copied "),
        "{}",
        text(&out.stdout)
    );
    let again = mudshard(
        dir.path(),
        &[
            "backup",
            backup.to_str().expect("utf-8 path"),
            "--config",
            "map.toml",
        ],
    );
    assert!(
        !again.status.success(),
        "an existing file is not overwritten"
    );
    // The server is still serving after the copy.
    assert_eq!(ann.cmd("look")["ok"], true);

    let restored = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(restored.path().join("data")).expect("data dir");
    std::fs::copy(&backup, restored.path().join("data/mudshard.db")).expect("restore");
    let second = ServerProc::start_in(restored.path(), CHEAP_AUTH, &[]);
    let mut again = Client::login(second.addr, "ann", "correct horse");
    let look = again.cmd("look");
    assert_eq!(look["room"]["id"], "town:library", "{look}");
    let inventory = again.cmd("inventory");
    assert_eq!(
        inventory["items"],
        serde_json::json!(["coin"]),
        "{inventory}"
    );
}
