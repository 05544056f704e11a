//! What the Go `advanced_features` example meant to show, done for real
//! over UDP sockets on 127.0.0.1:
//!
//! - (a) direction changes through re-offers on a live call (sendrecv,
//!   hold, recvonly, inactive, resume), with both sides trying to talk
//!   throughout and the packets each side received per phase;
//! - (b) reconnection: the far end's builder is released mid-call, the
//!   near end notices the silence and redials with exponential backoff
//!   over a small SDP-over-UDP signalling socket, where a failed attempt
//!   is a real refusal;
//! - (c) codec negotiation: a PCMA-only answerer, and offers of codecs
//!   this library does not implement rejected with a typed error;
//! - (d) RTCP quality under injected loss and jitter: loss, jitter, RTT,
//!   the E-model MOS estimate, and the far end's RTCP reports;
//! - (e) custom SDP attributes written by one side and parsed by the
//!   other.
//!
//! ```text
//! cargo run --release --example advanced_features            # full timings
//! cargo run --release --example advanced_features -- --quick # same steps, short
//! ```
//!
//! Lines starting with `## ` are `key=value` figures for scripts; the
//! process exits non-zero, with a message on stderr, when a step or a
//! self-check fails.

mod report;

use report::{Pacer, Report};
use std::io::ErrorKind;
use std::net::UdpSocket;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mediarelay::audio::{AudioSource, Tone};
use mediarelay::builder::{
    BuilderError, BuilderManager, ManagerConfig, MediaError, MediaSession, MediaStatistics, Phase,
    PortStrategy, StartOptions,
};
use mediarelay::media::impair::ImpairConfig;
use mediarelay::media::{MediaEvent, SessionState};
use mediarelay::ports::PortRange;
use mediarelay::sdp::{Direction, Sdp};

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

const PTIME: Duration = Duration::from_millis(20);
const FRAME: usize = 160;
const RATE: u32 = 8000;

