//! SDES-SRTP termination in a shard: a leg whose far end speaks SRTP
//! (RFC 3711) has its packets unprotected on arrival and protected on the
//! way out, so that the other leg speaks plain RTP (an `RTP/SAVP` phone
//! bridged to an `RTP/AVP` trunk, or the other way round).
//!
//! Contract: only streams with a context are touched; a shard without any
//! pays one `is_empty` check per packet. A terminated packet is copied
//! once into a shard-owned buffer, transformed there, queued, and sent by
//! the backend as the sink's own transmit ([`super::PacketSink::poll_transmit`])
//! in the same turn. Buffers are reused (no allocation per packet once the
//! pool has grown to the shard's burst); the queue is bounded, and a
//! packet beyond it, one that fails authentication or replay protection,
//! or one too large once protected is a counted drop ([`DropReason::Srtp`]).
//! Streams with SRTP are never offloaded to the kernel fast path (the
//! handler keeps every payload type of both legs in userspace).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use crate::relay::{DropReason, StreamKey};
use crate::srtp::{MAX_OVERHEAD, Srtp};

use super::SrtpKey;

/// Largest datagram the termination handles (the receive buffers' size).
const BUF: usize = 2048;
/// Most packets waiting for the backend's send buffers.
const MAX_QUEUED: usize = 4096;

/// The SRTP contexts of one stream (socket) of a terminated leg.
pub(crate) struct StreamSrtp {
    /// Unprotects what the far end sends (its key).
    inbound: Srtp,
    /// Protects what the relay sends to the far end (the relay's key).
    outbound: Srtp,
    /// The keys, to tell an unchanged update from a re-key.
    keys: (SrtpKey, SrtpKey),
}

/// A transformed packet waiting for a send buffer.
struct Queued {
    via: StreamKey,
    dest: SocketAddr,
    len: usize,
    buf: Box<[u8; BUF]>,
}

/// The shard's SRTP termination state.
#[derive(Default)]
pub(crate) struct SrtpSide {
    streams: HashMap<StreamKey, StreamSrtp>,
    queue: VecDeque<Queued>,
    /// Buffers move between the queue and this list by pointer, not by
    /// copying 2 KiB, hence the boxes.
    #[allow(clippy::vec_box)]
    free: Vec<Box<[u8; BUF]>>,
    /// The buffer of the packet being handled.
    scratch: Option<Box<[u8; BUF]>>,
    /// Length of the plain packet in `scratch`, once unprotected.
    plain: Option<usize>,
}

/// Whether a packet is RTCP: its second byte is an RTCP packet type
/// (RFC 5761 §4: 192-223 on a shared port; always so on an RTCP port).
fn is_rtcp(data: &[u8]) -> bool {
    data.get(1).is_some_and(|b| (192..=223).contains(b))
}

impl SrtpSide {
    /// Whether no stream is terminated (the common case: nothing to do).
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Terminates `streams` with `keys` (inbound, outbound); an update
    /// with the same keys keeps the contexts (and their rollover counters
    /// and replay windows).
    pub fn set(&mut self, streams: &[StreamKey], keys: Option<(SrtpKey, SrtpKey)>) {
        for &s in streams {
            match &keys {
                None => {
                    self.streams.remove(&s);
                }
                Some(k) => {
                    if self.streams.get(&s).is_some_and(|e| &e.keys == k) {
                        continue;
                    }
                    let (i, o) = k;
                    self.streams.insert(
                        s,
                        StreamSrtp {
                            inbound: Srtp::new(i.suite, &i.key, i.mki),
                            outbound: Srtp::new(o.suite, &o.key, o.mki),
                            keys: *k,
                        },
                    );
                }
            }
        }
    }

    /// Forgets removed streams.
    pub fn remove(&mut self, streams: &[StreamKey]) {
        for s in streams {
            self.streams.remove(s);
        }
    }

    fn buffer(&mut self) -> Box<[u8; BUF]> {
        self.free.pop().unwrap_or_else(|| Box::new([0; BUF]))
    }

    /// A packet arrived on `stream`: unprotected into the scratch buffer
    /// when the stream is terminated. `Ok(None)`: not terminated, use the
    /// bytes as they are; `Ok(Some(plain))`: the plain packet;
    /// `Err`: drop it.
    pub fn inbound(&mut self, stream: StreamKey, data: &[u8]) -> Result<Option<&[u8]>, DropReason> {
        self.plain = None;
        let Some(s) = self.streams.get_mut(&stream) else {
            return Ok(None);
        };
        if data.len() > BUF {
            return Err(DropReason::Srtp);
        }
        let mut buf = match self.scratch.take() {
            Some(b) => b,
            None => self.free.pop().unwrap_or_else(|| Box::new([0; BUF])),
        };
        buf[..data.len()].copy_from_slice(data);
        let r = if is_rtcp(data) {
            s.inbound.unprotect_rtcp(&mut buf[..], data.len())
        } else {
            s.inbound.unprotect_rtp(&mut buf[..], data.len())
        };
        let scratch = self.scratch.insert(buf);
        match r {
            Ok(len) => {
                self.plain = Some(len);
                Ok(Some(&scratch[..len]))
            }
            Err(_) => Err(DropReason::Srtp),
        }
    }

    /// A packet the table forwards from `via` to `dest`: `data` as
    /// received, or the plain packet [`inbound`](Self::inbound) left in
    /// the scratch buffer. Queued (protected when `via` is terminated) and
    /// `Ok(true)`; `Ok(false)`: neither side terminated, the backend
    /// forwards `data` itself.
    pub fn forward(
        &mut self,
        via: StreamKey,
        dest: SocketAddr,
        data: &[u8],
    ) -> Result<bool, DropReason> {
        let plain = self.plain.take();
        if plain.is_none() && !self.streams.contains_key(&via) {
            return Ok(false);
        }
        if self.queue.len() >= MAX_QUEUED {
            return Err(DropReason::Srtp);
        }
        let (mut buf, mut len) = match (plain, self.scratch.take()) {
            (Some(len), Some(buf)) => (buf, len),
            _ => {
                if data.len() > BUF {
                    return Err(DropReason::Srtp);
                }
                let mut buf = self.buffer();
                buf[..data.len()].copy_from_slice(data);
                (buf, data.len())
            }
        };
        if let Some(s) = self.streams.get_mut(&via) {
            if len + MAX_OVERHEAD > BUF {
                self.free.push(buf);
                return Err(DropReason::Srtp);
            }
            let r = if is_rtcp(&buf[..len]) {
                s.outbound.protect_rtcp(&mut buf[..], len)
            } else {
                s.outbound.protect_rtp(&mut buf[..], len)
            };
            match r {
                Ok(n) => len = n,
                Err(_) => {
                    self.free.push(buf);
                    return Err(DropReason::Srtp);
                }
            }
        }
        self.queue.push_back(Queued {
            via,
            dest,
            len,
            buf,
        });
        Ok(true)
    }

    /// The next queued packet, copied into `out`: (via, dest, length).
    /// A packet larger than `out` is dropped and reported as `Err`.
    pub fn poll(
        &mut self,
        out: &mut [u8],
    ) -> Option<Result<(StreamKey, SocketAddr, usize), StreamKey>> {
        let q = self.queue.pop_front()?;
        let r = match out.get_mut(..q.len) {
            Some(o) => {
                o.copy_from_slice(&q.buf[..q.len]);
                Ok((q.via, q.dest, q.len))
            }
            None => Err(q.via),
        };
        self.free.push(q.buf);
        Some(r)
    }
}
