//! The rules for player names and passwords (DESIGN.md §7), with the stable
//! error codes the protocol answers with.

use std::fmt;

/// Fewest characters in a name.
pub const NAME_CHARS_MIN: usize = 3;
/// Most characters in a name.
pub const NAME_CHARS_MAX: usize = 20;
/// Fewest Unicode characters (scalar values) in a password.
pub const PASSWORD_CHARS_MIN: usize = 8;
/// Most Unicode characters (scalar values) in a password.
pub const PASSWORD_CHARS_MAX: usize = 128;

/// Why a name or password was refused. [`RuleError::code`] is the protocol's
/// machine-readable code; `Display` is the message for the player.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleError {
    /// The name has too few or too many characters.
    NameLength { chars: usize },
    /// The name has a character outside `[A-Za-z0-9_]`.
    NameCharacter { found: char },
    /// The password has too few or too many characters.
    PasswordLength { chars: usize },
}

impl RuleError {
    /// `invalid_name` or `invalid_password`.
    pub fn code(&self) -> &'static str {
        match self {
            RuleError::NameLength { .. } | RuleError::NameCharacter { .. } => "invalid_name",
            RuleError::PasswordLength { .. } => "invalid_password",
        }
    }
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RuleError::NameLength { chars } => write!(
                f,
                "a name has {NAME_CHARS_MIN} to {NAME_CHARS_MAX} characters; this one has {chars}"
            ),
            RuleError::NameCharacter { found } => write!(
                f,
                "a name uses only letters A-Z, digits and '_'; {found:?} is not allowed"
            ),
            RuleError::PasswordLength { chars } => write!(
                f,
                "a password has {PASSWORD_CHARS_MIN} to {PASSWORD_CHARS_MAX} characters; this one has {chars}"
            ),
        }
    }
}

impl std::error::Error for RuleError {}

/// Checks a name against the rules and returns its key (see [`name_key`]).
pub fn validate_name(name: &str) -> Result<String, RuleError> {
    check_name(name)?;
    Ok(name_key(name))
}

/// Whether a name keeps the rules (without making its key).
pub fn is_valid_name(name: &str) -> bool {
    check_name(name).is_ok()
}

/// Names of the form the server gives guests (`guest<shard>_<n>`) are not
/// for accounts: no guest can sit on a registered name without a check.
pub fn reserved_for_guests(key: &str) -> bool {
    key.strip_prefix("guest")
        .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

fn check_name(name: &str) -> Result<(), RuleError> {
    // Count at most one past the limit: a huge input costs nothing extra.
    let chars = name.chars().take(NAME_CHARS_MAX + 1).count();
    if !(NAME_CHARS_MIN..=NAME_CHARS_MAX).contains(&chars) {
        return Err(RuleError::NameLength {
            chars: name.chars().count(),
        });
    }
    if let Some(found) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_'))
    {
        return Err(RuleError::NameCharacter { found });
    }
    Ok(())
}

/// The case-insensitive identity of a name: what uniqueness, lookups, tokens
/// and rate limits use. Names are ASCII, so ASCII lowercase is exact.
pub fn name_key(name: &str) -> String {
    name.to_ascii_lowercase()
}

/// Checks a password's length in Unicode characters (not bytes): "ü" is one.
pub fn validate_password(password: &str) -> Result<(), RuleError> {
    let chars = password.chars().count();
    if !(PASSWORD_CHARS_MIN..=PASSWORD_CHARS_MAX).contains(&chars) {
        return Err(RuleError::PasswordLength { chars });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_guest_names_are_reserved_and_others_are_not() {
        assert!(reserved_for_guests("guest0_12"));
        assert!(reserved_for_guests("guest12"));
        assert!(!reserved_for_guests("guestbook"));
        assert!(!reserved_for_guests("guest"));
        assert!(!reserved_for_guests("bob"));
    }

    #[test]
    fn names_of_3_to_20_word_characters_are_accepted_and_keyed_lowercase() {
        assert_eq!(validate_name("Bob"), Ok("bob".to_owned()));
        assert_eq!(
            validate_name("Alice_The_2nd"),
            Ok("alice_the_2nd".to_owned())
        );
        assert_eq!(validate_name(&"x".repeat(20)), Ok("x".repeat(20)));
    }

    #[test]
    fn names_too_short_too_long_or_with_other_characters_are_invalid_name() {
        for bad in [
            "",
            "ab",
            &"x".repeat(21),
            "bob smith",
            "bøb",
            "bob!",
            "名前です",
        ] {
            let err = validate_name(bad).expect_err(bad);
            assert_eq!(err.code(), "invalid_name", "{bad}");
        }
        assert_eq!(validate_name("ab"), Err(RuleError::NameLength { chars: 2 }));
        assert_eq!(
            validate_name("bøb"),
            Err(RuleError::NameCharacter { found: 'ø' })
        );
    }

    #[test]
    fn password_length_counts_unicode_characters_not_bytes() {
        // 8 characters, 16 bytes: long enough.
        assert_eq!(validate_password("ääääääää"), Ok(()));
        // 7 characters, 28 bytes: too short.
        let short = "🦀🦀🦀🦀🦀🦀🦀";
        assert_eq!(
            validate_password(short),
            Err(RuleError::PasswordLength { chars: 7 })
        );
        assert_eq!(validate_password(&"é".repeat(128)), Ok(()));
        let long = validate_password(&"é".repeat(129)).expect_err("129 characters");
        assert_eq!(long.code(), "invalid_password");
        assert!(long.to_string().contains("129"), "{long}");
    }
}
