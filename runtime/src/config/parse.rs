//! The human-friendly forms the CLI and `wasmlet.toml` accept: durations
//! (`500ms`), sizes (`64MiB`) and listening addresses (`8080`).

use std::time::Duration;

/// Parses a duration written like `500ms`, `2s`, `1m` or `1h 30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration ({e}); write it like 500ms, 2s or 1m"))
}

/// Parses a size written like `64MiB`, `1GiB`, `512KiB` or a plain number of
/// bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    parse_size::parse_size(text)
        .map_err(|e| format!("`{text}` is not a size ({e}); write it like 64MiB or 1GiB"))
}

/// Parses a listening address: `IP:PORT` (`0.0.0.0:8080`, `[::1]:8080`),
/// `localhost:PORT`, or a bare `PORT`, which listens on loopback only, like
/// the default.
pub fn parse_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    use std::net::{Ipv4Addr, SocketAddr};
    let port = |port: &str| port.parse::<u16>().ok();
    if let Some(port) = port(text) {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    if let Some(port) = text.strip_prefix("localhost:").and_then(port) {
        return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
    }
    text.parse().map_err(|_| {
        format!("`{text}` is not an address; write a port (8080) or IP:PORT (0.0.0.0:8080)")
    })
}
