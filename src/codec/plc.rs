//! Packet loss concealment for G.711 at 8 kHz, after the method of
//! ITU-T G.711 Appendix I (pitch waveform substitution); an independent
//! implementation, not the reference code.
//!
//! [`Concealer`] follows one decoded stream. Every frame that arrived goes
//! through [`Concealer::good_frame`], which records it as history; every
//! missing frame is produced by [`Concealer::conceal`]:
//!
//! - at the start of an erasure the pitch period is estimated by
//!   normalised autocorrelation of the last 20 ms of history over lags of
//!   5 to 15 ms (40 to 120 samples), and the history is frozen as the
//!   source of the substitute waveform (G.711 App. I §I.2.2). It holds
//!   received audio only: App. I also writes the substitute into its
//!   history, so an erasure soon after another starts from the synthetic
//!   signal; here it starts from the last received audio, and one buffer
//!   does the work of two (an endpoint's footprint counts);
//! - the substitute repeats the last pitch period for the first 10 ms,
//!   then the last two, then the last three periods (fewer repeats of one
//!   short period sound less buzzy, App. I §I.2.3); each join between
//!   repeats, and each switch to more periods, is smoothed by an
//!   overlap-add over a quarter of the pitch period;
//! - after the first 10 ms the substitute is attenuated linearly by 20 %
//!   per 10 ms, so it is silent from 60 ms of erasure on (App. I §I.2.4);
//! - the first good frame after an erasure starts with an overlap-add from
//!   the continued substitute into the real signal, over a quarter pitch
//!   period plus 4 ms per further 10 ms of erasure, at most 10 ms
//!   (App. I §I.2.5), so that there is no click at the end of the gap.
//!
//! Frames may be of any length (10, 20, 30 ms or odd sizes). Unlike the
//! reference, nothing is delayed: history is only modified ahead, in the
//! first samples of the frame after an erasure, and the first repeat
//! starts one pitch period back so that it continues the last real sample
//! without a join.
//!
//! Contract: no allocation after [`Concealer::new`] (two buffers of
//! [`HISTORY`] samples), no panics, O(frame) per call plus one pitch
//! search (81 lags of 160 samples) per erasure.

/// Sample rate in Hz (G.711).
pub const SAMPLE_RATE: u32 = 8000;
/// Shortest pitch period searched: 5 ms.
pub const PITCH_MIN: usize = 40;
/// Longest pitch period searched: 15 ms.
pub const PITCH_MAX: usize = 120;
/// History kept: three longest periods plus a quarter, 48.75 ms.
pub const HISTORY: usize = 3 * PITCH_MAX + PITCH_MAX / 4;

/// Samples of history correlated in the pitch search: 20 ms.
const CORR_LEN: usize = 160;
/// 10 ms in samples: the steps of the repeat and attenuation schedule.
const STEP: usize = 80;
/// Attenuation per [`STEP`] after the first one.
const ATTENUATION_PER_STEP: f32 = 0.2;
/// Erased samples after which the output is silent: 60 ms.
const SILENT_AFTER: usize = STEP + 5 * STEP;
/// Most pitch periods repeated.
const MAX_PERIODS: usize = 3;
/// Longest overlap-add into the first good frame: 10 ms.
const MAX_OLA: usize = STEP;
/// Growth of that overlap-add per further 10 ms of erasure: 4 ms.
const OLA_GROWTH: usize = 32;

/// Concealment state of one G.711 stream (8 kHz, 16-bit linear PCM).
#[derive(Debug, Clone)]
pub struct Concealer {
    /// The last [`HISTORY`] samples played, oldest first.
    history: Box<[i16]>,
    /// Pitch period of the current erasure, in samples.
    pitch: usize,
    /// Consecutive samples concealed so far.
    erased: usize,
}

impl Concealer {
    /// A concealer with silent history.
    pub fn new() -> Self {
        Concealer {
            history: vec![0; HISTORY].into_boxed_slice(),
            pitch: PITCH_MIN,
            erased: 0,
        }
    }

    /// Records a frame that arrived. After an erasure its first samples are
    /// overlap-added with the continued substitute (G.711 App. I §I.2.5).
    pub fn good_frame(&mut self, pcm: &mut [i16]) {
        if self.erased > 0 {
            let further = (self.erased - 1) / STEP;
            let ola = (self.pitch / 4 + OLA_GROWTH * further)
                .min(MAX_OLA)
                .min(pcm.len());
            for (j, sample) in pcm.iter_mut().take(ola).enumerate() {
                let w = (j + 1) as f32 / (ola + 1) as f32;
                let synth = self.synth(self.erased + j);
                *sample = to_i16(synth * (1.0 - w) + f32::from(*sample) * w);
            }
            self.erased = 0;
        }
        self.remember(pcm);
    }

    /// Fills `out` with the substitute for missing samples.
    pub fn conceal(&mut self, out: &mut [i16]) {
        if self.erased == 0 {
            self.start_erasure();
        }
        for sample in out.iter_mut() {
            *sample = to_i16(self.synth(self.erased));
            self.erased = self.erased.saturating_add(1);
        }
        // The history stays frozen during an erasure: it is the source of
        // the substitute (one buffer where G.711 App. I keeps two).
    }

