//! [`Section`]: the ordered lines of one level of an SDP body, either the
//! session level (everything before the first `m=`) or one media
//! description (its `m=` line and everything up to the next `m=`).
//!
//! Contract: lines are kept verbatim in input order. Typed accessors read
//! the lines on demand; edits touch only the lines they rewrite, insert or
//! remove. Rewritten and inserted lines are written canonically and end
//! with the body's dominant line ending; a line that had no terminator (the
//! last line of an input without final newline) keeps having none.
//! Edits only ever touch `a=` and `c=` lines, so they cannot break the
//! section structure.

use std::net::IpAddr;

use super::attribute::{self, Attribute, ICE_ATTRIBUTES};
use super::connection::Connection;
use super::direction::Direction;
use super::error::EditError;
use super::fmtp::Fmtp;
use super::line::{Line, LineEnding};
use super::rtcp::Rtcp;
use super::rtpmap::Rtpmap;
use crate::rtp::PayloadType;

/// The lines of one SDP level, verbatim and in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    lines: Vec<Line>,
    /// Terminator for rewritten and inserted lines.
    eol: LineEnding,
}

impl Section {
    pub(crate) fn new(eol: LineEnding) -> Section {
        Section {
            lines: Vec::new(),
            eol,
        }
    }

    pub(crate) fn push(&mut self, line: Line) {
        self.lines.push(line);
    }

    pub(crate) fn set_eol(&mut self, eol: LineEnding) {
        self.eol = eol;
    }

    /// All lines of this level, verbatim.
    pub fn lines(&self) -> &[Line] {
        &self.lines
    }

    /// Values (after `x=`, trimmed) of the UTF-8 lines of type `kind`.
    pub fn values(&self, kind: u8) -> impl Iterator<Item = &str> {
        self.lines
            .iter()
            .filter(move |l| l.kind() == Some(kind))
            .filter_map(Line::value)
    }

