//! [`AudioSource`]: anything that yields mono 16-bit PCM on demand (tones,
//! noise, WAV files, mixers).

/// A pull source of mono 16-bit linear PCM at a fixed sample rate.
///
/// Contract: [`fill`](AudioSource::fill) never panics; it writes samples
/// from the start of `out` and returns how many. A return shorter than
/// `out.len()` means the source has ended; later calls return 0. Sources
/// never block, sleep or read a clock: a caller paces them.
pub trait AudioSource {
    /// Sample rate in Hz.
    fn sample_rate(&self) -> u32;
    /// Writes the next samples into `out`; returns the number written,
    /// fewer than `out.len()` only when the source ended.
    fn fill(&mut self, out: &mut [i16]) -> usize;
}

impl<S: AudioSource + ?Sized> AudioSource for Box<S> {
    fn sample_rate(&self) -> u32 {
        (**self).sample_rate()
    }

    fn fill(&mut self, out: &mut [i16]) -> usize {
        (**self).fill(out)
    }
}

impl<S: AudioSource + ?Sized> AudioSource for &mut S {
    fn sample_rate(&self) -> u32 {
        (**self).sample_rate()
    }

    fn fill(&mut self, out: &mut [i16]) -> usize {
        (**self).fill(out)
    }
}
