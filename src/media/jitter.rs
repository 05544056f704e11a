//! Adaptive jitter buffer for constant-frame audio (sans-IO, allocation
//! free after [`JitterBuffer::new`]).
//!
//! The buffer owns the packets of one RTP stream between their arrival and
//! their playout, and decides, frame by frame, what the decoder plays:
//! the packet of that frame, a concealment frame (the packet is missing:
//! the caller runs PLC, e.g. [`crate::codec::plc::Concealer`]), or an
//! inserted frame that only grows the delay.
//!
//! # Playout clock
//!
//! Playout runs on the local clock. The first packet after construction or
//! a reset fixes the mapping: its frame is due `initial_delay` after its
//! arrival, and from then on one frame is due every `frame`, the playout
//! RTP timestamp advancing by `clock_rate * frame` per frame. Packets are
//! placed on that timestamp grid (a packet belongs to the grid frame
//! nearest to its timestamp), so frames leave strictly in timestamp order,
//! each at most once, whatever order they arrived in. Timestamps are
//! extended to 64 bits against the playout point, so 32-bit timestamp and
//! 16-bit sequence number wraps are harmless.
//!
//! # Delay estimation
//!
//! For every packet the relative transit time `D = arrival - timestamp`
//! (both in RTP clock units) is measured, as the interarrival jitter of
//! RFC 3550 §6.4.1 / A.8 does, but instead of smoothing differences the
//! buffer keeps the minimum and maximum of `D` per second over a sliding
//! window of [`WINDOW_SECS`] seconds. The spread `max(D) - min(D)` over the
//! window is the peak delay variation; the target delay is that spread
//! plus a safety margin of half a frame, clamped to
//! `[min_delay, max_delay]`.
//!
//! The current delay is how long a packet of minimum transit waits:
//! `P - min(D)`, where `P` is the playout time of the next frame minus its
//! timestamp. Holding `current >= target` means every packet of the window
//! would have arrived at least half a frame before its playout.
//!
//! # Growth and shrink
//!
//! - Grow fast: a packet of new maximum transit (one that nearly missed or
//!   missed its playout) raises the target at once, and every playout
//!   instant at which `current < target` emits [`Playout::Stretch`]: the
//!   local clock advances by a frame while the playout timestamp does not.
//! - Shrink slowly: only once the window has run for its whole length,
//!   only while `current >= target + frame + frame / 4` has held for
//!   [`SHRINK_HOLD`], and at most one frame per [`SHRINK_HOLD`]. The frame
//!   then skipped is the oldest buffered one (the packet at the playout
//!   point is dropped and the next one plays in its place); it is counted
//!   in [`JitterStats::shrunk`], never as concealed. A peak seen once
//!   therefore keeps the delay up for at least the window length.
//!
//! # Drift
//!
//! A sender whose clock runs fast makes `D` fall steadily; the window
//! minimum follows it, the current delay rises by the drift and once it is
//! a frame above target one frame is dropped. A slow sender makes the
//! current delay fall until it drops below target and a frame is
//! stretched. Either way the delay stays within about one frame of target.
//!
//! # Underrun, loss and silence
//!
//! A frame missing at its playout instant is emitted as
//! [`Playout::Conceal`]. It is counted in [`JitterStats::concealed`] once a
//! later packet proves that media went on past it: at once when a later
//! packet is already buffered, otherwise when one arrives. A gap ended by a
//! packet with the marker bit (a new talkspurt, RFC 3551 §4.1) was
//! silence, not loss, and is not counted; neither is the tail after a
//! stream stops.
//!
//! # Reset
//!
//! A packet of another SSRC, or one whose timestamp is more than
//! `max_delay + 1 s` away from the timestamp expected at its arrival (the
//! newest timestamp advanced by the local time since), or
//! [`LATE_RESET`] late packets in a row (the stream went back in time),
//! drop everything buffered and start over from that packet as from a
//! first packet ([`PushOutcome::Reset`]): old frames are never played
//! after it, and the new stream plays `initial_delay` later.
//!
//! # Overflow
//!
//! Storage is `slots` fixed slots of `max_payload` bytes on the grid
//! (slot = frame index modulo `slots`). A packet too far ahead for the slots
//! (the caller stopped polling, or the sender jumped ahead) moves the
//! playout point forward: the oldest frames are dropped
//! ([`PushOutcome::Overflow`], [`JitterStats::overflow`]).
//!
//! # RTCP XR
//!
//! [`JitterBuffer::nominal`], [`JitterBuffer::maximum`] and
//! [`JitterBuffer::abs_max`] are the JB nominal, JB maximum and JB
//! abs max delays of the VoIP Metrics report block (RFC 3611 §4.7.7).

use std::time::{Duration, Instant};

use crate::rtp::Ssrc;

/// Length of the delay-estimation window, in one-second sub-windows.
pub const WINDOW_SECS: usize = 16;
/// How long the delay must stay a frame above target before a frame is
/// skipped, and the least time between two skipped frames.
pub const SHRINK_HOLD: Duration = Duration::from_secs(2);
/// Late packets in a row after which the stream is taken to have gone
/// back in time and the buffer resets.
pub const LATE_RESET: u32 = 16;
/// Width of a [`DelayHistogram`] bucket.
pub const HISTOGRAM_BUCKET: Duration = Duration::from_millis(5);
/// Buckets of a [`DelayHistogram`], the last one counting everything at
/// or above `HISTOGRAM_BUCKETS - 1` bucket widths (500 ms).
pub const HISTOGRAM_BUCKETS: usize = 101;

/// Extra slots beyond `max_delay / frame` in the default configuration.
const EXTRA_SLOTS: usize = 2;
/// A timestamp further than `max_delay` plus this from the expected one
/// resets the buffer.
const JUMP_SLACK: Duration = Duration::from_secs(1);
/// Nanoseconds per second.
const NANOS: u128 = 1_000_000_000;

/// Settings of a [`JitterBuffer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// RTP clock rate in Hz (RFC 3551 §4.5: 8000 for G.711).
    pub clock_rate: u32,
    /// Playout frame (the packetisation time, `ptime`); a whole number of
    /// clock ticks.
    pub frame: Duration,
    /// Lowest target delay.
    pub min_delay: Duration,
    /// Highest target delay.
    pub max_delay: Duration,
    /// Delay from the first packet's arrival to its playout.
    pub initial_delay: Duration,
    /// Largest payload stored, in bytes.
    pub max_payload: usize,
    /// Packets held. Fewer than `max_delay / frame` caps the delay below
    /// `max_delay`.
    pub slots: usize,
}

impl JitterConfig {
    /// Defaults for a stream of `clock_rate` Hz played in `frame` frames:
    /// delays 20 ms (min), 200 ms (max), 60 ms (initial), 320-byte
    /// payloads, `max_delay / frame + 2` slots.
    pub fn new(clock_rate: u32, frame: Duration) -> Self {
        let max_delay = Duration::from_millis(200);
        let mut config = JitterConfig {
            clock_rate,
            frame,
            min_delay: Duration::from_millis(20),
            max_delay,
            initial_delay: Duration::from_millis(60),
            max_payload: 320,
            slots: 0,
        };
        config.slots = config.derived_slots();
        config
    }

    /// `ceil(max_delay / frame) + 2`, the default slot count (2 when
    /// `frame` is zero).
    pub fn derived_slots(&self) -> usize {
        let frame = self.frame.as_nanos();
        if frame == 0 {
            return EXTRA_SLOTS;
        }
        let frames = self.max_delay.as_nanos().div_ceil(frame);
        usize::try_from(frames)
            .unwrap_or(usize::MAX)
            .saturating_add(EXTRA_SLOTS)
    }

