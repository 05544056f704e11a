//! Media sessions over the in-memory network on a virtual clock: minutes
//! of media per test in milliseconds of real time, reproducible from the
//! seed. Covers pacing, the jitter buffer under loss, jitter and
//! reordering, a drifting sender clock, DTMF under loss, RTCP round-trip
//! time and the E-model under known impairments.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mediarelay::media::handle::{MediaEndpoint, MediaHandle, endpoint};
use mediarelay::media::session::SessionConfig;
use mediarelay::media::sim::{Sim, SimNode};
use mediarelay::media::{MediaEvent, SessionState};
use mediarelay::netsim::{Gilbert, Impairments};
use mediarelay::rtcp::NtpTime;
use mediarelay::sdp::Direction;

const A_RTP: &str = "10.0.0.1:4000";
const A_RTCP: &str = "10.0.0.1:4001";
const B_RTP: &str = "10.0.0.2:5000";
const B_RTCP: &str = "10.0.0.2:5001";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

struct Call {
    sim: Sim<MediaEndpoint>,
    a: MediaHandle,
    b: MediaHandle,
    phase: f64,
    /// Events B reported, in order (audio and payload frames are kept
    /// as their metadata, and their buffers given back at once).
    b_events: Vec<MediaEvent>,
    /// B's audio frames: (timestamp, concealed).
    b_frames: Vec<(u32, bool)>,
    /// B's payloads: (timestamp, marker, sequence).
    b_payloads: Vec<(u32, bool, u16)>,
    a_events: Vec<MediaEvent>,
}

fn config() -> SessionConfig {
    let mut c = SessionConfig::new(NtpTime::from_unix(Duration::from_secs(1_700_000_000)));
    // The test takes events every 100 ms of media: room for that.
    c.frames = 16;
    c
}

impl Call {
    fn new(seed: u64, a_cfg: SessionConfig, b_cfg: SessionConfig) -> Call {
        let start = Instant::now();
        let (ea, a) = endpoint(a_cfg, start).unwrap();
        let (eb, b) = endpoint(b_cfg, start).unwrap();
        let mut sim = Sim::new(seed, start);
        sim.add(SimNode::new(
            ea,
            addr(A_RTP),
            addr(A_RTCP),
            addr(B_RTP),
            addr(B_RTCP),
        ));
        sim.add(SimNode::new(
            eb,
            addr(B_RTP),
            addr(B_RTCP),
            addr(A_RTP),
            addr(A_RTCP),
        ));
        Call {
            sim,
            a,
            b,
            phase: 0.0,
            b_events: Vec::new(),
            b_frames: Vec::new(),
            b_payloads: Vec::new(),
            a_events: Vec::new(),
        }
    }

    /// A 440 Hz tone, `ms` of it, into A (and B when `both`).
    fn feed(&mut self, ms: u64, both: bool) {
        let n = (ms * 8) as usize;
        let samples: Vec<i16> = (0..n)
            .map(|i| {
                let t = (self.phase + i as f64) / 8000.0;
                (8000.0 * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
            })
            .collect();
        self.phase += n as f64;
        // A sender whose clock runs slow leaves some in its ring: what
        // does not fit is dropped, as a real-time source would.
        self.a.write_pcm(&samples).unwrap();
        if both {
            self.b.write_pcm(&samples).unwrap();
        }
    }

    /// Runs `total` of media in 100 ms steps, feeding A (and B), keeping
    /// the events. The first call feeds 40 ms ahead, so that a step's last
    /// tick never finds the input ring empty.
    fn talk(&mut self, total: Duration, both: bool) {
        if self.phase == 0.0 {
            self.feed(40, both);
        }
        let steps = total.as_millis() / 100;
        for _ in 0..steps {
            self.feed(100, both);
            self.sim.run_for(Duration::from_millis(100));
            self.drain();
        }
    }

    /// Runs without feeding.
    fn idle(&mut self, total: Duration) {
        let steps = total.as_millis() / 100;
        for _ in 0..steps {
            self.sim.run_for(Duration::from_millis(100));
            self.drain();
        }
    }

    fn drain(&mut self) {
        while let Some(e) = self.b.try_recv() {
            match e {
                MediaEvent::Audio(f) => self.b_frames.push((f.timestamp, f.concealed)),
                MediaEvent::Payload(p) => self.b_payloads.push((p.timestamp, p.marker, p.sequence)),
                e => self.b_events.push(e),
            }
        }
        while let Some(e) = self.a.try_recv() {
            if !matches!(e, MediaEvent::Audio(_) | MediaEvent::Payload(_)) {
                self.a_events.push(e);
            }
        }
    }

    fn b_audio(&self) -> impl Iterator<Item = (u32, bool)> + '_ {
        self.b_frames.iter().copied()
    }

