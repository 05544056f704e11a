//! [`MediaSession`]: the media of one negotiated builder, one stream per
//! accepted audio `m=` line, each a [`crate::media`] endpoint on the engine.
//!
//! Negotiation binds a stream's sockets and parks them (what arrives is
//! counted, nothing is sent); [`MediaSession::start`] puts a media session
//! core on each stream, [`MediaSession::stop`] ends them (RTCP BYE). The
//! builder never starts or stops a session behind the application's back,
//! and both calls are idempotent.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use super::error::MediaError;
use super::manager::Inner;
use crate::codec::G711;
use crate::engine::CallId;
use crate::media::capture::{CaptureConfig, CaptureReader, CaptureSummary, capture};
use crate::media::channel::{EventReceiver, poll_recv_any, recv_any};
use crate::media::impair::{ImpairConfig, ImpairHandle, impair};
use crate::media::jitter::JitterConfig;
use crate::media::{
    CodecSpec, Endpoint, EndpointStats, InputMode, MediaEndpoint, MediaEvent, MediaHandle,
    SessionConfig, Transmit,
};
use crate::relay::Component;
use crate::rtcp::NtpTime;
use crate::rtp::PayloadType;
use crate::sdp::{Direction, PtMapping};

/// How long [`MediaSession::stop`] waits for the BYEs to leave (the shard
/// sends them on its next turn for the stream, within a ptime).
pub(crate) const STOP_WAIT: Duration = Duration::from_millis(200);

/// An event of one stream of a [`MediaSession`].
#[derive(Debug)]
pub struct SessionEvent {
    /// Position of the stream in [`MediaSession::stream_ids`].
    pub stream: usize,
    /// What happened.
    pub event: MediaEvent,
}

/// Counters of a [`MediaSession`]: per stream, and summed.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct MediaStatistics {
    /// `(stream id, counters)` per stream.
    pub streams: Vec<(String, EndpointStats)>,
    /// Audio RTP packets sent, all streams.
    pub audio_packets_sent: u64,
    /// RTP packets received (audio and telephone-event), all streams.
    pub packets_received: u64,
    /// RTP payload octets sent (audio and telephone-event), all streams.
    pub bytes_sent: u64,
    /// RTP payload octets received (audio and telephone-event), all
    /// streams.
    pub bytes_received: u64,
    /// Telephone-event packets sent.
    pub dtmf_packets_sent: u64,
    /// Telephone-event packets received.
    pub dtmf_packets_received: u64,
    /// Packets lost on receive (RFC 3550 A.3), all streams.
    pub lost: i64,
    /// Packets expected on receive, all streams.
    pub expected: u64,
    /// Largest interarrival jitter of any stream (RFC 3550 A.8).
    pub jitter: Duration,
    /// Largest RTCP round-trip time of any stream (`None`: none measured).
    pub rtt: Option<Duration>,
    /// Largest jitter-buffer delay of any stream.
    pub buffer_delay: Duration,
    /// Lowest MOS-CQ estimate of any stream (E-model, `None` before the
    /// first quality report).
    pub mos: Option<f64>,
    /// Packets that arrived on the streams' sockets before
    /// [`MediaSession::start`] (counted and dropped).
    pub received_before_start: u64,
}

impl MediaStatistics {
    /// Share of expected packets lost, 0..=1.
    pub fn loss_ratio(&self) -> f64 {
        if self.expected == 0 {
            return 0.0;
        }
        (self.lost.max(0) as f64 / self.expected as f64).min(1.0)
    }
}

/// The media of a negotiated [`Builder`](super::Builder). Cheap to clone
/// (all clones are the same session); `Send + Sync`.
#[derive(Clone)]
pub struct MediaSession {
    inner: Arc<SessionInner>,
}

pub(crate) struct SessionInner {
    manager: Arc<Inner>,
    streams: Vec<SessionStream>,
    run: Mutex<Run>,
    rotate: AtomicUsize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    NotStarted,
    Running,
    Stopped,
}

/// One stream: its engine call and what start needs.
pub(crate) struct SessionStream {
    pub(crate) id: String,
    pub(crate) call: CallId,
    pub(crate) local: SocketAddr,
    pub(crate) parked: Arc<AtomicU64>,
    pub(crate) plan: Mutex<StreamPlan>,
    media: OnceLock<StreamMedia>,
}

