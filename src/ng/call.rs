//! One NG call as the handler keeps it: its two tags (leg 0 = the first
//! offerer, leg 1 = the answerer), one engine call per media section, and
//! the rtpengine `query` structure built from the engine's snapshots.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use super::owned::OwnedValue;
use crate::engine::CallInfo;
use crate::relay::{DropReason, StreamCounters, StreamKind, StreamSnapshot};
use crate::sdp::Direction;

/// One `m=` section of the call.
#[derive(Debug, Clone)]
pub(crate) struct MediaSlot {
    /// `m=` media name (`audio`, `video`...).
    pub kind: String,
    /// `m=` protocol.
    pub proto: String,
    /// The engine call relaying it; `None` for a disabled (`port 0`) media.
    pub engine: Option<CallInfo>,
    /// The engine call's tag (meaningless without `engine`).
    pub tag: u64,
    /// rtcp-mux as planned by the last offer.
    pub mux: MuxPlan,
    /// Per leg: muxed, or offered mux and not (yet) declined it; such a
    /// leg is offered mux as muxed in later offers, as rtpengine does.
    pub mux_on: [bool; 2],
    /// The codecs the last offer listed (`sdp_out::codec_key`), which an
    /// answer may keep.
    pub offered: Vec<String>,
    /// Per leg, the direction its last SDP stated (`c=0.0.0.0` applied).
    pub dirs: [Direction; 2],
    /// Per leg, `asymmetric` and `strict source` as last signalled.
    pub asymmetric: [bool; 2],
    /// See `asymmetric`.
    pub strict: [bool; 2],
    /// The codec the answer chose first (`PCMU/8000`), for `query`.
    pub codec: Option<String>,
    /// Per leg, `0.0.0.0:<port>` while its SDP holds with `c=0.0.0.0`
    /// (shown in `query`, never sent to).
    pub held: [Option<SocketAddr>; 2],
    /// telephone-event payload types (bit n = type n) of the last offer:
    /// relayed in userspace, never by the kernel fast path.
    pub event_pts: u128,
    /// SDES-SRTP bridge (NG `transport-protocol` between RTP and SRTP).
    pub srtp: Option<super::sdes::Bridge>,
    /// The default SRTP negotiation (SRTP offered with no change of
    /// profile), as rtpengine does.
    pub rekey: Option<super::rekey::Rekey>,
    /// Each leg's profile, as its party's latest SDP gave it.
    pub protos: [Option<String>; 2],
    /// The offer's `a=mid` (RFC 8843 §9.3), written into an answer that
    /// has none, as rtpengine does (WebRTC peers match answer to offer by
    /// it).
    pub mid: Option<String>,
    /// The relay's ICE toward each leg's party (RFC 8445), per leg.
    pub ice: [Option<super::ice::LegIce>; 2],
}

impl MediaSlot {
    /// A slot for media `kind` over `proto`.
    pub fn new(kind: String, proto: String) -> MediaSlot {
        MediaSlot {
            kind,
            proto,
            engine: None,
            tag: 0,
            mux: MuxPlan::default(),
            mux_on: [false; 2],
            offered: Vec::new(),
            dirs: [Direction::SendRecv; 2],
            asymmetric: [false; 2],
            strict: [false; 2],
            codec: None,
            held: [None, None],
            event_pts: 0,
            srtp: None,
            rekey: None,
            protos: [None, None],
            mid: None,
            ice: [None, None],
        }
    }
}

/// The NG `rtcp-mux` flags of one offer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MuxFlags {
    /// `offer` (or `require`): offer mux to the answerer even if the
    /// offerer did not.
    pub offer: bool,
    /// `accept`: accept the offerer's mux whatever the answerer says.
    pub accept: bool,
    /// `demux`: do not offer mux to the answerer (still accept it back).
    pub demux: bool,
    /// `reject`: refuse the offerer's mux.
    pub reject: bool,
}

