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

/// `recv(2)` without glibc's wrapper: `recv` and `send` are cancellation
/// points, and glibc switches the thread to asynchronous cancellation and
/// back around each call (about 2% of a thread that does nothing else).
/// The floor calls the kernel as cheaply as mudshard does (its glommio
/// patch 10), so that what it measures is the kernel's own cost.
pub fn sys_recv(fd: RawFd, buf: &mut [u8]) -> isize {
    let (from, from_len) = (
        std::ptr::null_mut::<libc::sockaddr>(),
        std::ptr::null_mut::<libc::socklen_t>(),
    );
    // SAFETY: `buf` is a live buffer of its length; a bad `fd` is an error return.
    let r = unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            fd,
            buf.as_mut_ptr(),
            buf.len(),
            libc::MSG_DONTWAIT,
            from,
            from_len,
        )
    };
    r as isize
}

/// `send(2)` without glibc's wrapper (see `sys_recv`), never blocking or
/// raising SIGPIPE.
pub fn sys_send(fd: RawFd, buf: &[u8]) -> isize {
    let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
    let to = std::ptr::null::<libc::sockaddr>();
    // SAFETY: `buf` is a live slice; a bad `fd` is an error return.
    let n = unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd,
            buf.as_ptr(),
            buf.len(),
            flags,
            to,
            0 as libc::socklen_t,
        )
    };
    n as isize
}

/// One non-blocking read: 0 when nothing is waiting; the peer closing is an
/// error.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    let r = sys_recv(fd, buf);
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
    let n = sys_send(fd, buf);
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
