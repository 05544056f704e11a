//! Fuzz the tolerant SDP parser (RFC 8866): arbitrary bytes never panic;
//! every accepted body writes back byte for byte; relay edits (port,
//! connection, direction, rtcp, ICE removal, o= version) produce a body that
//! parses again with the edits visible and the structure unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediarelay::sdp::{Direction, ParseLimits, Rtcp, Sdp};

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = Sdp::parse(data) else {
        return;
    };
    assert_eq!(sdp.to_bytes(), data);
    assert_eq!(sdp.encoded_len(), data.len());

    let mut edited = sdp.clone();
    let relay = "2001:db8::7".parse().unwrap();
    edited.rewrite_connections(relay);
    for (i, m) in edited.media_mut().iter_mut().enumerate() {
        m.set_port(4000 + i as u16);
        m.section_mut().set_direction(Direction::SendOnly);
        m.section_mut().set_rtcp(&Rtcp::new(4001, None));
    }
    edited.remove_ice();
    let version_set = edited.set_origin_version(7).is_ok();

    let out = edited.to_bytes();
    let back = Sdp::parse_with_limits(&out, &ParseLimits::UNLIMITED).expect("edited SDP re-parses");
    assert_eq!(back.to_bytes(), out);
    assert_eq!(back.media().len(), sdp.media().len());
    for (i, m) in back.media().iter().enumerate() {
        assert_eq!(m.port(), 4000 + i as u16);
        assert_eq!(m.formats(), sdp.media()[i].formats());
        assert_eq!(m.section().direction(), Some(Direction::SendOnly));
        assert_eq!(m.section().rtcp().map(|r| r.port), Some(4001));
        assert_eq!(
            back.media_connection(i).and_then(|c| c.address.ip()),
            Some(relay)
        );
    }
    if version_set {
        assert_eq!(back.origin().map(|o| o.session_version), Some(7));
    }
});
