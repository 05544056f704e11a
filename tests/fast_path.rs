//! The kernel fast path (`--fast-path`) through the daemon: latched RTP is
//! forwarded by the eBPF program with nothing lost or changed, the
//! counters the relay reports include it, RTP-bleed packets, DTMF and RTCP
//! still go through userspace, and the program goes away with the daemon
//! (SIGTERM and SIGKILL). On lo here; between network namespaces over
//! veth with checksum offloads off in `fast_path_netns`.
//!
//! Needs root (CAP_BPF, CAP_NET_ADMIN) and a binary built with the BPF
//! object: where the fast path cannot load, the tests say so and pass,
//! unless `MEDIARELAY_REQUIRE_FAST_PATH` is set.

#![cfg(feature = "daemon")]

mod common;

use std::net::UdpSocket;
use std::process::Command;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{Client, start, t, tag_packets};
use mediarelay::ng::OwnedValue;

/// One test at a time: each counts the fast path programs loaded.
static SERIAL: Mutex<()> = Mutex::new(());

const PTIME: Duration = Duration::from_millis(20);

/// Whether the fast path can load here and the tools the tests use are
/// installed; panics when it must be so (`MEDIARELAY_REQUIRE_FAST_PATH`).
fn available() -> bool {
    let skip = |why: String| {
        assert!(
            std::env::var_os("MEDIARELAY_REQUIRE_FAST_PATH").is_none(),
            "the fast path tests must run here: {why}"
        );
        eprintln!("{why}: test skipped");
        false
    };
    for (tool, package) in [
        ("bpftool", "bpftool"),
        ("ethtool", "ethtool"),
        ("ip", "iproute2"),
        ("unshare", "util-linux"),
        ("setpriv", "util-linux"),
        ("python3", "python3"),
    ] {
        let found = Command::new(tool)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok();
        if !found {
            return skip(format!("{tool} not found (Debian package {package})"));
        }
    }
    match mediarelay::engine::fastpath::FastPath::start(&["lo".to_string()], 16) {
        Ok(_) => true,
        Err(e) => skip(format!("kernel fast path unavailable ({e})")),
    }
}

