//! [`Builder`]: one party's offer/answer (RFC 3264) and the media streams it
//! yields, on the project's own SDP parser and negotiator.
//!
//! States ([`Phase`]): `Idle` → `OfferSent` → `Established` (caller:
//! [`create_offer`](Builder::create_offer), then
//! [`process_answer`](Builder::process_answer)); `Idle` → `OfferReceived` →
//! `Established` (callee: [`process_offer`](Builder::process_offer), then
//! [`create_answer`](Builder::create_answer)). From `Established` either
//! side may re-offer (hold, resume): the running media follows the new
//! direction and address without being torn down. A failed step changes
//! nothing, so it can be retried.
//!
//! Ports: the first pair is allocated with the builder, one more per extra
//! stream when an offer is made or taken; sockets are bound only once the
//! far end's address is known (caller: on the answer; callee: when
//! answering). A rejected stream is answered with port 0 (RFC 3264 §6) and
//! its pair released.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::error::{BuilderError, Phase};
use super::manager::Inner;
use super::session::{MediaSession, Parked, SessionStream, StreamPlan};
use super::stream::MediaStreamInfo;
use crate::engine::{CallId, EndpointSpec, LegOptions, LegUpdate};
use crate::ports::PortPair;
use crate::rtp::PayloadType;
use crate::sdp::{
    Address, Answer, Codec, Direction, LocalIdentity, MediaCapabilities, MediaKind, MediaOutcome,
    Negotiated, Negotiator, Sdp, TelephoneEvents,
};

/// One party of a call: offer/answer and the media streams it negotiates.
/// Methods take `&self` (the state sits behind a mutex held only for the
/// step itself), so a builder can be shared in the `Arc` its
/// [`BuilderManager`](super::BuilderManager) hands out.
pub struct Builder {
    id: String,
    manager: Arc<Inner>,
    state: Mutex<State>,
    activity_ms: AtomicU64,
    media_seen: AtomicU64,
}

struct State {
    phase: Phase,
    negotiator: Negotiator,
    /// The builder's first pair until a stream takes it.
    primary: Option<PortPair>,
    streams: Vec<Stream>,
    offer_streams: usize,
    direction: Direction,
    payload_types: Vec<PayloadType>,
    session_attrs: Vec<(String, Option<String>)>,
    media_attrs: Vec<(usize, String, Option<String>)>,
    /// Callee: the answer built from the offer, sent by `create_answer`.
    pending: Option<PendingAnswer>,
    remote_sdp: Option<Sdp>,
    session: Option<MediaSession>,
}

struct PendingAnswer {
    answer: Answer,
    offer: Sdp,
    /// The pair of each caps entry (by `MediaOutcome::local`).
    pairs: Vec<Option<PortPair>>,
    /// Pairs allocated for this offer (released if it is superseded).
    fresh: Vec<PortPair>,
}

struct Stream {
    index: usize,
    kind: MediaKind,
    label: Option<String>,
    /// Owned and not bound yet.
    pair: Option<PortPair>,
    /// Advertised port (0: rejected).
    port: u16,
    /// Position in the media session's streams, once bound.
    bound: Option<usize>,
    remote: Option<SocketAddr>,
    outcome: Option<MediaOutcome>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // Each step validates before it mutates, so a poisoned state is
    // consistent.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Builder {
    pub(crate) fn new(id: &str, pair: PortPair, session_id: u64, manager: Arc<Inner>) -> Builder {
        let cfg = &manager.config;
        let mut identity = LocalIdentity::new(session_id, cfg.advertised_ip());
        identity.session_name = cfg.session_name.clone();
        let now = manager.now_ms();
        Builder {
            id: id.to_owned(),
            state: Mutex::new(State {
                phase: Phase::Idle,
                negotiator: Negotiator::new(identity),
                primary: Some(pair),
                streams: Vec::new(),
                offer_streams: 1,
                direction: cfg.direction,
                payload_types: cfg.audio_payload_types(),
                session_attrs: Vec::new(),
                media_attrs: Vec::new(),
                pending: None,
                remote_sdp: None,
                session: None,
            }),
            manager,
            activity_ms: AtomicU64::new(now),
            media_seen: AtomicU64::new(0),
        }
    }

