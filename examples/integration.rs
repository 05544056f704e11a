//! The media builder among the other parts of a softphone, as the Go
//! `integration` example sketched them, each over real calls on
//! 127.0.0.1:
//!
//! - (a) audio sources: a sine, white noise and a WAV file played into a
//!   call, and what the far end decoded analysed;
//! - (b) two sources mixed into one call;
//! - (c) recording both tracks of a call to WAV files, then analysing the
//!   file read back;
//! - (d) a transcoding bridge between a PCMU-only and a PCMA-only party,
//!   audio and DTMF both ways;
//! - (e) the SIP mapping, with the call it describes really run;
//! - (f) monitoring: live counters of three calls and a Prometheus
//!   snapshot;
//! - (g) a pcap capture of one call, read back and checked against the
//!   session's counters.
//!
//! ```text
//! cargo run --release --example integration            # the seed's timings
//! cargo run --release --example integration -- --quick # same steps, short
//! ```
//!
//! Files go to a directory under the system temporary directory (kept in
//! full mode, removed in quick mode). Lines starting with `## ` are
//! `key=value` figures for scripts; the process exits non-zero, with a
//! message on stderr, when a step or a self-check fails.

mod report;

use report::{Pacer, Report};
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mediarelay::audio::{
    AudioSource, CallRecorder, Mixer, Noise, RecordingPaths, Tone, WavSource, analyze,
    goertzel_power, read_wav, write_wav_mono,
};
use mediarelay::builder::{
    BuilderManager, ManagerConfig, MediaSession, MediaStatistics, StartOptions, TranscodingBridge,
};
use mediarelay::media::{MediaEvent, SessionState};
use mediarelay::sdp::Direction;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

const FRAME: usize = 160;
const RATE: u32 = 8000;

