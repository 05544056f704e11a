//! Every SDP fixture under `tests/data/sdp/` (including the offer/answer
//! pairs) must round-trip byte for byte through `mediarelay::sdp::Sdp`, and
//! agree with the `sdp` crate (webrtc-rs, used only as an oracle) on every
//! fixture that crate accepts: origin, connection, each m-line and each
//! attribute at both levels. The fixtures it rejects are printed and must
//! match the list documented in `docs/sdp.md`.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use mediarelay::sdp::{Address, ParseLimits, Sdp};
use sdp::description::common::{Attribute as OAttribute, ConnectionInformation};
use sdp::description::session::SessionDescription;

/// Fixtures the oracle rejects, with the reason (kept in sync with docs/sdp.md).
const ORACLE_REJECTS: &[(&str, &str)] = &[
    (
        "22-poly-video-h264-bfcp-offer.sdp",
        "proto TCP/BFCP not in its fixed list",
    ),
    (
        "23-audio-only-answer-video-rejected.sdp",
        "proto TCP/BFCP not in its fixed list",
    ),
    (
        "36-quirk-a-before-c.sdp",
        "session a= before c=/t= (strict order)",
    ),
    ("37-quirk-t-after-m.sdp", "t= after m= (strict order)"),
    ("38-quirk-missing-t.sdp", "no t= before m="),
    ("39-quirk-missing-s.sdp", "no s= after o="),
    (
        "40-quirk-gb28181-y-f-lines.sdp",
        "u= is not an absolute URL (and y=/f= are unknown)",
    ),
];

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sdp");
    let mut out = Vec::new();
    for dir in [root.clone(), root.join("offer-answer")] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "sdp") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn name(p: &Path) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sdp");
    p.strip_prefix(&root).unwrap_or(p).display().to_string()
}

#[test]
fn every_fixture_round_trips_byte_for_byte() {
    let files = fixtures();
    if files.is_empty() {
        eprintln!("no fixtures under tests/data/sdp yet");
        return;
    }
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let sdp = Sdp::parse(&bytes).unwrap_or_else(|e| panic!("{}: {e}", name(f)));
        assert_eq!(sdp.to_bytes(), bytes, "{}", name(f));
        assert_eq!(sdp.encoded_len(), bytes.len(), "{}", name(f));
    }
}

#[test]
fn relay_rewrite_of_every_fixture_reparses_and_keeps_other_lines() {
    for f in fixtures() {
        let bytes = std::fs::read(&f).unwrap();
        let original = Sdp::parse(&bytes).unwrap();
        let mut sdp = original.clone();
        let relay = "203.0.113.200".parse().unwrap();
        sdp.rewrite_connections(relay);
        for (i, m) in sdp.media_mut().iter_mut().enumerate() {
            if !m.is_disabled() {
                m.set_port(30000 + 2 * i as u16);
            }
        }
        sdp.remove_ice();
        if let Some(o) = original.origin() {
            sdp.set_origin_version(o.session_version.wrapping_add(1))
                .unwrap();
        }
        let out = sdp.to_bytes();
        let back = Sdp::parse_with_limits(&out, &ParseLimits::UNLIMITED)
            .unwrap_or_else(|e| panic!("{}: rewritten body does not parse: {e}", name(&f)));
        assert_eq!(back.media().len(), original.media().len(), "{}", name(&f));
        for (i, m) in back.media().iter().enumerate() {
            let c = back.media_connection(i).unwrap();
            assert_eq!(c.address, Address::Ip(relay), "{} m{i}", name(&f));
            let was = &original.media()[i];
            if !was.is_disabled() {
                assert_eq!(m.port(), 30000 + 2 * i as u16);
            }
            assert_eq!(m.formats(), was.formats());
        }
        // Lines that are neither c=, m=, o= nor ICE attributes are untouched,
        // in order, with their own endings.
        let untouched = |s: &Sdp| -> Vec<Vec<u8>> {
            s.lines()
                .filter(|l| !matches!(l.kind(), Some(b'c' | b'm' | b'o')))
                .filter(|l| {
                    !(l.kind() == Some(b'a')
                        && l.value().is_some_and(|v| {
                            let n = v.split(':').next().unwrap_or("");
                            mediarelay::sdp::ICE_ATTRIBUTES.contains(&n)
                        }))
                })
                .map(|l| {
                    let mut b = l.bytes().to_vec();
                    b.extend_from_slice(l.ending().as_bytes());
                    b
                })
                .collect()
        };
        let before = untouched(&original);
        let after = untouched(&back);
        // An appended line may take over the missing final terminator.
        let strip = |v: Vec<Vec<u8>>| -> Vec<Vec<u8>> {
            v.into_iter()
                .map(|mut b| {
                    while b.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
                        b.pop();
                    }
                    b
                })
                .collect()
        };
        assert_eq!(strip(before), strip(after), "{}", name(&f));
        let ice_left = back
            .media()
            .iter()
            .map(|m| m.section())
            .chain([back.session()])
            .flat_map(|s| s.attributes())
            .filter(|a| mediarelay::sdp::ICE_ATTRIBUTES.iter().any(|n| a.is(n)))
            .count();
        assert_eq!(ice_left, 0, "{}", name(&f));
    }
}

