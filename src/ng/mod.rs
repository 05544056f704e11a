//! rtpengine's NG control protocol: bencode over UDP.
//!
//! Contract: sans-IO except [`server`]. [`message::parse`] turns a datagram
//! into a cookie and a request dictionary (zero-copy, bounded),
//! [`message::write_reply`] frames a reply, [`message::ReplyCache`] answers
//! retransmissions. [`Handler`] executes commands against a [`MediaPlane`]
//! (the relay engine) and keeps the call table; [`server`] runs it on a UDP
//! socket. Facts about the protocol, as rtpengine 10.5 implements it, and
//! what this relay implements: `docs/ng-reference.md`.

pub mod bencode;
mod call;
pub mod counters;
pub mod handler;
mod ice;
pub mod json;
pub mod media;
pub mod message;
pub mod owned;
pub mod redact;
mod rekey;
mod sdes;
mod sdp_out;
pub mod server;

pub use bencode::{BencodeError, Limits, Value};
pub use counters::{Command, NgCounters, Outcome};
pub use handler::{Handler, HandlerConfig};
pub use media::MediaPlane;
pub use message::{FrameError, ReplyCache, Request};
pub use owned::OwnedValue;
pub use server::{NgServer, ServerError};
