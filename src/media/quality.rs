//! Per-stream voice quality: the ITU-T G.107 E-model (R factor, MOS) fed
//! by loss statistics, and the RFC 3611 §4.7 VoIP Metrics block built from
//! them.
//!
//! Contract: sans-IO and allocation-free. The caller feeds one observation
//! per expected packet ([`LossTracker::observe`],
//! [`LossTracker::observe_discarded`]) and the delays it measured (RTT from
//! RTCP, the jitter-buffer delay); [`QualityMonitor::report`] and
//! [`QualityMonitor::voip_metrics`] compute from that state on demand.
//!
//! # E-model (ITU-T G.107)
//!
//! G.107 §3.1: `R = Ro − Is − Id − Ie,eff + A`, every parameter at its G.107
//! §3.7 Table 3 default except the delay `T`, the codec's `Ie` and `Bpl`,
//! the packet-loss probability `Ppl` and `BurstR`. The defaults (assumed
//! here, not measured): SLR 8 dB, RLR 2 dB, STMR 15 dB, LSTR 18 dB,
//! Ds = Dr = 3, TELR 65 dB, WEPL 110 dB, qdu 1, Nc −70 dBm0p,
//! Nfor −64 dBmp, Ps = Pr = 35 dB(A), A 0. Delays: `T` is the one-way
//! mouth-to-ear delay, the round trip `Tr = 2T` and the absolute delay
//! `Ta = T` (a symmetric path, no extra echo path).
//!
//! - §3.2 `Ro = 15 − 1.5(SLR + No)`, with
//!   `No = 10 lg(10^(Nc/10) + 10^(Nos/10) + 10^(Nor/10) + 10^(Nfo/10))`,
//!   `Nos = Ps − SLR − Ds − 100 + 0.004(Ps − OLR − Ds − 14)²`,
//!   `Nor = RLR − 121 + Pre + 0.008(Pre − 35)²`,
//!   `Pre = Pr + 10 lg(1 + 10^((10 − LSTR)/10))`, `Nfo = Nfor + RLR`,
//!   `OLR = SLR + RLR`.
//! - §3.3 `Is = Iolr + Ist + Iq`:
//!   `Iolr = 20[(1 + (Xolr/8)^8)^(1/8) − Xolr/8]`,
//!   `Xolr = OLR + 0.2(64 + No − RLR)`;
//!   `Ist = 12[1 + ((STMRo − 13)/6)^8]^(1/8) − 28[1 + ((STMRo + 1)/19.4)^35]^(1/35)
//!   − 13[1 + ((STMRo − 3)/33)^13]^(1/13) + 29`,
//!   `STMRo = −10 lg(10^(−STMR/10) + e^(−T/4)·10^(−TELR/10))`;
//!   `Iq = 15 lg(1 + 10^Y + 10^Z)`, `Y = (Ro − 100)/15 + 46/8.4 − G/9`,
//!   `Z = 46/30 − G/40`, `G = 1.07 + 0.258Q + 0.0602Q²`, `Q = 37 − 15 lg(qdu)`.
//! - §3.4 `Id = Idte + Idle + Idd`:
//!   `Idte = [(Roe − Re)/2 + √((Roe − Re)²/4 + 100) − 1](1 − e^(−T))`,
//!   `Roe = −1.5(No − RLR)`, `Re = 80 + 2.5(TERV − 14)`,
//!   `TERV = TELR − 40 lg((1 + T/10)/(1 + T/150)) + 6e^(−0.3T²)`;
//!   `Idle = (Ro − Rle)/2 + √((Ro − Rle)²/4 + 169)`,
//!   `Rle = 10.5(WEPL + 7)(Tr + 1)^(−1/4)`;
//!   `Idd = 0` for `Ta ≤ 100 ms`, else
//!   `Idd = 25{(1 + X⁶)^(1/6) − 3(1 + (X/3)⁶)^(1/6) + 2}`, `X = lg(Ta/100)/lg 2`.
//! - §3.5 `Ie,eff = Ie + (95 − Ie)·Ppl/(Ppl/BurstR + Bpl)`, `Ppl` in percent;
//!   `Ie` and `Bpl` per codec from ITU-T G.113 Appendix I.
//! - Annex B: `MOS = 1` for `R < 0`, `4.5` for `R > 100`, else
//!   `1 + 0.035R + R(R − 60)(100 − R)·7·10⁻⁶`.
//!
//! With these defaults, no delay and no loss, `Ro = 94.77`, `Is = 1.41`,
//! `Id = Idle = 0.15` and `R = 93.2` (MOS 4.41), the G.107 reference value.
//!
//! `BurstR` comes from a two-state (Gilbert) model of the loss process
//! (G.107 §3.5): `BurstR = 1/(p + q)`, `p` the probability that a packet is
//! lost when the previous one was received, `q` that it is received when
//! the previous one was lost. Random loss gives `p = 1 − q` and
//! `BurstR = 1`. A loss process smoother than random (`BurstR < 1`, e.g.
//! every tenth packet) is counted as random: G.107 describes only
//! `BurstR ≥ 1`, so the value is clamped there (an assumption).
//! Jitter-buffer discards count as losses for `Ppl` and `BurstR`: the
//! listener hears them the same way.
//!
//! # RFC 3611 §4.7 VoIP Metrics
//!
//! [`LossTracker`] also keeps the §4.7.2 burst/gap metrics with
//! `Gmin = 16`: a burst is the longest run that starts and ends with a lost
//! (or discarded) packet, holds at least two of them, and has fewer than
//! `Gmin` consecutive received packets anywhere inside; everything else is
//! gap, so a lone loss with at least `Gmin` received packets on each side is
//! a gap loss. The counts are exact per packet (rather than the Appendix A.2
//! state machine's approximations); a burst still open when a report is
//! made is reported as it stands. MOS-LQ (§4.7.5) is the MOS of `R` without
//! the delay impairment `Id`; MOS-CQ includes it.