fn main() -> ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    let mut report = Report::default();
    match run(quick, &mut report) {
        Ok(()) => report.finish("advanced_features"),
        Err(e) => {
            eprintln!("advanced_features: step failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(quick: bool, report: &mut Report) -> Result<()> {
    println!(
        "Advanced features example ({} mode)",
        if quick { "quick" } else { "full" }
    );
    let pairs = PortRange::new(30000, 30100)?.pairs() as usize;
    let mgr = BuilderManager::new(ManagerConfig {
        local_ip: "127.0.0.1".parse()?,
        min_port: 30000,
        max_port: 30100,
        // The range holds `pairs` RTP/RTCP pairs, one per builder; the Go
        // example kept the default 100, which its own validation refused.
        max_concurrent_builders: pairs,
        port_strategy: PortStrategy::Sequential,
        rtcp_interval: Duration::from_millis(500),
        ..ManagerConfig::default()
    })?;
    println!(
        "Manager: ports 30000-30100 = {pairs} RTP/RTCP pairs, so at most {pairs} builders; \
         payload types PCMU 0, PCMA 8; telephone-event 101; RTCP every 500 ms (randomised)"
    );
    directions(&mgr, quick, report)?;
    reconnection(&mgr, quick, report)?;
    codecs(&mgr, report)?;
    quality(&mgr, quick, report)?;
    attributes(&mgr, report)?;
    mgr.shutdown();
    Ok(())
}

/// Negotiates `a` (offerer) with `b`; both sessions, not started.
fn call(mgr: &BuilderManager, a: &str, b: &str) -> Result<(MediaSession, MediaSession)> {
    let x = mgr.create_builder(a)?;
    let y = mgr.create_builder(b)?;
    y.process_offer(&x.create_offer()?)?;
    x.process_answer(&y.create_answer()?)?;
    match (x.media_session(), y.media_session()) {
        (Some(sx), Some(sy)) => Ok((sx, sy)),
        _ => Err(format!("{a}/{b}: no media session").into()),
    }
}

fn hang_up(mgr: &BuilderManager, ids: &[&str]) {
    for id in ids {
        if let Some(s) = mgr.builder(id).and_then(|b| b.media_session()) {
            let _ = s.stop();
        }
        mgr.release_builder(id);
    }
}

/// Frames each side wrote and had refused while talking.
#[derive(Default, Clone, Copy)]
struct Talk {
    refused: [u64; 2],
}

/// Both sessions try to send a frame of their tone every ptime for
/// `frames` ptimes; `NotSending` (the direction forbids it) is counted,
/// any other error ends the step. Events are drained and handed to `on`.
fn talk(
    sides: [&MediaSession; 2],
    tones: &mut [Tone; 2],
    frames: u32,
    mut on: impl FnMut(usize, MediaEvent),
) -> Result<Talk> {
    let mut t = Talk::default();
    let mut pacer = Pacer::new();
    let mut frame = [0i16; FRAME];
    for _ in 0..frames {
        for (i, s) in sides.iter().enumerate() {
            tones[i].fill(&mut frame);
            match s.send_audio(&frame) {
                Ok(_) => {}
                Err(MediaError::NotSending) => t.refused[i] += 1,
                Err(e) => return Err(e.into()),
            }
            while let Some(ev) = s.try_recv() {
                on(i, ev.event);
            }
        }
        pacer.tick();
    }
    Ok(t)
}

fn tones(f1: f64, f2: f64) -> Result<[Tone; 2]> {
    Ok([Tone::sine(f1, 0.3, RATE)?, Tone::sine(f2, 0.3, RATE)?])
}

// ------------------------------------------------------------ (a) direction

fn directions(mgr: &BuilderManager, quick: bool, report: &mut Report) -> Result<()> {
    println!("\n=== (a) Direction changes by re-offer, on a live call ===");
    let (a, b) = call(mgr, "alice-direction", "bob-direction")?;
    a.start()?;
    b.start()?;
    let (Some(alice), Some(bob)) = (mgr.builder("alice-direction"), mgr.builder("bob-direction"))
    else {
        return Err("direction builders vanished".into());
    };
    let frames: u32 = if quick { 20 } else { 50 };
    println!(
        "alice and bob each try to send a frame every 20 ms for {} ms per phase ({frames} \
         frames); counts are RTP packets per phase (statistics deltas, after 100 ms to settle; \
         a frame leaves on its session's next 20 ms tick, so a count may take in one frame \
         written just before the phase or leave out its own last one)",
        frames * 20
    );
    println!(
        "  {:<9} {:<14} {:<14} {:>10} {:>10} {:>8} {:>8} {:>9}",
        "phase",
        "alice offers",
        "bob answers",
        "alice sent",
        "alice rcvd",
        "bob sent",
        "bob rcvd",
        "refused"
    );
    let steps: [(&str, Option<Direction>); 5] = [
        ("sendrecv", None),
        ("sendonly", Some(Direction::SendOnly)),
        ("recvonly", Some(Direction::RecvOnly)),
        ("inactive", Some(Direction::Inactive)),
        ("resume", Some(Direction::SendRecv)),
    ];
    let mut t = tones(500.0, 700.0)?;
    let mut all_ok = true;
    for (label, dir) in steps {
        let (offered, answered) = match dir {
            None => (Direction::SendRecv, Direction::SendRecv),
            Some(d) => {
                alice.set_direction(d);
                let offer = alice.create_offer()?;
                bob.process_offer(&offer)?;
                let answer = bob.create_answer()?;
                alice.process_answer(&answer)?;
                (offer.media_direction(0), answer.media_direction(0))
            }
        };
        let da = alice.media_streams().first().map(|s| s.direction);
        let db = bob.media_streams().first().map(|s| s.direction);
        let (Some(da), Some(db)) = (da, db) else {
            return Err("a stream vanished".into());
        };
        talk([&a, &b], &mut t, 5, |_, _| {})?;
        let (a0, b0) = (a.statistics(), b.statistics());
        let r = talk([&a, &b], &mut t, frames, |_, _| {})?;
        let (a1, b1) = (a.statistics(), b.statistics());
        let a_tx = a1.audio_packets_sent - a0.audio_packets_sent;
        let b_tx = b1.audio_packets_sent - b0.audio_packets_sent;
        let a_rx = a1.packets_received - a0.packets_received;
        let b_rx = b1.packets_received - b0.packets_received;
        println!(
            "  {:<9} {:<14} {:<14} {:>10} {:>10} {:>8} {:>8} {:>9}",
            label,
            offered.name(),
            answered.name(),
            a_tx,
            a_rx,
            b_tx,
            b_rx,
            format!("{}/{}", r.refused[0], r.refused[1])
        );
        // What the negotiated directions allow, and so must be seen.
        let flows = |tx_side: Direction, rx_side: Direction| tx_side.sends() && rx_side.receives();
        let ok = da == offered
            && db == answered
            && (a_tx > 0) == da.sends()
            && (b_tx > 0) == db.sends()
            && (a_rx > 0) == flows(db, da)
            && (b_rx > 0) == flows(da, db)
            && (r.refused[0] == 0) == da.sends()
            && (r.refused[1] == 0) == db.sends();
        if !ok {
            println!("    ^ not what {} / {} allow", da.name(), db.name());
        }
        all_ok &= ok;
        report.figure(
            &format!("dir_{label}_a_rx"),
            a_rx,
            "RTP packets alice received during the phase",
        );
        report.figure(
            &format!("dir_{label}_b_rx"),
            b_rx,
            "RTP packets bob received during the phase",
        );
    }
    println!(
        "  refused: frames send_audio refused with NotSending (alice/bob): the direction forbids sending"
    );
    println!(
        "  On hold (alice sendonly, bob recvonly) only alice's audio reaches bob; inactive stops both."
    );
    report.figure(
        "directions_ok",
        all_ok,
        "every phase: negotiated directions as offered/answered, and packets flowed exactly where they allow",
    );
    report.check("direction changes take effect both ways", all_ok);
    hang_up(mgr, &["alice-direction", "bob-direction"]);
    Ok(())
}

// ----------------------------------------------------------- (b) reconnect

/// Bob's phone: waits for an SDP offer on its signalling socket, answers
/// it, then talks until `hangup`; then its builder is released (its call
/// is gone) and the socket closed. Returns the RTP packets it received.
fn bob_phone(mgr: &BuilderManager, sock: UdpSocket, id: &str, hangup: &AtomicBool) -> Result<u64> {
    sock.set_read_timeout(Some(PTIME))?;
    let mut buf = [0u8; 4096];
    let session = loop {
        if hangup.load(Ordering::SeqCst) {
            return Ok(0);
        }
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) => return Err(e.into()),
        };
        let offer = Sdp::parse(&buf[..n])?;
        let b = mgr.create_builder(id)?;
        b.process_offer(&offer)?;
        let answer = b.create_answer()?;
        sock.send_to(&answer.to_bytes(), from)?;
        let s = b.media_session().ok_or("bob: no media session")?;
        s.start()?;
        break s;
    };
    let mut tone = Tone::sine(440.0, 0.3, RATE)?;
    let mut frame = [0i16; FRAME];
    let mut pacer = Pacer::new();
    while !hangup.load(Ordering::SeqCst) {
        tone.fill(&mut frame);
        session.send_audio(&frame)?;
        while session.try_recv().is_some() {}
        pacer.tick();
    }
    let rx = session.statistics().packets_received;
    mgr.release_builder(id);
    Ok(rx)
}

