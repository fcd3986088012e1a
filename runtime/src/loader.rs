//! The handler cache: a file becomes a ready-to-instantiate [`Handler`] on its
//! first request, once, off the async worker threads.
//!
//! Each file has a slot keyed by the file's version (size, mtime, inode). The
//! first request for a version starts one compile task and every request for
//! that version, concurrent or later, awaits the same shared result: the same
//! bytes never compile twice, and a failed compile is remembered until the
//! file changes instead of being retried on every request. A request whose
//! file has a new version replaces the slot, so a slow compile of an old
//! version can never overwrite a newer one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use http::Method;
use tokio::sync::Semaphore;
use wasmtime::{ExternType, InstancePre, Linker, Module, ModuleExport};

use crate::abi::MODULE;
use crate::engine::WasmEngine;
use crate::error::LoadError;
use crate::host::{self, Ctx};
use crate::stats::Stats;

/// A compiled handler, ready to instantiate once per request.
pub struct Handler {
    /// Imports resolved against the linker once, so a request only allocates
    /// and initialises an instance.
    pub(crate) pre: InstancePre<Ctx>,
    /// `handle`, if exported.
    handle: Option<ModuleExport>,
    /// `handle_<verb>` exports, verb in upper case.
    verbs: Vec<(String, ModuleExport)>,
    /// The `memory` export, if any.
    pub(crate) memory: Option<ModuleExport>,
}

impl Handler {
    /// The export that serves `method`: `handle_<verb>` first, then `handle`.
    pub(crate) fn entry_point(&self, method: &Method) -> Option<ModuleExport> {
        self.verbs
            .iter()
            .find(|(verb, _)| verb == method.as_str())
            .map(|(_, export)| *export)
            .or(self.handle)
    }

    /// The `Allow` header value for a `405`: the verbs the module exports.
    pub(crate) fn allow(&self) -> String {
        let verbs: Vec<&str> = self.verbs.iter().map(|(v, _)| v.as_str()).collect();
        verbs.join(", ")
    }
}

type LoadResult = Result<Arc<Handler>, LoadError>;

/// The identity of one version of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Version {
    len: u64,
    modified: Option<SystemTime>,
    inode: u64,
}

impl Version {
    fn of(meta: &std::fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            len: meta.len(),
            modified: meta.modified().ok(),
            inode: meta.ino(),
        }
    }
}

struct Slot {
    version: Version,
    result: Shared<BoxFuture<'static, LoadResult>>,
}

/// Compiles handlers on demand and caches them in memory.
pub struct Loader {
    engine: Arc<WasmEngine>,
    slots: Mutex<HashMap<PathBuf, Arc<Slot>>>,
    /// Compiles are CPU-bound: more at once than cores only adds latency to
    /// all of them and memory to the process.
    compile_permits: Arc<Semaphore>,
    stats: Arc<Stats>,
}

impl Loader {
    /// A loader that compiles with `engine` and counts compiles in `stats`.
    pub fn new(engine: Arc<WasmEngine>, stats: Arc<Stats>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            engine,
            slots: Mutex::new(HashMap::new()),
            compile_permits: Arc::new(Semaphore::new(cores)),
            stats,
        }
    }

    /// The ready handler for `file`, compiling it if this version has not been
    /// compiled yet.
    pub async fn get(&self, file: &Path) -> LoadResult {
        let meta = std::fs::metadata(file).map_err(|e| LoadError::Read {
            path: file.to_path_buf(),
            reason: e.to_string(),
        })?;
        let version = Version::of(&meta);
        let slot = {
            let mut slots = self.slots.lock().unwrap();
            match slots.get(file) {
                Some(slot) if slot.version == version => slot.clone(),
                _ => {
                    let slot = Arc::new(Slot {
                        version,
                        result: self.spawn_compile(file.to_path_buf()),
                    });
                    slots.insert(file.to_path_buf(), slot.clone());
                    slot
                }
            }
        };
        match slot.result.peek() {
            Some(ready) => ready.clone(),
            None => slot.result.clone().await,
        }
    }

    /// Starts the compile as its own task, so it finishes (and is cached) even
    /// if every request waiting on it is cancelled.
    fn spawn_compile(&self, file: PathBuf) -> Shared<BoxFuture<'static, LoadResult>> {
        let engine = self.engine.clone();
        let permits = self.compile_permits.clone();
        let stats = self.stats.clone();
        let task_file = file.clone();
        let task = tokio::spawn(async move {
            let _permit = permits.acquire_owned().await;
            stats.compile_started();
            tokio::task::spawn_blocking(move || {
                compile(engine.engine(), engine.linker(), &task_file).map(Arc::new)
            })
            .await
        });
        async move {
            match task.await {
                Ok(Ok(result)) => result,
                Ok(Err(join)) | Err(join) => Err(LoadError::Compile {
                    path: file,
                    message: format!("the compiler failed: {join}"),
                }),
            }
        }
        .boxed()
        .shared()
    }
}

