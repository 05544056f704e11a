//! One generator thread: the calls it owns, their sockets on one
//! [`PacketLoop`], the open-loop send schedule and the receive accounting.
//!
//! Every socket sends one stream (to the relay port of its call leg) and
//! receives the stream of the other leg of its call, relayed. The schedule
//! is a grid: each packet period (20 ms at 50 pps) is cut into slots
//! ([`Plan::slot`], 100 µs by default), every stream has a slot, and a
//! slot's packets go out in one batch (one `io_uring_enter` for all of
//! them with io_uring). A
//! packet's probe carries its scheduled time (its slot's) and its actual
//! send time, stamped as it is written into the send buffer.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mediarelay::engine::{IoBackend, LoopSink, OwnTransmit, PacketLoop, StreamKey, UringConfig};

use crate::audit::SenderAudit;
use crate::clock;
use crate::latency::{Latency, MAX_LATENCY_US};
use crate::probe::{PROBE_LEN, Probe};
use crate::stream::{Arrival, StreamReport, StreamRx};

/// Size of the RTP header the generator writes (no CSRC, no extension).
pub const RTP_HEADER: usize = 12;
/// Completions that wake the loop before its next slot (io_uring).
const WAIT_BATCH: u32 = 256;

/// One socket of a generator thread.
#[derive(Debug)]
pub struct Flow {
    /// The bound socket (moved into the loop at start).
    pub sock: UdpSocket,
    /// The relay address it sends to.
    pub dest: SocketAddr,
    /// The stream id it sends (its global index); it receives `stream ^ 1`.
    pub stream: u32,
}

/// A generator thread's plan.
#[derive(Debug)]
pub struct Plan {
    /// The run id every probe carries.
    pub run: u64,
    /// The flows (two per call: sockets of legs A and B).
    pub flows: Vec<Flow>,
    /// Flows in the whole run (for slot assignment).
    pub total_flows: u32,
    /// Packets per second per stream.
    pub pps: u32,
    /// Datagram size (RTP header included).
    pub packet_len: usize,
    /// When the first slot is (run clock).
    pub start_ns: u64,
    /// Packets each stream sends.
    pub packets_per_stream: u64,
    /// Receiving goes on this long after the last send.
    pub drain: Duration,
    /// An arrival later than this after its scheduled time counts late.
    pub late_after: Duration,
    /// I/O backend.
    pub backend: IoBackend,
    /// Target length of a schedule slot: the packets of one slot leave
    /// together, and the loop wakes once per slot.
    pub slot: Duration,
    /// Connect each socket to its relay address (sends skip the route
    /// lookup; only datagrams from that address are received, so the relay
    /// must send from the port it receives on: symmetric RTP).
    pub connect: bool,
}

/// One second of the run (by scheduled send time for counts, by arrival
/// for latency).
#[derive(Debug, Clone)]
pub struct SecondBucket {
    /// Packets scheduled in that second that were sent.
    pub sent: u64,
    /// Of those, received (first copies).
    pub received: u64,
    /// Latency (µs, from the scheduled time) of arrivals in that second.
    pub latency: Histogram<u64>,
}

impl SecondBucket {
    fn new() -> SecondBucket {
        SecondBucket {
            sent: 0,
            received: 0,
            latency: crate::latency::new_histogram(),
        }
    }

    /// Adds another thread's figures for the same second.
    pub fn merge(&mut self, o: &SecondBucket) {
        self.sent += o.sent;
        self.received += o.received;
        let _ = self.latency.add(&o.latency);
    }
}

/// What a generator thread measured.
#[derive(Debug)]
pub struct Outcome {
    /// Receive figures per stream received.
    pub streams: Vec<StreamReport>,
    /// Latency of first copies.
    pub latency: Latency,
    /// The send audit.
    pub audit: SenderAudit,
    /// Per-second figures, from the run's start.
    pub seconds: Vec<SecondBucket>,
    /// Packets whose probe named a stream other than the one the socket
    /// expects (cross-talk between calls).
    pub misdelivered: u64,
    /// Datagrams that were not probes of this run.
    pub foreign: u64,
    /// Datagrams received truncated.
    pub truncated: u64,
    /// The backend used.
    pub backend: IoBackend,
    /// Arrival times are the kernel's (io_uring with `SO_TIMESTAMPNS`);
    /// otherwise the loop's wake-up time.
    pub kernel_timestamps: bool,
    /// io_uring_enter / epoll / mmsg calls made.
    pub syscalls: u64,
}

