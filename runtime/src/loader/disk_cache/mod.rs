//! The on-disk cache of compiled handler code, so that a restarted server
//! serves a handler's first request without compiling it. It holds both
//! kinds of handler: core modules and components ([`Artifact`]).
//!
//! # Key
//!
//! An entry is keyed by SHA-256 over two things: the engine digest, a
//! SHA-256 of everything that makes compiled code incompatible between
//! engines, as wasmtime itself hashes it in
//! [`Engine::precompile_compatibility_hash`] (wasmtime's version, the compiler
//! settings, the target and its CPU features, the enabled proposals and
//! tunables), and the module's WebAssembly bytes. A new wasmtime, a changed
//! engine setting, a different CPU or a changed module thus each look up a
//! different entry instead of finding a stale one. A module and a component
//! never share a key (their bytes differ from the header on), and the entry
//! names its kind besides.
//!
//! # Entry format
//!
//! Each entry is one file, `<key as 64 hex digits>.cwasm`, holding a fixed
//! header, the path of the handler file it was compiled from, and the bytes
//! of [`Module::serialize`](wasmtime::Module::serialize) or [`Component::serialize`](wasmtime::component::Component::serialize). Integers are little
//! endian.
//!
//! | offset  | size | field                                               |
//! | ------- | ---- | --------------------------------------------------- |
//! | 0       | 8    | magic, `b"wasmlet\0"`                               |
//! | 8       | 4    | format version, currently 3                         |
//! | 12      | 1    | kind: 1 a core module, 2 a component                |
//! | 13      | 32   | the key the entry was written for                   |
//! | 45      | 32   | the engine digest that went into the key            |
//! | 77      | 2    | source length `n` (0: not recorded)                 |
//! | 79      | 8    | payload length in bytes                             |
//! | 87      | 32   | SHA-256 of the source and the payload               |
//! | 119     | `n`  | source: the handler file's path, as the OS spells it |
//! | 119 + n | …    | payload: the output of `serialize` for its kind     |
//!
//! The engine digest and the source are what `wasmlet cache ls` shows and
//! what pruning and eviction go by; loading never trusts them.
//!
//! # Why loading an entry is safe
//!
//! [`Module::deserialize`](wasmtime::Module::deserialize) (and [`Component::deserialize`](wasmtime::component::Component::deserialize)) is `unsafe`
//! because it trusts its input to be machine code wasmtime produced: handed
//! arbitrary bytes it would run them. So nothing reaches it unchecked. The
//! header must have the right magic and format version, the kind being
//! looked up, name the key being looked up (a valid entry copied or renamed
//! to another key's name would otherwise load the wrong module), and
//! announce exactly as many payload bytes as the file holds; the source and
//! payload must hash to the SHA-256 in the header. Together these prove the
//! payload is the unmodified output of `serialize` that [`DiskCache::put`]
//! wrote for this module or component, not a truncated, torn or bit-flipped
//! file. Whether that output suits the engine at hand, wasmtime checks
//! itself and reports as an error.
//!
//! The checksum guards against accidents, not attackers: whoever can write to
//! the directory can write an entry with a valid checksum. That is why the
//! directory is created private to the user (mode `0700`) and why opening one
//! that others can write to logs a warning.
//!
//! Any entry that fails a check is a miss: it is removed, a warning names the
//! file and the reason, and the caller compiles the module again and puts the
//! fresh result back. A bad entry never stops a handler from loading. That
//! includes an entry that is not a regular file (a FIFO, whose open would
//! wait for a writer for ever, is opened non-blocking and refused by the
//! opened descriptor's type) or that is larger than
//! [`MAX_CACHE_ENTRY_SIZE`] (refused by
//! its size before it is read, so a huge file cannot exhaust memory); `put`
//! never writes one that large.
//!
//! # Concurrency
//!
//! [`DiskCache::put`] writes a temporary file in the same directory and
//! renames it over the entry's name, so a reader, a crash or another server
//! sharing the directory never sees a half-written entry under that name.
//! Two writers of the same key write the same bytes, so whichever rename lands
//! last wins harmlessly. Removing an entry is one `unlink`: a server reading
//! it keeps reading the whole file, and the next lookup is a miss that
//! compiles and puts it back. So several servers on one directory can evict,
//! prune and write at once without a lock and without corrupting anything;
//! the worst a race costs is one compile. Everything here blocks; call it off
//! the async workers.
//!
//! # Size cap and eviction
//!
//! The entries together stay under the cache's cap (`--cache-max-size`).
//! "Last used" is an entry's modification time: `put` sets it by writing,
//! and a hit sets it to now. A time on the file itself, rather than a shared
//! index file, needs no lock and cannot be torn or go stale when several
//! servers share the directory, and costs one `futimens` (about 8 µs) per
//! hit; a hit happens once per handler version and process, not per
//! request. (Access times are no substitute: most file systems are mounted
//! `relatime` or `noatime`.) When a server opens the cache, and after a
//! `put`, the least recently used entries are removed until the rest fit
//! (`upkeep.rs`). A `put` also removes the entries it supersedes: older
//! entries compiled from the same handler file by the same engine, which
//! only a revert of the file could use again.
//!
//! Each server keeps its own view of the directory (sizes and headers) and
//! scans it again after a `put` only when a second has passed since the
//! last scan or its own writes may have passed the cap: scanning for each
//! of a thousand compiles in a row made `wasmlet compile` five times
//! slower. Other servers trim after their own writes, so the cap holds but
//! for what they wrote within the last second.

