use wasmlet_sdk::handler;

#[handler(get, post, get)]
fn hello() -> &'static str {
    "hello"
}

fn main() {}
