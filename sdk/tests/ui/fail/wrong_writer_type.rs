use wasmlet_sdk::{Request, handler};

#[handler(get)]
fn hello(_req: Request, out: &mut Vec<u8>) {
    out.push(1);
}

fn main() {}
