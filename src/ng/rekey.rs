//! SRTP offered with no change of profile, as rtpengine 10.5 does by
//! default: the relay offers the answerer what the offerer offered plus
//! its own keys, and the answer decides whether the relay terminates SRTP
//! (RFC 3711) on either side.
//!
//! Offer (RFC 4568 §5.1, RFC 5763 §5): the SDP handed to the answerer
//! keeps the offerer's profile and its `a=crypto` lines (tag, suite, key
//! and MKI; the lifetime is dropped), then one relay line per suite the
//! relay implements that the offerer did not offer (tags after the
//! offerer's highest), then the relay's DTLS fingerprint with
//! `a=setup:actpass`. An offerer that keys by DTLS only gets relay lines
//! from tag 1.
//!
//! Answer: the answerer's choice decides.
//! - One of the offerer's lines (same tag and suite, else the same suite):
//!   the keys are the parties' own and the relay passes SRTP through; the
//!   offerer is answered with that line under its own tag.
//! - One of the relay's lines, DTLS (a fingerprint), or a plain profile:
//!   the relay terminates the answerer's side with what it chose (nothing
//!   for plain RTP) and the offerer's side with what it offered (its first
//!   line, answered with the relay's key; or DTLS, answered with the
//!   relay's fingerprint and the `a=setup` RFC 4145 §4.1 gives).
//!
//! Contract: sans-IO; a [`Rekey`] lives with a media from the offer that
//! started it; each offer (from either side) starts a new negotiation
//! with the relay's keys kept (one per suite and leg), so that an
//! unchanged re-offer and answer give the engine the same keys and DTLS
//! parameters, which keep their running contexts and sessions.

use crate::dtls::{Fingerprint, Setup};
use crate::engine::{DtlsUpdate, LegDtls, SrtpState};
use crate::sdp::{MediaSection, Section};
use crate::srtp::{CryptoAttr, MasterKey, Suite};

use super::sdes::{SdesError, SdesOut, dtls_of, terminated};

/// One leg's engine changes: (engine leg, SRTP state, DTLS parameters).
pub(crate) type LegChange = (usize, Option<SrtpState>, Option<DtlsUpdate>);

/// How the offerer keys its SRTP.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Offered {
    /// Its `a=crypto` lines that parse, in order (lifetime dropped).
    lines: Vec<CryptoAttr>,
    /// Its DTLS `a=setup` and fingerprint, when it has a fingerprint.
    dtls: Option<(Setup, Fingerprint)>,
}

/// The default SRTP negotiation of one media.
#[derive(Debug, Clone)]
pub(crate) struct Rekey {
    /// The engine leg of the latest offer.
    offerer: usize,
    /// The profile offered (kept on both sides).
    proto: String,
    offered: Offered,
    /// The relay's lines offered to the answerer.
    relay_lines: Vec<CryptoAttr>,
    /// The relay's keys per leg, one per [`Suite::ALL`] entry.
    ours: [Vec<MasterKey>; 2],
    /// The relay's certificate fingerprint (`sha-256 AB:...`).
    fingerprint: String,
    /// Each leg is terminated (keys or a DTLS session handed to the
    /// engine) after the latest answer.
    terminated: [bool; 2],
    /// Each leg runs DTLS after the latest answer.
    dtls: [bool; 2],
}

/// The `a=crypto` lines of `m` that parse, lifetime dropped (rtpengine
/// writes them back without it).
fn lines_of(m: &MediaSection) -> Vec<CryptoAttr> {
    m.section()
        .attribute_values("crypto")
        .flatten()
        .filter_map(|v| CryptoAttr::parse(v.trim()).ok())
        .map(|mut c| {
            c.lifetime = None;
            c
        })
        .collect()
}

/// Whether `proto` is an SRTP profile (`RTP/SAVP[F]`, `UDP/TLS/RTP/SAVP[F]`).
pub(crate) fn is_srtp(proto: &str) -> bool {
    proto.to_ascii_uppercase().contains("SAVP")
}

