//! argon2id password hashing on a small pool of hasher threads, so a shard
//! keeps serving its players while a hash is computed (tens of milliseconds
//! at the default cost).

use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use crossbeam_channel::{Receiver, Sender, TrySendError};

use crate::config::AuthSettings;
use crate::store::Reply;

/// Bytes of random salt per hash (the PHC recommendation).
const SALT_BYTES: usize = 16;

/// Size and cost of the hasher pool.
#[derive(Debug, Clone)]
pub struct HasherConfig {
    /// Hasher threads (1–2: each one competes with a shard for a core).
    pub threads: usize,
    /// Hash and verify jobs that may wait; beyond it the caller is told
    /// [`SubmitError::Busy`] at once and can answer "try again".
    pub queue_max: usize,
    /// argon2 memory cost in KiB.
    pub memory_kib: u32,
    /// argon2 time cost (passes over the memory).
    pub iterations: u32,
    /// argon2 parallelism (lanes) inside one hash.
    pub lanes: u32,
}

impl HasherConfig {
    /// The pool a host runs: one thread (it shares the cores with the
    /// shards), one lane, the cost and queue the configuration names.
    pub fn from_settings(settings: &AuthSettings) -> HasherConfig {
        HasherConfig {
            threads: 1,
            queue_max: settings.hasher_queue_max,
            memory_kib: settings.argon2_memory_kib,
            iterations: settings.argon2_iterations,
            lanes: 1,
        }
    }
}

impl Default for HasherConfig {
    /// The configuration's defaults (`config::AuthSettings`).
    fn default() -> HasherConfig {
        HasherConfig::from_settings(&AuthSettings::default())
    }
}

impl HasherConfig {
    /// The cheapest settings argon2 allows: for tests and load-test worlds only.
    pub fn cheap_for_tests() -> HasherConfig {
        HasherConfig {
            memory_kib: 64,
            iterations: 1,
            ..HasherConfig::default()
        }
    }
}

/// Why hashing failed (bad parameters or an internal argon2 error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashError(pub String);

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "password hashing: {}", self.0)
    }
}

impl std::error::Error for HashError {}

/// Why a job was not accepted; its reply closure will not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue is full: answer the client "busy, try again".
    Busy,
    /// The pool has shut down.
    Stopped,
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::Busy => write!(f, "password hasher busy"),
            SubmitError::Stopped => write!(f, "password hasher stopped"),
        }
    }
}

impl std::error::Error for SubmitError {}

enum Job {
    Hash {
        password: String,
        reply: Reply<Result<String, HashError>>,
    },
    Verify {
        password: String,
        phc: PhcSource,
        reply: Reply<bool>,
    },
    Stop,
}

enum PhcSource {
    Stored(String),
    /// The pool's dummy hash: same cost, matches no password anyone can type.
    Dummy(Arc<str>),
}

/// Owns the hasher threads. Give each shard a [`Hasher`]; shut the pool down
/// after the shards stop.
pub struct HasherPool {
    hasher: Hasher,
    threads: Vec<JoinHandle<()>>,
}

/// A shard's way to the pool: cheap to clone, `Send + Sync`. Every method
/// returns at once; the reply runs on a hasher thread.
#[derive(Clone)]
pub struct Hasher {
    tx: Sender<Job>,
    dummy_phc: Arc<str>,
}

impl HasherPool {
    /// Checks the parameters, computes the dummy hash (one hash, on the
    /// caller, at start-up) and starts the threads.
    pub fn start(cfg: &HasherConfig) -> Result<HasherPool, HashError> {
        assert!(
            (1..=8).contains(&cfg.threads),
            "hasher: threads must be 1..=8"
        );
        assert!(cfg.queue_max > 0, "hasher: queue_max must be at least 1");
        let params = Params::new(cfg.memory_kib, cfg.iterations, cfg.lanes, None)
            .map_err(|e| HashError(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut unguessable = [0u8; 32];
        getrandom::getrandom(&mut unguessable).map_err(|e| HashError(e.to_string()))?;
        let dummy_phc: Arc<str> = hash_with(&argon, &unguessable)?.into();
        let (tx, rx) = crossbeam_channel::bounded(cfg.queue_max);
        let mut threads = Vec::with_capacity(cfg.threads);
        for index in 0..cfg.threads {
            let (rx, argon) = (rx.clone(), argon.clone());
            let thread = std::thread::Builder::new()
                .name(format!("mudshard-hasher-{index}"))
                .spawn(move || work(&argon, &rx))
                .map_err(|e| HashError(e.to_string()))?;
            threads.push(thread);
        }
        Ok(HasherPool {
            hasher: Hasher { tx, dummy_phc },
            threads,
        })
    }

    /// A handle for one shard.
    pub fn hasher(&self) -> Hasher {
        self.hasher.clone()
    }

    /// Lets the threads finish the queued jobs, then joins them.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for _ in &self.threads {
            // Blocking is fine here: each thread takes one `Stop` and exits.
            let _ = self.hasher.tx.send(Job::Stop);
        }
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                tracing::error!("hasher: a thread panicked");
            }
        }
    }
}

impl Drop for HasherPool {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Hasher {
    /// Hashes a new password into a PHC string with a fresh random salt.
    pub fn hash(
        &self,
        password: String,
        reply: Reply<Result<String, HashError>>,
    ) -> Result<(), SubmitError> {
        self.submit(Job::Hash { password, reply })
    }

