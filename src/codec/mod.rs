//! Audio codecs: G.711 µ-law / A-law (ITU-T G.711) and PCMU <-> PCMA
//! transcoding. Sans-IO, allocation-free, table driven.

pub mod g711;
pub mod plc;

pub use g711::G711;

/// An audio codec as a media session uses it: PCM in, payload out, and
/// back. Implementations keep whatever state they need (G.711 has none) and
/// never allocate per frame. More codecs plug in here.
pub trait AudioCodec: Send + std::fmt::Debug {
    /// The encoding name (RFC 3551 §6 / `a=rtpmap`).
    fn name(&self) -> &'static str;
    /// RTP clock rate in Hz.
    fn clock_rate(&self) -> u32;
    /// Samples of PCM in a payload of `payload_len` bytes.
    fn samples_in(&self, payload_len: usize) -> usize;
    /// Payload bytes for `samples` samples of PCM.
    fn payload_len(&self, samples: usize) -> usize;
    /// Encodes `pcm` into `out`; returns the bytes written (at most
    /// `out.len()`).
    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize;
    /// Decodes `payload` into `out`; returns the samples written (at most
    /// `out.len()`).
    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> usize;
    /// The payload re-encoded by this codec when `from` encoded it, when
    /// that can be done without going through PCM (G.711 µ-law <-> A-law:
    /// ITU-T G.711 Tables 3 and 4); `None` otherwise.
    fn transcode_from(&self, _from: &dyn AudioCodec, _payload: &mut [u8]) -> Option<()> {
        None
    }
}

impl AudioCodec for G711 {
    fn name(&self) -> &'static str {
        match self {
            G711::Pcmu => "PCMU",
            G711::Pcma => "PCMA",
        }
    }

    fn clock_rate(&self) -> u32 {
        8000
    }

    fn samples_in(&self, payload_len: usize) -> usize {
        payload_len
    }

    fn payload_len(&self, samples: usize) -> usize {
        samples
    }

    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> usize {
        self.encode_into(pcm, out)
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> usize {
        self.decode_into(payload, out)
    }

    fn transcode_from(&self, from: &dyn AudioCodec, payload: &mut [u8]) -> Option<()> {
        match (from.name(), *self) {
            ("PCMU", G711::Pcmu) | ("PCMA", G711::Pcma) => Some(()),
            ("PCMU", G711::Pcma) => {
                g711::transcode_in_place(G711::Pcmu, payload);
                Some(())
            }
            ("PCMA", G711::Pcmu) => {
                g711::transcode_in_place(G711::Pcma, payload);
                Some(())
            }
            _ => None,
        }
    }
}
