//! Atomic shim: loom's model-checked atomics under `cfg(loom)`, std's otherwise.
//!
//! Every atomic the allocator touches comes from here, so the loom models in
//! `loom_tests` explore the real code, not a copy.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicU64, Ordering};
