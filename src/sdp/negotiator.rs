//! [`Negotiator`]: our side of an RFC 3264 offer/answer session, sans-IO.
//!
//! It owns our `o=` identity and version and the offer we have outstanding:
//! - [`Negotiator::create_offer`] builds an offer; every offer after our
//!   first SDP increments `<sess-version>` by exactly one, `<sess-id>` stays
//!   (RFC 3264 §8);
//! - [`Negotiator::handle_offer`] answers a (re-)offer; the version is
//!   incremented only when our SDP differs from the last one we sent
//!   (RFC 3264 §8: an unchanged SDP keeps its version);
//! - [`Negotiator::handle_answer`] applies the peer's answer to our offer
//!   and reports the negotiated streams.
//!
//! Glare (an offer while ours is outstanding) is an error; the signalling
//! layer resolves it and may call [`Negotiator::cancel_offer`].

use super::answer::{Answer, answer_offer, peer_direction};
use super::capability::{LocalIdentity, MediaCapabilities};
use super::direction::Direction;
use super::error::NegotiationError;
use super::media::MediaSection;
use super::offer::{build_offer, offered_telephone_events};
use super::outcome::{MediaOutcome, Negotiated, PtMapping, Rejection, RemoteMedia};
use super::session::Sdp;

/// Our side of an offer/answer session.
#[derive(Debug, Clone)]
pub struct Negotiator {
    /// `session_version` is the version of our last SDP (or the first to send).
    identity: LocalIdentity,
    /// The last SDP we produced (offer or answer).
    last_local: Option<Sdp>,
    /// Our outstanding offer and the capabilities it was built from.
    pending: Option<(Sdp, Vec<MediaCapabilities>)>,
}

impl Negotiator {
    /// A session whose first SDP carries `identity.session_version`.
    pub fn new(identity: LocalIdentity) -> Negotiator {
        Negotiator {
            identity,
            last_local: None,
            pending: None,
        }
    }

    /// Our identity; `session_version` is that of our latest SDP.
    pub fn identity(&self) -> &LocalIdentity {
        &self.identity
    }

    /// The last SDP we produced.
    pub fn local_sdp(&self) -> Option<&Sdp> {
        self.last_local.as_ref()
    }

    /// True while an offer of ours awaits its answer.
    pub fn has_pending_offer(&self) -> bool {
        self.pending.is_some()
    }

    /// Builds an offer (initial, or a re-offer such as hold with `sendonly`
    /// or resume with `sendrecv`) and makes it the outstanding one.
    pub fn create_offer(&mut self, caps: &[MediaCapabilities]) -> Result<Sdp, NegotiationError> {
        let mut id = self.identity.clone();
        if self.last_local.is_some() {
            // RFC 3264 §8: +1 per new SDP; wrapping only after 2^64 offers.
            id.session_version = id.session_version.wrapping_add(1);
        }
        let sdp = build_offer(&id, caps)?;
        self.identity = id;
        self.pending = Some((sdp.clone(), caps.to_vec()));
        self.last_local = Some(sdp.clone());
        Ok(sdp)
    }

    /// Drops the outstanding offer (rejected, or lost a glare). The version
    /// it used stays consumed, so the next SDP is newer still.
    pub fn cancel_offer(&mut self) -> Option<Sdp> {
        self.pending.take().map(|(sdp, _)| sdp)
    }

    /// Answers a (re-)offer from the peer.
    pub fn handle_offer(
        &mut self,
        offer: &Sdp,
        caps: &[MediaCapabilities],
    ) -> Result<Answer, NegotiationError> {
        if self.pending.is_some() {
            return Err(NegotiationError::OfferPending);
        }
        let mut answer = answer_offer(offer, &self.identity, caps)?;
        let mut version = self.identity.session_version;
        if let Some(last) = &self.last_local {
            if last.to_bytes() != answer.sdp.to_bytes() {
                version = version.wrapping_add(1);
                answer
                    .sdp
                    .set_origin_version(version)
                    .map_err(|_| NegotiationError::InvalidLocal("generated SDP lacks o="))?;
            }
        }
        self.identity.session_version = version;
        self.last_local = Some(answer.sdp.clone());
        Ok(answer)
    }