    /// B's jitter buffer.
    fn b_jitter(&self) -> &mediarelay::media::jitter::JitterBuffer {
        self.sim
            .node(1)
            .endpoint
            .session()
            .jitter_buffer()
            .expect("B has a jitter buffer")
    }

    fn a_to_b(&self) -> mediarelay::netsim::PathStats {
        self.sim.net.path_stats(addr(A_RTP), addr(B_RTP))
    }
}

#[test]
fn pacing_is_exact_on_the_media_clock() {
    let mut c = Call::new(1, config(), config());
    c.talk(Duration::from_secs(10), false);
    let sa = c.a.stats();
    // 10 s at 20 ms: 500 ticks; the first may fall before the first feed.
    assert!(sa.audio_sent >= 499, "{sa:?}");
    assert_eq!(sa.pacing_lag_max_us, 0, "{sa:?}");
    // Every B frame 160 timestamp units after the previous one.
    let ts: Vec<u32> = c.b_audio().map(|(t, _)| t).collect();
    assert!(ts.len() > 400);
    for w in ts.windows(2) {
        assert_eq!(w[1].wrapping_sub(w[0]), 160);
    }
}

#[test]
fn jitter_buffer_plays_in_order_and_conceals_exactly_the_losses() {
    let mut c = Call::new(7, config(), config());
    let imp = Impairments {
        delay: Duration::from_millis(40),
        jitter: Duration::from_millis(20),
        loss: 0.05,
        reorder: 0.01,
        reorder_delay: Duration::from_millis(25),
        ..Impairments::none()
    };
    c.sim.net.set_path(addr(A_RTP), addr(B_RTP), imp).unwrap();
    c.talk(Duration::from_secs(60), false);
    // A lossless tail, so that every loss has a later packet behind it.
    let clean = Impairments {
        delay: Duration::from_millis(40),
        ..Impairments::none()
    };
    c.sim.net.set_path(addr(A_RTP), addr(B_RTP), clean).unwrap();
    c.talk(Duration::from_secs(2), false);
    c.idle(Duration::from_secs(1));
    let net = c.a_to_b();
    assert!(net.lost > 100, "{net:?}");
    assert!(net.reordered > 10, "{net:?}");
    let frames: Vec<(u32, bool)> = c.b_audio().collect();
    assert!(frames.len() > 3000, "{} frames", frames.len());
    for w in frames.windows(2) {
        assert_eq!(w[1].0.wrapping_sub(w[0].0), 160, "out of order playout");
    }
    let session = c.sim.node(1).endpoint.session();
    let jb = session.jitter_buffer().unwrap().stats().clone();
    assert_eq!(jb.late, 0, "{jb:?}");
    assert_eq!(jb.stretched, 0, "{jb:?}");
    assert_eq!(jb.concealed, net.lost, "{jb:?}");
    assert_eq!(session.stats().concealed, net.lost);
    assert_eq!(jb.played + net.lost, jb.pushed + net.lost - jb.duplicates);
}