    /// Checks the settings.
    pub fn validate(&self) -> Result<(), JitterError> {
        if self.clock_rate == 0 {
            return Err(JitterError::ZeroClockRate);
        }
        let ticks = u128::from(self.clock_rate) * self.frame.as_nanos();
        if ticks == 0 {
            return Err(JitterError::ZeroFrame);
        }
        if !ticks.is_multiple_of(NANOS) || ticks / NANOS > u128::from(u32::MAX / 4) {
            return Err(JitterError::FrameNotWholeTicks {
                frame: self.frame,
                clock_rate: self.clock_rate,
            });
        }
        if self.min_delay > self.max_delay {
            return Err(JitterError::MinAboveMax {
                min: self.min_delay,
                max: self.max_delay,
            });
        }
        if self.max_delay > Duration::from_secs(60) {
            return Err(JitterError::MaxDelayTooLong(self.max_delay));
        }
        if self.initial_delay < self.min_delay || self.initial_delay > self.max_delay {
            return Err(JitterError::InitialOutOfRange(self.initial_delay));
        }
        if self.slots == 0 {
            return Err(JitterError::ZeroSlots);
        }
        if self.max_payload == 0 || self.max_payload > usize::from(u16::MAX) {
            return Err(JitterError::PayloadSize(self.max_payload));
        }
        if self
            .slots
            .checked_mul(self.max_payload)
            .is_none_or(|b| b > 1 << 30)
        {
            return Err(JitterError::StorageTooLarge);
        }
        Ok(())
    }

    /// Clock ticks per frame; meaningful once validated.
    fn frame_ticks(&self) -> i64 {
        let ticks = u128::from(self.clock_rate) * self.frame.as_nanos() / NANOS;
        i64::try_from(ticks).unwrap_or(i64::MAX)
    }
}

/// Why a [`JitterConfig`] is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JitterError {
    /// The clock rate is zero.
    #[error("clock rate is zero")]
    ZeroClockRate,
    /// The frame is shorter than one clock tick.
    #[error("frame is shorter than one clock tick")]
    ZeroFrame,
    /// The frame is not a whole number of clock ticks (or absurdly long).
    #[error("frame of {frame:?} is not a whole number of ticks at {clock_rate} Hz")]
    FrameNotWholeTicks {
        /// The configured frame.
        frame: Duration,
        /// The configured clock rate.
        clock_rate: u32,
    },
    /// `min_delay` is above `max_delay`.
    #[error("min delay {min:?} is above max delay {max:?}")]
    MinAboveMax {
        /// The configured minimum.
        min: Duration,
        /// The configured maximum.
        max: Duration,
    },
    /// `max_delay` is above 60 s.
    #[error("max delay {0:?} is above 60 s")]
    MaxDelayTooLong(Duration),
    /// `initial_delay` is outside `[min_delay, max_delay]`.
    #[error("initial delay {0:?} is outside [min delay, max delay]")]
    InitialOutOfRange(Duration),
    /// `slots` is zero.
    #[error("no slots")]
    ZeroSlots,
    /// `max_payload` is zero or above 65535.
    #[error("max payload of {0} bytes is not in 1..=65535")]
    PayloadSize(usize),
    /// `slots * max_payload` is above 1 GiB.
    #[error("slots * max payload is above 1 GiB")]
    StorageTooLarge,
}

/// What [`JitterBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PushOutcome {
    /// Stored for playout.
    Buffered,
    /// A packet of this frame is already buffered or was played: dropped.
    Duplicate,
    /// Its frame was already played or concealed: dropped.
    Late,
    /// The payload is longer than `max_payload`: dropped.
    TooLarge,
    /// Stored, after dropping the oldest frames to make room.
    Overflow,
    /// Another SSRC or a timestamp jump: everything buffered was dropped
    /// and the stream starts over from this packet, which is stored.
    Reset,
}

/// What plays next ([`JitterBuffer::pop`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playout<'a> {
    /// The packet of this frame.
    Frame {
        /// Its SSRC.
        ssrc: Ssrc,
        /// Its sequence number.
        seq: u16,
        /// Its RTP timestamp.
        timestamp: u32,
        /// Its marker bit.
        marker: bool,
        /// Its payload.
        payload: &'a [u8],
    },
    /// The frame at `timestamp` is missing: the caller conceals it (PLC).
    Conceal {
        /// The frame's RTP timestamp.
        timestamp: u32,
    },
    /// A frame inserted to grow the delay (a slow sender, or more jitter):
    /// not a loss. The caller plays a frame of concealment or silence;
    /// `timestamp` is the frame that plays next, unchanged.
    Stretch {
        /// RTP timestamp of the frame that plays after this one.
        timestamp: u32,
    },
}

/// Counters of a [`JitterBuffer`]; never reset, not even by a reset.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JitterStats {
    /// Calls to [`JitterBuffer::push`].
    pub pushed: u64,
    /// Frames played from a packet.
    pub played: u64,
    /// Packets dropped because their frame had been played or concealed.
    pub late: u64,
    /// Packets dropped as duplicates.
    pub duplicates: u64,
    /// Packets that arrived after a later one, yet in time.
    pub reordered: u64,
    /// Pushes that had to drop the oldest frames for room.
    pub overflow: u64,
    /// Frames missing at their playout time, followed by more media.
    pub concealed: u64,
    /// Frames inserted to grow the delay.
    pub stretched: u64,
    /// Frames skipped to reduce the delay.
    pub shrunk: u64,
    /// Times the buffer started over.
    pub resets: u64,
    /// Scheduled wait of each stored packet, from arrival to playout.
    pub delay: DelayHistogram,
}

/// Histogram of delays in [`HISTOGRAM_BUCKETS`] fixed buckets of
/// [`HISTOGRAM_BUCKET`] (the last: everything from 500 ms up).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DelayHistogram {
    /// 32-bit counts (saturating): 2.7 years of 20 ms frames per bucket,
    /// at half the footprint.
    buckets: [u32; HISTOGRAM_BUCKETS],
    count: u64,
}

/// State of the current stream (from a first packet or reset on).
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: Ssrc,
    /// Arrival of the stream's first packet: origin of the local ticks.
    epoch: Instant,
    /// Wire timestamp of grid frame 0.
    ts_base: u32,
    /// Grid index of the next frame to play.
    next_idx: i64,
    /// When that frame is due.
    next_due: Instant,
    /// A frame has been popped.
    started: bool,
    /// Highest grid index received.
    highest_idx: i64,
    /// Arrival of that packet.
    highest_arrival: Instant,
    /// Occupied slots.
    buffered: usize,
    /// Bit `i`: frame `next_idx - 1 - i` played or skipped from a packet.
    played_bits: u64,
    /// Concealed frames not yet known to be losses.
    pending_conceal: u64,
    /// Late packets in a row.
    late_run: u32,
    /// Since when the delay has been a frame above target.
    shrink_since: Option<Instant>,
    /// Last frame skipped to shrink.
    last_shrink: Option<Instant>,
    window: Window,
}

/// Minimum and maximum relative transit per second over [`WINDOW_SECS`].
#[derive(Debug, Clone, Copy)]
struct Window {
    /// Second (since the epoch) of the newest sub-window.
    current: u64,
    min: [i64; WINDOW_SECS],
    max: [i64; WINDOW_SECS],
    /// Aggregates over all sub-windows (`i64::MAX`/`MIN` when empty).
    agg_min: i64,
    agg_max: i64,
}

/// Per-slot packet data besides the payload.
#[derive(Debug, Clone, Copy, Default)]
struct SlotMeta {
    timestamp: u32,
    seq: u16,
    len: u16,
    marker: bool,
    full: bool,
}

