//! The event channel from a media endpoint (on a shard) to its
//! application: bounded, lock-free and allocation-free on the sending side.
//!
//! Events go into a `crossbeam-queue` [`ArrayQueue`] (a fixed array of
//! slots, lock-free). The shard pushes a turn's events, then calls
//! [`EventSender::wake`] once: it does anything only when a consumer is
//! waiting (a flag the consumer sets before it sleeps), so a consumer that
//! keeps up costs the shard no lock and no syscall. A waiting consumer is
//! woken through `atomic-waker` (async, lock-free) or by unparking its
//! thread (blocking: the thread list is locked on that slow path only, when
//! a wake-up syscall is due anyway).
//!
//! Lost wake-ups are excluded by the Dekker pattern: the consumer sets
//! `waiting` then re-checks the queue; the producer pushes then checks
//! `waiting`; a sequentially consistent fence separates the two steps on
//! each side.

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::thread::Thread;
use std::time::{Duration, Instant};

use atomic_waker::AtomicWaker;
use crossbeam_queue::ArrayQueue;

struct Shared<T> {
    queue: ArrayQueue<T>,
    /// A consumer is (about to be) asleep.
    waiting: AtomicBool,
    /// The sender is gone.
    closed: AtomicBool,
    /// Async consumer.
    waker: AtomicWaker,
    /// Blocked consumer threads.
    threads: Mutex<Vec<Thread>>,
}

/// The shard's end.
pub struct EventSender<T> {
    shared: Arc<Shared<T>>,
}

/// The application's end; clones share the queue (each event goes to one
/// of them).
pub struct EventReceiver<T> {
    shared: Arc<Shared<T>>,
}

/// A channel of `capacity` events (at least 1).
pub fn channel<T>(capacity: usize) -> (EventSender<T>, EventReceiver<T>) {
    let shared = Arc::new(Shared {
        queue: ArrayQueue::new(capacity.max(1)),
        waiting: AtomicBool::new(false),
        closed: AtomicBool::new(false),
        waker: AtomicWaker::new(),
        threads: Mutex::new(Vec::new()),
    });
    (
        EventSender {
            shared: shared.clone(),
        },
        EventReceiver { shared },
    )
}

impl<T> Shared<T> {
    fn wake_all(&self) {
        self.waker.wake();
        if let Ok(threads) = self.threads.lock() {
            for t in threads.iter() {
                t.unpark();
            }
        }
    }
}

impl<T> EventSender<T> {
    /// Queues `event`; gives it back when the queue is full. Never blocks,
    /// locks or allocates; does not wake anyone (see
    /// [`wake`](Self::wake)).
    pub fn try_send(&self, event: T) -> Result<(), T> {
        self.shared.queue.push(event)
    }

    /// Wakes a waiting consumer, if any: call once after a burst of
    /// [`try_send`](Self::try_send).
    pub fn wake(&self) {
        fence(Ordering::SeqCst);
        if self.shared.waiting.load(Ordering::Relaxed)
            && self.shared.waiting.swap(false, Ordering::AcqRel)
        {
            self.shared.wake_all();
        }
    }
}

impl<T> Drop for EventSender<T> {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.wake_all();
    }
}

impl<T> EventReceiver<T> {
    /// The next event if one is queued.
    pub fn try_recv(&self) -> Option<T> {
        self.shared.queue.pop()
    }

