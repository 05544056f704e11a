//! `engine::PacketLoop` on loopback, both backends: datagrams produced by
//! the sink leave from the right socket to the right destination, every
//! datagram received reaches the sink with its source, and with io_uring
//! receive timestamps the arrival time is the kernel's (before the loop
//! woke up), so a loop that waits for a batch still times arrivals right.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use mediarelay::engine::{
    IoBackend, LoopSink, OwnTransmit, PacketLoop, StreamKey, UringConfig, UringSupport,
    uring_support,
};

#[derive(Default)]
struct Sink {
    to_send: Vec<(u32, SocketAddr, Vec<u8>)>,
    got: Vec<(Instant, u32, SocketAddr, Vec<u8>)>,
    sent: usize,
    errors: Vec<i32>,
}

impl LoopSink for Sink {
    fn on_datagram(&mut self, now: Instant, key: StreamKey, src: SocketAddr, data: &[u8], _: bool) {
        self.got.push((now, key.index(), src, data.to_vec()));
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<OwnTransmit> {
        let (via, dest, data) = self.to_send.pop()?;
        buf[..data.len()].copy_from_slice(&data);
        Some(OwnTransmit {
            via: StreamKey::from_parts(via, 0),
            dest: Some(dest),
            len: data.len(),
        })
    }
    fn on_sent(&mut self, _key: StreamKey, _bytes: usize) {
        self.sent += 1;
    }
    fn on_send_error(&mut self, _key: StreamKey, errno: i32) {
        self.errors.push(errno);
    }
}

fn backends() -> Vec<IoBackend> {
    let mut v = vec![IoBackend::Epoll];
    if uring_support() == UringSupport::Available {
        v.push(IoBackend::Uring);
    }
    v
}

fn turn_until(lp: &mut PacketLoop, sink: &mut Sink, done: impl Fn(&Sink) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done(sink) {
        assert!(Instant::now() < deadline, "timed out");
        lp.turn(Some(Duration::from_millis(5)), sink).expect("turn");
    }
}

#[test]
fn many_sockets_send_and_receive_through_one_loop() {
    for backend in backends() {
        let mut lp = PacketLoop::new(backend).expect("loop");
        assert_eq!(lp.backend(), backend);
        let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
        peer.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut addrs = Vec::new();
        for i in 0..8u32 {
            let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
            addrs.push(s.local_addr().expect("addr"));
            lp.register(StreamKey::from_parts(i, 0), s)
                .expect("register");
        }
        let mut sink = Sink::default();
        let dest = peer.local_addr().expect("addr");
        for i in 0..8u32 {
            sink.to_send.push((i, dest, vec![i as u8; 100]));
        }
        turn_until(&mut lp, &mut sink, |s| s.sent == 8);
        let mut from = Vec::new();
        let mut buf = [0u8; 200];
        for _ in 0..8 {
            let (n, src) = peer.recv_from(&mut buf).expect("recv");
            assert_eq!(n, 100);
            let i = usize::from(buf[0]);
            assert_eq!(
                src, addrs[i],
                "{backend}: datagram {i} left from its own socket"
            );
            from.push(i);
        }
        from.sort_unstable();
        assert_eq!(from, (0..8).collect::<Vec<_>>());
        // And back: each socket receives one datagram, with its source.
        for (i, a) in addrs.iter().enumerate() {
            peer.send_to(&[i as u8; 40], a).expect("send");
        }
        turn_until(&mut lp, &mut sink, |s| s.got.len() == 8);
        for (_, key, src, data) in &sink.got {
            assert_eq!(*src, dest);
            assert_eq!(data, &vec![*key as u8; 40], "{backend}");
        }
        assert!(sink.errors.is_empty(), "{:?}", sink.errors);
        assert!(lp.counters().syscalls > 0);
    }
}

#[test]
fn receive_timestamps_are_the_kernels_not_the_wake_up() {
    if uring_support() != UringSupport::Available {
        eprintln!("io_uring unavailable here: skipped");
        return;
    }
    let cfg = UringConfig {
        rx_timestamps: true,
        wait_batch: 64,
        ..UringConfig::default()
    };
    let mut lp = PacketLoop::with_uring_config(IoBackend::Uring, cfg).expect("loop");
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let to = s.local_addr().expect("addr");
    lp.register(StreamKey::from_parts(0, 0), s)
        .expect("register");
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
    let mut sink = Sink::default();
    // Arm the receive. The kernel turns receive timestamping on for the
    // whole system shortly after the first socket asks for it (a deferred
    // static key): before that, a datagram is stamped when it is read.
    lp.turn(Some(Duration::ZERO), &mut sink).expect("turn");
    std::thread::sleep(Duration::from_millis(100));
    // Then send while the loop is not looking, and only take the datagram
    // 50 ms later.
    let sent_at = Instant::now();
    peer.send_to(b"stamp me", to).expect("send");
    let after_send = Instant::now();
    std::thread::sleep(Duration::from_millis(50));
    // The loop waits for 64 completions or the timeout: it wakes on the
    // timeout, about 50 ms after the arrival.
    turn_until(&mut lp, &mut sink, |s| !s.got.is_empty());
    let (at, _, _, data) = &sink.got[0];
    assert_eq!(data.as_slice(), b"stamp me");
    let slack = Duration::from_millis(5);
    assert!(
        *at + slack >= sent_at && *at <= after_send + slack,
        "arrival {:?} after the send began, the send took {:?}",
        at.saturating_duration_since(sent_at),
        after_send - sent_at
    );
}

#[test]
fn a_connected_socket_sends_without_an_address() {
    for backend in backends() {
        let mut lp = PacketLoop::new(backend).expect("loop");
        let peer = UdpSocket::bind("127.0.0.1:0").expect("peer");
        peer.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let from = s.local_addr().expect("addr");
        s.connect(peer.local_addr().expect("addr"))
            .expect("connect");
        lp.register(StreamKey::from_parts(0, 0), s)
            .expect("register");

        struct Connected(u32);
        impl LoopSink for Connected {
            fn on_datagram(&mut self, _: Instant, _: StreamKey, _: SocketAddr, _: &[u8], _: bool) {}
            fn poll_transmit(&mut self, _: Instant, buf: &mut [u8]) -> Option<OwnTransmit> {
                if self.0 == 0 {
                    return None;
                }
                self.0 -= 1;
                buf[..4].copy_from_slice(b"conn");
                Some(OwnTransmit {
                    via: StreamKey::from_parts(0, 0),
                    dest: None,
                    len: 4,
                })
            }
        }
        let mut sink = Connected(3);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut buf = [0u8; 16];
        let mut got = 0;
        while got < 3 {
            assert!(Instant::now() < deadline, "{backend}: timed out");
            lp.turn(Some(Duration::from_millis(5)), &mut sink)
                .expect("turn");
            peer.set_nonblocking(true).expect("nonblocking");
            while let Ok((n, src)) = peer.recv_from(&mut buf) {
                assert_eq!((&buf[..n], src), (&b"conn"[..], from), "{backend}");
                got += 1;
            }
        }
    }
}
