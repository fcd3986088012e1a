use wasmlet_sdk::{Request, ResponseWriter, handler};

#[handler(get)]
fn hello(_req: Request, _out: &mut ResponseWriter, extra: u32) {
    let _ = extra;
}

fn main() {}
