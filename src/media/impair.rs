//! Send-side impairment of an [`Endpoint`], for test tools: what it sends
//! is lost (at random or in [`Gilbert`] bursts) or delayed by a random
//! jitter, so that a real peer receives media as over a poor network.
//!
//! [`impair`] wraps an endpoint in [`Impaired`], which the shard drives
//! like the endpoint itself. Each datagram the inner endpoint's
//! [`poll_transmit`](Endpoint::poll_transmit) yields is
//!
//! 1. dropped, with the burst model's or the random loss probability;
//! 2. else delayed by a uniform draw in `[0, jitter]`: held in a delay line
//!    and released through [`poll_transmit`](Endpoint::poll_transmit) once
//!    due (earliest first), so datagrams overtake each other when the
//!    jitter exceeds their spacing. One drawn as zero goes out at once.
//!
//! RTCP passes untouched unless [`ImpairConfig::rtcp`] is set.
//! [`poll_timeout`](Endpoint::poll_timeout) is the earlier of the inner
//! endpoint's deadline and the next release; the inner endpoint's
//! [`handle_timeout`](Endpoint::handle_timeout) runs only when its own
//! deadline is due, so it sees the calls it would see unwrapped.
//!
//! The delay line is allocated at [`impair`]: [`ImpairConfig::slots`]
//! slots of [`SLOT_BYTES`] each. A datagram to delay when every slot is
//! taken, or one longer than a slot, is sent at once and counted as
//! overflow: nothing allocates per packet. Every impaired datagram draws
//! the same three numbers from the seeded [`Rng`] (state transition, loss,
//! delay), so a run replays exactly from [`ImpairConfig::seed`], and
//! switching jitter on does not change which datagrams are lost.
//!
//! Counters ([`ImpairStats`]) are published through relaxed atomics to the
//! cloneable [`ImpairHandle`], which also changes the loss at run time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::endpoint::{Endpoint, Transmit};
use crate::netsim::{Gilbert, MAX_DURATION, NetsimError, Rng};
use crate::relay::Component;

/// Bytes of one delay-line slot: the longest datagram that can be delayed.
pub const SLOT_BYTES: usize = 1536;

/// Most delay-line slots an [`ImpairConfig`] may ask for.
pub const MAX_SLOTS: usize = 4096;

/// Why an impairment setting is rejected.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ImpairError {
    /// The loss is not a probability in `[0, 1]` (NaN included).
    #[error("loss {0} is not a probability in [0, 1]")]
    Loss(f64),
    /// The burst model is invalid.
    #[error("burst loss: {0}")]
    Burst(#[from] NetsimError),
    /// The jitter exceeds [`MAX_DURATION`].
    #[error("jitter {0:?} exceeds {MAX_DURATION:?}")]
    JitterTooLong(Duration),
    /// More delay-line slots than [`MAX_SLOTS`].
    #[error("{0} delay-line slots, at most {MAX_SLOTS}")]
    TooManySlots(usize),
}

/// What [`Impaired`] does to the datagrams it sends. Build with struct
/// update syntax over [`ImpairConfig::none`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImpairConfig {
    /// Probability that a datagram is lost, in `[0, 1]`; unused when
    /// `burst` is set.
    pub loss: f64,
    /// Burst loss, instead of `loss` when present.
    pub burst: Option<Gilbert>,
    /// Each datagram not lost is delayed by a uniform draw in
    /// `[0, jitter]` (at most [`MAX_DURATION`]).
    pub jitter: Duration,
    /// Seed of the random draws.
    pub seed: u64,
    /// Also impair RTCP (default: RTCP passes untouched).
    pub rtcp: bool,
    /// Delay-line slots of [`SLOT_BYTES`] (default
    /// [`ImpairConfig::DEFAULT_SLOTS`], at most [`MAX_SLOTS`]): datagrams
    /// that can be held at once.
    pub slots: usize,
}

impl ImpairConfig {
    /// Default [`slots`](ImpairConfig::slots).
    pub const DEFAULT_SLOTS: usize = 64;

    /// No loss and no jitter, seed 0, RTCP untouched, default slots.
    pub fn none() -> Self {
        ImpairConfig {
            loss: 0.0,
            burst: None,
            jitter: Duration::ZERO,
            seed: 0,
            rtcp: false,
            slots: Self::DEFAULT_SLOTS,
        }
    }

