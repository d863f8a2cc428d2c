//! A shard's life on its thread: the tasks it runs (inbox, parked retry,
//! sweep, world tick, and the listener the network layer hands it) and its
//! orderly end.

use futures_lite::AsyncReadExt;
use glommio::net::UnixStream;
use glommio::timer::Timer;
use std::cell::RefCell;
use std::future::Future;
use std::os::fd::FromRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::cluster::REMOTE_CHECK_MS;
use super::mailbox::{self, Inbox};
use super::Shard;

/// The shard as its tasks share it: each borrows it only between awaits.
pub type ShardCell = Rc<RefCell<Shard>>;

/// Messages handled before the inbox task lets connections run. Fan-out
/// needs the larger share: at 512, under a chat load of 495k deliveries/s,
/// events waited in the inbox behind thousands of flushes (p99 13 s, a
/// quarter lost to timeouts); at 8192 all arrived with p99 0.7 s, same CPU.
const INBOX_BATCH_MAX: usize = 8192;
/// How long a shard waits for its sessions to close at shutdown.
const SHUTDOWN_GRACE_MS: u64 = 3_000;
/// Period of the session sweep (login deadlines, idle pings).
const SWEEP_INTERVAL_MS: u64 = 1_000;
/// Pause between retries of messages parked for a full inbox: long enough
/// for the other shard to drain a good part of a batch, short against the
/// hop latency a full inbox already costs.
const PARKED_RETRY_US: u64 = 500;

/// Runs shard `shard` until shutdown. `listen` is the network layer's
/// accept loop for this shard (it runs as a task until shutdown cancels it);
/// the shard itself knows nothing of sockets.
pub async fn run<L, F>(shard: Shard, inbox: Inbox, listen: L)
where
    L: FnOnce(ShardCell) -> F,
    F: Future<Output = ()> + 'static,
{
    // Store replies that fail at once run here; their sends must not wait.
    mailbox::mark_shard_thread();
    let ambient_ms = shard.config.game.ambient_interval_ms;
    let shard: ShardCell = Rc::new(RefCell::new(shard));
    let (stop_tx, stop_rx) = futures_channel::oneshot::channel::<()>();

    let inbox_task = glommio::spawn_local(inbox_loop(shard.clone(), inbox, stop_tx));
    let retry_task = glommio::spawn_local(retry_parked(shard.clone()));
    // Each timer's work may post to this shard itself (a command that was
    // waiting behind the one just answered): those go on at once.
    let sweep_task = glommio::spawn_local(every(shard.clone(), SWEEP_INTERVAL_MS, |sh| {
        sh.sweep();
        sh.drain_local();
    }));
    let tick_task = (ambient_ms > 0).then(|| {
        glommio::spawn_local(every(shard.clone(), ambient_ms, |sh| {
            sh.play(|owner, fx| owner.ambient_tick(fx));
            sh.drain_local();
        }))
    });
    let (roster_ms, bridged) = {
        let sh = shard.borrow();
        (sh.config.cluster.heartbeat_ms, sh.router_has_bridge())
    };
    let roster_task = bridged
        .then(|| glommio::spawn_local(every(shard.clone(), roster_ms, |sh| sh.send_roster())));
    let remote_task = bridged.then(|| {
        glommio::spawn_local(every(shard.clone(), REMOTE_CHECK_MS, |sh| {
            sh.router.flush_saves();
            sh.expire_remote_waits();
            sh.sweep_transfers();
            sh.drain_local();
        }))
    });
    let accept_task = glommio::spawn_local(listen(shard.clone()));

    // Until a Shutdown message arrives.
    let _ = stop_rx.await;
    accept_task.cancel().await;
    let started = Instant::now();
    while !shard.borrow().sessions.is_empty()
        && started.elapsed() < Duration::from_millis(SHUTDOWN_GRACE_MS)
    {
        Timer::new(Duration::from_millis(10)).await;
    }
    // The last saves of players whose home is another host (the sessions'
    // own, made as they closed) go to the bridge, which sends what it holds
    // before it stops; those whose host cannot be reached now are lost.
    let waiting = shard.borrow_mut().router.flush_saves();
    if waiting > 0 {
        tracing::warn!(
            shard = shard.borrow().id,
            waiting,
            "stopped with saves of players whose home host cannot be reached"
        );
    }
    sweep_task.cancel().await;
    if let Some(task) = tick_task {
        task.cancel().await;
    }
    if let Some(task) = roster_task {
        task.cancel().await;
    }
    if let Some(task) = remote_task {
        task.cancel().await;
    }
    retry_task.cancel().await;
    let parked = shard.borrow_mut().router.flush_parked();
    if parked > 0 {
        // The other shards are stopping too; what they would get is moot.
        tracing::warn!(
            shard = shard.borrow().id,
            parked,
            "stopped with messages parked for full inboxes"
        );
    }
    inbox_task.cancel().await;
}

async fn inbox_loop(
    shard: ShardCell,
    mut inbox: Inbox,
    stop: futures_channel::oneshot::Sender<()>,
) {
    let mut stop = Some(stop);
    // SAFETY: the fd is this shard's end of its doorbell socket pair, owned from here on.
    let mut socket = inbox
        .take_wake_fd()
        .map(|fd| unsafe { UnixStream::from_raw_fd(fd) });
    let mut rings = [0u8; 256];
    loop {
        match socket.as_mut() {
            Some(bell) => {
                match bell.read(&mut rings).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                inbox.rearm();
            }
            None => std::future::poll_fn(|cx| inbox.poll_ready(cx)).await,
        }
        let mut handled = 0;
        while let Some(msg) = inbox.try_recv() {
            let shutdown = matches!(msg, super::msg::Msg::Shutdown);
            {
                let mut sh = shard.borrow_mut();
                sh.counters.stats.cross_shard_received += 1;
                sh.handle(msg);
            }
            if shutdown {
                if let Some(stop) = stop.take() {
                    let _ = stop.send(());
                }
            }
            handled += 1;
            if handled % INBOX_BATCH_MAX == 0 {
                shard.borrow_mut().router.flush_parked();
                futures_lite::future::yield_now().await;
            }
        }
        shard.borrow_mut().router.flush_parked();
    }
}

/// Retries messages parked for full inboxes while there are any, and sleeps
/// without a timer while there are none (an idle shard uses no CPU).
async fn retry_parked(shard: ShardCell) {
    loop {
        std::future::poll_fn(|cx| shard.borrow_mut().router.poll_parked(cx)).await;
        while shard.borrow_mut().router.flush_parked() > 0 {
            Timer::new(Duration::from_micros(PARKED_RETRY_US)).await;
        }
    }
}

async fn every(shard: ShardCell, interval_ms: u64, mut f: impl FnMut(&mut Shard)) {
    loop {
        Timer::new(Duration::from_millis(interval_ms)).await;
        f(&mut shard.borrow_mut());
    }
}
