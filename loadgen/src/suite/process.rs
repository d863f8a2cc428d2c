//! The suite's children: servers, which run until they are stopped, and
//! measurements (loadgen, floor), which must end within a bound.
//!
//! Every child is stopped by its pid, SIGTERM first and SIGKILL after a
//! bound, on every exit path: a [`Server`] stops its process when dropped;
//! Ctrl-C and SIGTERM set an [`Interrupt`] that every wait here looks at,
//! so they unwind to those drops; and should the suite die without
//! unwinding (SIGKILL), the kernel sends each child SIGTERM
//! (`PR_SET_PDEATHSIG`).

use std::fs::File;
use std::io;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a stopped child may take to exit on SIGTERM before SIGKILL.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a wait looks at the child and at the interrupt.
const POLL: Duration = Duration::from_millis(100);
/// What a server prints, alone on a line, once it accepts connections.
pub const LISTENING_PREFIX: &str = "listening on";

/// The suite was asked to stop by this signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted(pub i32);

/// Set when SIGINT or SIGTERM arrives: the signal's number.
#[derive(Debug, Clone, Default)]
pub struct Interrupt(Arc<AtomicUsize>);

impl Interrupt {
    /// Catches SIGINT and SIGTERM from now on: they no longer end the
    /// process, they set this.
    pub fn install() -> Result<Interrupt, String> {
        let flag = Interrupt::default();
        for signal in [libc::SIGINT, libc::SIGTERM] {
            signal_hook::flag::register_usize(signal, Arc::clone(&flag.0), signal as usize)
                .map_err(|e| format!("cannot catch signal {signal}: {e}"))?;
        }
        Ok(flag)
    }

    pub fn check(&self) -> Result<(), Interrupted> {
        match self.0.load(Ordering::Relaxed) {
            0 => Ok(()),
            signal => Err(Interrupted(signal as i32)),
        }
    }

    /// Sets it, as a signal would.
    pub fn raise(&self, signal: i32) {
        self.0.store(signal as usize, Ordering::Relaxed);
    }

    /// Sleeps, waking early when interrupted.
    pub fn sleep(&self, d: Duration) -> Result<(), Interrupted> {
        let until = Instant::now() + d;
        loop {
            self.check()?;
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            std::thread::sleep(POLL.min(until - now));
        }
    }
}

