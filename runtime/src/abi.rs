//! The guest ABI's shared vocabulary — the import module name, every import
//! with its signature, the negative status codes and the log levels — from
//! the `wasmlet-abi` crate (`sdk/abi`), which the SDK uses too: one table,
//! so a handler built with the SDK sees the same names and numbers.
//!
//! What the runtime derives from it: the loader refuses a module whose
//! imports are not in the table, naming the signature it expects
//! (`loader/compile.rs`), and a test checks that the host's linker defines
//! every import with the table's signature (`host/mod.rs`). `docs/abi.md`
//! documents each import and code, and `tests/tests/docs.rs` checks it
//! against the table.

pub use wasmlet_abi::{IMPORTS, Import, MODULE, Type, code, find, level, nearest, write_func};
