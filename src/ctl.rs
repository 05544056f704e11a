//! `mediarelay ctl`: a control CLI for a running daemon, in the manner of
//! rtpengine's `rtpengine-ctl`, speaking the NG protocol (bencode over
//! UDP) to the daemon's `listen-ng` socket.
//!
//! ```text
//! mediarelay ctl [--ng HOST:PORT | --config FILE] [--timeout SECS] COMMAND
//!   list sessions [all|own|foreign|CALL-ID]   one line per call (NG list + query)
//!   list numsessions                          own/foreign/total sessions (NG statistics)
//!   list totals                               uptime, managed sessions, packets (NG statistics)
//!   terminate CALL-ID | all                   NG delete (all: NG list, then delete each)
//!   ping                                      NG ping; prints pong
//!   loglevel [LEVEL]                          show or set the log level (NG `log level`)
//!   maxsessions [N]                           show or set --max-sessions (NG `max sessions`;
//!                                             0 refuses new calls: draining; -1 no limit)
//! ```
//!
//! The daemon's address: `--ng`, else the `listen-ng` of `--config FILE`
//! (the daemon's config file), else [`DEFAULT_NG`] (the daemon itself has
//! no default `listen-ng`; 2223 is the port of the shipped systemd unit).
//! An unspecified address (`0.0.0.0`, `::`, or a bare `PORT`) is reached on
//! loopback.
//!
//! Output goes to stdout, diagnostics to stderr. Exit codes: 0 success,
//! 1 the daemon answered with an error or did not answer (the message says
//! which, with the address tried), 2 bad usage (including an unreadable
//! config file).

use std::ffi::OsString;
use std::fmt;
use std::io::{self, ErrorKind};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

use crate::config::{RawConfig, parse_listen};
use crate::ng::{OwnedValue, Value};

/// The NG address `ctl` talks to without `--ng` or `--config`.
pub const DEFAULT_NG: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2223);

/// Call-ids asked for per NG `list` request: the reply must fit one UDP
/// datagram (64 KiB), which 500 call-ids of up to ~120 bytes do.
const LIST_PAGE: i64 = 500;

/// Exit code: the daemon answered with an error, or did not answer.
const EXIT_DAEMON: u8 = 1;
/// Exit code: bad usage.
const EXIT_USAGE: u8 = 2;

/// `mediarelay ctl`'s command line.
#[derive(Debug, Parser)]
#[command(
    name = "mediarelay ctl",
    bin_name = "mediarelay ctl",
    version,
    about = "Control a running mediarelay over its NG socket (like rtpengine-ctl)",
    after_help = "Exit codes: 0 success, 1 the daemon answered with an error or did not answer, 2 bad usage."
)]
struct CtlCli {
    /// NG address of the daemon, HOST:PORT or PORT [default: listen-ng of --config, else 127.0.0.1:2223]
    #[arg(long, value_name = "HOST:PORT")]
    ng: Option<String>,
    /// The daemon's config file: its listen-ng is the NG address
    #[arg(long, visible_alias = "config-file", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Seconds to wait for each answer (the request is resent twice meanwhile)
    #[arg(long, value_name = "SECS", default_value = "3")]
    timeout: f64,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// List sessions, session counts or totals
    List {
        #[command(subcommand)]
        what: ListWhat,
    },
    /// Delete a call (NG delete), or every call with `all`
    Terminate {
        /// The call-id, or `all`
        #[arg(value_name = "CALL-ID|all")]
        target: String,
    },
    /// Check that the daemon answers (NG ping); prints pong
    Ping,
    /// Show the daemon's log level, or set it: error, warn, info, debug, trace or syslog 0-7
    Loglevel {
        /// The new level; without it, the current one is printed
        level: Option<String>,
    },
    /// Show or set the most live calls (--max-sessions): 0 refuses new calls (draining), -1 no limit
    Maxsessions {
        /// The new limit; without it, the current one is printed (-1: none)
        #[arg(allow_negative_numbers = true)]
        value: Option<i64>,
    },
}

