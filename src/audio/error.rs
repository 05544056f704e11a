//! The error type of the [`audio`](super) module: every way a tone, noise
//! source, WAV file, mixer, conference bridge or recorder can refuse its
//! input.

use std::path::PathBuf;

/// Why an audio building block cannot be made or used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// A tone frequency is not finite, not above 0 Hz or not below the
    /// Nyquist frequency (half the sample rate).
    #[error("frequency {freq_hz} Hz is outside (0, {}) Hz at {rate} Hz", *rate as f64 / 2.0)]
    InvalidFrequency {
        /// The frequency asked for, in Hz.
        freq_hz: f64,
        /// The sample rate, in Hz.
        rate: u32,
    },
    /// An amplitude is not within `0.0..=1.0` of full scale.
    #[error("amplitude {amplitude} is outside 0..=1 of full scale")]
    InvalidAmplitude {
        /// The amplitude asked for.
        amplitude: f64,
    },
    /// A sample rate of 0 Hz.
    #[error("sample rate {rate} Hz is not positive")]
    InvalidRate {
        /// The rate asked for, in Hz.
        rate: u32,
    },
    /// A gain that is not a finite number.
    #[error("gain {gain} is not finite")]
    InvalidGain {
        /// The gain asked for.
        gain: f32,
    },
    /// A character that is none of the 16 DTMF keys `0`-`9`, `*`, `#`,
    /// `A`-`D` (ITU-T Q.23).
    #[error("{key:?} is not a DTMF key")]
    NotDtmfKey {
        /// The character asked for.
        key: char,
    },
    /// A WAV file could not be opened, read, created or written.
    #[error("WAV file {}: {message}", path.display())]
    Wav {
        /// The file.
        path: PathBuf,
        /// What went wrong (the I/O or parse error, as text).
        message: String,
    },
    /// A WAV file is in a sample format this module does not read: only
    /// 8, 16, 24 and 32-bit integer and 32-bit float PCM, mono or stereo
    /// (any channel count for [`read_wav`](super::read_wav)).
    #[error(
        "WAV file {}: unsupported format ({channels} channels, {bits_per_sample}-bit {})",
        path.display(),
        if *float { "float" } else { "integer" }
    )]
    UnsupportedWavFormat {
        /// The file.
        path: PathBuf,
        /// Channels in the file.
        channels: u16,
        /// Bits per sample in the file.
        bits_per_sample: u16,
        /// Whether the samples are floating point.
        float: bool,
    },
    /// Audio at one sample rate was offered where another is required (no
    /// resampling is done).
    #[error("sample rate {found} Hz where {expected} Hz is required")]
    RateMismatch {
        /// The rate required, in Hz.
        expected: u32,
        /// The rate found, in Hz.
        found: u32,
    },
    /// A mixer has no source with this id.
    #[error("no mixer source with id {id}")]
    UnknownSource {
        /// The id asked for.
        id: usize,
    },
    /// A conference has no participant with this id.
    #[error("no conference participant {id}")]
    UnknownParticipant {
        /// The id asked for.
        id: u32,
    },
    /// A conference frame longer than the bridge's frame size.
    #[error("frame of {got} samples, the conference frame is {expected}")]
    FrameTooLong {
        /// The bridge's frame size, in samples.
        expected: usize,
        /// The length pushed, in samples.
        got: usize,
    },
}

/// Checks a sample rate (`> 0`).
pub(crate) fn check_rate(rate: u32) -> Result<u32, AudioError> {
    if rate == 0 {
        return Err(AudioError::InvalidRate { rate });
    }
    Ok(rate)
}

/// Checks an amplitude (`0.0..=1.0`, so not NaN).
pub(crate) fn check_amplitude(amplitude: f64) -> Result<f64, AudioError> {
    if !(0.0..=1.0).contains(&amplitude) {
        return Err(AudioError::InvalidAmplitude { amplitude });
    }
    Ok(amplitude)
}

/// Checks a tone frequency against the rate: finite, `> 0` and below the
/// Nyquist frequency `rate / 2`.
pub(crate) fn check_frequency(freq_hz: f64, rate: u32) -> Result<f64, AudioError> {
    let rate = check_rate(rate)?;
    if !(freq_hz > 0.0 && freq_hz < f64::from(rate) / 2.0) {
        return Err(AudioError::InvalidFrequency { freq_hz, rate });
    }
    Ok(freq_hz)
}
