//! Fuzz the sans-IO media session ([`MediaSession`]) through its
//! [`Endpoint`] seam with arbitrary network input on a virtual clock, the
//! way a shard drives it: datagrams in, timeouts, transmits out, events
//! drained, and application controls in between.
//!
//! Input: one byte of configuration (bit 0: no jitter buffer, bit 1:
//! payloads delivered and transcoded to PCMA, bit 2: no XR, bit 3: an event
//! queue of 4), then operations, each an opcode byte `op` and its operands:
//!
//! | `op % 9` | operands | action |
//! |---|---|---|
//! | 0, 1 | `dt: u8, len: u16be, bytes` | RTP (0) or RTCP (1) datagram, `dt` ms later |
//! | 2 | `ms: u16be` | run the clock `ms` forward through each timeout, pumping |
//! | 3 | `ms: u16be` | jump the clock `ms` forward, one `handle_timeout` if due |
//! | 4 | `cap: u8` | drain `poll_transmit` into a buffer of 1500 or `cap & 0x7f` × 4 bytes |
//! | 5 | | drain `poll_event` |
//! | 6 | `frames: u8` | the application writes `frames % 9` frames of PCM |
//! | 7 | | our last transmit comes back to us (a loop, an echoing peer) |
//! | 8 | `kind: u8, x: u8, y: u8` | DTMF `x` for `y`·10 ms, direction `x`, stop, or via `control` |
//!
//! The clock stops a minute after the start ([`MAX_ELAPSED`]).
//!
//! Checks: nothing panics, every loop is bounded, each transmit fits its
//! buffer and parses (RTP, or an RFC 3550 A.2 valid compound).
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mediarelay::codec::G711;
use mediarelay::dtmf::EventCode;
use mediarelay::media::session::InputWriter;
use mediarelay::media::{CodecSpec, Control, Endpoint, MediaSession, SessionConfig};
use mediarelay::relay::Component;
use mediarelay::rtcp::{NtpTime, validate_strict};
use mediarelay::rtp::RtpPacket;
use mediarelay::sdp::Direction;

/// Operations run per input.
const MAX_OPS: usize = 256;
/// Timeouts handled per clock advance.
const MAX_STEPS: usize = 256;
/// Transmits drained per pump (a session sends at most a few per tick).
const MAX_TRANSMITS: usize = 64;
/// A full MTU.
const MTU: usize = 1500;
/// Virtual time one input may span. Once a stream has started, the jitter
/// buffer plays (or conceals) a frame per ptime, so virtual time costs
/// real time; a minute is past every timer the session has.
const MAX_ELAPSED: Duration = Duration::from_secs(60);

const DIRECTIONS: [Direction; 4] = [
    Direction::SendRecv,
    Direction::SendOnly,
    Direction::RecvOnly,
    Direction::Inactive,
];

/// The fixed origin of the virtual clock.
fn start() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

struct Driver {
    session: MediaSession,
    writer: InputWriter,
    now: Instant,
    buf: Box<[u8]>,
    /// The last datagram sent, for echoing back.
    last: Option<(Component, Vec<u8>)>,
    /// Audio input written so far (a ramp, so frames differ).
    sample: i16,
}

