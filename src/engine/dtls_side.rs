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

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use crate::dtls::{DtlsCert, DtlsEvent, DtlsSession, SrtpKeys, is_dtls};
use crate::relay::{LegKey, LegStreams, StreamKey};

use super::schedule::Schedule;

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
    /// A flight of this session left (it had somewhere to go).
    sent: bool,
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
    /// Sessions with work and their deadlines.
    schedule: Schedule<LegKey>,
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
                sent: false,
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
            self.schedule.clear();
        }
    }

    /// The leg's far end became known (ICE selected a pair): a client
    /// whose first flight had nowhere to go starts its handshake again at
    /// once, instead of waiting for its retransmission timer.
    pub(crate) fn far_end_known(&mut self, now: Instant, cert: &DtlsCert, leg: LegKey) {
        let Some(s) = self.sessions.get(&leg) else {
            return;
        };
        // A flight that left may be answered any moment: a new ClientHello
        // would make that answer fail (it signs the first one's random).
        if s.heard || s.sent || s.params.role != crate::dtls::DtlsRole::Client {
            return;
        }
        let (params, streams) = (s.params.clone(), s.streams);
        self.remove_leg(leg);
        // A session that cannot be made leaves the leg awaiting its keys,
        // as a failed handshake does.
        let _ = self.set(now, streams, Some((params, cert)));
    }

    /// A flight of `leg`'s session was handed to its socket.
    pub(crate) fn mark_sent(&mut self, leg: LegKey) {
        if let Some(s) = self.sessions.get_mut(&leg) {
            s.sent = true;
        }
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
                self.schedule.push_ready(leg);
            }
        }
    }

    /// When the shard must turn next for its sessions.
    pub(crate) fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        if self.sessions.is_empty() {
            return None;
        }
        self.schedule.poll_timeout(now)
    }

    /// The next flight datagram, written into `buf`; runs the timers that
    /// are due.
    pub(crate) fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<DtlsSend> {
        loop {
            let Some(leg) = self.schedule.current() else {
                // Served through: the timers due now may queue some again.
                self.run_due_timers(now);
                if !self.schedule.has_ready() {
                    return None;
                }
                continue;
            };
            let Some(s) = self.sessions.get_mut(&leg) else {
                self.schedule.advance();
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
            self.schedule.advance();
            let next = s.dtls.poll_timeout();
            if next != s.armed {
                s.armed = next;
                if let Some(at) = next {
                    self.schedule.arm(at, leg);
                }
            }
        }
    }

    fn run_due_timers(&mut self, now: Instant) {
        while let Some((at, leg)) = self.schedule.pop_due(now) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dtls::DtlsRole;
    use crate::relay::Key;

    fn legs() -> LegStreams {
        LegStreams {
            leg: Key::from_parts(1, 0),
            rtp: Key::from_parts(2, 0),
            rtcp: Key::from_parts(3, 0),
        }
    }

    fn params(role: DtlsRole) -> LegDtls {
        LegDtls {
            role,
            remote: "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
                .parse()
                .unwrap(),
        }
    }

    /// A client's first flight is ready at once; with nowhere to go it is
    /// made again when the far end becomes known, but never once a flight
    /// left (the peer may be answering it).
    #[test]
    fn a_client_restarts_only_if_its_flight_had_nowhere_to_go() {
        let cert = DtlsCert::generate(std::time::SystemTime::now()).unwrap();
        let now = Instant::now();
        let mut side = DtlsSide::default();
        side.set(now, legs(), Some((params(DtlsRole::Client), &cert)))
            .unwrap();
        let mut buf = [0u8; 2048];
        let first = side.poll_transmit(now, &mut buf).expect("a ClientHello");
        assert_eq!(
            (first.leg, first.via, first.dest),
            (legs().leg, legs().rtp, None)
        );
        let hello = buf[..first.len].to_vec();
        assert!(side.poll_transmit(now, &mut buf).is_none());
        side.far_end_known(now, &cert, legs().leg);
        let again = side
            .poll_transmit(now, &mut buf)
            .expect("a new ClientHello");
        assert_ne!(buf[..again.len], hello[..], "a new handshake, new random");
        side.mark_sent(legs().leg);
        side.far_end_known(now, &cert, legs().leg);
        assert!(
            side.poll_transmit(now, &mut buf).is_none(),
            "kept: its flight left"
        );
    }

    /// Only the far end may speak to a session; a removed last session
    /// leaves no deadline behind.
    #[test]
    fn strangers_are_refused_and_removal_leaves_no_deadline() {
        let cert = DtlsCert::generate(std::time::SystemTime::now()).unwrap();
        let now = Instant::now();
        let mut side = DtlsSide::default();
        side.set(now, legs(), Some((params(DtlsRole::Server), &cert)))
            .unwrap();
        let far: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let stranger: SocketAddr = "127.0.0.1:6666".parse().unwrap();
        let record = [22u8, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0];
        assert_eq!(side.leg_of(legs().rtp, &record), Some(legs().leg));
        assert_eq!(side.leg_of(legs().rtp, &[0x80, 0]), None, "RTP is not DTLS");
        assert!(!side.handle(now, legs().leg, stranger, &record, &[Some(far), None]));
        assert!(side.handle(now, legs().leg, far, &record, &[Some(far), None]));
        // Its source is now the session's: it is heard even when the
        // table's far end changes.
        assert!(side.handle(now, legs().leg, far, &record, &[None, None]));
        let mut buf = [0u8; 2048];
        while side.poll_transmit(now, &mut buf).is_some() {}
        side.set(now, legs(), None).unwrap();
        assert!(side.is_empty());
        assert_eq!(side.poll_timeout(now), None);
        assert!(side.poll_transmit(now, &mut buf).is_none());
    }
}
