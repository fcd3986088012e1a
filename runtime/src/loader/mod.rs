//! The handler cache: a file becomes a ready-to-instantiate [`Handler`] on its
//! first request, once, off the async worker threads, and follows the file
//! as it changes.
//!
//! Each file has a state: the newest version seen (size, times, inode) with
//! its compile, and the last version that loaded. The first request for a
//! version starts one compile task; every request for that version,
//! concurrent or later, awaits the same shared result, so the same bytes never
//! compile twice, and a failed compile is remembered until the file changes
//! instead of being retried on every request.
//!
//! Generations: a request holds an `Arc<Handler>` for its whole run, so
//! in-flight requests finish on the version they started with. A newer
//! version replaces the newest slot, so a slow compile of an old version can
//! never overwrite it. A version that fails to load (a broken edit, a file
//! caught mid-copy) never replaces a working one: requests keep getting the
//! last good version, and the failure shows on the status page.

mod compile;
mod component;
pub mod disk_cache;
mod rust_source;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::sync::Semaphore;

pub use compile::{CoreHandler, Handler, Provenance, REUSABLE_SECTION};
pub use disk_cache::DiskCache;
pub use rust_source::RustBuilder;

pub(crate) use compile::HandlerKind;

use crate::engine::WasmEngine;
use crate::error::LoadError;
use crate::stats::Stats;

pub(crate) use compile::error_text;

type LoadResult = Result<Arc<Handler>, LoadError>;

/// The identity of one version of a file on disk. The change time is in it
/// because a copy that keeps size and mtime (`cp -p`) still changes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
    changed: (i64, i64),
}

impl Version {
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: meta.ino(),
            changed: (meta.ctime(), meta.ctime_nsec()),
        }
    }
}

/// One version's load, shared by everyone who asks for that version.
struct Slot {
    version: Version,
    result: Shared<BoxFuture<'static, LoadResult>>,
}

/// What the loader knows about one file.
struct FileState {
    /// The newest version seen, loaded or still loading.
    newest: Arc<Slot>,
    /// The last version that loaded; served while a newer one is broken.
    good: Option<Arc<Handler>>,
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
    engine: Arc<WasmEngine>,
    disk_cache: Option<Arc<DiskCache>>,
    files: Mutex<HashMap<PathBuf, FileState>>,
    /// Compiles are CPU-bound: more at once than cores only adds latency to
    /// all of them and memory to the process.
    compile_permits: Arc<Semaphore>,
    stats: Arc<Stats>,
    /// Largest handler file loaded, in bytes.
    max_module_size: u64,
    /// Builds `.rs` source handlers, where the configuration allows them.
    rust: Option<Arc<RustBuilder>>,
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
            engine,
            disk_cache,
            files: Mutex::new(HashMap::new()),
            compile_permits: Arc::new(Semaphore::new(cores)),
            stats,
            max_module_size: crate::config::DEFAULT_MAX_MODULE_SIZE,
            rust: None,
        }
    }

    /// Builds `.rs` handlers with `builder` (without one, a `.rs` file fails
    /// to load).
    #[must_use]
    pub fn with_rust_builder(mut self, builder: Arc<RustBuilder>) -> Self {
        self.rust = Some(builder);
        self
    }

    /// Refuses handler files larger than `bytes` without reading them whole:
    /// a huge file must not cost a compile's worth of memory and CPU.
    #[must_use]
    pub fn with_max_module_size(mut self, bytes: u64) -> Self {
        self.max_module_size = bytes;
        self
    }

    /// The handler to run for `file`: its current version, loading it if this
    /// version has not been seen; the last good version if the current one
    /// does not load.
    pub async fn get(&self, file: &Path) -> LoadResult {
        let slot = self.newest_slot(file)?;
        let result = match slot.result.peek() {
            Some(ready) => ready.clone(),
            None => slot.result.clone().await,
        };
        let mut files = self.files.lock().unwrap();
        let Some(state) = files.get_mut(file) else {
            // Forgotten meanwhile (deleted): answer with what was loaded.
            return result;
        };
        match result {
            Ok(handler) => {
                // Only the newest version may become the good one: a slow
                // old compile finishing late must not replace a newer good.
                if Arc::ptr_eq(&state.newest, &slot) {
                    let replaced = state.good.replace(handler.clone());
                    // Every request for this version lands here; only the
                    // first replaces a different module. A file touched or
                    // copied over with the same bytes is not a new version.
                    if replaced.is_some_and(|old| {
                        old.provenance.content_hash != handler.provenance.content_hash
                    }) {
                        self.stats.reloaded();
                    }
                }
                Ok(handler)
            }
            Err(e) => state.good.clone().ok_or(e),
        }
    }

    /// Starts loading the file's current version if it has changed, without
    /// waiting: the watcher calls this so the next request finds it ready.
    pub fn refresh(&self, file: &Path) {
        let _ = self.newest_slot(file);
    }

    /// Forgets `path` and every file below it (it was deleted or renamed).
    /// Requests already running keep their handler.
    pub fn forget(&self, path: &Path) {
        self.files
            .lock()
            .unwrap()
            .retain(|file, _| !file.starts_with(path));
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
                let result = loader.get(&file).await;
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

    /// Every file the loader knows, for the status page.
    pub fn status(&self) -> Vec<HandlerStatus> {
        let files = self.files.lock().unwrap();
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

    /// The slot for the file's current version, starting its load if new.
    fn newest_slot(&self, file: &Path) -> Result<Arc<Slot>, LoadError> {
        let meta = std::fs::metadata(file).map_err(|e| LoadError::Read {
            path: file.to_path_buf(),
            reason: e.to_string(),
        })?;
        let version = Version::of(&meta);
        let mut files = self.files.lock().unwrap();
        if let Some(state) = files.get_mut(file) {
            if state.newest.version != version {
                state.newest = self.start_load(file, version);
            }
            return Ok(state.newest.clone());
        }
        let newest = self.start_load(file, version);
        files.insert(
            file.to_path_buf(),
            FileState {
                newest: newest.clone(),
                good: None,
            },
        );
        Ok(newest)
    }

    /// Starts the load as its own task, so it finishes (and is cached) even
    /// if every request waiting on it is cancelled.
    fn start_load(&self, file: &Path, version: Version) -> Arc<Slot> {
        let engine = self.engine.clone();
        let disk_cache = self.disk_cache.clone();
        let permits = self.compile_permits.clone();
        let stats = self.stats.clone();
        let max_module_size = self.max_module_size;
        let rust = self.rust.clone();
        let task_file = file.to_path_buf();
        let task = tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            tokio::task::spawn_blocking(move || {
                let tools = compile::Toolchain {
                    engine: engine.engine(),
                    linker: engine.linker(),
                    component_linker: engine.component_linker(),
                    disk_cache: disk_cache.as_deref(),
                    stats: &stats,
                    max_module_size,
                    rust: rust.as_deref(),
                };
                compile::load(&tools, &task_file).map(Arc::new)
            })
            .await
        });
        let file = file.to_path_buf();
        let result = async move {
            match task.await {
                Ok(Ok(result)) => result,
                Ok(Err(join)) | Err(join) => Err(LoadError::Compile {
                    path: file,
                    message: format!("the compiler failed: {join}"),
                }),
            }
        }
        .boxed()
        .shared();
        Arc::new(Slot { version, result })
    }
}
