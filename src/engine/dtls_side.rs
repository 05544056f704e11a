//! DTLS-SRTP termination in a shard (RFC 5763, RFC 5764): a leg whose far
//! end keys SRTP with DTLS has a [`DtlsSession`] on its RTP socket. DTLS
//! records arriving there (RFC 7983 §7: first byte 20..=63) go to the
//! session instead of the relay table; the session's flights leave as the
//! shard's own transmits; once the handshake completes, its exported keys
//! become the leg's SRTP keys (the caller hands them to the SRTP side),
//! which had the leg awaiting keys until then.
//!
//! Contract: only streams with a session are touched; a shard without any
//! pays one `is_empty` check per packet. A server answers the address its
//! peer's flight came from; a client sends its flights to the leg's far
//! end as the relay table knows it (latched, ICE-selected or signalled),
//! again at once when ICE selects a pair before it heard from its peer.
//! Only the leg's far end may speak to a session: DTLS from any other
//! source is dropped. Sessions with work are served by
//! [`super::PacketSink::poll_transmit`]; deadlines sit in a min-heap with
//! lazy deletion. DTLS runs on the RTP socket only: RTCP is expected to be
//! muxed (RFC 5761), as WebRTC peers do; a second handshake on a separate
//! RTCP socket (RFC 5764 §4.1) is not served, so a non-muxing peer's SRTCP
//! fails authentication. A failed handshake leaves the leg awaiting keys
//! (its media stays dropped) and is logged; the next offer or answer
//! starts a new one.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use crate::dtls::{DtlsCert, DtlsEvent, DtlsSession, SrtpKeys, is_dtls};
use crate::relay::{LegKey, LegStreams, StreamKey};

use super::LegDtls;

/// One leg's session.
struct Session {
    dtls: DtlsSession,
    params: LegDtls,
    streams: LegStreams,
    /// Where the peer's last flight came from.
    peer: Option<SocketAddr>,
    armed: Option<Instant>,
    queued: bool,
    /// The session reported `Failed`: the same parameters again start a
    /// new one.
    failed: bool,
    /// A datagram of the peer reached the session.
    heard: bool,
}

/// A flight datagram to send: from `via` to `dest` (`None`: the leg's far
/// end as the relay table knows it), `len` bytes of the caller's buffer.
pub(crate) struct DtlsSend {
    pub leg: LegKey,
    pub via: StreamKey,
    pub dest: Option<SocketAddr>,
    pub len: usize,
}

/// The shard's DTLS sessions.
#[derive(Default)]
pub(crate) struct DtlsSide {
    sessions: HashMap<LegKey, Session>,
    streams: HashMap<StreamKey, LegKey>,
    timers: BinaryHeap<Reverse<(Instant, LegKey)>>,
    ready: Vec<LegKey>,
    ready_at: usize,
    /// Handshakes completed since the shard last asked.
    keyed: VecDeque<(LegStreams, SrtpKeys)>,
}

impl DtlsSide {
    /// No leg of this shard keys SRTP with DTLS.
    pub(crate) fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Starts, keeps or stops a leg's session. The same role and
    /// fingerprint again keep the running session (and its keys); others
    /// start a new handshake. `Err`: the session could not be made.
    pub(crate) fn set(
        &mut self,
        now: Instant,
        streams: LegStreams,
        params: Option<(LegDtls, &DtlsCert)>,
    ) -> Result<(), String> {
        let leg = streams.leg;
        let Some((params, cert)) = params else {
            self.remove_leg(leg);
            return Ok(());
        };
        if self
            .sessions
            .get(&leg)
            .is_some_and(|s| s.params == params && !s.failed)
        {
            return Ok(());
        }
        self.remove_leg(leg);
        let dtls = DtlsSession::new(cert, params.role, params.remote.clone(), now)
            .map_err(|e| e.to_string())?;
        self.streams.insert(streams.rtp, leg);
        self.sessions.insert(
            leg,
            Session {
                dtls,
                params,
                streams,
                peer: None,
                armed: None,
                queued: false,
                failed: false,
                heard: false,
            },
        );
        self.mark_ready(leg);
        Ok(())
    }

    /// Forgets the sessions of these streams' legs (a removed call).
    pub(crate) fn remove(&mut self, streams: &[StreamKey]) {
        for s in streams {
            if let Some(leg) = self.streams.get(s).copied() {
                self.remove_leg(leg);
            }
        }
    }

    fn remove_leg(&mut self, leg: LegKey) {
        if let Some(s) = self.sessions.remove(&leg) {
            self.streams.remove(&s.streams.rtp);
        }
        if self.sessions.is_empty() {
            // No session left: no stale deadline may keep the shard awake.
            self.timers.clear();
            self.ready.clear();
            self.ready_at = 0;
        }
    }

