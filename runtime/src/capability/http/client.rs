//! The client: sends a checked request and streams the response body under
//! the deadline and the size limit.
//!
//! Built on `reqwest` rather than hyper-util's client plus hyper-rustls: it
//! already has the three hooks the checks need — a pluggable resolver (the
//! private-address check sits between DNS and connect), a redirect policy
//! that sees each hop before it is requested, and connection pooling keyed
//! by origin — so the capability is the checks and nothing else. Proxies are
//! off (`no_proxy`): an `HTTP_PROXY` in the environment would otherwise send
//! every request to the proxy, past the resolver. The overall deadline and
//! the size limit are enforced here rather than by reqwest, to report them as
//! [`FetchError::Timeout`] and [`FetchError::TooLarge`] at the read that hit
//! them.

use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use tokio::time::{Instant, timeout_at};
use url::Url;

use super::address::GuardedResolver;
use super::headers::is_refused_header;
use super::{
    FetchError, HttpSettings, SETTING_CA_FILE, SETTING_CONNECT_TIMEOUT, SETTING_TIMEOUT, policy,
};

/// Sent unless the handler sets its own, so an upstream's logs show what
/// called it.
const USER_AGENT: &str = concat!("wasmlet/", env!("CARGO_PKG_VERSION"));

/// An outbound HTTP client with its settings. Cheap to clone (both halves
/// are behind an `Arc`); clones share the connection pool, so keep one per
/// distinct [`HttpSettings`] rather than one per request.
#[derive(Debug, Clone)]
pub struct HttpClient {
    settings: Arc<HttpSettings>,
    client: reqwest::Client,
}

/// A request as a handler describes it.
#[derive(Debug, Clone)]
pub struct OutboundRequest {
    /// The method; `CONNECT` is refused (a tunnel would escape the checks).
    pub method: Method,
    /// An absolute `http` or `https` URL.
    pub url: String,
    /// Request headers; a header the host owns ([`super::is_refused_header`])
    /// makes the request [`FetchError::Invalid`].
    pub headers: HeaderMap,
    /// The whole request body; the host sets `Content-Length` from it.
    pub body: Bytes,
}

/// A response whose head has arrived; the body is read with
/// [`chunk`](Self::chunk). Dropping it closes the connection if the body was
/// not read to its end.
#[derive(Debug)]
pub struct OutboundResponse {
    /// The status of the final response, after redirects.
    pub status: StatusCode,
    /// The final response's headers.
    pub headers: HeaderMap,
    /// `None` once the body has ended or failed.
    body: Option<reqwest::Response>,
    /// The first error a read returned; every later read returns it again.
    failure: Option<FetchError>,
    /// `METHOD URL`, for error messages.
    what: String,
    /// Send time plus [`HttpSettings::timeout`].
    deadline: Instant,
    timeout: Duration,
    received: u64,
    limit: u64,
}

