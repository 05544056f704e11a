//! Regression tests for defects of the Go `media_builder` package this
//! library replaces: one test per defect that can apply to the Rust API,
//! each asserting the behaviour the Go code got wrong. Real sockets on
//! loopback; a raw `UdpSocket` plays the far end where the wire format
//! itself is under test.
//!
//! Defects of the Go package (numbered as in its defect list) and the tests
//! that cover them:
//!
//! | # | Go defect | test(s) |
//! |---|---|---|
//! | 1 | activity written under a read lock | `concurrent_lookups_keep_a_builder_alive`, `builder_types_are_send_and_sync` |
//! | 2 | shutdown deadlocks with a running cleanup | `shutdown_while_cleanup_runs_does_not_deadlock` |
//! | 3 | close runs under the manager lock | `manager_calls_proceed_while_builders_close` |
//! | 4 | lock-order (ABBA) deadlocks in the media session | `concurrent_session_calls_do_not_deadlock` |
//! | 5 | unsynchronised fields, DTMF receiver shared by streams | `builder_types_are_send_and_sync`, `concurrent_session_calls_do_not_deadlock`, `multi_stream_offerer_works` |
//! | 6 | stop races the jitter-buffer worker (panics) | `stop_while_receiving_is_clean` |
//! | 7 | one goroutine per error, unbounded | `event_queue_is_bounded` |
//! | 8-10 | goroutines, tickers and sockets leaked per stream | `tests/builder_leaks.rs` (fds and threads before/after) |
//! | 11 | failed negotiations leak builders and ports | `failed_negotiation_releases_ports` |
//! | 12 | invalid port range silently becomes 10000-10010 | `inverted_port_range_is_a_typed_error` |
//! | 13 | `PortReleaseDelay` ignored | `port_release_delay_is_honoured` |
//! | 14 | RTCP port past `MaxPort`; OS port not checked | `max_port_rtcp_stays_in_range`, `port_busy_on_host_is_skipped` |
//! | 15 | port statistics computed, not counted | `statistics_ports_match_allocator` |
//! | 17 | `0.0.0.0` advertised in SDP, IPv4 only | `default_config_never_advertises_wildcard`, `ipv6_call_works` |
//! | 18 | direction mirrored, not complemented | `answer_complements_sendonly_offer_to_recvonly` |
//! | 19 | rejected and non-audio m-lines dropped | `rejected_m_line_is_answered_with_port_zero_and_count_kept`, `non_audio_m_line_answered_with_port_zero` |
//! | 20 | no common codec accepted as PCMU | `no_common_codec_is_rejected_not_accepted_as_pcmu`, `incompatible_offer_is_refused_cleanly` |
//! | 21 | answer's first format used unchecked | `answer_first_format_not_offered_is_not_used` |
//! | 22 | DTMF matched by PT number; acceptance ignored | `telephone_event_matched_by_rtpmap_not_number`, `dtmf_not_accepted_by_answer_is_not_sent`, `renumbered_telephone_event_is_sent_and_received` |
//! | 23 | ptime of the other side ignored | `ptime_from_answer_is_applied_not_zeroed`, `answerer_adopts_the_offers_ptime`, `ptime_asked_of_us_does_not_change_how_we_receive` |
//! | 24 | port 0 and `c=0.0.0.0` not recognised | `hold_address_is_recognised`, `peer_rejecting_our_stream_releases_its_port` |
//! | 25 | a second offer/answer tears the call down | `second_answer_is_a_reoffer_not_a_teardown` (+ `_uring`), `failed_process_offer_leaves_builder_idle_and_retryable` |
//! | 26 | offer is shared state; attributes in random order | `offer_returned_is_a_copy`, `custom_attributes_appear_in_sdp` |
//! | 27 | multi-stream answerer only, one codec for all | `multi_stream_offerer_works`, `multi_stream_streams_keep_their_own_codec` |
//! | 28-29 | `SetPtime` zeroes the frame size and stops sending | `ptime_from_answer_is_applied_not_zeroed` |
//! | 30 | every frame sent twice | `each_frame_is_sent_once` (+ `_uring`) |
//! | 31 | toy codecs on 8-bit input | `audio_is_real_g711` |
//! | 32 | oversized incoming frame panics the receive loop | `oversized_incoming_frame_does_not_kill_the_stream`, `larger_incoming_frames_are_played_whole_without_jitter_buffer` |
//! | 33 | callback data aliases a reused buffer | `received_frames_are_not_overwritten_by_later_packets` |
//! | 34 | other PTs dropped; marker bit never set | `every_negotiated_payload_type_is_received`, `marker_bit_set_at_talkspurt_start` |
//! | 35 | send buffer unbounded | `send_audio_is_bounded_by_the_input_ring` |
//! | 36 | loss/jitter statistics never filled | `loss_and_jitter_statistics_are_filled` |
//! | 37 | DTMF with its own seq/ts space, unpaced | `dtmf_uses_the_audio_streams_sequence_and_timestamp_space` (+ `_uring`) |
//! | 38 | DTMF counted per packet, deduplicated by digit, unvalidated | `dtmf_counts_events_not_packets`, `repeated_digit_with_lost_end_packets_is_reported_twice` |
//! | 39 | jitter buffer: no reordering, no timestamp wrap | `jitter_buffer_reorders_and_handles_timestamp_wrap` |
//! | 40-41 | no RTCP under the builder | `rtcp_reports_and_bye_reach_the_peer` |
//! | 42 | config not validated | `cleanup_interval_zero_is_a_typed_error`, `invalid_ptime_is_a_typed_error`, `dtmf_payload_type_collision_is_a_typed_error`, `odd_or_privileged_min_port_is_a_typed_error`, `port_range_too_small_is_a_typed_error`, `unsupported_payload_type_is_a_typed_error` |
//! | 43 | docs contradict the code (release twice, `Start`) | `release_builder_twice_is_ok`, `start_is_not_called_behind_the_callers_back` |
//! | 44 | dead config fields, untyped errors | `config_fields_take_effect` (errors are matched by variant throughout) |
//! | 45 | media traffic is not activity | `media_traffic_counts_as_activity` |
//! | 46 | no latching (symmetric RTP) | `media_is_sent_to_the_latched_source` |
//! | 47 | examples abort at `Start` | `start_is_not_called_behind_the_callers_back` |
//! | 48 | features printed, not implemented | `direction_changes_on_a_running_session`, `payload_types_restrict_the_offer`, `custom_attributes_appear_in_sdp`, `rtcp_reports_and_bye_reach_the_peer` |
//!
//! Not applicable: 16 (a documentation claim about the random strategy's
//! "security"); the example-only parts of 47 and 48 (a compile error, a
//! send-on-closed-channel panic in the Go stress test, WAV saving,
//! transcoding statistics and SIP in the examples: nothing of this API);
//! 46's socket-option helpers and datagram truncation (the engine owns the
//! sockets; covered by its own tests).
//!
//! Ports: 53000-54999, one slot of 30 ports (15 RTP/RTCP pairs) per test
//! (`cfg(slot)`), so the tests run in parallel. Raw far ends bind
//! 127.0.0.2 (ephemeral ports there never block a builder's 127.0.0.1
//! port).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use mediarelay::builder::{
    Builder, BuilderError, BuilderManager, ConfigError, ManagerConfig, ManagerError, MediaError,
    MediaSession, Phase, PortStrategy, SessionEvent,
};
use mediarelay::engine::IoBackend;
use mediarelay::media::{HandleError, MediaEvent, SessionState};
use mediarelay::rtp::RtpPacket;
use mediarelay::sdp::{Direction, MediaKind, NegotiationError, Rejection, Sdp};

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const FAR: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
const BASE: u16 = 53_000;
const SLOT: u16 = 30;
const FRAME: Duration = Duration::from_millis(20);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A manager configuration on port slot `slot` (30 ports, 15 pairs).
fn cfg(slot: u16) -> ManagerConfig {
    cfg_slots(slot, 1)
}

/// A configuration spanning `n` consecutive slots.
fn cfg_slots(slot: u16, n: u16) -> ManagerConfig {
    assert!(slot + n <= 66, "slot {slot}+{n} is past port 54999");
    let min = BASE + slot * SLOT;
    let max = min + n * SLOT - 1;
    ManagerConfig {
        local_ip: LOCAL,
        min_port: min,
        max_port: max,
        max_concurrent_builders: usize::from(n * SLOT / 2) - 2,
        io_backend: IoBackend::Epoll,
        ..ManagerConfig::default()
    }
}

fn uring_usable() -> bool {
    match mediarelay::engine::uring_support() {
        mediarelay::engine::UringSupport::Unavailable(why) => {
            eprintln!("io_uring unusable here ({why}); skipped");
            false
        }
        _ => true,
    }
}

fn negotiate(a: &Builder, b: &Builder) -> Result<(), BuilderError> {
    let offer = a.create_offer()?;
    b.process_offer(&offer)?;
    let answer = b.create_answer()?;
    a.process_answer(&answer)
}

/// Two builders `a` (offerer) and `b` with negotiated media.
fn call(mgr: &BuilderManager, a: &str, b: &str) -> (Arc<Builder>, Arc<Builder>) {
    let x = mgr.create_builder(a).unwrap();
    let y = mgr.create_builder(b).unwrap();
    negotiate(&x, &y).unwrap();
    (x, y)
}

/// The builder's session, started.
fn started(b: &Builder) -> MediaSession {
    let s = b.media_session().expect("negotiated");
    s.start().unwrap();
    s
}

/// 20 ms of a 400 Hz tone, frame `k` of a continuous signal.
fn tone(k: u32) -> Vec<i16> {
    (0..160u32)
        .map(|i| {
            let n = f64::from(k * 160 + i);
            (8000.0 * (n * 2.0 * std::f64::consts::PI * 400.0 / 8000.0).sin()) as i16
        })
        .collect()
}

