//! NG offer/answer churn benchmark, a bench binary: the
//! control-plane allocation profile the `mimalloc` feature is judged on.
//!
//! Setup: a real [`Engine`] (1 shard, auto backend, unpinned, relay ports
//! 45000-45999 with a 1 ms release delay so ports recycle) driven by
//! [`Handler::handle_datagram`] exactly as the NG server does. Each cycle is
//! one call: `offer` (a 1.3 KB Teams Direct Routing SDP from
//! `tests/data/sdp/`), `answer` (a Metaswitch answer), `delete`, each a
//! bencoded datagram with its own cookie. The request datagrams are built
//! outside the timed region; the three `handle_datagram` calls (parse,
//! command, engine round trips to the shard, SDP rewrite, reply encoding,
//! reply cache) are timed together per cycle into an HDR histogram.
//!
//! Reports calls per second (cycles / summed cycle time) and per-cycle
//! latency percentiles. Built with `--features mimalloc` the binary runs on
//! `mimalloc::MiMalloc`, otherwise on the system allocator, so
//! `cargo bench --bench ng_churn [--features mimalloc] -- [--cycles N]
//! [--warmup N]` compares the two.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use mediarelay::engine::{Engine, EngineConfig, IoBackend};
use mediarelay::ng::{Handler, HandlerConfig, OwnedValue, Value};

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OFFER: &str = include_str!("../tests/data/sdp/14-teams-direct-routing-offer.sdp");
const ANSWER: &str = include_str!("../tests/data/sdp/10-metaswitch-cfs-answer.sdp");

/// The offer without its `a=candidate` lines: the relay terminates ICE and
/// would send connectivity checks to the candidates' documentation
/// addresses, which must not leave the machine; its credentials stay, so
/// each call still starts an ICE agent.
fn offer_sdp() -> String {
    OFFER
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("a=candidate"))
        .collect()
}

const ALLOCATOR: &str = if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "system"
};

struct Opts {
    cycles: u64,
    warmup: u64,
}

impl Opts {
    fn parse() -> Opts {
        let mut o = Opts {
            cycles: 20_000,
            warmup: 2_000,
        };
        let args: Vec<String> = std::env::args().collect();
        let mut i = 1;
        while i < args.len() {
            let v = args.get(i + 1).cloned().unwrap_or_default();
            match args[i].as_str() {
                "--cycles" => o.cycles = v.parse().expect("--cycles N"),
                "--warmup" => o.warmup = v.parse().expect("--warmup N"),
                // `cargo bench` passes `--bench`; ignore it and unknown flags.
                _ => {
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        o
    }
}

/// Request datagrams of one cycle: offer, answer, delete.
fn requests(n: u64) -> [Vec<u8>; 3] {
    let call_id = format!("churn-{n}@bench.invalid");
    let body = |pairs: &[(&str, OwnedValue)], cookie: String| {
        let mut v = OwnedValue::dict();
        for (k, val) in pairs {
            v.push(k, val.clone());
        }
        let mut dg = format!("{cookie} ").into_bytes();
        v.encode(&mut dg);
        dg
    };
    let t = OwnedValue::text;
    [
        body(
            &[
                ("command", t("offer")),
                ("call-id", t(&call_id)),
                ("from-tag", t("as8f7d6a")),
                ("sdp", t(&offer_sdp())),
            ],
            format!("{n}_o"),
        ),
        body(
            &[
                ("command", t("answer")),
                ("call-id", t(&call_id)),
                ("from-tag", t("as8f7d6a")),
                ("to-tag", t("bs9e8c7b")),
                ("sdp", t(ANSWER)),
            ],
            format!("{n}_a"),
        ),
        body(
            &[
                ("command", t("delete")),
                ("call-id", t(&call_id)),
                ("from-tag", t("as8f7d6a")),
            ],
            format!("{n}_d"),
        ),
    ]
}

/// Panics unless the reply to `req` says `result: ok`.
fn check(req: &[u8], reply: Option<Vec<u8>>) {
    let reply = reply.expect("a reply");
    let sp = req.iter().position(|&b| b == b' ').expect("cookie");
    let rest = reply
        .strip_prefix(&req[..=sp])
        .expect("reply echoes the cookie");
    let v = OwnedValue::from(&Value::decode(rest).expect("bencode reply"));
    assert_eq!(
        v.get("result").and_then(OwnedValue::as_str),
        Some("ok"),
        "{v:?}"
    );
}

fn main() {
    let o = Opts::parse();
    let engine = Engine::start(EngineConfig {
        shards: 1,
        io_backend: IoBackend::Auto,
        port_min: 45000,
        port_max: 45999,
        release_delay: Duration::from_millis(1),
        pin_cores: false,
        ..EngineConfig::default()
    })
    .expect("engine start");
    let backend = engine.backend();
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let cfg = HandlerConfig {
        // As `--delete-delay 0`: the call table stays at one call, so the
        // run measures a steady state rather than a growing table.
        delete_delay: Duration::ZERO,
        ..HandlerConfig::default()
    };
    let mut h = Handler::new(Arc::new(engine), cfg, Instant::now(), unix);

    let mut hist = Histogram::<u64>::new_with_bounds(1, 10_000_000_000, 3).expect("histogram");
    let mut busy = Duration::ZERO;
    for n in 0..o.warmup + o.cycles {
        let reqs = requests(n);
        let t0 = Instant::now();
        let replies = reqs
            .each_ref()
            .map(|r| h.handle_datagram(Instant::now(), r));
        let dt = t0.elapsed();
        if n == 0 || n % 1000 == 0 {
            for (r, reply) in reqs.iter().zip(replies) {
                check(r, reply);
            }
        }
        if n >= o.warmup {
            busy += dt;
            hist.saturating_record(dt.as_nanos().try_into().unwrap_or(u64::MAX));
        }
    }
    assert_eq!(h.call_count(), 0, "every call deleted");

    let us = |q: f64| hist.value_at_quantile(q) as f64 / 1000.0;
    let rate = o.cycles as f64 / busy.as_secs_f64();
    println!(
        "ng_churn allocator={ALLOCATOR} backend={backend} cycles={} calls/s={rate:.0} \
         p50={:.1}us p90={:.1}us p99={:.1}us p99.9={:.1}us max={:.1}us",
        o.cycles,
        us(0.5),
        us(0.9),
        us(0.99),
        us(0.999),
        hist.max() as f64 / 1000.0,
    );
}