/// Adaptive jitter buffer of one RTP stream. See the module docs.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    config: JitterConfig,
    frame_ticks: i64,
    margin_ticks: i64,
    min_ticks: i64,
    max_ticks: i64,
    jump_ticks: i64,
    meta: Box<[SlotMeta]>,
    data: Box<[u8]>,
    stream: Option<Stream>,
    stats: JitterStats,
}

impl DelayHistogram {
    /// An empty histogram.
    pub const fn new() -> Self {
        DelayHistogram {
            buckets: [0; HISTOGRAM_BUCKETS],
            count: 0,
        }
    }

    /// Counts one delay.
    pub fn record(&mut self, delay: Duration) {
        let i = delay.as_nanos() / HISTOGRAM_BUCKET.as_nanos();
        let i = usize::try_from(i).map_or(HISTOGRAM_BUCKETS - 1, |i| i.min(HISTOGRAM_BUCKETS - 1));
        self.buckets[i] = self.buckets[i].saturating_add(1);
        self.count += 1;
    }

    /// Delays recorded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The upper edge of the bucket holding the `q` quantile (`q` clamped
    /// to `[0, 1]`; 500 ms for the last bucket); zero when empty.
    pub fn percentile(&self, q: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        // Rank of the quantile, at least 1: the float-to-int cast
        // saturates, and the value is at most `count`.
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += u64::from(n);
            if seen >= rank {
                let edge = (i + 1).min(HISTOGRAM_BUCKETS - 1);
                return HISTOGRAM_BUCKET * edge as u32;
            }
        }
        HISTOGRAM_BUCKET * (HISTOGRAM_BUCKETS - 1) as u32
    }

    /// Counts per bucket: bucket `i` holds delays in `[i, i + 1)` times
    /// [`HISTOGRAM_BUCKET`], the last one everything from 500 ms.
    pub fn buckets(&self) -> &[u32; HISTOGRAM_BUCKETS] {
        &self.buckets
    }
}

impl Default for DelayHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Window {
    const fn new() -> Self {
        Window {
            current: 0,
            min: [i64::MAX; WINDOW_SECS],
            max: [i64::MIN; WINDOW_SECS],
            agg_min: i64::MAX,
            agg_max: i64::MIN,
        }
    }

    /// Records transit `d` in second `sec` since the epoch.
    fn record(&mut self, sec: u64, d: i64) {
        if sec > self.current {
            let steps = (sec - self.current).min(WINDOW_SECS as u64);
            for s in 1..=steps {
                let i = ((self.current + s) % WINDOW_SECS as u64) as usize;
                self.min[i] = i64::MAX;
                self.max[i] = i64::MIN;
            }
            self.current = sec;
            self.agg_min = self.min.iter().copied().min().unwrap_or(i64::MAX);
            self.agg_max = self.max.iter().copied().max().unwrap_or(i64::MIN);
        }
        let i = (self.current % WINDOW_SECS as u64) as usize;
        self.min[i] = self.min[i].min(d);
        self.max[i] = self.max[i].max(d);
        self.agg_min = self.agg_min.min(d);
        self.agg_max = self.agg_max.max(d);
    }

    /// `(min, max)` transit over the window, if any was recorded.
    fn range(&self) -> Option<(i64, i64)> {
        (self.agg_min <= self.agg_max).then_some((self.agg_min, self.agg_max))
    }
}

impl JitterBuffer {
    /// A buffer with all storage allocated: `slots * max_payload` bytes of
    /// payload plus 12 bytes per slot.
    pub fn new(config: JitterConfig) -> Result<Self, JitterError> {
        config.validate()?;
        let frame_ticks = config.frame_ticks();
        Ok(JitterBuffer {
            config,
            frame_ticks,
            margin_ticks: frame_ticks / 2,
            min_ticks: duration_ticks(config.min_delay, config.clock_rate),
            max_ticks: duration_ticks(config.max_delay, config.clock_rate),
            jump_ticks: duration_ticks(config.max_delay + JUMP_SLACK, config.clock_rate),
            meta: vec![SlotMeta::default(); config.slots].into_boxed_slice(),
            data: vec![0; config.slots * config.max_payload].into_boxed_slice(),
            stream: None,
            stats: JitterStats::default(),
        })
    }

    /// Changes the frame duration, for a far end that packetises
    /// differently from what it was asked: the timestamp grid changes, so
    /// what is buffered is dropped and playout starts afresh with the next
    /// packet; the statistics run on. Allocates (rare: once per change).
    pub fn reframe(&mut self, frame: Duration, max_payload: usize) -> Result<(), JitterError> {
        let mut c = self.config;
        c.frame = frame;
        c.max_payload = max_payload.max(1);
        c.slots = c.derived_slots();
        let stats = std::mem::take(&mut self.stats);
        *self = JitterBuffer::new(c)?;
        self.stats = stats;
        Ok(())
    }

    /// The settings.
    pub fn config(&self) -> &JitterConfig {
        &self.config
    }

    /// Offers a packet that arrived at `now`. Never panics, whatever the
    /// input; see [`PushOutcome`].
    pub fn push(
        &mut self,
        now: Instant,
        ssrc: Ssrc,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> PushOutcome {
        self.stats.pushed += 1;
        if payload.len() > self.config.max_payload {
            return PushOutcome::TooLarge;
        }
        let Some(s) = self.stream else {
            self.start(now, ssrc, seq, timestamp, marker, payload);
            return PushOutcome::Buffered;
        };
        if s.ssrc != ssrc {
            return self.restart(now, ssrc, seq, timestamp, marker, payload);
        }
        let frame = self.frame_ticks;
        // Extend the timestamp against the playout point (RFC 3550 §5.1:
        // timestamps wrap modulo 2^32).
        let reference = s.next_idx.saturating_mul(frame);
        let ref_wire = s.ts_base.wrapping_add(reference as u32);
        let rel = reference.saturating_add(i64::from(timestamp.wrapping_sub(ref_wire) as i32));
        let k = rel.saturating_add(frame / 2).div_euclid(frame);
        let grid = k.saturating_mul(frame);

        // A jump: too far from the timestamp expected at this arrival.
        let elapsed = duration_ticks(
            now.saturating_duration_since(s.highest_arrival),
            self.config.clock_rate,
        );
        let expected = s.highest_idx.saturating_mul(frame).saturating_add(elapsed);
        if grid.saturating_sub(expected).saturating_abs() > self.jump_ticks {
            return self.restart(now, ssrc, seq, timestamp, marker, payload);
        }

        let slots = self.config.slots as i64;
        let transit = self.ticks(&s, now).saturating_sub(grid);
        if k < s.next_idx {
            if !s.started && s.highest_idx.saturating_sub(k) < slots {
                if let Some(due) = s.next_due.checked_sub(self.frames(s.next_idx - k)) {
                    if due >= now {
                        // Nothing played yet and this earlier frame is
                        // still in time: start playout from it instead.
                        if let Some(st) = self.stream.as_mut() {
                            st.next_idx = k;
                            st.next_due = due;
                        }
                        self.record_transit(now, transit);
                        self.store(now, k, seq, timestamp, marker, payload);
                        return PushOutcome::Buffered;
                    }
                }
            }
            let back = s.next_idx - k;
            if (1..=64).contains(&back) && s.played_bits & (1 << (back - 1)) != 0 {
                self.stats.duplicates += 1;
                return PushOutcome::Duplicate;
            }
            if s.late_run + 1 >= LATE_RESET {
                return self.restart(now, ssrc, seq, timestamp, marker, payload);
            }
            self.stats.late += 1;
            self.record_transit(now, transit);
            if let Some(st) = self.stream.as_mut() {
                st.late_run += 1;
            }
            return PushOutcome::Late;
        }
        let mut outcome = PushOutcome::Buffered;
        if k - s.next_idx >= slots {
            self.make_room(now, k - slots + 1);
            outcome = PushOutcome::Overflow;
        } else if self.meta[slot_of(k, self.config.slots)].full {
            self.stats.duplicates += 1;
            return PushOutcome::Duplicate;
        }
        self.record_transit(now, transit);
        self.store(now, k, seq, timestamp, marker, payload);
        outcome
    }

    /// When the next frame is due; `None` before the first packet.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.stream.map(|s| s.next_due)
    }

