//! Daemon configuration: the `mediarelay` command line ([`Cli`]), the config
//! file (TOML, or an existing `rtpengine.conf` in rtpengine's ini format),
//! their merge, and validation into a typed [`Config`].
//!
//! Contract:
//! - Keys are rtpengine's long option names. In the TOML file they are
//!   written as on the command line, kebab-case (`port-min = 30000`); the
//!   snake_case spelling (`port_min`) is accepted too. Keys may sit at the top
//!   level or in a `[rtpengine]` table (rtpengine's default config section;
//!   `--config-section` names another). In TOML an unknown key is an error,
//!   not a warning.
//! - An rtpengine ini file ([`FileFormat::detect`]: a `.conf`/`.ini` name,
//!   or a `[rtpengine]` header in a file that is not TOML) is read from its
//!   `[rtpengine]` (or `--config-section`) section: the keys mediarelay
//!   implements map onto the same typed fields with the same validation;
//!   the others are listed in [`ConfigFile::ignored`] and named in one
//!   start-up warning, never dropped silently.
//! - Flags override the file: a flag given on the command line replaces the
//!   file's value; `--interface` flags replace the file's whole list.
//! - [`Config::load`] / [`Config::from_raw`] either return a [`Config`] whose
//!   fields are all typed and checked, or one [`ConfigError`] that names the
//!   offending key; [`ConfigError::to_line`] makes it one stderr line.
//!
//! Deviations from rtpengine (see `docs/daemon-config.md`): the native file
//! is TOML (values need TOML quoting), `listen-ng` takes one address,
//! host names other than `localhost` are not resolved, and negative
//! timeouts are rejected instead of being read as "default".

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use tracing::level_filters::LevelFilter;

use crate::engine::fastpath::FastPathMode;
use crate::engine::{EngineConfig, IoBackend};
use crate::ports::{PortRange, RangeError};
use crate::relay::{Intervals, RelayConfig};
use crate::syslog::Facility;

/// Default lowest relay port (rtpengine `--port-min`).
pub const DEFAULT_PORT_MIN: u16 = 30000;
/// Default highest relay port (rtpengine `--port-max`).
pub const DEFAULT_PORT_MAX: u16 = 40000;
/// Default media timeout in seconds (rtpengine `--timeout`).
pub const DEFAULT_TIMEOUT_SECS: u32 = 60;
/// Default timeout of silent (held, inactive) media in seconds.
pub const DEFAULT_SILENT_TIMEOUT_SECS: u32 = 3600;
/// Default call lifetime limit in seconds; 0 = off.
pub const DEFAULT_FINAL_TIMEOUT_SECS: u32 = 0;
/// Default delay between an NG `delete` and the call's removal, in seconds.
pub const DEFAULT_DELETE_DELAY_SECS: u32 = 30;
/// Default lifetime of an offered call that is never answered, in seconds
/// (rtpengine `--offer-timeout`).
pub const DEFAULT_OFFER_TIMEOUT_SECS: u32 = 3600;

/// The keys a config file may hold, in their canonical (kebab-case) form.
pub const FILE_KEYS: &[&str] = &[
    "interface",
    "listen-ng",
    "listen-http",
    "port-min",
    "port-max",
    "num-threads",
    "timeout",
    "silent-timeout",
    "final-timeout",
    "delete-delay",
    "offer-timeout",
    "batch-wait-us",
    "source-hold",
    "log-level",
    "foreground",
    "pidfile",
    "io-backend",
    "fast-path",
    "table",
    "tos",
    "max-sessions",
    "log-stderr",
    "log-facility",
    "ng-lenient-bencode",
];

/// Keys that only exist on the command line.
const CLI_ONLY_KEYS: &[&str] = &["config", "config-file", "config-section"];

/// Keys whose ini values are integers (`port-min = 30000`).
const INT_KEYS: &[&str] = &[
    "port-min",
    "port-max",
    "num-threads",
    "timeout",
    "silent-timeout",
    "final-timeout",
    "delete-delay",
    "offer-timeout",
    "batch-wait-us",
    "table",
    "tos",
    "max-sessions",
];

/// Keys whose ini values are booleans (`foreground = true`).
const BOOL_KEYS: &[&str] = &["foreground", "log-stderr", "ng-lenient-bencode"];

/// rtpengine's default config file section, accepted as a TOML table.
const RTPENGINE_SECTION: &str = "rtpengine";

/// Sockets a call holds: 2 legs x (RTP + RTCP).
pub const SOCKETS_PER_CALL: u64 = 4;
/// Port pairs a call holds: one per leg.
pub const PAIRS_PER_CALL: u64 = 2;

/// The `mediarelay` command line. Every flag is optional; unset flags fall
/// back to the config file, then to the defaults shown in `--help`.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Parser)]
#[command(
    name = "mediarelay",
    version,
    about = "RTP media relay, drop-in replacement for rtpengine (NG control protocol)",
    after_help = "Control a running daemon (like rtpengine-ctl): mediarelay ctl --help"
)]
pub struct Cli {
    /// Local media address, optionally named and with the address to advertise in SDP (repeatable; at least one required)
    #[arg(short = 'i', long, value_name = "[NAME/]ADDR[!ADV]")]
    pub interface: Vec<String>,
    /// UDP address of the NG control protocol, HOST:PORT or PORT [default: none]
    #[arg(short = 'n', long, value_name = "HOST:PORT")]
    pub listen_ng: Option<String>,
    /// TCP address of the HTTP server (/metrics, /ping), HOST:PORT or PORT [default: none]
    #[arg(long, value_name = "HOST:PORT")]
    pub listen_http: Option<String>,
    /// Lowest UDP port for relayed media [default: 30000]
    #[arg(short = 'm', long, value_name = "PORT")]
    pub port_min: Option<i64>,
    /// Highest UDP port for relayed media [default: 40000]
    #[arg(short = 'M', long, value_name = "PORT")]
    pub port_max: Option<i64>,
    /// Relay shard threads [default: number of CPUs this process may use]
    #[arg(long, value_name = "N")]
    pub num_threads: Option<i64>,
    /// Seconds without media before a call is deleted; 0 = default [default: 60]
    #[arg(short = 'o', long, value_name = "SECS")]
    pub timeout: Option<i64>,
    /// Seconds without media before a silent (held) call is deleted; 0 = default [default: 3600]
    #[arg(short = 's', long, value_name = "SECS")]
    pub silent_timeout: Option<i64>,
    /// Seconds after creation a call is deleted regardless of media; 0 = off [default: 0]
    #[arg(short = 'a', long, value_name = "SECS")]
    pub final_timeout: Option<i64>,
    /// Seconds between an NG delete and the call's removal; media keeps flowing meanwhile [default: 30]
    #[arg(long, value_name = "SECS")]
    pub delete_delay: Option<i64>,
    /// Seconds without media before a call whose answer has not come is deleted (it may ring that long); 0 = default [default: 3600]
    #[arg(long, value_name = "SECS")]
    pub offer_timeout: Option<i64>,
    /// Coalesced wake-ups: a shard that has handled packets sleeps up to this many microseconds before it takes the next ones, all at once (a control command ends the sleep; adds up to that much latency); 0 = off [default: 0]
    #[arg(long, value_name = "MICROSECONDS")]
    pub batch_wait_us: Option<i64>,
    /// A stream's source holds it against other sources for this many of its packet intervals after its last packet (RTP-bleed protection) [default: 1.5]
    #[arg(long, value_name = "INTERVALS")]
    pub source_hold: Option<String>,
    /// Log level: error|warn|info|debug|trace, or rtpengine's syslog level 0-7 [default: info]
    #[arg(short = 'L', long, value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Stay in the foreground (mediarelay never forks; accepted for rtpengine compatibility)
    #[arg(short = 'f', long)]
    pub foreground: bool,
    /// Write the process id to FILE while running [default: none]
    #[arg(short = 'p', long, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// I/O backend of the relay shards: auto|uring|epoll [default: auto]
    #[arg(long, value_name = "BACKEND")]
    pub io_backend: Option<String>,
    /// Kernel fast path for latched RTP (eBPF on tc ingress, no kernel module): auto (on where the kernel and privileges allow, else off with the reason logged), ebpf (required: start fails without it), off [default: auto]
    #[arg(long, value_name = "MODE")]
    pub fast_path: Option<String>,
    /// Config file with the same keys as these flags, TOML or an rtpengine.conf (ini); flags override it; `none`: no file [default: none]
    #[arg(long, visible_alias = "config-file", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Section of the config file to read (rtpengine's) [default: rtpengine]
    #[arg(long, value_name = "NAME")]
    pub config_section: Option<String>,
    /// rtpengine's kernel module table: accepted and ignored (mediarelay's kernel forwarding is --fast-path, with no module)
    #[arg(short = 't', long, value_name = "INT", allow_negative_numbers = true)]
    pub table: Option<i64>,
    /// TOS byte (DSCP << 2) of relayed media packets, 0-255; 184 = DSCP EF [default: none, left to the kernel]
    #[arg(short = 'T', long, value_name = "INT", allow_negative_numbers = true)]
    pub tos: Option<i64>,
    /// Most concurrent calls; offers for new calls beyond it are refused; 0 refuses all (draining), negative = unlimited [default: -1]
    #[arg(long, value_name = "INT", allow_negative_numbers = true)]
    pub max_sessions: Option<i64>,
    /// Log to stderr, also when --log-facility is given (stderr is the default)
    #[arg(short = 'E', long)]
    pub log_stderr: bool,
    /// Log to syslog (/dev/log) with this facility instead of stderr: daemon, user, local0..local7 [default: none, stderr]
    #[arg(long, value_name = "NAME")]
    pub log_facility: Option<String>,
    /// Read NG bencode as rtpengine does: a message the datagram ends in is closed and bytes after it are ignored (default: such datagrams get an error reply)
    #[arg(long)]
    pub ng_lenient_bencode: bool,
}