//! # Leftover temporary files
//!
//! A crash (or a kill) between creating a temporary file and renaming it
//! leaves `.<random>.tmp` behind; nothing reads it, but nothing else would
//! ever remove it either. [`DiskCache::open`] removes those whose last
//! modification is older than
//! [`STALE_CACHE_TEMP_AGE`] (ten
//! minutes). An age, not a lock or a process id: several servers, even on
//! several machines over a network file system, may share the directory, and
//! one of them may be writing a temporary file right now. A write lasts
//! seconds and keeps the file's modification time fresh while it does, so
//! only a file no one has touched for minutes is removed; a pid would not
//! tell a live writer on another machine from a dead one, and a lock file
//! would itself be left behind by a crash.

mod clean;
mod entry;
mod key;
mod upkeep;

use std::fmt;
use std::fs::DirBuilder;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use wasmtime::Engine;

use crate::config::{MAX_CACHE_ENTRY_SIZE, STALE_CACHE_TEMP_AGE};
use crate::regular_file::{self, OpenError};
pub use clean::{ClearError, PruneReport, Removed};
pub use entry::Artifact;
use entry::load;
pub use key::{CacheKey, EngineDigest};
pub use upkeep::Entry;

/// Entry files end in this; temporary files do not, so a reader never opens
/// one.
const ENTRY_EXTENSION: &str = "cwasm";

pub use crate::config::default_cache_dir as default_dir;

/// The directory below the cache where `.rs` source handlers are built
/// ([`RustBuilder`](super::RustBuilder)).
pub const BUILD_DIR: &str = "rust";