    /// The frame due at or before `now`, one per call; `None` when none is
    /// due yet. A caller late by several frames gets each of them from
    /// successive calls.
    pub fn pop(&mut self, now: Instant) -> Option<Playout<'_>> {
        let frame = self.frames(1);
        let slots = self.config.slots;
        let (current, target) = (self.current_ticks(), self.target_ticks());
        let s = self.stream.as_mut()?;
        if now < s.next_due {
            return None;
        }
        s.started = true;
        let next_ts = s
            .ts_base
            .wrapping_add(s.next_idx.wrapping_mul(self.frame_ticks) as u32);
        if let Some(current) = current {
            if current < target {
                s.shrink_since = None;
                s.next_due = s.next_due.checked_add(frame).unwrap_or(s.next_due);
                self.stats.stretched += 1;
                return Some(Playout::Stretch { timestamp: next_ts });
            }
            let above = current.saturating_sub(target);
            let full_window =
                now.saturating_duration_since(s.epoch) >= Duration::from_secs(WINDOW_SECS as u64);
            if above >= self.frame_ticks + self.frame_ticks / 4 && full_window {
                let since = *s.shrink_since.get_or_insert(now);
                let rested = s
                    .last_shrink
                    .is_none_or(|t| now.saturating_duration_since(t) >= SHRINK_HOLD);
                let slot = slot_of(s.next_idx, slots);
                if rested
                    && now.saturating_duration_since(since) >= SHRINK_HOLD
                    && self.meta[slot].full
                {
                    // Drop the oldest buffered frame; the next one plays
                    // now in its place.
                    self.meta[slot].full = false;
                    s.buffered -= 1;
                    s.next_idx += 1;
                    s.played_bits = (s.played_bits << 1) | 1;
                    s.shrink_since = None;
                    s.last_shrink = Some(now);
                    self.stats.shrunk += 1;
                }
            } else {
                s.shrink_since = None;
            }
        }
        let idx = s.next_idx;
        let timestamp = s
            .ts_base
            .wrapping_add(idx.wrapping_mul(self.frame_ticks) as u32);
        s.next_idx += 1;
        s.next_due = s.next_due.checked_add(frame).unwrap_or(s.next_due);
        s.played_bits <<= 1;
        let slot = slot_of(idx, slots);
        if !self.meta[slot].full {
            if s.buffered == 0 {
                s.pending_conceal += 1;
            } else if !next_starts_talkspurt(&self.meta, idx, slots) {
                self.stats.concealed += 1;
            }
            return Some(Playout::Conceal { timestamp });
        }
        let meta = &mut self.meta[slot];
        meta.full = false;
        s.buffered -= 1;
        s.played_bits |= 1;
        self.stats.played += 1;
        let start = slot * self.config.max_payload;
        let payload = &self.data[start..start + usize::from(meta.len)];
        Some(Playout::Frame {
            ssrc: s.ssrc,
            seq: meta.seq,
            timestamp: meta.timestamp,
            marker: meta.marker,
            payload,
        })
    }

    /// The counters.
    pub fn stats(&self) -> &JitterStats {
        &self.stats
    }

    /// The delay the buffer aims at: peak transit variation over the
    /// window plus half a frame, within `[min_delay, max_delay]`;
    /// `initial_delay` before the first packet.
    pub fn target_delay(&self) -> Duration {
        match self.stream.and_then(|s| s.window.range()) {
            Some(_) => ticks_duration(self.target_ticks(), self.config.clock_rate),
            None => self.config.initial_delay,
        }
    }

    /// How long a packet of minimum transit in the window waits between
    /// arrival and playout at the current playout point; zero before the
    /// first packet.
    pub fn current_delay(&self) -> Duration {
        self.current_ticks().map_or(Duration::ZERO, |t| {
            ticks_duration(t, self.config.clock_rate)
        })
    }

    /// Media held ahead of the playout point: from the next frame to play
    /// to the end of the newest buffered packet, in whole frames.
    pub fn buffered(&self) -> Duration {
        match self.stream {
            Some(s) if s.buffered > 0 => {
                let frames = s.highest_idx.saturating_sub(s.next_idx).saturating_add(1);
                self.frames(frames)
            }
            _ => Duration::ZERO,
        }
    }

    /// JB nominal (RFC 3611 §4.7.7): the delay the buffer currently aims
    /// at for a packet arriving on time, [`JitterBuffer::target_delay`].
    pub fn nominal(&self) -> Duration {
        self.target_delay()
    }

    /// JB maximum (RFC 3611 §4.7.7): the delay of the earliest arriving
    /// packets that are not discarded, [`JitterBuffer::current_delay`].
    pub fn maximum(&self) -> Duration {
        self.current_delay()
    }

    /// JB abs max (RFC 3611 §4.7.7): the most delay the buffer can ever
    /// hold, `slots * frame`.
    pub fn abs_max(&self) -> Duration {
        self.frames(self.config.slots as i64)
    }

    /// Drops everything buffered and waits for a first packet again
    /// (counted in [`JitterStats::resets`]; the counters are kept).
    pub fn reset(&mut self) {
        self.clear();
        self.stream = None;
        self.stats.resets += 1;
    }

    /// Starts a stream at this packet.
    fn start(
        &mut self,
        now: Instant,
        ssrc: Ssrc,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) {
        self.clear();
        let next_due = now.checked_add(self.config.initial_delay).unwrap_or(now);
        self.stream = Some(Stream {
            ssrc,
            epoch: now,
            ts_base: timestamp,
            next_idx: 0,
            next_due,
            started: false,
            highest_idx: 0,
            highest_arrival: now,
            buffered: 0,
            played_bits: 0,
            pending_conceal: 0,
            late_run: 0,
            shrink_since: None,
            last_shrink: None,
            window: Window::new(),
        });
        self.record_transit(now, 0);
        self.store(now, 0, seq, timestamp, marker, payload);
    }

    /// Starts over from this packet, counting a reset.
    fn restart(
        &mut self,
        now: Instant,
        ssrc: Ssrc,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) -> PushOutcome {
        self.stats.resets += 1;
        self.start(now, ssrc, seq, timestamp, marker, payload);
        PushOutcome::Reset
    }

    /// Empties every slot.
    fn clear(&mut self) {
        for m in self.meta.iter_mut() {
            m.full = false;
        }
    }

    /// Moves the playout point forward to `idx`, dropping the frames
    /// passed over (overflow).
    fn make_room(&mut self, now: Instant, idx: i64) {
        let slots = self.config.slots;
        let frame_len = self.frames(1);
        let Some(s) = self.stream.as_mut() else {
            return;
        };
        let n = idx.saturating_sub(s.next_idx);
        if n <= 0 {
            return;
        }
        if n >= slots as i64 {
            self.meta.iter_mut().for_each(|m| m.full = false);
            s.buffered = 0;
        } else {
            for i in s.next_idx..idx {
                let m = &mut self.meta[slot_of(i, slots)];
                if m.full {
                    m.full = false;
                    s.buffered -= 1;
                }
            }
        }
        self.stats.overflow += 1;
        s.next_idx = idx;
        s.played_bits = if n >= 64 { 0 } else { s.played_bits << n };
        // A caller behind its polls keeps the delay; otherwise the media
        // skipped is skipped in time too.
        if now > s.next_due {
            let gap = now.saturating_duration_since(s.next_due);
            let skip = u32::try_from(n)
                .ok()
                .and_then(|n| frame_len.checked_mul(n))
                .unwrap_or(Duration::MAX);
            s.next_due = s.next_due.checked_add(gap.min(skip)).unwrap_or(s.next_due);
        }
    }

    /// Stores a packet of grid frame `k`, known to fit and be free.
    fn store(
        &mut self,
        now: Instant,
        k: i64,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &[u8],
    ) {
        let slots = self.config.slots;
        let frame_len = self.frames(1);
        let Some(s) = self.stream.as_mut() else {
            return;
        };
        let slot = slot_of(k, slots);
        let start = slot * self.config.max_payload;
        self.data[start..start + payload.len()].copy_from_slice(payload);
        self.meta[slot] = SlotMeta {
            timestamp,
            seq,
            // Fits: `max_payload <= u16::MAX` is validated.
            len: payload.len() as u16,
            marker,
            full: true,
        };
        s.buffered += 1;
        s.late_run = 0;
        if k < s.highest_idx {
            self.stats.reordered += 1;
        } else {
            s.highest_idx = k;
            s.highest_arrival = now;
        }
        // Frames concealed before this one were losses, unless this
        // packet starts a talkspurt (RFC 3551 §4.1): then they were silence.
        if !marker {
            self.stats.concealed += s.pending_conceal;
        }
        s.pending_conceal = 0;
        let ahead = u32::try_from(k.saturating_sub(s.next_idx)).unwrap_or(u32::MAX);
        let due = frame_len
            .checked_mul(ahead)
            .and_then(|d| s.next_due.checked_add(d))
            .unwrap_or(s.next_due);
        self.stats.delay.record(due.saturating_duration_since(now));
    }

    /// Adds a relative transit sample (RFC 3550 §6.4.1: arrival minus
    /// timestamp, in clock ticks) to the window.
    fn record_transit(&mut self, now: Instant, transit: i64) {
        if let Some(s) = self.stream.as_mut() {
            let sec = now.saturating_duration_since(s.epoch).as_secs();
            s.window.record(sec, transit);
        }
    }

    /// Local time as ticks since the stream's epoch.
    fn ticks(&self, s: &Stream, t: Instant) -> i64 {
        duration_ticks(t.saturating_duration_since(s.epoch), self.config.clock_rate)
    }

    /// `P - min(D)`: the wait of a minimum-transit packet, in ticks.
    fn current_ticks(&self) -> Option<i64> {
        let s = self.stream.as_ref()?;
        let (min, _) = s.window.range()?;
        let p = self
            .ticks(s, s.next_due)
            .saturating_sub(s.next_idx.saturating_mul(self.frame_ticks));
        Some(p.saturating_sub(min))
    }

    /// Target delay in ticks (`min_delay` when nothing was measured).
    fn target_ticks(&self) -> i64 {
        let spread = self
            .stream
            .and_then(|s| s.window.range())
            .map_or(0, |(min, max)| max.saturating_sub(min));
        spread
            .saturating_add(self.margin_ticks)
            .clamp(self.min_ticks, self.max_ticks)
    }

    /// `n` frames as a duration (zero for negative `n`).
    fn frames(&self, n: i64) -> Duration {
        let n = u32::try_from(n.max(0)).unwrap_or(u32::MAX);
        self.config.frame.checked_mul(n).unwrap_or(Duration::MAX)
    }
}

