//! `loadgen relay`: calls set up over NG on a relay, RTP streamed through
//! them open-loop, everything accounted for, the calls deleted and the
//! relay checked to hold none of them afterwards; `--find-max` searches
//! the highest load a relay carries within bounds.
//!
//! A run (a *trial*): bind two sockets per call on the generator's port
//! range (legs A and B; even ports, RTCP's odd neighbour left free), send
//! `offer` with A's address and `answer` with B's to the relay, hand the
//! calls to the generator threads ([`generator`]), stream `--pps` packets a
//! second each way per call for `--duration`, wait out the drain window,
//! `delete` every call, then ask the relay with `list` and `statistics`
//! whether any of them is left. The relay is an external one (`--ng`) or
//! mediarelay embedded in a child process ([`embedded`]).

pub mod embedded;
pub mod generator;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mediarelay::engine::IoBackend;
use mediarelay::media::quality::{CodecImpairment, EModelInput, mos_from_r, r_factor};

use crate::audit::{SenderAudit, UdpCounters, Validity};
use crate::clock;
use crate::cpu::{SystemTicks, ThreadTimes, process_cpu};
use crate::figures::Figures;
use crate::latency::{Latency, MAX_LATENCY_US, Percentiles};
use crate::ng::NgClient;
use crate::plot::{RampPoint, SecondRow};
use crate::stream::StreamReport;
use embedded::{EmbeddedOptions, EmbeddedRelay};
use generator::{Flow, Plan, SecondBucket};

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The relay's NG address; `None`: start the embedded relay.
    pub ng: Option<SocketAddr>,
    /// No relay at all: each call's two sockets stream straight to each
    /// other, through the same generator, schedule and accounting. What
    /// the machine spends on the load without a relay: the baseline
    /// `compare` subtracts to give a relay's own cost wherever the kernel
    /// charged it.
    pub direct: bool,
    /// The relay's pid, for its CPU time (the embedded relay's is known).
    pub relay_pid: Option<u32>,
    /// Calls.
    pub calls: u32,
    /// Packets per second per direction per call.
    pub pps: u32,
    /// Streaming time.
    pub duration: Duration,
    /// CPU is measured from this far into the streaming on (zero: from
    /// the start), per packet received after that point: a relay's
    /// steady state without its set-up, e.g. the kernel fast path once
    /// streams are out of their learning window. Loss and latency still
    /// cover the whole run.
    pub warmup: Duration,
    /// Receiving goes on this long after the last send.
    pub drain: Duration,
    /// Generator threads.
    pub threads: usize,
    /// The generator's I/O backend.
    pub backend: IoBackend,
    /// Address the generator's sockets bind (and offer in SDP).
    pub local_ip: IpAddr,
    /// Port range of the generator's sockets.
    pub local_ports: (u16, u16),
    /// Datagram size, RTP header included.
    pub packet_len: usize,
    /// Loss above this percentage fails the run.
    pub max_loss_pct: f64,
    /// p99 latency (from the scheduled time) above this fails the run.
    pub max_p99: Option<Duration>,
    /// Generator p99 send lag above this makes the run invalid.
    pub max_send_lag: Duration,
    /// How to start the embedded relay.
    pub embedded: EmbeddedOptions,
    /// The loadgen binary (runs the embedded relay); the current
    /// executable when `None`.
    pub exe: Option<PathBuf>,
    /// Draw a progress bar on a terminal.
    pub progress: bool,
    /// Schedule slot length (see [`generator`]).
    pub slot: Duration,
    /// Connect the generator's sockets to their relay addresses
    /// ([`generator::Plan::connect`]).
    pub connect: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            ng: None,
            direct: false,
            relay_pid: None,
            calls: 100,
            pps: 50,
            duration: Duration::from_secs(10),
            warmup: Duration::ZERO,
            drain: Duration::from_millis(500),
            threads: 1,
            backend: IoBackend::Auto,
            local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            local_ports: (10000, 29999),
            packet_len: 172,
            max_loss_pct: 0.1,
            max_p99: None,
            max_send_lag: Duration::from_millis(1),
            embedded: EmbeddedOptions::default(),
            exe: None,
            progress: true,
            slot: Duration::from_micros(100),
            connect: true,
        }
    }
}

/// The relay under test: external or embedded.
#[derive(Debug)]
pub struct Target {
    /// NG address.
    pub ng: SocketAddr,
    /// Pid for CPU accounting.
    pub pid: Option<u32>,
    /// What it is, for reports.
    pub name: String,
    embedded: Option<EmbeddedRelay>,
    /// No relay ([`Options::direct`]): `ng` is not used.
    direct: bool,
}

