//! The capabilities fixture as a WASI 0.3 component
//! (`wasi:http/handler@0.3.0`, written with `spin-sdk` 7): the same
//! endpoints, from the same `caps.rs`.

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
#[path = "../../capabilities/src/caps.rs"]
mod caps;

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod handler {
    use spin_sdk::http::{IntoResponse, Request};
    use spin_sdk::http_service;

    #[http_service]
    async fn handle(request: Request) -> impl IntoResponse {
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or_default().to_owned();
        super::caps::answer(&path, &query)
    }
}
