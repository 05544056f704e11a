//! The kernel fast path: an eBPF program on tc ingress (TCX) that forwards
//! the RTP of latched relay streams in the kernel, with no kernel module.
//!
//! The program (`forward.bpf.c` beside this file, built by `build.rs` with
//! clang) looks up each IPv4/UDP packet's destination in a hash map of
//! forwarding entries, one per offloaded stream, keyed by the relay
//! socket's address. A packet from the stream's latched source that is RTP
//! with a payload type the relay leaves to the kernel is rewritten (source:
//! the relay socket it would have left from; destination: the far end)
//! with its IPv4 and UDP checksums updated, and sent on; everything else
//! goes to userspace untouched. Per-stream counters (packets, bytes, last
//! arrival, SSRC, sequence number, sequence jumps) are kept per CPU in an
//! array, at a slot each entry is given here (one hash lookup per packet),
//! and merged into the relay's own counters by the shards.
//!
//! The program is attached through TCX links held by this process: when
//! the process exits, however it exits, the kernel closes the links and
//! detaches the program, so nothing forwards on behalf of a dead relay.
//!
//! [`FastPath`] owns the program, its links and maps; shards install and
//! withdraw entries through it (rarely: on latching, signalling changes
//! and teardown) and read counters (about once a second per stream).

// Without the BPF object the map layouts and counter parsing are still
// compiled (and unit-tested) but not called.
#![cfg_attr(not(all(feature = "fast-path", mediarelay_bpf)), allow(dead_code))]

use std::net::{IpAddr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

mod netlink;

/// Whether to use the kernel fast path (`--fast-path`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FastPathMode {
    /// Userspace only.
    #[default]
    Off,
    /// The fast path where the kernel and privileges allow it; otherwise
    /// userspace, with the reason logged.
    Auto,
    /// The fast path or nothing: start-up fails when it cannot load.
    Ebpf,
}

impl FastPathMode {
    /// The name used on the command line and in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            FastPathMode::Off => "off",
            FastPathMode::Auto => "auto",
            FastPathMode::Ebpf => "ebpf",
        }
    }
}

impl std::str::FromStr for FastPathMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "off" | "no" | "false" => Ok(FastPathMode::Off),
            "auto" => Ok(FastPathMode::Auto),
            "ebpf" | "on" | "yes" | "true" => Ok(FastPathMode::Ebpf),
            other => Err(format!(
                "unknown fast path mode '{other}' (expected auto, ebpf or off)"
            )),
        }
    }
}

/// Why the fast path is not available, or an operation on it failed.
#[derive(Debug, thiserror::Error)]
pub enum FastPathError {
    /// This binary was built without the eBPF object (no clang at build
    /// time, or without the `fast-path` feature).
    #[error("the kernel fast path is not built into this binary: {0}")]
    NotBuilt(&'static str),
    /// The kernel refused the program or its maps (too old, no BPF, or no
    /// CAP_BPF/CAP_NET_ADMIN).
    #[error("loading the eBPF program failed: {0}")]
    Load(String),
    /// Attaching to an interface failed (TCX needs Linux 6.6).
    #[error("attaching the eBPF program to {iface} failed: {why}")]
    Attach {
        /// The interface.
        iface: String,
        /// The kernel's answer.
        why: String,
    },
    /// No interface to attach to.
    #[error("no network interface to attach the fast path to")]
    NoInterfaces,
    /// A map update, read or route lookup failed.
    #[error("fast path map: {0}")]
    Map(String),
    /// The stream cannot be forwarded by the kernel (IPv6, or an address
    /// the program does not handle); it stays in userspace.
    #[error("not offloadable: {0}")]
    Unsupported(&'static str),
}

/// One forwarding entry: packets arriving at `local` from `source` leave
/// from `out` to `dest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelRoute {
    /// The relay socket the stream's packets arrive at.
    pub local: SocketAddr,
    /// The latched source: packets from anywhere else go to userspace.
    pub source: SocketAddr,
    /// The relay socket they would be sent from.
    pub out: SocketAddr,
    /// The far end.
    pub dest: SocketAddr,
    /// RTP payload types (bit n = payload type n) left to userspace, e.g.
    /// telephone-event.
    pub userspace_payload_types: u128,
    /// TOS byte the relay's sockets set (`--tos`), set on forwarded packets
    /// too; `None` keeps the packet's own.
    pub tos: Option<u8>,
}

/// What the kernel forwarded for one stream since its entry went in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelCounters {
    /// Packets forwarded.
    pub packets: u64,
    /// UDP payload bytes forwarded.
    pub bytes: u64,
    /// Packets whose sequence number was not the previous one's + 1 (on
    /// the CPU that handled them: a stream spread over CPUs counts more).
    pub seq_jumps: u64,
    /// Arrival of the last one.
    pub last: Option<Instant>,
    /// Its SSRC.
    pub ssrc: u32,
    /// Its sequence number.
    pub seq: u16,
}