/// A suite's key usable for terminating: implemented, and no session
/// parameter the transform does not honour (RFC 4568 §6.3).
fn terminable(c: &CryptoAttr) -> bool {
    c.unsupported_session_param().is_none()
}

impl Rekey {
    /// A negotiation for an SRTP offer from engine leg `offerer` with media
    /// `m`, or `None` when the offer carries neither `a=crypto` nor a
    /// fingerprint (nothing to key: relayed as it is). `ours`: the relay's
    /// keys per leg, one per [`Suite::ALL`] entry, kept from an earlier
    /// negotiation of this media when there was one.
    pub fn offer(
        offerer: usize,
        m: &MediaSection,
        session: &Section,
        ours: [Vec<MasterKey>; 2],
        fingerprint: &Fingerprint,
        before: Option<&Rekey>,
    ) -> Result<Option<(Rekey, SdesOut, Vec<LegChange>)>, SdesError> {
        let offered = Offered {
            lines: lines_of(m),
            dtls: dtls_of(m, session, true)?,
        };
        if offered.lines.is_empty() && offered.dtls.is_none() {
            return Ok(None);
        }
        let next_tag = offered.lines.iter().map(|c| c.tag).max().unwrap_or(0);
        let relay_lines: Vec<CryptoAttr> = Suite::ALL
            .iter()
            .zip(&ours[1 - offerer])
            .filter(|(s, _)| !offered.lines.iter().any(|c| c.suite == **s))
            .zip(next_tag.saturating_add(1)..)
            .map(|((&suite, &key), tag)| CryptoAttr::new(tag, suite, key))
            .collect();
        let out = SdesOut {
            proto: m.media_line().proto.clone(),
            crypto: offered
                .lines
                .iter()
                .chain(&relay_lines)
                .map(ToString::to_string)
                .collect(),
            keying: vec![
                format!("setup:{}", Setup::ActPass.name()),
                format!("fingerprint:{fingerprint}"),
            ],
        };
        // Until the answer decides, the legs keep what they had: a DTLS
        // offerer cannot be passed through, so its leg awaits its keys
        // from the first offer on.
        let mut changes = Vec::new();
        let was_terminated = before.is_some_and(|b| b.terminated[offerer]);
        if offered.dtls.is_some() && offered.lines.is_empty() && !was_terminated {
            changes.push((offerer, Some(SrtpState::AwaitingKeys), None));
        }
        let rekey = Rekey {
            offerer,
            proto: m.media_line().proto.clone(),
            offered,
            relay_lines,
            ours,
            fingerprint: fingerprint.to_string(),
            terminated: before.map_or([false; 2], |b| b.terminated),
            dtls: before.map_or([false; 2], |b| b.dtls),
        };
        Ok(Some((rekey, out, changes)))
    }

    /// The engine leg of the latest offer.
    pub fn offerer(&self) -> usize {
        self.offerer
    }

