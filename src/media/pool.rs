//! Recycled sample buffers for audio handed to the application: a fixed
//! number of buffers allocated once per endpoint circulate between the
//! session (which fills one per decoded frame) and the application (whose
//! [`Frame`] returns its buffer on drop). When the application keeps them
//! all, the session counts the frame as not delivered instead of
//! allocating: the media path never allocates.

use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

/// A fixed set of sample buffers shared by a session and its application.
#[derive(Debug, Clone)]
pub struct FramePool<T: Copy + Default + 'static> {
    inner: Arc<Inner<T>>,
}

#[derive(Debug)]
struct Inner<T> {
    /// Free buffers (a lock-free bounded queue).
    free: ArrayQueue<Box<[T]>>,
}

/// A buffer of decoded samples lent to the application; back to its pool
/// when dropped.
#[derive(Debug)]
pub struct Frame<T: Copy + Default + 'static> {
    buf: Option<Box<[T]>>,
    len: usize,
    pool: FramePool<T>,
}

impl<T: Copy + Default + 'static> FramePool<T> {
    /// `count` buffers of `samples` samples each.
    pub fn new(count: usize, samples: usize) -> Self {
        let free = ArrayQueue::new(count.max(1));
        for _ in 0..count {
            let _ = free.push(vec![T::default(); samples].into_boxed_slice());
        }
        FramePool {
            inner: Arc::new(Inner { free }),
        }
    }

    /// Takes a free buffer and fills it with `samples` (truncated to its
    /// size); `None` when every buffer is lent out.
    pub fn fill(&self, samples: &[T]) -> Option<Frame<T>> {
        let mut buf = self.inner.free.pop()?;
        let len = samples.len().min(buf.len());
        buf[..len].copy_from_slice(&samples[..len]);
        Some(Frame {
            buf: Some(buf),
            len,
            pool: self.clone(),
        })
    }

    fn give_back(&self, buf: Box<[T]>) {
        // The queue holds every buffer of the pool, so there is room; a
        // buffer from elsewhere (a clone) that does not fit is freed.
        let _ = self.inner.free.push(buf);
    }
}

impl<T: Copy + Default + 'static> Frame<T> {
    /// The samples.
    pub fn samples(&self) -> &[T] {
        self.buf.as_deref().map_or(&[], |b| &b[..self.len])
    }
}

impl<T: Copy + Default + 'static> std::ops::Deref for Frame<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.samples()
    }
}

impl<T: Copy + Default + 'static> Clone for Frame<T> {
    /// A copy outside the pool (allocates; the application's choice).
    fn clone(&self) -> Self {
        Frame {
            buf: Some(self.samples().into()),
            len: self.len,
            pool: FramePool::new(0, 0),
        }
    }
}

impl<T: Copy + Default + PartialEq + 'static> PartialEq for Frame<T> {
    fn eq(&self, other: &Self) -> bool {
        self.samples() == other.samples()
    }
}

impl<T: Copy + Default + 'static> Drop for Frame<T> {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.give_back(buf);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_circulate_and_run_out() {
        let pool = FramePool::<i16>::new(2, 4);
        let a = pool.fill(&[1, 2, 3]).unwrap();
        let b = pool.fill(&[4, 5, 6, 7, 8]).unwrap();
        assert_eq!(a.samples(), &[1, 2, 3]);
        assert_eq!(&b[..], &[4, 5, 6, 7]);
        assert!(pool.fill(&[9]).is_none());
        drop(a);
        let c = pool.fill(&[9]).unwrap();
        assert_eq!(c.samples(), &[9]);
    }
}
