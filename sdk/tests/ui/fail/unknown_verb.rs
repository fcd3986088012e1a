use wasmlet_sdk::handler;

#[handler(fetch)]
fn hello() -> &'static str {
    "hello"
}

fn main() {}