fn main() -> ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    let mut report = Report::default();
    match run(quick, &mut report) {
        Ok(()) => report.finish("integration"),
        Err(e) => {
            eprintln!("integration: step failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(quick: bool, report: &mut Report) -> Result<()> {
    println!(
        "Integration example ({} mode)",
        if quick { "quick" } else { "full" }
    );
    let mgr = BuilderManager::new(ManagerConfig {
        local_ip: "127.0.0.1".parse()?,
        min_port: 45000,
        max_port: 46000,
        max_concurrent_builders: 100,
        // RTCP every 500 ms (randomised) rather than the default 5 s, so
        // that section (f) has round-trip times measured within a second.
        rtcp_interval: Duration::from_millis(500),
        ..ManagerConfig::default()
    })?;
    let dir = std::env::temp_dir().join(format!("mediarelay-integration-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!(
        "Manager: ports 45000-46000, up to 100 builders, RTCP every 500 ms (randomised); \
         files in {}",
        dir.display()
    );
    let mut calls = Calls::new(&mgr);
    sources(&mut calls, &dir, quick, report)?;
    mixing(&mut calls, quick, report)?;
    recording(&mut calls, &dir, quick, report)?;
    bridge(&mgr, quick, report)?;
    sip(&mut calls, quick, report)?;
    monitoring(&mut calls, quick, report)?;
    pcap(&mut calls, &dir, quick, report)?;
    mgr.shutdown();
    if quick {
        std::fs::remove_dir_all(&dir)?;
        println!("\n(quick mode: {} removed)", dir.display());
    } else {
        println!("\nFiles kept in {}", dir.display());
    }
    Ok(())
}

// ------------------------------------------------------------------ calls

/// A call between two builders of the same manager: `id` offers, `id-remote`
/// answers; both sessions started.
struct Call {
    id: String,
    a: MediaSession,
    b: MediaSession,
}

/// Creates and ends calls, counting them.
struct Calls<'m> {
    mgr: &'m BuilderManager,
    created: u64,
    ended: u64,
}

impl<'m> Calls<'m> {
    fn new(mgr: &'m BuilderManager) -> Self {
        Calls {
            mgr,
            created: 0,
            ended: 0,
        }
    }

    fn create(&mut self, id: &str, caller: &StartOptions) -> Result<Call> {
        let x = self.mgr.create_builder(id)?;
        let y = self.mgr.create_builder(&format!("{id}-remote"))?;
        y.process_offer(&x.create_offer()?)?;
        x.process_answer(&y.create_answer()?)?;
        let (Some(a), Some(b)) = (x.media_session(), y.media_session()) else {
            return Err(format!("{id}: no media session").into());
        };
        a.start_with(caller)?;
        b.start()?;
        self.created += 1;
        Ok(Call {
            id: id.to_owned(),
            a,
            b,
        })
    }

    fn end(&mut self, call: Call) -> Result<()> {
        call.a.stop()?;
        call.b.stop()?;
        self.mgr.release_builder(&call.id);
        self.mgr.release_builder(&format!("{}-remote", call.id));
        self.ended += 1;
        Ok(())
    }
}

/// What a source played into a call produced.
struct Segment {
    frames: u64,
    sent: Vec<i16>,
    packets_sent: u64,
    packets_received: u64,
    /// Decoded audio from packets (concealment left out).
    heard: Vec<i16>,
    /// Every frame the far end played, concealment included.
    played: Vec<i16>,
    concealed: u64,
}

/// Takes the waiting events of `s` into `seg`.
fn drain(s: &MediaSession, seg: &mut Segment) {
    while let Some(ev) = s.try_recv() {
        if let MediaEvent::Audio(f) = ev.event {
            seg.played.extend_from_slice(&f.samples);
            if f.concealed {
                seg.concealed += 1;
            } else {
                seg.heard.extend_from_slice(&f.samples);
            }
        }
    }
}

/// Plays `src` into the call from the caller, one frame per ptime, until
/// it ends (the last frame padded with silence), then lets 200 ms of
/// playout drain at the callee.
fn play(call: &Call, src: &mut dyn AudioSource) -> Result<Segment> {
    if src.sample_rate() != RATE {
        return Err(format!("source at {} Hz, the call is at {RATE}", src.sample_rate()).into());
    }
    let (a0, b0) = (call.a.statistics(), call.b.statistics());
    let mut seg = Segment {
        frames: 0,
        sent: Vec::new(),
        packets_sent: 0,
        packets_received: 0,
        heard: Vec::new(),
        played: Vec::new(),
        concealed: 0,
    };
    let mut frame = [0i16; FRAME];
    let mut pacer = Pacer::new();
    loop {
        let n = src.fill(&mut frame);
        if n == 0 {
            break;
        }
        frame[n..].fill(0);
        call.a.send_audio(&frame)?;
        seg.sent.extend_from_slice(&frame);
        seg.frames += 1;
        drain(&call.b, &mut seg);
        pacer.tick();
        if n < FRAME {
            break;
        }
    }
    for _ in 0..10 {
        drain(&call.b, &mut seg);
        pacer.tick();
    }
    drain(&call.b, &mut seg);
    let (a1, b1) = (call.a.statistics(), call.b.statistics());
    seg.packets_sent = a1.audio_packets_sent - a0.audio_packets_sent;
    seg.packets_received = audio_received(&b1) - audio_received(&b0);
    Ok(seg)
}

fn audio_received(s: &MediaStatistics) -> u64 {
    s.packets_received - s.dtmf_packets_received
}

fn hz(f: Option<f64>) -> String {
    f.map_or("none".into(), |f| format!("{f:.1} Hz"))
}

fn db(p: f64) -> f64 {
    10.0 * p.max(1e-3).log10()
}

fn within(f: Option<f64>, want: f64, share: f64) -> bool {
    f.is_some_and(|f| (f - want).abs() <= want * share)
}

// ---------------------------------------------------------- (a) sources

/// The envelope of `samples`: RMS per 10 ms, as a signal at 100 Hz.
fn envelope(samples: &[i16]) -> Vec<i16> {
    samples
        .chunks(80)
        .map(|c| {
            let e: f64 = c.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>();
            (e / c.len() as f64).sqrt().min(32767.0) as i16
        })
        .collect()
}

fn sources(calls: &mut Calls, dir: &Path, quick: bool, report: &mut Report) -> Result<()> {
    println!("\n=== (a) Audio sources into a call ===");
    let call = calls.create("demo-audio-sources", &StartOptions::default())?;
    let secs = |full: f64, q: f64| Duration::from_secs_f64(if quick { q } else { full });

    // A WAV file of a 440 Hz tone under a 3 Hz envelope, written first.
    let wav_len = secs(3.0, 1.0);
    let n = (wav_len.as_secs_f64() * f64::from(RATE)) as usize;
    let samples: Vec<i16> = (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(RATE);
            let env = 0.5 - 0.5 * (std::f64::consts::TAU * 3.0 * t).cos();
            (0.3 * 32767.0 * env * (std::f64::consts::TAU * 440.0 * t).sin()) as i16
        })
        .collect();
    let wav_path = dir.join("tone_440hz_3hz_envelope.wav");
    write_wav_mono(&wav_path, RATE, &samples)?;
    println!(
        "Wrote {} ({} bytes, {:.1} s, 8 kHz mono 16-bit)",
        wav_path.display(),
        std::fs::metadata(&wav_path)?.len(),
        wav_len.as_secs_f64()
    );

    let mut list: Vec<(&str, Box<dyn AudioSource>)> = vec![
        (
            "sine 440 Hz at 0.3 FS",
            Box::new(Tone::sine(440.0, 0.3, RATE)?.with_duration(secs(2.0, 1.0))),
        ),
        (
            "white noise at 0.1 FS",
            Box::new(Noise::white(0.1, 7, RATE)?.with_duration(secs(1.0, 0.5))),
        ),
        (
            "the WAV file",
            Box::new(WavSource::open_at(&wav_path, RATE)?),
        ),
    ];
    println!(
        "What the callee decoded (RMS in dBFS; dominant: strongest spectral peak, none for noise):"
    );
    println!(
        "  {:<22} {:>7} {:>6} {:>6} {:>6} {:>10} {:>10} {:>6} {:>10}",
        "source", "seconds", "frames", "sent", "rcvd", "sent RMS", "rcvd RMS", "peak", "dominant"
    );
    let mut ok = [false; 3];
    let mut envelope_hz = None;
    for (k, (name, src)) in list.iter_mut().enumerate() {
        let seg = play(&call, src.as_mut())?;
        let sent = analyze(&seg.sent, RATE);
        let got = analyze(&seg.heard, RATE);
        println!(
            "  {:<22} {:>7.2} {:>6} {:>6} {:>6} {:>10.1} {:>10.1} {:>6} {:>10}",
            name,
            sent.duration.as_secs_f64(),
            seg.frames,
            seg.packets_sent,
            seg.packets_received,
            sent.rms_dbfs,
            got.rms_dbfs,
            got.peak,
            hz(got.dominant_frequency)
        );
        let arrived = seg.packets_sent > 0 && seg.packets_received == seg.packets_sent;
        ok[k] = arrived
            && match k {
                0 => within(got.dominant_frequency, 440.0, 0.01),
                1 => got.dominant_frequency.is_none() && (got.rms_dbfs - sent.rms_dbfs).abs() < 1.0,
                _ => {
                    envelope_hz = analyze(&envelope(&seg.heard), 100).dominant_frequency;
                    within(got.dominant_frequency, 440.0, 0.01) && within(envelope_hz, 3.0, 0.1)
                }
            };
    }
    println!(
        "  the WAV's envelope as received (RMS per 10 ms, its dominant frequency): {}",
        hz(envelope_hz)
    );
    println!(
        "  frames: 20 ms frames written to the caller's session; sent/rcvd: audio RTP packets \
         the caller sent and the callee received"
    );
    calls.end(call)?;
    report.figure(
        "wav_envelope_hz",
        envelope_hz.map_or("none".into(), |f| format!("{f:.2}")),
        "envelope frequency of the WAV as the callee decoded it (3 Hz written)",
    );
    report.check("sine: every packet arrived, heard at 440 Hz", ok[0]);
    report.check(
        "noise: every packet arrived, no dominant frequency, same level",
        ok[1],
    );
    report.check(
        "WAV: every packet arrived, 440 Hz under a 3 Hz envelope",
        ok[2],
    );
    Ok(())
}

// ----------------------------------------------------------- (b) mixing

fn mixing(calls: &mut Calls, quick: bool, report: &mut Report) -> Result<()> {
    println!("\n=== (b) Two sources mixed into one call ===");
    let call = calls.create("demo-mixing", &StartOptions::default())?;
    let d = Duration::from_millis(if quick { 500 } else { 1000 });
    let mut mixer = Mixer::new(RATE)?.ends_when_empty(true);
    mixer.add(Box::new(Tone::sine(440.0, 0.25, RATE)?.with_duration(d)))?;
    mixer.add(Box::new(Tone::sine(1000.0, 0.25, RATE)?.with_duration(d)))?;
    let seg = play(&call, &mut mixer)?;
    let p: Vec<(f64, f64)> = [440.0, 1000.0, 700.0]
        .iter()
        .map(|&f| (f, goertzel_power(&seg.heard, f, RATE)))
        .collect();
    println!(
        "Mixer of 440 Hz and 1000 Hz (0.25 FS each) for {} ms: {} packets sent, {} received",
        d.as_millis(),
        seg.packets_sent,
        seg.packets_received
    );
    println!("Power in what the callee decoded (Goertzel, dB): ");
    for (f, pw) in &p {
        println!(
            "  {f:>6.0} Hz: {:5.1} dB{}",
            db(*pw),
            if *f == 700.0 {
                " (control: not sent)"
            } else {
                ""
            }
        );
    }
    calls.end(call)?;
    let both = p[0].1 > 1e5 && p[1].1 > 1e5 && p[2].1 < 1e4;
    report.figure(
        "mix_both_heard",
        both,
        "440 Hz and 1000 Hz both above 50 dB at the callee, 700 Hz below 40 dB",
    );
    report.check("both mixed tones crossed the call", both);
    Ok(())
}

// -------------------------------------------------------- (c) recording

fn recording(calls: &mut Calls, dir: &Path, quick: bool, report: &mut Report) -> Result<()> {
    println!("\n=== (c) Recording a call ===");
    let call = calls.create("demo-recording", &StartOptions::default())?;
    let d = Duration::from_millis(if quick { 1000 } else { 3000 });
    let mut tone = Tone::sine(440.0, 0.3, RATE)?.with_duration(d);
    let seg = play(&call, &mut tone)?;
    calls.end(call)?;
    let mut rec = CallRecorder::new(RATE)?;
    rec.record_sent(&seg.sent);
    rec.record_received(&seg.played);
    let paths = RecordingPaths::in_dir(dir);
    let summary = rec.write(&paths)?;
    println!(
        "Recorded {} ms (the longer track): what the caller sent ({} samples) and every frame \
         the callee played until 200 ms after the caller's last one ({} samples: {} frames \
         decoded from packets and {} of concealment, the jitter buffer filling the time after \
         the last packet)",
        summary.duration.as_millis(),
        summary.sent_samples,
        summary.received_samples,
        seg.heard.len() / FRAME,
        seg.concealed
    );
    for p in [&paths.sent, &paths.received, &paths.stereo, &paths.mix]
        .into_iter()
        .flatten()
    {
        println!("  {} ({} bytes)", p.display(), std::fs::metadata(p)?.len());
    }
    let received: PathBuf = paths.received.clone().ok_or("no received path")?;
    let (rate, channels, samples) = read_wav(&received)?;
    let a = analyze(&samples, rate);
    let (_, stereo_channels, _) = read_wav(paths.stereo.as_ref().ok_or("no stereo path")?)?;
    println!(
        "received.wav read back: {rate} Hz, {channels} channel(s), {:.2} s, RMS {:.1} dBFS, peak {}, tone {}",
        a.duration.as_secs_f64(),
        a.rms_dbfs,
        a.peak,
        hz(a.dominant_frequency)
    );
    println!("stereo.wav has {stereo_channels} channels (left: sent, right: received)");
    let tone_hz = a.dominant_frequency.unwrap_or(0.0);
    report.figure(
        "recorded_tone_hz",
        format!("{tone_hz:.2}"),
        "dominant frequency of received.wav read back from disk (440 Hz sent)",
    );
    report.figure(
        "recorded_seconds",
        format!("{:.2}", a.duration.as_secs_f64()),
        "length of received.wav",
    );
    report.check(
        "recorded tone within 1% of 440 Hz",
        within(a.dominant_frequency, 440.0, 0.01),
    );
    report.check(
        "recording files as expected (mono received, stereo both)",
        rate == RATE && channels == 1 && stereo_channels == 2 && a.rms_dbfs > -20.0,
    );
    Ok(())
}

// ----------------------------------------------------------- (d) bridge

fn bridge(mgr: &BuilderManager, quick: bool, report: &mut Report) -> Result<()> {
    println!("\n=== (d) Transcoding bridge: PCMU-only alice, PCMA-only bob ===");
    let alice = mgr.create_builder("transcoding-alice")?;
    alice.set_payload_types(&[0])?;
    let leg_a = mgr.create_builder("transcoding-bridge-a")?;
    leg_a.process_offer(&alice.create_offer()?)?;
    alice.process_answer(&leg_a.create_answer()?)?;
    let bob = mgr.create_builder("transcoding-bob")?;
    bob.set_payload_types(&[8])?;
    let leg_b = mgr.create_builder("transcoding-bridge-b")?;
    leg_b.process_offer(&bob.create_offer()?)?;
    bob.process_answer(&leg_b.create_answer()?)?;
    let codec = |b: &mediarelay::builder::Builder| {
        b.media_streams()
            .first()
            .and_then(|s| s.codec.clone())
            .unwrap_or_default()
    };
    println!(
        "alice <-> bridge leg A: {}; bridge leg B <-> bob: {}",
        codec(&alice),
        codec(&bob)
    );
    let mut s = Vec::new();
    for b in [&alice, &leg_a, &bob, &leg_b] {
        let m = b.media_session().ok_or("no media session")?;
        m.start()?;
        s.push(m);
    }
    let br = TranscodingBridge::new(&s[1], &s[3])?;
    let frames: u32 = if quick { 25 } else { 50 };
    let mut ta = Tone::sine(1000.0, 0.3, RATE)?;
    let mut tb = Tone::sine(600.0, 0.3, RATE)?;
    let (mut heard_a, mut heard_b) = (Vec::new(), Vec::new());
    let (mut digits_a, mut digits_b) = (Vec::new(), Vec::new());
    let take = |s: &MediaSession, heard: &mut Vec<i16>, digits: &mut Vec<char>| {
        while let Some(ev) = s.try_recv() {
            match ev.event {
                MediaEvent::Audio(f) if !f.concealed => heard.extend_from_slice(&f.samples),
                MediaEvent::Dtmf(d) if d.ended => {
                    digits.push(d.event.digit().map_or('?', |k| k.as_char()));
                }
                _ => {}
            }
        }
    };
    println!(
        "alice talks at 1000 Hz for {} ms; bob talks at 600 Hz for as long, starting half-way \
         through; then each sends a key",
        frames * 20
    );
    let mut pacer = Pacer::new();
    let mut frame = [0i16; FRAME];
    for k in 0..frames + frames / 2 {
        if k < frames {
            ta.fill(&mut frame);
            s[0].send_audio(&frame)?;
        }
        if k >= frames / 2 {
            tb.fill(&mut frame);
            s[2].send_audio(&frame)?;
        }
        take(&s[0], &mut heard_a, &mut digits_a);
        take(&s[2], &mut heard_b, &mut digits_b);
        pacer.tick();
    }
    s[0].send_dtmf('5', Duration::from_millis(100))?;
    s[2].send_dtmf('9', Duration::from_millis(100))?;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && (digits_a.is_empty() || digits_b.is_empty()) {
        take(&s[0], &mut heard_a, &mut digits_a);
        take(&s[2], &mut heard_b, &mut digits_b);
        pacer.tick();
    }
    let st = br.stop();
    let (sent_a, sent_b) = (
        s[0].statistics().audio_packets_sent,
        s[2].statistics().audio_packets_sent,
    );
    let fb = analyze(&heard_b, RATE).dominant_frequency;
    let fa = analyze(&heard_a, RATE).dominant_frequency;
    println!(
        "Bridge counters: frames A->B {}, B->A {}, dropped {}; DTMF A->B {}, B->A {}",
        st.a_to_b_frames, st.b_to_a_frames, st.frames_dropped, st.a_to_b_dtmf, st.b_to_a_dtmf
    );
    let played =
        |m: &MediaSession| -> u64 { m.statistics().streams.iter().map(|(_, e)| e.played).sum() };
    let (played_a, played_b) = (played(&s[1]), played(&s[3]));
    println!(
        "  (alice sent {sent_a} audio packets and leg A played {played_a} frames from them; bob \
         sent {sent_b}, leg B played {played_b}. The bridge passes on every frame a leg plays, \
         and its jitter buffer's concealment for up to 3 frames in a row (a lost packet or two, \
         or a frame inserted to grow the buffer's delay); a longer gap is the talker's pause. \
         Concealed frames passed on: A->B {}, B->A {}, typically the 3 that follow each \
         talker's last packet)",
        st.a_to_b_frames.saturating_sub(played_a),
        st.b_to_a_frames.saturating_sub(played_b)
    );
    println!(
        "bob (PCMA) heard {} and DTMF {:?}; alice (PCMU) heard {} and DTMF {:?}",
        hz(fb),
        digits_b,
        hz(fa),
        digits_a
    );
    for id in [
        "transcoding-alice",
        "transcoding-bridge-a",
        "transcoding-bob",
        "transcoding-bridge-b",
    ] {
        mgr.release_builder(id);
    }
    report.figure(
        "bridge_frames",
        st.a_to_b_frames + st.b_to_a_frames,
        "audio frames the bridge re-encoded, both ways",
    );
    report.figure(
        "bridge_dtmf",
        st.a_to_b_dtmf + st.b_to_a_dtmf,
        "DTMF events the bridge carried, both ways",
    );
    report.figure(
        "bridge_bob_heard_hz",
        fb.map_or("none".into(), |f| format!("{f:.1}")),
        "dominant frequency bob decoded (alice sent 1000 Hz)",
    );
    report.check(
        "bridge: 1000 Hz reached bob in PCMA, 600 Hz reached alice in PCMU",
        within(fb, 1000.0, 0.01) && within(fa, 600.0, 0.01),
    );
    report.check(
        "bridge: DTMF 5 reached bob and 9 reached alice",
        digits_b == ['5'] && digits_a == ['9'],
    );
    Ok(())
}

// -------------------------------------------------------------- (e) SIP

/// Audio RTP packets one side of a call sent and received over a stretch.
#[derive(Clone, Copy)]
struct Traffic {
    sent: u64,
    received: u64,
}

impl Display for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sent {}, received {}", self.sent, self.received)
    }
}

