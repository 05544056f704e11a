//! basic_call: one call between two parties of this process, over real UDP
//! sockets on loopback: the media builder's lifecycle from manager to
//! shutdown, with audio both ways and DTMF both ways.
//!
//! ```text
//! cargo run --release --example basic_call              # 50 frames (1 s) each way
//! cargo run --release --example basic_call -- --quick   # 25 frames (0.5 s) each way
//! ```
//!
//! The steps follow the seed library's `basic_call` example; where that one
//! printed fixed text (the SDP summary) or counted send calls, this one
//! parses the SDP it negotiated and reads every figure from each media
//! session's counters of packets that crossed the sockets. Figures for machines are
//! printed as `## key=value` lines. Exit status 1 (and a message on
//! stderr) when a step fails or a self-check does: keys received differ
//! from keys sent, or packets received differ from packets sent.

mod common;

use std::time::{Duration, Instant};

use common::{BoxError, EventPump, figure, list, next_frame, quick_mode};
use mediarelay::audio::{Tone, analyze};
use mediarelay::builder::{Builder, BuilderManager, ManagerConfig, MediaSession, PortStrategy};
use mediarelay::sdp::Sdp;

/// Samples in one 20 ms frame at 8 kHz.
const FRAME: usize = 160;
/// Pacing of audio frames (the negotiated ptime).
const PTIME: Duration = Duration::from_millis(20);
/// Keys the caller sends, and the callee's one.
const CALLER_KEYS: [char; 6] = ['1', '2', '3', '4', '5', '6'];
const CALLEE_KEY: char = '#';
/// The tones each side sends, and how far off the measured one may be.
const CALLER_HZ: f64 = 440.0;
const CALLEE_HZ: f64 = 660.0;
const HZ_TOLERANCE: f64 = 10.0;

fn main() {
    let quick = quick_mode("basic_call");
    if let Err(e) = run(quick) {
        eprintln!("basic_call: {e}");
        std::process::exit(1);
    }
}