/// Alice dials: a new builder offers over the signalling socket (connected
/// to bob's address) and waits up to 250 ms for the answer. On failure the
/// builder is released and the reason returned.
fn dial(
    mgr: &BuilderManager,
    sig: &UdpSocket,
    id: &str,
) -> std::result::Result<MediaSession, String> {
    let attempt = || -> Result<MediaSession> {
        let b = mgr.create_builder(id)?;
        let offer = b.create_offer()?;
        sig.send(&offer.to_bytes())?;
        let mut buf = [0u8; 4096];
        let n = match sig.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err("no answer within 250 ms".into());
            }
            Err(e) => return Err(format!("signalling: {e}").into()),
        };
        b.process_answer(&Sdp::parse(&buf[..n])?)?;
        let s = b.media_session().ok_or("no media session")?;
        s.start()?;
        Ok(s)
    };
    attempt().map_err(|e| {
        mgr.release_builder(id);
        e.to_string()
    })
}

/// Alice talks for `frames` ptimes; returns the RTP packets she received.
fn alice_talks(s: &MediaSession, frames: u32) -> Result<u64> {
    let before = s.statistics().packets_received;
    let mut tone = Tone::sine(600.0, 0.3, RATE)?;
    let mut frame = [0i16; FRAME];
    let mut pacer = Pacer::new();
    for _ in 0..frames {
        tone.fill(&mut frame);
        s.send_audio(&frame)?;
        while s.try_recv().is_some() {}
        pacer.tick();
    }
    Ok(s.statistics().packets_received - before)
}

