use wasmlet_sdk::handler;

#[handler]
unsafe fn hello() -> &'static str {
    "hello"
}

fn main() {}