/// Configuration as written (file or flags), before validation. Every field
/// is optional: `None` means "not given here".
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct RawConfig {
    /// `interface`: `[NAME/]ADDR[!ADV]` strings; a file value may be one
    /// string (several separated by `;`, as rtpengine's) or an array.
    #[serde(default, deserialize_with = "de_string_list")]
    pub interface: Option<Vec<String>>,
    /// `listen-ng`.
    #[serde(default, alias = "listen_ng")]
    pub listen_ng: Option<String>,
    /// `listen-http`.
    #[serde(default, alias = "listen_http")]
    pub listen_http: Option<String>,
    /// `port-min`.
    #[serde(default, alias = "port_min")]
    pub port_min: Option<i64>,
    /// `port-max`.
    #[serde(default, alias = "port_max")]
    pub port_max: Option<i64>,
    /// `num-threads`.
    #[serde(default, alias = "num_threads")]
    pub num_threads: Option<i64>,
    /// `timeout` in seconds.
    #[serde(default)]
    pub timeout: Option<i64>,
    /// `silent-timeout` in seconds.
    #[serde(default, alias = "silent_timeout")]
    pub silent_timeout: Option<i64>,
    /// `final-timeout` in seconds.
    #[serde(default, alias = "final_timeout")]
    pub final_timeout: Option<i64>,
    /// `delete-delay` in seconds.
    #[serde(default, alias = "delete_delay")]
    pub delete_delay: Option<i64>,
    /// `offer-timeout` in seconds.
    #[serde(default, alias = "offer_timeout")]
    pub offer_timeout: Option<i64>,
    /// `batch-wait-us` in microseconds.
    #[serde(default, alias = "batch_wait_us")]
    pub batch_wait_us: Option<i64>,
    /// `source-hold` in packet intervals (a decimal; a file may write a
    /// TOML number).
    #[serde(default, alias = "source_hold", deserialize_with = "de_scalar_string")]
    pub source_hold: Option<String>,
    /// `log-level`: a name, or a syslog number (a file may write it as a
    /// TOML integer).
    #[serde(default, alias = "log_level", deserialize_with = "de_scalar_string")]
    pub log_level: Option<String>,
    /// `foreground`.
    #[serde(default)]
    pub foreground: Option<bool>,
    /// `pidfile`.
    #[serde(default)]
    pub pidfile: Option<PathBuf>,
    /// `io-backend`.
    #[serde(default, alias = "io_backend")]
    pub io_backend: Option<String>,
    /// `fast-path`: auto, ebpf or off.
    #[serde(default, alias = "fast_path", deserialize_with = "de_scalar_string")]
    pub fast_path: Option<String>,
    /// `table` (rtpengine's kernel table): accepted and ignored.
    #[serde(default)]
    pub table: Option<i64>,
    /// `tos`: TOS byte of relay sockets.
    #[serde(default)]
    pub tos: Option<i64>,
    /// `max-sessions`: most concurrent calls; negative: unlimited.
    #[serde(default, alias = "max_sessions")]
    pub max_sessions: Option<i64>,
    /// `log-stderr`.
    #[serde(default, alias = "log_stderr")]
    pub log_stderr: Option<bool>,
    /// `log-facility`: a syslog facility name.
    #[serde(default, alias = "log_facility")]
    pub log_facility: Option<String>,
    /// `ng-lenient-bencode`.
    #[serde(default, alias = "ng_lenient_bencode")]
    pub ng_lenient_bencode: Option<bool>,
}

/// The two config file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileFormat {
    /// mediarelay's TOML.
    #[default]
    Toml,
    /// rtpengine's ini (`rtpengine.conf`, GLib key file).
    Ini,
}

/// A config file as read: its settings, and for an rtpengine ini file the
/// keys mediarelay does not implement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigFile {
    /// The settings.
    pub raw: RawConfig,
    /// The format it was read as.
    pub format: FileFormat,
    /// Keys of the section that mediarelay does not implement, in file
    /// order, each once (always empty for TOML, where they are errors).
    pub ignored: Vec<String>,
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Warnings and errors.
    Warn,
    /// Normal operation.
    #[default]
    Info,
    /// Per-call detail.
    Debug,
    /// Everything.
    Trace,
}

/// An interface's name (rtpengine's logical interface, `NAME/` prefix).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InterfaceName(String);

/// One `--interface`: where relay sockets bind and what SDP advertises.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Interface {
    /// Logical name, if given as `NAME/ADDR`.
    pub name: Option<InterfaceName>,
    /// Local address relay sockets bind to.
    pub local: IpAddr,
    /// Address written into SDP instead of `local` (behind 1:1 NAT), if
    /// given as `ADDR!ADVERTISED`.
    pub advertised: Option<IpAddr>,
}

/// Why an `interface` value was rejected. Each message is a predicate of
/// the value: `interface "x.y" is not an IP address`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InterfaceError {
    /// Nothing given.
    #[error("is empty")]
    Empty,
    /// `NAME/` with an empty or blank name.
    #[error("has an empty name before '/'")]
    EmptyName,
    /// The local address does not parse.
    #[error("is not an IP address")]
    NotAnIp,
    /// The part after `!` does not parse.
    #[error("has an advertised address {0:?} that is not an IP address")]
    AdvertisedNotAnIp(String),
    /// Local and advertised addresses are of different families.
    #[error("mixes address families ({local} advertised as {advertised})")]
    FamilyMismatch {
        /// Local address.
        local: IpAddr,
        /// Advertised address.
        advertised: IpAddr,
    },
    /// `0.0.0.0` or `::` without an advertised address: SDP would carry an
    /// address no peer can send to.
    #[error("binds the unspecified address {0} and advertises none (write {0}!PUBLIC-ADDRESS)")]
    UnspecifiedWithoutAdvertised(IpAddr),
}

/// The non-empty list of interfaces; the first one is the primary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interfaces {
    first: Interface,
    rest: Vec<Interface>,
}

/// Validated daemon configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Media interfaces (at least one).
    pub interfaces: Interfaces,
    /// NG control socket (UDP); `None`: no control socket.
    pub listen_ng: Option<SocketAddr>,
    /// HTTP server (metrics, health); `None`: none.
    pub listen_http: Option<SocketAddr>,
    /// Relay port range, aligned to RTP/RTCP pairs.
    pub ports: PortRange,
    /// Shard threads (resolved: never "auto"; at most one per port pair).
    pub num_threads: NonZeroU16,
    /// Media timeout.
    pub timeout: Duration,
    /// Media timeout of silent (held) calls.
    pub silent_timeout: Duration,
    /// Call lifetime limit; `None`: off.
    pub final_timeout: Option<Duration>,
    /// Delay between an NG `delete` and the call's removal (media keeps
    /// flowing meanwhile).
    pub delete_delay: Duration,
    /// Lifetime of an offered call without an answer.
    pub offer_timeout: Duration,
    /// Coalescing budget of a shard's wake-ups (zero: off).
    pub batch_wait: Duration,
    /// How long a stream's source holds it against other sources, in its
    /// packet intervals.
    pub source_hold: Intervals,
    /// Log level.
    pub log_level: LogLevel,
    /// `--foreground` was given (informational: the daemon never forks).
    pub foreground: bool,
    /// Where to write the process id.
    pub pidfile: Option<PathBuf>,
    /// I/O backend choice.
    pub io_backend: IoBackend,
    /// Kernel fast path choice.
    pub fast_path: FastPathMode,
    /// TOS byte of relay sockets; `None`: left to the kernel.
    pub tos: Option<u8>,
    /// Most concurrent calls (new calls beyond it are refused); `None`:
    /// unlimited.
    pub max_sessions: Option<u64>,
    /// `--log-stderr`: logs go to stderr even with a `log_facility`.
    pub log_stderr: bool,
    /// `--log-facility`: log to syslog with this facility (unless
    /// `log_stderr`); see [`Config::syslog_facility`].
    pub log_facility: Option<Facility>,
    /// `--ng-lenient-bencode`: NG bencode read as rtpengine reads it.
    pub ng_lenient_bencode: bool,
    /// The config file read, if any.
    pub config_file: Option<PathBuf>,
    /// Accepted but ignored settings, one human sentence each, to be logged
    /// as warnings once logging is up.
    pub warnings: Vec<String>,
}

/// How many concurrent calls the port range and the open-file limit allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// Calls the port range holds ([`PAIRS_PER_CALL`] pairs each).
    pub by_ports: u64,
    /// Calls the open-file limit holds ([`SOCKETS_PER_CALL`] sockets each,
    /// after the daemon's own descriptors).
    pub by_fds: u64,
    /// The open-file limit this was computed for.
    pub nofile: u64,
    /// Descriptors set aside for the daemon itself.
    pub reserved_fds: u64,
}

/// Which limit caps the number of concurrent calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapacityLimit {
    /// The port range (raise `port-max` or lower `port-min`).
    Ports,
    /// The open-file limit (raise `LimitNOFILE` / `ulimit -n`).
    OpenFiles,
}

/// A configuration that cannot be used. Every variant names its key; see
/// [`ConfigError::key`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("config: cannot read {path}: {reason}")]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The config file is not valid TOML.
    #[error("config: {path} line {line}: {}invalid TOML: {reason}", key_prefix(key.as_deref()))]
    Toml {
        /// The file.
        path: PathBuf,
        /// 1-based line of the error.
        line: usize,
        /// The key on that line, when one could be made out.
        key: Option<String>,
        /// The parser's message.
        reason: String,
    },
    /// A key no version of the config knows.
    #[error("unknown key {key:?} in config file")]
    UnknownKey {
        /// The key as written.
        key: String,
    },
    /// The same key twice (e.g. as `port-min` and `port_min`).
    #[error("{key}: given twice in config file")]
    DuplicateKey {
        /// Canonical key.
        key: &'static str,
    },
    /// A command-line-only key (`config`) in the file.
    #[error("{key}: only valid on the command line, not in the config file")]
    CliOnly {
        /// The key as written.
        key: String,
    },
    /// A value of the wrong TOML type.
    #[error("{key}: {reason}")]
    Type {
        /// Canonical key.
        key: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// No `interface`.
    #[error("interface: at least one --interface ADDR[!ADVERTISED] is required")]
    MissingInterface,
    /// An `interface` value is malformed.
    #[error("interface {value:?} {reason}")]
    Interface {
        /// The value as written.
        value: String,
        /// Why.
        reason: InterfaceError,
    },
    /// `listen-ng` / `listen-http` is not an address.
    #[error(
        "{key}: invalid socket address {value:?} (expected IP:PORT, [IPv6]:PORT, localhost:PORT or PORT)"
    )]
    SocketAddr {
        /// Canonical key.
        key: &'static str,
        /// The value as written.
        value: String,
    },
    /// `port-min` / `port-max` is not a port number.
    #[error("{key} {value} is not a port number (1-65535)")]
    Port {
        /// Canonical key.
        key: &'static str,
        /// The value.
        value: i64,
    },
    /// The range holds fewer port pairs than one call needs.
    #[error(
        "port-min {min} / port-max {max}: the range holds {pairs} RTP/RTCP port pair(s); a call needs {need}"
    )]
    PortRangeTooSmall {
        /// `port-min`.
        min: u16,
        /// `port-max`.
        max: u16,
        /// Pairs in the range.
        pairs: u32,
        /// Pairs a call needs.
        need: u64,
    },
    /// `source-hold` is not a number of packet intervals.
    #[error(
        "source-hold {value:?} must be a number of packet intervals from 0.5 to 20 with at most one decimal"
    )]
    SourceHold {
        /// The value as written.
        value: String,
    },
    /// No NG control socket: the relay could never be told about a call.
    #[error(
        "listen-ng: no NG control socket given (--listen-ng HOST:PORT); the relay would never get a call"
    )]
    NoControl,
    /// `port-min` above `port-max`.
    #[error("port-min {min} > port-max {max}")]
    PortRangeInverted {
        /// `port-min`.
        min: u16,
        /// `port-max`.
        max: u16,
    },
    /// The range holds no RTP/RTCP pair (even RTP port, odd RTCP port).
    #[error("port-min {min} / port-max {max}: the range holds no even/odd RTP/RTCP port pair")]
    PortRangeEmpty {
        /// `port-min`.
        min: u16,
        /// `port-max`.
        max: u16,
    },
    /// `num-threads` is out of range.
    #[error("num-threads {value} {reason}")]
    NumThreads {
        /// The value.
        value: i64,
        /// Why, as a predicate.
        reason: String,
    },
    /// A duration key is negative or too large.
    #[error("{key} {value} is not a number of seconds (0-{max})", max = u32::MAX)]
    Seconds {
        /// Canonical key.
        key: &'static str,
        /// The value.
        value: i64,
    },
    /// `log-level` is not a level.
    #[error(
        "log-level {value:?} is not one of error, warn, info, debug, trace or a syslog level 0-7"
    )]
    LogLevel {
        /// The value as written.
        value: String,
    },
    /// `fast-path` is not a mode.
    #[error("fast-path {value:?} is not one of auto, ebpf, off")]
    FastPath {
        /// The value as written.
        value: String,
    },
    /// `io-backend` is not a backend.
    #[error("io-backend {value:?} is not one of auto, uring, epoll")]
    IoBackend {
        /// The value as written.
        value: String,
    },
    /// `tos` is not a byte.
    #[error("tos {value} is not a TOS byte (0-255; 184 = DSCP EF)")]
    Tos {
        /// The value.
        value: i64,
    },
    /// `log-facility` is not a syslog facility.
    #[error("log-facility {value:?} is not a syslog facility (daemon, user, local0..local7, ...)")]
    LogFacility {
        /// The value as written.
        value: String,
    },
    /// An ini line that is neither `key = value`, a `[section]` header nor
    /// a comment.
    #[error("config: {path} line {line}: {reason}")]
    Ini {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
    /// The ini file has no section of that name.
    #[error("config-section: {path} has no [{section}] section")]
    MissingSection {
        /// The file.
        path: PathBuf,
        /// The section looked for.
        section: String,
    },
}

