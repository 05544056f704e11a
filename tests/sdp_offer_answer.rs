//! RFC 3264 offer/answer against the hand-made pairs in
//! `tests/data/sdp/offer-answer/` (see its README): our answer to each
//! offer, built from capabilities describing the fixture's answerer, must
//! agree with the fixture answer on m-line count, order, accepted/rejected
//! streams, formats, direction and (for the re-offers) o= versions.

use std::path::Path;

use mediarelay::rtp::PayloadType;
use mediarelay::sdp::{
    Codec, Direction, LocalIdentity, MediaCapabilities, MediaKind, Negotiator, Outcome,
    ParseLimits, Rejection, Sdp, TelephoneEvents, answer_offer,
};

fn pt(v: u8) -> PayloadType {
    PayloadType::new(v).unwrap()
}

fn load(rel: &str) -> Option<Sdp> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/sdp")
        .join(rel);
    let bytes = std::fs::read(p).ok()?;
    Some(Sdp::parse(&bytes).unwrap())
}

/// `(port != 0, formats)` per m-line.
fn shape(sdp: &Sdp) -> Vec<(bool, Vec<String>)> {
    sdp.media()
        .iter()
        .map(|m| (!m.is_disabled(), m.formats().to_vec()))
        .collect()
}

fn directions(sdp: &Sdp) -> Vec<Direction> {
    (0..sdp.media().len())
        .filter(|&i| !sdp.media()[i].is_disabled())
        .map(|i| sdp.media_direction(i))
        .collect()
}

/// The Asterisk PBX of the pbx-to-phone / hold / resume pairs.
fn asterisk() -> (LocalIdentity, Vec<MediaCapabilities>) {
    let mut id = LocalIdentity::new(1893612077, "203.0.113.10".parse().unwrap());
    id.session_name = "Asterisk".into();
    let mut audio = MediaCapabilities::audio(17828)
        .with_codec(Codec::new("G722", 8000, pt(9)))
        .with_codec(Codec::pcmu())
        .with_codec(Codec::pcma())
        .with_telephone_event(pt(101), TelephoneEvents::range(0, 16));
    audio.ptime = Some(20);
    (id, vec![audio])
}

/// The Poly VVX phone (fixture 01's capabilities).
fn poly() -> (LocalIdentity, Vec<MediaCapabilities>) {
    let mut id = LocalIdentity::new(1712350001, "10.20.30.41".parse().unwrap());
    id.session_name = "Polycom IP Phone".into();
    let audio = MediaCapabilities::audio(2222)
        .with_codec(Codec::new("opus", 48000, pt(96)).with_channels(2))
        .with_codec(Codec::new("G722", 8000, pt(9)))
        .with_codec(Codec::pcmu())
        .with_codec(Codec::pcma())
        .with_codec(Codec::new("G729", 8000, pt(18)))
        .with_telephone_event(pt(127), TelephoneEvents::DTMF);
    (id, vec![audio])
}

#[test]
fn pbx_to_phone_answer_matches_fixture() {
    let (Some(offer), Some(expected)) = (
        load("offer-answer/pbx-to-phone.offer.sdp"),
        load("offer-answer/pbx-to-phone.answer.sdp"),
    ) else {
        return;
    };
    let (id, caps) = poly();
    let a = answer_offer(&offer, &id, &caps).unwrap();
    assert_eq!(shape(&a.sdp), shape(&expected));
    assert_eq!(directions(&a.sdp), directions(&expected));
    let te = a.sdp.media()[0].section().fmtp("101").unwrap();
    assert_eq!(
        te.params,
        expected.media()[0].section().fmtp("101").unwrap().params
    );
    let m = &a.negotiated.media[0];
    assert_eq!(a.negotiated.outcome, Outcome::Accepted);
    assert_eq!(
        (m.telephone_events[0].local, m.telephone_events[0].remote),
        (pt(127), pt(101))
    );
    assert_eq!(m.remote.port, 17828);
}

