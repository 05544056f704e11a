//! The SRTP and SRTCP packet transforms (RFC 3711 §3.3, §3.4) of one
//! direction under one master key, with per-SSRC state.
//!
//! [`Srtp`] protects (sender side) or unprotects (receiver side) packets in
//! place. A context is used for one direction only: a relay leg that both
//! sends and receives SRTP holds two, one per master key (RFC 4568 §6.1:
//! each side of a call sends with its own key).
//!
//! SRTP packet (RFC 3711 §3.1), the SRTCP trailer (§3.4):
//!
//! ```text
//! | RTP header, CSRCs, extension | encrypted payload (+padding) | MKI? | tag |
//! | RTCP header, SSRC | encrypted rest of the compound | E | SRTCP index | MKI? | tag |
//! ```

use hmac::Mac;

use super::kdf::{Cipher, SessionKeys};
use super::replay::{self, ReplayWindow};
use super::{MasterKey, Mki, Suite};
use super::{aead, aes_cm, f8};
use crate::rtp::Ssrc;

/// Most SSRCs whose state one context keeps; a packet from one more is
/// [`SrtpError::TooManySsrcs`] (see [`Srtp::remove_ssrc`]).
pub const MAX_SSRCS: usize = 32;

/// Size of the replay window, in packets, for SRTP and SRTCP alike
/// (RFC 3711 §3.3.2 requires at least 64).
pub const REPLAY_WINDOW: usize = replay::WINDOW as usize;

/// Longest packet, in bytes, that the transforms accept (the input length:
/// plain for `protect_*`, protected for `unprotect_*`). A UDP datagram is
/// shorter, and the keystream of one packet stays far below its 2^16
/// blocks (RFC 3711 §4.1.1).
pub const MAX_PACKET_LEN: usize = 65_535;

/// Fixed RTP header (RFC 3550 §5.1).
const RTP_HEADER_LEN: usize = 12;
/// RTCP header up to and including the first SSRC: left unencrypted
/// (RFC 3711 §3.4).
const RTCP_HEADER_LEN: usize = 8;
/// E flag and 31-bit SRTCP index (RFC 3711 §3.4).
const SRTCP_INDEX_LEN: usize = 4;
/// The E flag in the SRTCP index word.
const E_FLAG: u32 = 1 << 31;
/// Highest SRTCP index (31 bits, RFC 3711 §3.4).
const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;

/// Why a packet was not protected or unprotected. The buffer is unchanged
/// after every error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SrtpError {
    /// Shorter than the header plus trailer the transform needs.
    #[error("packet of {len} bytes is too short, need at least {min}")]
    TooShort {
        /// Packet length.
        len: usize,
        /// Least length accepted.
        min: usize,
    },
    /// Longer than [`MAX_PACKET_LEN`].
    #[error("packet of {len} bytes is longer than {MAX_PACKET_LEN}")]
    TooLong {
        /// Packet length.
        len: usize,
    },
    /// Not an RTP packet: version other than 2, or the CSRC list or header
    /// extension (RFC 3550 §5.1, §5.3.1) runs past the end.
    #[error("not an RTP packet (version or header length)")]
    NotRtp,
    /// Not an RTCP packet: version other than 2, or a packet type outside
    /// 192..=223 (RFC 5761 §4).
    #[error("not an RTCP packet (version or packet type)")]
    NotRtcp,
    /// The authentication tag does not match (RFC 3711 §3.3 step 5): wrong
    /// key, or the packet was altered.
    #[error("SRTP authentication failed")]
    AuthFailed,
    /// The packet index was received (or, when protecting, sent) before, or
    /// is older than the replay window (RFC 3711 §3.3.2).
    #[error("replayed or too old: SSRC {ssrc:#010x} index {index}")]
    Replay {
        /// SSRC of the packet.
        ssrc: u32,
        /// Its SRTP packet index (48 bits) or SRTCP index (31 bits).
        index: u64,
    },
    /// `len` exceeds the buffer, or the buffer has no room for the trailer
    /// that protecting adds.
    #[error("buffer of {available} bytes, need {needed}")]
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Length of the buffer.
        available: usize,
    },
    /// The packet's SSRC would be one more than [`MAX_SSRCS`].
    #[error("more than {MAX_SSRCS} SSRCs in one SRTP context")]
    TooManySsrcs {
        /// The SSRC refused.
        ssrc: u32,
    },
    /// The MKI in the packet is not this context's (RFC 3711 §3.3 step 1).
    #[error("MKI of the packet does not match")]
    WrongMki,
    /// The master key or salt given to [`Srtp::new`] does not have the
    /// suite's length ([`Suite::key_len`], [`Suite::salt_len`]).
    #[error("master key or salt length does not fit {suite}")]
    KeyLength {
        /// The suite.
        suite: Suite,
    },
    /// The master key has protected its last packet for this SSRC: the SRTP
    /// rollover counter or the SRTCP index would wrap (RFC 3711 §9.2).
    #[error("master key exhausted for SSRC {ssrc:#010x}")]
    KeyExhausted {
        /// The SSRC.
        ssrc: u32,
    },
}

/// One direction of SRTP and SRTCP under one master key (RFC 3711 §3.2.1
/// cryptographic context), with the per-SSRC state: SRTP rollover counter
/// and highest sequence number, SRTCP index, replay windows.
///
/// Protecting follows the rollover counter from the sequence numbers it is
/// given (RFC 3711 Appendix A, as a receiver would), not by counting, so a
/// relay can re-encrypt packets numbered by their original sender. It
/// refuses to reuse an index (RFC 3711 §9.1: a repeated index would repeat
/// the keystream), like libsrtp's default.
///
/// `Debug` does not print keys.
#[derive(Clone)]
pub struct Srtp {
    suite: Suite,
    mki: Option<Mki>,
    /// MKI wire bytes and length (0 without MKI).
    mki_wire: ([u8; 4], usize),
    rtp_keys: SessionKeys,
    rtcp_keys: SessionKeys,
    streams: Vec<Stream>,
}

/// State of one SSRC.
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    /// SRTP: highest index (`ROC * 2^16 + s_l`) and replay window; `None`
    /// before the first RTP packet.
    rtp: Option<ReplayWindow>,
    /// SRTCP receiver: highest index and replay window.
    rtcp_rx: Option<ReplayWindow>,
    /// SRTCP sender: the next index to send (RFC 3711 §3.4: starts at 0).
    rtcp_tx: u32,
}

impl Stream {
    fn new(ssrc: u32) -> Self {
        Stream {
            ssrc,
            rtp: None,
            rtcp_rx: None,
            rtcp_tx: 0,
        }
    }
}

impl Srtp {
    /// A context for `suite` under `key`, with `mki` written into (or
    /// required in) every packet. Derives the session keys (RFC 3711 §4.3,
    /// RFC 6188 §4, RFC 7714 §11; key derivation rate 0). An `mki` outside
    /// [`Mki::new`]'s range is clamped as [`Mki::to_wire`] says.
    /// [`SrtpError::KeyLength`] when `key` does not have `suite`'s key and
    /// salt lengths ([`MasterKey::fits`]).
    pub fn new(suite: Suite, key: &MasterKey, mki: Option<Mki>) -> Result<Srtp, SrtpError> {
        let keys = SessionKeys::rtp(suite, key).zip(SessionKeys::rtcp(suite, key));
        let Some((rtp_keys, rtcp_keys)) = keys else {
            return Err(SrtpError::KeyLength { suite });
        };
        Ok(Srtp::with_session_keys(suite, mki, rtp_keys, rtcp_keys))
    }