fn drift(ppm: f64) -> (Duration, Duration, u64, u64) {
    let mut c = Call::new(3, config(), config());
    c.sim.node_mut(0).skew_ppm = ppm;
    let imp = Impairments {
        delay: Duration::from_millis(30),
        jitter: Duration::from_millis(5),
        ..Impairments::none()
    };
    c.sim.net.set_path(addr(A_RTP), addr(B_RTP), imp).unwrap();
    c.talk(Duration::from_secs(20), false);
    let early = c.b_jitter().buffered();
    let mut late = early;
    for _ in 0..58 {
        // The sender's input is fed at the simulation's pace while its clock
        // runs off it: keep its ring from running dry or over.
        c.talk(Duration::from_secs(10), false);
        late = c.b_jitter().buffered();
    }
    let jb = c.b_jitter().stats().clone();
    (early, late, jb.shrunk, jb.stretched)
}

#[test]
fn a_fast_or_slow_sender_does_not_drift_the_buffer() {
    for ppm in [100.0, -100.0] {
        let (early, late, shrunk, stretched) = drift(ppm);
        let moved = late.abs_diff(early);
        assert!(
            moved <= Duration::from_millis(20),
            "{ppm} ppm: buffer {early:?} -> {late:?} (shrunk {shrunk}, stretched {stretched})"
        );
    }
}

#[test]
fn every_dtmf_digit_is_reported_once_in_order_under_loss() {
    let mut c = Call::new(11, config(), config());
    let imp = Impairments {
        delay: Duration::from_millis(30),
        loss: 0.10,
        ..Impairments::none()
    };
    c.sim.net.set_path(addr(A_RTP), addr(B_RTP), imp).unwrap();
    c.talk(Duration::from_secs(1), false);
    let digits = "0123456789*#ABCD";
    for d in digits.chars() {
        c.a.send_dtmf(d, Duration::from_millis(100)).unwrap();
        c.talk(Duration::from_millis(300), false);
    }
    c.talk(Duration::from_secs(2), false);
    let ended: Vec<u8> = c
        .b_events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf(d) if d.ended => Some(d.event.0),
            _ => None,
        })
        .collect();
    assert_eq!(ended, (0u8..16).collect::<Vec<_>>());
    for e in &c.b_events {
        if let MediaEvent::Dtmf(d) = e {
            if d.ended {
                assert!(
                    d.duration >= Duration::from_millis(60)
                        && d.duration <= Duration::from_millis(100),
                    "{d:?}"
                );
            }
        }
    }
}

#[test]
fn rtcp_measures_the_round_trip() {
    let mut cfg = config();
    cfg.rtcp_interval = Duration::from_secs(1);
    let mut c = Call::new(5, cfg.clone(), cfg);
    for (s, d) in [
        (A_RTCP, B_RTCP),
        (B_RTCP, A_RTCP),
        (A_RTP, B_RTP),
        (B_RTP, A_RTP),
    ] {
        let imp = Impairments {
            delay: Duration::from_millis(50),
            ..Impairments::none()
        };
        c.sim.net.set_path(addr(s), addr(d), imp).unwrap();
    }
    c.talk(Duration::from_secs(10), true);
    let rtts: Vec<Duration> = c
        .a_events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Rtcp(r) => r.rtt,
            _ => None,
        })
        .collect();
    assert!(!rtts.is_empty(), "no RTT measured");
    for rtt in rtts {
        assert!(
            rtt >= Duration::from_millis(99) && rtt <= Duration::from_millis(101),
            "{rtt:?}"
        );
    }
    assert!(
        c.b_events
            .iter()
            .any(|e| matches!(e, MediaEvent::RemoteQuality(_)))
    );
}

fn mos_at(loss: f64, gilbert: Option<Gilbert>) -> f64 {
    let mut c = Call::new(21, config(), config());
    let imp = Impairments {
        delay: Duration::from_millis(20),
        loss,
        gilbert,
        ..Impairments::none()
    };
    c.sim.net.set_path(addr(A_RTP), addr(B_RTP), imp).unwrap();
    c.talk(Duration::from_secs(30), false);
    c.sim.node(1).endpoint.session().quality().mos_cq
}

