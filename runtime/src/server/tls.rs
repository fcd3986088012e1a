//! Inbound TLS: the certificate and key from two PEM files, reloaded when
//! the files change, and the rustls settings the listener uses.
//!
//! Renewal (certbot, an ACME client, a mounted Kubernetes secret) replaces
//! the files while the server runs, so the pair is held behind a lock that a
//! [`ResolvesServerCert`] reads at every handshake: a reload swaps it for the
//! connections that come next, and connections already open keep the keys
//! they agreed. The files are polled (two `stat` calls every
//! `reload_interval`) rather than watched: they usually live outside the web
//! root, often behind symlinks that renewal repoints (`live/` → `archive/`),
//! and a poll sees every way of replacing them alike.
//!
//! A pair that does not load (a half-written file, a key that does not match
//! the certificate) is refused with one log line and the previous pair keeps
//! serving; the next change to either file is tried again.

use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::{CryptoProvider, ring};
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};

use crate::config::TlsConfig;
use crate::error::TlsError;

/// The protocols offered in ALPN, preferred first: a browser that speaks
/// HTTP/2 gets it; hyper-util's detection then reads the HTTP/2 preface.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// When each file last changed, as far as `stat` can tell: a new inode
/// (rename over, symlink repointed), a new size or a new mtime.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp([Option<(SystemTime, u64, u64)>; 2]);

impl Stamp {
    fn of(files: &TlsConfig) -> Self {
        use std::os::unix::fs::MetadataExt;
        let stat = |path: &Path| {
            std::fs::metadata(path).ok().map(|m| {
                (
                    m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    m.len(),
                    m.ino(),
                )
            })
        };
        Self([stat(&files.cert), stat(&files.key)])
    }
}

/// The current certificate and key, and where they come from.
#[derive(Debug)]
pub(crate) struct Certificates {
    files: TlsConfig,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' stamp when they were last tried, good or not: a bad pair
    /// is logged once, not at every poll.
    tried: std::sync::Mutex<Stamp>,
}

impl Certificates {
    /// Loads the pair `files` names. Fails, naming the file, when either is
    /// missing or malformed or the two do not match.
    pub(crate) fn load(files: &TlsConfig) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(ring::default_provider());
        let stamp = Stamp::of(files);
        let key = load_pair(files, &provider)?;
        Ok(Arc::new(Self {
            files: files.clone(),
            provider,
            current: RwLock::new(Arc::new(key)),
            tried: std::sync::Mutex::new(stamp),
        }))
    }

    /// The acceptor for the listener: TLS 1.2 and 1.3 with rustls's safe
    /// defaults, ALPN `h2` and `http/1.1`, certificates from `self`.
    pub(crate) fn acceptor(self: &Arc<Self>) -> TlsAcceptor {
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
        TlsAcceptor::from(Arc::new(config))
    }

    /// Loads the pair again if either file changed since it was last tried.
    /// Returns whether a new pair is now serving.
    pub(crate) fn reload_if_changed(&self) -> bool {
        let stamp = Stamp::of(&self.files);
        {
            let mut tried = self.tried.lock().unwrap_or_else(|e| e.into_inner());
            if *tried == stamp {
                return false;
            }
            *tried = stamp;
        }
        match load_pair(&self.files, &self.provider) {
            Ok(key) => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key);
                tracing::info!(
                    cert = %self.files.cert.display(),
                    "TLS certificate reloaded; new connections use it"
                );
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "the TLS certificate did not reload; keeping the previous one");
                false
            }
        }
    }

    /// Checks the files every `reload_interval`, for as long as the future
    /// runs.
    pub(crate) async fn watch(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.files.reload_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let this = self.clone();
            // Reading and parsing files is blocking work; keep it off the workers.
            let _ = tokio::task::spawn_blocking(move || this.reload_if_changed()).await;
        }
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// Reads, parses and checks the certificate chain and key `files` names.
fn load_pair(files: &TlsConfig, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let read = |what, path: &Path| {
        std::fs::read(path).map_err(|error| TlsError::Read {
            what,
            path: path.to_owned(),
            error,
        })
    };
    let cert_error = |reason: String| TlsError::Certificate {
        path: files.cert.clone(),
        reason,
    };
    let key_error = |reason: String| TlsError::Key {
        path: files.key.clone(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&read("cert", &files.cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_error(
            "it holds no -----BEGIN CERTIFICATE----- block".to_owned(),
        ));
    }
    let key = match PrivateKeyDer::from_pem_slice(&read("key", &files.key)?) {
        Ok(key) => key,
        Err(pem::Error::NoItemsFound) => {
            return Err(key_error(
                "it holds no -----BEGIN PRIVATE KEY----- block".to_owned(),
            ));
        }
        Err(e) => return Err(key_error(e.to_string())),
    };
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| key_error(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(rustls::Error::InconsistentKeys(_)) => Err(TlsError::Mismatch {
            cert: files.cert.clone(),
            key: files.key.clone(),
        }),
        Err(e) => Err(cert_error(e.to_string())),
    }
}
