//! A request path split into safe, percent-decoded segments: syntactically
//! hostile paths (`..`, backslash, NUL, control bytes, encoded `/`, bad
//! percent-encoding) are rejected here, before the file system is touched.

use percent_encoding::percent_decode_str;

use crate::webroot::CONFIG_FILE;

pub(super) enum Rejection {
    /// Malformed or hostile: `400`.
    Bad(&'static str),
    /// Well-formed but names something never served: `404`.
    Hidden,
}

/// Splits and percent-decodes a request path into safe segments.
pub(super) fn split_path(raw: &str) -> Result<Vec<String>, Rejection> {
    if !raw.starts_with('/') {
        return Err(Rejection::Bad("the path must start with /"));
    }
    let mut segments = Vec::new();
    for raw_segment in raw.split('/') {
        if raw_segment.is_empty() {
            continue;
        }
        if raw_segment.contains('\\') {
            return Err(Rejection::Bad("backslashes are not allowed in paths"));
        }
        let decoded: Vec<u8> = percent_decode_str(raw_segment).collect();
        if !well_formed_percent_encoding(raw_segment) {
            return Err(Rejection::Bad("malformed percent-encoding in the path"));
        }
        let segment = String::from_utf8(decoded)
            .map_err(|_| Rejection::Bad("the path is not valid UTF-8"))?;
        if segment.contains(['/', '\\']) {
            return Err(Rejection::Bad("encoded slashes are not allowed in paths"));
        }
        if segment.contains('\0') || segment.chars().any(char::is_control) {
            return Err(Rejection::Bad(
                "control characters are not allowed in paths",
            ));
        }
        if segment == "." || segment == ".." {
            return Err(Rejection::Bad("`.` and `..` are not allowed in paths"));
        }
        if segment.starts_with('.') || segment == CONFIG_FILE {
            return Err(Rejection::Hidden);
        }
        segments.push(segment);
    }
    Ok(segments)
}

/// Every `%` is followed by two hex digits.
fn well_formed_percent_encoding(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |b: Option<&u8>| b.is_some_and(u8::is_ascii_hexdigit);
            if !hex(bytes.get(i + 1)) || !hex(bytes.get(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}
