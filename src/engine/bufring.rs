//! The shard's provided buffer ring (io_uring `IORING_REGISTER_PBUF_RING`).
//!
//! One contiguous slab of `entries` buffers of `buf_size` bytes, and a ring
//! of descriptors shared with the kernel. A multishot receive takes a buffer
//! from the ring per datagram and reports its id in the completion; the
//! shard forwards the datagram *from that buffer* and gives it back to the
//! ring when the send completes. Buffers are addressed by id only: nothing
//! is allocated, copied or reference-counted per packet.
//!
//! Ownership protocol: a buffer id is either in the ring (kernel's), or held
//! by exactly one in-flight operation of the shard. [`BufRing::recycle`]
//! returns one; [`BufRing::publish`] makes returned buffers visible to the
//! kernel with one release store of the ring tail, once per loop turn.

use std::io;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};

use io_uring::types::BufRingEntry;

/// A registered provided-buffer ring and its buffers.
pub struct BufRing {
    ring: NonNull<BufRingEntry>,
    ring_bytes: usize,
    slab: Box<[u8]>,
    entries: u16,
    /// `entries - 1`: `entries` is a power of two, so `x & mask` is
    /// `x % entries`.
    mask: u16,
    buf_size: usize,
    bgid: u16,
    /// Local tail, published to the kernel by `publish`.
    tail: u16,
}

impl std::fmt::Debug for BufRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BufRing")
            .field("entries", &self.entries)
            .field("buf_size", &self.buf_size)
            .field("bgid", &self.bgid)
            .finish()
    }
}

impl BufRing {
    /// Maps a ring of `entries` descriptors (a power of two, at most 32768)
    /// and allocates the buffers; every buffer starts in the ring.
    pub fn new(entries: u16, buf_size: usize, bgid: u16) -> io::Result<Self> {
        // `is_power_of_two` also rejects 0, so `entries - 1` cannot wrap.
        if !entries.is_power_of_two()
            || entries > 32768
            || buf_size == 0
            || buf_size > u32::MAX as usize
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "buffer ring: entries must be a power of two <= 32768, buffers 1 B..4 GiB",
            ));
        }
        let ring_bytes = usize::from(entries) * size_of::<BufRingEntry>();
        // SAFETY: anonymous private mapping with no address hint; the
        // result is checked against MAP_FAILED. mmap memory is page
        // aligned, as the kernel requires for a buffer ring.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_bytes,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_ANONYMOUS | libc::MAP_PRIVATE,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ring = NonNull::new(ptr.cast::<BufRingEntry>())
            .ok_or_else(|| io::Error::other("mmap returned null"))?;
        let mut br = BufRing {
            ring,
            ring_bytes,
            slab: vec![0u8; usize::from(entries) * buf_size].into_boxed_slice(),
            entries,
            mask: entries - 1,
            buf_size,
            bgid,
            tail: 0,
        };
        for bid in 0..entries {
            br.recycle(bid);
        }
        br.publish();
        Ok(br)
    }

    /// Registers the ring with `submitter` under this ring's group id.
    pub fn register(&self, submitter: &io_uring::Submitter<'_>) -> io::Result<()> {
        // SAFETY: the ring memory stays mapped, and the slab allocated,
        // until `self` is dropped; the owner (the shard backend) drops the
        // io_uring instance before this buffer ring (field order), so the
        // kernel never uses them after they are freed.
        unsafe {
            submitter.register_buf_ring_with_flags(
                self.ring.as_ptr() as u64,
                self.entries,
                self.bgid,
                0,
            )
        }
    }

    /// Number of buffers (a power of two).
    pub fn entries(&self) -> u16 {
        self.entries
    }

    /// Buffer group id for `RecvMsgMulti`.
    pub fn bgid(&self) -> u16 {
        self.bgid
    }

    /// The first `len` bytes of buffer `bid` (clamped to the buffer size).
    pub fn buffer(&self, bid: u16, len: usize) -> &[u8] {
        let start = usize::from(bid & self.mask) * self.buf_size;
        &self.slab[start..start + len.min(self.buf_size)]
    }

    /// Address of byte `offset` of buffer `bid`, for a send SQE.
    pub fn ptr(&self, bid: u16, offset: usize) -> *const u8 {
        let start = usize::from(bid & self.mask) * self.buf_size + offset.min(self.buf_size);
        self.slab[start..].as_ptr()
    }

    /// Gives buffer `bid` back to the ring (visible after `publish`).
    pub fn recycle(&mut self, bid: u16) {
        let bid = bid & self.mask;
        let idx = usize::from(self.tail & self.mask);
        let addr = self.slab[usize::from(bid) * self.buf_size..].as_ptr() as u64;
        // SAFETY: `idx < entries`, so the entry lies inside the mapping.
        // Entries between the kernel's head and our tail are ours to write
        // until the tail store in `publish` hands them over.
        let entry = unsafe { &mut *self.ring.as_ptr().add(idx) };
        entry.set_addr(addr);
        entry.set_len(self.buf_size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Publishes recycled buffers to the kernel.
    pub fn publish(&mut self) {
        // SAFETY: the tail field lives inside the first entry of the live
        // mapping and is 2-byte aligned; the kernel reads it concurrently,
        // which is why it is accessed only atomically.
        let tail =
            unsafe { AtomicU16::from_ptr(BufRingEntry::tail(self.ring.as_ptr()).cast_mut()) };
        tail.store(self.tail, Ordering::Release);
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping created in `new`, once.
        unsafe {
            libc::munmap(self.ring.as_ptr().cast(), self.ring_bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_must_be_powers_of_two() {
        for bad in [0u16, 3, 100, 4095] {
            assert!(BufRing::new(bad, 64, 0).is_err(), "{bad} accepted");
        }
        assert!(BufRing::new(8, 0, 0).is_err());
        let b = BufRing::new(8, 64, 0).unwrap();
        assert_eq!(b.entries(), 8);
    }

    #[test]
    fn buffer_ids_wrap_by_mask() {
        let mut b = BufRing::new(8, 64, 0).unwrap();
        assert_eq!(b.ptr(9, 0), b.ptr(1, 0));
        assert_eq!(b.buffer(15, 64).as_ptr(), b.ptr(7, 0));
        assert_eq!(b.ptr(2, 10) as usize - b.ptr(2, 0) as usize, 10);
        // The tail wraps past u16::MAX with the mask, as the kernel expects.
        let start = b.tail;
        for i in 0..70_000u32 {
            b.recycle((i % 8) as u16);
        }
        b.publish();
        assert_eq!(b.tail, start.wrapping_add((70_000 % 65_536) as u16));
        // The last entry written sits at slot (tail - 1) & mask and names
        // the last buffer recycled, at its own address.
        let slot = usize::from(b.tail.wrapping_sub(1) & (b.entries - 1));
        // SAFETY: test-only read of an entry inside the live mapping
        // (slot < entries); nothing else touches the ring here.
        let entry = unsafe { &*b.ring.as_ptr().add(slot) };
        assert_eq!(entry.bid(), 7);
        assert_eq!(entry.addr(), b.ptr(7, 0) as u64);
    }
}