impl Cli {
    /// The flags that were given, as a [`RawConfig`] layer.
    pub fn raw(&self) -> RawConfig {
        RawConfig {
            interface: (!self.interface.is_empty()).then(|| split_list(&self.interface)),
            listen_ng: self.listen_ng.clone(),
            listen_http: self.listen_http.clone(),
            port_min: self.port_min,
            port_max: self.port_max,
            num_threads: self.num_threads,
            timeout: self.timeout,
            silent_timeout: self.silent_timeout,
            final_timeout: self.final_timeout,
            delete_delay: self.delete_delay,
            offer_timeout: self.offer_timeout,
            batch_wait_us: self.batch_wait_us,
            source_hold: self.source_hold.clone(),
            log_level: self.log_level.clone(),
            foreground: self.foreground.then_some(true),
            pidfile: self.pidfile.clone(),
            io_backend: self.io_backend.clone(),
            fast_path: self.fast_path.clone(),
            table: self.table,
            tos: self.tos,
            max_sessions: self.max_sessions,
            log_stderr: self.log_stderr.then_some(true),
            log_facility: self.log_facility.clone(),
            ng_lenient_bencode: self.ng_lenient_bencode.then_some(true),
        }
    }
}

impl RawConfig {
    /// Parses a config file's text. `path` only labels errors.
    ///
    /// Each key is checked on its own, so an error names the key: unknown
    /// keys, duplicates (`port-min` and `port_min`), command-line-only keys
    /// and values of the wrong type are all reported with their key.
    pub fn from_toml(text: &str, path: &Path) -> Result<RawConfig, ConfigError> {
        RawConfig::from_toml_section(text, path, RTPENGINE_SECTION)
    }

    /// As [`RawConfig::from_toml`], with the keys also accepted in the
    /// table `[section]` instead of `[rtpengine]` (`--config-section`).
    pub fn from_toml_section(
        text: &str,
        path: &Path,
        section: &str,
    ) -> Result<RawConfig, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let start = e.span().map_or(0, |s| s.start).min(text.len());
            let line = text.get(..start).map_or(0, |t| t.matches('\n').count()) + 1;
            ConfigError::Toml {
                path: path.to_path_buf(),
                line,
                key: key_on_line(text, line),
                reason: e.message().trim().to_string(),
            }
        })?;
        let mut entries: Vec<(String, toml::Value)> = Vec::with_capacity(table.len());
        for (k, v) in table {
            match v {
                toml::Value::Table(t) if k == section => entries.extend(t),
                v => entries.push((k, v)),
            }
        }
        RawConfig::from_entries(entries)
    }

    /// Reads the `[section]` of an rtpengine ini file (`rtpengine.conf`, a
    /// GLib key file): `key = value` lines, `#` and `;` comment lines,
    /// other sections skipped. `path` only labels errors.
    ///
    /// Values are typed by key (integers, `true`/`false`/`1`/`0`, strings;
    /// a value in double quotes loses them) and then checked as the TOML
    /// file's are, so errors name the key. `interface` may repeat, each
    /// line adding to the list (which `;` also separates); any other key
    /// given twice is an error. Keys mediarelay does not implement are
    /// returned in [`ConfigFile::ignored`].
    pub fn from_ini(text: &str, path: &Path, section: &str) -> Result<ConfigFile, ConfigError> {
        let ini_err = |line: usize, reason: String| ConfigError::Ini {
            path: path.to_path_buf(),
            line,
            reason,
        };
        let mut current: Option<&str> = None;
        let mut found = false;
        let mut entries: Vec<(String, toml::Value)> = Vec::new();
        let mut interfaces: Vec<toml::Value> = Vec::new();
        let mut ignored: Vec<String> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
                continue;
            }
            if let Some(name) = l.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
                let name = name.trim();
                found |= name == section;
                current = Some(name);
                continue;
            }
            let Some((k, v)) = l.split_once('=') else {
                return Err(ini_err(
                    i + 1,
                    format!("{l:?} is not `key = value`, a [section] header or a comment"),
                ));
            };
            let Some(cur) = current else {
                return Err(ini_err(
                    i + 1,
                    format!("key {:?} before the first [section] header", k.trim()),
                ));
            };
            if cur != section {
                continue;
            }
            let key = k.trim().replace('_', "-");
            if key.is_empty() {
                return Err(ini_err(i + 1, "empty key before '='".into()));
            }
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|r| r.strip_suffix('"'))
                .unwrap_or(v);
            if CLI_ONLY_KEYS.contains(&key.as_str()) {
                return Err(ConfigError::CliOnly { key });
            }
            if !FILE_KEYS.contains(&key.as_str()) {
                if !ignored.contains(&key) {
                    ignored.push(key);
                }
                continue;
            }
            let value = if key == "interface" {
                interfaces.push(toml::Value::String(v.to_string()));
                continue;
            } else if INT_KEYS.contains(&key.as_str()) {
                v.parse::<i64>()
                    .map_or_else(|_| toml::Value::String(v.to_string()), toml::Value::Integer)
            } else if BOOL_KEYS.contains(&key.as_str()) {
                match v.to_ascii_lowercase().as_str() {
                    "true" | "1" => toml::Value::Boolean(true),
                    "false" | "0" => toml::Value::Boolean(false),
                    _ => toml::Value::String(v.to_string()),
                }
            } else {
                toml::Value::String(v.to_string())
            };
            entries.push((key, value));
        }
        if !found {
            return Err(ConfigError::MissingSection {
                path: path.to_path_buf(),
                section: section.to_string(),
            });
        }
        if !interfaces.is_empty() {
            entries.push(("interface".into(), toml::Value::Array(interfaces)));
        }
        Ok(ConfigFile {
            raw: RawConfig::from_entries(entries)?,
            format: FileFormat::Ini,
            ignored,
        })
    }

    /// Checks and merges `key = value` entries one key at a time, so an
    /// error names its key: unknown, duplicate, command-line-only, or of
    /// the wrong type.
    fn from_entries(entries: Vec<(String, toml::Value)>) -> Result<RawConfig, ConfigError> {
        let mut raw = RawConfig::default();
        let mut seen: BTreeMap<&'static str, ()> = BTreeMap::new();
        for (key, value) in entries {
            let canonical = key.replace('_', "-");
            if CLI_ONLY_KEYS.contains(&canonical.as_str()) {
                return Err(ConfigError::CliOnly { key });
            }
            let Some(&known) = FILE_KEYS.iter().find(|k| **k == canonical) else {
                return Err(ConfigError::UnknownKey { key });
            };
            if seen.insert(known, ()).is_some() {
                return Err(ConfigError::DuplicateKey { key: known });
            }
            let mut one = toml::Table::new();
            one.insert(key, value);
            let layer: RawConfig =
                one.try_into()
                    .map_err(|e: toml::de::Error| ConfigError::Type {
                        key: known,
                        // serde names Rust types; say what the file should hold.
                        reason: e
                            .message()
                            .trim()
                            .replace('\n', " ")
                            .replace("expected i64", "expected an integer"),
                    })?;
            raw = raw.overridden_by(layer);
        }
        Ok(raw)
    }

    /// Reads and parses a config file, TOML or rtpengine ini (its
    /// `[rtpengine]` section), see [`ConfigFile::read`].
    pub fn from_file(path: &Path) -> Result<RawConfig, ConfigError> {
        ConfigFile::read(path, RTPENGINE_SECTION).map(|f| f.raw)
    }

    /// `self` with every value `over` gives replaced ("flags override file":
    /// `file.overridden_by(flags)`). A given `interface` list replaces the
    /// whole list.
    pub fn overridden_by(self, over: RawConfig) -> RawConfig {
        RawConfig {
            interface: over.interface.or(self.interface),
            listen_ng: over.listen_ng.or(self.listen_ng),
            listen_http: over.listen_http.or(self.listen_http),
            port_min: over.port_min.or(self.port_min),
            port_max: over.port_max.or(self.port_max),
            num_threads: over.num_threads.or(self.num_threads),
            timeout: over.timeout.or(self.timeout),
            silent_timeout: over.silent_timeout.or(self.silent_timeout),
            final_timeout: over.final_timeout.or(self.final_timeout),
            delete_delay: over.delete_delay.or(self.delete_delay),
            offer_timeout: over.offer_timeout.or(self.offer_timeout),
            batch_wait_us: over.batch_wait_us.or(self.batch_wait_us),
            source_hold: over.source_hold.or(self.source_hold),
            log_level: over.log_level.or(self.log_level),
            foreground: over.foreground.or(self.foreground),
            pidfile: over.pidfile.or(self.pidfile),
            io_backend: over.io_backend.or(self.io_backend),
            fast_path: over.fast_path.or(self.fast_path),
            table: over.table.or(self.table),
            tos: over.tos.or(self.tos),
            max_sessions: over.max_sessions.or(self.max_sessions),
            log_stderr: over.log_stderr.or(self.log_stderr),
            log_facility: over.log_facility.or(self.log_facility),
            ng_lenient_bencode: over.ng_lenient_bencode.or(self.ng_lenient_bencode),
        }
    }
}

