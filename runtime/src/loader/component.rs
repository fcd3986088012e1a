//! One component file → a ready component [`Handler`]: the check of its
//! imports and exports before anything is compiled (`component_world.rs`),
//! which also tells which `wasi:http` world it serves (0.2's
//! `incoming-handler` or 0.3's `handler`); the disk cache or a compile; and
//! its `ProxyPre` or `ServicePre` (imports resolved against the WASI linker
//! once). Called by `compile.rs` for a `.wasm` (or `.wat`) whose header says
//! component.

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use wasmtime::component::Component;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p3::bindings::ServicePre;

use super::compile::{Toolchain, cached_or_compiled};
use super::component_world::{INCOMING_HANDLER, P3_HANDLER, Serves, World, provided};
use super::disk_cache::DiskCache;
use crate::error::{LoadError, error_text};
use crate::executor::{ComponentHandler, Executor, Handler, P3Handler, Provenance, Tier};

/// The engine the component in `wasm` compiles with, by the world it
/// serves (as `load` picks it); `None` if it serves neither.
pub(super) fn engine_for<'a>(tools: &Toolchain<'a>, wasm: &[u8]) -> Option<&'a wasmtime::Engine> {
    match World::read(wasm).ok()?.check().ok()? {
        Serves::Proxy => Some(tools.engine),
        Serves::Service => Some(tools.p3_engine),
    }
}

/// Loads the component in `wasm`, read from `file` at `started`.
pub(super) fn load(
    tools: &Toolchain<'_>,
    file: &Path,
    wasm: &[u8],
    started: Instant,
) -> Result<Handler, LoadError> {
    let abi = |message: String| LoadError::Abi {
        path: file.to_path_buf(),
        message,
    };
    let serves = World::read(wasm)
        .map_err(|message| LoadError::Compile {
            path: file.to_path_buf(),
            message,
        })?
        .check()
        .map_err(abi)?;
    // Each world has its engine (see `engine`), and so its own cache key:
    // `engine_for` must pick as this does.
    // The baseline tier has no concurrency support: WASI 0.2 only.
    let (engine, linker, baseline) = match serves {
        Serves::Proxy => (
            tools.engine,
            tools.component_linker,
            tools.baseline_for(wasm),
        ),
        Serves::Service => (tools.p3_engine, tools.p3_linker, None),
    };
    let key = DiskCache::key(engine, wasm);
    let (component, from_disk_cache, tier) =
        cached_or_compiled(tools, engine, file, &key, baseline, |engine| {
            Component::new(engine, wasm)
        })?;
    let linker = match (tier, baseline) {
        (Tier::Baseline, Some(baseline)) => baseline.component_linker(),
        _ => linker,
    };
    let pre = linker.instantiate_pre(&component).map_err(|e| {
        abi(format!(
            "{}; a component may import only {}",
            error_text(&e),
            provided()
        ))
    })?;
    let executor: Arc<dyn Executor> = match serves {
        Serves::Proxy => {
            let pre = ProxyPre::new(pre).map_err(|e| {
                abi(format!(
                    "its `{INCOMING_HANDLER}` export does not fit the wasi:http proxy world: {}",
                    error_text(&e)
                ))
            })?;
            Arc::new(ComponentHandler::new(pre))
        }
        Serves::Service => {
            let pre = ServicePre::new(pre).map_err(|e| {
                abi(format!(
                    "its `{P3_HANDLER}` export does not fit the wasi:http@0.3.0 service world: {}",
                    error_text(&e)
                ))
            })?;
            Arc::new(P3Handler::new(pre))
        }
    };
    Ok(Handler {
        executor,
        provenance: Provenance {
            content_hash: key.to_string(),
            from_disk_cache,
            tier,
            load_ms: started.elapsed().as_secs_f64() * 1e3,
            loaded_at: SystemTime::now(),
        },
    })
}
