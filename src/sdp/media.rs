//! Media descriptions (RFC 8866 §5.14): the `m=` line
//! `m=<media> <port>[/<number of ports>] <proto> <fmt> ...` and the
//! [`MediaSection`] it opens.
//!
//! The `m=` line is parsed when the body is parsed (a malformed one makes
//! the body unusable for a relay); the parsed [`MediaLine`] is kept in sync
//! with the raw line by the edits of this file.

use std::fmt;

use super::line::Line;
use super::rtpmap::{Rtpmap, parse_payload_type};
use super::section::Section;
use crate::rtp::PayloadType;

/// `<media>` (RFC 8866 §5.14; `image` from RFC 6466).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// `audio`.
    Audio,
    /// `video`.
    Video,
    /// `text`.
    Text,
    /// `application`.
    Application,
    /// `message`.
    Message,
    /// `image` (T.38 fax).
    Image,
    /// Anything else.
    Other,
}

/// `<proto>` classified (RFC 8866 §5.14, RFC 3551, RFC 4585, RFC 3711,
/// RFC 5764, ITU-T T.38 `udptl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    /// `RTP/AVP`.
    RtpAvp,
    /// `RTP/AVPF`.
    RtpAvpf,
    /// `RTP/SAVP`.
    RtpSavp,
    /// `RTP/SAVPF`.
    RtpSavpf,
    /// `UDP/TLS/RTP/SAVP`.
    UdpTlsRtpSavp,
    /// `UDP/TLS/RTP/SAVPF`.
    UdpTlsRtpSavpf,
    /// `udptl` (T.38).
    Udptl,
    /// Anything else.
    Other,
}

/// A parsed `m=` line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediaLine {
    /// `<media>` as written.
    pub media: String,
    /// `<port>`; 0 means the stream is disabled or rejected (RFC 3264 §6).
    pub port: u16,
    /// `/<number of ports>`, when present.
    pub port_count: Option<u16>,
    /// `<proto>` as written.
    pub proto: String,
    /// `<fmt>` list as written (payload types for RTP).
    pub formats: Vec<String>,
}

/// One media description: the `m=` line and the lines up to the next one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaSection {
    media: MediaLine,
    /// Line 0 is the `m=` line.
    section: Section,
}

impl MediaKind {
    /// Classifies a `<media>` token (case-insensitive).
    pub fn parse(s: &str) -> MediaKind {
        const KINDS: [(&str, MediaKind); 6] = [
            ("audio", MediaKind::Audio),
            ("video", MediaKind::Video),
            ("text", MediaKind::Text),
            ("application", MediaKind::Application),
            ("message", MediaKind::Message),
            ("image", MediaKind::Image),
        ];
        KINDS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map_or(MediaKind::Other, |(_, k)| *k)
    }

    /// The token, or `None` for [`MediaKind::Other`].
    pub const fn name(self) -> Option<&'static str> {
        match self {
            MediaKind::Audio => Some("audio"),
            MediaKind::Video => Some("video"),
            MediaKind::Text => Some("text"),
            MediaKind::Application => Some("application"),
            MediaKind::Message => Some("message"),
            MediaKind::Image => Some("image"),
            MediaKind::Other => None,
        }
    }
}

impl Proto {
    /// Classifies a `<proto>` token (case-insensitive).
    pub fn parse(s: &str) -> Proto {
        const PROTOS: [(&str, Proto); 7] = [
            ("RTP/AVP", Proto::RtpAvp),
            ("RTP/AVPF", Proto::RtpAvpf),
            ("RTP/SAVP", Proto::RtpSavp),
            ("RTP/SAVPF", Proto::RtpSavpf),
            ("UDP/TLS/RTP/SAVP", Proto::UdpTlsRtpSavp),
            ("UDP/TLS/RTP/SAVPF", Proto::UdpTlsRtpSavpf),
            ("udptl", Proto::Udptl),
        ];
        PROTOS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map_or(Proto::Other, |(_, p)| *p)
    }

    /// True for the RTP profiles, whose formats are payload types.
    pub const fn is_rtp(self) -> bool {
        !matches!(self, Proto::Udptl | Proto::Other)
    }
}

impl MediaLine {
    /// Parses the value of an `m=` line (after `m=`). `None` without the
    /// three leading fields or with a non-numeric port. A format list may
    /// be empty (seen in rejecting answers).
    pub fn parse(value: &str) -> Option<MediaLine> {
        let mut f = value.split_ascii_whitespace();
        let media = f.next()?;
        let port_field = f.next()?;
        let (port, port_count) = match port_field.split_once('/') {
            Some((p, n)) => (p.parse().ok()?, Some(n.parse().ok()?)),
            None => (port_field.parse().ok()?, None),
        };
        let proto = f.next()?;
        Some(MediaLine {
            media: media.to_owned(),
            port,
            port_count,
            proto: proto.to_owned(),
            formats: f.map(str::to_owned).collect(),
        })
    }

    /// The media kind.
    pub fn kind(&self) -> MediaKind {
        MediaKind::parse(&self.media)
    }

    /// The transport protocol.
    pub fn proto_kind(&self) -> Proto {
        Proto::parse(&self.proto)
    }
}

