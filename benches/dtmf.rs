//! Criterion benches for the dtmf module (filled in by its issue-2 work).
fn main() {}
