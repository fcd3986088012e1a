//! One allow-list entry: which scheme, host and port a handler may reach.
//!
//! Rules are written as origins (`https://api.example.com`,
//! `http://127.0.0.1:8080`, `https://*.example.com`, `http://localhost:*`,
//! `https://*`), never with a path: the allow-list grants a server, and a
//! path rule would suggest a protection it cannot give (a server decides
//! what its paths mean).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use url::Host;

/// A valid rule, shown in every parse error so the fix is one copy away.
const EXAMPLE: &str = "https://api.example.com";

/// One allow-list entry: a scheme, a host pattern and a port pattern. A
/// request is reachable when some rule matches all three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// `true` for `https`, `false` for `http`: the only schemes there are.
    https: bool,
    host: HostPattern,
    /// `None` is `*`: any port.
    port: Option<u16>,
}

/// Which hosts a rule names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    /// `*`: every host, names and addresses alike.
    Any,
    /// `*.suffix`: every name that ends in `.suffix`, but not `suffix` itself,
    /// so `*.example.com` does not silently grant the apex.
    Subdomains(String),
    /// One DNS name, lower case (IDNA-encoded), without a trailing dot.
    Domain(String),
    /// One address. Only a rule of this kind grants a private address; see
    /// [`Rule::names_address`].
    Address(IpAddr),
}

impl Rule {
    /// Parses a rule from its text. The error says what is wrong and shows a
    /// valid rule.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let fail = |what: String| {
            Err(format!(
                "allow-list entry {text:?}: {what} (example: {EXAMPLE})"
            ))
        };
        let trimmed = text.trim();
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            return fail("no scheme; start it with http:// or https://".into());
        };
        let https = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => return fail(format!("scheme {scheme:?} is not http or https")),
        };
        // A lone trailing slash is the empty path that browsers show.
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if let Some(bad) = authority.find(['/', '?', '#']) {
            return fail(format!(
                "{:?} is a path, query or fragment; a rule names only a scheme, host and port",
                &authority[bad..]
            ));
        }
        if authority.contains('@') {
            return fail(
                "user name or password in a rule; a rule names only a scheme, host and port".into(),
            );
        }
        let (host_text, port_text) = match split_port(authority) {
            Ok(split) => split,
            Err(what) => return fail(what),
        };
        let port = match port_text {
            None => Some(if https { 443 } else { 80 }),
            Some("*") => None,
            Some(digits) => match digits.parse::<u16>() {
                Ok(port) if port > 0 && digits.bytes().all(|b| b.is_ascii_digit()) => Some(port),
                _ => return fail(format!("port {digits:?} is not 1..=65535 or *")),
            },
        };
        let host = match parse_host(host_text) {
            Ok(host) => host,
            Err(what) => return fail(what),
        };
        Ok(Rule { https, host, port })
    }

    /// Whether this rule grants `scheme://host:port`. `host` is as the `url`
    /// crate parsed it (domains lower case and IDNA-encoded).
    pub(crate) fn matches(&self, scheme: &str, host: &Host<&str>, port: u16) -> bool {
        let scheme_ok = if self.https {
            scheme == "https"
        } else {
            scheme == "http"
        };
        let port_ok = self.port.is_none_or(|own| own == port);
        let host_ok = match (&self.host, host) {
            (HostPattern::Any, _) => true,
            (HostPattern::Domain(own), Host::Domain(name)) => own == without_root_dot(name),
            (HostPattern::Subdomains(suffix), Host::Domain(name)) => without_root_dot(name)
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            (HostPattern::Address(own), Host::Ipv4(ip)) => *own == IpAddr::V4(*ip).to_canonical(),
            (HostPattern::Address(own), Host::Ipv6(ip)) => *own == IpAddr::V6(*ip).to_canonical(),
            _ => false,
        };
        scheme_ok && port_ok && host_ok
    }

    /// Whether this rule names `address` itself (not through `*`): the one
    /// way besides `allow-private` to grant a private address.
    pub(crate) fn names_address(&self, address: IpAddr) -> bool {
        self.host == HostPattern::Address(address.to_canonical())
    }
}