/// rtcp-mux negotiation of one media, decided at the offer (rtpengine
/// 10.5 `__rtcp_mux_logic`, checked against `tests/data/ng/flags-rtcp-mux*`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct MuxPlan {
    /// `a=rtcp-mux` goes to the answerer in the offer.
    pub offered: bool,
    /// The offerer's leg: decided now (`Some`), or following the
    /// answerer's choice (`None`).
    pub offerer: Option<bool>,
}

impl MuxPlan {
    /// The plan for an offer whose SDP has (`sdp_mux`) or lacks
    /// `a=rtcp-mux`.
    pub fn offer(sdp_mux: bool, f: MuxFlags) -> MuxPlan {
        let offered = if f.offer {
            true
        } else if f.demux {
            false
        } else {
            sdp_mux
        };
        let offerer = if !sdp_mux {
            // Not offered to us: we must not accept it (RFC 5761 §5.1.1).
            Some(false)
        } else if !offered {
            Some(!f.reject)
        } else if f.accept {
            Some(true)
        } else if f.reject {
            Some(false)
        } else {
            None
        };
        MuxPlan { offered, offerer }
    }

    /// `(answerer's leg muxed, offerer's leg muxed)` for an answer whose
    /// SDP has (`sdp_mux`) or lacks `a=rtcp-mux`.
    pub fn answer(self, sdp_mux: bool) -> (bool, bool) {
        let answerer = self.offered && sdp_mux;
        (answerer, self.offerer.unwrap_or(answerer))
    }
}

/// A call in the handler's table.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// The `via-branch` of the offer that created the call (a later offer
    /// with another one forks the call).
    pub offer_branch: Option<String>,
    /// Tag of leg 0 (the first offer's `from-tag`).
    pub from_tag: String,
    /// Tag of leg 1, once an answer named it.
    pub to_tag: Option<String>,
    /// `label` per leg.
    pub labels: [Option<String>; 2],
    /// When the first offer arrived.
    pub created: Instant,
    /// When the last offer/answer arrived.
    pub last_signal: Instant,
    /// Media sections by `m=` index.
    pub medias: Vec<MediaSlot>,
    /// Per leg, the `via-branch` its last answer carried.
    pub via_branch: [Option<String>; 2],
    /// Per leg, the `o=` session version and the rest of the SDP last
    /// handed on for it (`replace: sdp-version`).
    pub sent: [Option<(u64, Vec<u8>)>; 2],
    /// Per leg, the media interface its sockets are on (index into the
    /// handler's interfaces), chosen by the first offer.
    pub ifaces: [usize; 2],
    /// `delete delay` asked for this call (NG key), overriding
    /// `--delete-delay`.
    pub delete_delay: Option<std::time::Duration>,
    /// Set by `delete`: when, and the final streams per media (the call
    /// stays queryable for `delete-delay`, as in rtpengine).
    pub deleted: Option<(Instant, Vec<Vec<StreamSnapshot>>)>,
}

impl Call {
    /// A new call offered by `from_tag` (with `via-branch` `branch`) at
    /// `now`, without media yet.
    pub fn new(from_tag: String, branch: Option<String>, now: Instant) -> Call {
        Call {
            offer_branch: branch,
            from_tag,
            to_tag: None,
            labels: [None, None],
            created: now,
            last_signal: now,
            medias: Vec::new(),
            via_branch: [None, None],
            sent: [None, None],
            ifaces: [0, 0],
            delete_delay: None,
            deleted: None,
        }
    }

    /// The leg a tag names.
    pub fn leg_of(&self, tag: &str) -> Option<usize> {
        if tag == self.from_tag {
            return Some(0);
        }
        (self.to_tag.as_deref() == Some(tag)).then_some(1)
    }

