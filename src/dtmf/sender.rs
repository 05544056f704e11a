//! Sans-IO telephone-event sender (RFC 4733 §2.5.1).
//!
//! [`DtmfSender`] owns the stream's [`RtpSource`], so telephone-events and the
//! audio they interrupt draw sequence numbers from one counter and timestamps
//! from one clock (RFC 4733 §2.1). Audio goes out through
//! [`DtmfSender::source_mut`] while [`DtmfSender::is_active`] is false.
//!
//! Packet schedule of one event starting at media unit `s` with total
//! duration `D` and packetisation interval `p` (both in timestamp units), on
//! ticks `s + k·p`, `k = 0, 1, …`:
//!
//! - tick `k` sends an update whose duration covers the interval that tick
//!   replaces: `min((k+1)·p, D)`, measured from the start of the current
//!   segment. All updates of a segment carry the segment's start timestamp
//!   (§2.5.1.2); the first packet of the event carries the marker bit.
//! - the first tick that covers `D` sends the end packet (`E` set, final
//!   duration); it is repeated on the next ticks for a total of
//!   `end_packets` copies (§2.5.1.4). Every copy takes a new sequence number:
//!   each is an RTP packet of its own (§2.5.1.2), only the payload repeats.
//! - an event longer than 0xFFFF units is cut into segments (§2.5.1.3): the
//!   segment ends with a packet of duration 0xFFFF and `E` clear, and the
//!   next segment starts at timestamp `old + 0xFFFF`, without marker.
//! - after the last end packet the next queued tone starts no earlier than
//!   `inter_digit_gap` after the event's media end.
//!
//! When the caller polls late, missed updates are skipped (the next update
//! reports the duration at the poll), never sent in a burst.
//!
//! Deviations and choices are listed in `docs/dtmf.md`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::event::{EventCode, TelephoneEvent, Volume};
use crate::rtp::source::{RtpSource, duration_to_units};
use crate::rtp::{PayloadType, RtpWriteError};

/// Longest duration one segment can report (RFC 4733 §2.5.1.3).
pub const SEGMENT_MAX: u64 = 0xFFFF;

/// Why a tone cannot be queued or a packet cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtmfSendError {
    /// The queue holds `capacity` tones already.
    #[error("DTMF queue full ({capacity} tones)")]
    QueueFull {
        /// Configured queue capacity.
        capacity: usize,
    },
    /// The tone is shorter than one tick of the RTP clock.
    #[error("tone duration is shorter than one RTP clock tick")]
    ZeroDuration,
    /// The output buffer cannot hold the packet (16 bytes); nothing was
    /// consumed, the same packet is produced by the next poll.
    #[error(transparent)]
    Write(#[from] RtpWriteError),
}

/// Settings of a [`DtmfSender`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfSenderConfig {
    /// The negotiated `telephone-event` payload type (RFC 4733 §7.1.1).
    pub payload_type: PayloadType,
    /// Silence between the media end of one tone and the start of the next.
    pub inter_digit_gap: Duration,
    /// Copies of the end packet, 3 by default (RFC 4733 §2.5.1.4); at least
    /// one is always sent.
    pub end_packets: u8,
    /// Most tones waiting in the queue; the queue is allocated once.
    pub queue_capacity: usize,
}

/// Outbound telephone-event state machine bound to one [`RtpSource`].
#[derive(Debug, Clone)]
pub struct DtmfSender {
    source: RtpSource,
    config: DtmfSenderConfig,
    queue: VecDeque<Tone>,
    phase: Phase,
    /// Where the media time of the last event started ends, in timestamp
    /// units: audio stamped before it would overlap the event.
    event_end: u64,
}

/// A queued tone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tone {
    event: EventCode,
    volume: Volume,
    /// Total duration in timestamp units, at least 1.
    units: u64,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No event in progress; the next tone may start at `ready_at` (`None`:
    /// at once).
    Idle { ready_at: Option<Instant> },
    /// An event is being sent.
    Sending(Current),
}

