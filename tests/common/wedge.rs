//! A TCP proxy in front of Redis that can wedge the connections that
//! subscribed: their sockets stay open and Redis goes on answering, but
//! nothing it sends them gets through. To the subscriber this is a silent
//! connection, the fault only its probes can find. Connections made after
//! the wedge pass freely.
//!
//! It can also cut the link altogether, as a pulled cable or a partition
//! would: every connection, open or made while the link is cut, stays open
//! and carries nothing either way, and Redis itself is untouched. Once the
//! link is healed, new connections pass; the ones it cut stay silent.
//!
//! And it can slow the subscribers down: what Redis sends them arrives, in
//! order, a set time late — a congested or stalled path home, with the
//! connection alive.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct State {
    /// Open connections that sent SUBSCRIBE.
    subscribers: HashSet<u64>,
    /// Connections whose Redis → client bytes are dropped.
    wedged: HashSet<u64>,
    /// Open connections.
    open: HashSet<u64>,
    /// Connections whose bytes are dropped both ways.
    dead: HashSet<u64>,
    /// Whether the link is cut: a new connection is dead from the start.
    cut: bool,
    /// How late what Redis sends the subscribers arrives.
    subscriber_delay: Duration,
}

pub struct WedgeProxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl WedgeProxy {
    /// Listens on a free port and forwards every connection to Redis on
    /// `upstream` (a port on 127.0.0.1).
    pub fn start(upstream: u16) -> WedgeProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy address").port();
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        std::thread::spawn(move || {
            let ids = AtomicU64::new(0);
            while !sp.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let id = ids.fetch_add(1, Ordering::Relaxed);
                        {
                            let mut st = st.lock().expect("proxy state");
                            st.open.insert(id);
                            if st.cut {
                                st.dead.insert(id);
                            }
                        }
                        if let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) {
                            pipe(id, client, server, st.clone(), sp.clone());
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        WedgeProxy { port, state, stop }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Wedges every subscriber connection open now; returns how many.
    pub fn wedge_subscribers(&self) -> usize {
        let mut st = self.state.lock().expect("proxy state");
        let open: Vec<u64> = st.subscribers.iter().copied().collect();
        st.wedged.extend(open.iter().copied());
        open.len()
    }

    /// From now on, what Redis sends the subscriber connections arrives
    /// `delay` late (in order; `Duration::ZERO` for on time again).
    pub fn delay_subscribers(&self, delay: Duration) {
        self.state.lock().expect("proxy state").subscriber_delay = delay;
    }

    /// Cuts the link: nothing passes either way on any connection, open now
    /// or made until [`WedgeProxy::heal`].
    pub fn cut(&self) {
        let mut st = self.state.lock().expect("proxy state");
        st.cut = true;
        let open: Vec<u64> = st.open.iter().copied().collect();
        st.dead.extend(open);
    }

    /// Mends the link for connections made from now on.
    pub fn heal(&self) {
        self.state.lock().expect("proxy state").cut = false;
    }
}

impl Drop for WedgeProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Two threads per connection: client → Redis (noting a SUBSCRIBE), and
/// Redis → client (dropping the bytes of a wedged connection).
fn pipe(
    id: u64,
    client: TcpStream,
    server: TcpStream,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
) {
    let _ = client.set_nonblocking(false);
    for s in [&client, &server] {
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
    }
    let (c_in, s_out) = (
        client.try_clone().expect("clone"),
        server.try_clone().expect("clone"),
    );
    let (st, sp) = (state.clone(), stop.clone());
    std::thread::spawn(move || {
        copy(c_in, s_out, &sp, |bytes| {
            let mut st = st.lock().expect("proxy state");
            if bytes
                .windows(9)
                .any(|w| w.eq_ignore_ascii_case(b"SUBSCRIBE"))
            {
                st.subscribers.insert(id);
            }
            !st.dead.contains(&id)
        });
        let mut st = st.lock().expect("proxy state");
        st.subscribers.remove(&id);
        st.open.remove(&id);
    });
    // Redis → client goes through a delay line: each read is written out
    // when its time comes, in order.
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    let mut out = client;
    std::thread::spawn(move || {
        while let Ok((due, bytes)) = rx.recv() {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            if out.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = out.shutdown(Shutdown::Both);
    });
    std::thread::spawn(move || {
        let mut from = server;
        let mut buf = vec![0u8; 64 * 1024];
        while !stop.load(Ordering::Relaxed) {
            match from.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let delay = {
                        let st = state.lock().expect("proxy state");
                        if st.wedged.contains(&id) || st.dead.contains(&id) {
                            continue;
                        }
                        if st.subscribers.contains(&id) {
                            st.subscriber_delay
                        } else {
                            Duration::ZERO
                        }
                    };
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) if is_timeout(&e) => {}
                Err(_) => break,
            }
        }
    });
}

/// Copies `from` to `to` until either closes or the proxy stops, passing on
/// the bytes `pass` lets through; then shuts `to`.
fn copy(
    mut from: TcpStream,
    mut to: TcpStream,
    stop: &AtomicBool,
    mut pass: impl FnMut(&[u8]) -> bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    while !stop.load(Ordering::Relaxed) {
        match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if pass(&buf[..n]) && to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(e) if is_timeout(&e) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}
