//! The cross-host mode (`--redis URL --host-id ID`): several baseline
//! processes share one world through Redis pub/sub, bridged the ordinary way,
//! as the Socket.IO and Flask-SocketIO Redis adapters do it.
//!
//! * Every process holds its own players and loads the whole (generated) world.
//! * A process SUBSCRIBEs to the channel of each room where it has a local
//!   player (on the first one's arrival) and UNSUBSCRIBEs when its last local
//!   player there leaves.
//! * Every room event (say, emote, enter, leave) is delivered to the local
//!   listeners at once and is **one PUBLISH** to the room's channel; every
//!   subscribed process (the publisher too, which skips its own) delivers it
//!   to its local players in that room.
//! * Shouts go to one global channel every process subscribes to; tells to
//!   a per-player channel (subscribed while the player is online here), whose
//!   PUBLISH answer — how many processes received it — says whether anyone
//!   by that name is online; `who` reads a Redis hash of name → host.
//!
//! The `redis` client is synchronous, so it runs on two threads of its own
//! beside the tokio runtime, never on it: a publisher thread fed by a channel
//! (one round trip per job, in order) and a subscriber thread that owns the
//! subscribed connection. A blocking pub/sub read cannot be interrupted to
//! subscribe to something new, so the subscriber reads with a short timeout
//! and applies queued (un)subscriptions between reads.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::protocol::Outcome;
use crate::state::{Shared, ROOM_PLAYERS_LISTED_MAX};

/// Every channel and key of this mode starts with this, so a baseline
/// cluster and a mudshard cluster can share one Redis without meeting.
const PREFIX: &str = "baseline:";
/// The channel of shouts, which every process subscribes to.
const SHOUT_CHANNEL: &str = "baseline:shout";
/// The hash of who is online: name → host id.
const WHO_KEY: &str = "baseline:who";

/// How long the subscriber blocks in a read before it looks for queued
/// (un)subscriptions: the most a new subscription waits for its turn.
const SUBSCRIBER_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// How long startup waits for the subscriber's first subscription.
const SUBSCRIBER_READY_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause between attempts to reconnect to Redis after an error.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(500);
/// How long a connection attempt to Redis may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The handles the game state uses to reach other processes (see the module
/// doc). Cheap to call from any thread: each call queues one job.
#[derive(Debug)]
pub struct Bridge {
    host_id: String,
    jobs: Sender<Job>,
    changes: Sender<Change>,
}

/// The receiving ends of the bridge's queues, until `start` gives them to
/// the threads that serve them.
pub struct Pumps {
    url: String,
    host_id: String,
    jobs: Receiver<Job>,
    changes: Receiver<Change>,
}

/// A job for the publisher thread.
enum Job {
    /// A room event, shout or tell nobody waits on.
    Publish { channel: String, payload: String },
    /// A tell to a player elsewhere: answered by whether anyone received it.
    Tell {
        channel: String,
        payload: String,
        to: String,
        echo: String,
        done: oneshot::Sender<Outcome>,
    },
    /// `who`, answered from the hash.
    Who { done: oneshot::Sender<Outcome> },
    /// A player logged in here.
    Online(String),
    /// A player left this host.
    Offline(String),
}

/// A change of the subscriber's subscriptions, applied in the order queued.
enum Change {
    Subscribe {
        channel: String,
        /// Told once Redis has confirmed the subscription.
        done: Option<oneshot::Sender<()>>,
    },
    Unsubscribe(String),
}

/// What travels on room and shout channels: the event as encoded for
/// clients, who sent it (not to be delivered to them) and from which host
/// (a process skips what it published itself: it delivered that locally).
#[derive(Serialize, Deserialize)]
struct Envelope<'a> {
    origin: Cow<'a, str>,
    except: Cow<'a, str>,
    event: Cow<'a, str>,
}

/// The bridge's queues for `host_id`; start the pumps with [`start`].
pub fn channels(url: &str, host_id: &str) -> (Bridge, Pumps) {
    let (jobs_tx, jobs_rx) = mpsc::channel();
    let (changes_tx, changes_rx) = mpsc::channel();
    let bridge = Bridge {
        host_id: host_id.to_owned(),
        jobs: jobs_tx,
        changes: changes_tx,
    };
    let pumps = Pumps {
        url: url.to_owned(),
        host_id: host_id.to_owned(),
        jobs: jobs_rx,
        changes: changes_rx,
    };
    (bridge, pumps)
}

