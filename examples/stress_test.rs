//! stress_test: the media builder under load, in five sub-tests on one
//! manager, over real UDP sockets on loopback:
//!
//! 1. massive connections: many calls set up at once, held, released;
//! 2. DTMF storm: pairs exchanging random keys as fast as the callers ask;
//! 3. rapid churn: builders created, offered and released in a loop;
//! 4. parallel mixed load: creating, audio, DTMF and deleting workers
//!    sharing a bounded queue of calls;
//! 5. a long-running call with audio and DTMF, its quality measured.
//!
//! ```text
//! cargo run --release --example stress_test              # the Go example's parameters (about 50 s)
//! cargo run --release --example stress_test -- --quick   # scaled down (a few seconds)
//! ```
//!
//! The run itself is the load generator's (`loadgen stress`, which adds
//! `--scale` and a JSON report): parameters follow the Go media_builder
//! `stress_test` example. Its figures counted send calls (each sent twice
//! on the wire by a bug), divided by fixed durations and printed a
//! hard-coded "100% stability"; here every figure is measured from packets
//! that crossed the sockets, over real elapsed time, and each is defined
//! where it is printed. Figures for machines are printed as
//! `## stress.<subtest>.<figure>=value` lines. Exit status 1 (and a message
//! on stderr) when a step fails, a connection fails, anything sent was not
//! received, or a descriptor or thread outlives the manager.

use std::process::ExitCode;

use loadgen::stress::{Options, run};

fn main() -> ExitCode {
    let quick = std::env::args().skip(1).any(|a| a == "--quick");
    match run(Options { quick, scale: 1.0 }) {
        Ok(outcome) if outcome.failures.is_empty() => {
            println!("## result=ok");
            ExitCode::SUCCESS
        }
        Ok(outcome) => {
            for f in &outcome.failures {
                eprintln!("stress_test: self-check failed: {f}");
            }
            println!("## result=failed");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("stress_test: step failed: {e}");
            ExitCode::FAILURE
        }
    }
}