    /// rtpengine's `query` dictionary (without `result`), from per-media
    /// stream snapshots (`snaps[i]` belongs to `medias[i]`).
    pub fn query_value(
        &self,
        snaps: &[Vec<StreamSnapshot>],
        unix: impl Fn(Instant) -> (i64, i64),
    ) -> OwnedValue {
        let (created, created_us) = unix(self.created);
        let (last_signal, _) = unix(self.last_signal);
        let mut tags = OwnedValue::dict();
        for leg in 0..2 {
            let tag = match leg {
                0 => Some(self.from_tag.as_str()),
                _ => self.to_tag.as_deref(),
            };
            let key = tag.unwrap_or("<untagged 1>");
            let mut t = OwnedValue::dict().with("tag", OwnedValue::text(tag.unwrap_or("")));
            if let Some(label) = self.labels.get(leg).and_then(Option::as_deref) {
                t.push("label", OwnedValue::text(label));
            }
            if let Some(branch) = self.via_branch.get(leg).and_then(Option::as_deref) {
                t.push("via-branch", OwnedValue::text(branch));
            }
            t.push("created", OwnedValue::Int(created));
            // rtpengine's offer/answer subscription: each tag receives the
            // other's media.
            let other = match leg {
                0 => self.to_tag.as_deref().unwrap_or(""),
                _ => self.from_tag.as_str(),
            };
            let subscription = || {
                OwnedValue::List(vec![
                    OwnedValue::dict()
                        .with("tag", OwnedValue::text(other))
                        .with("type", OwnedValue::text("offer/answer")),
                ])
            };
            t.push("subscriptions", subscription());
            t.push("subscribers", subscription());
            let medias = self
                .medias
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let snaps = snaps.get(i).map_or(&[][..], Vec::as_slice);
                    media_value(i, m, leg, snaps, last_signal, &unix)
                })
                .collect();
            t.push("medias", OwnedValue::List(medias));
            tags.push(key, t);
        }
        let (mut rtp, mut rtcp) = ([0u64; 3], [0u64; 3]);
        for s in snaps.iter().flatten() {
            let sum = match s.kind {
                StreamKind::Rtcp => &mut rtcp,
                StreamKind::Rtp | StreamKind::Muxed => &mut rtp,
            };
            sum[0] = sum[0].saturating_add(s.counters.packets);
            sum[1] = sum[1].saturating_add(s.counters.bytes);
            sum[2] = sum[2].saturating_add(s.counters.errors);
        }
        OwnedValue::dict()
            .with("created", OwnedValue::Int(created))
            .with("created_us", OwnedValue::Int(created_us))
            .with("last signal", OwnedValue::Int(last_signal))
            .with("SSRC", OwnedValue::dict())
            .with("tags", tags)
            .with(
                "totals",
                OwnedValue::dict()
                    .with("RTP", stats_value(rtp))
                    .with("RTCP", stats_value(rtcp)),
            )
    }
}

fn stats_value([packets, bytes, errors]: [u64; 3]) -> OwnedValue {
    OwnedValue::dict()
        .with("packets", OwnedValue::count(packets))
        .with("bytes", OwnedValue::count(bytes))
        .with("errors", OwnedValue::count(errors))
}

/// Dropped packets by reason (`source_active`, `no_continuity`...; the
/// labels of `mediarelay_dropped_packets_total`), only the non-zero ones;
/// `None` when nothing was dropped (the reply then has rtpengine's shape).
fn drops_value(c: &StreamCounters) -> Option<OwnedValue> {
    let mut d = OwnedValue::dict();
    let mut any = false;
    for r in DropReason::ALL {
        let n = c.dropped(r);
        if n > 0 {
            d.push(r.as_str(), OwnedValue::count(n));
            any = true;
        }
    }
    any.then_some(d)
}

fn endpoint_value(addr: Option<SocketAddr>) -> OwnedValue {
    let Some(a) = addr else {
        return OwnedValue::dict();
    };
    OwnedValue::dict()
        .with("family", OwnedValue::text(family(a)))
        .with("address", OwnedValue::text(&a.ip().to_string()))
        .with("port", OwnedValue::Int(i64::from(a.port())))
}