fn reconnection(mgr: &BuilderManager, quick: bool, report: &mut Report) -> Result<()> {
    println!("\n=== (b) Reconnection after the far end disappears ===");
    const WATCHDOG: Duration = Duration::from_millis(300);
    let frames: u32 = if quick { 25 } else { 50 };
    let (hangup1, hangup2) = (AtomicBool::new(false), AtomicBool::new(false));
    std::thread::scope(|scope| -> Result<()> {
        let bob_sock = UdpSocket::bind("127.0.0.1:0")?;
        let bob_addr = bob_sock.local_addr()?;
        println!("bob's phone answers SDP offers on UDP {bob_addr} (one datagram each way)");
        let bob1 = scope.spawn(|| bob_phone(mgr, bob_sock, "bob-phone-1", &hangup1));
        let sig = UdpSocket::bind("127.0.0.1:0")?;
        sig.connect(bob_addr)?;
        sig.set_read_timeout(Some(Duration::from_millis(250)))?;
        let a = dial(mgr, &sig, "alice-call-1")?;
        let rx = alice_talks(&a, frames)?;
        println!(
            "Call up: alice received {rx} RTP packets from bob in {} ms",
            frames * 20
        );

        // Bob's phone goes away: its builder is released mid-call.
        let gone = Instant::now();
        hangup1.store(true, Ordering::SeqCst);
        let mut last_rx = a.statistics().packets_received;
        let mut last_change = Instant::now();
        let mut bye_after = None;
        let mut tone = Tone::sine(600.0, 0.3, RATE)?;
        let mut frame = [0i16; FRAME];
        let mut pacer = Pacer::new();
        let noticed = loop {
            tone.fill(&mut frame);
            a.send_audio(&frame)?;
            while let Some(ev) = a.try_recv() {
                if let MediaEvent::State(SessionState::RemoteBye) = ev.event {
                    bye_after.get_or_insert(gone.elapsed());
                }
            }
            let rx = a.statistics().packets_received;
            if rx != last_rx {
                last_rx = rx;
                last_change = Instant::now();
            }
            if last_change.elapsed() >= WATCHDOG {
                break Instant::now();
            }
            if gone.elapsed() > Duration::from_secs(5) {
                return Err("alice never noticed bob was gone".into());
            }
            pacer.tick();
        };
        let bob_rx1 = bob1.join().map_err(|_| "bob's phone panicked")??;
        let detect_ms = noticed.duration_since(gone).as_millis();
        println!(
            "t=0: bob's phone hangs up (it stops and releases its builder; it had received \
             {bob_rx1} RTP packets from alice over the whole call); every +time below is since then"
        );
        println!(
            "  last RTP from bob reached alice at +{} ms",
            last_change.duration_since(gone).as_millis()
        );
        match bye_after {
            Some(d) => println!(
                "  RTCP BYE from bob reached alice at +{} ms (a crashed phone sends none; the watchdog does not rely on it)",
                d.as_millis()
            ),
            None => println!("  no RTCP BYE reached alice"),
        }
        println!(
            "  alice's watchdog (no RTP for {} ms) fired at +{detect_ms} ms; she ends the dead call",
            WATCHDOG.as_millis()
        );
        a.stop()?;
        mgr.release_builder("alice-call-1");

        // Redial with exponential backoff; bob's phone comes back only
        // after the second failed attempt. Times stay on the same base:
        // since bob's hang-up.
        let mut delay = Duration::from_millis(100);
        let mut delays = Vec::new();
        let mut attempts = 0;
        let mut call = None;
        let mut bob2 = None;
        for attempt in 1..=6u32 {
            std::thread::sleep(delay);
            attempts = attempt;
            delays.push(delay.as_millis().to_string());
            let id = format!("alice-call-{}", attempt + 1);
            let at = gone.elapsed().as_millis();
            match dial(mgr, &sig, &id) {
                Ok(s) => {
                    println!(
                        "  attempt {attempt} at +{at} ms (after a {} ms backoff): answered, call up again",
                        delay.as_millis()
                    );
                    call = Some((id, s));
                    break;
                }
                Err(e) => println!(
                    "  attempt {attempt} at +{at} ms (after a {} ms backoff): failed: {e}",
                    delay.as_millis()
                ),
            }
            if attempt == 2 {
                let sock = UdpSocket::bind(bob_addr)?;
                let h = &hangup2;
                bob2 = Some(scope.spawn(move || bob_phone(mgr, sock, "bob-phone-2", h)));
                println!(
                    "  bob's phone comes back at +{} ms, on the same address",
                    gone.elapsed().as_millis()
                );
            }
            delay *= 2;
        }
        let reconnected = call.is_some();
        let mut rx_after = 0;
        if let Some((id, s)) = &call {
            rx_after = alice_talks(s, frames)?;
            s.stop()?;
            mgr.release_builder(id);
        }
        hangup2.store(true, Ordering::SeqCst);
        let bob_rx2 = match bob2 {
            Some(h) => h.join().map_err(|_| "bob's phone panicked")??,
            None => 0,
        };
        println!(
            "After reconnecting, alice talks for {} ms: she received {rx_after} RTP packets in \
             that window (a packet in flight at either end of it falls outside), bob {bob_rx2} \
             over his whole new call",
            frames * 20
        );
        report.figure(
            "reconnect_detect_ms",
            detect_ms,
            "ms from bob's builder release to alice's watchdog firing",
        );
        report.figure(
            "reconnect_attempts",
            attempts,
            "dial attempts until answered (the first two meet a closed port)",
        );
        report.figure(
            "reconnect_delays_ms",
            delays.join(","),
            "backoff waited before each attempt",
        );
        report.figure(
            "reconnected",
            reconnected && rx_after > 0 && bob_rx2 > 0,
            "the new call carries audio both ways",
        );
        report.check(
            "reconnected after 3 attempts with audio both ways",
            reconnected && attempts == 3 && rx_after > 0 && bob_rx2 > 0,
        );
        report.check(
            "the silence was noticed by the watchdog",
            detect_ms >= WATCHDOG.as_millis(),
        );
        Ok(())
    })
}