/// Connects to Redis, forgets this host's players left in the `who` hash by
/// an earlier run, starts the publisher and subscriber threads and waits
/// until the shout channel is subscribed.
pub fn start(pumps: Pumps, shared: Arc<Shared>) -> Result<(), String> {
    let Pumps {
        url,
        host_id,
        jobs,
        changes,
    } = pumps;
    let client = redis::Client::open(url.as_str()).map_err(|e| format!("--redis {url}: {e}"))?;
    let mut publisher = client
        .get_connection_with_timeout(CONNECT_TIMEOUT)
        .map_err(|e| format!("cannot connect to Redis at {url}: {e}"))?;
    forget_own_players(&mut publisher, &host_id)
        .map_err(|e| format!("Redis at {url}: cleaning {WHO_KEY}: {e}"))?;

    let (ready_tx, ready_rx) = mpsc::channel();
    let subscriber_client = client.clone();
    let subscriber_host = host_id.clone();
    std::thread::Builder::new()
        .name("redis-subscriber".into())
        .spawn(move || {
            subscribe_loop(
                &subscriber_client,
                &subscriber_host,
                &changes,
                &shared,
                ready_tx,
            )
        })
        .map_err(|e| format!("cannot start the subscriber thread: {e}"))?;
    std::thread::Builder::new()
        .name("redis-publisher".into())
        .spawn(move || publish_loop(&client, publisher, &host_id, &jobs))
        .map_err(|e| format!("cannot start the publisher thread: {e}"))?;
    match ready_rx.recv_timeout(SUBSCRIBER_READY_TIMEOUT) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(why)) => Err(format!("Redis at {url}: {why}")),
        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
            Err(format!("Redis at {url}: the subscriber did not start"))
        }
    }
}

impl Bridge {
    pub fn host_id(&self) -> &str {
        &self.host_id
    }

    /// Starts listening to a room's channel (its first local player came).
    /// The receiver is told once Redis confirmed the subscription.
    pub fn join_room(&self, room: &str) -> oneshot::Receiver<()> {
        let (done, confirmed) = oneshot::channel();
        self.change(Change::Subscribe {
            channel: room_channel(room),
            done: Some(done),
        });
        confirmed
    }

    /// Stops listening to a room's channel (its last local player left).
    pub fn leave_room(&self, room: &str) {
        self.change(Change::Unsubscribe(room_channel(room)));
    }

    /// A player logged in here: listen to their tells, list them in `who`.
    pub fn player_online(&self, name: &str) {
        self.change(Change::Subscribe {
            channel: tell_channel(name),
            done: None,
        });
        self.job(Job::Online(name.to_owned()));
    }

    /// A player left: the reverse of [`Bridge::player_online`].
    pub fn player_offline(&self, name: &str) {
        self.change(Change::Unsubscribe(tell_channel(name)));
        self.job(Job::Offline(name.to_owned()));
    }

    /// Publishes a room event to the room's channel (one PUBLISH).
    pub fn room_event(&self, room: &str, except: &str, event: &str) {
        self.job(Job::Publish {
            channel: room_channel(room),
            payload: self.envelope(except, event),
        });
    }

    /// Publishes a shout to every process.
    pub fn shout(&self, except: &str, event: &str) {
        self.job(Job::Publish {
            channel: SHOUT_CHANNEL.to_owned(),
            payload: self.envelope(except, event),
        });
    }

    /// Sends a tell to `to` on whatever host they are; the outcome says
    /// whether anyone by that name received it.
    pub fn tell(&self, to: &str, event: &str, echo: String) -> oneshot::Receiver<Outcome> {
        let (done, outcome) = oneshot::channel();
        self.job(Job::Tell {
            channel: tell_channel(to),
            payload: event.to_owned(),
            to: to.to_owned(),
            echo,
            done,
        });
        outcome
    }

    /// Lists everyone online on every host.
    pub fn who(&self) -> oneshot::Receiver<Outcome> {
        let (done, outcome) = oneshot::channel();
        self.job(Job::Who { done });
        outcome
    }