impl Target {
    /// Connects to `o.ng`, or starts the embedded relay.
    pub fn open(o: &Options) -> Result<Target, String> {
        if o.direct {
            if o.ng.is_some() || o.relay_pid.is_some() {
                return Err("no relay (direct) takes no NG address or relay pid".into());
            }
            return Ok(Target::direct());
        }
        if let Some(pid) = o.relay_pid {
            if process_cpu(pid).is_none() {
                return Err(format!(
                    "--relay-pid {pid}: no such process, or its CPU time cannot be read"
                ));
            }
        }
        if let Some(ng) = o.ng {
            let mut c = NgClient::new(ng).map_err(|e| e.to_string())?;
            c.ping().map_err(|e| format!("relay at {ng}: {e}"))?;
            return Ok(Target {
                ng,
                pid: o.relay_pid,
                name: format!("NG relay at {ng}"),
                embedded: None,
                direct: false,
            });
        }
        let exe = match &o.exe {
            Some(p) => p.clone(),
            None => std::env::current_exe().map_err(|e| format!("own executable: {e}"))?,
        };
        let e = EmbeddedRelay::start(&exe, &o.embedded)?;
        Ok(Target {
            ng: e.ng(),
            pid: Some(e.pid()),
            name: format!("embedded mediarelay {}", env!("CARGO_PKG_VERSION")),
            embedded: Some(e),
            direct: false,
        })
    }

    /// No relay: streams go straight between each call's sockets.
    pub fn direct() -> Target {
        Target {
            ng: SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)),
            pid: None,
            name: "no relay (direct)".into(),
            embedded: None,
            direct: true,
        }
    }

    /// Whether this is the no-relay baseline.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Starts rtpengine (`exe`) with the embedded relay's port range and
    /// thread count from `o`.
    pub fn rtpengine(exe: &std::path::Path, o: &Options) -> Result<Target, String> {
        let e = EmbeddedRelay::rtpengine(exe, &o.embedded)?;
        let version = std::process::Command::new(exe)
            .arg("--version")
            .output()
            .ok()
            .and_then(|out| {
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .chain(String::from_utf8_lossy(&out.stderr).lines())
                    .find_map(|l| l.strip_prefix("Version: ").map(str::to_string))
            })
            .unwrap_or_default();
        Ok(Target {
            ng: e.ng(),
            pid: Some(e.pid()),
            name: format!("rtpengine {version}").trim().to_string(),
            embedded: Some(e),
            direct: false,
        })
    }

    /// An unlabelled sample of the embedded mediarelay's `/metrics`;
    /// `None` for any other relay.
    fn metric(&self, name: &str) -> Option<u64> {
        self.embedded.as_ref()?.metric(name)
    }

    fn check_alive(&mut self) -> Result<(), String> {
        match self.embedded.as_mut().and_then(EmbeddedRelay::exited) {
            Some(s) => Err(format!("{} died: {s}", self.name)),
            None => Ok(()),
        }
    }
}

/// NG command latency histograms, µs.
#[derive(Debug)]
pub struct Commands {
    /// `offer`.
    pub offer: Histogram<u64>,
    /// `answer`.
    pub answer: Histogram<u64>,
    /// `delete`.
    pub delete: Histogram<u64>,
}

impl Commands {
    fn new() -> Commands {
        Commands {
            offer: crate::latency::new_histogram(),
            answer: crate::latency::new_histogram(),
            delete: crate::latency::new_histogram(),
        }
    }
}

fn record_us(h: &mut Histogram<u64>, since: Instant) {
    let us = since
        .elapsed()
        .as_micros()
        .clamp(1, u128::from(MAX_LATENCY_US)) as u64;
    let _ = h.record(us);
}

