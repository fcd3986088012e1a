//! The guest ABI's shared vocabulary — the import module name, every import
//! with its signature, the negative status codes and the log levels — from
//! the `wasmlet-abi` crate (`sdk/abi`), which the SDK uses too: one table,
//! so a handler built with the SDK sees the same names and numbers.
//! `docs/abi.md` documents each import and code.

pub use wasmlet_abi::{IMPORTS, Import, MODULE, Type, code, find, level, nearest, write_func};
