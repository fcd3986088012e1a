//! The on-disk cache of compiled handler code, so that a restarted server
//! serves a handler's first request without compiling it. It holds both
//! kinds of handler: core modules and components ([`Artifact`]).
//!
//! # Key
//!
//! An entry is keyed by SHA-256 over two things: everything that makes
//! compiled code incompatible between engines, as wasmtime itself hashes it in
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
//! header followed by the bytes of [`Module::serialize`] or
//! [`Component::serialize`]. Integers are little endian.
//!
//! | offset | size | field                                               |
//! | ------ | ---- | --------------------------------------------------- |
//! | 0      | 8    | magic, `b"wasmlet\0"`                               |
//! | 8      | 4    | format version, currently 2                         |
//! | 12     | 1    | kind: 1 a core module, 2 a component                |
//! | 13     | 32   | the key the entry was written for                   |
//! | 45     | 8    | payload length in bytes                             |
//! | 53     | 32   | SHA-256 of the payload                              |
//! | 85     | …    | payload: the output of `serialize` for its kind     |
//!
//! # Why loading an entry is safe
//!
//! [`Module::deserialize`] (and [`Component::deserialize`]) is `unsafe`
//! because it trusts its input to be machine code wasmtime produced: handed
//! arbitrary bytes it would run them. So nothing reaches it unchecked. The
//! header must have the right magic and format version, the kind being
//! looked up, name the key being looked up (a valid entry copied or renamed
//! to another key's name would otherwise load the wrong module), and
//! announce exactly as many payload bytes as the file holds; the payload must
//! hash to the SHA-256 in the header. Together these prove the payload is the
//! unmodified output of `serialize` that [`DiskCache::put`] wrote for this
//! module or component, not a truncated, torn or bit-flipped file. Whether that
//! output suits the engine at hand, wasmtime checks itself and reports as an
//! error.
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
//! [`MAX_CACHE_ENTRY_SIZE`](crate::config::MAX_CACHE_ENTRY_SIZE) (refused by
//! its size before it is read, so a huge file cannot exhaust memory); `put`
//! never writes one that large.
//!
//! # Concurrency
//!
//! [`DiskCache::put`] writes a temporary file in the same directory and
//! renames it over the entry's name, so a reader, a crash or another server
//! sharing the directory never sees a half-written entry under that name.
//! Two writers of the same key write the same bytes, so whichever rename lands
//! last wins harmlessly. Everything here blocks; call it off the async
//! workers.
//!
//! # Leftover temporary files
//!
//! A crash (or a kill) between creating a temporary file and renaming it
//! leaves `.<random>.tmp` behind; nothing reads it, but nothing else would
//! ever remove it either. [`DiskCache::open`] removes those whose last
//! modification is older than
//! [`STALE_CACHE_TEMP_AGE`](crate::config::STALE_CACHE_TEMP_AGE) (ten
//! minutes). An age, not a lock or a process id: several servers, even on
//! several machines over a network file system, may share the directory, and
//! one of them may be writing a temporary file right now. A write lasts
//! seconds and keeps the file's modification time fresh while it does, so
//! only a file no one has touched for minutes is removed; a pid would not
//! tell a live writer on another machine from a dead one, and a lock file
//! would itself be left behind by a crash.

use std::fmt;
use std::fs::DirBuilder;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use crate::config::{MAX_CACHE_ENTRY_SIZE, STALE_CACHE_TEMP_AGE};
use crate::regular_file::{self, OpenError};

/// First bytes of every entry: a file that does not start with these was not
/// written by this cache.
const MAGIC: [u8; 8] = *b"wasmlet\0";

/// Bumped whenever the header or payload layout changes, so an entry written
/// by an older wasmlet is rebuilt instead of misread. (2 added the kind.)
const FORMAT_VERSION: u32 = 2;

const KEY_LEN: usize = 32;
const DIGEST_LEN: usize = 32;
const HEADER_LEN: usize = MAGIC.len() + 4 + 1 + KEY_LEN + 8 + DIGEST_LEN;