    /// Applies the peer's answer to our outstanding offer. On
    /// [`NegotiationError::MediaCountMismatch`] the offer stays outstanding.
    pub fn handle_answer(&mut self, answer: &Sdp) -> Result<Negotiated, NegotiationError> {
        let Some((offer, caps)) = self.pending.take() else {
            return Err(NegotiationError::NoPendingOffer);
        };
        let (offered, answered) = (offer.media().len(), answer.media().len());
        if offered != answered {
            self.pending = Some((offer, caps));
            return Err(NegotiationError::MediaCountMismatch { offered, answered });
        }
        let media = offer
            .media()
            .iter()
            .zip(answer.media())
            .zip(&caps)
            .enumerate()
            .map(|(i, ((ours, theirs), cap))| apply(i, ours, theirs, cap, answer))
            .collect();
        Ok(Negotiated::new(media))
    }
}

/// The outcome of our offered stream `i` given the peer's answer to it.
fn apply(
    i: usize,
    ours: &MediaSection,
    theirs: &MediaSection,
    cap: &MediaCapabilities,
    answer: &Sdp,
) -> MediaOutcome {
    let remote = RemoteMedia {
        address: answer.media_connection(i).map(|c| c.address),
        port: theirs.port(),
        rtcp: theirs.section().rtcp(),
    };
    if theirs.is_disabled() {
        return MediaOutcome::rejected(Rejection::RejectedByPeer, remote);
    }
    let mut codecs: Vec<PtMapping> = Vec::new();
    let mut events: Vec<PtMapping> = Vec::new();
    let offered_te = offered_telephone_events(cap);
    for pt in theirs.payload_types() {
        // An answer should reuse our numbers (RFC 3264 §6.1); tolerate a
        // dynamic type it did not describe by reading our own rtpmap.
        let Some(c) = theirs.codec(pt).or_else(|| ours.codec(pt)) else {
            continue;
        };
        let mapping = |local| PtMapping {
            local,
            remote: pt,
            name: c.encoding.to_owned(),
            clock_rate: c.clock_rate,
            channels: c.channels,
        };
        if c.is_telephone_event() {
            let ours_te = offered_te.iter().find(|(_, rate)| *rate == c.clock_rate);
            if let Some((local, _)) = ours_te {
                events.push(mapping(*local));
            }
            continue;
        }
        let local = cap
            .codecs
            .iter()
            .find(|l| c.same_codec(&l.name, l.clock_rate, l.channels))
            .filter(|l| !codecs.iter().any(|m| m.local == l.pt));
        if let Some(l) = local {
            codecs.push(mapping(l.pt));
        }
    }
    if codecs.is_empty() {
        return MediaOutcome::rejected(Rejection::NoCommonCodec, remote);
    }
    let theirs_dir = peer_direction(answer, i, &remote);
    let direction = Direction::from_flags(
        cap.direction.sends() && theirs_dir.receives(),
        cap.direction.receives() && theirs_dir.sends(),
    );
    MediaOutcome {
        rejection: None,
        local: Some(i),
        codecs,
        telephone_events: events,
        ptime: theirs.section().ptime().or(cap.ptime),
        direction,
        rtcp_mux: cap.rtcp_mux && theirs.section().rtcp_mux(),
        remote,
    }
}

#[cfg(test)]
mod tests {
    use super::super::capability::Codec;
    use super::super::outcome::Outcome;
    use super::super::telephone_event::TelephoneEvents;
    use super::*;
    use crate::rtp::PayloadType;

    fn pt(v: u8) -> PayloadType {
        PayloadType::new(v).unwrap()
    }

    fn caps(dir: Direction) -> Vec<MediaCapabilities> {
        let mut c = MediaCapabilities::audio(7000)
            .with_codec(Codec::new("opus", 48000, pt(96)).with_channels(2))
            .with_codec(Codec::pcmu())
            .with_telephone_event(pt(101), TelephoneEvents::DTMF);
        c.direction = dir;
        vec![c]
    }

    fn neg() -> Negotiator {
        Negotiator::new(LocalIdentity::new(5000, "192.0.2.1".parse().unwrap()))
    }

    fn version(sdp: &Sdp) -> u64 {
        sdp.origin().unwrap().session_version
    }

