//! The NG command handler: sans-IO, owns the call table and drives the
//! media plane through [`MediaPlane`].
//!
//! [`Handler::handle_datagram`] is the whole control path of one UDP
//! datagram (framing, reply cache, command, reply); [`Handler::handle`]
//! executes one decoded command. Time enters as `now`; wall-clock values in
//! replies (`created`) are derived from the `Instant`/unix pair given to
//! [`Handler::new`]. Behaviour follows rtpengine 10.5 as recorded in
//! `docs/ng-reference.md` and checked against a live rtpengine by
//! `tests/ng_differential.rs`; the SDP handed on is laid out as rtpengine
//! writes it (`sdp_out`). ICE is terminated on each side that speaks it
//! (`ice`), SRTP bridged to plain RTP when `transport-protocol` asks for
//! it (`sdes`, SDES or DTLS keyed). Deliberate deviations: SRTP to SRTP is
//! relayed end to end, said in the reply's `warning`; an SDP without a usable `m=` line creates no
//! call; an empty `sdp` creates a call without media, as rtpengine; a
//! JSON body is answered in JSON, as rtpengine; error reasons name the
//! line at fault.
//!
//! Every address an offer or answer hands the relay is checked before
//! anything is created or changed (`check_addresses`): a `c=` that is not
//! an IP literal of its stated type, an address of the other family than
//! the relay interface, an unparsable `a=rtcp`, or a `received from` /
//! `media address` option that is not an IP address is `result: error`
//! with an `error-reason` naming the line or option, and leaves no call.
//!
//! `delete` marks the call deleted; it stays listed and queryable, and its
//! media keeps flowing, for `delete-delay` (as in rtpengine), after which
//! [`Handler::expire`] removes its engine calls. Each stream in `query` and
//! `delete` replies carries a `dropped` dictionary of its non-zero drop
//! counts by reason (absent when nothing was dropped).
//!
//! `rtcp-mux` (RFC 5761) follows rtpengine's `__rtcp_mux_logic` as recorded
//! in `tests/data/ng/flags-rtcp-mux*` (`MuxPlan` in `call.rs`): the offerer's mux is
//! offered on (`offer` adds it, `demux` strips it) with `a=rtcp:<port+1>`;
//! the answer switches the answerer's leg to mux if it was offered and
//! accepted, and the offerer's leg per `accept` (always), `demux` (always),
//! `reject` (never) or by default as the answerer chose; a muxed reply
//! names the RTP port in `a=rtcp`. Deviations: `require` is read as
//! `offer`; both legs are always created with an RTCP socket (kept bound
//! while muxed) so a later answer or re-offer can demultiplex again; an
//! added `a=rtcp-mux` goes after the existing attributes.
//!
//! Leg 0 of every engine call is the first offerer (A), leg 1 the answerer
//! (B). The offer reply (to B) advertises leg 1's relay port (where B
//! sends), the answer reply (to A) leg 0's. Each non-disabled `m=` section
//! gets its own engine call.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Value;
use super::call::{Call, Calls, MediaSlot, MuxFlags, MuxPlan, base_id, branch_key, is_branch_key};
use super::counters::{Command, NgCounters, Outcome};
use super::ice::{self as ng_ice, IceMode};
use super::json;
use super::media::MediaPlane;
use super::message::{self, ReplyCache};
use super::owned::OwnedValue;
use super::redact::Redacted;
use super::rekey::{self, LegChange, Rekey};
use super::sdes::{self, SdesOut};
use super::sdp_out;
use crate::engine::{
    CallInfo, CallSpec, DtlsUpdate, EngineError, IceUpdate, LegOptions, LegUpdate, SrtpState,
};
use crate::ice::IceCredentials;
use crate::relay::{AddressMode, Intervals, LatchPolicy, StreamKind, StreamSnapshot};
use crate::sdp::{AddrType, Connection, Direction, ParseError, Rtcp, Sdp};

/// Handler settings.
#[derive(Debug, Clone)]
pub struct HandlerConfig {
    /// The relay address written into `c=` (the interface's advertised one).
    pub advertised: IpAddr,
    /// How long a deleted call stays listed and queryable, and keeps
    /// relaying media, before it is removed (`--delete-delay`).
    pub delete_delay: Duration,
    /// How long replies are cached by cookie.
    pub reply_ttl: Duration,
    /// Most cached replies.
    pub reply_cache_max: usize,
    /// How long a stream's source holds it against other sources, in its
    /// packet intervals (RTP-bleed protection, see [`LatchPolicy`]).
    pub source_hold: Intervals,
    /// How long a call without media (offered with an empty `sdp`) waits
    /// for an SDP before it is removed (`--offer-timeout`).
    pub offer_timeout: Duration,
    /// The media interfaces, the primary one first: what NG `direction`,
    /// `interface` and `address family` choose from. Empty: one interface
    /// named `default` on `advertised`.
    pub interfaces: Vec<NgInterface>,
    /// The relay port range (`statistics`).
    pub port_range: (u16, u16),
    /// Most live calls (`--max-sessions`); an offer for a new call beyond
    /// it is refused with rtpengine's reason. `None`: no limit.
    pub max_sessions: Option<u64>,
    /// Read NG bencode as rtpengine does (`--ng-lenient-bencode`): a
    /// message the datagram ends in is closed, trailing bytes are ignored.
    /// Off: such datagrams get an error reply.
    pub lenient_bencode: bool,
}

impl Default for HandlerConfig {
    fn default() -> Self {
        HandlerConfig {
            advertised: IpAddr::from([127, 0, 0, 1]),
            delete_delay: Duration::from_secs(30),
            reply_ttl: Duration::from_secs(30),
            reply_cache_max: 65_536,
            source_hold: Intervals::default(),
            offer_timeout: Duration::from_secs(3600),
            interfaces: Vec::new(),
            port_range: (30000, 40000),
            max_sessions: None,
            lenient_bencode: false,
        }
    }
}

/// One media interface as NG sees it (rtpengine's `--interface
/// NAME/ADDR[!ADVERTISED]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NgInterface {
    /// Logical name (`default` when unnamed).
    pub name: String,
    /// Address the relay sockets of a leg on this interface bind to.
    pub local: IpAddr,
    /// Address written into SDP for such a leg.
    pub advertised: IpAddr,
}

impl HandlerConfig {
    /// The interfaces, or the one implied by `advertised`.
    fn ifaces(&self) -> Vec<NgInterface> {
        if self.interfaces.is_empty() {
            vec![NgInterface {
                name: "default".into(),
                local: self.advertised,
                advertised: self.advertised,
            }]
        } else {
            self.interfaces.clone()
        }
    }
}

/// The NG command handler.
#[derive(Debug)]
pub struct Handler<M> {
    media: M,
    cfg: HandlerConfig,
    calls: Calls,
    /// Engine call tag -> call-id.
    by_tag: HashMap<u64, String>,
    next_tag: u64,
    cache: ReplyCache,
    counters: Arc<NgCounters>,
    /// `now` at construction and the unix time then.
    epoch: (Instant, Duration),
    /// What ended calls add up to (`statistics`).
    ended: Ended,
    /// `(time, packets, bytes, errors)` at the last `statistics`, for rates.
    rate_sample: Option<(Instant, u64, u64, u64)>,
    /// Fewest and most live calls seen after a command.
    sessions_range: (u64, u64),
    /// Handling time per command ([`Command::ALL`] order).
    delays: [Delay; Command::ALL.len()],
    /// Per NG client address (rtpengine's "proxies"), in order of first
    /// contact: handling time per command.
    proxies: Vec<(IpAddr, [Delay; Command::ALL.len()])>,
    /// Failed commands per NG client address.
    proxy_errors: HashMap<IpAddr, u64>,
    /// When an undecodable datagram was last logged, and how many were
    /// not logged since (at most one warning a second).
    malformed_log: (Option<Instant>, u64),
    /// The sender of the datagram being handled.
    peer: Option<IpAddr>,
    /// The command executed and not yet timed.
    pending: Option<Command>,
    /// The last relay port handed out.
    last_port: u16,
    /// The latest `now` seen (for events that carry no time).
    last_now: Instant,
    /// `cfg`'s interfaces resolved (never empty).
    ifaces: Vec<NgInterface>,
    /// The foundation of the relay's ICE candidates (RFC 8445 §5.1.1.3:
    /// the same for all of them: one base type and interface per
    /// family), made on first use.
    ice_foundation: Option<String>,
}

/// Handling times of one command: count, sum, min, max (seconds).
#[derive(Debug, Clone, Copy, Default)]
struct Delay {
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
}

impl Delay {
    fn add(&mut self, secs: f64) {
        if self.count == 0 || secs < self.min {
            self.min = secs;
        }
        self.max = self.max.max(secs);
        self.sum += secs;
        self.count += 1;
    }

    fn avg(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
}

/// Calls that ended, for `statistics`.
#[derive(Debug, Clone, Copy, Default)]
struct Ended {
    calls: u64,
    timeouts: u64,
    offer_timeouts: u64,
    regular: u64,
    zero_way: u64,
    one_way: u64,
    duration_sum: f64,
    duration_sq_sum: f64,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndKind {
    Deleted,
    MediaTimeout,
    OfferTimeout,
}

/// rtpengine's NG commands as `statistics` names them: the short name of
/// the per-proxy counters, the long one of the interval delays, and ours.
const RTPENGINE_COMMANDS: [(&str, &str, Option<Command>); 24] = [
    ("ping", "ping", Some(Command::Ping)),
    ("offer", "offer", Some(Command::Offer)),
    ("answer", "answer", Some(Command::Answer)),
    ("delete", "delete", Some(Command::Delete)),
    ("query", "query", Some(Command::Query)),
    ("list", "list", Some(Command::List)),
    ("startrec", "start recording", None),
    ("stoprec", "stop recording", None),
    ("startfwd", "start forwarding", None),
    ("stopfwd", "stop forwarding", None),
    ("blkdtmf", "block DTMF", None),
    ("unblkdtmf", "unblock DTMF", None),
    ("blkmedia", "block media", None),
    ("unblkmedia", "unblock media", None),
    ("playmedia", "play media", None),
    ("stopmedia", "stop media", None),
    ("playdtmf", "play DTMF", None),
    ("stats", "statistics", Some(Command::Statistics)),
    ("slnmedia", "silence media", None),
    ("unslnmedia", "unsilence media", None),
    ("pub", "publish", None),
    ("subreq", "subscribe request", None),
    ("subans", "subscribe answer", None),
    ("unsub", "unsubscribe", None),
];

/// A command's position in [`Command::ALL`].
fn cmd_index(c: Command) -> usize {
    Command::ALL.iter().position(|&x| x == c).unwrap_or(0)
}

/// A command failure: rtpengine's `error-reason`.
#[derive(Debug)]
struct Fail(String);

impl From<&str> for Fail {
    fn from(s: &str) -> Self {
        Fail(s.to_string())
    }
}

/// What the offer/answer flags ask for.
#[derive(Debug, Default)]
struct Opts {
    no_rtcp_attr: bool,
    full_rtcp_attr: bool,
    asymmetric: bool,
    strict_source: bool,
    sip_source: bool,
    replace_origin: bool,
    replace_session_connection: bool,
    replace_sdp_version: bool,
    mux: MuxFlags,
    received_from: Option<IpAddr>,
    media_address: Option<IpAddr>,
    label: Option<String>,
    /// Options given that this relay does not implement, for the reply's
    /// `warning` (never silently pretended).
    unsupported: Vec<String>,
    /// The `ICE` option.
    ice: IceMode,
    /// `delete delay` for this call.
    delete_delay: Option<Duration>,
    /// `codec: {strip: [...]}`: codec names (or `all`) removed from the SDP.
    codec_strip: Vec<String>,
    /// `codec: {except: [...]}`: codec names kept despite `strip`.
    codec_except: Vec<String>,
    /// `codec: {offer: [...]}`: codec names moved to the front, in order.
    codec_offer: Vec<String>,
    /// What the relay does differently from what the SDP asks, for the
    /// reply's `warning`.
    notes: Vec<String>,
    /// `transport-protocol`: the profile the SDP handed on must have.
    transport: Option<String>,
}

/// What the rewritten SDP says about rtcp-mux for one media.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MuxOut {
    /// No `a=rtcp-mux`; `a=rtcp:<port + 1>`.
    Plain,
    /// Mux offered: `a=rtcp-mux` with `a=rtcp:<port + 1>` (the RTCP socket
    /// stays usable if the answerer declines).
    Offer,
    /// Mux in effect: `a=rtcp-mux` with `a=rtcp:<RTP port>`.
    Muxed,
}

impl MuxOut {
    /// What the offer reply says under `plan`.
    fn offer(plan: MuxPlan) -> MuxOut {
        if plan.offered {
            MuxOut::Offer
        } else {
            MuxOut::Plain
        }
    }
}

impl<M: MediaPlane> Handler<M> {
    /// A handler with an empty call table. `unix_now` is the wall-clock
    /// time at `now` (since the unix epoch).
    pub fn new(media: M, cfg: HandlerConfig, now: Instant, unix_now: Duration) -> Self {
        let ifaces = cfg.ifaces();
        Handler {
            media,
            cache: ReplyCache::new(cfg.reply_ttl, cfg.reply_cache_max),
            cfg,
            calls: Calls::default(),
            by_tag: HashMap::new(),
            next_tag: 1,
            counters: Arc::new(NgCounters::default()),
            epoch: (now, unix_now),
            ended: Ended::default(),
            rate_sample: None,
            sessions_range: (0, 0),
            delays: [Delay::default(); Command::ALL.len()],
            proxies: Vec::new(),
            proxy_errors: HashMap::new(),
            malformed_log: (None, 0),
            peer: None,
            pending: None,
            last_port: 0,
            last_now: now,
            ifaces,
            ice_foundation: None,
        }
    }

    /// The shared command counters.
    pub fn counters(&self) -> &Arc<NgCounters> {
        &self.counters
    }

    /// The media plane.
    pub fn media(&self) -> &M {
        &self.media
    }

    /// Calls in the table (including deleted ones within `delete-delay`).
    pub fn call_count(&self) -> usize {
        self.calls.len()
    }

    /// [`Handler::handle_datagram`] for a datagram from `peer` (counted
    /// per NG client in `statistics`, as rtpengine's "proxies").
    pub fn handle_datagram_from(
        &mut self,
        now: Instant,
        peer: IpAddr,
        datagram: &[u8],
    ) -> Option<Vec<u8>> {
        self.peer = Some(peer);
        let out = self.handle_datagram(now, datagram);
        self.peer = None;
        out
    }

    /// Records how long the last datagram took to handle (`statistics`
    /// delays and `mediarelay_ng_command_duration_seconds`); call after
    /// each datagram.
    pub fn observe_datagram(&mut self, peer: Option<IpAddr>, elapsed: Duration) {
        self.counters.observe_datagram(elapsed);
        let Some(cmd) = self.pending.take() else {
            return;
        };
        let secs = elapsed.as_secs_f64();
        let i = cmd_index(cmd);
        if let Some(d) = self.delays.get_mut(i) {
            d.add(secs);
        }
        let Some(peer) = peer else {
            return;
        };
        let at = match self.proxies.iter().position(|(ip, _)| *ip == peer) {
            Some(at) => at,
            None => {
                self.proxies
                    .push((peer, [Delay::default(); Command::ALL.len()]));
                self.proxies.len() - 1
            }
        };
        if let Some(d) = self.proxies.get_mut(at).and_then(|(_, d)| d.get_mut(i)) {
            d.add(secs);
        }
    }

    /// One datagram in, the reply datagram out (`None`: no reply, as
    /// rtpengine for a datagram without a cookie). Retransmissions (same
    /// cookie within the cache TTL) get the cached reply, unexecuted.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) -> Option<Vec<u8>> {
        if let Some(sp) = datagram.iter().position(|&b| b == b' ') {
            let (cookie, body) = (&datagram[..sp], &datagram[sp + 1..]);
            if !cookie.is_empty() && body.first() == Some(&b'{') {
                return Some(self.handle_json(now, cookie, body));
            }
        }
        let mut out = Vec::new();
        let req = match message::parse_mode(datagram, self.cfg.lenient_bencode) {
            Ok(r) => r,
            Err((cookie, e)) => {
                self.counters.count_malformed();
                let cookie = cookie?;
                if let Some(cached) = self.cache.get(now, cookie) {
                    self.counters.count_retransmission();
                    return Some(cached.to_vec());
                }
                let reason = match e {
                    message::FrameError::NotDictionary => "Invalid NG data format",
                    _ if datagram.len() == cookie.len() + 1 => "Invalid data (no payload)",
                    _ => "Could not decode bencode dictionary",
                };
                self.log_malformed(now, reason, &e);
                write(cookie, &error_reply(reason), &mut out);
                return Some(out);
            }
        };
        if let Some(cached) = self.cache.get(now, req.cookie) {
            self.counters.count_retransmission();
            return Some(cached.to_vec());
        }
        let reply = self.handle(now, &req.body);
        write(req.cookie, &reply, &mut out);
        self.cache.insert(now, req.cookie, &out);
        Some(out)
    }

