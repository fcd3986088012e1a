//! Read-only `wasi:filesystem` preopens for a component's `[files]` mounts,
//! WASI 0.2 and 0.3 alike (both read the preopens of one `WasiCtx`): the
//! mount `data` is the directory `/data`, so `std::fs::read("/data/a.csv")`
//! (or `data/a.csv`, the working directory being `/`) reads what a core
//! handler's `file_read("data/a.csv")` does. Without a grant there is no
//! preopen, and every path is "not found".
//!
//! `wasmtime-wasi` serves the files: it refuses writes and anything that
//! leaves the directory (`..`, an absolute path, a symlink pointing out),
//! and runs each operation on tokio's blocking pool. What it does not do is
//! the files capability's refusal of hidden files, handler code and
//! `wasmlet.toml` inside a mount, nor its cap on reads in flight: a
//! component reads everything in the directories it is granted, so grant
//! components data directories only (docs/components.md says so).

use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::component_grants::Grants;

/// Preopens each mount `grants` holds in `wasi`, read-only, as `/NAME`.
pub(crate) fn preopen_mounts(wasi: &mut WasiCtxBuilder, grants: &Grants) {
    for mount in grants.policy.mounts.iter() {
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
