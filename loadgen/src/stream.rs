//! Per-stream receive accounting, sans-IO: each probe that arrives is fed
//! with its arrival time; [`StreamRx::report`] gives the loss taxonomy once
//! the run has drained.
//!
//! Definitions (each counted once per packet):
//! - **received**: distinct sequence numbers that arrived (first copies);
//! - **duplicates**: further copies of a sequence number already received;
//! - **reordered**: first copies arriving after a higher sequence number;
//! - **lost**: sent − received, evaluated after the drain window (a packet
//!   arriving after that is not seen at all);
//! - **late**: received, but more than `late_after` after its scheduled
//!   send time (a real-time receiver would have played concealment);
//! - **max gap** and **bursts**: the longest run of consecutive lost
//!   sequence numbers, and how many such runs there are;
//! - **jitter**: RFC 3550 §6.4.1 / A.8 interarrival jitter, with the
//!   actual send time standing in for the RTP timestamp (so generator lag
//!   is not charged to the relay), in nanoseconds.
//!
//! Sequence numbers are the probe's extended ones (64-bit, no 16-bit wrap);
//! a probe claiming more than [`MAX_SEQ`] is counted invalid, so a corrupt
//! or hostile packet cannot make the tracker allocate without bound.

use std::time::Duration;

use crate::probe::Probe;

/// Highest extended sequence number tracked (2^28: 62 days at 50 pps).
pub const MAX_SEQ: u64 = 1 << 28;

/// What one arrival was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// A sequence number seen for the first time, in order.
    New,
    /// A first copy arriving after a higher sequence number.
    Reordered,
    /// Another copy of one already received.
    Duplicate,
    /// Beyond [`MAX_SEQ`]: not counted.
    Invalid,
}

/// One stream's receive state.
#[derive(Debug, Clone)]
pub struct StreamRx {
    late_after_ns: u64,
    seen: Vec<u64>,
    highest: Option<u64>,
    received: u64,
    duplicates: u64,
    reordered: u64,
    late: u64,
    invalid: u64,
    /// RFC 3550 A.8 jitter estimate, ns (kept as f64 for the 1/16 gain).
    jitter_ns: f64,
    last_transit: Option<i128>,
}

/// A stream's figures after the run (or, summed with
/// [`add`](StreamReport::add), a run's).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct StreamReport {
    /// Packets the sender sent.
    pub sent: u64,
    /// Distinct packets received.
    pub received: u64,
    /// `sent − received` (0 if more arrived than the sender counted).
    pub lost: u64,
    /// Received more than `late_after` after their scheduled time.
    pub late: u64,
    /// Extra copies received.
    pub duplicates: u64,
    /// First copies that arrived after a higher sequence number.
    pub reordered: u64,
    /// Longest run of consecutive lost sequence numbers.
    pub max_gap: u64,
    /// Runs of consecutive lost sequence numbers.
    pub bursts: u64,
    /// Probes beyond [`MAX_SEQ`] (not counted anywhere else).
    pub invalid: u64,
    /// Interarrival jitter at the end of the run (RFC 3550 A.8).
    pub jitter: Duration,
}

impl StreamReport {
    /// Adds another stream's figures: counts summed, the longest gap and
    /// the highest jitter kept (a run's totals over its streams).
    pub fn add(&mut self, o: &StreamReport) {
        self.sent += o.sent;
        self.received += o.received;
        self.lost += o.lost;
        self.late += o.late;
        self.duplicates += o.duplicates;
        self.reordered += o.reordered;
        self.max_gap = self.max_gap.max(o.max_gap);
        self.bursts += o.bursts;
        self.invalid += o.invalid;
        self.jitter = self.jitter.max(o.jitter);
    }

    /// Lost share of sent, percent.
    pub fn loss_pct(&self) -> f64 {
        if self.sent == 0 {
            return 0.0;
        }
        self.lost as f64 * 100.0 / self.sent as f64
    }
}

impl StreamRx {
    /// A stream whose packets count as late `late_after` past their
    /// scheduled send time.
    pub fn new(late_after: Duration) -> StreamRx {
        StreamRx {
            late_after_ns: late_after.as_nanos().min(u128::from(u64::MAX)) as u64,
            seen: Vec::new(),
            highest: None,
            received: 0,
            duplicates: 0,
            reordered: 0,
            late: 0,
            invalid: 0,
            jitter_ns: 0.0,
            last_transit: None,
        }
    }

