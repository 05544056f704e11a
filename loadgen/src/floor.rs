//! The kernel's floor: the least CPU one UDP datagram costs on this host,
//! sent and received over loopback through the engine's I/O layer in the
//! best case any load generator or relay could hope for: one socket pair,
//! full batches, no pacing, no sleeping, no per-call state.
//!
//! One thread, two connected sockets on a [`PacketLoop`]. Each loop turn
//! queues up to `batch` datagrams (at most [`MAX_BATCH`]) from the first
//! socket to the second, with at most [`MAX_IN_FLIGHT`] in flight (which a
//! default-sized receive buffer holds), and collects what arrived, without
//! ever sleeping. The thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) over
//! the run, divided by datagrams sent plus datagrams received, is the CPU
//! per datagram sent or received: the unit `loadgen relay` reports for its
//! generator. On loopback the sender's system call also delivers each
//! datagram into the receiving socket, so the figure holds the whole
//! kernel path, as the generator's and a relay's figures do.
//!
//! A program that sends and receives one datagram per socket operation
//! (each in its own message, however many a system call carries) on this
//! host can expect no better per datagram (segmentation
//! offload, which packs many datagrams to one destination into one, does
//! not apply to RTP streams of 50 packets a second each): a generator or
//! relay that handles many sockets at a real call's pace adds per-socket
//! and per-wake-up work on top (a relay pays the floor twice per relayed
//! packet, receiving it and sending it on).
//!
//! On loopback the softirq work of delivering a datagram runs in the
//! sender's system call and counts as the sender's CPU time where the
//! kernel does not account interrupt time apart
//! (`CONFIG_IRQ_TIME_ACCOUNTING` off, as on the development machine);
//! where it does, or where the kernel defers the work to `ksoftirqd`, the
//! figure leaves the delivery out.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use mediarelay::engine::{
    IoBackend, LoopSink, OwnTransmit, PacketLoop, StreamKey, thread_cpu_time,
};

use crate::figures::Figures;

/// Stops a run that makes no progress for this long (lost datagrams).
const STALL: Duration = Duration::from_secs(1);
/// Most datagrams queued per turn.
pub const MAX_BATCH: usize = 128;
/// Most datagrams in flight: about 130 KiB of receive buffer at the
/// kernel's accounting of a small datagram, within the default 208 KiB.
pub const MAX_IN_FLIGHT: u64 = 128;

/// What to measure.
#[derive(Debug, Clone)]
pub struct FloorOptions {
    /// Datagrams each run sends.
    pub datagrams: u64,
    /// Datagrams queued per loop turn, one run each.
    pub batches: Vec<usize>,
    /// Datagram size, bytes (UDP payload).
    pub size: usize,
    /// I/O backends, one run per backend and batch.
    pub backends: Vec<IoBackend>,
}

/// One measured run.
#[derive(Debug, Clone)]
pub struct FloorRun {
    /// The backend used (never `Auto`).
    pub backend: IoBackend,
    /// Datagrams queued per turn.
    pub batch: usize,
    /// Datagrams sent.
    pub sent: u64,
    /// Datagrams received.
    pub received: u64,
    /// The thread's run time over the run.
    pub cpu: Duration,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
    /// System calls on the data path (the loop's own count).
    pub syscalls: u64,
}

impl FloorRun {
    /// CPU per datagram sent or received, ns.
    pub fn cpu_ns_per_pkt(&self) -> f64 {
        self.cpu.as_nanos() as f64 / (self.sent + self.received).max(1) as f64
    }

    /// Datagrams received per second of wall-clock time.
    pub fn received_per_s(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// System calls per datagram sent or received.
    pub fn syscalls_per_pkt(&self) -> f64 {
        self.syscalls as f64 / (self.sent + self.received).max(1) as f64
    }
}

/// The loop's application: queues batches from socket 0, counts arrivals
/// on socket 1.
struct Pump {
    batch: usize,
    window: u64,
    target: u64,
    size: usize,
    sent: u64,
    received: u64,
    this_turn: usize,
}

const TX: u32 = 0;
const RX: u32 = 1;

impl LoopSink for Pump {
    fn on_datagram(&mut self, _: Instant, key: StreamKey, _: SocketAddr, _: &[u8], _: bool) {
        if key.index() == RX {
            self.received += 1;
        }
    }

