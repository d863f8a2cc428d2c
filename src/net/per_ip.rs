//! The host-wide count of open connections per client address, and its cap
//! (`limits.connections_per_ip_max`): one address may not take the whole
//! host's sockets.
//!
//! The kernel spreads one address's connections over every shard's
//! listener, so a count per shard would let an address hold the cap once
//! per shard. The count is the host's: a fixed table of atomic counters
//! that every shard shares (an `Arc`), indexed by a keyed hash of the
//! address. A shard touches it when it accepts a connection and when the
//! connection ends, never in between, and never waits on it: one
//! compare-and-swap on one counter, no lock.
//!
//! Addresses whose hash falls into one bucket share its count. With 65 536
//! buckets and a key drawn at start, that is rare and cannot be aimed at
//! someone; and as a player holds one or two connections, only an address
//! already near the cap can be refused for its neighbour's.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

/// Buckets in the table: 256 KiB of counters per host.
const BUCKETS: usize = 1 << 16;

/// Open connections per client address, for the whole host.
pub struct ConnectionsPerIp {
    counts: Box<[AtomicU32]>,
    /// The bucket hash, keyed with randomness drawn at start.
    hasher: RandomState,
    max: u32,
}

/// An admitted connection's place in its address's count, given back when
/// it is dropped: when the connection ends, however it ends.
pub struct ConnectionPermit {
    table: Arc<ConnectionsPerIp>,
    bucket: usize,
}

impl ConnectionsPerIp {
    /// An empty table; each address may hold `max` connections.
    pub fn new(max: usize) -> ConnectionsPerIp {
        assert!(
            max > 0,
            "Config::normalize requires connections_per_ip_max > 0"
        );
        ConnectionsPerIp {
            counts: (0..BUCKETS).map(|_| AtomicU32::new(0)).collect(),
            hasher: RandomState::new(),
            max: u32::try_from(max).unwrap_or(u32::MAX),
        }
    }

    /// Counts a new connection from `ip`; `None` when its address holds
    /// `max` already (nothing is counted then).
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<ConnectionPermit> {
        let bucket = self.bucket(ip);
        self.counts[bucket]
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()?;
        Some(ConnectionPermit {
            table: self.clone(),
            bucket,
        })
    }

    fn bucket(&self, ip: IpAddr) -> usize {
        (self.hasher.hash_one(address_key(ip)) % BUCKETS as u64) as usize
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let before = self.table.counts[self.bucket].fetch_sub(1, Ordering::Relaxed);
        assert!(before > 0, "a connection count went below zero");
    }
}

/// The address a connection counts under: IPv4 as it is (also when it
/// comes mapped into IPv6), IPv6 by its /64, which one host usually owns
/// whole and could otherwise rotate through.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(prefix.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn an_address_gets_max_connections_and_one_more_when_one_ends() {
        let table = Arc::new(ConnectionsPerIp::new(3));
        let mut held: Vec<_> = (0..3)
            .map(|_| table.admit(v4(1)).expect("under the cap"))
            .collect();
        assert!(table.admit(v4(1)).is_none(), "the fourth is refused");
        assert!(table.admit(v4(1)).is_none(), "a refusal counts nothing");
        held.pop();
        assert!(table.admit(v4(1)).is_some(), "one ended: one more");
    }

    #[test]
    fn other_addresses_have_their_own_count() {
        let table = Arc::new(ConnectionsPerIp::new(1));
        let _first = table.admit(v4(1)).expect("first");
        // An address in another bucket (all but a 1-in-65536 chance of the first tried).
        let other = (2..=255)
            .map(v4)
            .find(|ip| table.bucket(*ip) != table.bucket(v4(1)))
            .expect("an address in another bucket");
        assert!(table.admit(other).is_some());
        assert!(table.admit(v4(1)).is_none());
    }

    #[test]
    fn ipv6_counts_by_its_slash_64_and_mapped_ipv4_as_ipv4() {
        let table = Arc::new(ConnectionsPerIp::new(1));
        let _a = table
            .admit(IpAddr::from([0x2001, 0xdb8, 0, 1, 1, 2, 3, 4]))
            .expect("first");
        assert!(table
            .admit(IpAddr::from([0x2001, 0xdb8, 0, 1, 9, 9, 9, 9]))
            .is_none());
        let _b = table.admit(v4(7)).expect("an IPv4 address");
        let mapped = IpAddr::V6(std::net::Ipv4Addr::new(10, 0, 0, 7).to_ipv6_mapped());
        assert!(table.admit(mapped).is_none(), "the same address, mapped");
    }
}
