//! In-memory network on a virtual clock (placeholder, filled in next).
