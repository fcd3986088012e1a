//! What a component imports and exports, read before it is compiled, and the
//! refusals that follow from it, each saying what is wrong and what to do.
//!
//! Only the outer component's import and export sections are read: nested
//! core modules and components (the code, nearly all of the bytes) are
//! skipped unread, and nothing is validated (0.1 ms for a 50 MB component).
//! So a component wasmlet cannot serve is refused at once, whatever its size,
//! instead of after a compile of seconds or minutes; and which `wasi:http`
//! world a component serves (WASI 0.2's `incoming-handler` or WASI 0.3's
//! `handler`) is known before it is compiled. Whatever passes here still goes
//! through the compile and the linker, which have the last word.

use wasmparser::{BinaryReaderError, Chunk, Parser, Payload};

use crate::host::{WASI_DRAFT_INTERFACES, WASI_INTERFACES, WASI_P3_INTERFACES};

/// The interface a WASI 0.2 component handler exports, without its version.
pub(super) const INCOMING_HANDLER: &str = "wasi:http/incoming-handler";

/// The interface a WASI 0.3 component handler exports, without its version.
pub(super) const P3_HANDLER: &str = "wasi:http/handler";

/// The `wasi:http` world a component handler serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Serves {
    /// WASI 0.2: `wasi:http/incoming-handler@0.2.x` (the proxy world).
    Proxy,
    /// WASI 0.3: `wasi:http/handler@0.3.0` (the service world).
    Service,
}

/// What a component's outer sections name.
#[derive(Debug, Default)]
pub(super) struct World {
    /// Import names with their versions (`wasi:io/streams@0.2.0`).
    imports: Vec<String>,
    /// Export names with their versions.
    exports: Vec<String>,
}

impl World {
    /// Reads the import and export names of the component in `wasm`; an
    /// error is the parser's message, with the offset.
    pub(super) fn read(wasm: &[u8]) -> Result<Self, String> {
        let text = |e: BinaryReaderError| e.to_string();
        let mut world = World::default();
        let mut parser = Parser::new(0);
        let mut rest = wasm;
        loop {
            let offset = wasm.len() - rest.len();
            let Chunk::Parsed { consumed, payload } = parser.parse(rest, true).map_err(text)?
            else {
                // `eof` is true: the parser fails instead of asking for more.
                return Err(format!("unexpected end of file (at offset {offset:#x})"));
            };
            rest = &rest[consumed..];
            match payload {
                Payload::ComponentImportSection(section) => {
                    for import in section {
                        let name = import.map_err(text)?.name.full_name();
                        world.imports.push(name.into_owned());
                    }
                }
                Payload::ComponentExportSection(section) => {
                    for export in section {
                        let name = export.map_err(text)?.name.full_name();
                        world.exports.push(name.into_owned());
                    }
                }
                // The outer parser moves past the nested binary; its bytes
                // are skipped here unread.
                Payload::ModuleSection {
                    unchecked_range, ..
                }
                | Payload::ComponentSection {
                    unchecked_range, ..
                } => {
                    let len = usize::try_from(unchecked_range.end - unchecked_range.start)
                        .unwrap_or(usize::MAX);
                    rest = rest.get(len..).ok_or_else(|| {
                        format!(
                            "a nested module or component runs past the end of the file \
                             (at offset {:#x})",
                            offset + consumed
                        )
                    })?;
                }
                Payload::End(_) => return Ok(world),
                _ => {}
            }
        }
    }

    /// Which world this component serves, if wasmlet can serve it; if not,
    /// one sentence (to follow the file name) saying what is wrong and what
    /// to do.
    pub(super) fn check(&self) -> Result<Serves, String> {
        // `0.3.0-rc-…`: a draft of WASI 0.3 whose types differ from 0.3.0's.
        if let Some(draft) = self.exports.iter().find(|name| {
            versioned(name).is_some_and(|(i, v)| i == P3_HANDLER && is_0_3(v) && v.contains('-'))
        }) {
            return Err(format!(
                "is built for a WASI 0.3 release candidate (it exports `{draft}`); wasmlet serves \
                 WASI 0.3.0 components (`{P3_HANDLER}@0.3.0`) and WASI 0.2 ones: rebuild it with \
                 a current toolchain (spin-sdk 7, or wasip3 0.7)"
            ));
        }
        let spin = self.imports_where(is_spin);
        if !spin.is_empty() {
            return Err(format!(
                "imports Spin's own host API ({}), which only Spin provides: build it as a plain \
                 wasi:http component that imports WASI interfaces only (spin-sdk with \
                 `default-features = false` and only its `http` feature)",
                quoted(&spin)
            ));
        }
        let unknown = self.imports_where(|name| !is_provided(name));
        if !unknown.is_empty() {
            return Err(format!(
                "imports {}, which wasmlet does not provide; a component may import only {}: \
                 rebuild it without {}",
                quoted(&unknown),
                provided(),
                if unknown.len() == 1 {
                    "that import"
                } else {
                    "those imports"
                }
            ));
        }
        self.serves()
    }

