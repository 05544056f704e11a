//! Differential test against Sipwise rtpengine 10.5: the same sequences of
//! NG commands go to a live rtpengine (`--table=-1`, userspace) and to the
//! mediarelay binary, and the replies are compared after normalising what
//! legitimately differs between two relays (their ports, timestamps).
//!
//! Every step either matches byte for byte after normalisation, or is a
//! documented deviation (docs/ng-reference.md, "Deviations from rtpengine
//! 10.5", each with its own test in this file or tests/ng_daemon.rs), or
//! needs a feature mediarelay does not have (SDES/DTLS-SRTP or ICE
//! termination), which the reply says with a `warning`. A step that
//! differs otherwise fails the test, and so does a step marked as a
//! deviation that has become identical (the mark would be stale).
//!
//! Both relays run in a network namespace the test creates (`unshare -n`,
//! only `lo`), so the fixtures' documentation addresses never leave the
//! machine. Without rtpengine (or without the privilege to make a
//! namespace) the test says so and passes, unless
//! `MEDIARELAY_REQUIRE_RTPENGINE` is set (CI sets it).

#![cfg(feature = "daemon")]

mod common;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::Duration;

use mediarelay::ng::OwnedValue;

/// Set in the re-executed test inside the namespace.
const INSIDE: &str = "MEDIARELAY_DIFF_INSIDE";
const RTPENGINE_NG: &str = "127.0.0.1:2223";
const RTPENGINE_PORTS: (u16, u16) = (30000, 30999);
const MEDIARELAY_NG: &str = "127.0.0.1:2224";
const MEDIARELAY_PORTS: (u16, u16) = (40000, 40999);

/// What a step's replies are expected to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Identical after normalisation.
    Same,
    /// A documented deviation (its heading in docs/ng-reference.md).
    Deviation(&'static str),
}

/// One NG command of a scenario.
struct Step {
    label: String,
    msg: Vec<(String, OwnedValue)>,
    expect: Expect,
}

/// A named sequence of commands on one call.
struct Scenario {
    name: String,
    steps: Vec<Step>,
}

impl Scenario {
    fn new(name: &str) -> Scenario {
        Scenario {
            name: name.to_string(),
            steps: Vec::new(),
        }
    }

    fn call_id(&self) -> String {
        format!("diff-{}", self.name)
    }

    fn step(mut self, label: &str, msg: Vec<(&str, OwnedValue)>, expect: Expect) -> Scenario {
        self.steps.push(Step {
            label: label.to_string(),
            msg: msg.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            expect,
        });
        self
    }

    /// `offer` of `sdp` from `from` with extra keys.
    fn offer(self, from: &str, sdp: &str, extra: Vec<(&str, OwnedValue)>, e: Expect) -> Scenario {
        let mut msg = vec![
            ("command", t("offer")),
            ("call-id", t(&self.call_id())),
            ("from-tag", t(from)),
            ("sdp", t(sdp)),
        ];
        msg.extend(extra);
        self.step("offer", msg, e)
    }

    /// `answer` of `sdp` from `to` to the offer of `from`.
    fn answer(
        self,
        from: &str,
        to: &str,
        sdp: &str,
        extra: Vec<(&str, OwnedValue)>,
        e: Expect,
    ) -> Scenario {
        let mut msg = vec![
            ("command", t("answer")),
            ("call-id", t(&self.call_id())),
            ("from-tag", t(from)),
            ("to-tag", t(to)),
            ("sdp", t(sdp)),
        ];
        msg.extend(extra);
        self.step("answer", msg, e)
    }

    /// `query` of the call.
    fn query(self) -> Scenario {
        let msg = vec![("command", t("query")), ("call-id", t(&self.call_id()))];
        self.step("query", msg, Expect::Same)
    }

    /// `query` of the call, expected to differ as `e` says.
    fn query_as(self, e: Expect) -> Scenario {
        let msg = vec![("command", t("query")), ("call-id", t(&self.call_id()))];
        self.step("query", msg, e)
    }

    /// `delete` of the whole call.
    fn delete(self) -> Scenario {
        let msg = vec![("command", t("delete")), ("call-id", t(&self.call_id()))];
        self.step("delete", msg, Expect::Same)
    }
}

fn t(s: &str) -> OwnedValue {
    OwnedValue::text(s)
}

fn list(items: &[&str]) -> OwnedValue {
    OwnedValue::List(items.iter().map(|s| t(s)).collect())
}

/// An NG client of one relay.
type Ng = common::NgSocket;

/// A relay port (in `range`) as written in SDP: `{P}` for the media's RTP
/// port, `{P+1}` for the port after it, else `{port}`.
fn norm_port(port: &str, media_port: Option<u16>, range: (u16, u16)) -> String {
    if let Some((p, count)) = port.split_once('/') {
        return format!("{}/{count}", norm_port(p, media_port, range));
    }
    let Ok(p) = port.parse::<u16>() else {
        return port.to_string();
    };
    if p < range.0 || p > range.1 {
        return port.to_string();
    }
    match media_port {
        Some(m) if p == m => "{P}".into(),
        Some(m) if Some(p) == m.checked_add(1) => "{P+1}".into(),
        _ => "{port}".into(),
    }
}

