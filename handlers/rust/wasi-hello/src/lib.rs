//! `wasi-hello`: a standard `wasi:http` component (the WASI 0.2 proxy world),
//! written with `wstd`, that runs unchanged under `wasmtime serve` or here.
//! Build it with
//! `cargo build --profile wasm-release --target wasm32-wasip2 -p wasmlet-handler-wasi-hello`
//! and copy `wasi_hello.wasm` into a web root.
//!
//! It answers by the last segment of the request path, so it works wherever
//! it is mounted (as `app/[...path].wasm` it serves `/app/echo`, …):
//! - `echo` (`POST`): the request body back, streamed.
//! - `count` (`POST`): reads the body as it arrives and says how many bytes
//!   came, or after how many a read failed and why.
//! - `stream`: `?chunks=N&ms=M` (default 5 and 100): N lines, M ms apart, each
//!   sent as it is written.
//! - `hits`: `hits N`, the number of requests this instance has served, this
//!   one included (always 1 on a fresh instance per request; counting up
//!   when the handler's instances are reused).
//! - `trap`: panics, which traps the instance.
//! - `spin`: computes forever, until the host's request timeout.
//! - `grow`: `?mib=N` (default 1) allocates and fills N MiB, then answers;
//!   past the host's memory limit the allocation fails, which traps.
//! - `sleep`: `?ms=M` (default 60000) waits on the host timer, then answers.
//! - `fetch`: `?url=U` fetches `U` with `wasi:http/outgoing-handler` and
//!   answers with its status and body, or `502` with the error.
//! - `status`: `?code=N` answers with status N, whatever it is (the host
//!   refuses a 1xx).
//! - `headers`: `?n=N&size=S` answers with N header fields of S bytes each.
//! - `print`: `?lines=N&size=S` prints N lines of S bytes to stdout.
//! - anything else (`GET`): `hello, NAME` with `?name=NAME` (default
//!   `world`).

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod handler;
