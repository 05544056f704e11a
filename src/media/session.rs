//! The media session: one audio stream that starts or ends in the
//! application (sans-IO; no threads, sockets or clocks).
//!
//! Send side:
//! - **Pacing on a media clock.** Packet `k` is due at `start + k·ptime`
//!   and carries RTP timestamp `initial + k·ptime·rate` (RFC 3550 §5.1:
//!   the timestamp follows the sampling instant). Ticks run whatever
//!   happens: on hold, during an underrun of the application's audio or a
//!   telephone-event, the timestamp keeps advancing with the clock, so a
//!   resumed stream never jumps back or stalls. A shard that polls late
//!   sends each overdue packet at once, up to [`MAX_CATCH_UP`]; older ticks
//!   are skipped (counted), never burst.
//! - **Marker bit** on the first packet of each talkspurt (RFC 3551 §4.1):
//!   the first packet, and the first after an underrun, hold or event.
//! - **Direction**: nothing is sent while not sending (the application's
//!   audio is consumed and counted as discarded, so it stays in step); RTP
//!   received while not receiving is dropped and counted. RTCP goes on in
//!   every direction (RFC 3264 §5.1).
//! - **RFC 4733 events** share the audio's SSRC, sequence and timestamp
//!   space ([`DtmfSender`] owns the [`RtpSource`]); while an event occupies
//!   the stream, audio ticks are held back (consumed, not sent), so no
//!   audio packet falls inside an event (RFC 4733 §2.5.1.2).
//!
//! Receive side: RTP is checked against the negotiated payload types:
//! telephone-events go to a [`DtmfReceiver`] (each digit reported once with
//! its duration, whatever redundancy, loss or reordering), audio through the
//! receive statistics (RFC 3550 A.1, A.8) into the optional
//! [`JitterBuffer`] and out as PCM (G.711 with concealment of lost frames)
//! and/or as raw payloads.
//!
//! RTCP (RFC 3550 §6): a compound SR or RR + SDES CNAME (+ XR VoIP Metrics,
//! RFC 3611 §4.7, when enabled) on randomised intervals (§6.2, §6.3.5:
//! `T·U[0.5, 1.5] / (e − 3/2)` with `T` the configured minimum, the first
//! report after half of it), round-trip time from LSR/DLSR of the far end's
//! report blocks about us (§6.4.1), and BYE when stopped (§6.3.7).
//!
//! Quality: an ITU-T G.107 E-model per stream from the codec, the losses
//! the playout saw (burst-aware), jitter-buffer delay and RTT
//! ([`QualityMonitor`]), reported live and carried in the XR block.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::endpoint::{Endpoint, Transmit};
use super::event::{
    AudioFrame, Control, DtmfReport, MediaEvent, PayloadFrame, QualityReport, ReceptionReport,
    RemoteQuality, RtcpReport, SessionState,
};
use super::jitter::{JitterBuffer, JitterConfig, Playout};
use super::pool::FramePool;
use super::quality::{CodecImpairment, JitterBufferDelays, QualityMonitor};
use super::ring::Consumer;
use crate::codec::plc::Concealer;
use crate::codec::{AudioCodec, G711};
use crate::dtmf::{
    DtmfReceiver, DtmfReceiverConfig, DtmfSender, DtmfSenderConfig, EventCode, EventKind,
    MAX_REPORTS_PER_CALL, Volume,
};
use crate::relay::Component;
use crate::rtcp::{
    self, Bye, CompoundWriter, JitterBufferMode, LocalSource, NtpTime, Plc, RtcpPacket, RxConfig,
    SenderInfo, SsrcList,
};
use crate::rtp::SeqNo;
use crate::rtp::source::{RtpSource, SourceConfig};
use crate::rtp::stats::{ClockRate, Outcome, ReceiveStats};
use crate::rtp::{PayloadType, RtpPacket, Ssrc};
use crate::sdp::Direction;

/// Most overdue packets sent at once after a late poll; older ticks are
/// skipped.
pub const MAX_CATCH_UP: u64 = 3;

/// Concealment with nothing buffered for this long ends playout until the
/// next packet.
pub const IDLE_PLAYOUT: Duration = Duration::from_secs(1);

/// Largest PCM frame a session handles (120 ms at 8 kHz).
const MAX_FRAME_SAMPLES: usize = 960;

/// Why a session cannot be built or a control request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// ptime outside 10..=120 ms or not a whole number of clock ticks.
    #[error("ptime {0:?} unsupported (10 to 120 ms)")]
    Ptime(Duration),
    /// The jitter buffer settings are invalid.
    #[error("jitter buffer: {0}")]
    Jitter(String),
    /// A receive payload type is listed twice or collides with the
    /// telephone-event type.
    #[error("payload type {0} listed twice")]
    DuplicatePayloadType(u8),
    /// Telephone-events were not negotiated.
    #[error("telephone-event was not negotiated")]
    NoTelephoneEvent,
    /// The DTMF queue is full or the duration is zero.
    #[error("DTMF: {0}")]
    Dtmf(String),
    /// The CNAME is longer than 255 bytes.
    #[error("CNAME longer than 255 bytes")]
    Cname,
    /// The session has stopped.
    #[error("session stopped")]
    Stopped,
    /// DTMF asked while the direction does not send.
    #[error("not sending (direction {0})")]
    NotSending(&'static str),
    /// An interval too short to be sane (RTCP or quality reports).
    #[error("{what} interval {got:?} is below the minimum {min:?}")]
    Interval {
        /// Which interval.
        what: &'static str,
        /// The value given.
        got: Duration,
        /// The least accepted.
        min: Duration,
    },
}

/// Packets in a row of another size before the playout re-frames to it.
const REFRAME_AFTER: u32 = 2;

/// The shortest RTCP report interval accepted (RFC 3550 §6.2 allows a
/// reduced minimum; this keeps a session from flooding).
pub const MIN_RTCP_INTERVAL: Duration = Duration::from_millis(100);
/// The shortest quality report interval accepted.
pub const MIN_QUALITY_INTERVAL: Duration = Duration::from_millis(100);

/// A codec a session sends or accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodecSpec {
    /// G.711 µ-law or A-law.
    G711(G711),
}

impl CodecSpec {
    fn build(self) -> Box<dyn AudioCodec> {
        match self {
            CodecSpec::G711(g) => Box::new(g),
        }
    }

    fn impairment(self, plc: bool) -> CodecImpairment {
        match (self, plc) {
            (CodecSpec::G711(_), true) => CodecImpairment::G711_PLC,
            (CodecSpec::G711(_), false) => CodecImpairment::G711,
        }
    }
}

