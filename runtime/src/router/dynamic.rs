//! Dynamic routes: bracketed names (`[id].wat`, `[id]/`, `[...rest].wat`)
//! found in directory listings, matched against the rest of a request path
//! and ranked. A directory's listing is cached while its mtime holds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use super::Router;
use super::table::Probes;
use crate::webroot::HANDLER_EXTENSIONS;

/// Bracketed entries per directory, valid while the directory's mtime is
/// unchanged. Adding, removing or renaming an entry changes the mtime, so
/// one `stat` tells whether the listing is still good and a miss costs one
/// `readdir`, not one per request. Keyed by device and inode, not by the
/// path asked for: symlink loops give a directory endless spellings, and
/// keying by spelling let a client grow the map without bound (found by
/// the fuzzer).
pub(super) type Listings = Mutex<HashMap<(u64, u64), DirListing>>;

#[derive(Debug, Clone)]
pub(super) struct DirListing {
    modified: Option<SystemTime>,
    entries: Vec<DynEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum DynKind {
    /// `[name].wasm` / `[name].wat`: the final segment.
    File,
    /// `[name]/`: any one segment, more path below.
    Dir,
    /// `[...name].wasm`: the rest of the path.
    CatchAll,
}

#[derive(Debug, Clone)]
struct DynEntry {
    /// The file or directory name on disk.
    file_name: String,
    /// The parameter name inside the brackets.
    param: String,
    kind: DynKind,
}

/// A dynamic match on the way to being ranked.
#[derive(Debug)]
pub(super) struct Candidate {
    pub(super) file: PathBuf,
    pub(super) params: Vec<(String, String)>,
    /// One flag per matched segment: was it dynamic? Compared
    /// lexicographically, so a literal earlier in the path wins a tie.
    shape: Vec<bool>,
    catch_all: bool,
}

impl Candidate {
    pub(super) fn rank(&self) -> (bool, usize, &[bool]) {
        let dynamic = self.shape.iter().filter(|d| **d).count();
        (self.catch_all, dynamic, &self.shape)
    }
}

impl Router {
    pub(super) fn collect_dynamic(
        &self,
        dir: &Path,
        rest: &[String],
        params: &mut Vec<(String, String)>,
        shape: &mut Vec<bool>,
        out: &mut Vec<Candidate>,
        probes: &Probes,
    ) {
        let Some((segment, below)) = rest.split_first() else {
            return;
        };
        // A literal handler below a dynamic directory (`[id]/posts.wat`):
        // fully literal paths were already tried as exact matches.
        if below.is_empty()
            && shape.iter().any(|d| *d)
            && let Some(file) = self.handler_at(dir, segment, probes)
        {
            let mut shape = shape.clone();
            shape.push(false);
            out.push(Candidate {
                file,
                params: params.clone(),
                shape,
                catch_all: false,
            });
        }
        let entries = self.listing(dir, probes);
        for entry in &entries {
            let path = dir.join(&entry.file_name);
            match entry.kind {
                DynKind::CatchAll => {
                    let mut params = params.clone();
                    params.push((entry.param.clone(), rest.join("/")));
                    let mut shape = shape.clone();
                    shape.extend(std::iter::repeat_n(true, rest.len()));
                    out.push(Candidate {
                        file: path,
                        params,
                        shape,
                        catch_all: true,
                    });
                }
                DynKind::File if below.is_empty() => {
                    let mut params = params.clone();
                    params.push((entry.param.clone(), segment.clone()));
                    let mut shape = shape.clone();
                    shape.push(true);
                    out.push(Candidate {
                        file: path,
                        params,
                        shape,
                        catch_all: false,
                    });
                }
                DynKind::Dir => {
                    params.push((entry.param.clone(), segment.clone()));
                    shape.push(true);
                    self.descend(&path, below, params, shape, out, probes);
                    params.pop();
                    shape.pop();
                }
                DynKind::File => {}
            }
        }
        // A literal directory on the way can hold dynamic entries below it.
        let literal = dir.join(segment);
        probes.saw(&literal);
        if std::fs::metadata(&literal).is_ok_and(|m| m.is_dir()) {
            shape.push(false);
            self.descend(&literal, below, params, shape, out, probes);
            shape.pop();
        }
    }

