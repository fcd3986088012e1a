//! `log`, the async `sleep_ms`, and the clocks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::Level;
use wasmtime::{Caller, Linker};

use super::guest_log::MAX_LOG_LINE;
use super::memory::read;
use super::{Ctx, memory_and_ctx};
use crate::abi::{MODULE, level};

/// Longest single host-timer wait. The request timeout ends any request long
/// before this; the cap only keeps the timer arithmetic far from overflow.
const MAX_SLEEP: Duration = Duration::from_secs(24 * 60 * 60);

pub(super) fn add_to_linker(linker: &mut Linker<Ctx>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "log", log)?;
    linker.func_wrap_async(
        MODULE,
        "sleep_ms",
        |_caller: Caller<'_, Ctx>, (ms,): (i64,)| {
            let wait = Duration::from_millis(ms.max(0) as u64).min(MAX_SLEEP);
            Box::new(async move {
                tokio::time::sleep(wait).await;
                Ok(())
            })
        },
    )?;
    linker.func_wrap(MODULE, "clock_now_ms", clock_now_ms)?;
    linker.func_wrap(MODULE, "clock_elapsed_us", clock_elapsed_us)?;
    Ok(())
}

/// The wall clock: milliseconds since 1970-01-01 00:00 UTC, negative
/// before it. It may jump when the host's clock is set.
fn clock_now_ms() -> i64 {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => ms(since),
        Err(before) => -ms(before.duration()),
    }
}

/// A monotonic clock for measuring: microseconds since the host began
/// running this request. Per request rather than since boot, so a guest
/// learns nothing of the host's uptime or of other requests.
fn clock_elapsed_us(caller: Caller<'_, Ctx>) -> i64 {
    i64::try_from(caller.data().started.elapsed().as_micros()).unwrap_or(i64::MAX)
}

/// One guest log line, through the request's [`GuestLog`](super::GuestLog)
/// (its limits may drop it; `log` returns nothing, so the guest is not told).
fn log(mut caller: Caller<'_, Ctx>, level: i32, msg: i32, len: i32) -> wasmtime::Result<()> {
    let (memory, ctx) = memory_and_ctx(&mut caller)?;
    let bytes = read(memory, msg, len)?;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_LOG_LINE)]);
    let level = match level {
        level::ERROR => Level::ERROR,
        level::WARN => Level::WARN,
        level::INFO => Level::INFO,
        _ => Level::DEBUG,
    };
    ctx.log.line(level, None, &text, bytes.len() > MAX_LOG_LINE);
    Ok(())
}
