//! Per-directory configuration: the `wasmlet.toml` files of a web root, the
//! `web.config` idea. A directory inherits its parent's settings and may
//! override any of them; a `[handlers."name.wat"]` table overrides them for
//! one handler file. What a handler may reach (outbound hosts, stores, file
//! mounts) is denied unless a file grants it.
//!
//! The whole tree is read at once into a [`Site`]: every file parsed and
//! checked, every store opened, every effective [`Policy`] built. A request
//! looks its handler's policy up in a map, so configuration costs nothing per
//! request. A reload builds a new `Site` beside the old one and swaps it in
//! only when the whole tree is good: a broken edit keeps the previous
//! configuration serving, and the error is logged with file, line and key.

mod file;
mod locator;
mod policy;
mod stores;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::capability::kv::Store;
use crate::config::Config;
use crate::webroot::{CONFIG_FILE, Withheld, walk};

use file::{DirFile, Settings, StoreBackend, StoreDef};
pub use file::{MAX_VARIABLE_SIZE, Variable};
pub use policy::{InstancePolicy, Policy};
pub use stores::default_store_path;
use stores::open_store;

/// The store a guest gets when it names none (`""`).
pub const DEFAULT_STORE: &str = "default";

/// Default largest value a store accepts.
pub const DEFAULT_MAX_VALUE_SIZE: u64 = 1 << 20;

/// Default number of warm instances a reusable handler keeps.
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// Default time an idle warm instance is kept.
pub const DEFAULT_POOL_IDLE: Duration = Duration::from_secs(60);

/// Default number of requests one reused instance serves before it is
/// retired: a bound on what a guest can accumulate (a leak, a growing
/// cache) however long it keeps being used.
pub const DEFAULT_MAX_REQUESTS: u32 = 10_000;

/// Default number of requests one reused WASI 0.3 instance serves at once
/// (`wasmtime serve`'s default too).
pub const DEFAULT_INSTANCE_CONCURRENCY: u32 = 16;

/// Most requests one reused WASI 0.3 instance may be given at once: they
/// share one store, one memory limit and one event loop, so past this a
/// second instance serves better than a crowded one.
pub const MAX_INSTANCE_CONCURRENCY: u32 = 1000;

/// A configuration file that is malformed or names something that does not
/// exist: where, which key, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SiteError {
    /// The `wasmlet.toml` at fault.
    pub file: PathBuf,
    /// 1-based line, or 0 when the error is about the file as a whole.
    pub line: usize,
    /// 1-based column (0 with line 0).
    pub column: usize,
    /// The dotted key (`http.allow`), when one is at fault.
    pub key: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl std::fmt::Display for SiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// The policies of one directory that has a `wasmlet.toml`.
struct DirPolicies {
    dir: Arc<Policy>,
    handlers: HashMap<String, Arc<Policy>>,
    /// The never-served classes served here anyway (inherited).
    publish: Vec<Withheld>,
    /// Whether `.rs` source handlers are built here (inherited).
    build_rust: bool,
}