impl HttpClient {
    /// Builds a client for `settings`. `Invalid` for a zero timeout, `Failed`
    /// if TLS cannot be set up.
    pub fn new(settings: HttpSettings) -> Result<Self, FetchError> {
        if settings.timeout.is_zero() || settings.connect_timeout.is_zero() {
            return Err(FetchError::Invalid(format!(
                "{SETTING_TIMEOUT} and {SETTING_CONNECT_TIMEOUT} must be more than 0"
            )));
        }
        let settings = Arc::new(settings);
        let mut builder = reqwest::Client::builder();
        if let Some(pem) = &settings.ca_pem {
            let certificates = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| FetchError::Invalid(format!("{SETTING_CA_FILE}: {}", chain(&e))))?;
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let client = builder
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                allow_private: settings.allow_private,
            }))
            .redirect(policy::redirects(Arc::clone(&settings)))
            // A Referer would tell the next hop the previous URL, query
            // string (and any token in it) included.
            .referer(false)
            .connect_timeout(settings.connect_timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| {
                FetchError::Failed(format!("setting up the HTTP client: {}", chain(&e)))
            })?;
        Ok(HttpClient { settings, client })
    }

    /// The settings this client enforces.
    pub fn settings(&self) -> &HttpSettings {
        &self.settings
    }

    /// Sends `request` and returns once the final response's head has
    /// arrived. The URL is checked against the allow-list before any DNS
    /// query or connection, so a denied request makes none.
    pub async fn send(&self, request: OutboundRequest) -> Result<OutboundResponse, FetchError> {
        let deadline = Instant::now() + self.settings.timeout;
        let OutboundRequest {
            method,
            url,
            headers,
            body,
        } = request;
        let url = Url::parse(&url).map_err(|e| FetchError::Invalid(format!("URL {url:?}: {e}")))?;
        // Messages reach the guest and may reach logs: no password in them.
        let mut shown = url.clone();
        let _ = shown.set_password(None);
        let what = format!("{method} {shown}");
        if method == Method::CONNECT {
            return Err(FetchError::Invalid(format!(
                "{what}: CONNECT is not supported; send the request itself"
            )));
        }
        if let Some(name) = headers.keys().find(|name| is_refused_header(name)) {
            return Err(FetchError::Invalid(format!(
                "{what}: the header {name} is set by the host; leave it out"
            )));
        }
        policy::check(&self.settings, &url)?;

        let request = self
            .client
            .request(method, url)
            .headers(headers)
            .body(body)
            .build()
            .map_err(|e| FetchError::Invalid(format!("{what}: {}", chain(&e))))?;
        let timeout = self.settings.timeout;
        let mut response = match timeout_at(deadline, self.client.execute(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => return Err(self.convert(e, &what)),
            Err(_) => {
                return Err(FetchError::Timeout(format!(
                    "{what}: no response within {} ({SETTING_TIMEOUT})",
                    humantime::format_duration(timeout)
                )));
            }
        };
        let limit = self.settings.max_response_size;
        // A body declared too large fails at the first read, before a byte
        // of it is downloaded.
        let failure = response
            .content_length()
            .filter(|&declared| declared > limit)
            .map(|_| FetchError::TooLarge { limit });
        Ok(OutboundResponse {
            status: response.status(),
            headers: std::mem::take(response.headers_mut()),
            body: failure.is_none().then_some(response),
            failure,
            what,
            deadline,
            timeout,
            received: 0,
            limit,
        })
    }

    /// Turns a reqwest error into the variant the guest sees. A refusal from
    /// the resolver or the redirect policy travels inside reqwest's error and
    /// is returned as it was raised.
    fn convert(&self, error: reqwest::Error, what: &str) -> FetchError {
        match find_fetch_error(&error) {
            // The resolver knows the name, not the request.
            Some(FetchError::Failed(why)) => return FetchError::Failed(format!("{what}: {why}")),
            Some(refusal) => return refusal,
            None => {}
        }
        if error.is_timeout() && error.is_connect() {
            return FetchError::Timeout(format!(
                "{what}: no connection within {} ({SETTING_CONNECT_TIMEOUT})",
                humantime::format_duration(self.settings.connect_timeout)
            ));
        }
        FetchError::Failed(format!("{what}: {}", chain(&error.without_url())))
    }
}

impl OutboundResponse {
    /// The next chunk of the body, `None` at its end. Fails with
    /// [`FetchError::TooLarge`] once the body passes `max_response_size`, and
    /// with [`FetchError::Timeout`] past the request's deadline; after a
    /// failure every call returns the same error.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, FetchError> {
        if let Some(failure) = &self.failure {
            return Err(failure.clone());
        }
        let Some(body) = self.body.as_mut() else {
            return Ok(None);
        };
        let error = match timeout_at(self.deadline, body.chunk()).await {
            Ok(Ok(None)) => {
                self.body = None;
                return Ok(None);
            }
            Ok(Ok(Some(bytes))) => {
                self.received += bytes.len() as u64;
                if self.received <= self.limit {
                    return Ok(Some(bytes));
                }
                FetchError::TooLarge { limit: self.limit }
            }
            Ok(Err(e)) => FetchError::Failed(format!(
                "{}: reading the response body: {}",
                self.what,
                chain(&e.without_url())
            )),
            Err(_) => FetchError::Timeout(format!(
                "{}: the response body did not end within {} ({SETTING_TIMEOUT})",
                self.what,
                humantime::format_duration(self.timeout)
            )),
        };
        // Dropping the body closes the connection instead of reading on.
        self.body = None;
        self.failure = Some(error.clone());
        Err(error)
    }
}

/// The first [`FetchError`] in `error`'s source chain. `io::Error` hides the
/// error it wraps from `source()` (it returns the inner error's source), so
/// it is opened by hand.
fn find_fetch_error(error: &(dyn Error + 'static)) -> Option<FetchError> {
    let mut next = Some(error);
    while let Some(current) = next {
        if let Some(found) = current.downcast_ref::<FetchError>() {
            return Some(found.clone());
        }
        let wrapped = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| find_fetch_error(inner));
        if wrapped.is_some() {
            return wrapped;
        }
        next = current.source();
    }
    None
}

/// `error: source: source…`, skipping a source whose text its parent
/// already ends with (several layers repeat the message they wrap).
fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(current) = next {
        let part = current.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        next = current.source();
    }
    text
}
