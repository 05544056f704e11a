//! The media session core (sans-IO): what an endpoint that sends and
//! receives media itself needs between the wire and the application.
//!
//! | file | owns |
//! |---|---|
//! | `endpoint.rs` | the [`Endpoint`] seam the engine's shards drive |
//! | `jitter.rs` | adaptive jitter buffer with G.711 concealment |
//! | `quality.rs` | ITU-T G.107 E-model: R-factor and MOS-CQ per stream |
//!
//! Nothing here performs I/O, spawns threads or reads a clock: time enters
//! as `now: Instant`, bytes as `&[u8]`, and leave through caller buffers.

pub mod endpoint;
pub mod jitter;
pub mod quality;

pub use endpoint::{Endpoint, Transmit};
