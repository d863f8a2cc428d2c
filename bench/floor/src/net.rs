//! Loopback connection pairs and an epoll set, shared by the floor's modes.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::RawFd;
use std::time::Duration;

/// Ready events handed back by one wait at most.
const EPOLL_EVENTS: usize = 512;

/// `pairs` connected loopback TCP pairs, both ends non-blocking, Nagle off
/// on the connecting end: (connecting ends, accepted ends).
pub fn loopback_pairs(pairs: usize) -> io::Result<(Vec<TcpStream>, Vec<TcpStream>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut connected = Vec::with_capacity(pairs);
    let mut accepted = Vec::with_capacity(pairs);
    for _ in 0..pairs {
        let near = TcpStream::connect(addr).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("connect to {addr}: {e} (is the open-file limit below 2 × --pairs?)"),
            )
        })?;
        let (far, _) = listener.accept()?;
        near.set_nodelay(true)?;
        near.set_nonblocking(true)?;
        far.set_nonblocking(true)?;
        connected.push(near);
        accepted.push(far);
    }
    Ok((connected, accepted))
}

/// One non-blocking read: 0 when nothing is waiting; the peer closing is an
/// error.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live buffer of its length; `fd` is open.
    let r = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT) };
    if r < 0 {
        let err = io::Error::last_os_error();
        if err.kind() == io::ErrorKind::WouldBlock {
            return Ok(0);
        }
        return Err(err);
    }
    if r == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the other side closed",
        ));
    }
    Ok(r as usize)
}

/// Writes all of `buf`. Replies and requests are small and both sides read
/// everything they are sent, so a full socket buffer means something is
/// broken, and is reported as such rather than waited out.
pub fn send_all(fd: RawFd, buf: &[u8]) -> io::Result<()> {
    // SAFETY: `buf` is a live slice; `fd` is open.
    let n = unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if n as usize != buf.len() {
        return Err(io::Error::other(format!(
            "socket buffer full: {n} of {} bytes written",
            buf.len()
        )));
    }
    Ok(())
}

/// An epoll instance watching `fds` for input, each tagged with its index.
pub struct Epoll(RawFd);

impl Epoll {
    /// A buffer for the events of one wait.
    pub fn events() -> Vec<libc::epoll_event> {
        vec![libc::epoll_event { events: 0, u64: 0 }; EPOLL_EVENTS]
    }

    pub fn watching(fds: &[RawFd]) -> io::Result<Epoll> {
        // SAFETY: plain syscall; the result is checked.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(io::Error::last_os_error());
        }
        let epoll = Epoll(ep);
        for (i, &fd) in fds.iter().enumerate() {
            epoll.add(fd, i as u64)?;
        }
        Ok(epoll)
    }

    /// Watches `fd` for input too, its events tagged `tag`.
    pub fn add(&self, fd: RawFd, tag: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: tag,
        };
        // SAFETY: `self.0` and `fd` are open; `ev` outlives the call.
        if unsafe { libc::epoll_ctl(self.0, libc::EPOLL_CTL_ADD, fd, &mut ev) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout` (with nanosecond precision) for ready sockets.
    pub fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> io::Result<usize> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: `events` has room for its length; `ts` outlives the call.
        let n = unsafe {
            libc::epoll_pwait2(
                self.0,
                events.as_mut_ptr(),
                events.len() as i32,
                &ts,
                std::ptr::null(),
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(err);
        }
        Ok(n as usize)
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: the descriptor is ours and closed once.
        unsafe { libc::close(self.0) };
    }
}