/// What one trial measured.
#[derive(Debug)]
pub struct Trial {
    /// Calls asked for.
    pub calls: u32,
    /// Calls set up (offer and answer both answered).
    pub calls_up: u32,
    /// Set-up failures, with the first reason.
    pub setup_failures: u32,
    /// The first set-up failure.
    pub first_failure: Option<String>,
    /// NG command latencies.
    pub commands: Commands,
    /// The loss taxonomy summed over every stream (longest gap and
    /// highest jitter of any).
    pub totals: StreamReport,
    /// Latency of first copies.
    pub latency: Latency,
    /// RFC 3550 jitter over streams, µs.
    pub jitter_us: Histogram<u64>,
    /// E-model MOS estimate per stream.
    pub mos: Vec<f64>,
    /// Send audit.
    pub audit: SenderAudit,
    /// Run validity.
    pub validity: Validity,
    /// Per-second figures.
    pub seconds: Vec<SecondBucket>,
    /// Probes of another stream received on a socket (cross-talk).
    pub misdelivered: u64,
    /// Datagrams that were not probes of this run.
    pub foreign: u64,
    /// Datagrams received truncated.
    pub truncated: u64,
    /// The measured window (first scheduled send to end of drain).
    pub window: Duration,
    /// The CPU window (after the warm-up, to the end of the drain) and the
    /// packets sent and received in it; `None`: the whole window and run.
    pub cpu_window: Option<(Duration, u64, u64)>,
    /// Relay CPU time over the window.
    pub relay_cpu: Option<Duration>,
    /// The generator's own CPU time over the window (this process).
    pub own_cpu: Option<Duration>,
    /// Softirq share of all CPU time over the window.
    pub softirq_share: Option<f64>,
    /// CPU time of every thread on the host over the window (relay,
    /// generator, kernel threads, and anything else the host did; softirq
    /// work where it ran in a thread's context): `others_cpu` plus
    /// `own_cpu`.
    pub system_cpu: Option<Duration>,
    /// Run time of the threads of every other process (relay, kernel
    /// threads...), from the scheduler's clock ([`ThreadTimes`]).
    pub others_cpu: Option<Duration>,
    /// The relay runs in this process (embedded): the generator's own CPU
    /// time includes it.
    pub relay_in_process: bool,
    /// Kernel UDP error deltas over the window.
    pub udp: Option<UdpCounters>,
    /// Our calls the relay still lists after the deletes.
    pub leftover_calls: Vec<String>,
    /// The relay's own session count after the deletes, if it reports one.
    pub sessions_after: Option<i64>,
    /// The relay is ours (embedded): it must hold no session at all
    /// afterwards, not only none of this run's calls.
    pub owned_relay: bool,
    /// Generator I/O backend.
    pub backend: IoBackend,
    /// Arrivals timed by the kernel (`SO_TIMESTAMPNS`), not the loop.
    pub kernel_timestamps: bool,
    /// Generator syscalls.
    pub syscalls: u64,
    /// No relay ([`Options::direct`]): no NG figures, nothing relayed.
    pub direct: bool,
    /// What the embedded mediarelay's kernel fast path carried (from its
    /// `/metrics`); `None` for any other relay.
    pub fast_path: Option<FastPathShare>,
}

/// What the embedded mediarelay's kernel fast path carried in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastPathShare {
    /// Streams the kernel forwarded when the streaming ended.
    pub streams_at_end: u64,
    /// Datagrams the kernel forwarded from the set-up to after the
    /// deletes (a removed stream's kernel counters are merged as it goes).
    pub packets: u64,
}

/// The embedded mediarelay's metric of streams forwarded in the kernel.
const FAST_PATH_STREAMS: &str = "mediarelay_fast_path_streams";
/// Its metric of datagrams forwarded in the kernel.
const FAST_PATH_PACKETS: &str = "mediarelay_fast_path_packets_total";

impl Trial {
    /// Packets received in the CPU window.
    fn cpu_received(&self) -> u64 {
        self.cpu_window.map_or(self.totals.received, |w| w.2)
    }

    /// Relay CPU per relayed packet, ns.
    pub fn relay_ns_per_pkt(&self) -> Option<f64> {
        let cpu = self.relay_cpu?;
        let n = self.cpu_received();
        (n > 0).then(|| cpu.as_nanos() as f64 / n as f64)
    }

    /// Of the packets relayed to the generator, the share the embedded
    /// mediarelay's kernel fast path forwarded, percent.
    pub fn fast_path_share_pct(&self) -> Option<f64> {
        let k = self.fast_path?;
        (self.totals.received > 0)
            .then(|| (k.packets as f64 * 100.0 / self.totals.received as f64).min(100.0))
    }

    /// Relay CPU as a share of one core over the CPU window, percent.
    pub fn relay_cpu_pct(&self) -> Option<f64> {
        let cpu = self.relay_cpu?;
        let window = self.cpu_window.map_or(self.window, |w| w.0);
        (!window.is_zero()).then(|| cpu.as_secs_f64() * 100.0 / window.as_secs_f64())
    }

    /// Run time of every thread on the host per relayed packet, ns.
    pub fn system_ns_per_pkt(&self) -> Option<f64> {
        let cpu = self.system_cpu?;
        let n = self.cpu_received();
        (n > 0).then(|| cpu.as_nanos() as f64 / n as f64)
    }

    /// Run time of every thread on the host but the generator's, per
    /// relayed packet, ns: the relay's cost wherever the kernel charged it
    /// (its threads, kernel threads such as `ksoftirqd`). Only for a relay
    /// in another process (with no relay, it would be only what else the
    /// host did: `None`).
    pub fn system_less_generator_ns_per_pkt(&self) -> Option<f64> {
        if self.relay_in_process || self.direct {
            return None;
        }
        let cpu = self.others_cpu?;
        let n = self.cpu_received();
        (n > 0).then(|| cpu.as_nanos() as f64 / n as f64)
    }

    /// The generator's CPU per packet it sent or received, ns.
    pub fn generator_ns_per_pkt(&self) -> Option<f64> {
        let cpu = self.own_cpu?;
        let n = self
            .cpu_window
            .map_or(self.totals.sent + self.totals.received, |w| w.1 + w.2);
        (n > 0).then(|| cpu.as_nanos() as f64 / n as f64)
    }