/// What the application writes into the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputMode {
    /// 16-bit PCM at the codec's rate; the session encodes.
    Pcm,
    /// Payload already encoded with this codec; the session transcodes
    /// when it differs from the codec it sends.
    Payload(CodecSpec),
}

/// Settings of a [`MediaSession`] (what offer/answer negotiated, and local
/// choices).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// The payload type and codec sent (the first codec of the answer).
    pub send: (PayloadType, CodecSpec),
    /// Payload types accepted on receive (the send one is always
    /// accepted).
    pub receive: Vec<(PayloadType, CodecSpec)>,
    /// The negotiated telephone-event payload type (RFC 4733 §7.1.1) we
    /// send with, if any.
    pub telephone_event: Option<PayloadType>,
    /// The telephone-event payload type the far end sends with, when it
    /// differs (an answer may number it otherwise than the offer: each
    /// side sends with the number the receiver's SDP gave); `None`: the
    /// same as [`telephone_event`](Self::telephone_event).
    pub receive_telephone_event: Option<PayloadType>,
    /// Packetisation interval we send at (the far end's `a=ptime`, RFC
    /// 8866 §6.4).
    pub ptime: Duration,
    /// Packetisation interval the far end sends at (the `a=ptime` of our
    /// own SDP); `None`: the same as `ptime`. Sizes the jitter buffer's
    /// frames and the audio frames delivered.
    pub receive_ptime: Option<Duration>,
    /// Initial direction, from our point of view.
    pub direction: Direction,
    /// What the application writes.
    pub input: InputMode,
    /// Room of the input ring, in media time.
    pub input_buffer: Duration,
    /// Report decoded audio as [`MediaEvent::Audio`].
    pub deliver_audio: bool,
    /// Report raw payloads as [`MediaEvent::Payload`] (in this codec: the
    /// received payload is transcoded when the far end uses the other
    /// G.711 law; `None`: as received).
    pub deliver_payload: Option<Option<CodecSpec>>,
    /// Frames lent to the application at once (per kind); a frame that
    /// finds none free is counted, not delivered.
    pub frames: usize,
    /// Jitter buffer; `None` plays out on arrival (lowest latency).
    pub jitter: Option<JitterConfig>,
    /// Send and receive RTCP.
    pub rtcp: bool,
    /// Minimum RTCP report interval `T` (RFC 3550 §6.2: 5 s).
    pub rtcp_interval: Duration,
    /// Add an XR VoIP Metrics block (RFC 3611 §4.7) to each report.
    pub xr: bool,
    /// Our CNAME (RFC 3550 §6.5.1).
    pub cname: String,
    /// Our SSRC (`None`: random).
    pub ssrc: Option<Ssrc>,
    /// How often [`MediaEvent::Quality`] is reported while receiving (none
    /// when nothing arrived since the last).
    pub quality_interval: Duration,
    /// Wall-clock time at the session's start instant, for SR NTP
    /// timestamps (the caller reads the clock, not the session).
    pub wallclock: NtpTime,
    /// Capacity of the internal event queue (events beyond it are counted
    /// and dropped).
    pub event_capacity: usize,
}

impl SessionConfig {
    /// PCMU sent, PCMU and PCMA accepted, 20 ms, telephone-event 101, send
    /// and receive, PCM in and out, a jitter buffer, RTCP every 5 s with XR.
    pub fn new(wallclock: NtpTime) -> Self {
        SessionConfig {
            send: (PayloadType::PCMU, CodecSpec::G711(G711::Pcmu)),
            receive: vec![
                (PayloadType::PCMU, CodecSpec::G711(G711::Pcmu)),
                (PayloadType::PCMA, CodecSpec::G711(G711::Pcma)),
            ],
            telephone_event: PayloadType::new(101),
            receive_telephone_event: None,
            ptime: Duration::from_millis(20),
            receive_ptime: None,
            direction: Direction::SendRecv,
            input: InputMode::Pcm,
            input_buffer: Duration::from_millis(160),
            deliver_audio: true,
            deliver_payload: None,
            frames: 8,
            jitter: Some(JitterConfig::new(8000, Duration::from_millis(20))),
            rtcp: true,
            rtcp_interval: Duration::from_secs(5),
            xr: true,
            cname: String::from("mediarelay"),
            ssrc: None,
            quality_interval: Duration::from_secs(1),
            wallclock,
            event_capacity: 32,
        }
    }

    /// Samples per packet at the send codec's rate.
    pub fn frame_samples(&self) -> usize {
        let rate = u128::from(self.send.1.build().clock_rate());
        (self.ptime.as_nanos() * rate / 1_000_000_000) as usize
    }
}

/// Counters of a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionStats {
    /// Audio RTP packets sent.
    pub audio_sent: u64,
    /// RTP payload octets sent, audio and telephone-event (the sender
    /// report's octet count, RFC 3550 §6.4.1).
    pub bytes_sent: u64,
    /// RTP payload octets received in accepted packets, audio and
    /// telephone-event (the counterpart of `bytes_sent`).
    pub bytes_received: u64,
    /// Telephone-event packets sent.
    pub dtmf_sent: u64,
    /// RTCP compounds sent.
    pub rtcp_sent: u64,
    /// Ticks without a full frame of input (nothing sent).
    pub underruns: u64,
    /// Frames of input consumed without sending (not sending, or held
    /// back during a telephone-event).
    pub input_discarded: u64,
    /// Ticks skipped because the poll came too late.
    pub ticks_skipped: u64,
    /// Packets that could not be sent (no destination, send failure).
    pub send_failed: u64,
    /// RTP packets received and accepted.
    pub received: u64,
    /// Telephone-event packets received.
    pub dtmf_received: u64,
    /// RTCP compounds received.
    pub rtcp_received: u64,
    /// RTP dropped: received while not receiving.
    pub dropped_not_receiving: u64,
    /// Datagrams dropped as malformed.
    pub dropped_malformed: u64,
    /// RTP dropped: payload type not negotiated.
    pub dropped_payload_type: u64,
    /// Times the far end's packetisation was found to differ from the
    /// receive ptime and the playout was re-framed to it.
    pub receive_reframed: u64,
    /// Frames played out (decoded from a packet).
    pub played: u64,
    /// Frames concealed.
    pub concealed: u64,
    /// Events dropped because the queue was full.
    pub events_dropped: u64,
    /// Frames not delivered because the application holds every buffer.
    pub frames_dropped: u64,
    /// Sum of send lags (actual send instant − scheduled instant), µs.
    pub pacing_lag_us_sum: u64,
    /// Largest send lag seen, µs.
    pub pacing_lag_us_max: u64,
    /// Send lag histogram: bucket `i` counts lags in `[i·100, (i+1)·100)`
    /// µs; the last bucket everything from 1.5 ms on.
    pub pacing_lag: [u64; 16],
}

