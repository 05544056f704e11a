//! Criterion benches for the rtp module (filled in by its issue-2 work).
fn main() {}
