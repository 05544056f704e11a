//! Packet capture of what an [`Endpoint`] sends and receives, written as a
//! pcap file that Wireshark opens ("Decode As… RTP" on the UDP ports).
//!
//! [`capture`] wraps an endpoint in [`Captured`], which the shard drives
//! like the endpoint itself, and returns a [`CaptureReader`] for the
//! application. The two sides share a fixed set of records allocated once,
//! at [`capture`]: two bounded lock-free queues (`crossbeam-queue`'s
//! `ArrayQueue`) carry them, one of free records, one of filled ones.
//!
//! - **Shard side** ([`Captured`]): every datagram given to
//!   [`handle_input`](Endpoint::handle_input) (received, from its `src` to
//!   our address for its component) and every datagram
//!   [`poll_transmit`](Endpoint::poll_transmit) yields (sent, from our
//!   address to the far end's, the component picking RTP or RTCP) is copied,
//!   up to [`CaptureConfig::snaplen`] bytes, into a free record with its
//!   `now`. No allocation, no lock, no wait: when no record is free the
//!   datagram is counted as dropped ([`CaptureReader::dropped`]) and the
//!   endpoint goes on.
//! - **Reader side** ([`CaptureReader`], [`PcapSink`]): filled records are
//!   written to pcap and go back to the free queue. Each datagram is
//!   written with a synthesised IPv4 header (TTL 64, protocol 17, header
//!   checksum) or IPv6 header, and a UDP header with length and checksum,
//!   under `LINKTYPE_RAW` (101), at nanosecond resolution.
//!
//! Time enters the endpoint only as `now: Instant`. Records keep that
//! instant; the reader turns it into wall-clock time with the pair
//! (`SystemTime`, `Instant`) read when [`capture`] was called (the one clock
//! read of this module, outside the shard). On a virtual clock the pcap
//! times are therefore the virtual instants moved to the capture's start.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_queue::ArrayQueue;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};

use super::endpoint::{Endpoint, Transmit};
use crate::relay::Component;

/// Largest UDP datagram kept in a record: the most a snap length can be.
pub const MAX_SNAPLEN: usize = 65_535;

/// IPv4 header (no options) plus UDP header, bytes.
const V4_HEADERS: usize = 20 + 8;
/// IPv6 header (no extensions) plus UDP header, bytes.
const V6_HEADERS: usize = 40 + 8;
/// IP protocol number of UDP.
const PROTO_UDP: u8 = 17;
/// Snap length in the pcap file header, and the most an original length
/// written can be.
const FILE_SNAPLEN: u32 = (MAX_SNAPLEN + V6_HEADERS) as u32;
/// TTL / hop limit written in the synthesised headers.
const TTL: u8 = 64;

/// Errors of writing a capture out.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptureError {
    /// Creating, writing or flushing the output failed.
    #[error("capture output: {0}")]
    Io(#[from] std::io::Error),
    /// The pcap writer refused a header or packet.
    #[error("pcap: {0}")]
    Pcap(#[from] PcapError),
}

/// Where the captured endpoint's datagrams go and come from, and how much
/// is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureConfig {
    /// Our RTP address: the source of what we send on RTP, the destination
    /// of what we receive on RTP.
    pub local: SocketAddr,
    /// Our RTCP address (equal to `local` under rtcp-mux).
    pub local_rtcp: SocketAddr,
    /// The far end's RTP address: the destination of what we send on RTP.
    pub remote: SocketAddr,
    /// The far end's RTCP address: the destination of what we send on RTCP.
    pub remote_rtcp: SocketAddr,
    /// Records allocated, so datagrams that can wait between two drains
    /// (at least 1; default [`CaptureConfig::DEFAULT_CAPACITY`]).
    pub capacity: usize,
    /// Bytes of each UDP payload kept (at most [`MAX_SNAPLEN`]; default
    /// [`CaptureConfig::DEFAULT_SNAPLEN`]). Longer datagrams are written
    /// truncated, with their true length.
    pub snaplen: usize,
}

impl CaptureConfig {
    /// Default [`capacity`](CaptureConfig::capacity).
    pub const DEFAULT_CAPACITY: usize = 4096;
    /// Default [`snaplen`](CaptureConfig::snaplen).
    pub const DEFAULT_SNAPLEN: usize = 1500;