// -------------------------------------------------------------- (c) codecs

fn m_line(sdp: &Sdp) -> String {
    sdp.to_string()
        .lines()
        .find(|l| l.starts_with("m="))
        .unwrap_or("")
        .to_owned()
}

fn codecs(mgr: &BuilderManager, report: &mut Report) -> Result<()> {
    println!("\n=== (c) Codec negotiation ===");
    let alice = mgr.create_builder("alice-codec")?;
    let bob = mgr.create_builder("bob-codec")?;
    bob.set_payload_types(&[8])?;
    let offer = alice.create_offer()?;
    println!("alice offers PCMU and PCMA:    {}", m_line(&offer));
    bob.process_offer(&offer)?;
    let answer = bob.create_answer()?;
    println!("bob (PCMA only) answers:       {}", m_line(&answer));
    alice.process_answer(&answer)?;
    let ia = alice.media_streams();
    let ib = bob.media_streams();
    let (Some(ia), Some(ib)) = (ia.first(), ib.first()) else {
        return Err("no stream after negotiation".into());
    };
    println!(
        "Negotiated (media_streams): alice sends {} (PT {}), bob sends {} (PT {}), telephone-event PT {}",
        ia.codec.as_deref().unwrap_or("-"),
        ia.payload_type.map_or("-".into(), |p| p.to_string()),
        ib.codec.as_deref().unwrap_or("-"),
        ib.payload_type.map_or("-".into(), |p| p.to_string()),
        ia.telephone_event.map_or("-".into(), |p| p.to_string()),
    );
    let (a, b) = (
        alice.media_session().ok_or("no session")?,
        bob.media_session().ok_or("no session")?,
    );
    a.start()?;
    b.start()?;
    let mut t = tones(500.0, 700.0)?;
    talk([&a, &b], &mut t, 25, |_, _| {})?;
    std::thread::sleep(Duration::from_millis(100));
    let (sa, sb) = (a.statistics(), b.statistics());
    println!(
        "500 ms of PCMA audio: alice sent {} / received {}, bob sent {} / received {}",
        sa.audio_packets_sent, sa.packets_received, sb.audio_packets_sent, sb.packets_received
    );
    let codec = ia.codec.clone().unwrap_or_default();
    let pcma_ok = codec == "PCMA"
        && ib.codec.as_deref() == Some("PCMA")
        && sa.packets_received > 0
        && sb.packets_received > 0;
    hang_up(mgr, &["alice-codec", "bob-codec"]);

    // Offers of codecs this library does not implement.
    let carol = mgr.create_builder("carol-codec")?;
    let ports_before = mgr.statistics().ports_in_use;
    let mut rejected = 0;
    for (pt, name) in [(9u8, "G722/8000"), (18, "G729/8000")] {
        let text = format!(
            "v=0\r\no=legacy 4242 1 IN IP4 127.0.0.1\r\ns=legacy phone\r\nc=IN IP4 127.0.0.1\r\n\
             t=0 0\r\nm=audio 40000 RTP/AVP {pt}\r\na=rtpmap:{pt} {name}\r\na=sendrecv\r\n"
        );
        let offer = Sdp::parse(text.as_bytes())?;
        match carol.process_offer(&offer) {
            Err(BuilderError::NoSupportedMedia) => {
                rejected += 1;
                println!(
                    "An offer of only {name} (m=audio 40000 RTP/AVP {pt}) is refused: BuilderError::NoSupportedMedia \
                     (\"{}\"); carol stays {}",
                    BuilderError::NoSupportedMedia,
                    carol.phase()
                );
            }
            Ok(()) => println!("An offer of only {name} was taken: wrong"),
            Err(e) => println!("An offer of only {name} failed otherwise: {e}"),
        }
    }
    let ports_after = mgr.statistics().ports_in_use;
    // Still usable: carol answers a PCMU/PCMA offer and media flows.
    let dave = mgr.create_builder("dave-codec")?;
    carol.process_offer(&dave.create_offer()?)?;
    dave.process_answer(&carol.create_answer()?)?;
    let (d, c) = (
        dave.media_session().ok_or("no session")?,
        carol.media_session().ok_or("no session")?,
    );
    d.start()?;
    c.start()?;
    talk([&d, &c], &mut t, 10, |_, _| {})?;
    std::thread::sleep(Duration::from_millis(100));
    let carol_rx = c.statistics().packets_received;
    println!(
        "carol then answers dave's PCMU/PCMA offer ({}) and receives {carol_rx} packets in 200 ms; \
         port pairs in use before/after the refusals: {ports_before}/{ports_after}",
        carol
            .media_streams()
            .first()
            .and_then(|s| s.codec.clone())
            .unwrap_or_default()
    );
    let usable = carol.phase() == Phase::Established && carol_rx > 0 && ports_before == ports_after;
    hang_up(mgr, &["carol-codec", "dave-codec"]);
    report.figure(
        "negotiated_codec",
        codec,
        "the codec alice sends after bob answered PCMA-only (from media_streams)",
    );
    report.figure(
        "incompatible_rejected",
        rejected == 2 && usable,
        "G.722-only and G.729-only offers refused with NoSupportedMedia; the builder then negotiated a call",
    );
    report.check("PCMA negotiated and carried audio", pcma_ok);
    report.check(
        "incompatible offers refused, builder still usable",
        rejected == 2 && usable,
    );
    Ok(())
}