    /// Whether the sender is gone (queued events can still be taken).
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::SeqCst)
    }

    /// Events queued.
    pub fn len(&self) -> usize {
        self.shared.queue.len()
    }

    /// Whether none is queued.
    pub fn is_empty(&self) -> bool {
        self.shared.queue.is_empty()
    }

    /// Announces a sleep, then re-checks: `Some` if an event (or the end)
    /// showed up meanwhile.
    fn prepare_wait(&self) -> Option<Option<T>> {
        self.shared.waiting.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        if let Some(e) = self.shared.queue.pop() {
            return Some(Some(e));
        }
        if self.is_closed() {
            return Some(self.shared.queue.pop());
        }
        None
    }

    /// The next event, waiting until `deadline` (`None`: for ever);
    /// `None` when the deadline passed, or the sender is gone and the
    /// queue is empty.
    pub fn recv_until(&self, deadline: Option<Instant>) -> Option<T> {
        let me = std::thread::current();
        let mut registered = false;
        let out = loop {
            if let Some(e) = self.shared.queue.pop() {
                break Some(e);
            }
            if self.is_closed() {
                break self.shared.queue.pop();
            }
            if !registered {
                if let Ok(mut threads) = self.shared.threads.lock() {
                    threads.push(me.clone());
                }
                registered = true;
            }
            if let Some(r) = self.prepare_wait() {
                break r;
            }
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        break None;
                    }
                    std::thread::park_timeout(d - now);
                }
            }
        };
        if registered {
            if let Ok(mut threads) = self.shared.threads.lock() {
                if let Some(i) = threads.iter().position(|t| t.id() == me.id()) {
                    threads.swap_remove(i);
                }
            }
        }
        out
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<T> {
        self.recv_until(Instant::now().checked_add(timeout))
    }

    /// Polls for the next event (`Ready(None)`: the sender is gone and the
    /// queue is empty).
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(e) = self.shared.queue.pop() {
            return Poll::Ready(Some(e));
        }
        if self.is_closed() {
            return Poll::Ready(self.shared.queue.pop());
        }
        self.shared.waker.register(cx.waker());
        match self.prepare_wait() {
            Some(r) => Poll::Ready(r),
            None => Poll::Pending,
        }
    }

    /// The next event, for async code.
    pub async fn recv_async(&self) -> Option<T> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }
}

/// The next event from any of `receivers`, with the index of the one it
/// came from, waiting until `deadline` (`None`: for ever); `None` when the
/// deadline passed, or every sender is gone and every queue is empty. The
/// scan starts at `start` (rotate it for fairness between busy channels).
pub fn recv_any<T>(
    receivers: &[&EventReceiver<T>],
    start: usize,
    deadline: Option<Instant>,
) -> Option<(usize, T)> {
    let n = receivers.len();
    if n == 0 {
        return None;
    }
    let scan = || -> Result<(usize, T), bool> {
        let mut open = false;
        for k in 0..n {
            let i = (start + k) % n;
            let r = receivers[i];
            // Closed first, then pop: an event queued before the close is
            // still seen.
            let closed = r.is_closed();
            if let Some(e) = r.shared.queue.pop() {
                return Ok((i, e));
            }
            open |= !closed;
        }
        Err(open)
    };
    let me = std::thread::current();
    let mut registered = false;
    let out = loop {
        match scan() {
            Ok(found) => break Some(found),
            Err(false) => break None,
            Err(true) => {}
        }
        if !registered {
            for r in receivers {
                if let Ok(mut threads) = r.shared.threads.lock() {
                    threads.push(me.clone());
                }
            }
            registered = true;
        }
        for r in receivers {
            r.shared.waiting.store(true, Ordering::SeqCst);
        }
        fence(Ordering::SeqCst);
        match scan() {
            Ok(found) => break Some(found),
            Err(false) => break None,
            Err(true) => {}
        }
        match deadline {
            None => std::thread::park(),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    break None;
                }
                std::thread::park_timeout(d - now);
            }
        }
    };
    if registered {
        for r in receivers {
            if let Ok(mut threads) = r.shared.threads.lock() {
                if let Some(i) = threads.iter().position(|t| t.id() == me.id()) {
                    threads.swap_remove(i);
                }
            }
        }
    }
    out
}

/// Polls `receivers` for the next event from any of them, with its index
/// (`Ready(None)`: every sender is gone and every queue is empty).
pub fn poll_recv_any<T>(
    receivers: &[&EventReceiver<T>],
    start: usize,
    cx: &mut Context<'_>,
) -> Poll<Option<(usize, T)>> {
    let n = receivers.len();
    let mut open = false;
    for k in 0..n {
        let i = (start + k) % n;
        match receivers[i].poll_recv(cx) {
            Poll::Ready(Some(e)) => return Poll::Ready(Some((i, e))),
            Poll::Ready(None) => {}
            Poll::Pending => open = true,
        }
    }
    if open {
        Poll::Pending
    } else {
        Poll::Ready(None)
    }
}

