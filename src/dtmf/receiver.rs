//! Sans-IO telephone-event receiver (RFC 4733 §2.5.2): turns a stream of
//! telephone-event packets into one `Started` and one `Ended` report per
//! event, whatever the network did to the packets.
//!
//! Events are identified by their RTP timestamp (RFC 4733 §2.5.1.2: every
//! packet of an event carries the event's start time), extended to 64 bits
//! against the newest timestamp seen so that wrap-around is harmless:
//!
//! - a packet whose timestamp belongs to a known event only updates it:
//!   repeated end packets (§2.5.1.4), duplicates and reordered updates never
//!   make a second report;
//! - a newer timestamp that continues the active event by a whole number of
//!   0xFFFF-unit segments, with the same event code, is the next segment of
//!   a long event (§2.5.1.3), not a new event;
//! - any other newer timestamp starts a new event and ends the active one
//!   (`Superseded`): this catches events whose end packets were all lost;
//! - an event whose packets stop arriving ends after `end_timeout`
//!   (`Timeout`, driven by [`DtmfReceiver::poll_timeout`] /
//!   [`DtmfReceiver::handle_timeout`]);
//! - a never-seen timestamp older than the newest event (a whole event
//!   delayed behind the next one) is reported at once as `Started` +
//!   `Ended` with `late` set, so that it is still reported exactly once;
//!   events older than the last [`HISTORY`] known events are dropped
//!   (counted in [`ReceiverStats::stale`]).
//!
//! Reporting: `Started` goes out on the first packet seen of an event
//! (lowest latency; its duration is what that packet says), `Ended` exactly
//! once with the final duration known (for a long event: the segments so far
//! plus the last segment's duration). A caller that wants one report per key
//! press uses either kind, not both.
//!
//! No allocation after construction: the history is a fixed array and the
//! output queue is allocated once ([`OUTPUT_CAPACITY`] reports, or the room
//! given to [`DtmfReceiver::with_output_capacity`]; on overflow the oldest
//! report is dropped and counted).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::event::{EventCode, EventError, TelephoneEvent, Volume, blocks};
use super::sender::SEGMENT_MAX;
use crate::rtp::{PayloadType, RtpPacket, Ssrc};

/// How many recent events the receiver remembers, to recognise their late
/// and repeated packets.
pub const HISTORY: usize = 16;
/// Most event blocks looked at in one packet (RFC 4733 §2.5.1.5).
pub const MAX_BLOCKS: usize = 8;
/// Reports the output queue holds before dropping the oldest.
pub const OUTPUT_CAPACITY: usize = 64;
/// Most reports one call of [`DtmfReceiver::handle_packet`],
/// [`DtmfReceiver::handle_payload`] or [`DtmfReceiver::handle_timeout`]
/// queues: the end of the event in progress when the SSRC changes, then up
/// to three per block looked at (the event it supersedes ends, it starts,
/// it ends). A caller that takes every report after each call never loses
/// one with an output queue this long.
pub const MAX_REPORTS_PER_CALL: usize = 1 + 3 * MAX_BLOCKS;
/// Most whole segments a continuation may skip (all packets of the skipped
/// segments lost).
const MAX_SEGMENT_JUMP: u64 = 64;

/// Why a packet was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DtmfReceiveError {
    /// The packet is not of the configured telephone-event payload type.
    #[error("payload type {got}, telephone-event is {expected}")]
    PayloadType {
        /// The configured telephone-event payload type.
        expected: PayloadType,
        /// The packet's payload type.
        got: PayloadType,
    },
    /// The payload is not a telephone-event.
    #[error(transparent)]
    Payload(#[from] EventError),
}

/// Settings of a [`DtmfReceiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfReceiverConfig {
    /// The negotiated `telephone-event` payload type.
    pub payload_type: PayloadType,
    /// An event with no packet for this long ends (`Timeout`).
    pub end_timeout: Duration,
}

/// What a report says about the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// First packet seen of the event.
    Started,
    /// The event is over; reported exactly once per event.
    Ended(EndReason),
}

/// Why an event counts as ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// A packet with the `E` bit (RFC 4733 §2.3.2).
    EndBit,
    /// A newer event started before any end packet arrived.
    Superseded,
    /// No packet for `end_timeout`.
    Timeout,
    /// The SSRC changed: the old stream is gone.
    SourceChanged,
}

