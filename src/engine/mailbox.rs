//! Bounded lock-free queue: the control-to-shard mailbox.
//!
//! Many producers (control threads) push commands; one consumer (the shard)
//! pops them. The algorithm is the array-based bounded queue described by
//! Dmitry Vyukov: each slot carries a sequence number that says whose turn
//! it is, so producers claim slots with one compare-and-swap on the enqueue
//! position and never wait for each other. A full queue is reported to the
//! producer ([`Full`]) rather than blocking.
//!
//! The shard is woken by an eventfd written after a successful push (see
//! `engine::shard`); this module is only the queue, and is modelled with
//! `loom` under `--cfg loom`.

use std::mem::MaybeUninit;

use crossbeam_utils::CachePadded;

#[cfg(loom)]
use loom::cell::UnsafeCell;
#[cfg(loom)]
use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(loom))]
use std::sync::atomic::{AtomicUsize, Ordering};

/// `std` cell with loom's closure API, so the code below is the same in
/// both builds.
#[cfg(not(loom))]
#[derive(Debug)]
struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    fn new(v: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(v))
    }
    fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// The queue was full; the value is handed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Full<T>(pub T);

struct Slot<T> {
    /// `pos` when the slot is free for the producer of position `pos`;
    /// `pos + 1` when it holds that producer's value.
    seq: AtomicUsize,
    value: UnsafeCell<MaybeUninit<T>>,
}

/// A bounded multi-producer queue of `T`.
pub struct Queue<T> {
    slots: Box<[Slot<T>]>,
    mask: usize,
    head: CachePadded<AtomicUsize>,
    tail: CachePadded<AtomicUsize>,
}

// SAFETY: values of `T` move between threads through the slots (so `T:
// Send` is required); access to each slot's value is serialised by its
// sequence number (acquire/release), so sharing `&Queue` is sound.
unsafe impl<T: Send> Send for Queue<T> {}
// SAFETY: as above; the sequence protocol gives each slot value exactly one
// writer and then exactly one reader.
unsafe impl<T: Send> Sync for Queue<T> {}

impl<T> Queue<T> {
    /// A queue holding at least `capacity` values (rounded up to a power of
    /// two, minimum 2).
    pub fn new(capacity: usize) -> Self {
        let cap = capacity.max(2).next_power_of_two();
        let slots = (0..cap)
            .map(|i| Slot {
                seq: AtomicUsize::new(i),
                value: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Queue {
            slots,
            mask: cap - 1,
            head: CachePadded::new(AtomicUsize::new(0)),
            tail: CachePadded::new(AtomicUsize::new(0)),
        }
    }

    /// Capacity.
    pub fn capacity(&self) -> usize {
        self.mask + 1
    }

    /// Appends `value`, or hands it back when the queue is full.
    pub fn push(&self, value: T) -> Result<(), Full<T>> {
        let mut pos = self.tail.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos & self.mask];
            let seq = slot.seq.load(Ordering::Acquire);
            let diff = seq.wrapping_sub(pos) as isize;
            if diff == 0 {
                match self.tail.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: winning the CAS for `pos` while the slot's
                        // sequence equals `pos` makes this thread the only
                        // writer of the slot until it publishes `pos + 1`.
                        slot.value.with_mut(|p| unsafe { (*p).write(value) });
                        slot.seq.store(pos.wrapping_add(1), Ordering::Release);
                        return Ok(());
                    }
                    Err(actual) => pos = actual,
                }
            } else if diff < 0 {
                return Err(Full(value));
            } else {
                pos = self.tail.load(Ordering::Relaxed);
            }
        }
    }

    /// Removes the oldest value, if any.
    pub fn pop(&self) -> Option<T> {
        let mut pos = self.head.load(Ordering::Relaxed);
        loop {
            let slot = &self.slots[pos & self.mask];
            let seq = slot.seq.load(Ordering::Acquire);
            let diff = seq.wrapping_sub(pos.wrapping_add(1)) as isize;
            if diff == 0 {
                match self.head.compare_exchange_weak(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => {
                        // SAFETY: the slot's sequence `pos + 1` (acquired
                        // above) says the producer's write is complete and
                        // visible; winning the CAS makes this the only
                        // reader. The value is moved out exactly once.
                        let value = slot.value.with_mut(|p| unsafe { (*p).assume_init_read() });
                        slot.seq.store(
                            pos.wrapping_add(self.mask).wrapping_add(1),
                            Ordering::Release,
                        );
                        return Some(value);
                    }
                    Err(actual) => pos = actual,
                }
            } else if diff < 0 {
                return None;
            } else {
                pos = self.head.load(Ordering::Relaxed);
            }
        }
    }
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        while self.pop().is_some() {}
    }
}

