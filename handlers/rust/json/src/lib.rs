//! `json`: `POST` a JSON object such as `{"name": "ann", "excited": true}`;
//! the answer is JSON too: `{"greeting": "hello, ann!", "chars": 3}`. A body
//! that is not such an object answers `400` with `{"error": "..."}`.

use serde::{Deserialize, Serialize};
use wasmlet_sdk::http::StatusCode;
use wasmlet_sdk::{Request, Response, Result, handler};

/// What the client sends.
#[derive(Deserialize)]
struct Greet {
    name: String,
    #[serde(default)]
    excited: bool,
}

/// What the client gets back.
#[derive(Serialize)]
struct Greeting {
    greeting: String,
    /// The name's length in characters, to show the handler did some work.
    chars: usize,
}

/// What a client that sent a bad body gets back.
#[derive(Serialize)]
struct Problem {
    error: String,
}

#[handler(post)]
fn greet(mut req: Request) -> Result<Response> {
    let input: Greet = match req.json() {
        Ok(input) => input,
        Err(error) => {
            let problem = Problem {
                error: error.to_string(),
            };
            return Ok(Response::json(&problem)?.with_status(StatusCode::BAD_REQUEST));
        }
    };
    let mark = if input.excited { "!" } else { "" };
    Response::json(&Greeting {
        greeting: format!("hello, {}{mark}", input.name),
        chars: input.name.chars().count(),
    })
}

#[cfg(test)]
mod tests {
    use super::handle_post;
    use serde_json::{Value, json};
    use wasmlet_sdk::http::StatusCode;
    use wasmlet_sdk::testing::TestRequest;

    #[test]
    fn answers_a_greeting_as_json() {
        let cases = [
            (
                json!({"name": "ann"}),
                json!({"greeting": "hello, ann", "chars": 3}),
            ),
            (
                json!({"name": "Zoë", "excited": true}),
                json!({"greeting": "hello, Zoë!", "chars": 3}),
            ),
        ];
        for (input, expected) in cases {
            let response = TestRequest::post("/json").json(&input).call(handle_post);
            assert_eq!(response.status(), StatusCode::OK, "{input}");
            assert_eq!(response.header("content-type"), Some("application/json"));
            assert_eq!(response.json::<Value>(), expected, "{input}");
        }
    }

    #[test]
    fn a_body_that_is_not_the_expected_object_answers_400_with_the_reason() {
        let bodies = [
            "",
            "not json",
            "[1, 2]",
            r#"{"nom": "ann"}"#,
            r#"{"name": 7}"#,
        ];
        for body in bodies {
            let response = TestRequest::post("/json").body(body).call(handle_post);
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{body:?}");
            let problem: Value = response.json();
            assert!(problem["error"].is_string(), "{body:?}: {problem}");
        }
    }
}
