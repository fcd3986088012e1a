//! Errors at the crate's seams: a configuration the server cannot start
//! with, a certificate it cannot load, a handler file that does not load.
//! Ground floor: it imports no other module of the crate.

use std::path::PathBuf;

/// A configuration the server cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The web root is missing or unusable.
    #[error("cannot serve web root {}: {reason}", path.display())]
    WebRoot {
        /// The path as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A setting is out of range.
    #[error("invalid --{setting}: {reason}")]
    Invalid {
        /// The setting's flag name.
        setting: &'static str,
        /// What is wrong and what is allowed.
        reason: String,
    },
    /// The WebAssembly engine rejected the settings.
    #[error("cannot configure the WebAssembly engine: {0}")]
    Engine(String),
    /// The TLS certificate or key cannot be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Why a handler file could not become a ready-to-run handler. Cloned to every
/// request that waited on the same compile, so it holds text, not sources.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("{}: cannot read the handler: {reason}", path.display())]
    Read {
        /// The handler file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A `.wat` file has a syntax error.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Syntax {
        /// The handler file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser expected or found.
        message: String,
    },
    /// The module is not valid WebAssembly, or the engine cannot compile it.
    #[error("{}: not a valid WebAssembly module: {message}", path.display())]
    Compile {
        /// The handler file.
        path: PathBuf,
        /// The validator's or compiler's message.
        message: String,
    },
    /// The module does not fit the handler ABI: an unknown import, an import
    /// with the wrong signature, or a missing `memory` export.
    #[error("{}: {message}", path.display())]
    Abi {
        /// The handler file.
        path: PathBuf,
        /// What does not fit and how to fix it.
        message: String,
    },
    /// The module's start function or `init` trapped, or ran past the
    /// request timeout, when the new version was tried once at load.
    #[error(
        "{}: the new version fails as it starts ({message}); fix its start function or `init`, \
         the previous version (if any) keeps serving",
        path.display()
    )]
    Start {
        /// The handler file.
        path: PathBuf,
        /// The trap or the timeout.
        message: String,
    },
    /// The handler has no version loaded yet, and its load (compile, or
    /// its file settling) took longer than the request could wait. The load
    /// goes on; a request gets `503` with `Retry-After`.
    #[error("{}: still loading; try again shortly", path.display())]
    StillLoading {
        /// The handler file.
        path: PathBuf,
    },
    /// The file changed while this version was loading; the newer version
    /// loads instead. Requests never see it: they wait for the newer one.
    #[error("{}: the file changed while it was loading; loading the newer version", path.display())]
    Changed {
        /// The handler file.
        path: PathBuf,
    },
}

/// Why a certificate and key could not be loaded: one line naming the file
/// and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the TLS {what} {}: {error}; check --tls-{what}", path.display())]
    Read {
        /// `cert` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The certificate file holds no certificate or a malformed one.
    #[error(
        "{} is not a PEM certificate chain: {reason}; give --tls-cert the full chain, like certbot's fullchain.pem",
        path.display()
    )]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key file holds no private key, or one rustls cannot use.
    #[error(
        "{} is not a usable PEM private key: {reason}; give --tls-key the key, like certbot's privkey.pem",
        path.display()
    )]
    Key {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key is not the certificate's.
    #[error(
        "the TLS key {} does not belong to the certificate {}; give the matching pair",
        key.display(),
        cert.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// A wasmtime error as one line: the message and its causes.
pub(crate) fn error_text(e: &wasmtime::Error) -> String {
    // A wasm backtrace (a context of the error, many lines) is left out;
    // `trap_text` names its frames.
    let trace = e
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(ToString::to_string);
    let mut text = String::new();
    for cause in e.chain() {
        let cause = cause.to_string();
        if trace.as_ref() == Some(&cause) {
            continue;
        }
        // An error that prints its source as part of its own message (an
        // I/O error wrapped with its text) would say it twice.
        if cause.is_empty() || text.ends_with(&cause) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(cause.lines().next().unwrap_or_default());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_whose_source_repeats_it_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let wrapped = wasmtime::Error::new(io).context("No such file or directory");
        assert_eq!(error_text(&wrapped), "No such file or directory");
        let two = wasmtime::Error::msg("inner").context("outer");
        assert_eq!(error_text(&two), "outer: inner");
    }
}
