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
