use wasmlet_sdk::{IntoResponse, handler};

#[handler(get)]
fn hello<T: Default + IntoResponse>() -> T {
    T::default()
}

fn main() {}