/// Fast path programs loaded in the kernel (a program lives as long as a
/// link or descriptor holds it: the daemon's TCX links).
fn loaded_programs() -> usize {
    let out = Command::new("bpftool")
        .args(["prog", "show", "name", "mediarelay_forward"])
        .output()
        .expect("bpftool (Debian package bpftool)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("name mediarelay_forward"))
        .count()
}

/// Waits up to 3 s for `loaded_programs() == n` (the kernel frees a
/// program after an RCU grace period); the count at the end.
fn settle_programs(n: usize) -> usize {
    let end = Instant::now() + Duration::from_secs(3);
    loop {
        let now = loaded_programs();
        if now == n || Instant::now() > end {
            return now;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// PCMU + telephone-event 101 on 127.0.0.1:`port`.
fn sdp(name: &str, port: u16) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns={name}\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:101 telephone-event/8000\r\na=rtcp-mux\r\n"
    )
}

/// An RTP packet: payload type `pt`, 160 payload bytes derived from
/// `fill` and `seq`, so every packet is distinct.
fn packet(pt: u8, ssrc: u32, seq: u16, fill: u8) -> Vec<u8> {
    let mut p = vec![0x80, pt];
    p.extend(seq.to_be_bytes());
    p.extend((u32::from(seq) * 160).to_be_bytes());
    p.extend(ssrc.to_be_bytes());
    p.extend((0..160u16).map(|i| fill ^ (i as u8) ^ (seq as u8)));
    p
}

/// Sends `n` RTP packets from `sock` to the relay's `port`, one per
/// ptime, from sequence number `first`.
fn send(
    sock: UdpSocket,
    port: u16,
    ssrc: u32,
    fill: u8,
    first: u16,
    n: u16,
) -> JoinHandle<(UdpSocket, Vec<Vec<u8>>)> {
    std::thread::spawn(move || {
        let start = Instant::now();
        let mut sent = Vec::new();
        for i in 0..n {
            let at = start + PTIME * u32::from(i);
            std::thread::sleep(at.saturating_duration_since(Instant::now()));
            let p = packet(0, ssrc, first.wrapping_add(i), fill);
            sock.send_to(&p, ("127.0.0.1", port)).unwrap();
            sent.push(p);
        }
        (sock, sent)
    })
}

/// Everything `sock` receives until it has been quiet for 500 ms.
fn receive(sock: UdpSocket) -> JoinHandle<(UdpSocket, Vec<Vec<u8>>)> {
    std::thread::spawn(move || {
        sock.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 2048];
        let mut idle_since = Instant::now();
        loop {
            match sock.recv_from(&mut buf) {
                Ok((n, _)) => {
                    got.push(buf[..n].to_vec());
                    idle_since = Instant::now();
                }
                Err(_) if idle_since.elapsed() >= Duration::from_millis(1500) => break,
                Err(_) => {}
            }
        }
        (sock, got)
    })
}

/// A call between A and B through `c`: (port A sends to, port B sends to).
fn call(c: &mut Client, id: &str, a: &UdpSocket, b: &UdpSocket) -> (u16, u16) {
    let b_to = c
        .offer(id, &sdp("A", a.local_addr().unwrap().port()), &[])
        .expect("offer");
    let a_to = c
        .answer(id, &sdp("B", b.local_addr().unwrap().port()), &[])
        .expect("answer");
    (a_to, b_to)
}

fn bind() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

#[test]
fn latched_rtp_is_forwarded_in_the_kernel_on_lo() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !available() {
        return;
    }
    for backend in common::backends() {
        let before = settle_programs(0);
        let (mut daemon, mut c) = start(&[
            "--io-backend",
            backend,
            "--fast-path",
            "ebpf",
            "--delete-delay",
            "0",
            "--port-min",
            "24000",
            "--port-max",
            "24099",
        ]);
        assert_eq!(settle_programs(before + 1), before + 1, "{backend}: loaded");
        let (a, b) = (bind(), bind());
        let (a_to, b_to) = call(&mut c, "fp-lo", &a, &b);

        // 5 s of media both ways: the first 3 s (the learning window) in
        // userspace, the rest in the kernel.
        const N: u16 = 250;
        let (ra, rb) = (
            receive(a.try_clone().unwrap()),
            receive(b.try_clone().unwrap()),
        );
        let sa = send(a.try_clone().unwrap(), a_to, 0xaaaa, 0xa0, 1, N);
        let sb = send(b.try_clone().unwrap(), b_to, 0xbbbb, 0xb0, 1, N);
        // An RTP-bleed attacker once the kernel forwards: the stream's own
        // SSRC and the next sequence numbers, from another address.
        std::thread::sleep(Duration::from_millis(4200));
        let attacker = bind();
        for i in 0..20u16 {
            attacker
                .send_to(&packet(0, 0xaaaa, 211 + i, 0xc0), ("127.0.0.1", a_to))
                .unwrap();
            std::thread::sleep(Duration::from_millis(5));
        }
        let (_, sent_a) = sa.join().unwrap();
        let (_, sent_b) = sb.join().unwrap();
        let (_, got_b) = rb.join().unwrap();
        let (_, got_a) = ra.join().unwrap();
        assert_eq!(
            got_b, sent_a,
            "{backend}: B gets exactly what A sent, in order"
        );
        assert_eq!(got_a, sent_b, "{backend}: A gets exactly what B sent");
        let kernel = c.metric("mediarelay_fast_path_packets_total").unwrap();
        assert!(
            kernel >= 100,
            "{backend}: the kernel forwarded {kernel} packets"
        );
        assert_eq!(c.metric("mediarelay_fast_path_streams"), Some(2));
        // The query reads the kernel's counters: every packet counted once.
        let q = c.cmd(&[("command", t("query")), ("call-id", t("fp-lo"))]);
        assert_eq!(tag_packets(&q, "tagA"), i64::from(N), "{backend}: {q:?}");
        assert_eq!(tag_packets(&q, "tagB"), i64::from(N), "{backend}: {q:?}");
        let dropped = c
            .metric("mediarelay_dropped_packets_total{reason=\"source_active\"}")
            .unwrap_or(0);
        assert_eq!(
            dropped, 20,
            "{backend}: the attacker's packets were dropped"
        );

        // DTMF (telephone-event) and RTCP on the muxed port: userspace.
        let kernel_before = c.metric("mediarelay_fast_path_packets_total").unwrap();
        let rb = receive(b.try_clone().unwrap());
        let mut extra = Vec::new();
        for i in 0..10u16 {
            let p = packet(101, 0xaaaa, 251 + i, 0xd0);
            a.send_to(&p, ("127.0.0.1", a_to)).unwrap();
            extra.push(p);
            std::thread::sleep(PTIME);
        }
        // RTCP receiver report (RFC 3550 §6.4.2), no report blocks.
        let rr = vec![0x80, 201, 0, 1, 0, 0, 0xaa, 0xaa];
        a.send_to(&rr, ("127.0.0.1", a_to)).unwrap();
        extra.push(rr);
        let (_, got_b) = rb.join().unwrap();
        assert_eq!(got_b, extra, "{backend}: DTMF and RTCP relayed unchanged");
        let q = c.cmd(&[("command", t("query")), ("call-id", t("fp-lo"))]);
        assert_eq!(
            c.metric("mediarelay_fast_path_packets_total"),
            Some(kernel_before),
            "{backend}: DTMF and RTCP did not go through the kernel: {q:?}"
        );

        // A re-offer restarts A's learning: its stream is back in
        // userspace at once (until it is learned again), B's stays.
        let reoffer = c.offer("fp-lo", &sdp("A", a.local_addr().unwrap().port()), &[]);
        assert_eq!(reoffer, Ok(b_to), "{backend}: same port after a re-offer");
        assert_eq!(
            c.metric("mediarelay_fast_path_streams"),
            Some(1),
            "{backend}"
        );

        // Delete: the entries go, the counters stay whole.
        let d = c.cmd(&[("command", t("delete")), ("call-id", t("fp-lo"))]);
        assert_eq!(d.get("result").and_then(OwnedValue::as_str), Some("ok"));
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(c.metric("mediarelay_fast_path_streams"), Some(0));

        // SIGTERM: the program is detached.
        let pid = daemon.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let _ = daemon.0.wait();
        assert_eq!(
            settle_programs(before),
            before,
            "{backend}: gone on SIGTERM"
        );
    }
}

