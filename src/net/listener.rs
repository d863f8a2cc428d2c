//! A shard's listener: its own `SO_REUSEPORT` socket on the shared address,
//! and the loop that accepts connections and starts a task for each (or,
//! for an address at its cap of connections, a short refusal).

use glommio::net::TcpStream;
use glommio::timer::Timer;
use socket2::Socket;
use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, RawFd};
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
    let listener = unsafe { Socket::from_raw_fd(listener_fd) };
    if let Err(e) = prepare(&listener) {
        tracing::error!(shard = shard.borrow().id, error = %e, "the listener cannot be set up: not accepting");
        return;
    }
    let scratch = Rc::new(RefCell::new(scratch_for(&shard)));
    if let Some(epoll) = scratch.borrow().epoll.clone() {
        // Lives as long as the shard's executor: parked sessions are woken
        // after the listener stops, until they close.
        glommio::spawn_local(readiness::watch(shard.clone(), epoll)).detach();
    }
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
        let (stream, peer) = match accept(&listener).await {
            Ok(Some(accepted)) => accepted,
            // Reset before it was taken, or not a TCP/IP peer: no one to serve.
            Ok(None) => continue,
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

/// Makes the listener non-blocking (`accept` waits on the ring instead), and
/// gives it TCP_NODELAY, which every connection accepted from it inherits:
/// small frames must leave at once (batching is done by each session's
/// queue), with no `setsockopt` per connection.
fn prepare(listener: &Socket) -> io::Result<()> {
    listener.set_nonblocking(true)?;
    listener.set_nodelay(true)
}

/// The next connection and its peer's address: one `accept4` each, and a
/// poll on the shard's ring when none is waiting. (glommio's own accept makes
/// three `fcntl` calls around each `accept`, and the peer's address was one
/// `getpeername` more.) `None`: one that cannot be served, to skip.
async fn accept(listener: &Socket) -> io::Result<Option<(TcpStream, SocketAddr)>> {
    loop {
        match listener.accept() {
            Ok((socket, addr)) => {
                let Some(peer) = addr.as_socket() else {
                    return Ok(None);
                };
                // SAFETY: `socket` owned this connected TCP socket; the stream owns it now.
                let stream = unsafe { TcpStream::from_raw_fd(socket.into_raw_fd()) };
                return Ok(Some((stream, peer)));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                glommio::wait_readable(listener.as_raw_fd()).await?;
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => return Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::{Domain, SockRef, Type};
    use std::os::fd::BorrowedFd;

    fn listening() -> (Socket, SocketAddr) {
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
        let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
        socket.bind(&any.into()).expect("bind");
        socket.listen(16).expect("listen");
        prepare(&socket).expect("prepare");
        let addr = socket
            .local_addr()
            .expect("addr")
            .as_socket()
            .expect("inet");
        (socket, addr)
    }

    fn has_nodelay(stream: &TcpStream) -> bool {
        // SAFETY: the stream keeps its descriptor open for this borrow.
        let fd = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
        SockRef::from(&fd).nodelay().expect("getsockopt")
    }

    #[test]
    fn a_connection_waited_for_is_accepted_with_its_peer_and_tcp_nodelay() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let (listener, addr) = listening();
                // Nobody is queued yet: `accept` waits on the ring until the
                // connection another thread makes arrives.
                let client = std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(50));
                    std::net::TcpStream::connect(addr).expect("connect")
                });
                let (stream, peer) = accept(&listener)
                    .await
                    .expect("accept")
                    .expect("a connection");
                let client = client.join().expect("client thread");
                assert_eq!(peer, client.local_addr().expect("client addr"));
                assert!(has_nodelay(&stream), "TCP_NODELAY comes from the listener");
                // One already queued is taken at once, just as well.
                let second = std::net::TcpStream::connect(addr).expect("connect");
                let (stream, peer) = accept(&listener)
                    .await
                    .expect("accept")
                    .expect("a connection");
                assert_eq!(peer, second.local_addr().expect("client addr"));
                assert!(has_nodelay(&stream));
            })
            .expect("executor")
            .join()
            .expect("test ran");
    }
}
