//! SDES-SRTP bridging for the NG handler: an `RTP/SAVP` party on one leg,
//! an `RTP/AVP` party on the other, asked for with NG `transport-protocol`
//! (RFC 4568 key exchange, RFC 3711 media, terminated by the shard).
//!
//! Contract: sans-IO. A [`Bridge`] remembers which engine leg speaks SRTP,
//! the profiles of both sides, the relay's keys (one per suite, stable for
//! the call so that re-offers do not re-key) and the SRTP side's offered
//! and chosen keys. [`Bridge::sdp_from`] is called with every SDP either
//! side sends; it says what the SDP handed on must carry (profile, crypto
//! lines) and, once both keys are known, the leg's [`LegSrtp`].
//!
//! Offer/answer (RFC 4568 §5-§7): when the SRTP side offers, the relay
//! answers with the first offered line of a suite it implements, with the
//! same tag and its own key. When the plain side offers, the relay offers
//! one line per suite it implements (tags 1..), and the answer must accept
//! one of them by tag and suite.

use crate::engine::{LegSrtp, SrtpKey, SrtpState};
use crate::sdp::MediaSection;
use crate::srtp::{CryptoAttr, MasterKey, Suite};

/// Why an SDES bridge cannot work as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SdesError {
    /// The SRTP side offered no `a=crypto` line of a suite the relay
    /// implements (or only lines with session parameters it does not
    /// honour).
    #[error(
        "no usable SDES crypto suite offered (this relay terminates AES_CM_128_HMAC_SHA1_80 and \
         AES_CM_128_HMAC_SHA1_32, without UNENCRYPTED_*/UNAUTHENTICATED_*, KDR or FEC_KEY)"
    )]
    NoOfferedSuite,
    /// The SRTP side's answer accepted none of the relay's offered lines.
    #[error("the answer accepts none of the offered SDES crypto lines (tag and suite must match)")]
    NoAcceptedSuite,
}

/// The profiles of an SDES bridge: `srtp` for the SRTP side, `plain` for
/// the other. `None` when `from` -> `to` is not an SRTP <-> RTP change
/// (`RTP/AVP`, `RTP/AVPF` <-> `RTP/SAVP`, `RTP/SAVPF`).
pub(crate) fn conversion(from: &str, to: &str) -> Option<(String, String, bool)> {
    let srtp = |p: &str| matches!(p.to_ascii_uppercase().as_str(), "RTP/SAVP" | "RTP/SAVPF");
    let plain = |p: &str| matches!(p.to_ascii_uppercase().as_str(), "RTP/AVP" | "RTP/AVPF");
    if srtp(from) && plain(to) {
        // The sender speaks SRTP.
        Some((from.to_string(), to.to_ascii_uppercase(), true))
    } else if plain(from) && srtp(to) {
        // The receiver is to speak SRTP.
        Some((to.to_ascii_uppercase(), from.to_string(), false))
    } else {
        None
    }
}

/// What the SDP handed on carries for one media under a bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SdesOut {
    /// The `m=` profile.
    pub proto: String,
    /// The `a=crypto` values (after `a=crypto:`), replacing those given.
    pub crypto: Vec<String>,
}

/// One media's SDES bridge.
#[derive(Debug, Clone)]
pub(crate) struct Bridge {
    /// The engine leg (0 or 1) whose far end speaks SRTP.
    pub leg: usize,
    /// The SRTP side's profile.
    pub srtp_proto: String,
    /// The plain side's profile.
    pub plain_proto: String,
    /// The relay's keys, one per [`Suite::ALL`] entry.
    ours: Vec<MasterKey>,
    /// The SRTP side's usable lines, when it offered last.
    offered: Vec<CryptoAttr>,
    /// The relay's lines, when it offered last to the SRTP side.
    offered_ours: Vec<CryptoAttr>,
    /// Keys were handed to the engine (a later offer by the plain side
    /// keeps them until the SRTP side answers).
    keyed: bool,
}

