use wasmlet_sdk::{Request, handler};

#[handler(get)]
fn hello(_req: Request) -> u32 {
    7
}

fn main() {}
