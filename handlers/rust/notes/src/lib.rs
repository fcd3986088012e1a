//! `notes`: notes in a key-value store, and files from a mount. One module
//! at `notes.wasm`, one export per verb, the key in the query string:
//!
//! | request | answer |
//! | --- | --- |
//! | `GET /notes` | the keys, one per line; `?prefix=P` lists those starting with `P` |
//! | `GET /notes?values` | `key: value` lines, every value read at once (`get_begin` + `join_all`) |
//! | `GET /notes?key=K` | the note, or `404` |
//! | `PUT` or `POST /notes?key=K` | stores the body as the note: `201`; `&ttl=S` forgets it after `S` seconds |
//! | `DELETE /notes?key=K` | `204`, or `404` if there was none |
//! | `GET /notes?file=NAME` | the file `NAME` of the mount `data`, or `404` |
//!
//! ```console
//! $ curl -X PUT --data 'milk, eggs' 'http://127.0.0.1:8080/notes?key=shopping'
//! $ curl -X PUT --data 'call back' 'http://127.0.0.1:8080/notes?key=todo&ttl=3600'
//! $ curl 'http://127.0.0.1:8080/notes?values'
//! shopping: milk, eggs
//! todo: call back
//! $ curl 'http://127.0.0.1:8080/notes?file=readme.txt'
//! ```
//!
//! It needs the default store and a mount called `data`, granted in a
//! `wasmlet.toml` beside it (or above it):
//!
//! ```toml
//! [kv]
//! stores = ["default"]
//!
//! [files.mounts]
//! data = "/srv/notes-data"
//! ```
//!
//! Without them, the calls fail with `Denied` and the handler answers
//! `500` (the log names the missing grant). A key the store refuses (empty,
//! over 1024 bytes, control characters) answers `400`, a note over the
//! store's `max-value-size` `413`.

use wasmlet_sdk::fs;
use wasmlet_sdk::http::StatusCode;
use wasmlet_sdk::kv::Store;
use wasmlet_sdk::{ErrorKind, IntoResponse, Request, Response, Result, handler, join_all};

/// The mount `?file=` reads from.
const MOUNT: &str = "data";

#[handler(get)]
fn read(req: Request) -> Result<Response> {
    let store = Store::default();
    if let Some(name) = req.query("file") {
        return file(&name);
    }
    if let Some(key) = req.query("key") {
        return Ok(match refused(store.get(&key))? {
            Ok(Some(note)) => body(note),
            Ok(None) => (StatusCode::NOT_FOUND, "no such note\n").into_response(),
            Err(response) => response,
        });
    }
    let prefix = req.query("prefix").unwrap_or_default();
    let keys = store.list(&prefix)?;
    if req.query("values").is_none() {
        return Ok(Response::text(
            keys.iter()
                .map(|key| format!("{key}\n"))
                .collect::<String>(),
        ));
    }
    // Every value is asked for before the first is waited for: the store
    // serves them concurrently.
    let values = join_all(keys.iter().map(|key| store.get_begin(key)));
    let mut lines = String::new();
    for (key, value) in keys.iter().zip(values) {
        // A note deleted since the list is left out.
        if let Some(value) = value? {
            lines += &format!("{key}: {}\n", String::from_utf8_lossy(&value));
        }
    }
    Ok(Response::text(lines))
}

#[handler(put, post)]
fn write(mut req: Request) -> Result<Response> {
    let Some(key) = req.query("key").map(|key| key.into_owned()) else {
        return Ok(missing_key());
    };
    let ttl = match req.query("ttl").map(|ttl| ttl.parse::<u64>()) {
        None => None,
        Some(Ok(seconds)) if seconds > 0 => Some(std::time::Duration::from_secs(seconds)),
        Some(_) => {
            return Ok((
                StatusCode::BAD_REQUEST,
                "ttl is a number of seconds above 0\n",
            )
                .into_response());
        }
    };
    let note = req.bytes()?;
    let store = Store::default();
    let stored = match ttl {
        Some(ttl) => store.set_with_ttl(&key, note, ttl),
        None => store.set(&key, note),
    };
    Ok(match refused(stored)? {
        Ok(()) => (StatusCode::CREATED, "stored\n").into_response(),
        Err(response) => response,
    })
}

#[handler(delete)]
fn remove(req: Request) -> Result<Response> {
    let Some(key) = req.query("key") else {
        return Ok(missing_key());
    };
    Ok(match refused(Store::default().delete(&key))? {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => (StatusCode::NOT_FOUND, "no such note\n").into_response(),
        Err(response) => response,
    })
}

/// `GET ?file=NAME`: the file from the mount.
fn file(name: &str) -> Result<Response> {
    match fs::read(&format!("{MOUNT}/{name}")) {
        Ok(contents) => Ok(body(contents)),
        Err(error) => match error.kind() {
            Some(ErrorKind::NotFound) => {
                Ok((StatusCode::NOT_FOUND, "no such file\n").into_response())
            }
            // `..`, or a name the host refuses: the client's mistake.
            Some(ErrorKind::Invalid) => {
                Ok((StatusCode::BAD_REQUEST, "not a file name\n").into_response())
            }
            // Denied (no `data` mount granted), an I/O error: the server's.
            _ => Err(error),
        },
    }
}

/// A store call's result, with the failures that are the client's fault
/// turned into their answers: `Err` only for the server's own failures.
fn refused<T>(result: Result<T>) -> Result<Result<T, Response>> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(error) => match error.kind() {
            Some(ErrorKind::Invalid) => Ok(Err((
                StatusCode::BAD_REQUEST,
                "a key is 1 to 1024 bytes of UTF-8 without control characters\n",
            )
                .into_response())),
            Some(ErrorKind::TooLarge) => Ok(Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                "the note is larger than the store accepts\n",
            )
                .into_response())),
            _ => Err(error),
        },
    }
}

