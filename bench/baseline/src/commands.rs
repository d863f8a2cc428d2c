//! Command lines, as players type them: the subset the load generator uses.

use tokio::sync::oneshot;

use crate::protocol::Outcome;
use crate::state::Shared;
use crate::world::Direction;

/// How a command is answered: at once, or once the Redis bridge has done its
/// part (`--redis` only), so that a session's replies stay in command order.
#[derive(Debug)]
pub enum Answer {
    Now(Outcome),
    /// The outcome, sent once a round trip to Redis has decided it (a tell
    /// to a player elsewhere, `who`).
    Later(oneshot::Receiver<Outcome>),
    /// The outcome, to be sent once Redis has confirmed the subscription to
    /// the room the player just entered, so that the reply means "you hear
    /// this room now" on every host.
    AfterSubscribe(Outcome, oneshot::Receiver<()>),
}

impl From<Outcome> for Answer {
    fn from(outcome: Outcome) -> Answer {
        Answer::Now(outcome)
    }
}

/// What a command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    Look,
    Walk(Direction),
    /// `go` with a word that is not a direction.
    WalkNowhere(&'a str),
    Say(&'a str),
    Emote(&'a str),
    Shout(&'a str),
    /// `tell <name> <text>`: the name and the text (empty when missing).
    Tell(&'a str, &'a str),
    Who,
    Goto(&'a str),
    Quit,
    Unknown(&'a str),
}

impl<'a> Command<'a> {
    /// Parses a line. The command word is case-insensitive; the rest of the
    /// line (after the whitespace that follows the word) is kept verbatim.
    pub fn parse(line: &'a str) -> Command<'a> {
        let line = line.trim_start();
        if let Some(text) = line.strip_prefix('\'') {
            return Command::Say(text.trim_start());
        }
        if let Some(text) = line.strip_prefix(':') {
            return Command::Emote(text.trim_start());
        }
        let (word, rest) = match line.split_once(char::is_whitespace) {
            Some((word, rest)) => (word, rest.trim_start()),
            None => (line, ""),
        };
        match word.to_ascii_lowercase().as_str() {
            "look" | "l" => Command::Look,
            "go" => match Direction::parse(rest.trim_end()) {
                Some(dir) => Command::Walk(dir),
                None => Command::WalkNowhere(rest.trim_end()),
            },
            "say" => Command::Say(rest),
            "emote" => Command::Emote(rest),
            "shout" => Command::Shout(rest),
            "tell" => match rest.split_once(char::is_whitespace) {
                Some((to, text)) => Command::Tell(to, text.trim_start()),
                None => Command::Tell(rest.trim_end(), ""),
            },
            "who" => Command::Who,
            "goto" => Command::Goto(rest.trim_end()),
            "quit" => Command::Quit,
            _ => match Direction::parse(word) {
                Some(dir) if rest.is_empty() => Command::Walk(dir),
                _ => Command::Unknown(word),
            },
        }
    }

    /// Carries the command out for player `name`.
    pub fn run(&self, shared: &Shared, name: &str) -> Answer {
        match *self {
            Command::Look => shared.look(name).into(),
            Command::Walk(dir) => shared.walk(name, dir),
            Command::WalkNowhere("") => Outcome::fail("no_exit", "Go where?").into(),
            Command::WalkNowhere(word) => {
                Outcome::fail("no_exit", format!("You can't go {word:?} from here.")).into()
            }
            Command::Say("") => Outcome::fail("missing_text", "Say what?").into(),
            Command::Say(text) => shared.room_speech(name, "say", text).into(),
            Command::Emote("") => Outcome::fail("missing_text", "Emote what?").into(),
            Command::Emote(text) => shared.room_speech(name, "emote", text).into(),
            Command::Shout("") => Outcome::fail("missing_text", "Shout what?").into(),
            Command::Shout(text) => shared.shout(name, text).into(),
            Command::Tell("", _) => Outcome::fail("no_such_player", "Tell whom?").into(),
            Command::Tell(_, "") => Outcome::fail("missing_text", "Tell them what?").into(),
            Command::Tell(to, text) => shared.tell(name, to, text),
            Command::Who => shared.who(),
            Command::Goto("") => Outcome::fail("no_such_room", "Go to which room?").into(),
            Command::Goto(room) => shared.teleport(name, room),
            Command::Quit => Outcome::ok("Goodbye.", None).into(),
            Command::Unknown(word) => Outcome::fail(
                "unknown_command",
                format!(
                    "Unknown command {word:?}. Try look, n/s/e/w, go <dir>, say <text>, \
                     emote <text>, shout <text>, tell <name> <text>, who, goto <room id> or quit."
                ),
            )
            .into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_abbreviations() {
        assert_eq!(Command::parse("l"), Command::Look);
        assert_eq!(Command::parse("LOOK"), Command::Look);
        assert_eq!(Command::parse("n"), Command::Walk(Direction::North));
        assert_eq!(Command::parse("go  west "), Command::Walk(Direction::West));
        assert_eq!(
            Command::parse("go nowhere"),
            Command::WalkNowhere("nowhere")
        );
        assert_eq!(Command::parse("goto grid:3_4"), Command::Goto("grid:3_4"));
        assert_eq!(Command::parse("quit"), Command::Quit);
        assert_eq!(Command::parse("dance"), Command::Unknown("dance"));
        assert_eq!(Command::parse("WHO"), Command::Who);
    }

    #[test]
    fn tell_takes_a_name_then_the_text_verbatim() {
        assert_eq!(
            Command::parse("tell bob  hi  there"),
            Command::Tell("bob", "hi  there")
        );
        assert_eq!(Command::parse("tell bob"), Command::Tell("bob", ""));
        assert_eq!(Command::parse(":waves"), Command::Emote("waves"));
        assert_eq!(Command::parse("shout HEY"), Command::Shout("HEY"));
    }

    #[test]
    fn say_keeps_its_text_verbatim() {
        assert_eq!(
            Command::parse("say  hello  world "),
            Command::Say("hello  world ")
        );
        assert_eq!(Command::parse("'hi there"), Command::Say("hi there"));
        assert_eq!(Command::parse("Say x"), Command::Say("x"));
    }
}
