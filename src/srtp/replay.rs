//! Packet index estimation (RFC 3711 §3.3.1, Appendix A) and the replay
//! window (§3.3.2), for SRTP's 48-bit index and SRTCP's 31-bit index.

/// Size of the replay window in packets (RFC 3711 §3.3.2 asks for at
/// least 64; libsrtp uses 128 by default).
pub(super) const WINDOW: u64 = 128;

/// Highest index received and which of the [`WINDOW`] indexes up to it
/// were received (RFC 3711 §3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReplayWindow {
    /// Highest index accepted so far (for SRTP: `ROC * 2^16 + s_l`).
    top: u64,
    /// Bit `k` set: index `top - k` was accepted.
    seen: u128,
}

impl ReplayWindow {
    /// The window after the first accepted packet, index `first`.
    pub(super) fn new(first: u64) -> Self {
        ReplayWindow {
            top: first,
            seen: 1,
        }
    }

    /// Highest index accepted.
    pub(super) fn top(&self) -> u64 {
        self.top
    }

    /// RFC 3711 §3.3.2: `index` is ahead of the window, or inside it and not
    /// received yet. Behind the window it is rejected as a replay.
    pub(super) fn is_fresh(&self, index: u64) -> bool {
        if index > self.top {
            return true;
        }
        let back = self.top - index;
        back < WINDOW && self.seen & (1u128 << back) == 0
    }

    /// Records `index` as received (after authentication, §3.3 step 6),
    /// sliding the window when it is the new highest.
    pub(super) fn accept(&mut self, index: u64) {
        if index > self.top {
            let shift = index - self.top;
            self.seen = if shift >= WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.top = index;
            return;
        }
        let back = self.top - index;
        if back < WINDOW {
            self.seen |= 1u128 << back;
        }
    }
}

/// The 48-bit packet index of a packet with sequence number `seq` given the
/// highest index so far, `top = ROC * 2^16 + s_l` (RFC 3711 §3.3.1 and the
/// pseudo-code of Appendix A), or `None` when the rollover counter would
/// pass 2^32 - 1 (the key is spent, §9.2).
///
/// One addition to Appendix A, as libsrtp does: while ROC is 0 a guess of
/// `ROC - 1` (a packet from "before" the first one) is taken as ROC 0, the
/// only index that exists.
pub(super) fn estimate_index(top: u64, seq: u16) -> Option<u64> {
    let roc = top >> 16;
    let s_l = i32::from((top & 0xffff) as u16);
    let s = i32::from(seq);
    let v = if s_l < 32_768 {
        if s - s_l > 32_768 {
            roc.saturating_sub(1)
        } else {
            roc
        }
    } else if s_l - 32_768 > s {
        roc + 1
    } else {
        roc
    };
    if v > u64::from(u32::MAX) {
        return None;
    }
    Some((v << 16) | u64::from(seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appendix_a() {
        // In order.
        assert_eq!(estimate_index(100, 101), Some(101));
        // Wrap forward: s_l high, SEQ low.
        assert_eq!(estimate_index(65_535, 0), Some(0x1_0000));
        assert_eq!(estimate_index(0x5_fff0, 3), Some(0x6_0003));
        // Late packet from before the wrap: s_l low, SEQ high.
        assert_eq!(estimate_index(0x1_0002, 65_534), Some(0xfffe));
        // ROC 0 has no predecessor.
        assert_eq!(estimate_index(100, 65_500), Some(65_500));
        // Half-way points.
        assert_eq!(estimate_index(32_768, 0), Some(0));
        assert_eq!(estimate_index(32_769, 0), Some(0x1_0000));
        assert_eq!(estimate_index(0x1_0000, 32_768), Some(0x1_8000));
        assert_eq!(estimate_index(0x1_0000, 32_769), Some(0x8001));
        // The rollover counter is 32 bits.
        let last = (u64::from(u32::MAX) << 16) | 0xffff;
        assert_eq!(estimate_index(last, 0), None);
        assert_eq!(estimate_index(last - 1, 0xffff), Some(last));
    }

    #[test]
    fn window() {
        let mut w = ReplayWindow::new(1000);
        assert!(!w.is_fresh(1000));
        assert!(w.is_fresh(999));
        assert!(w.is_fresh(1001));
        w.accept(1003);
        assert_eq!(w.top(), 1003);
        assert!(!w.is_fresh(1000) && !w.is_fresh(1003));
        assert!(w.is_fresh(1001) && w.is_fresh(1002));
        w.accept(1001);
        assert!(!w.is_fresh(1001) && w.is_fresh(1002));
        // The oldest index inside the window, then one behind it.
        assert!(w.is_fresh(1003 - (WINDOW - 1)));
        assert!(!w.is_fresh(1003 - WINDOW));
        // A jump beyond the window forgets everything behind.
        w.accept(1003 + 500);
        assert!(!w.is_fresh(1003));
        assert!(w.is_fresh(1503 - 1));
        w.accept(1503 + WINDOW - 1);
        assert!(!w.is_fresh(1503));
        w.accept(1503 + WINDOW);
        assert!(!w.is_fresh(1503));
        // Accepting something behind the window is harmless.
        w.accept(0);
        assert!(!w.is_fresh(0));
    }
}
