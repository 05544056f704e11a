//! Building an offer from local capabilities (RFC 3264 §5): one `m=` per
//! [`MediaCapabilities`] entry, our codecs at our payload types, one
//! telephone-event format per distinct codec clock rate (RFC 4733 §7.1.1),
//! ptime, RTCP port / mux and an explicit direction.

use super::capability::{LocalIdentity, MediaCapabilities};
use super::error::NegotiationError;
use super::session::Sdp;
use super::writer::{Block, Format, Writer};
use crate::rtp::PayloadType;

/// Builds an offer with `identity`'s `o=` (its `session_version` as is).
pub fn build_offer(
    identity: &LocalIdentity,
    caps: &[MediaCapabilities],
) -> Result<Sdp, NegotiationError> {
    identity.check()?;
    let mut w = Writer::new(identity);
    for cap in caps {
        cap.check()?;
        let block = offer_block(identity, cap)?;
        w.block(&block);
    }
    w.finish()
}

/// The telephone-event formats we offer: `(pt, clock rate)` for each
/// distinct clock rate of our codecs, the first at the configured payload
/// type, the others at free dynamic ones.
pub(crate) fn offered_telephone_events(cap: &MediaCapabilities) -> Vec<(PayloadType, u32)> {
    let Some(te) = cap.telephone_event else {
        return Vec::new();
    };
    let mut rates: Vec<u32> = Vec::new();
    for c in &cap.codecs {
        if !rates.contains(&c.clock_rate) {
            rates.push(c.clock_rate);
        }
    }
    let mut used: Vec<PayloadType> = cap.codecs.iter().map(|c| c.pt).collect();
    used.push(te.pt);
    let mut out = Vec::new();
    for (i, rate) in rates.into_iter().enumerate() {
        if i == 0 {
            out.push((te.pt, rate));
            continue;
        }
        let free = (96..=127u8)
            .filter_map(PayloadType::new)
            .find(|pt| !used.contains(pt));
        let Some(pt) = free else {
            break;
        };
        used.push(pt);
        out.push((pt, rate));
    }
    out
}

fn offer_block<'a>(
    identity: &LocalIdentity,
    cap: &'a MediaCapabilities,
) -> Result<Block<'a>, NegotiationError> {
    let media = cap
        .kind
        .name()
        .ok_or(NegotiationError::InvalidLocal("media kind"))?;
    let proto = cap
        .protos
        .first()
        .ok_or(NegotiationError::InvalidLocal("proto"))?;
    let mut formats: Vec<Format<'a>> = cap
        .codecs
        .iter()
        .map(|c| Format {
            pt: c.pt,
            name: &c.name,
            clock_rate: c.clock_rate,
            channels: c.channels,
            fmtp: c.fmtp.clone(),
        })
        .collect();
    let events = cap.telephone_event.map(|t| t.events.to_string());
    for (pt, rate) in offered_telephone_events(cap) {
        formats.push(Format {
            pt,
            name: "telephone-event",
            clock_rate: rate,
            channels: None,
            fmtp: events.clone(),
        });
    }
    Ok(Block {
        media,
        port: cap.port,
        proto,
        address: cap.address.filter(|a| *a != identity.address),
        formats,
        ptime: cap.ptime,
        rtcp_port: cap.rtcp_port,
        rtcp_mux: cap.rtcp_mux,
        direction: cap.direction,
    })
}

#[cfg(test)]
mod tests {
    use super::super::capability::Codec;
    use super::super::telephone_event::TelephoneEvents;
    use super::super::{Direction, MediaKind};
    use super::*;

    fn pt(v: u8) -> PayloadType {
        PayloadType::new(v).unwrap()
    }

    #[test]
    fn offer_lists_codecs_events_and_attributes() {
        let id = LocalIdentity::new(42, "192.0.2.1".parse().unwrap());
        let mut cap = MediaCapabilities::audio(30000)
            .with_codec(
                Codec::new("opus", 48000, pt(96))
                    .with_channels(2)
                    .with_fmtp("useinbandfec=1"),
            )
            .with_codec(Codec::pcmu())
            .with_telephone_event(pt(101), TelephoneEvents::range(0, 16));
        cap.ptime = Some(20);
        cap.rtcp_port = Some(30001);
        cap.rtcp_mux = true;
        cap.direction = Direction::SendOnly;
        cap.address = Some("2001:db8::5".parse().unwrap());
        let sdp = build_offer(&id, &[cap]).unwrap();
        let text = String::from_utf8(sdp.to_bytes()).unwrap();
        assert_eq!(
            text,
            "v=0\r\no=- 42 42 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             m=audio 30000 RTP/AVP 96 0 101 97\r\n\
             c=IN IP6 2001:db8::5\r\n\
             a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=rtpmap:101 telephone-event/48000\r\na=fmtp:101 0-16\r\n\
             a=rtpmap:97 telephone-event/8000\r\na=fmtp:97 0-16\r\n\
             a=ptime:20\r\na=rtcp:30001\r\na=rtcp-mux\r\na=sendonly\r\n"
        );
        assert_eq!(sdp.media()[0].kind(), MediaKind::Audio);
    }

    #[test]
    fn offer_rejects_invalid_local_config() {
        let id = LocalIdentity::new(1, "192.0.2.1".parse().unwrap());
        let mut cap = MediaCapabilities::audio(1).with_codec(Codec::pcmu());
        cap.protos = vec!["RTP/AVP extra".into()];
        assert_eq!(
            build_offer(&id, &[cap]),
            Err(NegotiationError::InvalidLocal("proto"))
        );
        let mut cap = MediaCapabilities::audio(1);
        cap.kind = MediaKind::Other;
        assert!(build_offer(&id, &[cap]).is_err());
        let mut bad = id.clone();
        bad.session_name = "a\nb".into();
        assert!(build_offer(&bad, &[]).is_err());
    }
}
