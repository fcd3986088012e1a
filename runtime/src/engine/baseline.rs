//! The baseline tier: an engine that compiles with Winch, wasmtime's
//! single-pass compiler, for a large handler's first version while
//! Cranelift makes the code it keeps (`loader/load.rs`, `tier_up`).
//!
//! Winch compiles several times faster than Cranelift and its code runs
//! slower, so it only bridges the seconds a 10–20 MB component (a Python or
//! JavaScript runtime) takes to optimise. Its code is never put in the disk
//! cache: a restart finds Cranelift's. Core modules and WASI 0.2 components
//! only; WASI 0.3 components need the concurrency support Winch's engine is
//! built without, and are always optimised first.

use std::sync::Arc;

use wasmtime::{Engine, Linker, OptLevel, Strategy};

use crate::config::Config;
use crate::host::{self, Ctx, WasiState};

/// The baseline engine and its linkers, like the main engine's.
pub struct Baseline {
    engine: Engine,
    linker: Arc<Linker<Ctx>>,
    component_linker: Arc<wasmtime::component::Linker<WasiState>>,
    /// Handler binaries of at least this many bytes start on this tier.
    above: u64,
}

impl Baseline {
    /// The tier for `config`, or `None` where it is off
    /// (`--baseline-above off`).
    pub(super) fn new(config: &Config) -> wasmtime::Result<Option<Self>> {
        let Some(above) = config.baseline_above else {
            return Ok(None);
        };
        let mut wasm = super::common_config(config, false);
        // Allocated on demand, not pooled: a baseline instance lives only
        // until the optimised code is in place, so reserving a pool's
        // address space for it would cost every server for a few seconds'
        // use. Admission still counts it among `--max-instances`.
        wasm.strategy(Strategy::Winch)
            // Winch leaves the trampolines between host and guest to
            // Cranelift: a quarter of a Python component's baseline compile.
            // They are tiny, so optimising them buys nothing for the
            // seconds this code serves.
            .cranelift_opt_level(OptLevel::None)
            // Only for outside unwinders (a debugger, `perf`); wasmtime's
            // own traces do not need it, and registering it costs time
            // per function.
            .native_unwind_info(false);
        let engine = Engine::new(&wasm)?;
        let mut linker = Linker::new(&engine);
        host::add_to_linker(&mut linker)?;
        let mut component_linker = wasmtime::component::Linker::new(&engine);
        host::add_wasi_p2_to_linker(&mut component_linker)?;
        Ok(Some(Self {
            engine,
            linker: Arc::new(linker),
            component_linker: Arc::new(component_linker),
            above,
        }))
    }

    /// Whether a handler binary of `bytes` starts on this tier.
    pub fn applies_to(&self, bytes: usize) -> bool {
        bytes as u64 >= self.above
    }

    /// The Winch engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker that defines every `wasmlet` import, in this engine.
    pub(crate) fn linker(&self) -> &Linker<Ctx> {
        &self.linker
    }

    /// The WASI 0.2 linker, in this engine.
    pub(crate) fn component_linker(&self) -> &wasmtime::component::Linker<WasiState> {
        &self.component_linker
    }
}
