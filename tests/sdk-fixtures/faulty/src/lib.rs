//! `faulty`: fails the way `?how=` says, so the end-to-end tests can check
//! what a client and the log see when an SDK handler goes wrong.
//!
//! - `err`: returns `Err` before writing anything (500, message logged).
//! - `panic`: panics before writing (500, panic message logged).
//! - `err-late`: writes a line, then returns `Err` (the body is cut).
//! - `trap`: traps in `trap_here`, with no panic machinery in between, so a
//!   backtrace's innermost frame is that function (and its line, in a build
//!   with debug info).
//! - anything else: answers `fine`.

use std::io::Write;

use wasmlet_sdk::{Request, ResponseWriter, Result, handler};

#[handler(get)]
fn faulty(req: Request, out: &mut ResponseWriter) -> Result<()> {
    match req.query("how").as_deref() {
        Some("err") => Err(wasmlet_sdk::Error::msg("the database said no")),
        Some("panic") => panic!("the invariant broke: {}", 6 * 7),
        Some("trap") => trap_here(),
        Some("err-late") => {
            writeln!(out, "first line")?;
            out.flush()?;
            Err(wasmlet_sdk::Error::msg("failed halfway"))
        }
        _ => {
            write!(out, "fine")?;
            Ok(())
        }
    }
}

/// Traps where it stands.
#[inline(never)]
fn trap_here() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

#[cfg(test)]
mod tests {
    use super::handle_get;
    use wasmlet_sdk::testing::TestRequest;

    #[test]
    fn answers_fine_without_a_failure_mode() {
        let response = TestRequest::get("/faulty").call(handle_get);
        assert_eq!(response.status(), 200);
        assert_eq!(response.text(), "fine");
    }

    #[test]
    fn an_error_before_writing_is_a_500() {
        let response = TestRequest::get("/faulty?how=err").call(handle_get);
        assert_eq!(response.status(), 500);
        assert!(
            response
                .logs()
                .iter()
                .any(|l| l.message.contains("the database said no"))
        );
    }
}