    /// Whether it met every bound: set-up, loss, latency, leftovers,
    /// cross-talk and a valid generator. The reasons when not.
    pub fn failures(&self, o: &Options) -> Vec<String> {
        let mut f = Vec::new();
        if self.setup_failures > 0 {
            f.push(format!(
                "{} of {} calls failed to set up ({})",
                self.setup_failures,
                self.calls,
                self.first_failure.as_deref().unwrap_or("?")
            ));
        }
        if self.totals.loss_pct() > o.max_loss_pct {
            f.push(format!(
                "loss {:.4}% above --max-loss {}%",
                self.totals.loss_pct(),
                o.max_loss_pct
            ));
        }
        if let Some(max) = o.max_p99 {
            let p99 = self.latency.from_scheduled().p99;
            if p99 > max.as_micros() as u64 {
                f.push(format!(
                    "p99 latency {p99} us above --max-p99 {} us",
                    max.as_micros()
                ));
            }
        }
        if self.misdelivered > 0 {
            f.push(format!(
                "{} packets reached another call's socket",
                self.misdelivered
            ));
        }
        if !self.leftover_calls.is_empty() {
            f.push(format!(
                "the relay still lists {} of our calls after delete (e.g. {})",
                self.leftover_calls.len(),
                self.leftover_calls[0]
            ));
        }
        if self.owned_relay {
            if let Some(n) = self.sessions_after.filter(|&n| n != 0) {
                f.push(format!(
                    "the embedded relay reports {n} sessions after every call was deleted"
                ));
            }
        }
        if let Validity::Invalid(why) = &self.validity {
            f.push(format!("generator invalid: {why}"));
        }
        f
    }

    /// The `--find-max` point of this trial.
    pub fn ramp_point(&self, o: &Options) -> RampPoint {
        RampPoint {
            calls: u64::from(self.calls),
            loss_pct: self.totals.loss_pct(),
            p99_us: self.latency.from_scheduled().p99,
            relay_cpu_pct: self.relay_cpu_pct().map(|v| (v * 10.0).round() / 10.0),
            pass: self.failures(o).is_empty(),
        }
    }