    /// Logs an undecodable datagram at warn, at most once a second (with
    /// how many were not logged since): an operator sees a proxy sending
    /// broken bencode (`--ng-lenient-bencode` reads rtpengine's leniency).
    fn log_malformed(&mut self, now: Instant, reason: &str, e: &message::FrameError) {
        let (last, quiet) = &mut self.malformed_log;
        if last.is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1)) {
            *quiet += 1;
            return;
        }
        let peer = self.peer.map(|p| p.to_string()).unwrap_or_default();
        tracing::warn!(
            peer = %Redacted(&peer),
            detail = %e,
            not_logged_since = *quiet,
            "NG datagram refused: {reason}"
        );
        *last = Some(now);
        *quiet = 0;
    }

    /// A JSON message (rtpengine accepts JSON on the NG port and answers
    /// in JSON): the same command path, the reply written as JSON.
    fn handle_json(&mut self, now: Instant, cookie: &[u8], body: &[u8]) -> Vec<u8> {
        if let Some(cached) = self.cache.get(now, cookie) {
            self.counters.count_retransmission();
            return cached.to_vec();
        }
        let reply = match json::decode(body) {
            Ok(msg) => {
                let bencoded = msg.to_bytes();
                match Value::decode(&bencoded) {
                    Ok(v) => self.handle(now, &v),
                    Err(_) => error_reply("Could not decode JSON object"),
                }
            }
            Err(e) => {
                self.counters.count_malformed();
                error_reply(&format!("Could not decode JSON object: {e}"))
            }
        };
        let mut out = cookie.to_vec();
        out.push(b' ');
        json::encode(&reply, &mut out);
        self.cache.insert(now, cookie, &out);
        out
    }

    /// Executes one command dictionary and returns the reply dictionary.
    pub fn handle(&mut self, now: Instant, body: &Value<'_>) -> OwnedValue {
        self.expire(now);
        let Some(name) = body.get("command") else {
            self.counters.count(Command::Other, Outcome::Error);
            return error_reply("Dictionary contains no key \"command\"");
        };
        if name.as_str() == Some("max sessions") {
            return self.max_sessions(body);
        }
        let cmd = Command::from_name(name.as_str().unwrap_or(""));
        self.last_now = now;
        self.pending = Some(cmd);
        let result = match cmd {
            Command::Ping => Ok(OwnedValue::dict().with("result", OwnedValue::text("pong"))),
            Command::Offer => self.offer(now, body),
            Command::Answer => self.answer(now, body),
            Command::Delete => self.delete(now, body),
            Command::Query => self.query(body),
            Command::List => self.list(body),
            Command::Statistics => Ok(self.statistics(now)),
            Command::Other => Err(Fail::from("Unrecognized command")),
        };
        let live = self.live_sessions();
        self.sessions_range = (
            self.sessions_range.0.min(live),
            self.sessions_range.1.max(live),
        );
        // Every command is logged (pings at debug): addresses masked at
        // info and warn (`Redacted`), in full at debug.
        let call_id = text(body, "call-id").unwrap_or_default();
        let from_tag = text(body, "from-tag").unwrap_or_default();
        let peer = self.peer.map(|p| p.to_string()).unwrap_or_default();
        let (call_id, peer) = (call_id.as_str(), peer.as_str());
        match result {
            Ok(v) => {
                self.counters.count(cmd, Outcome::Ok);
                let warning = v.get("warning").and_then(OwnedValue::as_str);
                if cmd == Command::Ping {
                    tracing::debug!(from = %Redacted(peer), "NG ping: pong");
                } else if let Some(w) = warning {
                    tracing::warn!(
                        command = cmd.name(),
                        call_id = %Redacted(call_id),
                        from_tag = %Redacted(&from_tag),
                        from = %Redacted(peer),
                        "NG {} ok with warning: {}",
                        cmd.name(),
                        Redacted(w)
                    );
                } else {
                    tracing::info!(
                        command = cmd.name(),
                        call_id = %Redacted(call_id),
                        from_tag = %Redacted(&from_tag),
                        from = %Redacted(peer),
                        "NG {} ok",
                        cmd.name()
                    );
                }
                v
            }
            Err(Fail(reason)) => {
                self.counters.count(cmd, Outcome::Error);
                if let Some(peer) = self.peer {
                    *self.proxy_errors.entry(peer).or_default() += 1;
                }
                tracing::warn!(
                    command = cmd.name(),
                    call_id = %Redacted(call_id),
                    from_tag = %Redacted(&from_tag),
                    from = %Redacted(peer),
                    "NG {} failed: {}",
                    cmd.name(),
                    Redacted(&reason)
                );
                tracing::debug!(
                    command = cmd.name(),
                    call_id,
                    from = peer,
                    "NG {} failed: {reason}",
                    cmd.name()
                );
                error_reply(&reason)
            }
        }
    }

    /// A media timeout reported by the engine for the engine call tagged
    /// `tag`: the whole NG call goes (its other medias are deleted).
    pub fn media_timeout(&mut self, tag: u64) {
        let Some(call_id) = self.by_tag.remove(&tag) else {
            return;
        };
        if let Some(call) = self.calls.remove(&call_id) {
            let snaps = self.release(&call);
            self.account_end(&call, &snaps, EndKind::MediaTimeout);
        }
    }

    /// Adds an ended call to the `statistics` totals.
    fn account_end(&mut self, call: &Call, snaps: &[Vec<StreamSnapshot>], how: EndKind) {
        let e = &mut self.ended;
        e.calls += 1;
        match how {
            EndKind::Deleted => e.regular += 1,
            EndKind::MediaTimeout => e.timeouts += 1,
            EndKind::OfferTimeout => e.offer_timeouts += 1,
        }
        let secs = self
            .last_now
            .saturating_duration_since(call.created)
            .as_secs_f64();
        e.duration_sum += secs;
        e.duration_sq_sum += secs * secs;
        // Per media: RTP heard from neither side, or from one only.
        for streams in snaps.iter().filter(|s| !s.is_empty()) {
            let heard = streams
                .iter()
                .filter(|s| s.kind != StreamKind::Rtcp && s.counters.packets > 0)
                .count();
            match heard {
                0 => e.zero_way += 1,
                1 => e.one_way += 1,
                _ => {}
            }
        }
    }

    /// Removes deleted calls whose `delete-delay` has passed: their media
    /// stops and their ports are released now.
    /// A call without media that waited longer than the offer timeout for
    /// an SDP goes too.
    pub fn expire(&mut self, now: Instant) {
        self.last_now = now;
        let delay = self.cfg.delete_delay;
        let offer_timeout = self.cfg.offer_timeout;
        let due: Vec<String> = self
            .calls
            .iter()
            .filter(|(_, c)| {
                let delay = c.delete_delay.unwrap_or(delay);
                let deleted = c
                    .deleted
                    .as_ref()
                    .is_some_and(|(at, _)| now.saturating_duration_since(*at) >= delay);
                let stale = c.medias.iter().all(|m| m.engine.is_none())
                    && now.saturating_duration_since(c.last_signal) >= offer_timeout;
                deleted || stale
            })
            .map(|(id, _)| id.clone())
            .collect();
        for id in due {
            self.remove(&id);
        }
    }

    /// Removes a call from the table and deletes its engine calls; the
    /// call and its final streams. Counted as ended in `statistics`.
    fn remove(&mut self, call_id: &str) -> Option<(Call, Vec<Vec<StreamSnapshot>>)> {
        let call = self.calls.remove(call_id)?;
        let snaps = self.release(&call);
        let how = if call.deleted.is_some() || call.medias.iter().any(|m| m.engine.is_some()) {
            EndKind::Deleted
        } else {
            EndKind::OfferTimeout
        };
        let final_snaps = match &call.deleted {
            Some((_, s)) if snaps.iter().all(Vec::is_empty) => s.clone(),
            _ => snaps.clone(),
        };
        self.account_end(&call, &final_snaps, how);
        Some((call, snaps))
    }

    fn unix(&self, t: Instant) -> (i64, i64) {
        let (base, unix) = self.epoch;
        let d = unix + t.saturating_duration_since(base);
        (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            i64::from(d.subsec_micros()),
        )
    }

    /// Deletes a call's engine calls and forgets their tags; returns the
    /// final streams per media.
    fn release(&mut self, call: &Call) -> Vec<Vec<StreamSnapshot>> {
        call.medias
            .iter()
            .map(|m| self.release_media(m.engine, m.tag))
            .collect()
    }

    /// Deletes one media's engine call (gone already after a media
    /// timeout) and forgets its tag; its final streams.
    fn release_media(&mut self, engine: Option<CallInfo>, tag: u64) -> Vec<StreamSnapshot> {
        let Some(info) = engine else {
            return Vec::new();
        };
        self.by_tag.remove(&tag);
        self.media
            .delete_call(info.id)
            .map(|r| r.streams)
            .unwrap_or_default()
    }

    fn offer(&mut self, now: Instant, body: &Value<'_>) -> Result<OwnedValue, Fail> {
        if field(body, "sdp").and_then(Value::as_bytes) == Some(&[][..]) {
            return self.empty_offer(now, body);
        }
        let SdpRequest {
            call_id,
            from_tag,
            mut opts,
            mut sdp,
            ifaces: wanted,
            family_v6,
        } = SdpRequest::parse(body, &self.ifaces)?;
        let savp = savp_media(&sdp);
        if !sdp.media().iter().any(|m| !m.is_disabled()) {
            return Err("Error rewriting SDP".into());
        }
        // A forked offer (another `via-branch`) gets its own branch of the
        // call; from here on `call_id` is the branch's table key.
        let via_branch = text(body, "via branch");
        let call_id = self.route_offer(&call_id, &from_tag, body);
        if self
            .calls
            .get(&call_id)
            .is_some_and(|c| c.deleted.is_some())
        {
            // A new call reusing the call-id of one in its delete delay.
            self.remove(&call_id);
        }
        if !self.calls.contains_key(base_id(&call_id)) {
            self.check_capacity()?;
        }
        // A new call's legs go on the interfaces asked for; by default
        // the offerer's on the first interface of its SDP's address family,
        // the answerer's on the same one, or on the first of the
        // `address family` asked for.
        let chosen = if self.calls.contains_key(&call_id) {
            None
        } else {
            Some(self.choose_interfaces(&sdp, &opts, wanted, family_v6)?)
        };
        let existing = self.calls.remove(&call_id);
        let is_new = existing.is_none();
        let mut call =
            existing.unwrap_or_else(|| Call::new(from_tag.clone(), via_branch.clone(), now));
        if let Some(chosen) = chosen {
            call.ifaces = chosen;
        }
        // Re-tagging (rtpengine accepts it): an offer with a from-tag the
        // call does not know replaces a party. With a known to-tag, the
        // party facing that tag (a B2BUA or transfer re-tag); without one,
        // the original offerer. The new tag takes the party's leg and its
        // relay ports; media to and from the other party keeps flowing.
        let to_tag = text(body, "to-tag");
        let retag = match call.leg_of(&from_tag) {
            Some(_) => None,
            None => {
                let facing = to_tag.as_deref().and_then(|t| call.leg_of(t));
                match facing {
                    Some(l) => Some(1 - l),
                    None if to_tag.is_none() => Some(0),
                    None => {
                        self.calls.insert(call_id, call);
                        return Err("Unknown from-tag".into());
                    }
                }
            }
        };
        let old_tags = (call.from_tag.clone(), call.to_tag.clone());
        match retag {
            Some(0) => call.from_tag = from_tag.clone(),
            Some(_) => call.to_tag = Some(from_tag.clone()),
            None => {}
        }
        let Some(offerer) = call.leg_of(&from_tag) else {
            self.calls.insert(call_id, call);
            return Err("Unknown from-tag".into());
        };
        let before = call.medias.len();
        let result = self.apply_sdp(&call_id, &mut call, &mut sdp, offerer, &opts, true);
        note_passthrough(&mut opts, &savp, &call);
        if result.is_err() {
            (call.from_tag, call.to_tag) = old_tags;
        } else if let Some(l) = retag {
            // The new party's label, branch and SDP history start afresh.
            if let Some(x) = call.labels.get_mut(l) {
                *x = None;
            }
            if let Some(x) = call.via_branch.get_mut(l) {
                *x = None;
            }
            if let Some(x) = call.sent.get_mut(l) {
                *x = None;
            }
        }
        match result {
            Ok(()) => {
                if opts.label.is_some() {
                    call.labels[offerer] = opts.label.clone();
                }
                version_sdp(&mut call, offerer, &mut sdp, opts.replace_sdp_version);
                if opts.delete_delay.is_some() {
                    call.delete_delay = opts.delete_delay;
                }
                call.last_signal = now;
                self.calls.insert(call_id, call);
                Ok(sdp_reply(&sdp, &opts))
            }
            Err(e) => {
                // Release what this command created; keep an older call.
                for m in call.medias.drain(before..).collect::<Vec<_>>() {
                    self.release_media(m.engine, m.tag);
                }
                if !is_new {
                    self.calls.insert(call_id, call);
                }
                Err(e)
            }
        }
    }

    /// The interfaces (offerer's leg, answerer's leg) of a new call.
    fn choose_interfaces(
        &self,
        sdp: &Sdp,
        opts: &Opts,
        wanted: (Option<usize>, Option<usize>),
        family_v6: Option<bool>,
    ) -> Result<[usize; 2], Fail> {
        let of_family = |v6: bool| self.ifaces.iter().position(|i| i.local.is_ipv6() == v6);
        // The family the offerer's media comes from: its SIP source with
        // `SIP source address`, else the first usable c= of the SDP.
        let sender_v6 = match (opts.sip_source, opts.received_from) {
            (true, Some(ip)) => Some(ip.is_ipv6()),
            _ => (0..sdp.media().len())
                .filter(|&i| sdp.media().get(i).is_some_and(|m| !m.is_disabled()))
                .filter_map(|i| sdp.media_connection(i)?.address.ip())
                .find(|ip| !ip.is_unspecified())
                .map(|ip| ip.is_ipv6()),
        };
        let from = match wanted.0 {
            Some(i) => i,
            None => sender_v6.and_then(of_family).unwrap_or(0),
        };
        let to = match (wanted.1, family_v6) {
            (Some(i), _) => i,
            (None, Some(v6)) => of_family(v6).ok_or_else(|| {
                Fail(format!(
                    "address family {}: no media interface of that family",
                    if v6 { "IP6" } else { "IP4" }
                ))
            })?,
            (None, None) => from,
        };
        if let (Some(i), Some(v6)) = (wanted.1, family_v6) {
            if self.ifaces.get(i).is_some_and(|f| f.local.is_ipv6() != v6) {
                return Err("address family does not match the interface asked for".into());
            }
        }
        Ok([from, to])
    }

    /// `{"command": "max sessions", "value": N}` (mediarelay-specific, as
    /// `rtpengine-ctl set maxsessions`): shows, or sets, the most live
    /// calls (`--max-sessions`; 0 refuses every new call, for draining; -1
    /// no limit). Only from a loopback address (an operator setting).
    fn max_sessions(&mut self, body: &Value<'_>) -> OwnedValue {
        if self.peer.is_some_and(|p| !p.is_loopback()) {
            return error_reply("max sessions is accepted from a loopback address only");
        }
        if let Some(v) = field(body, "value") {
            let n = v
                .as_int()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()));
            match n {
                Some(n) if n < 0 => self.cfg.max_sessions = None,
                Some(n) => self.cfg.max_sessions = Some(n.unsigned_abs()),
                None => return error_reply("max sessions: value must be an integer"),
            }
            tracing::info!("max sessions set to {:?} over NG", self.cfg.max_sessions);
        }
        let shown = self
            .cfg
            .max_sessions
            .map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        OwnedValue::dict()
            .with("max sessions", OwnedValue::Int(shown))
            .with("result", OwnedValue::text("ok"))
    }

    /// Live calls (branches of a forked call count once; calls in their
    /// delete delay not at all).
    fn live_sessions(&self) -> u64 {
        self.calls.live()
    }

    /// Refuses a new call when `--max-sessions` live calls exist (calls in
    /// their delete delay do not count), as rtpengine does.
    fn check_capacity(&self) -> Result<(), Fail> {
        let Some(max) = self.cfg.max_sessions else {
            return Ok(());
        };
        let live = self.live_sessions();
        if live >= max {
            return Err("Parallel session limit reached".into());
        }
        Ok(())
    }

    /// An offer with an empty `sdp` (a late-offer INVITE passed on as is):
    /// as rtpengine, `ok` without `sdp`; the call exists with no media (it
    /// holds no ports, and the offer timeout removes it if nothing
    /// follows).
    fn empty_offer(&mut self, now: Instant, body: &Value<'_>) -> Result<OwnedValue, Fail> {
        let call_id = text(body, "call-id").ok_or("No call-id in message")?;
        let from_tag = text(body, "from-tag").ok_or("No from-tag in message")?;
        if !self.calls.contains_key(&call_id) {
            self.check_capacity()?;
        }
        if !self.calls.contains_key(&call_id) {
            let call = Call::new(from_tag, text(body, "via branch"), now);
            self.calls.insert(call_id, call);
        }
        Ok(OwnedValue::dict().with("result", OwnedValue::text("ok")))
    }

    fn answer(&mut self, now: Instant, body: &Value<'_>) -> Result<OwnedValue, Fail> {
        let SdpRequest {
            call_id,
            from_tag,
            mut opts,
            mut sdp,
            ..
        } = SdpRequest::parse(body, &self.ifaces)?;
        let savp = savp_media(&sdp);
        let to_tag = text(body, "to-tag").ok_or("No to-tag in message")?;
        let call_id = self.route_answer(&call_id, body);
        if self.calls.get(&call_id).is_none_or(|c| c.deleted.is_some()) {
            return Err("Unknown call-id".into());
        }
        let Some(mut call) = self.calls.remove(&call_id) else {
            return Err("Unknown call-id".into());
        };
        let offerer = call.leg_of(&from_tag).unwrap_or(0);
        let answerer = 1 - offerer;
        let result = self.apply_sdp(&call_id, &mut call, &mut sdp, answerer, &opts, false);
        note_passthrough(&mut opts, &savp, &call);
        // The answer handed on has the profile the offer set up (an SDES
        // bridge converts it); another one asked for here is not done.
        let other_profile = opts.transport.as_deref().is_some_and(|tp| {
            sdp.media()
                .iter()
                .any(|m| !m.is_disabled() && !m.media_line().proto.eq_ignore_ascii_case(tp))
        });
        if result.is_ok() && other_profile {
            opts.notes.push(
                "transport-protocol in an answer is ignored: the profile follows the offer".into(),
            );
        }
        if result.is_ok() {
            // Only an answer that took effect names the answering branch.
            if answerer == 1 && call.to_tag.is_none() {
                call.to_tag = Some(to_tag);
            }
            if opts.label.is_some() {
                call.labels[answerer] = opts.label.clone();
            }
            version_sdp(&mut call, answerer, &mut sdp, opts.replace_sdp_version);
            if opts.delete_delay.is_some() {
                call.delete_delay = opts.delete_delay;
            }
            if let (Some(branch), Some(slot)) =
                (text(body, "via-branch"), call.via_branch.get_mut(answerer))
            {
                *slot = Some(branch);
            }
            call.last_signal = now;
        }
        self.calls.insert(call_id, call);
        result.map(|()| sdp_reply(&sdp, &opts))
    }

    /// Applies the SDP of leg `sender` (its remote addresses) and rewrites
    /// it for the other side: `m=` gets the port of the *receiver's* leg
    /// (where the receiver of this SDP sends). An offer (`may_create`)
    /// plans the media's rtcp-mux; an answer applies the plan to both legs.
    fn apply_sdp(
        &mut self,
        call_id: &str,
        call: &mut Call,
        sdp: &mut Sdp,
        sender: usize,
        opts: &Opts,
        may_create: bool,
    ) -> Result<(), Fail> {
        let receiver = 1 - sender;
        // Nothing is created or changed for an SDP the relay cannot use.
        let iface = |leg: usize| {
            let i = call.ifaces.get(leg).copied().unwrap_or(0);
            self.ifaces.get(i).or(self.ifaces.first()).cloned()
        };
        let (Some(send_if), Some(recv_if)) = (iface(sender), iface(receiver)) else {
            return Err("no media interface".into());
        };
        check_addresses(sdp, opts, send_if.local)?;
        let mut sdes = self.sdes_plan(call, sdp, sender, opts, may_create)?;
        let policy = opts.policy(self.cfg.source_hold);
        let mut ports: Vec<Option<(u16, MuxOut)>> = Vec::with_capacity(sdp.media().len());
        let mut rejected = Vec::new();
        for i in 0..sdp.media().len() {
            if !may_create {
                // An answer names only codecs that were offered (RFC 3264 §6.1).
                if let (Some(m), Some(slot)) = (sdp.media_mut().get_mut(i), call.medias.get(i)) {
                    sdp_out::restrict_formats(m, &slot.offered);
                }
            }
            let Some(m) = sdp.media().get(i) else { break };
            let offered = if may_create {
                sdp_out::codec_keys(m)
            } else {
                Vec::new()
            };
            if m.is_disabled() {
                // Rejected (answer) or removed (re-offer): its relay goes
                // once the whole SDP is applied.
                if call.medias.get(i).is_some_and(|s| s.engine.is_some()) {
                    rejected.push(i);
                }
                ports.push(None);
                continue;
            }
            let (rtp, rtcp) = endpoint(sdp, i, opts);
            // Hold (RFC 3264 §8.4): no media expected from this side, so the
            // call gets the silent timeout instead of the media timeout.
            let on_hold = rtp.is_none() || sdp.media_direction(i) != Direction::SendRecv;
            let (kind, proto) = (m.media_line().media.clone(), m.media_line().proto.clone());
            let sdp_mux = m.section().rtcp_mux();
            // RFC 4733 events stay with the relay when the kernel fast path
            // forwards the rest: those of the offer and of the answer (each
            // side sends with the payload types the other announced).
            let event_pts = event_payload_types(m.section());
            // Under an SDES bridge every payload type stays in userspace
            // (the kernel fast path cannot encrypt), from the first update.
            let pinned = if sdes.get(i).is_some_and(|m| {
                m.bridge.is_some() || m.rekey.as_ref().is_some_and(Rekey::terminates)
            }) {
                u128::MAX
            } else {
                0
            };
            let slot = call.medias.get_mut(i);
            let offer_pts = slot.as_ref().map_or(0, |s| s.event_pts);
            let mut plan = match (may_create, slot.as_ref().map(|s| s.mux)) {
                (true, _) => MuxPlan::offer(sdp_mux, opts.mux),
                (false, Some(plan)) => plan,
                (false, None) => MuxPlan::default(),
            };
            // rtpengine: a receiver whose leg is muxed, or was offered mux
            // and has not declined it, is offered mux again as muxed
            // (`a=rtcp` naming the RTP port), whatever this offer says.
            let sticky = may_create
                && !opts.mux.demux
                && slot
                    .as_ref()
                    .is_some_and(|s| s.mux_on.get(receiver).copied().unwrap_or(false));
            if sticky {
                plan.offered = true;
            }
            match slot.and_then(|s| {
                s.mux = plan;
                if may_create {
                    s.offered = offered.clone();
                    s.event_pts = event_pts;
                    if let Some(on) = s.mux_on.get_mut(receiver) {
                        *on = plan.offered;
                    }
                }
                s.engine
            }) {
                Some(info) => {
                    let port = info.legs.get(receiver).map(|l| l.rtp.port());
                    if may_create {
                        let update = LegUpdate {
                            remote_rtp: rtp,
                            remote_rtcp: rtcp,
                            policy: Some(policy),
                            rtcp_mux: None,
                            on_hold: Some(on_hold),
                            awaiting_answer: None,
                            userspace_payload_types: Some(event_pts | pinned),
                            ..LegUpdate::default()
                        };
                        self.media
                            .update_leg(info.id, sender, update)
                            .map_err(engine_fail)?;
                        let update = LegUpdate {
                            userspace_payload_types: Some(event_pts | pinned),
                            ..LegUpdate::default()
                        };
                        self.media
                            .update_leg(info.id, receiver, update)
                            .map_err(engine_fail)?;
                        let out = if sticky {
                            MuxOut::Muxed
                        } else {
                            MuxOut::offer(plan)
                        };
                        ports.push(port.map(|p| (p, out)));
                        continue;
                    }
                    // Answer: the answerer's leg muxes when mux was offered
                    // and accepted (RFC 5761 §5.1.1); the offerer's as planned.
                    let (answerer_mux, offerer_mux) = plan.answer(sdp_mux);
                    if let Some(s) = call.medias.get_mut(i) {
                        s.mux_on[sender] = answerer_mux;
                        s.mux_on[receiver] = offerer_mux;
                    }
                    let update = LegUpdate {
                        remote_rtp: rtp,
                        remote_rtcp: rtcp,
                        policy: Some(policy),
                        rtcp_mux: Some(answerer_mux),
                        on_hold: Some(on_hold),
                        awaiting_answer: Some(false),
                        userspace_payload_types: Some(event_pts | offer_pts | pinned),
                        ..LegUpdate::default()
                    };
                    self.media
                        .update_leg(info.id, sender, update)
                        .map_err(engine_fail)?;
                    let update = LegUpdate {
                        rtcp_mux: Some(offerer_mux),
                        userspace_payload_types: Some(event_pts | offer_pts | pinned),
                        ..LegUpdate::default()
                    };
                    self.media
                        .update_leg(info.id, receiver, update)
                        .map_err(engine_fail)?;
                    let out = if offerer_mux {
                        MuxOut::Muxed
                    } else {
                        MuxOut::Plain
                    };
                    ports.push(port.map(|p| (p, out)));
                }
                None if may_create => {
                    let mut legs = [LegOptions::default(), LegOptions::default()];
                    for (leg, l) in legs.iter_mut().enumerate() {
                        l.policy = policy;
                        l.userspace_payload_types = event_pts | pinned;
                        l.local_ip = Some(if leg == sender {
                            send_if.local
                        } else {
                            recv_if.local
                        });
                    }
                    // The receiver of this offer has not answered yet.
                    if let Some(l) = legs.get_mut(receiver) {
                        l.awaiting_answer = true;
                    }
                    if let Some(l) = legs.get_mut(sender) {
                        l.remote_rtp = rtp;
                        l.remote_rtcp = rtcp;
                    }
                    let tag = self.next_tag;
                    self.next_tag += 1;
                    let info: CallInfo = self
                        .media
                        .create_call(CallSpec { tag, legs })
                        .map_err(engine_fail)?;
                    self.by_tag.insert(tag, call_id.to_string());
                    if let Some(l) = info.legs.last() {
                        self.last_port = l.rtcp.port();
                    }
                    if on_hold {
                        let update = LegUpdate {
                            on_hold: Some(true),
                            ..LegUpdate::default()
                        };
                        if let Err(e) = self.media.update_leg(info.id, sender, update) {
                            let _ = self.media.delete_call(info.id);
                            self.by_tag.remove(&tag);
                            return Err(engine_fail(e));
                        }
                    }
                    ports.push(
                        info.legs
                            .get(receiver)
                            .map(|l| (l.rtp.port(), MuxOut::offer(plan))),
                    );
                    let mut mux_on = [false; 2];
                    mux_on[receiver] = plan.offered;
                    let slot = MediaSlot {
                        engine: Some(info),
                        tag,
                        mux: plan,
                        mux_on,
                        offered,
                        event_pts,
                        ..MediaSlot::new(kind, proto)
                    };
                    if i < call.medias.len() {
                        call.medias[i] = slot;
                    } else {
                        while call.medias.len() < i {
                            call.medias
                                .push(MediaSlot::new(String::new(), String::new()));
                        }
                        call.medias.push(slot);
                    }
                }
                // An answer for a media that was not offered: reject it.
                None => ports.push(Some((0, MuxOut::Plain))),
            }
        }
        for i in rejected {
            if let Some(slot) = call.medias.get_mut(i) {
                self.release_media(slot.engine.take(), slot.tag);
            }
        }
        // SDES bridges (both legs were kept in userspace above: the kernel
        // fast path cannot encrypt): the SRTP leg gets its new state; an
        // ended or moved bridge switches its old leg off.
        for (i, m) in sdes.iter_mut().enumerate() {
            let Some(slot) = call.medias.get_mut(i) else {
                continue;
            };
            slot.srtp = m.bridge.take();
            slot.rekey = m.rekey.take();
            let Some(info) = &slot.engine else {
                continue;
            };
            // An ended bridge's leg stops SRTP and DTLS (a no-op where it
            // ran none).
            for (leg, srtp, dtls) in std::mem::take(&mut m.updates) {
                let update = LegUpdate {
                    srtp,
                    dtls,
                    ..LegUpdate::default()
                };
                self.media
                    .update_leg(info.id, leg, update)
                    .map_err(engine_fail)?;
            }
        }
        let ice_out = self.ice_plan(call, sdp, sender, opts, may_create)?;
        // What `query` reports per leg.
        for (i, m) in sdp.media().iter().enumerate() {
            let Some(slot) = call.medias.get_mut(i) else {
                continue;
            };
            if let Some(d) = slot.dirs.get_mut(sender) {
                *d = stated_direction(sdp, i);
            }
            if let Some(p) = slot.protos.get_mut(sender).filter(|_| !m.is_disabled()) {
                *p = Some(m.media_line().proto.clone());
            }
            // The media's `a=mid` as offered; an offer without one (a SIP
            // party's re-INVITE) keeps the one the call has.
            if let Some(mid) = m.section().attribute_values("mid").find_map(|v| v) {
                if may_create {
                    slot.mid = Some(mid.trim().to_string());
                }
            }
            if let Some(a) = slot.asymmetric.get_mut(sender) {
                *a = opts.asymmetric;
            }
            if let Some(st) = slot.strict.get_mut(sender) {
                *st = opts.strict_source;
            }
            if let Some(h) = slot.held.get_mut(sender) {
                *h = sdp
                    .media_connection(i)
                    .and_then(|c| c.address.ip())
                    .filter(|ip| ip.is_unspecified())
                    .map(|ip| SocketAddr::new(ip, m.port()));
            }
            if !may_create && !m.is_disabled() {
                slot.codec = m
                    .formats()
                    .first()
                    .and_then(|f| sdp_out::format_codec(m, f))
                    .map(|r| format!("{}/{}", r.encoding, r.clock_rate));
            }
        }
        // An SDP without `a=mid` for a media that has one (an answer, or a
        // re-offer from a party that does not write them) gets it, as
        // rtpengine does: WebRTC peers match media by it.
        for (i, m) in sdp.media_mut().iter_mut().enumerate() {
            let mid = call.medias.get(i).and_then(|s| s.mid.as_deref());
            if let Some(mid) = mid.filter(|_| !m.is_disabled() && !m.section().has_attribute("mid"))
            {
                // An unusable value is left out (the SDP stays valid).
                let _ = m.section_mut().insert_attribute("mid", Some(mid));
            }
        }
        let foundation = self.ice_foundation.clone().unwrap_or_default();
        rewrite(
            sdp,
            &ports,
            &sdes,
            &ice_out,
            &foundation,
            opts,
            recv_if.advertised,
        );
        Ok(())
    }

    /// ICE (RFC 8445) for each enabled media of `sdp` from `sender`: the
    /// sender's leg gets an agent for the credentials and candidates the
    /// SDP carries (or loses it when the SDP has none any more); returns,
    /// per media, the relay's credentials to hand the receiver when it
    /// speaks ICE, and whether the SDP ended its candidates.
    fn ice_plan(
        &mut self,
        call: &mut Call,
        sdp: &Sdp,
        sender: usize,
        opts: &Opts,
        may_create: bool,
    ) -> Result<Vec<Option<(IceCredentials, bool)>>, Fail> {
        let receiver = 1 - sender;
        let mut out = vec![None; sdp.media().len()];
        for (i, m) in sdp.media().iter().enumerate() {
            let Some(slot) = call.medias.get_mut(i) else {
                continue;
            };
            let Some(info) = slot.engine else { continue };
            if m.is_disabled() {
                continue;
            }
            // `ICE: remove` concerns the SDP handed on: the sender's own
            // ICE still holds (the reply to it carries the relay's), as
            // rtpengine does.
            let incoming = ng_ice::signalled(sdp, i);
            let update = match &incoming {
                Some(sig) => {
                    let mut leg = match slot.ice[sender].take() {
                        Some(l) => l,
                        // RFC 8445 §6.1.1: the offerer's agent controls
                        // unless it is lite; toward a lite agent the relay
                        // always controls.
                        None => self.new_leg_ice(!may_create || sig.lite)?,
                    };
                    if sig.lite {
                        leg.controlling = true;
                    }
                    leg.remote = Some(sig.creds.clone());
                    let (local_rtp, local_rtcp) = info
                        .legs
                        .get(sender)
                        .map(|l| (l.rtp, l.rtcp))
                        .ok_or("no such leg")?;
                    let u = IceUpdate::On(Box::new(crate::engine::LegIce {
                        local: leg.local.clone(),
                        remote: sig.creds.clone(),
                        candidates: sig.candidates.clone(),
                        controlling: leg.controlling,
                        remote_lite: sig.lite,
                        tie_breaker: leg.tie_breaker,
                        local_rtp,
                        local_rtcp,
                    }));
                    slot.ice[sender] = Some(leg);
                    Some(u)
                }
                // No ICE from the sender (any more): its agent stops; the
                // relay's credentials toward it stay for a later offer.
                None => match slot.ice[sender].as_mut() {
                    Some(l) if l.remote.is_some() => {
                        l.remote = None;
                        Some(IceUpdate::Off)
                    }
                    _ => None,
                },
            };
            if let Some(u) = update {
                let update = LegUpdate {
                    ice: Some(u),
                    ..LegUpdate::default()
                };
                self.media
                    .update_leg(info.id, sender, update)
                    .map_err(engine_fail)?;
            }
            let receiver_speaks = match (may_create, opts.ice) {
                (_, IceMode::Remove) => false,
                (true, IceMode::Force) => true,
                // A party that speaks ICE keeps it on later offers from the
                // other side (a hold re-INVITE from a SIP phone toward a
                // WebRTC peer), as rtpengine.
                (true, IceMode::Default) => {
                    incoming.is_some()
                        || slot.ice[receiver]
                            .as_ref()
                            .is_some_and(|l| l.remote.is_some())
                }
                (false, _) => slot.ice[receiver]
                    .as_ref()
                    .is_some_and(|l| l.remote.is_some()),
            };
            if !receiver_speaks {
                let offerer = slot.ice[receiver].as_mut().filter(|l| l.remote.is_some());
                if let (false, Some(l)) = (may_create, offerer) {
                    // `ICE: remove` in the answer: the offerer's agent stops.
                    l.remote = None;
                    let update = LegUpdate {
                        ice: Some(IceUpdate::Off),
                        ..LegUpdate::default()
                    };
                    self.media
                        .update_leg(info.id, receiver, update)
                        .map_err(engine_fail)?;
                }
                continue;
            }
            let leg = match slot.ice[receiver].take() {
                Some(l) => l,
                // The relay offers to the receiver: it controls.
                None => self.new_leg_ice(true)?,
            };
            if let Some(o) = out.get_mut(i) {
                *o = Some((
                    leg.local.clone(),
                    incoming.as_ref().is_some_and(|s| s.end_of_candidates),
                ));
            }
            slot.ice[receiver] = Some(leg);
        }
        if out.iter().any(Option::is_some) && self.ice_foundation.is_none() {
            self.ice_foundation = Some(ng_ice::alnum(&self.random_bytes::<16>()?));
        }
        Ok(out)
    }

    /// The relay's ICE toward a new party: fresh credentials (RFC 8445
    /// §5.3: at least 24 and 128 bits of randomness) and tie-breaker.
    fn new_leg_ice(&self, controlling: bool) -> Result<ng_ice::LegIce, Fail> {
        let r = self.random_bytes::<520>()?;
        let mut tie = [0u8; 8];
        tie.copy_from_slice(&r[512..]);
        // `random` draws 64 bytes at a time (rejection sampling, rarely
        // more than once); past the buffer the last chunk repeats.
        let mut chunks = r[..512].chunks_exact(64).cycle();
        let local = IceCredentials::random(&mut |buf: &mut [u8]| {
            if let Some(c) = chunks.next() {
                for (d, s) in buf.iter_mut().zip(c.iter().cycle()) {
                    *d = *s;
                }
            }
        });
        Ok(ng_ice::LegIce {
            local,
            remote: None,
            controlling,
            tie_breaker: u64::from_be_bytes(tie),
        })
    }

    /// `N` random bytes from the media plane's source.
    fn random_bytes<const N: usize>(&self) -> Result<[u8; N], Fail> {
        let mut b = [0u8; N];
        self.media
            .random(&mut b)
            .map_err(|e| Fail(format!("No random source: {e}")))?;
        Ok(b)
    }

    /// The SDES bridges of `sdp`'s media, one [`MediaSdes`] each: an offer whose
    /// `transport-protocol` changes between an RTP and an SRTP profile
    /// starts one (or keeps the call's); an SDP either side sends under a
    /// bridge says what the SDP handed on carries and the SRTP leg's new
    /// state; the SRTP side sending a plain profile ends it. Decided
    /// before anything is created: a bridge that cannot work is an error
    /// that changes nothing.
    fn sdes_plan(
        &self,
        call: &Call,
        sdp: &Sdp,
        sender: usize,
        opts: &Opts,
        may_create: bool,
    ) -> Result<Vec<MediaSdes>, Fail> {
        let mut plan = Vec::with_capacity(sdp.media().len());
        for (i, m) in sdp.media().iter().enumerate() {
            let slot = call.medias.get(i);
            let mut bridge = slot.and_then(|s| s.srtp.clone());
            let mut rekey = slot.and_then(|s| s.rekey.clone());
            let mut updates: Vec<LegChange> = Vec::new();
            let off = |leg: usize| (leg, Some(SrtpState::Off), Some(DtlsUpdate::Off));
            let conversion = opts
                .transport
                .as_deref()
                .filter(|_| may_create && !m.is_disabled())
                .and_then(|tp| sdes::conversion(&m.media_line().proto, tp));
            if let Some((srtp_proto, plain_proto, sender_srtp)) = conversion {
                let leg = if sender_srtp { sender } else { 1 - sender };
                if bridge.as_ref().is_none_or(|b| b.leg != leg) {
                    // A bridge on the other leg: the old SRTP leg stops.
                    updates.extend(bridge.as_ref().map(|b| off(b.leg)));
                    let fp = self.fingerprint()?;
                    let ours = self.relay_keys()?;
                    bridge = Some(sdes::Bridge::new(leg, srtp_proto, plain_proto, ours, &fp));
                }
                // A bridge replaces the default negotiation.
                if rekey.take().is_some() {
                    updates.extend([off(sender), off(1 - sender)]);
                }
            } else if bridge
                .as_ref()
                .is_some_and(|b| !m.is_disabled() && b.declined_by(sender, m))
            {
                // The SRTP side speaks plain RTP now (it declined SRTP, or
                // another party took its place): the bridge ends.
                updates.extend(bridge.take().map(|b| off(b.leg)));
            }
            let out = match (bridge.as_mut(), rekey.as_mut()) {
                (Some(b), _) if m.is_disabled() => Some(b.disabled_out(sender)),
                (Some(b), _) => {
                    let (o, st, d) = b
                        .sdp_from(sender, may_create, m, sdp.session())
                        .map_err(|e| Fail(e.to_string()))?;
                    let leg = b.leg;
                    updates.extend(st.map(|st| (leg, Some(st), None)));
                    updates.extend(d.map(|d| (leg, None, Some(d))));
                    Some(o)
                }
                (None, _) if m.is_disabled() => {
                    // A disabled media loses its engine call: nothing to key.
                    rekey = None;
                    None
                }
                (None, Some(r)) if !may_create && r.offerer() != sender => {
                    let (o, changes) = r
                        .answer(m, sdp.session())
                        .map_err(|e| Fail(e.to_string()))?;
                    updates.extend(changes);
                    Some(o)
                }
                (None, before) if may_create && rekey::is_srtp(&m.media_line().proto) => {
                    // SRTP offered as it is: rtpengine's default (`rekey`).
                    let keys = match before.as_ref() {
                        Some(r) => r.keys(),
                        None => [self.relay_keys()?, self.relay_keys()?],
                    };
                    let fp = self.fingerprint()?;
                    let started =
                        Rekey::offer(sender, m, sdp.session(), keys, &fp, before.as_deref())
                            .map_err(|e| Fail(e.to_string()))?;
                    match started {
                        Some((r, o, changes)) => {
                            updates.extend(changes);
                            rekey = Some(r);
                            Some(o)
                        }
                        None => {
                            // Nothing to key: relayed as it is.
                            if let Some(r) = rekey.take() {
                                updates.extend(r.legs_in_use().map(off));
                            }
                            None
                        }
                    }
                }
                (None, Some(_)) if may_create => {
                    // A plain re-offer: the SRTP negotiation ends.
                    if let Some(r) = rekey.take() {
                        updates.extend(r.legs_in_use().map(off));
                    }
                    None
                }
                (None, _) => None,
            };
            plan.push(MediaSdes {
                bridge,
                rekey,
                out,
                updates,
            });
        }
        Ok(plan)
    }

    /// The relay's SRTP master keys for a party, one per [`Suite::ALL`]
    /// entry (crate::srtp), from the media plane's random source.
    fn relay_keys(&self) -> Result<Vec<crate::srtp::MasterKey>, Fail> {
        use crate::srtp::{MasterKey, Suite};
        // One key per suite, of the suite's key and salt sizes, from one
        // read of the random source.
        let mut raw = [0u8; Suite::ALL.len() * MasterKey::MAX_LEN];
        self.media
            .random(&mut raw)
            .map_err(|e| Fail(format!("No random source for SRTP keys: {e}")))?;
        let keys = Suite::ALL
            .iter()
            .zip(raw.chunks(MasterKey::MAX_LEN))
            .map(|(&suite, b)| {
                MasterKey::from_suite_bytes(suite, &b[..suite.key_len() + suite.salt_len()])
                    .ok_or_else(|| Fail(format!("No SRTP key size for {suite}")))
            })
            .collect();
        raw.fill(0);
        keys
    }

    /// The fingerprint of the relay's DTLS certificate.
    fn fingerprint(&self) -> Result<crate::dtls::Fingerprint, Fail> {
        self.media
            .dtls_fingerprint()
            .map_err(|e| Fail(format!("No DTLS certificate: {e}")))
    }

    fn delete(&mut self, now: Instant, body: &Value<'_>) -> Result<OwnedValue, Fail> {
        let mut warn = Vec::new();
        for f in flag_list(body, "flags") {
            if !matches!(f.as_str(), "fatal" | "to tag") {
                warn.push(format!("Unsupported options ignored: flag '{f}'"));
            }
        }
        let call_id = text(body, "call-id").ok_or("No call-id in message")?;
        // With `via-branch`, only that branch; else the call and every branch.
        let keys = match text(body, "via branch") {
            Some(b) => {
                let k = branch_key(&call_id, &b);
                if self.calls.contains_key(&k) {
                    vec![k]
                } else {
                    vec![call_id.clone()]
                }
            }
            None => {
                let mut k = vec![call_id.clone()];
                k.extend(self.branch_keys(&call_id));
                k
            }
        };
        // The reply is the call's (first key), or a branch's if that failed.
        let mut reply: Option<Result<OwnedValue, Fail>> = None;
        for key in keys {
            let r = self.delete_call(now, body, &key);
            if !matches!(reply, Some(Ok(_))) {
                reply = Some(r);
            }
        }
        reply
            .unwrap_or_else(|| Err("Unknown call-id".into()))
            .map(|reply| with_warning(reply, &warn))
    }

    /// The table key of an offer: a new branch when it forks an existing
    /// call (same from-tag, no to-tag, another `via-branch` than the
    /// call's first offer), else the call itself.
    fn route_offer(&self, call_id: &str, from_tag: &str, body: &Value<'_>) -> String {
        let Some(branch) = text(body, "via branch") else {
            return call_id.to_string();
        };
        let key = branch_key(call_id, &branch);
        if self.calls.contains_key(&key) {
            return key;
        }
        let forks = self.calls.get(call_id).is_some_and(|c| {
            c.deleted.is_none()
                && field(body, "to tag").is_none()
                && c.from_tag == from_tag
                && c.offer_branch.as_deref().is_some_and(|b| b != branch)
        });
        if forks { key } else { call_id.to_string() }
    }

    /// The table key of an answer: the branch its `via-branch` names, or
    /// whose answerer its to-tag is, else the call itself.
    fn route_answer(&self, call_id: &str, body: &Value<'_>) -> String {
        if let Some(b) = text(body, "via branch") {
            let key = branch_key(call_id, &b);
            if self.calls.contains_key(&key) {
                return key;
            }
        }
        if let Some(to) = text(body, "to tag") {
            for key in self.branch_keys(call_id) {
                if self.calls.get(&key).and_then(|c| c.to_tag.as_deref()) == Some(to.as_str()) {
                    return key;
                }
            }
        }
        call_id.to_string()
    }

    /// The table keys of `call_id`'s forked branches.
    fn branch_keys(&self, call_id: &str) -> Vec<String> {
        self.calls.branch_keys(call_id)
    }

    fn delete_call(
        &mut self,
        now: Instant,
        body: &Value<'_>,
        call_id: &str,
    ) -> Result<OwnedValue, Fail> {
        let call_id = call_id.to_string();
        let from_tag = text(body, "from-tag");
        let fatal = flag_list(body, "flags").iter().any(|f| f == "fatal");
        let found = self
            .calls
            .get(&call_id)
            .is_some_and(|c| from_tag.as_deref().is_none_or(|t| c.leg_of(t).is_some()));
        if !found {
            const MSG: &str = "Call-ID not found or tags didn't match";
            if fatal {
                return Err(MSG.into());
            }
            return Ok(OwnedValue::dict()
                .with("warning", OwnedValue::text(MSG))
                .with("result", OwnedValue::text("ok")));
        }
        // `delete delay` of this request, else of the call's offer/answer,
        // else `--delete-delay`.
        let delay = request_delete_delay(body)?
            .or_else(|| self.calls.get(&call_id).and_then(|c| c.delete_delay))
            .unwrap_or(self.cfg.delete_delay);
        if delay.is_zero() {
            return Ok(match (from_tag, self.remove(&call_id)) {
                (Some(_), Some((call, snaps))) => call
                    .query_value(&snaps, |t| self.unix(t))
                    .with("result", OwnedValue::text("ok")),
                _ => OwnedValue::dict().with("result", OwnedValue::text("ok")),
            });
        }
        let Some(mut call) = self.calls.remove(&call_id) else {
            return Err("Unknown call-id".into());
        };
        // rtpengine keeps relaying during the delete delay (late BYE/CANCEL
        // races, media in flight): the engine calls stay until `expire`.
        if call.deleted.is_none() {
            let snaps = self.snapshots(&call);
            call.deleted = Some((now, snaps));
        }
        call.delete_delay = Some(delay);
        let reply = match from_tag {
            Some(_) => {
                let snaps = call
                    .deleted
                    .as_ref()
                    .map(|(_, s)| s.as_slice())
                    .unwrap_or(&[]);
                call.query_value(snaps, |t| self.unix(t))
                    .with("result", OwnedValue::text("ok"))
            }
            None => OwnedValue::dict().with("result", OwnedValue::text("ok")),
        };
        self.calls.insert(call_id, call);
        Ok(reply)
    }

    fn query(&mut self, body: &Value<'_>) -> Result<OwnedValue, Fail> {
        let call_id = text(body, "call-id").ok_or("No call-id in message")?;
        let call = self.calls.get(&call_id).ok_or("Unknown call-id")?;
        let snaps = self.snapshots(call);
        let mut v = call.query_value(&snaps, |t| self.unix(t));
        // A forked call: each branch's tags join the call's.
        for key in self.branch_keys(&call_id) {
            let Some(branch) = self.calls.get(&key) else {
                continue;
            };
            let snaps = self.snapshots(branch);
            let b = branch.query_value(&snaps, |t| self.unix(t));
            if let (Some(OwnedValue::Dict(extra)), Some(OwnedValue::Dict(tags))) =
                (b.get("tags").cloned(), v.get_mut("tags"))
            {
                for (k, t) in extra {
                    if !tags.iter().any(|(have, _)| *have == k) {
                        tags.push((k, t));
                    }
                }
            }
        }
        Ok(v.with("result", OwnedValue::text("ok")))
    }

    /// The live stream snapshots of each media of `call`; for a media whose
    /// engine call is gone, the last snapshot taken at `delete`.
    fn snapshots(&self, call: &Call) -> Vec<Vec<StreamSnapshot>> {
        call.medias
            .iter()
            .enumerate()
            .map(|(i, m)| {
                m.engine
                    .and_then(|info| self.media.query(info.id).ok())
                    .or_else(|| call.deleted.as_ref().and_then(|(_, s)| s.get(i).cloned()))
                    .unwrap_or_default()
            })
            .collect()
    }

    fn list(&self, body: &Value<'_>) -> Result<OwnedValue, Fail> {
        let limit = match field(body, "limit") {
            None => 32,
            Some(v) => v
                .as_int()
                .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or("Invalid limit")?,
        };
        let limit = usize::try_from(limit.max(0)).unwrap_or(usize::MAX);
        let calls = self
            .calls
            .keys()
            .filter(|k| !is_branch_key(k))
            .take(limit)
            .map(|k| OwnedValue::text(k))
            .collect();
        Ok(OwnedValue::dict()
            .with("calls", OwnedValue::List(calls))
            .with("result", OwnedValue::text("ok")))
    }

    fn statistics(&mut self, now: Instant) -> OwnedValue {
        let s = self.media.stats();
        let live = self.live_sessions();
        let uptime = now.saturating_duration_since(self.epoch.0).as_secs();
        // Rates since the previous `statistics` (or since start), per second.
        let (packets, bytes, errors) = (
            s.tx_packets,
            s.tx_bytes,
            s.send_errors.saturating_add(s.dropped()),
        );
        let (t0, p0, b0, e0) = self.rate_sample.unwrap_or((self.epoch.0, 0, 0, 0));
        let secs = now.saturating_duration_since(t0).as_secs_f64().max(1.0);
        let rate = |now: u64, then: u64| (now.saturating_sub(then) as f64 / secs) as u64;
        let (pr, br, er) = (rate(packets, p0), rate(bytes, b0), rate(errors, e0));
        self.rate_sample = Some((now, packets, bytes, errors));
        let medias = self
            .calls
            .values()
            .flat_map(|c| &c.medias)
            .filter(|m| m.engine.is_some())
            .count() as u64;
        let n = OwnedValue::count;
        let f = |x: f64| OwnedValue::text(&format!("{x:.6}"));
        let current = OwnedValue::dict()
            .with("sessionsown", n(live))
            .with("sessionsforeign", n(0))
            .with("sessionstotal", n(live))
            .with("transcodedmedia", n(0))
            .with("packetrate_user", n(pr))
            .with("byterate_user", n(br))
            .with("errorrate_user", n(er))
            .with("packetrate_kernel", n(0))
            .with("byterate_kernel", n(0))
            .with("errorrate_kernel", n(0))
            .with("packetrate", n(pr))
            .with("byterate", n(br))
            .with("errorrate", n(er))
            .with("media_userspace", n(medias))
            .with("media_kernel", n(0))
            .with("media_mixed", n(0));
        let e = &self.ended;
        let avg = if e.calls > 0 {
            e.duration_sum / e.calls as f64
        } else {
            0.0
        };
        let stddev = if e.calls > 0 {
            (e.duration_sq_sum / e.calls as f64 - avg * avg)
                .max(0.0)
                .sqrt()
        } else {
            0.0
        };
        let total = OwnedValue::dict()
            .with("uptime", OwnedValue::text(&uptime.to_string()))
            .with("managedsessions", n(e.calls))
            .with("rejectedsessions", n(0))
            .with("timeoutsessions", n(e.timeouts))
            .with("silenttimeoutsessions", n(0))
            .with("finaltimeoutsessions", n(0))
            .with("offertimeoutsessions", n(e.offer_timeouts))
            .with("regularterminatedsessions", n(e.regular))
            .with("forcedterminatedsessions", n(0))
            .with("relayedpackets_user", n(packets))
            .with("relayedpacketerrors_user", n(errors))
            .with("relayedbytes_user", n(bytes))
            .with("relayedpackets_kernel", n(0))
            .with("relayedpacketerrors_kernel", n(0))
            .with("relayedbytes_kernel", n(0))
            .with("relayedpackets", n(packets))
            .with("relayedpacketerrors", n(errors))
            .with("relayedbytes", n(bytes))
            .with("zerowaystreams", n(e.zero_way))
            .with("onewaystreams", n(e.one_way))
            .with("avgcallduration", f(avg))
            .with("totalcallsduration", f(e.duration_sum))
            .with("totalcallsduration2", f(e.duration_sq_sum))
            .with("totalcallsduration_stddev", f(stddev));
        // Interval statistics cover the time since start.
        let mut interval = OwnedValue::dict()
            .with("totalcallsduration", f(e.duration_sum))
            .with("minmanagedsessions", n(self.sessions_range.0))
            .with("maxmanagedsessions", n(self.sessions_range.1));
        let delay = |cmd: Option<Command>| {
            cmd.and_then(|c| self.delays.get(cmd_index(c)))
                .copied()
                .unwrap_or_default()
        };
        for (_, name, cmd) in RTPENGINE_COMMANDS {
            let d = delay(cmd);
            interval.push(&format!("min{name}delay"), f(d.min));
            interval.push(&format!("max{name}delay"), f(d.max));
            interval.push(&format!("avg{name}delay"), f(d.avg()));
        }
        for (_, name, cmd) in RTPENGINE_COMMANDS {
            let d = delay(cmd);
            let per_s = d.count as f64 / uptime.max(1) as f64;
            interval.push(&format!("min{name}requestrate"), f(per_s));
            interval.push(&format!("max{name}requestrate"), f(per_s));
            interval.push(&format!("avg{name}requestrate"), f(per_s));
        }
        // The relay computes no MOS (media passes through untouched).
        let mos = OwnedValue::dict()
            .with("mos_total", f(0.0))
            .with("mos2_total", f(0.0))
            .with("mos_samples_total", n(0))
            .with("mos_average", f(0.0))
            .with("mos_stddev", f(0.0));
        let mut proxies = Vec::new();
        for (ip, p) in &self.proxies {
            let mut d = OwnedValue::dict().with("proxy", OwnedValue::text(&ip.to_string()));
            for (short, _, cmd) in RTPENGINE_COMMANDS {
                let st = cmd
                    .and_then(|c| p.get(cmd_index(c)))
                    .copied()
                    .unwrap_or_default();
                d.push(&format!("{short}count"), n(st.count));
                d.push(&format!("{short}duration"), f(st.avg()));
            }
            d.push(
                "errorcount",
                n(self.proxy_errors.get(ip).copied().unwrap_or(0)),
            );
            proxies.push(d);
        }
        let mut control = OwnedValue::dict().with("proxies", OwnedValue::List(proxies));
        for (short, _, cmd) in RTPENGINE_COMMANDS {
            let count = cmd.map_or(0, |c| {
                self.counters.commands(c, Outcome::Ok) + self.counters.commands(c, Outcome::Error)
            });
            control.push(&format!("total{short}count"), n(count));
        }
        let (min, max) = self.cfg.port_range;
        let total_ports = u64::from(max.saturating_sub(min)) + 1;
        let used = medias * 4;
        let ports = OwnedValue::dict()
            .with("min", n(u64::from(min)))
            .with("max", n(u64::from(max)))
            .with("used", n(used))
            .with(
                "used_pct",
                OwnedValue::text(&format!("{:.2}", 100.0 * used as f64 / total_ports as f64)),
            )
            .with("free", n(total_ports.saturating_sub(used)))
            .with("totals", n(total_ports))
            .with("last", n(u64::from(self.last_port)));
        let interfaces = self
            .ifaces
            .iter()
            .map(|i| {
                OwnedValue::dict()
                    .with("name", OwnedValue::text(&i.name))
                    .with("address", OwnedValue::text(&i.advertised.to_string()))
                    .with("ports", ports.clone())
            })
            .collect();
        let stats = OwnedValue::dict()
            .with("currentstatistics", current)
            .with("totalstatistics", total)
            .with("intervalstatistics", interval)
            .with("mos", mos)
            .with("controlstatistics", control)
            .with("interfaces", OwnedValue::List(interfaces))
            .with("transcoders", OwnedValue::List(Vec::new()));
        OwnedValue::dict()
            .with("statistics", stats)
            .with("result", OwnedValue::text("ok"))
    }
}

