//! Where zone files are read from: a folder on disk, or the default world
//! built into the binary, so `mudshard` started anywhere has a world to serve.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::limits::{ZONES_MAX, ZONE_FILE_BYTES_MAX};
use super::WorldError;

/// The default world (`shards/world/*.toml`), compiled in. A unit test keeps
/// this list equal to the folder, so a new zone file cannot be forgotten here.
pub const EMBEDDED_ZONES: [(&str, &str); 5] = [
    ("caves", include_str!("../../shards/world/caves.toml")),
    ("forest", include_str!("../../shards/world/forest.toml")),
    ("river", include_str!("../../shards/world/river.toml")),
    ("tower", include_str!("../../shards/world/tower.toml")),
    ("town", include_str!("../../shards/world/town.toml")),
];

/// How the embedded world's files are named in messages: where they came
/// from in the source tree, marked as built in.
pub const EMBEDDED_DIR: &str = "<embedded>/shards/world";

/// A source of zone files, each `<zone>.toml`.
#[derive(Clone, Copy, Debug)]
pub enum ZoneFiles<'a> {
    /// A folder of zone files.
    Dir(&'a Path),
    /// The default world compiled into the binary ([`EMBEDDED_ZONES`]).
    Embedded,
}

impl ZoneFiles<'_> {
    /// The folder, as errors name it.
    pub fn dir(&self) -> PathBuf {
        match self {
            ZoneFiles::Dir(dir) => dir.to_path_buf(),
            ZoneFiles::Embedded => PathBuf::from(EMBEDDED_DIR),
        }
    }

    /// The path of zone `name`'s file, as errors name it.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir().join(format!("{name}.toml"))
    }

    /// The text of zone `name`'s file. `name` must already be a valid id, so
    /// it cannot lead out of the folder.
    pub(super) fn read(&self, name: &str) -> Result<String, WorldError> {
        let file = self.file(name);
        match self {
            ZoneFiles::Dir(_) => read_bounded(&file),
            ZoneFiles::Embedded => EMBEDDED_ZONES
                .iter()
                .find(|(zone, _)| *zone == name)
                .map(|(_, text)| text.to_string())
                .ok_or_else(|| WorldError::in_file(&file, "zone file not found")),
        }
    }

    /// The zones present: the stem of every `*.toml` file, sorted, so a
    /// shard map can say "all zones" without listing them.
    pub fn names(&self) -> Result<Vec<String>, WorldError> {
        let dir = match self {
            ZoneFiles::Dir(dir) => *dir,
            ZoneFiles::Embedded => {
                return Ok(EMBEDDED_ZONES.iter().map(|(z, _)| z.to_string()).collect())
            }
        };
        let entries = fs::read_dir(dir)
            .map_err(|e| WorldError::in_file(dir, format!("cannot list zone files: {e}")))?;
        let mut names = Vec::new();
        for entry in entries {
            let path = entry
                .map_err(|e| WorldError::in_file(dir, format!("cannot list zone files: {e}")))?
                .path();
            if path.extension().is_some_and(|ext| ext == "toml") {
                if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                    names.push(stem.to_string());
                }
            }
        }
        if names.len() > ZONES_MAX {
            return Err(WorldError::in_file(
                dir,
                format!(
                    "{} zone files; at most {ZONES_MAX} are allowed",
                    names.len()
                ),
            ));
        }
        names.sort();
        Ok(names)
    }
}

fn read_bounded(file: &Path) -> Result<String, WorldError> {
    let io_error = |e: io::Error| match e.kind() {
        io::ErrorKind::NotFound => WorldError::in_file(file, "zone file not found"),
        io::ErrorKind::InvalidData => WorldError::in_file(file, "zone file is not valid UTF-8"),
        _ => WorldError::in_file(file, format!("cannot read zone file: {e}")),
    };
    let bytes = fs::metadata(file).map_err(io_error)?.len();
    if bytes > ZONE_FILE_BYTES_MAX {
        return Err(WorldError::in_file(
            file,
            format!("zone file is {bytes} bytes; at most {ZONE_FILE_BYTES_MAX} are allowed"),
        ));
    }
    fs::read_to_string(file).map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_world_is_the_world_folder() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shards/world");
        let on_disk = ZoneFiles::Dir(&dir).names().expect("zone files");
        assert_eq!(ZoneFiles::Embedded.names().expect("embedded"), on_disk);
        for zone in &on_disk {
            assert_eq!(
                ZoneFiles::Embedded.read(zone).expect("embedded zone"),
                ZoneFiles::Dir(&dir).read(zone).expect("zone file"),
                "{zone}"
            );
        }
    }

    #[test]
    fn an_unknown_embedded_zone_is_named_as_a_file() {
        let err = ZoneFiles::Embedded.read("moon").expect_err("no such zone");
        assert_eq!(
            err.to_string(),
            "<embedded>/shards/world/moon.toml: zone file not found"
        );
    }
}
