//! Capabilities through the real server: outbound HTTP against real upstream
//! servers on 127.0.0.1, key-value on a real SQLite file, files on disk, and
//! the `wasmlet.toml` files that grant them — denied by default, inherited,
//! overridden, and reloaded.
//!
//! The fixtures answer `600 + |code|` with `error_message` as the body when a
//! call fails, so `606` is DENIED, `607` TIMEOUT, `608` TOO_LARGE.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use wasmlet_tests::peers::Upstream;
use wasmlet_tests::{TestServer, WebRoot, log_contains};

const DENIED: u16 = 606;
const TIMEOUT: u16 = 607;
const TOO_LARGE: u16 = 608;
const FAILED: u16 = 609;

/// A server over `root` with a data directory of its own (kept alive by the
/// returned guard).
async fn serve(root: WebRoot) -> (TestServer, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_owned();
    let server = TestServer::start_with(root, |c| c.data_dir = Some(dir)).await;
    (server, data)
}

async fn fetch(server: &TestServer, path: &str, url: &str) -> wasmlet_tests::Reply {
    server
        .send_with(Method::GET, path, &[("x-url", url)], Bytes::new())
        .await
}

#[tokio::test]
async fn an_allowed_upstream_answers_through_the_handler() {
    let up = Upstream::answering("from upstream\n", Duration::ZERO).await;
    let root = WebRoot::new().fixture("fetch.wat", "cap_fetch.wat").file(
        "wasmlet.toml",
        &format!(
            "[http]\nallow = [\"http://127.0.0.1:{}\"]\n",
            up.addr().port()
        ),
    );
    let (server, _data) = serve(root).await;
    let reply = fetch(&server, "/fetch", &up.url("/x")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "from upstream\n");
    assert_eq!(up.connections(), 1);
}

#[tokio::test]
async fn a_post_carries_its_method_and_body_upstream() {
    let up = Upstream::start(|asked| async move {
        let text = format!(
            "{} {} {}",
            asked.method,
            asked.target,
            String::from_utf8_lossy(&asked.body)
        );
        Response::new(Full::new(Bytes::from(text)))
    })
    .await;
    let root = WebRoot::new().fixture("fetch.wat", "cap_fetch.wat").file(
        "wasmlet.toml",
        &format!(
            "[http]\nallow = [\"http://127.0.0.1:{}\"]\n",
            up.addr().port()
        ),
    );
    let (server, _data) = serve(root).await;
    let url = up.url("/items?x=1");
    let reply = server
        .send_with(
            Method::POST,
            "/fetch",
            &[("x-url", &url), ("x-method", "PUT")],
            "payload",
        )
        .await;
    assert_eq!(reply.text(), "PUT /items?x=1 payload");
}

#[tokio::test]
async fn without_a_grant_every_host_is_denied_and_the_upstream_sees_no_connection() {
    let up = Upstream::answering("never\n", Duration::ZERO).await;
    let (server, _data) = serve(WebRoot::new().fixture("fetch.wat", "cap_fetch.wat")).await;
    let reply = fetch(&server, "/fetch", &up.url("/")).await;
    assert_eq!(reply.status.as_u16(), DENIED, "{}", reply.text());
    assert!(reply.text().contains("[http] allow"), "{}", reply.text());
    assert_eq!(up.connections(), 0);
}

#[tokio::test]
async fn a_host_not_in_the_allow_list_is_denied_and_the_upstream_sees_no_connection() {
    let allowed = Upstream::answering("allowed\n", Duration::ZERO).await;
    let other = Upstream::answering("never\n", Duration::ZERO).await;
    let root = WebRoot::new().fixture("fetch.wat", "cap_fetch.wat").file(
        "wasmlet.toml",
        &format!(
            "[http]\nallow = [\"http://127.0.0.1:{}\"]\n",
            allowed.addr().port()
        ),
    );
    let (server, _data) = serve(root).await;
    let reply = fetch(&server, "/fetch", &other.url("/")).await;
    assert_eq!(reply.status.as_u16(), DENIED, "{}", reply.text());
    assert_eq!(other.connections(), 0);
    assert!(
        log_contains("is not in the HTTP allow-list", Duration::from_secs(5)).await,
        "a denial is logged for the operator"
    );
}