/// Splits `host[:port]`, where an IPv6 host is bracketed.
fn split_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    let (host, after) = if authority.starts_with('[') {
        match authority.find(']') {
            Some(end) => authority.split_at(end + 1),
            None => return Err("IPv6 address without its closing ]".into()),
        }
    } else {
        match authority.find(':') {
            Some(colon) => authority.split_at(colon),
            None => (authority, ""),
        }
    };
    match after {
        "" => Ok((host, None)),
        _ => match after.strip_prefix(':') {
            Some("") => Err("empty port after :".into()),
            Some(port) => Ok((host, Some(port))),
            None => Err(format!("{after:?} after the IPv6 address")),
        },
    }
}

fn parse_host(text: &str) -> Result<HostPattern, String> {
    if text.is_empty() {
        return Err("no host".into());
    }
    if text == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some(suffix) = text.strip_prefix("*.") {
        return match Host::parse(suffix) {
            Ok(Host::Domain(name)) if !name.contains('*') => {
                Ok(HostPattern::Subdomains(without_root_dot(&name).to_owned()))
            }
            Ok(_) => Err(format!(
                "*.{suffix}: a wildcard needs a DNS name after *., not an address"
            )),
            Err(e) => Err(format!("host {suffix:?}: {e}")),
        };
    }
    if text.contains('*') {
        return Err(format!(
            "host {text:?}: * stands only for the whole host (*) or a leading label (*.example.com)"
        ));
    }
    match Host::parse(text) {
        Ok(Host::Domain(name)) => Ok(HostPattern::Domain(without_root_dot(&name).to_owned())),
        Ok(Host::Ipv4(ip)) => Ok(HostPattern::Address(IpAddr::V4(ip))),
        Ok(Host::Ipv6(ip)) => Ok(HostPattern::Address(IpAddr::V6(ip).to_canonical())),
        Err(e) => Err(format!("host {text:?}: {e}")),
    }
}

/// `example.com.` and `example.com` are the same host; rules and URLs are
/// compared without the root's dot.
fn without_root_dot(name: &str) -> &str {
    name.strip_suffix('.').unwrap_or(name)
}

impl FromStr for Rule {
    type Err = String;

    fn from_str(text: &str) -> Result<Rule, String> {
        Rule::parse(text)
    }
}

