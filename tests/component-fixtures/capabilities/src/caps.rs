//! The fixture's answers, by the last segment of the request path, each one
//! line of text:
//! - `kv-get?store=S&key=K`: `value V`, `absent`, or `error E`;
//! - `kv-set?store=S&key=K&value=V`: `set` or `error E`;
//! - `kv-incr?store=S&key=K&by=N`: `count N` or `error E`;
//! - `config?name=N`: `value V`, `absent`, or `error E`;
//! - `config-all`: `N=V` pairs in name order, space-separated;
//! - `file?path=P`: `file CONTENTS` or `error E` (read with `std::fs`, which
//!   goes through `wasi:filesystem` and its preopens).
//!
//! `E` for key-value is `access-denied`, `no-such-store` or `other: MESSAGE`.
//! Query values are taken as they are, without percent-decoding.

wit_bindgen::generate!({
    path: "../../../runtime/wit",
    world: "wasmlet:capabilities/capabilities",
    generate_all,
});

use wasi::config::store as config;
use wasi::keyvalue::{atomics, store};

/// The answer to `path?query`.
pub(crate) fn answer(path: &str, query: &str) -> String {
    let param = |name: &str| {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v)
    };
    let last = path.rsplit('/').next().unwrap_or_default();
    let answer = match last {
        "kv-get" => bucket(param("store")).and_then(|b| {
            b.get(param("key"))
                .map_err(kv_error)
                .map(|value| match value {
                    Some(v) => format!("value {}", String::from_utf8_lossy(&v)),
                    None => "absent".to_owned(),
                })
        }),
        "kv-set" => bucket(param("store")).and_then(|b| {
            b.set(param("key"), param("value").as_bytes())
                .map_err(kv_error)
                .map(|()| "set".to_owned())
        }),
        "kv-incr" => bucket(param("store")).and_then(|b| {
            let by = param("by").parse().unwrap_or(1);
            atomics::increment(&b, param("key"), by)
                .map_err(kv_error)
                .map(|n| format!("count {n}"))
        }),
        "config" => config::get(param("name"))
            .map_err(|e| format!("{e:?}"))
            .map(|value| match value {
                Some(v) => format!("value {v}"),
                None => "absent".to_owned(),
            }),
        "config-all" => config::get_all()
            .map_err(|e| format!("{e:?}"))
            .map(|mut all| {
                all.sort();
                let pairs: Vec<String> = all.iter().map(|(n, v)| format!("{n}={v}")).collect();
                pairs.join(" ")
            }),
        "file" => std::fs::read_to_string(param("path"))
            .map(|text| format!("file {text}"))
            .map_err(|e| e.to_string()),
        _ => Err(format!("no endpoint `{last}`")),
    };
    match answer {
        Ok(text) => text + "\n",
        Err(e) => format!("error {e}\n"),
    }
}

fn bucket(name: &str) -> Result<store::Bucket, String> {
    store::open(name).map_err(kv_error)
}

fn kv_error(e: store::Error) -> String {
    match e {
        store::Error::AccessDenied => "access-denied".to_owned(),
        store::Error::NoSuchStore => "no-such-store".to_owned(),
        store::Error::Other(message) => format!("other: {message}"),
    }
}
