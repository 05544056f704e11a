//! SRTP bridging for the NG handler: an SRTP party on one leg, an
//! `RTP/AVP` party on the other, asked for with NG `transport-protocol`.
//! The SRTP side keys with SDES (RFC 4568 `a=crypto`) or with DTLS
//! (RFC 5763/5764 `a=fingerprint` and `a=setup`, profiles
//! `UDP/TLS/RTP/SAVP[F]`); the shard terminates the media (RFC 3711).
//!
//! Contract: sans-IO. A [`Bridge`] remembers which engine leg speaks SRTP,
//! the profiles of both sides, the relay's keys (one per suite, stable for
//! the call so that re-offers do not re-key), the SRTP side's offered
//! and chosen keys, and its DTLS role and certificate fingerprint when it
//! keys by DTLS. [`Bridge::sdp_from`] is called with every SDP either side
//! sends; it says what the SDP handed on must carry (profile, crypto,
//! setup and fingerprint lines), the leg's new [`SrtpState`] and its new
//! DTLS session parameters ([`DtlsUpdate`]).
//!
//! Offer/answer (RFC 4568 §5-§7, RFC 5763 §5): when the SRTP side offers
//! SDES, the relay answers with the first offered line of a suite it
//! implements, with the same tag and its own key; when it offers DTLS, the
//! relay answers with its fingerprint and the `a=setup` RFC 4145 §4.1
//! gives (`active` to `actpass`), and starts the handshake with the
//! answer. When the plain side offers, the relay offers, as rtpengine
//! does, both: one `a=crypto` line per suite it implements (tags 1..) and
//! its fingerprint with `a=setup:actpass`; the answer picks SDES (a line
//! accepted by tag and suite) or DTLS (its fingerprint and setup).

use crate::dtls::{Fingerprint, Setup};
use crate::engine::{DtlsUpdate, LegDtls, LegSrtp, SrtpKey, SrtpState};
use crate::sdp::{MediaSection, Section};
use crate::srtp::{CryptoAttr, MasterKey, Suite};

/// Why an SDES bridge cannot work as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(clippy::enum_variant_names)] // each names what is missing
pub(crate) enum SdesError {
    /// The SRTP side offered no `a=crypto` line of a suite the relay
    /// implements (or only lines with session parameters it does not
    /// honour).
    #[error(
        "no usable SDES crypto suite offered (this relay terminates AEAD_AES_256_GCM, \
         AEAD_AES_128_GCM, AES_256_CM_HMAC_SHA1_80/32, AES_192_CM_HMAC_SHA1_80/32, \
         AES_CM_128_HMAC_SHA1_80/32, F8_128_HMAC_SHA1_80/32 and NULL_HMAC_SHA1_80/32, without \
         UNENCRYPTED_*/UNAUTHENTICATED_*, KDR or FEC_KEY)"
    )]
    NoOfferedSuite,
    /// The SRTP side's answer accepted none of the relay's offered lines.
    #[error("the answer accepts none of the offered SDES crypto lines (tag and suite must match)")]
    NoAcceptedSuite,
    /// A DTLS-SRTP profile without a usable `a=fingerprint` (RFC 8122 §5).
    #[error("DTLS-SRTP without a usable a=fingerprint (RFC 5763 §5)")]
    NoFingerprint,
    /// An `a=setup` that decides no DTLS role (`holdconn`, or `actpass`
    /// where an answer must choose, RFC 4145 §4.1).
    #[error("a=setup:{0} decides no DTLS role (RFC 4145 §4.1)")]
    NoRole(&'static str),
}

/// The profiles of an SDES bridge: `srtp` for the SRTP side, `plain` for
/// the other. `None` when `from` -> `to` is not an SRTP <-> RTP change
/// (`RTP/AVP`, `RTP/AVPF` <-> `RTP/SAVP`, `RTP/SAVPF`).
pub(crate) fn conversion(from: &str, to: &str) -> Option<(String, String, bool)> {
    let srtp = |p: &str| {
        matches!(
            p.to_ascii_uppercase().as_str(),
            "RTP/SAVP" | "RTP/SAVPF" | "UDP/TLS/RTP/SAVP" | "UDP/TLS/RTP/SAVPF"
        )
    };
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
    /// DTLS keying attributes, written after the crypto lines as
    /// rtpengine does (`setup:...`, `fingerprint:...`), replacing those
    /// given.
    pub keying: Vec<String>,
}

