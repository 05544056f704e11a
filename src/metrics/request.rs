//! The HTTP/1.x request head of a metrics scrape, and its routing, sans-IO.
//!
//! Owns: finding the end of a request head in received bytes within a size
//! limit, parsing its request line (RFC 9112 §3), and mapping it to a
//! [`Route`]. Header fields are not interpreted (the server always answers
//! `Connection: close` and ignores any body). Bad input is a typed
//! [`RequestError`], never a panic.

use thiserror::Error;

/// Default limit on the request head (request line and header fields).
pub const MAX_HEAD: usize = 8 * 1024;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `GET /metrics`: the exposition body.
    Metrics,
    /// `GET /ping`: `pong`.
    Ping,
    /// A path this server does not serve (404).
    NotFound,
    /// A known path with a method other than GET or HEAD (405).
    MethodNotAllowed,
}

/// A parsed request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Where it goes.
    pub route: Route,
    /// `HEAD`: answer with headers only.
    pub head_only: bool,
}

/// Why a request head was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The head did not end within the size limit (answered 431).
    #[error("request head exceeds {0} bytes")]
    TooLarge(usize),
    /// The request line is not `METHOD SP target SP HTTP/1.x` (answered 400).
    #[error("malformed request line")]
    Malformed,
}

impl Request {
    /// Looks for a complete head in `buf` (bytes received so far). `Ok(None)`:
    /// not complete yet, read more. A head ends at the first empty line
    /// (`\r\n\r\n`, or `\n\n` from lenient clients, RFC 9112 §2.2).
    pub fn parse(buf: &[u8], max_head: usize) -> Result<Option<Request>, RequestError> {
        let Some(end) = head_end(buf) else {
            if buf.len() >= max_head {
                return Err(RequestError::TooLarge(max_head));
            }
            return Ok(None);
        };
        if end > max_head {
            return Err(RequestError::TooLarge(max_head));
        }
        Self::parse_line(&buf[..end]).map(Some)
    }

    /// Parses the request line, the head's first line (RFC 9112 §3).
    fn parse_line(head: &[u8]) -> Result<Request, RequestError> {
        let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let line = std::str::from_utf8(line).map_err(|_| RequestError::Malformed)?;
        let mut parts = line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(RequestError::Malformed);
        };
        let method_ok = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
        if !method_ok || !target.starts_with('/') || !version.starts_with("HTTP/1.") {
            return Err(RequestError::Malformed);
        }
        // The query string does not select anything here.
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        let head_only = method == "HEAD";
        let known = match path {
            "/metrics" => Some(Route::Metrics),
            "/ping" => Some(Route::Ping),
            _ => None,
        };
        let route = match known {
            None => Route::NotFound,
            Some(_) if method != "GET" && !head_only => Route::MethodNotAllowed,
            Some(r) => r,
        };
        Ok(Request { route, head_only })
    }
}

/// Index just past the head's terminating empty line, if present.
fn head_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse(s: &str) -> Result<Option<Request>, RequestError> {
        Request::parse(s.as_bytes(), MAX_HEAD)
    }

    fn route(s: &str) -> Route {
        parse(s).unwrap().unwrap().route
    }

    #[test]
    fn routes() {
        assert_eq!(
            route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics
        );
        assert_eq!(route("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics);
        assert_eq!(route("GET /ping HTTP/1.1\n\n"), Route::Ping);
        assert_eq!(route("GET / HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route("GET /metricsx HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(
            route("POST /metrics HTTP/1.1\r\n\r\n"),
            Route::MethodNotAllowed
        );
        assert_eq!(route("DELETE /nope HTTP/1.1\r\n\r\n"), Route::NotFound);
        let head = parse("HEAD /metrics HTTP/1.1\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.route, Route::Metrics);
        assert!(head.head_only);
    }

    #[test]
    fn incomplete_then_complete() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n"), Ok(None));
    }

    #[test]
    fn malformed() {
        for bad in [
            "GET /metrics\r\n\r\n",
            "GET  /metrics HTTP/1.1\r\n\r\n",
            "GET /metrics HTTP/2\r\n\r\n",
            "GET metrics HTTP/1.1\r\n\r\n",
            "get /metrics HTTP/1.1\r\n\r\n",
            "GET /metrics HTTP/1.1 x\r\n\r\n",
            "\r\n\r\n",
        ] {
            assert_eq!(parse(bad), Err(RequestError::Malformed), "{bad:?}");
        }
        assert_eq!(
            Request::parse(b"GET /\xff HTTP/1.1\r\n\r\n", MAX_HEAD),
            Err(RequestError::Malformed)
        );
    }

    #[test]
    fn size_limit() {
        let mut big = String::from("GET /metrics HTTP/1.1\r\nX: ");
        big.push_str(&"a".repeat(MAX_HEAD));
        assert_eq!(parse(&big), Err(RequestError::TooLarge(MAX_HEAD)));
        big.push_str("\r\n\r\n");
        assert_eq!(parse(&big), Err(RequestError::TooLarge(MAX_HEAD)));
        let fits = "GET /ping HTTP/1.1\r\n\r\n";
        assert_eq!(
            Request::parse(fits.as_bytes(), fits.len())
                .unwrap()
                .unwrap()
                .route,
            Route::Ping
        );
    }

    proptest! {
        #[test]
        fn never_panics(buf in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Request::parse(&buf, 128);
        }
    }
}
