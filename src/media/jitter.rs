//! Adaptive jitter buffer (placeholder, filled in next).