    /// A context with session keys made elsewhere (derived, or given
    /// directly by a test vector).
    fn with_session_keys(
        suite: Suite,
        mki: Option<Mki>,
        rtp_keys: SessionKeys,
        rtcp_keys: SessionKeys,
    ) -> Srtp {
        let mki = mki.map(|m| {
            let (bytes, len) = m.to_wire();
            let mut be = [0u8; 4];
            be[4 - len..].copy_from_slice(&bytes[..len]);
            Mki {
                value: u32::from_be_bytes(be),
                // `len` is 1..=4 here.
                len: len as u8,
            }
        });
        Srtp {
            suite,
            mki,
            mki_wire: mki.map_or(([0; 4], 0), Mki::to_wire),
            rtp_keys,
            rtcp_keys,
            streams: Vec::new(),
        }
    }

    /// The crypto suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The MKI, as written to the wire (after clamping).
    pub fn mki(&self) -> Option<Mki> {
        self.mki
    }

    /// Number of SSRCs with state in this context.
    pub fn ssrc_count(&self) -> usize {
        self.streams.len()
    }

    /// Highest SRTP packet index seen for `ssrc` (`ROC * 2^16 + SEQ`,
    /// RFC 3711 §3.3.1), if an RTP packet of it was processed.
    pub fn rtp_index(&self, ssrc: Ssrc) -> Option<u64> {
        let i = self.find(ssrc.0)?;
        self.streams[i].rtp.map(|w| w.top())
    }

