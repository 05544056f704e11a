//! Deterministic simulations of ICE agents (RFC 8445) talking over an
//! in-memory network on a virtual clock: both roles, role conflicts, loss,
//! peer-reflexive discovery behind a NAT, strangers, an ICE-lite peer,
//! failure and consent loss (RFC 7675).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mediarelay::ice::{AgentConfig, Candidate, IceAgent, IceCredentials, IceEvent};
use mediarelay::stun::{self, Class, Message, TransactionId};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

fn creds(ufrag: &str) -> IceCredentials {
    IceCredentials::new(ufrag, &format!("{ufrag}password0123456789abcd")).expect("valid")
}

/// One end of the simulated network.
struct Peer {
    agent: IceAgent,
    /// Local socket per component (index 0 = component 1).
    locals: Vec<SocketAddr>,
    /// Source address the other side sees per component (a NAT mapping).
    public: Vec<SocketAddr>,
    events: Vec<(Duration, IceEvent)>,
}

struct Packet {
    at: Instant,
    to_peer: usize,
    component: u16,
    from: SocketAddr,
    data: Vec<u8>,
}

/// Two peers, 10 ms one-way latency, seeded loss.
struct Sim {
    start: Instant,
    now: Instant,
    peers: Vec<Peer>,
    flight: Vec<Packet>,
    /// Loss in percent for packets sent by peer 0 and by peer 1.
    loss: [u64; 2],
    rng: u64,
    sent: [usize; 2],
}

const LATENCY: Duration = Duration::from_millis(10);

impl Sim {
    fn new(a: AgentConfig, b: AgentConfig, components: u16) -> Sim {
        let start = Instant::now();
        let mk = |cfg, host: &str| {
            let locals: Vec<SocketAddr> = (0..components)
                .map(|i| addr(&format!("{host}:{}", 20000 + i)))
                .collect();
            let mut agent = IceAgent::new(cfg, start);
            for (i, l) in locals.iter().enumerate() {
                agent.add_local(i as u16 + 1, *l);
            }
            Peer {
                agent,
                public: locals.clone(),
                locals,
                events: Vec::new(),
            }
        };
        Sim {
            start,
            now: start,
            peers: vec![mk(a, "10.0.0.1"), mk(b, "10.0.0.2")],
            flight: Vec::new(),
            loss: [0, 0],
            rng: 7,
            sent: [0, 0],
        }
    }

    /// Signals peer `from`'s host candidates to peer `to`.
    fn signal(&mut self, from: usize, to: usize) {
        for (i, l) in self.peers[from].locals.clone().into_iter().enumerate() {
            let c = Candidate::host("1", i as u16 + 1, l);
            let c = Candidate::parse(&c.to_string()).expect("round trip");
            self.peers[to].agent.add_remote(&c);
        }
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng % 100 < percent
    }

    /// Which peer and component own public or local address `a`.
    fn route(&self, a: SocketAddr) -> Option<(usize, u16)> {
        self.peers.iter().enumerate().find_map(|(p, peer)| {
            peer.public
                .iter()
                .chain(peer.locals.iter())
                .position(|x| *x == a)
                .map(|i| (p, (i % peer.locals.len()) as u16 + 1))
        })
    }

