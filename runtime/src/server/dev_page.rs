//! The body of a failure's response. Without `--dev` it is the status line
//! alone: a trap message, a compile error or a source line can reveal a
//! handler's internals, so nothing of them reaches a client. With `--dev` it
//! adds the failure's detail (for a trap, the guest functions it happened in,
//! innermost first, with their source file and line when the module carries
//! DWARF debug info) and, for a `.wat` syntax error, the source lines around
//! it with a caret under the column.

use std::fmt::Write as _;
use std::path::Path;

use http::StatusCode;

use crate::error::LoadError;
use crate::outcome::Outcome;

/// Largest handler source read for an excerpt: a `.wat` file past this is
/// shown without one.
const MAX_SOURCE: u64 = 4 << 20;

/// Lines shown before the error's line; one is shown after it.
const LINES_BEFORE: usize = 2;

/// The text a client gets for `outcome`, answered with `status`.
pub(super) fn body(status: StatusCode, outcome: &Outcome, dev: bool) -> String {
    let reason = status.canonical_reason().unwrap_or("error");
    let head = format!("{} {reason}\n", status.as_u16());
    let Some(detail) = outcome.detail().filter(|_| dev) else {
        return head;
    };
    let mut body = format!("{head}\n{detail}\n");
    if let Outcome::Load(LoadError::Syntax {
        path, line, column, ..
    }) = outcome
        && let Some(excerpt) = excerpt(path, *line, *column)
    {
        body.push('\n');
        body.push_str(&excerpt);
    }
    body
}

/// The lines around `line` of the file at `path` (1-based `line` and byte
/// `column`, as the parser reports them), numbered, with a caret under the
/// column. `None` when the file cannot be read now, is not text, or has
/// changed so that the line is gone.
fn excerpt(path: &Path, line: usize, column: usize) -> Option<String> {
    let bytes = crate::regular_file::read_bounded(path, MAX_SOURCE).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    render_excerpt(&text, line, column)
}

fn render_excerpt(text: &str, line: usize, column: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let at = line.checked_sub(1)?;
    let error_line = *lines.get(at)?;
    let first = at.saturating_sub(LINES_BEFORE);
    let last = (at + 1).min(lines.len() - 1);
    let width = (last + 1).to_string().len();
    let mut out = String::new();
    for (i, text) in lines.iter().enumerate().take(last + 1).skip(first) {
        let _ = writeln!(out, "{:>width$} | {text}", i + 1);
        if i == at {
            // Under the text up to the column, tabs kept so the caret lines
            // up however the reader's terminal expands them.
            let mut end = column.saturating_sub(1).min(error_line.len());
            while !error_line.is_char_boundary(end) {
                end -= 1;
            }
            let pad: String = error_line[..end]
                .chars()
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let _ = writeln!(out, "{:>width$} | {pad}^", "");
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOURCE: &str =
        "(module\n  (memory 1)\n  (func (export \"handle\")\n    i32.cnst 1\n    drop))\n";

    #[test]
    fn the_excerpt_numbers_the_lines_and_puts_a_caret_under_the_column() {
        let excerpt = render_excerpt(SOURCE, 4, 5).unwrap();
        assert_eq!(
            excerpt,
            "2 |   (memory 1)\n\
             3 |   (func (export \"handle\")\n\
             4 |     i32.cnst 1\n  \
             |     ^\n\
             5 |     drop))\n"
        );
    }

    #[test]
    fn the_caret_keeps_tabs_and_survives_odd_positions() {
        let excerpt = render_excerpt("\tnop é x\n", 1, 8).unwrap();
        assert!(excerpt.ends_with("  | \t     ^\n"), "{excerpt:?}");
        // A column inside a multi-byte character, or past the end.
        assert!(render_excerpt("é\n", 1, 2).is_some());
        assert!(render_excerpt("ab\n", 1, 99).unwrap().contains("|   ^"));
        // The first line; a line the file no longer has.
        assert!(render_excerpt("x\n", 1, 1).unwrap().starts_with("1 | x\n"));
        assert_eq!(render_excerpt("x\n", 9, 1), None);
        assert_eq!(render_excerpt("x\n", 0, 1), None);
    }

    #[test]
    fn without_dev_only_the_status_line_is_sent() {
        let trap = Outcome::Trap("wasm trap: unreachable (in `secret_fn`)".to_owned());
        let status = trap.status();
        assert_eq!(body(status, &trap, false), "500 Internal Server Error\n");
        assert!(body(status, &trap, true).contains("`secret_fn`"));
        let timeout = Outcome::Timeout;
        assert_eq!(
            body(timeout.status(), &timeout, false),
            "504 Gateway Timeout\n"
        );
    }
}
