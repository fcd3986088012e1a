//! Checks both example components must pass, WASI 0.2 (`wasi-hello`) and
//! WASI 0.3 (`wasi-p3-hello`): they share their endpoints, so one check
//! serves `tests/tests/components.rs` and `tests/tests/components_p3.rs`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use http_body_util::BodyExt;

use crate::{
    Load, TestServer, WebRoot, component_bytes, eventually, first_chunk, replace_atomically,
    test_config,
};

const DEADLINE: Duration = Duration::from_secs(20);

/// `{prefix}/stream?chunks=2&ms=2000`: the first chunk reaches the client
/// long before the guest writes the second, which comes after its sleep.
pub async fn streams_before_finishing(server: &TestServer, prefix: &str) {
    // Compile first, so the timing is of running.
    let hello = server.get(&format!("{prefix}/hello")).await;
    assert_eq!(hello.status, StatusCode::OK, "{}", hello.text());
    let start = Instant::now();
    let path = format!("{prefix}/stream?chunks=2&ms=2000");
    let response = server.open(Method::GET, &path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let first = tokio::time::timeout(DEADLINE, first_chunk(&mut body))
        .await
        .expect("a first chunk");
    let first_at = start.elapsed();
    assert_eq!(&first[..], b"chunk 0\n");
    assert!(
        first_at < Duration::from_millis(1500),
        "first chunk after {first_at:?}"
    );
    let rest = body.collect().await.expect("the rest").to_bytes();
    assert_eq!(&rest[..], b"chunk 1\n");
    assert!(start.elapsed() >= Duration::from_millis(2000));
}

/// `{prefix}/grow?mib=N` under the test configuration's 16 MiB limit: 4 MiB
/// is served, 32 MiB fails with `500`, and the next request works.
pub async fn memory_stays_under_the_limit(server: &TestServer, prefix: &str) {
    let reply = server.get(&format!("{prefix}/grow?mib=4")).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.text(), "grew 4 MiB\n");
    let reply = server.get(&format!("{prefix}/grow?mib=32")).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let reply = server.get(&format!("{prefix}/grow?mib=4")).await;
    assert_eq!(reply.status, StatusCode::OK);
}

/// Serves `root` with a disk cache, then again after a restart: `path`
/// answers `hello, world` both times, and the second start compiles nothing
/// (its status page says the code came from the disk cache).
pub async fn a_restart_is_served_from_the_disk_cache(root: WebRoot, path: &str) {
    let cache = tempfile::tempdir().unwrap();
    let mut config = test_config(root.path());
    config.cache_dir = Some(cache.path().join("wasmlet"));
    config.status_path = Some("/_status".into());

    let first = TestServer::start_config(config.clone()).await;
    assert_eq!(first.get(path).await.text(), "hello, world\n");
    assert_eq!(first.stats.compiles(), 1);
    drop(first);

    let second = TestServer::start_config(config).await;
    assert_eq!(second.get(path).await.text(), "hello, world\n");
    assert_eq!(second.stats.compiles(), 0, "the restart compiled again");
    let page = second.get("/_status").await.text();
    assert!(page.contains("\"source\": \"disk cache\""), "{page}");
}

/// With room for one instance (`max_instances = 1` on `server`), a request
/// to `holding` (which takes a while) and a hello at once: exactly one of
/// the two gets `503` with `Retry-After: 1`, the other is served, and the
/// next hello works.
pub async fn past_the_instance_limit_one_gets_503(
    server: Arc<TestServer>,
    prefix: &str,
    holding: &str,
) {
    let hello_path = format!("{prefix}/hello");
    assert_eq!(server.get(&hello_path).await.status, StatusCode::OK);
    let holder = {
        let server = server.clone();
        let path = format!("{prefix}/{holding}");
        tokio::spawn(async move { server.get(&path).await })
    };
    assert!(eventually(DEADLINE, || server.stats.live_instances() == 1).await);
    let hello = server.get(&hello_path).await;
    let holder = holder.await.unwrap();
    // One instance fits: the holder has it, so hello is refused. (Should
    // hello win the race for the slot, the holder is; either way exactly
    // one of the two gets 503.)
    let (refused, served) = if hello.status == StatusCode::SERVICE_UNAVAILABLE {
        (hello, holder)
    } else {
        (holder, hello)
    };
    assert_eq!(
        refused.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        refused.text()
    );
    assert_eq!(refused.header("retry-after"), Some("1"));
    assert_eq!(served.status, StatusCode::OK, "{}", served.text());
    assert_eq!(server.get(&hello_path).await.status, StatusCode::OK);
}

/// The built component `name` with a custom section appended: the same code
/// as another version of the file (a new content hash), as a rebuild would
/// give.
pub fn component_version(name: &str, n: u32) -> Vec<u8> {
    let mut bytes = component_bytes(name);
    let section = b"wasmlet-test-version";
    let payload = n.to_le_bytes();
    let size = 1 + section.len() + payload.len();
    assert!(size < 128 && section.len() < 128, "one-byte LEB128 sizes");
    bytes.push(0); // custom section
    bytes.push(size as u8);
    bytes.push(section.len() as u8);
    bytes.extend_from_slice(section);
    bytes.extend_from_slice(&payload);
    bytes
}

/// Five new versions of the component `name`, mounted at `mount` in `root`,
/// each written over the last while four clients `GET path` (answered
/// `hello, world`) back to back: each version compiles once and goes live,
/// and no request fails.
pub async fn replacing_under_load_fails_no_request(
    root: WebRoot,
    mount: &str,
    name: &str,
    path: &'static str,
) {
    let root = root.bytes(mount, component_version(name, 0));
    let file = root.path().join(mount);
    let server = Arc::new(TestServer::start(root).await);
    assert_eq!(server.get(path).await.text(), "hello, world\n");

    let load = Load::start(&server, 4, path, |reply| {
        reply.status == StatusCode::OK && reply.text() == "hello, world\n"
    });
    for version in 1..=5 {
        replace_atomically(&file, component_version(name, version));
        // Each version compiles once and is live before the next.
        let compiles = u64::from(version) + 1;
        assert!(
            eventually(DEADLINE, || server.stats.compiles() == compiles).await,
            "version {version} never compiled"
        );
    }
    let before = load.served();
    assert!(eventually(DEADLINE, || load.served() > before + 10).await);
    let failures = load.stop().await;
    assert!(failures.is_empty(), "failed responses: {failures:?}");
    assert_eq!(server.stats.compiles(), 6);
}