#[derive(Debug, Subcommand)]
enum ListWhat {
    /// One line per call: call-id, created, last signal, tags, packets
    Sessions {
        /// all, own (the same: every call is own), foreign (none), or one CALL-ID
        #[arg(value_name = "all|own|foreign|CALL-ID")]
        which: Option<String>,
    },
    /// Current sessions: own, foreign, total, transcoded
    Numsessions,
    /// Uptime, total managed sessions, relayed packets and bytes, NG commands
    Totals,
}

/// Why a command failed (exit code 1).
#[derive(Debug)]
enum CtlError {
    /// No reply.
    NoAnswer {
        addr: SocketAddr,
        command: String,
        why: String,
    },
    /// A reply that is not NG.
    Malformed {
        addr: SocketAddr,
        command: String,
        why: String,
    },
    /// `result: error`.
    Failed {
        addr: SocketAddr,
        command: String,
        reason: String,
    },
    /// Something else, already a sentence.
    Other(String),
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::NoAnswer { addr, command, why } => {
                write!(f, "no answer from {addr} to NG {command:?}: {why}")
            }
            CtlError::Malformed { addr, command, why } => {
                write!(f, "malformed answer from {addr} to NG {command:?}: {why}")
            }
            CtlError::Failed {
                addr,
                command,
                reason,
            } => write!(
                f,
                "the daemon at {addr} answered NG {command:?} with an error: {reason}"
            ),
            CtlError::Other(s) => f.write_str(s),
        }
    }
}

/// A blocking NG client: `cookie <dict>` out, the reply dictionary back,
/// resent with the same cookie (the daemon answers a retransmission from
/// its reply cache) until the timeout.
struct NgClient {
    sock: UdpSocket,
    addr: SocketAddr,
    timeout: Duration,
    prefix: String,
    next: u32,
}

impl NgClient {
    fn new(addr: SocketAddr, timeout: Duration) -> io::Result<NgClient> {
        let local = match addr.ip() {
            IpAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            IpAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
        };
        let sock = UdpSocket::bind(local)?;
        // Connected: a port nobody listens on is reported (ICMP) at once.
        sock.connect(addr)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        Ok(NgClient {
            sock,
            addr,
            timeout,
            prefix: format!("ctl{}x{nanos:x}", std::process::id()),
            next: 0,
        })
    }

