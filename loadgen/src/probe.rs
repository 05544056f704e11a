//! The probe: what each RTP payload the generator sends carries, so the
//! receiving end can account for every packet without shared state.
//!
//! Layout (network byte order), at the start of the RTP payload; the rest
//! of the payload is padding up to the configured size (160 bytes of a
//! 172-byte G.711 20 ms packet by default):
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `MRLG` |
//! | 4 | version (1) |
//! | 5..8 | reserved, zero |
//! | 8..16 | run id |
//! | 16..20 | stream id |
//! | 20..28 | extended sequence number (no 16-bit wrap) |
//! | 28..36 | scheduled send time, run-clock ns |
//! | 36..44 | actual send time, run-clock ns |

/// Bytes the probe takes at the start of a payload.
pub const PROBE_LEN: usize = 44;
const MAGIC: [u8; 4] = *b"MRLG";
const VERSION: u8 = 1;

/// One packet's probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Probe {
    /// The run it belongs to (packets of another run are not counted).
    pub run: u64,
    /// The stream (call direction) within the run.
    pub stream: u32,
    /// Extended sequence number: 0, 1, 2, ... for the stream's life.
    pub seq: u64,
    /// When the schedule said to send it (run clock, ns).
    pub scheduled_ns: u64,
    /// When it was handed to the kernel (run clock, ns).
    pub sent_ns: u64,
}

/// A payload that is not a probe of this format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// Shorter than [`PROBE_LEN`].
    #[error("payload of {0} bytes is shorter than a probe")]
    Short(usize),
    /// The magic is not `MRLG`.
    #[error("not a loadgen probe")]
    Magic,
    /// A version this build does not read.
    #[error("probe version {0} is not supported")]
    Version(u8),
}

impl Probe {
    /// Writes the probe into the start of `payload`, zero-filling the rest;
    /// `Short` when the payload cannot hold it.
    pub fn write(&self, payload: &mut [u8]) -> Result<(), ProbeError> {
        if payload.len() < PROBE_LEN {
            return Err(ProbeError::Short(payload.len()));
        }
        payload.fill(0);
        payload[0..4].copy_from_slice(&MAGIC);
        payload[4] = VERSION;
        payload[8..16].copy_from_slice(&self.run.to_be_bytes());
        payload[16..20].copy_from_slice(&self.stream.to_be_bytes());
        payload[20..28].copy_from_slice(&self.seq.to_be_bytes());
        payload[28..36].copy_from_slice(&self.scheduled_ns.to_be_bytes());
        payload[36..44].copy_from_slice(&self.sent_ns.to_be_bytes());
        Ok(())
    }

    /// Stamps the actual send time into a payload already written.
    pub fn stamp_sent(payload: &mut [u8], sent_ns: u64) -> Result<(), ProbeError> {
        if payload.len() < PROBE_LEN {
            return Err(ProbeError::Short(payload.len()));
        }
        payload[36..44].copy_from_slice(&sent_ns.to_be_bytes());
        Ok(())
    }

    /// Reads the probe at the start of `payload`.
    pub fn read(payload: &[u8]) -> Result<Probe, ProbeError> {
        if payload.len() < PROBE_LEN {
            return Err(ProbeError::Short(payload.len()));
        }
        if payload[0..4] != MAGIC {
            return Err(ProbeError::Magic);
        }
        if payload[4] != VERSION {
            return Err(ProbeError::Version(payload[4]));
        }
        let u64_at = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&payload[i..i + 8]);
            u64::from_be_bytes(b)
        };
        let mut s = [0u8; 4];
        s.copy_from_slice(&payload[16..20]);
        Ok(Probe {
            run: u64_at(8),
            stream: u32::from_be_bytes(s),
            seq: u64_at(20),
            scheduled_ns: u64_at(28),
            sent_ns: u64_at(36),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let p = Probe {
            run: 0xdead_beef_0102,
            stream: 77,
            seq: (1 << 40) + 3,
            scheduled_ns: 123_456_789,
            sent_ns: 123_457_000,
        };
        let mut buf = [0xaau8; 160];
        p.write(&mut buf).unwrap();
        assert_eq!(Probe::read(&buf), Ok(p));
        Probe::stamp_sent(&mut buf, 9).unwrap();
        assert_eq!(Probe::read(&buf).unwrap().sent_ns, 9);
        assert!(buf[PROBE_LEN..].iter().all(|&b| b == 0));
        assert_eq!(Probe::read(&buf[..10]), Err(ProbeError::Short(10)));
        buf[0] = b'X';
        assert_eq!(Probe::read(&buf), Err(ProbeError::Magic));
        buf[0] = b'M';
        buf[4] = 9;
        assert_eq!(Probe::read(&buf), Err(ProbeError::Version(9)));
        assert_eq!(p.write(&mut [0u8; 4]), Err(ProbeError::Short(4)));
    }
}
