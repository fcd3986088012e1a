//! URL path → handler, static file, or nothing. All path safety lives here.
//!
//! The rules, in order (see `docs/abi.md`, "Routing"):
//! 1. `W/a/b.wasm`, then `W/a/b.wat`. A request for `/a/b.wasm` or `/a/b.wat`
//!    names the same handler; a handler file's bytes are never served.
//! 2. A directory's `index.wasm` / `index.wat`.
//! 3. A plain file at `W/a/b`; a directory's `index.html`.
//! 4. Dynamic handlers: files `[name].wasm` and directories `[name]` match
//!    one segment, files `[...name].wasm` match the rest of the path. Fewer
//!    dynamic segments win, catch-alls lose to everything else, and among
//!    equals a literal segment earlier in the path wins.
//! 5. Not found.
//!
//! Syntactically hostile paths (`..`, backslash, NUL, encoded `/`, bad
//! percent-encoding) are rejected before the file system is touched.
//! What a file found there is — handler, static, or never served — is
//! [`crate::webroot::classify`]'s to say, from its real path (symlinks
//! resolved); a file whose real path leaves the web root does not exist.

use std::collections::HashMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use percent_encoding::percent_decode_str;

pub use crate::webroot::{CONFIG_FILE, HANDLER_EXTENSIONS};
use crate::webroot::{Class, SOURCE_EXTENSION, Withheld, classify};

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Run the handler in `file` (canonical path) with these route
    /// parameters.
    Handler {
        /// The handler file.
        file: PathBuf,
        /// `[name]` → matched value, in path order.
        params: Vec<(String, String)>,
    },
    /// Serve this static file (canonical path).
    Static(PathBuf),
    /// A file of a class never served unless the `wasmlet.toml` of its
    /// directory (or above) publishes that class (`[static] publish`); the
    /// caller asks the site.
    Withheld {
        /// The file (canonical path).
        file: PathBuf,
        /// Its class.
        class: Withheld,
    },
    /// Nothing is there, or nothing that may be shown.
    NotFound,
    /// The path is malformed or hostile; the reason is safe to show.
    BadRequest(&'static str),
}

/// Resolves request paths against one web root.
#[derive(Debug)]
pub struct Router {
    /// Canonical web root: containment checks compare real paths with it.
    root: PathBuf,
    /// Bracketed entries per directory, valid while the directory's mtime is
    /// unchanged. Adding, removing or renaming an entry changes the mtime, so
    /// one `stat` tells whether the listing is still good and a miss costs one
    /// `readdir`, not one per request. Keyed by device and inode, not by the
    /// path asked for: symlink loops give a directory endless spellings, and
    /// keying by spelling let a client grow the map without bound (found by
    /// the fuzzer).
    dynamic: Mutex<HashMap<(u64, u64), DirListing>>,
}

#[derive(Debug, Clone)]
struct DirListing {
    modified: Option<SystemTime>,
    entries: Vec<DynEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DynKind {
    /// `[name].wasm` / `[name].wat`: the final segment.
    File,
    /// `[name]/`: any one segment, more path below.
    Dir,
    /// `[...name].wasm`: the rest of the path.
    CatchAll,
}

#[derive(Debug, Clone)]
struct DynEntry {
    /// The file or directory name on disk.
    file_name: String,
    /// The parameter name inside the brackets.
    param: String,
    kind: DynKind,
}

/// A dynamic match on the way to being ranked.
#[derive(Debug)]
struct Candidate {
    file: PathBuf,
    params: Vec<(String, String)>,
    /// One flag per matched segment: was it dynamic? Compared
    /// lexicographically, so a literal earlier in the path wins a tie.
    shape: Vec<bool>,
    catch_all: bool,
}

impl Candidate {
    fn rank(&self) -> (bool, usize, &[bool]) {
        let dynamic = self.shape.iter().filter(|d| **d).count();
        (self.catch_all, dynamic, &self.shape)
    }
}

impl Router {
    /// A router over `root`, which must already be canonical.
    pub fn new(root: PathBuf) -> Self {
        Self {
            root,
            dynamic: Mutex::new(HashMap::new()),
        }
    }

