//! Address learning for one relay stream: symmetric RTP latching, strict
//! source, and RTP-bleed resistance.
//!
//! A [`Latch`] decides, for each packet arriving on a relay port, whether its
//! source address is acceptable, and which address the relay sends to when it
//! forwards media *to* that endpoint. It is the single place where the
//! latch/forward decision on addresses lives, so that a later in-kernel fast
//! path can mirror it exactly.
//!
//! Rules, in the order they are applied (threat model and rationale in
//! `docs/relay.md`):
//! 1. **Current source.** A packet from the source the stream follows is
//!    accepted; it refreshes the source's activity and the estimate of its
//!    packet interval.
//! 2. **First packet.** With no source yet, the first packet's address
//!    becomes the source (symmetric RTP, RFC 4961), and the learning window
//!    lasts at least [`LatchPolicy::learning_window`] from it.
//! 3. **Strict source.** Asymmetric + strict: only the signalled address is
//!    accepted, ever. Symmetric + strict: after the learning window no
//!    source but the signalled address may take over.
//! 4. **Signalled address preferred**: in the learning window a packet from
//!    the address the SDP signalled takes the stream over at once; after
//!    the window, once the current source is inactive, without continuity.
//! 5. **Active source holds the stream.** While the source is *active* (a
//!    packet from it within [`LatchPolicy::source_hold`] of its packet
//!    interval), any other source is dropped, in or out of the learning
//!    window, whatever SSRC and sequence number it carries
//!    ([`DropReason::SourceActive`]). A source that neither continues the
//!    current RTP stream nor is the signalled address must wait twice as
//!    long.
//! 6. **Learning window** (after setup, a re-offer via
//!    [`Latch::restart_learning`], and for as long as the current source has
//!    sent fewer than [`ESTABLISHED_PACKETS`] packets, so that one stray
//!    packet cannot close it): once the source is inactive, any new source
//!    takes over.
//! 7. **After the window**, a new source takes over only if it continues
//!    the current RTP stream: same SSRC, sequence number 1..=`max_seq_gap`
//!    ahead of the last one (a NAT rebinding, which re-latches on its second
//!    packet). Anything else is dropped ([`DropReason::NoContinuity`]).
//!
//! Asymmetric streams never change where media is sent (the signalled
//! address), but follow a source the same way, so that a third party cannot
//! inject packets between the real endpoint's.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::counters::DropReason;
use crate::rtp::Ssrc;

/// Floor of the packet-interval estimate, and the interval assumed before a
/// source has sent two packets (the common 20 ms audio ptime): bursts (video
/// frames, several packets drained in one loop turn) must not shrink the
/// hold to nothing.
const MIN_INTERVAL: Duration = Duration::from_millis(20);
/// Ceiling of the packet-interval estimate.
const MAX_INTERVAL: Duration = Duration::from_millis(500);
/// Gaps longer than this many estimated intervals (silence suppression,
/// hold) do not feed the estimate.
const GAP_OUTLIER: u32 = 8;
/// Floor of the packet-interval estimate of an RTCP-only stream: RFC 3550
/// §6.2's minimum report interval (reports come every 2.5 to 7.5 s).
pub const RTCP_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// Packets a source must send before the learning window may close on it.
pub const ESTABLISHED_PACKETS: u32 = 5;

/// How learning picks the address media is sent to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AddressMode {
    /// Learn from received packets (symmetric RTP, RFC 4961).
    #[default]
    Symmetric,
    /// Use the signalled address only.
    Asymmetric,
}

/// A multiple of a source's packet interval, in tenths (`15` = 1.5
/// intervals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Intervals(u16);

impl Intervals {
    /// `tenths` / 10 packet intervals.
    pub const fn from_tenths(tenths: u16) -> Self {
        Intervals(tenths)
    }

    /// In tenths of an interval.
    pub const fn tenths(self) -> u16 {
        self.0
    }

    /// This many `interval`s.
    pub fn of(self, interval: Duration) -> Duration {
        interval * u32::from(self.0) / 10
    }
}

impl Default for Intervals {
    /// 1.5 packet intervals: a source that missed one packet slot is no
    /// longer active, so a NAT rebinding re-latches on its second packet.
    fn default() -> Self {
        Intervals(15)
    }
}

impl std::fmt::Display for Intervals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

