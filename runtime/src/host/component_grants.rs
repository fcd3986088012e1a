//! What a component's configuration grants it, beyond outbound HTTP: the
//! stores, variables and mounts of its [`Policy`], read by the
//! `wasi:keyvalue`, `wasi:config` and `wasi:filesystem` hosts
//! (`component_kv.rs`, `component_config.rs`, `component_files.rs`).

use std::sync::{Arc, OnceLock};

use wasmtime_wasi_config::WasiConfigVariables;

use crate::request::Identity;
use crate::site::Policy;

/// One request's grants, and who they are for (for the log).
pub(crate) struct Grants {
    pub(crate) who: Identity,
    pub(crate) policy: Arc<Policy>,
    /// The policy's variables as `wasi:config` answers them, made when the
    /// guest first asks.
    pub(crate) config: OnceLock<WasiConfigVariables>,
}

impl Grants {
    /// The grants of `policy`, for `who`.
    pub(crate) fn new(who: Identity, policy: Arc<Policy>) -> Self {
        Self {
            who,
            policy,
            config: OnceLock::new(),
        }
    }
}

impl Grants {
    /// Logs a denial: a grant may be missing, which is the operator's
    /// business (as for a core handler's `DENIED`).
    pub(crate) fn denied(&self, message: &str) {
        tracing::warn!(
            handler = %self.who.handler,
            request_id = %self.who.request_id,
            "denied: {message}"
        );
    }
}
