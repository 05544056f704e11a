//! One loopback call set up end to end between two builders of a manager,
//! the event pump that takes the events of many a media session on one
//! thread, and the process's open descriptors and threads (moved from the
//! media builder examples' shared helpers).

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use mediarelay::builder::{Builder, BuilderManager, MediaSession};
use mediarelay::dtmf::EventCode;
use mediarelay::media::{MediaEvent, SessionError};

/// An error of a stress step, with its context in the text.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// The key of an RFC 4733 event code (`?` for a non-DTMF event).
pub fn key_of(code: EventCode) -> char {
    code.digit().map_or('?', |d| d.as_char())
}

/// Locks, ignoring poisoning (every critical section here leaves its data
/// consistent).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Latency of each media builder API operation the stress run calls, µs
/// (process-wide: every sub-test's calls add to it).
static API_TIMES: Mutex<BTreeMap<&'static str, Histogram<u64>>> = Mutex::new(BTreeMap::new());

/// Runs `f`, recording its duration as one `op` in the API latency
/// histograms.
pub fn timed<T>(op: &'static str, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let out = f();
    let us = t0
        .elapsed()
        .as_micros()
        .clamp(1, u128::from(crate::latency::MAX_LATENCY_US)) as u64;
    let _ = lock(&API_TIMES)
        .entry(op)
        .or_insert_with(crate::latency::new_histogram)
        .record(us);
    out
}

/// The API latency histograms recorded so far, cleared.
pub fn take_api_times() -> BTreeMap<&'static str, Histogram<u64>> {
    std::mem::take(&mut *lock(&API_TIMES))
}

/// A decoded frame at least this loud (peak sample) is a marker frame of
/// the audio delay measurement; the stress run's tones peak at 0.3 of full
/// scale (about 9,800).
pub const MARKER_PEAK: i16 = 14_000;

/// What the pump saw on one session.
#[derive(Debug, Default)]
pub struct Tally {
    /// RFC 4733 events that ended (`MediaEvent::Dtmf` with `ended`): one per
    /// key press, whatever the number of packets that carried it.
    pub dtmf_ended: AtomicU64,
    /// Their keys, in order of arrival.
    pub keys: Mutex<Vec<char>>,
    /// Decoded audio frames delivered (`MediaEvent::Audio`).
    pub audio_frames: AtomicU64,
    /// When the pump took each decoded frame that started a run of marker
    /// frames (peak at least [`MARKER_PEAK`]).
    pub markers: Mutex<Vec<Instant>>,
    /// Whether the previous decoded frame was a marker frame.
    pub in_marker: AtomicBool,
    /// Decoded samples (not concealment), when the session was watched
    /// with [`EventPump::record`].
    pub pcm: Mutex<Vec<i16>>,
    record: bool,
    /// Keys this session refused after `send_dtmf` had returned `Ok`
    /// (`MediaEvent::Refused`: its queue of 16 keys was full). The request
    /// reaches the session on its shard's next turn, so a refusal can only
    /// be reported as an event.
    pub dtmf_refused: AtomicU64,
}

impl Tally {
    /// Events ended so far.
    pub fn dtmf(&self) -> u64 {
        self.dtmf_ended.load(Ordering::SeqCst)
    }

    /// Keys this session refused after accepting the call.
    pub fn refused(&self) -> u64 {
        self.dtmf_refused.load(Ordering::SeqCst)
    }

    /// Keys received so far.
    pub fn keys(&self) -> Vec<char> {
        lock(&self.keys).clone()
    }
}

type Watched = Vec<(MediaSession, Arc<Tally>)>;

/// Takes the events of many a media session on one thread (a thread per
/// session would be hundreds of threads in a stress run). A session's event
/// queue is bounded (`event_capacity`, 64 by default) and decoded audio
/// fills it at 50 frames a second, so an application that does not take
/// its events loses DTMF reports among them.
pub struct EventPump {
    watched: Arc<Mutex<Watched>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EventPump {
    /// Starts the pump thread.
    pub fn start() -> std::io::Result<EventPump> {
        let watched: Arc<Mutex<Watched>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (w, s) = (watched.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("loadgen-events".into())
            .spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    let mut any = false;
                    for (session, tally) in lock(&w).iter() {
                        while let Some(ev) = session.try_recv() {
                            any = true;
                            count(tally, ev.event);
                        }
                    }
                    if !any {
                        std::thread::sleep(Duration::from_millis(3));
                    }
                }
            })?;
        Ok(EventPump {
            watched,
            stop,
            thread: Some(thread),
        })
    }

    /// Takes `session`'s events from now on.
    pub fn watch(&self, session: &MediaSession) -> Arc<Tally> {
        self.add(session, false)
    }

    /// Like [`watch`](Self::watch), keeping the decoded audio.
    pub fn record(&self, session: &MediaSession) -> Arc<Tally> {
        self.add(session, true)
    }

    fn add(&self, session: &MediaSession, record: bool) -> Arc<Tally> {
        let tally = Arc::new(Tally {
            record,
            ..Tally::default()
        });
        lock(&self.watched).push((session.clone(), tally.clone()));
        tally
    }

    /// Stops taking the events of the session `tally` belongs to.
    pub fn forget(&self, tally: &Arc<Tally>) {
        lock(&self.watched).retain(|(_, t)| !Arc::ptr_eq(t, tally));
    }

    /// Stops the thread and joins it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        lock(&self.watched).clear();
    }
}