/// The event in progress.
#[derive(Debug, Clone, Copy)]
struct Current {
    event: EventCode,
    volume: Volume,
    /// Media unit of the event start.
    start: u64,
    /// Total duration in units, at least 1.
    total: u64,
    /// Index of the next tick to send on.
    next_tick: u64,
    /// Index of the segment being sent (RFC 4733 §2.5.1.3).
    segment: u64,
    /// Duration last reported in the current segment (0: none yet).
    reported: u16,
    /// Whether the first packet (with the marker) has gone out.
    started: bool,
    /// End packets sent so far.
    ends_sent: u8,
}

/// What the next packet of the current event is.
#[derive(Debug, Clone, Copy)]
struct Planned {
    payload: TelephoneEvent,
    /// Index of the segment the packet belongs to.
    segment: u64,
    /// Media unit of the segment start (the packet's timestamp).
    segment_start: u64,
    marker: bool,
    /// The tick this packet is sent on (updates only).
    tick: u64,
    kind: PacketKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PacketKind {
    /// The closing packet of a non-final segment (§2.5.1.3).
    SegmentEnd { next_segment: u64 },
    /// An update, possibly the first end packet.
    Update,
    /// A repeated end packet (§2.5.1.4).
    EndRepeat,
}

impl DtmfSenderConfig {
    /// Default gap between tones.
    pub const DEFAULT_GAP: Duration = Duration::from_millis(100);
    /// Default queue capacity.
    pub const DEFAULT_QUEUE: usize = 64;

    /// Defaults: 100 ms gap, 3 end packets, room for 64 queued tones.
    pub const fn new(payload_type: PayloadType) -> Self {
        DtmfSenderConfig {
            payload_type,
            inter_digit_gap: Self::DEFAULT_GAP,
            end_packets: 3,
            queue_capacity: Self::DEFAULT_QUEUE,
        }
    }
}

impl DtmfSender {
    /// A sender that writes through `source`.
    pub fn new(source: RtpSource, config: DtmfSenderConfig) -> Self {
        DtmfSender {
            source,
            config,
            queue: VecDeque::with_capacity(config.queue_capacity),
            phase: Phase::Idle { ready_at: None },
            event_end: 0,
        }
    }

    /// The shared source (SSRC, sequence counter, clock).
    pub fn source(&self) -> &RtpSource {
        &self.source
    }

    /// The shared source, for writing audio while no event is active.
    pub fn source_mut(&mut self) -> &mut RtpSource {
        &mut self.source
    }

    /// The configuration.
    pub fn config(&self) -> &DtmfSenderConfig {
        &self.config
    }

    /// Consumes the sender, returning the source.
    pub fn into_source(self) -> RtpSource {
        self.source
    }

    /// Queues a tone of `duration` (rounded down to clock ticks). Tones go
    /// out one after another, `inter_digit_gap` apart.
    ///
    /// For a tone of unknown length (a key held down), queue a long duration
    /// and end it with [`DtmfSender::stop`].
    pub fn queue(
        &mut self,
        event: impl Into<EventCode>,
        duration: Duration,
        volume: Volume,
    ) -> Result<(), DtmfSendError> {
        let units = duration_to_units(duration, self.source.clock_rate());
        if units == 0 {
            return Err(DtmfSendError::ZeroDuration);
        }
        if self.queue.len() >= self.config.queue_capacity {
            return Err(DtmfSendError::QueueFull {
                capacity: self.config.queue_capacity,
            });
        }
        self.queue.push_back(Tone {
            event: event.into(),
            volume,
            units,
        });
        Ok(())
    }

    /// Tones waiting behind the current one.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Drops every queued tone (the current one continues).
    pub fn clear_queue(&mut self) {
        self.queue.clear();
    }

