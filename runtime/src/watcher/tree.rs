//! The watcher's picture of the tree, and how two looks at it differ: every
//! directory, and every handler and configuration file with its
//! [`Version`]. Looking rather than trusting event kinds is what makes the
//! awkward cases come out right: a rename is a removal under the old name
//! and a change under the new one, a directory moved in is every handler
//! inside it, and a directory removed is every handler it held plus the
//! directory itself.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::{Change, ChangeKind};
use crate::webroot::{Class, Version, Withheld, classify as web_class, walk};

/// What the filtering rules make of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PathKind {
    /// A handler file (`.wasm`, `.wat`), as the web root's rule says.
    Handler,
    /// A `wasmlet.toml`.
    Config,
    /// Anything else not ignored: a directory, or a file nobody asked about.
    Other,
}

/// The filtering rules, without touching the disk. `None` means ignored:
/// outside `root`, under an `ignore` path, hidden by the web root's rule
/// (a dot-name on the way, or a name that is not UTF-8), or an editor's
/// temporary file.
fn classify(root: &Path, path: &Path, ignore: &[PathBuf]) -> Option<PathKind> {
    let rel = path.strip_prefix(root).ok()?;
    if ignore.iter().any(|dir| path.starts_with(dir)) {
        return None;
    }
    let Some(name) = rel.file_name() else {
        return Some(PathKind::Other);
    };
    if name.to_str().is_some_and(is_editor_temp) {
        return None;
    }
    Some(match web_class(rel) {
        Class::Withheld(Withheld::Hidden) => return None,
        Class::Handler => PathKind::Handler,
        Class::Withheld(Withheld::Config) => PathKind::Config,
        _ => PathKind::Other,
    })
}

/// Swap, backup and lock files of vim and emacs, vim's `4913` probe, and the
/// `*.tmp` many tools write before renaming into place. Dot-prefixed ones
/// (`.a.wat.swp`, `.#a.wat`) are already hidden.
fn is_editor_temp(name: &str) -> bool {
    name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name.ends_with('~')
        || name == "4913"
        || (name.len() > 1 && name.starts_with('#') && name.ends_with('#'))
}

/// What the watcher last saw at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Node {
    Handler(Version),
    Config(Version),
    /// The inode tells a directory swapped in under the same name.
    Dir {
        inode: u64,
    },
}

/// A path whose node differs between two looks: (path, was, now).
pub(super) type Diff = (PathBuf, Option<Node>, Option<Node>);

/// The watcher's picture of the tree.
pub(super) struct Tree {
    pub(super) root: PathBuf,
    ignore: Vec<PathBuf>,
    /// Ordered by path, so a directory's subtree is one contiguous range.
    pub(super) nodes: BTreeMap<PathBuf, Node>,
}

impl Tree {
    pub(super) fn new(root: PathBuf, ignore: Vec<PathBuf>) -> Self {
        let mut tree = Self {
            root,
            ignore,
            nodes: BTreeMap::new(),
        };
        tree.nodes = tree.look(&tree.root);
        tree
    }

    /// Looks at `path` and everything under it again, replacing that part of
    /// the picture, and returns the differences.
    pub(super) fn refresh(&mut self, path: &Path) -> Vec<Diff> {
        let fresh = self.look(path);
        let old_paths: Vec<PathBuf> = self
            .nodes
            .range::<Path, _>((Bound::Included(path), Bound::Unbounded))
            .take_while(|(p, _)| p.starts_with(path))
            .map(|(p, _)| p.clone())
            .collect();
        let old: BTreeMap<PathBuf, Node> = old_paths
            .into_iter()
            .filter_map(|p| self.nodes.remove_entry(&p))
            .collect();
        let mut diffs = Vec::new();
        for (old_path, was) in &old {
            let now = fresh.get(old_path).copied();
            if Some(*was) != now {
                diffs.push((old_path.clone(), Some(*was), now));
            }
        }
        for (new_path, now) in &fresh {
            if !old.contains_key(new_path) {
                diffs.push((new_path.clone(), None, Some(*now)));
            }
        }
        self.nodes.extend(fresh);
        diffs
    }

