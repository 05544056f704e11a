//! Test-only reader of `tests/data/srtp/vectors.txt`, the known-answer
//! vectors made with libsrtp (see `tests/data/srtp/gen_vectors.py`).

/// The vector file, compiled into the tests.
pub(super) const FILE: &str = include_str!("../../tests/data/srtp/vectors.txt");

/// One packet of a case.
#[derive(Debug, Clone)]
pub(super) struct Packet {
    /// `rtp`, `rtcp` or `rtcp-unprotect`.
    pub(super) kind: String,
    pub(super) plain: Vec<u8>,
    pub(super) protected: Vec<u8>,
}

/// One libsrtp session's packets, in order.
#[derive(Debug, Clone)]
pub(super) struct Case {
    pub(super) name: String,
    pub(super) suite: String,
    /// Master key || master salt, as many bytes as the suite takes.
    pub(super) key: Vec<u8>,
    pub(super) mki: Option<(u32, u8)>,
    pub(super) packets: Vec<Packet>,
}

/// One item of the file.
#[derive(Debug, Clone)]
pub(super) enum Item {
    Case(Case),
    AesCm {
        key: [u8; 16],
        salt: [u8; 14],
        block: usize,
        keystream: Vec<u8>,
    },
    Kdf {
        key: Vec<u8>,
        salt: Vec<u8>,
        label: u8,
        out: Vec<u8>,
    },
    /// RFC 3711 B.1: f8 of one RTP payload.
    F8 {
        key: [u8; 16],
        salt: Vec<u8>,
        header: Vec<u8>,
        roc: u32,
        iv: Vec<u8>,
        plain: Vec<u8>,
        cipher: Vec<u8>,
    },
    /// RFC 7714 §16, §17: one packet under session keys given directly.
    Aead {
        suite: String,
        /// `rtp`, `rtcp` (E=1) or `rtcp-unprotect` (E=0).
        kind: String,
        /// SRTP packet index (ROC 0 and the sequence number) or SRTCP
        /// index.
        index: u64,
        key: Vec<u8>,
        salt: [u8; 12],
        plain: Vec<u8>,
        protected: Vec<u8>,
    },
}

pub(super) fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn array<const N: usize>(s: &str) -> [u8; N] {
    hex(s).try_into().expect("length")
}

/// Every item of the file, in order.
pub(super) fn items() -> Vec<Item> {
    let mut items = Vec::new();
    let mut case: Option<Case> = None;
    for line in FILE.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [] => {}
            [c, ..] if c.starts_with('#') => {}
            ["case", name] => {
                case = Some(Case {
                    name: name.to_string(),
                    suite: String::new(),
                    key: Vec::new(),
                    mki: None,
                    packets: Vec::new(),
                })
            }
            ["suite", s] => case.as_mut().expect("in case").suite = s.to_string(),
            ["key", k] => case.as_mut().expect("in case").key = hex(k),
            ["mki", v, l] => {
                case.as_mut().expect("in case").mki =
                    Some((v.parse().expect("mki"), l.parse().expect("len")))
            }
            [kind @ ("rtp" | "rtcp" | "rtcp-unprotect"), p, q] => {
                case.as_mut().expect("in case").packets.push(Packet {
                    kind: kind.to_string(),
                    plain: hex(p),
                    protected: hex(q),
                })
            }
            ["end"] => items.push(Item::Case(case.take().expect("in case"))),
            ["aescm", k, s, j, ks] => items.push(Item::AesCm {
                key: array(k),
                salt: array(s),
                block: j.parse().expect("block"),
                keystream: hex(ks),
            }),
            ["f8", k, s, h, r, iv, p, c] => items.push(Item::F8 {
                key: array(k),
                salt: hex(s),
                header: hex(h),
                roc: u32::from_str_radix(r, 16).expect("roc"),
                iv: hex(iv),
                plain: hex(p),
                cipher: hex(c),
            }),
            ["aead", suite, kind, i, k, s, p, q] => items.push(Item::Aead {
                suite: suite.to_string(),
                kind: kind.to_string(),
                index: u64::from_str_radix(i, 16).expect("index"),
                key: hex(k),
                salt: array(s),
                plain: hex(p),
                protected: hex(q),
            }),
            ["kdf", k, s, l, o] => items.push(Item::Kdf {
                key: hex(k),
                salt: hex(s),
                label: l.parse().expect("label"),
                out: hex(o),
            }),
            _ => panic!("bad vector line {line:?}"),
        }
    }
    assert!(case.is_none(), "unterminated case");
    items
}

/// The packet cases only.
pub(super) fn cases() -> Vec<Case> {
    items()
        .into_iter()
        .filter_map(|i| match i {
            Item::Case(c) => Some(c),
            _ => None,
        })
        .collect()
}