use std::time::Duration;

use crate::rtcp::{RxConfig, VoipMetrics};
use crate::rtp::Ssrc;

/// The gap threshold of the burst metrics, in packets (RFC 3611 §4.7.2,
/// the recommended value).
pub const GMIN: u8 = 16;

/// How a codec (with its packet-loss concealment) degrades speech: the
/// ITU-T G.107 §3.5 equipment impairment inputs, and its delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CodecImpairment {
    /// Equipment impairment factor `Ie` without loss (ITU-T G.113 App. I).
    pub ie: f64,
    /// Packet-loss robustness factor `Bpl` (ITU-T G.113 App. I).
    pub bpl: f64,
    /// Delay the sending codec adds: frame accumulation (packetisation)
    /// plus look-ahead.
    pub frame_delay: Duration,
}

/// Inputs of [`r_factor`] beyond the G.107 defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EModelInput {
    /// The codec and its concealment.
    pub codec: CodecImpairment,
    /// Packet-loss probability `Ppl` in percent, 0-100 (clamped; NaN is 0).
    pub packet_loss_percent: f64,
    /// `BurstR`: 1 for random loss, above 1 for bursty loss (values below
    /// 1, and NaN, are taken as 1).
    pub burst_ratio: f64,
    /// One-way mouth-to-ear delay `T`.
    pub one_way_delay: Duration,
}

/// Counts the loss process of one stream: loss and discard totals, the
/// Gilbert-model transitions behind `BurstR` (ITU-T G.107 §3.5), and the
/// RFC 3611 §4.7.2 burst/gap metrics with `Gmin` 16. Allocation-free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LossTracker {
    expected: u64,
    lost: u64,
    discarded: u64,
    /// Whether the previous packet was lost or discarded (a received packet
    /// is assumed before the first).
    prev_lost: bool,
    /// Gilbert transitions, previous → current.
    received_received: u64,
    received_lost: u64,
    lost_received: u64,
    lost_lost: u64,
    /// Received packets since the last loss, not yet assigned to a burst
    /// or gap.
    run: u64,
    /// Losses in the open loss episode (0: none open).
    episode_losses: u64,
    /// Packets of the open episode, from its first loss to its last.
    episode_len: u64,
    bursts: u64,
    burst_packets: u64,
    burst_losses: u64,
    /// Closed gap periods (a gap closes when a burst follows it).
    gaps: u64,
    gap_packets: u64,
    gap_losses: u64,
    /// Packets of the gap period now open.
    open_gap: u64,
}

/// The RFC 3611 §4.7.2 burst/gap metrics, as fractions and packet counts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BurstGap {
    /// Fraction of packets inside bursts that were lost or discarded.
    pub burst_density: f64,
    /// Fraction of packets inside gaps that were lost or discarded.
    pub gap_density: f64,
    /// Mean burst length in packets (0 without bursts).
    pub burst_duration: f64,
    /// Mean gap length in packets (the whole stream without bursts).
    pub gap_duration: f64,
}

/// E-model quality of one received stream, combining its [`LossTracker`]
/// with the delays the caller measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityMonitor {
    codec: CodecImpairment,
    frame: Duration,
    loss: LossTracker,
    rtt: Duration,
    jitter_buffer_delay: Duration,
}

/// What [`QualityMonitor::report`] computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// ITU-T G.107 R factor (conversational, delay included).
    pub r_factor: f64,
    /// Conversational-quality MOS from `r_factor` (G.107 Annex B), 1-4.5.
    pub mos_cq: f64,
    /// Packets lost in the network, percent of those expected.
    pub loss_percent: f64,
    /// Packets discarded by the jitter buffer, percent of those expected.
    pub discard_percent: f64,
    /// `BurstR` of the loss process, lost and discarded packets together.
    pub burst_ratio: f64,
    /// One-way delay `T`: RTT/2 + jitter-buffer delay + codec frame delay.
    pub one_way_delay: Duration,
}

/// Jitter-buffer delays for the VoIP Metrics block (RFC 3611 §4.7.7).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterBufferDelays {
    /// Nominal (target) delay.
    pub nominal: Duration,
    /// Current maximum delay (the delay of the latest-arriving packet
    /// that can still be played).
    pub maximum: Duration,
    /// Absolute maximum the buffer may grow to.
    pub abs_max: Duration,
}

