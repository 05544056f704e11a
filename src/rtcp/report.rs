//! Report generation (RFC 3550 §6.4, §6.1): one compound packet from the
//! receive statistics of the sources we hear.
//!
//! The compound is an SR when the caller passes sender info (we sent RTP
//! since the previous report) or an RR otherwise, with one report block per
//! source that delivered packets since its previous block; more than 31
//! such sources continue in additional RR packets (§6.4.2). An SDES packet
//! with our CNAME closes the compound (§6.1).
//!
//! The wall-clock NTP time of an SR comes from the caller, inside
//! [`SenderInfo`]: nothing here reads a clock.

use std::time::Instant;

use super::compound::CompoundWriter;
use super::error::RtcpWriteError;
use super::header::{HEADER_LEN, MAX_COUNT, word_align};
use super::packet::RtcpPacket;
use super::report_block::{REPORT_BLOCK_LEN, ReportBlock, ReportBlocks};
use super::rr::ReceiverReport;
use super::sdes::{SdesChunk, SdesItem, SourceDescription};
use super::sr::{SENDER_INFO_LEN, SenderInfo, SenderReport};
use crate::rtp::Ssrc;
use crate::rtp::stats::ReceiveStats;

/// Who is reporting: our SSRC, CNAME and, if we sent RTP, what we sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSource<'a> {
    /// Our SSRC.
    pub ssrc: Ssrc,
    /// Our CNAME (RFC 3550 §6.5.1), at most 255 bytes.
    pub cname: &'a [u8],
    /// `Some` to send an SR: the NTP time of this report (from the caller's
    /// wall clock), the matching RTP timestamp, and our send counters.
    pub sender_info: Option<SenderInfo>,
}

impl LocalSource<'_> {
    /// Length of the compound reporting on `reportable` sources.
    pub fn report_len(&self, reportable: usize) -> usize {
        let first_blocks = reportable.min(MAX_COUNT);
        let first = HEADER_LEN
            + 4
            + self.sender_info.map_or(0, |_| SENDER_INFO_LEN)
            + first_blocks * REPORT_BLOCK_LEN;
        // Each additional RR: header, SSRC, up to 31 blocks.
        let more = reportable - first_blocks;
        let extra = more.div_ceil(MAX_COUNT) * (HEADER_LEN + 4) + more * REPORT_BLOCK_LEN;
        let sdes = HEADER_LEN + 4 + word_align(2 + self.cname.len() + 1);
        first + extra + sdes
    }
}

