//! What is on disk that should not be read as it looks: FIFOs where a file
//! was expected (in a `[files]` mount, in the web root, as a disk-cache
//! entry), huge and leftover files in the disk cache, and a store that a
//! reload would put inside the web root.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use wasmlet_tests::peers::ServerProcess;
use wasmlet_tests::{
    Reply, TestServer, WebRoot, eventually, logs, peak_rss_bytes, says, test_config,
};

/// The cap_file fixture answers `600 + |code|`; `-2` is INVALID.
const INVALID: u16 = 602;

fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("run mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// `GET url` with `headers`; fails the test if no answer comes within 30 s.
async fn get(client: &HttpClient, url: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut request = Request::builder().method(Method::GET).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::new())).unwrap();
    let answer = async {
        let response = client.request(request).await.expect("an answer");
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .unwrap_or_else(|_| panic!("{url}: no answer within 30 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifos_in_a_mount_and_as_static_files_are_refused_at_once_and_pin_no_thread() {
    let mount = tempfile::tempdir().unwrap();
    mkfifo(&mount.path().join("pipe"));
    let root = WebRoot::new()
        .fixture("file.wat", "cap_file.wat")
        .file("hello.txt", "static\n")
        .file(
            "wasmlet.toml",
            &format!(
                "[files]\nmounts = {{ data = \"{}\" }}\n",
                mount.path().display()
            ),
        );
    mkfifo(&root.path().join("pipe.txt"));
    std::fs::create_dir(root.path().join("dir")).unwrap();
    mkfifo(&root.path().join("dir/index.html"));
    // A request timeout short enough that a stuck read shows as a 504 soon.
    let mut server = ServerProcess::start(
        root.path(),
        &["--request-timeout", "2s", "--shutdown-timeout", "2s"],
    );
    let client = Client::builder(TokioExecutor::new()).build_http();

    // More than tokio's 512 blocking threads: each stuck read used to keep one.
    let started = Instant::now();
    for i in 0..700 {
        let (status, body) = get(&client, &server.url("/file"), &[("x-path", "data/pipe")]).await;
        assert_eq!(status.as_u16(), INVALID, "read {i}: {body}");
        assert!(body.contains("not a regular file"), "read {i}: {body}");
        for fifo in ["/pipe.txt", "/dir/"] {
            let (status, _) = get(&client, &server.url(fifo), &[]).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{fifo} ({i})");
        }
    }
    eprintln!(
        "700 FIFO reads and 1400 FIFO static requests took {:?}",
        started.elapsed()
    );

    // Static files and new handlers still need the blocking pool.
    let (status, body) = get(&client, &server.url("/hello.txt"), &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "static\n"));
    std::fs::write(root.path().join("new.wat"), says("new handler")).unwrap();
    let (status, body) = get(&client, &server.url("/new"), &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "new handler"));

    // Within its 2 s shutdown timeout, and a generous margin for the exit.
    let exit = server.terminate(Duration::from_secs(10));
    let exit = exit.unwrap_or_else(|| panic!("SIGTERM did not stop it:\n{}", server.log()));
    assert!(exit.success(), "{exit}");
}

/// The only `.cwasm` entry in `dir`, once there is one.
async fn the_entry(dir: &Path) -> PathBuf {
    let entries = || -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|read| {
                read.filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        eventually(Duration::from_secs(20), || entries().len() == 1).await,
        "expected one cache entry in {}: {:?}",
        dir.display(),
        entries()
    );
    entries().remove(0)
}

