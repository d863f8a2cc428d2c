//! The six directions an exit can take.

/// A direction of travel: the key of a room's exits and the argument of `go`.
///
/// The declaration order is the canonical order in which exits are stored and
/// shown, so every listing of exits reads the same way in every room.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Dir {
    North,
    South,
    East,
    West,
    Up,
    Down,
}

impl Dir {
    /// Every direction, in canonical order.
    pub const ALL: [Dir; 6] = [
        Dir::North,
        Dir::South,
        Dir::East,
        Dir::West,
        Dir::Up,
        Dir::Down,
    ];

    /// The full lowercase name, as written in zone files and on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Dir::North => "north",
            Dir::South => "south",
            Dir::East => "east",
            Dir::West => "west",
            Dir::Up => "up",
            Dir::Down => "down",
        }
    }

    /// The one-letter abbreviation players may type.
    pub fn short(self) -> &'static str {
        &self.name()[..1]
    }

    /// The direction that leads back: a two-way exit `d` has a partner `d.opposite()`.
    pub fn opposite(self) -> Dir {
        match self {
            Dir::North => Dir::South,
            Dir::South => Dir::North,
            Dir::East => Dir::West,
            Dir::West => Dir::East,
            Dir::Up => Dir::Down,
            Dir::Down => Dir::Up,
        }
    }

    /// Parses what a player types: a full name or its first letter, in any case.
    pub fn parse(word: &str) -> Option<Dir> {
        Dir::ALL
            .into_iter()
            .find(|d| word.eq_ignore_ascii_case(d.name()) || word.eq_ignore_ascii_case(d.short()))
    }

    /// Parses the full lowercase name only, as zone files must spell it, so that
    /// files stay greppable and `n = "x"` is caught as a typo rather than guessed.
    pub fn from_name(name: &str) -> Option<Dir> {
        Dir::ALL.into_iter().find(|d| d.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_full_names_and_letters_in_any_case() {
        for d in Dir::ALL {
            assert_eq!(Dir::parse(d.name()), Some(d));
            assert_eq!(Dir::parse(d.short()), Some(d));
            assert_eq!(Dir::parse(&d.name().to_uppercase()), Some(d));
            assert_eq!(Dir::parse(&d.short().to_uppercase()), Some(d));
        }
        assert_eq!(Dir::parse("NoRtH"), Some(Dir::North));
    }

    #[test]
    fn parse_rejects_other_words() {
        for word in ["", "no", "nort", "northh", "x", "upward", "ñ", "north "] {
            assert_eq!(Dir::parse(word), None, "{word:?}");
        }
    }

    #[test]
    fn opposite_is_an_involution_and_never_itself() {
        for d in Dir::ALL {
            assert_ne!(d.opposite(), d);
            assert_eq!(d.opposite().opposite(), d);
        }
    }

    #[test]
    fn from_name_wants_the_canonical_spelling() {
        assert_eq!(Dir::from_name("up"), Some(Dir::Up));
        assert_eq!(Dir::from_name("u"), None);
        assert_eq!(Dir::from_name("Up"), None);
    }

    #[test]
    fn all_is_in_declaration_order() {
        let mut sorted = Dir::ALL;
        sorted.sort();
        assert_eq!(sorted, Dir::ALL);
    }
}
