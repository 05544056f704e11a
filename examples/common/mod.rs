//! Helpers shared by the media builder examples: the `--quick` flag, the
//! `## key=value` figure lines that tests/examples.rs parses, an event
//! pump that takes the events of many a media session on one thread, one
//! loopback call set up end to end, and the process's open descriptors and
//! threads.
//!
//! Each example uses a subset of this module.
#![allow(dead_code)]

use std::error::Error;
use std::fmt::Display;

/// An error of an example step, with its context in the text.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// `true` when the example runs with `--quick` (CI mode: the same steps,
/// shorter durations and smaller counts). Any other argument is refused.
pub fn quick_mode(example: &str) -> bool {
    let mut quick = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--quick" => quick = true,
            other => {
                eprintln!("{example}: unknown argument {other:?} (only --quick)");
                std::process::exit(2);
            }
        }
    }
    quick
}

/// Prints one machine-readable figure: `## key=value`. The value must
/// hold no whitespace (lists are comma-separated).
pub fn figure(key: &str, value: impl Display) {
    let v = value.to_string();
    assert!(
        !v.is_empty() && !v.contains(char::is_whitespace),
        "figure {key} has an empty value or one with whitespace: {v:?}"
    );
    println!("## {key}={v}");
}

/// Comma-separated list for a figure.
pub fn list<T: Display>(items: &[T]) -> String {
    let v: Vec<String> = items.iter().map(ToString::to_string).collect();
    v.join(",")
}

/// One loopback call between two builders of the same manager, negotiated
/// and started; the event pump (one thread taking the events of many sessions, with
/// what it saw per session), the locking helper and the frame filler are
/// the load generator's (the stress run uses them too).
#[allow(unused_imports)] // not every example uses each
pub use loadgen::stress::call::{Call, EventPump, Tally, key_of, lock, next_frame};
