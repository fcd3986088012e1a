//! What a server does to keep its cache directory small: a hit marks an
//! entry used, a `put` removes the entries it supersedes and evicts the
//! least recently used ones past the cap, a start removes the temporary
//! files a crash left; and the listing behind `wasmlet cache ls`. Every
//! removal is one `unlink`, safe while other servers use the directory (see
//! "Concurrency" in the [parent module](super)). The tests cover `prune`
//! and `clear` (`clean.rs`) too, on the same fixture.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::PoisonError;
use std::time::{Duration, Instant, SystemTime};

use super::clean::Removed;
use super::entry::{self, Header};
use super::{CacheKey, DiskCache, ENTRY_EXTENSION, EngineDigest, TEMP_PREFIX, TEMP_SUFFIX};
use crate::regular_file;

/// How long a server's view of the directory counts as current: within it
/// a `put` that stays under the cap trusts the view (its own writes added)
/// instead of scanning again. Other servers sharing the directory trim it
/// after their own writes, so the cap holds but for what they wrote in the
/// last second.
const RESCAN_INTERVAL: Duration = Duration::from_secs(1);

/// What a server knows of its cache directory between scans, so that a
/// `put` reads no header twice and usually scans nothing.
#[derive(Debug, Default)]
pub(super) struct Index {
    /// Each entry file (by path) this server has seen or written.
    entries: HashMap<OsString, Known>,
    /// Their bytes: at the last scan, plus this server's writes since.
    total: u64,
    /// When the directory was last scanned, if ever.
    scanned: Option<Instant>,
}

/// One entry as the index remembers it.
#[derive(Debug)]
struct Known {
    size: u64,
    /// The engine digest and source from its header; `None` if unreadable.
    header: Option<(EngineDigest, Option<PathBuf>)>,
}

impl Index {
    /// Removes the entries that `written` supersedes: the others from the
    /// same handler file and engine. Only a revert of the file could use
    /// them again, and the entry just written is newer than any of them.
    fn supersede(&mut self, written: &OsString) {
        let Some(Some((engine, Some(source)))) = self.entries.get(written).map(|k| &k.header)
        else {
            return;
        };
        let (engine, source) = (*engine, source.clone());
        let older: Vec<OsString> = self
            .entries
            .iter()
            .filter(|(name, known)| {
                *name != written
                    && known.header.as_ref().is_some_and(|(e, s)| {
                        *e == engine && s.as_deref() == Some(source.as_path())
                    })
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in older {
            if remove_entry(Path::new(&name))
                && let Some(known) = self.entries.remove(&name)
            {
                self.total -= known.size;
                tracing::debug!(
                    file = %source.display(),
                    entry = %Path::new(&name).display(),
                    "removed the compiled-code cache entry of an older version of the handler"
                );
            }
        }
    }
}

/// One entry file as the directory holds it.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The entry's file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// When a server last wrote it or loaded it (its modification time).
    pub last_used: SystemTime,
    /// What its header says, or why it cannot be read; `None` when not read.
    header: Option<Result<Header, String>>,
}

impl Entry {
    /// `module` or `component`, when the header could be read.
    pub fn kind(&self) -> Option<&'static str> {
        match self.header()?.kind {
            1 => Some("module"),
            2 => Some("component"),
            _ => None,
        }
    }

    /// The handler file it was compiled from, when recorded.
    pub fn source(&self) -> Option<&Path> {
        self.header()?.source.as_deref()
    }

    /// Why none of the engines with digests `engines` can use it, or `None`
    /// when one can.
    pub fn unusable(&self, engines: &[EngineDigest]) -> Option<String> {
        match &self.header {
            Some(Ok(header)) if engines.contains(&header.key.engine) => None,
            Some(Ok(_)) => Some("written by another wasmtime or engine configuration".to_owned()),
            Some(Err(why)) => Some(why.clone()),
            None => Some("not read".to_owned()),
        }
    }

    pub(super) fn header(&self) -> Option<&Header> {
        self.header.as_ref()?.as_ref().ok()
    }
}

impl DiskCache {
    /// Every entry file, oldest use first, each with its header read.
    pub fn entries(&self) -> Vec<Entry> {
        self.scan(true)
    }

