//! The layers of DESIGN §1, checked: every module of `src/` may import only
//! the modules listed for it below, so dependencies point one way
//! (`protocol` ← `world` ← `game` ← `shard` ← `net` ← `server`, with
//! `config` at the bottom and `store`, `auth` and `metrics` beside the
//! shards). A `use crate::…` (or any `crate::…` path) against the table
//! fails this test with the file and line. Tests inside a module
//! (`#[cfg(test)]`, `tests/` folders) may reach anywhere.
//!
//! The table is the written-down form of the architecture; the README's
//! "Architecture" section shows the same picture.

use std::path::{Path, PathBuf};

/// Each module and the modules it may import. `server` and the binary
/// (`main.rs`) sit on top and may import anything, as may `lib.rs`.
const ALLOWED: &[(&str, &[&str])] = &[
    ("config", &[]),
    ("logging", &[]),
    ("protocol", &["config"]),
    ("world", &["protocol", "config"]),
    ("game", &["protocol", "world", "config"]),
    ("store", &["protocol", "config"]),
    ("auth", &["protocol", "config", "store"]),
    ("metrics", &["protocol", "config", "store"]),
    ("bridge", &["protocol", "config", "world", "game"]),
    ("check", &["config", "world"]),
    (
        "shard",
        &[
            "protocol", "world", "game", "store", "auth", "config", "bridge", "metrics",
        ],
    ),
    (
        "net",
        &[
            "protocol", "world", "game", "shard", "store", "auth", "config", "metrics",
        ],
    ),
];

/// Modules that may import anything.
const TOP: &[&str] = &["server", "main", "lib"];

/// One import against the table: where, which module, what it reached for.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    line: usize,
    module: String,
    imports: String,
}

/// The top-level module a file of `src/` belongs to.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    Some(first.strip_suffix(".rs").unwrap_or(first).to_string())
}

/// The modules named by `crate::` paths on one line, grouped imports
/// (`use crate::{a::X, b}`) included.
fn crate_modules(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push(name);
        }
    }
    found
}

/// Checks one file's text (its path relative to `src/`).
fn check_file(relative: &Path, text: &str) -> Vec<Violation> {
    let Some(module) = module_of(relative) else {
        return Vec::new();
    };
    if TOP.contains(&module.as_str()) || relative.components().any(|c| c.as_os_str() == "tests") {
        return Vec::new();
    }
    let allowed: &[&str] = match ALLOWED.iter().find(|(m, _)| *m == module) {
        Some((_, allowed)) => allowed,
        None => panic!(
            "src/{}: module {module:?} is not in the layer table of tests/layers.rs; add it there",
            relative.display()
        ),
    };
    let known: Vec<&str> = ALLOWED
        .iter()
        .map(|(m, _)| *m)
        .chain(TOP.iter().copied())
        .collect();
    let mut violations = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        for used in crate_modules(code) {
            if used == module || !known.contains(&used.as_str()) || allowed.contains(&used.as_str())
            {
                continue;
            }
            violations.push(Violation {
                file: format!("src/{}", relative.display()),
                line: i + 1,
                module: module.clone(),
                imports: used,
            });
        }
    }
    violations
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_imports_only_the_layers_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 20,
        "found only {} files under src/",
        files.len()
    );
    let mut violations = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable source");
        let relative = path.strip_prefix(&src).expect("under src/");
        violations.extend(check_file(relative, &text));
    }
    let report: Vec<String> = violations
        .iter()
        .map(|v| format!("{}:{}: {} imports {}", v.file, v.line, v.module, v.imports))
        .collect();
    assert!(
        report.is_empty(),
        "imports against the layers (see the table in tests/layers.rs):\n{}",
        report.join("\n")
    );
}

#[test]
fn a_deliberate_violation_is_caught_with_its_place() {
    let text =
        "//! The game.\nuse crate::world::Dir;\nuse crate::{protocol::MsgId, shard::Shard};\n";
    let violations = check_file(Path::new("game/owner.rs"), text);
    assert_eq!(
        violations,
        vec![Violation {
            file: "src/game/owner.rs".into(),
            line: 3,
            module: "game".into(),
            imports: "shard".into(),
        }]
    );
    let upward = "fn f() { crate::net::listener::listen; }\n";
    assert_eq!(check_file(Path::new("shard/run.rs"), upward).len(), 1);
}

#[test]
fn comments_tests_and_the_top_layer_are_not_checked() {
    let text =
        "// see crate::net::conn\nfn f() {}\n#[cfg(test)]\nmod tests { use crate::net::conn; }\n";
    assert!(check_file(Path::new("game/x.rs"), text).is_empty());
    assert!(check_file(Path::new("server.rs"), "use crate::net::listener;\n").is_empty());
    assert!(check_file(Path::new("store/tests/a.rs"), "use crate::shard::Shard;\n").is_empty());
}