const KEY_LEN: usize = 8;
const ROUTE_LEN: usize = 48;
const STATS_LEN: usize = 40;
const FP_LOCAL: u16 = 1;

fn v4(addr: SocketAddr) -> Result<SocketAddrV4, FastPathError> {
    match addr {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(a) => match a.ip().to_ipv4_mapped() {
            Some(ip) => Ok(SocketAddrV4::new(ip, a.port())),
            None => Err(FastPathError::Unsupported("IPv6 streams stay in userspace")),
        },
    }
}

/// The map key: address and port in network order, as the program reads
/// them off the packet.
fn key_of(local: SocketAddrV4) -> [u8; KEY_LEN] {
    let mut k = [0u8; KEY_LEN];
    k[0..4].copy_from_slice(&local.ip().octets());
    k[4..6].copy_from_slice(&local.port().to_be_bytes());
    k
}

/// The map value (`struct route_value` in the program), without its
/// counters' slot (bytes 28..32, set by [`with_slot`]).
fn route_value(
    r: &KernelRoute,
    src: SocketAddrV4,
    out: SocketAddrV4,
    dest: SocketAddrV4,
    egress: netlink::Egress,
) -> [u8; ROUTE_LEN] {
    let mut v = [0u8; ROUTE_LEN];
    v[0..4].copy_from_slice(&src.ip().octets());
    v[4..6].copy_from_slice(&src.port().to_be_bytes());
    let flags = if egress.local { FP_LOCAL } else { 0 };
    v[6..8].copy_from_slice(&flags.to_ne_bytes());
    v[8..12].copy_from_slice(&out.ip().octets());
    v[12..14].copy_from_slice(&out.port().to_be_bytes());
    let tos = r.tos.map_or(0u16, |t| 0x100 | u16::from(t));
    v[14..16].copy_from_slice(&tos.to_ne_bytes());
    v[16..20].copy_from_slice(&dest.ip().octets());
    v[20..22].copy_from_slice(&dest.port().to_be_bytes());
    v[24..28].copy_from_slice(&egress.ifindex.to_ne_bytes());
    let pts = r.userspace_payload_types;
    v[32..40].copy_from_slice(&(pts as u64).to_ne_bytes());
    v[40..48].copy_from_slice(&((pts >> 64) as u64).to_ne_bytes());
    v
}

/// `value` pointing at counters slot `slot`.
fn with_slot(mut value: [u8; ROUTE_LEN], slot: u32) -> [u8; ROUTE_LEN] {
    value[28..32].copy_from_slice(&slot.to_ne_bytes());
    value
}

/// Slots of the counters array: one per installed entry. Slots never
/// given are handed out first, then freed ones, the one freed longest ago
/// first: a packet that found an old entry just before it went (the
/// program runs under RCU) counts into a slot nobody has been given since.
#[derive(Debug, Default)]
struct Slots {
    by_key: std::collections::HashMap<[u8; KEY_LEN], u32>,
    free: std::collections::VecDeque<u32>,
    next: u32,
    capacity: u32,
}

