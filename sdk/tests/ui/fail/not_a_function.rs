use wasmlet_sdk::handler;

#[handler]
struct Hello;

fn main() {}