#[test]
fn nothing_forwards_after_the_daemon_is_killed() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !available() {
        return;
    }
    let before = settle_programs(0);
    let (mut daemon, mut c) = start(&[
        "--fast-path",
        "ebpf",
        "--port-min",
        "24100",
        "--port-max",
        "24199",
    ]);
    let (a, b) = (bind(), bind());
    let (a_to, _) = call(&mut c, "fp-kill", &a, &b);
    // 4 s of A's media: latched, out of the learning window, offloaded.
    let sa = send(a.try_clone().unwrap(), a_to, 0xaaaa, 0xa0, 1, 200);
    let rb = receive(b.try_clone().unwrap());
    sa.join().unwrap();
    let (_, got) = rb.join().unwrap();
    assert_eq!(got.len(), 200);
    assert_eq!(c.metric("mediarelay_fast_path_streams"), Some(1));
    assert_eq!(settle_programs(before + 1), before + 1, "loaded");
    // SIGKILL: no chance to clean up; the kernel drops the links.
    daemon.0.kill().unwrap();
    let _ = daemon.0.wait();
    assert_eq!(settle_programs(before), before, "gone on SIGKILL");
    let rb = receive(b.try_clone().unwrap());
    let sa = send(a.try_clone().unwrap(), a_to, 0xaaaa, 0xa0, 201, 10);
    sa.join().unwrap();
    let (_, got) = rb.join().unwrap();
    assert!(got.is_empty(), "nothing relayed for a dead daemon");
}