/// Both sides talk for `frames` ptimes, then 60 ms pass for the last
/// packets to land; returns the RTP packets each side sent and received
/// meanwhile (caller, callee). A side whose direction does not send has
/// its frames refused and sends nothing.
fn both_talk(call: &Call, frames: u32) -> Result<(Traffic, Traffic)> {
    let (a0, b0) = (call.a.statistics(), call.b.statistics());
    let mut ta = Tone::sine(500.0, 0.3, RATE)?;
    let mut tb = Tone::sine(800.0, 0.3, RATE)?;
    let mut frame = [0i16; FRAME];
    let mut pacer = Pacer::new();
    for _ in 0..frames {
        for (s, t) in [(&call.a, &mut ta), (&call.b, &mut tb)] {
            t.fill(&mut frame);
            match s.send_audio(&frame) {
                Ok(_) | Err(mediarelay::builder::MediaError::NotSending) => {}
                Err(e) => return Err(e.into()),
            }
            while s.try_recv().is_some() {}
        }
        pacer.tick();
    }
    std::thread::sleep(Duration::from_millis(60));
    let (a1, b1) = (call.a.statistics(), call.b.statistics());
    let traffic = |before: &MediaStatistics, after: &MediaStatistics| Traffic {
        sent: after.audio_packets_sent - before.audio_packets_sent,
        received: after.packets_received - before.packets_received,
    };
    Ok((traffic(&a0, &a1), traffic(&b0, &b1)))
}