    /// Forgets the state of `ssrc` (after an RTCP BYE, or a timeout), making
    /// room for another. Returns whether it was known. A later packet of the
    /// same SSRC starts over (rollover counter 0, SRTCP index 0), which
    /// reuses keystream when protecting: remove only SSRCs that are gone.
    pub fn remove_ssrc(&mut self, ssrc: Ssrc) -> bool {
        match self.find(ssrc.0) {
            Some(i) => {
                self.streams.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Protects the RTP packet `buf[..len]` in place (RFC 3711 §3.3,
    /// RFC 7714 §8): encrypts the payload after the header, CSRCs and
    /// header extension (padding included), appends the MKI if any and the
    /// authentication tag (for AES-GCM: the tag, then the MKI). `buf` needs
    /// room for [`MAX_OVERHEAD`](super::MAX_OVERHEAD) more bytes (exactly:
    /// MKI length + the suite's SRTP tag length). Returns the SRTP packet's
    /// length.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        check_len(buf, len)?;
        let header_len = rtp_header_len(&buf[..len])?;
        let (mki, mki_len) = self.mki_wire;
        let tag_len = self.suite.rtp_tag_len();
        let out_len = len + mki_len + tag_len;
        if out_len > buf.len() {
            return Err(SrtpError::BufferTooSmall {
                needed: out_len,
                available: buf.len(),
            });
        }
        let (ssrc, seq) = rtp_ssrc_seq(buf);
        let slot = self.slot(ssrc)?;
        let index = self.rtp_packet_index(slot, ssrc, seq)?;

        match &self.rtp_keys {
            SessionKeys::Hmac { cipher, salt, auth } => {
                // RFC 3711 §3.3 step 4: encrypt the payload.
                rtp_keystream(cipher, salt, &mut buf[..len], header_len, ssrc, index);
                // §3.1: the MKI follows the payload and is not
                // authenticated.
                buf[len..len + mki_len].copy_from_slice(&mki[..mki_len]);
                // §4.2: tag = HMAC(k_a, header || encrypted payload || ROC).
                let mut mac = auth.clone();
                mac.update(&buf[..len]);
                mac.update(&rollover_counter(index).to_be_bytes());
                let tag = mac.finalize().into_bytes();
                buf[len + mki_len..out_len].copy_from_slice(&tag[..tag_len]);
            }
            SessionKeys::Aead { gcm, salt } => {
                // RFC 7714 §8.1 IV, §8.2: the header is the AAD, the
                // payload the plaintext; the tag follows the ciphertext,
                // the MKI the tag.
                let iv = aead::rtp_iv(salt, ssrc, index);
                let (aad, payload) = buf.split_at_mut(header_len);
                let tag = gcm
                    .seal(&iv, aad, &mut payload[..len - header_len])
                    .ok_or(SrtpError::TooLong { len })?;
                buf[len..len + tag_len].copy_from_slice(&tag);
                buf[len + tag_len..out_len].copy_from_slice(&mki[..mki_len]);
            }
        }

        let window = advance(self.streams_rtp(slot), index);
        self.stream_mut(slot, ssrc).rtp = Some(window);
        Ok(out_len)
    }

    /// Unprotects the SRTP packet `buf[..len]` in place (RFC 3711 §3.3,
    /// RFC 7714 §8): checks the MKI, the replay window and the
    /// authentication tag, then decrypts. Returns the plain RTP packet's
    /// length. State changes only when the packet authenticates.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        check_len(buf, len)?;
        let (mki, mki_len) = self.mki_wire;
        let tag_len = self.suite.rtp_tag_len();
        let min = RTP_HEADER_LEN + mki_len + tag_len;
        if len < min {
            return Err(SrtpError::TooShort { len, min });
        }
        let body_len = len - mki_len - tag_len;
        let header_len = rtp_header_len(&buf[..body_len])?;
        // Where the MKI and the tag are: MKI then tag (RFC 3711 §3.1), or
        // for AES-GCM the tag then the MKI (RFC 7714 §8).
        let (mki_at, tag_at) = match self.rtp_keys {
            SessionKeys::Hmac { .. } => (body_len, body_len + mki_len),
            SessionKeys::Aead { .. } => (body_len + tag_len, body_len),
        };
        // RFC 3711 §3.3 step 1: the MKI selects the master key; this context
        // has one.
        if buf[mki_at..mki_at + mki_len] != mki[..mki_len] {
            return Err(SrtpError::WrongMki);
        }
        let (ssrc, seq) = rtp_ssrc_seq(buf);
        let slot = self.slot(ssrc)?;
        // Steps 2 and 3: index estimation and replay check (§3.3.1, §3.3.2).
        let index = self.rtp_packet_index(slot, ssrc, seq)?;
        match &self.rtp_keys {
            SessionKeys::Hmac { cipher, salt, auth } => {
                // Step 5: authenticate (constant-time comparison).
                let mut mac = auth.clone();
                mac.update(&buf[..body_len]);
                mac.update(&rollover_counter(index).to_be_bytes());
                if mac
                    .verify_truncated_left(&buf[tag_at..tag_at + tag_len])
                    .is_err()
                {
                    return Err(SrtpError::AuthFailed);
                }
                // Step 5 (cont.): decrypt.
                rtp_keystream(cipher, salt, &mut buf[..body_len], header_len, ssrc, index);
            }
            SessionKeys::Aead { gcm, salt } => {
                // RFC 7714 §8.2: authenticate and decrypt in one; nothing
                // is decrypted unless the tag verifies.
                let iv = aead::rtp_iv(salt, ssrc, index);
                let (aad, rest) = buf.split_at_mut(header_len);
                let (payload, tag) = rest.split_at_mut(body_len - header_len);
                if !gcm.open(&iv, aad, payload, &tag[..tag_len]) {
                    return Err(SrtpError::AuthFailed);
                }
            }
        }
        // Step 6: update ROC, s_l and the replay window.
        let window = advance(self.streams_rtp(slot), index);
        self.stream_mut(slot, ssrc).rtp = Some(window);
        Ok(body_len)
    }

    /// Protects the RTCP compound packet `buf[..len]` in place
    /// (RFC 3711 §3.4, RFC 7714 §9): encrypts everything after the first
    /// header and SSRC, appends E=1 and the SRTCP index, the MKI if any and
    /// the tag (for AES-GCM: the tag, E and index, then the MKI). `buf`
    /// needs room for [`MAX_OVERHEAD`](super::MAX_OVERHEAD) more bytes
    /// (exactly: 4 + MKI length + the suite's SRTCP tag length). The index
    /// counts from 0 per SSRC. Returns the SRTCP packet's length.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        check_len(buf, len)?;
        check_rtcp_header(&buf[..len])?;
        let (mki, mki_len) = self.mki_wire;
        let tag_len = self.suite.rtcp_tag_len();
        let out_len = len + SRTCP_INDEX_LEN + mki_len + tag_len;
        if out_len > buf.len() {
            return Err(SrtpError::BufferTooSmall {
                needed: out_len,
                available: buf.len(),
            });
        }
        let ssrc = rtcp_ssrc(buf);
        let slot = self.slot(ssrc)?;
        let index = slot.map_or(0, |i| self.streams[i].rtcp_tx);
        if index > MAX_SRTCP_INDEX {
            return Err(SrtpError::KeyExhausted { ssrc });
        }
        let word = (E_FLAG | index).to_be_bytes();

        match &self.rtcp_keys {
            SessionKeys::Hmac { cipher, salt, auth } => {
                rtcp_keystream(cipher, salt, &mut buf[..len], E_FLAG | index);
                let trailer = len + SRTCP_INDEX_LEN;
                buf[len..trailer].copy_from_slice(&word);
                buf[trailer..trailer + mki_len].copy_from_slice(&mki[..mki_len]);
                // §3.4: the tag covers the header, the encrypted part, E and
                // index.
                let mut mac = auth.clone();
                mac.update(&buf[..trailer]);
                let tag = mac.finalize().into_bytes();
                buf[trailer + mki_len..out_len].copy_from_slice(&tag[..tag_len]);
            }
            SessionKeys::Aead { gcm, salt } => {
                // RFC 7714 §9.1 IV; §9.2: AAD = header and SSRC || E ||
                // SRTCP index; the rest of the compound is the plaintext.
                let iv = aead::rtcp_iv(salt, ssrc, index);
                let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
                aad[..RTCP_HEADER_LEN].copy_from_slice(&buf[..RTCP_HEADER_LEN]);
                aad[RTCP_HEADER_LEN..].copy_from_slice(&word);
                let tag = gcm
                    .seal(&iv, &aad, &mut buf[RTCP_HEADER_LEN..len])
                    .ok_or(SrtpError::TooLong { len })?;
                let trailer = len + tag_len;
                buf[len..trailer].copy_from_slice(&tag);
                buf[trailer..trailer + SRTCP_INDEX_LEN].copy_from_slice(&word);
                buf[trailer + SRTCP_INDEX_LEN..out_len].copy_from_slice(&mki[..mki_len]);
            }
        }

        self.stream_mut(slot, ssrc).rtcp_tx = index + 1;
        Ok(out_len)
    }

    /// Unprotects the SRTCP packet `buf[..len]` in place (RFC 3711 §3.4,
    /// RFC 7714 §9): checks the MKI, the replay window on the SRTCP index
    /// and the tag, then decrypts when the E flag is set (a packet with E=0
    /// is authenticated only and is accepted as is). Returns the plain
    /// compound packet's length. State changes only when the packet
    /// authenticates.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        check_len(buf, len)?;
        let (mki, mki_len) = self.mki_wire;
        let tag_len = self.suite.rtcp_tag_len();
        let min = RTCP_HEADER_LEN + SRTCP_INDEX_LEN + mki_len + tag_len;
        if len < min {
            return Err(SrtpError::TooShort { len, min });
        }
        check_rtcp_header(&buf[..len])?;
        let body_len = len - tag_len - mki_len - SRTCP_INDEX_LEN;
        // Trailer order: E and index, MKI, tag (RFC 3711 §3.4); for AES-GCM
        // tag, E and index, MKI (RFC 7714 §9, Figure 3).
        let (word_at, mki_at, tag_at) = match self.rtcp_keys {
            SessionKeys::Hmac { .. } => (
                body_len,
                body_len + SRTCP_INDEX_LEN,
                body_len + SRTCP_INDEX_LEN + mki_len,
            ),
            SessionKeys::Aead { .. } => (
                body_len + tag_len,
                body_len + tag_len + SRTCP_INDEX_LEN,
                body_len,
            ),
        };
        if buf[mki_at..mki_at + mki_len] != mki[..mki_len] {
            return Err(SrtpError::WrongMki);
        }
        let word = u32::from_be_bytes([
            buf[word_at],
            buf[word_at + 1],
            buf[word_at + 2],
            buf[word_at + 3],
        ]);
        let encrypted = word & E_FLAG != 0;
        let index = u64::from(word & MAX_SRTCP_INDEX);
        let ssrc = rtcp_ssrc(buf);
        let slot = self.slot(ssrc)?;
        let window = slot.and_then(|i| self.streams[i].rtcp_rx);
        if window.is_some_and(|w| !w.is_fresh(index)) {
            return Err(SrtpError::Replay { ssrc, index });
        }
        match &self.rtcp_keys {
            SessionKeys::Hmac { cipher, salt, auth } => {
                let mut mac = auth.clone();
                mac.update(&buf[..body_len + SRTCP_INDEX_LEN]);
                if mac
                    .verify_truncated_left(&buf[tag_at..tag_at + tag_len])
                    .is_err()
                {
                    return Err(SrtpError::AuthFailed);
                }
                if encrypted {
                    rtcp_keystream(cipher, salt, &mut buf[..body_len], word);
                }
            }
            SessionKeys::Aead { gcm, salt } => {
                // `index` is 31 bits.
                let iv = aead::rtcp_iv(salt, ssrc, index as u32);
                if encrypted {
                    // RFC 7714 §9.2: AAD = header and SSRC || E || index.
                    let mut aad = [0u8; RTCP_HEADER_LEN + SRTCP_INDEX_LEN];
                    aad[..RTCP_HEADER_LEN].copy_from_slice(&buf[..RTCP_HEADER_LEN]);
                    aad[RTCP_HEADER_LEN..].copy_from_slice(&word.to_be_bytes());
                    let (head, rest) = buf.split_at_mut(body_len);
                    if !gcm.open(&iv, &aad, &mut head[RTCP_HEADER_LEN..], &rest[..tag_len]) {
                        return Err(SrtpError::AuthFailed);
                    }
                } else {
                    // RFC 7714 §9.3: with E=0 the whole packet, then E and
                    // index, is the AAD and the plaintext is empty. The
                    // word is moved before the tag to make the AAD one
                    // slice, and moved back after.
                    let trailer = &mut buf[body_len..body_len + tag_len + SRTCP_INDEX_LEN];
                    trailer.rotate_right(SRTCP_INDEX_LEN);
                    let (aad, tag) = buf.split_at_mut(body_len + SRTCP_INDEX_LEN);
                    let ok = gcm.open(&iv, aad, &mut [], &tag[..tag_len]);
                    buf[body_len..body_len + tag_len + SRTCP_INDEX_LEN]
                        .rotate_left(SRTCP_INDEX_LEN);
                    if !ok {
                        return Err(SrtpError::AuthFailed);
                    }
                }
            }
        }
        let stream = self.stream_mut(slot, ssrc);
        stream.rtcp_rx = Some(match stream.rtcp_rx {
            Some(mut w) => {
                w.accept(index);
                w
            }
            None => ReplayWindow::new(index),
        });
        Ok(body_len)
    }

    /// Index of `ssrc`'s state.
    fn find(&self, ssrc: u32) -> Option<usize> {
        self.streams.iter().position(|s| s.ssrc == ssrc)
    }

