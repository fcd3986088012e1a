//! Files on the fake host: in memory, under mounts the test grants, checked
//! by the runtime's rules (`INVALID` for `..`, absolute paths and NUL;
//! `DENIED` outside every mount and for handlers and `wasmlet.toml`;
//! `ABSENT` for a missing file in a granted mount).

use std::collections::{BTreeMap, BTreeSet};

use super::ops::{self, Done, Kind};
use super::{Exchange, Failure, full_len, with};
use crate::code;

/// The files of one request.
#[derive(Default)]
pub(crate) struct FakeFiles {
    /// Granted mount names.
    pub(crate) mounts: BTreeSet<String>,
    /// Contents by path (`mount/relative/path`).
    pub(crate) files: BTreeMap<String, Vec<u8>>,
}

/// The contents of the file `raw` names, by the runtime's rules.
fn open<'a>(ex: &'a Exchange, raw: &[u8]) -> Result<&'a [u8], Failure> {
    let invalid = |message: String| Failure::new(code::INVALID, message);
    let path = std::str::from_utf8(raw).map_err(|_| invalid("a path must be UTF-8".to_owned()))?;
    if path.contains('\0') {
        return Err(invalid(format!("path {path:?} holds a NUL")));
    }
    if path.starts_with('/') {
        return Err(invalid(format!(
            "path {path:?} is absolute: name a mount first, as in data/file.txt"
        )));
    }
    if path.split('/').any(|part| part == "..") {
        return Err(invalid(format!("path {path:?} climbs out with `..`")));
    }
    let mount = path.split('/').next().unwrap_or_default();
    if !ex.files.mounts.contains(mount) {
        return Err(Failure::new(
            code::DENIED,
            format!(
                "path {path:?} is outside every mount: the test grants mount {mount:?} with .mount({mount:?}) or .file(...)"
            ),
        ));
    }
    let name = path.rsplit('/').next().unwrap_or_default();
    if name.ends_with(".wasm") || name.ends_with(".wat") || name == "wasmlet.toml" {
        return Err(Failure::new(
            code::DENIED,
            format!("{path:?} is a handler or a configuration file, which are never readable"),
        ));
    }
    ex.files
        .files
        .get(path)
        .map(Vec::as_slice)
        .ok_or_else(|| Failure::new(code::ABSENT, format!("no file {path:?}")))
}

/// The bytes at `offset..offset + len` of `contents`, fewer at its end.
fn slice(contents: &[u8], offset: i64, len: usize) -> Result<&[u8], Failure> {
    let offset = usize::try_from(offset)
        .map_err(|_| Failure::new(code::INVALID, format!("offset {offset} is negative")))?;
    let start = offset.min(contents.len());
    let end = start.saturating_add(len).min(contents.len());
    Ok(&contents[start..end])
}

/// `file_read`; `INVALID` for an empty buffer, whose `0` would read as the
/// end.
pub(crate) fn file_read(path: &[u8], offset: i64, buf: &mut [u8]) -> i32 {
    with(|ex| {
        if buf.is_empty() {
            return ex.fail(Failure::new(
                code::INVALID,
                "file_read needs a buffer of at least one byte",
            ));
        }
        match open(ex, path).and_then(|contents| slice(contents, offset, buf.len())) {
            Ok(bytes) => {
                buf[..bytes.len()].copy_from_slice(bytes);
                full_len(bytes.len())
            }
            Err(failure) => ex.fail(failure),
        }
    })
}

/// `file_size`.
pub(crate) fn file_size(path: &[u8]) -> i64 {
    with(|ex| match open(ex, path) {
        Ok(contents) => i64::try_from(contents.len()).unwrap_or(i64::MAX),
        Err(failure) => i64::from(ex.fail(failure)),
    })
}

/// `file_read_begin`: checks and reads at once, as [`kv`](super::kv)
/// operations do.
pub(crate) fn file_read_begin(path: &[u8], offset: i64, len: i32) -> i32 {
    with(|ex| {
        if let Err(failure) = ex.ops.room() {
            return ex.fail(failure);
        }
        let len = usize::try_from(len)
            .map_err(|_| Failure::new(code::INVALID, format!("length {len} is negative")));
        let read = len.and_then(|len| {
            let contents = open(ex, path)?;
            Ok(slice(contents, offset, len)?.to_vec())
        });
        match read {
            Ok(bytes) => ops::begin(ex, Kind::FileRead, Ok(Done::Bytes(bytes))),
            Err(failure) => ex.fail(failure),
        }
    })
}

/// `file_read_end`.
pub(crate) fn file_read_end(op: i32, buf: &mut [u8]) -> i32 {
    ops::end(op, Kind::FileRead, buf)
}

/// Deletes a file from the running request's mounts, for the SDK's tests of
/// a file that goes away while a handler reads it.
#[cfg(test)]
pub(crate) fn remove_file(path: &str) {
    with(|ex| ex.files.files.remove(path));
}
