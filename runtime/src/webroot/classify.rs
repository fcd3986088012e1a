//! The one rule for what a file in the web root is: a handler, a static file,
//! or something never served, and why. The router, the tree walk that finds
//! handlers and the watcher all ask here, so they cannot disagree (on letter
//! case, say).
//!
//! Never served, whatever a request's path or a symlink's name says (the
//! rule looks at the real path, relative to the web root):
//!
//! | class | what | can a `wasmlet.toml` publish it? |
//! | --- | --- | --- |
//! | hidden | any path segment starting with `.` (`.git/`, `.env`, `.#x`) | no |
//! | config | `wasmlet.toml` | no |
//! | handler code | `.wasm`, `.wat` in any letter case; a handler runs, its bytes are never sent | no |
//! | compiled code | `.cwasm`, what the disk cache holds | no |
//! | `rust-source` | `.rs` | yes |
//! | `cargo` | `Cargo.toml`, `Cargo.lock` | yes |
//! | `build-output` | anything below a directory named `target` | yes |
//! | `backup` | editor backups and swap files: `x~`, `#x#`, `.swp`, `.swo`, `.bak`, `.orig` | yes |
//! | `key` | private keys and certificate bundles: `.pem`, `.key`, `.p12`, `.pfx` | yes |
//! | `database` | SQLite files: `.sqlite`, `.sqlite3`, `.db`, `.db3` and their `-wal`, `-shm`, `-journal` | yes |
//!
//! Names compare without regard to letter case: a web root copied from a
//! case-insensitive file system keeps its meaning. A `.wasm` below `target/`
//! is build output, not a handler: cargo writes handlers there before anyone
//! copies them into place.

use std::path::{Component, Path};

/// The extensions that make a file a handler, in lookup order (lower case:
/// the router looks up exactly these names).
pub const HANDLER_EXTENSIONS: [&str; 2] = ["wasm", "wat"];

/// The extension of a source handler (`NAME.rs`), tried after
/// [`HANDLER_EXTENSIONS`]: a handler only where a `wasmlet.toml` turns Rust
/// builds on (`[build] rust`) or in development mode, and never served.
pub const SOURCE_EXTENSION: &str = "rs";

/// The per-directory configuration file.
pub const CONFIG_FILE: &str = "wasmlet.toml";

/// What a file in the web root is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A handler: `.wasm` or `.wat` (lower case), outside build output.
    Handler,
    /// A file that may be sent as it is.
    Static,
    /// Never sent, unless a `wasmlet.toml` publishes its class
    /// ([`Withheld::publishable`]).
    Withheld(Withheld),
}

/// Why a file is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Withheld {
    /// A path segment starts with `.`.
    Hidden,
    /// `wasmlet.toml`.
    Config,
    /// A handler's bytes (`.wasm`, `.wat`, any letter case).
    HandlerCode,
    /// Precompiled code (`.cwasm`).
    CompiledCode,
    /// Rust source (`.rs`).
    RustSource,
    /// `Cargo.toml`, `Cargo.lock`.
    Cargo,
    /// Below a `target/` directory.
    BuildOutput,
    /// An editor backup or swap file.
    Backup,
    /// A private key or certificate bundle.
    Key,
    /// A SQLite database or one of its side files.
    Database,
}

impl Withheld {
    /// The classes a `wasmlet.toml` may publish (`[static] publish`), each
    /// with the name it is published by.
    pub const PUBLISHABLE: [(&'static str, Withheld); 6] = [
        ("rust-source", Withheld::RustSource),
        ("cargo", Withheld::Cargo),
        ("build-output", Withheld::BuildOutput),
        ("backup", Withheld::Backup),
        ("key", Withheld::Key),
        ("database", Withheld::Database),
    ];

    /// The class a `[static] publish` entry names.
    pub fn by_name(name: &str) -> Option<Withheld> {
        Self::PUBLISHABLE
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, class)| *class)
    }

    /// Whether a `wasmlet.toml` may publish this class. Hidden files,
    /// configuration and handler code never are: the server's own safety
    /// rests on them.
    pub fn publishable(self) -> bool {
        Self::PUBLISHABLE.iter().any(|(_, class)| *class == self)
    }
}

/// Classifies the file at `rel`, a path relative to the web root (the real
/// path, symlinks resolved, when the file is reached through one).
pub fn classify(rel: &Path) -> Class {
    let mut names = Vec::new();
    for component in rel.components() {
        match component {
            Component::Normal(name) => match name.to_str() {
                Some(name) => names.push(name),
                // Not UTF-8: no URL names it, and nothing should show it.
                None => return Class::Withheld(Withheld::Hidden),
            },
            Component::CurDir => {}
            _ => return Class::Withheld(Withheld::Hidden),
        }
    }
    let Some((file, dirs)) = names.split_last() else {
        return Class::Withheld(Withheld::Hidden);
    };
    if names.iter().any(|name| name.starts_with('.')) {
        return Class::Withheld(Withheld::Hidden);
    }
    let lower = file.to_ascii_lowercase();
    if lower == CONFIG_FILE {
        return Class::Withheld(Withheld::Config);
    }
    let extension = lower.rsplit_once('.').map(|(_, ext)| ext);
    let below_target = dirs.iter().any(|dir| dir.eq_ignore_ascii_case("target"));
    if let Some(ext) = extension
        && HANDLER_EXTENSIONS.contains(&ext)
    {
        return if below_target {
            Class::Withheld(Withheld::BuildOutput)
        } else if file.ends_with(ext) {
            Class::Handler
        } else {
            // `X.WASM`: not a handler (the router looks up `.wasm`), still code.
            Class::Withheld(Withheld::HandlerCode)
        };
    }
    if extension == Some("cwasm") {
        return Class::Withheld(Withheld::CompiledCode);
    }
    match withheld_name(&lower, extension) {
        Some(class) => Class::Withheld(class),
        None if below_target => Class::Withheld(Withheld::BuildOutput),
        None => Class::Static,
    }
}