    /// Removes the entries the one just `written` (its key, source and
    /// size) supersedes, then the least recently used entries until the
    /// rest fit the cap; never the entry just written. The directory is
    /// scanned again only when [`RESCAN_INTERVAL`] has passed since the last
    /// scan or this process's writes since then may have passed the cap: a
    /// scan reads every entry's metadata, too much to do for each of a
    /// thousand compiles in a row.
    pub(super) fn evict(&self, written: Option<(&CacheKey, &Path, u64)>) {
        let mut index = self.index.lock().unwrap_or_else(PoisonError::into_inner);
        let written = written.map(|(key, source, size)| {
            let name = self.entry_path(key).into_os_string();
            let known = Known {
                size,
                header: Some((key.engine, Some(source.to_owned()))),
            };
            index.total += size;
            if let Some(old) = index.entries.insert(name.clone(), known) {
                index.total -= old.size;
            }
            index.supersede(&name);
            name
        });
        let fresh = index
            .scanned
            .is_some_and(|at| at.elapsed() < RESCAN_INTERVAL);
        if written.is_some() && fresh && index.total <= self.max_size {
            return;
        }
        let mut entries = self.scan(false);
        index.entries = entries
            .iter()
            .map(|entry| {
                let name = entry.path.clone().into_os_string();
                let header = match index.entries.remove(&name) {
                    Some(known) => known.header,
                    None => entry::read_header(&entry.path)
                        .ok()
                        .map(|h| (h.key.engine, h.source)),
                };
                let size = entry.size;
                (name, Known { size, header })
            })
            .collect();
        if let Some(name) = &written {
            // Older versions another server wrote since the last scan.
            index.supersede(name);
            entries.retain(|e| index.entries.contains_key(e.path.as_os_str()));
        }
        let evicted = self.trim(&mut entries, written.map(PathBuf::from));
        index
            .entries
            .retain(|name, _| entries.iter().any(|e| e.path.as_os_str() == name));
        index.total = entries.iter().map(|e| e.size).sum();
        index.scanned = Some(Instant::now());
        if evicted.entries > 0 {
            tracing::info!(
                dir = %self.dir.display(),
                evicted = evicted.entries,
                bytes = evicted.bytes,
                max = self.max_size,
                "evicted the least recently used compiled-code cache entries (--cache-max-size)"
            );
        }
    }

    /// Removes entries from `entries` (oldest use first), least recently
    /// used first, until the rest take at most the cap; `keep` is never
    /// removed.
    pub(super) fn trim(&self, entries: &mut Vec<Entry>, keep: Option<PathBuf>) -> Removed {
        let mut total: u64 = entries.iter().map(|e| e.size).sum();
        let mut evicted = Removed::default();
        entries.retain(|e| {
            if total <= self.max_size || Some(&e.path) == keep.as_ref() || !remove_entry(&e.path) {
                return true;
            }
            total -= e.size;
            evicted.add(e.size);
            false
        });
        evicted
    }

    /// The entry files, oldest use first; with their headers when
    /// `headers`. Anything else in the directory is left out.
    pub(super) fn scan(&self, headers: bool) -> Vec<Entry> {
        let Ok(items) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut entries: Vec<Entry> = items
            .filter_map(Result::ok)
            .filter(|item| item.file_name().to_str().is_some_and(is_entry_name))
            .filter_map(|item| {
                // Not followed: a symlink is never an entry `put` wrote.
                let meta = item.metadata().ok()?;
                let path = item.path();
                Some(Entry {
                    header: headers.then(|| entry::read_header(&path)),
                    path,
                    size: meta.len(),
                    last_used: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                })
            })
            .collect();
        entries.sort_by_key(|e| e.last_used);
        entries
    }
}

