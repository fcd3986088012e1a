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
use super::locator::Locator;
use crate::capability::http::Rule;
use crate::webroot::Withheld;

/// A TOML string with where it came from.
pub(super) type Text = Spanned<String>;

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
    pub(crate) max_requests: Option<u32>,
    pub(crate) concurrency: Option<u32>,
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
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) http: RawHttp,
    #[serde(default)]
    pub(super) kv: RawKv,
    #[serde(default)]
    pub(super) files: RawFiles,
    #[serde(default)]
    pub(super) instances: RawInstances,
    #[serde(default)]
    pub(super) variables: BTreeMap<String, Spanned<toml::Value>>,
    #[serde(default)]
    pub(super) stores: BTreeMap<String, Spanned<RawStore>>,
    #[serde(default)]
    pub(super) handlers: BTreeMap<String, Spanned<RawSettings>>,
    /// A directory's own table: it is about files, not handlers.
    #[serde(default, rename = "static")]
    pub(super) static_files: RawStatic,
    /// A directory's own table: which source handlers are built.
    #[serde(default)]
    pub(super) build: RawBuild,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawBuild {
    pub(super) rust: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawStatic {
    pub(super) publish: Option<Vec<Text>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSettings {
    #[serde(default)]
    pub(super) limits: RawLimits,
    #[serde(default)]
    pub(super) http: RawHttp,
    #[serde(default)]
    pub(super) kv: RawKv,
    #[serde(default)]
    pub(super) files: RawFiles,
    #[serde(default)]
    pub(super) instances: RawInstances,
    #[serde(default)]
    pub(super) variables: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawLimits {
    pub(super) request_timeout: Option<Text>,
    pub(super) max_memory: Option<Text>,
    pub(super) max_concurrency: Option<Spanned<u32>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawHttp {
    pub(super) allow: Option<Vec<Text>>,
    pub(super) allow_private: Option<bool>,
    pub(super) timeout: Option<Text>,
    pub(super) connect_timeout: Option<Text>,
    pub(super) max_response_size: Option<Text>,
    pub(super) max_redirects: Option<u32>,
    pub(super) ca_file: Option<Text>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawKv {
    pub(super) stores: Option<Vec<Text>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawFiles {
    pub(super) mounts: Option<BTreeMap<String, Text>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawInstances {
    pub(super) reuse: Option<bool>,
    pub(super) pool_size: Option<Spanned<u32>>,
    pub(super) idle_timeout: Option<Text>,
    pub(super) max_requests: Option<Spanned<u32>>,
    pub(super) concurrency: Option<Spanned<u32>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawStore {
    pub(super) backend: Text,
    pub(super) path: Option<Text>,
    pub(super) url: Option<Text>,
    pub(super) prefix: Option<String>,
    pub(super) max_value_size: Option<Text>,
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
pub(super) fn check_name(
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
                "[instances]\nconcurrency = 1001\n",
                "wasmlet.toml:2:15: instances.concurrency: must be from 1 to 1000",
            ),
            (
                "[instances]\nconcurrency = 0\n",
                "instances.concurrency: must be from 1 to 1000",
            ),
            (
                "[instances]\nmax-requests = 0\n",
                "wasmlet.toml:2:16: instances.max-requests: must be at least 1",
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