impl Slots {
    fn new(capacity: u32) -> Slots {
        Slots {
            capacity,
            ..Slots::default()
        }
    }

    /// A slot no key holds; `None` when all are taken.
    fn fresh(&mut self) -> Option<u32> {
        if self.next < self.capacity {
            self.next += 1;
            return Some(self.next - 1);
        }
        self.free.pop_front()
    }

    /// `key` now holds `slot`; the slot it held before goes back.
    fn assign(&mut self, key: [u8; KEY_LEN], slot: u32) {
        if let Some(old) = self.by_key.insert(key, slot) {
            self.free.push_back(old);
        }
    }

    /// A slot from [`fresh`](Self::fresh) that was not used after all.
    fn release(&mut self, slot: u32) {
        self.free.push_back(slot);
    }

    /// The key's slot, if it has one.
    fn get(&self, key: &[u8; KEY_LEN]) -> Option<u32> {
        self.by_key.get(key).copied()
    }

    /// Gives the key's slot back.
    fn give_back(&mut self, key: &[u8; KEY_LEN]) {
        if let Some(s) = self.by_key.remove(key) {
            self.free.push_back(s);
        }
    }
}

/// Memory the per-CPU counters array may take.
const STATS_BUDGET: usize = 64 << 20;

/// Counter slots for `capacity` entries on `nr_cpus` possible CPUs: one per
/// entry within [`STATS_BUDGET`], and never fewer than 1,024.
fn stats_slots(capacity: u32, nr_cpus: usize) -> u32 {
    let fit = STATS_BUDGET / (STATS_LEN * nr_cpus.max(1));
    capacity.min(u32::try_from(fit).unwrap_or(u32::MAX).max(1024))
}

/// One CPU's `struct stats_value`.
#[derive(Debug, Clone, Copy, Default)]
struct CpuStats {
    packets: u64,
    bytes: u64,
    last_ns: u64,
    seq_jumps: u64,
    ssrc: u32,
    seq: u16,
}

impl CpuStats {
    fn parse(b: &[u8; STATS_LEN]) -> Self {
        let u64_at = |i: usize| u64::from_ne_bytes(b[i..i + 8].try_into().unwrap_or_default());
        CpuStats {
            packets: u64_at(0),
            bytes: u64_at(8),
            last_ns: u64_at(16),
            seq_jumps: u64_at(24),
            ssrc: u32::from_ne_bytes(b[32..36].try_into().unwrap_or_default()),
            seq: u16::from_ne_bytes(b[36..38].try_into().unwrap_or_default()),
        }
    }
}

/// Sums per-CPU counters; the last packet is the one with the latest
/// arrival on any CPU. `mono_now`: CLOCK_MONOTONIC now, read with `now`.
fn merge(cpus: impl Iterator<Item = CpuStats>, now: Instant, mono_now: Duration) -> KernelCounters {
    let mut c = KernelCounters::default();
    let mut last_ns = 0u64;
    for s in cpus {
        c.packets += s.packets;
        c.bytes += s.bytes;
        c.seq_jumps += s.seq_jumps;
        if s.packets > 0 && s.last_ns >= last_ns {
            last_ns = s.last_ns;
            c.ssrc = s.ssrc;
            c.seq = s.seq;
        }
    }
    if c.packets > 0 {
        let age = mono_now.saturating_sub(Duration::from_nanos(last_ns));
        c.last = Some(now.checked_sub(age).unwrap_or(now));
    }
    c
}

/// The loaded and attached program with its maps.
pub struct FastPath {
    #[cfg(all(feature = "fast-path", mediarelay_bpf))]
    inner: std::sync::Mutex<imp::Loaded>,
    interfaces: Vec<String>,
}

impl std::fmt::Debug for FastPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FastPath")
            .field("interfaces", &self.interfaces)
            .finish_non_exhaustive()
    }
}

