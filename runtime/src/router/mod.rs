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
//! [`classify`](fn@crate::webroot::classify)'s to say, from its real path (symlinks
//! resolved); a file whose real path leaves the web root does not exist.

mod dynamic;
mod path;
mod table;

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::webroot::{CONFIG_FILE, HANDLER_EXTENSIONS};
use crate::webroot::{Class, Epoch, Lookup, SOURCE_EXTENSION, Withheld, classify, contained};
use dynamic::Listings;
use path::{Rejection, split_path};
use table::{Probes, Table};

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
    /// Bracketed entries per directory ([`Listings`]).
    dynamic: Listings,
    /// Handler routes known in the current epoch.
    table: Table,
}

impl Router {
    /// A router over `root`, which must already be canonical, that asks
    /// the disk at every request.
    pub fn new(root: PathBuf) -> Self {
        Self::watched(root, Arc::default())
    }

    /// A router over `root` (canonical) that keeps the handler routes it
    /// finds for as long as `epoch` lasts (see [`Epoch`]).
    pub fn watched(root: PathBuf, epoch: Arc<Epoch>) -> Self {
        Self {
            root,
            dynamic: Listings::default(),
            table: Table::new(epoch),
        }
    }

    /// The canonical web root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves the path part of a request target (`/a/b`, no query).
    pub fn resolve(&self, raw_path: &str) -> Route {
        self.route(raw_path).0
    }

    /// [`resolve`](Router::resolve), saying whether the file system was
    /// asked: a handler route known in the current epoch comes from the
    /// table ([`Lookup::Table`]: no file-system call), as does a path
    /// refused by its text.
    pub fn route(&self, raw_path: &str) -> (Route, Lookup) {
        let segments = match split_path(raw_path) {
            Ok(segments) => segments,
            Err(Rejection::Bad(why)) => return (Route::BadRequest(why), Lookup::Table),
            Err(Rejection::Hidden) => return (Route::NotFound, Lookup::Table),
        };
        let key = segments.join("/");
        self.table.look();
        if let Some(route) = self.table.get(&key) {
            return (route, Lookup::Table);
        }
        // Read before the disk is: a change from here on makes the route
        // found too old to keep.
        let epoch = self.table.epoch();
        let probes = Probes::default();
        let route = self.on_disk(&segments, &probes);
        if let (Some(epoch), Route::Handler { .. }) = (epoch, &route)
            && probes.through_real_directories(&self.root)
        {
            self.table.insert(epoch, key, &route);
        }
        (route, Lookup::Disk)
    }

    /// Resolves `segments` (split and checked) by asking the file system,
    /// noting in `probes` every path asked about.
    fn on_disk(&self, segments: &[String], probes: &Probes) -> Route {
        let rel: PathBuf = segments.iter().collect();

        // 1. An explicit handler file name: always the handler, never bytes.
        if let Some(last) = segments.last()
            && let Some((stem, ext)) = last.rsplit_once('.')
            && HANDLER_EXTENSIONS.contains(&ext)
        {
            let parent = rel.parent().unwrap_or(Path::new(""));
            return match self.handler_at(&self.root.join(parent), stem, probes) {
                Some(file) => self.contained_handler(file, Vec::new(), probes),
                None => Route::NotFound,
            };
        }

        let target = self.root.join(&rel);
        if let Some(last) = segments.last()
            && let Some(file) = self.handler_at(target.parent().unwrap_or(&self.root), last, probes)
        {
            return self.contained_handler(file, Vec::new(), probes);
        }

        probes.saw(&target);
        match std::fs::metadata(&target) {
            // 2. and 3. for a directory: its index handler, then index.html.
            Ok(meta) if meta.is_dir() => {
                if let Some(file) = self.handler_at(&target, "index", probes) {
                    return self.contained_handler(file, Vec::new(), probes);
                }
                let index = target.join("index.html");
                probes.saw(&index);
                if index.is_file() {
                    return self.contained_static(index, probes);
                }
            }
            // 3. A plain file.
            Ok(meta) if meta.is_file() => return self.contained_static(target, probes),
            _ => {}
        }

        // 4. Dynamic handlers.
        let mut candidates = Vec::new();
        self.collect_dynamic(
            &self.root,
            segments,
            &mut Vec::new(),
            &mut Vec::new(),
            &mut candidates,
            probes,
        );
        candidates.sort_by(|a, b| a.rank().cmp(&b.rank()));
        for candidate in candidates {
            if let Route::Handler { file, params } =
                self.contained_handler(candidate.file, candidate.params, probes)
            {
                return Route::Handler { file, params };
            }
        }
        Route::NotFound
    }

