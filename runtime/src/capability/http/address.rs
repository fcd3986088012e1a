//! Which addresses a handler may connect to, and the DNS resolver that
//! enforces it.
//!
//! The check runs on the addresses a name resolved to, right before the
//! connection is made with exactly those addresses: a name that resolves to
//! `127.0.0.1` (DNS rebinding, `localhost`, a hostile record) is refused no
//! matter what the allow-list says about the name.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::{FetchError, SETTING_ALLOW_PRIVATE};

/// What kind of non-public address `ip` is, or `None` for a public unicast
/// address. IPv4 inside IPv6 (mapped, NAT64, 6to4) is judged as the IPv4
/// address it reaches.
pub(crate) fn private_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "unspecified (this-network) address",
        (127, ..) => "loopback address",
        (10, ..) | (192, 168, _) => "private address",
        (172, 16..=31, _) => "private address",
        (169, 254, _) => "link-local address",
        (100, 64..=127, _) => "carrier-grade NAT (shared) address",
        (192, 0, 0) => "IETF protocol address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation address",
        (198, 18..=19, _) => "benchmarking address",
        (224..=239, ..) => "multicast address",
        (240..=255, ..) => "reserved or broadcast address",
        _ => return None,
    })
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return v4_kind(v4);
    }
    let s = ip.segments();
    let embedded = |high: u16, low: u16| {
        let [a, b] = high.to_be_bytes();
        let [c, d] = low.to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    };
    match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => Some("unspecified address"),
        [0, 0, 0, 0, 0, 0, 0, 1] => Some("loopback address"),
        // Deprecated IPv4-compatible form: nothing public lives there.
        [0, 0, 0, 0, 0, 0, _, _] => Some("IPv4-compatible (deprecated) address"),
        // NAT64 translates to the embedded IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, high, low] => v4_kind(embedded(high, low)),
        [0x64, 0xff9b, 1, ..] => Some("local-use NAT64 address"),
        [0x100, 0, 0, 0, ..] => Some("discard-only address"),
        // 6to4 reaches the IPv4 address in its second and third segments.
        [0x2002, high, low, ..] => v4_kind(embedded(high, low)),
        [0x2001, 0xdb8, ..] => Some("documentation address"),
        [0x2001, 0..=0x1ff, ..] => Some("IETF special-purpose address (Teredo, benchmarking)"),
        [first, ..] if first & 0xfe00 == 0xfc00 => Some("private (unique local) address"),
        [first, ..] if first & 0xffc0 == 0xfe80 => Some("link-local address"),
        [first, ..] if first & 0xffc0 == 0xfec0 => Some("site-local (deprecated) address"),
        [first, ..] if first & 0xff00 == 0xff00 => Some("multicast address"),
        _ => None,
    }
}

/// The resolver the client uses for every name it connects to (the first
/// request and each redirect; never for an address literal, which
/// [`super::policy`] checks instead). It resolves with the system resolver
/// and refuses the whole answer if any address in it is private: taking only
/// the public ones would let an attacker's record mix the two and win a race.
pub(crate) struct GuardedResolver {
    /// From [`super::HttpSettings::allow_private`].
    pub(crate) allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| FetchError::Failed(format!("resolving {host}: {e}")))?
                .collect();
            if addresses.is_empty() {
                return Err(FetchError::Failed(format!("resolving {host}: no addresses")).into());
            }
            if !allow_private {
                let private = addresses
                    .iter()
                    .find_map(|a| private_kind(a.ip()).map(|kind| (a.ip(), kind)));
                if let Some((ip, kind)) = private {
                    return Err(FetchError::Denied(format!(
                        "{host} resolves to {ip}, a {kind}; a name is allowed to reach a private \
                         address only with {SETTING_ALLOW_PRIVATE} = true (or put the address \
                         itself in the allow-list and use it in the URL)"
                    ))
                    .into());
                }
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_reserved_addresses_are_recognised() {
        let private = [
            "0.0.0.0",
            "0.1.2.3",
            "127.0.0.1",
            "127.255.255.254",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "192.0.0.8",
            "198.18.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2001::1",
            "2001:db8::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "100::1",
        ];
        for text in private {
            let ip: IpAddr = text.parse().unwrap();
            assert!(private_kind(ip).is_some(), "{text} should be private");
        }
        let public = [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "169.253.0.1",
            "192.169.0.1",
            "2606:4700:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::",
        ];
        for text in public {
            let ip: IpAddr = text.parse().unwrap();
            assert_eq!(private_kind(ip), None, "{text} should be public");
        }
    }

    #[test]
    fn the_kind_names_what_the_address_is() {
        let kind = |text: &str| private_kind(text.parse().unwrap()).unwrap();
        assert_eq!(kind("127.0.0.1"), "loopback address");
        assert_eq!(kind("::ffff:127.0.0.1"), "loopback address");
        assert_eq!(kind("10.0.0.1"), "private address");
        assert_eq!(kind("fe80::1"), "link-local address");
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_denied_unless_private_is_allowed() {
        let guarded = GuardedResolver {
            allow_private: false,
        };
        let error = guarded
            .resolve("localhost".parse().unwrap())
            .await
            .err()
            .expect("localhost must be refused");
        let denied = error.downcast_ref::<FetchError>().unwrap();
        assert!(matches!(denied, FetchError::Denied(m) if m.contains("localhost resolves to")));

        let open = GuardedResolver {
            allow_private: true,
        };
        let addresses: Vec<_> = open
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(
            addresses.iter().all(|a| a.ip().is_loopback()),
            "{addresses:?}"
        );
    }
}
