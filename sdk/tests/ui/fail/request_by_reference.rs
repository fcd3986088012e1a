use wasmlet_sdk::{Request, handler};

#[handler(get)]
fn hello(req: &Request) -> String {
    req.path().to_owned()
}

fn main() {}
