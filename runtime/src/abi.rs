//! The guest ABI's shared vocabulary: the import module name, the negative
//! status codes every import returns, and the log levels.
//!
//! The SDK (`sdk/src/sys.rs`) mirrors [`code`]; an end-to-end test checks that
//! the two tables agree, so a handler built against either sees the same
//! numbers. `docs/abi.md` documents each code.

/// The module every host import lives in.
pub const MODULE: &str = "wasmlet";

/// Negative return codes, shared by every import that returns `i32`.
///
/// Codes are only ever added, never renumbered: handlers compiled against an
/// older table must keep reading the same meaning.
pub mod code {
    /// Success for calls that return a status rather than a length.
    pub const OK: i32 = 0;
    /// The value asked for does not exist (a header, a route parameter).
    pub const ABSENT: i32 = -1;
    /// An argument was rejected: a status outside `200..=999`, a header name
    /// or value that is not valid HTTP, a string that is not UTF-8.
    pub const INVALID: i32 = -2;
    /// The response head has already been sent, so the status and headers can
    /// no longer change.
    pub const HEAD_SENT: i32 = -3;
    /// The client has gone: nothing more can be written.
    pub const CLOSED: i32 = -4;
    /// Reading the request body failed (the client aborted it or sent a
    /// malformed body).
    pub const BODY: i32 = -5;
    /// The configuration (`wasmlet.toml`) does not grant this: a host not in
    /// the allow-list or a private address, a store not granted, a file
    /// outside every mount.
    pub const DENIED: i32 = -6;
    /// The operation ran past its time limit.
    pub const TIMEOUT: i32 = -7;
    /// A size limit was hit: a response over `max-response-size`, a value
    /// over the store's `max-value-size`, a response head past
    /// `--max-response-headers` or `--max-response-header-size`.
    pub const TOO_LARGE: i32 = -8;
    /// The operation failed: connection refused, DNS, TLS, a store that is
    /// down, an I/O error. `error_message` says which.
    pub const FAILED: i32 = -9;
    /// The request holds too many handles (pending operations and open
    /// responses) to start another.
    pub const BUSY: i32 = -10;
    /// Every code with its name, for documentation and the SDK agreement test.
    pub const ALL: &[(&str, i32)] = &[
        ("OK", OK),
        ("ABSENT", ABSENT),
        ("INVALID", INVALID),
        ("HEAD_SENT", HEAD_SENT),
        ("CLOSED", CLOSED),
        ("BODY", BODY),
        ("DENIED", DENIED),
        ("TIMEOUT", TIMEOUT),
        ("TOO_LARGE", TOO_LARGE),
        ("FAILED", FAILED),
        ("BUSY", BUSY),
    ];
}

/// Levels of the `log` import, as the guest passes them.
pub mod level {
    /// An error the handler wants an operator to see.
    pub const ERROR: i32 = 1;
    /// Something unexpected that the handler recovered from.
    pub const WARN: i32 = 2;
    /// Ordinary progress.
    pub const INFO: i32 = 3;
    /// Detail for debugging a handler.
    pub const DEBUG: i32 = 4;
}
