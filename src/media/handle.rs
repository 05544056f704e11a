//! The application's side of a media endpoint, and the adapter that lets
//! an engine shard (or a simulation) run a [`MediaSession`].
//!
//! - **Audio in**: a bounded single-producer ring of PCM samples or encoded
//!   bytes ([`super::ring`]): lock-free, written at any chunk size, read one
//!   frame per packet by the session.
//! - **Control in** (DTMF, direction, stop): a bounded lock-free queue
//!   (`crossbeam-queue`'s `ArrayQueue`), drained each time the shard
//!   serves the endpoint (at least once per packet interval while it runs).
//! - **Events out**: one bounded channel ([`super::channel`]: an
//!   `ArrayQueue` plus an `atomic-waker` / thread-unpark wake-up at most
//!   once per turn, and only when the application waits). It serves the
//!   three ways applications consume events: a blocking iterator
//!   ([`MediaHandle::recv`], [`MediaHandle::iter`]), async code
//!   ([`MediaHandle::recv_async`]) and a callback
//!   ([`MediaHandle::on_event`], on a thread of its own: a callback never
//!   runs on the shard). Off-the-shelf channels were measured against the
//!   rule that nothing locks per packet on a shard: `async-channel` locks a
//!   mutex in its notifier on every send, `flume` locks per operation,
//!   `crossbeam-channel` has no async side.
//!
//! When the application lags, events beyond the channel's capacity are
//! counted ([`SessionStats::events_dropped`]), never queued without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crossbeam_queue::ArrayQueue;

use super::channel::{EventReceiver, EventSender, channel};
use super::endpoint::{Endpoint, Transmit};
use super::event::{Control, MediaEvent};
use super::session::{InputWriter, MediaSession, SessionConfig, SessionError, SessionStats};
use crate::dtmf::EventCode;
use crate::relay::Component;
use crate::sdp::Direction;

/// Errors of the application's requests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// The control queue is full (the shard is not keeping up).
    #[error("control queue full")]
    Full,
    /// The endpoint was removed.
    #[error("endpoint closed")]
    Closed,
    /// Not a DTMF key (0-9, *, #, A-D).
    #[error("not a DTMF key: {0:?}")]
    NotADigit(char),
    /// The input is of the other kind (PCM vs payload).
    #[error("the endpoint takes {0} input")]
    WrongInput(&'static str),
}

/// A media session as an engine endpoint: the session plus its links to
/// the application. Built by [`endpoint`].
pub struct MediaEndpoint {
    session: MediaSession,
    control: Arc<ArrayQueue<Control>>,
    events: EventSender<MediaEvent>,
    shared: Arc<Shared>,
    lost_events: u64,
}

/// Counters the endpoint publishes for the application (relaxed stores
/// once per turn).
#[derive(Debug, Default)]
struct Shared {
    audio_sent: AtomicU64,
    dtmf_sent: AtomicU64,
    rtcp_sent: AtomicU64,
    received: AtomicU64,
    rtcp_received: AtomicU64,
    played: AtomicU64,
    concealed: AtomicU64,
    underruns: AtomicU64,
    events_dropped: AtomicU64,
    frames_dropped: AtomicU64,
    dropped: AtomicU64,
    send_failed: AtomicU64,
    input_discarded: AtomicU64,
    ticks_skipped: AtomicU64,
    dtmf_received: AtomicU64,
    lag_max_us: AtomicU64,
    lag_sum_us: AtomicU64,
    lag: [AtomicU64; 16],
    rtt_us: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    /// Cumulative lost, as `i64` bits.
    lost: AtomicU64,
    expected: AtomicU64,
    jitter_us: AtomicU64,
    buffer_delay_us: AtomicU64,
    buffer_late: AtomicU64,
    buffer_overflow: AtomicU64,
    /// MOS-CQ × 1000 of the last quality report (0: none yet).
    mos_milli: AtomicU64,
    /// The session stopped: requests are refused at the handle.
    stopped: AtomicBool,
}

/// The application's handle on a media endpoint. `Send`; control and
/// events take `&self` (share it in an `Arc` between threads), writing
/// audio takes `&mut self`: the input ring has a single producer.
#[derive(Debug)]
pub struct MediaHandle {
    input: InputWriter,
    control: Arc<ArrayQueue<Control>>,
    events: EventReceiver<MediaEvent>,
    shared: Arc<Shared>,
    ssrc: crate::rtp::Ssrc,
}

