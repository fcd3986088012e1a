use wasmlet_sdk::handler;

struct Site;

impl Site {
    #[handler(get)]
    fn hello(&self) -> &'static str {
        "hello"
    }
}

fn main() {}
