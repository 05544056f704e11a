//! ICE (RFC 8445, SDP per RFC 8839) as rtpengine 10.5 does it by default:
//! the relay terminates ICE on each side that speaks it. The candidates
//! and credentials of an SDP stay with the relay (its agent on the
//! sender's leg checks them); the SDP handed on carries the relay's own
//! credentials and one host candidate per socket of the receiver's leg,
//! when the receiver speaks ICE: for an offer, when the offer carries ICE
//! (or `ICE: force` asks for it); for an answer, when the offerer's offer
//! carried it. `ICE: remove` strips ICE from the SDP and stops the agent.
//!
//! Contract: decisions only (no sockets); the handler turns them into
//! engine updates ([`crate::engine::IceUpdate`]) and SDP lines. The
//! relay's credentials toward a party are made once per media and leg and
//! kept across re-offers, as rtpengine keeps them.

use std::net::IpAddr;

use crate::ice::{Candidate, IceCredentials, host_priority};
use crate::sdp::Sdp;

/// The `ICE` option of an offer or answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum IceMode {
    /// ICE toward a party when its SDP (offer) or the offer (answer)
    /// carried ICE.
    #[default]
    Default,
    /// No ICE: attributes stripped, agents stopped.
    Remove,
    /// ICE toward the receiver of an offer even if the offer has none.
    Force,
}

/// What a party's SDP says about ICE for one media (RFC 8839 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Signalled {
    /// `a=ice-ufrag` / `a=ice-pwd`, media level first, else session level.
    pub creds: IceCredentials,
    /// Its `a=candidate` lines that parse (others are ignored, RFC 8839
    /// §5.1: an agent ignores candidates it does not understand).
    pub candidates: Vec<Candidate>,
    /// Session-level `a=ice-lite`.
    pub lite: bool,
    /// `a=end-of-candidates` (media or session level, RFC 8840 §8.2).
    pub end_of_candidates: bool,
}

/// The ICE of media `i` of `sdp`, when it has credentials.
pub(crate) fn signalled(sdp: &Sdp, i: usize) -> Option<Signalled> {
    let m = sdp.media().get(i)?;
    let value = |name: &str| {
        m.section()
            .attribute_values(name)
            .find_map(|v| v)
            .or_else(|| sdp.session().attribute_values(name).find_map(|v| v))
            .map(|v| v.trim().to_string())
    };
    // RFC 8839 §5.4: values outside the grammar make no usable ICE.
    let creds = IceCredentials::new(&value("ice-ufrag")?, &value("ice-pwd")?).ok()?;
    let candidates = m
        .section()
        .attribute_values("candidate")
        .flatten()
        .filter_map(|v| v.trim().parse::<Candidate>().ok())
        .collect();
    Some(Signalled {
        creds,
        candidates,
        lite: sdp.session().has_attribute("ice-lite"),
        end_of_candidates: m.section().has_attribute("end-of-candidates")
            || sdp.session().has_attribute("end-of-candidates"),
    })
}

/// The relay's ICE toward one party of one media.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LegIce {
    /// The relay's credentials, as handed to the party.
    pub local: IceCredentials,
    /// The party's credentials, once it has sent them.
    pub remote: Option<IceCredentials>,
    /// The relay's role toward the party, fixed when the agent starts
    /// (RFC 8445 §6.1.1: the offerer's agent controls, unless it is lite).
    pub controlling: bool,
    /// The relay's tie-breaker toward the party.
    pub tie_breaker: u64,
}

