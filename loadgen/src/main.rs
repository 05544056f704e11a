//! `loadgen`: the load generator's command line.
//!
//! ```text
//! loadgen relay  [--ng HOST:PORT] [--calls N] [--pps N] [--duration S] [--find-max] ...
//! loadgen stress [--quick] [--scale F] [--json FILE]
//! ```
//!
//! Exit status 0 when the run's self-checks pass, 1 when one fails or the
//! run cannot go on, 2 for a bad command line, 3 when the generator itself
//! could not keep its schedule (the figures are not to be trusted).
#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use loadgen::figures::Figures;
use loadgen::relay::{self, Options, Target, Trial};
use mediarelay::engine::IoBackend;

/// The embedded relay runs in this binary (a child process): the daemon's
/// allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit status of a run whose generator fell behind its schedule.
const EXIT_INVALID: u8 = 3;

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
    /// Calls through an RTP relay: set up over NG, RTP streamed both ways
    /// at a fixed rate, every packet accounted for, calls deleted and the
    /// relay checked to hold none. Without --ng, an embedded mediarelay on
    /// loopback.
    Relay(RelayArgs),
    /// NG call set-up and teardown (offer, answer, delete) at a target
    /// rate or flat out: latency per command and from offer to the first
    /// relayed packet.
    Setup(SetupArgs),
    /// mediarelay and rtpengine side by side on loopback (same ports,
    /// threads and load, alternating rounds): a fixed-load relay run, a
    /// --find-max search and a set-up run against each; medians and
    /// ratios. Needs `rtpengine` (Debian: apt-get install rtpengine-daemon).
    Compare(CompareArgs),
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
    /// The kernel's floor on this host: the least CPU one UDP datagram
    /// costs, sent and received over loopback on one socket pair in full
    /// batches with no pacing (one thread, each I/O backend). A load
    /// generator or relay using UDP sockets can expect no better per
    /// datagram; read their figures against it.
    Floor(FloorArgs),
    /// Runs the embedded relay (mediarelay's daemon with these flags); the
    /// `relay` subcommand starts it in a child process.
    #[command(name = "embedded-relay", hide = true)]
    EmbeddedRelay {
        /// The daemon's flags.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

/// `loadgen floor`'s options.
#[derive(Debug, Clone, Args)]
struct FloorArgs {
    /// Datagrams each run sends (and must receive; about 15 s in all by
    /// default).
    #[arg(long, default_value_t = 500_000, value_parser = clap::value_parser!(u64).range(1..))]
    datagrams: u64,
    /// Datagrams queued per loop turn, one run each (comma-separated,
    /// 1-128).
    #[arg(long, default_value = "1,16,64", value_delimiter = ',', value_parser = clap::value_parser!(u64).range(1..=128))]
    batch: Vec<u64>,
    /// Datagram size in bytes (UDP payload; 172 is an RTP packet of 20 ms
    /// of G.711).
    #[arg(long, default_value_t = 172, value_parser = clap::value_parser!(u64).range(1..=1472))]
    size: u64,
    /// I/O backend: auto, uring or epoll; by default each one this host
    /// has.
    #[arg(long)]
    backend: Option<IoBackend>,
    /// Writes every figure to FILE as JSON (schema "loadgen/1").
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// The relay under test.
#[derive(Debug, Clone, Args)]
struct TargetArgs {
    /// The relay's NG control address (e.g. rtpengine's 127.0.0.1:2223).
    /// Without it, an embedded mediarelay is started on loopback.
    #[arg(long, value_name = "HOST:PORT", value_parser = resolve)]
    ng: Option<SocketAddr>,
    /// The relay's process id: its CPU time per relayed packet is reported
    /// (known without it for the embedded relay).
    #[arg(long, value_name = "PID")]
    relay_pid: Option<u32>,
    /// Embedded relay: shards (default: one per CPU).
    #[arg(long)]
    relay_threads: Option<usize>,
    /// Embedded relay: port range.
    #[arg(long, default_value = "30000-44999", value_parser = port_range)]
    relay_ports: (u16, u16),
    /// Embedded relay: I/O backend (auto, uring, epoll).
    #[arg(long)]
    relay_backend: Option<String>,
    /// Embedded relay: --batch-wait-us (coalesced wake-ups, µs).
    #[arg(long, value_name = "MICROSECONDS")]
    relay_batch_wait_us: Option<u32>,
    /// Embedded relay: --fast-path (auto, ebpf, off) [default: the relay's, auto]
    #[arg(long, value_name = "MODE")]
    relay_fast_path: Option<String>,
}

/// Where the relay is and what load to offer.
#[derive(Debug, Args)]
struct RelayArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// No relay: each call's two sockets stream straight to each other
    /// (same generator, schedule and accounting). The machine's cost of
    /// the load itself, the baseline a relay's own cost is measured
    /// against (`compare` runs it every round)
    #[arg(long, conflicts_with_all = ["ng", "relay_pid", "relay_threads", "relay_backend", "relay_batch_wait_us", "relay_fast_path"])]
    direct: bool,
    /// Concurrent calls.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    calls: u32,
    /// RTP packets per second per direction per call.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pps: u32,
    /// Seconds of streaming (per trial with --find-max).
    #[arg(long, default_value_t = 10.0, value_parser = positive)]
    duration: f64,
    /// Measure CPU only from this many seconds into the streaming, per packet received after it (the relay's steady state, e.g. once the kernel fast path forwards); loss and latency still cover the whole run
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Milliseconds to keep receiving after the last send.
    #[arg(long, default_value_t = 500)]
    drain_ms: u64,
    /// Datagram size in bytes, RTP header included (172: G.711, 20 ms).
    #[arg(long, default_value_t = 172)]
    size: usize,
    /// Generator threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    threads: u32,
    /// The generator's I/O backend: auto, uring or epoll.
    #[arg(long, default_value = "auto")]
    backend: IoBackend,
    /// Schedule slot in microseconds: streams are spread over the packet
    /// period in slots of this length, a slot's packets leave together and
    /// the generator wakes once per slot. Longer slots cost the generator
    /// less CPU and make the traffic burstier.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=20_000))]
    slot_us: u64,
    /// Send from unconnected sockets, with an address per packet, and
    /// accept relayed packets from any source (for a relay that does not
    /// send from the port it receives on). By default each socket is
    /// connected to its relay address, which saves the kernel a route
    /// lookup per send.
    #[arg(long)]
    unconnected: bool,
    /// Address the generator's sockets bind and offer in SDP.
    #[arg(long, default_value = "127.0.0.1")]
    local_ip: IpAddr,
    /// The generator's port range (two even ports per call).
    #[arg(long, default_value = "10000-29999", value_parser = port_range)]
    local_ports: (u16, u16),
    /// Loss above this percentage fails the run.
    #[arg(long, default_value_t = 0.1, value_parser = percentage)]
    max_loss: f64,
    /// p99 latency (from the scheduled send time) above this many
    /// milliseconds fails the run.
    #[arg(long, value_name = "MS")]
    max_p99: Option<f64>,
    /// Generator p99 send lag above this many microseconds makes the run
    /// invalid.
    #[arg(long, default_value_t = 1000)]
    max_send_lag_us: u64,
    /// Search the highest load: a binary search over calls between
    /// --min-calls and --max-calls, one trial of --duration each.
    #[arg(long)]
    find_max: bool,
    /// Lowest calls the search tries.
    #[arg(long, default_value_t = 1)]
    min_calls: u32,
    /// Highest calls the search tries (default: --calls).
    #[arg(long)]
    max_calls: Option<u32>,
    /// The search stops when its bounds are this many calls apart.
    #[arg(long, default_value_t = 50)]
    precision: u32,
    /// Report files: PREFIX.json (every figure), PREFIX.jsonl (one line
    /// per second), PREFIX.svg (plots).
    #[arg(long, default_value = "target/loadgen/relay")]
    report: PathBuf,
    /// Write no report files (but those named by --json, --jsonl, --svg).
    #[arg(long)]
    no_report: bool,
    /// Every figure as JSON to FILE (instead of PREFIX.json).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// One JSON line per second to FILE (instead of PREFIX.jsonl).
    #[arg(long, value_name = "FILE")]
    jsonl: Option<PathBuf>,
    /// The plots as SVG to FILE (instead of PREFIX.svg).
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// No progress bar.
    #[arg(long)]
    quiet: bool,
}

/// Set-up load.
#[derive(Debug, Args)]
struct SetupArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Calls to set up and tear down.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    calls: u64,
    /// Calls per second (0: flat out).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Workers, each with its own NG socket.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Skip the offer-to-first-relayed-packet measurement.
    #[arg(long)]
    no_first_packet: bool,
    /// Address the media sockets bind.
    #[arg(long, default_value = "127.0.0.1")]
    local_ip: IpAddr,
    /// Writes every figure to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// What to compare.
#[derive(Debug, Args)]
struct CompareArgs {
    /// Calls of the fixed-load run.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    calls: u32,
    /// RTP packets per second per direction per call.
    #[arg(long, default_value_t = 50)]
    pps: u32,
    /// Seconds of streaming per run (and per search trial).
    #[arg(long, default_value_t = 5.0, value_parser = positive)]
    duration: f64,
    /// Measure CPU only from this many seconds into each fixed-load run (see `relay --warmup`)
    #[arg(long, default_value_t = 0.0)]
    warmup: f64,
    /// Rounds; the table shows medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Relay threads, the same for both.
    #[arg(long, default_value_t = 1)]
    relay_threads: usize,
    /// The embedded mediarelay's --batch-wait-us (coalesced wake-ups, µs); rtpengine has none
    #[arg(long, value_name = "MICROSECONDS")]
    relay_batch_wait_us: Option<u32>,
    /// The embedded mediarelay's --fast-path (auto, ebpf, off); rtpengine runs in userspace (--table=-1) [default: the relay's, auto]
    #[arg(long, value_name = "MODE")]
    relay_fast_path: Option<String>,
    /// Relay port range, the same for both.
    #[arg(long, default_value = "30000-44999", value_parser = port_range)]
    relay_ports: (u16, u16),
    /// The generator's local UDP ports (it binds even ones), apart from
    /// --relay-ports [default: 10000-29999 where that is apart from
    /// --relay-ports, else the ports just above (or below) them]
    #[arg(long, value_parser = port_range)]
    local_ports: Option<(u16, u16)>,
    /// Highest calls the --find-max search tries.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
    max_calls: u32,
    /// The search stops when its bounds are this many calls apart.
    #[arg(long, default_value_t = 100)]
    precision: u32,
    /// Skip the --find-max search.
    #[arg(long)]
    no_find_max: bool,
    /// Skip the no-relay baseline run of each round (the same load streamed straight between each call's sockets, which the row "all threads' CPU over the no-relay baseline" needs)
    #[arg(long)]
    no_baseline: bool,
    /// Loss above this percentage fails a search trial.
    #[arg(long, default_value_t = 0.1, value_parser = percentage)]
    max_loss: f64,
    /// Calls of the set-up run.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    setup_calls: u64,
    /// The rtpengine binary.
    #[arg(long, default_value = "rtpengine")]
    rtpengine: PathBuf,
    /// Writes the medians and ratios to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// `HOST:PORT`, the host a name or an address (the first address it
/// resolves to).
fn resolve(s: &str) -> Result<SocketAddr, String> {
    use std::net::ToSocketAddrs;
    s.to_socket_addrs()
        .map_err(|e| format!("{s:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{s:?} resolves to no address"))
}

/// A percentage, 0 to 100.
fn percentage(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a percentage from 0 to 100")),
    }
}

/// A finite number above zero.
fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("{s:?} is not a number above 0")),
    }
}

