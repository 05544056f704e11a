//! ICE in a shard: a leg whose far end speaks ICE (RFC 8445) has an
//! [`IceAgent`] on its sockets (component 1 on the RTP socket, component 2
//! on the RTCP socket unless RTCP is muxed). STUN packets (RFC 7983 §7)
//! arriving on those sockets go to the agent instead of the relay table;
//! the agent's checks and responses leave as the shard's own transmits;
//! the pair it selects becomes the leg's far-end address, as if signalled.
//!
//! Contract: only streams with an agent are touched; a shard without any
//! pays one `is_empty` check per packet. Agents with work (input handled,
//! timer due, just configured) are served by
//! [`super::PacketSink::poll_transmit`]; their deadlines are kept in a
//! min-heap with lazy deletion, so a shard with thousands of agents does
//! not scan them each turn. Everything else (RTP, RTCP, DTLS) on an ICE
//! leg goes to the relay table as before.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
#[cfg(test)]
use std::time::Duration;
use std::time::Instant;

use crate::ice::{AgentConfig, IceAgent, IceEvent};
use crate::relay::{LegKey, LegStreams, StreamKey};

use super::schedule::Schedule;

use super::{IceUpdate, LegIce};

/// One leg's agent.
struct LegAgent {
    agent: IceAgent,
    /// What it was made with (candidates: every one added so far).
    params: LegIce,
    streams: LegStreams,
    /// The deadline in the heap, if any.
    armed: Option<Instant>,
    /// Queued for service in `schedule`.
    queued: bool,
    /// The far ends selected per component (1, 2).
    chosen: [Option<SocketAddr>; 2],
    /// Consent lost per component (1, 2), until a pair is selected again.
    lost: [bool; 2],
}

/// A transmit of an agent: the socket to send from, where to, how long.
pub(crate) struct IceSend {
    pub via: StreamKey,
    pub dest: SocketAddr,
    pub len: usize,
}

/// The shard's ICE agents.
#[derive(Default)]
pub(crate) struct IceSide {
    legs: HashMap<LegKey, LegAgent>,
    /// Stream to (leg, component).
    streams: HashMap<StreamKey, (LegKey, u16)>,
    /// Agents with work and their deadlines.
    schedule: Schedule<LegKey>,
    /// Legs whose selected pairs changed since the shard last asked:
    /// (leg, RTP far end, RTCP far end).
    selected: VecDeque<(LegKey, Option<SocketAddr>, Option<SocketAddr>)>,
    /// Consent changes (RFC 7675) for the table: (leg, component 1 or 2,
    /// granted). Kept when the last agent goes: a removed agent gives back
    /// the consent it had withdrawn.
    consent: VecDeque<(LegKey, u16, bool)>,
}

impl IceSide {
    /// No leg of this shard speaks ICE.
    pub(crate) fn is_empty(&self) -> bool {
        self.legs.is_empty()
    }

    /// Applies a leg's ICE update. `muxed`: its RTCP shares the RTP socket.
    pub(crate) fn set(
        &mut self,
        now: Instant,
        streams: LegStreams,
        update: IceUpdate,
        muxed: bool,
    ) {
        let leg = streams.leg;
        let params = match update {
            IceUpdate::Off => {
                self.remove_leg(leg);
                return;
            }
            IceUpdate::On(p) => *p,
        };
        if let Some(la) = self.legs.get_mut(&leg) {
            let same = la.params.local == params.local
                && la.params.remote == params.remote
                && la.params.controlling == params.controlling
                && la.params.remote_lite == params.remote_lite;
            if same {
                // A re-offer with the same credentials: new candidates
                // only (trickled or added); the checks go on.
                for c in &params.candidates {
                    if !la.params.candidates.contains(c) {
                        la.agent.add_remote(c);
                        la.params.candidates.push(c.clone());
                    }
                }
                self.mark_ready(leg);
                return;
            }
        }
        self.remove_leg(leg);
        let mut agent = IceAgent::new(
            AgentConfig {
                local: params.local.clone(),
                remote: params.remote.clone(),
                controlling: params.controlling,
                tie_breaker: params.tie_breaker,
                remote_lite: params.remote_lite,
            },
            now,
        );
        agent.add_local(1, params.local_rtp);
        self.streams.insert(streams.rtp, (leg, 1));
        if !muxed && streams.rtcp != streams.rtp {
            agent.add_local(2, params.local_rtcp);
            self.streams.insert(streams.rtcp, (leg, 2));
        }
        for c in &params.candidates {
            agent.add_remote(c);
        }
        self.legs.insert(
            leg,
            LegAgent {
                agent,
                params,
                streams,
                armed: None,
                queued: false,
                chosen: [None; 2],
                lost: [false; 2],
            },
        );
        self.mark_ready(leg);
    }

