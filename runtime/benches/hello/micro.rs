//! Per-request overhead without the network: a fresh `Store`, instantiate,
//! call, drop, in a loop on one task, as `engine/run.rs` does per request.
//!
//! The engine is wasmlet's own ([`wasmlet::engine::WasmEngine`], so the
//! pooling allocator, epoch interruption and async settings cannot drift
//! from the server's). The request path itself (`run_request`) and the host
//! context are crate-private, so the `Store` data and the imports here are
//! stand-ins that do what the real ones do on this path: store limits, an
//! epoch deadline that yields, the memory export looked up once, an async
//! `resp_write` that copies the bytes out and hands them to a channel.

use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::oneshot;
use wasmtime::{
    Caller, Extern, InstancePre, Linker, Memory, Module, ModuleExport, Store, StoreLimits,
    StoreLimitsBuilder, UpdateDeadline,
};

/// The imports a guest may use, as wasmlet names them.
const MODULE: &str = "wasmlet";

/// What the micro-benchmark's `Store` holds, like wasmlet's `Ctx`.
struct Ctx {
    limits: StoreLimits,
    memory: Option<Memory>,
    /// The response head and first chunk go out through this, as in
    /// wasmlet's `ResponseState`.
    start: Option<oneshot::Sender<Bytes>>,
}

/// One measured case.
#[derive(Debug, Clone)]
pub(crate) struct Case {
    pub(crate) name: &'static str,
    pub(crate) iterations: usize,
    pub(crate) mean_us: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
}

/// A module with an exported `handle` that does nothing.
const EMPTY_WAT: &str = r#"(module (memory (export "memory") 1) (func (export "handle")))"#;

/// What to run per iteration.
#[derive(Clone, Copy)]
enum Step {
    /// Store, instantiate, drop: no call.
    Instantiate,
    /// Store, instantiate, call the entry point, drop.
    Call,
}

struct Prepared {
    pre: InstancePre<Ctx>,
    entry: ModuleExport,
    memory: Option<ModuleExport>,
}

fn prepare(engine: &wasmtime::Engine, linker: &Linker<Ctx>, wasm: &[u8], entry: &str) -> Prepared {
    let module = Module::new(engine, wasm).expect("the module compiles");
    // Imports this stand-in linker lacks trap if called, and the case fails.
    let mut linker = linker.clone();
    linker
        .define_unknown_imports_as_traps(&module)
        .expect("define the other imports");
    Prepared {
        pre: linker
            .instantiate_pre(&module)
            .expect("the imports resolve"),
        entry: module.get_export_index(entry).expect("the entry point"),
        memory: module.get_export_index("memory"),
    }
}

/// Measures each case for `iterations` iterations after as many warm-up
/// ones.
pub(crate) fn run(iterations: usize, sdk_hello: Option<&[u8]>) -> Vec<Case> {
    let site = tempfile::tempdir().expect("a temporary directory");
    let config = wasmlet::Config::new(site.path());
    let engine = wasmlet::engine::WasmEngine::new(&config).expect("wasmlet's engine");
    assert_eq!(
        engine.allocator(),
        wasmlet::engine::Allocator::Pooling,
        "the pooling allocator is unavailable; the figures would not be the server's"
    );
    let engine = engine.engine().clone();
    let linker = linker(&engine);
    let hello = wat::parse_str(crate::HELLO_WAT).expect("valid WAT");
    let empty = wat::parse_str(EMPTY_WAT).expect("valid WAT");

    let mut cases = vec![
        (
            "Store + instantiate + drop, no call (WAT hello)",
            prepare(&engine, &linker, &hello, "handle"),
            Step::Instantiate,
        ),
        (
            "instantiate + call + drop: empty `handle`, no imports",
            prepare(&engine, &linker, &empty, "handle"),
            Step::Call,
        ),
        (
            "instantiate + call + drop: WAT hello (one async `resp_write`)",
            prepare(&engine, &linker, &hello, "handle"),
            Step::Call,
        ),
    ];
    if let Some(sdk) = sdk_hello {
        cases.push((
            "instantiate + call + drop: SDK hello (Rust, 63 KB)",
            prepare(&engine, &linker, sdk, "handle_get"),
            Step::Call,
        ));
    }

    // On a worker of a runtime shaped like the server's.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let mut results = Vec::new();
    for (name, prepared, step) in cases.drain(..) {
        let engine = engine.clone();
        let case = runtime.block_on(async move {
            tokio::spawn(async move {
                for _ in 0..iterations {
                    once(&engine, &prepared, step).await;
                }
                let mut samples = Vec::with_capacity(iterations);
                let started = Instant::now();
                for _ in 0..iterations {
                    let t = Instant::now();
                    once(&engine, &prepared, step).await;
                    samples.push(t.elapsed());
                }
                let total = started.elapsed();
                summarize(name, total, samples)
            })
            .await
            .expect("the measuring task panicked")
        });
        results.push(case);
    }
    results
}