/// The SDP with relay ports replaced (only in `m=` and `a=rtcp:` lines).
fn norm_sdp(sdp: &str, range: (u16, u16)) -> String {
    let mut out = String::new();
    let mut media_port = None;
    for line in sdp.split_inclusive('\n') {
        let (body, eol) = match line.strip_suffix("\r\n") {
            Some(b) => (b, "\\r\\n\n"),
            None => match line.strip_suffix('\n') {
                Some(b) => (b, "\\n\n"),
                None => (line, "\n"),
            },
        };
        if let Some(rest) = body.strip_prefix("m=") {
            let mut f: Vec<String> = rest.split(' ').map(str::to_string).collect();
            media_port = f
                .get(1)
                .and_then(|p| p.split('/').next())
                .and_then(|p| p.parse().ok());
            if let Some(p) = f.get_mut(1) {
                *p = norm_port(p, media_port, range);
            }
            let _ = write!(out, "m={}{eol}", f.join(" "));
        } else if let Some(rest) = body.strip_prefix("a=rtcp:") {
            let (p, tail) = rest.split_once(' ').map_or((rest, ""), |(p, t)| (p, t));
            let sep = if tail.is_empty() { "" } else { " " };
            let _ = write!(
                out,
                "a=rtcp:{}{sep}{tail}{eol}",
                norm_port(p, media_port, range)
            );
        } else if let Some(rest) = body.strip_prefix("a=crypto:") {
            // SDES keys are random: tag, suite and key parameters stay.
            let masked = match rest.split_once("inline:") {
                Some((head, key)) => {
                    let tail = key.find(['|', ' ']).map_or("", |i| &key[i..]);
                    format!("{head}inline:{{key}}{tail}")
                }
                None => rest.to_string(),
            };
            let _ = write!(out, "a=crypto:{masked}{eol}");
        } else if let Some((name, v)) = body
            .strip_prefix("a=ice-ufrag:")
            .map(|v| ("ice-ufrag", v))
            .or_else(|| body.strip_prefix("a=ice-pwd:").map(|v| ("ice-pwd", v)))
        {
            // ICE credentials are random: their length and alphabet stay.
            let kind = if v.chars().all(|c| c.is_ascii_alphanumeric()) {
                "alnum"
            } else {
                "ice-chars"
            };
            let _ = write!(out, "a={name}:{{{} {kind}}}{eol}", v.len());
        } else if let Some(rest) = body.strip_prefix("a=fingerprint:") {
            // Each relay's certificate is its own: the hash and length stay.
            let (hash, hex) = rest.split_once(' ').unwrap_or((rest, ""));
            let _ = write!(
                out,
                "a=fingerprint:{hash} {{{} bytes}}{eol}",
                hex.split(':').count()
            );
        } else if let Some(rest) = body.strip_prefix("a=candidate:") {
            // The relay's foundation is random (the same for all its
            // candidates); its ports are the relay's.
            let mut f: Vec<String> = rest.split(' ').map(str::to_string).collect();
            if let Some(found) = f.first_mut() {
                *found = format!("{{foundation {}}}", found.len());
            }
            if let Some(p) = f.get_mut(5) {
                *p = norm_port(p, media_port, range);
            }
            let _ = write!(out, "a=candidate:{}{eol}", f.join(" "));
        } else {
            let _ = write!(out, "{body}{eol}");
        }
    }
    out
}

/// Keys whose values are times (differ between any two runs).
const TIME_KEYS: [&str; 4] = ["created", "created_us", "last signal", "last packet"];

/// A reply as comparable text: dictionaries in wire order, SDP normalised,
/// times and relay ports masked.
fn render(v: &OwnedValue, range: (u16, u16), key: &str, out: &mut String, depth: usize) {
    let pad = "  ".repeat(depth);
    match v {
        OwnedValue::Int(i) => {
            if TIME_KEYS.contains(&key) {
                out.push_str("<time>");
            } else if matches!(key, "local port" | "port")
                && *i >= i64::from(range.0)
                && *i <= i64::from(range.1)
            {
                out.push_str("<relay port>");
            } else {
                let _ = write!(out, "{i}");
            }
        }
        OwnedValue::Bytes(b) => {
            let s = String::from_utf8_lossy(b);
            if key == "sdp" {
                out.push_str("<<\n");
                out.push_str(&norm_sdp(&s, range));
                let _ = write!(out, "{pad}>>");
            } else {
                let _ = write!(out, "{s:?}");
            }
        }
        OwnedValue::List(l) => {
            out.push_str("[\n");
            for x in l {
                out.push_str(&pad);
                out.push_str("  ");
                render(x, range, key, out, depth + 1);
                out.push('\n');
            }
            let _ = write!(out, "{pad}]");
        }
        OwnedValue::Dict(d) => {
            out.push_str("{\n");
            for (k, x) in d {
                let k = String::from_utf8_lossy(k);
                let _ = write!(out, "{pad}  {k}: ");
                render(x, range, &k, out, depth + 1);
                out.push('\n');
            }
            let _ = write!(out, "{pad}}}");
        }
    }
}

fn rendered(v: Option<&OwnedValue>, range: (u16, u16)) -> String {
    let mut s = String::new();
    match v {
        Some(v) => render(v, range, "", &mut s, 0),
        None => s.push_str("<no reply>"),
    }
    s
}

/// A line diff of two renderings (`-` rtpengine, `+` mediarelay).
fn diff(a: &str, b: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    // Longest common subsequence; replies are short.
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            let _ = writeln!(out, "    + {}", b[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "    - {}", a[i]);
            i += 1;
        }
    }
    out
}