    /// Index of `ssrc`'s state, `None` for a new SSRC that fits, or
    /// [`SrtpError::TooManySsrcs`].
    fn slot(&self, ssrc: u32) -> Result<Option<usize>, SrtpError> {
        match self.find(ssrc) {
            Some(i) => Ok(Some(i)),
            None if self.streams.len() < MAX_SSRCS => Ok(None),
            None => Err(SrtpError::TooManySsrcs { ssrc }),
        }
    }

    /// The state at `slot`, or a new one for `ssrc` (room was checked by
    /// [`Srtp::slot`]).
    fn stream_mut(&mut self, slot: Option<usize>, ssrc: u32) -> &mut Stream {
        let i = match slot {
            Some(i) => i,
            None => {
                self.streams.push(Stream::new(ssrc));
                self.streams.len() - 1
            }
        };
        &mut self.streams[i]
    }

    /// The SRTP window at `slot`, if any.
    fn streams_rtp(&self, slot: Option<usize>) -> Option<ReplayWindow> {
        slot.and_then(|i| self.streams[i].rtp)
    }

    /// RFC 3711 §3.3.1 and §3.3.2: the index of a packet with sequence
    /// number `seq` and whether it is fresh. The first packet of an SSRC
    /// has ROC 0 (no rollover counter is signalled with SDES).
    fn rtp_packet_index(&self, slot: Option<usize>, ssrc: u32, seq: u16) -> Result<u64, SrtpError> {
        let Some(w) = self.streams_rtp(slot) else {
            return Ok(u64::from(seq));
        };
        let index = replay::estimate_index(w.top(), seq).ok_or(SrtpError::KeyExhausted { ssrc })?;
        if !w.is_fresh(index) {
            return Err(SrtpError::Replay { ssrc, index });
        }
        Ok(index)
    }
}

impl std::fmt::Debug for Srtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Srtp")
            .field("suite", &self.suite)
            .field("mki", &self.mki)
            .field("ssrcs", &self.streams.len())
            .finish_non_exhaustive()
    }
}

/// The window after accepting `index` into `w` (or the first one).
fn advance(w: Option<ReplayWindow>, index: u64) -> ReplayWindow {
    match w {
        Some(mut w) => {
            w.accept(index);
            w
        }
        None => ReplayWindow::new(index),
    }
}

/// ROC of a 48-bit packet index (RFC 3711 §3.3.1: `i = 2^16 * ROC + SEQ`).
fn rollover_counter(index: u64) -> u32 {
    // `index` is at most 48 bits (`replay::estimate_index`).
    (index >> 16) as u32
}

/// Encrypts or decrypts the payload of the RTP packet `packet` (header
/// and payload, `header_len` the header's length) under an HMAC-SHA1
/// suite's cipher: AES-CM (RFC 3711 §4.1.1), f8 (§4.1.2.2) or none.
fn rtp_keystream(
    cipher: &Cipher,
    salt: &[u8; 14],
    packet: &mut [u8],
    header_len: usize,
    ssrc: u32,
    index: u64,
) {
    match cipher {
        Cipher::AesCm(aes) => {
            let iv = aes_cm::iv(salt, ssrc, index);
            aes_cm::apply_keystream(aes, &iv, &mut packet[header_len..]);
        }
        Cipher::F8(f8) => {
            let mut header = [0u8; RTP_HEADER_LEN];
            header.copy_from_slice(&packet[..RTP_HEADER_LEN]);
            let iv = f8::rtp_iv(&header, rollover_counter(index));
            f8.apply_keystream(&iv, &mut packet[header_len..]);
        }
        Cipher::Null => {}
    }
}

/// Encrypts or decrypts the RTCP compound `packet` after its first header
/// and SSRC under an HMAC-SHA1 suite's cipher (RFC 3711 §3.4; IVs §4.1.1,
/// §4.1.2.3); `word` is the E flag and SRTCP index.
fn rtcp_keystream(cipher: &Cipher, salt: &[u8; 14], packet: &mut [u8], word: u32) {
    let mut header = [0u8; RTCP_HEADER_LEN];
    header.copy_from_slice(&packet[..RTCP_HEADER_LEN]);
    let index = u64::from(word & MAX_SRTCP_INDEX);
    match cipher {
        Cipher::AesCm(aes) => {
            let iv = aes_cm::iv(salt, rtcp_ssrc(&header), index);
            aes_cm::apply_keystream(aes, &iv, &mut packet[RTCP_HEADER_LEN..]);
        }
        Cipher::F8(f8) => {
            f8.apply_keystream(&f8::rtcp_iv(word, &header), &mut packet[RTCP_HEADER_LEN..]);
        }
        Cipher::Null => {}
    }
}

/// `len` fits the buffer and the length limit.
fn check_len(buf: &[u8], len: usize) -> Result<(), SrtpError> {
    if len > buf.len() {
        return Err(SrtpError::BufferTooSmall {
            needed: len,
            available: buf.len(),
        });
    }
    if len > MAX_PACKET_LEN {
        return Err(SrtpError::TooLong { len });
    }
    Ok(())
}

/// Length of the RTP header with CSRCs and extension (RFC 3550 §5.1,
/// §5.3.1): where encryption starts (RFC 3711 §3.1).
fn rtp_header_len(pkt: &[u8]) -> Result<usize, SrtpError> {
    if pkt.len() < RTP_HEADER_LEN {
        return Err(SrtpError::TooShort {
            len: pkt.len(),
            min: RTP_HEADER_LEN,
        });
    }
    if pkt[0] >> 6 != 2 {
        return Err(SrtpError::NotRtp);
    }
    let mut off = RTP_HEADER_LEN + 4 * usize::from(pkt[0] & 0x0f);
    if pkt[0] & 0x10 != 0 {
        let Some(ext) = pkt.get(off..off + 4) else {
            return Err(SrtpError::NotRtp);
        };
        off += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    if off > pkt.len() {
        return Err(SrtpError::NotRtp);
    }
    Ok(off)
}

/// SSRC and sequence number of an RTP packet of at least 12 bytes.
fn rtp_ssrc_seq(buf: &[u8]) -> (u32, u16) {
    (
        u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        u16::from_be_bytes([buf[2], buf[3]]),
    )
}

/// The first RTCP header is version 2 with an RTCP packet type.
fn check_rtcp_header(pkt: &[u8]) -> Result<(), SrtpError> {
    if pkt.len() < RTCP_HEADER_LEN {
        return Err(SrtpError::TooShort {
            len: pkt.len(),
            min: RTCP_HEADER_LEN,
        });
    }
    if pkt[0] >> 6 != 2 || !(192..=223).contains(&pkt[1]) {
        return Err(SrtpError::NotRtcp);
    }
    Ok(())
}

/// SSRC of the first RTCP packet (bytes 4..8).
fn rtcp_ssrc(buf: &[u8]) -> u32 {
    u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]])
}

#[cfg(test)]
mod tests {
    use super::super::aead::Gcm;
    use super::super::vectors::{self, Case};
    use super::super::{CipherKind, MAX_OVERHEAD, Mki};
    use super::*;
    use proptest::prelude::*;

    fn context(case: &Case) -> Srtp {
        let suite = Suite::from_name(&case.suite).expect("suite");
        let mki = case
            .mki
            .map(|(value, len)| Mki::new(value, len).expect("mki"));
        let key = MasterKey::from_suite_bytes(suite, &case.key).expect("key size");
        Srtp::new(suite, &key, mki).expect("context")
    }

    /// A master key of `suite`'s sizes.
    fn key_for(suite: Suite) -> MasterKey {
        let raw: Vec<u8> = (0..suite.key_len() + suite.salt_len())
            .map(|i| (i * 11 + 5) as u8)
            .collect();
        MasterKey::from_suite_bytes(suite, &raw).expect("size")
    }

