//! Criterion benches for the ports module (filled in by its issue-2 work).
fn main() {}
