//! Command lines, as players type them: the subset the load generator uses.

use crate::protocol::Outcome;
use crate::state::Shared;
use crate::world::Direction;

/// What a command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command<'a> {
    Look,
    Walk(Direction),
    /// `go` with a word that is not a direction.
    WalkNowhere(&'a str),
    Say(&'a str),
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
            "goto" => Command::Goto(rest.trim_end()),
            "quit" => Command::Quit,
            _ => match Direction::parse(word) {
                Some(dir) if rest.is_empty() => Command::Walk(dir),
                _ => Command::Unknown(word),
            },
        }
    }

    /// Carries the command out for player `name`.
    pub fn run(&self, shared: &Shared, name: &str) -> Outcome {
        match *self {
            Command::Look => shared.look(name),
            Command::Walk(dir) => shared.walk(name, dir),
            Command::WalkNowhere("") => Outcome::fail("no_exit", "Go where?"),
            Command::WalkNowhere(word) => {
                Outcome::fail("no_exit", format!("You can't go {word:?} from here."))
            }
            Command::Say("") => Outcome::fail("missing_text", "Say what?"),
            Command::Say(text) => shared.say(name, text),
            Command::Goto("") => Outcome::fail("no_such_room", "Go to which room?"),
            Command::Goto(room) => shared.teleport(name, room),
            Command::Quit => Outcome::ok("Goodbye.", None),
            Command::Unknown(word) => Outcome::fail(
                "unknown_command",
                format!(
                    "Unknown command {word:?}. Try look, n/s/e/w, go <dir>, say <text>, \
                     goto <room id> or quit."
                ),
            ),
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
