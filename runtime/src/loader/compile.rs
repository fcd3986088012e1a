//! One handler file → a ready [`Handler`]: read, text to binary for `.wat`,
//! the disk cache or a compile, import and export checks, `InstancePre`.
//! A core module takes the path below; a component (told apart by its
//! header) is loaded by `component.rs`. Runs on a blocking thread.

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use wasmtime::{ExternType, Linker, Module, ModuleExport};

use super::disk_cache::{Artifact, CacheKey, DiskCache};
use crate::abi::{self, MODULE};
use crate::engine::Baseline;
use crate::error::{LoadError, error_text};
use crate::executor::{CoreHandler, Handler, Pool, Provenance, REUSABLE_SECTION, Tier};
use crate::host::{Ctx, WasiState};
use crate::stats::Stats;

/// What a compile needs besides the file.
pub(crate) struct Toolchain<'a> {
    /// The engine of core modules and WASI 0.2 components.
    pub(crate) engine: &'a wasmtime::Engine,
    pub(crate) linker: &'a Linker<Ctx>,
    /// The WASI 0.2 linker, for WASI 0.2 components.
    pub(crate) component_linker: &'a wasmtime::component::Linker<WasiState>,
    /// The engine of WASI 0.3 components.
    pub(crate) p3_engine: &'a wasmtime::Engine,
    /// The WASI 0.2 and 0.3 linker, for WASI 0.3 components.
    pub(crate) p3_linker: &'a wasmtime::component::Linker<WasiState>,
    pub(crate) disk_cache: Option<&'a DiskCache>,
    /// The baseline tier, where this load may use it: a first load of a
    /// large handler, never the optimising load that replaces it.
    pub(crate) baseline: Option<&'a Baseline>,
    pub(crate) stats: &'a Stats,
    pub(crate) max_module_size: u64,
    /// Builds `.rs` source handlers, if they are on.
    pub(crate) rust: Option<&'a super::RustBuilder>,
}

/// Reads, parses (for `.wat`), validates and compiles one handler file, or
/// loads its code from the disk cache. Logs the result once.
pub(crate) fn load(tools: &Toolchain<'_>, file: &Path) -> Result<Handler, LoadError> {
    let result = load_inner(tools, file);
    match &result {
        Ok(handler) => tracing::info!(
            file = %file.display(),
            ms = %format_args!("{:.1}", handler.provenance.load_ms),
            version = &handler.provenance.content_hash[..12],
            kind = handler.kind(),
            from = match (handler.provenance.tier, handler.provenance.from_disk_cache) {
                (Tier::Baseline, _) => "baseline compiler",
                (Tier::Optimized, true) => "disk cache",
                (Tier::Optimized, false) => "compiler",
            },
            "handler ready"
        ),
        // Logged once here, when it happens; requests only report the status.
        Err(e) => tracing::error!("handler failed to load: {e}"),
    }
    result
}

fn load_inner(tools: &Toolchain<'_>, file: &Path) -> Result<Handler, LoadError> {
    let started = Instant::now();
    let mut bytes = read_bounded(file, tools.max_module_size)?;
    if is_source(file) {
        let Some(builder) = tools.rust else {
            return Err(LoadError::Compile {
                path: file.to_path_buf(),
                message: "Rust source handlers are off on this server".to_owned(),
            });
        };
        bytes = builder.wasm(file, &bytes)?;
    }
    let wasm = binary(file, bytes)?;
    if wasmparser::Parser::is_component(&wasm) {
        return super::component::load(tools, file, &wasm, started);
    }
    let key = DiskCache::key(tools.engine, &wasm);
    let baseline = tools.baseline_for(&wasm);
    let (module, from_disk_cache, tier) =
        cached_or_compiled(tools, tools.engine, file, &key, baseline, |engine| {
            Module::new(engine, &wasm)
        })?;
    let linker = match (tier, baseline) {
        (Tier::Baseline, Some(baseline)) => baseline.linker(),
        _ => tools.linker,
    };
    check_imports(&module, file)?;
    let (handle, verbs) = entry_points(&module, file)?;
    let init = init_export(&module, file)?;
    let reusable = has_custom_section(&wasm, REUSABLE_SECTION);
    let pre = linker
        .instantiate_pre(&module)
        .map_err(|e| LoadError::Abi {
            path: file.to_path_buf(),
            message: error_text(&e),
        })?;
    let core = CoreHandler {
        pre,
        handle,
        verbs,
        memory: module.get_export_index("memory"),
        init,
        reusable,
        pool: Pool::default(),
    };
    Ok(Handler {
        executor: Arc::new(core),
        provenance: Provenance {
            content_hash: key.to_string(),
            from_disk_cache,
            tier,
            load_ms: started.elapsed().as_secs_f64() * 1e3,
            loaded_at: SystemTime::now(),
        },
    })
}

