//! Fuzzes URL-path routing (`runtime/src/router/`): the input, as UTF-8,
//! is a request path resolved against a small web root built once per
//! process, full of the things routing must get right: handlers, static
//! files, index files, dynamic and catch-all routes, dotfiles, a
//! `wasmlet.toml`, and symlinks that point outside the root, at handlers,
//! at hidden files, back up the tree and nowhere.
//!
//! For every path, whatever it is:
//! - a path that does not start with `/` is a bad request;
//! - a path with a segment that decodes to `.` or `..`, or holds a `/`, `\`
//!   or NUL, is a bad request; a dot-named or `wasmlet.toml` segment before
//!   any such makes it not found (or a bad request, if malformed otherwise);
//! - a static file is a canonical path inside the root with no dot-named
//!   part, not a handler (by extension) and not `wasmlet.toml`; its bytes
//!   are none of a handler's, a hidden file's or an outside file's; and it
//!   is the very file the decoded path names (or that directory's
//!   `index.html`), symlinks resolved;
//! - a handler is one of `handler_files(root)` (real, inside the root,
//!   never hidden), and its parameters are identifiers bound to decoded,
//!   non-empty, non-dot segments;
//! - the same path spelt differently (every slash doubled, a trailing
//!   slash, every byte outside an escape percent-encoded) resolves the same
//!   way.

#![no_main]

#[path = "../../src/router/mod.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "compiled here as it stands; the runtime is what uses all of it"
)]
mod router;

// The router asks the web root's rules (`crate::webroot`): classification,
// containment, the epoch its route table trusts (with its tripwire) and the tree
// walk, compiled by path here too. Without a watcher no epoch is current:
// every path is resolved on disk, which is what is fuzzed.
#[path = "../../src/webroot/classify.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "compiled here as it stands; the runtime is what uses all of it"
)]
mod classify;

#[path = "../../src/webroot/contain.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "compiled here as it stands; the runtime is what uses all of it"
)]
mod contain;

#[path = "../../src/webroot/epoch.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "compiled here as it stands; the runtime is what uses all of it"
)]
mod epoch;

#[path = "../../src/webroot/tripwire.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "compiled here as it stands; the runtime is what uses all of it"
)]
mod tripwire;

#[path = "../../src/webroot/walk.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "compiled here as it stands; the runtime is what uses all of it"
)]
mod walk;

#[allow(
    unreachable_pub,
    reason = "public as in the runtime, where the router re-exports two of them"
)]
mod webroot {
    pub use super::classify::{
        CONFIG_FILE, Class, HANDLER_EXTENSIONS, SOURCE_EXTENSION, Withheld, classify,
    };
    pub use super::contain::contained;
    pub use super::epoch::{Epoch, Lookup};
    pub use super::walk::handler_files;
}

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use percent_encoding::percent_decode_str;
use router::{CONFIG_FILE, HANDLER_EXTENSIONS, Route, Router};

/// The content of every file no request may ever read: handlers, hidden
/// files, configuration, and everything outside the web root.
const NEVER_SERVED: &str = "NEVER-SERVED";

/// Files under the web root: `(path, servable)`; a path ending in `/` is an
/// empty directory. Servable files hold their own name, the rest
/// [`NEVER_SERVED`].
const ROOT_FILES: &[(&str, bool)] = &[
    ("index.html", true),
    ("ok.txt", true),
    ("a b.txt", true),
    ("é.txt", true),
    ("100%.txt", true),
    ("[id].txt", true),
    ("page", true),
    ("page.wat", false),
    ("both.wasm", false),
    ("both.wat", false),
    ("x.txt.wasm", false),
    ("wasmlet.toml", false),
    (".env", false),
    (".git/config", false),
    (".hidden/x.wat", false),
    (".hidden/index.html", false),
    ("a/b.wat", false),
    ("a/c.txt", true),
    ("a/index.html", true),
    ("a/wasmlet.toml", false),
    ("a/.h.wat", false),
    ("api/index.wasm", false),
    ("docs/index.html", true),
    ("empty/", true),
    ("users/me.wat", false),
    ("users/avatar.png", true),
    ("users/[id].wat", false),
    ("users/[id]/posts.wat", false),
    ("[org]/[repo].wat", false),
    ("[org]/settings.wat", false),
    ("files/[...path].wat", false),
    ("shop/[item]/index.wat", false),
    ("ext/plain.txt", true),
];

/// Files outside the web root, next to it.
const OUTSIDE_FILES: &[&str] = &[
    "secret.txt",
    "evil.wat",
    "index.html",
    "[any].wat",
    "sub/[...rest].wat",
];