    /// What is at `path` and under it now.
    fn look(&self, path: &Path) -> BTreeMap<PathBuf, Node> {
        let mut found = BTreeMap::new();
        if let Some(kind) = classify(&self.root, path, &self.ignore) {
            self.look_into(path, kind, &mut found);
        }
        found
    }

    fn look_into(&self, path: &Path, kind: PathKind, found: &mut BTreeMap<PathBuf, Node>) {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return;
        };
        if !meta.is_dir() {
            if let Some(node) = file_node(kind, &meta) {
                found.insert(path.to_owned(), node);
            }
            return;
        }
        found.insert(path.to_owned(), Node::Dir { inode: meta.ino() });
        let rejected = |child: &Path| classify(&self.root, child, &self.ignore).is_none();
        walk(path, rejected, |entry| {
            let Some(kind) = classify(&self.root, &entry.path, &self.ignore) else {
                return;
            };
            // Static files are most of a web root: `readdir` already says
            // they are not directories, so they cost no `stat` each.
            if kind == PathKind::Other && !entry.file_type.is_dir() {
                return;
            }
            let Ok(meta) = std::fs::symlink_metadata(&entry.path) else {
                return;
            };
            let node = if meta.is_dir() {
                Some(Node::Dir { inode: meta.ino() })
            } else {
                file_node(kind, &meta)
            };
            if let Some(node) = node {
                found.insert(entry.path.clone(), node);
            }
        });
    }
}

/// The node of a file (not a directory) of `kind`, if the watcher keeps one.
fn file_node(kind: PathKind, meta: &std::fs::Metadata) -> Option<Node> {
    match kind {
        PathKind::Handler => Some(Node::Handler(Version::of(meta))),
        PathKind::Config => Some(Node::Config(Version::of(meta))),
        PathKind::Other => None,
    }
}
/// Turns differences into a batch: one change per path, in
/// [`ChangeKind`] order, then by path.
pub(super) fn batch(diffs: impl IntoIterator<Item = Diff>) -> Vec<Change> {
    let by_path: BTreeMap<PathBuf, ChangeKind> = diffs
        .into_iter()
        .filter_map(|(path, was, now)| Some((path, change_kind(was, now)?)))
        .collect();
    let mut changes: Vec<Change> = by_path
        .into_iter()
        .map(|(path, kind)| Change { path, kind })
        .collect();
    changes.sort_by(|a, b| (a.kind, &a.path).cmp(&(b.kind, &b.path)));
    changes
}