#[test]
fn pbx_session_offer_hold_resume_versions_match_fixtures() {
    let files = [
        "offer-answer/pbx-to-phone.offer.sdp",
        "offer-answer/pbx-to-phone.answer.sdp",
        "offer-answer/hold-sendonly.offer.sdp",
        "offer-answer/hold-sendonly.answer.sdp",
        "offer-answer/resume.offer.sdp",
        "offer-answer/resume.answer.sdp",
    ];
    let Some(sdps) = files.iter().map(|f| load(f)).collect::<Option<Vec<_>>>() else {
        return;
    };
    let [
        our_offer_fx,
        their_answer,
        hold,
        hold_answer_fx,
        resume,
        resume_answer_fx,
    ] = &sdps[..]
    else {
        unreachable!()
    };
    let (id, caps) = asterisk();
    let mut n = Negotiator::new(id);
    let offer = n.create_offer(&caps).unwrap();
    assert_eq!(shape(&offer), shape(our_offer_fx));
    assert_eq!(
        offer.origin().unwrap().session_version,
        our_offer_fx.origin().unwrap().session_version
    );
    let res = n.handle_answer(their_answer).unwrap();
    assert_eq!(res.outcome, Outcome::Accepted);
    let pts: Vec<_> = res.media[0]
        .codecs
        .iter()
        .map(|c| (c.local, c.remote))
        .collect();
    assert_eq!(pts, vec![(pt(9), pt(9)), (pt(0), pt(0)), (pt(8), pt(8))]);
    assert_eq!(res.media[0].telephone_events.len(), 1);

    // Hold: session-level sendonly answered recvonly, G.729 not taken, version +1.
    let a = n.handle_offer(hold, &caps).unwrap();
    assert_eq!(shape(&a.sdp), shape(hold_answer_fx));
    assert_eq!(directions(&a.sdp), vec![Direction::RecvOnly]);
    assert_eq!(directions(&a.sdp), directions(hold_answer_fx));
    assert_eq!(a.sdp.origin(), hold_answer_fx.origin());
    // Resume: sendrecv again, version +1 again.
    let a = n.handle_offer(resume, &caps).unwrap();
    assert_eq!(shape(&a.sdp), shape(resume_answer_fx));
    assert_eq!(directions(&a.sdp), vec![Direction::SendRecv]);
    assert_eq!(
        a.sdp.origin().unwrap().session_version,
        resume_answer_fx.origin().unwrap().session_version
    );
    // A session refresh (same offer again) keeps the version.
    let again = n.handle_offer(resume, &caps).unwrap();
    assert_eq!(again.sdp.origin(), a.sdp.origin());
}

#[test]
fn video_rejected_and_no_common_codec_match_fixtures() {
    if let (Some(offer), Some(expected)) = (
        load("offer-answer/video-rejected.offer.sdp"),
        load("offer-answer/video-rejected.answer.sdp"),
    ) {
        let id = LocalIdentity::new(50213, "198.51.100.100".parse().unwrap());
        let mut audio = MediaCapabilities::audio(8000).with_codec(Codec::pcma());
        audio.ptime = Some(20);
        let a = answer_offer(&offer, &id, &[audio]).unwrap();
        assert_eq!(shape(&a.sdp), shape(&expected));
        assert_eq!(a.negotiated.outcome, Outcome::Partial);
        assert_eq!(
            a.negotiated.media[1].rejection,
            Some(Rejection::UnsupportedMedia)
        );
        assert!(a.negotiated.media[0].telephone_events.is_empty());
    }
    if let (Some(offer), Some(expected)) = (
        load("offer-answer/no-common-codec.offer.sdp"),
        load("offer-answer/no-common-codec.answer.sdp"),
    ) {
        let id = LocalIdentity::new(733162, "10.0.12.8".parse().unwrap());
        let audio = MediaCapabilities::audio(9000)
            .with_codec(Codec::pcma())
            .with_telephone_event(pt(101), TelephoneEvents::DTMF);
        let mut video =
            MediaCapabilities::audio(9002).with_codec(Codec::new("H264", 90000, pt(96)));
        video.kind = MediaKind::Video;
        let a = answer_offer(&offer, &id, &[audio, video]).unwrap();
        assert_eq!(shape(&a.sdp), shape(&expected));
        assert_eq!(a.negotiated.outcome, Outcome::Rejected);
        assert!(
            a.negotiated
                .media
                .iter()
                .all(|m| m.rejection == Some(Rejection::NoCommonCodec))
        );
    }
}