#[test]
fn mos_of_a_clean_call_is_high_and_falls_with_loss() {
    let clean = mos_at(0.0, None);
    assert!(clean >= 4.3, "clean G.711 MOS {clean}");
    let mut prev = clean;
    for loss in [0.01, 0.02, 0.05, 0.10, 0.20] {
        let mos = mos_at(loss, None);
        assert!(mos < prev, "MOS {mos} at {loss} not below {prev}");
        prev = mos;
    }
}

#[test]
fn hold_and_resume_keep_the_media_clock() {
    let mut cfg = config();
    cfg.deliver_payload = Some(None);
    let mut c = Call::new(2, config(), cfg);
    c.talk(Duration::from_secs(1), false);
    c.a.set_direction(Direction::Inactive).unwrap();
    c.talk(Duration::from_secs(1), false);
    c.a.set_direction(Direction::SendRecv).unwrap();
    c.talk(Duration::from_secs(1), false);
    let pkts = c.b_payloads.clone();
    let gap = pkts
        .windows(2)
        .find(|w| w[1].0.wrapping_sub(w[0].0) != 160)
        .expect("a pause");
    // About one second on hold: the timestamp advanced with the clock.
    let jump = gap[1].0.wrapping_sub(gap[0].0);
    assert!((7_800..=8_400).contains(&jump), "timestamp jump {jump}");
    assert!(gap[1].1, "marker bit on the first packet after resume");
    assert_eq!(gap[1].2, gap[0].2.wrapping_add(1), "no sequence gap");
    assert!(pkts[0].1, "marker on the first packet");
    assert_eq!(pkts.iter().filter(|p| p.1).count(), 2);
    assert!(c.a_events.iter().any(|e| matches!(
        e,
        MediaEvent::State(SessionState::Direction(Direction::Inactive))
    )));
}

