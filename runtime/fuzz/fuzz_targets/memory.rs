//! Fuzzes the guest-memory helpers (`runtime/src/host/memory.rs`) against a
//! model of the ABI's rules written here in 64-bit arithmetic, where nothing
//! can overflow.
//!
//! Input: bytes 0..4 are the memory size (`u32`, little-endian, taken modulo
//! one 64 KiB page plus one), 4..8 the guest pointer and 8..12 the guest
//! length or capacity (`i32`, little-endian), the rest is the value to write.
//! Shorter inputs are skipped.
//!
//! For every input, whatever it is:
//! - `range` accepts exactly the ranges that fit (pointer and length read as
//!   unsigned) and returns that range; otherwise its error names the
//!   pointer, length and size;
//! - `read` returns the very bytes of that range, or an error;
//! - `write_full_length` writes the prefix of the value that fits in the
//!   buffer, returns the value's full length, and changes no byte outside
//!   the buffer; with a bad buffer it changes nothing, even for an empty
//!   value;
//! - `write_some` writes the prefix that fits and returns its length, with
//!   the same rules for everything else.
//!
//! None of them may panic.

#![no_main]

#[path = "../../src/host/memory.rs"]
#[allow(
    dead_code,
    unreachable_pub,
    reason = "compiled here as it stands; the runtime is what uses it"
)]
mod memory;

use libfuzzer_sys::fuzz_target;
use memory::{OutOfBounds, range, read, write_full_length, write_some};

/// The largest memory tried: one wasm page. Big enough for every edge (a
/// range at, across or far past the end), small enough to copy per input.
const MAX_SIZE: u32 = 65_536;

struct Input<'a> {
    size: usize,
    ptr: i32,
    len: i32,
    value: &'a [u8],
}

fn parse(data: &[u8]) -> Option<Input<'_>> {
    let (size, rest) = data.split_first_chunk::<4>()?;
    let (ptr, rest) = rest.split_first_chunk::<4>()?;
    let (len, value) = rest.split_first_chunk::<4>()?;
    Some(Input {
        size: (u32::from_le_bytes(*size) % (MAX_SIZE + 1)) as usize,
        ptr: i32::from_le_bytes(*ptr),
        len: i32::from_le_bytes(*len),
        value,
    })
}

/// The ABI's rule: wasm32 pointers and lengths are unsigned, and the range
/// must end at or before the end of memory.
fn model(size: usize, ptr: i32, len: i32) -> Option<(usize, usize)> {
    let start = u64::from(ptr as u32);
    let end = start + u64::from(len as u32);
    (end <= size as u64).then_some((start as usize, end as usize))
}

/// Memory with no two neighbouring bytes equal and a period (251, a prime)
/// that no power-of-two offset lines up with, so a write or read one byte
/// off shows.
fn patterned(size: usize) -> Vec<u8> {
    (0..size).map(|i| (i % 251) as u8).collect()
}

/// `after` is `before` with exactly `value` written at `start`.
fn assert_written_at(before: &[u8], after: &[u8], start: usize, value: &[u8]) {
    let end = start + value.len();
    assert_eq!(&after[start..end], value, "the bytes written");
    assert_eq!(after[..start], before[..start], "bytes before the buffer");
    assert_eq!(after[end..], before[end..], "bytes after what was written");
}

fuzz_target!(|data: &[u8]| {
    let Some(Input {
        size,
        ptr,
        len,
        value,
    }) = parse(data)
    else {
        return;
    };
    let want = model(size, ptr, len);
    let out_of_bounds = OutOfBounds {
        ptr: ptr as u32,
        len: len as u32,
        size,
    };

    match (range(size, ptr, len), want) {
        (Ok(got), Some((start, end))) => assert_eq!(got, start..end),
        (Err(err), None) => {
            assert_eq!(err, out_of_bounds);
            assert!(!err.to_string().is_empty());
        }
        (got, want) => panic!("range({size}, {ptr}, {len}) = {got:?}, the ABI says {want:?}"),
    }

    let before = patterned(size);
    match (read(&before, ptr, len), want) {
        (Ok(bytes), Some((start, end))) => {
            assert_eq!(bytes.len(), end - start);
            assert!(std::ptr::eq(bytes.as_ptr(), before[start..].as_ptr()));
        }
        (Err(err), None) => assert_eq!(err, out_of_bounds),
        (got, want) => panic!("read(size {size}, {ptr}, {len}) = {got:?}, the ABI says {want:?}"),
    }

    let mut memory = before.clone();
    match (write_full_length(&mut memory, ptr, len, value), want) {
        (Ok(full), Some((start, end))) => {
            let whole = i32::try_from(value.len()).unwrap_or(i32::MAX);
            assert_eq!(full, whole, "the full length, not what fitted");
            let fits = value.len().min(end - start);
            assert_written_at(&before, &memory, start, &value[..fits]);
        }
        (Err(err), None) => {
            assert_eq!(err, out_of_bounds);
            assert!(memory == before, "a refused write changed memory");
        }
        (got, want) => panic!(
            "write_full_length(size {size}, {ptr}, {len}, {} bytes) = {got:?}, the ABI says {want:?}",
            value.len()
        ),
    }

    let mut memory = before.clone();
    match (write_some(&mut memory, ptr, len, value), want) {
        (Ok(copied), Some((start, end))) => {
            assert_eq!(copied, value.len().min(end - start));
            assert_written_at(&before, &memory, start, &value[..copied]);
        }
        (Err(err), None) => {
            assert_eq!(err, out_of_bounds);
            assert!(memory == before, "a refused write changed memory");
        }
        (got, want) => panic!(
            "write_some(size {size}, {ptr}, {len}, {} bytes) = {got:?}, the ABI says {want:?}",
            value.len()
        ),
    }
});