/// A plain audio SDP of endpoint `name` (session id `id`, version `ver`)
/// at 127.0.0.1:`port`, with `session` lines after `t=` and `media` lines
/// after `m=`.
fn sdp(id: u32, ver: u32, port: u16, fmts: &str, session: &[&str], media: &[&str]) -> String {
    let mut s =
        format!("v=0\r\no=- {id} {ver} IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n");
    for l in session {
        s.push_str(l);
        s.push_str("\r\n");
    }
    let _ = write!(s, "m=audio {port} RTP/AVP {fmts}\r\n");
    for l in media {
        s.push_str(l);
        s.push_str("\r\n");
    }
    s
}

/// A call: offer from A, answer from B, delete.
fn call(name: &str, offer: &str, answer: &str, flags: &[&str], e: [Expect; 2]) -> Scenario {
    let extra = |f: &[&str]| {
        if f.is_empty() {
            vec![]
        } else {
            vec![("flags", list(f))]
        }
    };
    Scenario::new(name)
        .offer("tagA", offer, extra(flags), e[0])
        .answer("tagA", "tagB", answer, extra(flags), e[1])
        .query()
        .delete()
}

const SAME: Expect = Expect::Same;
const NO_RTPMAP: &str = "No rtpmap for a payload type of unknown codec";
const L16: &str = "Static payload types 10 and 11";
const DISABLED: &str = "Disabled media in query";
const SAME2: [Expect; 2] = [Expect::Same, Expect::Same];
const SRTP_QUERY: &str = "query reports no SRTP keying details";
const TE: &str = "a=rtpmap:101 telephone-event/8000";

/// The SDP fixtures under tests/data/sdp, each offered once.
fn fixtures() -> Vec<Scenario> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/sdp");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "sdp"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let name = p.file_stem().unwrap().to_string_lossy().into_owned();
            let body = std::fs::read(&p).unwrap();
            let expect = fixture_expect(&name);
            let mut s = Scenario::new(&format!("fixture-{name}"));
            let msg = vec![
                ("command", t("offer")),
                ("call-id", t(&s.call_id())),
                ("from-tag", t("tagA")),
                ("sdp", OwnedValue::Bytes(body)),
            ];
            s = s.step("offer", msg, expect);
            // An offer refused on purpose leaves no call to delete, where
            // rtpengine keeps one.
            let gone = match expect {
                Expect::Deviation(d)
                    if !d.contains("Trailing")
                        && !d.contains("m= line")
                        && d != "Error reasons name the line" =>
                {
                    expect
                }
                _ => SAME,
            };
            let msg = vec![("command", t("delete")), ("call-id", t(&s.call_id()))];
            s.step("delete", msg, gone)
        })
        .collect()
}

/// Fixtures whose offer reply is expected to differ, and why.
fn fixture_expect(name: &str) -> Expect {
    let n: u32 = name.get(..2).and_then(|p| p.parse().ok()).unwrap_or(0);
    match n {
        17 | 18 | 27 => Expect::Deviation("IPv6 media through an IPv4-only relay"),
        36 | 43 => Expect::Deviation("Error reasons name the line; no call left behind"),
        40 => Expect::Deviation("Error reasons name the line"),
        41 => Expect::Deviation("Trailing whitespace"),
        45 => Expect::Deviation("Malformed m= line"),
        _ => SAME,
    }
}

