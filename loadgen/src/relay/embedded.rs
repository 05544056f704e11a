//! The embedded relay: mediarelay's daemon run in a child process of the
//! load generator (the same binary, `loadgen embedded-relay -- FLAGS`), so
//! that its CPU time is measured apart from the generator's exactly as an
//! external relay's is, and a crash of either side is seen as such.

use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ng::NgClient;

/// The hidden subcommand that runs the daemon.
pub const SUBCOMMAND: &str = "embedded-relay";

/// A running embedded relay; killed when dropped.
#[derive(Debug)]
pub struct EmbeddedRelay {
    child: Child,
    ng: SocketAddr,
    /// The embedded mediarelay's HTTP server (`/metrics`); none for
    /// rtpengine.
    http: Option<SocketAddr>,
}

/// How to start it.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Relay port range (RTP and RTCP ports).
    pub port_min: u16,
    /// Highest relay port.
    pub port_max: u16,
    /// Relay threads (shards); `None`: the daemon's default (one per CPU).
    pub threads: Option<usize>,
    /// `auto`, `uring` or `epoll`.
    pub io_backend: Option<String>,
    /// The embedded mediarelay's `--batch-wait-us` (coalesced wake-ups);
    /// `None`: its default. rtpengine has no such setting.
    pub batch_wait_us: Option<u32>,
    /// The embedded mediarelay's `--fast-path` (`auto`, `ebpf`, `off`);
    /// `None`: its default (`auto`). rtpengine runs with `--table=-1`.
    pub fast_path: Option<String>,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            port_min: 30000,
            port_max: 44999,
            threads: None,
            io_backend: None,
            batch_wait_us: None,
            fast_path: None,
        }
    }
}

/// Environment variable with the pid of the loadgen run that started the
/// embedded relay: the relay exits when that process is no longer its
/// parent.
pub const PARENT_ENV: &str = "LOADGEN_PARENT_PID";

impl EmbeddedRelay {
    /// Starts `exe embedded-relay -- <daemon flags>` on 127.0.0.1 with a
    /// free NG port and waits (up to 10 s) until it answers `ping`.
    pub fn start(exe: &Path, o: &EmbeddedOptions) -> Result<EmbeddedRelay, String> {
        let ng = free_ng_port()?;
        let http = free_tcp_port()?;
        let mut cmd = Command::new(exe);
        cmd.arg(SUBCOMMAND)
            .arg("--")
            .args(["--interface", "127.0.0.1"])
            .args(["--listen-ng", &ng.to_string()])
            .args(["--listen-http", &http.to_string()])
            .args(["--port-min", &o.port_min.to_string()])
            .args(["--port-max", &o.port_max.to_string()])
            .args(["--delete-delay", "0"])
            .args(["--log-level", "warn"])
            .arg("--foreground")
            .env(PARENT_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(t) = o.threads {
            cmd.args(["--num-threads", &t.to_string()]);
        }
        if let Some(b) = &o.io_backend {
            cmd.args(["--io-backend", b]);
        }
        if let Some(us) = o.batch_wait_us {
            cmd.args(["--batch-wait-us", &us.to_string()]);
        }
        if let Some(f) = &o.fast_path {
            cmd.args(["--fast-path", f]);
        }
        let mut relay = EmbeddedRelay::spawn(cmd, ng, "the embedded relay")?;
        relay.http = Some(http);
        Ok(relay)
    }

    /// Starts Sipwise rtpengine (`exe`, e.g. `rtpengine` from Debian's
    /// `rtpengine-daemon`) in userspace (`--table=-1`) on 127.0.0.1 with
    /// the same port range and thread count, and waits until it answers
    /// `ping`.
    pub fn rtpengine(exe: &Path, o: &EmbeddedOptions) -> Result<EmbeddedRelay, String> {
        // The NG port is free when picked but another process may take it
        // before rtpengine binds it (rtpengine then exits at once): try a
        // few ports, and say what rtpengine logged when it gives up.
        let mut last = String::new();
        for _ in 0..3 {
            let ng = free_ng_port()?;
            let log = std::env::temp_dir().join(format!(
                "loadgen-rtpengine-{}-{}.log",
                std::process::id(),
                ng.port()
            ));
            let stderr = std::fs::File::create(&log)
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null());
            let mut cmd = Command::new(exe);
            cmd.args([
                "--table=-1",
                "--interface=127.0.0.1",
                "--foreground",
                "--log-stderr",
            ])
            .arg(format!("--listen-ng={ng}"))
            .arg(format!("--port-min={}", o.port_min))
            .arg(format!("--port-max={}", o.port_max))
            .args(["--delete-delay=0", "--log-level=3"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
            if let Some(t) = o.threads {
                cmd.arg(format!("--num-threads={t}"));
            }
            match EmbeddedRelay::spawn(cmd, ng, "rtpengine") {
                Ok(r) => {
                    let _ = std::fs::remove_file(&log);
                    return Ok(r);
                }
                Err(e) => {
                    let said = std::fs::read_to_string(&log).unwrap_or_default();
                    let _ = std::fs::remove_file(&log);
                    let tail: Vec<&str> = said.lines().rev().take(3).collect();
                    last = format!(
                        "{e} (NG {ng}; rtpengine said: {})",
                        tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                    );
                }
            }
        }
        Err(last)
    }

    fn spawn(mut cmd: Command, ng: SocketAddr, what: &str) -> Result<EmbeddedRelay, String> {
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {what} ({:?}): {e}", cmd.get_program()))?;
        let mut relay = EmbeddedRelay {
            child,
            ng,
            http: None,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut client = NgClient::new(ng).map_err(|e| e.to_string())?;
        client.retransmit_after = Duration::from_millis(100);
        client.tries = 1;
        loop {
            if let Ok(Some(status)) = relay.child.try_wait() {
                return Err(format!("{what} exited at start: {status}"));
            }
            if client.ping().is_ok() {
                return Ok(relay);
            }
            if Instant::now() > deadline {
                return Err(format!("{what} did not answer ping within 10 s"));
            }
        }
    }

    /// Its NG address.
    pub fn ng(&self) -> SocketAddr {
        self.ng
    }

    /// Its process id (for CPU accounting).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The value of an unlabelled sample `name` in the embedded
    /// mediarelay's `/metrics` (Prometheus text); `None` for rtpengine, or
    /// when it cannot be read.
    pub fn metric(&self, name: &str) -> Option<u64> {
        let text = mediarelay::metrics::scrape(self.http?, Duration::from_secs(2)).ok()?;
        mediarelay::metrics::read_sample(&text, name)
    }

    /// `Some` with a description once it has exited (a crash mid-run).
    pub fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(s)) => Some(s.to_string()),
            _ => None,
        }
    }
}

/// A free TCP port on 127.0.0.1 for the embedded relay's HTTP server.
fn free_tcp_port() -> Result<SocketAddr, String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("HTTP port: {e}"))?;
    l.local_addr().map_err(|e| e.to_string())
}

/// A free UDP port on 127.0.0.1 for a relay's NG socket.
fn free_ng_port() -> Result<SocketAddr, String> {
    let s = UdpSocket::bind("127.0.0.1:0").map_err(|e| format!("NG port: {e}"))?;
    s.local_addr().map_err(|e| e.to_string())
}

impl Drop for EmbeddedRelay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
