//! One component file → a ready component [`Handler`]: the disk cache or a
//! compile, which `wasi:http` world it serves (told from its exports: 0.2's
//! `incoming-handler` or 0.3's `handler`), and its `ProxyPre` or
//! `ServicePre` (imports resolved against the WASI linker once). Called by
//! `compile.rs` for a `.wasm` (or `.wat`) whose header says component.

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use wasmtime::component::Component;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p3::bindings::ServicePre;

use super::compile::{Toolchain, cached_or_compiled};
use super::disk_cache::DiskCache;
use crate::error::{LoadError, error_text};
use crate::executor::{ComponentHandler, Executor, Handler, P3Handler, Provenance};

/// The interface a component handler exports, without its version.
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";

/// The interface a WASI 0.3 component handler exports, without its version.
const P3_HANDLER: &str = "wasi:http/handler";

/// The `wasi:http` world a component handler serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum World {
    /// WASI 0.2: `wasi:http/incoming-handler@0.2.x` (the proxy world).
    Proxy,
    /// WASI 0.3: `wasi:http/handler@0.3.x` (the service world).
    Service,
}

/// Loads the component in `wasm`, read from `file` at `started`.
pub(super) fn load(
    tools: &Toolchain<'_>,
    file: &Path,
    wasm: &[u8],
    started: Instant,
) -> Result<Handler, LoadError> {
    let key = DiskCache::key(tools.engine, wasm);
    let (component, from_disk_cache) =
        cached_or_compiled(tools, file, &key, || Component::new(tools.engine, wasm))?;
    let abi = |message: String| LoadError::Abi {
        path: file.to_path_buf(),
        message,
    };
    let exports: Vec<String> = component
        .component_type()
        .exports(tools.engine)
        .map(|(name, _)| name.to_owned())
        .collect();
    let world = world_of(&exports).map_err(abi)?;
    let pre = tools
        .component_linker
        .instantiate_pre(&component)
        .map_err(|e| {
            abi(format!(
                "{}; a component handler may import the WASI 0.2 and 0.3 interfaces \
                 (wasi:http, wasi:io, wasi:clocks, wasi:random, wasi:cli, wasi:filesystem, \
                 wasi:sockets) and nothing else",
                error_text(&e)
            ))
        })?;
    let executor: Arc<dyn Executor> = match world {
        World::Proxy => {
            let pre = ProxyPre::new(pre).map_err(|e| {
                abi(format!(
                    "its `{INCOMING_HANDLER}` export does not fit the wasi:http proxy world: {}",
                    error_text(&e)
                ))
            })?;
            Arc::new(ComponentHandler::new(pre))
        }
        World::Service => {
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
            load_ms: started.elapsed().as_secs_f64() * 1e3,
            loaded_at: SystemTime::now(),
        },
    })
}

/// The world a component handler serves, told from its exports: WASI 0.2's
/// `wasi:http/incoming-handler@0.2.x` or WASI 0.3's `wasi:http/handler@0.3.x`.
/// If neither, the message says what it exports instead; a 0.3 release
/// candidate is named as such.
fn world_of(exports: &[String]) -> Result<World, String> {
    let exported = |interface: &str, major_minor: &str| {
        exports.iter().find(|name| {
            name.split_once('@').is_some_and(|(name, version)| {
                name == interface && version.starts_with(major_minor)
            })
        })
    };
    if exported(INCOMING_HANDLER, "0.2.").is_some() {
        return Ok(World::Proxy);
    }
    if let Some(p3) = exported(P3_HANDLER, "0.3.") {
        // `0.3.0-rc-…`: a draft of WASI 0.3 whose types differ from 0.3.0's.
        if p3.contains('-') {
            return Err(format!(
                "is built for a WASI 0.3 release candidate (it exports `{p3}`); wasmlet serves \
                 WASI 0.3.0 components (`{P3_HANDLER}@0.3.0`) and WASI 0.2 ones: rebuild it with \
                 a current toolchain (spin-sdk 7, or wasip3 0.7)"
            ));
        }
        return Ok(World::Service);
    }
    let listed = if exports.is_empty() {
        "nothing".to_owned()
    } else {
        exports
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(format!(
        "is a component that exports {listed}, but a component handler must export \
         `{INCOMING_HANDLER}@0.2.x` (WASI 0.2, as `wasmtime serve` runs it) or \
         `{P3_HANDLER}@0.3.x` (WASI 0.3)"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn any_wasi_0_2_incoming_handler_is_accepted() {
        for version in ["0.2.0", "0.2.6", "0.2.12"] {
            let exports = names(&[
                "wasi:cli/run@0.2.0",
                &format!("wasi:http/incoming-handler@{version}"),
            ]);
            assert_eq!(world_of(&exports), Ok(World::Proxy), "{version}");
        }
    }

    #[test]
    fn a_component_without_the_handler_is_told_what_it_exports_and_what_is_expected() {
        let error = world_of(&names(&["wasi:cli/run@0.2.0", "answer"])).unwrap_err();
        assert!(
            error.contains("exports `wasi:cli/run@0.2.0`, `answer`"),
            "{error}"
        );
        assert!(
            error.contains("must export `wasi:http/incoming-handler@0.2.x` (WASI 0.2"),
            "{error}"
        );
        let error = world_of(&[]).unwrap_err();
        assert!(error.contains("exports nothing"), "{error}");
        let error = world_of(&names(&["wasi:http/incoming-handler@1.0.0"])).unwrap_err();
        assert!(error.contains("must export"), "{error}");
    }

    #[test]
    fn a_wasi_0_3_handler_is_served_and_a_release_candidate_is_named_as_such() {
        let exports = names(&["wasi:http/handler@0.3.0"]);
        assert_eq!(world_of(&exports), Ok(World::Service));
        let error = world_of(&names(&["wasi:http/handler@0.3.0-rc-2025-09-16"])).unwrap_err();
        assert!(
            error.contains("is built for a WASI 0.3 release candidate"),
            "{error}"
        );
        assert!(error.contains("rebuild it"), "{error}");
    }
}
