//! Why a world failed to load, and where.

use std::fmt;
use std::path::{Path, PathBuf};

/// A zone file problem, pointing at the file and (when known) the 1-based line,
/// so that whoever edits the world can jump straight to the mistake.
///
/// Displays as `shards/world/town.toml:12: exit "north" of town:square leads to
/// unknown room "town:nowhere"`, or `path: message` when no line applies
/// (a missing file, an unknown start room).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorldError {
    file: PathBuf,
    line: Option<usize>,
    message: String,
}

impl WorldError {
    /// An error about `file` as a whole.
    pub fn in_file(file: &Path, message: impl Into<String>) -> WorldError {
        WorldError {
            file: file.to_path_buf(),
            line: None,
            message: message.into(),
        }
    }

    /// An error at byte offset `offset` of `source`, the text of `file`.
    pub fn at_offset(
        file: &Path,
        source: &str,
        offset: usize,
        message: impl Into<String>,
    ) -> WorldError {
        WorldError {
            file: file.to_path_buf(),
            line: Some(line_of_offset(source, offset)),
            message: message.into(),
        }
    }

    /// The zone file (or, for an unknown start room in an unloaded zone, the directory).
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The 1-based line of the mistake, if it is tied to one.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// What is wrong, without the location.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// Converts a byte offset into a 1-based line number. Offsets past the end (or
/// inside a multi-byte character) are clamped rather than trusted, because they
/// come from a parser's span of untrusted text.
pub(super) fn line_of_offset(source: &str, offset: usize) -> usize {
    let end = offset.min(source.len());
    1 + source.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

impl fmt::Display for WorldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file.display(), line, self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for WorldError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_one_based_and_clamped() {
        let text = "a\nb\nc";
        assert_eq!(line_of_offset(text, 0), 1);
        assert_eq!(line_of_offset(text, 2), 2);
        assert_eq!(line_of_offset(text, 4), 3);
        assert_eq!(line_of_offset(text, 999), 3);
    }

    #[test]
    fn display_names_file_and_line() {
        let e = WorldError::at_offset(Path::new("w/town.toml"), "x\ny", 2, "bad");
        assert_eq!(e.to_string(), "w/town.toml:2: bad");
        let e = WorldError::in_file(Path::new("w/town.toml"), "missing");
        assert_eq!(e.to_string(), "w/town.toml: missing");
    }
}