    /// Checks the loss and the burst model's probabilities, the jitter
    /// and the number of slots.
    pub fn validate(&self) -> Result<(), ImpairError> {
        check_loss(self.loss)?;
        if let Some(g) = &self.burst {
            g.validate()?;
        }
        if self.jitter > MAX_DURATION {
            return Err(ImpairError::JitterTooLong(self.jitter));
        }
        if self.slots > MAX_SLOTS {
            return Err(ImpairError::TooManySlots(self.slots));
        }
        Ok(())
    }
}

impl Default for ImpairConfig {
    fn default() -> Self {
        Self::none()
    }
}

/// An endpoint whose sent datagrams are impaired; drive it as the
/// endpoint itself. Built by [`impair`].
#[derive(Debug)]
pub struct Impaired<E> {
    inner: E,
    rng: Rng,
    burst: Option<Gilbert>,
    /// The burst model is in its bad state.
    bad: bool,
    jitter: Duration,
    rtcp: bool,
    slots: Box<[Slot]>,
    /// Slots in use.
    held: usize,
    /// Hold order, to release equal deadlines first in, first out.
    order: u64,
    stats: ImpairStats,
    shared: Arc<Shared>,
}

/// The application's view of an [`Impaired`] endpoint: its counters and
/// its loss. Clone it freely.
#[derive(Debug, Clone)]
pub struct ImpairHandle {
    shared: Arc<Shared>,
}

/// Counters of an [`Impaired`] endpoint. Every datagram the inner endpoint
/// sent is in `passed`, in `dropped`, or still held (`delayed` minus those
/// released).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImpairStats {
    /// Datagrams handed on to be sent (on time, released from the delay
    /// line, or overflowed).
    pub passed: u64,
    /// Datagrams lost on purpose (and held ones that no longer fitted the
    /// caller's buffer when released).
    pub dropped: u64,
    /// Datagrams put in the delay line.
    pub delayed: u64,
    /// Datagrams to delay sent at once: the delay line was full, or the
    /// datagram longer than a slot.
    pub overflow: u64,
}

/// One delay-line slot.
#[derive(Debug)]
struct Slot {
    /// Release time; `None` when the slot is free.
    due: Option<Instant>,
    order: u64,
    component: Component,
    len: usize,
    buf: Box<[u8]>,
}

/// What the wrapper publishes and the handle reads and sets.
#[derive(Debug)]
struct Shared {
    passed: AtomicU64,
    dropped: AtomicU64,
    delayed: AtomicU64,
    overflow: AtomicU64,
    /// Random loss probability, as `f64` bits.
    loss: AtomicU64,
}

/// Wraps `inner` so that what it sends is impaired as `cfg` says, and
/// returns the handle on its counters. Allocates the delay line now.
pub fn impair<E: Endpoint>(
    inner: E,
    cfg: ImpairConfig,
) -> Result<(Impaired<E>, ImpairHandle), ImpairError> {
    cfg.validate()?;
    let slots = (0..cfg.slots)
        .map(|_| Slot {
            due: None,
            order: 0,
            component: Component::Rtp,
            len: 0,
            buf: vec![0; SLOT_BYTES].into_boxed_slice(),
        })
        .collect();
    let shared = Arc::new(Shared {
        passed: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        delayed: AtomicU64::new(0),
        overflow: AtomicU64::new(0),
        loss: AtomicU64::new(cfg.loss.to_bits()),
    });
    Ok((
        Impaired {
            inner,
            rng: Rng::new(cfg.seed),
            burst: cfg.burst,
            bad: false,
            jitter: cfg.jitter,
            rtcp: cfg.rtcp,
            slots,
            held: 0,
            order: 0,
            stats: ImpairStats::default(),
            shared: shared.clone(),
        },
        ImpairHandle { shared },
    ))
}

impl<E> Impaired<E> {
    /// The counters.
    pub fn stats(&self) -> ImpairStats {
        self.stats
    }

    /// A handle on the counters and the loss.
    pub fn handle(&self) -> ImpairHandle {
        ImpairHandle {
            shared: self.shared.clone(),
        }
    }

    /// Datagrams held in the delay line now.
    pub fn held(&self) -> usize {
        self.held
    }

    /// The wrapped endpoint.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// The wrapped endpoint, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    /// Returns the wrapped endpoint; datagrams still held are discarded.
    pub fn into_inner(self) -> E {
        self.inner
    }

    /// The earliest release time in the delay line.
    fn next_release(&self) -> Option<Instant> {
        if self.held == 0 {
            return None;
        }
        self.slots.iter().filter_map(|s| s.due).min()
    }