/// Counters as the application sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct EndpointStats {
    /// Audio packets sent.
    pub audio_sent: u64,
    /// Telephone-event packets sent.
    pub dtmf_sent: u64,
    /// RTCP compounds sent.
    pub rtcp_sent: u64,
    /// RTP packets received.
    pub received: u64,
    /// RTCP compounds received.
    pub rtcp_received: u64,
    /// Frames played from packets.
    pub played: u64,
    /// Frames concealed.
    pub concealed: u64,
    /// Send ticks without input.
    pub underruns: u64,
    /// Events the application did not take in time.
    pub events_dropped: u64,
    /// Frames not delivered because the application held every buffer.
    pub frames_dropped: u64,
    /// Received datagrams dropped (malformed, unnegotiated payload type,
    /// not receiving).
    pub dropped: u64,
    /// Packets that could not be sent (no destination known for the leg).
    pub send_failed: u64,
    /// Frames of input consumed without sending (not sending, or during a
    /// telephone-event).
    pub input_discarded: u64,
    /// Send ticks skipped because the shard served the endpoint too late.
    pub ticks_skipped: u64,
    /// Telephone-event packets received.
    pub dtmf_received: u64,
    /// Largest send lag behind the media clock, µs.
    pub pacing_lag_max_us: u64,
    /// Sum of send lags, µs (divide by `audio_sent` for the mean).
    pub pacing_lag_sum_us: u64,
    /// Send lag histogram, 100 µs buckets, the last from 1.5 ms on.
    pub pacing_lag: [u64; 16],
    /// Last RTCP round-trip time, µs (0: none yet).
    pub rtt_us: u64,
    /// RTP payload octets sent (audio and telephone-event).
    pub bytes_sent: u64,
    /// RTP payload octets received in accepted packets (audio and
    /// telephone-event).
    pub bytes_received: u64,
    /// Packets lost on the received stream, cumulative (RFC 3550 A.3:
    /// expected − received; negative with duplicates).
    pub lost: i64,
    /// Packets expected on the received stream (RFC 3550 A.3).
    pub expected: u64,
    /// Interarrival jitter of the received stream, µs (RFC 3550 A.8).
    pub jitter_us: u64,
    /// Delay the jitter buffer adds now, µs (0 without one).
    pub buffer_delay_us: u64,
    /// Packets the jitter buffer received too late to play.
    pub buffer_late: u64,
    /// Packets the jitter buffer had no room for.
    pub buffer_overflow: u64,
    /// MOS-CQ estimate (ITU-T G.107 E-model) of the last quality report;
    /// `None` before the first (an estimate, not a listening test).
    pub mos: Option<f64>,
}

impl EndpointStats {
    /// Share of expected packets lost, 0..=1 (0 before any).
    pub fn loss_ratio(&self) -> f64 {
        if self.expected == 0 {
            return 0.0;
        }
        (self.lost.max(0) as f64 / self.expected as f64).min(1.0)
    }
}

/// Builds a media endpoint starting at `start` and the application's
/// handle on it. Hand the endpoint to
/// [`Engine::create_endpoint`](crate::engine::Engine::create_endpoint) (or
/// drive it yourself); keep the handle.
pub fn endpoint(
    config: SessionConfig,
    start: Instant,
) -> Result<(MediaEndpoint, MediaHandle), SessionError> {
    let capacity = config.event_capacity.max(1);
    let (session, input) = MediaSession::new(config, start)?;
    let control = Arc::new(ArrayQueue::new(16));
    let (ev_tx, ev_rx) = channel(capacity);
    let shared = Arc::new(Shared::default());
    let ssrc = session.ssrc();
    Ok((
        MediaEndpoint {
            session,
            control: control.clone(),
            events: ev_tx,
            shared: shared.clone(),
            lost_events: 0,
        },
        MediaHandle {
            input,
            control,
            events: ev_rx,
            shared,
            ssrc,
        },
    ))
}

impl MediaEndpoint {
    /// The session inside.
    pub fn session(&self) -> &MediaSession {
        &self.session
    }