impl FastPath {
    /// Loads the program and attaches it to tc ingress of `interfaces`
    /// (empty: every interface present now). Needs CAP_BPF and
    /// CAP_NET_ADMIN (root) and Linux 6.6 (TCX).
    ///
    /// `capacity`: the most entries it will hold (one per relay socket is
    /// the most a relay needs); the maps are sized to it.
    pub fn start(interfaces: &[String], capacity: u32) -> Result<FastPath, FastPathError> {
        #[cfg(all(feature = "fast-path", mediarelay_bpf))]
        {
            let (loaded, attached) = imp::Loaded::start(interfaces, capacity)?;
            Ok(FastPath {
                inner: std::sync::Mutex::new(loaded),
                interfaces: attached,
            })
        }
        #[cfg(not(all(feature = "fast-path", mediarelay_bpf)))]
        {
            let _ = (interfaces, capacity);
            Err(FastPathError::NotBuilt(if cfg!(feature = "fast-path") {
                "no clang for BPF at build time"
            } else {
                "built without the fast-path feature"
            }))
        }
    }

    /// The interfaces the program is attached to.
    pub fn interfaces(&self) -> &[String] {
        &self.interfaces
    }

    /// Installs (or replaces) the entry for `route.local`; its counters
    /// start from zero.
    pub fn install(&self, route: &KernelRoute) -> Result<(), FastPathError> {
        let local = v4(route.local)?;
        let src = v4(route.source)?;
        let out = v4(route.out)?;
        let dest = v4(route.dest)?;
        if local.ip().is_unspecified() || out.ip().is_unspecified() {
            return Err(FastPathError::Unsupported(
                "a wildcard-bound socket has no address to match",
            ));
        }
        let egress = netlink::egress(*dest.ip(), *out.ip()).map_err(|e| {
            FastPathError::Map(format!("route lookup for {}: {e}", IpAddr::V4(*dest.ip())))
        })?;
        let value = route_value(route, src, out, dest, egress);
        self.with(|l| l.install(key_of(local), value))
    }

    /// Removes the entry for `local` (the kernel stops forwarding at once)
    /// and returns its final counters.
    pub fn withdraw(&self, local: SocketAddr) -> Result<KernelCounters, FastPathError> {
        let key = key_of(v4(local)?);
        self.with(|l| l.withdraw(key))
    }

    /// The counters of `local`'s entry so far.
    pub fn counters(&self, local: SocketAddr) -> Result<KernelCounters, FastPathError> {
        let key = key_of(v4(local)?);
        self.with(|l| l.counters(key))
    }

    #[cfg(all(feature = "fast-path", mediarelay_bpf))]
    fn with<T>(
        &self,
        f: impl FnOnce(&mut imp::Loaded) -> Result<T, FastPathError>,
    ) -> Result<T, FastPathError> {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    #[cfg(not(all(feature = "fast-path", mediarelay_bpf)))]
    fn with<T>(
        &self,
        _f: impl FnOnce(&mut Never) -> Result<T, FastPathError>,
    ) -> Result<T, FastPathError> {
        Err(FastPathError::NotBuilt("not built"))
    }
}

/// Stands in for the loaded program where it is not built.
#[cfg(not(all(feature = "fast-path", mediarelay_bpf)))]
enum Never {}

#[cfg(not(all(feature = "fast-path", mediarelay_bpf)))]
impl Never {
    fn install(&mut self, _: [u8; KEY_LEN], _: [u8; ROUTE_LEN]) -> Result<(), FastPathError> {
        match *self {}
    }
    fn withdraw(&mut self, _: [u8; KEY_LEN]) -> Result<KernelCounters, FastPathError> {
        match *self {}
    }
    fn counters(&mut self, _: [u8; KEY_LEN]) -> Result<KernelCounters, FastPathError> {
        match *self {}
    }
}

/// CLOCK_MONOTONIC now (the clock of `bpf_ktime_get_ns`).
fn monotonic_now() -> Duration {
    super::sys::clock_time(libc::CLOCK_MONOTONIC)
}

#[cfg(all(feature = "fast-path", mediarelay_bpf))]
mod imp {
    use super::*;
    use aya::maps::{HashMap, MapData, PerCpuArray};
    use aya::programs::{LinkOrder, SchedClassifier, TcAttachType, tc::TcAttachOptions};

