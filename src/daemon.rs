//! The `mediarelay` daemon: an rtpengine-compatible media relay, as a
//! function of its command line ([`main`]), so that the `mediarelay`
//! binary and anything embedding the daemon (the load generator's
//! embedded relay) run the same code.
//!
//! Start-up order: parse flags and the config file (an error is one stderr
//! line and exit code 2), set up logging (stderr, or syslog with
//! `--log-facility`: see [`crate::syslog`]), block-free signal handling
//! (SIGTERM/SIGINT stop, SIGHUP reloads the log level), raise the open-file
//! limit and log the call capacity, start the relay [`Engine`], write the
//! pidfile, start the control plane (`ControlPlane`: NG and HTTP servers),
//! then wait for a signal. Shutdown runs the same steps backwards and exits
//! 0. A start-up failure after logging is up is logged and exits 1.
//!
//! The daemon never forks: run it under a service manager (systemd
//! `Type=simple`). `--foreground` is accepted for rtpengine compatibility.
//!
//! Besides rtpengine's NG commands, the NG socket answers mediarelay's own
//! `log level` (from loopback sources only): it shows or sets the log level
//! at run time, until the next SIGHUP; `mediarelay ctl loglevel` sends it.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use std::ffi::OsString;
use tracing::level_filters::LevelFilter;
use tracing::{error, info, warn};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Registry, reload};

use crate::config::{CapacityLimit, Cli, Config, LogLevel};
use crate::engine::{Engine, EngineEvent, check_bind_ip, nofile_limit, raise_nofile_limit};
use crate::metrics::MetricsServer;
use crate::ng::handler::NgInterface;
use crate::ng::{Handler, HandlerConfig, NgServer, OwnedValue, Value};
use crate::syslog::{DEV_LOG, SyslogWriter};

/// Exit code of an invalid command line or configuration.
const EXIT_CONFIG: u8 = 2;

/// Changes the log level of the running subscriber.
type LogHandle = reload::Handle<LevelFilter, Registry>;

/// The servers that drive the engine: the NG control protocol on
/// `listen-ng` (UDP) and the HTTP server on `listen-http` (Prometheus
/// `/metrics`, `/ping`).
///
/// [`ControlPlane::start`] binds its sockets before returning (a bind
/// failure fails the start-up) and runs the NG server on its own thread,
/// which also drains [`Engine::try_event`] (media timeouts).
/// [`ControlPlane::shutdown`] stops it after the replies to datagrams
/// already received are sent, and drops its `Arc<Engine>`.
struct ControlPlane {
    ng: Option<NgServer>,
    http: Option<MetricsServer>,
}

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
enum DaemonError {
    /// Signal handlers could not be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The relay engine did not start.
    #[error("cannot start the relay engine: {0}")]
    Engine(crate::engine::EngineError),
    /// The NG control socket did not start.
    #[error("{0}")]
    Ng(crate::ng::ServerError),
    /// The HTTP (metrics) socket did not start.
    #[error("cannot listen on {0} (listen-http): {1}")]
    Http(std::net::SocketAddr, std::io::Error),
    /// Not one call fits the port range or the open-file limit.
    #[error("no call can be relayed: {0}")]
    NoCapacity(String),
    /// The pidfile could not be written.
    #[error("cannot write pidfile {0}: {1}")]
    Pidfile(PathBuf, std::io::Error),
}