struct State {
    run: u64,
    flows: Vec<FlowState>,
    /// Local flow indices by slot.
    slots: Vec<Vec<u32>>,
    period_ns: u64,
    start_ns: u64,
    /// Next slot tick to enqueue (counts across periods).
    next_tick: u64,
    ticks_total: u64,
    due: VecDeque<(u32, u64)>,
    packet_len: usize,
    /// The sockets are connected to their relay addresses: sends carry no
    /// address.
    connected: bool,
    audit: SenderAudit,
    latency: Latency,
    seconds: Vec<SecondBucket>,
    misdelivered: u64,
    foreign: u64,
    truncated: u64,
    /// Packets handed to the loop and not yet reported sent.
    sent_total: u64,
    received_total: u64,
}

struct FlowState {
    dest: SocketAddr,
    stream: u32,
    ssrc: u32,
    seq: u64,
    sent: u64,
    rx: StreamRx,
}

impl State {
    fn tick_ns(&self, tick: u64) -> u64 {
        let s = self.slots.len() as u64;
        self.start_ns + (tick / s) * self.period_ns + (tick % s) * self.period_ns / s
    }

    fn second(&mut self, ns: u64) -> Option<&mut SecondBucket> {
        let i = usize::try_from(ns.saturating_sub(self.start_ns) / 1_000_000_000).ok()?;
        if i > 100_000 {
            return None;
        }
        while self.seconds.len() <= i {
            self.seconds.push(SecondBucket::new());
        }
        self.seconds.get_mut(i)
    }

    /// Queues every slot due by `now`; a flow whose previous packet is
    /// still queued when its next falls due means the generator fell a
    /// whole period behind (a missed tick).
    fn enqueue_due(&mut self, now: u64) {
        while self.next_tick < self.ticks_total {
            let at = self.tick_ns(self.next_tick);
            if at > now {
                break;
            }
            let slot = (self.next_tick % self.slots.len() as u64) as usize;
            if now.saturating_sub(at) > self.period_ns {
                self.audit.record_missed(1);
            }
            for &f in &self.slots[slot] {
                self.due.push_back((f, at));
            }
            self.next_tick += 1;
        }
    }

    fn next_due_ns(&self) -> Option<u64> {
        (self.next_tick < self.ticks_total).then(|| self.tick_ns(self.next_tick))
    }
}

