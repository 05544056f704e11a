//! Criterion benches for the sdp module: parse, write, and parse + answer of
//! a typical ~1 KB carrier offer (RFC 3264 §6).
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mediarelay::rtp::PayloadType;
use mediarelay::sdp::{
    Codec, LocalIdentity, MediaCapabilities, Sdp, TelephoneEvents, answer_offer,
};

/// A carrier SBC offer: G.711, G.729, telephone-event, ptime and a few
/// vendor attributes.
const OFFER: &str = "v=0\r\n\
o=Sonus_UAC 1733291025 1733291025 IN IP4 198.51.100.60\r\n\
s=SIP Media Capabilities\r\n\
c=IN IP4 198.51.100.60\r\n\
b=AS:84\r\n\
t=0 0\r\n\
a=X-carrier-route:trunk-group-17;region=eu-west;class=premium\r\n\
a=X-correlation-id:5f0c3d2a-9b1e-4c77-8a5e-0e2f6b8c9d41\r\n\
m=audio 31412 RTP/AVP 0 8 18 101 13\r\n\
b=TIAS:64000\r\n\
a=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:8 PCMA/8000\r\n\
a=rtpmap:18 G729/8000\r\n\
a=fmtp:18 annexb=no\r\n\
a=rtpmap:101 telephone-event/8000\r\n\
a=fmtp:101 0-15\r\n\
a=rtpmap:13 CN/8000\r\n\
a=ptime:20\r\n\
a=maxptime:40\r\n\
a=rtcp:31413\r\n\
a=sendrecv\r\n\
a=silenceSupp:off - - - -\r\n\
a=X-sqn:0\r\n\
a=X-cap:1 audio RTP/AVP 100\r\n\
a=X-cpar:a=rtpmap:100 X-NSE/8000\r\n\
a=X-cpar:a=fmtp:100 192-194\r\n\
a=X-media-session:7b1d6c0e-3a2f-4e59-b8d0-91a4f2c6e3b7;leg=A;hop=3\r\n\
a=X-qos-profile:voice-ef;dscp=46;jitter-buffer=adaptive;min=20;max=200\r\n\
a=X-billing:account=400123;rate=standard;currency=EUR;tariff=7\r\n\
a=X-trace:sbc-edge-02.example.net;ingress=10.1.2.3;egress=198.51.100.60\r\n";

fn caps() -> (LocalIdentity, Vec<MediaCapabilities>) {
    let id = LocalIdentity::new(4242, "203.0.113.5".parse().unwrap());
    let mut audio = MediaCapabilities::audio(40000)
        .with_codec(Codec::pcma())
        .with_codec(Codec::pcmu())
        .with_codec(Codec::new("G729", 8000, PayloadType::new(18).unwrap()))
        .with_telephone_event(PayloadType::new(101).unwrap(), TelephoneEvents::DTMF);
    audio.ptime = Some(20);
    (id, vec![audio])
}

fn bench_sdp(c: &mut Criterion) {
    let mut g = c.benchmark_group("sdp");
    g.throughput(Throughput::Bytes(OFFER.len() as u64));
    g.bench_function("parse", |b| {
        b.iter(|| Sdp::parse(black_box(OFFER.as_bytes())).unwrap())
    });
    let parsed = Sdp::parse(OFFER.as_bytes()).unwrap();
    let mut out = Vec::with_capacity(OFFER.len());
    g.bench_function("write", |b| {
        b.iter(|| {
            out.clear();
            black_box(&parsed).write_to(&mut out);
            black_box(out.len())
        })
    });
    let (id, caps) = caps();
    g.bench_function("parse_answer", |b| {
        b.iter(|| {
            let offer = Sdp::parse(black_box(OFFER.as_bytes())).unwrap();
            answer_offer(&offer, &id, &caps).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_sdp);
criterion_main!(benches);