    fn envelope(&self, except: &str, event: &str) -> String {
        serde_json::to_string(&Envelope {
            origin: self.host_id.as_str().into(),
            except: except.into(),
            event: event.into(),
        })
        .expect("an envelope of strings is always encodable")
    }

    // The pumps live as long as the process; a send fails only while it
    // shuts down, when nothing is worth bridging any more.
    fn job(&self, job: Job) {
        let _ = self.jobs.send(job);
    }

    fn change(&self, change: Change) {
        let _ = self.changes.send(change);
    }
}

fn room_channel(room: &str) -> String {
    format!("{PREFIX}room:{room}")
}

fn tell_channel(name: &str) -> String {
    format!("{PREFIX}tell:{name}")
}

/// Removes the `who` entries this host left behind when it last stopped.
fn forget_own_players(con: &mut redis::Connection, host_id: &str) -> redis::RedisResult<()> {
    let all: std::collections::HashMap<String, String> =
        redis::cmd("HGETALL").arg(WHO_KEY).query(con)?;
    let mine: Vec<&String> = all
        .iter()
        .filter(|(_, host)| *host == host_id)
        .map(|(name, _)| name)
        .collect();
    if !mine.is_empty() {
        redis::cmd("HDEL")
            .arg(WHO_KEY)
            .arg(&mine)
            .query::<()>(con)?;
    }
    Ok(())
}

/// The publisher thread: one job, one round trip, in queue order. On an
/// error it answers the job's waiter `unreachable`, reconnects and goes on.
fn publish_loop(
    client: &redis::Client,
    mut con: redis::Connection,
    host_id: &str,
    jobs: &Receiver<Job>,
) {
    while let Ok(job) = jobs.recv() {
        if let Err(err) = run_job(&mut con, host_id, job) {
            eprintln!("redis publisher: {err}; reconnecting");
            con = reconnect(client);
        }
    }
}

fn run_job(con: &mut redis::Connection, host_id: &str, job: Job) -> redis::RedisResult<()> {
    match job {
        Job::Publish { channel, payload } => redis::cmd("PUBLISH")
            .arg(channel)
            .arg(payload)
            .query::<()>(con),
        Job::Tell {
            channel,
            payload,
            to,
            echo,
            done,
        } => {
            let received = redis::cmd("PUBLISH")
                .arg(channel)
                .arg(payload)
                .query::<u64>(con);
            let outcome = match &received {
                Ok(0) => Outcome::fail("no_such_player", format!("Nobody called {to} is online.")),
                Ok(_) => Outcome::ok(echo, None),
                Err(_) => unreachable_outcome(),
            };
            let _ = done.send(outcome);
            received.map(|_| ())
        }
        Job::Who { done } => {
            let names = redis::cmd("HKEYS").arg(WHO_KEY).query::<Vec<String>>(con);
            let outcome = match &names {
                Ok(names) => who_outcome(names),
                Err(_) => unreachable_outcome(),
            };
            let _ = done.send(outcome);
            names.map(|_| ())
        }
        Job::Online(name) => redis::cmd("HSET")
            .arg(WHO_KEY)
            .arg(name)
            .arg(host_id)
            .query::<()>(con),
        Job::Offline(name) => redis::cmd("HDEL").arg(WHO_KEY).arg(name).query::<()>(con),
    }
}

fn unreachable_outcome() -> Outcome {
    Outcome::fail(
        "unreachable",
        "The other hosts cannot be reached right now.",
    )
}

/// `who`'s answer: how many, and the first names in order.
pub fn who_outcome(names: &[String]) -> Outcome {
    let mut sorted: Vec<&str> = names.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    let listed = sorted.len().min(ROOM_PLAYERS_LISTED_MAX);
    let mut text = format!("{} online: {}", sorted.len(), sorted[..listed].join(", "));
    if listed < sorted.len() {
        text.push_str(", …");
    }
    Outcome::ok(text, None)
}

