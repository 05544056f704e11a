//! Logging to the local syslog daemon, as rtpengine's `--log-facility`:
//! each `tracing` event becomes one RFC 3164 message sent as one datagram
//! to the `/dev/log` unix socket (rsyslog, syslog-ng or journald listen
//! there).
//!
//! Contract:
//! - A message is `<PRI>Mmm dd hh:mm:ss mediarelay[PID]: TEXT` (RFC 3164
//!   §4.1: PRI = facility x 8 + severity, §4.1.2 timestamp, §4.1.3 TAG), the
//!   same local form glibc's `syslog(3)` sends (no HOSTNAME: the local
//!   daemon adds it). The timestamp is UTC; daemons reading `/dev/log`
//!   stamp messages on reception anyway.
//! - Severity comes from the `tracing` level: ERROR -> err (3), WARN ->
//!   warning (4), INFO -> info (6), DEBUG and TRACE -> debug (7).
//! - [`SyslogWriter`] is a `tracing-subscriber` `MakeWriter`: one writer
//!   per event, buffered and sent when dropped. A failed send reconnects
//!   once (the syslog daemon restarted) and retries; a message that still
//!   cannot be sent is dropped, never blocking or failing the relay.

use std::fmt;
use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

/// The local syslog socket.
pub const DEV_LOG: &str = "/dev/log";

/// The tag messages carry (before `[PID]`).
pub const TAG: &str = "mediarelay";

/// A syslog facility (RFC 3164 §4.1.1), named as in `syslog.h` and
/// rtpengine's `--log-facility`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Facility {
    /// `kern` (0).
    Kern,
    /// `user` (1).
    User,
    /// `mail` (2).
    Mail,
    /// `daemon` (3), rtpengine's default.
    Daemon,
    /// `auth` (4).
    Auth,
    /// `syslog` (5).
    Syslog,
    /// `lpr` (6).
    Lpr,
    /// `news` (7).
    News,
    /// `uucp` (8).
    Uucp,
    /// `cron` (9).
    Cron,
    /// `authpriv` (10).
    Authpriv,
    /// `ftp` (11).
    Ftp,
    /// `local0`..`local7` (16-23), the facilities left to local use.
    Local(u8),
}

/// A name that is not a syslog facility.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a syslog facility (daemon, user, local0..local7, ...)")]
pub struct FacilityError(pub String);

/// Sends each event to syslog; see the module documentation.
#[derive(Debug, Clone)]
pub struct SyslogWriter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    facility: Facility,
    path: PathBuf,
    pid: u32,
    sock: Mutex<Option<UnixDatagram>>,
}

/// One event's text, sent to syslog when dropped.
#[derive(Debug)]
pub struct Record<'a> {
    inner: &'a Inner,
    severity: u8,
    buf: Vec<u8>,
}

impl Facility {
    const NAMED: [(&'static str, Facility); 12] = [
        ("kern", Facility::Kern),
        ("user", Facility::User),
        ("mail", Facility::Mail),
        ("daemon", Facility::Daemon),
        ("auth", Facility::Auth),
        ("syslog", Facility::Syslog),
        ("lpr", Facility::Lpr),
        ("news", Facility::News),
        ("uucp", Facility::Uucp),
        ("cron", Facility::Cron),
        ("authpriv", Facility::Authpriv),
        ("ftp", Facility::Ftp),
    ];

    /// The facility's number (RFC 3164 §4.1.1).
    pub const fn code(self) -> u8 {
        match self {
            Facility::Kern => 0,
            Facility::User => 1,
            Facility::Mail => 2,
            Facility::Daemon => 3,
            Facility::Auth => 4,
            Facility::Syslog => 5,
            Facility::Lpr => 6,
            Facility::News => 7,
            Facility::Uucp => 8,
            Facility::Cron => 9,
            Facility::Authpriv => 10,
            Facility::Ftp => 11,
            Facility::Local(n) => 16 + (n & 7),
        }
    }
}

impl SyslogWriter {
    /// Connects to the syslog socket at `path` (normally [`DEV_LOG`]);
    /// fails when nothing listens there.
    pub fn connect(facility: Facility, path: &Path) -> io::Result<SyslogWriter> {
        let sock = UnixDatagram::unbound()?;
        sock.connect(path)?;
        Ok(SyslogWriter {
            inner: Arc::new(Inner {
                facility,
                path: path.to_path_buf(),
                pid: std::process::id(),
                sock: Mutex::new(Some(sock)),
            }),
        })
    }

    /// The facility messages are sent with.
    pub fn facility(&self) -> Facility {
        self.inner.facility
    }
}

impl Inner {
    /// Sends one message; reconnects once on failure; drops it otherwise.
    fn send(&self, severity: u8, text: &[u8]) {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let msg = format_record(self.facility, severity, unix, self.pid, text);
        // A poisoned lock only means another thread panicked mid-send; the
        // socket itself is still usable.
        let mut sock = self.sock.lock().unwrap_or_else(|e| e.into_inner());
        if sock.as_ref().is_some_and(|s| s.send(&msg).is_ok()) {
            return;
        }
        *sock = UnixDatagram::unbound()
            .and_then(|s| s.connect(&self.path).map(|()| s))
            .ok();
        if let Some(s) = sock.as_ref() {
            let _ = s.send(&msg);
        }
    }
}

impl io::Write for Record<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Record<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.inner.send(self.severity, &self.buf);
        }
    }
}