/// Why the cache could not be opened or an entry could not be written.
/// Reading never fails: a bad or unreadable entry is a miss.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache directory could not be created, is not a directory, or
    /// cannot be written to.
    #[error("cannot use {} as the compiled-code cache directory: {source}", path.display())]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Wasmtime could not serialize the module or component.
    #[error("cannot serialize compiled code for {}: {message}", path.display())]
    Serialize {
        /// The entry that was to be written.
        path: PathBuf,
        /// Wasmtime's message.
        message: String,
    },
    /// The compiled code is larger than an entry may be.
    #[error(
        "not caching the compiled code for {}: it is {size} bytes, more than the \
         {max}-byte limit for a cache entry (the smaller of --cache-max-size and 1GiB); \
         the handler is compiled again at each start",
        path.display()
    )]
    TooLarge {
        /// The entry that was to be written.
        path: PathBuf,
        /// The payload's size.
        size: u64,
        /// The cap, or [`MAX_CACHE_ENTRY_SIZE`] if smaller.
        max: u64,
    },
    /// Writing or renaming the entry failed.
    #[error("cannot write the compiled-code cache entry {}: {source}", path.display())]
    Write {
        /// The entry that was to be written.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A directory of compiled modules and components that outlives the
/// process.
#[derive(Debug)]
pub struct DiskCache {
    /// Holds only entries, the temporary files they are written through, and
    /// [`BUILD_DIR`].
    dir: PathBuf,
    /// Most bytes the entries may take together.
    max_size: u64,
    /// This server's view of the directory, for eviction.
    index: Mutex<upkeep::Index>,
}

impl DiskCache {
    /// Opens the cache in `dir` for a server, creating it (and any missing
    /// parents) with mode `0700`, and fails unless a file can be created in
    /// it. An existing directory is used as it is, with a warning if its
    /// group or others can write to it. Removes temporary files a crash left
    /// and evicts entries past `max_size` bytes.
    pub fn open(dir: impl Into<PathBuf>, max_size: u64) -> Result<Self, CacheError> {
        let dir = dir.into();
        let dir_error = |source| CacheError::Dir {
            path: dir.clone(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| match std::fs::metadata(&dir) {
                // `mkdir` says only "File exists".
                Ok(meta) if !meta.is_dir() => dir_error(std::io::ErrorKind::NotADirectory.into()),
                _ => dir_error(e),
            })?;
        let mode = std::fs::metadata(&dir)
            .map_err(dir_error)?
            .permissions()
            .mode();
        // Warned about rather than changed: the permissions may be someone's
        // deliberate choice, and the entries still work.
        if mode & 0o022 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                mode = %format_args!("{:o}", mode & 0o777),
                "others can write to the compiled-code cache directory, and so make wasmlet \
                 run code of their choosing; make it private with `chmod 700`"
            );
        }
        // A read-only directory (or file system) would otherwise fail every
        // `put` later, one warning per compile.
        temp_file(&dir).map_err(dir_error)?;
        let cache = Self::at(dir, max_size);
        upkeep::remove_stale_temporaries(&cache.dir, STALE_CACHE_TEMP_AGE);
        cache.evict(None);
        Ok(cache)
    }

    /// The cache in `dir` as it is, for inspecting and cleaning it: nothing
    /// is created or removed. Fails unless `dir` is a directory.
    pub fn existing(dir: impl Into<PathBuf>, max_size: u64) -> Result<Self, CacheError> {
        let dir = dir.into();
        match std::fs::metadata(&dir) {
            Ok(meta) if meta.is_dir() => Ok(Self::at(dir, max_size)),
            Ok(_) => Err(CacheError::Dir {
                path: dir,
                source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
            }),
            Err(source) => Err(CacheError::Dir { path: dir, source }),
        }
    }

    fn at(dir: PathBuf, max_size: u64) -> Self {
        Self {
            dir,
            max_size,
            index: Mutex::default(),
        }
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Most bytes the entries may take together.
    pub fn max_size(&self) -> u64 {
        self.max_size
    }

    /// Whether an entry for `key` is there, without reading it: what
    /// `--precompile` asks to leave the cached handlers until after it
    /// accepts. A damaged entry counts; the load that reads it compiles
    /// again.
    pub fn contains(&self, key: &CacheKey) -> bool {
        self.entry_path(key).is_file()
    }

    /// The module or component stored under `key`, loaded into `engine`, or
    /// `None` on a miss. A hit counts as a use for eviction. An entry that is
    /// corrupt, truncated, from another format version, of the other kind or
    /// rejected by wasmtime is removed, with a warning, and is a miss.
    pub fn get<A: Artifact>(&self, engine: &Engine, key: &CacheKey) -> Option<A> {
        let path = self.entry_path(key);
        let bytes = match regular_file::read_bounded(&path, MAX_CACHE_ENTRY_SIZE) {
            Ok(bytes) => bytes,
            Err(e) if e.is_not_found() => return None,
            Err(e @ (OpenError::NotRegular(_) | OpenError::TooLarge { .. })) => {
                self.discard(&path, &e);
                return None;
            }
            Err(e) => {
                // Not removed: the entry may be fine and the fault elsewhere
                // (permissions, a full file table), and removing would likely
                // fail for the same reason.
                tracing::warn!(
                    file = %path.display(),
                    error = %e,
                    "cannot read a compiled-code cache entry; compiling instead"
                );
                return None;
            }
        };
        match load(engine, key, &bytes) {
            Ok(artifact) => {
                upkeep::mark_used(&path);
                Some(artifact)
            }
            Err(why) => {
                self.discard(&path, &why);
                None
            }
        }
    }

    /// Removes the bad entry at `path`, saying why, so the fresh compile's
    /// `put` finds its name free.
    fn discard(&self, path: &Path, why: &dyn fmt::Display) {
        tracing::warn!(
            file = %path.display(),
            reason = %why,
            "discarding a bad compiled-code cache entry; compiling instead"
        );
        // A concurrent `put` may have just renamed a good entry into place,
        // which this removes; that only costs a compile later.
        upkeep::remove_entry(path);
    }

    /// Stores the compiled code of `artifact` (a module or a component)
    /// under `key`, replacing any entry there, and records `source`, the
    /// handler file it was compiled from. Atomic: the entry's file name
    /// holds either the old entry or the complete new one. Then removes the
    /// entries this one supersedes and evicts the least recently used ones
    /// past the cap.
    pub fn put<A: Artifact>(
        &self,
        key: &CacheKey,
        artifact: &A,
        source: &Path,
    ) -> Result<(), CacheError> {
        let path = self.entry_path(key);
        let payload = artifact.serialize().map_err(|e| CacheError::Serialize {
            path: path.clone(),
            message: format!("{e:#}"),
        })?;
        let header = entry::header(A::KIND, key, source, &payload);
        let size = (header.len() + payload.len()) as u64;
        let max = self.max_size.min(MAX_CACHE_ENTRY_SIZE);
        if size > max {
            return Err(CacheError::TooLarge { path, size, max });
        }
        let write_error = |source| CacheError::Write {
            path: path.clone(),
            source,
        };
        let mut file = temp_file(&self.dir).map_err(write_error)?;
        file.write_all(&header)
            .and_then(|()| file.write_all(&payload))
            .map_err(write_error)?;
        // No fsync: if a crash loses the data but keeps the rename, the entry
        // fails its checksum on the next read and is rebuilt, so durability
        // is not worth a disk flush per compile.
        file.persist(&path).map_err(|e| write_error(e.error))?;
        self.evict(Some((key, source, size)));
        Ok(())
    }

    fn entry_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{key}.{ENTRY_EXTENSION}"))
    }
}

