//! Source handlers: a single-file SDK handler, `NAME.rs`, built to a wasm
//! module with the machine's Rust toolchain on its first request — the
//! `.ashx` build provider, for Rust.
//!
//! # Layout on disk (below the build directory, outside the web root)
//! - `sdk-<version>/`: the SDK, written once from the source this binary
//!   embeds (the same copy `wasmlet new --rust` vendors).
//! - `crates/h<key>/`: one crate per source version: a generated
//!   `Cargo.toml` (the SDK by path, plus the dependencies the file's header
//!   declares) and `src/lib.rs`, a copy of the file; `build.log` holds
//!   cargo's output.
//! - `target/`: one target directory for every crate, so the SDK and common
//!   dependencies are built once for all handlers.
//! - `out/<key>.wasm`: each built module, by key: the SHA-256 of the source,
//!   the toolchain's `rustc -V` and this wasmlet's version. A restart finds
//!   it there and never runs cargo; the loader's disk cache then has its
//!   compiled code too.
//!
//! # Concurrency
//! The loader builds each file version once (its single-flight slot), under
//! its compile permits (one per core); cargo's lock on the shared target
//! directory serialises what runs at once. Files appear by rename, so a
//! reader never sees half of one, and two servers sharing the directory at
//! worst build the same thing twice.
//!
//! # Bounds
//! A build is killed at its timeout (`--build-timeout`); cargo's output is
//! kept in a file, and only its first error line reaches the log.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::error::LoadError;

/// The target source handlers build for.
const TARGET: &str = "wasm32-unknown-unknown";

/// Builds `.rs` handlers; one per server.
#[derive(Debug)]
pub struct RustBuilder {
    /// Where the SDK copy, the crates, the shared target directory and the
    /// built modules live.
    dir: PathBuf,
    /// Longest one build may run.
    timeout: Duration,
    /// `rustc -V`, asked once: part of every key, and the first sign of a
    /// missing toolchain.
    toolchain: OnceLock<Result<String, String>>,
}

impl RustBuilder {
    /// A builder keeping its files in `dir` (created as needed), killing a
    /// build that runs past `timeout`.
    pub fn new(dir: PathBuf, timeout: Duration) -> Self {
        Self {
            dir,
            timeout,
            toolchain: OnceLock::new(),
        }
    }

    /// The wasm module built from `source`, the text of the handler `file`:
    /// from `out/` when this version was built before, else built now.
    /// Blocking: the loader calls it on a blocking thread.
    pub(crate) fn wasm(&self, file: &Path, source: &[u8]) -> Result<Vec<u8>, LoadError> {
        let failed = |message: String| LoadError::Compile {
            path: file.to_path_buf(),
            message,
        };
        let toolchain = self
            .toolchain
            .get_or_init(probe_toolchain)
            .clone()
            .map_err(failed)?;
        let text = std::str::from_utf8(source)
            .map_err(|_| failed("the source is not UTF-8 text".to_owned()))?;
        let dependencies = header_dependencies(file, text)?;
        let key = {
            let mut hash = Sha256::new();
            for part in [
                source,
                toolchain.as_bytes(),
                env!("CARGO_PKG_VERSION").as_bytes(),
            ] {
                hash.update(part);
                hash.update([0]);
            }
            hash.finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let out = self.dir.join("out").join(format!("{key}.wasm"));
        if let Some(wasm) = read_regular(&out) {
            return Ok(wasm);
        }
        let io = |what: &str, e: std::io::Error| failed(format!("cannot {what}: {e}"));
        let sdk = self.sdk().map_err(|e| io("write the SDK for builds", e))?;
        let name = format!("h{}", &key[..16]);
        let krate = self.dir.join("crates").join(&name);
        std::fs::create_dir_all(krate.join("src")).map_err(|e| io("create the build crate", e))?;
        std::fs::write(
            krate.join("Cargo.toml"),
            manifest(&name, &sdk, &dependencies),
        )
        .map_err(|e| io("write the build crate", e))?;
        std::fs::write(krate.join("src/lib.rs"), source)
            .map_err(|e| io("write the build crate", e))?;

        let started = Instant::now();
        let log = krate.join("build.log");
        let status = self.run_cargo(&krate, &log).map_err(failed)?;
        let output = read_tail(&log);
        if !status {
            return Err(build_error(file, &output));
        }
        let built = self
            .dir
            .join("target")
            .join(TARGET)
            .join("release")
            .join(format!("{name}.wasm"));
        let wasm = std::fs::read(&built).map_err(|e| io("read the built module", e))?;
        write_atomically(&out, &wasm).map_err(|e| io("keep the built module", e))?;
        tracing::info!(
            file = %file.display(),
            seconds = %format_args!("{:.1}", started.elapsed().as_secs_f64()),
            "built the Rust handler with cargo"
        );
        Ok(wasm)
    }

    /// Runs `cargo build` in `krate` with output to `log`; whether it
    /// succeeded. Kills it at the timeout.
    fn run_cargo(&self, krate: &Path, log: &Path) -> Result<bool, String> {
        let log_file = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let stderr = log_file
            .try_clone()
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let mut child = Command::new(cargo_program())
            .current_dir(krate)
            .args([
                "build",
                "--release",
                "--target",
                TARGET,
                "--message-format",
                "short",
            ])
            .env("CARGO_TARGET_DIR", self.dir.join("target"))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                format!(
                    "cannot run cargo ({e}); building Rust handlers needs the Rust toolchain \
                     on PATH: install it from https://rustup.rs"
                )
            })?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status.success()),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "the build ran past its {} limit (--build-timeout) and was stopped",
                        humantime::format_duration(self.timeout)
                    ));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(format!("waiting for cargo failed: {e}")),
            }
        }
    }

    /// The SDK copy for builds, written once (into a temporary directory,
    /// then renamed into place, so no build sees half of it).
    fn sdk(&self) -> std::io::Result<PathBuf> {
        let sdk = self.dir.join(sdk_dir_name());
        if sdk.join("Cargo.toml").is_file() {
            return Ok(sdk);
        }
        std::fs::create_dir_all(&self.dir)?;
        let staging = tempfile::tempdir_in(&self.dir)?;
        for (path, text) in crate::scaffold::sdk_source() {
            let target = staging.path().join(path);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(target, text)?;
        }
        match std::fs::rename(staging.path(), &sdk) {
            Ok(()) => {
                // Renamed: nothing left for the temporary directory to delete.
                let _ = staging.keep();
                Ok(sdk)
            }
            // Another build put it there first.
            Err(_) if sdk.join("Cargo.toml").is_file() => Ok(sdk),
            Err(e) => Err(e),
        }
    }
}

