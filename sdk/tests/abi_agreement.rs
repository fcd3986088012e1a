//! The SDK agrees with the ABI table (`wasmlet-abi`), which the runtime uses
//! too: its log levels, its import module, and every import it declares in
//! `sys/wasm.rs`, by name and signature. (Status codes are the table's own,
//! re-exported by `wasmlet_sdk::code`.)

use wasmlet_abi::{IMPORTS, MODULE, Type, find, level};
use wasmlet_sdk::log::Level;

const SYS: &str = include_str!("../src/sys/wasm.rs");

#[test]
fn status_codes_are_the_tables() {
    assert_eq!(wasmlet_sdk::code::ALL, wasmlet_abi::code::ALL);
}

#[test]
fn log_levels_match_the_table() {
    let levels = [
        (Level::Error, level::ERROR),
        (Level::Warn, level::WARN),
        (Level::Info, level::INFO),
        (Level::Debug, level::DEBUG),
    ];
    for (level, code) in levels {
        assert_eq!(level as i32, code, "{level:?}");
    }
    assert_eq!(Level::ALL.len(), levels.len());
}

#[test]
fn the_import_module_matches_the_table() {
    // `sys/wasm.rs` can only name its module in a literal attribute.
    let attribute = format!("#[link(wasm_import_module = \"{MODULE}\")]");
    assert!(SYS.contains(&attribute), "sys/wasm.rs lacks {attribute}");
}

/// The wasm32 type of a Rust parameter or return type as `sys/wasm.rs`
/// writes them: pointers and `usize` are 32 bits there.
fn wasm_type(rust: &str) -> Type {
    match rust.trim() {
        "i32" | "u32" | "usize" | "*const u8" | "*mut u8" => Type::I32,
        "i64" | "u64" => Type::I64,
        other => panic!("sys/wasm.rs uses a type the ABI has no place for: {other}"),
    }
}

/// `(link name, params, results)` of every function in the extern block.
fn declarations() -> Vec<(String, Vec<Type>, Vec<Type>)> {
    let start = SYS.find("unsafe extern \"C\" {").expect("an extern block");
    let block = &SYS[start..];
    let block = &block[..block.find("\n}").expect("the block's end")];
    block
        .split(';')
        .filter(|item| item.contains("fn "))
        .map(|item| {
            let link_name = item
                .split("#[link_name = \"")
                .nth(1)
                .and_then(|rest| rest.split('"').next());
            let signature = &item[item.find("fn ").unwrap() + 3..];
            let (name, rest) = signature.split_once('(').unwrap();
            let (params, rest) = rest.split_once(')').unwrap();
            let params = params
                .split(',')
                .filter(|param| !param.trim().is_empty())
                .map(|param| wasm_type(param.split_once(':').unwrap().1))
                .collect();
            let results = rest
                .split_once("->")
                .map(|(_, ty)| vec![wasm_type(ty)])
                .unwrap_or_default();
            let name = link_name.unwrap_or(name.trim()).to_owned();
            (name, params, results)
        })
        .collect()
}

#[test]
fn every_import_the_sdk_declares_has_the_tables_signature() {
    let declared = declarations();
    assert!(declared.len() > 30, "found {} declarations", declared.len());
    for (name, params, results) in &declared {
        let known =
            find(name).unwrap_or_else(|| panic!("the SDK declares `{name}`, not in the table"));
        assert_eq!(
            (params.as_slice(), results.as_slice()),
            (known.params, known.results),
            "`{name}`"
        );
    }
    // And it declares every import the table has: the SDK reaches them all.
    for import in IMPORTS {
        assert!(
            declared.iter().any(|(name, _, _)| name == import.name),
            "the SDK does not declare `{}`",
            import.name
        );
    }
}