fn run(quick: bool) -> Result<(), BoxError> {
    let frames = if quick { 25 } else { 50 };
    println!(
        "Basic call over loopback ({} mode: {frames} audio frames of 20 ms each way)",
        if quick { "quick" } else { "full" }
    );
    println!();

    // 1. The manager: engine threads, port allocation, builder registry.
    let mgr = BuilderManager::new(ManagerConfig {
        local_ip: "127.0.0.1".parse()?,
        min_port: 10000,
        max_port: 10100,
        max_concurrent_builders: 10,
        port_strategy: PortStrategy::Sequential,
        ..ManagerConfig::default()
    })?;
    let st = mgr.statistics();
    println!("1. Manager on 127.0.0.1, ports 10000-10100, at most 10 builders");
    println!(
        "   {} RTP/RTCP port pairs available (a pair is an even RTP port and the odd RTCP \
         port above it; 10100 is not one, its RTCP port 10101 is outside the range)",
        st.ports_available
    );
    println!(
        "   codecs offered: PCMU, PCMA (payload types 0, 8) and telephone-event 101; \
         G.722 and G.729 are not implemented, so not offered"
    );
    figure("port_pairs_available", st.ports_available);

    // 2. Two builders, one per party.
    let caller = mgr.create_builder("caller-001")?;
    let callee = mgr.create_builder("callee-001")?;
    println!();
    println!(
        "2. Builders caller-001 and callee-001 created, RTP ports {} and {} allocated \
         (sockets are bound once the far end's address is known)",
        port(&caller),
        port(&callee)
    );

    // 3. Offer/answer (RFC 3264).
    let offer = caller.create_offer()?;
    callee.process_offer(&offer)?;
    let answer = callee.create_answer()?;
    caller.process_answer(&answer)?;
    println!();
    println!("3. Offer/answer; what the SDP says, parsed from it:");
    print_sdp("offer  (caller-001)", &offer);
    print_sdp("answer (callee-001)", &answer);
    println!("   negotiated streams (the builders' view):");
    for b in [&caller, &callee] {
        for s in b.media_streams() {
            println!(
                "     {}: sends {} (PT {}), DTMF PT {}, {} -> {}, direction {}, sockets bound: {}",
                b.id(),
                s.codec.as_deref().unwrap_or("none"),
                opt(s.payload_type),
                opt(s.telephone_event),
                opt(s.local),
                opt(s.remote),
                s.direction,
                s.bound
            );
        }
    }
    figure("offer_formats", formats(&offer));
    figure("answer_formats", formats(&answer));
    figure("negotiated_codec", first_codec(&answer));
    figure("caller_port", first_port(&offer));
    figure("callee_port", first_port(&answer));
    figure("offer_direction", offer.media_direction(0));
    figure("answer_direction", answer.media_direction(0));

    // 4. Start: negotiation bound the sockets, but nothing is sent (and
    // what arrives is dropped) until the application starts the session.
    let sa = caller
        .media_session()
        .ok_or("caller has no media session")?;
    let sb = callee
        .media_session()
        .ok_or("callee has no media session")?;
    let early = sa.send_audio(&[0; FRAME]);
    sa.start()?;
    sb.start()?;
    let pump = EventPump::start()?;
    let heard_by_caller = pump.record(&sa);
    let heard_by_callee = pump.record(&sb);
    println!();
    println!(
        "4. Media started explicitly on both sides (send_audio before start: {})",
        match early {
            Ok(_) => "accepted".to_owned(),
            Err(e) => format!("refused, {e}"),
        }
    );

    // 5. Audio both ways, paced at the ptime.
    println!();
    println!(
        "5. Audio: caller sends a {CALLER_HZ} Hz tone, callee a {CALLEE_HZ} Hz tone, \
         {frames} frames of 160 samples each, one every 20 ms (callee 10 ms later)"
    );
    let (written_a, written_b) = std::thread::scope(|s| {
        let a = s.spawn(|| send_tone(&sa, CALLER_HZ, frames, Duration::ZERO));
        let b = s.spawn(|| send_tone(&sb, CALLEE_HZ, frames, Duration::from_millis(10)));
        (a.join(), b.join())
    });
    let written_a = written_a.map_err(|_| "caller audio thread panicked")??;
    let written_b = written_b.map_err(|_| "callee audio thread panicked")??;
    // The last frame leaves on the next tick; let it and its predecessors
    // arrive before DTMF takes the stream over.
    std::thread::sleep(Duration::from_millis(100));

    // 6. DTMF both ways (RFC 4733 telephone-events).
    println!();
    println!(
        "6. DTMF: caller sends {} (100 ms each, a call every 50 ms), then callee sends \
         {CALLEE_KEY} (200 ms)",
        list(&CALLER_KEYS)
    );
    println!(
        "   (the session queues keys and spaces them on the wire: each key is a start packet, \
         an update every 20 ms, three end packets, then a 100 ms gap)"
    );
    let t_dtmf = Instant::now();
    for k in CALLER_KEYS {
        sa.send_dtmf(k, Duration::from_millis(100))?;
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(100));
    let t_callee_key = Instant::now();
    sb.send_dtmf(CALLEE_KEY, Duration::from_millis(200))?;
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut callee_done, mut caller_done) = (None, None);
    while Instant::now() < deadline && (callee_done.is_none() || caller_done.is_none()) {
        if callee_done.is_none() && heard_by_callee.keys().len() >= CALLER_KEYS.len() {
            callee_done = Some(t_dtmf.elapsed());
        }
        if caller_done.is_none() && !heard_by_caller.keys().is_empty() {
            caller_done = Some(t_callee_key.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // The redundant end packets of the last keys, and RTCP, still arrive.
    std::thread::sleep(Duration::from_millis(300));
    println!(
        "   callee had all {} keys {} after the caller's first send_dtmf; caller had the \
         callee's key {} after the callee's send_dtmf (a key is reported when it ends: its \
         duration, then its end packet)",
        CALLER_KEYS.len(),
        since(callee_done),
        since(caller_done)
    );

    // 7. What crossed the sockets.
    let stats_a = sa.statistics();
    let stats_b = sb.statistics();
    let keys_b = heard_by_callee.keys();
    let keys_a = heard_by_caller.keys();
    let hz_a = dominant(&common::lock(&heard_by_caller.pcm));
    let hz_b = dominant(&common::lock(&heard_by_callee.pcm));
    println!();
    println!("7. Call statistics (from MediaSession::statistics and each side's events):");
    println!("   audio packets sent     = audio RTP packets the session put on the wire");
    println!("   audio packets received = audio RTP packets accepted from the wire");
    println!("   payload bytes          = RTP payload octets, audio and telephone-event");
    println!(
        "   DTMF packets           = telephone-event RTP packets (per key: a start, updates \
         every 20 ms, three end packets)"
    );
    println!("   keys received          = telephone-events reported ended, in order");
    println!("   heard                  = strongest frequency of the decoded audio received");
    for (name, written, st, keys, hz) in [
        ("caller", written_a, &stats_a, &keys_a, hz_a),
        ("callee", written_b, &stats_b, &keys_b, hz_b),
    ] {
        let audio_rx = st.packets_received - st.dtmf_packets_received;
        println!(
            "   [{name}] frames written {written}; audio packets sent {}, received {audio_rx}; \
             payload bytes sent {}, received {}; DTMF packets sent {}, received {}; \
             lost {}, jitter {:.2} ms; keys received [{}]; heard {}",
            st.audio_packets_sent,
            st.bytes_sent,
            st.bytes_received,
            st.dtmf_packets_sent,
            st.dtmf_packets_received,
            st.lost,
            st.jitter.as_secs_f64() * 1000.0,
            list(keys),
            hz.map_or("nothing".to_owned(), |h| format!("{h:.0} Hz"))
        );
        figure(&format!("{name}_frames_written"), written);
        figure(&format!("{name}_audio_sent"), st.audio_packets_sent);
        figure(&format!("{name}_audio_received"), audio_rx);
        figure(&format!("{name}_bytes_sent"), st.bytes_sent);
        figure(&format!("{name}_bytes_received"), st.bytes_received);
        figure(&format!("{name}_dtmf_packets_sent"), st.dtmf_packets_sent);
        figure(
            &format!("{name}_dtmf_packets_received"),
            st.dtmf_packets_received,
        );
        figure(&format!("{name}_lost"), st.lost);
        figure(&format!("{name}_jitter_us"), st.jitter.as_micros());
        figure(
            &format!("{name}_digits"),
            if keys.is_empty() {
                "none".to_owned()
            } else {
                list(keys)
            },
        );
        figure(
            &format!("{name}_heard_hz"),
            hz.map_or("none".to_owned(), |h| format!("{h:.0}")),
        );
    }

    let m = mgr.statistics();
    println!(
        "   manager: {} builders active, {} created, {} port pairs in use, {} available, \
         {} quarantined",
        m.active_builders,
        m.total_builders_created,
        m.ports_in_use,
        m.ports_available,
        m.ports_quarantined
    );
    figure("manager_active", m.active_builders);
    figure("manager_created", m.total_builders_created);
    figure("manager_ports_in_use", m.ports_in_use);
    figure("manager_ports_available", m.ports_available);

    // 8. Hang up: RTCP BYE, sockets closed, ports back to the allocator.
    sa.stop()?;
    sb.stop()?;
    mgr.release_builder("caller-001");
    mgr.release_builder("callee-001");
    pump.stop();
    let m = mgr.statistics();
    println!();
    println!(
        "8. Hung up (RTCP BYE sent), builders released: {} active, {} port pairs in use, \
         {} quarantined (a released pair is not handed out again for 5 s while others are free)",
        m.active_builders, m.ports_in_use, m.ports_quarantined
    );
    figure("released_ports_quarantined", m.ports_quarantined);
    mgr.shutdown();

    // Self-checks.
    let mut failures = Vec::new();
    if keys_b != CALLER_KEYS {
        failures.push(format!(
            "callee received keys [{}], caller sent [{}]",
            list(&keys_b),
            list(&CALLER_KEYS)
        ));
    }
    if keys_a != [CALLEE_KEY] {
        failures.push(format!(
            "caller received keys [{}], callee sent [{CALLEE_KEY}]",
            list(&keys_a)
        ));
    }
    for (from, to, written, tx, rx) in [
        ("caller", "callee", written_a, &stats_a, &stats_b),
        ("callee", "caller", written_b, &stats_b, &stats_a),
    ] {
        let audio_rx = rx.packets_received - rx.dtmf_packets_received;
        if tx.audio_packets_sent == 0 || tx.audio_packets_sent != audio_rx {
            failures.push(format!(
                "{from} sent {} audio packets, {to} received {audio_rx}",
                tx.audio_packets_sent
            ));
        }
        if tx.audio_packets_sent != written {
            failures.push(format!(
                "{from} wrote {written} frames but sent {} audio packets",
                tx.audio_packets_sent
            ));
        }
        if tx.bytes_sent == 0 || tx.bytes_sent != rx.bytes_received {
            failures.push(format!(
                "{from} sent {} payload bytes, {to} received {}",
                tx.bytes_sent, rx.bytes_received
            ));
        }
    }
    for (who, hz, want) in [("callee", hz_b, CALLER_HZ), ("caller", hz_a, CALLEE_HZ)] {
        if !hz.is_some_and(|h| (h - want).abs() <= HZ_TOLERANCE) {
            failures.push(format!("{who} heard {hz:?} Hz, the far end sent {want} Hz"));
        }
    }
    println!();
    if failures.is_empty() {
        println!("Self-checks passed: keys and packets received equal those sent, both ways.");
        figure("result", "ok");
        Ok(())
    } else {
        figure("result", "failed");
        Err(failures.join("; ").into())
    }
}

/// Writes `frames` frames of a `hz` tone, one per ptime from now (after
/// `delay`). Returns the frames the session took whole.
fn send_tone(
    session: &MediaSession,
    hz: f64,
    frames: u32,
    delay: Duration,
) -> Result<u64, BoxError> {
    std::thread::sleep(delay);
    let mut tone = Tone::sine(hz, 0.3, 8000)?;
    let mut frame = [0i16; FRAME];
    let t0 = Instant::now();
    let mut taken = 0;
    for k in 1..=frames {
        next_frame(&mut tone, &mut frame);
        if session.send_audio(&frame)? == FRAME {
            taken += 1;
        }
        std::thread::sleep((t0 + PTIME * k).saturating_duration_since(Instant::now()));
    }
    Ok(taken)
}

fn port(b: &Builder) -> String {
    opt(b.local_port())
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("none".to_owned(), |v| v.to_string())
}

fn since(d: Option<Duration>) -> String {
    d.map_or("never (timed out after 5 s)".to_owned(), |d| {
        format!("{} ms", d.as_millis())
    })
}

/// One line per `m=` section: media, port, transport, address, codecs,
/// ptime, direction, all read from the SDP.
fn print_sdp(who: &str, sdp: &Sdp) {
    for (i, m) in sdp.media().iter().enumerate() {
        let line = m.media_line();
        let address = sdp
            .media_connection(i)
            .and_then(|c| c.address.ip())
            .map_or("none".to_owned(), |ip| ip.to_string());
        let codecs: Vec<String> = m
            .codecs()
            .map(|c| format!("{}/{} (PT {})", c.encoding, c.clock_rate, c.pt.value()))
            .collect();
        println!(
            "   {who}: m={} port {} {}, address {address}, formats {}, ptime {}, {}",
            line.media,
            line.port,
            line.proto,
            codecs.join(", "),
            opt(m.section().ptime().map(|p| format!("{p} ms"))),
            sdp.media_direction(i)
        );
    }
}

/// The formats of the first `m=` line as `NAME/rate`, comma-separated.
fn formats(sdp: &Sdp) -> String {
    let v: Vec<String> = sdp
        .media()
        .first()
        .map(|m| {
            m.codecs()
                .map(|c| format!("{}/{}", c.encoding, c.clock_rate))
                .collect()
        })
        .unwrap_or_default();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(",")
    }
}

/// The first audio codec (not telephone-event) of the first `m=` line.
fn first_codec(sdp: &Sdp) -> String {
    sdp.media()
        .first()
        .and_then(|m| m.codecs().find(|c| !c.is_telephone_event()))
        .map_or("none".to_owned(), |c| c.encoding.to_owned())
}

fn first_port(sdp: &Sdp) -> u16 {
    sdp.media().first().map_or(0, |m| m.port())
}

/// The strongest frequency of what was heard (`None`: silence, or too
/// little to tell).
fn dominant(pcm: &[i16]) -> Option<f64> {
    analyze(pcm, 8000).dominant_frequency
}