    /// Ends the current event at `now` (or at the duration already reported,
    /// if later): the end packets go out from the next poll on. Returns
    /// whether an event was cut short.
    pub fn stop(&mut self, now: Instant) -> bool {
        let Phase::Sending(cur) = &mut self.phase else {
            return false;
        };
        if cur.ends_sent > 0 {
            return false;
        }
        let elapsed = self.source.units_at(now).saturating_sub(cur.start);
        let reported =
            (cur.segment.saturating_mul(SEGMENT_MAX)).saturating_add(u64::from(cur.reported));
        let total = elapsed.max(reported).max(1);
        if total >= cur.total {
            return false;
        }
        cur.total = total;
        // Send the end packet as soon as polled, then keep the tick grid.
        let ptu = u64::from(self.source.ptime_units());
        let tick_now = elapsed / ptu;
        if cur.started {
            cur.next_tick = cur.next_tick.min(tick_now);
        }
        true
    }

    /// True while an event occupies the stream: from its first packet until
    /// the tick after its first end packet, i.e. until its media time is
    /// over. Audio must not be sent meanwhile (RFC 4733 §2.5.1.2). The
    /// repeated end packets may interleave with resumed audio.
    ///
    /// Reflects the state after the last [`DtmfSender::poll_transmit`]: on a
    /// tick, drain `poll_transmit` first, then decide about audio.
    pub fn is_active(&self) -> bool {
        match self.phase {
            Phase::Idle { .. } => false,
            Phase::Sending(cur) => cur.ends_sent <= 1,
        }
    }

    /// Whether audio stamped at `units` (timestamp units from the
    /// source's base) would fall inside the media time of the last event
    /// started: such audio is not sent (RFC 4733 §2.5.1.2), so audio after
    /// an event resumes at or after its end even when the event did not
    /// start on an audio packet boundary.
    pub fn covers(&self, units: u64) -> bool {
        self.is_active() || units < self.event_end
    }