/// The start of a temporary file's name: hidden, so never served even from a
/// misplaced cache.
const TEMP_PREFIX: &str = ".";
/// The end of a temporary file's name: not `.cwasm`, so never read as an entry.
const TEMP_SUFFIX: &str = ".tmp";

/// A new temporary file in `dir`, removed when dropped unless persisted. In
/// the entries' directory, so the rename stays on one file system and is
/// atomic. The name does not end in `.cwasm`, so one left by a crash is
/// never read as an entry.
fn temp_file(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
}

#[cfg(test)]
mod tests {
    use super::entry::{FORMAT_VERSION, HEADER_LEN, Invalid};
    use super::*;
    use std::time::{Duration, SystemTime};
    use wasmtime::Module;
    use wasmtime::component::Component;
    use wasmtime::{Config, OptLevel, Store};

    /// A cap no test reaches.
    const UNCAPPED: u64 = u64::MAX;

    /// The handler file entries are recorded as compiled from.
    const SOURCE: &str = "/srv/www/answer.wat";

    const WAT: &str = r#"(module (func (export "answer") (result i32) i32.const 42))"#;

    fn engine_with(configure: impl FnOnce(&mut Config)) -> Engine {
        let mut config = Config::new();
        configure(&mut config);
        Engine::new(&config).unwrap()
    }

    fn wasm() -> Vec<u8> {
        wat::parse_str(WAT).unwrap()
    }

    /// A cache in a fresh temporary directory, with one entry for `WAT`.
    struct Fixture {
        _tmp: tempfile::TempDir,
        cache: DiskCache,
        engine: Engine,
        key: CacheKey,
    }

    impl Fixture {
        fn new() -> Self {
            let tmp = tempfile::tempdir().unwrap();
            let cache = DiskCache::open(tmp.path().join("cache"), UNCAPPED).unwrap();
            let engine = Engine::default();
            let wasm = wasm();
            let key = DiskCache::key(&engine, &wasm);
            let module = Module::new(&engine, &wasm).unwrap();
            cache.put(&key, &module, Path::new(SOURCE)).unwrap();
            Self {
                _tmp: tmp,
                cache,
                engine,
                key,
            }
        }