/// `MIN-MAX` ports.
fn port_range(s: &str) -> Result<(u16, u16), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not MIN-MAX"))?;
    let (a, b) = (
        a.trim().parse::<u16>().map_err(|e| format!("{a:?}: {e}"))?,
        b.trim().parse::<u16>().map_err(|e| format!("{b:?}: {e}"))?,
    );
    if a == 0 || a > b {
        return Err(format!("{s:?} is not a port range (1 <= MIN <= MAX)"));
    }
    Ok((a, b))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::EmbeddedRelay { args } => {
            exit_with_parent();
            mediarelay::daemon::main(std::iter::once(OsString::from("mediarelay")).chain(args))
        }
        Command::Relay(a) => exit("relay", run_relay(&a)),
        Command::Setup(a) => exit("setup", run_setup(&a)),
        Command::Compare(a) => exit("compare", run_compare(&a)),
        Command::Stress { quick, scale, json } => exit("stress", run_stress(quick, scale, json)),
        Command::Floor(a) => exit("floor", run_floor(&a)),
    }
}

fn run_floor(a: &FloorArgs) -> Result<ExitCode, String> {
    let backends = match a.backend {
        Some(b) => vec![b],
        None => match mediarelay::engine::uring_support() {
            mediarelay::engine::UringSupport::Available => vec![IoBackend::Uring, IoBackend::Epoll],
            mediarelay::engine::UringSupport::Unavailable(why) => {
                eprintln!("loadgen floor: io_uring unavailable ({why}): epoll only");
                vec![IoBackend::Epoll]
            }
        },
    };
    let o = loadgen::floor::FloorOptions {
        datagrams: a.datagrams,
        batches: a.batch.iter().map(|&b| b as usize).collect(),
        size: a.size as usize,
        backends,
    };
    let runs = loadgen::floor::run(&o)?;
    loadgen::floor::print(&runs, &o);
    if let Some(path) = &a.json {
        let mut figures = Figures::quiet();
        loadgen::floor::put_figures(&runs, &o, &mut figures);
        write_json(path, &figures)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The embedded relay is a child of the loadgen run that started it: when
/// that run ends without stopping it (killed), the relay exits too instead
/// of holding its port range.
fn exit_with_parent() {
    // The pid of the run that started us, as it said; a parent that died
    // before this line shows as a different pid at once.
    let parent = std::env::var(loadgen::relay::embedded::PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or_else(std::os::unix::process::parent_id);
    let _ = std::thread::Builder::new()
        .name("lg-parent-watch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_millis(250));
                if std::os::unix::process::parent_id() != parent {
                    std::process::exit(1);
                }
            }
        });
}

/// The exit status of a subcommand: its own, or 1 with its error on
/// stderr when it could not run to the end.
/// Exit status of a bad command line.
const EXIT_USAGE: u8 = 2;

/// A command line that cannot run (status 2, as clap's own refusals).
fn usage(command: &str, why: &str) -> ExitCode {
    eprintln!("loadgen {command}: {why}");
    ExitCode::from(EXIT_USAGE)
}

/// Why the generator's `local` ports cannot share with the relay's
/// `relay` ports, if they overlap.
fn ports_overlap(local: (u16, u16), relay: (u16, u16)) -> Option<String> {
    (local.1 >= relay.0 && local.0 <= relay.1).then(|| {
        format!(
            "--local-ports {}-{} overlaps --relay-ports {}-{}: the generator and the relay would take each other's ports",
            local.0, local.1, relay.0, relay.1
        )
    })
}

fn exit(command: &str, r: Result<ExitCode, String>) -> ExitCode {
    r.unwrap_or_else(|e| {
        eprintln!("loadgen {command}: {e}");
        ExitCode::FAILURE
    })
}

/// A run's verdict: `result: pass`, or its failures (status 1).
fn verdict(failures: &[String]) -> ExitCode {
    if failures.is_empty() {
        println!("result: pass");
        ExitCode::SUCCESS
    } else {
        println!("result: FAIL: {}", failures.join("; "));
        ExitCode::FAILURE
    }
}

fn run_stress(quick: bool, scale: f64, json: Option<PathBuf>) -> Result<ExitCode, String> {
    let outcome = loadgen::stress::run(loadgen::stress::Options { quick, scale })
        .map_err(|e| e.to_string())?;
    if let Some(path) = json {
        write_json(&path, &outcome.figures)?;
    }
    if outcome.failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("loadgen stress: {}", outcome.failures.join("; "));
        Ok(ExitCode::FAILURE)
    }
}

