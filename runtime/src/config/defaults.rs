//! Every default and fixed bound of the server, with the reason for its
//! value: the one place the CLI's `--help`, the README's "Limits and
//! defaults" table and the code take them from.

use std::path::PathBuf;
use std::time::Duration;

/// Longest log line kept from a guest; the rest of it is cut and the line
/// marked ` …`, so one call cannot write more than this.
pub const MAX_LOG_LINE: usize = 4096;

/// Default wall-clock budget for one request, from accept to the guest's
/// return. Generous enough for a handler that waits on slow upstreams, short
/// enough that a stuck guest frees its instance within a minute.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Default cap on one instance's linear memory. A handler is a request-sized
/// program; 64 MiB fits a Rust handler that buffers a few MiB, and keeps 1,000
/// concurrent instances within a small server's RAM.
pub const DEFAULT_MAX_MEMORY: u64 = 64 << 20;

/// Default number of guest instances alive at once. Each waiting request holds
/// one, so this bounds memory under load; past it, requests get `503`.
pub const DEFAULT_MAX_INSTANCES: u32 = 1_000;

/// Default time a graceful shutdown waits for in-flight requests.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// Handler file operations (`file_read`, `file_size`) running at once, across
/// the process. Each runs on one of tokio's 512 blocking threads; a read that
/// the kernel never finishes (a hung network mount) holds its thread, so this
/// many at most can be stuck, and static files and compiles keep the rest.
/// More waiting operations wait for a free one, within their request's
/// timeout.
pub const MAX_FILE_OPERATIONS: usize = 64;

/// Largest disk-cache entry read or written. Compiled code is a few times the
/// size of its module, so this leaves room for a handler near the default
/// `--max-module-size`, while a stray huge file in the cache directory is a
/// miss instead of a read that exhausts memory.
pub const MAX_CACHE_ENTRY_SIZE: u64 = 1 << 30;

/// Default cap on the disk cache's compiled code, all entries together.
/// Compiled code is a few times its module's size, so 1 GiB holds thousands
/// of typical handlers (tens to hundreds of KiB each) and a few hundred big
/// ones; past it the least recently used entries are evicted.
pub const DEFAULT_CACHE_MAX_SIZE: u64 = 1 << 30;

/// How old a disk-cache temporary file must be before a starting server
/// removes it as left behind by a crash. Another server sharing the directory
/// may be writing one right now; a write takes seconds and keeps the file's
/// modification time fresh, so anything untouched for this long is dead.
pub const STALE_CACHE_TEMP_AGE: Duration = Duration::from_secs(10 * 60);

/// How long the process waits, after the graceful shutdown, for blocking
/// threads still busy (a compile, a read stuck in the kernel) before it exits
/// without them. Their work is abandoned: a compile's cache entry is written
/// whole or not at all.
pub const BLOCKING_EXIT_GRACE: Duration = Duration::from_secs(1);

/// Default largest handler file: a generous Rust handler is a few hundred
/// KiB, a big one a few MiB; 64 MiB leaves room for text `.wat` files and
/// embedded data while keeping a stray multi-gigabyte file from being
/// compiled (which costs memory and minutes of CPU).
pub const DEFAULT_MAX_MODULE_SIZE: u64 = 64 << 20;

/// Default size from which a handler's first version is compiled by the
/// baseline tier (Winch) while Cranelift optimises it in the background.
/// Cranelift takes about 2.5 s per MiB of wasm on one core of this machine
/// kind (a 1.3 MB module: 3.3 s), Winch a fraction of that; below 1 MiB
/// Cranelift's own first request stays within a couple of seconds, and a
/// second compile of the same code would only cost CPU.
pub const DEFAULT_BASELINE_ABOVE: u64 = 1 << 20;

/// Default longest build of a `.rs` source handler. A first build compiles
/// the SDK and the handler's dependencies (under a minute on two cores); a
/// rebuild takes seconds. Past it the build is stopped and the handler fails
/// to load, so a runaway build script cannot hold a compile slot forever.
pub const DEFAULT_BUILD_TIMEOUT: Duration = Duration::from_secs(300);

/// Default time a client has to send a complete request head, counted from
/// the accept for a connection's first request (so a connection that never
/// sends a byte, or sends a bare HTTP/2 preface, is closed then) and from the
/// end of the previous response for the next one on a kept-alive HTTP/1.1
/// connection. hyper's own default; a real client sends its head in one
/// packet, so only a slowloris client is cut.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Default number of requests waiting for a guest execution slot when all
/// `--max-concurrency` slots are busy. Short on purpose: it absorbs a burst
/// one tenth the size of the default cap, and past it a client learns at once
/// (`503` with `Retry-After`) instead of holding a socket in a long line.
pub const DEFAULT_MAX_QUEUE: u32 = 100;