impl FileFormat {
    /// The format of the config file at `path` holding `text`: `*.toml` is
    /// TOML; `*.conf` and `*.ini` are rtpengine ini unless the text is
    /// valid TOML without a `[section]` header; any other name is TOML
    /// unless it has a `[section]` header and is not valid TOML.
    pub fn detect(path: &Path, text: &str, section: &str) -> FileFormat {
        let ext = path.extension().and_then(|e| e.to_str());
        if ext == Some("toml") {
            return FileFormat::Toml;
        }
        let ini_name = matches!(ext, Some("conf" | "ini"));
        let header = text.lines().any(|l| {
            l.trim()
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .is_some_and(|n| n.trim() == section)
        });
        let toml = text.parse::<toml::Table>().is_ok();
        if (ini_name && (header || !toml)) || (header && !toml) {
            FileFormat::Ini
        } else {
            FileFormat::Toml
        }
    }
}

impl ConfigFile {
    /// Reads the config file at `path` in its format
    /// ([`FileFormat::detect`]); `section` is the ini section, or the TOML
    /// table besides the top level, to read.
    pub fn read(path: &Path, section: &str) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::ReadFile {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        ConfigFile::parse(&text, path, section)
    }

    /// As [`ConfigFile::read`], from the file's text.
    pub fn parse(text: &str, path: &Path, section: &str) -> Result<ConfigFile, ConfigError> {
        match FileFormat::detect(path, text, section) {
            FileFormat::Ini => RawConfig::from_ini(text, path, section),
            FileFormat::Toml => Ok(ConfigFile {
                raw: RawConfig::from_toml_section(text, path, section)?,
                format: FileFormat::Toml,
                ignored: Vec::new(),
            }),
        }
    }

    /// The start-up warning naming the [`ignored`](Self::ignored) keys
    /// (`rtpengine.conf: ignored keys not implemented by mediarelay:
    /// recording-dir, redis`), if any; `path` names the file.
    pub fn warning(&self, path: &Path) -> Option<String> {
        if self.ignored.is_empty() {
            return None;
        }
        let name = path.file_name().unwrap_or(path.as_os_str());
        Some(format!(
            "{}: ignored keys not implemented by mediarelay: {}",
            name.to_string_lossy(),
            self.ignored.join(", ")
        ))
    }
}

impl Config {
    /// Reads `--config` (if given and not `none`, rtpengine's "no file"),
    /// applies the flags over it and validates the result. `num-threads`
    /// defaults to the CPUs this process may use. Also the way to re-read
    /// the configuration on SIGHUP.
    pub fn load(cli: &Cli) -> Result<Config, ConfigError> {
        let path = cli.config.as_deref().filter(|p| *p != Path::new("none"));
        let section = cli.config_section.as_deref().unwrap_or(RTPENGINE_SECTION);
        let file = match path {
            Some(path) => ConfigFile::read(path, section)?,
            None => ConfigFile::default(),
        };
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut config = Config::from_raw(file.raw.clone().overridden_by(cli.raw()), cpus)?;
        config.config_file = path.map(Path::to_path_buf);
        if let Some(w) = path.and_then(|p| file.warning(p)) {
            config.warnings.insert(0, w);
        }
        Ok(config)
    }

    /// Validates a merged [`RawConfig`]. `cpus` is the default (and, with
    /// the port range, the cap) of `num-threads` when it is not given.
    pub fn from_raw(raw: RawConfig, cpus: usize) -> Result<Config, ConfigError> {
        let interfaces = parse_interfaces(raw.interface.unwrap_or_default())?;
        let listen_ng = raw
            .listen_ng
            .map(|v| parse_listen("listen-ng", &v))
            .transpose()?;
        let listen_http = raw
            .listen_http
            .map(|v| parse_listen("listen-http", &v))
            .transpose()?;
        let ports = parse_ports(raw.port_min, raw.port_max)?;
        let num_threads = parse_threads(raw.num_threads, cpus, ports)?;
        let timeout = seconds_or_default("timeout", raw.timeout, DEFAULT_TIMEOUT_SECS)?;
        let silent_timeout = seconds_or_default(
            "silent-timeout",
            raw.silent_timeout,
            DEFAULT_SILENT_TIMEOUT_SECS,
        )?;
        let final_timeout = seconds(
            "final-timeout",
            raw.final_timeout,
            DEFAULT_FINAL_TIMEOUT_SECS,
        )?;
        let final_timeout = (!final_timeout.is_zero()).then_some(final_timeout);
        let delete_delay = seconds("delete-delay", raw.delete_delay, DEFAULT_DELETE_DELAY_SECS)?;
        let offer_timeout = seconds_or_default(
            "offer-timeout",
            raw.offer_timeout,
            DEFAULT_OFFER_TIMEOUT_SECS,
        )?;
        let batch_wait = match raw.batch_wait_us {
            None => Duration::ZERO,
            Some(us) if (0..=100_000).contains(&us) => Duration::from_micros(us.unsigned_abs()),
            Some(us) => {
                return Err(ConfigError::Type {
                    key: "batch-wait-us",
                    reason: format!("{us} is not 0 (off) to 100000 microseconds"),
                });
            }
        };
        let source_hold = match raw.source_hold {
            Some(v) => parse_intervals(&v).ok_or(ConfigError::SourceHold { value: v })?,
            None => Intervals::default(),
        };
        let log_level = match raw.log_level {
            Some(v) => v.parse()?,
            None => LogLevel::default(),
        };
        let io_backend = match raw.io_backend {
            Some(value) => value
                .parse()
                .map_err(|_| ConfigError::IoBackend { value })?,
            None => IoBackend::Auto,
        };
        let fast_path = match raw.fast_path {
            Some(value) => value.parse().map_err(|_| ConfigError::FastPath { value })?,
            None => FastPathMode::Auto,
        };
        let tos = raw
            .tos
            .map(|v| u8::try_from(v).map_err(|_| ConfigError::Tos { value: v }))
            .transpose()?;
        // rtpengine: a negative max-sessions is no limit (its default -1).
        let max_sessions = raw.max_sessions.and_then(|v| u64::try_from(v).ok());
        let log_facility = raw
            .log_facility
            .map(|value| {
                value
                    .parse::<Facility>()
                    .map_err(|_| ConfigError::LogFacility { value })
            })
            .transpose()?;
        let log_stderr = raw.log_stderr.unwrap_or(false);
        let mut warnings = Vec::new();
        if let (true, Some(f)) = (log_stderr, log_facility) {
            warnings.push(format!(
                "log-facility {f} ignored: log-stderr sends the logs to stderr"
            ));
        }
        if let Some(t) = raw.table {
            warnings.push(format!(
                "table {t} ignored: mediarelay needs no kernel module table; its kernel forwarding is fast-path (eBPF)"
            ));
        }
        Ok(Config {
            interfaces,
            listen_ng,
            listen_http,
            ports,
            num_threads,
            timeout,
            silent_timeout,
            final_timeout,
            delete_delay,
            offer_timeout,
            batch_wait,
            source_hold,
            log_level,
            foreground: raw.foreground.unwrap_or(false),
            pidfile: raw.pidfile,
            io_backend,
            fast_path,
            tos,
            max_sessions,
            log_stderr,
            log_facility,
            ng_lenient_bencode: raw.ng_lenient_bencode.unwrap_or(false),
            config_file: None,
            warnings,
        })
    }

    /// The syslog facility to log with: `log-facility`, unless
    /// `log-stderr` keeps the logs on stderr.
    pub fn syslog_facility(&self) -> Option<Facility> {
        self.log_facility.filter(|_| !self.log_stderr)
    }

    /// The data-plane settings: relay sockets bind to the primary
    /// interface's local address, one shard per `num-threads`, the port
    /// range, the TOS byte, the I/O backend and the media timeout.
    pub fn engine_config(&self) -> EngineConfig {
        EngineConfig {
            shards: usize::from(self.num_threads.get()),
            io_backend: self.io_backend,
            bind_ip: self.interfaces.primary().local,
            port_min: self.ports.min(),
            port_max: self.ports.max(),
            tos: self.tos,
            batch_wait: self.batch_wait,
            fast_path: self.fast_path,
            relay: RelayConfig {
                timeout: self.timeout,
                silent_timeout: self.silent_timeout,
                final_timeout: self.final_timeout,
                offer_timeout: self.offer_timeout,
                ..RelayConfig::default()
            },
            ..EngineConfig::default()
        }
    }

    /// Refuses a configuration that starts but could never relay a call:
    /// one without an NG control socket ([`ConfigError::NoControl`]).
    /// (A port range too small for one call is refused by validation; an
    /// interface address that is not on this host by the engine's start.)
    pub fn check_runnable(&self) -> Result<(), ConfigError> {
        if self.listen_ng.is_none() {
            return Err(ConfigError::NoControl);
        }
        Ok(())
    }

    /// Concurrent calls this configuration allows under an open-file limit
    /// of `nofile` descriptors.
    pub fn capacity(&self, nofile: u64) -> Capacity {
        Capacity::new(self.ports, nofile, self.num_threads.get())
    }
}

impl ConfigError {
    /// The key the error is about (canonical spelling), or `config` for
    /// errors of the file as a whole.
    pub fn key(&self) -> &str {
        match self {
            ConfigError::ReadFile { .. } | ConfigError::Ini { .. } => "config",
            ConfigError::MissingSection { .. } => "config-section",
            ConfigError::Tos { .. } => "tos",
            ConfigError::LogFacility { .. } => "log-facility",
            ConfigError::Toml { key, .. } => key.as_deref().unwrap_or("config"),
            ConfigError::UnknownKey { key } | ConfigError::CliOnly { key } => key,
            ConfigError::DuplicateKey { key }
            | ConfigError::Type { key, .. }
            | ConfigError::SocketAddr { key, .. }
            | ConfigError::Port { key, .. }
            | ConfigError::Seconds { key, .. } => key,
            ConfigError::MissingInterface | ConfigError::Interface { .. } => "interface",
            ConfigError::PortRangeInverted { .. }
            | ConfigError::PortRangeEmpty { .. }
            | ConfigError::PortRangeTooSmall { .. } => "port-min",
            ConfigError::SourceHold { .. } => "source-hold",
            ConfigError::NoControl => "listen-ng",
            ConfigError::NumThreads { .. } => "num-threads",
            ConfigError::LogLevel { .. } => "log-level",
            ConfigError::IoBackend { .. } => "io-backend",
            ConfigError::FastPath { .. } => "fast-path",
        }
    }

    /// The error as exactly one line (no trailing newline) for stderr:
    /// `mediarelay: invalid configuration: port-min 40000 > port-max 30000`.
    pub fn to_line(&self) -> String {
        one_line(&format!("mediarelay: invalid configuration: {self}"))
    }
}

impl LogLevel {
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    /// The `tracing` filter for this level.
    pub const fn level_filter(self) -> LevelFilter {
        match self {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        }
    }

    /// rtpengine's syslog level (RFC 5424 §6.2.1 severities 0-7): 0-3
    /// (emerg..err) -> error, 4 (warning) -> warn, 5-6 (notice, info) ->
    /// info, 7 (debug) -> debug.
    pub const fn from_syslog(level: u8) -> Option<LogLevel> {
        match level {
            0..=3 => Some(LogLevel::Error),
            4 => Some(LogLevel::Warn),
            5 | 6 => Some(LogLevel::Info),
            7 => Some(LogLevel::Debug),
            _ => None,
        }
    }
}

