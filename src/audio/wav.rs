//! WAV files (RIFF WAVE, through the `hound` crate): [`WavSource`] plays a
//! file held in memory, [`read_wav`] reads one whole, [`write_wav_mono`] and
//! [`write_wav_stereo`] write 16-bit PCM.
//!
//! Reading accepts 8, 16, 24 and 32-bit integer PCM and 32-bit float PCM
//! and converts to 16-bit: integers by shifting to 16 significant bits
//! (8-bit WAV is unsigned on disk; `hound` re-centres it), floats by
//! scaling `[-1.0, 1.0]` to `[-32768, 32768]` with saturation. Nothing is
//! resampled: a file's rate is reported, and [`WavSource::open_at`] refuses
//! another one. File I/O happens only in `open`, [`read_wav`] and the
//! writers; [`WavSource::fill`](AudioSource::fill) is a copy from memory.

use std::path::Path;

use super::error::{AudioError, check_rate};
use super::source::AudioSource;

/// Maps a `hound` error on `path` to [`AudioError`].
fn wav_error(path: &Path, err: hound::Error) -> AudioError {
    AudioError::Wav {
        path: path.to_path_buf(),
        message: err.to_string(),
    }
}

/// Reads the WAV file at `path` whole: its sample rate, its channel count
/// and its samples, interleaved by channel, converted to 16-bit.
///
/// Errors: [`AudioError::Wav`] when the file cannot be opened or parsed,
/// [`AudioError::UnsupportedWavFormat`] for a sample format other than
/// 8/16/24/32-bit integer or 32-bit float.
pub fn read_wav(path: impl AsRef<Path>) -> Result<(u32, u16, Vec<i16>), AudioError> {
    let (spec, samples) = read(path.as_ref())?;
    Ok((spec.sample_rate, spec.channels, samples))
}

/// Reads a WAV file whole: its format and its samples, interleaved,
/// converted to 16-bit.
fn read(path: &Path) -> Result<(hound::WavSpec, Vec<i16>), AudioError> {
    let mut reader = hound::WavReader::open(path).map_err(|e| wav_error(path, e))?;
    let spec = reader.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(unsupported(path, spec));
    }
    let samples = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => reader
            .samples::<i32>()
            .map(|s| s.map(|s| int_to_i16(s, bits)))
            .collect::<Result<Vec<_>, _>>(),
        (hound::SampleFormat::Float, 32) => reader
            .samples::<f32>()
            .map(|s| s.map(float_to_i16))
            .collect::<Result<Vec<_>, _>>(),
        _ => return Err(unsupported(path, spec)),
    }
    .map_err(|e| wav_error(path, e))?;
    Ok((spec, samples))
}

/// [`AudioError::UnsupportedWavFormat`] for a file of format `spec`.
fn unsupported(path: &Path, spec: hound::WavSpec) -> AudioError {
    AudioError::UnsupportedWavFormat {
        path: path.to_path_buf(),
        channels: spec.channels,
        bits_per_sample: spec.bits_per_sample,
        float: spec.sample_format == hound::SampleFormat::Float,
    }
}

