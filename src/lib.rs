//! # mediarelay
//!
//! A Linux RTP media relay and media library.
//!
//! This crate is layered. Everything in the modules below is *sans-IO*: plain
//! data structures and state machines with no sockets, threads or clocks.
//! Time enters as a `now: Instant` parameter, bytes enter as `&[u8]` and leave
//! through caller-provided buffers, so every protocol core is testable
//! deterministically on a virtual clock. Only the engine (a later module)
//! touches io_uring, epoll or sockets.
//!
//! | module | owns |
//! |---|---|
//! | [`rtp`] | RTP packet view and writer (RFC 3550 §5), receive statistics (RFC 3550 A.1, A.3, A.8) |
//! | [`rtcp`] | RTCP compound packets (RFC 3550 §6), XR VoIP Metrics (RFC 3611 §4.7), RTP/RTCP demultiplexing (RFC 5761 §4), report generation |
//! | [`dtmf`] | RFC 4733 telephone-events: payload, sender and receiver state machines |
//! | [`codec`] | G.711 µ-law / A-law (ITU-T G.711), packet loss concealment (G.711 App. I), the codec trait |
//! | [`sdp`] | Tolerant, lossless SDP (RFC 8866) and offer/answer (RFC 3264) |
//! | [`stun`] | STUN messages for ICE (RFC 8489): parse, integrity and fingerprint checks, writer |
//! | [`ice`] | ICE (RFC 8445) for a relay: credentials, candidates, the connectivity-check agent with consent freshness (RFC 7675) |
//! | [`srtp`] | SDES-SRTP: SRTP/SRTCP with AES-CM and HMAC-SHA1 (RFC 3711), the `a=crypto` attribute (RFC 4568) |
//! | `dtls` | DTLS-SRTP keying on OpenSSL (RFC 5763, RFC 5764): certificate, `a=fingerprint`, `a=setup`, the handshake of a transport |
//! | [`builder`] | Offer/answer and media sessions for applications that are a party to the call: manager, builders, sessions |
//! | [`media`] | Media session core: pacing, RFC 4733 DTMF, RTCP scheduling, jitter buffer, E-model quality |
//! | [`audio`] | Mono 16-bit PCM building blocks: tone, DTMF (ITU-T Q.23) and noise sources, WAV files, mixer, N-1 conference bridge, call recorder, level/frequency/DTMF analysis |
//! | [`netsim`] | In-memory network with seeded impairments on a virtual clock |
//! | [`ports`] | Lock-free, per-shard RTP/RTCP port allocator |
//! | [`relay`] | Sans-IO relay core: latching, forwarding decision, timeouts, counters |
//! | [`engine`] | Per-core shards on io_uring or epoll; the embedding API |
//! | [`ng`] | rtpengine NG control protocol: bencode, framing, reply cache |
//! | [`daemon`] | The `mediarelay` daemon as a function of its command line |
//! | [`ctl`] | `mediarelay ctl`: control CLI of a running daemon over NG (like `rtpengine-ctl`) |
//! | [`metrics`] | Prometheus text exposition, `/metrics` and `/ping` HTTP endpoint |
//! | [`syslog`] | Logging to the local syslog daemon (RFC 3164 over `/dev/log`), `--log-facility` |
#![warn(missing_docs)]
#![deny(unsafe_code)]

pub mod audio;
pub mod builder;
pub mod codec;
#[cfg(feature = "daemon")]
pub mod config;
#[cfg(feature = "daemon")]
pub mod ctl;
#[cfg(feature = "daemon")]
pub mod daemon;
pub mod dtls;
pub mod dtmf;
#[allow(unsafe_code)]
pub mod engine;
pub mod ice;
pub mod media;
#[cfg(feature = "daemon")]
pub mod metrics;
pub mod netsim;
#[cfg(feature = "daemon")]
pub mod ng;
pub mod ports;
pub mod relay;
pub mod rtcp;
pub mod rtp;
pub mod sdp;
pub mod srtp;
pub mod stun;
#[cfg(feature = "daemon")]
pub mod syslog;
