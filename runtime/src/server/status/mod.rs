//! The status page: every handler in the web root (loaded or not), its
//! state, the version it serves, its requests, errors, traps, timeouts,
//! latency, live instances and last error; the server's uptime and versions.
//! JSON for people with `curl` and for scripts (`--status-path` on the main
//! listener, `/status.json` on the admin one), and an HTML page for a browser
//! (`/status` on the admin listener, which `/` leads to; see `html.rs`).
//!
//! The work per view is bounded: the web root is walked at most once every
//! [`WALK_INTERVAL`] however many pages are open, on a blocking thread, and
//! at most [`MAX_LISTED`] handlers are listed, failing ones first.

mod html;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http::StatusCode;
use http::header::{self, HeaderValue};
use serde::Serialize;

use super::App;
use super::body::ResponseBody;
use super::service::plain;
use crate::loader::{HandlerStatus, Tier};
use crate::router::handler_url;
use crate::stats::HandlerNumbers;
use crate::webroot::handler_files;

/// Most handlers a page lists; the rest are counted ("and N more").
pub(crate) const MAX_LISTED: usize = 200;

/// How long one walk of the web root serves page views.
const WALK_INTERVAL: Duration = Duration::from_secs(2);

/// How a handler stands, as the page and `wasmlet_handlers` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// No version loaded, and the newest failed.
    Failed,
    /// An older version serves because the newest failed.
    Stale,
    /// The newest version is loading.
    Loading,
    /// The newest version serves.
    Ready,
    /// In the web root, and no request or watcher event has loaded it yet.
    NotLoaded,
}

impl State {
    fn of(status: &HandlerStatus) -> Self {
        match (&status.serving, status.loading, &status.error) {
            (_, true, _) => State::Loading,
            (Some(_), false, Some(_)) => State::Stale,
            (None, false, Some(_)) => State::Failed,
            _ => State::Ready,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            State::Failed => "failed",
            State::Stale => "stale",
            State::Loading => "loading",
            State::Ready => "ready",
            State::NotLoaded => "not loaded",
        }
    }
}

/// The web root's handler files, walked at most once per [`WALK_INTERVAL`]:
/// views that arrive during a walk wait for it rather than start their own.
#[derive(Default)]
pub(crate) struct HandlerFiles(tokio::sync::Mutex<Option<Walk>>);

/// One walk of a web root.
struct Walk {
    at: Instant,
    root: PathBuf,
    files: Arc<Vec<PathBuf>>,
}

impl HandlerFiles {
    /// The handler files under `root`, from a walk at most
    /// [`WALK_INTERVAL`] old.
    async fn under(&self, root: &Path) -> Arc<Vec<PathBuf>> {
        let mut last = self.0.lock().await;
        if let Some(walk) = &*last
            && walk.at.elapsed() < WALK_INTERVAL
            && walk.root == root
        {
            return walk.files.clone();
        }
        let owned = root.to_path_buf();
        let files = tokio::task::spawn_blocking(move || handler_files(&owned))
            .await
            .map(Arc::new)
            .unwrap_or_default();
        *last = Some(Walk {
            at: Instant::now(),
            root: root.to_path_buf(),
            files: files.clone(),
        });
        files
    }
}

#[derive(Serialize)]
struct Page {
    /// wasmlet's version.
    version: &'static str,
    /// The wasmtime version it runs guests with.
    wasmtime: &'static str,
    uptime_seconds: u64,
    webroot: String,
    requests: u64,
    in_flight: u64,
    compiles: u64,
    live_instances: u64,
    /// Handlers by state, all of them, listed or not.
    states: BTreeMap<&'static str, usize>,
    /// At most [`MAX_LISTED`], failing ones first.
    handlers: Vec<Entry>,
    /// Handlers not listed.
    unlisted: usize,
}

#[derive(Serialize)]
struct Entry {
    /// The handler's file, relative to the web root.
    file: String,
    /// The URL path it answers at.
    url: String,
    /// `ready`, `loading`, `failed` (never loaded), `stale` (serving an
    /// older version because the newest one failed) or `not loaded`.
    state: &'static str,
    #[serde(skip)]
    rank: State,
    /// SHA-256 of the module being served.
    version: Option<String>,
    /// `compiler`, `disk cache`, or `baseline compiler, optimising` (Winch's code,
    /// served while Cranelift's is made).
    source: Option<&'static str>,
    load_ms: Option<f64>,
    /// Seconds since the Unix epoch.
    loaded_at: Option<u64>,
    /// Why the newest version does not load, or else the last failure of a
    /// request; one line.
    last_error: Option<String>,
    /// Seconds since the Unix epoch of that failure, for a request's.
    last_error_at: Option<u64>,
    requests: u64,
    /// Requests answered `5xx`.
    errors: u64,
    traps: u64,
    timeouts: u64,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    live_instances: u64,
}

impl Entry {
    /// Where the page lists it: failed, stale, then handlers whose requests
    /// fail, then the rest by state; by file within each.
    fn order(&self) -> (u8, &str) {
        let rank = match self.rank {
            State::Failed => 0,
            State::Stale => 1,
            _ if self.errors > 0 => 2,
            State::Loading => 3,
            State::Ready => 4,
            State::NotLoaded => 5,
        };
        (rank, &self.file)
    }
}

