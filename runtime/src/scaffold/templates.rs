//! The text of what `wasmlet new` writes, with `NAME` (and in the README,
//! `FILE`) standing for the handler's name, and the manifests of the SDK copy
//! it vendors, with `VERSION` for wasmlet's.

pub(super) const WAT_HELLO: &str = r#";; NAME: a wasmlet handler in WebAssembly text. In a web root it serves
;; GET /NAME with "hello, world"; the runtime compiles it on the first request
;; and again whenever the file changes. The imports are documented in
;; docs/abi.md of the wasmlet repository.
(module
  (import "wasmlet" "resp_header" (func $resp_header (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "resp_write" (func $resp_write (param i32 i32) (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 0) "content-type")               ;; 12 bytes
  (data (i32.const 16) "text/plain; charset=utf-8") ;; 25 bytes
  (data (i32.const 48) "hello, world\n")            ;; 13 bytes

  ;; `handle_get` serves GET only; export `handle` to serve every verb.
  (func (export "handle_get")
    (drop (call $resp_header (i32.const 0) (i32.const 12) (i32.const 16) (i32.const 25)))
    ;; The first write sends the head; returning ends the response.
    (drop (call $resp_write (i32.const 48) (i32.const 13)))))
"#;

pub(super) const CARGO_TOML: &str = r#"[package]
name = "NAME"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the .wasm module the runtime loads; rlib: lets `cargo test` run the
# handler natively, on the SDK's fake host.
crate-type = ["cdylib", "rlib"]

[dependencies]
# The SDK matching the wasmlet that created this crate, copied in by
# `wasmlet new`.
wasmlet-sdk = { path = "vendor/wasmlet-sdk" }

# Small modules load and compile faster, and a handler waits on I/O far more
# than it computes. A panic in a handler traps, so the unwinding machinery is
# dead weight (tests ignore this and still unwind).
[profile.release]
opt-level = "z"
lto = true
codegen-units = 1
panic = "abort"
strip = true

# A crate of its own, even when created inside another Cargo workspace.
[workspace]
"#;

pub(super) const RUST_HELLO: &str = r#"//! The `NAME` handler: `GET /NAME?name=ann` answers `hello, ann`.

use wasmlet_sdk::{Request, handler};

#[handler(get)]
fn hello(req: Request) -> String {
    let name = req.query("name");
    format!("hello, {}\n", name.as_deref().unwrap_or("world"))
}

#[cfg(test)]
mod tests {
    use super::handle_get;
    use wasmlet_sdk::testing::TestRequest;

    #[test]
    fn greets_the_name_from_the_query() {
        let response = TestRequest::get("/NAME?name=ann").call(handle_get);
        assert_eq!(response.text(), "hello, ann\n");
    }

    #[test]
    fn greets_the_world_by_default() {
        let response = TestRequest::get("/NAME").call(handle_get);
        assert_eq!(response.text(), "hello, world\n");
    }
}
"#;

pub(super) const README: &str = r#"# NAME

A wasmlet handler in Rust. Test it natively, then build it for wasm32 and copy
it into the web root as `NAME.wasm`:

    cargo test
    cargo build --release --target wasm32-unknown-unknown
    cp target/wasm32-unknown-unknown/release/FILE.wasm /path/to/webroot/NAME.wasm

Keep this crate outside the web root: wasmlet never serves Rust source,
manifests or `target/`, but a web root is for what is served.

The wasm target needs installing once; `rust-toolchain.toml` names it, so
running `rustup toolchain install` here adds it (or `rustup target add
wasm32-unknown-unknown`).

`vendor/wasmlet-sdk` is the SDK of the wasmlet that created this crate; a
newer wasmlet's `wasmlet new` writes a newer copy.
"#;

pub(super) const RUST_TOOLCHAIN: &str = r#"# Your default toolchain, with the target handlers build for: run
# `rustup toolchain install` here once to add it.
[toolchain]
targets = ["wasm32-unknown-unknown"]
"#;

pub(super) const COMPONENT_CARGO_TOML: &str = r#"[package]
name = "NAME"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# Built for wasm32-wasip2 (see .cargo/config.toml), a cdylib is a component.
crate-type = ["cdylib"]

[dependencies]
# The Spin SDK for Rust builds standard WASI 0.3 `wasi:http` handlers; with
# only its `http` feature the component imports nothing but WASI, so wasmlet,
# `wasmtime serve` and Spin all run it unchanged.
spin-sdk = { version = "7", default-features = false, features = ["http"] }

# Small components load and compile faster.
[profile.release]
opt-level = "s"
lto = true
codegen-units = 1
strip = true

# A crate of its own, even when created inside another Cargo workspace.
[workspace]
"#;

pub(super) const COMPONENT_HELLO: &str = r#"//! The `NAME` handler: a WASI 0.3 component (`wasi:http/handler@0.3.0`).
//! `GET /NAME?name=ann` answers `hello, ann`.
//!
//! The handler is an `async fn`: awaiting the request body, a timer or an
//! outbound request (`spin_sdk::http::send`) suspends it, and the server
//! serves other requests meanwhile.

use spin_sdk::http::{IntoResponse, Request};
use spin_sdk::http_service;

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    let name = request
        .uri()
        .query()
        .and_then(|query| query.split('&').find_map(|pair| pair.strip_prefix("name=")))
        .unwrap_or("world")
        .to_owned();
    format!("hello, {name}\n")
}
"#;

pub(super) const COMPONENT_CARGO_CONFIG: &str = r#"# Components build for WASI 0.2's target, whose linker makes a component of
# a cdylib; the WASI 0.3 world comes from the SDK's bindings.
[build]
target = "wasm32-wasip2"
"#;

pub(super) const COMPONENT_TOOLCHAIN: &str = r#"# Your default toolchain, with the target components build for: run
# `rustup toolchain install` here once to add it.
[toolchain]
targets = ["wasm32-wasip2"]
"#;

pub(super) const COMPONENT_README: &str = r#"# NAME

A wasmlet handler written as a standard WASI 0.3 `wasi:http` component, with
the Spin SDK for Rust. Build it, then copy it into the web root as
`NAME.wasm`:

    cargo build --release
    cp target/wasm32-wasip2/release/FILE.wasm /path/to/webroot/NAME.wasm

The target, `wasm32-wasip2`, needs installing once; `rust-toolchain.toml`
names it, so running `rustup toolchain install` here adds it (or `rustup
target add wasm32-wasip2`).

Keep this crate outside the web root: wasmlet never serves Rust source,
manifests or `target/`, but a web root is for what is served. What a
component can use, and how `wasmlet.toml` grants it, is in wasmlet's
docs/components.md.
"#;

/// `vendor/wasmlet-sdk/Cargo.toml`: the SDK's manifest without this
/// workspace's inheritance (a test checks that it names the same
/// dependencies, versions and features).
pub(super) const SDK_MANIFEST: &str = r#"# The wasmlet SDK, copied in by `wasmlet new` (wasmlet VERSION).
[package]
name = "wasmlet-sdk"
version = "VERSION"
edition = "2024"
publish = false

[features]
default = ["allocator"]
# The handler's global allocator (src/sys/alloc.rs); turn it off with
# `default-features = false` to set your own.
allocator = ["dep:talc"]
json = ["dep:serde", "dep:serde_json"]

[dependencies]
http = "1"
serde = { version = "1", optional = true }
serde_json = { version = "1", optional = true }
wasmlet-abi = { path = "abi" }
wasmlet-sdk-macros = { path = "macros" }

[target.'cfg(target_arch = "wasm32")'.dependencies]
talc = { version = "5.1", default-features = false, optional = true }

[dev-dependencies]
serde = { version = "1", features = ["derive"] }

[lints.rust]
unsafe_op_in_unsafe_fn = "deny"
missing_docs = "warn"
unreachable_pub = "warn"
"#;

/// `vendor/wasmlet-sdk/abi/Cargo.toml`, likewise.
pub(super) const SDK_ABI_MANIFEST: &str = r#"# The wasmlet ABI table, copied in by `wasmlet new` (wasmlet VERSION).
[package]
name = "wasmlet-abi"
version = "VERSION"
edition = "2024"
publish = false

[dependencies]

[lints.rust]
unsafe_op_in_unsafe_fn = "deny"
missing_docs = "warn"
unreachable_pub = "warn"
"#;

/// `vendor/wasmlet-sdk/macros/Cargo.toml`, likewise.
pub(super) const SDK_MACROS_MANIFEST: &str = r#"# The wasmlet SDK's `#[handler]`, copied in by `wasmlet new` (wasmlet VERSION).
[package]
name = "wasmlet-sdk-macros"
version = "VERSION"
edition = "2024"
publish = false

[lib]
proc-macro = true

[dependencies]
proc-macro2 = "1"
quote = "1"
syn = { version = "2", features = ["full", "visit"] }

[lints.rust]
unsafe_op_in_unsafe_fn = "deny"
missing_docs = "warn"
unreachable_pub = "warn"
"#;