/// Generated variants: codecs, ptime, directions, holds, RTCP, mux,
/// several and rejected m-lines, ICE, answers with fewer codecs.
fn variants() -> Vec<Scenario> {
    let b = |fmts: &str, media: &[&str]| sdp(2222, 1, 6000, fmts, &[], media);
    let a = |fmts: &str, media: &[&str]| sdp(1111, 1, 5000, fmts, &[], media);
    let mut v = vec![
        call("static-pcmu", &a("0", &[]), &b("0", &[]), &[], SAME2),
        call(
            "static-many",
            &a("0 8 9 18 3 4 13", &[]),
            &b("8", &[]),
            &[],
            SAME2,
        ),
        call(
            "dynamic-opus-te",
            &a(
                "96 0 101",
                &[
                    "a=rtpmap:96 opus/48000/2",
                    "a=fmtp:96 useinbandfec=1",
                    TE,
                    "a=fmtp:101 0-16",
                ],
            ),
            &b(
                "96 101",
                &["a=rtpmap:96 opus/48000/2", TE, "a=fmtp:101 0-16"],
            ),
            &[],
            SAME2,
        ),
        call(
            "ptime-maxptime",
            &a("0 8", &["a=ptime:30", "a=maxptime:60"]),
            &b("0", &["a=ptime:30"]),
            &[],
            SAME2,
        ),
        call(
            "answer-fewer-codecs",
            &a("0 8 9 101", &[TE]),
            &b("8", &[]),
            &[],
            SAME2,
        ),
        call(
            "answer-codec-not-offered",
            &a("0 8", &[]),
            &b("8 0 101", &[TE]),
            &[],
            SAME2,
        ),
        call(
            "answer-dynamic-without-rtpmap",
            &a("0 101", &[TE, "a=fmtp:101 0-15"]),
            &b("0 101", &[]),
            &[],
            [SAME, Expect::Deviation(NO_RTPMAP)],
        ),
        call(
            "unknown-payload-types",
            &a("0 2 96", &[]),
            &b("0", &[]),
            &[],
            [Expect::Deviation(NO_RTPMAP), SAME],
        ),
        call(
            "static-l16",
            &a("10 11", &[]),
            &b("11", &[]),
            &[],
            [Expect::Deviation(L16), Expect::Deviation(L16)],
        ),
        call(
            "rtcp-attr-port",
            &a("0", &["a=rtcp:5009"]),
            &b("0", &["a=rtcp:6009 IN IP4 127.0.0.1"]),
            &[],
            SAME2,
        ),
        call(
            "rtcp-mux-both",
            &a("0", &["a=rtcp-mux"]),
            &b("0", &["a=rtcp-mux"]),
            &[],
            SAME2,
        ),
        call(
            "rtcp-mux-declined",
            &a("0", &["a=rtcp-mux"]),
            &b("0", &[]),
            &[],
            SAME2,
        ),
        call(
            "rtcp-fb-and-unknown-attributes",
            &a(
                "96 97",
                &[
                    "a=rtcp-fb:* nack",
                    "a=rtpmap:96 AMR-WB/16000",
                    "a=x-vendor:1",
                    "a=rtcp-fb:96 ccm fir",
                    "a=fmtp:96 octet-align=1",
                    "a=rtpmap:97 AMR/8000",
                    "a=label:7",
                ],
            ),
            &b(
                "96",
                &["a=rtpmap:96 AMR-WB/16000", "a=fmtp:96 octet-align=1"],
            ),
            &[],
            SAME2,
        ),
    ];
    for dir in ["sendrecv", "sendonly", "recvonly", "inactive"] {
        let answer_dir = match dir {
            "sendonly" => "recvonly",
            "recvonly" => "sendonly",
            other => other,
        };
        v.push(call(
            &format!("direction-{dir}"),
            &a("0", &[&format!("a={dir}")]),
            &b("0", &[&format!("a={answer_dir}")]),
            &[],
            SAME2,
        ));
        v.push(call(
            &format!("session-direction-{dir}"),
            &sdp(1111, 1, 5000, "0", &[&format!("a={dir}")], &[]),
            &sdp(2222, 1, 6000, "0", &[&format!("a={answer_dir}")], &[]),
            &[],
            SAME2,
        ));
    }
    v.push(call(
        "session-sendonly-media-sendrecv",
        &sdp(1111, 1, 5000, "0", &["a=sendonly"], &["a=sendrecv"]),
        &b("0", &[]),
        &[],
        [
            Expect::Deviation("Session-level direction overridden by the media level"),
            SAME,
        ],
    ));
    let hold = "v=0\r\no=- 1111 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n";
    v.push(call(
        "hold-c-zero",
        hold,
        &b("0", &["a=recvonly"]),
        &[],
        SAME2,
    ));
    v.push(call(
        "hold-c-zero-recvonly",
        &format!("{hold}a=recvonly\r\n"),
        &b("0", &["a=inactive"]),
        &[],
        SAME2,
    ));
    let two = |port: u16, id: u32, video_port: u16| {
        format!(
            "v=0\r\no=- {id} 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
             m=audio {port} RTP/AVP 0 8\r\nm=video {video_port} RTP/AVP 96\r\n\
             a=rtpmap:96 H264/90000\r\na=fmtp:96 profile-level-id=42e01f\r\na=rtcp-fb:96 nack pli\r\n"
        )
    };
    v.push(call(
        "two-media",
        &two(5000, 1111, 5002),
        &two(6000, 2222, 6002),
        &[],
        SAME2,
    ));
    for (name, offer_video, answer_video) in [
        ("video-rejected", 5002, 0),
        ("video-disabled-in-offer", 0, 0),
    ] {
        v.push(
            Scenario::new(name)
                .offer("tagA", &two(5000, 1111, offer_video), vec![], SAME)
                .answer("tagA", "tagB", &two(6000, 2222, answer_video), vec![], SAME)
                .step(
                    "query",
                    vec![
                        ("command", t("query")),
                        ("call-id", t(&format!("diff-{name}"))),
                    ],
                    Expect::Deviation(DISABLED),
                )
                .delete(),
        );
    }
    // A disabled media keeps the attributes rtpengine does not manage.
    let disabled_extra = "v=0\r\no=- 1111 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio 5000 RTP/AVP 0 8\r\nm=video 0 RTP/AVP 96\r\na=rtcp-fb:* trr-int 5000\r\n\
         a=rtpmap:96 H264/90000\r\na=sendrecv\r\na=x-foo\r\n";
    v.push(
        Scenario::new("disabled-media-unmanaged-attributes")
            .offer("tagA", disabled_extra, vec![], SAME)
            .delete(),
    );
    v.push(
        Scenario::new("codec-strip-all")
            .offer(
                "tagA",
                &a("0 8", &[]),
                vec![("codec", OwnedValue::dict().with("strip", list(&["all"])))],
                SAME,
            )
            .delete(),
    );
    v.push(
        Scenario::new("sip-source-without-received-from")
            .offer(
                "tagA",
                &a("0", &[]),
                vec![("flags", list(&["SIP-source-address"]))],
                SAME,
            )
            .delete(),
    );
    let ice = [
        "a=ice-ufrag:F7gI",
        "a=ice-pwd:x9cml/YzichV2+XlhiMu8g",
        "a=candidate:1 1 UDP 2130706431 127.0.0.1 5000 typ host",
    ];
    // SDES-SRTP bridged to plain RTP (`transport-protocol`).
    let savp = sdp(1111, 1, 5000, "0 8 101", &[], &[TE]).replace("RTP/AVP", "RTP/SAVP")
        + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:mhKxoxzgZUgpTvSgao2JWtMbrT11BaijbNOJzvNT\r\n\
           a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:gL9ogeYlDF1ATCEr0tNUoZQ6E1qLL+y6PbaizhO8\r\n";
    v.push(
        Scenario::new("sdes-offer-to-rtp")
            .offer(
                "tagA",
                &savp,
                vec![("transport-protocol", t("RTP/AVP"))],
                SAME,
            )
            .answer("tagA", "tagB", &b("0 101", &[TE]), vec![], SAME)
            .delete(),
    );
    v.push(
        Scenario::new("rtp-offer-to-sdes")
            .offer(
                "tagA",
                &a("0 8", &[]),
                vec![("transport-protocol", t("RTP/SAVP"))],
                SAME,
            )
            .delete(),
    );
    let remove = || vec![("ICE", t("remove"))];
    v.push(
        Scenario::new("ice-remove")
            .offer("tagA", &a("0", &ice), remove(), SAME)
            .answer("tagA", "tagB", &b("0", &[]), remove(), SAME)
            .delete(),
    );
    v.push(
        Scenario::new("ice-default")
            .offer("tagA", &a("0", &ice), vec![], SAME)
            .delete(),
    );
    // ICE terminated on both sides (RFC 8445): the relay's credentials
    // and candidates toward each party, sticky across re-offers.
    let b_ice = [
        "a=ice-ufrag:Bq7x",
        "a=ice-pwd:BBBBBBBBBBBBBBBBBBBBBBBB",
        "a=candidate:2 1 UDP 2130706431 127.0.0.1 6000 typ host",
        "a=candidate:2 2 UDP 2130706430 127.0.0.1 6001 typ host",
    ];
    v.push(call(
        "ice-both",
        &a("0 8", &ice),
        &b("0", &b_ice),
        &[],
        SAME2,
    ));
    v.push(call(
        "ice-offer-only",
        &a("0 8", &ice),
        &b("0", &[]),
        &[],
        SAME2,
    ));
    v.push(call(
        "ice-answer-only",
        &a("0 8", &[]),
        &b("0", &b_ice),
        &[],
        SAME2,
    ));
    v.push(
        Scenario::new("ice-force")
            .offer("tagA", &a("0 8", &[]), vec![("ICE", t("force"))], SAME)
            .answer("tagA", "tagB", &b("0", &b_ice), vec![], SAME)
            .delete(),
    );
    v.push(
        Scenario::new("ice-remove-offer-only")
            .offer("tagA", &a("0", &ice), remove(), SAME)
            .answer("tagA", "tagB", &b("0", &[]), vec![], SAME)
            .delete(),
    );
    let mut ice_mux = ice.to_vec();
    ice_mux.extend(["a=rtcp-mux", "a=end-of-candidates"]);
    let mut b_ice_mux = b_ice[..3].to_vec();
    b_ice_mux.push("a=rtcp-mux");
    v.push(
        Scenario::new("ice-rtcp-mux-reoffer")
            .offer("tagA", &a("0", &ice_mux), vec![], SAME)
            .answer("tagA", "tagB", &b("0", &b_ice_mux), vec![], SAME)
            .offer("tagA", &a("0", &ice_mux), vec![], SAME)
            .answer("tagA", "tagB", &b("0", &b_ice_mux), vec![], SAME)
            .delete(),
    );
    let session_ice = sdp(
        1111,
        1,
        5000,
        "0",
        &["a=ice-ufrag:sEsS", "a=ice-pwd:ssssssssssssssssssssssss"],
        &["a=candidate:1 1 UDP 2130706431 127.0.0.1 5000 typ host"],
    );
    // SRTP offered as it is (rtpengine's default): the answer decides
    // between passing it through and terminating either side.
    let fp_a = "a=fingerprint:sha-256 A2:70:A0:64:4F:6A:C2:7D:FE:EE:CF:C4:26:F1:E4:B6:5A:02:02:D4:F4:67:68:D8:59:27:1C:CB:40:10:60:4D";
    let fp_b = "a=fingerprint:sha-256 0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0:0F:1E:2D:3C:4B:5A:69:78:87:96:A5:B4:C3:D2:E1:F0";
    let savp_a = |fmts: &str| {
        sdp(1111, 1, 5000, fmts, &[], &[]).replace("RTP/AVP", "RTP/SAVP")
            + "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:mhKxoxzgZUgpTvSgao2JWtMbrT11BaijbNOJzvNT\r\n"
    };
    let savp_b = |line: &str| {
        sdp(2222, 1, 6000, "0", &[], &[]).replace("RTP/AVP", "RTP/SAVP") + line + "\r\n"
    };
    let dtls = |id: u32, port: u16, setup: &str, fp: &str| {
        sdp(id, 1, port, "0", &[], &[setup, fp]).replace("RTP/AVP", "UDP/TLS/RTP/SAVPF")
    };
    let srtp_call = |name: &str, offer: &str, answer: &str| {
        Scenario::new(name)
            .offer("tagA", offer, vec![], SAME)
            .answer("tagA", "tagB", answer, vec![], SAME)
            .query_as(Expect::Deviation(SRTP_QUERY))
            .delete()
    };
    v.push(srtp_call(
        "srtp-default-sdes-passed-through",
        &savp_a("0"),
        &savp_b(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:gL9ogeYlDF1ATCEr0tNUoZQ6E1qLL+y6PbaizhO8",
        ),
    ));
    v.push(srtp_call(
        "srtp-default-sdes-to-dtls",
        &savp_a("0"),
        &savp_b(&format!("a=setup:active\r\n{fp_b}")),
    ));
    v.push(srtp_call(
        "srtp-default-sdes-to-plain",
        &savp_a("0"),
        &b("0", &[]),
    ));
    v.push(srtp_call(
        "srtp-default-dtls-to-dtls",
        &dtls(1111, 5000, "a=setup:actpass", fp_a),
        &dtls(2222, 6000, "a=setup:active", fp_b),
    ));
    v.push(srtp_call(
        "srtp-default-dtls-to-plain",
        &dtls(1111, 5000, "a=setup:actpass", fp_a),
        &b("0", &[]),
    ));
    // a=mid: an answer or a reverse re-offer without one gets the offer's.
    v.push(
        Scenario::new("mid-reverse-reoffer")
            .offer("tagA", &a("0", &["a=mid:0"]), vec![], SAME)
            .answer("tagA", "tagB", &b("0", &[]), vec![], SAME)
            .step(
                "reverse offer",
                vec![
                    ("command", t("offer")),
                    ("call-id", t("diff-mid-reverse-reoffer")),
                    ("from-tag", t("tagB")),
                    ("to-tag", t("tagA")),
                    ("sdp", t(&b("0", &["a=sendonly"]))),
                ],
                SAME,
            )
            .delete(),
    );
    // rtcp-mux across re-offers: a leg that was offered mux (and did not
    // decline it) or accepted it is offered mux as muxed again.
    let mux = || a("0", &["a=rtcp-mux"]);
    let b_mux = || b("0", &["a=rtcp-mux"]);
    v.push(
        Scenario::new("mux-reoffer-before-answer")
            .offer("tagA", &mux(), vec![], SAME)
            .offer("tagA", &mux(), vec![], SAME)
            .answer("tagA", "tagB", &b("0", &[]), vec![], SAME)
            .offer("tagA", &mux(), vec![], SAME)
            .delete(),
    );
    v.push(
        Scenario::new("mux-accepted-reoffer-without")
            .offer("tagA", &mux(), vec![], SAME)
            .answer("tagA", "tagB", &b_mux(), vec![], SAME)
            .offer("tagA", &a("0", &[]), vec![], SAME)
            .delete(),
    );
    v.push(
        Scenario::new("mux-late")
            .offer("tagA", &a("0", &[]), vec![], SAME)
            .answer("tagA", "tagB", &b("0", &[]), vec![], SAME)
            .offer("tagA", &mux(), vec![], SAME)
            .delete(),
    );
    v.push(
        Scenario::new("mux-accepted-reverse-reoffer")
            .offer("tagA", &mux(), vec![], SAME)
            .answer("tagA", "tagB", &b_mux(), vec![], SAME)
            .step(
                "reverse offer",
                vec![
                    ("command", t("offer")),
                    ("call-id", t("diff-mux-accepted-reverse-reoffer")),
                    ("from-tag", t("tagB")),
                    ("to-tag", t("tagA")),
                    ("sdp", t(&b_mux())),
                ],
                SAME,
            )
            .delete(),
    );
    v.push(
        Scenario::new("ice-session-level-credentials")
            .offer("tagA", &session_ice, vec![], SAME)
            .answer("tagA", "tagB", &b("0", &[]), vec![], SAME)
            .delete(),
    );
    v
}

