//! Address learning for one relay stream: symmetric RTP latching, strict
//! source, and RTP-bleed protection.
//!
//! A [`Latch`] decides, for each packet arriving on a relay port, whether its
//! source address is acceptable, and which address the relay sends to when it
//! forwards media *to* that endpoint. It is the single place where the
//! latch/forward decision on addresses lives, so that a later in-kernel fast
//! path can mirror it exactly.
//!
//! Rules (see `docs/relay.md`):
//! - **Symmetric** (RFC 4961 symmetric RTP; rtpengine's default): the first
//!   packet latches the endpoint. Within the *learning window* (after setup,
//!   or after [`Latch::restart_learning`] on a re-offer) a packet from another
//!   address re-latches to it. After the window a different source is
//!   accepted only if it continues the latched RTP stream (same SSRC, sequence
//!   number 1..=`max_seq_gap` ahead of the last one): a NAT rebinding.
//!   Anything else is dropped ([`LatchVerdict::Drop`]): this is the RTP-bleed
//!   hijack (an attacker spraying relay ports cannot know SSRC and sequence).
//! - **Strict source** on top of symmetric: after the window, never re-latch.
//! - **Asymmetric**: never learn; media is sent to the signalled address.
//!   Packets from anywhere are accepted, unless strict source is set, when
//!   only the signalled address is.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::rtp::Ssrc;

/// How the relay learns where to send media to an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressMode {
    /// Learn from received packets (symmetric RTP, RFC 4961).
    #[default]
    Symmetric,
    /// Use the signalled address only.
    Asymmetric,
}

/// Per-stream learning policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatchPolicy {
    /// Symmetric (learn) or asymmetric (signalled only).
    pub mode: AddressMode,
    /// Drop packets whose source is not the expected one, with no
    /// continuity-based re-latching after the learning window.
    pub strict_source: bool,
    /// How long after setup or re-offer a new source may take over.
    pub learning_window: Duration,
    /// Largest forward sequence jump still counted as continuity when a
    /// latched RTP stream moves to a new source address.
    pub max_seq_gap: u16,
}

impl Default for LatchPolicy {
    fn default() -> Self {
        LatchPolicy {
            mode: AddressMode::Symmetric,
            strict_source: false,
            learning_window: Duration::from_secs(3),
            max_seq_gap: 32,
        }
    }
}

/// What a [`Latch`] says about one packet's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchVerdict {
    /// From the expected source (or accepted without learning).
    Accept,
    /// Accepted, and the endpoint is now this address (first packet,
    /// re-latch in the learning window, or continuity after it).
    Latched {
        /// Previously latched address, if any.
        previous: Option<SocketAddr>,
    },
    /// Not acceptable: count and drop.
    Drop,
}

/// Address learning state of one stream endpoint.
#[derive(Debug, Clone)]
pub struct Latch {
    policy: LatchPolicy,
    signalled: Option<SocketAddr>,
    latched: Option<SocketAddr>,
    learning_until: Instant,
    /// SSRC and sequence of the last accepted RTP packet from the latched
    /// source, for continuity checks.
    last_rtp: Option<(Ssrc, u16)>,
}

impl Latch {
    /// A latch whose learning window starts at `now`.
    pub fn new(policy: LatchPolicy, now: Instant) -> Self {
        Latch {
            policy,
            signalled: None,
            latched: None,
            learning_until: now + policy.learning_window,
            last_rtp: None,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> LatchPolicy {
        self.policy
    }

    /// Changes the policy (re-offer with other flags); learning restarts.
    pub fn set_policy(&mut self, policy: LatchPolicy, now: Instant) {
        self.policy = policy;
        self.restart_learning(now);
    }

    /// Sets the address signalled in SDP (or `None` when unknown / on hold
    /// with `0.0.0.0`).
    pub fn set_signalled(&mut self, addr: Option<SocketAddr>) {
        self.signalled = addr;
    }

    /// The signalled address.
    pub fn signalled(&self) -> Option<SocketAddr> {
        self.signalled
    }

    /// The learned address, if any packet has latched.
    pub fn latched(&self) -> Option<SocketAddr> {
        self.latched
    }

    /// Opens a new learning window at `now` (re-offer, re-INVITE).
    pub fn restart_learning(&mut self, now: Instant) {
        self.learning_until = now + self.policy.learning_window;
    }

    /// True while a new source may take over without continuity.
    pub fn is_learning(&self, now: Instant) -> bool {
        now < self.learning_until
    }

    /// Where media for this endpoint is sent.
    pub fn send_addr(&self) -> Option<SocketAddr> {
        match self.policy.mode {
            AddressMode::Symmetric => self.latched.or(self.signalled),
            AddressMode::Asymmetric => self.signalled,
        }
    }

    /// Judges a packet from `src`; `rtp` is its SSRC and sequence number
    /// when it is RTP (RTCP and other packets pass `None`).
    pub fn check(
        &mut self,
        now: Instant,
        src: SocketAddr,
        rtp: Option<(Ssrc, u16)>,
    ) -> LatchVerdict {
        if self.policy.mode == AddressMode::Asymmetric {
            if self.policy.strict_source && self.signalled != Some(src) {
                return LatchVerdict::Drop;
            }
            self.last_rtp = rtp.or(self.last_rtp);
            return LatchVerdict::Accept;
        }
        let Some(current) = self.latched else {
            return self.latch(src, rtp);
        };
        if current == src {
            self.last_rtp = rtp.or(self.last_rtp);
            return LatchVerdict::Accept;
        }
        if self.is_learning(now) {
            return self.latch(src, rtp);
        }
        if !self.policy.strict_source && self.continues(rtp) {
            return self.latch(src, rtp);
        }
        LatchVerdict::Drop
    }

    fn latch(&mut self, src: SocketAddr, rtp: Option<(Ssrc, u16)>) -> LatchVerdict {
        let previous = self.latched.replace(src);
        self.last_rtp = rtp;
        LatchVerdict::Latched { previous }
    }

    /// Same SSRC as the latched stream and a small forward sequence step.
    fn continues(&self, rtp: Option<(Ssrc, u16)>) -> bool {
        let (Some((ssrc, seq)), Some((last_ssrc, last_seq))) = (rtp, self.last_rtp) else {
            return false;
        };
        let step = seq.wrapping_sub(last_seq);
        ssrc == last_ssrc && step >= 1 && step <= self.policy.max_seq_gap
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn first_packet_latches_and_learning_window_relatches() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchPolicy::default(), t0);
        l.set_signalled(Some(addr("192.0.2.1:4000")));
        assert_eq!(l.send_addr(), Some(addr("192.0.2.1:4000")));
        let a = addr("198.51.100.7:5000");
        assert_eq!(
            l.check(t0, a, Some((Ssrc(1), 10))),
            LatchVerdict::Latched { previous: None }
        );
        assert_eq!(l.send_addr(), Some(a));
        assert_eq!(l.check(t0, a, Some((Ssrc(1), 11))), LatchVerdict::Accept);
        // Within the window another source takes over.
        let b = addr("198.51.100.8:5000");
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            l.check(t1, b, Some((Ssrc(9), 1))),
            LatchVerdict::Latched { previous: Some(a) }
        );
        assert_eq!(l.send_addr(), Some(b));
    }

