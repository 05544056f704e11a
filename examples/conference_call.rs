//! A four-party call, two ways, over real UDP sockets on 127.0.0.1.
//!
//! Part A is the full mesh the Go `conference_call` example built: one
//! builder pair per pair of participants (6 connections, 12 builders),
//! alice and charlie broadcasting tone frames, bob broadcasting DTMF, then
//! diana leaving. Part B puts the same people on the N-1
//! [`Conference`]: one call each to the conference, each talking on its
//! own frequency; everyone must hear everyone else and never themselves,
//! also after eve joins and diana leaves mid-call.
//!
//! ```text
//! cargo run --release --example conference_call            # the seed's timings
//! cargo run --release --example conference_call -- --quick # same steps, short
//! ```
//!
//! Every figure is measured from packets that crossed the sockets (the
//! sessions' own counters and the audio they decoded). Lines starting with
//! `## ` are `key=value` figures for scripts; the process exits non-zero,
//! with a message on stderr, when a step or a self-check fails.

mod report;

use report::{Pacer, Report};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use mediarelay::audio::{AudioSource, ParticipantId, Tone, goertzel_power};
use mediarelay::builder::{
    BuilderManager, Conference, ManagerConfig, MediaSession, MediaStatistics, ParticipantStats,
    PortStrategy,
};
use mediarelay::media::MediaEvent;

type Error = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, Error>;

/// Packetisation time and the samples in one frame of it at 8 kHz.
const PTIME: Duration = Duration::from_millis(20);
const FRAME: usize = 160;
const RATE: u32 = 8000;

/// Goertzel power (sample units², see `goertzel_power`) above which a
/// frequency counts as heard, and below which as absent. A tone at 0.2 of
/// full scale gives about 1e7; G.711 noise stays well under 1e4.
const HEARD: f64 = 1e5;
const ABSENT: f64 = 1e4;

