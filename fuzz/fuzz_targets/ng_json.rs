//! Fuzz the NG JSON decoder (a JSON object instead of a bencode dictionary
//! after the cookie): arbitrary bytes never panic, and whatever decodes
//! re-encodes to JSON that decodes to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mediarelay::ng::json;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = json::decode(data) else {
        return;
    };
    let mut out = Vec::new();
    json::encode(&v, &mut out);
    // Byte strings are written as UTF-8 text, so only valid UTF-8 input
    // round-trips exactly; everything must at least decode again.
    let again = json::decode(&out).expect("encoded JSON decodes");
    if std::str::from_utf8(data).is_ok() {
        assert_eq!(again, v);
    }
});
