//! [`CallRecorder`]: records both directions of a call in memory, frame by
//! frame, and writes them out as WAV files: each direction mono, both as
//! one stereo file (sent left, received right) and a mono mix.
//!
//! The two tracks are aligned at their first sample: the caller records
//! one frame each way per packet time, so sample `i` of one track was
//! sent when sample `i` of the other was received. Tracks grow without
//! bound (16 KiB per second per direction at 8 kHz); recording allocates as
//! a `Vec` grows. Files are written only by [`CallRecorder::write`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::analysis::samples_duration;
use super::error::{AudioError, check_rate};
use super::wav::{write_wav_mono, write_wav_stereo};

/// Where [`CallRecorder::write`] puts each file; `None` skips that file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordingPaths {
    /// The sent track, mono.
    pub sent: Option<PathBuf>,
    /// The received track, mono.
    pub received: Option<PathBuf>,
    /// Both tracks: sent on the left channel, received on the right.
    pub stereo: Option<PathBuf>,
    /// The average of both tracks, mono.
    pub mix: Option<PathBuf>,
}

impl RecordingPaths {
    /// All four files in `dir`: `sent.wav`, `received.wav`, `stereo.wav`
    /// and `mix.wav`.
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        Self {
            sent: Some(dir.join("sent.wav")),
            received: Some(dir.join("received.wav")),
            stereo: Some(dir.join("stereo.wav")),
            mix: Some(dir.join("mix.wav")),
        }
    }
}

/// What a recording holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordingSummary {
    /// Length of the longer track.
    pub duration: Duration,
    /// Samples in the sent track.
    pub sent_samples: usize,
    /// Samples in the received track.
    pub received_samples: usize,
}

/// Both directions of a call, as two in-memory tracks of mono 16-bit PCM.
#[derive(Debug, Clone)]
pub struct CallRecorder {
    rate: u32,
    sent: Vec<i16>,
    received: Vec<i16>,
}

impl CallRecorder {
    /// An empty recording at `rate` Hz.
    ///
    /// Errors: [`AudioError::InvalidRate`] for rate 0.
    pub fn new(rate: u32) -> Result<Self, AudioError> {
        Ok(Self {
            rate: check_rate(rate)?,
            sent: Vec::new(),
            received: Vec::new(),
        })
    }

    /// Sample rate in Hz.
    pub fn sample_rate(&self) -> u32 {
        self.rate
    }

    /// Appends a frame to the sent track.
    pub fn record_sent(&mut self, frame: &[i16]) {
        self.sent.extend_from_slice(frame);
    }

    /// Appends a frame to the received track.
    pub fn record_received(&mut self, frame: &[i16]) {
        self.received.extend_from_slice(frame);
    }

    /// The sent track.
    pub fn sent(&self) -> &[i16] {
        &self.sent
    }

    /// The received track.
    pub fn received(&self) -> &[i16] {
        &self.received
    }

    /// Both tracks mixed: sample by sample the average of sent and
    /// received (a missing sample of the shorter track is silence),
    /// rounded towards zero. Never clips.
    pub fn mix(&self) -> Vec<i16> {
        let len = self.sent.len().max(self.received.len());
        (0..len)
            .map(|i| {
                let s = i32::from(self.sent.get(i).copied().unwrap_or(0));
                let r = i32::from(self.received.get(i).copied().unwrap_or(0));
                // The average of two i16 is in range; clamp states it.
                ((s + r) / 2).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
            })
            .collect()
    }

    /// Lengths of the recording.
    pub fn summary(&self) -> RecordingSummary {
        let longest = self.sent.len().max(self.received.len());
        RecordingSummary {
            duration: samples_duration(longest, self.rate),
            sent_samples: self.sent.len(),
            received_samples: self.received.len(),
        }
    }

    /// Writes the files named in `paths` as 16-bit PCM WAV at the
    /// recording's rate, replacing existing files; returns the summary.
    /// The stereo file has the sent track on the left channel and the
    /// received track on the right, the shorter padded with silence.
    ///
    /// Errors: [`AudioError::Wav`] for the first file that cannot be
    /// written (files before it are written).
    pub fn write(&self, paths: &RecordingPaths) -> Result<RecordingSummary, AudioError> {
        if let Some(path) = &paths.sent {
            write_wav_mono(path, self.rate, &self.sent)?;
        }
        if let Some(path) = &paths.received {
            write_wav_mono(path, self.rate, &self.received)?;
        }
        if let Some(path) = &paths.stereo {
            write_wav_stereo(path, self.rate, &self.sent, &self.received)?;
        }
        if let Some(path) = &paths.mix {
            write_wav_mono(path, self.rate, &self.mix())?;
        }
        Ok(self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::wav::read_wav;
    use crate::audio::wav::tests::ScratchDir;

    fn recorder() -> CallRecorder {
        let mut rec = CallRecorder::new(8000).unwrap();
        // Two frames sent, three received.
        for _ in 0..2 {
            rec.record_sent(&[1000, -2000, i16::MAX, i16::MIN]);
        }
        for _ in 0..3 {
            rec.record_received(&[3000, 4000, i16::MAX, i16::MIN]);
        }
        rec
    }

    #[test]
    fn mix_averages_and_pads() {
        let rec = recorder();
        let mix = rec.mix();
        assert_eq!(mix.len(), 12);
        assert_eq!(&mix[..4], [2000, 1000, i16::MAX, i16::MIN]);
        assert_eq!(&mix[8..], [1500, 2000, 16383, -16384]);
    }

    #[test]
    fn writes_all_four_files() {
        let rec = recorder();
        let dir = ScratchDir::new("recorder");
        let summary = rec.write(&RecordingPaths::in_dir(&dir.0)).unwrap();
        assert_eq!(
            summary,
            RecordingSummary {
                duration: Duration::from_micros(1500),
                sent_samples: 8,
                received_samples: 12,
            }
        );
        assert_eq!(
            read_wav(dir.path("sent.wav")).unwrap(),
            (8000, 1, rec.sent().to_vec())
        );
        assert_eq!(
            read_wav(dir.path("received.wav")).unwrap(),
            (8000, 1, rec.received().to_vec())
        );
        assert_eq!(read_wav(dir.path("mix.wav")).unwrap(), (8000, 1, rec.mix()));

        let (rate, channels, stereo) = read_wav(dir.path("stereo.wav")).unwrap();
        assert_eq!((rate, channels, stereo.len()), (8000, 2, 24));
        let left: Vec<i16> = stereo.iter().step_by(2).copied().collect();
        let right: Vec<i16> = stereo.iter().skip(1).step_by(2).copied().collect();
        assert_eq!(&left[..8], rec.sent());
        assert_eq!(&left[8..], [0; 4]);
        assert_eq!(right, rec.received());
    }

    #[test]
    fn only_the_files_asked_for() {
        let rec = recorder();
        let dir = ScratchDir::new("recorder-some");
        let paths = RecordingPaths {
            stereo: Some(dir.path("call.wav")),
            ..RecordingPaths::default()
        };
        rec.write(&paths).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(&dir.0)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["call.wav"]);
        let missing_dir = RecordingPaths {
            mix: Some(dir.path("no/such/dir/mix.wav")),
            ..RecordingPaths::default()
        };
        assert!(matches!(
            rec.write(&missing_dir),
            Err(AudioError::Wav { .. })
        ));
    }
}
