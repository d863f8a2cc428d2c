//! The command parser: one typed line in, one [`Command`] out.
//!
//! Pure and allocation-free on success, because it runs for every command
//! every player sends. Arguments borrow from the line; the verb is matched
//! case-insensitively through a small stack buffer instead of a lowercased
//! `String`.
//!
//! Rules (DESIGN.md §5): verbs are case-insensitive and have the usual MUD
//! abbreviations (see [`HELP_TEXT`]); `'text` says and `:text` emotes without a
//! space; the line is trimmed, but argument text keeps its inner spacing.
//! Commands that take no argument ignore anything after the verb, so
//! `look around` still looks.

use crate::world::Dir;

/// What a player asked for, with its arguments borrowed from the typed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    /// Show the room.
    Look,
    /// Walk through an exit.
    Go(Dir),
    /// Speak to the room.
    Say(&'a str),
    /// Act to the room: `:waves` shows "alice waves".
    Emote(&'a str),
    /// Speak privately to one player, wherever they are.
    Tell { to: &'a str, text: &'a str },
    /// Speak to everyone online.
    Shout(&'a str),
    /// List who is online.
    Who,
    /// List what the player carries.
    Inventory,
    /// Pick an item up from the room.
    Get(&'a str),
    /// Put an item down in the room.
    Drop(&'a str),
    /// Show [`HELP_TEXT`].
    Help,
    /// End the session.
    Quit,
    /// Teleport to a room by full id (admins, load tests).
    Goto(&'a str),
}

impl Command<'_> {
    /// A stable name for metrics (`commands by kind`) and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Look => "look",
            Command::Go(_) => "go",
            Command::Say(_) => "say",
            Command::Emote(_) => "emote",
            Command::Tell { .. } => "tell",
            Command::Shout(_) => "shout",
            Command::Who => "who",
            Command::Inventory => "inventory",
            Command::Get(_) => "get",
            Command::Drop(_) => "drop",
            Command::Help => "help",
            Command::Quit => "quit",
            Command::Goto(_) => "goto",
        }
    }
}

/// A command for the body's room owner, parsed where it was read and sent
/// there owned (the owner may be another shard or another host). The
/// commands answered at the connection's shard (`who`, `tell`, `shout`,
/// `help`) have no form here, so the owner cannot be asked them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyCommand {
    Look,
    Go(Dir),
    Say(Box<str>),
    Emote(Box<str>),
    Inventory,
    Get(Box<str>),
    Drop(Box<str>),
    Quit,
    Goto(Box<str>),
}

impl BodyCommand {
    /// The stable name of the command, as [`Command::kind`] gives it.
    pub fn kind(&self) -> &'static str {
        match self {
            BodyCommand::Look => "look",
            BodyCommand::Go(_) => "go",
            BodyCommand::Say(_) => "say",
            BodyCommand::Emote(_) => "emote",
            BodyCommand::Inventory => "inventory",
            BodyCommand::Get(_) => "get",
            BodyCommand::Drop(_) => "drop",
            BodyCommand::Quit => "quit",
            BodyCommand::Goto(_) => "goto",
        }
    }
}

/// A command the connection's shard answers itself: it needs the name
/// directory or every shard, not the body's room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeCommand<'a> {
    Tell { to: &'a str, text: &'a str },
    Shout(&'a str),
    Who,
    Help,
}

impl EdgeCommand<'_> {
    /// The stable name of the command, as [`Command::kind`] gives it.
    pub fn kind(&self) -> &'static str {
        match self {
            EdgeCommand::Tell { .. } => "tell",
            EdgeCommand::Shout(_) => "shout",
            EdgeCommand::Who => "who",
            EdgeCommand::Help => "help",
        }
    }
}

impl<'a> Command<'a> {
    /// Splits commands by where they run: the owned form of a command for
    /// the body's room owner, or one the connection's shard answers.
    pub fn route(self) -> Result<BodyCommand, EdgeCommand<'a>> {
        Ok(match self {
            Command::Look => BodyCommand::Look,
            Command::Go(dir) => BodyCommand::Go(dir),
            Command::Say(text) => BodyCommand::Say(Box::from(text)),
            Command::Emote(text) => BodyCommand::Emote(Box::from(text)),
            Command::Inventory => BodyCommand::Inventory,
            Command::Get(item) => BodyCommand::Get(Box::from(item)),
            Command::Drop(item) => BodyCommand::Drop(Box::from(item)),
            Command::Quit => BodyCommand::Quit,
            Command::Goto(room) => BodyCommand::Goto(Box::from(room)),
            Command::Tell { to, text } => return Err(EdgeCommand::Tell { to, text }),
            Command::Shout(text) => return Err(EdgeCommand::Shout(text)),
            Command::Who => return Err(EdgeCommand::Who),
            Command::Help => return Err(EdgeCommand::Help),
        })
    }
}