/// Reads, parses (for `.wat`), validates and compiles one handler file. Runs
/// on a blocking thread.
fn compile(
    engine: &wasmtime::Engine,
    linker: &Linker<Ctx>,
    file: &Path,
) -> Result<Handler, LoadError> {
    let started = Instant::now();
    let result = compile_inner(engine, linker, file);
    match &result {
        Ok(_) => tracing::info!(
            file = %file.display(),
            ms = %format_args!("{:.1}", started.elapsed().as_secs_f64() * 1e3),
            "compiled handler"
        ),
        // Logged once here, when it happens; requests only report the status.
        Err(e) => tracing::error!("handler failed to load: {e}"),
    }
    result
}

fn compile_inner(
    engine: &wasmtime::Engine,
    linker: &Linker<Ctx>,
    file: &Path,
) -> Result<Handler, LoadError> {
    let bytes = std::fs::read(file).map_err(|e| LoadError::Read {
        path: file.to_path_buf(),
        reason: e.to_string(),
    })?;
    let is_text = file.extension().is_some_and(|e| e == "wat") && !bytes.starts_with(b"\0asm");
    let wasm = if is_text {
        wat_to_wasm(file, &bytes)?
    } else {
        bytes
    };
    let module = Module::new(engine, &wasm).map_err(|e| LoadError::Compile {
        path: file.to_path_buf(),
        message: error_text(&e),
    })?;
    check_imports(&module, file)?;
    let (handle, verbs) = entry_points(&module, file)?;
    let pre = linker
        .instantiate_pre(&module)
        .map_err(|e| LoadError::Abi {
            path: file.to_path_buf(),
            message: error_text(&e),
        })?;
    Ok(Handler {
        pre,
        handle,
        verbs,
        memory: module.get_export_index("memory"),
    })
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
        LoadError::Syntax {
            path: file.to_path_buf(),
            line: line + 1,
            column: column + 1,
            message: e.message(),
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

/// Every import must be one the host defines; say which one is not.
/// (Types are checked by `instantiate_pre`, whose message names the import.)
fn check_imports(module: &Module, file: &Path) -> Result<(), LoadError> {
    for import in module.imports() {
        let known = import.module() == MODULE && host::IMPORTS.contains(&import.name());
        if !known {
            return Err(LoadError::Abi {
                path: file.to_path_buf(),
                message: format!(
                    "imports `{}::{}`, which wasmlet does not provide; \
                     the imports a handler can use are listed in docs/abi.md",
                    import.module(),
                    import.name()
                ),
            });
        }
    }
    Ok(())
}

type EntryPoints = (Option<ModuleExport>, Vec<(String, ModuleExport)>);

/// `handle` and `handle_<verb>` exports, each checked to be `[] -> []`.
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
    verbs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok((handle, verbs))
}

/// A wasmtime error as one line: the message and its causes.
pub(crate) fn error_text(e: &wasmtime::Error) -> String {
    format!("{e:#}")
}

#[cfg(test)]
mod tests {
    use super::*;

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
