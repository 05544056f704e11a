//! Media endpoints on real sockets: two endpoints on the engine's shards
//! talking over loopback, on both I/O backends, and two endpoints talking
//! through the `mediarelay` daemon's relay.

mod common;

use std::time::{Duration, Instant};

use mediarelay::codec::G711;
use mediarelay::engine::{EndpointInfo, Engine, EngineConfig, IoBackend, LegOptions};
use mediarelay::media::handle::{MediaHandle, endpoint};
use mediarelay::media::session::{CodecSpec, InputMode, SessionConfig};
use mediarelay::media::{MediaEvent, SessionState};
use mediarelay::rtcp::NtpTime;

/// Payload bytes per packet at 10 ms of G.711.
const FRAME: usize = 80;

fn config() -> SessionConfig {
    let mut c = SessionConfig::new(NtpTime::from_system_time(std::time::SystemTime::now()));
    c.ptime = Duration::from_millis(10);
    c.input = InputMode::Payload(CodecSpec::G711(G711::Pcmu));
    c.deliver_payload = Some(None);
    c.deliver_audio = false;
    c.jitter = None;
    c.rtcp_interval = Duration::from_secs(1);
    c.event_capacity = 256;
    c.frames = 128;
    c
}

fn engine(backend: IoBackend, base: u16) -> Engine {
    Engine::start(EngineConfig {
        shards: 2,
        io_backend: backend,
        port_min: base,
        port_max: base + 99,
        pin_cores: false,
        ..EngineConfig::default()
    })
    .unwrap()
}

/// Two endpoints on `e`, each sending to the other's leg.
fn pair(e: &Engine) -> ((EndpointInfo, MediaHandle), (EndpointInfo, MediaHandle)) {
    pair_with(e, false)
}

/// [`pair`], with RTCP muxed on the RTP port (RFC 5761) when `mux`.
fn pair_with(e: &Engine, mux: bool) -> ((EndpointInfo, MediaHandle), (EndpointInfo, MediaHandle)) {
    common::endpoint_pair(e, config(), config(), mux).unwrap()
}

/// Frame `i` of a sender tagged `tag`: distinct bytes per frame.
fn frame(tag: u8, i: usize) -> [u8; FRAME] {
    let mut f = [0u8; FRAME];
    for (j, b) in f.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31) ^ (j as u8) ^ tag;
    }
    f[0] = (i >> 8) as u8;
    f[1] = i as u8;
    f
}

/// What one side received and reported.
#[derive(Default)]
struct Seen {
    payloads: Vec<Vec<u8>>,
    digits: Vec<u8>,
    rtts: Vec<Duration>,
}

impl Seen {
    fn take(&mut self, h: &MediaHandle) {
        while let Some(e) = h.try_recv() {
            match e {
                MediaEvent::Payload(p) => self.payloads.push(p.payload.to_vec()),
                MediaEvent::Dtmf(d) if d.ended => self.digits.push(d.event.0),
                MediaEvent::Rtcp(r) => self.rtts.extend(r.rtt),
                _ => {}
            }
        }
    }
}

/// Streams `n` frames each way between `ha` and `hb` (feeding each input
/// ring as it drains), then `digits` from A, until everything arrived or
/// `limit` passed.
fn exchange(
    ha: &mut MediaHandle,
    hb: &mut MediaHandle,
    n: usize,
    digits: &str,
    limit: Duration,
) -> (Seen, Seen) {
    let (mut sa, mut sb) = (Seen::default(), Seen::default());
    let (mut wa, mut wb) = (0usize, 0usize);
    let (mut pa, mut pb) = (0usize, 0usize);
    let deadline = Instant::now() + limit;
    let mut digits_sent = false;
    while Instant::now() < deadline {
        for (h, w, p, tag) in [
            (&mut *ha, &mut wa, &mut pa, 0xa0u8),
            (&mut *hb, &mut wb, &mut pb, 0xb0),
        ] {
            while *w < n {
                let f = frame(tag, *w);
                let k = h.write_payload(&f[*p..]).unwrap();
                *p += k;
                if *p < FRAME {
                    break;
                }
                *p = 0;
                *w += 1;
            }
        }
        // Digits once A's audio is all out (an event holds audio back).
        if sb.payloads.len() >= n && !digits_sent {
            for d in digits.chars() {
                ha.send_dtmf(d, Duration::from_millis(60)).unwrap();
            }
            digits_sent = true;
        }
        sa.take(ha);
        sb.take(hb);
        if sb.payloads.len() >= n
            && sa.payloads.len() >= n
            && sb.digits.len() >= digits.len()
            && !sa.rtts.is_empty()
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (sa, sb)
}

fn check_payloads(got: &[Vec<u8>], tag: u8, n: usize, who: &str) {
    let first = got.first().map(|p| (p[0], p[1]));
    let last = got.last().map(|p| (p[0], p[1]));
    assert_eq!(
        got.len(),
        n,
        "{who}: {} of {n} packets, first {first:?} last {last:?}",
        got.len()
    );
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p[..], frame(tag, i)[..], "{who}: packet {i} differs");
    }
}

