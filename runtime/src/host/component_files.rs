//! Read-only `wasi:filesystem` preopens for a component's `[files]` mounts,
//! WASI 0.2 and 0.3 alike (both read the preopens of one `WasiCtx`): the
//! mount `data` is the directory `/data`, so `std::fs::read("/data/a.csv")`
//! (or `data/a.csv`, the working directory being `/`) reads what a core
//! handler's `file_read("data/a.csv")` does. Without a grant there is no
//! preopen, and every path is "not found".
//!
//! `wasmtime-wasi` serves the files: it refuses writes and anything that
//! leaves the directory (`..`, an absolute path, a symlink pointing out),
//! and runs each operation on tokio's blocking pool. What it cannot do is
//! the files capability's refusal of hidden files, handler code and
//! `wasmlet.toml` inside a mount, nor its cap on reads in flight. Those
//! files are the web root's, so a mount that is the web root, lies inside
//! it or holds it is not preopened for components at all (a warning says
//! so, once per mount); a mount outside the web root is read whole.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::component_grants::Grants;

/// Mounts already warned about, so a busy component logs its missing
/// mount once, not at every request.
static WARNED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

/// Preopens each mount `grants` holds in `wasi` that lies outside the web
/// root, read-only, as `/NAME`.
pub(crate) fn preopen_mounts(wasi: &mut WasiCtxBuilder, grants: &Grants) {
    for mount in grants.policy.mounts.iter() {
        if mount.overlaps_webroot {
            let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
            if warned.get_or_insert_default().insert(mount.dir.clone()) {
                tracing::warn!(
                    handler = %grants.who.handler,
                    "the `{}` mount ({}) overlaps the web root, where wasi:filesystem could read handler code and wasmlet.toml: components get no /{}; core handlers still read it; move the directory outside the web root to give it to components",
                    mount.name,
                    mount.dir.display(),
                    mount.name
                );
            }
            continue;
        }
        let guest = format!("/{}", mount.name);
        if let Err(e) = wasi.preopened_dir(&mount.dir, &guest, FsPerms::ReadOnly) {
            // The directory was there when the configuration was read; gone
            // now, the component finds no `/NAME`, as a core handler gets
            // `ABSENT`.
            tracing::warn!(
                handler = %grants.who.handler,
                request_id = %grants.who.request_id,
                "the `{}` mount ({}) cannot be opened: {e}; the component gets no {guest}",
                mount.name,
                mount.dir.display()
            );
        }
    }
}
