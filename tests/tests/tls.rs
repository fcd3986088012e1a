//! Inbound TLS end to end: a real rustls client against a server started
//! with a certificate from a CA made for each test (rcgen), HTTP/1.1 and
//! HTTP/2 picked by ALPN, certificates renewed under load, broken renewals,
//! and the hostile-client limits on the TLS listener.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::io::AsyncWriteExt;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use wasmlet::config::TlsConfig;
use wasmlet_tests::{TestServer, WebRoot, closed_within, eventually, log_contains, says};

/// A CA made for one test, the files the server reads its certificate and
/// key from, and a client that trusts only that CA.
struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    dir: tempfile::TempDir,
    roots: Arc<RootCertStore>,
}

/// A leaf certificate for `localhost` as the server's files hold it.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl Pki {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "wasmlet test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        Self {
            ca,
            dir: tempfile::tempdir().unwrap(),
            roots: Arc::new(roots),
        }
    }

    /// A new key and a certificate for it, signed by the CA.
    fn leaf(&self) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&key, &self.ca)
            .unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    fn cert_path(&self) -> PathBuf {
        self.dir.path().join("fullchain.pem")
    }

    fn key_path(&self) -> PathBuf {
        self.dir.path().join("privkey.pem")
    }

    /// Installs `leaf` as the server's pair, each file replaced whole.
    fn install(&self, leaf: &Leaf) {
        write_atomically(&self.key_path(), &leaf.key_pem);
        write_atomically(&self.cert_path(), &leaf.cert_pem);
    }

    /// The server's TLS settings, checking the files every 50 ms.
    fn tls_config(&self) -> TlsConfig {
        TlsConfig {
            reload_interval: Duration::from_millis(50),
            ..TlsConfig::new(self.cert_path(), self.key_path())
        }
    }

    fn client(&self, alpn: &[&[u8]]) -> TlsConnector {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // A resumed session shows the certificate of the session it resumes,
        // not the one the server holds now; every connection here does a
        // full handshake, as a new client would.
        config.resumption = rustls::client::Resumption::disabled();
        TlsConnector::from(Arc::new(config))
    }
}