    /// Every attribute of this level, in order. Non-UTF-8 `a=` lines are
    /// kept but not listed.
    pub fn attributes(&self) -> impl Iterator<Item = Attribute<'_>> {
        self.values(b'a').map(Attribute::parse)
    }

    /// The first attribute named `name` (ASCII-case-insensitive).
    pub fn attribute(&self, name: &str) -> Option<Attribute<'_>> {
        self.attributes().find(|a| a.is(name))
    }

    /// The values of every attribute named `name`, in order (`None` for
    /// occurrences without a value).
    pub fn attribute_values<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = Option<&'a str>> + 'a {
        self.attributes()
            .filter(move |a| a.is(name))
            .map(|a| a.value)
    }

    /// True when an attribute named `name` is present.
    pub fn has_attribute(&self, name: &str) -> bool {
        self.attribute(name).is_some()
    }

    /// The first `c=` line, parsed; `None` when absent or unparsable.
    pub fn connection(&self) -> Option<Connection> {
        Connection::parse(self.values(b'c').next()?)
    }

    /// The explicit direction attribute of this level, if any
    /// (RFC 8866 §6.7).
    pub fn direction(&self) -> Option<Direction> {
        self.attributes()
            .filter(|a| a.value.is_none())
            .find_map(|a| Direction::from_name(a.name))
    }

    /// Every parsable `rtpmap`, in order.
    pub fn rtpmaps(&self) -> impl Iterator<Item = Rtpmap<'_>> {
        self.attribute_values("rtpmap")
            .filter_map(|v| Rtpmap::parse(v?))
    }

    /// The first `rtpmap` for payload type `pt`.
    pub fn rtpmap(&self, pt: PayloadType) -> Option<Rtpmap<'_>> {
        self.rtpmaps().find(|r| r.pt == pt)
    }

    /// Every parsable `fmtp`, in order.
    pub fn fmtps(&self) -> impl Iterator<Item = Fmtp<'_>> {
        self.attribute_values("fmtp")
            .filter_map(|v| Fmtp::parse(v?))
    }

    /// The first `fmtp` for `format` (e.g. `"101"`).
    pub fn fmtp(&self, format: &str) -> Option<Fmtp<'_>> {
        self.fmtps().find(|f| f.format == format)
    }

    /// `a=ptime` in milliseconds (RFC 8866 §6.4).
    pub fn ptime(&self) -> Option<u32> {
        self.attribute_values("ptime").find_map(|v| parse_ms(v?))
    }

    /// `a=maxptime` in milliseconds (RFC 8866 §6.5).
    pub fn maxptime(&self) -> Option<u32> {
        self.attribute_values("maxptime").find_map(|v| parse_ms(v?))
    }

    /// `a=rtcp` (RFC 3605).
    pub fn rtcp(&self) -> Option<Rtcp> {
        self.attribute_values("rtcp").find_map(|v| Rtcp::parse(v?))
    }

    /// True when `a=rtcp-mux` is present (RFC 5761 §5.1.1).
    pub fn rtcp_mux(&self) -> bool {
        self.has_attribute("rtcp-mux")
    }

    /// `a=label` (RFC 4574).
    pub fn label(&self) -> Option<&str> {
        self.attribute_values("label").find_map(|v| v)
    }

    /// Replaces the first attribute named `name` with `a=name[:value]`,
    /// removes the other occurrences, or appends one when absent.
    pub fn set_attribute(&mut self, name: &str, value: Option<&str>) -> Result<(), EditError> {
        attribute::check_name(name)?;
        value.map(attribute::check_value).transpose()?;
        let text = attribute::line_text(name, value);
        self.replace_or_append(|a| a.is(name), text);
        Ok(())
    }

    /// Appends `a=name[:value]` after the last non-blank line of this level,
    /// keeping existing occurrences.
    pub fn insert_attribute(&mut self, name: &str, value: Option<&str>) -> Result<(), EditError> {
        attribute::check_name(name)?;
        value.map(attribute::check_value).transpose()?;
        let idx = self.append_index();
        self.insert_line(idx, attribute::line_text(name, value));
        Ok(())
    }

    /// Removes every attribute named `name`; returns how many.
    pub fn remove_attributes(&mut self, name: &str) -> usize {
        self.retain_attributes(|a| !a.is(name))
    }

    /// Keeps only the attributes for which `keep` returns true; returns how
    /// many were removed. Non-attribute lines are never removed.
    pub fn retain_attributes(&mut self, mut keep: impl FnMut(&Attribute<'_>) -> bool) -> usize {
        let before = self.lines.len();
        self.lines.retain(|l| match attr_of(l) {
            Some(a) => keep(&a),
            None => true,
        });
        before - self.lines.len()
    }

    /// Removes the ICE attributes listed in [`ICE_ATTRIBUTES`]; returns how
    /// many lines were removed.
    pub fn remove_ice(&mut self) -> usize {
        self.retain_attributes(|a| !ICE_ATTRIBUTES.iter().any(|n| a.is(n)))
    }

    /// Makes `dir` the only direction attribute of this level: the first
    /// existing one is rewritten, others removed, or one is appended.
    pub fn set_direction(&mut self, dir: Direction) {
        let is_dir =
            |a: &Attribute<'_>| a.value.is_none() && Direction::from_name(a.name).is_some();
        self.replace_or_append(is_dir, attribute::line_text(dir.name(), None));
    }

    /// Replaces (or inserts) `a=rtcp:<port> [IN <addrtype> <ip>]` (RFC 3605).
    pub fn set_rtcp(&mut self, rtcp: &Rtcp) {
        self.replace_or_append(
            |a| a.is("rtcp"),
            attribute::line_text("rtcp", Some(&rtcp.to_string())),
        );
    }

    /// Makes `c=IN IP4|IP6 <ip>` the only connection line of this level:
    /// the first `c=` is rewritten (dropping any multicast TTL/count), other
    /// `c=` lines are removed; with none, one is inserted before the first
    /// `b=`, `t=`, `r=`, `z=`, `k=` or `a=` line (RFC 8866 §5 order).
    pub fn set_connection(&mut self, ip: IpAddr) {
        let text = format!("c={}", Connection::new(ip));
        let mut found = false;
        let mut i = 0;
        while i < self.lines.len() {
            if self.lines.get(i).and_then(Line::kind) != Some(b'c') {
                i += 1;
                continue;
            }
            if found {
                self.lines.remove(i);
                continue;
            }
            found = true;
            self.rewrite_line(i, text.clone());
            i += 1;
        }
        if found {
            return;
        }
        let idx = self
            .lines
            .iter()
            .position(|l| matches!(l.kind(), Some(b'b' | b't' | b'r' | b'z' | b'k' | b'a')))
            .unwrap_or_else(|| self.append_index());
        self.insert_line(idx, text);
    }

    /// Rebuilds the attributes of this level: every `a=` line (and blank
    /// line) is removed, then the attributes `keep` accepts are appended in
    /// their input order, followed by `generated` (`name[:value]` texts
    /// without `a=`). Every attribute line ends with CRLF (RFC 8866 §5),
    /// other lines keep their terminator (a missing one becomes CRLF). Used
    /// to lay a media description out the way a peer expects (attribute
    /// order carries no meaning in RFC 8866 §5).
    pub fn regroup_attributes(
        &mut self,
        mut keep: impl FnMut(&Attribute<'_>) -> bool,
        generated: &[String],
    ) {
        let lines = std::mem::take(&mut self.lines);
        let mut kept = Vec::new();
        for mut line in lines {
            if line.is_blank() {
                continue;
            }
            match attr_of(&line) {
                Some(a) if !keep(&a) => continue,
                Some(_) => {
                    line.set_ending(LineEnding::CrLf);
                    kept.push(line);
                }
                None if line.kind() == Some(b'a') => {
                    // An `a=` line that is not UTF-8: kept with the others.
                    line.set_ending(LineEnding::CrLf);
                    kept.push(line);
                }
                None => {
                    if line.ending() == LineEnding::Missing {
                        line.set_ending(LineEnding::CrLf);
                    }
                    self.lines.push(line);
                }
            }
        }
        self.lines.extend(kept);
        for g in generated {
            self.lines
                .push(Line::generated(format!("a={g}"), LineEnding::CrLf));
        }
    }

    /// True when a `c=` line (parsable or not) is present.
    pub fn has_connection_line(&self) -> bool {
        self.lines.iter().any(|l| l.kind() == Some(b'c'))
    }

    /// Rewrites line `idx` with `text`, keeping a missing terminator missing.
    pub(crate) fn rewrite_line(&mut self, idx: usize, text: String) {
        let Some(line) = self.lines.get_mut(idx) else {
            return;
        };
        let ending = match line.ending() {
            LineEnding::Missing => LineEnding::Missing,
            _ => self.eol,
        };
        *line = Line::generated(text, ending);
    }

    /// Index of the first line of type `kind`.
    pub(crate) fn position(&self, kind: u8) -> Option<usize> {
        self.lines.iter().position(|l| l.kind() == Some(kind))
    }

    /// Inserts a generated line at `idx`. When the line before it had no
    /// terminator (it was the last input line), it gets one and the new line
    /// takes over the missing terminator.
    pub(crate) fn insert_line(&mut self, idx: usize, text: String) {
        let idx = idx.min(self.lines.len());
        let mut ending = self.eol;
        if let Some(prev) = idx.checked_sub(1).and_then(|p| self.lines.get_mut(p)) {
            if prev.ending() == LineEnding::Missing {
                prev.set_ending(self.eol);
                ending = LineEnding::Missing;
            }
        }
        self.lines.insert(idx, Line::generated(text, ending));
    }

    /// Index just after the last non-blank line.
    fn append_index(&self) -> usize {
        self.lines
            .iter()
            .rposition(|l| !l.is_blank())
            .map_or(self.lines.len(), |i| i + 1)
    }

    /// Rewrites the first attribute matching `is` with `text`, removes the
    /// other matches, or appends `text` when none matches.
    fn replace_or_append(&mut self, is: impl Fn(&Attribute<'_>) -> bool, text: String) {
        let mut found = false;
        let mut i = 0;
        while i < self.lines.len() {
            let hit = self.lines.get(i).and_then(attr_of).is_some_and(|a| is(&a));
            if !hit {
                i += 1;
                continue;
            }
            if found {
                self.lines.remove(i);
                continue;
            }
            found = true;
            self.rewrite_line(i, text.clone());
            i += 1;
        }
        if !found {
            let idx = self.append_index();
            self.insert_line(idx, text);
        }
    }
}

/// The attribute of an `a=` text line.
fn attr_of(line: &Line) -> Option<Attribute<'_>> {
    if line.kind() != Some(b'a') {
        return None;
    }
    line.value().map(Attribute::parse)
}

/// A millisecond attribute value; tolerates a fractional part (`20.0`),
/// which is truncated.
fn parse_ms(v: &str) -> Option<u32> {
    let v = v.trim();
    let int = v.split_once('.').map_or(v, |(i, _)| i);
    int.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::super::line::SplitLines;
    use super::*;

    fn section(text: &str) -> Section {
        let mut s = Section::new(LineEnding::CrLf);
        for (l, e) in SplitLines::new(text.as_bytes()) {
            s.push(Line::from_bytes(l, e));
        }
        s
    }

    fn write(s: &Section) -> String {
        let mut out = Vec::new();
        for l in s.lines() {
            l.write_to(&mut out);
        }
        String::from_utf8(out).unwrap()
    }

    const MEDIA: &str = "m=audio 5000 RTP/AVP 0 101\n\
        a=rtpmap:0 PCMU/8000\r\n\
        a=rtpmap:101 telephone-event/8000\n\
        a=fmtp:101 0-15\n\
        a=ptime:20\n\
        a=maxptime:40.0 \n\
        a=rtcp:5001 IN IP4 192.0.2.1\n\
        a=rtcp-mux\n\
        a=label:1\n\
        a=X-custom:one\n\
        a=x-custom\n\
        a=X-CUSTOM:three\n\
        a=sendonly\n\
        a=candidate:1 1 UDP 1 192.0.2.1 5000 typ host\n\
        a=ice-ufrag:abcd\n\
        a=";

    #[test]
    fn typed_access() {
        let s = section(MEDIA);
        assert_eq!(s.rtpmaps().count(), 2);
        let te = s.rtpmap(PayloadType::new(101).unwrap()).unwrap();
        assert!(te.is_telephone_event());
        assert_eq!(s.fmtp("101").unwrap().params, "0-15");
        assert_eq!(s.ptime(), Some(20));
        assert_eq!(s.maxptime(), Some(40));
        assert_eq!(
            s.rtcp(),
            Some(Rtcp::new(5001, Some("192.0.2.1".parse().unwrap())))
        );
        assert!(s.rtcp_mux());
        assert_eq!(s.label(), Some("1"));
        let custom: Vec<_> = s.attribute_values("x-custom").collect();
        assert_eq!(custom, vec![Some("one"), None, Some("three")]);
        assert_eq!(s.direction(), Some(Direction::SendOnly));
        assert_eq!(s.connection(), None);
        let last = s.attributes().last().unwrap();
        assert_eq!((last.name, last.value), ("", None));
    }

    #[test]
    fn edits_touch_only_their_lines() {
        let mut s = section(MEDIA);
        s.set_direction(Direction::RecvOnly);
        s.set_rtcp(&Rtcp::new(7001, None));
        assert_eq!(s.remove_ice(), 2);
        s.set_attribute("X-custom", Some("only")).unwrap();
        let expected = MEDIA
            .replace("a=sendonly\n", "a=recvonly\r\n")
            .replace("a=rtcp:5001 IN IP4 192.0.2.1\n", "a=rtcp:7001\r\n")
            .replace("a=candidate:1 1 UDP 1 192.0.2.1 5000 typ host\n", "")
            .replace("a=ice-ufrag:abcd\n", "")
            .replace("a=X-custom:one\n", "a=X-custom:only\r\n")
            .replace("a=x-custom\n", "")
            .replace("a=X-CUSTOM:three\n", "");
        assert_eq!(write(&s), expected);
    }

    #[test]
    fn insert_after_unterminated_last_line() {
        let mut s = section("m=audio 0 RTP/AVP 0\na=sendrecv");
        s.insert_attribute("rtcp-mux", None).unwrap();
        assert_eq!(write(&s), "m=audio 0 RTP/AVP 0\na=sendrecv\r\na=rtcp-mux");
        let mut s = section("m=audio 0 RTP/AVP 0\n\n  \n");
        s.set_direction(Direction::Inactive);
        assert_eq!(write(&s), "m=audio 0 RTP/AVP 0\na=inactive\r\n\n  \n");
    }

    #[test]
    fn connection_rewrite_and_insert() {
        let mut s = section("m=audio 1 RTP/AVP 0\ni=x\nb=AS:64\na=sendrecv\n");
        s.set_connection("2001:db8::7".parse().unwrap());
        assert_eq!(
            write(&s),
            "m=audio 1 RTP/AVP 0\ni=x\nc=IN IP6 2001:db8::7\r\nb=AS:64\na=sendrecv\n"
        );
        let mut s = section("a=x\nc=IN IP4 224.2.1.1/127\nc=IN IP4 224.2.1.2/127\nt=0 0");
        s.set_connection("192.0.2.9".parse().unwrap());
        assert_eq!(write(&s), "a=x\nc=IN IP4 192.0.2.9\r\nt=0 0");
        assert_eq!(
            s.connection(),
            Some(Connection::new("192.0.2.9".parse().unwrap()))
        );
    }

    #[test]
    fn rejects_injection() {
        let mut s = section("m=audio 1 RTP/AVP 0\n");
        assert_eq!(
            s.set_attribute("x", Some("1\r\nm=video")),
            Err(EditError::InvalidValue)
        );
        assert!(matches!(
            s.insert_attribute("a b", None),
            Err(EditError::InvalidName(_))
        ));
        assert_eq!(write(&s), "m=audio 1 RTP/AVP 0\n");
    }
}