/// Whether the disk cache holds the code `file`'s current bytes compile to,
/// so that loading it would compile nothing. Reads and, for `.wat`, parses
/// the file to find its key, and looks the entry up without reading it.
/// `false` without a disk cache, for a source handler (a build decides), and
/// for a file that cannot be read or parsed (its load says why).
pub(crate) fn in_disk_cache(tools: &Toolchain<'_>, file: &Path) -> bool {
    let Some(cache) = tools.disk_cache else {
        return false;
    };
    if is_source(file) {
        return false;
    }
    let Ok(wasm) = read_bounded(file, tools.max_module_size).and_then(|b| binary(file, b)) else {
        return false;
    };
    let engine = if wasmparser::Parser::is_component(&wasm) {
        match super::component::engine_for(tools, &wasm) {
            Some(engine) => engine,
            None => return false,
        }
    } else {
        tools.engine
    };
    cache.contains(&DiskCache::key(engine, &wasm))
}

/// A `.rs` source handler, built to wasm before it loads.
fn is_source(file: &Path) -> bool {
    file.extension().is_some_and(|e| e == "rs")
}

/// The binary module or component in `bytes`: as they are, or parsed from
/// WebAssembly text for a `.wat` file that is not binary already.
fn binary(file: &Path, bytes: Vec<u8>) -> Result<Vec<u8>, LoadError> {
    let is_text = file.extension().is_some_and(|e| e == "wat") && !bytes.starts_with(b"\0asm");
    if is_text {
        wat_to_wasm(file, &bytes)
    } else if bytes.starts_with(b"\0asm") {
        Ok(bytes)
    } else {
        Err(LoadError::Compile {
            path: file.to_path_buf(),
            message: not_wasm(&bytes),
        })
    }
}

/// The file's bytes, refusing one over `max` bytes. Reads at most `max + 1`
/// bytes, so a file that grows after the size check cannot get past it.
fn read_bounded(file: &Path, max: u64) -> Result<Vec<u8>, LoadError> {
    use std::io::Read;
    let read_error = |e: std::io::Error| LoadError::Read {
        path: file.to_path_buf(),
        reason: e.to_string(),
    };
    let too_large = |size: u64| LoadError::Read {
        path: file.to_path_buf(),
        reason: format!(
            "it is {size} bytes, more than the {max}-byte limit for a handler (--max-module-size); \
             shrink it (a release build, `wasm-opt`) or raise the limit"
        ),
    };
    // Never a FIFO swapped in for the handler: its open would wait for a
    // writer, holding a blocking thread for ever.
    let (handle, meta) = crate::regular_file::open(file).map_err(|e| LoadError::Read {
        path: file.to_path_buf(),
        reason: e.to_string(),
    })?;
    let size = meta.len();
    if size > max {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    handle
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

impl Toolchain<'_> {
    /// The baseline tier, if this load may use it for `wasm`.
    pub(super) fn baseline_for(&self, wasm: &[u8]) -> Option<&Baseline> {
        self.baseline
            .filter(|baseline| baseline.applies_to(wasm.len()))
    }
}

/// The compiled code for `key` from the disk cache, or `compile`d now: by
/// `baseline` if given (code that is served but never cached), else by
/// `engine` (and put in the cache). With whether it came from the cache,
/// and which tier made it. Counts the lookup and the compile in the stats.
pub(super) fn cached_or_compiled<A: Artifact>(
    tools: &Toolchain<'_>,
    engine: &wasmtime::Engine,
    file: &Path,
    key: &CacheKey,
    baseline: Option<&Baseline>,
    compile: impl FnOnce(&wasmtime::Engine) -> wasmtime::Result<A>,
) -> Result<(A, bool, Tier), LoadError> {
    let cached = tools
        .disk_cache
        .and_then(|cache| cache.get::<A>(engine, key));
    if tools.disk_cache.is_some() {
        tools.stats.disk_cache_lookup(cached.is_some());
    }
    if let Some(cached) = cached {
        return Ok((cached, true, Tier::Optimized));
    }
    let (compiler, tier) = match baseline {
        Some(baseline) => (baseline.engine(), Tier::Baseline),
        None => (engine, Tier::Optimized),
    };
    tools.stats.compile_started();
    let compiling = Instant::now();
    let compiled = compile(compiler);
    tools.stats.compile_finished(compiling.elapsed());
    let compiled = compiled.map_err(|e| LoadError::Compile {
        path: file.to_path_buf(),
        message: error_text(&e),
    })?;
    if tier == Tier::Optimized
        && let Some(cache) = tools.disk_cache
        && let Err(e) = cache.put(key, &compiled, file)
    {
        // The handler still serves; only the next restart compiles.
        tracing::warn!(error = %e, "cannot write the compiled handler to the disk cache");
    }
    Ok((compiled, false, tier))
}

/// Why `bytes` (a `.wasm` file without the `\0asm` magic) is not a module,
/// in one line that shows how it starts.
fn not_wasm(bytes: &[u8]) -> String {
    let start = String::from_utf8_lossy(&bytes[..bytes.len().min(12)]).into_owned();
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(64)]);
    let trimmed = head.trim_start();
    if trimmed.starts_with("(module")
        || trimmed.starts_with("(component")
        || trimmed.starts_with(";;")
    {
        return "it is WebAssembly text, not binary: name the file `.wat`".to_owned();
    }
    if bytes.is_empty() {
        return "the file is empty".to_owned();
    }
    format!(
        "it starts with {start:?}, not with the bytes \\0asm that begin every binary module; \
         a text module must end in `.wat`"
    )
}