    fn publish(&self) {
        let s: &SessionStats = self.session.stats();
        let r = Ordering::Relaxed;
        let sh = &self.shared;
        sh.audio_sent.store(s.audio_sent, r);
        sh.dtmf_sent.store(s.dtmf_sent, r);
        sh.rtcp_sent.store(s.rtcp_sent, r);
        sh.received.store(s.received, r);
        sh.rtcp_received.store(s.rtcp_received, r);
        sh.played.store(s.played, r);
        sh.concealed.store(s.concealed, r);
        sh.underruns.store(s.underruns, r);
        sh.events_dropped
            .store(s.events_dropped + self.lost_events, r);
        sh.frames_dropped.store(s.frames_dropped, r);
        sh.dropped.store(
            s.dropped_malformed + s.dropped_payload_type + s.dropped_not_receiving,
            r,
        );
        sh.send_failed.store(s.send_failed, r);
        sh.input_discarded.store(s.input_discarded, r);
        sh.ticks_skipped.store(s.ticks_skipped, r);
        sh.dtmf_received.store(s.dtmf_received, r);
        sh.lag_max_us.store(s.pacing_lag_us_max, r);
        sh.lag_sum_us.store(s.pacing_lag_us_sum, r);
        for (a, v) in sh.lag.iter().zip(s.pacing_lag) {
            a.store(v, r);
        }
        if let Some(rtt) = self.session.rtt() {
            sh.rtt_us.store(rtt.as_micros() as u64, r);
        }
        sh.bytes_sent.store(s.bytes_sent, r);
        sh.bytes_received.store(s.bytes_received, r);
        let (lost, expected) = self.session.receive_loss();
        sh.lost.store(lost as u64, r);
        sh.expected.store(expected, r);
        sh.jitter_us
            .store(self.session.receive_jitter().as_micros() as u64, r);
        if let Some(jb) = self.session.jitter_buffer() {
            sh.buffer_delay_us
                .store(jb.current_delay().as_micros() as u64, r);
            sh.buffer_late.store(jb.stats().late, r);
            sh.buffer_overflow.store(jb.stats().overflow, r);
        }
        if let Some(q) = self.session.last_quality() {
            sh.mos_milli.store((q.mos_cq * 1000.0).round() as u64, r);
        }
        if self.session.is_stopped() {
            sh.stopped.store(true, r);
        }
    }
}

impl std::fmt::Debug for MediaEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaEndpoint")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl Endpoint for MediaEndpoint {
    fn handle_input(
        &mut self,
        now: Instant,
        component: Component,
        src: std::net::SocketAddr,
        data: &[u8],
    ) {
        self.session.handle_input(now, component, src, data);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        self.session.poll_transmit(now, buf)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.session.handle_timeout(now);
    }

    fn flush(&mut self, now: Instant) {
        while let Some(e) = self.session.poll_event() {
            if self.events.try_send(e).is_err() {
                self.lost_events += 1;
            }
        }
        while let Some(c) = self.control.pop() {
            // A refused request (DTMF not negotiated, queue full, not
            // sending, stopped) is reported as an event.
            if let Err(e) = self.session.control(now, c) {
                if self.events.try_send(MediaEvent::Refused(e)).is_err() {
                    self.lost_events += 1;
                }
            }
        }
        while let Some(e) = self.session.poll_event() {
            if self.events.try_send(e).is_err() {
                self.lost_events += 1;
            }
        }
        self.events.wake();
        self.publish();
    }

    fn on_send_failed(&mut self, component: Component) {
        self.session.on_send_failed(component);
    }
}

impl MediaHandle {
    /// Our SSRC.
    pub fn ssrc(&self) -> crate::rtp::Ssrc {
        self.ssrc
    }

    /// Writes PCM samples for sending; returns how many fit (the rest is
    /// the caller's to retry: the ring holds `SessionConfig::input_buffer`
    /// of media, and the session takes one packet's worth per ptime, so
    /// write at the pace of the audio). Never blocks. `Closed` once the
    /// endpoint is gone or stopped.
    pub fn write_pcm(&mut self, samples: &[i16]) -> Result<usize, HandleError> {
        self.check_open()?;
        match &mut self.input {
            InputWriter::Pcm(p) => Ok(p.write(samples)),
            InputWriter::Payload(_) => Err(HandleError::WrongInput("payload")),
        }
    }

    /// Writes pre-encoded payload bytes for sending; returns how many fit.
    pub fn write_payload(&mut self, bytes: &[u8]) -> Result<usize, HandleError> {
        self.check_open()?;
        match &mut self.input {
            InputWriter::Payload(p) => Ok(p.write(bytes)),
            InputWriter::Pcm(_) => Err(HandleError::WrongInput("PCM")),
        }
    }

    /// Room left in the input ring, in samples (PCM) or bytes (payload).
    pub fn input_free(&self) -> usize {
        match &self.input {
            InputWriter::Pcm(p) => p.free(),
            InputWriter::Payload(p) => p.free(),
        }
    }

    /// Whether the endpoint is gone or its session stopped (its BYE is out).
    pub fn is_stopped(&self) -> bool {
        self.check_open().is_err()
    }

