//! The status page: every handler the server has loaded, the version it
//! serves, where its code came from, and why a newer version did not load.
//! JSON for people with `curl` and for scripts (`--status-path` on the main
//! listener, `/status.json` on the admin one), and a small HTML page for a
//! browser (`/status` on the admin listener).

use std::net::SocketAddr;
use std::time::{Duration, UNIX_EPOCH};

use http::StatusCode;
use http::header::{self, HeaderValue};
use serde::Serialize;

use super::App;
use super::body::ResponseBody;
use super::service::plain;

#[derive(Serialize)]
struct Page {
    webroot: String,
    requests: u64,
    compiles: u64,
    live_instances: u64,
    handlers: Vec<Entry>,
}

#[derive(Serialize)]
struct Entry {
    /// The handler's file, relative to the web root.
    file: String,
    /// `ready`, `loading`, `failed` (never loaded) or `stale` (serving an
    /// older version because the newest one failed).
    state: &'static str,
    /// SHA-256 of the module being served.
    version: Option<String>,
    /// `compiler` or `disk cache`.
    source: Option<&'static str>,
    load_ms: Option<f64>,
    /// Seconds since the Unix epoch.
    loaded_at: Option<u64>,
    last_error: Option<String>,
}

/// Whether `peer` may see the status page on the main listener: loopback
/// only, unless the operator opened it with `--status-public`. (The admin
/// listener shows it to whoever can reach its address.)
pub(crate) fn allowed(app: &App, peer: SocketAddr) -> bool {
    app.config.status_public || peer.ip().is_loopback()
}

/// The status page as JSON.
pub(crate) fn json(app: &App) -> http::Response<ResponseBody> {
    match serde_json::to_vec_pretty(&page(app)) {
        Ok(json) => with_type(json, "application/json"),
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot render the status page: {e}\n"),
        ),
    }
}

/// The status page as HTML. Every value is escaped: file names and compile
/// errors come from whoever can write to the web root.
pub(crate) fn html(app: &App) -> http::Response<ResponseBody> {
    let mut response = with_type(render_html(&page(app)), "text/html; charset=utf-8");
    // A second line of defence should an unescaped value ever slip in: no
    // script runs and nothing loads from elsewhere.
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    response
}

fn with_type(
    body: impl Into<bytes::Bytes>,
    content_type: &'static str,
) -> http::Response<ResponseBody> {
    let mut response = plain(StatusCode::OK, body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn page(app: &App) -> Page {
    let router = app.router();
    let root = router.root();
    let handlers = app
        .loader
        .status()
        .into_iter()
        .map(|s| {
            let state = match (&s.serving, s.loading, &s.error) {
                (_, true, _) => "loading",
                (Some(_), false, Some(_)) => "stale",
                (None, false, Some(_)) => "failed",
                _ => "ready",
            };
            let serving = s.serving.as_ref();
            Entry {
                file: s
                    .file
                    .strip_prefix(root)
                    .unwrap_or(&s.file)
                    .display()
                    .to_string(),
                state,
                version: serving.map(|p| p.content_hash.clone()),
                source: serving.map(|p| {
                    if p.from_disk_cache {
                        "disk cache"
                    } else {
                        "compiler"
                    }
                }),
                load_ms: serving.map(|p| (p.load_ms * 10.0).round() / 10.0),
                loaded_at: serving.and_then(|p| {
                    p.loaded_at
                        .duration_since(UNIX_EPOCH)
                        .ok()
                        .map(|d| d.as_secs())
                }),
                last_error: s.error,
            }
        })
        .collect();
    Page {
        webroot: root.display().to_string(),
        requests: app.stats.requests(),
        compiles: app.stats.compiles(),
        live_instances: app.stats.live_instances(),
        handlers,
    }
}

fn render_html(page: &Page) -> String {
    let mut rows = String::new();
    for entry in &page.handlers {
        let version = entry.version.as_deref().unwrap_or("");
        let loaded_at = entry.loaded_at.map_or_else(String::new, |secs| {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
        });
        rows.push_str(&format!(
            "<tr class=\"{state}\"><td><code>{file}</code></td><td>{state}</td>\
             <td><code title=\"{version}\">{short}</code></td><td>{source}</td>\
             <td>{load_ms}</td><td>{loaded_at}</td><td><pre>{error}</pre></td></tr>\n",
            state = entry.state,
            file = escape(&entry.file),
            version = escape(version),
            short = escape(version.get(..12).unwrap_or(version)),
            source = entry.source.unwrap_or(""),
            load_ms = entry
                .load_ms
                .map_or_else(String::new, |ms| format!("{ms:.1}")),
            error = escape(entry.last_error.as_deref().unwrap_or("")),
        ));
    }
    let table = if rows.is_empty() {
        "<p>No handler has been requested yet.</p>".to_owned()
    } else {
        format!(
            "<table>\n<tr><th>handler</th><th>state</th><th>version</th><th>from</th>\
             <th>load ms</th><th>loaded at</th><th>last error</th></tr>\n{rows}</table>"
        )
    };
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>wasmlet status</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>wasmlet</h1>\n\
         <p>Serving <code>{webroot}</code>. Requests: {requests}. Compiles: {compiles}. \
         Live instances: {live}. <a href=\"status.json\">JSON</a> \
         <a href=\"metrics\">metrics</a></p>\n{table}\n</body>\n</html>\n",
        webroot = escape(&page.webroot),
        requests = page.requests,
        compiles = page.compiles,
        live = page.live_instances,
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em}\
table{border-collapse:collapse}th,td{text-align:left;vertical-align:top;\
padding:.3em .8em;border-bottom:1px solid #ddd}pre{margin:0;white-space:pre-wrap}\
.failed,.stale{color:#a00}";

/// `text` made safe inside HTML text and double- or single-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_text_and_both_attribute_quotes() {
        for (raw, escaped) in [
            ("plain.wat", "plain.wat"),
            ("<b>x</b>", "&lt;b&gt;x&lt;/b&gt;"),
            ("a & b", "a &amp; b"),
            ("say \"hi\"", "say &quot;hi&quot;"),
            ("it's", "it&#39;s"),
            ("&lt;", "&amp;lt;"),
            ("caf\u{e9}", "caf\u{e9}"),
        ] {
            assert_eq!(escape(raw), escaped, "{raw}");
        }
    }

    #[test]
    fn the_html_page_escapes_every_value_from_the_web_root() {
        let hostile = "<script>alert(1)</script>";
        let page = Page {
            webroot: format!("/srv/{hostile}"),
            requests: 3,
            compiles: 1,
            live_instances: 0,
            handlers: vec![Entry {
                file: format!("{hostile}.wat"),
                state: "stale",
                version: Some(format!("{hostile}0123456789abcdef")),
                source: Some("compiler"),
                load_ms: Some(1.5),
                loaded_at: Some(0),
                last_error: Some(format!("{hostile}.wat:1:2: expected `(`")),
            }],
        };
        let html = render_html(&page);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;.wat"));
        assert!(html.contains("1970-01-01T00:00:00Z"), "{html}");
        assert!(html.contains("<tr class=\"stale\">"), "{html}");
    }

    #[test]
    fn an_empty_server_says_so() {
        let page = Page {
            webroot: "/srv".to_owned(),
            requests: 0,
            compiles: 0,
            live_instances: 0,
            handlers: Vec::new(),
        };
        assert!(render_html(&page).contains("No handler has been requested yet."));
    }
}