impl InterfaceName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Interface {
    /// The address SDP carries: the advertised one, else the local one.
    pub fn sdp_address(&self) -> IpAddr {
        self.advertised.unwrap_or(self.local)
    }
}

impl Interfaces {
    /// The first interface: the one the engine binds relay sockets to.
    pub fn primary(&self) -> &Interface {
        &self.first
    }

    /// All interfaces, primary first.
    pub fn iter(&self) -> impl Iterator<Item = &Interface> {
        std::iter::once(&self.first).chain(&self.rest)
    }

    /// Number of interfaces (at least 1).
    pub fn len(&self) -> usize {
        1 + self.rest.len()
    }

    /// Always false; for API symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The interfaces with logical name `name` (rtpengine's `NAME/ADDR`).
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Interface> + 'a {
        self.iter()
            .filter(move |i| i.name.as_ref().is_some_and(|n| n.as_str() == name))
    }
}

impl Capacity {
    /// Capacity of `ports` under an open-file limit of `nofile`, for a
    /// daemon running `shards` shard threads. Each call holds
    /// [`PAIRS_PER_CALL`] port pairs and [`SOCKETS_PER_CALL`] sockets; the
    /// daemon keeps 32 descriptors plus 4 per shard (eventfd, ring or
    /// epoll, spare) for itself.
    pub fn new(ports: PortRange, nofile: u64, shards: u16) -> Capacity {
        let reserved_fds = 32 + 4 * u64::from(shards);
        Capacity {
            by_ports: u64::from(ports.pairs()) / PAIRS_PER_CALL,
            by_fds: nofile.saturating_sub(reserved_fds) / SOCKETS_PER_CALL,
            nofile,
            reserved_fds,
        }
    }

    /// Concurrent calls: the smaller of the two limits.
    pub fn calls(&self) -> u64 {
        self.by_ports.min(self.by_fds)
    }

    /// The limit that binds (ports on a tie).
    pub fn limit(&self) -> CapacityLimit {
        if self.by_fds < self.by_ports {
            CapacityLimit::OpenFiles
        } else {
            CapacityLimit::Ports
        }
    }
}

impl FromStr for LogLevel {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let level = match t.to_ascii_lowercase().as_str() {
            "error" | "err" => Some(LogLevel::Error),
            "warn" | "warning" => Some(LogLevel::Warn),
            "info" => Some(LogLevel::Info),
            "debug" => Some(LogLevel::Debug),
            "trace" => Some(LogLevel::Trace),
            n => n.parse::<u8>().ok().and_then(LogLevel::from_syslog),
        };
        level.ok_or_else(|| ConfigError::LogLevel {
            value: s.to_string(),
        })
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Interface {
    type Err = InterfaceError;

    /// `ADDR`, `ADDR!ADVERTISED`, `NAME/ADDR` or `NAME/ADDR!ADVERTISED`;
    /// IPv6 addresses may be bracketed (`[2001:db8::1]`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.is_empty() {
            return Err(InterfaceError::Empty);
        }
        let (name, rest) = match s.split_once('/') {
            Some((n, r)) => {
                let n = n.trim();
                if n.is_empty() {
                    return Err(InterfaceError::EmptyName);
                }
                (Some(InterfaceName(n.to_string())), r)
            }
            None => (None, s),
        };
        let (local, advertised) = match rest.split_once('!') {
            Some((l, a)) => (l, Some(a)),
            None => (rest, None),
        };
        let local = parse_ip(local).ok_or(InterfaceError::NotAnIp)?;
        let advertised = advertised
            .map(|a| parse_ip(a).ok_or_else(|| InterfaceError::AdvertisedNotAnIp(a.to_string())))
            .transpose()?;
        match advertised {
            Some(adv) if adv.is_ipv4() != local.is_ipv4() => {
                return Err(InterfaceError::FamilyMismatch {
                    local,
                    advertised: adv,
                });
            }
            None if local.is_unspecified() => {
                return Err(InterfaceError::UnspecifiedWithoutAdvertised(local));
            }
            _ => {}
        }
        Ok(Interface {
            name,
            local,
            advertised,
        })
    }
}

impl fmt::Display for Interface {
    /// The `[NAME/]ADDR[!ADVERTISED]` form [`Interface::from_str`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = &self.name {
            write!(f, "{}/", n.0)?;
        }
        write!(f, "{}", self.local)?;
        if let Some(a) = self.advertised {
            write!(f, "!{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for InterfaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for CapacityLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CapacityLimit::Ports => "the port range",
            CapacityLimit::OpenFiles => "the open-file limit",
        })
    }
}

impl fmt::Display for Capacity {
    /// One log line: both limits and which one binds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "capacity: {} concurrent calls (port range: {} calls at {} port pairs each; \
             open-file limit {}: {} calls at {} sockets each, {} descriptors reserved); \
             bound by {}",
            self.calls(),
            self.by_ports,
            PAIRS_PER_CALL,
            self.nofile,
            self.by_fds,
            SOCKETS_PER_CALL,
            self.reserved_fds,
            self.limit()
        )
    }
}

fn key_prefix(key: Option<&str>) -> String {
    key.map(|k| format!("at key {k:?}: ")).unwrap_or_default()
}

/// Collapses any line breaks so the message is a single line.
fn one_line(s: &str) -> String {
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The bare key a `key = ...` line of `text` starts with, if any.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let (k, _) = l.split_once('=')?;
    let k = k.trim().trim_matches('"');
    let bare = !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    bare.then(|| k.replace('_', "-"))
}

/// Splits rtpengine's `;`-separated multi-values and drops empty items.
fn split_list(items: &[String]) -> Vec<String> {
    items
        .iter()
        .flat_map(|s| s.split(';'))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.trim();
    let s = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

fn parse_interfaces(values: Vec<String>) -> Result<Interfaces, ConfigError> {
    let mut parsed = Vec::with_capacity(values.len());
    for value in values {
        match value.parse::<Interface>() {
            Ok(i) => parsed.push(i),
            Err(reason) => return Err(ConfigError::Interface { value, reason }),
        }
    }
    let mut it = parsed.into_iter();
    let first = it.next().ok_or(ConfigError::MissingInterface)?;
    Ok(Interfaces {
        first,
        rest: it.collect(),
    })
}

/// `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT`, or `PORT` alone (all IPv4
/// addresses, as rtpengine).
/// A `listen-ng` / `listen-http` value (`key` names it in the error):
/// `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT`, or `PORT` (all IPv4
/// addresses).
pub fn parse_listen(key: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    let v = value.trim();
    let err = || ConfigError::SocketAddr {
        key,
        value: value.to_string(),
    };
    if let Ok(a) = v.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(port) = v.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    let (host, port) = v.rsplit_once(':').ok_or_else(err)?;
    let port: u16 = port.parse().map_err(|_| err())?;
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    Err(err())
}

fn parse_port(key: &'static str, value: Option<i64>, default: u16) -> Result<u16, ConfigError> {
    let Some(v) = value else {
        return Ok(default);
    };
    match u16::try_from(v) {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(ConfigError::Port { key, value: v }),
    }
}

/// The port range; it must hold the [`PAIRS_PER_CALL`] pairs of one call
/// (a smaller one could never relay anything).
fn parse_ports(min: Option<i64>, max: Option<i64>) -> Result<PortRange, ConfigError> {
    let min = parse_port("port-min", min, DEFAULT_PORT_MIN)?;
    let max = parse_port("port-max", max, DEFAULT_PORT_MAX)?;
    let range = PortRange::new(min, max).map_err(|e| match e {
        RangeError::Inverted { .. } => ConfigError::PortRangeInverted { min, max },
        // PortZero is excluded above; the rest cannot come from `new`.
        _ => ConfigError::PortRangeEmpty { min, max },
    })?;
    if u64::from(range.pairs()) < PAIRS_PER_CALL {
        return Err(ConfigError::PortRangeTooSmall {
            min,
            max,
            pairs: range.pairs(),
            need: PAIRS_PER_CALL,
        });
    }
    Ok(range)
}

/// Packet intervals with at most one decimal (`1.5`, `3`), 0.5 to 20.
fn parse_intervals(s: &str) -> Option<Intervals> {
    let s = s.trim();
    let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
    if int.is_empty()
        || frac.len() != 1
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let tenths = int
        .parse::<u16>()
        .ok()?
        .checked_mul(10)?
        .checked_add(frac.parse().ok()?)?;
    (5..=200)
        .contains(&tenths)
        .then(|| Intervals::from_tenths(tenths))
}

/// `num-threads`, or the CPU count; never more shards than port pairs (a
/// shard owns a non-empty slice of the range).
fn parse_threads(
    value: Option<i64>,
    cpus: usize,
    ports: PortRange,
) -> Result<NonZeroU16, ConfigError> {
    let pairs = ports.pairs();
    let Some(v) = value else {
        let n = u32::try_from(cpus)
            .unwrap_or(u32::MAX)
            .clamp(1, pairs.max(1));
        let n = u16::try_from(n).unwrap_or(u16::MAX);
        // n >= 1 by the clamp above.
        return Ok(NonZeroU16::new(n).unwrap_or(NonZeroU16::MIN));
    };
    let n = u16::try_from(v)
        .ok()
        .and_then(NonZeroU16::new)
        .ok_or_else(|| ConfigError::NumThreads {
            value: v,
            reason: format!("is not a thread count (1-{})", u16::MAX),
        })?;
    if u32::from(n.get()) > pairs {
        return Err(ConfigError::NumThreads {
            value: v,
            reason: format!(
                "exceeds the {pairs} port pairs of {}-{} (each shard needs at least one)",
                ports.min(),
                ports.max()
            ),
        });
    }
    Ok(n)
}

fn seconds(key: &'static str, value: Option<i64>, default: u32) -> Result<Duration, ConfigError> {
    let Some(v) = value else {
        return Ok(Duration::from_secs(u64::from(default)));
    };
    u32::try_from(v)
        .map(|s| Duration::from_secs(u64::from(s)))
        .map_err(|_| ConfigError::Seconds { key, value: v })
}

/// As [`seconds`], with 0 meaning the default (rtpengine's reading of
/// `timeout` and `silent-timeout`).
fn seconds_or_default(
    key: &'static str,
    value: Option<i64>,
    default: u32,
) -> Result<Duration, ConfigError> {
    let d = seconds(key, value, default)?;
    if d.is_zero() {
        return Ok(Duration::from_secs(u64::from(default)));
    }
    Ok(d)
}

/// A string (items separated by `;`) or an array of strings.
fn de_string_list<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct V;
    impl<'de> serde::de::Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or an array of strings")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(split_list(&[s.to_string()]))
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut items = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                items.push(s);
            }
            Ok(split_list(&items))
        }
    }
    d.deserialize_any(V).map(Some)
}