fn endpoints_exchange_media_dtmf_and_rtcp(backend: IoBackend, base: u16) {
    let e = engine(backend, base);
    let ((a, mut ha), (b, mut hb)) = pair(&e);
    let digits = "0123456789*#ABCD";
    let (sa, sb) = exchange(&mut ha, &mut hb, 1000, digits, Duration::from_secs(40));
    check_payloads(&sb.payloads, 0xa0, 1000, "B");
    check_payloads(&sa.payloads, 0xb0, 1000, "A");
    assert_eq!(sb.digits, (0u8..16).collect::<Vec<_>>(), "digits at B");
    assert!(!sa.rtts.is_empty(), "A measured no RTT");
    assert!(
        sa.rtts.iter().all(|r| *r < Duration::from_millis(50)),
        "{:?}",
        sa.rtts
    );
    let stats = e.stats();
    assert_eq!(stats.endpoints, 2);
    assert!(stats.delivered >= 2000, "{stats:?}");
    let st = ha.stats();
    assert_eq!(st.audio_sent, 1000, "{st:?}");
    assert!(st.rtt_us > 0 || st.rtcp_received > 0, "{st:?}");
    e.delete_call(a.id).unwrap();
    e.delete_call(b.id).unwrap();
    // The endpoints are gone: their event channels close.
    while ha.recv_timeout(Duration::from_secs(2)).is_some() {}
    assert!(ha.events().is_closed());
    // Counters are published at the end of the shard's turn.
    let deadline = Instant::now() + Duration::from_secs(2);
    while e.stats().endpoints != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(e.stats().endpoints, 0);
    e.shutdown();
}