    /// Accounts for `probe`, arrived at `arrival_ns` (run clock).
    pub fn on_packet(&mut self, probe: &Probe, arrival_ns: u64) -> Arrival {
        let seq = probe.seq;
        if seq >= MAX_SEQ {
            self.invalid += 1;
            return Arrival::Invalid;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.seen.len() {
            self.seen.resize((word + 1).next_power_of_two(), 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return Arrival::Duplicate;
        }
        self.seen[word] |= 1 << bit;
        self.received += 1;
        if arrival_ns.saturating_sub(probe.scheduled_ns) > self.late_after_ns {
            self.late += 1;
        }
        // RFC 3550 A.8: D = (Rj − Ri) − (Sj − Si); J += (|D| − J) / 16.
        let transit = i128::from(arrival_ns) - i128::from(probe.sent_ns);
        if let Some(prev) = self.last_transit {
            let d = (transit - prev).unsigned_abs() as f64;
            self.jitter_ns += (d - self.jitter_ns) / 16.0;
        }
        self.last_transit = Some(transit);
        match self.highest {
            Some(h) if seq < h => {
                self.reordered += 1;
                Arrival::Reordered
            }
            _ => {
                self.highest = Some(seq);
                Arrival::New
            }
        }
    }

    /// Distinct packets received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The figures, given that the sender sent sequence numbers
    /// `0..sent`.
    pub fn report(&self, sent: u64) -> StreamReport {
        let (mut max_gap, mut bursts, mut run) = (0u64, 0u64, 0u64);
        for seq in 0..sent.min(MAX_SEQ) {
            let (word, bit) = ((seq / 64) as usize, seq % 64);
            let got = self.seen.get(word).is_some_and(|w| w & (1 << bit) != 0);
            if got {
                run = 0;
            } else {
                if run == 0 {
                    bursts += 1;
                }
                run += 1;
                max_gap = max_gap.max(run);
            }
        }
        StreamReport {
            sent,
            received: self.received,
            lost: sent.saturating_sub(self.received),
            late: self.late,
            duplicates: self.duplicates,
            reordered: self.reordered,
            max_gap,
            bursts,
            invalid: self.invalid,
            jitter: Duration::from_nanos(self.jitter_ns.round() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(seq: u64, t: u64) -> Probe {
        Probe {
            run: 1,
            stream: 0,
            seq,
            scheduled_ns: t,
            sent_ns: t,
        }
    }

    #[test]
    fn taxonomy() {
        let mut rx = StreamRx::new(Duration::from_millis(100));
        let ms = 1_000_000;
        // 0 1 3 2 2 5 (4, 7 never) 6 9 8; 9 and 8 arrive late.
        for (seq, arrival) in [
            (0, 0),
            (1, 20),
            (3, 60),
            (2, 61),
            (2, 62),
            (5, 100),
            (6, 120),
            (9, 400),
            (8, 401),
        ] {
            rx.on_packet(&probe(seq, seq * 20 * ms), arrival * ms);
        }
        assert_eq!(rx.on_packet(&probe(MAX_SEQ, 0), 0), Arrival::Invalid);
        let r = rx.report(11);
        assert_eq!(r.received, 8);
        assert_eq!(r.lost, 3); // 4, 7, 10
        assert_eq!(r.duplicates, 1);
        assert_eq!(r.reordered, 2); // 2 after 3, 8 after 9
        assert_eq!(r.late, 2); // 9 and 8: scheduled 180/160 ms, arrived 400/401 ms
        assert_eq!((r.max_gap, r.bursts), (1, 3));
        assert_eq!(r.invalid, 1);
        assert!(r.jitter > Duration::ZERO);
        assert!((r.loss_pct() - 300.0 / 11.0).abs() < 1e-9);
    }

    #[test]
    fn jitter_is_zero_for_a_perfect_stream_and_tracks_variation() {
        let mut rx = StreamRx::new(Duration::from_secs(1));
        for k in 0..100 {
            rx.on_packet(&probe(k, k * 20_000_000), k * 20_000_000 + 500_000);
        }
        assert_eq!(rx.report(100).jitter, Duration::ZERO);
        let mut rx = StreamRx::new(Duration::from_secs(1));
        for k in 0..2000u64 {
            // Transit alternates 1 ms / 3 ms: |D| = 2 ms, J converges to 2 ms.
            let extra = if k % 2 == 0 { 1_000_000 } else { 3_000_000 };
            rx.on_packet(&probe(k, k * 20_000_000), k * 20_000_000 + extra);
        }
        let j = rx.report(2000).jitter.as_secs_f64();
        assert!((j - 0.002).abs() < 1e-5, "{j}");
    }

    #[test]
    fn long_runs_need_no_wrap_handling() {
        let mut rx = StreamRx::new(Duration::from_secs(1));
        // Past 2^16 and 2^32/2^16 boundaries of an RTP sequence number.
        for seq in 65_530..65_545u64 {
            rx.on_packet(&probe(seq, 0), 0);
        }
        let r = rx.report(65_545);
        assert_eq!(r.received, 15);
        assert_eq!((r.lost, r.bursts, r.max_gap), (65_530, 1, 65_530));
    }
}