/// Compiled code the cache can hold: a core [`Module`] or a [`Component`].
/// Sealed: loading an entry is `unsafe` (see the module docs), so only the
/// two wasmtime types whose `deserialize` contract this file keeps may be
/// stored.
pub trait Artifact: Sized + sealed::Sealed {
    /// The kind byte in the entry's header.
    const KIND: u8;
    /// What the kind is called in messages.
    const NAME: &'static str;
    /// Wasmtime's serialized form.
    fn serialize(&self) -> wasmtime::Result<Vec<u8>>;
    /// Loads what [`serialize`](Self::serialize) wrote.
    ///
    /// # Safety
    /// `bytes` must be the unmodified output of `serialize` for this kind.
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for wasmtime::Module {}
    impl Sealed for wasmtime::component::Component {}
}

impl Artifact for Module {
    const KIND: u8 = 1;
    const NAME: &'static str = "a core module";
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Module::serialize(self)
    }
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        // SAFETY: the caller's contract is `Module::deserialize`'s.
        unsafe { Module::deserialize(engine, bytes) }
    }
}

impl Artifact for Component {
    const KIND: u8 = 2;
    const NAME: &'static str = "a component";
    fn serialize(&self) -> wasmtime::Result<Vec<u8>> {
        Component::serialize(self)
    }
    unsafe fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Self> {
        // SAFETY: the caller's contract is `Component::deserialize`'s.
        unsafe { Component::deserialize(engine, bytes) }
    }
}

/// What kind byte `kind` names, for messages.
fn kind_name(kind: u8) -> String {
    match kind {
        Module::KIND => Module::NAME.to_owned(),
        Component::KIND => Component::NAME.to_owned(),
        other => format!("unknown kind {other}"),
    }
}

/// Entry files end in this; temporary files do not, so a reader never opens
/// one.
const ENTRY_EXTENSION: &str = "cwasm";

pub use crate::config::default_cache_dir as default_dir;

/// Why the cache could not be opened or an entry could not be written.
/// Reading never fails: a bad or unreadable entry is a miss.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The cache directory could not be created or is not a directory.
    #[error("cannot create the compiled-code cache directory {}: {source}", path.display())]
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
         {max}-byte limit for a cache entry; the handler is compiled again at each start",
        path.display()
    )]
    TooLarge {
        /// The entry that was to be written.
        path: PathBuf,
        /// The payload's size.
        size: u64,
        /// [`MAX_CACHE_ENTRY_SIZE`].
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

/// Names one module as compiled by one engine configuration. Displays as 64
/// lowercase hex digits, the entry's file name without its extension.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; KEY_LEN]);

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({self})")
    }
}

/// A directory of compiled modules and components that outlives the
/// process.
#[derive(Debug)]
pub struct DiskCache {
    /// Holds only entries and, briefly, the temporary files they are written
    /// through.
    dir: PathBuf,
}

impl DiskCache {
    /// Opens the cache in `dir`, creating it (and any missing parents) with
    /// mode `0700`. An existing directory is used as it is, with a warning if
    /// its group or others can write to it.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, CacheError> {
        let dir = dir.into();
        let dir_error = |source| CacheError::Dir {
            path: dir.clone(),
            source,
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(dir_error)?;
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
        remove_stale_temporaries(&dir, STALE_CACHE_TEMP_AGE);
        Ok(Self { dir })
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of `wasm` (the bytes given to [`Module::new`] or
    /// [`Component::new`]) compiled by `engine`. Stable across restarts, and across engines built with the
    /// same configuration on the same machine and wasmtime version. Needs no
    /// cache, so it also names a module when the cache is off.
    pub fn key(engine: &Engine, wasm: &[u8]) -> CacheKey {
        let mut compat = Sha256::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut Sha256Hasher(&mut compat));
        // The compatibility digest has a fixed length, so it and the module's
        // bytes cannot run into each other.
        let mut key = Sha256::new();
        key.update(compat.finalize());
        key.update(wasm);
        CacheKey(key.finalize().into())
    }

    /// The module or component stored under `key`, loaded into `engine`, or
    /// `None` on a miss. An entry that is corrupt, truncated, from another
    /// format version, of the other kind or rejected by wasmtime is removed,
    /// with a warning, and is a miss.
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
            Ok(artifact) => Some(artifact),
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
        if let Err(e) = std::fs::remove_file(path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(
                file = %path.display(),
                error = %e,
                "cannot remove a bad compiled-code cache entry"
            );
        }
    }

