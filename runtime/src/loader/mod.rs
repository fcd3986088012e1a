//! The handler cache: a file becomes a ready-to-instantiate [`Handler`] on its
//! first request (or as soon as the watcher reports it), once, off the async
//! worker threads, and follows the file as it changes.
//!
//! Each file has a state: the newest version seen (size, times, inode) with
//! its load, and the last version that loaded. The first sight of a version
//! starts one load task; every request for that version, concurrent or
//! later, awaits the same shared result, so the same bytes never compile
//! twice, and a failed load is remembered until the file changes instead of
//! being retried on every request.
//!
//! A load has three steps, all in its own task, so it finishes (and shows on
//! the status page and in the metrics) whether or not anyone waits for it:
//! 1. Settle: the version must stay the same for [`SETTLE_TIME`](crate::config::SETTLE_TIME), and no
//!    writer the watcher saw may still hold it open ([`OpenWrites`]). A
//!    `.wasm` cut at a section boundary is a valid module; this is what keeps
//!    a file caught mid-copy from serving its prefix. A version that changes
//!    meanwhile gives way to the newer one.
//! 2. Compile (or the disk cache), on a blocking thread, at most one per core.
//!    A component's imports and exports are read first, so one wasmlet cannot
//!    serve is refused in milliseconds instead of after its compile.
//! 3. Try: a core module is instantiated once, as a request would be (its
//!    policy's timeout and memory limit, its start function and `init`); a
//!    version that traps there, or runs past the timeout, is broken.
//!
//! Generations: a request holds an `Arc<Handler>` for its whole run, so
//! in-flight requests finish on the version they started with. Only the
//! newest version becomes the served one, so a slow load of an old version
//! can never overwrite it. A version that fails to load (a broken edit, a
//! trapping start function) never replaces a working one: requests keep
//! getting the last good version, and the failure shows on the status page.
//! While a new version settles, requests get the last good one; once it is
//! settled they wait for it, so the first request after a deploy sees it.

mod compile;
mod component;
mod component_world;
pub mod disk_cache;
mod load;
mod rust_source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::sync::Semaphore;

pub use crate::executor::{CoreHandler, Handler, Provenance, REUSABLE_SECTION, Tier};
pub use disk_cache::DiskCache;
pub use rust_source::RustBuilder;

use crate::config::Config;
use crate::engine::WasmEngine;
use crate::error::LoadError;
use crate::site::Site;
use crate::stats::Stats;
use crate::watcher::OpenWrites;
use crate::webroot::{Epoch, Lookup, Version};

type LoadResult = Result<Arc<Handler>, LoadError>;

/// One version's load, shared by everyone who asks for that version.
struct Slot {
    version: Version,
    /// Set once the version has settled and its compile began: from then
    /// on requests wait for it rather than get the previous version.
    settled: Arc<AtomicBool>,
    result: Shared<BoxFuture<'static, LoadResult>>,
    /// The same version optimised, once a baseline-tier load's background
    /// compile made it: served instead of `result`'s handler from then on.
    optimized: Arc<OnceLock<Arc<Handler>>>,
}

/// What the loader knows about one file.
struct FileState {
    /// The newest version seen, loaded or still loading.
    newest: Arc<Slot>,
    /// The last version that loaded; served while a newer one is broken.
    good: Option<Arc<Handler>>,
    /// The watcher's epoch in which `newest` was last checked against the
    /// disk: until it ends, nothing changed and a request needs no `stat`.
    checked: Option<u64>,
}

/// A handler file as the status page shows it.
#[derive(Debug, Clone)]
pub struct HandlerStatus {
    /// The handler file.
    pub file: PathBuf,
    /// The version being served, if any loaded.
    pub serving: Option<Provenance>,
    /// Whether the newest version is still loading.
    pub loading: bool,
    /// Why the newest version failed to load, if it did.
    pub error: Option<String>,
}

/// Compiles handlers on demand and caches them in memory (and on disk, with a
/// [`DiskCache`]).
pub struct Loader {
    /// Shared with the load tasks, which record their result themselves.
    inner: Arc<Inner>,
}