    /// Consecutive samples concealed since the last good frame.
    pub fn erased_samples(&self) -> usize {
        self.erased
    }

    /// The pitch period estimated for the current or last erasure, in
    /// samples.
    pub fn pitch(&self) -> usize {
        self.pitch
    }

    /// Freezes the history and estimates the pitch (G.711 App. I §I.2.2).
    fn start_erasure(&mut self) {
        self.pitch = estimate_pitch(&self.history);
    }

    /// Attenuated substitute sample `n` of the erasure.
    fn synth(&self, n: usize) -> f32 {
        if n >= SILENT_AFTER {
            return 0.0;
        }
        // App. I §I.2.4: full level for 10 ms, then -20 % per 10 ms.
        let gain = if n < STEP {
            1.0
        } else {
            1.0 - ATTENUATION_PER_STEP * (n - STEP) as f32 / STEP as f32
        };
        let periods = (n / STEP + 1).min(MAX_PERIODS);
        let quarter = self.pitch / 4;
        let switched = periods > 1 && n - (periods - 1) * STEP < quarter;
        let value = if switched {
            // Cross-fade from the previous number of periods (App. I
            // §I.2.3).
            let j = n - (periods - 1) * STEP;
            let w = (j + 1) as f32 / (quarter + 1) as f32;
            self.repeat(periods - 1, n) * (1.0 - w) + self.repeat(periods, n) * w
        } else {
            self.repeat(periods, n)
        };
        value * gain
    }

    /// Sample `n` of the periodic repeat of the last `periods` pitch
    /// periods of the frozen history. The last quarter period of the
    /// repeated segment fades into what preceded its start, so each
    /// repeat flows into the next.
    fn repeat(&self, periods: usize, n: usize) -> f32 {
        let len = periods * self.pitch;
        let quarter = self.pitch / 4;
        // `len + quarter <= HISTORY`: periods <= 3, pitch <= PITCH_MAX.
        let base = HISTORY - len;
        let p = n % len;
        let value = f32::from(self.history[base + p]);
        if p + quarter < len {
            return value;
        }
        let j = p + quarter - len;
        let w = (j + 1) as f32 / (quarter + 1) as f32;
        value * (1.0 - w) + f32::from(self.history[base - quarter + j]) * w
    }

    /// Appends samples to the history.
    fn remember(&mut self, pcm: &[i16]) {
        let keep = pcm.len().min(HISTORY);
        self.history.copy_within(keep.., 0);
        self.history[HISTORY - keep..].copy_from_slice(&pcm[pcm.len() - keep..]);
    }
}

impl Default for Concealer {
    fn default() -> Self {
        Self::new()
    }
}

/// The lag in `PITCH_MIN..=PITCH_MAX` that maximises the normalised
/// autocorrelation of the last [`CORR_LEN`] samples of `x` (G.711 App. I
/// §I.2.2); `PITCH_MIN` for silence.
fn estimate_pitch(x: &[i16]) -> usize {
    let end = x.len();
    let start = end - CORR_LEN;
    let recent = &x[start..end];
    let mut best = (PITCH_MIN, f32::MIN);
    for lag in PITCH_MIN..=PITCH_MAX {
        let past = &x[start - lag..end - lag];
        let (mut cross, mut energy) = (0.0f32, 0.0f32);
        for (&a, &b) in recent.iter().zip(past) {
            let (a, b) = (f32::from(a), f32::from(b));
            cross += a * b;
            energy += b * b;
        }
        if energy <= 0.0 {
            continue;
        }
        let score = cross / energy.sqrt();
        if score > best.1 {
            best = (lag, score);
        }
    }
    best.0
}

