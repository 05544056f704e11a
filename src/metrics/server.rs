//! A minimal HTTP/1.1 server for `GET /metrics` and `GET /ping`.
//!
//! One thread, one connection at a time, `Connection: close` on every
//! answer: a scrape endpoint needs nothing more, and a serial server cannot
//! be made to hold more than one socket. A client gets [`HttpConfig::timeout`]
//! in TOTAL to send its request head (a slow or silent client cannot hold
//! the server longer than that), and at most [`HttpConfig::max_head`] bytes
//! of it. The body comes from a provider closure called once per `/metrics`
//! request, so the server is testable without an engine.
//!
//! The listener is non-blocking and polled every [`POLL`], so
//! [`MetricsServer::shutdown`] returns within about that time.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::exposition::CONTENT_TYPE;
use super::request::{MAX_HEAD, Request, RequestError, Route};

/// How often the idle accept loop checks for shutdown.
pub const POLL: Duration = Duration::from_millis(20);

/// Server limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpConfig {
    /// Total time a client has to send its request head, and the write
    /// timeout of the answer.
    pub timeout: Duration,
    /// Largest request head accepted (larger: 431).
    pub max_head: usize,
}

/// A running metrics HTTP server. Dropping it shuts it down.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            timeout: Duration::from_secs(2),
            max_head: MAX_HEAD,
        }
    }
}

impl MetricsServer {
    /// Binds `addr` (port 0: any free port) and serves with default limits.
    /// `provider` appends the `/metrics` body to an empty `String`.
    pub fn start<F>(addr: impl ToSocketAddrs, provider: F) -> io::Result<MetricsServer>
    where
        F: FnMut(&mut String) + Send + 'static,
    {
        Self::start_with(addr, HttpConfig::default(), provider)
    }

    /// [`MetricsServer::start`] with explicit limits.
    pub fn start_with<F>(
        addr: impl ToSocketAddrs,
        cfg: HttpConfig,
        provider: F,
    ) -> io::Result<MetricsServer>
    where
        F: FnMut(&mut String) + Send + 'static,
    {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || serve(&listener, cfg, &stop, provider)
            })?;
        tracing::info!(%addr, "metrics HTTP server listening");
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The bound address (with the actual port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for its thread: within [`POLL`] when
    /// idle, or after the connection being served (bounded by the timeout).
    pub fn shutdown(mut self) {
        self.stop_thread();
    }

    fn stop_thread(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop_thread();
    }
}

/// The accept loop.
fn serve<F: FnMut(&mut String)>(
    listener: &TcpListener,
    cfg: HttpConfig,
    stop: &AtomicBool,
    mut provider: F,
) {
    let mut body = String::new();
    let mut buf = vec![0u8; cfg.max_head];
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if let Err(e) = handle(stream, cfg, &mut buf, &mut body, &mut provider) {
                    tracing::debug!(%peer, error = %e, "metrics HTTP connection failed");
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                // EMFILE and the like: back off rather than spin.
                tracing::warn!(error = %e, "metrics HTTP accept failed");
                std::thread::sleep(POLL);
            }
        }
    }
}

/// Serves one connection: read the head, answer, close.
fn handle<F: FnMut(&mut String)>(
    mut stream: TcpStream,
    cfg: HttpConfig,
    buf: &mut [u8],
    body: &mut String,
    provider: &mut F,
) -> io::Result<()> {
    // An accepted socket may inherit O_NONBLOCK on some platforms.
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(cfg.timeout))?;
    let deadline = Instant::now() + cfg.timeout;
    let mut len = 0;
    let parsed = loop {
        match Request::parse(&buf[..len], buf.len()) {
            Ok(Some(req)) => break Ok(req),
            Err(e) => break Err(e),
            Ok(None) => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let Some(free) = buf.get_mut(len..) else {
            return Err(ErrorKind::InvalidData.into());
        };
        match stream.read(free) {
            // Closed before a full head: nothing to answer.
            Ok(0) => return Ok(()),
            Ok(n) => len += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    };
    body.clear();
    let (status, content_type, head_only) = match parsed {
        Ok(req) => match req.route {
            Route::Metrics => {
                provider(body);
                ("200 OK", CONTENT_TYPE, req.head_only)
            }
            Route::Ping => {
                body.push_str("pong\n");
                ("200 OK", "text/plain; charset=utf-8", req.head_only)
            }
            Route::NotFound => {
                body.push_str("not found\n");
                ("404 Not Found", "text/plain; charset=utf-8", req.head_only)
            }
            Route::MethodNotAllowed => {
                body.push_str("method not allowed\n");
                ("405 Method Not Allowed", "text/plain; charset=utf-8", false)
            }
        },
        Err(RequestError::TooLarge(_)) => {
            body.push_str("request head too large\n");
            (
                "431 Request Header Fields Too Large",
                "text/plain; charset=utf-8",
                false,
            )
        }
        Err(_) => {
            body.push_str("bad request\n");
            ("400 Bad Request", "text/plain; charset=utf-8", false)
        }
    };
    let allow = if status.starts_with("405") {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body.as_bytes())?;
    }
    stream.flush()?;
    linger_close(stream, buf);
    Ok(())
}

/// Half-closes and drains what the client still sends (briefly), so that
/// closing with unread input does not reset the connection and destroy the
/// answer in flight (RFC 9112 §9.6).
fn linger_close(mut stream: TcpStream, scratch: &mut [u8]) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + Duration::from_millis(100);
    let mut drained = 0usize;
    while drained < 256 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(scratch) {
            Ok(0) => return,
            Ok(n) => drained += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Reads `GET /metrics` from a running server at `addr` (a client's
/// helper: for tools and tests that scrape it); the exposition text.
pub fn scrape(addr: SocketAddr, timeout: Duration) -> io::Result<String> {
    let mut tcp = TcpStream::connect_timeout(&addr, timeout)?;
    tcp.set_read_timeout(Some(timeout))?;
    tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    tcp.read_to_string(&mut text)?;
    Ok(text)
}
