//! One version's load, as its own task: settle, compile (or the disk
//! cache), try once, and promote it to the served version if it is still
//! the newest. See the module documentation of `loader` for why each step.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use super::{Inner, LoadResult, Version, compile, current_version};
use crate::config::SETTLE_TIME;
use crate::error::LoadError;
use crate::executor::{Handler, RunLimits, Tier, Trial};
use crate::host::{GuestLog, HeadLimits, LogLimits, LogRate};
use crate::request::Identity;

impl Inner {
    /// Settles, compiles, tries and records one version of `file`.
    pub(super) async fn load(
        self: Arc<Self>,
        file: PathBuf,
        version: Version,
        settled: Arc<AtomicBool>,
        optimized: Arc<OnceLock<Arc<Handler>>>,
    ) -> LoadResult {
        self.settle(&file, version).await?;
        settled.store(true, Ordering::Release);
        let handler = Arc::new(self.compile(&file, self.tiering).await?);
        // The compile read the file; if it changed meanwhile, those bytes may
        // be a prefix of the new ones.
        if current_version(&file)? != version {
            return Err(self.changed(&file));
        }
        if let Err(e) = self.try_instance(&file, &handler).await {
            tracing::error!("handler failed to load: {e}");
            return Err(e);
        }
        self.promote(&file, version, &handler);
        if handler.provenance.tier == Tier::Baseline {
            tokio::spawn(self.clone().tier_up(file, version, optimized));
        }
        Ok(handler)
    }

    /// Compiles a baseline-tier version again with Cranelift, off the
    /// request path, and serves that in its place once it is made and has
    /// passed the same trial: requests already running finish on the
    /// baseline code they hold. If the file changed meanwhile the work is
    /// dropped (the newer version has its own load); if the compile fails,
    /// the baseline code goes on serving and the failure is logged.
    async fn tier_up(
        self: Arc<Self>,
        file: PathBuf,
        version: Version,
        optimized: Arc<OnceLock<Arc<Handler>>>,
    ) {
        let started = Instant::now();
        let handler = match self.compile(&file, false).await {
            Ok(handler) => Arc::new(handler),
            Err(e) => {
                tracing::error!(
                    "the optimised compile failed; the baseline code goes on serving: {e}"
                );
                return;
            }
        };
        if current_version(&file).ok() != Some(version) {
            return;
        }
        if let Err(e) = self.try_instance(&file, &handler).await {
            tracing::error!(
                "the optimised code failed its trial; the baseline code goes on serving: {e}"
            );
            return;
        }
        // Requests take a slot's handler through `optimized` once it is
        // set, so the swap is this one store: no request sees a gap.
        if optimized.set(handler.clone()).is_err() {
            return;
        }
        let mut files = self.files.lock().unwrap();
        if let Some(state) = files.get_mut(&file)
            && state.newest.version == version
        {
            state.good = Some(handler);
            self.stats.tiered_up();
            tracing::info!(
                file = %file.display(),
                ms = %format_args!("{:.1}", started.elapsed().as_secs_f64() * 1e3),
                "handler optimised: Cranelift's code replaces the baseline tier's"
            );
        }
    }

    /// Waits until `version` of `file` has stayed the same for
    /// [`SETTLE_TIME`] (by its times or, if they are off, by watching it)
    /// and no writer holds it open.
    async fn settle(self: &Arc<Self>, file: &Path, version: Version) -> Result<(), LoadError> {
        let watching = Instant::now();
        loop {
            if current_version(file)? != version {
                return Err(self.changed(file));
            }
            let quiet = version.age().max(watching.elapsed());
            if quiet >= SETTLE_TIME && !self.open_writes.is_open(file) {
                return Ok(());
            }
            let wait = SETTLE_TIME.saturating_sub(quiet).max(SETTLE_TIME / 4);
            tokio::time::sleep(wait).await;
        }
    }

    /// The error for a version that changed under its load, having started
    /// the load of the newer one (if the file is still wanted).
    fn changed(self: &Arc<Self>, file: &Path) -> LoadError {
        let known = self.files.lock().unwrap().contains_key(file);
        if known {
            let _ = self.newest_slot(file, false);
        }
        LoadError::Changed {
            path: file.to_path_buf(),
        }
    }

    /// What a load on a blocking thread works with; the baseline tier only
    /// if `baseline`.
    pub(super) fn toolchain(&self, baseline: bool) -> compile::Toolchain<'_> {
        compile::Toolchain {
            engine: self.engine.engine(),
            linker: self.engine.linker(),
            component_linker: self.engine.component_linker(),
            p3_engine: self.engine.p3_engine(),
            p3_linker: self.engine.p3_linker(),
            disk_cache: self.disk_cache.as_deref(),
            baseline: self.engine.baseline().filter(|_| baseline),
            stats: &self.stats,
            max_module_size: self.max_module_size,
            rust: self.rust.as_deref(),
        }
    }

    /// Compiles `file` (or takes its code from the disk cache) on a blocking
    /// thread, at most one per core at a time; with the baseline tier where
    /// `baseline` allows it and the handler is large enough.
    async fn compile(self: &Arc<Self>, file: &Path, baseline: bool) -> Result<Handler, LoadError> {
        let _permit = self.compile_permits.clone().acquire_owned().await;
        let inner = self.clone();
        let task_file = file.to_path_buf();
        tokio::task::spawn_blocking(move || compile::load(&inner.toolchain(baseline), &task_file))
            .await
            .unwrap_or_else(|join| {
                Err(LoadError::Compile {
                    path: file.to_path_buf(),
                    message: format!("the compiler failed: {join}"),
                })
            })
    }

    /// Starts a new version once under its file's request limits (for a
    /// core module: its start function and `init`): one that traps or runs
    /// too long there would fail every request, and must not replace the
    /// one serving.
    async fn try_instance(&self, file: &Path, handler: &Handler) -> Result<(), LoadError> {
        let (Some(site), Some(config)) = (&self.site, &self.config) else {
            return Ok(());
        };
        let policy = site.read().unwrap_or_else(|e| e.into_inner()).policy(file);
        let who = Identity {
            handler: file.display().to_string().into(),
            request_id: "load".into(),
        };
        let trial = Trial {
            log: GuestLog::new(
                who.clone(),
                LogLimits::of(config),
                Arc::new(LogRate::new(config.log_rate)),
            ),
            who,
            limits: RunLimits {
                timeout: policy.request_timeout,
                max_memory: policy.max_memory,
                head: HeadLimits::of(config),
            },
            policy,
            stats: self.stats.clone(),
        };
        handler
            .executor
            .clone()
            .trial(trial)
            .await
            .map_err(|message| LoadError::Start {
                path: file.to_path_buf(),
                message,
            })
    }

    /// Makes `handler` the served version of `file`, if `version` is still
    /// the newest: a slow load of an old version must not replace a newer one.
    fn promote(&self, file: &Path, version: Version, handler: &Arc<Handler>) {
        let mut files = self.files.lock().unwrap();
        let Some(state) = files.get_mut(file) else {
            return;
        };
        if state.newest.version != version {
            return;
        }
        let replaced = state.good.replace(handler.clone());
        // A file touched or copied over with the same bytes is not a reload.
        if replaced
            .is_some_and(|old| old.provenance.content_hash != handler.provenance.content_hash)
        {
            self.stats.reloaded();
            tracing::info!(
                file = %file.display(),
                version = &handler.provenance.content_hash[..12],
                "handler reloaded"
            );
        }
    }
}