/// Default longest wait in that queue before the request gets `503`. A guest
/// usually finishes in milliseconds, so a slot that has not freed within a
/// second means the server is overloaded, not briefly busy; it matches the
/// `Retry-After: 1` the client gets.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);

/// Default number of open connections on the main listener. Past it the
/// server stops accepting (new clients wait in the kernel's listen queue)
/// until one closes, so the connections it has keep being served. Above the
/// 5,000 connections the benchmark drives; keep it under the process's
/// open-file limit (`ulimit -n`).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10_000;

/// Default largest request head (request line and headers), in bytes.
/// Larger gets `431`. Room for big cookies and tokens (nginx allows about
/// the same), small enough that a connection's read buffer stays small. For
/// HTTP/1.1 it is hyper's read buffer limit (which is also why it cannot be
/// below [`MIN_HEADER_SIZE`]); for HTTP/2 it is the advertised
/// `SETTINGS_MAX_HEADER_LIST_SIZE`. hyper also refuses more than 100 header
/// fields in one HTTP/1.1 request with `431`.
pub const DEFAULT_MAX_HEADER_SIZE: u32 = 32 << 10;

/// The smallest `--max-header-size`: hyper's HTTP/1.1 read buffer cannot be
/// smaller.
pub const MIN_HEADER_SIZE: u32 = 8 << 10;

/// The largest `--max-header-size`: a head bigger than this is an attack, not
/// a request.
pub const MAX_HEADER_SIZE: u32 = 1 << 20;

/// Default most header fields in a handler's response. Near the request
/// side's number (hyper refuses more than 100 fields in a request head), and
/// under the 100 fields hyper's own client parses in a response, with room
/// for the fields the server adds (`date`, `content-length` or
/// `transfer-encoding`): a head past that fails in common clients anyway.
/// Past it `resp_header` returns `TOO_LARGE`.
pub const DEFAULT_MAX_RESPONSE_HEADERS: u32 = 96;

/// Default largest response head a handler may build, in bytes: each field
/// counts its name, its value and 4 bytes of framing (`: ` and CRLF), as on
/// the HTTP/1.1 wire. The same as [`DEFAULT_MAX_HEADER_SIZE`] for a request:
/// the fields are host memory held for the whole request, so a guest capped
/// at 64 MiB of linear memory must not make the host hold far more.
pub const DEFAULT_MAX_RESPONSE_HEADER_SIZE: u32 = 32 << 10;

/// Default bytes of log one request's guest may write (the `log` import, or a
/// component's stdout and stderr). Past it, its lines are dropped and one
/// line at the request's end says how many. 64 KiB is sixteen maximal lines
/// or hundreds of ordinary ones.
pub const DEFAULT_MAX_LOG_BYTES: u64 = 64 << 10;

/// Default log lines one request's guest may write; past it, as for
/// [`DEFAULT_MAX_LOG_BYTES`].
pub const DEFAULT_MAX_LOG_LINES: u32 = 1_000;

/// Default bytes of guest log per second for one handler, across all its
/// requests (a token bucket holding one second's worth). A handler answering
/// a thousand requests a second with a 200-byte line each stays well under
/// it; a handler made to flood the log writes at most this much a second,
/// however many clients drive it.
pub const DEFAULT_LOG_RATE: u64 = 1 << 20;

/// Default largest request body, in bytes. A request whose `Content-Length`
/// says more gets `413` before any guest code runs; a chunked body's
/// `req_body_read` returns `BODY` once it passes the limit. A quarter of the
/// default `--max-memory`, so a handler that buffers the whole body fits.
pub const DEFAULT_MAX_BODY_SIZE: u64 = 16 << 20;

/// Default longest wait for the next piece of a request body. A client that
/// stops sending mid-body makes the guest's `req_body_read` return `BODY`
/// after this, instead of holding the guest until the request timeout. Any
/// live client sends something within seconds.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The debounce window watcher uses unless they have a reason not to: long
/// enough to join the writes of one save or copy, short enough that a
/// deployed handler is live before anyone can reload the page.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(100);

