//! Shared by the end-to-end daemon tests: start the `mediarelay` binary on
//! loopback, drive it over NG, read its `/metrics`, and build RTP.
//!
//! The binary is the one Cargo built for the test, or `MEDIARELAY_BIN`
//! when set (CI points it at the release build).
// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

#[cfg(feature = "daemon")]
use std::net::SocketAddr;
use std::net::UdpSocket;

/// One `#[test]` per backend for each `name: base_port` pair: `uring::name`
/// runs `name(IoBackend::Uring, base)` and `epoll::name` runs
/// `name(IoBackend::Epoll, base + offset)`, so the two never share ports.
#[macro_export]
macro_rules! both_backends {
    (offset: $offset:expr; $($name:ident: $base:expr),* $(,)?) => {
        mod uring {
            use super::*;
            $(#[test] fn $name() { super::$name(IoBackend::Uring, $base) })*
        }
        mod epoll {
            use super::*;
            $(#[test] fn $name() { super::$name(IoBackend::Epoll, $base + $offset) })*
        }
    };
}
#[cfg(feature = "daemon")]
use std::process::{Child, Command, Stdio};
#[cfg(feature = "daemon")]
use std::time::{Duration, Instant};

#[cfg(feature = "daemon")]
use mediarelay::ng::{OwnedValue, Value};

#[cfg(feature = "daemon")]
/// The daemon binary under test.
pub fn bin() -> String {
    std::env::var("MEDIARELAY_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_mediarelay").into())
}

/// The I/O backends this host can run (`uring` only where io_uring works).
pub fn backends() -> Vec<&'static str> {
    let mut v = Vec::new();
    if mediarelay::engine::uring_support() == mediarelay::engine::UringSupport::Available {
        v.push("uring");
    } else {
        eprintln!("io_uring unavailable here: only the epoll backend is tested");
    }
    v.push("epoll");
    v
}

#[cfg(feature = "daemon")]
/// Kills the daemon when the test ends, however it ends.
pub struct Daemon(pub Child);

#[cfg(feature = "daemon")]
impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(feature = "daemon")]
/// A bare NG client of any NG server (mediarelay or rtpengine): one
/// request, one reply, cookies numbered.
pub struct NgSocket {
    pub sock: UdpSocket,
    n: u32,
}

#[cfg(feature = "daemon")]
impl NgSocket {
    /// A client of the server at `addr`, waiting `timeout` for replies.
    pub fn connect(addr: &str, timeout: Duration) -> NgSocket {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.connect(addr).unwrap();
        sock.set_read_timeout(Some(timeout)).unwrap();
        NgSocket { sock, n: 0 }
    }

    /// One command; the reply dictionary, `None` without one.
    pub fn request<K: AsRef<str>>(&mut self, pairs: &[(K, OwnedValue)]) -> Option<OwnedValue> {
        self.n += 1;
        let cookie = format!("c{}", self.n);
        let mut body = OwnedValue::dict();
        for (k, v) in pairs {
            body.push(k.as_ref(), v.clone());
        }
        let mut dg = format!("{cookie} ").into_bytes();
        dg.extend(body.to_bytes());
        self.sock.send(&dg).ok()?;
        let mut buf = vec![0u8; 65536];
        let n = self.sock.recv(&mut buf).ok()?;
        let rest = buf
            .get(..n)?
            .strip_prefix(format!("{cookie} ").as_bytes())?;
        Some(OwnedValue::from(&Value::decode(rest).ok()?))
    }

    /// Waits (up to 20 s) until the server answers `ping`.
    pub fn wait_up(&mut self, who: &str) {
        let end = Instant::now() + Duration::from_secs(20);
        while self
            .request(&[("command", OwnedValue::text("ping"))])
            .is_none()
        {
            assert!(Instant::now() < end, "{who} never answered ping");
        }
    }
}

#[cfg(feature = "daemon")]
/// An NG client of one daemon.
pub struct Client {
    pub sock: UdpSocket,
    pub ng: SocketAddr,
    /// The daemon's `--listen-http` address.
    pub http: SocketAddr,
    n: u32,
}

#[cfg(feature = "daemon")]
impl Client {
    /// The value of one Prometheus series from `GET /metrics`.
    pub fn metric(&self, series: &str) -> Option<u64> {
        let text = mediarelay::metrics::scrape(self.http, Duration::from_secs(5)).ok()?;
        mediarelay::metrics::read_sample(&text, series)
    }

    /// One datagram out, the reply datagram back (`None` on timeout).
    pub fn raw(&self, datagram: &[u8]) -> Option<Vec<u8>> {
        self.sock.send_to(datagram, self.ng).unwrap();
        let mut buf = vec![0u8; 65536];
        match self.sock.recv_from(&mut buf) {
            Ok((n, _)) => Some(buf[..n].to_vec()),
            Err(_) => None,
        }
    }