/// Flags and options from Kamailio scripts.
fn flags() -> Vec<Scenario> {
    let a = sdp(1111, 1, 5000, "0 8", &[], &[]);
    let b = sdp(2222, 1, 6000, "0", &[], &[]);
    let mut v = Vec::new();
    for f in [
        "trust-address",
        "symmetric",
        "asymmetric",
        "strict-source",
        "no-rtcp-attribute",
        "full-rtcp-attribute",
    ] {
        v.push(call(&format!("flag-{f}"), &a, &b, &[f], SAME2));
    }
    for r in ["origin", "session-connection"] {
        let e = vec![("replace", list(&[r]))];
        v.push(
            Scenario::new(&format!("replace-{r}"))
                .offer("tagA", &a, e.clone(), SAME)
                .answer("tagA", "tagB", &b, e, SAME)
                .delete(),
        );
    }
    v
}

/// Re-offers: same SDP, changed port, hold and resume, changed codecs,
/// `replace sdp-version`.
fn reoffers() -> Vec<Scenario> {
    let a =
        |ver: u32, port: u16, fmts: &str, media: &[&str]| sdp(1111, ver, port, fmts, &[], media);
    let b = |ver: u32, fmts: &str, media: &[&str]| sdp(2222, ver, 6000, fmts, &[], media);
    let none = Vec::new;
    let mut v = vec![
        Scenario::new("reoffer-same")
            .offer("tagA", &a(1, 5000, "0 8", &[]), none(), SAME)
            .answer("tagA", "tagB", &b(1, "0", &[]), none(), SAME)
            .offer("tagA", &a(1, 5000, "0 8", &[]), none(), SAME)
            .answer("tagA", "tagB", &b(1, "0", &[]), none(), SAME)
            .delete(),
        Scenario::new("reoffer-hold-resume")
            .offer("tagA", &a(1, 5000, "0 8", &[]), none(), SAME)
            .answer("tagA", "tagB", &b(1, "0", &[]), none(), SAME)
            .offer("tagA", &a(2, 5000, "0 8", &["a=sendonly"]), none(), SAME)
            .answer("tagA", "tagB", &b(2, "0", &["a=recvonly"]), none(), SAME)
            .offer("tagA", &a(3, 5000, "0 8", &[]), none(), SAME)
            .answer("tagA", "tagB", &b(3, "0", &[]), none(), SAME)
            .query()
            .delete(),
        Scenario::new("reoffer-codecs-changed")
            .offer("tagA", &a(1, 5000, "0 8", &[]), none(), SAME)
            .answer("tagA", "tagB", &b(1, "0", &[]), none(), SAME)
            .offer("tagA", &a(2, 5000, "8 101", &[TE]), none(), SAME)
            .answer("tagA", "tagB", &b(2, "8 101", &[TE]), none(), SAME)
            .delete(),
    ];
    let sv = || vec![("replace", list(&["sdp-version"]))];
    v.push(
        Scenario::new("reoffer-sdp-version")
            .offer("tagA", &a(1, 5000, "0 8", &[]), sv(), SAME)
            .answer("tagA", "tagB", &b(1, "0", &[]), sv(), SAME)
            .offer("tagA", &a(1, 5000, "0 8", &[]), sv(), SAME)
            .offer("tagA", &a(1, 5000, "0 8", &["a=sendonly"]), sv(), SAME)
            .answer("tagA", "tagB", &b(1, "0", &["a=recvonly"]), sv(), SAME)
            .delete(),
    );
    v
}