fn family(a: SocketAddr) -> &'static str {
    if a.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// One media of one tag: the streams of that tag's leg (RTP first), with
/// rtpengine's stream and media flags. `last packet` is the unix time of
/// the stream's last packet, else of the last signal (as rtpengine).
fn media_value(
    index: usize,
    m: &MediaSlot,
    leg: usize,
    snaps: &[StreamSnapshot],
    last_signal: i64,
    unix: &impl Fn(Instant) -> (i64, i64),
) -> OwnedValue {
    let mut streams = Vec::new();
    let mut initialized = false;
    let mut muxed = false;
    // The tag's party speaks ICE with the relay.
    let ice = m
        .ice
        .get(leg)
        .and_then(Option::as_ref)
        .is_some_and(|l| l.remote.is_some());
    if let Some(info) = &m.engine {
        let leg_info = info.legs.get(leg);
        let mut mine: Vec<&StreamSnapshot> = snaps
            .iter()
            .filter(|s| leg_info.is_some_and(|l| l.key == s.leg))
            .collect();
        mine.sort_by_key(|s| matches!(s.kind, StreamKind::Rtcp));
        muxed = mine.iter().any(|s| s.kind == StreamKind::Muxed);
        for s in mine {
            let local = leg_info.map(|l| match s.kind {
                StreamKind::Rtcp => l.rtcp,
                _ => l.rtp,
            });
            let mut flags = vec![OwnedValue::text(match s.kind {
                StreamKind::Rtcp => "RTCP",
                _ => "RTP",
            })];
            if s.kind == StreamKind::Muxed {
                flags.push(OwnedValue::text("RTCP"));
            }
            if s.kind == StreamKind::Rtcp && muxed {
                flags.push(OwnedValue::text("fallback RTCP"));
            }
            // A leg on hold by `c=0.0.0.0` is shown with that address, as
            // rtpengine does; the relay never sends there.
            let held = m.held.get(leg).copied().flatten().map(|p| match s.kind {
                StreamKind::Rtcp => SocketAddr::new(p.ip(), p.port().wrapping_add(1)),
                _ => p,
            });
            let signalled = s.signalled.or(held);
            let endpoint = s.latched.or(signalled);
            if endpoint.is_some() {
                flags.push(OwnedValue::text("filled"));
                initialized = true;
            }
            if m.strict.get(leg).copied().unwrap_or(false) {
                flags.push(OwnedValue::text("strict source address"));
            }
            if ice {
                flags.push(OwnedValue::text("ICE"));
            }
            let last_packet = s.counters.last_packet.map_or(last_signal, |t| unix(t).0);
            let mut v = OwnedValue::dict()
                .with("local port", OwnedValue::Int(i64::from(s.local_port)))
                .with(
                    "local address",
                    OwnedValue::text(&local.map(|a| a.ip().to_string()).unwrap_or_default()),
                )
                .with("family", OwnedValue::text(local.map_or("IPv4", family)))
                .with("endpoint", endpoint_value(endpoint))
                .with("advertised endpoint", endpoint_value(signalled))
                .with("last packet", OwnedValue::Int(last_packet))
                .with("flags", OwnedValue::List(flags));
            if let Some(ssrc) = s.counters.last_ssrc {
                v.push("SSRC", OwnedValue::Int(i64::from(ssrc.0)));
            }
            v.push(
                "stats",
                stats_value([s.counters.packets, s.counters.bytes, s.counters.errors]),
            );
            if let Some(d) = drops_value(&s.counters) {
                v.push("dropped", d);
            }
            streams.push(v);
        }
    }
    // Media flags in rtpengine's order; `send`/`recv` are the relay's view:
    // it sends to an endpoint that receives, receives from one that sends.
    let mut flags = Vec::new();
    if initialized {
        flags.push("initialized");
    }
    if m.asymmetric.get(leg).copied().unwrap_or(false) {
        flags.push("asymmetric");
    }
    let dir = m.dirs.get(leg).copied().unwrap_or_default();
    if matches!(dir, Direction::SendRecv | Direction::RecvOnly) {
        flags.push("send");
    }
    if matches!(dir, Direction::SendRecv | Direction::SendOnly) {
        flags.push("recv");
    }
    if muxed {
        flags.push("rtcp-mux");
    }
    if ice {
        flags.push("ICE");
    }
    if leg == 1 {
        flags.push("ICE controlling");
    }
    let mut v = OwnedValue::dict()
        .with("index", OwnedValue::count(index as u64 + 1))
        .with("type", OwnedValue::text(&m.kind))
        .with("protocol", OwnedValue::text(leg_protocol(m, leg)));
    // rtpengine names the codec once media of it was received.
    let received = snaps
        .iter()
        .any(|s| s.kind != StreamKind::Rtcp && s.counters.packets > 0);
    if let Some(codec) = m.codec.as_ref().filter(|_| received) {
        v.push("codec", OwnedValue::text(codec));
    }
    v.with("streams", OwnedValue::List(streams)).with(
        "flags",
        OwnedValue::List(flags.into_iter().map(OwnedValue::text).collect()),
    )
}

