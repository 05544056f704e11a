//! [`Conference`]: an N-1 audio conference over sessions. Every ptime the
//! mixing thread takes one decoded frame from each participant's session
//! (silence when none came), and sends each participant the sum of all the
//! others ([`crate::audio::ConferenceMixer`]): everyone hears everyone
//! else, never themselves. Participants join and leave while it runs.
//!
//! The conference takes its participants' session events; the application
//! should not consume them meanwhile.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::session::MediaSession;
use crate::audio::{ConferenceMixer, ParticipantId};
use crate::media::MediaEvent;

/// Counters of one participant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ParticipantStats {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: ParticipantId,
    /// Frames received from it and mixed.
    pub frames_in: u64,
    /// Mixes sent to it.
    pub frames_out: u64,
    /// DTMF events it sent (reported, not mixed).
    pub dtmf_in: u64,
}

struct Member {
    id: ParticipantId,
    name: String,
    session: MediaSession,
    queue: VecDeque<Vec<i16>>,
    frames_in: u64,
    frames_out: u64,
    dtmf_in: u64,
}

struct Shared {
    members: Mutex<Vec<Member>>,
    mixer: Mutex<ConferenceMixer>,
    ticks: AtomicU64,
}

/// A running N-1 conference.
pub struct Conference {
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    frame: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Each critical section leaves the data consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Conference {
    /// A conference mixing 8 kHz audio every `ptime` (frames of
    /// `ptime` × 8 samples); `InvalidInput` unless `ptime` is 10 to 60 ms
    /// in steps of 10 ms.
    pub fn new(ptime: Duration) -> std::io::Result<Conference> {
        // The manager's rule (`ManagerConfig::ptime`): a zero ptime would
        // make the mixing thread spin.
        let ms = ptime.as_millis();
        if !(10..=60).contains(&ms)
            || !ms.is_multiple_of(10)
            || !ptime.subsec_nanos().is_multiple_of(1_000_000)
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("conference ptime {ptime:?} must be 10 to 60 ms in steps of 10 ms"),
            ));
        }
        let frame = (ptime.as_millis() as usize * 8).max(8);
        let shared = Arc::new(Shared {
            members: Mutex::new(Vec::new()),
            mixer: Mutex::new(ConferenceMixer::new(frame)),
            ticks: AtomicU64::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (sh, st) = (shared.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("mr-conference".into())
            .spawn(move || run(&sh, &st, ptime, frame))?;
        Ok(Conference {
            shared,
            stop,
            thread: Some(thread),
            frame,
        })
    }

    /// Adds a participant: `session` (started) is the conference's side of
    /// its call.
    pub fn join(&self, name: &str, session: MediaSession) -> ParticipantId {
        let id = lock(&self.shared.mixer).join();
        lock(&self.shared.members).push(Member {
            id,
            name: name.to_owned(),
            session,
            queue: VecDeque::new(),
            frames_in: 0,
            frames_out: 0,
            dtmf_in: 0,
        });
        id
    }

    /// Removes a participant; `false` if unknown.
    pub fn leave(&self, id: ParticipantId) -> bool {
        let removed = {
            let mut m = lock(&self.shared.members);
            let before = m.len();
            m.retain(|p| p.id != id);
            m.len() != before
        };
        lock(&self.shared.mixer).leave(id);
        removed
    }

    /// Samples per mixed frame.
    pub fn frame_samples(&self) -> usize {
        self.frame
    }

    /// Mixing rounds run so far.
    pub fn ticks(&self) -> u64 {
        self.shared.ticks.load(Ordering::Relaxed)
    }

    /// Counters per participant.
    pub fn stats(&self) -> Vec<ParticipantStats> {
        lock(&self.shared.members)
            .iter()
            .map(|m| ParticipantStats {
                name: m.name.clone(),
                id: m.id,
                frames_in: m.frames_in,
                frames_out: m.frames_out,
                dtmf_in: m.dtmf_in,
            })
            .collect()
    }

    /// Stops mixing and joins the thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Conference {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Frames queued per participant at most (a late mixer catches up, a
/// flood is cut).
const MAX_QUEUE: usize = 4;

fn run(shared: &Shared, stop: &AtomicBool, ptime: Duration, frame: usize) {
    let start = Instant::now();
    let mut tick: u32 = 0;
    while !stop.load(Ordering::SeqCst) {
        tick = tick.wrapping_add(1);
        let due = start + ptime * tick;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let mut members = lock(&shared.members);
        let mut mixer = lock(&shared.mixer);
        for m in members.iter_mut() {
            while let Some(ev) = m.session.try_recv() {
                match ev.event {
                    MediaEvent::Audio(f) => {
                        if m.queue.len() >= MAX_QUEUE {
                            m.queue.pop_front();
                        }
                        m.queue.push_back(f.samples.to_vec());
                    }
                    MediaEvent::Dtmf(d) if d.ended => m.dtmf_in += 1,
                    _ => {}
                }
            }
            let input = m.queue.pop_front();
            if let Some(f) = &input {
                m.frames_in += 1;
                let n = f.len().min(frame);
                let _ = mixer.push(m.id, &f[..n]);
            }
        }
        mixer.mix();
        for m in members.iter_mut() {
            if let Some(out) = mixer.output(m.id) {
                if m.session.send_audio(out).is_ok() {
                    m.frames_out += 1;
                }
            }
        }
        shared.ticks.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptime_outside_the_managers_rule_is_refused() {
        for ms in [0u64, 5, 25, 70, 1000] {
            let e = Conference::new(Duration::from_millis(ms)).err();
            assert_eq!(
                e.map(|e| e.kind()),
                Some(std::io::ErrorKind::InvalidInput),
                "{ms} ms"
            );
        }
        assert!(Conference::new(Duration::from_micros(20_500)).is_err());
        let conf = Conference::new(Duration::from_millis(30)).expect("30 ms");
        drop(conf);
    }
}