    /// `local` and `remote` RTP addresses with RTCP on the port above each
    /// (RFC 3550 §11; the same port where that would pass 65535), default
    /// capacity and snap length.
    pub fn new(local: SocketAddr, remote: SocketAddr) -> Self {
        CaptureConfig {
            local,
            local_rtcp: rtcp_of(local),
            remote,
            remote_rtcp: rtcp_of(remote),
            capacity: Self::DEFAULT_CAPACITY,
            snaplen: Self::DEFAULT_SNAPLEN,
        }
    }
}

/// An endpoint whose datagrams are captured; drive it as the endpoint
/// itself. Built by [`capture`].
#[derive(Debug)]
pub struct Captured<E> {
    inner: E,
    shared: Arc<Shared>,
    local: SocketAddr,
    local_rtcp: SocketAddr,
    remote: SocketAddr,
    remote_rtcp: SocketAddr,
}

/// The application's side of a capture: writes what was captured as pcap.
/// `Send + Sync`; drain from one thread at a time to keep the file in
/// capture order.
#[derive(Debug)]
pub struct CaptureReader {
    shared: Arc<Shared>,
    /// Wall-clock time at `anchor`.
    wall: SystemTime,
    anchor: Instant,
    snaplen: usize,
}

/// An open pcap output that [`drain`](PcapSink::drain) appends to. Built
/// by [`CaptureReader::start`] or [`CaptureReader::start_file`].
pub struct PcapSink<W: Write> {
    writer: PcapWriter<W>,
    /// The synthesised packet being written (reader side: allocated once
    /// per sink).
    scratch: Vec<u8>,
    summary: CaptureSummary,
}

/// What a [`PcapSink`] (or [`CaptureReader::write_pcap`]) wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaptureSummary {
    /// Packets written to the output.
    pub packets_written: u64,
    /// Of those, datagrams the endpoint sent.
    pub sent: u64,
    /// Of those, datagrams the endpoint received.
    pub received: u64,
    /// Datagrams not captured since the capture began because no record
    /// was free (the reader drained too late), as of the last drain.
    pub dropped: u64,
}

/// One captured datagram.
#[derive(Debug)]
struct Record {
    at: Instant,
    sent: bool,
    src: SocketAddr,
    dst: SocketAddr,
    /// Length of the whole datagram.
    len: usize,
    /// Ones' complement sum of the whole datagram, for the UDP checksum;
    /// kept only when the datagram is longer than `data` (else computed
    /// by the reader).
    sum: u64,
    /// The first `min(len, snaplen)` bytes are the datagram's.
    data: Box<[u8]>,
}

/// What both sides of a capture share.
#[derive(Debug)]
struct Shared {
    free: ArrayQueue<Record>,
    filled: ArrayQueue<Record>,
    dropped: AtomicU64,
    captured: AtomicU64,
}

/// Wraps `inner` so that what it sends and receives is captured, and
/// returns the reader of the capture. Allocates every record now
/// (`capacity` × `snaplen` bytes); `capacity` below 1 is taken as 1,
/// `snaplen` above [`MAX_SNAPLEN`] as [`MAX_SNAPLEN`].
pub fn capture<E: Endpoint>(inner: E, cfg: CaptureConfig) -> (Captured<E>, CaptureReader) {
    let capacity = cfg.capacity.max(1);
    let snaplen = cfg.snaplen.min(MAX_SNAPLEN);
    let wall = SystemTime::now();
    let anchor = Instant::now();
    let free = ArrayQueue::new(capacity);
    for _ in 0..capacity {
        // `free` was made with room for `capacity` records.
        let _ = free.push(Record {
            at: anchor,
            sent: false,
            src: cfg.local,
            dst: cfg.remote,
            len: 0,
            sum: 0,
            data: vec![0; snaplen].into_boxed_slice(),
        });
    }
    let shared = Arc::new(Shared {
        free,
        filled: ArrayQueue::new(capacity),
        dropped: AtomicU64::new(0),
        captured: AtomicU64::new(0),
    });
    (
        Captured {
            inner,
            shared: shared.clone(),
            local: cfg.local,
            local_rtcp: cfg.local_rtcp,
            remote: cfg.remote,
            remote_rtcp: cfg.remote_rtcp,
        },
        CaptureReader {
            shared,
            wall,
            anchor,
            snaplen,
        },
    )
}

impl<E> Captured<E> {
    /// The wrapped endpoint.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    /// The wrapped endpoint, mutably.
    pub fn inner_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    /// Ends the capture (the reader keeps what was captured) and returns
    /// the endpoint.
    pub fn into_inner(self) -> E {
        self.inner
    }