fn stop_sends_bye(backend: IoBackend, base: u16) {
    let e = engine(backend, base);
    let ((_a, mut ha), (_b, mut hb)) = pair(&e);
    exchange(&mut ha, &mut hb, 50, "", Duration::from_secs(5));
    ha.stop().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut bye = false;
    let mut stopped = false;
    while Instant::now() < deadline && !(bye && stopped) {
        if let Some(MediaEvent::State(SessionState::RemoteBye)) = hb.try_recv() {
            bye = true;
        }
        if let Some(MediaEvent::State(SessionState::Stopped)) = ha.try_recv() {
            stopped = true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(bye, "B saw no BYE");
    assert!(stopped, "A did not report its stop");
    e.shutdown();
}

fn muxed_rtcp_and_a_bridged_relay_leg(backend: IoBackend, base: u16) {
    let e = engine(backend, base);
    // RTCP on the RTP port: reports still flow and give an RTT.
    let ((a, mut ha), (b, mut hb)) = pair_with(&e, true);
    assert_eq!(a.leg.rtcp, a.leg.rtp);
    let (sa, sb) = exchange(&mut ha, &mut hb, 100, "", Duration::from_secs(15));
    check_payloads(&sb.payloads, 0xa0, 100, "B (mux)");
    assert!(!sa.rtts.is_empty(), "no RTT over rtcp-mux");
    e.delete_call(a.id).unwrap();
    e.delete_call(b.id).unwrap();

    // A relayed call whose leg 0 is bridged to an endpoint: the phone on
    // leg 0 talks to the application instead of to leg 1.
    let phone = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    phone
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let other = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let call = e
        .create_call(mediarelay::engine::CallSpec {
            tag: 9,
            legs: [
                LegOptions {
                    remote_rtp: Some(phone.local_addr().unwrap()),
                    ..LegOptions::default()
                },
                LegOptions {
                    remote_rtp: Some(other.local_addr().unwrap()),
                    ..LegOptions::default()
                },
            ],
        })
        .unwrap();
    let (ep, mut h) = endpoint(config(), Instant::now()).unwrap();
    e.attach_endpoint(call.id, 0, Box::new(ep)).unwrap();
    for seq in 0..20u16 {
        let pkt = common::rtp(0x1234, seq, u32::from(seq) * 80, seq as u8);
        let mut pkt = pkt;
        pkt[1] = 0; // PCMU
        phone.send_to(&pkt, call.legs[0].rtp).unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    for i in 0..10 {
        while h.write_payload(&frame(0xc0, i)).unwrap() < FRAME {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let mut got = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.payloads.len() < 20 && Instant::now() < deadline {
        got.take(&h);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(got.payloads.len(), 20, "endpoint got the phone's packets");
    let mut buf = [0u8; 2048];
    let mut from_app = 0;
    while from_app < 10 {
        let (n, from) = phone.recv_from(&mut buf).expect("the application's audio");
        assert_eq!(from, call.legs[0].rtp, "sent from leg 0's socket");
        if n > 12 && buf[1] & 0x7f == 0 {
            assert_eq!(&buf[12..n], &frame(0xc0, from_app)[..]);
            from_app += 1;
        }
    }
    // Nothing of it reached leg 1's far end.
    other.set_nonblocking(true).unwrap();
    assert!(other.recv_from(&mut buf).is_err());
    e.shutdown();
}

both_backends! {
    offset: 500;
    endpoints_exchange_media_dtmf_and_rtcp: 50000,
    stop_sends_bye: 50200,
    muxed_rtcp_and_a_bridged_relay_leg: 50300,
}

/// Two endpoints of an application engine talk through the daemon's
/// relay: offer from A, answer from B, media and DTMF both ways.
#[cfg(feature = "daemon")]
#[test]
fn endpoints_talk_through_the_daemon() {
    for backend in common::backends() {
        let (min, max) = if backend == "uring" {
            (51000, 51099)
        } else {
            (51100, 51199)
        };
        let (_d, mut c) = common::start(&[
            "--io-backend",
            backend,
            "--port-min",
            &min.to_string(),
            "--port-max",
            &max.to_string(),
        ]);
        let app = engine(
            IoBackend::Epoll,
            if backend == "uring" { 51200 } else { 51300 },
        );
        let now = Instant::now();
        let (ea, mut ha) = endpoint(config(), now).unwrap();
        let (eb, mut hb) = endpoint(config(), now).unwrap();
        let a = app
            .create_endpoint(mediarelay::engine::EndpointSpec::default(), Box::new(ea))
            .unwrap();
        let b = app
            .create_endpoint(mediarelay::engine::EndpointSpec::default(), Box::new(eb))
            .unwrap();
        let call = format!("ep-{backend}");
        // The offer's reply tells B where to send; the answer's tells A.
        let b_to = c
            .offer(&call, &common::audio_sdp("a", a.leg.rtp.port()), &[])
            .unwrap();
        let a_to = c
            .answer(&call, &common::audio_sdp("b", b.leg.rtp.port()), &[])
            .unwrap();
        let relay = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));
        for (info, to) in [(&a, a_to), (&b, b_to)] {
            app.update_leg(
                info.id,
                0,
                mediarelay::engine::LegUpdate {
                    remote_rtp: Some(relay(to)),
                    ..Default::default()
                },
            )
            .unwrap();
        }
        let (sa, sb) = exchange(&mut ha, &mut hb, 300, "159#", Duration::from_secs(20));
        check_payloads(&sb.payloads, 0xa0, 300, &format!("{backend}: B"));
        check_payloads(&sa.payloads, 0xb0, 300, &format!("{backend}: A"));
        assert_eq!(sb.digits, vec![1, 5, 9, 11], "{backend}: digits at B");
        assert_eq!(c.delete(&call), "ok");
        app.shutdown();
    }
}
