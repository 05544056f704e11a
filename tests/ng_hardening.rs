//! End to end through the daemon over NG on loopback, on both I/O
//! backends: RTP-bleed attacks and a NAT rebinding, port reuse under
//! churn, unusable SDP addresses, the offer timeout, media during the
//! delete delay, and a two-pair range split over two shards.
#![cfg(feature = "daemon")]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Client, audio_sdp, backends, rtp, start, t};
use mediarelay::ng::OwnedValue;

/// The tests of this file run one at a time: the media timing of the
/// attack scenario must not compete with the churn for the CPU.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Packet interval of every stream here (50 pps).
const PTIME: Duration = Duration::from_millis(20);
/// Payload fill bytes that tell the senders apart.
const FILL_A: u8 = 0xa0;
const FILL_B: u8 = 0xb0;
const FILL_C: u8 = 0xc0;

/// A daemon on `backend` relaying on ports `min`..=`max`, with `extra`
/// flags.
fn daemon(backend: &str, min: u16, max: u16, extra: &[&str]) -> (common::Daemon, Client) {
    let (min, max) = (min.to_string(), max.to_string());
    let mut args = vec![
        "--io-backend",
        backend,
        "--port-min",
        &min,
        "--port-max",
        &max,
    ];
    args.extend_from_slice(extra);
    start(&args)
}

fn endpoint() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

fn port(s: &UdpSocket) -> u16 {
    s.local_addr().unwrap().port()
}

fn relay(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// What a socket received: payload fill, sequence number, sender.
type Received = Vec<(u8, u16, SocketAddr)>;

/// Collects every datagram `sock` receives until `stop` is set.
fn collect(sock: &UdpSocket, stop: &Arc<AtomicBool>) -> JoinHandle<Received> {
    let sock = sock.try_clone().unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let stop = Arc::clone(stop);
    std::thread::spawn(move || {
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, from)) = sock.recv_from(&mut buf) {
                if n >= 13 {
                    got.push((buf[12], u16::from_be_bytes([buf[2], buf[3]]), from));
                }
            }
        }
        got
    })
}

