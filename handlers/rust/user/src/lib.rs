//! `user`: a route parameter. Dropped into the web root as
//! `users/[id].wasm`, it serves `/users/42` with `user 42`.

use wasmlet_sdk::http::StatusCode;
use wasmlet_sdk::{IntoResponse, Request, Response, handler};

#[handler(get)]
fn show(req: Request) -> Response {
    match req.param("id") {
        Some(id) if !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) => {
            Response::text(["user ", &id, "\n"].concat())
        }
        Some(_) => (StatusCode::BAD_REQUEST, "a user id is a number\n").into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "no user id: serve this handler as users/[id].wasm\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::handle_get;
    use wasmlet_sdk::http::StatusCode;
    use wasmlet_sdk::testing::TestRequest;

    #[test]
    fn shows_the_user_named_by_the_route() {
        let response = TestRequest::get("/users/42")
            .param("id", "42")
            .call(handle_get);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text(), "user 42\n");
    }

    #[test]
    fn an_id_that_is_not_a_number_answers_400() {
        for id in ["abc", "4 2", ""] {
            let response = TestRequest::get("/users/x")
                .param("id", id)
                .call(handle_get);
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{id:?}");
        }
    }

    #[test]
    fn without_the_route_parameter_answers_404() {
        let response = TestRequest::get("/user").call(handle_get);
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
}
