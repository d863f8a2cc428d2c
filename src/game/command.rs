//! TEMPORARY stub of the parser API; replaced on merge.
use crate::world::Dir;
pub enum Command<'a> {
    Look,
    Go(Dir),
    Say(&'a str),
    Emote(&'a str),
    Tell { to: &'a str, text: &'a str },
    Shout(&'a str),
    Who,
    Inventory,
    Get(&'a str),
    Drop(&'a str),
    Help,
    Quit,
    Goto(&'a str),
}
impl Command<'_> {
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
pub enum ParseError<'a> {
    Empty,
    Usage {
        verb: &'static str,
        usage: &'static str,
    },
    Unknown(&'a str),
}
impl ParseError<'_> {
    pub fn code(&self) -> &'static str {
        match self {
            ParseError::Empty => "empty",
            ParseError::Usage { .. } => "usage",
            ParseError::Unknown(_) => "unknown_command",
        }
    }
    pub fn message(&self) -> String {
        match self {
            ParseError::Empty => "Say what?".into(),
            ParseError::Usage { usage, .. } => format!("Usage: {usage}"),
            ParseError::Unknown(v) => {
                format!("Unknown command \"{v}\". Type \"help\" for the list.")
            }
        }
    }
}
pub const HELP_TEXT: &str =
    "Commands: look, n/s/e/w/u/d, say, emote, tell, shout, who, inventory, get, drop, help, quit";
pub fn parse(line: &str) -> Result<Command<'_>, ParseError<'_>> {
    let line = line.trim();
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    if let Some(r) = line.strip_prefix('\'') {
        return Ok(Command::Say(r.trim()));
    }
    if let Some(r) = line.strip_prefix(':') {
        return Ok(Command::Emote(r.trim()));
    }
    let (verb, rest) = match line.find(' ') {
        Some(i) => (&line[..i], line[i + 1..].trim()),
        None => (line, ""),
    };
    let v = verb.to_ascii_lowercase();
    if let Some(d) = Dir::parse(&v) {
        return Ok(Command::Go(d));
    }
    Ok(match v.as_str() {
        "look" | "l" => Command::Look,
        "go" => match Dir::parse(rest) {
            Some(d) => Command::Go(d),
            None => {
                return Err(ParseError::Usage {
                    verb: "go",
                    usage: "go <direction>",
                })
            }
        },
        "say" => Command::Say(rest),
        "emote" => Command::Emote(rest),
        "tell" => {
            let (to, text) = rest.split_once(' ').ok_or(ParseError::Usage {
                verb: "tell",
                usage: "tell <name> <text>",
            })?;
            Command::Tell {
                to,
                text: text.trim(),
            }
        }
        "shout" => Command::Shout(rest),
        "who" => Command::Who,
        "i" | "inventory" => Command::Inventory,
        "get" => Command::Get(rest),
        "drop" => Command::Drop(rest),
        "help" => Command::Help,
        "quit" => Command::Quit,
        "goto" => Command::Goto(rest),
        _ => return Err(ParseError::Unknown(verb)),
    })
}
