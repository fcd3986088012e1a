//! `docs/abi.md` stays in step with the runtime: every status code in
//! `wasmlet::abi::code` has its table row, and every import its section and
//! a complete example that compiles.

use std::path::Path;

fn abi_reference() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/abi.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

#[test]
fn every_status_code_has_a_row_in_the_abi_reference() {
    let doc = abi_reference();
    for (name, code) in wasmlet::abi::code::ALL {
        let row = format!("| `{code}` | `{name}` |");
        assert!(doc.contains(&row), "docs/abi.md lacks the row {row}");
    }
}

#[test]
fn every_import_has_a_section_with_a_module_that_compiles() {
    let doc = abi_reference();
    for import in wasmlet::abi::IMPORTS {
        let import = import.name;
        let heading = format!("### `{import}`\n");
        let start = doc
            .find(&heading)
            .unwrap_or_else(|| panic!("docs/abi.md has no section {heading:?}"));
        let section = &doc[start + heading.len()..];
        let end = [section.find("\n## "), section.find("\n### ")]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(section.len());
        let section = &section[..end];
        let modules: Vec<&str> = section
            .split("```wat\n")
            .skip(1)
            .filter_map(|block| block.split("```").next())
            .filter(|block| block.contains("(module"))
            .collect();
        assert!(!modules.is_empty(), "{import}: no example module");
        for module in modules {
            let binary = wat::parse_str(module)
                .unwrap_or_else(|e| panic!("{import}: the example does not parse: {e}"));
            assert!(
                module.contains(&format!("\"wasmlet\" \"{import}\"")),
                "{import}: the example does not import it"
            );
            assert!(binary.starts_with(b"\0asm"));
            for (name, signature) in wasmlet_imports(&binary) {
                let known = wasmlet::abi::find(&name)
                    .unwrap_or_else(|| panic!("{import}: the example imports unknown `{name}`"));
                assert_eq!(
                    signature,
                    known.wat().to_string(),
                    "{import}: the example's `{name}` differs from the ABI table"
                );
            }
        }
    }
}

/// Each `wasmlet` import of a module with its function type, written as
/// [`wasmlet::abi::Import::wat`] writes it.
fn wasmlet_imports(binary: &[u8]) -> Vec<(String, String)> {
    use wasmparser::{Payload, TypeRef, ValType};
    let mut types = Vec::new();
    let mut imports = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(binary) {
        match payload.expect("a valid module") {
            Payload::TypeSection(section) => {
                for ty in section.into_iter_err_on_gc_types() {
                    types.push(ty.expect("a function type"));
                }
            }
            Payload::ImportSection(section) => {
                for import in section.into_imports() {
                    let import = import.expect("an import");
                    if let TypeRef::Func(index) = import.ty {
                        imports.push((import.module.to_owned(), import.name.to_owned(), index));
                    }
                }
            }
            _ => {}
        }
    }
    let text = |types: &[ValType]| -> Vec<wasmlet::abi::Type> {
        types
            .iter()
            .map(|ty| match ty {
                ValType::I32 => wasmlet::abi::Type::I32,
                ValType::I64 => wasmlet::abi::Type::I64,
                other => panic!("a type the ABI never uses: {other:?}"),
            })
            .collect()
    };
    imports
        .into_iter()
        .filter(|(module, _, _)| module == wasmlet::abi::MODULE)
        .map(|(_, name, index)| {
            let ty = &types[index as usize];
            let mut signature = String::new();
            wasmlet::abi::write_func(&mut signature, &text(ty.params()), &text(ty.results()))
                .unwrap();
            (name, signature)
        })
        .collect()
}