/// The G.107 §3.7 Table 3 defaults this module assumes.
mod defaults {
    /// Send loudness rating, dB.
    pub const SLR: f64 = 8.0;
    /// Receive loudness rating, dB.
    pub const RLR: f64 = 2.0;
    /// Sidetone masking rating, dB.
    pub const STMR: f64 = 15.0;
    /// Listener sidetone rating, dB.
    pub const LSTR: f64 = 18.0;
    /// D-value of the telephone, send side.
    pub const DS: f64 = 3.0;
    /// Talker echo loudness rating, dB.
    pub const TELR: f64 = 65.0;
    /// Weighted echo path loss, dB.
    pub const WEPL: f64 = 110.0;
    /// Quantizing distortion units.
    pub const QDU: f64 = 1.0;
    /// Circuit noise at the 0 dBr point, dBm0p.
    pub const NC: f64 = -70.0;
    /// Noise floor at the receive side, dBmp.
    pub const NFOR: f64 = -64.0;
    /// Room noise at the send side, dB(A).
    pub const PS: f64 = 35.0;
    /// Room noise at the receive side, dB(A).
    pub const PR: f64 = 35.0;
    /// Advantage factor.
    pub const A: f64 = 0.0;
}

impl CodecImpairment {
    /// G.711 with packet-loss concealment (ITU-T G.711 Appendix I): `Ie` 0,
    /// `Bpl` 25.1 (ITU-T G.113 Appendix I), 20 ms frames.
    pub const G711_PLC: CodecImpairment = CodecImpairment {
        ie: 0.0,
        bpl: 25.1,
        frame_delay: Duration::from_millis(20),
    };
    /// G.711 without concealment (lost frames are silence): `Ie` 0,
    /// `Bpl` 4.3 (ITU-T G.113 Appendix I), 20 ms frames.
    pub const G711: CodecImpairment = CodecImpairment {
        ie: 0.0,
        bpl: 4.3,
        frame_delay: Duration::from_millis(20),
    };
}

/// `10^(x/10)`.
fn db(x: f64) -> f64 {
    10f64.powf(x / 10.0)
}

/// The parts of R the delay impairment is split from.
struct Rating {
    /// `Ro − Is − Ie,eff + A`.
    without_delay: f64,
    /// `Id`.
    id: f64,
}