    /// One NG command; the reply dictionary.
    pub fn cmd(&mut self, pairs: &[(&str, OwnedValue)]) -> OwnedValue {
        self.n += 1;
        let cookie = format!("t_{}", self.n);
        let mut body = OwnedValue::dict();
        for (k, v) in pairs {
            body.push(k, v.clone());
        }
        let mut dg = format!("{cookie} ").into_bytes();
        dg.extend(body.to_bytes());
        let reply = self.raw(&dg).expect("NG reply");
        let rest = reply
            .strip_prefix(format!("{cookie} ").as_bytes())
            .expect("reply echoes the cookie");
        OwnedValue::from(&Value::decode(rest).expect("bencode reply"))
    }

    /// `offer` of `sdp` from `tagA` with `flags`; the port the answerer is
    /// told to send to, or the error reason.
    pub fn offer(&mut self, call: &str, sdp: &str, flags: &[&str]) -> Result<u16, String> {
        self.sdp_command("offer", call, sdp, flags)
    }

    /// `answer` of `sdp` from `tagB` with `flags`; the port the offerer is
    /// told to send to, or the error reason.
    pub fn answer(&mut self, call: &str, sdp: &str, flags: &[&str]) -> Result<u16, String> {
        self.sdp_command("answer", call, sdp, flags)
    }

    fn sdp_command(
        &mut self,
        command: &str,
        call: &str,
        sdp: &str,
        flags: &[&str],
    ) -> Result<u16, String> {
        let mut pairs = vec![
            ("command", t(command)),
            ("call-id", t(call)),
            ("from-tag", t("tagA")),
            ("sdp", t(sdp)),
        ];
        if command == "answer" {
            pairs.push(("to-tag", t("tagB")));
        }
        if !flags.is_empty() {
            pairs.push((
                "flags",
                OwnedValue::List(flags.iter().map(|f| t(f)).collect()),
            ));
        }
        sdp_port(&self.cmd(&pairs))
    }

    /// `delete` of a whole call; its `result`.
    pub fn delete(&mut self, call: &str) -> String {
        let r = self.cmd(&[("command", t("delete")), ("call-id", t(call))]);
        r.get("result")
            .and_then(OwnedValue::as_str)
            .unwrap_or_default()
            .to_string()
    }

