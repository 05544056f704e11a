//! RFC 4733 telephone-events: the payload, a sender and a receiver.
//!
//! - [`event`]: the 4-byte payload (RFC 4733 §2.3) and the DTMF key codes
//!   (§3.2).
//! - [`sender`]: a sans-IO state machine that turns queued tones into RTP
//!   packets (§2.5.1), sharing an [`crate::rtp::source::RtpSource`] with the
//!   audio of the stream.
//! - [`receiver`]: a sans-IO state machine that reports every event exactly
//!   once despite loss, duplication, reordering and the redundant end
//!   packets (§2.5.2).
//!
//! Everything here is sans-IO: time enters as `now: Instant`, packets as
//! bytes. Deviations from the RFC and the choices it leaves open are listed
//! in `docs/dtmf.md`.

pub mod event;
pub mod receiver;
pub mod sender;

pub use event::{DtmfDigit, EVENT_LEN, EventCode, EventError, TelephoneEvent, Volume, blocks};
pub use receiver::{
    DtmfEvent, DtmfReceiveError, DtmfReceiver, DtmfReceiverConfig, EndReason, EventKind,
    MAX_REPORTS_PER_CALL, ReceiverStats,
};
pub use sender::{DtmfSendError, DtmfSender, DtmfSenderConfig, SEGMENT_MAX};