impl<T> std::fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("capacity", &self.capacity())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn fifo_and_full() {
        let q = Queue::new(3);
        assert_eq!(q.capacity(), 4);
        for i in 0..4 {
            q.push(i).unwrap();
        }
        assert_eq!(q.push(9), Err(Full(9)));
        assert_eq!(q.pop(), Some(0));
        q.push(4).unwrap();
        assert_eq!(
            (1..=4).map(|_| q.pop().unwrap()).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn drops_unread_values() {
        let v = Arc::new(());
        let q = Queue::new(4);
        q.push(v.clone()).unwrap();
        q.push(v.clone()).unwrap();
        drop(q);
        assert_eq!(Arc::strong_count(&v), 1);
    }

    #[test]
    fn many_producers_one_consumer_lose_nothing() {
        let q = Arc::new(Queue::new(64));
        let producers: Vec<_> = (0..4u64)
            .map(|p| {
                let q = q.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        let mut v = p << 32 | i;
                        while let Err(Full(back)) = q.push(v) {
                            v = back;
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        let mut next = [0u64; 4];
        let mut got = 0;
        while got < 40_000 {
            if let Some(v) = q.pop() {
                let (p, i) = ((v >> 32) as usize, v & 0xffff_ffff);
                assert_eq!(i, next[p], "per-producer order");
                next[p] += 1;
                got += 1;
            } else {
                std::thread::yield_now();
            }
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(q.pop(), None);
    }
}

#[cfg(all(test, loom))]
mod loom_tests {
    use super::*;
    use loom::sync::Arc;

    #[test]
    fn loom_two_producers_one_consumer() {
        loom::model(|| {
            let q = Arc::new(Queue::new(2));
            let handles: Vec<_> = (0..2)
                .map(|i| {
                    let q = q.clone();
                    loom::thread::spawn(move || q.push(i).is_ok())
                })
                .collect();
            let mut got = Vec::new();
            if let Some(v) = q.pop() {
                got.push(v);
            }
            let pushed = handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .filter(|&ok| ok)
                .count();
            while let Some(v) = q.pop() {
                got.push(v);
            }
            got.sort_unstable();
            got.dedup();
            assert_eq!(got.len(), pushed);
            assert_eq!(pushed, 2, "capacity 2 fits both");
        });
    }

    #[test]
    fn loom_full_queue_hands_value_back() {
        loom::model(|| {
            let q = Arc::new(Queue::new(2));
            q.push(0).unwrap();
            q.push(1).unwrap();
            let q2 = q.clone();
            let t = loom::thread::spawn(move || q2.push(2));
            let first = q.pop();
            let r = t.join().unwrap();
            assert_eq!(first, Some(0));
            let mut rest = Vec::new();
            while let Some(v) = q.pop() {
                rest.push(v);
            }
            match r {
                Ok(()) => assert_eq!(rest, vec![1, 2]),
                Err(Full(2)) => assert_eq!(rest, vec![1]),
                Err(other) => panic!("unexpected {other:?}"),
            }
        });
    }
}
