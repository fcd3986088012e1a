//! Header blocks as guests write and read them (`Name: value` lines), and the
//! headers a guest may not set on an outbound request.

use http::header::{HeaderMap, HeaderName, HeaderValue};

/// Parses a guest's header block: `Name: value` lines separated by `\n`, a
/// trailing `\r` on a line ignored, blank lines skipped (so an empty block
/// and a block ending in `\n` are fine). Spaces and tabs around a value are
/// trimmed; a name repeated on several lines gives several values. The error
/// names the line and what is wrong with it.
pub fn parse_header_block(block: &[u8]) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    for (index, raw) in block.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if line.is_empty() {
            continue;
        }
        let number = index + 1;
        let shown = String::from_utf8_lossy(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(format!(
                "header line {number} {shown:?} has no ':'; write each header as `Name: value`"
            ));
        };
        let name = HeaderName::from_bytes(&line[..colon]).map_err(|_| {
            format!(
                "header line {number} {shown:?}: the name is empty or has a character a header \
                 name cannot have (letters, digits and !#$%&'*+-.^_`|~ only, no spaces)"
            )
        })?;
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).map_err(|_| {
            format!("header line {number} {shown:?}: the value has a control character")
        })?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// Formats headers as a block, one `name: value\n` line per value, in the
/// map's order; names are lower case, as `http` keeps them.
pub fn format_header_block(headers: &HeaderMap) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in headers {
        block.extend_from_slice(name.as_str().as_bytes());
        block.extend_from_slice(b": ");
        block.extend_from_slice(value.as_bytes());
        block.push(b'\n');
    }
    block
}

/// Whether a guest may not set `name` on an outbound request: the host
/// derives the framing (`Content-Length`, `Transfer-Encoding`) from the body
/// and the `Host` from the URL, and owns the connection (`Connection`,
/// `Keep-Alive`, `Upgrade`, `TE`, `Proxy-*`). A guest that set them could
/// smuggle a second request or reach a host the allow-list did not check.
pub fn is_refused_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host"
            | "connection"
            | "transfer-encoding"
            | "content-length"
            | "upgrade"
            | "te"
            | "keep-alive"
    ) || name.as_str().starts_with("proxy-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_parses_and_formats_back_to_the_same_headers() {
        let block = b"Content-Type: text/plain\r\nX-Many: one\nx-many:two  \n\nAccept:\t*/*\n";
        let headers = parse_header_block(block).unwrap();
        assert_eq!(headers["content-type"], "text/plain");
        let many: Vec<_> = headers.get_all("x-many").iter().collect();
        assert_eq!(many, ["one", "two"]);
        assert_eq!(headers["accept"], "*/*");

        let formatted = format_header_block(&headers);
        assert_eq!(
            formatted,
            b"content-type: text/plain\nx-many: one\nx-many: two\naccept: */*\n"
        );
        assert_eq!(parse_header_block(&formatted).unwrap(), headers);
    }

    #[test]
    fn an_empty_block_is_no_headers() {
        assert!(parse_header_block(b"").unwrap().is_empty());
        assert!(parse_header_block(b"\n\r\n").unwrap().is_empty());
        assert!(format_header_block(&HeaderMap::new()).is_empty());
    }

    #[test]
    fn an_empty_value_is_kept() {
        let headers = parse_header_block(b"X-Empty:\n").unwrap();
        assert_eq!(headers["x-empty"], "");
        assert_eq!(format_header_block(&headers), b"x-empty: \n");
    }

    #[test]
    fn malformed_lines_are_reported_with_their_number() {
        let table: [(&[u8], &str); 4] = [
            (b"Good: 1\nno colon here", "line 2"),
            (b": value", "name is empty"),
            (b"Bad Name: x", "no spaces"),
            (b"X-Bell: a\x07b", "control character"),
        ];
        for (block, expected) in table {
            let error = parse_header_block(block).unwrap_err();
            assert!(error.contains(expected), "{block:?}: {error}");
        }
    }

    #[test]
    fn framing_and_hop_by_hop_headers_are_refused() {
        for name in [
            "host",
            "connection",
            "transfer-encoding",
            "content-length",
            "upgrade",
            "te",
            "keep-alive",
            "proxy-authorization",
            "proxy-connection",
        ] {
            assert!(is_refused_header(&HeaderName::from_static(name)), "{name}");
        }
        for name in [
            "authorization",
            "content-type",
            "x-proxy",
            "accept-encoding",
            "user-agent",
        ] {
            assert!(!is_refused_header(&HeaderName::from_static(name)), "{name}");
        }
    }
}