fn write_json(path: &Path, figures: &Figures) -> Result<(), String> {
    let text = serde_json::to_string_pretty(&figures.to_json())
        .map_err(|e| format!("JSON report: {e}"))?;
    write_file(path, &(text + "\n"))
}

fn write_file(path: &Path, text: &str) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    }
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn options(a: &RelayArgs) -> Options {
    Options {
        ng: a.target.ng,
        direct: a.direct,
        relay_pid: a.target.relay_pid,
        calls: a.calls,
        pps: a.pps,
        duration: Duration::from_secs_f64(a.duration),
        warmup: Duration::from_secs_f64(a.warmup),
        drain: Duration::from_millis(a.drain_ms),
        threads: a.threads as usize,
        backend: a.backend,
        local_ip: a.local_ip,
        local_ports: a.local_ports,
        packet_len: a.size,
        max_loss_pct: a.max_loss,
        max_p99: a.max_p99.map(|ms| Duration::from_secs_f64(ms / 1000.0)),
        max_send_lag: Duration::from_micros(a.max_send_lag_us),
        embedded: embedded_options(&a.target),
        exe: None,
        progress: !a.quiet,
        slot: Duration::from_micros(a.slot_us),
        connect: !a.unconnected,
    }
}

fn embedded_options(t: &TargetArgs) -> relay::embedded::EmbeddedOptions {
    relay::embedded::EmbeddedOptions {
        port_min: t.relay_ports.0,
        port_max: t.relay_ports.1,
        threads: t.relay_threads,
        io_backend: t.relay_backend.clone(),
        batch_wait_us: t.relay_batch_wait_us,
        fast_path: t.relay_fast_path.clone(),
    }
}