/// Rounds and saturates to a 16-bit sample.
fn to_i16(x: f32) -> i16 {
    // The float-to-int cast saturates; the clamp documents the range.
    x.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f32, amp: f32, n: usize) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f32 / SAMPLE_RATE as f32;
                (amp * (2.0 * std::f32::consts::PI * freq * t).sin()).round() as i16
            })
            .collect()
    }

    fn energy(x: &[i16]) -> f64 {
        x.iter().map(|&s| f64::from(s) * f64::from(s)).sum()
    }

    fn correlation(a: &[i16], b: &[i16]) -> f64 {
        let cross: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| f64::from(x) * f64::from(y))
            .sum();
        cross / (energy(a) * energy(b)).sqrt()
    }

    /// Runs `signal` in frames of `frame`, erasing the frames in `lost`;
    /// returns the output.
    fn run(signal: &[i16], frame: usize, lost: &[usize]) -> (Vec<i16>, Concealer) {
        let mut plc = Concealer::new();
        let mut out = Vec::new();
        for (i, chunk) in signal.chunks(frame).enumerate() {
            let mut buf = chunk.to_vec();
            if lost.contains(&i) {
                plc.conceal(&mut buf);
            } else {
                plc.good_frame(&mut buf);
            }
            out.extend_from_slice(&buf);
        }
        (out, plc)
    }

    #[test]
    fn sine_gap_is_concealed_closely() {
        for (freq, frame) in [(300.0, 160), (440.0, 80), (173.0, 240), (1000.0, 160)] {
            let signal = sine(freq, 8000.0, 4000);
            let lost = 10;
            let (out, plc) = run(&signal, frame, &[lost]);
            let gap = lost * frame;
            // First 5 ms of the gap: nearly the true waveform.
            let head = gap..gap + 40;
            let c = correlation(&out[head.clone()], &signal[head.clone()]);
            assert!(c > 0.95, "{freq} Hz: correlation {c}");
            let err: Vec<i16> = out[head.clone()]
                .iter()
                .zip(&signal[head.clone()])
                .map(|(&a, &b)| a.saturating_sub(b))
                .collect();
            let snr = 10.0 * (energy(&signal[head]) / energy(&err).max(1.0)).log10();
            assert!(snr > 10.0, "{freq} Hz: SNR {snr} dB");
            // Over the whole gap the level stays close to the original.
            let whole = gap..gap + frame;
            let ratio = energy(&out[whole.clone()]) / energy(&signal[whole]);
            assert!(
                (0.5..1.5).contains(&ratio),
                "{freq} Hz: energy ratio {ratio}"
            );
            assert!((PITCH_MIN..=PITCH_MAX).contains(&plc.pitch()));
            assert_eq!(plc.erased_samples(), 0);
        }
    }

    #[test]
    fn pitch_of_a_periodic_signal() {
        // 200 Hz: a 40-sample period, found at a multiple of it.
        let signal = sine(200.0, 5000.0, 800);
        let mut plc = Concealer::new();
        plc.good_frame(&mut signal.clone());
        plc.conceal(&mut [0; 80]);
        assert_eq!(plc.pitch() % 40, 0, "pitch {}", plc.pitch());
    }

    #[test]
    fn no_click_at_the_end_of_a_gap() {
        let signal = sine(300.0, 8000.0, 4000);
        for lost in [&[10][..], &[10, 11][..], &[10, 11, 12, 13][..]] {
            let (out, _) = run(&signal, 160, lost);
            // The largest step between samples stays that of the sine
            // (about 2 * pi * 300 / 8000 * 8000 = 1885) with some slack.
            let max_step = out
                .windows(2)
                .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
                .max()
                .unwrap_or(0);
            assert!(max_step < 3000, "lost {lost:?}: step {max_step}");
        }
    }

    #[test]
    fn long_erasure_fades_to_silence() {
        let signal = sine(250.0, 10000.0, 1600);
        let mut plc = Concealer::new();
        plc.good_frame(&mut signal.clone());
        let mut out = vec![0i16; 800];
        for chunk in out.chunks_mut(80) {
            plc.conceal(chunk);
        }
        let step_energy: Vec<f64> = out.chunks(80).map(energy).collect();
        // Full level for 10 ms, then falling, silent from 60 ms.
        assert!(step_energy[0] > 0.3 * energy(&signal[..80]));
        assert!(
            step_energy.windows(2).take(5).skip(1).all(|w| w[1] < w[0]),
            "{step_energy:?}"
        );
        assert!(out[SILENT_AFTER..].iter().all(|&s| s == 0));
        assert_eq!(plc.erased_samples(), 800);
        // The next good frame fades in from silence, without a jump.
        let mut next = vec![10000i16; 160];
        plc.good_frame(&mut next);
        assert!(next[0].abs() < 1000, "{}", next[0]);
        assert_eq!(next[159], 10000);
    }

    #[test]
    fn empty_odd_and_long_frames_never_panic() {
        let mut plc = Concealer::default();
        plc.conceal(&mut []);
        plc.good_frame(&mut []);
        plc.conceal(&mut [0; 1]);
        plc.good_frame(&mut [i16::MAX; 7]);
        plc.conceal(&mut [0; 161]);
        plc.good_frame(&mut [i16::MIN; 3]);
        let mut big = vec![i16::MIN; 1001];
        plc.good_frame(&mut big);
        plc.conceal(&mut big);
        let mut huge = vec![0; 100_000];
        plc.conceal(&mut huge);
        assert!(huge[SILENT_AFTER..].iter().all(|&s| s == 0));
        plc.good_frame(&mut [1; 13]);
        assert_eq!(plc.erased_samples(), 0);
    }

    #[test]
    fn silence_history_conceals_silence() {
        let mut plc = Concealer::new();
        let mut out = [5i16; 160];
        plc.conceal(&mut out);
        assert!(out.iter().all(|&s| s == 0));
    }

    #[test]
    fn no_allocation_after_new() {
        let mut plc = Concealer::new();
        let h = plc.history.as_ptr();
        let signal = sine(300.0, 8000.0, 2400);
        for (i, chunk) in signal.chunks(80).enumerate() {
            let mut buf = chunk.to_vec();
            if i % 3 == 0 {
                plc.conceal(&mut buf);
            } else {
                plc.good_frame(&mut buf);
            }
        }
        assert_eq!(plc.history.as_ptr(), h);
        assert_eq!(plc.history.len(), HISTORY);
    }
}
