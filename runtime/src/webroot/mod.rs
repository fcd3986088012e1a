//! The web root as a file tree: what each file in it is.
//!
//! # Layout
//! - [`classify`]: the one rule that says whether a file is a handler, a
//!   static file or never served (and why), for the router, the tree walk and
//!   the watcher alike.

pub mod classify;

pub use classify::{CONFIG_FILE, Class, HANDLER_EXTENSIONS, SOURCE_EXTENSION, Withheld, classify};