fn run_relay(a: &RelayArgs) -> Result<ExitCode, String> {
    if a.warmup < 0.0 || a.warmup >= a.duration {
        return Ok(usage(
            "relay",
            &format!(
                "--warmup {} must be at least 0 and shorter than --duration {}",
                a.warmup, a.duration
            ),
        ));
    }
    // The embedded relay binds its ports on this host, as the generator
    // does.
    if a.target.ng.is_none() && !a.direct {
        if let Some(why) = ports_overlap(a.local_ports, a.target.relay_ports) {
            return Ok(usage("relay", &why));
        }
    }
    let o = options(a);
    let mut target = Target::open(&o)?;
    let mut figures = Figures::quiet();
    figures.put("relay.target", target.name.as_str());
    let (trial, failures, ramp) = if a.find_max {
        let hi = a.max_calls.unwrap_or(a.calls);
        if a.min_calls > hi {
            return Ok(usage(
                "relay",
                &format!(
                    "--min-calls {} is above the search's highest load {hi} (--max-calls, else --calls)",
                    a.min_calls
                ),
            ));
        }
        println!(
            "loadgen relay --find-max: {} calls at most, trials of {:.1} s, through {}",
            hi, a.duration, target.name
        );
        println!(
            "{:>7} {:>10} {:>9} {:>9} {:>9}  result",
            "calls", "loss %", "p99 us", "relay ns", "cpu %"
        );
        let search = relay::find_max(&o, &mut target, a.min_calls, hi, a.precision, |t, f| {
            println!(
                "{:>7} {:>10.4} {:>9} {:>9} {:>9}  {}",
                t.calls,
                t.totals.loss_pct(),
                t.latency.from_scheduled().p99,
                t.relay_ns_per_pkt()
                    .map_or("-".into(), |v| format!("{v:.0}")),
                t.relay_cpu_pct().map_or("-".into(), |v| format!("{v:.1}")),
                if f.is_empty() {
                    "pass".to_string()
                } else {
                    format!("FAIL: {}", f.join("; "))
                }
            );
        });
        let search = search?;
        println!(
            "no-drop rate (NDR): {} calls; partial-drop rate (PDR, loss <= {}%{}): {} calls",
            search.ndr_calls.map_or("none".into(), |c| c.to_string()),
            a.max_loss,
            a.max_p99
                .map_or(String::new(), |ms| format!(", p99 <= {ms} ms")),
            search.pdr_calls.map_or("none".into(), |c| c.to_string()),
        );
        if let Some(ms) = a.max_p99 {
            println!(
                "highest load with p99 latency <= {ms} ms: {} calls",
                search
                    .latency_calls
                    .map_or("none".into(), |c| c.to_string())
            );
        }
        figures.put("relay.find_max.latency_calls", search.latency_calls);
        figures.put("relay.find_max.ndr_calls", search.ndr_calls);
        figures.put("relay.find_max.pdr_calls", search.pdr_calls);
        figures.put(
            "relay.find_max.ndr_pps",
            search
                .ndr_calls
                .map(|c| u64::from(c) * 2 * u64::from(a.pps)),
        );
        figures.put(
            "relay.find_max.pdr_pps",
            search
                .pdr_calls
                .map(|c| u64::from(c) * 2 * u64::from(a.pps)),
        );
        let ramp: Vec<_> = search
            .trials
            .iter()
            .map(|(t, _)| t.ramp_point(&o))
            .collect();
        figures.put(
            "relay.find_max.trials",
            serde_json::Value::Array(
                ramp.iter()
                    .map(|p| {
                        serde_json::json!({
                            "calls": p.calls, "loss_pct": p.loss_pct, "p99_us": p.p99_us,
                            "relay_cpu_pct": p.relay_cpu_pct, "pass": p.pass,
                        })
                    })
                    .collect(),
            ),
        );
        // The report's detail is the highest passing trial's (or the last).
        let mut trials = search.trials;
        let pick = trials
            .iter()
            .enumerate()
            .filter(|(_, (t, f))| f.is_empty() && Some(t.calls) == search.pdr_calls)
            .map(|(i, _)| i)
            .next_back()
            .unwrap_or(trials.len().saturating_sub(1));
        let (t, _) = trials.swap_remove(pick);
        // A search passes when it found a passing load at all.
        let failures = if search.pdr_calls.is_some() {
            Vec::new()
        } else {
            vec!["no load met the bounds".to_string()]
        };
        (t, failures, ramp)
    } else {
        let t = relay::trial(&o, &mut target, a.calls)?;
        let f = t.failures(&o);
        (t, f, Vec::new())
    };
    trial.put_figures(&mut figures, "relay", &o);
    print_summary(&target, &trial, &o);
    let pick = |explicit: &Option<PathBuf>, ext: &str| {
        explicit
            .clone()
            .or_else(|| (!a.no_report).then(|| with_ext(&a.report, ext)))
    };
    let files = ReportFiles {
        json: pick(&a.json, "json"),
        jsonl: pick(&a.jsonl, "jsonl"),
        svg: pick(&a.svg, "svg"),
    };
    write_reports(&files, &figures, &trial, &ramp, &target, &o)?;
    let status = verdict(&failures);
    if !failures.is_empty() && matches!(trial.validity, loadgen::audit::Validity::Invalid(_)) {
        return Ok(ExitCode::from(EXIT_INVALID));
    }
    Ok(status)
}