/// Symlinks in the web root: `(link, target)`, the target relative to the
/// directory holding both the root and the outside tree.
const SYMLINKS: &[(&str, &str)] = &[
    ("leak.txt", "outside/secret.txt"),
    ("evil.wat", "outside/evil.wat"),
    ("outdir", "outside"),
    ("[out]", "outside"),
    ("ext/[...rest].wat", "outside/evil.wat"),
    ("h.txt", "root/page.wat"),
    ("conf.txt", "root/wasmlet.toml"),
    ("env.txt", "root/.env"),
    ("in.txt", "root/ok.txt"),
    ("alias", "root/a"),
    ("loop", "root"),
    ("up", "."),
    ("dangling", "root/nothing-here"),
    ("selfloop", "root/selfloop"),
];

/// The web root, alive for the whole process.
struct Site {
    /// Holds the root and the outside tree; removed at exit.
    base: tempfile::TempDir,
    /// Canonical web root.
    root: PathBuf,
    router: Router,
    /// `handler_files(root)`, sorted: every handler a request may reach.
    handlers: Vec<PathBuf>,
}

static SITE: OnceLock<Site> = OnceLock::new();

unsafe extern "C" {
    /// C's `atexit`. libFuzzer ends a run with `exit`, which runs these
    /// but never drops a Rust static, so without it every run would leave
    /// its web root behind in the temporary directory.
    safe fn atexit(callback: extern "C" fn()) -> std::ffi::c_int;
}

extern "C" fn remove_site() {
    if let Some(site) = SITE.get() {
        // Nothing to do about a failure while the process exits.
        let _ = std::fs::remove_dir_all(site.base.path());
    }
}

impl Site {
    fn build() -> Site {
        // Not tempfile's default `.tmp…` name: a dot-named directory above the
        // outside files would hide them from the router for the wrong reason.
        let base = tempfile::Builder::new()
            .prefix("wasmlet-fuzz-router-")
            .tempdir()
            .expect("a temporary directory for the web root");
        let write = |path: PathBuf, content: &str| {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
        };
        for (file, servable) in ROOT_FILES {
            let path = base.path().join("root").join(file);
            if let Some(dir) = file.strip_suffix('/') {
                std::fs::create_dir_all(base.path().join("root").join(dir)).unwrap();
            } else {
                write(path, if *servable { file } else { NEVER_SERVED });
            }
        }
        for file in OUTSIDE_FILES {
            write(base.path().join("outside").join(file), NEVER_SERVED);
        }
        for (link, target) in SYMLINKS {
            let link = base.path().join("root").join(link);
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(base.path().join(target), link).unwrap();
        }
        let root = std::fs::canonicalize(base.path().join("root")).unwrap();
        let handlers = webroot::handler_files(&root);
        assert!(!handlers.is_empty(), "the web root has handlers");
        Site {
            base,
            router: Router::new(root.clone()),
            root,
            handlers,
        }
    }
}

fn site() -> &'static Site {
    SITE.get_or_init(|| {
        atexit(remove_site);
        Site::build()
    })
}

/// The non-empty segments of `raw`, percent-decoded as bytes.
fn decoded_segments(raw: &str) -> Vec<Vec<u8>> {
    raw.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| percent_decode_str(s).collect())
        .collect()
}

/// What the first segment that must not be served says about the path.
#[derive(Debug, PartialEq)]
enum Refused {
    /// Traversal or a smuggled separator: a bad request.
    Hostile,
    /// A dotfile, dot-directory or `wasmlet.toml`: not found, or a bad
    /// request if an earlier segment is malformed in another way.
    Hidden,
}

fn refused(raw_segment: &str, decoded: &[u8]) -> Option<Refused> {
    let hostile = raw_segment.contains('\\')
        || decoded == b"."
        || decoded == b".."
        || decoded.iter().any(|b| matches!(b, b'/' | b'\\' | 0));
    if hostile {
        Some(Refused::Hostile)
    } else if decoded.starts_with(b".") || decoded == CONFIG_FILE.as_bytes() {
        Some(Refused::Hidden)
    } else {
        None
    }
}

/// `raw` spelt differently but meaning the same: slashes doubled, a
/// trailing slash, and every byte percent-encoded except `/`, `%` and the
/// escapes already there.
fn respelt(raw: &str) -> String {
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len() * 3 + 1);
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'/' => out.push_str("//"),
            b'%' => out.push('%'),
            b => write!(out, "%{b:02X}").unwrap(),
        }
        // An escape's two hex digits stay as they are; a `%` without them
        // is malformed both ways.
        if bytes[i] == b'%'
            && bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
            && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
        {
            out.push_str(&raw[i + 1..i + 3]);
            i += 3;
        } else {
            i += 1;
        }
    }
    out.push('/');
    out
}