    /// The canonical web root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves the path part of a request target (`/a/b`, no query).
    pub fn resolve(&self, raw_path: &str) -> Route {
        let segments = match split_path(raw_path) {
            Ok(segments) => segments,
            Err(Rejection::Bad(why)) => return Route::BadRequest(why),
            Err(Rejection::Hidden) => return Route::NotFound,
        };
        let rel: PathBuf = segments.iter().collect();

        // 1. An explicit handler file name: always the handler, never bytes.
        if let Some(last) = segments.last()
            && let Some((stem, ext)) = last.rsplit_once('.')
            && HANDLER_EXTENSIONS.contains(&ext)
        {
            let parent = rel.parent().unwrap_or(Path::new(""));
            return match self.handler_at(&self.root.join(parent), stem) {
                Some(file) => self.contained_handler(file, Vec::new()),
                None => Route::NotFound,
            };
        }

        let target = self.root.join(&rel);
        if let Some(last) = segments.last()
            && let Some(file) = self.handler_at(target.parent().unwrap_or(&self.root), last)
        {
            return self.contained_handler(file, Vec::new());
        }

        match std::fs::metadata(&target) {
            // 2. and 3. for a directory: its index handler, then index.html.
            Ok(meta) if meta.is_dir() => {
                if let Some(file) = self.handler_at(&target, "index") {
                    return self.contained_handler(file, Vec::new());
                }
                let index = target.join("index.html");
                if index.is_file() {
                    return self.contained_static(index);
                }
            }
            // 3. A plain file.
            Ok(meta) if meta.is_file() => return self.contained_static(target),
            _ => {}
        }

        // 4. Dynamic handlers.
        let mut candidates = Vec::new();
        self.collect_dynamic(
            &self.root,
            &segments,
            &mut Vec::new(),
            &mut Vec::new(),
            &mut candidates,
        );
        candidates.sort_by(|a, b| a.rank().cmp(&b.rank()));
        for candidate in candidates {
            if let Route::Handler { file, params } =
                self.contained_handler(candidate.file, candidate.params)
            {
                return Route::Handler { file, params };
            }
        }
        Route::NotFound
    }

    /// `dir/name.wasm`, else `dir/name.wat`, else the source handler
    /// `dir/name.rs` (which the service runs only where builds are on), if it
    /// is a file.
    fn handler_at(&self, dir: &Path, name: &str) -> Option<PathBuf> {
        HANDLER_EXTENSIONS
            .iter()
            .chain([&SOURCE_EXTENSION])
            .find_map(|ext| {
                let file = dir.join(format!("{name}.{ext}"));
                is_file(&file).then_some(file)
            })
    }

    fn contained_handler(&self, file: PathBuf, params: Vec<(String, String)>) -> Route {
        match self.contain(&file) {
            Some(file)
                if matches!(
                    self.class(&file),
                    Class::Handler | Class::Withheld(Withheld::RustSource)
                ) =>
            {
                Route::Handler { file, params }
            }
            _ => Route::NotFound,
        }
    }

    fn contained_static(&self, file: PathBuf) -> Route {
        let Some(real) = self.contain(&file) else {
            return Route::NotFound;
        };
        // A symlink named `x.txt` may point at a handler or config file;
        // what counts is the real name.
        match self.class(&real) {
            Class::Static => Route::Static(real),
            Class::Withheld(class) if class.publishable() => Route::Withheld { file: real, class },
            Class::Handler | Class::Withheld(_) => Route::NotFound,
        }
    }

    /// What the file at `real` (inside the root) is.
    fn class(&self, real: &Path) -> Class {
        real.strip_prefix(&self.root)
            .map_or(Class::Withheld(Withheld::Hidden), classify)
    }