    /// `dir/name.wasm`, else `dir/name.wat`, else the source handler
    /// `dir/name.rs` (which the service runs only where builds are on), if it
    /// is a file.
    fn handler_at(&self, dir: &Path, name: &str, probes: &Probes) -> Option<PathBuf> {
        HANDLER_EXTENSIONS
            .iter()
            .chain([&SOURCE_EXTENSION])
            .find_map(|ext| {
                let file = dir.join(format!("{name}.{ext}"));
                probes.saw(&file);
                is_file(&file).then_some(file)
            })
    }

    fn contained_handler(
        &self,
        file: PathBuf,
        params: Vec<(String, String)>,
        probes: &Probes,
    ) -> Route {
        match self.contain(&file, probes) {
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

    fn contained_static(&self, file: PathBuf, probes: &Probes) -> Route {
        let Some(real) = self.contain(&file, probes) else {
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
    fn contain(&self, file: &Path, probes: &Probes) -> Option<PathBuf> {
        probes.saw(file);
        contained(&self.root, file)
    }
}

fn is_file(path: &Path) -> bool {
    std::fs::metadata(path)
        .as_ref()
        .is_ok_and(Metadata::is_file)
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

    /// A router whose epoch a watcher vouches for.
    fn watched(r: &Root) -> (Router, Arc<Epoch>) {
        let epoch = Arc::new(Epoch::default());
        epoch.vouch(r.router.root(), &[]);
        let router = Router::watched(r.router.root().to_owned(), epoch.clone());
        (router, epoch)
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
    fn a_handler_route_is_kept_for_its_epoch_and_looked_up_again_after_a_change() {
        let r = root(&["h.wat", "users/[id].wat", "page.txt"]);
        let (router, epoch) = watched(&r);
        for path in ["/h", "/users/7"] {
            assert_eq!(router.route(path).1, Lookup::Disk, "{path}");
            assert_eq!(router.route(path).1, Lookup::Table, "{path}");
        }
        // Spelt differently, the same segments: the same entry.
        assert_eq!(router.route("//h/").1, Lookup::Table);
        // Only handlers are kept; refused paths ask nothing.
        assert_eq!(router.route("/page.txt").1, Lookup::Disk);
        assert_eq!(router.route("/page.txt").1, Lookup::Disk);
        assert_eq!(router.route("/../x").1, Lookup::Table);
        // A file that wins over a known route is seen by the next request,
        // and so is a deleted handler, before the watcher could tell.
        std::fs::write(r.dir.path().join("users/7"), "seven").unwrap();
        assert!(matches!(
            router.route("/users/7"),
            (Route::Static(_), Lookup::Disk)
        ));
        std::fs::remove_file(r.dir.path().join("users/7")).unwrap();
        assert_eq!(router.route("/users/7").1, Lookup::Disk);
        assert_eq!(router.route("/users/7").1, Lookup::Table);
        std::fs::remove_file(r.dir.path().join("users/[id].wat")).unwrap();
        assert_eq!(router.route("/users/7"), (Route::NotFound, Lookup::Disk));
        epoch.changed();
        assert_eq!(router.route("/h").1, Lookup::Disk);
        epoch.withdraw();
        assert_eq!(router.route("/h").1, Lookup::Disk);
        assert_eq!(router.route("/h").1, Lookup::Disk);
        // A router without a watcher never keeps anything.
        assert_eq!(r.router.route("/h").1, Lookup::Disk);
        assert_eq!(r.router.route("/h").1, Lookup::Disk);
    }

    #[test]
    fn a_route_that_looked_through_a_symlink_is_looked_up_on_disk_every_time() {
        let r = root(&["real.wat", "sub/x.wat", "[...all].wat"]);
        let outside = tempfile::tempdir().unwrap();
        let link = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, r.dir.path().join(name)).unwrap();
        };
        link(&r.dir.path().join("real.wat"), "alias.wat");
        link(&r.dir.path().join("sub"), "lib");
        // Where it points is not watched: a `y.wat` made there would win.
        link(outside.path(), "out");
        let (router, _epoch) = watched(&r);
        for path in ["/alias", "/lib/x", "/out/y"] {
            for _ in 0..2 {
                let (route, lookup) = router.route(path);
                assert!(matches!(route, Route::Handler { .. }), "{path}: {route:?}");
                assert_eq!(lookup, Lookup::Disk, "{path}");
            }
        }
        assert_eq!(router.table.len(), 0);
    }

    #[test]
    fn the_table_stops_growing_at_its_capacity() {
        let r = root(&["[id].wat"]);
        let (router, _epoch) = watched(&r);
        for n in 0..table::ROUTE_TABLE_CAPACITY + 10 {
            assert!(matches!(
                router.route(&format!("/{n}")).0,
                Route::Handler { .. }
            ));
        }
        assert_eq!(router.table.len(), table::ROUTE_TABLE_CAPACITY);
        let past = format!("/{}", table::ROUTE_TABLE_CAPACITY + 1);
        assert_eq!(router.route(&past).1, Lookup::Disk);
        assert_eq!(router.route("/0").1, Lookup::Table);
    }
}
