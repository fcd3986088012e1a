//! The ABI's negative status codes, shared by every import that returns
//! `i32`, mirrored from the runtime's `abi::code` (same names, same values);
//! `tests/abi_agreement.rs` checks the two tables agree.
//!
//! Handlers rarely need these: the SDK turns them into `Option`s and errors.
//! `docs/abi.md` says which import returns which.

/// Success for calls that return a status rather than a length.
pub const OK: i32 = 0;
/// The value asked for does not exist (a header, a route parameter, a key, a
/// file).
pub const ABSENT: i32 = -1;
/// An argument was rejected: a status outside `200..=999`, a header name or
/// value that is not valid HTTP, a string that is not UTF-8, a malformed URL
/// or key, a path with `..`, a handle that is not open.
pub const INVALID: i32 = -2;
/// The response head has already been sent, so the status and headers can no
/// longer change.
pub const HEAD_SENT: i32 = -3;
/// The client has gone: nothing more can be written.
pub const CLOSED: i32 = -4;
/// Reading the request body failed (the client aborted it or sent a malformed
/// body).
pub const BODY: i32 = -5;
/// The configuration (`wasmlet.toml`) does not grant this: a host not in the
/// allow-list, a private address, a store not granted, a file outside the
/// granted mounts.
pub const DENIED: i32 = -6;
/// The operation ran past its time limit.
pub const TIMEOUT: i32 = -7;
/// A size limit was hit: a response over the maximum response size, a value
/// over the store's maximum value size, a response head past the server's
/// header limits.
pub const TOO_LARGE: i32 = -8;
/// The operation failed: connection refused, DNS, TLS, the store's backend
/// down, an I/O error.
pub const FAILED: i32 = -9;
/// Too many open handles in this request (pending operations and open
/// responses; the limit is 64).
pub const BUSY: i32 = -10;
/// Every code with its name, for documentation and the agreement test.
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