    /// A context for `suite` under [`key_for`].
    fn ctx(suite: Suite, mki: Option<Mki>) -> Srtp {
        Srtp::new(suite, &key_for(suite), mki).expect("context")
    }

    fn rtp_packet(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
        let mut p = vec![0x80, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
        p[2..4].copy_from_slice(&seq.to_be_bytes());
        p[8..12].copy_from_slice(&ssrc.to_be_bytes());
        p.extend((0..payload_len).map(|i| i as u8));
        p
    }

    fn rtcp_rr(ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, 201, 0, 1];
        p.extend(ssrc.to_be_bytes());
        p
    }

    /// Protects `plain` with room for the trailer; returns the packet.
    fn protect(ctx: &mut Srtp, plain: &[u8], rtcp: bool) -> Result<Vec<u8>, SrtpError> {
        let mut buf = plain.to_vec();
        buf.resize(plain.len() + MAX_OVERHEAD, 0);
        let n = if rtcp {
            ctx.protect_rtcp(&mut buf, plain.len())?
        } else {
            ctx.protect_rtp(&mut buf, plain.len())?
        };
        buf.truncate(n);
        Ok(buf)
    }

    fn unprotect(ctx: &mut Srtp, packet: &[u8], rtcp: bool) -> Result<Vec<u8>, SrtpError> {
        let mut buf = packet.to_vec();
        let n = if rtcp {
            ctx.unprotect_rtcp(&mut buf, packet.len())
        } else {
            ctx.unprotect_rtp(&mut buf, packet.len())
        };
        if n.is_err() {
            assert_eq!(buf, packet, "an error leaves the buffer unchanged");
        }
        buf.truncate(n?);
        Ok(buf)
    }

    /// Byte-for-byte agreement with libsrtp 2.7.0 in both directions, for
    /// every case of tests/data/srtp/vectors.txt.
    #[test]
    fn libsrtp_vectors() {
        let cases = vectors::cases();
        assert_eq!(cases.len(), 15);
        let mut packets = 0;
        for case in &cases {
            let mut tx = context(case);
            let mut rx = context(case);
            let mut rtcp_seen = Vec::new();
            for (n, p) in case.packets.iter().enumerate() {
                let what = format!("{} packet {n} ({})", case.name, p.kind);
                let rtcp = p.kind != "rtp";
                if p.kind == "rtcp" {
                    // libsrtp numbers SRTCP from 1, RFC 3711 §3.4 (and this
                    // context) from 0: spend index 0 of each SSRC first.
                    let ssrc = rtcp_ssrc(&p.plain);
                    if !rtcp_seen.contains(&ssrc) {
                        rtcp_seen.push(ssrc);
                        protect(&mut tx, &p.plain, true).expect("index 0");
                    }
                }
                if p.kind != "rtcp-unprotect" {
                    let got = protect(&mut tx, &p.plain, rtcp).expect(&what);
                    assert_eq!(got, p.protected, "protect {what}");
                }
                let got = unprotect(&mut rx, &p.protected, rtcp).expect(&what);
                assert_eq!(got, p.plain, "unprotect {what}");
                packets += 1;
            }
        }
        assert!(packets >= 40, "{packets}");
    }

    #[test]
    fn vectors_cover_every_packet_shape() {
        let cases = vectors::cases();
        let names: Vec<&str> = cases.iter().map(|c| c.suite.as_str()).collect();
        assert!(names.contains(&"AES_CM_128_HMAC_SHA1_80"));
        assert!(names.contains(&"AES_CM_128_HMAC_SHA1_32"));
        for suite in [
            "AEAD_AES_128_GCM",
            "AEAD_AES_256_GCM",
            "AES_256_CM_HMAC_SHA1_80",
            "AES_256_CM_HMAC_SHA1_32",
            "NULL_HMAC_SHA1_80",
            "NULL_HMAC_SHA1_32",
        ] {
            assert!(names.contains(&suite), "{suite}");
        }
        assert!(
            cases
                .iter()
                .any(|c| c.suite.starts_with("AEAD") && c.mki.is_some())
        );
        assert!(cases.iter().any(|c| c.mki.is_some()));
        let all: Vec<_> = cases.iter().flat_map(|c| &c.packets).collect();
        let rtp: Vec<_> = all.iter().filter(|p| p.kind == "rtp").collect();
        assert!(rtp.iter().any(|p| p.plain[0] & 0x0f != 0), "CSRCs");
        assert!(rtp.iter().any(|p| p.plain[0] & 0x10 != 0), "extension");
        assert!(rtp.iter().any(|p| p.plain[0] & 0x20 != 0), "padding");
        assert!(all.iter().any(|p| p.kind == "rtcp-unprotect"), "E=0");
        // The wrap: a packet with sequence 0 after 65535.
        assert!(rtp.iter().any(|p| p.plain[2..4] == [0, 0]));
    }

    #[test]
    fn roc_follows_the_wrap_on_both_sides() {
        let mut tx = ctx(Suite::AesCm128HmacSha1_80, None);
        let mut rx = ctx(Suite::AesCm128HmacSha1_80, None);
        let ssrc = Ssrc(0x5eed);
        for seq in [65_534u16, 65_535, 0, 1] {
            let plain = rtp_packet(seq, ssrc.0, 20);
            let srtp = protect(&mut tx, &plain, false).unwrap();
            assert_eq!(unprotect(&mut rx, &srtp, false).unwrap(), plain);
        }
        assert_eq!(tx.rtp_index(ssrc), Some(0x1_0001));
        assert_eq!(rx.rtp_index(ssrc), Some(0x1_0001));
        // A late packet from before the wrap keeps ROC 0 and s_l.
        let mut tx2 = ctx(Suite::AesCm128HmacSha1_80, None);
        let mut late = None;
        for seq in [65_533u16, 65_535, 0, 65_534] {
            let srtp = protect(&mut tx2, &rtp_packet(seq, ssrc.0, 3), false).unwrap();
            late = Some(srtp);
        }
        assert_eq!(tx2.rtp_index(ssrc), Some(0x1_0000));
        let mut rx2 = ctx(Suite::AesCm128HmacSha1_80, None);
        let first = protect(
            &mut ctx(Suite::AesCm128HmacSha1_80, None),
            &rtp_packet(65_533, ssrc.0, 3),
            false,
        )
        .unwrap();
        unprotect(&mut rx2, &first, false).unwrap();
        // rx2 has seen 65533 only: 65534 with ROC 0 authenticates.
        assert!(unprotect(&mut rx2, &late.unwrap(), false).is_ok());
    }

    #[test]
    fn replay_is_rejected_and_reordering_accepted_once() {
        let mut tx = ctx(Suite::AesCm128HmacSha1_32, None);
        let mut rx = ctx(Suite::AesCm128HmacSha1_32, None);
        let packets: Vec<Vec<u8>> = (100..110u16)
            .map(|s| protect(&mut tx, &rtp_packet(s, 9, 30), false).unwrap())
            .collect();
        for i in [0usize, 5, 2, 9, 1] {
            unprotect(&mut rx, &packets[i], false).unwrap();
        }
        for i in [0usize, 5, 2, 9, 1] {
            assert_eq!(
                unprotect(&mut rx, &packets[i], false),
                Err(SrtpError::Replay {
                    ssrc: 9,
                    index: 100 + i as u64
                })
            );
        }
        for i in [3usize, 4, 6, 7, 8] {
            unprotect(&mut rx, &packets[i], false).unwrap();
        }
        assert_eq!(rx.rtp_index(Ssrc(9)), Some(109));
    }

