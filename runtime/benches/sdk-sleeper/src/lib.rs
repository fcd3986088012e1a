//! `sleeper`: `GET /sleeper?ms=M` waits M milliseconds (default 100, at
//! most 10,000) on the host timer, then answers `slept`. The benchmark's
//! 100 ms wait rows serve it beside the WAT sleeper: the same wait, with the
//! SDK's request parsing and allocator on the way.

use std::time::Duration;

use wasmlet_sdk::{Request, handler, sleep};

#[handler(get)]
fn sleeper(req: Request) -> &'static str {
    let ms = req
        .query("ms")
        .and_then(|ms| ms.parse::<u64>().ok())
        .map_or(100, |ms| ms.min(10_000));
    sleep(Duration::from_millis(ms));
    "slept\n"
}