/// Whether `peer` may see the status page on the main listener: loopback
/// only, unless the operator opened it with `--status-public`. (The admin
/// listener shows it to whoever can reach its address.)
pub(crate) fn allowed(app: &App, peer: SocketAddr) -> bool {
    app.config.status_public || peer.ip().is_loopback()
}

/// The status page as JSON.
pub(crate) async fn json(app: &App) -> http::Response<ResponseBody> {
    match serde_json::to_vec_pretty(&page(app).await) {
        Ok(json) => with_type(json, "application/json"),
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the status page: {e}\n"),
        ),
    }
}

/// The status page as HTML. Every value is escaped: file names and errors
/// come from whoever can write to the web root.
pub(crate) async fn html(app: &App) -> http::Response<ResponseBody> {
    let body = html::render(&page(app).await);
    let mut response = with_type(body, "text/html; charset=utf-8");
    // A second line of defence should an unescaped value ever slip in: no
    // script runs and nothing loads from elsewhere.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    response
}

/// The number of handlers the loader knows in each state, for
/// `wasmlet_handlers`.
pub(crate) fn state_counts(app: &App) -> Vec<(&'static str, usize)> {
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for status in app.loader.status() {
        *counts.entry(State::of(&status).name()).or_default() += 1;
    }
    counts.into_iter().collect()
}

fn with_type(
    body: impl Into<bytes::Bytes>,
    content_type: &'static str,
) -> http::Response<ResponseBody> {
    let mut response = plain(StatusCode::OK, body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

async fn page(app: &App) -> Page {
    let router = app.router();
    let root = router.root();
    let files = app.status_files.under(root).await;
    let mut numbers = app.stats.handler_numbers();
    let mut known: HashMap<PathBuf, HandlerStatus> = app
        .loader
        .status()
        .into_iter()
        .map(|s| (s.file.clone(), s))
        .collect();
    let mut entries: Vec<Entry> = Vec::with_capacity(files.len() + known.len());
    for file in files.iter() {
        let status = known.remove(file);
        entries.push(entry(root, file, status, &mut numbers));
    }
    // Loaded and since gone from the walk (deleted a moment ago, or outside
    // what the walk sees): still shown while the loader holds them.
    for (file, status) in known {
        entries.push(entry(root, &file, Some(status), &mut numbers));
    }
    let mut states = BTreeMap::new();
    for entry in &entries {
        *states.entry(entry.state).or_default() += 1;
    }
    entries.sort_by(|a, b| a.order().cmp(&b.order()));
    let unlisted = entries.len().saturating_sub(MAX_LISTED);
    entries.truncate(MAX_LISTED);
    Page {
        version: crate::VERSION,
        wasmtime: crate::WASMTIME_VERSION,
        uptime_seconds: app.stats.uptime().as_secs(),
        webroot: root.display().to_string(),
        requests: app.stats.requests(),
        in_flight: app.stats.in_flight(),
        compiles: app.stats.compiles(),
        live_instances: app.stats.live_instances(),
        states,
        handlers: entries,
        unlisted,
    }
}

fn entry(
    root: &Path,
    file: &Path,
    status: Option<HandlerStatus>,
    numbers: &mut HashMap<String, HandlerNumbers>,
) -> Entry {
    let rel = file.strip_prefix(root).unwrap_or(file);
    // The name requests are counted under (see `service::handler_name`).
    let n = numbers
        .remove(&format!("/{}", rel.display()))
        .unwrap_or_default();
    let state = status.as_ref().map_or(State::NotLoaded, State::of);
    let serving = status.as_ref().and_then(|s| s.serving.as_ref());
    let load_error = status.as_ref().and_then(|s| s.error.as_deref());
    let (last_error, last_error_at) = match (load_error, &n.last_error) {
        // Paths in the web root as the page names files: relative to it.
        (Some(load), _) => (
            Some(one_line(load).replace(&format!("{}/", root.display()), "")),
            None,
        ),
        (None, Some(request)) => (Some(request.message.clone()), Some(secs(request.at))),
        (None, None) => (None, None),
    };
    Entry {
        file: rel.display().to_string(),
        url: handler_url(root, file),
        state: state.name(),
        rank: state,
        version: serving.map(|p| p.content_hash.clone()),
        source: serving.map(|p| match (p.tier, p.from_disk_cache) {
            (Tier::Baseline, _) => "baseline compiler, optimising",
            (Tier::Optimized, true) => "disk cache",
            (Tier::Optimized, false) => "compiler",
        }),
        load_ms: serving.map(|p| (p.load_ms * 10.0).round() / 10.0),
        loaded_at: serving.map(|p| secs(p.loaded_at)),
        last_error,
        last_error_at,
        requests: n.requests,
        errors: n.errors,
        traps: n.traps,
        timeouts: n.timeouts,
        p50_ms: n.p50.map(|s| s * 1e3),
        p99_ms: n.p99.map(|s| s * 1e3),
        live_instances: n.live_instances,
    }
}

fn secs(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The first line of `text`: the page shows one line per error.
fn one_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}