fn summarize(name: &'static str, total: Duration, mut samples: Vec<Duration>) -> Case {
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    Case {
        name,
        iterations: samples.len(),
        mean_us: total.as_secs_f64() * 1e6 / samples.len() as f64,
        p50_us: at(0.5).as_secs_f64() * 1e6,
        p99_us: at(0.99).as_secs_f64() * 1e6,
    }
}

/// One request's worth of guest work, as `engine/run.rs` does it.
async fn once(engine: &wasmtime::Engine, prepared: &Prepared, step: Step) {
    let (start, started) = oneshot::channel();
    let ctx = Ctx {
        limits: StoreLimitsBuilder::new()
            .memory_size(wasmlet::config::DEFAULT_MAX_MEMORY as usize)
            .instances(1)
            .memories(1)
            .tables(4)
            .build(),
        memory: None,
        start: Some(start),
    };
    let mut store = Store::new(engine, ctx);
    store.limiter(|ctx| &mut ctx.limits);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| {
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    });
    let instance = prepared
        .pre
        .instantiate_async(&mut store)
        .await
        .expect("instantiation succeeds");
    if let Some(memory) = &prepared.memory {
        store.data_mut().memory = instance
            .get_module_export(&mut store, memory)
            .and_then(Extern::into_memory);
    }
    if let Step::Call = step {
        let func = instance
            .get_module_export(&mut store, &prepared.entry)
            .and_then(Extern::into_func)
            .expect("an exported function");
        let typed = func.typed::<(), ()>(&store).expect("() -> ()");
        typed
            .call_async(&mut store, ())
            .await
            .expect("the call succeeds");
    }
    drop(store);
    if let Step::Call = step {
        // Every measured module but the empty one writes a response.
        let _ = started.await;
    }
}

/// The imports the measured modules use. `resp_write` is async like
/// wasmlet's; the others answer as a `GET /sdk-hello` would, and `log`
/// drops the message.
fn linker(engine: &wasmtime::Engine) -> Linker<Ctx> {
    let mut linker = Linker::new(engine);
    linker
        .func_wrap_async(
            MODULE,
            "resp_write",
            |mut caller: Caller<'_, Ctx>, (buf, len): (i32, i32)| {
                Box::new(async move {
                    let memory = caller.data().memory.expect("a memory export");
                    let (data, ctx) = memory.data_and_store_mut(&mut caller);
                    // Copied out, as wasmlet does before handing it to hyper.
                    let (buf, len) = (buf as u32 as usize, len as u32 as usize);
                    let chunk = Bytes::copy_from_slice(
                        data.get(buf..buf + len)
                            .ok_or_else(|| wasmtime::format_err!("out of bounds"))?,
                    );
                    if let Some(start) = ctx.start.take() {
                        let _ = start.send(chunk);
                    }
                    Ok(0i32)
                })
            },
        )
        .expect("define resp_write");
    for (name, value) in [("req_method", "GET"), ("req_uri", "/sdk-hello")] {
        linker
            .func_wrap(
                MODULE,
                name,
                move |mut caller: Caller<'_, Ctx>, buf: i32, cap: i32| -> i32 {
                    let Some(memory) = caller.data().memory else {
                        return -1;
                    };
                    let bytes = value.as_bytes();
                    if bytes.len() <= cap as u32 as usize {
                        let _ = memory.write(&mut caller, buf as u32 as usize, bytes);
                    }
                    bytes.len() as i32
                },
            )
            .expect("define a request import");
    }
    linker
        .func_wrap(
            MODULE,
            "log",
            |_: Caller<'_, Ctx>, _: i32, _: i32, _: i32| {},
        )
        .expect("define log");
    linker
        .func_wrap(MODULE, "resp_status", |_: Caller<'_, Ctx>, _: i32| 0i32)
        .expect("define resp_status");
    linker
        .func_wrap(
            MODULE,
            "resp_header",
            |_: Caller<'_, Ctx>, _: i32, _: i32, _: i32, _: i32| 0i32,
        )
        .expect("define resp_header");
    linker
}
