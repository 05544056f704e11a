//! Answering an offer (RFC 3264 §6), sans-IO.
//!
//! Rules implemented:
//! - every offered `m=` is answered, same order and count; a rejected one
//!   gets port 0 and keeps the offered format list (§6);
//! - codecs match by encoding name (case-insensitive), clock rate and
//!   channels, never by payload-type number; static payload types match
//!   through the RFC 3551 table without `rtpmap`; the answer uses the
//!   offer's numbers (§6.1) and lists codecs in the offer's order (the
//!   §6.1 recommendation); the [`PtMapping`]s relate them to ours;
//! - telephone-event is kept only if both sides support it, at the offer's
//!   payload type, for clock rates of accepted codecs, with the events
//!   intersected (RFC 4733 §2.4.1, default `0-15`);
//! - ptime: ours when set, else the offer's;
//! - direction: [`Direction::answer`] (§6.1); a `c=0.0.0.0` offer counts as
//!   not receiving (§8.4);
//! - rtcp-mux only when offered and supported (RFC 5761 §5.1.1).

use super::capability::{LocalIdentity, MediaCapabilities};
use super::direction::Direction;
use super::error::NegotiationError;
use super::media::{MediaKind, MediaSection};
use super::outcome::{MediaOutcome, Negotiated, PtMapping, Rejection, RemoteMedia};
use super::session::Sdp;
use super::telephone_event::TelephoneEvents;
use super::writer::{Block, Format, Writer};

/// An answer: the SDP to send and what was negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The answer body.
    pub sdp: Sdp,
    /// Per-stream results and the overall outcome.
    pub negotiated: Negotiated,
}

/// Answers `offer` with `identity`'s `o=` (its `session_version` as is),
/// matching each offered stream with the first unused `caps` entry of the
/// same media kind that accepts its proto and shares a codec.
pub fn answer_offer(
    offer: &Sdp,
    identity: &LocalIdentity,
    caps: &[MediaCapabilities],
) -> Result<Answer, NegotiationError> {
    identity.check()?;
    for c in caps {
        c.check()?;
    }
    let mut used = vec![false; caps.len()];
    let mut w = Writer::new(identity);
    let mut media = Vec::with_capacity(offer.media().len());
    for (i, m) in offer.media().iter().enumerate() {
        let remote = RemoteMedia {
            address: offer.media_connection(i).map(|c| c.address),
            port: m.port(),
            rtcp: m.section().rtcp(),
        };
        let chosen = choose(m, caps, &used);
        let (idx, formats, te) = match chosen {
            Ok(found) => found,
            Err(rejection) => {
                let ml = m.media_line();
                w.rejected(&ml.media, &ml.proto, &ml.formats);
                media.push(MediaOutcome::rejected(rejection, remote));
                continue;
            }
        };
        let Some(cap) = caps.get(idx) else {
            continue;
        };
        if let Some(u) = used.get_mut(idx) {
            *u = true;
        }
        let direction = peer_direction(offer, i, &remote).answer(cap.direction);
        let ptime = cap.ptime.or_else(|| m.section().ptime());
        let rtcp_mux = cap.rtcp_mux && m.section().rtcp_mux();
        let ml = m.media_line();
        let block = Block {
            media: &ml.media,
            port: cap.port,
            proto: &ml.proto,
            address: cap.address.filter(|a| *a != identity.address),
            formats: formats.iter().chain(&te).map(|(f, _)| f.clone()).collect(),
            ptime,
            rtcp_port: cap.rtcp_port,
            rtcp_mux,
            direction,
        };
        w.block(&block);
        media.push(MediaOutcome {
            rejection: None,
            local: Some(idx),
            codecs: formats.into_iter().map(|(_, p)| p).collect(),
            telephone_events: te.into_iter().map(|(_, p)| p).collect(),
            ptime,
            direction,
            rtcp_mux,
            remote,
        });
    }
    Ok(Answer {
        sdp: w.finish()?,
        negotiated: Negotiated::new(media),
    })
}

/// The direction of the peer's stream `i`, with an RFC 2543-style hold
/// address folded in: RFC 3264 §8.4, `c=0.0.0.0` means neither RTP nor RTCP
/// is to be sent to the peer, i.e. it does not receive.
pub(crate) fn peer_direction(sdp: &Sdp, i: usize, remote: &RemoteMedia) -> Direction {
    let dir = sdp.media_direction(i);
    if remote.is_hold_address() {
        return Direction::from_flags(dir.sends(), false);
    }
    dir
}

