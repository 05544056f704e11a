//! The simulated network: per-path impairment settings, per-path state and
//! one delivery queue ordered by `(deliver_at, send sequence)`.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BinaryHeap};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::path::{Fate, PathState, PathStats};
use super::{Impairments, NetsimError};

/// A datagram on its way or delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    /// Sender address.
    pub src: SocketAddr,
    /// Destination address.
    pub dst: SocketAddr,
    /// Payload as sent.
    pub data: Vec<u8>,
    /// Instant it was sent.
    pub sent: Instant,
    /// Instant it arrives at `dst`.
    pub deliver_at: Instant,
}

/// An in-memory datagram network with seeded impairments (see the
/// [module docs](super) for the model and its guarantees).
#[derive(Debug, Clone)]
pub struct Network {
    seed: u64,
    default: Impairments,
    paths: BTreeMap<(SocketAddr, SocketAddr), Impairments>,
    ip_paths: BTreeMap<(IpAddr, IpAddr), Impairments>,
    states: BTreeMap<(SocketAddr, SocketAddr), PathState>,
    queue: BinaryHeap<Reverse<Pending>>,
    next_seq: u64,
}

/// A queued delivery, ordered by time then by the order it was queued in.
#[derive(Debug, Clone)]
struct Pending {
    seq: u64,
    datagram: Datagram,
}

impl Network {
    /// A network with no impairments anywhere, drawing all randomness from
    /// `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            default: Impairments::none(),
            paths: BTreeMap::new(),
            ip_paths: BTreeMap::new(),
            states: BTreeMap::new(),
            queue: BinaryHeap::new(),
            next_seq: 0,
        }
    }

    /// The seed the network was created with.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Impairments of every path that has neither an exact nor an IP-pair
    /// setting.
    pub fn set_default(&mut self, imp: Impairments) -> Result<(), NetsimError> {
        imp.validate()?;
        self.default = imp;
        Ok(())
    }

    /// Impairments of datagrams from exactly `src` to exactly `dst` (one
    /// direction only). Takes precedence over [`set_ip_path`](Self::set_ip_path)
    /// and the default. Path state (Gilbert state, backlog, counters) is kept.
    pub fn set_path(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        imp: Impairments,
    ) -> Result<(), NetsimError> {
        imp.validate()?;
        self.paths.insert((src, dst), imp);
        Ok(())
    }

    /// Impairments of datagrams from any port of `src` to any port of `dst`
    /// (one direction only) without an exact [`set_path`](Self::set_path)
    /// setting. State and counters stay per exact address pair.
    pub fn set_ip_path(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        imp: Impairments,
    ) -> Result<(), NetsimError> {
        imp.validate()?;
        self.ip_paths.insert((src, dst), imp);
        Ok(())
    }

    /// The impairments that apply from `src` to `dst`: the exact path, else
    /// the IP pair, else the default.
    pub fn impairments(&self, src: SocketAddr, dst: SocketAddr) -> &Impairments {
        lookup(&self.paths, &self.ip_paths, &self.default, src, dst)
    }

    /// Sends `data` from `src` to `dst` at `now`. The datagram is lost,
    /// dropped, or queued for delivery (once or twice); the outcome is
    /// counted in [`path_stats`](Self::path_stats).
    pub fn send(&mut self, now: Instant, src: SocketAddr, dst: SocketAddr, data: &[u8]) {
        let imp = lookup(&self.paths, &self.ip_paths, &self.default, src, dst);
        let seed = self.seed;
        let state = self
            .states
            .entry((src, dst))
            .or_insert_with(|| PathState::new(seed, src, dst));
        let Fate::Deliver { at, copy } = state.admit(imp, now, data.len()) else {
            return;
        };
        let datagram = Datagram {
            src,
            dst,
            data: data.to_vec(),
            sent: now,
            deliver_at: at,
        };
        if let Some(copy_at) = copy {
            let dup = Datagram {
                deliver_at: copy_at,
                ..datagram.clone()
            };
            self.enqueue(datagram);
            self.enqueue(dup);
        } else {
            self.enqueue(datagram);
        }
    }

    /// The earliest pending delivery, if any: when to call
    /// [`poll_deliver`](Self::poll_deliver) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(p)| p.datagram.deliver_at)
    }

    /// The next datagram due at `now` (`deliver_at <= now`), in
    /// `deliver_at` order, ties in the order they were sent. `None` when
    /// nothing is due yet.
    pub fn poll_deliver(&mut self, now: Instant) -> Option<Datagram> {
        if self.poll_timeout()? > now {
            return None;
        }
        let Reverse(p) = self.queue.pop()?;
        let d = p.datagram;
        if let Some(state) = self.states.get_mut(&(d.src, d.dst)) {
            state.stats.delivered += 1;
        }
        Some(d)
    }

    /// Counters of the path from exactly `src` to exactly `dst` (all zero if
    /// nothing was ever sent on it).
    pub fn path_stats(&self, src: SocketAddr, dst: SocketAddr) -> PathStats {
        self.states
            .get(&(src, dst))
            .map_or_else(PathStats::default, |s| s.stats)
    }

    /// Counters summed over all paths.
    pub fn stats(&self) -> PathStats {
        let mut total = PathStats::default();
        for s in self.states.values() {
            total.add(&s.stats);
        }
        total
    }

    /// Datagrams (copies included) queued and not yet delivered.
    pub fn in_flight(&self) -> usize {
        self.queue.len()
    }

    fn enqueue(&mut self, datagram: Datagram) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Reverse(Pending { seq, datagram }));
    }
}

