//! Every server setting, with its default and the reason for it, and the
//! parsers for the human-friendly forms the CLI accepts (`500ms`, `64MiB`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::ConfigError;
use crate::watcher::WatchMode;

/// Default wall-clock budget for one request, from accept to the guest's
/// return. Generous enough for a handler that waits on slow upstreams, short
/// enough that a stuck guest frees its instance within a minute.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Default cap on one instance's linear memory. A handler is a request-sized
/// program; 64 MiB fits a Rust handler that buffers a few MiB, and keeps 1,000
/// concurrent instances within a small server's RAM.
pub const DEFAULT_MAX_MEMORY: u64 = 64 << 20;

/// Default number of guest instances alive at once. Each waiting request holds
/// one, so this bounds memory under load; past it, requests get `503`.
pub const DEFAULT_MAX_INSTANCES: u32 = 1_000;

/// Default time a graceful shutdown waits for in-flight requests.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Default largest handler file: a generous Rust handler is a few hundred
/// KiB, a big one a few MiB; 64 MiB leaves room for text `.wat` files and
/// embedded data while keeping a stray multi-gigabyte file from being
/// compiled (which costs memory and minutes of CPU).
pub const DEFAULT_MAX_MODULE_SIZE: u64 = 64 << 20;

/// Default time a client has to send a complete request head.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How the server behaves. [`Config::new`] gives the documented defaults;
/// [`Config::validate`] checks a configuration before the server uses it.
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory served: handlers and static files. Nothing outside it is
    /// ever reachable.
    pub webroot: PathBuf,
    /// Wall-clock limit for one request; a guest still running then is
    /// stopped and the client gets `504` (or a cut body if streaming began).
    pub request_timeout: Duration,
    /// Largest linear memory one instance may have, in bytes; `memory.grow`
    /// past it fails, and a module that asks for more up front fails to
    /// instantiate.
    pub max_memory: u64,
    /// Most guest instances alive at once, across all handlers. Sizes the
    /// pooling allocator; requests past it get `503` without running guest
    /// code.
    pub max_instances: u32,
    /// How long a graceful shutdown lets in-flight requests run before it
    /// cuts them.
    pub shutdown_timeout: Duration,
    /// How long a client may take to send a request head. Without it, a
    /// silent connection would hold its slot forever.
    pub header_timeout: Duration,
    /// Development mode: error responses carry the guest's trap message and
    /// compile errors, which production must never show a client.
    pub dev: bool,
    /// Where compiled handler code is kept between restarts, so a restart does
    /// not compile again; `None` turns the disk cache off. Must be outside the
    /// web root: nothing precompiled is ever loaded from the web root.
    pub cache_dir: Option<PathBuf>,
    /// Where embedded key-value stores keep their files
    /// (`<data-dir>/kv/<store>.sqlite` unless a store names a path); `None`
    /// leaves stores that need it unopenable. Must be outside the web root:
    /// anything inside it could be downloaded.
    pub data_dir: Option<PathBuf>,
    /// Largest handler file loaded, in bytes; a larger one fails to load with
    /// a message saying so, without being read whole or compiled.
    pub max_module_size: u64,
    /// Compile every handler in the web root before accepting requests.
    pub precompile: bool,
    /// URL path of the status page (JSON list of handlers), or `None` for no
    /// status page. Off by default: it reveals file names.
    pub status_path: Option<String>,
    /// Serve the status page to any client, not only loopback ones.
    pub status_public: bool,
    /// How the web root is watched for new, changed and deleted handlers, or
    /// `None` for no watcher. Without one, changes are still found: every
    /// request checks its file's version. The watcher adds eager compiles
    /// (the next request finds the new version ready) and forgets deleted
    /// handlers.
    pub watch: Option<WatchMode>,
}

impl Config {
    /// The defaults, serving `webroot`.
    pub fn new(webroot: impl Into<PathBuf>) -> Self {
        Self {
            webroot: webroot.into(),
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_memory: DEFAULT_MAX_MEMORY,
            max_instances: DEFAULT_MAX_INSTANCES,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            dev: false,
            cache_dir: crate::loader::disk_cache::default_dir(),
            data_dir: default_data_dir(),
            max_module_size: DEFAULT_MAX_MODULE_SIZE,
            precompile: false,
            status_path: None,
            status_public: false,
            watch: Some(WatchMode::Events),
        }
    }

