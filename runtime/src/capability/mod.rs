//! What handlers reach beyond their request, as plain async Rust with no
//! WebAssembly in it: the host imports in [`crate::host`] read the guest's
//! arguments, check the grant in its [`Policy`](crate::site::Policy), and
//! call these.
//!
//! - [`http`]: outbound HTTP behind an allow-list, with private addresses
//!   refused after DNS resolution, rustls for TLS, timeouts and size limits.
//! - [`kv`]: key-value stores: embedded SQLite, or Redis shared by several
//!   nodes.
//! - [`files`]: read-only files in the directories a configuration mounts.

pub mod files;
pub mod http;
pub mod kv;