/// The lines the SDP handed on carries for the relay's side of a media,
/// in rtpengine's order: credentials, a host candidate for the RTP socket
/// (component 1) and, unless RTCP is muxed, one for the RTCP socket
/// (component 2), then `a=end-of-candidates` when the SDP received had it.
pub(crate) fn lines(
    local: &IceCredentials,
    foundation: &str,
    addr: IpAddr,
    rtp_port: u16,
    rtcp_port: u16,
    end_of_candidates: bool,
) -> Vec<String> {
    let mut out = vec![
        format!("ice-ufrag:{}", local.ufrag),
        format!("ice-pwd:{}", local.pwd),
    ];
    let mut candidate = |component: u16, port: u16| {
        out.push(format!(
            "candidate:{foundation} {component} UDP {} {addr} {port} typ host",
            host_priority(component, u16::MAX)
        ));
    };
    candidate(1, rtp_port);
    if rtcp_port != rtp_port {
        candidate(2, rtcp_port);
    }
    if end_of_candidates {
        out.push("end-of-candidates".to_string());
    }
    out
}

/// `n` characters of `[A-Za-z0-9]` from random bytes (an ICE foundation).
pub(crate) fn alnum(bytes: &[u8]) -> String {
    const SET: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    bytes
        .iter()
        .map(|b| char::from(SET[usize::from(*b) % SET.len()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(s: &str) -> Sdp {
        Sdp::parse(s.replace('\n', "\r\n").as_bytes()).unwrap()
    }

    #[test]
    fn signalled_reads_media_then_session_level() {
        let s = sdp(
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\n\
             a=ice-lite\na=ice-ufrag:sess\na=ice-pwd:sessionpasswordsessionpw\n\
             m=audio 5000 RTP/AVP 0\na=ice-ufrag:F7gI\na=ice-pwd:x9cml/YzichV2+XlhiMu8g\n\
             a=candidate:1 1 UDP 2130706431 192.0.2.1 5000 typ host\na=candidate:bogus\n\
             a=end-of-candidates\n\
             m=audio 5002 RTP/AVP 0\n\
             m=audio 5004 RTP/AVP 0\na=ice-ufrag:only\n",
        );
        let a = signalled(&s, 0).unwrap();
        assert_eq!(a.creds.ufrag, "F7gI");
        assert_eq!(a.creds.pwd, "x9cml/YzichV2+XlhiMu8g");
        assert_eq!(a.candidates.len(), 1, "the malformed candidate is ignored");
        assert!(a.lite && a.end_of_candidates);
        let b = signalled(&s, 1).unwrap();
        assert_eq!(b.creds.ufrag, "sess");
        assert!(b.candidates.is_empty() && !b.end_of_candidates);
        // Media-level ufrag with the session-level pwd.
        let c = signalled(&s, 2).unwrap();
        assert_eq!(
            (c.creds.ufrag.as_str(), c.creds.pwd.as_str()),
            ("only", "sessionpasswordsessionpw")
        );
        let none = sdp(
            "v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\nm=audio 5000 RTP/AVP 0\n",
        );
        assert_eq!(signalled(&none, 0), None);
        assert_eq!(signalled(&none, 1), None);
    }

    #[test]
    fn lines_as_rtpengine_writes_them() {
        let local = IceCredentials {
            ufrag: "abcdEFGH".into(),
            pwd: "0123456789abcdefghijklmnop".into(),
        };
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        assert_eq!(
            lines(&local, "kDsHiDmeYwnUK0OO", ip, 30000, 30001, false),
            [
                "ice-ufrag:abcdEFGH",
                "ice-pwd:0123456789abcdefghijklmnop",
                "candidate:kDsHiDmeYwnUK0OO 1 UDP 2130706431 203.0.113.7 30000 typ host",
                "candidate:kDsHiDmeYwnUK0OO 2 UDP 2130706430 203.0.113.7 30001 typ host",
            ]
        );
        let muxed = lines(&local, "F", ip, 30000, 30000, true);
        assert_eq!(muxed.len(), 4);
        assert_eq!(muxed[3], "end-of-candidates");
        assert!(muxed[2].contains(" 1 UDP "));
    }

    #[test]
    fn alnum_maps_every_byte() {
        let all: Vec<u8> = (0..=255).collect();
        let s = alnum(&all);
        assert_eq!(s.len(), 256);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