impl ControlPlane {
    /// Starts the NG server and the HTTP server (`/metrics`, `/ping`).
    fn start(
        config: &Config,
        engine: &Arc<Engine>,
        log: &LogHandle,
    ) -> Result<ControlPlane, DaemonError> {
        let ng = match config.listen_ng {
            Some(addr) => {
                let cfg = HandlerConfig {
                    advertised: config.interfaces.primary().sdp_address(),
                    delete_delay: config.delete_delay,
                    source_hold: config.source_hold,
                    offer_timeout: config.offer_timeout,
                    port_range: (config.ports.min(), config.ports.max()),
                    max_sessions: config.max_sessions,
                    lenient_bencode: config.ng_lenient_bencode,
                    interfaces: config
                        .interfaces
                        .iter()
                        .map(|i| NgInterface {
                            name: i
                                .name
                                .as_ref()
                                .map_or("default".to_string(), |n| n.to_string()),
                            local: i.local,
                            advertised: i.sdp_address(),
                        })
                        .collect(),
                    ..HandlerConfig::default()
                };
                let unix = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default();
                let handler = Handler::new(Arc::clone(engine), cfg, Instant::now(), unix);
                let events = Arc::clone(engine);
                let timeouts = move || loop {
                    match events.try_event()? {
                        EngineEvent::CallTimedOut { tag, .. } => return Some(tag),
                        #[allow(unreachable_patterns)]
                        _ => continue,
                    }
                };
                let log = log.clone();
                let own = move |from: SocketAddr, body: &Value<'_>| {
                    Some(log_level_command(&log, from, body))
                };
                let server =
                    NgServer::start_with_command(addr, handler, timeouts, LOG_LEVEL_COMMAND, own)
                        .map_err(DaemonError::Ng)?;
                info!(addr = %server.local_addr(), "NG control protocol listening");
                Some(server)
            }
            None => None,
        };
        let http = match config.listen_http {
            Some(addr) => {
                let e = Arc::clone(engine);
                let ng_counters = ng.as_ref().map(|s| Arc::clone(s.counters()));
                let server = MetricsServer::start(addr, move |out: &mut String| {
                    let ng = ng_counters
                        .as_deref()
                        .map(|c| c as &dyn crate::metrics::NgCounters);
                    crate::metrics::render(&e, ng, out);
                })
                .map_err(|err| DaemonError::Http(addr, err))?;
                info!(addr = %server.local_addr(), "HTTP (/metrics, /ping) listening");
                Some(server)
            }
            None => None,
        };
        Ok(ControlPlane { ng, http })
    }

    /// Stops the servers and joins their threads.
    fn shutdown(self) {
        if let Some(ng) = self.ng {
            ng.shutdown();
        }
        if let Some(http) = self.http {
            http.shutdown();
        }
    }
}

/// Runs the daemon with `args` as its command line (`args[0]` the program
/// name) until SIGTERM or SIGINT: exit code 0 after a clean stop, 2 for an
/// invalid command line or configuration, 1 for a start-up failure. Installs
/// the process's global `tracing` subscriber, so call it once per process.
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help / --version: clap prints to stdout and exits 0.
            e.exit();
        }
        Err(e) => {
            eprintln!("mediarelay: {}", clap_error_line(&e));
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let config = match Config::load(&cli).and_then(|c| c.check_runnable().map(|()| c)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", e.to_line());
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let (log, log_warning) = init_logging(&config);
    if let Some(w) = log_warning {
        warn!("{w}");
    }
    match run(&cli, config, &log) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// The daemon's life after logging is up.
fn run(cli: &Cli, config: Config, log: &LogHandle) -> Result<(), DaemonError> {
    info!(
        version = env!("CARGO_PKG_VERSION"),
        config = ?config.config_file,
        "mediarelay starting"
    );
    for w in &config.warnings {
        warn!("{w}");
    }
    // Before anything else starts, so that a signal during start-up is
    // queued rather than killing the process half-initialised.
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP]).map_err(DaemonError::Signals)?;
    for i in config.interfaces.iter() {
        check_bind_ip(i.local).map_err(DaemonError::Engine)?;
    }
    log_capacity(&config)?;

    let engine = Arc::new(Engine::start(config.engine_config()).map_err(DaemonError::Engine)?);
    info!(
        backend = %engine.backend(),
        reason = engine.backend_reason(),
        shards = engine.shard_count(),
        interface = %config.interfaces.primary(),
        ports = %format_args!("{}-{}", config.ports.min(), config.ports.max()),
        tos = ?config.tos,
        max_sessions = ?config.max_sessions,
        "relay engine started"
    );
    let pidfile = config
        .pidfile
        .as_deref()
        .map(|p| write_pidfile(p).map(|()| p.to_path_buf()))
        .transpose()?;
    let control = match ControlPlane::start(&config, &engine, log) {
        Ok(c) => c,
        Err(e) => {
            stop(None, engine, pidfile.as_deref());
            return Err(e);
        }
    };
    info!(pid = std::process::id(), "mediarelay ready");

    for sig in signals.forever() {
        match sig {
            SIGHUP => reload(cli, log),
            _ => {
                info!(signal = sig, "stopping");
                break;
            }
        }
    }
    stop(Some(control), engine, pidfile.as_deref());
    info!("mediarelay stopped");
    Ok(())
}