/// Writes our report on `sources` into `out` (RFC 3550 §6.4) and returns
/// its length.
///
/// Sources that are on probation or delivered nothing since their last
/// block are left out (§6.4); each included source's reporting interval is
/// closed ([`ReceiveStats::report_block`]). On error nothing was written and
/// no interval was closed.
pub fn write_report(
    out: &mut [u8],
    now: Instant,
    local: &LocalSource<'_>,
    sources: &mut [ReceiveStats],
) -> Result<usize, RtcpWriteError> {
    if local.cname.len() > 255 {
        return Err(RtcpWriteError::TextTooLong(local.cname.len()));
    }
    let reportable = |s: &&mut ReceiveStats| s.is_valid() && s.received_in_interval() > 0;
    let count = sources.iter_mut().filter(reportable).count();
    let needed = local.report_len(count);
    if out.len() < needed {
        return Err(RtcpWriteError::BufferTooSmall {
            needed,
            available: out.len(),
        });
    }
    let mut w = CompoundWriter::new(out);
    let mut pending = sources.iter_mut().filter(reportable);
    let mut blocks = [ReportBlock::default(); MAX_COUNT];
    let mut first = true;
    loop {
        let mut n = 0;
        for slot in &mut blocks {
            let Some(block) = pending.by_ref().find_map(|s| s.report_block(now)) else {
                break;
            };
            *slot = block;
            n += 1;
        }
        let report_blocks = ReportBlocks::new(blocks.get(..n).unwrap_or_default());
        let rr = RtcpPacket::ReceiverReport(ReceiverReport {
            ssrc: local.ssrc,
            report_blocks,
            profile_extension: &[],
        });
        let packet = match local.sender_info {
            Some(sender_info) if first => RtcpPacket::SenderReport(SenderReport {
                ssrc: local.ssrc,
                sender_info,
                report_blocks,
                profile_extension: &[],
            }),
            _ if first || n > 0 => rr,
            _ => break,
        };
        w.push(&packet)?;
        first = false;
        if n < MAX_COUNT {
            break;
        }
    }
    let items = [SdesItem::Cname(local.cname)];
    let chunks = [SdesChunk::new(local.ssrc, &items)];
    w.push(&RtcpPacket::SourceDescription(SourceDescription::new(
        &chunks,
    )))?;
    Ok(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtcp::{Compound, NtpShort, NtpTime, validate_strict};
    use crate::rtp::stats::ClockRate;
    use crate::rtp::{PayloadType, RtpHeader, RtpPacket};
    use std::time::Duration;

    fn feed(s: &mut ReceiveStats, now: Instant, seq: u16) {
        let mut buf = [0u8; 172];
        RtpHeader::new(PayloadType::PCMU, seq, 160 * u32::from(seq), s.ssrc())
            .write(&[0; 160], &mut buf)
            .unwrap();
        s.handle_packet(now, &RtpPacket::parse(&buf).unwrap());
    }

    /// A source that delivered seq 0..=n minus `drop`.
    fn source(ssrc: u32, t0: Instant, n: u16, drop: &[u16]) -> ReceiveStats {
        let mut s = ReceiveStats::new(Ssrc(ssrc), ClockRate::G711);
        for seq in (0..=n).filter(|q| !drop.contains(q)) {
            feed(&mut s, t0 + Duration::from_millis(20) * u32::from(seq), seq);
        }
        s
    }

    #[test]
    fn sr_with_blocks_and_cname() {
        let t0 = Instant::now();
        let mut sources = [
            source(1, t0, 20, &[5]),
            source(2, t0, 10, &[]),
            // On probation: one packet only.
            source(3, t0, 0, &[]),
        ];
        let info = SenderInfo {
            ntp: NtpTime(0xe8f3_0000_0000_0000),
            rtp_timestamp: 8000,
            packet_count: 50,
            octet_count: 8000,
        };
        let local = LocalSource {
            ssrc: Ssrc(0xabcd),
            cname: b"relay@example",
            sender_info: Some(info),
        };
        let mut out = [0u8; 512];
        let n = write_report(&mut out, t0 + Duration::from_secs(1), &local, &mut sources).unwrap();
        assert_eq!(n, local.report_len(2));
        assert_eq!(validate_strict(&out[..n]), Ok(()));
        let packets: Vec<RtcpPacket> = Compound::new(&out[..n]).collect::<Result<_, _>>().unwrap();
        assert_eq!(packets.len(), 2);
        let RtcpPacket::SenderReport(sr) = packets[0] else {
            panic!("expected SR, got {:?}", packets[0]);
        };
        assert_eq!(sr.ssrc, Ssrc(0xabcd));
        assert_eq!(sr.sender_info, info);
        let blocks: Vec<ReportBlock> = sr.report_blocks.iter().collect();
        assert_eq!(blocks.len(), 2);
        // Source 1: base 1 (0 was probation), highest 20, 5 lost of 20.
        assert_eq!(blocks[0].ssrc, Ssrc(1));
        assert_eq!(blocks[0].highest_seq, 20);
        assert_eq!(blocks[0].cumulative_lost, 1);
        assert_eq!(blocks[0].fraction_lost, (256 / 20) as u8);
        assert_eq!((blocks[1].ssrc, blocks[1].cumulative_lost), (Ssrc(2), 0));
        let RtcpPacket::SourceDescription(sdes) = packets[1] else {
            panic!("expected SDES, got {:?}", packets[1]);
        };
        assert_eq!(sdes.cname(Ssrc(0xabcd)), Some(&b"relay@example"[..]));
        // The intervals were closed: a second report has no blocks.
        assert_eq!(sources[0].received_in_interval(), 0);
        let n = write_report(&mut out, t0 + Duration::from_secs(2), &local, &mut sources).unwrap();
        let Some(Ok(RtcpPacket::SenderReport(sr))) = Compound::new(&out[..n]).next() else {
            panic!("expected SR");
        };
        assert!(sr.report_blocks.is_empty());
    }

    #[test]
    fn rr_when_not_sending_and_more_than_31_sources() {
        let t0 = Instant::now();
        let mut sources: Vec<ReceiveStats> = (0..40).map(|i| source(i, t0, 3, &[])).collect();
        let local = LocalSource {
            ssrc: Ssrc(7),
            cname: b"c",
            sender_info: None,
        };
        let mut out = vec![0u8; local.report_len(40)];
        let n = write_report(&mut out, t0, &local, &mut sources).unwrap();
        assert_eq!(n, out.len());
        let packets: Vec<RtcpPacket> = Compound::new(&out).collect::<Result<_, _>>().unwrap();
        let counts: Vec<(u8, usize)> = packets
            .iter()
            .map(|p| match p {
                RtcpPacket::ReceiverReport(rr) => (201, rr.report_blocks.len()),
                other => (other.packet_type().0, 0),
            })
            .collect();
        assert_eq!(counts, [(201, 31), (201, 9), (202, 0)]);
        assert_eq!(validate_strict(&out), Ok(()));
    }

    #[test]
    fn exactly_31_sources_need_no_extra_rr() {
        let t0 = Instant::now();
        let mut sources: Vec<ReceiveStats> = (0..31).map(|i| source(i, t0, 2, &[])).collect();
        let local = LocalSource {
            ssrc: Ssrc(7),
            cname: b"c",
            sender_info: None,
        };
        let mut out = [0u8; 1024];
        let n = write_report(&mut out, t0, &local, &mut sources).unwrap();
        assert_eq!(n, local.report_len(31));
        assert_eq!(Compound::new(&out[..n]).count(), 2);
    }

    #[test]
    fn small_buffer_writes_nothing_and_keeps_intervals() {
        let t0 = Instant::now();
        let mut sources = [source(1, t0, 5, &[])];
        let local = LocalSource {
            ssrc: Ssrc(7),
            cname: b"c",
            sender_info: None,
        };
        let needed = local.report_len(1);
        let mut out = vec![0u8; needed - 1];
        assert_eq!(
            write_report(&mut out, t0, &local, &mut sources),
            Err(RtcpWriteError::BufferTooSmall {
                needed,
                available: needed - 1
            })
        );
        assert_eq!(sources[0].received_in_interval(), 5);
        let long = [b'x'; 256];
        let bad = LocalSource {
            cname: &long,
            ..local
        };
        assert_eq!(
            write_report(&mut [0u8; 1024], t0, &bad, &mut sources),
            Err(RtcpWriteError::TextTooLong(256))
        );
    }

    #[test]
    fn rtt_through_sr_and_rr() {
        // We (SSRC 7) send an SR at NTP 100.0 s; the peer (SSRC 1) receives
        // it, and reports 250 ms later; its RR reaches us at NTP 100.4 s:
        // RTT = 0.4 - 0.25 = 150 ms.
        let t0 = Instant::now();
        let sr_ntp = NtpTime(100 << 32);
        let mut ours = [source(7, t0, 3, &[])];
        ours[0].handle_sender_report(t0, sr_ntp);
        let peer = LocalSource {
            ssrc: Ssrc(1),
            cname: b"peer",
            sender_info: None,
        };
        let mut out = [0u8; 256];
        let n = write_report(&mut out, t0 + Duration::from_millis(250), &peer, &mut ours).unwrap();
        let Some(Ok(RtcpPacket::ReceiverReport(rr))) = Compound::new(&out[..n]).next() else {
            panic!("expected RR");
        };
        let block = rr.report_blocks.iter().next().unwrap();
        assert_eq!(block.ssrc, Ssrc(7));
        assert_eq!(block.lsr, NtpShort(100 << 16));
        assert_eq!(block.dlsr, NtpShort(0x4000));
        let arrival = NtpTime((100 << 32) | ((4 << 32) / 10));
        let rtt = block.round_trip_time(arrival).unwrap();
        assert!(
            rtt.abs_diff(Duration::from_millis(150)) < Duration::from_micros(100),
            "{rtt:?}"
        );
    }
}
