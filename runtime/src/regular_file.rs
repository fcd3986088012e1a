//! Opening a file that must be a regular file (a static file, a file in a
//! `[files]` mount, a handler, a disk-cache entry) without ever blocking on
//! one that is not.
//!
//! `open(2)` of a FIFO for reading waits until a writer opens the other end,
//! which may be never. A blocking thread stuck there stays stuck after its
//! request has timed out, and a few hundred of them exhaust tokio's blocking
//! pool, which static files and compiles need too; the runtime then cannot
//! even shut down. So the path is checked first (a device or FIFO is never
//! opened, which for some devices has side effects), then opened with
//! `O_NONBLOCK` (a FIFO swapped in after the check still opens at once) and
//! `O_NOCTTY`, and the opened descriptor's own metadata decides: anything but
//! a regular file is refused before a byte is read. Deciding on the
//! descriptor, not the path, leaves no window between check and read. For a
//! regular file `O_NONBLOCK` changes nothing: Linux never makes a read of a
//! regular file return `EAGAIN`.

use std::fs::{File, FileType, Metadata, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Why a file that must be regular could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// The operating system refused (missing, no permission, …).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Something other than a regular file is at the path.
    #[error("it is {0}, not a regular file; only regular files are read")]
    NotRegular(&'static str),
    /// A regular file larger than the reader accepts.
    #[error("it is {size} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// The size found (at least `max + 1` when the file grew while read).
        size: u64,
        /// The limit.
        max: u64,
    },
}

impl OpenError {
    /// Whether nothing is at the path, which callers often treat apart.
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, Self::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Opens `path` for reading if it is a regular file (symlinks followed),
/// with its metadata, taken from the opened descriptor. Blocks, but never on
/// a FIFO: call it off the async workers.
pub(crate) fn open(path: &Path) -> Result<(File, Metadata), OpenError> {
    regular(&std::fs::metadata(path)?)?;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    regular(&meta)?;
    Ok((file, meta))
}

/// The whole of the regular file at `path`, refused when larger than `max`
/// bytes. Reads at most `max + 1` bytes, so a file that grows after the size
/// check cannot get past it.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Vec<u8>, OpenError> {
    let (file, meta) = open(path)?;
    if meta.len() > max {
        return Err(OpenError::TooLarge {
            size: meta.len(),
            max,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(max.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(OpenError::TooLarge {
            size: bytes.len() as u64,
            max,
        });
    }
    Ok(bytes)
}

fn regular(meta: &Metadata) -> Result<(), OpenError> {
    if meta.is_file() {
        Ok(())
    } else {
        Err(OpenError::NotRegular(describe(meta.file_type())))
    }
}

/// What a file that is not regular is, for messages.
fn describe(kind: FileType) -> &'static str {
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking_and_a_regular_file_opens() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        mkfifo(&fifo);
        let err = open(&fifo).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        // A symlink with an innocent name still leads to the FIFO.
        std::os::unix::fs::symlink(&fifo, dir.path().join("a.txt")).unwrap();
        assert!(matches!(
            open(&dir.path().join("a.txt")),
            Err(OpenError::NotRegular(_))
        ));
        assert!(matches!(open(dir.path()), Err(OpenError::NotRegular(_))));
        assert!(
            open(&dir.path().join("missing"))
                .unwrap_err()
                .is_not_found()
        );
        std::fs::write(dir.path().join("f"), b"12345").unwrap();
        let (_, meta) = open(&dir.path().join("f")).unwrap();
        assert_eq!(meta.len(), 5);
    }

    #[test]
    fn a_bounded_read_refuses_a_file_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"12345").unwrap();
        assert_eq!(read_bounded(&file, 5).unwrap(), b"12345");
        assert!(matches!(
            read_bounded(&file, 4),
            Err(OpenError::TooLarge { size: 5, max: 4 })
        ));
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), 4),
            Err(OpenError::NotRegular("a character device"))
        ));
    }
}
