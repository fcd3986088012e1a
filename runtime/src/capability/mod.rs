//! What a handler can reach beyond its request, granted in `wasmlet.toml`:
//! each capability as plain async Rust with no WebAssembly in it. The guest
//! imports that expose them (and check the grants) live in [`crate::host`].
//!
//! No operation here blocks the calling thread: every capability is safe to
//! await on a tokio worker.

pub mod kv;