/// What a path going from `was` to `now` is reported as, if anything.
fn change_kind(was: Option<Node>, now: Option<Node>) -> Option<ChangeKind> {
    if was == now {
        return None;
    }
    Some(match (was, now) {
        (_, Some(Node::Handler(_))) => ChangeKind::Changed,
        (_, Some(Node::Config(_))) | (Some(Node::Config(_)), _) => ChangeKind::Config,
        (Some(Node::Handler(_)), _) | (Some(Node::Dir { .. }), None) => ChangeKind::Removed,
        // A directory appearing or being replaced: its entries speak for it.
        (_, Some(Node::Dir { .. })) | (None, None) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use ChangeKind::{Changed, Config, Removed};

    #[test]
    fn the_rules_decide_which_paths_are_handlers_config_or_ignored() {
        let root = Path::new("/srv/www");
        let ignore = [
            PathBuf::from("/srv/www/.cache"),
            PathBuf::from("/srv/www/cache"),
            PathBuf::from("/var/cache/wasmlet"),
        ];
        let table = [
            ("/srv/www", Some(PathKind::Other)),
            ("/srv/www/a.wat", Some(PathKind::Handler)),
            ("/srv/www/a.wasm", Some(PathKind::Handler)),
            ("/srv/www/api/v1/[id].wasm", Some(PathKind::Handler)),
            ("/srv/www/x.tar.wat", Some(PathKind::Handler)),
            ("/srv/www/wasmlet.toml", Some(PathKind::Config)),
            ("/srv/www/api/wasmlet.toml", Some(PathKind::Config)),
            ("/srv/www/api", Some(PathKind::Other)),
            ("/srv/www/style.css", Some(PathKind::Other)),
            ("/srv/www/a.WAT", Some(PathKind::Other)),
            ("/srv/www/a.wat.bak", Some(PathKind::Other)),
            ("/srv/www/tmp/a.wat", Some(PathKind::Handler)),
            ("/srv/www/a.tmp.d/a.wat", Some(PathKind::Handler)),
            // Outside the root, or under an ignored path.
            ("/srv/a.wat", None),
            ("/srv/www2/a.wat", None),
            ("/srv/www/cache", None),
            ("/srv/www/cache/ab/cd.wasm", None),
            ("/var/cache/wasmlet/a.wat", None),
            ("/srv/www/cachet/a.wat", Some(PathKind::Handler)),
            // Dot-names anywhere on the way.
            ("/srv/www/.a.wat", None),
            ("/srv/www/.git", None),
            ("/srv/www/.git/hooks/a.wasm", None),
            ("/srv/www/api/.well-known/x.wat", None),
            ("/srv/www/.#a.wat", None),
            ("/srv/www/.a.wat.swp", None),
            ("/srv/www/.wasmlet.toml", None),
            // Editor temporary files.
            ("/srv/www/a.wat.swp", None),
            ("/srv/www/a.wat.swx", None),
            ("/srv/www/a.wat~", None),
            ("/srv/www/wasmlet.toml~", None),
            ("/srv/www/#a.wat#", None),
            ("/srv/www/api/4913", None),
            ("/srv/www/a.wat.tmp", None),
            ("/srv/www/#", Some(PathKind::Other)),
            ("/srv/www/49134", Some(PathKind::Other)),
        ];
        for (path, want) in table {
            assert_eq!(classify(root, Path::new(path), &ignore), want, "{path}");
        }
        // The router hides names that are not UTF-8; so does the watcher.
        let not_utf8 =
            <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b"/srv/www/\xff.wat");
        assert_eq!(classify(root, Path::new(not_utf8), &ignore), None);
    }

    #[test]
    fn how_a_path_changed_decides_what_is_reported() {
        let v = |len| Version {
            len,
            modified: None,
            changed: (0, 0),
            inode: 1,
        };
        let (h1, h2) = (Node::Handler(v(1)), Node::Handler(v(2)));
        let (c1, c2) = (Node::Config(v(1)), Node::Config(v(2)));
        let (d1, d2) = (Node::Dir { inode: 1 }, Node::Dir { inode: 2 });
        let table = [
            (None, Some(h1), Some(Changed)),
            (Some(h1), Some(h2), Some(Changed)),
            (Some(h1), Some(h1), None),
            (Some(h1), None, Some(Removed)),
            (Some(h1), Some(d1), Some(Removed)),
            (Some(d1), Some(h1), Some(Changed)),
            (None, Some(c1), Some(Config)),
            (Some(c1), Some(c2), Some(Config)),
            (Some(c1), None, Some(Config)),
            (Some(d1), None, Some(Removed)),
            (None, Some(d1), None),
            (Some(d1), Some(d2), None),
            (None, None, None),
        ];
        for (was, now, want) in table {
            assert_eq!(change_kind(was, now), want, "{was:?} -> {now:?}");
        }
    }

    #[test]
    fn a_batch_lists_each_path_once_removals_first() {
        let h = Node::Handler(Version {
            len: 1,
            modified: None,
            changed: (0, 0),
            inode: 1,
        });
        let c = Node::Config(Version {
            len: 1,
            modified: None,
            changed: (0, 0),
            inode: 2,
        });
        let diffs = vec![
            (PathBuf::from("/w/a.wat"), None, Some(h)),
            (PathBuf::from("/w/z"), Some(Node::Dir { inode: 3 }), None),
            (PathBuf::from("/w/wasmlet.toml"), None, Some(c)),
            (PathBuf::from("/w/b.wat"), Some(h), None),
            (PathBuf::from("/w/a.wat"), None, Some(h)),
        ];
        let got: Vec<(ChangeKind, PathBuf)> =
            batch(diffs).into_iter().map(|c| (c.kind, c.path)).collect();
        assert_eq!(
            got,
            [
                (Removed, PathBuf::from("/w/b.wat")),
                (Removed, PathBuf::from("/w/z")),
                (Config, PathBuf::from("/w/wasmlet.toml")),
                (Changed, PathBuf::from("/w/a.wat")),
            ]
        );
    }
}
