//! The key-value stores a `wasmlet.toml` defines, opened where they must
//! be: never inside the web root, where their files could be downloaded.

use std::path::{Path, PathBuf};

use super::file::{StoreBackend, StoreDef};
use super::{DEFAULT_MAX_VALUE_SIZE, SiteError};
use crate::capability::kv::{Backend, Store, StoreSettings};
use crate::config::Config;
use crate::webroot::inside;

/// Opens the store `name` as `def` says.
pub(super) async fn open_store(
    config: &Config,
    name: &str,
    def: &StoreDef,
    root_file: &Path,
) -> Result<Store, SiteError> {
    let fail = |message: String| SiteError {
        file: root_file.to_owned(),
        line: 0,
        column: 0,
        key: Some(format!("stores.{name}")),
        message,
    };
    let backend = match &def.backend {
        StoreBackend::Sqlite(path) => {
            let Some(data) = &config.data_dir else {
                return Err(fail(
                    "the embedded store needs a data directory; start the server with --data-dir"
                        .to_owned(),
                ));
            };
            let path = match path {
                Some(p) => data.join(p),
                // By the web root as given: a symlinked root switched to a
                // new release keeps its stores.
                None => default_store_path(
                    data,
                    config.webroot_link.as_deref().unwrap_or(&config.webroot),
                    name,
                ),
            };
            if inside(&path, &config.webroot) {
                return Err(fail(format!(
                    "{} is inside the web root {}, where it could be downloaded; use a path outside it",
                    path.display(),
                    config.webroot.display()
                )));
            }
            Backend::Sqlite { path }
        }
        StoreBackend::Redis { url, prefix } => Backend::Redis {
            url: url.clone(),
            prefix: prefix.clone().unwrap_or_else(|| format!("wasmlet:{name}:")),
        },
    };
    let settings = StoreSettings {
        name: name.to_owned(),
        backend,
        max_value_size: usize::try_from(def.max_value_size.unwrap_or(DEFAULT_MAX_VALUE_SIZE))
            .unwrap_or(usize::MAX),
    };
    let store = Store::open(&settings)
        .await
        .map_err(|e| fail(format!("cannot open the store: {e}")))?;
    // Again now that the file exists: only now is its real path known.
    if let Backend::Sqlite { path } = &settings.backend
        && inside(path, &config.webroot)
    {
        return Err(fail(format!(
            "{} turned out to be inside the web root once created, where it could be \
             downloaded; use a path outside it",
            path.display()
        )));
    }
    Ok(store)
}

/// `<data>/kv/<web root id>/<name>.sqlite`: the id (a hash of the web root's
/// path) keeps two sites served by one user from sharing a default store.
pub fn default_store_path(data: &Path, webroot: &Path, name: &str) -> PathBuf {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(webroot.as_os_str().as_encoded_bytes());
    let id: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    data.join("kv").join(id).join(format!("{name}.sqlite"))
}