    #[test]
    fn rtp_bleed_after_window_is_dropped() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchPolicy::default(), t0);
        let a = addr("198.51.100.7:5000");
        l.check(t0, a, Some((Ssrc(1), 100)));
        let late = t0 + Duration::from_secs(10);
        let attacker = addr("203.0.113.66:40000");
        // Attacker guesses wrong SSRC, or sends non-RTP: dropped.
        assert_eq!(
            l.check(late, attacker, Some((Ssrc(2), 101))),
            LatchVerdict::Drop
        );
        assert_eq!(l.check(late, attacker, None), LatchVerdict::Drop);
        // Right SSRC but sequence far ahead: dropped.
        assert_eq!(
            l.check(late, attacker, Some((Ssrc(1), 5000))),
            LatchVerdict::Drop
        );
        // Right SSRC, sequence behind: dropped.
        assert_eq!(
            l.check(late, attacker, Some((Ssrc(1), 99))),
            LatchVerdict::Drop
        );
        assert_eq!(l.send_addr(), Some(a));
        assert_eq!(l.check(late, a, Some((Ssrc(1), 101))), LatchVerdict::Accept);
    }

    #[test]
    fn nat_rebinding_with_continuity_relatches_across_seq_wrap() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchPolicy::default(), t0);
        let a = addr("198.51.100.7:5000");
        l.check(t0, a, Some((Ssrc(7), 65534)));
        l.check(t0, a, Some((Ssrc(7), 65535)));
        let late = t0 + Duration::from_secs(30);
        let rebound = addr("198.51.100.7:6001");
        assert_eq!(
            l.check(late, rebound, Some((Ssrc(7), 2))),
            LatchVerdict::Latched { previous: Some(a) }
        );
        assert_eq!(l.send_addr(), Some(rebound));
    }

    #[test]
    fn strict_source_never_relatches_after_window() {
        let t0 = Instant::now();
        let policy = LatchPolicy {
            strict_source: true,
            ..LatchPolicy::default()
        };
        let mut l = Latch::new(policy, t0);
        let a = addr("198.51.100.7:5000");
        l.check(t0, a, Some((Ssrc(7), 1)));
        let late = t0 + Duration::from_secs(30);
        assert_eq!(
            l.check(late, addr("198.51.100.7:6001"), Some((Ssrc(7), 2))),
            LatchVerdict::Drop
        );
        assert_eq!(l.send_addr(), Some(a));
    }

    #[test]
    fn restart_learning_on_reoffer() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchPolicy::default(), t0);
        let a = addr("198.51.100.7:5000");
        l.check(t0, a, None);
        let t1 = t0 + Duration::from_secs(60);
        let b = addr("198.51.100.9:5000");
        assert_eq!(l.check(t1, b, None), LatchVerdict::Drop);
        l.restart_learning(t1);
        assert!(l.is_learning(t1));
        assert_eq!(
            l.check(t1, b, None),
            LatchVerdict::Latched { previous: Some(a) }
        );
    }

    #[test]
    fn asymmetric_uses_signalled_only() {
        let t0 = Instant::now();
        let sig = addr("192.0.2.1:4000");
        let mut l = Latch::new(
            LatchPolicy {
                mode: AddressMode::Asymmetric,
                ..LatchPolicy::default()
            },
            t0,
        );
        assert_eq!(l.send_addr(), None);
        l.set_signalled(Some(sig));
        assert_eq!(
            l.check(t0, addr("198.51.100.7:5000"), None),
            LatchVerdict::Accept
        );
        assert_eq!(l.send_addr(), Some(sig));
        assert_eq!(l.latched(), None);
        // Strict + asymmetric: only the signalled address is accepted.
        l.set_policy(
            LatchPolicy {
                mode: AddressMode::Asymmetric,
                strict_source: true,
                ..LatchPolicy::default()
            },
            t0,
        );
        assert_eq!(
            l.check(t0, addr("198.51.100.7:5000"), None),
            LatchVerdict::Drop
        );
        assert_eq!(l.check(t0, sig, None), LatchVerdict::Accept);
    }
}
