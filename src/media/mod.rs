//! The media session core (sans-IO): what an endpoint that sends and
//! receives media itself needs between the wire and the application.
//!
//! | file | owns |
//! |---|---|
//! | `endpoint.rs` | the [`Endpoint`] seam the engine's shards drive |
//! | `jitter.rs` | adaptive jitter buffer with G.711 concealment |
//! | `quality.rs` | ITU-T G.107 E-model: R-factor and MOS-CQ per stream |
//! | `session.rs` | [`MediaSession`]: pacing, DTMF, RTCP, playout, quality |
//! | `event.rs` | [`MediaEvent`] and [`Control`] |
//! | `handle.rs` | the application side: [`MediaHandle`], [`MediaEndpoint`] |
//! | `channel.rs` | the lock-free event channel to the application |
//! | `ring.rs`, `pool.rs` | lock-free audio input ring, recycled frames |
//! | `sim.rs` | endpoints on a virtual clock over [`crate::netsim`] |
//! | `capture.rs` | [`Captured`]: pcap capture of what an endpoint sends and receives |
//! | `impair.rs` | [`Impaired`]: send-side loss and jitter for test tools |
//!
//! Nothing here performs I/O, spawns threads or reads a clock: time enters
//! as `now: Instant`, bytes as `&[u8]`, and leave through caller buffers.

pub mod capture;
pub mod channel;
pub mod endpoint;
pub mod event;
pub mod handle;
pub mod impair;
pub mod jitter;
pub mod pool;
pub mod quality;
pub mod ring;
pub mod session;
pub mod sim;

pub use capture::{
    CaptureConfig, CaptureError, CaptureReader, CaptureSummary, Captured, PcapSink, capture,
};
pub use endpoint::{Endpoint, Transmit};
pub use event::{
    AudioFrame, Control, DtmfReport, MediaEvent, PayloadFrame, QualityReport, ReceptionReport,
    RemoteQuality, RtcpReport, SessionState,
};
pub use handle::{EndpointStats, HandleError, MediaEndpoint, MediaHandle, endpoint};
pub use impair::{ImpairConfig, ImpairError, ImpairHandle, ImpairStats, Impaired, impair};
pub use session::{CodecSpec, InputMode, MediaSession, SessionConfig, SessionError, SessionStats};
