//! The metric families mediarelay exposes, and the snapshot they are
//! rendered from.
//!
//! [`Snapshot::of`] reads the engine's lock-free counters (relaxed loads,
//! no locks, no messages to the shards); [`Snapshot::render`] is pure and
//! writes the families in a fixed order, so a body is a deterministic
//! function of the snapshot. The NG control plane's counters enter through
//! the [`NgCounters`] trait, which the NG server implements. docs/metrics.md
//! lists every family.

use std::sync::atomic::Ordering;

use super::exposition::{MetricType, TextWriter};
use super::histogram::HistogramSnapshot;
use crate::engine::{Engine, EngineStats, ShardStats};
use crate::ports::{Counts, ShardId};
use crate::relay::DropReason;

/// NG control-protocol counters, implemented by the NG server.
pub trait NgCounters {
    /// Commands handled, as `(command, result, count)` with `command` the
    /// NG command name (`"offer"`, `"answer"`, `"delete"`, `"ping"`...) and
    /// `result` `"ok"` or `"error"`. One entry per pair; order is kept.
    fn commands(&self) -> Vec<(&'static str, &'static str, u64)>;

    /// Datagrams that were not a valid NG message (bad cookie, bencode,
    /// missing command).
    fn malformed(&self) -> u64;

    /// Time spent handling each NG datagram that executed a command, per
    /// command name (`mediarelay_ng_command_duration_seconds`); order is
    /// kept. None by default (the family is then not written).
    fn command_durations(&self) -> Vec<(&'static str, HistogramSnapshot)> {
        Vec::new()
    }
}

/// Counters of one shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ShardSnapshot {
    /// Live calls on the shard.
    pub calls: u64,
    /// Live streams (sockets) on the shard.
    pub streams: u64,
    /// Datagrams received.
    pub rx_packets: u64,
    /// Datagrams forwarded.
    pub tx_packets: u64,
    /// Thread CPU time, nanoseconds.
    pub cpu_ns: u64,
    /// Event-loop turns.
    pub turns: u64,
    /// Data-path syscalls.
    pub syscalls: u64,
    /// Receives that found the io_uring buffer ring empty.
    pub no_buffers: u64,
    /// The shard's port slice.
    pub ports: Counts,
}

/// Everything one scrape renders, read from an engine at one time (each
/// counter read separately: not an atomic snapshot across counters).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    /// The I/O backend in use (`"uring"` or `"epoll"`).
    pub backend: &'static str,
    /// Counters summed over shards.
    pub totals: EngineStats,
    /// Port pool, all slices.
    pub ports: Counts,
    /// Per-shard counters, indexed by shard number.
    pub shards: Vec<ShardSnapshot>,
}

impl ShardSnapshot {
    /// Reads a shard's published counters and its port slice.
    pub fn of(stats: &ShardStats, ports: Counts) -> Self {
        let r = Ordering::Relaxed;
        ShardSnapshot {
            calls: stats.calls.load(r),
            streams: stats.streams.load(r),
            rx_packets: stats.rx_packets.load(r),
            tx_packets: stats.tx_packets.load(r),
            cpu_ns: stats.cpu_ns.load(r),
            turns: stats.turns.load(r),
            syscalls: stats.syscalls.load(r),
            no_buffers: stats.no_buffers.load(r),
            ports,
        }
    }
}

impl Snapshot {
    /// Reads `engine`'s counters (lock-free).
    pub fn of(engine: &Engine) -> Self {
        let shards = (0..engine.shard_count())
            .filter_map(|i| {
                let stats = engine.shard_stats(i)?;
                let id = ShardId(u16::try_from(i).ok()?);
                let ports = engine.ports().counts(id).unwrap_or_default();
                Some(ShardSnapshot::of(stats, ports))
            })
            .collect();
        Snapshot {
            backend: engine.backend().as_str(),
            totals: engine.stats(),
            ports: engine.ports().totals(),
            shards,
        }
    }