/// The publishable classes a file name alone gives away.
fn withheld_name(lower: &str, extension: Option<&str>) -> Option<Withheld> {
    if extension == Some("rs") {
        return Some(Withheld::RustSource);
    }
    if lower == "cargo.toml" || lower == "cargo.lock" {
        return Some(Withheld::Cargo);
    }
    if lower.ends_with('~')
        || (lower.len() > 1 && lower.starts_with('#') && lower.ends_with('#'))
        || matches!(extension, Some("swp" | "swo" | "bak" | "orig"))
    {
        return Some(Withheld::Backup);
    }
    if matches!(extension, Some("pem" | "key" | "p12" | "pfx")) {
        return Some(Withheld::Key);
    }
    let database = ["-wal", "-shm", "-journal"]
        .iter()
        .find_map(|side| lower.strip_suffix(side))
        .unwrap_or(lower);
    let database_extension = database.rsplit_once('.').map(|(_, ext)| ext);
    if matches!(
        database_extension,
        Some("sqlite" | "sqlite3" | "db" | "db3")
    ) {
        return Some(Withheld::Database);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(path: &str) -> Class {
        classify(Path::new(path))
    }

    #[test]
    fn handlers_are_lower_case_wasm_and_wat_outside_build_output() {
        for path in ["h.wasm", "api/h.wat", "users/[id].wasm", "targets/h.wasm"] {
            assert_eq!(class(path), Class::Handler, "{path}");
        }
        assert_eq!(class("H.WASM"), Class::Withheld(Withheld::HandlerCode));
        assert_eq!(class("h.Wat"), Class::Withheld(Withheld::HandlerCode));
        for path in [
            "shop/target/wasm32-unknown-unknown/release/shop.wasm",
            "Target/x.wat",
        ] {
            assert_eq!(
                class(path),
                Class::Withheld(Withheld::BuildOutput),
                "{path}"
            );
        }
    }

    #[test]
    fn every_entry_of_the_list_is_withheld_in_any_letter_case() {
        use Withheld::*;
        let table = [
            (".env", Hidden),
            ("a/.git/config", Hidden),
            (".#lock", Hidden),
            ("wasmlet.toml", Config),
            ("a/WASMLET.TOML", Config),
            ("cache/0123.cwasm", CompiledCode),
            ("shop/src/lib.rs", RustSource),
            ("MAIN.RS", RustSource),
            ("shop/Cargo.toml", Cargo),
            ("cargo.lock", Cargo),
            ("shop/target/debug/notes.txt", BuildOutput),
            ("index.html~", Backup),
            ("#index.html#", Backup),
            ("a/.index.html.swp", Hidden),
            ("index.swp", Backup),
            ("page.SWO", Backup),
            ("site.bak", Backup),
            ("patch.orig", Backup),
            ("tls/server.pem", Key),
            ("server.KEY", Key),
            ("id.p12", Key),
            ("id.pfx", Key),
            ("db.sqlite", Database),
            ("db.sqlite-wal", Database),
            ("db.sqlite-shm", Database),
            ("db.sqlite-journal", Database),
            ("KV.SQLITE3", Database),
            ("app.db", Database),
            ("app.db-wal", Database),
            ("app.db3", Database),
        ];
        for (path, why) in table {
            assert_eq!(class(path), Class::Withheld(why), "{path}");
        }
    }

    #[test]
    fn ordinary_files_are_static() {
        for path in [
            "index.html",
            "css/site.css",
            "db.sqlite.txt",
            "notes-wal",
            "dbx",
            "sqlite",
            "a.dbf",
            "keys.txt",
            "rs",
            "targets/page.html",
            "my-target/x.txt",
            "#",
            "cargo.toml.txt",
        ] {
            assert_eq!(class(path), Class::Static, "{path}");
        }
    }

    #[test]
    fn only_the_documented_classes_can_be_published_by_name() {
        for (name, class) in Withheld::PUBLISHABLE {
            assert_eq!(Withheld::by_name(name), Some(class));
            assert!(class.publishable());
        }
        for class in [
            Withheld::Hidden,
            Withheld::Config,
            Withheld::HandlerCode,
            Withheld::CompiledCode,
        ] {
            assert!(!class.publishable(), "{class:?}");
        }
        assert_eq!(Withheld::by_name("hidden"), None);
        assert_eq!(Withheld::by_name("Key"), None);
    }

    #[test]
    fn paths_that_leave_or_name_nothing_are_hidden() {
        for path in ["", "../x.txt", "/etc/passwd", "a/../b.txt"] {
            assert_eq!(class(path), Class::Withheld(Withheld::Hidden), "{path}");
        }
    }
}
