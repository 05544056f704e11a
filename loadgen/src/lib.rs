//! # loadgen
//!
//! The measurement core of the mediarelay load generator: what every
//! subcommand shares to tell the truth about a relay or the media library.
//!
//! | module | owns |
//! |---|---|
//! | [`probe`] | the probe payload each RTP packet carries: run, stream, extended sequence, scheduled and actual send time |
//! | [`clock`] | the monotonic nanosecond clock both ends of a run read |
//! | [`stream`] | per-stream receive accounting: loss taxonomy (lost, late, duplicates, reordered, max gap, bursts), RFC 3550 jitter |
//! | [`latency`] | HDR latency histograms from the scheduled and the actual send time, whole run and per second |
//! | [`audit`] | generator self-audit: send lag, missed ticks, ENOBUFS/EAGAIN, the kernel's UDP buffer errors; run validity |
//! | [`cpu`] | CPU time of the system under test from /proc |
//! | [`floor`] | the kernel's floor: the least CPU a UDP datagram costs on this host (`loadgen floor`) |
//! | [`stress`] | the media builder stress run (`loadgen stress`, and the `stress_test` example) |
//!
//! Open loop: packets are scheduled on a fixed grid, and latency is
//! measured from the *scheduled* send time as well as the actual one, so a
//! generator that falls behind shows up as latency (coordinated omission
//! corrected) and in its own audit, never as a quieter relay.
//!
//! The `loadgen` binary drives it; its first subcommand, `loadgen stress
//! [--quick] [--scale F] [--json FILE]`, puts the media builder library
//! under the five stress sub-tests and writes every figure as
//! `stress.<subtest>.<figure>` (JSON schema `loadgen/1`).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod audit;
pub mod clock;
pub mod compare;
pub mod cpu;
pub mod figures;
pub mod floor;
pub mod latency;
pub mod ng;
pub mod plot;
pub mod probe;
pub mod relay;
pub mod setup;
pub mod stream;
pub mod stress;
