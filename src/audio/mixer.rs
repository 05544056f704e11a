//! [`Mixer`]: sums any number of [`AudioSource`]s, each with its own gain,
//! into one; and the two sample-level steps it is made of, [`mix_into`]
//! (accumulate in `i32`) and [`saturate`] (clamp back to `i16`).
//!
//! Summing happens in `i32`, so up to 65 536 full-scale sources cannot
//! overflow; only the final sum is clamped to the 16-bit range (hard
//! clipping, no limiter). The mixer's scratch buffers grow to the largest
//! `fill` size seen and are reused, so a mixer fed frames of one size does
//! not allocate after its first `fill`.

use super::error::{AudioError, check_rate};
use super::source::AudioSource;

/// Adds `frame` sample by sample into `acc`, over the shorter of the two,
/// saturating at the `i32` range.
pub fn mix_into(acc: &mut [i32], frame: &[i16]) {
    for (a, &s) in acc.iter_mut().zip(frame) {
        *a = a.saturating_add(i32::from(s));
    }
}

/// Adds `frame` scaled by `gain` into `acc`, over the shorter of the two.
fn mix_into_with_gain(acc: &mut [i32], frame: &[i16], gain: f32) {
    if gain == 1.0 {
        return mix_into(acc, frame);
    }
    for (a, &s) in acc.iter_mut().zip(frame) {
        // `as` saturates; the gain is finite.
        *a = a.saturating_add((f32::from(s) * gain).round() as i32);
    }
}

/// Clamps `acc` into the 16-bit range and writes it to `out`, over the
/// shorter of the two; returns the number of samples written.
pub fn saturate(acc: &[i32], out: &mut [i16]) -> usize {
    let n = acc.len().min(out.len());
    for (o, &a) in out.iter_mut().zip(acc) {
        *o = a.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
    }
    n
}

/// One source in a mixer.
struct Slot {
    id: usize,
    source: Box<dyn AudioSource + Send>,
    gain: f32,
}

/// Sums boxed [`AudioSource`]s at one sample rate; itself a source.
///
/// A source that ends (fills short) is dropped after its last samples are
/// mixed. When no source is left the mixer yields silence forever, unless
/// made with [`ends_when_empty`](Mixer::ends_when_empty)`(true)`, in which
/// case it ends right after the last source does (and at once if it never
/// had one).
pub struct Mixer {
    rate: u32,
    slots: Vec<Slot>,
    next_id: usize,
    ends_when_empty: bool,
    /// Accumulator of one fill.
    acc: Vec<i32>,
    /// One source's samples of one fill.
    scratch: Vec<i16>,
}

impl std::fmt::Debug for Mixer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mixer")
            .field("rate", &self.rate)
            .field("sources", &self.slots.len())
            .field("ends_when_empty", &self.ends_when_empty)
            .finish_non_exhaustive()
    }
}

impl Mixer {
    /// An empty mixer at `rate` Hz that yields silence while empty.
    ///
    /// Errors: [`AudioError::InvalidRate`] for rate 0.
    pub fn new(rate: u32) -> Result<Self, AudioError> {
        Ok(Self {
            rate: check_rate(rate)?,
            slots: Vec::new(),
            next_id: 0,
            ends_when_empty: false,
            acc: Vec::new(),
            scratch: Vec::new(),
        })
    }

    /// Whether the mixer ends once it has no sources (`true`), or yields
    /// silence (`false`, the default).
    #[must_use]
    pub fn ends_when_empty(mut self, ends: bool) -> Self {
        self.ends_when_empty = ends;
        self
    }

    /// Adds `source` at gain 1.0; returns its id (ids are never reused).
    ///
    /// Errors: [`AudioError::RateMismatch`] when the source's rate is not
    /// the mixer's (nothing is resampled).
    pub fn add(&mut self, source: Box<dyn AudioSource + Send>) -> Result<usize, AudioError> {
        if source.sample_rate() != self.rate {
            return Err(AudioError::RateMismatch {
                expected: self.rate,
                found: source.sample_rate(),
            });
        }
        let id = self.next_id;
        self.next_id += 1;
        self.slots.push(Slot {
            id,
            source,
            gain: 1.0,
        });
        Ok(id)
    }

    /// Removes source `id` and hands it back; `None` if there is none (it
    /// was removed, or it ended and was dropped).
    pub fn remove(&mut self, id: usize) -> Option<Box<dyn AudioSource + Send>> {
        let index = self.slots.iter().position(|s| s.id == id)?;
        Some(self.slots.remove(index).source)
    }

    /// Sets the linear gain of source `id` (1.0 as is, 0.5 about -6 dB,
    /// negative inverts).
    ///
    /// Errors: [`AudioError::InvalidGain`] for NaN or infinity,
    /// [`AudioError::UnknownSource`] when there is no source `id`.
    pub fn set_gain(&mut self, id: usize, gain: f32) -> Result<(), AudioError> {
        if !gain.is_finite() {
            return Err(AudioError::InvalidGain { gain });
        }
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or(AudioError::UnknownSource { id })?;
        slot.gain = gain;
        Ok(())
    }