/// The subscriber thread (see the module doc): keeps the subscriptions the
/// game asks for and delivers what arrives; after an error it reconnects and
/// subscribes again to everything it had.
fn subscribe_loop(
    client: &redis::Client,
    host_id: &str,
    changes: &Receiver<Change>,
    shared: &Shared,
    ready: Sender<Result<(), String>>,
) {
    let mut subscribed: HashSet<String> = HashSet::from([SHOUT_CHANNEL.to_owned()]);
    let mut ready = Some(ready);
    loop {
        let outcome = client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .and_then(|mut con| {
                serve_subscriptions(
                    &mut con,
                    host_id,
                    changes,
                    shared,
                    &mut subscribed,
                    &mut ready,
                )
            });
        match outcome {
            // The game is gone (shutdown): nothing more to subscribe to.
            Ok(()) => return,
            Err(err) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(Err(err.to_string()));
                    return;
                }
                eprintln!("redis subscriber: {err}; reconnecting");
                std::thread::sleep(RECONNECT_BACKOFF);
            }
        }
    }
}

/// Runs one subscribed connection until it fails (`Err`) or the game stops
/// queueing changes (`Ok`).
fn serve_subscriptions(
    con: &mut redis::Connection,
    host_id: &str,
    changes: &Receiver<Change>,
    shared: &Shared,
    subscribed: &mut HashSet<String>,
    ready: &mut Option<Sender<Result<(), String>>>,
) -> redis::RedisResult<()> {
    let mut pubsub = con.as_pubsub();
    for channel in subscribed.iter() {
        pubsub.subscribe(channel)?;
    }
    pubsub.set_read_timeout(Some(SUBSCRIBER_POLL_INTERVAL))?;
    if let Some(ready) = ready.take() {
        let _ = ready.send(Ok(()));
    }
    loop {
        loop {
            match changes.try_recv() {
                Ok(Change::Subscribe { channel, done }) => {
                    pubsub.subscribe(&channel)?;
                    subscribed.insert(channel);
                    if let Some(done) = done {
                        let _ = done.send(());
                    }
                }
                Ok(Change::Unsubscribe(channel)) => {
                    pubsub.unsubscribe(&channel)?;
                    subscribed.remove(&channel);
                }
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return Ok(()),
            }
        }
        match pubsub.get_message() {
            Ok(msg) => deliver(
                shared,
                host_id,
                msg.get_channel_name(),
                msg.get_payload_bytes(),
            ),
            Err(err) if err.is_timeout() => {}
            Err(err) => return Err(err),
        }
    }
}

/// Hands a message from Redis to the local players it is for. A message
/// that does not decode is another program's on our channels: skipped.
fn deliver(shared: &Shared, host_id: &str, channel: &str, payload: &[u8]) {
    let Some(what) = channel.strip_prefix(PREFIX) else {
        return;
    };
    if let Some(name) = what.strip_prefix("tell:") {
        if let Ok(event) = std::str::from_utf8(payload) {
            shared.deliver_tell(name, event.into());
        }
        return;
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(payload) else {
        return;
    };
    if envelope.origin == host_id {
        return;
    }
    let event: Arc<str> = envelope.event.into();
    if let Some(room) = what.strip_prefix("room:") {
        shared.deliver_room(room, &envelope.except, &event);
    } else if channel == SHOUT_CHANNEL {
        shared.deliver_all(&envelope.except, &event);
    }
}

/// Connects again, pausing between attempts, for as long as it takes.
fn reconnect(client: &redis::Client) -> redis::Connection {
    loop {
        std::thread::sleep(RECONNECT_BACKOFF);
        match client.get_connection_with_timeout(CONNECT_TIMEOUT) {
            Ok(con) => return con,
            Err(err) => eprintln!("redis publisher: reconnecting: {err}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_lists_names_in_order_and_caps_the_list() {
        let names: Vec<String> = ["carol", "alice", "bob"].map(String::from).to_vec();
        assert_eq!(who_outcome(&names).text, "3 online: alice, bob, carol");
        let many: Vec<String> = (0..60).map(|i| format!("p{i:02}")).collect();
        let text = who_outcome(&many).text;
        assert!(text.starts_with("60 online: p00, p01"), "{text}");
        assert!(text.ends_with("p49, …"), "{text}");
    }

    #[test]
    fn envelopes_round_trip_with_quotes_inside() {
        let (bridge, _pumps) = channels("redis://127.0.0.1:1", "a");
        let event = r#"{"type":"event","kind":"say","text":"he said \"hi\""}"#;
        let payload = bridge.envelope("alice", event);
        let back: Envelope = serde_json::from_str(&payload).expect("decodes");
        assert_eq!((&*back.origin, &*back.except), ("a", "alice"));
        assert_eq!(back.event, event);
    }
}
