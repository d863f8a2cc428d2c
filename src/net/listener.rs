//! A shard's listener: its own `SO_REUSEPORT` socket on the shared address,
//! and the loop that accepts connections and starts a task for each (or,
//! for an address at its cap of connections, a short refusal).

use glommio::net::TcpListener;
use glommio::timer::Timer;
use std::cell::RefCell;
use std::os::fd::{FromRawFd, RawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::conn::{self, Accepted, Scratch};
use super::per_ip::ConnectionsPerIp;
use super::readiness::{self, Epoll};
use crate::shard::resume::Attachment;
use crate::shard::run::ShardCell;

/// How long a failed accept (out of file descriptors, most likely) waits
/// before the next, instead of spinning.
const ACCEPT_RETRY_MS: u64 = 50;

/// Accepts connections on `listener_fd` for `shard` until the task is
/// cancelled; `per_ip` is the host's count of connections per address.
pub async fn listen(shard: ShardCell, listener_fd: RawFd, per_ip: Arc<ConnectionsPerIp>) {
    // SAFETY: the fd is a bound, listening TCP socket handed to this shard alone.
    let listener = unsafe { TcpListener::from_raw_fd(listener_fd) };
    let scratch = Rc::new(RefCell::new(scratch_for(&shard)));
    if let Some(epoll) = scratch.borrow().epoll.clone() {
        // Lives as long as the shard's executor: parked sessions are woken
        // after the listener stops, until they close.
        glommio::spawn_local(readiness::watch(shard.clone(), epoll)).detach();
    }
    // Writes queued frames straight to their sockets; lives as long as the
    // shard's executor, as sessions are written to after the listener stops.
    glommio::spawn_local(super::session_io::write_pass(shard.clone())).detach();
    // Connections handed over for a resume are served like accepted ones.
    let (weak, attach_scratch) = (Rc::downgrade(&shard), scratch.clone());
    shard
        .borrow_mut()
        .set_attacher(Box::new(move |attachment: Attachment| {
            if let Some(shard) = weak.upgrade() {
                let scratch = attach_scratch.clone();
                // Called with the shard borrowed: the task's first step
                // only yields (`serve_attached`).
                glommio::spawn_local(conn::serve_attached(shard, scratch, attachment)).detach();
            }
        }));
    loop {
        let (stream, peer) = match listener.accept_with_peer().await {
            Ok(accepted) => accepted,
            // Reset before it was looked at: there is no one left to serve.
            Err(glommio::GlommioError::IoError(e)) if e.raw_os_error() == Some(libc::ENOTCONN) => {
                continue;
            }
            Err(e) => {
                tracing::warn!(shard = shard.borrow().id, error = %e, "accept failed");
                Timer::new(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                continue;
            }
        };
        let at = Instant::now();
        let Some(permit) = per_ip.admit(peer.ip()) else {
            let max = {
                let mut sh = shard.borrow_mut();
                sh.counters.stats.per_ip_refused += 1;
                sh.config.limits.connections_per_ip_max
            };
            glommio::spawn_local(conn::turn_away(stream, max)).detach();
            continue;
        };
        let accepted = Accepted {
            stream,
            peer_ip: peer.ip(),
            at,
            permit,
        };
        glommio::spawn_local(conn::serve(shard.clone(), scratch.clone(), accepted)).detach();
    }
}

/// The shard's scratch, with the `epoll` instance quiet sessions park their
/// reads on (unless `[runtime] park_reads_after_ms` is 0, or the instance
/// cannot be made: then no session parks); tells the shard's sweep.
fn scratch_for(shard: &ShardCell) -> Scratch {
    let mut sh = shard.borrow_mut();
    let after_ms = sh.config.runtime.park_reads_after_ms;
    if after_ms == 0 {
        return Scratch::new();
    }
    match Epoll::new() {
        Ok(epoll) => {
            sh.park_reads_after_ms = after_ms;
            Scratch::with_epoll(Rc::new(epoll))
        }
        Err(e) => {
            tracing::warn!(shard = sh.id, error = %e, "no epoll instance: quiet sessions keep their reads on the ring");
            Scratch::new()
        }
    }
}
