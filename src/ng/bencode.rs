//! Bencode (BEP 3), as rtpengine's NG protocol carries it.
//!
//! Grammar: integers `i<decimal>e`, byte strings `<length>:<bytes>`, lists
//! `l<values>e`, dictionaries `d<key><value>...e` with byte-string keys.
//! NG peers do not sort dictionary keys, so any key order is accepted.
//!
//! The decoder is zero-copy: byte strings borrow from the datagram. It is
//! bounded: nesting depth, item count and input size are limited
//! ([`Limits`]), so hostile input (deep nesting, huge announced lengths)
//! fails with a typed [`BencodeError`] and never exhausts the stack or
//! memory. The encoder writes canonical bencode into a `Vec<u8>`.

use std::fmt;

/// A decoded bencode value borrowing from its input.
#[derive(Clone, PartialEq, Eq)]
pub enum Value<'a> {
    /// An integer.
    Int(i64),
    /// A byte string (often UTF-8 text, e.g. SDP or a call-id).
    Bytes(&'a [u8]),
    /// A list.
    List(Vec<Value<'a>>),
    /// A dictionary, in wire order.
    Dict(Vec<(&'a [u8], Value<'a>)>),
}

/// Decoder bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of lists and dictionaries.
    pub max_depth: usize,
    /// Most values (of any kind) in one message.
    pub max_items: usize,
    /// Largest input accepted.
    pub max_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 32,
            max_items: 16_384,
            max_len: 1 << 20,
        }
    }
}

/// Why input is not acceptable bencode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BencodeError {
    /// The input ended inside a value.
    #[error("bencode truncated at byte {at}")]
    Truncated {
        /// Offset where more input was needed.
        at: usize,
    },
    /// A byte that cannot start or continue a value here.
    #[error("unexpected byte {byte:#04x} at {at}")]
    Unexpected {
        /// Offset.
        at: usize,
        /// The byte.
        byte: u8,
    },
    /// An integer or string length that is empty, has leading zeros, is
    /// `-0`, or overflows.
    #[error("invalid number at byte {at}")]
    BadNumber {
        /// Offset of the number.
        at: usize,
    },
    /// A string length past the end of the input.
    #[error("string of {len} bytes at {at} runs past the end")]
    StringOverrun {
        /// Offset of the string.
        at: usize,
        /// Announced length.
        len: usize,
    },
    /// Nesting deeper than [`Limits::max_depth`].
    #[error("nesting deeper than {0}")]
    TooDeep(usize),
    /// More values than [`Limits::max_items`].
    #[error("more than {0} values")]
    TooManyItems(usize),
    /// Input larger than [`Limits::max_len`].
    #[error("input of {len} bytes exceeds {max}")]
    TooLong {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A dictionary key that is not a byte string.
    #[error("dictionary key at {at} is not a string")]
    NonStringKey {
        /// Offset.
        at: usize,
    },
    /// Bytes after the top-level value.
    #[error("trailing data at byte {at}")]
    Trailing {
        /// Offset.
        at: usize,
    },
}

impl<'a> Value<'a> {
    /// Decodes exactly one value spanning all of `input`, with default
    /// limits.
    pub fn decode(input: &'a [u8]) -> Result<Self, BencodeError> {
        Self::decode_with_limits(input, Limits::default())
    }

    /// Decodes exactly one value spanning all of `input`.
    pub fn decode_with_limits(input: &'a [u8], limits: Limits) -> Result<Self, BencodeError> {
        Self::decode_mode(input, limits, false)
    }

    /// Decodes one value as rtpengine does, with default limits: input
    /// that ends where a list or dictionary could close closes it, and
    /// bytes after the first complete value are ignored. Input that ends
    /// inside a string, an integer, or between a key and its value is
    /// still [`BencodeError::Truncated`].
    pub fn decode_lenient(input: &'a [u8]) -> Result<Self, BencodeError> {
        Self::decode_mode(input, Limits::default(), true)
    }

    fn decode_mode(input: &'a [u8], limits: Limits, lenient: bool) -> Result<Self, BencodeError> {
        if input.len() > limits.max_len {
            return Err(BencodeError::TooLong {
                len: input.len(),
                max: limits.max_len,
            });
        }
        let mut d = Decoder {
            input,
            pos: 0,
            items: 0,
            limits,
            lenient,
        };
        let v = d.value(0)?;
        if d.pos != input.len() && !lenient {
            return Err(BencodeError::Trailing { at: d.pos });
        }
        Ok(v)
    }