impl MediaSection {
    /// Builds from the already parsed `m=` line and its section (line 0 is
    /// the `m=` line).
    pub(crate) fn new(media: MediaLine, section: Section) -> MediaSection {
        MediaSection { media, section }
    }

    /// The parsed `m=` line.
    pub fn media_line(&self) -> &MediaLine {
        &self.media
    }

    /// The media kind.
    pub fn kind(&self) -> MediaKind {
        self.media.kind()
    }

    /// The `m=` line as stored.
    pub fn m_line(&self) -> Option<&Line> {
        self.section.lines().first()
    }

    /// The transport port.
    pub fn port(&self) -> u16 {
        self.media.port
    }

    /// True when the port is 0 (disabled or rejected, RFC 3264 §6).
    pub fn is_disabled(&self) -> bool {
        self.media.port == 0
    }

    /// The `<fmt>` list.
    pub fn formats(&self) -> &[String] {
        &self.media.formats
    }

    /// The formats that are payload types (0..=127, written canonically:
    /// `008` or `+8` is not one), in `m=` order. Each one's `to_string()`
    /// is a token of [`MediaSection::formats`].
    pub fn payload_types(&self) -> impl Iterator<Item = PayloadType> + '_ {
        self.media
            .formats
            .iter()
            .filter_map(|f| parse_payload_type(f))
    }

    /// What payload type `pt` means here: its `rtpmap`, else the RFC 3551
    /// static assignment, else `None`.
    pub fn codec(&self, pt: PayloadType) -> Option<Rtpmap<'_>> {
        self.section.rtpmap(pt).or_else(|| Rtpmap::static_pt(pt))
    }

    /// The known codecs in `m=` order (formats without a meaning skipped).
    pub fn codecs(&self) -> impl Iterator<Item = Rtpmap<'_>> {
        self.payload_types().filter_map(|pt| self.codec(pt))
    }

    /// The lines and attributes of this media description.
    pub fn section(&self) -> &Section {
        &self.section
    }

    /// Mutable access for attribute and `c=` edits (see [`Section`]).
    pub fn section_mut(&mut self) -> &mut Section {
        &mut self.section
    }

    /// Sets the port, rewriting the `m=` line canonically.
    pub fn set_port(&mut self, port: u16) {
        self.media.port = port;
        self.rewrite();
    }

    /// Sets the `/<number of ports>` suffix (`None` removes it).
    pub fn set_port_count(&mut self, count: Option<u16>) {
        self.media.port_count = count;
        self.rewrite();
    }

    /// Replaces the `<proto>` (e.g. `RTP/AVP` by `RTP/SAVP`), rewriting
    /// the `m=` line canonically.
    pub fn set_proto(&mut self, proto: String) {
        self.media.proto = proto;
        self.rewrite();
    }

    /// Replaces the `<fmt>` list, rewriting the `m=` line canonically.
    pub fn set_formats(&mut self, formats: Vec<String>) {
        self.media.formats = formats;
        self.rewrite();
    }

    fn rewrite(&mut self) {
        let text = format!("m={}", self.media);
        self.section.rewrite_line(0, text);
    }
}

impl fmt::Display for MediaLine {
    /// The value of an `m=` line (without `m=`), single-space separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.media, self.port)?;
        if let Some(n) = self.port_count {
            write!(f, "/{n}")?;
        }
        write!(f, " {}", self.proto)?;
        for fmt in &self.formats {
            write!(f, " {fmt}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_media_lines() {
        let m = MediaLine::parse("audio 49170/2 RTP/AVP 0 8 101").unwrap();
        assert_eq!((m.port, m.port_count), (49170, Some(2)));
        assert_eq!(m.kind(), MediaKind::Audio);
        assert_eq!(m.proto_kind(), Proto::RtpAvp);
        assert_eq!(m.formats, vec!["0", "8", "101"]);
        let t38 = MediaLine::parse("image 6000 udptl t38").unwrap();
        assert_eq!(
            (t38.kind(), t38.proto_kind()),
            (MediaKind::Image, Proto::Udptl)
        );
        assert!(!t38.proto_kind().is_rtp());
        let rej = MediaLine::parse("audio 0 RTP/AVP").unwrap();
        assert!(rej.formats.is_empty());
        assert_eq!(
            MediaLine::parse("video 9 UDP/TLS/RTP/SAVPF 96")
                .unwrap()
                .proto_kind(),
            Proto::UdpTlsRtpSavpf
        );
        assert!(MediaLine::parse("audio 70000 RTP/AVP 0").is_none());
        assert!(MediaLine::parse("audio x RTP/AVP 0").is_none());
        assert!(MediaLine::parse("audio 1/x RTP/AVP 0").is_none());
        assert!(MediaLine::parse("audio 1").is_none());
        assert_eq!(MediaKind::parse("weird"), MediaKind::Other);
    }

    proptest! {
        #[test]
        fn round_trip(media in "[a-z]{1,8}", port in any::<u16>(), count in proptest::option::of(any::<u16>()),
                      proto in "[A-Z]{3}/[A-Z]{3,5}", formats in proptest::collection::vec("[0-9]{1,3}", 0..6)) {
            let m = MediaLine { media, port, port_count: count, proto, formats };
            prop_assert_eq!(MediaLine::parse(&m.to_string()), Some(m));
        }
    }
}
