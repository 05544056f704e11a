//! [`ConferenceMixer`]: an N-1 conference bridge. Each round every
//! participant pushes its latest frame, [`mix`](ConferenceMixer::mix) runs,
//! and each participant's [`output`](ConferenceMixer::output) is the sum of
//! everyone else's frame: it never hears itself.
//!
//! The sum is formed once per round in `i32` (the total of all frames),
//! and each output is the total minus the participant's own frame,
//! clamped to 16 bits: O(N · frame) per round, not O(N² · frame), exact
//! for up to 65 536 participants. A
//! participant that pushed nothing in a round counts as silence for that
//! round. All buffers are sized on [`join`](ConferenceMixer::join), so
//! `push`, `mix` and `output` do not allocate.

use std::fmt;

use super::error::AudioError;

/// A participant of one [`ConferenceMixer`]; ids are not reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParticipantId(u32);

impl ParticipantId {
    /// The number behind the id.
    pub fn value(self) -> u32 {
        self.0
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// One participant's buffers.
#[derive(Debug)]
struct Participant {
    id: ParticipantId,
    /// The frame pushed this round, silence-padded.
    input: Vec<i16>,
    /// Whether `input` holds a frame of this round.
    pushed: bool,
    /// What this participant hears, from the last `mix`.
    output: Vec<i16>,
}

/// An N-1 conference bridge over fixed-size frames of mono 16-bit PCM.
#[derive(Debug)]
pub struct ConferenceMixer {
    frame_samples: usize,
    participants: Vec<Participant>,
    next_id: u32,
    /// Sum of all frames of the round.
    total: Vec<i32>,
}

impl ConferenceMixer {
    /// An empty bridge mixing frames of `frame_samples` samples (160 for
    /// 20 ms at 8 kHz).
    pub fn new(frame_samples: usize) -> Self {
        Self {
            frame_samples,
            participants: Vec::new(),
            next_id: 0,
            total: vec![0; frame_samples],
        }
    }

    /// The frame size in samples.
    pub fn frame_samples(&self) -> usize {
        self.frame_samples
    }

    /// Adds a participant; it hears silence until the next `mix`.
    pub fn join(&mut self) -> ParticipantId {
        let id = ParticipantId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        self.participants.push(Participant {
            id,
            input: vec![0; self.frame_samples],
            pushed: false,
            output: vec![0; self.frame_samples],
        });
        id
    }

    /// Removes participant `id`; returns whether it was there. From the
    /// next `mix` on, the others no longer hear it.
    pub fn leave(&mut self, id: ParticipantId) -> bool {
        let Some(index) = self.participants.iter().position(|p| p.id == id) else {
            return false;
        };
        self.participants.remove(index);
        true
    }

    /// Sets participant `id`'s frame for this round, replacing any frame it
    /// pushed since the last `mix`. A frame shorter than
    /// [`frame_samples`](Self::frame_samples) is padded with silence.
    ///
    /// Errors: [`AudioError::UnknownParticipant`],
    /// [`AudioError::FrameTooLong`].
    pub fn push(&mut self, id: ParticipantId, frame: &[i16]) -> Result<(), AudioError> {
        if frame.len() > self.frame_samples {
            return Err(AudioError::FrameTooLong {
                expected: self.frame_samples,
                got: frame.len(),
            });
        }
        let participant = self
            .participants
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or(AudioError::UnknownParticipant { id: id.0 })?;
        let (head, tail) = participant.input.split_at_mut(frame.len());
        head.copy_from_slice(frame);
        tail.fill(0);
        participant.pushed = true;
        Ok(())
    }

    /// Ends the round: computes every participant's output as the sum of
    /// all other participants' frames of the round (silence for those that
    /// pushed none), clamped to 16 bits, and starts a new round.
    pub fn mix(&mut self) {
        self.total.fill(0);
        for p in self.participants.iter().filter(|p| p.pushed) {
            for (t, &s) in self.total.iter_mut().zip(&p.input) {
                *t = t.saturating_add(i32::from(s));
            }
        }
        for p in &mut self.participants {
            // Own frame taken out of the total; nothing to take out when
            // the participant was silent this round.
            let own = if p.pushed { p.input.as_slice() } else { &[] };
            let own = own.iter().copied().chain(std::iter::repeat(0));
            for ((o, &t), s) in p.output.iter_mut().zip(&self.total).zip(own) {
                *o = t
                    .saturating_sub(i32::from(s))
                    .clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
            }
            p.pushed = false;
        }
    }

    /// What participant `id` hears: its output of the last `mix` (silence
    /// before its first). `None` for an unknown participant.
    pub fn output(&self, id: ParticipantId) -> Option<&[i16]> {
        self.participants
            .iter()
            .find(|p| p.id == id)
            .map(|p| p.output.as_slice())
    }

    /// The participants, in order of joining.
    pub fn participants(&self) -> impl ExactSizeIterator<Item = ParticipantId> + '_ {
        self.participants.iter().map(|p| p.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_hears_the_sum_of_the_others() {
        let mut bridge = ConferenceMixer::new(4);
        let ids = [bridge.join(), bridge.join(), bridge.join()];
        let levels = [100i16, 2000, -30];
        for round in 0..3 {
            for (&id, &level) in ids.iter().zip(&levels) {
                bridge.push(id, &[level; 4]).unwrap();
            }
            bridge.mix();
            let total: i16 = levels.iter().sum();
            for (&id, &level) in ids.iter().zip(&levels) {
                assert_eq!(
                    bridge.output(id).unwrap(),
                    [total - level; 4],
                    "round {round}"
                );
            }
        }
        assert_eq!(bridge.output(ids[0]).unwrap(), [1970; 4]);
        assert_eq!(bridge.participants().collect::<Vec<_>>(), ids);
    }

    #[test]
    fn missing_frames_are_silence_and_rounds_reset() {
        let mut bridge = ConferenceMixer::new(3);
        let a = bridge.join();
        let b = bridge.join();
        let c = bridge.join();
        bridge.push(a, &[10, 20]).unwrap();
        bridge.push(b, &[1, 1, 1]).unwrap();
        bridge.mix();
        assert_eq!(bridge.output(a).unwrap(), [1, 1, 1]);
        assert_eq!(bridge.output(b).unwrap(), [10, 20, 0]);
        assert_eq!(bridge.output(c).unwrap(), [11, 21, 1]);
        // Nobody pushed: everyone hears silence.
        bridge.mix();
        for id in [a, b, c] {
            assert_eq!(bridge.output(id).unwrap(), [0, 0, 0]);
        }
    }

    #[test]
    fn join_and_leave() {
        let mut bridge = ConferenceMixer::new(2);
        let a = bridge.join();
        let b = bridge.join();
        bridge.push(a, &[5, 5]).unwrap();
        bridge.push(b, &[7, 7]).unwrap();
        bridge.mix();
        let c = bridge.join();
        assert_eq!(bridge.output(c).unwrap(), [0, 0]);
        assert!(bridge.leave(a));
        assert!(!bridge.leave(a));
        assert_eq!(bridge.output(a), None);
        assert_eq!(
            bridge.push(a, &[1, 1]).unwrap_err(),
            AudioError::UnknownParticipant { id: a.value() }
        );
        bridge.push(b, &[7, 7]).unwrap();
        bridge.push(c, &[3, 3]).unwrap();
        bridge.mix();
        assert_eq!(bridge.output(b).unwrap(), [3, 3]);
        assert_eq!(bridge.output(c).unwrap(), [7, 7]);
        assert_eq!(bridge.participants().collect::<Vec<_>>(), [b, c]);
        let d = bridge.join();
        assert_ne!(d, a);
        assert_eq!(
            bridge.push(d, &[0; 3]).unwrap_err(),
            AudioError::FrameTooLong {
                expected: 2,
                got: 3
            }
        );
    }

    #[test]
    fn outputs_saturate() {
        let mut bridge = ConferenceMixer::new(1);
        let ids: Vec<_> = (0..4).map(|_| bridge.join()).collect();
        for &id in &ids {
            bridge.push(id, &[20_000]).unwrap();
        }
        bridge.mix();
        assert_eq!(bridge.output(ids[0]).unwrap(), [i16::MAX]);
        for &id in &ids {
            bridge.push(id, &[i16::MIN]).unwrap();
        }
        bridge.mix();
        assert_eq!(bridge.output(ids[3]).unwrap(), [i16::MIN]);
    }
}
