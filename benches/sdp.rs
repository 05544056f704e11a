//! Criterion benches for the sdp module (filled in by its issue-2 work).
fn main() {}