    /// The object built by build.rs.
    static OBJECT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/forward.bpf.o"));

    pub(super) struct Loaded {
        /// Holds the program and its TCX links (dropping it detaches).
        _ebpf: aya::Ebpf,
        routes: HashMap<MapData, [u8; KEY_LEN], [u8; ROUTE_LEN]>,
        stats: PerCpuArray<MapData, [u8; STATS_LEN]>,
        slots: Slots,
    }

    fn load_err(e: impl std::fmt::Display) -> FastPathError {
        FastPathError::Load(e.to_string())
    }

    /// An error with its causes (aya's top-level messages leave out the
    /// errno), and what to do about a refusal for lack of privileges.
    fn explain(e: &dyn std::error::Error) -> String {
        let mut msg = e.to_string();
        let mut cause = e.source();
        while let Some(c) = cause {
            let text = c.to_string();
            if !msg.contains(&text) {
                msg.push_str(": ");
                msg.push_str(&text);
            }
            cause = c.source();
        }
        if msg.contains("Permission denied") || msg.contains("Operation not permitted") {
            msg.push_str(" (the fast path needs CAP_BPF and CAP_NET_ADMIN, or root)");
        }
        msg
    }

    fn load_failed(e: impl std::error::Error) -> FastPathError {
        FastPathError::Load(explain(&e))
    }

    fn map_err(e: impl std::fmt::Display) -> FastPathError {
        FastPathError::Map(e.to_string())
    }

    /// Every interface of this network namespace now (/proc/net/dev is
    /// the process's own namespace; /sys/class/net is sysfs's).
    fn all_interfaces() -> Vec<String> {
        let text = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
        let mut names: Vec<String> = text
            .lines()
            .skip(2)
            .filter_map(|l| Some(l.split_once(':')?.0.trim().to_string()))
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names
    }

    impl Loaded {
        pub(super) fn start(
            interfaces: &[String],
            capacity: u32,
        ) -> Result<(Loaded, Vec<String>), FastPathError> {
            let capacity = capacity.max(1);
            // The counters array is allocated in full, per possible CPU:
            // at most STATS_BUDGET of it (entries past that fail to
            // install and their streams stay in userspace).
            let nr_cpus =
                aya::util::nr_cpus().map_err(|(what, e)| load_err(format!("{what}: {e}")))?;
            let slots = stats_slots(capacity, nr_cpus);
            tracing::info!(
                entries = capacity,
                counter_slots = slots,
                cpus = nr_cpus,
                counters_bytes = u64::from(slots) * (STATS_LEN * nr_cpus) as u64,
                "fast path maps sized"
            );
            let mut ebpf = aya::EbpfLoader::new()
                .map_max_entries("routes", capacity)
                .map_max_entries("stats", slots)
                .load(OBJECT)
                .map_err(load_failed)?;
            let prog: &mut SchedClassifier = ebpf
                .program_mut("mediarelay_forward")
                .ok_or_else(|| load_err("program missing from the object"))?
                .try_into()
                .map_err(load_failed)?;
            prog.load().map_err(load_failed)?;
            let explicit = !interfaces.is_empty();
            let names = if explicit {
                interfaces.to_vec()
            } else {
                all_interfaces()
            };
            let mut attached = Vec::new();
            for name in names {
                let res = prog.attach_with_options(
                    &name,
                    TcAttachType::Ingress,
                    TcAttachOptions::TcxOrder(LinkOrder::default()),
                );
                match res {
                    Ok(_) => attached.push(name),
                    Err(e) if explicit => {
                        return Err(FastPathError::Attach {
                            iface: name,
                            why: explain(&e),
                        });
                    }
                    Err(e) => {
                        tracing::warn!(interface = %name, error = %explain(&e), "fast path not attached to this interface");
                    }
                }
            }
            if attached.is_empty() {
                return Err(FastPathError::NoInterfaces);
            }
            let routes = ebpf
                .take_map("routes")
                .ok_or_else(|| load_err("no routes map"))?;
            let routes = HashMap::try_from(routes).map_err(load_failed)?;
            let stats = ebpf
                .take_map("stats")
                .ok_or_else(|| load_err("no stats map"))?;
            let stats = PerCpuArray::try_from(stats).map_err(load_failed)?;
            Ok((
                Loaded {
                    _ebpf: ebpf,
                    routes,
                    stats,
                    slots: Slots::new(slots),
                },
                attached,
            ))
        }