    #[test]
    fn too_old_for_the_window() {
        let mut tx = ctx(Suite::AesCm128HmacSha1_80, None);
        let mut rx = ctx(Suite::AesCm128HmacSha1_80, None);
        let old = protect(&mut tx, &rtp_packet(1, 1, 4), false).unwrap();
        let edge = protect(&mut tx, &rtp_packet(2, 1, 4), false).unwrap();
        let new = protect(&mut tx, &rtp_packet(1 + REPLAY_WINDOW as u16, 1, 4), false).unwrap();
        unprotect(&mut rx, &new, false).unwrap();
        assert!(matches!(
            unprotect(&mut rx, &old, false),
            Err(SrtpError::Replay { index: 1, .. })
        ));
        unprotect(&mut rx, &edge, false).unwrap();
    }

    #[test]
    fn protect_refuses_to_reuse_an_index() {
        let mut tx = ctx(Suite::AesCm128HmacSha1_80, None);
        protect(&mut tx, &rtp_packet(7, 1, 4), false).unwrap();
        let mut buf = rtp_packet(7, 1, 5);
        let len = buf.len();
        buf.resize(len + MAX_OVERHEAD, 0);
        let before = buf.clone();
        assert_eq!(
            tx.protect_rtp(&mut buf, len),
            Err(SrtpError::Replay { ssrc: 1, index: 7 })
        );
        assert_eq!(buf, before);
        // Reordered but new is fine.
        protect(&mut tx, &rtp_packet(5, 1, 4), false).unwrap();
    }

    #[test]
    fn tampering_fails_authentication_and_changes_nothing() {
        for suite in Suite::ALL {
            let mut tx = ctx(suite, None);
            let mut rx = ctx(suite, None);
            let srtp = protect(&mut tx, &rtp_packet(40, 2, 50), false).unwrap();
            for i in [0, 2, 8, 12, 30, srtp.len() - 5, srtp.len() - 1] {
                let mut bad = srtp.clone();
                bad[i] ^= 0x01;
                let r = unprotect(&mut rx, &bad, false);
                assert!(
                    matches!(r, Err(SrtpError::AuthFailed | SrtpError::NotRtp)),
                    "{suite} byte {i}: {r:?}"
                );
            }
            assert_eq!(rx.ssrc_count(), 0, "no state from forged packets");
            unprotect(&mut rx, &srtp, false).unwrap();

            let plain = rtcp_rr(2);
            let srtcp = protect(&mut tx, &plain, true).unwrap();
            for i in [0, 5, 8, srtcp.len() - 1] {
                let mut bad = srtcp.clone();
                bad[i] ^= 0x80;
                let r = unprotect(&mut rx, &bad, true);
                assert!(
                    matches!(r, Err(SrtpError::AuthFailed | SrtpError::NotRtcp)),
                    "{suite} byte {i}: {r:?}"
                );
            }
            // Flipping E changes the authenticated word (for AES-GCM it
            // follows the tag).
            let e_at = match suite.cipher() {
                CipherKind::Gcm => plain.len() + 16,
                _ => plain.len(),
            };
            let mut bad = srtcp.clone();
            bad[e_at] ^= 0x80;
            assert_eq!(
                unprotect(&mut rx, &bad, true),
                Err(SrtpError::AuthFailed),
                "{suite}"
            );
            assert_eq!(unprotect(&mut rx, &srtcp, true).unwrap(), rtcp_rr(2));
            assert!(matches!(
                unprotect(&mut rx, &srtcp, true),
                Err(SrtpError::Replay { index: 0, .. })
            ));
        }
    }

    #[test]
    fn wrong_key_fails() {
        for suite in Suite::ALL {
            let mut tx = ctx(suite, None);
            let key = key_for(suite);
            let mut salt = key.salt().to_vec();
            let last = salt.len() - 1;
            salt[last] ^= 1;
            let other = MasterKey::new(key.key(), &salt).expect("lengths");
            let mut rx = Srtp::new(suite, &other, None).expect("context");
            let srtp = protect(&mut tx, &rtp_packet(1, 1, 10), false).unwrap();
            assert_eq!(unprotect(&mut rx, &srtp, false), Err(SrtpError::AuthFailed));
            let srtcp = protect(&mut tx, &rtcp_rr(1), true).unwrap();
            assert_eq!(unprotect(&mut rx, &srtcp, true), Err(SrtpError::AuthFailed));
        }
    }

    #[test]
    fn a_key_of_the_wrong_size_is_refused() {
        let k128 = MasterKey::from_bytes(&[1; 30]);
        for suite in Suite::ALL {
            let r = Srtp::new(suite, &k128, None);
            if k128.fits(suite) {
                assert!(r.is_ok(), "{suite}");
            } else {
                assert_eq!(r.err(), Some(SrtpError::KeyLength { suite }));
            }
        }
    }

    /// Every suite protects and unprotects RTP and RTCP, with and without
    /// an MKI, with the lengths and trailer layout it should have.
    #[test]
    fn every_suite_round_trips() {
        for suite in Suite::ALL {
            for mki in [None, Mki::new(0x0a0b0c, 3)] {
                let mut tx = ctx(suite, mki);
                let mut rx = ctx(suite, mki);
                let mki_len = mki.map_or(0, |m| usize::from(m.len));
                for seq in [65_534u16, 65_535, 0, 1] {
                    let plain = rtp_packet(seq, 77, 45);
                    let srtp = protect(&mut tx, &plain, false).unwrap();
                    assert_eq!(srtp.len(), plain.len() + suite.rtp_tag_len() + mki_len);
                    assert_eq!(srtp[..12], plain[..12]);
                    let null = suite.cipher() == CipherKind::Null;
                    assert_eq!(srtp[12..plain.len()] == plain[12..], null, "{suite}");
                    // The MKI is after the tag for AES-GCM, before it
                    // otherwise.
                    let mki_at = match suite.cipher() {
                        CipherKind::Gcm => plain.len() + 16,
                        _ => plain.len(),
                    };
                    if mki.is_some() {
                        assert_eq!(srtp[mki_at..mki_at + 3], [0x0a, 0x0b, 0x0c], "{suite}");
                    }
                    assert_eq!(unprotect(&mut rx, &srtp, false), Ok(plain), "{suite}");
                }
                assert_eq!(rx.rtp_index(Ssrc(77)), Some(0x1_0001));
                let mut plain = rtcp_rr(77);
                plain.extend([0x81, 0xca, 0, 1, 0, 0, 0, 77]);
                for index in 0..3u8 {
                    let srtcp = protect(&mut tx, &plain, true).unwrap();
                    assert_eq!(
                        srtcp.len(),
                        plain.len() + 4 + suite.rtcp_tag_len() + mki_len
                    );
                    let word_at = match suite.cipher() {
                        CipherKind::Gcm => plain.len() + 16,
                        _ => plain.len(),
                    };
                    assert_eq!(srtcp[word_at..word_at + 4], [0x80, 0, 0, index], "{suite}");
                    assert_eq!(unprotect(&mut rx, &srtcp, true), Ok(plain.clone()));
                }
            }
        }
    }

