//! NG datagram framing: `<cookie> <bencoded dictionary>`, and the reply
//! cache that answers retransmissions without executing them twice.
//!
//! A SIP proxy retransmits a command over UDP when the reply is slow or
//! lost; the cookie identifies the command. Executing an `offer` twice
//! would allocate a second set of ports, so replies are cached by cookie
//! for [`ReplyCache::ttl`] and re-sent byte for byte.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use super::bencode::{BencodeError, Value};

/// Why a datagram is not an NG message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// No space separates a cookie from the body.
    #[error("no cookie: the datagram has no space separator")]
    NoCookie,
    /// The cookie is empty.
    #[error("empty cookie")]
    EmptyCookie,
    /// The body is not valid bencode.
    #[error("body: {0}")]
    Bencode(#[from] BencodeError),
    /// The body is bencode but not a dictionary.
    #[error("body is not a dictionary")]
    NotDictionary,
}

/// A decoded NG request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    /// The cookie, echoed in the reply.
    pub cookie: &'a [u8],
    /// The request dictionary.
    pub body: Value<'a>,
}

/// Splits `<cookie> <body>` and decodes the body (strict bencode).
///
/// The cookie alone is returned in the error case when it can be found, so
/// that even a malformed command gets an error reply the sender can match.
pub fn parse(datagram: &[u8]) -> Result<Request<'_>, (Option<&[u8]>, FrameError)> {
    parse_mode(datagram, false)
}

/// [`parse`], with the body read by [`Value::decode_lenient`] when
/// `lenient` (rtpengine's reading of truncated or trailing-garbage
/// bencode).
pub fn parse_mode(
    datagram: &[u8],
    lenient: bool,
) -> Result<Request<'_>, (Option<&[u8]>, FrameError)> {
    let Some(space) = datagram.iter().position(|&b| b == b' ') else {
        return Err((None, FrameError::NoCookie));
    };
    let (cookie, rest) = (&datagram[..space], &datagram[space + 1..]);
    if cookie.is_empty() {
        return Err((None, FrameError::EmptyCookie));
    }
    let body = if lenient {
        Value::decode_lenient(rest)
    } else {
        Value::decode(rest)
    }
    .map_err(|e| (Some(cookie), FrameError::Bencode(e)))?;
    if !matches!(body, Value::Dict(_)) {
        return Err((Some(cookie), FrameError::NotDictionary));
    }
    Ok(Request { cookie, body })
}

/// Writes `<cookie> <body>`.
pub fn write_reply(cookie: &[u8], body: &Value<'_>, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(cookie);
    out.push(b' ');
    body.encode(out);
}

/// Replies by cookie, kept for a time-to-live and bounded in count.
#[derive(Debug)]
pub struct ReplyCache {
    ttl: Duration,
    max: usize,
    replies: HashMap<Vec<u8>, Vec<u8>>,
    /// Insertion order with insertion times, for expiry.
    order: VecDeque<(Instant, Vec<u8>)>,
}

impl ReplyCache {
    /// A cache keeping up to `max` replies for `ttl` each.
    pub fn new(ttl: Duration, max: usize) -> Self {
        ReplyCache {
            ttl,
            max: max.max(1),
            replies: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// How long a reply is kept.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Cached replies.
    pub fn len(&self) -> usize {
        self.replies.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }

    fn expire(&mut self, now: Instant) {
        while let Some((t, _)) = self.order.front() {
            if now.saturating_duration_since(*t) < self.ttl && self.order.len() <= self.max {
                break;
            }
            if let Some((_, cookie)) = self.order.pop_front() {
                self.replies.remove(&cookie);
            }
        }
    }

    /// The cached reply datagram for `cookie`, if still fresh.
    pub fn get(&mut self, now: Instant, cookie: &[u8]) -> Option<&[u8]> {
        self.expire(now);
        self.replies.get(cookie).map(Vec::as_slice)
    }

    /// Remembers the reply datagram sent for `cookie`.
    pub fn insert(&mut self, now: Instant, cookie: &[u8], reply: &[u8]) {
        if self
            .replies
            .insert(cookie.to_vec(), reply.to_vec())
            .is_none()
        {
            self.order.push_back((now, cookie.to_vec()));
        }
        self.expire(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_echoes_the_cookie() {
        let req = parse(b"5323_1 d7:command4:pinge").unwrap();
        assert_eq!(req.cookie, b"5323_1");
        assert_eq!(
            req.body.get("command").and_then(Value::as_str),
            Some("ping")
        );
        let mut out = Vec::new();
        write_reply(
            req.cookie,
            &Value::Dict(vec![(b"result", Value::Bytes(b"pong"))]),
            &mut out,
        );
        assert_eq!(out, b"5323_1 d6:result4:ponge");
    }

    #[test]
    fn framing_errors_keep_the_cookie_when_known() {
        assert_eq!(parse(b"nospace"), Err((None, FrameError::NoCookie)));
        assert_eq!(parse(b" d1:ai1ee"), Err((None, FrameError::EmptyCookie)));
        assert_eq!(
            parse(b"c1 i5e"),
            Err((Some(&b"c1"[..]), FrameError::NotDictionary))
        );
        assert!(
            matches!(parse(b"c2 d7:comm"), Err((Some(c), FrameError::Bencode(_))) if c == b"c2")
        );
    }

    #[test]
    fn cache_answers_within_ttl_and_is_bounded() {
        let t0 = Instant::now();
        let mut c = ReplyCache::new(Duration::from_secs(30), 2);
        c.insert(t0, b"a", b"a reply");
        assert_eq!(
            c.get(t0 + Duration::from_secs(29), b"a"),
            Some(&b"a reply"[..])
        );
        assert_eq!(c.get(t0 + Duration::from_secs(31), b"a"), None);
        c.insert(t0, b"x", b"1");
        c.insert(t0, b"y", b"2");
        c.insert(t0, b"z", b"3");
        assert_eq!(c.len(), 2, "oldest evicted beyond max");
        assert_eq!(c.get(t0, b"x"), None);
        assert_eq!(c.get(t0, b"z"), Some(&b"3"[..]));
    }
}