/// The SDK copy's directory name: one per wasmlet version.
fn sdk_dir_name() -> String {
    format!("sdk-{}", env!("CARGO_PKG_VERSION"))
}

/// The build files below `dir` that no build of this wasmlet reads again,
/// for `wasmlet cache prune`: the SDK copies of other wasmlet versions, and
/// the crate of every built module (a build looks in `out/` first and never
/// opens its crate again) once nothing has touched it for `older_than`, so
/// a build still running on another server keeps its crate.
pub(crate) fn orphans(dir: &Path, older_than: Duration) -> Vec<PathBuf> {
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|items| {
                items
                    .filter_map(Result::ok)
                    .filter_map(|item| item.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let current_sdk = sdk_dir_name();
    let mut found: Vec<PathBuf> = names(dir)
        .into_iter()
        .filter(|name| name.starts_with("sdk-") && *name != current_sdk)
        .map(|name| dir.join(name))
        .filter(|path| path.is_dir())
        .collect();
    let built = names(&dir.join("out"));
    let modified = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
    };
    for name in names(&dir.join("crates")) {
        let krate = dir.join("crates").join(&name);
        let prefix = name.strip_prefix('h').unwrap_or_default();
        let is_built = !prefix.is_empty()
            && built
                .iter()
                .any(|module| module.starts_with(prefix) && module.ends_with(".wasm"));
        // Cargo appends to the log while it builds.
        let touched = modified(&krate.join("build.log")).max(modified(&krate));
        let idle = touched
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|age| age > older_than);
        if is_built && idle {
            found.push(krate);
        }
    }
    found
}