        fn entry(&self) -> PathBuf {
            self.cache.entry_path(&self.key)
        }

        fn rewrite(&self, change: impl FnOnce(&mut Vec<u8>)) {
            let mut bytes = std::fs::read(self.entry()).unwrap();
            change(&mut bytes);
            std::fs::write(self.entry(), bytes).unwrap();
        }

        /// Checks the entry is discarded for the reason `expected` accepts,
        /// then that `get` misses and removes it.
        fn assert_discarded(&self, expected: fn(&Invalid) -> bool) {
            let bytes = std::fs::read(self.entry()).unwrap();
            match load::<Module>(&self.engine, &self.key, &bytes) {
                Ok(_) => panic!("the bad entry loaded"),
                Err(why) => assert!(expected(&why), "discarded for another reason: {why}"),
            }
            assert!(self.cache.get::<Module>(&self.engine, &self.key).is_none());
            assert!(!self.entry().exists(), "the bad entry was not removed");
        }
    }

    fn answer(engine: &Engine, module: &Module) -> i32 {
        let mut store = Store::new(engine, ());
        let instance = wasmtime::Instance::new(&mut store, module, &[]).unwrap();
        let answer = instance
            .get_typed_func::<(), i32>(&mut store, "answer")
            .unwrap();
        answer.call(&mut store, ()).unwrap()
    }

    #[test]
    fn a_module_put_in_the_cache_comes_back_from_get_and_runs() {
        let f = Fixture::new();
        let module = f.cache.get(&f.engine, &f.key).expect("a hit");
        assert_eq!(answer(&f.engine, &module), 42);
    }

    #[test]
    fn a_key_that_was_never_put_is_a_miss() {
        let f = Fixture::new();
        let other = DiskCache::key(&f.engine, b"\0asm\x01\0\0\0");
        assert!(f.cache.get::<Module>(&f.engine, &other).is_none());
        assert!(f.entry().exists());
    }

    #[test]
    fn a_second_cache_on_the_same_directory_serves_earlier_entries_after_a_restart() {
        let f = Fixture::new();
        let reopened = DiskCache::open(f.cache.dir(), UNCAPPED).unwrap();
        // A restart builds a new engine; only its configuration carries over.
        let engine = Engine::default();
        let key = DiskCache::key(&engine, &wasm());
        assert_eq!(key, f.key);
        let module = reopened.get(&engine, &key).expect("a hit");
        assert_eq!(answer(&engine, &module), 42);
    }

    #[test]
    fn a_different_engine_configuration_or_module_gives_a_different_key() {
        let f = Fixture::new();
        let wasm = wasm();
        let variants = [
            engine_with(|c| {
                c.cranelift_opt_level(OptLevel::None);
            }),
            engine_with(|c| {
                c.consume_fuel(true);
            }),
            engine_with(|c| {
                c.epoch_interruption(true);
            }),
        ];
        for engine in &variants {
            assert_ne!(DiskCache::key(engine, &wasm), f.key);
        }
        let other_module = wat::parse_str("(module)").unwrap();
        assert_ne!(DiskCache::key(&f.engine, &other_module), f.key);
    }

    #[test]
    fn an_entry_is_named_by_its_key_in_hex_and_nothing_else_is_left_behind() {
        let f = Fixture::new();
        let hex = f.key.to_string();
        assert_eq!(hex.len(), 64);
        assert!(
            hex.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        let names: Vec<_> = std::fs::read_dir(f.cache.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from(format!("{hex}.cwasm"))]);
    }

    #[test]
    fn a_corrupted_payload_byte_is_a_miss_and_the_entry_is_removed() {
        let f = Fixture::new();
        f.rewrite(|bytes| {
            let middle = HEADER_LEN + SOURCE.len() + (bytes.len() - HEADER_LEN) / 2;
            bytes[middle] ^= 0x01;
        });
        f.assert_discarded(|why| matches!(why, Invalid::Checksum));
    }