    /// The builder's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where it is in offer/answer.
    pub fn phase(&self) -> Phase {
        lock(&self.state).phase
    }

    /// The first port this builder advertises (allocated at creation).
    pub fn local_port(&self) -> Option<u16> {
        let st = lock(&self.state);
        st.streams
            .first()
            .map(|s| s.port)
            .or(st.primary.map(|p| p.rtp()))
    }

    /// How many audio streams (`m=` lines) our first offer carries
    /// (default 1). Only before that offer.
    pub fn set_audio_streams(&self, n: usize) -> Result<(), BuilderError> {
        let mut st = self.step("set_audio_streams", &[Phase::Idle])?;
        if n == 0 {
            return Err(BuilderError::NoStreams);
        }
        st.offer_streams = n;
        Ok(())
    }

    /// The audio payload types this builder offers and accepts, in order of
    /// preference, instead of the manager's (e.g. a PCMA-only trunk). PCMU
    /// (0) and PCMA (8) are supported.
    pub fn set_payload_types(&self, pts: &[u8]) -> Result<(), BuilderError> {
        let mut typed = Vec::new();
        for &p in pts {
            match PayloadType::new(p) {
                Some(t) if (p == 0 || p == 8) && !typed.contains(&t) => typed.push(t),
                _ => return Err(BuilderError::PayloadType(p)),
            }
        }
        if typed.is_empty() {
            return Err(BuilderError::NoStreams);
        }
        let mut st = lock(&self.state);
        if st.phase == Phase::Closed {
            return Err(BuilderError::Closed);
        }
        st.payload_types = typed;
        Ok(())
    }

    /// The direction we want from the next offer or answer on (hold:
    /// `SendOnly`, resume: `SendRecv`). An answer agrees to at most this
    /// and what the offer allows (RFC 3264 §6.1).
    pub fn set_direction(&self, direction: Direction) {
        lock(&self.state).direction = direction;
    }

    /// Adds `a=<name>[:<value>]` at session level to every SDP this
    /// builder writes from now on.
    pub fn add_session_attribute(
        &self,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), BuilderError> {
        check_attribute(name, value)?;
        lock(&self.state)
            .session_attrs
            .push((name.to_owned(), value.map(str::to_owned)));
        Ok(())
    }

    /// Adds `a=<name>[:<value>]` to the `m=` section `stream` (0-based) of
    /// every SDP this builder writes from now on (`label` also names the
    /// stream).
    pub fn add_media_attribute(
        &self,
        stream: usize,
        name: &str,
        value: Option<&str>,
    ) -> Result<(), BuilderError> {
        check_attribute(name, value)?;
        lock(&self.state)
            .media_attrs
            .push((stream, name.to_owned(), value.map(str::to_owned)));
        Ok(())
    }