    /// The leg's far end became known (ICE selected a pair): a client
    /// that has not heard from its peer yet starts its handshake again at
    /// once, instead of waiting for its retransmission timer (its first
    /// flight may have had nowhere to go).
    pub(crate) fn far_end_known(&mut self, now: Instant, cert: &DtlsCert, leg: LegKey) {
        let Some(s) = self.sessions.get(&leg) else {
            return;
        };
        if s.heard || s.params.role != crate::dtls::DtlsRole::Client {
            return;
        }
        let (params, streams) = (s.params.clone(), s.streams);
        self.remove_leg(leg);
        // A session that cannot be made leaves the leg awaiting its keys,
        // as a failed handshake does.
        let _ = self.set(now, streams, Some((params, cert)));
    }

    /// The leg whose session owns `stream`, for a DTLS datagram (RFC 7983
    /// §7: the first byte first, so that RTP pays no lookup).
    pub(crate) fn leg_of(&self, stream: StreamKey, data: &[u8]) -> Option<LegKey> {
        if !is_dtls(data) {
            return None;
        }
        self.streams.get(&stream).copied()
    }

    /// A DTLS datagram for `leg`'s session from `src`. Only the leg's far
    /// end may speak to it (`expected`: as signalling, latching or ICE
    /// know it; or the source the handshake already runs with): a third
    /// party can neither disturb the handshake nor make the relay send its
    /// certificate flight elsewhere. `true`: handed to the session;
    /// `false`: not from the far end, dropped.
    pub(crate) fn handle(
        &mut self,
        now: Instant,
        leg: LegKey,
        src: SocketAddr,
        data: &[u8],
        expected: &[Option<SocketAddr>],
    ) -> bool {
        let Some(s) = self.sessions.get_mut(&leg) else {
            return false;
        };
        if s.peer != Some(src) && !expected.iter().flatten().any(|e| *e == src) {
            return false;
        }
        s.peer = Some(src);
        s.heard = true;
        // Bad records are dropped by the session (RFC 6347 §4.1.2.7); a
        // failure is reported as an event.
        let _ = s.dtls.handle_input(now, data);
        self.mark_ready(leg);
        true
    }

    fn mark_ready(&mut self, leg: LegKey) {
        if let Some(s) = self.sessions.get_mut(&leg) {
            if !s.queued {
                s.queued = true;
                self.ready.push(leg);
            }
        }
    }

    /// When the shard must turn next for its sessions.
    pub(crate) fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        if self.sessions.is_empty() {
            return None;
        }
        if self.ready_at < self.ready.len() {
            return Some(now);
        }
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// The next flight datagram, written into `buf`; runs the timers that
    /// are due.
    pub(crate) fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<DtlsSend> {
        loop {
            if self.ready_at == self.ready.len() {
                self.ready.clear();
                self.ready_at = 0;
                self.run_due_timers(now);
                if self.ready.is_empty() {
                    return None;
                }
            }
            let &leg = self.ready.get(self.ready_at)?;
            let Some(s) = self.sessions.get_mut(&leg) else {
                self.ready_at += 1;
                continue;
            };
            while let Some(ev) = s.dtls.poll_event() {
                match ev {
                    DtlsEvent::Connected(keys) => self.keyed.push_back((s.streams, keys)),
                    DtlsEvent::Failed(e) => {
                        s.failed = true;
                        tracing::warn!(error = %e, "DTLS handshake failed: the leg's media stays dropped");
                    }
                    DtlsEvent::Closed => {
                        tracing::info!("DTLS peer closed the connection (close_notify)");
                    }
                }
            }
            if let Some(len) = s.dtls.poll_transmit(buf) {
                return Some(DtlsSend {
                    leg,
                    via: s.streams.rtp,
                    dest: s.peer,
                    len: len.min(buf.len()),
                });
            }
            s.queued = false;
            self.ready_at += 1;
            let next = s.dtls.poll_timeout();
            if next != s.armed {
                s.armed = next;
                if let Some(at) = next {
                    self.timers.push(Reverse((at, leg)));
                }
            }
        }
    }

    fn run_due_timers(&mut self, now: Instant) {
        while let Some(&Reverse((at, leg))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(s) = self.sessions.get_mut(&leg) else {
                continue;
            };
            if s.armed != Some(at) {
                continue;
            }
            s.armed = None;
            s.dtls.handle_timeout(now);
            self.mark_ready(leg);
        }
    }

    /// A handshake completed since the last call: the leg's streams and
    /// its keys.
    pub(crate) fn poll_keyed(&mut self) -> Option<(LegStreams, SrtpKeys)> {
        self.keyed.pop_front()
    }
}
