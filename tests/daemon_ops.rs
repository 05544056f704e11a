//! Operations flags of the `mediarelay` binary, end to end over NG and
//! loopback: `--tos` marks relayed packets (read back from the IP header
//! with `IP_RECVTOS`), `--max-sessions` refuses new calls beyond the limit
//! as rtpengine does, and `--log-facility` sends the logs to a syslog
//! socket (a unix datagram socket the test binds, named by
//! `MEDIARELAY_SYSLOG_SOCKET`).
#![cfg(feature = "daemon")]

mod common;

use std::net::UdpSocket;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, TempDir, audio_sdp, backends, rtp, start, t};
use mediarelay::engine::{enable_recv_tos, recv_with_tos};
use mediarelay::ng::OwnedValue;

/// Places a call through a daemon started with `args` and returns the TOS
/// byte of the first RTP packet the relay forwarded to the answerer.
fn relayed_tos(call: &str, args: &[&str]) -> Option<u8> {
    let (_daemon, mut c) = start(args);
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("127.0.0.1:0").unwrap();
    b.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    enable_recv_tos(b.as_raw_fd(), false).unwrap();
    let pa = a.local_addr().unwrap().port();
    let pb = b.local_addr().unwrap().port();
    let b_sends_to = c.offer(call, &audio_sdp("A", pa), &[]).unwrap();
    let a_sends_to = c.answer(call, &audio_sdp("B", pb), &[]).unwrap();
    a.send_to(&rtp(0x1111, 1, 160, 0xd5), ("127.0.0.1", a_sends_to))
        .unwrap();
    let mut buf = [0u8; 2048];
    let (n, from, tos) = recv_with_tos(&b, &mut buf).expect("B receives A's RTP");
    assert_eq!(n, 172);
    assert_eq!(from.port(), b_sends_to, "sent from B's relay port");
    tos
}

#[test]
fn tos_marks_relayed_media() {
    for (i, backend) in backends().into_iter().enumerate() {
        let (min, max) = (49000 + 100 * i, 49099 + 100 * i);
        let (min, max) = (min.to_string(), max.to_string());
        let tos = relayed_tos(
            &format!("tos-{backend}"),
            &[
                "--io-backend",
                backend,
                "--num-threads",
                "1",
                "--port-min",
                &min,
                "--port-max",
                &max,
                "--tos",
                "184",
            ],
        );
        assert_eq!(tos, Some(184), "{backend}: DSCP EF on the wire");
    }
    // Without --tos the kernel's default stays: the check above is real.
    let tos = relayed_tos(
        "tos-default",
        &[
            "--num-threads",
            "1",
            "--port-min",
            "49200",
            "--port-max",
            "49299",
        ],
    );
    assert_eq!(tos, Some(0));
}

#[test]
fn tos_out_of_range_is_a_config_error() {
    for bad in ["256", "-1", "EF"] {
        let out = Command::new(common::bin())
            .args(["--interface", "127.0.0.1", "--listen-ng", "127.0.0.1:0"])
            .args(["--tos", bad])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("tos"), "{stderr}");
    }
}

