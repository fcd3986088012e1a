//! One component file → a ready component [`Handler`]: the disk cache or a
//! compile, the check that it serves `wasi:http/incoming-handler`, and its
//! `ProxyPre` (imports resolved against the WASI linker once). Called by
//! `compile.rs` for a `.wasm` (or `.wat`) whose header says component.

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use wasmtime::component::Component;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use super::compile::{Toolchain, cached_or_compiled};
use super::disk_cache::DiskCache;
use crate::error::{LoadError, error_text};
use crate::executor::{ComponentHandler, Handler, Provenance};

/// The interface a component handler exports, without its version.
const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";

/// The WASI 0.3 handler interface, named in the refusal of a 0.3 component.
const P3_HANDLER: &str = "wasi:http/handler";

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
    check_exports(&exports).map_err(abi)?;
    let pre = tools
        .component_linker
        .instantiate_pre(&component)
        .map_err(|e| {
            abi(format!(
                "{}; a component handler may import the WASI 0.2 interfaces (wasi:http, \
                 wasi:io, wasi:clocks, wasi:random, wasi:cli, wasi:filesystem, wasi:sockets) \
                 and nothing else",
                error_text(&e)
            ))
        })?;
    let pre = ProxyPre::new(pre).map_err(|e| {
        abi(format!(
            "its `{INCOMING_HANDLER}` export does not fit the wasi:http proxy world: {}",
            error_text(&e)
        ))
    })?;
    Ok(Handler {
        executor: Arc::new(ComponentHandler::new(pre)),
        provenance: Provenance {
            content_hash: key.to_string(),
            from_disk_cache,
            load_ms: started.elapsed().as_secs_f64() * 1e3,
            loaded_at: SystemTime::now(),
        },
    })
}

/// A component handler must export `wasi:http/incoming-handler@0.2.x`; if it
/// does not, the message says what it exports instead.
fn check_exports(exports: &[String]) -> Result<(), String> {
    let exported = |interface: &str, major_minor: &str| {
        exports.iter().find(|name| {
            name.split_once('@').is_some_and(|(name, version)| {
                name == interface && version.starts_with(major_minor)
            })
        })
    };
    if exported(INCOMING_HANDLER, "0.2.").is_some() {
        return Ok(());
    }
    if let Some(p3) = exported(P3_HANDLER, "0.3.") {
        return Err(format!(
            "is a WASI 0.3 component (it exports `{p3}`); wasmlet serves WASI 0.2 components, \
             which export `{INCOMING_HANDLER}@0.2.x`: build it for WASI 0.2 (wasm32-wasip2)"
        ));
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
         `{INCOMING_HANDLER}@0.2.x` (the wasi:http proxy world, as `wasmtime serve` runs it)"
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
            assert_eq!(check_exports(&exports), Ok(()), "{version}");
        }
    }

    #[test]
    fn a_component_without_the_handler_is_told_what_it_exports_and_what_is_expected() {
        let error = check_exports(&names(&["wasi:cli/run@0.2.0", "answer"])).unwrap_err();
        assert!(
            error.contains("exports `wasi:cli/run@0.2.0`, `answer`"),
            "{error}"
        );
        assert!(
            error.contains("must export `wasi:http/incoming-handler@0.2.x`"),
            "{error}"
        );
        let error = check_exports(&[]).unwrap_err();
        assert!(error.contains("exports nothing"), "{error}");
        let error = check_exports(&names(&["wasi:http/incoming-handler@1.0.0"])).unwrap_err();
        assert!(error.contains("must export"), "{error}");
    }

    #[test]
    fn a_wasi_0_3_handler_is_named_as_such() {
        let error = check_exports(&names(&["wasi:http/handler@0.3.0-rc-2025-09-16"])).unwrap_err();
        assert!(error.contains("is a WASI 0.3 component"), "{error}");
    }
}