    /// Per-second rows (JSONL, SVG).
    pub fn second_rows(&self) -> Vec<SecondRow> {
        self.seconds
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let p = Percentiles::of(&s.latency);
                SecondRow {
                    t: i as u64,
                    sent: s.sent,
                    received: s.received,
                    lost: s.sent.saturating_sub(s.received),
                    p50_us: p.p50,
                    p99_us: p.p99,
                    max_us: p.max,
                }
            })
            .collect()
    }

    /// Every figure under `prefix` (`relay`), and the generator's under
    /// `generator`.
    pub fn put_figures(&self, f: &mut Figures, prefix: &str, o: &Options) {
        let t = &self.totals;
        let p = |k: &str| format!("{prefix}.{k}");
        f.put(&p("calls"), self.calls);
        f.put(&p("calls_up"), self.calls_up);
        f.put(&p("setup_failures"), self.setup_failures);
        f.put(&p("pps"), o.pps);
        f.real(&p("duration_s"), o.duration.as_secs_f64(), 3);
        f.put(&p("sent"), t.sent);
        f.put(&p("received"), t.received);
        f.put(&p("lost"), t.lost);
        f.put(&p("late"), t.late);
        f.put(&p("duplicates"), t.duplicates);
        f.put(&p("reordered"), t.reordered);
        f.put(&p("max_gap"), t.max_gap);
        f.put(&p("bursts"), t.bursts);
        f.real(&p("loss_pct"), t.loss_pct(), 6);
        f.put(&p("misdelivered"), self.misdelivered);
        f.put(&p("foreign"), self.foreign);
        put_percentiles(f, &p("latency_us"), &self.latency.from_scheduled());
        put_percentiles(f, &p("latency_from_sent_us"), &self.latency.from_sent());
        let j = |q: f64| self.jitter_us.value_at_quantile(q) as f64 / 1000.0;
        f.real(&p("jitter_ms.p50"), j(0.5), 3);
        f.real(&p("jitter_ms.p99"), j(0.99), 3);
        f.real(&p("jitter_ms.max"), self.jitter_us.max() as f64 / 1000.0, 3);
        let mut mos = self.mos.clone();
        mos.sort_by(f64::total_cmp);
        let mos_min = mos.first().copied();
        let mos_p50 = mos.get(mos.len() / 2).copied();
        f.put(&p("mos.min"), mos_min.map(|m| (m * 100.0).round() / 100.0));
        f.put(&p("mos.p50"), mos_p50.map(|m| (m * 100.0).round() / 100.0));
        f.put(
            &p("mos.note"),
            "estimate: ITU-T G.107 E-model, G.711 with concealment, per-stream loss, median one-way delay plus twice the stream's jitter",
        );
        if self.direct {
            // No NG command was sent.
            f.put(&p("ng"), None::<u64>);
        } else {
            put_percentiles(f, &p("ng.offer_us"), &Percentiles::of(&self.commands.offer));
            put_percentiles(
                f,
                &p("ng.answer_us"),
                &Percentiles::of(&self.commands.answer),
            );
            put_percentiles(
                f,
                &p("ng.delete_us"),
                &Percentiles::of(&self.commands.delete),
            );
        }
        f.put(
            &p("cpu_window_s"),
            self.cpu_window
                .map(|w| (w.0.as_secs_f64() * 10.0).round() / 10.0),
        );
        f.put(
            &p("relay_cpu_ns_per_pkt"),
            self.relay_ns_per_pkt().map(|v| v.round()),
        );
        f.put(
            &p("relay_cpu_pct"),
            self.relay_cpu_pct().map(|v| (v * 10.0).round() / 10.0),
        );
        f.put(
            &p("softirq_share_pct"),
            self.softirq_share.map(|v| (v * 1000.0).round() / 10.0),
        );
        f.put(
            &p("system_cpu_ns_per_pkt"),
            self.system_ns_per_pkt().map(|v| v.round()),
        );
        f.put(
            &p("system_less_generator_ns_per_pkt"),
            self.system_less_generator_ns_per_pkt().map(|v| v.round()),
        );
        f.put(
            &p("leftover_calls"),
            (!self.direct).then_some(self.leftover_calls.len() as u64),
        );
        f.put(&p("sessions_after"), self.sessions_after);
        f.put(
            &p("fast_path.streams_at_end"),
            self.fast_path.map(|k| k.streams_at_end),
        );
        f.put(&p("fast_path.packets"), self.fast_path.map(|k| k.packets));
        f.put(&p("fast_path.share_pct"), self.fast_path_share_pct());
        let a = self.audit.report();
        f.put("generator.valid", matches!(self.validity, Validity::Valid));
        if let Validity::Invalid(why) = &self.validity {
            f.put("generator.invalid_reason", why.as_str());
        }
        put_percentiles(f, "generator.send_lag_us", &a.send_lag_us);
        f.put("generator.missed_ticks", a.missed_ticks);
        f.put("generator.enobufs", a.enobufs);
        f.put("generator.eagain", a.eagain);
        f.put("generator.other_send_errors", a.other_errors);
        f.put(
            "generator.udp_rcvbuf_errors",
            self.udp.map(|u| u.rcvbuf_errors),
        );
        f.put(
            "generator.udp_sndbuf_errors",
            self.udp.map(|u| u.sndbuf_errors),
        );
        f.put(
            "generator.cpu_ns_per_pkt",
            self.generator_ns_per_pkt().map(|v| v.round()),
        );
        f.put("generator.backend", self.backend.as_str());
        f.put(
            "generator.arrival_clock",
            if self.kernel_timestamps {
                "kernel receive timestamp (SO_TIMESTAMPNS)"
            } else {
                "loop wake-up"
            },
        );
        f.put("generator.threads", o.threads as u64);
        let pkts = (t.sent + t.received).max(1);
        f.real(
            "generator.syscalls_per_pkt",
            self.syscalls as f64 / pkts as f64,
            4,
        );
    }
}

fn put_percentiles(f: &mut Figures, path: &str, p: &Percentiles) {
    f.put(&format!("{path}.p50"), p.p50);
    f.put(&format!("{path}.p90"), p.p90);
    f.put(&format!("{path}.p99"), p.p99);
    f.put(&format!("{path}.p999"), p.p999);
    f.put(&format!("{path}.p9999"), p.p9999);
    f.put(&format!("{path}.max"), p.max);
}

/// Two sockets (legs A and B) per call on even ports of `range`.
fn bind_pairs(
    ip: IpAddr,
    range: (u16, u16),
    calls: u32,
) -> Result<Vec<(UdpSocket, UdpSocket)>, String> {
    let mut socks = Vec::with_capacity(calls as usize * 2);
    let mut port = u32::from(range.0 + (range.0 & 1));
    while socks.len() < calls as usize * 2 && port <= u32::from(range.1) {
        if let Ok(s) = UdpSocket::bind(SocketAddr::new(ip, port as u16)) {
            socks.push(s);
        }
        port += 2;
    }
    if socks.len() < calls as usize * 2 {
        return Err(format!(
            "only {} of the {} generator sockets could be bound on {ip} ports {}-{} (--local-ports)",
            socks.len(),
            calls * 2,
            range.0,
            range.1
        ));
    }
    let mut pairs = Vec::with_capacity(calls as usize);
    let mut it = socks.into_iter();
    while let (Some(a), Some(b)) = (it.next(), it.next()) {
        pairs.push((a, b));
    }
    Ok(pairs)
}

