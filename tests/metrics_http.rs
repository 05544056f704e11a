//! The metrics HTTP server over real TCP connections on 127.0.0.1.
#![cfg(feature = "daemon")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use mediarelay::metrics::{HttpConfig, MetricsServer};

const BODY: &str = "# HELP x h\n# TYPE x gauge\nx 1\n";

fn server(timeout: Duration) -> MetricsServer {
    let cfg = HttpConfig {
        timeout,
        ..HttpConfig::default()
    };
    MetricsServer::start_with("127.0.0.1:0", cfg, |out: &mut String| out.push_str(BODY))
        .expect("binds")
}

/// Sends `request`, reads until the server closes; `None` on reset.
fn exchange(addr: SocketAddr, request: &[u8]) -> Option<String> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    Some(String::from_utf8(out).unwrap())
}

fn status(resp: &str) -> &str {
    resp.lines().next().unwrap_or_default()
}

fn body(resp: &str) -> &str {
    resp.split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default()
}

#[test]
fn metrics_ping_and_errors() {
    let srv = server(Duration::from_secs(5));
    let addr = srv.local_addr();
    assert_ne!(addr.port(), 0);

    let r = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert_eq!(status(&r), "HTTP/1.1 200 OK");
    assert!(r.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"));
    assert!(r.contains(&format!("\r\nContent-Length: {}\r\n", BODY.len())));
    assert!(r.contains("\r\nConnection: close\r\n"));
    assert_eq!(body(&r), BODY);

    let r = exchange(addr, b"GET /ping HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(status(&r), "HTTP/1.1 200 OK");
    assert_eq!(body(&r), "pong\n");

    let r = exchange(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(status(&r), "HTTP/1.1 200 OK");
    assert!(r.contains(&format!("\r\nContent-Length: {}\r\n", BODY.len())));
    assert_eq!(body(&r), "");

    let r = exchange(addr, b"GET /nope HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(status(&r), "HTTP/1.1 404 Not Found");

    let r = exchange(addr, b"POST /metrics HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(status(&r), "HTTP/1.1 405 Method Not Allowed");
    assert!(r.contains("\r\nAllow: GET, HEAD\r\n"));

    let r = exchange(addr, b"hello\r\n\r\n").unwrap();
    assert_eq!(status(&r), "HTTP/1.1 400 Bad Request");

    // An oversized head: 431, or at worst a closed/reset connection.
    let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    big.extend(std::iter::repeat_n(b'a', 20_000));
    big.extend(b"\r\n\r\n");
    if let Some(r) = exchange(addr, &big) {
        assert!(
            r.is_empty() || status(&r) == "HTTP/1.1 431 Request Header Fields Too Large",
            "{r:?}"
        );
    }

    // Still serving after all that.
    let r = exchange(addr, b"GET /ping HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(body(&r), "pong\n");
    srv.shutdown();
    assert!(TcpStream::connect(addr).is_err(), "listener closed");
}

#[test]
fn silent_client_does_not_block_the_next_one() {
    let srv = server(Duration::from_millis(300));
    let addr = srv.local_addr();
    // Connects, sends half a head, then nothing.
    let mut silent = TcpStream::connect(addr).unwrap();
    silent.write_all(b"GET /metr").unwrap();
    let started = Instant::now();
    let r = exchange(addr, b"GET /ping HTTP/1.1\r\n\r\n").unwrap();
    assert_eq!(body(&r), "pong\n");
    // The second client waited for at most the first one's timeout (plus
    // slack for a loaded machine), not forever.
    assert!(started.elapsed() < Duration::from_secs(5));
    // The silent client was dropped without an answer.
    silent
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = silent.read_to_end(&mut rest);
    assert!(rest.is_empty());
    srv.shutdown();
}

#[test]
fn slow_drip_client_is_cut_at_the_total_timeout() {
    let srv = server(Duration::from_millis(300));
    let addr = srv.local_addr();
    let mut slow = TcpStream::connect(addr).unwrap();
    // One byte every 50 ms never completes the head within 300 ms total,
    // even though each read is well within the timeout.
    let started = Instant::now();
    let mut cut = false;
    for b in b"GET /ping HTTP/1.1\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n" {
        if slow.write_all(&[*b]).is_err() {
            cut = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(cut || rest.is_empty(), "answered a slow-drip client");
    assert!(started.elapsed() < Duration::from_secs(30));
    srv.shutdown();
}

#[test]
fn shutdown_of_an_idle_server_returns() {
    let srv = server(Duration::from_secs(2));
    srv.shutdown();
}