    /// Appends the exposition body to `out`: engine families, then the NG
    /// families when `ng` is given.
    pub fn render(&self, ng: Option<&dyn NgCounters>, out: &mut String) {
        use MetricType::{Counter, Gauge};
        let t = &self.totals;
        let mut w = TextWriter::new(out);

        w.family(
            "mediarelay_info",
            Gauge,
            "Build and runtime information; always 1.",
        )
        .sample(
            &[
                ("version", env!("CARGO_PKG_VERSION")),
                ("backend", self.backend),
            ],
            1u64,
        );
        w.family("mediarelay_shards", Gauge, "Relay shard threads.")
            .sample(&[], self.shards.len() as u64);
        w.family("mediarelay_calls", Gauge, "Live calls.")
            .sample(&[], t.calls);
        w.family(
            "mediarelay_streams",
            Gauge,
            "Live relay streams (one per local socket).",
        )
        .sample(&[], t.streams);

        w.family(
            "mediarelay_fast_path_streams",
            Gauge,
            "Streams whose RTP the kernel fast path forwards now.",
        )
        .sample(&[], t.offloaded_streams);

        let counters: [(&'static str, &str, u64); 15] = [
            (
                "mediarelay_rx_packets_total",
                "Datagrams received on relay sockets.",
                t.rx_packets,
            ),
            (
                "mediarelay_rx_bytes_total",
                "UDP payload bytes received on relay sockets.",
                t.rx_bytes,
            ),
            (
                "mediarelay_tx_packets_total",
                "Datagrams forwarded (send completed).",
                t.tx_packets,
            ),
            (
                "mediarelay_tx_bytes_total",
                "UDP payload bytes forwarded.",
                t.tx_bytes,
            ),
            (
                "mediarelay_send_errors_total",
                "Failed sends on relay sockets.",
                t.send_errors,
            ),
            (
                "mediarelay_recv_errors_total",
                "Failed receives on relay sockets.",
                t.recv_errors,
            ),
            (
                "mediarelay_recv_backoffs_total",
                "Times a relay socket whose receive kept failing was paused (backoff).",
                t.recv_backoffs,
            ),
            (
                "mediarelay_unknown_stream_packets_total",
                "Datagrams that arrived for a stream already removed.",
                t.unknown_stream,
            ),
            (
                "mediarelay_media_timeouts_total",
                "Calls removed by the media timeout.",
                t.timeouts,
            ),
            (
                "mediarelay_buffer_ring_exhausted_total",
                "Receives that found the io_uring buffer ring empty.",
                t.no_buffers,
            ),
            (
                "mediarelay_fast_path_packets_total",
                "Datagrams the kernel fast path forwarded (also counted in rx and tx).",
                t.kernel_packets,
            ),
            (
                "mediarelay_fast_path_bytes_total",
                "UDP payload bytes the kernel fast path forwarded.",
                t.kernel_bytes,
            ),
            (
                "mediarelay_fast_path_errors_total",
                "Fast path entries that could not be installed or removed (the stream stays in userspace).",
                t.offload_errors,
            ),
            (
                "mediarelay_ice_packets_total",
                "STUN datagrams of the relay's ICE agents, received and sent (connectivity checks and responses; not relayed).",
                t.ice_packets,
            ),
            (
                "mediarelay_dtls_packets_total",
                "DTLS datagrams of the relay's DTLS-SRTP handshakes, received and sent (not relayed).",
                t.dtls_packets,
            ),
        ];
        for (name, help, value) in counters {
            w.family(name, Counter, help).sample(&[], value);
        }

        let mut f = w.family(
            "mediarelay_dropped_packets_total",
            Counter,
            "Datagrams received and not forwarded, by reason.",
        );
        for reason in DropReason::ALL {
            f.sample(&[("reason", reason.as_str())], t.drops[reason.index()]);
        }

        port_family(
            &mut w,
            "mediarelay_port_pairs",
            "RTP/RTCP port pairs of the whole range, by state.",
            &[self.ports],
            false,
        );
        w.family(
            "mediarelay_port_pairs_capacity",
            Gauge,
            "RTP/RTCP port pairs in the whole range.",
        )
        .sample(&[], self.ports.total);
        w.family(
            "mediarelay_ports_quarantine_cut_short_total",
            Counter,
            "Port pairs handed out before their release quarantine ended, \
             because no free or expired pair was left.",
        )
        .sample(&[], self.ports.quarantine_cut_short);

        // Per-shard load. Families that exist as totals above get a
        // `mediarelay_shard_` name so that sum() over them is not doubled.
        let shard_labels: Vec<String> = (0..self.shards.len()).map(|i| i.to_string()).collect();
        type Field = fn(&ShardSnapshot) -> u64;
        let per_shard: [(&'static str, MetricType, &str, Field); 8] = [
            (
                "mediarelay_shard_calls",
                Gauge,
                "Live calls per shard.",
                |s| s.calls,
            ),
            (
                "mediarelay_shard_streams",
                Gauge,
                "Live streams per shard.",
                |s| s.streams,
            ),
            (
                "mediarelay_shard_rx_packets_total",
                Counter,
                "Datagrams received per shard.",
                |s| s.rx_packets,
            ),
            (
                "mediarelay_shard_tx_packets_total",
                Counter,
                "Datagrams forwarded per shard.",
                |s| s.tx_packets,
            ),
            (
                "mediarelay_loop_turns_total",
                Counter,
                "Event-loop turns per shard.",
                |s| s.turns,
            ),
            (
                "mediarelay_syscalls_total",
                Counter,
                "Data-path syscalls per shard.",
                |s| s.syscalls,
            ),
            (
                "mediarelay_shard_buffer_ring_exhausted_total",
                Counter,
                "Receives that found the io_uring buffer ring empty, per shard.",
                |s| s.no_buffers,
            ),
            (
                "mediarelay_shard_port_pairs_capacity",
                Gauge,
                "RTP/RTCP port pairs in each shard's slice.",
                |s| u64::from(s.ports.total),
            ),
        ];
        for (name, kind, help, field) in per_shard {
            let mut f = w.family(name, kind, help);
            for (s, label) in self.shards.iter().zip(&shard_labels) {
                f.sample(&[("shard", label)], field(s));
            }
        }
        let mut f = w.family(
            "mediarelay_cpu_seconds_total",
            Counter,
            "Shard thread CPU time (updated about every 100 ms).",
        );
        for (s, label) in self.shards.iter().zip(&shard_labels) {
            f.sample(&[("shard", label)], s.cpu_ns as f64 / 1e9);
        }
        let slices: Vec<Counts> = self.shards.iter().map(|s| s.ports).collect();
        port_family(
            &mut w,
            "mediarelay_shard_port_pairs",
            "RTP/RTCP port pairs of each shard's slice, by state.",
            &slices,
            true,
        );

        let Some(ng) = ng else {
            return;
        };
        let mut f = w.family(
            "mediarelay_ng_commands_total",
            Counter,
            "NG control commands handled, by command and result.",
        );
        for (command, result, n) in ng.commands() {
            f.sample(&[("command", command), ("result", result)], n);
        }
        w.family(
            "mediarelay_ng_malformed_total",
            Counter,
            "NG datagrams that were not a valid NG message.",
        )
        .sample(&[], ng.malformed());
        let durations = ng.command_durations();
        if !durations.is_empty() {
            let mut f = w.family(
                "mediarelay_ng_command_duration_seconds",
                MetricType::Histogram,
                "Time to handle an NG datagram that executed a command, by command.",
            );
            for (command, h) in &durations {
                f.histogram(&[("command", command)], h);
            }
        }
    }
}

/// A `{state="in_use|quarantined|free"}` gauge family, one group of three
/// per slice, labelled `shard` when `per_shard`.
fn port_family(
    w: &mut TextWriter<'_>,
    name: &'static str,
    help: &str,
    slices: &[Counts],
    per_shard: bool,
) {
    let mut f = w.family(name, MetricType::Gauge, help);
    for (i, c) in slices.iter().enumerate() {
        let shard = i.to_string();
        for (state, v) in [
            ("in_use", c.in_use),
            ("quarantined", c.quarantined),
            ("free", c.free),
        ] {
            if per_shard {
                f.sample(&[("shard", &shard), ("state", state)], v);
            } else {
                f.sample(&[("state", state)], v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ng;

    impl NgCounters for Ng {
        fn commands(&self) -> Vec<(&'static str, &'static str, u64)> {
            vec![
                ("offer", "ok", 5),
                ("offer", "error", 1),
                ("delete", "ok", 4),
            ]
        }
        fn malformed(&self) -> u64 {
            2
        }
    }

    fn snapshot() -> Snapshot {
        let mut totals = EngineStats {
            calls: 2,
            streams: 8,
            rx_packets: 1000,
            rx_bytes: 172_000,
            tx_packets: 990,
            tx_bytes: 170_280,
            send_errors: 3,
            ..EngineStats::default()
        };
        totals.drops[DropReason::SourceActive.index()] = 7;
        let slice = |in_use, quarantined, quarantine_cut_short| Counts {
            in_use,
            quarantined,
            free: 25 - in_use - quarantined,
            total: 25,
            quarantine_cut_short,
        };
        Snapshot {
            backend: "epoll",
            totals,
            ports: slice(2, 1, 4).plus(slice(0, 0, 2)),
            shards: vec![
                ShardSnapshot {
                    calls: 2,
                    rx_packets: 1000,
                    cpu_ns: 1_500_000_000,
                    ports: slice(2, 1, 4),
                    ..ShardSnapshot::default()
                },
                ShardSnapshot {
                    ports: slice(0, 0, 2),
                    ..ShardSnapshot::default()
                },
            ],
        }
    }

    fn lines(body: &str) -> Vec<&str> {
        body.lines().filter(|l| !l.starts_with('#')).collect()
    }

    #[test]
    fn engine_families() {
        let mut body = String::new();
        snapshot().render(None, &mut body);
        let l = lines(&body);
        let info = format!(
            "mediarelay_info{{version=\"{}\",backend=\"epoll\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        assert!(l.contains(&info.as_str()), "{body}");
        for want in [
            "mediarelay_shards 2",
            "mediarelay_calls 2",
            "mediarelay_streams 8",
            "mediarelay_rx_packets_total 1000",
            "mediarelay_tx_bytes_total 170280",
            "mediarelay_send_errors_total 3",
            "mediarelay_dropped_packets_total{reason=\"source_active\"} 7",
            "mediarelay_dropped_packets_total{reason=\"loop\"} 0",
            "mediarelay_port_pairs{state=\"in_use\"} 2",
            "mediarelay_port_pairs{state=\"quarantined\"} 1",
            "mediarelay_port_pairs{state=\"free\"} 47",
            "mediarelay_port_pairs_capacity 50",
            "mediarelay_ports_quarantine_cut_short_total 6",
            "mediarelay_shard_calls{shard=\"0\"} 2",
            "mediarelay_shard_calls{shard=\"1\"} 0",
            "mediarelay_shard_rx_packets_total{shard=\"0\"} 1000",
            "mediarelay_cpu_seconds_total{shard=\"0\"} 1.5",
            "mediarelay_cpu_seconds_total{shard=\"1\"} 0",
            "mediarelay_shard_port_pairs{shard=\"1\",state=\"free\"} 25",
            "mediarelay_shard_port_pairs_capacity{shard=\"1\"} 25",
        ] {
            assert!(l.contains(&want), "missing {want:?} in\n{body}");
        }
        assert_eq!(
            l.iter()
                .filter(|s| s.starts_with("mediarelay_dropped_packets_total{"))
                .count(),
            DropReason::COUNT
        );
        assert!(!body.contains("mediarelay_ng_"));
    }

    #[test]
    fn each_family_has_help_and_type_once_and_contiguous_samples() {
        let mut body = String::new();
        snapshot().render(Some(&Ng), &mut body);
        let mut families: Vec<&str> = Vec::new();
        let mut current = "";
        for line in body.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!families.contains(&name), "{name} twice");
                families.push(name);
                current = name;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert_eq!(name, current);
                assert_eq!(kind == "counter", name.ends_with("_total"), "{line}");
            } else {
                let name = line.split(['{', ' ']).next().unwrap();
                assert_eq!(name, current, "sample outside its family: {line}");
            }
        }
        assert!(families.len() > 20);
    }

    #[test]
    fn ng_families() {
        let mut body = String::new();
        snapshot().render(Some(&Ng), &mut body);
        assert!(body.ends_with(
            "# HELP mediarelay_ng_commands_total NG control commands handled, by command and result.\n\
             # TYPE mediarelay_ng_commands_total counter\n\
             mediarelay_ng_commands_total{command=\"offer\",result=\"ok\"} 5\n\
             mediarelay_ng_commands_total{command=\"offer\",result=\"error\"} 1\n\
             mediarelay_ng_commands_total{command=\"delete\",result=\"ok\"} 4\n\
             # HELP mediarelay_ng_malformed_total NG datagrams that were not a valid NG message.\n\
             # TYPE mediarelay_ng_malformed_total counter\n\
             mediarelay_ng_malformed_total 2\n"
        ));
    }

    struct NgTimed;

    impl NgCounters for NgTimed {
        fn commands(&self) -> Vec<(&'static str, &'static str, u64)> {
            vec![("offer", "ok", 1)]
        }
        fn malformed(&self) -> u64 {
            0
        }
        fn command_durations(&self) -> Vec<(&'static str, HistogramSnapshot)> {
            let h = crate::metrics::Histogram::default();
            h.observe(std::time::Duration::from_micros(300));
            vec![
                ("offer", h.snapshot()),
                ("ping", HistogramSnapshot::default()),
            ]
        }
    }

    #[test]
    fn ng_command_duration_histogram() {
        let mut body = String::new();
        snapshot().render(Some(&NgTimed), &mut body);
        let (_, tail) = body
            .split_once("# HELP mediarelay_ng_command_duration_seconds ")
            .expect("histogram family");
        let l: Vec<&str> = tail.lines().skip(1).collect();
        assert_eq!(
            l[0],
            "# TYPE mediarelay_ng_command_duration_seconds histogram"
        );
        for want in [
            "mediarelay_ng_command_duration_seconds_bucket{command=\"offer\",le=\"0.00025\"} 0",
            "mediarelay_ng_command_duration_seconds_bucket{command=\"offer\",le=\"0.0005\"} 1",
            "mediarelay_ng_command_duration_seconds_bucket{command=\"offer\",le=\"+Inf\"} 1",
            "mediarelay_ng_command_duration_seconds_sum{command=\"offer\"} 0.0003",
            "mediarelay_ng_command_duration_seconds_count{command=\"offer\"} 1",
            "mediarelay_ng_command_duration_seconds_bucket{command=\"ping\",le=\"0.00005\"} 0",
            "mediarelay_ng_command_duration_seconds_count{command=\"ping\"} 0",
        ] {
            assert!(l.contains(&want), "missing {want:?} in\n{tail}");
        }
        // Every sample after the TYPE line belongs to the family.
        assert!(
            l[1..]
                .iter()
                .all(|s| s.starts_with("mediarelay_ng_command_duration_seconds_"))
        );
        assert_eq!(l.len(), 1 + 2 * (crate::metrics::histogram::BUCKETS + 2));
    }
}
