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
