//! Read-only file access for handlers, through named mounts that a
//! `wasmlet.toml` grants (`[files] mounts = { data = "data" }`).
//!
//! A guest names a file as `<mount>/<path inside it>`. Nothing else is
//! reachable: the path is checked by its text first (no `..`, no absolute
//! path, no hidden component), then by its real location after symlinks
//! (still inside the mount), and handler files and configuration files are
//! refused even inside a mount, so a grant can never leak a handler's code.
//! Only regular files are read, opened so that a FIFO or device can never
//! block the read (`regular_file`). Reads run on blocking threads, never on a
//! worker, and at most [`MAX_FILE_OPERATIONS`](crate::config::MAX_FILE_OPERATIONS)
//! at once, so even reads stuck on a hung network mount cannot take every
//! blocking thread.

use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

use tokio::sync::Semaphore;

use crate::regular_file::{self, OpenError};
use crate::webroot::{Class, Withheld, classify};

/// Largest single read: a guest asking for more gets this much and reads
/// again, so one call never makes the host buffer a huge file.
pub const MAX_READ: usize = 4 << 20;

/// One granted directory and the name guests reach it by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The first component of a guest path (`data` in `data/a.csv`).
    pub name: String,
    /// The directory, canonical, so containment compares real paths.
    pub dir: PathBuf,
    /// The directory is the web root, lies inside it or holds it: among its
    /// files are handler code and `wasmlet.toml`, which `wasi:filesystem`
    /// cannot withhold as this capability does, so components get no
    /// preopen of it.
    pub overlaps_webroot: bool,
}

/// Why a file could not be read. Each maps to one ABI code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// Outside every grant, or a file that is never readable.
    #[error("{0}")]
    Denied(String),
    /// The path is malformed.
    #[error("{0}")]
    Invalid(String),
    /// No such file inside the mount.
    #[error("{0}")]
    Absent(String),
    /// The file exists but reading it failed.
    #[error("{0}")]
    Failed(String),
}

/// The mounts one handler may read, in the order the configuration gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mounts(Vec<Mount>);

impl Mounts {
    /// The mounts, from the effective configuration.
    pub fn new(mounts: Vec<Mount>) -> Self {
        Self(mounts)
    }

    /// Whether any directory is granted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The mounts, for the status page and messages.
    pub fn iter(&self) -> impl Iterator<Item = &Mount> {
        self.0.iter()
    }

    /// The size of the guest's `path`, a regular file inside a mount.
    pub async fn size(&self, path: &str) -> Result<u64, FileError> {
        let (mount, inside) = self.split(path)?;
        let (mount, inside, path) = (mount.clone(), inside.to_owned(), path.to_owned());
        off_worker(move || {
            let real = resolve(&mount, &inside, &path)?;
            let (_, meta) = regular_file::open(&real).map_err(|e| open_failure(&path, e))?;
            Ok(meta.len())
        })
        .await
    }

    /// Up to `len` bytes (at most [`MAX_READ`]) of the guest's `path`, a
    /// regular file inside a mount, from `offset`; empty at or past the end.
    pub async fn read_at(&self, path: &str, offset: u64, len: usize) -> Result<Vec<u8>, FileError> {
        let (mount, inside) = self.split(path)?;
        let (mount, inside, path) = (mount.clone(), inside.to_owned(), path.to_owned());
        off_worker(move || {
            let real = resolve(&mount, &inside, &path)?;
            read_at(&path, &real, offset, len)
        })
        .await
    }

    /// The mount and the path inside it, checked by text alone.
    fn split<'a>(&self, path: &'a str) -> Result<(&Mount, &'a Path), FileError> {
        if path.contains('\0') {
            return Err(FileError::Invalid(
                "a file path may not contain NUL".to_owned(),
            ));
        }
        if path.starts_with('/') {
            return Err(FileError::Invalid(format!(
                "`{path}` is absolute; name a file as <mount>/<path>, like data/report.csv"
            )));
        }
        let (name, inside) = path.split_once('/').unwrap_or((path, ""));
        let Some(mount) = self.0.iter().find(|m| m.name == name) else {
            let granted: Vec<&str> = self.0.iter().map(|m| m.name.as_str()).collect();
            return Err(FileError::Denied(if granted.is_empty() {
                format!(
                    "`{path}`: no directory is granted to this handler; add one to [files] mounts in a wasmlet.toml"
                )
            } else {
                format!(
                    "`{path}`: no mount named `{name}`; the mounts granted here are {}",
                    granted.join(", ")
                )
            }));
        };
        let inside = Path::new(inside);
        for component in inside.components() {
            match component {
                Component::Normal(_) | Component::CurDir => {}
                _ => {
                    return Err(FileError::Invalid(format!(
                        "`{path}` may not contain `..`; name a file inside the `{name}` mount"
                    )));
                }
            }
        }
        if inside.as_os_str().is_empty() {
            return Err(FileError::Invalid(format!(
                "`{path}` names the `{name}` mount itself, not a file in it"
            )));
        }
        Ok((mount, inside))
    }
}

