//! Local capabilities for offer/answer (RFC 3264): who we are
//! ([`LocalIdentity`]) and, per media stream, what we can do
//! ([`MediaCapabilities`]): codecs with our preferred payload types,
//! telephone-events, ptime, desired direction, address and ports.

use std::net::IpAddr;

use super::direction::Direction;
use super::error::NegotiationError;
use super::media::MediaKind;
use super::telephone_event::TelephoneEvents;
use crate::rtp::PayloadType;

/// The `o=`, `s=` and session `c=` of the SDP we write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalIdentity {
    /// `<username>` of `o=` (`-` is customary).
    pub username: String,
    /// `<sess-id>` of `o=`; constant for the whole session (RFC 3264 §8).
    pub session_id: u64,
    /// `<sess-version>` of our first SDP; later ones are derived from it.
    pub session_version: u64,
    /// `s=` text (`-` is customary).
    pub session_name: String,
    /// Our address, written in `o=` and the session-level `c=`.
    pub address: IpAddr,
}

/// One codec we support.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    /// Encoding name (`PCMU`, `opus`, ...), compared case-insensitively.
    pub name: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Audio channels; `None` means one.
    pub channels: Option<u16>,
    /// Our payload type: used in our offers and reported as the local side
    /// of a [`PtMapping`](super::PtMapping).
    pub pt: PayloadType,
    /// Our `fmtp` parameters; when `None`, an answer echoes the offer's.
    pub fmtp: Option<String>,
}

/// Our RFC 4733 telephone-event support.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEventCaps {
    /// Payload type used in our offers (first clock rate).
    pub pt: PayloadType,
    /// Events we handle.
    pub events: TelephoneEvents,
}

/// What we can do for one media stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaCapabilities {
    /// The media kind this entry answers.
    pub kind: MediaKind,
    /// Accepted transport protocols (compared case-insensitively); offers
    /// use the first.
    pub protos: Vec<String>,
    /// Codecs in our order of preference.
    pub codecs: Vec<Codec>,
    /// Telephone-event support, if any.
    pub telephone_event: Option<TelephoneEventCaps>,
    /// Preferred packetization time in ms (`a=ptime`).
    pub ptime: Option<u32>,
    /// The direction we want (RFC 3264 §5.1, §6.1).
    pub direction: Direction,
    /// Media address when it differs from [`LocalIdentity::address`].
    pub address: Option<IpAddr>,
    /// Our RTP port.
    pub port: u16,
    /// Our RTCP port, written as `a=rtcp` (RFC 3605) when set.
    pub rtcp_port: Option<u16>,
    /// Whether we accept (and offer) RTP/RTCP multiplexing (RFC 5761).
    pub rtcp_mux: bool,
}

impl LocalIdentity {
    /// An identity with username and session name `-`; the version starts
    /// at the session id, a common convention.
    pub fn new(session_id: u64, address: IpAddr) -> LocalIdentity {
        LocalIdentity {
            username: "-".to_owned(),
            session_id,
            session_version: session_id,
            session_name: "-".to_owned(),
            address,
        }
    }

    pub(crate) fn check(&self) -> Result<(), NegotiationError> {
        if !is_token(&self.username) {
            return Err(NegotiationError::InvalidLocal("username"));
        }
        if self.session_name.is_empty() || !is_text(&self.session_name) {
            return Err(NegotiationError::InvalidLocal("session name"));
        }
        Ok(())
    }
}

impl Codec {
    /// A mono codec without fmtp.
    pub fn new(name: &str, clock_rate: u32, pt: PayloadType) -> Codec {
        Codec {
            name: name.to_owned(),
            clock_rate,
            channels: None,
            pt,
            fmtp: None,
        }
    }

    /// Sets the channel count.
    pub fn with_channels(mut self, channels: u16) -> Codec {
        self.channels = Some(channels);
        self
    }

