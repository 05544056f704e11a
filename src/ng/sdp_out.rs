//! The SDP a relay hands on, laid out as rtpengine 10.5 writes it, so that
//! SBCs, phones and test suites written against rtpengine see the same
//! bytes (checked against a live rtpengine by `tests/ng_differential.rs`).
//!
//! rtpengine regenerates the attributes it manages and keeps the rest.
//! Per media description, in this order: the non-attribute lines (`m=`,
//! `i=`, `c=`, `b=`, `k=`) as they were; the attributes it does not manage,
//! in input order; `a=mid`; per payload type in `m=` order its `rtpmap` (the last
//! one given, else the RFC 3551 §6 static assignment), `fmtp` (the last
//! one given) and every `rtcp-fb`; the direction; `a=rtcp`; `a=rtcp-mux`;
//! `a=ptime` (the first one given). A disabled media (port 0) loses the
//! attributes managed here and keeps the others. At session level the direction attributes move to the media
//! descriptions and the BUNDLE group and ICE options go.
//!
//! Deliberate deviations, each listed in docs/ng-reference.md with the RFC
//! it follows:
//! - A payload type with neither an `rtpmap` nor a static assignment gets
//!   no `rtpmap` (rtpengine writes `a=rtpmap:96 /0`, which RFC 8866 §6.6's
//!   `<encoding name>/<clock rate>` grammar does not allow).
//! - A media-level direction overrides the session-level one (RFC 8866
//!   §6.7); rtpengine lets the session level win.

use crate::rtp::PayloadType;
use crate::sdp::{
    Attribute, Direction, ICE_ATTRIBUTES, MediaSection, Rtpmap, Sdp, Section, parse_payload_type,
};

/// The codec format `format` of `m` names, as rtpengine reads it: the last
/// `a=rtpmap` of that payload type, else its RFC 3551 static assignment.
pub(crate) fn format_codec<'a>(m: &'a MediaSection, format: &str) -> Option<Rtpmap<'a>> {
    let pt = parse_payload_type(format)?;
    last_rtpmap(m.section(), pt).or_else(|| Rtpmap::static_pt(pt))
}

/// Whether `m`'s protocol is DTLS-SRTP (`UDP/TLS/...`).
fn is_dtls(m: &MediaSection) -> bool {
    m.media_line().proto.to_ascii_uppercase().contains("TLS")
}

/// The codec a format names, for matching an answer's formats against the
/// offer's: encoding (lower case), clock rate and channels when known, else
/// the format token itself.
pub(crate) fn codec_key(m: &MediaSection, format: &str) -> String {
    match format_codec(m, format) {
        Some(r) => format!(
            "{}/{}/{}",
            r.encoding.to_ascii_lowercase(),
            r.clock_rate,
            r.channel_count()
        ),
        None => format!("fmt:{format}"),
    }
}

/// The codecs media `m` offers, as [`codec_key`]s in `m=` order, then
/// its format tokens (an answer's format without a known codec matches
/// the offered format of the same number).
pub(crate) fn codec_keys(m: &MediaSection) -> Vec<String> {
    let keys = m.formats().iter().map(|f| codec_key(m, f));
    let tokens = m.formats().iter().map(|f| format!("fmt:{f}"));
    keys.chain(tokens).collect()
}

/// Drops from an answer's `m=` line the formats whose codec the offer did
/// not list (RFC 3264 §6.1), as rtpengine does. An answer left with none
/// keeps its list unchanged.
pub(crate) fn restrict_formats(m: &mut MediaSection, offered: &[String]) {
    if offered.is_empty() {
        return;
    }
    let kept: Vec<String> = m
        .formats()
        .iter()
        .filter(|f| offered.contains(&codec_key(m, f)))
        .cloned()
        .collect();
    if !kept.is_empty() && kept.len() != m.formats().len() {
        m.set_formats(kept);
    }
}

/// The last `a=rtpmap` of `pt` in `section` (rtpengine keeps the last).
fn last_rtpmap(section: &Section, pt: PayloadType) -> Option<Rtpmap<'_>> {
    section.rtpmaps().filter(|r| r.pt == pt).last()
}

