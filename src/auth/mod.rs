//! Accounts without blocking shards: name and password rules, argon2id hashing
//! on a small pool of hasher threads, signed expiring session tokens, and the
//! limit on failed login and register attempts (DESIGN.md §4, §7).
//!
//! The accounts themselves live in the store (`crate::store`).

pub mod password;
pub mod ratelimit;
pub mod session_token;
pub mod token;