fn sleep_until(t: Instant) {
    if let Some(d) = t.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

/// Offer from A (RTP port `a`) and answer from B (port `b`) with `flags`;
/// returns (where A sends, where B sends).
fn call(c: &mut Client, id: &str, a: u16, b: u16, flags: &[&str]) -> (u16, u16) {
    let b_to = c.offer(id, &audio_sdp("A", a), flags).expect("offer");
    let a_to = c.answer(id, &audio_sdp("B", b), flags).expect("answer");
    (a_to, b_to)
}

/// The `dropped` counters of tag `tag`'s first RTP stream, from `query`.
fn dropped(c: &mut Client, id: &str, tag: &str, reason: &str) -> i64 {
    let q = c.cmd(&[("command", t("query")), ("call-id", t(id))]);
    let stream = q
        .get("tags")
        .and_then(|x| x.get(tag))
        .and_then(|x| x.get("medias"))
        .and_then(OwnedValue::as_list)
        .and_then(|m| m.first())
        .and_then(|m| m.get("streams"))
        .and_then(OwnedValue::as_list)
        .and_then(|s| s.first().cloned())
        .unwrap_or_else(|| panic!("no stream in {q:?}"));
    stream
        .get("dropped")
        .and_then(|d| d.get(reason))
        .and_then(OwnedValue::as_int)
        .unwrap_or(0)
}

/// What the third party forges.
#[derive(Debug, Clone, Copy)]
enum Attack {
    /// Random SSRC, sequence number and timestamp on every packet.
    Random,
    /// A's SSRC with A's next sequence number and timestamp.
    Mirror,
}

/// Ticks of the attack scenario (6 s at 50 pps): C sends during ticks
/// 100..150 (2-3 s, in the learning window) and 200..250 (4-5 s, after it).
const TICKS: u16 = 300;
const ATTACK: [std::ops::Range<u16>; 2] = [100..150, 200..250];

/// A and B stream both ways; a third party C sends to the relay port A
/// sends to, 5 ms after each of A's packets. Returns what A, B and C got.
fn attacked_call(a_to: u16, b_to: u16, eps: [UdpSocket; 3], attack: Attack) -> [Received; 3] {
    let [a, b, c] = eps;
    let stop = Arc::new(AtomicBool::new(false));
    let got: Vec<_> = [&a, &b, &c].iter().map(|s| collect(s, &stop)).collect();
    let (ssrc_a, ssrc_b) = (0x0a0a_0a0a_u32, 0x0b0b_0b0b_u32);
    let mut rng = 0x9e37_79b9_u32;
    let mut random = move || {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        rng
    };
    let base = Instant::now() + Duration::from_millis(20);
    for i in 0..TICKS {
        let at = base + PTIME * u32::from(i);
        let (seq, ts) = (1000 + i, 160 * u32::from(i));
        sleep_until(at);
        a.send_to(&rtp(ssrc_a, seq, ts, FILL_A), relay(a_to))
            .unwrap();
        if ATTACK.iter().any(|r| r.contains(&i)) {
            sleep_until(at + Duration::from_millis(5));
            let forged = match attack {
                Attack::Random => rtp(random(), random() as u16, random(), FILL_C),
                Attack::Mirror => rtp(ssrc_a, seq + 1, ts + 160, FILL_C),
            };
            c.send_to(&forged, relay(a_to)).unwrap();
        }
        sleep_until(at + Duration::from_millis(10));
        b.send_to(&rtp(ssrc_b, seq, ts, FILL_B), relay(b_to))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let mut out = got.into_iter().map(|h| h.join().unwrap());
    [(); 3].map(|()| out.next().unwrap())
}

/// A streams from one address for 3.6 s (past the learning window), then
/// the same stream continues from another (a NAT rebinding) while B keeps
/// streaming, both at 40 ms packet intervals (which leaves 20 ms of margin
/// around the hold for a loaded machine). Returns what B, the old and the
/// new A address got, and when each of A's packets was sent.
fn rebound_call(a_to: u16, b_to: u16, eps: [UdpSocket; 3]) -> ([Received; 3], Vec<Instant>) {
    let [a1, a2, b] = eps;
    let stop = Arc::new(AtomicBool::new(false));
    let got: Vec<_> = [&b, &a1, &a2].iter().map(|s| collect(s, &stop)).collect();
    let base = Instant::now() + Duration::from_millis(20);
    let mut sent = Vec::with_capacity(usize::from(REBIND_TICKS));
    for i in 0..REBIND_TICKS {
        let at = base + REBIND_PTIME * u32::from(i);
        let (seq, ts) = (1000 + i, 320 * u32::from(i));
        sleep_until(at);
        let from = if i < REBIND_AT { &a1 } else { &a2 };
        from.send_to(&rtp(0x0a0a_0a0a, seq, ts, FILL_A), relay(a_to))
            .unwrap();
        sent.push(Instant::now());
        sleep_until(at + Duration::from_millis(20));
        b.send_to(&rtp(0x0b0b_0b0b, seq, ts, FILL_B), relay(b_to))
            .unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let mut out = got.into_iter().map(|h| h.join().unwrap());
    ([(); 3].map(|()| out.next().unwrap()), sent)
}

/// Packet interval of the rebinding call.
const REBIND_PTIME: Duration = Duration::from_millis(40);
/// Ticks of the rebinding call (5.2 s).
const REBIND_TICKS: u16 = 130;
/// Tick at which A's stream moves to its new address (3.6 s).
const REBIND_AT: u16 = 90;

fn count(got: &Received, fill: u8) -> usize {
    got.iter().filter(|p| p.0 == fill).count()
}

/// The four RTP-bleed attacks (random or mirrored stream, with no NG flags
/// as Kamailio sends by default and with `symmetric`) run side by side
/// through one daemon per backend; a NAT rebinding through another, with
/// the default settings.
///
/// The attack daemon runs with `--source-hold 3` (60 ms of hold at 20 ms,
/// 120 ms for an unrelated stream) instead of the default 1.5: the attacker
/// sends 5 ms after the real endpoint, and the margin keeps a loaded CI
/// machine's scheduling delays from turning into a gap the relay sees. The
/// default's exact thresholds are tested on the virtual clock
/// (`src/relay/latch.rs`, `tests/relay_latch.rs`).
#[test]
fn rtp_bleed_attacks_fail_and_nat_rebinding_relatches() {
    let _serial = serial();
    for backend in backends() {
        let (_d, mut c) = daemon(
            backend,
            45000,
            45199,
            &["--delete-delay", "0", "--source-hold", "3"],
        );
        let (_d2, mut c2) = daemon(backend, 45200, 45299, &[]);
        let cases = [
            (Attack::Random, &[][..]),
            (Attack::Mirror, &[][..]),
            (Attack::Random, &["symmetric"][..]),
            (Attack::Mirror, &["symmetric"][..]),
        ];
        let mut runs = Vec::new();
        for (n, (attack, flags)) in cases.into_iter().enumerate() {
            let eps = [endpoint(), endpoint(), endpoint()];
            let id = format!("bleed-{n}");
            let (a_to, b_to) = call(&mut c, &id, port(&eps[0]), port(&eps[1]), flags);
            let label = format!("{backend} {attack:?} flags {flags:?}");
            runs.push((
                id,
                label,
                a_to,
                b_to,
                std::thread::spawn(move || attacked_call(a_to, b_to, eps, attack)),
            ));
        }
        let eps = [endpoint(), endpoint(), endpoint()];
        let (a_to, b_to) = call(&mut c2, "rebind", port(&eps[0]), port(&eps[2]), &[]);
        let rebind = std::thread::spawn(move || rebound_call(a_to, b_to, eps));

        let attacks = ATTACK
            .iter()
            .map(|r| usize::from(r.end - r.start))
            .sum::<usize>();
        for (id, label, a_to, b_to, h) in runs {
            let [at_a, at_b, at_c] = h.join().unwrap();
            assert_eq!(count(&at_b, FILL_C), 0, "{label}: C's packets reached B");
            assert_eq!(
                count(&at_b, FILL_A),
                usize::from(TICKS),
                "{label}: B got all of A's"
            );
            assert!(at_b.iter().all(|p| p.2 == relay(b_to)), "{label}");
            assert!(
                at_c.is_empty(),
                "{label}: C received {} packets",
                at_c.len()
            );
            assert_eq!(
                count(&at_a, FILL_B),
                usize::from(TICKS),
                "{label}: A got all of B's"
            );
            assert!(at_a.iter().all(|p| p.2 == relay(a_to)), "{label}");
            let n = dropped(&mut c, &id, "tagA", "source_active");
            assert_eq!(n, attacks as i64, "{label}: drops counted in query");
        }
        let metric = c
            .metric("mediarelay_dropped_packets_total{reason=\"source_active\"}")
            .expect("metric");
        assert!(metric >= 4 * attacks as u64, "{backend}: /metrics {metric}");

        let ([at_b, at_a1, at_a2], sent) = rebind.join().unwrap();
        let seqs: Vec<u16> = at_b.iter().filter(|p| p.0 == FILL_A).map(|p| p.1).collect();
        // The old address's last packet, and the hold after it (1.5 x 40 ms)
        // plus 10 ms: a packet of the new address sent later than that must
        // get through. On time, that is the new address's second packet.
        let old_last = sent[usize::from(REBIND_AT) - 1];
        let due = old_last + REBIND_PTIME * 3 / 2 + Duration::from_millis(10);
        let missing: Vec<u16> = (0..REBIND_TICKS)
            .filter(|i| !seqs.contains(&(1000 + i)))
            .collect();
        for i in &missing {
            assert!(
                *i >= REBIND_AT && sent[usize::from(*i)] < due,
                "{backend}: rebinding lost packet {i} (sent {:?} after the old address's last); lost {missing:?}",
                sent[usize::from(*i)].saturating_duration_since(old_last)
            );
        }
        // B's stream follows: everything goes to one of A's addresses, and
        // to the new one from shortly after the re-latch.
        let (old, new) = (count(&at_a1, FILL_B), count(&at_a2, FILL_B));
        assert_eq!(
            old + new,
            usize::from(REBIND_TICKS),
            "{backend}: B's stream"
        );
        let relatched = REBIND_AT + u16::try_from(missing.len()).unwrap();
        assert!(
            new + 1 >= usize::from(REBIND_TICKS - relatched),
            "{backend}: B's stream followed A ({new} at the new address, re-latched at {relatched})"
        );
    }
}

/// 2,000 offer + answer + delete cycles, one call up at a time, on a
/// 400-pair range: the release quarantine yields instead of failing.
#[test]
fn churn_reuses_quarantined_ports() {
    let _serial = serial();
    for backend in backends() {
        let (_d, mut c) = daemon(
            backend,
            46000,
            46799,
            &["--num-threads", "2", "--delete-delay", "0"],
        );
        let (a, b) = (endpoint(), endpoint());
        let mut errors = Vec::new();
        for i in 0..2000 {
            let id = format!("churn-{i}");
            if let Err(e) = c.offer(&id, &audio_sdp("A", port(&a)), &[]) {
                errors.push(format!("{i} offer: {e}"));
                continue;
            }
            if let Err(e) = c.answer(&id, &audio_sdp("B", port(&b)), &[]) {
                errors.push(format!("{i} answer: {e}"));
            }
            assert_eq!(c.delete(&id), "ok");
        }
        assert!(
            errors.is_empty(),
            "{backend}: {} errors, first {:?}",
            errors.len(),
            errors.first()
        );
        assert_eq!(c.metric("mediarelay_port_pairs{state=\"in_use\"}"), Some(0));
        let cut = c
            .metric("mediarelay_ports_quarantine_cut_short_total")
            .expect("metric");
        assert!(cut > 0, "{backend}: quarantine never cut short");
    }
}

/// Offers whose media address or port cannot be used are errors naming the
/// line, and leave no call behind.
#[test]
fn unusable_addresses_are_refused_and_leave_nothing() {
    let _serial = serial();
    for backend in backends() {
        let (_d, mut c) = daemon(backend, 47000, 47099, &[]);
        let head = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=A\r\nt=0 0\r\n";
        let cases = [
            (
                format!("{head}c=IN IP4 999.1.1.1\r\nm=audio 4000 RTP/AVP 0\r\n"),
                "c=IN IP4 999.1.1.1",
            ),
            (
                format!("{head}c=IN IP4 127.0.0.1\r\nm=audio 70000 RTP/AVP 0\r\n"),
                "media line 6",
            ),
            (
                format!("{head}c=IN IP6 ::1\r\nm=audio 4000 RTP/AVP 0\r\n"),
                "c=IN IP6 ::1",
            ),
            (
                format!("{head}c=IN IP4 ::1\r\nm=audio 4000 RTP/AVP 0\r\n"),
                "c=IN IP4 ::1",
            ),
            (
                format!("{head}c=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:99999\r\n"),
                "a=rtcp:99999",
            ),
        ];
        for (i, (sdp, line)) in cases.iter().enumerate() {
            let id = format!("bad-{i}");
            let e = c.offer(&id, sdp, &[]).expect_err("offer must fail");
            assert!(e.contains(line), "{backend}: {e:?} does not name {line:?}");
        }
        assert!(c.list().is_empty(), "{backend}: {:?}", c.list());
        assert_eq!(c.metric("mediarelay_port_pairs{state=\"in_use\"}"), Some(0));
    }
}

/// Sends one RTP packet each way and checks both arrive.
fn media_flows(a: &UdpSocket, b: &UdpSocket, a_to: u16, b_to: u16, seq: u16) -> bool {
    let mut buf = [0u8; 2048];
    for s in [a, b] {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
    }
    a.send_to(&rtp(0xa, seq, 0, FILL_A), relay(a_to)).unwrap();
    let ab =
        matches!(b.recv_from(&mut buf), Ok((_, from)) if from == relay(b_to) && buf[12] == FILL_A);
    b.send_to(&rtp(0xb, seq, 0, FILL_B), relay(b_to)).unwrap();
    let ba =
        matches!(a.recv_from(&mut buf), Ok((_, from)) if from == relay(a_to) && buf[12] == FILL_B);
    ab && ba
}

/// An offer answered after 3.5 media timeouts still has its relay, and a
/// stray packet before the caller's first does not lock the caller out;
/// media keeps flowing during the delete delay and stops after it.
#[test]
fn offer_timeout_and_delete_delay() {
    let _serial = serial();
    for backend in backends() {
        let (_d, mut c) = daemon(
            backend,
            47200,
            47299,
            &["--timeout", "1", "--delete-delay", "2"],
        );
        let (a, b) = (endpoint(), endpoint());
        let b_to = c
            .offer("ring", &audio_sdp("A", port(&a)), &[])
            .expect("offer");
        // Rings for 3.5 media timeouts without early media, longer than
        // the learning window that opened with the offer.
        std::thread::sleep(Duration::from_millis(3500));
        let a_to = c
            .answer("ring", &audio_sdp("B", port(&b)), &[])
            .expect("answer after 3.5 media timeouts");
        // A stray packet (say, from a previous user of the port) reaches
        // A's relay port first: as the first packet it is relayed to B, but
        // it must not lock A out.
        endpoint()
            .send_to(&rtp(0x5, 1, 0, FILL_C), relay(a_to))
            .unwrap();
        let mut buf = [0u8; 2048];
        b.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        assert!(b.recv_from(&mut buf).is_ok() && buf[12] == FILL_C);
        std::thread::sleep(Duration::from_millis(150));
        assert!(
            media_flows(&a, &b, a_to, b_to, 1),
            "{backend}: media after a late answer"
        );

        assert_eq!(c.delete("ring"), "ok");
        let deleted = Instant::now();
        let mut seq = 2;
        while deleted.elapsed() < Duration::from_millis(1200) {
            assert!(
                media_flows(&a, &b, a_to, b_to, seq),
                "{backend}: media during the delete delay ({:?} after delete)",
                deleted.elapsed()
            );
            assert_eq!(c.list(), ["ring"]);
            seq += 1;
            std::thread::sleep(Duration::from_millis(100));
        }
        // Removed within a tick of the 2 s delay.
        std::thread::sleep(Duration::from_millis(1500));
        assert!(c.list().is_empty(), "{backend}");
        assert!(
            !media_flows(&a, &b, a_to, b_to, seq),
            "{backend}: media after removal"
        );
        assert_eq!(c.metric("mediarelay_port_pairs{state=\"in_use\"}"), Some(0));
    }
}

/// The smallest range that holds a call (two pairs) still places one when
/// it is split over two shards.
#[test]
fn two_pair_range_on_two_shards_places_a_call() {
    let _serial = serial();
    for backend in backends() {
        let (_d, mut c) = daemon(
            backend,
            31000,
            31003,
            &["--num-threads", "2", "--delete-delay", "0"],
        );
        for round in 0..3 {
            let (a, b) = (endpoint(), endpoint());
            let id = format!("small-{round}");
            let (a_to, b_to) = call(&mut c, &id, port(&a), port(&b), &[]);
            assert!(
                media_flows(&a, &b, a_to, b_to, 1),
                "{backend} round {round}"
            );
            // The range is full now.
            let e = c
                .offer("second", &audio_sdp("A", port(&a)), &[])
                .expect_err("no room for a second call");
            assert_eq!(e, "Ran out of ports");
            assert_eq!(c.delete(&id), "ok");
        }
    }
}
