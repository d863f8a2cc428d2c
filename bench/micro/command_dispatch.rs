//! Command dispatch: from a typed line to its effects.
//!
//! * `command_dispatch/parse/*` — `game::command::parse` of typical lines
//!   (verbs, abbreviations, arguments borrowed from the line). It runs for
//!   every command of every player and is meant to allocate nothing.
//! * `command_dispatch/owner/*` — `Owner::command` on the shard that owns the
//!   room, its effects carried out through a `Router` with real mailboxes:
//!   parse (once, as the edge does), the room's state, the reply body, and
//!   for `say` the event body and one `RoomEvent` per shard with viewers
//!   (here: this shard, via the router's local queue, and the other shard,
//!   via its mailbox). The messages produced are drained
//!   (and dropped) inside the measured loop, since taking them off the queues
//!   is part of a command's cost; the other shard's doorbell is rung once and
//!   not re-armed, as for a busy shard whose senders pay no syscall.
//!
//! Why it matters: this is the owner shard's share of every `rtt` (`look`)
//! and `chat` (`say`) operation; with the frame decode and the fan-out it
//! makes up the server's CPU per command.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::hint::black_box;
use std::sync::Arc;

use mudshard::config::{GameConfig, Limits};
use mudshard::game::command;
use mudshard::game::effect::{Effect, Effects};
use mudshard::game::owner::Owner;
use mudshard::protocol::decode::{decode, ClientFrame};
use mudshard::protocol::MsgId;
use mudshard::shard::mailbox::{self, Inbox};
use mudshard::shard::msg::{Arrival, Body, Msg};
use mudshard::shard::placement::Placement;
use mudshard::shard::router::Router;
use mudshard::shard::{SessionId, ShardAddr};
use mudshard::world::World;

/// Lines as players and the load generator type them.
const LINES: &[(&str, &str)] = &[
    ("look", "look"),
    ("l", "l"),
    ("n", "n"),
    ("go_north", "go north"),
    (
        "say",
        "say has anyone seen the blacksmith? I need my sword mended",
    ),
    ("say_quote", "'hi all"),
    ("emote", ":waves cheerfully"),
    ("tell", "tell bob meet me at the square"),
    ("goto", "goto grid:42_17"),
    ("unknown", "xyzzy plugh"),
];

/// Shards in the dispatch setup: the owner and one other.
const SHARDS: u16 = 2;
/// Players in the room the commands run in (the standard `chat` room size).
const ROOM_PLAYERS: u32 = 100;

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("command_dispatch/parse");
    for (name, line) in LINES {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| command::parse(black_box(line)).is_ok())
        });
    }
    group.finish();
}

/// An owner shard (0) holding `ROOM_PLAYERS` bodies in one of its rooms,
/// half of them connected on shard 0 and half on shard 1.
struct OwnerSetup {
    owner: Owner,
    effects: Effects,
    router: Router,
    other_inbox: Inbox,
    speaker: SessionId,
    id: Option<MsgId>,
}

impl OwnerSetup {
    fn new() -> OwnerSetup {
        let world = Arc::new(World::generated(10, 10));
        let placement = Placement::single_host(&world, 0, SHARDS);
        let room = (0..world.rooms.len() as u32)
            .find(|&r| placement.owner(r).shard == 0)
            .expect("a 10x10 grid has rooms on shard 0");
        let (mailboxes, mut inboxes) = mailbox::create(
            SHARDS as usize,
            Limits::default().inbox_msgs_max,
            mailbox::Wake::Waker,
        )
        .expect("socket pair");
        let other_inbox = inboxes.pop().expect("two inboxes");
        let mut router = Router::new(0, mailboxes);
        let game = GameConfig {
            guests: true,
            goto_everyone: true,
            ambient_interval_ms: 0,
        };
        let mut owner = Owner::new(
            ShardAddr::new(0, 0),
            world,
            Limits::default(),
            game,
            std::sync::Arc::new(Default::default()),
        );
        let mut effects = Effects::new();
        for i in 0..ROOM_PLAYERS {
            let sid = SessionId::new(ShardAddr::new(0, (i % u32::from(SHARDS)) as u16), i, 1);
            let body = Body {
                sid,
                name: format!("lg0_{i}").into(),
                inventory: Vec::new(),
                account: false,
            };
            owner.arrive(&mut effects, body, room, Arrival::Login, None);
            carry_out(&mut router, &mut effects);
        }
        let mut setup = OwnerSetup {
            owner,
            effects,
            router,
            other_inbox,
            speaker: SessionId::new(ShardAddr::new(0, 0), 0, 1),
            id: request_id(),
        };
        setup.drain();
        setup
    }

    /// Takes every message the command produced off both queues.
    fn drain(&mut self) -> usize {
        let mut messages = 0;
        while let Some(msg) = self.router.next_local() {
            black_box(&msg);
            messages += 1;
        }
        while let Some(msg) = self.other_inbox.try_recv() {
            black_box(&msg);
            messages += 1;
        }
        messages
    }
}

/// What the shard does with the game's effects that this benchmark makes:
/// each becomes a message to the shard it concerns.
fn carry_out(router: &mut Router, effects: &mut Effects) {
    for effect in effects.drain(..) {
        match effect {
            Effect::Frame { sid, frame, done } => {
                router.post_to(sid.addr(), Msg::Frame { sid, frame, done });
            }
            Effect::Welcomed { sid, room_json } => {
                router.post_to(sid.addr(), Msg::Welcomed { sid, room_json });
            }
            Effect::Entered { sid, room, owner } => {
                router.post_to(sid.addr(), Msg::Entered { sid, room, owner });
            }
            Effect::RoomEvent {
                to,
                room,
                frame,
                except,
            } => {
                router.post_to(
                    to,
                    Msg::RoomEvent {
                        room,
                        frame,
                        except,
                    },
                );
            }
            other => panic!("the benchmark's commands do not cause {other:?}"),
        }
    }
}

/// A request id as the decoder makes it from `"id":4711`.
fn request_id() -> Option<MsgId> {
    let mut frame = br#"{"type":"ping","id":4711}"#.to_vec();
    match decode(&mut frame) {
        Ok(ClientFrame::Ping { id }) => id,
        _ => None,
    }
}

fn bench_owner(c: &mut Criterion) {
    let mut group = c.benchmark_group("command_dispatch/owner");
    let commands = [
        ("look", "look"),
        (
            "say_room_of_100",
            "say has anyone seen the blacksmith? I need my sword mended",
        ),
        ("go_no_exit", "go up"),
    ];
    for (name, line) in commands {
        let mut setup = OwnerSetup::new();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                let (sid, id) = (setup.speaker, setup.id);
                let Ok(cmd) = command::parse(black_box(line)).map(|c| c.route()) else {
                    panic!("{line:?} parses");
                };
                let Ok(cmd) = cmd else {
                    panic!("{line:?} is a command for the room's owner");
                };
                setup.owner.command(&mut setup.effects, sid, id, &cmd);
                carry_out(&mut setup.router, &mut setup.effects);
                setup.drain()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse, bench_owner);
criterion_main!(benches);