impl Bridge {
    /// A bridge whose SRTP side is engine leg `leg`, with the relay's
    /// master keys `ours`, one per [`Suite::ALL`] entry (from a
    /// cryptographic random source).
    pub fn new(
        leg: usize,
        srtp_proto: String,
        plain_proto: String,
        ours: [MasterKey; Suite::ALL.len()],
    ) -> Bridge {
        Bridge {
            leg,
            srtp_proto,
            plain_proto,
            ours: ours.to_vec(),
            offered: Vec::new(),
            offered_ours: Vec::new(),
            keyed: false,
        }
    }

    fn our_key(&self, suite: Suite) -> Option<MasterKey> {
        let i = Suite::ALL.iter().position(|s| *s == suite)?;
        self.ours.get(i).copied()
    }

    /// Whether an SDP from `sender` with media `m` leaves SRTP: the SRTP
    /// side now sends a plain profile (it declined SRTP in its answer, or
    /// a re-offer or re-tag put a plain party there).
    pub fn declined_by(&self, sender: usize, m: &MediaSection) -> bool {
        sender == self.leg && !m.media_line().proto.to_ascii_uppercase().contains("SAVP")
    }

    /// What a disabled media (port 0) from `sender` is handed on with:
    /// the receiver's profile and no keys.
    pub fn disabled_out(&self, sender: usize) -> SdesOut {
        let proto = if sender == self.leg {
            &self.plain_proto
        } else {
            &self.srtp_proto
        };
        SdesOut {
            proto: proto.clone(),
            crypto: Vec::new(),
        }
    }

    /// The SRTP leg's keys once the far end's line `theirs` is chosen.
    fn keys(&mut self, theirs: &CryptoAttr, ours: MasterKey) -> SrtpState {
        self.keyed = true;
        SrtpState::Keys(LegSrtp {
            inbound: SrtpKey {
                suite: theirs.suite,
                key: theirs.key,
                mki: theirs.mki,
            },
            outbound: SrtpKey {
                suite: theirs.suite,
                key: ours,
                mki: None,
            },
        })
    }

    /// An SDP from engine leg `sender` for this media (`offer` or answer),
    /// `m` its media description: what the SDP handed on carries, and the
    /// SRTP leg's new state (`None`: unchanged).
    pub fn sdp_from(
        &mut self,
        sender: usize,
        offer: bool,
        m: &MediaSection,
    ) -> Result<(SdesOut, Option<SrtpState>), SdesError> {
        if sender == self.leg {
            let lines = usable_lines(m);
            let out = SdesOut {
                proto: self.plain_proto.clone(),
                crypto: Vec::new(),
            };
            if offer {
                // The relay will answer with the first usable line
                // (RFC 4568 §5.1.2), so both keys are known now: media
                // before the answer (early media) is terminated too.
                let theirs = lines.first().cloned().ok_or(SdesError::NoOfferedSuite)?;
                let ours = self
                    .our_key(theirs.suite)
                    .ok_or(SdesError::NoOfferedSuite)?;
                self.offered = lines;
                let state = self.keys(&theirs, ours);
                return Ok((out, Some(state)));
            }
            // RFC 4568 §5.1.2: the answer names one offered tag, with its
            // suite, and the answerer's key.
            let (theirs, ours) = lines
                .into_iter()
                .find_map(|theirs| {
                    self.offered_ours
                        .iter()
                        .find(|o| o.tag == theirs.tag && o.suite == theirs.suite)
                        .map(|o| (theirs, o.key))
                })
                .ok_or(SdesError::NoAcceptedSuite)?;
            let state = self.keys(&theirs, ours);
            return Ok((out, Some(state)));
        }
        if offer {
            // The relay offers its own line for every suite it implements.
            self.offered_ours = Suite::ALL
                .iter()
                .zip(&self.ours)
                .zip(1u32..)
                .map(|((&suite, &key), tag)| CryptoAttr::new(tag, suite, key))
                .collect();
            let out = SdesOut {
                proto: self.srtp_proto.clone(),
                crypto: self.offered_ours.iter().map(|c| c.to_string()).collect(),
            };
            // Until the SRTP side answers, its leg has no keys: nothing may
            // pass it in the clear. Keys already in use stay.
            let state = (!self.keyed).then_some(SrtpState::AwaitingKeys);
            return Ok((out, state));
        }
        // The plain side answers the SRTP side's offer: the relay accepts
        // its first usable line (RFC 4568 §5.1.2) with the relay's key.
        let theirs = self
            .offered
            .first()
            .cloned()
            .ok_or(SdesError::NoOfferedSuite)?;
        let ours = self
            .our_key(theirs.suite)
            .ok_or(SdesError::NoOfferedSuite)?;
        let line = CryptoAttr::new(theirs.tag, theirs.suite, ours);
        let out = SdesOut {
            proto: self.srtp_proto.clone(),
            crypto: vec![line.to_string()],
        };
        let state = self.keys(&theirs, ours);
        Ok((out, Some(state)))
    }
}

