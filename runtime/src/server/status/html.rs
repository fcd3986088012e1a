//! The status page as HTML: one self-contained page (inline CSS, no script,
//! nothing loaded from elsewhere) that refreshes itself every
//! [`REFRESH_SECS`]. Failing handlers come first and are marked in red;
//! numbers are right-aligned in tabular figures; below 760 px each handler
//! becomes a card. Every value from the web root or a guest is escaped.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Entry, Page};

/// How often an open page reloads itself, in seconds.
pub(crate) const REFRESH_SECS: u32 = 5;

/// The states shown as tiles even at zero: "0 failed" is news too.
const ALWAYS_SHOWN: [&str; 3] = ["failed", "stale", "ready"];

pub(super) fn render(page: &Page) -> String {
    let mut out = String::with_capacity(4096 + page.handlers.len() * 600);
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"refresh\" content=\"{REFRESH_SECS}\">\n\
         <title>{title}wasmlet status</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><h1>wasmlet</h1><span class=\"meta\">{version} · wasmtime {wasmtime} · \
         up {uptime} · <code>{webroot}</code></span>\
         <span class=\"meta right\">refreshes every {REFRESH_SECS} s · \
         <a href=\"status.json\">JSON</a> · <a href=\"metrics\">metrics</a></span></header>\n",
        title = match page.states.get("failed") {
            Some(n) if *n > 0 => format!("{n} failed · "),
            _ => String::new(),
        },
        version = escape(page.version),
        wasmtime = escape(page.wasmtime),
        uptime = uptime(Duration::from_secs(page.uptime_seconds)),
        webroot = escape(&page.webroot),
    );
    tiles(&mut out, page);
    if page.handlers.is_empty() {
        out.push_str(
            "<p class=\"empty\">No handlers in the web root yet: save a <code>.wat</code> \
             or <code>.wasm</code> file in it.</p>\n",
        );
    } else {
        out.push_str(
            "<table>\n<thead><tr><th>state</th><th>handler</th><th class=\"n\">requests</th>\
             <th class=\"n\">errors</th><th class=\"n\">traps</th><th class=\"n\">timeouts</th>\
             <th class=\"n\">p50</th><th class=\"n\">p99</th><th class=\"n\">live</th>\
             <th>last error</th></tr></thead>\n<tbody>\n",
        );
        let now = SystemTime::now();
        for entry in &page.handlers {
            row(&mut out, entry, now);
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if page.unlisted > 0 {
        let _ = writeln!(
            out,
            "<p class=\"meta\">… and {} more handlers not listed.</p>",
            count(page.unlisted as u64)
        );
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn tiles(out: &mut String, page: &Page) {
    out.push_str("<ul class=\"tiles\">");
    let mut states: Vec<(&str, usize)> = ALWAYS_SHOWN
        .iter()
        .map(|s| (*s, page.states.get(s).copied().unwrap_or(0)))
        .collect();
    for (state, n) in &page.states {
        if !ALWAYS_SHOWN.contains(state) {
            states.push((state, *n));
        }
    }
    for (state, n) in states {
        let class = if n > 0 { css_class(state) } else { "quiet" };
        let _ = write!(
            out,
            "<li class=\"{class}\"><b>{}</b>{state}</li>",
            count(n as u64)
        );
    }
    for (n, what) in [
        (page.requests, "requests"),
        (page.in_flight, "in flight"),
        (page.live_instances, "live instances"),
        (page.compiles, "compiles"),
    ] {
        let _ = write!(out, "<li><b>{}</b>{what}</li>", count(n));
    }
    out.push_str("</ul>\n");
}

fn row(out: &mut String, entry: &Entry, now: SystemTime) {
    let class = css_class(entry.state);
    let _ = write!(
        out,
        "<tr class=\"{class}\"><td><span class=\"badge\">{state}</span></td>\
         <td><span class=\"url\">{url}</span><div class=\"file\">{file}",
        state = entry.state,
        url = escape(&entry.url),
        file = escape(&entry.file),
    );
    if let Some(version) = &entry.version {
        let loaded = entry.loaded_at.map_or_else(String::new, |secs| {
            humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
        });
        let _ = write!(
            out,
            " · <code title=\"{version} loaded {loaded}\">{short}</code>",
            version = escape(version),
            short = escape(version.get(..12).unwrap_or(version)),
        );
    }
    if let (Some(source), Some(ms)) = (entry.source, entry.load_ms) {
        let _ = write!(out, " · {source} {ms:.1} ms");
    }
    out.push_str("</div></td>");
    number(out, "requests", entry.requests, false);
    number(out, "errors", entry.errors, true);
    number(out, "traps", entry.traps, true);
    number(out, "timeouts", entry.timeouts, true);
    for (label, ms) in [("p50", entry.p50_ms), ("p99", entry.p99_ms)] {
        let _ = write!(
            out,
            "<td class=\"n\" data-label=\"{label}\">{}</td>",
            ms.map_or_else(|| "<span class=\"quiet\">–</span>".to_owned(), latency)
        );
    }
    number(out, "live", entry.live_instances, false);
    match &entry.last_error {
        Some(error) => {
            let ago = entry.last_error_at.map_or_else(String::new, |secs| {
                let at = UNIX_EPOCH + Duration::from_secs(secs);
                let ago = now.duration_since(at).unwrap_or_default();
                format!("<span class=\"ago\">{} ago</span> ", uptime(ago))
            });
            let error = escape(error);
            let _ = write!(
                out,
                "<td class=\"err\" title=\"{error}\"><div>{ago}<code>{error}</code></div></td>"
            );
        }
        None => out.push_str("<td class=\"err\"></td>"),
    }
    out.push_str("</tr>\n");
}

/// A count cell: zero greyed out, and in red when `bad` and above zero.
fn number(out: &mut String, label: &str, n: u64, bad: bool) {
    let class = match (n, bad) {
        (0, _) => " quiet",
        (_, true) => " hot",
        _ => "",
    };
    let _ = write!(
        out,
        "<td class=\"n{class}\" data-label=\"{label}\">{}</td>",
        count(n)
    );
}

/// The CSS class of a state: its name, a space made a dash.
fn css_class(state: &str) -> &'static str {
    match state {
        "failed" => "failed",
        "stale" => "stale",
        "loading" => "loading",
        "ready" => "ready",
        _ => "not-loaded",
    }
}

/// `1234567` as `1,234,567`.
fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A latency in milliseconds with two significant figures or so.
fn latency(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

/// A duration in its two largest units: `3d 4h`, `2h 05m`, `4m 09s`, `7s`.
fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    let (days, hours, minutes, seconds) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes:02}m")
    } else if minutes > 0 {
        format!("{minutes}m {seconds:02}s")
    } else {
        format!("{seconds}s")
    }
}

