//! Opening TCP connections: target resolution, source addresses, and the
//! non-blocking connect handed over to glommio.

use glommio::net::TcpStream;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::os::fd::AsRawFd;

/// The most source addresses a `--source-ips` range may name; a /24 is plenty
/// (each address brings ~28k ephemeral ports).
pub const SOURCE_IPS_MAX: usize = 256;

/// Parses `--source-ips`: `a.b.c.d-a.b.c.e` (inclusive, IPv4) or a count `n`
/// meaning 127.0.0.1 up to 127.0.0.n.
pub fn parse_source_ips(spec: &str) -> Result<Vec<IpAddr>, String> {
    let (first, last) = match spec.split_once('-') {
        Some((a, b)) => {
            let a: Ipv4Addr = a.trim().parse().map_err(|_| format!("bad address {a}"))?;
            let b: Ipv4Addr = b.trim().parse().map_err(|_| format!("bad address {b}"))?;
            (u32::from(a), u32::from(b))
        }
        None => {
            let count: u32 = spec
                .trim()
                .parse()
                .map_err(|_| format!("--source-ips {spec}: expected a range or a count"))?;
            let first = u32::from(Ipv4Addr::new(127, 0, 0, 1));
            (first, first + count.saturating_sub(1))
        }
    };
    if last < first || (last - first) as usize >= SOURCE_IPS_MAX {
        return Err(format!(
            "--source-ips {spec}: need 1 to {SOURCE_IPS_MAX} addresses"
        ));
    }
    Ok((first..=last)
        .map(|ip| IpAddr::V4(Ipv4Addr::from(ip)))
        .collect())
}

/// Resolves `host:port` to one socket address.
pub fn resolve(target: &str) -> Result<SocketAddr, String> {
    target
        .to_socket_addrs()
        .map_err(|e| format!("--target {target}: {e}"))?
        .next()
        .ok_or_else(|| format!("--target {target}: no address"))
}

/// Starts a non-blocking connect to `target`, from `source` if given, and
/// hands the socket to glommio. The connect finishes in the background: the
/// first write waits for the socket to become writable, and a refused
/// connection surfaces as that write's error.
pub fn start_connect(target: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    start_connect_with(target, source, |_| Ok(()))
}

/// `start_connect`, with `tune` setting socket options before the connect
/// (options such as the segment size are fixed by the handshake).
pub fn start_connect_with(
    target: SocketAddr,
    source: Option<IpAddr>,
    tune: impl FnOnce(&Socket) -> io::Result<()>,
) -> io::Result<TcpStream> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM,
        Some(Protocol::TCP),
    )?;
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    if let Some(ip) = source {
        // Let the kernel pick the port at connect time, per destination, so
        // one source address is not limited to one set of ports for all
        // targets.
        set_bind_address_no_port(&socket)?;
        socket.bind(&SockAddr::from(SocketAddr::new(ip, 0)))?;
    }
    tune(&socket)?;
    match socket.connect(&SockAddr::from(target)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from(socket))
}

fn set_bind_address_no_port(socket: &Socket) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket fd and a pointer to a c_int of the stated size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Raises this process's open-file limit to its hard limit and returns it.
pub fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit to fill and then to pass back.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
    }
    limit.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ips_accept_a_range_or_a_count() {
        let range = parse_source_ips("127.0.0.1-127.0.0.20").expect("valid");
        assert_eq!(range.len(), 20);
        assert_eq!(range[19], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 20)));
        assert_eq!(parse_source_ips("3").expect("valid").len(), 3);
        assert!(parse_source_ips("127.0.0.9-127.0.0.1").is_err());
        assert!(parse_source_ips("127.0.0.1-127.0.9.1").is_err());
        assert!(parse_source_ips("many").is_err());
    }
}