struct StreamMedia {
    handle: Mutex<MediaHandle>,
    events: EventReceiver<MediaEvent>,
    capture: Option<CaptureReader>,
    impair: Option<ImpairHandle>,
}

/// Options of [`MediaSession::start_with`]: wrappers put around each
/// stream's endpoint on the shard.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StartOptions {
    /// Impair what the session sends (loss, jitter): for test tools. RTCP
    /// is left alone unless the config says otherwise.
    pub impair: Option<ImpairConfig>,
    /// Capture what each stream sends and receives (after any impairment:
    /// what really crossed the socket), for
    /// [`MediaSession::write_pcap`].
    pub capture: bool,
    /// The application sends audio already encoded, in the codec each
    /// stream negotiated ([`MediaSession::send_encoded`]; a stream whose
    /// codec is the other G.711 law transcodes) instead of PCM.
    pub encoded_input: bool,
}

/// What offer/answer decided for a stream.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StreamPlan {
    pub(crate) send: (PayloadType, CodecSpec),
    pub(crate) receive: Vec<(PayloadType, CodecSpec)>,
    pub(crate) telephone_event: Option<PayloadType>,
    pub(crate) receive_telephone_event: Option<PayloadType>,
    pub(crate) ptime: Duration,
    pub(crate) receive_ptime: Duration,
    pub(crate) direction: Direction,
    pub(crate) remote: Option<SocketAddr>,
}

impl StreamPlan {
    /// From the negotiated codecs; `None` when none is one we implement.
    pub(crate) fn from_negotiated(
        codecs: &[PtMapping],
        events: &[PtMapping],
        ptime: Duration,
        direction: Direction,
    ) -> Option<StreamPlan> {
        let spec = |m: &PtMapping| -> Option<CodecSpec> {
            if m.clock_rate != 8000 {
                return None;
            }
            if m.name.eq_ignore_ascii_case("PCMU") {
                Some(CodecSpec::G711(G711::Pcmu))
            } else if m.name.eq_ignore_ascii_case("PCMA") {
                Some(CodecSpec::G711(G711::Pcma))
            } else {
                None
            }
        };
        let mut receive = Vec::new();
        for m in codecs {
            if let Some(s) = spec(m) {
                receive.push((m.remote, s));
                if m.local != m.remote {
                    receive.push((m.local, s));
                }
            }
        }
        let send = *receive.first()?;
        Some(StreamPlan {
            send,
            receive,
            telephone_event: events.first().map(|m| m.remote),
            receive_telephone_event: events.first().map(|m| m.remote),
            ptime,
            receive_ptime: ptime,
            direction,
            remote: None,
        })
    }
}

/// The endpoint a bound stream has until the session starts: counts what
/// arrives (the cleanup sees it as activity), sends nothing.
pub(crate) struct Parked {
    pub(crate) received: Arc<AtomicU64>,
}

impl Endpoint for Parked {
    fn handle_input(&mut self, _now: Instant, _c: Component, _src: SocketAddr, _data: &[u8]) {
        self.received.fetch_add(1, Ordering::Relaxed);
    }

    fn poll_transmit(&mut self, _now: Instant, _buf: &mut [u8]) -> Option<Transmit> {
        None
    }

    fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    fn handle_timeout(&mut self, _now: Instant) {}
}

