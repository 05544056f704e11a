//! Prometheus metrics: the text exposition writer, the families mediarelay
//! exposes, and a small HTTP server for `GET /metrics` and `GET /ping`.
//!
//! | file | owns |
//! |---|---|
//! | [`exposition`] | sans-IO text format 0.0.4 writer (HELP/TYPE, labels, escaping) |
//! | [`histogram`] | lock-free fixed-bucket duration histogram ([`Histogram`]) |
//! | [`snapshot`] | reading the engine's lock-free counters; rendering every family |
//! | [`request`] | sans-IO HTTP request-head parsing and routing |
//! | [`server`] | the one-thread HTTP server ([`MetricsServer`]) |
//!
//! Wiring, in the daemon:
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use mediarelay::engine::Engine;
//! # use mediarelay::metrics::{MetricsServer, render};
//! # fn f(engine: Arc<Engine>) -> std::io::Result<()> {
//! let e = Arc::clone(&engine);
//! let server = MetricsServer::start("127.0.0.1:9100", move |out: &mut String| {
//!     render(&e, None, out)
//! })?;
//! // ... on exit:
//! server.shutdown();
//! # Ok(()) }
//! ```
//!
//! Every family is listed in docs/metrics.md.

pub mod exposition;
pub mod histogram;
pub mod request;
pub mod server;
pub mod snapshot;

pub use exposition::{CONTENT_TYPE, MetricType, TextWriter, Value, read_sample};
pub use histogram::{Histogram, HistogramSnapshot};
pub use server::{HttpConfig, MetricsServer, scrape};
pub use snapshot::{NgCounters, ShardSnapshot, Snapshot};

use crate::engine::Engine;

/// Appends the exposition body for `engine` (and the NG counters, when
/// given) to `out`. Lock-free: only relaxed loads of published counters.
pub fn render(engine: &Engine, ng: Option<&dyn NgCounters>, out: &mut String) {
    Snapshot::of(engine).render(ng, out);
}
