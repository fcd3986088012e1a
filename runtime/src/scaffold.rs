//! `wasmlet new NAME`: a working hello handler to start from, either as a
//! WebAssembly text file (`NAME.wat`, served as it is) or as a Rust crate
//! (`NAME/`) built with the SDK.
//!
//! The Rust crate depends on `wasmlet-sdk` by path when this binary was built
//! from a source tree that still holds the SDK (a checkout, or the source
//! `cargo install --git` keeps): that SDK is the exact one matching this
//! runtime, and building needs no registry. Otherwise it depends on the
//! crates.io release of the same version, which is what a user with an
//! installed binary and no source has. The generated `Cargo.toml` shows the
//! other choice in a comment.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What [`scaffold`] creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaffoldKind {
    /// `NAME.wat`: a handler in WebAssembly text, served without a build.
    Wat,
    /// `NAME/`: a Rust crate using `wasmlet-sdk`, built to `NAME.wasm`.
    Rust,
}

/// Why [`scaffold`] created nothing.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name cannot be a handler's URL path segment (or a crate name).
    #[error("`{name}` cannot name a handler: {reason}")]
    InvalidName {
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Something is already where the handler would go; nothing is
    /// overwritten.
    #[error("{} already exists", path.display())]
    Exists {
        /// The file or directory in the way.
        path: PathBuf,
    },
    /// Writing failed (the directory is missing, or not writable).
    #[error("cannot create {}: {source}", path.display())]
    Io {
        /// What was being created.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

/// Creates a hello handler called `name` in `dir`, which must exist, and
/// returns the files it wrote.
///
/// - [`ScaffoldKind::Wat`] writes `dir/NAME.wat`; dropped in a web root it
///   serves `GET /NAME` with `hello, world`.
/// - [`ScaffoldKind::Rust`] writes the crate `dir/NAME/` (`Cargo.toml`,
///   `src/lib.rs` with a unit test, `README.md`, `.gitignore`); its README
///   says how to build it.
///
/// `name` is lower-case letters, digits, `-` and `_`, starting with a letter
/// (a URL segment and a crate name alike); a Rust crate also cannot be
/// called like a Rust keyword or a built-in crate.
pub fn scaffold(dir: &Path, name: &str, kind: ScaffoldKind) -> Result<Vec<PathBuf>, ScaffoldError> {
    let sdk = local_sdk();
    scaffold_with(dir, name, kind, sdk.as_deref())
}

/// [`scaffold`], with the SDK source directory given (`None`: use the
/// crates.io release), so tests can take both ways.
fn scaffold_with(
    dir: &Path,
    name: &str,
    kind: ScaffoldKind,
    sdk: Option<&Path>,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    check_name(name, kind).map_err(|reason| ScaffoldError::InvalidName {
        name: name.to_owned(),
        reason,
    })?;
    match kind {
        ScaffoldKind::Wat => scaffold_wat(dir, name),
        ScaffoldKind::Rust => scaffold_rust(dir, name, sdk),
    }
}

/// Names that cannot be a Rust package: keywords (cargo refuses them) and
/// the crates every Rust program can already name.
const RUST_RESERVED: &str = "abstract alloc as async await become box break const continue core \
    crate do dyn else enum extern false final fn for gen if impl in let loop macro match mod move \
    mut override priv proc_macro pub ref return self static std struct super test trait true try \
    type typeof unsafe unsized use virtual where while yield";

/// The longest name accepted: a URL segment, not a sentence.
const MAX_NAME: usize = 64;

fn check_name(name: &str, kind: ScaffoldKind) -> Result<(), &'static str> {
    let Some(first) = name.chars().next() else {
        return Err("it is empty");
    };
    if name.len() > MAX_NAME {
        return Err("it is longer than 64 characters");
    }
    if !first.is_ascii_lowercase()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
    {
        return Err("use lower-case letters, digits, `-` and `_`, starting with a letter");
    }
    if kind == ScaffoldKind::Rust {
        let crate_name = name.replace('-', "_");
        if RUST_RESERVED
            .split_whitespace()
            .any(|word| word == crate_name)
        {
            return Err("a Rust crate cannot be called like a keyword or a built-in crate");
        }
        if crate_name.starts_with("wasmlet_sdk") {
            return Err("a crate cannot share the name of the SDK it depends on");
        }
    }
    Ok(())
}

fn scaffold_wat(dir: &Path, name: &str) -> Result<Vec<PathBuf>, ScaffoldError> {
    // The runtime prefers `NAME.wasm` to `NAME.wat`: a new `.wat` next to one
    // would never run.
    let compiled = dir.join(format!("{name}.wasm"));
    if compiled.exists() {
        return Err(ScaffoldError::Exists { path: compiled });
    }
    let path = dir.join(format!("{name}.wat"));
    write_new(&path, &WAT_HELLO.replace("NAME", name))?;
    Ok(vec![path])
}

fn scaffold_rust(
    dir: &Path,
    name: &str,
    sdk: Option<&Path>,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    let root = dir.join(name);
    fs::create_dir(&root).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => ScaffoldError::Exists { path: root.clone() },
        _ => ScaffoldError::Io {
            path: root.clone(),
            source,
        },
    })?;
    let files = [
        ("Cargo.toml", cargo_toml(name, sdk)),
        ("src/lib.rs", RUST_HELLO.replace("NAME", name)),
        ("README.md", readme(name)),
        (".gitignore", "/target\n".to_owned()),
    ];
    let written = files
        .iter()
        .map(|(file, contents)| {
            let path = root.join(file);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(|source| ScaffoldError::Io {
                    path: parent.to_owned(),
                    source,
                })?;
            }
            write_new(&path, contents)?;
            Ok(path)
        })
        .collect::<Result<Vec<_>, ScaffoldError>>();
    if written.is_err() {
        // The directory is ours (`create_dir` made it): leave nothing half
        // made behind.
        let _ = fs::remove_dir_all(&root);
    }
    written
}