    fn imports_where(&self, pick: impl Fn(&str) -> bool) -> Vec<&str> {
        self.imports
            .iter()
            .map(String::as_str)
            .filter(|name| pick(name))
            .collect()
    }

    /// The world its exports serve; if neither, the message says what it
    /// exports instead.
    fn serves(&self) -> Result<Serves, String> {
        let exports = |interface: &str, is_version: fn(&str) -> bool| {
            self.exports
                .iter()
                .any(|name| versioned(name).is_some_and(|(i, v)| i == interface && is_version(v)))
        };
        if exports(INCOMING_HANDLER, |v| v.starts_with("0.2.")) {
            return Ok(Serves::Proxy);
        }
        if exports(P3_HANDLER, is_0_3) {
            return Ok(Serves::Service);
        }
        let listed = if self.exports.is_empty() {
            "nothing".to_owned()
        } else {
            let exports: Vec<&str> = self.exports.iter().map(String::as_str).collect();
            quoted(&exports)
        };
        Err(format!(
            "is a component that exports {listed}, but a component handler must export \
             `{INCOMING_HANDLER}@0.2.x` (WASI 0.2, as `wasmtime serve` runs it) or \
             `{P3_HANDLER}@0.3.0` (WASI 0.3)"
        ))
    }
}

/// `name` split into interface and version, if it has a version.
fn versioned(name: &str) -> Option<(&str, &str)> {
    name.split_once('@')
}

fn is_0_3(version: &str) -> bool {
    version.starts_with("0.3.")
}

/// Spin's own interfaces: `fermyon:spin/…` (Spin 2 and 3) and `spin:…`.
fn is_spin(name: &str) -> bool {
    name.starts_with("fermyon:spin/") || name.starts_with("spin:")
}

/// Whether the WASI linker defines `name`: a listed WASI 0.2 interface at
/// any 0.2 version, as wasmtime's linker matches versions, or a listed WASI
/// 0.3 one at 0.3.0 (a release candidate's types differ), or a listed draft
/// interface at its exact version.
fn is_provided(name: &str) -> bool {
    WASI_DRAFT_INTERFACES.contains(&name)
        || versioned(name).is_some_and(|(interface, version)| {
            (version.starts_with("0.2.") && WASI_INTERFACES.contains(&interface))
                || (version == "0.3.0" && WASI_P3_INTERFACES.contains(&interface))
        })
}

/// The interfaces a component may import, by package, for a message:
/// `wasi:cli/{environment, exit}, wasi:clocks/{…}` (all at 0.2.x).
pub(super) fn provided() -> String {
    format!(
        "the WASI 0.2 interfaces {} (at 0.2.x), the WASI 0.3 interfaces {} (at 0.3.0), \
         and {} (at exactly these versions; in 0.2 and 0.3 components alike)",
        by_package(&WASI_INTERFACES),
        by_package(&WASI_P3_INTERFACES),
        quoted(&WASI_DRAFT_INTERFACES)
    )
}