/// Refuses hidden files, handler files and configuration files by their
/// real name (a symlink called `notes.txt` may point at a handler), by the
/// web root's own rule ([`classify`]), so letter case is ignored alike.
fn check_readable(path: &str, rel: &Path) -> Result<(), FileError> {
    let hidden = !rel.as_os_str().is_empty() && classify(rel) == Class::Withheld(Withheld::Hidden);
    if hidden {
        return Err(FileError::Denied(format!(
            "`{path}` is a hidden file, which is never readable"
        )));
    }
    // By its name alone: below a mount's `target/` a handler is still code.
    let name = rel.file_name().map_or(Path::new(""), Path::new);
    let code = matches!(
        classify(name),
        Class::Handler | Class::Withheld(Withheld::HandlerCode | Withheld::Config)
    );
    if code {
        return Err(FileError::Denied(format!(
            "`{path}` is a handler or configuration file, which handlers may never read"
        )));
    }
    Ok(())
}

/// Handler file operations on blocking threads at once, across the process.
/// Each waits for a permit and holds it until its thread is done, so reads
/// stuck in the kernel (a hung network mount) hold at most this many of
/// tokio's blocking threads, and static files and compiles keep the rest. A
/// request waiting for a permit gives up at its own timeout.
static IN_FLIGHT: Semaphore = Semaphore::const_new(crate::config::MAX_FILE_OPERATIONS);

/// Runs `op` on a blocking thread under a permit of [`IN_FLIGHT`].
async fn off_worker<T: Send + 'static>(
    op: impl FnOnce() -> Result<T, FileError> + Send + 'static,
) -> Result<T, FileError> {
    let permit = IN_FLIGHT
        .acquire()
        .await
        .map_err(|_| FileError::Failed("file reads are shut down".to_owned()))?;
    tokio::task::spawn_blocking(move || {
        let _held_until_done = permit;
        op()
    })
    .await
    .unwrap_or_else(|e| Err(FileError::Failed(format!("the file read failed: {e}"))))
}

/// The real path of `inside` in `mount` (`path` as the guest wrote it), if
/// it names a readable file. Blocks.
fn resolve(mount: &Mount, inside: &Path, path: &str) -> Result<PathBuf, FileError> {
    let real = match std::fs::canonicalize(mount.dir.join(inside)) {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FileError::Absent(format!("no file `{path}`")));
        }
        Err(e) => return Err(FileError::Failed(format!("`{path}`: {e}"))),
    };
    // A symlink inside the mount may point anywhere; only its target counts.
    let Ok(rel) = real.strip_prefix(&mount.dir) else {
        return Err(FileError::Denied(format!(
            "`{path}` leads outside the `{}` mount (a symlink to {})",
            mount.name,
            real.display()
        )));
    };
    check_readable(path, rel)?;
    Ok(real)
}

fn open_failure(path: &str, e: OpenError) -> FileError {
    match e {
        OpenError::NotRegular(_) => FileError::Invalid(format!("`{path}`: {e}")),
        e if e.is_not_found() => FileError::Absent(format!("no file `{path}`")),
        e => FileError::Failed(format!("`{path}`: {e}")),
    }
}