fn run_compare(a: &CompareArgs) -> Result<ExitCode, String> {
    if a.warmup < 0.0 || a.warmup >= a.duration {
        return Ok(usage(
            "compare",
            &format!(
                "--warmup {} must be at least 0 and shorter than --duration {}",
                a.warmup, a.duration
            ),
        ));
    }
    let most_calls = if a.no_find_max {
        a.calls
    } else {
        a.calls.max(a.max_calls)
    };
    let local_ports = match a.local_ports {
        Some(l) => {
            if let Some(why) = ports_overlap(l, a.relay_ports) {
                return Ok(usage("compare", &why));
            }
            if u32::from(l.1 - l.0) + 1 < most_calls.saturating_mul(4) {
                return Ok(usage(
                    "compare",
                    &format!(
                        "--local-ports {}-{} hold fewer than the {} ports {most_calls} calls take (two sockets a call, on even ports)",
                        l.0,
                        l.1,
                        most_calls.saturating_mul(4)
                    ),
                ));
            }
            l
        }
        None => match loadgen::compare::generator_ports(a.relay_ports, most_calls) {
            Ok(l) => l,
            Err(why) => return Ok(usage("compare", &why)),
        },
    };
    let found = std::process::Command::new(&a.rtpengine)
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        return Err(format!(
            "{} not found (Debian: apt-get install rtpengine-daemon, or --rtpengine PATH)",
            a.rtpengine.display()
        ));
    }
    let o = loadgen::compare::CompareOptions {
        relay: Options {
            calls: a.calls,
            local_ports,
            pps: a.pps,
            duration: Duration::from_secs_f64(a.duration),
            warmup: Duration::from_secs_f64(a.warmup),
            max_loss_pct: a.max_loss,
            embedded: relay::embedded::EmbeddedOptions {
                port_min: a.relay_ports.0,
                port_max: a.relay_ports.1,
                threads: Some(a.relay_threads),
                io_backend: None,
                batch_wait_us: a.relay_batch_wait_us,
                fast_path: a.relay_fast_path.clone(),
            },
            progress: false,
            ..Options::default()
        },
        setup: loadgen::setup::SetupOptions {
            calls: a.setup_calls,
            rate: 0.0,
            concurrency: 4,
            first_packet: true,
            local_ip: std::net::Ipv4Addr::LOCALHOST.into(),
        },
        rounds: a.rounds.max(1),
        find_max: (!a.no_find_max).then_some(a.max_calls),
        precision: a.precision,
        rtpengine: a.rtpengine.clone(),
        baseline: !a.no_baseline,
    };
    let c = loadgen::compare::run(&o)?;
    println!("{}", c.table);
    if let Some(path) = &a.json {
        write_json(path, &c.figures)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn setup_options(a: &SetupArgs) -> loadgen::setup::SetupOptions {
    loadgen::setup::SetupOptions {
        calls: a.calls,
        rate: a.rate,
        concurrency: a.concurrency.max(1),
        first_packet: !a.no_first_packet,
        local_ip: a.local_ip,
    }
}

fn open_target(t: &TargetArgs) -> Result<Target, String> {
    Target::open(&Options {
        ng: t.ng,
        relay_pid: t.relay_pid,
        embedded: embedded_options(t),
        ..Options::default()
    })
}

fn run_setup(a: &SetupArgs) -> Result<ExitCode, String> {
    let target = open_target(&a.target)?;
    let o = setup_options(a);
    let rep = loadgen::setup::run(&o, &target)?;
    let mut figures = Figures::quiet();
    figures.put("setup.target", target.name.as_str());
    rep.put_figures(&mut figures, &o);
    print_setup(&target, &rep);
    if let Some(path) = &a.json {
        write_json(path, &figures)?;
    }
    Ok(verdict(&rep.failures()))
}

fn print_setup(target: &Target, r: &loadgen::setup::SetupReport) {
    println!(
        "loadgen setup: {} calls set up and torn down ({} failed) through {} in {:.2} s: {:.0} setups/s",
        r.completed,
        r.failed,
        target.name,
        r.elapsed.as_secs_f64(),
        r.setups_per_s()
    );
    for (name, h) in [
        ("offer", &r.offer),
        ("answer", &r.answer),
        ("delete", &r.delete),
        ("offer to first relayed packet", &r.first_packet),
    ] {
        let p = loadgen::latency::Percentiles::of(h);
        println!(
            "  {name:<30} us p50 {} p90 {} p99 {} p99.9 {} max {}",
            p.p50, p.p90, p.p99, p.p999, p.max
        );
    }
    println!(
        "  relay CPU {} us per call (set-up, first packet, teardown)",
        r.relay_cpu_us_per_call()
            .map_or("-".into(), |v| format!("{v:.1}"))
    );
    println!(
        "  after the run: {} of our calls listed, relay sessions {}",
        r.leftover_calls,
        r.sessions_after
            .map_or("not reported".into(), |n| n.to_string())
    );
}

fn print_summary(target: &Target, t: &Trial, o: &Options) {
    let s = &t.totals;
    let ng = target.ng.to_string();
    let via = if target.is_direct() || target.name.contains(&ng) {
        target.name.clone()
    } else {
        format!("{} (NG {ng})", target.name)
    };
    println!(
        "loadgen relay: {} calls ({} up) through {via}, {} pps each way, {:.1} s",
        t.calls,
        t.calls_up,
        o.pps,
        o.duration.as_secs_f64()
    );
    println!(
        "  packets   sent {} received {} lost {} ({:.4}%) late {} duplicates {} reordered {} max gap {} bursts {}",
        s.sent,
        s.received,
        s.lost,
        s.loss_pct(),
        s.late,
        s.duplicates,
        s.reordered,
        s.max_gap,
        s.bursts
    );
    let l = t.latency.from_scheduled();
    let ls = t.latency.from_sent();
    println!(
        "  latency   us from scheduled: p50 {} p90 {} p99 {} p99.9 {} p99.99 {} max {}",
        l.p50, l.p90, l.p99, l.p999, l.p9999, l.max
    );
    println!(
        "            us from sent:      p50 {} p90 {} p99 {} p99.9 {} p99.99 {} max {}",
        ls.p50, ls.p90, ls.p99, ls.p999, ls.p9999, ls.max
    );
    let mut mos = t.mos.clone();
    mos.sort_by(f64::total_cmp);
    println!(
        "  streams   jitter ms p50 {:.3} p99 {:.3} max {:.3}; MOS estimate min {} p50 {}",
        t.jitter_us.value_at_quantile(0.5) as f64 / 1000.0,
        t.jitter_us.value_at_quantile(0.99) as f64 / 1000.0,
        t.jitter_us.max() as f64 / 1000.0,
        mos.first().map_or("-".into(), |m| format!("{m:.2}")),
        mos.get(mos.len() / 2)
            .map_or("-".into(), |m| format!("{m:.2}")),
    );
    let p = |h: &hdrhistogram::Histogram<u64>| {
        format!(
            "p50 {} p99 {}",
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99)
        )
    };
    if !target.is_direct() {
        println!(
            "  NG        us offer {}, answer {}, delete {}; after delete: {} of our calls listed, relay sessions {}",
            p(&t.commands.offer),
            p(&t.commands.answer),
            p(&t.commands.delete),
            t.leftover_calls.len(),
            t.sessions_after
                .map_or("not reported".into(), |n| n.to_string())
        );
    }
    let softirq = t
        .softirq_share
        .map_or("-".into(), |v| format!("{:.1}%", v * 100.0));
    let system = t
        .system_ns_per_pkt()
        .map_or("-".into(), |v| format!("{v:.0}"));
    if target.is_direct() {
        println!(
            "  system    all threads {system} ns CPU per packet received (no relay), softirq {softirq} of all CPU"
        );
    } else {
        // The relay's time comes from /proc in 10 ms clock ticks.
        let under_a_tick = if t.relay_cpu.is_some_and(|c| c.is_zero()) {
            " (under one 10 ms clock tick over the window)"
        } else {
            ""
        };
        let window = t.cpu_window.map_or(String::new(), |(w, _, _)| {
            format!(", over the last {:.1} s (after --warmup)", w.as_secs_f64())
        });
        println!(
            "  relay     CPU {} ns per relayed packet{under_a_tick} ({} of a core){window}, softirq {softirq} of all CPU",
            t.relay_ns_per_pkt()
                .map_or("-".into(), |v| format!("{v:.0}")),
            t.relay_cpu_pct().map_or("-".into(), |v| format!("{v:.1}%")),
        );
        println!(
            "  system    all threads {system} ns CPU per relayed packet, {} without the generator's",
            t.system_less_generator_ns_per_pkt()
                .map_or("- (relay in this process)".into(), |v| format!("{v:.0}")),
        );
        match t.fast_path {
            Some(k) if k.packets == 0 && k.streams_at_end == 0 => println!(
                "  fast path none: no stream was forwarded in the kernel (the fast path is off or not allowed here, or every stream was still in its learning window)"
            ),
            Some(k) => println!(
                "  fast path {} packets forwarded in the kernel ({} of those relayed), {} streams there when the streaming ended",
                k.packets,
                t.fast_path_share_pct()
                    .map_or("-".into(), |v| format!("{v:.1}%")),
                k.streams_at_end,
            ),
            None => {}
        }
    }
    let a = t.audit.report();
    println!(
        "  generator {} ({}), CPU {} ns per packet sent or received, send lag us p50 {} p99 {} max {}, missed ticks {}, ENOBUFS {} EAGAIN {}, UDP rcvbuf errors {}",
        match &t.validity {
            loadgen::audit::Validity::Valid => "valid".to_string(),
            loadgen::audit::Validity::Invalid(w) => format!("INVALID: {w}"),
        },
        t.backend,
        t.generator_ns_per_pkt()
            .map_or("-".into(), |v| format!("{v:.0}")),
        a.send_lag_us.p50,
        a.send_lag_us.p99,
        a.send_lag_us.max,
        a.missed_ticks,
        a.enobufs,
        a.eagain,
        t.udp.map_or("-".into(), |u| u.rcvbuf_errors.to_string()),
    );
}

