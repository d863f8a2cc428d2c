//! Bounds on what a zone file may contain.
//!
//! Zone files are trusted more than network input but are still hand-written,
//! and their contents go out in every `look` reply: a runaway description or a
//! room with ten thousand items would make every frame from that room huge.
//! Each bound has an error naming it. Lengths count Unicode characters, as
//! every text limit in the protocol does.

/// Largest zone file accepted, read before parsing so a wrong path to a huge
/// file fails fast instead of being parsed.
pub const ZONE_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// Zones in one world.
pub const ZONES_MAX: usize = 256;
/// Rooms in one zone file.
pub const ZONE_ROOMS_MAX: usize = 2_000;
/// Length of a zone id or the local part of a room id.
pub const ID_CHARS_MAX: usize = 32;
/// Length of a zone, room or NPC name.
pub const NAME_CHARS_MAX: usize = 60;
/// Length of a room or NPC description.
pub const DESCRIPTION_CHARS_MAX: usize = 1_000;
/// Items a room starts with.
pub const ROOM_ITEMS_MAX: usize = 32;
/// Length of an item name.
pub const ITEM_CHARS_MAX: usize = 24;
/// NPCs living in one room.
pub const ROOM_NPCS_MAX: usize = 8;
/// Ambient lines of one NPC.
pub const NPC_AMBIENT_MAX: usize = 16;
/// Length of one ambient line.
pub const AMBIENT_CHARS_MAX: usize = 300;