impl Opts {
    /// The flags and options of `body`; a given `received from` or
    /// `media address` that is not an IP address is an error, not ignored.
    fn parse(body: &Value<'_>) -> Result<Opts, Fail> {
        let mut o = Opts::default();
        let mut replace = flag_list(body, "replace");
        let mut mux = flag_list(body, "rtcp-mux");
        for f in flag_list(body, "flags") {
            // rtpengine's prefixed flag forms of list options.
            if let Some(v) = f.strip_prefix("replace ") {
                replace.push(v.to_string());
                continue;
            }
            if let Some(v) = f.strip_prefix("rtcp mux ") {
                mux.push(v.to_string());
                continue;
            }
            if let Some(v) = f.strip_prefix("codec strip ") {
                o.codec_strip.push(v.to_string());
                continue;
            }
            if let Some(v) = f.strip_prefix("codec except ") {
                o.codec_except.push(v.to_string());
                continue;
            }
            if let Some(v) = f.strip_prefix("codec offer ") {
                o.codec_offer.push(v.to_string());
                continue;
            }
            const TRANSCODING: [&str; 6] = [
                "transcode ",
                "codec transcode ",
                "codec mask ",
                "codec accept ",
                "codec consume ",
                "codec set ",
            ];
            if TRANSCODING.iter().any(|p| f.starts_with(p)) || f == "always transcode" {
                if f == "always transcode" {
                    o.unsupported.push(format!("flag '{f}'"));
                    continue;
                }
                return Err(Fail(format!(
                    "Transcoding is not implemented (flag '{f}'): the call would not carry the \
                     codecs asked for"
                )));
            }
            if f.starts_with("t38 ") || f.starts_with("t.38 ") {
                return Err(Fail(format!(
                    "T.38 gateway is not implemented (flag '{f}')"
                )));
            }
            if f.starts_with("sdp attr ") {
                return Err(Fail(format!(
                    "SDP attribute manipulation is not implemented (flag '{f}')"
                )));
            }
            match f.as_str() {
                "no rtcp attribute" => o.no_rtcp_attr = true,
                "full rtcp attribute" => o.full_rtcp_attr = true,
                "asymmetric" => o.asymmetric = true,
                "strict source" => o.strict_source = true,
                "sip source address" => o.sip_source = true,
                // The defaults: rtpengine 10.5 trusts SDP addresses, RTP is
                // symmetric, and a re-offer keeps the relay ports.
                "trust address" | "symmetric" | "port latching" => {}
                "block dtmf" => {
                    return Err(Fail(
                        "DTMF blocking is not implemented (flag 'block dtmf'): DTMF would be \
                         relayed"
                            .into(),
                    ));
                }
                "record call" => o
                    .notes
                    .push("Call recording is not implemented: the call is not recorded".into()),
                other => o.unsupported.push(format!("flag '{other}'")),
            }
        }
        for f in replace {
            match f.as_str() {
                "origin" => o.replace_origin = true,
                "session connection" => o.replace_session_connection = true,
                "sdp version" => o.replace_sdp_version = true,
                other => o.unsupported.push(format!("replace '{other}'")),
            }
        }
        for f in mux {
            match f.as_str() {
                "offer" | "require" => o.mux.offer = true,
                "accept" => o.mux.accept = true,
                "demux" => o.mux.demux = true,
                "reject" => o.mux.reject = true,
                other => o.unsupported.push(format!("rtcp-mux '{other}'")),
            }
        }
        if let Some(ice) = text(body, "ICE") {
            o.ice = match ice.to_ascii_lowercase().as_str() {
                "remove" => IceMode::Remove,
                "force" => IceMode::Force,
                "default" => IceMode::Default,
                _ => {
                    o.unsupported
                        .push(format!("ICE '{ice}' (ICE is handled as by default)"));
                    IceMode::Default
                }
            };
        }
        if let Some(v) = field(body, "received from") {
            let ip = v
                .as_list()
                .and_then(|l| l.get(1))
                .and_then(Value::as_str)
                .and_then(parse_ip);
            o.received_from = Some(ip.ok_or("Invalid 'received from' address")?);
        }
        if let Some(v) = text(body, "media address") {
            o.media_address = Some(parse_ip(&v).ok_or("Invalid 'media address'")?);
        }
        o.label = text(body, "label");
        o.delete_delay = request_delete_delay(body)?;
        if let Some(Value::Dict(entries)) = field(body, "codec") {
            for (k, v) in entries {
                let names: Vec<String> = match v {
                    Value::List(l) => l
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                    other => other.as_str().map(str::to_string).into_iter().collect(),
                };
                match canonical_key(k).as_str() {
                    "strip" => o.codec_strip.extend(names),
                    "except" => o.codec_except.extend(names),
                    "offer" => o.codec_offer.extend(names),
                    other => {
                        return Err(Fail(format!(
                            "Transcoding is not implemented (codec '{other}'): the call would \
                             not carry the codecs asked for"
                        )));
                    }
                }
            }
        }
        if let Some(v) = text(body, "record call") {
            if matches!(v.to_ascii_lowercase().as_str(), "yes" | "on" | "true" | "1") {
                o.notes
                    .push("Call recording is not implemented: the call is not recorded".into());
            }
        }
        // Keys asking for media processing this relay does not do: the
        // call would not work as asked.
        for (key, what) in REFUSED_KEYS {
            if field(body, key).is_some() {
                return Err(Fail(format!("{what} is not implemented (key '{key}')")));
            }
        }
        if let Some(p) = text(body, "passthrough") {
            if matches!(
                p.to_ascii_lowercase().as_str(),
                "no" | "off" | "disable" | "disabled"
            ) {
                return Err(
                    "Media processing is not implemented (key 'passthrough': off): media \
                     is always passed through"
                        .into(),
                );
            }
        }
        if let Some(p) = text(body, "audio player") {
            if !matches!(
                p.to_ascii_lowercase().as_str(),
                "no" | "off" | "disable" | "disabled"
            ) {
                return Err("The audio player is not implemented (key 'audio player')".into());
            }
        }
        if let Value::Dict(entries) = body {
            for (k, _) in entries {
                let key = canonical_key(k);
                if !KNOWN_KEYS.contains(&key.as_str()) {
                    o.unsupported
                        .push(format!("key '{}'", String::from_utf8_lossy(k)));
                }
            }
        }
        Ok(o)
    }

