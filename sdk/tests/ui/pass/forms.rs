//! Every handler form the attribute accepts.

use std::io::Write;
use wasmlet_sdk::http::StatusCode;
use wasmlet_sdk::{IntoResponse, Request, Response, ResponseWriter, handler};

#[handler]
fn any_verb() -> impl IntoResponse {
    "hi"
}

#[handler(get)]
pub fn buffered(req: Request) -> Result<Response, std::fmt::Error> {
    Ok(Response::text(req.path().to_owned()))
}

#[handler(post, put)]
fn status_only(_req: Request) -> StatusCode {
    StatusCode::NO_CONTENT
}

#[handler(patch)]
fn streaming(_req: Request, out: &mut ResponseWriter) -> std::io::Result<()> {
    out.write_all(b"x")
}

#[handler(delete)]
fn streaming_unit(mut _req: Request, _out: &mut ResponseWriter) {}

#[handler(options)]
const fn constant() -> &'static str {
    "allowed"
}

mod nested {
    /// Handlers may live in modules.
    #[wasmlet_sdk::handler(trace, connect, head)]
    fn traced() {}
}

fn main() {
    let _exports: [fn(); 10] = [
        handle,
        handle_get,
        handle_post,
        handle_put,
        handle_patch,
        handle_delete,
        handle_options,
        nested::handle_trace,
        nested::handle_connect,
        nested::handle_head,
    ];
}