/// Whether `name` is an entry's: 64 lowercase hex digits and `.cwasm`.
pub(super) fn is_entry_name(name: &str) -> bool {
    name.strip_suffix(ENTRY_EXTENSION)
        .and_then(|stem| stem.strip_suffix('.'))
        .is_some_and(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
}

/// Whether `name` is a temporary file's, as [`super::temp_file`] makes them.
pub(super) fn is_temporary_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

/// Records a hit: the entry's modification time becomes now. A failure
/// (a read-only cache, an entry another user owns) only costs its place in
/// the eviction order.
pub(super) fn mark_used(path: &Path) {
    let marked = regular_file::open(path)
        .map_err(|e| e.to_string())
        .and_then(|(file, _)| {
            file.set_modified(SystemTime::now())
                .map_err(|e| e.to_string())
        });
    if let Err(e) = marked {
        tracing::debug!(file = %path.display(), error = %e, "cannot mark a compiled-code cache entry as used");
    }
}

/// Removes the entry file at `path`; whether it is gone (also when another
/// server removed it first). Failures are logged.
pub(super) fn remove_entry(path: &Path) -> bool {
    match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            tracing::warn!(
                file = %path.display(),
                error = %e,
                "cannot remove a compiled-code cache entry"
            );
            false
        }
    }
}