/// A string or a number, kept as a string (`log-level = 7`,
/// `source-hold = 1.5`).
fn de_scalar_string<'de, D>(d: D) -> Result<Option<String>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or a number")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            Ok(s.to_string())
        }
        fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
            Ok(n.to_string())
        }
        fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
            Ok(n.to_string())
        }
        fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Self::Value, E> {
            Ok(n.to_string())
        }
    }
    d.deserialize_any(V).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};
    use proptest::prelude::*;

    fn file(text: &str) -> Result<RawConfig, ConfigError> {
        RawConfig::from_toml(text, Path::new("test.toml"))
    }

    fn cli(args: &[&str]) -> Cli {
        let mut v = vec!["mediarelay"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).expect("valid command line")
    }

    fn valid(raw: RawConfig) -> Config {
        Config::from_raw(raw, 4).expect("valid config")
    }

    fn invalid(raw: RawConfig) -> ConfigError {
        Config::from_raw(raw, 4).expect_err("invalid config")
    }

    fn base() -> RawConfig {
        RawConfig {
            interface: Some(vec!["10.0.0.5".into()]),
            ..RawConfig::default()
        }
    }

    /// The error names `key` both in [`ConfigError::key`] and in its line.
    fn assert_names(e: &ConfigError, key: &str) {
        assert_eq!(e.key(), key, "{e:?}");
        let line = e.to_line();
        assert!(line.contains(key), "{line:?} does not name {key}");
        assert!(!line.contains('\n'), "{line:?} is not one line");
    }

    #[test]
    fn valid_toml_with_every_key() {
        let raw = file(
            r#"
interface = ["int/10.0.0.5!203.0.113.5", "ext/192.0.2.7"]
listen-ng = "127.0.0.1:2223"
listen-http = "localhost:9101"
port-min = 40000
port-max = 40999
num-threads = 2
timeout = 30
silent-timeout = 600
final-timeout = 7200
delete-delay = 5
log-level = "debug"
foreground = true
pidfile = "/run/mediarelay.pid"
io-backend = "epoll"
table = 0
tos = 184
max-sessions = 5000
log-stderr = true
log-facility = "local3"
"#,
        )
        .unwrap();
        let c = valid(raw);
        assert_eq!(c.tos, Some(184));
        assert_eq!(c.max_sessions, Some(5000));
        assert!(c.log_stderr);
        assert_eq!(c.log_facility, Some(Facility::Local(3)));
        assert_eq!(c.syslog_facility(), None, "log-stderr wins");
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains("log-facility local3 ignored"))
        );
        let p = c.interfaces.primary();
        assert_eq!(p.name.as_ref().map(InterfaceName::as_str), Some("int"));
        assert_eq!(p.local, "10.0.0.5".parse::<IpAddr>().unwrap());
        assert_eq!(p.sdp_address(), "203.0.113.5".parse::<IpAddr>().unwrap());
        assert_eq!(c.interfaces.len(), 2);
        assert_eq!(c.interfaces.named("ext").count(), 1);
        assert_eq!(c.listen_ng, Some("127.0.0.1:2223".parse().unwrap()));
        assert_eq!(c.listen_http, Some("127.0.0.1:9101".parse().unwrap()));
        assert_eq!((c.ports.min(), c.ports.max()), (40000, 40999));
        assert_eq!(c.num_threads.get(), 2);
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.silent_timeout, Duration::from_secs(600));
        assert_eq!(c.final_timeout, Some(Duration::from_secs(7200)));
        assert_eq!(c.delete_delay, Duration::from_secs(5));
        assert_eq!(c.log_level, LogLevel::Debug);
        assert!(c.foreground);
        assert_eq!(c.pidfile, Some(PathBuf::from("/run/mediarelay.pid")));
        assert_eq!(c.io_backend, IoBackend::Epoll);
        assert!(c.warnings.iter().any(|w| w.contains("table")));
        assert!(
            !c.warnings.iter().any(|w| w.contains("interface")),
            "every interface relays"
        );
    }

    #[test]
    fn source_hold_offer_timeout_and_runnable() {
        let c = valid(base());
        assert_eq!(c.source_hold, Intervals::from_tenths(15));
        assert_eq!(c.offer_timeout, Duration::from_secs(3600));
        assert_eq!(
            c.engine_config().relay.offer_timeout,
            Duration::from_secs(3600)
        );
        assert_eq!(c.check_runnable(), Err(ConfigError::NoControl));
        assert_names(&ConfigError::NoControl, "listen-ng");
        for (text, tenths) in [("1.5", 15), ("3", 30), (" 0.5 ", 5), ("20.0", 200)] {
            let c = valid(RawConfig {
                source_hold: Some(text.into()),
                ..base()
            });
            assert_eq!(c.source_hold.tenths(), tenths, "{text}");
        }
        for bad in ["", ".5", "1.", "1.55", "-1", "21", "0.4", "1e1"] {
            assert_eq!(parse_intervals(bad), None, "{bad:?}");
        }
        let raw = file("source-hold = 2.5\noffer-timeout = 0\nlisten-ng = \"2223\"").unwrap();
        let c = valid(RawConfig {
            interface: Some(vec!["10.0.0.5".into()]),
            ..raw
        });
        assert_eq!(c.source_hold.tenths(), 25);
        assert_eq!(
            c.offer_timeout,
            Duration::from_secs(3600),
            "0 means default"
        );
        assert_eq!(c.check_runnable(), Ok(()));
        // Two pairs (one call) is the smallest usable range.
        let c = valid(RawConfig {
            port_min: Some(31000),
            port_max: Some(31003),
            ..base()
        });
        assert_eq!(c.capacity(1 << 20).calls(), 1);
    }

    #[test]
    fn every_file_key_is_accepted_in_both_spellings() {
        let value = |k: &str| match k {
            "foreground" | "log-stderr" | "ng-lenient-bencode" => "true",
            "interface" | "listen-ng" | "listen-http" | "log-level" | "pidfile" | "io-backend"
            | "log-facility" => "\"x\"",
            "fast-path" => "\"off\"",
            _ => "1",
        };
        for key in FILE_KEYS {
            for spelling in [key.to_string(), key.replace('-', "_")] {
                let text = format!("{spelling} = {}", value(key));
                let raw = file(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
                assert_ne!(raw, RawConfig::default(), "{text} set nothing");
            }
        }
    }

    #[test]
    fn rtpengine_section_and_semicolon_lists() {
        let raw = file(
            "[rtpengine]\ninterface = \"internal/12.23.34.45;external/23.34.45.54\"\n\
             listen-ng = \"localhost:2223\"\nlog-level = 7\ntable = -1\n",
        )
        .unwrap();
        let c = valid(raw);
        assert_eq!(c.interfaces.len(), 2);
        assert_eq!(c.interfaces.named("external").count(), 1);
        assert_eq!(c.listen_ng, Some("127.0.0.1:2223".parse().unwrap()));
        assert_eq!(c.log_level, LogLevel::Debug);
    }

    /// An rtpengine.conf as Debian ships it, trimmed: the implemented keys
    /// map, the others are named, other sections are skipped.
    const RTPENGINE_CONF: &str = "\
# comment
; also a comment
[rtpengine]

table = 0
interface = internal/10.0.0.5;external/10.0.1.5!203.0.113.5
interface = 10.0.2.5
listen-ng = 127.0.0.1:2223
port-min = 30000
port-max = 40000
timeout = 60
silent-timeout = 3600
tos = 184
# max-sessions = 5000
log-level = 6
log-stderr = false
foreground = true
recording-dir = /var/spool/rtpengine
recording-method = proc
redis = 127.0.0.1:6379/5
recording-dir = /tmp
num_threads = 2
pidfile = \"/run/rtpengine.pid\"

[rtpengine-testing]
table = -1
interface = 10.15.20.121
listen-ng = 2224
log-level = 7
homer = 10.0.0.9:9060
";

    fn ini(text: &str, section: &str) -> Result<ConfigFile, ConfigError> {
        RawConfig::from_ini(text, Path::new("rtpengine.conf"), section)
    }

    #[test]
    fn rtpengine_ini_maps_implemented_keys_and_names_the_rest() {
        let f = ini(RTPENGINE_CONF, "rtpengine").unwrap();
        assert_eq!(f.format, FileFormat::Ini);
        assert_eq!(f.ignored, ["recording-dir", "recording-method", "redis"]);
        assert_eq!(
            f.warning(Path::new("/etc/rtpengine/rtpengine.conf"))
                .as_deref(),
            Some(
                "rtpengine.conf: ignored keys not implemented by mediarelay: \
                 recording-dir, recording-method, redis"
            )
        );
        let c = valid(f.raw);
        assert_eq!(c.interfaces.len(), 3, "repeated and ;-separated");
        assert_eq!(c.interfaces.named("external").count(), 1);
        assert_eq!(c.listen_ng, Some("127.0.0.1:2223".parse().unwrap()));
        assert_eq!((c.ports.min(), c.ports.max()), (30000, 39999));
        assert_eq!(c.timeout, Duration::from_secs(60));
        assert_eq!(c.tos, Some(184));
        assert_eq!(c.max_sessions, None, "commented out");
        assert_eq!(c.log_level, LogLevel::Info);
        assert!(!c.log_stderr);
        assert!(c.foreground);
        assert_eq!(c.num_threads.get(), 2, "snake_case spelling");
        assert_eq!(c.pidfile, Some(PathBuf::from("/run/rtpengine.pid")));

        let t = ini(RTPENGINE_CONF, "rtpengine-testing").unwrap();
        assert_eq!(t.ignored, ["homer"]);
        let c = valid(t.raw);
        assert_eq!(c.listen_ng, Some("0.0.0.0:2224".parse().unwrap()));
        assert_eq!(c.log_level, LogLevel::Debug);
        assert!(c.warnings.iter().any(|w| w.contains("table -1 ignored")));
        assert_eq!(
            ini("[rtpengine]\n", "rtpengine").unwrap(),
            ConfigFile {
                format: FileFormat::Ini,
                ..ConfigFile::default()
            }
        );
    }

    #[test]
    fn rtpengine_ini_errors_name_key_or_line() {
        let sec = |body: &str| format!("[rtpengine]\ninterface = 10.0.0.5\n{body}\n");
        for (body, key) in [
            ("port-min = many", "port-min"),
            ("tos = 256", "tos"),
            ("tos = EF", "tos"),
            ("foreground = maybe", "foreground"),
            ("log-stderr = yes", "log-stderr"),
            ("log-level = loud", "log-level"),
            ("log-facility = local9", "log-facility"),
            ("timeout = 1\ntimeout = 2", "timeout"),
            ("config-file = /x", "config-file"),
            ("interface = eth0", "interface"),
        ] {
            let e = ini(&sec(body), "rtpengine")
                .and_then(|f| Config::from_raw(f.raw, 4))
                .expect_err(body);
            assert_names(&e, key);
        }
        let e = ini(RTPENGINE_CONF, "rtpengine-production").unwrap_err();
        assert_names(&e, "config-section");
        assert!(e.to_string().contains("[rtpengine-production]"), "{e}");
        let e = ini("[rtpengine]\ninterface 10.0.0.5\n", "rtpengine").unwrap_err();
        assert!(matches!(e, ConfigError::Ini { line: 2, .. }), "{e:?}");
        assert_names(&e, "config");
        let e = ini("interface = 10.0.0.5\n[rtpengine]\n", "rtpengine").unwrap_err();
        assert!(matches!(e, ConfigError::Ini { line: 1, .. }), "{e:?}");
    }

    #[test]
    fn file_format_detection() {
        let d = |name: &str, text: &str| FileFormat::detect(Path::new(name), text, "rtpengine");
        let ini_text = "[rtpengine]\ninterface = 10.0.0.5\n";
        let toml_text = "[rtpengine]\ninterface = \"10.0.0.5\"\n";
        assert_eq!(d("rtpengine.conf", ini_text), FileFormat::Ini);
        assert_eq!(d("rtpengine.conf", toml_text), FileFormat::Ini);
        assert_eq!(d("x.ini", "interface = 10.0.0.5\n"), FileFormat::Ini);
        assert_eq!(d("m.conf", "interface = \"10.0.0.5\"\n"), FileFormat::Toml);
        assert_eq!(d("m.toml", ini_text), FileFormat::Toml);
        assert_eq!(d("config", ini_text), FileFormat::Ini);
        assert_eq!(d("config", toml_text), FileFormat::Toml);
        assert_eq!(d("config", "port-min = x y\n"), FileFormat::Toml);
        // A quoted value reads the same either way.
        let a = ConfigFile::parse(toml_text, Path::new("a.conf"), "rtpengine").unwrap();
        let b = ConfigFile::parse(toml_text, Path::new("a.toml"), "rtpengine").unwrap();
        assert_eq!(a.raw, b.raw);
        // --config-section picks the TOML table too.
        let t =
            ConfigFile::parse("[edge]\nport-min = 31000\n", Path::new("m.toml"), "edge").unwrap();
        assert_eq!(t.raw.port_min, Some(31000));
    }

    #[test]
    fn load_reads_rtpengine_conf_section_and_none() {
        let dir =
            std::env::temp_dir().join(format!("mediarelay-config-ini-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rtpengine.conf");
        std::fs::write(&path, RTPENGINE_CONF).unwrap();
        let p = path.to_str().unwrap();
        let c = Config::load(&cli(&["--config-file", p, "--tos", "46"])).unwrap();
        assert_eq!(c.tos, Some(46), "flags override the file");
        assert_eq!(c.config_file.as_deref(), Some(path.as_path()));
        assert!(
            c.warnings[0].starts_with("rtpengine.conf: ignored keys"),
            "{:?}",
            c.warnings
        );
        let c = Config::load(&cli(&[
            "--config-file",
            p,
            "--config-section",
            "rtpengine-testing",
        ]))
        .unwrap();
        assert_eq!(c.log_level, LogLevel::Debug);
        assert!(
            c.warnings[0].ends_with("mediarelay: homer"),
            "{:?}",
            c.warnings
        );
        let e = Config::load(&cli(&["--config", p, "--config-section", "nope"])).unwrap_err();
        assert_names(&e, "config-section");
        let c = Config::load(&cli(&["--config-file", "none", "-i", "10.0.0.5"])).unwrap();
        assert_eq!(c.config_file, None, "rtpengine's --config-file=none");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn tos_max_sessions_and_log_facility() {
        for (tos, want) in [(0, 0u8), (46, 46), (184, 184), (255, 255)] {
            let c = valid(RawConfig {
                tos: Some(tos),
                ..base()
            });
            assert_eq!((c.tos, c.engine_config().tos), (Some(want), Some(want)));
        }
        assert_eq!(
            valid(base()).engine_config().tos,
            None,
            "untouched by default"
        );
        for bad in [-1, 256, 1 << 40] {
            let e = invalid(RawConfig {
                tos: Some(bad),
                ..base()
            });
            assert_eq!(e, ConfigError::Tos { value: bad });
            assert_names(&e, "tos");
        }
        for (v, want) in [
            (None, None),
            (Some(-1), None),
            (Some(-7), None),
            (Some(0), Some(0)),
            (Some(1), Some(1)),
        ] {
            let c = valid(RawConfig {
                max_sessions: v,
                ..base()
            });
            assert_eq!(c.max_sessions, want, "{v:?}");
        }
        let c = valid(RawConfig {
            log_facility: Some("local0".into()),
            ..base()
        });
        assert_eq!(c.syslog_facility(), Some(Facility::Local(0)));
        assert!(c.warnings.is_empty());
        assert_eq!(valid(base()).syslog_facility(), None);
        let e = invalid(RawConfig {
            log_facility: Some("kernel".into()),
            ..base()
        });
        assert_names(&e, "log-facility");
        let raw = cli(&[
            "--tos",
            "184",
            "--max-sessions",
            "-1",
            "-E",
            "--log-facility",
            "daemon",
        ])
        .raw();
        assert_eq!(
            (
                raw.tos,
                raw.max_sessions,
                raw.log_stderr,
                raw.log_facility.as_deref()
            ),
            (Some(184), Some(-1), Some(true), Some("daemon"))
        );
    }

    /// `tuning/mediarelay.toml`, the example install.sh puts in /etc: valid
    /// as shipped (everything commented), it names every key, and with its
    /// `# key = value` lines uncommented it still loads and shows the real
    /// defaults.
    #[test]
    fn example_config_file_is_valid_and_shows_the_defaults() {
        let text = include_str!("../tuning/mediarelay.toml");
        let path = Path::new("tuning/mediarelay.toml");
        assert_eq!(RawConfig::from_toml(text, path), Ok(RawConfig::default()));
        let mut uncommented = String::new();
        for line in text.lines() {
            let l = line.strip_prefix("# ").unwrap_or(line);
            let key = l.split(" = ").next().unwrap_or_default();
            if FILE_KEYS.contains(&key) {
                uncommented.push_str(l);
                uncommented.push('\n');
            }
        }
        for key in FILE_KEYS {
            assert!(
                uncommented
                    .lines()
                    .any(|l| l.starts_with(&format!("{key} = "))),
                "{key} missing from tuning/mediarelay.toml"
            );
        }
        let raw = RawConfig::from_toml(&uncommented, path).unwrap();
        let c = valid(raw.clone());
        // Keys without a default carry examples; the rest must be the defaults.
        let d = valid(RawConfig {
            interface: raw.interface,
            listen_ng: raw.listen_ng,
            listen_http: raw.listen_http,
            num_threads: raw.num_threads,
            pidfile: raw.pidfile,
            table: raw.table,
            tos: raw.tos,
            log_facility: raw.log_facility,
            ..RawConfig::default()
        });
        assert_eq!(c, d);
    }

    #[test]
    fn defaults() {
        let c = valid(base());
        assert_eq!(c.listen_ng, None);
        assert_eq!(c.listen_http, None);
        assert_eq!(
            (c.ports.min(), c.ports.max()),
            (DEFAULT_PORT_MIN, DEFAULT_PORT_MAX - 1)
        );
        assert_eq!(c.num_threads.get(), 4, "defaults to the CPU count");
        assert_eq!(c.timeout, Duration::from_secs(60));
        assert_eq!(c.silent_timeout, Duration::from_secs(3600));
        assert_eq!(c.final_timeout, None);
        assert_eq!(c.delete_delay, Duration::from_secs(30));
        assert_eq!(c.log_level, LogLevel::Info);
        assert!(!c.foreground);
        assert_eq!(c.pidfile, None);
        assert_eq!(c.io_backend, IoBackend::Auto);
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn zero_timeouts_mean_default_as_in_rtpengine() {
        let c = valid(RawConfig {
            timeout: Some(0),
            silent_timeout: Some(0),
            final_timeout: Some(0),
            delete_delay: Some(0),
            ..base()
        });
        assert_eq!(c.timeout, Duration::from_secs(60));
        assert_eq!(c.silent_timeout, Duration::from_secs(3600));
        assert_eq!(c.final_timeout, None);
        assert_eq!(c.delete_delay, Duration::ZERO);
    }

    #[test]
    fn auto_threads_never_exceed_port_pairs() {
        let c = Config::from_raw(
            RawConfig {
                port_min: Some(41000),
                port_max: Some(41005),
                ..base()
            },
            64,
        )
        .unwrap();
        assert_eq!(c.num_threads.get(), 3);
    }

    #[test]
    fn flags_override_file() {
        let file = file(
            "interface = \"10.0.0.5\"\nport-min = 30000\nport-max = 40999\nlog-level = \"warn\"\n\
             timeout = 90\n",
        )
        .unwrap();
        let flags = cli(&[
            "--port-min",
            "35000",
            "--log-level",
            "trace",
            "--interface",
            "192.0.2.1!198.51.100.1",
            "--foreground",
        ])
        .raw();
        let c = valid(file.overridden_by(flags));
        assert_eq!((c.ports.min(), c.ports.max()), (35000, 40999));
        assert_eq!(c.log_level, LogLevel::Trace);
        assert_eq!(c.timeout, Duration::from_secs(90), "file value kept");
        assert_eq!(c.interfaces.len(), 1, "flags replace the interface list");
        assert_eq!(c.interfaces.primary().to_string(), "192.0.2.1!198.51.100.1");
        assert!(c.foreground);
    }

    #[test]
    fn load_reads_config_file_and_applies_flags() {
        let dir = std::env::temp_dir().join(format!("mediarelay-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.toml");
        std::fs::write(&path, "interface = \"127.0.0.1\"\nport-max = 30999\n").unwrap();
        let c = Config::load(&cli(&[
            "--config-file",
            path.to_str().unwrap(),
            "--port-min",
            "30100",
        ]))
        .unwrap();
        assert_eq!((c.ports.min(), c.ports.max()), (30100, 30999));
        assert_eq!(c.config_file.as_deref(), Some(path.as_path()));
        let missing = Config::load(&cli(&["--config", dir.join("nope").to_str().unwrap()]));
        assert_names(&missing.unwrap_err(), "config");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_duplicate_and_cli_only_keys() {
        let e = file("foo = 1").unwrap_err();
        assert_eq!(e, ConfigError::UnknownKey { key: "foo".into() });
        assert_eq!(
            e.to_line(),
            "mediarelay: invalid configuration: unknown key \"foo\" in config file"
        );
        assert_names(&file("port-min = 1\nport_min = 2").unwrap_err(), "port-min");
        assert_names(&file("config = \"/x\"").unwrap_err(), "config");
        assert_names(
            &file("[rtpengine]\nbogus-key = 1").unwrap_err(),
            "bogus-key",
        );
    }

    #[test]
    fn type_errors_name_their_key() {
        for (text, key) in [
            ("port-min = \"many\"", "port-min"),
            ("port_max = true", "port-max"),
            ("foreground = \"yes\"", "foreground"),
            ("interface = 5", "interface"),
            ("log-level = [1]", "log-level"),
            ("source-hold = true", "source-hold"),
            ("timeout = [1]", "timeout"),
        ] {
            let e = file(text).unwrap_err();
            assert!(matches!(e, ConfigError::Type { .. }), "{text}: {e:?}");
            assert_names(&e, key);
        }
    }

    #[test]
    fn toml_syntax_error_names_line_and_key() {
        let e = file("interface = \"127.0.0.1\"\nport-min = 30000 40000\n").unwrap_err();
        let ConfigError::Toml { line, .. } = &e else {
            panic!("{e:?}");
        };
        assert_eq!(*line, 2);
        assert_names(&e, "port-min");
    }

    #[test]
    fn every_validation_error_names_its_key() {
        let cases: Vec<(RawConfig, &str)> = vec![
            (RawConfig::default(), "interface"),
            (
                RawConfig {
                    interface: Some(vec!["x.y".into()]),
                    ..base()
                },
                "interface",
            ),
            (
                RawConfig {
                    listen_ng: Some("nowhere".into()),
                    ..base()
                },
                "listen-ng",
            ),
            (
                RawConfig {
                    listen_http: Some("example.com:80".into()),
                    ..base()
                },
                "listen-http",
            ),
            (
                RawConfig {
                    port_min: Some(0),
                    ..base()
                },
                "port-min",
            ),
            (
                RawConfig {
                    port_max: Some(70000),
                    ..base()
                },
                "port-max",
            ),
            (
                RawConfig {
                    port_min: Some(40000),
                    port_max: Some(30000),
                    ..base()
                },
                "port-min",
            ),
            (
                RawConfig {
                    port_min: Some(30001),
                    port_max: Some(30001),
                    ..base()
                },
                "port-min",
            ),
            (
                RawConfig {
                    num_threads: Some(0),
                    ..base()
                },
                "num-threads",
            ),
            (
                RawConfig {
                    num_threads: Some(8),
                    port_min: Some(30000),
                    port_max: Some(30009),
                    ..base()
                },
                "num-threads",
            ),
            (
                RawConfig {
                    timeout: Some(-1),
                    ..base()
                },
                "timeout",
            ),
            (
                RawConfig {
                    silent_timeout: Some(-5),
                    ..base()
                },
                "silent-timeout",
            ),
            (
                RawConfig {
                    final_timeout: Some(1 << 40),
                    ..base()
                },
                "final-timeout",
            ),
            (
                RawConfig {
                    delete_delay: Some(-1),
                    ..base()
                },
                "delete-delay",
            ),
            (
                RawConfig {
                    log_level: Some("loud".into()),
                    ..base()
                },
                "log-level",
            ),
            (
                RawConfig {
                    log_level: Some("8".into()),
                    ..base()
                },
                "log-level",
            ),
            (
                RawConfig {
                    io_backend: Some("kqueue".into()),
                    ..base()
                },
                "io-backend",
            ),
            (
                RawConfig {
                    offer_timeout: Some(-1),
                    ..base()
                },
                "offer-timeout",
            ),
            (
                RawConfig {
                    source_hold: Some("fast".into()),
                    ..base()
                },
                "source-hold",
            ),
            (
                RawConfig {
                    source_hold: Some("0.25".into()),
                    ..base()
                },
                "source-hold",
            ),
            (
                RawConfig {
                    port_min: Some(31000),
                    port_max: Some(31001),
                    ..base()
                },
                "port-min",
            ),
        ];
        for (raw, key) in cases {
            let e = invalid(raw.clone());
            assert_names(&e, key);
        }
    }

    #[test]
    fn specific_error_messages() {
        let e = invalid(RawConfig {
            port_min: Some(40000),
            port_max: Some(30000),
            ..base()
        });
        assert_eq!(e.to_string(), "port-min 40000 > port-max 30000");
        let e = invalid(RawConfig {
            interface: Some(vec!["x.y".into()]),
            ..base()
        });
        assert_eq!(e.to_string(), "interface \"x.y\" is not an IP address");
        let e = invalid(RawConfig {
            listen_ng: Some("x".into()),
            ..base()
        });
        assert!(
            e.to_string()
                .starts_with("listen-ng: invalid socket address"),
            "{e}"
        );
    }

    #[test]
    fn interface_forms() {
        let i: Interface = "10.0.0.5!203.0.113.5".parse().unwrap();
        assert_eq!(i.local, "10.0.0.5".parse::<IpAddr>().unwrap());
        assert_eq!(i.advertised, Some("203.0.113.5".parse().unwrap()));
        assert_eq!(i.name, None);
        let i: Interface = "pub/[2001:db8::1]!2001:db8::2".parse().unwrap();
        assert_eq!(i.name.as_ref().unwrap().as_str(), "pub");
        assert_eq!(i.local, "2001:db8::1".parse::<IpAddr>().unwrap());
        let i: Interface = "0.0.0.0!203.0.113.5".parse().unwrap();
        assert_eq!(i.sdp_address(), "203.0.113.5".parse::<IpAddr>().unwrap());
        for (s, e) in [
            ("", InterfaceError::Empty),
            ("/10.0.0.1", InterfaceError::EmptyName),
            ("eth0", InterfaceError::NotAnIp),
            (
                "10.0.0.1!nat",
                InterfaceError::AdvertisedNotAnIp("nat".into()),
            ),
            (
                "10.0.0.1!2001:db8::1",
                InterfaceError::FamilyMismatch {
                    local: "10.0.0.1".parse().unwrap(),
                    advertised: "2001:db8::1".parse().unwrap(),
                },
            ),
            (
                "0.0.0.0",
                InterfaceError::UnspecifiedWithoutAdvertised("0.0.0.0".parse().unwrap()),
            ),
        ] {
            assert_eq!(s.parse::<Interface>(), Err(e), "{s:?}");
        }
    }

    #[test]
    fn listen_forms() {
        let p = |s: &str| parse_listen("listen-ng", s);
        assert_eq!(p("127.0.0.1:2223"), Ok("127.0.0.1:2223".parse().unwrap()));
        assert_eq!(p("[::1]:2223"), Ok("[::1]:2223".parse().unwrap()));
        assert_eq!(p("2223"), Ok("0.0.0.0:2223".parse().unwrap()));
        assert_eq!(p("LOCALHOST:1"), Ok("127.0.0.1:1".parse().unwrap()));
        assert!(p("127.0.0.1").is_err());
        assert!(p("127.0.0.1:99999").is_err());
        assert!(p(":").is_err());
    }

    #[test]
    fn log_levels() {
        for (s, l) in [
            ("error", LogLevel::Error),
            ("WARNING", LogLevel::Warn),
            ("info", LogLevel::Info),
            ("debug", LogLevel::Debug),
            ("trace", LogLevel::Trace),
            ("3", LogLevel::Error),
            ("4", LogLevel::Warn),
            ("6", LogLevel::Info),
            ("7", LogLevel::Debug),
        ] {
            assert_eq!(s.parse::<LogLevel>(), Ok(l), "{s}");
        }
        assert_eq!(LogLevel::Warn.level_filter(), LevelFilter::WARN);
    }

    #[test]
    fn engine_config_mapping() {
        let c = valid(RawConfig {
            interface: Some(vec!["a/10.0.0.5!203.0.113.5".into(), "10.0.0.6".into()]),
            port_min: Some(41000),
            port_max: Some(41099),
            num_threads: Some(3),
            timeout: Some(45),
            io_backend: Some("uring".into()),
            ..RawConfig::default()
        });
        let e = c.engine_config();
        assert_eq!(e.bind_ip, "10.0.0.5".parse::<IpAddr>().unwrap());
        assert_eq!((e.port_min, e.port_max), (41000, 41099));
        assert_eq!(e.shards, 3);
        assert_eq!(e.io_backend, IoBackend::Uring);
        assert_eq!(e.relay.timeout, Duration::from_secs(45));
    }

    #[test]
    fn capacity_names_the_binding_limit() {
        let c = valid(RawConfig {
            num_threads: Some(1),
            ..base()
        });
        // 5000 pairs -> 2500 calls; 1024 fds -> (1024 - 36) / 4 = 247.
        let cap = c.capacity(1024);
        assert_eq!(cap.by_ports, 2500);
        assert_eq!(cap.by_fds, 247);
        assert_eq!(cap.calls(), 247);
        assert_eq!(cap.limit(), CapacityLimit::OpenFiles);
        assert!(cap.to_string().contains("bound by the open-file limit"));
        let cap = c.capacity(1 << 20);
        assert_eq!(cap.calls(), 2500);
        assert_eq!(cap.limit(), CapacityLimit::Ports);
        assert_eq!(c.capacity(10).by_fds, 0);
    }

    #[test]
    fn cli_flags_and_rtpengine_spellings() {
        let c = cli(&[
            "--interface=10.0.0.1;10.0.0.2",
            "-i",
            "10.0.0.3",
            "--table",
            "-1",
            "--config-file",
            "/etc/rtpengine/rtpengine.conf",
            "-f",
            "-L",
            "7",
        ]);
        assert_eq!(c.table, Some(-1));
        assert_eq!(
            c.config,
            Some(PathBuf::from("/etc/rtpengine/rtpengine.conf"))
        );
        let raw = c.raw();
        assert_eq!(
            raw.interface,
            Some(vec![
                "10.0.0.1".into(),
                "10.0.0.2".into(),
                "10.0.0.3".into()
            ])
        );
        assert_eq!(raw.foreground, Some(true));
        assert_eq!(cli(&[]).raw(), RawConfig::default());
    }

    #[test]
    fn help_shows_every_flag_and_the_real_defaults() {
        let help = Cli::command().render_help().to_string();
        for key in FILE_KEYS.iter().chain(&["config", "config-file"]) {
            assert!(help.contains(&format!("--{key}")), "--{key} missing");
        }
        for (flag, default) in [
            ("--port-min", DEFAULT_PORT_MIN.to_string()),
            ("--port-max", DEFAULT_PORT_MAX.to_string()),
            ("--timeout", DEFAULT_TIMEOUT_SECS.to_string()),
            ("--silent-timeout", DEFAULT_SILENT_TIMEOUT_SECS.to_string()),
            ("--final-timeout", DEFAULT_FINAL_TIMEOUT_SECS.to_string()),
            ("--delete-delay", DEFAULT_DELETE_DELAY_SECS.to_string()),
            ("--log-level", LogLevel::default().to_string()),
            ("--io-backend", IoBackend::Auto.to_string()),
        ] {
            let line = help
                .lines()
                .find(|l| l.contains(&format!("{flag} ")))
                .unwrap_or_else(|| panic!("{flag} missing"));
            assert!(
                line.contains(&format!("[default: {default}]")),
                "{flag}: {line}"
            );
        }
    }

    proptest! {
        #[test]
        fn interface_display_round_trips(
            name in proptest::option::of("[a-z][a-z0-9_-]{0,8}"),
            v6 in any::<bool>(),
            local in any::<[u8; 16]>(),
            adv in proptest::option::of(any::<[u8; 16]>()),
        ) {
            let ip = |b: [u8; 16]| -> IpAddr {
                if v6 {
                    IpAddr::from(b)
                } else {
                    IpAddr::from([b[0], b[1], b[2], b[3] | 1])
                }
            };
            let local = ip(local);
            prop_assume!(!local.is_unspecified());
            let i = Interface {
                name: name.map(InterfaceName),
                local,
                advertised: adv.map(ip),
            };
            prop_assert_eq!(i.to_string().parse::<Interface>(), Ok(i));
        }
    }
}