/// The sans-IO media session. Implements [`Endpoint`], so an engine shard
/// or a simulation drives it.
pub struct MediaSession {
    start: Instant,
    wallclock: NtpTime,
    ptime: Duration,
    frame_samples: usize,
    /// Samples per received frame (the far end's packetisation).
    recv_frame: usize,
    /// Frames in the audio pool (kept to resize it).
    pool_frames: usize,
    /// A packet size (samples) seen instead of `recv_frame`, and how many
    /// times in a row.
    reframe_candidate: (usize, u32),
    direction: Direction,
    send_pt: PayloadType,
    send_codec: Box<dyn AudioCodec>,
    /// Owns the [`RtpSource`] audio and events share.
    dtmf_tx: DtmfSender,
    telephone_event: Option<PayloadType>,
    /// The telephone-event payload type received.
    rx_event: Option<PayloadType>,
    input: Input,
    /// Index of the next audio tick.
    tick: u64,
    /// When it is due.
    next_tick_at: Instant,
    /// How late a tick may be and still be sent ([`MAX_CATCH_UP`] ticks).
    catch_up: Duration,
    /// The application's payload is in the codec sent (no transcoding).
    same_codec: bool,
    /// The media clock ran past representable time.
    clock_ended: bool,
    /// RTP packets sent as of the previous report (SR only when more went
    /// out since, RFC 3550 §6.4).
    sent_at_report: u64,
    /// The previous tick sent audio (no marker on the next).
    in_talkspurt: bool,
    sent_any: bool,
    recv_codecs: Vec<(PayloadType, Box<dyn AudioCodec>)>,
    /// Codec index of the stream being played out.
    playing: usize,
    recv_stats: Vec<ReceiveStats>,
    last_quality: Option<QualityReport>,
    /// `stats.received` at the last quality report.
    received_at_quality: u64,
    /// Highest sequence number played on arrival (no jitter buffer).
    highest_seq: Option<SeqNo>,
    dtmf_rx: Option<DtmfReceiver>,
    jitter: Option<JitterBuffer>,
    /// Frames concealed in a row.
    concealed_run: u32,
    /// [`IDLE_PLAYOUT`] in frames.
    idle_frames: u32,
    concealer: Concealer,
    quality: QualityMonitor,
    next_quality: Option<Instant>,
    quality_interval: Duration,
    audio_pool: Option<FramePool<i16>>,
    payload_pool: Option<FramePool<u8>>,
    payload_codec: Option<Box<dyn AudioCodec>>,
    pcm: Box<[i16]>,
    bytes: Box<[u8]>,
    rtcp: bool,
    xr: bool,
    rtcp_interval: Duration,
    next_rtcp: Option<Instant>,
    rng: u64,
    cname: Box<[u8]>,
    rtt: Option<Duration>,
    stop: StopState,
    events: VecDeque<MediaEvent>,
    event_capacity: usize,
    stats: SessionStats,
}

