//! Query-string lookup, decoded as browsers encode forms
//! (`application/x-www-form-urlencoded`): `%XX` escapes and `+` for a space.

use std::borrow::Cow;

/// The value of the first parameter called `name` in `query` (the part after
/// `?`), decoded; `None` if there is none. A parameter without `=` has the
/// empty value. Names are compared after decoding.
pub(crate) fn find<'q>(query: &'q str, name: &str) -> Option<Cow<'q, str>> {
    find_all(query, name).next()
}

/// The values of every parameter called `name` in `query`, in order,
/// decoded as [`find`] decodes them.
pub(crate) fn find_all<'q, 'n>(
    query: &'q str,
    name: &'n str,
) -> impl Iterator<Item = Cow<'q, str>> + use<'q, 'n> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter_map(move |pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(key) == name).then(|| decode(value))
        })
}

/// Decodes one query component. Borrows when there is nothing to decode; a
/// malformed escape stays as written; bytes that are not UTF-8 after
/// decoding become U+FFFD.
pub(crate) fn decode(component: &str) -> Cow<'_, str> {
    if !component.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(component);
    }
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes[i] {
            b'%' => bytes
                .get(i + 1..i + 3)
                .and_then(|hex| Some(hex_value(hex[0])? << 4 | hex_value(hex[1])?)),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    Cow::Owned(match String::from_utf8(out) {
        Ok(text) => text,
        Err(error) => String::from_utf8_lossy(error.as_bytes()).into_owned(),
    })
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{decode, find, find_all};
    use std::borrow::Cow;

    #[test]
    fn decode_cases() {
        let cases = [
            ("plain", "plain"),
            ("", ""),
            ("a+b", "a b"),
            ("a%20b", "a b"),
            ("%41%62", "Ab"),
            ("%e2%9c%93", "\u{2713}"),
            ("100%", "100%"),
            ("%4", "%4"),
            ("%zz", "%zz"),
            ("%2B", "+"),
            ("%ff", "\u{fffd}"),
        ];
        for (raw, decoded) in cases {
            assert_eq!(decode(raw), decoded, "decode({raw:?})");
        }
    }

    #[test]
    fn find_all_returns_every_value_in_order() {
        let cases: [(&str, &str, &[&str]); 4] = [
            ("url=a&x=1&url=b+c", "url", &["a", "b c"]),
            ("url=a", "url", &["a"]),
            ("x=1", "url", &[]),
            ("url&url=", "url", &["", ""]),
        ];
        for (query, name, expected) in cases {
            let found: Vec<_> = find_all(query, name).collect();
            assert_eq!(found, expected, "find_all({query:?}, {name:?})");
        }
    }

    #[test]
    fn decode_borrows_when_nothing_is_escaped() {
        assert!(matches!(decode("hello-world_1.txt"), Cow::Borrowed(_)));
    }

    #[test]
    fn find_cases() {
        let cases: [(&str, &str, Option<&str>); 10] = [
            ("name=ann", "name", Some("ann")),
            ("a=1&name=ann&b=2", "name", Some("ann")),
            ("name=ann&name=bob", "name", Some("ann")),
            ("name=", "name", Some("")),
            ("name", "name", Some("")),
            ("names=ann", "name", None),
            ("", "name", None),
            ("&&name=x&&", "name", Some("x")),
            ("na%6De=ann+lee", "name", Some("ann lee")),
            ("q=a%3Db%26c", "q", Some("a=b&c")),
        ];
        for (query, name, expected) in cases {
            assert_eq!(
                find(query, name).as_deref(),
                expected,
                "find({query:?}, {name:?})"
            );
        }
    }
}
