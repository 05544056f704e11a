//! SDES-SRTP termination in a shard: a leg whose far end speaks SRTP
//! (RFC 3711) has its packets unprotected on arrival and protected on the
//! way out, so that the other leg speaks plain RTP (an `RTP/SAVP` phone
//! bridged to an `RTP/AVP` trunk, or the other way round).
//!
//! Contract: only streams with an entry are touched; a shard without any
//! pays one `is_empty` check per packet. A packet from a terminated far
//! end is unprotected into a shard-owned buffer before the relay table
//! judges it (so an unauthenticated packet never latches a stream); a
//! forwarded packet that either side terminates is queued in such a
//! buffer (protected when its destination is terminated) and copied into
//! the backend's send buffer by [`super::PacketSink::poll_transmit`] at the
//! end of the turn; the shard does not sleep while the queue holds
//! packets. Buffers are reused (no allocation per packet once the pool has
//! grown to the shard's burst); the queue is bounded. A packet that fails
//! authentication or replay protection, arrives for or is bound to a leg
//! still awaiting its keys, does not fit once protected, or finds the
//! queue full is a counted drop ([`DropReason::Srtp`]). Streams with SRTP
//! are never offloaded to the kernel fast path (the caller keeps every
//! payload type of both legs in userspace).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use crate::relay::{DropReason, LegStreams, StreamKey};
use crate::srtp::{MAX_OVERHEAD, Srtp};

use super::{SrtpKey, SrtpState};

/// Largest datagram the termination handles, protected: the size of the
/// backends' own-transmit buffers (io_uring's is this constant, epoll's
/// `BUF_SIZE` is as large), more than any received payload plus
/// [`MAX_OVERHEAD`].
pub(crate) const SRTP_MAX_DATAGRAM: usize = 2048;
/// Most packets waiting for the backend's send buffers.
const MAX_QUEUED: usize = 4096;

type Buf = Box<[u8; SRTP_MAX_DATAGRAM]>;

/// One direction's context and the key it was made with.
struct Context {
    key: SrtpKey,
    srtp: Srtp,
}

impl Context {
    /// Keeps `current` when its key is `key` (its rollover counters and
    /// replay window go on), else a fresh context; `None` when the key
    /// does not fit its suite (the signalling layer never hands such a
    /// key on): the direction then has no context and drops its packets.
    fn keep_or_new(current: Option<Context>, key: SrtpKey) -> Option<Context> {
        match current {
            Some(c) if c.key == key => Some(c),
            _ => Some(Context {
                key,
                srtp: Srtp::new(key.suite, &key.key, key.mki).ok()?,
            }),
        }
    }
}

/// The SRTP state of one stream (socket) of a terminated leg.
struct StreamSrtp {
    /// The leg's own RTCP socket: everything on it is (S)RTCP.
    rtcp_port: bool,
    /// RTCP shares this RTP socket (RFC 5761): told apart by packet type.
    muxed: bool,
    /// Unprotects what the far end sends (its key); `None` while the keys
    /// are awaited.
    inbound: Option<Context>,
    /// Protects what the relay sends to the far end (the relay's key).
    outbound: Option<Context>,
}

impl StreamSrtp {
    /// Whether `data` on this stream is RTCP: always on the RTCP port; on
    /// a muxed RTP port when its second byte is an RTCP packet type
    /// (RFC 5761 §4: 192-223); never otherwise.
    fn is_rtcp(&self, data: &[u8]) -> bool {
        self.rtcp_port || (self.muxed && data.get(1).is_some_and(|b| (192..=223).contains(b)))
    }
}

/// A transformed packet waiting for a send buffer.
struct Queued {
    via: StreamKey,
    dest: SocketAddr,
    len: usize,
    buf: Buf,
}

/// The shard's SRTP termination state.
#[derive(Default)]
pub(crate) struct SrtpSide {
    streams: HashMap<StreamKey, StreamSrtp>,
    queue: VecDeque<Queued>,
    /// Buffers move between the queue and this list by pointer, not by
    /// copying 2 KiB, hence the boxes.
    #[allow(clippy::vec_box)]
    free: Vec<Buf>,
    /// The buffer of the packet being handled.
    scratch: Option<Buf>,
    /// Length of the plain packet in `scratch`, once unprotected.
    plain: Option<usize>,
}

