use wasmlet_sdk::{Request, ResponseWriter, handler};

#[handler(get)]
fn hello(_req: Request, _out: &mut ResponseWriter) -> String {
    String::new()
}

fn main() {}
