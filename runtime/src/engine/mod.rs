//! The one WebAssembly engine a server uses: its configuration, the epoch
//! ticker that makes guests yield, the shared linkers (the `Linker` with
//! every host import for core modules, and the WASI one for components),
//! and the one store recipe every handler kind runs in (`store.rs`).

mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::{
    Enabled, Engine, InstanceAllocationStrategy, Linker, OptLevel, PoolingAllocationConfig,
    WasmBacktraceDetails,
};

use crate::config::Config;
use crate::error::ConfigError;
use crate::host::{self, Ctx, WasiState};

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

/// The engine, its linkers, and the ticker thread that drives epochs.
pub struct WasmEngine {
    engine: Engine,
    linker: Arc<Linker<Ctx>>,
    /// WASI 0.2 and `wasi:http`, for component handlers.
    component_linker: Arc<wasmtime::component::Linker<WasiState>>,
    allocator: Allocator,
    ticker: Ticker,
}

impl WasmEngine {
    /// Builds the engine for `config`: pooling allocator if the address space
    /// allows it, on-demand otherwise.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let (engine, allocator) = match Engine::new(&engine_config(config, true)) {
            Ok(engine) => (engine, Allocator::Pooling),
            Err(e) => {
                tracing::warn!(
                    error = %e,
                    "the pooling allocator is unavailable; instances are allocated on demand"
                );
                let engine = Engine::new(&engine_config(config, false))
                    .map_err(|e| ConfigError::Engine(e.to_string()))?;
                (engine, Allocator::OnDemand)
            }
        };
        let mut linker = Linker::new(&engine);
        host::add_to_linker(&mut linker).map_err(|e| ConfigError::Engine(e.to_string()))?;
        let mut component_linker = wasmtime::component::Linker::new(&engine);
        host::add_wasi_to_linker(&mut component_linker)
            .map_err(|e| ConfigError::Engine(e.to_string()))?;
        let ticker = Ticker::start(engine.clone());
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            component_linker: Arc::new(component_linker),
            allocator,
            ticker,
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The linker that defines every `wasmlet` import.
    pub(crate) fn linker(&self) -> &Arc<Linker<Ctx>> {
        &self.linker
    }

    /// The linker that defines WASI 0.2 and `wasi:http` for components.
    pub(crate) fn component_linker(&self) -> &Arc<wasmtime::component::Linker<WasiState>> {
        &self.component_linker
    }

    /// The allocator in use.
    pub fn allocator(&self) -> Allocator {
        self.allocator
    }
}

impl Drop for WasmEngine {
    fn drop(&mut self) {
        self.ticker.stop();
    }
}

fn engine_config(config: &Config, pooling: bool) -> wasmtime::Config {
    let mut wasm = wasmtime::Config::new();
    wasm.epoch_interruption(true)
        .async_stack_size(ASYNC_STACK_SIZE)
        .cranelift_opt_level(OptLevel::Speed)
        // A trap's frames with their source file and line, from the module's
        // DWARF, for `--dev`'s error page. Off otherwise, whatever
        // `WASMTIME_BACKTRACE_DETAILS` says: modules keep their debug
        // sections in memory, and each trap parses them.
        .wasm_backtrace_details(if config.dev {
            WasmBacktraceDetails::Enable
        } else {
            WasmBacktraceDetails::Disable
        });
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

/// One thread per engine that advances its epoch every [`EPOCH_TICK`].
struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        // A weak handle: the ticker must not keep a dropped server's engine
        // (and its reserved address space) alive.
        let weak = engine.weak();
        drop(engine);
        std::thread::Builder::new()
            .name("wasmlet-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .expect("spawn the epoch ticker thread");
        Self { stop }
    }

    /// Asks the thread to stop; it exits within one tick. Not joined: the
    /// engine may be dropped on an async worker, which must not block.
    fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