    #[test]
    fn a_truncated_entry_is_a_miss_and_is_removed() {
        let short: fn(&Invalid) -> bool = |why| matches!(why, Invalid::ShortHeader(_));
        let length: fn(&Invalid) -> bool = |why| matches!(why, Invalid::Length { .. });
        let entry_len = {
            let f = Fixture::new();
            std::fs::read(f.entry()).unwrap().len()
        };
        let kept_bytes = [
            (0, short),
            (10, short),
            (HEADER_LEN, short),
            (HEADER_LEN + SOURCE.len() - 1, short),
            (HEADER_LEN + SOURCE.len(), length),
            (HEADER_LEN + SOURCE.len() + 1, length),
            (entry_len - 1, length),
        ];
        for (keep, expected) in kept_bytes {
            let f = Fixture::new();
            f.rewrite(|bytes| bytes.truncate(keep));
            f.assert_discarded(expected);
        }
    }

    #[test]
    fn trailing_bytes_after_the_payload_are_a_miss() {
        let f = Fixture::new();
        f.rewrite(|bytes| bytes.push(0));
        f.assert_discarded(|why| matches!(why, Invalid::Length { .. }));
    }

    #[test]
    fn a_wrong_magic_number_is_a_miss() {
        let f = Fixture::new();
        f.rewrite(|bytes| bytes[0] = b'W');
        f.assert_discarded(|why| matches!(why, Invalid::Magic));
    }

    #[test]
    fn another_format_version_is_a_miss() {
        let f = Fixture::new();
        f.rewrite(|bytes| bytes[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes()));
        f.assert_discarded(|why| matches!(why, Invalid::Version(v) if *v == FORMAT_VERSION + 1));
    }

    #[test]
    fn a_valid_entry_under_another_keys_name_is_a_miss() {
        let f = Fixture::new();
        let other = DiskCache::key(&f.engine, &wat::parse_str("(module)").unwrap());
        std::fs::rename(f.entry(), f.cache.entry_path(&other)).unwrap();
        let bytes = std::fs::read(f.cache.entry_path(&other)).unwrap();
        assert!(matches!(
            load::<Module>(&f.engine, &other, &bytes),
            Err(Invalid::Key(k)) if k == f.key
        ));
        assert!(f.cache.get::<Module>(&f.engine, &other).is_none());
        assert!(!f.cache.entry_path(&other).exists());
    }

    #[test]
    fn code_compiled_by_an_incompatible_engine_is_rejected_by_wasmtime_and_is_a_miss() {
        let f = Fixture::new();
        let fuel = engine_with(|c| {
            c.consume_fuel(true);
        });
        let module = Module::new(&fuel, wasm()).unwrap();
        // Only a bug could store it under the default engine's key; wasmtime
        // must still refuse it.
        f.cache.put(&f.key, &module, Path::new(SOURCE)).unwrap();
        f.assert_discarded(|why| matches!(why, Invalid::Rejected(_)));
    }

