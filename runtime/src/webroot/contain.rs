//! Real-path containment: whether a path leads inside the web root once
//! symlinks are resolved. The router asks it of every file it returns; the
//! configuration asks it of caches, data directories and stores (which must
//! stay out), and the watcher of the paths it ignores.

use std::path::{Component, Path, PathBuf};

/// The real path of `file` if it is inside `root` (canonical) and names
/// nothing hidden there: what a request may reach. Blocks (`realpath`).
pub fn contained(root: &Path, file: &Path) -> Option<PathBuf> {
    let real = std::fs::canonicalize(file).ok()?;
    let inside = real.strip_prefix(root).ok()?;
    let hidden = inside
        .components()
        .any(|c| c.as_os_str().to_str().is_none_or(|s| s.starts_with('.')));
    (!hidden).then_some(real)
}

/// Where `path` leads, though it may not exist yet: its longest existing
/// ancestor resolved (symlinks followed), then the rest applied by its text
/// (`.` and `..` included). A cache directory not created yet, or named
/// through a symlink, compares with real paths this way. Blocks.
pub fn real_path(path: &Path) -> PathBuf {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    path.ancestors()
        .find_map(|ancestor| {
            let existing = std::fs::canonicalize(ancestor).ok()?;
            let rest = path.strip_prefix(ancestor).unwrap_or(Path::new(""));
            Some(normalise(existing, rest))
        })
        .unwrap_or_else(|| normalise(PathBuf::new(), &path))
}

/// Whether `path` (which may not exist yet) leads inside `root`
/// (canonical). Blocks.
pub fn inside(path: &Path, root: &Path) -> bool {
    real_path(path).starts_with(root)
}

/// `base` joined with `rest`, whose `.` and `..` are applied by their text.
fn normalise(mut base: PathBuf, rest: &Path) -> PathBuf {
    for component in rest.components() {
        match component {
            Component::ParentDir => {
                base.pop();
            }
            Component::CurDir => {}
            other => base.push(other),
        }
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_through_missing_directories_and_dotdot_is_judged_where_it_will_lead() {
        let base = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(base.path()).unwrap();
        let root = base.join("root");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(base.join("other")).unwrap();
        let inside_root = [
            "root/cache",
            "missing/../root/cache",
            "missing/deeper/../../root/data",
            "other/../root/./data",
            "root/new/../cache",
        ];
        for path in inside_root {
            assert!(inside(&base.join(path), &root), "{path}");
        }
        let outside_root = ["missing/../cache", "root/../cache", "missing/../../root"];
        for path in outside_root {
            assert!(!inside(&base.join(path), &root), "{path}");
        }
        // Through a symlink that exists: its target counts, not its name.
        std::os::unix::fs::symlink(&root, base.join("link")).unwrap();
        assert!(inside(&base.join("link/missing/../cache"), &root));
        assert_eq!(
            real_path(&base.join("link/not-yet/cache")),
            root.join("not-yet/cache")
        );
    }

    #[test]
    fn a_file_is_contained_only_by_its_real_path_and_never_when_hidden() {
        let base = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(base.path()).unwrap();
        let root = base.join("root");
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join("ok.txt"), "").unwrap();
        std::fs::write(root.join(".git/config"), "").unwrap();
        std::fs::write(base.join("secret.txt"), "").unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("leak.txt")).unwrap();
        std::os::unix::fs::symlink(root.join("ok.txt"), root.join("alias.txt")).unwrap();
        assert_eq!(
            contained(&root, &root.join("alias.txt")),
            Some(root.join("ok.txt"))
        );
        assert_eq!(contained(&root, &root.join("leak.txt")), None);
        assert_eq!(contained(&root, &root.join(".git/config")), None);
        assert_eq!(contained(&root, &root.join("missing.txt")), None);
    }
}