/// Text format to binary, with the error's line and column.
fn wat_to_wasm(file: &Path, bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let (line, column) = line_col(bytes, e.valid_up_to());
        LoadError::Syntax {
            path: file.to_path_buf(),
            line,
            column,
            message: "the file is not UTF-8 text".to_owned(),
        }
    })?;
    let syntax = |e: wast::Error| {
        let (line, column) = e.span().linecol_in(text);
        // The parser's message does not say what it found: the token there.
        let at = text.get(e.span().offset()..).unwrap_or_default();
        let token: String = at
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != '(' && *c != ')')
            .take(40)
            .collect();
        let mut message = e.message();
        if !token.is_empty() && !message.contains(&token) {
            message = format!("{message}: `{token}`");
        }
        LoadError::Syntax {
            path: file.to_path_buf(),
            line: line + 1,
            column: column + 1,
            message,
        }
    };
    let buffer = wast::parser::ParseBuffer::new(text).map_err(syntax)?;
    let mut wat = wast::parser::parse::<wast::Wat>(&buffer).map_err(syntax)?;
    wat.encode().map_err(syntax)
}

/// 1-based line and column of byte `offset`.
fn line_col(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (line, column)
}

/// Every import must be one of the ABI table's, with its signature; say
/// which one is not, what wasmlet provides, and what to do.
fn check_imports(module: &Module, file: &Path) -> Result<(), LoadError> {
    let refuse = |message: String| LoadError::Abi {
        path: file.to_path_buf(),
        message,
    };
    for import in module.imports() {
        let name = import.name();
        if import.module() != MODULE {
            return Err(refuse(format!(
                "imports `{}::{name}`; wasmlet's imports are all in module `{MODULE}` \
                 (docs/abi.md lists them)",
                import.module()
            )));
        }
        let Some(known) = abi::find(name) else {
            let hint = match abi::nearest(name) {
                Some(near) => format!("did you mean `{near}`? "),
                None => String::new(),
            };
            return Err(refuse(format!(
                "imports `{MODULE}::{name}`, which wasmlet does not provide; {hint}\
                 the imports a handler can use are listed in docs/abi.md"
            )));
        };
        let declared = match import.ty() {
            ExternType::Func(ty) => {
                let types = |types: &mut dyn Iterator<Item = wasmtime::ValType>| {
                    types
                        .map(|ty| match ty {
                            wasmtime::ValType::I32 => Some(abi::Type::I32),
                            wasmtime::ValType::I64 => Some(abi::Type::I64),
                            _ => None,
                        })
                        .collect::<Option<Vec<_>>>()
                };
                let params = types(&mut ty.params());
                let results = types(&mut ty.results());
                match (params, results) {
                    (Some(params), Some(results)) => {
                        if params == known.params && results == known.results {
                            continue;
                        }
                        let mut text = String::new();
                        // Writing to a String cannot fail.
                        let _ = abi::write_func(&mut text, &params, &results);
                        text
                    }
                    _ => ty.to_string(),
                }
            }
            other => format!("{other:?}"),
        };
        return Err(refuse(format!(
            "imports `{MODULE}::{name}` as {declared}, but wasmlet provides it as {}; \
             change the import's type to match (docs/abi.md)",
            known.wat()
        )));
    }
    Ok(())
}

type EntryPoints = (Option<ModuleExport>, Vec<(String, ModuleExport)>);