    /// Forgets the agents of these streams' legs (a removed call).
    pub(crate) fn remove(&mut self, streams: &[StreamKey]) {
        for s in streams {
            if let Some((leg, _)) = self.streams.get(s).copied() {
                self.remove_leg(leg);
            }
        }
    }

    fn remove_leg(&mut self, leg: LegKey) {
        if let Some(la) = self.legs.remove(&leg) {
            self.streams.remove(&la.streams.rtp);
            self.streams.remove(&la.streams.rtcp);
            // With no agent nothing checks consent: the leg goes back to
            // sending as a leg without ICE does (a new agent withdraws it
            // again if its consent expires).
            for (component, lost) in (1u16..).zip(la.lost) {
                if lost {
                    self.consent.push_back((leg, component, true));
                }
            }
        }
        if self.legs.is_empty() {
            // No agent left: no stale deadline may keep the shard awake
            // (the heap is drained lazily only while agents are served).
            self.schedule.clear();
            self.selected.clear();
        }
    }

    /// The far end ICE selected for `leg`'s RTP component, if any.
    pub(crate) fn selected_rtp(&self, leg: LegKey) -> Option<SocketAddr> {
        self.legs.get(&leg).and_then(|la| la.chosen[0])
    }

    /// A datagram on `stream`: a STUN packet for one of the agents is
    /// handled (`true`: the shard took it); anything else is the table's.
    pub(crate) fn handle(
        &mut self,
        now: Instant,
        stream: StreamKey,
        src: SocketAddr,
        data: &[u8],
    ) -> bool {
        // The first byte first (RFC 7983 §7): RTP pays no lookup.
        if !crate::stun::is_stun(data) {
            return false;
        }
        let Some(&(leg, component)) = self.streams.get(&stream) else {
            return false;
        };
        if let Some(la) = self.legs.get_mut(&leg) {
            // A malformed or unauthenticated request is dropped by the
            // agent (RFC 8489 §6.3); nothing else changes.
            let _ = la.agent.handle_stun(now, component, src, data);
            self.mark_ready(leg);
        }
        true
    }

    fn mark_ready(&mut self, leg: LegKey) {
        if let Some(la) = self.legs.get_mut(&leg) {
            if !la.queued {
                la.queued = true;
                self.schedule.push_ready(leg);
            }
        }
    }

