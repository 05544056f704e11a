//! `loadgen`: the load generator's command line.
//!
//! ```text
//! loadgen stress [--quick] [--scale F] [--json FILE]
//! ```
//!
//! Exit status 0 when the run's self-checks pass, 1 when one fails or the
//! run cannot go on, 2 for a bad command line.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Open-loop, self-audited load generator for RTP relays and the mediarelay
/// media library.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The media builder library under load: massive connections, DTMF
    /// storm, rapid churn, parallel mixed load and a long-running call,
    /// over real UDP sockets on loopback (the Go media_builder stress
    /// parameters by default, about 50 s).
    Stress {
        /// Scaled down to a few seconds: the same steps, smaller counts
        /// and shorter durations.
        #[arg(long)]
        quick: bool,
        /// Multiplies every count and duration.
        #[arg(long, default_value_t = 1.0, value_parser = positive)]
        scale: f64,
        /// Writes every figure to FILE as JSON (schema "loadgen/1").
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
}

/// A finite scale above zero.
fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number above 0")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Stress { quick, scale, json } => {
            let outcome = match loadgen::stress::run(loadgen::stress::Options { quick, scale }) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("loadgen stress: {e}");
                    return ExitCode::FAILURE;
                }
            };
            if let Some(path) = json {
                let text = match serde_json::to_string_pretty(&outcome.figures.to_json()) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("loadgen stress: JSON report: {e}");
                        return ExitCode::FAILURE;
                    }
                };
                if let Err(e) = std::fs::write(&path, text + "\n") {
                    eprintln!("loadgen stress: writing {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            if outcome.failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!("loadgen stress: {}", outcome.failures.join("; "));
                ExitCode::FAILURE
            }
        }
    }
}