async fn hello_within_30s(server: &TestServer) -> Reply {
    tokio::time::timeout(Duration::from_secs(30), server.get("/hello"))
        .await
        .expect("/hello answered within 30 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_or_huge_file_as_a_cache_entry_is_recompiled_and_replaced_and_stale_temporaries_go()
{
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("wasmlet");
    let root = WebRoot::new().file("hello.wat", &says("hello"));
    let start = || {
        let mut config = test_config(root.path());
        config.cache_dir = Some(dir.clone());
        TestServer::start_config(config)
    };
    let first = start().await;
    assert_eq!(hello_within_30s(&first).await.status, StatusCode::OK);
    let entry = the_entry(&dir).await;
    drop(first);

    // A crashed write's leftover, and one another server is writing now.
    let crashed = dir.join(".crashed.tmp");
    let writing = dir.join(".writing.tmp");
    std::fs::write(&crashed, b"half an entry").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&crashed)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    std::fs::write(&writing, b"half an entry").unwrap();

    // A sparse file past the 1 GiB entry limit: reading it whole would take
    // that much memory.
    std::fs::File::options()
        .write(true)
        .open(&entry)
        .unwrap()
        .set_len((1 << 30) + 1)
        .unwrap();
    let peak_before = peak_rss_bytes();
    let huge = start().await;
    assert!(
        !crashed.exists(),
        "the crashed write's temporary file is left"
    );
    assert!(writing.exists(), "a fresh temporary file was removed");
    assert_eq!(hello_within_30s(&huge).await.status, StatusCode::OK);
    assert_eq!(huge.stats.compiles(), 1, "the huge entry was not a miss");
    let grew = peak_rss_bytes().saturating_sub(peak_before);
    assert!(grew < 256 << 20, "peak memory grew by {grew} bytes");
    assert!(
        eventually(Duration::from_secs(20), || std::fs::metadata(&entry)
            .is_ok_and(|m| m.is_file() && m.len() < 1 << 30))
        .await,
        "the huge entry was not replaced"
    );
    drop(huge);

    std::fs::remove_file(&entry).unwrap();
    mkfifo(&entry);
    let fifo = start().await;
    let reply = hello_within_30s(&fifo).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(fifo.stats.compiles(), 1, "the FIFO entry was not a miss");
    assert!(
        eventually(Duration::from_secs(20), || std::fs::symlink_metadata(
            &entry
        )
        .is_ok_and(|m| m.is_file()))
        .await,
        "the FIFO entry was not replaced by a regular file"
    );
    drop(fifo);
    // And the replacement is a hit for the next start.
    let next = start().await;
    assert_eq!(hello_within_30s(&next).await.status, StatusCode::OK);
    assert_eq!(next.stats.compiles(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_puts_a_store_in_the_web_root_through_a_missing_data_dir_keeps_the_old_configuration()
 {
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::copy(
        wasmlet_tests::fixtures_dir().join("cap_kv.wat"),
        root.join("kv.wat"),
    )
    .unwrap();
    let outside = base.path().join("outside/other.sqlite");
    let good = format!(
        "[kv]\nstores = [\"other\"]\n\n[stores.other]\nbackend = \"sqlite\"\npath = \"{}\"\n",
        outside.display()
    );
    std::fs::write(root.join("wasmlet.toml"), &good).unwrap();
    let mut config = test_config(&root);
    // Missing until a store needs it; the good store's path is absolute.
    config.data_dir = Some(base.path().join("missing"));
    let server = TestServer::start_config(config).await;
    let kv = |store: &'static str, op: &'static str| {
        let server = &server;
        async move {
            let headers = [("x-op", op), ("x-key", "k"), ("x-store", store)];
            server
                .send_with(Method::POST, "/kv", &headers, Bytes::from_static(b"v"))
                .await
        }
    };
    assert_eq!(kv("other", "set").await.status, StatusCode::NO_CONTENT);

    let leak =
        format!("{good}\n[stores.leak]\nbackend = \"sqlite\"\npath = \"../root/leak.sqlite\"\n")
            .replace("stores = [\"other\"]", "stores = [\"other\", \"leak\"]");
    wasmlet_tests::replace_atomically(&root.join("wasmlet.toml"), leak);
    let refused = || {
        let logs = logs();
        logs.lines()
            .any(|l| l.contains("did not reload") && l.contains("leak.sqlite"))
    };
    assert!(
        eventually(Duration::from_secs(20), refused).await,
        "no refused reload in the log:\n{}",
        logs()
    );
    assert!(
        !root.join("leak.sqlite").exists(),
        "the store was created in the web root"
    );
    assert!(!base.path().join("missing").exists());
    assert_eq!(
        server.get("/leak.sqlite").await.status,
        StatusCode::NOT_FOUND
    );
    // The previous configuration still serves: `other` works, `leak` is not granted.
    assert_eq!(kv("other", "get").await.text(), "v");
    assert_eq!(kv("leak", "get").await.status.as_u16(), 606);
}
