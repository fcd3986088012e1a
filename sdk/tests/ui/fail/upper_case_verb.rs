use wasmlet_sdk::handler;

#[handler(GET)]
fn hello() -> &'static str {
    "hello"
}

fn main() {}
