//! The text log's fields, written so that no value can start a line of its
//! own. A guest's log message, a URL or a key it chose, reaches the log as a
//! field; written raw, a `\n` in it would end the line and whatever follows
//! would read as another event (a forged access line, say). Every control
//! character in every field is escaped (`\n`, `\r`, `\u{0}`, ESC, …).
//!
//! The JSON format needs none of this: its encoder escapes control
//! characters in strings already.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

/// Formats an event's fields as `tracing-subscriber`'s default text format
/// does (the message bare, the rest `name=value`, separated by spaces), with
/// control characters escaped. Install with
/// `tracing_subscriber::fmt().fmt_fields(EscapedFields)`.
#[derive(Debug, Default, Clone, Copy)]
pub struct EscapedFields;

impl<'writer> FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = Visitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct Visitor<'writer> {
    writer: Writer<'writer>,
    first: bool,
    result: fmt::Result,
}

impl Visit for Visitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `log` crate metadata that the formatter shows already.
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        let mut out = Escaping(&mut self.writer);
        self.result = match field.name() {
            "message" => write!(out, "{separator}{value:?}"),
            name => write!(
                out,
                "{separator}{}={value:?}",
                name.trim_start_matches("r#")
            ),
        };
    }
}

/// Writes through to `W`, escaping control characters.
struct Escaping<'a, W>(&'a mut W);

impl<W: Write> Write for Escaping<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some(at) = rest.find(char::is_control) {
            self.0.write_str(&rest[..at])?;
            let control = rest[at..].chars().next().expect("found at `at`");
            write!(self.0, "{}", control.escape_default())?;
            rest = &rest[at + control.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> String {
        let mut out = String::new();
        write!(Escaping(&mut out), "{text}").unwrap();
        out
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_is_kept() {
        let cases = [
            ("plain text", "plain text"),
            ("two\nlines", "two\\nlines"),
            ("cr\rlf\r\n", "cr\\rlf\\r\\n"),
            ("nul\0byte", "nul\\u{0}byte"),
            ("\x1b[31mred", "\\u{1b}[31mred"),
            ("tab\there", "tab\\there"),
            ("é ✓ …", "é ✓ …"),
            ("c1\u{85}next", "c1\\u{85}next"),
        ];
        for (text, want) in cases {
            assert_eq!(escaped(text), want, "{text:?}");
        }
    }
}