#[test]
fn simulation_reproduces_from_its_seed() {
    let run = |seed| {
        let mut c = Call::new(seed, config(), config());
        let imp = Impairments {
            delay: Duration::from_millis(30),
            jitter: Duration::from_millis(10),
            loss: 0.05,
            ..Impairments::none()
        };
        c.sim.net.set_path(addr(A_RTP), addr(B_RTP), imp).unwrap();
        c.talk(Duration::from_secs(5), false);
        c.b_audio()
            .collect::<Vec<_>>()
            .iter()
            .map(|f| f.1)
            .collect::<Vec<_>>()
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
}

#[test]
fn playout_idles_when_the_far_end_goes_quiet_and_resumes() {
    let mut c = Call::new(4, config(), config());
    c.talk(Duration::from_secs(2), false);
    let before = c.b_frames.len();
    // A's input runs dry: no packets for 5 s.
    c.idle(Duration::from_secs(5));
    let quiet = c.b_frames.len() - before;
    // The buffered frames, then at most a second of concealment.
    assert!(quiet <= 60, "{quiet} frames played in 5 s of silence");
    c.talk(Duration::from_secs(2), false);
    let resumed = c.b_frames.len() - before - quiet;
    assert!(resumed >= 90, "{resumed} frames after the far end resumed");
    let jb = c.b_jitter().stats().clone();
    assert_eq!(jb.concealed, 0, "silence is not loss: {jb:?}");
}

#[test]
fn ends_sending_different_g711_laws_hear_each_other() {
    use mediarelay::codec::G711;
    use mediarelay::media::CodecSpec;
    use mediarelay::rtp::PayloadType;
    let a_cfg = config();
    let mut b_cfg = config();
    b_cfg.send = (PayloadType::PCMA, CodecSpec::G711(G711::Pcma));
    let mut c = Call::new(8, a_cfg, b_cfg);
    c.talk(Duration::from_secs(3), true);
    for (i, who) in [(0, "A"), (1, "B")] {
        let st = c.sim.node(i).endpoint.session().stats();
        assert!(st.played > 100, "{who}: {st:?}");
        assert_eq!(st.dropped_payload_type, 0, "{who}: {st:?}");
    }
    // B decoded A's µ-law tone back to the tone's level (8000 peak: RMS
    // about 5657), not noise.
    let mut c2 = Call::new(8, config(), {
        let mut b = config();
        b.send = (PayloadType::PCMA, CodecSpec::G711(G711::Pcma));
        b
    });
    c2.feed(40, true);
    let mut rms = Vec::new();
    for _ in 0..20 {
        c2.feed(100, true);
        c2.sim.run_for(Duration::from_millis(100));
        while let Some(e) = c2.b.try_recv() {
            if let MediaEvent::Audio(f) = e {
                if !f.concealed {
                    let s: f64 = f.samples.iter().map(|&x| f64::from(x).powi(2)).sum();
                    rms.push((s / f.samples.len() as f64).sqrt());
                }
            }
        }
    }
    let tail = &rms[rms.len() / 2..];
    assert!(
        tail.iter().all(|r| (5300.0..6000.0).contains(r)),
        "{tail:?}"
    );
}

#[test]
fn a_refused_request_is_reported() {
    let mut cfg = config();
    cfg.telephone_event = None;
    let mut c = Call::new(12, cfg, config());
    c.a.send_dtmf('1', Duration::from_millis(100)).unwrap();
    c.talk(Duration::from_millis(200), false);
    assert!(
        c.a_events.iter().any(|e| matches!(
            e,
            MediaEvent::Refused(mediarelay::media::SessionError::NoTelephoneEvent)
        )),
        "{:?}",
        c.a_events
    );
}

#[test]
fn hold_during_a_tone_ends_it_and_dtmf_on_hold_is_refused() {
    let mut c = Call::new(13, config(), config());
    c.talk(Duration::from_millis(500), false);
    c.a.send_dtmf('7', Duration::from_secs(2)).unwrap();
    c.talk(Duration::from_millis(300), false);
    c.a.set_direction(Direction::RecvOnly).unwrap();
    // The simulation keeps moving (no endpoint deadline stuck in the past).
    c.talk(Duration::from_secs(2), false);
    c.a.send_dtmf('8', Duration::from_millis(100)).unwrap();
    c.talk(Duration::from_millis(200), false);
    assert!(c.a_events.iter().any(|e| matches!(
        e,
        MediaEvent::Refused(mediarelay::media::SessionError::NotSending(_))
    )));
    // B saw the first digit start and end (cut short by the hold).
    let digits: Vec<(u8, bool)> = c
        .b_events
        .iter()
        .filter_map(|e| match e {
            MediaEvent::Dtmf(d) => Some((d.event.0, d.ended)),
            _ => None,
        })
        .collect();
    assert_eq!(digits, vec![(7, false), (7, true)]);
}

#[test]
fn dtmf_mid_stream_is_not_loss() {
    for jitter in [true, false] {
        let mut a_cfg = config();
        a_cfg.rtcp_interval = Duration::from_secs(1);
        let mut b_cfg = config();
        b_cfg.rtcp_interval = Duration::from_secs(1);
        if !jitter {
            b_cfg.jitter = None;
        }
        let mut c = Call::new(14, a_cfg, b_cfg);
        c.talk(Duration::from_secs(1), false);
        for d in "123".chars() {
            c.a.send_dtmf(d, Duration::from_millis(100)).unwrap();
        }
        c.talk(Duration::from_secs(4), false);
        let q = c.sim.node(1).endpoint.session().quality();
        assert_eq!(q.loss_percent, 0.0, "jitter {jitter}: {q:?}");
        assert!(q.mos_cq > 4.3, "jitter {jitter}: {q:?}");
        let lost: Vec<i32> = c
            .a_events
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Rtcp(r) => r.about_us.map(|b| b.cumulative_lost),
                _ => None,
            })
            .collect();
        assert!(!lost.is_empty());
        assert!(lost.iter().all(|&l| l == 0), "jitter {jitter}: {lost:?}");
    }
}