/// `cargo` as the environment names it (the one running us, under cargo),
/// else from PATH.
fn cargo_program() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// `rustc -V` of the toolchain cargo will use, or why there is none.
fn probe_toolchain() -> Result<String, String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(rustc).arg("-V").output().map_err(|e| {
        format!(
            "cannot run rustc ({e}); building Rust handlers needs the Rust toolchain on PATH: \
             install it from https://rustup.rs, then `rustup target add {TARGET}`"
        )
    })?;
    if !output.status.success() {
        return Err(format!(
            "`rustc -V` failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The dependencies a source declares in its leading `//!` comment: a line
/// `//! [dependencies]`, then `//! name = "version"` lines, up to the first
/// `//!` line that is empty or the end of the comment. Checked as TOML, with
/// errors at the file's own line.
fn header_dependencies(file: &Path, text: &str) -> Result<String, LoadError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map_while(|(i, line)| line.strip_prefix("//!").map(|rest| (i + 1, rest.trim())));
    if !lines.any(|(_, line)| line == "[dependencies]") {
        return Ok(String::new());
    }
    let mut declared = String::new();
    for (number, line) in lines.take_while(|(_, line)| !line.is_empty()) {
        let parsed: Result<toml::Table, _> = line.parse();
        if let Err(e) = parsed {
            return Err(LoadError::Syntax {
                path: file.to_path_buf(),
                line: number,
                column: 1,
                message: format!(
                    "a dependency in the header is not TOML (`name = \"version\"`): {}",
                    e.message()
                ),
            });
        }
        declared.push_str(line);
        declared.push('\n');
    }
    Ok(declared)
}

/// The generated crate's manifest.
fn manifest(name: &str, sdk: &Path, dependencies: &str) -> String {
    let sdk = sdk
        .to_string_lossy()
        .replace('\\', "\\\\")
        .replace('"', "\\\"");
    format!(
        r#"# Generated by wasmlet from a source handler; rewritten on every build.
[package]
name = "{name}"
version = "0.0.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]
path = "src/lib.rs"

[dependencies]
wasmlet-sdk = {{ path = "{sdk}" }}
{dependencies}
# Small, quick to build: a handler waits on I/O far more than it computes.
[profile.release]
opt-level = "s"
panic = "abort"
strip = true
debug = false
incremental = true
codegen-units = 16

[workspace]
"#
    )
}

/// The build's first error, at the handler's own file, line and column when
/// rustc gave them; or what else went wrong.
fn build_error(file: &Path, output: &str) -> LoadError {
    if output.contains("may not be installed") || output.contains("can't find crate for `core`") {
        return LoadError::Compile {
            path: file.to_path_buf(),
            message: format!(
                "the {TARGET} target is not installed: run `rustup target add {TARGET}`"
            ),
        };
    }
    for line in output.lines() {
        // `src/lib.rs:4:5: error[E0425]: cannot find value `x` in this scope`
        let Some(rest) = line.strip_prefix("src/lib.rs:") else {
            continue;
        };
        let mut parts = rest.splitn(3, ':');
        let (Some(line_no), Some(column), Some(message)) =
            (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let message = message.trim();
        if !message.starts_with("error") {
            continue;
        }
        if let (Ok(line), Ok(column)) = (line_no.parse(), column.parse()) {
            return LoadError::Syntax {
                path: file.to_path_buf(),
                line,
                column,
                message: message.to_owned(),
            };
        }
    }
    let last = output
        .lines()
        .rev()
        .find(|line| line.starts_with("error"))
        .unwrap_or("cargo build failed")
        .trim();
    LoadError::Compile {
        path: file.to_path_buf(),
        message: last.to_owned(),
    }
}

/// The last 64 KiB of the build log: where the errors are, and a bound on
/// what a build with a million warnings costs us.
fn read_tail(log: &Path) -> String {
    const TAIL: u64 = 64 * 1024;
    let Ok(mut file) = std::fs::File::open(log) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = std::io::Seek::seek(
        &mut file,
        std::io::SeekFrom::Start(len.saturating_sub(TAIL)),
    );
    let mut text = Vec::new();
    let _ = file.take(TAIL).read_to_end(&mut text);
    String::from_utf8_lossy(&text).into_owned()
}

/// The file's bytes if it is a regular file (a built module).
fn read_regular(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    meta.is_file().then(|| std::fs::read(path).ok()).flatten()
}

/// Writes `bytes` to `path` by way of a temporary file and a rename.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir)?;
    let mut temp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut temp, bytes)?;
    temp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_dependencies_are_read_up_to_the_first_empty_line() {
        let source = "//! A handler.\n//!\n//! [dependencies]\n//! itoa = \"1\"\n//! serde = { version = \"1\", features = [\"derive\"] }\n//!\n//! itoa formats numbers.\nuse x;\n";
        let deps = header_dependencies(Path::new("h.rs"), source).unwrap();
        assert_eq!(
            deps,
            "itoa = \"1\"\nserde = { version = \"1\", features = [\"derive\"] }\n"
        );
        assert_eq!(
            header_dependencies(Path::new("h.rs"), "//! none\nfn f() {}").unwrap(),
            ""
        );
        // A `[dependencies]` below the leading comment is code, not a header.
        assert_eq!(
            header_dependencies(
                Path::new("h.rs"),
                "fn f() {}\n//! [dependencies]\n//! x = \"1\""
            )
            .unwrap(),
            ""
        );
    }

    #[test]
    fn a_broken_dependency_line_is_an_error_at_its_line() {
        let source = "//! [dependencies]\n//! itoa = 1.0.x\n";
        let error = header_dependencies(Path::new("h.rs"), source).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("h.rs:2:1: a dependency in the header is not TOML"),
            "{error}"
        );
    }

    #[test]
    fn the_first_rustc_error_is_reported_at_the_handlers_own_line() {
        let output = "   Compiling h1 v0.0.0\nsrc/lib.rs:3:9: warning: unused variable: `y`\nsrc/lib.rs:4:5: error[E0425]: cannot find value `x` in this scope\nerror: could not compile `h1`\n";
        let error = build_error(Path::new("/w/hello.rs"), output);
        assert_eq!(
            error.to_string(),
            "/w/hello.rs:4:5: error[E0425]: cannot find value `x` in this scope"
        );
        let error = build_error(
            Path::new("/w/hello.rs"),
            "error[E0463]: can't find crate for `core`\n  = note: the `wasm32-unknown-unknown` target may not be installed",
        );
        assert!(
            error
                .to_string()
                .contains("rustup target add wasm32-unknown-unknown"),
            "{error}"
        );
    }
}
