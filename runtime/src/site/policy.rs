//! What one handler may do and the limits it runs under: a [`Policy`],
//! built from the merged settings of the `wasmlet.toml` files above it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::file::{Settings, Variable};
use super::{
    DEFAULT_INSTANCE_CONCURRENCY, DEFAULT_MAX_REQUESTS, DEFAULT_POOL_IDLE, DEFAULT_POOL_SIZE, Site,
    SiteError,
};
use crate::capability::files::{Mount, Mounts};
use crate::capability::http::{HttpClient, HttpSettings};
use crate::capability::kv::Store;
use crate::config::Config;
use crate::webroot::inside;

/// Instance reuse for one handler (`[instances]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstancePolicy {
    /// Serve requests from a pool of warm instances instead of a fresh
    /// instance per request.
    pub reuse: bool,
    /// Most warm instances kept.
    pub pool_size: u32,
    /// How long an unused warm instance is kept.
    pub idle_timeout: Duration,
    /// Requests one instance serves before it is retired.
    pub max_requests: u32,
    /// Requests one WASI 0.3 instance serves at once (other kinds serve one
    /// at a time).
    pub concurrency: u32,
}

/// Everything one handler may do and the limits it runs under: the merged
/// settings of every `wasmlet.toml` from the web root down to its directory,
/// and its own `[handlers."…"]` table.
pub struct Policy {
    /// Wall-clock limit for one request.
    pub request_timeout: Duration,
    /// Largest linear memory of one instance, in bytes.
    pub max_memory: u64,
    /// Most concurrent executions of this handler, if capped.
    pub max_concurrency: Option<u32>,
    /// The outbound HTTP client, or `None` when no host is granted.
    pub http: Option<HttpClient>,
    /// The stores granted, by name.
    pub stores: BTreeMap<String, Store>,
    /// The directories granted for reading.
    pub mounts: Mounts,
    /// Instance reuse.
    pub instances: InstancePolicy,
    /// `[variables]`, by name, for `var_get`.
    pub variables: Arc<BTreeMap<String, Variable>>,
    /// The configuration files that shaped this policy, root first; named in
    /// the messages a guest gets when something is denied.
    pub sources: Vec<PathBuf>,
}

impl Policy {
    /// The policy where no `wasmlet.toml` applies: the server's limits and
    /// nothing granted.
    pub(super) fn deny_all(config: &Config) -> Self {
        Self {
            request_timeout: config.request_timeout,
            max_memory: config.max_memory,
            max_concurrency: None,
            http: None,
            stores: BTreeMap::new(),
            mounts: Mounts::default(),
            instances: InstancePolicy {
                reuse: false,
                pool_size: DEFAULT_POOL_SIZE,
                idle_timeout: DEFAULT_POOL_IDLE,
                max_requests: DEFAULT_MAX_REQUESTS,
                concurrency: DEFAULT_INSTANCE_CONCURRENCY,
            },
            variables: Arc::default(),
            sources: Vec::new(),
        }
    }

    /// Where to look to grant something, for a denial message.
    pub fn grant_hint(&self, section: &str) -> String {
        match self.sources.last() {
            Some(file) => format!("grant it with {section} in {}", file.display()),
            None => format!(
                "grant it with {section} in a wasmlet.toml in the handler's directory or above"
            ),
        }
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("request_timeout", &self.request_timeout)
            .field("max_memory", &self.max_memory)
            .field("max_concurrency", &self.max_concurrency)
            .field("http", &self.http.as_ref().map(|c| &c.settings().allow))
            .field("stores", &self.stores.keys().collect::<Vec<_>>())
            .field("mounts", &self.mounts)
            .field("instances", &self.instances)
            .field("variables", &self.variables)
            .field("sources", &self.sources)
            .finish()
    }
}

impl Site {
    /// The policy `s` gives, from the `wasmlet.toml` files `sources` (the
    /// last, `file`, is named in errors).
    pub(super) fn policy_from(
        &self,
        config: &Config,
        s: &Settings,
        sources: &[PathBuf],
        file: &Path,
    ) -> Result<Policy, SiteError> {
        let fail = |key: &str, message: String| SiteError {
            file: file.to_owned(),
            line: 0,
            column: 0,
            key: Some(key.to_owned()),
            message,
        };
        let defaults = HttpSettings::default();
        let http = match &s.http.allow {
            Some((rules, _)) if !rules.is_empty() => {
                let settings = HttpSettings {
                    allow: rules.clone(),
                    allow_private: s.http.allow_private.unwrap_or(defaults.allow_private),
                    timeout: s.http.timeout.unwrap_or(defaults.timeout),
                    connect_timeout: s.http.connect_timeout.unwrap_or(defaults.connect_timeout),
                    max_response_size: s
                        .http
                        .max_response_size
                        .unwrap_or(defaults.max_response_size),
                    max_redirects: s.http.max_redirects.unwrap_or(defaults.max_redirects),
                    ca_pem: s.http.ca_pem.clone(),
                };
                Some(HttpClient::new(settings).map_err(|e| fail("http", e.to_string()))?)
            }
            _ => None,
        };
        let stores =
            s.kv.stores
                .iter()
                .flatten()
                .filter_map(|name| {
                    self.stores
                        .get(name)
                        .map(|(_, store)| (name.clone(), store.clone()))
                })
                .collect();
        let mut mounts = Vec::new();
        for (name, dir) in s.files.mounts.iter().flatten() {
            let real = std::fs::canonicalize(dir).map_err(|e| {
                fail(
                    "files.mounts",
                    format!(
                        "mount `{name}`: {} cannot be used: {e}; create the directory or fix the path",
                        dir.display()
                    ),
                )
            })?;
            if !real.is_dir() {
                return Err(fail(
                    "files.mounts",
                    format!("mount `{name}`: {} is not a directory", dir.display()),
                ));
            }
            let overlaps_webroot = inside(&real, &config.webroot) || inside(&config.webroot, &real);
            mounts.push(Mount {
                name: name.clone(),
                dir: real,
                overlaps_webroot,
            });
        }
        for (name, variable) in &s.variables {
            if let Some(path) = &variable.file
                && inside(path, &config.webroot)
            {
                return Err(fail(
                    &format!("variables.{name}"),
                    format!(
                        "{} is inside the web root, where it could be downloaded; keep it outside",
                        path.display()
                    ),
                ));
            }
        }
        if let Some(m) = s.limits.max_memory
            && m > config.max_memory
        {
            return Err(fail(
                "limits.max-memory",
                format!(
                    "{m} bytes is more than the server's --max-memory ({} bytes); a directory may only lower it",
                    config.max_memory
                ),
            ));
        }
        Ok(Policy {
            request_timeout: s.limits.request_timeout.unwrap_or(config.request_timeout),
            max_memory: s.limits.max_memory.unwrap_or(config.max_memory),
            max_concurrency: s.limits.max_concurrency,
            http,
            stores,
            mounts: Mounts::new(mounts),
            instances: InstancePolicy {
                reuse: s.instances.reuse.unwrap_or(false),
                pool_size: s.instances.pool_size.unwrap_or(DEFAULT_POOL_SIZE),
                idle_timeout: s.instances.idle_timeout.unwrap_or(DEFAULT_POOL_IDLE),
                max_requests: s.instances.max_requests.unwrap_or(DEFAULT_MAX_REQUESTS),
                concurrency: s
                    .instances
                    .concurrency
                    .unwrap_or(DEFAULT_INSTANCE_CONCURRENCY),
            },
            variables: Arc::new(s.variables.clone()),
            sources: sources.to_vec(),
        })
    }
}