/// Whether the first buffered packet after grid frame `idx` carries the
/// marker bit: the gap before it is silence (RFC 3551 §4.1), not loss.
fn next_starts_talkspurt(meta: &[SlotMeta], idx: i64, slots: usize) -> bool {
    (1..slots as i64)
        .map(|i| &meta[slot_of(idx + i, slots)])
        .find(|m| m.full)
        .is_some_and(|m| m.marker)
}

/// Slot of grid frame `k`.
fn slot_of(k: i64, slots: usize) -> usize {
    // `rem_euclid` of a positive modulus is in `0..slots`.
    k.rem_euclid(slots as i64) as usize
}

/// A duration in clock ticks (truncated, saturating).
fn duration_ticks(d: Duration, clock_rate: u32) -> i64 {
    i64::try_from(d.as_nanos() * u128::from(clock_rate) / NANOS).unwrap_or(i64::MAX)
}

/// Clock ticks as a duration (zero for negative counts).
fn ticks_duration(ticks: i64, clock_rate: u32) -> Duration {
    let ticks = u128::try_from(ticks.max(0)).unwrap_or(0);
    let nanos = ticks * NANOS / u128::from(clock_rate.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: Duration = Duration::from_millis(1);
    const SSRC: Ssrc = Ssrc(0x1234_5678);

    /// What one pop produced, without the borrow.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Out {
        Frame { seq: u16, ts: u32, at: Duration },
        Conceal { ts: u32 },
        Stretch,
    }

    /// One packet on the wire.
    #[derive(Debug, Clone, Copy)]
    struct Pkt {
        arrival: Duration,
        ssrc: Ssrc,
        seq: u16,
        ts: u32,
        marker: bool,
    }

    fn pkt(arrival: Duration, seq: u16, ts: u32) -> Pkt {
        Pkt {
            arrival,
            ssrc: SSRC,
            seq,
            ts,
            marker: false,
        }
    }

    fn g711() -> JitterBuffer {
        JitterBuffer::new(JitterConfig::new(8000, 20 * MS)).expect("valid config")
    }

    fn record(p: Option<Playout<'_>>, at: Duration, out: &mut Vec<Out>) -> bool {
        match p {
            Some(Playout::Frame { seq, timestamp, .. }) => out.push(Out::Frame {
                seq,
                ts: timestamp,
                at,
            }),
            Some(Playout::Conceal { timestamp }) => out.push(Out::Conceal { ts: timestamp }),
            Some(Playout::Stretch { .. }) => out.push(Out::Stretch),
            None => return false,
        }
        true
    }

    /// Runs `packets` (sorted here by arrival) through `jb` on a virtual
    /// clock, popping every frame exactly at its due time, until `end`.
    /// `observe` runs after every pop.
    fn simulate(
        jb: &mut JitterBuffer,
        t0: Instant,
        mut packets: Vec<Pkt>,
        end: Duration,
        mut observe: impl FnMut(&JitterBuffer, Duration),
    ) -> (Vec<Out>, Vec<PushOutcome>) {
        packets.sort_by_key(|p| p.arrival);
        let mut out = Vec::new();
        let mut outcomes = Vec::new();
        let mut next = 0;
        loop {
            let arrival = packets.get(next).map(|p| p.arrival);
            let due = jb.poll_timeout().map(|d| d - t0);
            let t = match (arrival, due) {
                (Some(a), Some(d)) => a.min(d),
                (Some(a), None) => a,
                (None, Some(d)) => d,
                (None, None) => break,
            };
            if t > end {
                break;
            }
            if arrival == Some(t) {
                let p = packets[next];
                next += 1;
                outcomes.push(jb.push(t0 + t, p.ssrc, p.seq, p.ts, p.marker, &p.seq.to_be_bytes()));
            } else {
                while record(jb.pop(t0 + t), t, &mut out) {
                    observe(jb, t);
                }
            }
        }
        (out, outcomes)
    }

    /// Deterministic generator (SplitMix64).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        /// Uniform in `[0, 1)`.
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// Timestamps of frames in output order, extended, must increase.
    fn assert_in_order(out: &[Out]) {
        let mut last: Option<u64> = None;
        let mut ext = 0u64;
        let mut prev_wire = 0u32;
        for o in out {
            let ts = match *o {
                Out::Frame { ts, .. } | Out::Conceal { ts } => ts,
                Out::Stretch => continue,
            };
            ext = if last.is_none() {
                u64::from(ts) + (1 << 32)
            } else {
                ext.wrapping_add_signed(i64::from(ts.wrapping_sub(prev_wire) as i32))
            };
            prev_wire = ts;
            if let Some(l) = last {
                assert!(ext > l, "timestamp {ts} out of order");
            }
            last = Some(ext);
        }
    }

    fn frames(out: &[Out]) -> Vec<u16> {
        out.iter()
            .filter_map(|o| match o {
                Out::Frame { seq, .. } => Some(*seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn config_defaults_and_validation() {
        let c = JitterConfig::new(8000, 20 * MS);
        assert_eq!(c.slots, 12);
        assert_eq!(c.validate(), Ok(()));
        let bad = |f: fn(&mut JitterConfig)| {
            let mut c = JitterConfig::new(8000, 20 * MS);
            f(&mut c);
            c.validate()
        };
        assert_eq!(bad(|c| c.clock_rate = 0), Err(JitterError::ZeroClockRate));
        assert_eq!(
            bad(|c| c.frame = Duration::ZERO),
            Err(JitterError::ZeroFrame)
        );
        assert!(matches!(
            bad(|c| c.frame = Duration::from_micros(20_010)),
            Err(JitterError::FrameNotWholeTicks { .. })
        ));
        assert!(matches!(
            bad(|c| c.min_delay = 300 * MS),
            Err(JitterError::MinAboveMax { .. })
        ));
        assert!(matches!(
            bad(|c| c.initial_delay = 10 * MS),
            Err(JitterError::InitialOutOfRange(_))
        ));
        assert_eq!(bad(|c| c.slots = 0), Err(JitterError::ZeroSlots));
        assert_eq!(bad(|c| c.max_payload = 0), Err(JitterError::PayloadSize(0)));
        assert!(JitterBuffer::new(JitterConfig { clock_rate: 0, ..c }).is_err());
    }

    #[test]
    fn default_g711_storage_is_small() {
        let jb = g711();
        let heap = jb.meta.len() * size_of::<SlotMeta>() + jb.data.len();
        assert!(heap < 5 * 1024, "{heap} bytes of heap");
        assert_eq!(size_of::<SlotMeta>(), 12);
        assert_eq!(jb.abs_max(), 240 * MS);
    }

    #[test]
    fn playout_starts_after_initial_delay_one_frame_per_interval() {
        let mut jb = g711();
        let t0 = Instant::now();
        assert_eq!(jb.poll_timeout(), None);
        assert!(jb.pop(t0).is_none());
        let packets = (0..10u16)
            .map(|i| pkt(20 * MS * u32::from(i) + 5 * MS, i, 160 * u32::from(i)))
            .collect();
        let (out, _) = simulate(&mut jb, t0, packets, 260 * MS, |_, _| {});
        let expected: Vec<Out> = (0..10u16)
            .map(|i| Out::Frame {
                seq: i,
                ts: 160 * u32::from(i),
                at: 65 * MS + 20 * MS * u32::from(i),
            })
            .collect();
        assert_eq!(out, expected);
        assert_eq!(jb.stats().played, 10);
        assert_eq!(jb.stats().delay.count(), 10);
    }

    #[test]
    fn caller_late_by_several_frames_gets_each_due_frame() {
        let mut jb = g711();
        let t0 = Instant::now();
        for i in 0..5u16 {
            jb.push(
                t0 + 20 * MS * u32::from(i),
                SSRC,
                i,
                160 * u32::from(i),
                false,
                &[1],
            );
        }
        assert_eq!(jb.buffered(), 100 * MS);
        // Due at 60, 80, 100, 120 ms; the caller wakes at 125 ms.
        let now = t0 + 125 * MS;
        let mut seqs = Vec::new();
        while let Some(p) = jb.pop(now) {
            match p {
                Playout::Frame { seq, .. } => seqs.push(seq),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(seqs, [0, 1, 2, 3]);
        assert_eq!(jb.poll_timeout(), Some(t0 + 140 * MS));
    }

    #[test]
    fn duplicates_late_and_reordered() {
        let mut jb = g711();
        let t0 = Instant::now();
        let p = |i: u16| (SSRC, i, 160 * u32::from(i), false);
        let push = |jb: &mut JitterBuffer, at: Duration, i: u16| {
            let (s, q, ts, m) = p(i);
            jb.push(t0 + at, s, q, ts, m, &[0; 160])
        };
        assert_eq!(push(&mut jb, Duration::ZERO, 0), PushOutcome::Buffered);
        assert_eq!(push(&mut jb, MS, 0), PushOutcome::Duplicate);
        assert_eq!(push(&mut jb, 40 * MS, 2), PushOutcome::Buffered);
        assert_eq!(push(&mut jb, 45 * MS, 1), PushOutcome::Buffered);
        assert_eq!(jb.stats().reordered, 1);
        // Frame 0 plays at 60 ms, frame 1 at 80 ms.
        assert!(matches!(
            jb.pop(t0 + 60 * MS),
            Some(Playout::Frame { seq: 0, .. })
        ));
        assert!(matches!(
            jb.pop(t0 + 80 * MS),
            Some(Playout::Frame { seq: 1, .. })
        ));
        assert_eq!(push(&mut jb, 85 * MS, 1), PushOutcome::Duplicate);
        // Frame 3 missing at 120 ms: concealed, then it arrives late.
        assert!(matches!(
            jb.pop(t0 + 100 * MS),
            Some(Playout::Frame { seq: 2, .. })
        ));
        assert_eq!(push(&mut jb, 110 * MS, 4), PushOutcome::Buffered);
        assert_eq!(
            jb.pop(t0 + 120 * MS),
            Some(Playout::Conceal { timestamp: 480 })
        );
        assert_eq!(push(&mut jb, 125 * MS, 3), PushOutcome::Late);
        let s = jb.stats();
        assert_eq!((s.duplicates, s.late, s.concealed, s.played), (2, 1, 1, 3));
    }

    #[test]
    fn too_large_payload_is_refused() {
        let mut jb = g711();
        let t0 = Instant::now();
        assert_eq!(
            jb.push(t0, SSRC, 0, 0, false, &[0; 321]),
            PushOutcome::TooLarge
        );
        assert_eq!(jb.poll_timeout(), None);
        assert_eq!(
            jb.push(t0, SSRC, 0, 0, false, &[7; 320]),
            PushOutcome::Buffered
        );
        match jb.pop(t0 + 60 * MS) {
            Some(Playout::Frame { payload, .. }) => assert_eq!(payload, &[7; 320][..]),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn sequence_and_timestamp_wrap() {
        let mut jb = g711();
        let t0 = Instant::now();
        let ts0 = u32::MAX - 160 * 5 + 1;
        let packets = (0..20u32)
            .map(|i| {
                pkt(
                    20 * MS * i,
                    65530u16.wrapping_add(i as u16),
                    ts0.wrapping_add(160 * i),
                )
            })
            .collect();
        let (out, _) = simulate(&mut jb, t0, packets, 500 * MS, |_, _| {});
        let seqs = frames(&out);
        assert_eq!(seqs.len(), 20);
        assert_eq!(seqs[6], 0);
        assert_in_order(&out);
        assert_eq!(jb.stats().late + jb.stats().resets, 0);
    }

    #[test]
    fn reordered_first_packet_still_plays() {
        let mut jb = g711();
        let t0 = Instant::now();
        let packets = vec![
            pkt(Duration::ZERO, 1, 160),
            pkt(10 * MS, 0, 0),
            pkt(20 * MS, 2, 320),
        ];
        let (out, _) = simulate(&mut jb, t0, packets, 200 * MS, |_, _| {});
        assert_eq!(frames(&out), [0, 1, 2]);
        assert_eq!(jb.stats().late, 0);
        // Frame 1 keeps its due time: 60 ms after its arrival.
        assert!(out.contains(&Out::Frame {
            seq: 1,
            ts: 160,
            at: 60 * MS
        }));
    }

    #[test]
    fn late_packet_grows_delay_with_stretch() {
        let mut jb = g711();
        let t0 = Instant::now();
        let mut packets: Vec<Pkt> = (0..100u32)
            .map(|i| pkt(20 * MS * i, i as u16, 160 * i))
            .collect();
        // Packet 50 is 70 ms late: past its playout (60 ms of delay).
        packets[50].arrival += 70 * MS;
        let (out, _) = simulate(&mut jb, t0, packets, 3 * Duration::from_secs(1), |_, _| {});
        let s = jb.stats();
        assert_eq!(s.late, 1);
        assert_eq!(s.concealed, 1);
        assert!(s.stretched >= 1, "{s:?}");
        assert!(jb.target_delay() >= 70 * MS);
        assert!(jb.current_delay() >= jb.target_delay());
        assert_in_order(&out);
        assert_eq!(s.shrunk, 0);
    }

    /// Scenario A: 40 ms + uniform [0, 20] ms without reordering, 5 %
    /// loss, 1 % held back 25 ms more (behind their successor), 60 s.
    #[test]
    fn jitter_loss_and_reordering_conceal_only_losses() {
        for seed in 1..=5u64 {
            let mut rng = Rng(seed);
            let mut jb = g711();
            let t0 = Instant::now();
            let mut packets = Vec::new();
            let mut lost = 0;
            let mut prev = Duration::ZERO;
            let n = 3000u32;
            let (seq0, ts0) = (65000u16, u32::MAX - 1000 * 160);
            for i in 0..n {
                let send = 20 * MS * i;
                let jitter = Duration::from_secs_f64(0.020 * rng.unit());
                let mut arrival = (send + 40 * MS + jitter).max(prev);
                prev = arrival;
                if i > 0 && i + 1 < n && rng.unit() < 0.05 {
                    lost += 1;
                    continue;
                }
                if rng.unit() < 0.01 {
                    arrival += 25 * MS;
                }
                packets.push(pkt(
                    arrival,
                    seq0.wrapping_add(i as u16),
                    ts0.wrapping_add(160 * i),
                ));
            }
            let received = packets.len() as u64;
            let (out, _) = simulate(&mut jb, t0, packets, 61 * Duration::from_secs(1), |_, _| {});
            let s = jb.stats();
            assert_eq!(s.late, 0, "seed {seed}: {s:?}");
            assert_eq!(s.concealed, lost, "seed {seed}: {s:?}");
            assert!(s.reordered > 0);
            assert_eq!(s.played + s.shrunk, received, "seed {seed}: {s:?}");
            assert_eq!(s.resets + s.overflow + s.duplicates, 0);
            assert_in_order(&out);
        }
    }

    /// Scenario B: sender clock off by `ppm`, 10 minutes, small jitter.
    fn drift(ppm: f64) -> (JitterStats, Duration, Duration, Duration, Duration) {
        let mut rng = Rng(7);
        let mut jb = g711();
        let t0 = Instant::now();
        let n = 30_000u32;
        let packets = (0..n)
            .map(|i| {
                let send = Duration::from_secs_f64(0.020 * f64::from(i) / (1.0 + ppm * 1e-6));
                let arrival = send + 30 * MS + Duration::from_secs_f64(0.002 * rng.unit());
                pkt(arrival, i as u16, 160 * i)
            })
            .collect();
        let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
        let (mut blo, mut bhi) = (Duration::MAX, Duration::ZERO);
        let warm = Duration::from_secs(30);
        let (out, _) = simulate(&mut jb, t0, packets, Duration::from_secs(599), |jb, t| {
            if t > warm {
                lo = lo.min(jb.current_delay());
                hi = hi.max(jb.current_delay());
                blo = blo.min(jb.buffered());
                bhi = bhi.max(jb.buffered());
            }
        });
        assert_in_order(&out);
        (jb.stats().clone(), lo, hi, blo, bhi)
    }

    #[test]
    fn fast_sender_drops_frames_without_drift() {
        let (s, lo, hi, blo, bhi) = drift(100.0);
        assert!(s.shrunk >= 3, "{s:?}");
        assert_eq!(s.stretched + s.concealed + s.late, 0, "{s:?}");
        assert!(hi - lo <= 26 * MS, "delay {lo:?}..{hi:?}");
        assert!(bhi - blo <= 40 * MS, "buffered {blo:?}..{bhi:?}");
    }

    #[test]
    fn slow_sender_stretches_without_drift() {
        let (s, lo, hi, blo, bhi) = drift(-100.0);
        assert!(s.stretched >= 2, "{s:?}");
        assert_eq!(s.concealed + s.late, 0, "{s:?}");
        assert!(hi - lo <= 26 * MS, "delay {lo:?}..{hi:?}");
        assert!(bhi - blo <= 40 * MS, "buffered {blo:?}..{bhi:?}");
    }

    #[test]
    fn ssrc_change_resets_without_replay() {
        let mut jb = g711();
        let t0 = Instant::now();
        let mut packets: Vec<Pkt> = (0..50u32)
            .map(|i| pkt(20 * MS * i, i as u16, 160 * i))
            .collect();
        packets.extend((0..50u32).map(|i| Pkt {
            ssrc: Ssrc(99),
            ..pkt(MS + 20 * MS * (50 + i), 1000 + i as u16, 777_000 + 160 * i)
        }));
        let (out, outcomes) = simulate(&mut jb, t0, packets, 3 * Duration::from_secs(1), |_, _| {});
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| **o == PushOutcome::Reset)
                .count(),
            1
        );
        assert_eq!(jb.stats().resets, 1);
        let seqs = frames(&out);
        let first_new = seqs
            .iter()
            .position(|&s| s >= 1000)
            .expect("new stream played");
        assert!(
            seqs[first_new..].iter().all(|&s| s >= 1000),
            "old frame after reset"
        );
        assert_eq!(&seqs[first_new..], (1000..1050).collect::<Vec<_>>());
        // The new stream starts playing within the initial delay.
        let Out::Frame { at, .. } = out
            .iter()
            .find(|o| matches!(o, Out::Frame { seq: 1000, .. }))
            .copied()
            .expect("played")
        else {
            unreachable!()
        };
        assert_eq!(at, 1001 * MS + 60 * MS);
    }

    #[test]
    fn timestamp_jump_resets() {
        let mut jb = g711();
        let t0 = Instant::now();
        let mut packets: Vec<Pkt> = (0..50u32)
            .map(|i| pkt(20 * MS * i, i as u16, 160 * i))
            .collect();
        packets.extend((50..100u32).map(|i| pkt(20 * MS * i, i as u16, 160 * i + 8000 * 3)));
        let (out, _) = simulate(&mut jb, t0, packets, 3 * Duration::from_secs(1), |_, _| {});
        assert_eq!(jb.stats().resets, 1);
        // The frames still buffered at the jump are dropped, the new
        // stream plays 60 ms after its first packet.
        let seqs = frames(&out);
        assert_eq!(seqs.len(), 97);
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        assert!(out.contains(&Out::Frame {
            seq: 50,
            ts: 160 * 50 + 24_000,
            at: 1060 * MS
        }));
        // A silence (timestamps and arrivals both jump) is no reset.
        let mut jb = g711();
        let mut packets: Vec<Pkt> = (0..50u32)
            .map(|i| pkt(20 * MS * i, i as u16, 160 * i))
            .collect();
        packets.extend((150..200u32).map(|i| Pkt {
            marker: i == 150,
            ..pkt(20 * MS * i, i as u16, 160 * i)
        }));
        simulate(&mut jb, t0, packets, 5 * Duration::from_secs(1), |_, _| {});
        let s = jb.stats();
        assert_eq!(
            (s.resets, s.played, s.concealed, s.late),
            (0, 100, 0, 0),
            "{s:?}"
        );
    }

    #[test]
    fn stream_going_back_in_time_resets() {
        let mut jb = g711();
        let t0 = Instant::now();
        let mut packets: Vec<Pkt> = (0..50u32)
            .map(|i| pkt(20 * MS * i, i as u16, 160 * i + 80_000))
            .collect();
        packets.extend((50..100u32).map(|i| pkt(20 * MS * i, i as u16, 160 * i + 80_000 - 4000)));
        let (out, _) = simulate(&mut jb, t0, packets, 3 * Duration::from_secs(1), |_, _| {});
        assert_eq!(jb.stats().resets, 1);
        assert_eq!(jb.stats().late, u64::from(LATE_RESET) - 1);
        assert_in_order(&out[..out.len().min(80)]);
    }

    #[test]
    fn overflow_drops_oldest() {
        let mut jb = JitterBuffer::new(JitterConfig {
            slots: 4,
            ..JitterConfig::new(8000, 20 * MS)
        })
        .expect("valid");
        let t0 = Instant::now();
        for i in 0..4u16 {
            assert_eq!(
                jb.push(t0, SSRC, i, 160 * u32::from(i), false, &[]),
                PushOutcome::Buffered
            );
        }
        assert_eq!(jb.push(t0, SSRC, 4, 640, false, &[]), PushOutcome::Overflow);
        assert_eq!(jb.stats().overflow, 1);
        assert_eq!(jb.buffered(), 80 * MS);
        let mut seqs = Vec::new();
        let now = t0 + Duration::from_secs(1);
        while let Some(p) = jb.pop(now) {
            if let Playout::Frame { seq, .. } = p {
                seqs.push(seq);
            }
            if seqs.len() == 4 {
                break;
            }
        }
        assert_eq!(seqs, [1, 2, 3, 4]);
    }

    #[test]
    fn stalled_caller_keeps_newest_frames() {
        let mut jb = g711();
        let t0 = Instant::now();
        for i in 0..500u32 {
            jb.push(t0 + 20 * MS * i, SSRC, i as u16, 160 * i, false, &[]);
        }
        assert!(jb.stats().overflow > 0);
        let now = t0 + 20 * MS * 499;
        let mut seqs = Vec::new();
        while let Some(p) = jb.pop(now) {
            if let Playout::Frame { seq, .. } = p {
                seqs.push(seq);
            }
        }
        assert!(!seqs.is_empty() && seqs.len() <= 12, "{}", seqs.len());
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        assert!(jb.poll_timeout().is_some_and(|d| d > now));
    }

    #[test]
    fn public_reset_forgets_stream() {
        let mut jb = g711();
        let t0 = Instant::now();
        jb.push(t0, SSRC, 0, 0, false, &[]);
        jb.reset();
        assert_eq!(jb.poll_timeout(), None);
        assert_eq!(jb.buffered(), Duration::ZERO);
        assert_eq!(jb.stats().resets, 1);
        assert_eq!(
            jb.push(t0, Ssrc(5), 9, 99, false, &[]),
            PushOutcome::Buffered
        );
    }

    #[test]
    fn xr_delays() {
        let mut jb = g711();
        assert_eq!(jb.nominal(), 60 * MS);
        let t0 = Instant::now();
        jb.push(t0, SSRC, 0, 0, false, &[]);
        jb.push(t0 + 30 * MS, SSRC, 1, 160, false, &[]);
        // Transit spread 10 ms + 10 ms margin = 20 ms target.
        assert_eq!(jb.nominal(), 20 * MS);
        assert_eq!(jb.maximum(), 60 * MS);
        assert_eq!(jb.abs_max(), 240 * MS);
    }

    #[test]
    fn histogram_percentiles() {
        let mut h = DelayHistogram::new();
        assert_eq!(h.percentile(0.5), Duration::ZERO);
        for ms in 0..100u32 {
            h.record(MS * ms);
        }
        h.record(Duration::from_secs(10));
        assert_eq!(h.count(), 101);
        assert_eq!(h.percentile(0.5), 55 * MS);
        assert_eq!(h.percentile(0.0), 5 * MS);
        assert_eq!(h.percentile(1.0), 500 * MS);
        assert_eq!(h.percentile(f64::NAN), 500 * MS);
        assert_eq!(h.buckets()[HISTOGRAM_BUCKETS - 1], 1);
        assert_eq!(h.buckets()[0], 5);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Push {
            dt: u16,
            ssrc: bool,
            seq: u16,
            ts: u32,
            len: u16,
        },
        Pop {
            dt: u16,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (
                0..100u16,
                any::<bool>(),
                any::<u16>(),
                any::<u32>(),
                0..400u16
            )
                .prop_map(|(dt, ssrc, seq, ts, len)| Op::Push {
                    dt,
                    ssrc,
                    seq,
                    ts,
                    len
                }),
            // Near-sequential timestamps exercise the ordinary paths.
            (0..100u16, 0..40u16, 0..64u32, 0..400u16).prop_map(|(dt, seq, ts, len)| Op::Push {
                dt,
                ssrc: false,
                seq,
                ts: ts * 160,
                len
            }),
            (0..200u16).prop_map(|dt| Op::Pop { dt }),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_input_never_panics_and_plays_in_order(
            ops in proptest::collection::vec(op(), 0..300),
            slots in 1..24usize,
        ) {
            let config = JitterConfig { slots, ..JitterConfig::new(8000, 20 * MS) };
            let mut jb = JitterBuffer::new(config).expect("valid");
            let t0 = Instant::now();
            let mut now = t0;
            let mut out = Vec::new();
            let resets_before = |jb: &JitterBuffer| jb.stats().resets;
            let mut epoch_resets = 0;
            for op in ops {
                match op {
                    Op::Push { dt, ssrc, seq, ts, len } => {
                        now += MS * u32::from(dt);
                        let payload = [0u8; 400];
                        jb.push(now, Ssrc(u32::from(ssrc)), seq, ts, false, &payload[..usize::from(len)]);
                        if resets_before(&jb) != epoch_resets {
                            epoch_resets = resets_before(&jb);
                            assert_in_order(&out);
                            out.clear();
                        }
                    }
                    Op::Pop { dt } => {
                        now += MS * u32::from(dt);
                        while record(jb.pop(now), now - t0, &mut out) {}
                        prop_assert!(jb.poll_timeout().is_none_or(|d| d > now));
                    }
                }
                let _ = (jb.buffered(), jb.target_delay(), jb.current_delay(), jb.nominal());
            }
            assert_in_order(&out);
        }
    }
}
