//! NG messages in JSON: rtpengine accepts a JSON object instead of a
//! bencode dictionary after the cookie (`<cookie> {"command":"ping"}`) and
//! answers in JSON. Strings map to bencode byte strings, integers to
//! integers, arrays to lists, objects to dictionaries (key order kept);
//! `true`/`false` become 1/0, other numbers their text, `null` drops the
//! key. Replies are written back the same way (byte strings that are not
//! UTF-8 lossily).

use super::owned::OwnedValue;

/// Nesting limit, as for bencode.
const MAX_DEPTH: usize = 32;

/// Parses a JSON document holding one object.
pub fn decode(input: &[u8]) -> Result<OwnedValue, &'static str> {
    let mut p = Parser { s: input, i: 0 };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.s.len() {
        return Err("trailing data after the JSON object");
    }
    match v {
        Some(v @ OwnedValue::Dict(_)) => Ok(v),
        _ => Err("not a JSON object"),
    }
}

/// Writes `v` as JSON.
pub fn encode(v: &OwnedValue, out: &mut Vec<u8>) {
    match v {
        OwnedValue::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
        OwnedValue::Bytes(b) => string(&String::from_utf8_lossy(b), out),
        OwnedValue::List(l) => {
            out.push(b'[');
            for (n, x) in l.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                encode(x, out);
            }
            out.push(b']');
        }
        OwnedValue::Dict(d) => {
            out.push(b'{');
            for (n, (k, x)) in d.iter().enumerate() {
                if n > 0 {
                    out.push(b',');
                }
                string(&String::from_utf8_lossy(k), out);
                out.push(b':');
                encode(x, out);
            }
            out.push(b'}');
        }
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes());
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self
            .s
            .get(self.i)
            .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> Result<(), &'static str> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err("malformed JSON")
        }
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), &'static str> {
        if self.s.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err("malformed JSON")
        }
    }

    /// One value; `None` for `null`.
    fn value(&mut self, depth: usize) -> Result<Option<OwnedValue>, &'static str> {
        if depth > MAX_DEPTH {
            return Err("JSON nested too deeply");
        }
        self.ws();
        match self.peek().ok_or("truncated JSON")? {
            b'{' => {
                self.i += 1;
                let mut d = OwnedValue::dict();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Some(d));
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.ws();
                    self.eat(b':')?;
                    if let Some(v) = self.value(depth + 1)? {
                        d.push(&key, v);
                    }
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Some(d));
                        }
                        _ => return Err("malformed JSON object"),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut l = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Some(OwnedValue::List(l)));
                }
                loop {
                    if let Some(v) = self.value(depth + 1)? {
                        l.push(v);
                    }
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Some(OwnedValue::List(l)));
                        }
                        _ => return Err("malformed JSON array"),
                    }
                }
            }
            b'"' => Ok(Some(OwnedValue::text(&self.string()?))),
            b't' => self.literal(b"true").map(|()| Some(OwnedValue::Int(1))),
            b'f' => self.literal(b"false").map(|()| Some(OwnedValue::Int(0))),
            b'n' => self.literal(b"null").map(|()| None),
            _ => {
                let start = self.i;
                while self.peek().is_some_and(|b| {
                    b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E')
                }) {
                    self.i += 1;
                }
                let text =
                    std::str::from_utf8(&self.s[start..self.i]).map_err(|_| "malformed JSON")?;
                if text.is_empty() {
                    return Err("malformed JSON");
                }
                Ok(Some(match text.parse::<i64>() {
                    Ok(n) => OwnedValue::Int(n),
                    Err(_) => {
                        text.parse::<f64>().map_err(|_| "malformed JSON number")?;
                        OwnedValue::text(text)
                    }
                }))
            }
        }
    }

    fn string(&mut self) -> Result<String, &'static str> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let b = self.peek().ok_or("truncated JSON string")?;
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = self.peek().ok_or("truncated JSON string")?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let hex = self
                                .s
                                .get(self.i..self.i + 4)
                                .ok_or("truncated \\u escape")?;
                            self.i += 4;
                            let hex = std::str::from_utf8(hex).map_err(|_| "bad \\u escape")?;
                            let code =
                                u32::from_str_radix(hex, 16).map_err(|_| "bad \\u escape")?;
                            let c = char::from_u32(code).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err("bad JSON escape"),
                    }
                }
                b => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| "JSON string is not UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_order_and_types() {
        let v = decode(br#" {"command":"offer","flags":["trust address","x"],"n":5,"b":true,"z":null,"d":{"k":"v\n\u00e9"}} "#)
            .unwrap();
        let want = OwnedValue::dict()
            .with("command", OwnedValue::text("offer"))
            .with(
                "flags",
                OwnedValue::List(vec![
                    OwnedValue::text("trust address"),
                    OwnedValue::text("x"),
                ]),
            )
            .with("n", OwnedValue::Int(5))
            .with("b", OwnedValue::Int(1))
            .with("d", OwnedValue::dict().with("k", OwnedValue::text("v\né")));
        assert_eq!(v, want);
        let mut out = Vec::new();
        encode(&v, &mut out);
        assert_eq!(decode(&out).unwrap(), v);
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        for bad in [
            &b"{"[..],
            b"[1]",
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"{\"a\":\"\\u12\"}",
            b"{\"a\":1} x",
            b"{\"a\":-}",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(100), "]".repeat(100));
        assert!(decode(deep.as_bytes()).is_err());
    }
}
