//! The figures of a run: each printed as a `## path=value` line as it is
//! measured, and kept for the JSON report, where a dotted path
//! (`stress.massive.success`) becomes nested objects.

use serde_json::{Map, Value};

/// Version of the JSON report's layout.
pub const SCHEMA: &str = "loadgen/1";

/// The figures measured so far.
#[derive(Debug)]
pub struct Figures {
    root: Map<String, Value>,
    echo: bool,
}

impl Default for Figures {
    /// Figures that are printed as they are put.
    fn default() -> Self {
        Figures {
            root: Map::new(),
            echo: true,
        }
    }
}

impl Figures {
    /// Figures that are kept, not printed (the caller prints a summary).
    pub fn quiet() -> Self {
        Figures {
            root: Map::new(),
            echo: false,
        }
    }

    /// The value at a dotted path, if put.
    pub fn get(&self, path: &str) -> Option<&Value> {
        let mut segs = path.split('.');
        let mut v = self.root.get(segs.next()?)?;
        for s in segs {
            v = v.get(s)?;
        }
        Some(v)
    }

    /// Prints and keeps one figure. A path's segments are separated by
    /// dots; a later figure of the same path replaces the earlier one.
    pub fn put(&mut self, path: &str, value: impl Into<Value>) {
        let value = value.into();
        let shown = match &value {
            Value::String(s) => s.clone(),
            Value::Null => "none".to_owned(),
            v => v.to_string(),
        };
        if self.echo {
            println!("## {path}={shown}");
        }
        let mut node = &mut self.root;
        let mut segments = path.split('.').peekable();
        while let Some(seg) = segments.next() {
            if segments.peek().is_none() {
                node.insert(seg.to_owned(), value);
                return;
            }
            let child = node
                .entry(seg.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            let Value::Object(map) = child else {
                // Made an object just above.
                return;
            };
            node = map;
        }
    }

    /// Prints and keeps a real figure rounded to `decimals` places (a
    /// value that is not finite is kept as `null`).
    pub fn real(&mut self, path: &str, value: f64, decimals: i32) {
        let scale = 10f64.powi(decimals);
        self.put(path, (value * scale).round() / scale);
    }

    /// The JSON report: the schema, the environment of the run and every
    /// figure.
    pub fn to_json(&self) -> Value {
        let mut doc = Map::new();
        doc.insert("schema".to_owned(), SCHEMA.into());
        doc.insert("environment".to_owned(), environment());
        for (k, v) in &self.root {
            doc.insert(k.clone(), v.clone());
        }
        Value::Object(doc)
    }
}

/// Where the run took place: kernel release, CPU model, cores, loadgen
/// version (`null` for what cannot be read).
fn environment() -> Value {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_owned());
    let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_owned())
    });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    serde_json::json!({
        "kernel": kernel,
        "cpu_model": cpu,
        "cores": cores,
        "loadgen_version": env!("CARGO_PKG_VERSION"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_nest() {
        let mut f = Figures::default();
        f.put("stress.massive.success", 20u64);
        f.real("stress.massive.calls_per_s", 123.456, 1);
        f.put("stress.success_rate", 100.0);
        let j = f.to_json();
        assert_eq!(j["schema"], SCHEMA);
        assert_eq!(j["stress"]["massive"]["success"], 20);
        assert_eq!(j["stress"]["massive"]["calls_per_s"], 123.5);
        assert_eq!(j["stress"]["success_rate"], 100.0);
        assert!(j["environment"]["cores"].as_u64().unwrap() >= 1);
    }
}
