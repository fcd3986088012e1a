use wasmlet_sdk::handler;

#[handler(get)]
fn hello() -> &'static str {
    "hello"
}

#[handler(get)]
fn goodbye() -> &'static str {
    "goodbye"
}

fn main() {}
