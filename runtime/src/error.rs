//! Errors at the crate's seams, and the one place a failure becomes an HTTP
//! status ([`Outcome::status`]).

use std::path::PathBuf;

use http::StatusCode;

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
    /// A `wasmlet.toml` in the web root is malformed or names something that
    /// does not exist.
    #[error("{0}")]
    Site(#[from] crate::site::SiteError),
    /// The TLS certificate or key cannot be loaded.
    #[error(transparent)]
    Tls(#[from] crate::server::TlsError),
}

/// Why the server stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Accepting connections failed in a way that is not per-connection.
    #[error("cannot accept connections: {0}")]
    Accept(#[source] std::io::Error),
    /// A `wasmlet.toml` is broken, so the server did not start.
    #[error("{0}")]
    Site(#[from] crate::site::SiteError),
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

/// How one handler request ended. Mapped to a status exactly once, by
/// [`Outcome::status`].
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The guest returned normally.
    Completed,
    /// The handler could not be loaded.
    Load(LoadError),
    /// The module exports no function for the request's verb.
    MethodNotAllowed,
    /// The guest trapped or a host import failed it (bad pointer, limit).
    Trap(String),
    /// The guest ran past the request timeout.
    Timeout,
    /// No instance could be had: the server is at its instance limit.
    Busy,
    /// The handler was still loading (compiling, or its file settling) when
    /// the request timeout passed; the load goes on for later requests.
    Loading,
}

impl Outcome {
    /// The status the client gets when this outcome happens before the
    /// response head is sent.
    pub fn status(&self) -> StatusCode {
        match self {
            Outcome::Completed => StatusCode::OK,
            Outcome::Load(_) | Outcome::Trap(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Outcome::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Outcome::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Outcome::Busy | Outcome::Loading => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// A short label for logs.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Completed => "completed",
            Outcome::Load(_) => "load error",
            Outcome::MethodNotAllowed => "method not allowed",
            Outcome::Trap(_) => "trap",
            Outcome::Timeout => "timeout",
            Outcome::Busy => "busy",
            Outcome::Loading => "loading",
        }
    }

    /// The detail behind a failure, for the log and for development mode.
    pub fn detail(&self) -> Option<String> {
        match self {
            Outcome::Load(e) => Some(e.to_string()),
            Outcome::Trap(msg) => Some(msg.clone()),
            Outcome::Timeout => Some("the handler ran past the request timeout".to_owned()),
            Outcome::Busy => {
                Some("the server is at its limit of live instances (--max-instances)".to_owned())
            }
            Outcome::Loading => Some(
                "the handler was still loading at the request timeout; it goes on loading for the next request"
                    .to_owned(),
            ),
            Outcome::Completed | Outcome::MethodNotAllowed => None,
        }
    }
}