/// Stops the control plane, then the engine (its shards close every socket
/// and release every port), then removes the pidfile.
fn stop(control: Option<ControlPlane>, engine: Arc<Engine>, pidfile: Option<&Path>) {
    if let Some(c) = control {
        c.shutdown();
    }
    match Arc::try_unwrap(engine) {
        Ok(e) => e.shutdown(),
        // Dropping the last clone elsewhere stops the shards too.
        Err(e) => warn!(
            refs = Arc::strong_count(&e),
            "engine still shared at shutdown"
        ),
    }
    if let Some(Err(e)) = pidfile.map(std::fs::remove_file) {
        warn!("cannot remove pidfile: {e}");
    }
}

/// SIGHUP: re-reads the config file (flags still override it) and applies
/// the new log level. Other changes need a restart; an invalid file keeps
/// the running configuration.
fn reload(cli: &Cli, log: &LogHandle) {
    match Config::load(cli) {
        Ok(c) => {
            let level = c.log_level.level_filter();
            match log.modify(|f| *f = level) {
                Ok(()) => info!(level = %c.log_level, "SIGHUP: log level reloaded"),
                Err(e) => warn!("SIGHUP: cannot change the log level: {e}"),
            }
        }
        Err(e) => error!("SIGHUP: configuration not reloaded: {e}"),
    }
}

/// mediarelay's own NG command (not rtpengine's), answered by the NG server
/// before the handler; `mediarelay ctl loglevel` sends it.
const LOG_LEVEL_COMMAND: &str = "log level";

/// Answers `{"command": "log level"}`: with a `level` (a name or a syslog
/// number, as `--log-level` takes) it sets the log level of the running
/// daemon until the next SIGHUP or restart; the reply carries the level in
/// force, `{"level": "debug", "result": "ok"}`.
///
/// Accepted only from loopback sources: the level is an operator's knob,
/// not a SIP proxy's, and `trace` on a loaded relay costs CPU and disk, so
/// it takes a shell on the relay's host (and NG reachable there); a SIP
/// proxy elsewhere gets `result: error`.
fn log_level_command(log: &LogHandle, from: SocketAddr, body: &Value<'_>) -> OwnedValue {
    let error = |reason: &str| {
        OwnedValue::dict()
            .with("result", OwnedValue::text("error"))
            .with("error-reason", OwnedValue::text(reason))
    };
    if !from.ip().to_canonical().is_loopback() {
        tracing::debug!(%from, "NG log level refused: not from a loopback address");
        return error("log level is only accepted from a loopback address (127.0.0.0/8, ::1)");
    }
    if let Some(v) = body.get("level") {
        let text = v
            .as_str()
            .map(str::to_string)
            .or_else(|| v.as_int().map(|i| i.to_string()))
            .unwrap_or_default();
        let level: LogLevel = match text.parse() {
            Ok(l) => l,
            Err(e) => return error(&e.to_string()),
        };
        info!(%level, %from, "NG: log level set");
        if let Err(e) = log.modify(|f| *f = level.level_filter()) {
            return error(&format!("cannot change the log level: {e}"));
        }
    }
    let levels = [
        LogLevel::Error,
        LogLevel::Warn,
        LogLevel::Info,
        LogLevel::Debug,
        LogLevel::Trace,
    ];
    let current = log.clone_current().map_or("unknown", |f| {
        levels
            .into_iter()
            .find(|l| l.level_filter() == f)
            .map_or("off", LogLevel::as_str)
    });
    OwnedValue::dict()
        .with("level", OwnedValue::text(current))
        .with("result", OwnedValue::text("ok"))
}

/// Installs the global subscriber, with a level that SIGHUP can change:
/// one line per event on stderr, or with a syslog facility
/// ([`Config::syslog_facility`]) one RFC 3164 message per event to the
/// syslog socket ([`syslog_socket`]). When that socket cannot be reached
/// the logs stay on stderr, and the second value is the warning to log.
fn init_logging(config: &Config) -> (LogHandle, Option<String>) {
    let (filter, handle) = reload::Layer::new(config.log_level.level_filter());
    let mut warning = None;
    let syslog = config.syslog_facility().and_then(|facility| {
        let path = syslog_socket();
        SyslogWriter::connect(facility, &path)
            .map_err(|e| {
                warning = Some(format!(
                    "log-facility {facility}: cannot reach syslog at {}: {e}; logging to stderr",
                    path.display()
                ));
            })
            .ok()
    });
    let syslog_layer = syslog.map(|w| {
        tracing_subscriber::fmt::layer()
            .with_writer(w)
            .with_ansi(false)
            .without_time()
    });
    let stderr_layer = syslog_layer.is_none().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(stderr_layer)
        .with(syslog_layer)
        .init();
    (handle, warning)
}

