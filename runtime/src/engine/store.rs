//! The one store recipe every handler kind runs in: a `Store` whose memory
//! is capped by a [`StoreLimits`] in its data (`memory.grow` past the cap
//! returns `-1`), and which yields to the scheduler at every epoch tick.

use wasmtime::{Engine, Store, StoreLimits, StoreLimitsBuilder, UpdateDeadline};

use crate::host::{Ctx, WasiState};

/// Store data that carries its own limits.
pub(crate) trait Limited: Send + 'static {
    /// The limits the store's limiter enforces.
    fn store_limits(&mut self) -> &mut StoreLimits;
}

impl Limited for Ctx {
    fn store_limits(&mut self) -> &mut StoreLimits {
        &mut self.store_limits
    }
}

impl Limited for WasiState {
    fn store_limits(&mut self) -> &mut StoreLimits {
        &mut self.store_limits
    }
}

/// Limits with `max_memory` bytes of linear memory; a kind adds its own
/// counts (instances, tables) before it builds them.
pub(crate) fn memory_limits(max_memory: u64) -> StoreLimitsBuilder {
    StoreLimitsBuilder::new().memory_size(max_memory as usize)
}

/// A `Store` for `data`, with its limiter, the epoch callback, and a
/// deadline at the next tick.
pub(crate) fn new_store<T: Limited>(engine: &Engine, data: T) -> Store<T> {
    let mut store = Store::new(engine, data);
    store.limiter(|data| data.store_limits());
    // Yield to the scheduler at every epoch tick: a spinning guest shares its
    // worker thread with every other request, and its request timeout gets a
    // chance to fire. `tokio::task::yield_now` rather than a plain yield: a
    // plain yield re-wakes the task at once, and with several spinning guests
    // the run queue never empties, so tokio would poll the network only every
    // ~60 ticks; `yield_now` defers the task until the driver has run.
    store.epoch_deadline_callback(|_| {
        Ok(UpdateDeadline::YieldCustom(
            1,
            Box::pin(tokio::task::yield_now()),
        ))
    });
    store.set_epoch_deadline(1);
    store
}