/// `interfaces` grouped by package: `wasi:cli/{environment, exit}, …`.
fn by_package(interfaces: &[&'static str]) -> String {
    let mut packages: Vec<(&str, Vec<&str>)> = Vec::new();
    for &interface in interfaces {
        let (package, name) = interface.split_once('/').unwrap_or((interface, ""));
        match packages.last_mut() {
            Some((last, names)) if *last == package => names.push(name),
            _ => packages.push((package, vec![name])),
        }
    }
    let listed: Vec<String> = packages
        .iter()
        .map(|(package, names)| format!("{package}/{{{}}}", names.join(", ")))
        .collect();
    listed.join(", ")
}

/// `names` in backquotes, comma-separated.
fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(imports: &[&str], exports: &[&str]) -> World {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect();
        World {
            imports: owned(imports),
            exports: owned(exports),
        }
    }

    const HANDLER: &str = "wasi:http/incoming-handler@0.2.0";

    #[test]
    fn any_wasi_0_2_incoming_handler_is_accepted() {
        for version in ["0.2.0", "0.2.6", "0.2.12"] {
            let handler = format!("wasi:http/incoming-handler@{version}");
            let world = world(
                &["wasi:io/streams@0.2.0", "wasi:cli/environment@0.2.3"],
                &["wasi:cli/run@0.2.0", &handler],
            );
            assert_eq!(world.check(), Ok(Serves::Proxy), "{version}");
        }
    }

    #[test]
    fn a_component_without_the_handler_is_told_what_it_exports_and_what_is_expected() {
        let error = world(&[], &["wasi:cli/run@0.2.0", "answer"])
            .check()
            .unwrap_err();
        assert!(
            error.contains("exports `wasi:cli/run@0.2.0`, `answer`"),
            "{error}"
        );
        assert!(
            error.contains("must export `wasi:http/incoming-handler@0.2.x`"),
            "{error}"
        );
        let error = world(&[], &[]).check().unwrap_err();
        assert!(error.contains("exports nothing"), "{error}");
        let error = world(&[], &["wasi:http/incoming-handler@1.0.0"])
            .check()
            .unwrap_err();
        assert!(error.contains("must export"), "{error}");
    }

    #[test]
    fn a_wasi_0_3_handler_is_served_and_a_release_candidate_is_named_as_such() {
        let world_0_3 = world(
            &["wasi:http/types@0.3.0", "wasi:cli/stdout@0.2.0"],
            &["wasi:http/handler@0.3.0"],
        );
        assert_eq!(world_0_3.check(), Ok(Serves::Service));
        let error = world(&[], &["wasi:http/handler@0.3.0-rc-2025-09-16"])
            .check()
            .unwrap_err();
        assert!(
            error.starts_with(
                "is built for a WASI 0.3 release candidate (it exports \
                 `wasi:http/handler@0.3.0-rc-2025-09-16`)"
            ),
            "{error}"
        );
        // WASI 0.3 has no wasi:io: an import of it is not provided.
        let error = world(&["wasi:io/streams@0.3.0"], &["wasi:http/handler@0.3.0"])
            .check()
            .unwrap_err();
        assert!(
            error.starts_with("imports `wasi:io/streams@0.3.0`, which wasmlet does not provide"),
            "{error}"
        );
    }

    #[test]
    fn spin_imports_are_named_as_spin_s_host_api() {
        let error = world(
            &[
                "wasi:io/streams@0.2.0",
                "fermyon:spin/variables@2.0.0",
                "spin:postgres/postgres@3.0.0",
            ],
            &[HANDLER],
        )
        .check()
        .unwrap_err();
        assert!(
            error.starts_with(
                "imports Spin's own host API (`fermyon:spin/variables@2.0.0`, \
                 `spin:postgres/postgres@3.0.0`)"
            ),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_import_is_named_with_the_list_of_what_is_provided() {
        let error = world(
            &["wasi:blobstore/blobstore@0.2.0-draft", "wasi:io/poll@0.2.0"],
            &[HANDLER],
        )
        .check()
        .unwrap_err();
        assert!(
            error.starts_with(
                "imports `wasi:blobstore/blobstore@0.2.0-draft`, which wasmlet does not provide"
            ),
            "{error}"
        );
        assert!(error.contains("wasi:io/{error, poll, streams}"), "{error}");
        // An interface wasmlet has, at a version it does not.
        let error = world(&["wasi:io/poll@1.0.0"], &[HANDLER])
            .check()
            .unwrap_err();
        assert!(error.starts_with("imports `wasi:io/poll@1.0.0`"), "{error}");
    }

    #[test]
    fn the_provided_list_names_every_interface_once() {
        let listed = provided();
        // Three lists, each of names separated by ", ", and separated from
        // each other by ", " too.
        let count: usize = listed.matches(", ").count() + 1;
        assert_eq!(
            count,
            WASI_INTERFACES.len() + WASI_P3_INTERFACES.len() + WASI_DRAFT_INTERFACES.len(),
            "{listed}"
        );
        assert!(
            listed.contains("wasi:http/{outgoing-handler, types}"),
            "{listed}"
        );
    }

    #[test]
    fn the_names_are_read_from_the_outer_component_only() {
        let wasm = wat::parse_str(
            r#"(component
                (import "wasi:io/poll@0.2.0" (instance))
                (core module $m (func (export "f")))
                (component $inner
                    (import "inner:only/thing@1.0.0" (instance))
                    (core module $n)
                )
                (instance $e)
                (export "wasi:http/incoming-handler@0.2.6" (instance $e)))"#,
        )
        .unwrap();
        let world = World::read(&wasm).unwrap();
        assert_eq!(world.imports, ["wasi:io/poll@0.2.0"]);
        assert_eq!(world.exports, ["wasi:http/incoming-handler@0.2.6"]);
        let cut = &wasm[..wasm.len() - 40];
        assert!(World::read(cut).is_err());
    }
}
