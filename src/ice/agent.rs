//! The ICE agent of one media stream (RFC 8445): connectivity checks from
//! the relay's host candidates to the peer's candidates, responses to the
//! peer's checks, nomination, and consent freshness on the selected pair
//! (RFC 7675).
//!
//! The relay has one local candidate per component (its socket), so the
//! checklist has one pair per remote candidate: pair and remote candidate
//! are the same record here. Pairs start Waiting (the frozen algorithm of
//! RFC 8445 §6.1.2.6 only orders checks across local candidates, of which
//! there is one per component). One check starts every Ta (20 ms),
//! triggered checks first (§6.1.4.2).
//!
//! Nomination is regular (RFC 8445 §8.1.1): the controlling agent repeats
//! the check of a valid pair with USE-CANDIDATE once no higher-priority
//! pair of that component can still succeed, or [`NOMINATION_WAIT`] after
//! the component's first valid pair. Against an ICE-lite peer this agent is
//! always controlling (§6.1.1).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::candidate::{Candidate, host_priority, prflx_priority};
use super::credentials::IceCredentials;
use crate::stun::{
    BINDING, BindingRequest, Class, Message, StunError, TransactionId, write_binding_error,
    write_binding_request, write_binding_success,
};

/// Pacing of new checks, Ta: 20 ms, RFC 5245 §16.1's value for RTP
/// streams (RFC 8445 §14.2 defaults to 50 ms).
pub const TA: Duration = Duration::from_millis(20);
/// Least retransmission timeout of a check (RFC 8445 §14.3).
pub const RTO_MIN: Duration = Duration::from_millis(500);
/// Retransmission timeout after doubling stops.
pub const RTO_MAX: Duration = Duration::from_secs(3);
/// Transmissions of one check before it fails (RFC 8489 §6.2.1, Rc = 7).
pub const MAX_TRANSMISSIONS: u8 = 7;
/// How long the controlling agent waits for a better pair after the first
/// valid pair of a component before nominating the best valid one.
pub const NOMINATION_WAIT: Duration = Duration::from_millis(500);
/// Mean interval of consent checks on the selected pair (RFC 7675 §5.1:
/// 5 s, randomised to 0.8..1.2 of it).
pub const CONSENT_INTERVAL: Duration = Duration::from_secs(5);
/// Mean interval of consent checks while a response is overdue.
pub const CONSENT_RETRY: Duration = Duration::from_secs(1);
/// Consent expires without a response for this long (RFC 7675 §5.1).
pub const CONSENT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most remote candidates (signalled and peer-reflexive) of one agent.
pub const MAX_REMOTE_CANDIDATES: usize = 24;
/// Most components (1 = RTP, 2 = RTCP).
pub const MAX_COMPONENTS: u16 = 2;
/// Most responses waiting for [`IceAgent::poll_transmit`]; more are
/// dropped (the peer retransmits).
pub const MAX_PENDING_RESPONSES: usize = 16;
/// Most events waiting for [`IceAgent::poll_event`]; the oldest goes.
pub const MAX_EVENTS: usize = 32;
/// Consent transactions remembered per component (a late response to one
/// of them still counts).
const CONSENT_TXNS: usize = 4;

/// Configuration of an [`IceAgent`].
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// This side's credentials (sent in SDP; keys the responses).
    pub local: IceCredentials,
    /// The peer's credentials (from its SDP; key the requests).
    pub remote: IceCredentials,
    /// Initial role (RFC 8445 §6.1.1: the offerer is controlling when both
    /// are full agents).
    pub controlling: bool,
    /// Tie-breaker for role conflicts (RFC 8445 §7.1.3), random per agent.
    /// It also seeds the transaction ids and the consent jitter.
    pub tie_breaker: u64,
    /// The peer is an ICE-lite agent (`a=ice-lite`): this agent is then
    /// always controlling.
    pub remote_lite: bool,
}

/// A datagram that [`IceAgent::poll_transmit`] wrote: send `buf[..len]` from
/// the local socket of `component` to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IceTransmit {
    /// The component whose socket sends it.
    pub component: u16,
    /// Destination.
    pub to: SocketAddr,
    /// Length of the datagram at the start of the buffer.
    pub len: usize,
}