/// A matched format: what to write, and the mapping to report.
type Matched<'a> = (Format<'a>, PtMapping);

/// Picks the capability entry for an offered stream, or why none fits.
fn choose<'a>(
    m: &'a MediaSection,
    caps: &'a [MediaCapabilities],
    used: &[bool],
) -> Result<(usize, Vec<Matched<'a>>, Vec<Matched<'a>>), Rejection> {
    if m.is_disabled() {
        return Err(Rejection::Disabled);
    }
    let kind = m.kind();
    if kind == MediaKind::Other {
        return Err(Rejection::UnsupportedMedia);
    }
    let proto = &m.media_line().proto;
    let mut reason = Rejection::UnsupportedMedia;
    for (i, cap) in caps.iter().enumerate() {
        if cap.kind != kind || used.get(i).copied().unwrap_or(true) {
            continue;
        }
        if !cap.protos.iter().any(|p| p.eq_ignore_ascii_case(proto)) {
            reason = reason_max(reason, Rejection::UnsupportedProto);
            continue;
        }
        let codecs = match_codecs(m, cap);
        if codecs.is_empty() {
            reason = Rejection::NoCommonCodec;
            continue;
        }
        let te = match_telephone_events(m, cap, &codecs);
        return Ok((i, codecs, te));
    }
    Err(reason)
}

/// The most specific of two reasons (media < proto < codec).
fn reason_max(a: Rejection, b: Rejection) -> Rejection {
    if a == Rejection::NoCommonCodec { a } else { b }
}

/// Offered codecs we support, in offer order; each local codec used once.
fn match_codecs<'a>(m: &'a MediaSection, cap: &'a MediaCapabilities) -> Vec<Matched<'a>> {
    let mut taken = vec![false; cap.codecs.len()];
    let mut out = Vec::new();
    for pt in m.payload_types() {
        let Some(offered) = m.codec(pt) else {
            continue;
        };
        if offered.is_telephone_event() {
            continue;
        }
        let found = cap.codecs.iter().enumerate().find(|(j, c)| {
            !taken.get(*j).copied().unwrap_or(true)
                && offered.same_codec(&c.name, c.clock_rate, c.channels)
        });
        let Some((j, local)) = found else {
            continue;
        };
        if let Some(t) = taken.get_mut(j) {
            *t = true;
        }
        // Echo the offer's fmtp when we have none, unless it carries control
        // characters (a bare CR would be sent on to the peer).
        let fmtp = local.fmtp.clone().or_else(|| {
            m.section()
                .fmtp(&pt.to_string())
                .map(|f| f.params)
                .filter(|p| !p.bytes().any(|b| b.is_ascii_control()))
                .map(str::to_owned)
        });
        out.push((
            Format {
                pt,
                name: offered.encoding,
                clock_rate: offered.clock_rate,
                channels: offered.channels,
                fmtp,
            },
            PtMapping {
                local: local.pt,
                remote: pt,
                name: offered.encoding.to_owned(),
                clock_rate: offered.clock_rate,
                channels: offered.channels,
            },
        ));
    }
    out
}

