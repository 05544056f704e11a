//! The `mediarelay` daemon binary; the daemon itself is
//! [`mediarelay::daemon`].

use std::process::ExitCode;

/// mimalloc as the daemon's allocator (default feature `mimalloc`): 1.3x
/// the system allocator's NG offer/answer/delete rate in the `ng_churn`
/// benchmark (docs/benchmarks.md). `--no-default-features` builds with the
/// system allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    mediarelay::daemon::main(std::env::args_os())
}