impl Driver {
    fn src() -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 40000))
    }

    /// Drains `poll_transmit` into a buffer of `cap` bytes, then flushes.
    fn transmit(&mut self, cap: usize) {
        let cap = cap.min(MTU);
        for _ in 0..MAX_TRANSMITS {
            let Some(t) = self.session.poll_transmit(self.now, &mut self.buf[..cap]) else {
                break;
            };
            assert!(
                t.len <= cap,
                "transmit of {} bytes in a {cap}-byte buffer",
                t.len
            );
            let out = &self.buf[..t.len];
            match t.component {
                Component::Rtp => {
                    RtpPacket::parse(out).expect("RTP we send parses");
                }
                Component::Rtcp => {
                    validate_strict(out).expect("RTCP we send is a valid compound");
                }
            }
            self.last = Some((t.component, out.to_vec()));
        }
        self.session.flush(self.now);
    }

    fn events(&mut self) {
        // The queue is bounded by its capacity; the bound here only guards.
        for _ in 0..1024 {
            if self.session.poll_event().is_none() {
                break;
            }
        }
    }

    /// Runs the clock `by` forward, stopping at each timeout on the way
    /// like a shard's timer would, and pumps transmits and events there.
    fn run_for(&mut self, by: Duration) {
        let target = self.later(by);
        for _ in 0..MAX_STEPS {
            let Some(t) = self.session.poll_timeout() else {
                break;
            };
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            self.session.handle_timeout(self.now);
            self.transmit(MTU);
            self.events();
        }
        self.now = target;
    }

    /// Jumps the clock `by` forward (a shard that slept through timers).
    fn jump(&mut self, by: Duration) {
        self.now = self.later(by);
        if self.session.poll_timeout().is_some_and(|t| t <= self.now) {
            self.session.handle_timeout(self.now);
        }
    }

    /// `by` after now, within [`MAX_ELAPSED`] of the start.
    fn later(&self, by: Duration) -> Instant {
        (self.now + by).min(start() + MAX_ELAPSED)
    }

    fn write_audio(&mut self, frames: usize) {
        let InputWriter::Pcm(p) = &mut self.writer else {
            return;
        };
        let mut pcm = [0i16; 160];
        for _ in 0..frames {
            for s in &mut pcm {
                self.sample = self.sample.wrapping_add(257);
                *s = self.sample;
            }
            p.write(&pcm);
        }
    }

    fn control(&mut self, kind: u8, x: u8, y: u8) {
        let duration = Duration::from_millis(u64::from(y) * 10);
        match kind % 6 {
            0 => {
                let _ = self.session.send_dtmf(EventCode(x), duration);
            }
            1 => self.session.set_direction(self.now, DIRECTIONS[usize::from(x % 4)]),
            2 => self.session.stop(self.now),
            3 => {
                let c = Control::Dtmf {
                    event: EventCode(x),
                    duration,
                };
                let _ = self.session.control(self.now, c);
            }
            4 => {
                let c = Control::Direction(DIRECTIONS[usize::from(x % 4)]);
                let _ = self.session.control(self.now, c);
            }
            _ => {
                let _ = self.session.control(self.now, Control::Stop);
            }
        }
    }
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = rest.split_at(n.min(rest.len()));
    *rest = tail;
    head
}

fn byte(rest: &mut &[u8]) -> u8 {
    take(rest, 1).first().copied().unwrap_or(0)
}

fn u16be(rest: &mut &[u8]) -> u16 {
    u16::from_be_bytes([byte(rest), byte(rest)])
}

fuzz_target!(|data: &[u8]| {
    let mut rest = data;
    let flags = byte(&mut rest);
    let mut config = SessionConfig::new(NtpTime::from_unix(Duration::from_secs(1_700_000_000)));
    if flags & 1 != 0 {
        config.jitter = None;
    }
    if flags & 2 != 0 {
        config.deliver_payload = Some(Some(CodecSpec::G711(G711::Pcma)));
    }
    if flags & 4 != 0 {
        config.xr = false;
    }
    if flags & 8 != 0 {
        config.event_capacity = 4;
    }
    let t0 = start();
    let (session, writer) = MediaSession::new(config, t0).expect("a valid configuration");
    let mut d = Driver {
        session,
        writer,
        now: t0,
        buf: vec![0u8; MTU].into_boxed_slice(),
        last: None,
        sample: 0,
    };

    for _ in 0..MAX_OPS {
        let Some((&op, tail)) = rest.split_first() else {
            break;
        };
        rest = tail;
        match op % 9 {
            0 | 1 => {
                let dt = byte(&mut rest);
                let len = u16be(&mut rest);
                let datagram = take(&mut rest, usize::from(len));
                d.now = d.later(Duration::from_millis(u64::from(dt)));
                let component = if op % 9 == 0 {
                    Component::Rtp
                } else {
                    Component::Rtcp
                };
                d.session
                    .handle_input(d.now, component, Driver::src(), datagram);
            }
            2 => {
                let ms = u16be(&mut rest);
                d.run_for(Duration::from_millis(u64::from(ms)));
            }
            3 => {
                let ms = u16be(&mut rest);
                d.jump(Duration::from_millis(u64::from(ms)));
            }
            4 => {
                let cap = byte(&mut rest);
                let cap = if cap & 0x80 != 0 {
                    usize::from(cap & 0x7f) * 4
                } else {
                    MTU
                };
                d.transmit(cap);
            }
            5 => d.events(),
            6 => {
                let frames = byte(&mut rest);
                d.write_audio(usize::from(frames % 9));
            }
            7 => {
                if let Some((component, bytes)) = d.last.take() {
                    d.session
                        .handle_input(d.now, component, Driver::src(), &bytes);
                    d.last = Some((component, bytes));
                }
            }
            _ => {
                let [kind, x, y] = [byte(&mut rest), byte(&mut rest), byte(&mut rest)];
                d.control(kind, x, y);
            }
        }
    }

    // Wind down: what is pending plays out, then the BYE goes and the
    // session goes quiet.
    d.run_for(Duration::from_secs(1));
    d.session.stop(d.now);
    d.transmit(MTU);
    d.events();
    assert!(d.session.is_stopped());
    assert!(d.session.poll_transmit(d.now, &mut d.buf).is_none());
});