fn reinvite(calls: &Calls, call: &Call, d: Direction) -> Result<(Direction, Direction)> {
    let caller = calls.mgr.builder(&call.id).ok_or("caller gone")?;
    let callee = calls
        .mgr
        .builder(&format!("{}-remote", call.id))
        .ok_or("callee gone")?;
    caller.set_direction(d);
    let offer = caller.create_offer()?;
    callee.process_offer(&offer)?;
    let answer = callee.create_answer()?;
    caller.process_answer(&answer)?;
    Ok((offer.media_direction(0), answer.media_direction(0)))
}

fn sip(calls: &mut Calls, quick: bool, report: &mut Report) -> Result<()> {
    println!("\n=== (e) SIP signalling mapped onto the builder ===");
    println!("  {:<26} builder calls", "SIP");
    for (sip, calls) in [
        (
            "INVITE (SDP offer)",
            "caller.create_offer() -> callee.process_offer()",
        ),
        (
            "200 OK (SDP answer)",
            "callee.create_answer() -> caller.process_answer()",
        ),
        ("ACK", "media_session().start() on both sides"),
        (
            "re-INVITE (hold/resume)",
            "set_direction() + create_offer() ... process_answer()",
        ),
        ("BYE", "session.stop() (RTCP BYE) + release_builder()"),
        ("CANCEL", "release_builder() before any answer"),
    ] {
        println!("  {sip:<26} {calls}");
    }
    println!("The call this describes, run for real (sip-call-001):");
    let frames: u32 = if quick { 15 } else { 50 };
    let mgr = calls.mgr;
    let caller = mgr.create_builder("sip-call-001")?;
    let callee = mgr.create_builder("sip-call-001-remote")?;
    let offer = caller.create_offer()?;
    println!("  INVITE: offer of {} bytes", offer.to_bytes().len());
    callee.process_offer(&offer)?;
    let answer = callee.create_answer()?;
    println!("  200 OK: answer of {} bytes", answer.to_bytes().len());
    caller.process_answer(&answer)?;
    let (Some(a), Some(b)) = (caller.media_session(), callee.media_session()) else {
        return Err("sip call: no media session".into());
    };
    a.start()?;
    b.start()?;
    calls.created += 1;
    let call = Call {
        id: "sip-call-001".into(),
        a,
        b,
    };
    let talk_ms = frames * 20;
    println!(
        "  (each step: both sides try to send a frame every 20 ms for {talk_ms} ms; RTP packets \
         each sent and received meanwhile, 60 ms allowed for the last to land)"
    );
    let (ra, rb) = both_talk(&call, frames)?;
    println!("  ACK: media started; caller {ra}; callee {rb}");
    let (o, ans) = reinvite(calls, &call, Direction::SendOnly)?;
    let (ha, hb) = both_talk(&call, frames)?;
    println!(
        "  re-INVITE a={} (answer a={}): caller {ha}; callee {hb}",
        o.name(),
        ans.name()
    );
    let (o2, ans2) = reinvite(calls, &call, Direction::SendRecv)?;
    let (sa, sb) = both_talk(&call, frames)?;
    println!(
        "  re-INVITE a={} (answer a={}): caller {sa}; callee {sb}",
        o2.name(),
        ans2.name()
    );
    call.a.stop()?;
    let mut bye_seen = false;
    let deadline = Instant::now() + Duration::from_secs(1);
    while !bye_seen && Instant::now() < deadline {
        if let Some(ev) = call.b.recv_timeout(Duration::from_millis(50)) {
            bye_seen = matches!(ev.event, MediaEvent::State(SessionState::RemoteBye));
        }
    }
    println!(
        "  BYE: caller stopped; callee {} the caller's RTCP BYE",
        if bye_seen {
            "received"
        } else {
            "did NOT receive"
        }
    );
    calls.end(call)?;
    let ports_before = mgr.statistics().ports_in_use;
    let cancelled = mgr.create_builder("sip-call-002")?;
    let _offer = cancelled.create_offer()?;
    let ports_ringing = mgr.statistics().ports_in_use;
    let released = mgr.release_builder("sip-call-002");
    let ports_after = mgr.statistics().ports_in_use;
    println!(
        "  CANCEL (sip-call-002): offer made, released before an answer: port pairs in use {ports_before} -> {ports_ringing} -> {ports_after}"
    );
    let ok = ra.received > 0
        && rb.received > 0
        && ha.received == 0
        && hb.received > 0
        && sa.received > 0
        && sb.received > 0
        && ans == Direction::RecvOnly
        && bye_seen
        && released
        && ports_after == ports_before;
    report.figure(
        "sip_call_ok",
        ok,
        "offer/answer/start, hold (only the callee received), resume, BYE seen, CANCEL freed its port",
    );
    report.check("SIP-mapped call ran as described", ok);
    Ok(())
}