/// What the agent tells its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IceEvent {
    /// Media of `component` goes to `remote` (a pair was nominated, or the
    /// nominated pair changed).
    Selected {
        /// The component.
        component: u16,
        /// The peer's address of the selected pair.
        remote: SocketAddr,
    },
    /// Every pair of `component` failed and none is selected.
    Failed {
        /// The component.
        component: u16,
    },
    /// The selected pair of `component` got no consent response for
    /// [`CONSENT_TIMEOUT`] (RFC 7675 §5.1): stop sending media there. The
    /// selection is cleared.
    ConsentLost {
        /// The component.
        component: u16,
    },
    /// A role conflict (RFC 8445 §7.3.1.1, §7.2.5.1) switched the role.
    RoleChanged {
        /// The new role.
        controlling: bool,
    },
}

/// Why a datagram given to [`IceAgent::handle_stun`] was not used. Every
/// variant is a drop of bad or unexpected input; where the text says so a
/// STUN error response was queued as well.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IceError {
    /// Not a well-formed STUN message, or its FINGERPRINT or
    /// MESSAGE-INTEGRITY is missing or wrong (a request with bad integrity
    /// gets a 401).
    #[error(transparent)]
    Stun(#[from] StunError),
    /// No local socket was added for the component.
    #[error("no local candidate for component {component}")]
    UnknownComponent {
        /// The component.
        component: u16,
    },
    /// A STUN method other than Binding.
    #[error("STUN method {method:#x} is not Binding")]
    NotBinding {
        /// The method.
        method: u16,
    },
    /// A request without USERNAME, MESSAGE-INTEGRITY or PRIORITY; a 400
    /// response was queued (RFC 8489 §9.1.3, RFC 8445 §7.3).
    #[error("request lacks USERNAME, MESSAGE-INTEGRITY or PRIORITY")]
    BadRequest,
    /// A request whose USERNAME is not `local-ufrag:remote-ufrag`; a 401
    /// response was queued.
    #[error("request for unknown username")]
    UnknownUsername,
    /// A request from a peer in the same role that lost the tie-breaker; a
    /// 487 response was queued (RFC 8445 §7.3.1.1).
    #[error("role conflict, answered 487")]
    RoleConflict,
    /// A response to no transaction of this agent.
    #[error("response to an unknown transaction")]
    UnknownTransaction,
}

/// State of a candidate pair (RFC 8445 §6.1.2.6, without Frozen).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PairState {
    Waiting,
    InProgress,
    Succeeded,
    Failed,
}

/// One outstanding connectivity check.
#[derive(Debug, Clone, Copy)]
struct Transaction {
    id: TransactionId,
    use_candidate: bool,
    /// Role the request was sent in (RFC 8445 §7.2.5.1).
    controlling: bool,
    transmissions: u8,
    rto: Duration,
    /// Next retransmission, or failure after the last transmission.
    deadline: Instant,
}

/// A candidate pair: the local socket of `component` and one remote
/// candidate.
#[derive(Debug, Clone)]
struct Pair {
    component: u16,
    remote: SocketAddr,
    remote_priority: u32,
    state: PairState,
    transaction: Option<Transaction>,
    /// Controlling: a check with USE-CANDIDATE is wanted or in flight.
    nominating: bool,
    /// The pair is nominated (RFC 8445 §8.1.1).
    nominated: bool,
    /// Controlled: a request with USE-CANDIDATE arrived on it (§7.3.1.5).
    remote_nominated: bool,
    /// In the triggered-check queue.
    triggered: bool,
    /// Consent expired on it (RFC 7675 §5.1): these credentials are not
    /// used on its 5-tuple again (no check, no answer, no selection).
    revoked: bool,
}

/// Per-component state.
#[derive(Debug, Clone)]
struct Component {
    local: Option<SocketAddr>,
    selected: Option<SocketAddr>,
    /// When the last consent (or check) response came from the selected
    /// remote.
    consent_ok: Instant,
    /// When the next consent request is due.
    consent_next: Instant,
    consent_txns: [Option<TransactionId>; CONSENT_TXNS],
    consent_slot: usize,
    /// When the first pair of this component became valid.
    first_valid: Option<Instant>,
    /// A [`IceEvent::Failed`] was reported and no pair revived since.
    failed_reported: bool,
}

/// A response waiting for [`IceAgent::poll_transmit`].
#[derive(Debug, Clone, Copy)]
struct Reply {
    component: u16,
    to: SocketAddr,
    id: TransactionId,
    /// `None`: success; `Some(code)`: error response.
    error: Option<u16>,
}