fn lookup<'a>(
    paths: &'a BTreeMap<(SocketAddr, SocketAddr), Impairments>,
    ip_paths: &'a BTreeMap<(IpAddr, IpAddr), Impairments>,
    default: &'a Impairments,
    src: SocketAddr,
    dst: SocketAddr,
) -> &'a Impairments {
    paths
        .get(&(src, dst))
        .or_else(|| ip_paths.get(&(src.ip(), dst.ip())))
        .unwrap_or(default)
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Pending {}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.datagram.deliver_at, self.seq).cmp(&(other.datagram.deliver_at, other.seq))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::netsim::{Gilbert, VirtualClock};

    const MS: Duration = Duration::from_millis(1);

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("test address")
    }

    fn a() -> SocketAddr {
        addr("10.0.0.1:4000")
    }

    fn b() -> SocketAddr {
        addr("10.0.0.2:5000")
    }

    /// Index of a datagram sent by [`drive`].
    fn index(d: &Datagram) -> u32 {
        u32::from_be_bytes([d.data[0], d.data[1], d.data[2], d.data[3]])
    }

    /// Sends `n` datagrams of `len` bytes (index in the first 4) from `a()` to
    /// `b()` every `spacing` on a virtual clock, delivering as time passes,
    /// then drains the network. Returns the deliveries in order.
    fn drive(net: &mut Network, n: u32, spacing: Duration, len: usize) -> Vec<Datagram> {
        let mut clock = VirtualClock::new();
        let mut out = Vec::new();
        let mut payload = vec![0u8; len.max(4)];
        for i in 0..n {
            let t = clock.start() + spacing * i;
            while let Some(at) = net.poll_timeout().filter(|&at| at <= t) {
                clock.advance_to(at);
                out.extend(net.poll_deliver(clock.now()));
            }
            clock.advance_to(t);
            payload[..4].copy_from_slice(&i.to_be_bytes());
            net.send(clock.now(), a(), b(), &payload);
        }
        while let Some(at) = net.poll_timeout() {
            clock.advance_to(at);
            while let Some(d) = net.poll_deliver(clock.now()) {
                out.push(d);
            }
        }
        assert_eq!(net.in_flight(), 0);
        out
    }

    fn everything() -> Impairments {
        Impairments {
            delay: 30 * MS,
            jitter: 15 * MS,
            loss: 0.05,
            gilbert: Some(Gilbert::new(0.02, 0.3)),
            reorder: 0.05,
            duplicate: 0.05,
            rate_bps: Some(200_000),
            ..Impairments::none()
        }
    }

    /// Deliveries as `(index, deliver_at - sent)`: comparable across runs.
    fn trace(ds: &[Datagram]) -> Vec<(u32, Duration)> {
        ds.iter()
            .map(|d| (index(d), d.deliver_at - d.sent))
            .collect()
    }

    #[test]
    fn perfect_network_delivers_at_send_time_in_order() {
        let mut net = Network::new(1);
        let out = drive(&mut net, 100, 20 * MS, 160);
        assert_eq!(out.len(), 100);
        for (i, d) in out.iter().enumerate() {
            assert_eq!(index(d) as usize, i);
            assert_eq!(d.deliver_at, d.sent);
            assert_eq!((d.src, d.dst), (a(), b()));
        }
        let s = net.path_stats(a(), b());
        assert_eq!((s.sent, s.delivered), (100, 100));
        assert_eq!(net.stats(), s);
    }

    #[test]
    fn same_seed_same_deliveries_different_seed_differs() {
        let run = |seed| {
            let mut net = Network::new(seed);
            net.set_default(everything()).expect("valid");
            let out = trace(&drive(&mut net, 5_000, 10 * MS, 100));
            (out, net.stats())
        };
        let (x, sx) = run(42);
        let (y, sy) = run(42);
        let (z, _) = run(43);
        assert_eq!(x, y);
        assert_eq!(sx, sy);
        assert_ne!(x, z);
        assert!(sx.lost > 0 && sx.duplicated > 0 && sx.reordered > 0 && sx.burst_lost > 0);
        assert_eq!(
            sx.sent + sx.duplicated,
            sx.delivered + sx.lost + sx.rate_dropped
        );
    }

    #[test]
    fn traffic_on_one_path_does_not_change_another() {
        let imp = Impairments {
            loss: 0.3,
            jitter: 10 * MS,
            jitter_reorders: true,
            ..Impairments::none()
        };
        let alone = {
            let mut net = Network::new(9);
            net.set_default(imp.clone()).expect("valid");
            trace(&drive(&mut net, 1_000, 20 * MS, 50))
        };
        let mut net = Network::new(9);
        net.set_default(imp).expect("valid");
        let other = addr("10.0.0.3:6000");
        let t0 = Instant::now();
        for i in 0..500u32 {
            net.send(t0 + MS * i, other, b(), &i.to_be_bytes());
        }
        while let Some(at) = net.poll_timeout() {
            while net.poll_deliver(at).is_some() {}
        }
        let mixed = trace(&drive(&mut net, 1_000, 20 * MS, 50));
        assert_eq!(alone, mixed);
    }

    #[test]
    fn loss_rate_within_tolerance() {
        let mut net = Network::new(2);
        net.set_default(Impairments {
            loss: 0.1,
            ..Impairments::none()
        })
        .expect("valid");
        let out = drive(&mut net, 100_000, MS, 4);
        let s = net.stats();
        assert_eq!(s.lost + out.len() as u64, 100_000);
        assert_eq!(s.burst_lost, 0);
        let rate = s.lost as f64 / 100_000.0;
        // Binomial sd is about 0.001.
        assert!((rate - 0.1).abs() < 0.005, "loss rate {rate}");
    }

    #[test]
    fn gilbert_burst_length_and_loss_share() {
        let (p, r) = (0.05, 0.25);
        let mut net = Network::new(3);
        net.set_default(Impairments {
            gilbert: Some(Gilbert::new(p, r)),
            ..Impairments::none()
        })
        .expect("valid");
        let n = 100_000u32;
        let out = drive(&mut net, n, MS, 4);
        let mut received = vec![false; n as usize];
        for d in &out {
            received[index(d) as usize] = true;
        }
        let mut bursts = Vec::new();
        let mut run = 0u32;
        for got in received {
            if got {
                if run > 0 {
                    bursts.push(run);
                }
                run = 0;
            } else {
                run += 1;
            }
        }
        let mean_burst = f64::from(bursts.iter().sum::<u32>()) / bursts.len() as f64;
        assert!(
            (mean_burst - 1.0 / r).abs() < 0.3,
            "mean burst {mean_burst}"
        );
        let s = net.stats();
        assert_eq!(s.lost, s.burst_lost);
        let share = s.lost as f64 / f64::from(n);
        assert!((share - p / (p + r)).abs() < 0.02, "loss share {share}");
    }

    #[test]
    fn jitter_never_reorders_by_default_and_stays_in_bounds() {
        let (delay, jitter) = (50 * MS, 40 * MS);
        let mut net = Network::new(4);
        net.set_default(Impairments {
            delay,
            jitter,
            ..Impairments::none()
        })
        .expect("valid");
        let out = drive(&mut net, 10_000, 20 * MS, 160);
        assert_eq!(out.len(), 10_000);
        let mut spread = (Duration::MAX, Duration::ZERO);
        for (i, d) in out.iter().enumerate() {
            assert_eq!(index(d) as usize, i, "reordered");
            let transit = d.deliver_at - d.sent;
            assert!(transit >= delay && transit <= delay + jitter, "{transit:?}");
            spread = (spread.0.min(transit), spread.1.max(transit));
        }
        assert!(
            spread.0 < delay + 5 * MS && spread.1 > delay + 35 * MS,
            "{spread:?}"
        );
    }

    #[test]
    fn jitter_reorders_when_asked() {
        let (delay, jitter) = (50 * MS, 40 * MS);
        let mut net = Network::new(4);
        net.set_default(Impairments {
            delay,
            jitter,
            jitter_reorders: true,
            ..Impairments::none()
        })
        .expect("valid");
        let out = drive(&mut net, 10_000, 20 * MS, 160);
        let inversions = out
            .windows(2)
            .filter(|w| index(&w[0]) > index(&w[1]))
            .count();
        assert!(inversions > 100, "{inversions} inversions");
        for d in &out {
            let transit = d.deliver_at - d.sent;
            assert!(transit >= delay && transit <= delay + jitter);
        }
        assert_eq!(net.stats().reordered, 0);
    }

    #[test]
    fn reorder_share_and_successor_overtakes() {
        let delay = 30 * MS;
        let mut net = Network::new(5);
        net.set_default(Impairments {
            delay,
            reorder: 0.1,
            ..Impairments::none()
        })
        .expect("valid");
        let n = 20_000u32;
        let out = drive(&mut net, n, 20 * MS, 160);
        assert_eq!(out.len(), n as usize);
        let mut position = vec![0usize; n as usize];
        let mut held = vec![false; n as usize];
        for (pos, d) in out.iter().enumerate() {
            let i = index(d) as usize;
            position[i] = pos;
            let transit = d.deliver_at - d.sent;
            held[i] = transit == delay + 25 * MS;
            assert!(held[i] || transit == delay, "{transit:?}");
        }
        let s = net.stats();
        assert_eq!(held.iter().filter(|&&h| h).count() as u64, s.reordered);
        let share = s.reordered as f64 / f64::from(n);
        assert!((share - 0.1).abs() < 0.01, "reorder share {share}");
        let mut checked = 0;
        for i in 0..n as usize - 1 {
            if held[i] && !held[i + 1] {
                assert!(position[i + 1] < position[i], "{i} not overtaken");
                checked += 1;
            }
            if !held[i] && !held[i + 1] {
                assert!(position[i] < position[i + 1]);
            }
        }
        assert!(checked > 1_000);
    }

    #[test]
    fn duplicates_counted_and_delivered_twice() {
        let mut net = Network::new(6);
        net.set_default(Impairments {
            delay: 10 * MS,
            duplicate: 0.2,
            ..Impairments::none()
        })
        .expect("valid");
        let n = 10_000u32;
        let out = drive(&mut net, n, 20 * MS, 160);
        let s = net.stats();
        assert_eq!(out.len() as u64, u64::from(n) + s.duplicated);
        assert_eq!(s.delivered, out.len() as u64);
        let mut copies: BTreeMap<u32, Vec<Instant>> = BTreeMap::new();
        for d in &out {
            copies.entry(index(d)).or_default().push(d.deliver_at);
        }
        assert_eq!(copies.len(), n as usize);
        let twice = copies.values().filter(|v| v.len() == 2).count() as u64;
        assert_eq!(twice, s.duplicated);
        assert!(copies.values().all(|v| v.len() <= 2));
        for v in copies.values().filter(|v| v.len() == 2) {
            assert!(v[1] >= v[0] && v[1] - v[0] < MS);
        }
        let share = s.duplicated as f64 / f64::from(n);
        assert!((share - 0.2).abs() < 0.02, "duplicate share {share}");
        // Copies never break send order on a no-reorder path.
        assert!(out.windows(2).all(|w| index(&w[0]) <= index(&w[1])));
    }

    #[test]
    fn rate_limit_queues_and_tail_drops() {
        let mut net = Network::new(7);
        net.set_default(Impairments {
            rate_bps: Some(64_000),
            ..Impairments::none()
        })
        .expect("valid");
        // 172 + 28 bytes = 1600 bits: 25 ms on the wire, offered every 10 ms.
        let n = 200u32;
        let out = drive(&mut net, n, 10 * MS, 172);
        let s = net.stats();
        assert!(s.rate_dropped > 0);
        assert_eq!(s.delivered + s.rate_dropped, u64::from(n));
        assert_eq!(s.lost, 0);
        // Backlog after k accepted back to back is 15k ms: datagrams 0..=6
        // queue (backlog up to 90 ms), datagram 7 finds 105 ms and is dropped.
        let first: Vec<u32> = out.iter().take(8).map(index).collect();
        assert_eq!(first, vec![0, 1, 2, 3, 4, 5, 6, 8]);
        for (k, d) in out.iter().take(7).enumerate() {
            assert_eq!(
                d.deliver_at - d.sent,
                25 * MS * (k as u32 + 1) - 10 * MS * k as u32
            );
        }
        for w in out.windows(2) {
            assert!(w[1].deliver_at - w[0].deliver_at >= 25 * MS);
        }
        for d in &out {
            assert!(d.deliver_at - d.sent <= 100 * MS + 25 * MS);
        }
        // The link runs saturated: one datagram per 25 ms.
        let span = out[out.len() - 1].deliver_at - out[0].deliver_at;
        assert_eq!(span, 25 * MS * (out.len() as u32 - 1));
    }

    #[test]
    fn invalid_impairments_rejected_by_setters() {
        let mut net = Network::new(8);
        let bad = Impairments {
            loss: 1.5,
            ..Impairments::none()
        };
        assert!(matches!(
            net.set_default(bad.clone()),
            Err(NetsimError::ProbabilityOutOfRange { field: "loss", .. })
        ));
        assert!(net.set_path(a(), b(), bad.clone()).is_err());
        assert!(net.set_ip_path(a().ip(), b().ip(), bad).is_err());
        let zero = Impairments {
            rate_bps: Some(0),
            ..Impairments::none()
        };
        assert_eq!(net.set_path(a(), b(), zero), Err(NetsimError::ZeroRate));
        assert_eq!(net.impairments(a(), b()), &Impairments::none());
    }

    #[test]
    fn path_lookup_falls_back_exact_then_ip_then_default() {
        let mut net = Network::new(9);
        let with_delay = |ms| Impairments {
            delay: MS * ms,
            ..Impairments::none()
        };
        net.set_default(with_delay(1)).expect("valid");
        net.set_ip_path(a().ip(), b().ip(), with_delay(2))
            .expect("valid");
        net.set_path(a(), b(), with_delay(3)).expect("valid");
        let other_port = addr("10.0.0.2:5002");
        assert_eq!(net.impairments(a(), b()).delay, 3 * MS);
        assert_eq!(net.impairments(a(), other_port).delay, 2 * MS);
        assert_eq!(net.impairments(b(), a()).delay, MS);
        let t0 = Instant::now();
        net.send(t0, a(), b(), b"x");
        net.send(t0, a(), other_port, b"y");
        net.send(t0, b(), a(), b"z");
        let got: Vec<(Vec<u8>, Duration)> = std::iter::from_fn(|| {
            let at = net.poll_timeout()?;
            net.poll_deliver(at)
        })
        .map(|d| (d.data, d.deliver_at - t0))
        .collect();
        assert_eq!(
            got,
            vec![
                (b"z".to_vec(), MS),
                (b"y".to_vec(), 2 * MS),
                (b"x".to_vec(), 3 * MS)
            ]
        );
        assert_eq!(net.path_stats(a(), other_port).delivered, 1);
        assert_eq!(net.stats().delivered, 3);
    }

    #[test]
    fn ties_in_send_order_and_nothing_early() {
        let mut net = Network::new(10);
        net.set_default(Impairments {
            delay: 5 * MS,
            ..Impairments::none()
        })
        .expect("valid");
        let mut clock = VirtualClock::new();
        let t0 = clock.now();
        net.send(t0, b(), a(), b"1");
        net.send(t0, a(), b(), b"2");
        net.send(t0, b(), a(), b"3");
        assert_eq!(net.in_flight(), 3);
        assert_eq!(net.poll_timeout(), Some(t0 + 5 * MS));
        assert!(net.poll_deliver(clock.advance(4 * MS)).is_none());
        let now = clock.advance(MS);
        let order: Vec<Vec<u8>> = std::iter::from_fn(|| net.poll_deliver(now))
            .map(|d| d.data)
            .collect();
        assert_eq!(order, vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]);
        assert_eq!(net.poll_timeout(), None);
        assert_eq!(net.path_stats(addr("1.2.3.4:1"), a()), PathStats::default());
    }
}
