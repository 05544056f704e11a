//! Generation of the SDP bodies we author (offers and answers): canonical
//! text, CRLF endings, RFC 8866 §5 line order. The text is parsed back into
//! an [`Sdp`] so generated and received bodies share one model.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use super::capability::LocalIdentity;
use super::connection::{AddrType, Connection};
use super::direction::Direction;
use super::error::NegotiationError;
use super::limits::ParseLimits;
use super::session::Sdp;
use crate::rtp::PayloadType;

/// One format of a generated media block.
#[derive(Debug, Clone)]
pub(crate) struct Format<'a> {
    pub pt: PayloadType,
    pub name: &'a str,
    pub clock_rate: u32,
    pub channels: Option<u16>,
    pub fmtp: Option<String>,
}

/// A generated, accepted media description.
#[derive(Debug, Clone)]
pub(crate) struct Block<'a> {
    pub media: &'a str,
    pub port: u16,
    pub proto: &'a str,
    /// Media-level `c=`, when it differs from the session's.
    pub address: Option<IpAddr>,
    pub formats: Vec<Format<'a>>,
    pub ptime: Option<u32>,
    pub rtcp_port: Option<u16>,
    pub rtcp_mux: bool,
    pub direction: Direction,
}

/// Accumulates generated SDP text.
pub(crate) struct Writer {
    out: String,
}

impl Writer {
    /// `v=`, `o=`, `s=`, session `c=` and `t=0 0` (RFC 8866 §5.1-5.9).
    /// The caller has validated `id` ([`LocalIdentity::check`]).
    pub(crate) fn new(id: &LocalIdentity) -> Writer {
        let mut w = Writer {
            out: String::with_capacity(512),
        };
        w.line(format_args!("v=0"));
        w.line(format_args!(
            "o={} {} {} IN {} {}",
            id.username,
            id.session_id,
            id.session_version,
            AddrType::of(id.address),
            id.address
        ));
        w.line(format_args!("s={}", id.session_name));
        w.line(format_args!("c={}", Connection::new(id.address)));
        w.line(format_args!("t=0 0"));
        w
    }

    /// An accepted media description.
    pub(crate) fn block(&mut self, b: &Block<'_>) {
        let mut m = format!("m={} {} {}", b.media, b.port, b.proto);
        for f in &b.formats {
            // Writing to a String cannot fail.
            let _ = write!(m, " {}", f.pt);
        }
        self.line(format_args!("{m}"));
        if let Some(ip) = b.address {
            self.line(format_args!("c={}", Connection::new(ip)));
        }
        for f in &b.formats {
            let ch = f.channels.map(|c| format!("/{c}")).unwrap_or_default();
            self.line(format_args!(
                "a=rtpmap:{} {}/{}{ch}",
                f.pt, f.name, f.clock_rate
            ));
            if let Some(p) = f.fmtp.as_deref().filter(|p| !p.is_empty()) {
                self.line(format_args!("a=fmtp:{} {p}", f.pt));
            }
        }
        if let Some(p) = b.ptime {
            self.line(format_args!("a=ptime:{p}"));
        }
        if let Some(p) = b.rtcp_port {
            self.line(format_args!("a=rtcp:{p}"));
        }
        if b.rtcp_mux {
            self.line(format_args!("a=rtcp-mux"));
        }
        self.line(format_args!("a={}", b.direction));
    }

    /// A rejected media description: port 0, the offered format list kept
    /// (RFC 3264 §6).
    pub(crate) fn rejected(&mut self, media: &str, proto: &str, formats: &[String]) {
        let mut m = format!("m={media} 0 {proto}");
        for f in formats {
            let _ = write!(m, " {f}");
        }
        self.line(format_args!("{m}"));
    }

    /// Parses the text back. Every piece was validated or comes from a
    /// parsed `m=` line's whitespace-free tokens, so this succeeds; an error
    /// is reported rather than assumed away.
    pub(crate) fn finish(self) -> Result<Sdp, NegotiationError> {
        Sdp::parse_with_limits(self.out.as_bytes(), &ParseLimits::UNLIMITED)
            .map_err(|_| NegotiationError::InvalidLocal("generated SDP does not parse"))
    }

    fn line(&mut self, args: fmt::Arguments<'_>) {
        // Writing to a String cannot fail.
        let _ = self.out.write_fmt(args);
        self.out.push_str("\r\n");
    }
}