/// Per-stream learning policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LatchPolicy {
    /// Symmetric (learn) or asymmetric (signalled only).
    pub mode: AddressMode,
    /// Drop packets whose source is not the expected one, with no
    /// re-latching after the learning window.
    pub strict_source: bool,
    /// How long after setup or re-offer a new source may take over without
    /// continuing the current stream.
    pub learning_window: Duration,
    /// Largest forward sequence jump still counted as continuity when a
    /// latched RTP stream moves to a new source address.
    pub max_seq_gap: u16,
    /// The current source stays active for this many of its packet
    /// intervals after its last packet; while it is active, every other
    /// source is dropped (twice as long for one that does not continue its
    /// RTP stream).
    pub source_hold: Intervals,
}

impl Default for LatchPolicy {
    fn default() -> Self {
        LatchPolicy {
            mode: AddressMode::Symmetric,
            strict_source: false,
            learning_window: Duration::from_secs(3),
            max_seq_gap: 32,
            source_hold: Intervals::default(),
        }
    }
}

/// What a [`Latch`] says about one packet's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatchVerdict {
    /// From the current source (or accepted without changing where media
    /// is sent).
    Accept,
    /// Accepted, and the endpoint is now this address (first packet,
    /// signalled address, takeover of an inactive source).
    Latched {
        /// Previously latched address, if any.
        previous: Option<SocketAddr>,
    },
    /// Not acceptable: count under this reason and drop.
    Drop(DropReason),
}

/// Address learning state of one stream endpoint.
#[derive(Debug, Clone)]
pub struct Latch {
    policy: LatchPolicy,
    signalled: Option<SocketAddr>,
    /// The source followed (symmetric: also where media is sent).
    source: Option<SocketAddr>,
    /// Arrival of the source's last accepted packet.
    last_seen: Option<Instant>,
    /// Smoothed interval between the source's packets.
    interval: Duration,
    /// Floor of `interval` (RTP streams: 20 ms; RTCP: 5 s).
    min_interval: Duration,
    /// Packets accepted from the current source (saturating).
    packets: u32,
    learning_until: Instant,
    /// SSRC and sequence of the last accepted RTP packet from the source,
    /// for continuity checks.
    last_rtp: Option<(Ssrc, u16)>,
}

impl Latch {
    /// A latch whose learning window starts at `now`.
    pub fn new(policy: LatchPolicy, now: Instant) -> Self {
        Latch {
            policy,
            signalled: None,
            source: None,
            last_seen: None,
            interval: MIN_INTERVAL,
            min_interval: MIN_INTERVAL,
            packets: 0,
            learning_until: now + policy.learning_window,
            last_rtp: None,
        }
    }