/// The profile leg `leg` of media `m` speaks: under an SDES bridge the
/// SRTP profile on the SRTP leg and the plain one on the other.
fn leg_protocol(m: &MediaSlot, leg: usize) -> &str {
    match &m.srtp {
        Some(b) if b.leg == leg => &b.srtp_proto,
        Some(b) => &b.plain_proto,
        // Each party's own profile, as its latest SDP said (an SRTP offer
        // answered with plain RTP keeps SRTP on the offerer's side).
        None => m
            .protos
            .get(leg)
            .and_then(Option::as_deref)
            .unwrap_or(&m.proto),
    }
}

/// The table key of branch `branch` of `call_id` (a forked call).
pub(crate) fn branch_key(call_id: &str, branch: &str) -> String {
    format!("{call_id}\u{0}{branch}")
}

/// Whether a table key is a forked branch's.
pub(crate) fn is_branch_key(key: &str) -> bool {
    key.contains('\u{0}')
}

/// The call-id of a table key.
pub(crate) fn base_id(key: &str) -> &str {
    key.split('\u{0}').next().unwrap_or(key)
}

/// The handler's calls by table key (a call-id, or a forked branch's
/// [`branch_key`]), with what every NG command asks of them kept current
/// instead of counted: how many calls are live (branches count once,
/// calls in their delete delay not at all) and each call's branches.
///
/// Contract: a call's `deleted` changes only while it is out of the table
/// (the handler removes, changes and re-inserts), so the live count stays
/// exact.
#[derive(Debug, Default)]
pub(crate) struct Calls {
    map: HashMap<String, Call>,
    live: u64,
    /// Base call-id -> its branches' table keys, sorted.
    branches: HashMap<String, Vec<String>>,
}

impl Calls {
    fn counts(key: &str, call: &Call) -> bool {
        call.deleted.is_none() && !is_branch_key(key)
    }

    /// Calls in the table, deleted ones in their delay included.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Live calls (see the type).
    pub fn live(&self) -> u64 {
        self.live
    }

    /// Whether `key` is in the table.
    pub fn contains_key(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The call under `key`.
    pub fn get(&self, key: &str) -> Option<&Call> {
        self.map.get(key)
    }

    /// Every table key.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.map.keys()
    }

    /// Every call.
    pub fn values(&self) -> impl Iterator<Item = &Call> {
        self.map.values()
    }

