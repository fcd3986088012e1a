//! Components wasmlet cannot serve are refused before anything is compiled,
//! each with one line naming the file, what is wrong and what to do: a
//! component built for a WASI 0.3 release candidate, one that imports Spin's
//! own host API, one that imports an interface wasmlet does not provide
//! (named, with the list of what it does provide), and one that exports no
//! `wasi:http` handler. The
//! request gets `500`; the log, the status page and the `--dev` page say why.
//! A component of tens of MB is refused in milliseconds, without a compile.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::Value;
use wasm_encoder::{
    CodeSection, Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection,
    Function, FunctionSection, InstanceType, Instruction, Module, ModuleSection, TypeSection,
    ValType,
};
use wasmlet_tests::{TestServer, WebRoot, log_contains};

const DEADLINE: Duration = Duration::from_secs(20);

/// A component built for a WASI 0.3 release candidate, as toolchains of
/// 2025 built them: its types use `future` and it exports the candidate's
/// handler, whose types differ from 0.3.0's.
const WASI_0_3: &str = r#"(component
    (import "wasi:http/types@0.3.0-rc-2025-09-16" (instance
        (export "fields" (type (sub resource)))))
    (type $trailers (future u32))
    (instance $handler)
    (export "wasi:http/handler@0.3.0-rc-2025-09-16" (instance $handler)))"#;

/// A wasi:http 0.2 component built against Spin's SDK host API.
const SPIN: &str = r#"(component
    (import "wasi:io/poll@0.2.0" (instance))
    (import "fermyon:spin/variables@2.0.0" (instance
        (export "get" (func (param "name" string) (result string)))))
    (instance $handler)
    (export "wasi:http/incoming-handler@0.2.0" (instance $handler)))"#;

/// A wasi:http 0.2 component that wants a blob store from the host.
const BLOBSTORE: &str = r#"(component
    (import "wasi:blobstore/blobstore@0.2.0-draft" (instance
        (export "open" (func (param "identifier" string)))))
    (instance $handler)
    (export "wasi:http/incoming-handler@0.2.0" (instance $handler)))"#;

/// A component that serves no HTTP: it exports a function.
const NO_HANDLER: &str = r#"(component
    (core module $m (func (export "answer") (result i32) i32.const 42))
    (core instance $i (instantiate $m))
    (func (export "answer") (result u32) (canon lift (core func $i "answer"))))"#;

const WASI_0_3_REFUSAL: &str = "p3.wat: is built for a WASI 0.3 release candidate (it exports \
    `wasi:http/handler@0.3.0-rc-2025-09-16`); wasmlet serves WASI 0.3.0 components \
    (`wasi:http/handler@0.3.0`) and WASI 0.2 ones: rebuild it with a current toolchain \
    (spin-sdk 7, or wasip3 0.7)";

const SPIN_REFUSAL: &str = "spin.wat: imports Spin's own host API \
    (`fermyon:spin/variables@2.0.0`), which only Spin provides: build it as a plain wasi:http \
    component that imports WASI interfaces only (spin-sdk with `default-features = false` and \
    only its `http` feature)";

const BLOBSTORE_REFUSAL: &str = "blobs.wat: imports `wasi:blobstore/blobstore@0.2.0-draft`, which \
    wasmlet does not provide; a component may import only the WASI 0.2 interfaces \
    wasi:cli/{environment, exit, stderr, stdin, stdout, terminal-input, terminal-output, \
    terminal-stderr, terminal-stdin, terminal-stdout}, wasi:clocks/{monotonic-clock, \
    wall-clock}, wasi:filesystem/{preopens, types}, wasi:http/{outgoing-handler, types}, \
    wasi:io/{error, poll, streams}, wasi:random/{insecure, insecure-seed, random}, \
    wasi:sockets/{instance-network, ip-name-lookup, network, tcp, tcp-create-socket, udp, \
    udp-create-socket} (at 0.2.x), the WASI 0.3 interfaces wasi:cli/{environment, exit, \
    stderr, stdin, stdout, terminal-input, terminal-output, terminal-stderr, terminal-stdin, \
    terminal-stdout, types}, wasi:clocks/{monotonic-clock, system-clock, types}, \
    wasi:filesystem/{preopens, types}, wasi:http/{client, types}, wasi:random/{insecure, insecure-seed, random}, \
    wasi:sockets/{ip-name-lookup, types} (at 0.3.0), and `wasi:config/store@0.2.0-rc.1`, \
    `wasi:keyvalue/atomics@0.2.0-draft`, `wasi:keyvalue/batch@0.2.0-draft`, \
    `wasi:keyvalue/store@0.2.0-draft` (at exactly these versions; in 0.2 and 0.3 components \
    alike): rebuild it without that import";

const NO_HANDLER_REFUSAL: &str = "answer.wat: is a component that exports `answer`, but a \
    component handler must export `wasi:http/incoming-handler@0.2.x` (WASI 0.2, as `wasmtime \
    serve` runs it) or `wasi:http/handler@0.3.0` (WASI 0.3)";

