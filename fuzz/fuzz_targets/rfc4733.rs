//! Fuzz the RFC 4733 telephone-event payload and receiver.
//!
//! Input: a sequence of chunks `[len: u8][dt: u8][len bytes]`, each an RTP
//! packet arriving `dt * 4` ms after the previous one on a synthetic clock.
//! Checks: nothing panics; every 4-byte block round-trips through
//! decode/encode (with the reserved R bit cleared); the receiver's reports
//! are consistent: at most one event open at a time, every `Ended` closes the
//! open event with a duration no shorter than at its `Started`, late events
//! come as an adjacent `Started`/`Ended` pair.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mediarelay::dtmf::{
    DtmfEvent, DtmfReceiver, DtmfReceiverConfig, EventKind, TelephoneEvent, blocks,
};
use mediarelay::rtp::{PayloadType, RtpPacket};

fn check_reports(
    rx: &mut DtmfReceiver,
    open: &mut Option<DtmfEvent>,
    late: &mut Option<DtmfEvent>,
) {
    while let Some(e) = rx.poll_event() {
        if e.late {
            match (e.kind, late.take()) {
                (EventKind::Started, None) => *late = Some(e),
                (EventKind::Ended(_), Some(s)) => {
                    assert_eq!(
                        (s.timestamp, s.ssrc, s.event),
                        (e.timestamp, e.ssrc, e.event)
                    );
                }
                other => panic!("late reports out of pairs: {other:?}"),
            }
            continue;
        }
        assert!(late.is_none(), "late Started without its Ended");
        match e.kind {
            EventKind::Started => {
                assert!(open.is_none(), "two events open: {open:?} and {e:?}");
                *open = Some(e);
            }
            EventKind::Ended(_) => {
                let s = open.take().expect("Ended without Started");
                assert_eq!(
                    (s.timestamp, s.ssrc, s.event),
                    (e.timestamp, e.ssrc, e.event)
                );
                assert!(e.duration >= s.duration);
            }
        }
    }
    assert_eq!(open.is_some(), rx.is_active());
}

fuzz_target!(|data: &[u8]| {
    let pt = PayloadType::new(101).expect("7-bit payload type");
    let mut rx = DtmfReceiver::new(DtmfReceiverConfig::new(pt));
    let base = Instant::now();
    let mut ms = 0u64;
    let mut open = None;
    let mut late = None;
    let mut rest = data;
    while let [len, dt, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (chunk, next) = tail.split_at(n);
        rest = next;
        ms += u64::from(*dt) * 4;
        let now = base + Duration::from_millis(ms);

        for b in blocks(chunk) {
            let bytes = b.to_bytes();
            assert_eq!(TelephoneEvent::from_bytes(bytes), b);
        }
        if let Ok(ev) = TelephoneEvent::parse(chunk) {
            let mut expect = [chunk[0], chunk[1] & !0x40, chunk[2], chunk[3]];
            assert_eq!(ev.to_bytes(), expect);
            expect[1] |= 0x40; // R set on input reads the same
            assert_eq!(TelephoneEvent::from_bytes(expect), ev);
        }

        rx.handle_timeout(now);
        if let Ok(p) = RtpPacket::parse(chunk) {
            let _ = rx.handle_packet(now, &p);
        }
        check_reports(&mut rx, &mut open, &mut late);
        if let Some(t) = rx.poll_timeout() {
            assert!(t >= base);
        }
    }
    rx.handle_timeout(base + Duration::from_millis(ms) + Duration::from_secs(3600));
    check_reports(&mut rx, &mut open, &mut late);
    assert!(open.is_none() && late.is_none() && !rx.is_active());
});
