//! The service order of a shard's own producers (local media endpoints,
//! ICE agents, DTLS sessions): those with work now, in the order they got
//! it, and everyone's next deadline.
//!
//! Contract: a ready list served front to back within one turn (cleared
//! when served through), and a min-heap of deadlines with lazy deletion:
//! an entry is live only while its item still has that deadline armed (the
//! item keeps its `armed` instant and `queued` flag; the caller checks
//! them), so re-arming costs a push and never a search. Nothing here
//! allocates once the list and heap have grown to the shard's peak.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

/// Ready list and deadline heap of items keyed by `K`.
#[derive(Debug)]
pub(crate) struct Schedule<K: Ord + Copy> {
    ready: Vec<K>,
    /// Index of the next entry of `ready` to serve.
    at: usize,
    timers: BinaryHeap<Reverse<(Instant, K)>>,
}

impl<K: Ord + Copy> Default for Schedule<K> {
    fn default() -> Self {
        Schedule::with_capacity(0)
    }
}

impl<K: Ord + Copy> Schedule<K> {
    /// An empty schedule with room for `n` items.
    pub(crate) fn with_capacity(n: usize) -> Self {
        Schedule {
            ready: Vec::with_capacity(n),
            at: 0,
            timers: BinaryHeap::with_capacity(n),
        }
    }

    /// Queues `key` for service (the caller has checked it is not queued).
    pub(crate) fn push_ready(&mut self, key: K) {
        self.ready.push(key);
    }

    /// Arms a deadline for `key` (the caller records `at` as its armed
    /// instant; an earlier entry for it goes stale).
    pub(crate) fn arm(&mut self, at: Instant, key: K) {
        self.timers.push(Reverse((at, key)));
    }

    /// Whether some item waits for service in this turn.
    pub(crate) fn has_ready(&self) -> bool {
        self.at < self.ready.len()
    }

    /// The earliest deadline in the heap (possibly a stale one: it only
    /// makes the shard turn once more).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Now when some item is ready, else the earliest deadline.
    pub(crate) fn poll_timeout(&self, now: Instant) -> Option<Instant> {
        if self.has_ready() {
            return Some(now);
        }
        self.next_deadline()
    }

    /// The item to serve next in this turn, if any. When the list is
    /// served through it is cleared and `None` returned: the caller then
    /// runs its due timers (which may queue items again) and asks again.
    pub(crate) fn current(&mut self) -> Option<K> {
        if self.at == self.ready.len() {
            self.ready.clear();
            self.at = 0;
            return None;
        }
        self.ready.get(self.at).copied()
    }

    /// The current item is served (or gone).
    pub(crate) fn advance(&mut self) {
        self.at += 1;
    }

    /// The next heap entry due at `now`: (its instant, its key); the caller
    /// ignores it unless that is still the item's armed instant.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(Instant, K)> {
        let &Reverse((at, key)) = self.timers.peek()?;
        if at > now {
            return None;
        }
        self.timers.pop();
        Some((at, key))
    }

    /// Forgets everything (no item left: no stale deadline may keep the
    /// shard awake).
    pub(crate) fn clear(&mut self) {
        self.ready.clear();
        self.at = 0;
        self.timers.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ready_in_order_then_due_timers() {
        let now = Instant::now();
        let mut s: Schedule<u32> = Schedule::default();
        assert_eq!(s.poll_timeout(now), None);
        s.push_ready(2);
        s.push_ready(1);
        assert_eq!(s.poll_timeout(now), Some(now));
        assert_eq!(s.current(), Some(2));
        s.advance();
        assert_eq!(s.current(), Some(1));
        s.advance();
        assert_eq!(s.current(), None, "served through: cleared");
        assert!(!s.has_ready());
        let later = now + Duration::from_millis(5);
        s.arm(later, 7);
        s.arm(now, 8);
        assert_eq!(s.poll_timeout(now), Some(now));
        assert_eq!(s.pop_due(now), Some((now, 8)));
        assert_eq!(s.pop_due(now), None, "7 is not due yet");
        assert_eq!(s.next_deadline(), Some(later));
        s.clear();
        assert_eq!(s.poll_timeout(now), None);
    }
}