/// A run id: clock and pid mixed.
fn run_id() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    t ^ (u64::from(std::process::id()) << 40) ^ clock::now_ns()
}

/// Runs one trial of `calls` calls against `target`.
pub fn trial(o: &Options, target: &mut Target, calls: u32) -> Result<Trial, String> {
    if o.packet_len < generator::MIN_PACKET || o.packet_len > 1400 {
        return Err(format!(
            "packet size {} is outside {}..=1400",
            o.packet_len,
            generator::MIN_PACKET
        ));
    }
    let run = run_id();
    let pairs = bind_pairs(o.local_ip, o.local_ports, calls)?;
    let mut ng = if target.direct {
        None
    } else {
        Some(NgClient::new(target.ng).map_err(|e| e.to_string())?)
    };
    let mut commands = Commands::new();
    let mut up: Vec<(u32, UdpSocket, UdpSocket, SocketAddr, SocketAddr)> = Vec::new();
    let (mut failures, mut first_failure) = (0u32, None);
    let bar = progress_bar(o.progress, u64::from(calls), "setting up calls");
    for (i, (a, b)) in pairs.into_iter().enumerate() {
        let i = i as u32;
        let (cid, ft, tt) = call_names(run, i);
        let (Ok(a_addr), Ok(b_addr)) = (a.local_addr(), b.local_addr()) else {
            failures += 1;
            continue;
        };
        let t0 = Instant::now();
        // Without a relay each side sends to the other's socket.
        let step = match ng.as_mut() {
            None => Ok((b_addr, a_addr)),
            Some(ng) => ng
                .offer_answer("offer", &cid, &ft, None, a_addr)
                .and_then(|to_b| {
                    record_us(&mut commands.offer, t0);
                    let t1 = Instant::now();
                    let to_a = ng.offer_answer("answer", &cid, &ft, Some(&tt), b_addr)?;
                    record_us(&mut commands.answer, t1);
                    Ok((to_a, to_b))
                }),
        };
        match step {
            Ok((to_a, to_b)) => up.push((i, a, b, to_a, to_b)),
            Err(e) => {
                failures += 1;
                first_failure.get_or_insert_with(|| e.to_string());
            }
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    target.check_alive()?;

    // Calls to threads, round robin; a call's two flows stay together.
    let threads = o.threads.max(1);
    let total_flows = (up.len() * 2) as u32;
    let mut per_thread: Vec<Vec<Flow>> = (0..threads).map(|_| Vec::new()).collect();
    let mut call_ids = Vec::with_capacity(up.len());
    for (k, (i, a, b, to_a, to_b)) in up.into_iter().enumerate() {
        call_ids.push(i);
        let t = &mut per_thread[k % threads];
        t.push(Flow {
            sock: a,
            dest: to_a,
            stream: 2 * k as u32,
        });
        t.push(Flow {
            sock: b,
            dest: to_b,
            stream: 2 * k as u32 + 1,
        });
    }
    let packets_per_stream = (o.duration.as_secs_f64() * f64::from(o.pps)).round() as u64;
    let kernel_packets0 = target.metric(FAST_PATH_PACKETS);
    let start_ns = clock::now_ns() + 100_000_000;
    let sent_progress: Vec<Arc<(AtomicU64, AtomicU64)>> = (0..threads)
        .map(|_| Arc::new((AtomicU64::new(0), AtomicU64::new(0))))
        .collect();
    let mut relay_cpu0 = target.pid.and_then(process_cpu);
    let mut own_cpu0 = process_cpu(std::process::id());
    let mut sys0 = SystemTicks::read();
    let mut threads0 = ThreadTimes::read();
    // With a warm-up, the CPU baselines are taken again once it is over.
    let mut warm: Option<(u64, u64, u64)> = None;
    let warm_at_ns = (!o.warmup.is_zero()).then(|| start_ns + o.warmup.as_nanos() as u64);
    let udp0 = UdpCounters::read();
    let mut handles = Vec::new();
    for (t, flows) in per_thread.into_iter().enumerate() {
        let plan = Plan {
            run,
            flows,
            total_flows,
            pps: o.pps,
            packet_len: o.packet_len,
            start_ns,
            packets_per_stream,
            drain: o.drain,
            late_after: Duration::from_millis(150),
            backend: o.backend,
            slot: o.slot,
            connect: o.connect,
        };
        let counters = Arc::clone(&sent_progress[t]);
        let h = std::thread::Builder::new()
            .name(format!("lg-gen-{t}"))
            .spawn(move || {
                generator::run(plan, |s, r| {
                    counters.0.store(s, Ordering::Relaxed);
                    counters.1.store(r, Ordering::Relaxed);
                })
            })
            .map_err(|e| format!("generator thread: {e}"))?;
        handles.push(h);
    }
    let total_packets = packets_per_stream * u64::from(total_flows);
    let bar = progress_bar(o.progress, total_packets, "streaming");
    let t_start = Instant::now();
    while handles.iter().any(|h| !h.is_finished()) {
        std::thread::sleep(Duration::from_millis(200));
        let (s, r) = sent_progress.iter().fold((0, 0), |(s, r), c| {
            (
                s + c.0.load(Ordering::Relaxed),
                r + c.1.load(Ordering::Relaxed),
            )
        });
        bar.set_position(s);
        if warm.is_none() && warm_at_ns.is_some_and(|at| clock::now_ns() >= at) {
            relay_cpu0 = target.pid.and_then(process_cpu);
            own_cpu0 = process_cpu(std::process::id());
            sys0 = SystemTicks::read();
            threads0 = ThreadTimes::read();
            warm = Some((clock::now_ns(), s, r));
        }
        let secs = t_start.elapsed().as_secs_f64().max(0.001);
        bar.set_message(format!(
            "{:.0} pps sent, {:.0} pps received, {} missing",
            s as f64 / secs,
            r as f64 / secs,
            s.saturating_sub(r)
        ));
    }
    bar.finish_and_clear();
    let end_ns = clock::now_ns();
    let window = Duration::from_nanos(end_ns.saturating_sub(start_ns));
    let relay_cpu = match (relay_cpu0, target.pid.and_then(process_cpu)) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let own_cpu = match (own_cpu0, process_cpu(std::process::id())) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };
    let sys1 = SystemTicks::read();
    let softirq_share = match (sys0, sys1) {
        (Some(a), Some(b)) => Some(b.softirq_share_since(&a)),
        _ => None,
    };
    // Other processes' threads from the scheduler's clock; this
    // process's from its own account, which keeps the time of the
    // generator threads that have ended by now.
    let me = std::process::id();
    let others_cpu = match (&threads0, ThreadTimes::read()) {
        (Some(a), Some(b)) => Some(b.since(a, |pid| pid != me)),
        _ => None,
    };
    let system_cpu = others_cpu.zip(own_cpu).map(|(o, g)| o + g);
    let udp = match (udp0, UdpCounters::read()) {
        (Some(a), Some(b)) => Some(b.since(&a)),
        _ => None,
    };
    let mut outcomes = Vec::new();
    for h in handles {
        match h.join() {
            Ok(Ok(out)) => outcomes.push(out),
            Ok(Err(e)) => return Err(format!("generator: {e}")),
            Err(_) => return Err("a generator thread panicked".into()),
        }
    }
    target.check_alive()?;
    let kernel_streams = target.metric(FAST_PATH_STREAMS);

    // Teardown and the relay's own account.
    let (leftover_calls, sessions_after) = match ng.as_mut() {
        None => (Vec::new(), None),
        Some(ng) => {
            for &i in &call_ids {
                let (cid, ft, _) = call_names(run, i);
                let t0 = Instant::now();
                match ng.delete(&cid, &ft) {
                    Ok(()) => record_us(&mut commands.delete, t0),
                    Err(e) => {
                        first_failure.get_or_insert_with(|| format!("delete: {e}"));
                    }
                }
            }
            let prefix = format!("lg{run:x}-");
            let leftover: Vec<String> = ng
                .list(100_000)
                .map_err(|e| format!("NG list after the deletes: {e}"))?
                .into_iter()
                .filter(|c| c.starts_with(&prefix))
                .collect();
            let sessions = ng
                .current_sessions()
                .map_err(|e| format!("NG statistics after the deletes: {e}"))?;
            (leftover, sessions)
        }
    };

    let fast_path = match (
        kernel_packets0,
        target.metric(FAST_PATH_PACKETS),
        kernel_streams,
    ) {
        (Some(a), Some(b), Some(streams_at_end)) => Some(FastPathShare {
            streams_at_end,
            packets: b.saturating_sub(a),
        }),
        _ => None,
    };

    // Merge the threads' figures.
    let mut totals = StreamReport::default();
    let mut latency = Latency::new();
    let mut jitter_us = crate::latency::new_histogram();
    let mut audit = SenderAudit::new();
    let mut seconds: Vec<SecondBucket> = Vec::new();
    let (mut misdelivered, mut foreign, mut truncated, mut syscalls) = (0, 0, 0, 0);
    let mut backend = o.backend;
    let mut kernel_timestamps = !outcomes.is_empty();
    let mut reports = Vec::new();
    for out in &outcomes {
        for s in &out.streams {
            totals.add(s);
            let _ = jitter_us.record((s.jitter.as_micros() as u64).clamp(1, MAX_LATENCY_US));
            reports.push(*s);
        }
        latency.merge(&out.latency);
        audit.merge(&out.audit);
        for (i, b) in out.seconds.iter().enumerate() {
            match seconds.get_mut(i) {
                Some(m) => m.merge(b),
                None => seconds.push(b.clone()),
            }
        }
        misdelivered += out.misdelivered;
        foreign += out.foreign;
        truncated += out.truncated;
        syscalls += out.syscalls;
        backend = out.backend;
        kernel_timestamps &= out.kernel_timestamps;
    }
    let median_delay = Duration::from_micros(latency.from_sent().p50);
    let mos = reports
        .iter()
        .map(|s| {
            mos_from_r(r_factor(&EModelInput {
                codec: CodecImpairment::G711_PLC,
                packet_loss_percent: s.loss_pct(),
                burst_ratio: 1.0,
                one_way_delay: median_delay + 2 * s.jitter,
            }))
        })
        .collect();
    let validity = audit.validity(o.max_send_lag);
    let cpu_window = warm.map(|(at, sent, received)| {
        (
            Duration::from_nanos(end_ns.saturating_sub(at)),
            totals.sent.saturating_sub(sent),
            totals.received.saturating_sub(received),
        )
    });
    Ok(Trial {
        calls,
        calls_up: call_ids.len() as u32,
        setup_failures: failures,
        first_failure,
        commands,
        totals,
        latency,
        jitter_us,
        mos,
        audit,
        validity,
        seconds,
        misdelivered,
        foreign,
        truncated,
        window,
        cpu_window,
        relay_cpu,
        own_cpu,
        softirq_share,
        system_cpu,
        others_cpu,
        relay_in_process: target.pid == Some(std::process::id()),
        udp,
        leftover_calls,
        sessions_after,
        owned_relay: target.embedded.is_some(),
        backend,
        kernel_timestamps,
        syscalls,
        direct: target.direct,
        fast_path,
    })
}

/// Call-id, from-tag and to-tag of call `i` of run `run`.
fn call_names(run: u64, i: u32) -> (String, String, String) {
    (format!("lg{run:x}-{i}"), format!("a{i}"), format!("b{i}"))
}

fn progress_bar(enabled: bool, len: u64, what: &str) -> indicatif::ProgressBar {
    if !enabled {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{prefix:>17} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}",
    ) {
        bar.set_style(style);
    }
    bar.set_prefix(what.to_string());
    bar
}