/// The NG reply's `result` and `error-reason`.
fn outcome(r: &OwnedValue) -> (String, String) {
    let s = |k: &str| {
        r.get(k)
            .and_then(OwnedValue::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (s("result"), s("error-reason"))
}

fn offer(c: &mut common::Client, call: &str, port: u16) -> OwnedValue {
    c.cmd(&[
        ("command", t("offer")),
        ("call-id", t(call)),
        ("from-tag", t("tagA")),
        ("sdp", t(&audio_sdp("A", port))),
    ])
}

#[test]
fn max_sessions_refuses_new_calls_beyond_the_limit() {
    let (_daemon, mut c) = start(&[
        "--num-threads",
        "1",
        "--port-min",
        "49300",
        "--port-max",
        "49399",
        "--max-sessions",
        "1",
    ]);
    assert_eq!(outcome(&offer(&mut c, "first", 5000)).0, "ok");
    let second = offer(&mut c, "second", 5002);
    assert_eq!(
        outcome(&second),
        (
            "error".to_string(),
            "Parallel session limit reached".to_string()
        )
    );
    assert!(second.get("sdp").is_none());
    // The running call is not affected: re-offers and the answer go on.
    assert_eq!(outcome(&offer(&mut c, "first", 5004)).0, "ok");
    assert!(c.answer("first", &audio_sdp("B", 5006), &[]).is_ok());
    assert_eq!(c.list(), ["first"]);
    // A deleted call (in its delete delay) no longer counts.
    assert_eq!(c.delete("first"), "ok");
    assert_eq!(outcome(&offer(&mut c, "second", 5008)).0, "ok");
}

#[test]
fn max_sessions_zero_refuses_every_call() {
    let (_daemon, mut c) = start(&[
        "--num-threads",
        "1",
        "--port-min",
        "49500",
        "--port-max",
        "49599",
        "--max-sessions",
        "0",
    ]);
    assert_eq!(
        outcome(&offer(&mut c, "drain", 5000)).1,
        "Parallel session limit reached"
    );
    assert!(c.list().is_empty());
}

#[test]
fn log_facility_sends_rfc3164_to_the_syslog_socket() {
    let dir = TempDir::new("syslog");
    let path = dir.0.join("log");
    let syslog = UnixDatagram::bind(&path).unwrap();
    syslog
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let child = Command::new(common::bin())
        .args([
            "--interface",
            "127.0.0.1",
            "--listen-ng",
            "127.0.0.1:0",
            "--num-threads",
            "1",
            "--port-min",
            "49400",
            "--port-max",
            "49499",
            "--log-facility",
            "local3",
        ])
        .env("MEDIARELAY_SYSLOG_SOCKET", &path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut daemon = Daemon(child);
    let mut got = Vec::new();
    let end = Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 8192];
    while !got.iter().any(|m: &String| m.contains("mediarelay ready")) {
        assert!(Instant::now() < end, "no 'ready' in syslog: {got:#?}");
        if let Ok(n) = syslog.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    let prefix = format!("mediarelay[{pid}]: ");
    for m in &got {
        // <PRI>, PRI = facility (local3 = 19) x 8 + severity (RFC 3164
        // §4.1.1), then "Mmm dd hh:mm:ss " and the tag.
        let (pri, rest) = m
            .strip_prefix('<')
            .and_then(|r| r.split_once('>'))
            .unwrap_or_else(|| panic!("no <PRI>: {m}"));
        let pri: u16 = pri.parse().unwrap();
        assert_eq!(pri / 8, 19, "facility of {m}");
        assert!([3, 4, 6, 7].contains(&(pri % 8)), "severity of {m}");
        assert_eq!(rest.as_bytes()[15], b' ', "{m}");
        assert!(rest[16..].starts_with(&prefix), "{m}");
        assert!(!m.ends_with('\n'), "{m:?}");
    }
    let starting = got.iter().find(|m| m.contains("mediarelay starting"));
    assert!(
        starting.is_some_and(|m| m.starts_with("<158>")),
        "info: {got:#?}"
    );
    let _ = daemon.0.kill();
    let _ = daemon.0.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut daemon.0.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(
        !stderr.contains("mediarelay ready"),
        "logged to stderr too: {stderr}"
    );
}

#[test]
fn log_facility_without_syslog_falls_back_to_stderr() {
    let child = Command::new(common::bin())
        .args([
            "--interface",
            "127.0.0.1",
            "--listen-ng",
            "127.0.0.1:0",
            "--num-threads",
            "1",
            "--port-min",
            "49400",
            "--port-max",
            "49499",
            "--log-facility",
            "daemon",
        ])
        .env("MEDIARELAY_SYSLOG_SOCKET", "/nonexistent/mediarelay/log")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut daemon = Daemon(child);
    let stderr = daemon.0.stderr.take().unwrap();
    let mut log = Vec::new();
    use std::io::BufRead;
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap();
        let ready = line.contains("mediarelay ready");
        log.push(line);
        if ready {
            break;
        }
    }
    let warning = log
        .iter()
        .find(|l| l.contains("cannot reach syslog"))
        .unwrap_or_else(|| panic!("no fallback warning: {log:#?}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("/nonexistent/mediarelay/log"), "{warning}");
    assert!(warning.contains("logging to stderr"), "{warning}");
}
