//! Prometheus text exposition format 0.0.4 writer, sans-IO.
//!
//! Owns the byte layout of a scrape body: `# HELP` and `# TYPE` lines once
//! per metric family, then one `name{label="value",...} value` line per
//! sample, all samples of a family contiguous. It writes into a caller's
//! `String` and never fails.
//!
//! Contract: metric and label names come from this crate (static strings)
//! and are checked with `debug_assert!` only; label VALUES may come from
//! anywhere and are escaped (`\` -> `\\`, `"` -> `\"`, newline -> `\n`), as
//! are HELP texts (`\` and newline). A family name repeated in one body is
//! a programming error (the format requires one group per family), caught by
//! `debug_assert!`.
//!
//! Reference: Prometheus "Exposition formats", text-based format 0.0.4.

use std::fmt::Write as _;

use super::histogram::HistogramSnapshot;

/// The `Content-Type` of a body this module writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type (the `# TYPE` line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    /// Monotonic count since process start; the name ends in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// Cumulative buckets (`_bucket{le=...}`), `_sum` and `_count`; write
    /// its samples with [`Family::histogram`].
    Histogram,
}

/// A sample value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// An exact integer.
    Int(u64),
    /// A float (`NaN`, `+Inf` and `-Inf` are written the Prometheus way).
    Float(f64),
}

/// Writes one exposition body into a `String`.
#[derive(Debug)]
pub struct TextWriter<'a> {
    out: &'a mut String,
    /// Families started so far (duplicate detection in debug builds).
    #[cfg(debug_assertions)]
    seen: Vec<String>,
}

/// One family being written: add its samples with [`Family::sample`].
#[derive(Debug)]
pub struct Family<'w, 'a> {
    writer: &'w mut TextWriter<'a>,
    name: &'static str,
}

impl MetricType {
    /// The keyword of the `# TYPE` line.
    pub const fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
        }
    }
}

impl<'a> TextWriter<'a> {
    /// A writer appending to `out` (which is not cleared).
    pub fn new(out: &'a mut String) -> Self {
        TextWriter {
            out,
            #[cfg(debug_assertions)]
            seen: Vec::new(),
        }
    }

    /// Starts a family: writes its `# HELP` and `# TYPE` lines. Counter
    /// names must end in `_total`.
    pub fn family<'w>(
        &'w mut self,
        name: &'static str,
        kind: MetricType,
        help: &str,
    ) -> Family<'w, 'a> {
        debug_assert!(valid_metric_name(name), "bad metric name {name:?}");
        debug_assert!(
            kind != MetricType::Counter || name.ends_with("_total"),
            "counter {name:?} must end in _total"
        );
        #[cfg(debug_assertions)]
        {
            debug_assert!(
                !self.seen.iter().any(|n| n == name),
                "family {name:?} written twice"
            );
            self.seen.push(name.to_owned());
        }
        self.out.push_str("# HELP ");
        self.out.push_str(name);
        self.out.push(' ');
        escape_help(help, self.out);
        self.out.push_str("\n# TYPE ");
        self.out.push_str(name);
        self.out.push(' ');
        self.out.push_str(kind.as_str());
        self.out.push('\n');
        Family { writer: self, name }
    }
}

