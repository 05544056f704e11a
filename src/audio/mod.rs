//! Sample-level audio building blocks around a media session: mono 16-bit
//! linear PCM (`i16`) at a sample rate given by the caller (8000 Hz for
//! G.711).
//!
//! What it owns:
//! - [`AudioSource`], the pull interface every generator and player
//!   implements;
//! - generators: [`Tone`] (sine, dual tone, ITU-T Q.23 DTMF) and [`Noise`]
//!   (seeded white noise);
//! - WAV files through `hound`: [`WavSource`], [`read_wav`],
//!   [`write_wav_mono`], [`write_wav_stereo`];
//! - [`Mixer`], summing sources with per-source gain, and the N-1
//!   conference bridge [`ConferenceMixer`];
//! - [`CallRecorder`], both directions of a call to mono, stereo and mixed
//!   WAV files;
//! - measurement: [`analyze`] (level, peak, dominant frequency),
//!   [`goertzel_power`], [`detect_dtmf`].
//!
//! Contract: sans-IO, like the protocol cores. No threads, clocks or
//! sockets; a caller paces sources frame by frame. File I/O happens only in
//! the WAV functions named above and [`CallRecorder::write`]. Sums are
//! formed in `i32` and saturate to `i16` (never wrap); nothing panics on
//! any input. Per frame, [`Tone`], [`Noise`], [`WavSource`] and
//! [`ConferenceMixer`] (after `join`) never allocate, and [`Mixer`] not
//! after its first fill of a given size; [`CallRecorder`] grows its tracks
//! and [`analyze`] allocates its FFT buffers. No resampling anywhere: a
//! rate mismatch is an error ([`AudioError::RateMismatch`]).

pub mod analysis;
pub mod conference;
pub mod error;
pub mod mixer;
pub mod recorder;
pub mod source;
pub mod tone;
pub mod wav;

pub use analysis::{Analysis, analyze, detect_dtmf, goertzel_power, samples_duration};
pub use conference::{ConferenceMixer, ParticipantId};
pub use error::AudioError;
pub use mixer::{Mixer, mix_into, saturate};
pub use recorder::{CallRecorder, RecordingPaths, RecordingSummary};
pub use source::AudioSource;
pub use tone::{Noise, Tone, dtmf_frequencies};
pub use wav::{WavSource, read_wav, write_wav_mono, write_wav_stereo};
