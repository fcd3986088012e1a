//! Request ids: every request gets one, its access line and its guest's log
//! lines carry it, so an operator can find everything one request did.
//!
//! An id a proxy in front already gave the request (`x-request-id`) is kept
//! when it is short and plain, so the proxy's logs and ours agree; anything
//! else gets a fresh one.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use http::HeaderMap;

/// The header a proxy puts its request id in.
pub(crate) const HEADER: &str = "x-request-id";

/// Longest incoming id kept. Ids in the wild (UUIDs, ULIDs, hex) are 16 to 36
/// characters; the cap keeps a client from writing long lines into the log.
pub(crate) const MAX_LEN: usize = 64;

/// Step of the splitmix64 sequence (the golden ratio in 64 bits). It is odd,
/// so the state visits every 64-bit value before it repeats.
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// Makes request ids: 16 hex digits, unique within the process (the state
/// advances by an odd step and is mixed by a bijection, so no value repeats
/// for 2^64 ids) and unlikely to meet another process's (the sequence starts
/// at a random point). Random-looking rather than a bare counter, so ids from
/// two servers or two restarts do not collide in a shared log store.
#[derive(Debug)]
pub(crate) struct RequestIds {
    state: AtomicU64,
}

impl RequestIds {
    /// A sequence starting at a random point.
    pub(crate) fn new() -> Self {
        // `RandomState` is seeded from the OS's randomness: a seed without a
        // dependency on a random-number crate for eight bytes.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        Self::starting_at(hasher.finish())
    }

    fn starting_at(seed: u64) -> Self {
        Self {
            state: AtomicU64::new(seed),
        }
    }

    /// The id for a request with these headers: its `x-request-id` if that
    /// is usable, a fresh one otherwise.
    pub(crate) fn for_request(&self, headers: &HeaderMap) -> Arc<str> {
        headers
            .get(HEADER)
            .and_then(|value| value.to_str().ok())
            .filter(|id| is_usable(id))
            .map_or_else(|| self.next(), Arc::from)
    }

    /// A fresh id.
    pub(crate) fn next(&self) -> Arc<str> {
        let state = self
            .state
            .fetch_add(GAMMA, Ordering::Relaxed)
            .wrapping_add(GAMMA);
        format!("{:016x}", mix(state)).into()
    }
}

/// The splitmix64 finaliser: a bijection on `u64` that scatters neighbouring
/// inputs across the whole range.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Whether an incoming id can go into the log as it is: 1 to [`MAX_LEN`]
/// visible ASCII characters, without the quote and backslash that would
/// need escaping in a text log line.
fn is_usable(id: &str) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use http::HeaderValue;

    use super::*;

    #[test]
    fn fresh_ids_are_sixteen_hex_digits_and_never_repeat() {
        let ids = RequestIds::new();
        let seen: HashSet<Arc<str>> = (0..10_000).map(|_| ids.next()).collect();
        assert_eq!(seen.len(), 10_000);
        for id in seen.iter().take(100) {
            assert_eq!(id.len(), 16, "{id}");
            assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
        }
    }

    #[test]
    fn the_sequence_does_not_repeat_across_the_wrap_of_its_state() {
        // Starting just below the wrap: the state passes through zero.
        let ids = RequestIds::starting_at(GAMMA.wrapping_mul(3).wrapping_neg());
        let seen: HashSet<Arc<str>> = (0..10).map(|_| ids.next()).collect();
        assert_eq!(seen.len(), 10);
    }

    #[test]
    fn two_servers_start_their_sequences_apart() {
        assert_ne!(RequestIds::new().next(), RequestIds::new().next());
    }

    #[test]
    fn incoming_ids_are_kept_only_when_short_and_plain() {
        let max = "a".repeat(MAX_LEN);
        let over = "a".repeat(MAX_LEN + 1);
        for (id, kept) in [
            ("0f8fad5b-d9cb-469f-a165-70867728950e", true),
            ("01ARZ3NDEKTSV4RRFFQ69G5FAV", true),
            ("Root=1-5759e988;Parent=53995c3f", true),
            ("a", true),
            (max.as_str(), true),
            (over.as_str(), false),
            ("", false),
            ("has space", false),
            ("quote\"d", false),
            ("back\\slash", false),
            ("tab\there", false),
            ("caf\u{e9}", false),
        ] {
            assert_eq!(is_usable(id), kept, "{id:?}");
        }
    }

    #[test]
    fn a_usable_header_is_the_id_and_an_unusable_one_is_replaced() {
        let ids = RequestIds::new();
        let mut headers = HeaderMap::new();
        assert_eq!(ids.for_request(&headers).len(), 16);
        headers.insert(HEADER, HeaderValue::from_static("from-the-proxy"));
        assert_eq!(&*ids.for_request(&headers), "from-the-proxy");
        headers.insert(HEADER, HeaderValue::from_static("not usable"));
        let id = ids.for_request(&headers);
        assert_eq!(id.len(), 16, "{id}");
    }
}