    /// A component that exports `answer`, lifted from a core function.
    const COMPONENT_WAT: &str = r#"(component
        (core module $m (func (export "answer") (result i32) i32.const 42))
        (core instance $i (instantiate $m))
        (func (export "answer") (result u32) (canon lift (core func $i "answer"))))"#;

    #[test]
    fn a_component_put_in_the_cache_comes_back_from_get_and_runs() {
        let f = Fixture::new();
        let wasm = wat::parse_str(COMPONENT_WAT).unwrap();
        let key = DiskCache::key(&f.engine, &wasm);
        assert_ne!(key, f.key);
        f.cache
            .put(
                &key,
                &Component::new(&f.engine, &wasm).unwrap(),
                Path::new(SOURCE),
            )
            .unwrap();
        let component: Component = f.cache.get(&f.engine, &key).expect("a hit");
        let mut store = Store::new(&f.engine, ());
        let linker = wasmtime::component::Linker::new(&f.engine);
        let instance = linker.instantiate(&mut store, &component).unwrap();
        let answer = instance
            .get_typed_func::<(), (u32,)>(&mut store, "answer")
            .unwrap();
        assert_eq!(answer.call(&mut store, ()).unwrap(), (42,));
    }

    #[test]
    fn an_entry_of_the_other_kind_is_a_miss_naming_both_kinds() {
        let f = Fixture::new();
        let bytes = std::fs::read(f.entry()).unwrap();
        let why = match load::<Component>(&f.engine, &f.key, &bytes) {
            Ok(_) => panic!("a module's entry loaded as a component"),
            Err(why) => why,
        };
        assert!(matches!(why, Invalid::Kind { .. }), "{why}");
        assert_eq!(
            why.to_string(),
            "the entry holds a core module, not a component"
        );
        assert!(f.cache.get::<Component>(&f.engine, &f.key).is_none());
        assert!(!f.entry().exists(), "the entry of the other kind was kept");
    }

    #[test]
    fn a_fifo_in_place_of_an_entry_is_a_miss_without_blocking_and_is_removed() {
        let f = Fixture::new();
        std::fs::remove_file(f.entry()).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(f.entry())
            .status()
            .unwrap();
        assert!(status.success());
        assert!(f.cache.get::<Module>(&f.engine, &f.key).is_none());
        assert!(!f.entry().exists(), "the FIFO was kept");
    }

    #[test]
    fn an_entry_past_the_size_limit_is_a_miss_without_being_read() {
        let f = Fixture::new();
        // Sparse: no disk space used, and reading it would take 1 GiB of memory.
        let entry = std::fs::OpenOptions::new()
            .write(true)
            .open(f.entry())
            .unwrap();
        entry.set_len(MAX_CACHE_ENTRY_SIZE + 1).unwrap();
        assert!(f.cache.get::<Module>(&f.engine, &f.key).is_none());
        assert!(!f.entry().exists(), "the huge entry was kept");
    }

    #[test]
    fn opening_removes_only_temporary_files_untouched_for_ten_minutes() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let old = SystemTime::now() - STALE_CACHE_TEMP_AGE - Duration::from_secs(60);
        let write = |name: &str, modified: Option<SystemTime>| {
            let file = std::fs::File::create(dir.join(name)).unwrap();
            if let Some(at) = modified {
                file.set_modified(at).unwrap();
            }
        };
        write(".crashed.tmp", Some(old));
        write(".being-written.tmp", None);
        write("old-but-not-ours.tmp", Some(old));
        write(&format!("{}.cwasm", "0".repeat(64)), Some(old));
        DiskCache::open(dir, UNCAPPED).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                ".being-written.tmp".to_owned(),
                format!("{}.cwasm", "0".repeat(64)),
                "old-but-not-ours.tmp".to_owned(),
            ]
        );
    }

    #[test]
    fn the_cache_directory_and_its_missing_parents_are_created_private_to_the_user() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b/wasmlet");
        let cache = DiskCache::open(&dir, UNCAPPED).unwrap();
        assert_eq!(cache.dir(), dir);
        for created in [tmp.path().join("a"), dir] {
            let mode = std::fs::metadata(&created).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", created.display());
        }
    }

    #[test]
    fn an_existing_directory_keeps_its_permissions() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        DiskCache::open(tmp.path(), UNCAPPED).unwrap();
        let mode = std::fs::metadata(tmp.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("cache");
        std::fs::write(&file, "").unwrap();
        let err = DiskCache::open(&file, UNCAPPED).unwrap_err();
        assert!(err.to_string().contains(&*file.to_string_lossy()), "{err}");
    }

    #[test]
    fn the_entry_records_its_source_and_engine_for_listing() {
        let f = Fixture::new();
        let entries = f.cache.entries();
        assert_eq!(entries.len(), 1);
        let entry = &entries[0];
        assert_eq!(entry.path, f.entry());
        assert_eq!(entry.source(), Some(Path::new(SOURCE)));
        assert_eq!(entry.kind(), Some("module"));
        let digest = DiskCache::engine_digest(&f.engine);
        assert_eq!(entry.unusable(&[digest]), None);
        let fuel = DiskCache::engine_digest(&engine_with(|c| {
            c.consume_fuel(true);
        }));
        assert!(entry.unusable(&[fuel]).is_some());
        assert_eq!(entry.size, std::fs::metadata(f.entry()).unwrap().len());
    }

    #[test]
    fn the_engine_digest_does_not_change_with_the_servers_limits() {
        let digest = |adjust: fn(&mut crate::Config)| {
            let mut config = crate::Config::new(".");
            adjust(&mut config);
            let engine = crate::engine::WasmEngine::new(&config).unwrap();
            DiskCache::engine_digest(engine.engine())
        };
        let default = digest(|_| {});
        assert_eq!(digest(|c| c.max_memory = 1 << 30), default);
        assert_eq!(digest(|c| c.max_instances = 10), default);
    }
}
