//! The `mediarelay` daemon binary; the daemon itself is
//! [`mediarelay::daemon`]. `mediarelay ctl ...` is the control CLI,
//! [`mediarelay::ctl`].

use std::process::ExitCode;

/// mimalloc as the daemon's allocator (default feature `mimalloc`): 1.3x
/// the system allocator's NG offer/answer/delete rate in the `ng_churn`
/// benchmark (docs/benchmarks.md). `--no-default-features` builds with the
/// system allocator.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The daemon takes no positional argument, so `ctl` cannot clash with
    // its flags.
    if std::env::args_os().nth(1).is_some_and(|a| a == "ctl") {
        return mediarelay::ctl::main(std::env::args_os());
    }
    mediarelay::daemon::main(std::env::args_os())
}
