//! Fuzz the RTP packet view (RFC 3550 §5.1): parsing arbitrary bytes never
//! panics, and every accepted packet re-writes to the same bytes. Accepted
//! packets then drive the receive statistics (RFC 3550 A.1/A.3/A.8) on a
//! synthetic clock: the payload bytes, in pairs, choose the next packet's
//! sequence step and arrival delay, and the counters must stay consistent.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mediarelay::rtp::stats::{ClockRate, Outcome, ReceiveStats};
use mediarelay::rtp::{RtpHeader, RtpPacket, Ssrc};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = RtpPacket::parse(data) else {
        return;
    };
    assert!(p.header_len() + p.payload().len() + p.padding_len() == data.len());
    stats_replay(data, &p);
    let csrcs: Vec<Ssrc> = p.csrcs().collect();
    let mut h = RtpHeader::from(&p);
    h.csrcs = &csrcs;
    // Padding bytes other than the count are not preserved by the writer;
    // compare only when they are zero (the RFC 3550 §5.1 recommendation).
    let pad = &data[data.len() - p.padding_len()..];
    if pad.len() > 1 && pad[..pad.len() - 1].iter().any(|&b| b != 0) {
        return;
    }
    h.padding = p.padding_len() as u8;
    let mut out = vec![0u8; data.len()];
    let n = h
        .write(p.payload(), &mut out)
        .expect("a parsed packet re-writes");
    assert_eq!(&out[..n], data);
});

/// Replays `p` with fuzz-chosen sequence steps and arrival delays through
/// [`ReceiveStats`] and checks its invariants.
fn stats_replay(data: &[u8], p: &RtpPacket<'_>) {
    let rate = match p.payload_type().value() % 3 {
        0 => ClockRate::G711,
        1 => ClockRate::OPUS,
        _ => ClockRate::VIDEO,
    };
    let mut stats = ReceiveStats::new(p.ssrc(), rate);
    let t0 = Instant::now();
    stats.handle_packet(t0, p);
    let mut buf = data.to_vec();
    let mut seq = p.sequence();
    let mut ts = p.timestamp();
    let mut now = t0;
    for (i, pair) in p.payload().chunks_exact(2).take(512).enumerate() {
        let (step, delay) = (pair[0], pair[1]);
        // Mostly +1, sometimes a gap, a reorder or a jump.
        seq = seq.wrapping_add(match step {
            0..=191 => 1,
            192..=223 => u16::from(step - 190),
            224..=239 => (step as i8) as i16 as u16,
            _ => u16::from(step) * 97,
        });
        ts = ts.wrapping_add(u32::from(delay) * 40);
        now += Duration::from_micros(u64::from(delay) * 500);
        buf[2..4].copy_from_slice(&seq.to_be_bytes());
        buf[4..8].copy_from_slice(&ts.to_be_bytes());
        let q = RtpPacket::parse(&buf).expect("same layout as an accepted packet");
        let received = stats.received();
        let highest = stats.highest_seq();
        let outcome = stats.handle_packet(now, &q);
        match outcome {
            Outcome::Restarted(s) => {
                assert_eq!(stats.received(), 1);
                assert_eq!(s.wire(), seq);
            }
            Outcome::InOrder(s) => {
                assert_eq!(stats.received(), received + 1);
                assert_eq!(s.wire(), seq);
                assert!(highest.is_none_or(|h| s > h));
            }
            Outcome::Late(_) | Outcome::Duplicate(_) => {
                assert_eq!(stats.received(), received + 1);
                assert_eq!(stats.highest_seq(), highest);
            }
            Outcome::Probation | Outcome::Jump => assert_eq!(stats.received(), received),
            Outcome::ForeignSsrc => unreachable!("same SSRC"),
        }
        if i % 16 == 15 {
            if let Some(b) = stats.report_block(now) {
                let hi = stats.highest_seq().expect("a report needs a valid source");
                assert_eq!(b.highest_seq, hi.0 as u32);
                assert_eq!(
                    i64::from(b.cumulative_lost),
                    stats.cumulative_lost().clamp(-0x80_0000, 0x7f_ffff)
                );
            }
        }
    }
}
