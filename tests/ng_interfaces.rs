//! Named interfaces through the daemon: a call's legs go on the
//! interfaces NG `direction` names, so media is bridged between an
//! internal and an external network and between IPv4 and IPv6, and each
//! side's SDP carries its own interface's address.
//!
//! Runs in a network namespace the test makes (`unshare -n`): the
//! documentation prefixes 203.0.113.0/24 and 2001:db8::/32 are added to
//! its `lo` only, next to 127.0.0.1. Without the privilege to make one the
//! test says so and passes, unless `MEDIARELAY_REQUIRE_NETNS` is set.

#![cfg(feature = "daemon")]

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mediarelay::ng::OwnedValue;

const INSIDE: &str = "MEDIARELAY_IFACES_INSIDE";
const NG: &str = "127.0.0.1:2233";

type Ng = common::NgSocket;

fn t(s: &str) -> OwnedValue {
    OwnedValue::text(s)
}

/// An SDP for an endpoint at `addr`.
fn sdp(id: u32, addr: SocketAddr) -> String {
    let fam = if addr.is_ipv4() { "IP4" } else { "IP6" };
    let ip = addr.ip();
    format!(
        "v=0\r\no=- {id} 1 IN {fam} {ip}\r\ns=-\r\nc=IN {fam} {ip}\r\nt=0 0\r\n\
         m=audio {} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n",
        addr.port()
    )
}

/// The `c=` address and `m=` port of a reply's SDP.
fn relay_of(reply: &OwnedValue) -> SocketAddr {
    let sdp = reply
        .get("sdp")
        .and_then(OwnedValue::as_str)
        .unwrap_or_else(|| panic!("no sdp in {reply:?}"));
    let ip = sdp
        .lines()
        .find_map(|l| l.strip_prefix("c=IN IP4 ").or(l.strip_prefix("c=IN IP6 ")))
        .unwrap()
        .trim();
    let port = sdp
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|r| r.split(' ').next())
        .unwrap();
    SocketAddr::new(ip.parse().unwrap(), port.parse().unwrap())
}

fn rtp(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend(seq.to_be_bytes());
    p.extend(u32::from(seq).wrapping_mul(160).to_be_bytes());
    p.extend(0x1234_5678u32.to_be_bytes());
    p.extend([0xd5; 160]);
    p
}

/// Sends RTP both ways until each side has received 10 packets; returns
/// the sources each side saw.
fn media_crosses(
    a: &UdpSocket,
    a_to: SocketAddr,
    b: &UdpSocket,
    b_to: SocketAddr,
) -> (SocketAddr, SocketAddr) {
    for s in [a, b] {
        s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    }
    let (mut got_a, mut got_b) = (None, None);
    let (mut na, mut nb) = (0, 0);
    let end = Instant::now() + Duration::from_secs(10);
    let mut seq = 0u16;
    let mut buf = [0u8; 2048];
    while (na < 10 || nb < 10) && Instant::now() < end {
        seq = seq.wrapping_add(1);
        a.send_to(&rtp(seq), a_to).unwrap();
        b.send_to(&rtp(seq), b_to).unwrap();
        while let Ok((_, from)) = a.recv_from(&mut buf) {
            na += 1;
            got_a = Some(from);
        }
        while let Ok((_, from)) = b.recv_from(&mut buf) {
            nb += 1;
            got_b = Some(from);
        }
    }
    assert!(
        na >= 10 && nb >= 10,
        "media did not cross: A got {na}, B got {nb}"
    );
    (got_a.unwrap(), got_b.unwrap())
}

/// One call from `a` to `b` with `extra` offer keys: (offer reply relay
/// address for B, answer reply relay address for A).
fn call(
    ng: &mut Ng,
    id: &str,
    a: &UdpSocket,
    b: &UdpSocket,
    extra: Vec<(&str, OwnedValue)>,
) -> (SocketAddr, SocketAddr) {
    let mut offer = vec![
        ("command", t("offer")),
        ("call-id", t(id)),
        ("from-tag", t("tagA")),
        ("sdp", t(&sdp(1, a.local_addr().unwrap()))),
    ];
    offer.extend(extra);
    let r = ng.request(&offer).expect("offer reply");
    assert_eq!(
        r.get("result").and_then(OwnedValue::as_str),
        Some("ok"),
        "{r:?}"
    );
    let to_b = relay_of(&r);
    let r = ng
        .request(&[
            ("command", t("answer")),
            ("call-id", t(id)),
            ("from-tag", t("tagA")),
            ("to-tag", t("tagB")),
            ("sdp", t(&sdp(2, b.local_addr().unwrap()))),
        ])
        .expect("answer reply");
    assert_eq!(
        r.get("result").and_then(OwnedValue::as_str),
        Some("ok"),
        "{r:?}"
    );
    (to_b, relay_of(&r))
}

fn list(items: &[&str]) -> OwnedValue {
    OwnedValue::List(items.iter().map(|s| t(s)).collect())
}