impl<T> Clone for EventReceiver<T> {
    fn clone(&self) -> Self {
        EventReceiver {
            shared: self.shared.clone(),
        }
    }
}

impl<T> std::fmt::Debug for EventSender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSender")
            .field("queued", &self.shared.queue.len())
            .finish()
    }
}

impl<T> std::fmt::Debug for EventReceiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventReceiver")
            .field("queued", &self.shared.queue.len())
            .field("closed", &self.is_closed())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;

    #[test]
    fn recv_any_waits_on_every_channel_and_ends_when_all_close() {
        let (tx_a, rx_a) = channel::<u32>(4);
        let (tx_b, rx_b) = channel::<u32>(4);
        let consumer = std::thread::spawn(move || {
            let mut got = Vec::new();
            while let Some((i, v)) = recv_any(&[&rx_a, &rx_b], got.len(), None) {
                got.push((i, v));
            }
            got
        });
        std::thread::sleep(Duration::from_millis(20));
        tx_b.try_send(7).unwrap();
        tx_b.wake();
        std::thread::sleep(Duration::from_millis(20));
        tx_a.try_send(3).unwrap();
        tx_a.wake();
        drop(tx_a);
        std::thread::sleep(Duration::from_millis(20));
        drop(tx_b);
        assert_eq!(consumer.join().unwrap(), vec![(1, 7), (0, 3)]);
        let (_tx, rx) = channel::<u32>(1);
        let t = Instant::now();
        assert_eq!(
            recv_any(&[&rx], 0, Some(t + Duration::from_millis(10))),
            None
        );
        assert!(t.elapsed() >= Duration::from_millis(10));
    }

    #[test]
    fn blocking_consumer_is_woken_and_sees_the_end() {
        let (tx, rx) = channel::<u32>(4);
        let consumer = std::thread::spawn(move || {
            let mut got = Vec::new();
            while let Some(v) = rx.recv_until(None) {
                got.push(v);
            }
            got
        });
        for i in 0..1000u32 {
            while tx.try_send(i).is_err() {
                tx.wake();
                std::thread::yield_now();
            }
            tx.wake();
        }
        drop(tx);
        assert_eq!(consumer.join().unwrap(), (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn timeout_and_full() {
        let (tx, rx) = channel::<u8>(1);
        assert_eq!(rx.recv_timeout(Duration::from_millis(10)), None);
        assert!(tx.try_send(1).is_ok());
        assert_eq!(tx.try_send(2), Err(2));
        assert_eq!(rx.recv_timeout(Duration::from_millis(10)), Some(1));
        drop(tx);
        assert!(rx.is_closed());
        assert_eq!(rx.recv_until(None), None);
    }

    #[test]
    fn async_consumer_is_woken() {
        let (tx, rx) = channel::<u32>(8);
        let producer = std::thread::spawn(move || {
            for i in 0..100u32 {
                while tx.try_send(i).is_err() {
                    std::thread::yield_now();
                }
                tx.wake();
            }
        });
        // A minimal executor: poll with a waker that unparks this thread.
        struct Unpark(std::thread::Thread);
        impl std::task::Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = std::task::Waker::from(Arc::new(Unpark(std::thread::current())));
        let mut cx = Context::from_waker(&waker);
        let mut got = Vec::new();
        loop {
            let mut fut = std::pin::pin!(rx.recv_async());
            let v = loop {
                match fut.as_mut().poll(&mut cx) {
                    Poll::Ready(v) => break v,
                    Poll::Pending => std::thread::park_timeout(Duration::from_millis(100)),
                }
            };
            match v {
                Some(v) => got.push(v),
                None => break,
            }
        }
        producer.join().unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }
}
