use wasmlet_sdk::handler;

#[handler("get")]
fn hello() -> &'static str {
    "hello"
}

fn main() {}
