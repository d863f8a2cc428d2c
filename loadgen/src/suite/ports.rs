//! Who listens on a port. mudshard binds with SO_REUSEPORT, so a second
//! server on the same port starts without an error and the kernel then
//! splits the connections between the two: a run with a foreign listener
//! measures neither server. The kernel's socket tables (`/proc/net/tcp`,
//! `tcp6`) list every listening socket by inode, whoever owns it; a
//! process's open files (`/proc/<pid>/fd`) say which are the server's.

use std::net::{SocketAddr, SocketAddrV4, TcpStream};
use std::path::Path;
use std::time::Duration;

/// The TCP state "listening" in `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";
/// How long the check that nothing answers on a port waits for a connect.
const CONNECT_PROBE: Duration = Duration::from_millis(500);

/// Inodes of the sockets listening on `port` on any address, from one
/// socket table's text.
pub fn listening_inodes_in(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local = fields.get(1)?;
            let state = fields.get(3)?;
            let inode = fields.get(9)?.parse::<u64>().ok()?;
            let (_, port_hex) = local.rsplit_once(':')?;
            let p = u16::from_str_radix(port_hex, 16).ok()?;
            (p == port && *state == TCP_LISTEN).then_some(inode)
        })
        .collect()
}

/// Inodes of the sockets listening on `port` (IPv4 and IPv6).
pub fn listening_inodes(port: u16) -> Vec<u64> {
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| listening_inodes_in(&t, port))
        .collect()
}

/// The socket inodes process `pid` holds open (empty when it cannot be read).
pub fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .filter_map(|target| {
            let t = target.to_str()?;
            t.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
        })
        .collect()
}

/// The process holding socket `inode`, with its command line, if a
/// process this user may look at holds it.
fn holder(inode: u64) -> Option<(u32, String)> {
    let procs = std::fs::read_dir("/proc").ok()?;
    procs
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| socket_inodes(*pid).contains(&inode))
        .map(|pid| {
            let cmdline = std::fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline"))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .replace('\0', " ")
                        .trim()
                        .to_string()
                })
                .unwrap_or_default();
            (pid, cmdline)
        })
}

/// The listeners on `port` that are not `own`'s, described (pid and
/// command line when they can be found).
pub fn foreign_listeners(port: u16, own: Option<u32>) -> Vec<String> {
    let mine = own.map(socket_inodes).unwrap_or_default();
    listening_inodes(port)
        .into_iter()
        .filter(|inode| !mine.contains(inode))
        .map(|inode| match holder(inode) {
            Some((pid, cmd)) => format!("pid {pid}: {cmd}"),
            None => format!("socket inode {inode}, of a process this user cannot see"),
        })
        .collect()
}

/// Why `addr` cannot be used for a server, if it cannot: something
/// listens on its port, or answers on it.
pub fn busy(addr: SocketAddrV4) -> Option<String> {
    let listeners = foreign_listeners(addr.port(), None);
    if !listeners.is_empty() {
        return Some(listeners.join("; "));
    }
    TcpStream::connect_timeout(&SocketAddr::V4(addr), CONNECT_PROBE)
        .ok()
        .map(|_| "a connection to it was accepted".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn the_socket_table_is_read_for_listening_sockets_of_a_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:10CC 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:10CC 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0000000000000000 20 4 30 10 -1\n\
   2: 00000000:0FA0 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4444 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(listening_inodes_in(table, 4300), [4242]);
        assert_eq!(listening_inodes_in(table, 4000), [4444]);
        assert!(listening_inodes_in(table, 4001).is_empty());
    }

    #[test]
    fn a_listener_of_this_process_is_foreign_to_another_and_its_own_to_it() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let SocketAddr::V4(addr) = listener.local_addr().expect("addr") else {
            panic!("bound to IPv4");
        };
        let foreign = foreign_listeners(addr.port(), None);
        assert_eq!(foreign.len(), 1, "{foreign:?}");
        assert!(
            foreign[0].contains(&format!("pid {}", std::process::id())),
            "{foreign:?}"
        );
        assert!(foreign_listeners(addr.port(), Some(std::process::id())).is_empty());
        assert!(busy(addr).is_some());
        drop(listener);
        assert!(busy(addr).is_none());
    }
}
