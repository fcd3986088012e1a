//! The status page (`--status-path`): every handler the server has loaded,
//! the version it serves, where its code came from, and why a newer version
//! did not load. JSON, for people with `curl` and for scripts.

use std::net::SocketAddr;
use std::time::UNIX_EPOCH;

use http::StatusCode;
use http::header::{self, HeaderValue};
use serde::Serialize;

use super::App;
use super::body::ResponseBody;
use super::service::plain;

#[derive(Serialize)]
struct Page<'a> {
    webroot: String,
    requests: u64,
    compiles: u64,
    live_instances: u64,
    handlers: Vec<Entry<'a>>,
}

#[derive(Serialize)]
struct Entry<'a> {
    /// The handler's file, relative to the web root.
    file: String,
    /// `ready`, `loading`, `failed` (never loaded) or `stale` (serving an
    /// older version because the newest one failed).
    state: &'a str,
    /// SHA-256 of the module being served.
    version: Option<&'a str>,
    /// `compiler` or `disk cache`.
    source: Option<&'a str>,
    load_ms: Option<f64>,
    /// Seconds since the Unix epoch.
    loaded_at: Option<u64>,
    last_error: Option<&'a str>,
}

/// Whether `peer` may see the status page: loopback only, unless the operator
/// opened it with `--status-public`.
pub(crate) fn allowed(app: &App, peer: SocketAddr) -> bool {
    app.config.status_public || peer.ip().is_loopback()
}

/// The status page as a response.
pub(crate) fn page(app: &App) -> http::Response<ResponseBody> {
    let statuses = app.loader.status();
    let root = app.router.root();
    let handlers = statuses
        .iter()
        .map(|s| {
            let state = match (&s.serving, s.loading, &s.error) {
                (_, true, _) => "loading",
                (Some(_), false, Some(_)) => "stale",
                (None, false, Some(_)) => "failed",
                _ => "ready",
            };
            Entry {
                file: s
                    .file
                    .strip_prefix(root)
                    .unwrap_or(&s.file)
                    .display()
                    .to_string(),
                state,
                version: s.serving.as_ref().map(|p| p.content_hash.as_str()),
                source: s.serving.as_ref().map(|p| {
                    if p.from_disk_cache {
                        "disk cache"
                    } else {
                        "compiler"
                    }
                }),
                load_ms: s
                    .serving
                    .as_ref()
                    .map(|p| (p.load_ms * 10.0).round() / 10.0),
                loaded_at: s.serving.as_ref().and_then(|p| {
                    p.loaded_at
                        .duration_since(UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_secs())
                }),
                last_error: s.error.as_deref(),
            }
        })
        .collect();
    let page = Page {
        webroot: root.display().to_string(),
        requests: app.stats.requests(),
        compiles: app.stats.compiles(),
        live_instances: app.stats.live_instances(),
        handlers,
    };
    match serde_json::to_vec_pretty(&page) {
        Ok(json) => {
            let mut response = plain(StatusCode::OK, json);
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the status page: {e}\n"),
        ),
    }
}
