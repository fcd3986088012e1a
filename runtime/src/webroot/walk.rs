//! The one walk of the web root's tree, for everything that lists it: the
//! handlers `--precompile` and `wasmlet compile` load, the `wasmlet.toml`
//! files of a configuration load, the watcher's picture of the tree.
//!
//! It goes depth first through real directories only: a symlinked directory
//! is reported as an entry but not entered (it could loop, or lead out of
//! the root; what a request reaches through one is found, and contained, by
//! its real path). Hidden names (a leading `.`, or not UTF-8) are skipped
//! with everything below them: nothing there is ever served.

use std::fs::FileType;
use std::path::{Path, PathBuf};

use super::classify::{Class, classify};
use super::contain::contained;

/// One entry the walk found.
#[derive(Debug)]
pub struct Entry {
    /// The entry's path: `dir` given to [`walk`] joined with names on the way.
    pub path: PathBuf,
    /// Its type as the directory listing says, symlinks not followed.
    pub file_type: FileType,
}

/// Calls `visit` for every entry under `dir` (not `dir` itself) that is not
/// hidden and that `skip` does not reject, entering each real directory
/// after visiting it. Unreadable directories are passed over. Blocks.
pub fn walk(dir: &Path, skip: impl Fn(&Path) -> bool, mut visit: impl FnMut(&Entry)) {
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_str().is_none_or(|n| n.starts_with('.')) {
                continue;
            }
            let path = entry.path();
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if skip(&path) {
                continue;
            }
            let entry = Entry { path, file_type };
            visit(&entry);
            if entry.file_type.is_dir() {
                dirs.push(entry.path);
            }
        }
    }
}

/// Every handler file under `root` (canonical) that a request could reach,
/// by real path, sorted: what `wasmlet compile` and `--precompile` load.
/// Skips what the router never serves (hidden entries, build output) and
/// symlinks whose target leaves the root. Blocks.
pub fn handler_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    walk(
        root,
        |_| false,
        |entry| {
            if entry.file_type.is_dir() {
                return;
            }
            // The walk enters only real directories from the canonical
            // root, so a regular file's path is already its real path: only
            // a symlink needs resolving (a `statx` or more per component,
            // which for a thousand handlers was a noticeable share of a
            // `--precompile` start).
            let real = if entry.file_type.is_file() {
                entry.path.clone()
            } else {
                match contained(root, &entry.path) {
                    Some(real) if real.is_file() => real,
                    _ => return,
                }
            };
            let handler = real
                .strip_prefix(root)
                .is_ok_and(|rel| classify(rel) == Class::Handler);
            if handler {
                found.push(real);
            }
        },
    );
    found.sort();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_files_lists_reachable_handlers_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        for file in [
            "a.wat",
            "b.wasm",
            "x.txt",
            "sub/[id].wat",
            ".hidden/h.wat",
            "sub/.h.wat",
        ] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, file).unwrap();
        }
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("o.wat"), "(module)").unwrap();
        std::os::unix::fs::symlink(outside.path().join("o.wat"), root.join("o.wat")).unwrap();
        let files: Vec<String> = handler_files(&root)
            .iter()
            .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
            .collect();
        assert_eq!(files, ["a.wat", "b.wasm", "sub/[id].wat"]);
    }

    #[test]
    fn the_walk_skips_hidden_and_rejected_entries_and_does_not_enter_symlinked_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        for file in ["a/b/c.txt", ".git/x", "skip/y", "a/.h/z"] {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "").unwrap();
        }
        std::os::unix::fs::symlink(&root, root.join("a/loop")).unwrap();
        let mut seen = Vec::new();
        walk(
            &root,
            |path| path.ends_with("skip"),
            |entry| {
                let rel = entry.path.strip_prefix(&root).unwrap();
                seen.push(rel.display().to_string());
            },
        );
        seen.sort();
        assert_eq!(seen, ["a", "a/b", "a/b/c.txt", "a/loop"]);
    }
}