fn write_atomically(path: &Path, contents: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// What one HTTPS request over a new connection saw.
struct Seen {
    status: StatusCode,
    version: Version,
    body: String,
    /// The server's leaf certificate.
    cert: CertificateDer<'static>,
}

/// A client connection over TLS, speaking what ALPN chose.
enum Conn {
    H1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

impl Conn {
    async fn open(
        addr: SocketAddr,
        connector: &TlsConnector,
    ) -> anyhow::Result<(Self, CertificateDer<'static>)> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await?;
        let (_, session) = tls.get_ref();
        let cert = session.peer_certificates().unwrap()[0].clone();
        let h2 = session.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        let conn = if h2 {
            let (send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await?;
            tokio::spawn(conn);
            Self::H2(send)
        } else {
            let (send, conn) = hyper::client::conn::http1::handshake(io).await?;
            tokio::spawn(conn);
            Self::H1(send)
        };
        Ok((conn, cert))
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<(StatusCode, Version, String)> {
        let mut request = Request::get(format!("https://localhost{path}"))
            .body(Empty::new())
            .unwrap();
        let response = match self {
            Self::H1(send) => {
                // HTTP/1.1 names the host in a header (a request without one
                // is a 400); HTTP/2 carries it as `:authority`.
                request.headers_mut().insert(
                    http::header::HOST,
                    http::HeaderValue::from_static("localhost"),
                );
                send.ready().await?;
                send.send_request(request).await?
            }
            Self::H2(send) => {
                send.ready().await?;
                send.send_request(request).await?
            }
        };
        let (status, version) = (response.status(), response.version());
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, version, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// `GET path` on a new connection.
async fn get(addr: SocketAddr, connector: &TlsConnector, path: &str) -> anyhow::Result<Seen> {
    let (mut conn, cert) = Conn::open(addr, connector).await?;
    let (status, version, body) = conn.get(path).await?;
    Ok(Seen {
        status,
        version,
        body,
        cert,
    })
}

/// Whether new connections get `leaf` within 10 seconds.
async fn serves(addr: SocketAddr, connector: &TlsConnector, leaf: &Leaf) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if get(addr, connector, "/hello").await.unwrap().cert == leaf.der {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

async fn start(pki: &Pki, adjust: impl FnOnce(&mut wasmlet::Config)) -> TestServer {
    let root = WebRoot::new().file("hello.wat", &says("hello over tls\n"));
    let tls = pki.tls_config();
    TestServer::start_with(root, move |config| {
        config.tls = Some(tls);
        adjust(config);
    })
    .await
}

#[tokio::test]
async fn https_serves_http2_and_http1_as_alpn_chooses() {
    let pki = Pki::new();
    let leaf = pki.leaf();
    pki.install(&leaf);
    let server = start(&pki, |_| {}).await;

    for (alpn, want) in [
        (&[b"h2".as_slice(), b"http/1.1"][..], Version::HTTP_2),
        (&[b"http/1.1".as_slice()][..], Version::HTTP_11),
        // No ALPN at all: HTTP/1.1, as for any TLS client that predates it.
        (&[][..], Version::HTTP_11),
    ] {
        let seen = get(server.addr, &pki.client(alpn), "/hello").await.unwrap();
        assert_eq!(seen.status, StatusCode::OK, "{alpn:?}");
        assert_eq!(seen.version, want, "{alpn:?}");
        assert_eq!(seen.body, "hello over tls\n");
        assert_eq!(seen.cert, leaf.der);
    }

    // The listener speaks only TLS: a cleartext request gets no HTTP answer.
    let answer = server
        .raw(
            b"GET /hello HTTP/1.1\r\nhost: x\r\n\r\n",
            Duration::from_secs(10),
        )
        .await;
    assert!(!answer.contains("hello over tls"), "{answer}");
}

#[tokio::test]
async fn a_renewed_certificate_serves_new_connections_while_no_request_fails() {
    let pki = Pki::new();
    let old = pki.leaf();
    pki.install(&old);
    let server = Arc::new(start(&pki, |_| {}).await);
    let connector = pki.client(&[b"h2", b"http/1.1"]);

    // A connection opened before the renewal, used across it.
    let (mut kept, kept_cert) = Conn::open(server.addr, &connector).await.unwrap();
    assert_eq!(kept_cert, old.der);

    // Clients opening a new connection per request, two per protocol.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    for alpn in [&b"h2"[..], b"http/1.1", b"h2", b"http/1.1"] {
        let (stop, served, addr) = (stop.clone(), served.clone(), server.addr);
        let connector = pki.client(&[alpn]);
        clients.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match get(addr, &connector, "/hello").await {
                    Ok(seen) if seen.status == StatusCode::OK => {}
                    Ok(seen) => failures.push(format!("{} {}", seen.status, seen.body)),
                    Err(e) => failures.push(e.to_string()),
                }
                served.fetch_add(1, Ordering::Relaxed);
            }
            failures
        }));
    }
    assert!(
        eventually(Duration::from_secs(10), || served.load(Ordering::Relaxed)
            >= 20)
        .await,
        "the load never got going"
    );

    let new = pki.leaf();
    pki.install(&new);
    assert!(
        serves(server.addr, &pki.client(&[b"h2"]), &new).await,
        "new connections never got the renewed certificate"
    );
    let at_renewal = served.load(Ordering::Relaxed);
    assert!(
        eventually(Duration::from_secs(10), || {
            served.load(Ordering::Relaxed) >= at_renewal + 20
        })
        .await,
        "the load stalled after the renewal"
    );

    stop.store(true, Ordering::Relaxed);
    let mut failures = Vec::new();
    for client in clients {
        failures.extend(client.await.unwrap());
    }
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    let (status, _, body) = kept.get("/hello").await.unwrap();
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "hello over tls\n"),
        "a connection open across the renewal keeps working"
    );
    assert!(log_contains("TLS certificate reloaded", Duration::from_secs(5)).await);
}

#[tokio::test]
async fn a_broken_renewal_is_refused_and_the_previous_certificate_keeps_serving() {
    let pki = Pki::new();
    let old = pki.leaf();
    pki.install(&old);
    let server = start(&pki, |_| {}).await;
    let connector = pki.client(&[b"h2"]);

    // Half a renewal: a new certificate with the old key.
    let other = pki.leaf();
    write_atomically(&pki.cert_path(), &other.cert_pem);
    let mismatch = format!(
        "the TLS key {} does not belong to the certificate {}",
        pki.key_path().display(),
        pki.cert_path().display()
    );
    assert!(log_contains(&mismatch, Duration::from_secs(10)).await);
    let seen = get(server.addr, &connector, "/hello").await.unwrap();
    assert_eq!((seen.status, &seen.cert), (StatusCode::OK, &old.der));

    // A truncated certificate file.
    write_atomically(&pki.cert_path(), "-----BEGIN CERTIFICATE-----\nMIIB\n");
    let malformed = format!(
        "{} is not a PEM certificate chain",
        pki.cert_path().display()
    );
    assert!(log_contains(&malformed, Duration::from_secs(10)).await);
    let seen = get(server.addr, &connector, "/hello").await.unwrap();
    assert_eq!((seen.status, &seen.cert), (StatusCode::OK, &old.der));

    // Finishing the renewal loads it.
    pki.install(&other);
    assert!(
        serves(server.addr, &connector, &other).await,
        "the good pair that followed was never loaded"
    );
}

