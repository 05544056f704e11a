//! Shared by the examples that report figures with their meaning and
//! end in self-checks: a ptime pacer and the report.
#![allow(dead_code)]

use std::fmt::Display;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Packetisation time the examples pace their audio at.
const PTIME: Duration = Duration::from_millis(20);

/// Sleeps to the next multiple of the ptime since it was made.
pub struct Pacer {
    t0: Instant,
    k: u32,
}

impl Pacer {
    pub fn new() -> Pacer {
        Pacer {
            t0: Instant::now(),
            k: 0,
        }
    }

    pub fn tick(&mut self) {
        self.k += 1;
        let next = self.t0 + PTIME * self.k;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
}

/// Figures (`## key=value`, each with its meaning) and self-checks.
#[derive(Default)]
pub struct Report {
    figures: Vec<(String, String, String)>,
    checks: Vec<(String, bool)>,
}

impl Report {
    pub fn figure(&mut self, key: &str, value: impl Display, meaning: &str) {
        self.figures
            .push((key.to_owned(), value.to_string(), meaning.to_owned()));
    }

    pub fn check(&mut self, what: &str, ok: bool) {
        self.checks.push((what.to_owned(), ok));
    }

    pub fn finish(self, name: &str) -> ExitCode {
        println!("\nFigures:");
        for (k, v, meaning) in &self.figures {
            println!("  {k}: {meaning}");
            println!("## {k}={v}");
        }
        println!("\nSelf-checks:");
        let mut failed = Vec::new();
        for (what, ok) in &self.checks {
            println!("  [{}] {what}", if *ok { "ok" } else { "FAILED" });
            if !ok {
                failed.push(what.as_str());
            }
        }
        // The last line, as in the other examples: what scripts check.
        if failed.is_empty() {
            println!("## result=ok");
            return ExitCode::SUCCESS;
        }
        println!("## result=failed");
        eprintln!("{name}: self-check failed: {}", failed.join("; "));
        ExitCode::FAILURE
    }
}
