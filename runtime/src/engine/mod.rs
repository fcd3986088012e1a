//! The WebAssembly engines a server uses: their configuration, the epoch
//! ticker that makes guests yield, the shared linkers (the `Linker` with
//! every host import for core modules, and the WASI ones for components),
//! and the one store recipe every handler kind runs in (`store.rs`).
//!
//! Two engines, because concurrency support (what WASI 0.3's native async
//! needs: `run_concurrent`, streams, futures) makes every store cost more
//! to create and drop, whether it uses it or not. Core modules and WASI 0.2
//! components run in the engine without it; WASI 0.3 components in their
//! own, with its own instance pool, configured alike otherwise. A third,
//! the baseline tier (`baseline.rs`), compiles large handlers with Winch
//! while Cranelift optimises them.

mod baseline;
mod store;

use std::sync::Arc;
use std::time::Duration;

use wasmtime::{
    Enabled, Engine, InstanceAllocationStrategy, Linker, OptLevel, PoolingAllocationConfig,
    WasmBacktraceDetails,
};

use crate::config::Config;
use crate::error::ConfigError;
use crate::host::{self, Ctx, WasiState};

pub use baseline::Baseline;
pub(crate) use store::{memory_limits, new_store};

/// How often the epoch advances. A running guest yields to the scheduler at
/// every tick, so this bounds how long one CPU-bound guest can hold a worker
/// thread before other requests get a turn, and how late a timeout can fire.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Host stack available to one guest call chain, on its own fiber.
const ASYNC_STACK_SIZE: usize = 2 << 20;

/// Bytes of each pooled linear memory reset in place between instances.
const MEMORY_KEEP_RESIDENT: usize = 2 << 20;

/// Core instances pooled per allowed handler instance, so every handler
/// instance may be a component: a Rust `wasm32-wasip2` component (`wstd`)
/// has 3 core instances (its module and the shims between it and WASI).
const CORE_INSTANCES_PER_COMPONENT: u32 = 3;

/// Tables pooled per allowed handler instance: the same component has 2.
/// Kept to what a component needs, not more: every pooled slot costs
/// resident memory under load (4 per instance measured 3 MiB more peak RSS
/// than 1 at 1,000 waiting requests).
const TABLES_PER_COMPONENT: u32 = 2;

/// Bytes of each pooled fiber stack kept resident between instances.
const ASYNC_STACK_KEEP_RESIDENT: usize = 64 << 10;

/// Which instance allocator the engine ended up with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// Pre-reserved slots: instantiation is a few microseconds.
    Pooling,
    /// Memory mapped per instance: used where the address space cannot hold
    /// the pool (a `ulimit -v`, a 32-bit host).
    OnDemand,
}

/// The engines and their linkers; a ticker thread drives their epochs.
pub struct WasmEngine {
    /// Core modules and WASI 0.2 components: no concurrency support.
    engine: Engine,
    /// WASI 0.3 components.
    p3_engine: Engine,
    linker: Arc<Linker<Ctx>>,
    /// WASI 0.2 and `wasi:http`, for WASI 0.2 components.
    component_linker: Arc<wasmtime::component::Linker<WasiState>>,
    /// WASI 0.2 and 0.3 and `wasi:http`, for WASI 0.3 components.
    p3_linker: Arc<wasmtime::component::Linker<WasiState>>,
    /// Winch, for a large handler's first seconds; `None` when off.
    baseline: Option<Baseline>,
    allocator: Allocator,
}

