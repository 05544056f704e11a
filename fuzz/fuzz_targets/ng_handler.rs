//! Fuzz the NG command handler end to end (framing, flags, SDP parsing,
//! address checks, offer/answer/delete/query/list and media timeouts over
//! one call table) on a fake media plane and a virtual clock. Arbitrary
//! command sequences never panic and never leak an engine call: an offer
//! that fails for a new call-id leaves nothing behind, and deleting every
//! call frees every engine call.
#![no_main]

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mediarelay::engine::{CallId, CallInfo, CallSpec, EngineError, EngineStats, LegInfo, LegUpdate};
use mediarelay::ng::{Handler, HandlerConfig, MediaPlane, OwnedValue, Value};
use mediarelay::ports::ShardId;
use mediarelay::relay::{Key, RemovedCall, StreamSnapshot};

/// Engine calls by id; a call fails to be created when 20 are live.
#[derive(Default)]
struct Fake {
    calls: RefCell<HashMap<CallId, u64>>,
    next: RefCell<u32>,
}

impl MediaPlane for Fake {
    fn create_call(&self, spec: CallSpec) -> Result<CallInfo, EngineError> {
        if self.calls.borrow().len() >= 20 {
            return Err(EngineError::Ports("full".into()));
        }
        let mut n = self.next.borrow_mut();
        *n += 1;
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let leg = |k: u32| LegInfo {
            key: Key::from_parts(k, 0),
            rtp: SocketAddr::new(ip, 30000 + (k % 1000) as u16 * 2),
            rtcp: SocketAddr::new(ip, 30001 + (k % 1000) as u16 * 2),
        };
        let id = CallId {
            shard: ShardId(0),
            key: Key::from_parts(*n, 0),
        };
        self.calls.borrow_mut().insert(id, spec.tag);
        Ok(CallInfo {
            id,
            legs: [leg(*n * 2), leg(*n * 2 + 1)],
        })
    }
    fn dtls_fingerprint(&self) -> Result<mediarelay::dtls::Fingerprint, EngineError> {
        "sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF"
            .parse()
            .map_err(|_| EngineError::Config("fingerprint".into()))
    }
    fn update_leg(&self, id: CallId, leg: usize, _: LegUpdate) -> Result<(), EngineError> {
        if leg > 1 {
            return Err(EngineError::NoSuchLeg);
        }
        self.calls
            .borrow()
            .contains_key(&id)
            .then_some(())
            .ok_or(EngineError::NoSuchCall)
    }
    fn query(&self, id: CallId) -> Result<Vec<StreamSnapshot>, EngineError> {
        self.calls
            .borrow()
            .contains_key(&id)
            .then(Vec::new)
            .ok_or(EngineError::NoSuchCall)
    }
    fn delete_call(&self, id: CallId) -> Result<RemovedCall, EngineError> {
        let tag = self
            .calls
            .borrow_mut()
            .remove(&id)
            .ok_or(EngineError::NoSuchCall)?;
        Ok(RemovedCall {
            tag,
            streams: Vec::new(),
        })
    }
    fn stats(&self) -> EngineStats {
        EngineStats::default()
    }
}

const COMMANDS: [&str; 6] = ["offer", "answer", "delete", "query", "list", "ping"];
const FLAGS: [&str; 6] = [
    "symmetric",
    "asymmetric",
    "strict source",
    "SIP source address",
    "no rtcp attribute",
    "full rtcp attribute",
];

fuzz_target!(|data: &[u8]| {
    let t0 = Instant::now();
    let cfg = HandlerConfig {
        delete_delay: Duration::from_secs(2),
        ..HandlerConfig::default()
    };
    let mut h = Handler::new(Fake::default(), cfg, t0, Duration::from_secs(1_700_000_000));
    let mut now = t0;
    // Chunks separated by 0xff: [command, call, flags, clock step, body...].
    for (n, chunk) in data.split(|&b| b == 0xff).enumerate().take(64) {
        let [op, call, flags, step, body @ ..] = chunk else {
            // Short chunks are raw datagrams.
            let _ = h.handle_datagram(now, chunk);
            continue;
        };
        now += Duration::from_millis(u64::from(*step) * 20);
        if op % 8 == 7 {
            // The engine times out one of its calls and reports the tag.
            let victim = h.media().calls.borrow().iter().nth(usize::from(*call)).map(|(id, tag)| (*id, *tag));
            if let Some((id, tag)) = victim {
                h.media().calls.borrow_mut().remove(&id);
                h.media_timeout(tag);
            }
            continue;
        }
        let cmd = COMMANDS[usize::from(*op) % COMMANDS.len()];
        let call_id = format!("c{}", call % 4);
        let mut d = OwnedValue::dict()
            .with("command", OwnedValue::text(cmd))
            .with("call-id", OwnedValue::text(&call_id))
            .with("from-tag", OwnedValue::text(if call & 4 == 0 { "A" } else { "B" }))
            .with("to-tag", OwnedValue::text(if call & 4 == 0 { "B" } else { "A" }));
        let set: Vec<OwnedValue> = FLAGS
            .iter()
            .enumerate()
            .filter(|(i, _)| flags & (1 << i) != 0)
            .map(|(_, f)| OwnedValue::text(f))
            .collect();
        d.push("flags", OwnedValue::List(set));
        if flags & 0x40 != 0 {
            d.push(
                "received from",
                OwnedValue::List(vec![OwnedValue::text("IP4"), OwnedValue::Bytes(body.to_vec())]),
            );
        }
        if flags & 0x80 != 0 {
            d.push("media address", OwnedValue::Bytes(body.get(..8).unwrap_or(body).to_vec()));
        }
        d.push("sdp", OwnedValue::Bytes(body.to_vec()));
        let (known, engine_calls) = (h.call_count(), h.media().calls.borrow().len());
        let mut dg = format!("k{n} ").into_bytes();
        d.encode(&mut dg);
        let reply = h.handle_datagram(now, &dg).expect("a cookie gets a reply");
        let body_start = reply.iter().position(|&b| b == b' ').expect("cookie") + 1;
        let reply = Value::decode(&reply[body_start..]).expect("reply is bencode");
        let failed = reply.get("result").and_then(Value::as_str) == Some("error");
        if cmd == "offer" && failed {
            // A failed offer adds no call and no engine call.
            assert!(h.call_count() <= known, "failed offer added a call");
            assert!(h.media().calls.borrow().len() <= engine_calls, "failed offer leaked");
        }
    }
    // Every engine call belongs to an NG call: deleting the four call-ids
    // and waiting out the delete delay frees them all.
    for call in 0..4 {
        let mut dg = format!("end{call} ").into_bytes();
        OwnedValue::dict()
            .with("command", OwnedValue::text("delete"))
            .with("call-id", OwnedValue::text(&format!("c{call}")))
            .encode(&mut dg);
        let _ = h.handle_datagram(now, &dg);
    }
    h.expire(now + Duration::from_secs(10));
    assert_eq!(h.call_count(), 0);
    assert_eq!(h.media().calls.borrow().len(), 0, "engine calls leaked");
});
