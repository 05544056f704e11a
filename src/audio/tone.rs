//! Signal generators: [`Tone`] (one sine, two sines, DTMF key tones after
//! ITU-T Q.23) and [`Noise`] (seeded white noise).
//!
//! Both are [`AudioSource`]s, endless unless given a duration. A tone
//! keeps its phase in an `f64` accumulator (in cycles, wrapped to `[0, 1)`)
//! so the waveform is continuous across [`fill`](AudioSource::fill) calls of
//! any size and does not drift over long runs. Nothing allocates.

use std::f64::consts::TAU;
use std::time::Duration;

use super::error::{AudioError, check_amplitude, check_frequency, check_rate};
use super::source::AudioSource;

/// Full scale of a 16-bit sample as an amplitude of 1.0.
const FULL_SCALE: f64 = i16::MAX as f64;

/// DTMF low-group (row) frequencies in Hz (ITU-T Q.23).
pub const DTMF_ROW_HZ: [f64; 4] = [697.0, 770.0, 852.0, 941.0];

/// DTMF high-group (column) frequencies in Hz (ITU-T Q.23).
pub const DTMF_COLUMN_HZ: [f64; 4] = [1209.0, 1336.0, 1477.0, 1633.0];

/// DTMF keys by `[row][column]`: the keyset frequency allocation of
/// ITU-T Q.23.
pub const DTMF_KEYS: [[char; 4]; 4] = [
    ['1', '2', '3', 'A'],
    ['4', '5', '6', 'B'],
    ['7', '8', '9', 'C'],
    ['*', '0', '#', 'D'],
];

/// The (row, column) frequency pair in Hz of a DTMF key (ITU-T Q.23);
/// `a`-`d` are accepted for `A`-`D`. `None` for any other character.
pub fn dtmf_frequencies(key: char) -> Option<(f64, f64)> {
    let key = key.to_ascii_uppercase();
    DTMF_KEYS.iter().enumerate().find_map(|(row, keys)| {
        let column = keys.iter().position(|&k| k == key)?;
        Some((DTMF_ROW_HZ[row], DTMF_COLUMN_HZ[column]))
    })
}

/// One sine oscillator: a phase accumulator in cycles.
#[derive(Debug, Clone, Copy)]
struct Oscillator {
    /// Current phase in cycles, in `[0, 1)`.
    phase: f64,
    /// Phase advance per sample in cycles (`freq / rate`, below 0.5).
    step: f64,
    /// Peak amplitude in sample units.
    amplitude: f64,
}

impl Oscillator {
    fn new(freq_hz: f64, amplitude: f64, rate: u32) -> Self {
        Self {
            phase: 0.0,
            step: freq_hz / f64::from(rate),
            amplitude: amplitude * FULL_SCALE,
        }
    }

    /// The current value, then one sample on.
    fn next(&mut self) -> f64 {
        let value = self.amplitude * (TAU * self.phase).sin();
        self.phase += self.step;
        if self.phase >= 1.0 {
            self.phase -= 1.0;
        }
        value
    }
}

/// Number of samples in `duration` at `rate`, rounded to nearest.
fn samples_in(duration: Duration, rate: u32) -> u64 {
    // `as` saturates: a duration beyond 2^64 samples is as good as endless.
    (duration.as_secs_f64() * f64::from(rate)).round() as u64
}

/// How many of `wanted` samples a source with `remaining` samples left may
/// write now.
fn take(remaining: Option<u64>, wanted: usize) -> usize {
    match remaining {
        None => wanted,
        Some(left) => usize::try_from(left).map_or(wanted, |left| left.min(wanted)),
    }
}

/// A sine tone, a sum of two sines, or a DTMF key tone.
///
/// ```
/// use mediarelay::audio::{AudioSource, Tone};
/// use std::time::Duration;
///
/// let mut tone = Tone::dtmf('5', 0.5, 8000)?.with_duration(Duration::from_millis(100));
/// let mut frame = [0i16; 160];
/// assert_eq!(tone.fill(&mut frame), 160);
/// # Ok::<(), mediarelay::audio::AudioError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Tone {
    rate: u32,
    oscillators: [Oscillator; 2],
    /// Oscillators in use (1 or 2).
    count: usize,
    /// Samples left; `None` when endless.
    remaining: Option<u64>,
}