    /// Copies one datagram into a free record, or counts it as dropped.
    fn record(&self, at: Instant, sent: bool, src: SocketAddr, dst: SocketAddr, data: &[u8]) {
        let Some(mut rec) = self.shared.free.pop() else {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let kept = data.len().min(rec.data.len());
        rec.data[..kept].copy_from_slice(&data[..kept]);
        rec.at = at;
        rec.sent = sent;
        rec.src = src;
        rec.dst = dst;
        rec.len = data.len();
        rec.sum = if kept < data.len() { sum16(0, data) } else { 0 };
        // Every record is in exactly one of `free`, `filled` or a drain in
        // progress, and `filled` has room for all of them, so this push
        // succeeds; were it to fail the record would be freed, not lost
        // silently: count it.
        if self.shared.filled.push(rec).is_err() {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.shared.captured.fetch_add(1, Ordering::Relaxed);
    }
}

impl<E: Endpoint> Endpoint for Captured<E> {
    fn handle_input(&mut self, now: Instant, component: Component, src: SocketAddr, data: &[u8]) {
        let dst = match component {
            Component::Rtp => self.local,
            Component::Rtcp => self.local_rtcp,
        };
        self.record(now, false, src, dst, data);
        self.inner.handle_input(now, component, src, data);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let t = self.inner.poll_transmit(now, buf)?;
        let (src, dst) = match t.component {
            Component::Rtp => (self.local, self.remote),
            Component::Rtcp => (self.local_rtcp, self.remote_rtcp),
        };
        // A length beyond the buffer is the inner endpoint's bug; capture
        // what there is.
        let data = buf.get(..t.len).unwrap_or(&*buf);
        self.record(now, true, src, dst, data);
        Some(t)
    }

    fn poll_timeout(&self) -> Option<Instant> {
        self.inner.poll_timeout()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.inner.handle_timeout(now);
    }

    fn flush(&mut self, now: Instant) {
        self.inner.flush(now);
    }

    fn on_send_failed(&mut self, component: Component) {
        self.inner.on_send_failed(component);
    }
}

impl CaptureReader {
    /// Writes everything captured so far to a new pcap file at `path`
    /// (replacing one that is there): [`start_file`](Self::start_file),
    /// [`drain`](PcapSink::drain), [`finish`](PcapSink::finish).
    pub fn write_pcap(&self, path: impl AsRef<Path>) -> Result<CaptureSummary, CaptureError> {
        let mut sink = self.start_file(path)?;
        sink.drain(self)?;
        sink.finish()
    }

    /// Creates a pcap file at `path` (replacing one that is there) and
    /// writes its header; [`drain`](PcapSink::drain) into it as often as
    /// needed, then [`finish`](PcapSink::finish).
    pub fn start_file(
        &self,
        path: impl AsRef<Path>,
    ) -> Result<PcapSink<BufWriter<File>>, CaptureError> {
        let file = File::create(path)?;
        self.start(BufWriter::new(file))
    }

    /// Writes a pcap header to `w` and returns the sink that appends
    /// captured datagrams to it.
    pub fn start<W: Write>(&self, w: W) -> Result<PcapSink<W>, CaptureError> {
        let header = PcapHeader {
            // The largest UDP datagram with IPv6 and UDP headers, whatever
            // the configured snap length: readers such as pcap-file's reject
            // an original length beyond the file's snap length.
            snaplen: FILE_SNAPLEN,
            datalink: DataLink::RAW,
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        Ok(PcapSink {
            writer: PcapWriter::with_header(w, header)?,
            scratch: Vec::with_capacity(self.snaplen + V6_HEADERS),
            summary: CaptureSummary::default(),
        })
    }

    /// Datagrams not captured because no record was free.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Datagrams captured (put in a record) since the capture began.
    pub fn captured(&self) -> u64 {
        self.shared.captured.load(Ordering::Relaxed)
    }

    /// Captured datagrams waiting to be drained.
    pub fn pending(&self) -> usize {
        self.shared.filled.len()
    }

    /// The wall-clock time of `at`, since the Unix epoch.
    fn timestamp(&self, at: Instant) -> Duration {
        let wall = if at >= self.anchor {
            self.wall.checked_add(at - self.anchor)
        } else {
            self.wall.checked_sub(self.anchor - at)
        };
        wall.and_then(|w| w.duration_since(UNIX_EPOCH).ok())
            .unwrap_or(Duration::ZERO)
    }
}

impl<W: Write> PcapSink<W> {
    /// Writes the captured datagrams waiting in `reader` (at most its
    /// capacity, so a drain ends while the endpoint goes on capturing) and
    /// returns their records to it; returns how many were written.
    ///
    /// `reader` should be the one that started this sink: another
    /// capture's records are written with its own clock anchor.
    pub fn drain(&mut self, reader: &CaptureReader) -> Result<usize, CaptureError> {
        let shared = &reader.shared;
        let mut written = 0;
        for _ in 0..shared.filled.capacity() {
            let Some(rec) = shared.filled.pop() else {
                break;
            };
            let res = self.write(reader, &rec);
            // Room for every record of the capture (see `record`).
            let _ = shared.free.push(rec);
            res?;
            written += 1;
        }
        self.summary.dropped = reader.dropped();
        Ok(written)
    }

    /// What was written so far.
    pub fn summary(&self) -> CaptureSummary {
        self.summary
    }

    /// Flushes the output and returns what was written.
    pub fn finish(self) -> Result<CaptureSummary, CaptureError> {
        let summary = self.summary;
        self.into_writer()?;
        Ok(summary)
    }

    /// Flushes the output and returns it.
    pub fn into_writer(self) -> Result<W, CaptureError> {
        let mut w = self.writer.into_writer();
        w.flush()?;
        Ok(w)
    }

    /// Synthesises the IP and UDP headers of `rec` and writes the packet.
    fn write(&mut self, reader: &CaptureReader, rec: &Record) -> Result<(), CaptureError> {
        let kept = rec.len.min(rec.data.len());
        let payload = &rec.data[..kept];
        let sum = if kept < rec.len {
            rec.sum
        } else {
            sum16(0, payload)
        };
        let headers = synthesise(&mut self.scratch, rec.src, rec.dst, rec.len, sum);
        self.scratch.extend_from_slice(payload);
        // Only a datagram beyond any UDP datagram's size (handed to the
        // endpoint as such) reaches the cap.
        let orig_len = u32::try_from(headers + rec.len)
            .unwrap_or(u32::MAX)
            .min(FILE_SNAPLEN);
        let packet = PcapPacket::new(reader.timestamp(rec.at), orig_len, &self.scratch);
        self.writer.write_packet(&packet)?;
        self.summary.packets_written += 1;
        if rec.sent {
            self.summary.sent += 1;
        } else {
            self.summary.received += 1;
        }
        Ok(())
    }
}

impl<W: Write> std::fmt::Debug for PcapSink<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapSink")
            .field("summary", &self.summary)
            .finish_non_exhaustive()
    }
}

/// The RTCP address beside an RTP address: port + 1 (RFC 3550 §11), or
/// the same port at 65535.
fn rtcp_of(rtp: SocketAddr) -> SocketAddr {
    let mut a = rtp;
    a.set_port(rtp.port().checked_add(1).unwrap_or(rtp.port()));
    a
}

/// An IPv4-mapped IPv6 address as IPv4; others unchanged.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// As IPv6 (IPv4 mapped, RFC 4291 §2.5.5.2).
fn as_v6(ip: IpAddr) -> Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Clears `out` and writes into it the IP and UDP headers of a datagram of
/// `len` bytes whose ones' complement sum is `payload_sum`, from `src` to
/// `dst`: IPv4 when both addresses are IPv4 (mapped ones included), else
/// IPv6. Returns the headers' length. Lengths past the 16-bit fields
/// saturate.
fn synthesise(
    out: &mut Vec<u8>,
    src: SocketAddr,
    dst: SocketAddr,
    len: usize,
    payload_sum: u64,
) -> usize {
    out.clear();
    let udp_len = u16::try_from(len + 8).unwrap_or(u16::MAX);
    let (sip, dip) = (canonical(src.ip()), canonical(dst.ip()));
    // Pseudo-header sum (RFC 768; RFC 8200 §8.1), then the UDP header.
    let mut sum = payload_sum;
    let headers = match (sip, dip) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = u16::try_from(len + V4_HEADERS).unwrap_or(u16::MAX);
            // RFC 791 §3.1: version 4, IHL 5, DF, no fragment offset.
            out.extend_from_slice(&[0x45, 0]);
            out.extend_from_slice(&total.to_be_bytes());
            out.extend_from_slice(&[0, 0, 0x40, 0, TTL, PROTO_UDP, 0, 0]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            let check = !fold(sum16(0, &out[..20]));
            out[10..12].copy_from_slice(&check.to_be_bytes());
            sum = sum16(sum, &s.octets());
            sum = sum16(sum, &d.octets());
            sum += u64::from(PROTO_UDP) + u64::from(udp_len);
            V4_HEADERS
        }
        (s, d) => {
            let (s, d) = (as_v6(s), as_v6(d));
            // RFC 8200 §3: version 6, no traffic class or flow label.
            out.extend_from_slice(&[0x60, 0, 0, 0]);
            out.extend_from_slice(&udp_len.to_be_bytes());
            out.extend_from_slice(&[PROTO_UDP, TTL]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            sum = sum16(sum, &s.octets());
            sum = sum16(sum, &d.octets());
            sum += u64::from(PROTO_UDP) + u64::from(udp_len);
            V6_HEADERS
        }
    };
    let at = out.len();
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out.extend_from_slice(&udp_len.to_be_bytes());
    out.extend_from_slice(&[0, 0]);
    sum = sum16(sum, &out[at..at + 8]);
    // RFC 768: a computed zero is sent as all ones (zero means none).
    let check = match !fold(sum) {
        0 => 0xffff,
        c => c,
    };
    out[at + 6..at + 8].copy_from_slice(&check.to_be_bytes());
    headers
}

/// Adds `data`, as big-endian 16-bit words (an odd last byte padded with
/// zero), to the running sum `acc` (RFC 1071). Callers start every
/// piece at an even offset of the summed data.
fn sum16(acc: u64, data: &[u8]) -> u64 {
    let mut sum = acc;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

/// Folds a running sum into 16 bits, end-around carry (RFC 1071).
fn fold(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop leaves at most 16 bits.
    sum as u16
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::fs;
    use std::path::PathBuf;
    use std::sync::atomic::AtomicUsize;

    use pcap_file::pcap::PcapReader;

    use super::*;

    /// Echoes every input back on its component and sends a fixed RTP
    /// packet (sequence number counting up) every 20 ms.
    struct Echo {
        next: Instant,
        seq: u16,
        out: VecDeque<(Component, Vec<u8>)>,
    }

    impl Echo {
        fn new(start: Instant) -> Self {
            Echo {
                next: start,
                seq: 0,
                out: VecDeque::new(),
            }
        }
    }

    impl Endpoint for Echo {
        fn handle_input(&mut self, _now: Instant, c: Component, _src: SocketAddr, data: &[u8]) {
            self.out.push_back((c, data.to_vec()));
        }

        fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<Transmit> {
            let (component, data) = self.out.pop_front()?;
            buf[..data.len()].copy_from_slice(&data);
            Some(Transmit {
                component,
                len: data.len(),
            })
        }

        fn poll_timeout(&self) -> Option<Instant> {
            Some(self.next)
        }

        fn handle_timeout(&mut self, now: Instant) {
            while self.next <= now {
                self.next += Duration::from_millis(20);
                let mut p = vec![0x80, 0x00];
                p.extend_from_slice(&self.seq.to_be_bytes());
                p.extend_from_slice(&[0, 0, 0, 160, 0x12, 0x34, 0x56, 0x78]);
                p.extend_from_slice(&[0xd5; 160]);
                self.seq = self.seq.wrapping_add(1);
                self.out.push_back((Component::Rtp, p));
            }
        }
    }

    /// One packet of a pcap file, headers parsed.
    #[derive(Debug)]
    struct Parsed {
        ts: Duration,
        orig_len: u32,
        src: SocketAddr,
        dst: SocketAddr,
        payload: Vec<u8>,
        raw: Vec<u8>,
    }

    fn temp_path(name: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!(
            "mediarelay-capture-{}-{n}-{name}.pcap",
            std::process::id()
        ))
    }

    fn read_pcap(path: &Path) -> Vec<Parsed> {
        let bytes = fs::read(path).expect("read pcap");
        let mut r = PcapReader::new(&bytes[..]).expect("pcap header");
        assert_eq!(r.header().datalink, DataLink::RAW);
        assert_eq!(r.header().ts_resolution, TsResolution::NanoSecond);
        let mut out = Vec::new();
        while let Some(p) = r.next_packet() {
            let p = p.expect("packet");
            out.push(parse(p.timestamp, p.orig_len, &p.data));
        }
        out
    }

    fn parse(ts: Duration, orig_len: u32, d: &[u8]) -> Parsed {
        let (src_ip, dst_ip, l4): (IpAddr, IpAddr, usize) = match d[0] >> 4 {
            4 => {
                assert_eq!(d[0], 0x45);
                assert_eq!(d[8], TTL);
                assert_eq!(d[9], PROTO_UDP);
                assert_eq!(fold(sum16(0, &d[..20])), 0xffff, "IPv4 header checksum");
                let total = u16::from_be_bytes([d[2], d[3]]);
                assert_eq!(u32::from(total), orig_len);
                let s: [u8; 4] = d[12..16].try_into().expect("4");
                let t: [u8; 4] = d[16..20].try_into().expect("4");
                (s.into(), t.into(), 20)
            }
            6 => {
                assert_eq!(d[6], PROTO_UDP);
                assert_eq!(d[7], TTL);
                let plen = u16::from_be_bytes([d[4], d[5]]);
                assert_eq!(u32::from(plen) + 40, orig_len);
                let s: [u8; 16] = d[8..24].try_into().expect("16");
                let t: [u8; 16] = d[24..40].try_into().expect("16");
                (s.into(), t.into(), 40)
            }
            v => panic!("IP version {v}"),
        };
        let u = &d[l4..];
        let sport = u16::from_be_bytes([u[0], u[1]]);
        let dport = u16::from_be_bytes([u[2], u[3]]);
        let ulen = u16::from_be_bytes([u[4], u[5]]);
        assert_eq!(u32::from(ulen) + l4 as u32, orig_len);
        Parsed {
            ts,
            orig_len,
            src: SocketAddr::new(src_ip, sport),
            dst: SocketAddr::new(dst_ip, dport),
            payload: u[8..].to_vec(),
            raw: d.to_vec(),
        }
    }

    /// Verifies the UDP checksum of a complete packet (IPv4 or IPv6).
    fn udp_checksum_ok(p: &Parsed) -> bool {
        let d = &p.raw;
        let (mut sum, l4) = if d[0] >> 4 == 4 {
            (sum16(0, &d[12..20]), 20)
        } else {
            (sum16(0, &d[8..40]), 40)
        };
        let udp = &d[l4..];
        sum += u64::from(PROTO_UDP) + udp.len() as u64;
        fold(sum16(sum, udp)) == 0xffff
    }

    fn rtp_like(i: u32, len: usize) -> Vec<u8> {
        let mut p = vec![0x80, 0x08];
        p.extend_from_slice(&i.to_be_bytes());
        p.resize(len, (i % 251) as u8);
        p
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().expect("address")
    }

    /// Feeds `n` inputs from `remote` (every fourth on RTCP from its RTCP
    /// port), and after each drains the echo; returns the sent bytes in
    /// order: (input, echo) pairs.
    fn feed_echo<E: Endpoint>(
        ep: &mut E,
        start: Instant,
        n: u32,
        remote: SocketAddr,
        remote_rtcp: SocketAddr,
    ) -> Vec<(Instant, Component, Vec<u8>)> {
        let mut buf = [0u8; 2048];
        let mut fed = Vec::new();
        for i in 0..n {
            let now = start + Duration::from_millis(u64::from(i) * 20);
            let (c, src) = if i % 4 == 3 {
                (Component::Rtcp, remote_rtcp)
            } else {
                (Component::Rtp, remote)
            };
            let data = rtp_like(i, 50 + (i as usize % 7) * 31);
            ep.handle_input(now, c, src, &data);
            let t = ep.poll_transmit(now, &mut buf).expect("echo");
            assert_eq!(t.component, c);
            assert_eq!(&buf[..t.len], &data[..]);
            assert!(ep.poll_transmit(now, &mut buf).is_none());
            fed.push((now, c, data));
        }
        fed
    }

    #[test]
    fn inputs_and_transmits_round_trip_through_pcap() {
        let start = Instant::now();
        let local = addr("10.0.0.1:4000");
        let remote = addr("192.168.7.9:30000");
        let cfg = CaptureConfig::new(local, remote);
        assert_eq!(cfg.local_rtcp, addr("10.0.0.1:4001"));
        assert_eq!(cfg.remote_rtcp, addr("192.168.7.9:30001"));
        let (mut ep, reader) = capture(Echo::new(start + Duration::from_secs(3600)), cfg);
        let n = 40;
        let fed = feed_echo(&mut ep, start, n, cfg.remote, cfg.remote_rtcp);
        assert_eq!(reader.captured(), 2 * u64::from(n));
        assert_eq!(reader.pending(), 2 * n as usize);

        let path = temp_path("round-trip");
        let summary = reader.write_pcap(&path).expect("write");
        assert_eq!(
            summary,
            CaptureSummary {
                packets_written: 2 * u64::from(n),
                sent: u64::from(n),
                received: u64::from(n),
                dropped: 0,
            }
        );
        assert_eq!(reader.pending(), 0);
        let pkts = read_pcap(&path);
        let _ = fs::remove_file(&path);
        assert_eq!(pkts.len(), 2 * n as usize);
        let first_ts = pkts[0].ts;
        for (i, (now, c, data)) in fed.iter().enumerate() {
            let (rx, tx) = (&pkts[2 * i], &pkts[2 * i + 1]);
            let (ours, theirs) = match c {
                Component::Rtp => (cfg.local, cfg.remote),
                Component::Rtcp => (cfg.local_rtcp, cfg.remote_rtcp),
            };
            assert_eq!((rx.src, rx.dst), (theirs, ours), "received {i}");
            assert_eq!((tx.src, tx.dst), (ours, theirs), "sent {i}");
            for p in [rx, tx] {
                assert_eq!(&p.payload, data);
                assert_eq!(p.orig_len as usize, data.len() + V4_HEADERS);
                assert!(udp_checksum_ok(p), "UDP checksum of {i}");
                // Pcap times keep the instants' spacing, to the nanosecond.
                assert_eq!(p.ts - first_ts, *now - start);
            }
        }
        // The anchor puts the first packet near the wall clock.
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970");
        assert!(wall.abs_diff(first_ts) < Duration::from_secs(60));
    }

    #[test]
    fn timed_transmits_are_captured_as_sent() {
        let start = Instant::now();
        let cfg = CaptureConfig::new(addr("10.0.0.1:4000"), addr("10.0.0.2:5000"));
        let (mut ep, reader) = capture(Echo::new(start), cfg);
        let mut buf = [0u8; 2048];
        let mut now = start;
        let mut sent = 0;
        for _ in 0..25 {
            let due = ep.poll_timeout().expect("timer");
            now = now.max(due);
            ep.handle_timeout(now);
            while ep.poll_transmit(now, &mut buf).is_some() {
                sent += 1;
            }
            now += Duration::from_millis(20);
        }
        assert_eq!(sent, 25);
        let path = temp_path("timed");
        let summary = reader.write_pcap(&path).expect("write");
        let pkts = read_pcap(&path);
        let _ = fs::remove_file(&path);
        assert_eq!((summary.sent, summary.received), (25, 0));
        for (i, p) in pkts.iter().enumerate() {
            assert_eq!((p.src, p.dst), (cfg.local, cfg.remote));
            assert_eq!(u16::from_be_bytes([p.payload[2], p.payload[3]]), i as u16);
            assert_eq!(p.payload.len(), 172);
            assert!(udp_checksum_ok(p));
        }
    }

    #[test]
    fn ipv6_and_mapped_addresses() {
        let start = Instant::now();
        let cfg = CaptureConfig::new(addr("[2001:db8::1]:4000"), addr("[2001:db8::2]:6000"));
        let (mut ep, reader) = capture(Echo::new(start + Duration::from_secs(60)), cfg);
        let fed = feed_echo(&mut ep, start, 4, cfg.remote, cfg.remote_rtcp);
        // An IPv4 source on an IPv6 capture is written as IPv4-mapped IPv6.
        ep.handle_input(start, Component::Rtp, addr("10.1.1.1:7"), b"odd");
        let path = temp_path("v6");
        reader.write_pcap(&path).expect("write");
        let pkts = read_pcap(&path);
        let _ = fs::remove_file(&path);
        assert_eq!(pkts.len(), 9);
        for (i, (_, _, data)) in fed.iter().enumerate() {
            assert_eq!(pkts[2 * i].raw[0] >> 4, 6);
            assert_eq!(&pkts[2 * i + 1].payload, data);
            assert!(udp_checksum_ok(&pkts[2 * i]));
            assert!(udp_checksum_ok(&pkts[2 * i + 1]));
        }
        let odd = &pkts[8];
        assert_eq!(odd.src, addr("[::ffff:10.1.1.1]:7"));
        assert_eq!(odd.payload, b"odd");
        assert!(udp_checksum_ok(odd));

        // Mapped addresses on both sides are written as IPv4.
        let cfg = CaptureConfig::new(addr("[::ffff:10.0.0.1]:4000"), addr("10.0.0.2:5000"));
        let (mut ep, reader) = capture(Echo::new(start + Duration::from_secs(60)), cfg);
        ep.handle_input(start, Component::Rtp, cfg.remote, b"abc");
        let path = temp_path("mapped");
        reader.write_pcap(&path).expect("write");
        let pkts = read_pcap(&path);
        let _ = fs::remove_file(&path);
        assert_eq!(pkts[0].raw[0], 0x45);
        assert_eq!(pkts[0].dst, addr("10.0.0.1:4000"));
        assert!(udp_checksum_ok(&pkts[0]));
    }

    #[test]
    fn overflow_counts_drops_without_blocking() {
        let start = Instant::now();
        let cfg = CaptureConfig {
            capacity: 4,
            ..CaptureConfig::new(addr("10.0.0.1:4000"), addr("10.0.0.2:5000"))
        };
        let (mut ep, reader) = capture(Echo::new(start + Duration::from_secs(60)), cfg);
        // 10 inputs and 10 echoes with room for 4.
        let fed = feed_echo(&mut ep, start, 10, cfg.remote, cfg.remote_rtcp);
        assert_eq!(reader.captured(), 4);
        assert_eq!(reader.dropped(), 16);
        let path = temp_path("overflow");
        let summary = reader.write_pcap(&path).expect("write");
        assert_eq!(summary.packets_written, 4);
        assert_eq!(summary.dropped, 16);
        let pkts = read_pcap(&path);
        let _ = fs::remove_file(&path);
        // The first four were kept: inputs 0 and 1 and their echoes.
        assert_eq!(pkts.len(), 4);
        assert_eq!(pkts[0].payload, fed[0].2);
        assert_eq!(pkts[3].payload, fed[1].2);

        // The records went back: capturing resumes.
        ep.handle_input(start, Component::Rtp, cfg.remote, b"again");
        assert_eq!(reader.captured(), 5);
        assert_eq!(reader.dropped(), 16);
        assert_eq!(reader.pending(), 1);
    }

    #[test]
    fn streaming_sink_appends_across_drains() {
        let start = Instant::now();
        let cfg = CaptureConfig {
            capacity: 8,
            ..CaptureConfig::new(addr("10.0.0.1:4000"), addr("10.0.0.2:5000"))
        };
        let (mut ep, reader) = capture(Echo::new(start + Duration::from_secs(60)), cfg);
        let path = temp_path("stream");
        let mut sink = reader.start_file(&path).expect("create");
        let mut total = 0;
        for round in 0..5u32 {
            let t = start + Duration::from_secs(u64::from(round));
            let _ = feed_echo(&mut ep, t, 3, cfg.remote, cfg.remote_rtcp);
            total += sink.drain(&reader).expect("drain");
        }
        assert_eq!(total, 30);
        assert_eq!(sink.summary().packets_written, 30);
        let summary = sink.finish().expect("finish");
        assert_eq!(
            (summary.sent, summary.received, summary.dropped),
            (15, 15, 0)
        );
        assert_eq!(reader.dropped(), 0);
        let pkts = read_pcap(&path);
        let _ = fs::remove_file(&path);
        assert_eq!(pkts.len(), 30);
        assert!(pkts.windows(2).all(|w| w[0].ts <= w[1].ts));
    }

    #[test]
    fn snaplen_truncates_but_keeps_lengths_and_checksum() {
        let start = Instant::now();
        let cfg = CaptureConfig {
            snaplen: 16,
            ..CaptureConfig::new(addr("10.0.0.1:4000"), addr("10.0.0.2:5000"))
        };
        let (mut ep, reader) = capture(Echo::new(start + Duration::from_secs(60)), cfg);
        let data = rtp_like(9, 101);
        ep.handle_input(start, Component::Rtp, cfg.remote, &data);
        let mut sink = reader.start(Vec::new()).expect("header");
        assert_eq!(sink.drain(&reader).expect("drain"), 1);
        let bytes = sink.into_writer().expect("flush");
        let mut r = PcapReader::new(&bytes[..]).expect("pcap");
        let p = r.next_packet().expect("one").expect("packet");
        assert_eq!(p.orig_len as usize, 101 + V4_HEADERS);
        assert_eq!(p.data.len(), 16 + V4_HEADERS);
        let parsed = parse(p.timestamp, p.orig_len, &p.data);
        assert_eq!(parsed.payload, &data[..16]);
        // The checksum is that of the whole datagram.
        let mut whole = parsed.raw.clone();
        whole.truncate(V4_HEADERS);
        whole.extend_from_slice(&data);
        let full = Parsed {
            raw: whole,
            ..parsed
        };
        assert!(udp_checksum_ok(&full));
    }

    #[test]
    fn checksum_helpers_match_rfc_1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(sum16(0, &d)), 0xddf2);
        assert_eq!(sum16(0, &[0xab]), 0xab00);
        assert_eq!(rtcp_of(addr("1.2.3.4:65535")).port(), 65535);
    }

    #[test]
    fn wrapper_and_reader_are_send() {
        fn send<T: Send>() {}
        fn sync<T: Sync>() {}
        send::<Captured<Echo>>();
        send::<CaptureReader>();
        sync::<CaptureReader>();
    }
}
