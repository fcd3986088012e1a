//! A test component (WASI 0.2, `wasi:http/incoming-handler`) that reports
//! what it finds through `wasi:keyvalue`, `wasi:config` and
//! `wasi:filesystem`: see `caps.rs` for its endpoints. Always `200`, so a
//! test sees that a denial is an error result and not a trap.

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod caps;

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod handler {
    use wstd::http::{Body, Error, Request, Response};

    /// Named `main` because `#[wstd::http_server]` requires it; it is the
    /// request handler.
    #[wstd::http_server]
    async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or_default().to_owned();
        Ok(Response::new(Body::from(super::caps::answer(
            &path, &query,
        ))))
    }
}