    /// Sets our fmtp parameters.
    pub fn with_fmtp(mut self, fmtp: &str) -> Codec {
        self.fmtp = Some(fmtp.to_owned());
        self
    }

    /// PCMU/8000 at its static payload type 0 (RFC 3551 §6).
    pub fn pcmu() -> Codec {
        Codec::new("PCMU", 8000, PayloadType::PCMU)
    }

    /// PCMA/8000 at its static payload type 8 (RFC 3551 §6).
    pub fn pcma() -> Codec {
        Codec::new("PCMA", 8000, PayloadType::PCMA)
    }
}

impl MediaCapabilities {
    /// An audio stream over `RTP/AVP`, `sendrecv`, with no codec yet.
    pub fn audio(port: u16) -> MediaCapabilities {
        MediaCapabilities {
            kind: MediaKind::Audio,
            protos: vec!["RTP/AVP".to_owned()],
            codecs: Vec::new(),
            telephone_event: None,
            ptime: None,
            direction: Direction::SendRecv,
            address: None,
            port,
            rtcp_port: None,
            rtcp_mux: false,
        }
    }

    /// Appends a codec (lowest preference so far).
    pub fn with_codec(mut self, codec: Codec) -> MediaCapabilities {
        self.codecs.push(codec);
        self
    }

    /// Enables telephone-events at `pt` for `events`.
    pub fn with_telephone_event(
        mut self,
        pt: PayloadType,
        events: TelephoneEvents,
    ) -> MediaCapabilities {
        self.telephone_event = Some(TelephoneEventCaps { pt, events });
        self
    }

    /// Validates that everything can be written into SDP: tokens without
    /// whitespace, no line breaks, payload types unique.
    pub(crate) fn check(&self) -> Result<(), NegotiationError> {
        if self.kind == MediaKind::Other {
            return Err(NegotiationError::InvalidLocal("media kind"));
        }
        if self.protos.is_empty() || !self.protos.iter().all(|p| is_token(p)) {
            return Err(NegotiationError::InvalidLocal("proto"));
        }
        let mut seen = [false; 128];
        let te = self.telephone_event.map(|t| t.pt);
        for pt in self.codecs.iter().map(|c| c.pt).chain(te) {
            let slot = seen.get_mut(usize::from(pt.value()));
            match slot {
                Some(s) if !*s => *s = true,
                _ => return Err(NegotiationError::InvalidLocal("duplicate payload type")),
            }
        }
        for c in &self.codecs {
            if c.name.is_empty() || !c.name.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
                return Err(NegotiationError::InvalidLocal("codec name"));
            }
            if c.fmtp.as_deref().is_some_and(|f| !is_text(f)) {
                return Err(NegotiationError::InvalidLocal("fmtp"));
            }
        }
        Ok(())
    }
}

/// Non-empty, printable, no whitespace.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic())
}

/// No line break or NUL.
fn is_text(s: &str) -> bool {
    !s.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let ok = MediaCapabilities::audio(4000)
            .with_codec(Codec::pcmu())
            .with_telephone_event(PayloadType::new(101).unwrap(), TelephoneEvents::DTMF);
        assert!(ok.check().is_ok());
        let dup = ok
            .clone()
            .with_codec(Codec::new("x", 8000, PayloadType::new(101).unwrap()));
        assert_eq!(
            dup.check(),
            Err(NegotiationError::InvalidLocal("duplicate payload type"))
        );
        let bad_name =
            ok.clone()
                .with_codec(Codec::new("a b", 8000, PayloadType::new(96).unwrap()));
        assert!(bad_name.check().is_err());
        let bad_fmtp = ok
            .clone()
            .with_codec(Codec::pcma().with_fmtp("x\r\na=evil"));
        assert!(bad_fmtp.check().is_err());
        let mut id = LocalIdentity::new(1, "192.0.2.1".parse().unwrap());
        assert!(id.check().is_ok());
        id.username = "a b".into();
        assert!(id.check().is_err());
    }
}