/// An integer sample of `bits` (8..=32) significant bits as 16 bits.
fn int_to_i16(sample: i32, bits: u16) -> i16 {
    let value = if bits >= 16 {
        sample >> (bits - 16)
    } else {
        sample << (16 - bits)
    };
    // In range after the shift; saturate rather than wrap on a bad file.
    value.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

/// A float sample (full scale ±1.0) as 16 bits, saturating; NaN is 0.
fn float_to_i16(sample: f32) -> i16 {
    // `as` saturates and maps NaN to 0.
    (sample * 32768.0).round() as i16
}

/// Writes `samples` as a mono 16-bit PCM WAV file at `rate` Hz, replacing
/// any file at `path`.
///
/// Errors: [`AudioError::InvalidRate`] for rate 0, [`AudioError::Wav`]
/// when the file cannot be created or written.
pub fn write_wav_mono(
    path: impl AsRef<Path>,
    rate: u32,
    samples: &[i16],
) -> Result<(), AudioError> {
    write_wav(path.as_ref(), rate, 1, samples.iter().copied())
}

/// Writes a stereo 16-bit PCM WAV file at `rate` Hz, `left` and `right`
/// aligned at their first sample; the shorter channel is padded with
/// silence to the length of the longer.
///
/// Errors: as for [`write_wav_mono`].
pub fn write_wav_stereo(
    path: impl AsRef<Path>,
    rate: u32,
    left: &[i16],
    right: &[i16],
) -> Result<(), AudioError> {
    let frames = left.len().max(right.len());
    let interleaved = (0..frames).flat_map(|i| {
        [
            left.get(i).copied().unwrap_or(0),
            right.get(i).copied().unwrap_or(0),
        ]
    });
    write_wav(path.as_ref(), rate, 2, interleaved)
}

/// Writes interleaved 16-bit samples as a WAV file.
fn write_wav(
    path: &Path,
    rate: u32,
    channels: u16,
    samples: impl Iterator<Item = i16>,
) -> Result<(), AudioError> {
    let spec = hound::WavSpec {
        channels,
        sample_rate: check_rate(rate)?,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(|e| wav_error(path, e))?;
    for sample in samples {
        writer
            .write_sample(sample)
            .map_err(|e| wav_error(path, e))?;
    }
    writer.finalize().map_err(|e| wav_error(path, e))
}

/// A WAV file played from memory as a mono [`AudioSource`], once or in a
/// loop. Stereo files are downmixed to mono by averaging the channels.
#[derive(Debug, Clone)]
pub struct WavSource {
    rate: u32,
    samples: Vec<i16>,
    /// Next sample to play.
    position: usize,
    looping: bool,
}

impl WavSource {
    /// Reads the mono or stereo WAV file at `path` into memory, at its own
    /// sample rate. Plays once unless [`looping`](WavSource::looping).
    ///
    /// Errors: those of [`read_wav`], and
    /// [`AudioError::UnsupportedWavFormat`] for more than two channels.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, AudioError> {
        let path = path.as_ref();
        let (spec, samples) = read(path)?;
        let samples = match spec.channels {
            1 => samples,
            // Downmix: the average of left and right, which cannot overflow.
            2 => samples
                .chunks_exact(2)
                .map(|lr| ((i32::from(lr[0]) + i32::from(lr[1])) / 2) as i16)
                .collect(),
            _ => return Err(unsupported(path, spec)),
        };
        Ok(Self {
            rate: spec.sample_rate,
            samples,
            position: 0,
            looping: false,
        })
    }

    /// As [`WavSource::open`], requiring the file to be at `rate` Hz.
    ///
    /// Errors: those of `open`, and [`AudioError::RateMismatch`] when the
    /// file's rate is not `rate`.
    pub fn open_at(path: impl AsRef<Path>, rate: u32) -> Result<Self, AudioError> {
        let source = Self::open(path)?;
        if source.rate != rate {
            return Err(AudioError::RateMismatch {
                expected: rate,
                found: source.rate,
            });
        }
        Ok(source)
    }

    /// A source playing `samples` (mono) at `rate` Hz, as if read from a
    /// file. Errors: [`AudioError::InvalidRate`] for rate 0.
    pub fn from_samples(rate: u32, samples: Vec<i16>) -> Result<Self, AudioError> {
        Ok(Self {
            rate: check_rate(rate)?,
            samples,
            position: 0,
            looping: false,
        })
    }

    /// Whether to start over at the end instead of ending. An empty file
    /// ends even when looping.
    #[must_use]
    pub fn looping(mut self, looping: bool) -> Self {
        self.looping = looping;
        self
    }

    /// The whole (mono) signal.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// Index of the next sample to play.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Plays from the start again.
    pub fn rewind(&mut self) {
        self.position = 0;
    }
}

impl AudioSource for WavSource {
    fn sample_rate(&self) -> u32 {
        self.rate
    }

    fn fill(&mut self, out: &mut [i16]) -> usize {
        let mut written = 0;
        while written < out.len() {
            if self.position >= self.samples.len() {
                if !self.looping || self.samples.is_empty() {
                    break;
                }
                self.position = 0;
            }
            let chunk = (out.len() - written).min(self.samples.len() - self.position);
            out[written..written + chunk]
                .copy_from_slice(&self.samples[self.position..self.position + chunk]);
            written += chunk;
            self.position += chunk;
        }
        written
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fresh, empty directory under the system temp dir, unique to this
    /// process and call; removed on drop.
    pub(in crate::audio) struct ScratchDir(pub PathBuf);

    impl ScratchDir {
        pub(in crate::audio) fn new(tag: &str) -> Self {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "mediarelay-audio-{tag}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        pub(in crate::audio) fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for ScratchDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ramp(len: usize) -> Vec<i16> {
        (0..len).map(|i| (i as i16 - 50) * 300).collect()
    }

    #[test]
    fn mono_round_trip() {
        let dir = ScratchDir::new("wav-mono");
        let path = dir.path("ramp.wav");
        let samples = ramp(100);
        write_wav_mono(&path, 8000, &samples).unwrap();
        assert_eq!(read_wav(&path).unwrap(), (8000, 1, samples.clone()));

        let mut source = WavSource::open_at(&path, 8000).unwrap();
        assert_eq!(source.sample_rate(), 8000);
        let mut out = vec![0; 160];
        assert_eq!(source.fill(&mut out), 100);
        assert_eq!(&out[..100], &samples[..]);
        assert_eq!(source.fill(&mut out), 0);

        assert_eq!(
            WavSource::open_at(&path, 16000).unwrap_err(),
            AudioError::RateMismatch {
                expected: 16000,
                found: 8000
            }
        );
    }

    #[test]
    fn stereo_pads_and_downmixes() {
        let dir = ScratchDir::new("wav-stereo");
        let path = dir.path("lr.wav");
        write_wav_stereo(&path, 8000, &[100, 200, 300], &[-100, 0]).unwrap();
        let (rate, channels, samples) = read_wav(&path).unwrap();
        assert_eq!((rate, channels), (8000, 2));
        assert_eq!(samples, [100, -100, 200, 0, 300, 0]);
        let source = WavSource::open(&path).unwrap();
        assert_eq!(source.samples(), [0, 100, 150]);
    }

    #[test]
    fn other_sample_formats_convert_to_16_bit() {
        let dir = ScratchDir::new("wav-formats");
        let write = |name: &str, bits, format, samples: &dyn Fn(&mut hound::WavWriter<_>)| {
            let path = dir.path(name);
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: 16000,
                bits_per_sample: bits,
                sample_format: format,
            };
            let mut w = hound::WavWriter::create(&path, spec).unwrap();
            samples(&mut w);
            w.finalize().unwrap();
            path
        };
        let p8 = write("8.wav", 8, hound::SampleFormat::Int, &|w| {
            for s in [-128i8, 0, 127] {
                w.write_sample(s).unwrap();
            }
        });
        let p24 = write("24.wav", 24, hound::SampleFormat::Int, &|w| {
            for s in [-8_388_608i32, 256, 8_388_607] {
                w.write_sample(s).unwrap();
            }
        });
        let p32 = write("32.wav", 32, hound::SampleFormat::Int, &|w| {
            for s in [i32::MIN, 65536, i32::MAX] {
                w.write_sample(s).unwrap();
            }
        });
        let pf = write("f.wav", 32, hound::SampleFormat::Float, &|w| {
            for s in [-1.0f32, 0.5, 2.0] {
                w.write_sample(s).unwrap();
            }
        });
        assert_eq!(read_wav(&p8).unwrap().2, [-32768, 0, 32512]);
        assert_eq!(read_wav(&p24).unwrap().2, [-32768, 1, 32767]);
        assert_eq!(read_wav(&p32).unwrap().2, [-32768, 1, 32767]);
        assert_eq!(read_wav(&pf).unwrap().2, [-32768, 16384, 32767]);
        assert_eq!(WavSource::open(&pf).unwrap().sample_rate(), 16000);
    }

    #[test]
    fn looping_and_errors() {
        let mut source = WavSource::from_samples(8000, vec![1, 2, 3])
            .unwrap()
            .looping(true);
        let mut out = [0i16; 8];
        assert_eq!(source.fill(&mut out), 8);
        assert_eq!(out, [1, 2, 3, 1, 2, 3, 1, 2]);
        assert_eq!(source.position(), 2);

        let mut empty = WavSource::from_samples(8000, Vec::new())
            .unwrap()
            .looping(true);
        assert_eq!(empty.fill(&mut out), 0);

        let dir = ScratchDir::new("wav-errors");
        assert!(matches!(
            WavSource::open(dir.path("missing.wav")),
            Err(AudioError::Wav { .. })
        ));
        let garbage = dir.path("garbage.wav");
        std::fs::write(&garbage, b"not a wav file at all").unwrap();
        assert!(matches!(read_wav(&garbage), Err(AudioError::Wav { .. })));
        assert_eq!(
            write_wav_mono(dir.path("x.wav"), 0, &[]).unwrap_err(),
            AudioError::InvalidRate { rate: 0 }
        );
    }
}