    fn policy(&self, source_hold: Intervals) -> LatchPolicy {
        LatchPolicy {
            mode: if self.asymmetric {
                AddressMode::Asymmetric
            } else {
                AddressMode::Symmetric
            },
            strict_source: self.strict_source,
            source_hold,
            ..LatchPolicy::default()
        }
    }
}

/// Checks that every enabled media of `sdp` has an address and ports the
/// relay can send to from an interface of `relay`'s family: the `c=` that
/// applies (unless `SIP source address` replaces it) holds an IP literal of
/// its stated type, and `a=rtcp` parses with a usable port and address. The
/// error names the offending line. `c=0.0.0.0` (hold) is usable.
fn check_addresses(sdp: &Sdp, opts: &Opts, relay: IpAddr) -> Result<(), Fail> {
    let fail =
        |i: usize, what: String| Fail(format!("Failed to parse SDP: media {}: {what}", i + 1));
    let family = |ip: IpAddr| if ip.is_ipv4() { "IPv4" } else { "IPv6" };
    let relayable = |i: usize, line: &str, ip: IpAddr| -> Result<(), Fail> {
        if ip.is_unspecified() || ip.is_ipv4() == relay.is_ipv4() {
            return Ok(());
        }
        Err(fail(
            i,
            format!(
                "{line}: an {} address cannot be relayed from the {} interface {relay}",
                family(ip),
                family(relay)
            ),
        ))
    };
    // `SIP source address` replaces the SDP's addresses by `received
    // from`: without one there is no address to use (rtpengine's reason).
    if opts.sip_source && opts.received_from.is_none() {
        return Err("Incomplete SDP specification".into());
    }
    let uses_sip_source = opts.sip_source && opts.received_from.is_some();
    for (i, m) in sdp.media().iter().enumerate() {
        if m.is_disabled() {
            continue;
        }
        if !uses_sip_source {
            let (raw, line) = match m.section().values(b'c').next() {
                Some(v) => (v, format!("`c={v}`")),
                None => match sdp.session().values(b'c').next() {
                    Some(v) => (v, format!("session-level `c={v}`")),
                    None => return Err(fail(i, "no c= line at media or session level".into())),
                },
            };
            let conn = Connection::parse(raw)
                .ok_or_else(|| fail(i, format!("{line} is not a connection line")))?;
            let Some(ip) = conn.address.ip() else {
                return Err(fail(i, format!("{line} has no IP address")));
            };
            let typed = match conn.addrtype {
                AddrType::Ip4 => ip.is_ipv4(),
                AddrType::Ip6 => ip.is_ipv6(),
                AddrType::Other(_) => false,
            };
            if !typed {
                return Err(fail(
                    i,
                    format!(
                        "{line}: address type {} does not match {ip}",
                        conn.addrtype.as_str()
                    ),
                ));
            }
            relayable(i, &line, ip)?;
        }
        for v in m.section().attribute_values("rtcp") {
            let line = format!("`a=rtcp:{}`", v.unwrap_or(""));
            let Some(r) = v.and_then(Rtcp::parse) else {
                return Err(fail(i, format!("{line} is not a port [address]")));
            };
            if r.port == 0 {
                return Err(fail(i, format!("{line} has port 0")));
            }
            if let Some(c) = &r.connection {
                let Some(ip) = c.address.ip() else {
                    return Err(fail(i, format!("{line} has no IP address")));
                };
                relayable(i, &line, ip)?;
            }
        }
    }
    if let Some(ip) = opts.received_from.filter(|_| uses_sip_source) {
        if ip.is_ipv4() != relay.is_ipv4() {
            return Err(Fail(format!(
                "received from {ip} is {} but the relay interface {relay} is {}",
                family(ip),
                family(relay)
            )));
        }
    }
    if let Some(ip) = opts
        .media_address
        .filter(|ip| ip.is_ipv4() != relay.is_ipv4())
    {
        return Err(Fail(format!(
            "media address {ip} is {} but the relay interface {relay} is {}",
            family(ip),
            family(relay)
        )));
    }
    Ok(())
}

/// The signalled RTP and RTCP addresses of media `i` (none for
/// `c=0.0.0.0`, hold the RFC 2543 way).
fn endpoint(sdp: &Sdp, i: usize, opts: &Opts) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let Some(m) = sdp.media().get(i) else {
        return (None, None);
    };
    let sdp_ip = sdp.media_connection(i).and_then(|c| c.address.ip());
    let ip = match (opts.sip_source, opts.received_from) {
        (true, Some(ip)) => Some(ip),
        _ => sdp_ip,
    };
    let Some(ip) = ip.filter(|ip| !ip.is_unspecified()) else {
        return (None, None);
    };
    let port = m.port();
    let rtcp = match m.section().rtcp() {
        Some(r) => {
            let rip = r.connection.and_then(|c| c.address.ip()).unwrap_or(ip);
            Some(SocketAddr::new(rip, r.port))
        }
        // Under mux the leg's RTCP socket is unused; port + 1 is right when
        // the mux is declined (RFC 5761 §5.1.3).
        None => port.checked_add(1).map(|p| SocketAddr::new(ip, p)),
    };
    (Some(SocketAddr::new(ip, port)), rtcp)
}

