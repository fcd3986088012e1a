//! The `wasmlet` imports, as the ABI page declares them, and safe wrappers
//! around them. This file holds all of the SDK's `unsafe`.
//!
//! Pointers and `usize` lengths are `i32` in wasm32, so the declarations
//! below have exactly the ABI's signatures.

use super::MAX_LEN;

#[link(wasm_import_module = "wasmlet")]
unsafe extern "C" {
    #[link_name = "req_method"]
    fn import_req_method(buf: *mut u8, cap: usize) -> i32;
    #[link_name = "req_uri"]
    fn import_req_uri(buf: *mut u8, cap: usize) -> i32;
    #[link_name = "req_header"]
    fn import_req_header(name: *const u8, name_len: usize, buf: *mut u8, cap: usize) -> i32;
    #[link_name = "req_param"]
    fn import_req_param(name: *const u8, name_len: usize, buf: *mut u8, cap: usize) -> i32;
    #[link_name = "var_get"]
    fn import_var_get(name: *const u8, name_len: usize, buf: *mut u8, cap: usize) -> i32;
    #[link_name = "req_body_read"]
    fn import_req_body_read(buf: *mut u8, cap: usize) -> i32;
    /// Sets the response status; no pointers, so nothing to uphold.
    pub(crate) safe fn resp_status(code: i32) -> i32;
    #[link_name = "resp_header"]
    fn import_resp_header(
        name: *const u8,
        name_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> i32;
    #[link_name = "resp_write"]
    fn import_resp_write(buf: *const u8, len: usize) -> i32;
    #[link_name = "log"]
    fn import_log(level: i32, msg: *const u8, len: usize);
    /// Waits on a host timer; no pointers, so nothing to uphold.
    pub(crate) safe fn sleep_ms(ms: i64);
    /// The wall clock; no pointers, so nothing to uphold.
    pub(crate) safe fn clock_now_ms() -> i64;
    /// The request's monotonic clock; no pointers, so nothing to uphold.
    pub(crate) safe fn clock_elapsed_us() -> i64;

    #[link_name = "error_message"]
    fn import_error_message(buf: *mut u8, cap: usize) -> i32;
    /// Releases a handle; no pointers, so nothing to uphold.
    pub(crate) safe fn close(handle: i32) -> i32;

    #[link_name = "http_send"]
    fn import_http_send(
        method: *const u8,
        method_len: usize,
        url: *const u8,
        url_len: usize,
        headers: *const u8,
        headers_len: usize,
        body: *const u8,
        body_len: usize,
    ) -> i32;
    #[link_name = "http_begin"]
    fn import_http_begin(
        method: *const u8,
        method_len: usize,
        url: *const u8,
        url_len: usize,
        headers: *const u8,
        headers_len: usize,
        body: *const u8,
        body_len: usize,
    ) -> i32;
    /// Waits for an outbound request's head; no pointers.
    pub(crate) safe fn http_end(op: i32) -> i32;
    /// An outbound response's status; no pointers.
    pub(crate) safe fn http_status(resp: i32) -> i32;
    #[link_name = "http_header"]
    fn import_http_header(
        resp: i32,
        name: *const u8,
        name_len: usize,
        buf: *mut u8,
        cap: usize,
    ) -> i32;
    #[link_name = "http_headers"]
    fn import_http_headers(resp: i32, buf: *mut u8, cap: usize) -> i32;
    #[link_name = "http_read"]
    fn import_http_read(resp: i32, buf: *mut u8, cap: usize) -> i32;

    #[link_name = "kv_get"]
    fn import_kv_get(
        store: *const u8,
        store_len: usize,
        key: *const u8,
        key_len: usize,
        buf: *mut u8,
        cap: usize,
    ) -> i32;
    #[link_name = "kv_get_begin"]
    fn import_kv_get_begin(
        store: *const u8,
        store_len: usize,
        key: *const u8,
        key_len: usize,
    ) -> i32;
    #[link_name = "kv_get_end"]
    fn import_kv_get_end(op: i32, buf: *mut u8, cap: usize) -> i32;
    #[link_name = "kv_set"]
    fn import_kv_set(
        store: *const u8,
        store_len: usize,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
        ttl_ms: i64,
    ) -> i32;
    #[link_name = "kv_set_begin"]
    fn import_kv_set_begin(
        store: *const u8,
        store_len: usize,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
        ttl_ms: i64,
    ) -> i32;
    /// Waits for a `kv_set_begin`; no pointers.
    pub(crate) safe fn kv_set_end(op: i32) -> i32;
    #[link_name = "kv_delete"]
    fn import_kv_delete(store: *const u8, store_len: usize, key: *const u8, key_len: usize) -> i32;
    #[link_name = "kv_delete_begin"]
    fn import_kv_delete_begin(
        store: *const u8,
        store_len: usize,
        key: *const u8,
        key_len: usize,
    ) -> i32;
    /// Waits for a `kv_delete_begin`; no pointers.
    pub(crate) safe fn kv_delete_end(op: i32) -> i32;
    #[link_name = "kv_list"]
    fn import_kv_list(
        store: *const u8,
        store_len: usize,
        prefix: *const u8,
        prefix_len: usize,
        buf: *mut u8,
        cap: usize,
    ) -> i32;
    #[link_name = "kv_list_begin"]
    fn import_kv_list_begin(
        store: *const u8,
        store_len: usize,
        prefix: *const u8,
        prefix_len: usize,
    ) -> i32;
    #[link_name = "kv_list_end"]
    fn import_kv_list_end(op: i32, buf: *mut u8, cap: usize) -> i32;

    #[link_name = "file_read"]
    fn import_file_read(
        path: *const u8,
        path_len: usize,
        offset: i64,
        buf: *mut u8,
        cap: usize,
    ) -> i32;
    #[link_name = "file_size"]
    fn import_file_size(path: *const u8, path_len: usize) -> i64;
    #[link_name = "file_read_begin"]
    fn import_file_read_begin(path: *const u8, path_len: usize, offset: i64, len: i32) -> i32;
    #[link_name = "file_read_end"]
    fn import_file_read_end(op: i32, buf: *mut u8, cap: usize) -> i32;
}

/// Writes the method into `buf`; returns its full length.
pub(crate) fn req_method(buf: &mut [u8]) -> i32 {
    // SAFETY: the host writes at most `cap` bytes at `buf`, which this
    // function borrows mutably for the call.
    unsafe { import_req_method(buf.as_mut_ptr(), buf.len().min(MAX_LEN)) }
}

/// Writes the request target into `buf`; returns its full length.
pub(crate) fn req_uri(buf: &mut [u8]) -> i32 {
    // SAFETY: as in `req_method`.
    unsafe { import_req_uri(buf.as_mut_ptr(), buf.len().min(MAX_LEN)) }
}

/// Writes the value of header `name` into `buf`; its full length, or `ABSENT`.
pub(crate) fn req_header(name: &[u8], buf: &mut [u8]) -> i32 {
    // SAFETY: the host reads `name_len` bytes at `name` (a live shared
    // borrow) and writes at most `cap` bytes at `buf` (a live mutable one).
    unsafe {
        import_req_header(
            name.as_ptr(),
            name.len().min(MAX_LEN),
            buf.as_mut_ptr(),
            buf.len().min(MAX_LEN),
        )
    }
}

/// Writes the value of route parameter `name` into `buf`; its full length, or
/// `ABSENT`.
pub(crate) fn req_param(name: &[u8], buf: &mut [u8]) -> i32 {
    // SAFETY: as in `req_header`.
    unsafe {
        import_req_param(
            name.as_ptr(),
            name.len().min(MAX_LEN),
            buf.as_mut_ptr(),
            buf.len().min(MAX_LEN),
        )
    }
}

/// Writes the value of variable `name` into `buf`; its full length, or
/// `ABSENT`.
pub(crate) fn var_get(name: &[u8], buf: &mut [u8]) -> i32 {
    // SAFETY: as in `req_header`.
    unsafe {
        import_var_get(
            name.as_ptr(),
            name.len().min(MAX_LEN),
            buf.as_mut_ptr(),
            buf.len().min(MAX_LEN),
        )
    }
}

/// Reads the next bytes of the request body into `buf`: their count, `0` at
/// the end, negative on error.
pub(crate) fn req_body_read(buf: &mut [u8]) -> i32 {
    // SAFETY: as in `req_method`.
    unsafe { import_req_body_read(buf.as_mut_ptr(), buf.len().min(MAX_LEN)) }
}

/// Appends a response header.
pub(crate) fn resp_header(name: &[u8], value: &[u8]) -> i32 {
    // SAFETY: the host only reads the two borrowed slices.
    unsafe {
        import_resp_header(
            name.as_ptr(),
            name.len().min(MAX_LEN),
            value.as_ptr(),
            value.len().min(MAX_LEN),
        )
    }
}

/// Appends `buf` to the response body; the caller keeps `buf` under
/// [`MAX_LEN`] (the writer does).
pub(crate) fn resp_write(buf: &[u8]) -> i32 {
    // SAFETY: the host only reads the borrowed slice.
    unsafe { import_resp_write(buf.as_ptr(), buf.len().min(MAX_LEN)) }
}

/// Sends a log line at `level` (1 error … 4 debug).
pub(crate) fn log(level: i32, message: &[u8]) {
    // SAFETY: the host only reads the borrowed slice.
    unsafe { import_log(level, message.as_ptr(), message.len().min(MAX_LEN)) }
}

/// Writes the message of this request's latest failed call into `buf`; its
/// full length, or `ABSENT` if no call has failed.
pub(crate) fn error_message(buf: &mut [u8]) -> i32 {
    // SAFETY: as in `req_method`.
    unsafe { import_error_message(buf.as_mut_ptr(), buf.len().min(MAX_LEN)) }
}

/// Sends an outbound request and waits for its head: a response handle, or a
/// negative code. The host copies the four slices during the call.
pub(crate) fn http_send(method: &[u8], url: &[u8], headers: &[u8], body: &[u8]) -> i32 {
    // SAFETY: the host only reads the four borrowed slices, during the call.
    unsafe {
        import_http_send(
            method.as_ptr(),
            method.len().min(MAX_LEN),
            url.as_ptr(),
            url.len().min(MAX_LEN),
            headers.as_ptr(),
            headers.len().min(MAX_LEN),
            body.as_ptr(),
            body.len().min(MAX_LEN),
        )
    }
}

/// Starts an outbound request: an operation handle, or a negative code. The
/// host copies the four slices before it returns, so they need not outlive
/// the call.
pub(crate) fn http_begin(method: &[u8], url: &[u8], headers: &[u8], body: &[u8]) -> i32 {
    // SAFETY: as in `http_send`.
    unsafe {
        import_http_begin(
            method.as_ptr(),
            method.len().min(MAX_LEN),
            url.as_ptr(),
            url.len().min(MAX_LEN),
            headers.as_ptr(),
            headers.len().min(MAX_LEN),
            body.as_ptr(),
            body.len().min(MAX_LEN),
        )
    }
}

/// Writes response header `name` into `buf`; its full length, or `ABSENT`.
pub(crate) fn http_header(resp: i32, name: &[u8], buf: &mut [u8]) -> i32 {
    // SAFETY: as in `req_header`.
    unsafe {
        import_http_header(
            resp,
            name.as_ptr(),
            name.len().min(MAX_LEN),
            buf.as_mut_ptr(),
            buf.len().min(MAX_LEN),
        )
    }
}

/// Writes every response header, `name: value\n` each, into `buf`; the
/// block's full length.
pub(crate) fn http_headers(resp: i32, buf: &mut [u8]) -> i32 {
    // SAFETY: as in `req_method`.
    unsafe { import_http_headers(resp, buf.as_mut_ptr(), buf.len().min(MAX_LEN)) }
}

/// Reads the next bytes of a response body into `buf`: their count, `0` at
/// the end, negative on error.
pub(crate) fn http_read(resp: i32, buf: &mut [u8]) -> i32 {
    // SAFETY: as in `req_method`.
    unsafe { import_http_read(resp, buf.as_mut_ptr(), buf.len().min(MAX_LEN)) }
}

/// Writes the value of `key` in `store` into `buf`; its full length, or a
/// negative code (`ABSENT` for no such key).
pub(crate) fn kv_get(store: &[u8], key: &[u8], buf: &mut [u8]) -> i32 {
    // SAFETY: the host reads the two shared borrows and writes at most `cap`
    // bytes at `buf`, a live mutable borrow.
    unsafe {
        import_kv_get(
            store.as_ptr(),
            store.len().min(MAX_LEN),
            key.as_ptr(),
            key.len().min(MAX_LEN),
            buf.as_mut_ptr(),
            buf.len().min(MAX_LEN),
        )
    }
}

/// Starts reading `key` in `store`: an operation handle, or a negative code.
pub(crate) fn kv_get_begin(store: &[u8], key: &[u8]) -> i32 {
    // SAFETY: the host only reads the borrowed slices, during the call.
    unsafe {
        import_kv_get_begin(
            store.as_ptr(),
            store.len().min(MAX_LEN),
            key.as_ptr(),
            key.len().min(MAX_LEN),
        )
    }
}

/// Waits for a `kv_get_begin` and writes the value into `buf`: its full
/// length (kept by the host while longer than `buf`), or a negative code.
pub(crate) fn kv_get_end(op: i32, buf: &mut [u8]) -> i32 {
    // SAFETY: as in `req_method`.
    unsafe { import_kv_get_end(op, buf.as_mut_ptr(), buf.len().min(MAX_LEN)) }
}

/// Sets `key` in `store` to `value`, expiring after `ttl_ms` (never if `<= 0`).
pub(crate) fn kv_set(store: &[u8], key: &[u8], value: &[u8], ttl_ms: i64) -> i32 {
    // SAFETY: the host only reads the borrowed slices, during the call.
    unsafe {
        import_kv_set(
            store.as_ptr(),
            store.len().min(MAX_LEN),
            key.as_ptr(),
            key.len().min(MAX_LEN),
            value.as_ptr(),
            value.len().min(MAX_LEN),
            ttl_ms,
        )
    }
}

/// Starts a `kv_set`: an operation handle, or a negative code.
pub(crate) fn kv_set_begin(store: &[u8], key: &[u8], value: &[u8], ttl_ms: i64) -> i32 {
    // SAFETY: the host only reads the borrowed slices, during the call.
    unsafe {
        import_kv_set_begin(
            store.as_ptr(),
            store.len().min(MAX_LEN),
            key.as_ptr(),
            key.len().min(MAX_LEN),
            value.as_ptr(),
            value.len().min(MAX_LEN),
            ttl_ms,
        )
    }
}

/// Deletes `key` from `store`: `OK` if it existed, `ABSENT` if not.
pub(crate) fn kv_delete(store: &[u8], key: &[u8]) -> i32 {
    // SAFETY: the host only reads the borrowed slices, during the call.
    unsafe {
        import_kv_delete(
            store.as_ptr(),
            store.len().min(MAX_LEN),
            key.as_ptr(),
            key.len().min(MAX_LEN),
        )
    }
}

/// Starts a `kv_delete`: an operation handle, or a negative code.
pub(crate) fn kv_delete_begin(store: &[u8], key: &[u8]) -> i32 {
    // SAFETY: the host only reads the borrowed slices, during the call.
    unsafe {
        import_kv_delete_begin(
            store.as_ptr(),
            store.len().min(MAX_LEN),
            key.as_ptr(),
            key.len().min(MAX_LEN),
        )
    }
}

/// Writes the keys of `store` that start with `prefix`, each followed by
/// `\n`, into `buf`; the list's full length.
pub(crate) fn kv_list(store: &[u8], prefix: &[u8], buf: &mut [u8]) -> i32 {
    // SAFETY: as in `kv_get`.
    unsafe {
        import_kv_list(
            store.as_ptr(),
            store.len().min(MAX_LEN),
            prefix.as_ptr(),
            prefix.len().min(MAX_LEN),
            buf.as_mut_ptr(),
            buf.len().min(MAX_LEN),
        )
    }
}

/// Starts a `kv_list`: an operation handle, or a negative code.
pub(crate) fn kv_list_begin(store: &[u8], prefix: &[u8]) -> i32 {
    // SAFETY: the host only reads the borrowed slices, during the call.
    unsafe {
        import_kv_list_begin(
            store.as_ptr(),
            store.len().min(MAX_LEN),
            prefix.as_ptr(),
            prefix.len().min(MAX_LEN),
        )
    }
}

/// Waits for a `kv_list_begin`; as `kv_get_end`.
pub(crate) fn kv_list_end(op: i32, buf: &mut [u8]) -> i32 {
    // SAFETY: as in `req_method`.
    unsafe { import_kv_list_end(op, buf.as_mut_ptr(), buf.len().min(MAX_LEN)) }
}

/// Reads file `path` from `offset` into `buf`: the count, `0` at or after
/// the end, or a negative code.
pub(crate) fn file_read(path: &[u8], offset: i64, buf: &mut [u8]) -> i32 {
    // SAFETY: the host reads `path` (a shared borrow) and writes at most
    // `cap` bytes at `buf` (a live mutable one).
    unsafe {
        import_file_read(
            path.as_ptr(),
            path.len().min(MAX_LEN),
            offset,
            buf.as_mut_ptr(),
            buf.len().min(MAX_LEN),
        )
    }
}

/// The size of file `path` in bytes, or a negative code.
pub(crate) fn file_size(path: &[u8]) -> i64 {
    // SAFETY: the host only reads the borrowed slice, during the call.
    unsafe { import_file_size(path.as_ptr(), path.len().min(MAX_LEN)) }
}

/// Starts reading up to `len` bytes of `path` from `offset`: an operation
/// handle, or a negative code.
pub(crate) fn file_read_begin(path: &[u8], offset: i64, len: i32) -> i32 {
    // SAFETY: the host only reads the borrowed slice, during the call.
    unsafe { import_file_read_begin(path.as_ptr(), path.len().min(MAX_LEN), offset, len) }
}

/// Waits for a `file_read_begin`; as `kv_get_end` (the count read, kept by
/// the host while longer than `buf`).
pub(crate) fn file_read_end(op: i32, buf: &mut [u8]) -> i32 {
    // SAFETY: as in `req_method`.
    unsafe { import_file_read_end(op, buf.as_mut_ptr(), buf.len().min(MAX_LEN)) }
}

/// Logs a panic's message; called from the panic hook.
pub(crate) fn log_panic(message: &str) {
    log(crate::log::Level::Error as i32, message.as_bytes());
}

/// Ends the module with a trap, which the runtime reports as a failed
/// request (or an aborted body, once the head is sent).
pub(crate) fn trap() -> ! {
    core::arch::wasm32::unreachable()
}
