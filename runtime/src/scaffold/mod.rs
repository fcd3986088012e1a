//! `wasmlet new NAME`: a working hello handler to start from: a WebAssembly
//! text file (`NAME.wat`, served as it is), a Rust crate (`NAME/`) built
//! with the SDK, or a Rust crate that builds a WASI 0.3 `wasi:http`
//! component with the Spin SDK (`NAME/`, `--component`).
//!
//! The Rust crate carries its own copy of the SDK (`vendor/wasmlet-sdk`),
//! written from the source embedded in this binary (`runtime/build.rs`): the
//! SDK is not on crates.io, a path into the source tree wasmlet was built from
//! breaks when that tree moves or goes, and a copy is exactly the SDK that
//! matches this runtime. The crate builds wherever it is created, with no
//! edit, and offline once its few registry dependencies (`http`, `talc`,
//! `syn`, `quote`, `proc-macro2`) are in cargo's cache. Its `rust-toolchain.toml`
//! names the wasm target, so `rustup toolchain install` in the crate adds it.

mod templates;

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use templates::{
    CARGO_TOML, COMPONENT_CARGO_CONFIG, COMPONENT_CARGO_TOML, COMPONENT_HELLO, COMPONENT_README,
    COMPONENT_TOOLCHAIN, README, RUST_HELLO, RUST_TOOLCHAIN, SDK_ABI_MANIFEST, SDK_MACROS_MANIFEST,
    SDK_MANIFEST, WAT_HELLO,
};