impl Family<'_, '_> {
    /// Writes one sample of this family with `labels` (name, value) in the
    /// given order; an empty slice writes no braces.
    pub fn sample(
        &mut self,
        labels: &[(&'static str, &str)],
        value: impl Into<Value>,
    ) -> &mut Self {
        self.write_sample("", labels, None, value.into());
        self
    }

    /// Writes one histogram of this (histogram) family with `labels`: a
    /// `_bucket` sample per bucket (`le` label last, cumulative counts),
    /// then `_sum` (seconds) and `_count`.
    pub fn histogram(
        &mut self,
        labels: &[(&'static str, &str)],
        h: &HistogramSnapshot,
    ) -> &mut Self {
        let mut le = String::new();
        for (bound, n) in h.cumulative() {
            le.clear();
            Value::Float(bound).write(&mut le);
            self.write_sample("_bucket", labels, Some(&le), Value::Int(n));
        }
        self.write_sample("_sum", labels, None, Value::Float(h.sum_seconds()));
        self.write_sample("_count", labels, None, Value::Int(h.count()));
        self
    }

    /// `name` + `suffix`, `labels` (then `le`, when given) and the value.
    fn write_sample(
        &mut self,
        suffix: &str,
        labels: &[(&'static str, &str)],
        le: Option<&str>,
        value: Value,
    ) {
        let out = &mut *self.writer.out;
        out.push_str(self.name);
        out.push_str(suffix);
        let le = le.map(|v| ("le", v));
        if !labels.is_empty() || le.is_some() {
            out.push('{');
            for (i, (name, value)) in labels.iter().copied().chain(le).enumerate() {
                debug_assert!(valid_label_name(name), "bad label name {name:?}");
                if i > 0 {
                    out.push(',');
                }
                out.push_str(name);
                out.push_str("=\"");
                escape_label_value(value, out);
                out.push('"');
            }
            out.push('}');
        }
        out.push(' ');
        value.write(out);
        out.push('\n');
    }
}

impl Value {
    /// Appends the value as the format spells it.
    fn write(self, out: &mut String) {
        match self {
            // Writing into a String cannot fail.
            Value::Int(v) => {
                let _ = write!(out, "{v}");
            }
            Value::Float(v) if v.is_nan() => out.push_str("NaN"),
            Value::Float(v) if v == f64::INFINITY => out.push_str("+Inf"),
            Value::Float(v) if v == f64::NEG_INFINITY => out.push_str("-Inf"),
            Value::Float(v) => {
                let _ = write!(out, "{v}");
            }
        }
    }
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(v)
    }
}

impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(u64::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

/// HELP text: `\` -> `\\`, newline -> `\n`.
fn escape_help(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Label value: `\` -> `\\`, `"` -> `\"`, newline -> `\n`.
fn escape_label_value(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved).
fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The value of `series` (a metric name, with its labels as exposed, e.g.
/// `mediarelay_dropped_packets_total{reason="srtp"}`) in exposition text;
/// `None` when it is not there or not an integer. A reader's helper: for
/// tools and tests that scrape `/metrics`.
pub fn read_sample(text: &str, series: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_read_by_exact_series() {
        let text = "# TYPE mediarelay_fast_path_streams gauge\nmediarelay_fast_path_streams 12\nmediarelay_fast_path_streams_x 3\nmediarelay_dropped_packets_total{reason=\"srtp\"} 9\nmediarelay_calls 4 1700000000000\n";
        assert_eq!(read_sample(text, "mediarelay_fast_path_streams"), Some(12));
        assert_eq!(
            read_sample(text, "mediarelay_dropped_packets_total{reason=\"srtp\"}"),
            Some(9)
        );
        // A timestamp after the value is not part of it.
        assert_eq!(read_sample(text, "mediarelay_calls"), Some(4));
        // Another series with the same prefix, or none, is not read.
        assert_eq!(read_sample(text, "mediarelay_dropped_packets_total"), None);
        assert_eq!(read_sample(text, "mediarelay_streams"), None);
    }
    use proptest::prelude::*;

    #[test]
    fn family_header_once_then_samples() {
        let mut s = String::new();
        let mut w = TextWriter::new(&mut s);
        w.family("mediarelay_calls", MetricType::Gauge, "Live calls.")
            .sample(&[], 3u64);
        w.family(
            "mediarelay_dropped_packets_total",
            MetricType::Counter,
            "Dropped packets.",
        )
        .sample(&[("reason", "loop")], 1u64)
        .sample(&[("reason", "no_peer")], 0u64);
        assert_eq!(
            s,
            "# HELP mediarelay_calls Live calls.\n\
             # TYPE mediarelay_calls gauge\n\
             mediarelay_calls 3\n\
             # HELP mediarelay_dropped_packets_total Dropped packets.\n\
             # TYPE mediarelay_dropped_packets_total counter\n\
             mediarelay_dropped_packets_total{reason=\"loop\"} 1\n\
             mediarelay_dropped_packets_total{reason=\"no_peer\"} 0\n"
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut s = String::new();
        let mut w = TextWriter::new(&mut s);
        w.family("x", MetricType::Gauge, "a \\ b\nc \"q\"").sample(
            &[("a", "back\\slash"), ("b", "q\"uote"), ("c", "new\nline")],
            1u64,
        );
        assert_eq!(
            s,
            "# HELP x a \\\\ b\\nc \"q\"\n\
             # TYPE x gauge\n\
             x{a=\"back\\\\slash\",b=\"q\\\"uote\",c=\"new\\nline\"} 1\n"
        );
    }

    #[test]
    fn float_values() {
        let mut s = String::new();
        let mut w = TextWriter::new(&mut s);
        w.family("f", MetricType::Gauge, "h")
            .sample(&[("v", "a")], 1.5)
            .sample(&[("v", "b")], 0.000_000_1)
            .sample(&[("v", "c")], f64::NAN)
            .sample(&[("v", "d")], f64::INFINITY)
            .sample(&[("v", "e")], f64::NEG_INFINITY)
            .sample(&[("v", "f")], 2.0)
            .sample(&[("v", "g")], u64::MAX);
        let values: Vec<&str> = s
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(
            values,
            [
                "1.5",
                "0.0000001",
                "NaN",
                "+Inf",
                "-Inf",
                "2",
                "18446744073709551615"
            ]
        );
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "written twice")]
    fn duplicate_family_is_caught() {
        let mut s = String::new();
        let mut w = TextWriter::new(&mut s);
        w.family("x", MetricType::Gauge, "h");
        w.family("x", MetricType::Gauge, "h");
    }

    #[test]
    fn histogram_samples() {
        let h = crate::metrics::histogram::Histogram::default();
        h.observe(std::time::Duration::from_micros(40));
        h.observe(std::time::Duration::from_millis(2));
        h.observe(std::time::Duration::from_secs(5));
        let mut s = String::new();
        let mut w = TextWriter::new(&mut s);
        w.family("lat_seconds", MetricType::Histogram, "Latency.")
            .histogram(&[("command", "offer")], &h.snapshot());
        w.family("plain_seconds", MetricType::Histogram, "No labels.")
            .histogram(&[], &crate::metrics::HistogramSnapshot::default());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], "# HELP lat_seconds Latency.");
        assert_eq!(lines[1], "# TYPE lat_seconds histogram");
        assert_eq!(
            lines[2],
            "lat_seconds_bucket{command=\"offer\",le=\"0.00005\"} 1"
        );
        assert!(lines.contains(&"lat_seconds_bucket{command=\"offer\",le=\"0.001\"} 1"));
        assert!(lines.contains(&"lat_seconds_bucket{command=\"offer\",le=\"0.0025\"} 2"));
        assert!(lines.contains(&"lat_seconds_bucket{command=\"offer\",le=\"1\"} 2"));
        assert!(lines.contains(&"lat_seconds_bucket{command=\"offer\",le=\"+Inf\"} 3"));
        assert!(lines.contains(&"lat_seconds_sum{command=\"offer\"} 5.00204"));
        assert!(lines.contains(&"lat_seconds_count{command=\"offer\"} 3"));
        assert!(lines.contains(&"plain_seconds_bucket{le=\"+Inf\"} 0"));
        assert!(lines.contains(&"plain_seconds_sum 0"));
        assert!(lines.contains(&"plain_seconds_count 0"));
        assert_eq!(
            lines.len(),
            2 * (2 + crate::metrics::histogram::BUCKETS + 2)
        );
    }

    #[test]
    fn name_checks() {
        assert!(valid_metric_name("mediarelay_x:y_total"));
        assert!(!valid_metric_name("1x"));
        assert!(!valid_metric_name("a-b"));
        assert!(!valid_metric_name(""));
        assert!(valid_label_name("shard"));
        assert!(!valid_label_name("__name__"));
        assert!(!valid_label_name("a:b"));
    }

    /// Undoes [`escape_label_value`] (the reader's side of the format).
    fn unescape(s: &str) -> Option<String> {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next()? {
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    'n' => out.push('\n'),
                    _ => return None,
                },
                '"' | '\n' => return None,
                c => out.push(c),
            }
        }
        Some(out)
    }

    proptest! {
        #[test]
        fn label_value_round_trips(v in any::<String>()) {
            let mut e = String::new();
            escape_label_value(&v, &mut e);
            prop_assert!(!e.contains('\n'));
            prop_assert_eq!(unescape(&e), Some(v));
        }
    }
}