/// A full ICE agent (RFC 8445) for one media stream; see the module
/// documentation.
#[derive(Debug)]
pub struct IceAgent {
    local: IceCredentials,
    remote: IceCredentials,
    /// `remote-ufrag:local-ufrag`, USERNAME of the requests sent.
    out_username: String,
    controlling: bool,
    tie_breaker: u64,
    remote_lite: bool,
    components: [Component; MAX_COMPONENTS as usize],
    pairs: Vec<Pair>,
    triggered: VecDeque<usize>,
    replies: VecDeque<Reply>,
    events: VecDeque<IceEvent>,
    next_check: Instant,
    /// Time of the latest call that had one.
    last_now: Instant,
    rng: u64,
}

impl IceAgent {
    /// A new agent; nothing is sent before [`Self::add_local`] and a remote
    /// candidate (or a peer's check) exist.
    pub fn new(config: AgentConfig, now: Instant) -> IceAgent {
        let component = Component {
            local: None,
            selected: None,
            consent_ok: now,
            consent_next: now,
            consent_txns: [None; CONSENT_TXNS],
            consent_slot: 0,
            first_valid: None,
            failed_reported: false,
        };
        // Seed: tie-breaker and the local password (itself random).
        let mut seed = config.tie_breaker ^ 0x9e37_79b9_7f4a_7c15;
        for b in config.local.pwd.bytes() {
            seed = seed.rotate_left(8) ^ u64::from(b);
        }
        IceAgent {
            out_username: format!("{}:{}", config.remote.ufrag, config.local.ufrag),
            local: config.local,
            remote: config.remote,
            controlling: config.controlling || config.remote_lite,
            tie_breaker: config.tie_breaker,
            remote_lite: config.remote_lite,
            components: [component.clone(), component],
            pairs: Vec::with_capacity(MAX_REMOTE_CANDIDATES),
            triggered: VecDeque::with_capacity(MAX_REMOTE_CANDIDATES),
            replies: VecDeque::with_capacity(MAX_PENDING_RESPONSES),
            events: VecDeque::with_capacity(MAX_EVENTS),
            next_check: now,
            last_now: now,
            rng: seed,
        }
    }

    /// Adds the relay socket of `component` (1 = RTP, 2 = RTCP) as its host
    /// candidate. Call it before adding remote candidates of the
    /// component. Other components are ignored; a second call replaces the
    /// address.
    pub fn add_local(&mut self, component: u16, addr: SocketAddr) {
        if let Some(c) = self.component_mut(component) {
            c.local = Some(addr);
        }
    }

    /// Adds a remote candidate from the peer's SDP. Ignored: non-UDP
    /// candidates, names instead of IP addresses, components without a
    /// local socket, another address family than that socket's, and
    /// candidates beyond [`MAX_REMOTE_CANDIDATES`]. A known address keeps
    /// its pair and takes the signalled priority.
    pub fn add_remote(&mut self, c: &Candidate) {
        if !c.is_udp() {
            return;
        }
        let (Some(addr), Some(local)) = (c.socket_addr(), self.local_addr(c.component)) else {
            return;
        };
        if addr.is_ipv4() != local.is_ipv4() {
            return;
        }
        if let Some(i) = self.find_pair(c.component, addr) {
            self.pairs[i].remote_priority = c.priority;
            return;
        }
        self.push_pair(c.component, addr, c.priority);
    }

    /// Replaces the peer's credentials. Different ones are an ICE restart
    /// (RFC 8445 §9): every pair and check is dropped and the peer's
    /// candidates must be added again; the current selection stays in use
    /// (with its consent checks, now under the new credentials) until a
    /// new pair is selected or consent expires.
    pub fn set_remote_credentials(&mut self, remote: IceCredentials) {
        if remote == self.remote {
            return;
        }
        self.out_username = format!("{}:{}", remote.ufrag, self.local.ufrag);
        self.remote = remote;
        self.pairs.clear();
        self.triggered.clear();
        for c in &mut self.components {
            c.first_valid = None;
            c.failed_reported = false;
            c.consent_txns = [None; CONSENT_TXNS];
        }
    }

    /// Sets the role (after an offer/answer exchange decided it). Against
    /// an ICE-lite peer the agent stays controlling.
    pub fn set_controlling(&mut self, controlling: bool) {
        self.controlling = controlling || self.remote_lite;
    }