    /// When [`DtmfSender::poll_transmit`] next has something to send. An
    /// instant not after `now` means "poll now".
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Idle { ready_at } => {
                if self.queue.is_empty() {
                    None
                } else {
                    Some(ready_at.unwrap_or(self.source.base()))
                }
            }
            Phase::Sending(cur) => Some(self.tick_instant(&cur, cur.next_tick)),
        }
    }

    /// Writes the next due packet (a whole RTP packet, 16 bytes) into `buf`
    /// and returns its length; `Ok(None)` when nothing is due at `now`. Call
    /// repeatedly until `Ok(None)`: one tick can produce two packets (a
    /// segment end and the next segment's first update).
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<usize>, DtmfSendError> {
        if let Phase::Idle { ready_at } = self.phase {
            if ready_at.is_some_and(|r| now < r) {
                return Ok(None);
            }
            let Some(tone) = self.queue.pop_front() else {
                return Ok(None);
            };
            let start = self.source.units_at(now);
            self.event_end = start.saturating_add(tone.units);
            self.phase = Phase::Sending(Current {
                event: tone.event,
                volume: tone.volume,
                start,
                total: tone.units,
                next_tick: 0,
                segment: 0,
                reported: 0,
                started: false,
                ends_sent: 0,
            });
        }
        let Phase::Sending(cur) = self.phase else {
            return Ok(None);
        };
        if now < self.tick_instant(&cur, cur.next_tick) {
            return Ok(None);
        }
        let plan = self.plan(&cur, now);
        let ts = self.source.timestamp_for(plan.segment_start);
        let n = self.source.write_packet(
            self.config.payload_type,
            ts,
            plan.marker,
            &plan.payload.to_bytes(),
            buf,
        )?;
        self.commit(cur, &plan, now);
        Ok(Some(n))
    }

    /// The instant of tick `k` of an event.
    fn tick_instant(&self, cur: &Current, k: u64) -> Instant {
        let ptu = u64::from(self.source.ptime_units());
        let unit = cur.start.saturating_add(k.saturating_mul(ptu));
        self.source.instant_at(unit)
    }

    /// Decides the next packet of `cur` at `now` (already due).
    fn plan(&self, cur: &Current, now: Instant) -> Planned {
        let ptu = u64::from(self.source.ptime_units());
        let volume = cur.volume;
        let seg_start = |seg: u64| cur.start.saturating_add(seg.saturating_mul(SEGMENT_MAX));
        if cur.ends_sent > 0 {
            // RFC 4733 §2.5.1.4: repeat the end packet unchanged.
            return Planned {
                payload: TelephoneEvent {
                    event: cur.event,
                    end: true,
                    volume,
                    duration: cur.reported,
                },
                segment: cur.segment,
                segment_start: seg_start(cur.segment),
                marker: false,
                tick: cur.next_tick,
                kind: PacketKind::EndRepeat,
            };
        }
        // Skip ticks the caller polled too late for.
        let tick_now = self.source.units_at(now).saturating_sub(cur.start) / ptu;
        let tick = cur.next_tick.max(tick_now);
        let covered = tick.saturating_add(1).saturating_mul(ptu).min(cur.total);
        // covered >= 1: ptu >= 1 and total >= 1.
        let segment = (covered - 1) / SEGMENT_MAX;
        if segment > cur.segment && cur.reported < SEGMENT_MAX as u16 {
            // RFC 4733 §2.5.1.3: close the segment at 0xFFFF, E clear.
            return Planned {
                payload: TelephoneEvent {
                    event: cur.event,
                    end: false,
                    volume,
                    duration: SEGMENT_MAX as u16,
                },
                segment: cur.segment,
                segment_start: seg_start(cur.segment),
                marker: !cur.started,
                tick,
                kind: PacketKind::SegmentEnd {
                    next_segment: segment,
                },
            };
        }
        // Within one segment: covered - segment * 0xFFFF is in 1..=0xFFFF.
        let duration = (covered - segment * SEGMENT_MAX) as u16;
        Planned {
            payload: TelephoneEvent {
                event: cur.event,
                end: covered >= cur.total,
                volume,
                duration,
            },
            segment,
            segment_start: seg_start(segment),
            // RFC 4733 §2.5.1.2: marker on the first packet of the event
            // only; later segments start without it (§2.5.1.3).
            marker: !cur.started,
            tick,
            kind: PacketKind::Update,
        }
    }

    /// Advances the state after `plan` was written.
    fn commit(&mut self, mut cur: Current, plan: &Planned, now: Instant) {
        cur.started = true;
        match plan.kind {
            PacketKind::SegmentEnd { next_segment } => {
                // The update for the new segment follows on the same tick.
                cur.segment = next_segment;
                cur.reported = 0;
            }
            PacketKind::Update => {
                cur.segment = plan.segment;
                cur.reported = plan.payload.duration;
                cur.next_tick = plan.tick.saturating_add(1);
                if plan.payload.end {
                    cur.ends_sent = 1;
                }
            }
            PacketKind::EndRepeat => {
                cur.ends_sent = cur.ends_sent.saturating_add(1);
                let ptu = u64::from(self.source.ptime_units());
                let tick_now = self.source.units_at(now).saturating_sub(cur.start) / ptu;
                cur.next_tick = cur.next_tick.max(tick_now).saturating_add(1);
            }
        }
        if cur.ends_sent > 0 && cur.ends_sent >= self.config.end_packets {
            let end = self.source.instant_at(cur.start.saturating_add(cur.total));
            let ready = end.checked_add(self.config.inter_digit_gap).unwrap_or(end);
            self.phase = Phase::Idle {
                ready_at: Some(ready),
            };
            return;
        }
        self.phase = Phase::Sending(cur);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtmf::DtmfDigit;
    use crate::rtp::source::SourceConfig;
    use crate::rtp::{RtpPacket, Ssrc};

    const PT: u8 = 101;

    fn sender(ts0: u32, seq0: u16) -> (DtmfSender, Instant) {
        let base = Instant::now();
        let cfg = SourceConfig::new(Ssrc(0x1234), seq0, ts0, 8000, Duration::from_millis(20));
        let src = RtpSource::new(cfg, base).unwrap();
        let cfg = DtmfSenderConfig::new(PayloadType::new(PT).unwrap());
        (DtmfSender::new(src, cfg), base)
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Sent {
        at_ms: u64,
        seq: u16,
        ts: u32,
        marker: bool,
        ev: TelephoneEvent,
    }

    /// Runs the sender on a 1 ms virtual clock until idle.
    fn run(s: &mut DtmfSender, base: Instant, until_ms: u64) -> Vec<Sent> {
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        for ms in 0..until_ms {
            let now = base + Duration::from_millis(ms);
            while let Some(n) = s.poll_transmit(now, &mut buf).unwrap() {
                let p = RtpPacket::parse(&buf[..n]).unwrap();
                assert_eq!(p.payload_type().value(), PT);
                assert_eq!(p.ssrc(), Ssrc(0x1234));
                out.push(Sent {
                    at_ms: ms,
                    seq: p.sequence(),
                    ts: p.timestamp(),
                    marker: p.marker(),
                    ev: TelephoneEvent::parse(p.payload()).unwrap(),
                });
            }
        }
        out
    }

    #[test]
    fn one_digit_schedule() {
        let (mut s, base) = sender(1000, 10);
        assert_eq!(s.poll_timeout(), None);
        s.queue(DtmfDigit::D5, Duration::from_millis(100), Volume::DEFAULT)
            .unwrap();
        assert!(s.poll_timeout().is_some_and(|t| t <= base));
        assert!(!s.is_active());
        let sent = run(&mut s, base, 300);
        // 100 ms at 20 ms: updates at 0..=80 ms, the one at 80 ms is the end,
        // repeated at 100 and 120 ms.
        let durs: Vec<(u64, u16, bool)> = sent
            .iter()
            .map(|p| (p.at_ms, p.ev.duration, p.ev.end))
            .collect();
        assert_eq!(
            durs,
            vec![
                (0, 160, false),
                (20, 320, false),
                (40, 480, false),
                (60, 640, false),
                (80, 800, true),
                (100, 800, true),
                (120, 800, true),
            ]
        );
        for (i, p) in sent.iter().enumerate() {
            assert_eq!(p.ts, 1000, "one timestamp for the whole event");
            assert_eq!(p.seq, 10 + i as u16, "every packet takes a sequence number");
            assert_eq!(p.marker, i == 0);
            assert_eq!(p.ev.event, EventCode(5));
            assert_eq!(p.ev.volume, Volume::DEFAULT);
        }
        assert_eq!(s.poll_timeout(), None);
        assert!(!s.is_active());
        assert_eq!(s.source().packets_sent(), 7);
    }

    #[test]
    fn active_until_media_end() {
        let (mut s, base) = sender(0, 0);
        s.queue(DtmfDigit::D1, Duration::from_millis(40), Volume::DEFAULT)
            .unwrap();
        let mut buf = [0u8; 16];
        let at = |ms| base + Duration::from_millis(ms);
        assert!(s.poll_transmit(at(0), &mut buf).unwrap().is_some());
        assert!(s.is_active());
        assert_eq!(s.poll_timeout(), Some(at(20)));
        assert_eq!(s.poll_transmit(at(19), &mut buf).unwrap(), None);
        // End packet at 20 ms covers up to 40 ms: still active.
        assert!(s.poll_transmit(at(20), &mut buf).unwrap().is_some());
        assert!(s.is_active());
        assert!(s.poll_transmit(at(40), &mut buf).unwrap().is_some());
        assert!(!s.is_active(), "audio may resume at the media end");
        assert!(s.poll_transmit(at(60), &mut buf).unwrap().is_some());
        assert_eq!(s.poll_transmit(at(60), &mut buf).unwrap(), None);
    }

    #[test]
    fn queued_digits_respect_gap_and_share_counter() {
        let (mut s, base) = sender(0, 65534);
        for c in "12".chars() {
            let d = DtmfDigit::from_char(c).unwrap();
            s.queue(d, Duration::from_millis(60), Volume::new(7).unwrap())
                .unwrap();
        }
        // Audio before the digits uses the same counter.
        let mut buf = [0u8; 200];
        s.source_mut()
            .write_packet(PayloadType::PCMU, 0, false, &[0xff; 160], &mut buf)
            .unwrap();
        let sent = run(&mut s, base, 500);
        let first: Vec<_> = sent.iter().filter(|p| p.ev.event == EventCode(1)).collect();
        let second: Vec<_> = sent.iter().filter(|p| p.ev.event == EventCode(2)).collect();
        assert_eq!(first.len(), 3 + 2);
        assert_eq!(second.len(), 3 + 2);
        // Sequence numbers wrap 65535 -> 0 and never repeat.
        assert_eq!(sent[0].seq, 65535);
        assert_eq!(sent[1].seq, 0);
        // First digit ends (media) at 60 ms; gap 100 ms => second at 160 ms.
        assert_eq!(second[0].at_ms, 160);
        assert!(second[0].marker);
        assert_eq!(second[0].ts, 160 * 8);
        assert_eq!(first[0].ts, 0);
    }

    #[test]
    fn timestamp_wraps() {
        let (mut s, base) = sender(u32::MAX - 100, 0);
        s.queue(DtmfDigit::Star, Duration::from_millis(60), Volume::DEFAULT)
            .unwrap();
        s.queue(DtmfDigit::Pound, Duration::from_millis(60), Volume::DEFAULT)
            .unwrap();
        let sent = run(&mut s, base, 500);
        assert_eq!(sent[0].ts, u32::MAX - 100);
        let pound = sent.iter().find(|p| p.ev.event == EventCode(11)).unwrap();
        assert_eq!(pound.ts, (u32::MAX - 100).wrapping_add(160 * 8));
    }

    #[test]
    fn long_event_is_segmented() {
        // 10 s at 8 kHz = 80000 units: segments of 0xFFFF and 14465.
        let (mut s, base) = sender(5, 0);
        s.queue(DtmfDigit::D0, Duration::from_secs(10), Volume::DEFAULT)
            .unwrap();
        let sent = run(&mut s, base, 11_000);
        let seg0: Vec<_> = sent.iter().filter(|p| p.ts == 5).collect();
        let seg1: Vec<_> = sent.iter().filter(|p| p.ts == 5 + 0xFFFF).collect();
        assert_eq!(seg0.len() + seg1.len(), sent.len());
        let last0 = seg0.last().unwrap();
        assert_eq!(last0.ev.duration, 0xFFFF);
        assert!(!last0.ev.end);
        assert!(seg1.iter().all(|p| !p.marker), "no marker on a new segment");
        assert!(seg0[0].marker);
        assert_eq!(seg1.last().unwrap().ev.duration as u64, 80_000 - 0xFFFF);
        assert_eq!(seg1.iter().filter(|p| p.ev.end).count(), 3);
        // The segment end and the next segment's first update share a tick.
        let first1 = seg1[0];
        assert_eq!(first1.at_ms, last0.at_ms);
        assert_eq!(first1.seq, last0.seq.wrapping_add(1));
        // Durations grow monotonically within each segment.
        for seg in [&seg0, &seg1] {
            assert!(seg.windows(2).all(|w| w[0].ev.duration <= w[1].ev.duration));
        }
    }

    #[test]
    fn late_polls_skip_updates() {
        let (mut s, base) = sender(0, 0);
        s.queue(DtmfDigit::D9, Duration::from_millis(200), Volume::DEFAULT)
            .unwrap();
        let mut buf = [0u8; 16];
        let at = |ms| base + Duration::from_millis(ms);
        assert!(s.poll_transmit(at(0), &mut buf).unwrap().is_some());
        // Polled 70 ms late: one update reporting the duration at the poll.
        assert!(s.poll_transmit(at(90), &mut buf).unwrap().is_some());
        let p = RtpPacket::parse(&buf).unwrap();
        assert_eq!(TelephoneEvent::parse(p.payload()).unwrap().duration, 800);
        assert_eq!(s.poll_transmit(at(90), &mut buf).unwrap(), None);
        assert_eq!(s.poll_timeout(), Some(at(100)));
    }

    #[test]
    fn stop_ends_early() {
        let (mut s, base) = sender(0, 0);
        s.queue(DtmfDigit::D4, Duration::from_secs(3600), Volume::DEFAULT)
            .unwrap();
        let at = |ms| base + Duration::from_millis(ms);
        let mut buf = [0u8; 16];
        for ms in [0, 20, 40] {
            assert!(s.poll_transmit(at(ms), &mut buf).unwrap().is_some());
        }
        assert!(s.stop(at(50)));
        assert!(
            !s.stop(at(50)),
            "already shortened to the reported duration"
        );
        let p = s.poll_transmit(at(50), &mut buf).unwrap().unwrap();
        let ev = TelephoneEvent::parse(RtpPacket::parse(&buf[..p]).unwrap().payload()).unwrap();
        assert!(ev.end);
        assert_eq!(ev.duration, 480, "never less than already reported");
        assert!(!s.stop(at(55)));
        let rest = run(&mut s, base, 200);
        assert_eq!(rest.len(), 2);
        assert!(rest.iter().all(|p| p.ev.end && p.ev.duration == 480));
        assert!(!s.is_active());
        assert!(!s.stop(at(300)));
    }

    #[test]
    fn errors_consume_nothing() {
        let (mut s, base) = sender(0, 3);
        assert_eq!(
            s.queue(DtmfDigit::D1, Duration::from_micros(10), Volume::DEFAULT),
            Err(DtmfSendError::ZeroDuration)
        );
        s.queue(DtmfDigit::D1, Duration::from_millis(50), Volume::DEFAULT)
            .unwrap();
        let mut small = [0u8; 15];
        assert!(matches!(
            s.poll_transmit(base, &mut small),
            Err(DtmfSendError::Write(_))
        ));
        assert_eq!(s.source().next_seq().wire(), 3);
        let sent = run(&mut s, base, 200);
        assert!(sent[0].marker);
        assert_eq!(sent[0].seq, 3);
        let mut cfg = *s.config();
        cfg.queue_capacity = 1;
        let mut s2 = DtmfSender::new(s.into_source(), cfg);
        s2.queue(DtmfDigit::A, Duration::from_millis(50), Volume::DEFAULT)
            .unwrap();
        assert_eq!(
            s2.queue(DtmfDigit::B, Duration::from_millis(50), Volume::DEFAULT),
            Err(DtmfSendError::QueueFull { capacity: 1 })
        );
        assert_eq!(s2.queued(), 1);
        s2.clear_queue();
        assert_eq!(s2.poll_timeout(), None);
    }

    #[test]
    fn short_tone_is_one_update_plus_repeats() {
        let (mut s, base) = sender(0, 0);
        s.queue(DtmfDigit::C, Duration::from_millis(5), Volume::DEFAULT)
            .unwrap();
        let sent = run(&mut s, base, 100);
        assert_eq!(sent.len(), 3);
        assert!(sent[0].marker && sent[0].ev.end);
        assert!(sent.iter().all(|p| p.ev.duration == 40));
    }

    /// An event that starts between two audio packets (here 0.75 ms after
    /// one) covers its whole media time: audio stamped before its end is
    /// not sent, so audio after it never overlaps it.
    #[test]
    fn covers_the_whole_media_time_of_an_unaligned_event() {
        let (mut s, base) = sender(0, 0);
        s.queue(DtmfDigit::D5, Duration::from_millis(100), Volume::DEFAULT)
            .unwrap();
        let start = base + Duration::from_micros(20_750);
        let mut buf = [0u8; 64];
        assert!(s.poll_transmit(start, &mut buf).unwrap().is_some());
        // 20.75 ms = 166 units; the event covers 166..966.
        assert!(s.covers(160));
        assert!(s.covers(960), "audio at 960 would overlap the event");
        let out = run(&mut s, base, 400);
        assert!(out.last().is_some_and(|p| p.ev.end), "the event ended");
        assert!(!s.is_active());
        assert!(s.covers(965));
        assert!(!s.covers(966));
        assert!(!s.covers(1120));
    }
}
