//! Saves of players whose home is another host that could not go yet
//! (issue 10: "saves are never dropped"). One list for the whole host,
//! shared by its shards through their [`Outbox`](super::Outbox): a player's
//! saves come from whichever shard owns the room their body stands in, and
//! kept per shard, an older save held by one shard could go after a newer
//! one held by another. Here the newest per player (by the time it was
//! made, on this host's monotonic clock) is the one kept.
//!
//! The shards put a save here when it cannot go now (the bridge is down,
//! its home host is not live, or the queue is full), and while anything for
//! that host waits here, every later save for it too, so that saves leave
//! in the order they were made. The shards' routers move them on as soon
//! as they can go, and hold other messages for that host back until they
//! have.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::protocol::addr::ShardAddr;

/// One player's newest save, waiting.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitingSave {
    pub to: ShardAddr,
    /// When it was made (monotonic ns on this host).
    pub at_ns: u64,
    pub room: Box<str>,
    pub inventory: Vec<String>,
}

/// The host's waiting saves, by name key.
#[derive(Debug, Default)]
pub struct SavesWaiting {
    saves: Mutex<HashMap<Box<str>, WaitingSave>>,
    /// How many there are: read on every post to another host, without the
    /// lock, to see that there are none.
    count: AtomicUsize,
}

impl SavesWaiting {
    /// Whether no save waits (no lock taken).
    pub fn is_empty(&self) -> bool {
        self.count.load(Ordering::Acquire) == 0
    }

    pub fn len(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }

    /// Keeps `save` for `key` unless a newer one of that player waits.
    pub fn put(&self, key: Box<str>, save: WaitingSave) {
        let Ok(mut saves) = self.saves.lock() else {
            return;
        };
        match saves.get(&key) {
            Some(kept) if kept.at_ns > save.at_ns => {}
            _ => {
                saves.insert(key, save);
            }
        }
        self.count.store(saves.len(), Ordering::Release);
    }

    /// Whether a save for `host` waits.
    pub fn any_for(&self, host: u16) -> bool {
        if self.is_empty() {
            return false;
        }
        self.saves
            .lock()
            .is_ok_and(|saves| saves.values().any(|s| s.to.host == host))
    }

    /// Offers each waiting save whose host `reachable` says can be reached
    /// to `send`, which gives it back when it cannot take it now (then the
    /// rest wait too). Returns how many still wait.
    pub fn drain(
        &self,
        reachable: impl Fn(u16) -> bool,
        mut send: impl FnMut(Box<str>, WaitingSave) -> Result<(), (Box<str>, WaitingSave)>,
    ) -> usize {
        let Ok(mut saves) = self.saves.lock() else {
            return self.len();
        };
        let ready: Vec<Box<str>> = saves
            .iter()
            .filter(|(_, s)| reachable(s.to.host))
            .map(|(k, _)| k.clone())
            .collect();
        for key in ready {
            let Some(save) = saves.remove(&key) else {
                continue;
            };
            if let Err((key, save)) = send(key, save) {
                saves.insert(key, save);
                break;
            }
        }
        self.count.store(saves.len(), Ordering::Release);
        saves.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn save(host: u16, at_ns: u64, room: &str) -> WaitingSave {
        WaitingSave {
            to: ShardAddr::new(host, 0),
            at_ns,
            room: room.into(),
            inventory: vec!["coin".into()],
        }
    }

    #[test]
    fn the_newest_save_of_a_player_is_kept_whichever_shard_puts_it_last() {
        let w = SavesWaiting::default();
        w.put("cat".into(), save(1, 20, "library"));
        // An older save, put later (by the shard the body had left).
        w.put("cat".into(), save(1, 10, "square"));
        w.put("dog".into(), save(1, 5, "square"));
        assert_eq!(w.len(), 2);
        let mut sent = Vec::new();
        let left = w.drain(
            |_| true,
            |k, s| {
                sent.push((k, s.room));
                Ok(())
            },
        );
        assert_eq!(left, 0);
        assert!(w.is_empty());
        sent.sort();
        assert_eq!(
            sent,
            vec![
                ("cat".into(), "library".into()),
                ("dog".into(), "square".into())
            ]
        );
    }

    #[test]
    fn saves_wait_for_their_host_and_for_room_in_the_queue() {
        let w = SavesWaiting::default();
        w.put("cat".into(), save(1, 1, "a"));
        w.put("dog".into(), save(2, 2, "b"));
        w.put("eel".into(), save(2, 3, "c"));
        assert!(w.any_for(1) && w.any_for(2) && !w.any_for(3));
        // Host 2 away: only host 1's goes.
        assert_eq!(w.drain(|h| h == 1, |_, _| Ok(())), 2);
        assert!(!w.any_for(1));
        // The queue takes one, then is full: the other is given back.
        let mut taken = 0;
        let left = w.drain(
            |_| true,
            |k, s| {
                if taken == 0 {
                    taken += 1;
                    Ok(())
                } else {
                    Err((k, s))
                }
            },
        );
        assert_eq!(left, 1);
        assert_eq!(w.drain(|_| true, |_, _| Ok(())), 0);
    }
}