impl WasmEngine {
    /// Builds the engine for `config`: pooling allocator if the address space
    /// allows it, on-demand otherwise.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let both = |pooling| -> wasmtime::Result<(Engine, Engine)> {
            Ok((
                Engine::new(&engine_config(config, pooling, false))?,
                Engine::new(&engine_config(config, pooling, true))?,
            ))
        };
        let ((engine, p3_engine), allocator) = match both(true) {
            Ok(engines) => (engines, Allocator::Pooling),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "the pooling allocator is unavailable; instances are allocated on demand"
                );
                let engines = both(false).map_err(|e| ConfigError::Engine(e.to_string()))?;
                (engines, Allocator::OnDemand)
            }
        };
        let engine_error = |e: wasmtime::Error| ConfigError::Engine(e.to_string());
        let mut linker = Linker::new(&engine);
        host::add_to_linker(&mut linker).map_err(engine_error)?;
        let mut component_linker = wasmtime::component::Linker::new(&engine);
        host::add_wasi_p2_to_linker(&mut component_linker).map_err(engine_error)?;
        let mut p3_linker = wasmtime::component::Linker::new(&p3_engine);
        host::add_wasi_to_linker(&mut p3_linker).map_err(engine_error)?;
        // Winch does not cover every platform wasmtime does: without it,
        // large handlers wait for Cranelift as every handler did before.
        let baseline = Baseline::new(config).unwrap_or_else(|e| {
            tracing::warn!(
                error = %e,
                "the baseline compiler (Winch) is unavailable; large handlers wait for Cranelift"
            );
            None
        });
        let mut ticked = vec![engine.clone(), p3_engine.clone()];
        ticked.extend(baseline.as_ref().map(|b| b.engine().clone()));
        start_ticker(ticked);
        Ok(Self {
            engine,
            p3_engine,
            linker: Arc::new(linker),
            component_linker: Arc::new(component_linker),
            p3_linker: Arc::new(p3_linker),
            baseline,
            allocator,
        })
    }

    /// The engine of core modules and WASI 0.2 components.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine of WASI 0.3 components.
    pub fn p3_engine(&self) -> &Engine {
        &self.p3_engine
    }

    /// Both engines: what compiled code, and so the disk cache, depends on.
    pub fn engines(&self) -> [&Engine; 2] {
        [&self.engine, &self.p3_engine]
    }

    /// The linker that defines every `wasmlet` import.
    pub(crate) fn linker(&self) -> &Arc<Linker<Ctx>> {
        &self.linker
    }

    /// The linker that defines WASI 0.2 and `wasi:http` for WASI 0.2
    /// components.
    pub(crate) fn component_linker(&self) -> &Arc<wasmtime::component::Linker<WasiState>> {
        &self.component_linker
    }

    /// The linker that defines WASI 0.2 and 0.3 and `wasi:http` for WASI
    /// 0.3 components, in [`p3_engine`](Self::p3_engine).
    pub(crate) fn p3_linker(&self) -> &Arc<wasmtime::component::Linker<WasiState>> {
        &self.p3_linker
    }

    /// The baseline tier, unless it is off.
    pub fn baseline(&self) -> Option<&Baseline> {
        self.baseline.as_ref()
    }

    /// The allocator in use.
    pub fn allocator(&self) -> Allocator {
        self.allocator
    }
}

fn engine_config(config: &Config, pooling: bool, concurrent: bool) -> wasmtime::Config {
    let mut wasm = common_config(config, concurrent);
    wasm.cranelift_opt_level(OptLevel::Speed);
    if pooling {
        let mut pool = PoolingAllocationConfig::new();
        // `max_instances` counts handler instances of either kind. A
        // component instance holds several core instances and tables (its
        // module and the shims between it and WASI), so those pools have
        // room for that many components; memories (the address space that
        // matters) and fiber stacks stay at one per handler instance, and
        // cap core handlers as before.
        pool.total_component_instances(config.max_instances)
            .total_core_instances(
                config
                    .max_instances
                    .saturating_mul(CORE_INSTANCES_PER_COMPONENT),
            )
            .total_memories(config.max_instances)
            .total_tables(config.max_instances.saturating_mul(TABLES_PER_COMPONENT))
            .total_stacks(config.max_instances)
            .max_memory_size(config.max_memory as usize)
            // Reset a freed slot's memory in place instead of `madvise`:
            // giving pages back costs a TLB shootdown on every core and a
            // page fault per page on the next request. With PAGEMAP_SCAN
            // (Linux 6.7+) only the dirty pages are rewritten, so a generous
            // window (a Rust handler's 1 MiB stack sits near its top) costs
            // little.
            .pagemap_scan(Enabled::Auto)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
            .table_keep_resident(64 << 10)
            .async_stack_keep_resident(ASYNC_STACK_KEEP_RESIDENT);
        wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    wasm
}

/// What every engine shares: epochs, async fibers, backtrace details.
fn common_config(config: &Config, concurrent: bool) -> wasmtime::Config {
    let mut wasm = wasmtime::Config::new();
    wasm.concurrency_support(concurrent)
        .epoch_interruption(true)
        .async_stack_size(ASYNC_STACK_SIZE)
        // A trap's frames with their source file and line, from the module's
        // DWARF, for `--dev`'s error page. Off otherwise, whatever
        // `WASMTIME_BACKTRACE_DETAILS` says: modules keep their debug
        // sections in memory, and each trap parses them.
        .wasm_backtrace_details(if config.dev {
            WasmBacktraceDetails::Enable
        } else {
            WasmBacktraceDetails::Disable
        });
    wasm
}

/// Starts the one thread per server that advances its engines' epochs
/// every [`EPOCH_TICK`], for as long as any of them lives.
///
/// Weak handles: the thread must not keep a dropped server's engines (and
/// their reserved address space) alive. It does keep ticking after the
/// server is dropped while anything still holds an engine: a guest still
/// running then (a spinning request whose server went away) is interrupted
/// only by ticks, and without them it would hold its thread forever.
fn start_ticker(engines: Vec<Engine>) {
    let weak: Vec<_> = engines.iter().map(Engine::weak).collect();
    std::thread::Builder::new()
        .name("wasmlet-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                let mut alive = false;
                for engine in weak.iter().filter_map(|engine| engine.upgrade()) {
                    engine.increment_epoch();
                    alive = true;
                }
                if !alive {
                    return;
                }
            }
        })
        .expect("spawn the epoch ticker thread");
}