/// The direction media `i` states: its own, else the session's (RFC 8866
/// §6.7); with `c=0.0.0.0` (RFC 3264 §8.4 hold the RFC 2543 way) the side
/// does not receive.
fn stated_direction(sdp: &Sdp, i: usize) -> Direction {
    let d = sdp.media_direction(i);
    let held = sdp
        .media_connection(i)
        .and_then(|c| c.address.ip())
        .is_some_and(|ip| ip.is_unspecified());
    match (held, d) {
        (true, Direction::SendRecv) => Direction::SendOnly,
        (true, Direction::RecvOnly) => Direction::Inactive,
        (_, d) => d,
    }
}

/// Rewrites an SDP for the other side, laid out as rtpengine writes it
/// (`sdp_out`): relay address in `c=` (except `0.0.0.0`), `ports[i]` in
/// `m=`, an explicit direction, `a=rtcp`, regenerated codec attributes, no
/// ICE.
fn rewrite(
    sdp: &mut Sdp,
    ports: &[Option<(u16, MuxOut)>],
    sdes: &[MediaSdes],
    ice: &[Option<(IceCredentials, bool)>],
    ice_foundation: &str,
    opts: &Opts,
    relay: IpAddr,
) {
    let addr = opts.media_address.unwrap_or(relay);
    if opts.replace_origin {
        // No o= line: nothing to replace.
        let _ = sdp.set_origin_address(addr);
    }
    let unspecified = |c: Option<crate::sdp::Connection>| {
        c.and_then(|c| c.address.ip())
            .is_some_and(|ip| ip.is_unspecified())
    };
    // rtpengine rewrites the session-level c= only when a media description
    // relies on it (or `replace session-connection` asks for it).
    let session_has = sdp.session().has_connection_line();
    let session_used = sdp
        .media()
        .iter()
        .any(|m| !m.section().has_connection_line());
    if session_has
        && (session_used || opts.replace_session_connection)
        && !unspecified(sdp.session().connection())
    {
        sdp.session_mut().set_connection(addr);
    }
    let dirs: Vec<Direction> = (0..sdp.media().len())
        .map(|i| stated_direction(sdp, i))
        .collect();
    sdp_out::layout_session(sdp);
    for (i, m) in sdp.media_mut().iter_mut().enumerate() {
        let has_c = m.section().has_connection_line();
        if (has_c && !unspecified(m.section().connection())) || (!has_c && !session_has) {
            m.section_mut().set_connection(addr);
        }
        // Under an SDES bridge: the receiver's profile and `a=crypto` lines
        // (none for a disabled media: the sender's key stays with the relay).
        let bridge = sdes.get(i).and_then(|m| m.out.as_ref());
        if let Some(b) = bridge {
            m.set_proto(b.proto.clone());
        }
        let Some(Some((port, mux))) = ports.get(i).copied() else {
            sdp_out::layout_disabled(m, bridge.is_some());
            continue;
        };
        m.set_port(port);
        if port == 0 {
            sdp_out::layout_disabled(m, bridge.is_some());
            continue;
        }
        // RFC 5761 §5.1.1 / rtpengine: a=rtcp names the RTP port once muxed,
        // port + 1 while mux is only offered.
        let rtcp_port = match mux {
            MuxOut::Muxed => port,
            MuxOut::Plain | MuxOut::Offer => port.saturating_add(1),
        };
        // RTCP belongs to the RTP profiles (T.38 over UDPTL, BFCP: none).
        let rtcp = if opts.no_rtcp_attr || !m.media_line().proto_kind().is_rtp() {
            None
        } else if opts.full_rtcp_attr {
            Some(Rtcp::new(rtcp_port, Some(addr)).to_string())
        } else {
            Some(Rtcp::new(rtcp_port, None).to_string())
        };
        let attrs = sdp_out::MediaAttrs {
            direction: dirs.get(i).copied().unwrap_or_default(),
            rtcp,
            rtcp_mux: mux != MuxOut::Plain,
            crypto: bridge.map(|b| b.crypto.clone()),
            keying: bridge.map(|b| b.keying.clone()).unwrap_or_default(),
            ice: ice
                .get(i)
                .and_then(Option::as_ref)
                .map(|(creds, eoc)| {
                    ng_ice::lines(creds, ice_foundation, addr, port, rtcp_port, *eoc)
                })
                .unwrap_or_default(),
        };
        sdp_out::layout_media(m, &attrs);
    }
}

/// Records the SDP handed on for `leg`; under `replace: sdp-version`
/// (`replace`) its `o=` session version is the last one handed on for the
/// leg, plus one when anything else in the SDP changed (RFC 3264 §8: a
/// changed description has a higher version), as rtpengine does.
fn version_sdp(call: &mut Call, leg: usize, sdp: &mut Sdp, replace: bool) {
    let without_origin = |sdp: &Sdp| -> Vec<u8> {
        let mut out = Vec::new();
        for line in sdp.lines().filter(|l| l.kind() != Some(b'o')) {
            line.write_to(&mut out);
        }
        out
    };
    let body = without_origin(sdp);
    let Some(slot) = call.sent.get_mut(leg) else {
        return;
    };
    if replace {
        if let Some((version, last)) = slot.as_ref() {
            let version = if *last == body {
                *version
            } else {
                version.saturating_add(1)
            };
            // No o= line: nothing to version.
            let _ = sdp.set_origin_version(version);
        }
    }
    if let Some(o) = sdp.origin() {
        *slot = Some((o.session_version, body));
    }
}

/// The rewritten SDP; a `warning` lists the options given that this relay
/// does not implement.
fn sdp_reply(sdp: &Sdp, opts: &Opts) -> OwnedValue {
    let mut reply = OwnedValue::dict().with("sdp", OwnedValue::Bytes(sdp.to_bytes()));
    let mut warning = Vec::new();
    if !opts.unsupported.is_empty() {
        let list = opts.unsupported.join(", ");
        warning.push(format!("Unsupported options ignored: {list}"));
    }
    warning.extend(opts.notes.iter().cloned());
    if !warning.is_empty() {
        reply.push("warning", OwnedValue::text(&warning.join("; ")));
    }
    reply.with("result", OwnedValue::text("ok"))
}

/// `reply` with `warn` joined into its `warning` (before `result`).
fn with_warning(reply: OwnedValue, warn: &[String]) -> OwnedValue {
    if warn.is_empty() {
        return reply;
    }
    let OwnedValue::Dict(entries) = reply else {
        return reply;
    };
    let mut text = warn.join("; ");
    let mut out = OwnedValue::dict();
    for (k, v) in entries {
        match k.as_slice() {
            b"warning" => {
                if let Some(w) = v.as_str() {
                    text = format!("{w}; {text}");
                }
            }
            b"result" => {
                out.push("warning", OwnedValue::text(&text));
                out.push("result", v);
            }
            _ => out.push(&String::from_utf8_lossy(&k), v),
        }
    }
    out
}

fn error_reply(reason: &str) -> OwnedValue {
    OwnedValue::dict()
        .with("result", OwnedValue::text("error"))
        .with("error-reason", OwnedValue::text(reason))
}

fn engine_fail(e: EngineError) -> Fail {
    match e {
        EngineError::Ports(_) => Fail::from("Ran out of ports"),
        other => Fail(other.to_string()),
    }
}

/// A string key's value (call-ids and tags are opaque bytes; non-UTF-8
/// bytes are replaced, which keeps distinct ids distinct in practice).
/// What `offer` and `answer` both carry: call-id, from-tag, flags and an
/// SDP body, checked in rtpengine's order with its error strings.
struct SdpRequest {
    call_id: String,
    from_tag: String,
    opts: Opts,
    sdp: Sdp,
    /// Interfaces asked for (`direction`, `from-interface`/`to-interface`,
    /// `interface`): (offerer's side, answerer's side), indices into the
    /// handler's interfaces.
    ifaces: (Option<usize>, Option<usize>),
    /// `address family`: true for IPv6.
    family_v6: Option<bool>,
}

impl SdpRequest {
    fn parse(body: &Value<'_>, ifaces: &[NgInterface]) -> Result<SdpRequest, Fail> {
        let call_id = text(body, "call-id").ok_or("No call-id in message")?;
        let from_tag = text(body, "from-tag").ok_or("No from-tag in message")?;
        let sdp_bytes = field(body, "sdp")
            .and_then(Value::as_bytes)
            .ok_or("No SDP body in message")?;
        let opts = Opts::parse(body)?;
        let sdp = Sdp::parse(sdp_bytes).map_err(|e| match e {
            // rtpengine's reason, with the line at fault when there is one.
            ParseError::MalformedLine { line } | ParseError::MediaNotUtf8 { line } => {
                Fail(format!("Failed to parse SDP: {e}: `{}`", quote_line(sdp_bytes, line)))
            }
            ParseError::MalformedMedia { line } => Fail(format!(
                "Failed to parse SDP: {e}: `{}` (expected m=<media> <port 0-65535>[/<count>] <proto> <formats>)",
                quote_line(sdp_bytes, line)
            )),
            _ => Fail::from("Failed to parse SDP"),
        })?;
        refuse_like_rtpengine(&sdp)?;
        let ifaces = requested_interfaces(body, ifaces)?;
        let family_v6 = requested_family(body)?;
        check_transport(body, &sdp)?;
        let mut sdp = sdp;
        strip_codecs(&mut sdp, &opts);
        let sdp = sdp;
        let mut opts = opts;
        opts.transport = text(body, "transport protocol");
        Ok(SdpRequest {
            call_id,
            from_tag,
            opts,
            sdp,
            ifaces,
            family_v6,
        })
    }
}

/// What an SDP does to one media's SRTP (`sdes_plan`).
struct MediaSdes {
    /// The media's bridge (`transport-protocol` between RTP and SRTP)
    /// after this SDP.
    bridge: Option<sdes::Bridge>,
    /// The media's default SRTP negotiation after this SDP.
    rekey: Option<Rekey>,
    /// What the SDP handed on carries (profile, `a=crypto`, DTLS lines).
    out: Option<SdesOut>,
    /// The legs' engine changes, in order.
    updates: Vec<LegChange>,
}

/// Per media of `sdp`: enabled with an SRTP profile (`RTP/SAVP`...).
fn savp_media(sdp: &Sdp) -> Vec<bool> {
    sdp.media()
        .iter()
        .map(|m| !m.is_disabled() && m.media_line().proto.to_ascii_uppercase().contains("SAVP"))
        .collect()
}

/// Says in the reply's `warning` that SRTP media the relay cannot key
/// (no bridge asked for, and no `a=crypto` line or fingerprint it can use)
/// is passed through end to end.
fn note_passthrough(opts: &mut Opts, savp: &[bool], call: &Call) {
    let passed = savp.iter().enumerate().any(|(i, &s)| {
        s && call
            .medias
            .get(i)
            .is_none_or(|m| m.srtp.is_none() && m.rekey.is_none())
    });
    if passed {
        opts.notes.push(
            "SRTP is passed through end to end (the SDP has no a=crypto line or DTLS \
             fingerprint the relay can use)"
                .into(),
        );
    }
}

/// A request's `delete delay` in seconds (integer or digits), if given.
fn request_delete_delay(body: &Value<'_>) -> Result<Option<Duration>, Fail> {
    let Some(v) = field(body, "delete delay") else {
        return Ok(None);
    };
    let secs = v
        .as_int()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .filter(|n| *n >= 0)
        .ok_or("Invalid 'delete delay'")?;
    Ok(Some(Duration::from_secs(secs.unsigned_abs())))
}

/// The interfaces a request names: `direction: [FROM, TO]` (the
/// offerer's side, then the answerer's), `from-interface`,
/// `to-interface`, or `interface` for both. An unknown name is an error.
fn requested_interfaces(
    body: &Value<'_>,
    ifaces: &[NgInterface],
) -> Result<(Option<usize>, Option<usize>), Fail> {
    let find = |name: &str| -> Result<usize, Fail> {
        ifaces
            .iter()
            .position(|i| i.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| Fail(format!("Unknown interface '{name}'")))
    };
    let mut from = None;
    let mut to = None;
    let dir = flag_list(body, "direction");
    if let Some(n) = dir.first() {
        from = Some(find(n)?);
    }
    if let Some(n) = dir.get(1) {
        to = Some(find(n)?);
    }
    if let Some(n) = text(body, "from interface") {
        from = Some(find(&n)?);
    }
    if let Some(n) = text(body, "to interface") {
        to = Some(find(&n)?);
    }
    if let Some(n) = text(body, "interface") {
        let i = find(&n)?;
        from = from.or(Some(i));
        to = to.or(Some(i));
    }
    Ok((from, to))
}

/// `address family`: `IP4` or `IP6` (true), the family of the SDP handed
/// on.
fn requested_family(body: &Value<'_>) -> Result<Option<bool>, Fail> {
    let Some(af) = text(body, "address family") else {
        return Ok(None);
    };
    match af.to_ascii_uppercase().as_str() {
        "IP4" => Ok(Some(false)),
        "IP6" => Ok(Some(true)),
        _ => Err(Fail(format!("Invalid 'address family' {af}"))),
    }
}

/// `transport-protocol`: what the SDP already says is honoured; a change
/// between an RTP profile and an SRTP one (SDES or DTLS keyed) is a bridge
/// the relay terminates (`sdes`); any other change (SRTP to SRTP, UDPTL...)
/// is an error.
fn check_transport(body: &Value<'_>, sdp: &Sdp) -> Result<(), Fail> {
    if let Some(tp) = text(body, "transport protocol") {
        let differs = sdp.media().iter().filter(|m| !m.is_disabled()).any(|m| {
            !m.media_line().proto.eq_ignore_ascii_case(&tp)
                && sdes::conversion(&m.media_line().proto, &tp).is_none()
        });
        if differs {
            return Err(Fail(format!(
                "Changing the transport protocol to {tp} is not implemented (RTP/AVP[F] <-> \
                 RTP/SAVP[F] or UDP/TLS/RTP/SAVP[F] only): the media keeps the SDP's protocol"
            )));
        }
    }
    Ok(())
}

/// `codec: {strip: [...], except: [...]}`: removes the named codecs
/// (encoding names, case-insensitive; `all` for every one) from each
/// media's format list, keeping those named in `except`, as rtpengine
/// does without transcoding; `codec: {offer: [...]}` reorders first. A
/// strip that would leave a media without a codec leaves it as it was.
fn strip_codecs(sdp: &mut Sdp, opts: &Opts) {
    if !opts.codec_offer.is_empty() {
        offer_codecs_first(sdp, &opts.codec_offer);
    }
    if opts.codec_strip.is_empty() {
        return;
    }
    let named = |list: &[String], enc: &str| list.iter().any(|n| n.eq_ignore_ascii_case(enc));
    let all = named(&opts.codec_strip, "all");
    for (i, m) in sdp.media_mut().iter_mut().enumerate() {
        if m.is_disabled() || !m.media_line().proto_kind().is_rtp() {
            continue;
        }
        let keep: Vec<String> = m
            .formats()
            .iter()
            .filter(|f| {
                let enc = sdp_out::format_codec(m, f)
                    .map(|r| r.encoding.to_string())
                    .unwrap_or_default();
                named(&opts.codec_except, &enc) || !(all || named(&opts.codec_strip, &enc))
            })
            .cloned()
            .collect();
        // Stripping every codec leaves the list as it was (rtpengine).
        if keep.is_empty() {
            tracing::debug!(
                "codec strip would leave media {} without a codec: ignored",
                i + 1
            );
            continue;
        }
        if keep.len() != m.formats().len() {
            m.set_formats(keep);
        }
    }
}

/// `codec: {offer: [...]}`: the named codecs move to the front of each
/// media's format list, in the order named (rtpengine's preference
/// order; no codec is added, since that would need transcoding).
fn offer_codecs_first(sdp: &mut Sdp, names: &[String]) {
    for m in sdp.media_mut() {
        if m.is_disabled() || !m.media_line().proto_kind().is_rtp() {
            continue;
        }
        let enc = |f: &str| {
            sdp_out::format_codec(m, f)
                .map(|r| r.encoding.to_ascii_lowercase())
                .unwrap_or_default()
        };
        let mut first = Vec::new();
        for n in names {
            for f in m.formats() {
                if enc(f) == n.to_ascii_lowercase() && !first.contains(f) {
                    first.push(f.clone());
                }
            }
        }
        let rest = m.formats().iter().filter(|f| !first.contains(f)).cloned();
        let order: Vec<String> = first.iter().cloned().chain(rest).collect();
        if order != m.formats() {
            m.set_formats(order);
        }
    }
}