    fn step(&mut self) {
        let now = self.now;
        // Deliver what has arrived.
        let (due, rest): (Vec<Packet>, Vec<Packet>) =
            self.flight.drain(..).partition(|p| p.at <= now);
        self.flight = rest;
        for p in due {
            let _ = self.peers[p.to_peer]
                .agent
                .handle_stun(now, p.component, p.from, &p.data);
        }
        for i in 0..self.peers.len() {
            self.peers[i].agent.handle_timeout(now);
            let mut buf = [0u8; 1500];
            while let Some(t) = self.peers[i].agent.poll_transmit(now, &mut buf) {
                self.sent[i] += 1;
                assert!(stun::is_stun(&buf[..t.len]));
                let from = self.peers[i].public[usize::from(t.component - 1)];
                let lost = self.chance(self.loss[i]);
                if let Some((to_peer, component)) = self.route(t.to)
                    && !lost
                {
                    self.flight.push(Packet {
                        at: now + LATENCY,
                        to_peer,
                        component,
                        from,
                        data: buf[..t.len].to_vec(),
                    });
                }
            }
            // Nothing left due: the next timer is in the future, so a
            // driver never spins.
            if let Some(t) = self.peers[i].agent.poll_timeout() {
                assert!(t > now, "peer {i} timer {t:?} not after {now:?}");
            }
            while let Some(e) = self.peers[i].agent.poll_event() {
                self.peers[i].events.push((now - self.start, e));
            }
        }
    }

    /// Runs until `until` after the start, stepping to the next timer or
    /// delivery.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
            let mut next = end;
            for p in &self.peers {
                if let Some(t) = p.agent.poll_timeout() {
                    next = next.min(t);
                }
            }
            for p in &self.flight {
                next = next.min(p.at);
            }
            self.now = next.max(self.now + Duration::from_millis(1));
        }
    }

    fn selected_events(&self, peer: usize) -> Vec<(u16, SocketAddr)> {
        self.peers[peer]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                IceEvent::Selected { component, remote } => Some((*component, *remote)),
                _ => None,
            })
            .collect()
    }

    fn has_event(&self, peer: usize, want: IceEvent) -> bool {
        self.peers[peer].events.iter().any(|(_, e)| *e == want)
    }
}

fn config(local: &str, remote: &str, controlling: bool, tie_breaker: u64) -> AgentConfig {
    AgentConfig {
        local: creds(local),
        remote: creds(remote),
        controlling,
        tie_breaker,
        remote_lite: false,
    }
}

fn pair(a_controlling: bool, b_controlling: bool) -> Sim {
    Sim::new(
        config("aaaa", "bbbb", a_controlling, 100),
        config("bbbb", "aaaa", b_controlling, 200),
        1,
    )
}

#[test]
fn controlling_and_controlled_select_each_other() {
    let mut sim = pair(true, false);
    sim.signal(0, 1);
    sim.signal(1, 0);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.selected_events(0), vec![(1, addr("10.0.0.2:20000"))]);
    assert_eq!(sim.selected_events(1), vec![(1, addr("10.0.0.1:20000"))]);
    assert_eq!(sim.peers[0].agent.selected(1), Some(addr("10.0.0.2:20000")));
    assert_eq!(sim.peers[1].agent.selected(1), Some(addr("10.0.0.1:20000")));
    assert!(sim.peers[0].agent.is_controlling());
    assert!(!sim.peers[1].agent.is_controlling());
    // Selection comes within a few round trips.
    let (t, _) = sim.peers[1].events[0];
    assert!(t < Duration::from_millis(200), "{t:?}");

    // Consent keeps the pair for minutes; checks go out about every 5 s.
    let before = sim.sent;
    sim.run_for(Duration::from_secs(120));
    assert_eq!(sim.selected_events(0).len(), 1);
    assert_eq!(sim.selected_events(1).len(), 1);
    assert_eq!(sim.peers[0].agent.selected(1), Some(addr("10.0.0.2:20000")));
    let sent = sim.sent[0] - before[0];
    // ~24 consent requests and ~24 responses.
    assert!((30..=70).contains(&sent), "{sent}");
}

#[test]
fn two_components_without_rtcp_mux() {
    let mut sim = Sim::new(
        config("aaaa", "bbbb", false, 1),
        config("bbbb", "aaaa", true, 2),
        2,
    );
    sim.signal(0, 1);
    sim.signal(1, 0);
    sim.run_for(Duration::from_secs(2));
    let mut got = sim.selected_events(0);
    got.sort();
    assert_eq!(
        got,
        vec![(1, addr("10.0.0.2:20000")), (2, addr("10.0.0.2:20001"))]
    );
    assert_eq!(sim.peers[1].agent.selected(2), Some(addr("10.0.0.1:20001")));
}