#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_denied_unless_private_addresses_are_allowed() {
    let up = Upstream::answering("local\n", Duration::ZERO).await;
    let port = up.addr().port();
    let url = format!("http://localhost:{port}/");
    let root = WebRoot::new()
        .fixture("strict/fetch.wat", "cap_fetch.wat")
        .file(
            "strict/wasmlet.toml",
            &format!("[http]\nallow = [\"http://localhost:{port}\"]\n"),
        )
        .fixture("open/fetch.wat", "cap_fetch.wat")
        .file(
            "open/wasmlet.toml",
            &format!("[http]\nallow = [\"http://localhost:{port}\"]\nallow-private = true\n"),
        );
    let (server, _data) = serve(root).await;
    let denied = fetch(&server, "/strict/fetch", &url).await;
    assert_eq!(denied.status.as_u16(), DENIED, "{}", denied.text());
    assert!(denied.text().contains("allow-private"), "{}", denied.text());
    assert_eq!(up.connections(), 0);
    let allowed = fetch(&server, "/open/fetch", &url).await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.text());
    assert_eq!(allowed.text(), "local\n");
}

/// A TLS upstream on 127.0.0.1 answering `body`, with a certificate for
/// `localhost` issued by a CA made for this test; returns its port, the CA's
/// certificate (PEM), and how many TLS handshakes it completed.
async fn tls_upstream(body: &'static str) -> (u16, String, Arc<AtomicUsize>) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "wasmlet test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counted = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, counted) = (acceptor.clone(), counted.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate ends here.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let service = hyper::service::service_fn(|_| async {
                    Ok::<_, std::convert::Infallible>(Response::new(Full::new(Bytes::from_static(
                        body.as_bytes(),
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (port, ca.pem(), handshakes)
}

#[tokio::test]
async fn https_reaches_an_upstream_whose_ca_is_granted_and_fails_on_one_that_is_not() {
    let (port, ca_pem, handshakes) = tls_upstream("over tls\n").await;
    // The CA file lives outside the web root, as an operator's would.
    let certs = tempfile::tempdir().unwrap();
    let ca_file = certs.path().join("test-ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let grant = format!("[http]\nallow = [\"https://localhost:{port}\"]\nallow-private = true\n");
    let root = WebRoot::new()
        .fixture("trusted/fetch.wat", "cap_fetch.wat")
        .file(
            "trusted/wasmlet.toml",
            &format!("{grant}ca-file = \"{}\"\n", ca_file.display()),
        )
        .fixture("untrusted/fetch.wat", "cap_fetch.wat")
        .file("untrusted/wasmlet.toml", &grant);
    let (server, _data) = serve(root).await;
    let url = format!("https://localhost:{port}/x");

    let reply = fetch(&server, "/trusted/fetch", &url).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "over tls\n");
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);

    // Without the grant the web PKI roots alone do not trust the test CA:
    // FAILED, naming the certificate, and no handshake completed.
    let refused = fetch(&server, "/untrusted/fetch", &url).await;
    assert_eq!(refused.status.as_u16(), FAILED, "{}", refused.text());
    assert!(
        refused.text().to_lowercase().contains("certificate"),
        "{}",
        refused.text()
    );
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);
    println!(
        "https without the CA granted: {}",
        refused.text().trim_end()
    );
}

#[tokio::test]
async fn a_redirect_to_a_host_not_allowed_is_refused_before_connecting() {
    let target = Upstream::answering("secret\n", Duration::ZERO).await;
    let location = target.url("/secret");
    let redirector = Upstream::start(move |_| {
        let location = location.clone();
        async move {
            Response::builder()
                .status(302)
                .header("location", location)
                .body(Full::new(Bytes::new()))
                .unwrap()
        }
    })
    .await;
    let root = WebRoot::new().fixture("fetch.wat", "cap_fetch.wat").file(
        "wasmlet.toml",
        &format!(
            "[http]\nallow = [\"http://127.0.0.1:{}\"]\n",
            redirector.addr().port()
        ),
    );
    let (server, _data) = serve(root).await;
    let reply = fetch(&server, "/fetch", &redirector.url("/go")).await;
    assert_eq!(reply.status.as_u16(), DENIED, "{}", reply.text());
    assert_eq!(redirector.connections(), 1);
    assert_eq!(target.connections(), 0);
}

#[tokio::test]
async fn a_slow_upstream_times_out_and_a_large_body_is_too_large() {
    let slow = Upstream::answering("late\n", Duration::from_secs(3)).await;
    let big: &'static str = Box::leak("x".repeat(10_000).into_boxed_str());
    let large = Upstream::answering(big, Duration::ZERO).await;
    let root = WebRoot::new().fixture("fetch.wat", "cap_fetch.wat").file(
        "wasmlet.toml",
        &format!(
            "[http]\nallow = [\"http://127.0.0.1:{}\", \"http://127.0.0.1:{}\"]\ntimeout = \"300ms\"\nmax-response-size = \"4KiB\"\n",
            slow.addr().port(),
            large.addr().port()
        ),
    );
    let (server, _data) = serve(root).await;
    let started = Instant::now();
    let reply = fetch(&server, "/fetch", &slow.url("/")).await;
    assert_eq!(reply.status.as_u16(), TIMEOUT, "{}", reply.text());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let reply = fetch(&server, "/fetch", &large.url("/")).await;
    assert_eq!(reply.status.as_u16(), TOO_LARGE, "{}", reply.text());
}

#[tokio::test]
async fn three_300ms_calls_begun_together_take_about_300ms_not_900() {
    let up = Upstream::answering("ok\n", Duration::from_millis(300)).await;
    let root = WebRoot::new().fixture("fanout.wat", "cap_fanout.wat").file(
        "wasmlet.toml",
        &format!(
            "[http]\nallow = [\"http://127.0.0.1:{}\"]\n",
            up.addr().port()
        ),
    );
    let (server, _data) = serve(root).await;
    let (a, b, c) = (up.url("/a"), up.url("/b"), up.url("/c"));
    let headers = [
        ("x-url-1", a.as_str()),
        ("x-url-2", b.as_str()),
        ("x-url-3", c.as_str()),
    ];
    // Once to compile and warm up the connection path, then measured.
    let reply = server
        .send_with(Method::GET, "/fanout", &headers, Bytes::new())
        .await;
    assert_eq!(reply.text(), "3 ok\n");
    let started = Instant::now();
    let reply = server
        .send_with(Method::GET, "/fanout", &headers, Bytes::new())
        .await;
    let took = started.elapsed();
    assert_eq!(reply.text(), "3 ok\n");
    eprintln!("fan-out of three 300 ms upstream calls took {took:?}");
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(
        took < Duration::from_millis(750),
        "ran one after another: {took:?}"
    );
}

async fn kv(
    server: &TestServer,
    path: &str,
    op: &str,
    key: &str,
    body: &str,
) -> wasmlet_tests::Reply {
    server
        .send_with(
            Method::POST,
            path,
            &[("x-op", op), ("x-key", key)],
            body.to_owned(),
        )
        .await
}

#[tokio::test]
async fn the_embedded_store_sets_gets_deletes_lists_and_expires_keys() {
    let root = WebRoot::new()
        .fixture("kv.wat", "cap_kv.wat")
        .file("wasmlet.toml", "[kv]\nstores = [\"default\"]\n");
    let (server, _data) = serve(root).await;
    assert_eq!(
        kv(&server, "/kv", "get", "user:1", "").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        kv(&server, "/kv", "set", "user:1", "ann").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        kv(&server, "/kv", "set", "user:2", "bob").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        kv(&server, "/kv", "set", "other", "x").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(kv(&server, "/kv", "get", "user:1", "").await.text(), "ann");
    assert_eq!(
        kv(&server, "/kv", "set", "user:1", "anna").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(kv(&server, "/kv", "get", "user:1", "").await.text(), "anna");
    assert_eq!(
        kv(&server, "/kv", "list", "user:", "").await.text(),
        "user:1\nuser:2\n"
    );
    assert_eq!(
        kv(&server, "/kv", "delete", "user:2", "").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        kv(&server, "/kv", "delete", "user:2", "").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        kv(&server, "/kv", "list", "", "").await.text(),
        "other\nuser:1\n"
    );

    assert_eq!(
        kv(&server, "/kv", "ttl", "brief", "soon gone").await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        kv(&server, "/kv", "get", "brief", "").await.text(),
        "soon gone"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if kv(&server, "/kv", "get", "brief", "").await.status == StatusCode::NOT_FOUND {
            break;
        }
        assert!(Instant::now() < deadline, "a 300 ms key never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !kv(&server, "/kv", "list", "", "")
            .await
            .text()
            .contains("brief")
    );

    let bad = kv(&server, "/kv", "set", "", "x").await;
    assert_eq!(
        bad.status.as_u16(),
        602,
        "an empty key is INVALID: {}",
        bad.text()
    );
}

#[tokio::test]
async fn stores_are_denied_unless_granted_and_values_past_the_limit_are_too_large() {
    let root = WebRoot::new()
        .fixture("kv.wat", "cap_kv.wat")
        .fixture("locked/kv.wat", "cap_kv.wat")
        .file(
            "wasmlet.toml",
            "[kv]\nstores = [\"small\"]\n[stores.small]\nbackend = \"sqlite\"\nmax-value-size = \"8\"\n",
        )
        .file("locked/wasmlet.toml", "[kv]\nstores = []\n");
    let (server, _data) = serve(root).await;
    let small = server
        .send_with(
            Method::POST,
            "/kv",
            &[("x-op", "set"), ("x-key", "k"), ("x-store", "small")],
            "12345678",
        )
        .await;
    assert_eq!(small.status, StatusCode::NO_CONTENT, "{}", small.text());
    let big = server
        .send_with(
            Method::POST,
            "/kv",
            &[("x-op", "set"), ("x-key", "k"), ("x-store", "small")],
            "123456789",
        )
        .await;
    assert_eq!(big.status.as_u16(), TOO_LARGE, "{}", big.text());
    let default = kv(&server, "/kv", "get", "k", "").await;
    assert_eq!(
        default.status.as_u16(),
        DENIED,
        "`default` is not granted here: {}",
        default.text()
    );
    let locked = server
        .send_with(
            Method::GET,
            "/locked/kv",
            &[("x-op", "get"), ("x-key", "k"), ("x-store", "small")],
            Bytes::new(),
        )
        .await;
    assert_eq!(locked.status.as_u16(), DENIED, "{}", locked.text());
    assert!(
        locked.text().contains("locked/wasmlet.toml"),
        "{}",
        locked.text()
    );
}

#[tokio::test]
async fn files_are_readable_inside_the_grant_only() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    let long: String = (0..3000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let root = WebRoot::new()
        .fixture("app/file.wat", "cap_file.wat")
        .fixture("data/handler.wat", "hello.wat")
        .file("data/notes/a.txt", &long)
        .file(
            "app/wasmlet.toml",
            "[files]\nmounts = { data = \"../data\" }\n",
        )
        .fixture("plain/file.wat", "cap_file.wat");
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        root.path().join("data/escape.txt"),
    )
    .unwrap();
    let (server, _data) = serve(root).await;
    let read = |path: &'static str, handler: &'static str| {
        let server = &server;
        async move {
            server
                .send_with(Method::GET, handler, &[("x-path", path)], Bytes::new())
                .await
        }
    };
    let ok = read("data/notes/a.txt", "/app/file").await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert_eq!(ok.text(), long, "read whole, in 1000-byte chunks");
    assert_eq!(
        read("data/notes/missing.txt", "/app/file").await.status,
        StatusCode::NOT_FOUND
    );
    for denied in ["data/escape.txt", "data/handler.wat", "other/a.txt"] {
        let reply = read(denied, "/app/file").await;
        assert_eq!(reply.status.as_u16(), DENIED, "{denied}: {}", reply.text());
    }
    let reply = read("data/../app/wasmlet.toml", "/app/file").await;
    assert_eq!(reply.status.as_u16(), 602, "{}", reply.text());
    let reply = read("data/notes/a.txt", "/plain/file").await;
    assert_eq!(
        reply.status.as_u16(),
        DENIED,
        "no grant above /plain: {}",
        reply.text()
    );
}

#[tokio::test]
async fn a_directory_narrows_its_parent_and_a_handler_table_overrides_its_directory() {
    let up = Upstream::answering("ok\n", Duration::ZERO).await;
    let port = up.addr().port();
    let root = WebRoot::new()
        .fixture("fetch.wat", "cap_fetch.wat")
        .fixture("inner/fetch.wat", "cap_fetch.wat")
        .fixture("inner/deeper/fetch.wat", "cap_fetch.wat")
        .fixture("inner/special.wat", "cap_fetch.wat")
        .file(
            "wasmlet.toml",
            &format!("[http]\nallow = [\"http://127.0.0.1:{port}\"]\n"),
        )
        .file(
            "inner/wasmlet.toml",
            &format!("[http]\nallow = []\n\n[handlers.\"special.wat\"]\nhttp.allow = [\"http://127.0.0.1:{port}\"]\n"),
        );
    let (server, _data) = serve(root).await;
    let url = up.url("/");
    assert_eq!(fetch(&server, "/fetch", &url).await.status, StatusCode::OK);
    assert_eq!(
        fetch(&server, "/inner/fetch", &url).await.status.as_u16(),
        DENIED
    );
    assert_eq!(
        fetch(&server, "/inner/deeper/fetch", &url)
            .await
            .status
            .as_u16(),
        DENIED,
        "inherited from inner/"
    );
    assert_eq!(
        fetch(&server, "/inner/special", &url).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_broken_configuration_edit_keeps_the_previous_one_until_it_is_fixed() {
    let up = Upstream::answering("ok\n", Duration::ZERO).await;
    let port = up.addr().port();
    let good = format!("[http]\nallow = [\"http://127.0.0.1:{port}\"]\n");
    let root = WebRoot::new()
        .fixture("fetch.wat", "cap_fetch.wat")
        .file("wasmlet.toml", &good);
    let config = root.path().join("wasmlet.toml");
    let (server, _data) = serve(root).await;
    let url = up.url("/");
    assert_eq!(fetch(&server, "/fetch", &url).await.status, StatusCode::OK);

    std::fs::write(&config, format!("{good}timeout = \"soon\"\n")).unwrap();
    assert!(
        log_contains("wasmlet.toml:3:11: http.timeout", Duration::from_secs(10)).await,
        "the reload error names file, line, column and key"
    );
    assert_eq!(
        fetch(&server, "/fetch", &url).await.status,
        StatusCode::OK,
        "the previous configuration still serves"
    );

    std::fs::write(&config, "[http]\nallow = []\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while fetch(&server, "/fetch", &url).await.status.as_u16() != DENIED {
        assert!(
            Instant::now() < deadline,
            "the fixed configuration never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_operation_still_pending_when_the_request_ends_is_cancelled() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Set when the upstream's handler future is dropped before finishing:
    /// hyper drops it when the client (wasmlet) closes the connection.
    struct Dropped(Arc<AtomicBool>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let cancelled = Arc::new(AtomicBool::new(false));
    let flag = cancelled.clone();
    let up = Upstream::start(move |_| {
        let guard = Dropped(flag.clone());
        async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            std::mem::forget(guard);
            Response::new(Full::new(Bytes::from_static(b"too late")))
        }
    })
    .await;
    let root = WebRoot::new()
        .fixture("leave.wat", "cap_begin_and_leave.wat")
        .file(
            "wasmlet.toml",
            &format!(
                "[http]\nallow = [\"http://127.0.0.1:{}\"]\n",
                up.addr().port()
            ),
        );
    let (server, _data) = serve(root).await;
    let reply = fetch(&server, "/leave", &up.url("/slow")).await;
    assert_eq!(reply.text(), "left");
    assert!(
        wasmlet_tests::eventually(Duration::from_secs(5), || up.connections() == 1).await,
        "the operation started"
    );
    assert!(
        wasmlet_tests::eventually(Duration::from_secs(5), || cancelled.load(Ordering::SeqCst))
            .await,
        "the upstream request was abandoned when the handler's request ended"
    );
}