    /// Whether the agent is controlling.
    pub fn is_controlling(&self) -> bool {
        self.controlling
    }

    /// The peer address media of `component` goes to, once selected.
    pub fn selected(&self, component: u16) -> Option<SocketAddr> {
        self.component(component).and_then(|c| c.selected)
    }

    /// A STUN datagram `data` that arrived on the local socket of
    /// `component` from `from`. Requests are answered (through
    /// [`Self::poll_transmit`]), responses complete checks; Binding
    /// indications (keepalives) are accepted and ignored.
    pub fn handle_stun(
        &mut self,
        now: Instant,
        component: u16,
        from: SocketAddr,
        data: &[u8],
    ) -> Result<(), IceError> {
        self.last_now = now;
        if self.local_addr(component).is_none() {
            return Err(IceError::UnknownComponent { component });
        }
        let msg = Message::parse(data)?;
        let typ = msg.message_type();
        if typ.method != BINDING {
            return Err(IceError::NotBinding { method: typ.method });
        }
        // RFC 8445 §7.2.2, §7.3: ICE messages carry FINGERPRINT.
        msg.verify_fingerprint()?;
        let result = match typ.class {
            Class::Request => self.handle_request(now, component, from, &msg),
            Class::Success | Class::Error => self.handle_response(now, component, from, &msg),
            Class::Indication => Ok(()),
        };
        self.update(now);
        result
    }