    fn check_open(&self) -> Result<(), HandleError> {
        if self.events.is_closed() || self.shared.stopped.load(Ordering::Relaxed) {
            return Err(HandleError::Closed);
        }
        Ok(())
    }

    fn request(&self, c: Control) -> Result<(), HandleError> {
        self.check_open()?;
        self.control.push(c).map_err(|_| HandleError::Full)
    }

    /// Sends DTMF key `digit` (0-9, *, #, A-D) for `duration` (RFC 4733).
    pub fn send_dtmf(&self, digit: char, duration: Duration) -> Result<(), HandleError> {
        let code = match digit.to_ascii_uppercase() {
            d @ '0'..='9' => d as u8 - b'0',
            '*' => 10,
            '#' => 11,
            d @ 'A'..='D' => d as u8 - b'A' + 12,
            other => return Err(HandleError::NotADigit(other)),
        };
        self.request(Control::Dtmf {
            event: EventCode(code),
            duration,
        })
    }

    /// Changes the direction (hold, resume).
    pub fn set_direction(&self, d: Direction) -> Result<(), HandleError> {
        self.request(Control::Direction(d))
    }

    /// Stops the session (RTCP BYE, then silence).
    pub fn stop(&self) -> Result<(), HandleError> {
        self.request(Control::Stop)
    }

    /// The next event, waiting for it; `None` once the endpoint is gone
    /// and every event was taken.
    pub fn recv(&self) -> Option<MediaEvent> {
        self.events.recv_until(None)
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<MediaEvent> {
        self.events.recv_timeout(timeout)
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<MediaEvent> {
        self.events.try_recv()
    }

    /// The next event, for async code; `None` once the endpoint is gone
    /// and every event was taken.
    pub async fn recv_async(&self) -> Option<MediaEvent> {
        self.events.recv_async().await
    }

    /// A blocking iterator over events; ends when the endpoint is gone.
    pub fn iter(&self) -> impl Iterator<Item = MediaEvent> + '_ {
        std::iter::from_fn(|| self.recv())
    }

    /// The event channel itself (`poll_recv` for hand-written futures,
    /// `is_closed` once the endpoint is gone).
    pub fn events(&self) -> &EventReceiver<MediaEvent> {
        &self.events
    }

    /// Runs `f` on every event, on a thread of its own, until the endpoint
    /// is gone; the handle's other methods stay usable meanwhile.
    pub fn on_event<F>(&self, mut f: F) -> std::io::Result<std::thread::JoinHandle<()>>
    where
        F: FnMut(MediaEvent) + Send + 'static,
    {
        let rx = self.events.clone();
        std::thread::Builder::new()
            .name("mr-media-events".into())
            .spawn(move || {
                while let Some(e) = rx.recv_until(None) {
                    f(e);
                }
            })
    }

    /// Counters, as of the shard's last turn for this endpoint.
    pub fn stats(&self) -> EndpointStats {
        let r = Ordering::Relaxed;
        let s = &self.shared;
        let mut lag = [0; 16];
        for (v, a) in lag.iter_mut().zip(&s.lag) {
            *v = a.load(r);
        }
        EndpointStats {
            audio_sent: s.audio_sent.load(r),
            dtmf_sent: s.dtmf_sent.load(r),
            rtcp_sent: s.rtcp_sent.load(r),
            received: s.received.load(r),
            rtcp_received: s.rtcp_received.load(r),
            played: s.played.load(r),
            concealed: s.concealed.load(r),
            underruns: s.underruns.load(r),
            events_dropped: s.events_dropped.load(r),
            frames_dropped: s.frames_dropped.load(r),
            dropped: s.dropped.load(r),
            send_failed: s.send_failed.load(r),
            input_discarded: s.input_discarded.load(r),
            ticks_skipped: s.ticks_skipped.load(r),
            dtmf_received: s.dtmf_received.load(r),
            pacing_lag_max_us: s.lag_max_us.load(r),
            pacing_lag_sum_us: s.lag_sum_us.load(r),
            pacing_lag: lag,
            rtt_us: s.rtt_us.load(r),
            bytes_sent: s.bytes_sent.load(r),
            bytes_received: s.bytes_received.load(r),
            lost: s.lost.load(r) as i64,
            expected: s.expected.load(r),
            jitter_us: s.jitter_us.load(r),
            buffer_delay_us: s.buffer_delay_us.load(r),
            buffer_late: s.buffer_late.load(r),
            buffer_overflow: s.buffer_overflow.load(r),
            mos: match s.mos_milli.load(r) {
                0 => None,
                m => Some(m as f64 / 1000.0),
            },
        }
    }
}