    /// The file's real path if it is inside the web root and names nothing
    /// hidden there.
    fn contain(&self, file: &Path) -> Option<PathBuf> {
        let real = std::fs::canonicalize(file).ok()?;
        let inside = real.strip_prefix(&self.root).ok()?;
        let hidden = inside
            .components()
            .any(|c| c.as_os_str().to_str().is_none_or(|s| s.starts_with('.')));
        (!hidden).then_some(real)
    }

    fn collect_dynamic(
        &self,
        dir: &Path,
        rest: &[String],
        params: &mut Vec<(String, String)>,
        shape: &mut Vec<bool>,
        out: &mut Vec<Candidate>,
    ) {
        let Some((segment, below)) = rest.split_first() else {
            return;
        };
        // A literal handler below a dynamic directory (`[id]/posts.wat`):
        // fully literal paths were already tried as exact matches.
        if below.is_empty()
            && shape.iter().any(|d| *d)
            && let Some(file) = self.handler_at(dir, segment)
        {
            let mut shape = shape.clone();
            shape.push(false);
            out.push(Candidate {
                file,
                params: params.clone(),
                shape,
                catch_all: false,
            });
        }
        let entries = self.listing(dir);
        for entry in &entries {
            let path = dir.join(&entry.file_name);
            match entry.kind {
                DynKind::CatchAll => {
                    let mut params = params.clone();
                    params.push((entry.param.clone(), rest.join("/")));
                    let mut shape = shape.clone();
                    shape.extend(std::iter::repeat_n(true, rest.len()));
                    out.push(Candidate {
                        file: path,
                        params,
                        shape,
                        catch_all: true,
                    });
                }
                DynKind::File if below.is_empty() => {
                    let mut params = params.clone();
                    params.push((entry.param.clone(), segment.clone()));
                    let mut shape = shape.clone();
                    shape.push(true);
                    out.push(Candidate {
                        file: path,
                        params,
                        shape,
                        catch_all: false,
                    });
                }
                DynKind::Dir => {
                    params.push((entry.param.clone(), segment.clone()));
                    shape.push(true);
                    self.descend(&path, below, params, shape, out);
                    params.pop();
                    shape.pop();
                }
                DynKind::File => {}
            }
        }
        // A literal directory on the way can hold dynamic entries below it.
        let literal = dir.join(segment);
        if std::fs::metadata(&literal).is_ok_and(|m| m.is_dir()) {
            shape.push(false);
            self.descend(&literal, below, params, shape, out);
            shape.pop();
        }
    }

    /// Matches what is left below a directory that matched `segment`: its
    /// index handler when nothing is left, else the entries inside it.
    fn descend(
        &self,
        dir: &Path,
        below: &[String],
        params: &mut Vec<(String, String)>,
        shape: &mut Vec<bool>,
        out: &mut Vec<Candidate>,
    ) {
        if below.is_empty() {
            if shape.iter().any(|d| *d)
                && let Some(file) = self.handler_at(dir, "index")
            {
                out.push(Candidate {
                    file,
                    params: params.clone(),
                    shape: shape.clone(),
                    catch_all: false,
                });
            }
        } else {
            self.collect_dynamic(dir, below, params, shape, out);
        }
    }

