//! The global allocator of an SDK handler on wasm32 (the default feature
//! `allocator`): [talc], serving first from an arena in the module's own
//! initial memory, then from pages it grows.
//!
//! Why not Rust's default (dlmalloc): it takes every byte it hands out from
//! `memory.grow`, so every request of a fresh instance grows the memory at
//! least once. The runtime gives each request a fresh instance in a pooled
//! memory slot, and a slot grown past its initial size is shrunk back when
//! the next instance takes it: two `mprotect` calls and a TLB shootdown on
//! every core, per request. Allocations that fit in the arena grow nothing,
//! and the arena's pages are reset like the rest of the initial memory.
//!
//! [talc]: https://docs.rs/talc

use core::alloc::Layout;
use core::mem::MaybeUninit;
use core::ptr::NonNull;

use talc::base::Talc;
use talc::base::binning::Binning;
use talc::cell::TalcSyncCell;
use talc::source::Source;
use talc::wasm::WasmBinning;

/// What a request allocates before the memory grows. A hello's request
/// takes a few KiB; reading a body or building a page of some size fits
/// too. Zeroed, so it costs the module no data, and pages the guest never
/// touches cost the host nothing.
const ARENA_SIZE: usize = 256 << 10;

/// A WebAssembly page.
const PAGE_SIZE: usize = 64 << 10;

/// Room for talc's chunk header and tag around an allocation, beyond its
/// size and alignment padding (talc's own sources reserve two chunk units;
/// this is more than that).
const CHUNK_OVERHEAD: usize = 64;

static mut ARENA: [MaybeUninit<u8>; ARENA_SIZE] = [MaybeUninit::uninit(); ARENA_SIZE];

/// The allocator every SDK handler gets unless it turns the `allocator`
/// feature off. `TalcSyncCell` is sound only on single-threaded
/// WebAssembly, which is all a handler module is.
#[global_allocator]
static ALLOCATOR: TalcSyncCell<ArenaThenGrow, WasmBinning> =
    TalcSyncCell::new_wasm(ArenaThenGrow::new());

/// Where talc's memory comes from: [`ARENA`] first, then `memory.grow`,
/// extending the grown heap while the pages it gets follow on.
#[derive(Debug)]
struct ArenaThenGrow {
    arena_claimed: bool,
    /// The end of the heap made of grown pages, to extend in place.
    grown_end: Option<NonNull<u8>>,
}

impl ArenaThenGrow {
    const fn new() -> Self {
        Self {
            arena_claimed: false,
            grown_end: None,
        }
    }
}

// SAFETY: `acquire` neither allocates nor touches `ALLOCATOR`; it only hands
// talc memory nothing else uses: the arena, reached only here, and pages
// fresh from `memory.grow`.
unsafe impl Source for ArenaThenGrow {
    fn acquire<B: Binning>(talc: &mut Talc<Self, B>, layout: Layout) -> Result<(), ()> {
        if !talc.source.arena_claimed {
            talc.source.arena_claimed = true;
            // SAFETY: the arena is static, so it outlives the allocator, and
            // nothing but this claim ever refers to it.
            let claimed = unsafe { talc.claim((&raw mut ARENA).cast(), ARENA_SIZE) };
            if claimed.is_some() {
                return Ok(());
            }
        }
        let bytes = layout
            .size()
            .checked_add(layout.align())
            .and_then(|bytes| bytes.checked_add(CHUNK_OVERHEAD))
            .ok_or(())?;
        let pages = bytes.div_ceil(PAGE_SIZE);
        let previous = core::arch::wasm32::memory_grow(0, pages);
        if previous == usize::MAX {
            return Err(());
        }
        let base = (previous * PAGE_SIZE) as *mut u8;
        let size = pages * PAGE_SIZE;
        // The new pages follow the grown heap unless something else grew
        // the memory in between: extend it then, or start another heap.
        if let Some(end) = talc.source.grown_end.take()
            && end.as_ptr() == base
        {
            // SAFETY: `base..base + size` is fresh from `memory.grow`, right
            // after the heap that ends at `end`.
            talc.source.grown_end = Some(unsafe { talc.extend(end, base.wrapping_add(size)) });
            return Ok(());
        }
        // SAFETY: `base..base + size` is fresh from `memory.grow`; nothing
        // else refers to it.
        talc.source.grown_end = unsafe { talc.claim(base, size) };
        talc.source.grown_end.map(|_| ()).ok_or(())
    }
}
