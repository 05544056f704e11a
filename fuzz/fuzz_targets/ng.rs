//! Fuzz the NG decoder: arbitrary datagrams never panic; whatever frames
//! as `<cookie> <dictionary>` re-encodes to the same body bytes, and the
//! reply writer echoes the cookie. The lenient reading (rtpengine's)
//! accepts everything the strict one does, with the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediarelay::ng::{Value, message};

fuzz_target!(|data: &[u8]| {
    let lenient = message::parse_mode(data, true);
    let Ok(req) = message::parse(data) else {
        return;
    };
    assert_eq!(lenient.map(|r| r.body), Ok(req.body.clone()));
    let body_start = req.cookie.len() + 1;
    assert_eq!(req.body.to_bytes(), &data[body_start..]);
    let _ = req.body.get("command").and_then(Value::as_str);
    let mut out = Vec::new();
    message::write_reply(req.cookie, &req.body, &mut out);
    assert_eq!(&out[..], data);
});
