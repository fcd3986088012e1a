use wasmlet_sdk::handler;

#[handler(get)]
fn handle_get() -> &'static str {
    "hello"
}

fn main() {}