    /// Sends `body` (a dictionary with its `command`); the reply
    /// dictionary when its `result` is not `error`.
    fn request(&mut self, body: &OwnedValue) -> Result<OwnedValue, CtlError> {
        let command = body
            .get("command")
            .and_then(OwnedValue::as_str)
            .unwrap_or("?")
            .to_string();
        self.next += 1;
        let cookie = format!("{}_{}", self.prefix, self.next);
        let mut datagram = format!("{cookie} ").into_bytes();
        body.encode(&mut datagram);
        let no_answer = |why: String| CtlError::NoAnswer {
            addr: self.addr,
            command: command.clone(),
            why,
        };
        let tries = 3u32;
        let per_try = (self.timeout / tries).max(Duration::from_millis(10));
        let mut buf = vec![0u8; 65_536];
        for _ in 0..tries {
            if let Err(e) = self.sock.send(&datagram) {
                return Err(no_answer(io_why(&e)));
            }
            let deadline = Instant::now() + per_try;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                self.sock
                    .set_read_timeout(Some(left))
                    .map_err(|e| no_answer(io_why(&e)))?;
                let n = match self.sock.recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        break;
                    }
                    Err(e) => return Err(no_answer(io_why(&e))),
                };
                let reply = buf.get(..n).unwrap_or_default();
                // A late reply to an earlier request: skip it.
                let Some(rest) = reply.strip_prefix(format!("{cookie} ").as_bytes()) else {
                    continue;
                };
                return self.decode(&command, rest);
            }
        }
        Err(no_answer(format!(
            "nothing within {:.1} s (is the daemon running with --listen-ng {}?)",
            self.timeout.as_secs_f64(),
            self.addr
        )))
    }

    fn decode(&self, command: &str, rest: &[u8]) -> Result<OwnedValue, CtlError> {
        let malformed = |why: String| CtlError::Malformed {
            addr: self.addr,
            command: command.to_string(),
            why,
        };
        let value = Value::decode(rest).map_err(|e| malformed(e.to_string()))?;
        let reply = OwnedValue::from(&value);
        if !matches!(reply, OwnedValue::Dict(_)) {
            return Err(malformed("not a dictionary".into()));
        }
        if reply.get("result").and_then(OwnedValue::as_str) == Some("error") {
            let reason = reply
                .get("error-reason")
                .and_then(OwnedValue::as_str)
                .unwrap_or("(no error-reason)")
                .to_string();
            return Err(CtlError::Failed {
                addr: self.addr,
                command: command.to_string(),
                reason,
            });
        }
        Ok(reply)
    }

    fn command(
        &mut self,
        name: &str,
        pairs: &[(&str, OwnedValue)],
    ) -> Result<OwnedValue, CtlError> {
        let mut body = OwnedValue::dict().with("command", OwnedValue::text(name));
        for (k, v) in pairs {
            body.push(k, v.clone());
        }
        self.request(&body)
    }

    /// Up to `limit` call-ids (NG `list`).
    fn list(&mut self, limit: i64) -> Result<Vec<String>, CtlError> {
        let reply = self.command("list", &[("limit", OwnedValue::Int(limit))])?;
        Ok(reply
            .get("calls")
            .and_then(OwnedValue::as_list)
            .unwrap_or_default()
            .iter()
            .filter_map(OwnedValue::as_str)
            .map(str::to_string)
            .collect())
    }

    /// The `statistics` dictionary of NG `statistics`.
    fn statistics(&mut self) -> Result<OwnedValue, CtlError> {
        let reply = self.command("statistics", &[])?;
        reply
            .get("statistics")
            .cloned()
            .ok_or_else(|| CtlError::Malformed {
                addr: self.addr,
                command: "statistics".into(),
                why: "no statistics dictionary".into(),
            })
    }
}

/// An I/O error as the reason for no answer.
fn io_why(e: &io::Error) -> String {
    if e.kind() == ErrorKind::ConnectionRefused {
        "connection refused (nothing listening there?)".into()
    } else {
        e.to_string()
    }
}

/// Runs `mediarelay ctl` with `args` (`args[0]` the program name, `args[1]`
/// `ctl`, then the options and the command); the exit code.
pub fn main<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let args = std::iter::once(OsString::from("mediarelay ctl"))
        .chain(args.into_iter().map(Into::into).skip(2));
    let cli = match CtlCli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help / --version: stdout, exit 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let addr = match ng_address(&cli) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("mediarelay ctl: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if !(cli.timeout.is_finite() && cli.timeout > 0.0 && cli.timeout <= 3600.0) {
        eprintln!(
            "mediarelay ctl: --timeout {} is not a number of seconds (0-3600]",
            cli.timeout
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let timeout = Duration::from_secs_f64(cli.timeout);
    let mut out = String::new();
    let result = NgClient::new(addr, timeout)
        .map_err(|e| CtlError::Other(format!("cannot open a UDP socket to {addr}: {e}")))
        .and_then(|mut c| run(&mut c, &cli.command, &mut out));
    print!("{out}");
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mediarelay ctl: {e}");
            ExitCode::from(EXIT_DAEMON)
        }
    }
}

/// The daemon's NG address: `--ng`, else `listen-ng` of `--config`, else
/// [`DEFAULT_NG`]; unspecified addresses become loopback.
fn ng_address(cli: &CtlCli) -> Result<SocketAddr, String> {
    let addr = match (&cli.ng, &cli.config) {
        (Some(v), _) => parse_listen("--ng", v).map_err(|e| e.to_string())?,
        (None, Some(path)) => {
            let raw = RawConfig::from_file(path).map_err(|e| e.to_string())?;
            let v = raw.listen_ng.ok_or_else(|| {
                format!("{} has no listen-ng: give --ng HOST:PORT", path.display())
            })?;
            parse_listen("listen-ng", &v).map_err(|e| e.to_string())?
        }
        (None, None) => DEFAULT_NG,
    };
    let ip = match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    Ok(SocketAddr::new(ip, addr.port()))
}

