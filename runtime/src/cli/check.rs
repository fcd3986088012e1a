//! `wasmlet check` and `wasmlet compile`: load a whole web root before
//! serving it, with a progress bar and a one-line summary.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use wasmlet::config::Config;

use super::CacheArgs;

#[derive(clap::Args, Debug)]
pub(crate) struct CompileArgs {
    /// The web root.
    #[arg(default_value = ".")]
    webroot: PathBuf,

    #[command(flatten)]
    cache: CacheArgs,
}

/// The log filter of `check` and `compile`: warnings, but not the loader's
/// own line for each failed handler, which the summary already prints.
pub(crate) const QUIET_LOADER: &str = "wasmlet=warn,wasmlet::loader::compile=off";

/// `wasmlet check`, or with `require_cache`, `wasmlet compile` (whose point
/// is the disk cache).
pub(crate) fn check(args: CompileArgs, require_cache: bool) -> anyhow::Result<ExitCode> {
    let mut config = Config::new(&args.webroot);
    args.cache.apply(&mut config);
    // The code a server keeps, compiled now: the baseline tier would check
    // (and cache) nothing Cranelift does not.
    config.baseline_above = None;
    if require_cache && config.cache_dir.is_none() {
        anyhow::bail!(
            "compiling ahead of time fills the disk cache, and --no-disk-cache turns it off; \
             use `wasmlet check --no-disk-cache` to check without one"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let mut server = wasmlet::Server::new(config)?;
        let root = server.config().webroot.clone();
        let total = wasmlet::webroot::handler_files(&root).len() as u64;
        let bar = indicatif::ProgressBar::new(total).with_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}")
                .expect("a valid progress template"),
        );
        let report = wasmlet::check::check(&mut server, |file| {
            bar.set_message(
                file.strip_prefix(&root)
                    .unwrap_or(file)
                    .display()
                    .to_string(),
            );
            bar.inc(1);
        })
        .await;
        bar.finish_and_clear();
        for error in &report.errors {
            println!("error: {error}");
        }
        for warning in &report.warnings {
            println!("warning: {warning}");
        }
        let cache = match &server.config().cache_dir {
            Some(dir) => format!(" ({})", dir.display()),
            None => " (no disk cache)".to_owned(),
        };
        println!(
            "{} handlers in {}: {} compiled, {} already in the cache{cache}, {} failed; \
             {} configuration files; {} errors, {} warnings",
            report.handlers,
            root.display(),
            report.compiled,
            report.cached,
            report.handlers - report.compiled - report.cached,
            report.config_files,
            report.errors.len(),
            report.warnings.len(),
        );
        Ok(if report.passed() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}
