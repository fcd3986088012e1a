//! Reading files from the directories the configuration grants
//! (`[files.mounts]` in a `wasmlet.toml`).
//!
//! A path is `<mount>/<path inside it>`: with a mount `data` granted,
//! `fs::read("data/cities.csv")` reads `cities.csv` in the directory `data`
//! names. Paths with `..`, absolute paths and paths outside every mount are
//! refused, and so are handlers (`.wasm`, `.wat`) and `wasmlet.toml` files,
//! wherever they are. Reading is all there is: no writes, no listing.
//!
//! ```
//! use std::io::{BufRead, BufReader};
//! use wasmlet_sdk::fs::{self, File};
//! use wasmlet_sdk::{ErrorKind, Request, Result, handler};
//! use wasmlet_sdk::http::StatusCode;
//!
//! #[handler(get)]
//! fn motd(_req: Request) -> Result<(StatusCode, String)> {
//!     match fs::read_to_string("data/motd.txt") {
//!         Ok(text) => Ok((StatusCode::OK, text)),
//!         Err(error) if error.kind() == Some(ErrorKind::NotFound) => {
//!             Ok((StatusCode::NOT_FOUND, "no message today\n".to_owned()))
//!         }
//!         Err(error) => Err(error),
//!     }
//! }
//!
//! /// The first line of a file that may be large: read in pieces, not whole.
//! fn first_line(path: &str) -> Result<String> {
//!     let mut line = String::new();
//!     BufReader::new(File::open(path)?).read_line(&mut line)?;
//!     Ok(line)
//! }
//! # use wasmlet_sdk::testing::TestRequest;
//! # let response = TestRequest::get("/").file("data/motd.txt", "hello\n").call(handle_get);
//! # assert_eq!(response.text(), "hello\n");
//! # let response = TestRequest::get("/").mount("data").call(handle_get);
//! # assert_eq!(response.status(), StatusCode::NOT_FOUND);
//! # let line = TestRequest::get("/").file("data/big.csv", "a,b\n1,2\n").run(|| first_line("data/big.csv"));
//! # assert_eq!(line.unwrap(), "a,b\n");
//! ```
//!
//! Every read suspends the module while the host reads, never the server.
//! A missing file is [`ErrorKind::NotFound`](crate::ErrorKind::NotFound); a
//! path outside the grants [`ErrorKind::Denied`](crate::ErrorKind::Denied);
//! a malformed one [`ErrorKind::Invalid`](crate::ErrorKind::Invalid).

use std::io::{self, Read, Seek, SeekFrom};

use crate::host_error::{Capability, HostError, Operation};
use crate::pending::Pending;
use crate::{Error, Result, sys};

/// The first buffer a [`read_begin`] result is read into; a longer one costs
/// one more call, which returns at once.
const FIRST_READ: usize = 64 * 1024;

fn operation(verb: &str, path: &str) -> Operation {
    Operation::new(Capability::Files, format!("file {verb} {path:?}"))
}

/// The size of file `path` in bytes.
pub fn size(path: &str) -> Result<u64> {
    Ok(size_host(path)?)
}

fn size_host(path: &str) -> Result<u64, HostError> {
    let size = sys::file_size(path.as_bytes());
    // A negative size is an ABI code, which fits an `i32`.
    u64::try_from(size)
        .map_err(|_| operation("size", path).host_error(i32::try_from(size).unwrap_or(i32::MIN)))
}

/// The whole of file `path`: its size first, then its bytes (in as few
/// reads as the host allows). A file that grows meanwhile is read as long
/// as it was.
pub fn read(path: &str) -> Result<Vec<u8>> {
    let size = size(path)?;
    let size = usize::try_from(size).map_err(|_| {
        Error::msg(format!(
            "file {path:?} has {size} bytes, more than a module can hold: read it in pieces with File"
        ))
    })?;
    let mut bytes = vec![0; size];
    let mut filled = 0;
    while filled < size {
        let n = read_at(path, filled as u64, &mut bytes[filled..])?;
        if n == 0 {
            // The file shrank since its size was taken.
            break;
        }
        filled += n;
    }
    bytes.truncate(filled);
    Ok(bytes)
}

/// The whole of file `path` as text; an error if it is not UTF-8.
pub fn read_to_string(path: &str) -> Result<String> {
    String::from_utf8(read(path)?)
        .map_err(|error| Error::msg(format!("file {path:?} is not UTF-8: {error}")))
}

/// Starts reading up to `len` bytes of `path` from byte `offset`; the bytes
/// come from [`Pending::wait`] (fewer at the file's end, none past it).
/// Several reads begun together run concurrently.
pub fn read_begin(path: &str, offset: u64, len: usize) -> Pending<Vec<u8>> {
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let len_arg = i32::try_from(len).unwrap_or(i32::MAX);
    let op = sys::file_read_begin(path.as_bytes(), offset, len_arg);
    Pending::begin(op, operation("read", path), move |op, operation| {
        // The host keeps bytes the first buffer could not take, so the
        // second call returns them at once.
        sys::read_full(len.min(FIRST_READ), |buf| sys::file_read_end(op, buf))
            .map_err(|code| operation.error(code))
    })
}

/// One `file_read` into `buf`, which is not empty: the count, `0` at or
/// after the end.
fn read_at(path: &str, offset: u64, buf: &mut [u8]) -> Result<usize, HostError> {
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    let code = sys::file_read(path.as_bytes(), offset, buf);
    usize::try_from(code)
        .map(|n| n.min(buf.len()))
        .map_err(|_| operation("read", path).host_error(code))
}

/// A file opened for reading in pieces: [`Read`] from a position, which
/// [`Seek`] moves. Each read is one host call at that position; wrap it in
/// a `std::io::BufReader` for many small reads.
///
/// Nothing stays open on the host: a `File` is a path, a position and the
/// size it had when opened.
#[derive(Debug)]
pub struct File {
    path: String,
    position: u64,
    /// The size at `open`, for `SeekFrom::End` and [`File::size`].
    size: u64,
}

impl File {
    /// Opens `path`: an error now if it does not exist or is not granted.
    pub fn open(path: &str) -> Result<Self> {
        Ok(Self {
            size: size(path)?,
            path: path.to_owned(),
            position: 0,
        })
    }

    /// The path it was opened with.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Its size in bytes when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        // An empty buffer would read as "end" from the host.
        if buf.is_empty() {
            return Ok(0);
        }
        let n = read_at(&self.path, self.position, buf)?;
        self.position += n as u64;
        Ok(n)
    }
}

impl Seek for File {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let (base, delta) = match to {
            SeekFrom::Start(position) => (position, 0),
            SeekFrom::Current(delta) => (self.position, delta),
            SeekFrom::End(delta) => (self.size, delta),
        };
        self.position = base.checked_add_signed(delta).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "seeking {to:?} in file {:?} goes before its start",
                    self.path
                ),
            )
        })?;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests;
