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
    for import in wasmlet::host::IMPORTS {
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
        }
    }
}