    /// The value under `key` in a dictionary (first occurrence).
    pub fn get(&self, key: &str) -> Option<&Value<'a>> {
        let Value::Dict(entries) = self else {
            return None;
        };
        entries
            .iter()
            .find(|(k, _)| *k == key.as_bytes())
            .map(|(_, v)| v)
    }

    /// The bytes of a string value.
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// A string value as UTF-8 text.
    pub fn as_str(&self) -> Option<&'a str> {
        std::str::from_utf8(self.as_bytes()?).ok()
    }

    /// An integer value.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// A list value.
    pub fn as_list(&self) -> Option<&[Value<'a>]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// A dictionary value's entries.
    pub fn as_dict(&self) -> Option<&[(&'a [u8], Value<'a>)]> {
        match self {
            Value::Dict(d) => Some(d),
            _ => None,
        }
    }

    /// Appends the canonical encoding of `self` to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(i) => encode_int(*i, out),
            Value::Bytes(b) => encode_bytes(b, out),
            Value::List(items) => encode_list(items, out, Value::encode),
            Value::Dict(entries) => encode_dict(entries, out, Value::encode),
        }
    }

    /// The canonical encoding of `self`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

/// `i<decimal>e` (BEP 3).
pub(crate) fn encode_int(i: i64, out: &mut Vec<u8>) {
    out.push(b'i');
    out.extend_from_slice(i.to_string().as_bytes());
    out.push(b'e');
}

/// `<length>:<bytes>` (BEP 3).
pub(crate) fn encode_bytes(b: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(b.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(b);
}

/// `l<values>e`, each value written by `item`.
pub(crate) fn encode_list<T>(items: &[T], out: &mut Vec<u8>, item: impl Fn(&T, &mut Vec<u8>)) {
    out.push(b'l');
    for v in items {
        item(v, out);
    }
    out.push(b'e');
}

/// `d<key><value>...e` in the given order, each value written by `value`.
pub(crate) fn encode_dict<K: AsRef<[u8]>, T>(
    entries: &[(K, T)],
    out: &mut Vec<u8>,
    value: impl Fn(&T, &mut Vec<u8>),
) {
    out.push(b'd');
    for (k, v) in entries {
        encode_bytes(k.as_ref(), out);
        value(v, out);
    }
    out.push(b'e');
}

impl fmt::Debug for Value<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(i) => write!(f, "{i}"),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => write!(f, "{s:?}"),
                Err(_) => write!(f, "<{} bytes>", b.len()),
            },
            Value::List(l) => f.debug_list().entries(l).finish(),
            Value::Dict(d) => f
                .debug_map()
                .entries(d.iter().map(|(k, v)| (String::from_utf8_lossy(k), v)))
                .finish(),
        }
    }
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    items: usize,
    limits: Limits,
    /// End of input closes open containers (rtpengine's reading).
    lenient: bool,
}

