//! Nothing but handlers and content is served: Rust source and manifests,
//! build output, editor backups, keys and databases that end up in a web
//! root answer 404 over HTTP/1.1 and HTTP/2, by name and through a symlink
//! with an innocent name, unless a `wasmlet.toml` publishes their class.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use wasmlet_tests::{TestServer, WebRoot, says};

/// One file per entry of the never-served list, as `wasmlet new` and the
/// usual tools leave them, each holding a marker that must never reach a
/// client.
const NEVER: [&str; 22] = [
    "shop/src/lib.rs",
    "shop/Cargo.toml",
    "shop/Cargo.lock",
    "shop/target/wasm32-unknown-unknown/release/shop.wasm",
    "shop/target/release/build.log",
    "Target/notes.txt",
    "index.html~",
    "#draft.html#",
    "page.swp",
    "page.SWO",
    "site.bak",
    "patch.orig",
    "tls/server.pem",
    "tls/server.KEY",
    "id.p12",
    "id.pfx",
    "kv.sqlite",
    "kv.sqlite-wal",
    "app.DB",
    "cache/0123abcd.cwasm",
    "Upper.WASM",
    "src/main.RS",
];

fn marker(i: usize) -> String {
    format!("never-served-{i}")
}

/// A web root holding every [`NEVER`] file, a symlink to each
/// (`innocent-N.txt`), a servable page and a handler.
fn cluttered_root() -> WebRoot {
    let mut root = WebRoot::new()
        .file("index.html", "welcome")
        .file("hello.wat", &says("hello"));
    for (i, path) in NEVER.iter().enumerate() {
        root = root.file(path, &marker(i));
    }
    for (i, path) in NEVER.iter().enumerate() {
        std::os::unix::fs::symlink(
            root.path().join(path),
            root.path().join(format!("innocent-{i}.txt")),
        )
        .unwrap();
    }
    root
}

/// Percent-encodes what a request target cannot carry as it is (`#`).
fn target(path: &str) -> String {
    format!("/{}", path.replace('#', "%23"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_of_the_list_is_404_over_http1_by_name_and_through_a_symlink() {
    let server = TestServer::start(cluttered_root()).await;
    for (i, path) in NEVER.iter().enumerate() {
        for asked in [target(path), format!("/innocent-{i}.txt")] {
            let reply = server.get(&asked).await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{asked}");
            assert!(!reply.text().contains(&marker(i)), "{asked} leaked");
        }
    }
    // A module cargo built is not a handler either, by any of its names.
    for asked in [
        "/shop/target/wasm32-unknown-unknown/release/shop",
        "/shop/target/wasm32-unknown-unknown/release/shop.wasm",
    ] {
        assert_eq!(
            server.get(asked).await.status,
            StatusCode::NOT_FOUND,
            "{asked}"
        );
    }
    assert_eq!(server.get("/index.html").await.text(), "welcome");
    assert_eq!(server.get("/hello").await.text(), "hello");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_entry_of_the_list_is_404_over_http2_by_name_and_through_a_symlink() {
    let server = TestServer::start(cluttered_root()).await;
    let mut h2 = server.http2().await;
    let mut get = async |path: &str| {
        let request = Request::get(format!("http://{}{path}", server.addr))
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = h2.send_request(request).await.expect("an h2 response");
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    };
    for (i, path) in NEVER.iter().enumerate() {
        for asked in [target(path), format!("/innocent-{i}.txt")] {
            let (status, body) = get(&asked).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{asked}");
            assert!(!body.contains(&marker(i)), "{asked} leaked");
        }
    }
    assert_eq!(
        get("/index.html").await,
        (StatusCode::OK, "welcome".to_owned())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasmlet_toml_publishes_the_classes_it_names_for_its_directory_and_below() {
    let root = WebRoot::new()
        .file(
            "docs/wasmlet.toml",
            "[static]\npublish = [\"rust-source\", \"key\"]\n",
        )
        .file("docs/example.rs", "fn main() {}")
        .file("docs/deeper/more.rs", "fn more() {}")
        .file("docs/ca.pem", "-----BEGIN CERTIFICATE-----")
        .file("docs/Cargo.toml", "[package]")
        .file("docs/private/wasmlet.toml", "[static]\npublish = []\n")
        .file("docs/private/secret.rs", "const KEY: &str = \"x\";")
        .file("outside.rs", "fn outside() {}");
    std::os::unix::fs::symlink(
        root.path().join("outside.rs"),
        root.path().join("docs/alias.txt"),
    )
    .unwrap();
    let server = TestServer::start(root).await;
    for (path, status) in [
        ("/docs/example.rs", StatusCode::OK),
        ("/docs/deeper/more.rs", StatusCode::OK),
        ("/docs/ca.pem", StatusCode::OK),
        // Not a class it names.
        ("/docs/Cargo.toml", StatusCode::NOT_FOUND),
        // A directory below may take it back.
        ("/docs/private/secret.rs", StatusCode::NOT_FOUND),
        // Outside the directory that publishes; a symlink from inside it
        // counts where its target lives.
        ("/outside.rs", StatusCode::NOT_FOUND),
        ("/docs/alias.txt", StatusCode::NOT_FOUND),
        // Never publishable.
        ("/docs/wasmlet.toml", StatusCode::NOT_FOUND),
    ] {
        assert_eq!(server.get(path).await.status, status, "{path}");
    }
    assert_eq!(server.get("/docs/example.rs").await.text(), "fn main() {}");
}
