//! Read-only file access for handlers, through named mounts that a
//! `wasmlet.toml` grants (`[files] mounts = { data = "data" }`).
//!
//! A guest names a file as `<mount>/<path inside it>`. Nothing else is
//! reachable: the path is checked by its text first (no `..`, no absolute
//! path, no hidden component), then by its real location after symlinks
//! (still inside the mount), and handler files and configuration files are
//! refused even inside a mount, so a grant can never leak a handler's code.
//! Reads go through `tokio::fs`, which runs them on blocking threads: a slow
//! disk never stalls a worker.

use std::io::SeekFrom;
use std::path::{Component, Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::router::CONFIG_FILE;

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

    /// The real path of the guest's `path`, if it names a readable file.
    pub async fn resolve(&self, path: &str) -> Result<PathBuf, FileError> {
        let (mount, inside) = self.split(path)?;
        let joined = mount.dir.join(inside);
        let real = match tokio::fs::canonicalize(&joined).await {
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
/// real name (a symlink called `notes.txt` may point at a handler).
fn check_readable(path: &str, rel: &Path) -> Result<(), FileError> {
    let hidden = rel
        .components()
        .any(|c| c.as_os_str().to_str().is_none_or(|s| s.starts_with('.')));
    if hidden {
        return Err(FileError::Denied(format!(
            "`{path}` is a hidden file, which is never readable"
        )));
    }
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let handler = Path::new(name)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("wasm") || e.eq_ignore_ascii_case("wat"));
    if handler || name == CONFIG_FILE {
        return Err(FileError::Denied(format!(
            "`{path}` is a handler or configuration file, which handlers may never read"
        )));
    }
    Ok(())
}

/// The size of the file at `real` (from [`Mounts::resolve`]).
pub async fn size(path: &str, real: &Path) -> Result<u64, FileError> {
    let meta = tokio::fs::metadata(real)
        .await
        .map_err(|e| FileError::Failed(format!("`{path}`: {e}")))?;
    if !meta.is_file() {
        return Err(FileError::Invalid(format!("`{path}` is not a file")));
    }
    Ok(meta.len())
}

/// Up to `len` bytes (at most [`MAX_READ`]) of the file at `real`, from
/// `offset`; empty at or past the end.
pub async fn read_at(
    path: &str,
    real: &Path,
    offset: u64,
    len: usize,
) -> Result<Vec<u8>, FileError> {
    let failed = |e: std::io::Error| FileError::Failed(format!("`{path}`: {e}"));
    let mut file = tokio::fs::File::open(real).await.map_err(failed)?;
    let meta = file.metadata().await.map_err(failed)?;
    if !meta.is_file() {
        return Err(FileError::Invalid(format!("`{path}` is not a file")));
    }
    let want = len
        .min(MAX_READ)
        .min(usize::try_from(meta.len().saturating_sub(offset)).unwrap_or(usize::MAX));
    let mut out = vec![0; want];
    if want == 0 {
        return Ok(out);
    }
    file.seek(SeekFrom::Start(offset)).await.map_err(failed)?;
    let mut filled = 0;
    // A file that shrinks while being read ends the read early, short.
    while filled < want {
        let n = file.read(&mut out[filled..]).await.map_err(failed)?;
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
        let real = m.resolve("data/sub/a.txt").await.unwrap();
        assert_eq!(size("x", &real).await.unwrap(), 11);
        assert_eq!(read_at("x", &real, 0, 5).await.unwrap(), b"hello");
        assert_eq!(read_at("x", &real, 6, 100).await.unwrap(), b"world");
        assert!(read_at("x", &real, 11, 5).await.unwrap().is_empty());
        assert!(read_at("x", &real, 500, 5).await.unwrap().is_empty());
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
            let err = m.resolve(path).await.unwrap_err();
            assert!(want(&err), "{path}: {err:?}");
        }
        let none = Mounts::default();
        let err = none.resolve("data/x").await.unwrap_err();
        assert!(err.to_string().contains("[files] mounts"), "{err}");
    }
}