fn with_ext(prefix: &Path, ext: &str) -> PathBuf {
    let mut s = prefix.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}

/// Where the report files go (`None`: not written).
struct ReportFiles {
    json: Option<PathBuf>,
    jsonl: Option<PathBuf>,
    svg: Option<PathBuf>,
}

fn write_reports(
    files: &ReportFiles,
    figures: &Figures,
    t: &Trial,
    ramp: &[loadgen::plot::RampPoint],
    target: &Target,
    o: &Options,
) -> Result<(), String> {
    let mut written = Vec::new();
    if let Some(json) = &files.json {
        write_json(json, figures)?;
        written.push(json.display().to_string());
    }
    let rows = t.second_rows();
    let mut jsonl = String::new();
    for (r, second) in rows.iter().zip(&t.seconds) {
        let p = loadgen::latency::Percentiles::of(&second.latency);
        let line = serde_json::json!({
            "t": r.t, "sent": r.sent, "received": r.received, "lost": r.lost,
            "latency_us": {
                "p50": p.p50, "p90": p.p90, "p99": p.p99, "p999": p.p999,
                "p9999": p.p9999, "max": p.max,
            },
        });
        jsonl.push_str(&line.to_string());
        jsonl.push('\n');
    }
    if let Some(path) = &files.jsonl {
        write_file(path, &jsonl)?;
        written.push(path.display().to_string());
    }
    let Some(svg) = &files.svg else {
        if !written.is_empty() {
            println!("  reports   {}", written.join(" "));
        }
        return Ok(());
    };
    let title = format!(
        "loadgen relay: {} calls, {} pps each way, through {}",
        t.calls, o.pps, target.name
    );
    let spectrum = t.latency.spectrum();
    loadgen::plot::write_svg(
        svg,
        &loadgen::plot::Plot {
            title: &title,
            spectrum: &spectrum,
            seconds: &rows,
            ramp,
        },
    )?;
    written.push(svg.display().to_string());
    println!("  reports   {}", written.join(" "));
    Ok(())
}
