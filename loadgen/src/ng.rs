//! A blocking NG control-protocol client (rtpengine's bencode over UDP):
//! `cookie <dict>` requests, retransmitted with the same cookie when no
//! reply comes (the relay answers a retransmission from its reply cache),
//! and helpers for the commands the load generator sends.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use mediarelay::ng::{OwnedValue, Value};
use mediarelay::sdp::Sdp;

/// Why an NG request did not give a usable reply.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NgError {
    /// The socket failed.
    #[error("NG socket: {0}")]
    Io(#[from] io::Error),
    /// No reply after every retransmission.
    #[error("no reply to {command} from {server} after {tries} tries")]
    Timeout {
        /// The command.
        command: String,
        /// The relay.
        server: SocketAddr,
        /// Datagrams sent.
        tries: u32,
    },
    /// The reply is not `cookie <bencode dict>`.
    #[error("malformed NG reply to {command}: {why}")]
    Malformed {
        /// The command.
        command: String,
        /// What is wrong with it.
        why: String,
    },
    /// The relay answered `result: error`.
    #[error("{command} failed: {reason}")]
    Failed {
        /// The command.
        command: String,
        /// Its `error-reason`.
        reason: String,
    },
}

/// One NG client socket talking to one relay.
#[derive(Debug)]
pub struct NgClient {
    sock: UdpSocket,
    server: SocketAddr,
    prefix: String,
    next: u64,
    /// Wait for a reply before retransmitting.
    pub retransmit_after: Duration,
    /// Datagrams sent per request at most.
    pub tries: u32,
    buf: Vec<u8>,
}

impl NgClient {
    /// A client on an ephemeral port of the address family of `server`.
    pub fn new(server: SocketAddr) -> Result<NgClient, NgError> {
        let local: SocketAddr = match server.ip() {
            IpAddr::V4(_) => "0.0.0.0:0",
            IpAddr::V6(_) => "[::]:0",
        }
        .parse()
        .map_err(|_| io::Error::other("local address"))?;
        let sock = UdpSocket::bind(local)?;
        sock.connect(server)?;
        let prefix = format!(
            "{:x}",
            crate::clock::now_ns() ^ u64::from(std::process::id())
        );
        Ok(NgClient {
            sock,
            server,
            prefix,
            next: 0,
            retransmit_after: Duration::from_millis(500),
            tries: 4,
            buf: vec![0; 65536],
        })
    }

