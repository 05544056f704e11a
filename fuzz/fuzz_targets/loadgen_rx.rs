//! What the load generator takes from the network: datagrams relayed back
//! to its sockets (RTP header, then the probe, then the per-stream
//! accounting) and the SDP in a relay's NG reply. No panic, whatever the
//! bytes; accounting stays consistent.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use loadgen::probe::Probe;
use loadgen::relay::generator::rtp_payload;
use loadgen::stream::{Arrival, StreamRx};

fuzz_target!(|data: &[u8]| {
    let mut rx = StreamRx::new(Duration::from_millis(150));
    let (mut firsts, mut highest) = (0u64, 0u64);
    for (i, datagram) in data.chunks(64).enumerate() {
        let Some(probe) = rtp_payload(datagram).and_then(|p| Probe::read(p).ok()) else {
            continue;
        };
        if matches!(
            rx.on_packet(&probe, i as u64 * 1_000_000),
            Arrival::New | Arrival::Reordered
        ) {
            firsts += 1;
            highest = highest.max(probe.seq);
        }
    }
    assert_eq!(rx.received(), firsts);
    let sent = (highest + 1).min(1 << 16);
    let r = rx.report(sent);
    assert!(r.lost <= sent);
    assert!(r.max_gap <= sent);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = loadgen::ng::relay_address(text);
    }
});