    #[test]
    fn hold_and_resume_increment_version_by_one() {
        let mut n = neg();
        let first = n.create_offer(&caps(Direction::SendRecv)).unwrap();
        assert_eq!(version(&first), 5000);
        let peer = answer_offer(
            &first,
            &LocalIdentity::new(9, "192.0.2.2".parse().unwrap()),
            &caps(Direction::SendRecv),
        )
        .unwrap();
        let res = n.handle_answer(&peer.sdp).unwrap();
        assert_eq!(res.outcome, Outcome::Accepted);
        assert_eq!(res.media[0].direction, Direction::SendRecv);

        let hold = n.create_offer(&caps(Direction::SendOnly)).unwrap();
        assert_eq!(version(&hold), 5001);
        assert_eq!(hold.origin().unwrap().session_id, "5000");
        assert_eq!(hold.media_direction(0), Direction::SendOnly);
        assert_eq!(hold.media()[0].formats(), first.media()[0].formats());
        let peer = answer_offer(
            &hold,
            &LocalIdentity::new(9, "192.0.2.2".parse().unwrap()),
            &caps(Direction::SendRecv),
        )
        .unwrap();
        assert_eq!(peer.sdp.media_direction(0), Direction::RecvOnly);
        let res = n.handle_answer(&peer.sdp).unwrap();
        assert_eq!(res.media[0].direction, Direction::SendOnly);

        let resume = n.create_offer(&caps(Direction::SendRecv)).unwrap();
        assert_eq!(version(&resume), 5002);
        assert_eq!(n.identity().session_version, 5002);
    }

    #[test]
    fn answer_version_changes_only_with_content() {
        let mut n = neg();
        let offer: Sdp =
            "v=0\r\no=bob 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n\
            m=audio 5000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
                .parse()
                .unwrap();
        let a1 = n.handle_offer(&offer, &caps(Direction::SendRecv)).unwrap();
        assert_eq!(version(&a1.sdp), 5000);
        // Session refresh: same offer, same answer, same version.
        let a2 = n.handle_offer(&offer, &caps(Direction::SendRecv)).unwrap();
        assert_eq!(a2.sdp, a1.sdp);
        // Peer puts us on hold: our answer changes to recvonly, version +1.
        let hold: Sdp = format!(
            "{}a=sendonly\r\n",
            String::from_utf8(offer.to_bytes()).unwrap()
        )
        .parse()
        .unwrap();
        let a3 = n.handle_offer(&hold, &caps(Direction::SendRecv)).unwrap();
        assert_eq!(version(&a3.sdp), 5001);
        assert_eq!(a3.sdp.media_direction(0), Direction::RecvOnly);
        assert_eq!(a3.sdp.origin().unwrap().session_id, "5000");
    }

    #[test]
    fn answer_mapping_and_errors() {
        let mut n = neg();
        assert_eq!(
            n.handle_answer(&"v=0".parse().unwrap()),
            Err(NegotiationError::NoPendingOffer)
        );
        let offer = n.create_offer(&caps(Direction::SendRecv)).unwrap();
        assert!(n.has_pending_offer());
        assert_eq!(
            n.handle_offer(&offer, &caps(Direction::SendRecv))
                .unwrap_err(),
            NegotiationError::OfferPending
        );
        let two: Sdp = "v=0\r\nm=audio 1 RTP/AVP 0\r\nm=audio 2 RTP/AVP 0\r\n"
            .parse()
            .unwrap();
        assert_eq!(
            n.handle_answer(&two),
            Err(NegotiationError::MediaCountMismatch {
                offered: 1,
                answered: 2
            })
        );
        // The peer renumbers opus to 98 and omits rtpmap for its telephone-event.
        let answer: Sdp = "v=0\r\nc=IN IP4 192.0.2.7\r\n\
            m=audio 6000 RTP/AVP 98 101\r\na=rtpmap:98 opus/48000/2\r\na=recvonly\r\n"
            .parse()
            .unwrap();
        let res = n.handle_answer(&answer).unwrap();
        let m = &res.media[0];
        assert_eq!((m.codecs[0].local, m.codecs[0].remote), (pt(96), pt(98)));
        assert_eq!(m.telephone_events.len(), 1);
        assert_eq!(m.direction, Direction::SendOnly);
        assert_eq!(m.remote.port, 6000);
        assert!(!n.has_pending_offer());

        let _ = n.create_offer(&caps(Direction::SendRecv)).unwrap();
        let rejected: Sdp = "v=0\r\nm=audio 0 RTP/AVP 96\r\n".parse().unwrap();
        let res = n.handle_answer(&rejected).unwrap();
        assert_eq!(res.outcome, Outcome::Rejected);
        assert_eq!(res.media[0].rejection, Some(Rejection::RejectedByPeer));
        assert!(n.cancel_offer().is_none());
    }
}
