//! `floor --rtt --echo-runtime glommio`: the echo side run the way mudshard
//! runs its shards, with none of mudshard in it. Each echo thread is a
//! glommio executor set up as a shard is (the same ring depth and the same
//! process-wide switches as mudshard's defaults: cooperative task running,
//! no preemption timers for one task queue, no `membarrier` before sleeping),
//! and each of its connections is a task that reads and answers, as a
//! session's connection task does. Against the epoll echo in the same shape,
//! it shows what the runtime itself charges per request, and what a second
//! executor that sleeps and wakes apart costs it: the part of mudshard's own
//! 2-vs-1-shard cost that is glommio's, not mudshard's.

use crate::cores::pin;
use crate::rtt::{Echoed, RttConfig, REQUEST_BYTES};
use crate::thread_cpu_s;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::{LocalExecutorBuilder, Placement};
use std::cell::Cell;
use std::io;
use std::os::fd::{FromRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

/// mudshard's shards use this ring depth (`src/server.rs`).
const RING_DEPTH: usize = 4096;
/// And set aside this much for file I/O, glommio's minimum (`src/server.rs`).
const IO_MEMORY: usize = 64 << 10;
/// mudshard reads up to this much per `recv` (`src/net/conn.rs`).
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// How often an executor looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(50);

/// The switches mudshard sets by default (`[runtime]`), set once, before
/// the first executor starts.
fn runtime_as_mudshard() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        glommio::set_cooperative_taskrun(true);
        glommio::skip_preempt_timers_with_one_queue(true);
        glommio::set_membarrier_syscall(false);
    });
}

/// Starts echo thread `thread` as a glommio executor over `fds` (each a
/// duplicate the executor owns); returns its join handle.
pub fn spawn(
    fds: Vec<RawFd>,
    thread: usize,
    config: &RttConfig,
    stop: Arc<AtomicBool>,
) -> io::Result<std::thread::JoinHandle<io::Result<Echoed>>> {
    runtime_as_mudshard();
    let core = config.echo_cores.as_ref().map(|c| c.for_thread(thread));
    let placement = match core {
        Some(core) => Placement::Fixed(core),
        None => Placement::Unbound,
    };
    let reply_bytes = config.reply_bytes;
    let handle = LocalExecutorBuilder::new(placement)
        .name(&format!("echo-{thread}"))
        .ring_depth(RING_DEPTH)
        .io_memory(IO_MEMORY)
        .spawn(move || async move {
            if let Some(core) = core {
                // glommio has placed the thread already; this checks it.
                pin(core)?;
            }
            let answered = Rc::new(Cell::new(0u64));
            let cpu_start = thread_cpu_s();
            for fd in fds {
                // SAFETY: `fd` is a duplicate made for this executor alone.
                let stream = unsafe { TcpStream::from_raw_fd(fd) };
                let answered = answered.clone();
                glommio::spawn_local(async move {
                    let _ = answer(stream, reply_bytes, &answered).await;
                })
                .detach();
            }
            while !stop.load(Ordering::Acquire) {
                glommio::timer::sleep(STOP_POLL).await;
            }
            Ok(Echoed {
                cpu_s: thread_cpu_s() - cpu_start,
                requests: answered.get(),
                crossed: 0,
            })
        })
        .map_err(|e| io::Error::other(format!("cannot start a glommio executor: {e}")))?;
    Ok(std::thread::spawn(move || {
        handle
            .join()
            .map_err(|e| io::Error::other(format!("glommio executor: {e}")))?
    }))
}

/// One connection's task: one reply of `reply_bytes` for every whole
/// request read, written at once.
async fn answer(mut stream: TcpStream, reply_bytes: usize, answered: &Cell<u64>) -> io::Result<()> {
    let mut buf = vec![0u8; READ_CHUNK_BYTES];
    let mut replies = Vec::new();
    let mut partial = 0usize;
    loop {
        let got = stream.read(&mut buf).await?;
        if got == 0 {
            return Ok(());
        }
        let total = partial + got;
        let requests = total / REQUEST_BYTES;
        partial = total % REQUEST_BYTES;
        if requests > 0 {
            replies.clear();
            replies.resize(requests * reply_bytes, b'r');
            stream.write_all(&replies).await?;
            answered.set(answered.get() + requests as u64);
        }
    }
}
