//! The SDK's copy of the ABI's numbers agrees with the runtime's: a handler
//! built with the SDK reads every code and level the way the runtime means
//! it.
//!
//! The runtime's `abi.rs` has no dependencies, so it is compiled in here as
//! it stands rather than pulling the whole runtime into the SDK's tests.

#[path = "../../runtime/src/abi.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "the runtime's table may hold items this test does not compare"
)]
mod runtime_abi;

use wasmlet_sdk::log::Level;

#[test]
fn status_codes_match_the_runtime() {
    assert_eq!(wasmlet_sdk::code::ALL, runtime_abi::code::ALL);
}

#[test]
fn log_levels_match_the_runtime() {
    let levels = [
        (Level::Error, runtime_abi::level::ERROR),
        (Level::Warn, runtime_abi::level::WARN),
        (Level::Info, runtime_abi::level::INFO),
        (Level::Debug, runtime_abi::level::DEBUG),
    ];
    for (level, code) in levels {
        assert_eq!(level as i32, code, "{level:?}");
    }
    assert_eq!(Level::ALL.len(), levels.len());
}

#[test]
fn the_import_module_matches_the_runtime() {
    // `sys/wasm.rs` can only name its module in a literal attribute.
    let source = include_str!("../src/sys/wasm.rs");
    let attribute = format!("#[link(wasm_import_module = \"{}\")]", runtime_abi::MODULE);
    assert!(source.contains(&attribute), "sys/wasm.rs lacks {attribute}");
}