/// Re-tagging and branches: a reverse re-INVITE (the to-tag becomes the
/// from-tag), `via-branch`.
fn retagging() -> Vec<Scenario> {
    let a = |ver: u32, dir: &str| sdp(1111, ver, 5000, "0", &[], &[dir]);
    let b = |ver: u32, dir: &str| sdp(2222, ver, 6000, "0", &[], &[dir]);
    let none = Vec::new;
    let vb = |s: &str| vec![("via-branch", t(s))];
    vec![
        Scenario::new("reverse-reinvite")
            .offer("tagA", &a(1, "a=sendrecv"), none(), SAME)
            .answer("tagA", "tagB", &b(1, "a=sendrecv"), none(), SAME)
            .step(
                "reverse offer",
                vec![
                    ("command", t("offer")),
                    ("call-id", t("diff-reverse-reinvite")),
                    ("from-tag", t("tagB")),
                    ("to-tag", t("tagA")),
                    ("sdp", t(&b(2, "a=sendonly"))),
                ],
                SAME,
            )
            .step(
                "reverse answer",
                vec![
                    ("command", t("answer")),
                    ("call-id", t("diff-reverse-reinvite")),
                    ("from-tag", t("tagB")),
                    ("to-tag", t("tagA")),
                    ("sdp", t(&a(2, "a=recvonly"))),
                ],
                SAME,
            )
            .query()
            .delete(),
        Scenario::new("retag")
            .offer("tagA", &a(1, "a=sendrecv"), none(), SAME)
            .answer("tagA", "tagB", &b(1, "a=sendrecv"), none(), SAME)
            .step(
                "re-tagged offer",
                vec![
                    ("command", t("offer")),
                    ("call-id", t("diff-retag")),
                    ("from-tag", t("tagC")),
                    ("to-tag", t("tagB")),
                    ("sdp", t(&sdp(3333, 1, 7000, "0", &[], &["a=sendrecv"]))),
                ],
                SAME,
            )
            .step(
                "re-tagged answer",
                vec![
                    ("command", t("answer")),
                    ("call-id", t("diff-retag")),
                    ("from-tag", t("tagC")),
                    ("to-tag", t("tagB")),
                    ("sdp", t(&b(2, "a=sendrecv"))),
                ],
                SAME,
            )
            .step(
                "query",
                vec![("command", t("query")), ("call-id", t("diff-retag"))],
                Expect::Deviation("Re-tagging replaces the party"),
            )
            .delete(),
        Scenario::new("fork")
            .offer("tagA", &a(1, "a=sendrecv"), vb("z9hG4bK-f1"), SAME)
            .offer("tagA", &a(1, "a=sendrecv"), vb("z9hG4bK-f2"), SAME)
            .step(
                "answer branch 1",
                vec![
                    ("command", t("answer")),
                    ("call-id", t("diff-fork")),
                    ("from-tag", t("tagA")),
                    ("to-tag", t("tagB1")),
                    ("via-branch", t("z9hG4bK-f1")),
                    ("sdp", t(&b(1, "a=sendrecv"))),
                ],
                SAME,
            )
            .step(
                "answer branch 2",
                vec![
                    ("command", t("answer")),
                    ("call-id", t("diff-fork")),
                    ("from-tag", t("tagA")),
                    ("to-tag", t("tagB2")),
                    ("via-branch", t("z9hG4bK-f2")),
                    ("sdp", t(&sdp(4444, 1, 7000, "0", &[], &["a=sendrecv"]))),
                ],
                SAME,
            )
            .step(
                "query",
                vec![("command", t("query")), ("call-id", t("diff-fork"))],
                Expect::Deviation("Forked call in query"),
            )
            .step(
                "delete branch 1",
                vec![
                    ("command", t("delete")),
                    ("call-id", t("diff-fork")),
                    ("via-branch", t("z9hG4bK-f1")),
                ],
                SAME,
            )
            .delete(),
        Scenario::new("via-branch")
            .offer("tagA", &a(1, "a=sendrecv"), vb("z9hG4bK-1"), SAME)
            .answer("tagA", "tagB", &b(1, "a=sendrecv"), vb("z9hG4bK-1"), SAME)
            .query()
            .delete(),
    ]
}

