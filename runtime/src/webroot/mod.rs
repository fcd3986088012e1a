//! The web root as a file tree: every rule about its files lives here, and
//! this module imports nothing else of the crate, so every layer may use it.
//!
//! # Layout
//! - [`classify`](mod@classify): the one rule that says whether a file is a handler, a
//!   static file or never served (and why), for the router, the tree walk,
//!   the watcher and the file capability alike.
//! - [`contain`]: real-path containment, for what a request reaches and for
//!   what must stay out of the root (caches, data, stores).
//! - [`walk`](mod@walk): the one walk of the tree.
//! - [`epoch`]: which picture of the tree the watcher vouches for, so
//!   requests can trust what they learnt from the disk.
//! - `tripwire`: the kernel's queue of changes under the root, which each
//!   request reads (without blocking) before it trusts an epoch.
//! - [`version`]: one version of a file on disk.

pub mod classify;
pub mod contain;
pub mod epoch;
#[cfg(target_os = "linux")]
mod tripwire;
pub mod version;
pub mod walk;

pub use classify::{CONFIG_FILE, Class, HANDLER_EXTENSIONS, SOURCE_EXTENSION, Withheld, classify};
pub use contain::{contained, inside, real_path};
pub use epoch::{Epoch, Lookup};
pub use version::Version;
pub use walk::{Entry, handler_files, walk};