/// The syslog socket: [`SYSLOG_SOCKET_ENV`] when set, else `/dev/log`.
fn syslog_socket() -> PathBuf {
    std::env::var_os(SYSLOG_SOCKET_ENV)
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(DEV_LOG), PathBuf::from)
}

/// Environment variable naming another syslog socket than `/dev/log`
/// (a chroot or container with the socket elsewhere; tests).
pub const SYSLOG_SOCKET_ENV: &str = "MEDIARELAY_SYSLOG_SOCKET";

/// Raises `RLIMIT_NOFILE` to the hard limit and logs how many concurrent
/// calls the port range and that limit allow, and which one binds; a
/// capacity of 0 calls is a start-up failure.
fn log_capacity(config: &Config) -> Result<(), DaemonError> {
    let nofile = match raise_nofile_limit() {
        Ok(n) => n,
        Err(e) => {
            let soft = nofile_limit().map_or(1024, |(soft, _)| soft);
            warn!("cannot raise the open-file limit: {e}; staying at {soft}");
            soft
        }
    };
    let cap = config.capacity(nofile);
    info!("{cap}");
    if cap.calls() == 0 {
        return Err(DaemonError::NoCapacity(cap.to_string()));
    }
    if cap.limit() == CapacityLimit::OpenFiles {
        warn!(
            "the open-file limit ({nofile}) caps the relay at {} calls, below the {} the port range allows: \
             raise LimitNOFILE (systemd) or the hard `ulimit -n`",
            cap.by_fds, cap.by_ports
        );
    }
    Ok(())
}

/// Writes our pid to `path` (via a temporary file and a rename, so a
/// reader never sees a partial file).
fn write_pidfile(path: &Path) -> Result<(), DaemonError> {
    let err = |e| DaemonError::Pidfile(path.to_path_buf(), e);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id())).map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// The first line of a clap error, without its `error: ` prefix.
fn clap_error_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("invalid command line");
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(log: &LogHandle, from: &str, level: Option<OwnedValue>) -> OwnedValue {
        let mut req = OwnedValue::dict().with("command", OwnedValue::text(LOG_LEVEL_COMMAND));
        if let Some(l) = level {
            req.push("level", l);
        }
        let bytes = req.to_bytes();
        let body = Value::decode(&bytes).unwrap();
        log_level_command(log, from.parse().unwrap(), &body)
    }

    fn field<'a>(v: &'a OwnedValue, k: &str) -> Option<&'a str> {
        v.get(k).and_then(OwnedValue::as_str)
    }

    #[test]
    fn log_level_command_sets_and_shows_from_loopback_only() {
        let (_layer, log) = reload::Layer::<LevelFilter, Registry>::new(LevelFilter::INFO);
        let r = ask(&log, "127.0.0.1:5000", None);
        assert_eq!(
            (field(&r, "level"), field(&r, "result")),
            (Some("info"), Some("ok"))
        );
        let r = ask(&log, "[::1]:5000", Some(OwnedValue::text("DEBUG")));
        assert_eq!(field(&r, "level"), Some("debug"));
        // A syslog number, as bencode integer; an IPv4-mapped loopback source.
        let r = ask(&log, "[::ffff:127.0.0.9]:5000", Some(OwnedValue::Int(4)));
        assert_eq!(field(&r, "level"), Some("warn"));
        let r = ask(&log, "127.0.0.1:5000", Some(OwnedValue::text("loud")));
        assert_eq!(field(&r, "result"), Some("error"));
        assert!(field(&r, "error-reason").unwrap().contains("\"loud\""));
        let r = ask(&log, "192.0.2.7:5000", Some(OwnedValue::text("trace")));
        assert_eq!(field(&r, "result"), Some("error"));
        assert!(field(&r, "error-reason").unwrap().contains("loopback"));
        let r = ask(&log, "192.0.2.7:5000", None);
        assert_eq!(field(&r, "result"), Some("error"));
        assert_eq!(log.clone_current(), Some(LevelFilter::WARN), "unchanged");
    }
}