fn missing_key() -> Response {
    (StatusCode::BAD_REQUEST, "name the note: ?key=NAME\n").into_response()
}

/// A note or file as a response: text when it is UTF-8, bytes otherwise.
fn body(bytes: Vec<u8>) -> Response {
    match String::from_utf8(bytes) {
        Ok(text) => Response::text(text),
        Err(error) => error.into_bytes().into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::{handle_delete, handle_get, handle_post, handle_put};
    use std::time::Duration;
    use wasmlet_sdk::http::StatusCode;
    use wasmlet_sdk::testing::TestRequest;

    #[test]
    fn put_stores_a_note_that_get_then_reads() {
        let put = TestRequest::put("/notes?key=shopping")
            .store("")
            .body("milk, eggs")
            .call(handle_put);
        assert_eq!(put.status(), StatusCode::CREATED);
        assert_eq!(put.kv("", "shopping"), Some(&b"milk, eggs"[..]));
        assert_eq!(put.kv_ttl("", "shopping"), None);

        let get = TestRequest::get("/notes?key=shopping")
            .kv("", "shopping", "milk, eggs")
            .call(handle_get);
        assert_eq!(get.status(), StatusCode::OK);
        assert_eq!(
            get.header("content-type"),
            Some("text/plain; charset=utf-8")
        );
        assert_eq!(get.text(), "milk, eggs");
    }

    #[test]
    fn post_with_a_ttl_stores_a_note_that_expires() {
        let response = TestRequest::post("/notes?key=todo&ttl=3600")
            .store("")
            .body("call back")
            .call(handle_post);
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.kv_ttl("", "todo"), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn a_bad_ttl_or_a_missing_key_answers_400() {
        for uri in ["/notes?key=a&ttl=soon", "/notes?key=a&ttl=0", "/notes"] {
            let response = TestRequest::put(uri).store("").body("x").call(handle_put);
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
            assert!(response.kv_keys("").is_empty(), "{uri}");
        }
        let response = TestRequest::delete("/notes").store("").call(handle_delete);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn a_key_the_store_refuses_answers_400_and_a_huge_note_413() {
        let response = TestRequest::put("/notes?key=a%0Ab")
            .store("")
            .body("x")
            .call(handle_put);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let response = TestRequest::get("/notes?key=").store("").call(handle_get);
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let response = TestRequest::put("/notes?key=big")
            .store("")
            .kv_max_value_size(10)
            .body("x".repeat(11))
            .call(handle_put);
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn get_and_delete_of_a_missing_note_answer_404() {
        let get = TestRequest::get("/notes?key=nope")
            .store("")
            .call(handle_get);
        assert_eq!(get.status(), StatusCode::NOT_FOUND);
        let delete = TestRequest::delete("/notes?key=nope")
            .store("")
            .call(handle_delete);
        assert_eq!(delete.status(), StatusCode::NOT_FOUND);
    }

    #[test]
    fn delete_removes_a_note() {
        let response = TestRequest::delete("/notes?key=a")
            .kv("", "a", "1")
            .kv("", "b", "2")
            .call(handle_delete);
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(response.kv_keys(""), ["b"]);
    }

    #[test]
    fn get_lists_keys_by_prefix_and_with_values() {
        let notes = |uri: &str| {
            TestRequest::get(uri)
                .kv("", "todo", "call back")
                .kv("", "shop/milk", "2 l")
                .kv("", "shop/eggs", "6")
                .call(handle_get)
        };
        assert_eq!(notes("/notes").text(), "shop/eggs\nshop/milk\ntodo\n");
        assert_eq!(
            notes("/notes?prefix=shop/").text(),
            "shop/eggs\nshop/milk\n"
        );
        assert_eq!(notes("/notes?prefix=nothing").text(), "");
        assert_eq!(
            notes("/notes?values").text(),
            "shop/eggs: 6\nshop/milk: 2 l\ntodo: call back\n"
        );
        assert_eq!(
            notes("/notes?values&prefix=todo").text(),
            "todo: call back\n"
        );
    }

    #[test]
    fn file_reads_from_the_data_mount() {
        let response = TestRequest::get("/notes?file=readme.txt")
            .file("data/readme.txt", "read me\n")
            .call(handle_get);
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.text(), "read me\n");
        let binary = TestRequest::get("/notes?file=logo.png")
            .file("data/logo.png", [0x89, b'P', b'N', b'G', 0xff])
            .call(handle_get);
        assert_eq!(
            binary.header("content-type"),
            Some("application/octet-stream")
        );
        assert_eq!(binary.body(), [0x89, b'P', b'N', b'G', 0xff]);
    }

    #[test]
    fn a_missing_file_is_404_and_a_climbing_name_400() {
        let missing = TestRequest::get("/notes?file=nope.txt")
            .mount("data")
            .call(handle_get);
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        let climbing = TestRequest::get("/notes?file=../secret")
            .mount("data")
            .call(handle_get);
        assert_eq!(climbing.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn without_grants_the_handler_answers_500_and_logs_why() {
        for (request, needle) in [
            (TestRequest::get("/notes?key=a"), "store \"default\""),
            (TestRequest::get("/notes?file=a.txt"), "outside every mount"),
        ] {
            let response = request.call(handle_get);
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert!(!response.text().contains(needle));
            assert!(
                response
                    .logs()
                    .iter()
                    .any(|line| line.message.contains(needle)),
                "{:?}",
                response.logs()
            );
        }
    }
}