/// Calls `f(k)` for `k` in `0..frames`, one call per 20 ms on an absolute
/// schedule.
fn paced(frames: u32, mut f: impl FnMut(u32)) {
    let t0 = Instant::now();
    for k in 0..frames {
        f(k);
        let next = t0 + FRAME * (k + 1);
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// Writes a whole frame (retrying the rest briefly if the ring is full).
fn send_frame(s: &MediaSession, pcm: &[i16]) {
    let mut off = 0;
    for _ in 0..50 {
        off += s.send_audio(&pcm[off..]).unwrap();
        if off == pcm.len() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("input ring stayed full");
}

fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An event as a test keeps it: audio frames go back to the session's
/// pool at once (it lends only a few at a time).
#[derive(Debug)]
enum Seen {
    Audio {
        timestamp: u32,
        samples: usize,
        concealed: bool,
    },
    Event(MediaEvent),
}

impl Seen {
    fn of(e: SessionEvent) -> Seen {
        match e.event {
            MediaEvent::Audio(f) => Seen::Audio {
                timestamp: f.timestamp,
                samples: f.samples.len(),
                concealed: f.concealed,
            },
            other => Seen::Event(other),
        }
    }

    fn event(&self) -> Option<&MediaEvent> {
        match self {
            Seen::Event(e) => Some(e),
            Seen::Audio { .. } => None,
        }
    }
}

/// Every event of `s` for `dur`.
fn drain(s: &MediaSession, dur: Duration) -> Vec<Seen> {
    let end = Instant::now() + dur;
    let mut out = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        if let Some(e) = s.recv_timeout(left.min(Duration::from_millis(20))) {
            out.push(Seen::of(e));
        }
    }
    out
}

/// `(timestamp, samples)` of the frames played from packets.
fn played(events: &[Seen]) -> Vec<(u32, usize)> {
    events
        .iter()
        .filter_map(|e| match e {
            Seen::Audio {
                timestamp,
                samples,
                concealed: false,
                ..
            } => Some((*timestamp, *samples)),
            _ => None,
        })
        .collect()
}

fn audio_received(s: &MediaSession) -> u64 {
    let st = s.statistics();
    st.packets_received - st.dtmf_packets_received
}

fn digit(code: u8) -> char {
    match code {
        0..=9 => (b'0' + code) as char,
        10 => '*',
        11 => '#',
        c => (b'A' + c - 12) as char,
    }
}

fn attribute_names(section: &mediarelay::sdp::Section) -> Vec<String> {
    section.attributes().map(|a| a.name.to_owned()).collect()
}

/// An SDP body with the given `m=` blocks (each without line ends between
/// its lines: they are joined with CRLF) and session connection `c_ip`.
fn sdp(c_ip: &str, blocks: &[Vec<String>]) -> Sdp {
    let kind = if c_ip.contains(':') { "IP6" } else { "IP4" };
    let mut s =
        format!("v=0\r\no=- 7 7 IN {kind} {c_ip}\r\ns=-\r\nc=IN {kind} {c_ip}\r\nt=0 0\r\n");
    for b in blocks {
        for l in b {
            s.push_str(l);
            s.push_str("\r\n");
        }
    }
    s.parse().unwrap()
}

/// A received RTP packet.
#[derive(Debug, Clone)]
struct Pkt {
    at: Instant,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    marker: bool,
    payload: Vec<u8>,
    from: SocketAddr,
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + payload.len());
    p.push(0x80);
    p.push(pt | if marker { 0x80 } else { 0 });
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// A far end played by raw sockets: RTP on one, RTCP (named in `a=rtcp`)
/// on another.
struct FarEnd {
    rtp: UdpSocket,
    rtcp: UdpSocket,
}

impl FarEnd {
    fn new() -> FarEnd {
        let bind = || {
            let s = UdpSocket::bind(SocketAddr::new(FAR, 0)).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
            s
        };
        FarEnd {
            rtp: bind(),
            rtcp: bind(),
        }
    }

    fn port(&self) -> u16 {
        self.rtp.local_addr().unwrap().port()
    }

    /// This far end's `m=audio` block with `formats` and extra lines.
    fn block(&self, formats: &str, attrs: &[&str]) -> Vec<String> {
        let mut b = vec![
            format!("m=audio {} RTP/AVP {formats}", self.port()),
            format!("a=rtcp:{}", self.rtcp.local_addr().unwrap().port()),
        ];
        b.extend(attrs.iter().map(|a| (*a).to_owned()));
        b
    }

    /// A one-stream SDP (offer or answer) from this far end.
    fn sdp(&self, formats: &str, attrs: &[&str]) -> Sdp {
        sdp("127.0.0.2", &[self.block(formats, attrs)])
    }

    /// PCMU + telephone-event 101, 20 ms, sendrecv.
    fn pcmu(&self) -> Sdp {
        self.sdp("0 101", PCMU_ATTRS)
    }

    fn recv(&self) -> Option<Pkt> {
        let mut buf = [0u8; 2048];
        let (n, from) = self.rtp.recv_from(&mut buf).ok()?;
        let p = RtpPacket::parse(&buf[..n]).ok()?;
        Some(Pkt {
            at: Instant::now(),
            pt: p.payload_type().value(),
            seq: p.sequence(),
            ts: p.timestamp(),
            ssrc: p.ssrc().0,
            marker: p.marker(),
            payload: p.payload().to_vec(),
            from,
        })
    }

    /// RTP packets received for `dur`.
    fn collect(&self, dur: Duration) -> Vec<Pkt> {
        let end = Instant::now() + dur;
        let mut out = Vec::new();
        while Instant::now() < end {
            if let Some(p) = self.recv() {
                out.push(p);
            }
        }
        out
    }

    fn send(&self, to: SocketAddr, packet: &[u8]) {
        self.rtp.send_to(packet, to).unwrap();
    }
}

const PCMU_ATTRS: &[&str] = &[
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=ptime:20",
    "a=sendrecv",
];

/// A builder `id` that offered and took `far`'s answer; its session started.
fn raw_call(mgr: &BuilderManager, id: &str, answer: &Sdp) -> (Arc<Builder>, MediaSession) {
    let b = mgr.create_builder(id).unwrap();
    b.create_offer().unwrap();
    b.process_answer(answer).unwrap();
    let s = started(&b);
    (b, s)
}

/// The builder's RTP address for stream `i`.
fn local(b: &Builder, i: usize) -> SocketAddr {
    b.media_streams()[i].local.unwrap()
}

/// G.711 μ-law to linear (ITU-T G.711, the classic reference decoder).
fn ulaw_decode(u: u8) -> i16 {
    let u = !u;
    let t = ((i32::from(u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// G.711 A-law to linear.
fn alaw_decode(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t = i32::from(a & 0x0f) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => t = (t + 0x108) << (seg - 1),
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

// ---------------------------------------------------------------------------
// Offer/answer state
// ---------------------------------------------------------------------------

#[test]
fn failed_process_offer_leaves_builder_idle_and_retryable() {
    let mgr = BuilderManager::new(cfg(0)).unwrap();
    let a = mgr.create_builder("a").unwrap();
    let b = mgr.create_builder("b").unwrap();
    let in_use = mgr.statistics().ports_in_use;
    // No c= anywhere: nothing to send to.
    let no_address: Sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nt=0 0\r\n\
                           m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        .parse()
        .unwrap();
    assert_eq!(
        b.process_offer(&no_address),
        Err(BuilderError::NoAddress(0))
    );
    assert_eq!(b.phase(), Phase::Idle);
    let no_media: Sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\n"
        .parse()
        .unwrap();
    assert_eq!(b.process_offer(&no_media), Err(BuilderError::NoMedia));
    assert_eq!(b.phase(), Phase::Idle);
    assert_eq!(mgr.statistics().ports_in_use, in_use);
    // Go set the mode first: the builder was stuck in answer mode.
    negotiate(&a, &b).unwrap();
    assert_eq!(a.phase(), Phase::Established);
    assert_eq!(b.phase(), Phase::Established);
    assert!(b.media_streams()[0].bound);
}

#[test]
fn answer_complements_sendonly_offer_to_recvonly() {
    let mgr = BuilderManager::new(cfg(1)).unwrap();
    // sendonly offer: recvonly answer.
    let a = mgr.create_builder("a").unwrap();
    let b = mgr.create_builder("b").unwrap();
    a.set_direction(Direction::SendOnly);
    let offer = a.create_offer().unwrap();
    assert_eq!(offer.media_direction(0), Direction::SendOnly);
    b.process_offer(&offer).unwrap();
    let answer = b.create_answer().unwrap();
    assert_eq!(answer.media_direction(0), Direction::RecvOnly);
    a.process_answer(&answer).unwrap();
    assert_eq!(a.media_streams()[0].direction, Direction::SendOnly);
    assert_eq!(b.media_streams()[0].direction, Direction::RecvOnly);
    // recvonly offer: sendonly answer.
    let c = mgr.create_builder("c").unwrap();
    let d = mgr.create_builder("d").unwrap();
    c.set_direction(Direction::RecvOnly);
    let offer = c.create_offer().unwrap();
    d.process_offer(&offer).unwrap();
    let answer = d.create_answer().unwrap();
    assert_eq!(answer.media_direction(0), Direction::SendOnly);
    c.process_answer(&answer).unwrap();
    assert_eq!(c.media_streams()[0].direction, Direction::RecvOnly);
    // The answerer's own preference counts too.
    let e = mgr.create_builder("e").unwrap();
    let f = mgr.create_builder("f").unwrap();
    f.set_direction(Direction::RecvOnly);
    negotiate(&e, &f).unwrap();
    assert_eq!(e.media_streams()[0].direction, Direction::SendOnly);
    assert_eq!(f.media_streams()[0].direction, Direction::RecvOnly);
    // And media follows: a sends, b only receives.
    let (sa, sb) = (started(&a), started(&b));
    paced(25, |k| {
        send_frame(&sa, &tone(k));
        assert_eq!(sb.send_audio(&tone(k)), Err(MediaError::NotSending));
    });
    assert!(wait_until(Duration::from_secs(2), || audio_received(&sb) >= 20));
    assert_eq!(sb.statistics().audio_packets_sent, 0);
    assert_eq!(audio_received(&sa), 0);
}

#[test]
fn rejected_m_line_is_answered_with_port_zero_and_count_kept() {
    let mgr = BuilderManager::new(cfg(2)).unwrap();
    let b = mgr.create_builder("b").unwrap();
    let (f0, f1, f2) = (FarEnd::new(), FarEnd::new(), FarEnd::new());
    let offer = sdp(
        "127.0.0.2",
        &[
            f0.block("0", &["a=rtpmap:0 PCMU/8000"]),
            f1.block("9", &["a=rtpmap:9 G722/8000"]),
            f2.block("8", &["a=rtpmap:8 PCMA/8000"]),
        ],
    );
    b.process_offer(&offer).unwrap();
    let answer = b.create_answer().unwrap();
    assert_eq!(answer.media().len(), 3, "{answer}");
    assert_eq!(answer.media()[1].port(), 0, "{answer}");
    let (p0, p2) = (answer.media()[0].port(), answer.media()[2].port());
    assert!(p0 != 0 && p2 != 0 && p0 != p2, "{answer}");
    let st = b.media_streams();
    assert_eq!(st[1].rejection, Some(Rejection::NoCommonCodec));
    assert_eq!(st[1].local, None);
    assert!(st[0].is_active() && st[2].is_active());
    assert_eq!(st[2].codec.as_deref(), Some("PCMA"));
    // Two streams hold a pair; the rejected one's went back.
    assert_eq!(mgr.statistics().ports_in_use, 2);
}

#[test]
fn non_audio_m_line_answered_with_port_zero() {
    let mgr = BuilderManager::new(cfg(3)).unwrap();
    let b = mgr.create_builder("b").unwrap();
    let far = FarEnd::new();
    let video = vec![
        format!("m=video {} RTP/AVP 96", far.port() + 2),
        "a=rtpmap:96 H264/90000".to_owned(),
    ];
    let offer = sdp("127.0.0.2", &[far.block("0 101", PCMU_ATTRS), video]);
    b.process_offer(&offer).unwrap();
    let answer = b.create_answer().unwrap();
    assert_eq!(answer.media().len(), 2, "{answer}");
    assert_eq!(answer.media()[1].kind(), MediaKind::Video);
    assert_eq!(answer.media()[1].port(), 0);
    assert_ne!(answer.media()[0].port(), 0);
    let st = b.media_streams();
    assert_eq!(st[1].media_type, MediaKind::Video);
    assert_eq!(st[1].rejection, Some(Rejection::UnsupportedMedia));
    assert_eq!(mgr.statistics().ports_in_use, 1);
    // The audio stream works.
    let s = started(&b);
    paced(10, |k| send_frame(&s, &tone(k)));
    let got = far.collect(Duration::from_millis(200));
    assert!(got.iter().filter(|p| p.pt == 0).count() >= 5, "{got:?}");
}

#[test]
fn no_common_codec_is_rejected_not_accepted_as_pcmu() {
    let mgr = BuilderManager::new(cfg(4)).unwrap();
    let b = mgr.create_builder("b").unwrap();
    let (f0, f1) = (FarEnd::new(), FarEnd::new());
    let offer = sdp(
        "127.0.0.2",
        &[
            f0.block("18", &["a=rtpmap:18 G729/8000"]),
            f1.block("0", &["a=rtpmap:0 PCMU/8000"]),
        ],
    );
    b.process_offer(&offer).unwrap();
    let answer = b.create_answer().unwrap();
    assert_eq!(answer.media()[0].port(), 0, "{answer}");
    let st = b.media_streams();
    assert_eq!(st[0].rejection, Some(Rejection::NoCommonCodec));
    assert_eq!(st[0].payload_type, None);
    assert!(!st[0].bound);
    assert_eq!(st[1].codec.as_deref(), Some("PCMU"));
    let s = started(&b);
    paced(10, |k| send_frame(&s, &tone(k)));
    let got1 = f1.collect(Duration::from_millis(150));
    let got0 = f0.collect(Duration::from_millis(50));
    assert!(got1.len() >= 5, "{got1:?}");
    assert!(got0.is_empty(), "G.729-only stream got {got0:?}");
}

#[test]
fn incompatible_offer_is_refused_cleanly() {
    let mgr = BuilderManager::new(cfg(5)).unwrap();
    let b = mgr.create_builder("b").unwrap();
    let far = FarEnd::new();
    let in_use = mgr.statistics().ports_in_use;
    let g722 = far.sdp("9", &["a=rtpmap:9 G722/8000"]);
    assert_eq!(b.process_offer(&g722), Err(BuilderError::NoSupportedMedia));
    assert_eq!(b.phase(), Phase::Idle);
    assert_eq!(mgr.statistics().ports_in_use, in_use);
    b.process_offer(&far.pcmu()).unwrap();
    b.create_answer().unwrap();
    assert_eq!(b.phase(), Phase::Established);
}

#[test]
fn answer_first_format_not_offered_is_not_used() {
    let mgr = BuilderManager::new(cfg(6)).unwrap();
    // First format 18 (never offered): the first common one, PCMA, is sent.
    let f1 = FarEnd::new();
    let answer = f1.sdp(
        "18 8 101",
        &[
            "a=rtpmap:18 G729/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
        ],
    );
    let (b1, s1) = raw_call(&mgr, "b1", &answer);
    assert_eq!(b1.media_streams()[0].payload_type, Some(8));
    // First format telephone-event: PCMU is sent, not PT 101 audio.
    let f2 = FarEnd::new();
    let answer = f2.sdp(
        "101 0",
        &["a=rtpmap:101 telephone-event/8000", "a=rtpmap:0 PCMU/8000"],
    );
    let (b2, s2) = raw_call(&mgr, "b2", &answer);
    assert_eq!(b2.media_streams()[0].payload_type, Some(0));
    paced(10, |k| {
        send_frame(&s1, &tone(k));
        send_frame(&s2, &tone(k));
    });
    let (g1, g2) = (
        f1.collect(Duration::from_millis(150)),
        f2.collect(Duration::from_millis(50)),
    );
    assert!(g1.len() >= 5 && g1.iter().all(|p| p.pt == 8), "{g1:?}");
    assert!(g2.len() >= 5 && g2.iter().all(|p| p.pt == 0), "{g2:?}");
}

#[test]
fn offer_returned_is_a_copy() {
    let mgr = BuilderManager::new(cfg(7)).unwrap();
    let a = mgr.create_builder("a").unwrap();
    let b = mgr.create_builder("b").unwrap();
    let mut offer = a.create_offer().unwrap();
    let sent = offer.clone();
    let port = offer.media()[0].port();
    offer.media_mut()[0].set_port(9);
    offer.media_mut()[0]
        .section_mut()
        .set_direction(Direction::Inactive);
    offer
        .session_mut()
        .insert_attribute("x-mutated", None)
        .unwrap();
    b.process_offer(&sent).unwrap();
    a.process_answer(&b.create_answer().unwrap()).unwrap();
    assert_eq!(a.local_port(), Some(port));
    assert_eq!(a.media_streams()[0].direction, Direction::SendRecv);
    let reoffer = a.create_offer().unwrap();
    assert_eq!(reoffer.media()[0].port(), port);
    assert_eq!(reoffer.media_direction(0), Direction::SendRecv);
    assert!(!reoffer.session().has_attribute("x-mutated"));
}

fn second_answer_is_a_reoffer(backend: IoBackend, slot: u16) {
    let mgr = BuilderManager::new(ManagerConfig {
        io_backend: backend,
        ..cfg(slot)
    })
    .unwrap();
    let a = mgr.create_builder("a").unwrap();
    let b = mgr.create_builder("b").unwrap();
    let offer = a.create_offer().unwrap();
    b.process_offer(&offer).unwrap();
    let answer = b.create_answer().unwrap();
    a.process_answer(&answer).unwrap();
    let (pa, pb) = (a.local_port(), b.local_port());
    let (sa, sb) = (started(&a), started(&b));
    let both = |k| {
        send_frame(&sa, &tone(k));
        send_frame(&sb, &tone(k));
    };
    paced(25, both);
    std::thread::sleep(Duration::from_millis(100));
    let (ra, rb) = (audio_received(&sa), audio_received(&sb));
    assert!(ra >= 20 && rb >= 20, "{ra} {rb}");
    // The same answer again is refused; the call is untouched (Go rebound
    // the port, failed, and stopped the media).
    assert!(matches!(
        a.process_answer(&answer),
        Err(BuilderError::State {
            phase: Phase::Established,
            ..
        })
    ));
    assert!(sa.is_running());
    // Hold (re-INVITE sendonly): b still receives, a no longer does.
    a.set_direction(Direction::SendOnly);
    let hold = a.create_offer().unwrap();
    b.process_offer(&hold).unwrap();
    assert_eq!(b.phase(), Phase::ReofferReceived);
    let ans = b.create_answer().unwrap();
    assert_eq!(ans.media_direction(0), Direction::RecvOnly);
    a.process_answer(&ans).unwrap();
    assert_eq!((a.local_port(), b.local_port()), (pa, pb));
    std::thread::sleep(Duration::from_millis(60));
    let (ra1, rb1) = (audio_received(&sa), audio_received(&sb));
    paced(25, |k| {
        send_frame(&sa, &tone(k));
        assert_eq!(sb.send_audio(&tone(k)), Err(MediaError::NotSending));
    });
    std::thread::sleep(Duration::from_millis(100));
    let (ra2, rb2) = (audio_received(&sa), audio_received(&sb));
    assert!(rb2 - rb1 >= 20, "b received {} on hold", rb2 - rb1);
    assert!(
        ra2 - ra1 <= 1,
        "a received {} while b was recvonly",
        ra2 - ra1
    );
    // Resume: both directions again, on the same session.
    a.set_direction(Direction::SendRecv);
    negotiate(&a, &b).unwrap();
    assert_eq!(b.media_streams()[0].direction, Direction::SendRecv);
    paced(25, both);
    std::thread::sleep(Duration::from_millis(100));
    let (ra3, rb3) = (audio_received(&sa), audio_received(&sb));
    assert!(ra3 - ra2 >= 20 && rb3 - rb2 >= 20, "{ra3} {rb3}");
    assert!(sa.is_running() && sb.is_running());
    assert_eq!(a.media_session().unwrap().stream_ids(), sa.stream_ids());
}

#[test]
fn second_answer_is_a_reoffer_not_a_teardown() {
    second_answer_is_a_reoffer(IoBackend::Epoll, 8);
}

#[test]
fn second_answer_is_a_reoffer_not_a_teardown_uring() {
    if uring_usable() {
        second_answer_is_a_reoffer(IoBackend::Uring, 9);
    }
}

// ---------------------------------------------------------------------------
// Manager: registry, cleanup, ports
// ---------------------------------------------------------------------------

#[test]
fn release_builder_twice_is_ok() {
    let mgr = BuilderManager::new(cfg(10)).unwrap();
    let (a, b) = call(&mgr, "a", "b");
    let sa = started(&a);
    assert!(mgr.release_builder("a"));
    assert!(!mgr.release_builder("a"));
    assert!(!mgr.release_builder("never"));
    assert_eq!(a.close(), Err(BuilderError::Closed));
    assert_eq!(a.phase(), Phase::Closed);
    assert_eq!(sa.send_audio(&[0; 160]), Err(MediaError::Stopped));
    assert_eq!(mgr.active_builders(), vec!["b".to_owned()]);
    drop(b);
    assert!(mgr.release_builder("b"));
    assert_eq!(mgr.statistics().ports_in_use, 0);
}

#[test]
fn shutdown_while_cleanup_runs_does_not_deadlock() {
    for round in 0..5u64 {
        let mgr = Arc::new(
            BuilderManager::new(ManagerConfig {
                session_timeout: Some(Duration::from_millis(20)),
                cleanup_interval: Duration::from_millis(5),
                ..cfg_slots(11, 2)
            })
            .unwrap(),
        );
        let mut sessions = Vec::new();
        for i in 0..12 {
            let (Ok(a), Ok(b)) = (
                mgr.create_builder(&format!("a{i}")),
                mgr.create_builder(&format!("b{i}")),
            ) else {
                continue;
            };
            // The cleanup may close either side meanwhile: that is fine.
            if i % 2 == 0 && negotiate(&a, &b).is_ok() {
                if let Some(s) = a.media_session() {
                    let _ = s.start();
                    sessions.push(s);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(round * 7));
        let (tx, rx) = mpsc::channel();
        let m = mgr.clone();
        let t = std::thread::spawn(move || {
            m.shutdown();
            let _ = tx.send(());
        });
        assert!(
            rx.recv_timeout(Duration::from_secs(10)).is_ok(),
            "shutdown hung (round {round})"
        );
        t.join().unwrap();
        assert_eq!(mgr.create_builder("late").err(), Some(ManagerError::Closed));
        assert!(mgr.active_builders().is_empty());
        for s in sessions {
            assert!(!s.is_running());
        }
    }
}

#[test]
fn media_traffic_counts_as_activity() {
    let mgr = BuilderManager::new(ManagerConfig {
        session_timeout: Some(Duration::from_secs(1)),
        cleanup_interval: Duration::from_millis(200),
        ..cfg(13)
    })
    .unwrap();
    let (a1, b1) = call(&mgr, "a1", "b1");
    let (a2, _b2) = call(&mgr, "a2", "b2");
    let (s1, t1) = (started(&a1), started(&b1));
    paced(125, |k| {
        send_frame(&s1, &tone(k));
        send_frame(&t1, &tone(k));
    });
    assert_eq!(
        mgr.active_builders(),
        vec!["a1".to_owned(), "b1".to_owned()]
    );
    assert_eq!(mgr.statistics().session_timeouts, 2);
    assert_eq!(a2.phase(), Phase::Closed);
    assert!(s1.is_running() && t1.is_running());
    assert!(mgr.statistics().last_cleanup.is_some());
}

#[test]
fn concurrent_lookups_keep_a_builder_alive() {
    let mgr = BuilderManager::new(ManagerConfig {
        session_timeout: Some(Duration::from_millis(600)),
        cleanup_interval: Duration::from_millis(100),
        ..cfg(55)
    })
    .unwrap();
    mgr.create_builder("x").unwrap();
    mgr.create_builder("y").unwrap();
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                for _ in 0..30 {
                    assert!(mgr.builder("x").is_some());
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
    });
    assert_eq!(mgr.active_builders(), vec!["x".to_owned()]);
    assert_eq!(mgr.statistics().session_timeouts, 1);
}

#[test]
fn manager_calls_proceed_while_builders_close() {
    let mgr = BuilderManager::new(cfg_slots(52, 2)).unwrap();
    let mut ids = Vec::new();
    for i in 0..12 {
        let (a, b) = call(&mgr, &format!("a{i}"), &format!("b{i}"));
        started(&a);
        started(&b);
        ids.push(format!("a{i}"));
        ids.push(format!("b{i}"));
    }
    let done = AtomicBool::new(false);
    let mut worst = Duration::ZERO;
    let mut calls = 0u32;
    let release_time = std::thread::scope(|s| {
        let closer = s.spawn(|| {
            let t = Instant::now();
            for id in &ids {
                assert!(mgr.release_builder(id));
            }
            done.store(true, Ordering::SeqCst);
            t.elapsed()
        });
        while !done.load(Ordering::SeqCst) {
            let t = Instant::now();
            let _ = mgr.statistics();
            let _ = mgr.active_builders();
            let _ = mgr.builder("a0");
            worst = worst.max(t.elapsed());
            calls += 1;
        }
        closer.join().unwrap()
    });
    eprintln!(
        "released 24 running builders in {release_time:?}; {calls} lookups, slowest {worst:?}"
    );
    // Each close waits for its RTCP BYE to leave (up to a ptime) and a
    // shard round trip; lookups go on meanwhile instead of queueing behind
    // it (Go closed under the manager lock: about one lookup per close).
    assert!(
        calls >= 24 * 20,
        "{calls} lookups while 24 builders closed in {release_time:?}"
    );
    assert!(
        worst < Duration::from_millis(100),
        "a lookup took {worst:?} while builders closed"
    );
    assert_eq!(mgr.statistics().ports_in_use, 0);
}

#[test]
fn failed_negotiation_releases_ports() {
    let cfg = cfg(51);
    let mgr = BuilderManager::new(cfg.clone()).unwrap();
    let a = mgr.create_builder("a").unwrap();
    a.set_audio_streams(3).unwrap();
    a.create_offer().unwrap();
    assert_eq!(mgr.statistics().ports_in_use, 3);
    let far = FarEnd::new();
    // One m-line for three: refused, the offer stays outstanding.
    assert!(matches!(
        a.process_answer(&far.pcmu()),
        Err(BuilderError::Negotiation(
            NegotiationError::MediaCountMismatch { .. }
        ))
    ));
    assert_eq!(a.phase(), Phase::OfferSent);
    // Every stream rejected: refused, back to idle.
    let zero = vec!["m=audio 0 RTP/AVP 0".to_owned()];
    let all_rejected = sdp("127.0.0.2", &[zero.clone(), zero.clone(), zero]);
    assert_eq!(
        a.process_answer(&all_rejected),
        Err(BuilderError::NoSupportedMedia)
    );
    assert_eq!(a.phase(), Phase::Idle);
    let b = mgr.create_builder("b").unwrap();
    assert!(b.process_offer(&far.sdp("9", &[])).is_err());
    assert!(mgr.release_builder("a"));
    assert!(mgr.release_builder("b"));
    assert_eq!(mgr.statistics().ports_in_use, 0);
    // Shutdown with live, bound builders returns their ports to the host:
    // a new manager on the same range binds every pair.
    for i in 0..6 {
        call(&mgr, &format!("x{i}"), &format!("y{i}"));
    }
    mgr.shutdown();
    drop(mgr);
    let mgr = BuilderManager::new(cfg).unwrap();
    for i in 0..6 {
        call(&mgr, &format!("x{i}"), &format!("y{i}"));
    }
    assert_eq!(mgr.statistics().ports_in_use, 12);
}

#[test]
fn port_release_delay_is_honoured() {
    // Sequential: the pair just released is not the next one handed out
    // (Go's pool returned the lowest free port: the one just released).
    let mgr = BuilderManager::new(cfg(14)).unwrap();
    let a = mgr.create_builder("a").unwrap();
    let pa = a.local_port();
    assert!(mgr.release_builder("a"));
    assert_eq!(mgr.statistics().ports_quarantined, 1);
    let b = mgr.create_builder("b").unwrap();
    assert_ne!(b.local_port(), pa);
    drop(mgr);
    // Random: with every other pair free, the quarantined one is passed
    // over by all 14 allocations; only the 15th, with nothing else left,
    // cuts its quarantine short.
    let mgr = BuilderManager::new(ManagerConfig {
        port_strategy: PortStrategy::Random,
        port_release_delay: Duration::from_secs(30),
        max_concurrent_builders: 15,
        ..cfg(15)
    })
    .unwrap();
    let x = mgr.create_builder("x").unwrap();
    let px = x.local_port();
    assert!(mgr.release_builder("x"));
    let mut held = Vec::new();
    for i in 0..14 {
        let b = mgr.create_builder(&format!("b{i}")).unwrap();
        assert_ne!(b.local_port(), px, "quarantined pair handed out");
        held.push(b);
    }
    assert_eq!(mgr.statistics().quarantine_cut_short, 0);
    let last = mgr.create_builder("last").unwrap();
    assert_eq!(last.local_port(), px);
    assert_eq!(mgr.statistics().quarantine_cut_short, 1);
}

#[test]
fn statistics_ports_match_allocator() {
    let mgr = BuilderManager::new(cfg(16)).unwrap();
    let a = mgr.create_builder("a").unwrap();
    let b = mgr.create_builder("b").unwrap();
    a.set_audio_streams(3).unwrap();
    let offer = a.create_offer().unwrap();
    b.process_offer(&offer).unwrap();
    let st = mgr.statistics();
    assert_eq!(st.ports_in_use, 6);
    assert_eq!(st.ports_total, 15);
    assert_eq!(st.ports_available, 9);
    assert_eq!(mgr.available_ports(), st.ports_available);
    a.process_answer(&b.create_answer().unwrap()).unwrap();
    assert_eq!(mgr.statistics().ports_in_use, 6);
    assert_eq!(mgr.statistics().active_builders, 2);
    assert!(mgr.release_builder("a"));
    assert_eq!(mgr.statistics().ports_in_use, 3);
    assert!(mgr.release_builder("b"));
    let st = mgr.statistics();
    assert_eq!((st.ports_in_use, st.ports_available), (0, 15));
    assert_eq!(mgr.available_ports(), 15);
}

#[test]
fn max_port_rtcp_stays_in_range() {
    let min = BASE + 58 * SLOT;
    let mgr = BuilderManager::new(ManagerConfig {
        max_port: min + 8,
        max_concurrent_builders: 4,
        ..cfg(58)
    })
    .unwrap();
    // Ports min..=min+8: the pair (min+8, min+9) would end past max_port.
    assert_eq!(mgr.statistics().ports_total, 4);
    for i in 0..4 {
        let b = mgr.create_builder(&format!("b{i}")).unwrap();
        let rtp = b.local_port().unwrap();
        let rtcp = rtp + 1;
        assert!(
            rtp >= min && rtcp <= min + 8,
            "pair {rtp}/{rtcp} out of range"
        );
    }
    assert_eq!(mgr.available_ports(), 0);
}

#[test]
fn port_busy_on_host_is_skipped() {
    let cfg = cfg(59);
    let busy = UdpSocket::bind(SocketAddr::new(LOCAL, cfg.min_port)).unwrap();
    let mgr = BuilderManager::new(cfg.clone()).unwrap();
    let (a, b) = call(&mgr, "a", "b");
    assert_ne!(a.local_port(), Some(cfg.min_port));
    assert_ne!(b.local_port(), Some(cfg.min_port));
    let (sa, sb) = (started(&a), started(&b));
    paced(10, |k| send_frame(&sa, &tone(k)));
    assert!(wait_until(Duration::from_secs(1), || audio_received(&sb) >= 8));
    drop(busy);
}

#[test]
fn default_config_never_advertises_wildcard() {
    let d = ManagerConfig::default();
    assert!(!d.advertised_ip().is_unspecified());
    assert_eq!(d.advertised_ip(), mediarelay::builder::outbound_ipv4());
    let c = cfg(17);
    let mgr = BuilderManager::new(ManagerConfig {
        local_ip: d.local_ip,
        ..c.clone()
    })
    .unwrap();
    let offer = mgr.create_builder("a").unwrap().create_offer().unwrap();
    let conn = offer.media_connection(0).unwrap().address.ip().unwrap();
    assert_eq!(conn, d.local_ip);
    assert!(!conn.is_unspecified());
    assert_eq!(offer.origin().unwrap().address.ip(), Some(d.local_ip));
    drop(mgr);
    // The wildcard binds only with a real address to advertise.
    let any = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    assert_eq!(
        BuilderManager::new(ManagerConfig {
            local_ip: any,
            ..c.clone()
        })
        .err(),
        Some(ManagerError::Config(ConfigError::Unadvertisable(any)))
    );
    let mgr = BuilderManager::new(ManagerConfig {
        local_ip: any,
        advertise_ip: Some(LOCAL),
        ..c
    })
    .unwrap();
    let offer = mgr.create_builder("a").unwrap().create_offer().unwrap();
    assert_eq!(offer.media_connection(0).unwrap().address.ip(), Some(LOCAL));
}

#[test]
fn ipv6_call_works() {
    let v6: IpAddr = "::1".parse().unwrap();
    if UdpSocket::bind(SocketAddr::new(v6, 0)).is_err() {
        eprintln!("no IPv6 loopback here; skipped");
        return;
    }
    let mgr = BuilderManager::new(ManagerConfig {
        local_ip: v6,
        ..cfg(54)
    })
    .unwrap();
    let a = mgr.create_builder("a").unwrap();
    let b = mgr.create_builder("b").unwrap();
    let offer = a.create_offer().unwrap();
    assert!(offer.to_string().contains("c=IN IP6 ::1"), "{offer}");
    b.process_offer(&offer).unwrap();
    a.process_answer(&b.create_answer().unwrap()).unwrap();
    let (sa, sb) = (started(&a), started(&b));
    paced(15, |k| send_frame(&sa, &tone(k)));
    assert!(wait_until(Duration::from_secs(1), || audio_received(&sb) >= 12));
}

// ---------------------------------------------------------------------------
// Configuration checks
// ---------------------------------------------------------------------------

fn config_error(c: ManagerConfig) -> ConfigError {
    match BuilderManager::new(c) {
        Err(ManagerError::Config(e)) => e,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn cleanup_interval_zero_is_a_typed_error() {
    let e = config_error(ManagerConfig {
        session_timeout: Some(Duration::from_secs(1)),
        cleanup_interval: Duration::ZERO,
        ..cfg(19)
    });
    assert_eq!(e, ConfigError::ZeroCleanupInterval);
    let e = config_error(ManagerConfig {
        session_timeout: Some(Duration::ZERO),
        ..cfg(19)
    });
    assert_eq!(e, ConfigError::ZeroSessionTimeout);
}

#[test]
fn invalid_ptime_is_a_typed_error() {
    for ms in [0, 5, 25, 70] {
        let p = Duration::from_millis(ms);
        let e = config_error(ManagerConfig {
            ptime: p,
            ..cfg(19)
        });
        assert_eq!(e, ConfigError::Ptime(p));
    }
}

#[test]
fn dtmf_payload_type_collision_is_a_typed_error() {
    let e = config_error(ManagerConfig {
        payload_types: vec![0, 8],
        dtmf_payload_type: Some(8),
        ..cfg(19)
    });
    assert_eq!(e, ConfigError::DtmfCollides(8));
    let e = config_error(ManagerConfig {
        dtmf_payload_type: Some(13),
        ..cfg(19)
    });
    assert_eq!(e, ConfigError::DtmfPayloadType(13));
}

#[test]
fn odd_or_privileged_min_port_is_a_typed_error() {
    let c = cfg(19);
    let e = config_error(ManagerConfig {
        min_port: c.min_port + 1,
        ..c.clone()
    });
    assert_eq!(e, ConfigError::OddMinPort(c.min_port + 1));
    // Port 0 would be advertised as "rejected" (RFC 3264 §6).
    for min in [0, 1000] {
        let e = config_error(ManagerConfig {
            min_port: min,
            ..c.clone()
        });
        assert_eq!(e, ConfigError::PrivilegedPort(min));
    }
}

#[test]
fn port_range_too_small_is_a_typed_error() {
    let c = cfg(19);
    let e = config_error(ManagerConfig {
        max_port: c.min_port + 9,
        max_concurrent_builders: 20,
        ..c
    });
    assert_eq!(
        e,
        ConfigError::RangeTooSmall {
            pairs: 5,
            builders: 20
        }
    );
}

#[test]
fn inverted_port_range_is_a_typed_error() {
    let c = cfg(19);
    let (min, max) = (c.min_port + 20, c.min_port);
    let e = config_error(ManagerConfig {
        min_port: min,
        max_port: max,
        ..c
    });
    assert_eq!(e, ConfigError::PortRange { min, max });
}

#[test]
fn unsupported_payload_type_is_a_typed_error() {
    // G.722 and G.729 are not implemented: offering them would be a lie.
    for pt in [9, 18] {
        let e = config_error(ManagerConfig {
            payload_types: vec![0, pt],
            ..cfg(19)
        });
        assert_eq!(e, ConfigError::UnsupportedPayloadType(pt));
    }
}

#[test]
fn config_fields_take_effect() {
    let mgr = BuilderManager::new(ManagerConfig {
        session_name: "Regression Call".to_owned(),
        user_agent: "regress/9".to_owned(),
        rtcp: false,
        rtcp_interval: Duration::from_millis(100),
        jitter_buffer: false,
        ..cfg(46)
    })
    .unwrap();
    let a = mgr.create_builder("a").unwrap();
    let b = mgr.create_builder("b").unwrap();
    let offer = a.create_offer().unwrap();
    assert_eq!(offer.session_name(), Some("Regression Call"));
    let tool = offer.session().attribute("tool").and_then(|t| t.value);
    assert_eq!(tool, Some("regress/9"));
    b.process_offer(&offer).unwrap();
    a.process_answer(&b.create_answer().unwrap()).unwrap();
    let (sa, sb) = (started(&a), started(&b));
    paced(30, |k| {
        send_frame(&sa, &tone(k));
        send_frame(&sb, &tone(k));
    });
    let st = sa.statistics();
    assert_eq!(st.streams[0].1.rtcp_sent, 0, "RTCP sent though disabled");
    assert_eq!(
        st.buffer_delay,
        Duration::ZERO,
        "jitter buffer though disabled"
    );
    assert!(audio_received(&sa) >= 20);
}

// ---------------------------------------------------------------------------
// SDP contents
// ---------------------------------------------------------------------------

#[test]
fn custom_attributes_appear_in_sdp() {
    let mgr = BuilderManager::new(cfg(34)).unwrap();
    let a = mgr.create_builder("a").unwrap();
    let b = mgr.create_builder("b").unwrap();
    for (n, v) in [("x-c", Some("3")), ("x-a", None), ("x-b", Some("2 two"))] {
        a.add_session_attribute(n, v).unwrap();
    }
    a.add_media_attribute(0, "x-m2", Some("v")).unwrap();
    a.add_media_attribute(0, "x-m1", None).unwrap();
    b.add_media_attribute(0, "x-answer", Some("yes")).unwrap();
    assert!(matches!(
        a.add_session_attribute("bad name", None),
        Err(BuilderError::Attribute(_))
    ));
    assert!(matches!(
        a.add_media_attribute(0, "x-inject", Some("1\r\nc=IN IP4 0.0.0.0")),
        Err(BuilderError::Attribute(_))
    ));
    let offer = a.create_offer().unwrap();
    let session = attribute_names(offer.session());
    let custom: Vec<&str> = session
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with("x-"))
        .collect();
    assert_eq!(custom, ["x-c", "x-a", "x-b"], "{offer}");
    assert_eq!(
        offer.session().attribute("x-b").and_then(|a| a.value),
        Some("2 two")
    );
    let media = attribute_names(offer.media()[0].section());
    let custom: Vec<&str> = media
        .iter()
        .map(String::as_str)
        .filter(|n| n.starts_with("x-"))
        .collect();
    assert_eq!(custom, ["x-m2", "x-m1"], "{offer}");
    b.process_offer(&offer).unwrap();
    let answer = b.create_answer().unwrap();
    assert!(
        answer.media()[0].section().has_attribute("x-answer"),
        "{answer}"
    );
    a.process_answer(&answer).unwrap();
    // The peer's attributes can be read back.
    let remote = a.remote_sdp().unwrap();
    assert_eq!(
        remote.media()[0]
            .section()
            .attribute("x-answer")
            .and_then(|a| a.value),
        Some("yes")
    );
    // A re-offer carries them again, in the same order.
    let reoffer = a.create_offer().unwrap();
    assert_eq!(
        attribute_names(reoffer.session())
            .into_iter()
            .filter(|n| n.starts_with("x-"))
            .collect::<Vec<_>>(),
        ["x-c", "x-a", "x-b"]
    );
}

#[test]
fn payload_types_restrict_the_offer() {
    let mgr = BuilderManager::new(ManagerConfig {
        payload_types: vec![8],
        ..cfg(56)
    })
    .unwrap();
    let a = mgr.create_builder("a").unwrap();
    let b = mgr.create_builder("b").unwrap();
    let offer = a.create_offer().unwrap();
    assert_eq!(offer.media()[0].formats(), ["8", "101"]);
    b.process_offer(&offer).unwrap();
    a.process_answer(&b.create_answer().unwrap()).unwrap();
    assert_eq!(a.media_streams()[0].codec.as_deref(), Some("PCMA"));
    assert_eq!(b.media_streams()[0].codec.as_deref(), Some("PCMA"));
    // A PCMU-only peer has nothing in common with us.
    let far = FarEnd::new();
    let c = mgr.create_builder("c").unwrap();
    assert_eq!(
        c.process_offer(&far.sdp("0", &["a=rtpmap:0 PCMU/8000"])),
        Err(BuilderError::NoSupportedMedia)
    );
}

#[test]
fn telephone_event_matched_by_rtpmap_not_number() {
    let mgr = BuilderManager::new(cfg(37)).unwrap();
    let b = mgr.create_builder("b").unwrap();
    let far = FarEnd::new();
    let offer = far.sdp(
        "0 96",
        &[
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:96 telephone-event/8000",
            "a=fmtp:96 0-15",
        ],
    );
    b.process_offer(&offer).unwrap();
    let answer = b.create_answer().unwrap();
    let m = &answer.media()[0];
    assert!(m.formats().iter().any(|f| f == "96"), "{answer}");
    assert!(!m.formats().iter().any(|f| f == "101"), "{answer}");
    assert!(m.section().fmtp("96").is_some(), "no fmtp: {answer}");
    assert_eq!(b.media_streams()[0].telephone_event, Some(96));
    let s = started(&b);
    s.send_dtmf('3', Duration::from_millis(60)).unwrap();
    let got = far.collect(Duration::from_millis(400));
    let events: Vec<&Pkt> = got.iter().filter(|p| p.pt == 96).collect();
    assert!(events.len() >= 3, "{got:?}");
    assert!(events.iter().all(|p| p.payload[0] == 3));
    assert!(!got.iter().any(|p| p.pt == 101));
}

#[test]
fn dtmf_not_accepted_by_answer_is_not_sent() {
    let mgr = BuilderManager::new(cfg(36)).unwrap();
    let far = FarEnd::new();
    let (b, s) = raw_call(&mgr, "b", &far.sdp("0", &["a=rtpmap:0 PCMU/8000"]));
    assert_eq!(b.media_streams()[0].telephone_event, None);
    let sent = s.send_dtmf('1', Duration::from_millis(60));
    let events = drain(&s, Duration::from_millis(300));
    let refused = events
        .iter()
        .any(|e| matches!(e.event(), Some(MediaEvent::Refused(_))));
    assert!(sent.is_err() || refused, "{sent:?} {events:?}");
    let got = far.collect(Duration::from_millis(100));
    assert!(!got.iter().any(|p| p.pt == 101), "{got:?}");
}

#[test]
fn hold_address_is_recognised() {
    let mgr = BuilderManager::new(cfg(33)).unwrap();
    let b = mgr.create_builder("b").unwrap();
    // Bound on the wildcard: what Linux delivers for 0.0.0.0 lands here.
    let far = (61_000..61_500)
        .find_map(|p| UdpSocket::bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), p)).ok())
        .unwrap();
    far.set_read_timeout(Some(Duration::from_millis(10)))
        .unwrap();
    let port = far.local_addr().unwrap().port();
    let offer_from = |ip: &str| {
        sdp(
            ip,
            &[vec![
                format!("m=audio {port} RTP/AVP 0"),
                "a=rtpmap:0 PCMU/8000".to_owned(),
                "a=sendrecv".to_owned(),
            ]],
        )
    };
    b.process_offer(&offer_from("0.0.0.0")).unwrap();
    let answer = b.create_answer().unwrap();
    assert_eq!(answer.media_direction(0), Direction::RecvOnly);
    assert_eq!(b.media_streams()[0].remote, None);
    let s = started(&b);
    assert_eq!(s.send_audio(&tone(0)), Err(MediaError::NotSending));
    let count = |dur: Duration| {
        let end = Instant::now() + dur;
        let mut n = 0;
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            if far.recv_from(&mut buf).is_ok() {
                n += 1;
            }
        }
        n
    };
    assert_eq!(count(Duration::from_millis(300)), 0);
    // Resumed with a real address: media starts.
    b.process_offer(&offer_from("127.0.0.1")).unwrap();
    assert_eq!(
        b.create_answer().unwrap().media_direction(0),
        Direction::SendRecv
    );
    paced(10, |k| send_frame(&s, &tone(k)));
    assert!(count(Duration::from_millis(100)) >= 5);
}

#[test]
fn peer_rejecting_our_stream_releases_its_port() {
    let mgr = BuilderManager::new(cfg(57)).unwrap();
    let a = mgr.create_builder("a").unwrap();
    a.set_audio_streams(2).unwrap();
    a.create_offer().unwrap();
    assert_eq!(mgr.statistics().ports_in_use, 2);
    let far = FarEnd::new();
    let answer = sdp(
        "127.0.0.2",
        &[
            far.block("0", &["a=rtpmap:0 PCMU/8000"]),
            vec!["m=audio 0 RTP/AVP 0".to_owned()],
        ],
    );
    a.process_answer(&answer).unwrap();
    let st = a.media_streams();
    assert_eq!(st[1].rejection, Some(Rejection::RejectedByPeer));
    assert!(!st[1].bound);
    assert_eq!(st[1].local, None);
    assert_eq!(mgr.statistics().ports_in_use, 1);
    let s = started(&a);
    paced(10, |k| send_frame(&s, &tone(k)));
    assert!(far.collect(Duration::from_millis(150)).len() >= 5);
}

// ---------------------------------------------------------------------------
// Media: sending
// ---------------------------------------------------------------------------

#[test]
fn start_is_not_called_behind_the_callers_back() {
    let mgr = BuilderManager::new(cfg(30)).unwrap();
    let far = FarEnd::new();
    let b = mgr.create_builder("b").unwrap();
    b.create_offer().unwrap();
    b.process_answer(&far.pcmu()).unwrap();
    let s = b.media_session().unwrap();
    assert!(!s.is_running());
    assert_eq!(s.send_audio(&tone(0)), Err(MediaError::NotStarted));
    assert_eq!(
        s.send_dtmf('1', Duration::from_millis(50)),
        Err(MediaError::NotStarted)
    );
    let mut buf = [0u8; 2048];
    far.rtcp
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    assert!(far.rtcp.recv_from(&mut buf).is_err(), "RTCP before start");
    assert!(far.collect(Duration::from_millis(100)).is_empty());
    // The examples' call order works: start once, twice.
    s.start().unwrap();
    s.start().unwrap();
    assert!(s.is_running());
    paced(10, |k| send_frame(&s, &tone(k)));
    assert!(far.collect(Duration::from_millis(150)).len() >= 5);
}

fn each_frame_is_sent_once_on(backend: IoBackend, slot: u16) {
    const N: u64 = 50;
    let mgr = BuilderManager::new(ManagerConfig {
        io_backend: backend,
        ..cfg(slot)
    })
    .unwrap();
    let (a, b) = call(&mgr, "a", "b");
    let (sa, sb) = (started(&a), started(&b));
    paced(N as u32, |k| send_frame(&sa, &tone(k)));
    assert!(wait_until(Duration::from_secs(2), || {
        sa.statistics().audio_packets_sent >= N && audio_received(&sb) >= N
    }));
    std::thread::sleep(Duration::from_millis(200));
    let st = sa.statistics();
    assert_eq!(st.audio_packets_sent, N, "{:?}", st.streams[0].1);
    assert_eq!(st.bytes_sent, N * 160);
    assert_eq!(audio_received(&sb), N);
}

#[test]
fn each_frame_is_sent_once() {
    each_frame_is_sent_once_on(IoBackend::Epoll, 20);
}

#[test]
fn each_frame_is_sent_once_uring() {
    if uring_usable() {
        each_frame_is_sent_once_on(IoBackend::Uring, 21);
    }
}

#[test]
fn ptime_from_answer_is_applied_not_zeroed() {
    let mgr = BuilderManager::new(cfg(28)).unwrap();
    let far = FarEnd::new();
    let answer = far.sdp("0", &["a=rtpmap:0 PCMU/8000", "a=ptime:30", "a=sendrecv"]);
    let (_b, s) = raw_call(&mgr, "b", &answer);
    let got = std::thread::scope(|sc| {
        let rx = sc.spawn(|| far.collect(Duration::from_millis(1300)));
        paced(50, |k| send_frame(&s, &tone(k)));
        rx.join().unwrap()
    });
    // 8000 samples in 240-sample packets.
    assert!(got.len() >= 30, "{} packets", got.len());
    assert!(got.iter().all(|p| p.payload.len() == 240), "{got:?}");
    for w in got.windows(2) {
        assert_eq!(w[1].ts.wrapping_sub(w[0].ts), 240);
    }
    let span = got.last().unwrap().at - got[0].at;
    assert!(
        span >= Duration::from_millis(800),
        "sending stopped after {span:?}"
    );
}

/// The answer asks us to send 30 ms packets; the peer, as our offer asked,
/// sends us 20 ms ones. Both are right (RFC 3264 §5.1, §6.1: ptime is what
/// each side wants to receive), and what arrives must be played as sent.
#[test]
fn ptime_asked_of_us_does_not_change_how_we_receive() {
    let mgr = BuilderManager::new(cfg(60)).unwrap();
    let far = FarEnd::new();
    let answer = far.sdp("0", &["a=rtpmap:0 PCMU/8000", "a=ptime:30", "a=sendrecv"]);
    let (b, s) = raw_call(&mgr, "b", &answer);
    let packets: Vec<Vec<u8>> = (0..40u16)
        .map(|k| rtp(0, k, 160 * u32::from(k), 0x3030, k == 0, &[0x7f; 160]))
        .collect();
    let frames = played(&feed(&far, local(&b, 0), &s, &packets));
    // Every packet's audio, once, in order: 40 frames of 160 samples, or
    // the same samples in other frame sizes.
    let samples: usize = frames.iter().map(|f| f.1).sum();
    assert!(
        (38 * 160..=40 * 160).contains(&samples),
        "{samples} samples played of 6400: {frames:?}"
    );
    let mut expect = frames[0].0;
    for &(ts, n) in &frames {
        assert_eq!(ts, expect, "{frames:?}");
        expect = ts.wrapping_add(n as u32);
    }
}

#[test]
fn answerer_adopts_the_offers_ptime() {
    let mgr = BuilderManager::new(cfg(29)).unwrap();
    let far = FarEnd::new();
    let offer = far.sdp("0", &["a=rtpmap:0 PCMU/8000", "a=ptime:30", "a=sendrecv"]);
    let b = mgr.create_builder("b").unwrap();
    b.process_offer(&offer).unwrap();
    let answer = b.create_answer().unwrap();
    // What the answer asks for is what the answerer then plays out.
    assert_eq!(answer.media()[0].section().ptime(), Some(30), "{answer}");
    let s = started(&b);
    let got = std::thread::scope(|sc| {
        let rx = sc.spawn(|| far.collect(Duration::from_millis(700)));
        paced(25, |k| send_frame(&s, &tone(k)));
        rx.join().unwrap()
    });
    assert!(got.len() >= 10, "{} packets", got.len());
    assert!(
        got.iter().all(|p| p.payload.len() == 240),
        "sizes {:?}",
        got.iter().map(|p| p.payload.len()).collect::<Vec<_>>()
    );
    // And the peer's 30 ms packets are played, not refused.
    let dest = local(&b, 0);
    paced(20, |k| {
        far.send(
            dest,
            &rtp(0, k as u16, 240 * k, 0x5eed, k == 0, &[0x7f; 240]),
        );
    });
    let frames = played(&drain(&s, Duration::from_millis(300)));
    assert!(frames.len() >= 10, "{} frames played", frames.len());
}

#[test]
fn audio_is_real_g711() {
    let mgr = BuilderManager::new(cfg(38)).unwrap();
    let (fu, fa) = (FarEnd::new(), FarEnd::new());
    let (_bu, su) = raw_call(&mgr, "u", &fu.sdp("0", &["a=rtpmap:0 PCMU/8000"]));
    let (_ba, sa) = raw_call(&mgr, "a", &fa.sdp("8", &["a=rtpmap:8 PCMA/8000"]));
    let frames: Vec<Vec<i16>> = (0..12)
        .map(|k| {
            (0..160)
                .map(|i| ((i * 211 + k * 97) % 30_001 - 15_000) as i16)
                .collect()
        })
        .collect();
    paced(12, |k| {
        send_frame(&su, &frames[k as usize]);
        send_frame(&sa, &frames[k as usize]);
    });
    let (gu, ga) = (
        fu.collect(Duration::from_millis(150)),
        fa.collect(Duration::from_millis(50)),
    );
    for (got, decode, name) in [
        (&gu, ulaw_decode as fn(u8) -> i16, "PCMU"),
        (&ga, alaw_decode as fn(u8) -> i16, "PCMA"),
    ] {
        assert!(got.len() >= 10, "{name}: {} packets", got.len());
        for (p, want) in got.iter().zip(&frames) {
            assert_eq!(p.payload.len(), 160, "{name}: one byte per sample");
            for (&byte, &x) in p.payload.iter().zip(want) {
                let y = decode(byte);
                // G.711 keeps 4 bits of mantissa per segment: the error is
                // within 1/16 of the magnitude (plus the smallest step).
                let tol = i32::from(x).abs() / 16 + 16;
                assert!(
                    (i32::from(y) - i32::from(x)).abs() <= tol,
                    "{name}: {x} decoded as {y}"
                );
            }
        }
    }
}

#[test]
fn marker_bit_set_at_talkspurt_start() {
    let mgr = BuilderManager::new(cfg(40)).unwrap();
    let far = FarEnd::new();
    let (_b, s) = raw_call(&mgr, "b", &far.pcmu());
    let got = std::thread::scope(|sc| {
        let rx = sc.spawn(|| far.collect(Duration::from_millis(900)));
        // Each talkspurt is written at once (the input ring holds 160 ms),
        // so a loaded machine scheduling this thread late cannot starve a
        // tick inside it; the pause between them is well over a frame.
        for k in 0..5 {
            send_frame(&s, &tone(k));
        }
        std::thread::sleep(Duration::from_millis(350));
        for k in 0..5 {
            send_frame(&s, &tone(k));
        }
        rx.join().unwrap()
    });
    let marks: Vec<bool> = got.iter().map(|p| p.marker).collect();
    assert_eq!(
        marks,
        [
            true, false, false, false, false, true, false, false, false, false
        ]
    );
    // The media clock ran on through the silence.
    assert!(got[5].ts.wrapping_sub(got[4].ts) > 160 * 5);
}

#[test]
fn send_audio_is_bounded_by_the_input_ring() {
    let mgr = BuilderManager::new(cfg(42)).unwrap();
    let (a, _b) = call(&mgr, "a", "b");
    let s = started(&a);
    let ten_seconds = vec![1000i16; 80_000];
    let taken = s.send_audio(&ten_seconds).unwrap();
    assert!(taken > 0 && taken <= 2048, "took {taken} samples at once");
    // Full: nothing more until the session has sent some.
    assert!(s.send_audio(&ten_seconds).unwrap() <= 160);
}

#[test]
fn direction_changes_on_a_running_session() {
    let mgr = BuilderManager::new(cfg(35)).unwrap();
    let (a, b) = call(&mgr, "a", "b");
    let (sa, sb) = (started(&a), started(&b));
    paced(15, |k| send_frame(&sa, &tone(k)));
    sa.set_direction(Direction::RecvOnly).unwrap();
    assert_eq!(sa.send_audio(&tone(0)), Err(MediaError::NotSending));
    std::thread::sleep(Duration::from_millis(100));
    let before = audio_received(&sb);
    assert!(before >= 10);
    std::thread::sleep(Duration::from_millis(300));
    assert!(audio_received(&sb) <= before + 1);
    sa.set_direction(Direction::SendRecv).unwrap();
    paced(15, |k| send_frame(&sa, &tone(k)));
    assert!(wait_until(Duration::from_secs(1), || audio_received(&sb)
        >= before + 12));
    let changes: Vec<Direction> = drain(&sa, Duration::from_millis(50))
        .into_iter()
        .filter_map(|e| match e.event() {
            Some(MediaEvent::State(SessionState::Direction(d))) => Some(*d),
            _ => None,
        })
        .collect();
    assert_eq!(changes, [Direction::RecvOnly, Direction::SendRecv]);
}

#[test]
fn multi_stream_offerer_works() {
    let mgr = BuilderManager::new(cfg(31)).unwrap();
    let a = mgr.create_builder("a").unwrap();
    let b = mgr.create_builder("b").unwrap();
    a.set_audio_streams(2).unwrap();
    negotiate(&a, &b).unwrap();
    assert_eq!(a.media_streams().len(), 2);
    assert_eq!(b.media_streams().len(), 2);
    let (sa, sb) = (started(&a), started(&b));
    paced(25, |k| {
        send_frame(&sa, &tone(k));
        send_frame(&sb, &tone(k));
    });
    std::thread::sleep(Duration::from_millis(100));
    for s in [&sa, &sb] {
        let st = s.statistics();
        assert_eq!(st.streams.len(), 2);
        for (id, e) in &st.streams {
            assert!(e.received >= 20, "{id}: {e:?}");
            assert!(e.audio_sent >= 20, "{id}: {e:?}");
        }
    }
    // DTMF on both streams: each stream's receiver reports it once.
    while sb.try_recv().is_some() {}
    sa.send_dtmf('7', Duration::from_millis(60)).unwrap();
    let mut ended = Vec::new();
    let end = Instant::now() + Duration::from_secs(2);
    while ended.len() < 2 && Instant::now() < end {
        if let Some(e) = sb.recv_timeout(Duration::from_millis(50)) {
            if let MediaEvent::Dtmf(d) = e.event {
                if d.ended {
                    ended.push((e.stream, digit(d.event.0)));
                }
            }
        }
    }
    ended.sort();
    assert_eq!(ended, [(0, '7'), (1, '7')]);
}

#[test]
fn multi_stream_streams_keep_their_own_codec() {
    let mgr = BuilderManager::new(cfg(32)).unwrap();
    let b = mgr.create_builder("b").unwrap();
    let (f0, f1) = (FarEnd::new(), FarEnd::new());
    let offer = sdp(
        "127.0.0.2",
        &[
            f0.block("8", &["a=rtpmap:8 PCMA/8000"]),
            f1.block("0", &["a=rtpmap:0 PCMU/8000"]),
        ],
    );
    b.process_offer(&offer).unwrap();
    b.create_answer().unwrap();
    let st = b.media_streams();
    assert_eq!(st[0].codec.as_deref(), Some("PCMA"));
    assert_eq!(st[1].codec.as_deref(), Some("PCMU"));
    let s = started(&b);
    let (d0, d1) = (local(&b, 0), local(&b, 1));
    paced(15, |k| {
        send_frame(&s, &tone(k));
        f0.send(d0, &rtp(8, k as u16, 160 * k, 0xa1, k == 0, &[0xd5; 160]));
        f1.send(d1, &rtp(0, k as u16, 160 * k, 0xb2, k == 0, &[0xff; 160]));
    });
    let (g0, g1) = (
        f0.collect(Duration::from_millis(150)),
        f1.collect(Duration::from_millis(50)),
    );
    assert!(g0.len() >= 10 && g0.iter().all(|p| p.pt == 8), "{g0:?}");
    assert!(g1.len() >= 10 && g1.iter().all(|p| p.pt == 0), "{g1:?}");
    let st = s.statistics();
    assert_eq!(st.streams[0].1.received, 15, "{:?}", st.streams[0]);
    assert_eq!(st.streams[1].1.received, 15, "{:?}", st.streams[1]);
}

#[test]
fn media_is_sent_to_the_latched_source() {
    let mgr = BuilderManager::new(cfg(47)).unwrap();
    let signalled = FarEnd::new();
    let actual = FarEnd::new();
    let (b, s) = raw_call(&mgr, "b", &signalled.pcmu());
    let dest = local(&b, 0);
    // The far end is behind a NAT: its media comes from another port.
    paced(5, |k| {
        actual.send(dest, &rtp(0, k as u16, 160 * k, 0x77, k == 0, &[0xff; 160]));
    });
    let got = std::thread::scope(|sc| {
        let rx = sc.spawn(|| actual.collect(Duration::from_millis(500)));
        paced(15, |k| {
            send_frame(&s, &tone(k));
            let k = k + 5;
            actual.send(dest, &rtp(0, k as u16, 160 * k, 0x77, false, &[0xff; 160]));
        });
        rx.join().unwrap()
    });
    assert!(got.len() >= 12, "{} packets at the source", got.len());
    // Symmetric RTP: sent from the port it receives on.
    assert!(got.iter().all(|p| p.from == dest));
    assert!(signalled.collect(Duration::from_millis(50)).is_empty());
}

// ---------------------------------------------------------------------------
// Media: receiving
// ---------------------------------------------------------------------------

/// Sends `packets` (with their gaps: one per 20 ms) from `far` to `dest` on
/// a thread while the main thread takes `s`'s events; returns them.
fn feed(far: &FarEnd, dest: SocketAddr, s: &MediaSession, packets: &[Vec<u8>]) -> Vec<Seen> {
    std::thread::scope(|sc| {
        let sender = sc.spawn(|| {
            paced(packets.len() as u32, |k| {
                far.send(dest, &packets[k as usize])
            });
        });
        let mut out = Vec::new();
        while !sender.is_finished() {
            out.extend(drain(s, Duration::from_millis(20)));
        }
        out.extend(drain(s, Duration::from_millis(300)));
        out
    })
}

fn oversized_frames(jitter_buffer: bool, slot: u16) {
    let mgr = BuilderManager::new(ManagerConfig {
        jitter_buffer,
        ..cfg(slot)
    })
    .unwrap();
    let far = FarEnd::new();
    let (b, s) = raw_call(&mgr, "b", &far.pcmu());
    let mut packets = Vec::new();
    let mut ts = 0u32;
    for k in 0..45u16 {
        let len = if (10..20).contains(&k) { 240 } else { 160 };
        packets.push(rtp(0, k, ts, 0xbeef, k == 0, &vec![0x7f; len]));
        ts += len as u32;
    }
    let events = feed(&far, local(&b, 0), &s, &packets);
    assert!(s.is_running());
    assert_eq!(audio_received(&s), 45);
    let last_big = 10 * 160 + 9 * 240;
    let frames = played(&events);
    let after = frames.iter().filter(|(t, _)| *t > last_big).count();
    assert!(
        after >= 20,
        "{after} frames after the oversized ones: {frames:?}"
    );
}

#[test]
fn oversized_incoming_frame_does_not_kill_the_stream() {
    oversized_frames(true, 26);
    oversized_frames(false, 27);
}

/// Played on arrival, the session decodes up to twice its ptime per
/// packet: a 30 ms packet must reach the application as 240 samples.
#[test]
fn larger_incoming_frames_are_played_whole_without_jitter_buffer() {
    let mgr = BuilderManager::new(ManagerConfig {
        jitter_buffer: false,
        ..cfg(61)
    })
    .unwrap();
    let far = FarEnd::new();
    let (b, s) = raw_call(&mgr, "b", &far.pcmu());
    let packets: Vec<Vec<u8>> = (0..10u16)
        .map(|k| rtp(0, k, 240 * u32::from(k), 0xbeef, k == 0, &[0x7f; 240]))
        .collect();
    let frames = played(&feed(&far, local(&b, 0), &s, &packets));
    assert_eq!(frames.len(), 10, "{frames:?}");
    assert!(frames.iter().all(|f| f.1 == 240), "{frames:?}");
}

#[test]
fn every_negotiated_payload_type_is_received() {
    let mgr = BuilderManager::new(cfg(41)).unwrap();
    let far = FarEnd::new();
    let answer = far.sdp(
        "0 8",
        &["a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000", "a=ptime:20"],
    );
    let (b, s) = raw_call(&mgr, "b", &answer);
    assert_eq!(b.media_streams()[0].payload_type, Some(0));
    let packets: Vec<Vec<u8>> = (0..23u16)
        .map(|k| {
            let (pt, fill) = match k {
                0..10 => (8, 0xd5),
                10..20 => (0, 0xff),
                // Comfort noise was not negotiated.
                _ => (13, 0x40),
            };
            let len = if pt == 13 { 1 } else { 160 };
            rtp(pt, k, 160 * u32::from(k), 0xcafe, k == 0, &vec![fill; len])
        })
        .collect();
    let events = feed(&far, local(&b, 0), &s, &packets);
    let st = s.statistics();
    assert_eq!(st.packets_received, 20, "{:?}", st.streams[0].1);
    assert_eq!(st.streams[0].1.dropped, 3);
    assert!(played(&events).len() >= 15);
}

#[test]
fn received_frames_are_not_overwritten_by_later_packets() {
    let mgr = BuilderManager::new(cfg(39)).unwrap();
    let (a, b) = call(&mgr, "a", "b");
    let (sa, sb) = (started(&a), started(&b));
    let mut held = Vec::new();
    std::thread::scope(|sc| {
        let sender = sc.spawn(|| {
            paced(20, |k| send_frame(&sa, &vec![500 * (k as i16 + 1); 160]));
        });
        let end = Instant::now() + Duration::from_secs(2);
        while Instant::now() < end && !(sender.is_finished() && held.len() >= 4) {
            if let Some(e) = sb.recv_timeout(Duration::from_millis(20)) {
                if let MediaEvent::Audio(f) = e.event {
                    if !f.concealed && held.len() < 4 {
                        // Keep the frame itself, not a copy.
                        held.push(f);
                    }
                }
            }
        }
    });
    assert_eq!(held.len(), 4);
    let means: Vec<i64> = held
        .iter()
        .map(|f| f.samples.iter().map(|&x| i64::from(x)).sum::<i64>() / 160)
        .collect();
    // Each held frame still has its own audio: later packets were decoded
    // into other buffers.
    assert!(means.windows(2).all(|w| w[0] < w[1]), "{means:?}");
}

#[test]
fn loss_and_jitter_statistics_are_filled() {
    let mgr = BuilderManager::new(cfg(43)).unwrap();
    let far = FarEnd::new();
    let (b, s) = raw_call(&mgr, "b", &far.pcmu());
    let packets: Vec<Vec<u8>> = (0..50u16)
        .filter(|k| !(10..15).contains(k))
        .map(|k| rtp(0, k, 160 * u32::from(k), 0xfeed, k == 0, &[0xff; 160]))
        .collect();
    // Sent paced, the gap in time too.
    std::thread::scope(|sc| {
        sc.spawn(|| {
            let dest = local(&b, 0);
            let t0 = Instant::now();
            for p in &packets {
                let seq = u16::from_be_bytes([p[2], p[3]]);
                let due = t0 + FRAME * u32::from(seq);
                std::thread::sleep(due.saturating_duration_since(Instant::now()));
                far.send(dest, p);
            }
        });
        drain(&s, Duration::from_millis(1300));
    });
    let st = s.statistics();
    // RFC 3550 A.1: counting starts once the source left probation.
    assert!((49..=50).contains(&st.expected), "{st:?}");
    assert_eq!(st.lost, 5, "{st:?}");
    assert!(st.loss_ratio() > 0.09 && st.loss_ratio() < 0.11);
    assert!(st.jitter > Duration::ZERO, "{st:?}");
    assert!(st.buffer_delay > Duration::ZERO, "{st:?}");
    assert!(st.streams[0].1.concealed >= 5, "{st:?}");
}

#[test]
fn jitter_buffer_reorders_and_handles_timestamp_wrap() {
    let mgr = BuilderManager::new(cfg(44)).unwrap();
    let far = FarEnd::new();
    let (b, s) = raw_call(&mgr, "b", &far.pcmu());
    let seq0 = 65_530u16;
    let ts0 = 0xffff_fe00u32;
    let mut order: Vec<u16> = (0..30).collect();
    for k in 3..9 {
        order.swap(2 * k, 2 * k + 1);
    }
    let packets: Vec<Vec<u8>> = order
        .iter()
        .map(|&k| {
            rtp(
                0,
                seq0.wrapping_add(k),
                ts0.wrapping_add(160 * u32::from(k)),
                0xabc,
                k == 0,
                &[0xff; 160],
            )
        })
        .collect();
    let events = feed(&far, local(&b, 0), &s, &packets);
    let frames = played(&events);
    assert!(frames.len() >= 27, "{frames:?}");
    for w in frames.windows(2) {
        assert_eq!(w[1].0.wrapping_sub(w[0].0), 160, "{frames:?}");
    }
    let st = s.statistics();
    assert_eq!(st.lost, 0, "reordering counted as loss: {st:?}");
}

// ---------------------------------------------------------------------------
// DTMF
// ---------------------------------------------------------------------------

fn dtmf_shares_the_audio_stream(backend: IoBackend, slot: u16) {
    let mgr = BuilderManager::new(ManagerConfig {
        io_backend: backend,
        ..cfg(slot)
    })
    .unwrap();
    let far = FarEnd::new();
    let (_b, s) = raw_call(&mgr, "b", &far.pcmu());
    let got = std::thread::scope(|sc| {
        let rx = sc.spawn(|| far.collect(Duration::from_millis(1100)));
        paced(40, |k| {
            if k == 10 {
                s.send_dtmf('5', Duration::from_millis(100)).unwrap();
            }
            send_frame(&s, &tone(k));
        });
        rx.join().unwrap()
    });
    assert!(got.len() >= 30, "{got:?}");
    let ssrc = got[0].ssrc;
    assert!(got.iter().all(|p| p.ssrc == ssrc), "SSRC changed");
    for w in got.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "sequence break between {:?} and {:?}",
            (w[0].pt, w[0].seq),
            (w[1].pt, w[1].seq)
        );
    }
    let summary: Vec<(u8, u16, u32, bool, usize)> = got
        .iter()
        .map(|p| (p.pt, p.seq, p.ts, p.marker, p.payload.len()))
        .collect();
    let first = got.iter().position(|p| p.pt == 101).expect("no DTMF");
    let dtmf: Vec<&Pkt> = got.iter().filter(|p| p.pt == 101).collect();
    let ts = dtmf[0].ts;
    assert!(dtmf.iter().all(|p| p.ts == ts), "one timestamp per event");
    assert!(dtmf[0].marker && dtmf[1..].iter().all(|p| !p.marker));
    assert!(dtmf.iter().all(|p| p.payload[0] == 5));
    let durations: Vec<u16> = dtmf
        .iter()
        .map(|p| u16::from_be_bytes([p.payload[2], p.payload[3]]))
        .collect();
    assert!(durations.windows(2).all(|w| w[0] <= w[1]), "{durations:?}");
    let mut distinct = durations.clone();
    distinct.dedup();
    assert!(distinct.len() >= 3, "no interim updates: {durations:?}");
    assert_eq!(*durations.last().unwrap(), 800);
    let ends = dtmf.iter().filter(|p| p.payload[1] & 0x80 != 0).count();
    assert_eq!(ends, 3, "end packets: {durations:?}");
    // On the audio clock: just after the audio before it (Go stamped
    // events with wall-clock milliseconds), and no audio within the
    // event's span afterwards.
    let step = ts.wrapping_sub(got[first - 1].ts);
    assert!(step > 0 && step < 160 * 3, "{step}: {summary:?}");
    for p in got[first..].iter().filter(|p| p.pt == 0) {
        assert!(
            p.ts.wrapping_sub(ts) >= 800,
            "audio inside the event: {summary:?}"
        );
    }
    // Paced over its duration, not sent back to back.
    let updates: Vec<&&Pkt> = dtmf.iter().filter(|p| p.payload[1] & 0x80 == 0).collect();
    let span = updates.last().unwrap().at - updates[0].at;
    assert!(span >= Duration::from_millis(50), "updates within {span:?}");
}

#[test]
fn dtmf_uses_the_audio_streams_sequence_and_timestamp_space() {
    dtmf_shares_the_audio_stream(IoBackend::Epoll, 22);
}

#[test]
fn dtmf_uses_the_audio_streams_sequence_and_timestamp_space_uring() {
    if uring_usable() {
        dtmf_shares_the_audio_stream(IoBackend::Uring, 23);
    }
}

#[test]
fn dtmf_counts_events_not_packets() {
    let mgr = BuilderManager::new(cfg(24)).unwrap();
    let (a, b) = call(&mgr, "a", "b");
    let (sa, sb) = (started(&a), started(&b));
    assert!(matches!(
        sa.send_dtmf('x', Duration::from_millis(100)),
        Err(MediaError::Handle(HandleError::NotADigit(_)))
    ));
    for d in ['1', '1', '2'] {
        sa.send_dtmf(d, Duration::from_millis(100)).unwrap();
    }
    let (mut started_, mut ended) = (Vec::new(), Vec::new());
    let end = Instant::now() + Duration::from_secs(3);
    while ended.len() < 3 && Instant::now() < end {
        if let Some(e) = sb.recv_timeout(Duration::from_millis(50)) {
            if let MediaEvent::Dtmf(d) = e.event {
                if d.ended {
                    ended.push((digit(d.event.0), d.duration));
                } else {
                    started_.push(digit(d.event.0));
                }
            }
        }
    }
    std::thread::sleep(Duration::from_millis(200));
    while let Some(e) = sb.try_recv() {
        assert!(!matches!(e.event, MediaEvent::Dtmf(_)), "extra {e:?}");
    }
    assert_eq!(started_, ['1', '1', '2']);
    let digits: Vec<char> = ended.iter().map(|e| e.0).collect();
    assert_eq!(digits, ['1', '1', '2']);
    for (_, d) in &ended {
        assert_eq!(*d, Duration::from_millis(100));
    }
    // Packets are counted as packets, several per event.
    assert!(sb.statistics().dtmf_packets_received > 3 * 3);
    assert_eq!(
        sb.statistics().dtmf_packets_received,
        sa.statistics().dtmf_packets_sent
    );
}

#[test]
fn repeated_digit_with_lost_end_packets_is_reported_twice() {
    let mgr = BuilderManager::new(cfg(25)).unwrap();
    let far = FarEnd::new();
    let (b, s) = raw_call(&mgr, "b", &far.pcmu());
    let ev = |end: bool, dur: u16| {
        let mut p = vec![1u8, if end { 0x8a } else { 0x0a }];
        p.extend_from_slice(&dur.to_be_bytes());
        p
    };
    let mut packets = Vec::new();
    let mut seq = 100u16;
    let mut push = |ts: u32, first: bool, payload: Vec<u8>| {
        packets.push(rtp(101, seq, ts, 0x1234, first, &payload));
        seq += 1;
    };
    // '1' whose end packets were all lost...
    for (i, d) in [160u16, 320, 480].into_iter().enumerate() {
        push(8000, i == 0, ev(false, d));
    }
    // ...then '1' again: a new event (new timestamp), ended properly.
    for (i, d) in [160u16, 320, 480, 640].into_iter().enumerate() {
        push(8000 + 1600, i == 0, ev(false, d));
    }
    for _ in 0..3 {
        push(8000 + 1600, false, ev(true, 800));
    }
    let events = feed(&far, local(&b, 0), &s, &packets);
    let reports: Vec<(bool, u32)> = events
        .iter()
        .filter_map(|e| match e.event() {
            Some(MediaEvent::Dtmf(d)) if d.event.0 == 1 => Some((d.ended, d.timestamp)),
            _ => None,
        })
        .collect();
    let starts: Vec<u32> = reports.iter().filter(|r| !r.0).map(|r| r.1).collect();
    assert_eq!(starts, [8000, 9600], "{reports:?}");
    assert_eq!(reports.iter().filter(|r| r.0).count(), 2, "{reports:?}");
}

// ---------------------------------------------------------------------------
// RTCP
// ---------------------------------------------------------------------------

#[test]
fn rtcp_reports_and_bye_reach_the_peer() {
    let mgr = BuilderManager::new(ManagerConfig {
        rtcp_interval: Duration::from_millis(200),
        ..cfg(45)
    })
    .unwrap();
    let (a, b) = call(&mgr, "a", "b");
    let (sa, sb) = (started(&a), started(&b));
    let mut reports = Vec::new();
    paced(75, |k| {
        send_frame(&sa, &tone(k));
        send_frame(&sb, &tone(k));
        while let Some(e) = sb.try_recv() {
            if let MediaEvent::Rtcp(r) = e.event {
                reports.push(r);
            }
        }
    });
    assert!(reports.iter().any(|r| r.sender_report), "{reports:?}");
    assert!(reports.iter().any(|r| r.about_us.is_some()), "{reports:?}");
    assert!(sa.statistics().rtt.is_some() || sb.statistics().rtt.is_some());
    assert!(sa.statistics().streams[0].1.rtcp_received > 0);
    while sb.try_recv().is_some() {}
    sa.stop().unwrap();
    let bye = drain(&sb, Duration::from_millis(500))
        .into_iter()
        .any(|e| matches!(e.event(), Some(MediaEvent::State(SessionState::RemoteBye))));
    assert!(bye, "no BYE seen");
}

// ---------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------

#[test]
fn builder_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<BuilderManager>();
    send_sync::<Builder>();
    send_sync::<Arc<Builder>>();
    send_sync::<MediaSession>();
}

#[test]
fn concurrent_session_calls_do_not_deadlock() {
    let mgr = BuilderManager::new(cfg(48)).unwrap();
    let (a, b) = call(&mgr, "a", "b");
    let (sa, sb) = (started(&a), started(&b));
    let stop = AtomicBool::new(false);
    let ops = AtomicU64::new(0);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            paced(50, |k| {
                let _ = sa.send_audio(&tone(k));
            });
            stop.store(true, Ordering::SeqCst);
        });
        sc.spawn(|| {
            let mut k = 0;
            while !stop.load(Ordering::SeqCst) {
                let d = if k % 2 == 0 {
                    Direction::RecvOnly
                } else {
                    Direction::SendRecv
                };
                sa.set_direction(d).unwrap();
                k += 1;
                std::thread::sleep(Duration::from_millis(15));
            }
            sa.set_direction(Direction::SendRecv).unwrap();
        });
        sc.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let _ = sa.statistics();
                let _ = a.media_streams();
                let _ = a.phase();
                let _ = mgr.statistics();
                let _ = sa.try_recv();
                ops.fetch_add(1, Ordering::Relaxed);
            }
        });
        sc.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let _ = sa.send_dtmf('9', Duration::from_millis(40));
                let _ = sb.recv_timeout(Duration::from_millis(30));
                let _ = sb.send_audio(&tone(0));
            }
        });
        let t = Instant::now();
        while !stop.load(Ordering::SeqCst) {
            assert!(t.elapsed() < Duration::from_secs(20), "stuck");
            std::thread::sleep(Duration::from_millis(10));
        }
    });
    assert!(ops.load(Ordering::Relaxed) > 0);
    sa.stop().unwrap();
    assert!(mgr.release_builder("a"));
    assert!(mgr.release_builder("b"));
}