/// Offered telephone-event formats we keep: one per clock rate of an
/// accepted codec, events intersected with ours.
fn match_telephone_events<'a>(
    m: &'a MediaSection,
    cap: &MediaCapabilities,
    codecs: &[Matched<'a>],
) -> Vec<Matched<'a>> {
    let Some(local) = cap.telephone_event else {
        return Vec::new();
    };
    let mut out: Vec<Matched<'a>> = Vec::new();
    for pt in m.payload_types() {
        let Some(offered) = m.codec(pt).filter(|c| c.is_telephone_event()) else {
            continue;
        };
        let rate = offered.clock_rate;
        let rate_used = codecs.iter().any(|(f, _)| f.clock_rate == rate);
        let rate_done = out.iter().any(|(f, _)| f.clock_rate == rate);
        if !rate_used || rate_done {
            continue;
        }
        // RFC 4733 §2.4.1: no fmtp (or an unreadable one) means 0-15.
        let events = m
            .section()
            .fmtp(&pt.to_string())
            .and_then(|f| TelephoneEvents::parse(f.params))
            .unwrap_or(TelephoneEvents::DTMF)
            .intersect(local.events);
        if events.is_empty() {
            continue;
        }
        out.push((
            Format {
                pt,
                name: offered.encoding,
                clock_rate: rate,
                channels: offered.channels,
                fmtp: Some(events.to_string()),
            },
            PtMapping {
                local: local.pt,
                remote: pt,
                name: offered.encoding.to_owned(),
                clock_rate: rate,
                channels: offered.channels,
            },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::ParseLimits;
    use super::super::capability::Codec;
    use super::super::outcome::Outcome;
    use super::*;
    use crate::rtp::PayloadType;

    fn pt(v: u8) -> PayloadType {
        PayloadType::new(v).unwrap()
    }

    fn id() -> LocalIdentity {
        LocalIdentity::new(1000, "198.51.100.1".parse().unwrap())
    }

    fn g711(port: u16) -> MediaCapabilities {
        MediaCapabilities::audio(port)
            .with_codec(Codec::pcma())
            .with_codec(Codec::pcmu())
            .with_telephone_event(pt(101), TelephoneEvents::DTMF)
    }

    fn text(sdp: &Sdp) -> String {
        String::from_utf8(sdp.to_bytes()).unwrap()
    }

    const OFFER: &str = "v=0\r\n\
        o=alice 1 1 IN IP4 192.0.2.10\r\n\
        s=-\r\n\
        c=IN IP4 192.0.2.10\r\n\
        t=0 0\r\n\
        m=audio 49170 RTP/AVP 18 0 8 100\r\n\
        a=rtpmap:100 telephone-event/8000\r\n\
        a=fmtp:100 0-15,66\r\n\
        a=ptime:30\r\n\
        a=rtcp:49999\r\n";

    #[test]
    fn static_codecs_match_without_rtpmap_in_offer_order() {
        let offer: Sdp = OFFER.parse().unwrap();
        let a = answer_offer(&offer, &id(), &[g711(4000)]).unwrap();
        assert_eq!(
            text(&a.sdp),
            "v=0\r\no=- 1000 1000 IN IP4 198.51.100.1\r\ns=-\r\nc=IN IP4 198.51.100.1\r\nt=0 0\r\n\
             m=audio 4000 RTP/AVP 0 8 100\r\n\
             a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n\
             a=rtpmap:100 telephone-event/8000\r\na=fmtp:100 0-15\r\n\
             a=ptime:30\r\na=sendrecv\r\n"
        );
        let n = &a.negotiated;
        assert_eq!(n.outcome, Outcome::Accepted);
        let m = &n.media[0];
        let pts: Vec<_> = m
            .codecs
            .iter()
            .map(|c| (c.local.value(), c.remote.value()))
            .collect();
        assert_eq!(pts, vec![(0, 0), (8, 8)]);
        assert_eq!(m.telephone_events[0].local, pt(101));
        assert_eq!(m.telephone_events[0].remote, pt(100));
        assert_eq!(m.remote.port, 49170);
        assert_eq!(m.remote.rtcp.as_ref().map(|r| r.port), Some(49999));
        assert_eq!(
            m.remote.address.as_ref().and_then(|a| a.ip()),
            Some("192.0.2.10".parse().unwrap())
        );
        assert_eq!(m.ptime, Some(30));
    }

    #[test]
    fn dynamic_payload_type_uses_offer_number() {
        let offer: Sdp =
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
            m=audio 5000 RTP/AVP 111 9\r\na=rtpmap:111 OPUS/48000/2\r\na=fmtp:111 minptime=10\r\n"
                .parse()
                .unwrap();
        let mut cap = MediaCapabilities::audio(6000)
            .with_codec(Codec::new("opus", 48000, pt(96)).with_channels(2));
        cap.ptime = Some(20);
        let a = answer_offer(&offer, &id(), &[cap]).unwrap();
        let m = &a.negotiated.media[0];
        assert_eq!(m.codecs.len(), 1);
        assert_eq!((m.codecs[0].local, m.codecs[0].remote), (pt(96), pt(111)));
        let body = text(&a.sdp);
        assert!(body.contains("m=audio 6000 RTP/AVP 111\r\n"), "{body}");
        assert!(body.contains("a=rtpmap:111 OPUS/48000/2\r\na=fmtp:111 minptime=10\r\n"));
        assert!(body.contains("a=ptime:20\r\n"));
        assert!(!body.contains("a=rtpmap:96"));
    }

    #[test]
    fn telephone_event_only_when_both_sides_have_it() {
        let offer: Sdp = OFFER.parse().unwrap();
        let mut no_te = g711(4000);
        no_te.telephone_event = None;
        let a = answer_offer(&offer, &id(), &[no_te]).unwrap();
        assert!(a.negotiated.media[0].telephone_events.is_empty());
        assert!(!text(&a.sdp).contains("telephone-event"));
        assert!(text(&a.sdp).contains("m=audio 4000 RTP/AVP 0 8\r\n"));

        let no_offer_te: Sdp = OFFER.replace(" 100\r\n", "\r\n").parse().unwrap();
        let a = answer_offer(&no_offer_te, &id(), &[g711(4000)]).unwrap();
        assert!(a.negotiated.media[0].telephone_events.is_empty());
        assert!(!text(&a.sdp).contains("telephone-event"));
    }

    #[test]
    fn no_common_codec_rejects_everything() {
        let offer: Sdp =
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
            m=audio 5000 RTP/AVP 18 97\r\na=rtpmap:97 AMR/8000\r\n\
            m=audio 5002 RTP/AVP 3\r\n"
                .parse()
                .unwrap();
        let a = answer_offer(&offer, &id(), &[g711(4000), g711(4002)]).unwrap();
        assert_eq!(a.negotiated.outcome, Outcome::Rejected);
        assert!(a.sdp.media().iter().all(MediaSection::is_disabled));
        assert!(text(&a.sdp).contains("m=audio 0 RTP/AVP 18 97\r\nm=audio 0 RTP/AVP 3\r\n"));
        assert!(
            a.negotiated
                .media
                .iter()
                .all(|m| m.rejection == Some(Rejection::NoCommonCodec))
        );
    }

    #[test]
    fn middle_m_line_rejected_order_kept() {
        let offer: Sdp =
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
            m=audio 5000 RTP/AVP 0\r\n\
            m=video 5002 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
            m=audio 5004 RTP/SAVP 8\r\n"
                .parse()
                .unwrap();
        let mut second = g711(4002);
        second.protos.push("RTP/SAVP".into());
        let a = answer_offer(&offer, &id(), &[g711(4000), second]).unwrap();
        let ports: Vec<_> = a.sdp.media().iter().map(MediaSection::port).collect();
        assert_eq!(ports, vec![4000, 0, 4002]);
        let kinds: Vec<_> = a.sdp.media().iter().map(MediaSection::kind).collect();
        assert_eq!(
            kinds,
            vec![MediaKind::Audio, MediaKind::Video, MediaKind::Audio]
        );
        assert_eq!(a.sdp.media()[1].formats(), ["96"]);
        assert_eq!(a.negotiated.outcome, Outcome::Partial);
        assert_eq!(
            a.negotiated.media[1].rejection,
            Some(Rejection::UnsupportedMedia)
        );
        assert_eq!(a.negotiated.media[2].local, Some(1));
        assert!(text(&a.sdp).contains("m=audio 4002 RTP/SAVP 8\r\n"));

        // Without SAVP support the third stream is rejected for its proto.
        let a = answer_offer(&offer, &id(), &[g711(4000), g711(4002)]).unwrap();
        assert_eq!(
            a.negotiated.media[2].rejection,
            Some(Rejection::UnsupportedProto)
        );
        assert_eq!(a.sdp.media()[2].port(), 0);
    }

    #[test]
    fn directions_are_complemented() {
        use Direction::*;
        let cases = [
            ("a=sendonly\r\n", SendRecv, RecvOnly),
            ("a=recvonly\r\n", SendRecv, SendOnly),
            ("a=inactive\r\n", SendRecv, Inactive),
            ("a=sendonly\r\n", SendOnly, Inactive),
            ("", RecvOnly, RecvOnly),
        ];
        for (attr, local, expected) in cases {
            let offer: Sdp = format!("{OFFER}{attr}").parse().unwrap();
            let mut cap = g711(4000);
            cap.direction = local;
            let a = answer_offer(&offer, &id(), &[cap]).unwrap();
            assert_eq!(a.negotiated.media[0].direction, expected, "{attr} {local}");
            assert_eq!(a.sdp.media()[0].section().direction(), Some(expected));
        }
        // Session-level direction applies when the media has none.
        let offer: Sdp = OFFER
            .replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n")
            .parse()
            .unwrap();
        let a = answer_offer(&offer, &id(), &[g711(4000)]).unwrap();
        assert_eq!(a.negotiated.media[0].direction, RecvOnly);
    }

    #[test]
    fn ipv6_and_disabled_and_rtcp_mux() {
        let offer: Sdp =
            "v=0\r\no=- 1 1 IN IP6 2001:db8::1\r\ns=-\r\nc=IN IP6 2001:db8::1\r\nt=0 0\r\n\
            m=audio 5000 RTP/AVP 0\r\na=rtcp-mux\r\n\
            m=audio 0 RTP/AVP 0\r\n"
                .parse()
                .unwrap();
        let id6 = LocalIdentity::new(7, "2001:db8::99".parse().unwrap());
        let mut cap = g711(4000);
        cap.rtcp_mux = true;
        let a = answer_offer(&offer, &id6, &[cap.clone(), g711(4002)]).unwrap();
        let body = text(&a.sdp);
        assert!(body.contains("o=- 7 7 IN IP6 2001:db8::99\r\n"));
        assert!(body.contains("c=IN IP6 2001:db8::99\r\n"));
        assert!(body.contains("a=rtcp-mux\r\n"));
        let m = &a.negotiated.media;
        assert!(m[0].rtcp_mux);
        assert_eq!(
            m[0].remote.address.as_ref().and_then(|a| a.ip()),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(m[1].rejection, Some(Rejection::Disabled));
        let back = Sdp::parse_with_limits(&a.sdp.to_bytes(), &ParseLimits::default()).unwrap();
        assert_eq!(back.media().len(), 2);
    }

    #[test]
    fn telephone_event_rate_must_match_an_accepted_codec() {
        let offer: Sdp = "v=0\r\nc=IN IP4 192.0.2.1\r\n\
            m=audio 5000 RTP/AVP 111 0 110 101\r\na=rtpmap:111 opus/48000/2\r\n\
            a=rtpmap:110 telephone-event/48000\r\na=rtpmap:101 telephone-event/8000\r\n\
            a=fmtp:101 0-11\r\n"
            .parse()
            .unwrap();
        let a = answer_offer(&offer, &id(), &[g711(4000)]).unwrap();
        let te = &a.negotiated.media[0].telephone_events;
        assert_eq!(te.len(), 1);
        assert_eq!((te[0].remote, te[0].clock_rate), (pt(101), 8000));
        assert!(text(&a.sdp).contains("a=fmtp:101 0-11\r\n"));
    }

    #[test]
    fn answer_formats_are_offer_tokens_even_when_not_canonical() {
        // Fuzz crash: `008` (and `+8`, `08`) read as PT 8, so the answer
        // listed `8`, a format the offer does not contain (RFC 3264 §6.1).
        // RFC 8866 §6.6: a payload type has no sign and no leading zero, so
        // such a token is a format without a known meaning.
        for fmt in ["008", "+8", "08"] {
            let offer: Sdp =
                format!("v=0\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 9 {fmt} 0\r\n")
                    .parse()
                    .unwrap();
            let a = answer_offer(&offer, &id(), &[g711(4000)]).unwrap();
            let (m, o) = (&a.sdp.media()[0], &offer.media()[0]);
            assert!(
                m.formats().iter().all(|f| o.formats().contains(f)),
                "{fmt}: {:?} not within {:?}",
                m.formats(),
                o.formats()
            );
            assert_eq!(m.formats(), ["0"], "{fmt}");
            // Alone, it is no common codec: rejected with the offered list.
            let alone: Sdp =
                format!("v=0\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP {fmt}\r\n")
                    .parse()
                    .unwrap();
            let a = answer_offer(&alone, &id(), &[g711(4000)]).unwrap();
            assert_eq!(
                a.negotiated.media[0].rejection,
                Some(Rejection::NoCommonCodec)
            );
            assert_eq!(a.sdp.media()[0].formats(), [fmt]);
        }
    }

    #[test]
    fn rfc2543_hold_address_means_do_not_send() {
        let offer: Sdp = OFFER.replace("192.0.2.10", "0.0.0.0").parse().unwrap();
        let a = answer_offer(&offer, &id(), &[g711(4000)]).unwrap();
        assert_eq!(a.negotiated.media[0].direction, Direction::RecvOnly);
        assert_eq!(a.sdp.media_direction(0), Direction::RecvOnly);
        assert!(a.negotiated.media[0].remote.is_hold_address());
    }
}