/// Writes a file that must not exist yet; `create_new` makes the check and
/// the creation one step.
fn write_new(path: &Path, contents: &str) -> Result<(), ScaffoldError> {
    let io_error = |source: io::Error| match source.kind() {
        io::ErrorKind::AlreadyExists => ScaffoldError::Exists {
            path: path.to_owned(),
        },
        _ => ScaffoldError::Io {
            path: path.to_owned(),
            source,
        },
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_error)?;
    file.write_all(contents.as_bytes()).map_err(io_error)
}

/// The SDK's source directory, if this binary was built from a tree that
/// still has it.
fn local_sdk() -> Option<PathBuf> {
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    sdk.join("Cargo.toml")
        .is_file()
        .then(|| sdk.canonicalize().ok())
        .flatten()
}

/// The `wasmlet-sdk` dependency line, with the other choice in a comment.
fn sdk_dependency(sdk: Option<&Path>) -> String {
    let version = env!("CARGO_PKG_VERSION");
    match sdk {
        Some(path) => format!(
            "# The SDK from the source tree this wasmlet was built from; without it,\n\
             # use the release: wasmlet-sdk = \"{version}\"\n\
             wasmlet-sdk = {{ path = {} }}\n",
            toml_string(&path.to_string_lossy()),
        ),
        None => format!(
            "# The SDK release matching this wasmlet; for a source checkout instead:\n\
             # wasmlet-sdk = {{ path = \"/path/to/wasmlet/sdk\" }}\n\
             wasmlet-sdk = \"{version}\"\n"
        ),
    }
}