    /// RFC 7714 §16 and §17, as written to vectors.txt by the generator,
    /// which checked them against the RFC: SRTP and SRTCP (E=1 and E=0)
    /// for AEAD_AES_128_GCM and AEAD_AES_256_GCM, under session keys given
    /// directly.
    #[test]
    fn rfc7714_vectors() {
        let mut checked = 0;
        for item in vectors::items() {
            let vectors::Item::Aead {
                suite,
                kind,
                index,
                key,
                salt,
                plain,
                protected,
            } = item
            else {
                continue;
            };
            let suite = Suite::from_name(&suite).expect("suite");
            let keys = || SessionKeys::Aead {
                gcm: Gcm::new(&key).expect("key"),
                salt,
            };
            let mut tx = Srtp::with_session_keys(suite, None, keys(), keys());
            let mut rx = Srtp::with_session_keys(suite, None, keys(), keys());
            let what = format!("{suite} {kind}");
            match kind.as_str() {
                "rtp" => {
                    assert_eq!(u64::from(rtp_ssrc_seq(&plain).1), index, "ROC 0");
                    assert_eq!(
                        protect(&mut tx, &plain, false).as_ref(),
                        Ok(&protected),
                        "{what}"
                    );
                    assert_eq!(unprotect(&mut rx, &protected, false), Ok(plain), "{what}");
                }
                "rtcp" => {
                    tx.streams.push(Stream {
                        rtcp_tx: index as u32,
                        ..Stream::new(rtcp_ssrc(&plain))
                    });
                    assert_eq!(
                        protect(&mut tx, &plain, true).as_ref(),
                        Ok(&protected),
                        "{what}"
                    );
                    assert_eq!(unprotect(&mut rx, &protected, true), Ok(plain), "{what}");
                }
                _ => {
                    // Tampering with E=0 packets: the buffer is restored
                    // (`unprotect` checks).
                    let mut bad = protected.clone();
                    bad[9] ^= 1;
                    assert_eq!(unprotect(&mut rx, &bad, true), Err(SrtpError::AuthFailed));
                    assert_eq!(unprotect(&mut rx, &protected, true), Ok(plain), "{what}");
                }
            }
            checked += 1;
        }
        assert_eq!(checked, 5);
    }

    #[test]
    fn mki_is_written_and_checked() {
        let mki = Mki::new(0x0a0b0c, 3);
        let mut tx = ctx(Suite::AesCm128HmacSha1_32, mki);
        let mut rx = ctx(Suite::AesCm128HmacSha1_32, mki);
        let plain = rtp_packet(1, 1, 10);
        let srtp = protect(&mut tx, &plain, false).unwrap();
        assert_eq!(srtp.len(), plain.len() + 3 + 4);
        assert_eq!(srtp[plain.len()..plain.len() + 3], [0x0a, 0x0b, 0x0c]);
        let srtcp = protect(&mut tx, &rtcp_rr(1), true).unwrap();
        assert_eq!(srtcp.len(), 8 + 4 + 3 + 10);
        assert_eq!(srtcp[12..15], [0x0a, 0x0b, 0x0c]);

        for other in [Mki::new(0x0a0b0d, 3), Mki::new(0x0a0b0c, 4), None] {
            let mut rx2 = ctx(Suite::AesCm128HmacSha1_32, other);
            assert!(matches!(
                unprotect(&mut rx2, &srtp, false),
                Err(SrtpError::WrongMki | SrtpError::AuthFailed)
            ));
            assert!(unprotect(&mut rx2, &srtcp, true).is_err());
        }
        let mut rx3 = ctx(Suite::AesCm128HmacSha1_32, Mki::new(0x0a0b0d, 3));
        assert_eq!(unprotect(&mut rx3, &srtp, false), Err(SrtpError::WrongMki));
        assert_eq!(unprotect(&mut rx3, &srtcp, true), Err(SrtpError::WrongMki));
        // The MKI is not authenticated (RFC 3711 §3.1), so it is compared
        // before anything else.
        assert_eq!(unprotect(&mut rx, &srtp, false).unwrap(), plain);
        assert_eq!(unprotect(&mut rx, &srtcp, true).unwrap(), rtcp_rr(1));
        assert_eq!(rx.mki(), mki);
    }

    #[test]
    fn short_and_malformed_packets() {
        let mut tx = ctx(Suite::AesCm128HmacSha1_80, Mki::new(1, 1));
        let mut rx = ctx(Suite::AesCm128HmacSha1_80, Mki::new(1, 1));
        let mut buf = [0x80u8; 64];
        for len in 0..12 {
            assert!(matches!(
                tx.protect_rtp(&mut buf, len),
                Err(SrtpError::TooShort { min: 12, .. })
            ));
        }
        for len in 0..23 {
            assert_eq!(
                rx.unprotect_rtp(&mut buf, len),
                Err(SrtpError::TooShort { len, min: 23 })
            );
        }
        for len in 0..8 {
            assert!(matches!(
                tx.protect_rtcp(&mut buf, len),
                Err(SrtpError::TooShort { min: 8, .. })
            ));
        }
        for len in 0..23 {
            assert_eq!(
                rx.unprotect_rtcp(&mut buf, len),
                Err(SrtpError::TooShort { len, min: 23 })
            );
        }
        // len beyond the buffer; no room for the trailer.
        assert!(matches!(
            tx.protect_rtp(&mut buf, 65),
            Err(SrtpError::BufferTooSmall { .. })
        ));
        assert_eq!(
            tx.protect_rtp(&mut buf, 60),
            Err(SrtpError::BufferTooSmall {
                needed: 71,
                available: 64
            })
        );
        let mut small = rtcp_rr(1);
        small.resize(20, 0);
        assert_eq!(
            tx.protect_rtcp(&mut small, 10),
            Err(SrtpError::BufferTooSmall {
                needed: 25,
                available: 20
            })
        );
        let mut big = vec![0x80u8; MAX_PACKET_LEN + 100];
        assert_eq!(
            tx.protect_rtp(&mut big, MAX_PACKET_LEN + 1),
            Err(SrtpError::TooLong {
                len: MAX_PACKET_LEN + 1
            })
        );
        // Version 1; CSRCs or an extension past the end.
        let mut v1 = rtp_packet(1, 1, 10);
        v1[0] = 0x40;
        v1.resize(64, 0);
        assert_eq!(tx.protect_rtp(&mut v1, 22), Err(SrtpError::NotRtp));
        let mut csrcs = rtp_packet(1, 1, 10);
        csrcs[0] = 0x8f;
        csrcs.resize(64, 0);
        assert_eq!(tx.protect_rtp(&mut csrcs, 22), Err(SrtpError::NotRtp));
        let mut ext = rtp_packet(1, 1, 2);
        ext[0] = 0x90;
        ext.resize(64, 0);
        assert_eq!(tx.protect_rtp(&mut ext, 14), Err(SrtpError::NotRtp));
        ext[12..16].copy_from_slice(&[0xbe, 0xde, 0, 1]);
        assert_eq!(tx.protect_rtp(&mut ext, 19), Err(SrtpError::NotRtp));
        assert_eq!(tx.protect_rtp(&mut ext, 20), Ok(31));
        // RTCP: version and packet type.
        let mut rtcp = rtcp_rr(1);
        rtcp[1] = 96;
        rtcp.resize(40, 0);
        assert_eq!(tx.protect_rtcp(&mut rtcp, 8), Err(SrtpError::NotRtcp));
        rtcp[1] = 201;
        rtcp[0] = 0;
        assert_eq!(tx.protect_rtcp(&mut rtcp, 8), Err(SrtpError::NotRtcp));
        assert_eq!(rx.unprotect_rtcp(&mut rtcp, 23), Err(SrtpError::NotRtcp));
        assert_eq!(tx.ssrc_count(), 1);
    }

    #[test]
    fn empty_payload_and_header_only() {
        let mut tx = ctx(Suite::AesCm128HmacSha1_80, None);
        let mut rx = ctx(Suite::AesCm128HmacSha1_80, None);
        let plain = rtp_packet(3, 3, 0);
        let srtp = protect(&mut tx, &plain, false).unwrap();
        assert_eq!(srtp.len(), 22);
        assert_eq!(unprotect(&mut rx, &srtp, false).unwrap(), plain);
        let srtcp = protect(&mut tx, &rtcp_rr(3), true).unwrap();
        assert_eq!(unprotect(&mut rx, &srtcp, true).unwrap(), rtcp_rr(3));
    }