impl<'a> Decoder<'a> {
    fn peek(&self) -> Result<u8, BencodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(BencodeError::Truncated { at: self.pos })
    }

    fn value(&mut self, depth: usize) -> Result<Value<'a>, BencodeError> {
        self.items += 1;
        if self.items > self.limits.max_items {
            return Err(BencodeError::TooManyItems(self.limits.max_items));
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let at = self.pos;
                let n = self.number(b'e', true)?;
                Ok(Value::Int(n.ok_or(BencodeError::BadNumber { at })?))
            }
            b'0'..=b'9' => self.string().map(Value::Bytes),
            b'l' => {
                self.enter(depth)?;
                let mut items = Vec::new();
                while !self.close()? {
                    items.push(self.value(depth + 1)?);
                }
                Ok(Value::List(items))
            }
            b'd' => {
                self.enter(depth)?;
                let mut entries = Vec::new();
                while !self.close()? {
                    if !self.peek()?.is_ascii_digit() {
                        return Err(BencodeError::NonStringKey { at: self.pos });
                    }
                    let key = self.string()?;
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                }
                Ok(Value::Dict(entries))
            }
            byte => Err(BencodeError::Unexpected { at: self.pos, byte }),
        }
    }

    /// At a place where a list or dictionary may end: whether it ends
    /// here (its `e` consumed), or, lenient, the input ends here.
    fn close(&mut self) -> Result<bool, BencodeError> {
        if self.lenient && self.pos == self.input.len() {
            return Ok(true);
        }
        if self.peek()? == b'e' {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    fn enter(&mut self, depth: usize) -> Result<(), BencodeError> {
        if depth >= self.limits.max_depth {
            return Err(BencodeError::TooDeep(self.limits.max_depth));
        }
        self.pos += 1;
        Ok(())
    }

    /// `<len>:<bytes>`.
    fn string(&mut self) -> Result<&'a [u8], BencodeError> {
        let at = self.pos;
        let len = self
            .number(b':', false)?
            .ok_or(BencodeError::BadNumber { at })?;
        let len = usize::try_from(len).map_err(|_| BencodeError::BadNumber { at })?;
        let end = self
            .pos
            .checked_add(len)
            .filter(|&e| e <= self.input.len())
            .ok_or(BencodeError::StringOverrun { at, len })?;
        let s = &self.input[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    /// Decimal digits up to `term` (consumed). `None` for an empty number,
    /// a leading zero, `-0` or overflow (BEP 3).
    fn number(&mut self, term: u8, signed: bool) -> Result<Option<i64>, BencodeError> {
        let negative = signed && self.peek()? == b'-';
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        let mut v: i64 = 0;
        let mut ok = true;
        loop {
            let b = self.peek()?;
            if b == term {
                break;
            }
            if !b.is_ascii_digit() {
                return Err(BencodeError::Unexpected {
                    at: self.pos,
                    byte: b,
                });
            }
            match v
                .checked_mul(10)
                .and_then(|x| x.checked_add(i64::from(b - b'0')))
            {
                Some(x) => v = x,
                None => ok = false,
            }
            self.pos += 1;
        }
        let digits = &self.input[digits_start..self.pos];
        self.pos += 1;
        let leading_zero = digits.len() > 1 && digits[0] == b'0';
        if digits.is_empty() || leading_zero || (negative && digits == b"0") || !ok {
            return Ok(None);
        }
        Ok(Some(if negative { -v } else { v }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_ng_offer_in_any_key_order() {
        let msg = b"d3:sdp10:v=0\r\ns=x\r\n7:call-id4:abcd7:command5:offer5:flagsl13:trust address9:symmetricee";
        let v = Value::decode(msg).unwrap();
        assert_eq!(v.get("command").and_then(Value::as_str), Some("offer"));
        assert_eq!(v.get("call-id").and_then(Value::as_str), Some("abcd"));
        assert_eq!(v.get("sdp").and_then(Value::as_str), Some("v=0\r\ns=x\r\n"));
        let flags: Vec<_> = v
            .get("flags")
            .unwrap()
            .as_list()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(flags, ["trust address", "symmetric"]);
        assert!(v.get("missing").is_none());
    }

    #[test]
    fn integers() {
        assert_eq!(Value::decode(b"i42e").unwrap(), Value::Int(42));
        assert_eq!(Value::decode(b"i-7e").unwrap(), Value::Int(-7));
        assert_eq!(Value::decode(b"i0e").unwrap(), Value::Int(0));
        assert_eq!(
            Value::decode(b"i9223372036854775807e").unwrap(),
            Value::Int(i64::MAX)
        );
        for bad in [
            &b"i-0e"[..],
            b"i03e",
            b"ie",
            b"i-e",
            b"i99999999999999999999e",
        ] {
            assert!(
                matches!(Value::decode(bad), Err(BencodeError::BadNumber { .. })),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Value::decode(b"i1x2e"),
            Err(BencodeError::Unexpected { .. })
        ));
    }

    #[test]
    fn malformed_input_is_a_typed_error() {
        assert_eq!(Value::decode(b""), Err(BencodeError::Truncated { at: 0 }));
        assert_eq!(
            Value::decode(b"d3:foo"),
            Err(BencodeError::Truncated { at: 6 })
        );
        assert_eq!(Value::decode(b"l"), Err(BencodeError::Truncated { at: 1 }));
        assert_eq!(
            Value::decode(b"5:abc"),
            Err(BencodeError::StringOverrun { at: 0, len: 5 })
        );
        assert_eq!(
            Value::decode(b"99999999999999999:x"),
            Err(BencodeError::StringOverrun {
                at: 0,
                len: 99_999_999_999_999_999
            })
        );
        assert_eq!(
            Value::decode(b"di1ei2ee"),
            Err(BencodeError::NonStringKey { at: 1 })
        );
        assert_eq!(
            Value::decode(b"i1ei2e"),
            Err(BencodeError::Trailing { at: 3 })
        );
        assert_eq!(
            Value::decode(b"x"),
            Err(BencodeError::Unexpected { at: 0, byte: b'x' })
        );
        assert!(matches!(
            Value::decode(b"01:a"),
            Err(BencodeError::BadNumber { .. })
        ));
    }

    #[test]
    fn lenient_reads_as_rtpengine_does() {
        let ping = Value::Dict(vec![(&b"command"[..], Value::Bytes(b"ping"))]);
        // A dictionary the input ends in is closed; bytes after the first
        // value are ignored.
        assert_eq!(Value::decode_lenient(b"d7:command4:ping"), Ok(ping.clone()));
        assert_eq!(
            Value::decode_lenient(b"d7:command4:pingeXYZ"),
            Ok(ping.clone())
        );
        assert_eq!(
            Value::decode_lenient(b"d5:flagsl3:abc"),
            Ok(Value::Dict(vec![(
                &b"flags"[..],
                Value::List(vec![Value::Bytes(b"abc")])
            )]))
        );
        // Still truncated: inside a string, an integer, or before a value.
        assert!(Value::decode_lenient(b"d7:command4:pi").is_err());
        assert!(Value::decode_lenient(b"d7:command").is_err());
        assert!(Value::decode_lenient(b"d1:ai12").is_err());
        assert_eq!(
            Value::decode_lenient(b""),
            Err(BencodeError::Truncated { at: 0 })
        );
        // The strict decoder refuses both.
        assert!(Value::decode(b"d7:command4:ping").is_err());
        assert!(Value::decode(b"d7:command4:pingeXYZ").is_err());
    }

    #[test]
    fn limits_stop_hostile_nesting() {
        let deep = "l".repeat(100_000) + &"e".repeat(100_000);
        assert_eq!(
            Value::decode(deep.as_bytes()),
            Err(BencodeError::TooDeep(32))
        );
        let ok = "l".repeat(32) + &"e".repeat(32);
        assert!(Value::decode(ok.as_bytes()).is_ok());
        let many = format!("l{}e", "i1e".repeat(20_000));
        assert_eq!(
            Value::decode(many.as_bytes()),
            Err(BencodeError::TooManyItems(16_384))
        );
        let limits = Limits {
            max_len: 10,
            ..Limits::default()
        };
        assert_eq!(
            Value::decode_with_limits(b"11:hello world", limits),
            Err(BencodeError::TooLong { len: 14, max: 10 })
        );
    }

    fn value_strategy() -> impl Strategy<Value = Value<'static>> {
        let leaf = prop_oneof![
            any::<i64>().prop_map(Value::Int),
            proptest::collection::vec(any::<u8>(), 0..16).prop_map(|v| Value::Bytes(Vec::leak(v))),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::List),
                proptest::collection::vec(
                    (
                        proptest::collection::vec(any::<u8>(), 0..8).prop_map(|k| &*Vec::leak(k)),
                        inner
                    ),
                    0..8
                )
                .prop_map(Value::Dict),
            ]
        })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip(v in value_strategy()) {
            let bytes = v.to_bytes();
            prop_assert_eq!(Value::decode(&bytes).unwrap(), v);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(v) = Value::decode(&bytes) {
                // Whatever decodes re-encodes to the same bytes (the
                // grammar has one encoding per value).
                prop_assert_eq!(v.to_bytes(), bytes);
            }
        }

        #[test]
        fn lenient_accepts_what_strict_accepts(v in value_strategy(), tail in proptest::collection::vec(any::<u8>(), 0..16)) {
            let mut bytes = v.to_bytes();
            prop_assert_eq!(Value::decode_lenient(&bytes), Ok(v.clone()));
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(Value::decode_lenient(&bytes), Ok(v));
        }

        #[test]
        fn lenient_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = Value::decode_lenient(&bytes);
        }
    }
}