#[test]
fn role_conflict_both_controlling() {
    for (a, b) in [(true, true), (false, false)] {
        let mut sim = pair(a, b);
        sim.signal(0, 1);
        sim.signal(1, 0);
        sim.run_for(Duration::from_secs(3));
        let roles = [
            sim.peers[0].agent.is_controlling(),
            sim.peers[1].agent.is_controlling(),
        ];
        // The larger tie-breaker (peer 1) ends controlling.
        assert_eq!(roles, [false, true], "start {a} {b}");
        assert_eq!(sim.selected_events(0), vec![(1, addr("10.0.0.2:20000"))]);
        assert_eq!(sim.selected_events(1), vec![(1, addr("10.0.0.1:20000"))]);
        let changed = sim.peers[0]
            .events
            .iter()
            .chain(&sim.peers[1].events)
            .any(|(_, e)| matches!(e, IceEvent::RoleChanged { .. }));
        assert!(changed);
        for peer in 0..2 {
            assert!(!sim.has_event(peer, IceEvent::Failed { component: 1 }));
        }
    }
}

#[test]
fn selects_despite_loss() {
    for seed in 1..6 {
        let mut sim = pair(true, false);
        sim.rng = seed * 7919;
        sim.loss = [40, 40];
        sim.signal(0, 1);
        sim.signal(1, 0);
        sim.run_for(Duration::from_secs(20));
        assert_eq!(
            sim.peers[0].agent.selected(1),
            Some(addr("10.0.0.2:20000")),
            "seed {seed}"
        );
        assert_eq!(
            sim.peers[1].agent.selected(1),
            Some(addr("10.0.0.1:20000")),
            "seed {seed}"
        );
        // 40% loss does not lose consent (it needs 30 s of silence).
        sim.run_for(Duration::from_secs(60));
        assert!(!sim.has_event(0, IceEvent::ConsentLost { component: 1 }));
    }
}

#[test]
fn peer_reflexive_candidate_behind_nat() {
    // Peer 1 is behind a NAT: the relay (peer 0) sees its checks come from
    // 203.0.113.5:4000, an address nobody signalled, and learns it.
    let mut sim = pair(true, false);
    sim.peers[1].public = vec![addr("203.0.113.5:4000")];
    sim.signal(0, 1); // The relay's candidate reaches the peer, not back.
    sim.run_for(Duration::from_secs(2));
    assert_eq!(sim.selected_events(0), vec![(1, addr("203.0.113.5:4000"))]);
    assert_eq!(sim.selected_events(1), vec![(1, addr("10.0.0.1:20000"))]);

    // The same with the relay controlled.
    let mut sim = pair(false, true);
    sim.peers[1].public = vec![addr("203.0.113.5:4000")];
    sim.signal(0, 1);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(
        sim.peers[0].agent.selected(1),
        Some(addr("203.0.113.5:4000"))
    );
    assert_eq!(sim.peers[1].agent.selected(1), Some(addr("10.0.0.1:20000")));
}

#[test]
fn unanswered_candidates_fail() {
    let mut sim = pair(true, false);
    // A candidate nobody owns, and one of the other family (ignored).
    let c = Candidate::parse("x 1 UDP 2130706431 198.51.100.9 9 typ host").expect("parses");
    sim.peers[0].agent.add_remote(&c);
    let v6 = Candidate::parse("y 1 UDP 2130706431 2001:db8::1 9 typ host").expect("parses");
    sim.peers[0].agent.add_remote(&v6);
    let tcp = Candidate::parse("z 1 TCP 2130706431 10.0.0.2 20000 typ host").expect("parses");
    sim.peers[0].agent.add_remote(&tcp);
    sim.run_for(Duration::from_secs(10));
    assert!(!sim.has_event(0, IceEvent::Failed { component: 1 }));
    sim.run_for(Duration::from_secs(10));
    assert!(sim.has_event(0, IceEvent::Failed { component: 1 }));
    assert_eq!(sim.peers[0].agent.selected(1), None);
    // 7 transmissions, then nothing more.
    assert_eq!(sim.sent[0], 7);
    assert_eq!(sim.peers[0].agent.poll_timeout(), None);
}