/// Up to `len` bytes (at most [`MAX_READ`]) of the file at `real`, from
/// `offset`. Blocks.
fn read_at(path: &str, real: &Path, offset: u64, len: usize) -> Result<Vec<u8>, FileError> {
    let (file, meta) = regular_file::open(real).map_err(|e| open_failure(path, e))?;
    let want = len
        .min(MAX_READ)
        .min(usize::try_from(meta.len().saturating_sub(offset)).unwrap_or(usize::MAX));
    let mut out = vec![0; want];
    let mut filled = 0;
    // A file that shrinks while being read ends the read early, short.
    while filled < want {
        let n = file
            .read_at(&mut out[filled..], offset + filled as u64)
            .map_err(|e| FileError::Failed(format!("`{path}`: {e}")))?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    out.truncate(filled);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mounts(dir: &Path) -> Mounts {
        Mounts::new(vec![Mount {
            overlaps_webroot: false,
            name: "data".to_owned(),
            dir: std::fs::canonicalize(dir).unwrap(),
        }])
    }

    #[tokio::test]
    async fn a_file_inside_a_mount_resolves_and_reads_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), b"hello world").unwrap();
        let m = mounts(dir.path());
        let file = "data/sub/a.txt";
        assert_eq!(m.size(file).await.unwrap(), 11);
        assert_eq!(m.read_at(file, 0, 5).await.unwrap(), b"hello");
        assert_eq!(m.read_at(file, 6, 100).await.unwrap(), b"world");
        assert!(m.read_at(file, 11, 5).await.unwrap().is_empty());
        assert!(m.read_at(file, 500, 5).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn paths_outside_the_grant_are_refused_with_the_right_error() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        std::fs::write(dir.path().join("h.wat"), b"(module)").unwrap();
        std::fs::write(dir.path().join("H.WASM"), b"").unwrap();
        std::fs::write(dir.path().join("wasmlet.toml"), b"").unwrap();
        std::fs::write(dir.path().join(".env"), b"").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("h.wat"), dir.path().join("code.txt")).unwrap();
        let m = mounts(dir.path());
        type Expect = fn(&FileError) -> bool;
        let cases: &[(&str, Expect)] = &[
            ("data/../x", |e| matches!(e, FileError::Invalid(_))),
            ("/etc/passwd", |e| matches!(e, FileError::Invalid(_))),
            ("data", |e| matches!(e, FileError::Invalid(_))),
            ("data/a\0b", |e| matches!(e, FileError::Invalid(_))),
            ("other/x", |e| matches!(e, FileError::Denied(_))),
            ("data/link", |e| matches!(e, FileError::Denied(_))),
            ("data/h.wat", |e| matches!(e, FileError::Denied(_))),
            ("data/H.WASM", |e| matches!(e, FileError::Denied(_))),
            ("data/code.txt", |e| matches!(e, FileError::Denied(_))),
            ("data/wasmlet.toml", |e| matches!(e, FileError::Denied(_))),
            ("data/.env", |e| matches!(e, FileError::Denied(_))),
            ("data/missing", |e| matches!(e, FileError::Absent(_))),
        ];
        for (path, want) in cases {
            let err = m.read_at(path, 0, 10).await.unwrap_err();
            assert!(want(&err), "{path}: {err:?}");
        }
        let none = Mounts::default();
        let err = none.size("data/x").await.unwrap_err();
        assert!(err.to_string().contains("[files] mounts"), "{err}");
    }

    #[tokio::test]
    async fn a_fifo_or_directory_in_a_mount_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(dir.path().join("pipe"))
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let m = mounts(dir.path());
        for path in ["data/pipe", "data/sub"] {
            let err = m.read_at(path, 0, 10).await.unwrap_err();
            assert!(matches!(err, FileError::Invalid(_)), "{path}: {err:?}");
            assert!(err.to_string().contains("not a regular file"), "{err}");
            assert!(matches!(m.size(path).await, Err(FileError::Invalid(_))));
        }
    }

    #[tokio::test]
    async fn operations_past_the_cap_wait_for_a_blocking_thread_to_come_back() {
        let cap = crate::config::MAX_FILE_OPERATIONS;
        let (release, stuck) = std::sync::mpsc::channel::<()>();
        let stuck = std::sync::Arc::new(std::sync::Mutex::new(stuck));
        let mut holders = Vec::new();
        for _ in 0..cap {
            let stuck = stuck.clone();
            holders.push(tokio::spawn(off_worker(move || {
                // Stands for a read stuck in the kernel until released.
                let _ = stuck.lock().unwrap().recv();
                Ok(())
            })));
        }
        let next = tokio::spawn(off_worker(|| Ok(())));
        let waited = tokio::time::timeout(std::time::Duration::from_millis(300), async {
            while !next.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await;
        assert!(
            waited.is_err(),
            "operation {} ran while {cap} held every permit",
            cap + 1
        );
        for _ in 0..cap {
            release.send(()).unwrap();
        }
        for holder in holders {
            holder.await.unwrap().unwrap();
        }
        next.await.unwrap().unwrap();
    }
}
