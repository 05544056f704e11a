//! Fuzz the STUN codec (RFC 8489) and the ICE agent (RFC 8445). Arbitrary
//! bytes never panic the parser or the integrity checks; a message that
//! parses keeps its fields when written back (requests, success and error
//! responses); and the bytes fed to an `IceAgent` as a datagram from its
//! peer (three times, on a clock that advances) never panic it, while
//! what it transmits is always STUN. Seeds: the RFC 5769 samples, whose
//! request authenticates with the agent's credentials.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mediarelay::ice::{AgentConfig, Candidate, IceAgent, IceCredentials};
use mediarelay::stun::{self, Class, Message};

/// The password of the seeds: RFC 5769's.
const PWD: &[u8] = b"VOkJxbRl1RmTxUk/WvJxBt";

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::parse(data) {
        assert!(stun::is_stun(data));
        let _ = m.verify_integrity(PWD);
        let _ = m.verify_fingerprint();
        let mut buf = [0u8; 2048];
        let tid = m.transaction_id();
        match m.message_type().class {
            Class::Request => {
                if let (Some(user), Some(priority)) = (
                    m.username().and_then(|u| std::str::from_utf8(u).ok()),
                    m.priority(),
                ) {
                    let req = stun::BindingRequest {
                        transaction_id: tid,
                        username: user,
                        priority,
                        controlling: m.ice_controlling().is_some(),
                        tie_breaker: m.ice_controlling().or(m.ice_controlled()).unwrap_or(0),
                        use_candidate: m.use_candidate(),
                    };
                    let n = stun::write_binding_request(&mut buf, &req, PWD).expect("fits");
                    let back = Message::parse(&buf[..n]).expect("written request parses");
                    assert_eq!(back.username(), m.username());
                    assert_eq!(back.priority(), Some(priority));
                    assert_eq!(back.use_candidate(), m.use_candidate());
                    assert!(back.verify_integrity(PWD).is_ok());
                    assert!(back.verify_fingerprint().is_ok());
                }
            }
            Class::Success => {
                if let Some(a) = m.xor_mapped_address() {
                    let n = stun::write_binding_success(&mut buf, tid, a, PWD).expect("fits");
                    let back = Message::parse(&buf[..n]).expect("written response parses");
                    assert_eq!(back.xor_mapped_address(), Some(a));
                    assert_eq!(back.transaction_id(), tid);
                }
            }
            Class::Error => {
                if let Some(e) = m.error_code() {
                    let n = stun::write_binding_error(&mut buf, tid, e.code, e.reason, None)
                        .expect("fits");
                    let back = Message::parse(&buf[..n]).expect("written error parses");
                    assert_eq!(back.error_code().map(|x| x.code), Some(e.code));
                }
            }
            Class::Indication => {}
        }
    }

    // The agent: local ufrag "evtj", remote "h6vY", so RFC 5769's sample
    // request (USERNAME "evtj:h6vY") authenticates.
    let start = Instant::now();
    let creds = |ufrag: &str| IceCredentials {
        ufrag: ufrag.to_owned(),
        pwd: String::from_utf8_lossy(PWD).into_owned(),
    };
    let mut agent = IceAgent::new(
        AgentConfig {
            local: creds("evtj"),
            remote: creds("h6vY"),
            controlling: data.first().is_some_and(|b| b & 1 == 1),
            tie_breaker: 0x1234,
            remote_lite: false,
        },
        start,
    );
    let local: SocketAddr = "192.0.2.10:20000".parse().expect("address");
    let peer: SocketAddr = "192.0.2.1:32853".parse().expect("address");
    agent.add_local(1, local);
    if let Ok(c) = Candidate::parse("1 1 UDP 2130706431 192.0.2.1 32853 typ host") {
        agent.add_remote(&c);
    }
    let mut buf = [0u8; 1500];
    let mut now = start;
    for round in 0..3 {
        let _ = agent.handle_stun(now, 1, peer, data);
        agent.handle_timeout(now);
        while let Some(t) = agent.poll_transmit(now, &mut buf) {
            assert!(t.len <= buf.len());
            assert!(stun::is_stun(&buf[..t.len]));
        }
        while agent.poll_event().is_some() {}
        now += Duration::from_millis(20 * (round + 1));
    }
});
