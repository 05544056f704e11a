//! [`TranscodingBridge`]: joins two sessions that negotiated different
//! codecs (say a PCMU phone and a PCMA trunk): each side's decoded audio is
//! re-encoded by the other side's session in its own codec, and DTMF is
//! carried across as RFC 4733 events (not as tones). Concealed frames
//! (packet loss) are passed on for up to three in a row; a longer gap is
//! the talker's pause, and the bridge sends nothing either.
//!
//! The bridge takes the two sessions' events on a thread of its own; the
//! application should not consume them meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::session::MediaSession;
use crate::media::MediaEvent;
use crate::media::channel::recv_any;

/// Counters of a [`TranscodingBridge`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeStats {
    /// Audio frames taken from A and given to B.
    pub a_to_b_frames: u64,
    /// Audio frames taken from B and given to A.
    pub b_to_a_frames: u64,
    /// Frames the receiving side had no room for (it lags).
    pub frames_dropped: u64,
    /// DTMF events carried from A to B.
    pub a_to_b_dtmf: u64,
    /// DTMF events carried from B to A.
    pub b_to_a_dtmf: u64,
}

#[derive(Default)]
struct Counters {
    a_to_b: AtomicU64,
    b_to_a: AtomicU64,
    dropped: AtomicU64,
    dtmf_a_to_b: AtomicU64,
    dtmf_b_to_a: AtomicU64,
}

/// A running bridge between two started sessions.
pub struct TranscodingBridge {
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    thread: Option<JoinHandle<()>>,
}

impl TranscodingBridge {
    /// Bridges `a` and `b` (both started) until [`stop`](Self::stop) or
    /// until both sessions are gone.
    pub fn new(a: &MediaSession, b: &MediaSession) -> std::io::Result<TranscodingBridge> {
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let (a, b) = (a.clone(), b.clone());
        let (st, c) = (stop.clone(), counters.clone());
        let thread = std::thread::Builder::new()
            .name("mr-bridge".into())
            .spawn(move || run(&a, &b, &st, &c))?;
        Ok(TranscodingBridge {
            stop,
            counters,
            thread: Some(thread),
        })
    }

    /// Counters so far.
    pub fn stats(&self) -> BridgeStats {
        let r = Ordering::Relaxed;
        let c = &self.counters;
        BridgeStats {
            a_to_b_frames: c.a_to_b.load(r),
            b_to_a_frames: c.b_to_a.load(r),
            frames_dropped: c.dropped.load(r),
            a_to_b_dtmf: c.dtmf_a_to_b.load(r),
            b_to_a_dtmf: c.dtmf_b_to_a.load(r),
        }
    }

    /// Stops the bridge, joins its thread, returns the final counters.
    pub fn stop(mut self) -> BridgeStats {
        self.halt();
        self.stats()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for TranscodingBridge {
    fn drop(&mut self) {
        self.halt();
    }
}

fn key(code: u8) -> Option<char> {
    Some(match code {
        0..=9 => (b'0' + code) as char,
        10 => '*',
        11 => '#',
        12..=15 => (b'A' + code - 12) as char,
        _ => return None,
    })
}

/// Concealed frames passed on in a row before the bridge treats the gap as
/// the talker's silence.
const MAX_CONCEALED_RUN: u32 = 3;

fn run(a: &MediaSession, b: &MediaSession, stop: &AtomicBool, c: &Counters) {
    let ra = a.receivers();
    let rb = b.receivers();
    let na = ra.len();
    let all: Vec<_> = ra.into_iter().chain(rb).collect();
    let mut k = 0usize;
    // Consecutive concealed frames per direction (A→B, B→A).
    let mut concealed = [0u32; 2];
    while !stop.load(Ordering::SeqCst) {
        let deadline = Instant::now() + Duration::from_millis(50);
        let Some((i, ev)) = recv_any(&all, k, Some(deadline)) else {
            if all.iter().all(|r| r.is_closed() && r.is_empty()) {
                return;
            }
            continue;
        };
        k = k.wrapping_add(1);
        let from_a = i < na;
        let (to, frames, dtmf) = if from_a {
            (b, &c.a_to_b, &c.dtmf_a_to_b)
        } else {
            (a, &c.b_to_a, &c.dtmf_b_to_a)
        };
        match ev {
            MediaEvent::Audio(f) => {
                // Concealment bridges a lost packet or two; a longer run is
                // the talker pausing (or sending DTMF): pass on nothing, as
                // the talker does, rather than re-encode a second of
                // guesswork.
                let run = &mut concealed[usize::from(!from_a)];
                if f.concealed {
                    *run += 1;
                    if *run > MAX_CONCEALED_RUN {
                        continue;
                    }
                } else {
                    *run = 0;
                }
                match to.send_audio(&f.samples) {
                    Ok(n) if n == f.samples.len() => {
                        frames.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        c.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            MediaEvent::Dtmf(d) if d.ended => {
                if let Some(ch) = key(d.event.0) {
                    let dur = d.duration.max(Duration::from_millis(40));
                    if to.send_dtmf(ch, dur).is_ok() {
                        dtmf.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ => {}
        }
    }
}