/// Sends the child SIGTERM when the suite dies, whatever the death (set in
/// the child between fork and exec; `taskset` keeps it across its exec).
fn die_with_parent(cmd: &mut Command) {
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: the closure runs in the forked child before exec; it calls
    // only async-signal-safe functions (prctl, getppid) and allocates
    // nothing (errors are raw OS errors).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The suite died between fork and prctl: do not outlive it.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Spawns `cmd` with stdout and stderr into `output` (one file, in order).
fn spawn_logged(mut cmd: Command, output: &Path) -> io::Result<Child> {
    let out = File::create(output)?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    die_with_parent(&mut cmd);
    cmd.spawn()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill has no memory preconditions; the pid is our own child,
    // not yet reaped (the caller holds its `Child` and has not waited).
    unsafe {
        libc::kill(child.id() as libc::pid_t, sig);
    }
}

/// Stops a child: SIGTERM, then SIGKILL if it has not exited within
/// `bound`; reaps it. Returns its status and whether SIGKILL was needed.
fn stop(child: &mut Child, bound: Duration) -> (Option<ExitStatus>, bool) {
    if let Ok(Some(status)) = child.try_wait() {
        return (Some(status), false);
    }
    signal(child, libc::SIGTERM);
    let until = Instant::now() + bound;
    while Instant::now() < until {
        match child.try_wait() {
            Ok(Some(status)) => return (Some(status), false),
            Ok(None) => std::thread::sleep(POLL),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    (child.wait().ok(), true)
}

/// Why a server did not start.
#[derive(Debug)]
pub enum StartError {
    /// It could not be run at all.
    Spawn(io::Error),
    /// It exited before it printed its address; its output.
    Exited {
        status: String,
        output: String,
    },
    /// It did not say it was ready within the bound (it was stopped).
    Silent(Duration),
    Interrupted(Interrupted),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Spawn(e) => write!(f, "could not be started: {e}"),
            StartError::Exited { status, output } => {
                write!(f, "exited at start ({status}); its output:")?;
                for line in output.lines() {
                    write!(f, "\n    {line}")?;
                }
                Ok(())
            }
            StartError::Silent(bound) => write!(
                f,
                "did not say it was ready ('{LISTENING_PREFIX}' from a server) within {} s",
                bound.as_secs()
            ),
            StartError::Interrupted(Interrupted(s)) => write!(f, "interrupted (signal {s})"),
        }
    }
}

/// A running server, stopped when dropped.
pub struct Server {
    child: Option<Child>,
    pub pid: u32,
    /// The address it printed (`listening on ADDR`).
    pub listening_on: String,
}

impl Server {
    /// Starts `cmd` (output to `log`) and waits, at most `bound`, for the
    /// line that says it listens.
    pub fn start(
        cmd: Command,
        log: &Path,
        bound: Duration,
        interrupt: &Interrupt,
    ) -> Result<Server, StartError> {
        Server::start_when(cmd, log, bound, interrupt, |l| {
            l.starts_with(LISTENING_PREFIX)
        })
    }

    /// Starts `cmd` (output to `log`) and waits, at most `bound`, for a
    /// line for which `ready` holds (`listening_on` is what follows
    /// [`LISTENING_PREFIX`] in it, if anything).
    pub fn start_when(
        cmd: Command,
        log: &Path,
        bound: Duration,
        interrupt: &Interrupt,
        ready: impl Fn(&str) -> bool,
    ) -> Result<Server, StartError> {
        let child = spawn_logged(cmd, log).map_err(StartError::Spawn)?;
        let pid = child.id();
        // Held from here so that every return below stops it.
        let mut server = Server {
            child: Some(child),
            pid,
            listening_on: String::new(),
        };
        let until = Instant::now() + bound;
        loop {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| ready(l)) {
                server.listening_on = line
                    .strip_prefix(LISTENING_PREFIX)
                    .unwrap_or_default()
                    .trim()
                    .to_string();
                return Ok(server);
            }
            if let Some(status) = server.exited() {
                let output = std::fs::read_to_string(log).unwrap_or_default();
                server.child = None;
                return Err(StartError::Exited {
                    status: describe(status),
                    output,
                });
            }
            if Instant::now() >= until {
                return Err(StartError::Silent(bound));
            }
            interrupt.check().map_err(StartError::Interrupted)?;
            std::thread::sleep(POLL);
        }
    }

    /// Its exit status once it has exited (it is then reaped); `None`
    /// while it runs.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Stops it (SIGTERM, SIGKILL after [`STOP_TIMEOUT`]); says so when it
    /// had to be killed.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(mut child) = self.child.take() {
            let (_, killed) = stop(&mut child, STOP_TIMEOUT);
            if killed {
                eprintln!(
                    "suite: server {} did not exit on SIGTERM within {} s; killed it",
                    self.pid,
                    STOP_TIMEOUT.as_secs()
                );
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// How a bounded run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    Exited(i32),
    /// Killed by a signal it was not sent by the suite.
    Signalled(i32),
    /// Still running at its bound: stopped.
    TimedOut,
}

impl RunEnd {
    pub fn success(self) -> bool {
        self == RunEnd::Exited(0)
    }
}

/// Runs `cmd` to its end, output to `output`, stopping it (SIGTERM, then
/// SIGKILL after [`STOP_TIMEOUT`]) if it runs past `bound` or the suite is
/// interrupted.
pub fn run_bounded(
    cmd: Command,
    output: &Path,
    bound: Duration,
    interrupt: &Interrupt,
) -> Result<Result<RunEnd, io::Error>, Interrupted> {
    let mut child = match spawn_logged(cmd, output) {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let until = Instant::now() + bound;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(Ok(end_of(status))),
            Ok(None) => {}
            Err(e) => {
                stop(&mut child, STOP_TIMEOUT);
                return Ok(Err(e));
            }
        }
        if let Err(i) = interrupt.check() {
            stop(&mut child, STOP_TIMEOUT);
            return Err(i);
        }
        if Instant::now() >= until {
            stop(&mut child, STOP_TIMEOUT);
            return Ok(Ok(RunEnd::TimedOut));
        }
        std::thread::sleep(POLL);
    }
}

fn end_of(status: ExitStatus) -> RunEnd {
    match (status.code(), status.signal()) {
        (Some(code), _) => RunEnd::Exited(code),
        (None, Some(sig)) => RunEnd::Signalled(sig),
        (None, None) => RunEnd::Exited(-1),
    }
}

/// An exit status in words: `status 1`, `signal 9`.
pub fn describe(status: ExitStatus) -> String {
    match end_of(status) {
        RunEnd::Exited(code) => format!("status {code}"),
        RunEnd::Signalled(sig) => format!("signal {sig}"),
        RunEnd::TimedOut => "timed out".into(),
    }
}

/// Runs a short helper command (`git`, `rustc`) for its first line of
/// output, within `bound`; `None` on any failure.
pub fn output_line(program: &str, args: &[&str], dir: &Path, bound: Duration) -> Option<String> {
    let out = std::env::temp_dir().join(format!(
        "loadgen-suite-{}-{}.out",
        std::process::id(),
        program
    ));
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir);
    let end = run_bounded(cmd, &out, bound, &Interrupt::default()).ok()?;
    let text = std::fs::read_to_string(&out).ok();
    let _ = std::fs::remove_file(&out);
    match end {
        Ok(RunEnd::Exited(0)) => text?.lines().next().map(|l| l.trim().to_string()),
        _ => None,
    }
}

/// Whether a helper command succeeds within `bound`.
pub fn succeeds(program: &str, args: &[&str], dir: &Path, bound: Duration) -> Option<bool> {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(dir);
    let out = std::env::temp_dir().join(format!(
        "loadgen-suite-{}-{}.status",
        std::process::id(),
        program
    ));
    let end = run_bounded(cmd, &out, bound, &Interrupt::default()).ok()?;
    let _ = std::fs::remove_file(&out);
    match end {
        Ok(RunEnd::Exited(code)) => Some(code == 0),
        _ => None,
    }
}