/// Deterministic simulations: sender -> lossy, duplicating, reordering
/// network -> receiver, on a virtual clock.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::source::{RtpSource, SourceConfig};
    use crate::rtp::{PayloadType, RtpPacket, Ssrc};
    use proptest::prelude::*;
    use std::time::{Duration, Instant};

    const PT: u8 = 101;

    /// One packet on the wire.
    #[derive(Debug, Clone)]
    struct Wire {
        sent_ms: u64,
        bytes: Vec<u8>,
        ts: u32,
        end: bool,
    }

    /// SplitMix64: a tiny deterministic generator for the network model.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
    }

    struct Setup {
        ts0: u32,
        seq0: u16,
        tone: Duration,
    }

    impl Default for Setup {
        fn default() -> Self {
            Setup {
                ts0: 0x1000,
                seq0: 100,
                tone: Duration::from_millis(100),
            }
        }
    }

    /// Runs the sender for `digits` on a 1 ms virtual clock.
    fn send(base: Instant, setup: &Setup, digits: &[DtmfDigit]) -> Vec<Wire> {
        let cfg = SourceConfig::new(
            Ssrc(0xabcd),
            setup.seq0,
            setup.ts0,
            8000,
            Duration::from_millis(20),
        );
        let src = RtpSource::new(cfg, base).unwrap();
        let mut tx = DtmfSender::new(src, DtmfSenderConfig::new(PayloadType::new(PT).unwrap()));
        for &d in digits {
            tx.queue(d, setup.tone, Volume::DEFAULT).unwrap();
        }
        let mut out = Vec::new();
        let mut buf = [0u8; 64];
        let mut ms = 0;
        while let Some(next) = tx.poll_timeout() {
            ms = ms.max(next.saturating_duration_since(base).as_millis() as u64);
            let now = base + Duration::from_millis(ms);
            while let Some(n) = tx.poll_transmit(now, &mut buf).unwrap() {
                let p = RtpPacket::parse(&buf[..n]).unwrap();
                let ev = TelephoneEvent::parse(p.payload()).unwrap();
                out.push(Wire {
                    sent_ms: ms,
                    bytes: buf[..n].to_vec(),
                    ts: p.timestamp(),
                    end: ev.end,
                });
            }
            ms += 1;
        }
        out
    }

    /// Delivers `(arrival_ms, packet)` to a receiver on a 1 ms clock and
    /// returns every report once the last event timed out.
    fn receive(base: Instant, mut arrivals: Vec<(u64, Wire)>) -> Vec<DtmfEvent> {
        arrivals.sort_by_key(|(at, _)| *at); // stable: ties keep send order
        let mut rx = DtmfReceiver::new(DtmfReceiverConfig::new(PayloadType::new(PT).unwrap()));
        let mut reports = Vec::new();
        let last = arrivals.last().map_or(0, |(at, _)| *at) + 1000;
        let mut next = 0;
        for ms in 0..=last {
            let now = base + Duration::from_millis(ms);
            rx.handle_timeout(now);
            while next < arrivals.len() && arrivals[next].0 == ms {
                let p = RtpPacket::parse(&arrivals[next].1.bytes).unwrap();
                rx.handle_packet(now, &p).unwrap();
                next += 1;
            }
            reports.extend(std::iter::from_fn(|| rx.poll_event()));
        }
        assert!(!rx.is_active());
        reports
    }

    /// The keys of the reports of one kind, in report order.
    fn keys(reports: &[DtmfEvent], started: bool) -> String {
        reports
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Started) == started)
            .map(|e| e.event.digit().map_or('?', DtmfDigit::as_char))
            .collect()
    }

    /// The keys of one kind, sorted by timestamp relative to `ts0`.
    fn keys_by_time(reports: &[DtmfEvent], started: bool, ts0: u32) -> String {
        let mut v: Vec<_> = reports
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Started) == started)
            .collect();
        v.sort_by_key(|e| e.timestamp.wrapping_sub(ts0));
        v.iter()
            .map(|e| e.event.digit().map_or('?', DtmfDigit::as_char))
            .collect()
    }

    fn digits(s: &str) -> Vec<DtmfDigit> {
        s.chars()
            .map(|c| DtmfDigit::from_char(c).unwrap())
            .collect()
    }

    #[test]
    fn clean_network_exact_durations() {
        let base = Instant::now();
        let setup = Setup::default();
        let wire = send(base, &setup, &digits("123#"));
        let arrivals = wire.into_iter().map(|w| (w.sent_ms + 30, w)).collect();
        let rep = receive(base, arrivals);
        assert_eq!(keys(&rep, true), "123#");
        assert_eq!(keys(&rep, false), "123#");
        for e in rep.iter().filter(|e| e.kind != EventKind::Started) {
            assert_eq!(e.kind, EventKind::Ended(EndReason::EndBit));
            assert_eq!(e.duration, 800);
            assert!(!e.late);
        }
    }

    #[test]
    fn netem_loss_duplication_reordering() {
        let base = Instant::now();
        let setup = Setup {
            ts0: u32::MAX - 3000, // the timestamp wraps mid-string
            seq0: 65530,          // and so does the sequence number
            ..Setup::default()
        };
        let sent = "0123456789*#ABCD5555";
        let wire = send(base, &setup, &digits(sent));
        for seed in 0..200u64 {
            let mut rng = Rng(seed);
            let mut arrivals = Vec::new();
            // Per digit (= timestamp), keep at least one packet.
            let mut kept_per_ts = std::collections::HashMap::<u32, usize>::new();
            for w in &wire {
                *kept_per_ts.entry(w.ts).or_default() += 0;
            }
            let mut last_of_ts = std::collections::HashMap::new();
            for (i, w) in wire.iter().enumerate() {
                last_of_ts.insert(w.ts, i);
            }
            for (i, w) in wire.iter().enumerate() {
                let lost = rng.chance(30);
                let must_keep = last_of_ts[&w.ts] == i && kept_per_ts[&w.ts] == 0;
                if lost && !must_keep {
                    continue;
                }
                *kept_per_ts.entry(w.ts).or_default() += 1;
                let jitter = rng.next() % 50;
                arrivals.push((w.sent_ms + 10 + jitter, w.clone()));
                if rng.chance(10) {
                    arrivals.push((w.sent_ms + 10 + rng.next() % 80, w.clone()));
                }
            }
            let rep = receive(base, arrivals);
            assert_eq!(keys_by_time(&rep, true, setup.ts0), sent, "seed {seed}");
            assert_eq!(keys_by_time(&rep, false, setup.ts0), sent, "seed {seed}");
            let started: Vec<_> = rep
                .iter()
                .filter(|e| e.kind == EventKind::Started)
                .collect();
            let ended: Vec<_> = rep
                .iter()
                .filter(|e| e.kind != EventKind::Started)
                .collect();
            assert_eq!(started.len(), sent.len());
            assert_eq!(ended.len(), sent.len());
        }
    }

    #[test]
    fn all_end_packets_lost_next_digit_starts() {
        let base = Instant::now();
        let setup = Setup::default();
        let wire = send(base, &setup, &digits("47"));
        let ts_of_4 = wire[0].ts;
        let arrivals = wire
            .into_iter()
            .filter(|w| !(w.ts == ts_of_4 && w.end))
            .map(|w| (w.sent_ms + 5, w))
            .collect();
        let rep = receive(base, arrivals);
        assert_eq!(keys(&rep, true), "47");
        assert_eq!(keys(&rep, false), "47");
        let end4 = rep
            .iter()
            .find(|e| e.event == EventCode(4) && e.kind != EventKind::Started)
            .unwrap();
        assert_eq!(end4.kind, EventKind::Ended(EndReason::Superseded));
        assert_eq!(end4.duration, 640, "last update seen before the end");
    }

    #[test]
    fn long_event_split_at_0xffff() {
        let base = Instant::now();
        let setup = Setup {
            ts0: u32::MAX - 10,
            tone: Duration::from_secs(20), // 160000 units: three segments
            ..Setup::default()
        };
        let wire = send(base, &setup, &digits("9*"));
        let ts9 = wire[0].ts;
        let segments: std::collections::BTreeSet<u32> = wire
            .iter()
            .filter(|w| w.bytes[12] == 9)
            .map(|w| w.ts.wrapping_sub(ts9))
            .collect();
        assert_eq!(
            segments.into_iter().collect::<Vec<_>>(),
            vec![0, 0xFFFF, 2 * 0xFFFF]
        );
        // Lose every segment-end packet (duration 0xFFFF, E clear).
        let arrivals = wire
            .into_iter()
            .filter(|w| {
                let ev = TelephoneEvent::parse(&w.bytes[12..]).unwrap();
                ev.duration != 0xFFFF
            })
            .map(|w| (w.sent_ms + 20, w))
            .collect();
        let rep = receive(base, arrivals);
        assert_eq!(keys(&rep, true), "9*");
        assert_eq!(keys(&rep, false), "9*");
        let end9 = rep
            .iter()
            .find(|e| e.event == EventCode(9) && e.kind != EventKind::Started)
            .unwrap();
        assert_eq!(end9.kind, EventKind::Ended(EndReason::EndBit));
        assert_eq!(end9.duration, 160_000);
        assert_eq!(end9.timestamp, u32::MAX - 10);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Random keys, random loss keeping >= 1 packet per key, no
        /// reordering: the receiver reports exactly the sent string, in
        /// order, once as Started and once as Ended.
        #[test]
        fn exactly_the_sent_string(
            s in "[0-9*#A-D]{1,12}",
            loss in proptest::collection::vec(0u8..100, 0..256),
            loss_pct in 0u8..95,
            keep_pick in any::<u64>(),
        ) {
            let base = Instant::now();
            let wire = send(base, &Setup::default(), &digits(&s));
            // Group packets by digit (timestamp), in order.
            let mut groups: Vec<Vec<usize>> = Vec::new();
            for (i, w) in wire.iter().enumerate() {
                match groups.last_mut() {
                    Some(g) if wire[g[0]].ts == w.ts => g.push(i),
                    _ => groups.push(vec![i]),
                }
            }
            prop_assert_eq!(groups.len(), s.len());
            let mut keep = vec![true; wire.len()];
            for (i, k) in keep.iter_mut().enumerate() {
                *k = loss.get(i).is_none_or(|&l| l >= loss_pct);
            }
            for g in &groups {
                if g.iter().all(|&i| !keep[i]) {
                    keep[g[(keep_pick as usize) % g.len()]] = true;
                }
            }
            let arrivals = wire
                .into_iter()
                .zip(keep)
                .filter(|(_, k)| *k)
                .map(|(w, _)| (w.sent_ms + 15, w))
                .collect();
            let rep = receive(base, arrivals);
            prop_assert_eq!(keys(&rep, true), s.clone());
            prop_assert_eq!(keys(&rep, false), s);
            prop_assert!(rep.iter().all(|e| !e.late));
        }
    }
}