/// One report of the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DtmfEvent {
    /// Start or end.
    pub kind: EventKind,
    /// The event code (a DTMF key for 0..=15).
    pub event: EventCode,
    /// The latest volume seen.
    pub volume: Volume,
    /// RTP timestamp of the event start (its first segment).
    pub timestamp: u32,
    /// Duration in timestamp units: as known at the report (for `Ended`,
    /// the final one; segments of long events included).
    pub duration: u64,
    /// The stream's SSRC.
    pub ssrc: Ssrc,
    /// The event arrived after a newer event had started (reported out of
    /// timestamp order).
    pub late: bool,
}

/// Counters of a [`DtmfReceiver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReceiverStats {
    /// Packets accepted.
    pub packets: u64,
    /// Blocks that belonged to an already ended event (repeated end
    /// packets, duplicates, stragglers).
    pub duplicates: u64,
    /// Blocks of unknown events older than the remembered history.
    pub stale: u64,
    /// Blocks not looked at (beyond [`MAX_BLOCKS`], or after a block without
    /// `E` in a multi-event packet).
    pub ignored_blocks: u64,
    /// Reports dropped because the output queue was full.
    pub dropped_reports: u64,
}

/// Inbound telephone-event state machine for one stream.
#[derive(Debug, Clone)]
pub struct DtmfReceiver {
    config: DtmfReceiverConfig,
    ssrc: Option<Ssrc>,
    /// Newest extended timestamp seen: the reference for extension.
    newest_ts: Option<u64>,
    records: [Option<Record>; HISTORY],
    /// Index of the event in progress.
    active: Option<usize>,
    out: VecDeque<DtmfEvent>,
    /// Reports `out` holds before dropping the oldest.
    out_capacity: usize,
    stats: ReceiverStats,
}

/// What the receiver knows of one event.
#[derive(Debug, Clone, Copy)]
struct Record {
    /// Extended timestamp of the first segment.
    base: u64,
    /// Extended timestamp of the latest segment seen.
    seg_start: u64,
    event: EventCode,
    volume: Volume,
    /// Longest duration seen in the latest segment.
    seg_duration: u16,
    ended: bool,
    last_seen: Instant,
}

impl DtmfReceiverConfig {
    /// Default `end_timeout`: eight missed 50 ms updates.
    pub const DEFAULT_END_TIMEOUT: Duration = Duration::from_millis(400);

    /// Defaults: 400 ms end timeout.
    pub const fn new(payload_type: PayloadType) -> Self {
        DtmfReceiverConfig {
            payload_type,
            end_timeout: Self::DEFAULT_END_TIMEOUT,
        }
    }
}

impl Record {
    fn duration(&self) -> u64 {
        (self.seg_start - self.base).saturating_add(u64::from(self.seg_duration))
    }

    /// Whether extended timestamp `t` is the start of one of this event's
    /// segments seen so far.
    fn covers(&self, t: u64) -> bool {
        t >= self.base && t <= self.seg_start && (t - self.base).is_multiple_of(SEGMENT_MAX)
    }
}

impl DtmfReceiver {
    /// A receiver with no history, whose output queue holds
    /// [`OUTPUT_CAPACITY`] reports.
    pub fn new(config: DtmfReceiverConfig) -> Self {
        Self::with_output_capacity(config, OUTPUT_CAPACITY)
    }