fn oracle(bytes: &[u8]) -> Result<SessionDescription, String> {
    SessionDescription::unmarshal(&mut Cursor::new(bytes)).map_err(|e| e.to_string())
}

/// Oracle connection -> (nettype, addrtype, address without /ttl).
fn oconn(c: &ConnectionInformation) -> (String, String, Option<Address>) {
    let addr = c
        .address
        .as_ref()
        .map(|a| Address::parse(a.address.split('/').next().unwrap_or("")));
    (c.network_type.clone(), c.address_type.clone(), addr)
}

fn oattrs(v: &[OAttribute]) -> Vec<(String, Option<String>)> {
    v.iter().map(|a| (a.key.clone(), a.value.clone())).collect()
}

fn ours_attrs(s: &mediarelay::sdp::Section) -> Vec<(String, Option<String>)> {
    s.attributes()
        .map(|a| (a.name.to_owned(), a.value.map(str::to_owned)))
        .collect()
}

fn ours_conn(s: &mediarelay::sdp::Section) -> Option<(String, String, Option<Address>)> {
    s.connection().map(|c| {
        (
            c.nettype.clone(),
            c.addrtype.as_str().to_owned(),
            Some(c.address.clone()),
        )
    })
}

#[test]
fn agrees_with_the_sdp_crate_where_it_parses() {
    let files = fixtures();
    if files.is_empty() {
        return;
    }
    let mut rejected = Vec::new();
    let mut compared = 0;
    for f in &files {
        let n = name(f);
        let bytes = std::fs::read(f).unwrap();
        let ours = Sdp::parse(&bytes).unwrap();
        let theirs = match oracle(&bytes) {
            Ok(t) => t,
            Err(e) => {
                println!("oracle rejects {n}: {e}");
                rejected.push(n);
                continue;
            }
        };
        compared += 1;
        // Origin.
        let o = ours.origin().unwrap_or_else(|| panic!("{n}: no origin"));
        let to = &theirs.origin;
        assert_eq!(o.username, to.username, "{n}");
        assert_eq!(o.session_id.parse::<u64>().ok(), Some(to.session_id), "{n}");
        assert_eq!(o.session_version, to.session_version, "{n}");
        assert_eq!(o.nettype, to.network_type, "{n}");
        assert_eq!(o.addrtype.as_str(), to.address_type, "{n}");
        assert_eq!(o.address, Address::parse(&to.unicast_address), "{n}");
        // Session level.
        assert_eq!(
            ours.session_name().unwrap_or(""),
            theirs.session_name,
            "{n}"
        );
        assert_eq!(
            ours_conn(ours.session()),
            theirs.connection_information.as_ref().map(oconn),
            "{n}"
        );
        assert_eq!(
            ours_attrs(ours.session()),
            oattrs(&theirs.attributes),
            "{n}"
        );
        // Media.
        assert_eq!(ours.media().len(), theirs.media_descriptions.len(), "{n}");
        for (i, (m, tm)) in ours
            .media()
            .iter()
            .zip(&theirs.media_descriptions)
            .enumerate()
        {
            let ml = m.media_line();
            let tn = &tm.media_name;
            assert_eq!(ml.media, tn.media, "{n} m{i}");
            assert_eq!(ml.port as isize, tn.port.value, "{n} m{i}");
            assert_eq!(ml.port_count.map(|c| c as isize), tn.port.range, "{n} m{i}");
            let protos: Vec<&str> = ml.proto.split('/').collect();
            assert_eq!(protos, tn.protos, "{n} m{i}");
            assert_eq!(ml.formats, tn.formats, "{n} m{i}");
            assert_eq!(
                ours_conn(m.section()),
                tm.connection_information.as_ref().map(oconn),
                "{n} m{i}"
            );
            assert_eq!(ours_attrs(m.section()), oattrs(&tm.attributes), "{n} m{i}");
        }
    }
    println!(
        "compared {compared} fixtures with the oracle; it rejects {}",
        rejected.len()
    );
    let expected: Vec<String> = ORACLE_REJECTS.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(rejected, expected, "update ORACLE_REJECTS and docs/sdp.md");
    assert!(compared >= 10, "too few fixtures compared: {compared}");
}
