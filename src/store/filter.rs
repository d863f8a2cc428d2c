//! Which names may have an account: a Bloom filter of the name keys of every
//! account in the file and every registration ever asked of this store.
//!
//! A guest's chosen name must belong to no account. Before, every guest login
//! asked the store thread (a hop there and back, and a SQLite lookup) only to
//! hear "no account" nearly every time. The filter answers that from the
//! shard: a name it has never seen has no account, and the store is asked
//! only about the names it may have seen.
//!
//! It never answers "no" for a name that has an account: it is filled from
//! the file at open, before any shard runs, and a registration's name goes in
//! when the registration is *asked* (`StoreHandle::register`), before it
//! reaches the store thread, let alone commits. So it holds a superset of the
//! accounts; a name whose registration failed stays in it and costs a store
//! lookup, never a wrong answer. Accounts are made only through the store:
//! an account written into the file by another program while the server runs
//! is not in it (DESIGN.md §6: the file belongs to the store thread).
//!
//! Fixed size, chosen at open (`capacity_for`); past its capacity the share of
//! names it cannot rule out grows, and those cost a store lookup as before.
//! Lock-free: any thread sets bits with `fetch_or` and reads them with plain
//! loads; a shard learns of a registration's name through the same messages
//! (the directory's claim) that order the registration before its login.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// Bits per name at capacity, and probes per name: about 0.8% of names never
/// registered are not ruled out at capacity (`k = 7` is optimal for 10 bits).
const BITS_PER_NAME: usize = 10;
const PROBES: u32 = 7;

/// The smallest capacity (names), whatever the file holds: 128 KiB of bits.
pub const CAPACITY_MIN: usize = 100_000;

/// Name keys (`protocol::names::name_key`) that may have an account.
pub struct AccountFilter {
    words: Box<[AtomicU64]>,
    /// Bits − 1; the number of bits is a power of two.
    mask: u64,
}

impl AccountFilter {
    /// A filter for `capacity` names at the design false-positive rate.
    pub fn with_capacity(capacity: usize) -> AccountFilter {
        let bits = (capacity.max(1) * BITS_PER_NAME)
            .next_power_of_two()
            .max(64);
        let words = (0..bits / 64).map(|_| AtomicU64::new(0)).collect();
        AccountFilter {
            words,
            mask: bits as u64 - 1,
        }
    }

    /// The capacity to open a file that holds `accounts` with: room to double.
    pub fn capacity_for(accounts: usize) -> usize {
        accounts.saturating_mul(2).max(CAPACITY_MIN)
    }

    /// Records that `key` may have an account.
    pub fn insert(&self, key: &str) {
        for bit in self.probes(key) {
            self.words[(bit / 64) as usize].fetch_or(1 << (bit % 64), Ordering::Release);
        }
    }

    /// False only if no account has `key`.
    pub fn may_contain(&self, key: &str) -> bool {
        self.probes(key).all(|bit| {
            self.words[(bit / 64) as usize].load(Ordering::Acquire) & (1 << (bit % 64)) != 0
        })
    }

    /// Bytes of its bits.
    pub fn bytes(&self) -> usize {
        self.words.len() * 8
    }

    /// The bits of `key`: double hashing, `h1 + i·h2` (h2 odd, so the probes
    /// of one name are distinct in a power-of-two table).
    fn probes(&self, key: &str) -> impl Iterator<Item = u64> {
        let h1 = hash(0x6d75_6473_6861_7264, key);
        let h2 = hash(0x6163_636f_756e_7473, key) | 1;
        let mask = self.mask;
        (0..u64::from(PROBES)).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) & mask)
    }
}

/// A 64-bit hash of `key` under `seed` (SipHash with the standard library's
/// fixed keys: the filter lives in memory only, so it need not be stable
/// across builds).
fn hash(seed: u64, key: &str) -> u64 {
    let mut h =
        std::hash::BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .build_hasher();
    h.write_u64(seed);
    h.write(key.as_bytes());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_put_in_is_found_even_far_past_capacity() {
        let filter = AccountFilter::with_capacity(1_000);
        let names: Vec<String> = (0..20_000).map(|i| format!("player{i}")).collect();
        for name in &names {
            filter.insert(name);
        }
        let missing: Vec<&String> = names.iter().filter(|n| !filter.may_contain(n)).collect();
        assert!(missing.is_empty(), "false negatives: {missing:?}");
    }

    #[test]
    fn at_capacity_few_other_names_are_let_through() {
        let capacity = 50_000;
        let filter = AccountFilter::with_capacity(capacity);
        for i in 0..capacity {
            filter.insert(&format!("account{i}"));
        }
        let tries = 100_000;
        let through = (0..tries)
            .filter(|i| filter.may_contain(&format!("guest{i}")))
            .count();
        // Design rate at capacity is about 0.8% (a table rounded up to a
        // power of two holds fewer); 2% would mean the probes are broken.
        assert!(
            through * 50 < tries,
            "{through} of {tries} names never put in were not ruled out"
        );
    }

    #[test]
    fn an_empty_filter_rules_out_everything() {
        let filter = AccountFilter::with_capacity(0);
        assert!(!filter.may_contain(""));
        assert!(!filter.may_contain("alice"));
        filter.insert("alice");
        assert!(filter.may_contain("alice"));
    }

    #[test]
    fn its_size_follows_its_capacity() {
        assert_eq!(AccountFilter::capacity_for(0), CAPACITY_MIN);
        assert_eq!(AccountFilter::capacity_for(1_000_000), 2_000_000);
        let filter = AccountFilter::with_capacity(CAPACITY_MIN);
        // 100,000 × 10 bits, rounded up to 2^20 bits.
        assert_eq!(filter.bytes(), 128 * 1024);
    }
}
