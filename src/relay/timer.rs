//! A hashed timing wheel for shard timers (media timeouts now, media pacing
//! later).
//!
//! Sans-IO: the owner asks [`TimerWheel::next_deadline`] how long the event
//! loop may sleep, and calls [`TimerWheel::expire`] with the current time.
//! Resolution is one tick; a timer never fires early, and fires at most one
//! tick late. Deadlines further out than one revolution stay in their slot
//! and are skipped until their revolution comes round.

use std::time::{Duration, Instant};

/// A timer wheel carrying `T` payloads.
#[derive(Debug)]
pub struct TimerWheel<T> {
    start: Instant,
    tick: Duration,
    slots: Vec<Vec<(u64, T)>>,
    /// Timers armed for a tick already processed: due at the next expire.
    overdue: Vec<T>,
    /// Next tick not yet processed.
    cursor: u64,
    len: usize,
    /// Cached earliest pending tick (exact), so `next_deadline` is O(1)
    /// on every loop turn; recomputed only when timers fire.
    earliest: Option<u64>,
}

impl<T: Copy> TimerWheel<T> {
    /// A wheel of `slots` slots of `tick` each, with tick 0 at `start`.
    pub fn new(start: Instant, tick: Duration, slots: usize) -> Self {
        let slots = slots.max(1);
        let tick = tick.max(Duration::from_micros(1));
        TimerWheel {
            start,
            tick,
            slots: (0..slots).map(|_| Vec::new()).collect(),
            overdue: Vec::new(),
            cursor: 0,
            len: 0,
            earliest: None,
        }
    }

    /// Pending timers.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn tick_of(&self, t: Instant) -> u64 {
        let d = t.saturating_duration_since(self.start);
        (d.as_nanos() / self.tick.as_nanos()) as u64
    }

    /// Arms a timer for `deadline` (rounded up to a tick boundary).
    pub fn insert(&mut self, deadline: Instant, value: T) {
        let d = deadline.saturating_duration_since(self.start);
        let tick_ns = self.tick.as_nanos();
        let tick = d.as_nanos().div_ceil(tick_ns) as u64;
        self.len += 1;
        if tick < self.cursor {
            self.overdue.push(value);
            return;
        }
        self.earliest = Some(self.earliest.map_or(tick, |e| e.min(tick)));
        let n = self.slots.len() as u64;
        self.slots[(tick % n) as usize].push((tick, value));
    }

    /// The earliest instant at which [`expire`](Self::expire) returns
    /// something, or `None` when empty. Exact at tick resolution, O(1).
    pub fn next_deadline(&self) -> Option<Instant> {
        if !self.overdue.is_empty() {
            return Some(self.instant_of(self.cursor.saturating_sub(1)));
        }
        self.earliest.map(|t| self.instant_of(t))
    }

    /// Recomputes the cached earliest tick: one revolution of slot checks,
    /// plus a full scan only when every pending timer is further out.
    fn recompute_earliest(&mut self) {
        let n = self.slots.len() as u64;
        let due_this_revolution = (self.cursor..self.cursor + n).find(|&t| {
            self.slots[(t % n) as usize]
                .iter()
                .any(|&(due, _)| due == t)
        });
        self.earliest = due_this_revolution.or_else(|| {
            self.slots
                .iter()
                .flat_map(|s| s.iter().map(|&(due, _)| due))
                .min()
        });
    }

    fn instant_of(&self, tick: u64) -> Instant {
        let nanos = u64::try_from(self.tick.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_mul(tick);
        self.start + Duration::from_nanos(nanos)
    }

    /// Moves every timer due at `now` into `out` (in no particular order
    /// within a tick).
    pub fn expire(&mut self, now: Instant, out: &mut Vec<T>) {
        self.len -= self.overdue.len();
        out.append(&mut self.overdue);
        let now_tick = self.tick_of(now);
        let n = self.slots.len() as u64;
        // At most one revolution of slots needs visiting.
        let last = now_tick.min(self.cursor + n - 1);
        while self.cursor <= last {
            let slot = &mut self.slots[(self.cursor % n) as usize];
            let mut i = 0;
            while i < slot.len() {
                if slot[i].0 <= now_tick {
                    out.push(slot.swap_remove(i).1);
                    self.len -= 1;
                } else {
                    i += 1;
                }
            }
            self.cursor += 1;
        }
        self.cursor = self.cursor.max(now_tick + 1);
        if self.earliest.is_some_and(|e| e < self.cursor) {
            self.recompute_earliest();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_not_early_and_across_revolutions() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = TimerWheel::new(t0, ms(10), 8);
        w.insert(t0 + ms(25), 1u32);
        w.insert(t0 + ms(500), 2u32); // many revolutions out
        w.insert(t0 + ms(30), 3u32);
        assert_eq!(w.len(), 3);
        assert_eq!(w.next_deadline(), Some(t0 + ms(30)));
        let mut out = Vec::new();
        w.expire(t0 + ms(29), &mut out);
        assert!(out.is_empty());
        w.expire(t0 + ms(30), &mut out);
        out.sort_unstable();
        assert_eq!(out, vec![1, 3]);
        out.clear();
        w.expire(t0 + ms(499), &mut out);
        assert!(out.is_empty());
        assert_eq!(w.next_deadline(), Some(t0 + ms(500)));
        w.expire(t0 + ms(10_000), &mut out);
        assert_eq!(out, vec![2]);
        assert!(w.is_empty());
        assert_eq!(w.next_deadline(), None);
    }

    #[test]
    fn past_deadline_fires_on_next_expire() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut w = TimerWheel::new(t0, ms(10), 4);
        let mut out = Vec::new();
        w.expire(t0 + ms(100), &mut out);
        w.insert(t0 + ms(50), 7u8);
        w.expire(t0 + ms(101), &mut out);
        assert_eq!(out, vec![7]);
    }

    proptest::proptest! {
        /// Every timer fires exactly once, never early, at most one tick
        /// (plus the polling step) late, whatever the insert/expire order.
        #[test]
        fn fires_once_never_early(
            ops in proptest::collection::vec((0u64..3000, 0u64..200), 1..60),
            slots in 1usize..16,
        ) {
            let t0 = Instant::now();
            let tick = Duration::from_millis(10);
            let mut w = TimerWheel::new(t0, tick, slots);
            let mut now_ms = 0u64;
            let mut deadlines = Vec::new();
            let mut fired = vec![None; ops.len()];
            let mut out = Vec::new();
            for (i, &(delay, step)) in ops.iter().enumerate() {
                let deadline = now_ms + delay;
                deadlines.push(deadline);
                w.insert(t0 + Duration::from_millis(deadline), i);
                now_ms += step;
                w.expire(t0 + Duration::from_millis(now_ms), &mut out);
                for j in out.drain(..) {
                    proptest::prop_assert!(fired[j].is_none());
                    fired[j] = Some(now_ms);
                }
            }
            while !w.is_empty() {
                let next = w.next_deadline().unwrap();
                let next_ms = next.duration_since(t0).as_millis() as u64;
                proptest::prop_assert!(next_ms >= now_ms.saturating_sub(10));
                now_ms = now_ms.max(next_ms);
                w.expire(t0 + Duration::from_millis(now_ms), &mut out);
                proptest::prop_assert!(!out.is_empty(), "next_deadline promised work");
                for j in out.drain(..) {
                    proptest::prop_assert!(fired[j].is_none());
                    fired[j] = Some(now_ms);
                }
            }
            for (i, f) in fired.iter().enumerate() {
                let f = f.unwrap();
                proptest::prop_assert!(f >= deadlines[i], "timer {} fired early", i);
            }
        }
    }
}