impl LoopSink for State {
    fn on_datagram(
        &mut self,
        now: Instant,
        key: StreamKey,
        _src: SocketAddr,
        data: &[u8],
        truncated: bool,
    ) {
        if truncated {
            self.truncated += 1;
            return;
        }
        let arrival = clock::ns_of(now);
        let Some(probe) = rtp_payload(data).and_then(|p| Probe::read(p).ok()) else {
            self.foreign += 1;
            return;
        };
        if probe.run != self.run {
            self.foreign += 1;
            return;
        }
        let Some(flow) = self.flows.get_mut(key.index() as usize) else {
            self.foreign += 1;
            return;
        };
        if probe.stream != flow.stream ^ 1 {
            self.misdelivered += 1;
            return;
        }
        match flow.rx.on_packet(&probe, arrival) {
            Arrival::New | Arrival::Reordered => {
                self.received_total += 1;
                self.latency
                    .record(probe.scheduled_ns, probe.sent_ns, arrival);
                let us =
                    (arrival.saturating_sub(probe.scheduled_ns) / 1000).clamp(1, MAX_LATENCY_US);
                if let Some(b) = self.second(arrival) {
                    let _ = b.latency.record(us);
                }
                if let Some(b) = self.second(probe.scheduled_ns) {
                    b.received += 1;
                }
            }
            Arrival::Duplicate | Arrival::Invalid => {}
        }
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<OwnTransmit> {
        // The slots fall due here, in the turn that woke at their time: their
        // packets are queued in that turn and handed to the kernel at the
        // next one's entry (one io_uring_enter per slot).
        if self.due.is_empty() {
            self.enqueue_due(clock::ns_of(now));
        }
        let (f, scheduled) = self.due.pop_front()?;
        let len = self.packet_len.min(buf.len());
        let flow = &mut self.flows[f as usize];
        let seq = flow.seq;
        flow.seq += 1;
        flow.sent += 1;
        let (dest, stream, ssrc) = (flow.dest, flow.stream, flow.ssrc);
        write_rtp(&mut buf[..len], seq, ssrc);
        let sent = clock::now_ns();
        let probe = Probe {
            run: self.run,
            stream,
            seq,
            scheduled_ns: scheduled,
            sent_ns: sent,
        };
        // The packet length is at least RTP_HEADER + PROBE_LEN (checked
        // when the plan is made).
        let _ = probe.write(&mut buf[RTP_HEADER..len]);
        self.audit.record_send(scheduled, sent);
        self.sent_total += 1;
        if let Some(b) = self.second(scheduled) {
            b.sent += 1;
        }
        Some(OwnTransmit {
            via: StreamKey::from_parts(f, 0),
            dest: if self.connected { None } else { Some(dest) },
            len,
        })
    }

    fn on_send_error(&mut self, _key: StreamKey, errno: i32) {
        self.audit
            .record_error(&std::io::Error::from_raw_os_error(errno));
    }
}

/// RTP version 2, PT 0 (PCMU), sequence `seq` (mod 2^16), timestamp
/// 160 per packet, `ssrc` (RFC 3550 §5.1).
fn write_rtp(buf: &mut [u8], seq: u64, ssrc: u32) {
    buf[0] = 0x80;
    buf[1] = 0;
    buf[2..4].copy_from_slice(&(seq as u16).to_be_bytes());
    buf[4..8].copy_from_slice(&((seq as u32).wrapping_mul(160)).to_be_bytes());
    buf[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// The payload of an RTP packet (RFC 3550 §5.1: CSRCs and a header
/// extension skipped); `None` when it is not RTP version 2.
pub fn rtp_payload(data: &[u8]) -> Option<&[u8]> {
    let b0 = *data.first()?;
    if b0 >> 6 != 2 {
        return None;
    }
    let mut off = RTP_HEADER + 4 * usize::from(b0 & 0x0f);
    if b0 & 0x10 != 0 {
        let words = data.get(off + 2..off + 4)?;
        off += 4 + 4 * usize::from(u16::from_be_bytes([words[0], words[1]]));
    }
    data.get(off..)
}

/// Smallest datagram that holds the RTP header and the probe.
pub const MIN_PACKET: usize = RTP_HEADER + PROBE_LEN;

/// Runs one generator thread's plan to the end of its drain window.
/// `progress` is called about every 100 ms with (sent, received) so far.
pub fn run(plan: Plan, mut progress: impl FnMut(u64, u64)) -> Result<Outcome, String> {
    // Kernel receive timestamps (io_uring): arrivals are timed by the
    // kernel, so the loop need not wake for each one; it wakes at its next
    // schedule slot or after a batch of completions.
    let mut lp = PacketLoop::with_uring_config(
        plan.backend,
        UringConfig {
            rx_timestamps: true,
            wait_batch: WAIT_BATCH,
            ..UringConfig::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let period_ns = 1_000_000_000 / u64::from(plan.pps.max(1));
    let slot_ns = (plan.slot.as_nanos() as u64).max(1_000);
    let slots_n = (period_ns / slot_ns).max(1) as usize;
    let mut slots = vec![Vec::new(); slots_n];
    let mut flows = Vec::with_capacity(plan.flows.len());
    for (i, f) in plan.flows.into_iter().enumerate() {
        let slot = (u64::from(f.stream) * slots_n as u64 / u64::from(plan.total_flows.max(1)))
            as usize
            % slots_n;
        slots[slot].push(i as u32);
        if plan.connect {
            f.sock
                .connect(f.dest)
                .map_err(|e| format!("connecting socket {i} to {}: {e}", f.dest))?;
        }
        lp.register(StreamKey::from_parts(i as u32, 0), f.sock)
            .map_err(|e| format!("registering socket {i}: {e}"))?;
        flows.push(FlowState {
            dest: f.dest,
            stream: f.stream,
            ssrc: 0x4c47_0000 ^ f.stream.wrapping_mul(0x9e37_79b9),
            seq: 0,
            sent: 0,
            rx: StreamRx::new(plan.late_after),
        });
    }
    let mut st = State {
        run: plan.run,
        flows,
        slots,
        period_ns,
        start_ns: plan.start_ns,
        next_tick: 0,
        ticks_total: plan.packets_per_stream * slots_n as u64,
        due: VecDeque::new(),
        packet_len: plan.packet_len.max(MIN_PACKET),
        connected: plan.connect,
        audit: SenderAudit::new(),
        latency: Latency::new(),
        seconds: Vec::new(),
        misdelivered: 0,
        foreign: 0,
        truncated: 0,
        sent_total: 0,
        received_total: 0,
    };
    let drain_ns = plan.drain.as_nanos() as u64;
    let mut last_progress = 0u64;
    let mut sends_end: Option<u64> = None;
    loop {
        let now = clock::now_ns();
        if st.next_tick >= st.ticks_total && st.due.is_empty() && sends_end.is_none() {
            sends_end = Some(now);
        }
        if let Some(end) = sends_end {
            if now >= end + drain_ns {
                break;
            }
        }
        if now.saturating_sub(last_progress) >= 100_000_000 {
            last_progress = now;
            progress(st.sent_total, st.received_total);
        }
        let wake = match (st.due.is_empty(), st.next_due_ns(), sends_end) {
            (false, _, _) => now,
            (true, Some(t), _) => t,
            (true, None, Some(end)) => end + drain_ns,
            (true, None, None) => now,
        };
        let timeout = Duration::from_nanos(wake.saturating_sub(now).min(100_000_000));
        lp.turn(Some(timeout), &mut st)
            .map_err(|e| format!("packet loop: {e}"))?;
    }
    progress(st.sent_total, st.received_total);
    let syscalls = lp.counters().syscalls;
    let backend = lp.backend();
    drop(lp);
    let sent_by_stream: std::collections::HashMap<u32, u64> =
        st.flows.iter().map(|f| (f.stream, f.sent)).collect();
    let streams = st
        .flows
        .iter()
        .map(|f| {
            let peer_sent = sent_by_stream.get(&(f.stream ^ 1)).copied().unwrap_or(0);
            f.rx.report(peer_sent)
        })
        .collect();
    Ok(Outcome {
        streams,
        latency: st.latency,
        audit: st.audit,
        seconds: st.seconds,
        misdelivered: st.misdelivered,
        foreign: st.foreign,
        truncated: st.truncated,
        backend,
        kernel_timestamps: backend == IoBackend::Uring,
        syscalls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_payload_skips_csrcs_and_extension() {
        let mut p = vec![0u8; 40];
        write_rtp(&mut p, 70_000, 7);
        assert_eq!(rtp_payload(&p).map(<[u8]>::len), Some(28));
        assert_eq!(
            u16::from_be_bytes([p[2], p[3]]),
            (70_000u64 % 65_536) as u16
        );
        p[0] = 0x91; // one CSRC, extension
        p[16..20].copy_from_slice(&[0xbe, 0xde, 0, 1]);
        assert_eq!(rtp_payload(&p).map(<[u8]>::len), Some(40 - 12 - 4 - 8));
        p[0] = 0x40;
        assert_eq!(rtp_payload(&p), None);
    }
}
