//! Host capabilities a handler can be granted beyond its own request: each
//! is a plain Rust module with its settings, its checks and its I/O, and no
//! wasmtime code. The imports in [`crate::host`] expose them to guests.
//!
//! A capability denies by default: with no settings a handler can call every
//! import, and every call that would reach outside the request is refused.

pub mod http;