#[test]
fn consent_loss_after_selection() {
    let mut sim = pair(true, false);
    sim.signal(0, 1);
    sim.signal(1, 0);
    sim.run_for(Duration::from_secs(2));
    assert!(sim.peers[0].agent.selected(1).is_some());
    // The peer goes silent.
    sim.loss[1] = 100;
    sim.run_for(Duration::from_secs(25));
    assert!(!sim.has_event(0, IceEvent::ConsentLost { component: 1 }));
    sim.run_for(Duration::from_secs(10));
    let lost: Vec<Duration> = sim.peers[0]
        .events
        .iter()
        .filter(|(_, e)| *e == IceEvent::ConsentLost { component: 1 })
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(lost.len(), 1);
    assert!(lost[0] >= Duration::from_secs(30) && lost[0] < Duration::from_secs(33));
    assert_eq!(sim.peers[0].agent.selected(1), None);
    assert!(sim.has_event(0, IceEvent::Failed { component: 1 }));
    // RFC 7675 §5.1: the peer answering again (and checking, nominating)
    // does not bring the pair back under the same credentials: nothing is
    // selected, and the peer's checks go unanswered.
    sim.loss[1] = 0;
    let sent_before = sim.sent[0];
    sim.run_for(Duration::from_secs(20));
    assert_eq!(sim.peers[0].agent.selected(1), None);
    assert!(
        !sim.peers[0]
            .events
            .iter()
            .any(|(t, e)| *t > lost[0] && matches!(e, IceEvent::Selected { .. })),
        "no selection after consent loss"
    );
    assert_eq!(sim.sent[0], sent_before, "nothing sent on the revoked pair");
}

/// A request built by hand, as a stranger or a test peer sends it.
fn request(username: &str, pwd: &[u8], controlling: bool, use_candidate: bool) -> Vec<u8> {
    let mut buf = [0u8; 256];
    let req = stun::BindingRequest {
        transaction_id: TransactionId([3; 12]),
        username,
        priority: 1_862_270_975,
        controlling,
        tie_breaker: 5,
        use_candidate,
    };
    let n = stun::write_binding_request(&mut buf, &req, pwd).expect("fits");
    buf[..n].to_vec()
}

#[test]
fn stranger_with_wrong_credentials_gets_401_and_no_selection() {
    let now = Instant::now();
    let mut agent = IceAgent::new(config("aaaa", "bbbb", false, 1), now);
    agent.add_local(1, addr("10.0.0.1:20000"));
    let stranger = addr("198.51.100.7:5000");
    let wrong_pwd = request("aaaa:bbbb", b"not-the-password-at-all", true, true);
    let wrong_user = request("aaaa:evil", creds("aaaa").pwd.as_bytes(), true, true);
    for data in [&wrong_pwd, &wrong_user] {
        assert!(agent.handle_stun(now, 1, stranger, data).is_err());
        let mut buf = [0u8; 1500];
        let t = agent.poll_transmit(now, &mut buf).expect("401");
        assert_eq!(t.to, stranger);
        let m = Message::parse(&buf[..t.len]).expect("parses");
        assert_eq!(m.message_type().class, Class::Error);
        assert_eq!(m.error_code().map(|e| e.code), Some(401));
        assert!(!m.has_integrity());
    }
    let mut buf = [0u8; 1500];
    let mut t = now;
    for _ in 0..100 {
        t += Duration::from_millis(100);
        agent.handle_timeout(t);
        assert!(
            agent.poll_transmit(t, &mut buf).is_none(),
            "no check to a stranger"
        );
    }
    assert_eq!(agent.poll_event(), None);
    assert_eq!(agent.selected(1), None);
    // Garbage and unknown components are typed errors.
    assert!(
        agent
            .handle_stun(now, 1, stranger, b"\x00\x01garbage")
            .is_err()
    );
    assert!(agent.handle_stun(now, 2, stranger, &wrong_pwd).is_err());
}