/// Routes compared by where they lead: a raw `\` and an encoded one are
/// both bad requests, for different stated reasons.
fn same_outcome(a: &Route, b: &Route) -> bool {
    match (a, b) {
        (Route::BadRequest(_), Route::BadRequest(_)) => true,
        _ => a == b,
    }
}

/// Real, inside the root, and nothing on the way there is dot-named.
fn assert_contained(site: &Site, raw: &str, file: &Path) {
    assert!(
        std::fs::canonicalize(file).is_ok_and(|real| real == file),
        "{raw:?} resolved to {file:?}, which is not a canonical path"
    );
    let inside = file
        .strip_prefix(&site.root)
        .unwrap_or_else(|_| panic!("{raw:?} resolved to {file:?}, outside the web root"));
    assert!(
        !inside
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with('.')),
        "{raw:?} resolved to the hidden {file:?}"
    );
}

fn check_static(site: &Site, raw: &str, segments: &[Vec<u8>], file: &Path) {
    assert_contained(site, raw, file);
    let extension = file.extension().and_then(|e| e.to_str()).unwrap_or("");
    assert!(
        !HANDLER_EXTENSIONS.contains(&extension),
        "{raw:?} serves the handler {file:?} as a static file"
    );
    assert_ne!(
        file.file_name().and_then(|n| n.to_str()),
        Some(CONFIG_FILE),
        "{raw:?} serves a configuration file"
    );
    let content = std::fs::read(file).unwrap();
    assert!(
        !content
            .windows(NEVER_SERVED.len())
            .any(|w| w == NEVER_SERVED.as_bytes()),
        "{raw:?} serves {file:?}, whose bytes must never be served"
    );
    let named: PathBuf = segments
        .iter()
        .map(|s| std::str::from_utf8(s).expect("a served path is UTF-8"))
        .fold(site.root.clone(), |path, s| path.join(s));
    let direct = std::fs::canonicalize(&named).ok();
    let index = std::fs::canonicalize(named.join("index.html")).ok();
    assert!(
        direct.as_deref() == Some(file) || index.as_deref() == Some(file),
        "{raw:?} names {named:?} but serves {file:?}"
    );
}

fn check_handler(site: &Site, raw: &str, file: &Path, params: &[(String, String)]) {
    assert_contained(site, raw, file);
    assert!(
        site.handlers
            .binary_search_by(|h| h.as_path().cmp(file))
            .is_ok(),
        "{raw:?} runs {file:?}, which is not one of the web root's handlers"
    );
    for (name, value) in params {
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "{raw:?} binds the parameter name {name:?}"
        );
        assert!(
            value.split('/').all(|part| {
                !part.is_empty() && !part.starts_with('.') && !part.chars().any(char::is_control)
            }),
            "{raw:?} binds {name} = {value:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let site = site();
    let route = site.router.resolve(raw);

    if !raw.starts_with('/') {
        assert!(
            matches!(route, Route::BadRequest(_)),
            "{raw:?} is not absolute but resolved to {route:?}"
        );
        return;
    }
    let segments = decoded_segments(raw);
    let first_refused = raw
        .split('/')
        .filter(|s| !s.is_empty())
        .zip(&segments)
        .find_map(|(raw_segment, decoded)| refused(raw_segment, decoded));
    match first_refused {
        Some(Refused::Hostile) => assert!(
            matches!(route, Route::BadRequest(_)),
            "{raw:?} has a traversal segment but resolved to {route:?}"
        ),
        Some(Refused::Hidden) => assert!(
            matches!(route, Route::BadRequest(_) | Route::NotFound),
            "{raw:?} names a hidden file but resolved to {route:?}"
        ),
        None => {}
    }
    match &route {
        Route::Static(file) => check_static(site, raw, &segments, file),
        Route::Withheld { file, .. } => assert_contained(site, raw, file),
        Route::Handler { file, params } => check_handler(site, raw, file, params),
        Route::NotFound | Route::BadRequest(_) => {}
    }

    let other = respelt(raw);
    let again = site.router.resolve(&other);
    assert!(
        same_outcome(&route, &again),
        "{raw:?} resolved to {route:?} but the same path spelt {other:?} to {again:?}"
    );
});