        pub(super) fn install(
            &mut self,
            key: [u8; KEY_LEN],
            value: [u8; ROUTE_LEN],
        ) -> Result<(), FastPathError> {
            // The counters first, in a slot of their own, zeroed
            // (whatever an earlier entry left there): the program then
            // only updates them. A replaced entry's slot is freed only
            // once the new entry is in, so a failed replacement leaves the
            // old entry counting where it did. No slot left is an error
            // here, where the stream can stay in userspace, not a packet
            // counted nowhere.
            let slot = self.slots.fresh().ok_or_else(|| {
                map_err(format!(
                    "all {} counter slots are in use",
                    self.slots.capacity
                ))
            })?;
            let nr_cpus =
                aya::util::nr_cpus().map_err(|(what, e)| map_err(format!("{what}: {e}")))?;
            let zero = aya::maps::PerCpuValues::try_from(vec![[0u8; STATS_LEN]; nr_cpus])
                .map_err(map_err)?;
            let res = self
                .stats
                .set(slot, zero, 0)
                .and_then(|()| self.routes.insert(key, with_slot(value, slot), 0));
            match res {
                Ok(()) => {
                    self.slots.assign(key, slot);
                    Ok(())
                }
                Err(e) => {
                    self.slots.release(slot);
                    Err(map_err(e))
                }
            }
        }

        pub(super) fn withdraw(
            &mut self,
            key: [u8; KEY_LEN],
        ) -> Result<KernelCounters, FastPathError> {
            match self.routes.remove(&key) {
                Ok(()) => {}
                Err(aya::maps::MapError::KeyNotFound) => {}
                Err(e) => return Err(map_err(e)),
            }
            // The slot goes back whatever the read says: the entry is
            // gone either way.
            let c = self.counters(key);
            self.slots.give_back(&key);
            c
        }

