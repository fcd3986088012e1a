//! `counter`: a reusable handler. `#[handler(reusable)]` writes the
//! `wasmlet.reusable` custom section, so the server keeps warm instances and
//! this static keeps counting across requests; with a fresh instance per
//! request it would answer `count=1` every time. `?trap` panics after
//! counting, which discards the instance.

use std::sync::atomic::{AtomicU32, Ordering};

use wasmlet_sdk::{Request, handler};

static SERVED: AtomicU32 = AtomicU32::new(0);

#[handler(get, reusable)]
fn counter(req: Request) -> String {
    let n = SERVED.fetch_add(1, Ordering::Relaxed) + 1;
    if req.query("trap").is_some() {
        panic!("asked to trap after {n} requests");
    }
    format!("count={n}")
}
