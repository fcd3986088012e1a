//! What names an entry: the [`CacheKey`] of a module as one engine
//! configuration compiles it (see "Key" in the [parent module](super)).

use std::fmt;
use std::hash::{Hash, Hasher};

use sha2::{Digest, Sha256};
use wasmtime::Engine;

use super::DiskCache;

/// Bytes in a key.
pub(super) const KEY_LEN: usize = 32;

/// Names one module as compiled by one engine configuration. Displays as 64
/// lowercase hex digits, the entry's file name without its extension.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// SHA-256 of the engine digest and the module's bytes.
    pub(super) id: [u8; KEY_LEN],
    /// The engine digest, kept so the entry can record which engine it is
    /// for.
    pub(super) engine: EngineDigest,
}

/// SHA-256 of an engine's [`Engine::precompile_compatibility_hash`]: equal
/// for two engines exactly when code one compiles loads in the other.
pub type EngineDigest = [u8; 32];

impl fmt::Display for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.id.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for CacheKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CacheKey({self})")
    }
}

impl DiskCache {
    /// The digest of `engine`'s configuration that every key it makes
    /// starts from.
    pub fn engine_digest(engine: &Engine) -> EngineDigest {
        let mut compat = Sha256::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut Sha256Hasher(&mut compat));
        compat.finalize().into()
    }

    /// The key of `wasm` (the bytes given to [`Module::new`](wasmtime::Module::new) or
    /// [`Component::new`](wasmtime::component::Component::new)) compiled by `engine`. Stable across restarts, and across engines built with the
    /// same configuration on the same machine and wasmtime version. Needs no
    /// cache, so it also names a module when the cache is off.
    pub fn key(engine: &Engine, wasm: &[u8]) -> CacheKey {
        let engine = Self::engine_digest(engine);
        // The engine digest has a fixed length, so it and the module's bytes
        // cannot run into each other.
        let mut key = Sha256::new();
        key.update(engine);
        key.update(wasm);
        CacheKey {
            id: key.finalize().into(),
            engine,
        }
    }
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
