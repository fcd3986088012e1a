//! Turning a `wasmlet.toml`'s spanned values into settings: every duration,
//! size, rule, name, variable and store definition checked, and every error
//! pointing at its value as file:line:column with the dotted key.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use toml::Spanned;

use super::file::{
    Files, Http, Instances, Kv, Limits, MAX_VARIABLE_SIZE, RawSettings, RawStore, Settings,
    StoreBackend, StoreDef, Text, Variable, check_name,
};
use super::{MAX_INSTANCE_CONCURRENCY, SiteError};
use crate::capability::http::Rule;

/// Turns byte spans into file:line:column errors.
pub(super) struct Locator<'a> {
    pub(super) path: &'a Path,
    pub(super) text: &'a str,
}

impl Locator<'_> {
    pub(super) fn error(
        &self,
        span: Range<usize>,
        key: Option<String>,
        message: String,
    ) -> SiteError {
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
    pub(super) fn key_at(&self, offset: usize) -> Option<String> {
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

    /// A count that must be at least 1 and at most `max`.
    fn count(
        &self,
        key: &str,
        n: Option<Spanned<u32>>,
        max: u32,
    ) -> Result<Option<u32>, SiteError> {
        match n {
            Some(n) if *n.get_ref() == 0 || *n.get_ref() > max => Err(self.error(
                n.span(),
                Some(key.to_owned()),
                if max == u32::MAX {
                    "must be at least 1".to_owned()
                } else {
                    format!("must be from 1 to {max}")
                },
            )),
            n => Ok(n.map(Spanned::into_inner)),
        }
    }

    fn size(&self, key: &str, text: Option<Text>) -> Result<Option<u64>, SiteError> {
        text.map(|t| {
            let span = t.span();
            crate::config::parse_size(t.get_ref())
                .map_err(|m| self.error(span, Some(key.to_owned()), m))
        })
        .transpose()
    }

    pub(super) fn settings(
        &self,
        dir: &Path,
        prefix: &str,
        raw: RawSettings,
    ) -> Result<Settings, SiteError> {
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
        let pool_size = self.count(
            &key("instances.pool-size"),
            raw.instances.pool_size,
            u32::MAX,
        )?;
        let max_requests = self.count(
            &key("instances.max-requests"),
            raw.instances.max_requests,
            u32::MAX,
        )?;
        let concurrency = self.count(
            &key("instances.concurrency"),
            raw.instances.concurrency,
            MAX_INSTANCE_CONCURRENCY,
        )?;
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
                max_requests,
                concurrency,
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

    pub(super) fn store(&self, key: &str, raw: RawStore) -> Result<StoreDef, SiteError> {
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