    /// Stores the compiled code of `artifact` (a module or a component) under
    /// `key`, replacing any entry there. Atomic: the entry's file name holds
    /// either the old entry or the complete new one.
    pub fn put<A: Artifact>(&self, key: &CacheKey, artifact: &A) -> Result<(), CacheError> {
        let path = self.entry_path(key);
        let payload = artifact.serialize().map_err(|e| CacheError::Serialize {
            path: path.clone(),
            message: format!("{e:#}"),
        })?;
        let size = (HEADER_LEN + payload.len()) as u64;
        if size > MAX_CACHE_ENTRY_SIZE {
            return Err(CacheError::TooLarge {
                path,
                size,
                max: MAX_CACHE_ENTRY_SIZE,
            });
        }
        let write_error = |source| CacheError::Write {
            path: path.clone(),
            source,
        };
        // In the same directory, so the rename stays on one file system and is
        // atomic. The name does not end in `.cwasm`, so a temporary file left
        // by a crash is never read as an entry.
        let mut file = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .suffix(TEMP_SUFFIX)
            .tempfile_in(&self.dir)
            .map_err(write_error)?;
        file.write_all(&header(A::KIND, key, &payload))
            .and_then(|()| file.write_all(&payload))
            .map_err(write_error)?;
        // No fsync: if a crash loses the data but keeps the rename, the entry
        // fails its checksum on the next read and is rebuilt, so durability
        // is not worth a disk flush per compile.
        file.persist(&path).map_err(|e| write_error(e.error))?;
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

/// Removes the temporary files in `dir` untouched for longer than
/// `older_than` (see "Leftover temporary files" above); returns how many.
fn remove_stale_temporaries(dir: &Path, older_than: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = SystemTime::now();
    let mut removed = 0;
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let is_temporary = name
            .to_str()
            .is_some_and(|n| n.starts_with(TEMP_PREFIX) && n.ends_with(TEMP_SUFFIX));
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

/// Feeds what a [`Hash`] implementation writes into a SHA-256, so a type that
/// only offers `Hash` gets a collision-resistant digest that every process of
/// the same wasmlet build agrees on (`DefaultHasher` gives only 64 bits). A
/// different build may feed other bytes; its keys then differ, which
/// costs one compile per module and is never a wrong hit.
struct Sha256Hasher<'a>(&'a mut Sha256);

impl Hasher for Sha256Hasher<'_> {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("a SHA-256 has 32 bytes"))
    }
}

/// Why an entry was discarded.
#[derive(Debug, thiserror::Error)]
enum Invalid {
    #[error("the file is {0} bytes, shorter than an entry's header")]
    ShortHeader(usize),
    #[error("the file is not a wasmlet cache entry (wrong magic number)")]
    Magic,
    #[error("the entry has format version {0}; this wasmlet writes version {FORMAT_VERSION}")]
    Version(u32),
    #[error("the entry holds {stored}, not {wanted}")]
    Kind {
        stored: String,
        wanted: &'static str,
    },
    #[error("the entry was written for key {0}")]
    Key(CacheKey),
    #[error("the header announces {announced} bytes of compiled code, but the file holds {held}")]
    Length { announced: u64, held: usize },
    #[error("the compiled code does not match its checksum")]
    Checksum,
    #[error("wasmtime rejected the compiled code: {0}")]
    Rejected(String),
}

