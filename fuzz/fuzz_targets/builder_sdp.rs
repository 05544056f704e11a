//! Fuzz the media builder with a peer's SDP: the input is taken as an offer
//! (process_offer, then create_answer: sockets are really bound) and as an
//! answer to our offer (process_answer). Whatever the SDP, the builder
//! returns a typed error or negotiates; it never panics, and releasing the
//! builders gives every port pair back.
#![no_main]

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use libfuzzer_sys::fuzz_target;
use mediarelay::builder::{BuilderManager, ManagerConfig};
use mediarelay::engine::IoBackend;
use mediarelay::sdp::Sdp;

fn manager() -> &'static BuilderManager {
    static M: OnceLock<BuilderManager> = OnceLock::new();
    M.get_or_init(|| {
        BuilderManager::new(ManagerConfig {
            local_ip: "127.0.0.1".parse().unwrap(),
            min_port: 46000,
            max_port: 46999,
            max_concurrent_builders: 16,
            port_release_delay: std::time::Duration::ZERO,
            session_timeout: None,
            io_backend: IoBackend::Epoll,
            ..ManagerConfig::default()
        })
        .expect("manager")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = Sdp::parse(data) else {
        return;
    };
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let m = manager();
    let (a, b) = (format!("callee-{n}"), format!("caller-{n}"));
    if let Ok(callee) = m.create_builder(&a) {
        if callee.process_offer(&sdp).is_ok() {
            let _ = callee.create_answer();
            let _ = callee.media_streams();
        }
    }
    if let Ok(caller) = m.create_builder(&b) {
        if caller.create_offer().is_ok() {
            let _ = caller.process_answer(&sdp);
            let _ = caller.media_streams();
        }
    }
    m.release_builder(&a);
    m.release_builder(&b);
    assert_eq!(m.statistics().ports_in_use, 0);
});