fn main() -> ExitCode {
    let quick = std::env::args().any(|a| a == "--quick");
    let mut report = Report::default();
    match run(quick, &mut report) {
        Ok(()) => report.finish("conference_call"),
        Err(e) => {
            eprintln!("conference_call: step failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(quick: bool, report: &mut Report) -> Result<()> {
    println!(
        "Conference call example ({} mode)",
        if quick { "quick" } else { "full" }
    );
    let mgr = BuilderManager::new(ManagerConfig {
        local_ip: "127.0.0.1".parse()?,
        min_port: 20000,
        max_port: 21000,
        max_concurrent_builders: 100,
        port_strategy: PortStrategy::Random,
        ..ManagerConfig::default()
    })?;
    let st = mgr.statistics();
    println!(
        "Manager: ports 20000-21000 ({} RTP/RTCP pairs), random allocation, up to 100 builders",
        st.ports_total
    );
    mesh(&mgr, quick, report)?;
    conference(&mgr, quick, report)?;
    mgr.shutdown();
    Ok(())
}

// ---------------------------------------------------------------- Part A

const PEOPLE: [&str; 4] = ["alice", "bob", "charlie", "diana"];

/// One participant's end of one mesh connection.
struct Link {
    owner: usize,
    peer: usize,
    builder: String,
    session: MediaSession,
    frames_written: u64,
    frames_played: u64,
    digits: Vec<char>,
}

fn key_of(ev: &mediarelay::media::DtmfReport) -> char {
    ev.event.digit().map_or('?', |d| d.as_char())
}

/// Takes every waiting event of every link: played (not concealed) audio
/// frames and ended DTMF digits are counted.
fn drain(links: &mut [Link]) {
    for l in links.iter_mut() {
        while let Some(ev) = l.session.try_recv() {
            match ev.event {
                MediaEvent::Audio(f) if !f.concealed => l.frames_played += 1,
                MediaEvent::Dtmf(d) if d.ended => l.digits.push(key_of(&d)),
                _ => {}
            }
        }
    }
}

/// Waits `d` in ptime steps, draining events meanwhile.
fn idle(links: &mut [Link], d: Duration) {
    let mut pacer = Pacer::new();
    let end = Instant::now() + d;
    while Instant::now() < end {
        drain(links);
        pacer.tick();
    }
    drain(links);
}

/// Participant `who` sends `frames` frames of `tone` to each of its peers.
fn broadcast_audio(links: &mut [Link], who: usize, tone: &mut Tone, frames: u32) -> Result<()> {
    let mut pacer = Pacer::new();
    let mut frame = [0i16; FRAME];
    for _ in 0..frames {
        tone.fill(&mut frame);
        for l in links.iter_mut().filter(|l| l.owner == who) {
            if l.session.send_audio(&frame)? == FRAME {
                l.frames_written += 1;
            }
        }
        drain(links);
        pacer.tick();
    }
    Ok(())
}

fn mesh(mgr: &BuilderManager, quick: bool, report: &mut Report) -> Result<()> {
    let pause =
        |full_ms: u64| Duration::from_millis(if quick { full_ms.min(300) } else { full_ms });
    println!("\n=== Part A: full mesh, one builder pair per connection ===");
    for (i, p) in PEOPLE.iter().enumerate() {
        println!("  participant {p} (tone {:.0} Hz)", MESH_TONES[i]);
        std::thread::sleep(pause(100));
    }
    let mut links: Vec<Link> = Vec::new();
    let mut connections = 0;
    for (i, a) in PEOPLE.iter().enumerate() {
        for (j, b) in PEOPLE.iter().enumerate().skip(i + 1) {
            let (ida, idb) = (format!("{a}-{b}"), format!("{b}-{a}"));
            let offerer = mgr.create_builder(&ida)?;
            let answerer = mgr.create_builder(&idb)?;
            answerer.process_offer(&offerer.create_offer()?)?;
            offerer.process_answer(&answerer.create_answer()?)?;
            let (sa, sb) = (offerer.media_session(), answerer.media_session());
            let (Some(sa), Some(sb)) = (sa, sb) else {
                return Err(format!("{ida}: no media session after offer/answer").into());
            };
            let ma = offerer.media_streams();
            let mb = answerer.media_streams();
            let addr = |m: &[mediarelay::builder::MediaStreamInfo]| {
                m.first()
                    .and_then(|s| s.local)
                    .map_or("-".to_owned(), |a| a.to_string())
            };
            println!(
                "  connection {ida} {} <-> {idb} {} ({})",
                addr(&ma),
                addr(&mb),
                ma.first().and_then(|s| s.codec.clone()).unwrap_or_default()
            );
            connections += 1;
            for (owner, peer, builder, session) in [(i, j, ida, sa), (j, i, idb, sb)] {
                links.push(Link {
                    owner,
                    peer,
                    builder,
                    session,
                    frames_written: 0,
                    frames_played: 0,
                    digits: Vec::new(),
                });
            }
        }
    }
    println!(
        "Connections created: {connections} ({} builders)",
        links.len()
    );
    let mut started = 0;
    for l in &links {
        l.session.start()?;
        started += 1;
    }
    println!("Sessions started: {started} (each one explicitly)");

    let mut tones: Vec<Tone> = MESH_TONES
        .iter()
        .map(|&f| Tone::sine(f, 0.3, RATE))
        .collect::<std::result::Result<_, _>>()?;
    println!("\nTimeline:");
    println!("  alice broadcasts 10 frames of her tone to her 3 peers");
    broadcast_audio(&mut links, 0, &mut tones[0], 10)?;
    idle(&mut links, pause(300));
    println!("  bob broadcasts DTMF 1 2 3 4 (100 ms each, 150 ms apart) to his 3 peers");
    for digit in ['1', '2', '3', '4'] {
        for l in links.iter().filter(|l| l.owner == 1) {
            l.session.send_dtmf(digit, Duration::from_millis(100))?;
        }
        idle(&mut links, Duration::from_millis(150));
    }
    idle(&mut links, pause(1000));
    println!("  charlie broadcasts 5 frames");
    broadcast_audio(&mut links, 2, &mut tones[2], 5)?;
    println!("  diana broadcasts 5 frames (the Go example left her silent)");
    broadcast_audio(&mut links, 3, &mut tones[3], 5)?;
    idle(&mut links, pause(500));

    // Statistics while all four are connected.
    let stats: Vec<MediaStatistics> = links.iter().map(|l| l.session.statistics()).collect();
    println!("\nPer participant, per peer (measured by each session):");
    println!("  frames written: send_audio calls the session took whole");
    println!("  audio sent/rcvd: audio RTP packets sent to / received from that peer");
    println!("  played: decoded frames the session delivered (not concealment)");
    println!("  dtmf rcvd: telephone-event packets received; digits: events that ended");
    println!(
        "  {:<9} {:<9} {:>7} {:>10} {:>10} {:>7} {:>9}  digits",
        "who", "peer", "written", "audio sent", "audio rcvd", "played", "dtmf rcvd"
    );
    let mut each_received_from_all = true;
    let mut audio_sent = 0;
    let mut audio_rcvd = 0;
    let mut dtmf_digits = 0;
    for (who, name) in PEOPLE.iter().enumerate() {
        for (l, s) in links.iter().zip(&stats).filter(|(l, _)| l.owner == who) {
            let rcvd_audio = s.packets_received - s.dtmf_packets_received;
            println!(
                "  {:<9} {:<9} {:>7} {:>10} {:>10} {:>7} {:>9}  {}",
                name,
                PEOPLE[l.peer],
                l.frames_written,
                s.audio_packets_sent,
                rcvd_audio,
                l.frames_played,
                s.dtmf_packets_received,
                l.digits
                    .iter()
                    .map(char::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            each_received_from_all &= s.packets_received > 0;
            audio_sent += s.audio_packets_sent;
            audio_rcvd += rcvd_audio;
            dtmf_digits += l.digits.len();
        }
    }
    let digits_in_order = links
        .iter()
        .filter(|l| l.peer == 1)
        .all(|l| l.digits == ['1', '2', '3', '4']);
    println!(
        "Totals: audio packets sent {audio_sent}, received {audio_rcvd}; DTMF digits received {dtmf_digits}"
    );

    // Diana leaves: her three builders and the three facing her.
    println!("\ndiana leaves: her 3 connections end (6 builders released)");
    let mut released = 0;
    for l in links.iter().filter(|l| l.owner == 3 || l.peer == 3) {
        l.session.stop()?;
        if mgr.release_builder(&l.builder) {
            released += 1;
        }
    }
    links.retain(|l| l.owner != 3 && l.peer != 3);
    std::thread::sleep(pause(500));
    let ms = mgr.statistics();
    println!(
        "  released {released}; manager: {} builders active, {} created, {} port pairs in use, {} available",
        ms.active_builders, ms.total_builders_created, ms.ports_in_use, ms.ports_available
    );
    for (who, name) in PEOPLE.iter().enumerate().take(3) {
        let n = links.iter().filter(|l| l.owner == who).count();
        println!("  {name} has {n} connections");
    }
    let remaining_ok = (0..3).all(|w| links.iter().filter(|l| l.owner == w).count() == 2);

    report.figure(
        "mesh_connections",
        connections,
        "connections negotiated in the mesh (a builder pair each)",
    );
    report.figure(
        "mesh_sessions_started",
        started,
        "media sessions started explicitly",
    );
    report.figure(
        "mesh_each_received_from_all",
        each_received_from_all,
        "every participant received RTP from each of its 3 peers",
    );
    report.figure(
        "mesh_audio_packets_sent",
        audio_sent,
        "audio RTP packets sent on all 12 sessions (30+15+15 expected)",
    );
    report.figure(
        "mesh_audio_packets_received",
        audio_rcvd,
        "audio RTP packets received on all 12 sessions",
    );
    report.figure(
        "mesh_dtmf_received",
        dtmf_digits,
        "DTMF digits received, ended events (4 digits x 3 receivers expected)",
    );
    report.figure(
        "mesh_builders_after_leave",
        ms.active_builders,
        "builders alive after diana left",
    );
    report.check("12 sessions started", started == 12);
    report.check(
        "every participant received from every other",
        each_received_from_all,
    );
    report.check(
        "every audio packet sent was received (loopback loses nothing)",
        audio_sent > 0 && audio_rcvd == audio_sent,
    );
    report.check(
        "bob's digits arrived in order at all 3 peers",
        digits_in_order && dtmf_digits == 12,
    );
    report.check(
        "6 builders released, 6 left, 2 connections each",
        released == 6 && ms.active_builders == 6 && remaining_ok,
    );

    println!("End of the mesh: the remaining 6 builders are released");
    for l in &links {
        l.session.stop()?;
        mgr.release_builder(&l.builder);
    }
    Ok(())
}

/// Part A's tones (any audible frequency would do).
const MESH_TONES: [f64; 4] = [440.0, 550.0, 660.0, 770.0];

// ---------------------------------------------------------------- Part B

/// Each participant's own frequency. Picked so that no sum, difference or
/// low harmonic of two of them lies within 60 Hz of a third: G.711 is not
/// linear, and a mix of tones makes such products.
const VOICES: [(&str, f64); 5] = [
    ("alice", 630.0),
    ("bob", 860.0),
    ("charlie", 1170.0),
    ("diana", 1410.0),
    ("eve", 1560.0),
];

/// A participant of the conference: its own call to it.
struct Member {
    voice: usize,
    user: MediaSession,
    /// The conference's side of the call (the session it mixes).
    side: MediaSession,
    id: ParticipantId,
    /// Mixing rounds run before it joined.
    joined_at: u64,
    /// Frames its phone wrote (`send_audio` calls taken).
    written: u64,
    tone: Tone,
    heard: Vec<i16>,
}

/// Calls the conference: the participant's builder offers, the
/// conference's side answers, both start, and the conference's side joins.
fn dial_in(mgr: &BuilderManager, conf: &Conference, voice: usize) -> Result<Member> {
    let (name, freq) = VOICES[voice];
    let user = mgr.create_builder(name)?;
    let side = mgr.create_builder(&format!("conf-{name}"))?;
    side.process_offer(&user.create_offer()?)?;
    user.process_answer(&side.create_answer()?)?;
    let (Some(u), Some(s)) = (user.media_session(), side.media_session()) else {
        return Err(format!("{name}: no media session").into());
    };
    u.start()?;
    s.start()?;
    let id = conf.join(name, s.clone());
    // Every round from now on mixes for it (a round holds the participant
    // list while it runs and counts itself before letting go of it; one
    // that runs between the join and this read would be missed: rare).
    let joined_at = conf.ticks();
    println!(
        "  {name} dials in from {} (conference side {}), talks at {freq:.0} Hz",
        user.local_port().map_or("-".into(), |p| p.to_string()),
        side.local_port().map_or("-".into(), |p| p.to_string()),
    );
    Ok(Member {
        voice,
        user: u,
        side: s,
        id,
        joined_at,
        written: 0,
        tone: Tone::sine(freq, 0.2, RATE)?,
        heard: Vec::new(),
    })
}

/// Everyone talks for `frames` ptimes; what each hears is kept.
fn talk(members: &mut [Member], frames: u32, mut at: impl FnMut(u32, &[Member])) -> Result<()> {
    for m in members.iter_mut() {
        m.heard.clear();
    }
    let mut pacer = Pacer::new();
    let mut frame = [0i16; FRAME];
    for k in 0..frames {
        at(k, members);
        for m in members.iter_mut() {
            m.tone.fill(&mut frame);
            if m.user.send_audio(&frame)? == FRAME {
                m.written += 1;
            }
            while let Some(ev) = m.user.try_recv() {
                if let MediaEvent::Audio(f) = ev.event {
                    if !f.concealed {
                        m.heard.extend_from_slice(&f.samples);
                    }
                }
            }
        }
        pacer.tick();
    }
    Ok(())
}

/// Goertzel power at every voice's frequency in the second half of what
/// each member heard (the first half covers joins, leaves and buffering).
fn hearing(members: &[Member]) -> Vec<[f64; 5]> {
    members
        .iter()
        .map(|m| {
            let tail = &m.heard[m.heard.len() / 2..];
            let mut p = [0.0; 5];
            for (v, (_, f)) in VOICES.iter().enumerate() {
                p[v] = goertzel_power(tail, *f, RATE);
            }
            p
        })
        .collect()
}

/// Prints the matrix; returns (each hears every other present, hears self
/// is absent for all, heard power of `voice` per listener).
fn show(phase: &str, members: &[Member], powers: &[[f64; 5]]) -> (bool, bool) {
    println!(
        "  {phase}: power heard at each voice's frequency, dB (10 log10 of the Goertzel power)"
    );
    print!("    {:<9}", "listener");
    for (name, f) in VOICES {
        print!(" {:>13}", format!("{name} {f:.0}"));
    }
    println!();
    let present: Vec<usize> = members.iter().map(|m| m.voice).collect();
    let mut others_ok = true;
    let mut self_absent = true;
    for (m, p) in members.iter().zip(powers) {
        print!("    {:<9}", VOICES[m.voice].0);
        for (v, &pw) in p.iter().enumerate() {
            let db = 10.0 * pw.max(1e-3).log10();
            let mark = if v == m.voice {
                "self"
            } else if !present.contains(&v) {
                "away"
            } else if pw >= HEARD {
                "ok"
            } else {
                "MISSING"
            };
            print!(" {:>13}", format!("{db:5.1} {mark}"));
            if v == m.voice {
                self_absent &= pw < ABSENT;
            } else if present.contains(&v) {
                others_ok &= pw >= HEARD;
            }
        }
        println!("   ({} samples heard)", m.heard.len());
    }
    (others_ok, self_absent)
}

/// A participant's conference counters, with the rounds it was in and
/// the frames its phone wrote, read together.
#[derive(Clone)]
struct Counters {
    stats: ParticipantStats,
    rounds: u64,
    written: u64,
    /// The jitter-buffer delay of the conference's side of its call.
    delay: Duration,
}

/// Reads the conference's counters between two rounds (the round count
/// the same before and after), so that `rounds` and `frames_out` agree.
fn counters(conf: &Conference, members: &[Member]) -> Vec<Counters> {
    let (ticks, stats) = loop {
        let before = conf.ticks();
        let stats = conf.stats();
        if conf.ticks() == before {
            break (before, stats);
        }
    };
    stats
        .into_iter()
        .filter_map(|stats| {
            let m = members.iter().find(|m| m.id == stats.id)?;
            Some(Counters {
                rounds: ticks - m.joined_at,
                written: m.written,
                delay: m.side.statistics().buffer_delay,
                stats,
            })
        })
        .collect()
}

fn conference(mgr: &BuilderManager, quick: bool, report: &mut Report) -> Result<()> {
    println!("\n=== Part B: the same people through the N-1 conference ===");
    println!(
        "Heard: power >= {:.0} dB; absent: < {:.0} dB (a 0.2 full-scale tone gives about 70 dB)",
        10.0 * HEARD.log10(),
        10.0 * ABSENT.log10()
    );
    let phase_frames: u32 = if quick { 50 } else { 150 };
    println!(
        "Each phase: everyone present writes {phase_frames} frames ({} samples); samples heard: \
         the decoded mixes a phone played during the phase, concealment left out (playout runs \
         a jitter-buffer delay behind, so a phase's count takes in the last frames of the one \
         before and leaves out its own last ones); the powers come from the second half of them",
        phase_frames as usize * FRAME
    );
    let conf = Conference::new(PTIME)?;
    let mut members = Vec::new();
    for v in 0..4 {
        members.push(dial_in(mgr, &conf, v)?);
    }
    let mut each_hears_others = true;
    let mut self_absent = true;

    println!("Phase 1: four participants talk at once");
    talk(&mut members, phase_frames, |_, _| {})?;
    let (o, s) = show("phase 1", &members, &hearing(&members));
    each_hears_others &= o;
    self_absent &= s;

    println!("Phase 2: eve joins mid-call; alice presses # once");
    members.push(dial_in(mgr, &conf, 4)?);
    let mut dtmf_sent = Ok(());
    talk(&mut members, phase_frames, |k, ms| {
        if k == 5 {
            dtmf_sent = ms[0].user.send_dtmf('#', Duration::from_millis(100));
        }
    })?;
    dtmf_sent?;
    let p2 = hearing(&members);
    let (o, s) = show("phase 2", &members, &p2);
    each_hears_others &= o;
    self_absent &= s;
    let eve_heard = members
        .iter()
        .zip(&p2)
        .filter(|(m, _)| m.voice != 4)
        .all(|(_, p)| p[4] >= HEARD);
    let before_leave = counters(&conf, &members);

    println!("Phase 3: diana leaves");
    let diana = members
        .iter()
        .position(|m| m.voice == 3)
        .ok_or("diana is not in the conference")?;
    let d = members.remove(diana);
    let left = conf.leave(d.id);
    d.user.stop()?;
    mgr.release_builder("diana");
    mgr.release_builder("conf-diana");
    talk(&mut members, phase_frames, |_, _| {})?;
    let p3 = hearing(&members);
    let (o, s) = show("phase 3", &members, &p3);
    each_hears_others &= o;
    self_absent &= s;
    let diana_gone = left && p3.iter().all(|p| p[3] < ABSENT);

    let after = counters(&conf, &members);
    let mut rows = after.clone();
    rows.extend(
        before_leave
            .iter()
            .filter(|r| r.stats.name == "diana")
            .cloned(),
    );
    println!(
        "Conference counters ({} mixing rounds in all; diana's read as she left, the others' \
         right after phase 3):",
        conf.ticks()
    );
    println!("  rounds: mixing rounds since it joined (one every 20 ms)");
    println!(
        "  written: frames its phone wrote to its call, one every 20 ms while it talked (on the \
         phone's clock, not the mixer's: it may differ from rounds by one)"
    );
    println!(
        "  in: frames the conference took from its side of the call and mixed, at most one a \
         round, once that side's jitter buffer played it; a frame missing on the wire counts \
         too, as the buffer's concealment (alice's # replaced some of her audio packets, RFC \
         4733)"
    );
    println!(
        "  out: mixes sent to it, one every round from its join, whether its own frames had \
         come through yet or not"
    );
    println!("  delay: that jitter buffer's delay when the counters were read");
    println!("  dtmf in: DTMF events it sent (counted, not mixed)");
    println!(
        "  {:<9} {:>6} {:>7} {:>5} {:>5} {:>9} {:>7}",
        "who", "rounds", "written", "in", "out", "delay", "dtmf in"
    );
    for r in &rows {
        println!(
            "  {:<9} {:>6} {:>7} {:>5} {:>5} {:>6.0} ms {:>7}",
            r.stats.name,
            r.rounds,
            r.written,
            r.stats.frames_in,
            r.stats.frames_out,
            r.delay.as_secs_f64() * 1000.0,
            r.stats.dtmf_in
        );
    }
    let max_behind = rows
        .iter()
        .map(|r| r.written.saturating_sub(r.stats.frames_in))
        .max()
        .unwrap_or(0);
    let delay_ms = rows
        .iter()
        .map(|r| r.delay.as_secs_f64() * 1000.0)
        .fold(0.0, f64::max);
    println!(
        "  written - in ({max_behind} at most here): the frames written last were still on \
         their way when the counters were read, about a jitter-buffer delay's worth \
         ({delay_ms:.0} ms = {:.0} frames) in the buffer of the conference's side and one \
         taken out of it, waiting for the next round",
        delay_ms / PTIME.as_secs_f64() / 1000.0
    );
    println!(
        "  out = rounds: a mix goes out every round, also while a participant's first frames \
         are still in that buffer"
    );
    let alice_dtmf = after
        .iter()
        .find(|r| r.stats.name == "alice")
        .map_or(0, |r| r.stats.dtmf_in);

    report.figure(
        "conf_each_hears_others",
        each_hears_others,
        "in every phase each participant heard every other present one",
    );
    report.figure(
        "conf_hears_self",
        !self_absent,
        "someone's own frequency reached 40 dB in what it heard (false: nobody heard themselves)",
    );
    report.figure(
        "eve_heard",
        eve_heard,
        "after joining mid-call, eve was heard by alice, bob, charlie and diana",
    );
    report.figure(
        "diana_gone",
        diana_gone,
        "after leaving, diana's frequency was absent for everyone left",
    );
    for r in &rows {
        report.figure(
            &format!("conf_frames_in_{}", r.stats.name),
            r.stats.frames_in,
            "frames the conference took from this participant and mixed",
        );
    }
    report.figure(
        "conf_dtmf_in_alice",
        alice_dtmf,
        "DTMF events the conference saw from alice",
    );
    report.check(
        "conference: everyone hears everyone else",
        each_hears_others,
    );
    report.check("conference: nobody hears themselves", self_absent);
    report.check("conference: eve heard after joining", eve_heard);
    report.check("conference: diana gone after leaving", diana_gone);
    report.check("conference: alice's # seen once", alice_dtmf == 1);
    report.check(
        "conference: every participant mixed in",
        rows.iter()
            .all(|r| r.stats.frames_in > 0 && r.stats.frames_out > 0),
    );
    conf.stop();
    Ok(())
}

// ---------------------------------------------------------------- plumbing
