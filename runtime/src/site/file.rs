//! One `wasmlet.toml`, parsed and checked on its own: every key known, every
//! value well-formed, every error with the file, line, column and key.
//!
//! Values that need parsing beyond TOML's types (durations, sizes, allow-list
//! rules) are read as spanned strings first and converted here, so their
//! errors point at the value in the file, not at the file as a whole.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::SiteError;
use crate::capability::http::Rule;
use crate::webroot::Withheld;

/// A TOML string with where it came from.
type Text = Spanned<String>;

/// The settings a directory (or one handler file in it) can set. Every field
/// is optional: an unset field inherits the parent directory's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Settings {
    pub(crate) limits: Limits,
    pub(crate) http: Http,
    pub(crate) kv: Kv,
    pub(crate) files: Files,
    pub(crate) instances: Instances,
    /// `[variables]`, by name: merged key by key, so a directory or handler
    /// overrides single variables and inherits the rest.
    pub(crate) variables: BTreeMap<String, Variable>,
}

/// Largest value a variable may have, in bytes. A variable is a key, a
/// token or a short setting; a file source larger than this is a mistake
/// (the wrong path), and every value is held in memory for the server's
/// life.
pub const MAX_VARIABLE_SIZE: usize = 64 << 10;

/// One `[variables]` value, read when the configuration is.
#[derive(Clone, PartialEq, Eq)]
pub struct Variable {
    /// The value.
    pub value: Arc<str>,
    /// Marked `secret = true`: never shown, not even in debug output.
    pub secret: bool,
    /// The file it was read from, for a `file` source; checked to lie
    /// outside the web root.
    pub(crate) file: Option<PathBuf>,
}

impl std::fmt::Debug for Variable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.secret {
            f.write_str("<secret>")
        } else {
            write!(f, "{:?}", self.value)
        }
    }
}

/// `[limits]`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Limits {
    pub(crate) request_timeout: Option<Duration>,
    pub(crate) max_memory: Option<u64>,
    pub(crate) max_concurrency: Option<u32>,
}

/// `[http]`: outbound HTTP.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Http {
    pub(crate) allow: Option<(Vec<Rule>, PathBuf)>,
    pub(crate) allow_private: Option<bool>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) max_response_size: Option<u64>,
    pub(crate) max_redirects: Option<u32>,
    /// `ca-file`: the PEM certificates the file held when the configuration
    /// was read (the file is resolved against the directory of the
    /// `wasmlet.toml` that names it).
    pub(crate) ca_pem: Option<Arc<[u8]>>,
}

/// `[kv]`: the stores granted.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Kv {
    pub(crate) stores: Option<Vec<String>>,
}

/// `[files]`: the directories granted, by mount name. Paths are resolved
/// against the directory of the file that names them.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Files {
    pub(crate) mounts: Option<BTreeMap<String, PathBuf>>,
}

/// `[instances]`: instance reuse.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Instances {
    pub(crate) reuse: Option<bool>,
    pub(crate) pool_size: Option<u32>,
    pub(crate) idle_timeout: Option<Duration>,
}

/// A `[stores.NAME]` table of the root file.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoreDef {
    pub(crate) backend: StoreBackend,
    pub(crate) max_value_size: Option<u64>,
}

/// Where a store keeps its data.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StoreBackend {
    /// An embedded SQLite file; `None` is the default place in the data dir.
    Sqlite(Option<PathBuf>),
    /// A Redis server, with the prefix of this store's keys.
    Redis { url: String, prefix: Option<String> },
}

/// One parsed `wasmlet.toml`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DirFile {
    /// The file, for messages.
    pub(crate) path: PathBuf,
    /// The directory's own settings.
    pub(crate) settings: Settings,
    /// Overrides for single handler files in the directory, by file name.
    pub(crate) handlers: BTreeMap<String, Settings>,
    /// Store definitions (root file only).
    pub(crate) stores: BTreeMap<String, StoreDef>,
    /// `[static] publish`: the never-served classes this directory and
    /// those below it serve anyway; `None` inherits the parent's.
    pub(crate) publish: Option<Vec<Withheld>>,
    /// `[build] rust`: whether `NAME.rs` files here and below are handlers,
    /// built on their first request; `None` inherits the parent's.
    pub(crate) build_rust: Option<bool>,
}

