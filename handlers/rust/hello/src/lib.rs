//! `hello`: `GET /hello?name=ann` answers `hello, ann`; without a name (or
//! with an empty one), `hello, world`.
//!
//! Build: `cargo build --profile wasm-release --target wasm32-unknown-unknown
//! -p wasmlet-handler-hello`, then copy `hello.wasm` into the web root.

use wasmlet_sdk::{Request, handler};

#[handler(get)]
fn hello(req: Request) -> String {
    let name = req.query("name");
    let name = name.as_deref().filter(|name| !name.is_empty());
    // `concat` rather than `format!`: no formatting machinery on the path of
    // every request.
    ["hello, ", name.unwrap_or("world"), "\n"].concat()
}

#[cfg(test)]
mod tests {
    use super::handle_get;
    use wasmlet_sdk::http::StatusCode;
    use wasmlet_sdk::testing::TestRequest;

    #[test]
    fn greets_the_name_from_the_query() {
        let cases = [
            ("/hello", "hello, world\n"),
            ("/hello?name=", "hello, world\n"),
            ("/hello?name=ann", "hello, ann\n"),
            ("/hello?x=1&name=ann+lee", "hello, ann lee\n"),
            ("/hello?name=%C3%A9mile", "hello, \u{e9}mile\n"),
        ];
        for (uri, greeting) in cases {
            let response = TestRequest::get(uri).call(handle_get);
            assert_eq!(response.status(), StatusCode::OK, "{uri}");
            assert_eq!(response.text(), greeting, "{uri}");
        }
    }

    #[test]
    fn answers_plain_text() {
        let response = TestRequest::get("/hello").call(handle_get);
        assert_eq!(
            response.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
    }
}