/// Removes the temporary files in `dir` untouched for longer than
/// `older_than` (see "Leftover temporary files" in the parent module);
/// returns how many.
pub(super) fn remove_stale_temporaries(dir: &Path, older_than: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries.filter_map(Result::ok) {
        let is_temporary = entry.file_name().to_str().is_some_and(is_temporary_name);
        // `DirEntry::metadata` does not follow symlinks: only a regular
        // file this cache could have written is removed.
        let stale = entry.metadata().is_ok_and(|meta| {
            meta.is_file()
                && meta
                    .modified()
                    .ok()
                    .and_then(|at| now.duration_since(at).ok())
                    .is_some_and(|age| age > older_than)
        });
        if !(is_temporary && stale) {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                file = %entry.path().display(),
                error = %e,
                "cannot remove a temporary file left in the compiled-code cache"
            ),
        }
    }
    if removed > 0 {
        tracing::info!(
            dir = %dir.display(),
            removed,
            "removed temporary files a crashed write left in the compiled-code cache"
        );
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::super::{BUILD_DIR, ClearError};
    use super::*;
    use wasmtime::{Engine, Module};

    /// A cache and an engine to fill it with small, distinct modules.
    struct Fixture {
        _tmp: tempfile::TempDir,
        cache: DiskCache,
        engine: Engine,
    }

    impl Fixture {
        fn new(max_size: u64) -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let cache = DiskCache::open(tmp.path().join("cache"), max_size).unwrap();
            Self {
                _tmp: tmp,
                cache,
                engine: Engine::default(),
            }
        }

        /// Puts the module answering `n`, compiled from `source`, and dates
        /// its last use `age_s` seconds back; returns its entry's path.
        fn put(&self, n: i32, source: &str, age_s: u64) -> PathBuf {
            let wasm = wat::parse_str(format!(
                r#"(module (func (export "n") (result i32) i32.const {n}))"#
            ))
            .unwrap();
            let key = DiskCache::key(&self.engine, &wasm);
            let module = Module::new(&self.engine, &wasm).unwrap();
            self.cache.put(&key, &module, Path::new(source)).unwrap();
            let path = self.cache.entry_path(&key);
            age(&path, age_s);
            path
        }

        fn size_of_one(&self) -> u64 {
            let probe = Self::new(u64::MAX);
            let path = probe.put(0, "/www/probe.wat", 0);
            std::fs::metadata(path).unwrap().len()
        }

        fn digest(&self) -> EngineDigest {
            DiskCache::engine_digest(&self.engine)
        }
    }

    fn age(path: &Path, seconds: u64) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(SystemTime::now() - Duration::from_secs(seconds))
            .unwrap();
    }

    fn total(cache: &DiskCache) -> u64 {
        cache.entries().iter().map(|e| e.size).sum()
    }

    #[test]
    fn a_put_past_the_cap_evicts_the_least_recently_used_entry_and_a_hit_counts_as_a_use() {
        let one = Fixture::new(u64::MAX).size_of_one();
        // Room for two entries (they differ by a byte or so), not three.
        let f = Fixture::new(one * 5 / 2);
        let a = f.put(1, "/www/a.wat", 300);
        let b = f.put(2, "/www/b.wat", 200);
        // `a` was written first, but a hit makes it the most recently used.
        let wasm = wat::parse_str(r#"(module (func (export "n") (result i32) i32.const 1))"#);
        let key = DiskCache::key(&f.engine, &wasm.unwrap());
        assert!(f.cache.get::<Module>(&f.engine, &key).is_some());
        let c = f.put(3, "/www/c.wat", 0);
        assert!(a.exists(), "the entry just used was evicted");
        assert!(!b.exists(), "the least recently used entry was kept");
        assert!(c.exists(), "the entry just written was evicted");
        assert!(total(&f.cache) <= f.cache.max_size());
    }

    #[test]
    fn an_entry_larger_than_the_cap_is_not_written() {
        let f = Fixture::new(100);
        let wasm = wat::parse_str("(module)").unwrap();
        let key = DiskCache::key(&f.engine, &wasm);
        let module = Module::new(&f.engine, &wasm).unwrap();
        let err = f.cache.put(&key, &module, Path::new("/www/big.wat"));
        assert!(
            matches!(
                err,
                Err(super::super::CacheError::TooLarge { max: 100, .. })
            ),
            "{err:?}"
        );
        assert!(f.cache.entries().is_empty());
    }

    #[test]
    fn two_servers_writing_and_evicting_in_one_directory_leave_only_whole_entries_under_the_cap() {
        let one = Fixture::new(u64::MAX).size_of_one();
        let f = Fixture::new(one * 4);
        let other = DiskCache::open(f.cache.dir(), one * 4).unwrap();
        std::thread::scope(|scope| {
            for (cache, base) in [(&f.cache, 0), (&other, 1000)] {
                let engine = &f.engine;
                scope.spawn(move || {
                    for n in base..base + 40 {
                        let wasm = wat::parse_str(format!(
                            r#"(module (func (export "n") (result i32) i32.const {n}))"#
                        ))
                        .unwrap();
                        let key = DiskCache::key(engine, &wasm);
                        let module = Module::new(engine, &wasm).unwrap();
                        let source = format!("/www/h{n}.wat");
                        cache.put(&key, &module, Path::new(&source)).unwrap();
                        // Another server's eviction may have removed it
                        // already; what is there must load.
                        let _ = cache.get::<Module>(engine, &key);
                    }
                });
            }
        });
        let left = f.cache.entries();
        assert!(!left.is_empty());
        assert!(
            total(&f.cache) <= one * 4 + one,
            "{} bytes",
            total(&f.cache)
        );
        for entry in &left {
            assert_eq!(
                entry.unusable(&[f.digest()]),
                None,
                "{}",
                entry.path.display()
            );
            let bytes = std::fs::read(&entry.path).unwrap();
            let header = entry::read_header(&entry.path).unwrap();
            assert!(entry::verify(header.kind, "a core module", &header.key, &bytes).is_ok());
        }
        let temporaries = std::fs::read_dir(f.cache.dir())
            .unwrap()
            .filter(|e| is_temporary_name(e.as_ref().unwrap().file_name().to_str().unwrap()))
            .count();
        assert_eq!(temporaries, 0);
    }

    #[test]
    fn opening_evicts_down_to_a_smaller_cap() {
        let f = Fixture::new(u64::MAX);
        let old = f.put(1, "/www/a.wat", 300);
        let new = f.put(2, "/www/b.wat", 0);
        let size = std::fs::metadata(&new).unwrap().len();
        let reopened = DiskCache::open(f.cache.dir(), size + 1).unwrap();
        assert!(!old.exists() && new.exists());
        assert_eq!(total(&reopened), size);
    }

    #[test]
    fn a_put_removes_the_older_entries_of_the_same_handler_file_only() {
        let f = Fixture::new(u64::MAX);
        let v1 = f.put(1, "/www/a.wat", 300);
        let v2 = f.put(2, "/www/a.wat", 200);
        let other = f.put(3, "/www/b.wat", 100);
        let v3 = f.put(4, "/www/a.wat", 0);
        assert!(!v1.exists() && !v2.exists(), "older versions were kept");
        assert!(other.exists() && v3.exists());
    }

    #[test]
    fn prune_removes_unreadable_entries_and_those_of_another_engine() {
        let f = Fixture::new(u64::MAX);
        let unreadable = f.put(1, "/www/a.wat", 0);
        let mut old = std::fs::read(&unreadable).unwrap();
        // Format version 2, as an older wasmlet wrote.
        old[8..12].copy_from_slice(&2u32.to_le_bytes());
        std::fs::write(&unreadable, old).unwrap();
        let foreign = f.put(2, "/www/b.wat", 0);
        let mut other_engine = f.digest();
        other_engine[0] ^= 1;
        let report = f.cache.prune(&[other_engine]);
        assert_eq!(report.unreadable.entries, 1, "{report:?}");
        assert_eq!(report.other_engine.entries, 1, "{report:?}");
        assert_eq!(report.kept, Removed::default());
        assert!(!unreadable.exists() && !foreign.exists());
    }

    #[test]
    fn prune_removes_superseded_entries_then_the_least_recently_used_past_the_cap() {
        let f = Fixture::new(u64::MAX);
        let one = f.size_of_one();
        // An older version of `b` that `put` never saw: another server wrote
        // it, or it came back from a revert.
        let elsewhere = Fixture::new(u64::MAX);
        let written = elsewhere.put(2, "/www/b.wat", 0);
        let newer_b = f.put(3, "/www/b.wat", 100);
        let superseded = f.cache.dir().join(written.file_name().unwrap());
        std::fs::copy(&written, &superseded).unwrap();
        age(&superseded, 400);
        let lru = f.put(4, "/www/c.wat", 300);
        let kept = f.put(5, "/www/d.wat", 0);
        let cache = DiskCache::existing(f.cache.dir(), one * 5 / 2).unwrap();
        let report = cache.prune(&[f.digest()]);
        assert_eq!(report.superseded.entries, 1, "{report:?}");
        assert_eq!(report.over_cap.entries, 1, "{report:?}");
        assert_eq!(report.kept.entries, 2, "{report:?}");
        assert!(!superseded.exists() && !lru.exists());
        assert!(newer_b.exists() && kept.exists());
    }

    #[test]
    fn clear_removes_entries_temporaries_and_builds_and_refuses_a_directory_with_anything_else() {
        let f = Fixture::new(u64::MAX);
        let entry = f.put(1, "/www/a.wat", 0);
        let dir = f.cache.dir().to_owned();
        std::fs::write(dir.join(".abc123.tmp"), "partial").unwrap();
        std::fs::create_dir_all(dir.join(BUILD_DIR).join("out")).unwrap();
        std::fs::write(dir.join(BUILD_DIR).join("out/x.wasm"), "built").unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        let err = f.cache.clear().unwrap_err();
        assert!(
            matches!(&err, ClearError::NotACache { found, .. } if found == Path::new("notes.txt")),
            "{err}"
        );
        assert!(
            entry.exists() && dir.join(BUILD_DIR).exists(),
            "removed before refusing"
        );
        std::fs::remove_file(dir.join("notes.txt")).unwrap();
        let removed = f.cache.clear().unwrap();
        assert_eq!(removed.entries, 3);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn only_built_and_idle_crates_and_other_sdk_versions_are_orphans() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let key = "0123456789abcdef".repeat(4);
        for sub in [
            "sdk-0.0.1",
            "crates/h0123456789abcdef",
            "crates/hfedcba9876543210",
            "out",
        ] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::create_dir_all(dir.join(format!("sdk-{}", env!("CARGO_PKG_VERSION")))).unwrap();
        std::fs::write(dir.join("out").join(format!("{key}.wasm")), "").unwrap();
        let orphans = |age| crate::loader::rust_source::orphans(dir, age);
        // Just built: another server's build may still be finishing.
        assert_eq!(orphans(Duration::from_secs(600)), [dir.join("sdk-0.0.1")]);
        let mut found = orphans(Duration::ZERO);
        found.sort();
        assert_eq!(
            found,
            [dir.join("crates/h0123456789abcdef"), dir.join("sdk-0.0.1")]
        );
    }
}