impl SessionStream {
    pub(crate) fn new(
        id: String,
        call: CallId,
        local: SocketAddr,
        parked: Arc<AtomicU64>,
        plan: StreamPlan,
    ) -> Self {
        SessionStream {
            id,
            call,
            local,
            parked,
            plan: Mutex::new(plan),
            media: OnceLock::new(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section here leaves its data consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl MediaSession {
    pub(crate) fn new(manager: Arc<Inner>, streams: Vec<SessionStream>) -> MediaSession {
        MediaSession {
            inner: Arc::new(SessionInner {
                manager,
                streams,
                run: Mutex::new(Run::NotStarted),
                rotate: AtomicUsize::new(0),
            }),
        }
    }

    pub(crate) fn streams(&self) -> &[SessionStream] {
        &self.inner.streams
    }

    /// The ids of the streams, in `m=` order (rejected ones have none).
    pub fn stream_ids(&self) -> Vec<String> {
        self.inner.streams.iter().map(|s| s.id.clone()).collect()
    }

    /// Whether [`start`](Self::start) ran and [`stop`](Self::stop) did not.
    pub fn is_running(&self) -> bool {
        *lock(&self.inner.run) == Run::Running
    }

    /// Starts media on every stream: pacing, receive, RTCP. Idempotent;
    /// `Stopped` after [`stop`](Self::stop) (a stopped session does not
    /// restart: its peer saw our BYE).
    pub fn start(&self) -> Result<(), MediaError> {
        self.start_with(&StartOptions::default())
    }

    /// [`start`](Self::start) with impairment or capture on every stream.
    pub fn start_with(&self, options: &StartOptions) -> Result<(), MediaError> {
        if let Some(i) = &options.impair {
            i.validate()
                .map_err(|e| MediaError::Impairment(e.to_string()))?;
        }
        let mut run = lock(&self.inner.run);
        match *run {
            Run::Running => return Ok(()),
            Run::Stopped => return Err(MediaError::Stopped),
            Run::NotStarted => {}
        }
        let cfg = &self.inner.manager.config;
        for s in &self.inner.streams {
            if s.media.get().is_some() {
                continue;
            }
            let plan = lock(&s.plan).clone();
            let mut sc = SessionConfig::new(NtpTime::from_system_time(SystemTime::now()));
            sc.send = plan.send;
            sc.receive = plan.receive.clone();
            sc.telephone_event = plan.telephone_event;
            sc.receive_telephone_event = plan.receive_telephone_event;
            sc.ptime = plan.ptime;
            sc.receive_ptime = Some(plan.receive_ptime);
            sc.direction = plan.direction;
            sc.jitter = cfg
                .jitter_buffer
                .then(|| JitterConfig::new(8000, plan.receive_ptime));
            sc.rtcp = cfg.rtcp;
            sc.rtcp_interval = cfg.rtcp_interval;
            // RFC 3550 §6.5.1: at most 255 bytes.
            let mut cname = format!("{}@{}", s.id, s.local.ip());
            while cname.len() > 255 {
                cname.pop();
            }
            sc.cname = cname;
            sc.event_capacity = cfg.event_capacity;
            if options.encoded_input {
                sc.input = InputMode::Payload(plan.send.1);
            }
            let (ep, handle) =
                crate::media::endpoint(sc, Instant::now()).map_err(MediaError::Session)?;
            let events = handle.events().clone();
            let (boxed, capture, impair) = wrap(ep, options, s.local, plan.remote)?;
            self.inner
                .manager
                .with_engine(|e| e.attach_endpoint(s.call, 0, boxed))
                .unwrap_or(Err(crate::engine::EngineError::ShardGone(0)))
                .map_err(MediaError::Engine)?;
            let _ = s.media.set(StreamMedia {
                handle: Mutex::new(handle),
                events,
                capture,
                impair,
            });
        }
        *run = Run::Running;
        Ok(())
    }

    /// Stops media on every stream (RTCP BYE, RFC 3550 §6.3.7, then
    /// nothing more) and waits briefly (at most 200 ms) for the BYEs to
    /// leave. Idempotent; also before `start`.
    pub fn stop(&self) -> Result<(), MediaError> {
        if self.request_stop() {
            self.wait_stopped(Instant::now() + STOP_WAIT);
        }
        Ok(())
    }

    /// Marks the session stopped and asks every stream for its BYE without
    /// waiting for it; `true` when the session was running (the BYEs are
    /// then on their way: [`wait_stopped`](Self::wait_stopped)).
    pub(crate) fn request_stop(&self) -> bool {
        let mut run = lock(&self.inner.run);
        let was = *run;
        *run = Run::Stopped;
        drop(run);
        if was != Run::Running {
            return false;
        }
        for s in &self.inner.streams {
            if let Some(m) = s.media.get() {
                // A full control queue (a burst of DTMF requests) drains
                // within a turn once the shard is woken: retry, briefly.
                for _ in 0..100 {
                    let r = lock(&m.handle).stop();
                    self.wake(s);
                    if !matches!(r, Err(crate::media::HandleError::Full)) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        true
    }

    /// Has the stream's shard pick up a queued request now, not at the
    /// stream's next timer (up to a ptime later).
    fn wake(&self, s: &SessionStream) {
        let _ = self.inner.manager.with_engine(|e| e.wake_endpoints(s.call));
    }

    /// Waits until every stream's BYE is out, or until `deadline`.
    pub(crate) fn wait_stopped(&self, deadline: Instant) {
        for m in self.inner.streams.iter().filter_map(|s| s.media.get()) {
            while Instant::now() < deadline {
                if lock(&m.handle).is_stopped() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// Writes what stream `stream` (position in
    /// [`stream_ids`](Self::stream_ids)) sent and received so far to a pcap
    /// file (started with [`StartOptions::capture`]).
    pub fn write_pcap(
        &self,
        stream: usize,
        path: impl AsRef<std::path::Path>,
    ) -> Result<CaptureSummary, MediaError> {
        let m = self
            .inner
            .streams
            .get(stream)
            .ok_or_else(|| MediaError::NoStream(stream.to_string()))?
            .media
            .get()
            .ok_or(MediaError::NotStarted)?;
        let c = m.capture.as_ref().ok_or(MediaError::NoCapture)?;
        c.write_pcap(path)
            .map_err(|e| MediaError::Capture(e.to_string()))
    }

    /// The impairment of stream `stream` (started with
    /// [`StartOptions::impair`]): its counters, and its loss changed live.
    pub fn impairment(&self, stream: usize) -> Option<ImpairHandle> {
        self.inner.streams.get(stream)?.media.get()?.impair.clone()
    }

    fn running(&self) -> Result<(), MediaError> {
        match *lock(&self.inner.run) {
            Run::Running => Ok(()),
            Run::NotStarted => Err(MediaError::NotStarted),
            Run::Stopped => Err(MediaError::Stopped),
        }
    }

    fn sending_streams(&self) -> impl Iterator<Item = &StreamMedia> {
        self.inner
            .streams
            .iter()
            .filter(|s| lock(&s.plan).direction.sends())
            .filter_map(|s| s.media.get())
    }

    fn stream(&self, id: &str) -> Result<&SessionStream, MediaError> {
        self.inner
            .streams
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| MediaError::NoStream(id.to_owned()))
    }

    /// Queues 16-bit PCM (8 kHz mono) on every stream that sends; the
    /// session encodes it with each stream's negotiated codec and sends one
    /// packet per ptime. Returns the samples taken (the fewest any stream
    /// took: write at the pace of the audio; the input ring holds 160 ms).
    pub fn send_audio(&self, pcm: &[i16]) -> Result<usize, MediaError> {
        self.running()?;
        // Every stream takes the same samples (the fewest any has room
        // for), so a caller retrying the rest duplicates nothing.
        let room = self
            .sending_streams()
            .map(|m| lock(&m.handle).input_free())
            .min()
            .ok_or(MediaError::NotSending)?;
        let chunk = &pcm[..pcm.len().min(room)];
        for m in self.sending_streams() {
            lock(&m.handle).write_pcm(chunk)?;
        }
        Ok(chunk.len())
    }

    /// Queues audio already encoded (G.711 bytes, one per sample) on every
    /// stream that sends, for a session started with
    /// [`StartOptions::encoded_input`]; returns the bytes taken.
    pub fn send_encoded(&self, payload: &[u8]) -> Result<usize, MediaError> {
        self.running()?;
        let mut taken = None;
        for m in self.sending_streams() {
            let n = lock(&m.handle).write_payload(payload)?;
            taken = Some(taken.map_or(n, |t: usize| t.min(n)));
        }
        taken.ok_or(MediaError::NotSending)
    }

    /// [`send_audio`](Self::send_audio) to stream `id` only.
    pub fn send_audio_to(&self, id: &str, pcm: &[i16]) -> Result<usize, MediaError> {
        self.running()?;
        let s = self.stream(id)?;
        if !lock(&s.plan).direction.sends() {
            return Err(MediaError::NotSending);
        }
        let m = s.media.get().ok_or(MediaError::NotStarted)?;
        Ok(lock(&m.handle).write_pcm(pcm)?)
    }

    /// Sends DTMF key `digit` (0-9, `*`, `#`, A-D) for `duration` on every
    /// stream that sends (RFC 4733: start, updates every ptime, three end
    /// packets, on the stream's own sequence and timestamp space).
    ///
    /// Keys are queued and played one after another, 100 ms apart. The
    /// request reaches the stream on its shard's next turn: `Ok` means it
    /// was handed over, and a key the stream cannot take then (16 keys
    /// already queued) is reported as a [`MediaEvent::Refused`] event of
    /// this session, not as an error here.
    pub fn send_dtmf(&self, digit: char, duration: Duration) -> Result<(), MediaError> {
        self.running()?;
        let mut any = false;
        for m in self.sending_streams() {
            lock(&m.handle).send_dtmf(digit, duration)?;
            any = true;
        }
        if any {
            Ok(())
        } else {
            Err(MediaError::NotSending)
        }
    }

    /// Changes the direction of every stream locally (no renegotiation;
    /// for a hold the peer is told about, re-offer through the builder).
    pub fn set_direction(&self, direction: Direction) -> Result<(), MediaError> {
        for s in &self.inner.streams {
            lock(&s.plan).direction = direction;
            if let Some(m) = s.media.get() {
                lock(&m.handle).set_direction(direction)?;
            }
        }
        Ok(())
    }

    pub(crate) fn apply_direction(&self, index: usize, direction: Direction) {
        if let Some(s) = self.inner.streams.get(index) {
            let changed = {
                let mut p = lock(&s.plan);
                let c = p.direction != direction;
                p.direction = direction;
                c
            };
            if changed {
                if let Some(m) = s.media.get() {
                    let _ = lock(&m.handle).set_direction(direction);
                }
            }
        }
    }

    pub(crate) fn set_remote(&self, index: usize, remote: Option<SocketAddr>) {
        if let Some(s) = self.inner.streams.get(index) {
            lock(&s.plan).remote = remote;
        }
    }

    pub(crate) fn receivers(&self) -> Vec<&EventReceiver<MediaEvent>> {
        self.inner
            .streams
            .iter()
            .filter_map(|s| s.media.get().map(|m| &m.events))
            .collect()
    }

    fn start_index(&self) -> usize {
        self.inner.rotate.fetch_add(1, Ordering::Relaxed)
    }

    /// The next event of any stream, waiting for it; `None` once every
    /// stream is gone (closed) and drained, and at once before `start`
    /// (there is nothing to wait on yet). While media flows, a
    /// [`MediaEvent::Quality`] comes every second; none comes once nothing
    /// arrives.
    pub fn recv(&self) -> Option<SessionEvent> {
        let rx = self.receivers();
        recv_any(&rx, self.start_index(), None)
            .map(|(stream, event)| SessionEvent { stream, event })
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<SessionEvent> {
        let rx = self.receivers();
        recv_any(&rx, self.start_index(), Instant::now().checked_add(timeout))
            .map(|(stream, event)| SessionEvent { stream, event })
    }

    /// The next event if one is waiting.
    pub fn try_recv(&self) -> Option<SessionEvent> {
        let rx = self.receivers();
        let n = rx.len();
        let start = self.start_index();
        (0..n).find_map(|k| {
            let i = (start + k) % n.max(1);
            rx[i]
                .try_recv()
                .map(|event| SessionEvent { stream: i, event })
        })
    }

    /// A blocking iterator over events; ends when every stream is gone.
    pub fn iter(&self) -> impl Iterator<Item = SessionEvent> + '_ {
        std::iter::from_fn(|| self.recv())
    }

    /// The next event, for async code (any executor); `None` once every
    /// stream is gone and drained.
    pub async fn recv_async(&self) -> Option<SessionEvent> {
        let rx = self.receivers();
        let start = self.start_index();
        std::future::poll_fn(|cx| poll_recv_any(&rx, start, cx))
            .await
            .map(|(stream, event)| SessionEvent { stream, event })
    }

    /// Runs `f` on every event on a thread of its own until every stream
    /// is gone: the thread ends when the builder is closed or released (a
    /// stopped session still reports what arrives). Events never run on a
    /// shard. `NotStarted` before [`start`](Self::start).
    pub fn on_event<F>(&self, mut f: F) -> Result<std::thread::JoinHandle<()>, MediaError>
    where
        F: FnMut(SessionEvent) + Send + 'static,
    {
        if *lock(&self.inner.run) == Run::NotStarted {
            return Err(MediaError::NotStarted);
        }
        let rx: Vec<EventReceiver<MediaEvent>> = self.receivers().into_iter().cloned().collect();
        std::thread::Builder::new()
            .name("mr-session-events".into())
            .spawn(move || {
                let refs: Vec<&EventReceiver<MediaEvent>> = rx.iter().collect();
                let mut k = 0;
                while let Some((stream, event)) = recv_any(&refs, k, None) {
                    k = k.wrapping_add(1);
                    f(SessionEvent { stream, event });
                }
            })
            .map_err(|e| MediaError::Thread(e.to_string()))
    }

    /// Counters per stream and summed (as of each stream's last shard turn).
    pub fn statistics(&self) -> MediaStatistics {
        let mut st = MediaStatistics {
            streams: Vec::new(),
            audio_packets_sent: 0,
            packets_received: 0,
            bytes_sent: 0,
            bytes_received: 0,
            dtmf_packets_sent: 0,
            dtmf_packets_received: 0,
            lost: 0,
            expected: 0,
            jitter: Duration::ZERO,
            rtt: None,
            buffer_delay: Duration::ZERO,
            mos: None,
            received_before_start: 0,
        };
        for s in &self.inner.streams {
            st.received_before_start += s.parked.load(Ordering::Relaxed);
            let e = s
                .media
                .get()
                .map(|m| lock(&m.handle).stats())
                .unwrap_or_default();
            st.audio_packets_sent += e.audio_sent;
            st.packets_received += e.received + e.dtmf_received;
            st.bytes_sent += e.bytes_sent;
            st.bytes_received += e.bytes_received;
            st.dtmf_packets_sent += e.dtmf_sent;
            st.dtmf_packets_received += e.dtmf_received;
            st.lost += e.lost;
            st.expected += e.expected;
            st.jitter = st.jitter.max(Duration::from_micros(e.jitter_us));
            if e.rtt_us > 0 {
                let r = Duration::from_micros(e.rtt_us);
                st.rtt = Some(st.rtt.map_or(r, |x| x.max(r)));
            }
            st.buffer_delay = st
                .buffer_delay
                .max(Duration::from_micros(e.buffer_delay_us));
            if let Some(m) = e.mos {
                st.mos = Some(st.mos.map_or(m, |x: f64| x.min(m)));
            }
            st.streams.push((s.id.clone(), e));
        }
        st
    }

    /// Media activity so far (packets received, before and after start):
    /// what the idle cleanup watches.
    pub(crate) fn activity(&self) -> u64 {
        self.inner
            .streams
            .iter()
            .map(|s| {
                s.parked.load(Ordering::Relaxed)
                    + s.media.get().map_or(0, |m| {
                        let e = lock(&m.handle).stats();
                        e.received + e.dtmf_received + e.rtcp_received
                    })
            })
            .sum()
    }
}

type Wrapped = (
    Box<dyn Endpoint>,
    Option<CaptureReader>,
    Option<ImpairHandle>,
);

/// Puts the requested wrappers around a stream's endpoint: capture
/// outermost, so it records what impairment let through.
fn wrap(
    ep: MediaEndpoint,
    options: &StartOptions,
    local: SocketAddr,
    remote: Option<SocketAddr>,
) -> Result<Wrapped, MediaError> {
    let remote = remote.unwrap_or(SocketAddr::new(local.ip(), 0));
    match (&options.impair, options.capture) {
        (None, false) => Ok((Box::new(ep), None, None)),
        (None, true) => {
            let (c, r) = capture(ep, CaptureConfig::new(local, remote));
            Ok((Box::new(c), Some(r), None))
        }
        (Some(i), want_capture) => {
            let (imp, h) = impair(ep, *i).map_err(|e| MediaError::Impairment(e.to_string()))?;
            if want_capture {
                let (c, r) = capture(imp, CaptureConfig::new(local, remote));
                Ok((Box::new(c), Some(r), Some(h)))
            } else {
                Ok((Box::new(imp), None, Some(h)))
            }
        }
    }
}

impl std::fmt::Debug for MediaSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSession")
            .field("streams", &self.stream_ids())
            .field("running", &self.is_running())
            .finish()
    }
}
