//! The media builder: offer/answer and media sessions for applications
//! that are a party to a call themselves (softphones, IVRs, test tools),
//! on the engine's media endpoints.
//!
//! | type | owns |
//! |---|---|
//! | [`BuilderManager`] | the engine (shard threads), port allocation, the builder registry, idle cleanup |
//! | [`Builder`] | one party's offer/answer (RFC 3264), its streams, binding their sockets |
//! | [`MediaSession`] | the negotiated media: start/stop, audio and DTMF out, events in, statistics |
//! | [`ManagerConfig`] | validated settings |
//! | [`TranscodingBridge`] | two sessions joined across codecs (PCMU ↔ PCMA), DTMF carried as events |
//! | [`Conference`] | an N-1 mixer over sessions: each participant hears the others |
//! | [`metrics`] | a Prometheus text snapshot of a manager and its sessions |
//!
//! A call in a dozen lines (the README's; it runs as a doctest):
//! ```
//! use std::time::Duration;
//! use mediarelay::builder::{BuilderManager, ManagerConfig, MediaEvent};
//!
//! let mgr = BuilderManager::new(ManagerConfig { local_ip: "127.0.0.1".parse()?, ..ManagerConfig::default() })?;
//! let (alice, bob) = (mgr.create_builder("alice")?, mgr.create_builder("bob")?);
//! bob.process_offer(&alice.create_offer()?)?;          // SDP in and out: mediarelay::sdp::Sdp
//! alice.process_answer(&bob.create_answer()?)?;        // sockets are bound now
//! let (a, b) = (alice.media_session().unwrap(), bob.media_session().unwrap());
//! a.start()?;                                          // nothing starts behind your back
//! b.start()?;
//! a.send_audio(&[0i16; 160])?;                         // 20 ms of 8 kHz PCM, paced by the session
//! a.send_dtmf('5', Duration::from_millis(100))?;       // RFC 4733
//! while let Some(ev) = b.recv_timeout(Duration::from_millis(500)) {
//!     match ev.event {
//!         MediaEvent::Audio(f) => println!("{} samples{}", f.samples.len(), if f.concealed { " (concealed)" } else { "" }),
//!         MediaEvent::Dtmf(d) if d.ended => println!("key {:?} for {:?}", d.event.digit().map(|k| k.as_char()), d.duration),
//!         other => println!("{other:?}"),
//!     }
//! }
//! let st = b.statistics();                             // packets, bytes, loss, jitter, RTT, MOS estimate
//! println!("received {} packets, {} bytes, lost {}", st.packets_received, st.bytes_received, st.lost);
//! mgr.shutdown();                                      // closes everything, joins its threads
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Threads: media runs on the engine's shards; the manager adds one
//! cleanup thread when a session timeout is set; events are taken by the
//! application's own threads (or one per [`MediaSession::on_event`]).
//! [`BuilderManager::shutdown`] joins every thread it started.

mod bridge;
mod conference;
mod config;
mod error;
mod manager;
pub mod metrics;
mod negotiate;
mod session;
mod stream;

pub use bridge::{BridgeStats, TranscodingBridge};
pub use conference::{Conference, ParticipantStats};
pub use config::{ConfigError, ManagerConfig, PortStrategy, outbound_ipv4};
pub use error::{BuilderError, ManagerError, MediaError, Phase};
pub use manager::{BuilderManager, ManagerStatistics};
pub use negotiate::Builder;
pub use session::{MediaSession, MediaStatistics, SessionEvent, StartOptions};
pub use stream::MediaStreamInfo;

// What a builder user needs beside it, so one `use` line does.
pub use crate::media::{MediaEvent, SessionState};
pub use crate::sdp::{Direction, Sdp};
