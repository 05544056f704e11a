//! rtpengine's recorded replies (`tests/data/ng`, groups `ping` and
//! `errors`) against the daemon's: `tests/ng_reference/record.py` replays
//! rtpengine's requests to the mediarelay binary and
//! `tests/ng_reference/compare.py` compares the reply shapes (keys and value
//! types, recursively). Strict bencode (the default) answers the two
//! malformed datagrams rtpengine reads anyway with an error, and only those;
//! `--ng-lenient-bencode` reads them as rtpengine does, and every reply has
//! rtpengine's shape. Refused datagrams are logged, at most once a second.

#![cfg(feature = "daemon")]

mod common;

use std::process::Command;

const DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Replays the recorded requests to a daemon started with `args`; the
/// comparison's summary line and the names of the replies that differ.
fn compare(args: &[&str], out: &str) -> (String, Vec<String>) {
    let (_daemon, client) = common::start(args);
    let _ = std::fs::remove_dir_all(out);
    let rec = Command::new("python3")
        .arg(format!("{DIR}/tests/ng_reference/record.py"))
        .args(["--ng", &client.ng.to_string(), "--out", out])
        .args(["--only", "ping", "errors"])
        .output()
        .expect("python3 record.py");
    assert!(
        rec.status.success(),
        "record.py: {}",
        String::from_utf8_lossy(&rec.stderr)
    );
    let cmp = Command::new("python3")
        .arg(format!("{DIR}/tests/ng_reference/compare.py"))
        .arg(format!("{DIR}/tests/data/ng"))
        .arg(out)
        .output()
        .expect("python3 compare.py");
    assert!(cmp.status.success(), "compare.py failed");
    let text = String::from_utf8_lossy(&cmp.stdout).into_owned();
    println!("{text}");
    let summary = text
        .lines()
        .find(|l| l.contains(" compared, "))
        .expect("summary line")
        .to_string();
    let differ = text
        .lines()
        .filter_map(|l| l.strip_prefix("DIFF "))
        .map(str::to_string)
        .collect();
    (summary, differ)
}

#[test]
fn strict_bencode_differs_only_on_malformed_bencode() {
    let out = std::env::temp_dir().join("mediarelay-ng-shapes-strict");
    let (summary, differ) = compare(&[], out.to_str().unwrap());
    assert_eq!(summary, "38 compared, 36 same shape, 2 differ");
    assert_eq!(
        differ,
        [
            "errors 19-truncated-bencode-dict-unterminated.rep.json",
            "errors 22-trailing-garbage.rep.json"
        ]
    );
}

#[test]
fn lenient_bencode_has_every_reply_shape_of_rtpengine() {
    let out = std::env::temp_dir().join("mediarelay-ng-shapes-lenient");
    let (summary, differ) = compare(&["--ng-lenient-bencode"], out.to_str().unwrap());
    assert_eq!(differ, Vec::<String>::new());
    assert_eq!(summary, "38 compared, 38 same shape, 0 differ");
}

/// Undecodable datagrams are logged at warn, at most once a second, with
/// how many were not logged since.
#[test]
fn undecodable_datagrams_are_logged_at_most_once_a_second() {
    use std::net::UdpSocket;
    use std::process::Stdio;
    use std::time::Duration;
    let port = common::free_udp_port();
    let child = Command::new(common::bin())
        .args(["--interface", "127.0.0.1", "--foreground", "--listen-ng"])
        .arg(format!("127.0.0.1:{port}"))
        .args([
            "--num-threads",
            "1",
            "--port-min",
            "49600",
            "--port-max",
            "49699",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn mediarelay");
    let mut daemon = common::Daemon(child);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let ng = format!("127.0.0.1:{port}");
    let ask = |dg: &[u8]| -> Option<Vec<u8>> {
        sock.send_to(dg, &ng).ok()?;
        let mut buf = [0u8; 2048];
        sock.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
    };
    let end = std::time::Instant::now() + Duration::from_secs(20);
    while ask(b"p0 d7:command4:pinge").is_none() {
        assert!(std::time::Instant::now() < end, "daemon never answered");
    }
    for i in 0..3 {
        let r = ask(format!("m{i} d7:command4:ping").as_bytes()).expect("a reply");
        assert!(String::from_utf8_lossy(&r).contains("error"));
    }
    std::thread::sleep(Duration::from_millis(1100));
    ask(b"m3 d7:command4:pingeXYZ").expect("a reply");
    let _ = daemon.0.kill();
    let _ = daemon.0.wait();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut daemon.0.stderr.take().unwrap(), &mut stderr).unwrap();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("NG datagram refused"))
        .collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines.iter().all(|l| l.contains("WARN")), "{lines:?}");
    assert!(lines[1].contains("not_logged_since=2"), "{lines:?}");
}
