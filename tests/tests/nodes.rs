//! The `wasmlet` binary as separate processes: two nodes sharing state
//! through a real Redis server, the 500-waiting-requests case on two worker
//! threads, and a broken `wasmlet.toml` stopping the start.

use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use wasmlet_tests::peers::{ServerProcess, Upstream, wasmlet_binary};
use wasmlet_tests::redis::RedisServer;
use wasmlet_tests::{WebRoot, fixtures_dir};

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build_http()
}

async fn call(
    client: &HttpClient,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = client
        .request(request)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e:?}"));
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_sharing_a_redis_store_see_each_others_writes() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let config = format!(
        "[kv]\nstores = [\"shared\"]\n\n[stores.shared]\nbackend = \"redis\"\nurl = \"{}\"\nprefix = \"nodes-test:\"\n",
        redis.url()
    );
    // Two web roots, as on two machines: only the store is shared.
    let roots: Vec<WebRoot> = (0..2)
        .map(|_| {
            WebRoot::new()
                .fixture("kv.wat", "cap_kv.wat")
                .file("wasmlet.toml", &config)
        })
        .collect();
    let nodes: Vec<ServerProcess> = roots
        .iter()
        .map(|r| ServerProcess::start(r.path(), &["--workers", "1"]))
        .collect();
    let client = client();
    let kv = |node: usize, op: &'static str, key: &'static str, body: &'static str| {
        let url = nodes[node].url("/kv");
        let client = client.clone();
        async move {
            call(
                &client,
                Method::POST,
                &url,
                &[("x-op", op), ("x-key", key), ("x-store", "shared")],
                body,
            )
            .await
        }
    };
    assert_eq!(
        kv(0, "set", "greeting", "from node 0").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        kv(1, "get", "greeting", "").await,
        (StatusCode::OK, "from node 0".to_owned())
    );
    assert_eq!(
        kv(1, "set", "greeting", "from node 1").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(kv(0, "get", "greeting", "").await.1, "from node 1");
    assert_eq!(kv(1, "set", "other", "x").await.0, StatusCode::NO_CONTENT);
    assert_eq!(kv(0, "list", "", "").await.1, "greeting\nother\n");
    assert_eq!(
        kv(0, "delete", "greeting", "").await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(kv(1, "get", "greeting", "").await.0, StatusCode::NOT_FOUND);
    assert_eq!(kv(0, "ttl", "brief", "x").await.0, StatusCode::NO_CONTENT);
    let deadline = Instant::now() + Duration::from_secs(5);
    while kv(1, "get", "brief", "").await.0 != StatusCode::NOT_FOUND {
        assert!(
            Instant::now() < deadline,
            "the TTL never expired on the other node"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_requests_waiting_on_a_200ms_upstream_finish_in_seconds_on_two_workers() {
    let up = Upstream::answering("ok\n", Duration::from_millis(200)).await;
    let root = WebRoot::new().fixture("fetch.wat", "cap_fetch.wat").file(
        "wasmlet.toml",
        &format!(
            "[http]\nallow = [\"http://127.0.0.1:{}\"]\n",
            up.addr().port()
        ),
    );
    let node = ServerProcess::start(root.path(), &["--workers", "2"]);
    let client = client();
    let url = node.url("/fetch");
    let target = up.url("/slow");
    // Compile first, so the measurement is the waiting alone.
    let warm = call(&client, Method::GET, &url, &[("x-url", &target)], "").await;
    assert_eq!(warm, (StatusCode::OK, "ok\n".to_owned()));

    let started = Instant::now();
    let requests: Vec<_> = (0..500)
        .map(|_| {
            let (client, url, target) = (client.clone(), url.clone(), target.clone());
            tokio::spawn(async move {
                call(&client, Method::GET, &url, &[("x-url", &target)], "").await
            })
        })
        .collect();
    for request in requests {
        let (status, body) = request.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let took = started.elapsed();
    eprintln!("500 concurrent requests on a 200 ms upstream, --workers 2: {took:?}");
    // Serially this is 100 s; blocking a worker per wait, 50 s.
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_broken_wasmlet_toml_stops_the_start_naming_file_line_and_key() {
    let root = WebRoot::new().fixture("hello.wat", "hello.wat").file(
        "api/wasmlet.toml",
        "[limits]\nrequest-timeout = \"1s\"\n\n[http]\nallow = [\"ftp://files.example.com\"]\n",
    );
    assert!(fixtures_dir().join("hello.wat").exists());
    let out = Command::new(wasmlet_binary())
        .arg("serve")
        .arg(root.path())
        .args(["--listen", "127.0.0.1:0", "--no-disk-cache"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let file = root.path().join("api/wasmlet.toml");
    let want = format!("{}:5:10: http.allow:", file.display());
    assert!(stderr.contains(&want), "want {want:?} in:\n{stderr}");
    assert!(stderr.contains("ftp"), "{stderr}");
}