        pub(super) fn counters(
            &mut self,
            key: [u8; KEY_LEN],
        ) -> Result<KernelCounters, FastPathError> {
            let now = Instant::now();
            let mono = monotonic_now();
            let Some(slot) = self.slots.get(&key) else {
                return Ok(KernelCounters::default());
            };
            let values = self.stats.get(&slot, 0).map_err(map_err)?;
            Ok(merge(values.iter().map(CpuStats::parse), now, mono))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn modes_parse() {
        for m in [FastPathMode::Off, FastPathMode::Auto, FastPathMode::Ebpf] {
            assert_eq!(m.as_str().parse::<FastPathMode>(), Ok(m));
        }
        assert!("kernel".parse::<FastPathMode>().is_err());
    }

    #[test]
    fn layouts_match_the_program() {
        let local: SocketAddr = "127.0.0.1:30000".parse().unwrap();
        let k = key_of(v4(local).unwrap());
        assert_eq!(k, [127, 0, 0, 1, 0x75, 0x30, 0, 0]);
        let r = KernelRoute {
            local,
            source: "127.0.0.2:4000".parse().unwrap(),
            out: "127.0.0.1:30002".parse().unwrap(),
            dest: "127.0.0.3:5000".parse().unwrap(),
            userspace_payload_types: 1 << 101,
            tos: Some(0xb8),
        };
        let v = route_value(
            &r,
            v4(r.source).unwrap(),
            v4(r.out).unwrap(),
            v4(r.dest).unwrap(),
            netlink::Egress {
                ifindex: 7,
                local: true,
            },
        );
        assert_eq!(&v[0..6], &[127, 0, 0, 2, 0x0f, 0xa0]);
        assert_eq!(u16::from_ne_bytes([v[6], v[7]]), FP_LOCAL);
        assert_eq!(&v[8..14], &[127, 0, 0, 1, 0x75, 0x32]);
        assert_eq!(u16::from_ne_bytes([v[14], v[15]]), 0x1b8);
        assert_eq!(&v[16..22], &[127, 0, 0, 3, 0x13, 0x88]);
        assert_eq!(u32::from_ne_bytes([v[24], v[25], v[26], v[27]]), 7);
        assert_eq!(u64::from_ne_bytes(v[40..48].try_into().unwrap()), 1 << 37);
    }

    #[test]
    fn the_slot_goes_where_the_program_reads_it() {
        let v = with_slot([0xaa; ROUTE_LEN], 0x0102_0304);
        assert_eq!(
            u32::from_ne_bytes(v[28..32].try_into().unwrap()),
            0x0102_0304
        );
        assert_eq!(&v[24..28], &[0xaa; 4]);
        assert_eq!(&v[32..], &[0xaa; 16]);
    }

    #[test]
    fn the_counters_array_stays_within_its_budget() {
        // One slot per relay socket on a small host.
        assert_eq!(stats_slots(10_001, 2), 10_001);
        // 64 MiB / (40 B x 256 CPUs) = 6,553 slots on a large one.
        assert_eq!(stats_slots(64_512, 256), 6_553);
        assert_eq!(stats_slots(64_512, 1 << 20), 1_024);
        assert_eq!(stats_slots(10, 4096), 10);
    }

    #[test]
    fn slots_are_unique_and_reused_last() {
        let key = |n: u8| [127, 0, 0, 1, 0, n, 0, 0];
        let mut s = Slots::new(3);
        let a = s.fresh().unwrap();
        s.assign(key(1), a);
        let b = s.fresh().unwrap();
        s.assign(key(2), b);
        assert_eq!((a, b), (0, 1));
        // Freed before every slot was given: a never-used one comes first.
        s.give_back(&key(1));
        assert_eq!(s.get(&key(1)), None);
        let c = s.fresh().unwrap();
        assert_eq!(c, 2);
        s.assign(key(3), c);
        // Then the one freed longest ago.
        assert_eq!(s.fresh(), Some(0));
        assert_eq!(s.fresh(), None, "all taken");
        s.release(0);
        // Replacing a key's entry frees its old slot only then.
        let d = s.fresh().unwrap();
        assert_eq!(d, 0);
        s.assign(key(2), d);
        assert_eq!(s.get(&key(2)), Some(0));
        assert_eq!(s.fresh(), Some(1));
        assert_eq!(s.fresh(), None);
    }

    #[test]
    fn per_cpu_counters_merge() {
        let now = Instant::now();
        let mono = Duration::from_secs(100);
        let a = CpuStats {
            packets: 3,
            bytes: 480,
            last_ns: 99_000_000_000,
            seq_jumps: 1,
            ssrc: 7,
            seq: 10,
        };
        let b = CpuStats {
            packets: 2,
            bytes: 320,
            last_ns: 99_500_000_000,
            seq_jumps: 0,
            ssrc: 7,
            seq: 12,
        };
        let c = merge([a, CpuStats::default(), b].into_iter(), now, mono);
        assert_eq!(
            (c.packets, c.bytes, c.seq_jumps, c.seq, c.ssrc),
            (5, 800, 1, 12, 7)
        );
        assert_eq!(c.last, Some(now - Duration::from_millis(500)));
        assert_eq!(
            merge(std::iter::empty(), now, mono),
            KernelCounters::default()
        );
    }

    #[test]
    fn ipv6_is_not_offloaded() {
        assert!(matches!(
            v4("[2001:db8::1]:4000".parse().unwrap()),
            Err(FastPathError::Unsupported(_))
        ));
        assert_eq!(
            v4("[::ffff:192.0.2.1]:4000".parse().unwrap()).unwrap(),
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 4000)
        );
    }
}