    #[test]
    fn ssrc_limit() {
        let mut tx = ctx(Suite::AesCm128HmacSha1_80, None);
        let mut rx = ctx(Suite::AesCm128HmacSha1_80, None);
        for ssrc in 0..MAX_SSRCS as u32 {
            let srtp = protect(&mut tx, &rtp_packet(1, ssrc, 1), false).unwrap();
            unprotect(&mut rx, &srtp, false).unwrap();
        }
        let extra = MAX_SSRCS as u32;
        assert_eq!(
            protect(&mut tx, &rtp_packet(1, extra, 1), false),
            Err(SrtpError::TooManySsrcs { ssrc: extra })
        );
        assert_eq!(
            protect(&mut tx, &rtcp_rr(extra), true),
            Err(SrtpError::TooManySsrcs { ssrc: extra })
        );
        // Known SSRCs carry on; RTCP of a known SSRC needs no new slot.
        let srtcp = protect(&mut tx, &rtcp_rr(0), true).unwrap();
        unprotect(&mut rx, &srtcp, true).unwrap();
        assert_eq!(tx.ssrc_count(), MAX_SSRCS);
        assert!(tx.remove_ssrc(Ssrc(5)));
        assert!(!tx.remove_ssrc(Ssrc(5)));
        let srtp = protect(&mut tx, &rtp_packet(1, extra, 1), false).unwrap();
        assert_eq!(
            unprotect(&mut rx, &srtp, false),
            Err(SrtpError::TooManySsrcs { ssrc: extra })
        );
        assert_eq!(rx.ssrc_count(), MAX_SSRCS);
    }

    #[test]
    fn exhausted_indexes() {
        let mut tx = ctx(Suite::AesCm128HmacSha1_80, None);
        protect(&mut tx, &rtcp_rr(1), true).unwrap();
        tx.streams[0].rtcp_tx = MAX_SRTCP_INDEX;
        let last = protect(&mut tx, &rtcp_rr(1), true).unwrap();
        assert_eq!(last[8..12], [0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            protect(&mut tx, &rtcp_rr(1), true),
            Err(SrtpError::KeyExhausted { ssrc: 1 })
        );
        protect(&mut tx, &rtp_packet(65_535, 1, 1), false).unwrap();
        tx.streams[0].rtp = Some(ReplayWindow::new((u64::from(u32::MAX) << 16) | 65_535));
        assert_eq!(
            protect(&mut tx, &rtp_packet(0, 1, 1), false),
            Err(SrtpError::KeyExhausted { ssrc: 1 })
        );
    }

    #[test]
    fn srtcp_index_and_replay() {
        let mut tx = ctx(Suite::AesCm128HmacSha1_32, None);
        let mut rx = ctx(Suite::AesCm128HmacSha1_32, None);
        let a = protect(&mut tx, &rtcp_rr(8), true).unwrap();
        let b = protect(&mut tx, &rtcp_rr(8), true).unwrap();
        assert_eq!(a[8..12], [0x80, 0, 0, 0]);
        assert_eq!(b[8..12], [0x80, 0, 0, 1]);
        assert_eq!(a.len(), 8 + 4 + 10, "SRTCP tag is 80 bits for _32 too");
        unprotect(&mut rx, &b, true).unwrap();
        unprotect(&mut rx, &a, true).unwrap();
        assert_eq!(
            unprotect(&mut rx, &b, true),
            Err(SrtpError::Replay { ssrc: 8, index: 1 })
        );
    }

    #[test]
    fn debug_hides_keys() {
        let ctx = ctx(Suite::AesCm128HmacSha1_80, None);
        let dbg = format!("{ctx:?}");
        assert!(
            dbg.starts_with("Srtp {") && !dbg.contains("cipher"),
            "{dbg}"
        );
    }

    fn arb_rtp() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<[u8; 12]>(),
            proptest::collection::vec(any::<[u8; 4]>(), 0..4),
            proptest::option::of(proptest::collection::vec(any::<[u8; 4]>(), 0..4)),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(mut h, csrcs, ext, payload)| {
                h[0] = 0x80 | (h[0] & 0x20) | csrcs.len() as u8;
                let mut p = h.to_vec();
                p.extend(csrcs.concat());
                if let Some(ext) = ext {
                    p[0] |= 0x10;
                    p.extend([0xbe, 0xde, 0, ext.len() as u8]);
                    p.extend(ext.concat());
                }
                p.extend(payload);
                p
            })
    }

    fn arb_rtcp() -> impl Strategy<Value = Vec<u8>> {
        (
            0u8..32,
            192u8..=223,
            any::<[u8; 6]>(),
            proptest::collection::vec(any::<u8>(), 0..300),
        )
            .prop_map(|(count, pt, rest, body)| {
                let mut p = vec![0x80 | count, pt];
                p.extend(rest);
                p.extend(body);
                p
            })
    }

    fn arb_mki() -> impl Strategy<Value = Option<Mki>> {
        proptest::option::of((1u8..=4, any::<u32>()).prop_map(|(len, v)| {
            let v = if len == 4 {
                v
            } else {
                v & ((1 << (8 * len)) - 1)
            };
            Mki::new(v, len).expect("fits")
        }))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn rtp_round_trip(
            packets in proptest::collection::vec(arb_rtp(), 1..8),
            key in any::<[u8; 46]>(),
            suite in proptest::sample::select(Suite::ALL.to_vec()),
            mki in arb_mki(),
        ) {
            let key = MasterKey::from_suite_bytes(suite, &key[..suite.key_len() + suite.salt_len()])
                .expect("size");
            let mut tx = Srtp::new(suite, &key, mki).expect("context");
            let mut rx = Srtp::new(suite, &key, mki).expect("context");
            for plain in packets {
                // Random sequence numbers may repeat an index or fall behind
                // the window: then protect refuses, and that is all.
                let Ok(srtp) = protect(&mut tx, &plain, false) else { continue };
                prop_assert_eq!(srtp.len(), plain.len() + suite.rtp_tag_len()
                    + mki.map_or(0, |m| usize::from(m.len)));
                prop_assert_eq!(&srtp[..12], &plain[..12]);
                prop_assert_eq!(unprotect(&mut rx, &srtp, false), Ok(plain));
            }
        }

        #[test]
        fn rtcp_round_trip(
            packets in proptest::collection::vec(arb_rtcp(), 1..8),
            key in any::<[u8; 46]>(),
            suite in proptest::sample::select(Suite::ALL.to_vec()),
            mki in arb_mki(),
        ) {
            let key = MasterKey::from_suite_bytes(suite, &key[..suite.key_len() + suite.salt_len()])
                .expect("size");
            let mut tx = Srtp::new(suite, &key, mki).expect("context");
            let mut rx = Srtp::new(suite, &key, mki).expect("context");
            for plain in packets {
                let srtcp = protect(&mut tx, &plain, true).expect("protect");
                prop_assert!(srtcp.len() <= plain.len() + MAX_OVERHEAD);
                prop_assert_eq!(&srtcp[..8], &plain[..8]);
                prop_assert_eq!(unprotect(&mut rx, &srtcp, true), Ok(plain));
            }
        }

        #[test]
        fn garbage_never_panics(
            data in proptest::collection::vec(any::<u8>(), 0..200),
            suite in proptest::sample::select(Suite::ALL.to_vec()),
            mki in arb_mki(),
        ) {
            let mut rx = ctx(suite, mki);
            let mut buf = data.clone();
            buf.resize(data.len() + MAX_OVERHEAD, 0);
            let _ = rx.unprotect_rtp(&mut buf, data.len());
            let _ = rx.unprotect_rtcp(&mut buf, data.len());
            let _ = rx.protect_rtp(&mut buf, data.len());
            let _ = rx.protect_rtcp(&mut buf, data.len());
            prop_assert!(rx.ssrc_count() <= 2);
        }
    }
}
