//! Addresses: where a message can go. Every destination is a shard of a
//! host (`ShardAddr`); a session is found by its connection's shard, its slot
//! there and the slot's generation (`SessionId`). A single host is host 0 of
//! a cluster of one, so the same addresses serve one host and many.

/// A shard of a host: the one kind of destination there is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ShardAddr {
    /// The host's index in the cluster's list of hosts (0 on a single host).
    pub host: u16,
    /// The shard's index on that host.
    pub shard: u16,
}

impl ShardAddr {
    /// The shard number that stands for every shard of a host: a room's
    /// owner sends an event once to another host, which fans it out.
    pub const EVERY_SHARD: u16 = u16::MAX;

    pub const fn new(host: u16, shard: u16) -> ShardAddr {
        ShardAddr { host, shard }
    }
}

/// Hosts a `SessionId` can name.
pub const HOSTS_MAX: usize = 1 << SessionId::HOST_BITS;
/// Shards per host a `SessionId` can name.
pub const SHARDS_PER_HOST_MAX: usize = 1 << SessionId::SHARD_BITS;
/// Session slots per shard a `SessionId` can name.
pub const SESSIONS_PER_SHARD_MAX: usize = (1 << SessionId::SLOT_BITS) - 1;

/// A session's address anywhere in the cluster: its connection's host and
/// shard, its slot there and the slot's generation (so a stale id never
/// reaches a reused slot). Packed in one word: it travels in every message.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct SessionId(u64);

impl SessionId {
    const HOST_BITS: u32 = 8;
    const SHARD_BITS: u32 = 8;
    const SLOT_BITS: u32 = 24;
    const GEN_BITS: u32 = 24;
    const GEN_SHIFT: u32 = 0;
    const SLOT_SHIFT: u32 = Self::GEN_BITS;
    const SHARD_SHIFT: u32 = Self::SLOT_SHIFT + Self::SLOT_BITS;
    const HOST_SHIFT: u32 = Self::SHARD_SHIFT + Self::SHARD_BITS;

    /// The id of `slot` (generation `gen`) on shard `at`. The generation
    /// keeps its low 24 bits: a slot reused 16 million times may meet an
    /// old id again, which is harmless for ids that live seconds.
    pub fn new(at: ShardAddr, slot: u32, gen: u32) -> SessionId {
        assert!(
            usize::from(at.host) < HOSTS_MAX && usize::from(at.shard) < SHARDS_PER_HOST_MAX,
            "session id: {at:?} does not fit"
        );
        assert!(
            (slot as usize) <= SESSIONS_PER_SHARD_MAX,
            "session id: slot {slot} does not fit"
        );
        let gen = u64::from(gen) & ((1 << Self::GEN_BITS) - 1);
        SessionId(
            (u64::from(at.host) << Self::HOST_SHIFT)
                | (u64::from(at.shard) << Self::SHARD_SHIFT)
                | (u64::from(slot) << Self::SLOT_SHIFT)
                | (gen << Self::GEN_SHIFT),
        )
    }

    /// The connection's host and shard: where frames for this session go.
    pub fn addr(self) -> ShardAddr {
        ShardAddr {
            host: self.host(),
            shard: self.shard(),
        }
    }

    pub fn host(self) -> u16 {
        ((self.0 >> Self::HOST_SHIFT) & ((1 << Self::HOST_BITS) - 1)) as u16
    }

    pub fn shard(self) -> u16 {
        ((self.0 >> Self::SHARD_SHIFT) & ((1 << Self::SHARD_BITS) - 1)) as u16
    }

    pub fn slot(self) -> u32 {
        ((self.0 >> Self::SLOT_SHIFT) & ((1 << Self::SLOT_BITS) - 1)) as u32
    }

    /// The slot's generation, as stored (its low 24 bits).
    pub fn gen(self) -> u32 {
        ((self.0 >> Self::GEN_SHIFT) & ((1 << Self::GEN_BITS) - 1)) as u32
    }

    /// The generation as a slot table stores it, for comparison with `gen()`.
    pub fn gen_of(gen: u32) -> u32 {
        gen & ((1 << Self::GEN_BITS) - 1)
    }

    /// The packed form, for the cross-host wire.
    pub fn to_bits(self) -> u64 {
        self.0
    }

    /// An id from its packed form.
    pub fn from_bits(bits: u64) -> SessionId {
        SessionId(bits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_round_trips_at_its_limits() {
        for (host, shard, slot, gen) in [
            (0, 0, 0, 0),
            (1, 2, 3, 4),
            (255, 255, SESSIONS_PER_SHARD_MAX as u32, 0x00FF_FFFF),
        ] {
            let sid = SessionId::new(ShardAddr::new(host, shard), slot, gen);
            assert_eq!(sid.host(), host);
            assert_eq!(sid.shard(), shard);
            assert_eq!(sid.slot(), slot);
            assert_eq!(sid.gen(), gen);
            assert_eq!(sid.addr(), ShardAddr::new(host, shard));
            assert_eq!(SessionId::from_bits(sid.to_bits()), sid);
        }
    }

    #[test]
    fn a_generation_wraps_within_its_bits() {
        let sid = SessionId::new(ShardAddr::new(0, 0), 1, 0x0100_0005);
        assert_eq!(sid.gen(), 5);
        assert_eq!(SessionId::gen_of(0x0100_0005), 5);
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn a_shard_past_the_limit_is_refused() {
        SessionId::new(ShardAddr::new(0, SHARDS_PER_HOST_MAX as u16), 0, 0);
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn a_slot_past_the_limit_is_refused() {
        SessionId::new(ShardAddr::new(0, 0), SESSIONS_PER_SHARD_MAX as u32 + 1, 0);
    }
}