    /// Processes timers due at `now`: failed checks, consent expiry,
    /// nomination.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = now;
        for i in 0..self.pairs.len() {
            let p = &mut self.pairs[i];
            let Some(t) = p.transaction else { continue };
            if t.deadline <= now && t.transmissions >= MAX_TRANSMISSIONS {
                // RFC 8489 §6.2.1: no response after the last transmission.
                p.transaction = None;
                p.state = PairState::Failed;
                p.nominating = false;
            }
        }
        for n in 1..=MAX_COMPONENTS {
            let i = usize::from(n - 1);
            let c = &mut self.components[i];
            let Some(remote) = c.selected else { continue };
            if now.saturating_duration_since(c.consent_ok) >= CONSENT_TIMEOUT {
                // RFC 7675 §5.1: consent expired.
                c.selected = None;
                if let Some(p) = self.find_pair(n, remote) {
                    let p = &mut self.pairs[p];
                    p.state = PairState::Failed;
                    p.nominated = false;
                    p.nominating = false;
                    p.remote_nominated = false;
                    p.transaction = None;
                    p.revoked = true;
                }
                self.push_event(IceEvent::ConsentLost { component: n });
            }
        }
        self.update(now);
    }

    /// The next time [`Self::handle_timeout`] or [`Self::poll_transmit`]
    /// has work; `None` when the agent waits for input only.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.replies.is_empty() {
            return Some(self.last_now);
        }
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        if self.next_new_check().is_some() {
            at(self.next_check);
        }
        for p in &self.pairs {
            if let Some(t) = p.transaction {
                at(t.deadline);
            }
        }
        for (i, c) in self.components.iter().enumerate() {
            if c.selected.is_some() {
                at(c.consent_next);
                at(c.consent_ok + CONSENT_TIMEOUT);
            }
            // Components are 1..=MAX_COMPONENTS.
            let n = i as u16 + 1;
            // Once passed, every later input re-runs the nomination, so a
            // past deadline is not returned (it would spin the caller).
            match c.first_valid {
                Some(first)
                    if self.controlling
                        && !self.has_nomination(n)
                        && first + NOMINATION_WAIT > self.last_now =>
                {
                    at(first + NOMINATION_WAIT);
                }
                _ => {}
            }
        }
        next
    }

    /// Writes the next datagram due at `now` into `buf` (1500 bytes always
    /// suffice with credentials of valid length): responses first, then
    /// retransmissions, a new check when Ta has passed, consent checks.
    /// `None` when nothing is due.
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<IceTransmit> {
        self.last_now = now;
        while let Some(r) = self.replies.pop_front() {
            let pwd = self.local.pwd.as_bytes();
            let written = match r.error {
                None => write_binding_success(buf, r.id, r.to, pwd),
                Some(487) => write_binding_error(buf, r.id, 487, "Role Conflict", Some(pwd)),
                Some(401) => write_binding_error(buf, r.id, 401, "Unauthenticated", None),
                Some(code) => write_binding_error(buf, r.id, code, "Bad Request", None),
            };
            if let Ok(len) = written {
                return Some(IceTransmit {
                    component: r.component,
                    to: r.to,
                    len,
                });
            }
        }
        // Retransmissions (RFC 8489 §6.2.1).
        for i in 0..self.pairs.len() {
            let Some(mut t) = self.pairs[i].transaction else {
                continue;
            };
            if t.deadline > now || t.transmissions >= MAX_TRANSMISSIONS {
                continue;
            }
            t.transmissions += 1;
            t.rto = (t.rto * 2).min(RTO_MAX);
            t.deadline = now + t.rto;
            self.pairs[i].transaction = Some(t);
            if let Some(tx) = self.write_check(buf, i, t) {
                return Some(tx);
            }
        }
        // A new check every Ta (RFC 8445 §6.1.4.2).
        let new_check = if now >= self.next_check {
            self.next_new_check()
        } else {
            None
        };
        if let Some(i) = new_check {
            if self.pairs[i].triggered {
                self.triggered.retain(|&j| j != i);
                self.pairs[i].triggered = false;
            }
            self.next_check = now + TA;
            let rto = self.check_rto();
            let p = &mut self.pairs[i];
            let t = Transaction {
                id: next_id(&mut self.rng),
                use_candidate: p.nominating && self.controlling,
                controlling: self.controlling,
                transmissions: 1,
                rto,
                deadline: now + rto,
            };
            p.state = PairState::InProgress;
            p.transaction = Some(t);
            if let Some(tx) = self.write_check(buf, i, t) {
                return Some(tx);
            }
        }
        // Consent freshness (RFC 7675 §5.1).
        for n in 1..=MAX_COMPONENTS {
            let i = usize::from(n - 1);
            let Some(remote) = self.components[i].selected else {
                continue;
            };
            if self.components[i].consent_next > now {
                continue;
            }
            let id = next_id(&mut self.rng);
            let jitter = self.random() % 2001;
            let c = &mut self.components[i];
            // RFC 7675 §5.1: every 5 s, randomised to 4..6 s. Requests are
            // not retransmitted; while the last response is overdue they go
            // every 0.8..1.2 s instead, so loss alone rarely expires consent.
            let overdue = now.saturating_duration_since(c.consent_ok) > CONSENT_INTERVAL * 6 / 5;
            c.consent_next = if overdue {
                now + CONSENT_RETRY * 4 / 5 + CONSENT_RETRY * jitter as u32 / 5000
            } else {
                now + CONSENT_INTERVAL * 4 / 5 + Duration::from_millis(jitter)
            };
            c.consent_txns[c.consent_slot] = Some(id);
            c.consent_slot = (c.consent_slot + 1) % CONSENT_TXNS;
            let req = BindingRequest {
                transaction_id: id,
                username: &self.out_username,
                priority: prflx_priority(n, 65535),
                controlling: self.controlling,
                tie_breaker: self.tie_breaker,
                use_candidate: false,
            };
            if let Ok(len) = write_binding_request(buf, &req, self.remote.pwd.as_bytes()) {
                return Some(IceTransmit {
                    component: n,
                    to: remote,
                    len,
                });
            }
        }
        None
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<IceEvent> {
        self.events.pop_front()
    }

    /// RFC 8445 §7.3: a Binding request from the peer.
    fn handle_request(
        &mut self,
        now: Instant,
        component: u16,
        from: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<(), IceError> {
        let id = msg.transaction_id();
        let reply = |error| Reply {
            component,
            to: from,
            id,
            error,
        };
        // RFC 8489 §9.1.3: USERNAME and MESSAGE-INTEGRITY, else 400.
        let (Some(username), true, Some(priority)) =
            (msg.username(), msg.has_integrity(), msg.priority())
        else {
            self.push_reply(reply(Some(400)));
            return Err(IceError::BadRequest);
        };
        if !self.is_our_username(username) {
            self.push_reply(reply(Some(401)));
            return Err(IceError::UnknownUsername);
        }
        if let Err(e) = msg.verify_integrity(self.local.pwd.as_bytes()) {
            self.push_reply(reply(Some(401)));
            return Err(e.into());
        }

        // RFC 8445 §7.3.1.1: role conflicts.
        let conflict = if self.controlling {
            msg.ice_controlling()
        } else {
            msg.ice_controlled()
        };
        if let Some(theirs) = conflict {
            // Controlling: the larger tie-breaker stays controlling (always
            // this agent against a lite peer). Controlled: the larger one
            // becomes controlling.
            let we_win = self.tie_breaker >= theirs || self.remote_lite;
            match (self.controlling, we_win) {
                (true, false) => self.switch_role(false),
                (false, true) => self.switch_role(true),
                _ => {
                    self.push_reply(reply(Some(487)));
                    return Err(IceError::RoleConflict);
                }
            }
        }

        // RFC 7675 §5.1: after consent is lost the same credentials are
        // not used on that 5-tuple again; an ICE restart (new credentials)
        // starts afresh.
        if self
            .find_pair(component, from)
            .is_some_and(|i| self.pairs[i].revoked)
        {
            return Ok(());
        }

        // RFC 8445 §7.3.1.2: success with the source as mapped address.
        self.push_reply(reply(None));

        // §7.3.1.3: a source not known is a peer-reflexive candidate;
        // §7.3.1.4: triggered check.
        let i = match self.find_pair(component, from) {
            Some(i) => Some(i),
            None => self.push_pair(component, from, priority),
        };
        let Some(i) = i else { return Ok(()) };
        let p = &mut self.pairs[i];
        match p.state {
            PairState::Waiting | PairState::Failed => {
                p.state = PairState::Waiting;
                if !p.triggered {
                    p.triggered = true;
                    self.triggered.push_back(i);
                }
            }
            // An in-progress check goes on retransmitting, which checks the
            // pair as soon as a triggered check would.
            PairState::InProgress | PairState::Succeeded => {}
        }
        // §7.3.1.5: nomination by the controlling peer.
        if !self.controlling && msg.use_candidate() {
            p.remote_nominated = true;
            if p.state == PairState::Succeeded {
                p.nominated = true;
                self.select_best(now, component);
            }
        }
        Ok(())
    }

    /// RFC 8445 §7.2.5: a response to one of our checks or consent
    /// requests.
    fn handle_response(
        &mut self,
        now: Instant,
        component: u16,
        from: SocketAddr,
        msg: &Message<'_>,
    ) -> Result<(), IceError> {
        let id = msg.transaction_id();
        let success = msg.message_type().class == Class::Success;
        let pair = self
            .pairs
            .iter()
            .position(|p| p.transaction.is_some_and(|t| t.id == id));
        let Some(i) = pair else {
            // Consent response (RFC 7675 §5.1)?
            let c = self
                .component_mut(component)
                .ok_or(IceError::UnknownComponent { component })?;
            let Some(slot) = c.consent_txns.iter().position(|t| *t == Some(id)) else {
                return Err(IceError::UnknownTransaction);
            };
            msg.verify_integrity(self.remote.pwd.as_bytes())?;
            let c = &mut self.components[usize::from(component - 1)];
            c.consent_txns[slot] = None;
            if success && c.selected == Some(from) {
                c.consent_ok = now;
            }
            return Ok(());
        };
        // Responses are keyed by the peer's password (RFC 8445 §7.2.5.1).
        msg.verify_integrity(self.remote.pwd.as_bytes())?;
        let Some(t) = self.pairs[i].transaction else {
            return Err(IceError::UnknownTransaction);
        };
        let p = &mut self.pairs[i];
        p.transaction = None;
        // RFC 8445 §7.2.5.2.1: the response must come from where the request
        // went, on the socket it left from.
        if from != p.remote || component != p.component {
            p.state = PairState::Failed;
            p.nominating = false;
            return Ok(());
        }
        if !success {
            let code = msg.error_code().map_or(0, |e| e.code);
            if code == 487 {
                // §7.2.5.1: take the role opposite to the one the request
                // carried (a request of the peer may have switched it
                // already) and check the pair again.
                self.switch_role(!t.controlling);
                let p = &mut self.pairs[i];
                p.state = PairState::Waiting;
                if !p.triggered {
                    p.triggered = true;
                    self.triggered.push_back(i);
                }
            } else {
                p.state = PairState::Failed;
                p.nominating = false;
            }
            return Ok(());
        }
        // §7.2.5.3: the pair is valid. The relay's host candidate is its
        // socket, so the mapped address is not turned into a local
        // peer-reflexive candidate.
        p.state = PairState::Succeeded;
        if t.use_candidate && self.controlling {
            p.nominated = true;
        }
        if !self.controlling && p.remote_nominated {
            p.nominated = true;
        }
        p.nominating = false;
        let nominated = p.nominated;
        let c = &mut self.components[usize::from(component - 1)];
        c.first_valid.get_or_insert(now);
        if c.selected == Some(from) {
            c.consent_ok = now;
        }
        if nominated {
            self.select_best(now, component);
        }
        Ok(())
    }

    /// Nomination by the controlling agent and failure reports; run after
    /// every input.
    fn update(&mut self, now: Instant) {
        for n in 1..=MAX_COMPONENTS {
            if self.local_addr(n).is_none() {
                continue;
            }
            if self.controlling && !self.has_nomination(n) {
                self.maybe_nominate(now, n);
            }
            let mut any = false;
            let mut all_failed = true;
            for p in self.pairs.iter().filter(|p| p.component == n) {
                any = true;
                all_failed &= p.state == PairState::Failed;
            }
            let c = &mut self.components[usize::from(n - 1)];
            if any && all_failed && c.selected.is_none() {
                if !c.failed_reported {
                    c.failed_reported = true;
                    self.push_event(IceEvent::Failed { component: n });
                }
            } else if !all_failed {
                c.failed_reported = false;
            }
        }
    }

    /// Regular nomination (RFC 8445 §8.1.1): repeat the check of the best
    /// valid pair with USE-CANDIDATE when no better pair can still succeed
    /// or after [`NOMINATION_WAIT`].
    fn maybe_nominate(&mut self, now: Instant, component: u16) {
        let Some(first) = self.components[usize::from(component - 1)].first_valid else {
            return;
        };
        let mut best: Option<(u64, usize)> = None;
        let mut best_pending = 0u64;
        for (i, p) in self.pairs.iter().enumerate() {
            if p.component != component {
                continue;
            }
            let prio = self.pair_priority(p);
            match p.state {
                PairState::Succeeded => {
                    if best.is_none_or(|(b, _)| prio > b) {
                        best = Some((prio, i));
                    }
                }
                PairState::Waiting | PairState::InProgress => best_pending = best_pending.max(prio),
                PairState::Failed => {}
            }
        }
        let Some((prio, i)) = best else { return };
        if best_pending > prio && now < first + NOMINATION_WAIT {
            return;
        }
        let p = &mut self.pairs[i];
        p.nominating = true;
        if !p.triggered {
            p.triggered = true;
            self.triggered.push_front(i);
        }
    }

    /// Selects the highest-priority nominated pair of `component`
    /// (RFC 8445 §8.1.1) and reports a change.
    fn select_best(&mut self, now: Instant, component: u16) {
        let best = self
            .pairs
            .iter()
            .filter(|p| p.component == component && p.nominated)
            .max_by_key(|p| self.pair_priority(p))
            .map(|p| p.remote);
        let Some(remote) = best else { return };
        let c = &mut self.components[usize::from(component - 1)];
        if c.selected == Some(remote) {
            return;
        }
        c.selected = Some(remote);
        c.consent_ok = now;
        c.consent_next = now + CONSENT_INTERVAL;
        c.failed_reported = false;
        self.push_event(IceEvent::Selected { component, remote });
    }

    /// Whether `component` has a nominated pair or a nomination in flight.
    fn has_nomination(&self, component: u16) -> bool {
        self.pairs
            .iter()
            .any(|p| p.component == component && (p.nominated || p.nominating))
    }

    /// The pair whose check starts next: the triggered queue's head, else
    /// the highest-priority Waiting pair of a component without a
    /// nominated pair.
    fn next_new_check(&self) -> Option<usize> {
        if let Some(&i) = self.triggered.front() {
            return Some(i);
        }
        self.pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.state == PairState::Waiting
                    && !self
                        .pairs
                        .iter()
                        .any(|q| q.component == p.component && q.nominated)
            })
            .max_by_key(|(_, p)| self.pair_priority(p))
            .map(|(i, _)| i)
    }

    /// RTO of a new check (RFC 8445 §14.3):
    /// `MAX(500 ms, Ta * (Waiting + In-Progress pairs))`.
    fn check_rto(&self) -> Duration {
        let active = self
            .pairs
            .iter()
            .filter(|p| matches!(p.state, PairState::Waiting | PairState::InProgress))
            .count();
        // At most MAX_REMOTE_CANDIDATES pairs.
        RTO_MIN.max(TA * active as u32)
    }

    /// Writes the check of pair `i` with transaction `t`.
    fn write_check(&self, buf: &mut [u8], i: usize, t: Transaction) -> Option<IceTransmit> {
        let p = &self.pairs[i];
        let req = BindingRequest {
            transaction_id: t.id,
            username: &self.out_username,
            // RFC 8445 §7.1.1: the priority a peer-reflexive candidate from
            // this check would have.
            priority: prflx_priority(p.component, 65535),
            controlling: self.controlling,
            tie_breaker: self.tie_breaker,
            use_candidate: t.use_candidate,
        };
        let len = write_binding_request(buf, &req, self.remote.pwd.as_bytes()).ok()?;
        Some(IceTransmit {
            component: p.component,
            to: p.remote,
            len,
        })
    }

    /// Pair priority (RFC 8445 §6.1.2.3): `2^32 * MIN(G, D) + 2 * MAX(G, D)
    /// + (G > D ? 1 : 0)`, G the controlling side's candidate priority.
    fn pair_priority(&self, p: &Pair) -> u64 {
        let local = host_priority(p.component, 65535);
        let (g, d) = if self.controlling {
            (local, p.remote_priority)
        } else {
            (p.remote_priority, local)
        };
        let (g, d) = (u64::from(g), u64::from(d));
        (g.min(d) << 32) + 2 * g.max(d) + u64::from(g > d)
    }

    fn switch_role(&mut self, controlling: bool) {
        if self.controlling == controlling {
            return;
        }
        self.controlling = controlling;
        for p in &mut self.pairs {
            p.nominating = false;
        }
        self.push_event(IceEvent::RoleChanged { controlling });
    }

    /// Whether `username` is `local-ufrag:remote-ufrag`.
    fn is_our_username(&self, username: &[u8]) -> bool {
        let l = self.local.ufrag.as_bytes();
        let r = self.remote.ufrag.as_bytes();
        username.len() == l.len() + 1 + r.len()
            && username.starts_with(l)
            && username[l.len()] == b':'
            && username.ends_with(r)
    }

    /// Adds a pair, unless [`MAX_REMOTE_CANDIDATES`] are there.
    fn push_pair(&mut self, component: u16, remote: SocketAddr, priority: u32) -> Option<usize> {
        if self.pairs.len() >= MAX_REMOTE_CANDIDATES {
            return None;
        }
        self.pairs.push(Pair {
            component,
            remote,
            remote_priority: priority,
            state: PairState::Waiting,
            transaction: None,
            nominating: false,
            nominated: false,
            remote_nominated: false,
            triggered: false,
            revoked: false,
        });
        Some(self.pairs.len() - 1)
    }

    fn find_pair(&self, component: u16, remote: SocketAddr) -> Option<usize> {
        self.pairs
            .iter()
            .position(|p| p.component == component && p.remote == remote)
    }

    fn push_reply(&mut self, r: Reply) {
        if self.replies.len() < MAX_PENDING_RESPONSES {
            self.replies.push_back(r);
        }
    }

    fn push_event(&mut self, e: IceEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn component(&self, component: u16) -> Option<&Component> {
        let i = usize::from(component.checked_sub(1)?);
        self.components.get(i)
    }

    fn component_mut(&mut self, component: u16) -> Option<&mut Component> {
        let i = usize::from(component.checked_sub(1)?);
        self.components.get_mut(i)
    }

    fn local_addr(&self, component: u16) -> Option<SocketAddr> {
        self.component(component).and_then(|c| c.local)
    }

    /// SplitMix64: transaction ids and consent jitter. Not a CSPRNG: the
    /// checks' security rests on MESSAGE-INTEGRITY (see `docs/ice.md`).
    fn random(&mut self) -> u64 {
        splitmix(&mut self.rng)
    }
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn next_id(rng: &mut u64) -> TransactionId {
    let a = splitmix(rng).to_be_bytes();
    let b = splitmix(rng).to_be_bytes();
    let mut id = [0u8; 12];
    id[..8].copy_from_slice(&a);
    id[8..].copy_from_slice(&b[..4]);
    TransactionId(id)
}
