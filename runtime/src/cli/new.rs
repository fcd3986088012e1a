//! `wasmlet new`: a hello handler to start from.

use std::path::PathBuf;
use std::process::ExitCode;

use wasmlet::scaffold::{ScaffoldKind, scaffold};

#[derive(clap::Args, Debug)]
pub(crate) struct NewArgs {
    /// The handler's name: its file name and URL path segment.
    name: String,

    /// Write a WebAssembly text handler, NAME.wat (the default).
    #[arg(long, conflicts_with_all = ["rust", "component"])]
    wat: bool,

    /// Write a Rust crate, NAME/, using the wasmlet SDK.
    #[arg(long, conflicts_with = "component")]
    rust: bool,

    /// Write a Rust crate, NAME/, that builds a standard WASI 0.3 wasi:http
    /// component with the Spin SDK.
    #[arg(long)]
    component: bool,

    /// Where to create it.
    #[arg(long, default_value = ".", value_name = "DIR")]
    dir: PathBuf,
}

/// Creates the handler and says what was made and what to do next.
pub(crate) fn new_handler(args: &NewArgs) -> anyhow::Result<ExitCode> {
    let kind = if args.rust {
        ScaffoldKind::Rust
    } else if args.component {
        ScaffoldKind::Component
    } else {
        ScaffoldKind::Wat
    };
    let created = scaffold(&args.dir, &args.name, kind)?;
    let vendored = args.dir.join(&args.name).join("vendor");
    let (sdk, own): (Vec<_>, Vec<_>) = created.iter().partition(|path| path.starts_with(&vendored));
    for path in own {
        println!("created {}", path.display());
    }
    if !sdk.is_empty() {
        println!(
            "created {} (the SDK, {} files)",
            vendored.join("wasmlet-sdk").display(),
            sdk.len()
        );
    }
    match kind {
        ScaffoldKind::Wat => println!(
            "\nPut {}.wat in a web root and it answers GET /{}.",
            args.name, args.name
        ),
        ScaffoldKind::Rust => println!(
            "\nTest it with `cargo test`, then build and deploy it as {}/README.md says.",
            args.name
        ),
        ScaffoldKind::Component => println!(
            "\nBuild it with `cargo build --release` in {}/ and deploy it as its README.md says.",
            args.name
        ),
    }
    Ok(ExitCode::SUCCESS)
}
