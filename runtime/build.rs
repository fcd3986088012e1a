//! Build-time facts the binary carries:
//!
//! - the SDK's source (`sdk/src`, `sdk/macros/src`, `sdk/abi/src`), so that `wasmlet new
//!   --rust` writes a crate that builds wherever it is created and whatever
//!   happens to this source tree later (`runtime/src/scaffold.rs`). Each file
//!   is embedded with `include_str!`, which tells cargo to rebuild when it
//!   changes; the directories are watched for files added or removed.
//! - the wasmtime version from `Cargo.lock`, for `wasmlet --version`: disk
//!   cache entries are only valid for the wasmtime that wrote them, so an
//!   operator needs to see it.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo"));
    let workspace = manifest.parent().expect("runtime/ sits in the workspace");

    embed_sdk(&workspace.join("sdk"), &out.join("sdk_files.rs"));

    let lock = workspace.join("Cargo.lock");
    println!("cargo::rerun-if-changed={}", lock.display());
    let wasmtime = fs::read_to_string(&lock)
        .ok()
        .and_then(|text| locked_version(&text, "wasmtime"))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo::rustc-env=WASMLET_WASMTIME_VERSION={wasmtime}");
}

/// Writes `SDK_FILES: &[(&str, &str)]`, each SDK source file's path relative
/// to `sdk/` and its text.
fn embed_sdk(sdk: &Path, out: &Path) {
    let mut files = Vec::new();
    for dir in ["src", "macros/src", "abi/src"] {
        let dir = sdk.join(dir);
        println!("cargo::rerun-if-changed={}", dir.display());
        collect(&dir, &mut files);
    }
    assert!(
        !files.is_empty(),
        "the SDK's source is missing at {}: wasmlet is built from its workspace",
        sdk.display()
    );
    files.sort();
    let mut code = String::from("&[\n");
    for file in files {
        let relative = file.strip_prefix(sdk).expect("collected below sdk/");
        let relative = relative
            .to_str()
            .expect("SDK paths are UTF-8")
            .replace('\\', "/");
        let _ = writeln!(
            code,
            "    ({relative:?}, include_str!({:?})),",
            file.display().to_string()
        );
    }
    code.push_str("]\n");
    fs::write(out, code).expect("OUT_DIR is writable");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

/// The version `Cargo.lock` pins for the registry package `name`.
fn locked_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == wanted {
            let version = lines.next()?.strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_owned());
        }
    }
    None
}
