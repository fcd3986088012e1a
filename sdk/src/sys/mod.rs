//! The host boundary: one safe function per `wasmlet` import, taking slices
//! where the ABI takes a pointer and a length, returning the ABI's `i32`
//! codes unchanged.
//!
//! On wasm32 they call the imports (`wasm.rs`), and `alloc.rs` is the
//! handler's global allocator: the only `unsafe` in the SDK.
//! Everywhere else a fake host (`fake.rs`) answers them from thread-local
//! state, by the same rules, so everything above this module runs the same
//! code in a unit test as in the runtime.

#[cfg(all(target_arch = "wasm32", feature = "allocator"))]
mod alloc;
#[cfg(target_arch = "wasm32")]
mod wasm;
#[cfg(target_arch = "wasm32")]
use wasm as host;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod fake;
#[cfg(not(target_arch = "wasm32"))]
use fake as host;

pub(crate) use host::{
    clock_elapsed_us, clock_now_ms, close, error_message, file_read, file_read_begin,
    file_read_end, file_size, http_begin, http_end, http_header, http_headers, http_read,
    http_send, http_status, kv_delete, kv_delete_begin, kv_delete_end, kv_get, kv_get_begin,
    kv_get_end, kv_list, kv_list_begin, kv_list_end, kv_set, kv_set_begin, kv_set_end, log,
    log_panic, req_body_read, req_header, req_method, req_param, req_uri, resp_header, resp_status,
    resp_write, sleep_ms, trap, var_get,
};

/// The largest length an `i32` argument can carry; longer buffers are
/// offered in part.
pub(crate) const MAX_LEN: usize = i32::MAX as usize;

/// Reads a value by the ABI's rule for `(…, buf, cap) -> full_len` imports:
/// when the value is longer than the buffer, ask again with a buffer of its
/// full length. `None` for any negative code (absent, or a name the host
/// rejects and so cannot hold).
pub(crate) fn read_value(read: impl FnMut(&mut [u8]) -> i32) -> Option<Vec<u8>> {
    // Most methods, paths and header values fit; a longer one costs one
    // more call.
    read_full(128, read).ok()
}

/// [`read_value`] starting with a buffer of `first` bytes, keeping the
/// negative code when there is one.
///
/// The same loop serves the `_end` imports that keep a value too long for
/// the buffer (`kv_get_end`, `kv_list_end`, `file_read_end`): their second
/// call returns the kept value at once. For a single-call import
/// (`kv_get`) the second call asks again, and the loop also copes with a
/// value that changed size in between.
pub(crate) fn read_full(
    first: usize,
    mut read: impl FnMut(&mut [u8]) -> i32,
) -> Result<Vec<u8>, i32> {
    let mut buf = vec![0; first.min(MAX_LEN)];
    loop {
        let code = read(&mut buf);
        let len = usize::try_from(code).map_err(|_| code)?;
        if len <= buf.len() {
            buf.truncate(len);
            return Ok(buf);
        }
        buf.resize(len, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::{read_full, read_value};
    use crate::code;

    /// A host value as the ABI serves it: copy what fits, return the length.
    fn serve(value: &[u8], buf: &mut [u8]) -> i32 {
        let n = value.len().min(buf.len());
        buf[..n].copy_from_slice(&value[..n]);
        i32::try_from(value.len()).unwrap()
    }

    #[test]
    fn a_short_value_is_read_in_one_call() {
        let mut calls = 0;
        let value = read_value(|buf| {
            calls += 1;
            serve(b"GET", buf)
        });
        assert_eq!(value.as_deref(), Some(&b"GET"[..]));
        assert_eq!(calls, 1);
    }

    #[test]
    fn a_value_longer_than_the_buffer_is_read_again_whole() {
        let long = vec![b'x'; 1000];
        let mut calls = 0;
        let value = read_value(|buf| {
            calls += 1;
            serve(&long, buf)
        });
        assert_eq!(value, Some(long));
        assert_eq!(calls, 2);
    }

    #[test]
    fn an_empty_value_is_present() {
        assert_eq!(read_value(|buf| serve(b"", buf)), Some(Vec::new()));
    }

    #[test]
    fn read_full_keeps_the_negative_code() {
        assert_eq!(read_full(8, |_| code::DENIED), Err(code::DENIED));
        assert_eq!(read_full(8, |buf| serve(b"ok", buf)), Ok(b"ok".to_vec()));
    }

    #[test]
    fn a_value_that_grows_between_calls_is_read_until_it_fits() {
        let mut sizes = [20, 40, 40].into_iter();
        let mut calls = 0;
        let value = read_full(10, |buf| {
            calls += 1;
            serve(&vec![b'v'; sizes.next().unwrap()], buf)
        });
        assert_eq!(value.map(|v| v.len()), Ok(40));
        assert_eq!(calls, 3);
    }

    #[test]
    fn negative_codes_read_as_absent() {
        assert_eq!(read_value(|_| code::ABSENT), None);
        assert_eq!(read_value(|_| code::INVALID), None);
    }
}
