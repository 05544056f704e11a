//! An owned bencode value, for replies built by the command handler (the
//! decoder's [`Value`](super::Value) borrows from the request datagram).
//!
//! Dictionaries keep insertion order: rtpengine's replies have a fixed key
//! order per command (`docs/ng-reference.md`), and clients compare them.

use super::bencode::{encode_bytes, encode_dict, encode_int, encode_list};

/// An owned bencode value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedValue {
    /// An integer.
    Int(i64),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<OwnedValue>),
    /// A dictionary in insertion order.
    Dict(Vec<(Vec<u8>, OwnedValue)>),
}

impl OwnedValue {
    /// An empty dictionary.
    pub fn dict() -> OwnedValue {
        OwnedValue::Dict(Vec::new())
    }

    /// A text string.
    pub fn text(s: &str) -> OwnedValue {
        OwnedValue::Bytes(s.as_bytes().to_vec())
    }

    /// An integer from an unsigned counter (saturating at `i64::MAX`).
    pub fn count(n: u64) -> OwnedValue {
        OwnedValue::Int(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// Appends `key: value` to a dictionary (no-op on other kinds).
    pub fn with(mut self, key: &str, value: OwnedValue) -> OwnedValue {
        self.push(key, value);
        self
    }

    /// Appends `key: value` to a dictionary (no-op on other kinds).
    pub fn push(&mut self, key: &str, value: OwnedValue) {
        if let OwnedValue::Dict(d) = self {
            d.push((key.as_bytes().to_vec(), value));
        }
    }

    /// The value of `key` in a dictionary (first occurrence).
    pub fn get(&self, key: &str) -> Option<&OwnedValue> {
        match self {
            OwnedValue::Dict(d) => d
                .iter()
                .find(|(k, _)| k.as_slice() == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Mutable access to a dictionary value.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut OwnedValue> {
        match self {
            OwnedValue::Dict(d) => d
                .iter_mut()
                .find(|(k, _)| k.as_slice() == key.as_bytes())
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, when UTF-8 text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            OwnedValue::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The integer.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            OwnedValue::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The list items.
    pub fn as_list(&self) -> Option<&[OwnedValue]> {
        match self {
            OwnedValue::List(l) => Some(l),
            _ => None,
        }
    }

    /// Appends the bencoding (dictionary keys in insertion order).
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            OwnedValue::Int(i) => encode_int(*i, out),
            OwnedValue::Bytes(b) => encode_bytes(b, out),
            OwnedValue::List(l) => encode_list(l, out, OwnedValue::encode),
            OwnedValue::Dict(d) => encode_dict(d, out, OwnedValue::encode),
        }
    }

    /// The bencoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }
}

impl From<&super::Value<'_>> for OwnedValue {
    fn from(v: &super::Value<'_>) -> Self {
        match v {
            super::Value::Int(i) => OwnedValue::Int(*i),
            super::Value::Bytes(b) => OwnedValue::Bytes(b.to_vec()),
            super::Value::List(l) => OwnedValue::List(l.iter().map(OwnedValue::from).collect()),
            super::Value::Dict(d) => OwnedValue::Dict(
                d.iter()
                    .map(|(k, v)| (k.to_vec(), OwnedValue::from(v)))
                    .collect(),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ng::Value;

    #[test]
    fn encodes_in_insertion_order_and_decodes_back() {
        let v = OwnedValue::dict()
            .with("sdp", OwnedValue::text("v=0\r\n"))
            .with("n", OwnedValue::Int(-3))
            .with("l", OwnedValue::List(vec![OwnedValue::count(7)]))
            .with("result", OwnedValue::text("ok"));
        let bytes = v.to_bytes();
        assert_eq!(
            bytes,
            b"d3:sdp5:v=0\r\n1:ni-3e1:lli7ee6:result2:oke".to_vec()
        );
        let back = Value::decode(&bytes).unwrap();
        assert_eq!(OwnedValue::from(&back), v);
    }
}