enum Input {
    Pcm(Consumer<i16>),
    Payload(Consumer<u8>, Box<dyn AudioCodec>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopState {
    Running,
    /// Stop asked: the BYE goes out on the next poll.
    ByePending,
    Stopped,
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession")
            .field("ssrc", &self.ssrc())
            .field("direction", &self.direction)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// The application's input end: hand it to the writer of audio.
#[derive(Debug)]
pub enum InputWriter {
    /// PCM samples.
    Pcm(super::ring::Producer<i16>),
    /// Pre-encoded payload bytes.
    Payload(super::ring::Producer<u8>),
}

impl MediaSession {
    /// A session starting at `start` (its media clock's origin), and the
    /// writer of its audio input.
    pub fn new(config: SessionConfig, start: Instant) -> Result<(Self, InputWriter), SessionError> {
        let SessionConfig {
            send,
            receive,
            telephone_event,
            receive_telephone_event,
            ptime,
            receive_ptime,
            direction,
            input,
            input_buffer,
            deliver_audio,
            deliver_payload,
            frames,
            jitter,
            rtcp,
            rtcp_interval,
            xr,
            cname,
            ssrc,
            quality_interval,
            wallclock,
            event_capacity,
        } = config;
        if cname.len() > 255 {
            return Err(SessionError::Cname);
        }
        for (what, got, min) in [
            ("RTCP", rtcp_interval, MIN_RTCP_INTERVAL),
            ("quality", quality_interval, MIN_QUALITY_INTERVAL),
        ] {
            if got < min {
                return Err(SessionError::Interval { what, got, min });
            }
        }
        let send_codec = send.1.build();
        let rate = send_codec.clock_rate();
        if !(Duration::from_millis(10)..=Duration::from_millis(120)).contains(&ptime) {
            return Err(SessionError::Ptime(ptime));
        }
        let frame_samples = (ptime.as_nanos() * u128::from(rate) / 1_000_000_000) as usize;
        if frame_samples == 0 || frame_samples > MAX_FRAME_SAMPLES {
            return Err(SessionError::Ptime(ptime));
        }
        let recv_ptime = receive_ptime.unwrap_or(ptime);
        if !(Duration::from_millis(10)..=Duration::from_millis(120)).contains(&recv_ptime) {
            return Err(SessionError::Ptime(recv_ptime));
        }
        let recv_frame = (recv_ptime.as_nanos() * u128::from(rate) / 1_000_000_000) as usize;
        if recv_frame == 0 || recv_frame > MAX_FRAME_SAMPLES {
            return Err(SessionError::Ptime(recv_ptime));
        }
        let mut source_cfg = SourceConfig::random(rate, ptime);
        if let Some(s) = ssrc {
            source_cfg.ssrc = s;
        }
        let source = RtpSource::new(source_cfg, start).map_err(|_| SessionError::Ptime(ptime))?;
        let dtmf_tx = DtmfSender::new(
            source,
            DtmfSenderConfig {
                queue_capacity: 16,
                ..DtmfSenderConfig::new(telephone_event.unwrap_or(PayloadType::from_wire(101)))
            },
        );
        let mut recv_codecs: Vec<(PayloadType, Box<dyn AudioCodec>)> =
            Vec::with_capacity(receive.len() + 1);
        recv_codecs.push((send.0, send.1.build()));
        for (pt, spec) in receive {
            if recv_codecs.iter().any(|(p, _)| *p == pt) {
                if pt == send.0 {
                    continue;
                }
                return Err(SessionError::DuplicatePayloadType(pt.value()));
            }
            recv_codecs.push((pt, spec.build()));
        }
        let rx_event = receive_telephone_event.or(telephone_event);
        if let Some(te) = rx_event {
            if recv_codecs.iter().any(|(p, _)| *p == te) {
                return Err(SessionError::DuplicatePayloadType(te.value()));
            }
        }
        let input_samples = (input_buffer.as_nanos() * u128::from(rate) / 1_000_000_000) as usize;
        let input_samples = input_samples.max(frame_samples);
        let same_codec = match input {
            InputMode::Pcm => true,
            InputMode::Payload(spec) => spec == send.1,
        };
        let input_payload_len = match input {
            InputMode::Pcm => 0,
            InputMode::Payload(spec) => spec.build().payload_len(frame_samples),
        };
        let (input, writer) = match input {
            InputMode::Pcm => {
                let (p, c) = super::ring::ring::<i16>(input_samples);
                (Input::Pcm(c), InputWriter::Pcm(p))
            }
            InputMode::Payload(spec) => {
                let codec = spec.build();
                let (p, c) = super::ring::ring::<u8>(codec.payload_len(input_samples));
                (Input::Payload(c, codec), InputWriter::Payload(p))
            }
        };
        let has_jitter = jitter.is_some();
        let max_frame_payload = recv_codecs
            .iter()
            .map(|(_, c)| c.payload_len(recv_frame))
            .chain(std::iter::once(send_codec.payload_len(frame_samples)))
            .chain(std::iter::once(input_payload_len))
            .max()
            .unwrap_or(frame_samples);
        let jitter = match jitter {
            Some(mut j) => {
                j.clock_rate = rate;
                j.frame = recv_ptime;
                // The buffer plays one packet per frame: a slot needs room for
                // one frame's payload in the largest receive codec (a far end
                // packetising at another ptime re-frames it: `reframe`).
                let frame_payload = recv_codecs
                    .iter()
                    .map(|(_, c)| c.payload_len(recv_frame))
                    .max()
                    .unwrap_or(0);
                j.max_payload = j.max_payload.min(frame_payload.max(1));
                Some(JitterBuffer::new(j).map_err(|e| SessionError::Jitter(e.to_string()))?)
            }
            None => None,
        };
        let rng = u64::from(source_cfg.ssrc.0) << 32 | 0x5851_f42d;
        let session = MediaSession {
            start,
            wallclock,
            ptime,
            frame_samples,
            recv_frame,
            pool_frames: frames,
            reframe_candidate: (0, 0),
            direction,
            send_pt: send.0,
            send_codec,
            dtmf_tx,
            telephone_event,
            input,
            tick: 0,
            next_tick_at: start,
            catch_up: ptime.saturating_mul(MAX_CATCH_UP as u32),
            same_codec,
            clock_ended: false,
            sent_at_report: 0,
            in_talkspurt: false,
            sent_any: false,
            recv_codecs,
            playing: 0,
            recv_stats: Vec::with_capacity(1),
            last_quality: None,
            received_at_quality: 0,
            highest_seq: None,
            rx_event,
            // Its reports are taken after every packet and timeout it is
            // handed (`drain_dtmf`): room for one call's worth is enough.
            dtmf_rx: rx_event.map(|pt| {
                DtmfReceiver::with_output_capacity(
                    DtmfReceiverConfig {
                        payload_type: pt,
                        end_timeout: Duration::from_millis(300),
                    },
                    MAX_REPORTS_PER_CALL,
                )
            }),
            jitter,
            concealed_run: 0,
            idle_frames: (IDLE_PLAYOUT.as_nanos() / recv_ptime.as_nanos().max(1)).max(1) as u32,
            concealer: Concealer::new(),
            quality: QualityMonitor::new(send.1.impairment(true), recv_ptime),
            next_quality: Some(start + quality_interval),
            quality_interval,
            // Frames as played: one receive frame through the jitter buffer,
            // up to two on arrival (a far end packetising at up to twice the
            // ptime asked of it).
            audio_pool: deliver_audio.then(|| {
                FramePool::new(
                    frames,
                    if has_jitter {
                        recv_frame
                    } else {
                        2 * recv_frame
                    },
                )
            }),
            payload_pool: deliver_payload
                .is_some()
                .then(|| FramePool::new(frames, 1500)),
            payload_codec: deliver_payload.flatten().map(CodecSpec::build),
            // One frame through the jitter buffer (it takes one frame per
            // packet); played on arrival, room for a far end packetising at
            // up to twice our ptime. Raw payloads handed out whole need a
            // datagram's worth; otherwise one encoded frame.
            pcm: vec![
                0i16;
                if has_jitter {
                    frame_samples.max(recv_frame)
                } else {
                    frame_samples.max(2 * recv_frame)
                }
            ]
            .into_boxed_slice(),
            bytes: vec![
                0u8;
                if deliver_payload.is_some() {
                    1500
                } else {
                    max_frame_payload
                }
            ]
            .into_boxed_slice(),
            rtcp,
            xr,
            rtcp_interval,
            next_rtcp: None,
            rng,
            cname: cname.into_bytes().into_boxed_slice(),
            rtt: None,
            stop: StopState::Running,
            events: VecDeque::with_capacity(event_capacity),
            event_capacity,
            stats: SessionStats::default(),
        };
        let mut session = session;
        if session.rtcp {
            // RFC 3550 §6.2: the first report after half the minimum.
            let first = session.randomised(session.rtcp_interval / 2);
            session.next_rtcp = Some(start + first);
        }
        Ok((session, writer))
    }

    /// Our SSRC.
    pub fn ssrc(&self) -> Ssrc {
        self.dtmf_tx.source().ssrc()
    }

    /// The current direction.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Counters.
    pub fn stats(&self) -> &SessionStats {
        &self.stats
    }

    /// The jitter buffer, when there is one.
    pub fn jitter_buffer(&self) -> Option<&JitterBuffer> {
        self.jitter.as_ref()
    }

    /// The last quality report (taken every
    /// [`SessionConfig::quality_interval`] while receiving).
    pub fn last_quality(&self) -> Option<&QualityReport> {
        self.last_quality.as_ref()
    }

    /// Cumulative packets lost on the received stream (RFC 3550 A.3:
    /// expected minus received; negative with duplicates) and packets
    /// expected.
    pub fn receive_loss(&self) -> (i64, u64) {
        self.recv_stats
            .first()
            .map_or((0, 0), |s| (s.cumulative_lost(), s.expected()))
    }

    /// Interarrival jitter of the received stream (RFC 3550 A.8).
    pub fn receive_jitter(&self) -> Duration {
        self.recv_stats
            .first()
            .map_or(Duration::ZERO, ReceiveStats::jitter_duration)
    }

    /// The last round-trip time measured.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Current quality of the received stream.
    pub fn quality(&self) -> QualityReport {
        let q = self.quality.report();
        QualityReport {
            r_factor: q.r_factor,
            mos_cq: q.mos_cq,
            loss_percent: q.loss_percent,
            burst_ratio: q.burst_ratio,
            jitter: self
                .recv_stats
                .first()
                .map_or(Duration::ZERO, ReceiveStats::jitter_duration),
            rtt: self.rtt,
            buffer_delay: self.buffer_delay(),
        }
    }

    /// The delay the jitter buffer really adds now (not its target).
    fn buffer_delay(&self) -> Duration {
        self.jitter
            .as_ref()
            .map_or(Duration::ZERO, JitterBuffer::current_delay)
    }

    /// Applies an application request.
    pub fn control(&mut self, now: Instant, c: Control) -> Result<(), SessionError> {
        if self.stop != StopState::Running {
            return Err(SessionError::Stopped);
        }
        match c {
            Control::Dtmf { event, duration } => self.send_dtmf(event, duration),
            Control::Direction(d) => {
                self.set_direction(now, d);
                Ok(())
            }
            Control::Stop => {
                self.stop(now);
                Ok(())
            }
        }
    }

    /// Queues an RFC 4733 event.
    pub fn send_dtmf(&mut self, event: EventCode, duration: Duration) -> Result<(), SessionError> {
        if self.telephone_event.is_none() {
            return Err(SessionError::NoTelephoneEvent);
        }
        if !self.direction.sends() {
            return Err(SessionError::NotSending(self.direction.name()));
        }
        self.dtmf_tx
            .queue(event, duration, Volume::DEFAULT)
            .map_err(|e| SessionError::Dtmf(e.to_string()))
    }

    /// Changes the direction (hold / resume). The media clock runs on; a
    /// telephone-event in progress ends and queued ones are dropped when
    /// the new direction does not send.
    pub fn set_direction(&mut self, now: Instant, d: Direction) {
        if d != self.direction {
            if !d.sends() {
                self.dtmf_tx.stop(now);
                self.dtmf_tx.clear_queue();
            }
            self.direction = d;
            self.in_talkspurt = false;
            self.push_event(MediaEvent::State(SessionState::Direction(d)));
        }
    }

    /// Stops: the next poll sends RTCP BYE (RFC 3550 §6.3.7), then nothing.
    pub fn stop(&mut self, _now: Instant) {
        if self.stop == StopState::Running {
            self.stop = if self.rtcp {
                StopState::ByePending
            } else {
                self.push_event(MediaEvent::State(SessionState::Stopped));
                StopState::Stopped
            };
        }
    }

    /// Whether the session has stopped (its BYE is out).
    pub fn is_stopped(&self) -> bool {
        self.stop == StopState::Stopped
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.events.pop_front()
    }

    fn push_event(&mut self, e: MediaEvent) {
        if self.events.len() >= self.event_capacity {
            self.stats.events_dropped += 1;
            return;
        }
        self.events.push_back(e);
    }

    /// `base · U[0.5, 1.5] / (e − 3/2)` (RFC 3550 §6.3.1, A.7).
    fn randomised(&mut self, base: Duration) -> Duration {
        // xorshift64*: the interval only needs to be unsynchronised.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let r = self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d);
        let u = 0.5 + (r >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(u / (std::f64::consts::E - 1.5))
    }

    fn ntp_at(&self, now: Instant) -> NtpTime {
        let d = now.saturating_duration_since(self.start);
        let frac = (u128::from(d.subsec_nanos()) << 32) / 1_000_000_000;
        let add = (d.as_secs() << 32) | frac as u64;
        NtpTime(self.wallclock.0.wrapping_add(add))
    }

    /// Moves to tick `k`; past the end of representable time the media
    /// clock stops (nothing more is sent).
    fn set_tick(&mut self, k: u64) {
        self.tick = k;
        match self.checked_tick_instant(k) {
            Some(t) => self.next_tick_at = t,
            None => self.clock_ended = true,
        }
    }

    fn checked_tick_instant(&self, k: u64) -> Option<Instant> {
        let nanos = self.ptime.as_nanos().checked_mul(u128::from(k))?;
        let d = Duration::from_nanos(u64::try_from(nanos).ok()?);
        self.start.checked_add(d)
    }

    fn tick_instant(&self, k: u64) -> Instant {
        self.start
            + self
                .ptime
                .saturating_mul(u32::try_from(k).unwrap_or(u32::MAX))
    }

    /// Reads one frame of input into `self.pcm` (PCM) or `self.bytes`
    /// (payload). Returns whether a whole frame was there; a partial frame
    /// stays for the next tick.
    fn take_input(&mut self) -> bool {
        let n = self.frame_samples;
        match &mut self.input {
            Input::Pcm(c) => c.len() >= n && c.read(&mut self.pcm[..n]) == n,
            Input::Payload(c, codec) => {
                let len = codec.payload_len(n);
                c.len() >= len && c.read(&mut self.bytes[..len]) == len
            }
        }
    }

    /// The audio packet of tick `k`, if it sends one.
    fn audio_tick(&mut self, now: Instant, k: u64, buf: &mut [u8]) -> Option<usize> {
        let have = self.take_input();
        if !have {
            // A session that does not send expects no input.
            if self.direction.sends() && self.stop == StopState::Running {
                self.stats.underruns += 1;
            }
            self.in_talkspurt = false;
            return None;
        }
        let units = k * u64::from(self.dtmf_tx.source().ptime_units());
        if self.dtmf_tx.covers(units) || !self.direction.sends() || self.stop != StopState::Running
        {
            self.stats.input_discarded += 1;
            self.in_talkspurt = false;
            return None;
        }
        let n = self.frame_samples;
        let payload_len = match &mut self.input {
            Input::Pcm(_) => self.send_codec.encode(&self.pcm[..n], &mut self.bytes),
            Input::Payload(_, codec) => {
                let len = codec.payload_len(n);
                if self.same_codec {
                    len
                } else if self
                    .send_codec
                    .transcode_from(codec.as_ref(), &mut self.bytes[..len])
                    .is_none()
                {
                    // Through PCM.
                    let got = codec.decode(&self.bytes[..len], &mut self.pcm[..n]);
                    self.send_codec.encode(&self.pcm[..got], &mut self.bytes)
                } else {
                    len
                }
            }
        };
        let ts = self.dtmf_tx.source().timestamp_for(units);
        let marker = !self.in_talkspurt;
        let len = self
            .dtmf_tx
            .source_mut()
            .write_packet(self.send_pt, ts, marker, &self.bytes[..payload_len], buf)
            .ok()?;
        self.in_talkspurt = true;
        self.stats.audio_sent += 1;
        self.stats.bytes_sent = self.dtmf_tx.source().payload_octets_sent();
        self.record_lag(now, self.tick_instant(k));
        if !self.sent_any {
            self.sent_any = true;
            self.push_event(MediaEvent::State(SessionState::Sending));
        }
        Some(len)
    }

    fn record_lag(&mut self, now: Instant, due: Instant) {
        let lag = now.saturating_duration_since(due).as_micros() as u64;
        self.stats.pacing_lag_us_sum += lag;
        self.stats.pacing_lag_us_max = self.stats.pacing_lag_us_max.max(lag);
        let b = ((lag / 100) as usize).min(15);
        self.stats.pacing_lag[b] += 1;
    }

    /// Writes our report (SR or RR + SDES, + XR), with BYE when `bye`.
    fn write_rtcp(&mut self, now: Instant, buf: &mut [u8], bye: bool) -> Option<usize> {
        let ntp = self.ntp_at(now);
        let src = self.dtmf_tx.source();
        let sent = src.packets_sent();
        let sender_info = (sent > self.sent_at_report).then(|| SenderInfo {
            ntp,
            rtp_timestamp: src.timestamp_at(now),
            packet_count: src.packets_sent() as u32,
            octet_count: src.payload_octets_sent() as u32,
        });
        let ssrc = src.ssrc();
        let local = LocalSource {
            ssrc,
            cname: &self.cname,
            sender_info,
        };
        let mut len = rtcp::write_report(buf, now, &local, &mut self.recv_stats).ok()?;
        self.sent_at_report = sent;
        if self.xr && !bye {
            if let Some(source) = self.recv_stats.first().map(ReceiveStats::ssrc) {
                // RFC 3611 §4.7.6: enhanced PLC (G.711 Appendix I style),
                // an adaptive buffer or none.
                let (delays, jba) = match &self.jitter {
                    Some(j) => (
                        JitterBufferDelays {
                            nominal: j.nominal(),
                            maximum: j.maximum(),
                            abs_max: j.abs_max(),
                        },
                        JitterBufferMode::Adaptive,
                    ),
                    None => (JitterBufferDelays::default(), JitterBufferMode::NonAdaptive),
                };
                let rx = RxConfig {
                    plc: Plc::Enhanced,
                    jba,
                    jb_rate: 0,
                };
                let block = self.quality.voip_metrics(source, rx, delays);
                let xr = rtcp::ExtendedReport::new(ssrc, std::slice::from_ref(&block));
                let mut w = CompoundWriter::new(buf.get_mut(len..)?);
                if w.push(&RtcpPacket::Xr(xr)).is_ok() {
                    len += w.finish();
                }
            }
        }
        if bye {
            let ssrcs = [ssrc];
            let bye = Bye {
                sources: SsrcList::new(&ssrcs),
                reason: None,
            };
            let mut w = CompoundWriter::new(buf.get_mut(len..)?);
            w.push(&RtcpPacket::Bye(bye)).ok()?;
            len += w.finish();
        }
        self.stats.rtcp_sent += 1;
        Some(len)
    }

    fn handle_rtcp(&mut self, now: Instant, data: &[u8]) {
        let ntp = self.ntp_at(now);
        let ours = self.ssrc();
        let mut any = false;
        for p in rtcp::parse_compound(data) {
            let Ok(p) = p else {
                self.stats.dropped_malformed += 1;
                return;
            };
            any = true;
            match p {
                RtcpPacket::SenderReport(sr) => {
                    if let Some(st) = self.recv_stats.first_mut().filter(|s| s.ssrc() == sr.ssrc) {
                        st.handle_sender_report(now, sr.sender_info.ntp);
                    }
                    let about = sr.report_blocks.iter().find(|b| b.ssrc == ours);
                    self.report_received(now, ntp, sr.ssrc, true, about);
                }
                RtcpPacket::ReceiverReport(rr) => {
                    let about = rr.report_blocks.iter().find(|b| b.ssrc == ours);
                    self.report_received(now, ntp, rr.ssrc, false, about);
                }
                RtcpPacket::Bye(_) => {
                    self.push_event(MediaEvent::State(SessionState::RemoteBye));
                }
                RtcpPacket::Xr(xr) => {
                    for block in xr.blocks() {
                        let rtcp::XrBlock::VoipMetrics(m) = block else {
                            continue;
                        };
                        self.push_event(MediaEvent::RemoteQuality(RemoteQuality {
                            ssrc: xr.ssrc(),
                            loss_percent: f64::from(m.loss_rate) * 100.0 / 256.0,
                            r_factor: (m.r_factor != 127).then_some(m.r_factor),
                            mos_cq: (m.mos_cq != 127).then(|| f64::from(m.mos_cq) / 10.0),
                            round_trip: Duration::from_millis(u64::from(m.round_trip_delay)),
                        }));
                    }
                }
                _ => {}
            }
        }
        if any {
            self.stats.rtcp_received += 1;
        }
    }

    fn report_received(
        &mut self,
        _now: Instant,
        ntp: NtpTime,
        ssrc: Ssrc,
        sender_report: bool,
        about: Option<rtcp::ReportBlock>,
    ) {
        let rtt = about.and_then(|b| b.round_trip_time(ntp));
        if let Some(rtt) = rtt {
            self.rtt = Some(rtt);
            self.quality.set_rtt(rtt);
        }
        self.push_event(MediaEvent::Rtcp(RtcpReport {
            ssrc,
            sender_report,
            about_us: about.map(|b| ReceptionReport {
                fraction_lost: b.fraction_lost,
                cumulative_lost: b.cumulative_lost,
                jitter: b.jitter,
            }),
            rtt,
        }));
    }

    fn handle_rtp(&mut self, now: Instant, data: &[u8]) {
        let Ok(pkt) = RtpPacket::parse(data) else {
            self.stats.dropped_malformed += 1;
            return;
        };
        if !self.direction.receives() || self.stop == StopState::Stopped {
            self.stats.dropped_not_receiving += 1;
            return;
        }
        let pt = pkt.payload_type();
        if Some(pt) == self.rx_event {
            // Events take sequence numbers of the audio stream (RFC 4733
            // §2.1): they count in its statistics, or every event would
            // look like loss.
            if let Some(st) = self
                .recv_stats
                .first_mut()
                .filter(|s| s.ssrc() == pkt.ssrc())
            {
                let outcome = st.handle_event_packet(now, &pkt);
                if let Outcome::InOrder(seq) = outcome {
                    self.highest_seq = Some(seq);
                }
            }
            if let Some(rx) = &mut self.dtmf_rx {
                if rx.handle_packet(now, &pkt).is_ok() {
                    self.stats.dtmf_received += 1;
                    // Counted like `bytes_sent`, which holds both kinds.
                    self.stats.bytes_received += pkt.payload().len() as u64;
                } else {
                    self.stats.dropped_malformed += 1;
                }
            }
            self.drain_dtmf();
            return;
        }
        let Some(codec) = self.recv_codecs.iter().position(|(p, _)| *p == pt) else {
            self.stats.dropped_payload_type += 1;
            return;
        };
        self.stats.received += 1;
        self.stats.bytes_received += pkt.payload().len() as u64;
        let ssrc = pkt.ssrc();
        match self.recv_stats.first_mut() {
            Some(st) if st.ssrc() == ssrc => {}
            Some(st) => {
                *st = ReceiveStats::new(ssrc, ClockRate::G711);
                self.highest_seq = None;
                self.push_event(MediaEvent::State(SessionState::SourceChanged(ssrc)));
            }
            None => {
                self.recv_stats
                    .push(ReceiveStats::new(ssrc, ClockRate::G711));
                self.push_event(MediaEvent::State(SessionState::Receiving(ssrc)));
            }
        }
        let outcome = self
            .recv_stats
            .first_mut()
            .map(|st| st.handle_packet(now, &pkt));
        if self.jitter.is_none() {
            // Played on arrival: a sequence gap is the loss (RFC 3550 A.3).
            if let Some(Outcome::InOrder(seq)) = outcome {
                if let Some(prev) = self.highest_seq {
                    let gap = seq.0.saturating_sub(prev.0).saturating_sub(1).min(1000);
                    for _ in 0..gap {
                        self.quality.observe(true);
                    }
                }
                self.highest_seq = Some(seq);
            }
        }
        self.playing = codec;
        if self.payload_pool.is_some() {
            self.deliver_payload(&pkt, codec);
        }
        let samples = self.recv_codecs[codec].1.samples_in(pkt.payload().len());
        if samples == self.recv_frame {
            self.reframe_candidate = (0, 0);
        } else {
            // Switch only when the new size holds: a peer flapping between
            // sizes must not rebuild the buffer (and allocate) per packet.
            if self.reframe_candidate.0 == samples {
                self.reframe_candidate.1 += 1;
            } else {
                self.reframe_candidate = (samples, 1);
            }
            if self.reframe_candidate.1 >= REFRAME_AFTER {
                self.reframe_candidate = (0, 0);
                self.reframe(samples);
            }
        }
        match &mut self.jitter {
            Some(jb) => {
                jb.push(
                    now,
                    ssrc,
                    pkt.sequence(),
                    pkt.timestamp(),
                    pkt.marker(),
                    pkt.payload(),
                );
                self.sync_playout();
            }
            None => {
                // Played on arrival: losses are what the sequence numbers
                // say (RFC 3550 A.3), observed per packet.
                let payload = pkt.payload();
                let n = self.recv_codecs[codec].1.decode(payload, &mut self.pcm);
                self.quality.observe(false);
                self.stats.played += 1;
                self.deliver_audio(pkt.timestamp(), n, false);
            }
        }
    }

    fn deliver_payload(&mut self, pkt: &RtpPacket<'_>, codec: usize) {
        let Some(pool) = &self.payload_pool else {
            return;
        };
        let payload = pkt.payload();
        let n = payload.len().min(self.bytes.len());
        self.bytes[..n].copy_from_slice(&payload[..n]);
        if let Some(want) = &self.payload_codec {
            let from = self.recv_codecs[codec].1.as_ref();
            if want.transcode_from(from, &mut self.bytes[..n]).is_none() {
                // No direct mapping: the payload is delivered as received.
            }
        }
        let Some(frame) = pool.fill(&self.bytes[..n]) else {
            self.stats.frames_dropped += 1;
            return;
        };
        self.push_event(MediaEvent::Payload(PayloadFrame {
            payload: frame,
            payload_type: pkt.payload_type().value(),
            sequence: pkt.sequence(),
            timestamp: pkt.timestamp(),
            marker: pkt.marker(),
            ssrc: pkt.ssrc(),
        }));
    }

    /// The far end packetises in `samples`-sample frames, not in the ones
    /// our SDP asked for (many phones and gateways send 30 or 40 ms
    /// whatever they are asked): play out in its frames. Only whole
    /// milliseconds from 10 to 120 ms are taken; anything else is left to
    /// the jitter buffer (a longer payload is refused as too large, a
    /// shorter one padded).
    fn reframe(&mut self, samples: usize) {
        let rate = u64::from(self.send_codec.clock_rate()).max(1);
        let nanos = samples as u64 * 1_000_000_000 / rate;
        if samples == 0
            || samples > MAX_FRAME_SAMPLES
            || !(samples as u64 * 1000).is_multiple_of(rate)
            || !(10_000_000..=120_000_000).contains(&nanos)
        {
            return;
        }
        let frame = Duration::from_nanos(nanos);
        if let Some(jb) = &mut self.jitter {
            let max_payload = self
                .recv_codecs
                .iter()
                .map(|(_, c)| c.payload_len(samples))
                .max()
                .unwrap_or(samples);
            if jb.reframe(frame, max_payload).is_err() {
                return;
            }
        }
        self.recv_frame = samples;
        self.stats.receive_reframed += 1;
        self.idle_frames = (IDLE_PLAYOUT.as_nanos() / frame.as_nanos().max(1)).max(1) as u32;
        let need = if self.jitter.is_some() {
            samples
        } else {
            2 * samples
        };
        if self.pcm.len() < need {
            self.pcm = vec![0i16; need].into_boxed_slice();
        }
        if self.audio_pool.is_some() {
            self.audio_pool = Some(FramePool::new(self.pool_frames, need));
        }
    }

    fn deliver_audio(&mut self, timestamp: u32, n: usize, concealed: bool) {
        let Some(pool) = &self.audio_pool else {
            return;
        };
        let Some(frame) = pool.fill(&self.pcm[..n]) else {
            self.stats.frames_dropped += 1;
            return;
        };
        self.push_event(MediaEvent::Audio(AudioFrame {
            samples: frame,
            timestamp,
            concealed,
        }));
    }

    fn drain_dtmf(&mut self) {
        let Some(rx) = &mut self.dtmf_rx else {
            return;
        };
        while let Some(e) = rx.poll_event() {
            let ended = matches!(e.kind, EventKind::Ended(_));
            let report = DtmfReport {
                event: e.event,
                ended,
                duration: Duration::from_nanos(e.duration.saturating_mul(125_000)),
                timestamp: e.timestamp,
            };
            if self.events.len() >= self.event_capacity {
                self.stats.events_dropped += 1;
            } else {
                self.events.push_back(MediaEvent::Dtmf(report));
            }
        }
    }

    /// Feeds the quality monitor the frames the jitter buffer played and
    /// the losses it confirmed since the last call.
    fn sync_playout(&mut self) {
        let Some(jb) = &self.jitter else {
            return;
        };
        let st = jb.stats();
        let played = st.played.saturating_sub(self.stats.played);
        let concealed = st.concealed.saturating_sub(self.stats.concealed);
        self.stats.played = st.played;
        self.stats.concealed = st.concealed;
        let delay = jb.current_delay();
        for _ in 0..played {
            self.quality.observe(false);
        }
        for _ in 0..concealed {
            self.quality.observe(true);
        }
        self.quality.set_jitter_buffer_delay(delay);
    }

    /// Plays out what the jitter buffer has due. After [`IDLE_PLAYOUT`] of
    /// nothing but concealment (the far end stopped: hold, silence
    /// suppression, gone) the buffer is reset and playout idles until the
    /// next packet, which starts it afresh: no endless stream of concealed
    /// frames, no catch-up work after a long silence. Losses enter the quality
    /// monitor as the buffer confirms them (a later packet shows the media
    /// went on), so the tail after a stream stops or a hold is not a loss.
    fn playout(&mut self, now: Instant) {
        let n = self.recv_frame;
        loop {
            let Some(jb) = &mut self.jitter else {
                return;
            };
            let timestamp = match jb.pop(now) {
                None => return,
                Some(Playout::Frame {
                    timestamp, payload, ..
                }) => {
                    let got = self.recv_codecs[self.playing]
                        .1
                        .decode(payload, &mut self.pcm[..n]);
                    self.pcm[got..n].fill(0);
                    self.concealer.good_frame(&mut self.pcm[..n]);
                    Ok(timestamp)
                }
                Some(Playout::Conceal { timestamp } | Playout::Stretch { timestamp }) => {
                    self.concealed_run += 1;
                    if self.concealed_run >= self.idle_frames && jb.buffered().is_zero() {
                        jb.reset();
                        self.concealed_run = 0;
                        self.sync_playout();
                        return;
                    }
                    self.concealer.conceal(&mut self.pcm[..n]);
                    Err(timestamp)
                }
            };
            if timestamp.is_ok() {
                self.concealed_run = 0;
            }
            self.sync_playout();
            match timestamp {
                Ok(ts) => self.deliver_audio(ts, n, false),
                Err(ts) => self.deliver_audio(ts, n, true),
            }
        }
    }
}

impl Endpoint for MediaSession {
    fn handle_input(&mut self, now: Instant, component: Component, _src: SocketAddr, data: &[u8]) {
        match component {
            Component::Rtcp => self.handle_rtcp(now, data),
            Component::Rtp => self.handle_rtp(now, data),
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        match self.stop {
            StopState::Stopped => return None,
            StopState::ByePending => {
                self.stop = StopState::Stopped;
                self.push_event(MediaEvent::State(SessionState::Stopped));
                let len = self.write_rtcp(now, buf, true)?;
                return Some(Transmit {
                    component: Component::Rtcp,
                    len,
                });
            }
            StopState::Running => {}
        }
        // Telephone-events first: they own the ticks they fall on.
        if self.direction.sends() {
            if let Ok(Some(len)) = self.dtmf_tx.poll_transmit(now, buf) {
                self.stats.dtmf_sent += 1;
                self.stats.bytes_sent = self.dtmf_tx.source().payload_octets_sent();
                if !self.sent_any {
                    self.sent_any = true;
                    self.push_event(MediaEvent::State(SessionState::Sending));
                }
                return Some(Transmit {
                    component: Component::Rtp,
                    len,
                });
            }
        }
        // Audio ticks due: overdue ones beyond MAX_CATCH_UP are skipped.
        while !self.clock_ended && self.next_tick_at <= now {
            if now.saturating_duration_since(self.next_tick_at) >= self.catch_up {
                let elapsed = now.saturating_duration_since(self.start);
                let latest = (elapsed.as_nanos() / self.ptime.as_nanos().max(1)) as u64;
                let skip = (latest + 1).saturating_sub(MAX_CATCH_UP + self.tick).max(1);
                self.stats.ticks_skipped += skip;
                let n = self.frame_samples * skip as usize;
                match &mut self.input {
                    Input::Pcm(c) => c.skip(n),
                    Input::Payload(c, codec) => c.skip(codec.payload_len(n)),
                };
                self.set_tick(self.tick + skip);
                self.in_talkspurt = false;
                continue;
            }
            let k = self.tick;
            self.set_tick(k + 1);
            if let Some(len) = self.audio_tick(now, k, buf) {
                return Some(Transmit {
                    component: Component::Rtp,
                    len,
                });
            }
        }
        if self.rtcp && self.next_rtcp.is_some_and(|t| t <= now) {
            let next = self.randomised(self.rtcp_interval);
            self.next_rtcp = Some(now + next);
            if let Some(len) = self.write_rtcp(now, buf, false) {
                return Some(Transmit {
                    component: Component::Rtcp,
                    len,
                });
            }
        }
        None
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.stop == StopState::Stopped {
            return self.jitter.as_ref().and_then(JitterBuffer::poll_timeout);
        }
        if self.stop == StopState::ByePending {
            return Some(self.start);
        }
        [
            (!self.clock_ended).then_some(self.next_tick_at),
            self.dtmf_tx
                .poll_timeout()
                .filter(|_| self.direction.sends()),
            self.next_rtcp,
            self.jitter.as_ref().and_then(JitterBuffer::poll_timeout),
            self.dtmf_rx.as_ref().and_then(DtmfReceiver::poll_timeout),
            self.next_quality.filter(|_| !self.recv_stats.is_empty()),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.playout(now);
        if let Some(rx) = &mut self.dtmf_rx {
            rx.handle_timeout(now);
        }
        self.drain_dtmf();
        if let Some(t) = self.next_quality {
            if t <= now {
                self.next_quality = Some(now + self.quality_interval);
                // Only while media arrives: a stream that stopped (hold, gone)
                // has no new quality to report.
                if !self.recv_stats.is_empty() && self.stats.received > self.received_at_quality {
                    self.received_at_quality = self.stats.received;
                    let q = self.quality();
                    self.last_quality = Some(q);
                    self.push_event(MediaEvent::Quality(q));
                }
            }
        }
    }

    fn on_send_failed(&mut self, _component: Component) {
        self.stats.send_failed += 1;
    }
}