const STYLE: &str = "\
:root{color-scheme:light dark;--bg:#fff;--fg:#1f2328;--mute:#656d76;--line:#d8dee4;\
--tile:#f3f4f6;--bad:#c62828;--badbg:#fde7e7;--warn:#8a5a00;--warnbg:#fff1cc;\
--ok:#1a7f37;--okbg:#dcf5e3}\
@media(prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--mute:#8d96a0;\
--line:#30363d;--tile:#1c2128;--bad:#ff7b72;--badbg:#3c1618;--warn:#e3b341;\
--warnbg:#3a2c07;--ok:#3fb950;--okbg:#12301c}}\
body{margin:0;padding:1rem 1.25rem;background:var(--bg);color:var(--fg);\
font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif}\
a{color:inherit}code{font:12.5px ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace}\
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.2rem 1rem}\
h1{font-size:1.3rem;margin:0}.meta{color:var(--mute)}.right{margin-left:auto}\
.tiles{display:flex;flex-wrap:wrap;gap:.5rem;list-style:none;margin:.9rem 0 1rem;padding:0}\
.tiles li{background:var(--tile);border-radius:6px;padding:.3rem .75rem}\
.tiles b{font-size:1.15rem;font-variant-numeric:tabular-nums;margin-right:.35em}\
.tiles .failed{background:var(--badbg);color:var(--bad)}\
.tiles .stale{background:var(--warnbg);color:var(--warn)}\
.tiles .ready{background:var(--okbg);color:var(--ok)}.tiles .quiet{color:var(--mute)}\
table{border-collapse:collapse;width:100%}\
th{color:var(--mute);font-size:.75rem;font-weight:600;text-align:left;\
text-transform:uppercase;letter-spacing:.04em}\
th,td{border-bottom:1px solid var(--line);padding:.45rem .6rem;vertical-align:top}\
.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\
.quiet{color:var(--mute)}.hot{color:var(--bad);font-weight:700}\
.badge{border-radius:999px;display:inline-block;font-size:.78rem;font-weight:700;\
padding:.05rem .55rem;white-space:nowrap;background:var(--tile);color:var(--mute)}\
tr.failed,tr.stale{background:linear-gradient(90deg,var(--badbg),transparent 40%)}\
tr.stale{background:linear-gradient(90deg,var(--warnbg),transparent 40%)}\
tr.failed td:first-child{box-shadow:inset 4px 0 var(--bad)}\
tr.stale td:first-child{box-shadow:inset 4px 0 var(--warn)}\
.failed .badge{background:var(--bad);color:#fff}\
.stale .badge{background:var(--warnbg);color:var(--warn)}\
.ready .badge{background:var(--okbg);color:var(--ok)}\
.url{font:600 13px ui-monospace,'SFMono-Regular',Menlo,Consolas,monospace}\
.file{color:var(--mute);font-size:.8rem;white-space:nowrap}\
.err{min-width:16rem;overflow-wrap:anywhere}.err div{display:-webkit-box;\
-webkit-box-orient:vertical;-webkit-line-clamp:2;overflow:hidden}\
.err code{color:var(--bad)}.ago{color:var(--mute);font-size:.8rem}\
@media(max-width:760px){body{padding:.75rem}.right{margin-left:0}\
thead{display:none}table,tbody,tr,td{display:block}\
tr{border-bottom:1px solid var(--line);padding:.5rem .6rem}\
tr.failed{box-shadow:inset 4px 0 var(--bad)}tr.stale{box-shadow:inset 4px 0 var(--warn)}\
tr td:first-child{box-shadow:none!important}\
td{border:0;padding:.1rem 0}td.n{display:inline-block;margin-right:.9rem;text-align:left}\
td.n::before{content:attr(data-label) ' ';color:var(--mute);font-size:.75rem}\
td.n.hot::before{color:inherit}\
.err{min-width:0}}";

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
    use std::collections::BTreeMap;

    use super::super::State;
    use super::*;

    fn page(handlers: Vec<Entry>) -> Page {
        Page {
            version: "1.2.3",
            wasmtime: "48.0.8",
            uptime_seconds: 3 * 3600 + 4 * 60,
            webroot: "/srv".to_owned(),
            requests: 1_234_567,
            in_flight: 0,
            compiles: 1,
            live_instances: 0,
            states: BTreeMap::from([("failed", 1)]),
            handlers,
            unlisted: 0,
        }
    }

    fn entry(file: &str, state: State) -> Entry {
        Entry {
            file: file.to_owned(),
            url: format!("/{file}"),
            state: state.name(),
            rank: state,
            version: None,
            source: None,
            load_ms: None,
            loaded_at: None,
            last_error: None,
            last_error_at: None,
            requests: 0,
            errors: 0,
            traps: 0,
            timeouts: 0,
            p50_ms: None,
            p99_ms: None,
            live_instances: 0,
        }
    }

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
        let mut stale = entry(&format!("{hostile}.wat"), State::Stale);
        stale.url = format!("/{hostile}");
        stale.version = Some(format!("{hostile}0123456789abcdef"));
        stale.source = Some("compiler");
        stale.load_ms = Some(1.5);
        stale.loaded_at = Some(0);
        stale.last_error = Some(format!("{hostile}.wat:1:2: expected `(`"));
        let mut page = page(vec![stale]);
        page.webroot = format!("/srv/{hostile}");
        let html = render(&page);
        assert!(!html.contains("<script"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;.wat"));
        assert!(html.contains("1970-01-01T00:00:00Z"), "{html}");
        assert!(html.contains("<tr class=\"stale\">"), "{html}");
    }

    #[test]
    fn counts_are_grouped_latencies_scaled_and_failures_marked() {
        let mut trapping = entry("t.wat", State::Ready);
        trapping.requests = 12_345;
        trapping.errors = 12_345;
        trapping.traps = 12_345;
        trapping.p50_ms = Some(0.42);
        trapping.p99_ms = Some(2_500.0);
        let html = render(&page(vec![trapping]));
        assert!(html.contains("<b>1,234,567</b>requests"), "{html}");
        assert!(
            html.contains("<td class=\"n hot\" data-label=\"traps\">12,345</td>"),
            "{html}"
        );
        assert!(
            html.contains("<td class=\"n quiet\" data-label=\"timeouts\">0</td>"),
            "{html}"
        );
        assert!(
            html.contains(">0.42 ms<") && html.contains(">2.50 s<"),
            "{html}"
        );
        assert!(html.contains("up 3h 04m"), "{html}");
        assert!(html.contains("<title>1 failed · wasmlet status</title>"));
        assert!(html.contains("<meta http-equiv=\"refresh\" content=\"5\">"));
    }

    #[test]
    fn an_empty_web_root_says_what_to_do() {
        let html = render(&page(Vec::new()));
        assert!(html.contains("No handlers in the web root yet"), "{html}");
    }

    #[test]
    fn durations_show_their_two_largest_units() {
        for (secs, text) in [
            (7, "7s"),
            (249, "4m 09s"),
            (7500, "2h 05m"),
            (3 * 86_400 + 4 * 3600 + 59, "3d 4h"),
        ] {
            assert_eq!(uptime(Duration::from_secs(secs)), text);
        }
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
    }
}