/// Why a line is not a command; answered with an `ok:false` reply, never by
/// dropping the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError<'a> {
    /// Nothing but whitespace.
    Empty,
    /// A known verb with missing or wrong arguments.
    Usage {
        verb: &'static str,
        usage: &'static str,
    },
    /// The first word is not a verb; holds that word.
    Unknown(&'a str),
}

impl ParseError<'_> {
    /// A stable machine-readable code for the reply.
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Empty => "empty",
            ParseError::Usage { .. } => "usage",
            ParseError::Unknown(_) => "unknown_command",
        }
    }

    /// What to tell the player.
    pub fn message(&self) -> String {
        match self {
            ParseError::Empty => "Type a command. Type \"help\" for the list.".to_string(),
            ParseError::Usage { usage, .. } => format!("Usage: {usage}"),
            ParseError::Unknown(word) => unknown_message(word),
        }
    }
}

/// The help shown to players: every command with its abbreviations.
pub const HELP_TEXT: &str = "\
Commands (case does not matter):
  look, l                  look around the room
  go <direction>           walk: north, south, east, west, up, down
  north n  south s  east e  west w  up u  down d
  say <text>, '<text>      speak to the room
  emote <text>, :<text>    act, e.g. :waves shows \"<your name> waves\"
  tell <name> <text>       speak privately to one player
  shout <text>             speak to everyone online
  who                      list everyone online
  inventory, inv, i        list what you carry
  get <item>, take <item>  pick an item up
  drop <item>              put an item down
  goto <room id>           teleport, e.g. goto town:square (where allowed)
  help, ?                  this list
  quit                     leave the game";

const USAGE_GO: &str = "go <direction>, where direction is one of north, south, east, west, up, down (or n, s, e, w, u, d)";
const USAGE_SAY: &str = "say <text> (or '<text>)";
const USAGE_EMOTE: &str = "emote <text> (or :<text>)";
const USAGE_TELL: &str = "tell <name> <text>";
const USAGE_SHOUT: &str = "shout <text>";
const USAGE_GET: &str = "get <item>";
const USAGE_DROP: &str = "drop <item>";
const USAGE_GOTO: &str = "goto <room id>, e.g. goto town:square";

/// Longest verb, in bytes; a longer first word cannot be one.
const VERB_BYTES_MAX: usize = 9; // "inventory"

/// Longest unknown word echoed back, in characters, so a megabyte of garbage
/// typed as one word is not sent back to its author.
const UNKNOWN_ECHO_CHARS_MAX: usize = 24;

/// Parses one typed line.
pub fn parse(line: &str) -> Result<Command<'_>, ParseError<'_>> {
    let line = line.trim();
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    if let Some(text) = line.strip_prefix('\'') {
        return with_text(text, Command::Say, "say", USAGE_SAY);
    }
    if let Some(text) = line.strip_prefix(':') {
        return with_text(text, Command::Emote, "emote", USAGE_EMOTE);
    }
    let (word, rest) = split_word(line);
    let mut buf = [0u8; VERB_BYTES_MAX];
    let Some(verb) = lowercase_verb(word, &mut buf) else {
        return Err(ParseError::Unknown(word));
    };
    match verb {
        "look" | "l" => Ok(Command::Look),
        "go" => go(rest),
        "say" => with_text(rest, Command::Say, "say", USAGE_SAY),
        "emote" => with_text(rest, Command::Emote, "emote", USAGE_EMOTE),
        "tell" => tell(rest),
        "shout" => with_text(rest, Command::Shout, "shout", USAGE_SHOUT),
        "who" => Ok(Command::Who),
        "inventory" | "inv" | "i" => Ok(Command::Inventory),
        "get" | "take" => with_text(rest, Command::Get, "get", USAGE_GET),
        "drop" => with_text(rest, Command::Drop, "drop", USAGE_DROP),
        "help" | "?" => Ok(Command::Help),
        "quit" => Ok(Command::Quit),
        "goto" => with_text(rest, Command::Goto, "goto", USAGE_GOTO),
        _ => match Dir::parse(verb) {
            Some(dir) => Ok(Command::Go(dir)),
            None => Err(ParseError::Unknown(word)),
        },
    }
}