    fn step(
        &self,
        op: &'static str,
        allowed: &[Phase],
    ) -> Result<std::sync::MutexGuard<'_, State>, BuilderError> {
        let st = lock(&self.state);
        if st.phase == Phase::Closed {
            return Err(BuilderError::Closed);
        }
        if !allowed.contains(&st.phase) {
            return Err(BuilderError::State {
                op,
                phase: st.phase,
            });
        }
        self.touch();
        Ok(st)
    }

    /// Creates our offer (initial, or a re-offer once established: same
    /// ports, the direction set by [`set_direction`](Self::set_direction)).
    /// The SDP returned is a copy: changing it changes nothing here.
    pub fn create_offer(&self) -> Result<Sdp, BuilderError> {
        let mut st = self.step("create_offer", &[Phase::Idle, Phase::Established])?;
        let reoffer = st.phase == Phase::Established;
        if !reoffer {
            // Fresh streams (or the ones a failed earlier offer left).
            let n = st.offer_streams;
            while st.streams.len() > n {
                if let Some(p) = st.streams.pop().and_then(|s| s.pair) {
                    self.manager.release_pair(p);
                }
            }
            // A stream left without a pair by a failed bind gets a new one.
            for i in 0..st.streams.len() {
                if st.streams[i].pair.is_none() {
                    match self.manager.allocate_pair() {
                        Ok(p) => {
                            st.streams[i].pair = Some(p);
                            st.streams[i].port = p.rtp();
                        }
                        Err(e) => return Err(BuilderError::NoPorts(e)),
                    }
                }
            }
            while st.streams.len() < n {
                let pair = match st.primary.take() {
                    Some(p) => p,
                    // The streams pushed so far own their pairs: a retry
                    // reuses them, `close` releases them.
                    None => self
                        .manager
                        .allocate_pair()
                        .map_err(BuilderError::NoPorts)?,
                };
                let index = st.streams.len();
                st.streams.push(Stream {
                    index,
                    kind: MediaKind::Audio,
                    label: None,
                    pair: Some(pair),
                    port: pair.rtp(),
                    bound: None,
                    remote: None,
                    outcome: None,
                });
            }
            let labels: Vec<(usize, String)> = st
                .media_attrs
                .iter()
                .filter(|(_, n, _)| n == "label")
                .filter_map(|(i, _, v)| v.clone().map(|v| (*i, v)))
                .collect();
            for (i, l) in labels {
                if let Some(s) = st.streams.get_mut(i) {
                    s.label = Some(l);
                }
            }
        }
        let caps: Vec<MediaCapabilities> = st
            .streams
            .iter()
            .map(|s| self.caps(s.port, st.direction, &st.payload_types))
            .collect();
        let mut sdp = st.negotiator.create_offer(&caps)?;
        if let Err(e) = self.decorate(&st, &mut sdp, None) {
            st.negotiator.cancel_offer();
            return Err(e);
        }
        st.phase = if reoffer {
            Phase::ReofferSent
        } else {
            Phase::OfferSent
        };
        Ok(sdp)
    }

    /// Applies the peer's answer to our offer: binds the accepted streams'
    /// sockets (the far end's address is now known), or, for a re-offer,
    /// moves the running media to the new direction and address. Rejected
    /// streams' ports are released.
    pub fn process_answer(&self, answer: &Sdp) -> Result<(), BuilderError> {
        let mut st = self.step("process_answer", &[Phase::OfferSent, Phase::ReofferSent])?;
        let reoffer = st.phase == Phase::ReofferSent;
        if answer.media().is_empty() {
            return Err(BuilderError::NoMedia);
        }
        // A count mismatch leaves our offer outstanding (retry with a
        // corrected answer); other failures end it.
        let negotiated = match st.negotiator.handle_answer(answer) {
            Ok(n) => n,
            Err(e @ crate::sdp::NegotiationError::MediaCountMismatch { .. }) => {
                return Err(e.into());
            }
            Err(e) => {
                st.phase = if reoffer {
                    Phase::Established
                } else {
                    Phase::Idle
                };
                return Err(e.into());
            }
        };
        let result = self.apply(&mut st, &negotiated, None);
        if result.is_err() {
            st.phase = if reoffer {
                Phase::Established
            } else {
                Phase::Idle
            };
            return result;
        }
        st.remote_sdp = Some(answer.clone());
        st.phase = Phase::Established;
        Ok(())
    }

    /// Withdraws our outstanding offer: the peer rejected it (SIP 488), or
    /// both sides offered at once (glare, SIP 491) and ours gives way.
    /// `OfferSent` → `Idle` (the ports stay allocated for the next offer),
    /// `ReofferSent` → `Established` (the running media is untouched). The
    /// `o=` version the withdrawn offer used stays consumed (RFC 3264 §8).
    pub fn cancel_offer(&self) -> Result<(), BuilderError> {
        let mut st = self.step("cancel_offer", &[Phase::OfferSent, Phase::ReofferSent])?;
        st.negotiator.cancel_offer();
        st.phase = if st.phase == Phase::ReofferSent {
            Phase::Established
        } else {
            Phase::Idle
        };
        Ok(())
    }

    /// Takes the peer's offer (initial, or a re-offer once established)
    /// and prepares our answer; sockets are bound by
    /// [`create_answer`](Self::create_answer). Non-audio `m=` lines and
    /// audio ones without a common codec will be answered with port 0. An
    /// offer with no usable audio stream is refused and changes nothing.
    /// The answer asks for the offer's `a=ptime` when it is one this
    /// library supports (10-60 ms in steps of 10 ms), else the configured
    /// one; a re-offer keeps the ptime in use.
    pub fn process_offer(&self, offer: &Sdp) -> Result<(), BuilderError> {
        let mut st = self.step("process_offer", &[Phase::Idle, Phase::Established])?;
        let reoffer = st.phase == Phase::Established;
        if offer.media().is_empty() {
            return Err(BuilderError::NoMedia);
        }
        // One capability entry (and port pair) per offered audio m= line:
        // the stream's own pair on a re-offer, the primary pair for the
        // first, a fresh one for the others.
        let mut pairs: Vec<Option<PortPair>> = Vec::new();
        let mut ports: Vec<u16> = Vec::new();
        let mut ptimes: Vec<Option<u32>> = Vec::new();
        let mut fresh: Vec<PortPair> = Vec::new();
        let mut primary = st.primary;
        for (i, m) in offer.media().iter().enumerate() {
            if m.kind() != MediaKind::Audio {
                continue;
            }
            let existing = st.streams.iter().find(|s| s.index == i && s.port != 0);
            // Answer with the ptime the offer asks for (RFC 3264 §5.1), so
            // both directions packetise alike; a running stream keeps its
            // own.
            let ptime = match existing {
                Some(s) => s.outcome.as_ref().and_then(|o| o.ptime),
                None => m.section().ptime().filter(|&p| supported_ptime(p)),
            };
            let (pair, port) = match existing {
                Some(s) => (s.pair, s.port),
                None if reoffer => {
                    // A stream added by a re-offer is declined: the call
                    // keeps the streams it has.
                    continue;
                }
                None => match primary.take() {
                    Some(p) => (Some(p), p.rtp()),
                    None => match self.manager.allocate_pair() {
                        Ok(p) => {
                            fresh.push(p);
                            (Some(p), p.rtp())
                        }
                        Err(e) => {
                            for p in fresh {
                                self.manager.release_pair(p);
                            }
                            return Err(BuilderError::NoPorts(e));
                        }
                    },
                },
            };
            pairs.push(pair);
            ports.push(port);
            ptimes.push(ptime);
        }
        let caps: Vec<MediaCapabilities> = ports
            .iter()
            .zip(&ptimes)
            .map(|(&p, &ptime)| {
                let mut c = self.caps(p, st.direction, &st.payload_types);
                if ptime.is_some() {
                    c.ptime = ptime;
                }
                c
            })
            .collect();
        let release_fresh = |fresh: Vec<PortPair>| {
            for p in fresh {
                self.manager.release_pair(p);
            }
        };
        let mut answer = match st.negotiator.handle_offer(offer, &caps) {
            Ok(a) => a,
            Err(e) => {
                release_fresh(fresh);
                return Err(e.into());
            }
        };
        if reoffer {
            // The answer gives each accepted m= line the first unused
            // capability entry; when a line before it is disabled or has no
            // common codec, that entry's port is another stream's. A
            // running stream keeps its own port.
            for (i, m) in answer.negotiated.media.iter().enumerate() {
                let own = st
                    .streams
                    .iter()
                    .find(|s| s.index == i && s.port != 0)
                    .map(|s| s.port);
                if let (true, Some(port)) = (m.is_accepted(), own) {
                    if let Some(sec) = answer.sdp.media_mut().get_mut(i) {
                        if sec.port() != port {
                            sec.set_port(port);
                        }
                    }
                }
            }
        }
        if !answer
            .negotiated
            .media
            .iter()
            .any(MediaOutcome::is_accepted)
            || answer
                .negotiated
                .media
                .iter()
                .filter(|m| m.is_accepted())
                .any(|m| {
                    StreamPlan::from_negotiated(&m.codecs, &[], Duration::ZERO, m.direction)
                        .is_none()
                })
        {
            release_fresh(fresh);
            return Err(BuilderError::NoSupportedMedia);
        }
        for (i, m) in answer.negotiated.media.iter().enumerate() {
            if m.is_accepted() && remote_addr(m).is_err() {
                release_fresh(fresh);
                return Err(BuilderError::NoAddress(i));
            }
        }
        // Supersede an earlier offer not yet answered.
        if let Some(old) = st.pending.take() {
            for p in old.fresh {
                self.manager.release_pair(p);
            }
        }
        st.pending = Some(PendingAnswer {
            answer,
            offer: offer.clone(),
            pairs,
            fresh,
        });
        st.phase = if reoffer {
            Phase::ReofferReceived
        } else {
            Phase::OfferReceived
        };
        Ok(())
    }

    /// Our answer to the offer taken by [`process_offer`](Self::process_offer):
    /// binds the accepted streams' sockets (or moves running media to the
    /// new direction and address on a re-offer) and returns the SDP.
    pub fn create_answer(&self) -> Result<Sdp, BuilderError> {
        let mut st = self.step(
            "create_answer",
            &[Phase::OfferReceived, Phase::ReofferReceived],
        )?;
        let reoffer = st.phase == Phase::ReofferReceived;
        let Some(pending) = st.pending.take() else {
            return Err(BuilderError::State {
                op: "create_answer",
                phase: st.phase,
            });
        };
        let mut sdp = pending.answer.sdp.clone();
        self.decorate(&st, &mut sdp, Some(&pending.offer))?;
        if !reoffer {
            // The streams follow the offer's m= lines; pairs of streams of
            // ours that the offer did not take (a withdrawn offer of ours
            // had more) go back.
            let kept: Vec<u16> = pending.pairs.iter().flatten().map(|p| p.rtp()).collect();
            for old in st.streams.drain(..) {
                if let Some(p) = old.pair.filter(|p| !kept.contains(&p.rtp())) {
                    self.manager.release_pair(p);
                }
            }
            if let Some(p) = st.primary.take().filter(|p| !kept.contains(&p.rtp())) {
                self.manager.release_pair(p);
            }
            st.streams = pending
                .offer
                .media()
                .iter()
                .enumerate()
                .map(|(i, m)| Stream {
                    index: i,
                    kind: m.kind(),
                    label: m.section().label().and_then(usable_label),
                    pair: None,
                    port: 0,
                    bound: None,
                    remote: None,
                    outcome: None,
                })
                .collect();
        }
        let result = self.apply(&mut st, &pending.answer.negotiated, Some(&pending.pairs));
        if let Err(e) = result {
            st.phase = if reoffer {
                Phase::Established
            } else {
                Phase::Idle
            };
            return Err(e);
        }
        st.remote_sdp = Some(pending.offer);
        st.phase = Phase::Established;
        Ok(sdp)
    }

    /// The media session, once negotiated (not started: call
    /// [`MediaSession::start`]).
    pub fn media_session(&self) -> Option<MediaSession> {
        self.touch();
        lock(&self.state).session.clone()
    }

    /// The media session without counting as activity (metrics scrapes
    /// must not keep idle builders alive).
    pub(crate) fn session_quietly(&self) -> Option<MediaSession> {
        lock(&self.state).session.clone()
    }

    /// What is known about each stream, in `m=` order.
    pub fn media_streams(&self) -> Vec<MediaStreamInfo> {
        let st = lock(&self.state);
        let ip = self.manager.config.advertised_ip();
        st.streams
            .iter()
            .map(|s| {
                let o = s.outcome.as_ref();
                MediaStreamInfo {
                    id: self.stream_id(s),
                    media_type: s.kind,
                    index: s.index,
                    local: (s.port != 0).then(|| SocketAddr::new(ip, s.port)),
                    remote: s.remote,
                    payload_type: o.and_then(|o| o.codecs.first()).map(|c| c.remote.value()),
                    codec: o.and_then(|o| o.codecs.first()).map(|c| c.name.clone()),
                    telephone_event: o
                        .and_then(|o| o.telephone_events.first())
                        .map(|c| c.remote.value()),
                    direction: o.map_or(Direction::Inactive, |o| o.direction),
                    label: s.label.clone(),
                    rtcp_mux: o.is_some_and(|o| o.rtcp_mux),
                    bound: s.bound.is_some(),
                    rejection: o.and_then(|o| o.rejection),
                }
            })
            .collect()
    }

    /// The peer's last SDP (offer or answer), to read its attributes.
    pub fn remote_sdp(&self) -> Option<Sdp> {
        lock(&self.state).remote_sdp.clone()
    }

    /// Stops the media (RTCP BYE), unbinds the sockets and releases every
    /// port pair (quarantined for the release delay). A second call is
    /// `Closed`. The manager still lists the builder until
    /// [`release_builder`](super::BuilderManager::release_builder).
    pub fn close(&self) -> Result<(), BuilderError> {
        let mut st = lock(&self.state);
        if st.phase == Phase::Closed {
            return Err(BuilderError::Closed);
        }
        st.phase = Phase::Closed;
        let session = st.session.take();
        let inner = &mut *st;
        let mut pairs: Vec<PortPair> = inner
            .streams
            .iter_mut()
            .filter_map(|s| s.pair.take())
            .collect();
        pairs.extend(inner.primary.take());
        pairs.extend(inner.pending.take().into_iter().flat_map(|p| p.fresh));
        drop(st);
        if let Some(s) = session {
            let _ = s.stop();
            for stream in s.streams() {
                self.manager.with_engine(|e| e.delete_call(stream.call));
            }
        }
        for p in pairs {
            self.manager.release_pair(p);
        }
        Ok(())
    }

    pub(crate) fn close_quietly(&self) {
        let _ = self.close();
    }

    pub(crate) fn touch(&self) {
        self.activity_ms
            .fetch_max(self.manager.now_ms(), Ordering::Relaxed);
    }

    pub(crate) fn last_activity_ms(&self) -> u64 {
        self.activity_ms.load(Ordering::Relaxed)
    }

    /// Media received since the last look counts as activity.
    pub(crate) fn observe_media(&self) {
        let Some(s) = lock(&self.state).session.clone() else {
            return;
        };
        let seen = s.activity();
        if self.media_seen.swap(seen, Ordering::Relaxed) != seen {
            self.touch();
        }
    }

    fn stream_id(&self, s: &Stream) -> String {
        s.label
            .clone()
            .unwrap_or_else(|| format!("{}_{}_{}", self.id, kind_name(s.kind), s.index))
    }

    fn caps(&self, port: u16, direction: Direction, pts: &[PayloadType]) -> MediaCapabilities {
        let cfg = &self.manager.config;
        let mut c = MediaCapabilities::audio(port);
        for &pt in pts {
            c = c.with_codec(if pt == PayloadType::PCMA {
                Codec::pcma()
            } else {
                Codec::pcmu()
            });
        }
        if let Some(te) = cfg.dtmf_payload_type.and_then(PayloadType::new) {
            c = c.with_telephone_event(te, TelephoneEvents::DTMF);
        }
        c.ptime = Some(cfg.ptime.as_millis() as u32);
        c.direction = direction;
        c.rtcp_mux = cfg.rtcp_mux;
        c
    }

    /// Adds `a=tool`, our custom attributes and echoed labels.
    fn decorate(&self, st: &State, sdp: &mut Sdp, offer: Option<&Sdp>) -> Result<(), BuilderError> {
        let ua = &self.manager.config.user_agent;
        if !ua.is_empty() {
            sdp.session_mut().insert_attribute("tool", Some(ua))?;
        }
        for (n, v) in &st.session_attrs {
            sdp.session_mut().insert_attribute(n, v.as_deref())?;
        }
        let count = sdp.media().len();
        for i in 0..count {
            let echoed = offer
                .and_then(|o| o.media().get(i))
                .and_then(|m| m.section().label().and_then(usable_label));
            let Some(m) = sdp.media_mut().get_mut(i) else {
                continue;
            };
            if m.port() == 0 {
                continue;
            }
            if let Some(l) = echoed {
                if m.section().label().is_none() {
                    m.section_mut().insert_attribute("label", Some(&l))?;
                }
            }
            for (_, n, v) in st.media_attrs.iter().filter(|(k, _, _)| *k == i) {
                if n == "label" && m.section().label().is_some() {
                    continue;
                }
                m.section_mut().insert_attribute(n, v.as_deref())?;
            }
        }
        Ok(())
    }

    /// Records the negotiated outcome of every stream, binds the accepted
    /// ones not bound yet and updates the bound ones. `pairs`: the callee's
    /// pair per caps entry (the caller's streams own theirs).
    fn apply(
        &self,
        st: &mut State,
        negotiated: &Negotiated,
        pairs: Option<&[Option<PortPair>]>,
    ) -> Result<(), BuilderError> {
        let cfg = &self.manager.config;
        let ip = cfg.advertised_ip();
        let _ = ip;
        // Validate first: nothing is bound unless every stream can be.
        let mut plans: Vec<Option<(StreamPlan, Option<SocketAddr>)>> = Vec::new();
        for (i, m) in negotiated.media.iter().enumerate() {
            if !m.is_accepted() {
                plans.push(None);
                continue;
            }
            let ptime = Duration::from_millis(u64::from(
                m.ptime
                    .unwrap_or(cfg.ptime.as_millis() as u32)
                    .clamp(10, 60),
            ));
            let mut plan =
                StreamPlan::from_negotiated(&m.codecs, &m.telephone_events, ptime, m.direction)
                    .ok_or(BuilderError::NoSupportedMedia)?;
            // The far end packetises as our own SDP asked: the callee's
            // answer carries the negotiated ptime, the caller's offer its
            // configured one (RFC 8866 §6.4: a=ptime is what the writer
            // wants to receive).
            plan.receive_ptime = if pairs.is_some() { ptime } else { cfg.ptime };
            // Telephone-events arrive with the number our own SDP gave them:
            // the offer's (echoed in our answer) for the callee, ours for
            // the caller, whatever the answer renumbered them to.
            if pairs.is_none() {
                plan.receive_telephone_event = m.telephone_events.first().map(|t| t.local);
            }
            let remote = remote_addr(m).map_err(|()| BuilderError::NoAddress(i))?;
            plans.push(Some((plan, remote)));
        }
        if plans.iter().all(Option::is_none) {
            // Nothing accepted: release what the rejected streams held.
            return Err(BuilderError::NoSupportedMedia);
        }
        let mut new_streams: Vec<SessionStream> = Vec::new();
        let mut bound_calls: Vec<CallId> = Vec::new();
        let mut consumed: Vec<u16> = Vec::new();
        let existing = st.session.clone();
        for (i, (m, plan)) in negotiated.media.iter().zip(plans).enumerate() {
            let Some(stream) = st.streams.get_mut(i) else {
                continue;
            };
            stream.outcome = Some(m.clone());
            let Some((plan, remote)) = plan else {
                // Rejected: give its port back (RFC 3264 §6: port 0); a
                // running stream a re-offer disables stops (§8.2).
                match (stream.bound.take(), &existing) {
                    (Some(k), Some(s)) => {
                        if let Some(ss) = s.streams().get(k) {
                            s.apply_direction(k, Direction::Inactive);
                            let call = ss.call;
                            self.manager.with_engine(|e| e.delete_call(call));
                        }
                    }
                    _ => {
                        if let Some(p) = stream.pair.take() {
                            self.manager.release_pair(p);
                        }
                    }
                }
                stream.port = 0;
                continue;
            };
            stream.remote = remote;
            let rtcp = remote_rtcp(m, remote);
            if let (Some(k), Some(s)) = (stream.bound, &existing) {
                // Re-offer: the media follows.
                if let Some(ss) = s.streams().get(k) {
                    let update = LegUpdate {
                        remote_rtp: remote,
                        remote_rtcp: rtcp,
                        ..LegUpdate::default()
                    };
                    let _ = self
                        .manager
                        .with_engine(|e| e.update_leg(ss.call, 0, update));
                }
                s.apply_direction(k, plan.direction);
                s.set_remote(k, remote);
                continue;
            }
            if existing.is_some() {
                continue;
            }
            let pair = match pairs {
                Some(p) => m.local.and_then(|l| p.get(l).copied().flatten()),
                None => stream.pair,
            };
            let Some(pair) = pair else {
                continue;
            };
            stream.pair = None;
            stream.port = pair.rtp();
            let failed = pair.rtp();
            let parked = Arc::new(AtomicU64::new(0));
            let mut plan = plan;
            plan.remote = remote;
            let spec = EndpointSpec {
                tag: 0,
                leg: LegOptions {
                    rtcp_mux: m.rtcp_mux,
                    remote_rtp: remote,
                    remote_rtcp: rtcp,
                    ..LegOptions::default()
                },
            };
            let bound = self
                .manager
                .with_engine(|e| {
                    e.create_endpoint_on(
                        spec,
                        pair,
                        Box::new(Parked {
                            received: parked.clone(),
                        }),
                    )
                })
                .unwrap_or(Err(crate::engine::EngineError::ShardGone(0)));
            let info = match bound {
                Ok(info) => info,
                Err(e) => {
                    // The engine released this pair; unbind what this step
                    // bound (their pairs go back with the calls) and, on the
                    // callee side, give back the pairs not reached.
                    stream.port = 0;
                    for c in &bound_calls {
                        self.manager.with_engine(|en| en.delete_call(*c));
                    }
                    for s in st.streams.iter_mut() {
                        if s.bound.take().is_some() {
                            s.port = 0;
                        }
                    }
                    if let Some(p) = pairs {
                        for pair in p.iter().flatten() {
                            if pair.rtp() != failed && !consumed.contains(&pair.rtp()) {
                                self.manager.release_pair(*pair);
                            }
                        }
                    }
                    return Err(BuilderError::Engine(e));
                }
            };
            consumed.push(pair.rtp());
            bound_calls.push(info.id);
            stream.bound = Some(new_streams.len());
            let local = SocketAddr::new(cfg.advertised_ip(), pair.rtp());
            new_streams.push(SessionStream::new(
                self.stream_id(stream),
                info.id,
                local,
                parked,
                plan,
            ));
        }
        // Callee: pairs of caps entries no stream took go back.
        if let Some(p) = pairs {
            let used: Vec<usize> = negotiated.media.iter().filter_map(|m| m.local).collect();
            for (k, pair) in p.iter().enumerate() {
                if let Some(pair) = pair {
                    if !used.contains(&k)
                        && !st
                            .streams
                            .iter()
                            .any(|s| s.bound.is_some() && s.port == pair.rtp())
                    {
                        self.manager.release_pair(*pair);
                    }
                }
            }
        }
        if existing.is_none() {
            st.session = Some(MediaSession::new(self.manager.clone(), new_streams));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder")
            .field("id", &self.id)
            .field("phase", &self.phase())
            .finish_non_exhaustive()
    }
}

