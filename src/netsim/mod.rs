//! In-memory datagram network with seeded impairments on a virtual clock,
//! for deterministic simulation tests of sans-IO peers (in the spirit of
//! Linux netem, but with no sockets, threads or clock reads).
//!
//! | file | owns |
//! |---|---|
//! | `network.rs` | [`Network`]: path settings, delivery queue, [`Datagram`] |
//! | `path.rs` | per-path state and the impairment pipeline, [`PathStats`] |
//! | `impairments.rs` | [`Impairments`], [`Gilbert`] burst loss, validation |
//! | `rng.rs` | [`Rng`]: seeded xoshiro256** |
//! | `clock.rs` | [`VirtualClock`] |
//! | `error.rs` | [`NetsimError`] |
//!
//! # Model
//!
//! A *path* is one direction between two exact socket addresses. Its
//! [`Impairments`] come from [`Network::set_path`] for that pair, else from
//! [`Network::set_ip_path`] for the IP pair, else from
//! [`Network::set_default`]. A datagram passed to [`Network::send`] at `now`
//! goes through, in this order:
//!
//! 1. **Burst loss** ([`Gilbert`]): the two-state chain steps once, then the
//!    datagram is lost with the state's loss probability.
//! 2. **Random loss**: lost with probability `loss`.
//! 3. **Rate limit** (`rate_bps`): the datagram waits for the backlog ahead
//!    of it and then takes `(len + 28) * 8 / rate_bps` seconds to serialise;
//!    if the backlog it finds exceeds `queue_limit`, it is tail-dropped.
//!    Lost datagrams never occupy the link.
//! 4. **Delay and jitter**: `delay` plus a uniform draw in `[0, jitter]`.
//! 5. **Reordering hold**: with probability `reorder`, `reorder_delay` more,
//!    so later datagrams overtake it.
//! 6. **No-reorder clamp** (unless `jitter_reorders`): a datagram not held
//!    back is never delivered before an earlier one on the path that was not
//!    held back (nor before its duplicate copy).
//! 7. **Duplication**: with probability `duplicate`, a copy follows
//!    `[0, 1)` ms after the original.
//!
//! The test drives time: it calls [`Network::poll_timeout`] for the next
//! delivery instant, advances its [`VirtualClock`] there, and drains
//! [`Network::poll_deliver`].
//!
//! # Ordering guarantees
//!
//! * Deliveries come out in `deliver_at` order; equal instants come out in
//!   the order they were queued (send order, an original before its copy).
//! * Within a path without `reorder` and `jitter_reorders`, datagrams
//!   (copies included) arrive in send order. Without rate limit and
//!   duplication, every datagram not held back arrives in `[sent + delay,
//!   sent + delay + jitter]`: the clamp never pushes one past that bound.
//! * `poll_deliver(now)` hands out only datagrams with `deliver_at <= now`,
//!   and `deliver_at` is never before `sent`.
//!
//! # Determinism
//!
//! The same seed and the same sequence of calls give exactly the same
//! deliveries. Each path draws from its own [`Rng`] stream, derived from the
//! network seed and the path's address pair, so traffic on one path never
//! shifts another path's impairment pattern. Every datagram draws the same
//! fixed set of random numbers whatever the settings, so switching one
//! impairment on (say duplication) does not change which datagrams another
//! (say loss) hits. All maps are ordered (`BTreeMap`, a heap keyed by
//! instant and sequence number); nothing depends on hash iteration order.

mod clock;
mod error;
mod impairments;
mod network;
mod path;
mod rng;

pub use clock::VirtualClock;
pub use error::NetsimError;
pub use impairments::{Gilbert, Impairments, MAX_DURATION};
pub use network::{Datagram, Network};
pub use path::{IPV4_UDP_OVERHEAD, PathStats};
pub use rng::Rng;