#[test]
fn srtp_and_t38_are_rejected_with_count_and_order_kept() {
    let (id, caps) = asterisk();
    if let Some(offer) = load("offer-answer/srtp-sdes.offer.sdp") {
        let a = answer_offer(&offer, &id, &caps).unwrap();
        assert_eq!(
            a.negotiated.media[0].rejection,
            Some(Rejection::UnsupportedProto)
        );
        assert_eq!(a.sdp.media()[0].media_line().proto, "RTP/SAVP");
        assert!(a.sdp.media()[0].is_disabled());
    }
    if let Some(offer) = load("offer-answer/t38-switch.offer.sdp") {
        let a = answer_offer(&offer, &id, &caps).unwrap();
        let kinds: Vec<_> = a.sdp.media().iter().map(|m| m.kind()).collect();
        assert_eq!(kinds, vec![MediaKind::Audio, MediaKind::Image]);
        assert_eq!(a.negotiated.media[0].rejection, Some(Rejection::Disabled));
        assert_eq!(
            a.negotiated.media[1].rejection,
            Some(Rejection::UnsupportedMedia)
        );
        assert_eq!(a.sdp.media()[1].formats(), ["t38"]);
    }
}

#[test]
fn rfc2543_hold_with_zero_address_is_answered_recvonly() {
    let (Some(call), Some(hold)) = (
        load("24-cisco-cube-silencesupp-xcap-offer.sdp"),
        load("25-cisco-ios-hold-c-zero.sdp"),
    ) else {
        return;
    };
    let (_, caps) = asterisk();
    let mut caps = caps;
    caps[0] = caps[0].clone().with_codec(Codec::new("G729", 8000, pt(18)));
    let mut n = Negotiator::new(LocalIdentity::new(1, "192.0.2.1".parse().unwrap()));
    let a = n.handle_offer(&call, &caps).unwrap();
    assert_eq!(a.negotiated.media[0].direction, Direction::SendRecv);
    let a = n.handle_offer(&hold, &caps).unwrap();
    assert!(a.negotiated.media[0].remote.is_hold_address());
    assert_eq!(a.negotiated.media[0].direction, Direction::RecvOnly);
    assert_eq!(a.sdp.origin().unwrap().session_version, 2);
}

#[test]
fn every_fixture_can_be_answered() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sdp");
    let Ok(entries) = std::fs::read_dir(&root) else {
        return;
    };
    let id = LocalIdentity::new(1, "192.0.2.1".parse().unwrap());
    let (_, mut caps) = poly();
    let mut video = MediaCapabilities::audio(2224)
        .with_codec(Codec::new("H264", 90000, pt(109)))
        .with_codec(Codec::new("VP8", 90000, pt(120)));
    video.kind = MediaKind::Video;
    video.protos = vec![
        "RTP/AVP".into(),
        "RTP/AVPF".into(),
        "UDP/TLS/RTP/SAVPF".into(),
    ];
    caps.push(caps[0].clone());
    caps[1].port = 2226;
    caps.push(video);
    let mut accepted_streams = 0;
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_none_or(|x| x != "sdp") {
            continue;
        }
        let offer = Sdp::parse(&std::fs::read(&p).unwrap()).unwrap();
        let a = answer_offer(&offer, &id, &caps).unwrap();
        let back = Sdp::parse_with_limits(&a.sdp.to_bytes(), &ParseLimits::default()).unwrap();
        assert_eq!(back.media().len(), offer.media().len(), "{}", p.display());
        for (i, (m, o)) in back.media().iter().zip(offer.media()).enumerate() {
            assert_eq!(
                m.media_line().media,
                o.media_line().media,
                "{} m{i}",
                p.display()
            );
            let accepted = a.negotiated.media[i].is_accepted();
            accepted_streams += usize::from(accepted);
            assert_eq!(accepted, !m.is_disabled(), "{} m{i}", p.display());
            if !accepted {
                assert_eq!(m.formats(), o.formats(), "{} m{i}", p.display());
            }
            // Accepted formats are a subset of the offered ones (offer PTs).
            assert!(
                m.formats().iter().all(|f| o.formats().contains(f)),
                "{} m{i}",
                p.display()
            );
        }
    }
    assert!(
        accepted_streams >= 20,
        "only {accepted_streams} streams accepted"
    );
}