// ---- Between network namespaces over veth ----------------------------

const INSIDE: &str = "MEDIARELAY_FAST_PATH_NETNS_INSIDE";

/// One peer in its namespace: sends `n` RTP packets (one per 20 ms) to
/// the relay while receiving; prints what it got as JSON. Its packets and
/// the other peer's are built alike, so each checks the other's bytes.
const PEER: &str = r#"
import json, socket, sys, time
me, port, relay, rport, ssrc, fill, pssrc, pfill, n = sys.argv[1:10]
port, rport, ssrc, fill, pssrc, pfill, n = map(int, (port, rport, ssrc, fill, pssrc, pfill, n))
def pkt(ssrc, fill, seq):
    h = bytes([0x80, 0]) + seq.to_bytes(2, "big") + (seq * 160).to_bytes(4, "big") + ssrc.to_bytes(4, "big")
    return h + bytes((fill ^ i ^ seq) & 0xff for i in range(160))
def csum_errors():
    rows = [l.split() for l in open("/proc/net/snmp") if l.startswith("Udp:")]
    return int(rows[1][rows[0].index("InCsumErrors")])
e0 = csum_errors()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((me, port))
s.setsockopt(socket.IPPROTO_IP, socket.IP_RECVTOS, 1)
s.settimeout(0.005)
time.sleep(0.5)  # the other peer binds meanwhile
start = time.monotonic()
got, sources, tos, i = [], set(), set(), 0
while True:
    now = time.monotonic()
    if i < n and now >= start + i * 0.02:
        s.sendto(pkt(ssrc, fill, i + 1), (relay, rport))
        i += 1
    try:
        data, anc, _, addr = s.recvmsg(2048, 64)
        got.append(data)
        sources.add("%s:%d" % addr)
        tos.update(d[0] for lvl, typ, d in anc if typ == socket.IP_TOS)
    except socket.timeout:
        pass
    if i >= n and now > start + n * 0.02 + 1.5:
        break
identical = got == [pkt(pssrc, pfill, k + 1) for k in range(len(got))]
print(json.dumps({"received": len(got), "identical": identical,
                  "sources": sorted(sources), "tos": sorted(tos),
                  "csum_errors": csum_errors() - e0}))
"#;

#[test]
fn fast_path_netns() {
    if std::env::var_os(INSIDE).is_some() {
        netns_inside();
        return;
    }
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !available() {
        return;
    }
    let out = Command::new("unshare")
        .args(["-n", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "fast_path_netns", "--nocapture"])
        .env(INSIDE, "1")
        .env("MEDIARELAY_BIN", common::bin())
        .output()
        .expect("unshare (util-linux)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "netns fast path test failed");
}

fn run(cmd: &str, args: &[&str]) {
    let ok = Command::new(cmd)
        .args(args)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "{cmd} {args:?}");
}