/// G.107 §3.1-§3.6 with the Table 3 defaults (see the module docs).
fn rating(input: &EModelInput) -> Rating {
    use defaults::*;
    let t = input.one_way_delay.as_secs_f64() * 1000.0;
    let tr = 2.0 * t;
    let ta = t;

    // §3.2 basic signal-to-noise ratio.
    let olr = SLR + RLR;
    let nfo = NFOR + RLR;
    let pre = PR + 10.0 * (1.0 + db(10.0 - LSTR)).log10();
    let nor = RLR - 121.0 + pre + 0.008 * (pre - 35.0).powi(2);
    let nos = PS - SLR - DS - 100.0 + 0.004 * (PS - olr - DS - 14.0).powi(2);
    let no = 10.0 * (db(NC) + db(nos) + db(nor) + db(nfo)).log10();
    let ro = 15.0 - 1.5 * (SLR + no);

    // §3.3 simultaneous impairment factor.
    let xolr = olr + 0.2 * (64.0 + no - RLR);
    let iolr = 20.0 * ((1.0 + (xolr / 8.0).powi(8)).powf(1.0 / 8.0) - xolr / 8.0);
    let stmro = -10.0 * (db(-STMR) + (-t / 4.0).exp() * db(-TELR)).log10();
    let ist = 12.0 * (1.0 + ((stmro - 13.0) / 6.0).powi(8)).powf(1.0 / 8.0)
        - 28.0 * (1.0 + ((stmro + 1.0) / 19.4).powi(35)).powf(1.0 / 35.0)
        - 13.0 * (1.0 + ((stmro - 3.0) / 33.0).powi(13)).powf(1.0 / 13.0)
        + 29.0;
    let q = 37.0 - 15.0 * QDU.log10();
    let g = 1.07 + 0.258 * q + 0.0602 * q * q;
    let y = (ro - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0;
    let z = 46.0 / 30.0 - g / 40.0;
    let iq = 15.0 * (1.0 + 10f64.powf(y) + 10f64.powf(z)).log10();
    let is = iolr + ist + iq;

    // §3.4 delay impairment factor.
    let roe = -1.5 * (no - RLR);
    let terv =
        TELR - 40.0 * ((1.0 + t / 10.0) / (1.0 + t / 150.0)).log10() + 6.0 * (-0.3 * t * t).exp();
    let re = 80.0 + 2.5 * (terv - 14.0);
    let idte =
        ((roe - re) / 2.0 + ((roe - re).powi(2) / 4.0 + 100.0).sqrt() - 1.0) * (1.0 - (-t).exp());
    let rle = 10.5 * (WEPL + 7.0) * (tr + 1.0).powf(-0.25);
    let idle = (ro - rle) / 2.0 + ((ro - rle).powi(2) / 4.0 + 169.0).sqrt();
    let idd = if ta > 100.0 {
        let x = (ta / 100.0).log2();
        25.0 * ((1.0 + x.powi(6)).powf(1.0 / 6.0) - 3.0 * (1.0 + (x / 3.0).powi(6)).powf(1.0 / 6.0)
            + 2.0)
    } else {
        0.0
    };

    // §3.5 effective equipment impairment factor.
    let ppl = if input.packet_loss_percent.is_nan() {
        0.0
    } else {
        input.packet_loss_percent.clamp(0.0, 100.0)
    };
    let burst_r = if input.burst_ratio >= 1.0 {
        input.burst_ratio
    } else {
        1.0
    };
    let ie = input.codec.ie;
    let denominator = ppl / burst_r + input.codec.bpl;
    let ie_eff = if denominator > 0.0 {
        ie + (95.0 - ie) * ppl / denominator
    } else {
        ie
    };

    Rating {
        without_delay: ro - is - ie_eff + A,
        id: idte + idle + idd,
    }
}

/// The ITU-T G.107 transmission rating `R = Ro − Is − Id − Ie,eff + A`
/// with the G.107 default parameters (see the module docs). 93.2 for G.711
/// without delay or loss.
pub fn r_factor(input: &EModelInput) -> f64 {
    let r = rating(input);
    r.without_delay - r.id
}

/// [`r_factor`] without the delay impairment `Id`: the listening-quality
/// rating behind MOS-LQ (RFC 3611 §4.7.5).
pub fn listening_r_factor(input: &EModelInput) -> f64 {
    rating(input).without_delay
}

/// MOS from R (ITU-T G.107 Annex B): 1 below R 0, 4.5 above R 100, else
/// `1 + 0.035R + R(R − 60)(100 − R)·7·10⁻⁶`. NaN gives 1.
pub fn mos_from_r(r: f64) -> f64 {
    if r.is_nan() || r < 0.0 {
        return 1.0;
    }
    if r > 100.0 {
        return 4.5;
    }
    1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7.0e-6
}

/// `num / den`, 0 when `den` is 0.
fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

impl LossTracker {
    /// No observations yet.
    pub const fn new() -> Self {
        LossTracker {
            expected: 0,
            lost: 0,
            discarded: 0,
            prev_lost: false,
            received_received: 0,
            received_lost: 0,
            lost_received: 0,
            lost_lost: 0,
            run: 0,
            episode_losses: 0,
            episode_len: 0,
            bursts: 0,
            burst_packets: 0,
            burst_losses: 0,
            gaps: 0,
            gap_packets: 0,
            gap_losses: 0,
            open_gap: 0,
        }
    }

    /// One expected packet: received (`lost == false`) or lost in the
    /// network.
    pub fn observe(&mut self, lost: bool) {
        self.expected += 1;
        if lost {
            self.lost += 1;
        }
        self.step(lost);
    }

    /// One expected packet that arrived but was discarded (too late or too
    /// early for the jitter buffer). It counts as a loss for the burst
    /// metrics and `BurstR`, and as a discard, not a loss, in the rates.
    pub fn observe_discarded(&mut self) {
        self.expected += 1;
        self.discarded += 1;
        self.step(true);
    }

    /// Packets observed.
    pub const fn expected(&self) -> u64 {
        self.expected
    }

    /// Packets lost in the network.
    pub const fn lost(&self) -> u64 {
        self.lost
    }

    /// Packets discarded by the jitter buffer.
    pub const fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Network loss as a fraction of the packets expected (RFC 3611
    /// §4.7.1 loss rate).
    pub fn loss_fraction(&self) -> f64 {
        ratio(self.lost, self.expected)
    }

    /// Discards as a fraction of the packets expected (RFC 3611 §4.7.1
    /// discard rate).
    pub fn discard_fraction(&self) -> f64 {
        ratio(self.discarded, self.expected)
    }

    /// Lost and discarded packets as a fraction of those expected: the
    /// E-model's `Ppl` / 100.
    pub fn effective_loss_fraction(&self) -> f64 {
        ratio(self.lost + self.discarded, self.expected)
    }

    /// `BurstR = 1/(p + q)` of the Gilbert model (ITU-T G.107 §3.5), with
    /// `p = P(lost | previous received)` and `q = P(received | previous
    /// lost)`, clamped to at least 1; 1 without losses.
    pub fn burst_ratio(&self) -> f64 {
        let after_lost = self.lost_received + self.lost_lost;
        if self.received_lost == 0 {
            return 1.0;
        }
        // A received packet is assumed before the first, so every loss
        // episode starts with a received → lost transition: p > 0.
        let p = ratio(
            self.received_lost,
            self.received_received + self.received_lost,
        );
        // A loss with no packet after it yet: q is unknown, taken as 0.
        let q = ratio(self.lost_received, after_lost);
        let burst_r = 1.0 / (p + q);
        if burst_r >= 1.0 { burst_r } else { 1.0 }
    }

    /// The RFC 3611 §4.7.2 burst/gap metrics so far, with `Gmin` 16.
    pub fn burst_gap(&self) -> BurstGap {
        let mut t = *self;
        t.close_episode();
        // Received packets after the last loss belong to the gap: a burst
        // ends with a loss.
        t.gap_packets += t.run;
        t.open_gap += t.run;
        if t.open_gap > 0 {
            t.gaps += 1;
        }
        BurstGap {
            burst_density: ratio(t.burst_losses, t.burst_packets),
            gap_density: ratio(t.gap_losses, t.gap_packets),
            burst_duration: ratio(t.burst_packets, t.bursts),
            gap_duration: ratio(t.gap_packets, t.gaps),
        }
    }

    /// Advances the Gilbert transitions and the burst/gap state by one
    /// packet, `lost` for lost or discarded.
    fn step(&mut self, lost: bool) {
        // ITU-T G.107 §3.5 two-state model.
        match (self.prev_lost, lost) {
            (false, false) => self.received_received += 1,
            (false, true) => self.received_lost += 1,
            (true, false) => self.lost_received += 1,
            (true, true) => self.lost_lost += 1,
        }
        self.prev_lost = lost;

        // RFC 3611 §4.7.2 bursts and gaps.
        if !lost {
            self.run += 1;
            return;
        }
        if self.episode_losses > 0 && self.run < u64::from(GMIN) {
            // Fewer than Gmin received since the last loss: same episode.
            self.episode_len += self.run + 1;
            self.episode_losses += 1;
        } else {
            self.close_episode();
            self.gap_packets += self.run;
            self.open_gap += self.run;
            self.episode_losses = 1;
            self.episode_len = 1;
        }
        self.run = 0;
    }

    /// Classifies the open loss episode: a burst with two or more losses
    /// (closing the gap before it), else a lone gap loss.
    fn close_episode(&mut self) {
        match self.episode_losses {
            0 => {}
            1 => {
                self.gap_packets += 1;
                self.gap_losses += 1;
                self.open_gap += 1;
            }
            losses => {
                if self.open_gap > 0 {
                    self.gaps += 1;
                    self.open_gap = 0;
                }
                self.bursts += 1;
                self.burst_packets += self.episode_len;
                self.burst_losses += losses;
            }
        }
        self.episode_losses = 0;
        self.episode_len = 0;
    }
}

impl QualityMonitor {
    /// A monitor for a stream coded with `codec`, one packet every `frame`
    /// (the packet interval, which turns burst and gap lengths into time).
    pub const fn new(codec: CodecImpairment, frame: Duration) -> Self {
        QualityMonitor {
            codec,
            frame,
            loss: LossTracker::new(),
            rtt: Duration::ZERO,
            jitter_buffer_delay: Duration::ZERO,
        }
    }

    /// One expected packet, received or lost; see [`LossTracker::observe`].
    pub fn observe(&mut self, lost: bool) {
        self.loss.observe(lost);
    }

    /// One expected packet discarded by the jitter buffer; see
    /// [`LossTracker::observe_discarded`].
    pub fn observe_discarded(&mut self) {
        self.loss.observe_discarded();
    }

    /// The latest round-trip time (e.g. from an RTCP report block, RFC 3550
    /// §6.4.1). Zero until set.
    pub fn set_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// The current jitter-buffer (playout) delay. Zero until set.
    pub fn set_jitter_buffer_delay(&mut self, delay: Duration) {
        self.jitter_buffer_delay = delay;
    }

    /// The loss statistics.
    pub const fn loss(&self) -> &LossTracker {
        &self.loss
    }

    /// One-way delay `T`: RTT/2 (the network, assumed symmetric) plus the
    /// jitter-buffer delay plus the codec frame delay.
    pub fn one_way_delay(&self) -> Duration {
        (self.rtt / 2)
            .saturating_add(self.jitter_buffer_delay)
            .saturating_add(self.codec.frame_delay)
    }

    /// The E-model inputs as measured now.
    pub fn e_model_input(&self) -> EModelInput {
        EModelInput {
            codec: self.codec,
            packet_loss_percent: 100.0 * self.loss.effective_loss_fraction(),
            burst_ratio: self.loss.burst_ratio(),
            one_way_delay: self.one_way_delay(),
        }
    }

    /// R factor, MOS-CQ and their inputs as measured now.
    pub fn report(&self) -> Quality {
        let input = self.e_model_input();
        let r = r_factor(&input);
        Quality {
            r_factor: r,
            mos_cq: mos_from_r(r),
            loss_percent: 100.0 * self.loss.loss_fraction(),
            discard_percent: 100.0 * self.loss.discard_fraction(),
            burst_ratio: input.burst_ratio,
            one_way_delay: input.one_way_delay,
        }
    }

    /// The RFC 3611 §4.7 VoIP Metrics block on `ssrc_of_source`: rates and
    /// burst/gap metrics from the loss tracker (durations at one packet per
    /// `frame`), round-trip delay, end-system delay (jitter buffer + codec
    /// frame delay), R factor (clamped to 0-100), MOS-CQ and MOS-LQ
    /// (times 10), Gmin 16; `rx_config` and `jitter_buffer` as the caller
    /// gives them; signal, noise, RERL and the external R factor
    /// unavailable (127). Every value saturates at its field's range.
    pub fn voip_metrics(
        &self,
        ssrc_of_source: Ssrc,
        rx_config: RxConfig,
        jitter_buffer: JitterBufferDelays,
    ) -> VoipMetrics {
        let input = self.e_model_input();
        let r = r_factor(&input);
        let r_lq = listening_r_factor(&input);
        let bg = self.loss.burst_gap();
        let frame_ms = self.frame.as_secs_f64() * 1000.0;
        // `as` saturates float-to-int conversions (NaN → 0).
        let packets_ms = |packets: f64| (packets * frame_ms).round().clamp(0.0, 65535.0) as u16;
        let mos10 = |r: f64| (mos_from_r(r) * 10.0).round().clamp(10.0, 50.0) as u8;
        VoipMetrics {
            loss_rate: VoipMetrics::fraction(self.loss.loss_fraction()),
            discard_rate: VoipMetrics::fraction(self.loss.discard_fraction()),
            burst_density: VoipMetrics::fraction(bg.burst_density),
            gap_density: VoipMetrics::fraction(bg.gap_density),
            burst_duration: packets_ms(bg.burst_duration),
            gap_duration: packets_ms(bg.gap_duration),
            round_trip_delay: VoipMetrics::millis(self.rtt),
            end_system_delay: VoipMetrics::millis(
                self.jitter_buffer_delay
                    .saturating_add(self.codec.frame_delay),
            ),
            gmin: GMIN,
            r_factor: r.round().clamp(0.0, 100.0) as u8,
            mos_cq: mos10(r),
            mos_lq: mos10(r_lq),
            rx_config,
            jb_nominal: VoipMetrics::millis(jitter_buffer.nominal),
            jb_maximum: VoipMetrics::millis(jitter_buffer.maximum),
            jb_abs_max: VoipMetrics::millis(jitter_buffer.abs_max),
            ..VoipMetrics::unavailable(ssrc_of_source)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::{ExtendedReport, JitterBufferMode, Plc, XrBlock};

    const MS: Duration = Duration::from_millis(1);

    fn input(loss: f64, burst_ratio: f64, delay_ms: u64) -> EModelInput {
        EModelInput {
            codec: CodecImpairment::G711_PLC,
            packet_loss_percent: loss,
            burst_ratio,
            one_way_delay: MS * delay_ms as u32,
        }
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// A deterministic pseudo-random sequence (64-bit LCG, Knuth MMIX).
    struct Lcg(u64);

    impl Lcg {
        fn chance(&mut self, percent: f64) -> bool {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 11) as f64 / (1u64 << 53) as f64) < percent / 100.0
        }
    }

    #[test]
    fn reference_points_from_the_formulas() {
        // Worked by hand from the G.107 formulas with the Table 3
        // defaults: No = −61.18 dBm0p, Ro = 94.77, Iolr = 0.44,
        // Ist = −0.00, Iq = 0.97 so Is = 1.41; T = 0: Idte = 0,
        // Rle = 10.5·117 = 1228.5, Idle = 0.149; R = 93.206.
        assert!(close(r_factor(&input(0.0, 1.0, 0)), 93.206, 0.005));
        // Without Id: 94.769 − 1.414 = 93.355.
        assert!(close(
            listening_r_factor(&input(0.0, 1.0, 0)),
            93.355,
            0.005
        ));
        // Ppl 2 %, random: Ie,eff = 95·2/(2 + 25.1) = 7.011; R = 86.195.
        assert!(close(r_factor(&input(2.0, 1.0, 0)), 86.195, 0.005));
        // Same with BurstR 2: Ie,eff = 95·2/(1 + 25.1) = 7.280; R = 85.927.
        assert!(close(r_factor(&input(2.0, 2.0, 0)), 85.927, 0.005));
        // G.711 without PLC, 1 %: Ie,eff = 95/(1 + 4.3) = 17.925; R = 75.28.
        let no_plc = EModelInput {
            codec: CodecImpairment::G711,
            ..input(1.0, 1.0, 0)
        };
        assert!(close(r_factor(&no_plc), 75.282, 0.005));
        // T = 200 ms: Idte = 3.571, Idle = 0.935 (Tr = 400), X = 1 so
        // Idd = 25(2^(1/6) − 3(1 + 3^−6)^(1/6) + 2) = 3.044; R = 85.805.
        assert!(close(r_factor(&input(0.0, 1.0, 200)), 85.805, 0.005));
        // T = 300 ms: R = 72.666.
        assert!(close(r_factor(&input(0.0, 1.0, 300)), 72.666, 0.005));
        // Annex B: R 50 → 1 + 1.75 − 0.175 = 2.575; R 80 → 3.8 + 0.224.
        assert!(close(mos_from_r(50.0), 2.575, 1e-9));
        assert!(close(mos_from_r(80.0), 4.024, 1e-9));
        assert!(close(mos_from_r(93.206), 4.409, 0.001));
        assert_eq!(mos_from_r(-3.0), 1.0);
        assert_eq!(mos_from_r(120.0), 4.5);
        assert_eq!(mos_from_r(f64::NAN), 1.0);
    }

    #[test]
    fn clean_g711_plc_at_small_delay_is_toll_quality() {
        let mut m = QualityMonitor::new(CodecImpairment::G711_PLC, 20 * MS);
        m.set_rtt(40 * MS);
        m.set_jitter_buffer_delay(40 * MS);
        (0..1000).for_each(|_| m.observe(false));
        let q = m.report();
        // T = 20 + 40 + 20 = 80 ms: R = 91.08, MOS 4.365.
        assert_eq!(q.one_way_delay, 80 * MS);
        assert!(close(q.r_factor, 91.08, 0.01), "{q:?}");
        assert!(q.mos_cq >= 4.3 && close(q.mos_cq, 4.4, 0.05), "{q:?}");
        assert_eq!(
            (q.loss_percent, q.discard_percent, q.burst_ratio),
            (0.0, 0.0, 1.0)
        );
    }

    #[test]
    fn mos_falls_strictly_with_random_loss() {
        let levels = [0.0, 1.0, 2.0, 5.0, 10.0, 20.0];
        // The formula itself.
        let mos: Vec<f64> = levels
            .iter()
            .map(|&p| mos_from_r(r_factor(&input(p, 1.0, 50))))
            .collect();
        assert!(mos.windows(2).all(|w| w[1] < w[0]), "{mos:?}");
        // Measured from a pseudo-random loss process.
        let mut rng = Lcg(7);
        let mos: Vec<f64> = levels
            .iter()
            .map(|&p| {
                let mut m = QualityMonitor::new(CodecImpairment::G711_PLC, 20 * MS);
                m.set_rtt(60 * MS);
                (0..20_000).for_each(|_| m.observe(rng.chance(p)));
                let q = m.report();
                assert!(close(q.loss_percent, p, 0.5 + p / 10.0), "{p}: {q:?}");
                assert!(close(q.burst_ratio, 1.0, 0.1), "{p}: {q:?}");
                q.mos_cq
            })
            .collect();
        assert!(mos.windows(2).all(|w| w[1] < w[0]), "{mos:?}");
    }

    #[test]
    fn bursty_loss_rates_below_random_loss() {
        // 5 % loss either way: every 20th packet, or 5 in a row every 100.
        let mut random = QualityMonitor::new(CodecImpairment::G711_PLC, 20 * MS);
        let mut bursty = QualityMonitor::new(CodecImpairment::G711_PLC, 20 * MS);
        for i in 0..10_000 {
            random.observe(i % 20 == 19);
            bursty.observe(i % 100 >= 95);
        }
        let (r, b) = (random.report(), bursty.report());
        assert_eq!(r.loss_percent, 5.0);
        assert_eq!(b.loss_percent, 5.0);
        // Evenly spread: p = 1/19, q = 1, BurstR < 1 → 1.
        assert_eq!(r.burst_ratio, 1.0);
        // 100 bursts of 5: p = 100/(9401 + 100) (received → received
        // counts the assumed packet before the first), q = 99/(99 + 400)
        // (the last burst has no successor): BurstR = 1/(0.01053 + 0.19840)
        // = 4.786.
        assert!(close(b.burst_ratio, 4.786, 0.001), "{b:?}");
        // Ie,eff = 95·5/(5 + 25.1) = 15.78 against 95·5/(5/4.786 + 25.1)
        // = 18.17: R falls by 2.39.
        assert!(close(r.r_factor - b.r_factor, 2.39, 0.01), "{b:?} vs {r:?}");
        // And directly: same Ppl, higher BurstR, lower R.
        assert!(r_factor(&input(5.0, 3.0, 50)) < r_factor(&input(5.0, 1.0, 50)));
    }

    #[test]
    fn delay_beyond_200ms_lowers_r() {
        let r = |ms| r_factor(&input(0.0, 1.0, ms));
        assert!(r(200) < r(150) - 3.0);
        assert!(r(250) < r(200));
        assert!(r(400) < r(250) - 10.0);
        let mut m = QualityMonitor::new(CodecImpairment::G711_PLC, 20 * MS);
        m.set_rtt(40 * MS);
        let near = m.report();
        m.set_rtt(400 * MS);
        m.set_jitter_buffer_delay(60 * MS);
        let far = m.report();
        assert_eq!(far.one_way_delay, 280 * MS);
        assert!(far.r_factor < near.r_factor - 10.0, "{far:?} vs {near:?}");
    }

    #[test]
    fn input_out_of_range_is_clamped() {
        assert_eq!(
            r_factor(&input(f64::NAN, f64::NAN, 0)),
            r_factor(&input(0.0, 1.0, 0))
        );
        assert_eq!(
            r_factor(&input(250.0, 0.2, 0)),
            r_factor(&input(100.0, 1.0, 0))
        );
        // Ie,eff = 95·100/(100 + 25.1) = 75.939: R = 17.267.
        assert!(close(r_factor(&input(100.0, 1.0, 0)), 17.267, 0.005));
    }

    #[test]
    fn burst_gap_metrics() {
        let mut t = LossTracker::new();
        // 20 received, then a burst L R L R R L (3 lost of 6), 20
        // received, a lone loss, 20 received.
        let pattern = "RRRRRRRRRRRRRRRRRRRR LRLRRL RRRRRRRRRRRRRRRRRRRR L RRRRRRRRRRRRRRRRRRRR";
        for c in pattern.chars().filter(|c| !c.is_whitespace()) {
            t.observe(c == 'L');
        }
        let bg = t.burst_gap();
        assert_eq!(t.expected(), 67);
        assert_eq!(t.lost(), 4);
        assert_eq!(bg.burst_density, 0.5);
        assert_eq!(bg.burst_duration, 6.0);
        // Gaps: 20 before the burst, 20 + 1 + 20 after, one lone loss.
        assert_eq!(bg.gap_density, 1.0 / 61.0);
        assert_eq!(bg.gap_duration, 61.0 / 2.0);

        // Fewer than Gmin received between losses keeps the burst going;
        // 16 ends it.
        let mut t = LossTracker::new();
        t.observe(true);
        (0..15).for_each(|_| t.observe(false));
        t.observe(true);
        let bg = t.burst_gap();
        assert_eq!((bg.burst_duration, bg.burst_density), (17.0, 2.0 / 17.0));
        assert_eq!(bg.gap_duration, 0.0);
        let mut t = LossTracker::new();
        t.observe(true);
        (0..16).for_each(|_| t.observe(false));
        t.observe(true);
        let bg = t.burst_gap();
        assert_eq!(bg.burst_duration, 0.0);
        assert_eq!((bg.gap_duration, bg.gap_density), (18.0, 2.0 / 18.0));

        // Discards count as losses for bursts, not in the loss rate.
        let mut t = LossTracker::new();
        t.observe(false);
        t.observe_discarded();
        t.observe(true);
        t.observe(false);
        assert_eq!((t.lost(), t.discarded()), (1, 1));
        assert_eq!((t.loss_fraction(), t.discard_fraction()), (0.25, 0.25));
        assert_eq!(t.burst_gap().burst_duration, 2.0);
        assert_eq!(t.burst_gap().burst_density, 1.0);

        // Nothing observed.
        assert_eq!(LossTracker::new().burst_gap(), BurstGap::default());
        assert_eq!(LossTracker::new().burst_ratio(), 1.0);
    }

    #[test]
    fn voip_metrics_block() {
        let mut m = QualityMonitor::new(CodecImpairment::G711_PLC, 20 * MS);
        m.set_rtt(80 * MS);
        m.set_jitter_buffer_delay(50 * MS);
        for i in 0..1000 {
            if i % 100 == 50 {
                m.observe_discarded();
            } else {
                m.observe(i % 100 >= 95);
            }
        }
        let cfg = RxConfig {
            plc: Plc::Standard,
            jba: JitterBufferMode::Adaptive,
            jb_rate: 4,
        };
        let jb = JitterBufferDelays {
            nominal: 40 * MS,
            maximum: 80 * MS,
            abs_max: 200 * MS,
        };
        let v = m.voip_metrics(Ssrc(9), cfg, jb);
        let q = m.report();
        assert_eq!(v.ssrc, Ssrc(9));
        // 50 lost of 1000: 0.05·256 = 12.8 → 12; 10 discarded → 2.56 → 2.
        assert_eq!((v.loss_rate, v.discard_rate), (12, 2));
        // Bursts of 5 lost (100 % dense, 100 ms at 20 ms); the gaps hold
        // the lone discards: 10 in 950 packets, 10 gaps of 95 (1900 ms).
        assert_eq!((v.burst_density, v.burst_duration), (255, 100));
        assert_eq!((v.gap_density, v.gap_duration), (2, 1900));
        assert_eq!((v.round_trip_delay, v.end_system_delay), (80, 70));
        assert_eq!(v.r_factor, q.r_factor.round() as u8);
        assert_eq!(v.mos_cq, (q.mos_cq * 10.0).round() as u8);
        assert!(v.mos_lq >= v.mos_cq);
        assert_eq!(v.gmin, 16);
        assert_eq!((v.signal_level, v.noise_level), (127, 127));
        assert_eq!((v.rerl, v.ext_r_factor), (127, 127));
        assert_eq!(v.rx_config, cfg);
        assert_eq!((v.jb_nominal, v.jb_maximum, v.jb_abs_max), (40, 80, 200));

        // It travels in an XR.
        let blocks = [v];
        let xr = ExtendedReport::new(Ssrc(1), &blocks);
        let mut out = [0u8; 44];
        assert_eq!(xr.write(&mut out), Ok(44));
        let (p, _) = crate::rtcp::RtcpPacket::parse_first(&out).unwrap();
        let crate::rtcp::RtcpPacket::Xr(parsed) = p else {
            panic!("expected XR, got {p:?}");
        };
        assert_eq!(parsed.blocks().next(), Some(XrBlock::VoipMetrics(v)));
    }

    #[test]
    fn voip_metrics_saturate() {
        let mut m = QualityMonitor::new(CodecImpairment::G711, Duration::from_secs(10));
        m.set_rtt(Duration::from_secs(100));
        (0..10).for_each(|_| m.observe(true));
        let v = m.voip_metrics(Ssrc(1), RxConfig::default(), JitterBufferDelays::default());
        assert_eq!(v.loss_rate, 255);
        assert_eq!(v.burst_duration, u16::MAX);
        assert_eq!(v.round_trip_delay, u16::MAX);
        assert_eq!((v.r_factor, v.mos_cq), (0, 10));
    }
}
