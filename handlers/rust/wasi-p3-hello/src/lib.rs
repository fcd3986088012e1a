//! `wasi-p3-hello`: a WASI 0.3 component handler (`wasi:http/handler@0.3.0`),
//! written with the Spin SDK for Rust (`spin-sdk` 7, `#[http_service]`) and
//! importing nothing but WASI, so it runs unchanged under `wasmtime serve`,
//! Spin, or here. Build it with
//! `cargo build --profile wasm-release --target wasm32-wasip2 -p wasmlet-handler-wasi-p3-hello`
//! and copy `wasi_p3_hello.wasm` into a web root.
//!
//! The guest awaits natively: a body, a timer or an outbound request
//! suspends its task, and the host serves other requests meanwhile. It
//! answers by the last segment of the request path:
//! - `echo` (`POST`): the request body back, streamed as it arrives.
//! - `stream`: `?chunks=N&ms=M` (default 5 and 100): N lines, M ms apart,
//!   each sent as it is written.
//! - `hits`: `hits N`, the number of requests this instance has taken, this
//!   one included (always 1 on a fresh instance per request; counting up
//!   when the handler's instances are reused).
//! - `sleep`: `?ms=M` (default 1000) waits on the host timer, then answers.
//! - `trap`: panics, which traps the instance.
//! - `spin`: computes forever, until the host's request timeout.
//! - `grow`: `?mib=N` (default 1) allocates and fills N MiB, then answers;
//!   past the host's memory limit the allocation fails, which traps.
//! - `fetch`: `?url=U` fetches `U` with `wasi:http/client` and answers with
//!   its status and body, or `502` with the error.
//! - `fanout`: `?url=U&n=N` (default 3) fetches `U` N times at once and
//!   awaits them together: the answer lists each status, and takes as long
//!   as the slowest fetch, not the sum.
//! - `error`: returns an error instead of a response (`internal-error`).
//! - `status`: `?code=N` answers with status N, whatever it is (the host
//!   refuses a 1xx).
//! - `headers`: `?n=N&size=S` answers with N header fields of S bytes each.
//! - anything else (`GET`): `hello, NAME` with `?name=NAME` (default
//!   `world`).

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod handler;
