//! A scrape of `/metrics`, parsed from the Prometheus text format so tests
//! can ask for one sample's exact value.

use std::fmt;

/// The samples of one scrape.
pub struct Metrics {
    text: String,
    samples: Vec<Sample>,
}

struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

impl Metrics {
    /// Parses the text format. Panics on a line it cannot read: the runtime
    /// must never serve one.
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| parse_sample(line).unwrap_or_else(|| panic!("unreadable sample: {line}")))
            .collect();
        Self {
            text: text.to_owned(),
            samples,
        }
    }

    /// The value of the sample `name` whose labels are exactly `labels`, in
    /// any order; `None` when there is no such sample.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.samples
            .iter()
            .find(|s| {
                s.name == name
                    && s.labels.len() == labels.len()
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            })
            .map(|s| s.value)
    }

    /// The scrape as served.
    pub fn text(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `name{k="v",…} value [timestamp]` or `name value [timestamp]`.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        rest = after_brace;
        loop {
            rest = rest.trim_start_matches(',');
            if let Some(after) = rest.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = rest.find('=')?;
            let key = rest[..eq].to_owned();
            rest = rest[eq + 1..].strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            rest = &rest[end + 1..];
            labels.push((key, value));
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Sample {
        name,
        labels,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_name_and_exact_labels() {
        let metrics = Metrics::parse(
            "# HELP a_total A.\n# TYPE a_total counter\n\
             a_total{handler=\"/x.wat\",status=\"200\"} 3\n\
             b 0\n\
             h_bucket{handler=\"/q\\\"t\",le=\"+Inf\"} 2\n",
        );
        assert_eq!(
            metrics.value("a_total", &[("status", "200"), ("handler", "/x.wat")]),
            Some(3.0)
        );
        assert_eq!(metrics.value("a_total", &[("handler", "/x.wat")]), None);
        assert_eq!(metrics.value("b", &[]), Some(0.0));
        assert_eq!(
            metrics.value("h_bucket", &[("handler", "/q\"t"), ("le", "+Inf")]),
            Some(2.0)
        );
    }
}
