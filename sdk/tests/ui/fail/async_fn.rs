use wasmlet_sdk::{Request, handler};

#[handler(get)]
async fn hello(_req: Request) -> &'static str {
    "hello"
}

fn main() {}
