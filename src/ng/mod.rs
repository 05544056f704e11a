//! rtpengine's NG control protocol: bencode over UDP.
//!
//! Contract: sans-IO. [`message::parse`] turns a datagram into a cookie and
//! a request dictionary (zero-copy, bounded), [`message::write_reply`]
//! frames a reply, [`message::ReplyCache`] answers retransmissions. Facts
//! about the protocol: `../shared/ng-protocol.md` and `docs/ng-reference.md`.

pub mod bencode;
pub mod message;

pub use bencode::{BencodeError, Limits, Value};
pub use message::{FrameError, ReplyCache, Request};