    /// When the shard must turn next for its agents.
    pub(crate) fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        if self.legs.is_empty() {
            return None;
        }
        self.schedule.poll_timeout(now)
    }

    /// The next datagram an agent sends, written into `buf`; runs the
    /// timers that are due.
    pub(crate) fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<IceSend> {
        loop {
            let Some(leg) = self.schedule.current() else {
                // Served through: the timers due now may queue some again.
                self.run_due_timers(now);
                if !self.schedule.has_ready() {
                    return None;
                }
                continue;
            };
            let Some(la) = self.legs.get_mut(&leg) else {
                self.schedule.advance();
                continue;
            };
            let mut changed = false;
            while let Some(ev) = la.agent.poll_event() {
                match ev {
                    IceEvent::Selected { component, remote } => {
                        let i = usize::from(component.max(1) - 1);
                        let regained = la.lost.get(i) == Some(&true);
                        if let Some(c) = la.chosen.get_mut(i) {
                            changed |= *c != Some(remote) || regained;
                            *c = Some(remote);
                        }
                        if regained {
                            la.lost[i] = false;
                            self.consent.push_back((leg, component, true));
                        }
                    }
                    // RFC 7675 §5.1: consent expired; the relay stops
                    // sending there until another pair is selected (the
                    // agent does not use the expired one again).
                    IceEvent::ConsentLost { component } => {
                        let i = usize::from(component.max(1) - 1);
                        if la.lost.get(i) == Some(&false) {
                            la.lost[i] = true;
                            tracing::info!(
                                ?leg,
                                component,
                                "ICE consent expired: nothing more is sent to that far end"
                            );
                            self.consent.push_back((leg, component, false));
                        }
                    }
                    _ => {}
                }
            }
            if changed {
                let [rtp, rtcp] = la.chosen;
                self.selected.push_back((leg, rtp, rtcp));
            }
            if let Some(t) = la.agent.poll_transmit(now, buf) {
                let via = if t.component == 2 {
                    la.streams.rtcp
                } else {
                    la.streams.rtp
                };
                return Some(IceSend {
                    via,
                    dest: t.to,
                    len: t.len.min(buf.len()),
                });
            }
            // Served: re-arm its timer.
            la.queued = false;
            self.schedule.advance();
            let next = la.agent.poll_timeout();
            if next != la.armed {
                la.armed = next;
                if let Some(at) = next {
                    self.schedule.arm(at, leg);
                }
            }
        }
    }

    fn run_due_timers(&mut self, now: Instant) {
        while let Some((at, leg)) = self.schedule.pop_due(now) {
            let Some(la) = self.legs.get_mut(&leg) else {
                continue;
            };
            if la.armed != Some(at) {
                continue;
            }
            la.armed = None;
            la.agent.handle_timeout(now);
            self.mark_ready(leg);
        }
    }

    /// A leg whose selected pairs changed since the last call: (leg, RTP
    /// far end, RTCP far end), in the order they changed.
    pub(crate) fn poll_selected(
        &mut self,
    ) -> Option<(LegKey, Option<SocketAddr>, Option<SocketAddr>)> {
        self.selected.pop_front()
    }

    /// A consent change for the table: (leg, component 1 or 2, granted),
    /// in the order they happened.
    pub(crate) fn poll_consent(&mut self) -> Option<(LegKey, u16, bool)> {
        self.consent.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::LegIce;
    use crate::ice::IceCredentials;
    use crate::relay::Key;

    /// An agent with timers, removed: no deadline is left to wake the
    /// shard (it would spin on a past one).
    #[test]
    fn removing_the_last_agent_leaves_no_deadline() {
        let now = Instant::now();
        let streams = LegStreams {
            leg: Key::from_parts(1, 0),
            rtp: Key::from_parts(2, 0),
            rtcp: Key::from_parts(3, 0),
        };
        let creds = |u: &str| IceCredentials::new(u, "passwordpasswordpassword").unwrap();
        let params = LegIce {
            local: creds("locl"),
            remote: creds("remo"),
            candidates: vec![
                "1 1 UDP 2130706431 127.0.0.1 5000 typ host"
                    .parse()
                    .unwrap(),
            ],
            controlling: true,
            remote_lite: false,
            tie_breaker: 7,
            local_rtp: "127.0.0.1:40000".parse().unwrap(),
            local_rtcp: "127.0.0.1:40001".parse().unwrap(),
        };
        let mut side = IceSide::default();
        side.set(now, streams, IceUpdate::On(Box::new(params)), false);
        let mut buf = [0u8; 1500];
        let t = side.poll_transmit(now, &mut buf).expect("a check");
        assert_eq!((t.via, t.dest.port()), (streams.rtp, 5000));
        while side.poll_transmit(now, &mut buf).is_some() {}
        assert!(
            side.poll_timeout(now).is_some_and(|t| t > now),
            "a retransmission is due"
        );
        // A STUN datagram on a stream of the leg goes to the agent; RTP
        // does not.
        assert!(!side.handle(
            now,
            streams.rtp,
            "127.0.0.1:5000".parse().unwrap(),
            &[0x80; 12]
        ));
        side.remove(&[streams.rtp]);
        assert!(side.is_empty());
        assert_eq!(side.poll_timeout(now), None);
        assert!(
            side.poll_transmit(now + Duration::from_secs(5), &mut buf)
                .is_none()
        );
    }
}
