//! Components reach the capabilities core handlers have, on the same grants:
//! `wasi:keyvalue` on the granted stores (shared with core handlers, on
//! SQLite and on Redis), `wasi:config` on the `[variables]`, and read-only
//! `wasi:filesystem` preopens for the `[files]` mounts; without a grant each
//! is an error result, and the request is still answered.
//!
//! The components (`tests/component-fixtures/capabilities`, WASI 0.2, and
//! `capabilities-p3`, WASI 0.3) answer one line per request with what they
//! found: `value V`, `absent`, `count N`, `file TEXT`, or `error E`. The core
//! handler is the `notes` example (`PUT`/`GET /notes?key=K` on the default
//! store).

use std::time::Duration;

use http::{Method, StatusCode};
use wasmlet::capability::kv::{Backend, Store, StoreSettings};
use wasmlet_tests::redis::RedisServer;
use wasmlet_tests::{TestServer, WebRoot, capability_component, log_contains};

/// Where each kind of component is mounted, by its catch-all file name.
const KINDS: [(&str, &str); 2] = [("capabilities", "c2"), ("capabilities_p3", "c3")];

/// `root` with both components, at `/c2/…` and `/c3/…`, and the `notes`
/// core handler at `/notes`.
fn with_handlers(root: WebRoot) -> WebRoot {
    KINDS
        .iter()
        .fold(root, |root, (name, dir)| {
            root.bytes(&format!("{dir}/[...path].wasm"), capability_component(name))
        })
        .sdk_handler("notes.wasm", "notes")
}

/// A server over `root` with a data directory of its own (kept alive by the
/// returned guard).
async fn serve(root: WebRoot) -> (TestServer, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_owned();
    let server = TestServer::start_with(root, |c| c.data_dir = Some(dir)).await;
    (server, data)
}

/// The component's one-line answer to `path`, which must be a `200`.
async fn answer(server: &TestServer, path: &str) -> String {
    let reply = server.get(path).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text());
    reply.text().trim_end().to_owned()
}