#[test]
fn media_is_bridged_between_named_interfaces_and_address_families() {
    if std::env::var_os(INSIDE).is_some() {
        run_inside();
        return;
    }
    let required = std::env::var_os("MEDIARELAY_REQUIRE_NETNS").is_some();
    let out = Command::new("unshare")
        .args(["-n", "--"])
        .arg(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "media_is_bridged_between_named_interfaces_and_address_families",
            "--nocapture",
        ])
        .env(INSIDE, "1")
        .env("MEDIARELAY_BIN", common::bin())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            assert!(!required, "unshare: {e}");
            eprintln!("no unshare here ({e}): the interface test is skipped");
            return;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() && text.contains("unshare failed") {
        assert!(!required, "cannot make a network namespace: {text}");
        eprintln!("cannot make a network namespace here: the interface test is skipped");
        return;
    }
    println!("{text}");
    assert!(out.status.success(), "interface test failed");
}

fn ip(args: &[&str]) {
    let ok = Command::new("ip")
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip {args:?}");
}

fn run_inside() {
    ip(&["link", "set", "lo", "up"]);
    ip(&["addr", "add", "203.0.113.1/24", "dev", "lo"]);
    ip(&["addr", "add", "203.0.113.2/24", "dev", "lo"]);
    ip(&["-6", "addr", "add", "2001:db8::1/64", "dev", "lo", "nodad"]);
    ip(&["-6", "addr", "add", "2001:db8::2/64", "dev", "lo", "nodad"]);
    let _daemon = common::Daemon(
        Command::new(common::bin())
            .args(["--interface", "internal/127.0.0.1"])
            .args(["--interface", "external/203.0.113.1"])
            .args(["--interface", "v6/2001:db8::1"])
            .args([
                "--listen-ng",
                NG,
                "--listen-http",
                "127.0.0.1:2234",
                "--foreground",
            ])
            .args([
                "--port-min",
                "30000",
                "--port-max",
                "30099",
                "--delete-delay",
                "0",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mediarelay"),
    );
    let mut ng = Ng::connect(NG, Duration::from_millis(300));
    ng.wait_up("mediarelay");
    ng.sock
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();

    // Internal to external: each side sees only its own interface.
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("203.0.113.2:0").unwrap();
    let (to_b, to_a) = call(
        &mut ng,
        "int-ext",
        &a,
        &b,
        vec![("direction", list(&["internal", "external"]))],
    );
    assert_eq!(
        to_b.ip().to_string(),
        "203.0.113.1",
        "B is told the external address"
    );
    assert_eq!(
        to_a.ip().to_string(),
        "127.0.0.1",
        "A is told the internal address"
    );
    let (from_at_a, from_at_b) = media_crosses(&a, to_a, &b, to_b);
    assert_eq!(from_at_a, to_a, "A hears the relay from its own interface");
    assert_eq!(
        from_at_b, to_b,
        "B hears the relay from the external interface"
    );

    // IPv4 to IPv6 by `address family`.
    let a = UdpSocket::bind("127.0.0.1:0").unwrap();
    let b = UdpSocket::bind("[2001:db8::2]:0").unwrap();
    let (to_b, to_a) = call(&mut ng, "v4-v6", &a, &b, vec![("address family", t("IP6"))]);
    assert_eq!(to_b.ip().to_string(), "2001:db8::1");
    assert_eq!(to_a.ip().to_string(), "127.0.0.1");
    media_crosses(&a, to_a, &b, to_b);

    // An IPv6 offer with no direction goes on the IPv6 interface.
    let a = UdpSocket::bind("[2001:db8::2]:0").unwrap();
    let b = UdpSocket::bind("[2001:db8::2]:0").unwrap();
    let (to_b, to_a) = call(&mut ng, "v6", &a, &b, vec![]);
    assert_eq!(to_b.ip().to_string(), "2001:db8::1");
    assert_eq!(to_a.ip().to_string(), "2001:db8::1");
    media_crosses(&a, to_a, &b, to_b);

    // Unknown names are refused, and leave nothing.
    let r = ng
        .request(&[
            ("command", t("offer")),
            ("call-id", t("bogus")),
            ("from-tag", t("tagA")),
            ("sdp", t(&sdp(1, "127.0.0.1:5000".parse().unwrap()))),
            ("direction", list(&["internal", "bogus"])),
        ])
        .unwrap();
    assert_eq!(
        r.get("error-reason").and_then(OwnedValue::as_str),
        Some("Unknown interface 'bogus'")
    );
    let l = ng.request(&[("command", t("list"))]).unwrap();
    let calls: Vec<&str> = l
        .get("calls")
        .and_then(OwnedValue::as_list)
        .unwrap()
        .iter()
        .filter_map(OwnedValue::as_str)
        .collect();
    assert!(!calls.contains(&"bogus"), "{calls:?}");
    println!("interfaces: internal/external and IPv4/IPv6 bridged, media crossed both ways");
}