fn kind_name(k: MediaKind) -> &'static str {
    match k {
        MediaKind::Audio => "audio",
        MediaKind::Video => "video",
        _ => "media",
    }
}

/// A packetisation time this library sends and plays out: 10 to 60 ms in
/// steps of 10 ms (as [`ManagerConfig::ptime`](super::ManagerConfig::ptime)).
fn supported_ptime(ms: u32) -> bool {
    (10..=60).contains(&ms) && ms.is_multiple_of(10)
}

/// A peer's `a=label` we can echo and name a stream after: writable in SDP
/// and at most 64 bytes (a longer or malformed one is ignored).
fn usable_label(l: &str) -> Option<String> {
    (l.len() <= 64 && !l.is_empty() && crate::sdp::check_attribute("label", Some(l)).is_ok())
        .then(|| l.to_owned())
}

fn check_attribute(name: &str, value: Option<&str>) -> Result<(), BuilderError> {
    crate::sdp::check_attribute(name, value).map_err(BuilderError::Attribute)
}

/// The far end's RTP address of an accepted stream: `Ok(None)` for the
/// hold address `0.0.0.0` (RFC 3264 §8.4), `Err` when the SDP names none
/// (or a host name: this library resolves nothing).
fn remote_addr(m: &MediaOutcome) -> Result<Option<SocketAddr>, ()> {
    match &m.remote.address {
        Some(Address::Ip(ip)) if ip.is_unspecified() => Ok(None),
        Some(Address::Ip(ip)) => Ok(Some(SocketAddr::new(*ip, m.remote.port))),
        _ => Err(()),
    }
}

/// The far end's RTCP address: `a=rtcp` (RFC 3605), the RTP address under
/// rtcp-mux, else RTP port + 1.
fn remote_rtcp(m: &MediaOutcome, rtp: Option<SocketAddr>) -> Option<SocketAddr> {
    let rtp = rtp?;
    if m.rtcp_mux {
        return Some(rtp);
    }
    if let Some(r) = &m.remote.rtcp {
        let ip: IpAddr = r
            .connection
            .as_ref()
            .and_then(|c| c.address.ip())
            .unwrap_or(rtp.ip());
        return Some(SocketAddr::new(ip, r.port));
    }
    Some(SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)))
}