impl Drop for EventPump {
    fn drop(&mut self) {
        self.halt();
    }
}

fn count(tally: &Tally, event: MediaEvent) {
    match event {
        MediaEvent::Dtmf(d) if d.ended => {
            lock(&tally.keys).push(key_of(d.event));
            tally.dtmf_ended.fetch_add(1, Ordering::SeqCst);
        }
        MediaEvent::Refused(SessionError::Dtmf(_)) => {
            tally.dtmf_refused.fetch_add(1, Ordering::SeqCst);
        }
        MediaEvent::Audio(frame) => {
            tally.audio_frames.fetch_add(1, Ordering::Relaxed);
            let loud = frame
                .samples
                .iter()
                .any(|s| s.unsigned_abs() >= MARKER_PEAK.unsigned_abs());
            if loud && !tally.in_marker.swap(true, Ordering::Relaxed) {
                lock(&tally.markers).push(Instant::now());
            } else if !loud {
                tally.in_marker.store(false, Ordering::Relaxed);
            }
            if tally.record && !frame.concealed {
                lock(&tally.pcm).extend_from_slice(&frame.samples);
            }
        }
        _ => {}
    }
}

/// One loopback call between two builders of the same manager, negotiated
/// and started.
pub struct Call {
    /// The offerer.
    pub a: Arc<Builder>,
    /// The answerer.
    pub b: Arc<Builder>,
    /// The offerer's media.
    pub sa: MediaSession,
    /// The answerer's media.
    pub sb: MediaSession,
}

impl Call {
    /// Creates builders `a` and `b`, runs offer/answer (a offers) and
    /// starts the media of both. On any failure the builders created so far
    /// are released (nothing leaks), and the error names the step.
    pub fn connect(mgr: &BuilderManager, a: &str, b: &str) -> Result<Call, BoxError> {
        let ba = timed("create_builder", || mgr.create_builder(a))
            .map_err(|e| format!("create {a}: {e}"))?;
        let bb = match timed("create_builder", || mgr.create_builder(b)) {
            Ok(bb) => bb,
            Err(e) => {
                mgr.release_builder(a);
                return Err(format!("create {b}: {e}").into());
            }
        };
        let negotiate = || -> Result<(MediaSession, MediaSession), BoxError> {
            let offer =
                timed("create_offer", || ba.create_offer()).map_err(|e| format!("offer: {e}"))?;
            timed("process_offer", || bb.process_offer(&offer))
                .map_err(|e| format!("process offer: {e}"))?;
            let answer = timed("create_answer", || bb.create_answer())
                .map_err(|e| format!("answer: {e}"))?;
            timed("process_answer", || ba.process_answer(&answer))
                .map_err(|e| format!("process answer: {e}"))?;
            let sa = ba.media_session().ok_or("offerer has no media session")?;
            let sb = bb.media_session().ok_or("answerer has no media session")?;
            timed("start", || sa.start()).map_err(|e| format!("start {a}: {e}"))?;
            timed("start", || sb.start()).map_err(|e| format!("start {b}: {e}"))?;
            Ok((sa, sb))
        };
        match negotiate() {
            Ok((sa, sb)) => Ok(Call {
                a: ba,
                b: bb,
                sa,
                sb,
            }),
            Err(e) => {
                mgr.release_builder(a);
                mgr.release_builder(b);
                Err(e)
            }
        }
    }

    /// Releases both builders (their media stops, their ports go back).
    pub fn release(&self, mgr: &BuilderManager) {
        timed("release_builder", || mgr.release_builder(self.a.id()));
        timed("release_builder", || mgr.release_builder(self.b.id()));
    }
}

/// Entries of `/proc/self/fd`: descriptors open in this process (the
/// directory handle used to read it included, the same in every reading).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// Entries of `/proc/self/task`: threads of this process.
pub fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map_or(0, Iterator::count)
}

/// Fills `frame` from `source`, zero-padding if the source ended.
pub fn next_frame(source: &mut impl mediarelay::audio::AudioSource, frame: &mut [i16]) {
    let n = source.fill(frame);
    frame[n..].fill(0);
}

/// A small, seeded pseudo-random generator (SplitMix64) for the stress
/// run's random choices and pauses; not for anything that needs security.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` and the clock.
    pub fn new(seed: u64) -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng(seed ^ t)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}
