//! `wasmlet cache ls|prune|clear`: what the disk cache holds, and cleaning
//! it while servers may be using it (see the cache's "Concurrency").

use std::process::ExitCode;

use clap::Subcommand;
use wasmlet::config::{self, Config};
use wasmlet::loader::disk_cache::{DiskCache, EngineDigest, PruneReport, Removed};

use super::{CacheDirArg, Size, format_size};

#[derive(Subcommand, Debug)]
pub(crate) enum CacheCommand {
    /// List the entries, least recently used first: size, last use, kind,
    /// and the handler file each was compiled from.
    Ls(CapArgs),
    /// Remove entries no server of this wasmlet will load again (another
    /// wasmtime or engine configuration, unreadable, superseded by a newer
    /// version of their handler) and finished Rust build directories, then
    /// the least recently used entries past the cap.
    Prune(CapArgs),
    /// Delete everything wasmlet keeps in the cache directory. A directory
    /// holding anything else is refused and left as it is.
    Clear(CacheDirArg),
}

#[derive(clap::Args, Debug)]
pub(crate) struct CapArgs {
    #[command(flatten)]
    dir: CacheDirArg,

    /// The cap on the entries, as --cache-max-size for serve.
    #[arg(long, default_value_t = Size(config::DEFAULT_CACHE_MAX_SIZE), value_name = "SIZE", env = "WASMLET_CACHE_MAX_SIZE")]
    max_size: Size,
}

/// Runs one `wasmlet cache` command.
pub(crate) fn run(command: CacheCommand) -> anyhow::Result<ExitCode> {
    let (dir, max_size) = match &command {
        CacheCommand::Ls(args) | CacheCommand::Prune(args) => (&args.dir, args.max_size.0),
        CacheCommand::Clear(dir) => (dir, config::DEFAULT_CACHE_MAX_SIZE),
    };
    let Some(dir) = dir.dir() else {
        anyhow::bail!("no cache directory: HOME and XDG_CACHE_HOME are unset; give --cache-dir");
    };
    if !dir.exists() {
        println!("no compiled-code cache at {} yet", dir.display());
        return Ok(ExitCode::SUCCESS);
    }
    let cache = DiskCache::existing(&dir, max_size)?;
    match command {
        CacheCommand::Ls(_) => list(&cache)?,
        CacheCommand::Prune(_) => {
            let report = cache.prune(&engine_digests()?);
            println!("{}", prune_summary(&dir, max_size, &report));
        }
        CacheCommand::Clear(_) => {
            let removed = cache.clear()?;
            println!(
                "cleared {}: removed {} ({})",
                dir.display(),
                count(
                    removed.entries,
                    "file or directory",
                    "files and directories"
                ),
                format_size(removed.bytes)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The digests of the engines `wasmlet serve` builds, which tell the
/// entries it can load from the others.
fn engine_digests() -> anyhow::Result<[EngineDigest; 2]> {
    let engine = wasmlet::engine::WasmEngine::new(&Config::new("."))?;
    Ok(engine.engines().map(DiskCache::engine_digest))
}

/// Prints one line per entry and a total.
fn list(cache: &DiskCache) -> anyhow::Result<()> {
    let engines = engine_digests()?;
    let entries = cache.entries();
    if !entries.is_empty() {
        println!("{:>9}  {:<20}  {:<9}  SOURCE", "SIZE", "LAST USED", "KIND");
    }
    for entry in &entries {
        let source = match (entry.unusable(&engines), entry.source()) {
            (Some(why), _) => format!("({why})"),
            (None, Some(source)) => source.display().to_string(),
            (None, None) => "(not recorded)".to_owned(),
        };
        println!(
            "{:>9}  {:<20}  {:<9}  {source}",
            format_size(entry.size),
            humantime::format_rfc3339_seconds(entry.last_used).to_string(),
            entry.kind().unwrap_or("-"),
        );
    }
    let total: u64 = entries.iter().map(|e| e.size).sum();
    println!(
        "{}, {} of the {} cap, in {}; Rust handler builds: {}",
        count(entries.len(), "entry", "entries"),
        format_size(total),
        format_size(cache.max_size()),
        cache.dir().display(),
        format_size(cache.build_size()),
    );
    Ok(())
}

/// `wasmlet cache prune`'s one line.
fn prune_summary(dir: &std::path::Path, max_size: u64, report: &PruneReport) -> String {
    let removed = [
        report.unreadable,
        report.other_engine,
        report.superseded,
        report.over_cap,
    ]
    .iter()
    .fold(Removed::default(), |sum, r| Removed {
        entries: sum.entries + r.entries,
        bytes: sum.bytes + r.bytes,
    });
    format!(
        "pruned {}: removed {} ({}: {} unreadable, {} for another wasmtime or engine, \
         {} superseded, {} past the {} cap) and {} ({}); kept {} ({})",
        dir.display(),
        count(removed.entries, "entry", "entries"),
        format_size(removed.bytes),
        report.unreadable.entries,
        report.other_engine.entries,
        report.superseded.entries,
        report.over_cap.entries,
        format_size(max_size),
        count(report.build.entries, "build directory", "build directories"),
        format_size(report.build.bytes),
        count(report.kept.entries, "entry", "entries"),
        format_size(report.kept.bytes),
    )
}

/// `n` and the noun that goes with it.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