/// Named namespaces, deleted when the test ends.
struct Netns(Vec<String>);

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.0 {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Runs in the relay's namespace: the caller (192.0.2.2) and callee
/// (198.51.100.2) each in their own namespace, joined to the relay's over
/// veth with checksum offloads off, so every receiver verifies the UDP
/// checksum in software (a wrong one is dropped and counted), and the
/// IPv4 header checksum after the TOS rewrite (`--tos`).
fn netns_inside() {
    let pid = std::process::id();
    let (caller, callee) = (format!("mrfp-c-{pid}"), format!("mrfp-e-{pid}"));
    run("ip", &["link", "set", "lo", "up"]);
    run("ip", &["netns", "add", &caller]);
    let _ns = Netns(vec![caller.clone()]);
    run("ip", &["netns", "add", &callee]);
    let _ns2 = Netns(vec![callee.clone()]);
    for (ns, here, there, relay_ip, peer_ip) in [
        (&caller, "rc", "cr", "192.0.2.1/24", "192.0.2.2/24"),
        (&callee, "re", "er", "198.51.100.1/24", "198.51.100.2/24"),
    ] {
        run(
            "ip",
            &[
                "link", "add", here, "type", "veth", "peer", "name", there, "netns", ns,
            ],
        );
        run("ip", &["addr", "add", relay_ip, "dev", here]);
        run("ip", &["link", "set", here, "up"]);
        run("ethtool", &["-K", here, "tx", "off", "rx", "off"]);
        let inside = |args: &[&str]| {
            let mut v = vec!["netns", "exec", ns.as_str()];
            v.extend_from_slice(args);
            run("ip", &v);
        };
        inside(&["ip", "addr", "add", peer_ip, "dev", there]);
        inside(&["ip", "link", "set", there, "up"]);
        inside(&["ip", "link", "set", "lo", "up"]);
        inside(&["ethtool", "-K", there, "tx", "off", "rx", "off"]);
    }
    let _daemon = common::Daemon(
        Command::new(common::bin())
            .args(["--interface", "internal/192.0.2.1"])
            .args(["--interface", "external/198.51.100.1"])
            .args(["--listen-ng", "127.0.0.1:2235"])
            .args(["--listen-http", "127.0.0.1:2236", "--foreground"])
            .args(["--port-min", "30000", "--port-max", "30099"])
            .args(["--delete-delay", "0", "--fast-path", "ebpf"])
            // DSCP EF on what the relay sends, from userspace and the kernel.
            .args(["--tos", "184"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("spawn mediarelay"),
    );
    let mut ng = common::NgSocket::connect("127.0.0.1:2235", Duration::from_millis(300));
    ng.wait_up("mediarelay");
    ng.sock
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let sdp = |name: &str, ip: &str, port: u16| {
        format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns={name}\r\nc=IN IP4 {ip}\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
        )
    };
    let port_of = |r: &OwnedValue| {
        let sdp = r.get("sdp").and_then(OwnedValue::as_str).expect("sdp");
        common::m_port(sdp)
    };
    let offer = ng
        .request(&[
            ("command", t("offer")),
            ("call-id", t("fp-ns")),
            ("from-tag", t("tagA")),
            ("sdp", t(&sdp("A", "192.0.2.2", 40000))),
            (
                "direction",
                OwnedValue::List(vec![t("internal"), t("external")]),
            ),
        ])
        .expect("offer");
    let callee_to = port_of(&offer);
    let answer = ng
        .request(&[
            ("command", t("answer")),
            ("call-id", t("fp-ns")),
            ("from-tag", t("tagA")),
            ("to-tag", t("tagB")),
            ("sdp", t(&sdp("B", "198.51.100.2", 40002))),
        ])
        .expect("answer");
    let caller_to = port_of(&answer);

    // 5 s both ways: 3 s of learning in userspace, then the kernel.
    let n = "250";
    let peer = |ns: &str, args: [&str; 8]| {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", ns, "python3", "-c", PEER]);
        c.args(args);
        c.args([n]);
        c.spawn_piped()
    };
    let (ct, et) = (caller_to.to_string(), callee_to.to_string());
    let a = peer(
        &caller,
        [
            "192.0.2.2",
            "40000",
            "192.0.2.1",
            &ct,
            "43690",
            "160",
            "48059",
            "176",
        ],
    );
    let b = peer(
        &callee,
        [
            "198.51.100.2",
            "40002",
            "198.51.100.1",
            &et,
            "48059",
            "176",
            "43690",
            "160",
        ],
    );
    let (ra, rb) = (a.finish(), b.finish());
    let kernel = metric("127.0.0.1:2236", "mediarelay_fast_path_packets_total");
    let errors = metric("127.0.0.1:2236", "mediarelay_fast_path_errors_total");
    println!("caller: {ra}\ncallee: {rb}\nkernel-forwarded: {kernel}");
    for (who, r, relay) in [
        ("caller", &ra, format!("192.0.2.1:{caller_to}")),
        ("callee", &rb, format!("198.51.100.1:{callee_to}")),
    ] {
        assert!(r.contains("\"received\": 250"), "{who}: {r}");
        assert!(r.contains("\"identical\": true"), "{who}: {r}");
        assert!(r.contains("\"csum_errors\": 0"), "{who}: {r}");
        assert!(
            r.contains("\"tos\": [184]"),
            "{who}: every packet marked EF: {r}"
        );
        assert!(
            r.contains(&format!("\"sources\": [\"{relay}\"]")),
            "{who} hears only the relay's {relay}: {r}"
        );
    }
    assert!(kernel >= 100, "the kernel forwarded {kernel} packets");
    assert_eq!(errors, 0, "fast path entry errors");
    let q = ng
        .request(&[("command", t("query")), ("call-id", t("fp-ns"))])
        .expect("query");
    assert_eq!(tag_packets(&q, "tagA"), 250, "{q:?}");
    assert_eq!(tag_packets(&q, "tagB"), 250, "{q:?}");
}

/// One series from `GET /metrics` at `http`.
fn metric(http: &str, series: &str) -> u64 {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(http).unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    tcp.read_to_string(&mut body).unwrap();
    body.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no {series} in {body}"))
}

/// A child whose stdout is collected.
trait SpawnPiped {
    fn spawn_piped(&mut self) -> std::process::Child;
}

impl SpawnPiped for Command {
    fn spawn_piped(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn peer")
    }
}

/// Waits for a peer and returns its report.
trait Finish {
    fn finish(self) -> String;
}

impl Finish for std::process::Child {
    fn finish(self) -> String {
        let out = self.wait_with_output().expect("peer");
        assert!(out.status.success(), "peer failed");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

#[test]
fn media_timeout_and_nat_rebinding_see_kernel_traffic() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !available() {
        return;
    }
    let (_daemon, mut c) = start(&[
        "--fast-path",
        "ebpf",
        "--timeout",
        "4",
        "--delete-delay",
        "0",
        "--port-min",
        "24200",
        "--port-max",
        "24299",
    ]);
    let (a, b) = (bind(), bind());
    let (a_to, b_to) = call(&mut c, "fp-nat", &a, &b);
    // B sends for 9 s; A for 6 s, then its NAT gives it a new port and it
    // continues the same stream from there for 3 s. The kernel forwards
    // from 3 s on, so userspace sees next to nothing for 6 s: longer than
    // the 4 s media timeout.
    let (ra, rb) = (
        receive(a.try_clone().unwrap()),
        receive(b.try_clone().unwrap()),
    );
    let sb = send(b.try_clone().unwrap(), b_to, 0xbbbb, 0xb0, 1, 450);
    let (_, sent_a) = send(a.try_clone().unwrap(), a_to, 0xaaaa, 0xa0, 1, 300)
        .join()
        .unwrap();
    let a2 = bind();
    let ra2 = receive(a2.try_clone().unwrap());
    let (_, sent_a2) = send(a2.try_clone().unwrap(), a_to, 0xaaaa, 0xa0, 301, 150)
        .join()
        .unwrap();
    sb.join().unwrap();
    let stopped = Instant::now();
    let (_, got_b) = rb.join().unwrap();
    let (_, got_a) = ra.join().unwrap();
    let (_, got_a2) = ra2.join().unwrap();

    // The rebinding: A's new source takes over on its second packet.
    assert_eq!(&got_b[..300], &sent_a[..], "A's packets before the move");
    assert!(
        got_b.len() >= 300 + 148,
        "B got {} of A's packets",
        got_b.len()
    );
    assert_eq!(got_b[got_b.len() - 1], sent_a2[149], "the last one arrived");
    assert!(
        got_a.len() <= 302,
        "the old address gets nothing after the move"
    );
    assert!(
        got_a2.len() >= 140,
        "B's packets follow A to its new address: {}",
        got_a2.len()
    );
    let q = c.cmd(&[("command", t("query")), ("call-id", t("fp-nat"))]);
    assert_eq!(tag_packets(&q, "tagB"), 450, "{q:?}");

    // The media timeout counts kernel-forwarded packets: the call is alive
    // 2.5 s after the last packet (userspace alone saw none for 6 s), and
    // gone once the timeout has passed.
    std::thread::sleep(
        (stopped + Duration::from_millis(2500)).saturating_duration_since(Instant::now()),
    );
    assert_eq!(
        c.list(),
        vec!["fp-nat".to_string()],
        "alive while media flowed"
    );
    let end = stopped + Duration::from_secs(10);
    while !c.list().is_empty() {
        assert!(Instant::now() < end, "the call never timed out");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(c.metric("mediarelay_fast_path_streams"), Some(0));
}

/// The systemd unit's privileges (`User=` an unprivileged user,
/// `AmbientCapabilities=CAP_BPF CAP_NET_ADMIN`) are enough to load the
/// program, attach it and install entries: run as `nobody` with only
/// those two capabilities (setpriv, util-linux).
#[test]
fn cap_bpf_and_cap_net_admin_suffice() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !available() {
        return;
    }
    let ng_port = common::free_udp_port();
    let http = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let _daemon = common::Daemon(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args([
                "--inh-caps=+bpf,+net_admin",
                "--ambient-caps=+bpf,+net_admin",
            ])
            .arg(common::bin())
            .args(["--interface", "127.0.0.1", "--foreground"])
            .args(["--listen-ng", &format!("127.0.0.1:{ng_port}")])
            .args(["--listen-http", &http.to_string()])
            .args(["--port-min", "24300", "--port-max", "24399"])
            // Refuses to start without the fast path.
            .args(["--fast-path", "ebpf"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("setpriv (util-linux)"),
    );
    let mut ng =
        common::NgSocket::connect(&format!("127.0.0.1:{ng_port}"), Duration::from_millis(300));
    ng.wait_up("mediarelay as nobody");
    // Loaded without CAP_PERFMON the program is unnamed (the loader cannot
    // probe for program names): count the classifiers nobody owns.
    assert_eq!(classifiers_of_nobody(), 1, "loaded and attached");
    ng.sock
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let (a, b) = (bind(), bind());
    ng.request(&[
        ("command", t("offer")),
        ("call-id", t("fp-caps")),
        ("from-tag", t("tagA")),
        ("sdp", t(&sdp("A", a.local_addr().unwrap().port()))),
    ])
    .expect("offer");
    let port = |r: &OwnedValue| common::m_port(r.get("sdp").and_then(OwnedValue::as_str).unwrap());
    let answer = ng
        .request(&[
            ("command", t("answer")),
            ("call-id", t("fp-caps")),
            ("from-tag", t("tagA")),
            ("to-tag", t("tagB")),
            ("sdp", t(&sdp("B", b.local_addr().unwrap().port()))),
        ])
        .expect("answer");
    // A's media, for 4 s: out of the learning window, into the kernel.
    let a_to = port(&answer);
    let rb = receive(b.try_clone().unwrap());
    send(a.try_clone().unwrap(), a_to, 0xaaaa, 0xa0, 1, 200)
        .join()
        .unwrap();
    let (_, got) = rb.join().unwrap();
    assert_eq!(got.len(), 200);
    assert_eq!(
        metric(&http.to_string(), "mediarelay_fast_path_streams"),
        1,
        "the entry was installed"
    );
    assert!(metric(&http.to_string(), "mediarelay_fast_path_packets_total") > 0);
}

/// `sched_cls` programs loaded by uid 65534 (`nobody`).
fn classifiers_of_nobody() -> usize {
    let out = Command::new("bpftool")
        .args(["prog", "show"])
        .output()
        .expect("bpftool (Debian package bpftool)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].contains(" sched_cls ") && w[1].contains("uid 65534"))
        .count()
}