/// The `a=crypto` lines of `m` this relay can terminate, in SDP order:
/// a suite it implements and no session parameter it does not honour
/// (RFC 4568 §6.3, e.g. `UNENCRYPTED_SRTP`).
fn usable_lines(m: &MediaSection) -> Vec<CryptoAttr> {
    m.section()
        .attribute_values("crypto")
        .flatten()
        .filter_map(|v| CryptoAttr::parse(v.trim()).ok())
        .filter(|c| c.unsupported_session_param().is_none())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::Sdp;

    fn media(proto: &str, crypto: &[&str]) -> Sdp {
        let mut s = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 {proto} 0\r\n"
        );
        for c in crypto {
            s.push_str(&format!("a=crypto:{c}\r\n"));
        }
        Sdp::parse(s.as_bytes()).unwrap()
    }

    fn keys() -> [MasterKey; Suite::ALL.len()] {
        [
            MasterKey::from_bytes(&[1; 30]),
            MasterKey::from_bytes(&[2; 30]),
        ]
    }

    fn keyed(state: Option<SrtpState>) -> LegSrtp {
        match state {
            Some(SrtpState::Keys(k)) => k,
            other => panic!("no keys: {other:?}"),
        }
    }

    const A80: &str = "1 AES_CM_128_HMAC_SHA1_80 inline:mhKxoxzgZUgpTvSgao2JWtMbrT11BaijbNOJzvNT";
    const A32: &str = "2 AES_CM_128_HMAC_SHA1_32 inline:gL9ogeYlDF1ATCEr0tNUoZQ6E1qLL+y6PbaizhO8";

    #[test]
    fn conversions() {
        assert_eq!(
            conversion("RTP/SAVP", "RTP/AVP"),
            Some(("RTP/SAVP".into(), "RTP/AVP".into(), true))
        );
        assert_eq!(
            conversion("RTP/AVP", "rtp/savp"),
            Some(("RTP/SAVP".into(), "RTP/AVP".into(), false))
        );
        assert_eq!(conversion("RTP/AVP", "RTP/AVP"), None);
        assert_eq!(conversion("RTP/AVP", "UDP/TLS/RTP/SAVPF"), None);
    }

    /// The SRTP side offers: the plain side sees no crypto, the SRTP side
    /// gets the first usable line's tag and suite with the relay's key.
    #[test]
    fn srtp_side_offers() {
        let mut b = Bridge::new(0, "RTP/SAVP".into(), "RTP/AVP".into(), keys());
        let offer = media("RTP/SAVP", &["9 FOO_SUITE inline:AAAA", A32, A80]);
        let (out, early) = b.sdp_from(0, true, &offer.media()[0]).unwrap();
        assert_eq!(out.proto, "RTP/AVP");
        assert!(out.crypto.is_empty());
        // Both keys are known at the offer: early media is terminated.
        let early = keyed(early);
        let answer = media("RTP/AVP", &[]);
        let (out, k) = b.sdp_from(1, false, &answer.media()[0]).unwrap();
        assert_eq!(out.proto, "RTP/SAVP");
        assert_eq!(out.crypto.len(), 1);
        let line = CryptoAttr::parse(&out.crypto[0]).unwrap();
        assert_eq!((line.tag, line.suite), (2, Suite::AesCm128HmacSha1_32));
        let k = keyed(k);
        assert_eq!(k, early, "the answer keeps the keys the offer installed");
        assert_eq!(k.inbound.key, CryptoAttr::parse(A32).unwrap().key);
        assert_eq!(k.outbound.key, line.key);
        assert_ne!(k.inbound.key, k.outbound.key);
    }

    /// The plain side offers: the relay offers a line per suite, and the
    /// SRTP side's answer must accept one by tag and suite.
    #[test]
    fn plain_side_offers() {
        let mut b = Bridge::new(1, "RTP/SAVP".into(), "RTP/AVP".into(), keys());
        let offer = media("RTP/AVP", &[]);
        let (out, k) = b.sdp_from(0, true, &offer.media()[0]).unwrap();
        assert_eq!(out.proto, "RTP/SAVP");
        assert_eq!(k, Some(SrtpState::AwaitingKeys));
        let lines: Vec<CryptoAttr> = out
            .crypto
            .iter()
            .map(|c| CryptoAttr::parse(c).unwrap())
            .collect();
        assert_eq!(lines.len(), Suite::ALL.len());
        assert_eq!(lines[0].tag, 1);
        let answer = media(
            "RTP/SAVP",
            &["1 AES_CM_128_HMAC_SHA1_80 inline:gL9ogeYlDF1ATCEr0tNUoZQ6E1qLL+y6PbaizhO8"],
        );
        let (out, k) = b.sdp_from(1, false, &answer.media()[0]).unwrap();
        assert_eq!(out.proto, "RTP/AVP");
        assert!(out.crypto.is_empty());
        let k = keyed(k);
        assert_eq!(k.outbound.key, lines[0].key);
        // A re-offer by the plain side keeps the keys in use until the
        // SRTP side answers again.
        assert_eq!(b.sdp_from(0, true, &offer.media()[0]).unwrap().1, None);
        assert!(b.declined_by(1, &media("RTP/AVP", &[]).media()[0]));
        assert!(!b.declined_by(1, &answer.media()[0]));
        assert!(!b.declined_by(0, &offer.media()[0]));
        // An answer with a tag or suite the relay did not offer fails.
        let bad = media(
            "RTP/SAVP",
            &["1 AES_CM_128_HMAC_SHA1_32 inline:gL9ogeYlDF1ATCEr0tNUoZQ6E1qLL+y6PbaizhO8"],
        );
        assert_eq!(
            b.sdp_from(1, false, &bad.media()[0]).unwrap_err(),
            SdesError::NoAcceptedSuite
        );
    }

    #[test]
    fn an_offer_without_a_usable_suite_is_refused() {
        let mut b = Bridge::new(0, "RTP/SAVP".into(), "RTP/AVP".into(), keys());
        let offer = media(
            "RTP/SAVP",
            &[
                "1 AEAD_AES_256_GCM inline:AAAA",
                "2 AES_CM_128_HMAC_SHA1_80 inline:mhKxoxzgZUgpTvSgao2JWtMbrT11BaijbNOJzvNT UNENCRYPTED_SRTP",
            ],
        );
        assert_eq!(
            b.sdp_from(0, true, &offer.media()[0]).unwrap_err(),
            SdesError::NoOfferedSuite
        );
    }

    /// The relay's keys stay the same across re-offers.
    #[test]
    fn keys_are_stable() {
        let mut b = Bridge::new(1, "RTP/SAVP".into(), "RTP/AVP".into(), keys());
        let offer = media("RTP/AVP", &[]);
        let first = b.sdp_from(0, true, &offer.media()[0]).unwrap().0;
        let again = b.sdp_from(0, true, &offer.media()[0]).unwrap().0;
        assert_eq!(first, again);
    }
}