#[test]
fn stop_while_receiving_is_clean() {
    let mgr = BuilderManager::new(cfg(49)).unwrap();
    let (a, b) = call(&mgr, "a", "b");
    let (sa, sb) = (started(&a), started(&b));
    let seen = Arc::new(AtomicU64::new(0));
    let counter = seen.clone();
    let handler = sb
        .on_event(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        })
        .unwrap();
    std::thread::scope(|sc| {
        sc.spawn(|| paced(50, |k| send_frame(&sa, &tone(k))));
        std::thread::sleep(Duration::from_millis(300));
        sb.stop().unwrap();
        assert!(mgr.release_builder("b"));
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(handler.join());
        });
        let joined = rx.recv_timeout(Duration::from_secs(2));
        assert!(matches!(joined, Ok(Ok(()))), "event thread: {joined:?}");
    });
    assert!(seen.load(Ordering::Relaxed) > 0);
    assert!(sb.recv_timeout(Duration::from_millis(100)).is_none());
    assert_eq!(sb.send_audio(&tone(0)), Err(MediaError::Stopped));
    // The other side is unaffected.
    assert!(sa.is_running());
    send_frame(&sa, &tone(0));
}

#[test]
fn event_queue_is_bounded() {
    let mgr = BuilderManager::new(ManagerConfig {
        event_capacity: 8,
        ..cfg(50)
    })
    .unwrap();
    let (a, b) = call(&mgr, "a", "b");
    let (sa, sb) = (started(&a), started(&b));
    paced(50, |k| send_frame(&sa, &tone(k)));
    std::thread::sleep(Duration::from_millis(200));
    let mut queued = 0;
    while sb.try_recv().is_some() {
        queued += 1;
    }
    assert!(queued <= 16, "{queued} events queued with capacity 8");
    let dropped = sb.statistics().streams[0].1.events_dropped;
    assert!(dropped > 0, "nothing counted as dropped");
    assert_eq!(audio_received(&sb), 50);
}