impl Tone {
    /// A sine of `freq_hz` at `amplitude` (`0.0..=1.0` of full scale),
    /// sampled at `rate` Hz, starting at phase 0. Endless.
    ///
    /// Errors: [`AudioError::InvalidRate`] for rate 0,
    /// [`AudioError::InvalidFrequency`] unless `0 < freq_hz < rate / 2`,
    /// [`AudioError::InvalidAmplitude`] outside `0.0..=1.0`.
    pub fn sine(freq_hz: f64, amplitude: f64, rate: u32) -> Result<Self, AudioError> {
        let rate = check_rate(rate)?;
        let freq_hz = check_frequency(freq_hz, rate)?;
        let amplitude = check_amplitude(amplitude)?;
        let osc = Oscillator::new(freq_hz, amplitude, rate);
        Ok(Self {
            rate,
            oscillators: [osc, osc],
            count: 1,
            remaining: None,
        })
    }

    /// The sum of sines at `f1_hz` and `f2_hz`, each at half of
    /// `amplitude` so that the sum never exceeds `amplitude` of full scale.
    /// Endless. Errors as for [`Tone::sine`], for either frequency.
    pub fn dual(f1_hz: f64, f2_hz: f64, amplitude: f64, rate: u32) -> Result<Self, AudioError> {
        let rate = check_rate(rate)?;
        let f1_hz = check_frequency(f1_hz, rate)?;
        let f2_hz = check_frequency(f2_hz, rate)?;
        let amplitude = check_amplitude(amplitude)?;
        Ok(Self {
            rate,
            oscillators: [
                Oscillator::new(f1_hz, amplitude / 2.0, rate),
                Oscillator::new(f2_hz, amplitude / 2.0, rate),
            ],
            count: 2,
            remaining: None,
        })
    }

    /// The DTMF tone of `key` (`0`-`9`, `*`, `#`, `A`-`D`, lower case
    /// accepted): its ITU-T Q.23 row and column frequencies as
    /// [`Tone::dual`], both at the same level (no twist). Endless.
    ///
    /// Errors: [`AudioError::NotDtmfKey`], and those of [`Tone::dual`]
    /// (the 1633 Hz column needs a rate above 3266 Hz).
    pub fn dtmf(key: char, amplitude: f64, rate: u32) -> Result<Self, AudioError> {
        let (row, column) = dtmf_frequencies(key).ok_or(AudioError::NotDtmfKey { key })?;
        Self::dual(row, column, amplitude, rate)
    }

    /// Makes the tone end after `duration` (rounded to whole samples),
    /// counted from now.
    #[must_use]
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.remaining = Some(samples_in(duration, self.rate));
        self
    }

    /// Samples left before the tone ends; `None` when endless.
    pub fn remaining(&self) -> Option<u64> {
        self.remaining
    }
}

impl AudioSource for Tone {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn fill(&mut self, out: &mut [i16]) -> usize {
        let n = take(self.remaining, out.len());
        let oscillators = &mut self.oscillators[..self.count];
        for sample in &mut out[..n] {
            let value: f64 = oscillators.iter_mut().map(Oscillator::next).sum();
            // `as` saturates; |value| <= FULL_SCALE anyway.
            *sample = value.round() as i16;
        }
        if let Some(left) = &mut self.remaining {
            *left -= n as u64;
        }
        n
    }
}

/// White noise, uniformly distributed in `±amplitude` of full scale, from
/// a seeded SplitMix64 generator: the same seed gives the same samples.
#[derive(Debug, Clone)]
pub struct Noise {
    rate: u32,
    /// Peak amplitude in sample units.
    amplitude: f64,
    /// SplitMix64 state.
    state: u64,
    /// Samples left; `None` when endless.
    remaining: Option<u64>,
}

impl Noise {
    /// White noise at `amplitude` (`0.0..=1.0` of full scale), sampled at
    /// `rate` Hz, from `seed`. Endless.
    ///
    /// Errors: [`AudioError::InvalidRate`], [`AudioError::InvalidAmplitude`].
    pub fn white(amplitude: f64, seed: u64, rate: u32) -> Result<Self, AudioError> {
        Ok(Self {
            rate: check_rate(rate)?,
            amplitude: check_amplitude(amplitude)? * FULL_SCALE,
            state: seed,
            remaining: None,
        })
    }

    /// Makes the noise end after `duration` (rounded to whole samples),
    /// counted from now.
    #[must_use]
    pub fn with_duration(mut self, duration: Duration) -> Self {
        self.remaining = Some(samples_in(duration, self.rate));
        self
    }