// ------------------------------------------------------- (f) monitoring

fn monitoring(calls: &mut Calls, quick: bool, report: &mut Report) -> Result<()> {
    println!("\n=== (f) Monitoring three calls ===");
    let mgr = calls.mgr;
    let created_before = calls.created;
    let ended_before = calls.ended;
    let mut live: Vec<Option<Call>> = Vec::new();
    for i in 0..3 {
        live.push(Some(
            calls.create(&format!("monitor-{i}"), &StartOptions::default())?,
        ));
    }
    let (first, second) = if quick { (1, 1) } else { (5, 2) };
    let (mut ta, mut tb) = (Tone::sine(500.0, 0.3, RATE)?, Tone::sine(800.0, 0.3, RATE)?);
    let mut frame = [0i16; FRAME];
    let mut done = (0u64, 0u64);
    let mut last_sent = 0;
    let mut written = 0u64;
    let mut pacer = Pacer::new();
    println!(
        "Every second (audio: sums over every monitor call's two sides, ended calls included; \
         a frame written leaves on its session's next 20 ms tick, so packets sent and received \
         may trail frames written by one a side):"
    );
    for sec in 1..=first + second {
        for _ in 0..50 {
            for c in live.iter().flatten() {
                for (s, t) in [(&c.a, &mut ta), (&c.b, &mut tb)] {
                    t.fill(&mut frame);
                    s.send_audio(&frame)?;
                    written += 1;
                    while s.try_recv().is_some() {}
                }
            }
            pacer.tick();
        }
        let (mut sent, mut rcvd) = done;
        for c in live.iter().flatten() {
            for s in [&c.a, &c.b] {
                let st = s.statistics();
                sent += st.audio_packets_sent;
                rcvd += audio_received(&st);
            }
        }
        let ms = mgr.statistics();
        let active = live.iter().flatten().count();
        println!(
            "  t={sec}s calls {} created / {active} active, builders {}, port pairs in use {}, \
             audio frames written {written}, packets sent {sent} (+{} this second), received \
             {rcvd}",
            calls.created - created_before,
            ms.active_builders,
            ms.ports_in_use,
            sent - last_sent
        );
        last_sent = sent;
        if sec == first {
            for i in [0, 2] {
                if let Some(c) = live[i].take() {
                    for s in [&c.a, &c.b] {
                        let st = s.statistics();
                        done.0 += st.audio_packets_sent;
                        done.1 += audio_received(&st);
                    }
                    calls.end(c)?;
                }
            }
            println!("  monitor-0 and monitor-2 end");
        }
    }
    // The snapshot waits for the call left to settle: everything sent
    // received (nothing is written any more; unchanged over two looks
    // 20 ms apart), and a round trip measured on both sides, which takes a
    // side's sender report coming back in the far end's report block
    // (RFC 3550 §6.4.1); until then the snapshot would show 0 for it. With
    // RTCP every 500 ms it is usually there already.
    let waited = Instant::now();
    let look = || -> Vec<(u64, u64, bool)> {
        live.iter()
            .flatten()
            .flat_map(|c| {
                let (a, b) = (c.a.statistics(), c.b.statistics());
                [
                    (a.audio_packets_sent, audio_received(&b), a.rtt.is_some()),
                    (b.audio_packets_sent, audio_received(&a), b.rtt.is_some()),
                ]
            })
            .collect()
    };
    let mut prev = None;
    let call_settled = loop {
        let now = look();
        let done = now.iter().all(|&(sent, rcvd, rtt)| rtt && sent == rcvd);
        if done && prev.as_ref() == Some(&now) {
            break true;
        }
        if waited.elapsed() > Duration::from_secs(3) {
            break false;
        }
        prev = Some(now);
        std::thread::sleep(Duration::from_millis(20));
    };
    let text = mgr.prometheus();
    println!(
        "Prometheus snapshot (BuilderManager::prometheus), taken {} ms after the last second, \
         once the call left had received all it sent and measured an RTCP round trip on both \
         sides ({}); a round-trip gauge of 0 would mean none measured yet:",
        waited.elapsed().as_millis(),
        if call_settled {
            "it had"
        } else {
            "it had NOT, after 3 s"
        }
    );
    for l in text.lines() {
        println!("  {l}");
    }
    println!(
        "  (port_pairs_quarantined: every released pair not reclaimed yet; the allocator takes \
         a pair back lazily, when an allocation meets it after its 5 s release delay, so pairs \
         released longer ago than that still count)"
    );
    let values = |name: &str| -> Vec<f64> {
        text.lines()
            .filter(|l| {
                l.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(['{', ' ']))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect()
    };
    let sent = values("mediarelay_session_audio_packets_sent_total");
    let rcvd = values("mediarelay_session_packets_received_total");
    let active = values("mediarelay_builders_active");
    let lines = text.lines().count();
    let nonzero = !sent.is_empty() && sent.iter().chain(&rcvd).all(|&v| v > 0.0);
    if let Some(c) = live.into_iter().flatten().next() {
        calls.end(c)?;
    }
    println!(
        "Calls in this section: {} created, {} ended",
        calls.created - created_before,
        calls.ended - ended_before
    );
    report.figure(
        "prometheus_lines",
        lines,
        "lines of the Prometheus text snapshot",
    );
    report.figure(
        "prometheus_audio_packets_sent",
        sent.iter()
            .map(|v| format!("{v}"))
            .collect::<Vec<_>>()
            .join(","),
        "mediarelay_session_audio_packets_sent_total per stream in the snapshot",
    );
    report.check(
        "Prometheus audio packet counters are non-zero",
        nonzero && sent.len() == 2,
    );
    report.check(
        "Prometheus shows the one call left (2 builders)",
        active == [2.0],
    );
    let rtts = values("mediarelay_session_rtt_seconds");
    report.check(
        "Prometheus shows a measured round trip for both streams",
        rtts.len() == 2 && rtts.iter().all(|&v| v > 0.0),
    );
    Ok(())
}

// ------------------------------------------------------------- (g) pcap

/// Per-kind packet counts read from a pcap of one stream (raw IPv4).
#[derive(Default, Debug)]
struct PcapCounts {
    packets: u64,
    sent_audio: u64,
    sent_dtmf: u64,
    sent_rtcp: u64,
    received_rtp: u64,
    received_rtcp: u64,
}

fn read_pcap(path: &Path, local_rtp: u16) -> Result<PcapCounts> {
    let file = std::fs::File::open(path)?;
    let mut reader = pcap_file::pcap::PcapReader::new(file)?;
    let mut c = PcapCounts::default();
    while let Some(pkt) = reader.next_packet() {
        let pkt = pkt?;
        let d = &pkt.data;
        c.packets += 1;
        let ihl = usize::from(d.first().ok_or("empty packet")? & 0x0f) * 4;
        if d.len() < ihl + 10 {
            return Err("short packet in pcap".into());
        }
        let src = u16::from_be_bytes([d[ihl], d[ihl + 1]]);
        let dst = u16::from_be_bytes([d[ihl + 2], d[ihl + 3]]);
        let sent = src == local_rtp || src == local_rtp + 1;
        let rtcp = if sent { src % 2 == 1 } else { dst % 2 == 1 };
        let pt = d[ihl + 9] & 0x7f;
        match (sent, rtcp) {
            (true, true) => c.sent_rtcp += 1,
            (true, false) if pt == 101 => c.sent_dtmf += 1,
            (true, false) => c.sent_audio += 1,
            (false, true) => c.received_rtcp += 1,
            (false, false) => c.received_rtp += 1,
        }
    }
    Ok(c)
}

fn pcap(calls: &mut Calls, dir: &Path, quick: bool, report: &mut Report) -> Result<()> {
    println!("\n=== (g) Packet capture of a call ===");
    let call = calls.create(
        "demo-pcap",
        &StartOptions {
            capture: true,
            ..StartOptions::default()
        },
    )?;
    let local = calls
        .mgr
        .builder("demo-pcap")
        .and_then(|b| b.local_port())
        .ok_or("no local port")?;
    let frames: u32 = if quick { 25 } else { 50 };
    both_talk(&call, frames)?;
    call.a.send_dtmf('1', Duration::from_millis(100))?;
    std::thread::sleep(Duration::from_millis(300));
    call.a.stop()?;
    call.b.stop()?;
    std::thread::sleep(Duration::from_millis(100));
    let path = dir.join("call.pcap");
    let summary = call.a.write_pcap(0, &path)?;
    let st = call.a.statistics();
    let e = &st.streams.first().ok_or("no stream")?.1;
    let c = read_pcap(&path, local)?;
    println!(
        "Captured the caller's stream (127.0.0.1:{local}) into {} ({} bytes)",
        path.display(),
        std::fs::metadata(&path)?.len()
    );
    println!(
        "  write_pcap: {} packets written ({} sent, {} received), {} not captured",
        summary.packets_written, summary.sent, summary.received, summary.dropped
    );
    println!(
        "  read back:  {} packets; sent {} audio RTP, {} telephone-event RTP, {} RTCP; received {} RTP, {} RTCP",
        c.packets, c.sent_audio, c.sent_dtmf, c.sent_rtcp, c.received_rtp, c.received_rtcp
    );
    println!(
        "  session counters: sent {} audio, {} telephone-event, {} RTCP; received {} RTP, {} RTCP",
        e.audio_sent,
        e.dtmf_sent,
        e.rtcp_sent,
        e.received + e.dtmf_received,
        e.rtcp_received
    );
    let consistent = c.packets == summary.packets_written
        && c.sent_audio == e.audio_sent
        && c.sent_dtmf == e.dtmf_sent
        && c.sent_rtcp == e.rtcp_sent
        && c.received_rtp == e.received + e.dtmf_received
        && c.received_rtcp == e.rtcp_received;
    calls.end(call)?;
    report.figure(
        "pcap_packets",
        summary.packets_written,
        "packets in the pcap of the caller's stream (RTP and RTCP, both ways)",
    );
    report.check(
        "pcap read back matches the session's counters",
        consistent && summary.packets_written > 0,
    );
    Ok(())
}

// ---------------------------------------------------------------- plumbing
