//! The command line: the subcommands and, one module each, their flags.
//! Every default comes from [`wasmlet::config`]; the flag types here show it
//! in `--help` as it is written on the command line (`30s`, `64MiB`).

pub(crate) mod cache;
pub(crate) mod check;
pub(crate) mod new;
pub(crate) mod serve;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use wasmlet::config::{self, parse_duration, parse_size};

/// A WebAssembly handler runtime: drop a .wasm or .wat file into a web root
/// and it serves the next request at its path.
#[derive(Parser, Debug)]
#[command(
    name = "wasmlet",
    // The wasmtime version too: disk cache entries are only valid for the
    // wasmtime that wrote them.
    version = concat!(env!("CARGO_PKG_VERSION"), " (wasmtime ", env!("WASMLET_WASMTIME_VERSION"), ")"),
    about,
    long_about = None
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Serve a web root: .wasm/.wat files are handlers, other files are static.
    // Boxed: its many flags make it far larger than the other commands.
    Serve(Box<serve::ServeArgs>),
    /// Compile every handler in a web root ahead of time into the disk cache,
    /// so the server's first requests do not compile.
    Compile(check::CompileArgs),
    /// Check a web root before serving it: every wasmlet.toml, every handler
    /// (filling the disk cache), and each handler's capability imports
    /// against its grants. Exits non-zero on any error: a deploy step for CI.
    Check(check::CompileArgs),
    /// Create a hello handler to start from: NAME.wat, or a Rust crate NAME/
    /// that uses the SDK.
    New(new::NewArgs),
    /// Look into the disk cache of compiled handlers, and clean it.
    #[command(subcommand)]
    Cache(cache::CacheCommand),
}

/// `--cache-dir`, as every command that uses the disk cache takes it.
#[derive(clap::Args, Debug)]
pub(crate) struct CacheDirArg {
    /// Where compiled handler code is kept between restarts (default:
    /// $XDG_CACHE_HOME/wasmlet or ~/.cache/wasmlet). Must be outside the web root.
    #[arg(
        long,
        value_name = "DIR",
        env = "WASMLET_CACHE_DIR",
        help_heading = "Cache and data"
    )]
    pub(crate) cache_dir: Option<PathBuf>,
}

impl CacheDirArg {
    /// The directory given, else the default one.
    pub(crate) fn dir(&self) -> Option<PathBuf> {
        self.cache_dir
            .clone()
            .or_else(wasmlet::loader::disk_cache::default_dir)
    }
}

/// The disk cache flags of the commands that compile.
#[derive(clap::Args, Debug)]
pub(crate) struct CacheArgs {
    #[command(flatten)]
    dir: CacheDirArg,

    /// Keep compiled code in memory only: every restart compiles again.
    #[arg(
        long,
        conflicts_with = "cache_dir",
        env = "WASMLET_NO_DISK_CACHE",
        help_heading = "Cache and data"
    )]
    no_disk_cache: bool,

    /// Most compiled code the disk cache keeps, all entries together; past
    /// it the least recently used entries are removed.
    #[arg(long, default_value_t = Size(config::DEFAULT_CACHE_MAX_SIZE), value_name = "SIZE", env = "WASMLET_CACHE_MAX_SIZE", help_heading = "Cache and data")]
    cache_max_size: Size,
}

impl CacheArgs {
    /// Sets the disk cache in `config`: off, the default directory (which
    /// only warns when it cannot be used), or the one given (which stops
    /// the start).
    pub(crate) fn apply(&self, config: &mut config::Config) {
        config.cache_dir = if self.no_disk_cache {
            None
        } else {
            self.dir.dir()
        };
        config.require_cache = self.dir.cache_dir.is_some() && !self.no_disk_cache;
        config.cache_max_size = self.cache_max_size.0;
    }
}

/// A duration flag: parsed from `500ms`, `30s`, `1m`, shown the same way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Human(pub(crate) Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        humantime::format_duration(self.0).fmt(f)
    }
}

impl std::str::FromStr for Human {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        parse_duration(text).map(Self)
    }
}

/// A size flag: parsed from `64MiB`, `1GiB` or bytes, shown the same way.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Size(pub(crate) u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_size(self.0))
    }
}

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        parse_size(text).map(Self)
    }
}

/// A size, or `off`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SizeOrOff(pub(crate) Option<u64>);

impl fmt::Display for SizeOrOff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(bytes) => f.write_str(&format_size(bytes)),
            None => f.write_str("off"),
        }
    }
}

impl std::str::FromStr for SizeOrOff {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text.eq_ignore_ascii_case("off") {
            return Ok(Self(None));
        }
        parse_size(text)
            .map(|bytes| Self(Some(bytes)))
            .map_err(|e| format!("{e}, or `off`"))
    }
}

/// `bytes` in the largest binary unit it is a whole number of (`64MiB`),
/// or to one decimal of the largest unit below it (`13.4KiB`).
pub(crate) fn format_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    if let Some((unit, size)) = UNITS
        .iter()
        .find(|(_, size)| bytes >= *size && bytes.is_multiple_of(*size))
    {
        return format!("{}{unit}", bytes / size);
    }
    match UNITS.iter().find(|(_, size)| bytes >= *size) {
        Some((unit, size)) => format!("{:.1}{unit}", bytes as f64 / *size as f64),
        None => format!("{bytes}B"),
    }
}
