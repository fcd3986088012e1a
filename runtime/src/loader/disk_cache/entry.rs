//! One cache entry's bytes: the header [`DiskCache::put`](super::DiskCache::put)
//! writes, the checks an entry must pass before wasmtime sees its payload
//! (the table and the safety argument are in the [parent module](super)),
//! and the header alone, read for listing and eviction.

use std::io::Read;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

use super::CacheKey;
use super::key::KEY_LEN;
use crate::regular_file;

/// First bytes of every entry: a file that does not start with these was not
/// written by this cache.
pub(super) const MAGIC: [u8; 8] = *b"wasmlet\0";

/// Bumped whenever the header or payload layout changes, so an entry written
/// by an older wasmlet is rebuilt instead of misread. (2 added the kind, 3
/// the engine digest and the source.)
pub(super) const FORMAT_VERSION: u32 = 3;

const DIGEST_LEN: usize = 32;

/// The fixed part of the header, before the source path.
pub(super) const HEADER_LEN: usize =
    MAGIC.len() + 4 + 1 + KEY_LEN + DIGEST_LEN + 2 + 8 + DIGEST_LEN;

/// Longest source path recorded; a longer one is left out (it is only ever
/// shown and compared, never opened).
const MAX_SOURCE_LEN: usize = 4096;

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
pub(super) fn kind_name(kind: u8) -> String {
    match kind {
        Module::KIND => Module::NAME.to_owned(),
        Component::KIND => Component::NAME.to_owned(),
        other => format!("unknown kind {other}"),
    }
}

/// Why an entry was discarded.
#[derive(Debug, thiserror::Error)]
pub(super) enum Invalid {
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
pub(super) fn load<A: Artifact>(
    engine: &Engine,
    key: &CacheKey,
    entry: &[u8],
) -> Result<A, Invalid> {
    let payload = verify(A::KIND, A::NAME, key, entry)?;
    // SAFETY: `deserialize` needs the unmodified output of `A::serialize`.
    // `verify` proved these bytes are exactly the payload `put` wrote for this
    // key and kind: the header names this key and kind, and the length and
    // SHA-256 of what follows it match, so the file is not truncated, torn or
    // corrupted. Only the user can write the directory (`open` makes it so,
    // and warns when an existing one is more open), so no one else wrote it;
    // see the module docs. Whether the code suits this engine wasmtime
    // checks itself, returning an error that is handled as a miss. The bytes
    // are copied, so later changes to the file cannot reach the loaded code.
    unsafe { A::deserialize(engine, payload) }.map_err(|e| Invalid::Rejected(format!("{e:#}")))
}

/// The header `put` writes before `payload`, recording `source` (the
/// handler file compiled) when its path is short enough.
pub(super) fn header(kind: u8, key: &CacheKey, source: &Path, payload: &[u8]) -> Vec<u8> {
    let source = source.as_os_str().as_bytes();
    let source = if source.len() <= MAX_SOURCE_LEN {
        source
    } else {
        &[]
    };
    let mut checked = Sha256::new();
    checked.update(source);
    checked.update(payload);
    let mut header = Vec::with_capacity(HEADER_LEN + source.len());
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.push(kind);
    header.extend_from_slice(&key.id);
    header.extend_from_slice(&key.engine);
    header.extend_from_slice(&(source.len() as u16).to_le_bytes());
    header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    header.extend_from_slice(&checked.finalize());
    debug_assert_eq!(header.len(), HEADER_LEN);
    header.extend_from_slice(source);
    header
}

/// The fields of an entry's header that say where it came from: what
/// listing, pruning and eviction look at. No checksum is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Header {
    /// The kind byte.
    pub(super) kind: u8,
    /// The key the entry was written for.
    pub(super) key: CacheKey,
    /// The handler file compiled, if recorded.
    pub(super) source: Option<PathBuf>,
}

/// The fixed part of a header split into its fields: kind, key, engine
/// digest, source length, payload length, checksum.
struct Fields<'a> {
    kind: u8,
    key: CacheKey,
    source_len: usize,
    payload_len: u64,
    digest: &'a [u8],
}

fn fields(header: &[u8; HEADER_LEN]) -> Result<Fields<'_>, Invalid> {
    let (magic, rest) = header.split_at(MAGIC.len());
    let (version, rest) = rest.split_at(4);
    let (kind, rest) = rest.split_at(1);
    let (id, rest) = rest.split_at(KEY_LEN);
    let (engine, rest) = rest.split_at(DIGEST_LEN);
    let (source_len, rest) = rest.split_at(2);
    let (payload_len, digest) = rest.split_at(8);
    if magic != MAGIC {
        return Err(Invalid::Magic);
    }
    let version = u32::from_le_bytes(version.try_into().expect("split at 4 bytes"));
    if version != FORMAT_VERSION {
        return Err(Invalid::Version(version));
    }
    Ok(Fields {
        kind: kind[0],
        key: CacheKey {
            id: id.try_into().expect("split at KEY_LEN bytes"),
            engine: engine.try_into().expect("split at DIGEST_LEN bytes"),
        },
        source_len: usize::from(u16::from_le_bytes(
            source_len.try_into().expect("split at 2 bytes"),
        )),
        payload_len: u64::from_le_bytes(payload_len.try_into().expect("split at 8 bytes")),
        digest,
    })
}

/// The payload of `entry` if its header holds up, for `key` and `kind`
/// (called `wanted` in messages).
pub(super) fn verify<'a>(
    kind: u8,
    wanted: &'static str,
    key: &CacheKey,
    entry: &'a [u8],
) -> Result<&'a [u8], Invalid> {
    let Some((header, rest)) = entry.split_first_chunk::<HEADER_LEN>() else {
        return Err(Invalid::ShortHeader(entry.len()));
    };
    let fields = fields(header)?;
    if fields.kind != kind {
        return Err(Invalid::Kind {
            stored: kind_name(fields.kind),
            wanted,
        });
    }
    if fields.key != *key {
        return Err(Invalid::Key(fields.key));
    }
    let Some(payload) = rest.get(fields.source_len..) else {
        return Err(Invalid::ShortHeader(entry.len()));
    };
    if usize::try_from(fields.payload_len) != Ok(payload.len()) {
        return Err(Invalid::Length {
            announced: fields.payload_len,
            held: payload.len(),
        });
    }
    if Sha256::digest(rest).as_slice() != fields.digest {
        return Err(Invalid::Checksum);
    }
    Ok(payload)
}

/// The header of the entry file at `path`, read without its payload (and
/// without blocking on a FIFO).
pub(super) fn read_header(path: &Path) -> Result<Header, String> {
    let (file, _) = regular_file::open(path).map_err(|e| e.to_string())?;
    let mut file = file.take((HEADER_LEN + MAX_SOURCE_LEN) as u64);
    let mut fixed = [0; HEADER_LEN];
    file.read_exact(&mut fixed)
        .map_err(|_| "the file is shorter than an entry's header".to_owned())?;
    let fields = fields(&fixed).map_err(|e| e.to_string())?;
    let mut source = vec![0; fields.source_len];
    file.read_exact(&mut source)
        .map_err(|_| "the source path is cut short".to_owned())?;
    Ok(Header {
        kind: fields.kind,
        key: fields.key,
        source: (!source.is_empty()).then(|| PathBuf::from(std::ffi::OsString::from_vec(source))),
    })
}