    /// A latch for a stream whose packets come at least `floor` apart
    /// ([`RTCP_MIN_INTERVAL`] for an RTCP-only socket): the activity hold
    /// scales from it until the source shows a longer interval.
    pub fn with_interval_floor(mut self, floor: Duration) -> Self {
        self.min_interval = floor.clamp(MIN_INTERVAL, MAX_INTERVAL.max(floor));
        self.interval = self.min_interval;
        self
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

    /// The learned address, if any packet has latched (always `None` for
    /// asymmetric streams, which do not learn).
    pub fn latched(&self) -> Option<SocketAddr> {
        match self.policy.mode {
            AddressMode::Symmetric => self.source,
            AddressMode::Asymmetric => None,
        }
    }

    /// Opens a new learning window at `now` (re-offer, re-INVITE).
    pub fn restart_learning(&mut self, now: Instant) {
        self.learning_until = now + self.policy.learning_window;
    }

    /// True while a new source may take over without continuity: in the
    /// window, or while the current source is not established.
    pub fn is_learning(&self, now: Instant) -> bool {
        now < self.learning_until || self.packets < ESTABLISHED_PACKETS
    }

    /// The current estimate of the source's packet interval.
    pub fn packet_interval(&self) -> Duration {
        self.interval
    }

    /// True while the current source holds the stream against a source
    /// that continues its RTP stream (`continuing`) or one that does not.
    pub fn is_active(&self, now: Instant, continuing: bool) -> bool {
        let hold = self.policy.source_hold.of(self.interval);
        let hold = if continuing { hold } else { hold * 2 };
        self.last_seen
            .is_some_and(|t| now.saturating_duration_since(t) < hold)
    }

    /// Where media for this endpoint is sent.
    pub fn send_addr(&self) -> Option<SocketAddr> {
        match self.policy.mode {
            AddressMode::Symmetric => self.source.or(self.signalled),
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
        let symmetric = self.policy.mode == AddressMode::Symmetric;
        let strict = self.policy.strict_source;
        let signalled = self.signalled == Some(src);
        if !symmetric && strict {
            if !signalled {
                return LatchVerdict::Drop(DropReason::StrictSource);
            }
            if self.source != Some(src) {
                return self.take(now, src, rtp);
            }
        }
        let Some(current) = self.source else {
            // Learning lasts at least a window from the first packet.
            self.learning_until = self.learning_until.max(now + self.policy.learning_window);
            return self.take(now, src, rtp);
        };
        if current == src {
            self.refresh(now, rtp);
            return LatchVerdict::Accept;
        }
        let learning = self.is_learning(now);
        if signalled && learning {
            return self.take(now, src, rtp);
        }
        if strict && !learning && !signalled {
            return LatchVerdict::Drop(DropReason::StrictSource);
        }
        let continuing = self.continues(rtp);
        if self.is_active(now, continuing || signalled) {
            return LatchVerdict::Drop(DropReason::SourceActive);
        }
        if learning || continuing || signalled || !symmetric {
            return self.take(now, src, rtp);
        }
        LatchVerdict::Drop(DropReason::NoContinuity)
    }

    /// `src` becomes the source.
    fn take(&mut self, now: Instant, src: SocketAddr, rtp: Option<(Ssrc, u16)>) -> LatchVerdict {
        let previous = self.source.replace(src);
        self.last_seen = Some(now);
        self.last_rtp = rtp;
        self.packets = 1;
        match self.policy.mode {
            AddressMode::Symmetric => LatchVerdict::Latched { previous },
            AddressMode::Asymmetric => LatchVerdict::Accept,
        }
    }

    /// Another packet from the current source: activity and the packet
    /// interval estimate (gain 1/8, outliers skipped).
    fn refresh(&mut self, now: Instant, rtp: Option<(Ssrc, u16)>) {
        if let Some(last) = self.last_seen {
            let gap = now.saturating_duration_since(last);
            if gap <= self.interval * GAP_OUTLIER {
                let est = if gap >= self.interval {
                    self.interval + (gap - self.interval) / 8
                } else {
                    self.interval - (self.interval - gap) / 8
                };
                self.interval = est.clamp(self.min_interval, MAX_INTERVAL.max(self.min_interval));
            }
        }
        self.packets = self.packets.saturating_add(1);
        self.last_seen = Some(now);
        self.last_rtp = rtp.or(self.last_rtp);
    }

    /// `packets` more packets from the current source were forwarded
    /// outside the relay table (a kernel fast path), the last at `last`
    /// with `rtp` (SSRC, sequence number): the source stays active and its
    /// stream position current, as if they had been checked here.
    pub fn observe(&mut self, last: Instant, rtp: Option<(Ssrc, u16)>, packets: u64) {
        if self.source.is_none() || packets == 0 {
            return;
        }
        self.packets = self
            .packets
            .saturating_add(u32::try_from(packets).unwrap_or(u32::MAX));
        if self.last_seen.is_none_or(|t| t < last) {
            self.last_seen = Some(last);
            self.last_rtp = rtp.or(self.last_rtp);
        }
    }

    /// `rtp` has the current stream's SSRC and a small forward sequence
    /// step.
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

    const MS: Duration = Duration::from_millis(1);

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// A latch that followed `src` for `n` packets at 20 ms from `t0`
    /// (SSRC 1, sequence 1..=n); returns the time of the last one.
    fn stream(l: &mut Latch, t0: Instant, src: SocketAddr, n: u16) -> Instant {
        for i in 0..n {
            let v = l.check(t0 + 20 * MS * u32::from(i), src, Some((Ssrc(1), i + 1)));
            assert_ne!(v, LatchVerdict::Drop(DropReason::SourceActive));
        }
        t0 + 20 * MS * u32::from(n - 1)
    }

    #[test]
    fn first_packet_latches_and_inactive_source_yields_in_learning_window() {
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
        // While A is active another stream is refused, even in the window.
        let b = addr("198.51.100.8:5000");
        assert_eq!(
            l.check(t0 + 30 * MS, b, Some((Ssrc(9), 1))),
            LatchVerdict::Drop(DropReason::SourceActive)
        );
        // A stopped (2 x 1.5 intervals for an unrelated stream): B takes over.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(
            l.check(t1, b, Some((Ssrc(9), 1))),
            LatchVerdict::Latched { previous: Some(a) }
        );
        assert_eq!(l.latched(), Some(b));
    }

    #[test]
    fn interleaved_foreign_packets_are_dropped_in_and_after_the_window() {
        for window_open in [true, false] {
            let t0 = Instant::now();
            let mut l = Latch::new(LatchPolicy::default(), t0);
            let a = addr("198.51.100.7:5000");
            let c = addr("203.0.113.66:40000");
            let start = if window_open {
                t0
            } else {
                t0 + Duration::from_secs(10)
            };
            let mut seq = 100u16;
            for i in 0..100u32 {
                let t = start + 20 * MS * i;
                l.check(t, a, Some((Ssrc(1), seq)));
                // Random stream, then A's own SSRC and next sequence number.
                for rtp in [(Ssrc(0xbad), 7), (Ssrc(1), seq.wrapping_add(1))] {
                    assert_eq!(
                        l.check(t + 5 * MS, c, Some(rtp)),
                        LatchVerdict::Drop(DropReason::SourceActive),
                        "packet {i}, window open {window_open}"
                    );
                }
                assert_eq!(
                    l.check(t + 5 * MS, c, None),
                    LatchVerdict::Drop(DropReason::SourceActive)
                );
                seq = seq.wrapping_add(1);
            }
            assert_eq!(l.send_addr(), Some(a));
        }
    }

    #[test]
    fn rtp_bleed_after_window_needs_continuity() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchPolicy::default(), t0);
        let a = addr("198.51.100.7:5000");
        stream(&mut l, t0, a, 10);
        let late = t0 + Duration::from_secs(10);
        let attacker = addr("203.0.113.66:40000");
        let no = LatchVerdict::Drop(DropReason::NoContinuity);
        assert_eq!(l.check(late, attacker, Some((Ssrc(2), 11))), no);
        assert_eq!(l.check(late, attacker, None), no);
        assert_eq!(l.check(late, attacker, Some((Ssrc(1), 5000))), no);
        assert_eq!(l.check(late, attacker, Some((Ssrc(1), 9))), no);
        assert_eq!(l.send_addr(), Some(a));
        assert_eq!(l.check(late, a, Some((Ssrc(1), 11))), LatchVerdict::Accept);
    }

    #[test]
    fn nat_rebinding_relatches_on_its_second_packet() {
        for window_open in [true, false] {
            let t0 = Instant::now();
            let mut l = Latch::new(LatchPolicy::default(), t0);
            let a = addr("198.51.100.7:5000");
            let start = if window_open {
                t0
            } else {
                t0 + Duration::from_secs(30)
            };
            let last = stream(&mut l, start, a, 50);
            // Same stream (SSRC 1, sequence 51...) from a new NAT binding.
            let rebound = addr("198.51.100.7:6001");
            assert_eq!(
                l.check(last + 20 * MS, rebound, Some((Ssrc(1), 51))),
                LatchVerdict::Drop(DropReason::SourceActive)
            );
            assert_eq!(
                l.check(last + 40 * MS, rebound, Some((Ssrc(1), 52))),
                LatchVerdict::Latched { previous: Some(a) },
                "window open {window_open}"
            );
            assert_eq!(l.send_addr(), Some(rebound));
            // A late straggler from the old binding does not take it back.
            assert_eq!(
                l.check(last + 45 * MS, a, Some((Ssrc(1), 50))),
                LatchVerdict::Drop(DropReason::SourceActive)
            );
        }
    }

    #[test]
    fn nat_rebinding_across_sequence_wrap() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchPolicy::default(), t0);
        let a = addr("198.51.100.7:5000");
        l.check(t0, a, Some((Ssrc(7), 65534)));
        l.check(t0 + 20 * MS, a, Some((Ssrc(7), 65535)));
        let late = t0 + Duration::from_secs(30);
        let rebound = addr("198.51.100.7:6001");
        assert_eq!(
            l.check(late, rebound, Some((Ssrc(7), 2))),
            LatchVerdict::Latched { previous: Some(a) }
        );
        assert_eq!(l.send_addr(), Some(rebound));
    }

    #[test]
    fn signalled_address_is_preferred() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchPolicy::default(), t0);
        let sig = addr("192.0.2.1:4000");
        l.set_signalled(Some(sig));
        // A third party got in first and keeps sending.
        let c = addr("203.0.113.66:40000");
        l.check(t0, c, Some((Ssrc(66), 1)));
        assert_eq!(
            l.check(t0 + 5 * MS, sig, Some((Ssrc(1), 1))),
            LatchVerdict::Latched { previous: Some(c) }
        );
        // It cannot come back while the signalled source is active.
        assert_eq!(
            l.check(t0 + 10 * MS, c, Some((Ssrc(66), 2))),
            LatchVerdict::Drop(DropReason::SourceActive)
        );
        assert_eq!(l.send_addr(), Some(sig));
    }

    #[test]
    fn displaced_source_has_no_way_back_while_the_new_one_sends() {
        // A forger sends first and goes quiet; the real endpoint takes over
        // in the learning window. The forger, continuing its own stream,
        // stays out while the endpoint sends.
        let t0 = Instant::now();
        let mut l = Latch::new(LatchPolicy::default(), t0);
        let forger = addr("203.0.113.66:40000");
        let a = addr("198.51.100.7:5000");
        l.check(t0, forger, Some((Ssrc(66), 1)));
        let t1 = t0 + 100 * MS;
        let last = stream(&mut l, t1, a, 20);
        assert_eq!(l.send_addr(), Some(a));
        for (i, seq) in (2u16..40).enumerate() {
            let t = last + 5 * MS + 20 * MS * i as u32;
            l.check(t - 5 * MS, a, Some((Ssrc(1), 20 + seq)));
            assert_eq!(
                l.check(t, forger, Some((Ssrc(66), seq))),
                LatchVerdict::Drop(DropReason::SourceActive)
            );
        }
        assert_eq!(l.send_addr(), Some(a));
    }

    #[test]
    fn a_stray_packet_does_not_close_the_learning_window() {
        // One stray packet latches; the real (NATed, unsignalled) endpoint
        // starts long after the window would have ended.
        let t0 = Instant::now();
        let mut l = Latch::new(LatchPolicy::default(), t0);
        l.set_signalled(Some(addr("10.0.0.5:4000")));
        let stray = addr("203.0.113.66:40000");
        l.check(t0 + Duration::from_secs(1), stray, Some((Ssrc(66), 1)));
        let late = t0 + Duration::from_secs(20);
        let a = addr("198.51.100.7:5000");
        assert!(l.is_learning(late));
        assert_eq!(
            l.check(late, a, Some((Ssrc(1), 1))),
            LatchVerdict::Latched {
                previous: Some(stray)
            }
        );
        // Established after a few packets: the window closes behind it.
        stream(&mut l, late, a, 10);
        assert!(!l.is_learning(late + Duration::from_secs(4)));
    }

    #[test]
    fn learning_window_runs_from_the_first_packet() {
        // Media starts 10 s after setup (a long ringing): a second source
        // may still take over an inactive first one for a window from then.
        let t0 = Instant::now();
        let mut l = Latch::new(LatchPolicy::default(), t0);
        let t1 = t0 + Duration::from_secs(10);
        let a = addr("198.51.100.7:5000");
        let last = stream(&mut l, t1, a, 10);
        assert!(l.is_learning(last));
        let b = addr("198.51.100.9:5000");
        assert_eq!(
            l.check(last + Duration::from_secs(1), b, Some((Ssrc(9), 1))),
            LatchVerdict::Latched { previous: Some(a) }
        );
    }

    #[test]
    fn signalled_address_after_the_window_needs_the_source_inactive() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchPolicy::default(), t0);
        let sig = addr("192.0.2.1:4000");
        l.set_signalled(Some(sig));
        let a = addr("198.51.100.7:5000");
        let start = t0 + Duration::from_secs(10);
        let last = stream(&mut l, start, a, 200);
        // A (spoofed) packet from the signalled address while A sends.
        assert_eq!(
            l.check(last + 5 * MS, sig, Some((Ssrc(5), 1))),
            LatchVerdict::Drop(DropReason::SourceActive)
        );
        assert_eq!(l.send_addr(), Some(a));
        // Once A stopped, the signalled address needs no continuity.
        assert_eq!(
            l.check(last + 100 * MS, sig, Some((Ssrc(5), 2))),
            LatchVerdict::Latched { previous: Some(a) }
        );
    }

    #[test]
    fn strict_source_still_takes_the_signalled_address() {
        let t0 = Instant::now();
        let policy = LatchPolicy {
            strict_source: true,
            ..LatchPolicy::default()
        };
        let mut l = Latch::new(policy, t0);
        let sig = addr("192.0.2.1:4000");
        l.set_signalled(Some(sig));
        let stray = addr("203.0.113.66:40000");
        let last = stream(&mut l, t0, stray, 10);
        let late = last + Duration::from_secs(10);
        assert_eq!(
            l.check(late, addr("198.51.100.7:5000"), Some((Ssrc(1), 11))),
            LatchVerdict::Drop(DropReason::StrictSource)
        );
        assert_eq!(
            l.check(late, sig, Some((Ssrc(7), 1))),
            LatchVerdict::Latched {
                previous: Some(stray)
            }
        );
    }

    #[test]
    fn rtcp_streams_hold_for_their_report_interval() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchPolicy::default(), t0).with_interval_floor(RTCP_MIN_INTERVAL);
        let a = addr("198.51.100.7:5001");
        for i in 0..6u32 {
            l.check(t0 + Duration::from_secs(5) * i, a, None);
        }
        let last = t0 + Duration::from_secs(25);
        // A third party's RTCP between two reports is refused...
        assert_eq!(
            l.check(
                last + Duration::from_secs(3),
                addr("203.0.113.66:40001"),
                None
            ),
            LatchVerdict::Drop(DropReason::SourceActive)
        );
        assert_eq!(l.packet_interval(), RTCP_MIN_INTERVAL);
        // ...and after the window a new RTCP source has no continuity proof.
        assert_eq!(
            l.check(
                last + Duration::from_secs(60),
                addr("203.0.113.66:40001"),
                None
            ),
            LatchVerdict::Drop(DropReason::NoContinuity)
        );
    }

    #[test]
    fn packet_interval_is_learned_and_bounded() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchPolicy::default(), t0);
        let a = addr("198.51.100.7:5000");
        for i in 0..200u32 {
            l.check(t0 + 60 * MS * i, a, Some((Ssrc(1), i as u16)));
        }
        let iv = l.packet_interval();
        assert!(iv > 55 * MS && iv <= 60 * MS, "{iv:?}");
        // A silence (DTX) does not stretch it.
        let t = t0 + 60 * MS * 199 + Duration::from_secs(5);
        l.check(t, a, Some((Ssrc(1), 200)));
        assert_eq!(l.packet_interval(), iv);
        // Bursts do not shrink it below the floor.
        for _ in 0..100 {
            l.check(t, a, Some((Ssrc(1), 201)));
        }
        assert_eq!(l.packet_interval(), MIN_INTERVAL);
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
        stream(&mut l, t0, a, 10);
        let late = t0 + Duration::from_secs(30);
        assert_eq!(
            l.check(late, addr("198.51.100.7:6001"), Some((Ssrc(1), 11))),
            LatchVerdict::Drop(DropReason::StrictSource)
        );
        assert_eq!(l.send_addr(), Some(a));
    }

    #[test]
    fn restart_learning_on_reoffer() {
        let t0 = Instant::now();
        let mut l = Latch::new(LatchPolicy::default(), t0);
        let a = addr("198.51.100.7:5000");
        for i in 0..5u32 {
            l.check(t0 + 20 * MS * i, a, None);
        }
        let t1 = t0 + Duration::from_secs(60);
        let b = addr("198.51.100.9:5000");
        assert_eq!(
            l.check(t1, b, None),
            LatchVerdict::Drop(DropReason::NoContinuity)
        );
        l.restart_learning(t1);
        assert!(l.is_learning(t1));
        assert_eq!(
            l.check(t1, b, None),
            LatchVerdict::Latched { previous: Some(a) }
        );
    }

    #[test]
    fn asymmetric_sends_to_signalled_and_follows_one_source() {
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
        let a = addr("198.51.100.7:5000");
        assert_eq!(l.check(t0, a, None), LatchVerdict::Accept);
        assert_eq!(l.send_addr(), Some(sig));
        assert_eq!(l.latched(), None);
        // No injection between the source's packets...
        assert_eq!(
            l.check(t0 + 5 * MS, addr("203.0.113.66:40000"), None),
            LatchVerdict::Drop(DropReason::SourceActive)
        );
        // ...but another sender is accepted once it stopped, at any time.
        let late = t0 + Duration::from_secs(60);
        assert_eq!(
            l.check(late, addr("203.0.113.67:40000"), None),
            LatchVerdict::Accept
        );
        assert_eq!(l.send_addr(), Some(sig));
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
            l.check(late, addr("198.51.100.7:5000"), None),
            LatchVerdict::Drop(DropReason::StrictSource)
        );
        assert_eq!(l.check(late, sig, None), LatchVerdict::Accept);
    }

    #[test]
    fn intervals_scale_durations() {
        let h = Intervals::default();
        assert_eq!(h.tenths(), 15);
        assert_eq!(h.of(20 * MS), 30 * MS);
        assert_eq!(Intervals::from_tenths(30).to_string(), "3.0");
    }
}
