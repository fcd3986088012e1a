//! The wasmlet guest ABI as data, shared by the runtime and the SDK so the
//! two cannot drift apart: the import module, every import with its
//! signature, the negative status codes and the log levels.
//!
//! The fixed part of the ABI is `shared/abi-core-v1.md`; every import is
//! documented in `docs/abi.md`. From this one table come the runtime's list of
//! imports (and the load-time check of a module's imports, with a message that
//! names the expected signature), the test that the runtime defines each
//! import with its signature, the SDK's codes and the check of its
//! declarations, and the check that `docs/abi.md` has a section and a
//! matching example for each import.
//!
//! Imports are only ever added, never renamed or removed, and codes never
//! renumbered: handlers built against an older table keep working.

#![no_std]

use core::fmt;

/// The module every host import lives in.
pub const MODULE: &str = "wasmlet";

/// A value type in an import's signature. Pointers and lengths are `I32`
/// (wasm32); 64-bit quantities (milliseconds, offsets, sizes) are `I64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A 32-bit integer: a pointer, a length, a handle, a status code.
    I32,
    /// A 64-bit integer.
    I64,
}

use Type::{I32, I64};

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            I32 => "i32",
            I64 => "i64",
        })
    }
}

/// One host import: its name in module [`MODULE`] and its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Import {
    /// The import's name.
    pub name: &'static str,
    /// Parameter types, in order.
    pub params: &'static [Type],
    /// Result types (none or one).
    pub results: &'static [Type],
}

impl Import {
    /// The signature as WebAssembly text writes a function type, e.g.
    /// `(func (param i32 i32) (result i32))`.
    pub fn wat(&self) -> Signature<'_> {
        Signature(self)
    }
}

/// [`Import::wat`]'s display form.
#[derive(Debug)]
pub struct Signature<'a>(&'a Import);

impl fmt::Display for Signature<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_func(f, self.0.params, self.0.results)
    }
}

/// Writes a function type as WebAssembly text does.
pub fn write_func(f: &mut impl fmt::Write, params: &[Type], results: &[Type]) -> fmt::Result {
    f.write_str("(func")?;
    for (label, types) in [("param", params), ("result", results)] {
        if !types.is_empty() {
            write!(f, " ({label}")?;
            for ty in types {
                write!(f, " {ty}")?;
            }
            f.write_str(")")?;
        }
    }
    f.write_str(")")
}

const fn import(name: &'static str, params: &'static [Type], results: &'static [Type]) -> Import {
    Import {
        name,
        params,
        results,
    }
}

/// Every import, in the order `docs/abi.md` documents them.
pub const IMPORTS: &[Import] = &[
    // The request (v1).
    import("req_method", &[I32, I32], &[I32]),
    import("req_uri", &[I32, I32], &[I32]),
    import("req_header", &[I32, I32, I32, I32], &[I32]),
    import("req_param", &[I32, I32, I32, I32], &[I32]),
    import("req_body_read", &[I32, I32], &[I32]),
    // The response (v1).
    import("resp_status", &[I32], &[I32]),
    import("resp_header", &[I32, I32, I32, I32], &[I32]),
    import("resp_write", &[I32, I32], &[I32]),
    // Logging, time and handles.
    import("log", &[I32, I32, I32], &[]),
    import("sleep_ms", &[I64], &[]),
    import("clock_now_ms", &[], &[I64]),
    import("clock_elapsed_us", &[], &[I64]),
    import("error_message", &[I32, I32], &[I32]),
    import("close", &[I32], &[I32]),
    // Outbound HTTP.
    import(
        "http_send",
        &[I32, I32, I32, I32, I32, I32, I32, I32],
        &[I32],
    ),
    import(
        "http_begin",
        &[I32, I32, I32, I32, I32, I32, I32, I32],
        &[I32],
    ),
    import("http_end", &[I32], &[I32]),
    import("http_status", &[I32], &[I32]),
    import("http_header", &[I32, I32, I32, I32, I32], &[I32]),
    import("http_headers", &[I32, I32, I32], &[I32]),
    import("http_read", &[I32, I32, I32], &[I32]),
    // Key-value stores.
    import("kv_get", &[I32, I32, I32, I32, I32, I32], &[I32]),
    import("kv_get_begin", &[I32, I32, I32, I32], &[I32]),
    import("kv_get_end", &[I32, I32, I32], &[I32]),
    import("kv_set", &[I32, I32, I32, I32, I32, I32, I64], &[I32]),
    import("kv_set_begin", &[I32, I32, I32, I32, I32, I32, I64], &[I32]),
    import("kv_set_end", &[I32], &[I32]),
    import("kv_delete", &[I32, I32, I32, I32], &[I32]),
    import("kv_delete_begin", &[I32, I32, I32, I32], &[I32]),
    import("kv_delete_end", &[I32], &[I32]),
    import("kv_list", &[I32, I32, I32, I32, I32, I32], &[I32]),
    import("kv_list_begin", &[I32, I32, I32, I32], &[I32]),
    import("kv_list_end", &[I32, I32, I32], &[I32]),
    // Granted files.
    import("file_read", &[I32, I32, I64, I32, I32], &[I32]),
    import("file_size", &[I32, I32], &[I64]),
    import("file_read_begin", &[I32, I32, I64, I32], &[I32]),
    import("file_read_end", &[I32, I32, I32], &[I32]),
    // Configuration variables.
    import("var_get", &[I32, I32, I32, I32], &[I32]),
];

