//! What a media session reports to its application, and what the
//! application asks of it.

use std::time::Duration;

use super::pool::Frame;
use crate::dtmf::EventCode;
use crate::rtp::Ssrc;
use crate::sdp::Direction;

/// One report of a media session, in the order it happened.
#[derive(Debug, PartialEq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// A frame of received audio, decoded (or concealed) to PCM, in
    /// playout order.
    Audio(AudioFrame),
    /// A received payload as it came off the wire (when asked for), in
    /// arrival order, before any jitter buffer.
    Payload(PayloadFrame),
    /// An RFC 4733 event started or ended.
    Dtmf(DtmfReport),
    /// An RTCP report from the far end.
    Rtcp(RtcpReport),
    /// The far end's own quality figures (an RTCP XR VoIP Metrics block).
    RemoteQuality(RemoteQuality),
    /// Live quality of the received stream.
    Quality(QualityReport),
    /// The session changed state.
    State(SessionState),
    /// A request of the application was refused (e.g. DTMF when
    /// telephone-event was not negotiated, or any request after stop).
    Refused(super::session::SessionError),
}

/// Decoded audio.
#[derive(Debug, PartialEq)]
pub struct AudioFrame {
    /// PCM samples at the codec's clock rate, mono.
    pub samples: Frame<i16>,
    /// RTP timestamp of the first sample.
    pub timestamp: u32,
    /// No packet carried this frame: loss concealment (or a frame inserted
    /// while the jitter buffer grew).
    pub concealed: bool,
}

/// A received payload.
#[derive(Debug, PartialEq)]
pub struct PayloadFrame {
    /// The payload bytes (transcoded to the application's codec when it
    /// asked for another G.711 law than the far end sends).
    pub payload: Frame<u8>,
    /// RTP payload type as received.
    pub payload_type: u8,
    /// RTP sequence number.
    pub sequence: u16,
    /// RTP timestamp.
    pub timestamp: u32,
    /// RTP marker bit.
    pub marker: bool,
    /// The packet's SSRC.
    pub ssrc: Ssrc,
}

/// Start or end of a telephone-event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfReport {
    /// The event (0-9, 10 = `*`, 11 = `#`, 12-15 = A-D).
    pub event: EventCode,
    /// `false`: started; `true`: ended (reported once per event).
    pub ended: bool,
    /// Duration known at the report (the final one when ended).
    pub duration: Duration,
    /// RTP timestamp of the event start.
    pub timestamp: u32,
}

/// An RTCP report received.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RtcpReport {
    /// Reporter SSRC.
    pub ssrc: Ssrc,
    /// A sender report (with sender info) or a receiver report.
    pub sender_report: bool,
    /// What the far end reports about our stream, if it did.
    pub about_us: Option<ReceptionReport>,
    /// Round-trip time computed from this report's LSR/DLSR (RFC 3550
    /// §6.4.1), when it carries them.
    pub rtt: Option<Duration>,
}

/// A report block about our stream (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceptionReport {
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost.
    pub cumulative_lost: i32,
    /// Interarrival jitter in timestamp units.
    pub jitter: u32,
}

/// The far end's XR VoIP Metrics (RFC 3611 §4.7), the fields people use.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RemoteQuality {
    /// Reporter SSRC.
    pub ssrc: Ssrc,
    /// Loss rate it saw, percent.
    pub loss_percent: f64,
    /// Its R factor (`None`: unavailable).
    pub r_factor: Option<u8>,
    /// Its MOS-CQ (`None`: unavailable).
    pub mos_cq: Option<f64>,
    /// Round-trip delay it measured.
    pub round_trip: Duration,
}

/// Live quality of the received stream (ITU-T G.107 E-model).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QualityReport {
    /// Transmission rating factor R.
    pub r_factor: f64,
    /// MOS-CQ estimate from R (G.107 Annex B). An estimate, not a
    /// listening test.
    pub mos_cq: f64,
    /// Packets lost, percent of expected.
    pub loss_percent: f64,
    /// Burst ratio (1: random loss).
    pub burst_ratio: f64,
    /// Interarrival jitter (RFC 3550 A.8).
    pub jitter: Duration,
    /// Round-trip time, when RTCP measured one.
    pub rtt: Option<Duration>,
    /// Jitter-buffer delay (zero without a jitter buffer).
    pub buffer_delay: Duration,
}

/// A session state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionState {
    /// The first packet went out.
    Sending,
    /// The first packet came in, from this SSRC.
    Receiving(Ssrc),
    /// The far end's SSRC changed.
    SourceChanged(Ssrc),
    /// The direction changed (hold, resume).
    Direction(Direction),
    /// The far end said goodbye (RTCP BYE).
    RemoteBye,
    /// The session stopped (its BYE went out): nothing more is sent.
    Stopped,
}

/// What the application asks of a running session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Control {
    /// Send an RFC 4733 event of this duration (queued behind others).
    Dtmf {
        /// The event.
        event: EventCode,
        /// Its duration.
        duration: Duration,
    },
    /// Change the direction (hold: `SendOnly`/`Inactive`; resume:
    /// `SendRecv`).
    Direction(Direction),
    /// Stop: send RTCP BYE, then nothing more.
    Stop,
}