    /// Every (key, call).
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Call)> {
        self.map.iter()
    }

    /// Puts `call` under `key`, replacing (and returning) what was there.
    pub fn insert(&mut self, key: String, call: Call) -> Option<Call> {
        let old = self.remove(&key);
        if Self::counts(&key, &call) {
            self.live += 1;
        }
        if is_branch_key(&key) {
            let list = self.branches.entry(base_id(&key).to_string()).or_default();
            if let Err(at) = list.binary_search(&key) {
                list.insert(at, key.clone());
            }
        }
        self.map.insert(key, call);
        old
    }

    /// Takes the call under `key` out of the table.
    pub fn remove(&mut self, key: &str) -> Option<Call> {
        let call = self.map.remove(key)?;
        if Self::counts(key, &call) {
            self.live -= 1;
        }
        if is_branch_key(key) {
            let base = base_id(key);
            if let Some(list) = self.branches.get_mut(base) {
                list.retain(|k| k != key);
                if list.is_empty() {
                    self.branches.remove(base);
                }
            }
        }
        Some(call)
    }

    /// The table keys of `call_id`'s forked branches, sorted.
    pub fn branch_keys(&self, call_id: &str) -> Vec<String> {
        self.branches.get(call_id).cloned().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The five recordings in `tests/data/ng/flags-rtcp-mux*` (A's SDP mux,
    /// flags, B's answer mux) -> (offered to B, B muxed, A muxed).
    #[test]
    fn mux_plan_matches_rtpengine_recordings() {
        let none = MuxFlags::default();
        let offer = MuxFlags {
            offer: true,
            ..none
        };
        let accept = MuxFlags {
            accept: true,
            ..none
        };
        let demux = MuxFlags {
            demux: true,
            ..none
        };
        let reject = MuxFlags {
            reject: true,
            ..none
        };
        let cases = [
            // default-with-mux-in-sdp
            (true, none, true, (true, true, true)),
            // offer
            (true, offer, true, (true, true, true)),
            // offer-no-mux-in-sdp: B's acceptance hidden from A
            (false, offer, true, (true, true, false)),
            // demux: not offered to B, A still gets mux
            (true, demux, false, (false, false, true)),
            // accept
            (true, accept, true, (true, true, true)),
            // not recorded: default follows B; accept regardless of B;
            // reject refuses A's mux; no mux anywhere.
            (true, none, false, (true, false, false)),
            (true, accept, false, (true, false, true)),
            (true, reject, true, (true, true, false)),
            (false, none, true, (false, false, false)),
        ];
        for (a_mux, flags, b_mux, (offered, b, a)) in cases {
            let plan = MuxPlan::offer(a_mux, flags);
            assert_eq!(plan.offered, offered, "{a_mux} {flags:?} {b_mux}");
            assert_eq!(plan.answer(b_mux), (b, a), "{a_mux} {flags:?} {b_mux}");
        }
    }

    /// The live count and the branch index follow every insert and
    /// remove: deleted calls and branches do not count, replacing a call
    /// counts it once.
    #[test]
    fn calls_keep_live_count_and_branches() {
        let now = Instant::now();
        let call = || Call::new("a".into(), None, now);
        let mut t = Calls::default();
        t.insert("c1".into(), call());
        t.insert("c1".into(), call());
        t.insert(branch_key("c1", "z9"), call());
        t.insert(branch_key("c1", "z1"), call());
        t.insert("c2".into(), call());
        assert_eq!((t.len(), t.live()), (4, 2));
        assert_eq!(
            t.branch_keys("c1"),
            [branch_key("c1", "z1"), branch_key("c1", "z9")]
        );
        let mut c = t.remove("c2").unwrap();
        assert_eq!(t.live(), 1);
        c.deleted = Some((now, Vec::new()));
        t.insert("c2".into(), c);
        assert_eq!(t.live(), 1, "a call in its delete delay is not live");
        t.remove(&branch_key("c1", "z1"));
        t.remove(&branch_key("c1", "z9"));
        assert!(t.branch_keys("c1").is_empty());
        t.remove("c2");
        t.remove("c1");
        assert_eq!((t.len(), t.live()), (0, 0));
    }
}
