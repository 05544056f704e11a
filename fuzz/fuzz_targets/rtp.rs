//! Fuzz the RTP packet view (RFC 3550 §5.1): parsing arbitrary bytes never
//! panics, and every accepted packet re-writes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediarelay::rtp::{RtpHeader, RtpPacket, Ssrc};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = RtpPacket::parse(data) else {
        return;
    };
    assert!(p.header_len() + p.payload().len() + p.padding_len() == data.len());
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
    let n = h.write(p.payload(), &mut out).expect("a parsed packet re-writes");
    assert_eq!(&out[..n], data);
});