/// What one SDP does to a bridge: the SDP handed on, the SRTP leg's new
/// state and its new DTLS parameters (`None`: unchanged).
pub(crate) type SdpEffect = (SdesOut, Option<SrtpState>, Option<DtlsUpdate>);

/// The SRTP side's DTLS: the relay's `a=setup` toward it and the side's
/// certificate fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DtlsPlan {
    ours: Setup,
    remote: Fingerprint,
}

impl DtlsPlan {
    fn update(&self) -> Option<DtlsUpdate> {
        let role = self.ours.role()?;
        Some(DtlsUpdate::On(LegDtls {
            role,
            remote: self.remote.clone(),
        }))
    }
}

/// The DTLS offer or answer of `m`, when it has a fingerprint: its
/// `a=setup` (absent: `actpass` for an offer, RFC 4145 §4; `active` for
/// an answer) and `a=fingerprint`, media level first, else session level
/// (RFC 8122 §5). `Err` for a fingerprint that does not parse.
pub(crate) fn dtls_of(
    m: &MediaSection,
    session: &Section,
    offer: bool,
) -> Result<Option<(Setup, Fingerprint)>, SdesError> {
    let value = |name: &str| {
        m.section()
            .attribute_values(name)
            .find_map(|v| v)
            .or_else(|| session.attribute_values(name).find_map(|v| v))
            .map(|v| v.trim().to_string())
    };
    let Some(fp) = value("fingerprint") else {
        return Ok(None);
    };
    let fp: Fingerprint = fp.parse().map_err(|_| SdesError::NoFingerprint)?;
    let setup = value("setup")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if offer { Setup::ActPass } else { Setup::Active });
    Ok(Some((setup, fp)))
}