    /// The slot to release at `now`: the earliest due, first held first.
    fn due_slot(&self, now: Instant) -> Option<usize> {
        if self.held == 0 {
            return None;
        }
        let mut best: Option<(Instant, u64, usize)> = None;
        for (i, s) in self.slots.iter().enumerate() {
            let Some(due) = s.due else { continue };
            if due <= now && best.is_none_or(|b| (due, s.order) < (b.0, b.1)) {
                best = Some((due, s.order, i));
            }
        }
        best.map(|b| b.2)
    }

    /// Copies a held datagram into `buf` and frees its slot; `None` (and
    /// counted as dropped) when it does not fit in `buf`.
    fn release(&mut self, i: usize, buf: &mut [u8]) -> Option<Transmit> {
        let slot = &mut self.slots[i];
        slot.due = None;
        self.held -= 1;
        let (len, component) = (slot.len, slot.component);
        let Some(dst) = buf.get_mut(..len) else {
            self.stats.dropped += 1;
            return None;
        };
        dst.copy_from_slice(&slot.buf[..len]);
        self.stats.passed += 1;
        Some(Transmit { component, len })
    }

    /// Whether the next datagram is lost, and its delay: three draws
    /// whatever the settings (see the module docs).
    fn draw(&mut self) -> (bool, Duration) {
        let transition = self.rng.next_f64();
        let loss_draw = self.rng.next_f64();
        let delay_bits = self.rng.next_u64();
        let lost = match &self.burst {
            // The state moves first, then the datagram is lost with the
            // new state's probability (see `Gilbert`).
            Some(g) => {
                self.bad = if self.bad {
                    transition >= g.r
                } else {
                    transition < g.p
                };
                loss_draw < if self.bad { g.loss_bad } else { g.loss_good }
            }
            None => loss_draw < f64::from_bits(self.shared.loss.load(Ordering::Relaxed)),
        };
        // `jitter` is at most MAX_DURATION (one day), so its nanoseconds
        // fit in a u64 with room for the + 1.
        let span = u64::try_from(self.jitter.as_nanos()).unwrap_or(u64::MAX - 1) + 1;
        // Multiply-shift: uniform in [0, span) to within span / 2^64.
        let delay = ((u128::from(delay_bits) * u128::from(span)) >> 64) as u64;
        (lost, Duration::from_nanos(delay))
    }

    /// Puts the datagram in `buf[..t.len]` in a free slot until `due`;
    /// `false` when no slot is free or it is too long.
    fn hold(&mut self, due: Instant, t: Transmit, buf: &[u8]) -> bool {
        let Some(data) = buf.get(..t.len).filter(|d| d.len() <= SLOT_BYTES) else {
            return false;
        };
        let Some(slot) = self.slots.iter_mut().find(|s| s.due.is_none()) else {
            return false;
        };
        slot.buf[..data.len()].copy_from_slice(data);
        slot.len = data.len();
        slot.component = t.component;
        slot.due = Some(due);
        slot.order = self.order;
        self.order += 1;
        self.held += 1;
        true
    }

    /// Publishes the counters to the handles.
    fn publish(&self) {
        let r = Ordering::Relaxed;
        let sh = &self.shared;
        sh.passed.store(self.stats.passed, r);
        sh.dropped.store(self.stats.dropped, r);
        sh.delayed.store(self.stats.delayed, r);
        sh.overflow.store(self.stats.overflow, r);
    }

    /// The next datagram to send, or `None`; counters not yet published.
    fn next_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit>
    where
        E: Endpoint,
    {
        while let Some(i) = self.due_slot(now) {
            if let Some(t) = self.release(i, buf) {
                return Some(t);
            }
        }
        loop {
            let t = self.inner.poll_transmit(now, buf)?;
            if t.component == Component::Rtcp && !self.rtcp {
                self.stats.passed += 1;
                return Some(t);
            }
            let (lost, delay) = self.draw();
            if lost {
                self.stats.dropped += 1;
                continue;
            }
            if delay.is_zero() {
                self.stats.passed += 1;
                return Some(t);
            }
            if self.hold(now + delay, t, buf) {
                self.stats.delayed += 1;
                continue;
            }
            self.stats.overflow += 1;
            self.stats.passed += 1;
            return Some(t);
        }
    }
}

impl<E: Endpoint> Endpoint for Impaired<E> {
    fn handle_input(&mut self, now: Instant, component: Component, src: SocketAddr, data: &[u8]) {
        self.inner.handle_input(now, component, src, data);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let before = self.stats;
        let t = self.next_transmit(now, buf);
        if self.stats != before {
            self.publish();
        }
        t
    }

