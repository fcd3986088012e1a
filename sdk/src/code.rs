//! The ABI's negative status codes, shared by every import that returns
//! `i32`: the same table the runtime uses (`wasmlet-abi`).
//!
//! Handlers rarely need these: the SDK turns them into `Option`s and errors.
//! `docs/abi.md` says which import returns which.

pub use wasmlet_abi::code::*;