impl<'a> MakeWriter<'a> for SyslogWriter {
    type Writer = Record<'a>;

    fn make_writer(&'a self) -> Record<'a> {
        Record {
            inner: &self.inner,
            severity: severity(Level::INFO),
            buf: Vec::new(),
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Record<'a> {
        Record {
            inner: &self.inner,
            severity: severity(*meta.level()),
            buf: Vec::new(),
        }
    }
}

impl FromStr for Facility {
    type Err = FacilityError;

    /// `daemon`, `user`, `local0`..`local7` and the other `syslog.h`
    /// names, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        if let Some((_, f)) = Facility::NAMED.iter().find(|(n, _)| *n == name) {
            return Ok(*f);
        }
        match name.strip_prefix("local").map(str::as_bytes) {
            Some(&[d @ b'0'..=b'7']) => Ok(Facility::Local(d - b'0')),
            _ => Err(FacilityError(s.to_string())),
        }
    }
}

impl fmt::Display for Facility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Facility::Local(n) => write!(f, "local{}", n & 7),
            other => {
                let name = Facility::NAMED
                    .iter()
                    .find(|(_, x)| x == other)
                    .map_or("user", |(n, _)| n);
                f.write_str(name)
            }
        }
    }
}

/// The syslog severity (RFC 3164 §4.1.1) of a `tracing` level.
pub fn severity(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

/// One RFC 3164 datagram: `<PRI>Mmm dd hh:mm:ss mediarelay[PID]: TEXT`,
/// with `unix` (seconds since the epoch) as a UTC timestamp and trailing
/// line breaks of `text` removed.
pub fn format_record(
    facility: Facility,
    severity: u8,
    unix: u64,
    pid: u32,
    text: &[u8],
) -> Vec<u8> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let pri = u16::from(facility.code()) * 8 + u16::from(severity & 7);
    let (month, day) = month_day(unix / 86_400);
    let secs = unix % 86_400;
    let mut out = format!(
        "<{pri}>{} {day:>2} {:02}:{:02}:{:02} {TAG}[{pid}]: ",
        MONTHS.get(month.wrapping_sub(1)).unwrap_or(&"Jan"),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
    .into_bytes();
    let end = text
        .iter()
        .rposition(|b| !matches!(b, b'\n' | b'\r'))
        .map_or(0, |i| i + 1);
    out.extend_from_slice(&text[..end]);
    out
}

/// Month (1-12) and day of `days` since 1970-01-01, proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn month_day(days: u64) -> (usize, u64) {
    let z = days + 719_468;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (month as usize, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facilities_parse_and_print() {
        for (name, code) in [
            ("daemon", 3),
            ("USER", 1),
            ("local0", 16),
            ("local7", 23),
            ("authpriv", 10),
        ] {
            let f: Facility = name.parse().unwrap();
            assert_eq!(f.code(), code, "{name}");
            assert_eq!(f.to_string(), name.to_ascii_lowercase());
        }
        for bad in ["local8", "local", "loc0", "", "daemons", "local00"] {
            assert!(bad.parse::<Facility>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn record_is_rfc3164() {
        // 2023-11-14 22:13:20 UTC.
        let r = format_record(Facility::Local(3), 4, 1_700_000_000, 42, b"WARN x: hello\n");
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "<156>Nov 14 22:13:20 mediarelay[42]: WARN x: hello"
        );
        // 2024-01-05 01:02:03 UTC: the day is space-padded; debug of daemon.
        let r = format_record(Facility::Daemon, 7, 1_704_416_523, 1, b"d");
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "<31>Jan  5 01:02:03 mediarelay[1]: d"
        );
        // 2024-02-29, a leap day; the epoch itself.
        assert!(
            format_record(Facility::User, 6, 1_709_164_800, 1, b"")
                .starts_with(b"<14>Feb 29 00:00:00")
        );
        assert!(format_record(Facility::Kern, 3, 0, 1, b"").starts_with(b"<3>Jan  1 00:00:00"));
        assert_eq!(
            [
                Level::ERROR,
                Level::WARN,
                Level::INFO,
                Level::DEBUG,
                Level::TRACE
            ]
            .map(severity),
            [3, 4, 6, 7, 7]
        );
    }

    #[test]
    fn writer_sends_one_datagram_per_event_and_reconnects() {
        use std::io::Write;
        let dir =
            std::env::temp_dir().join(format!("mediarelay-syslog-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        let w = SyslogWriter::connect(Facility::Local(0), &path).unwrap();
        {
            let mut rec = w.make_writer();
            rec.write_all(b"INFO one ").unwrap();
            rec.write_all(b"event\n").unwrap();
        }
        let mut buf = [0u8; 512];
        let n = rx.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(got.starts_with("<134>"), "{got}");
        assert!(
            got.ends_with(&format!(
                "mediarelay[{}]: INFO one event",
                std::process::id()
            )),
            "{got}"
        );
        // The syslog daemon restarts: a new socket at the same path.
        drop(rx);
        std::fs::remove_file(&path).unwrap();
        let rx = UnixDatagram::bind(&path).unwrap();
        rx.set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .unwrap();
        drop(w.make_writer()); // empty: sends nothing
        w.make_writer().write_all(b"again").unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert!(buf[..n].ends_with(b"]: again"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