/// The canonical text: lower case, IDNA-encoded, the scheme's default port
/// left out. Parsing it gives the same rule.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.https { "https://" } else { "http://" })?;
        match &self.host {
            HostPattern::Any => f.write_str("*")?,
            HostPattern::Subdomains(suffix) => write!(f, "*.{suffix}")?,
            HostPattern::Domain(name) => f.write_str(name)?,
            HostPattern::Address(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            HostPattern::Address(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
        }
        match self.port {
            None => f.write_str(":*"),
            Some(443) if self.https => Ok(()),
            Some(80) if !self.https => Ok(()),
            Some(port) => write!(f, ":{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_rules_parse_to_their_canonical_text() {
        let table = [
            ("https://api.example.com", "https://api.example.com"),
            ("https://api.example.com/", "https://api.example.com"),
            ("HTTPS://API.Example.COM:443", "https://api.example.com"),
            ("http://api.example.com:80", "http://api.example.com"),
            ("https://api.example.com:80", "https://api.example.com:80"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("http://[::ffff:127.0.0.1]", "http://127.0.0.1"),
            ("http://2130706433", "http://127.0.0.1"),
            ("https://*.example.com", "https://*.example.com"),
            ("http://localhost:*", "http://localhost:*"),
            ("https://*", "https://*"),
            ("http://*:*", "http://*:*"),
            ("  https://example.com.  ", "https://example.com"),
            ("https://bücher.example", "https://xn--bcher-kva.example"),
        ];
        for (text, canonical) in table {
            let rule = Rule::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(rule.to_string(), canonical, "{text}");
            assert_eq!(
                canonical.parse::<Rule>().unwrap(),
                rule,
                "{canonical} round trip"
            );
        }
    }

    #[test]
    fn invalid_rules_say_what_is_wrong_and_show_an_example() {
        let table = [
            ("", "no scheme"),
            ("api.example.com", "no scheme"),
            ("ftp://example.com", "is not http or https"),
            ("https://example.com/v1", "path"),
            ("https://example.com?x=1", "path, query"),
            ("https://user:pw@example.com", "user name"),
            ("https://", "no host"),
            ("https://:443", "no host"),
            ("https://example.com:", "empty port"),
            ("https://example.com:0", "not 1..=65535"),
            ("https://example.com:70000", "not 1..=65535"),
            ("https://example.com:+80", "not 1..=65535"),
            ("https://example.com:8*", "not 1..=65535"),
            ("https://api.*.com", "* stands only"),
            ("https://*example.com", "* stands only"),
            ("https://*.127.0.0.1", "not an address"),
            ("https://[::1", "closing ]"),
            ("https://[::1]x", "after the IPv6"),
            ("https://exa mple.com", "host"),
        ];
        for (text, expected) in table {
            let error = Rule::parse(text).expect_err(text);
            assert!(error.contains(expected), "{text}: {error}");
            assert!(error.contains(EXAMPLE), "{text}: {error}");
        }
    }

    fn reaches(rule: &str, url: &str) -> bool {
        let rule = Rule::parse(rule).unwrap();
        let url = url::Url::parse(url).unwrap();
        rule.matches(
            url.scheme(),
            &url.host().unwrap(),
            url.port_or_known_default().unwrap(),
        )
    }

    #[test]
    fn rules_match_scheme_host_and_port() {
        let table = [
            (
                "https://api.example.com",
                "https://api.example.com/v1?q",
                true,
            ),
            (
                "https://api.example.com",
                "https://API.example.com.:443/",
                true,
            ),
            ("https://api.example.com", "http://api.example.com/", false),
            (
                "https://api.example.com",
                "https://api.example.com:8443/",
                false,
            ),
            ("https://api.example.com", "https://example.com/", false),
            (
                "https://api.example.com",
                "https://api.example.com.evil.net/",
                false,
            ),
            ("https://*.example.com", "https://a.example.com/", true),
            ("https://*.example.com", "https://a.b.example.com/", true),
            ("https://*.example.com", "https://example.com/", false),
            ("https://*.example.com", "https://badexample.com/", false),
            ("https://*.example.com", "https://127.0.0.1/", false),
            ("http://localhost:*", "http://localhost:1234/", true),
            ("http://localhost:*", "https://localhost:1234/", false),
            ("https://*", "https://anything.example/", true),
            ("https://*", "https://[::1]/", true),
            ("https://*", "https://anything.example:444/", false),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/", true),
            (
                "http://127.0.0.1:8080",
                "http://[::ffff:127.0.0.1]:8080/",
                true,
            ),
            ("http://127.0.0.1:8080", "http://0x7f.1:8080/", true),
            ("http://127.0.0.1:8080", "http://127.0.0.2:8080/", false),
            ("http://127.0.0.1:8080", "http://localhost:8080/", false),
        ];
        for (rule, url, expected) in table {
            assert_eq!(reaches(rule, url), expected, "{rule} vs {url}");
        }
    }

    #[test]
    fn only_a_rule_with_that_very_address_names_it() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(
            Rule::parse("http://127.0.0.1:8080")
                .unwrap()
                .names_address(loopback)
        );
        assert!(
            Rule::parse("http://127.0.0.1")
                .unwrap()
                .names_address("::ffff:127.0.0.1".parse().unwrap())
        );
        assert!(!Rule::parse("http://*:*").unwrap().names_address(loopback));
        assert!(
            !Rule::parse("http://localhost:*")
                .unwrap()
                .names_address(loopback)
        );
        assert!(
            !Rule::parse("http://127.0.0.2")
                .unwrap()
                .names_address(loopback)
        );
    }
}