    /// The relay this client talks to.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Sends `body` (a dict with at least `command`) and returns the reply
    /// dict; `result: error` becomes [`NgError::Failed`].
    pub fn request(&mut self, body: &OwnedValue) -> Result<OwnedValue, NgError> {
        let command = body
            .get("command")
            .and_then(OwnedValue::as_str)
            .unwrap_or("?")
            .to_string();
        self.next += 1;
        let cookie = format!("{}_{}", self.prefix, self.next);
        let mut msg = cookie.as_bytes().to_vec();
        msg.push(b' ');
        body.encode(&mut msg);
        for _ in 0..self.tries {
            self.sock.send(&msg)?;
            let deadline = Instant::now() + self.retransmit_after;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.sock.set_read_timeout(Some(left))?;
                let n = match self.sock.recv(&mut self.buf) {
                    Ok(n) => n,
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                        ) =>
                    {
                        break;
                    }
                    Err(e) => return Err(e.into()),
                };
                let reply = &self.buf[..n];
                let Some(sp) = reply.iter().position(|&b| b == b' ') else {
                    continue;
                };
                if &reply[..sp] != cookie.as_bytes() {
                    // A late reply to an earlier, retransmitted request.
                    continue;
                }
                let malformed = |why: String| NgError::Malformed {
                    command: command.clone(),
                    why,
                };
                let v = Value::decode(&reply[sp + 1..]).map_err(|e| malformed(e.to_string()))?;
                let v = OwnedValue::from(&v);
                if !matches!(v, OwnedValue::Dict(_)) {
                    return Err(malformed("not a dictionary".into()));
                }
                if v.get("result").and_then(OwnedValue::as_str) == Some("error") {
                    let reason = v
                        .get("error-reason")
                        .and_then(OwnedValue::as_str)
                        .unwrap_or("no error-reason")
                        .to_string();
                    return Err(NgError::Failed { command, reason });
                }
                return Ok(v);
            }
        }
        Err(NgError::Timeout {
            command,
            server: self.server,
            tries: self.tries,
        })
    }

    /// `ping`; Ok when the relay answers `pong`.
    pub fn ping(&mut self) -> Result<(), NgError> {
        let r = self.request(&OwnedValue::dict().with("command", OwnedValue::text("ping")))?;
        match r.get("result").and_then(OwnedValue::as_str) {
            Some("pong") => Ok(()),
            other => Err(NgError::Malformed {
                command: "ping".into(),
                why: format!("result {other:?}, not pong"),
            }),
        }
    }

    /// `offer` or `answer` of a one-stream audio SDP from `media`; returns
    /// the relay's address for the other side to send to (from the SDP in
    /// the reply).
    pub fn offer_answer(
        &mut self,
        command: &str,
        call_id: &str,
        from_tag: &str,
        to_tag: Option<&str>,
        media: SocketAddr,
    ) -> Result<SocketAddr, NgError> {
        let mut body = OwnedValue::dict()
            .with("command", OwnedValue::text(command))
            .with("call-id", OwnedValue::text(call_id))
            .with("from-tag", OwnedValue::text(from_tag));
        if let Some(t) = to_tag {
            body.push("to-tag", OwnedValue::text(t));
        }
        body.push("sdp", OwnedValue::text(&audio_sdp(media)));
        let reply = self.request(&body)?;
        let sdp = reply
            .get("sdp")
            .and_then(OwnedValue::as_str)
            .ok_or_else(|| NgError::Malformed {
                command: command.into(),
                why: "no sdp in the reply".into(),
            })?;
        relay_address(sdp).ok_or_else(|| NgError::Malformed {
            command: command.into(),
            why: "the reply's SDP has no audio address and port".into(),
        })
    }

    /// `delete` of the whole call, at once (`delete delay` 0).
    pub fn delete(&mut self, call_id: &str, from_tag: &str) -> Result<(), NgError> {
        self.request(
            &OwnedValue::dict()
                .with("command", OwnedValue::text("delete"))
                .with("call-id", OwnedValue::text(call_id))
                .with("from-tag", OwnedValue::text(from_tag))
                .with("delete delay", OwnedValue::Int(0)),
        )
        .map(drop)
    }

    /// `list`: the call ids the relay holds (`limit` at most).
    pub fn list(&mut self, limit: u64) -> Result<Vec<String>, NgError> {
        let r = self.request(
            &OwnedValue::dict()
                .with("command", OwnedValue::text("list"))
                .with("limit", OwnedValue::count(limit)),
        )?;
        Ok(r.get("calls")
            .and_then(OwnedValue::as_list)
            .unwrap_or(&[])
            .iter()
            .filter_map(|c| c.as_str().map(str::to_string))
            .collect())
    }

    /// `statistics`: the relay's count of its current sessions
    /// (`statistics.currentstatistics.sessionsown`), when it reports one.
    pub fn current_sessions(&mut self) -> Result<Option<i64>, NgError> {
        let r =
            self.request(&OwnedValue::dict().with("command", OwnedValue::text("statistics")))?;
        Ok(r.get("statistics")
            .and_then(|s| s.get("currentstatistics"))
            .and_then(|c| c.get("sessionsown"))
            .and_then(OwnedValue::as_int))
    }
}

/// A one-stream PCMU audio offer or answer for `media` (RTP port; RTCP on
/// the next one, RFC 3550 §11).
pub fn audio_sdp(media: SocketAddr) -> String {
    let (fam, ip) = match media.ip() {
        IpAddr::V4(ip) => ("IP4", ip.to_string()),
        IpAddr::V6(ip) => ("IP6", ip.to_string()),
    };
    format!(
        "v=0\r\no=loadgen 1 1 IN {fam} {ip}\r\ns=loadgen\r\nc=IN {fam} {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=ptime:20\r\na=sendrecv\r\n",
        media.port()
    )
}

/// The first audio stream's address in `sdp` (its `c=`, media or session
/// level, and its `m=` port).
pub fn relay_address(sdp: &str) -> Option<SocketAddr> {
    let parsed = Sdp::parse(sdp.as_bytes()).ok()?;
    let (idx, m) = parsed
        .media()
        .iter()
        .enumerate()
        .find(|(_, m)| m.port() != 0)?;
    match parsed.media_connection(idx)?.address {
        mediarelay::sdp::Address::Ip(ip) => Some(SocketAddr::new(ip, m.port())),
        mediarelay::sdp::Address::Name(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_address_reads_media_or_session_connection() {
        let a: SocketAddr = "127.0.0.1:4000".parse().unwrap();
        assert_eq!(relay_address(&audio_sdp(a)), Some(a));
        let media_level = "v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\n\
                           m=audio 30000 RTP/AVP 0\r\nc=IN IP4 127.0.0.2\r\n";
        assert_eq!(relay_address(media_level), "127.0.0.2:30000".parse().ok());
        assert_eq!(relay_address("v=0\r\n"), None);
    }
}