    fn poll_transmit(&mut self, _: Instant, buf: &mut [u8]) -> Option<OwnTransmit> {
        let in_flight = self.sent - self.received;
        if self.this_turn >= self.batch || self.sent >= self.target || in_flight >= self.window {
            self.this_turn = 0;
            return None;
        }
        let len = self.size.min(buf.len());
        buf[..len].fill(0x80);
        self.sent += 1;
        self.this_turn += 1;
        Some(OwnTransmit {
            via: StreamKey::from_parts(TX, 0),
            dest: None,
            len,
        })
    }
}

/// Runs one measurement on the calling thread.
pub fn run_one(
    backend: IoBackend,
    batch: usize,
    datagrams: u64,
    size: usize,
) -> Result<FloorRun, String> {
    let batch = batch.clamp(1, MAX_BATCH);
    let mut lp = PacketLoop::new(backend).map_err(|e| e.to_string())?;
    let bind = || UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind: {e}"));
    let (tx, rx) = (bind()?, bind()?);
    let (tx_addr, rx_addr) = (
        tx.local_addr().map_err(|e| e.to_string())?,
        rx.local_addr().map_err(|e| e.to_string())?,
    );
    tx.connect(rx_addr).map_err(|e| format!("connect: {e}"))?;
    rx.connect(tx_addr).map_err(|e| format!("connect: {e}"))?;
    lp.register(StreamKey::from_parts(TX, 0), tx)
        .map_err(|e| format!("registering a socket: {e}"))?;
    lp.register(StreamKey::from_parts(RX, 0), rx)
        .map_err(|e| format!("registering a socket: {e}"))?;
    let mut pump = Pump {
        batch,
        window: (2 * batch as u64).min(MAX_IN_FLIGHT),
        target: datagrams,
        size,
        sent: 0,
        received: 0,
        this_turn: 0,
    };
    let syscalls0 = lp.counters().syscalls;
    let cpu0 = thread_cpu_time();
    let t0 = Instant::now();
    let mut progress = (t0, 0u64);
    while pump.received < datagrams {
        // A turn whose sends the backend cut short (its send buffers all
        // in flight) starts the next batch afresh.
        pump.this_turn = 0;
        lp.turn(Some(Duration::ZERO), &mut pump)
            .map_err(|e| format!("packet loop: {e}"))?;
        let now = Instant::now();
        if pump.received != progress.1 {
            progress = (now, pump.received);
        } else if now - progress.0 > STALL {
            return Err(format!(
                "{} of {} datagrams lost on loopback ({backend:?}, batch {batch}): the floor needs a lossless exchange",
                pump.sent - pump.received,
                pump.sent
            ));
        }
    }
    let elapsed = t0.elapsed();
    let cpu = thread_cpu_time().saturating_sub(cpu0);
    Ok(FloorRun {
        backend: lp.backend(),
        batch,
        sent: pump.sent,
        received: pump.received,
        cpu,
        elapsed,
        syscalls: lp.counters().syscalls - syscalls0,
    })
}

/// Every backend and batch of `o`, in turn, on the calling thread.
pub fn run(o: &FloorOptions) -> Result<Vec<FloorRun>, String> {
    let mut runs = Vec::new();
    for &backend in &o.backends {
        for &batch in &o.batches {
            runs.push(run_one(backend, batch, o.datagrams, o.size)?);
        }
    }
    Ok(runs)
}

/// The run with the least CPU per datagram.
pub fn best(runs: &[FloorRun]) -> Option<&FloorRun> {
    runs.iter()
        .min_by(|a, b| a.cpu_ns_per_pkt().total_cmp(&b.cpu_ns_per_pkt()))
}

/// Puts every run's figures under `floor.<backend>.batch_<n>` and the
/// best under `floor.best`.
pub fn put_figures(runs: &[FloorRun], o: &FloorOptions, f: &mut Figures) {
    f.put("floor.datagrams", o.datagrams);
    f.put("floor.size", o.size as u64);
    for r in runs {
        let p = format!("floor.{}.batch_{}", r.backend.as_str(), r.batch);
        f.put(&format!("{p}.cpu_ns_per_pkt"), r.cpu_ns_per_pkt().round());
        f.put(&format!("{p}.received_per_s"), r.received_per_s().round());
        f.put(&format!("{p}.syscalls_per_pkt"), r.syscalls_per_pkt());
        f.put(&format!("{p}.sent"), r.sent);
        f.put(&format!("{p}.received"), r.received);
    }
    if let Some(b) = best(runs) {
        f.put("floor.best.cpu_ns_per_pkt", b.cpu_ns_per_pkt().round());
        f.put("floor.best.backend", b.backend.as_str());
        f.put("floor.best.batch", b.batch as u64);
    }
}

/// The human summary.
pub fn print(runs: &[FloorRun], o: &FloorOptions) {
    println!(
        "loadgen floor: {} datagrams of {} bytes per run between two sockets on loopback, one thread, full batches, no pacing",
        o.datagrams, o.size
    );
    println!(
        "  {:<8} {:>6} {:>28} {:>14} {:>28}",
        "backend",
        "batch",
        "CPU ns per datagram sent or",
        "datagrams/s",
        "syscalls per datagram sent or"
    );
    println!(
        "  {:<8} {:>6} {:>28} {:>14} {:>28}",
        "", "", "received", "received", "received"
    );
    for r in runs {
        println!(
            "  {:<8} {:>6} {:>28.0} {:>14.0} {:>28.3}",
            r.backend.as_str(),
            r.batch,
            r.cpu_ns_per_pkt(),
            r.received_per_s(),
            r.syscalls_per_pkt()
        );
    }
    if let Some(b) = best(runs) {
        println!(
            "  floor: {:.0} ns of CPU per datagram sent or received ({}, batch {}): the least a generator or relay that sends and receives one datagram per socket operation can spend per datagram on this host",
            b.cpu_ns_per_pkt(),
            b.backend.as_str(),
            b.batch
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_datagram_is_counted_on_epoll() {
        let r = run_one(IoBackend::Epoll, 8, 2_000, 172).unwrap();
        assert_eq!(
            (r.backend, r.sent, r.received),
            (IoBackend::Epoll, 2_000, 2_000)
        );
        assert!(r.cpu > Duration::ZERO);
        assert!(r.syscalls > 0);
        // Batches of 8 sends leave in one sendmmsg: fewer syscalls than
        // datagrams.
        assert!(r.syscalls < r.sent + r.received, "{r:?}");
    }

    #[test]
    fn a_batch_of_one_still_ends() {
        let r = run_one(IoBackend::Auto, 1, 500, 60).unwrap();
        assert_eq!((r.sent, r.received), (500, 500));
        assert!(r.cpu_ns_per_pkt() > 0.0);
    }
}