/// How long a new version of a handler file must stay unchanged, and closed
/// by every writer the watcher saw, before it may replace the version being
/// served: a `.wasm` cut at a section boundary is a valid module, so a file
/// caught mid-copy would otherwise serve its prefix. The watcher's debounce
/// window, so a deploy goes live as soon as the watcher reports it.
pub const SETTLE_TIME: Duration = DEFAULT_DEBOUNCE;

/// How long after its last write a file the watcher saw opened for writing
/// still counts as being written, when the close was never reported (the
/// kernel's event queue overflowed): past it the version loads anyway.
pub const OPEN_WRITE_EXPIRY: Duration = Duration::from_secs(60);

/// HTTP/2 streams (requests) one connection may have open at once,
/// advertised as `SETTINGS_MAX_CONCURRENT_STREAMS`. The least RFC 9113
/// recommends, and a tenth of the default `--max-concurrency`, so one
/// connection cannot take the whole server.
pub const HTTP2_MAX_CONCURRENT_STREAMS: u32 = 100;

/// HTTP/2 streams a client may open and reset before the server has accepted
/// them (the "rapid reset" attack, CVE-2023-44487); past it the connection is
/// closed with `GOAWAY ENHANCE_YOUR_CALM`. The `h2` crate's default.
pub const HTTP2_MAX_PENDING_ACCEPT_RESET_STREAMS: usize = 20;

/// HTTP/2 streams the server may reset because the client broke the protocol
/// on them before the connection is closed with `GOAWAY` (CVE-2024-27316 and
/// kin: a client that provokes a reset per stream). hyper's default.
pub const HTTP2_MAX_LOCAL_ERROR_RESET_STREAMS: usize = 1024;

/// How often an idle HTTP/2 connection is pinged, and how long the ping's
/// answer may take: a peer that vanished without closing (a dead NAT entry)
/// is dropped within 40 s instead of holding a connection slot for ever.
pub const HTTP2_KEEP_ALIVE: Duration = Duration::from_secs(20);

/// Default interval between checks of the TLS certificate and key files for
/// a renewal. A check is two `stat` calls; a renewed certificate is usually
/// installed days before the old one expires, so seconds of delay are
/// harmless.
pub const DEFAULT_TLS_RELOAD_INTERVAL: Duration = Duration::from_secs(10);

/// Where the cache lives unless configured otherwise:
/// `$XDG_CACHE_HOME/wasmlet`, else `$HOME/.cache/wasmlet`; `None` when
/// neither variable holds an absolute path.
pub fn default_cache_dir() -> Option<PathBuf> {
    default_cache_dir_from(
        std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

/// [`default_cache_dir`] without the environment, so tests need not change it.
fn default_cache_dir_from(
    xdg_cache_home: Option<PathBuf>,
    home: Option<PathBuf>,
) -> Option<PathBuf> {
    // The XDG base directory spec says to ignore relative paths: they would
    // resolve against whatever directory the server happens to start in.
    let absolute = |p: &PathBuf| p.is_absolute();
    xdg_cache_home
        .filter(absolute)
        .or_else(|| home.filter(absolute).map(|home| home.join(".cache")))
        .map(|cache| cache.join("wasmlet"))
}

/// `$XDG_DATA_HOME/wasmlet`, else `~/.local/share/wasmlet`.
pub fn default_data_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|d| d.join("wasmlet"))
}

/// Default listening address: loopback only, so a first `wasmlet serve` is
/// not reachable from other machines until asked.
pub const DEFAULT_LISTEN: std::net::SocketAddr = std::net::SocketAddr::V4(
    std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 8080),
);

/// Default interval of `--watch poll` scans, and the watcher's own polling
/// interval when file system events are unavailable: a second is as soon as
/// a person saving a file looks for the change.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_directory_is_under_xdg_cache_home_else_home() {
        let p = |s: &str| Some(PathBuf::from(s));
        let cases = [
            (p("/xdg"), p("/home/u"), p("/xdg/wasmlet")),
            (None, p("/home/u"), p("/home/u/.cache/wasmlet")),
            (p("relative"), p("/home/u"), p("/home/u/.cache/wasmlet")),
            (p(""), p("/home/u"), p("/home/u/.cache/wasmlet")),
            (None, p(""), None),
            (None, None, None),
        ];
        for (xdg, home, expected) in cases {
            let got = default_cache_dir_from(xdg.clone(), home.clone());
            assert_eq!(got, expected, "XDG_CACHE_HOME={xdg:?} HOME={home:?}");
        }
    }
}