/// The import called `name`.
pub fn find(name: &str) -> Option<&'static Import> {
    IMPORTS.iter().find(|import| import.name == name)
}

/// The import whose name is closest to `name`, for a "did you mean" when a
/// module imports a name that does not exist: at most a third of the name's
/// letters apart (at least one), or one name that contains the other.
pub fn nearest(name: &str) -> Option<&'static str> {
    let limit = (name.len() / 3).max(1);
    IMPORTS
        .iter()
        .map(|import| (distance(name, import.name), import.name))
        .filter(|(d, known)| *d <= limit || (name.len() > 3 && known.contains(name)))
        .min()
        .map(|(_, known)| known)
}

/// Levenshtein distance over bytes (import names are ASCII), with one row of
/// at most 32 cells: longer names are never close to an import.
fn distance(a: &str, b: &str) -> usize {
    const MAX: usize = 32;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() >= MAX || b.len() >= MAX {
        return usize::MAX;
    }
    let mut row = [0usize; MAX];
    for (j, cell) in row.iter_mut().enumerate().take(b.len() + 1) {
        *cell = j;
    }
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// Negative return codes, shared by every import that returns `i32`.
///
/// Codes are only ever added, never renumbered: handlers compiled against an
/// older table must keep reading the same meaning.
pub mod code {
    /// Success for calls that return a status rather than a length.
    pub const OK: i32 = 0;
    /// The value asked for does not exist (a header, a route parameter).
    pub const ABSENT: i32 = -1;
    /// An argument was rejected: a status outside `200..=999` (interim `1xx`
    /// statuses are the server's to send), a header name or value that is not
    /// valid HTTP, a string that is not UTF-8.
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

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::string::ToString;

    #[test]
    fn names_are_unique_and_follow_the_naming_rule() {
        for (i, import) in IMPORTS.iter().enumerate() {
            assert!(
                IMPORTS[..i].iter().all(|other| other.name != import.name),
                "{} twice",
                import.name
            );
            assert!(
                import
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{}",
                import.name
            );
            assert!(import.results.len() <= 1, "{}", import.name);
        }
    }

    #[test]
    fn the_v1_imports_keep_their_signatures() {
        // shared/abi-core-v1.md: never changed, never removed.
        let v1 = [
            ("req_method", "(func (param i32 i32) (result i32))"),
            ("req_uri", "(func (param i32 i32) (result i32))"),
            ("req_header", "(func (param i32 i32 i32 i32) (result i32))"),
            ("req_body_read", "(func (param i32 i32) (result i32))"),
            ("resp_status", "(func (param i32) (result i32))"),
            ("resp_header", "(func (param i32 i32 i32 i32) (result i32))"),
            ("resp_write", "(func (param i32 i32) (result i32))"),
            ("log", "(func (param i32 i32 i32))"),
            ("sleep_ms", "(func (param i64))"),
        ];
        for (name, signature) in v1 {
            let import = find(name).unwrap_or_else(|| panic!("{name} is gone"));
            assert_eq!(import.wat().to_string(), signature, "{name}");
        }
    }

    #[test]
    fn a_near_miss_finds_the_import_meant() {
        assert_eq!(nearest("resp_writ"), Some("resp_write"));
        assert_eq!(nearest("req_methd"), Some("req_method"));
        assert_eq!(nearest("kv_gett"), Some("kv_get"));
        assert_eq!(nearest("write"), Some("resp_write"));
        assert_eq!(nearest("teleport"), None);
        assert_eq!(nearest("x"), None);
        assert_eq!(nearest(&"a".repeat(40)), None);
    }

    #[test]
    fn codes_are_negative_and_distinct_but_ok() {
        for (i, (name, value)) in code::ALL.iter().enumerate() {
            assert!(*value < 0 || *name == "OK", "{name}");
            assert!(code::ALL[..i].iter().all(|(_, v)| v != value), "{name}");
        }
    }
}