/// Many phones and gateways packetise at 30 or 40 ms (or 10) whatever
/// ptime they are asked for: the session plays their frames whole, with
/// and without a jitter buffer, instead of refusing them as too large or
/// padding them with silence.
#[test]
fn far_end_packetising_at_another_ptime_is_played_in_its_frames() {
    for (slot, jitter_buffer, size, count) in [
        (62, true, 240usize, 12u16),
        (63, true, 80, 20),
        (64, false, 320, 12),
    ] {
        let mgr = BuilderManager::new(ManagerConfig {
            jitter_buffer,
            ..cfg(slot)
        })
        .unwrap();
        let far = FarEnd::new();
        let (b, s) = raw_call(&mgr, "b", &far.pcmu());
        let packets: Vec<Vec<u8>> = (0..count)
            .map(|k| {
                let ts = size as u32 * u32::from(k);
                rtp(0, k, ts, 0xbeef, k == 0, &vec![0x7f; size])
            })
            .collect();
        // Sent at the pace of their own packetisation (8 samples per ms).
        let every = Duration::from_millis(size as u64 / 8);
        let dest = local(&b, 0);
        let frames = played(&std::thread::scope(|sc| {
            let sender = sc.spawn(|| {
                let t0 = Instant::now();
                for (k, p) in packets.iter().enumerate() {
                    far.send(dest, p);
                    let next = t0 + every * (k as u32 + 1);
                    std::thread::sleep(next.saturating_duration_since(Instant::now()));
                }
            });
            let mut out = Vec::new();
            while !sender.is_finished() {
                out.extend(drain(&s, Duration::from_millis(20)));
            }
            out.extend(drain(&s, Duration::from_millis(300)));
            out
        }));
        let whole = frames.iter().filter(|f| f.1 == size).count();
        assert!(
            whole + 3 >= usize::from(count),
            "{size}-sample packets, jitter buffer {jitter_buffer}: {frames:?}"
        );
        // The first packet of another size is played before the playout
        // re-frames (it waits for a second one).
        assert!(frames.iter().skip(2).all(|f| f.1 == size), "{frames:?}");
        mgr.shutdown();
    }
}