/// Splits off the first word; the rest starts at its first non-space.
fn split_word(line: &str) -> (&str, &str) {
    match line.find(char::is_whitespace) {
        Some(end) => (&line[..end], line[end..].trim_start()),
        None => (line, ""),
    }
}

/// Lowercases an ASCII `word` into `buf`; `None` if it cannot be a verb.
fn lowercase_verb<'b>(word: &str, buf: &'b mut [u8; VERB_BYTES_MAX]) -> Option<&'b str> {
    if word.len() > VERB_BYTES_MAX || !word.is_ascii() {
        return None;
    }
    let out = &mut buf[..word.len()];
    out.copy_from_slice(word.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

fn with_text<'a>(
    text: &'a str,
    make: fn(&'a str) -> Command<'a>,
    verb: &'static str,
    usage: &'static str,
) -> Result<Command<'a>, ParseError<'a>> {
    let text = text.trim_start();
    if text.is_empty() {
        return Err(ParseError::Usage { verb, usage });
    }
    Ok(make(text))
}

fn go(rest: &str) -> Result<Command<'_>, ParseError<'_>> {
    let (word, _) = split_word(rest);
    match Dir::parse(word) {
        Some(dir) => Ok(Command::Go(dir)),
        None => Err(ParseError::Usage {
            verb: "go",
            usage: USAGE_GO,
        }),
    }
}

fn tell(rest: &str) -> Result<Command<'_>, ParseError<'_>> {
    let (to, text) = split_word(rest);
    if to.is_empty() || text.is_empty() {
        return Err(ParseError::Usage {
            verb: "tell",
            usage: USAGE_TELL,
        });
    }
    Ok(Command::Tell { to, text })
}

/// Verbs worth suggesting for a typo (abbreviations are too short to help).
const SUGGESTIONS: [&str; 19] = [
    "look",
    "go",
    "north",
    "south",
    "east",
    "west",
    "up",
    "down",
    "say",
    "emote",
    "tell",
    "shout",
    "who",
    "inventory",
    "get",
    "take",
    "drop",
    "help",
    "goto",
];

fn unknown_message(word: &str) -> String {
    let shown: String = word.chars().take(UNKNOWN_ECHO_CHARS_MAX).collect();
    let ellipsis = if shown.len() < word.len() { "…" } else { "" };
    let mut message = format!("Unknown command \"{shown}{ellipsis}\".");
    if let Some(verb) = closest_verb(word) {
        message.push_str(&format!(" Did you mean \"{verb}\"?"));
    }
    message.push_str(" Type \"help\" for the list.");
    message
}

/// The verb within a small edit distance of `word`, if one is clearly meant.
/// Short words are skipped: every two-letter typo is one edit from "go".
fn closest_verb(word: &str) -> Option<&'static str> {
    // One character more than a suggestion allows is enough to refuse it:
    // a megabyte-long word is not copied to be measured.
    let typed: Vec<char> = word
        .chars()
        .flat_map(char::to_lowercase)
        .take(VERB_BYTES_MAX + 3)
        .collect();
    if typed.len() < 3 || typed.len() > VERB_BYTES_MAX + 2 {
        return None;
    }
    let allowed = if typed.len() <= 4 { 1 } else { 2 };
    SUGGESTIONS
        .into_iter()
        .map(|verb| (edit_distance(&typed, verb), verb))
        .filter(|&(distance, _)| distance <= allowed)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, verb)| verb)
}

