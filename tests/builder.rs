//! The media builder end to end on loopback: offer/answer through the
//! project's SDP negotiator, media over real UDP sockets on the engine.

use std::time::{Duration, Instant};

use mediarelay::builder::{BuilderError, BuilderManager, ManagerConfig, MediaError, Phase};
use mediarelay::engine::IoBackend;
use mediarelay::media::MediaEvent;
use mediarelay::sdp::Direction;

fn config(min: u16, backend: IoBackend) -> ManagerConfig {
    ManagerConfig {
        local_ip: "127.0.0.1".parse().unwrap(),
        min_port: min,
        max_port: min + 199,
        max_concurrent_builders: 50,
        io_backend: backend,
        ..ManagerConfig::default()
    }
}

fn digit(code: u8) -> char {
    match code {
        0..=9 => (b'0' + code) as char,
        10 => '*',
        11 => '#',
        c => (b'A' + c - 12) as char,
    }
}

fn basic_call(backend: IoBackend, min: u16) {
    let mgr = BuilderManager::new(config(min, backend)).unwrap();
    let caller = mgr.create_builder("caller").unwrap();
    let callee = mgr.create_builder("callee").unwrap();
    let offer = caller.create_offer().unwrap();
    callee.process_offer(&offer).unwrap();
    let answer = callee.create_answer().unwrap();
    caller.process_answer(&answer).unwrap();
    assert_eq!(caller.phase(), Phase::Established);
    let a = caller.media_session().unwrap();
    let b = callee.media_session().unwrap();
    assert_eq!(a.send_audio(&[0; 160]), Err(MediaError::NotStarted));
    a.start().unwrap();
    a.start().unwrap();
    b.start().unwrap();
    let tone: Vec<i16> = (0..160)
        .map(|i| ((i as f64 * 0.3).sin() * 8000.0) as i16)
        .collect();
    let t0 = Instant::now();
    for k in 0..25u32 {
        a.send_audio(&tone).unwrap();
        b.send_audio(&tone).unwrap();
        let next = t0 + Duration::from_millis(20) * (k + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    for d in ['1', '2', '3', '4', '5', '6'] {
        a.send_dtmf(d, Duration::from_millis(100)).unwrap();
    }
    let mut digits = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while digits.len() < 6 && Instant::now() < deadline {
        if let Some(ev) = b.recv_timeout(Duration::from_millis(100)) {
            if let MediaEvent::Dtmf(d) = ev.event {
                if d.ended {
                    digits.push(digit(d.event.0));
                }
            }
        }
    }
    assert_eq!(digits, ['1', '2', '3', '4', '5', '6']);
    std::thread::sleep(Duration::from_millis(300));
    let sa = a.statistics();
    let sb = b.statistics();
    assert!(sa.audio_packets_sent >= 24, "{sa:?}");
    assert_eq!(
        sb.packets_received - sb.dtmf_packets_received,
        sa.audio_packets_sent
    );
    assert_eq!(
        sa.packets_received - sa.dtmf_packets_received,
        sb.audio_packets_sent
    );
    a.stop().unwrap();
    a.stop().unwrap();
    assert_eq!(a.start(), Err(MediaError::Stopped));
    caller.close().unwrap();
    assert_eq!(caller.close(), Err(BuilderError::Closed));
    assert!(mgr.release_builder("caller"));
    assert!(!mgr.release_builder("caller"));
    mgr.shutdown();
    mgr.shutdown();
}

#[test]
fn basic_call_epoll() {
    basic_call(IoBackend::Epoll, 52000);
}

#[test]
fn basic_call_uring() {
    if let mediarelay::engine::UringSupport::Unavailable(_) = mediarelay::engine::uring_support() {
        eprintln!("io_uring unusable here; skipped");
        return;
    }
    basic_call(IoBackend::Uring, 52200);
}

#[test]
fn state_errors_change_nothing() {
    let mgr = BuilderManager::new(config(52400, IoBackend::Epoll)).unwrap();
    let a = mgr.create_builder("a").unwrap();
    let b = mgr.create_builder("b").unwrap();
    assert!(matches!(
        a.create_answer(),
        Err(BuilderError::State {
            phase: Phase::Idle,
            ..
        })
    ));
    let offer = a.create_offer().unwrap();
    assert!(matches!(
        a.create_offer(),
        Err(BuilderError::State {
            phase: Phase::OfferSent,
            ..
        })
    ));
    assert!(matches!(
        b.process_answer(&offer),
        Err(BuilderError::State {
            phase: Phase::Idle,
            ..
        })
    ));
    b.process_offer(&offer).unwrap();
    let answer = b.create_answer().unwrap();
    a.process_answer(&answer).unwrap();
    // Hold: a re-offer sendonly; the answer is recvonly; the call stays up.
    a.set_direction(Direction::SendOnly);
    let hold = a.create_offer().unwrap();
    b.process_offer(&hold).unwrap();
    let ans = b.create_answer().unwrap();
    assert_eq!(ans.media_direction(0), Direction::RecvOnly);
    a.process_answer(&ans).unwrap();
    assert_eq!(a.media_streams()[0].direction, Direction::SendOnly);
    assert_eq!(b.media_streams()[0].direction, Direction::RecvOnly);
    mgr.shutdown();
}

/// Negotiates `a` (offerer) with `b` and starts both.
fn connect(
    mgr: &BuilderManager,
    a: &str,
    b: &str,
) -> (
    mediarelay::builder::MediaSession,
    mediarelay::builder::MediaSession,
) {
    let x = mgr.create_builder(a).unwrap();
    let y = mgr.create_builder(b).unwrap();
    y.process_offer(&x.create_offer().unwrap()).unwrap();
    x.process_answer(&y.create_answer().unwrap()).unwrap();
    let (sx, sy) = (x.media_session().unwrap(), y.media_session().unwrap());
    sx.start().unwrap();
    sy.start().unwrap();
    (sx, sy)
}

fn pace(mut f: impl FnMut(u32), frames: u32) {
    let t0 = Instant::now();
    for k in 0..frames {
        f(k);
        let next = t0 + Duration::from_millis(20) * (k + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

#[test]
fn transcoding_bridge_joins_pcmu_and_pcma_parties() {
    use mediarelay::audio::{AudioSource, Tone, analyze};
    use mediarelay::builder::TranscodingBridge;
    let mgr = BuilderManager::new(config(52600, IoBackend::Epoll)).unwrap();
    // alice speaks PCMU only, bob PCMA only; the bridge's two legs match.
    let alice = mgr.create_builder("alice").unwrap();
    alice.set_payload_types(&[0]).unwrap();
    let leg_a = mgr.create_builder("bridge-a").unwrap();
    leg_a.process_offer(&alice.create_offer().unwrap()).unwrap();
    alice
        .process_answer(&leg_a.create_answer().unwrap())
        .unwrap();
    let bob = mgr.create_builder("bob").unwrap();
    bob.set_payload_types(&[8]).unwrap();
    let leg_b = mgr.create_builder("bridge-b").unwrap();
    leg_b.process_offer(&bob.create_offer().unwrap()).unwrap();
    bob.process_answer(&leg_b.create_answer().unwrap()).unwrap();
    assert_eq!(alice.media_streams()[0].codec.as_deref(), Some("PCMU"));
    assert_eq!(bob.media_streams()[0].codec.as_deref(), Some("PCMA"));
    let sessions: Vec<_> = [&alice, &leg_a, &bob, &leg_b]
        .iter()
        .map(|b| b.media_session().unwrap())
        .collect();
    for s in &sessions {
        s.start().unwrap();
    }
    let bridge = TranscodingBridge::new(&sessions[1], &sessions[3]).unwrap();
    let mut tone = Tone::sine(1000.0, 0.5, 8000).unwrap();
    let mut frame = [0i16; 160];
    pace(
        |_| {
            tone.fill(&mut frame);
            sessions[0].send_audio(&frame).unwrap();
        },
        50,
    );
    sessions[0]
        .send_dtmf('7', Duration::from_millis(80))
        .unwrap();
    let mut heard = Vec::new();
    let mut dtmf = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline && dtmf.is_empty() {
        if let Some(ev) = sessions[2].recv_timeout(Duration::from_millis(50)) {
            match ev.event {
                MediaEvent::Audio(f) if !f.concealed => heard.extend_from_slice(&f.samples),
                MediaEvent::Dtmf(d) if d.ended => dtmf.push(digit(d.event.0)),
                _ => {}
            }
        }
    }
    let st = bridge.stop();
    assert!(st.a_to_b_frames >= 40, "{st:?}");
    assert_eq!(dtmf, ['7']);
    let f = analyze(&heard, 8000).dominant_frequency.unwrap();
    assert!((f - 1000.0).abs() < 10.0, "bob heard {f} Hz");
    mgr.shutdown();
}

#[test]
fn conference_each_hears_the_others_not_itself() {
    use mediarelay::audio::{Tone, goertzel_power};
    use mediarelay::builder::Conference;
    let mgr = BuilderManager::new(config(52800, IoBackend::Epoll)).unwrap();
    let conf = Conference::new(Duration::from_millis(20)).unwrap();
    let freqs = [500.0, 800.0, 1300.0];
    let mut people = Vec::new();
    for (i, _) in freqs.iter().enumerate() {
        let (user, server) = connect(&mgr, &format!("user{i}"), &format!("conf{i}"));
        conf.join(&format!("user{i}"), server);
        people.push(user);
    }
    let mut tones: Vec<Tone> = freqs
        .iter()
        .map(|&f| Tone::sine(f, 0.3, 8000).unwrap())
        .collect();
    let mut heard: Vec<Vec<i16>> = vec![Vec::new(); 3];
    let mut frame = [0i16; 160];
    pace(
        |_| {
            for (p, t) in people.iter().zip(tones.iter_mut()) {
                mediarelay::audio::AudioSource::fill(t, &mut frame);
                p.send_audio(&frame).unwrap();
            }
            for (p, h) in people.iter().zip(heard.iter_mut()) {
                while let Some(ev) = p.try_recv() {
                    if let MediaEvent::Audio(f) = ev.event {
                        h.extend_from_slice(&f.samples);
                    }
                }
            }
        },
        75,
    );
    for (i, h) in heard.iter().enumerate() {
        let tail = &h[h.len().saturating_sub(4000)..];
        for (j, &f) in freqs.iter().enumerate() {
            let p = goertzel_power(tail, f, 8000);
            if i == j {
                assert!(p < 1e4, "participant {i} hears itself: {p}");
            } else {
                assert!(p > 1e5, "participant {i} does not hear {j}: {p}");
            }
        }
    }
    assert!(
        conf.stats()
            .iter()
            .all(|s| s.frames_in > 40 && s.frames_out > 40)
    );
    conf.stop();
    mgr.shutdown();
}

#[test]
fn impairment_and_capture_through_the_session() {
    use mediarelay::builder::StartOptions;
    use mediarelay::media::impair::ImpairConfig;
    let mgr = BuilderManager::new(config(51600, IoBackend::Epoll)).unwrap();
    let x = mgr.create_builder("x").unwrap();
    let y = mgr.create_builder("y").unwrap();
    y.process_offer(&x.create_offer().unwrap()).unwrap();
    x.process_answer(&y.create_answer().unwrap()).unwrap();
    let (sx, sy) = (x.media_session().unwrap(), y.media_session().unwrap());
    let opts = StartOptions {
        impair: Some(ImpairConfig {
            loss: 0.2,
            seed: 7,
            ..ImpairConfig::none()
        }),
        capture: true,
        encoded_input: false,
    };
    sx.start_with(&opts).unwrap();
    sy.start().unwrap();
    pace(|_| drop(sx.send_audio(&[100; 160])), 100);
    std::thread::sleep(Duration::from_millis(200));
    let imp = sx.impairment(0).unwrap().stats();
    let got = sy.statistics();
    assert!(imp.dropped > 5 && imp.dropped < 40, "{imp:?}");
    // Every audio packet the session produced was passed or dropped (RTCP
    // is passed through untouched and counted as passed too).
    let sent = sx.statistics().audio_packets_sent;
    assert_eq!(got.packets_received, sent - imp.dropped, "{got:?} {imp:?}");
    assert!(got.lost > 0, "{got:?}");
    let path = std::env::temp_dir().join(format!("mr-builder-{}.pcap", std::process::id()));
    let sum = sx.write_pcap(0, &path).unwrap();
    // The capture sits outside the impairment: it saw what was passed (an
    // RTCP report may leave between the two readings).
    let after = sx.impairment(0).unwrap().stats();
    assert!(
        sum.sent >= imp.passed && sum.sent <= after.passed,
        "{sum:?}"
    );
    let _ = std::fs::remove_file(path);
    mgr.shutdown();
}

/// Real phones' and carriers' SDP (tests/data/sdp/) as offers and as
/// answers: negotiated, or refused with a typed error; never a panic, and
/// every port pair comes back.
#[test]
fn carrier_sdp_fixtures_negotiate_or_fail_typed() {
    let mut cfg = config(51800, IoBackend::Epoll);
    cfg.port_release_delay = Duration::ZERO;
    let mgr = BuilderManager::new(cfg).unwrap();
    let mut answered = 0;
    let mut files: Vec<_> = std::fs::read_dir("tests/data/sdp")
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sdp"))
        .collect();
    files.sort();
    assert!(files.len() >= 10);
    for (i, f) in files.iter().enumerate() {
        let sdp: mediarelay::sdp::Sdp =
            match std::fs::read(f).map(|b| mediarelay::sdp::Sdp::parse(&b)) {
                Ok(Ok(s)) => s,
                _ => continue,
            };
        let callee = mgr.create_builder(&format!("callee{i}")).unwrap();
        match callee.process_offer(&sdp) {
            Ok(()) => {
                let answer = callee.create_answer().unwrap();
                assert_eq!(answer.media().len(), sdp.media().len(), "{f:?}");
                answered += 1;
            }
            Err(e) => eprintln!("{f:?} refused: {e}"),
        }
        let caller = mgr.create_builder(&format!("caller{i}")).unwrap();
        caller.create_offer().unwrap();
        if let Err(e) = caller.process_answer(&sdp) {
            eprintln!("{f:?} as an answer: {e}");
        }
        assert!(mgr.release_builder(&format!("callee{i}")));
        assert!(mgr.release_builder(&format!("caller{i}")));
    }
    assert!(answered >= 5, "{answered}");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(mgr.statistics().ports_in_use, 0);
    mgr.shutdown();
}

#[test]
fn encoded_input_is_sent_as_is() {
    use mediarelay::builder::StartOptions;
    let mgr = BuilderManager::new(config(51400, IoBackend::Epoll)).unwrap();
    let x = mgr.create_builder("x").unwrap();
    let y = mgr.create_builder("y").unwrap();
    y.process_offer(&x.create_offer().unwrap()).unwrap();
    x.process_answer(&y.create_answer().unwrap()).unwrap();
    let (sx, sy) = (x.media_session().unwrap(), y.media_session().unwrap());
    sx.start_with(&StartOptions {
        encoded_input: true,
        ..StartOptions::default()
    })
    .unwrap();
    sy.start().unwrap();
    assert!(matches!(
        sx.send_audio(&[0; 160]),
        Err(MediaError::Handle(_))
    ));
    // µ-law 0xFF is digital silence (ITU-T G.711).
    pace(|_| drop(sx.send_encoded(&[0xFF; 160])), 10);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(sy.statistics().packets_received, 10);
    assert_eq!(sy.statistics().bytes_received, 1600);
    mgr.shutdown();
}

/// Glare (both sides re-offer at once, SIP 491) and a rejected re-offer
/// (SIP 488): the offer is withdrawn and the call goes on.
#[test]
fn withdrawn_offers_leave_the_call_up() {
    let mgr = BuilderManager::new(config(48000, IoBackend::Epoll)).unwrap();
    let a = mgr.create_builder("a").unwrap();
    let b = mgr.create_builder("b").unwrap();
    assert!(matches!(
        a.cancel_offer(),
        Err(BuilderError::State {
            phase: Phase::Idle,
            ..
        })
    ));
    // A rejected initial offer: back to idle, and a new offer works.
    let first = a.create_offer().unwrap();
    a.cancel_offer().unwrap();
    assert_eq!(a.phase(), Phase::Idle);
    let second = a.create_offer().unwrap();
    assert_eq!(first.media()[0].port(), second.media()[0].port());
    b.process_offer(&second).unwrap();
    a.process_answer(&b.create_answer().unwrap()).unwrap();
    // Glare: both re-offer; both withdraw; one re-offers again.
    a.set_direction(Direction::SendOnly);
    b.set_direction(Direction::SendOnly);
    let _ = a.create_offer().unwrap();
    let from_b = b.create_offer().unwrap();
    assert!(matches!(
        a.process_offer(&from_b),
        Err(BuilderError::State {
            phase: Phase::ReofferSent,
            ..
        })
    ));
    a.cancel_offer().unwrap();
    b.cancel_offer().unwrap();
    assert_eq!(
        (a.phase(), b.phase()),
        (Phase::Established, Phase::Established)
    );
    let hold = a.create_offer().unwrap();
    b.set_direction(Direction::SendRecv);
    b.process_offer(&hold).unwrap();
    a.process_answer(&b.create_answer().unwrap()).unwrap();
    assert_eq!(a.media_streams()[0].direction, Direction::SendOnly);
    assert_eq!(b.media_streams()[0].direction, Direction::RecvOnly);
    mgr.shutdown();
}

/// A re-offer that disables the first of two streams (RFC 3264 §8.2):
/// the answer keeps the second stream on its own port, and the first stops.
#[test]
fn reoffer_disabling_a_stream_keeps_the_others_ports() {
    let mgr = BuilderManager::new(config(48200, IoBackend::Epoll)).unwrap();
    let a = mgr.create_builder("a").unwrap();
    let b = mgr.create_builder("b").unwrap();
    a.set_audio_streams(2).unwrap();
    let offer = a.create_offer().unwrap();
    b.process_offer(&offer).unwrap();
    let answer = b.create_answer().unwrap();
    a.process_answer(&answer).unwrap();
    let ports: Vec<u16> = answer.media().iter().map(|m| m.port()).collect();
    assert!(ports[0] != 0 && ports[1] != 0 && ports[0] != ports[1]);
    let in_use = mgr.statistics().ports_in_use;
    // The peer's re-offer: stream 0 disabled, a newer o= version.
    let mut reoffer = offer.clone();
    reoffer.media_mut()[0].set_port(0);
    let v = reoffer.origin().unwrap().session_version;
    reoffer.set_origin_version(v + 1).unwrap();
    b.process_offer(&reoffer).unwrap();
    let again = b.create_answer().unwrap();
    assert_eq!(again.media()[0].port(), 0);
    assert_eq!(again.media()[1].port(), ports[1]);
    let streams = b.media_streams();
    assert!(!streams[0].bound && streams[1].bound);
    assert_eq!(mgr.statistics().ports_in_use, in_use - 1);
    mgr.shutdown();
}