/// A leg terminated with the far end's line `theirs` (what it sends is
/// unprotected with its key and MKI) and the relay's key `ours` for the
/// same suite (what the relay sends it).
pub(crate) fn terminated(theirs: &CryptoAttr, ours: MasterKey) -> SrtpState {
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

/// Whether `proto` keys SRTP with DTLS (`UDP/TLS/RTP/SAVP[F]`).
fn is_tls(proto: &str) -> bool {
    proto.to_ascii_uppercase().starts_with("UDP/TLS/")
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
    /// Keys were handed to the engine, or a DTLS handshake that gives
    /// them was started (a later offer by the plain side keeps them until
    /// the SRTP side answers).
    keyed: bool,
    /// The relay's certificate fingerprint (`sha-256 AB:...`).
    fingerprint: String,
    /// The SRTP side keys by DTLS.
    dtls: Option<DtlsPlan>,
}

impl Bridge {
    /// A bridge whose SRTP side is engine leg `leg`, with the relay's
    /// master keys `ours`, one per [`Suite::ALL`] entry (from a
    /// cryptographic random source), and the fingerprint of the relay's
    /// DTLS certificate.
    pub fn new(
        leg: usize,
        srtp_proto: String,
        plain_proto: String,
        ours: Vec<MasterKey>,
        fingerprint: &Fingerprint,
    ) -> Bridge {
        Bridge {
            leg,
            srtp_proto,
            plain_proto,
            ours,
            offered: Vec::new(),
            offered_ours: Vec::new(),
            keyed: false,
            fingerprint: fingerprint.to_string(),
            dtls: None,
        }
    }

    /// The DTLS lines the relay writes toward the SRTP side.
    fn keying(&self, setup: Setup) -> Vec<String> {
        vec![
            format!("setup:{}", setup.name()),
            format!("fingerprint:{}", self.fingerprint),
        ]
    }

    /// Leaves DTLS keying (the SRTP side now keys by SDES): the session
    /// stops.
    fn leave_dtls(&mut self) -> Option<DtlsUpdate> {
        self.dtls.take().map(|_| DtlsUpdate::Off)
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
            keying: Vec::new(),
        }
    }

    /// The SRTP leg's keys once the far end's line `theirs` is chosen.
    fn keys(&mut self, theirs: &CryptoAttr, ours: MasterKey) -> SrtpState {
        self.keyed = true;
        terminated(theirs, ours)
    }

    /// An SDP from engine leg `sender` for this media (`offer` or answer),
    /// `m` its media description and `session` its session level: what
    /// the SDP handed on carries, and the SRTP leg's new state and DTLS
    /// parameters (`None`: unchanged).
    pub fn sdp_from(
        &mut self,
        sender: usize,
        offer: bool,
        m: &MediaSection,
        session: &Section,
    ) -> Result<SdpEffect, SdesError> {
        let plain_out = SdesOut {
            proto: self.plain_proto.clone(),
            crypto: Vec::new(),
            keying: Vec::new(),
        };
        if sender == self.leg {
            // The SRTP side keys by DTLS when its profile says so, or (in
            // an answer to the relay's offer of both) when it answers with
            // a fingerprint (RFC 5763 §5).
            let dtls = if offer && !is_tls(&m.media_line().proto) {
                None
            } else {
                dtls_of(m, session, offer)?
            };
            if offer && is_tls(&m.media_line().proto) && dtls.is_none() {
                return Err(SdesError::NoFingerprint);
            }
            if let Some((theirs, remote)) = dtls {
                let ours = if offer {
                    theirs.answer()
                } else {
                    // The answerer chose: `active` makes the relay the
                    // server, `passive` the client.
                    match theirs {
                        Setup::Active => Setup::Passive,
                        Setup::Passive => Setup::Active,
                        other => return Err(SdesError::NoRole(other.name())),
                    }
                };
                if ours.role().is_none() {
                    return Err(SdesError::NoRole(theirs.name()));
                }
                let plan = DtlsPlan { ours, remote };
                let same = self.dtls.as_ref() == Some(&plan);
                self.offered.clear();
                self.dtls = Some(plan);
                // Offer: the session starts with the relay's answer.
                // Answer: it starts now. Until it completes the leg has no
                // keys: nothing passes it in the clear.
                let state = (!self.keyed).then_some(SrtpState::AwaitingKeys);
                if offer {
                    return Ok((plain_out, state, None));
                }
                self.keyed = true;
                let update = if same {
                    None
                } else {
                    self.dtls.as_ref().and_then(DtlsPlan::update)
                };
                return Ok((plain_out, state, update));
            }
            let leave = self.leave_dtls();
            let lines = usable_lines(m);
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
                return Ok((plain_out, Some(state), leave));
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
            return Ok((plain_out, Some(state), leave));
        }
        if offer {
            // The relay offers its own line for every suite it implements
            // and its fingerprint, as rtpengine does; the answer picks.
            self.offered_ours = Suite::ALL
                .iter()
                .zip(&self.ours)
                .zip(1u32..)
                .map(|((&suite, &key), tag)| CryptoAttr::new(tag, suite, key))
                .collect();
            let out = SdesOut {
                proto: self.srtp_proto.clone(),
                crypto: self.offered_ours.iter().map(|c| c.to_string()).collect(),
                keying: self.keying(Setup::ActPass),
            };
            // Until the SRTP side answers, its leg has no keys: nothing may
            // pass it in the clear. Keys already in use stay.
            let state = (!self.keyed).then_some(SrtpState::AwaitingKeys);
            return Ok((out, state, None));
        }
        // The plain side answers the SRTP side's offer.
        if let Some(plan) = &self.dtls {
            // DTLS: the relay's fingerprint and setup; the handshake starts.
            let out = SdesOut {
                proto: self.srtp_proto.clone(),
                crypto: Vec::new(),
                keying: self.keying(plan.ours),
            };
            let update = plan.update();
            self.keyed = true;
            return Ok((out, None, update));
        }
        // SDES: the relay accepts the first usable line (RFC 4568 §5.1.2)
        // with its key.
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
            keying: Vec::new(),
        };
        let state = self.keys(&theirs, ours);
        Ok((out, Some(state), None))
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

    /// One key per suite, of its sizes, each byte its index + 1.
    fn keys() -> Vec<MasterKey> {
        Suite::ALL
            .iter()
            .enumerate()
            .map(|(i, suite)| {
                let raw = vec![i as u8 + 1; suite.key_len() + suite.salt_len()];
                MasterKey::from_suite_bytes(*suite, &raw).unwrap()
            })
            .collect()
    }

    fn fp() -> Fingerprint {
        FP.parse().unwrap()
    }

    const FP: &str = "sha-256 A2:70:A0:64:4F:6A:C2:7D:FE:EE:CF:C4:26:F1:E4:B6:5A:02:02:D4:F4:67:68:D8:59:27:1C:CB:40:10:60:4D";

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
        assert_eq!(
            conversion("RTP/AVP", "UDP/TLS/RTP/SAVPF"),
            Some(("UDP/TLS/RTP/SAVPF".into(), "RTP/AVP".into(), false))
        );
        assert_eq!(conversion("UDP/TLS/RTP/SAVP", "RTP/SAVP"), None);
    }

    /// The SRTP side offers: the plain side sees no crypto, the SRTP side
    /// gets the first usable line's tag and suite with the relay's key.
    #[test]
    fn srtp_side_offers() {
        let mut b = Bridge::new(0, "RTP/SAVP".into(), "RTP/AVP".into(), keys(), &fp());
        let offer = media("RTP/SAVP", &["9 FOO_SUITE inline:AAAA", A32, A80]);
        let (out, early, _) = b
            .sdp_from(0, true, &offer.media()[0], offer.session())
            .unwrap();
        assert_eq!(out.proto, "RTP/AVP");
        assert!(out.crypto.is_empty());
        // Both keys are known at the offer: early media is terminated.
        let early = keyed(early);
        let answer = media("RTP/AVP", &[]);
        let (out, k, _) = b
            .sdp_from(1, false, &answer.media()[0], answer.session())
            .unwrap();
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

    /// The SRTP side offers AES-GCM first: the answer takes it, with the
    /// relay's key of that suite's size.
    #[test]
    fn srtp_side_offers_gcm() {
        let mut b = Bridge::new(0, "RTP/SAVP".into(), "RTP/AVP".into(), keys(), &fp());
        let gcm = "4 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGw==";
        let offer = media("RTP/SAVP", &[gcm, A80]);
        b.sdp_from(0, true, &offer.media()[0], offer.session())
            .unwrap();
        let answer = media("RTP/AVP", &[]);
        let (out, k, _) = b
            .sdp_from(1, false, &answer.media()[0], answer.session())
            .unwrap();
        let line = CryptoAttr::parse(&out.crypto[0]).unwrap();
        assert_eq!((line.tag, line.suite), (4, Suite::AeadAes128Gcm));
        assert_eq!(line.key, keys()[1]);
        let k = keyed(k);
        assert_eq!(k.inbound.suite, Suite::AeadAes128Gcm);
        assert_eq!(k.inbound.key.as_bytes(), (0..28).collect::<Vec<u8>>());
        assert_eq!(k.outbound.key, keys()[1]);
    }

    /// The plain side offers: the relay offers a line per suite, and the
    /// SRTP side's answer must accept one by tag and suite.
    #[test]
    fn plain_side_offers() {
        let mut b = Bridge::new(1, "RTP/SAVP".into(), "RTP/AVP".into(), keys(), &fp());
        let offer = media("RTP/AVP", &[]);
        let (out, k, _) = b
            .sdp_from(0, true, &offer.media()[0], offer.session())
            .unwrap();
        assert_eq!(out.proto, "RTP/SAVP");
        assert_eq!(k, Some(SrtpState::AwaitingKeys));
        let lines: Vec<CryptoAttr> = out
            .crypto
            .iter()
            .map(|c| CryptoAttr::parse(c).unwrap())
            .collect();
        // Every suite, in `Suite::ALL` order, tags 1 to 12, each with
        // its own key of the suite's sizes.
        assert_eq!(lines.len(), Suite::ALL.len());
        for (i, (line, suite)) in lines.iter().zip(Suite::ALL).enumerate() {
            assert_eq!((line.tag, line.suite), (i as u32 + 1, suite));
            assert!(line.key.fits(suite));
            assert_eq!(line.key, keys()[i]);
        }
        assert_eq!(lines[6].suite, Suite::AesCm128HmacSha1_80);
        let answer = media(
            "RTP/SAVP",
            &["7 AES_CM_128_HMAC_SHA1_80 inline:gL9ogeYlDF1ATCEr0tNUoZQ6E1qLL+y6PbaizhO8"],
        );
        let (out, k, _) = b
            .sdp_from(1, false, &answer.media()[0], answer.session())
            .unwrap();
        assert_eq!(out.proto, "RTP/AVP");
        assert!(out.crypto.is_empty());
        let k = keyed(k);
        assert_eq!(k.outbound.key, lines[6].key);
        // A re-offer by the plain side keeps the keys in use until the
        // SRTP side answers again.
        assert_eq!(
            b.sdp_from(0, true, &offer.media()[0], offer.session())
                .unwrap()
                .1,
            None
        );
        assert!(b.declined_by(1, &media("RTP/AVP", &[]).media()[0]));
        assert!(!b.declined_by(1, &answer.media()[0]));
        assert!(!b.declined_by(0, &offer.media()[0]));
        // An answer with a tag or suite the relay did not offer fails.
        let bad = media(
            "RTP/SAVP",
            &["7 AES_CM_128_HMAC_SHA1_32 inline:gL9ogeYlDF1ATCEr0tNUoZQ6E1qLL+y6PbaizhO8"],
        );
        assert_eq!(
            b.sdp_from(1, false, &bad.media()[0], bad.session())
                .unwrap_err(),
            SdesError::NoAcceptedSuite
        );
    }

    #[test]
    fn an_offer_without_a_usable_suite_is_refused() {
        let mut b = Bridge::new(0, "RTP/SAVP".into(), "RTP/AVP".into(), keys(), &fp());
        let offer = media(
            "RTP/SAVP",
            &[
                "1 AEAD_AES_192_GCM inline:AAAA",
                "2 AES_CM_128_HMAC_SHA1_80 inline:mhKxoxzgZUgpTvSgao2JWtMbrT11BaijbNOJzvNT UNENCRYPTED_SRTP",
                // A key of the wrong length for its suite.
                "3 AEAD_AES_128_GCM inline:mhKxoxzgZUgpTvSgao2JWtMbrT11BaijbNOJzvNT",
            ],
        );
        assert_eq!(
            b.sdp_from(0, true, &offer.media()[0], offer.session())
                .unwrap_err(),
            SdesError::NoOfferedSuite
        );
    }

    fn dtls_media(proto: &str, setup: &str) -> Sdp {
        let s = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n\
             a=fingerprint:{FP}\r\nm=audio 4000 {proto} 0\r\na=setup:{setup}\r\n"
        );
        Sdp::parse(s.as_bytes()).unwrap()
    }

    fn ours() -> Fingerprint {
        "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
            .parse()
            .unwrap()
    }

    /// A DTLS party offers (a WebRTC client bridged to a plain trunk):
    /// the relay answers `active` with its own fingerprint and starts the
    /// handshake as the client with the answer; the leg awaits its keys.
    #[test]
    fn dtls_side_offers() {
        let mut b = Bridge::new(
            0,
            "UDP/TLS/RTP/SAVPF".into(),
            "RTP/AVP".into(),
            keys(),
            &ours(),
        );
        let offer = dtls_media("UDP/TLS/RTP/SAVPF", "actpass");
        let (out, state, dtls) = b
            .sdp_from(0, true, &offer.media()[0], offer.session())
            .unwrap();
        assert_eq!(
            (out.proto.as_str(), out.crypto.len(), out.keying.len()),
            ("RTP/AVP", 0, 0)
        );
        assert_eq!((state, dtls), (Some(SrtpState::AwaitingKeys), None));
        let answer = media("RTP/AVP", &[]);
        let (out, state, dtls) = b
            .sdp_from(1, false, &answer.media()[0], answer.session())
            .unwrap();
        assert_eq!(out.proto, "UDP/TLS/RTP/SAVPF");
        assert_eq!(
            out.keying,
            [
                "setup:active".to_string(),
                format!("fingerprint:{}", ours())
            ]
        );
        assert!(out.crypto.is_empty());
        assert_eq!(state, None);
        assert_eq!(
            dtls,
            Some(DtlsUpdate::On(LegDtls {
                role: crate::dtls::DtlsRole::Client,
                remote: fp()
            }))
        );
        assert!(b.dtls.is_some());
        // A re-offer with the same fingerprint changes nothing.
        let (_, state, dtls) = b
            .sdp_from(0, true, &offer.media()[0], offer.session())
            .unwrap();
        assert_eq!((state, dtls), (None, None));
        // `a=setup:active` makes the relay the server.
        let mut b = Bridge::new(
            0,
            "UDP/TLS/RTP/SAVPF".into(),
            "RTP/AVP".into(),
            keys(),
            &ours(),
        );
        let offer = dtls_media("UDP/TLS/RTP/SAVPF", "active");
        b.sdp_from(0, true, &offer.media()[0], offer.session())
            .unwrap();
        let (out, _, dtls) = b
            .sdp_from(1, false, &answer.media()[0], answer.session())
            .unwrap();
        assert_eq!(out.keying[0], "setup:passive");
        assert!(matches!(
            dtls,
            Some(DtlsUpdate::On(LegDtls {
                role: crate::dtls::DtlsRole::Server,
                ..
            }))
        ));
        // A DTLS profile without a fingerprint cannot be bridged.
        let bare = media("UDP/TLS/RTP/SAVPF", &[]);
        let mut b = Bridge::new(
            0,
            "UDP/TLS/RTP/SAVPF".into(),
            "RTP/AVP".into(),
            keys(),
            &ours(),
        );
        assert_eq!(
            b.sdp_from(0, true, &bare.media()[0], bare.session())
                .unwrap_err(),
            SdesError::NoFingerprint
        );
    }

    /// The plain side offers: the relay offers SDES lines and its DTLS
    /// fingerprint; the SRTP side's answer picks DTLS by answering with a
    /// fingerprint (its `a=setup` decides the relay's role), or SDES.
    #[test]
    fn plain_side_offers_both_and_the_answer_picks() {
        let mut b = Bridge::new(
            1,
            "UDP/TLS/RTP/SAVPF".into(),
            "RTP/AVP".into(),
            keys(),
            &ours(),
        );
        let offer = media("RTP/AVP", &[]);
        let (out, state, _) = b
            .sdp_from(0, true, &offer.media()[0], offer.session())
            .unwrap();
        assert_eq!(out.crypto.len(), Suite::ALL.len());
        assert_eq!(
            out.keying,
            [
                "setup:actpass".to_string(),
                format!("fingerprint:{}", ours())
            ]
        );
        assert_eq!(state, Some(SrtpState::AwaitingKeys));
        for (setup, role) in [
            ("active", crate::dtls::DtlsRole::Server),
            ("passive", crate::dtls::DtlsRole::Client),
        ] {
            let answer = dtls_media("UDP/TLS/RTP/SAVPF", setup);
            let (out, _, dtls) = b
                .sdp_from(1, false, &answer.media()[0], answer.session())
                .unwrap();
            assert_eq!(out.proto, "RTP/AVP");
            assert_eq!(
                dtls,
                Some(DtlsUpdate::On(LegDtls { role, remote: fp() })),
                "{setup}"
            );
        }
        let actpass = dtls_media("UDP/TLS/RTP/SAVPF", "actpass");
        assert_eq!(
            b.sdp_from(1, false, &actpass.media()[0], actpass.session())
                .unwrap_err(),
            SdesError::NoRole("actpass")
        );
        // Answering with SDES instead stops the DTLS session.
        b.sdp_from(0, true, &offer.media()[0], offer.session())
            .unwrap();
        let sdes = media(
            "RTP/SAVP",
            &["7 AES_CM_128_HMAC_SHA1_80 inline:gL9ogeYlDF1ATCEr0tNUoZQ6E1qLL+y6PbaizhO8"],
        );
        let (_, state, dtls) = b
            .sdp_from(1, false, &sdes.media()[0], sdes.session())
            .unwrap();
        assert!(matches!(state, Some(SrtpState::Keys(_))));
        assert_eq!(dtls, Some(DtlsUpdate::Off));
        assert!(b.dtls.is_none());
    }

    /// The relay's keys stay the same across re-offers.
    #[test]
    fn keys_are_stable() {
        let mut b = Bridge::new(1, "RTP/SAVP".into(), "RTP/AVP".into(), keys(), &fp());
        let offer = media("RTP/AVP", &[]);
        let first = b
            .sdp_from(0, true, &offer.media()[0], offer.session())
            .unwrap()
            .0;
        let again = b
            .sdp_from(0, true, &offer.media()[0], offer.session())
            .unwrap()
            .0;
        assert_eq!(first, again);
    }
}
