use wasmlet_sdk::handler;

#[handler(get)]
fn hello(_req: impl Sized) -> &'static str {
    "hello"
}

fn main() {}