impl SrtpSide {
    /// Whether no stream is terminated (the common case: nothing to do).
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Whether packets wait for the backend (the shard must not sleep).
    pub fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Applies `state` to `leg`'s streams; `muxed`: the leg's RTCP shares
    /// its RTP socket.
    pub fn set(&mut self, leg: LegStreams, state: SrtpState, muxed: bool) {
        let own_rtcp = leg.rtcp != leg.rtp;
        let muxed = muxed || !own_rtcp;
        let streams = [(leg.rtp, false), (leg.rtcp, true)];
        for (s, rtcp_port) in streams.into_iter().take(if own_rtcp { 2 } else { 1 }) {
            let muxed = !rtcp_port && muxed;
            match state {
                SrtpState::Off => {
                    self.streams.remove(&s);
                }
                SrtpState::AwaitingKeys => {
                    let e = self.streams.entry(s).or_insert(StreamSrtp {
                        rtcp_port,
                        muxed,
                        inbound: None,
                        outbound: None,
                    });
                    e.muxed = muxed;
                }
                SrtpState::Keys(k) => {
                    let (inbound, outbound) = match self.streams.remove(&s) {
                        Some(o) => (o.inbound, o.outbound),
                        None => (None, None),
                    };
                    self.streams.insert(
                        s,
                        StreamSrtp {
                            rtcp_port,
                            muxed,
                            inbound: Context::keep_or_new(inbound, k.inbound),
                            outbound: Context::keep_or_new(outbound, k.outbound),
                        },
                    );
                }
            }
        }
    }

    /// The leg's RTCP moved onto its RTP socket or back.
    pub fn set_muxed(&mut self, leg: LegStreams, muxed: bool) {
        if let Some(e) = self.streams.get_mut(&leg.rtp) {
            e.muxed = muxed || leg.rtp == leg.rtcp;
        }
    }

    /// Forgets removed streams and the packets queued to leave from them.
    pub fn remove(&mut self, streams: &[StreamKey]) {
        for s in streams {
            self.streams.remove(s);
        }
        let mut i = 0;
        while i < self.queue.len() {
            if streams.contains(&self.queue[i].via) {
                if let Some(q) = self.queue.remove(i) {
                    self.free.push(q.buf);
                }
            } else {
                i += 1;
            }
        }
    }

    fn buffer(&mut self) -> Buf {
        self.free
            .pop()
            .unwrap_or_else(|| Box::new([0; SRTP_MAX_DATAGRAM]))
    }

    /// A packet arrived on `stream`: unprotected into the scratch buffer
    /// when the stream is terminated. `Ok(None)`: not terminated, use the
    /// bytes as they are; `Ok(Some(plain))`: the plain packet; `Err`: drop
    /// it.
    pub fn inbound(&mut self, stream: StreamKey, data: &[u8]) -> Result<Option<&[u8]>, DropReason> {
        self.plain = None;
        let Some(s) = self.streams.get_mut(&stream) else {
            return Ok(None);
        };
        let rtcp = s.is_rtcp(data);
        let Some(ctx) = s.inbound.as_mut() else {
            return Err(DropReason::Srtp);
        };
        if data.len() > SRTP_MAX_DATAGRAM {
            return Err(DropReason::Srtp);
        }
        let mut buf = match self.scratch.take() {
            Some(b) => b,
            None => self
                .free
                .pop()
                .unwrap_or_else(|| Box::new([0; SRTP_MAX_DATAGRAM])),
        };
        buf[..data.len()].copy_from_slice(data);
        let r = if rtcp {
            ctx.srtp.unprotect_rtcp(&mut buf[..], data.len())
        } else {
            ctx.srtp.unprotect_rtp(&mut buf[..], data.len())
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
        let (mut buf, mut len) = match plain.and_then(|len| Some((self.scratch.take()?, len))) {
            Some(b) => b,
            None => {
                if data.len() > SRTP_MAX_DATAGRAM {
                    return Err(DropReason::Srtp);
                }
                let mut buf = self.buffer();
                buf[..data.len()].copy_from_slice(data);
                (buf, data.len())
            }
        };
        if let Some(s) = self.streams.get_mut(&via) {
            let rtcp = s.is_rtcp(&buf[..len]);
            let protected = match s.outbound.as_mut() {
                Some(ctx) if len + MAX_OVERHEAD <= SRTP_MAX_DATAGRAM => {
                    if rtcp {
                        ctx.srtp.protect_rtcp(&mut buf[..], len).ok()
                    } else {
                        ctx.srtp.protect_rtp(&mut buf[..], len).ok()
                    }
                }
                _ => None,
            };
            match protected {
                Some(n) => len = n,
                None => {
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