    /// The call-ids `list` returns.
    pub fn list(&mut self) -> Vec<String> {
        let r = self.cmd(&[("command", t("list"))]);
        r.get("calls")
            .and_then(OwnedValue::as_list)
            .map(|l| {
                l.iter()
                    .filter_map(OwnedValue::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(feature = "daemon")]
/// The `m=audio` port of a reply's SDP, or its `error-reason`.
fn sdp_port(reply: &OwnedValue) -> Result<u16, String> {
    match reply.get("sdp").and_then(OwnedValue::as_str) {
        Some(sdp) => Ok(m_port(sdp)),
        None => Err(reply
            .get("error-reason")
            .and_then(OwnedValue::as_str)
            .unwrap_or("no sdp and no error-reason")
            .to_string()),
    }
}

#[cfg(feature = "daemon")]
pub fn t(s: &str) -> OwnedValue {
    OwnedValue::text(s)
}

pub fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The port of the first `m=audio` line.
pub fn m_port(sdp: &str) -> u16 {
    let line = sdp
        .lines()
        .find(|l| l.starts_with("m=audio "))
        .expect("m= line");
    line.split(' ').nth(1).unwrap().parse().unwrap()
}

#[cfg(feature = "daemon")]
/// Packets of the first stream of the first media of `tag` in an NG
/// `query` reply.
pub fn tag_packets(q: &OwnedValue, tag: &str) -> i64 {
    let media = &q
        .get("tags")
        .and_then(|x| x.get(tag))
        .and_then(|x| x.get("medias"))
        .and_then(OwnedValue::as_list)
        .expect("medias")[0];
    let rtp = &media
        .get("streams")
        .and_then(OwnedValue::as_list)
        .expect("streams")[0];
    int_at(rtp, &["stats", "packets"])
}

#[cfg(feature = "daemon")]
pub fn int_at(v: &OwnedValue, path: &[&str]) -> i64 {
    let mut cur = v;
    for k in path {
        cur = cur.get(k).unwrap_or_else(|| panic!("no {k} in {v:?}"));
    }
    cur.as_int().unwrap()
}

/// A plain PCMU audio SDP for an endpoint on 127.0.0.1:`port`.
pub fn audio_sdp(name: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns={name}\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
}

/// A 172-byte PCMU RTP packet (RFC 3550 §5.1) whose payload is `fill`.
pub fn rtp(ssrc: u32, seq: u16, ts: u32, fill: u8) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend(seq.to_be_bytes());
    p.extend(ts.to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    p.extend([fill; 160]);
    p
}

#[cfg(feature = "daemon")]
/// Starts the daemon on loopback with `args` (after `--interface
/// 127.0.0.1`, the NG and HTTP sockets and `--foreground`) and waits until
/// it answers ping.
pub fn start(args: &[&str]) -> (Daemon, Client) {
    let ng_port = free_udp_port();
    let ng: SocketAddr = format!("127.0.0.1:{ng_port}").parse().unwrap();
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let log = if std::env::var_os("MEDIARELAY_TEST_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let child = Command::new(bin())
        .args(["--interface", "127.0.0.1", "--foreground", "--listen-ng"])
        .arg(ng.to_string())
        .arg("--listen-http")
        .arg(http.to_string())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn mediarelay");
    let daemon = Daemon(child);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let c = Client {
        sock,
        ng,
        http,
        n: 0,
    };
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(r) = c.raw(b"p0 d7:command4:pinge") {
            assert_eq!(r, b"p0 d6:result4:ponge");
            break;
        }
        assert!(Instant::now() < end, "daemon never answered ping");
    }
    // Up: give slow commands (a bind retried on a loaded machine) time.
    c.sock
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    (daemon, c)
}

/// A media endpoint and the application's handle on it.
pub type EndpointAndHandle = (
    mediarelay::engine::EndpointInfo,
    mediarelay::media::MediaHandle,
);

/// Two media endpoints on `e` with configs `a` and `b`, each sending to
/// the other's leg (RTCP muxed on the RTP port when `mux`).
pub fn endpoint_pair(
    e: &mediarelay::engine::Engine,
    a: mediarelay::media::SessionConfig,
    b: mediarelay::media::SessionConfig,
    mux: bool,
) -> Result<(EndpointAndHandle, EndpointAndHandle), String> {
    use mediarelay::engine::{EndpointSpec, LegOptions, LegUpdate};
    let now = std::time::Instant::now();
    let (ea, ha) = mediarelay::media::endpoint(a, now).map_err(|e| e.to_string())?;
    let (eb, hb) = mediarelay::media::endpoint(b, now).map_err(|e| e.to_string())?;
    let leg = |remote: Option<std::net::SocketAddr>| LegOptions {
        remote_rtp: remote,
        remote_rtcp: remote.filter(|_| mux),
        rtcp_mux: mux,
        ..LegOptions::default()
    };
    let a = e
        .create_endpoint(
            EndpointSpec {
                tag: 1,
                leg: leg(None),
            },
            Box::new(ea),
        )
        .map_err(|e| e.to_string())?;
    let b = e
        .create_endpoint(
            EndpointSpec {
                tag: 2,
                leg: leg(Some(a.leg.rtp)),
            },
            Box::new(eb),
        )
        .map_err(|e| e.to_string())?;
    e.update_leg(
        a.id,
        0,
        LegUpdate {
            remote_rtp: Some(b.leg.rtp),
            remote_rtcp: mux.then_some(b.leg.rtp),
            ..LegUpdate::default()
        },
    )
    .map_err(|e| e.to_string())?;
    Ok(((a, ha), (b, hb)))
}

/// A two-leg call whose far ends are `a` (leg 0) and `b` (leg 1).
pub fn two_legs(tag: u64, a: &UdpSocket, b: &UdpSocket) -> mediarelay::engine::CallSpec {
    use mediarelay::engine::{CallSpec, LegOptions};
    CallSpec {
        tag,
        legs: [
            LegOptions {
                remote_rtp: Some(a.local_addr().unwrap()),
                ..LegOptions::default()
            },
            LegOptions {
                remote_rtp: Some(b.local_addr().unwrap()),
                ..LegOptions::default()
            },
        ],
    }
}

/// A fresh directory under the system temp dir
/// (`mediarelay-<tag>-<pid>-<nanos>`), removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    /// Creates it.
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("mediarelay-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One datagram received on `s` and where it came from (an interrupted
/// read is retried); `None` when the socket's read timeout passes first.
pub fn recv_from(s: &UdpSocket) -> Option<(Vec<u8>, std::net::SocketAddr)> {
    let mut buf = vec![0u8; 70_000];
    loop {
        match s.recv_from(&mut buf) {
            Ok((n, from)) => {
                buf.truncate(n);
                return Some((buf, from));
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        }
    }
}