// The raw shapes serde reads. `deny_unknown_fields` turns a misspelt key into
// an error that names it and lists the keys that exist.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFile {
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    kv: RawKv,
    #[serde(default)]
    files: RawFiles,
    #[serde(default)]
    instances: RawInstances,
    #[serde(default)]
    variables: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    stores: BTreeMap<String, Spanned<RawStore>>,
    #[serde(default)]
    handlers: BTreeMap<String, Spanned<RawSettings>>,
    /// A directory's own table: it is about files, not handlers.
    #[serde(default, rename = "static")]
    static_files: RawStatic,
    /// A directory's own table: which source handlers are built.
    #[serde(default)]
    build: RawBuild,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawBuild {
    rust: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStatic {
    publish: Option<Vec<Text>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSettings {
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    http: RawHttp,
    #[serde(default)]
    kv: RawKv,
    #[serde(default)]
    files: RawFiles,
    #[serde(default)]
    instances: RawInstances,
    #[serde(default)]
    variables: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLimits {
    request_timeout: Option<Text>,
    max_memory: Option<Text>,
    max_concurrency: Option<Spanned<u32>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHttp {
    allow: Option<Vec<Text>>,
    allow_private: Option<bool>,
    timeout: Option<Text>,
    connect_timeout: Option<Text>,
    max_response_size: Option<Text>,
    max_redirects: Option<u32>,
    ca_file: Option<Text>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawKv {
    stores: Option<Vec<Text>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFiles {
    mounts: Option<BTreeMap<String, Text>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawInstances {
    reuse: Option<bool>,
    pool_size: Option<Spanned<u32>>,
    idle_timeout: Option<Text>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawStore {
    backend: Text,
    path: Option<Text>,
    url: Option<Text>,
    prefix: Option<String>,
    max_value_size: Option<Text>,
}

/// Reads and checks the `wasmlet.toml` at `path`; `root` says whether it is
/// the web root's own (the only one that may define stores).
pub(crate) fn read(path: &Path, root: bool) -> Result<DirFile, SiteError> {
    let text = std::fs::read_to_string(path).map_err(|e| SiteError {
        file: path.to_owned(),
        line: 0,
        column: 0,
        key: None,
        message: format!("cannot read it: {e}"),
    })?;
    parse(path, &text, root)
}

/// Parses `text`, the contents of the file at `path`.
pub(crate) fn parse(path: &Path, text: &str, root: bool) -> Result<DirFile, SiteError> {
    let at = Locator { path, text };
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        at.error(span.clone(), at.key_at(span.start), e.message().to_owned())
    })?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let settings = at.settings(
        dir,
        "",
        RawSettings {
            limits: raw.limits,
            http: raw.http,
            kv: raw.kv,
            files: raw.files,
            instances: raw.instances,
            variables: raw.variables,
        },
    )?;
    let mut handlers = BTreeMap::new();
    for (name, table) in raw.handlers {
        let span = table.span();
        let is_handler = Path::new(&name)
            .extension()
            .is_some_and(|e| e == "wasm" || e == "wat");
        if name.contains('/') || !is_handler {
            return Err(at.error(
                span,
                Some(format!("handlers.\"{name}\"")),
                "name a handler file in this directory, like [handlers.\"report.wat\"]".to_owned(),
            ));
        }
        let prefix = format!("handlers.\"{name}\".");
        handlers.insert(name, at.settings(dir, &prefix, table.into_inner())?);
    }
    let mut stores = BTreeMap::new();
    for (name, table) in raw.stores {
        let key = format!("stores.{name}");
        if !root {
            return Err(at.error(
                table.span(),
                Some(key),
                "stores are defined in the web root's wasmlet.toml only; grant them here with [kv] stores".to_owned(),
            ));
        }
        check_name(&at, table.span(), &key, &name)?;
        let def = at.store(&key, table.into_inner())?;
        stores.insert(name, def);
    }
    let publish = raw
        .static_files
        .publish
        .map(|names| {
            names
                .into_iter()
                .map(|name| {
                    Withheld::by_name(name.get_ref()).ok_or_else(|| {
                        let known: Vec<&str> = Withheld::PUBLISHABLE
                            .iter()
                            .map(|(known, _)| *known)
                            .collect();
                        at.error(
                            name.span(),
                            Some("static.publish".to_owned()),
                            format!(
                                "`{}` is not a class of files that can be published; use {}",
                                name.get_ref(),
                                known.join(", ")
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    Ok(DirFile {
        path: path.to_owned(),
        settings,
        handlers,
        stores,
        publish,
        build_rust: raw.build.rust,
    })
}

/// Store and mount names: short and plain, so they read well in code and
/// messages and never contain a path separator.
fn check_name(
    at: &Locator<'_>,
    span: Range<usize>,
    key: &str,
    name: &str,
) -> Result<(), SiteError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(at.error(
            span,
            Some(key.to_owned()),
            format!("`{name}` is not a valid name: use letters, digits, `-` and `_` (at most 64)"),
        ))
    }
}

/// Turns byte spans into file:line:column errors.
struct Locator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Locator<'_> {
    fn error(&self, span: Range<usize>, key: Option<String>, message: String) -> SiteError {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        SiteError {
            file: self.path.to_owned(),
            line,
            column,
            key,
            message,
        }
    }

    /// The dotted key of the line at `offset`, for errors that serde reports
    /// without one: the last `[table]` header above it and the key on the line.
    fn key_at(&self, offset: usize) -> Option<String> {
        let offset = offset.min(self.text.len());
        let line_start = self.text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.text[offset..]
            .find('\n')
            .map_or(self.text.len(), |i| offset + i);
        let line = self.text[line_start..line_end].trim();
        let table = self.text[..line_start]
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| l.starts_with('['))
            .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
        let key = line
            .split_once('=')
            .map(|(k, _)| k.trim().to_owned())
            .filter(|k| !k.is_empty() && !k.starts_with('['));
        match (table, key) {
            (Some(t), Some(k)) => Some(format!("{t}.{k}")),
            (None, Some(k)) => Some(k),
            (Some(t), None) if line.starts_with('[') => Some(t),
            _ => None,
        }
    }

    fn duration(&self, key: &str, text: Option<Text>) -> Result<Option<Duration>, SiteError> {
        text.map(|t| {
            let span = t.span();
            crate::config::parse_duration(t.get_ref())
                .map_err(|m| self.error(span, Some(key.to_owned()), m))
        })
        .transpose()
    }

    fn size(&self, key: &str, text: Option<Text>) -> Result<Option<u64>, SiteError> {
        text.map(|t| {
            let span = t.span();
            crate::config::parse_size(t.get_ref())
                .map_err(|m| self.error(span, Some(key.to_owned()), m))
        })
        .transpose()
    }

    fn settings(&self, dir: &Path, prefix: &str, raw: RawSettings) -> Result<Settings, SiteError> {
        let key = |k: &str| format!("{prefix}{k}");
        let max_concurrency = match raw.limits.max_concurrency {
            Some(n) if *n.get_ref() == 0 => {
                return Err(self.error(
                    n.span(),
                    Some(key("limits.max-concurrency")),
                    "must be at least 1".to_owned(),
                ));
            }
            n => n.map(Spanned::into_inner),
        };
        let memory_span = raw.limits.max_memory.as_ref().map(Spanned::span);
        let max_memory = self.size(&key("limits.max-memory"), raw.limits.max_memory)?;
        if let (Some(m), Some(span)) = (max_memory, memory_span)
            && !(64 << 10..=4 << 30).contains(&m)
        {
            return Err(self.error(
                span,
                Some(key("limits.max-memory")),
                "must be between 64KiB (one WebAssembly page) and 4GiB".to_owned(),
            ));
        }
        let timeout_span = raw.limits.request_timeout.as_ref().map(Spanned::span);
        let request_timeout =
            self.duration(&key("limits.request-timeout"), raw.limits.request_timeout)?;
        if let (Some(t), Some(span)) = (request_timeout, timeout_span)
            && t.is_zero()
        {
            return Err(self.error(
                span,
                Some(key("limits.request-timeout")),
                "must be longer than zero".to_owned(),
            ));
        }
        let allow = raw
            .http
            .allow
            .map(|rules| {
                rules
                    .into_iter()
                    .map(|r| {
                        let span = r.span();
                        Rule::parse(r.get_ref())
                            .map_err(|m| self.error(span, Some(key("http.allow")), m))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .map(|rules| (rules, self.path.to_owned()));
        let ca_pem = raw
            .http
            .ca_file
            .map(|file| self.ca_file(dir, &key("http.ca-file"), file))
            .transpose()?;
        let stores = raw
            .kv
            .stores
            .map(|names| {
                names
                    .into_iter()
                    .map(|n| {
                        check_name(self, n.span(), &key("kv.stores"), n.get_ref())?;
                        Ok(n.into_inner())
                    })
                    .collect::<Result<Vec<_>, SiteError>>()
            })
            .transpose()?;
        let mounts = raw
            .files
            .mounts
            .map(|mounts| {
                mounts
                    .into_iter()
                    .map(|(name, target)| {
                        let span = target.span();
                        let k = key("files.mounts");
                        check_name(self, span.clone(), &k, &name)?;
                        let target = target.into_inner();
                        if target.is_empty() {
                            return Err(self.error(
                                span,
                                Some(k),
                                "the directory is empty".to_owned(),
                            ));
                        }
                        Ok((name, dir.join(target)))
                    })
                    .collect::<Result<BTreeMap<_, _>, SiteError>>()
            })
            .transpose()?;
        let pool_size = match raw.instances.pool_size {
            Some(n) if *n.get_ref() == 0 => {
                return Err(self.error(
                    n.span(),
                    Some(key("instances.pool-size")),
                    "must be at least 1".to_owned(),
                ));
            }
            n => n.map(Spanned::into_inner),
        };
        let mut variables = BTreeMap::new();
        for (name, value) in raw.variables {
            let k = key(&format!("variables.{name}"));
            check_name(self, value.span(), &k, &name)?;
            variables.insert(name, self.variable(dir, &k, value)?);
        }
        Ok(Settings {
            variables,
            limits: Limits {
                request_timeout,
                max_memory,
                max_concurrency,
            },
            http: Http {
                allow,
                allow_private: raw.http.allow_private,
                timeout: self.duration(&key("http.timeout"), raw.http.timeout)?,
                connect_timeout: self
                    .duration(&key("http.connect-timeout"), raw.http.connect_timeout)?,
                max_response_size: self
                    .size(&key("http.max-response-size"), raw.http.max_response_size)?,
                max_redirects: raw.http.max_redirects,
                ca_pem,
            },
            kv: Kv { stores },
            files: Files { mounts },
            instances: Instances {
                reuse: raw.instances.reuse,
                pool_size,
                idle_timeout: self
                    .duration(&key("instances.idle-timeout"), raw.instances.idle_timeout)?,
            },
        })
    }

    /// Reads one `[variables]` value: a string, or a table with one source
    /// (`value`, `env` or `file`) and an optional `secret`. An environment
    /// variable or file is read now, so a missing one is an error at its
    /// line. Messages name the source, never the value.
    fn variable(
        &self,
        dir: &Path,
        key: &str,
        raw: Spanned<toml::Value>,
    ) -> Result<Variable, SiteError> {
        let span = raw.span();
        let fail = |message: String| self.error(span.clone(), Some(key.to_owned()), message);
        let shape = || {
            fail(
                "write a string, or a table with one of `value`, `env` or `file` and optionally \
                 `secret = true`, like { env = \"API_KEY\", secret = true }"
                    .to_owned(),
            )
        };
        let (value, secret, file) = match raw.into_inner() {
            toml::Value::String(value) => (value, false, None),
            toml::Value::Table(table) => {
                let mut secret = false;
                let mut source = None;
                for (field, v) in table {
                    match (field.as_str(), v) {
                        ("secret", toml::Value::Boolean(b)) => secret = b,
                        ("value" | "env" | "file", toml::Value::String(s)) if source.is_none() => {
                            source = Some((field, s));
                        }
                        _ => return Err(shape()),
                    }
                }
                match source {
                    Some((kind, literal)) if kind == "value" => (literal, secret, None),
                    Some((kind, name)) if kind == "env" => match std::env::var(&name) {
                        Ok(value) => (value, secret, None),
                        Err(std::env::VarError::NotPresent) => {
                            return Err(fail(format!(
                                "the environment variable {name} is not set; set it before \
                                 starting wasmlet, or remove the key"
                            )));
                        }
                        Err(std::env::VarError::NotUnicode(_)) => {
                            return Err(fail(format!(
                                "the environment variable {name} is not UTF-8"
                            )));
                        }
                    },
                    Some((_, file)) => {
                        if file.is_empty() {
                            return Err(fail("the file name is empty".to_owned()));
                        }
                        let path = dir.join(file);
                        (self.variable_file(&path, &fail)?, secret, Some(path))
                    }
                    None => return Err(shape()),
                }
            }
            _ => return Err(shape()),
        };
        if value.len() > MAX_VARIABLE_SIZE {
            return Err(fail(format!(
                "the value is {} bytes, more than the {} KiB a variable may hold",
                value.len(),
                MAX_VARIABLE_SIZE >> 10
            )));
        }
        Ok(Variable {
            value: value.into(),
            secret,
            file,
        })
    }

    /// A variable's file, without its final line break (`echo`, editors and
    /// `kubectl create secret --from-file` disagree about one). Reads at
    /// most one byte past [`MAX_VARIABLE_SIZE`], so a wrong path to a huge
    /// file fails fast.
    fn variable_file(
        &self,
        path: &Path,
        fail: &dyn Fn(String) -> SiteError,
    ) -> Result<String, SiteError> {
        use std::io::Read;
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_VARIABLE_SIZE as u64 + 1).read_to_end(&mut bytes))
            .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
        if bytes.len() > MAX_VARIABLE_SIZE {
            return Err(fail(format!(
                "{} is larger than the {} KiB a variable may hold",
                path.display(),
                MAX_VARIABLE_SIZE >> 10
            )));
        }
        let mut text = String::from_utf8(bytes)
            .map_err(|_| fail(format!("{} is not UTF-8 text", path.display())))?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        Ok(text)
    }

    /// Reads `[http] ca-file` now, so a missing or malformed file is an
    /// error at its line rather than a failed request later.
    fn ca_file(&self, dir: &Path, key: &str, file: Text) -> Result<Arc<[u8]>, SiteError> {
        let span = file.span();
        let fail = |message: String| self.error(span.clone(), Some(key.to_owned()), message);
        if file.get_ref().is_empty() {
            return Err(fail("the file name is empty".to_owned()));
        }
        let path = dir.join(file.into_inner());
        let pem = std::fs::read(&path)
            .map_err(|e| fail(format!("cannot read {}: {e}", path.display())))?;
        match reqwest::Certificate::from_pem_bundle(&pem) {
            Ok(certificates) if !certificates.is_empty() => Ok(pem.into()),
            Ok(_) => Err(fail(format!(
                "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
                path.display()
            ))),
            Err(e) => Err(fail(format!(
                "{} is not a PEM certificate bundle: {e}",
                path.display()
            ))),
        }
    }

    fn store(&self, key: &str, raw: RawStore) -> Result<StoreDef, SiteError> {
        let max_value_size = self.size(&format!("{key}.max-value-size"), raw.max_value_size)?;
        let backend = match raw.backend.get_ref().as_str() {
            "sqlite" => {
                if let Some(url) = raw.url {
                    return Err(self.error(
                        url.span(),
                        Some(format!("{key}.url")),
                        "a sqlite store has a `path`, not a `url`".to_owned(),
                    ));
                }
                StoreBackend::Sqlite(raw.path.map(|p| PathBuf::from(p.into_inner())))
            }
            "redis" => {
                let Some(url) = raw.url else {
                    return Err(self.error(
                        raw.backend.span(),
                        Some(key.to_owned()),
                        "a redis store needs a `url`, like url = \"redis://127.0.0.1:6379/0\""
                            .to_owned(),
                    ));
                };
                if !(url.get_ref().starts_with("redis://")
                    || url.get_ref().starts_with("rediss://"))
                {
                    return Err(self.error(
                        url.span(),
                        Some(format!("{key}.url")),
                        format!("`{}` is not a redis:// or rediss:// URL", url.get_ref()),
                    ));
                }
                if let Some(path) = raw.path {
                    return Err(self.error(
                        path.span(),
                        Some(format!("{key}.path")),
                        "a redis store has a `url`, not a `path`".to_owned(),
                    ));
                }
                StoreBackend::Redis {
                    url: url.into_inner(),
                    prefix: raw.prefix,
                }
            }
            other => {
                return Err(self.error(
                    raw.backend.span(),
                    Some(format!("{key}.backend")),
                    format!("unknown backend `{other}`; use \"sqlite\" (embedded) or \"redis\""),
                ));
            }
        };
        Ok(StoreDef {
            backend,
            max_value_size,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new("/w/api/wasmlet.toml"), text, false)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_section_parses() {
        let f = parse(
            Path::new("/w/wasmlet.toml"),
            r#"
[limits]
request-timeout = "5s"
max-memory = "32MiB"
max-concurrency = 4

[http]
allow = ["https://api.example.com", "http://127.0.0.1:8080"]
allow-private = true
timeout = "2s"
max-response-size = "1MiB"

[kv]
stores = ["default", "shared"]

[files]
mounts = { data = "data", abs = "/srv/x" }

[stores.shared]
backend = "redis"
url = "redis://127.0.0.1:6379/0"
prefix = "app:"

[handlers."slow.wat"]
limits.request-timeout = "60s"
instances.reuse = true
"#,
            true,
        )
        .unwrap();
        assert_eq!(
            f.settings.limits.request_timeout,
            Some(Duration::from_secs(5))
        );
        assert_eq!(f.settings.limits.max_concurrency, Some(4));
        assert_eq!(f.settings.http.allow.as_ref().unwrap().0.len(), 2);
        assert_eq!(
            f.settings.files.mounts.as_ref().unwrap()["data"],
            Path::new("/w/data")
        );
        assert_eq!(
            f.settings.files.mounts.as_ref().unwrap()["abs"],
            Path::new("/srv/x")
        );
        assert!(matches!(
            f.stores["shared"].backend,
            StoreBackend::Redis { .. }
        ));
        let slow = &f.handlers["slow.wat"];
        assert_eq!(slow.limits.request_timeout, Some(Duration::from_secs(60)));
        assert_eq!(slow.instances.reuse, Some(true));
    }

    #[test]
    fn a_ca_file_is_read_with_the_configuration_and_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let got = err(&format!("[http]\nca-file = \"{}\"\n", junk.display()));
        assert!(
            got.contains("http.ca-file:") && got.contains("holds no PEM certificate"),
            "{got}"
        );
    }

    #[test]
    fn errors_name_the_file_line_column_and_key() {
        let cases = [
            (
                "[http]\nalow = []\n",
                "wasmlet.toml:2:1: http.alow: unknown field `alow`",
            ),
            (
                "[limits]\nrequest-timeout = \"soon\"\n",
                "wasmlet.toml:2:19: limits.request-timeout: `soon` is not a duration",
            ),
            (
                "[http]\nallow = [\"ftp://x\"]\n",
                "wasmlet.toml:2:10: http.allow:",
            ),
            (
                "[limits]\nmax-concurrency = \"four\"\n",
                "wasmlet.toml:2:19: limits.max-concurrency:",
            ),
            (
                "[limits]\nmax-concurrency = 0\n",
                "limits.max-concurrency: must be at least 1",
            ),
            (
                "[kv]\nstores = [\"a/b\"]\n",
                "kv.stores: `a/b` is not a valid name",
            ),
            (
                "[stores.x]\nbackend = \"sqlite\"\n",
                "stores are defined in the web root's wasmlet.toml only",
            ),
            ("[handlers.\"x.txt\"]\n", "name a handler file"),
            (
                "[http]\nca-file = \"missing.pem\"\n",
                "wasmlet.toml:2:11: http.ca-file: cannot read /w/api/missing.pem:",
            ),
            ("[limits\n", "wasmlet.toml:1:"),
            (
                "[static]\npublish = [\"key\", \"hidden\"]\n",
                "wasmlet.toml:2:19: static.publish: `hidden` is not a class of files that can be published; use rust-source, cargo, build-output, backup, key, database",
            ),
            (
                "[static]\nserve = []\n",
                "static.serve: unknown field `serve`",
            ),
            (
                "[variables]\nkey = { env = \"WASMLET_TEST_SURELY_UNSET\", secret = true }\n",
                "wasmlet.toml:2:7: variables.key: the environment variable WASMLET_TEST_SURELY_UNSET is not set",
            ),
            (
                "[variables]\ntoken = { file = \"missing\" }\n",
                "wasmlet.toml:2:9: variables.token: cannot read /w/api/missing:",
            ),
            (
                "[variables]\nn = 3\n",
                "variables.n: write a string, or a table",
            ),
            (
                "[variables]\nn = { env = \"A\", file = \"b\" }\n",
                "variables.n: write a string, or a table",
            ),
            (
                "[handlers.\"x.wat\".variables]\n\"a b\" = \"c\"\n",
                "handlers.\"x.wat\".variables.a b: `a b` is not a valid name",
            ),
        ];
        for (text, want) in cases {
            let got = err(text);
            assert!(got.contains(want), "{text:?}\n got: {got}\nwant: {want}");
            assert!(got.starts_with("/w/api/wasmlet.toml:"), "{got}");
        }
    }

    #[test]
    fn variables_come_from_literals_the_environment_and_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
        std::fs::write(dir.path().join("big"), vec![b'x'; MAX_VARIABLE_SIZE + 1]).unwrap();
        let toml = format!(
            "[variables]\ngreeting = \"hi\"\npath = {{ env = \"PATH\" }}\n\
             token = {{ file = \"{}\", secret = true }}\nquiet = {{ value = \"q\", secret = true }}\n",
            dir.path().join("token").display()
        );
        let f = parse(Path::new("/w/wasmlet.toml"), &toml, true).unwrap();
        let vars = &f.settings.variables;
        assert_eq!(&*vars["greeting"].value, "hi");
        assert_eq!(*vars["path"].value, std::env::var("PATH").unwrap());
        assert_eq!(
            &*vars["token"].value, "s3cret",
            "one final line break dropped"
        );
        assert!(vars["token"].secret && vars["quiet"].secret && !vars["greeting"].secret);
        let shown = format!("{vars:?}");
        assert!(
            shown.contains("\"hi\"") && !shown.contains("s3cret") && !shown.contains("\"q\""),
            "{shown}"
        );

        let big = format!(
            "[variables]\nbig = {{ file = \"{}\" }}\n",
            dir.path().join("big").display()
        );
        let e = parse(Path::new("/w/wasmlet.toml"), &big, true)
            .unwrap_err()
            .to_string();
        assert!(e.contains("variables.big:") && e.contains("64 KiB"), "{e}");
    }

    #[test]
    fn store_definitions_are_checked() {
        let root = |t: &str| parse(Path::new("/w/wasmlet.toml"), t, true);
        assert!(
            root("[stores.a]\nbackend = \"mongo\"\n")
                .unwrap_err()
                .to_string()
                .contains("unknown backend `mongo`")
        );
        assert!(
            root("[stores.a]\nbackend = \"redis\"\n")
                .unwrap_err()
                .to_string()
                .contains("needs a `url`")
        );
        assert!(
            root("[stores.a]\nbackend = \"redis\"\nurl = \"http://x\"\n")
                .unwrap_err()
                .to_string()
                .contains("redis://")
        );
        let ok = root("[stores.a]\nbackend = \"sqlite\"\n").unwrap();
        assert_eq!(ok.stores["a"].backend, StoreBackend::Sqlite(None));
    }
}