/// `handle` and `handle_<verb>` exports, each checked to be `[] -> []`; at
/// least one must be there.
fn entry_points(module: &Module, file: &Path) -> Result<EntryPoints, LoadError> {
    let mut handle = None;
    let mut verbs = Vec::new();
    for export in module.exports() {
        let name = export.name();
        let verb = match name.strip_prefix("handle_") {
            Some(verb) if !verb.is_empty() && verb.bytes().all(|b| b.is_ascii_lowercase()) => {
                Some(verb.to_ascii_uppercase())
            }
            _ if name == "handle" => None,
            _ => continue,
        };
        let ExternType::Func(ty) = export.ty() else {
            continue;
        };
        if ty.params().len() != 0 || ty.results().len() != 0 {
            return Err(LoadError::Abi {
                path: file.to_path_buf(),
                message: format!(
                    "export `{name}` must be a function of type [] -> [], but it is {ty}"
                ),
            });
        }
        let index = module
            .get_export_index(name)
            .expect("an export the module lists has an index");
        match verb {
            Some(verb) => verbs.push((verb, index)),
            None => handle = Some(index),
        }
    }
    if handle.is_none() && verbs.is_empty() {
        // It could answer nothing but 405: a build that lost its exports
        // must not replace a version that serves.
        return Err(LoadError::Abi {
            path: file.to_path_buf(),
            message: "exports no `handle` or `handle_<verb>` function, so it can answer no \
                      request; export `handle` (every verb) or `handle_get`, `handle_post`, …"
                .to_owned(),
        });
    }
    verbs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((handle, verbs))
}

/// The `init` export, if any, checked to be `[] -> []`.
fn init_export(module: &Module, file: &Path) -> Result<Option<ModuleExport>, LoadError> {
    let Some(export) = module.exports().find(|e| e.name() == "init") else {
        return Ok(None);
    };
    match export.ty() {
        ExternType::Func(ty) if ty.params().len() == 0 && ty.results().len() == 0 => {
            Ok(module.get_export_index("init"))
        }
        ty => Err(LoadError::Abi {
            path: file.to_path_buf(),
            message: format!(
                "export `init` must be a function of type [] -> [] (it runs once per instance), but it is {ty:?}"
            ),
        }),
    }
}

/// Whether the module has a custom section called `name`. A module the
/// validator will reject is the compile's to report, so a parse error here
/// is just "no".
fn has_custom_section(wasm: &[u8], name: &str) -> bool {
    wasmparser::Parser::new(0)
        .parse_all(wasm)
        .map_while(Result::ok)
        .any(|payload| {
            matches!(payload, wasmparser::Payload::CustomSection(section) if section.name() == name)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_binary_webassembly_says_what_it_is_in_one_line() {
        let text = not_wasm(b"this is a text file\nwith two lines\n");
        assert_eq!(
            text,
            "it starts with \"this is a te\", not with the bytes \\0asm that begin every \
             binary module; a text module must end in `.wat`"
        );
        assert!(not_wasm(b"  (module)").contains("name the file `.wat`"));
        assert_eq!(not_wasm(b""), "the file is empty");
    }

    #[test]
    fn a_wat_syntax_error_names_the_token_it_found() {
        let source = "(module\n  (func (export \"handle\")\n    i32.cnst 1\n    drop))";
        let error = wat_to_wasm(Path::new("oops.wat"), source.as_bytes()).unwrap_err();
        let text = error.to_string();
        assert!(text.starts_with("oops.wat:3:5: "), "{text}");
        assert!(text.contains("`i32.cnst`"), "{text}");
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn the_reusable_section_is_found_by_name() {
        let marked = wat::parse_str(r#"(module (@custom "wasmlet.reusable" "1"))"#).unwrap();
        let other = wat::parse_str(r#"(module (@custom "something.else" "1"))"#).unwrap();
        assert!(has_custom_section(&marked, REUSABLE_SECTION));
        assert!(!has_custom_section(&other, REUSABLE_SECTION));
        assert!(!has_custom_section(b"not wasm", REUSABLE_SECTION));
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big.wasm");
        std::fs::write(&file, vec![0u8; 2048]).unwrap();
        let err = read_bounded(&file, 1024).unwrap_err().to_string();
        assert!(
            err.contains("2048 bytes") && err.contains("--max-module-size"),
            "{err}"
        );
        assert_eq!(read_bounded(&file, 2048).unwrap().len(), 2048);
    }

    #[test]
    fn line_and_column_are_one_based() {
        let text = b"ab\ncde\nf";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 4), (2, 2));
        assert_eq!(line_col(text, 7), (3, 1));
    }

    #[test]
    fn wat_syntax_errors_carry_file_line_and_column() {
        let err = wat_to_wasm(
            Path::new("bad.wat"),
            b"(module\n  (func $f (result i32)\n    i32.const nope))",
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("bad.wat:3:15: "), "{text}");
    }
}