    /// SplitMix64 (Steele, Lea, Flood 2014): one 64-bit output per call.
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

impl AudioSource for Noise {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn fill(&mut self, out: &mut [i16]) -> usize {
        let n = take(self.remaining, out.len());
        for sample in &mut out[..n] {
            // 53 random bits -> [0, 1) -> [-1, 1).
            let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            *sample = (self.amplitude * (2.0 * unit - 1.0)).round() as i16;
        }
        if let Some(left) = &mut self.remaining {
            *left -= n as u64;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::analysis::{analyze, detect_dtmf};

    fn collect(source: &mut impl AudioSource, len: usize) -> Vec<i16> {
        let mut out = vec![0; len];
        let n = source.fill(&mut out);
        out.truncate(n);
        out
    }

    #[test]
    fn sine_frequency_and_level() {
        for freq in [300.0, 440.0, 1000.0, 3400.0] {
            let mut tone = Tone::sine(freq, 0.5, 8000).unwrap();
            let samples = collect(&mut tone, 4000);
            let a = analyze(&samples, 8000);
            let measured = a.dominant_frequency.unwrap();
            assert!((measured - freq).abs() / freq < 0.005, "{freq}: {measured}");
            // 0.5 of full scale: peak ~16384, RMS -6.02 - 3.01 dBFS.
            assert!((i32::from(a.peak) - 16384).abs() <= 200, "{}", a.peak);
            assert!((a.rms_dbfs + 9.03).abs() < 0.1, "{}", a.rms_dbfs);
        }
    }

    #[test]
    fn phase_is_continuous_across_fills() {
        let mut whole = Tone::dual(697.0, 1209.0, 0.8, 8000).unwrap();
        let expected = collect(&mut whole, 1000);
        let mut pieces = Tone::dual(697.0, 1209.0, 0.8, 8000).unwrap();
        let mut got = Vec::new();
        for size in [1, 7, 160, 3, 829] {
            got.extend(collect(&mut pieces, size));
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn duration_ends_the_tone() {
        let mut tone = Tone::sine(440.0, 0.1, 8000)
            .unwrap()
            .with_duration(Duration::from_millis(25));
        assert_eq!(tone.remaining(), Some(200));
        let mut frame = [0i16; 160];
        assert_eq!(tone.fill(&mut frame), 160);
        assert_eq!(tone.fill(&mut frame), 40);
        assert_eq!(tone.fill(&mut frame), 0);
    }

    #[test]
    fn every_dtmf_key_is_detected() {
        for key in DTMF_KEYS.iter().flatten().copied() {
            let mut tone = Tone::dtmf(key, 0.5, 8000).unwrap();
            let samples = collect(&mut tone, 400);
            assert_eq!(detect_dtmf(&samples, 8000), Some(key), "{key}");
        }
        assert_eq!(dtmf_frequencies('d'), Some((941.0, 1633.0)));
    }

    #[test]
    fn invalid_parameters_are_typed_errors() {
        assert!(matches!(
            Tone::sine(4000.0, 0.5, 8000),
            Err(AudioError::InvalidFrequency { .. })
        ));
        assert!(matches!(
            Tone::sine(0.0, 0.5, 8000),
            Err(AudioError::InvalidFrequency { .. })
        ));
        assert!(matches!(
            Tone::sine(f64::NAN, 0.5, 8000),
            Err(AudioError::InvalidFrequency { .. })
        ));
        assert!(matches!(
            Tone::sine(440.0, 1.5, 8000),
            Err(AudioError::InvalidAmplitude { .. })
        ));
        assert_eq!(
            Tone::sine(440.0, 0.5, 0).unwrap_err(),
            AudioError::InvalidRate { rate: 0 }
        );
        assert_eq!(
            Tone::dtmf('x', 0.5, 8000).unwrap_err(),
            AudioError::NotDtmfKey { key: 'x' }
        );
        // 1633 Hz is above Nyquist at 3000 Hz.
        assert!(matches!(
            Tone::dtmf('A', 0.5, 3000),
            Err(AudioError::InvalidFrequency { .. })
        ));
        assert!(matches!(
            Noise::white(-0.1, 1, 8000),
            Err(AudioError::InvalidAmplitude { .. })
        ));
    }

    #[test]
    fn noise_is_deterministic_bounded_and_tonless() {
        let mut a = Noise::white(0.25, 42, 8000).unwrap();
        let mut b = Noise::white(0.25, 42, 8000).unwrap();
        let mut c = Noise::white(0.25, 43, 8000).unwrap();
        let (a, b, c) = (
            collect(&mut a, 4000),
            collect(&mut b, 4000),
            collect(&mut c, 4000),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().all(|&s| i32::from(s).abs() <= 8192));
        let analysis = analyze(&a, 8000);
        // Uniform in ±A: RMS A/sqrt(3) = 0.1443 of full scale, -16.8 dBFS.
        assert!(
            (analysis.rms_dbfs + 16.8).abs() < 0.3,
            "{}",
            analysis.rms_dbfs
        );
        assert_eq!(analysis.dominant_frequency, None);

        let mut finite = Noise::white(0.25, 1, 8000)
            .unwrap()
            .with_duration(Duration::from_millis(10));
        assert_eq!(collect(&mut finite, 160).len(), 80);
    }
}