/// Optimal string alignment distance: Levenshtein plus adjacent swaps, since
/// "dacne" for "dance" is the commonest typo of all.
fn edit_distance(a: &[char], b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            d[i * width + j] = if i == 0 || j == 0 {
                i + j
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut best = (d[(i - 1) * width + j] + 1)
                    .min(d[i * width + j - 1] + 1)
                    .min(d[(i - 1) * width + j - 1] + cost);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    best = best.min(d[(i - 2) * width + j - 2] + 1);
                }
                best
            };
        }
    }
    d[a.len() * width + b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command<'_> {
        match parse(line) {
            Ok(command) => command,
            Err(e) => panic!("{line:?} should parse, got {e:?}"),
        }
    }

    fn usage_of(line: &str) -> &'static str {
        match parse(line) {
            Err(ParseError::Usage { verb, .. }) => verb,
            other => panic!("{line:?} should be a usage error, got {other:?}"),
        }
    }

    #[test]
    fn look_and_its_abbreviation() {
        assert_eq!(ok("look"), Command::Look);
        assert_eq!(ok("l"), Command::Look);
        assert_eq!(ok("LOOK"), Command::Look);
        assert_eq!(ok("look around"), Command::Look);
    }

    #[test]
    fn every_direction_word_and_letter_moves() {
        for dir in Dir::ALL {
            assert_eq!(ok(dir.name()), Command::Go(dir));
            assert_eq!(ok(dir.short()), Command::Go(dir));
            assert_eq!(ok(&dir.name().to_uppercase()), Command::Go(dir));
            assert_eq!(ok(&format!("go {}", dir.name())), Command::Go(dir));
            assert_eq!(ok(&format!("Go {}", dir.short())), Command::Go(dir));
        }
    }

    #[test]
    fn go_without_a_valid_direction_lists_the_directions() {
        for line in ["go", "go  ", "go sideways", "go northwest"] {
            assert_eq!(usage_of(line), "go");
            let message = parse(line).expect_err("bad go").message();
            for dir in Dir::ALL {
                assert!(message.contains(dir.name()), "{message}");
            }
        }
    }

    #[test]
    fn say_keeps_inner_spacing_and_has_a_quote_shortcut() {
        assert_eq!(ok("say hello"), Command::Say("hello"));
        assert_eq!(ok("SAY   hello   there  "), Command::Say("hello   there"));
        assert_eq!(ok("'hello"), Command::Say("hello"));
        assert_eq!(ok("' hello world"), Command::Say("hello world"));
        assert_eq!(usage_of("say"), "say");
        assert_eq!(usage_of("'"), "say");
        assert_eq!(usage_of("   '   "), "say");
    }

    #[test]
    fn emote_has_a_colon_shortcut() {
        assert_eq!(ok("emote waves"), Command::Emote("waves"));
        assert_eq!(ok(":waves happily"), Command::Emote("waves happily"));
        assert_eq!(ok(": bows"), Command::Emote("bows"));
        assert_eq!(usage_of("emote"), "emote");
        assert_eq!(usage_of(":"), "emote");
    }

    #[test]
    fn tell_takes_a_name_and_text() {
        assert_eq!(
            ok("tell bob hi there"),
            Command::Tell {
                to: "bob",
                text: "hi there"
            }
        );
        assert_eq!(
            ok("TELL  Bob   hi  there "),
            Command::Tell {
                to: "Bob",
                text: "hi  there"
            }
        );
        assert_eq!(usage_of("tell"), "tell");
        assert_eq!(usage_of("tell bob"), "tell");
        assert_eq!(usage_of("tell bob   "), "tell");
    }

    #[test]
    fn shout_who_inventory_help_quit() {
        assert_eq!(ok("shout fire!"), Command::Shout("fire!"));
        assert_eq!(usage_of("shout"), "shout");
        assert_eq!(ok("who"), Command::Who);
        assert_eq!(ok("WHO"), Command::Who);
        for line in ["inventory", "inv", "i", "I", "Inv"] {
            assert_eq!(ok(line), Command::Inventory);
        }
        assert_eq!(ok("help"), Command::Help);
        assert_eq!(ok("?"), Command::Help);
        assert_eq!(ok("quit"), Command::Quit);
        assert_eq!(ok("QUIT"), Command::Quit);
    }

    #[test]
    fn get_take_drop_need_an_item() {
        assert_eq!(ok("get lantern"), Command::Get("lantern"));
        assert_eq!(ok("take lantern"), Command::Get("lantern"));
        assert_eq!(ok("TAKE Lantern"), Command::Get("Lantern"));
        assert_eq!(ok("drop bread"), Command::Drop("bread"));
        assert_eq!(usage_of("get"), "get");
        assert_eq!(usage_of("take"), "get");
        assert_eq!(usage_of("drop "), "drop");
    }

    #[test]
    fn goto_takes_a_room_id() {
        assert_eq!(ok("goto town:square"), Command::Goto("town:square"));
        assert_eq!(ok("GOTO grid:12_7"), Command::Goto("grid:12_7"));
        assert_eq!(usage_of("goto"), "goto");
    }

    #[test]
    fn surrounding_whitespace_is_trimmed() {
        assert_eq!(ok("  \t look \r\n"), Command::Look);
        assert_eq!(ok("\tsay hi\n"), Command::Say("hi"));
        assert_eq!(ok("say\thi"), Command::Say("hi"));
    }

    #[test]
    fn empty_lines_are_empty() {
        for line in ["", "   ", "\t\r\n"] {
            let err = parse(line).expect_err("empty");
            assert_eq!(err, ParseError::Empty);
            assert_eq!(err.code(), "empty");
        }
    }

    #[test]
    fn unknown_verbs_are_named_and_get_a_suggestion() {
        let err = parse("dacne wildly").expect_err("unknown");
        assert_eq!(err, ParseError::Unknown("dacne"));
        assert_eq!(err.code(), "unknown_command");
        assert_eq!(
            err.message(),
            "Unknown command \"dacne\". Type \"help\" for the list."
        );
        let err = parse("loko").expect_err("typo");
        assert_eq!(
            err.message(),
            "Unknown command \"loko\". Did you mean \"look\"? Type \"help\" for the list."
        );
        assert!(parse("shuot hi")
            .expect_err("typo")
            .message()
            .contains("\"shout\""));
        assert!(parse("inventroy")
            .expect_err("typo")
            .message()
            .contains("\"inventory\""));
        assert!(!parse("xq")
            .expect_err("short")
            .message()
            .contains("Did you mean"));
        assert_eq!(parse("goo").expect_err("x"), ParseError::Unknown("goo"));
    }

    #[test]
    fn long_unknown_words_are_not_echoed_in_full() {
        let word = "x".repeat(10_000);
        let err = parse(&word).expect_err("unknown");
        assert_eq!(err, ParseError::Unknown(&word));
        assert!(err.message().len() < 200);
    }

    #[test]
    fn unicode_text_passes_through_and_unicode_verbs_are_unknown() {
        assert_eq!(ok("say héllo wörld 🌊"), Command::Say("héllo wörld 🌊"));
        assert_eq!(ok("'日本語"), Command::Say("日本語"));
        assert_eq!(ok(":💃 dances"), Command::Emote("💃 dances"));
        assert_eq!(
            ok("tell Zoë ça va?"),
            Command::Tell {
                to: "Zoë",
                text: "ça va?"
            }
        );
        assert_eq!(ok("say\u{3000}hi"), Command::Say("hi"));
        assert_eq!(parse("лук").expect_err("x"), ParseError::Unknown("лук"));
        assert!(parse("ñ").expect_err("x").message().contains("ñ"));
    }

    #[test]
    fn usage_errors_have_code_and_message() {
        let err = parse("get").expect_err("usage");
        assert_eq!(err.code(), "usage");
        assert_eq!(err.message(), "Usage: get <item>");
    }

    #[test]
    fn kinds_are_stable_names() {
        let cases = [
            ("look", "look"),
            ("n", "go"),
            ("'x", "say"),
            (":x", "emote"),
            ("tell a b", "tell"),
            ("shout x", "shout"),
            ("who", "who"),
            ("i", "inventory"),
            ("take x", "get"),
            ("drop x", "drop"),
            ("?", "help"),
            ("quit", "quit"),
            ("goto a:b", "goto"),
        ];
        for (line, kind) in cases {
            assert_eq!(ok(line).kind(), kind, "{line}");
        }
    }

    #[test]
    fn help_lists_every_verb_and_abbreviation() {
        for word in [
            "look, l ",
            "go ",
            "north n",
            "south s",
            "east e",
            "west w",
            "up u",
            "down d",
            "say",
            "'<text>",
            "emote",
            ":<text>",
            "tell",
            "shout",
            "who",
            "inventory",
            "inv",
            " i ",
            "get",
            "take",
            "drop",
            "help",
            "?",
            "quit",
            "goto",
        ] {
            assert!(HELP_TEXT.contains(word), "{word:?} missing from help");
        }
    }
}