/// Runs one command, appending what it prints to `out`.
fn run(c: &mut NgClient, cmd: &CtlCommand, out: &mut String) -> Result<(), CtlError> {
    use std::fmt::Write as _;
    match cmd {
        CtlCommand::Ping => {
            let reply = c.command("ping", &[])?;
            let result = reply.get("result").and_then(OwnedValue::as_str);
            let _ = writeln!(out, "{}", result.unwrap_or("?"));
        }
        CtlCommand::Loglevel { level } => {
            let pairs: Vec<(&str, OwnedValue)> = level
                .iter()
                .map(|l| ("level", OwnedValue::text(l)))
                .collect();
            let reply = c.command("log level", &pairs)?;
            let current = reply.get("level").and_then(OwnedValue::as_str);
            let _ = writeln!(out, "{}", current.unwrap_or("?"));
        }
        CtlCommand::Maxsessions { value } => {
            let pairs: Vec<(&str, OwnedValue)> = value
                .iter()
                .map(|v| ("value", OwnedValue::Int(*v)))
                .collect();
            let reply = c.command("max sessions", &pairs)?;
            match reply.get("max sessions").and_then(OwnedValue::as_int) {
                Some(n) => {
                    let _ = writeln!(out, "{n}");
                }
                None => {
                    let _ = writeln!(out, "?");
                }
            }
        }
        CtlCommand::Terminate { target } if target == "all" => {
            let n = terminate_all(c)?;
            let _ = writeln!(out, "terminated {n} session(s)");
        }
        CtlCommand::Terminate { target } => {
            let fatal = OwnedValue::List(vec![OwnedValue::text("fatal")]);
            // At once, as rtpengine-ctl: not after --delete-delay.
            c.command(
                "delete",
                &[
                    ("call-id", OwnedValue::text(target)),
                    ("flags", fatal),
                    ("delete delay", OwnedValue::Int(0)),
                ],
            )?;
            let _ = writeln!(out, "terminated {target}");
        }
        CtlCommand::List { what } => match what {
            ListWhat::Sessions { which } => list_sessions(c, which.as_deref(), out)?,
            ListWhat::Numsessions => {
                let stats = c.statistics()?;
                let cur = stats.get("currentstatistics");
                let n = |k: &str| cur.and_then(|d| d.get(k)).map_or(0, int_of);
                let _ = writeln!(out, "Current sessions own: {}", n("sessionsown"));
                let _ = writeln!(out, "Current sessions foreign: {}", n("sessionsforeign"));
                let _ = writeln!(out, "Current sessions total: {}", n("sessionstotal"));
                let _ = writeln!(out, "Current transcoded media: {}", n("transcodedmedia"));
            }
            ListWhat::Totals => totals(&c.statistics()?, out),
        },
    }
    Ok(())
}

/// An integer that may come as a bencode integer or as decimal text
/// (rtpengine sends `uptime` as text).
fn int_of(v: &OwnedValue) -> i64 {
    v.as_int()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
        .unwrap_or(0)
}

