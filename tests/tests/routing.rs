//! URL → handler | static file | 404 | 400: precedence, static files,
//! handler source never served, dynamic routes, and path safety.

use std::path::Path;

use bytes::Bytes;
use http::{Method, StatusCode};
use wasmlet_tests::{TestServer, WebRoot, raw_status, says, test_config};

/// The binary form of a WAT module, for the tests that serve real `.wasm`.
fn wasm(text: &str) -> Vec<u8> {
    wat::parse_str(text).expect("valid WAT")
}

// ---- precedence --------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_wins_over_a_static_file_at_the_same_path() {
    let root = WebRoot::new()
        .file("page.wat", &says("handler"))
        .file("page", "static");
    let server = TestServer::start(root).await;
    let reply = server.get("/page").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "handler");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_is_chosen_over_wat_for_the_same_path() {
    let root = WebRoot::new()
        .bytes("both.wasm", wasm(&says("wasm")))
        .file("both.wat", &says("wat"));
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/both").await.text(), "wasm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extension_urls_run_the_handler_and_never_serve_its_source() {
    let root = WebRoot::new()
        .fixture("text.wat", "hello.wat")
        .bytes("binary.wasm", wasm(&says("hello\n")));
    let server = TestServer::start(root).await;
    for path in [
        "/text",
        "/text.wat",
        "/text.wasm",
        "/binary",
        "/binary.wasm",
        "/binary.wat",
    ] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.text(), "hello\n", "{path}");
        assert!(!reply.text().contains("(module"), "{path} served source");
        assert!(
            !reply.body.starts_with(b"\0asm"),
            "{path} served the binary"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_uses_its_index_handler() {
    let root = WebRoot::new()
        .file("index.wat", &says("root index"))
        .file("docs/index.wat", &says("docs index"))
        .bytes("bin/index.wasm", wasm(&says("bin index")));
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/").await.text(), "root index");
    assert_eq!(server.get("/docs/").await.text(), "docs index");
    assert_eq!(server.get("/bin/").await.text(), "bin index");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_handler_wins_over_index_html() {
    let root = WebRoot::new()
        .file("both/index.wat", &says("handler"))
        .file("both/index.html", "<p>static</p>");
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/both/").await.text(), "handler");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_path_is_404() {
    let server = TestServer::start(WebRoot::new().file("here.txt", "here")).await;
    assert_eq!(server.get("/nowhere").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        server.get("/here.txt/more").await.status,
        StatusCode::NOT_FOUND
    );
}

// ---- static files ------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_files_are_served_with_a_content_type_from_their_extension() {
    let root = WebRoot::new()
        .file("style.css", "body { color: red }")
        .file("page.html", "<p>hi</p>")
        .file("data.json", "{}");
    let server = TestServer::start(root).await;
    for (path, body, kind) in [
        ("/style.css", "body { color: red }", "text/css"),
        ("/page.html", "<p>hi</p>", "text/html"),
        ("/data.json", "{}", "application/json"),
    ] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.text(), body, "{path}");
        let content_type = reply.header("content-type").unwrap_or_default();
        assert!(content_type.starts_with(kind), "{path}: {content_type:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_with_index_html_serves_it() {
    let root = WebRoot::new()
        .file("index.html", "<p>home</p>")
        .file("site/index.html", "<p>site</p>");
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/").await.text(), "<p>home</p>");
    let site = server.get("/site/").await;
    assert_eq!(site.status, StatusCode::OK);
    assert_eq!(site.text(), "<p>site</p>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_on_a_static_file_sends_its_headers_without_a_body() {
    let server = TestServer::start(WebRoot::new().file("a.txt", "twelve bytes")).await;
    let reply = server.send(Method::HEAD, "/a.txt", Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-length"), Some("12"));
    assert!(reply.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_if_none_match_gets_304() {
    let server = TestServer::start(WebRoot::new().file("a.txt", "cached")).await;
    let first = server.get("/a.txt").await;
    let etag = first.header("etag").expect("an ETag").to_owned();
    let again = server
        .send_with(
            Method::GET,
            "/a.txt",
            &[("if-none-match", &etag)],
            Bytes::new(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
    assert!(again.body.is_empty());
    let other = server
        .send_with(
            Method::GET,
            "/a.txt",
            &[("if-none-match", "\"nope\"")],
            Bytes::new(),
        )
        .await;
    assert_eq!(other.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matching_if_modified_since_gets_304() {
    let server = TestServer::start(WebRoot::new().file("a.txt", "cached")).await;
    let first = server.get("/a.txt").await;
    let modified = first
        .header("last-modified")
        .expect("Last-Modified")
        .to_owned();
    let again = server
        .send_with(
            Method::GET,
            "/a.txt",
            &[("if-modified-since", &modified)],
            Bytes::new(),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_MODIFIED);
}

// ---- dynamic routes ----------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bracket_file_matches_one_segment_and_req_param_reads_it() {
    let root = WebRoot::new().fixture("users/[id].wat", "req_param_echo.wat");
    let server = TestServer::start(root).await;
    let reply = server.get("/users/42").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "id=42\nrest -> -1\norg -> -1\n");
    assert_eq!(
        server.get("/users/42/more").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(server.get("/users").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_parameters_are_percent_decoded() {
    let root = WebRoot::new().fixture("users/[id].wat", "req_param_echo.wat");
    let server = TestServer::start(root).await;
    let reply = server.get("/users/a%20b%C3%A9").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "id=a bé\nrest -> -1\norg -> -1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bracket_directory_matches_one_segment() {
    let root = WebRoot::new().fixture("orgs/[org]/repos.wat", "req_param_echo.wat");
    let server = TestServer::start(root).await;
    let reply = server.get("/orgs/acme/repos").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "id -> -1\nrest -> -1\norg=acme\n");
    assert_eq!(
        server.get("/orgs/acme/other").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catch_all_matches_one_or_more_segments_joined_by_slash() {
    let root = WebRoot::new().fixture("files/[...rest].wat", "req_param_echo.wat");
    let server = TestServer::start(root).await;
    let deep = server.get("/files/a/b/c.txt").await;
    assert_eq!(deep.status, StatusCode::OK);
    assert_eq!(deep.text(), "id -> -1\nrest=a/b/c.txt\norg -> -1\n");
    let one = server.get("/files/x").await;
    assert_eq!(one.text(), "id -> -1\nrest=x\norg -> -1\n");
    assert_eq!(server.get("/files").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn req_param_returns_minus_one_on_a_route_without_parameters() {
    let root = WebRoot::new().fixture("plain.wat", "req_param_echo.wat");
    let server = TestServer::start(root).await;
    let reply = server.get("/plain").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.text(), "id -> -1\nrest -> -1\norg -> -1\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exact_handler_then_a_static_file_win_over_a_dynamic_route() {
    let root = WebRoot::new()
        .file("users/me.wat", &says("me"))
        .file("users/avatar.png", "PNG")
        .file("users/[id].wat", &says("dynamic"));
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/users/me").await.text(), "me");
    assert_eq!(server.get("/users/avatar.png").await.text(), "PNG");
    assert_eq!(server.get("/users/7").await.text(), "dynamic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fewer_dynamic_segments_win_and_catch_alls_come_last() {
    let root = WebRoot::new()
        .file("a/[x]/c.wat", &says("one dynamic"))
        .file("a/[x]/[y].wat", &says("two dynamic"))
        .file("[one].wat", &says("single"))
        .file("[...rest].wat", &says("catch-all"));
    let server = TestServer::start(root).await;
    for (path, want) in [
        ("/a/1/c", "one dynamic"),
        ("/a/1/d", "two dynamic"),
        ("/solo", "single"),
        ("/b/1/c", "catch-all"),
        ("/a/1/c/d", "catch-all"),
    ] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.text(), want, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn among_equally_dynamic_routes_an_earlier_literal_segment_wins() {
    let root = WebRoot::new()
        .file("[p]/lit.wat", &says("late literal"))
        .file("lit/[q].wat", &says("early literal"));
    let server = TestServer::start(root).await;
    assert_eq!(server.get("/lit/lit").await.text(), "early literal");
    assert_eq!(server.get("/lit/other").await.text(), "early literal");
    assert_eq!(server.get("/other/lit").await.text(), "late literal");
}

// ---- path safety -------------------------------------------------------

const SECRET: &str = "TOP-SECRET-7f3a";

/// A directory holding `secret.txt` (outside the web root) and `root/`, the
/// web root, with forbidden files and symlinks that lead out of it. The
/// returned directory must outlive the server.
fn guarded_root() -> (tempfile::TempDir, std::path::PathBuf) {
    let outer = tempfile::tempdir().expect("temporary directory");
    let root = outer.path().join("root");
    let write = |rel: &str, text: &str| {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    std::fs::write(outer.path().join("secret.txt"), SECRET).unwrap();
    std::fs::write(outer.path().join("outside.wat"), says(SECRET)).unwrap();
    write("hello.txt", "hello");
    write(".secret", SECRET);
    write(".git/config", SECRET);
    write("sub/.hidden/x.txt", SECRET);
    write("sub/.env", SECRET);
    write(".hidden.wat", &says(SECRET));
    // Valid configuration (the server reads it) that carries the secret in a
    // comment, so a leak would show in the body.
    write("wasmlet.toml", &format!("# {SECRET}\n"));
    write("sub/wasmlet.toml", &format!("# {SECRET}\n"));
    symlink(&outer.path().join("secret.txt"), &root.join("link-out.txt"));
    symlink(outer.path(), &root.join("dir-out"));
    symlink(&outer.path().join("outside.wat"), &root.join("evil.wat"));
    (outer, root)
}

fn symlink(target: &Path, link: &Path) {
    std::os::unix::fs::symlink(target, link).expect("create symlink");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syntactically_hostile_paths_get_400() {
    let (_outer, root) = guarded_root();
    let server = TestServer::start_config(test_config(&root)).await;
    for target in [
        "/../secret.txt",
        "/../etc/passwd",
        "/sub/../../secret.txt",
        "/sub/../hello.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/.%2e/secret.txt",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/a%2fb",
        "/%2F..%2Fsecret.txt",
        "/..%2fsecret.txt",
        "/a\\b",
        "/..\\secret.txt",
        "/a%5cb",
        "/%00",
        "/hello.txt%00.wat",
        "/%zz",
        "/%4",
        "/%ff",
        "/%c3%28",
    ] {
        let answer = server.raw_get(target).await;
        assert_eq!(raw_status(&answer), Some(400), "{target}: {answer:?}");
        assert!(!answer.contains(SECRET), "{target} leaked the secret");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dotfiles_config_and_symlinks_out_of_the_root_are_404() {
    let (_outer, root) = guarded_root();
    let server = TestServer::start_config(test_config(&root)).await;
    assert_eq!(server.get("/hello.txt").await.text(), "hello");
    for path in [
        "/.secret",
        "/.git/config",
        "/.git/",
        "/sub/.hidden/x.txt",
        "/sub/.env",
        "/.hidden",
        "/.hidden.wat",
        "/wasmlet.toml",
        "/sub/wasmlet.toml",
        "/link-out.txt",
        "/dir-out/secret.txt",
        "/evil",
        "/evil.wat",
    ] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!reply.text().contains(SECRET), "{path} leaked the secret");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absolute_path_hidden_behind_a_double_slash_stays_inside_the_root() {
    let (outer, root) = guarded_root();
    let server = TestServer::start_config(test_config(&root)).await;
    let secret = outer.path().join("secret.txt");
    for target in [format!("/{}", secret.display()), "//etc/passwd".to_owned()] {
        let answer = server.raw_get(&target).await;
        assert_ne!(raw_status(&answer), Some(200), "{target}: {answer:?}");
        assert!(!answer.contains(SECRET), "{target} leaked the secret");
        assert!(!answer.contains("root:"), "{target} leaked /etc/passwd");
    }
}

// ---- the route table ---------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_handler_is_routed_from_the_table_while_the_watcher_runs() {
    use wasmlet::webroot::Lookup;
    let root = WebRoot::new()
        .file("hello.wat", &says("hello"))
        .file("users/[id].wat", &says("a user"));
    let dir = root.path().to_path_buf();
    let server = TestServer::start(root).await;
    // The first request for each asks the disk; from then on the route and
    // the handler's version are known, with no file-system call, until
    // something in the tree changes.
    assert_eq!(server.get("/hello").await.text(), "hello");
    assert_eq!(server.get("/users/7").await.text(), "a user");
    let disk = server.stats.route_lookups(Lookup::Disk);
    let table = server.stats.route_lookups(Lookup::Table);
    for _ in 0..50 {
        assert_eq!(server.get("/hello").await.text(), "hello");
        assert_eq!(server.get("/users/7").await.text(), "a user");
    }
    assert_eq!(
        server.stats.route_lookups(Lookup::Disk),
        disk,
        "a known handler made a file-system lookup"
    );
    assert_eq!(server.stats.route_lookups(Lookup::Table), table + 100);
    // A deleted handler is seen by the very next request.
    std::fs::remove_file(dir.join("hello.wat")).unwrap();
    assert_eq!(server.get("/hello").await.status, StatusCode::NOT_FOUND);
    // So is a file that wins over a known route, before the watcher could
    // have read its event.
    std::fs::write(dir.join("users/7"), "a static file wins").unwrap();
    assert_eq!(server.get("/users/7").await.text(), "a static file wins");
    // Once the watcher has also heard of the changes, known again.
    std::fs::remove_file(dir.join("users/7")).unwrap();
    assert_eq!(server.get("/users/7").await.text(), "a user");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let disk = server.stats.route_lookups(Lookup::Disk);
        assert_eq!(server.get("/users/7").await.text(), "a user");
        if server.stats.route_lookups(Lookup::Disk) == disk {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the route was never known again"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_watcher_every_request_asks_the_file_system() {
    use wasmlet::webroot::Lookup;
    let root = WebRoot::new().file("hello.wat", &says("hello"));
    let server = TestServer::start_with(root, |c| c.watch = None).await;
    for _ in 0..5 {
        assert_eq!(server.get("/hello").await.text(), "hello");
    }
    assert_eq!(server.stats.route_lookups(Lookup::Table), 0);
    // The route and the handler's version, each request.
    assert_eq!(server.stats.route_lookups(Lookup::Disk), 10);
}
