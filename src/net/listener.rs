//! A shard's listener: its own `SO_REUSEPORT` socket on the shared address,
//! and the loop that accepts connections and starts a task for each.

use glommio::net::TcpListener;
use glommio::timer::Timer;
use std::cell::RefCell;
use std::os::fd::{FromRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use super::conn::{self, Scratch};
use crate::shard::run::ShardCell;

/// How long a failed accept (out of file descriptors, most likely) waits
/// before the next, instead of spinning.
const ACCEPT_RETRY_MS: u64 = 50;

/// Accepts connections on `listener_fd` for `shard` until the task is cancelled.
pub async fn listen(shard: ShardCell, listener_fd: RawFd) {
    // SAFETY: the fd is a bound, listening TCP socket handed to this shard alone.
    let listener = unsafe { TcpListener::from_raw_fd(listener_fd) };
    let scratch = Rc::new(RefCell::new(Scratch::new()));
    loop {
        match listener.accept().await {
            Ok(stream) => {
                glommio::spawn_local(conn::serve(shard.clone(), scratch.clone(), stream)).detach();
            }
            Err(e) => {
                tracing::warn!(shard = shard.borrow().id, error = %e, "accept failed");
                Timer::new(Duration::from_millis(ACCEPT_RETRY_MS)).await;
            }
        }
    }
}