    fn poll_timeout(&self) -> Option<Instant> {
        match (self.inner.poll_timeout(), self.next_release()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn handle_timeout(&mut self, now: Instant) {
        // Releases need no work here: `poll_transmit` hands them out.
        if self.inner.poll_timeout().is_some_and(|t| t <= now) {
            self.inner.handle_timeout(now);
        }
    }

    fn flush(&mut self, now: Instant) {
        self.inner.flush(now);
    }

    fn on_send_failed(&mut self, component: Component) {
        self.inner.on_send_failed(component);
    }
}

impl ImpairHandle {
    /// The counters as last published (after each send turn).
    pub fn stats(&self) -> ImpairStats {
        let r = Ordering::Relaxed;
        let sh = &self.shared;
        ImpairStats {
            passed: sh.passed.load(r),
            dropped: sh.dropped.load(r),
            delayed: sh.delayed.load(r),
            overflow: sh.overflow.load(r),
        }
    }

    /// The random loss probability.
    pub fn loss(&self) -> f64 {
        f64::from_bits(self.shared.loss.load(Ordering::Relaxed))
    }

    /// Sets the random loss probability, from the next datagram on (no
    /// effect while a burst model is configured).
    pub fn set_loss(&self, loss: f64) -> Result<(), ImpairError> {
        check_loss(loss)?;
        self.shared.loss.store(loss.to_bits(), Ordering::Relaxed);
        Ok(())
    }
}

fn check_loss(loss: f64) -> Result<(), ImpairError> {
    if (0.0..=1.0).contains(&loss) {
        Ok(())
    } else {
        Err(ImpairError::Loss(loss))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `count` RTP packets, one every 20 ms from `start` (sequence
    /// number in bytes 2..4), and an RTCP packet after every fifth when
    /// `with_rtcp`.
    struct Source {
        next: Instant,
        sent: u16,
        count: u16,
        with_rtcp: bool,
        pending: Option<(Component, u16)>,
        rtcp_pending: bool,
        failed: u32,
    }

    impl Source {
        fn new(start: Instant, count: u16) -> Self {
            Source {
                next: start,
                sent: 0,
                count,
                with_rtcp: false,
                pending: None,
                rtcp_pending: false,
                failed: 0,
            }
        }
    }

    impl Endpoint for Source {
        fn handle_input(&mut self, _: Instant, _: Component, _: SocketAddr, _: &[u8]) {}

        fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
            if let Some((component, seq)) = self.pending.take() {
                buf[..12].fill(0);
                buf[0] = 0x80;
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                buf[12..172].fill(0xd5);
                return Some(Transmit {
                    component,
                    len: 172,
                });
            }
            if std::mem::take(&mut self.rtcp_pending) {
                buf[..8].copy_from_slice(&[0x80, 200, 0, 1, 0, 0, 0, 1]);
                return Some(Transmit {
                    component: Component::Rtcp,
                    len: 8,
                });
            }
            None
        }

        fn poll_timeout(&self) -> Option<Instant> {
            (self.sent < self.count).then_some(self.next)
        }

        fn handle_timeout(&mut self, now: Instant) {
            assert!(now >= self.next, "woken early");
            self.pending = Some((Component::Rtp, self.sent));
            self.sent += 1;
            self.rtcp_pending = self.with_rtcp && self.sent.is_multiple_of(5);
            self.next += Duration::from_millis(20);
        }

        fn on_send_failed(&mut self, _: Component) {
            self.failed += 1;
        }
    }

    /// What came out: release time, component, RTP sequence number (or
    /// `u16::MAX` for RTCP).
    type Out = Vec<(Instant, Component, u16)>;

    /// Drives `ep` on a virtual clock until it has no deadline left.
    fn run<E: Endpoint>(ep: &mut E, start: Instant) -> Out {
        let mut buf = [0u8; 2048];
        let mut out = Vec::new();
        let mut now = start;
        while let Some(next) = ep.poll_timeout() {
            assert!(next >= now, "deadline went back");
            now = next;
            ep.handle_timeout(now);
            while let Some(t) = ep.poll_transmit(now, &mut buf) {
                let seq = match t.component {
                    Component::Rtp => {
                        assert_eq!(t.len, 172);
                        u16::from_be_bytes([buf[2], buf[3]])
                    }
                    Component::Rtcp => u16::MAX,
                };
                out.push((now, t.component, seq));
            }
            ep.flush(now);
        }
        out
    }

    fn sent_at(start: Instant, seq: u16) -> Instant {
        start + Duration::from_millis(20) * u32::from(seq)
    }

    #[test]
    fn random_loss_share_is_close_to_the_setting() {
        let start = Instant::now();
        let cfg = ImpairConfig {
            loss: 0.25,
            seed: 11,
            ..ImpairConfig::none()
        };
        let (mut ep, handle) = impair(Source::new(start, 4000), cfg).expect("valid");
        let out = run(&mut ep, start);
        let s = ep.stats();
        assert_eq!(s, handle.stats());
        assert_eq!(s.passed + s.dropped, 4000);
        assert_eq!(out.len() as u64, s.passed);
        assert_eq!((s.delayed, s.overflow), (0, 0));
        let share = s.dropped as f64 / 4000.0;
        assert!((share - 0.25).abs() < 0.03, "drop share {share}");
        // Without jitter, the survivors go out on time and in order.
        assert!(out.iter().all(|&(at, _, seq)| at == sent_at(start, seq)));
        assert!(out.windows(2).all(|w| w[0].2 < w[1].2));
    }

    #[test]
    fn jitter_reorders_without_loss_and_releases_everything() {
        let start = Instant::now();
        let jitter = Duration::from_millis(30);
        let cfg = ImpairConfig {
            jitter,
            seed: 5,
            ..ImpairConfig::none()
        };
        let n = 500;
        let (mut ep, handle) = impair(Source::new(start, n), cfg).expect("valid");
        let out = run(&mut ep, start);
        assert_eq!(ep.held(), 0);
        let s = handle.stats();
        assert_eq!(s.dropped, 0);
        assert_eq!(s.passed, u64::from(n));
        assert_eq!(s.overflow, 0);
        assert!(s.delayed > u64::from(n) * 9 / 10, "{s:?}");
        let mut seqs: Vec<u16> = out.iter().map(|o| o.2).collect();
        let reordered = seqs.windows(2).filter(|w| w[1] < w[0]).count();
        assert!(reordered > 10, "{reordered} reorderings");
        seqs.sort_unstable();
        assert_eq!(seqs, (0..n).collect::<Vec<_>>(), "each exactly once");
        for &(at, _, seq) in &out {
            let sent = sent_at(start, seq);
            assert!(
                at >= sent && at <= sent + jitter,
                "{seq} at {:?}",
                at - start
            );
        }
        // Releases come out in time order.
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn same_seed_same_run_other_seed_differs() {
        let start = Instant::now();
        let cfg = ImpairConfig {
            loss: 0.1,
            jitter: Duration::from_millis(40),
            seed: 99,
            ..ImpairConfig::none()
        };
        let go = |cfg: ImpairConfig| {
            let (mut ep, _) = impair(Source::new(start, 300), cfg).expect("valid");
            let out = run(&mut ep, start);
            (out, ep.stats())
        };
        let a = go(cfg);
        assert_eq!(a, go(cfg));
        assert_ne!(a.0, go(ImpairConfig { seed: 100, ..cfg }).0);
        // Jitter does not move which datagrams are lost.
        let lost = |out: &Out| {
            let mut s: Vec<u16> = out.iter().map(|o| o.2).collect();
            s.sort_unstable();
            s
        };
        let no_jitter = go(ImpairConfig {
            jitter: Duration::ZERO,
            ..cfg
        });
        assert_eq!(lost(&a.0), lost(&no_jitter.0));
    }

    #[test]
    fn burst_loss_follows_the_gilbert_model() {
        let start = Instant::now();
        let cfg = ImpairConfig {
            loss: 1.0, // ignored: the burst model decides
            burst: Some(Gilbert::with_mean_burst(0.2, 4.0).expect("valid")),
            seed: 3,
            ..ImpairConfig::none()
        };
        let n = 20_000;
        let (mut ep, _) = impair(Source::new(start, n), cfg).expect("valid");
        let out = run(&mut ep, start);
        let s = ep.stats();
        let share = s.dropped as f64 / f64::from(n);
        assert!((share - 0.2).abs() < 0.03, "loss share {share}");
        // Mean length of the gaps in the sequence: about 4.
        let mut gaps = 0u64;
        let mut lost = 0u64;
        let mut expect = 0u16;
        for &(_, _, seq) in &out {
            if seq != expect {
                gaps += 1;
                lost += u64::from(seq - expect);
            }
            expect = seq + 1;
        }
        let mean = lost as f64 / gaps as f64;
        assert!((3.0..5.0).contains(&mean), "mean burst {mean}");
    }

    #[test]
    fn rtcp_passes_unless_asked() {
        let start = Instant::now();
        let mut src = Source::new(start, 100);
        src.with_rtcp = true;
        let cfg = ImpairConfig {
            loss: 1.0,
            seed: 1,
            ..ImpairConfig::none()
        };
        let (mut ep, _) = impair(src, cfg).expect("valid");
        let out = run(&mut ep, start);
        assert_eq!(out.len(), 20);
        assert!(out.iter().all(|o| o.1 == Component::Rtcp));
        assert_eq!((ep.stats().passed, ep.stats().dropped), (20, 100));

        let mut src = Source::new(start, 100);
        src.with_rtcp = true;
        let (mut ep, _) = impair(src, ImpairConfig { rtcp: true, ..cfg }).expect("valid");
        assert!(run(&mut ep, start).is_empty());
        assert_eq!(ep.stats().dropped, 120);
    }

    #[test]
    fn full_delay_line_sends_at_once_and_counts() {
        let start = Instant::now();
        let cfg = ImpairConfig {
            jitter: Duration::from_secs(10),
            slots: 2,
            seed: 8,
            ..ImpairConfig::none()
        };
        let (mut ep, _) = impair(Source::new(start, 10), cfg).expect("valid");
        let out = run(&mut ep, start);
        let s = ep.stats();
        assert_eq!((s.delayed, s.overflow, s.passed), (2, 8, 10));
        // The overflowed ones went out on time.
        let on_time = out
            .iter()
            .filter(|&&(at, _, seq)| at == sent_at(start, seq))
            .count();
        assert_eq!(on_time, 8);

        let (mut ep, _) =
            impair(Source::new(start, 3), ImpairConfig { slots: 0, ..cfg }).expect("valid");
        assert_eq!(run(&mut ep, start).len(), 3);
        assert_eq!(ep.stats().overflow, 3);
    }

    #[test]
    fn loss_changes_at_run_time() {
        let start = Instant::now();
        let (mut ep, handle) = impair(Source::new(start, 200), ImpairConfig::none()).expect("ok");
        let mut buf = [0u8; 2048];
        let mut now = start;
        let mut got = 0;
        for i in 0..200 {
            if i == 100 {
                handle.set_loss(1.0).expect("valid");
            }
            now = ep.poll_timeout().expect("more").max(now);
            ep.handle_timeout(now);
            while ep.poll_transmit(now, &mut buf).is_some() {
                got += 1;
            }
        }
        assert_eq!(got, 100);
        assert_eq!(handle.loss(), 1.0);
        assert_eq!(handle.stats().dropped, 100);
        assert_eq!(handle.set_loss(1.5), Err(ImpairError::Loss(1.5)));
        assert!(handle.set_loss(f64::NAN).is_err());
        assert_eq!(handle.loss(), 1.0);
    }

    #[test]
    fn settings_are_validated() {
        assert_eq!(ImpairConfig::default().validate(), Ok(()));
        let bad = |c: ImpairConfig| impair(Source::new(Instant::now(), 1), c).err();
        assert_eq!(
            bad(ImpairConfig {
                loss: -0.1,
                ..ImpairConfig::none()
            }),
            Some(ImpairError::Loss(-0.1))
        );
        assert!(matches!(
            bad(ImpairConfig {
                burst: Some(Gilbert::new(0.1, 1.5)),
                ..ImpairConfig::none()
            }),
            Some(ImpairError::Burst(_))
        ));
        let long = MAX_DURATION + Duration::from_nanos(1);
        assert_eq!(
            bad(ImpairConfig {
                jitter: long,
                ..ImpairConfig::none()
            }),
            Some(ImpairError::JitterTooLong(long))
        );
        assert_eq!(
            bad(ImpairConfig {
                slots: MAX_SLOTS + 1,
                ..ImpairConfig::none()
            }),
            Some(ImpairError::TooManySlots(MAX_SLOTS + 1))
        );
    }

    #[test]
    fn send_failures_reach_the_inner_endpoint_and_it_is_send() {
        fn send<T: Send>() {}
        send::<Impaired<Source>>();
        send::<ImpairHandle>();
        let (mut ep, _) = impair(Source::new(Instant::now(), 1), ImpairConfig::none()).expect("ok");
        ep.on_send_failed(Component::Rtp);
        assert_eq!(ep.inner().failed, 1);
    }
}