/// An answer may number telephone-event otherwise than our offer: we send
/// with its number (96) and the peer sends with ours (101), as each SDP
/// told the other (RFC 3264 §6.1); both directions must work.
#[test]
fn renumbered_telephone_event_is_sent_and_received() {
    let mgr = BuilderManager::new(cfg(65)).unwrap();
    let far = FarEnd::new();
    let answer = far.sdp(
        "0 96",
        &[
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:96 telephone-event/8000",
            "a=fmtp:96 0-15",
            "a=ptime:20",
        ],
    );
    let (b, s) = raw_call(&mgr, "b", &answer);
    assert_eq!(b.media_streams()[0].telephone_event, Some(96));
    s.send_dtmf('4', Duration::from_millis(60)).unwrap();
    let end = Instant::now() + Duration::from_secs(2);
    let mut sent_pt = None;
    while sent_pt.is_none() && Instant::now() < end {
        if let Some(p) = far.recv() {
            if p.pt != 0 {
                sent_pt = Some(p.pt);
            }
        }
    }
    assert_eq!(sent_pt, Some(96));
    // Key 7 from the peer, numbered as our offer said: start, update, 3 ends.
    let mut packets = Vec::new();
    for (k, (dur, end)) in [
        (160u16, false),
        (320, false),
        (480, true),
        (480, true),
        (480, true),
    ]
    .into_iter()
    .enumerate()
    {
        let payload = [
            7,
            if end { 0x80 | 10 } else { 10 },
            (dur >> 8) as u8,
            dur as u8,
        ];
        packets.push(rtp(101, 500 + k as u16, 8000, 0xfeed, k == 0, &payload));
    }
    let events = feed(&far, local(&b, 0), &s, &packets);
    let ended: Vec<u8> = events
        .iter()
        .filter_map(|e| match e.event() {
            Some(MediaEvent::Dtmf(d)) if d.ended => Some(d.event.0),
            _ => None,
        })
        .collect();
    assert_eq!(ended, [7]);
    assert_eq!(s.statistics().streams[0].1.dropped, 0);
}