    /// A receiver with no history, whose output queue holds `capacity`
    /// reports (at least 1): [`MAX_REPORTS_PER_CALL`] is enough for a
    /// caller that takes every report after each call.
    pub fn with_output_capacity(config: DtmfReceiverConfig, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        DtmfReceiver {
            config,
            ssrc: None,
            newest_ts: None,
            records: [None; HISTORY],
            active: None,
            out: VecDeque::with_capacity(capacity),
            out_capacity: capacity,
            stats: ReceiverStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &DtmfReceiverConfig {
        &self.config
    }

    /// The counters.
    pub fn stats(&self) -> &ReceiverStats {
        &self.stats
    }

    /// Whether an event is in progress (started, not yet ended).
    pub fn is_active(&self) -> bool {
        self.active.is_some()
    }

    /// Feeds one RTP packet received at `now`.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        packet: &RtpPacket<'_>,
    ) -> Result<(), DtmfReceiveError> {
        let got = packet.payload_type();
        if got != self.config.payload_type {
            return Err(DtmfReceiveError::PayloadType {
                expected: self.config.payload_type,
                got,
            });
        }
        self.handle_payload(now, packet.ssrc(), packet.timestamp(), packet.payload())
    }

    /// Feeds the telephone-event payload of a packet with `ssrc` and RTP
    /// `timestamp`, received at `now` (for callers that parsed the header).
    pub fn handle_payload(
        &mut self,
        now: Instant,
        ssrc: Ssrc,
        timestamp: u32,
        payload: &[u8],
    ) -> Result<(), DtmfReceiveError> {
        TelephoneEvent::parse(payload)?;
        self.stats.packets += 1;
        if self.ssrc != Some(ssrc) {
            if self.ssrc.is_some() {
                self.reset(EndReason::SourceChanged);
            }
            self.ssrc = Some(ssrc);
        }
        let mut start = self.extend(timestamp);
        let total = payload.len() / super::event::EVENT_LEN;
        for (i, block) in blocks(payload).enumerate() {
            if i >= MAX_BLOCKS {
                self.stats.ignored_blocks += (total - i) as u64;
                break;
            }
            self.handle_block(now, start, block);
            if i + 1 < total && !block.end {
                // RFC 4733 §2.5.1.5: every event but the last in a packet
                // has ended; without E the next start is unknown.
                self.stats.ignored_blocks += (total - i - 1) as u64;
                break;
            }
            // The next packed event starts where this one ended.
            start = start.saturating_add(u64::from(block.duration));
        }
        Ok(())
    }

    /// When [`DtmfReceiver::handle_timeout`] should next run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let r = self.records[self.active?]?;
        Some(
            r.last_seen
                .checked_add(self.config.end_timeout)
                .unwrap_or(r.last_seen),
        )
    }

