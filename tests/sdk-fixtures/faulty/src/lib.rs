//! `faulty`: fails the way `?how=` says, so the end-to-end tests can check
//! what a client and the log see when an SDK handler goes wrong.
//!
//! - `err`: returns `Err` before writing anything (500, message logged).
//! - `panic`: panics before writing (500, panic message logged).
//! - `err-late`: writes a line, then returns `Err` (the body is cut).
//! - `trap`: traps in `trap_here`, with no panic machinery in between, so a
//!   backtrace's innermost frame is that function (and its line, in a build
//!   with debug info).
//! - `alloc` with `bytes=N`: holds N bytes at once, in 4 KiB pieces each
//!   filled with its own number, and answers their checksum, so a test can
//!   tell the allocator's memory apart from its own arena (`sys/alloc.rs`
//!   in the SDK) and from grown pages; past the memory limit, the
//!   allocation fails and the module traps.
//! - anything else: answers `fine`.

use std::io::Write;

use wasmlet_sdk::{Request, ResponseWriter, Result, handler};

#[handler(get)]
fn faulty(req: Request, out: &mut ResponseWriter) -> Result<()> {
    match req.query("how").as_deref() {
        Some("err") => Err(wasmlet_sdk::Error::msg("the database said no")),
        Some("panic") => panic!("the invariant broke: {}", 6 * 7),
        Some("trap") => trap_here(),
        Some("alloc") => {
            let bytes = req.query("bytes").and_then(|n| n.parse().ok()).unwrap_or(0);
            write!(out, "{}", checksum_of_pieces(bytes))?;
            Ok(())
        }
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

/// Allocates `bytes` in pieces of 4 KiB, all alive at once, piece `i`
/// filled with `i as u8`, and sums what it reads back.
fn checksum_of_pieces(bytes: usize) -> u64 {
    const PIECE: usize = 4 << 10;
    let pieces: Vec<Vec<u8>> = (0..bytes.div_ceil(PIECE))
        .map(|i| vec![i as u8; PIECE.min(bytes - i * PIECE)])
        .collect();
    pieces.iter().flatten().map(|&b| u64::from(b)).sum()
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
    fn alloc_answers_the_checksum_of_its_pieces() {
        // Pieces 0 and 1 whole, then 2 bytes of piece 2.
        let response = TestRequest::get("/faulty?how=alloc&bytes=8194").call(handle_get);
        assert_eq!(response.text(), (4096 + 2 * 2).to_string());
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