/// Every `wasmlet.toml` of a web root, merged into the policy of each
/// directory and handler that has one.
pub struct Site {
    root: PathBuf,
    /// For handlers with no `wasmlet.toml` above them.
    default: Arc<Policy>,
    /// By directory relative to the root (`""` is the root).
    dirs: HashMap<PathBuf, DirPolicies>,
    /// Open stores with their definitions, so a reload keeps the ones whose
    /// definition did not change (and their connections).
    stores: BTreeMap<String, (StoreDef, Store)>,
    files: Vec<PathBuf>,
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("root", &self.root)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl Site {
    /// A site with no configuration files: nothing granted.
    pub fn empty(config: &Config) -> Self {
        Self {
            root: config.webroot.clone(),
            default: Arc::new(Policy::deny_all(config)),
            dirs: HashMap::new(),
            stores: BTreeMap::new(),
            files: Vec::new(),
        }
    }

    /// Reads every `wasmlet.toml` under the web root, opens the stores they
    /// grant (reusing `previous`'s where the definition is unchanged) and
    /// builds every policy. Any error in any file fails the whole load.
    pub async fn load(config: &Config, previous: Option<&Site>) -> Result<Self, SiteError> {
        Self::load_at(config, &config.webroot, previous).await
    }

    /// [`load`](Site::load) for the web root at `root`: where a symlinked
    /// web root points now, which may not be where it pointed at start.
    pub async fn load_at(
        config: &Config,
        root: &Path,
        previous: Option<&Site>,
    ) -> Result<Self, SiteError> {
        let root = root.to_path_buf();
        let files = {
            let walk = root.clone();
            tokio::task::spawn_blocking(move || read_all(&walk))
                .await
                .map_err(|e| SiteError {
                    file: root.join(CONFIG_FILE),
                    line: 0,
                    column: 0,
                    key: None,
                    message: format!("reading the configuration failed: {e}"),
                })??
        };
        let mut site = Self::empty(config);
        site.root = root.clone();
        site.files = files.iter().map(|(_, f)| f.path.clone()).collect();
        if files.is_empty() {
            return Ok(site);
        }
        let defs = files
            .iter()
            .find(|(rel, _)| rel.as_os_str().is_empty())
            .map(|(_, f)| f.stores.clone())
            .unwrap_or_default();
        let root_file = root.join(CONFIG_FILE);

        // Effective settings per directory, parents first (sorted by depth).
        let mut effective: HashMap<PathBuf, (Settings, Vec<PathBuf>)> = HashMap::new();
        for (rel, file) in &files {
            let (parent, mut sources) = rel
                .ancestors()
                .skip(1)
                .find_map(|a| effective.get(a))
                .cloned()
                .unwrap_or_default();
            sources.push(file.path.clone());
            effective.insert(rel.clone(), (merge(&parent, &file.settings), sources));
        }

        // Open every store some directory or handler grants.
        let mut granted: Vec<(&str, &Path)> = Vec::new();
        for (rel, file) in &files {
            let (settings, _) = &effective[rel];
            let all = std::iter::once(settings).chain(file.handlers.values());
            for s in all {
                for name in s.kv.stores.iter().flatten() {
                    granted.push((name, &file.path));
                }
            }
        }
        for (name, file) in granted {
            if site.stores.contains_key(name) {
                continue;
            }
            let def = match defs.get(name) {
                Some(def) => def.clone(),
                None if name == DEFAULT_STORE => StoreDef {
                    backend: StoreBackend::Sqlite(None),
                    max_value_size: None,
                },
                None => {
                    return Err(SiteError {
                        file: file.to_owned(),
                        line: 0,
                        column: 0,
                        key: Some("kv.stores".to_owned()),
                        message: format!(
                            "no store named `{name}`; define [stores.{name}] in {}",
                            root_file.display()
                        ),
                    });
                }
            };
            let reused = previous
                .and_then(|p| p.stores.get(name))
                .filter(|(old, _)| *old == def)
                .map(|(_, store)| store.clone());
            let store = match reused {
                Some(store) => store,
                None => open_store(config, name, &def, &root_file).await?,
            };
            site.stores.insert(name.to_owned(), (def, store));
        }

        for (rel, file) in &files {
            let (settings, sources) = &effective[rel];
            let parent = rel.ancestors().skip(1).find_map(|a| site.dirs.get(a));
            let publish = match &file.publish {
                Some(own) => own.clone(),
                None => parent.map(|d| d.publish.clone()).unwrap_or_default(),
            };
            let build_rust = file
                .build_rust
                .unwrap_or_else(|| parent.is_some_and(|d| d.build_rust));
            let dir = Arc::new(site.policy_from(config, settings, sources, &file.path)?);
            let mut handlers = HashMap::new();
            for (name, own) in &file.handlers {
                let merged = merge(settings, own);
                let policy = site.policy_from(config, &merged, sources, &file.path)?;
                handlers.insert(name.clone(), Arc::new(policy));
            }
            site.dirs.insert(
                rel.clone(),
                DirPolicies {
                    dir,
                    handlers,
                    publish,
                    build_rust,
                },
            );
        }
        Ok(site)
    }

    /// The policy for the handler file at `file` (a path under the root).
    pub fn policy(&self, file: &Path) -> Arc<Policy> {
        if self.dirs.is_empty() {
            return self.default.clone();
        }
        let rel = file.strip_prefix(&self.root).unwrap_or(file);
        let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let dir = rel.parent().unwrap_or(Path::new(""));
        if let Some(own) = self.dirs.get(dir).and_then(|d| d.handlers.get(name)) {
            return own.clone();
        }
        dir.ancestors()
            .find_map(|a| self.dirs.get(a))
            .map_or_else(|| self.default.clone(), |d| d.dir.clone())
    }

    /// Whether the `wasmlet.toml` nearest above `file` (a path under the
    /// root) publishes its never-served `class` (`[static] publish`).
    pub fn publishes(&self, file: &Path, class: Withheld) -> bool {
        self.nearest(file)
            .is_some_and(|d| d.publish.contains(&class))
    }

    /// Whether `.rs` files where `file` lives are handlers (`[build] rust`).
    pub fn builds_rust(&self, file: &Path) -> bool {
        self.nearest(file).is_some_and(|d| d.build_rust)
    }

    /// The settings of the configured directory nearest above `file`.
    fn nearest(&self, file: &Path) -> Option<&DirPolicies> {
        let rel = file.strip_prefix(&self.root).unwrap_or(file);
        rel.parent()
            .unwrap_or(Path::new(""))
            .ancestors()
            .find_map(|a| self.dirs.get(a))
    }

    /// The configuration files read, root first.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The names of the open stores.
    pub fn store_names(&self) -> impl Iterator<Item = &str> {
        self.stores.keys().map(String::as_str)
    }
}

/// `child` over `parent`: every setting the child sets wins.
fn merge(parent: &Settings, child: &Settings) -> Settings {
    fn pick<T: Clone>(child: &Option<T>, parent: &Option<T>) -> Option<T> {
        child.clone().or_else(|| parent.clone())
    }
    let (p, c) = (parent, child);
    Settings {
        limits: file::Limits {
            request_timeout: pick(&c.limits.request_timeout, &p.limits.request_timeout),
            max_memory: pick(&c.limits.max_memory, &p.limits.max_memory),
            max_concurrency: pick(&c.limits.max_concurrency, &p.limits.max_concurrency),
        },
        http: file::Http {
            allow: pick(&c.http.allow, &p.http.allow),
            allow_private: pick(&c.http.allow_private, &p.http.allow_private),
            timeout: pick(&c.http.timeout, &p.http.timeout),
            connect_timeout: pick(&c.http.connect_timeout, &p.http.connect_timeout),
            max_response_size: pick(&c.http.max_response_size, &p.http.max_response_size),
            max_redirects: pick(&c.http.max_redirects, &p.http.max_redirects),
            ca_pem: pick(&c.http.ca_pem, &p.http.ca_pem),
        },
        kv: file::Kv {
            stores: pick(&c.kv.stores, &p.kv.stores),
        },
        files: file::Files {
            mounts: pick(&c.files.mounts, &p.files.mounts),
        },
        instances: file::Instances {
            reuse: pick(&c.instances.reuse, &p.instances.reuse),
            pool_size: pick(&c.instances.pool_size, &p.instances.pool_size),
            idle_timeout: pick(&c.instances.idle_timeout, &p.instances.idle_timeout),
            max_requests: pick(&c.instances.max_requests, &p.instances.max_requests),
            concurrency: pick(&c.instances.concurrency, &p.instances.concurrency),
        },
        variables: p
            .variables
            .iter()
            .chain(&c.variables)
            .map(|(name, variable)| (name.clone(), variable.clone()))
            .collect(),
    }
}

/// Every `wasmlet.toml` under `root`, parsed, parents before children.
/// Hidden directories are skipped (nothing in them is served) and symlinked
/// directories are not followed (the router never serves through them as
/// directories outside the root, and a loop must not hang the load).
fn read_all(root: &Path) -> Result<Vec<(PathBuf, DirFile)>, SiteError> {
    let mut found = Vec::new();
    walk(
        root,
        |_| false,
        |entry| {
            if entry.path.file_name() == Some(CONFIG_FILE.as_ref()) && entry.path.is_file() {
                let dir = entry.path.parent().unwrap_or(root);
                let rel = dir.strip_prefix(root).unwrap_or(Path::new(""));
                found.push((rel.to_path_buf(), entry.path.clone()));
            }
        },
    );
    found.sort_by_key(|(rel, _)| rel.components().count());
    found
        .into_iter()
        .map(|(rel, config)| {
            let parsed = file::read(&config, rel.as_os_str().is_empty())?;
            Ok((rel, parsed))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(root: &Path, data: &Path) -> Config {
        Config {
            data_dir: Some(data.to_owned()),
            ..Config::new(root)
        }
        .validate()
        .unwrap()
    }

    #[tokio::test]
    async fn directories_inherit_and_override_and_handlers_override_their_directory() {
        let root = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::create_dir_all(r.join("api/v2")).unwrap();
        std::fs::create_dir_all(r.join("files")).unwrap();
        std::fs::write(
            r.join("wasmlet.toml"),
            "[limits]\nrequest-timeout = \"7s\"\n[http]\nallow = [\"https://a.example\"]\n",
        )
        .unwrap();
        std::fs::write(
            r.join("api/wasmlet.toml"),
            "[limits]\nmax-memory = \"8MiB\"\n[kv]\nstores = [\"default\"]\n[files]\nmounts = { d = \"../files\" }\n\n[handlers.\"slow.wat\"]\nlimits.request-timeout = \"60s\"\nhttp.allow = []\n",
        )
        .unwrap();
        let c = config(r, data.path());
        let site = Site::load(&c, None).await.unwrap();
        let root_dir = std::fs::canonicalize(r).unwrap();

        let top = site.policy(&root_dir.join("x.wat"));
        assert_eq!(top.request_timeout, Duration::from_secs(7));
        assert_eq!(top.max_memory, c.max_memory);
        assert!(top.http.is_some());
        assert!(top.stores.is_empty());

        let deep = site.policy(&root_dir.join("api/v2/x.wat"));
        assert_eq!(deep.request_timeout, Duration::from_secs(7), "inherited");
        assert_eq!(deep.max_memory, 8 << 20, "overridden");
        assert!(deep.stores.contains_key("default"));
        assert_eq!(deep.mounts.iter().next().unwrap().name, "d");
        assert_eq!(deep.sources.len(), 2);

        let slow = site.policy(&root_dir.join("api/slow.wat"));
        assert_eq!(slow.request_timeout, Duration::from_secs(60));
        assert!(
            slow.http.is_none(),
            "an empty allow-list narrows to nothing"
        );
        assert_eq!(slow.max_memory, 8 << 20);
        assert!(
            default_store_path(data.path(), &c.webroot, "default").exists(),
            "the embedded default store needs no setup"
        );
    }

    #[tokio::test]
    async fn no_configuration_grants_nothing() {
        let root = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let c = config(root.path(), data.path());
        let site = Site::load(&c, None).await.unwrap();
        let p = site.policy(&c.webroot.join("a/b.wat"));
        assert!(p.http.is_none() && p.stores.is_empty() && p.mounts.is_empty());
        assert!(p.grant_hint("[http] allow").contains("a wasmlet.toml"));
    }

    #[tokio::test]
    async fn a_store_that_is_not_defined_or_a_missing_mount_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let c = config(root.path(), data.path());
        std::fs::write(
            root.path().join("wasmlet.toml"),
            "[kv]\nstores = [\"nope\"]\n",
        )
        .unwrap();
        let e = Site::load(&c, None).await.unwrap_err().to_string();
        assert!(e.contains("kv.stores: no store named `nope`"), "{e}");
        std::fs::write(
            root.path().join("wasmlet.toml"),
            "[files]\nmounts = { d = \"missing\" }\n",
        )
        .unwrap();
        let e = Site::load(&c, None).await.unwrap_err().to_string();
        assert!(e.contains("files.mounts: mount `d`"), "{e}");
        let sub = root.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(root.path().join("wasmlet.toml"), "").unwrap();
        std::fs::write(sub.join("wasmlet.toml"), "[limits]\nmax-memory = 5\n").unwrap();
        let e = Site::load(&c, None).await.unwrap_err().to_string();
        assert!(
            e.contains("sub/wasmlet.toml:2:14: limits.max-memory"),
            "{e}"
        );
    }
}