    /// Ends the event in progress if nothing arrived for `end_timeout`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let (Some(i), Some(deadline)) = (self.active, self.poll_timeout()) else {
            return;
        };
        if now >= deadline {
            self.end(i, EndReason::Timeout);
        }
    }

    /// The next report, oldest first.
    pub fn poll_event(&mut self) -> Option<DtmfEvent> {
        self.out.pop_front()
    }

    /// Extends a wire timestamp against the newest seen (serial number
    /// arithmetic, RFC 1982 style: up to 2^31 ahead is newer).
    fn extend(&mut self, ts: u32) -> u64 {
        let ext = match self.newest_ts {
            // Start one cycle up so that older timestamps stay positive.
            None => (1u64 << 32) | u64::from(ts),
            Some(n) => {
                // Truncation picks the wire part of the reference.
                let delta = ts.wrapping_sub(n as u32) as i32;
                // n >= 2^32 - 2^31 always (it only grows from >= 2^32), so
                // this never goes below zero.
                n.saturating_add_signed(i64::from(delta))
            }
        };
        self.newest_ts = Some(self.newest_ts.map_or(ext, |n| n.max(ext)));
        ext
    }

    fn handle_block(&mut self, now: Instant, t: u64, ev: TelephoneEvent) {
        // A known event: update it, never report it again.
        if let Some(i) = self.find(t) {
            let Some(r) = self.records[i].as_mut() else {
                return;
            };
            if r.ended {
                self.stats.duplicates += 1;
                return;
            }
            r.last_seen = now;
            if t != r.seg_start {
                // A straggler from an earlier segment: nothing new.
                return;
            }
            r.seg_duration = r.seg_duration.max(ev.duration);
            r.volume = ev.volume;
            if ev.end {
                self.end(i, EndReason::EndBit);
            }
            return;
        }
        // RFC 4733 §2.5.1.3: the next segment of the long event in progress.
        if let Some(i) = self.active {
            if let Some(r) = self.records[i].as_mut() {
                let step = t.wrapping_sub(r.seg_start);
                if t > r.seg_start
                    && ev.event == r.event
                    && step % SEGMENT_MAX == 0
                    && step / SEGMENT_MAX <= MAX_SEGMENT_JUMP
                {
                    r.seg_start = t;
                    r.seg_duration = ev.duration;
                    r.volume = ev.volume;
                    r.last_seen = now;
                    if ev.end {
                        self.end(i, EndReason::EndBit);
                    }
                    return;
                }
            }
        }
        let record = Record {
            base: t,
            seg_start: t,
            event: ev.event,
            volume: ev.volume,
            seg_duration: ev.duration,
            ended: false,
            last_seen: now,
        };
        let newest = self.records.iter().flatten().map(|r| r.base).max();
        if newest.is_none_or(|b| t > b) {
            // A new event: it ends the one in progress (whose end packets
            // may all have been lost).
            if let Some(a) = self.active {
                self.end(a, EndReason::Superseded);
            }
            let i = self.insert(record);
            self.emit(&record, EventKind::Started, false);
            if ev.end {
                self.end(i, EndReason::EndBit);
            } else {
                self.active = Some(i);
            }
            return;
        }
        // Never seen, yet older than the newest event: late.
        let full = self.records.iter().all(Option::is_some);
        let oldest = self.records.iter().flatten().map(|r| r.base).min();
        if full && oldest.is_some_and(|o| t < o) {
            // Older than everything remembered: it may have been reported
            // and forgotten, so drop it (at most once beats twice).
            self.stats.stale += 1;
            return;
        }
        // Stored already ended, to recognise its stragglers.
        self.insert(Record {
            ended: true,
            ..record
        });
        self.emit(&record, EventKind::Started, true);
        let reason = if ev.end {
            EndReason::EndBit
        } else {
            EndReason::Superseded
        };
        self.emit(&record, EventKind::Ended(reason), true);
    }

    /// The record whose segments include extended timestamp `t`.
    fn find(&self, t: u64) -> Option<usize> {
        self.records
            .iter()
            .position(|r| r.is_some_and(|r| r.covers(t)))
    }

    /// Stores `record`, evicting the oldest (smallest start) when full, so
    /// that everything forgotten is older than everything remembered.
    fn insert(&mut self, record: Record) -> usize {
        let slot = match self.records.iter().position(Option::is_none) {
            Some(free) => free,
            None => self
                .records
                .iter()
                .enumerate()
                .min_by_key(|(_, r)| r.map_or(0, |r| r.base))
                .map_or(0, |(i, _)| i),
        };
        if self.active == Some(slot) {
            self.active = None;
        }
        if let Some(r) = self.records.get_mut(slot) {
            *r = Some(record);
        }
        slot
    }

    /// Marks record `i` ended and reports it.
    fn end(&mut self, i: usize, reason: EndReason) {
        if self.active == Some(i) {
            self.active = None;
        }
        let Some(r) = self.records.get_mut(i).and_then(Option::as_mut) else {
            return;
        };
        if r.ended {
            return;
        }
        r.ended = true;
        let r = *r;
        self.emit(&r, EventKind::Ended(reason), false);
    }

    /// Forgets the stream, ending the event in progress.
    fn reset(&mut self, reason: EndReason) {
        if let Some(i) = self.active {
            self.end(i, reason);
        }
        self.records = [None; HISTORY];
        self.newest_ts = None;
    }

    fn emit(&mut self, r: &Record, kind: EventKind, late: bool) {
        if self.out.len() >= self.out_capacity {
            self.out.pop_front();
            self.stats.dropped_reports += 1;
        }
        self.out.push_back(DtmfEvent {
            kind,
            event: r.event,
            volume: r.volume,
            // Truncation gives the wire timestamp back.
            timestamp: r.base as u32,
            duration: r.duration(),
            ssrc: self.ssrc.unwrap_or_default(),
            late,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::RtpHeader;

    const PT: u8 = 101;

    struct Rx {
        rx: DtmfReceiver,
        base: Instant,
    }

    impl Rx {
        fn new() -> Self {
            Rx {
                rx: DtmfReceiver::new(DtmfReceiverConfig::new(PayloadType::new(PT).unwrap())),
                base: Instant::now(),
            }
        }

        fn at(&self, ms: u64) -> Instant {
            self.base + Duration::from_millis(ms)
        }

        fn feed(&mut self, ms: u64, ts: u32, code: u8, end: bool, duration: u16) {
            self.feed_ssrc(ms, 1, ts, code, end, duration);
        }

        fn feed_ssrc(&mut self, ms: u64, ssrc: u32, ts: u32, code: u8, end: bool, duration: u16) {
            let ev = TelephoneEvent {
                event: EventCode(code),
                end,
                volume: Volume::DEFAULT,
                duration,
            };
            let mut buf = [0u8; 16];
            let n = RtpHeader::new(PayloadType::new(PT).unwrap(), 0, ts, Ssrc(ssrc))
                .write(&ev.to_bytes(), &mut buf)
                .unwrap();
            let p = RtpPacket::parse(&buf[..n]).unwrap();
            let now = self.at(ms);
            self.rx.handle_timeout(now);
            self.rx.handle_packet(now, &p).unwrap();
        }

        fn drain(&mut self) -> Vec<(EventKind, u8, u32, u64)> {
            std::iter::from_fn(|| self.rx.poll_event())
                .map(|e| (e.kind, e.event.0, e.timestamp, e.duration))
                .collect()
        }
    }

    use EventKind::{Ended, Started};

    #[test]
    fn repeated_end_packets_report_once() {
        let mut r = Rx::new();
        r.feed(0, 1000, 5, false, 160);
        r.feed(20, 1000, 5, false, 320);
        r.feed(40, 1000, 5, true, 400);
        r.feed(60, 1000, 5, true, 400);
        r.feed(80, 1000, 5, true, 400);
        assert_eq!(
            r.drain(),
            vec![
                (Started, 5, 1000, 160),
                (Ended(EndReason::EndBit), 5, 1000, 400)
            ]
        );
        assert_eq!(r.rx.stats().duplicates, 2);
        assert!(!r.rx.is_active());
        assert_eq!(r.rx.poll_timeout(), None);
    }

    #[test]
    fn lost_end_packets_superseded_by_next_digit() {
        let mut r = Rx::new();
        r.feed(0, 1000, 1, false, 160);
        r.feed(20, 1000, 1, false, 320);
        // All end packets of digit 1 lost; digit 2 starts.
        r.feed(200, 2600, 2, false, 160);
        r.feed(220, 2600, 2, true, 320);
        assert_eq!(
            r.drain(),
            vec![
                (Started, 1, 1000, 160),
                (Ended(EndReason::Superseded), 1, 1000, 320),
                (Started, 2, 2600, 160),
                (Ended(EndReason::EndBit), 2, 2600, 320),
            ]
        );
    }

    #[test]
    fn same_digit_twice_is_two_events() {
        let mut r = Rx::new();
        r.feed(0, 1000, 7, false, 160);
        r.feed(200, 2600, 7, false, 160);
        let ev = r.drain();
        assert_eq!(ev.iter().filter(|e| e.0 == Started).count(), 2);
    }

    #[test]
    fn reordering_and_duplicates_inside_an_event() {
        let mut r = Rx::new();
        r.feed(0, 1000, 3, false, 320);
        r.feed(1, 1000, 3, false, 160); // late, shorter
        r.feed(2, 1000, 3, false, 320); // duplicate
        r.feed(40, 1000, 3, true, 800);
        r.feed(41, 1000, 3, false, 640); // straggler after the end
        assert_eq!(
            r.drain(),
            vec![
                (Started, 3, 1000, 320),
                (Ended(EndReason::EndBit), 3, 1000, 800)
            ]
        );
    }

    #[test]
    fn timeout_ends_and_later_packets_are_ignored() {
        let mut r = Rx::new();
        r.feed(0, 1000, 9, false, 160);
        assert_eq!(r.rx.poll_timeout(), Some(r.at(400)));
        r.rx.handle_timeout(r.at(399));
        assert!(r.rx.is_active());
        r.rx.handle_timeout(r.at(400));
        assert!(!r.rx.is_active());
        r.feed(500, 1000, 9, true, 4000);
        assert_eq!(
            r.drain(),
            vec![
                (Started, 9, 1000, 160),
                (Ended(EndReason::Timeout), 9, 1000, 160)
            ]
        );
    }

    #[test]
    fn only_end_packet_survives() {
        let mut r = Rx::new();
        r.feed(80, 1000, 11, true, 800);
        r.feed(100, 1000, 11, true, 800);
        assert_eq!(
            r.drain(),
            vec![
                (Started, 11, 1000, 800),
                (Ended(EndReason::EndBit), 11, 1000, 800)
            ]
        );
    }

    #[test]
    fn timestamp_wrap() {
        let mut r = Rx::new();
        let t0 = u32::MAX - 100;
        r.feed(0, t0, 1, false, 160);
        r.feed(20, t0, 1, true, 320);
        let t1 = t0.wrapping_add(2000);
        r.feed(300, t1, 2, false, 160);
        r.feed(320, t0, 1, true, 320); // straggler from before the wrap
        r.feed(340, t1, 2, true, 320);
        let ev = r.drain();
        assert_eq!(
            ev,
            vec![
                (Started, 1, t0, 160),
                (Ended(EndReason::EndBit), 1, t0, 320),
                (Started, 2, t1, 160),
                (Ended(EndReason::EndBit), 2, t1, 320),
            ]
        );
    }

    #[test]
    fn long_event_segments_are_one_event() {
        let mut r = Rx::new();
        let t0 = u32::MAX - 1000; // segments also cross the wrap
        // Arrival times only matter for the timeout; keep them close.
        r.feed(0, t0, 0, false, 160);
        r.feed(100, t0, 0, false, 0xFFFF);
        let t1 = t0.wrapping_add(0xFFFF);
        r.feed(101, t1, 0, false, 65);
        // A straggler of segment 0 after segment 1 started.
        r.feed(102, t0, 0, false, 65000);
        // Segment 2's packets are all lost; segment 3 continues.
        let t3 = t1.wrapping_add(2 * 0xFFFF);
        r.feed(300, t3, 0, false, 100);
        r.feed(400, t3, 0, true, 1000);
        r.feed(420, t3, 0, true, 1000);
        assert_eq!(
            r.drain(),
            vec![
                (Started, 0, t0, 160),
                (Ended(EndReason::EndBit), 0, t0, 3 * 0xFFFF + 1000)
            ]
        );
    }

    #[test]
    fn segment_jump_with_other_code_is_a_new_event() {
        let mut r = Rx::new();
        r.feed(0, 0, 1, false, 160);
        r.feed(20, 0xFFFF, 2, false, 160);
        let ev = r.drain();
        assert_eq!(ev.iter().filter(|e| e.0 == Started).count(), 2);
    }

    #[test]
    fn late_whole_event_is_reported_once_and_flagged() {
        let mut r = Rx::new();
        r.feed(0, 1000, 1, false, 160);
        r.feed(100, 3000, 3, false, 160);
        // Digit 2 (ts 2000) was delayed behind digit 3.
        r.feed(101, 2000, 2, true, 400);
        r.feed(102, 2000, 2, true, 400);
        let late: Vec<DtmfEvent> = std::iter::from_fn(|| r.rx.poll_event())
            .filter(|e| e.late)
            .collect();
        assert_eq!(late.len(), 2);
        assert_eq!(late[0].kind, Started);
        assert_eq!(late[1].kind, Ended(EndReason::EndBit));
        assert_eq!(late[0].event, EventCode(2));
        assert!(r.rx.is_active(), "digit 3 still in progress");
    }

    #[test]
    fn history_window_drops_forgotten_events() {
        let mut r = Rx::new();
        for i in 0..(HISTORY as u32 + 4) {
            r.feed(u64::from(i) * 100, 10_000 + i * 1000, 1, true, 400);
        }
        let n = r.drain().len();
        assert_eq!(n, 2 * (HISTORY + 4));
        // The first events are forgotten: their stragglers are stale, not new.
        r.feed(5000, 10_000, 1, true, 400);
        assert_eq!(r.drain(), vec![]);
        assert_eq!(r.rx.stats().stale, 1);
        // A remembered one is a duplicate.
        r.feed(5001, 10_000 + (HISTORY as u32 + 3) * 1000, 1, true, 400);
        assert_eq!(r.drain(), vec![]);
        assert_eq!(r.rx.stats().duplicates, 1);
    }

    #[test]
    fn ssrc_change_resets() {
        let mut r = Rx::new();
        r.feed_ssrc(0, 1, 1000, 4, false, 160);
        r.feed_ssrc(10, 2, 500, 4, false, 160);
        let ev: Vec<DtmfEvent> = std::iter::from_fn(|| r.rx.poll_event()).collect();
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[1].kind, Ended(EndReason::SourceChanged));
        assert_eq!(ev[1].ssrc, Ssrc(1));
        assert_eq!(ev[2].ssrc, Ssrc(2));
        assert_eq!(ev[2].kind, Started);
    }

    #[test]
    fn packed_events_in_one_packet() {
        let mut r = Rx::new();
        let a = TelephoneEvent {
            event: EventCode(1),
            end: true,
            volume: Volume::DEFAULT,
            duration: 800,
        };
        let b = TelephoneEvent {
            event: EventCode(2),
            end: false,
            volume: Volume::DEFAULT,
            duration: 160,
        };
        let mut payload = [0u8; 12];
        a.write(&mut payload[0..4]).unwrap();
        b.write(&mut payload[4..8]).unwrap();
        a.write(&mut payload[8..12]).unwrap(); // after a block without E: ignored
        r.rx.handle_payload(r.at(0), Ssrc(1), 5000, &payload)
            .unwrap();
        assert_eq!(
            r.drain(),
            vec![
                (Started, 1, 5000, 800),
                (Ended(EndReason::EndBit), 1, 5000, 800),
                (Started, 2, 5800, 160),
            ]
        );
        assert_eq!(r.rx.stats().ignored_blocks, 1);
    }

    #[test]
    fn one_call_fits_max_reports_per_call() {
        let pt = PayloadType::new(PT).unwrap();
        let cfg = DtmfReceiverConfig::new(pt);
        let mut r = Rx::new();
        r.rx = DtmfReceiver::with_output_capacity(cfg, MAX_REPORTS_PER_CALL);
        r.feed_ssrc(0, 1, 1000, 1, false, 160);
        assert_eq!(r.drain().len(), 1);
        // A new source (the event in progress ends) with a packet of more
        // packed, ended events than are looked at: each starts and ends.
        let mut payload = [0u8; 4 * (MAX_BLOCKS + 1)];
        for (i, c) in payload.chunks_exact_mut(4).enumerate() {
            TelephoneEvent {
                event: EventCode(i as u8),
                end: true,
                volume: Volume::DEFAULT,
                duration: 160,
            }
            .write(c)
            .unwrap();
        }
        r.rx.handle_payload(r.at(10), Ssrc(2), 9000, &payload)
            .unwrap();
        let ev = r.drain();
        assert_eq!(ev.len(), 1 + 2 * MAX_BLOCKS);
        assert!(ev.len() <= MAX_REPORTS_PER_CALL);
        assert_eq!(ev[0].0, Ended(EndReason::SourceChanged));
        assert_eq!(r.rx.stats().dropped_reports, 0);
        assert_eq!(r.rx.stats().ignored_blocks, 1);

        // A smaller queue keeps the newest reports and counts the rest.
        r.rx = DtmfReceiver::with_output_capacity(cfg, 0);
        r.rx.handle_payload(r.at(20), Ssrc(3), 500, &payload[..8])
            .unwrap();
        assert_eq!(r.drain(), vec![(Ended(EndReason::EndBit), 1, 660, 160)]);
        assert_eq!(r.rx.stats().dropped_reports, 3);
    }

    #[test]
    fn rejects_bad_input() {
        let mut r = Rx::new();
        assert_eq!(
            r.rx.handle_payload(r.at(0), Ssrc(1), 0, &[1, 2, 3]),
            Err(DtmfReceiveError::Payload(EventError::TooShort { len: 3 }))
        );
        let mut buf = [0u8; 16];
        let n = RtpHeader::new(PayloadType::PCMU, 0, 0, Ssrc(1))
            .write(&[0; 4], &mut buf)
            .unwrap();
        let p = RtpPacket::parse(&buf[..n]).unwrap();
        assert!(matches!(
            r.rx.handle_packet(r.at(0), &p),
            Err(DtmfReceiveError::PayloadType { .. })
        ));
        assert_eq!(r.rx.stats().packets, 0);
        assert_eq!(r.rx.poll_event(), None);
    }
}