#[test]
fn full_agent_against_lite_peer() {
    // The peer is ICE-lite: it only answers checks. The full agent stays
    // controlling even when told otherwise, and nominates.
    let start = Instant::now();
    let mut cfg = config("aaaa", "bbbb", false, 1);
    cfg.remote_lite = true;
    let mut agent = IceAgent::new(cfg, start);
    agent.set_controlling(false);
    assert!(agent.is_controlling());
    let local = addr("10.0.0.1:20000");
    let lite = addr("10.0.0.2:30000");
    agent.add_local(1, local);
    agent.add_remote(&Candidate::host("1", 1, lite));
    let lite_pwd = creds("bbbb").pwd;
    let mut now = start;
    let mut use_candidate_seen = false;
    let mut buf = [0u8; 1500];
    let mut resp = [0u8; 200];
    for _ in 0..200 {
        agent.handle_timeout(now);
        while let Some(t) = agent.poll_transmit(now, &mut buf) {
            assert_eq!(t.to, lite);
            let m = Message::parse(&buf[..t.len]).expect("parses");
            assert_eq!(m.username(), Some(&b"bbbb:aaaa"[..]));
            m.verify_integrity(lite_pwd.as_bytes())
                .expect("keyed by lite pwd");
            assert!(m.ice_controlling().is_some());
            use_candidate_seen |= m.use_candidate();
            let n = stun::write_binding_success(
                &mut resp,
                m.transaction_id(),
                local,
                lite_pwd.as_bytes(),
            )
            .expect("fits");
            agent
                .handle_stun(now, 1, lite, &resp[..n])
                .expect("valid response");
        }
        now += Duration::from_millis(10);
    }
    assert!(use_candidate_seen);
    assert_eq!(
        agent.poll_event(),
        Some(IceEvent::Selected {
            component: 1,
            remote: lite
        })
    );
    // A response with the wrong key is refused.
    let n = stun::write_binding_success(&mut resp, TransactionId([1; 12]), local, b"wrong")
        .expect("fits");
    assert!(agent.handle_stun(now, 1, lite, &resp[..n]).is_err());
}

#[test]
fn ice_restart_by_new_remote_credentials() {
    let mut sim = pair(true, false);
    sim.signal(0, 1);
    sim.signal(1, 0);
    sim.run_for(Duration::from_secs(2));
    assert!(sim.peers[0].agent.selected(1).is_some());
    // Peer 1 restarts with new credentials and a new socket.
    let new = creds("cccc");
    sim.peers[1].agent = {
        let mut a = IceAgent::new(
            AgentConfig {
                local: new.clone(),
                remote: creds("aaaa"),
                controlling: false,
                tie_breaker: 200,
                remote_lite: false,
            },
            sim.now,
        );
        a.add_local(1, addr("10.0.0.2:20002"));
        a
    };
    sim.peers[1].locals = vec![addr("10.0.0.2:20002")];
    sim.peers[1].public = vec![addr("10.0.0.2:20002")];
    sim.peers[0].agent.set_remote_credentials(new);
    sim.signal(0, 1);
    sim.signal(1, 0);
    sim.run_for(Duration::from_secs(2));
    assert_eq!(
        sim.selected_events(0),
        vec![(1, addr("10.0.0.2:20000")), (1, addr("10.0.0.2:20002"))]
    );
    assert_eq!(sim.peers[1].agent.selected(1), Some(addr("10.0.0.1:20000")));
}