/// Every refusal: the file, its text, the line it must be refused with.
const REFUSED: [(&str, &str, &str); 4] = [
    ("p3.wat", WASI_0_3, WASI_0_3_REFUSAL),
    ("spin.wat", SPIN, SPIN_REFUSAL),
    ("blobs.wat", BLOBSTORE, BLOBSTORE_REFUSAL),
    ("answer.wat", NO_HANDLER, NO_HANDLER_REFUSAL),
];

/// A web root with every refused component in it.
fn refused_root() -> WebRoot {
    REFUSED
        .iter()
        .fold(WebRoot::new(), |root, (file, text, _)| {
            root.file(file, text)
        })
}

/// The URL path of `file`.
fn url(file: &str) -> String {
    let name = file.rsplit_once('.').map_or(file, |(name, _)| name);
    format!("/{name}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_unservable_component_gets_500_and_its_refusal_in_the_log_the_access_line_and_the_dev_page()
 {
    let root = refused_root();
    let dir = root.path().to_path_buf();
    let server = TestServer::start_with(root, |c| c.dev = true).await;
    for (file, _, refusal) in REFUSED {
        let reply = server.get(&url(file)).await;
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR, "{file}");
        // The log and the page name the file by its full path.
        let line = format!("{}/{refusal}", dir.display());
        let page = reply.text();
        assert_eq!(
            page,
            format!("500 Internal Server Error\n\n{line}\n"),
            "{file}"
        );
        let logged = format!("handler failed to load: {line}");
        assert!(log_contains(&logged, DEADLINE).await, "{file}");
        let access = format!("outcome=\"load error\" error=\"{line}\"");
        assert!(log_contains(&access, DEADLINE).await, "{file}");
    }
    assert_eq!(
        server.stats.compiles(),
        0,
        "a refused component was compiled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_page_shows_each_refusal_as_the_handlers_last_error() {
    let server = TestServer::start_with_admin(refused_root(), |_| {}).await;
    for (file, _, _) in REFUSED {
        let status = server.get(&url(file)).await.status;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{file}");
    }
    server.settled_metrics().await;
    let reply = server.admin_get("/status.json").await;
    let json: Value = serde_json::from_slice(&reply.body).unwrap();
    for (file, _, refusal) in REFUSED {
        let entry = json["handlers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|entry| entry["file"] == file)
            .unwrap_or_else(|| panic!("{file} not in {json:#}"));
        assert_eq!(entry["state"], "failed", "{json:#}");
        assert_eq!(entry["last_error"], refusal, "{json:#}");
    }
}

/// How many functions, and how many additions in each, in the large
/// component's core module: about 50 MB of code.
const FUNCTIONS: u32 = 20_000;
const ADDITIONS: i32 = 280;

/// A component wrapping a core module of about 50 MB of code (its compile
/// took almost five minutes on a shared 2-core machine) that imports
/// `import`.
fn large_component(import: &str) -> Vec<u8> {
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([ValType::I32], [ValType::I32]);
    module.section(&types);
    let mut functions = FunctionSection::new();
    for _ in 0..FUNCTIONS {
        functions.function(0);
    }
    module.section(&functions);
    let mut code = CodeSection::new();
    for _ in 0..FUNCTIONS {
        let mut body = Function::new([]);
        for k in 0..ADDITIONS {
            body.instruction(&Instruction::LocalGet(0));
            body.instruction(&Instruction::I32Const(k * 1000));
            body.instruction(&Instruction::I32Add);
            body.instruction(&Instruction::LocalSet(0));
        }
        body.instruction(&Instruction::LocalGet(0));
        body.instruction(&Instruction::End);
        code.function(&body);
    }
    module.section(&code);

    let mut component = Component::new();
    let mut types = ComponentTypeSection::new();
    types.ty().instance(&InstanceType::new());
    component.section(&types);
    let mut imports = ComponentImportSection::new();
    imports.import(import, ComponentTypeRef::Instance(0));
    component.section(&imports);
    component.section(&ModuleSection(&module));
    component.finish()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_of_tens_of_megabytes_are_refused_in_milliseconds_without_a_compile() {
    let large = [
        (
            "spin.wasm",
            large_component("fermyon:spin/key-value@2.0.0"),
            "spin.wasm: imports Spin's own host API (`fermyon:spin/key-value@2.0.0`)",
        ),
        (
            "blobs.wasm",
            large_component("wasi:blobstore/blobstore@0.2.0-draft"),
            "blobs.wasm: imports `wasi:blobstore/blobstore@0.2.0-draft`, which wasmlet does not provide",
        ),
    ];
    let root = large.iter().fold(WebRoot::new(), |root, (file, wasm, _)| {
        root.bytes(file, wasm)
    });
    let server = TestServer::start(root).await;
    for (file, wasm, refusal) in &large {
        assert!(wasm.len() > 30 << 20, "{} bytes", wasm.len());
        let started = Instant::now();
        let reply = server.get(&url(file)).await;
        let took = started.elapsed();
        assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
        eprintln!("{file}: {} bytes refused in {took:?}", wasm.len());
        // Generous for a loaded debug build: the compile takes minutes.
        assert!(
            took < Duration::from_secs(2),
            "{file} refused after {took:?}"
        );
        assert!(log_contains(refusal, DEADLINE).await, "{file}");
    }
    assert_eq!(
        server.stats.compiles(),
        0,
        "a refused component was compiled"
    );
}
