//! ICE (RFC 8445) for a media relay: credentials (RFC 8839 §5.4),
//! candidates as SDP carries them (RFC 8839 §5.1) and [`IceAgent`], a
//! full ICE agent for one media stream whose local side is the relay's own
//! sockets (one host candidate per component).
//!
//! Contract: sans-IO, on a virtual clock. The caller feeds STUN datagrams
//! that arrived on its sockets to [`IceAgent::handle_stun`], calls
//! [`IceAgent::handle_timeout`] at [`IceAgent::poll_timeout`], sends what
//! [`IceAgent::poll_transmit`] writes into its buffer, and reads
//! [`IceEvent`]s (selection, failure, consent loss) from
//! [`IceAgent::poll_event`]. Candidates, pairs, transactions and queues are
//! bounded; bad input is a typed [`IceError`]. See `docs/ice.md` for the
//! choices (regular nomination, timers) and deviations.

pub mod agent;
pub mod candidate;
pub mod credentials;

pub use agent::{AgentConfig, IceAgent, IceError, IceEvent, IceTransmit};
pub use candidate::{
    Candidate, CandidateError, CandidateType, ConnectionAddress, host_priority, prflx_priority,
};
pub use credentials::{CredentialsError, IceCredentials, is_valid_pwd, is_valid_ufrag};
