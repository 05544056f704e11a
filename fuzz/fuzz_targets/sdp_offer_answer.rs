//! Fuzz RFC 3264 answering: the first two bytes choose local capabilities,
//! the rest is the offer. Answering never panics or fails for valid local
//! capabilities; the answer re-parses and has exactly one m-line per offered
//! one, rejected ones at port 0 with the offered formats (RFC 3264 §6).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediarelay::rtp::PayloadType;
use mediarelay::sdp::{
    Codec, Direction, LocalIdentity, MediaCapabilities, MediaKind, Negotiator, Outcome,
    ParseLimits, Sdp, TelephoneEvents,
};

fn pt(v: u8) -> PayloadType {
    PayloadType::new(v).unwrap_or(PayloadType::PCMU)
}

fn caps(a: u8, b: u8) -> Vec<MediaCapabilities> {
    let mut audio = MediaCapabilities::audio(10000);
    if a & 1 != 0 {
        audio = audio.with_codec(Codec::pcmu());
    }
    if a & 2 != 0 {
        audio = audio.with_codec(Codec::pcma());
    }
    if a & 4 != 0 {
        audio = audio.with_codec(Codec::new("G729", 8000, pt(18)));
    }
    if a & 8 != 0 {
        audio = audio.with_codec(Codec::new("opus", 48000, pt(96)).with_channels(2));
    }
    if a & 16 != 0 {
        audio = audio.with_telephone_event(pt(101), TelephoneEvents::range(0, b & 31));
    }
    audio.direction = Direction::ALL[usize::from(b >> 6)];
    audio.ptime = (b & 32 != 0).then_some(20);
    audio.rtcp_mux = a & 32 != 0;
    audio.protos.push("RTP/AVPF".into());
    let mut out = vec![audio.clone()];
    if a & 64 != 0 {
        let mut second = audio;
        second.port = 10002;
        out.push(second);
    }
    if a & 128 != 0 {
        let mut video = MediaCapabilities::audio(10004).with_codec(Codec::new("H264", 90000, pt(97)));
        video.kind = MediaKind::Video;
        out.push(video);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [a, b, offer @ ..] = data else {
        return;
    };
    let Ok(offer) = Sdp::parse(offer) else {
        return;
    };
    let caps = caps(*a, *b);
    let mut n = Negotiator::new(LocalIdentity::new(77, "192.0.2.1".parse().unwrap()));
    let answer = n.handle_offer(&offer, &caps).expect("valid local capabilities always answer");
    let back = Sdp::parse_with_limits(&answer.sdp.to_bytes(), &ParseLimits::UNLIMITED)
        .expect("answer re-parses");
    assert_eq!(back.media().len(), offer.media().len());
    assert_eq!(answer.negotiated.media.len(), offer.media().len());
    let mut accepted = 0;
    for (i, (m, o)) in back.media().iter().zip(offer.media()).enumerate() {
        let res = &answer.negotiated.media[i];
        if res.is_accepted() {
            accepted += 1;
            assert!(!m.is_disabled());
            assert!(!res.codecs.is_empty());
            assert!(m.formats().iter().all(|f| o.formats().contains(f)));
        } else {
            assert!(m.is_disabled());
        }
    }
    if accepted == 0 {
        assert_eq!(answer.negotiated.outcome, Outcome::Rejected);
    }
    // Same offer again: same answer, same version (RFC 3264 §8).
    let again = n.handle_offer(&offer, &caps).expect("answers again");
    assert_eq!(again.sdp, answer.sdp);
    // A re-offer from us bumps the version by exactly one.
    let before = n.identity().session_version;
    let reoffer = n.create_offer(&caps).expect("offer builds");
    assert_eq!(reoffer.origin().map(|o| o.session_version), Some(before + 1));
});
