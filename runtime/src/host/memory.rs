//! Checked access to guest memory through `(pointer, length)` pairs.
//!
//! The guest passes `i32`s; wasm32 pointers are unsigned, so they are read as
//! `u32`. A range that does not fit in the memory is the guest's bug and traps
//! (ABI: "a pointer range outside that memory is a trap"); nothing here ever
//! panics or reads past the slice.

use std::ops::Range;

/// A guest range that does not fit in its memory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "out-of-bounds pointer: {len} bytes at {ptr:#x} do not fit in the guest's {size}-byte memory"
)]
pub struct OutOfBounds {
    /// The guest's pointer, as unsigned.
    pub ptr: u32,
    /// The guest's length, as unsigned.
    pub len: u32,
    /// The memory's size in bytes.
    pub size: usize,
}

/// The byte range `ptr..ptr + len`, if it lies inside a memory of `size` bytes.
pub fn range(size: usize, ptr: i32, len: i32) -> Result<Range<usize>, OutOfBounds> {
    let (ptr, len) = (ptr as u32, len as u32);
    let start = ptr as usize;
    start
        .checked_add(len as usize)
        .filter(|end| *end <= size)
        .map(|end| start..end)
        .ok_or(OutOfBounds { ptr, len, size })
}

/// The guest bytes at `ptr..ptr + len`.
pub fn read(memory: &[u8], ptr: i32, len: i32) -> Result<&[u8], OutOfBounds> {
    range(memory.len(), ptr, len).map(|r| &memory[r])
}

/// Writes as much of `value` as fits in the guest buffer `buf..buf + cap` and
/// returns the full length (the ABI's "full length" rule), so a guest whose
/// buffer was too small can retry with a larger one. The whole buffer must be
/// inside memory even when the value is shorter: a bad buffer is a bug
/// whatever today's value is.
pub fn write_full_length(
    memory: &mut [u8],
    buf: i32,
    cap: i32,
    value: &[u8],
) -> Result<i32, OutOfBounds> {
    let target = range(memory.len(), buf, cap)?;
    let n = value.len().min(target.len());
    memory[target.start..target.start + n].copy_from_slice(&value[..n]);
    Ok(i32::try_from(value.len()).unwrap_or(i32::MAX))
}

/// Copies up to `cap` bytes of `source` into the guest buffer and returns how
/// many it copied (for streaming reads, where the rest stays pending).
pub fn write_some(
    memory: &mut [u8],
    buf: i32,
    cap: i32,
    source: &[u8],
) -> Result<usize, OutOfBounds> {
    let target = range(memory.len(), buf, cap)?;
    let n = source.len().min(target.len());
    memory[target.start..target.start + n].copy_from_slice(&source[..n]);
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_inside_memory_are_accepted() {
        let cases = [
            (16, 0, 16, Some(0..16)),
            (16, 4, 0, Some(4..4)),
            (16, 16, 0, Some(16..16)),
            (16, 15, 1, Some(15..16)),
            (16, 15, 2, None),
            (16, 17, 0, None),
            (16, -1, 1, None),
            (16, 0, -1, None),
            (16, i32::MAX, i32::MAX, None),
            (0, 0, 0, Some(0..0)),
        ];
        for (size, ptr, len, want) in cases {
            assert_eq!(
                range(size, ptr, len).ok(),
                want,
                "size {size} ptr {ptr} len {len}"
            );
        }
    }

    #[test]
    fn out_of_bounds_names_the_range_and_size() {
        let err = read(&[0; 8], 6, 4).unwrap_err();
        assert_eq!(
            err,
            OutOfBounds {
                ptr: 6,
                len: 4,
                size: 8
            }
        );
        assert!(err.to_string().contains("8-byte memory"), "{err}");
    }

    #[test]
    fn full_length_writes_truncate_and_report_the_whole_length() {
        let mut memory = [0u8; 8];
        assert_eq!(write_full_length(&mut memory, 2, 3, b"hello"), Ok(5));
        assert_eq!(&memory, b"\0\0hel\0\0\0");
        let mut memory = [0u8; 8];
        assert_eq!(write_full_length(&mut memory, 0, 8, b"hi"), Ok(2));
        assert_eq!(&memory[..3], b"hi\0");
        assert_eq!(write_full_length(&mut memory, 0, 0, b"hi"), Ok(2));
    }

    #[test]
    fn a_bad_buffer_traps_even_when_the_value_is_short() {
        let mut memory = [0u8; 8];
        assert!(write_full_length(&mut memory, 6, 4, b"").is_err());
        assert!(write_some(&mut memory, -4, 2, b"ab").is_err());
    }

    #[test]
    fn partial_writes_copy_what_fits() {
        let mut memory = [0u8; 4];
        assert_eq!(write_some(&mut memory, 1, 2, b"abc"), Ok(2));
        assert_eq!(&memory, b"\0ab\0");
    }
}
