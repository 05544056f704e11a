//! A bounded single-producer single-consumer sample ring, lock-free and
//! allocation-free after creation: how the application hands audio (PCM
//! samples or pre-encoded G.711 bytes) to a media session running on a
//! shard thread, at any chunk size, without a lock per packet.
//!
//! Each slot is an atomic cell written with relaxed stores; the producer
//! publishes a run of slots with one release store of `tail`, the consumer
//! acquires it and frees slots with one release store of `head` (the
//! classic Lamport queue). No `unsafe`: the cells are atomics.

use std::sync::Arc;
use std::sync::atomic::{AtomicI16, AtomicU8, AtomicUsize, Ordering};

use crossbeam_utils::CachePadded;

/// A sample type the ring can carry: a plain value with an atomic cell.
pub trait Sample: Copy + Default + Send + Sync + 'static {
    /// The atomic cell holding one sample.
    type Cell: Send + Sync;
    /// A cell holding `v`.
    fn cell(v: Self) -> Self::Cell;
    /// Reads a cell.
    fn load(c: &Self::Cell) -> Self;
    /// Writes a cell.
    fn store(c: &Self::Cell, v: Self);
}

impl Sample for i16 {
    type Cell = AtomicI16;
    fn cell(v: Self) -> Self::Cell {
        AtomicI16::new(v)
    }
    fn load(c: &Self::Cell) -> Self {
        c.load(Ordering::Relaxed)
    }
    fn store(c: &Self::Cell, v: Self) {
        c.store(v, Ordering::Relaxed);
    }
}

impl Sample for u8 {
    type Cell = AtomicU8;
    fn cell(v: Self) -> Self::Cell {
        AtomicU8::new(v)
    }
    fn load(c: &Self::Cell) -> Self {
        c.load(Ordering::Relaxed)
    }
    fn store(c: &Self::Cell, v: Self) {
        c.store(v, Ordering::Relaxed);
    }
}

struct Shared<T: Sample> {
    cells: Box<[T::Cell]>,
    /// Total samples consumed (written by the consumer).
    head: CachePadded<AtomicUsize>,
    /// Total samples produced (written by the producer).
    tail: CachePadded<AtomicUsize>,
}

/// The writing half (the application's).
pub struct Producer<T: Sample> {
    shared: Arc<Shared<T>>,
}

/// The reading half (the media session's).
pub struct Consumer<T: Sample> {
    shared: Arc<Shared<T>>,
}

/// A ring holding up to `capacity` samples (at least 1).
pub fn ring<T: Sample>(capacity: usize) -> (Producer<T>, Consumer<T>) {
    let cells = (0..capacity.max(1))
        .map(|_| T::cell(T::default()))
        .collect();
    let shared = Arc::new(Shared {
        cells,
        head: CachePadded::new(AtomicUsize::new(0)),
        tail: CachePadded::new(AtomicUsize::new(0)),
    });
    (
        Producer {
            shared: shared.clone(),
        },
        Consumer { shared },
    )
}

impl<T: Sample> Shared<T> {
    fn capacity(&self) -> usize {
        self.cells.len()
    }

    /// Samples waiting. `head` is read first: it never passes `tail`, so
    /// a `tail` read after it is at least as far, whichever thread asks.
    fn len(&self) -> usize {
        let head = self.head.load(Ordering::Acquire);
        let tail = self.tail.load(Ordering::Acquire);
        tail.wrapping_sub(head).min(self.capacity())
    }
}

impl<T: Sample> Producer<T> {
    /// Writes as many of `samples` as there is room for; returns how many.
    /// Never blocks. `&mut`: one producer at a time.
    pub fn write(&mut self, samples: &[T]) -> usize {
        let s = &*self.shared;
        let tail = s.tail.load(Ordering::Relaxed);
        let head = s.head.load(Ordering::Acquire);
        let room = s.capacity() - tail.wrapping_sub(head);
        let n = room.min(samples.len());
        for (i, &v) in samples[..n].iter().enumerate() {
            T::store(&s.cells[tail.wrapping_add(i) % s.capacity()], v);
        }
        s.tail.store(tail.wrapping_add(n), Ordering::Release);
        n
    }

    /// Samples waiting to be read.
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room left.
    pub fn free(&self) -> usize {
        self.shared.capacity() - self.shared.len()
    }

    /// Total capacity in samples.
    pub fn capacity(&self) -> usize {
        self.shared.capacity()
    }
}

impl<T: Sample> Consumer<T> {
    /// Reads up to `out.len()` samples; returns how many.
    pub fn read(&mut self, out: &mut [T]) -> usize {
        let s = &*self.shared;
        let head = s.head.load(Ordering::Relaxed);
        let tail = s.tail.load(Ordering::Acquire);
        let n = tail.wrapping_sub(head).min(out.len());
        for (i, o) in out[..n].iter_mut().enumerate() {
            *o = T::load(&s.cells[head.wrapping_add(i) % s.capacity()]);
        }
        s.head.store(head.wrapping_add(n), Ordering::Release);
        n
    }

    /// Discards up to `n` samples; returns how many.
    pub fn skip(&mut self, n: usize) -> usize {
        let s = &*self.shared;
        let head = s.head.load(Ordering::Relaxed);
        let tail = s.tail.load(Ordering::Acquire);
        let k = tail.wrapping_sub(head).min(n);
        s.head.store(head.wrapping_add(k), Ordering::Release);
        k
    }

    /// Samples waiting.
    pub fn len(&self) -> usize {
        self.shared.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Sample> std::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("len", &self.len())
            .finish()
    }
}

impl<T: Sample> std::fmt::Debug for Consumer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("len", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifo_with_wrap_and_bounds() {
        let (mut p, mut c) = ring::<i16>(5);
        assert_eq!(p.write(&[1, 2, 3]), 3);
        let mut out = [0i16; 2];
        assert_eq!(c.read(&mut out), 2);
        assert_eq!(out, [1, 2]);
        assert_eq!(p.write(&[4, 5, 6, 7, 8]), 4);
        assert_eq!(p.free(), 0);
        let mut out = [0i16; 8];
        assert_eq!(c.read(&mut out), 5);
        assert_eq!(&out[..5], &[3, 4, 5, 6, 7]);
        assert!(c.is_empty());
        assert_eq!(c.skip(3), 0);
    }

    #[test]
    fn threads_see_every_sample_in_order() {
        let (mut p, mut c) = ring::<u8>(64);
        let writer = std::thread::spawn(move || {
            let mut next = 0u8;
            let mut sent = 0usize;
            while sent < 100_000 {
                let chunk: Vec<u8> = (0..7).map(|i| next.wrapping_add(i)).collect();
                let n = p.write(&chunk);
                next = next.wrapping_add(n as u8);
                sent += n;
            }
        });
        let mut expect = 0u8;
        let mut got = 0usize;
        let mut buf = [0u8; 13];
        while got < 100_000 {
            let n = c.read(&mut buf);
            for &b in &buf[..n] {
                assert_eq!(b, expect);
                expect = expect.wrapping_add(1);
            }
            got += n;
        }
        writer.join().unwrap();
    }
}