/// `text` as a TOML basic string: quoted, with `"`, `\` and control
/// characters escaped.
fn toml_string(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            c if c.is_control() => quoted.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn cargo_toml(name: &str, sdk: Option<&Path>) -> String {
    CARGO_TOML
        .replace("NAME", name)
        .replace("SDK_DEPENDENCY\n", &sdk_dependency(sdk))
}

fn readme(name: &str) -> String {
    README
        .replace("NAME", name)
        .replace("FILE", &name.replace('-', "_"))
}

const WAT_HELLO: &str = r#";; NAME: a wasmlet handler in WebAssembly text. In a web root it serves
;; GET /NAME with "hello, world"; the runtime compiles it on the first request
;; and again whenever the file changes. The imports are documented in
;; docs/abi.md of the wasmlet repository.
(module
  (import "wasmlet" "resp_header" (func $resp_header (param i32 i32 i32 i32) (result i32)))
  (import "wasmlet" "resp_write" (func $resp_write (param i32 i32) (result i32)))

  (memory (export "memory") 1)
  (data (i32.const 0) "content-type")               ;; 12 bytes
  (data (i32.const 16) "text/plain; charset=utf-8") ;; 25 bytes
  (data (i32.const 48) "hello, world\n")            ;; 13 bytes

  ;; `handle_get` serves GET only; export `handle` to serve every verb.
  (func (export "handle_get")
    (drop (call $resp_header (i32.const 0) (i32.const 12) (i32.const 16) (i32.const 25)))
    ;; The first write sends the head; returning ends the response.
    (drop (call $resp_write (i32.const 48) (i32.const 13)))))
"#;

const CARGO_TOML: &str = r#"[package]
name = "NAME"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
# cdylib: the .wasm module the runtime loads; rlib: lets `cargo test` run the
# handler natively, on the SDK's fake host.
crate-type = ["cdylib", "rlib"]

[dependencies]
SDK_DEPENDENCY

# Small modules load and compile faster, and a handler waits on I/O far more
# than it computes. A panic in a handler traps, so the unwinding machinery is
# dead weight (tests ignore this and still unwind).
[profile.release]
opt-level = "z"
lto = true
codegen-units = 1
panic = "abort"
strip = true

# A crate of its own, even when created inside another Cargo workspace.
[workspace]
"#;

const RUST_HELLO: &str = r#"//! The `NAME` handler: `GET /NAME?name=ann` answers `hello, ann`.

use wasmlet_sdk::{Request, handler};

#[handler(get)]
fn hello(req: Request) -> String {
    let name = req.query("name");
    format!("hello, {}\n", name.as_deref().unwrap_or("world"))
}

#[cfg(test)]
mod tests {
    use super::handle_get;
    use wasmlet_sdk::testing::TestRequest;

    #[test]
    fn greets_the_name_from_the_query() {
        let response = TestRequest::get("/NAME?name=ann").call(handle_get);
        assert_eq!(response.text(), "hello, ann\n");
    }

    #[test]
    fn greets_the_world_by_default() {
        let response = TestRequest::get("/NAME").call(handle_get);
        assert_eq!(response.text(), "hello, world\n");
    }
}
"#;

const README: &str = r#"# NAME

A wasmlet handler in Rust. Test it natively, then build it for wasm32 and copy
it into the web root as `NAME.wasm`:

    cargo test
    cargo build --release --target wasm32-unknown-unknown
    cp target/wasm32-unknown-unknown/release/FILE.wasm /path/to/webroot/NAME.wasm

The target needs installing once: `rustup target add wasm32-unknown-unknown`.
"#;

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [ScaffoldKind; 2] = [ScaffoldKind::Wat, ScaffoldKind::Rust];

    #[test]
    fn names_that_work_as_url_segments_are_accepted() {
        for name in ["hello", "my-handler", "a_b1", "index", "x"] {
            for kind in KINDS {
                assert_eq!(check_name(name, kind), Ok(()), "{name} as {kind:?}");
            }
        }
    }

    #[test]
    fn names_that_are_not_url_segments_are_rejected() {
        let long = "a".repeat(MAX_NAME + 1);
        let names = [
            "",
            "1st",
            "-x",
            "_x",
            "My",
            "a b",
            "a/b",
            "../x",
            "..",
            ".hidden",
            "é",
            "a.wat",
            "a%20",
            long.as_str(),
        ];
        for name in names {
            for kind in KINDS {
                assert!(check_name(name, kind).is_err(), "{name:?} as {kind:?}");
            }
        }
    }

    #[test]
    fn rust_reserved_names_are_rejected_only_for_a_crate() {
        for name in [
            "fn",
            "self",
            "std",
            "test",
            "async",
            "proc-macro",
            "wasmlet-sdk",
        ] {
            assert!(check_name(name, ScaffoldKind::Rust).is_err(), "{name}");
            assert_eq!(check_name(name, ScaffoldKind::Wat), Ok(()), "{name}");
        }
    }

    #[test]
    fn an_invalid_name_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        for kind in KINDS {
            let error = scaffold(dir.path(), "../escape", kind).unwrap_err();
            assert!(
                matches!(error, ScaffoldError::InvalidName { .. }),
                "{error}"
            );
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(!dir.path().parent().unwrap().join("escape.wat").exists());
    }

    #[test]
    fn wat_creates_one_file_named_after_the_handler() {
        let dir = tempfile::tempdir().unwrap();
        let files = scaffold(dir.path(), "greet", ScaffoldKind::Wat).unwrap();
        assert_eq!(files, [dir.path().join("greet.wat")]);
        let text = fs::read_to_string(&files[0]).unwrap();
        assert!(text.starts_with(";; greet: "), "{text}");
    }

    /// What the WAT handler asked the host to send.
    #[derive(Default)]
    struct Sent {
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    fn guest_bytes(caller: &mut wasmtime::Caller<'_, Sent>, ptr: i32, len: i32) -> Vec<u8> {
        let memory = caller
            .get_export("memory")
            .and_then(wasmtime::Extern::into_memory)
            .unwrap();
        let start = usize::try_from(ptr).unwrap();
        let end = start + usize::try_from(len).unwrap();
        memory.data(&*caller)[start..end].to_vec()
    }

    #[test]
    fn the_wat_handler_answers_hello_world() {
        let dir = tempfile::tempdir().unwrap();
        let files = scaffold(dir.path(), "greet", ScaffoldKind::Wat).unwrap();
        let binary = wat::parse_file(&files[0]).unwrap();

        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, binary).unwrap();
        let mut linker = wasmtime::Linker::<Sent>::new(&engine);
        linker
            .func_wrap(
                "wasmlet",
                "resp_header",
                |mut caller: wasmtime::Caller<'_, Sent>,
                 name: i32,
                 name_len: i32,
                 value: i32,
                 value_len: i32| {
                    let name = guest_bytes(&mut caller, name, name_len);
                    let value = guest_bytes(&mut caller, value, value_len);
                    caller.data_mut().headers.push((
                        String::from_utf8(name).unwrap(),
                        String::from_utf8(value).unwrap(),
                    ));
                    0
                },
            )
            .unwrap();
        linker
            .func_wrap(
                "wasmlet",
                "resp_write",
                |mut caller: wasmtime::Caller<'_, Sent>, buf: i32, len: i32| {
                    let bytes = guest_bytes(&mut caller, buf, len);
                    caller.data_mut().body.extend(bytes);
                    0
                },
            )
            .unwrap();
        let mut store = wasmtime::Store::new(&engine, Sent::default());
        let instance = linker.instantiate(&mut store, &module).unwrap();
        instance
            .get_typed_func::<(), ()>(&mut store, "handle_get")
            .unwrap()
            .call(&mut store, ())
            .unwrap();

        let sent = store.data();
        assert_eq!(
            sent.headers,
            [(
                "content-type".to_owned(),
                "text/plain; charset=utf-8".to_owned()
            )]
        );
        assert_eq!(sent.body, b"hello, world\n");
    }

    #[test]
    fn wat_refuses_to_overwrite_or_to_hide_behind_a_wasm_file() {
        for existing in ["greet.wat", "greet.wasm"] {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join(existing), "keep me").unwrap();
            let error = scaffold(dir.path(), "greet", ScaffoldKind::Wat).unwrap_err();
            assert!(
                matches!(&error, ScaffoldError::Exists { path } if path.ends_with(existing)),
                "{error}"
            );
            assert_eq!(
                fs::read_to_string(dir.path().join(existing)).unwrap(),
                "keep me"
            );
        }
    }

    #[test]
    fn rust_creates_a_crate_named_after_the_handler() {
        let dir = tempfile::tempdir().unwrap();
        let files = scaffold_with(dir.path(), "my-greeter", ScaffoldKind::Rust, None).unwrap();
        let root = dir.path().join("my-greeter");
        let expected: Vec<PathBuf> = ["Cargo.toml", "src/lib.rs", "README.md", ".gitignore"]
            .iter()
            .map(|file| root.join(file))
            .collect();
        assert_eq!(files, expected);

        let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"my-greeter\"\n"), "{manifest}");
        assert!(
            manifest.contains("crate-type = [\"cdylib\", \"rlib\"]"),
            "{manifest}"
        );
        assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
        assert!(!manifest.contains("SDK_DEPENDENCY"), "{manifest}");

        let source = fs::read_to_string(root.join("src/lib.rs")).unwrap();
        assert!(source.contains("#[handler(get)]"), "{source}");
        assert!(
            source.contains("TestRequest::get(\"/my-greeter?name=ann\")"),
            "{source}"
        );

        let readme = fs::read_to_string(root.join("README.md")).unwrap();
        assert!(
            readme.contains("cargo build --release --target wasm32-unknown-unknown"),
            "{readme}"
        );
        assert!(
            readme.contains("release/my_greeter.wasm /path/to/webroot/my-greeter.wasm"),
            "{readme}"
        );
    }

    #[test]
    fn the_sdk_comes_by_path_from_a_source_tree_or_else_from_the_release() {
        let version = env!("CARGO_PKG_VERSION");
        let released = sdk_dependency(None);
        assert!(
            released.ends_with(&format!("\nwasmlet-sdk = \"{version}\"\n")),
            "{released}"
        );

        let local = sdk_dependency(Some(Path::new("/src/wasmlet/sdk")));
        assert!(
            local.ends_with("\nwasmlet-sdk = { path = \"/src/wasmlet/sdk\" }\n"),
            "{local}"
        );
        // A path with a quote, a backslash or a control character stays a
        // valid TOML string.
        let odd = sdk_dependency(Some(Path::new("/a \"b\"\\c\td")));
        assert!(odd.contains(r#"path = "/a \"b\"\\c\u0009d""#), "{odd}");
    }

    #[test]
    fn this_source_tree_offers_its_own_sdk() {
        let sdk = local_sdk().expect("the SDK sits beside the runtime in this repository");
        assert!(sdk.join("src/lib.rs").is_file());
    }

    #[test]
    fn rust_refuses_an_existing_directory_and_leaves_it_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("greet")).unwrap();
        fs::write(dir.path().join("greet/notes.txt"), "mine").unwrap();
        let error = scaffold(dir.path(), "greet", ScaffoldKind::Rust).unwrap_err();
        assert!(matches!(error, ScaffoldError::Exists { .. }), "{error}");
        assert_eq!(fs::read_dir(dir.path().join("greet")).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_directory_is_an_io_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        for kind in KINDS {
            let error = scaffold(&missing, "greet", kind).unwrap_err();
            assert!(
                matches!(&error, ScaffoldError::Io { path, .. } if path.starts_with(&missing)),
                "{error}"
            );
            assert!(error.to_string().contains("missing"), "{error}");
        }
    }
}