    /// Matches what is left below a directory that matched `segment`: its
    /// index handler when nothing is left, else the entries inside it.
    fn descend(
        &self,
        dir: &Path,
        below: &[String],
        params: &mut Vec<(String, String)>,
        shape: &mut Vec<bool>,
        out: &mut Vec<Candidate>,
        probes: &Probes,
    ) {
        if below.is_empty() {
            if shape.iter().any(|d| *d)
                && let Some(file) = self.handler_at(dir, "index", probes)
            {
                out.push(Candidate {
                    file,
                    params: params.clone(),
                    shape: shape.clone(),
                    catch_all: false,
                });
            }
        } else {
            self.collect_dynamic(dir, below, params, shape, out, probes);
        }
    }

    /// The bracketed entries of `dir`, from the cache while its mtime holds.
    fn listing(&self, dir: &Path, probes: &Probes) -> Vec<DynEntry> {
        probes.saw(dir);
        let Ok(meta) = std::fs::metadata(dir) else {
            return Vec::new();
        };
        let modified = meta.modified().ok();
        let key = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        if let Some(cached) = self.dynamic.lock().unwrap().get(&key)
            && cached.modified == modified
            && modified.is_some()
        {
            return cached.entries.clone();
        }
        let entries = read_dynamic_entries(dir);
        self.dynamic.lock().unwrap().insert(
            key,
            DirListing {
                modified,
                entries: entries.clone(),
            },
        );
        entries
    }
}

fn read_dynamic_entries(dir: &Path) -> Vec<DynEntry> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<DynEntry> = read
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file_name = entry.file_name().into_string().ok()?;
            let is_dir = entry.metadata().ok()?.is_dir();
            parse_dynamic_name(&file_name, is_dir).map(|(param, kind)| DynEntry {
                file_name,
                param,
                kind,
            })
        })
        .collect();
    // `.wasm` before `.wat` for the same name, as for literal handlers; the
    // ranking sort is stable, so this order decides exact ties.
    entries.sort_by(|a, b| a.file_name.cmp(&b.file_name));
    entries
}

/// `[id].wasm` → (`id`, File); `[...rest].wat` → (`rest`, CatchAll);
/// directory `[id]` → (`id`, Dir).
fn parse_dynamic_name(name: &str, is_dir: bool) -> Option<(String, DynKind)> {
    let (inner, kind) = if is_dir {
        (name.strip_prefix('[')?.strip_suffix(']')?, DynKind::Dir)
    } else {
        let (stem, ext) = name.rsplit_once('.')?;
        if !HANDLER_EXTENSIONS.contains(&ext) {
            return None;
        }
        let inner = stem.strip_prefix('[')?.strip_suffix(']')?;
        match inner.strip_prefix("...") {
            Some(rest) => (rest, DynKind::CatchAll),
            None => (inner, DynKind::File),
        }
    };
    let valid = !inner.is_empty()
        && inner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    (valid && !(is_dir && inner.starts_with("..."))).then(|| (inner.to_owned(), kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bracketed_names_must_be_identifiers() {
        assert_eq!(
            parse_dynamic_name("[id].wat", false),
            Some(("id".into(), DynKind::File))
        );
        assert_eq!(
            parse_dynamic_name("[...rest].wasm", false),
            Some(("rest".into(), DynKind::CatchAll))
        );
        assert_eq!(
            parse_dynamic_name("[id]", true),
            Some(("id".into(), DynKind::Dir))
        );
        for bad in ["[].wat", "[a b].wat", "[id].txt", "id.wat", "[...].wat"] {
            assert_eq!(parse_dynamic_name(bad, false), None, "{bad}");
        }
        assert_eq!(parse_dynamic_name("[...x]", true), None);
    }
}