    /// Number of sources being mixed.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no source is being mixed.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

impl AudioSource for Mixer {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn fill(&mut self, out: &mut [i16]) -> usize {
        let n = out.len();
        if self.slots.is_empty() {
            if self.ends_when_empty {
                return 0;
            }
            out.fill(0);
            return n;
        }
        if self.acc.len() < n {
            self.acc.resize(n, 0);
            self.scratch.resize(n, 0);
        }
        let acc = &mut self.acc[..n];
        let scratch = &mut self.scratch[..n];
        acc.fill(0);
        // Longest fill of a source this round: the mixer's end when the
        // last source ends.
        let mut longest = 0;
        self.slots.retain_mut(|slot| {
            let got = slot.source.fill(scratch).min(n);
            mix_into_with_gain(acc, &scratch[..got], slot.gain);
            longest = longest.max(got);
            got == n
        });
        saturate(acc, out);
        if self.slots.is_empty() && self.ends_when_empty {
            return longest;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::tone::Tone;
    use crate::audio::wav::WavSource;
    use std::time::Duration;

    fn constant(level: i16, len: usize) -> Box<dyn AudioSource + Send> {
        Box::new(WavSource::from_samples(8000, vec![level; len]).unwrap())
    }

    #[test]
    fn sums_and_saturates() {
        let mut mixer = Mixer::new(8000).unwrap();
        mixer.add(constant(20_000, 100)).unwrap();
        mixer.add(constant(20_000, 100)).unwrap();
        let mut out = [0i16; 4];
        assert_eq!(mixer.fill(&mut out), 4);
        assert_eq!(out, [i16::MAX; 4]);

        let mut mixer = Mixer::new(8000).unwrap();
        mixer.add(constant(-20_000, 100)).unwrap();
        mixer.add(constant(-20_000, 100)).unwrap();
        let third = mixer.add(constant(1000, 100)).unwrap();
        mixer.fill(&mut out);
        assert_eq!(out, [i16::MIN; 4]);
        mixer.set_gain(third, 30.0).unwrap();
        mixer.fill(&mut out);
        assert_eq!(out, [-10_000; 4]);
    }

    #[test]
    fn free_functions() {
        let mut acc = [0i32; 3];
        mix_into(&mut acc, &[i16::MAX, i16::MIN, 5]);
        mix_into(&mut acc, &[i16::MAX, i16::MIN]);
        assert_eq!(acc, [65534, -65536, 5]);
        let mut out = [0i16; 2];
        assert_eq!(saturate(&acc, &mut out), 2);
        assert_eq!(out, [i16::MAX, i16::MIN]);
    }

    #[test]
    fn gain_remove_and_errors() {
        let mut mixer = Mixer::new(8000).unwrap();
        let a = mixer.add(constant(1000, 100)).unwrap();
        let b = mixer.add(constant(300, 100)).unwrap();
        mixer.set_gain(a, 0.5).unwrap();
        let mut out = [0i16; 2];
        mixer.fill(&mut out);
        assert_eq!(out, [800; 2]);
        assert!(mixer.remove(b).is_some());
        assert!(mixer.remove(b).is_none());
        mixer.fill(&mut out);
        assert_eq!(out, [500; 2]);
        assert_eq!(
            mixer.set_gain(b, 1.0).unwrap_err(),
            AudioError::UnknownSource { id: b }
        );
        assert!(matches!(
            mixer.set_gain(a, f32::NAN),
            Err(AudioError::InvalidGain { .. })
        ));
        let wideband = Tone::sine(440.0, 0.5, 16000).unwrap();
        assert_eq!(
            mixer.add(Box::new(wideband)).unwrap_err(),
            AudioError::RateMismatch {
                expected: 8000,
                found: 16000
            }
        );
    }

    #[test]
    fn ended_sources_are_dropped() {
        // Endless: silence after the last source.
        let mut mixer = Mixer::new(8000).unwrap();
        mixer.add(constant(7, 3)).unwrap();
        let mut out = [1i16; 5];
        assert_eq!(mixer.fill(&mut out), 5);
        assert_eq!(out, [7, 7, 7, 0, 0]);
        assert!(mixer.is_empty());
        assert_eq!(mixer.fill(&mut out), 5);
        assert_eq!(out, [0; 5]);

        // Ends with its last source.
        let mut mixer = Mixer::new(8000).unwrap().ends_when_empty(true);
        assert_eq!(mixer.fill(&mut out), 0);
        let tone = Tone::sine(1000.0, 0.1, 8000)
            .unwrap()
            .with_duration(Duration::from_millis(1));
        mixer.add(Box::new(tone)).unwrap();
        mixer.add(constant(1, 3)).unwrap();
        assert_eq!(mixer.len(), 2);
        let mut frame = [0i16; 6];
        assert_eq!(mixer.fill(&mut frame), 6);
        assert_eq!(mixer.len(), 1);
        assert_eq!(mixer.fill(&mut frame), 2);
        assert_eq!(mixer.fill(&mut frame), 0);
    }
}
