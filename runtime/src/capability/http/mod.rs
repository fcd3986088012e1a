//! Outbound HTTP: a handler sends a request (method, URL, headers, body) and
//! reads the response (status, headers, the body in chunks), reaching only
//! what the configuration grants.
//!
//! # What a request has to pass
//! 1. The URL is http(s) with a host, and no header the host owns is set
//!    ([`is_refused_header`]) — else [`FetchError::Invalid`].
//! 2. Some [`Rule`] of the allow-list grants its scheme, host and port — else
//!    [`FetchError::Denied`], before any DNS query or connection.
//! 3. A private address (loopback, private ranges, link-local, CGNAT, …) is
//!    reached only when granted explicitly: an address literal by a rule
//!    naming that address, a name only with
//!    [`allow_private`](HttpSettings::allow_private). Names are checked on
//!    the addresses they resolve to, right before connecting to exactly those.
//! 4. Each redirect passes 2 and 3 again, up to
//!    [`max_redirects`](HttpSettings::max_redirects).
//!
//! A denied request makes no connection at all.
//!
//! # Files
//! - [`rule`](Rule): allow-list entries, their text form and matching.
//! - `policy`: the URL check, for the first request and each redirect.
//! - `address`: which addresses are private; the resolver that refuses them.
//! - `headers`: guest header blocks and the headers a guest may not set.
//! - `client`: [`HttpClient`], requests, streaming responses, error mapping.

mod address;
mod client;
mod headers;
mod policy;
mod rule;

use std::sync::Arc;
use std::time::Duration;

pub use client::{HttpClient, OutboundRequest, OutboundResponse};
pub use headers::{format_header_block, is_refused_header, parse_header_block};
pub use rule::Rule;

/// Default for [`HttpSettings::timeout`]: matches the default request
/// timeout, so an upstream call can use the request's whole budget.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default for [`HttpSettings::connect_timeout`]: a reachable server accepts
/// in well under a second; five leaves room for a slow network without
/// letting a black-holed address eat the request's budget.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default for [`HttpSettings::max_response_size`]: 16 MiB is far above an
/// API response and well below an instance's default memory (64 MiB), so a
/// handler that buffers the whole body still fits.
pub const DEFAULT_MAX_RESPONSE_SIZE: u64 = 16 << 20;

/// Default for [`HttpSettings::max_redirects`]: enough for the usual
/// `http` → `https` → canonical host chain, short of a loop.
pub const DEFAULT_MAX_REDIRECTS: u32 = 5;

/// How error messages name the settings, so a handler author reading one
/// knows which line of the configuration to change.
const SETTING_ALLOW: &str = "the [http] allow list";
const SETTING_ALLOW_PRIVATE: &str = "[http] allow-private";
const SETTING_TIMEOUT: &str = "[http] timeout";
const SETTING_CONNECT_TIMEOUT: &str = "[http] connect-timeout";
const SETTING_MAX_RESPONSE_SIZE: &str = "[http] max-response-size";
const SETTING_MAX_REDIRECTS: &str = "[http] max-redirects";
const SETTING_CA_FILE: &str = "[http] ca-file";

/// What outbound HTTP may reach and how long and large it may be. The
/// default reaches nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// The reachable origins. Empty (the default) means no request is
    /// allowed: a handler reaches only what the operator listed.
    pub allow: Vec<Rule>,
    /// Whether names may resolve to, and wildcard rules may reach, private
    /// addresses (loopback, private ranges, link-local, unspecified, CGNAT,
    /// and their IPv4-mapped forms). Off by default, because a handler that
    /// can reach the host's own services or a cloud metadata endpoint can
    /// leak credentials; an allow-list entry naming an address literal
    /// grants that one address regardless.
    pub allow_private: bool,
    /// Time from sending the request to the body's last byte. A handler
    /// waiting on a slow upstream holds its instance, so this is bounded.
    pub timeout: Duration,
    /// Time to open a connection (TCP and TLS), within [`timeout`](Self::timeout).
    pub connect_timeout: Duration,
    /// Most body bytes one response may have; reading past it fails with
    /// [`FetchError::TooLarge`], so an upstream cannot exhaust memory.
    pub max_response_size: u64,
    /// Most redirects followed for one request, each checked like the first
    /// URL. `0` follows none: the handler gets the `3xx` response.
    pub max_redirects: u32,
    /// PEM certificates of CAs trusted besides the built-in web PKI roots,
    /// for upstreams whose certificates a private CA issued
    /// (`[http] ca-file`). `None` trusts the built-in roots only.
    pub ca_pem: Option<Arc<[u8]>>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            allow: Vec::new(),
            allow_private: false,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_response_size: DEFAULT_MAX_RESPONSE_SIZE,
            max_redirects: DEFAULT_MAX_REDIRECTS,
            ca_pem: None,
        }
    }
}

/// Why an outbound request or a body read failed. Each variant maps to one
/// guest status code; the message says what happened, to which URL, and
/// which setting governs it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The settings do not grant it: host not in the allow-list, or a private
    /// address not granted explicitly. No connection was made.
    #[error("denied: {0}")]
    Denied(String),
    /// The request or the body ran past [`HttpSettings::timeout`], or a
    /// connection past [`HttpSettings::connect_timeout`].
    #[error("timed out: {0}")]
    Timeout(String),
    /// The response body is larger than [`HttpSettings::max_response_size`].
    #[error(
        "the response body is larger than {limit} bytes ({SETTING_MAX_RESPONSE_SIZE}); \
         the rest was not read"
    )]
    TooLarge {
        /// The limit that was hit, in bytes.
        limit: u64,
    },
    /// The request can never be sent: a malformed URL or header, an
    /// unsupported scheme or method, a header the host owns.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The request was allowed but did not work: DNS, connection refused,
    /// TLS, a broken response, too many redirects.
    #[error("failed: {0}")]
    Failed(String),
}
