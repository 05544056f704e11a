//! Helpers shared by the media builder examples: the `--quick` flag, the
//! `## key=value` figure lines that tests/examples.rs parses, an event
//! pump that takes the events of many a media session on one thread, one
//! loopback call set up end to end, and the process's open descriptors and
//! threads.
//!
//! Each example uses a subset of this module.
#![allow(dead_code)]

use std::error::Error;
use std::fmt::Display;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use mediarelay::builder::MediaSession;
use mediarelay::dtmf::EventCode;
use mediarelay::media::{MediaEvent, SessionError};

/// An error of an example step, with its context in the text.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// `true` when the example runs with `--quick` (CI mode: the same steps,
/// shorter durations and smaller counts). Any other argument is refused.
pub fn quick_mode(example: &str) -> bool {
    let mut quick = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
            other => {
                eprintln!("{example}: unknown argument {other:?} (only --quick)");
                std::process::exit(2);
            }
        }
    }
    quick
}

/// Prints one machine-readable figure: `## key=value`. The value must
/// hold no whitespace (lists are comma-separated).
pub fn figure(key: &str, value: impl Display) {
    let v = value.to_string();
    assert!(
        !v.is_empty() && !v.contains(char::is_whitespace),
        "figure {key} has an empty value or one with whitespace: {v:?}"
    );
    println!("## {key}={v}");
}

/// Comma-separated list for a figure.
pub fn list<T: Display>(items: &[T]) -> String {
    let v: Vec<String> = items.iter().map(ToString::to_string).collect();
    v.join(",")
}

/// The key of an RFC 4733 event code (`?` for a non-DTMF event).
pub fn key_of(code: EventCode) -> char {
    code.digit().map_or('?', |d| d.as_char())
}

/// Locks, ignoring poisoning (every critical section here leaves its data
/// consistent).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

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
    /// Keys this session refused after `send_dtmf` had returned `Ok`
    /// (`MediaEvent::Refused`: its queue of 16 keys was full). The request
    /// reaches the session on its shard's next turn, so a refusal can only
    /// be reported as an event.
    pub dtmf_refused: AtomicU64,
    /// Decoded samples, when the session was watched with `record`.
    pub pcm: Mutex<Vec<i16>>,
    record: bool,
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
/// session would be hundreds of threads in the stress test). A session's event
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
            .name("example-events".into())
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
            if tally.record && !frame.concealed {
                lock(&tally.pcm).extend_from_slice(&frame.samples);
            }
        }
        _ => {}
    }
}

/// One loopback call between two builders of the same manager, negotiated
/// and started (the load generator's).
#[allow(unused_imports)] // not every example sets up calls this way
pub use loadgen::stress::call::Call;

/// Fills `frame` from `source`, zero-padding if the source ended.
pub fn next_frame(source: &mut impl mediarelay::audio::AudioSource, frame: &mut [i16]) {
    let n = source.fill(frame);
    frame[n..].fill(0);
}