    /// The bracketed entries of `dir`, from the cache while its mtime holds.
    fn listing(&self, dir: &Path) -> Vec<DynEntry> {
        let Ok(meta) = std::fs::metadata(dir) else {
            return Vec::new();
        };
        let modified = meta.modified().ok();
        let key = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        if let Some(cached) = self.dynamic.lock().unwrap().get(&key)
            && cached.modified == modified
            && modified.is_some()
        {
            return cached.entries.clone();
        }
        let entries = read_dynamic_entries(dir);
        self.dynamic.lock().unwrap().insert(
            key,
            DirListing {
                modified,
                entries: entries.clone(),
            },
        );
        entries
    }
}

/// Every handler file under `root` that a request could reach, sorted: what
/// `wasmlet compile` and `--precompile` load. Skips what the router never
/// serves (dot-entries, build output) and symlinks whose target leaves the
/// root.
pub fn handler_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            if name.to_str().is_none_or(|n| n.starts_with('.')) {
                continue;
            }
            let path = entry.path();
            let Ok(real) = std::fs::canonicalize(&path) else {
                continue;
            };
            if !real.starts_with(root) {
                continue;
            }
            let Ok(meta) = std::fs::metadata(&real) else {
                continue;
            };
            if meta.is_dir() {
                // A symlinked directory could loop back; only real ones.
                if !entry.file_type().is_ok_and(|t| t.is_symlink()) {
                    dirs.push(path);
                }
            } else if real
                .strip_prefix(root)
                .is_ok_and(|rel| classify(rel) == Class::Handler)
            {
                found.push(real);
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// The URL path the handler `file` answers at: its path below `root`
/// without the extension, a directory's `index` standing for the directory
/// (`api/index.wat` → `/api/`). Dynamic segments keep their brackets
/// (`/users/[id]`).
pub fn handler_url(root: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(root).unwrap_or(file).with_extension("");
    let mut path = rel.to_string_lossy().into_owned();
    if path == "index" || path.ends_with("/index") {
        path.truncate(path.len() - "index".len());
    }
    format!("/{path}")
}

fn read_dynamic_entries(dir: &Path) -> Vec<DynEntry> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<DynEntry> = read
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file_name = entry.file_name().into_string().ok()?;
            let is_dir = entry.metadata().ok()?.is_dir();
            parse_dynamic_name(&file_name, is_dir).map(|(param, kind)| DynEntry {
                file_name,
                param,
                kind,
            })
        })
        .collect();
    // `.wasm` before `.wat` for the same name, as for literal handlers; the
    // ranking sort is stable, so this order decides exact ties.
    entries.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    entries
}

/// `[id].wasm` → (`id`, File); `[...rest].wat` → (`rest`, CatchAll);
/// directory `[id]` → (`id`, Dir).
fn parse_dynamic_name(name: &str, is_dir: bool) -> Option<(String, DynKind)> {
    let (inner, kind) = if is_dir {
        (name.strip_prefix('[')?.strip_suffix(']')?, DynKind::Dir)
    } else {
        let (stem, ext) = name.rsplit_once('.')?;
        if !HANDLER_EXTENSIONS.contains(&ext) {
            return None;
        }
        let inner = stem.strip_prefix('[')?.strip_suffix(']')?;
        match inner.strip_prefix("...") {
            Some(rest) => (rest, DynKind::CatchAll),
            None => (inner, DynKind::File),
        }
    };
    let valid = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (valid && !(is_dir && inner.starts_with("..."))).then(|| (inner.to_owned(), kind))
}

fn is_file(path: &Path) -> bool {
    std::fs::metadata(path)
        .as_ref()
        .is_ok_and(Metadata::is_file)
}

