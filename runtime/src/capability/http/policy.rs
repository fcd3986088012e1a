//! The allow-list check of one URL, run before anything touches the network:
//! for the request's own URL in [`super::HttpClient::send`], and for every
//! redirect in the client's redirect policy.
//!
//! An address literal in a URL never reaches the resolver (the connector
//! connects to it directly), so its private-address check happens here; a
//! name's addresses are checked by [`super::address::GuardedResolver`].

use std::net::IpAddr;

use reqwest::redirect::{Attempt, Policy};
use url::{Host, Url};

use super::address::private_kind;
use super::{
    FetchError, HttpSettings, SETTING_ALLOW, SETTING_ALLOW_PRIVATE, SETTING_MAX_REDIRECTS,
};

/// Checks that `url` is an http(s) URL the settings grant. `Invalid` for a
/// URL that can never be fetched, `Denied` for one the settings do not grant.
pub(crate) fn check(settings: &HttpSettings, url: &Url) -> Result<(), FetchError> {
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(FetchError::Invalid(format!(
            "{url}: scheme {scheme:?} is not supported; use http or https"
        )));
    }
    let (Some(host), Some(port)) = (url.host(), url.port_or_known_default()) else {
        return Err(FetchError::Invalid(format!("{url}: no host")));
    };
    let mut granting = settings
        .allow
        .iter()
        .filter(|rule| rule.matches(scheme, &host, port))
        .peekable();
    if granting.peek().is_none() {
        let origin = origin(url, &host, port);
        return Err(FetchError::Denied(format!(
            "{origin} is not in the HTTP allow-list; grant it by adding \"{origin}\" to {SETTING_ALLOW}"
        )));
    }
    let address = match host {
        Host::Ipv4(ip) => IpAddr::V4(ip),
        Host::Ipv6(ip) => IpAddr::V6(ip),
        Host::Domain(_) => return Ok(()),
    };
    if settings.allow_private {
        return Ok(());
    }
    match private_kind(address) {
        Some(kind) if !granting.any(|rule| rule.names_address(address)) => {
            let origin = origin(url, &host, port);
            Err(FetchError::Denied(format!(
                "{origin}: {address} is a {kind}, which only an allow-list entry naming this \
                 address (\"{origin}\") or {SETTING_ALLOW_PRIVATE} = true grants; a wildcard does not"
            )))
        }
        _ => Ok(()),
    }
}

/// `scheme://host[:port]` with the port only when it is not the scheme's
/// default: the allow-list entry that would grant the URL.
fn origin(url: &Url, host: &Host<&str>, port: u16) -> String {
    let scheme = url.scheme();
    match url.port() {
        Some(_) => format!("{scheme}://{host}:{port}"),
        None => format!("{scheme}://{host}"),
    }
}

/// The redirect policy: each hop is checked like a first request, and the
/// chain is cut after `max_redirects` hops. With `max_redirects = 0` a
/// redirect is not followed: the handler gets the `3xx` response itself.
pub(crate) fn redirects(settings: std::sync::Arc<HttpSettings>) -> Policy {
    Policy::custom(move |attempt: Attempt<'_>| {
        let max = settings.max_redirects as usize;
        if max == 0 {
            return attempt.stop();
        }
        // `previous` holds the first URL and every hop followed so far.
        let hops = attempt.previous().len();
        if hops > max {
            let message = format!(
                "more than {max} redirects (the last to {}); {SETTING_MAX_REDIRECTS} = {max}",
                attempt.url()
            );
            return attempt.error(FetchError::Failed(message));
        }
        match check(&settings, attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(refusal) => {
                let from = attempt
                    .previous()
                    .last()
                    .map(Url::to_string)
                    .unwrap_or_default();
                let refusal = match refusal {
                    FetchError::Denied(why) => {
                        FetchError::Denied(format!("redirect from {from}: {why}"))
                    }
                    FetchError::Invalid(why) => {
                        FetchError::Failed(format!("redirect from {from}: {why}"))
                    }
                    other => other,
                };
                attempt.error(refusal)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::http::Rule;

    fn settings(rules: &[&str], allow_private: bool) -> HttpSettings {
        HttpSettings {
            allow: rules.iter().map(|r| Rule::parse(r).unwrap()).collect(),
            allow_private,
            ..HttpSettings::default()
        }
    }

    fn verdict(settings: &HttpSettings, url: &str) -> Result<(), FetchError> {
        check(settings, &Url::parse(url).unwrap())
    }

    #[test]
    fn an_empty_allow_list_reaches_nothing() {
        let error = verdict(&HttpSettings::default(), "https://example.com/").unwrap_err();
        assert!(
            matches!(&error, FetchError::Denied(m) if m.contains("\"https://example.com\"")),
            "{error}"
        );
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_fetchable() {
        let open = settings(&["http://*:*", "https://*:*"], true);
        for url in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "data:text/plain,x",
        ] {
            assert!(
                matches!(verdict(&open, url), Err(FetchError::Invalid(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn a_private_address_literal_needs_a_rule_naming_it_or_allow_private() {
        let named = settings(&["http://127.0.0.1:8080"], false);
        assert!(verdict(&named, "http://127.0.0.1:8080/x").is_ok());
        assert!(verdict(&named, "http://[::ffff:127.0.0.1]:8080/x").is_ok());

        let wildcard = settings(&["http://*:*"], false);
        for url in [
            "http://127.0.0.1:8080/",
            "http://10.0.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:192.168.0.1]/",
            "http://0.0.0.0/",
            "http://2130706433/",
        ] {
            let error = verdict(&wildcard, url).unwrap_err();
            assert!(
                matches!(&error, FetchError::Denied(m) if m.contains(SETTING_ALLOW_PRIVATE)),
                "{url}: {error}"
            );
        }
        assert!(verdict(&wildcard, "http://1.1.1.1/").is_ok());
        assert!(verdict(&settings(&["http://*:*"], true), "http://127.0.0.1:9/").is_ok());
    }

    #[test]
    fn a_name_passes_the_url_check_and_is_left_to_the_resolver() {
        let names = settings(&["http://localhost:*"], false);
        assert!(verdict(&names, "http://localhost:1234/").is_ok());
        assert!(matches!(
            verdict(&names, "http://127.0.0.1:1234/"),
            Err(FetchError::Denied(_))
        ));
    }
}