    /// The legs terminated or running DTLS now (to switch off when the
    /// negotiation ends).
    pub fn legs_in_use(&self) -> impl Iterator<Item = usize> + '_ {
        (0..2).filter(|&l| self.terminated[l] || self.dtls[l])
    }

    /// The relay's keys per leg (kept for the next negotiation).
    pub fn keys(&self) -> [Vec<MasterKey>; 2] {
        self.ours.clone()
    }

    fn our_key(&self, leg: usize, suite: Suite) -> Option<MasterKey> {
        let i = Suite::ALL.iter().position(|s| *s == suite)?;
        self.ours.get(leg)?.get(i).copied()
    }

    /// The answer from the other leg, media `m`: what the offerer is
    /// handed and the engine changes of both legs.
    pub fn answer(
        &mut self,
        m: &MediaSection,
        session: &Section,
    ) -> Result<(SdesOut, Vec<LegChange>), SdesError> {
        let (a, b) = (self.offerer, 1 - self.offerer);
        let plain = !is_srtp(&m.media_line().proto);
        let b_dtls = if plain {
            None
        } else {
            dtls_of(m, session, false)?
        };
        let b_lines = if plain { Vec::new() } else { lines_of(m) };
        let mut changes = Vec::new();
        // The answerer's side.
        if b_dtls.is_none() && !plain {
            // SDES: one of the offerer's lines passes through.
            let pass = b_lines.iter().find_map(|theirs| {
                let same = |c: &&CryptoAttr| c.suite == theirs.suite;
                let mine = self
                    .offered
                    .lines
                    .iter()
                    .filter(same)
                    .find(|c| c.tag == theirs.tag)
                    .or_else(|| self.offered.lines.iter().find(same))?;
                Some((mine.tag, theirs))
            });
            if let Some((tag, theirs)) = pass {
                let mut line = theirs.clone();
                line.tag = tag;
                let out = SdesOut {
                    proto: self.proto.clone(),
                    crypto: vec![line.to_string()],
                    keying: Vec::new(),
                };
                for leg in [a, b] {
                    let dtls = self.dtls[leg].then_some(DtlsUpdate::Off);
                    let srtp = self.terminated[leg].then_some(SrtpState::Off);
                    if srtp.is_some() || dtls.is_some() {
                        changes.push((leg, srtp, dtls));
                    }
                }
                self.terminated = [false; 2];
                self.dtls = [false; 2];
                return Ok((out, changes));
            }
        }
        match (&b_dtls, plain) {
            (_, true) => {
                changes.push((
                    b,
                    Some(SrtpState::Off),
                    self.dtls[b].then_some(DtlsUpdate::Off),
                ));
                self.terminated[b] = false;
                self.dtls[b] = false;
            }
            (Some((theirs, remote)), false) => {
                // RFC 4145 §4.1: `active` makes the relay the server.
                let ours = match theirs {
                    Setup::Active => Setup::Passive,
                    Setup::Passive => Setup::Active,
                    other => return Err(SdesError::NoRole(other.name())),
                };
                let role = ours.role().ok_or(SdesError::NoRole(theirs.name()))?;
                let state = (!self.terminated[b]).then_some(SrtpState::AwaitingKeys);
                let dtls = DtlsUpdate::On(LegDtls {
                    role,
                    remote: remote.clone(),
                });
                changes.push((b, state, Some(dtls)));
                self.terminated[b] = true;
                self.dtls[b] = true;
            }
            (None, false) => {
                // SDES: one of the relay's lines, by tag and suite.
                let (theirs, ours) = b_lines
                    .iter()
                    .filter(|c| terminable(c))
                    .find_map(|theirs| {
                        self.relay_lines
                            .iter()
                            .find(|o| o.tag == theirs.tag && o.suite == theirs.suite)
                            .map(|o| (theirs.clone(), o.key))
                    })
                    .ok_or(SdesError::NoAcceptedSuite)?;
                let keys = terminated(&theirs, ours);
                changes.push((b, Some(keys), self.dtls[b].then_some(DtlsUpdate::Off)));
                self.terminated[b] = true;
                self.dtls[b] = false;
            }
        }
        // The offerer's side: terminated with what it offered (DTLS under a
        // DTLS profile, else its first line the relay can terminate).
        let line = self
            .offered
            .lines
            .iter()
            .find(|c| terminable(c))
            .filter(|_| {
                self.offered.dtls.is_none()
                    || !self.proto.to_ascii_uppercase().starts_with("UDP/TLS/")
            });
        let out = match (&self.offered.dtls, line) {
            (_, Some(theirs)) => {
                let ours = self
                    .our_key(a, theirs.suite)
                    .ok_or(SdesError::NoOfferedSuite)?;
                let keys = terminated(theirs, ours);
                changes.push((a, Some(keys), self.dtls[a].then_some(DtlsUpdate::Off)));
                self.terminated[a] = true;
                self.dtls[a] = false;
                SdesOut {
                    proto: self.proto.clone(),
                    crypto: vec![CryptoAttr::new(theirs.tag, theirs.suite, ours).to_string()],
                    keying: Vec::new(),
                }
            }
            (Some((theirs, remote)), None) => {
                let ours = theirs.answer();
                let role = ours.role().ok_or(SdesError::NoRole(theirs.name()))?;
                let state = (!self.terminated[a]).then_some(SrtpState::AwaitingKeys);
                let dtls = DtlsUpdate::On(LegDtls {
                    role,
                    remote: remote.clone(),
                });
                changes.push((a, state, Some(dtls)));
                self.terminated[a] = true;
                self.dtls[a] = true;
                SdesOut {
                    proto: self.proto.clone(),
                    crypto: Vec::new(),
                    keying: vec![
                        format!("setup:{}", ours.name()),
                        format!("fingerprint:{}", self.fingerprint),
                    ],
                }
            }
            (None, None) => return Err(SdesError::NoOfferedSuite),
        };
        Ok((out, changes))
    }

    /// Whether either leg is terminated (its payload types must stay in
    /// userspace: the kernel fast path cannot encrypt).
    pub fn terminates(&self) -> bool {
        self.terminated.iter().any(|t| *t) || self.offered.dtls.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtls::DtlsRole;
    use crate::sdp::Sdp;

    const FP_A: &str = "sha-256 A2:70:A0:64:4F:6A:C2:7D:FE:EE:CF:C4:26:F1:E4:B6:5A:02:02:D4:F4:67:68:D8:59:27:1C:CB:40:10:60:4D";
    const FP_B: &str = "sha-256 0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0";
    const FP_OURS: &str = "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF";
    const A80: &str =
        "1 AES_CM_128_HMAC_SHA1_80 inline:mhKxoxzgZUgpTvSgao2JWtMbrT11BaijbNOJzvNT|2^31|1:1";
    const B80: &str = "7 AES_CM_128_HMAC_SHA1_80 inline:gL9ogeYlDF1ATCEr0tNUoZQ6E1qLL+y6PbaizhO8";

    fn sdp(proto: &str, lines: &[String]) -> Sdp {
        let mut s = format!(
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 {proto} 0\r\n"
        );
        for l in lines {
            s.push_str(&format!("a={l}\r\n"));
        }
        Sdp::parse(s.as_bytes()).unwrap()
    }

    /// One key per suite, of its sizes, bytes `n`, `n + 1`, ...
    fn keys(n: u8) -> Vec<MasterKey> {
        Suite::ALL
            .iter()
            .zip(n..)
            .map(|(s, b)| {
                MasterKey::from_suite_bytes(*s, &vec![b; s.key_len() + s.salt_len()]).unwrap()
            })
            .collect()
    }

    fn start(offer: &Sdp) -> (Rekey, SdesOut, Vec<LegChange>) {
        let fp: Fingerprint = FP_OURS.parse().unwrap();
        Rekey::offer(
            0,
            &offer.media()[0],
            offer.session(),
            [keys(1), keys(50)],
            &fp,
            None,
        )
        .unwrap()
        .expect("SRTP to negotiate")
    }

    fn answer(r: &mut Rekey, a: &Sdp) -> (SdesOut, Vec<LegChange>) {
        r.answer(&a.media()[0], a.session()).unwrap()
    }

    /// The answerer is offered the offerer's lines as they are (lifetime
    /// dropped), then the relay's for the other suites, then the relay's
    /// fingerprint; choosing the offerer's suite passes SRTP through.
    #[test]
    fn sdes_offer_and_a_pass_through_answer() {
        let offer = sdp("RTP/SAVP", &[format!("crypto:{A80}")]);
        let (mut r, out, changes) = start(&offer);
        assert_eq!(out.proto, "RTP/SAVP");
        assert_eq!(out.crypto[0], A80.replace("|2^31", ""));
        assert_eq!(out.crypto.len(), Suite::ALL.len());
        let relay = CryptoAttr::parse(&out.crypto[1]).unwrap();
        assert_eq!(relay.tag, 2);
        assert_ne!(relay.suite, Suite::AesCm128HmacSha1_80);
        assert_eq!(
            out.keying,
            [
                "setup:actpass".to_string(),
                format!("fingerprint:{FP_OURS}")
            ]
        );
        assert!(
            changes.is_empty(),
            "early media of an SDES offerer passes: {changes:?}"
        );
        assert!(!r.terminates());
        // B picks AES_CM_128_80 (under another tag): passed through, and
        // A is answered with its own tag and B's key.
        let (out, changes) = answer(&mut r, &sdp("RTP/SAVP", &[format!("crypto:{B80}")]));
        let line = CryptoAttr::parse(&out.crypto[0]).unwrap();
        assert_eq!((line.tag, line.suite), (1, Suite::AesCm128HmacSha1_80));
        assert_eq!(line.key, CryptoAttr::parse(B80).unwrap().key);
        assert!(changes.is_empty() && !r.terminates());
    }

    /// Choosing a relay line, DTLS or plain RTP terminates both sides.
    #[test]
    fn sdes_offer_terminated_on_the_answers_choice() {
        let offer = sdp("RTP/SAVP", &[format!("crypto:{A80}")]);
        let a_key = CryptoAttr::parse(A80).unwrap();
        let check_a = |changes: &[LegChange], out: &SdesOut| {
            let line = CryptoAttr::parse(&out.crypto[0]).unwrap();
            assert_eq!((line.tag, line.suite), (1, Suite::AesCm128HmacSha1_80));
            let a = changes.iter().find(|c| c.0 == 0).expect("A's change");
            let Some(SrtpState::Keys(k)) = a.1 else {
                panic!("{a:?}")
            };
            assert_eq!(k.inbound.key, a_key.key);
            assert_eq!(k.inbound.mki, a_key.mki);
            assert_eq!(k.outbound.key, line.key);
            assert_ne!(k.outbound.key, a_key.key);
        };
        // A relay line, by tag and suite.
        let (mut r, out, _) = start(&offer);
        let relay = CryptoAttr::parse(&out.crypto[1]).unwrap();
        let mut chosen = relay.clone();
        let size = relay.suite.key_len() + relay.suite.salt_len();
        chosen.key = MasterKey::from_suite_bytes(relay.suite, &vec![9; size]).unwrap();
        let (out, changes) = answer(&mut r, &sdp("RTP/SAVP", &[format!("crypto:{chosen}")]));
        check_a(&changes, &out);
        let b = changes.iter().find(|c| c.0 == 1).unwrap();
        let Some(SrtpState::Keys(k)) = b.1 else {
            panic!("{b:?}")
        };
        assert_eq!((k.inbound.key, k.outbound.key), (chosen.key, relay.key));
        assert!(r.terminates());
        // DTLS: the relay is the server toward an `active` answerer.
        let (mut r, _, _) = start(&offer);
        let b_dtls = sdp(
            "RTP/SAVP",
            &["setup:active".into(), format!("fingerprint:{FP_B}")],
        );
        let (out, changes) = answer(&mut r, &b_dtls);
        check_a(&changes, &out);
        let b = changes.iter().find(|c| c.0 == 1).unwrap();
        assert_eq!(b.1, Some(SrtpState::AwaitingKeys));
        assert_eq!(
            b.2,
            Some(DtlsUpdate::On(LegDtls {
                role: DtlsRole::Server,
                remote: FP_B.parse().unwrap()
            }))
        );
        // Plain RTP: B's leg relays plain, A's is terminated.
        let (mut r, _, _) = start(&offer);
        let (out, changes) = answer(&mut r, &sdp("RTP/AVP", &[]));
        check_a(&changes, &out);
        assert!(
            changes
                .iter()
                .any(|c| c.0 == 1 && c.1 == Some(SrtpState::Off))
        );
        // A line neither offered nor the relay's is refused.
        let (mut r, _, _) = start(&offer);
        let bogus = sdp(
            "RTP/SAVP",
            &[
                "crypto:99 AES_CM_128_HMAC_SHA1_32 inline:gL9ogeYlDF1ATCEr0tNUoZQ6E1qLL+y6PbaizhO8"
                    .into(),
            ],
        );
        assert_eq!(
            r.answer(&bogus.media()[0], bogus.session()).unwrap_err(),
            SdesError::NoAcceptedSuite
        );
    }

    /// A DTLS offerer awaits its keys from the offer on; answered with the
    /// relay's fingerprint and `active`, the relay its client.
    #[test]
    fn dtls_offer_terminated_both_sides() {
        let offer = sdp(
            "UDP/TLS/RTP/SAVPF",
            &["setup:actpass".into(), format!("fingerprint:{FP_A}")],
        );
        let (mut r, out, changes) = start(&offer);
        assert_eq!(out.proto, "UDP/TLS/RTP/SAVPF");
        assert_eq!(out.crypto.len(), Suite::ALL.len());
        assert_eq!(CryptoAttr::parse(&out.crypto[0]).unwrap().tag, 1);
        assert_eq!(changes, [(0, Some(SrtpState::AwaitingKeys), None)]);
        assert!(r.terminates());
        let b_dtls = sdp(
            "UDP/TLS/RTP/SAVPF",
            &["setup:passive".into(), format!("fingerprint:{FP_B}")],
        );
        let (out, changes) = answer(&mut r, &b_dtls);
        assert_eq!(
            out.keying,
            ["setup:active".to_string(), format!("fingerprint:{FP_OURS}")]
        );
        assert!(out.crypto.is_empty());
        let role = |leg: usize| {
            changes.iter().find_map(|c| match &c.2 {
                Some(DtlsUpdate::On(d)) if c.0 == leg => Some(d.role),
                _ => None,
            })
        };
        assert_eq!(
            (role(0), role(1)),
            (Some(DtlsRole::Client), Some(DtlsRole::Client))
        );
        // The same offer and answer again change nothing the engine keeps.
        let before = r.clone();
        let fp: Fingerprint = FP_OURS.parse().unwrap();
        let (mut again, _, changes) = Rekey::offer(
            0,
            &offer.media()[0],
            offer.session(),
            r.keys(),
            &fp,
            Some(&before),
        )
        .unwrap()
        .unwrap();
        assert!(changes.is_empty(), "{changes:?}");
        let (_, changes) = answer(&mut again, &b_dtls);
        assert!(
            changes.iter().all(|c| c.1.is_none()),
            "no SRTP state change: {changes:?}"
        );
        // A DTLS answer with actpass decides no role.
        let mut r = start(&offer).0;
        let bad = sdp(
            "UDP/TLS/RTP/SAVPF",
            &["setup:actpass".into(), format!("fingerprint:{FP_B}")],
        );
        assert_eq!(
            r.answer(&bad.media()[0], bad.session()).unwrap_err(),
            SdesError::NoRole("actpass")
        );
    }

    /// An SRTP profile with neither lines nor a fingerprint has nothing to
    /// key: relayed as it is.
    #[test]
    fn nothing_to_key() {
        let offer = sdp("RTP/SAVP", &[]);
        let fp: Fingerprint = FP_OURS.parse().unwrap();
        let r = Rekey::offer(
            0,
            &offer.media()[0],
            offer.session(),
            [keys(1), keys(2)],
            &fp,
            None,
        );
        assert!(r.unwrap().is_none());
    }
}
