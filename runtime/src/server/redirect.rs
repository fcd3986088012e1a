//! The plain-HTTP redirect listener (`--redirect-http ADDR`): every request
//! gets `308 Permanent Redirect` to the same host, path and query over
//! HTTPS, so `http://example.com/x` users and links reach the TLS listener.
//! `308` rather than `301`, so a client repeats a `POST` as a `POST`.
//!
//! It runs no handler and reads no body. It keeps the main listener's
//! protections: at most `--max-connections` open connections (its own
//! count), the header timeout for each connection's first request, and the
//! same limits on heads.

use std::convert::Infallible;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::uri::{Authority, Scheme, Uri};
use http::{Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::body::ResponseBody;
use super::connection::{Ended, FirstRequest, serve_until_first_request};
use super::service::plain;
use crate::config::Config;

/// Redirects every request on `listener` to HTTPS on `https_port`, until the
/// task running it is aborted.
pub(crate) async fn serve(config: Config, listener: TcpListener, https_port: u16) {
    let builder = super::connection::builder(&config);
    let header_timeout = config.header_timeout;
    let slots = Arc::new(Semaphore::new(config.max_connections as usize));
    let mut connections = JoinSet::new();
    loop {
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the connection semaphore is never closed");
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                if let Err(e) = super::accept_error(e).await {
                    // The HTTPS listener keeps serving; only the redirect is lost.
                    tracing::error!(error = %e, "the HTTP redirect listener stopped");
                    return;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let first = FirstRequest::default();
        let seen = first.clone();
        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
            seen.arrived();
            let response = redirect(&request, https_port);
            async move { Ok::<_, Infallible>(response) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        connections.spawn(async move {
            if let Ended::Served(Err(e)) =
                serve_until_first_request(connection, first, header_timeout).await
            {
                tracing::debug!(error = %e, "redirect connection ended with an error");
            }
            drop(slot);
        });
        while connections.try_join_next().is_some() {}
    }
}

/// The redirect for `request`, or `400` when it names no usable host.
fn redirect<B>(request: &Request<B>, https_port: u16) -> Response<ResponseBody> {
    match location(request, https_port) {
        Some(location) => {
            let mut response = plain(StatusCode::PERMANENT_REDIRECT, "use https\n");
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        None => plain(
            StatusCode::BAD_REQUEST,
            "send a Host header to be redirected to https\n",
        ),
    }
}

/// `https://HOST[:PORT]/path?query`: the host the client asked for (the
/// request's authority, else its `Host` header) without its port, and the
/// HTTPS listener's port unless it is 443.
fn location<B>(request: &Request<B>, https_port: u16) -> Option<HeaderValue> {
    let authority = match request.uri().authority() {
        Some(authority) => authority.clone(),
        None => request
            .headers()
            .get(header::HOST)?
            .to_str()
            .ok()?
            .parse::<Authority>()
            .ok()?,
    };
    let host = authority.host();
    let authority = if https_port == 443 {
        host.to_owned()
    } else {
        format!("{host}:{https_port}")
    };
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let uri = Uri::builder()
        .scheme(Scheme::HTTPS)
        .authority(authority)
        .path_and_query(path)
        .build()
        .ok()?;
    HeaderValue::try_from(uri.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(uri: &str, host: Option<&str>, port: u16) -> Option<String> {
        let mut request = Request::get(uri);
        if let Some(host) = host {
            request = request.header(header::HOST, host);
        }
        location(&request.body(()).unwrap(), port).map(|v| v.to_str().unwrap().to_owned())
    }

    #[test]
    fn the_location_keeps_host_path_and_query_and_names_the_https_port() {
        for (uri, host, port, want) in [
            (
                "/a/b?c=d",
                Some("example.com"),
                443,
                "https://example.com/a/b?c=d",
            ),
            ("/", Some("example.com:80"), 443, "https://example.com/"),
            (
                "/x",
                Some("localhost:8080"),
                8443,
                "https://localhost:8443/x",
            ),
            ("/x", Some("[::1]:80"), 8443, "https://[::1]:8443/x"),
            (
                "http://other.example/y",
                None,
                443,
                "https://other.example/y",
            ),
        ] {
            assert_eq!(at(uri, host, port).as_deref(), Some(want), "{uri} {host:?}");
        }
    }

    #[test]
    fn no_host_or_a_malformed_one_gets_no_location() {
        assert_eq!(at("/x", None, 443), None);
        assert_eq!(at("/x", Some("exa mple.com"), 443), None);
        assert_eq!(at("/x", Some(""), 443), None);
    }
}
