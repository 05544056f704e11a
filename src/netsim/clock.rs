//! A virtual clock for simulations: it reads the real clock once, at
//! construction, and from then on moves only when the test driver says so.

use std::time::{Duration, Instant};

/// Monotonic virtual time, advanced explicitly.
///
/// Everything in the simulator takes `now: Instant` as a parameter; this
/// type is the usual source of those instants in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtualClock {
    start: Instant,
    now: Instant,
}

impl VirtualClock {
    /// A clock starting at the real `Instant::now()`, read this one time.
    pub fn new() -> Self {
        Self::starting_at(Instant::now())
    }

    /// A clock starting at `start`, never reading the real clock.
    pub fn starting_at(start: Instant) -> Self {
        Self { start, now: start }
    }

    /// The instant the clock started at.
    pub fn start(&self) -> Instant {
        self.start
    }

    /// The current virtual instant.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves the clock forward by `d` and returns the new instant.
    pub fn advance(&mut self, d: Duration) -> Instant {
        self.now += d;
        self.now
    }

    /// Moves the clock to `t` and returns the new instant. Time never runs
    /// backwards: a `t` before the current instant leaves the clock as is.
    pub fn advance_to(&mut self, t: Instant) -> Instant {
        self.now = self.now.max(t);
        self.now
    }

    /// Virtual time elapsed since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_and_elapsed() {
        let t0 = Instant::now();
        let mut c = VirtualClock::starting_at(t0);
        assert_eq!(c.now(), t0);
        assert_eq!(
            c.advance(Duration::from_millis(20)),
            t0 + Duration::from_millis(20)
        );
        c.advance_to(t0 + Duration::from_secs(1));
        assert_eq!(c.elapsed(), Duration::from_secs(1));
        assert_eq!(c.start(), t0);
    }

    #[test]
    fn advance_to_never_goes_back() {
        let mut c = VirtualClock::new();
        let later = c.advance(Duration::from_secs(2));
        c.advance_to(c.start());
        assert_eq!(c.now(), later);
    }
}
