//! `wasmlet check` and `wasmlet compile`: load a whole web root the way the
//! server would, before it serves anything — a deploy step for CI.
//!
//! Every `wasmlet.toml` is read and checked, every handler loaded (filling the
//! disk cache when there is one), and each core handler's capability imports
//! compared with the grants of its directory: an import that can only ever get
//! `DENIED` is a warning, since the handler loads but that code path cannot
//! work. Any configuration or load error makes the run fail.

use std::path::{Path, PathBuf};

use crate::Server;
use crate::site::Policy;

/// What a check found.
#[derive(Debug, Default)]
pub struct Report {
    /// Handlers found in the web root.
    pub handlers: usize,
    /// Handlers compiled now.
    pub compiled: usize,
    /// Handlers whose code came from the disk cache.
    pub cached: usize,
    /// Configuration files read.
    pub config_files: usize,
    /// Errors, one line each: a broken `wasmlet.toml`, a handler that does not
    /// load.
    pub errors: Vec<String>,
    /// Warnings, one line each: imports the configuration never grants.
    pub warnings: Vec<String>,
}

impl Report {
    /// Whether the web root is fit to serve.
    pub fn passed(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A family of capability imports and the grant it needs.
struct Capability {
    /// What the imports' names start with.
    prefix: &'static str,
    /// The `wasmlet.toml` key that grants it, for the warning.
    grant: &'static str,
    /// Whether a policy grants it.
    granted: fn(&Policy) -> bool,
}

const CAPABILITIES: [Capability; 3] = [
    Capability {
        prefix: "http_",
        grant: "[http] allow",
        granted: |policy| policy.http.is_some(),
    },
    Capability {
        prefix: "kv_",
        grant: "[kv] stores",
        granted: |policy| !policy.stores.is_empty(),
    },
    Capability {
        prefix: "file_",
        grant: "[files] mounts",
        granted: |policy| !policy.mounts.is_empty(),
    },
];

/// Checks the web root `server` serves; `progress` is called as each handler
/// finishes loading.
pub async fn check(server: &mut Server, mut progress: impl FnMut(&Path)) -> Report {
    let mut report = Report::default();
    let root = server.config().webroot.clone();
    let relative = |path: &Path| {
        path.strip_prefix(&root)
            .unwrap_or(path)
            .display()
            .to_string()
    };
    // Without a configuration every handler would look ungranted: say the
    // configuration's error, and no warnings.
    let configured = match server.load_site().await {
        Ok(()) => true,
        Err(e) => {
            report.errors.push(e.to_string());
            false
        }
    };
    report.config_files = server.config_files().len();

    let mut loaded: Vec<(PathBuf, Vec<String>)> = Vec::new();
    let precompiled = server
        .precompile(|file, result| {
            progress(file);
            if let Ok(handler) = result {
                loaded.push((file.to_owned(), handler.imports()));
            }
        })
        .await;
    report.compiled = precompiled.compiled;
    report.cached = precompiled.cached;
    report.handlers = precompiled.compiled + precompiled.cached + precompiled.failed.len();
    report.errors.extend(
        precompiled
            .failed
            .iter()
            .map(|(_, error)| error.to_string()),
    );

    loaded.sort();
    for (file, imports) in loaded.into_iter().filter(|_| configured) {
        let policy = server.policy(&file);
        for capability in &CAPABILITIES {
            let Some(import) = imports
                .iter()
                .find(|name| name.starts_with(capability.prefix))
            else {
                continue;
            };
            if !(capability.granted)(&policy) {
                report.warnings.push(format!(
                    "{} imports `{import}`, but no wasmlet.toml at or above its directory \
                     grants {}: every such call returns DENIED",
                    relative(&file),
                    capability.grant
                ));
            }
        }
    }
    report
}