    /// Checks `password` against a stored PHC string (with the cost recorded
    /// in it). An unparsable PHC string verifies as false and is logged.
    pub fn verify(
        &self,
        password: String,
        phc: String,
        reply: Reply<bool>,
    ) -> Result<(), SubmitError> {
        self.submit(Job::Verify {
            password,
            phc: PhcSource::Stored(phc),
            reply,
        })
    }

    /// For a login to a name that has no account: spends the same time as a
    /// real verification and replies false, so the answer's timing does not
    /// tell whether the name exists.
    pub fn verify_missing_account(
        &self,
        password: String,
        reply: Reply<bool>,
    ) -> Result<(), SubmitError> {
        let phc = PhcSource::Dummy(self.dummy_phc.clone());
        self.submit(Job::Verify {
            password,
            phc,
            reply,
        })
    }

    fn submit(&self, job: Job) -> Result<(), SubmitError> {
        match self.tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(SubmitError::Busy),
            Err(TrySendError::Disconnected(_)) => Err(SubmitError::Stopped),
        }
    }
}

fn work(argon: &Argon2<'static>, rx: &Receiver<Job>) {
    while let Ok(job) = rx.recv() {
        match job {
            Job::Hash { password, reply } => deliver(reply, hash_with(argon, password.as_bytes())),
            Job::Verify {
                password,
                phc,
                reply,
            } => {
                let matches = match &phc {
                    PhcSource::Stored(phc) => verify_with(argon, &password, phc),
                    PhcSource::Dummy(phc) => {
                        // Do the full work, then refuse whatever it says.
                        std::hint::black_box(verify_with(argon, &password, phc));
                        false
                    }
                };
                deliver(reply, matches);
            }
            Job::Stop => break,
        }
    }
}

fn hash_with(argon: &Argon2<'_>, password: &[u8]) -> Result<String, HashError> {
    let mut salt = [0u8; SALT_BYTES];
    getrandom::getrandom(&mut salt).map_err(|e| HashError(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError(e.to_string()))?;
    let hash = argon
        .hash_password(password, &salt)
        .map_err(|e| HashError(e.to_string()))?;
    Ok(hash.to_string())
}

fn verify_with(argon: &Argon2<'_>, password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        // The verifier takes algorithm, version and cost from the PHC string.
        Ok(parsed) => argon.verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(e) => {
            tracing::warn!(error = %e, "hasher: stored password hash does not parse");
            false
        }
    }
}

/// A panic in a shard's reply closure must not kill a hasher thread.
fn deliver<T>(reply: Reply<T>, value: T) {
    if catch_unwind(AssertUnwindSafe(move || reply(value))).is_err() {
        tracing::error!("hasher: a reply closure panicked");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn wait<T: Send + 'static>(submit: impl FnOnce(Reply<T>) -> Result<(), SubmitError>) -> T {
        let (tx, rx) = crossbeam_channel::bounded(1);
        submit(Box::new(move |value| {
            let _ = tx.send(value);
        }))
        .expect("job accepted");
        rx.recv_timeout(Duration::from_secs(10))
            .expect("reply within 10 s")
    }

    #[test]
    fn a_hash_verifies_with_its_password_only_and_is_computed_off_thread() {
        let pool = HasherPool::start(&HasherConfig::cheap_for_tests()).expect("pool");
        let hasher = pool.hasher();
        let caller = std::thread::current().id();
        let (tx, rx) = crossbeam_channel::bounded(1);
        hasher
            .hash(
                "correct horse ü".into(),
                Box::new(move |phc| {
                    let _ = tx.send((std::thread::current().id(), phc));
                }),
            )
            .expect("accepted");
        let (hashed_on, phc) = rx.recv_timeout(Duration::from_secs(10)).expect("reply");
        assert_ne!(hashed_on, caller, "the hash ran on a hasher thread");
        let phc = phc.expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert!(wait(|r| hasher.verify(
            "correct horse ü".into(),
            phc.clone(),
            r
        )));
        assert!(!wait(|r| hasher.verify(
            "correct horse u".into(),
            phc.clone(),
            r
        )));
        assert!(!wait(|r| hasher.verify(
            "x".into(),
            "not a phc string".into(),
            r
        )));
        pool.shutdown();
    }

    #[test]
    fn a_missing_account_costs_a_verification_and_never_matches() {
        let pool = HasherPool::start(&HasherConfig::cheap_for_tests()).expect("pool");
        let hasher = pool.hasher();
        assert!(!wait(
            |r| hasher.verify_missing_account("anything at all".into(), r)
        ));
        assert!(
            hasher.dummy_phc.starts_with("$argon2id$"),
            "same algorithm and cost as real hashes"
        );
        pool.shutdown();
        assert_eq!(
            hasher.hash("late".into(), Box::new(|_| {})),
            Err(SubmitError::Stopped)
        );
    }

    #[test]
    fn a_full_queue_answers_busy_at_once() {
        let cfg = HasherConfig {
            queue_max: 1,
            ..HasherConfig::cheap_for_tests()
        };
        let pool = HasherPool::start(&cfg).expect("pool");
        let hasher = pool.hasher();
        let (gate_tx, gate_rx) = crossbeam_channel::bounded::<()>(0);
        // The only thread blocks inside the first reply; the second job fills
        // the queue; the third must be refused rather than wait.
        hasher
            .hash(
                "one".into(),
                Box::new(move |_| {
                    let _ = gate_rx.recv();
                }),
            )
            .expect("first");
        let mut refused = false;
        for _ in 0..100 {
            if hasher.hash("more".into(), Box::new(|_| {})) == Err(SubmitError::Busy) {
                refused = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(refused, "a full queue said Busy");
        drop(gate_tx);
        pool.shutdown();
    }
}
