//! The event list of an RFC 4733 `telephone-event` fmtp (RFC 4733 §2.4.1),
//! e.g. `0-15,66,70`: a set of event codes 0..=255.
//!
//! Without an fmtp the receiver supports events 0-15 (RFC 4733 §2.4.1).

use std::fmt;

/// A set of RFC 4733 event codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TelephoneEvents([u64; 4]);

impl TelephoneEvents {
    /// The empty set.
    pub const NONE: TelephoneEvents = TelephoneEvents([0; 4]);
    /// DTMF digits 0-9, *, #, A-D: the RFC 4733 §2.4.1 default `0-15`.
    pub const DTMF: TelephoneEvents = TelephoneEvents([0xffff, 0, 0, 0]);

    /// The set `lo..=hi`.
    pub fn range(lo: u8, hi: u8) -> TelephoneEvents {
        let mut s = TelephoneEvents::NONE;
        for e in lo..=hi {
            s.insert(e);
        }
        s
    }

    /// Parses `n` / `a-b` items separated by commas. `None` when an item is
    /// not a number in 0..=255 or a range is reversed.
    pub fn parse(text: &str) -> Option<TelephoneEvents> {
        let mut s = TelephoneEvents::NONE;
        for item in text.split(',') {
            let item = item.trim();
            let (lo, hi) = match item.split_once('-') {
                Some((a, b)) => (a.trim().parse::<u8>().ok()?, b.trim().parse::<u8>().ok()?),
                None => {
                    let e = item.parse::<u8>().ok()?;
                    (e, e)
                }
            };
            if lo > hi {
                return None;
            }
            for e in lo..=hi {
                s.insert(e);
            }
        }
        Some(s)
    }

    /// Adds one event.
    pub fn insert(&mut self, e: u8) {
        let (word, bit) = (usize::from(e / 64), e % 64);
        if let Some(w) = self.0.get_mut(word) {
            *w |= 1 << bit;
        }
    }

    /// True when `e` is in the set.
    pub fn contains(&self, e: u8) -> bool {
        let (word, bit) = (usize::from(e / 64), e % 64);
        self.0.get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    /// Events in both sets.
    pub fn intersect(self, other: TelephoneEvents) -> TelephoneEvents {
        let mut out = self;
        for (a, b) in out.0.iter_mut().zip(other.0) {
            *a &= b;
        }
        out
    }

    /// True when the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }
}

impl Default for TelephoneEvents {
    fn default() -> Self {
        TelephoneEvents::DTMF
    }
}

impl fmt::Display for TelephoneEvents {
    /// Ranges in ascending order, e.g. `0-15,66,70`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut e: u16 = 0;
        while e <= 255 {
            // e <= 255 in the loop, so the casts below are lossless.
            if !self.contains(e as u8) {
                e += 1;
                continue;
            }
            let lo = e;
            while e < 255 && self.contains((e + 1) as u8) {
                e += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if lo == e {
                write!(f, "{lo}")?;
            } else {
                write!(f, "{lo}-{e}")?;
            }
            e += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_print_intersect() {
        let s = TelephoneEvents::parse("0-15, 66,70").unwrap();
        assert!(s.contains(15) && s.contains(66) && s.contains(70) && !s.contains(16));
        assert_eq!(s.to_string(), "0-15,66,70");
        assert_eq!(
            TelephoneEvents::parse("0-15").unwrap(),
            TelephoneEvents::DTMF
        );
        assert_eq!(
            s.intersect(TelephoneEvents::range(10, 66)).to_string(),
            "10-15,66"
        );
        assert!(TelephoneEvents::parse("15-0").is_none());
        assert!(TelephoneEvents::parse("0-256").is_none());
        assert!(TelephoneEvents::parse("").is_none());
        assert_eq!(TelephoneEvents::range(250, 255).to_string(), "250-255");
        assert!(TelephoneEvents::range(0, 255).contains(255));
        assert!(TelephoneEvents::NONE.is_empty());
        assert_eq!(TelephoneEvents::NONE.to_string(), "");
    }

    proptest! {
        #[test]
        fn round_trip(words in any::<[u64; 4]>()) {
            let s = TelephoneEvents(words);
            if s.is_empty() {
                return Ok(());
            }
            prop_assert_eq!(TelephoneEvents::parse(&s.to_string()), Some(s));
        }
    }
}