/// The result of a `--find-max` search.
#[derive(Debug)]
pub struct Search {
    /// Every trial, in the order run: (calls, failures).
    pub trials: Vec<(Trial, Vec<String>)>,
    /// Highest calls with zero loss (and every other bound met).
    pub ndr_calls: Option<u32>,
    /// Highest calls meeting every bound (loss within `--max-loss`).
    pub pdr_calls: Option<u32>,
    /// Highest trial whose p99 latency was within `--max-p99` (with a
    /// valid generator); `None` without `--max-p99`.
    pub latency_calls: Option<u32>,
}

/// TRex-style search: a binary search over offered calls in `lo..=hi`,
/// each step a full trial of `o.duration`; the highest passing load is
/// the PDR (loss within `--max-loss`, p99 within `--max-p99`, a valid
/// generator), the highest passing trial with no loss at all the NDR.
pub fn find_max(
    o: &Options,
    target: &mut Target,
    lo: u32,
    hi: u32,
    precision: u32,
    mut each: impl FnMut(&Trial, &[String]),
) -> Result<Search, String> {
    if lo > hi {
        return Err(format!(
            "the search's lowest load {lo} is above its highest {hi}"
        ));
    }
    let (mut lo, mut hi) = (lo.max(1), hi.max(1));
    let mut trials: Vec<(Trial, Vec<String>)> = Vec::new();
    let mut best: Option<u32> = None;
    // First the top: a relay that carries it needs no search.
    let mut next = hi;
    loop {
        let t = trial(o, target, next)?;
        let fails = t.failures(o);
        each(&t, &fails);
        let pass = fails.is_empty();
        trials.push((t, fails));
        if pass {
            best = Some(best.map_or(next, |b| b.max(next)));
            lo = next;
        } else {
            hi = next.saturating_sub(1);
        }
        if hi < lo || hi - lo < precision.max(1) {
            break;
        }
        next = (lo + hi).div_ceil(2);
        if trials.iter().any(|(t, _)| t.calls == next) {
            break;
        }
    }
    let ndr_calls = trials
        .iter()
        .filter(|(t, f)| f.is_empty() && t.totals.lost == 0)
        .map(|(t, _)| t.calls)
        .max();
    let latency_calls = o.max_p99.and_then(|max| {
        trials
            .iter()
            .filter(|(t, _)| {
                matches!(t.validity, Validity::Valid)
                    && t.latency.from_scheduled().p99 <= max.as_micros() as u64
            })
            .map(|(t, _)| t.calls)
            .max()
    });
    Ok(Search {
        trials,
        ndr_calls,
        pdr_calls: best,
        latency_calls,
    })
}