/// Notes written by the core handler are read by both components, keys set
/// and counted by the components are read by the core handler, and a
/// counter counts across both kinds.
async fn core_and_components_share_the_default_store(server: &TestServer) {
    let put = server
        .send(Method::PUT, "/notes?key=shared", "from core")
        .await;
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.text());
    for (_, dir) in KINDS {
        assert_eq!(
            answer(server, &format!("/{dir}/kv-get?key=shared")).await,
            "value from core"
        );
        assert_eq!(
            answer(
                server,
                &format!("/{dir}/kv-set?key=from-{dir}&value={dir}-was-here")
            )
            .await,
            "set"
        );
        let note = server.get(&format!("/notes?key=from-{dir}")).await;
        assert_eq!(note.text(), format!("{dir}-was-here"));
    }
    assert_eq!(answer(server, "/c2/kv-incr?key=hits&by=2").await, "count 2");
    assert_eq!(answer(server, "/c3/kv-incr?key=hits&by=3").await, "count 5");
    assert_eq!(server.get("/notes?key=hits").await.text(), "5");
    assert_eq!(
        answer(server, "/c2/kv-get?store=&key=hits").await,
        "value 5"
    );
    assert_eq!(answer(server, "/c3/kv-get?key=nothing").await, "absent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_and_a_core_handler_share_the_embedded_sqlite_store() {
    let root = with_handlers(WebRoot::new()).file("wasmlet.toml", "[kv]\nstores = [\"default\"]\n");
    let (server, _data) = serve(root).await;
    core_and_components_share_the_default_store(&server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_and_a_core_handler_share_a_redis_store() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let config = format!(
        "[kv]\nstores = [\"default\"]\n\n[stores.default]\nbackend = \"redis\"\nurl = \"{}\"\nprefix = \"shared:\"\n",
        redis.url()
    );
    let root = with_handlers(WebRoot::new()).file("wasmlet.toml", &config);
    let (server, _data) = serve(root).await;
    core_and_components_share_the_default_store(&server).await;
    // The keys are on the Redis server, where another node would see them.
    let settings = StoreSettings::new(
        "check",
        Backend::Redis {
            url: redis.url(),
            prefix: "shared:".into(),
        },
    );
    let store = Store::open(&settings).await.unwrap();
    assert_eq!(store.get("hits").await.unwrap(), Some(b"5".to_vec()));
    assert_eq!(
        store.get("from-c3").await.unwrap(),
        Some(b"c3-was-here".to_vec())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_value_limits_and_errors_are_the_stores_own_as_error_results() {
    let root = with_handlers(WebRoot::new()).file(
        "wasmlet.toml",
        "[kv]\nstores = [\"default\"]\n[stores.default]\nbackend = \"sqlite\"\nmax-value-size = \"8\"\n",
    );
    let (server, _data) = serve(root).await;
    for (_, dir) in KINDS {
        assert_eq!(
            answer(&server, &format!("/{dir}/kv-set?key=k&value=123456789")).await,
            "error other: the value is 9 bytes, over this store's limit of 8 bytes (max-value-size)"
        );
        let empty_key = answer(&server, &format!("/{dir}/kv-get?key=")).await;
        assert!(
            empty_key.starts_with("error other: invalid key: it is empty"),
            "{empty_key}"
        );
        assert_eq!(
            answer(&server, &format!("/{dir}/kv-set?key=word&value=hello")).await,
            "set"
        );
        let not_a_counter = answer(&server, &format!("/{dir}/kv-incr?key=word")).await;
        assert_eq!(
            not_a_counter,
            "error other: the value of `word` is not a counter (decimal digits of a number below 2^64)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_answers_the_directory_variables_and_a_handler_table_overrides_them() {
    let mut root = with_handlers(WebRoot::new()).file(
        "wasmlet.toml",
        "[variables]\ngreeting = \"hi\"\nregion = { value = \"eu\", secret = true }\n",
    );
    for (name, _) in KINDS {
        root = root
            .bytes(
                &format!("special/{name}/[...path].wasm"),
                capability_component(name),
            )
            .file(
                &format!("special/{name}/wasmlet.toml"),
                "[handlers.\"[...path].wasm\".variables]\ngreeting = \"hello\"\n",
            );
    }
    let server = TestServer::start(root).await;
    for (name, dir) in KINDS {
        assert_eq!(
            answer(&server, &format!("/{dir}/config?name=greeting")).await,
            "value hi"
        );
        assert_eq!(
            answer(&server, &format!("/{dir}/config?name=region")).await,
            "value eu"
        );
        assert_eq!(
            answer(&server, &format!("/{dir}/config?name=missing")).await,
            "absent"
        );
        assert_eq!(
            answer(&server, &format!("/{dir}/config-all")).await,
            "greeting=hi region=eu"
        );
        let special = format!("/special/{name}");
        assert_eq!(
            answer(&server, &format!("{special}/config?name=greeting")).await,
            "value hello"
        );
        assert_eq!(
            answer(&server, &format!("{special}/config-all")).await,
            "greeting=hello region=eu"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_granted_mount_is_read_only_at_its_name_and_no_path_leads_out_of_it() {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join("sub")).unwrap();
    std::fs::write(data.path().join("report.csv"), "a,b").unwrap();
    std::fs::write(data.path().join("sub/deep.txt"), "deep").unwrap();
    let config = format!(
        "[files]\nmounts = {{ data = \"{}\" }}\n",
        data.path().display()
    );
    let root = with_handlers(WebRoot::new())
        .file("wasmlet.toml", &config)
        .file("secret.txt", "not in the mount");
    let server = TestServer::start(root).await;
    for (_, dir) in KINDS {
        let read = |path: &str| format!("/{dir}/file?path={path}");
        assert_eq!(answer(&server, &read("/data/report.csv")).await, "file a,b");
        assert_eq!(
            answer(&server, &read("data/sub/deep.txt")).await,
            "file deep"
        );
        for outside in [
            "/data/../secret.txt",
            "/data/sub/../../secret.txt",
            "/secret.txt",
            "/etc/passwd",
        ] {
            let refused = answer(&server, &read(outside)).await;
            assert!(refused.starts_with("error "), "{outside}: {refused}");
        }
        assert_eq!(
            answer(&server, &read("/data/missing")).await,
            "error No such file or directory (os error 44)"
        );
    }
    // The same through WASI 0.3's own `wasi:filesystem@0.3.0`.
    let read = |path: &str| format!("/c3/file-p3?path={path}");
    assert_eq!(answer(&server, &read("/data/report.csv")).await, "file a,b");
    assert_eq!(
        answer(&server, &read("/data/sub/deep.txt")).await,
        "file deep"
    );
    assert_eq!(
        answer(&server, &read("/data/../secret.txt")).await,
        "error ErrorCode::NotPermitted"
    );
    assert_eq!(
        answer(&server, &read("/data/missing")).await,
        "error ErrorCode::NoEntry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mount_inside_the_web_root_is_not_preopened_so_its_code_and_configuration_stay_unread() {
    // `data` inside the web root holds a handler and a `wasmlet.toml`, which
    // the files capability withholds and `wasi:filesystem` could not.
    let root = with_handlers(WebRoot::new())
        .file("wasmlet.toml", "[files]\nmounts = { data = \"data\" }\n")
        .file("data/report.csv", "a,b")
        .file("data/wasmlet.toml", "[limits]\n");
    let server = TestServer::start(root).await;
    for (_, dir) in KINDS {
        for path in [
            "/data/report.csv",
            "/data/wasmlet.toml",
            "/data/../wasmlet.toml",
        ] {
            let refused = answer(&server, &format!("/{dir}/file?path={path}")).await;
            assert!(refused.starts_with("error "), "{dir} {path}: {refused}");
        }
    }
    assert!(
        log_contains(
            "overlaps the web root, where wasi:filesystem could read handler code",
            Duration::from_secs(10)
        )
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_grants_each_capability_is_an_error_result_and_the_request_is_answered() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("report.csv"), "a,b").unwrap();
    let granted = format!(
        "[kv]\nstores = [\"default\"]\n[files]\nmounts = {{ data = \"{}\" }}\n",
        data.path().display()
    );
    // A sibling directory is granted; these components are not.
    let root = with_handlers(WebRoot::new()).file("granted/wasmlet.toml", &granted);
    let (server, _data) = serve(root).await;
    for (_, dir) in KINDS {
        assert_eq!(
            answer(&server, &format!("/{dir}/kv-get?key=k")).await,
            "error access-denied"
        );
        assert_eq!(
            answer(&server, &format!("/{dir}/kv-incr?store=other&key=k")).await,
            "error access-denied"
        );
        assert_eq!(
            answer(&server, &format!("/{dir}/file?path=/data/report.csv")).await,
            "error No such file or directory (os error 44)"
        );
        assert_eq!(
            answer(&server, &format!("/{dir}/config?name=greeting")).await,
            "absent"
        );
        assert_eq!(answer(&server, &format!("/{dir}/config-all")).await, "");
    }
    assert_eq!(
        answer(&server, "/c3/file-p3?path=/data/report.csv").await,
        "error no preopen /data"
    );
    // The operator learns which grant is missing, as for a core handler.
    assert!(
        log_contains(
            "denied: the store `other` is not granted to /c3/[...path].wasm",
            Duration::from_secs(10)
        )
        .await
    );
}
