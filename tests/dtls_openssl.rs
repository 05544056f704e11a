//! DTLS-SRTP against another implementation: `openssl s_server` (the
//! OpenSSL command line tool, its own DTLS stack driven by its own sockets
//! and timers) over UDP on 127.0.0.1, with a `DtlsSession` as the client.
//! The keys both sides export (RFC 5764 §4.2) must be the same bytes.
//! Skipped (passes with a note) when the `openssl` tool is not installed.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use mediarelay::dtls::{DtlsCert, DtlsEvent, DtlsRole, DtlsSession, Fingerprint, is_dtls};

fn have_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn keys_match_openssl_s_server() {
    if !have_openssl() {
        eprintln!("openssl tool not installed: skipped");
        return;
    }
    let dir = std::env::temp_dir().join(format!("mediarelay-dtls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-subj", "/CN=peer", "-days", "2", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    // "sha256 Fingerprint=AB:CD:.." (or "SHA256 Fingerprint=..").
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256", "-in"])
        .arg(&cert)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let hex = text.trim().split('=').nth(1).unwrap();
    let server_fp: Fingerprint = format!("sha-256 {hex}").parse().unwrap();

    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = Command::new("openssl")
        .args(["s_server", "-dtls1_2", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .args([
            "-use_srtp",
            "SRTP_AES128_CM_SHA1_80",
            "-Verify",
            "1",
            "-naccept",
            "1",
        ])
        .args([
            "-keymatexport",
            "EXTRACTOR-dtls_srtp",
            "-keymatexportlen",
            "60",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _cleanup = Cleanup(dir.clone());
    let (tx, lines) = mpsc::channel();
    let stdout = server.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let wait_for = |prefix: &str| -> Option<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(line) if line.trim_start().starts_with(prefix) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
        None
    };
    assert!(wait_for("ACCEPT").is_some(), "s_server did not start");

    let relay = DtlsCert::generate(SystemTime::now()).unwrap();
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut session =
        DtlsSession::new(&relay, DtlsRole::Client, server_fp, Instant::now()).unwrap();
    let mut buf = [0u8; 2048];
    let deadline = Instant::now() + Duration::from_secs(10);
    let keys = loop {
        assert!(Instant::now() < deadline, "no handshake: {session:?}");
        while let Some(n) = session.poll_transmit(&mut buf) {
            sock.send(&buf[..n]).unwrap();
        }
        if let Some(event) = session.poll_event() {
            match event {
                DtlsEvent::Connected(keys) => break keys,
                other => panic!("{other:?}"),
            }
        }
        if let Ok(n) = sock.recv(&mut buf)
            && is_dtls(&buf[..n])
        {
            session.handle_input(Instant::now(), &buf[..n]).unwrap();
        }
        session.handle_timeout(Instant::now());
    };
    let line = wait_for("Keying material:").expect("s_server's exported keys");
    session.close();
    while let Some(n) = session.poll_transmit(&mut buf) {
        let _ = sock.send(&buf[..n]);
    }
    let _ = server.kill();
    let _ = server.wait();

    let theirs = line.split(':').nth(1).unwrap().trim().to_ascii_uppercase();
    // client key | server key | client salt | server salt; we are the client.
    let mut ours = Vec::new();
    ours.extend_from_slice(keys.local.key());
    ours.extend_from_slice(keys.remote.key());
    ours.extend_from_slice(keys.local.salt());
    ours.extend_from_slice(keys.remote.salt());
    let ours: String = ours.iter().map(|b| format!("{b:02X}")).collect();
    assert_eq!(ours, theirs);
}

/// Removes the temporary directory.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