/// The SDP bodies rtpengine 10.5 refuses although this parser reads them:
/// an unknown line type (RFC 8866 §5: a parser MUST ignore a description
/// with a type letter it does not understand), an empty line before the
/// end, and a `c=` after an `a=` line of the same level (RFC 8866 §5
/// order). Refused with rtpengine's reasons, naming the line.
fn refuse_like_rtpengine(sdp: &Sdp) -> Result<(), Fail> {
    let quote = |l: &crate::sdp::Line| {
        String::from_utf8_lossy(l.bytes())
            .chars()
            .take(80)
            .collect::<String>()
    };
    let sections = std::iter::once(sdp.session()).chain(sdp.media().iter().map(|m| m.section()));
    let mut blank_seen = false;
    for section in sections {
        let mut attribute_seen = false;
        for line in section.lines() {
            if line.is_blank() {
                blank_seen = true;
                continue;
            }
            if blank_seen {
                return Err("Error rewriting SDP: empty line".into());
            }
            match line.kind() {
                Some(b'a') => attribute_seen = true,
                Some(b'c') if attribute_seen => {
                    return Err(Fail(format!(
                        "Error rewriting SDP: `{}` after an a= line (RFC 8866 §5 order)",
                        quote(line)
                    )));
                }
                Some(b'v' | b'o' | b's' | b'i' | b'u' | b'e' | b'p' | b'c' | b'b' | b't')
                | Some(b'r' | b'z' | b'k' | b'm') => {}
                _ => {
                    return Err(Fail(format!(
                        "Failed to parse SDP: unknown line type: `{}`",
                        quote(line)
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Line `n` (1-based) of `body`, without its terminator, shortened to 80
/// characters for an error reason.
fn quote_line(body: &[u8], n: usize) -> String {
    let line = body
        .split(|&b| b == b'\n')
        .nth(n.saturating_sub(1))
        .unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line).chars().take(80).collect()
}

/// An IP literal, IPv6 optionally in brackets.
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let bare = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    bare.parse().ok()
}

/// A key in rtpengine's spelling-insensitive form: lower case, `-` and `_`
/// read as spaces (`received-from` = `received from`).
fn canonical_key(key: &[u8]) -> String {
    String::from_utf8_lossy(key)
        .to_ascii_lowercase()
        .replace(['-', '_'], " ")
}

/// The value of `key` in `body`, matched as rtpengine matches keys
/// (`canonical_key`).
fn field<'b, 'a>(body: &'b Value<'a>, key: &str) -> Option<&'b Value<'a>> {
    if let Some(v) = body.get(key) {
        return Some(v);
    }
    let want = canonical_key(key.as_bytes());
    let Value::Dict(entries) = body else {
        return None;
    };
    entries
        .iter()
        .find(|(k, _)| canonical_key(k) == want)
        .map(|(_, v)| v)
}

/// Keys that ask for media processing this relay does not do, and what
/// that processing is: an offer or answer carrying one is refused.
const REFUSED_KEYS: [(&str, &str); 10] = [
    ("ptime", "Repacketization"),
    ("ptime reverse", "Repacketization"),
    ("T.38", "T.38 gateway"),
    ("media echo", "Media echo"),
    ("drop traffic", "Dropping media"),
    ("moh", "Music on hold"),
    ("template", "Signalling templates"),
    ("rtpp flags", "The rtpp-flags string"),
    ("sdp attr", "SDP attribute manipulation"),
    ("sdp media remove", "SDP media removal"),
];

/// The NG keys this relay reads (canonical form); any other key in an
/// offer or answer is named in the reply's `warning`.
const KNOWN_KEYS: [&str; 24] = [
    "command",
    "call id",
    "from tag",
    "to tag",
    "via branch",
    "sdp",
    "flags",
    "replace",
    "rtcp mux",
    "ice",
    "direction",
    "interface",
    "received from",
    "media address",
    "label",
    "transport protocol",
    "codec",
    "record call",
    "address family",
    "delete delay",
    "from interface",
    "to interface",
    "passthrough",
    "audio player",
];

fn text(body: &Value<'_>, key: &str) -> Option<String> {
    field(body, key)
        .and_then(Value::as_bytes)
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

/// A list of flag strings (a single string is accepted too), lower-cased
/// with `-` and `_` read as spaces (`trust-address` = `trust address`).
fn flag_list(body: &Value<'_>, key: &str) -> Vec<String> {
    let norm = |v: &Value<'_>| {
        v.as_bytes().map(|b| {
            String::from_utf8_lossy(b)
                .to_ascii_lowercase()
                .replace(['-', '_'], " ")
        })
    };
    match field(body, key) {
        Some(Value::List(l)) => l.iter().filter_map(norm).collect(),
        Some(v) => norm(v).into_iter().collect(),
        None => Vec::new(),
    }
}

fn write(cookie: &[u8], body: &OwnedValue, out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(cookie);
    out.push(b' ');
    body.encode(out);
}

/// The telephone-event (RFC 4733 §7.1.1) payload types a media section
/// maps, as a bit set (bit n = payload type n).
fn event_payload_types(section: &crate::sdp::Section) -> u128 {
    section
        .rtpmaps()
        .filter(|r| r.encoding.eq_ignore_ascii_case("telephone-event"))
        .fold(0u128, |acc, r| acc | 1u128 << (r.pt.value() & 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{CallId, EngineStats, LegInfo};
    use crate::ports::ShardId;
    use crate::relay::{RemovedCall, Slab, StreamCounters, StreamKind};
    use std::cell::RefCell;
    use std::collections::HashMap as Map;

    /// Engine tag, call, leg remotes.
    type FakeCall = (u64, CallInfo, [Option<SocketAddr>; 2]);

    /// A media plane that hands out ports 30000, 30002, ... and records
    /// leg remotes.
    #[derive(Default)]
    struct Fake {
        keys: RefCell<Slab<()>>,
        calls: RefCell<Map<CallId, FakeCall>>,
        next_port: RefCell<u16>,
        fail_creates_after: RefCell<Option<usize>>,
        /// Last `rtcp_mux` update per (call, leg).
        mux: RefCell<Map<(CallId, usize), bool>>,
        /// Last `on_hold` update per (call, leg).
        hold: RefCell<Map<(CallId, usize), bool>>,
        /// Last `ice` update per (call, leg).
        ice: RefCell<Map<(CallId, usize), IceUpdate>>,
        /// Last `srtp` update per (call, leg).
        srtp: RefCell<Map<(CallId, usize), SrtpState>>,
        /// Last `dtls` update per (call, leg).
        dtls: RefCell<Map<(CallId, usize), DtlsUpdate>>,
    }

    impl Fake {
        fn port(&self) -> u16 {
            let mut p = self.next_port.borrow_mut();
            let port = 30000 + *p;
            *p += 2;
            port
        }
        fn remote(&self, leg: usize) -> Vec<Option<SocketAddr>> {
            self.calls.borrow().values().map(|c| c.2[leg]).collect()
        }
    }

    impl MediaPlane for Fake {
        fn create_call(&self, spec: CallSpec) -> Result<CallInfo, EngineError> {
            if let Some(n) = self.fail_creates_after.borrow_mut().as_mut() {
                if *n == 0 {
                    return Err(EngineError::Ports("empty".into()));
                }
                *n -= 1;
            }
            let ip = IpAddr::from([127, 0, 0, 1]);
            let leg = || {
                let p = self.port();
                LegInfo {
                    key: self.keys.borrow_mut().insert(()),
                    rtp: SocketAddr::new(ip, p),
                    rtcp: SocketAddr::new(ip, p + 1),
                }
            };
            let legs = [leg(), leg()];
            let id = CallId {
                shard: ShardId(0),
                key: self.keys.borrow_mut().insert(()),
            };
            let info = CallInfo { id, legs };
            let remotes = [spec.legs[0].remote_rtp, spec.legs[1].remote_rtp];
            self.calls
                .borrow_mut()
                .insert(id, (spec.tag, info, remotes));
            Ok(info)
        }
        fn dtls_fingerprint(&self) -> Result<crate::dtls::Fingerprint, EngineError> {
            Ok("sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
                .parse()
                .expect("a fingerprint"))
        }
        fn update_leg(&self, id: CallId, leg: usize, u: LegUpdate) -> Result<(), EngineError> {
            let mut calls = self.calls.borrow_mut();
            let c = calls.get_mut(&id).ok_or(EngineError::NoSuchCall)?;
            if u.remote_rtp.is_some() || u.policy.is_some() {
                c.2[leg] = u.remote_rtp;
            }
            if let Some(mux) = u.rtcp_mux {
                self.mux.borrow_mut().insert((id, leg), mux);
            }
            if let Some(hold) = u.on_hold {
                self.hold.borrow_mut().insert((id, leg), hold);
            }
            if let Some(ice) = u.ice {
                self.ice.borrow_mut().insert((id, leg), ice);
            }
            if let Some(st) = u.srtp {
                self.srtp.borrow_mut().insert((id, leg), st);
            }
            if let Some(d) = u.dtls {
                self.dtls.borrow_mut().insert((id, leg), d);
            }
            Ok(())
        }
        fn query(&self, id: CallId) -> Result<Vec<StreamSnapshot>, EngineError> {
            let calls = self.calls.borrow();
            let (_, info, remotes) = calls.get(&id).ok_or(EngineError::NoSuchCall)?;
            let mut out = Vec::new();
            for (i, l) in info.legs.iter().enumerate() {
                for (kind, port) in [
                    (StreamKind::Rtp, l.rtp.port()),
                    (StreamKind::Rtcp, l.rtcp.port()),
                ] {
                    out.push(StreamSnapshot {
                        key: l.key,
                        leg: l.key,
                        kind,
                        local_port: port,
                        latched: None,
                        signalled: remotes[i],
                        counters: StreamCounters {
                            packets: 10,
                            bytes: 1720,
                            ..StreamCounters::default()
                        },
                        rtp: None,
                    });
                }
            }
            Ok(out)
        }
        fn delete_call(&self, id: CallId) -> Result<RemovedCall, EngineError> {
            let streams = self.query(id)?;
            let (tag, _, _) = self
                .calls
                .borrow_mut()
                .remove(&id)
                .ok_or(EngineError::NoSuchCall)?;
            Ok(RemovedCall { tag, streams })
        }
        fn stats(&self) -> EngineStats {
            EngineStats::default()
        }
    }

    const OFFER: &str = "v=0\r\no=- 1111 1 IN IP4 127.0.0.11\r\ns=A\r\nc=IN IP4 127.0.0.11\r\nt=0 0\r\n\
        m=audio 40000 RTP/AVP 0 8 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n\
        a=ice-ufrag:abcd\r\na=ptime:20\r\n";
    const ANSWER: &str = "v=0\r\no=- 2222 1 IN IP4 127.0.0.22\r\ns=B\r\nc=IN IP4 127.0.0.22\r\nt=0 0\r\n\
        m=audio 50000 RTP/AVP 0 101\r\na=sendrecv\r\n";

    fn handler() -> (Handler<Fake>, Instant) {
        let t0 = Instant::now();
        let cfg = HandlerConfig::default();
        (
            Handler::new(Fake::default(), cfg, t0, Duration::from_secs(1_700_000_000)),
            t0,
        )
    }

    fn req(pairs: &[(&str, OwnedValue)]) -> Vec<u8> {
        let mut v = OwnedValue::dict();
        for (k, val) in pairs {
            v.push(k, val.clone());
        }
        v.to_bytes()
    }

    fn t(s: &str) -> OwnedValue {
        OwnedValue::text(s)
    }

    fn run(h: &mut Handler<Fake>, now: Instant, pairs: &[(&str, OwnedValue)]) -> OwnedValue {
        let bytes = req(pairs);
        let body = Value::decode(&bytes).unwrap();
        h.handle(now, &body)
    }

    fn offer(h: &mut Handler<Fake>, now: Instant, call: &str, sdp: &str) -> OwnedValue {
        run(
            h,
            now,
            &[
                ("command", t("offer")),
                ("call-id", t(call)),
                ("from-tag", t("tagA")),
                ("sdp", t(sdp)),
            ],
        )
    }

    fn answer(h: &mut Handler<Fake>, now: Instant, call: &str) -> OwnedValue {
        run(
            h,
            now,
            &[
                ("command", t("answer")),
                ("call-id", t(call)),
                ("from-tag", t("tagA")),
                ("to-tag", t("tagB")),
                ("sdp", t(ANSWER)),
            ],
        )
    }

    fn sdp_of(reply: &OwnedValue) -> String {
        assert_eq!(
            reply.get("result").and_then(OwnedValue::as_str),
            Some("ok"),
            "{reply:?}"
        );
        reply
            .get("sdp")
            .and_then(OwnedValue::as_str)
            .unwrap()
            .to_string()
    }

    fn reason(reply: &OwnedValue) -> &str {
        assert_eq!(
            reply.get("result").and_then(OwnedValue::as_str),
            Some("error")
        );
        reply
            .get("error-reason")
            .and_then(OwnedValue::as_str)
            .unwrap()
    }

    #[test]
    fn offer_and_answer_rewrite_line_by_line() {
        let (mut h, t0) = handler();
        let out = sdp_of(&offer(&mut h, t0, "c1", OFFER));
        // Leg 0 = A gets 30000/30001, leg 1 = B 30002: B is told 30002.
        let expected = [
            "v=0",
            "o=- 1111 1 IN IP4 127.0.0.11",
            "s=A",
            "c=IN IP4 127.0.0.1",
            "t=0 0",
            "m=audio 30002 RTP/AVP 0 8 101",
            // rtpengine's layout: every codec's rtpmap (static ones from
            // RFC 3551), direction, rtcp, ptime last.
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=sendrecv",
            "a=rtcp:30003",
            "a=ptime:20",
        ];
        assert_eq!(
            out.split("\r\n")
                .filter(|l| !l.is_empty())
                .collect::<Vec<_>>(),
            expected
        );
        assert!(out.ends_with("\r\n"));
        assert_eq!(
            h.media().remote(0),
            vec![Some("127.0.0.11:40000".parse().unwrap())]
        );
        assert_eq!(h.media().remote(1), vec![None]);

        let out = sdp_of(&answer(&mut h, t0, "c1"));
        let lines: Vec<&str> = out.split("\r\n").filter(|l| !l.is_empty()).collect();
        assert_eq!(
            lines,
            [
                "v=0",
                "o=- 2222 1 IN IP4 127.0.0.22",
                "s=B",
                "c=IN IP4 127.0.0.1",
                "t=0 0",
                "m=audio 30000 RTP/AVP 0 101",
                "a=rtpmap:0 PCMU/8000",
                "a=sendrecv",
                "a=rtcp:30001"
            ]
        );
        assert_eq!(
            h.media().remote(1),
            vec![Some("127.0.0.22:50000".parse().unwrap())]
        );
    }

    /// The `a=rtcp*` lines of a reply datagram's SDP, ports named relative
    /// to the `m=` port.
    fn rtcp_lines(datagram: &[u8]) -> Vec<String> {
        let sp = datagram.iter().position(|&b| b == b' ').unwrap();
        let body = Value::decode(&datagram[sp + 1..]).unwrap();
        let sdp = String::from_utf8(body.get("sdp").unwrap().as_bytes().unwrap().to_vec()).unwrap();
        let port: u16 = sdp
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|r| r.split(' ').next())
            .unwrap()
            .parse()
            .unwrap();
        let mut v: Vec<String> = sdp
            .lines()
            .filter(|l| l.starts_with("a=rtcp"))
            .map(|l| match l.strip_prefix("a=rtcp:").map(str::parse::<u16>) {
                Some(Ok(p)) if p == port => "a=rtcp:RTP".to_string(),
                Some(Ok(p)) if p == port + 1 => "a=rtcp:RTP+1".to_string(),
                _ => l.to_string(),
            })
            .collect();
        v.sort();
        v
    }

    /// Replays the rtpengine recordings of every `rtcp-mux` flag: the
    /// `a=rtcp`/`a=rtcp-mux` lines of both replies match, and the legs are
    /// switched to mux as the answer decides.
    #[test]
    fn rtcp_mux_flags_match_rtpengine_recordings() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/ng");
        // scenario, B's leg muxed, A's leg muxed
        let cases = [
            ("flags-rtcp-mux-default-with-mux-in-sdp", true, true),
            ("flags-rtcp-mux-offer", true, true),
            ("flags-rtcp-mux-offer-no-mux-in-sdp", true, false),
            ("flags-rtcp-mux-demux", false, true),
            ("flags-rtcp-mux-accept", true, true),
        ];
        for (name, b_mux, a_mux) in cases {
            let (mut h, t0) = handler();
            for step in ["01-offer", "02-answer"] {
                let read = |ext: &str| std::fs::read(format!("{dir}/{name}/{step}.{ext}")).unwrap();
                let ours = h.handle_datagram(t0, &read("req.bencode")).unwrap();
                assert_eq!(
                    rtcp_lines(&ours),
                    rtcp_lines(&read("rep.bencode")),
                    "{name} {step}"
                );
            }
            let mux = h.media.mux.borrow();
            let id = h.media.calls.borrow().keys().next().copied().unwrap();
            assert_eq!(mux.get(&(id, 1)), Some(&b_mux), "{name}");
            assert_eq!(mux.get(&(id, 0)), Some(&a_mux), "{name}");
        }
    }

    #[test]
    fn flags_change_rtcp_origin_and_address() {
        let (mut h, t0) = handler();
        let flags = OwnedValue::List(vec![t("no-rtcp-attribute")]);
        let r = run(
            &mut h,
            t0,
            &[
                ("command", t("offer")),
                ("call-id", t("f")),
                ("from-tag", t("a")),
                ("sdp", t(OFFER)),
                ("flags", flags),
                ("replace", OwnedValue::List(vec![t("origin")])),
                ("media address", t("127.0.0.5")),
            ],
        );
        let out = sdp_of(&r);
        assert!(!out.contains("a=rtcp:"), "{out}");
        assert!(out.contains("o=- 1111 1 IN IP4 127.0.0.5\r\n"), "{out}");
        assert!(out.contains("c=IN IP4 127.0.0.5\r\n"), "{out}");
        let r = run(
            &mut h,
            t0,
            &[
                ("command", t("offer")),
                ("call-id", t("g")),
                ("from-tag", t("a")),
                ("sdp", t(OFFER)),
                ("flags", OwnedValue::List(vec![t("full rtcp attribute")])),
            ],
        );
        assert!(sdp_of(&r).contains("a=rtcp:30007 IN IP4 127.0.0.1\r\n"));
    }

    #[test]
    fn reoffer_keeps_ports_and_updates_remote_and_direction() {
        let (mut h, t0) = handler();
        let first = sdp_of(&offer(&mut h, t0, "c1", OFFER));
        answer(&mut h, t0, "c1");
        let hold = OFFER
            .replace("a=ptime:20", "a=sendonly")
            .replace("m=audio 40000", "m=audio 40010");
        let again = sdp_of(&offer(&mut h, t0 + Duration::from_secs(5), "c1", &hold));
        assert!(again.contains("m=audio 30002 "), "{again}");
        assert!(first.contains("m=audio 30002 "));
        assert!(
            again.contains("a=sendonly\r\n") && !again.contains("a=sendrecv"),
            "{again}"
        );
        assert_eq!(
            h.media().remote(0),
            vec![Some("127.0.0.11:40010".parse().unwrap())]
        );
        assert_eq!(h.media().calls.borrow().len(), 1, "no new engine call");
        // The offerer's leg (0) is on hold (silent timeout), and off after
        // resume; the answerer's (1) never was.
        let id = *h.media().calls.borrow().keys().next().unwrap();
        let hold = |leg: usize| h.media().hold.borrow().get(&(id, leg)).copied();
        assert_eq!((hold(0), hold(1)), (Some(true), Some(false)));
        offer(&mut h, t0 + Duration::from_secs(9), "c1", OFFER);
        let hold = |leg: usize| h.media().hold.borrow().get(&(id, leg)).copied();
        assert_eq!(hold(0), Some(false));
    }

    #[test]
    fn each_media_gets_its_own_engine_call_and_disabled_stays_zero() {
        let (mut h, t0) = handler();
        let sdp = format!("{OFFER}m=video 0 RTP/AVP 96\r\nm=video 40002 RTP/AVP 96\r\n");
        let out = sdp_of(&offer(&mut h, t0, "m", &sdp));
        assert!(out.contains("m=video 0 RTP/AVP 96\r\n"), "{out}");
        assert!(out.contains("m=video 30006 RTP/AVP 96\r\n"), "{out}");
        assert_eq!(h.media().calls.borrow().len(), 2);
    }

    #[test]
    fn delete_returns_totals_with_from_tag_and_is_kept_for_delete_delay() {
        let (mut h, t0) = handler();
        offer(&mut h, t0, "c1", OFFER);
        answer(&mut h, t0, "c1");
        let r = run(
            &mut h,
            t0,
            &[
                ("command", t("delete")),
                ("call-id", t("c1")),
                ("from-tag", t("tagA")),
            ],
        );
        let rtp = r.get("totals").and_then(|t| t.get("RTP")).unwrap();
        assert_eq!(rtp.get("packets").and_then(OwnedValue::as_int), Some(20));
        assert_eq!(rtp.get("bytes").and_then(OwnedValue::as_int), Some(3440));
        // Still relaying and queryable within delete-delay, gone after.
        assert_eq!(h.media().calls.borrow().len(), 1, "engine call kept");
        let q = run(
            &mut h,
            t0 + Duration::from_secs(10),
            &[("command", t("query")), ("call-id", t("c1"))],
        );
        assert!(q.get("tags").is_some());
        assert_eq!(h.media().calls.borrow().len(), 1, "engine call kept");
        // An answer for it is refused, and does not drop it either.
        assert_eq!(reason(&answer(&mut h, t0, "c1")), "Unknown call-id");
        assert_eq!(h.call_count(), 1);
        let q = run(
            &mut h,
            t0 + Duration::from_secs(31),
            &[("command", t("query")), ("call-id", t("c1"))],
        );
        assert_eq!(reason(&q), "Unknown call-id");
        assert_eq!(h.media().calls.borrow().len(), 0, "engine call released");
        // Unknown call: ok + warning, or error with fatal.
        let r = run(
            &mut h,
            t0,
            &[("command", t("delete")), ("call-id", t("zz"))],
        );
        assert_eq!(
            r.get("warning").and_then(OwnedValue::as_str),
            Some("Call-ID not found or tags didn't match")
        );
        let r = run(
            &mut h,
            t0,
            &[
                ("command", t("delete")),
                ("call-id", t("zz")),
                ("flags", OwnedValue::List(vec![t("fatal")])),
            ],
        );
        assert_eq!(reason(&r), "Call-ID not found or tags didn't match");
        // Without from-tag: just ok.
        offer(&mut h, t0, "c2", OFFER);
        let r = run(
            &mut h,
            t0,
            &[("command", t("delete")), ("call-id", t("c2"))],
        );
        assert_eq!(r, OwnedValue::dict().with("result", t("ok")));
    }

    #[test]
    fn query_has_rtpengine_shape() {
        let (mut h, t0) = handler();
        offer(&mut h, t0, "c1", OFFER);
        let q = run(&mut h, t0, &[("command", t("query")), ("call-id", t("c1"))]);
        assert_eq!(
            q.get("created").and_then(OwnedValue::as_int),
            Some(1_700_000_000)
        );
        let tags = q.get("tags").unwrap();
        assert!(tags.get("<untagged 1>").is_some());
        let a = tags.get("tagA").unwrap();
        let media = &a.get("medias").and_then(OwnedValue::as_list).unwrap()[0];
        assert_eq!(media.get("index").and_then(OwnedValue::as_int), Some(1));
        assert_eq!(
            media.get("type").and_then(OwnedValue::as_str),
            Some("audio")
        );
        let streams = media.get("streams").and_then(OwnedValue::as_list).unwrap();
        assert_eq!(streams.len(), 2);
        assert_eq!(
            streams[0].get("local port").and_then(OwnedValue::as_int),
            Some(30000)
        );
        assert_eq!(
            streams[1].get("local port").and_then(OwnedValue::as_int),
            Some(30001)
        );
        let ep = streams[0].get("endpoint").unwrap();
        assert_eq!(
            ep.get("address").and_then(OwnedValue::as_str),
            Some("127.0.0.11")
        );
        assert_eq!(ep.get("port").and_then(OwnedValue::as_int), Some(40000));
        assert_eq!(ep.get("family").and_then(OwnedValue::as_str), Some("IPv4"));
        let stats = streams[0].get("stats").unwrap();
        assert_eq!(stats.get("packets").and_then(OwnedValue::as_int), Some(10));
        assert_eq!(q.get("result").and_then(OwnedValue::as_str), Some("ok"));
    }

    /// Two DTLS-SRTP parties with no flags: the offerer's leg awaits its
    /// keys from the offer on; the answer starts a DTLS session on each
    /// leg (the relay the client toward an `actpass` offerer, the server
    /// toward an `active` answerer), and an answer with plain RTP instead
    /// switches the answerer's leg off.
    #[test]
    fn dtls_parties_get_their_sessions_on_the_right_legs() {
        use crate::dtls::DtlsRole;
        let fp = |b: u8| {
            let hex: Vec<String> = (0..32).map(|i| format!("{:02X}", b ^ i)).collect();
            format!("sha-256 {}", hex.join(":"))
        };
        let dtls_sdp = |port: u16, setup: &str, b: u8| {
            plain(
                "",
                &format!(
                    "m=audio {port} UDP/TLS/RTP/SAVPF 0\r\na=setup:{setup}\r\na=fingerprint:{}\r\n",
                    fp(b)
                ),
            )
        };
        let (mut h, t0) = handler();
        let to_b = sdp_of(&offer(&mut h, t0, "d", &dtls_sdp(40000, "actpass", 0xA0)));
        assert!(
            to_b.contains("a=setup:actpass") && to_b.contains("a=crypto:12 "),
            "{to_b}"
        );
        let last = |h: &Handler<Fake>, leg: usize| {
            let srtp = h
                .media()
                .srtp
                .borrow()
                .iter()
                .find(|((_, l), _)| *l == leg)
                .map(|(_, v)| *v);
            let dtls = h
                .media()
                .dtls
                .borrow()
                .iter()
                .find(|((_, l), _)| *l == leg)
                .map(|(_, v)| v.clone());
            (srtp, dtls)
        };
        assert_eq!(last(&h, 0), (Some(SrtpState::AwaitingKeys), None));
        assert_eq!(last(&h, 1), (None, None));
        let b = dtls_sdp(50000, "active", 0xB0);
        let r = run(
            &mut h,
            t0,
            &[
                ("command", t("answer")),
                ("call-id", t("d")),
                ("from-tag", t("tagA")),
                ("to-tag", t("tagB")),
                ("sdp", t(&b)),
            ],
        );
        let to_a = sdp_of(&r);
        assert!(
            to_a.contains("a=setup:active") && !to_a.contains("a=crypto"),
            "{to_a}"
        );
        let on = |role, b: u8| {
            Some(DtlsUpdate::On(crate::engine::LegDtls {
                role,
                remote: fp(b).parse().unwrap(),
            }))
        };
        assert_eq!(
            last(&h, 0),
            (Some(SrtpState::AwaitingKeys), on(DtlsRole::Client, 0xA0))
        );
        assert_eq!(
            last(&h, 1),
            (Some(SrtpState::AwaitingKeys), on(DtlsRole::Server, 0xB0))
        );
        // B re-answers with plain RTP: its leg stops SRTP and DTLS.
        let r = run(
            &mut h,
            t0,
            &[
                ("command", t("offer")),
                ("call-id", t("d")),
                ("from-tag", t("tagA")),
                ("sdp", t(&dtls_sdp(40000, "actpass", 0xA0))),
            ],
        );
        sdp_of(&r);
        answer(&mut h, t0, "d");
        assert_eq!(last(&h, 1), (Some(SrtpState::Off), Some(DtlsUpdate::Off)));
        assert_eq!(
            last(&h, 0).1,
            on(DtlsRole::Client, 0xA0),
            "A's session is kept"
        );
    }

    /// Documented difference: `query` gives each leg of a terminated SRTP
    /// call its own profile and reports no keying (rtpengine's `crypto
    /// suite` and `SDES`/`DTLS-SRTP` flags mirror its own offers).
    #[test]
    fn query_reports_the_profile_per_leg_and_no_keying() {
        let (mut h, t0) = handler();
        let savp = plain(
            "",
            "m=audio 40000 RTP/SAVP 0\r\n\
             a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:mhKxoxzgZUgpTvSgao2JWtMbrT11BaijbNOJzvNT\r\n",
        );
        let to_b = sdp_of(&offer(&mut h, t0, "q", &savp));
        assert!(to_b.contains("a=fingerprint:sha-256 "), "{to_b}");
        // B answers plain RTP: the relay terminates A's side.
        let to_a = sdp_of(&answer(&mut h, t0, "q"));
        assert!(to_a.contains("m=audio 30000 RTP/SAVP 0\r\n"), "{to_a}");
        let q = run(&mut h, t0, &[("command", t("query")), ("call-id", t("q"))]);
        let tags = q.get("tags").unwrap();
        for (tag, proto) in [("tagA", "RTP/SAVP"), ("tagB", "RTP/AVP")] {
            let media = &tags
                .get(tag)
                .and_then(|t| t.get("medias"))
                .and_then(OwnedValue::as_list)
                .unwrap()[0];
            assert_eq!(
                media.get("protocol").and_then(OwnedValue::as_str),
                Some(proto)
            );
            let flags = media.get("flags").and_then(OwnedValue::as_list).unwrap();
            assert!(
                !flags
                    .iter()
                    .any(|f| matches!(f.as_str(), Some("SDES" | "DTLS-SRTP"))),
                "{flags:?}"
            );
            for st in media.get("streams").and_then(OwnedValue::as_list).unwrap() {
                assert!(st.get("crypto suite").is_none());
            }
        }
    }

    #[test]
    fn list_honours_limit() {
        let (mut h, t0) = handler();
        for i in 0..40 {
            offer(&mut h, t0, &format!("c{i}"), OFFER);
        }
        let n = |r: OwnedValue| r.get("calls").and_then(OwnedValue::as_list).map(<[_]>::len);
        assert_eq!(n(run(&mut h, t0, &[("command", t("list"))])), Some(32));
        assert_eq!(
            n(run(
                &mut h,
                t0,
                &[("command", t("list")), ("limit", OwnedValue::Int(3))]
            )),
            Some(3)
        );
        assert_eq!(
            n(run(
                &mut h,
                t0,
                &[("command", t("list")), ("limit", OwnedValue::Int(100))]
            )),
            Some(40)
        );
    }

    #[test]
    fn errors_leave_no_state() {
        let (mut h, t0) = handler();
        let cases: [(&[(&str, OwnedValue)], &str); 7] = [
            (
                &[
                    ("command", t("offer")),
                    ("from-tag", t("a")),
                    ("sdp", t(OFFER)),
                ],
                "No call-id in message",
            ),
            (
                &[
                    ("command", t("offer")),
                    ("call-id", OwnedValue::Int(5)),
                    ("from-tag", t("a")),
                    ("sdp", t(OFFER)),
                ],
                "No call-id in message",
            ),
            (
                &[
                    ("command", t("offer")),
                    ("call-id", t("x")),
                    ("sdp", t(OFFER)),
                ],
                "No from-tag in message",
            ),
            (
                &[
                    ("command", t("offer")),
                    ("call-id", t("x")),
                    ("from-tag", t("a")),
                ],
                "No SDP body in message",
            ),
            (
                &[
                    ("command", t("offer")),
                    ("call-id", t("x")),
                    ("from-tag", t("a")),
                    ("sdp", t("v=0\r\ns=x\r\n")),
                ],
                "Error rewriting SDP",
            ),
            (
                &[
                    ("command", t("answer")),
                    ("call-id", t("x")),
                    ("from-tag", t("a")),
                    ("to-tag", t("b")),
                    ("sdp", t(ANSWER)),
                ],
                "Unknown call-id",
            ),
            (&[("command", t("frobnicate"))], "Unrecognized command"),
        ];
        for (pairs, want) in cases {
            assert_eq!(reason(&run(&mut h, t0, pairs)), want);
        }
        assert_eq!(
            reason(&run(&mut h, t0, &[("call-id", t("x"))])),
            "Dictionary contains no key \"command\""
        );
        // Port exhaustion on the second media: the first one's call is released.
        *h.media().fail_creates_after.borrow_mut() = Some(1);
        let sdp = format!("{OFFER}m=video 40002 RTP/AVP 96\r\n");
        assert_eq!(reason(&offer(&mut h, t0, "y", &sdp)), "Ran out of ports");
        assert_eq!(h.call_count(), 0);
        assert_eq!(h.media().calls.borrow().len(), 0);
    }

    /// The media lines (after `m=`) of an offer reply for `sdp`.
    fn offered_media(sdp: &str) -> Vec<String> {
        let (mut h, t0) = handler();
        let out = sdp_of(&offer(&mut h, t0, "dev", sdp));
        let start = out.find("m=").unwrap();
        out[start..]
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn plain(session: &str, media: &str) -> String {
        format!(
            "v=0\r\no=- 1 1 IN IP4 127.0.0.11\r\ns=-\r\nc=IN IP4 127.0.0.11\r\nt=0 0\r\n{session}{media}"
        )
    }

    /// Deviation: a payload type with no rtpmap and no static meaning gets
    /// no `a=rtpmap` (rtpengine writes `a=rtpmap:96 /0`, outside the RFC
    /// 8866 §6.6 grammar).
    #[test]
    fn deviation_no_rtpmap_for_unknown_codec() {
        let m = offered_media(&plain("", "m=audio 40000 RTP/AVP 0 2 96\r\n"));
        assert_eq!(
            m,
            [
                "m=audio 30002 RTP/AVP 0 2 96",
                "a=rtpmap:0 PCMU/8000",
                "a=sendrecv",
                "a=rtcp:30003"
            ]
        );
    }

    /// Deviation: the media-level direction wins over the session-level one
    /// (RFC 8866 §6.7); rtpengine lets the session level win.
    #[test]
    fn deviation_media_direction_overrides_session() {
        let m = offered_media(&plain(
            "a=sendonly\r\n",
            "m=audio 40000 RTP/AVP 0\r\na=sendrecv\r\n",
        ));
        assert!(m.contains(&"a=sendrecv".to_string()), "{m:?}");
        assert!(!m.contains(&"a=sendonly".to_string()), "{m:?}");
        // Without a media-level one the session's applies (both relays).
        let m = offered_media(&plain("a=sendonly\r\n", "m=audio 40000 RTP/AVP 0\r\n"));
        assert!(m.contains(&"a=sendonly".to_string()), "{m:?}");
    }

    /// Deviation: RFC 3551 §6 table 4: payload type 10 is L16/44100 with two
    /// channels, 11 with one (rtpengine writes them the other way round).
    #[test]
    fn deviation_static_l16_as_rfc_3551() {
        let m = offered_media(&plain("", "m=audio 40000 RTP/AVP 10 11\r\n"));
        assert_eq!(
            &m[1..3],
            ["a=rtpmap:10 L16/44100/2", "a=rtpmap:11 L16/44100"]
        );
    }

    /// Deviation: attribute lines with trailing whitespace are read and
    /// regenerated (rtpengine keeps `a=rtpmap:101 telephone-event/8000\t`
    /// verbatim, adds `a=rtpmap:101 /0` and a second `a=sendrecv`; RFC 8866
    /// §6.6 and §6.7).
    #[test]
    fn deviation_trailing_whitespace_regenerated() {
        let sdp = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/data/sdp/41-quirk-trailing-whitespace.sdp"
        ))
        .unwrap();
        let m = offered_media(&sdp);
        assert_eq!(
            m,
            [
                "m=audio 30002 RTP/AVP 0 8 101",
                "a=rtpmap:0 PCMU/8000",
                "a=rtpmap:8 PCMA/8000",
                "a=rtpmap:101 telephone-event/8000",
                "a=fmtp:101 0-15",
                "a=sendrecv",
                "a=rtcp:30003",
                "a=ptime:20"
            ]
        );
    }

    /// Deviation: an `m=` line with doubled spaces is written back with
    /// single ones (rtpengine writes `m=audio 30118 5004 RTP/AVP ...`, two
    /// ports, against RFC 8866 §5.14).
    #[test]
    fn deviation_m_line_spacing_normalised() {
        let m = offered_media(&plain("", "m=audio  5004 RTP/AVP 0\r\n"));
        assert_eq!(m[0], "m=audio 30002 RTP/AVP 0");
    }

    /// rtpengine's refusals: unknown line types, empty lines, `c=` after
    /// `a=`; with the line named and no call left behind.
    #[test]
    fn sdp_refused_like_rtpengine_names_the_line() {
        let (mut h, t0) = handler();
        for (sdp, want) in [
            (
                plain("", "m=video 40000 RTP/AVP 96\r\ny=0100000001\r\n"),
                "Failed to parse SDP: unknown line type: `y=0100000001`",
            ),
            (
                plain("\r\n", "m=audio 40000 RTP/AVP 0\r\n"),
                "Error rewriting SDP: empty line",
            ),
            (
                plain(
                    "",
                    "m=audio 40000 RTP/AVP 0\r\na=ptime:20\r\nc=IN IP4 127.0.0.11\r\n",
                ),
                "Error rewriting SDP: `c=IN IP4 127.0.0.11` after an a= line (RFC 8866 §5 order)",
            ),
        ] {
            assert_eq!(reason(&offer(&mut h, t0, "refused", &sdp)), want);
            assert_eq!(h.call_count(), 0);
        }
    }

    /// `replace: sdp-version`: the o= version goes up by one when the SDP
    /// handed on changes, and stays when it does not.
    #[test]
    fn replace_sdp_version_bumps_on_change_only() {
        let (mut h, t0) = handler();
        let version = |reply: &OwnedValue| {
            let sdp = sdp_of(reply);
            let o = sdp
                .lines()
                .find(|l| l.starts_with("o="))
                .unwrap()
                .to_string();
            o.split(' ').nth(2).unwrap().parse::<u64>().unwrap()
        };
        let go = |h: &mut Handler<Fake>, media: &str| {
            run(
                h,
                t0,
                &[
                    ("command", t("offer")),
                    ("call-id", t("v")),
                    ("from-tag", t("tagA")),
                    ("sdp", t(&plain("", media))),
                    ("replace", OwnedValue::List(vec![t("sdp-version")])),
                ],
            )
        };
        assert_eq!(version(&go(&mut h, "m=audio 40000 RTP/AVP 0\r\n")), 1);
        assert_eq!(version(&go(&mut h, "m=audio 40000 RTP/AVP 0\r\n")), 1);
        let changed = go(&mut h, "m=audio 40000 RTP/AVP 0\r\na=sendonly\r\n");
        assert_eq!(version(&changed), 2);
        assert_eq!(version(&go(&mut h, "m=audio 40000 RTP/AVP 0\r\n")), 3);
    }

    /// An offer with an empty `sdp` is `ok` without `sdp` (rtpengine); the
    /// call has no media and goes at the offer timeout.
    #[test]
    fn empty_offer_creates_a_call_without_media_until_the_offer_timeout() {
        let (mut h, t0) = handler();
        let r = offer(&mut h, t0, "late", "");
        assert_eq!(r, OwnedValue::dict().with("result", t("ok")));
        assert_eq!(h.call_count(), 1);
        assert!(h.media().calls.borrow().is_empty());
        let q = run(
            &mut h,
            t0,
            &[("command", t("query")), ("call-id", t("late"))],
        );
        assert_eq!(q.get("result").and_then(OwnedValue::as_str), Some("ok"));
        h.expire(t0 + Duration::from_secs(3599));
        assert_eq!(h.call_count(), 1);
        h.expire(t0 + Duration::from_secs(3600));
        assert_eq!(h.call_count(), 0);
    }

    /// An offer with `extra` keys; the reply.
    fn offer_with(h: &mut Handler<Fake>, call: &str, extra: &[(&str, OwnedValue)]) -> OwnedValue {
        let mut msg = vec![
            ("command", t("offer")),
            ("call-id", t(call)),
            ("from-tag", t("tagA")),
            ("sdp", t(&OFFER.replace("a=ice-ufrag:abcd\r\n", ""))),
        ];
        msg.extend(extra.iter().cloned());
        run(h, Instant::now(), &msg)
    }

    /// Options the relay cannot honour are refused when the call could
    /// not work as asked, and named in `warning` when harmless; nothing is
    /// silently pretended.
    #[test]
    fn unsupported_options_are_refused_or_warned() {
        let (mut h, _) = handler();
        let list = |v: &[&str]| OwnedValue::List(v.iter().map(|s| t(s)).collect());
        let refused: Vec<(&str, OwnedValue, &str)> = vec![
            (
                "codec",
                OwnedValue::dict().with("transcode", list(&["PCMA"])),
                "Transcoding is not implemented (codec 'transcode')",
            ),
            (
                "codec",
                OwnedValue::dict().with("mask", list(&["PCMU"])),
                "Transcoding is not implemented (codec 'mask')",
            ),
            (
                "transport-protocol",
                t("RTP/AVPF/TCP"),
                "Changing the transport protocol to RTP/AVPF/TCP",
            ),
            (
                "direction",
                list(&["bogus", "external"]),
                "Unknown interface 'bogus'",
            ),
            (
                "direction",
                list(&["internal", "external"]),
                "Unknown interface 'internal'",
            ),
            ("interface", t("external"), "Unknown interface 'external'"),
            ("address family", t("IP6"), "address family IP6"),
            ("address family", t("IP9"), "Invalid 'address family' IP9"),
        ];
        for (i, (k, v, want)) in refused.into_iter().enumerate() {
            let r = offer_with(&mut h, &format!("r{i}"), &[(k, v)]);
            assert!(reason(&r).starts_with(want), "{k}: {r:?}");
            assert_eq!(h.call_count(), 0, "{k}");
        }
        let warned: Vec<(&str, OwnedValue, &str)> = vec![
            ("record call", t("yes"), "Call recording is not implemented"),
            ("frobnicate", t("1"), "key 'frobnicate'"),
            ("TOS", OwnedValue::Int(184), "key 'TOS'"),
            ("flags", list(&["loop-protect"]), "flag 'loop protect'"),
            ("ICE", t("force-relay"), "ICE 'force-relay'"),
        ];
        for (i, (k, v, want)) in warned.into_iter().enumerate() {
            let r = offer_with(&mut h, &format!("w{i}"), &[(k, v)]);
            let w = r
                .get("warning")
                .and_then(OwnedValue::as_str)
                .unwrap_or_default();
            assert!(w.contains(want), "{k}: {r:?}");
            assert!(r.get("sdp").is_some(), "{k}");
        }
        // Honoured, no warning: the relaying interface, the SDP's own
        // protocol and family, rtpengine's key spellings.
        let honoured: Vec<(&str, OwnedValue)> = vec![
            ("direction", list(&["default", "default"])),
            ("interface", t("default")),
            ("transport protocol", t("RTP/AVP")),
            ("address-family", t("IP4")),
            ("record-call", t("no")),
            ("received_from", list(&["IP4", "127.0.0.11"])),
            ("delete-delay", OwnedValue::Int(5)),
        ];
        for (i, (k, v)) in honoured.into_iter().enumerate() {
            let r = offer_with(&mut h, &format!("h{i}"), &[(k, v)]);
            assert_eq!(
                r.get("result").and_then(OwnedValue::as_str),
                Some("ok"),
                "{k}: {r:?}"
            );
            assert!(r.get("warning").is_none(), "{k}: {r:?}");
        }
    }

    /// `codec: {strip: [...], except: [...]}` removes codecs from the SDP
    /// handed on (no transcoding needed).
    #[test]
    fn codec_strip_and_except() {
        let (mut h, _) = handler();
        let list = |v: &[&str]| OwnedValue::List(v.iter().map(|s| t(s)).collect());
        let m_line = |r: &OwnedValue| {
            sdp_of(r)
                .lines()
                .find(|l| l.starts_with("m="))
                .unwrap()
                .to_string()
        };
        let r = offer_with(
            &mut h,
            "s1",
            &[("codec", OwnedValue::dict().with("strip", list(&["pcmu"])))],
        );
        assert_eq!(m_line(&r), "m=audio 30002 RTP/AVP 8 101");
        let r = offer_with(
            &mut h,
            "s2",
            &[(
                "codec",
                OwnedValue::dict()
                    .with("strip", list(&["all"]))
                    .with("except", list(&["PCMA"])),
            )],
        );
        assert!(m_line(&r).ends_with("RTP/AVP 8"), "{}", m_line(&r));
        let r = offer_with(
            &mut h,
            "s3",
            &[("codec", OwnedValue::dict().with("strip", list(&["all"])))],
        );
        assert!(
            m_line(&r).ends_with("RTP/AVP 0 8 101"),
            "strip all changes nothing: {}",
            m_line(&r)
        );
    }

    /// `delete delay` on `delete` (or on the offer) overrides
    /// `--delete-delay` for that call.
    #[test]
    fn delete_delay_per_request() {
        let (mut h, t0) = handler();
        offer(&mut h, t0, "d", OFFER);
        let r = run(
            &mut h,
            t0,
            &[
                ("command", t("delete")),
                ("call-id", t("d")),
                ("delete-delay", OwnedValue::Int(0)),
            ],
        );
        assert_eq!(r.get("result").and_then(OwnedValue::as_str), Some("ok"));
        assert_eq!(h.call_count(), 0, "removed at once");
        offer_with(&mut h, "e", &[("delete delay", OwnedValue::Int(2))]);
        run(&mut h, t0, &[("command", t("delete")), ("call-id", t("e"))]);
        h.expire(Instant::now() + Duration::from_secs(1));
        assert_eq!(h.call_count(), 1);
        h.expire(Instant::now() + Duration::from_secs(3));
        assert_eq!(h.call_count(), 0);
    }

    /// A JSON body is answered in JSON (rtpengine does too).
    #[test]
    fn json_body_gets_a_json_reply() {
        let (mut h, t0) = handler();
        let out = h.handle_datagram(t0, br#"j1 {"command":"ping"}"#).unwrap();
        assert_eq!(out, br#"j1 {"result":"pong"}"#);
        let out = h.handle_datagram(t0, br#"j2 {"command":"#).unwrap();
        assert!(out.starts_with(br#"j2 {"result":"error","error-reason":"Could not decode JSON"#));
    }

    /// Re-tagging: an offer from a new from-tag towards a known to-tag
    /// replaces the party facing it; its leg keeps the relay ports and now
    /// sends to the new party. A new from-tag without a to-tag replaces
    /// the offerer. A new from-tag towards an unknown to-tag is refused.
    #[test]
    fn retagging_replaces_a_party() {
        let (mut h, t0) = handler();
        offer(&mut h, t0, "rt", OFFER);
        answer(&mut h, t0, "rt");
        let c_sdp = OFFER
            .replace("127.0.0.11", "127.0.0.33")
            .replace("40000", "41000");
        let retag = |h: &mut Handler<Fake>, from: &str, to: Option<&str>| {
            let mut msg = vec![
                ("command", t("offer")),
                ("call-id", t("rt")),
                ("from-tag", t(from)),
                ("sdp", t(&c_sdp)),
            ];
            if let Some(to) = to {
                msg.push(("to-tag", t(to)));
            }
            run(h, t0, &msg)
        };
        let r = retag(&mut h, "tagC", Some("tagB"));
        assert!(
            sdp_of(&r).contains("m=audio 30002 "),
            "B keeps its relay port"
        );
        assert_eq!(
            h.media().remote(0),
            vec![Some("127.0.0.33:41000".parse().unwrap())]
        );
        let q = run(&mut h, t0, &[("command", t("query")), ("call-id", t("rt"))]);
        let tags = q.get("tags").unwrap();
        assert!(
            tags.get("tagC").is_some() && tags.get("tagB").is_some(),
            "{q:?}"
        );
        assert!(tags.get("tagA").is_none(), "{q:?}");
        // The answer from B to C goes through.
        let r = run(
            &mut h,
            t0,
            &[
                ("command", t("answer")),
                ("call-id", t("rt")),
                ("from-tag", t("tagC")),
                ("to-tag", t("tagB")),
                ("sdp", t(ANSWER)),
            ],
        );
        assert!(sdp_of(&r).contains("m=audio 30000 "));
        // Towards a tag the call does not have: refused, nothing changed.
        let r = retag(&mut h, "tagD", Some("tagX"));
        assert_eq!(reason(&r), "Unknown from-tag");
        // A new from-tag without a to-tag replaces the offerer.
        let r = retag(&mut h, "tagE", None);
        assert_eq!(r.get("result").and_then(OwnedValue::as_str), Some("ok"));
        let q = run(&mut h, t0, &[("command", t("query")), ("call-id", t("rt"))]);
        assert!(q.get("tags").unwrap().get("tagE").is_some(), "{q:?}");
    }

    /// Forking: offers from the same from-tag with another `via-branch`
    /// get their own branch (own ports on both sides), answers find their
    /// branch by `via-branch`, `query` shows every branch's tags, `list`
    /// the call once, and `delete` with `via-branch` removes that branch
    /// only.
    #[test]
    fn forked_offers_get_branches() {
        let (mut h, t0) = handler();
        let cmd = |h: &mut Handler<Fake>, pairs: &[(&str, OwnedValue)]| run(h, t0, pairs);
        let m_port = |r: &OwnedValue| {
            let sdp = sdp_of(r);
            let line = sdp
                .lines()
                .find(|l| l.starts_with("m="))
                .unwrap()
                .to_string();
            line.split(' ').nth(1).unwrap().parse::<u16>().unwrap()
        };
        let offer_b = |h: &mut Handler<Fake>, branch: &str| {
            cmd(
                h,
                &[
                    ("command", t("offer")),
                    ("call-id", t("fork")),
                    ("from-tag", t("tagA")),
                    ("via-branch", t(branch)),
                    ("sdp", t(OFFER)),
                ],
            )
        };
        let answer_b = |h: &mut Handler<Fake>, branch: &str, to: &str| {
            cmd(
                h,
                &[
                    ("command", t("answer")),
                    ("call-id", t("fork")),
                    ("from-tag", t("tagA")),
                    ("to-tag", t(to)),
                    ("via-branch", t(branch)),
                    ("sdp", t(ANSWER)),
                ],
            )
        };
        let p1 = m_port(&offer_b(&mut h, "b1"));
        let p2 = m_port(&offer_b(&mut h, "b2"));
        assert_ne!(p1, p2, "each branch has its own relay ports");
        assert_eq!(
            m_port(&offer_b(&mut h, "b1")),
            p1,
            "a retransmitted branch offer"
        );
        let q1 = m_port(&answer_b(&mut h, "b1", "tagB1"));
        let q2 = m_port(&answer_b(&mut h, "b2", "tagB2"));
        assert_ne!(q1, q2);
        let l = cmd(&mut h, &[("command", t("list"))]);
        assert_eq!(
            l.get("calls").and_then(OwnedValue::as_list).map(<[_]>::len),
            Some(1)
        );
        let q = cmd(&mut h, &[("command", t("query")), ("call-id", t("fork"))]);
        let tags = q.get("tags").unwrap();
        for tag in ["tagA", "tagB1", "tagB2"] {
            assert!(tags.get(tag).is_some(), "{tag}: {q:?}");
        }
        // The losing branch goes; the call and the other branch stay.
        cmd(
            &mut h,
            &[
                ("command", t("delete")),
                ("call-id", t("fork")),
                ("via-branch", t("b2")),
                ("delete delay", OwnedValue::Int(0)),
            ],
        );
        let q = cmd(&mut h, &[("command", t("query")), ("call-id", t("fork"))]);
        let tags = q.get("tags").unwrap();
        assert!(
            tags.get("tagB1").is_some() && tags.get("tagB2").is_none(),
            "{q:?}"
        );
        assert_eq!(h.media().calls.borrow().len(), 1);
        cmd(
            &mut h,
            &[
                ("command", t("delete")),
                ("call-id", t("fork")),
                ("delete delay", OwnedValue::Int(0)),
            ],
        );
        assert_eq!(h.call_count(), 0);
        assert!(h.media().calls.borrow().is_empty());
    }

    /// `max sessions` (for `mediarelay ctl maxsessions`): shown, set, -1
    /// lifts the limit, and new calls are refused at the limit.
    #[test]
    fn max_sessions_at_run_time() {
        let (mut h, t0) = handler();
        let ms = |h: &mut Handler<Fake>, v: Option<i64>| {
            let mut msg = vec![("command", t("max sessions"))];
            if let Some(v) = v {
                msg.push(("value", OwnedValue::Int(v)));
            }
            run(h, t0, &msg)
                .get("max sessions")
                .and_then(OwnedValue::as_int)
        };
        assert_eq!(ms(&mut h, None), Some(-1));
        assert_eq!(ms(&mut h, Some(0)), Some(0));
        assert_eq!(
            reason(&offer(&mut h, t0, "m1", OFFER)),
            "Parallel session limit reached"
        );
        assert_eq!(ms(&mut h, Some(-1)), Some(-1));
        assert_eq!(
            offer(&mut h, t0, "m1", OFFER)
                .get("result")
                .and_then(OwnedValue::as_str),
            Some("ok")
        );
        // Not from another host.
        h.peer = Some("192.0.2.1".parse().unwrap());
        let r = h.max_sessions(&Value::decode(b"d5:valuei5ee").unwrap());
        assert_eq!(r.get("result").and_then(OwnedValue::as_str), Some("error"));
    }

    /// SRTP the relay cannot key (a key of the wrong length) is passed
    /// through as it is, said in `warning`.
    #[test]
    fn srtp_passthrough_is_said() {
        let (mut h, t0) = handler();
        let r = offer(
            &mut h,
            t0,
            "s",
            &plain(
                "",
                "m=audio 40000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA\r\n",
            ),
        );
        let w = r.get("warning").and_then(OwnedValue::as_str).unwrap();
        assert!(w.contains("SRTP is passed through"), "{w}");
        assert!(sdp_of(&r).contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:AAAA"));
    }

    /// ICE (RFC 8445) is terminated on each side that speaks it, as
    /// rtpengine does: the sender's candidates stay with the relay (its
    /// agent on the sender's leg checks them), the SDP handed on carries
    /// the relay's credentials and host candidates, the same again on a
    /// re-offer.
    #[test]
    fn ice_is_terminated_on_each_side() {
        let (mut h, t0) = handler();
        let ice_offer = plain(
            "",
            "m=audio 40000 RTP/AVP 0\r\na=ice-ufrag:F7gI\r\na=ice-pwd:x9cml/YzichV2+XlhiMu8g\r\n\
             a=candidate:1 1 UDP 2130706431 127.0.0.11 40000 typ host\r\n",
        );
        let to_b = sdp_of(&offer(&mut h, t0, "ice", &ice_offer));
        let attr = |sdp: &str, name: &str| -> Vec<String> {
            sdp.lines()
                .filter_map(|l| l.strip_prefix(&format!("a={name}:")))
                .map(str::to_string)
                .collect()
        };
        let (ufrag, pwd) = (attr(&to_b, "ice-ufrag"), attr(&to_b, "ice-pwd"));
        assert_eq!((ufrag[0].len(), pwd[0].len()), (8, 26), "{to_b}");
        assert!(
            !to_b.contains("F7gI") && !to_b.contains("40000 typ host"),
            "{to_b}"
        );
        let port = to_b
            .lines()
            .find_map(|l| l.strip_prefix("m=audio "))
            .and_then(|l| l.split(' ').next())
            .and_then(|p| p.parse::<u16>().ok())
            .unwrap();
        let cands = attr(&to_b, "candidate");
        assert_eq!(cands.len(), 2, "{to_b}");
        assert!(cands[0].ends_with(&format!(" 1 UDP 2130706431 127.0.0.1 {port} typ host")));
        assert!(cands[1].ends_with(&format!(
            " 2 UDP 2130706430 127.0.0.1 {} typ host",
            port + 1
        )));
        // A's agent: controlled (A offered), A's credentials and candidate.
        let a_update = |h: &Handler<Fake>| {
            let ice = h.media().ice.borrow();
            let ups: Vec<_> = ice
                .iter()
                .filter(|((_, leg), _)| *leg == 0)
                .map(|(_, u)| u.clone())
                .collect();
            ups
        };
        let ups = a_update(&h);
        let [IceUpdate::On(a)] = &ups[..] else {
            panic!("{ups:?}")
        };
        assert!(!a.controlling && !a.remote_lite);
        assert_eq!(a.remote.ufrag, "F7gI");
        assert_eq!(a.candidates.len(), 1);
        assert_ne!(a.local.ufrag, ufrag[0], "each side has its own credentials");
        assert!(
            h.media().ice.borrow().keys().all(|(_, leg)| *leg == 0),
            "B did not speak ICE yet"
        );
        // The answer (no ICE from B) hands A the relay's side toward A.
        let to_a = sdp_of(&answer(&mut h, t0, "ice"));
        assert_eq!(
            attr(&to_a, "ice-ufrag")[..],
            [a.local.ufrag.as_str()],
            "{to_a}"
        );
        assert_eq!(attr(&to_a, "ice-pwd")[..], [a.local.pwd.as_str()]);
        assert_eq!(attr(&to_a, "candidate").len(), 2);
        // A re-offer keeps the relay's credentials toward B.
        let again = sdp_of(&offer(&mut h, t0, "ice", &ice_offer));
        assert_eq!(attr(&again, "ice-ufrag"), ufrag);
        assert_eq!(attr(&again, "ice-pwd"), pwd);
        // `ICE: remove` hands on none, and A's own ICE holds; a plain
        // re-offer stops A's agent.
        let r = run(
            &mut h,
            t0,
            &[
                ("command", t("offer")),
                ("call-id", t("ice")),
                ("from-tag", t("tagA")),
                ("sdp", t(&ice_offer)),
                ("ICE", t("remove")),
            ],
        );
        assert!(
            !sdp_of(&r).contains("a=ice-") && !sdp_of(&r).contains("candidate"),
            "{r:?}"
        );
        assert!(matches!(a_update(&h)[..], [IceUpdate::On(_)]));
        offer(&mut h, t0, "ice", &plain("", "m=audio 40000 RTP/AVP 0\r\n"));
        assert!(matches!(a_update(&h)[..], [IceUpdate::Off]));
    }

    /// `transport-protocol` applies to offers; in an answer that asks for
    /// another profile it is said to be ignored.
    #[test]
    fn transport_protocol_in_an_answer_is_said_to_be_ignored() {
        let (mut h, t0) = handler();
        offer(&mut h, t0, "tp", OFFER);
        let r = run(
            &mut h,
            t0,
            &[
                ("command", t("answer")),
                ("call-id", t("tp")),
                ("from-tag", t("tagA")),
                ("to-tag", t("tagB")),
                ("sdp", t(ANSWER)),
                ("transport-protocol", t("RTP/SAVP")),
            ],
        );
        assert_eq!(r.get("result").and_then(OwnedValue::as_str), Some("ok"));
        let w = r.get("warning").and_then(OwnedValue::as_str).unwrap();
        assert!(
            w.contains("transport-protocol in an answer is ignored"),
            "{w}"
        );
        assert!(sdp_of(&r).contains("RTP/AVP"));
    }

    #[test]
    fn unusable_addresses_are_errors_naming_the_line_and_leave_nothing() {
        let (mut h, t0) = handler();
        let head = "v=0\r\no=- 1 1 IN IP4 127.0.0.11\r\ns=A\r\nt=0 0\r\n";
        let cases: [(String, &str); 10] = [
            (
                format!("{head}c=IN IP4 999.1.1.1\r\nm=audio 4000 RTP/AVP 0\r\n"),
                "`c=IN IP4 999.1.1.1` has no IP address",
            ),
            (
                format!("{head}c=IN IP4 127.0.0.11\r\nm=audio 70000 RTP/AVP 0\r\n"),
                "media line 6 is malformed",
            ),
            (
                format!("{head}c=IN IP6 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n"),
                "address type IP6 does not match 127.0.0.1",
            ),
            (
                format!("{head}c=IN IP6 2001:db8::1\r\nm=audio 4000 RTP/AVP 0\r\n"),
                "`c=IN IP6 2001:db8::1`: an IPv6 address cannot be relayed from the IPv4 interface",
            ),
            (
                format!("{head}c=IN IP4 127.0.0.11\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:abc\r\n"),
                "`a=rtcp:abc` is not a port",
            ),
            (
                format!("{head}c=IN IP4 127.0.0.11\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:0\r\n"),
                "`a=rtcp:0` has port 0",
            ),
            (
                format!(
                    "{head}c=IN IP4 127.0.0.11\r\nm=audio 4000 RTP/AVP 0\r\na=rtcp:4001 IN IP4 rtcp.example\r\n"
                ),
                "`a=rtcp:4001 IN IP4 rtcp.example` has no IP address",
            ),
            (
                format!("{head}m=audio 4000 RTP/AVP 0\r\n"),
                "media 1: no c= line",
            ),
            (
                format!(
                    "{head}c=IN IP4 127.0.0.11\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP4 1.2.3\r\n"
                ),
                "`c=IN IP4 1.2.3` has no IP address",
            ),
            // The second media is the bad one: the first gets no call either.
            (
                format!(
                    "{head}c=IN IP4 127.0.0.11\r\nm=audio 4000 RTP/AVP 0\r\nm=video 4002 RTP/AVP 96\r\nc=IN IP4 x\r\n"
                ),
                "media 2: `c=IN IP4 x` has no IP address",
            ),
        ];
        for (sdp, why) in &cases {
            let r = offer(&mut h, t0, "bad", sdp);
            let got = reason(&r);
            assert!(got.starts_with("Failed to parse SDP: "), "{got}");
            assert!(got.contains(why), "{got:?} lacks {why:?}");
            assert_eq!(h.call_count(), 0, "{why}");
            assert!(h.media().calls.borrow().is_empty(), "{why}");
        }
        // Options that must be addresses.
        let bad_opts: [(&str, OwnedValue, &str); 3] = [
            ("media address", t("not-an-ip"), "Invalid 'media address'"),
            (
                "media address",
                t("2001:db8::5"),
                "media address 2001:db8::5 is IPv6 but the relay interface 127.0.0.1 is IPv4",
            ),
            (
                "received from",
                OwnedValue::List(vec![t("IP4"), t("300.1.1.1")]),
                "Invalid 'received from' address",
            ),
        ];
        for (key, value, why) in bad_opts {
            let r = run(
                &mut h,
                t0,
                &[
                    ("command", t("offer")),
                    ("call-id", t("bad")),
                    ("from-tag", t("tagA")),
                    ("sdp", t(OFFER)),
                    (key, value),
                ],
            );
            assert_eq!(reason(&r), why);
            assert_eq!(h.call_count(), 0, "{why}");
        }
        // A good offer still works, and a bad answer leaves it as it was.
        sdp_of(&offer(&mut h, t0, "good", OFFER));
        let r = run(
            &mut h,
            t0,
            &[
                ("command", t("answer")),
                ("call-id", t("good")),
                ("from-tag", t("tagA")),
                ("to-tag", t("tagB")),
                ("sdp", t(&cases[0].0)),
            ],
        );
        assert!(reason(&r).contains("999.1.1.1"));
        assert_eq!(h.call_count(), 1);
        sdp_of(&answer(&mut h, t0, "good"));
    }

    #[test]
    fn a_media_rejected_in_the_answer_loses_its_relay() {
        let (mut h, t0) = handler();
        let two = "v=0\r\no=- 1 1 IN IP4 127.0.0.11\r\ns=A\r\nc=IN IP4 127.0.0.11\r\nt=0 0\r\n\
            m=audio 40000 RTP/AVP 0\r\nm=video 40002 RTP/AVP 96\r\n";
        sdp_of(&offer(&mut h, t0, "av", two));
        assert_eq!(h.media().calls.borrow().len(), 2);
        let answer_sdp = "v=0\r\no=- 2 1 IN IP4 127.0.0.22\r\ns=B\r\nc=IN IP4 127.0.0.22\r\nt=0 0\r\n\
            m=audio 50000 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\n";
        let r = run(
            &mut h,
            t0,
            &[
                ("command", t("answer")),
                ("call-id", t("av")),
                ("from-tag", t("tagA")),
                ("to-tag", t("tagB")),
                ("sdp", t(answer_sdp)),
            ],
        );
        let out = sdp_of(&r);
        assert!(out.contains("m=video 0 "), "{out}");
        assert_eq!(h.media().calls.borrow().len(), 1, "video relay released");
        assert!(h.by_tag.len() == 1);
        // Deleting the call releases the rest.
        run(
            &mut h,
            t0,
            &[("command", t("delete")), ("call-id", t("av"))],
        );
        h.expire(t0 + Duration::from_secs(31));
        assert!(h.media().calls.borrow().is_empty());
        assert!(h.by_tag.is_empty());
    }

    #[test]
    fn a_failed_answer_does_not_name_the_branch() {
        let (mut h, t0) = handler();
        sdp_of(&offer(&mut h, t0, "br", OFFER));
        let bad = ANSWER.replace("c=IN IP4 127.0.0.22", "c=IN IP4 999.0.0.1");
        let answer_from = |h: &mut Handler<Fake>, tag: &str, sdp: &str| {
            run(
                h,
                t0,
                &[
                    ("command", t("answer")),
                    ("call-id", t("br")),
                    ("from-tag", t("tagA")),
                    ("to-tag", t(tag)),
                    ("sdp", t(sdp)),
                ],
            )
        };
        reason(&answer_from(&mut h, "branchX", &bad));
        sdp_of(&answer_from(&mut h, "branchY", ANSWER));
        // The branch that answered can re-offer and delete.
        let r = run(
            &mut h,
            t0,
            &[
                ("command", t("offer")),
                ("call-id", t("br")),
                ("from-tag", t("branchY")),
                ("sdp", t(ANSWER)),
            ],
        );
        sdp_of(&r);
        let r = run(
            &mut h,
            t0,
            &[
                ("command", t("delete")),
                ("call-id", t("br")),
                ("from-tag", t("branchY")),
            ],
        );
        assert!(r.get("warning").is_none(), "{r:?}");
    }

    #[test]
    fn retransmitted_cookie_executes_once() {
        let (mut h, t0) = handler();
        let mut dg = b"abc ".to_vec();
        dg.extend(req(&[
            ("command", t("offer")),
            ("call-id", t("c")),
            ("from-tag", t("a")),
            ("sdp", t(OFFER)),
        ]));
        let r1 = h.handle_datagram(t0, &dg).unwrap();
        let r2 = h.handle_datagram(t0 + Duration::from_secs(1), &dg).unwrap();
        assert_eq!(r1, r2);
        assert!(r1.starts_with(b"abc d3:sdp"));
        assert_eq!(h.media().calls.borrow().len(), 1);
        assert_eq!(h.counters().retransmissions(), 1);
        assert_eq!(h.counters().commands(Command::Offer, Outcome::Ok), 1);
        // Framing errors.
        assert_eq!(h.handle_datagram(t0, b"nocookie"), None);
        assert_eq!(
            h.handle_datagram(t0, b"c1 i42e").unwrap(),
            b"c1 d6:result5:error12:error-reason22:Invalid NG data formate".to_vec()
        );
        assert!(
            h.handle_datagram(t0, b"c2 d7:command4:pin")
                .unwrap()
                .ends_with(b"Could not decode bencode dictionarye")
        );
        assert_eq!(h.counters().malformed(), 3);
    }

    #[test]
    fn media_timeout_removes_the_call() {
        let (mut h, t0) = handler();
        offer(&mut h, t0, "c1", OFFER);
        let tag = h.media().calls.borrow().values().next().unwrap().0;
        h.media().calls.borrow_mut().clear();
        h.media_timeout(tag);
        assert_eq!(h.call_count(), 0);
        let q = run(&mut h, t0, &[("command", t("query")), ("call-id", t("c1"))]);
        assert_eq!(reason(&q), "Unknown call-id");
    }
}
