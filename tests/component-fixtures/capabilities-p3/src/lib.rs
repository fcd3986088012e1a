//! The capabilities fixture as a WASI 0.3 component
//! (`wasi:http/handler@0.3.0`, written with `spin-sdk` 7): the same
//! endpoints, from the same `caps.rs`, and one of its own:
//! - `file-p3?path=/MOUNT/P`: `file CONTENTS` or `error E`, read through
//!   `wasi:filesystem@0.3.0` (`std::fs`, which `file` uses, goes through
//!   0.2's): the preopen named `/MOUNT`, `open-at` and `read-via-stream`.

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
#[path = "../../capabilities/src/caps.rs"]
mod caps;

#[cfg(all(target_arch = "wasm32", target_os = "wasi"))]
mod handler {
    use spin_sdk::http::{IntoResponse, Request};
    use spin_sdk::http_service;
    use wasip3::filesystem::preopens;
    use wasip3::filesystem::types::{DescriptorFlags, OpenFlags, PathFlags};

    #[http_service]
    async fn handle(request: Request) -> impl IntoResponse {
        let path = request.uri().path().to_owned();
        let query = request.uri().query().unwrap_or_default().to_owned();
        if path.ends_with("/file-p3") {
            let file = query.strip_prefix("path=").unwrap_or_default();
            return match read(file).await {
                Ok(text) => format!("file {text}\n"),
                Err(e) => format!("error {e}\n"),
            };
        }
        super::caps::answer(&path, &query)
    }

    /// The text of `path`, `/MOUNT/P`, through the preopen `/MOUNT`.
    async fn read(path: &str) -> Result<String, String> {
        let (mount, inside) = path
            .trim_start_matches('/')
            .split_once('/')
            .ok_or_else(|| format!("`{path}` names no file in a mount"))?;
        let preopen = format!("/{mount}");
        let (dir, _) = preopens::get_directories()
            .into_iter()
            .find(|(_, name)| *name == preopen)
            .ok_or_else(|| format!("no preopen {preopen}"))?;
        let file = dir
            .open_at(
                PathFlags::empty(),
                inside.to_owned(),
                OpenFlags::empty(),
                DescriptorFlags::READ,
            )
            .await
            .map_err(|e| format!("{e:?}"))?;
        let (bytes, done) = file.read_via_stream(0);
        let bytes = bytes.collect().await;
        done.await.map_err(|e| format!("{e:?}"))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}
