//! `wasi:config/store@0.2.0-rc.1` for components, WASI 0.2 and 0.3 alike:
//! `get` and `get-all` answer from the handler's `[variables]`, the values
//! `var_get` gives a core handler (directory tables merged key by key, a
//! handler's own table over them). As for `var_get`, a variable no table
//! defines is absent (`none`), not an error: there is no grant to miss.
//! `wasmtime-wasi-config` implements the interface; this file hands it the
//! variables, copied once per request and only if the guest asks.

use wasmtime::component::Linker;
use wasmtime_wasi_config::{WasiConfig, WasiConfigVariables};

use super::WasiState;
use super::component_grants::Grants;

/// Defines `wasi:config/store` in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<WasiState>) -> wasmtime::Result<()> {
    wasmtime_wasi_config::add_to_linker(linker, |state| {
        let (grants, _) = state.grants_and_table();
        WasiConfig::new(variables(grants))
    })
}

/// The handler's variables as `wasmtime-wasi-config` takes them.
fn variables(grants: &Grants) -> &WasiConfigVariables {
    grants.config.get_or_init(|| {
        grants
            .policy
            .variables
            .iter()
            .map(|(name, variable)| (name.clone(), variable.value.to_string()))
            .collect()
    })
}
