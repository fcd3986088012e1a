//! Static files: a file the router already resolved and checked, served by
//! `hyper-staticfile` (content type, `HEAD`, `Last-Modified`/`ETag`, ranges),
//! plus `If-None-Match`, which that crate leaves to its users. Only a regular
//! file is ever opened (`regular_file`): a FIFO swapped in after routing is
//! not found, never a read that waits for a writer.

use std::path::Path;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use hyper_staticfile::ResolvedFile;
use hyper_staticfile::util::FileResponseBuilder;

use super::body::ResponseBody;
use super::service::plain;
use crate::regular_file;

/// Serves `file` (already resolved, contained and allowed by the router).
pub(crate) async fn serve(
    method: &Method,
    headers: &HeaderMap,
    file: &Path,
) -> Response<ResponseBody> {
    if method != Method::GET && method != Method::HEAD {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "static files answer GET and HEAD\n",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let path = file.to_path_buf();
    let opened = tokio::task::spawn_blocking(move || regular_file::open(&path)).await;
    let (handle, meta) = match opened {
        Ok(Ok(opened)) => opened,
        // Gone, or replaced by something that is not a regular file (a FIFO
        // would otherwise hold a blocking thread until a writer came), between
        // routing and opening: as if it had never been there, like a FIFO the
        // router sees.
        Ok(Err(e)) => {
            tracing::debug!(file = %file.display(), error = %e, "static file not served");
            return plain(StatusCode::NOT_FOUND, "not found\n");
        }
        Err(e) => {
            tracing::error!(file = %file.display(), error = %e, "opening a static file failed");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n");
        }
    };
    let resolved = ResolvedFile {
        handle: tokio::fs::File::from_std(handle),
        path: file.to_path_buf(),
        size: meta.len(),
        modified: meta.modified().ok(),
        content_type: Some(content_type(file)),
        encoding: None,
    };
    let response = FileResponseBuilder::new()
        .request_parts(method, headers)
        .build(resolved);
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(file = %file.display(), error = %e, "cannot build a static file response");
            return plain(StatusCode::INTERNAL_SERVER_ERROR, "internal server error\n");
        }
    };
    if not_modified(headers, response.headers()) {
        let mut unchanged = plain(StatusCode::NOT_MODIFIED, "");
        for name in [header::ETAG, header::LAST_MODIFIED] {
            if let Some(value) = response.headers().get(&name) {
                unchanged.headers_mut().insert(name, value.clone());
            }
        }
        return unchanged;
    }
    response.map(ResponseBody::File)
}

/// The content type from the file name; text types say they are UTF-8, which
/// is what a web root's text files almost always are.
fn content_type(file: &Path) -> String {
    let mime = mime_guess::from_path(file).first_or_octet_stream();
    let textual = mime.type_() == mime_guess::mime::TEXT
        || mime.subtype() == mime_guess::mime::JAVASCRIPT
        || mime.subtype() == mime_guess::mime::JSON;
    if textual && mime.get_param(mime_guess::mime::CHARSET).is_none() {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_string()
    }
}

/// `If-None-Match` against the response's `ETag`, with the weak comparison
/// RFC 9110 prescribes for `GET`/`HEAD`.
fn not_modified(request: &HeaderMap, response: &HeaderMap) -> bool {
    let (Some(condition), Some(etag)) = (
        request
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok()),
        response.get(header::ETAG).and_then(|v| v.to_str().ok()),
    ) else {
        return false;
    };
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    condition.trim() == "*" || condition.split(',').any(|tag| opaque(tag) == opaque(etag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(
            content_type(Path::new("a.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("a.png")), "image/png");
        assert_eq!(
            content_type(Path::new("a.json")),
            "application/json; charset=utf-8"
        );
        assert_eq!(content_type(Path::new("noext")), "application/octet-stream");
    }

    #[test]
    fn if_none_match_compares_weakly() {
        let mut response = HeaderMap::new();
        response.insert(header::ETAG, HeaderValue::from_static("W/\"abc\""));
        let cases = [
            ("\"abc\"", true),
            ("W/\"abc\"", true),
            ("\"x\", W/\"abc\"", true),
            ("*", true),
            ("\"abd\"", false),
        ];
        for (condition, want) in cases {
            let mut request = HeaderMap::new();
            request.insert(
                header::IF_NONE_MATCH,
                HeaderValue::from_str(condition).unwrap(),
            );
            assert_eq!(not_modified(&request, &response), want, "{condition}");
        }
        assert!(!not_modified(&HeaderMap::new(), &response));
    }
}