/// What the relay writes into one enabled media description besides its
/// codecs.
pub(crate) struct MediaAttrs {
    /// The direction attribute.
    pub direction: Direction,
    /// The `a=rtcp` value (`None`: no `a=rtcp`).
    pub rtcp: Option<String>,
    /// `a=rtcp-mux`.
    pub rtcp_mux: bool,
    /// `a=crypto` values replacing those given (an SDES bridge, after
    /// `a=rtcp-mux` as rtpengine writes them); `None` keeps them as given.
    pub crypto: Option<Vec<String>>,
    /// DTLS keying lines of a bridge (`setup:...`, `fingerprint:...`),
    /// after the crypto lines; with `crypto` set, the given `a=setup` and
    /// `a=fingerprint` are replaced by these (none when empty).
    pub keying: Vec<String>,
    /// The relay's ICE lines (credentials, candidates), last, as rtpengine
    /// writes them; empty for none.
    pub ice: Vec<String>,
}

/// Attributes the layout regenerates (or drops) in a media description;
/// `dtls`: the protocol is DTLS-SRTP, whose `a=setup` is kept; `crypto`:
/// under an SRTP bridge, the `a=crypto`, `a=setup` and `a=fingerprint`
/// lines are regenerated.
fn managed(a: &Attribute<'_>, dtls: bool, crypto: bool) -> bool {
    (crypto && (a.is("crypto") || a.is("fingerprint") || a.is("setup")))
        || a.is("rtpmap")
        || a.is("fmtp")
        || (a.is("rtcp-fb") && !a.value.is_some_and(|v| v.trim_start().starts_with('*')))
        || (a.value.is_none() && Direction::from_name(a.name).is_some())
        || a.is("rtcp")
        || a.is("rtcp-mux")
        || a.is("ptime")
        || (a.is("setup") && !dtls)
        || ICE_ATTRIBUTES.iter().any(|n| a.is(n))
}

/// Lays out enabled media description `m` as rtpengine does (see the
/// module documentation).
pub(crate) fn layout_media(m: &mut MediaSection, attrs: &MediaAttrs) {
    let section = m.section();
    let mut generated = Vec::new();
    // rtpengine writes `a=mid` after the attributes it keeps, before the
    // codecs.
    let mid = section.attribute_values("mid").find_map(|v| v);
    if let Some(mid) = mid {
        generated.push(format!("mid:{}", mid.trim()));
    }
    for format in m.formats() {
        if let Some(r) = format_codec(m, format) {
            generated.push(format!("rtpmap:{r}"));
        }
        let mut fmtp = None;
        let mut fbs = Vec::new();
        for a in section.attributes() {
            let Some(v) = a.value else { continue };
            let (f, rest) = v.split_once(' ').unwrap_or((v, ""));
            if f != format {
                continue;
            }
            if a.is("fmtp") {
                fmtp = Some(format!("fmtp:{format} {}", rest.trim()));
            } else if a.is("rtcp-fb") {
                fbs.push(format!("rtcp-fb:{format} {}", rest.trim()));
            }
        }
        generated.extend(fmtp);
        generated.extend(fbs);
    }
    generated.push(attrs.direction.name().to_string());
    if let Some(r) = &attrs.rtcp {
        generated.push(format!("rtcp:{r}"));
    }
    if attrs.rtcp_mux {
        generated.push("rtcp-mux".to_string());
    }
    if let Some(lines) = &attrs.crypto {
        generated.extend(lines.iter().map(|c| format!("crypto:{c}")));
    }
    generated.extend(attrs.keying.iter().cloned());
    if let Some(p) = section.attribute_values("ptime").find_map(|v| v) {
        generated.push(format!("ptime:{}", p.trim()));
    }
    generated.extend(attrs.ice.iter().cloned());
    let dtls = is_dtls(m);
    let crypto = attrs.crypto.is_some();
    let has_mid = mid.is_some();
    m.section_mut().regroup_attributes(
        |a| !(managed(a, dtls, crypto) || (has_mid && a.is("mid"))),
        &generated,
    );
}

/// A disabled media description loses the attributes the layout manages
/// (codecs, direction, RTCP, ptime) and keeps the others, as rtpengine;
/// `crypto`: its `a=crypto` lines go too (an SDES bridge's).
pub(crate) fn layout_disabled(m: &mut MediaSection, crypto: bool) {
    let dtls = is_dtls(m);
    m.section_mut()
        .regroup_attributes(|a| !managed(a, dtls, crypto), &[]);
}

/// Session level: direction attributes (they moved to the media
/// descriptions), the BUNDLE group and ICE attributes go.
pub(crate) fn layout_session(sdp: &mut Sdp) {
    sdp.session_mut().retain_attributes(|a| {
        !((a.value.is_none() && Direction::from_name(a.name).is_some())
            || (a.is("group") && a.value.is_some_and(|v| v.starts_with("BUNDLE")))
            || ICE_ATTRIBUTES.iter().any(|n| a.is(n)))
    });
}