struct Inner {
    engine: Arc<WasmEngine>,
    disk_cache: Option<Arc<DiskCache>>,
    files: Mutex<HashMap<PathBuf, FileState>>,
    /// Compiles are CPU-bound: more at once than cores only adds latency to
    /// all of them and memory to the process.
    compile_permits: Arc<Semaphore>,
    /// The machine's cores: as many compile permits, and as many loads at
    /// once where files are loaded or looked up in bulk.
    cores: usize,
    stats: Arc<Stats>,
    /// Largest handler file loaded, in bytes.
    max_module_size: u64,
    /// Handler files a writer still holds open, as the watcher saw.
    open_writes: Arc<OpenWrites>,
    /// The web root's epoch: a version checked in the current one is
    /// current without asking the disk again.
    epoch: Arc<Epoch>,
    /// The configuration, for the limits a new version is tried under; no
    /// trial without it (`wasmlet compile` only fills the disk cache).
    site: Option<Arc<RwLock<Arc<Site>>>>,
    /// The server's settings, for the head and log limits of that trial.
    config: Option<Arc<Config>>,
    /// Builds `.rs` source handlers, where the configuration allows them.
    rust: Option<Arc<RustBuilder>>,
    /// First loads of large handlers may use the engine's baseline tier
    /// (a server's loader; `wasmlet compile` fills the cache with
    /// optimised code only).
    tiering: bool,
}