/// The module or component in `entry`, the contents of the file for `key`,
/// if every check holds.
fn load<A: Artifact>(engine: &Engine, key: &CacheKey, entry: &[u8]) -> Result<A, Invalid> {
    let payload = verify(A::KIND, A::NAME, key, entry)?;
    // SAFETY: `deserialize` needs the unmodified output of `A::serialize`.
    // `verify` proved these bytes are exactly the payload `put` wrote for this
    // key and kind: the header names this key and kind, and the payload's
    // length and SHA-256 match it, so the file is not truncated, torn or
    // corrupted. Only the
    // user can write the directory (`open` makes it so, and warns when an
    // existing one is more open), so no one else wrote it; see the module
    // docs.
    // Whether the code suits this engine wasmtime checks itself, returning an
    // error that is handled as a miss. The bytes are copied, so later changes
    // to the file cannot reach the loaded code.
    unsafe { A::deserialize(engine, payload) }.map_err(|e| Invalid::Rejected(format!("{e:#}")))
}

/// The header `put` writes before `payload`.
fn header(kind: u8, key: &CacheKey, payload: &[u8]) -> Vec<u8> {
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.push(kind);
    header.extend_from_slice(&key.0);
    header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    header.extend_from_slice(&Sha256::digest(payload));
    debug_assert_eq!(header.len(), HEADER_LEN);
    header
}

/// The payload of `entry` if its header holds up, for `key` and `kind`
/// (called `wanted` in messages).
fn verify<'a>(
    kind: u8,
    wanted: &'static str,
    key: &CacheKey,
    entry: &'a [u8],
) -> Result<&'a [u8], Invalid> {
    let Some((header, payload)) = entry.split_at_checked(HEADER_LEN) else {
        return Err(Invalid::ShortHeader(entry.len()));
    };
    let (magic, rest) = header.split_at(MAGIC.len());
    let (version, rest) = rest.split_at(4);
    let (stored_kind, rest) = rest.split_at(1);
    let (stored_key, rest) = rest.split_at(KEY_LEN);
    let (length, digest) = rest.split_at(8);
    if magic != MAGIC {
        return Err(Invalid::Magic);
    }
    let version = u32::from_le_bytes(version.try_into().expect("split at 4 bytes"));
    if version != FORMAT_VERSION {
        return Err(Invalid::Version(version));
    }
    if stored_kind[0] != kind {
        return Err(Invalid::Kind {
            stored: kind_name(stored_kind[0]),
            wanted,
        });
    }
    if stored_key != key.0 {
        let stored = CacheKey(stored_key.try_into().expect("split at KEY_LEN bytes"));
        return Err(Invalid::Key(stored));
    }
    let announced = u64::from_le_bytes(length.try_into().expect("split at 8 bytes"));
    if usize::try_from(announced) != Ok(payload.len()) {
        return Err(Invalid::Length {
            announced,
            held: payload.len(),
        });
    }
    if Sha256::digest(payload).as_slice() != digest {
        return Err(Invalid::Checksum);
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::{Config, OptLevel, Store};

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
            let cache = DiskCache::open(tmp.path().join("cache")).unwrap();
            let engine = Engine::default();
            let wasm = wasm();
            let key = DiskCache::key(&engine, &wasm);
            let module = Module::new(&engine, &wasm).unwrap();
            cache.put(&key, &module).unwrap();
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
        let reopened = DiskCache::open(f.cache.dir()).unwrap();
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
            let middle = HEADER_LEN + (bytes.len() - HEADER_LEN) / 2;
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
            (HEADER_LEN, length),
            (HEADER_LEN + 1, length),
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
        f.cache.put(&f.key, &module).unwrap();
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
            .put(&key, &Component::new(&f.engine, &wasm).unwrap())
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
        DiskCache::open(dir).unwrap();
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
        let cache = DiskCache::open(&dir).unwrap();
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
        DiskCache::open(tmp.path()).unwrap();
        let mode = std::fs::metadata(tmp.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn a_file_in_place_of_the_directory_is_an_error_naming_it() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("cache");
        std::fs::write(&file, "").unwrap();
        let err = DiskCache::open(&file).unwrap_err();
        assert!(err.to_string().contains(&*file.to_string_lossy()), "{err}");
    }
}
