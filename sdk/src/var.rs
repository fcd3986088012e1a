//! [`var`]: the handler's `[variables]`, the values (API keys, tokens,
//! settings) its directory's `wasmlet.toml` files give it.

use crate::sys;

/// The value of variable `name` from the handler's `[variables]`, or `None`
/// when its configuration defines no such variable.
///
/// ```
/// use wasmlet_sdk::{Request, handler, var};
///
/// #[handler(get)]
/// fn greet(_req: Request) -> String {
///     format!("{}\n", var("greeting").unwrap_or_else(|| "hello".to_owned()))
/// }
///
/// use wasmlet_sdk::testing::TestRequest;
/// let response = TestRequest::get("/").var("greeting", "hi").call(handle_get);
/// assert_eq!(response.text(), "hi\n");
/// assert_eq!(TestRequest::get("/").call(handle_get).text(), "hello\n");
/// ```
pub fn var(name: &str) -> Option<String> {
    // The host reads values as UTF-8 text, so a lossy conversion never
    // changes one.
    sys::read_value(|buf| sys::var_get(name.as_bytes(), buf))
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::var;
    use crate::testing::TestRequest;

    #[test]
    fn a_variable_is_read_whole_and_an_undefined_one_is_none() {
        let long = "k".repeat(1000);
        TestRequest::get("/")
            .var("api_key", &long)
            .var("greeting", "hi")
            .var("greeting", "hello")
            .run(|| {
                assert_eq!(var("api_key").as_deref(), Some(long.as_str()));
                assert_eq!(
                    var("greeting").as_deref(),
                    Some("hello"),
                    "the last one wins"
                );
                assert_eq!(var("nope"), None);
            });
    }
}
