//! The admin listener (`--admin ADDR`): what operators and their scrapers
//! look at, kept off the main listener so it never competes with handler
//! routes and can be bound to a private address.
//!
//! - `/`: leads to `/status` (`302`), so the bare address shows the page.
//! - `/metrics`: every metric in the Prometheus text format.
//! - `/status`: the status page as HTML.
//! - `/status.json`: the status page as JSON, the same as `--status-path`.
//!
//! Nothing else: every other path is `404`. Its requests are not counted in
//! the request metrics, so a scraper does not show up in what it scrapes.

use std::convert::Infallible;
use std::sync::Arc;

use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use super::App;
use super::body::ResponseBody;
use super::connection::{Ended, FirstRequest, serve_until_first_request};
use super::service::plain;
use super::status;

/// What the admin listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Page {
    Home,
    Metrics,
    StatusHtml,
    StatusJson,
}

/// Serves the admin pages on `listener` until the task running it is
/// aborted, which aborts its connections too: a scrape is short, and there is
/// nothing for it to finish.
pub(crate) async fn serve(app: Arc<App>, listener: TcpListener) {
    let builder = super::connection::builder(&app.config);
    let header_timeout = app.config.header_timeout;
    let mut connections = JoinSet::new();
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                if let Err(e) = super::accept_error(e).await {
                    // The main listener keeps serving; only the view is lost.
                    tracing::error!(error = %e, "the admin listener stopped");
                    return;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let first = FirstRequest::default();
        let seen = first.clone();
        let service = service_fn(move |request: Request<hyper::body::Incoming>| {
            seen.arrived();
            let app = app.clone();
            async move { Ok::<_, Infallible>(respond(&app, &request).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        connections.spawn(async move {
            // The same deadline as the main listener: a silent client must
            // not hold an admin connection either.
            match serve_until_first_request(connection, first, header_timeout).await {
                Ended::Served(Ok(())) | Ended::NoRequest => {}
                Ended::Served(Err(e)) => {
                    tracing::debug!(error = %e, "admin connection ended with an error");
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
}

async fn respond<B>(app: &App, request: &Request<B>) -> Response<ResponseBody> {
    let response = match route(request.method(), request.uri().path()) {
        Ok(Page::Home) => {
            let mut response = plain(StatusCode::FOUND, "see /status\n");
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/status"));
            response
        }
        Ok(Page::Metrics) => {
            // `wasmlet_handlers` is a view of the loader, taken as scraped.
            app.stats.set_handler_states(&status::state_counts(app));
            let mut response = plain(StatusCode::OK, app.stats.prometheus_text());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(prometheus::TEXT_FORMAT),
            );
            response
        }
        Ok(Page::StatusHtml) => status::html(app).await,
        Ok(Page::StatusJson) => status::json(app).await,
        Err(StatusCode::METHOD_NOT_ALLOWED) => {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            response
        }
        Err(status) => plain(status, "not found\n"),
    };
    tracing::debug!(
        target: "wasmlet::admin",
        method = %request.method(),
        path = request.uri().path(),
        status = response.status().as_u16(),
        "admin request"
    );
    response
}

/// The page for a request, or the status that refuses it.
fn route(method: &Method, path: &str) -> Result<Page, StatusCode> {
    let page = match path {
        "/" => Page::Home,
        "/metrics" => Page::Metrics,
        "/status" => Page::StatusHtml,
        "/status.json" => Page::StatusJson,
        _ => return Err(StatusCode::NOT_FOUND),
    };
    if method == Method::GET || method == Method::HEAD {
        Ok(page)
    } else {
        Err(StatusCode::METHOD_NOT_ALLOWED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_pages_and_the_way_to_them_are_served_and_only_to_get_and_head() {
        for (method, path, want) in [
            (Method::GET, "/metrics", Ok(Page::Metrics)),
            (Method::HEAD, "/metrics", Ok(Page::Metrics)),
            (Method::GET, "/status", Ok(Page::StatusHtml)),
            (Method::GET, "/status.json", Ok(Page::StatusJson)),
            (
                Method::POST,
                "/metrics",
                Err(StatusCode::METHOD_NOT_ALLOWED),
            ),
            (
                Method::DELETE,
                "/status",
                Err(StatusCode::METHOD_NOT_ALLOWED),
            ),
            (Method::GET, "/", Ok(Page::Home)),
            (Method::POST, "/", Err(StatusCode::METHOD_NOT_ALLOWED)),
            (Method::GET, "//", Err(StatusCode::NOT_FOUND)),
            (Method::GET, "/metrics/", Err(StatusCode::NOT_FOUND)),
            (Method::GET, "/status.html", Err(StatusCode::NOT_FOUND)),
            (Method::GET, "/hello", Err(StatusCode::NOT_FOUND)),
            (Method::POST, "/hello", Err(StatusCode::NOT_FOUND)),
        ] {
            assert_eq!(route(&method, path), want, "{method} {path}");
        }
    }
}