impl Loader {
    /// A loader that compiles with `engine`, keeps compiled code in
    /// `disk_cache` if given, and counts compiles, disk cache lookups and
    /// reloads in `stats`.
    pub fn new(
        engine: Arc<WasmEngine>,
        disk_cache: Option<Arc<DiskCache>>,
        stats: Arc<Stats>,
    ) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            inner: Arc::new(Inner {
                engine,
                disk_cache,
                files: Mutex::new(HashMap::new()),
                compile_permits: Arc::new(Semaphore::new(cores)),
                cores,
                stats,
                max_module_size: crate::config::DEFAULT_MAX_MODULE_SIZE,
                open_writes: Arc::default(),
                epoch: Arc::default(),
                site: None,
                config: None,
                rust: None,
                tiering: false,
            }),
        }
    }

    fn configure(&mut self) -> &mut Inner {
        Arc::get_mut(&mut self.inner).expect("a loader is configured before its first load")
    }

    /// Builds `.rs` handlers with `builder` (without one, a `.rs` file fails
    /// to load).
    #[must_use]
    pub fn with_rust_builder(mut self, builder: Arc<RustBuilder>) -> Self {
        self.configure().rust = Some(builder);
        self
    }

    /// Refuses handler files larger than `bytes` without reading them whole:
    /// a huge file must not cost a compile's worth of memory and CPU.
    #[must_use]
    pub fn with_max_module_size(mut self, bytes: u64) -> Self {
        self.configure().max_module_size = bytes;
        self
    }

    /// Compiles a large handler's first version with the engine's baseline
    /// tier (if it has one), serves it, and replaces it with Cranelift's
    /// code once that is made, the way a hot reload would.
    #[must_use]
    pub fn with_tiering(mut self) -> Self {
        self.configure().tiering = true;
        self
    }

    /// Holds back a new version while `writes` says a writer has it open.
    #[must_use]
    pub fn with_open_writes(mut self, writes: Arc<OpenWrites>) -> Self {
        self.configure().open_writes = writes;
        self
    }

    /// Trusts a file's version, once checked, for as long as `epoch` lasts.
    #[must_use]
    pub fn with_epoch(mut self, epoch: Arc<Epoch>) -> Self {
        self.configure().epoch = epoch;
        self
    }

    /// Tries each new core-module version once before it may serve, under
    /// the limits `site` gives its file and the server's `config`.
    #[must_use]
    pub fn with_trial(mut self, site: Arc<RwLock<Arc<Site>>>, config: &Config) -> Self {
        let inner = self.configure();
        inner.site = Some(site);
        inner.config = Some(Arc::new(config.clone()));
        self
    }

    /// The handler to run for `file`: its current version, loading it if this
    /// version has not been seen; the last good version while the current
    /// one settles, or if it does not load. Waits at most `wait` for a load:
    /// then the last good version, or [`LoadError::StillLoading`] if none
    /// (the load goes on).
    pub async fn get(&self, file: &Path, wait: Duration) -> LoadResult {
        // `Duration::MAX` (no bound) does not fit in an `Instant`.
        let deadline = tokio::time::Instant::now().checked_add(wait);
        loop {
            let slot = self.inner.newest_slot(file, true)?;
            let result = match slot.result.peek() {
                Some(ready) => ready.clone(),
                None => {
                    if !slot.settled.load(Ordering::Acquire)
                        && let Some(good) = self.inner.good(file)
                    {
                        return Ok(good);
                    }
                    let load = slot.result.clone();
                    let waited = match deadline {
                        Some(deadline) => tokio::time::timeout_at(deadline, load).await,
                        None => Ok(load.await),
                    };
                    match waited {
                        Ok(result) => result,
                        Err(_elapsed) => {
                            return self.inner.good(file).ok_or(LoadError::StillLoading {
                                path: file.to_path_buf(),
                            });
                        }
                    }
                }
            };
            return match result {
                Ok(handler) => Ok(slot.optimized.get().cloned().unwrap_or(handler)),
                // A newer version took its place: that is the one to wait for.
                Err(LoadError::Changed { .. }) => continue,
                Err(e) => self.inner.good(file).ok_or(e),
            };
        }
    }

    /// Starts loading the file's current version if it has changed, without
    /// waiting: the watcher calls this so the next request finds it ready.
    pub fn refresh(&self, file: &Path) {
        let _ = self.inner.newest_slot(file, false);
    }

    /// Forgets `path` and every file below it (it was deleted or renamed).
    /// Requests already running keep their handler.
    pub fn forget(&self, path: &Path) {
        self.inner
            .files
            .lock()
            .unwrap()
            .retain(|file, _| !file.starts_with(path));
    }

    /// Splits `files` into those whose compiled code the disk cache holds
    /// (first) and the rest, in order, reading each file (and parsing `.wat`
    /// text) to find its key, on one blocking thread per core.
    pub async fn split_by_disk_cache(&self, files: Vec<PathBuf>) -> (Vec<PathBuf>, Vec<PathBuf>) {
        if self.inner.disk_cache.is_none() {
            return (Vec::new(), files);
        }
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let tools = inner.toolchain(false);
            let chunk = files.len().div_ceil(inner.cores).max(1);
            let cached: Vec<bool> = std::thread::scope(|scope| {
                let parts: Vec<_> = files
                    .chunks(chunk)
                    .map(|part| {
                        let tools = &tools;
                        scope.spawn(move || {
                            part.iter()
                                .map(|file| compile::in_disk_cache(tools, file))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                parts
                    .into_iter()
                    .flat_map(|part| part.join().expect("a cache lookup never panics"))
                    .collect()
            });
            let (hits, misses): (Vec<_>, Vec<_>) = files
                .into_iter()
                .zip(cached)
                .partition(|(_, cached)| *cached);
            (
                hits.into_iter().map(|(file, _)| file).collect(),
                misses.into_iter().map(|(file, _)| file).collect(),
            )
        })
        .await
        .expect("the disk cache lookups never panic")
    }

    /// Loads every file in `files`, at most one compile per core at a time,
    /// calling `progress` as each finishes.
    pub async fn load_all(
        self: &Arc<Self>,
        files: Vec<PathBuf>,
        mut progress: impl FnMut(&Path, &LoadResult),
    ) -> Vec<(PathBuf, LoadResult)> {
        let mut tasks = tokio::task::JoinSet::new();
        for file in files {
            let loader = self.clone();
            tasks.spawn(async move {
                let result = loader.get(&file, Duration::MAX).await;
                (file, result)
            });
        }
        let mut results = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((file, result)) = joined {
                progress(&file, &result);
                results.push((file, result));
            }
        }
        results
    }

    /// Loads `files` beside the requests being served: one per core at a
    /// time, so a request whose handler is not loaded yet waits behind that
    /// many loads at most, not behind all of `files`.
    pub async fn load_gradually(
        self: &Arc<Self>,
        files: Vec<PathBuf>,
    ) -> Vec<(PathBuf, LoadResult)> {
        use futures_util::StreamExt;
        futures_util::stream::iter(files)
            .map(|file| async move {
                let result = self.get(&file, Duration::MAX).await;
                (file, result)
            })
            .buffer_unordered(self.inner.cores)
            .collect()
            .await
    }

    /// Every file the loader knows, for the status page.
    pub fn status(&self) -> Vec<HandlerStatus> {
        let files = self.inner.files.lock().unwrap();
        let mut all: Vec<HandlerStatus> = files
            .iter()
            .map(|(file, state)| {
                let newest = state.newest.result.peek();
                HandlerStatus {
                    file: file.clone(),
                    serving: state.good.as_ref().map(|h| h.provenance.clone()),
                    loading: newest.is_none(),
                    error: match newest {
                        Some(Err(e)) => Some(e.to_string()),
                        _ => None,
                    },
                }
            })
            .collect();
        all.sort_by(|a, b| a.file.cmp(&b.file));
        all
    }
}

