//! The servers wasmlet is compared with. Each runs in a child process (the
//! benchmark binary started again with `--serve KIND`), like the `wasmlet`
//! binary, so its memory and threads can be read from `/proc` and it does
//! not share an address space with the load generator.
//!
//! - `native`: hyper on tokio with 2 worker threads, the same stack as
//!   wasmlet without WebAssembly. `/hello` answers `hello\n`; `/sleep` waits
//!   100 ms on a tokio timer, then answers `slept\n`.
//! - `pool`: the classic synchronous server, [`POOL_THREADS`] threads, each
//!   blocking in `accept`, then serving that connection's requests one after
//!   another: read a request, `thread::sleep(100 ms)`, write the response.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Threads of the thread-per-request server.
pub(crate) const POOL_THREADS: usize = 20;

/// The handlers' wait.
pub(crate) const WAIT: Duration = Duration::from_millis(100);

/// Listen backlog for both servers: what a server expecting bursts of
/// connections asks for (nginx asks for 511; the kernel caps it at
/// `net.core.somaxconn`, 4,096). wasmlet asks for 4,096; the report counts
/// the drops.
const BACKLOG: u32 = 1024;

/// Apache's `KeepAliveTimeout`: an idle keep-alive connection is closed,
/// freeing its thread.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Apache's `MaxKeepAliveRequests`: a connection is closed after this many
/// requests, so one client cannot hold a thread forever.
const POOL_MAX_REQUESTS: u32 = 100;

/// Runs server `kind` until stdin closes (the parent exited or dropped its
/// handle). Prints `listening PORT` on stdout once the port accepts.
pub(crate) fn serve(kind: &str) -> ! {
    let listener = listen().expect("listen on 127.0.0.1");
    let port = listener.local_addr().expect("a local address").port();
    // Held until exit: the native server's runtime.
    let _runtime = match kind {
        "native" => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a tokio runtime");
            let listener = {
                let _entered = runtime.enter();
                tokio::net::TcpListener::from_std(listener).expect("a tokio listener")
            };
            runtime.spawn(native(listener));
            Some(runtime)
        }
        "pool" => {
            listener
                .set_nonblocking(false)
                .expect("a blocking listener");
            pool(listener);
            None
        }
        other => panic!("unknown server kind {other}"),
    };
    println!("listening {port}");
    let _ = std::io::stdout().flush();
    // Exit when the parent goes away: stdin is a pipe only it holds.
    let mut line = String::new();
    while std::io::stdin()
        .lock()
        .read_line(&mut line)
        .is_ok_and(|n| n > 0)
    {}
    std::process::exit(0);
}

/// A listener on a free loopback port with a [`BACKLOG`]-long queue (std's
/// `bind` has no backlog parameter; tokio's socket builder has).
fn listen() -> std::io::Result<TcpListener> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let _entered = runtime.enter();
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))?;
    socket.listen(BACKLOG)?.into_std()
}

async fn native(listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(
                |request: hyper::Request<hyper::body::Incoming>| async move {
                    let body: &'static [u8] = if request.uri().path() == "/sleep" {
                        tokio::time::sleep(WAIT).await;
                        b"slept\n"
                    } else {
                        b"hello\n"
                    };
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(body))))
                },
            );
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn pool(listener: TcpListener) {
    for _ in 0..POOL_THREADS {
        let listener = listener.try_clone().expect("a listener clone");
        std::thread::spawn(move || {
            loop {
                if let Ok((stream, _)) = listener.accept() {
                    let _ = pool_connection(stream);
                }
            }
        });
    }
}

/// Serves one keep-alive connection until the client closes it, it idles
/// past the timeout, or it reaches the request cap.
fn pool_connection(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(POOL_IDLE_TIMEOUT))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    for served in 1..=POOL_MAX_REQUESTS {
        // The request head: the load generator sends GETs without a body.
        let mut head_lines = 0;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Ok(());
            }
            head_lines += 1;
            if line == "\r\n" || line == "\n" {
                break;
            }
        }
        if head_lines < 2 {
            return Ok(());
        }
        std::thread::sleep(WAIT);
        let connection = if served == POOL_MAX_REQUESTS {
            "close"
        } else {
            "keep-alive"
        };
        write!(
            writer,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 6\r\nconnection: {connection}\r\n\r\nslept\n"
        )?;
    }
    Ok(())
}