enum Rejection {
    /// Malformed or hostile: `400`.
    Bad(&'static str),
    /// Well-formed but names something never served: `404`.
    Hidden,
}

/// Splits and percent-decodes a request path into safe segments.
fn split_path(raw: &str) -> Result<Vec<String>, Rejection> {
    if !raw.starts_with('/') {
        return Err(Rejection::Bad("the path must start with /"));
    }
    let mut segments = Vec::new();
    for raw_segment in raw.split('/') {
        if raw_segment.is_empty() {
            continue;
        }
        if raw_segment.contains('\\') {
            return Err(Rejection::Bad("backslashes are not allowed in paths"));
        }
        let decoded: Vec<u8> = percent_decode_str(raw_segment).collect();
        if !well_formed_percent_encoding(raw_segment) {
            return Err(Rejection::Bad("malformed percent-encoding in the path"));
        }
        let segment = String::from_utf8(decoded)
            .map_err(|_| Rejection::Bad("the path is not valid UTF-8"))?;
        if segment.contains(['/', '\\']) {
            return Err(Rejection::Bad("encoded slashes are not allowed in paths"));
        }
        if segment.contains('\0') || segment.chars().any(char::is_control) {
            return Err(Rejection::Bad(
                "control characters are not allowed in paths",
            ));
        }
        if segment == "." || segment == ".." {
            return Err(Rejection::Bad("`.` and `..` are not allowed in paths"));
        }
        if segment.starts_with('.') || segment == CONFIG_FILE {
            return Err(Rejection::Hidden);
        }
        segments.push(segment);
    }
    Ok(segments)
}

/// Every `%` is followed by two hex digits.
fn well_formed_percent_encoding(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: Option<&u8>| b.is_some_and(u8::is_ascii_hexdigit);
            if !hex(bytes.get(i + 1)) || !hex(bytes.get(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Root {
        dir: tempfile::TempDir,
        router: Router,
    }

    fn root(files: &[&str]) -> Root {
        let dir = tempfile::tempdir().unwrap();
        for file in files {
            let path = dir.path().join(file);
            if let Some(stripped) = file.strip_suffix('/') {
                std::fs::create_dir_all(dir.path().join(stripped)).unwrap();
                continue;
            }
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, file.as_bytes()).unwrap();
        }
        let router = Router::new(std::fs::canonicalize(dir.path()).unwrap());
        Root { dir, router }
    }

    impl Root {
        fn handler(&self, path: &str) -> (String, Vec<(String, String)>) {
            match self.router.resolve(path) {
                Route::Handler { file, params } => {
                    let rel = file.strip_prefix(self.router.root()).unwrap();
                    (rel.to_str().unwrap().to_owned(), params)
                }
                other => panic!("{path}: expected a handler, got {other:?}"),
            }
        }

        fn static_file(&self, path: &str) -> String {
            match self.router.resolve(path) {
                Route::Static(file) => file
                    .strip_prefix(self.router.root())
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .to_owned(),
                other => panic!("{path}: expected a static file, got {other:?}"),
            }
        }
    }

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn hostile_paths_are_rejected_before_touching_the_disk() {
        let r = root(&[
            "secret.txt",
            ".env",
            ".git/config",
            "a/wasmlet.toml",
            "ok.txt",
        ]);
        let bad = [
            "/../etc/passwd",
            "/a/../../etc/passwd",
            "/%2e%2e/etc/passwd",
            "/%2E%2E/%2E%2E/etc/passwd",
            "/a/%2e%2e/%2e%2e/x",
            "/.",
            "/a%2fb",
            "/a%2Fb",
            "/a%5cb",
            "/a\\b",
            "/..\\..\\windows",
            "/a%00b",
            "/%00",
            "/a%0ab",
            "/%zz",
            "/%e",
            "/%ff%fe",
            "relative/path",
        ];
        for path in bad {
            assert!(
                matches!(r.router.resolve(path), Route::BadRequest(_)),
                "{path} should be a bad request, got {:?}",
                r.router.resolve(path)
            );
        }
        let hidden = [
            "/.env",
            "/.git/config",
            "/%2egit/config",
            "/a/wasmlet.toml",
            "/wasmlet.toml",
            "/a/.hidden/x",
        ];
        for path in hidden {
            assert_eq!(r.router.resolve(path), Route::NotFound, "{path}");
        }
        assert_eq!(r.static_file("/ok.txt"), "ok.txt");
    }

    #[test]
    fn symlinks_that_leave_the_root_do_not_exist() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
        std::fs::write(outside.path().join("evil.wat"), "(module)").unwrap();
        let r = root(&["inside.txt"]);
        let link = |name: &str, to: &Path| {
            std::os::unix::fs::symlink(to, r.dir.path().join(name)).unwrap();
        };
        link("leak.txt", &outside.path().join("secret.txt"));
        link("evil.wat", &outside.path().join("evil.wat"));
        link("outdir", outside.path());
        link("ok.txt", &r.dir.path().join("inside.txt"));
        for path in [
            "/leak.txt",
            "/evil",
            "/evil.wat",
            "/outdir/secret.txt",
            "/outdir/evil",
        ] {
            assert_eq!(r.router.resolve(path), Route::NotFound, "{path}");
        }
        assert_eq!(r.static_file("/ok.txt"), "inside.txt");
    }

    #[test]
    fn symlink_loops_do_not_grow_the_listing_cache() {
        let r = root(&["d/[id].wat"]);
        std::os::unix::fs::symlink(r.dir.path(), r.dir.path().join("d/up")).unwrap();
        let mut path = String::from("/d");
        for _ in 0..30 {
            path.push_str("/up/d");
            assert!(matches!(
                r.router.resolve(&format!("{path}/7")),
                Route::Handler { .. }
            ));
        }
        let cached = r.router.dynamic.lock().unwrap().len();
        assert!(
            cached <= 3,
            "one entry per real directory, not per spelling: {cached}"
        );
    }

    #[test]
    fn a_symlink_cannot_expose_a_handler_or_config_as_static() {
        let r = root(&["h.wat", "wasmlet.toml"]);
        std::os::unix::fs::symlink(r.dir.path().join("h.wat"), r.dir.path().join("h.txt")).unwrap();
        std::os::unix::fs::symlink(
            r.dir.path().join("wasmlet.toml"),
            r.dir.path().join("conf.txt"),
        )
        .unwrap();
        assert_eq!(r.router.resolve("/h.txt"), Route::NotFound);
        assert_eq!(r.router.resolve("/conf.txt"), Route::NotFound);
    }

    #[test]
    fn exact_handlers_and_their_file_names_resolve_to_the_handler() {
        let r = root(&["a/b.wat", "both.wasm", "both.wat", "x.txt"]);
        for path in ["/a/b", "/a/b.wat", "/a/b.wasm", "/a//b"] {
            assert_eq!(r.handler(path).0, "a/b.wat", "{path}");
        }
        assert_eq!(r.handler("/both").0, "both.wasm");
        assert_eq!(r.handler("/both.wat").0, "both.wasm");
        assert_eq!(r.router.resolve("/x.txt.wasm"), Route::NotFound);
        assert_eq!(r.router.resolve("/nope.wat"), Route::NotFound);
    }

    #[test]
    fn directories_use_their_index_handler_then_index_html() {
        let r = root(&["index.wat", "docs/index.html", "api/index.wasm", "empty/"]);
        assert_eq!(r.handler("/").0, "index.wat");
        assert_eq!(r.handler("/api").0, "api/index.wasm");
        assert_eq!(r.handler("/api/").0, "api/index.wasm");
        assert_eq!(r.static_file("/docs/"), "docs/index.html");
        assert_eq!(r.router.resolve("/empty"), Route::NotFound);
    }

    #[test]
    fn handlers_win_over_static_files_and_static_over_dynamic() {
        let r = root(&["page.wat", "page", "[id].wat", "about.txt", "about/"]);
        assert_eq!(r.handler("/page").0, "page.wat");
        assert_eq!(r.static_file("/about.txt"), "about.txt");
        assert_eq!(
            r.handler("/else"),
            ("[id].wat".into(), p(&[("id", "else")]))
        );
    }

    #[test]
    fn dynamic_routes_rank_by_specificity() {
        let r = root(&[
            "users/[id].wat",
            "users/[id]/posts.wat",
            "users/me.wat",
            "[org]/[repo].wat",
            "[org]/settings.wat",
            "files/[...path].wat",
            "[...all].wasm",
        ]);
        assert_eq!(r.handler("/users/me").0, "users/me.wat");
        assert_eq!(
            r.handler("/users/42"),
            ("users/[id].wat".into(), p(&[("id", "42")]))
        );
        assert_eq!(
            r.handler("/users/42/posts"),
            ("users/[id]/posts.wat".into(), p(&[("id", "42")]))
        );
        // One dynamic segment beats two.
        assert_eq!(
            r.handler("/acme/settings"),
            ("[org]/settings.wat".into(), p(&[("org", "acme")]))
        );
        assert_eq!(
            r.handler("/acme/widgets"),
            (
                "[org]/[repo].wat".into(),
                p(&[("org", "acme"), ("repo", "widgets")])
            )
        );
        // A catch-all loses to any non-catch-all, and takes the rest.
        assert_eq!(
            r.handler("/files/a/b%20c.txt"),
            ("files/[...path].wat".into(), p(&[("path", "a/b c.txt")]))
        );
        assert_eq!(
            r.handler("/x/y/z"),
            ("[...all].wasm".into(), p(&[("all", "x/y/z")]))
        );
    }

    #[test]
    fn a_literal_segment_earlier_in_the_path_breaks_ties() {
        let r = root(&["a/[x].wat", "[y]/b.wat"]);
        assert_eq!(r.handler("/a/b"), ("a/[x].wat".into(), p(&[("x", "b")])));
    }

    #[test]
    fn dynamic_directories_can_have_an_index() {
        let r = root(&["shop/[item]/index.wat"]);
        assert_eq!(
            r.handler("/shop/hat"),
            ("shop/[item]/index.wat".into(), p(&[("item", "hat")]))
        );
    }

    #[test]
    fn new_dynamic_files_are_seen_without_a_restart() {
        let r = root(&["users/x.txt"]);
        assert_eq!(r.router.resolve("/users/7"), Route::NotFound);
        std::fs::write(r.dir.path().join("users/[id].wat"), "(module)").unwrap();
        assert_eq!(r.handler("/users/7").1, p(&[("id", "7")]));
    }

    #[test]
    fn handler_files_lists_reachable_handlers_only() {
        let r = root(&[
            "a.wat",
            "b.wasm",
            "x.txt",
            "sub/[id].wat",
            ".hidden/h.wat",
            "sub/.h.wat",
        ]);
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("o.wat"), "(module)").unwrap();
        std::os::unix::fs::symlink(outside.path().join("o.wat"), r.dir.path().join("o.wat"))
            .unwrap();
        let files: Vec<String> = handler_files(r.router.root())
            .iter()
            .map(|f| {
                f.strip_prefix(r.router.root())
                    .unwrap()
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(files, ["a.wat", "b.wasm", "sub/[id].wat"]);
    }

    #[test]
    fn a_handler_url_drops_the_extension_and_index() {
        let root = Path::new("/w");
        for (file, url) in [
            ("/w/hello.wat", "/hello"),
            ("/w/index.wasm", "/"),
            ("/w/api/index.wat", "/api/"),
            ("/w/api/reindex.wat", "/api/reindex"),
            ("/w/users/[id].wasm", "/users/[id]"),
        ] {
            assert_eq!(handler_url(root, Path::new(file)), url, "{file}");
        }
    }

    #[test]
    fn bracketed_names_must_be_identifiers() {
        assert_eq!(
            parse_dynamic_name("[id].wat", false),
            Some(("id".into(), DynKind::File))
        );
        assert_eq!(
            parse_dynamic_name("[...rest].wasm", false),
            Some(("rest".into(), DynKind::CatchAll))
        );
        assert_eq!(
            parse_dynamic_name("[id]", true),
            Some(("id".into(), DynKind::Dir))
        );
        for bad in ["[].wat", "[a b].wat", "[id].txt", "id.wat", "[...].wat"] {
            assert_eq!(parse_dynamic_name(bad, false), None, "{bad}");
        }
        assert_eq!(parse_dynamic_name("[...x]", true), None);
    }
}