impl Inner {
    /// The version being served for `file`, if one loaded.
    fn good(&self, file: &Path) -> Option<Arc<Handler>> {
        self.files
            .lock()
            .unwrap()
            .get(file)
            .and_then(|state| state.good.clone())
    }

    /// The slot for the file's current version, starting its load if new.
    /// A request (`request`) trusts the version checked in the current
    /// epoch; anything else looks at the disk.
    fn newest_slot(self: &Arc<Self>, file: &Path, request: bool) -> Result<Arc<Slot>, LoadError> {
        // Read before the disk is: a change from here on ends it.
        let epoch = self.epoch.current();
        if request
            && epoch.is_some()
            && let Some(state) = self.files.lock().unwrap().get(file)
            && state.checked == epoch
        {
            return Ok(state.newest.clone());
        }
        if request {
            self.stats.route_lookup(Lookup::Disk);
        }
        let version = current_version(file)?;
        let mut files = self.files.lock().unwrap();
        if let Some(state) = files.get_mut(file) {
            if state.newest.version != version {
                state.newest = self.start_load(file, version);
            }
            state.checked = epoch;
            return Ok(state.newest.clone());
        }
        let newest = self.start_load(file, version);
        files.insert(
            file.to_path_buf(),
            FileState {
                newest: newest.clone(),
                good: None,
                checked: epoch,
            },
        );
        Ok(newest)
    }

    /// Starts the load as its own task, so it finishes (and is recorded)
    /// even if every request waiting on it is cancelled, or none asked.
    fn start_load(self: &Arc<Self>, file: &Path, version: Version) -> Arc<Slot> {
        let settled = Arc::new(AtomicBool::new(false));
        let optimized = Arc::new(OnceLock::new());
        let task = tokio::spawn(self.clone().load(
            file.to_path_buf(),
            version,
            settled.clone(),
            optimized.clone(),
        ));
        let file = file.to_path_buf();
        let result = async move {
            task.await.unwrap_or_else(|join| {
                Err(LoadError::Compile {
                    path: file,
                    message: format!("the compiler failed: {join}"),
                })
            })
        }
        .boxed()
        .shared();
        // Polled now, not by the first request: the status page reads the
        // result with `peek`, which sees only a polled future's value.
        tokio::spawn(result.clone().map(drop));
        Arc::new(Slot {
            version,
            settled,
            result,
            optimized,
        })
    }
}

/// The version of `file` on disk now.
fn current_version(file: &Path) -> Result<Version, LoadError> {
    Version::read(file).map_err(|e| LoadError::Read {
        path: file.to_path_buf(),
        reason: e.to_string(),
    })
}