#[tokio::test]
async fn a_missing_or_broken_certificate_at_start_is_one_line_naming_the_file() {
    let pki = Pki::new();
    let leaf = pki.leaf();
    let root = tempfile::tempdir().unwrap();
    let start = |tls: TlsConfig| {
        let config = wasmlet::Config {
            tls: Some(tls),
            ..wasmlet_tests::test_config(root.path())
        };
        wasmlet::Server::new(config).err().unwrap().to_string()
    };

    let missing = start(pki.tls_config());
    assert!(
        missing.starts_with(&format!(
            "cannot read the TLS cert {}: No such file",
            pki.cert_path().display()
        )),
        "{missing}"
    );

    std::fs::write(pki.cert_path(), &leaf.cert_pem).unwrap();
    let missing_key = start(pki.tls_config());
    assert!(
        missing_key.contains(&format!("TLS key {}", pki.key_path().display()))
            && missing_key.contains("--tls-key"),
        "{missing_key}"
    );

    std::fs::write(pki.key_path(), "not a key\n").unwrap();
    let junk_key = start(pki.tls_config());
    assert!(
        junk_key.starts_with(&format!(
            "{} is not a usable PEM private key",
            pki.key_path().display()
        )),
        "{junk_key}"
    );

    for error in [missing, missing_key, junk_key] {
        assert!(!error.contains('\n'), "{error}");
    }
}

#[tokio::test]
async fn a_stalled_tls_handshake_holds_a_connection_slot_until_the_header_timeout() {
    let pki = Pki::new();
    pki.install(&pki.leaf());
    let server = start(&pki, |config| {
        config.max_connections = 1;
        config.header_timeout = Duration::from_secs(1);
    })
    .await;

    // A TLS record header announcing a ClientHello that never comes.
    let mut stalled = server.connect().await;
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();

    let (addr, connector) = (server.addr, pki.client(&[b"h2"]));
    let waiting = tokio::spawn(async move { get(addr, &connector, "/hello").await });

    let closed = closed_within(&mut stalled, Duration::from_secs(20)).await;
    assert!(
        closed.is_some(),
        "the stalled handshake outlived the header timeout"
    );
    assert!(
        !waiting.is_finished(),
        "a second client was served while the stalled handshake held the only slot"
    );
    let seen = waiting.await.unwrap().unwrap();
    assert_eq!(seen.status, StatusCode::OK);
}

#[tokio::test]
async fn plain_http_on_the_redirect_listener_is_sent_to_the_same_url_over_https() {
    let pki = Pki::new();
    pki.install(&pki.leaf());
    let root = WebRoot::new().file("hello.wat", &says("hello over tls\n"));
    let config = wasmlet::Config {
        tls: Some(pki.tls_config()),
        header_timeout: Duration::from_secs(1),
        ..wasmlet_tests::test_config(root.path())
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https = listener.local_addr().unwrap();
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap();
    let server = wasmlet::Server::new(config).unwrap().with_redirect(plain);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(listener, async move {
        let _ = stopped.await;
    }));

    let ask = |request: &'static str| async move {
        let mut stream = tokio::net::TcpStream::connect(plain_addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::io::AsyncReadExt::read_to_end(&mut stream, &mut answer);
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&answer).to_lowercase()
    };
    let moved =
        ask("POST /hello?x=1 HTTP/1.1\r\nhost: localhost:80\r\nconnection: close\r\n\r\n").await;
    assert!(moved.starts_with("http/1.1 308"), "{moved}");
    assert!(
        moved.contains(&format!(
            "location: https://localhost:{}/hello?x=1\r\n",
            https.port()
        )),
        "{moved}"
    );
    let no_host = ask("GET / HTTP/1.0\r\n\r\n").await;
    assert!(no_host.starts_with("http/1.0 400"), "{no_host}");

    // The location works, and the redirect listener closes silent clients too.
    let seen = get(https, &pki.client(&[b"h2"]), "/hello").await.unwrap();
    assert_eq!(seen.body, "hello over tls\n");
    let mut silent = tokio::net::TcpStream::connect(plain_addr).await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(20))
            .await
            .is_some()
    );

    let _ = stop.send(());
    running.await.unwrap().unwrap();
}
