use wasmlet_sdk::handler;

#[handler(get)]
fn hello(name: String) -> String {
    name
}

fn main() {}
