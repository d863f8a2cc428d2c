//! A shard's listener: its own `SO_REUSEPORT` socket on the shared address,
//! and the loop that accepts connections and starts a task for each.

use glommio::net::TcpListener;
use glommio::timer::Timer;
use std::cell::RefCell;
use std::os::fd::{FromRawFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

use super::conn::{self, Scratch};
use crate::shard::resume::Attachment;
use crate::shard::run::ShardCell;

/// How long a failed accept (out of file descriptors, most likely) waits
/// before the next, instead of spinning.
const ACCEPT_RETRY_MS: u64 = 50;

/// Accepts connections on `listener_fd` for `shard` until the task is cancelled.
pub async fn listen(shard: ShardCell, listener_fd: RawFd) {
    // SAFETY: the fd is a bound, listening TCP socket handed to this shard alone.
    let listener = unsafe { TcpListener::from_raw_fd(listener_fd) };
    let scratch = Rc::new(RefCell::new(Scratch::new()));
    // Connections handed over for a resume are served like accepted ones.
    let (weak, attach_scratch) = (Rc::downgrade(&shard), scratch.clone());
    shard
        .borrow_mut()
        .set_attacher(Box::new(move |attachment: Attachment| {
            if let Some(shard) = weak.upgrade() {
                let scratch = attach_scratch.clone();
                // Called with the shard borrowed, and glommio may start a new
                // task at once: its first step only yields.
                glommio::spawn_local(async move {
                    futures_lite::future::yield_now().await;
                    conn::serve_attached(shard, scratch, attachment).await;
                })
                .detach();
            }
        }));
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