/// What [`scaffold`] creates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaffoldKind {
    /// `NAME.wat`: a handler in WebAssembly text, served without a build.
    Wat,
    /// `NAME/`: a Rust crate using `wasmlet-sdk`, built to `NAME.wasm`.
    Rust,
    /// `NAME/`: a Rust crate using the Spin SDK, built to a WASI 0.3
    /// `wasi:http` component.
    Component,
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
    /// A Rust crate was asked for inside what looks like a web root: its
    /// source, manifest and build output do not belong where files are
    /// served.
    #[error(
        "{} looks like a web root ({evidence}): create the crate outside it (--dir) and copy only the built .wasm in",
        dir.display()
    )]
    InsideWebRoot {
        /// Where the crate would have gone.
        dir: PathBuf,
        /// What gave the web root away.
        evidence: String,
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
/// - [`ScaffoldKind::Component`] writes the crate `dir/NAME/` likewise, with
///   `.cargo/config.toml` choosing the `wasm32-wasip2` target.
///
/// `name` is lower-case letters, digits, `-` and `_`, starting with a letter
/// (a URL segment and a crate name alike); a Rust crate also cannot be
/// called like a Rust keyword or a built-in crate.
pub fn scaffold(dir: &Path, name: &str, kind: ScaffoldKind) -> Result<Vec<PathBuf>, ScaffoldError> {
    check_name(name, kind).map_err(|reason| ScaffoldError::InvalidName {
        name: name.to_owned(),
        reason,
    })?;
    match kind {
        ScaffoldKind::Wat => scaffold_wat(dir, name),
        ScaffoldKind::Rust => scaffold_crate(dir, name, rust_files(name)),
        ScaffoldKind::Component => scaffold_crate(dir, name, component_files(name)),
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
    if kind != ScaffoldKind::Wat {
        let crate_name = name.replace('-', "_");
        if RUST_RESERVED
            .split_whitespace()
            .any(|word| word == crate_name)
        {
            return Err("a Rust crate cannot be called like a keyword or a built-in crate");
        }
        // The SDKs the crates depend on, and their macro crates.
        if ["wasmlet_sdk", "spin_sdk", "spin_macro"]
            .iter()
            .any(|sdk| crate_name.starts_with(sdk))
        {
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

/// The files of the SDK crate `name`.
fn rust_files(name: &str) -> Vec<(String, String)> {
    let mut files = vec![
        ("Cargo.toml".to_owned(), CARGO_TOML.replace("NAME", name)),
        ("src/lib.rs".to_owned(), RUST_HELLO.replace("NAME", name)),
        ("README.md".to_owned(), readme(README, name)),
        (".gitignore".to_owned(), "/target\n".to_owned()),
        ("rust-toolchain.toml".to_owned(), RUST_TOOLCHAIN.to_owned()),
    ];
    files.extend(sdk_files());
    files
}

/// The files of the component crate `name`.
fn component_files(name: &str) -> Vec<(String, String)> {
    vec![
        (
            "Cargo.toml".to_owned(),
            COMPONENT_CARGO_TOML.replace("NAME", name),
        ),
        (
            "src/lib.rs".to_owned(),
            COMPONENT_HELLO.replace("NAME", name),
        ),
        ("README.md".to_owned(), readme(COMPONENT_README, name)),
        (".gitignore".to_owned(), "/target\n".to_owned()),
        (
            "rust-toolchain.toml".to_owned(),
            COMPONENT_TOOLCHAIN.to_owned(),
        ),
        (
            ".cargo/config.toml".to_owned(),
            COMPONENT_CARGO_CONFIG.to_owned(),
        ),
    ]
}

/// Writes `files` into the new crate directory `dir/name`.
fn scaffold_crate(
    dir: &Path,
    name: &str,
    files: Vec<(String, String)>,
) -> Result<Vec<PathBuf>, ScaffoldError> {
    if let Some(evidence) = web_root_evidence(dir) {
        return Err(ScaffoldError::InsideWebRoot {
            dir: dir.to_owned(),
            evidence,
        });
    }
    let root = dir.join(name);
    fs::create_dir(&root).map_err(|source| match source.kind() {
        io::ErrorKind::AlreadyExists => ScaffoldError::Exists { path: root.clone() },
        _ => ScaffoldError::Io {
            path: root.clone(),
            source,
        },
    })?;
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

/// Why `dir` looks like a web root, if it does: a `wasmlet.toml` in it or
/// above it, or a handler file in it.
fn web_root_evidence(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    if let Some(config) = dir
        .ancestors()
        .map(|ancestor| ancestor.join("wasmlet.toml"))
        .find(|config| config.is_file())
    {
        return Some(format!("{} is there", config.display()));
    }
    fs::read_dir(&dir)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.is_file()
                && path.extension().is_some_and(|ext| {
                    ext.eq_ignore_ascii_case("wasm") || ext.eq_ignore_ascii_case("wat")
                })
        })
        .map(|handler| format!("it holds the handler {}", handler.display()))
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

/// The SDK's source as this binary embeds it (`runtime/build.rs`): each
/// file's path below `sdk/` and its text.
const SDK_SOURCE: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/sdk_files.rs"));

/// Where a new crate keeps its copy of the SDK.
const VENDORED_SDK: &str = "vendor/wasmlet-sdk";

/// The files of the crate's SDK copy, below `vendor/wasmlet-sdk/`.
fn sdk_files() -> impl Iterator<Item = (String, String)> {
    sdk_source().map(|(path, text)| (format!("{VENDORED_SDK}/{path}"), text))
}

/// The SDK as a stand-alone crate: the embedded source with manifests that
/// do not inherit from this workspace's, each file's path relative to the
/// SDK's root. What `wasmlet new --rust` vendors and source handlers build
/// against.
pub(crate) fn sdk_source() -> impl Iterator<Item = (String, String)> {
    let version = env!("CARGO_PKG_VERSION");
    let manifests = [
        ("Cargo.toml", SDK_MANIFEST.replace("VERSION", version)),
        (
            "macros/Cargo.toml",
            SDK_MACROS_MANIFEST.replace("VERSION", version),
        ),
        (
            "abi/Cargo.toml",
            SDK_ABI_MANIFEST.replace("VERSION", version),
        ),
    ];
    manifests
        .into_iter()
        .map(|(path, text)| (path.to_owned(), text))
        .chain(
            SDK_SOURCE
                .iter()
                .map(|(path, text)| ((*path).to_owned(), (*text).to_owned())),
        )
}

fn readme(template: &str, name: &str) -> String {
    template
        .replace("NAME", name)
        .replace("FILE", &name.replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [ScaffoldKind; 3] = [
        ScaffoldKind::Wat,
        ScaffoldKind::Rust,
        ScaffoldKind::Component,
    ];

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
    fn component_creates_a_crate_that_builds_for_wasm32_wasip2_with_the_spin_sdk() {
        let dir = tempfile::tempdir().unwrap();
        let files = scaffold(dir.path(), "my-greeter", ScaffoldKind::Component).unwrap();
        let root = dir.path().join("my-greeter");
        let expected: Vec<PathBuf> = [
            "Cargo.toml",
            "src/lib.rs",
            "README.md",
            ".gitignore",
            "rust-toolchain.toml",
            ".cargo/config.toml",
        ]
        .iter()
        .map(|file| root.join(file))
        .collect();
        assert_eq!(files, expected);
        let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"my-greeter\"\n"), "{manifest}");
        assert!(manifest.contains("features = [\"http\"]"), "{manifest}");
        assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
        let config = fs::read_to_string(root.join(".cargo/config.toml")).unwrap();
        assert!(config.contains("target = \"wasm32-wasip2\""), "{config}");
        let readme = fs::read_to_string(root.join("README.md")).unwrap();
        assert!(
            readme.contains("release/my_greeter.wasm /path/to/webroot/my-greeter.wasm"),
            "{readme}"
        );
        assert!(
            check_name("spin-sdk", ScaffoldKind::Component).is_err(),
            "a crate named like its SDK"
        );
    }

    #[test]
    fn rust_creates_a_crate_named_after_the_handler() {
        let dir = tempfile::tempdir().unwrap();
        let files = scaffold(dir.path(), "my-greeter", ScaffoldKind::Rust).unwrap();
        let root = dir.path().join("my-greeter");
        let own: Vec<PathBuf> = [
            "Cargo.toml",
            "src/lib.rs",
            "README.md",
            ".gitignore",
            "rust-toolchain.toml",
        ]
        .iter()
        .map(|file| root.join(file))
        .collect();
        assert_eq!(files[..own.len()], own[..]);
        assert!(
            files[own.len()..]
                .iter()
                .all(|file| file.starts_with(root.join("vendor/wasmlet-sdk")))
        );

        let manifest = fs::read_to_string(root.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"my-greeter\"\n"), "{manifest}");
        assert!(
            manifest.contains("crate-type = [\"cdylib\", \"rlib\"]"),
            "{manifest}"
        );
        assert!(manifest.contains("\n[workspace]\n"), "{manifest}");
        assert!(
            manifest.contains("\nwasmlet-sdk = { path = \"vendor/wasmlet-sdk\" }\n"),
            "{manifest}"
        );

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
        let toolchain = fs::read_to_string(root.join("rust-toolchain.toml")).unwrap();
        assert!(
            toolchain.contains("targets = [\"wasm32-unknown-unknown\"]"),
            "{toolchain}"
        );
    }

    #[test]
    fn the_crate_carries_the_sdk_source_of_this_tree_file_for_file() {
        let dir = tempfile::tempdir().unwrap();
        scaffold(dir.path(), "greet", ScaffoldKind::Rust).unwrap();
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        let copy = dir.path().join("greet/vendor/wasmlet-sdk");
        for file in [
            "src/lib.rs",
            "src/sys/wasm.rs",
            "src/sys/alloc.rs",
            "macros/src/lib.rs",
            "abi/src/lib.rs",
        ] {
            assert_eq!(
                fs::read_to_string(copy.join(file)).unwrap(),
                fs::read_to_string(sdk.join(file)).unwrap(),
                "{file}"
            );
        }
        assert!(SDK_SOURCE.len() > 20, "{} files", SDK_SOURCE.len());
    }

    /// `(name, version, features, optional)` of each dependency in a
    /// manifest's table, with `workspace = true` entries looked up in the
    /// workspace's `[workspace.dependencies]`.
    fn dependencies(manifest: &str, table: &str) -> Vec<(String, String, Vec<String>, bool)> {
        let workspace: toml::Table =
            fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml"))
                .unwrap()
                .parse()
                .unwrap();
        let shared = &workspace["workspace"]["dependencies"];
        let manifest: toml::Table = manifest.parse().unwrap();
        let Some(deps) = manifest.get(table).and_then(|t| t.as_table()) else {
            return Vec::new();
        };
        let mut list: Vec<_> = deps
            .iter()
            .filter(|(name, _)| !name.starts_with("wasmlet-") && *name != "trybuild")
            .map(|(name, spec)| {
                let field = |spec: &toml::Value, key: &str| spec.get(key).cloned();
                let base = if field(spec, "workspace").is_some() {
                    shared[name.as_str()].clone()
                } else {
                    spec.clone()
                };
                let version = match &base {
                    toml::Value::String(version) => version.clone(),
                    other => other["version"].as_str().unwrap().to_owned(),
                };
                let mut features: Vec<String> = [field(&base, "features"), field(spec, "features")]
                    .into_iter()
                    .flatten()
                    .flat_map(|list| list.as_array().unwrap().clone())
                    .map(|feature| feature.as_str().unwrap().to_owned())
                    .collect();
                features.sort();
                features.dedup();
                let optional = field(spec, "optional").is_some_and(|v| v.as_bool() == Some(true));
                (name.clone(), version, features, optional)
            })
            .collect();
        list.sort();
        list
    }

    #[test]
    fn the_sdk_copys_manifests_name_the_dependencies_of_the_real_ones() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        for (copy, real) in [
            (SDK_MANIFEST, "Cargo.toml"),
            (SDK_MACROS_MANIFEST, "macros/Cargo.toml"),
            (SDK_ABI_MANIFEST, "abi/Cargo.toml"),
        ] {
            let real = fs::read_to_string(sdk.join(real)).unwrap();
            for table in ["dependencies", "dev-dependencies"] {
                assert_eq!(
                    dependencies(copy, table),
                    dependencies(&real, table),
                    "{table}"
                );
            }
            // The wasm32-only dependencies (the SDK's allocator), compared
            // the same way.
            let wasm32 = |manifest: &str| {
                let table: toml::Table = manifest.parse().unwrap();
                let deps = table
                    .get("target")
                    .and_then(|t| t.get("cfg(target_arch = \"wasm32\")"))
                    .map(|t| {
                        toml::Table::from_iter([(
                            "dependencies".to_owned(),
                            t["dependencies"].clone(),
                        )])
                        .to_string()
                    })
                    .unwrap_or_default();
                dependencies(&deps, "dependencies")
            };
            assert_eq!(wasm32(copy), wasm32(&real), "wasm32 dependencies");
            let copy: toml::Table = copy.parse().unwrap();
            let real: toml::Table = real.parse().unwrap();
            assert_eq!(copy.get("features"), real.get("features"));
            assert_eq!(copy.get("lib"), real.get("lib"));
        }
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
    fn a_crate_is_refused_inside_a_web_root_and_nothing_is_written() {
        let marked = tempfile::tempdir().unwrap();
        fs::write(marked.path().join("wasmlet.toml"), "").unwrap();
        fs::create_dir(marked.path().join("api")).unwrap();
        let with_handler = tempfile::tempdir().unwrap();
        fs::write(with_handler.path().join("hello.wat"), "(module)").unwrap();
        for (dir, clue) in [
            (marked.path().join("api"), "wasmlet.toml"),
            (with_handler.path().to_owned(), "hello.wat"),
        ] {
            let error = scaffold(&dir, "greet", ScaffoldKind::Rust).unwrap_err();
            assert!(
                matches!(error, ScaffoldError::InsideWebRoot { .. }),
                "{error}"
            );
            assert!(error.to_string().contains(clue), "{error}");
            assert!(!dir.join("greet").exists());
            // A WAT handler is meant for a web root.
            scaffold(&dir, "greet", ScaffoldKind::Wat).unwrap();
        }
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