fn corpus() -> Vec<Scenario> {
    let mut c = fixtures();
    c.extend(variants());
    c.extend(flags());
    c.extend(reoffers());
    c.extend(retagging());
    c
}

fn which(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

#[test]
fn replies_match_rtpengine() {
    if std::env::var_os(INSIDE).is_some() {
        run_inside();
        return;
    }
    let required = std::env::var_os("MEDIARELAY_REQUIRE_RTPENGINE").is_some();
    if which("rtpengine").is_none() {
        assert!(!required, "rtpengine is not installed");
        eprintln!("rtpengine is not installed: the differential test is skipped");
        return;
    }
    // Re-run this test alone in a fresh network namespace (only `lo`).
    let out = Command::new("unshare")
        .args(["-n", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "replies_match_rtpengine", "--nocapture"])
        .env(INSIDE, "1")
        .env("MEDIARELAY_BIN", common::bin())
        .output()
        .expect("run unshare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() && text.contains("unshare failed") {
        assert!(!required, "cannot make a network namespace: {text}");
        eprintln!("cannot make a network namespace here: the differential test is skipped");
        return;
    }
    println!("{text}");
    assert!(out.status.success(), "differential test failed");
}

fn run_inside() {
    let ok = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip link set lo up");
    let log = std::env::temp_dir().join("ng-differential-rtpengine.log");
    let rtpengine = common::Daemon(
        Command::new("rtpengine")
            .args([
                "--config-file=none",
                "--table=-1",
                "--interface=127.0.0.1",
                &format!("--listen-ng={RTPENGINE_NG}"),
                &format!("--port-min={}", RTPENGINE_PORTS.0),
                &format!("--port-max={}", RTPENGINE_PORTS.1),
                "--foreground",
                "--log-stderr",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn rtpengine"),
    );
    let mediarelay = common::Daemon(
        Command::new(common::bin())
            .args(["--interface", "127.0.0.1", "--listen-ng", MEDIARELAY_NG])
            .args(["--listen-http", "127.0.0.1:2225", "--foreground"])
            .arg(format!("--port-min={}", MEDIARELAY_PORTS.0))
            .arg(format!("--port-max={}", MEDIARELAY_PORTS.1))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mediarelay"),
    );
    let mut re = Ng::connect(RTPENGINE_NG, Duration::from_millis(300));
    let mut mr = Ng::connect(MEDIARELAY_NG, Duration::from_millis(300));
    re.wait_up("rtpengine");
    mr.wait_up("mediarelay");
    for ng in [&re, &mr] {
        ng.sock
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
    }

    // MEDIARELAY_DIFF_SHOW=1 prints the expected differences too.
    let show_expected = std::env::var_os("MEDIARELAY_DIFF_SHOW").is_some();
    let mut tally: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut unexpected = Vec::new();
    let mut total = 0;
    for sc in corpus() {
        for (i, step) in sc.steps.iter().enumerate() {
            total += 1;
            let a = rendered(re.request(&step.msg).as_ref(), RTPENGINE_PORTS);
            let b = rendered(mr.request(&step.msg).as_ref(), MEDIARELAY_PORTS);
            let same = a == b;
            let where_ = format!("{} step {} ({})", sc.name, i + 1, step.label);
            match (step.expect, same) {
                (Expect::Same, true) => *tally.entry("identical").or_default() += 1,
                (Expect::Deviation(d), false) => {
                    *tally.entry("documented deviation").or_default() += 1;
                    if show_expected {
                        eprintln!("DEVIATION {where_}: {d}\n{}", diff(&a, &b));
                    }
                }
                (Expect::Same, false) => {
                    unexpected.push(format!("DIFF {where_}:\n{}", diff(&a, &b)));
                }
                (Expect::Deviation(d), true) => {
                    unexpected.push(format!(
                        "STALE {where_}: marked \"{d}\" but the replies are identical"
                    ));
                }
            }
        }
    }
    // NG over JSON: rtpengine answers a JSON object in JSON.
    for (n, body) in [
        &br#"{"command":"ping"}"#[..],
        br#"{"command":"query","call-id":"diff-no-such-call"}"#,
    ]
    .into_iter()
    .enumerate()
    {
        total += 1;
        let raw = |ng: &Ng| {
            let mut dg = format!("json{n} ").into_bytes();
            dg.extend_from_slice(body);
            ng.sock.send(&dg).ok()?;
            let mut buf = vec![0u8; 65536];
            let n = ng.sock.recv(&mut buf).ok()?;
            Some(String::from_utf8_lossy(&buf[..n]).into_owned())
        };
        let (a, b) = (raw(&re), raw(&mr));
        if a == b {
            *tally.entry("identical").or_default() += 1;
        } else {
            unexpected.push(format!(
                "DIFF JSON {}: rtpengine {a:?}, mediarelay {b:?}",
                String::from_utf8_lossy(body)
            ));
        }
    }
    drop((rtpengine, mediarelay));
    let identical = tally.get("identical").copied().unwrap_or(0);
    println!(
        "differential test against rtpengine: {total} replies compared, {identical} identical \
         ({:.1}%), {:?}",
        100.0 * identical as f64 / total.max(1) as f64,
        tally
    );
    for u in &unexpected {
        println!("{u}");
    }
    assert!(
        unexpected.is_empty(),
        "{} replies differ from rtpengine without a documented reason",
        unexpected.len()
    );
}