/// `list sessions`: one line per call, call-id first.
fn list_sessions(c: &mut NgClient, which: Option<&str>, out: &mut String) -> Result<(), CtlError> {
    let ids = match which {
        None | Some("all" | "own") => {
            let ids = c.list(LIST_PAGE * 2)?;
            if ids.len() as i64 >= LIST_PAGE * 2 {
                eprintln!(
                    "mediarelay ctl: listing the first {} calls only (an NG list reply is one datagram)",
                    ids.len()
                );
            }
            ids
        }
        Some("foreign") => Vec::new(),
        Some(id) => vec![id.to_string()],
    };
    let single = ids.len() == 1 && !matches!(which, None | Some("all" | "own"));
    for id in ids {
        match c.command("query", &[("call-id", OwnedValue::text(&id))]) {
            Ok(q) => out.push_str(&session_line(&id, &q)),
            // Gone between list and query (deleted, timed out).
            Err(CtlError::Failed { .. }) if !single => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// `CALL-ID | created: UNIX | last signal: UNIX | tags: A, B | packets RTP: n, RTCP: n`.
fn session_line(id: &str, q: &OwnedValue) -> String {
    let int = |path: &[&str]| {
        let mut cur = Some(q);
        for k in path {
            cur = cur.and_then(|v| v.get(k));
        }
        cur.map_or(0, int_of)
    };
    let tags: Vec<String> = match q.get("tags") {
        Some(OwnedValue::Dict(d)) => d
            .iter()
            .filter_map(|(_, t)| t.get("tag").and_then(OwnedValue::as_str))
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    };
    format!(
        "{id} | created: {} | last signal: {} | tags: {} | packets RTP: {}, RTCP: {}\n",
        int(&["created"]),
        int(&["last signal"]),
        if tags.is_empty() {
            "-".to_string()
        } else {
            tags.join(", ")
        },
        int(&["totals", "RTP", "packets"]),
        int(&["totals", "RTCP", "packets"]),
    )
}

/// `terminate all`: lists a page of calls, deletes those not deleted yet,
/// until a page brings no new call; the number deleted. Calls still live
/// afterwards (hidden behind calls kept for `delete-delay`, or new ones)
/// are an error naming their number.
fn terminate_all(c: &mut NgClient) -> Result<usize, CtlError> {
    let mut done = std::collections::HashSet::new();
    loop {
        let fresh: Vec<String> = c
            .list(LIST_PAGE)?
            .into_iter()
            .filter(|id| !done.contains(id))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for id in fresh {
            // Without `fatal`: a call gone meanwhile is `ok` + warning.
            c.command(
                "delete",
                &[
                    ("call-id", OwnedValue::text(&id)),
                    ("delete delay", OwnedValue::Int(0)),
                ],
            )?;
            done.insert(id);
        }
    }
    let stats = c.statistics()?;
    let left = stats
        .get("currentstatistics")
        .and_then(|d| d.get("sessionsown"))
        .map_or(0, int_of);
    if left > 0 {
        return Err(CtlError::Other(format!(
            "terminated {} session(s), but {left} remain live (calls kept for delete-delay fill \
             the NG list, or new calls came): run it again",
            done.len()
        )));
    }
    Ok(done.len())
}

/// `list totals`, laid out as rtpengine-ctl's.
fn totals(stats: &OwnedValue, out: &mut String) {
    use std::fmt::Write as _;
    let total = stats.get("totalstatistics");
    let n = |k: &str| total.and_then(|d| d.get(k)).map_or(0, int_of);
    let _ = writeln!(
        out,
        "Total statistics (does not include current running sessions):\n"
    );
    for (label, value) in [
        ("Uptime of mediarelay", format!("{} seconds", n("uptime"))),
        ("Total managed sessions", n("managedsessions").to_string()),
        (
            "Total timed-out sessions via TIMEOUT",
            n("timeoutsessions").to_string(),
        ),
        ("Total relayed packets", n("relayedpackets").to_string()),
        ("Total relayed bytes", n("relayedbytes").to_string()),
        (
            "Total relayed packet errors",
            n("relayedpacketerrors").to_string(),
        ),
    ] {
        let _ = writeln!(out, " {label:<48}:{value}");
    }
    let _ = writeln!(out, "\nControl statistics:\n");
    if let Some(OwnedValue::Dict(d)) = stats.get("controlstatistics") {
        for (k, v) in d {
            let key = String::from_utf8_lossy(k);
            let Some(name) = key
                .strip_prefix("total")
                .and_then(|k| k.strip_suffix("count"))
            else {
                continue;
            };
            let label = if name == "error" {
                "Total errors".to_string()
            } else {
                format!("Total {name} commands")
            };
            let _ = writeln!(out, " {label:<48}:{}", int_of(v));
        }
    }
}