// ------------------------------------------------------------- (d) quality

#[derive(Default)]
struct RtcpSeen {
    reports: u64,
    with_block: u64,
    xr: u64,
    last_block: Option<mediarelay::media::ReceptionReport>,
    last_xr: Option<mediarelay::media::RemoteQuality>,
}

fn quality(mgr: &BuilderManager, quick: bool, report: &mut Report) -> Result<()> {
    println!("\n=== (d) RTCP quality report under injected loss and jitter ===");
    let (a, b) = call(mgr, "alice-quality", "bob-quality")?;
    let impair = ImpairConfig {
        loss: 0.05,
        jitter: Duration::from_millis(10),
        seed: 2024,
        ..ImpairConfig::none()
    };
    a.start_with(&StartOptions {
        impair: Some(impair),
        ..StartOptions::default()
    })?;
    b.start()?;
    let secs: u32 = if quick { 3 } else { 8 };
    println!(
        "alice's RTP leaves through an impairment: 5% random loss, 0-10 ms extra delay \
         (RTCP untouched); both talk for {secs} s"
    );
    let mut seen = [RtcpSeen::default(), RtcpSeen::default()];
    let mut t = tones(500.0, 700.0)?;
    for s in 1..=secs {
        talk([&a, &b], &mut t, 50, |side, ev| match ev {
            MediaEvent::Rtcp(r) => {
                seen[side].reports += 1;
                if let Some(block) = r.about_us {
                    seen[side].with_block += 1;
                    seen[side].last_block = Some(block);
                }
            }
            MediaEvent::RemoteQuality(q) => {
                seen[side].xr += 1;
                seen[side].last_xr = Some(q);
            }
            _ => {}
        })?;
        let st = b.statistics();
        println!(
            "  t={s}s bob: expected {}, lost {} ({:.1}%), jitter {:.1} ms; RTCP reports received: alice {}, bob {}",
            st.expected,
            st.lost,
            st.loss_ratio() * 100.0,
            ms(st.jitter),
            seen[0].reports,
            seen[1].reports
        );
    }
    std::thread::sleep(Duration::from_millis(100));
    let imp = a
        .impairment(0)
        .ok_or("no impairment on alice's stream")?
        .stats();
    let (sa, sb): (MediaStatistics, MediaStatistics) = (a.statistics(), b.statistics());
    let loss_pct = sb.loss_ratio() * 100.0;
    let rtt = sb.rtt.or(sa.rtt);
    let a_rtp = sa.audio_packets_sent + sa.dtmf_packets_sent;
    let a_rtcp: u64 = sa.streams.iter().map(|(_, e)| e.rtcp_sent).sum();
    println!(
        "Impairment (on alice's side): her session sent {a_rtp} RTP packets; it dropped {} of \
         them ({:.1}%) and delayed {} of the rest; it passed {} datagrams in all, her {a_rtcp} \
         RTCP compounds among them (untouched)",
        imp.dropped,
        100.0 * imp.dropped as f64 / a_rtp.max(1) as f64,
        imp.delayed,
        imp.passed,
    );
    println!("Measured by bob (the receiver):");
    println!(
        "  loss: {} of {} expected = {loss_pct:.2}% (RFC 3550 A.3; expected runs from the second \
         packet bob received, the first only starting the source's probation (A.1), to the \
         highest sequence number received)",
        sb.lost, sb.expected
    );
    println!(
        "  interarrival jitter: {:.2} ms (RFC 3550 A.8)",
        ms(sb.jitter)
    );
    println!(
        "  round-trip time from RTCP LSR/DLSR: {}",
        rtt.map_or("none".into(), |r| format!("{:.3} ms", ms(r)))
    );
    println!("  jitter-buffer delay: {:.1} ms", ms(sb.buffer_delay));
    println!(
        "  MOS-CQ estimate (ITU-T G.107 E-model from loss, delay and codec; an estimate, not a listening test): {}",
        sb.mos.map_or("none".into(), |m| format!("{m:.2}"))
    );
    println!("What alice learned about her stream through RTCP:");
    println!(
        "  {} RTCP compounds from bob, {} with a report block about her stream, {} XR VoIP metrics blocks",
        seen[0].reports, seen[0].with_block, seen[0].xr
    );
    if let Some(rb) = seen[0].last_block {
        println!(
            "  last report block: fraction lost {:.1}% (since the previous report), cumulative lost {}, jitter {:.2} ms",
            f64::from(rb.fraction_lost) * 100.0 / 256.0,
            rb.cumulative_lost,
            f64::from(rb.jitter) / 8.0
        );
    }
    if let Some(xr) = seen[0].last_xr {
        println!(
            "  last XR RemoteQuality: loss {:.1}%, R {}, MOS-CQ {}, round trip {:.0} ms (whole ms in the XR block)",
            xr.loss_percent,
            xr.r_factor.map_or("-".into(), |r| r.to_string()),
            xr.mos_cq.map_or("-".into(), |m| format!("{m:.2}")),
            ms(xr.round_trip)
        );
    }
    println!(
        "  bob received {} RTCP compounds from alice ({} with a report block about his stream)",
        seen[1].reports, seen[1].with_block
    );
    let mos = sb.mos.unwrap_or(0.0);
    report.figure(
        "rx_loss_percent",
        format!("{loss_pct:.2}"),
        "share of alice's RTP bob expected but never got (injected: 5%)",
    );
    report.figure(
        "rx_jitter_ms",
        format!("{:.2}", ms(sb.jitter)),
        "interarrival jitter bob measured (injected: 0-10 ms uniform)",
    );
    report.figure(
        "rtt_ms",
        rtt.map_or("none".into(), |r| format!("{:.3}", ms(r))),
        "round-trip time from RTCP (loopback, RTCP not delayed)",
    );
    report.figure(
        "mos",
        format!("{mos:.2}"),
        "bob's MOS-CQ estimate (E-model), not a listening test",
    );
    report.figure(
        "rtcp_reports_alice",
        seen[0].reports,
        "RTCP compounds alice received",
    );
    report.figure(
        "xr_quality_alice",
        seen[0].xr,
        "XR RemoteQuality reports alice received",
    );
    report.check(
        "measured loss within 1%..12% of the injected 5%",
        (1.0..=12.0).contains(&loss_pct),
    );
    report.check(
        "bob's loss count matches the packets the impairment dropped (within 2)",
        sb.lost.abs_diff(imp.dropped as i64) <= 2,
    );
    report.check("an RTT was measured from RTCP", rtt.is_some());
    report.check(
        "a MOS estimate below 4.4 (loss hurts)",
        sb.mos.is_some_and(|m| m > 1.0 && m < 4.4),
    );
    report.check(
        "alice got RTCP report blocks and XR quality from bob",
        seen[0].with_block > 0 && seen[0].xr > 0,
    );
    hang_up(mgr, &["alice-quality", "bob-quality"]);
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// --------------------------------------------------------- (e) attributes

fn attributes(mgr: &BuilderManager, report: &mut Report) -> Result<()> {
    println!("\n=== (e) Custom SDP attributes ===");
    let alice = mgr.create_builder("alice-attrs")?;
    let bob = mgr.create_builder("bob-attrs")?;
    let ours = [
        ("x-custom-app-version", "1.0.0"),
        ("x-custom-device", "SoftPhone"),
        ("x-custom-features", "aec,agc,ns"),
    ];
    alice.add_session_attribute(ours[0].0, Some(ours[0].1))?;
    alice.add_media_attribute(0, ours[1].0, Some(ours[1].1))?;
    alice.add_media_attribute(0, ours[2].0, Some(ours[2].1))?;
    bob.add_session_attribute("x-custom-app-version", Some("2.4.1"))?;
    bob.add_media_attribute(0, "x-custom-device", Some("DeskPhone"))?;
    let refused = alice.add_session_attribute("bad name", Some("x"));
    println!(
        "An attribute name with a space is refused: {}",
        match &refused {
            Err(e) => format!("{e}"),
            Ok(()) => "accepted (wrong)".into(),
        }
    );
    let offer = alice.create_offer()?;
    println!("alice's offer as sent:");
    for l in offer.to_string().lines() {
        println!("    {l}");
    }
    // Through bytes, as on the wire.
    bob.process_offer(&Sdp::parse(&offer.to_bytes())?)?;
    let answer = bob.create_answer()?;
    alice.process_answer(&Sdp::parse(&answer.to_bytes())?)?;
    let bob_saw = bob.remote_sdp().ok_or("bob kept no remote SDP")?;
    let alice_saw = alice.remote_sdp().ok_or("alice kept no remote SDP")?;
    let read = |sdp: &Sdp, media: bool, name: &str| -> Option<String> {
        let section = if media {
            sdp.media().first()?.section()
        } else {
            sdp.session()
        };
        section.attribute(name)?.value.map(str::to_owned)
    };
    let got_bob = [
        read(&bob_saw, false, ours[0].0),
        read(&bob_saw, true, ours[1].0),
        read(&bob_saw, true, ours[2].0),
    ];
    println!("bob parsed from alice's offer (remote_sdp):");
    for ((name, _), v) in ours.iter().zip(&got_bob) {
        println!("    {name} = {}", v.as_deref().unwrap_or("(missing)"));
    }
    let got_alice = [
        read(&alice_saw, false, "x-custom-app-version"),
        read(&alice_saw, true, "x-custom-device"),
    ];
    println!("alice parsed from bob's answer (remote_sdp):");
    println!(
        "    x-custom-app-version = {}\n    x-custom-device = {}",
        got_alice[0].as_deref().unwrap_or("(missing)"),
        got_alice[1].as_deref().unwrap_or("(missing)")
    );
    let roundtrip = ours
        .iter()
        .zip(&got_bob)
        .all(|((_, want), got)| got.as_deref() == Some(*want))
        && got_alice[0].as_deref() == Some("2.4.1")
        && got_alice[1].as_deref() == Some("DeskPhone");
    report.figure(
        "custom_attributes_roundtrip",
        roundtrip,
        "each side read the other's custom attributes back from the SDP it received",
    );
    report.check("custom attributes round trip", roundtrip);
    report.check(
        "a malformed attribute name is refused",
        matches!(refused, Err(BuilderError::Attribute(_))),
    );
    hang_up(mgr, &["alice-attrs", "bob-attrs"]);
    Ok(())
}

// ---------------------------------------------------------------- plumbing