    /// Checks the settings and resolves the web root to its canonical path
    /// (the router's containment checks compare against it).
    pub fn validate(mut self) -> Result<Self, ConfigError> {
        let root = &self.webroot;
        let meta = std::fs::metadata(root).map_err(|source| ConfigError::WebRoot {
            path: root.clone(),
            reason: match source.kind() {
                std::io::ErrorKind::NotFound => "it does not exist".to_owned(),
                _ => source.to_string(),
            },
        })?;
        if !meta.is_dir() {
            return Err(ConfigError::WebRoot {
                path: root.clone(),
                reason: "it is not a directory".to_owned(),
            });
        }
        self.webroot = std::fs::canonicalize(root).map_err(|e| ConfigError::WebRoot {
            path: root.clone(),
            reason: e.to_string(),
        })?;
        if self.request_timeout.is_zero() {
            return Err(ConfigError::Invalid {
                setting: "request-timeout",
                reason: "must be longer than zero".to_owned(),
            });
        }
        // One 64 KiB wasm page is the smallest memory a module can have.
        if self.max_memory < 64 << 10 {
            return Err(ConfigError::Invalid {
                setting: "max-memory",
                reason: "must be at least 64KiB, one WebAssembly page".to_owned(),
            });
        }
        if self.max_memory > 4 << 30 {
            return Err(ConfigError::Invalid {
                setting: "max-memory",
                reason: "must be at most 4GiB, the most a 32-bit memory can address".to_owned(),
            });
        }
        if let Some(dir) = &self.cache_dir
            && inside(dir, &self.webroot)
        {
            return Err(ConfigError::Invalid {
                setting: "cache-dir",
                reason: format!(
                    "{} is inside the web root; nothing precompiled may be loaded from the web root, so put the cache elsewhere",
                    dir.display()
                ),
            });
        }
        if let Some(dir) = &self.data_dir
            && inside(dir, &self.webroot)
        {
            return Err(ConfigError::Invalid {
                setting: "data-dir",
                reason: format!(
                    "{} is inside the web root, where stored data could be downloaded; put it elsewhere",
                    dir.display()
                ),
            });
        }
        if let Some(path) = &self.status_path
            && (!path.starts_with('/') || path.len() < 2)
        {
            return Err(ConfigError::Invalid {
                setting: "status-path",
                reason: format!("`{path}` must be a URL path like /_wasmlet/status"),
            });
        }
        if self.max_instances == 0 {
            return Err(ConfigError::Invalid {
                setting: "max-instances",
                reason: "must be at least 1".to_owned(),
            });
        }
        Ok(self)
    }

    /// The web root as given (canonical after [`Config::validate`]).
    pub fn webroot(&self) -> &Path {
        &self.webroot
    }
}

/// Whether `path` (which may not exist yet) is inside `root` (canonical):
/// what exists of the path is resolved, so a symlink cannot hide it.
pub(crate) fn inside(path: &Path, root: &Path) -> bool {
    let real = path
        .ancestors()
        .find_map(|a| {
            std::fs::canonicalize(a)
                .ok()
                .map(|r| r.join(path.strip_prefix(a).unwrap_or(Path::new(""))))
        })
        .unwrap_or_else(|| path.to_owned());
    real.starts_with(root)
}

/// `$XDG_DATA_HOME/wasmlet`, else `~/.local/share/wasmlet`.
pub fn default_data_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|d| d.join("wasmlet"))
}

/// Parses a duration written like `500ms`, `2s`, `1m` or `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); write it like 500ms, 2s or 1m"))
}

/// Parses a size written like `64MiB`, `1GiB`, `512KiB` or a plain number of
/// bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    parse_size::parse_size(text)
        .map_err(|e| format!("`{text}` is not a size ({e}); write it like 64MiB or 1GiB"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_the_documented_forms() {
        for (text, want) in [
            ("500ms", Duration::from_millis(500)),
            ("2s", Duration::from_secs(2)),
            ("1m", Duration::from_secs(60)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
        assert!(parse_duration("soon").unwrap_err().contains("500ms"));
    }

    #[test]
    fn sizes_parse_in_the_documented_forms() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("lots").unwrap_err().contains("64MiB"));
    }

    #[test]
    fn a_missing_web_root_is_a_clear_error() {
        let err = Config::new("/definitely/not/here").validate().unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/definitely/not/here"), "{text}");
        assert!(text.contains("does not exist"), "{text}");
    }

    #[test]
    fn a_file_is_not_a_web_root() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let err = Config::new(file.path()).validate().unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }

    #[test]
    fn a_cache_dir_inside_the_web_root_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let inside = Config {
            cache_dir: Some(dir.path().join("cache")),
            ..Config::new(dir.path())
        };
        let err = inside.validate().unwrap_err().to_string();
        assert!(
            err.contains("--cache-dir") && err.contains("web root"),
            "{err}"
        );
        let outside = tempfile::tempdir().unwrap();
        let fine = Config {
            cache_dir: Some(outside.path().join("cache")),
            ..Config::new(dir.path())
        };
        assert!(fine.validate().is_ok());
    }

    #[test]
    fn limits_out_of_range_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let small = Config {
            max_memory: 1024,
            ..Config::new(dir.path())
        };
        assert!(
            small
                .validate()
                .unwrap_err()
                .to_string()
                .contains("max-memory")
        );
        let zero = Config {
            request_timeout: Duration::ZERO,
            ..Config::new(dir.path())
        };
        assert!(
            zero.validate()
                .unwrap_err()
                .to_string()
                .contains("request-timeout")
        );
    }
}
